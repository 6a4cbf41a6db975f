//! `hardware`: what the live node's kernel sees of its CPUs, memory and
//! GPUs (NHC's `check_hw_cpuinfo`, `check_hw_physmem`, `check_hw_swap`).

use std::collections::BTreeSet;

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::{Actual, Matcher};
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::Check;
use nodecheck_core::run::Context;
use nodecheck_core::target::{Need, Target};

use crate::eval;
use crate::live::{self, gpu, read_attr, read_text};

pub struct Hardware;

const KEYS: &[Key] = &[
    Key::new(
        "cpus",
        Ty::Matcher(Compare::Quantity),
        "Online logical CPUs (hardware threads), as `nproc --all` counts the online ones: `64`, \
         `{ ge = 32 }`.",
    ),
    Key::new(
        "cores",
        Ty::Matcher(Compare::Quantity),
        "Physical cores of the online CPUs (threads of one core count once).",
    ),
    Key::new(
        "sockets",
        Ty::Matcher(Compare::Quantity),
        "CPU packages with an online CPU.",
    ),
    Key::new(
        "memory",
        Ty::Matcher(Compare::Amount),
        "Memory the kernel manages (`MemTotal`), a little below the installed size: a plain \
         value means at least (`\"250GiB\"` on a 256 GiB node).",
    ),
    Key::new(
        "swap",
        Ty::Matcher(Compare::Amount),
        "Swap space (`SwapTotal`); a plain value means at least, `{ eq = 0 }` for none.",
    ),
    Key::new(
        "gpus",
        Ty::Matcher(Compare::Quantity),
        "NVIDIA and AMD GPUs on the PCI bus, whether or not a driver answers for them: a GPU \
         that fell off the bus is missing here.",
    ),
];

const DOC: &str = r#"## What it checks

The node as its kernel sees it: online CPUs, cores and sockets from
`/sys/devices/system/cpu` (the same on every architecture, unlike
/proc/cpuinfo), memory and swap from /proc/meminfo, GPUs from the PCI
devices in /sys (display controllers made by NVIDIA or AMD; a server's BMC
graphics chip is not counted). A DIMM, a socket or a GPU that failed at
boot shows up here as a smaller number: the classic silent degradation a
health check must catch.

`hardware` is about the node as a whole, so it needs no subject: leave
`node` out (it only labels the check in reports).

`memory` and `swap` take amounts where a plain value means *at least*;
`MemTotal` is always a little below the installed size (the kernel and
firmware keep some), so write the floor you accept.

## Example

```toml
[vars]
cpus   = "64"
memory = "250GiB"

[[control]]
id = "hw"
title = "The node has all its CPUs and memory"
severity = "high"

  [[control.hardware]]
  cpus    = "${cpus}"
  sockets = 2
  memory  = "${memory}"
  swap    = { eq = 0 }

  [[control.hardware]]
  gpus = 4
```

## Targets

Live node only (`needs a live node` elsewhere).
"#;

impl Kind for Hardware {
    fn name(&self) -> &'static str {
        "hardware"
    }

    fn subject(&self) -> Key {
        Key::new(
            "node",
            Ty::Str,
            "Optional label for reports (default `node`): the check is about the whole node.",
        )
    }

    fn default_subject(&self) -> Option<&'static str> {
        Some("node")
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn needs(&self) -> Option<Need> {
        Some(Need::Live)
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let t = cx.target;
        let mut out = Vec::new();
        // The CPU topology is read once for cores and sockets.
        let mut topology: Option<Result<Topology, String>> = None;
        let mut meminfo: Option<Result<String, String>> = None;
        for p in eval::asserted(check, &[]) {
            let Some(m) = check.matcher(p.key) else {
                continue;
            };
            let r = match p.key {
                "cpus" => online_cpus(t).map(|c| count("cpus", m, c.len())),
                "cores" | "sockets" => {
                    topology
                        .get_or_insert_with(|| topology_of(t))
                        .clone()
                        .map(|topo| {
                            let n = if p.key == "cores" {
                                topo.cores
                            } else {
                                topo.sockets
                            };
                            count(p.key, m, n)
                        })
                }
                "memory" | "swap" => {
                    let field = if p.key == "memory" {
                        "MemTotal"
                    } else {
                        "SwapTotal"
                    };
                    meminfo
                        .get_or_insert_with(|| {
                            read_text(t, "/proc/meminfo").map_err(|e| live::at("/proc/meminfo", &e))
                        })
                        .clone()
                        .and_then(|text| {
                            meminfo_bytes(&text, field)
                                .ok_or_else(|| format!("/proc/meminfo has no {field} line"))
                        })
                        .map(|bytes| amount(p.key, m, bytes))
                }
                "gpus" => gpu::pci_gpus(t)
                    .map_err(|e| eval::io_text(&e))
                    .map(|g| count("gpus", m, g.len())),
                _ => continue,
            };
            out.push(r.unwrap_or_else(|e| PropertyResult::error(p.key, format!("{}: {e}", p.key))));
        }
        out.into()
    }
}

fn count(key: &str, m: &Matcher, n: usize) -> PropertyResult {
    eval::matched(
        key,
        m,
        Actual::Int(i64::try_from(n).unwrap_or(i64::MAX)),
        n.to_string(),
    )
}

fn amount(key: &str, m: &Matcher, bytes: u64) -> PropertyResult {
    #[expect(clippy::cast_precision_loss, reason = "bytes, compared as amounts")]
    let actual = Actual::Amount {
        value: bytes as f64,
        total: None,
    };
    eval::matched(key, m, actual, actual.to_string())
}

/// The online CPUs, from /sys/devices/system/cpu/online.
fn online_cpus(t: &dyn Target) -> Result<Vec<u32>, String> {
    const ONLINE: &str = "/sys/devices/system/cpu/online";
    let text = read_attr(t, ONLINE).map_err(|e| live::at(ONLINE, &e))?;
    live::parse_cpu_list(&text).ok_or_else(|| format!("{ONLINE}: cannot parse {text:?}"))
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Topology {
    cores: usize,
    sockets: usize,
}

/// Cores and sockets of the online CPUs, from each CPU's topology files.
fn topology_of(t: &dyn Target) -> Result<Topology, String> {
    let mut cores = BTreeSet::new();
    let mut sockets = BTreeSet::new();
    for cpu in online_cpus(t)? {
        let dir = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
        let read = |name: &str| -> Result<i64, String> {
            let path = format!("{dir}/{name}");
            let v = read_attr(t, &path).map_err(|e| live::at(&path, &e))?;
            v.parse().map_err(|_| format!("{path}: cannot parse {v:?}"))
        };
        let package = read("physical_package_id")?;
        let core = read("core_id")?;
        sockets.insert(package);
        cores.insert((package, core));
    }
    Ok(Topology {
        cores: cores.len(),
        sockets: sockets.len(),
    })
}

/// A /proc/meminfo field in bytes (`MemTotal:   16318268 kB`).
fn meminfo_bytes(text: &str, field: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.split(':').next() == Some(field))?;
    let mut words = line.split(':').nth(1)?.split_whitespace();
    let n: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => n.checked_mul(1024),
        None => Some(n),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use nodecheck_core::matcher::Pred;
    use nodecheck_core::outcome::Status::{Error, Fail, Pass};
    use nodecheck_core::profile::Value;
    use nodecheck_core::target::{MemoryTarget, TargetKind};

    use super::*;
    use crate::testing::*;

    fn cpu(t: MemoryTarget, n: u32, package: u32, core: u32) -> MemoryTarget {
        let d = format!("/sys/devices/system/cpu/cpu{n}/topology");
        t.file(
            &format!("{d}/physical_package_id"),
            0o444,
            0,
            0,
            format!("{package}\n"),
        )
        .file(&format!("{d}/core_id"), 0o444, 0, 0, format!("{core}\n"))
    }

    /// Two sockets of two cores with two threads each; CPU 7 offline.
    fn node() -> MemoryTarget {
        let mut t = MemoryTarget::new()
            .kind(TargetKind::Live)
            .with(Need::Live)
            .file("/sys/devices/system/cpu/online", 0o444, 0, 0, "0-6\n")
            .file(
                "/proc/meminfo",
                0o444,
                0,
                0,
                "MemTotal:       263699100 kB\nMemFree:        1 kB\nSwapTotal:             0 kB\n",
            )
            .dir("/sys/bus/pci/devices", 0o755, 0, 0);
        for (n, pkg, core) in [
            (0, 0, 0),
            (1, 0, 1),
            (2, 1, 0),
            (3, 1, 1),
            (4, 0, 0),
            (5, 0, 1),
            (6, 1, 0),
            (7, 1, 1),
        ] {
            t = cpu(t, n, pkg, core);
        }
        t
    }

    fn amount_ge(q: &str) -> Value {
        Value::Matcher(Matcher {
            preds: vec![Pred::Ge(q.into())],
            compare: Compare::Amount,
        })
    }

    fn hw(props: Vec<(&str, Value)>, t: &MemoryTarget) -> Evaluation {
        run(&check(&Hardware, "node", props), t)
    }

    #[test]
    fn counts_cpus_cores_sockets_and_gpus() {
        let e = hw(
            vec![
                ("cpus", eq_int(7)),
                ("cores", eq_int(4)),
                ("sockets", eq_int(2)),
                ("gpus", eq_int(0)),
            ],
            &node(),
        );
        assert!(
            e.properties.iter().all(|p| p.status == Pass),
            "{:#?}",
            e.properties
        );
        let e = hw(vec![("cpus", eq_int(8))], &node());
        assert_eq!(result(&e, "cpus"), (Fail, "cpus: expected 8, got 7".into()));
    }

    #[test]
    fn memory_and_swap_are_amounts() {
        let e = hw(
            vec![("memory", amount_ge("250GiB")), ("swap", amount_ge("1GiB"))],
            &node(),
        );
        assert_eq!(result(&e, "memory").0, Pass);
        assert_eq!(
            result(&e, "swap"),
            (Fail, "swap: expected >= 1GiB, got 0B".into())
        );
        let e = hw(vec![("memory", amount_ge("256GiB"))], &node());
        assert_eq!(
            result(&e, "memory"),
            (Fail, "memory: expected >= 256GiB, got 251.5GiB".into())
        );
        assert_eq!(meminfo_bytes("MemTotal: 12", "MemTotal"), Some(12));
        assert_eq!(meminfo_bytes("MemTotal: 1 MB", "MemTotal"), None);
    }

    #[test]
    fn unreadable_sources_are_errors_naming_the_file() {
        let t = MemoryTarget::new().kind(TargetKind::Live).with(Need::Live);
        let e = hw(vec![("cpus", eq_int(1)), ("memory", amount_ge("1GiB"))], &t);
        assert_eq!(result(&e, "cpus").0, Error);
        assert!(
            result(&e, "cpus")
                .1
                .starts_with("cpus: /sys/devices/system/cpu/online: ")
        );
        assert!(
            result(&e, "memory")
                .1
                .starts_with("memory: /proc/meminfo: ")
        );
        let t = node().file("/sys/devices/system/cpu/online", 0o444, 0, 0, "zero\n");
        assert!(
            result(&hw(vec![("sockets", eq_int(1))], &t), "sockets")
                .1
                .contains("cannot parse")
        );
    }
}
