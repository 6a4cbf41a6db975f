//! `port`: something listens on a TCP or UDP port of the live node.

use std::net::IpAddr;

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::Actual;
use nodecheck_core::outcome::Evaluation;
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::run::Context;
use nodecheck_core::target::Need;

use crate::eval;
use crate::live::sockets::{self, Protocol};

/// `listening`: the presence of a listener (eval::presence_as).
const LISTENING: eval::Subject = eval::Subject {
    key: Some("listening"),
    is: "is listening",
    is_not: "is not listening",
    apart: &[],
};

pub struct Port;

const KEYS: &[Key] = &[
    Key::new(
        "protocol",
        Ty::Enum(&["tcp", "udp"]),
        "`tcp` (default) or `udp`; each covers IPv4 and IPv6.",
    )
    .modifier(),
    Key::new(
        "listening",
        Ty::Bool,
        "A socket listens on the port (default `true`): TCP in LISTEN, UDP bound and not \
         connected. When none does, `addresses` is skipped.",
    ),
    Key::new(
        "addresses",
        Ty::Matcher(Compare::Version),
        "The local addresses listening, as a list (`0.0.0.0`, `::`, `127.0.0.1`): \
         `{ contains = \"0.0.0.0\" }`, `{ not_contains = \"0.0.0.0\" }`.",
    ),
];

const DOC: &str = r#"## What it checks

A listening socket on the live node, from /proc/net/tcp, tcp6, udp and
udp6 (what `ss -ltn` reads), in the network namespace nodecheck runs in.
TCP sockets listen when in the LISTEN state; a UDP socket listens when it is
bound to the port and not connected to a peer. An IPv4-mapped IPv6 listener
(`::ffff:127.0.0.1`) is shown as its IPv4 address.

When nothing listens, `listening` fails (reported even when it was not
written) and `addresses` is skipped.

## Example

```toml
[[control]]
id = "slurmd-port"
title = "slurmd accepts connections"

  [[control.port]]
  port      = 6818
  listening = true

  [[control.port]]
  port      = 22
  addresses = { contains = "0.0.0.0" }

  [[control.port]]
  port      = 111
  protocol  = "udp"
  listening = false
```

## Targets

Live node only (`needs a live node` elsewhere).
"#;

impl Kind for Port {
    fn name(&self) -> &'static str {
        "port"
    }

    fn subject(&self) -> Key {
        Key::new("port", Ty::Str, "The port number, 1 to 65535.")
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
        if port_number(&check.subject).is_none() {
            out.push(eval::diagnostic(
                check,
                "port",
                "bad-value",
                format!(
                    "`port` must be a number from 1 to 65535, got {:?}",
                    check.subject
                ),
            ));
        }
        if check.bool("listening") == Some(false) && check.prop("addresses").is_some() {
            out.push(eval::diagnostic(
                check,
                "addresses",
                "conflicting-keys",
                "`addresses` cannot be checked together with `listening = false`: a port \
                 nothing listens on has no addresses"
                    .to_string(),
            ));
        }
        out
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let protocol = check
            .str("protocol")
            .and_then(Protocol::parse)
            .unwrap_or(Protocol::Tcp);
        let Some(port) = port_number(&check.subject) else {
            let key = eval::asserted(check, &[]).next().map_or("port", |p| p.key);
            return Evaluation::error(key, format!("port {:?} is not a number", check.subject));
        };
        let what = format!("{} port {port}", protocol.as_str());
        // The goss rule with `listening` (eval::presence_as).
        let (addrs, presence) = match sockets::listening(cx.target, protocol, port) {
            Ok(a) if a.is_empty() => (a, eval::Presence::Absent(String::new())),
            Ok(a) => {
                let shown: Vec<String> = a.iter().map(IpAddr::to_string).collect();
                let desc = format!("on {}", eval::capped(&shown));
                (a, eval::Presence::Found(desc))
            }
            Err(e) => (
                Vec::new(),
                eval::Presence::Unknown(format!("cannot list sockets: {}", eval::io_text(&e))),
            ),
        };
        let mut out = match eval::presence_as(check, &LISTENING, &what, presence) {
            Ok(v) => v,
            Err(v) => return v.into(),
        };
        let shown: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
        if let Some(m) = check.matcher("addresses") {
            out.push(eval::matched(
                "addresses",
                m,
                Actual::List(&shown),
                format!("[{}]", shown.join(", ")),
            ));
        }
        out.into()
    }
}

fn port_number(s: &str) -> Option<u16> {
    s.parse::<u16>().ok().filter(|p| *p > 0)
}

#[cfg(test)]
mod tests {
    use nodecheck_core::matcher::Pred;
    use nodecheck_core::outcome::Status::{Error, Fail, Pass, Skip};
    use nodecheck_core::target::{MemoryTarget, TargetKind};

    use super::*;
    use crate::testing::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1A9A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21 1 0000000000000000 100 0 0 10 0\n";

    fn node() -> MemoryTarget {
        MemoryTarget::new()
            .kind(TargetKind::Live)
            .with(Need::Live)
            .file("/proc/net/tcp", 0o444, 0, 0, TCP)
            .file("/proc/net/udp", 0o444, 0, 0, "header\n")
    }

    #[test]
    fn listeners_pass_and_absent_ones_fail() {
        let e = run(&check(&Port, "22", vec![("listening", b(true))]), &node());
        assert_eq!(
            result(&e, "listening"),
            (
                Pass,
                "listening: tcp port 22 is listening (on 0.0.0.0)".into()
            )
        );
        let e = run(
            &check(
                &Port,
                "6818",
                vec![("addresses", preds(vec![Pred::Contains("0.0.0.0".into())]))],
            ),
            &node(),
        );
        assert_eq!(
            results(&e),
            vec![
                (
                    "listening".into(),
                    Fail,
                    "listening: tcp port 6818 is not listening".into()
                ),
                (
                    "addresses".into(),
                    Skip,
                    "tcp port 6818 is not listening".into()
                ),
            ]
        );
        let e = run(
            &check(
                &Port,
                "6810",
                vec![("addresses", preds(vec![Pred::Contains("0.0.0.0".into())]))],
            ),
            &node(),
        );
        assert_eq!(
            result(&e, "addresses"),
            (
                Fail,
                "addresses: expected containing \"0.0.0.0\", got [127.0.0.1]".into()
            )
        );
        let e = run(
            &check(
                &Port,
                "22",
                vec![("protocol", s("udp")), ("listening", b(false))],
            ),
            &node(),
        );
        assert_eq!(result(&e, "listening").0, Pass);
    }

    #[test]
    fn unreadable_proc_is_an_error() {
        let t = MemoryTarget::new().kind(TargetKind::Live).with(Need::Live);
        let e = run(&check(&Port, "22", vec![("listening", b(true))]), &t);
        assert_eq!(result(&e, "listening").0, Error);
    }

    #[test]
    fn validation() {
        for bad in ["0", "65536", "ssh", "-1"] {
            let c = check(&Port, bad, vec![("listening", b(true))]);
            assert!(
                messages(&Port.validate(&c))[0].starts_with("bad-value"),
                "{bad}"
            );
        }
        let c = check(
            &Port,
            "22",
            vec![("listening", b(false)), ("addresses", eq("0.0.0.0"))],
        );
        assert!(messages(&Port.validate(&c))[0].starts_with("conflicting-keys"));
    }
}
