//! `slurm`: the scheduler's own view of nodes and partitions, for cluster
//! acceptance from a login node.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

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

Asks the scheduler (Slurm's own clients, run in the target like a
`command` check, so from a login node or any node with Slurm's client and
configuration) about a node or a Slurm hostlist of nodes (`node[001-128]`):

- every node of the list is registered with the controller;
- each one's state is one of `state` (by default up: idle, mixed,
  allocated or completing, with no flag such as `drain` or `*`, not
  responding); a node that is not shows its state and Slurm's reason;
- `cpus`, `real_memory` and `gres` as the scheduler sees them (what
  slurm.conf says, which slurmd has checked against the node);
- `partitions` exist, are `UP` and hold the nodes.

Each property names the offending nodes (at most ten, then a count).

The nodes are read from `sinfo --json` where the installed Slurm has it
(the serializer_json plugin, Slurm 21.08 to 22.05's `nodes` list), else
from the one-line text of `scontrol -o show node`, which every Slurm has;
which one works is found once per run, and `registered` says which was
read. Partitions come from `scontrol -o show partition` (Slurm 22.05 has
no JSON form of it).

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
        let (known, form) = match nodes(check, cx) {
            Ok(n) => n,
            Err(e) => return refused(check, e),
        };
        let from = form.command();
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
                format!("registered: {} nodes ({from})", found.len()),
            )
        } else {
            PropertyResult::verdict(
                "registered",
                false,
                format!(
                    "registered: not known to the controller ({from}): {}",
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
    let text = match client(check, cx, "scontrol -o show partition") {
        Ok(t) => t,
        Err(e) => return PropertyResult::error("partitions", e.message),
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

/// How the scheduler's node table was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// `sinfo --json`: Slurm 21.08 to 22.05 with the serializer_json plugin.
    Json,
    /// `scontrol -o show node`: every Slurm.
    Text,
}

impl Form {
    fn command(self) -> &'static str {
        match self {
            Form::Json => "sinfo --json",
            Form::Text => "scontrol -o show node",
        }
    }
}

/// The form that answered, per `env` of the check (another `SLURM_CONF`
/// may be another Slurm), kept in the target's memo: found once per run.
#[derive(Default)]
struct Forms(Mutex<HashMap<Vec<(String, String)>, Form>>);

/// Every node the controller knows, and the form they were read in:
/// `sinfo --json` unless this run found it does not work here, else the
/// text of `scontrol -o show node`.
fn nodes(check: &Check, cx: &Context<'_>) -> Result<(Vec<NodeLine>, Form), String> {
    let env = exec::env_of(check);
    let forms = cx.target.memo().map(|m| m.get::<Forms>());
    let lock = |f: &Forms| {
        f.0.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&env)
            .copied()
    };
    let known = forms.as_deref().and_then(lock);
    let remember = |form: Form| {
        if let Some(f) = &forms {
            f.0.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(env.clone(), form);
        }
    };
    if known != Some(Form::Text) {
        match client(check, cx, Form::Json.command()) {
            Ok(text) => {
                if let Ok(nodes) = from_json(&text) {
                    remember(Form::Json);
                    return Ok((nodes, Form::Json));
                }
            }
            // A controller that does not answer within the timeout will
            // not answer scontrol either: say so once, not after twice
            // the wait.
            Err(e) if e.timed_out => return Err(e.message),
            Err(_) => {}
        }
    }
    let text = client(check, cx, Form::Text.command()).map_err(|e| e.message)?;
    remember(Form::Text);
    Ok((
        text.lines().filter_map(NodeLine::parse).collect(),
        Form::Text,
    ))
}

/// The nodes of `sinfo --json` (Slurm 22.05's `openapi/v0.0.38` format:
/// `state` a word and `state_flags` a list; a list `state` as newer
/// formats have is read too). Why not, when it is not that.
fn from_json(text: &str) -> Result<Vec<NodeLine>, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("sinfo --json: not JSON: {e}"))?;
    if let Some(errors) = v.get("errors").and_then(|e| e.as_array())
        && !errors.is_empty()
    {
        return Err(format!(
            "sinfo --json: errors: {}",
            serde_json::Value::from(errors.clone())
        ));
    }
    let list = v
        .get("nodes")
        .and_then(|n| n.as_array())
        .ok_or("sinfo --json: no `nodes` list")?;
    Ok(list.iter().filter_map(NodeLine::from_json).collect())
}

/// Why a Slurm client gave no answer.
struct Refusal {
    message: String,
    timed_out: bool,
}

/// The most output of one Slurm client read: `sinfo --json` writes about
/// 1.5 KB a node, so 64 MiB holds some 40,000 nodes. (The default of a
/// command, 128 KiB, held some 90: the nodes in the middle of a larger
/// cluster's answer were dropped and reported as not registered.)
const OUTPUT_LIMIT: usize = 64 << 20;

/// `command` (a Slurm client) in the target; its whole output, or why not.
fn client(check: &Check, cx: &Context<'_>, command: &str) -> Result<String, Refusal> {
    let mut req = ExecRequest::new(exec::argv("sh -c", false, &format!("exec {command}")))
        .output_limit(OUTPUT_LIMIT);
    req.env = exec::env_of(check);
    let out = exec::run(check, cx, req, "registered").map_err(|p| Refusal {
        message: p.message,
        timed_out: false,
    })?;
    if out.timed_out {
        return Err(Refusal {
            message: format!("{command}: {}", exec::ended(&out, check)),
            timed_out: true,
        });
    }
    match out.exit {
        // A part of the node table would read as nodes not registered.
        Exit::Code(0) if out.stdout.dropped > 0 => Err(Refusal {
            message: format!(
                "{command}: its output is larger than {} MiB: not read",
                OUTPUT_LIMIT >> 20
            ),
            timed_out: false,
        }),
        Exit::Code(0) => Ok(out.stdout.text()),
        _ => Err(Refusal {
            message: format!(
                "{command}: {}: {}",
                exec::ended(&out, check),
                exec::excerpt(&out.stderr.text())
            ),
            timed_out: false,
        }),
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

    /// One node of `sinfo --json`, its state written as scontrol writes
    /// it (`IDLE+DRAIN`), so that messages read the same from both forms.
    fn from_json(v: &serde_json::Value) -> Option<NodeLine> {
        let text = |k: &str| match v.get(k) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let list = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(|l| l.as_array())
                .map(|l| {
                    l.iter()
                        .filter_map(|w| w.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let state: Vec<String> = match v.get("state") {
            Some(serde_json::Value::String(base)) => std::iter::once(base.clone())
                .chain(list("state_flags"))
                .collect(),
            _ => list("state"),
        };
        Some(NodeLine {
            name: v.get("name")?.as_str()?.to_owned(),
            state: state.join("+").to_ascii_uppercase(),
            reason: text("reason"),
            cpus: text("cpus"),
            real_memory: text("real_memory"),
            gres: text("gres"),
            partitions: list("partitions").join(","),
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
    use nodecheck_core::profile::Value;
    use nodecheck_core::target::Exit;

    use super::*;
    use crate::testing::*;

    const NODES: &str = "NodeName=node1 Arch=x86_64 CoresPerSocket=1 CPUAlloc=0 CPUTot=1 Gres=(null) NodeAddr=10.77.0.11 OS=Linux 6.1.0 #1 SMP RealMemory=100 State=IDLE Partitions=batch\n\
NodeName=node2 CPUTot=1 Gres=gpu:2 RealMemory=100 State=IDLE+DRAIN Partitions=batch Reason=nodecheck: healthy: file /run/fleet/healthy: does not exist [root@2026-12-06T23:28:01]\n\
NodeName=node3 CPUTot=2 Gres=(null) RealMemory=100 State=DOWN* Partitions=batch Reason=Not responding [slurm@2026-12-06T23:00:00]\n";

    const PARTITIONS: &str =
        "PartitionName=batch AllowGroups=ALL State=UP TotalCPUs=4\nPartitionName=old State=DOWN\n";

    /// Captured from the four-node cluster of tests/fleet/cluster.sh
    /// (Slurm 22.05.8) with node2 drained by nodecheck, node3's slurmd
    /// stopped and node4 drained by an admin.
    const SINFO_JSON: &str = include_str!("slurm/sinfo-22.05.json");
    const SCONTROL_NODES: &str = include_str!("slurm/scontrol-node-22.05.txt");
    const SCONTROL_PARTITIONS: &str = include_str!("slurm/scontrol-partition-22.05.txt");

    type Calls = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

    /// A live target whose Slurm answers `sinfo --json` with `json`
    /// (`None`: a Slurm without it), `scontrol -o show node` with `nodes`
    /// and `scontrol -o show partition` with `parts`; the commands asked
    /// are recorded.
    fn slurm(
        json: Option<nodecheck_core::target::ExecOutput>,
        nodes: &'static str,
        parts: &'static str,
    ) -> (nodecheck_core::target::MemoryTarget, Calls) {
        let calls = Calls::default();
        let seen = calls.clone();
        let t = nodecheck_core::target::MemoryTarget::new()
            .kind(nodecheck_core::target::TargetKind::Live)
            .with(Need::Live)
            .exec_with(move |req| {
                let script = req.argv.last().cloned().unwrap_or_default();
                seen.lock().unwrap().push(script.clone());
                Ok(match script.as_str() {
                    "exec sinfo --json" => json.clone().unwrap_or_else(|| {
                        output(
                            Exit::Code(1),
                            "",
                            "sinfo: unrecognized option '--json'\nTry \"sinfo --help\" for more information\n",
                        )
                    }),
                    "exec scontrol -o show node" => output(Exit::Code(0), nodes, ""),
                    "exec scontrol -o show partition" => output(Exit::Code(0), parts, ""),
                    other => panic!("unexpected command {other}"),
                })
            });
        (t, calls)
    }

    fn live(out: &'static str) -> nodecheck_core::target::MemoryTarget {
        slurm(None, out, PARTITIONS).0
    }

    /// The same cluster read both ways gives the same nodes (scontrol
    /// appends `[user@time]` to a reason).
    #[test]
    fn real_json_and_text_of_slurm_22_05_read_alike() {
        let json = from_json(SINFO_JSON).unwrap();
        let text: Vec<NodeLine> = SCONTROL_NODES.lines().filter_map(NodeLine::parse).collect();
        assert_eq!(json.len(), 4);
        assert_eq!(json.len(), text.len());
        for (j, t) in json.iter().zip(&text) {
            assert!(t.reason.starts_with(&j.reason), "{j:?} {t:?}");
            let fields = |n: &NodeLine| {
                [
                    &n.name,
                    &n.state,
                    &n.cpus,
                    &n.real_memory,
                    &n.gres,
                    &n.partitions,
                ]
                .map(|f| f.clone())
            };
            assert_eq!(fields(j), fields(t));
        }
        assert_eq!(json[1].state, "IDLE+DRAIN");
        assert_eq!(json[2].state_words(), ["idle", "not_responding"]);
        assert_eq!(json[0].partitions, "batch");
        assert_eq!(
            (
                json[0].cpus.as_str(),
                json[0].real_memory.as_str(),
                json[0].gres.as_str()
            ),
            ("1", "100", "")
        );
    }

    #[test]
    fn the_json_form_where_slurm_has_it_found_once_per_run() {
        let (t, calls) = slurm(
            Some(output(Exit::Code(0), SINFO_JSON, "")),
            SCONTROL_NODES,
            SCONTROL_PARTITIONS,
        );
        let c = check(
            &Slurm,
            "node[1-4]",
            vec![
                ("cpus", eq_int(1)),
                ("real_memory", eq_int(100)),
                ("gres", eq("")),
                ("partitions", list(&["batch"])),
            ],
        );
        let e = run(&c, &t);
        let (st, msg) = result(&e, "registered");
        assert_eq!(st, Status::Pass);
        assert_eq!(msg, "registered: 4 nodes (sinfo --json)");
        let (st, msg) = result(&e, "state");
        assert_eq!(st, Status::Fail);
        assert!(
            msg.contains(
                "node2 IDLE+DRAIN (nodecheck: healthy: file /run/fleet/healthy: does not exist)"
            ) && msg.contains("node3 IDLE+NOT_RESPONDING")
                && msg.contains("node4 IDLE+DRAIN (admin: replacing DIMM B2)")
                && !msg.contains("node1"),
            "{msg}"
        );
        for key in ["cpus", "real_memory", "gres", "partitions"] {
            assert_eq!(
                result(&e, key).0,
                Status::Pass,
                "{key}: {:?}",
                result(&e, key)
            );
        }
        let c = check(&Slurm, "node5", vec![]);
        let (st, msg) = result(&run(&c, &t), "registered");
        assert_eq!(st, Status::Fail);
        assert_eq!(
            msg,
            "registered: not known to the controller (sinfo --json): node5"
        );
        assert_eq!(
            *calls.lock().unwrap(),
            [
                "exec sinfo --json",
                "exec scontrol -o show partition",
                "exec sinfo --json"
            ]
        );
    }

    #[test]
    fn without_the_json_form_the_text_is_read_and_the_probe_not_repeated() {
        let (t, calls) = slurm(None, SCONTROL_NODES, SCONTROL_PARTITIONS);
        let c = check(
            &Slurm,
            "node[1-4]",
            vec![("state", list(&["idle", "drain", "not_responding"]))],
        );
        for _ in 0..2 {
            let e = run(&c, &t);
            assert_eq!(
                result(&e, "registered"),
                (
                    Status::Pass,
                    "registered: 4 nodes (scontrol -o show node)".to_string()
                )
            );
            assert_eq!(result(&e, "state").0, Status::Pass);
        }
        assert_eq!(
            *calls.lock().unwrap(),
            [
                "exec sinfo --json",
                "exec scontrol -o show node",
                "exec scontrol -o show node"
            ]
        );
        // Another SLURM_CONF may be another Slurm: asked afresh.
        let mut env = std::collections::BTreeMap::new();
        env.insert("SLURM_CONF".to_string(), "/other/slurm.conf".to_string());
        let c = check(&Slurm, "node1", vec![("env", Value::Map(env))]);
        run(&c, &t);
        assert_eq!(calls.lock().unwrap()[3], "exec sinfo --json");
    }

    #[test]
    fn json_that_is_not_the_known_format_falls_back_to_the_text() {
        for json in [
            "sinfo: garbage",
            r#"{"meta":{},"errors":[],"sinfo":[]}"#,
            r#"{"errors":[{"error":"x"}],"nodes":[]}"#,
        ] {
            let out: &'static str = Box::leak(json.to_string().into_boxed_str());
            let (t, _) = slurm(
                Some(output(Exit::Code(0), out, "")),
                SCONTROL_NODES,
                SCONTROL_PARTITIONS,
            );
            let c = check(&Slurm, "node1", vec![]);
            assert_eq!(
                result(&run(&c, &t), "registered").1,
                "registered: 1 nodes (scontrol -o show node)",
                "{json}"
            );
        }
    }

    /// A cluster of 2,000 nodes: every node read, none lost to the
    /// output limit of a command; an answer cut short is an error, never
    /// a partial node table.
    #[test]
    fn a_large_cluster_is_read_whole() {
        let line = SCONTROL_NODES.lines().next().unwrap();
        let big: String = (1..=2000)
            .map(|i| line.replace("NodeName=node1 ", &format!("NodeName=node{i} ")) + "\n")
            .collect();
        assert!(big.len() > 1 << 20);
        let big: &'static str = Box::leak(big.into_boxed_str());
        let calls = Calls::default();
        let seen = calls.clone();
        let t = nodecheck_core::target::MemoryTarget::new()
            .kind(nodecheck_core::target::TargetKind::Live)
            .with(Need::Live)
            .exec_with(move |req| {
                seen.lock().unwrap().push(req.output_limit.to_string());
                let mut o = output(Exit::Code(0), "", "");
                if req.argv.last().unwrap().ends_with("--json") {
                    return Ok(output(
                        Exit::Code(1),
                        "",
                        "sinfo: unrecognized option '--json'",
                    ));
                }
                o.stdout.push(big.as_bytes(), req.output_limit);
                Ok(o)
            });
        let c = check(&Slurm, "node[1-2000]", vec![]);
        assert_eq!(
            result(&run(&c, &t), "registered"),
            (
                Status::Pass,
                "registered: 2000 nodes (scontrol -o show node)".to_string()
            )
        );
        assert!(
            calls
                .lock()
                .unwrap()
                .iter()
                .all(|l| l == &OUTPUT_LIMIT.to_string())
        );

        let mut cut = output(Exit::Code(0), "", "");
        cut.stdout.push(big.as_bytes(), 128 << 10);
        let t = nodecheck_core::target::MemoryTarget::new()
            .kind(nodecheck_core::target::TargetKind::Live)
            .with(Need::Live)
            .exec_with(move |_| Ok(cut.clone()));
        let (st, msg) = result(&run(&c, &t), "registered");
        assert_eq!(st, Status::Error);
        assert!(msg.contains("larger than 64 MiB: not read"), "{msg}");
    }

    #[test]
    fn a_controller_that_hangs_is_waited_for_once() {
        let mut hung = output(Exit::Signal(9), "", "");
        hung.timed_out = true;
        let (t, calls) = slurm(Some(hung), SCONTROL_NODES, SCONTROL_PARTITIONS);
        let c = check(&Slurm, "node1", vec![("cpus", eq_int(1))]);
        let e = run(&c, &t);
        let (st, msg) = result(&e, "registered");
        assert_eq!(st, Status::Error);
        assert!(msg.starts_with("sinfo --json: "), "{msg}");
        assert_eq!(*calls.lock().unwrap(), ["exec sinfo --json"]);
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
