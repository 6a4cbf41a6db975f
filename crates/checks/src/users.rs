//! `users`: the accounts sharing one uid (an extension, like InSpec's
//! `users.where(uid: 0)`), for "root is the only uid 0 account".

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::Actual;
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic, Value};
use nodecheck_core::run::Context;

use crate::eval;

pub struct Users;

const KEYS: &[Key] = &[
    Key::new(
        "names",
        Ty::StrList,
        "Exactly these accounts have the uid: order does not matter, a name listed twice in \
         /etc/passwd counts twice. `[]` = no account has it.",
    ),
    Key::new(
        "count",
        Ty::Matcher(Compare::Quantity),
        "How many accounts have the uid: `1`, `{ le = 1 }`.",
    ),
];

const DOC: &str = r#"## What it checks

*An extension of nodecheck* (not in the profile contract's table), in the
spirit of InSpec's `users.where(uid: 0)`: the set of accounts in the
target's own `/etc/passwd` that share one numeric uid. Its main use is
"root is the only uid 0 account", which a `user` check cannot express
(it looks accounts up by name).

`names` compares the exact set of names, ignoring order; duplicate
`/etc/passwd` lines for the same name show up twice and fail. `count` is
a number matcher over how many accounts have the uid.

If `/etc/passwd` has lines nodecheck cannot parse (or cannot be read), the
answer may be incomplete (a hidden uid 0 line could be among them), so the
first property is an *error* naming those lines and the others are skipped.

## Example

```toml
[[control]]
id = "root-only-uid-0"
title = "root is the only account with uid 0"
severity = "critical"

  [[control.users]]
  uid   = "0"
  names = ["root"]

  [[control.users]]
  uid   = "65534"
  count = { le = 1 }
```

## Targets

Every target.
"#;

impl Kind for Users {
    fn name(&self) -> &'static str {
        "users"
    }

    fn subject(&self) -> Key {
        Key::new("uid", Ty::Str, "The numeric uid, as a string (`\"0\"`).")
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn validate(&self, check: &Check) -> Vec<Diagnostic> {
        if check.subject.parse::<u32>().is_ok() {
            return Vec::new();
        }
        vec![
            Diagnostic::error(
                "bad-value",
                format!(
                    "`uid` must be a number from 0 to 4294967295, got {:?}",
                    check.subject
                ),
            )
            .at(check.location.clone()),
        ]
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let Ok(uid) = check.subject.parse::<u32>() else {
            let first = eval::asserted(check, &[]).next().map_or("uid", |p| p.key);
            return Evaluation::error(first, format!("uid {:?} is not a number", check.subject));
        };
        let accounts = cx.target.accounts();
        let broken = eval::account_errors(accounts, "/etc/passwd");
        if !broken.is_empty() {
            let mut props = eval::asserted(check, &[]);
            let mut out = Evaluation::default();
            if let Some(p) = props.next() {
                out.push(PropertyResult::error(
                    p.key,
                    format!(
                        "{}: the accounts with uid {uid} cannot be known: {}",
                        p.key,
                        eval::unreadable("/etc/passwd", &broken)
                    ),
                ));
            }
            for p in props {
                out.push(PropertyResult::skip(
                    p.key,
                    "/etc/passwd could not be fully read",
                ));
            }
            return out;
        }
        let names: Vec<String> = accounts
            .users
            .iter()
            .filter(|u| u.uid == uid)
            .map(|u| u.name.clone())
            .collect();
        let shown = format!("[{}]", names.join(", "));
        eval::asserted(check, &[])
            .map(|prop| match (prop.key, &prop.value) {
                ("names", Value::List(want)) => {
                    let (mut a, mut b) = (names.clone(), want.clone());
                    a.sort();
                    b.sort();
                    PropertyResult::compare(
                        "names",
                        a == b,
                        format!("exactly [{}]", want.join(", ")),
                        shown.clone(),
                    )
                }
                ("count", Value::Matcher(m)) => {
                    let n = names.len();
                    eval::matched(
                        "count",
                        m,
                        Actual::Int(i64::try_from(n).unwrap_or(i64::MAX)),
                        format!("{n} {shown}"),
                    )
                }
                (key, v) => PropertyResult::error(
                    key,
                    format!("{key}: users cannot check {v:?} (the loader should have refused it)"),
                ),
            })
            .collect::<Vec<_>>()
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use nodecheck_core::matcher::Pred;
    use nodecheck_core::outcome::Status::{Error, Fail, Pass, Skip};
    use nodecheck_core::target::MemoryTarget;

    fn image(passwd: &str) -> MemoryTarget {
        MemoryTarget::new()
            .file("/etc/passwd", 0o644, 0, 0, passwd)
            .file("/etc/group", 0o644, 0, 0, "root:x:0:\n")
    }

    const CLEAN: &str = "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n";
    const TOOR: &str = "root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\n";

    #[test]
    fn root_is_the_only_uid_0() {
        let c = check(
            &Users,
            "0",
            vec![("names", list(&["root"])), ("count", eq_int(1))],
        );
        let e = run(&c, &image(CLEAN));
        assert_eq!(
            results(&e),
            [
                (
                    "names".into(),
                    Pass,
                    "names: expected exactly [root], got [root]".into()
                ),
                (
                    "count".into(),
                    Pass,
                    "count: expected 1, got 1 [root]".into()
                ),
            ]
        );
        let e = run(&c, &image(TOOR));
        assert_eq!(
            results(&e),
            [
                (
                    "names".into(),
                    Fail,
                    "names: expected exactly [root], got [root, toor]".into()
                ),
                (
                    "count".into(),
                    Fail,
                    "count: expected 1, got 2 [root, toor]".into()
                ),
            ]
        );
    }

    #[test]
    fn order_is_ignored_and_empty_means_none() {
        let c = check(&Users, "0", vec![("names", list(&["toor", "root"]))]);
        assert_eq!(result(&run(&c, &image(TOOR)), "names").0, Pass);
        let c = check(
            &Users,
            "4242",
            vec![
                ("names", list(&[])),
                ("count", preds(vec![Pred::Le("0".into())])),
            ],
        );
        let e = run(&c, &image(CLEAN));
        assert!(
            e.properties.iter().all(|p| p.status == Pass),
            "{:#?}",
            e.properties
        );
    }

    #[test]
    fn malformed_passwd_is_an_error() {
        let c = check(
            &Users,
            "0",
            vec![("names", list(&["root"])), ("count", eq_int(1))],
        );
        let e = run(&c, &image("root:x:0:0::/root:/bin/sh\ntoor:0:0\n"));
        assert_eq!(
            results(&e),
            [
                (
                    "names".into(),
                    Error,
                    "names: the accounts with uid 0 cannot be known: /etc/passwd could not be fully read: \
                     /etc/passwd:2: expected 7 colon-separated fields, got 3"
                        .into()
                ),
                ("count".into(), Skip, "/etc/passwd could not be fully read".into()),
            ]
        );
    }

    #[test]
    fn the_uid_must_be_a_number() {
        let c = check(&Users, "root", vec![("names", list(&["root"]))]);
        assert_eq!(
            messages(&Users.validate(&c)),
            ["bad-value: `uid` must be a number from 0 to 4294967295, got \"root\""]
        );
        assert_eq!(result(&run(&c, &image(CLEAN)), "names").0, Error);
    }
}
