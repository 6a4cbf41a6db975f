//! `group`: a group in the target's own /etc/group.

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::Actual;
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic, Value};
use nodecheck_core::run::Context;
use nodecheck_core::target::{Accounts, Group as Entry};

use crate::eval;

pub struct Group;

const KEYS: &[Key] = &[
    Key::new(
        "exists",
        Ty::Bool,
        "The group exists (default `true`). When it does not, every other property is skipped.",
    ),
    Key::new("gid", Ty::Matcher(Compare::Quantity), "Numeric group id."),
    Key::new(
        "members",
        Ty::StrList,
        "Each user listed is a member: named on the group's line, or having it as primary \
         group. Other members are allowed.",
    ),
];

const DOC: &str = r#"## What it checks

A group of the target, read from the target's own `/etc/group` (and
`/etc/passwd` for primary groups), never from the host's NSS.

When the group does not exist, `exists` fails (reported even when it was
not written) and the other properties are skipped; when it is not found and
`/etc/group` has lines nodecheck could not parse, the result is an *error*
naming them.

`members` is "each of these is a member": a user is a member when the
group's line lists it or when the group is the user's primary group (as
`id` would show), so `members = ["munge"]` holds for munge's own group.
Other members are allowed.

## Example

```toml
[[control]]
id = "slurm-group"
title = "slurm group has the agreed gid and the slurm user"

  [[control.group]]
  name    = "slurm"
  gid     = 64030
  members = ["slurm"]

  [[control.group]]
  name = ["wheel", "sudo"]
  gid  = { lt = 1000 }
```

## Targets

Every target.
"#;

impl Kind for Group {
    fn name(&self) -> &'static str {
        "group"
    }

    fn subject(&self) -> Key {
        Key::new("name", Ty::Str, "The group name.")
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn validate(&self, check: &Check) -> Vec<Diagnostic> {
        eval::exists_false_conflicts(check, "group")
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let name = check.subject.as_str();
        let accounts = cx.target.accounts();
        let group = accounts.group(name);
        let broken = eval::account_errors(accounts, "/etc/group");
        let what = format!("group {name}");
        let found = group.map(|g| format!("gid {}", g.gid));
        let mut out = match eval::existence(check, &what, found, "/etc/group", &broken) {
            Ok(first) => first,
            Err(done) => return done.into(),
        };
        let Some(group) = group else {
            // existence() has already answered for a missing group.
            return out.into();
        };
        for prop in eval::asserted(check, &["exists"]) {
            out.push(property(prop.key, &prop.value, group, accounts));
        }
        out.into()
    }
}

/// The group's members: those its line lists, then the users whose
/// primary group it is.
fn members(group: &Entry, accounts: &Accounts) -> Vec<String> {
    let mut out = group.members.clone();
    for u in &accounts.users {
        if u.gid == group.gid && !out.contains(&u.name) {
            out.push(u.name.clone());
        }
    }
    out
}

fn property(key: &str, value: &Value, group: &Entry, accounts: &Accounts) -> PropertyResult {
    match (key, value) {
        ("gid", Value::Matcher(m)) => eval::matched(
            key,
            m,
            Actual::Int(i64::from(group.gid)),
            group.gid.to_string(),
        ),
        ("members", Value::List(want)) => {
            let have = members(group, accounts);
            let missing: Vec<&str> = want
                .iter()
                .filter(|u| !have.contains(u))
                .map(String::as_str)
                .collect();
            let expected = format!("members including [{}]", want.join(", "));
            let actual = format!("[{}]", have.join(", "));
            let broken = eval::account_errors(accounts, "/etc/passwd");
            if !missing.is_empty() && !broken.is_empty() {
                // A primary-group member may be on an unparsable line.
                return PropertyResult::error(
                    key,
                    format!(
                        "{key}: [{}] not found among the members of {}, but {}",
                        missing.join(", "),
                        group.name,
                        eval::unreadable("/etc/passwd", &broken)
                    ),
                )
                .with_expected(expected)
                .with_actual(actual);
            }
            PropertyResult::compare(key, missing.is_empty(), expected, actual)
        }
        (key, v) => PropertyResult::error(
            key,
            format!("{key}: group cannot check {v:?} (the loader should have refused it)"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use nodecheck_core::matcher::Pred;
    use nodecheck_core::outcome::Status::{Error, Fail, Pass, Skip};
    use nodecheck_core::target::MemoryTarget;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                          munge:x:101:102::/nonexistent:/usr/sbin/nologin\n\
                          alice:x:1000:1000::/home/alice:/bin/bash\n";
    const GROUP: &str = "root:x:0:\nmunge:x:102:\nusers:x:100:alice,bob\nalice:x:1000:\n";

    fn image() -> MemoryTarget {
        MemoryTarget::new()
            .file("/etc/passwd", 0o644, 0, 0, PASSWD)
            .file("/etc/group", 0o644, 0, 0, GROUP)
    }

    fn eval(name: &str, props: Vec<(&str, Value)>) -> Evaluation {
        run(&check(&Group, name, props), &image())
    }

    #[test]
    fn pass_and_fail_of_every_key() {
        let e = eval(
            "users",
            vec![
                ("exists", b(true)),
                ("gid", eq_int(100)),
                ("members", list(&["alice", "bob"])),
            ],
        );
        assert!(
            e.properties.iter().all(|p| p.status == Pass),
            "{:#?}",
            e.properties
        );
        assert_eq!(
            result(&e, "exists").1,
            "exists: group users exists (gid 100)"
        );
        let e = eval(
            "users",
            vec![
                ("gid", preds(vec![Pred::Ge("1000".into())])),
                ("members", list(&["alice", "carol"])),
            ],
        );
        assert_eq!(
            results(&e),
            [
                ("gid".into(), Fail, "gid: expected >= 1000, got 100".into()),
                (
                    "members".into(),
                    Fail,
                    "members: expected members including [alice, carol], got [alice, bob]".into()
                ),
            ]
        );
    }

    #[test]
    fn primary_group_users_are_members() {
        let e = eval("munge", vec![("members", list(&["munge"]))]);
        assert_eq!(
            result(&e, "members"),
            (
                Pass,
                "members: expected members including [munge], got [munge]".into()
            )
        );
    }

    #[test]
    fn a_missing_group_fails_exists_and_skips_the_rest() {
        let e = eval("slurm", vec![("gid", eq_int(64030))]);
        assert_eq!(
            results(&e),
            [
                (
                    "exists".into(),
                    Fail,
                    "exists: group slurm does not exist".into()
                ),
                ("gid".into(), Skip, "group slurm does not exist".into()),
            ]
        );
        let e = eval("wheel", vec![("exists", b(false))]);
        assert_eq!(result(&e, "exists").0, Pass);
        let e = eval("root", vec![("exists", b(false))]);
        assert_eq!(
            result(&e, "exists"),
            (
                Fail,
                "exists: expected false, but group root exists (gid 0)".into()
            )
        );
    }

    #[test]
    fn a_malformed_group_file_is_an_error_when_not_found() {
        let t = image().file("/etc/group", 0o644, 0, 0, "root:x:0:\nslurm:x:sixty:\n");
        let e = run(&check(&Group, "slurm", vec![("gid", eq_int(64030))]), &t);
        assert_eq!(
            results(&e),
            [
                (
                    "exists".into(),
                    Error,
                    "exists: group slurm could not be looked up: /etc/group could not be fully read: \
                     /etc/group:2: expected a numeric id, got \"sixty\""
                        .into()
                ),
                (
                    "gid".into(),
                    Skip,
                    "group slurm could not be looked up".into()
                ),
            ]
        );
        let e = run(&check(&Group, "root", vec![("gid", eq_int(0))]), &t);
        assert_eq!(result(&e, "gid").0, Pass);
    }

    #[test]
    fn members_with_a_broken_passwd() {
        let t = image().file(
            "/etc/passwd",
            0o644,
            0,
            0,
            "root:x:0:0::/root:/bin/sh\nslurm:x:64030:64030\n",
        );
        let e = run(
            &check(&Group, "users", vec![("members", list(&["slurm"]))]),
            &t,
        );
        assert_eq!(
            result(&e, "members"),
            (
                Error,
                "members: [slurm] not found among the members of users, but /etc/passwd could not be \
                 fully read: /etc/passwd:2: expected 7 colon-separated fields, got 4"
                    .into()
            )
        );
        let e = run(
            &check(&Group, "users", vec![("members", list(&["bob"]))]),
            &t,
        );
        assert_eq!(result(&e, "members").0, Pass);
    }

    #[test]
    fn exists_false_conflicts_with_other_keys() {
        let c = check(
            &Group,
            "wheel",
            vec![("exists", b(false)), ("gid", eq_int(10))],
        );
        assert_eq!(Group.validate(&c).len(), 1);
    }
}
