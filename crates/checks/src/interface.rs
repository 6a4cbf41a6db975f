//! `interface`: a network interface of the live node is up, at the right
//! speed and MTU (NHC's `check_hw_eth`).

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::Actual;
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::run::Context;
use nodecheck_core::target::{Need, Target};

use crate::eval;
use crate::live::{self, read_attr};

pub struct Interface;

const KEYS: &[Key] = &[
    Key::new(
        "exists",
        Ty::Bool,
        "The interface exists (default `true`). When it does not, every other property is \
         skipped.",
    ),
    Key::new(
        "up",
        Ty::Bool,
        "Administratively up with a working link (operstate `up`; for interfaces that report no \
         operstate, such as `lo`, up with a carrier).",
    ),
    Key::new(
        "speed",
        Ty::Matcher(Compare::Quantity),
        "Link speed in Mb/s as the kernel reports it: `25000`, `{ ge = 10000 }`. A link that is \
         down has no speed and fails.",
    ),
    Key::new(
        "mtu",
        Ty::Matcher(Compare::Quantity),
        "MTU in bytes: `9000`, `{ ge = 2044 }` (IPoIB).",
    ),
];

const DOC: &str = r#"## What it checks

A network interface of the live node, from `/sys/class/net/<name>`: that
it exists, is up with a link, and its speed and MTU. Ethernet, IPoIB
(`ib0`), bonds and VLANs all live there.

When the interface does not exist, `exists` fails (reported even when it
was not written) and the other properties are skipped.

## Example

```toml
[[control]]
id = "fabric-link"
title = "The data network is up at full speed with jumbo frames"

  [[control.interface]]
  name  = "eth0"
  up    = true
  speed = { ge = 25000 }
  mtu   = 9000

  [[control.interface]]
  name   = "docker0"
  exists = false
```

## Targets

Live node only (`needs a live node` elsewhere).
"#;

/// `IFF_UP` in /sys/class/net/<name>/flags.
const IFF_UP: u32 = 0x1;

impl Kind for Interface {
    fn name(&self) -> &'static str {
        "interface"
    }

    fn subject(&self) -> Key {
        Key::new(
            "name",
            Ty::Str,
            "The interface name (`eth0`, `ib0`, `bond0`).",
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
        let mut out = eval::exists_false_conflicts(check, "interface");
        if !live::is_component(&check.subject) {
            out.push(eval::diagnostic(
                check,
                "name",
                "bad-value",
                format!("{:?} is not an interface name", check.subject),
            ));
        }
        out
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let name = check.subject.as_str();
        let t = cx.target;
        let dir = format!("/sys/class/net/{name}");
        let found = match t.metadata(&dir, true) {
            Ok(_) if live::is_component(name) => Some(dir.clone()),
            Ok(_) => None,
            Err(e) if eval::is_absent(&e) => None,
            Err(e) => {
                let mut props = eval::asserted(check, &[]);
                let first = props.next().map_or("exists", |p| p.key);
                let mut out = vec![PropertyResult::error(first, live::at(&dir, &e))];
                out.extend(
                    props.map(|p| PropertyResult::skip(p.key, format!("{dir} could not be read"))),
                );
                return out.into();
            }
        };
        let what = format!("interface {name}");
        let mut out = match eval::existence(check, &what, found, &dir, &[]) {
            Ok(first) => first,
            Err(done) => return done.into(),
        };
        for p in eval::asserted(check, &["exists"]) {
            let r = match p.key {
                "up" => check.bool("up").map(|want| up(t, &dir, want)),
                "speed" => check.matcher("speed").map(|m| {
                    let path = format!("{dir}/speed");
                    match read_attr(t, &path) {
                        Ok(v) => match v.parse::<i64>() {
                            Ok(n) if n >= 0 => {
                                eval::matched("speed", m, Actual::Int(n), format!("{n} Mb/s"))
                            }
                            _ => PropertyResult::compare(
                                "speed",
                                false,
                                m.describe(),
                                "unknown (the driver reports no speed)",
                            ),
                        },
                        // The kernel answers EINVAL for the speed of a link
                        // that is down.
                        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                            PropertyResult::compare(
                                "speed",
                                false,
                                m.describe(),
                                "unknown (the link is down)",
                            )
                        }
                        Err(e) if eval::is_absent(&e) => PropertyResult::compare(
                            "speed",
                            false,
                            m.describe(),
                            "unknown (the interface reports no speed)",
                        ),
                        Err(e) => PropertyResult::error("speed", live::at(&path, &e)),
                    }
                }),
                "mtu" => check.matcher("mtu").map(|m| {
                    let path = format!("{dir}/mtu");
                    match read_attr(t, &path).map(|v| v.parse::<i64>()) {
                        Ok(Ok(n)) => eval::matched("mtu", m, Actual::Int(n), n.to_string()),
                        Ok(Err(_)) => PropertyResult::error("mtu", format!("{path}: not a number")),
                        Err(e) => PropertyResult::error("mtu", live::at(&path, &e)),
                    }
                }),
                _ => None,
            };
            out.extend(r);
        }
        out.into()
    }
}

fn up(t: &dyn Target, dir: &str, want: bool) -> PropertyResult {
    let operstate = read_attr(t, &format!("{dir}/operstate"));
    let flags = read_attr(t, &format!("{dir}/flags"))
        .ok()
        .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok());
    let (is_up, why) = match (operstate.as_deref(), flags) {
        (Ok("up"), _) => (true, "operstate up".to_string()),
        (Ok("unknown"), Some(f)) => {
            // Drivers that report no operstate (lo, some tunnels): up when
            // administratively up with a carrier. The kernel answers
            // EINVAL for the carrier of a device that is down.
            let carrier = read_attr(t, &format!("{dir}/carrier")).is_ok_and(|c| c == "1");
            let ok = f & IFF_UP != 0 && carrier;
            (
                ok,
                format!(
                    "operstate unknown, {}, {}",
                    if f & IFF_UP != 0 { "up" } else { "down" },
                    if carrier { "carrier" } else { "no carrier" }
                ),
            )
        }
        (Ok(state), _) => (false, format!("operstate {state}")),
        (Err(e), _) => {
            return PropertyResult::error("up", live::at(&format!("{dir}/operstate"), e));
        }
    };
    eval::boolean("up", want, is_up, &why)
}

#[cfg(test)]
mod tests {
    use nodecheck_core::matcher::Pred;
    use nodecheck_core::outcome::Status::{Fail, Pass, Skip};
    use nodecheck_core::target::{MemoryTarget, TargetKind};

    use super::*;
    use crate::testing::*;

    fn iface(
        t: MemoryTarget,
        name: &str,
        operstate: &str,
        flags: &str,
        speed: Option<&str>,
    ) -> MemoryTarget {
        let d = format!("/sys/devices/virtual/net/{name}");
        let mut t = t
            .file(
                &format!("{d}/operstate"),
                0o444,
                0,
                0,
                format!("{operstate}\n"),
            )
            .file(&format!("{d}/flags"), 0o444, 0, 0, format!("{flags}\n"))
            .file(&format!("{d}/mtu"), 0o444, 0, 0, "9000\n")
            .file(&format!("{d}/carrier"), 0o444, 0, 0, "1\n")
            .symlink(
                &format!("/sys/class/net/{name}"),
                &format!("../../devices/virtual/net/{name}"),
            );
        if let Some(s) = speed {
            t = t.file(&format!("{d}/speed"), 0o444, 0, 0, format!("{s}\n"));
        }
        t
    }

    fn node() -> MemoryTarget {
        let t = MemoryTarget::new().kind(TargetKind::Live).with(Need::Live);
        let t = iface(t, "eth0", "up", "0x1003", Some("25000"));
        let t = iface(t, "eth1", "down", "0x1002", None);
        let t = iface(t, "lo", "unknown", "0x9", None);
        iface(t, "veth0", "up", "0x1003", Some("-1"))
    }

    fn ev(name: &str, props: Vec<(&str, nodecheck_core::profile::Value)>) -> Evaluation {
        run(&check(&Interface, name, props), &node())
    }

    #[test]
    fn up_speed_and_mtu() {
        let e = ev(
            "eth0",
            vec![
                ("up", b(true)),
                ("speed", preds(vec![Pred::Ge("10000".into())])),
                ("mtu", eq_int(9000)),
            ],
        );
        assert!(
            e.properties.iter().all(|p| p.status == Pass),
            "{:#?}",
            e.properties
        );
        assert_eq!(
            result(&e, "speed").1,
            "speed: expected >= 10000, got 25000 Mb/s"
        );
        assert_eq!(result(&ev("lo", vec![("up", b(true))]), "up").0, Pass);
        let e = ev("eth1", vec![("up", b(true)), ("speed", eq_int(25000))]);
        assert_eq!(
            result(&e, "up"),
            (Fail, "up: expected true, got false (operstate down)".into())
        );
        assert_eq!(
            result(&e, "speed"),
            (
                Fail,
                "speed: expected 25000, got unknown (the interface reports no speed)".into()
            )
        );
        let e = ev("veth0", vec![("speed", eq_int(1000))]);
        assert_eq!(result(&e, "speed").0, Fail);
    }

    #[test]
    fn missing_interfaces_fail_or_pass_exists_false() {
        let e = ev("ib0", vec![("up", b(true))]);
        assert_eq!(
            results(&e),
            vec![
                (
                    "exists".into(),
                    Fail,
                    "exists: interface ib0 does not exist".into()
                ),
                ("up".into(), Skip, "interface ib0 does not exist".into()),
            ]
        );
        assert_eq!(
            result(&ev("docker0", vec![("exists", b(false))]), "exists").0,
            Pass
        );
        assert_eq!(
            result(&ev("eth0", vec![("exists", b(false))]), "exists").0,
            Fail
        );
    }

    #[test]
    fn names_cannot_walk_out_of_sys_class_net() {
        let c = check(&Interface, "../../../etc", vec![("up", b(true))]);
        assert!(messages(&Interface.validate(&c))[0].starts_with("bad-value"));
    }
}
