//! Helpers the kinds share: turning expectations and what the target says
//! into [`PropertyResult`]s with the canonical `key: expected X, got Y`
//! messages, owner/group matching through the target's accounts, and the
//! goss rule (once existence fails, every other property is skipped).

use std::io;

use nodecheck_core::matcher::{Actual, Matcher, Pred, Scalar};
use nodecheck_core::outcome::PropertyResult;
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::target::Accounts;

/// Linux's `ELOOP` ("too many levels of symbolic links"); `io::ErrorKind`
/// has no stable name for it and this crate does not link libc.
const ELOOP: i32 = 40;

/// How many offenders a one-line message names before "and N more".
pub const MESSAGE_CAP: usize = 10;

/// Whether an error means "there is nothing at this path": a missing
/// component, a non-directory in the middle, or a symlink loop. Anything
/// else (permission, I/O) means we could not tell.
pub fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    ) || e.raw_os_error() == Some(ELOOP)
}

/// An io error as shown to the user; permission errors say why they
/// happen, since that is the usual cause when nodecheck does not run as
/// root.
pub fn io_text(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::PermissionDenied {
        format!("{e} (nodecheck may need to run as root)")
    } else {
        e.to_string()
    }
}

/// `key: expected <describe>, got <shown>` for a matcher.
pub fn matched(
    key: &str,
    m: &Matcher,
    actual: Actual<'_>,
    shown: impl Into<String>,
) -> PropertyResult {
    PropertyResult::compare(key, m.test(actual), m.describe(), shown)
}

/// `key: expected true, got false` plus an optional explanation.
pub fn boolean(key: &str, expected: bool, actual: bool, why: &str) -> PropertyResult {
    let shown = if why.is_empty() {
        actual.to_string()
    } else {
        format!("{actual} ({why})")
    };
    PropertyResult::compare(key, expected == actual, expected.to_string(), shown)
}

/// The properties of `check` that assert something, in the order written:
/// modifiers (`follow`, `exclude`) and the keys in `except` left out.
pub fn asserted<'c>(
    check: &'c Check,
    except: &[&str],
) -> impl Iterator<Item = &'c nodecheck_core::profile::Prop> {
    let kind = check.kind;
    check.props.iter().filter(move |p| {
        !except.contains(&p.key) && !kind.keys().iter().any(|k| k.name == p.key && k.modifier)
    })
}

/// One skip per asserted property but those in `except`: the goss rule.
pub fn skip_rest(check: &Check, except: &[&str], reason: &str) -> Vec<PropertyResult> {
    asserted(check, except)
        .map(|p| PropertyResult::skip(p.key, reason))
        .collect()
}

/// `a, b, c, … and 4 more` for a one-line message.
pub fn capped(items: &[String]) -> String {
    let shown = items
        .iter()
        .take(MESSAGE_CAP)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > MESSAGE_CAP {
        format!("{shown} and {} more", items.len() - MESSAGE_CAP)
    } else {
        shown
    }
}

/// A short rendering of file text for a message: the text itself when it
/// is one short line, else its first line and its size.
pub fn summarize(text: &str) -> String {
    const SHORT: usize = 60;
    let first = text.lines().next().unwrap_or("");
    let lines = text.lines().count();
    if lines <= 1 && text.chars().count() <= SHORT && !text.contains('\n') {
        return format!("{text:?}");
    }
    let mut head: String = first.chars().take(SHORT).collect();
    if head.len() < first.len() || lines > 1 {
        head.push('…');
    }
    format!(
        "{head:?} ({lines} line{}, {} bytes)",
        if lines == 1 { "" } else { "s" },
        text.len()
    )
}

/// The lines of the target's account file `file` (`/etc/passwd`) that
/// could not be parsed, or the error reading it.
pub fn account_errors<'a>(accounts: &'a Accounts, file: &str) -> Vec<&'a str> {
    accounts
        .errors
        .iter()
        .filter(|e| {
            e.strip_prefix(file)
                .is_some_and(|rest| rest.starts_with(':'))
        })
        .map(String::as_str)
        .collect()
}

/// `/etc/passwd could not be fully read: /etc/passwd:3: …; …`
pub fn unreadable(file: &str, errors: &[&str]) -> String {
    let errors: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    format!("{file} could not be fully read: {}", capped(&errors))
}

/// What looking up a check's subject found: the three answers of the
/// goss rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presence {
    /// It is there; how to describe it (`uid 101`, `regular file`), or "".
    Found(String),
    /// It is not there; where nodecheck looked, or "".
    Absent(String),
    /// Whether it is there could not be told; why (an unreadable file).
    Unknown(String),
}

/// How a kind says whether its subject is there: the property that
/// asserts it and the words for both answers. Every kind states its
/// presence through [`presence_as`], so one situation reads the same in
/// every kind.
#[derive(Clone, Copy, Debug)]
pub struct Subject {
    /// The property that asserts presence (`exists`, `installed`,
    /// `running`). `None` for a kind without one (`filesystem`, `elf`,
    /// `tree`: every property needs the path): the presence result then
    /// goes on the first asserted property, and the subject must be there.
    pub key: Option<&'static str>,
    /// `exists`, `is installed`.
    pub is: &'static str,
    /// `does not exist`, `is not installed`.
    pub is_not: &'static str,
    /// Properties not about the subject found there, evaluated whatever
    /// presence says (a process `count`, which may assert that none runs;
    /// a module's `loaded`, asked of the running kernel): never skipped.
    pub apart: &'static [&'static str],
}

/// `exists`: files, configs, accounts, units, mounts, repos, interfaces.
pub const EXISTS: Subject = Subject {
    key: Some("exists"),
    is: "exists",
    is_not: "does not exist",
    apart: &[],
};

/// A path that every property needs, with no property of its own.
pub const PATH: Subject = Subject {
    key: None,
    is: "exists",
    is_not: "does not exist",
    apart: &[],
};

/// The goss rule with `exists` ([`presence_as`] with [`EXISTS`]).
pub fn presence(
    check: &Check,
    what: &str,
    presence: Presence,
) -> Result<Vec<PropertyResult>, Vec<PropertyResult>> {
    presence_as(check, &EXISTS, what, presence)
}

/// The goss rule, the one place it is written: the presence result (when
/// its property is written, or when the subject is missing) and whether
/// the other properties may be evaluated. `Ok` holds the results so far
/// (the caller goes on); `Err` the finished results, every other asserted
/// property skipped with one reason (but `subject.apart`, which the
/// caller still evaluates). `what` names the subject (`user munge`,
/// `/etc/munge/munge.key`). One message per situation, `K` the key, `IS`
/// and `IS NOT` the subject's words:
///
/// | found | `K` | result | the rest |
/// |---|---|---|---|
/// | yes | true | pass `K: W IS (D)` | evaluated |
/// | yes | — | nothing | evaluated |
/// | yes | false | fail `K: expected false, but W IS (D)` | skipped: `W IS` |
/// | no | false | pass `K: W IS NOT (L)` | skipped: `W IS NOT` |
/// | no | true, — | fail `K: W IS NOT (L)` | skipped: `W IS NOT` |
/// | unknown | any | error `K: W could not be looked up: WHY` | skipped: `W could not be looked up` |
pub fn presence_as(
    check: &Check,
    subject: &Subject,
    what: &str,
    presence: Presence,
) -> Result<Vec<PropertyResult>, Vec<PropertyResult>> {
    let paren = |s: &str| {
        if s.is_empty() {
            String::new()
        } else {
            format!(" ({s})")
        }
    };
    let (key, expected) = match subject.key {
        Some(k) => (k, check.bool(k)),
        // No property of its own: the first one asserted speaks for it
        // (the kind's first key where none is).
        None => (
            asserted(check, subject.apart).next().map_or_else(
                || check.kind.keys().first().map_or("", |k| k.name),
                |p| p.key,
            ),
            None,
        ),
    };
    let (is, is_not) = (subject.is, subject.is_not);
    let (first, reason) = match (presence, expected) {
        (Presence::Found(desc), Some(true)) => {
            return Ok(vec![PropertyResult::verdict(
                key,
                true,
                format!("{key}: {what} {is}{}", paren(&desc)),
            )]);
        }
        (Presence::Found(_), None) => return Ok(Vec::new()),
        (Presence::Found(desc), Some(false)) => (
            PropertyResult::verdict(
                key,
                false,
                format!("{key}: expected false, but {what} {is}{}", paren(&desc)),
            )
            .with_expected("false")
            .with_actual("true"),
            format!("{what} {is}"),
        ),
        (Presence::Unknown(why), _) => (
            PropertyResult::error(key, format!("{key}: {what} could not be looked up: {why}")),
            format!("{what} could not be looked up"),
        ),
        (Presence::Absent(looked), Some(false)) => (
            PropertyResult::verdict(
                key,
                true,
                format!("{key}: {what} {is_not}{}", paren(&looked)),
            ),
            format!("{what} {is_not}"),
        ),
        (Presence::Absent(looked), _) => (
            PropertyResult::verdict(
                key,
                false,
                format!("{key}: {what} {is_not}{}", paren(&looked)),
            )
            .with_expected("true")
            .with_actual("false"),
            format!("{what} {is_not}"),
        ),
    };
    let mut except = vec![key];
    except.extend_from_slice(subject.apart);
    let mut out = vec![first];
    out.extend(skip_rest(check, &except, &reason));
    Err(out)
}

/// [`presence`] for a named subject looked up in a file of the target
/// (`/etc/passwd`): `found` describes the subject when it exists (`uid
/// 101`); `broken` are the unparsable lines of `file`: a subject not found
/// while some lines could not be read is unknown, not absent.
pub fn existence(
    check: &Check,
    what: &str,
    found: Option<String>,
    file: &str,
    broken: &[&str],
) -> Result<Vec<PropertyResult>, Vec<PropertyResult>> {
    let p = match found {
        Some(desc) => Presence::Found(desc),
        None if !broken.is_empty() => Presence::Unknown(unreadable(file, broken)),
        None => Presence::Absent(String::new()),
    };
    presence(check, what, p)
}

/// Validation shared by the account kinds: `exists = false` asserts the
/// subject is absent, so nothing else about it can be checked.
pub fn exists_false_conflicts(check: &Check, noun: &str) -> Vec<Diagnostic> {
    if check.bool("exists") != Some(false) {
        return Vec::new();
    }
    asserted(check, &["exists"])
        .map(|p| {
            diagnostic(
                check,
                p.key,
                "conflicting-keys",
                format!(
                    "`{}` cannot be checked together with `exists = false`: a missing {noun} has no {}",
                    p.key, p.key
                ),
            )
        })
        .collect()
}

/// A diagnostic located at the property `key` (or the check's header).
pub fn diagnostic(check: &Check, key: &str, code: &'static str, message: String) -> Diagnostic {
    let location = check
        .prop(key)
        .map_or_else(|| check.location.clone(), |p| p.location.clone());
    Diagnostic::error(code, message).at(location)
}

/// Users or groups: where an `owner`/`group`/`gid` name is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdSpace {
    User,
    Group,
}

impl IdSpace {
    fn id_word(self) -> &'static str {
        match self {
            IdSpace::User => "uid",
            IdSpace::Group => "gid",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            IdSpace::User => "user",
            IdSpace::Group => "group",
        }
    }

    fn file(self) -> &'static str {
        match self {
            IdSpace::User => "/etc/passwd",
            IdSpace::Group => "/etc/group",
        }
    }

    fn id_of(self, accounts: &Accounts, name: &str) -> Option<u32> {
        match self {
            IdSpace::User => accounts.user(name).map(|u| u.uid),
            IdSpace::Group => accounts.group(name).map(|g| g.gid),
        }
    }

    fn name_of(self, accounts: &Accounts, id: u32) -> Option<&str> {
        match self {
            IdSpace::User => accounts.user_by_uid(id).map(|u| u.name.as_str()),
            IdSpace::Group => accounts.group_by_gid(id).map(|g| g.name.as_str()),
        }
    }

    /// `munge (uid 101)`, or the bare number when the target has no name
    /// for it.
    pub fn show(self, accounts: &Accounts, id: u32) -> String {
        match self.name_of(accounts, id) {
            Some(name) => format!("{name} ({} {id})", self.id_word()),
            None => id.to_string(),
        }
    }
}

/// What an expected owner value denotes.
enum Resolved {
    Id(u32),
    /// A name the target's accounts do not know.
    Unknown(String),
}

fn resolve(space: IdSpace, accounts: &Accounts, s: &Scalar) -> Resolved {
    match s {
        Scalar::Int(i) => {
            u32::try_from(*i).map_or_else(|_| Resolved::Unknown(i.to_string()), Resolved::Id)
        }
        Scalar::Str(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse()
            .map_or_else(|_| Resolved::Unknown(s.clone()), Resolved::Id),
        Scalar::Str(s) => space
            .id_of(accounts, s)
            .map_or_else(|| Resolved::Unknown(s.clone()), Resolved::Id),
        Scalar::Bool(b) => Resolved::Unknown(b.to_string()),
    }
}

/// Matches an owner, group or gid: equality (`eq`, `ne`, `one_of`) takes
/// names or numbers, names resolved through the *target's* accounts;
/// `matches`/`contains` look at the name (or the number when unmapped);
/// `ge`/`lt`/… compare the number. A name the target does not know fails
/// saying so, or errors when the account file has unparsable lines (the
/// name may be on one of them).
pub fn id_matched(
    key: &str,
    m: &Matcher,
    space: IdSpace,
    accounts: &Accounts,
    actual: u32,
) -> PropertyResult {
    let shown = space.show(accounts, actual);
    let name = space
        .name_of(accounts, actual)
        .map_or_else(|| actual.to_string(), str::to_string);
    let mut unknown: Vec<String> = Vec::new();
    let mut ok = true;
    let mut expected: Vec<String> = Vec::new();
    let single = |p: &Pred| Matcher {
        preds: vec![p.clone()],
        compare: m.compare,
    };
    let is = |s: &Scalar, unknown: &mut Vec<String>| match resolve(space, accounts, s) {
        Resolved::Id(id) => Some(id == actual),
        Resolved::Unknown(n) => {
            unknown.push(n);
            None
        }
    };
    let describe = |s: &Scalar| match (s, resolve(space, accounts, s)) {
        (Scalar::Str(n), Resolved::Id(id)) if n.parse::<u32>().is_err() => {
            format!("{n} ({} {id})", space.id_word())
        }
        _ => s.to_string(),
    };
    for p in &m.preds {
        match p {
            Pred::Eq(s) => {
                ok &= is(s, &mut unknown) == Some(true);
                expected.push(describe(s));
            }
            Pred::Ne(s) => {
                ok &= is(s, &mut unknown) != Some(true);
                expected.push(format!("not {}", describe(s)));
            }
            Pred::OneOf(v) => {
                let mut any = false;
                for s in v {
                    any |= is(s, &mut unknown) == Some(true);
                }
                ok &= any;
                let v: Vec<String> = v.iter().map(describe).collect();
                expected.push(format!("one of [{}]", v.join(", ")));
            }
            Pred::Matches(_) | Pred::NotMatches(_) | Pred::Contains(_) | Pred::NotContains(_) => {
                let one = single(p);
                ok &= one.test(Actual::Str(&name));
                expected.push(one.describe());
            }
            Pred::Ge(_) | Pred::Gt(_) | Pred::Le(_) | Pred::Lt(_) => {
                let one = single(p);
                ok &= one.test(Actual::Int(i64::from(actual)));
                expected.push(one.describe());
            }
        }
    }
    let expected = expected.join(" and ");
    if !ok && !unknown.is_empty() {
        let file = space.file();
        let broken = account_errors(accounts, file);
        let names = unknown.join(", ");
        let noun = space.noun();
        if !broken.is_empty() {
            return PropertyResult::error(
                key,
                format!(
                    "{key}: the target has no {noun} {names}, and {}",
                    unreadable(file, &broken)
                ),
            )
            .with_expected(expected)
            .with_actual(shown);
        }
        return PropertyResult::verdict(
            key,
            false,
            format!("{key}: expected {expected}, but the target has no {noun} {names} in {file} (got {shown})"),
        )
        .with_expected(expected)
        .with_actual(shown);
    }
    PropertyResult::compare(key, ok, expected, shown)
}

/// Appends `title:` and the indented `items` to a check's output (JUnit
/// system-out), a blank line apart from what is already there.
pub fn section(output: &mut String, title: &str, items: &[String]) {
    if !output.is_empty() {
        output.push('\n');
    }
    output.push_str(title);
    output.push_str(":\n");
    for i in items {
        output.push_str("  ");
        output.push_str(i);
        output.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodecheck_core::kind::Compare;
    use nodecheck_core::outcome::Status;
    use regex::Regex;

    #[test]
    fn presence_without_a_key_speaks_on_the_first_property_and_apart_is_never_skipped() {
        use crate::testing::{b, check, eq, eq_int};
        use nodecheck_core::outcome::Status::{Error, Fail, Skip};
        let shown = |r: Result<Vec<PropertyResult>, Vec<PropertyResult>>| {
            r.unwrap_or_else(|v| v)
                .into_iter()
                .map(|p| (p.key, p.status, p.message))
                .collect::<Vec<_>>()
        };
        // No property of its own (filesystem): the first asserted one.
        let c = check(
            &crate::filesystem::Filesystem,
            "/scratch",
            vec![("rw", b(true)), ("free", eq("1%"))],
        );
        assert_eq!(
            shown(presence_as(
                &c,
                &PATH,
                "/scratch",
                Presence::Absent(String::new())
            )),
            vec![
                ("rw".into(), Fail, "rw: /scratch does not exist".into()),
                ("free".into(), Skip, "/scratch does not exist".into()),
            ]
        );
        assert_eq!(
            shown(presence_as(
                &c,
                &PATH,
                "/scratch",
                Presence::Found(String::new())
            )),
            vec![]
        );
        // `apart` properties are left to the caller, whatever presence says.
        let running = Subject {
            key: Some("running"),
            is: "is running",
            is_not: "is not running",
            apart: &["count"],
        };
        let c = check(
            &crate::process::Process,
            "slurmd",
            vec![("user", eq("root")), ("count", eq_int(0))],
        );
        assert_eq!(
            shown(presence_as(
                &c,
                &running,
                "process slurmd",
                Presence::Unknown("EIO".into())
            )),
            vec![
                (
                    "running".into(),
                    Error,
                    "running: process slurmd could not be looked up: EIO".into()
                ),
                (
                    "user".into(),
                    Skip,
                    "process slurmd could not be looked up".into()
                ),
            ]
        );
    }

    #[test]
    fn presence_has_one_message_per_situation() {
        use crate::testing::{b, check, eq};
        use nodecheck_core::outcome::Status::{Error, Fail, Pass, Skip};
        let shown = |r: Result<Vec<PropertyResult>, Vec<PropertyResult>>| {
            let (done, v) = match r {
                Ok(v) => (false, v),
                Err(v) => (true, v),
            };
            let v: Vec<_> = v
                .into_iter()
                .map(|p| (p.key, p.status, p.message))
                .collect();
            (done, v)
        };
        let with = |exists: Option<bool>| {
            let mut props = vec![("uid", eq("0"))];
            props.extend(exists.map(|e| ("exists", b(e))));
            check(&crate::user::User, "x", props)
        };
        let found = || Presence::Found("uid 7".into());
        assert_eq!(
            shown(presence(&with(Some(true)), "user x", found())),
            (
                false,
                vec![(
                    "exists".into(),
                    Pass,
                    "exists: user x exists (uid 7)".into()
                )]
            )
        );
        assert_eq!(
            shown(presence(&with(None), "user x", found())),
            (false, vec![])
        );
        assert_eq!(
            shown(presence(&with(Some(false)), "user x", found())),
            (
                true,
                vec![
                    (
                        "exists".into(),
                        Fail,
                        "exists: expected false, but user x exists (uid 7)".into()
                    ),
                    ("uid".into(), Skip, "user x exists".into()),
                ]
            )
        );
        for (exists, status) in [(Some(false), Pass), (Some(true), Fail), (None, Fail)] {
            assert_eq!(
                shown(presence(
                    &with(exists),
                    "user x",
                    Presence::Absent(String::new())
                )),
                (
                    true,
                    vec![
                        (
                            "exists".into(),
                            status,
                            "exists: user x does not exist".into()
                        ),
                        ("uid".into(), Skip, "user x does not exist".into()),
                    ]
                ),
                "{exists:?}"
            );
        }
        assert_eq!(
            shown(presence(
                &with(None),
                "user x",
                Presence::Unknown("/etc/passwd: EIO".into())
            )),
            (
                true,
                vec![
                    (
                        "exists".into(),
                        Error,
                        "exists: user x could not be looked up: /etc/passwd: EIO".into()
                    ),
                    ("uid".into(), Skip, "user x could not be looked up".into()),
                ]
            )
        );
    }

    fn accounts() -> Accounts {
        Accounts::parse(
            Ok(b"root:x:0:0::/root:/bin/sh\nmunge:x:101:102::/:/bin/false\n".to_vec()),
            Ok(b"root:x:0:\nmunge:x:102:\n".to_vec()),
        )
    }

    fn m(preds: Vec<Pred>) -> Matcher {
        Matcher {
            preds,
            compare: Compare::Quantity,
        }
    }

    fn eq(s: &str) -> Matcher {
        m(vec![Pred::Eq(Scalar::Str(s.into()))])
    }

    #[test]
    fn owner_names_resolve_through_the_target() {
        let a = accounts();
        let r = id_matched("owner", &eq("munge"), IdSpace::User, &a, 101);
        assert_eq!(r.status, Status::Pass);
        let r = id_matched("owner", &eq("munge"), IdSpace::User, &a, 0);
        assert_eq!(
            r.message,
            "owner: expected munge (uid 101), got root (uid 0)"
        );
        let r = id_matched("owner", &eq("0"), IdSpace::User, &a, 4242);
        assert_eq!(r.message, "owner: expected 0, got 4242");
        let r = id_matched(
            "owner",
            &m(vec![Pred::Eq(Scalar::Int(0))]),
            IdSpace::User,
            &a,
            0,
        );
        assert_eq!(r.status, Status::Pass);
        let r = id_matched("group", &eq("munge"), IdSpace::Group, &a, 102);
        assert_eq!(r.status, Status::Pass);
    }

    #[test]
    fn unknown_names_fail_saying_so() {
        let a = accounts();
        let r = id_matched("owner", &eq("slurm"), IdSpace::User, &a, 0);
        assert_eq!(r.status, Status::Fail);
        assert_eq!(
            r.message,
            "owner: expected slurm, but the target has no user slurm in /etc/passwd (got root (uid 0))"
        );
        // one_of passes when a known name matches.
        let one = m(vec![Pred::OneOf(vec![
            Scalar::Str("slurm".into()),
            Scalar::Str("root".into()),
        ])]);
        assert_eq!(
            id_matched("owner", &one, IdSpace::User, &a, 0).status,
            Status::Pass
        );
        let broken = Accounts::parse(
            Ok(b"root:x:0:0::/root:/bin/sh\nslurm:x:\n".to_vec()),
            Ok(Vec::new()),
        );
        let r = id_matched("owner", &eq("slurm"), IdSpace::User, &broken, 0);
        assert_eq!(r.status, Status::Error);
        assert!(
            r.message.contains("/etc/passwd:2: expected 7"),
            "{}",
            r.message
        );
    }

    #[test]
    fn regexes_see_names_and_orderings_see_numbers() {
        let a = accounts();
        let re = m(vec![Pred::Matches(Regex::new("^(root|munge)$").unwrap())]);
        assert_eq!(
            id_matched("owner", &re, IdSpace::User, &a, 101).status,
            Status::Pass
        );
        let sys = m(vec![Pred::Lt("1000".into())]);
        assert_eq!(
            id_matched("owner", &sys, IdSpace::User, &a, 101).status,
            Status::Pass
        );
        let r = id_matched("owner", &sys, IdSpace::User, &a, 1000);
        assert_eq!(r.message, "owner: expected < 1000, got 1000");
    }

    #[test]
    fn summaries_stay_short() {
        assert_eq!(summarize("yes"), "\"yes\"");
        assert_eq!(summarize("a\nb\n"), "\"a…\" (2 lines, 4 bytes)");
        assert_eq!(capped(&["a".into(), "b".into()]), "a, b");
        let many: Vec<String> = (0..12).map(|i| i.to_string()).collect();
        assert_eq!(capped(&many), "0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 2 more");
    }
}
