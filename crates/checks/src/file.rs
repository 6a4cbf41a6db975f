//! `file`: one path inside the target: existence, type, ownership, mode,
//! size, content, checksum, symlinks.

use std::io;

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::{Actual, format_mode};
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic, Prop, Value};
use nodecheck_core::run::Context;
use nodecheck_core::target::{FileType, Metadata, READ_LIMIT, Target};
use nodecheck_core::text::hex;
use sha2::{Digest, Sha256};

use crate::eval::{self, IdSpace};

/// The largest file `sha256` hashes: packages ship big files (firmware,
/// libraries) whose checksum is worth pinning, but the target only reads
/// whole files, so keep a ceiling.
pub const SHA256_LIMIT: u64 = 1 << 30;

pub struct File;

const KEYS: &[Key] = &[
    Key::new(
        "exists",
        Ty::Bool,
        "The path exists (default `true`). A dangling symlink exists: this is `lstat`, not `stat`. \
         When the path is missing, every other property is skipped with that reason.",
    ),
    Key::new(
        "follow",
        Ty::Bool,
        "Default `true`: properties other than `type = \"symlink\"`, `link_target` and `resolves` \
         look at what a symlink points to, resolved inside the root. `false`: every property looks \
         at the link itself.",
    )
    .modifier(),
    Key::new(
        "type",
        Ty::Enum(&[
            "file",
            "directory",
            "symlink",
            "socket",
            "fifo",
            "block",
            "char",
        ]),
        "The file type. `symlink` looks at the path itself; the others at what it points to \
         (unless `follow = false`).",
    ),
    Key::new(
        "owner",
        Ty::Matcher(Compare::Quantity),
        "Owning user: a name (looked up in the target's /etc/passwd, never the host's) or a \
         numeric uid. `matches` sees the name, `lt`/`ge` the number.",
    ),
    Key::new(
        "group",
        Ty::Matcher(Compare::Quantity),
        "Owning group: a name (from the target's /etc/group) or a numeric gid.",
    ),
    Key::new(
        "mode",
        Ty::Mode,
        "Permission bits, setuid/setgid/sticky included: `\"0640\"` exactly, or \
         `{ max = \"0755\" }` for no more permissive than.",
    ),
    Key::new(
        "size",
        Ty::Matcher(Compare::Quantity),
        "Size in bytes; units allowed (`{ le = \"1MiB\" }`).",
    ),
    Key::new(
        "content",
        Ty::Matcher(Compare::Version),
        "The file's text (invalid UTF-8 replaced), at most 64 MiB: `{ matches = \"^ID=\" }`, \
         `{ contains = \"...\" }`. Only regular files have content.",
    ),
    Key::new(
        "sha256",
        Ty::Str,
        "SHA-256 of the content, 64 hex digits (case ignored); files up to 1 GiB.",
    ),
    Key::new(
        "link_target",
        Ty::Matcher(Compare::Version),
        "The text stored in the symlink (`readlink`), not resolved. Fails when the path is not a symlink.",
    ),
    Key::new(
        "resolves",
        Ty::Bool,
        "Following every symlink inside the root leads to something that exists. True for a \
         path that is not a symlink and exists.",
    ),
    Key::new(
        "executable",
        Ty::Bool,
        "Any execute bit (user, group or other) is set.",
    ),
];

const DOC: &str = r#"## What it checks

One path inside the target, like InSpec's `file` and goss's `file`. Paths
are absolute paths in the target: on a rootfs `/etc/passwd` is
`<rootfs>/etc/passwd`, and every symlink on the way resolves inside the
root (an absolute link restarts at the root, `..` stops there), never on
the host.

Each key set gives one result. `exists` defaults to `true`; when the path
does not exist the check fails on `exists` (reported even when `exists` was
not written) and every other property is *skipped* with the reason
`/path does not exist`, instead of piling up failures. `exists = false`
cannot be combined with other properties.

Symlinks: with `follow = true` (the default) `type = "symlink"`,
`link_target` and `resolves` look at the link itself and everything else at
what it points to; a property that needs the target of a dangling link
fails with `symlink /path does not resolve inside the root`. With
`follow = false` every property looks at the link itself (a link has no
content, so `content` and `sha256` then fail).

Owners and groups given by name are looked up in the target's own
`/etc/passwd` and `/etc/group`: `owner = "munge"` means the uid munge has in
the image. A name the image does not know fails and says so. Actual owners
are shown as `name (uid N)`, or the bare number when the image has no name
for it. A string of digits is always a numeric id.

Unreadable files (permission denied when nodecheck does not run as root),
files over the read limit (64 MiB for `content`, 1 GiB for `sha256`) and
other read errors give an *error* naming the cause, not a failure.

## Example

```toml
[[control]]
id = "munge-key"
title = "MUNGE key is private to munge"
severity = "critical"

  [[control.file]]
  path  = "/etc/munge/munge.key"
  type  = "file"
  owner = "munge"
  group = "munge"
  mode  = "0400"
  size  = { ge = 1024 }

  [[control.file]]
  path    = "/etc/os-release"
  content = { matches = "^ID=(debian|rocky)$" }

  [[control.file]]
  path        = "/bin"
  type        = "symlink"
  link_target = "usr/bin"
  resolves    = true

  [[control.file]]
  path   = "/etc/shadow"
  mode   = { max = "0640" }
  follow = false
```

## Targets

Every target. On a rootfs read without root, files unpacked as another user
may be unreadable: those properties are errors, not failures.
"#;

impl Kind for File {
    fn name(&self) -> &'static str {
        "file"
    }

    fn subject(&self) -> Key {
        Key::new(
            "path",
            Ty::Str,
            "Absolute path inside the target; symlinks resolve inside the root.",
        )
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn validate(&self, check: &Check) -> Vec<Diagnostic> {
        let mut out = eval::exists_false_conflicts(check, "file");
        if let Some(hex) = check.str("sha256")
            && !is_sha256(hex)
        {
            out.push(eval::diagnostic(
                check,
                "sha256",
                "bad-value",
                format!("`sha256` must be 64 hexadecimal digits, got {hex:?}"),
            ));
        }
        out
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let path = check.subject.as_str();
        let t = cx.target;
        let mut out = Evaluation::default();
        // The goss rule (eval::presence): a missing path fails `exists`,
        // written or not, and skips the rest.
        let lstat = t.metadata(path, false);
        let found = match &lstat {
            Ok(m) => eval::Presence::Found(m.file_type.to_string()),
            Err(e) if eval::is_absent(e) => eval::Presence::Absent(String::new()),
            Err(e) => eval::Presence::Unknown(format!("cannot stat it: {}", eval::io_text(e))),
        };
        match eval::presence(check, path, found) {
            Ok(r) => out.properties.extend(r),
            Err(r) => {
                out.properties.extend(r);
                return out;
            }
        }
        // presence() has finished every check whose path cannot be stat'ed.
        let Ok(lstat) = lstat else { return out };
        let subject = Subject {
            t,
            path,
            follow: check.bool("follow").unwrap_or(true),
            lstat,
            followed: std::cell::OnceCell::new(),
        };
        for prop in eval::asserted(check, &["exists"]) {
            out.push(subject.property(prop, cx));
        }
        out
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The path being checked, its `lstat`, and (computed once, when a
/// property needs it) what a symlink leads to.
struct Subject<'a> {
    t: &'a dyn Target,
    path: &'a str,
    follow: bool,
    lstat: Metadata,
    followed: std::cell::OnceCell<Result<Metadata, io::Error>>,
}

impl Subject<'_> {
    fn is_link(&self) -> bool {
        self.lstat.file_type == FileType::Symlink
    }

    /// Whether non-link properties look through a symlink here.
    fn through_link(&self) -> bool {
        self.follow && self.is_link()
    }

    /// The metadata a non-link property looks at, or the result to report
    /// when a followed link leads nowhere.
    fn meta(&self, key: &str) -> Result<&Metadata, PropertyResult> {
        if !self.through_link() {
            return Ok(&self.lstat);
        }
        let followed = self
            .followed
            .get_or_init(|| self.t.metadata(self.path, true));
        match followed {
            Ok(m) => Ok(m),
            Err(e) if eval::is_absent(e) => Err(self.dangling(key, e)),
            Err(e) => Err(PropertyResult::error(
                key,
                format!(
                    "{key}: cannot follow symlink {}: {}",
                    self.path,
                    eval::io_text(e)
                ),
            )),
        }
    }

    fn dangling(&self, key: &str, e: &io::Error) -> PropertyResult {
        let to = match self.t.read_link(self.path) {
            Ok(text) => format!("points to {text}: {e}"),
            Err(_) => e.to_string(),
        };
        PropertyResult::verdict(
            key,
            false,
            format!(
                "{key}: symlink {} does not resolve inside the root ({to})",
                self.path
            ),
        )
    }

    /// ` (via symlink to usr/bin)` when a property was read through a
    /// link, so a surprising value is not blamed on the link itself.
    fn via(&self) -> String {
        if !self.through_link() {
            return String::new();
        }
        match self.t.read_link(self.path) {
            Ok(text) => format!(" (via symlink to {text})"),
            Err(_) => " (via symlink)".to_string(),
        }
    }

    fn property(&self, prop: &Prop, cx: &Context<'_>) -> PropertyResult {
        let key = prop.key;
        let r = match (key, &prop.value) {
            ("type", Value::Str(want)) => self.file_type(want),
            ("owner", Value::Matcher(m)) => self.meta(key).map(|md| {
                let r = eval::id_matched(key, m, IdSpace::User, cx.target.accounts(), md.uid);
                self.annotate(r)
            }),
            ("group", Value::Matcher(m)) => self.meta(key).map(|md| {
                let r = eval::id_matched(key, m, IdSpace::Group, cx.target.accounts(), md.gid);
                self.annotate(r)
            }),
            ("mode", Value::Mode(spec)) => self.meta(key).map(|md| {
                PropertyResult::compare(
                    key,
                    spec.test(md.mode),
                    spec.describe(),
                    format!("{}{}", format_mode(md.mode), self.via()),
                )
            }),
            ("size", Value::Matcher(m)) => self.meta(key).map(|md| {
                let size = i64::try_from(md.size).unwrap_or(i64::MAX);
                eval::matched(
                    key,
                    m,
                    Actual::Int(size),
                    format!("{}{}", md.size, self.via()),
                )
            }),
            ("content", Value::Matcher(m)) => self.read(key, READ_LIMIT).map(|bytes| {
                let text = String::from_utf8_lossy(&bytes);
                eval::matched(key, m, Actual::Str(&text), eval::summarize(&text))
            }),
            ("sha256", Value::Str(want)) => self.read(key, SHA256_LIMIT).map(|bytes| {
                let got = hex(&Sha256::digest(&bytes));
                PropertyResult::compare(
                    key,
                    got.eq_ignore_ascii_case(want),
                    want.to_lowercase(),
                    got,
                )
            }),
            ("link_target", Value::Matcher(m)) => Ok(self.link_target(m)),
            ("resolves", Value::Bool(want)) => Ok(self.resolves(*want)),
            ("executable", Value::Bool(want)) => self.meta(key).map(|md| {
                let x = md.mode & 0o111 != 0;
                let why = format!("mode {}{}", format_mode(md.mode), self.via());
                eval::boolean(key, *want, x, &why)
            }),
            (key, v) => Ok(PropertyResult::error(
                key,
                format!(
                    "{key}: file cannot check {v:?} (a bug: the loader should have refused it)"
                ),
            )),
        };
        r.unwrap_or_else(|r| r)
    }

    fn annotate(&self, mut r: PropertyResult) -> PropertyResult {
        let via = self.via();
        if !via.is_empty() {
            r.message.push_str(&via);
        }
        r
    }

    fn file_type(&self, want: &str) -> Result<PropertyResult, PropertyResult> {
        let key = "type";
        let Some(want_type) = FileType::parse(want) else {
            return Ok(PropertyResult::error(
                key,
                format!("type: unknown file type {want:?}"),
            ));
        };
        let (ok, actual) = if want_type == FileType::Symlink {
            (self.is_link(), self.lstat.file_type.to_string())
        } else {
            let md = self.meta(key)?;
            (
                md.file_type == want_type,
                format!("{}{}", md.file_type, self.via()),
            )
        };
        Ok(PropertyResult::compare(key, ok, want, actual))
    }

    /// The content for `content`/`sha256`: only a regular file has one.
    fn read(&self, key: &str, limit: u64) -> Result<Vec<u8>, PropertyResult> {
        let path = self.path;
        if !self.follow && self.is_link() {
            return Err(PropertyResult::verdict(
                key,
                false,
                format!(
                    "{key}: {path} is a symlink, and with follow = false a symlink has no content"
                ),
            ));
        }
        let md = self.meta(key)?;
        if md.file_type != FileType::File {
            return Err(PropertyResult::verdict(
                key,
                false,
                format!(
                    "{key}: {path} is a {}{}, not a regular file",
                    md.file_type,
                    self.via()
                ),
            ));
        }
        self.t.read(path, limit).map_err(|e| {
            PropertyResult::error(
                key,
                format!("{key}: cannot read {path}: {}", eval::io_text(&e)),
            )
        })
    }

    fn link_target(&self, m: &nodecheck_core::matcher::Matcher) -> PropertyResult {
        let key = "link_target";
        let path = self.path;
        if !self.is_link() {
            return PropertyResult::verdict(
                key,
                false,
                format!(
                    "{key}: {path} is not a symlink (it is a {})",
                    self.lstat.file_type
                ),
            )
            .with_expected(m.describe())
            .with_actual(self.lstat.file_type.to_string());
        }
        match self.t.read_link(path) {
            Ok(text) => eval::matched(key, m, Actual::Str(&text), text.clone()),
            Err(e) => PropertyResult::error(
                key,
                format!("{key}: cannot read symlink {path}: {}", eval::io_text(&e)),
            ),
        }
    }

    fn resolves(&self, want: bool) -> PropertyResult {
        let key = "resolves";
        let path = self.path;
        match self.t.canonicalize(path) {
            Ok(to) => eval::boolean(key, want, true, &format!("{path} leads to {to}")),
            Err(e) if eval::is_absent(&e) => {
                let why = match self.t.read_link(path) {
                    Ok(text) => format!("{path} points to {text}: {e}"),
                    Err(_) => format!("{path}: {e}"),
                };
                eval::boolean(key, want, false, &why)
            }
            Err(e) => PropertyResult::error(
                key,
                format!("{key}: cannot resolve {path}: {}", eval::io_text(&e)),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use nodecheck_core::matcher::{Pred, Scalar};
    use nodecheck_core::outcome::Status::{Error, Fail, Pass, Skip};
    use nodecheck_core::target::MemoryTarget;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                          munge:x:101:102::/nonexistent:/usr/sbin/nologin\n";
    const GROUP: &str = "root:x:0:\nshadow:x:42:\nmunge:x:102:\n";

    fn image() -> MemoryTarget {
        MemoryTarget::new()
            .file("/etc/passwd", 0o644, 0, 0, PASSWD)
            .file("/etc/group", 0o644, 0, 0, GROUP)
            .dir("/etc/munge", 0o700, 101, 102)
            .file("/etc/munge/munge.key", 0o400, 101, 102, vec![7u8; 1024])
            .file("/etc/munge/bad.key", 0o644, 0, 0, "k")
            .file("/etc/os-release", 0o644, 0, 0, "NAME=Debian\nID=debian\n")
            .file("/etc/shadow", 0o640, 0, 42, "root:*::::::\n")
            .deny("/etc/shadow")
            .dir("/usr/bin", 0o755, 0, 0)
            .file("/usr/bin/sudo", 0o4755, 0, 0, "ELF")
            .file("/usr/bin/orphan", 0o755, 4242, 4343, "ELF")
            .symlink("/bin", "usr/bin")
            .symlink("/etc/alternatives/editor", "/usr/bin/vim")
            .symlink("/etc/localtime", "../usr/share/zoneinfo/UTC")
            .file("/usr/share/zoneinfo/UTC", 0o644, 0, 0, "TZif2")
            .symlink("/loop", "/loop")
            .special("/run/munge.sock", FileType::Socket, 0o777, 101, 102)
    }

    fn eval(path: &str, props: Vec<(&str, Value)>) -> Evaluation {
        run(&check(&File, path, props), &image())
    }

    #[test]
    fn munge_key_passes_every_property() {
        let e = eval(
            "/etc/munge/munge.key",
            vec![
                ("exists", b(true)),
                ("type", s("file")),
                ("owner", eq("munge")),
                ("group", eq("munge")),
                ("mode", mode(0o400)),
                ("size", preds(vec![Pred::Ge("1KiB".into())])),
                ("executable", b(false)),
            ],
        );
        assert!(
            e.properties.iter().all(|p| p.status == Pass),
            "{:#?}",
            e.properties
        );
        assert_eq!(e.properties.len(), 7);
        assert_eq!(
            result(&e, "exists").1,
            "exists: /etc/munge/munge.key exists (file)"
        );
    }

    #[test]
    fn wrong_values_say_expected_and_got() {
        let e = eval(
            "/etc/munge/bad.key",
            vec![
                ("type", s("directory")),
                ("owner", eq("munge")),
                ("group", eq("munge")),
                ("mode", mode(0o400)),
                ("size", preds(vec![Pred::Ge("1KiB".into())])),
                ("executable", b(true)),
            ],
        );
        assert_eq!(
            results(&e),
            [
                (
                    "type".into(),
                    Fail,
                    "type: expected directory, got file".into()
                ),
                (
                    "owner".into(),
                    Fail,
                    "owner: expected munge (uid 101), got root (uid 0)".into()
                ),
                (
                    "group".into(),
                    Fail,
                    "group: expected munge (gid 102), got root (gid 0)".into()
                ),
                ("mode".into(), Fail, "mode: expected 0400, got 0644".into()),
                ("size".into(), Fail, "size: expected >= 1KiB, got 1".into()),
                (
                    "executable".into(),
                    Fail,
                    "executable: expected true, got false (mode 0644)".into()
                ),
            ]
        );
    }

    #[test]
    fn max_mode_and_numeric_ids() {
        let e = eval(
            "/usr/bin/orphan",
            vec![
                ("mode", max_mode(0o755)),
                ("owner", eq_int(4242)),
                ("group", eq("4343")),
                ("executable", b(true)),
            ],
        );
        assert!(
            e.properties.iter().all(|p| p.status == Pass),
            "{:#?}",
            e.properties
        );
        let e = eval(
            "/usr/bin/orphan",
            vec![("owner", eq("root")), ("mode", max_mode(0o700))],
        );
        assert_eq!(
            results(&e),
            [
                (
                    "owner".into(),
                    Fail,
                    "owner: expected root (uid 0), got 4242".into()
                ),
                (
                    "mode".into(),
                    Fail,
                    "mode: expected at most 0700, got 0755".into()
                ),
            ]
        );
        let e = eval("/usr/bin/sudo", vec![("mode", max_mode(0o755))]);
        assert_eq!(
            result(&e, "mode").1,
            "mode: expected at most 0755, got 4755"
        );
    }

    #[test]
    fn unknown_owner_names_fail_saying_so() {
        let e = eval(
            "/etc/munge/munge.key",
            vec![("owner", eq("slurm")), ("group", eq("slurm"))],
        );
        assert_eq!(
            results(&e),
            [
                (
                    "owner".into(),
                    Fail,
                    "owner: expected slurm, but the target has no user slurm in /etc/passwd (got munge (uid 101))"
                        .into()
                ),
                (
                    "group".into(),
                    Fail,
                    "group: expected slurm, but the target has no group slurm in /etc/group (got munge (gid 102))"
                        .into()
                ),
            ]
        );
    }

    #[test]
    fn malformed_passwd_makes_unknown_names_an_error() {
        let t = image().file(
            "/etc/passwd",
            0o644,
            0,
            0,
            "root:x:0:0::/root:/bin/sh\nmunge:x:101\n",
        );
        let e = run(
            &check(&File, "/etc/munge/munge.key", vec![("owner", eq("munge"))]),
            &t,
        );
        let (status, msg) = result(&e, "owner");
        assert_eq!(status, Error);
        assert_eq!(
            msg,
            "owner: the target has no user munge, and /etc/passwd could not be fully read: \
             /etc/passwd:2: expected 7 colon-separated fields, got 3"
        );
    }

    #[test]
    fn missing_path_fails_exists_and_skips_the_rest() {
        let e = eval(
            "/etc/slurm/slurm.conf",
            vec![("mode", mode(0o644)), ("owner", eq("root"))],
        );
        assert_eq!(
            results(&e),
            [
                (
                    "exists".into(),
                    Fail,
                    "exists: /etc/slurm/slurm.conf does not exist".into()
                ),
                (
                    "mode".into(),
                    Skip,
                    "/etc/slurm/slurm.conf does not exist".into()
                ),
                (
                    "owner".into(),
                    Skip,
                    "/etc/slurm/slurm.conf does not exist".into()
                ),
            ]
        );
        let e = eval("/etc/os-release/x", vec![("exists", b(true))]);
        assert_eq!(result(&e, "exists").0, Fail);
    }

    #[test]
    fn exists_false() {
        let e = eval("/etc/hosts.equiv", vec![("exists", b(false))]);
        assert_eq!(
            results(&e),
            [(
                "exists".into(),
                Pass,
                "exists: /etc/hosts.equiv does not exist".into()
            )]
        );
        let e = eval("/etc/os-release", vec![("exists", b(false))]);
        assert_eq!(
            results(&e),
            [(
                "exists".into(),
                Fail,
                "exists: expected false, but /etc/os-release exists (file)".into()
            )]
        );
        // A dangling symlink exists.
        let e = eval("/etc/alternatives/editor", vec![("exists", b(false))]);
        assert_eq!(result(&e, "exists").0, Fail);
    }

    #[test]
    fn exists_false_with_other_keys_is_a_profile_error() {
        let c = check(
            &File,
            "/x",
            vec![("exists", b(false)), ("mode", mode(0o644))],
        );
        let d = File.validate(&c);
        assert_eq!(
            messages(&d),
            [
                "conflicting-keys: `mode` cannot be checked together with `exists = false`: a missing file has no mode"
            ]
        );
        assert_eq!(d[0].location.as_ref().unwrap().line, 4);
        let c = check(
            &File,
            "/x",
            vec![("exists", b(false)), ("follow", b(false))],
        );
        assert!(File.validate(&c).is_empty());
        let c = check(&File, "/x", vec![("sha256", s("abc"))]);
        assert_eq!(
            messages(&File.validate(&c)),
            ["bad-value: `sha256` must be 64 hexadecimal digits, got \"abc\""]
        );
    }

    #[test]
    fn content_matchers() {
        let e = eval("/etc/os-release", vec![("content", re("(?m)^ID=debian$"))]);
        assert_eq!(result(&e, "content").0, Pass);
        let e = eval("/etc/os-release", vec![("content", re("(?m)^ID=rocky$"))]);
        assert_eq!(
            result(&e, "content"),
            (
                Fail,
                "content: expected matching /^ID=rocky$/, got \"NAME=Debian…\" (2 lines, 22 bytes)"
                    .into()
            )
        );
        let e = eval(
            "/etc/os-release",
            vec![(
                "content",
                preds(vec![Pred::NotContains("ID=debian".into())]),
            )],
        );
        assert_eq!(result(&e, "content").0, Fail);
        let e = eval("/etc/munge", vec![("content", eq("x"))]);
        assert_eq!(
            result(&e, "content"),
            (
                Fail,
                "content: /etc/munge is a directory, not a regular file".into()
            )
        );
    }

    #[test]
    fn unreadable_and_too_large_files_are_errors() {
        let e = eval(
            "/etc/shadow",
            vec![("content", re("root")), ("mode", mode(0o640))],
        );
        assert_eq!(
            results(&e),
            [
                (
                    "content".into(),
                    Error,
                    "content: cannot read /etc/shadow: Permission denied (os error 13) \
                     (nodecheck may need to run as root)"
                        .into()
                ),
                ("mode".into(), Pass, "mode: expected 0640, got 0640".into()),
            ]
        );
        let big = image().file(
            "/var/big",
            0o644,
            0,
            0,
            vec![b'a'; (READ_LIMIT + 1) as usize],
        );
        let e = run(&check(&File, "/var/big", vec![("content", re("a"))]), &big);
        assert_eq!(
            result(&e, "content"),
            (
                Error,
                "content: cannot read /var/big: file is larger than the read limit of 67108864 bytes".into()
            )
        );
    }

    #[test]
    fn sha256_of_content() {
        let t = image().file("/etc/motd", 0o644, 0, 0, "abc");
        let want = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
        let e = run(&check(&File, "/etc/motd", vec![("sha256", s(want))]), &t);
        assert_eq!(result(&e, "sha256").0, Pass);
        let e = run(
            &check(&File, "/etc/os-release", vec![("sha256", s(want))]),
            &t,
        );
        let (status, msg) = result(&e, "sha256");
        assert_eq!(status, Fail);
        assert!(
            msg.starts_with(&format!("sha256: expected {}, got ", want.to_lowercase())),
            "{msg}"
        );
    }

    #[test]
    fn follow_reads_through_links_but_link_keys_see_the_link() {
        let e = eval(
            "/bin",
            vec![
                ("type", s("directory")),
                ("mode", mode(0o755)),
                ("link_target", eq("usr/bin")),
                ("resolves", b(true)),
            ],
        );
        assert!(
            e.properties.iter().all(|p| p.status == Pass),
            "{:#?}",
            e.properties
        );
        let e = eval("/bin", vec![("type", s("symlink"))]);
        assert_eq!(
            result(&e, "type"),
            (Pass, "type: expected symlink, got symlink".into())
        );
        let e = eval(
            "/etc/localtime",
            vec![("content", eq("TZif2")), ("mode", mode(0o600))],
        );
        assert_eq!(
            results(&e),
            [
                (
                    "content".into(),
                    Pass,
                    "content: expected TZif2, got \"TZif2\"".into()
                ),
                (
                    "mode".into(),
                    Fail,
                    "mode: expected 0600, got 0644 (via symlink to ../usr/share/zoneinfo/UTC)"
                        .into()
                ),
            ]
        );
    }

    #[test]
    fn follow_false_looks_at_the_link_itself() {
        let e = eval(
            "/bin",
            vec![
                ("follow", b(false)),
                ("type", s("directory")),
                ("mode", mode(0o777)),
            ],
        );
        assert_eq!(
            results(&e),
            [
                (
                    "type".into(),
                    Fail,
                    "type: expected directory, got symlink".into()
                ),
                ("mode".into(), Pass, "mode: expected 0777, got 0777".into()),
            ]
        );
        let e = eval(
            "/etc/localtime",
            vec![("follow", b(false)), ("content", eq("TZif2"))],
        );
        assert_eq!(
            result(&e, "content"),
            (
                Fail,
                "content: /etc/localtime is a symlink, and with follow = false a symlink has no content".into()
            )
        );
    }

    #[test]
    fn dangling_links_exist_but_do_not_resolve() {
        let e = eval(
            "/etc/alternatives/editor",
            vec![
                ("type", s("symlink")),
                ("link_target", re("vim$")),
                ("resolves", b(true)),
                ("mode", mode(0o755)),
                ("owner", eq("root")),
            ],
        );
        assert_eq!(
            results(&e),
            [
                ("type".into(), Pass, "type: expected symlink, got symlink".into()),
                ("link_target".into(), Pass, "link_target: expected matching /vim$/, got /usr/bin/vim".into()),
                (
                    "resolves".into(),
                    Fail,
                    "resolves: expected true, got false (/etc/alternatives/editor points to /usr/bin/vim: \
                     No such file or directory (os error 2))"
                        .into()
                ),
                (
                    "mode".into(),
                    Fail,
                    "mode: symlink /etc/alternatives/editor does not resolve inside the root \
                     (points to /usr/bin/vim: No such file or directory (os error 2))"
                        .into()
                ),
                (
                    "owner".into(),
                    Fail,
                    "owner: symlink /etc/alternatives/editor does not resolve inside the root \
                     (points to /usr/bin/vim: No such file or directory (os error 2))"
                        .into()
                ),
            ]
        );
        let e = eval(
            "/etc/alternatives/editor",
            vec![("link_target", eq("/usr/bin/nano"))],
        );
        assert_eq!(
            result(&e, "link_target"),
            (
                Fail,
                "link_target: expected /usr/bin/nano, got /usr/bin/vim".into()
            )
        );
        let e = eval("/etc/alternatives/editor", vec![("resolves", b(false))]);
        assert_eq!(result(&e, "resolves").0, Pass);
        let e = eval("/loop", vec![("resolves", b(true))]);
        assert_eq!(result(&e, "resolves").0, Fail);
    }

    #[test]
    fn link_keys_on_a_plain_file() {
        let e = eval(
            "/etc/os-release",
            vec![("link_target", eq("x")), ("resolves", b(true))],
        );
        assert_eq!(
            results(&e),
            [
                (
                    "link_target".into(),
                    Fail,
                    "link_target: /etc/os-release is not a symlink (it is a file)".into()
                ),
                (
                    "resolves".into(),
                    Pass,
                    "resolves: expected true, got true (/etc/os-release leads to /etc/os-release)"
                        .into()
                ),
            ]
        );
    }

    #[test]
    fn special_files() {
        let e = eval(
            "/run/munge.sock",
            vec![
                ("type", s("socket")),
                (
                    "owner",
                    preds(vec![Pred::OneOf(vec![Scalar::Str("munge".into())])]),
                ),
            ],
        );
        assert!(
            e.properties.iter().all(|p| p.status == Pass),
            "{:#?}",
            e.properties
        );
        let e = eval("/run/munge.sock", vec![("sha256", s(&"0".repeat(64)))]);
        assert_eq!(
            result(&e, "sha256"),
            (
                Fail,
                "sha256: /run/munge.sock is a socket, not a regular file".into()
            )
        );
    }

    #[test]
    fn stat_errors_are_errors_and_skip_the_rest() {
        let t = MemoryTarget::new()
            .dir("/root", 0o700, 0, 0)
            .file("/root/.ssh/authorized_keys", 0o600, 0, 0, "")
            .deny("/root");
        let c = check(
            &File,
            "/root/.ssh/authorized_keys",
            vec![("content", eq("")), ("mode", mode(0o600))],
        );
        assert_eq!(
            results(&run(&c, &t)),
            [
                (
                    "exists".into(),
                    Error,
                    "exists: /root/.ssh/authorized_keys could not be looked up: cannot stat it: Permission denied (os error 13) \
                     (nodecheck may need to run as root)"
                        .into()
                ),
                ("content".into(), Skip, "/root/.ssh/authorized_keys could not be looked up".into()),
                ("mode".into(), Skip, "/root/.ssh/authorized_keys could not be looked up".into()),
            ]
        );
    }
}
