//! `process`: a daemon is running on the live node (NHC's
//! `check_ps_service`).

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::Actual;
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::run::Context;
use nodecheck_core::target::Need;

use crate::eval::{self, IdSpace};
use crate::live::procs::{self, Proc};

pub struct Process;

const KEYS: &[Key] = &[
    Key::new(
        "running",
        Ty::Bool,
        "A process of that name is running (default `true`; zombies do not count). When none \
         is, `user` is skipped.",
    ),
    Key::new(
        "user",
        Ty::Matcher(Compare::Quantity),
        "At least one of the processes runs as this user (effective uid): a name from the \
         node's /etc/passwd or a number. `sshd` forks a process per login as the logged-in \
         user, so this asks whether *some* sshd runs as root.",
    ),
    Key::new(
        "count",
        Ty::Matcher(Compare::Quantity),
        "How many processes have the name: `1`, `{ ge = 1 }`, `0`.",
    ),
];

const DOC: &str = r#"## What it checks

A process on the live node, found by name in /proc: the kernel's name for
it (`comm`, what `ps -e` and `pgrep` show). The kernel keeps only the first
15 bytes of a name; for a longer name (`systemd-journald`) a process
matches when its truncated name does and its `argv[0]` is the name or a
path ending in it. Zombie and dead processes are not running.

When no process has the name, `running` fails (reported even when it was
not written) and `user` is skipped; `count` is still compared (so
`count = 0` works). `running = false` asserts that nothing by that name
runs.

## Example

```toml
[[control]]
id = "slurmd"
title = "slurmd runs as root"
severity = "critical"

  [[control.process]]
  name = "slurmd"
  user = "root"

  [[control.process]]
  name  = "munged"
  user  = "munge"
  count = 1

  [[control.process]]
  name    = "yum"
  running = false
```

## Targets

Live node only (`needs a live node` elsewhere): a rootfs or image has no
processes.
"#;

impl Kind for Process {
    fn name(&self) -> &'static str {
        "process"
    }

    fn subject(&self) -> Key {
        Key::new(
            "name",
            Ty::Str,
            "The process name as `ps -e` shows it (`sshd`, `slurmd`, `munged`).",
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
        if check.subject.contains('\0') || check.subject.contains('\n') {
            out.push(eval::diagnostic(
                check,
                "name",
                "bad-value",
                format!("process name {:?} cannot occur in /proc", check.subject),
            ));
        }
        if check.bool("running") == Some(false) && check.prop("user").is_some() {
            out.push(eval::diagnostic(
                check,
                "user",
                "conflicting-keys",
                "`user` cannot be checked together with `running = false`: a process that does \
                 not run has no user"
                    .to_string(),
            ));
        }
        out
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let name = check.subject.as_str();
        let what = format!("process {name}");
        // The goss rule with `running` (eval::presence_as); `count` may
        // assert that none runs, so it is evaluated either way.
        let (found, presence) = match procs::named(cx.target, name) {
            Ok(f) if f.is_empty() => (f, eval::Presence::Absent(String::new())),
            Ok(f) => {
                let desc = describe(&f);
                (f, eval::Presence::Found(desc))
            }
            Err(e) => (
                Vec::new(),
                eval::Presence::Unknown(format!(
                    "cannot list processes: {}",
                    crate::live::at("/proc", &e)
                )),
            ),
        };
        let listed = !matches!(presence, eval::Presence::Unknown(_));
        let (mut out, done) = match eval::presence_as(check, &RUNNING, &what, presence) {
            Ok(v) => (v, false),
            Err(v) => (v, true),
        };
        for p in eval::asserted(check, &["running"]) {
            match p.key {
                "count" if !listed => {
                    out.push(PropertyResult::skip(
                        "count",
                        format!("{what} could not be looked up"),
                    ));
                }
                "count" => {
                    if let Some(m) = check.matcher("count") {
                        let n = found.len();
                        out.push(eval::matched(
                            "count",
                            m,
                            Actual::Int(i64::try_from(n).unwrap_or(i64::MAX)),
                            n.to_string(),
                        ));
                    }
                }
                // Skipped by presence_as when nothing runs.
                "user" if !done => {
                    if let Some(m) = check.matcher("user") {
                        out.push(user(m, &found, cx));
                    }
                }
                _ => {}
            }
        }
        out.into()
    }
}

/// `running`: the presence of a process (eval::presence_as).
const RUNNING: eval::Subject = eval::Subject {
    key: Some("running"),
    is: "is running",
    is_not: "is not running",
    apart: &["count"],
};

/// `pids 812, 977`.
fn describe(found: &[Proc]) -> String {
    let pids: Vec<String> = found.iter().map(|p| p.pid.to_string()).collect();
    format!(
        "pid{} {}",
        if pids.len() == 1 { "" } else { "s" },
        eval::capped(&pids)
    )
}

/// Passes when one of the processes runs as a matching user.
fn user(m: &nodecheck_core::matcher::Matcher, found: &[Proc], cx: &Context<'_>) -> PropertyResult {
    let accounts = cx.target.accounts();
    let uids: Vec<u32> = {
        let mut u: Vec<u32> = found.iter().filter_map(|p| p.uid).collect();
        u.sort_unstable();
        u.dedup();
        u
    };
    if uids.is_empty() {
        return PropertyResult::error(
            "user",
            "user: the owner of no process could be read from /proc/<pid>/status",
        );
    }
    let results: Vec<PropertyResult> = uids
        .iter()
        .map(|&uid| eval::id_matched("user", m, IdSpace::User, accounts, uid))
        .collect();
    if let Some(ok) = results
        .iter()
        .find(|r| r.status == nodecheck_core::outcome::Status::Pass)
    {
        return ok.clone();
    }
    if uids.len() == 1 {
        return results.into_iter().next().expect("one uid, one result");
    }
    let shown: Vec<String> = uids
        .iter()
        .map(|&u| IdSpace::User.show(accounts, u))
        .collect();
    PropertyResult::compare("user", false, m.describe(), eval::capped(&shown))
}

#[cfg(test)]
mod tests {
    use nodecheck_core::outcome::Status::{Error, Fail, Pass, Skip};
    use nodecheck_core::target::{MemoryTarget, TargetKind};

    use super::*;
    use crate::testing::*;

    fn status(uid: u32) -> String {
        format!("Name:\tx\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
    }

    fn node() -> MemoryTarget {
        MemoryTarget::new()
            .kind(TargetKind::Live)
            .with(Need::Live)
            .file(
                "/etc/passwd",
                0o644,
                0,
                0,
                "root:x:0:0::/root:/bin/sh\nmunge:x:101:101::/:/bin/false\n",
            )
            .file("/proc/1/stat", 0o444, 0, 0, "1 (init) S 0")
            .file("/proc/1/status", 0o444, 0, 0, status(0))
            .file("/proc/20/stat", 0o444, 0, 0, "20 (munged) S 1")
            .file("/proc/20/status", 0o444, 0, 0, status(101))
            .file("/proc/30/stat", 0o444, 0, 0, "30 (sshd) S 1")
            .file("/proc/30/status", 0o444, 0, 0, status(0))
            .file("/proc/31/stat", 0o444, 0, 0, "31 (sshd) S 30")
            .file("/proc/31/status", 0o444, 0, 0, status(1000))
            .file("/proc/40/stat", 0o444, 0, 0, "40 (slurmd) Z 1")
    }

    fn ev(name: &str, props: Vec<(&str, nodecheck_core::profile::Value)>) -> Evaluation {
        run(&check(&Process, name, props), &node())
    }

    #[test]
    fn running_daemons_pass_with_their_pids() {
        let e = ev("sshd", vec![("running", b(true))]);
        assert_eq!(
            result(&e, "running"),
            (
                Pass,
                "running: process sshd is running (pids 30, 31)".into()
            )
        );
        let e = ev("munged", vec![("user", eq("munge")), ("count", eq_int(1))]);
        assert_eq!(result(&e, "user").0, Pass);
        assert_eq!(result(&e, "count").0, Pass);
    }

    #[test]
    fn a_missing_daemon_fails_and_skips_the_rest() {
        let e = ev("slurmd", vec![("user", eq("root")), ("count", eq_int(0))]);
        assert_eq!(
            results(&e),
            vec![
                (
                    "running".into(),
                    Fail,
                    "running: process slurmd is not running".into()
                ),
                ("user".into(), Skip, "process slurmd is not running".into()),
                ("count".into(), Pass, "count: expected 0, got 0".into()),
            ]
        );
        let e = ev("yum", vec![("running", b(false))]);
        assert_eq!(result(&e, "running").0, Pass);
        let e = ev("sshd", vec![("running", b(false))]);
        assert_eq!(result(&e, "running").0, Fail);
    }

    #[test]
    fn user_passes_when_one_process_matches() {
        assert_eq!(
            result(&ev("sshd", vec![("user", eq("root"))]), "user").0,
            Pass
        );
        let e = ev("sshd", vec![("user", eq("munge"))]);
        assert_eq!(
            result(&e, "user"),
            (Fail, "user: expected munge, got root (uid 0), 1000".into())
        );
        let e = ev("munged", vec![("user", eq("root"))]);
        assert_eq!(
            result(&e, "user"),
            (
                Fail,
                "user: expected root (uid 0), got munge (uid 101)".into()
            )
        );
    }

    #[test]
    fn no_proc_is_an_error() {
        let t = MemoryTarget::new().kind(TargetKind::Live).with(Need::Live);
        let e = run(&check(&Process, "sshd", vec![("user", eq("root"))]), &t);
        assert_eq!(result(&e, "running").0, Error);
        assert!(
            result(&e, "running").1.starts_with(
                "running: process sshd could not be looked up: cannot list processes: /proc: "
            ),
            "{:?}",
            result(&e, "running")
        );
        assert_eq!(
            result(&e, "user"),
            (Skip, "process sshd could not be looked up".into())
        );
    }

    #[test]
    fn validation() {
        let c = check(
            &Process,
            "x",
            vec![("running", b(false)), ("user", eq("root"))],
        );
        assert_eq!(messages(&Process.validate(&c)).len(), 1);
        assert!(messages(&Process.validate(&c))[0].starts_with("conflicting-keys"));
        let c = check(&Process, "a\nb", vec![("running", b(true))]);
        assert!(messages(&Process.validate(&c))[0].starts_with("bad-value"));
    }
}
