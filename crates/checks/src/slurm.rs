//! `slurm`: the scheduler's own view of nodes and partitions, for cluster
//! acceptance from a login node.

use nodecheck_core::hostlist::HostList;
use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::Actual;
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::run::Context;
use nodecheck_core::target::{ExecRequest, Exit, Need};

use crate::eval;
use crate::exec;

pub struct Slurm;

const KEYS: &[Key] = &[
    exec::ENV,
    Key::new(
        "state",
        Ty::StrList,
        "The states each node may be in, as `sinfo`/`scontrol` name them: base states (`idle`, \
         `mixed`, `allocated`, `completing`, `down`, …) and flags (`drain`, `not_responding` for \
         a `*`, `reboot_requested`, …). Every word of a node's state must be listed. Default \
         `[\"idle\", \"mixed\", \"allocated\", \"completing\"]`; the node's reason is shown.",
    ),
    Key::new(
        "cpus",
        Ty::Matcher(Compare::Quantity),
        "CPUs of each node as the scheduler has them (`CPUTot`): `64`, `{ ge = 32 }`.",
    ),
    Key::new(
        "real_memory",
        Ty::Matcher(Compare::Quantity),
        "Each node's `RealMemory` (MB) as the scheduler has it: `256000`, `{ ge = 250000 }`.",
    ),
    Key::new(
        "gres",
        Ty::Matcher(Compare::Version),
        "Each node's `Gres` as the scheduler has it (`gpu:a100:4`; empty for none).",
    ),
    Key::new(
        "partitions",
        Ty::StrList,
        "Partitions that must exist, be `UP` and hold every node of the list.",
    ),
];

const DOC: &str = r#"## What it checks

Asks the scheduler (`scontrol -o show node`, `scontrol -o show partition`,
run in the target like a `command` check, so from a login node or any node
with Slurm's client and configuration) about a node or a Slurm hostlist of
nodes (`node[001-128]`):

- every node of the list is registered with the controller;
- each one's state is one of `state` (by default up: idle, mixed,
  allocated or completing, with no flag such as `drain` or `*`, not
  responding); a node that is not shows its state and Slurm's reason;
- `cpus`, `real_memory` and `gres` as the scheduler sees them (what
  slurm.conf says, which slurmd has checked against the node);
- `partitions` exist, are `UP` and hold the nodes.

Each property names the offending nodes (at most ten, then a count). The
one-line `-o` form is read because every Slurm has it; `--json` needs a
serializer plugin not all sites build.

## Example

```toml
[[control]]
id    = "cluster-up"
title = "All compute nodes are registered, up and configured as planned"

  [[control.slurm]]
  nodes       = "node[001-128]"
  cpus        = 64
  real_memory = { ge = 250000 }
  partitions  = ["batch"]

  [[control.slurm]]
  nodes = "gpu[01-08]"
  gres  = "gpu:a100:4"
  state = ["idle", "mixed", "allocated", "drain"]   # drained GPUs are known
```

## Targets

live (and a container with Slurm's client and network access to the
controller). On an image the check is skipped with "needs a live node".
"#;

impl Kind for Slurm {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn subject(&self) -> Key {
        Key::new(
            "nodes",
            Ty::Str,
            "A node name or Slurm hostlist (`node[001-128],login1`): every node must be \
             registered.",
        )
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn needs(&self) -> Option<Need> {
        Some(Need::Live)
    }

    fn subject_asserts(&self) -> bool {
        true
    }

    fn validate(&self, check: &Check) -> Vec<Diagnostic> {
        match HostList::parse(&check.subject) {
            Ok(list) if list.len() > nodecheck_core::hostlist::EXPAND_LIMIT as u128 => {
                vec![eval::diagnostic(
                    check,
                    "nodes",
                    "bad-value",
                    format!("the hostlist names {} nodes: too many", list.len()),
                )]
            }
            Ok(_) => Vec::new(),
            Err(e) => vec![eval::diagnostic(
                check,
                "nodes",
                "bad-value",
                format!("not a hostlist: {e}"),
            )],
        }
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let names = match HostList::parse(&check.subject).and_then(|l| l.expand()) {
            Ok(n) => n,
            Err(e) => return Evaluation::error("registered", format!("nodes: {e}")),
        };
        let nodes_text = match scontrol(check, cx, "node") {
            Ok(t) => t,
            Err(e) => return refused(check, e),
        };
        let known: Vec<NodeLine> = nodes_text.lines().filter_map(NodeLine::parse).collect();
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for n in &names {
            match known.iter().find(|k| &k.name == n) {
                Some(k) => found.push(k),
                None => missing.push(n.clone()),
            }
        }
        let mut v = vec![if missing.is_empty() {
            PropertyResult::verdict(
                "registered",
                true,
                format!("registered: {} nodes", found.len()),
            )
        } else {
            PropertyResult::verdict(
                "registered",
                false,
                format!(
                    "registered: not known to the controller: {}",
                    eval::capped(&missing)
                ),
            )
        }];
        let allowed: Vec<String> = match check.list("state") {
            Some(l) => l.iter().map(|s| s.to_ascii_lowercase()).collect(),
            None => ["idle", "mixed", "allocated", "completing"]
                .map(String::from)
                .to_vec(),
        };
        let bad: Vec<String> = found
            .iter()
            .filter(|n| !n.state_words().iter().all(|w| allowed.contains(w)))
            .map(|n| {
                if n.reason.is_empty() {
                    format!("{} {}", n.name, n.state)
                } else {
                    format!("{} {} ({})", n.name, n.state, n.reason)
                }
            })
            .collect();
        v.push(if bad.is_empty() {
            PropertyResult::verdict(
                "state",
                true,
                format!("state: every node {}", allowed.join("|")),
            )
        } else {
            PropertyResult::verdict(
                "state",
                false,
                format!(
                    "state: expected one of {}, got {}",
                    allowed.join(", "),
                    eval::capped(&bad)
                ),
            )
        });
        for key in ["cpus", "real_memory", "gres"] {
            let Some(m) = check.matcher(key) else {
                continue;
            };
            let mut off = Vec::new();
            for n in &found {
                let value = match key {
                    "cpus" => n.cpus.as_str(),
                    "real_memory" => n.real_memory.as_str(),
                    _ => n.gres.as_str(),
                };
                let actual = match key {
                    "gres" => Actual::Str(value),
                    _ => match value.parse::<f64>() {
                        Ok(x) => Actual::Amount {
                            value: x,
                            total: None,
                        },
                        Err(_) => Actual::Str(value),
                    },
                };
                if !m.test(actual) {
                    off.push(format!("{} {value:?}", n.name));
                }
            }
            v.push(if off.is_empty() {
                PropertyResult::compare(key, true, m.describe(), format!("{} nodes", found.len()))
            } else {
                PropertyResult::compare(key, false, m.describe(), eval::capped(&off))
            });
        }
        if let Some(parts) = check.list("partitions") {
            v.push(partitions(check, cx, parts, &found));
        }
        Evaluation {
            properties: v,
            output: String::new(),
        }
    }
}

/// When scontrol cannot answer: an error on `registered`, the rest
/// skipped with that reason.
fn refused(check: &Check, e: String) -> Evaluation {
    let mut v = vec![PropertyResult::error("registered", e)];
    v.extend(eval::skip_rest(
        check,
        &[],
        "the scheduler could not be asked",
    ));
    v.into()
}

fn partitions(
    check: &Check,
    cx: &Context<'_>,
    wanted: &[String],
    nodes: &[&NodeLine],
) -> PropertyResult {
    let text = match scontrol(check, cx, "partition") {
        Ok(t) => t,
        Err(e) => return PropertyResult::error("partitions", e),
    };
    let mut problems = Vec::new();
    for want in wanted {
        let line = text
            .lines()
            .find(|l| field(l, "PartitionName").as_deref() == Some(want));
        match line.and_then(|l| field(l, "State")) {
            None => problems.push(format!("{want} does not exist")),
            Some(state) if state != "UP" => problems.push(format!("{want} is {state}")),
            Some(_) => {
                let outside: Vec<String> = nodes
                    .iter()
                    .filter(|n| !n.partitions.split(',').any(|p| p == want))
                    .map(|n| n.name.clone())
                    .collect();
                if !outside.is_empty() {
                    problems.push(format!("{want} lacks {}", eval::capped(&outside)));
                }
            }
        }
    }
    if problems.is_empty() {
        PropertyResult::verdict(
            "partitions",
            true,
            format!("partitions: {} up", wanted.join(", ")),
        )
    } else {
        PropertyResult::verdict(
            "partitions",
            false,
            format!("partitions: {}", problems.join("; ")),
        )
    }
}

/// `scontrol -o show <what>` in the target; its output, or why not.
fn scontrol(check: &Check, cx: &Context<'_>, what: &str) -> Result<String, String> {
    let script = format!("exec scontrol -o show {what}");
    let mut req = ExecRequest::new(exec::argv("sh -c", false, &script));
    req.env = exec::env_of(check);
    let out = exec::run(check, cx, req, "registered").map_err(|p| p.message)?;
    if out.timed_out {
        return Err(format!(
            "scontrol show {what}: {}",
            exec::ended(&out, check)
        ));
    }
    match out.exit {
        Exit::Code(0) => Ok(out.stdout.text()),
        _ => Err(format!(
            "scontrol show {what}: {}: {}",
            exec::ended(&out, check),
            exec::excerpt(&out.stderr.text())
        )),
    }
}

/// The value of `Key=` in a one-line scontrol record (values without
/// spaces; `Reason` is read apart).
fn field(line: &str, key: &str) -> Option<String> {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_owned)
}

/// One node of `scontrol -o show node`.
#[derive(Debug, PartialEq)]
struct NodeLine {
    name: String,
    state: String,
    reason: String,
    cpus: String,
    real_memory: String,
    gres: String,
    partitions: String,
}

impl NodeLine {
    fn parse(line: &str) -> Option<NodeLine> {
        // Reason is last and may hold spaces; OS= too, so only the known
        // keys are read from what comes before it.
        let (head, reason) = match line.find(" Reason=") {
            Some(i) => (&line[..i], line[i + 8..].trim()),
            None => (line, ""),
        };
        let get = |k| field(head, k).unwrap_or_default();
        let name = field(head, "NodeName")?;
        let gres = get("Gres");
        Some(NodeLine {
            name,
            state: get("State"),
            reason: reason.to_owned(),
            cpus: get("CPUTot"),
            real_memory: get("RealMemory"),
            gres: if gres == "(null)" {
                String::new()
            } else {
                gres
            },
            partitions: get("Partitions"),
        })
    }

    /// `IDLE+DRAIN*` → idle, drain, not_responding.
    fn state_words(&self) -> Vec<String> {
        let mut s = self.state.to_ascii_lowercase();
        let mut words = Vec::new();
        // sinfo-style suffixes: * not responding, ~ powered off, # powering
        // up, % powering down, $ maintenance, @ reboot pending, ! pending
        // power down, - planned.
        while let Some(c) = s.chars().last().filter(|c| "*~#%$@!^-".contains(*c)) {
            s.pop();
            words.push(
                match c {
                    '*' => "not_responding",
                    '~' => "powered_down",
                    '#' => "powering_up",
                    '%' => "powering_down",
                    '$' => "maintenance",
                    '@' => "reboot_requested",
                    '!' => "power_down",
                    '^' => "rebooting",
                    _ => "planned",
                }
                .to_owned(),
            );
        }
        words.extend(s.split('+').filter(|w| !w.is_empty()).map(str::to_owned));
        words
    }
}

#[cfg(test)]
mod tests {
    use nodecheck_core::outcome::Status;
    use nodecheck_core::target::Exit;

    use super::*;
    use crate::testing::*;

    const NODES: &str = "NodeName=node1 Arch=x86_64 CoresPerSocket=1 CPUAlloc=0 CPUTot=1 Gres=(null) NodeAddr=10.77.0.11 OS=Linux 6.1.0 #1 SMP RealMemory=100 State=IDLE Partitions=batch\n\
NodeName=node2 CPUTot=1 Gres=gpu:2 RealMemory=100 State=IDLE+DRAIN Partitions=batch Reason=nodecheck: healthy: file /run/fleet/healthy: does not exist [root@2026-12-06T23:28:01]\n\
NodeName=node3 CPUTot=2 Gres=(null) RealMemory=100 State=DOWN* Partitions=batch Reason=Not responding [slurm@2026-12-06T23:00:00]\n";

    fn live(out: &'static str) -> nodecheck_core::target::MemoryTarget {
        nodecheck_core::target::MemoryTarget::new()
            .kind(nodecheck_core::target::TargetKind::Live)
            .with(Need::Live)
            .exec_with(move |req| {
                let script = req.argv.last().cloned().unwrap_or_default();
                Ok(if script.ends_with("node") {
                    output(Exit::Code(0), out, "")
                } else {
                    output(
                        Exit::Code(0),
                        "PartitionName=batch AllowGroups=ALL State=UP TotalCPUs=4\nPartitionName=old State=DOWN\n",
                        "",
                    )
                })
            })
    }

    #[test]
    fn states_name_the_node_and_the_reason() {
        let c = check(&Slurm, "node[1-4]", vec![("cpus", eq_int(1))]);
        let e = run(&c, &live(NODES));
        let (st, msg) = result(&e, "registered");
        assert_eq!(st, Status::Fail);
        assert!(msg.contains("node4"), "{msg}");
        let (st, msg) = result(&e, "state");
        assert_eq!(st, Status::Fail);
        assert!(
            msg.contains("node2 IDLE+DRAIN (nodecheck: healthy: file"),
            "{msg}"
        );
        assert!(msg.contains("node3 DOWN* (Not responding"), "{msg}");
        assert!(!msg.contains("node1"), "{msg}");
        let (st, msg) = result(&e, "cpus");
        assert_eq!(st, Status::Fail);
        assert!(
            msg.contains("node3 \"2\"") && !msg.contains("node1"),
            "{msg}"
        );
    }

    #[test]
    fn expected_states_gres_and_partitions() {
        let c = check(
            &Slurm,
            "node[1-2]",
            vec![
                ("state", list(&["idle", "drain"])),
                ("gres", eq("gpu:2")),
                ("partitions", list(&["batch", "old", "none"])),
            ],
        );
        let e = run(&c, &live(NODES));
        assert_eq!(result(&e, "registered").0, Status::Pass);
        assert_eq!(result(&e, "state").0, Status::Pass);
        let (st, msg) = result(&e, "gres");
        assert_eq!(st, Status::Fail);
        assert!(msg.contains("node1 \"\""), "{msg}");
        let (st, msg) = result(&e, "partitions");
        assert_eq!(st, Status::Fail);
        assert!(
            msg.contains("old is DOWN") && msg.contains("none does not exist"),
            "{msg}"
        );
    }

    #[test]
    fn a_failing_scontrol_is_an_error_not_a_pass() {
        let t = nodecheck_core::target::MemoryTarget::new()
            .kind(nodecheck_core::target::TargetKind::Live)
            .with(Need::Live)
            .exec_with(|_| {
                Ok(output(
                    Exit::Code(1),
                    "",
                    "slurm_load_node error: Unable to contact slurm controller\n",
                ))
            });
        let c = check(&Slurm, "node1", vec![("cpus", eq_int(1))]);
        let e = run(&c, &t);
        let (st, msg) = result(&e, "registered");
        assert_eq!(st, Status::Error);
        assert!(msg.contains("Unable to contact"), "{msg}");
        assert_eq!(result(&e, "cpus").0, Status::Skip);
    }

    #[test]
    fn a_hostlist_typo_is_a_profile_error() {
        let c = check(&Slurm, "node[1-", vec![]);
        assert!(!Slurm.validate(&c).is_empty());
    }
}
