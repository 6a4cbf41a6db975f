//! `infiniband`: the InfiniBand (and RoCE) ports of the live node are up
//! at the right rate (NHC's `check_hw_ib`).

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::{Actual, Matcher};
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::run::Context;
use nodecheck_core::target::{FileType, Need, Target};

use crate::eval;
use crate::live::{self, read_attr};

pub struct Infiniband;

const KEYS: &[Key] = &[
    Key::new(
        "port",
        Ty::Int,
        "Only this port of the device (1, 2, …); default: every port.",
    )
    .modifier(),
    Key::new(
        "required",
        Ty::Bool,
        "Default `true`: a node without the device (or without any InfiniBand device, for \
         `\"*\"`) fails. `false`: such a node skips the check, for profiles shared by nodes \
         with and without a fabric.",
    )
    .modifier(),
    Key::new(
        "state",
        Ty::Matcher(Compare::Version),
        "Logical port state: `ACTIVE`, `INIT` (no subnet manager), `DOWN`, `ARMED`.",
    ),
    Key::new(
        "phys_state",
        Ty::Matcher(Compare::Version),
        "Physical port state: `LinkUp`, `Polling`, `Disabled`, …",
    ),
    Key::new(
        "rate",
        Ty::Matcher(Compare::Quantity),
        "Port rate in Gb/s: `200` (HDR), `{ ge = 100 }`.",
    ),
];

const DOC: &str = r#"## What it checks

The ports of an InfiniBand (or RoCE) device of the live node, from
`/sys/class/infiniband/<device>/ports/<n>/` — what `ibstat` shows, without
needing it. `device = "*"` checks every port of every device. Each property
holds only when it holds on every port checked; a failure names the ports
that are wrong (`mlx5_1/1 DOWN`).

A node without the device fails with a message saying so, unless the check
says `required = false`: then it is skipped, so one profile serves nodes
with and without a fabric.

## Example

```toml
[[control]]
id = "ib-ports"
title = "Every InfiniBand port is active at HDR"
severity = "high"

  [[control.infiniband]]
  device     = "*"
  state      = "ACTIVE"
  phys_state = "LinkUp"
  rate       = { ge = 200 }
  required   = false

  [[control.infiniband]]
  device = "mlx5_0"
  port   = 1
  state  = "ACTIVE"
```

## Targets

Live node only (`needs a live node` elsewhere).
"#;

const CLASS: &str = "/sys/class/infiniband";

impl Kind for Infiniband {
    fn name(&self) -> &'static str {
        "infiniband"
    }

    fn subject(&self) -> Key {
        Key::new(
            "device",
            Ty::Str,
            "The HCA (`mlx5_0`), or `\"*\"` for every device of the node.",
        )
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

    fn validate(&self, check: &Check) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        if check.subject != "*" && !live::is_component(&check.subject) {
            out.push(eval::diagnostic(
                check,
                "device",
                "bad-value",
                format!("{:?} is not an InfiniBand device name", check.subject),
            ));
        }
        if check.int("port").is_some_and(|p| p < 1) {
            out.push(eval::diagnostic(
                check,
                "port",
                "bad-value",
                "`port` numbers start at 1".to_string(),
            ));
        }
        out
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let t = cx.target;
        let ports = match ports(t, &check.subject, check.int("port")) {
            Ok(p) => p,
            Err(Missing::Absent(why)) => {
                let required = check.bool("required").unwrap_or(true);
                let mut props = eval::asserted(check, &[]);
                let mut out = Vec::new();
                if required && let Some(first) = props.next() {
                    out.push(PropertyResult::verdict(
                        first.key,
                        false,
                        format!("{}: {why}", first.key),
                    ));
                }
                out.extend(props.map(|p| PropertyResult::skip(p.key, why.clone())));
                return out.into();
            }
            Err(Missing::Unreadable(e)) => {
                let mut props = eval::asserted(check, &[]);
                let first = props.next().map_or("state", |p| p.key);
                let mut out = vec![PropertyResult::error(first, e)];
                out.extend(
                    props
                        .map(|p| PropertyResult::skip(p.key, "InfiniBand ports could not be read")),
                );
                return out.into();
            }
        };
        let mut out = Vec::new();
        for p in eval::asserted(check, &[]) {
            let Some(m) = check.matcher(p.key) else {
                continue;
            };
            out.push(property(t, p.key, m, &ports));
        }
        out.into()
    }
}

/// One port: `mlx5_0/1` and its sysfs directory.
struct IbPort {
    name: String,
    dir: String,
}

enum Missing {
    /// No such device or port: fail or skip by `required`.
    Absent(String),
    /// /sys could not be read.
    Unreadable(String),
}

fn list(t: &dyn Target, dir: &str) -> Result<Option<Vec<String>>, Missing> {
    match t.read_dir(dir) {
        Ok(entries) => Ok(Some(
            entries
                .into_iter()
                .filter(|e| matches!(e.file_type, FileType::Directory | FileType::Symlink))
                .map(|e| e.name)
                .collect(),
        )),
        Err(e) if eval::is_absent(&e) => Ok(None),
        Err(e) => Err(Missing::Unreadable(live::at(dir, &e))),
    }
}

fn ports(t: &dyn Target, device: &str, only: Option<i64>) -> Result<Vec<IbPort>, Missing> {
    let devices = list(t, CLASS)?.unwrap_or_default();
    if devices.is_empty() {
        return Err(Missing::Absent("no InfiniBand devices on this node".into()));
    }
    let wanted: Vec<String> = if device == "*" {
        devices.clone()
    } else if devices.iter().any(|d| d == device) {
        vec![device.to_string()]
    } else {
        return Err(Missing::Absent(format!(
            "no InfiniBand device {device} (this node has {})",
            devices.join(", ")
        )));
    };
    let mut out = Vec::new();
    for dev in wanted {
        let pdir = format!("{CLASS}/{dev}/ports");
        let mut numbers: Vec<u32> = list(t, &pdir)?
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        numbers.sort_unstable();
        for n in numbers {
            if only.is_some_and(|o| o != i64::from(n)) {
                continue;
            }
            out.push(IbPort {
                name: format!("{dev}/{n}"),
                dir: format!("{pdir}/{n}"),
            });
        }
    }
    if out.is_empty() {
        let which = match only {
            Some(p) => format!("no port {p} on InfiniBand device {device}"),
            None => format!("InfiniBand device {device} has no ports"),
        };
        return Err(Missing::Absent(which));
    }
    Ok(out)
}

/// `4: ACTIVE` → `ACTIVE`; `100 Gb/sec (4X EDR)` stays whole.
fn attr(t: &dyn Target, port: &IbPort, key: &str) -> Result<String, String> {
    let path = format!("{}/{key}", port.dir);
    let v = read_attr(t, &path).map_err(|e| live::at(&path, &e))?;
    Ok(match key {
        "state" | "phys_state" => v
            .split_once(':')
            .map_or(v.as_str(), |(_, s)| s)
            .trim()
            .to_string(),
        _ => v,
    })
}

/// The number of Gb/s in `100 Gb/sec (4X EDR)`.
fn gbps(rate: &str) -> Option<f64> {
    rate.split_whitespace().next()?.parse().ok()
}

fn property(t: &dyn Target, key: &str, m: &Matcher, ports: &[IbPort]) -> PropertyResult {
    let mut wrong = Vec::new();
    let mut all = Vec::new();
    for p in ports {
        let v = match attr(t, p, key) {
            Ok(v) => v,
            Err(e) => return PropertyResult::error(key, format!("{key}: {e}")),
        };
        let ok = if key == "rate" {
            match gbps(&v) {
                Some(g) => m.test(Actual::Amount {
                    value: g,
                    total: None,
                }),
                None => false,
            }
        } else {
            m.test(Actual::Str(&v))
        };
        let shown = format!("{} {v}", p.name);
        if !ok {
            wrong.push(shown.clone());
        }
        all.push(shown);
    }
    if wrong.is_empty() {
        PropertyResult::compare(key, true, m.describe(), eval::capped(&all))
    } else {
        PropertyResult::compare(key, false, m.describe(), eval::capped(&wrong))
    }
}

#[cfg(test)]
mod tests {
    use nodecheck_core::matcher::Pred;
    use nodecheck_core::outcome::Status::{Error, Fail, Pass, Skip};
    use nodecheck_core::profile::Value;
    use nodecheck_core::target::{MemoryTarget, TargetKind};

    use super::*;
    use crate::testing::*;

    fn port(
        t: MemoryTarget,
        dev: &str,
        n: u32,
        state: &str,
        phys: &str,
        rate: &str,
    ) -> MemoryTarget {
        let d = format!("/sys/devices/pci0000:00/{dev}/infiniband/{dev}/ports/{n}");
        t.file(&format!("{d}/state"), 0o444, 0, 0, format!("{state}\n"))
            .file(&format!("{d}/phys_state"), 0o444, 0, 0, format!("{phys}\n"))
            .file(&format!("{d}/rate"), 0o444, 0, 0, format!("{rate}\n"))
    }

    fn fabric() -> MemoryTarget {
        let t = MemoryTarget::new().kind(TargetKind::Live).with(Need::Live);
        let t = port(
            t,
            "mlx5_0",
            1,
            "4: ACTIVE",
            "5: LinkUp",
            "200 Gb/sec (4X HDR)",
        );
        let t = port(
            t,
            "mlx5_1",
            1,
            "1: DOWN",
            "3: Disabled",
            "10 Gb/sec (4X SDR)",
        );
        let t = port(
            t,
            "mlx5_1",
            2,
            "4: ACTIVE",
            "5: LinkUp",
            "200 Gb/sec (4X HDR)",
        );
        t.symlink(
            "/sys/class/infiniband/mlx5_0",
            "../../devices/pci0000:00/mlx5_0/infiniband/mlx5_0",
        )
        .symlink(
            "/sys/class/infiniband/mlx5_1",
            "../../devices/pci0000:00/mlx5_1/infiniband/mlx5_1",
        )
    }

    fn ge(q: &str) -> Value {
        preds(vec![Pred::Ge(q.into())])
    }

    #[test]
    fn every_port_or_one_port() {
        let e = run(
            &check(
                &Infiniband,
                "mlx5_0",
                vec![
                    ("state", eq("ACTIVE")),
                    ("phys_state", eq("LinkUp")),
                    ("rate", ge("100")),
                ],
            ),
            &fabric(),
        );
        assert!(
            e.properties.iter().all(|p| p.status == Pass),
            "{:#?}",
            e.properties
        );
        assert_eq!(
            result(&e, "state").1,
            "state: expected ACTIVE, got mlx5_0/1 ACTIVE"
        );
        let e = run(
            &check(
                &Infiniband,
                "*",
                vec![("state", eq("ACTIVE")), ("rate", ge("100"))],
            ),
            &fabric(),
        );
        assert_eq!(
            result(&e, "state"),
            (Fail, "state: expected ACTIVE, got mlx5_1/1 DOWN".into())
        );
        assert_eq!(
            result(&e, "rate"),
            (
                Fail,
                "rate: expected >= 100, got mlx5_1/1 10 Gb/sec (4X SDR)".into()
            )
        );
        let e = run(
            &check(
                &Infiniband,
                "mlx5_1",
                vec![("port", int(2)), ("state", eq("ACTIVE"))],
            ),
            &fabric(),
        );
        assert_eq!(result(&e, "state").0, Pass);
        let e = run(
            &check(
                &Infiniband,
                "mlx5_1",
                vec![("port", int(3)), ("state", eq("ACTIVE"))],
            ),
            &fabric(),
        );
        assert_eq!(
            result(&e, "state"),
            (Fail, "state: no port 3 on InfiniBand device mlx5_1".into())
        );
    }

    #[test]
    fn absent_hardware_fails_or_skips_as_asked() {
        let none = MemoryTarget::new().kind(TargetKind::Live).with(Need::Live);
        let c = check(
            &Infiniband,
            "*",
            vec![("state", eq("ACTIVE")), ("rate", ge("100"))],
        );
        assert_eq!(
            results(&run(&c, &none)),
            vec![
                (
                    "state".into(),
                    Fail,
                    "state: no InfiniBand devices on this node".into()
                ),
                (
                    "rate".into(),
                    Skip,
                    "no InfiniBand devices on this node".into()
                ),
            ]
        );
        let c = check(
            &Infiniband,
            "*",
            vec![("state", eq("ACTIVE")), ("required", b(false))],
        );
        assert_eq!(
            results(&run(&c, &none)),
            vec![(
                "state".into(),
                Skip,
                "no InfiniBand devices on this node".into()
            )]
        );
        let c = check(&Infiniband, "mlx5_9", vec![("state", eq("ACTIVE"))]);
        assert_eq!(
            result(&run(&c, &fabric()), "state").1,
            "state: no InfiniBand device mlx5_9 (this node has mlx5_0, mlx5_1)"
        );
    }

    #[test]
    fn unreadable_attributes_are_errors() {
        let t = fabric().deny("/sys/devices/pci0000:00/mlx5_0/infiniband/mlx5_0/ports/1");
        let e = run(
            &check(&Infiniband, "mlx5_0", vec![("state", eq("ACTIVE"))]),
            &t,
        );
        assert_eq!(result(&e, "state").0, Error);
    }

    #[test]
    fn validation() {
        let c = check(&Infiniband, "../x", vec![("state", eq("ACTIVE"))]);
        assert!(messages(&Infiniband.validate(&c))[0].starts_with("bad-value"));
        let c = check(
            &Infiniband,
            "mlx5_0",
            vec![("port", int(0)), ("state", eq("ACTIVE"))],
        );
        assert!(messages(&Infiniband.validate(&c))[0].starts_with("bad-value"));
        assert_eq!(gbps("56 Gb/sec (4X FDR)"), Some(56.0));
    }
}
