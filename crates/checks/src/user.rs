//! `user`: an account in the target's own /etc/passwd.

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::Actual;
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic, Value};
use nodecheck_core::run::Context;
use nodecheck_core::target::{Accounts, User as Account};

use crate::eval::{self, IdSpace};

pub struct User;

const KEYS: &[Key] = &[
    Key::new(
        "exists",
        Ty::Bool,
        "The account exists (default `true`). When it does not, every other property is skipped.",
    ),
    Key::new(
        "uid",
        Ty::Matcher(Compare::Quantity),
        "Numeric user id: `0`, `{ lt = 1000 }`.",
    ),
    Key::new(
        "gid",
        Ty::Matcher(Compare::Quantity),
        "Primary group: a numeric gid or a group name of the target's /etc/group.",
    ),
    Key::new(
        "home",
        Ty::Matcher(Compare::Version),
        "Home directory field.",
    ),
    Key::new(
        "shell",
        Ty::Matcher(Compare::Version),
        "Login shell field: `\"/usr/sbin/nologin\"`, `{ one_of = [...] }`.",
    ),
    Key::new(
        "groups",
        Ty::StrList,
        "The user is a member of every group listed (the primary group counts); other \
         memberships are allowed.",
    ),
];

const DOC: &str = r#"## What it checks

An account of the target, read from the target's own `/etc/passwd` and
`/etc/group` (never the host's NSS, LDAP or SSSD: on a rootfs the image's
files are what the booted node will have locally).

When the user does not exist, `exists` fails (reported even when it was
not written) and the other properties are skipped. When the user is not
found and `/etc/passwd` has lines nodecheck could not parse (or could not
be read at all), the result is an *error* naming those lines instead: the
user might be on one of them. `groups` fails likewise only as an error when
a missing membership could be hiding on an unreadable `/etc/group` line.

`groups` is an InSpec-style "member of all of these" list: the user's
groups are its primary group plus every group listing it as a member, and
each group named must be among them. To pin the exact set, use one check per
group or the `group` kind's `members`.

## Example

```toml
[[control]]
id = "munge-account"
title = "munge is a system account without a login shell"

  [[control.user]]
  name  = "munge"
  uid   = { lt = 1000 }
  gid   = "munge"
  home  = { one_of = ["/nonexistent", "/var/lib/munge", "/run/munge"] }
  shell = { matches = "(nologin|false)$" }

  [[control.user]]
  name   = "slurm"
  groups = ["slurm"]

  [[control.user]]
  name   = "games"
  exists = false
```

## Targets

Every target.
"#;

impl Kind for User {
    fn name(&self) -> &'static str {
        "user"
    }

    fn subject(&self) -> Key {
        Key::new("name", Ty::Str, "The account name.")
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn validate(&self, check: &Check) -> Vec<Diagnostic> {
        eval::exists_false_conflicts(check, "user")
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let name = check.subject.as_str();
        let accounts = cx.target.accounts();
        let user = accounts.user(name);
        let broken = eval::account_errors(accounts, "/etc/passwd");
        let what = format!("user {name}");
        let found = user.map(|u| format!("uid {}", u.uid));
        let mut out = match eval::existence(check, &what, found, "/etc/passwd", &broken) {
            Ok(first) => first,
            Err(done) => return done.into(),
        };
        let Some(user) = user else {
            // existence() has already answered for a missing user.
            return out.into();
        };
        for prop in eval::asserted(check, &["exists"]) {
            out.push(property(prop.key, &prop.value, user, accounts));
        }
        out.into()
    }
}

fn property(key: &str, value: &Value, user: &Account, accounts: &Accounts) -> PropertyResult {
    match (key, value) {
        ("uid", Value::Matcher(m)) => eval::matched(
            key,
            m,
            Actual::Int(i64::from(user.uid)),
            user.uid.to_string(),
        ),
        ("gid", Value::Matcher(m)) => eval::id_matched(key, m, IdSpace::Group, accounts, user.gid),
        ("home", Value::Matcher(m)) => {
            eval::matched(key, m, Actual::Str(&user.home), user.home.clone())
        }
        ("shell", Value::Matcher(m)) => {
            eval::matched(key, m, Actual::Str(&user.shell), user.shell.clone())
        }
        ("groups", Value::List(want)) => {
            let have = accounts.groups_of(user);
            let missing: Vec<&String> = want.iter().filter(|g| !have.contains(g)).collect();
            let broken = eval::account_errors(accounts, "/etc/group");
            let expected = format!("member of [{}]", want.join(", "));
            let actual = format!("[{}]", have.join(", "));
            if !missing.is_empty() && !broken.is_empty() {
                return PropertyResult::error(
                    key,
                    format!(
                        "{key}: {} not a member of [{}] as far as can be told, but {}",
                        user.name,
                        missing
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        eval::unreadable("/etc/group", &broken)
                    ),
                )
                .with_expected(expected)
                .with_actual(actual);
            }
            PropertyResult::compare(key, missing.is_empty(), expected, actual)
        }
        (key, v) => PropertyResult::error(
            key,
            format!("{key}: user cannot check {v:?} (the loader should have refused it)"),
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
                          alice:x:1000:1000:Alice:/home/alice:/bin/bash\n";
    const GROUP: &str =
        "root:x:0:\nmunge:x:102:\nusers:x:100:alice\nalice:x:1000:\nslurm:x:64030:\n";

    fn image() -> MemoryTarget {
        MemoryTarget::new()
            .file("/etc/passwd", 0o644, 0, 0, PASSWD)
            .file("/etc/group", 0o644, 0, 0, GROUP)
    }

    fn eval(name: &str, props: Vec<(&str, Value)>) -> Evaluation {
        run(&check(&User, name, props), &image())
    }

    #[test]
    fn every_key_passes() {
        let e = eval(
            "munge",
            vec![
                ("exists", b(true)),
                ("uid", preds(vec![Pred::Lt("1000".into())])),
                ("gid", eq("munge")),
                ("home", eq("/nonexistent")),
                ("shell", re("(nologin|false)$")),
                ("groups", list(&["munge"])),
            ],
        );
        assert!(
            e.properties.iter().all(|p| p.status == Pass),
            "{:#?}",
            e.properties
        );
        assert_eq!(
            result(&e, "exists").1,
            "exists: user munge exists (uid 101)"
        );
        let e = eval(
            "alice",
            vec![("groups", list(&["users", "alice"])), ("gid", eq_int(1000))],
        );
        assert!(
            e.properties.iter().all(|p| p.status == Pass),
            "{:#?}",
            e.properties
        );
    }

    #[test]
    fn every_key_fails_with_expected_and_got() {
        let e = eval(
            "alice",
            vec![
                ("uid", eq_int(1001)),
                ("gid", eq("users")),
                ("home", eq("/home/bob")),
                ("shell", eq("/bin/zsh")),
                ("groups", list(&["users", "slurm"])),
            ],
        );
        assert_eq!(
            results(&e),
            [
                ("uid".into(), Fail, "uid: expected 1001, got 1000".into()),
                (
                    "gid".into(),
                    Fail,
                    "gid: expected users (gid 100), got alice (gid 1000)".into()
                ),
                (
                    "home".into(),
                    Fail,
                    "home: expected /home/bob, got /home/alice".into()
                ),
                (
                    "shell".into(),
                    Fail,
                    "shell: expected /bin/zsh, got /bin/bash".into()
                ),
                (
                    "groups".into(),
                    Fail,
                    "groups: expected member of [users, slurm], got [alice, users]".into()
                ),
            ]
        );
    }

    #[test]
    fn a_missing_user_fails_exists_and_skips_the_rest() {
        let e = eval(
            "slurm",
            vec![("uid", eq_int(64030)), ("shell", eq("/bin/false"))],
        );
        assert_eq!(
            results(&e),
            [
                (
                    "exists".into(),
                    Fail,
                    "exists: user slurm does not exist".into()
                ),
                ("uid".into(), Skip, "user slurm does not exist".into()),
                ("shell".into(), Skip, "user slurm does not exist".into()),
            ]
        );
        let e = eval("games", vec![("exists", b(false))]);
        assert_eq!(
            results(&e),
            [(
                "exists".into(),
                Pass,
                "exists: user games does not exist".into()
            )]
        );
        let e = eval("root", vec![("exists", b(false))]);
        assert_eq!(
            results(&e),
            [(
                "exists".into(),
                Fail,
                "exists: expected false, but user root exists (uid 0)".into()
            )]
        );
    }

    #[test]
    fn malformed_passwd_is_an_error_only_when_the_user_is_not_found() {
        let t = image().file(
            "/etc/passwd",
            0o644,
            0,
            0,
            "root:x:0:0:root:/root:/bin/bash\nslurm:x:64030:64030:/var/lib/slurm\n",
        );
        let e = run(&check(&User, "slurm", vec![("uid", eq_int(64030))]), &t);
        assert_eq!(
            results(&e),
            [
                (
                    "exists".into(),
                    Error,
                    "exists: user slurm could not be looked up: /etc/passwd could not be fully read: \
                     /etc/passwd:2: expected 7 colon-separated fields, got 5"
                        .into()
                ),
                (
                    "uid".into(),
                    Skip,
                    "user slurm could not be looked up".into()
                ),
            ]
        );
        let e = run(&check(&User, "root", vec![("uid", eq_int(0))]), &t);
        assert_eq!(
            results(&e),
            [("uid".into(), Pass, "uid: expected 0, got 0".into())]
        );
    }

    #[test]
    fn an_unreadable_passwd_is_an_error() {
        let t = image().deny("/etc/passwd");
        let e = run(&check(&User, "root", vec![("uid", eq_int(0))]), &t);
        let (status, msg) = result(&e, "exists");
        assert_eq!(status, Error);
        assert_eq!(
            msg,
            "exists: user root could not be looked up: /etc/passwd could not be fully read: \
             /etc/passwd: Permission denied (os error 13)"
        );
    }

    #[test]
    fn groups_with_a_broken_group_file() {
        let t = image().file("/etc/group", 0o644, 0, 0, "alice:x:1000:\nslurm:x\n");
        let e = run(
            &check(&User, "alice", vec![("groups", list(&["slurm"]))]),
            &t,
        );
        assert_eq!(
            result(&e, "groups"),
            (
                Error,
                "groups: alice not a member of [slurm] as far as can be told, but /etc/group could not be \
                 fully read: /etc/group:2: expected 4 colon-separated fields, got 2"
                    .into()
            )
        );
        let e = run(
            &check(&User, "alice", vec![("groups", list(&["alice"]))]),
            &t,
        );
        assert_eq!(result(&e, "groups").0, Pass);
    }

    #[test]
    fn exists_false_conflicts_with_other_keys() {
        let c = check(
            &User,
            "games",
            vec![("exists", b(false)), ("shell", eq("/bin/sh"))],
        );
        assert_eq!(
            messages(&User.validate(&c)),
            [
                "conflicting-keys: `shell` cannot be checked together with `exists = false`: a missing user has no shell"
            ]
        );
    }
}
