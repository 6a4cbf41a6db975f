//! `tree`: walks a directory of the target and looks for broken symlinks,
//! world-writable files, unexpected setuid/setgid programs and files of
//! unknown owners, and holds it to a size budget.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use globset::{Glob, GlobSet, GlobSetBuilder};
use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::{Actual, Matcher, Pred, format_mode};
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic, Value};
use nodecheck_core::run::Context;
use nodecheck_core::target::{
    FileType, Metadata, PerThread, Target, Visit, WalkError, WalkOptions, display_bytes, walk_key,
};

use crate::eval;

pub struct Tree;

const KEYS: &[Key] = &[
    Key::new(
        "broken_symlinks",
        Ty::Bool,
        "`false`: no symlink in the tree fails to resolve inside the root (dangling, or a loop). \
         `true` asserts nothing and is refused.",
    ),
    Key::new(
        "world_writable",
        Ty::Bool,
        "`false`: no world-writable regular file, and no world-writable directory without the \
         sticky bit. Symlinks, devices, sockets and fifos are ignored. `true` is refused.",
    ),
    Key::new(
        "setuid",
        Ty::StrList,
        "Allow-list of paths (globs): every setuid or setgid regular file found must match one. \
         An empty list allows none.",
    ),
    Key::new(
        "capabilities",
        Ty::StrList,
        "Allow-list of paths (globs): every regular file with file capabilities \
         (`security.capability`, what `setcap` sets: `cap_net_raw=ep`) must match one. An \
         empty list allows none. Each regular file's xattrs are read from its descriptor \
         (through the content door).",
    ),
    Key::new(
        "unowned",
        Ty::Bool,
        "`false`: every entry's owner is a user of the target's /etc/passwd and its group a \
         group of its /etc/group (files of a deleted account, or unpacked with a build host's \
         ids, fail). `true` is refused.",
    ),
    Key::new(
        "total_size",
        Ty::Matcher(Compare::Quantity),
        "Budget for the sum of the sizes of the regular files (a hard-linked file counts \
         once): what the tree costs unpacked, in a RAM root. `{ le = \"2GiB\" }`; the \
         failure names the largest files.",
    ),
    Key::new(
        "entries",
        Ty::Matcher(Compare::Quantity),
        "Budget for the number of entries (files, directories, links, …): `{ le = \"150000\" }`.",
    ),
    Key::new(
        "max_file_size",
        Ty::Matcher(Compare::Quantity),
        "Every regular file's size satisfies it: `{ le = \"512MiB\" }`; the failure names the \
         files over it, largest first.",
    ),
    Key::new(
        "max_depth",
        Ty::Int,
        "Deepest level walked, like `find -maxdepth` (0 = the path itself). Default: no limit.",
    )
    .modifier(),
    Key::new(
        "exclude",
        Ty::StrList,
        "Globs over absolute paths in the target; a match is skipped, and so is everything \
         below a matching directory. `*` also matches `/`.",
    )
    .modifier(),
];

const DOC: &str = r#"## What it checks

Walks everything below `path` in the target, like `find PATH -xdev`, and
reports what should not be there. Symlinks are never followed by the walk;
each one is resolved *inside the root* to decide whether it is broken (a
link into `/usr/lib` of the image is fine even if the host has no such
file). A link into `/dev`, `/proc`, `/sys` or `/run` is not counted as
broken: those are filled at boot, and an image links into them by design
(systemd masks a unit with a link to `/dev/null`; `/etc/mtab` points to
`../proc/self/mounts`), even where an unpacked tree has no such file. The walk stays on the filesystem `path` is on (mount points are
listed, not entered), which keeps a live `/` walk out of /proc and network
filesystems.

The start is resolved first, and paths are reported and matched under the
resolved start: on a merged-/usr image `path = "/lib"` walks and reports
`/usr/lib/...`, so write `exclude` and `setuid` globs with the real paths.
Globs match whole absolute paths and `*` crosses `/` (`"*.pyc"` matches
at any depth; `"/proc"` excludes /proc and everything below it).

A failure names the first 10 offenders (with their modes where useful),
says how many there are in all, and the full list goes into the check's
output (JUnit system-out, JSON `output`). Entries that cannot be read
(permission denied when nodecheck does not run as root) make a property an
*error* when nothing else was found wrong, since the tree could not be
checked whole. A `path` that does not exist fails the first property and
skips the others.

`setuid` regards regular files only: setgid *directories* (shared group
directories) are normal. An empty list (`setuid = []`) allows no setuid or
setgid file at all.

`capabilities` is the same kind of allow-list for regular files that carry
file capabilities (the `security.capability` xattr `setcap` writes, shown
as `getcap` does: `cap_net_raw=ep`): a file with capabilities that no glob
matches fails. Each regular file is opened through the content door and
its xattrs are read from that descriptor; a target that cannot read
xattrs makes the property an *error*, never a pass. `nodecheck baseline`
writes both lists from a known-good image.

`unowned = false` looks every entry's uid and gid up in the target's own
`/etc/passwd` and `/etc/group` (never the host's): a file left by a deleted
account, or unpacked with a build host's ids, fails. When those files
cannot be read the property is an *error*.

The size budget: `total_size` bounds the sum of the sizes of the regular
files (apparent sizes, a hard-linked file once: what the tree costs
unpacked into a RAM root), `entries` the number of entries walked, and
`max_file_size` every single file. They are bounds, written
`{ le = "2GiB" }` (a plain value is refused). A `total_size` failure names
the 10 largest files; a `max_file_size` failure names every file over the
bound, largest first. Entries that cannot be read make a budget that would
pass an *error* (the count is incomplete). The same three names, with the
same meaning for the unpacked contents, are meant for a packed `image`
kind.

## Example

```toml
[[control]]
id = "image-hygiene"
title = "No broken links, no world-writable files, known setuid programs"

  [[control.tree]]
  path            = "/"
  exclude         = ["/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp"]
  broken_symlinks = false
  world_writable  = false
  setuid          = ["/usr/bin/sudo", "/usr/bin/passwd", "/usr/bin/chsh", "/usr/bin/chfn",
                     "/usr/bin/newgrp", "/usr/bin/gpasswd", "/usr/bin/su", "/usr/bin/mount",
                     "/usr/bin/umount", "/usr/lib/openssh/ssh-keysign", "/usr/sbin/unix_chkpwd"]

  [[control.tree]]
  path          = "/"
  exclude       = ["/proc", "/sys", "/dev", "/run"]
  unowned       = false
  total_size    = { le = "2GiB" }
  entries       = { le = "150000" }
  max_file_size = { le = "512MiB" }

  [[control.tree]]
  path            = "/opt/apps"
  max_depth       = 4
  broken_symlinks = false
```

## Targets

Every target. Walking `/` of a large image takes a while; narrow `path` or
use `exclude` and `max_depth`.
"#;

impl Kind for Tree {
    fn name(&self) -> &'static str {
        "tree"
    }

    fn subject(&self) -> Key {
        Key::new(
            "path",
            Ty::Str,
            "The directory to walk (absolute, inside the target).",
        )
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn validate(&self, check: &Check) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for (key, what) in [
            ("broken_symlinks", "broken symlinks"),
            ("world_writable", "world-writable files"),
        ] {
            if check.bool(key) == Some(true) {
                out.push(eval::diagnostic(
                    check,
                    key,
                    "bad-value",
                    format!(
                        "`{key} = true` asserts nothing; write `{key} = false` to forbid {what}"
                    ),
                ));
            }
        }
        if check.bool("unowned") == Some(true) {
            out.push(eval::diagnostic(
                check,
                "unowned",
                "bad-value",
                "`unowned = true` asserts nothing; write `unowned = false` to forbid files \
                 whose owner or group the target does not know"
                    .to_string(),
            ));
        }
        for key in BUDGETS {
            let Some(m) = check.matcher(key) else {
                continue;
            };
            let ordered = m
                .preds
                .iter()
                .all(|p| matches!(p, Pred::Le(_) | Pred::Lt(_) | Pred::Ge(_) | Pred::Gt(_)));
            if !ordered {
                out.push(eval::diagnostic(
                    check,
                    key,
                    "bad-value",
                    format!(
                        "`{key}` is a budget: write a bound such as `{key} = {{ le = \"{}\" }}`",
                        if *key == "entries" { "150000" } else { "2GiB" }
                    ),
                ));
            }
        }
        if check.int("max_depth").is_some_and(|d| d < 0) {
            out.push(eval::diagnostic(
                check,
                "max_depth",
                "bad-value",
                "`max_depth` must be 0 or more".to_string(),
            ));
        }
        for key in ["exclude", "setuid", "capabilities"] {
            for pattern in check.list(key).unwrap_or_default() {
                if let Err(e) = Glob::new(pattern) {
                    out.push(eval::diagnostic(
                        check,
                        key,
                        "bad-value",
                        format!("`{key}`: {pattern:?} is not a valid glob: {}", e.kind()),
                    ));
                }
            }
        }
        out
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let path = check.subject.as_str();
        let mut out = Evaluation::default();
        let globs = |key: &str| globs(check.list(key).unwrap_or_default());
        let (exclude, allow, caps_allow) =
            match (globs("exclude"), globs("setuid"), globs("capabilities")) {
                (Ok(e), Ok(a), Ok(c)) => (e, a, c),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                    // validate() refuses these; still never panic.
                    for p in eval::asserted(check, &[]) {
                        out.push(PropertyResult::error(p.key, format!("{}: {e}", p.key)));
                    }
                    return out;
                }
            };
        let options = WalkOptions {
            max_depth: check
                .int("max_depth")
                .map(|d| usize::try_from(d).unwrap_or(0)),
            same_file_system: true,
            // The walker resolves each link (inside the root, from its
            // byte path) while it walks, in parallel.
            links: check.get("broken_symlinks").is_some(),
        };
        let want = Wanted {
            broken: check.get("broken_symlinks").is_some(),
            writable: check.get("world_writable").is_some(),
            setuid: check.get("setuid").is_some(),
            unowned: check.get("unowned").is_some(),
            capabilities: check.get("capabilities").is_some().then_some(caps_allow),
            sizes: check.get("total_size").is_some() || check.get("max_file_size").is_some(),
            max_file_size: check.matcher("max_file_size").cloned(),
        };
        if want.unowned {
            let accounts = cx.target.accounts();
            let errors: Vec<String> = accounts
                .errors
                .iter()
                .filter(|e| e.starts_with("/etc/passwd") || e.starts_with("/etc/group"))
                .cloned()
                .collect();
            if !errors.is_empty() {
                out.push(PropertyResult::error(
                    "unowned",
                    format!(
                        "unowned: the target's accounts cannot be read: {}",
                        eval::capped(&errors)
                    ),
                ));
                return out;
            }
        }
        // In parallel, each directory held open as it is listed; what is
        // found is put in walk order afterwards.
        let collect = Collect::new();
        let walked = cx.target.walk_parallel(path, &options, &|v| match v {
            Err(e) => {
                collect.push(&e.path, List::Errors, e.to_string());
                true
            }
            Ok(v) => {
                if v.depth > 0 && !exclude.is_empty() && exclude.is_match(v.display()) {
                    return false;
                }
                collect.look_at(cx.target, v, &want, &allow);
                true
            }
        });
        let found = collect.finish(&want);
        if let Err(e) = walked {
            // The goss rule for a path every property needs (eval::PATH).
            let p = if eval::is_absent(&e) {
                eval::Presence::Absent(String::new())
            } else {
                eval::Presence::Unknown(format!("cannot walk it: {}", eval::io_text(&e)))
            };
            let (Ok(v) | Err(v)) = eval::presence_as(check, &eval::PATH, path, p);
            out.properties.extend(v);
            return out;
        }
        for prop in eval::asserted(check, &[]) {
            let key = prop.key;
            let r = match (key, &prop.value) {
                ("broken_symlinks", Value::Bool(false)) => {
                    found.verdict(key, path, "broken symlink", &found.broken, &mut out.output)
                }
                ("world_writable", Value::Bool(false)) => found.verdict(
                    key,
                    path,
                    "world-writable entry",
                    &found.writable,
                    &mut out.output,
                ),
                ("setuid", Value::List(_)) => found.verdict(
                    key,
                    path,
                    "setuid/setgid file outside the allow-list",
                    &found.setuid,
                    &mut out.output,
                ),
                ("capabilities", Value::List(_)) => found.verdict(
                    key,
                    path,
                    "file with capabilities outside the allow-list",
                    &found.capabilities,
                    &mut out.output,
                ),
                ("unowned", Value::Bool(false)) => found.verdict(
                    key,
                    path,
                    "entry with an unknown owner or group",
                    &found.unowned,
                    &mut out.output,
                ),
                ("total_size", Value::Matcher(m)) => found.total_size(m, path, &mut out.output),
                ("entries", Value::Matcher(m)) => found.entries(m, path),
                ("max_file_size", Value::Matcher(m)) => {
                    found.max_file_size(m, path, &mut out.output)
                }
                (key, v) => PropertyResult::error(
                    key,
                    format!("{key}: tree cannot check {v:?} (the loader should have refused it)"),
                ),
            };
            out.push(r);
        }
        if !found.errors.is_empty() {
            eval::section(
                &mut out.output,
                &format!("unreadable entries under {path}"),
                &found.errors,
            );
        }
        out
    }
}

/// A file's capabilities (`cap_net_raw=ep`), read from the descriptor
/// the content door opens; `None` when it has none. A target that cannot
/// read xattrs is an error, never "no capabilities".
fn file_capability(t: &dyn Target, path: &str) -> std::io::Result<Option<String>> {
    let file = t.open(path)?;
    let Some(xattrs) = file.xattrs()? else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "this target cannot read extended attributes",
        ));
    };
    Ok(xattrs
        .iter()
        .find(|(name, _)| name.as_slice() == crate::drift::caps::XATTR.as_bytes())
        .map(|(_, v)| crate::drift::caps::decode(v).unwrap_or_else(|e| format!("invalid: {e}"))))
}

/// The keys that are budgets (bounds on quantities).
const BUDGETS: &[&str] = &["total_size", "entries", "max_file_size"];

/// How many of the largest files a size failure names.
const LARGEST: usize = 10;

fn globs(patterns: &[String]) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).map_err(|e| format!("{p:?} is not a valid glob: {}", e.kind()))?);
    }
    b.build().map_err(|e| e.to_string())
}

/// Which properties the walk must collect for.
struct Wanted {
    broken: bool,
    writable: bool,
    setuid: bool,
    unowned: bool,
    /// The allow-list of files with capabilities, when asked.
    capabilities: Option<GlobSet>,
    /// Sum sizes and keep the largest files.
    sizes: bool,
    max_file_size: Option<Matcher>,
}

#[derive(Default)]
struct Found {
    entries: usize,
    broken: Vec<String>,
    writable: Vec<String>,
    setuid: Vec<String>,
    allowed: usize,
    unowned: Vec<String>,
    capabilities: Vec<String>,
    /// Sum of regular file sizes, hard links once.
    bytes: u64,
    files: usize,
    /// The largest files, largest first, at most [`LARGEST`].
    largest: Vec<(u64, String)>,
    /// Files whose size fails `max_file_size`.
    oversized: Vec<(u64, String)>,
    errors: Vec<String>,
}

/// `3.0GiB`, `512.0MiB`, `12B`: a size as the matchers show amounts.
fn size(bytes: u64) -> String {
    #[expect(clippy::cast_precision_loss, reason = "bytes, shown rounded")]
    let value = bytes as f64;
    Actual::Amount { value, total: None }.to_string()
}

fn amount(bytes: u64) -> Actual<'static> {
    #[expect(clippy::cast_precision_loss, reason = "bytes, compared as amounts")]
    let value = bytes as f64;
    Actual::Amount { value, total: None }
}

/// Filesystems the kernel and systemd fill at boot: an image's links into
/// them (units masked with `-> /dev/null`, `/etc/mtab -> ../proc/self/mounts`)
/// dangle in an unpacked tree by design, not by mistake.
const RUNTIME_FS: &[&str] = &["/dev", "/proc", "/sys", "/run"];

/// Whether the link at `path` with text `to` points into [`RUNTIME_FS`]
/// (its target path normalised lexically, as the kernel would walk it
/// from the link's directory).
fn into_runtime_fs(path: &str, to: &str) -> bool {
    let mut parts: Vec<&str> = Vec::new();
    if !to.starts_with('/') {
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        parts.extend(dir.split('/').filter(|c| !c.is_empty()));
    }
    for c in to.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts
        .first()
        .is_some_and(|top| RUNTIME_FS.iter().any(|r| r[1..] == **top))
}

/// Which list of [`Found`] an item goes to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum List {
    Broken,
    Writable,
    Setuid,
    Unowned,
    Capabilities,
    Errors,
}

/// What the parallel walk collects, in no order; [`Collect::finish`]
/// puts it in walk order (depth first, names by their bytes), so the
/// report is the same however the threads ran.
struct Collect {
    /// Entries counted (every entry counts).
    entries: PerThread<AtomicUsize>,
    shared: Mutex<Shared>,
}

#[derive(Default)]
struct Shared {
    /// (walk key, list, text).
    items: Vec<(Vec<u8>, List, String)>,
    allowed: usize,
    bytes: u64,
    files: usize,
    /// Hard-linked files, counted once: per (dev, ino), the first path in
    /// walk order (its key, the path) and the size.
    linked: HashMap<(u64, u64), (Vec<u8>, String, u64)>,
    /// The largest files so far: (size, walk key, path), ties in walk
    /// order.
    largest: Vec<(u64, Vec<u8>, String)>,
    /// Files over `max_file_size`: (size, path).
    oversized: Vec<(u64, String)>,
}

impl Collect {
    fn new() -> Collect {
        Collect {
            entries: PerThread::default(),
            shared: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, path: &[u8], list: List, text: String) {
        self.lock().items.push((walk_key(path), list, text));
    }

    fn count(&self) {
        self.entries.mine().fetch_add(1, Ordering::Relaxed);
    }

    /// Looks at one entry. Its metadata is asked for (an `fstatat` on the
    /// walked directory) only when a property needs it, and for a symlink
    /// only by `unowned`.
    fn look_at(&self, t: &dyn Target, v: &Visit<'_>, want: &Wanted, allow: &GlobSet) {
        let needs_md = want.unowned
            || (v.file_type != FileType::Symlink
                && (want.writable || want.setuid || want.sizes || want.capabilities.is_some()));
        let md = if needs_md {
            match v.metadata() {
                Ok(md) => Some(md),
                Err(error) => {
                    let e = WalkError {
                        path: v.path.to_vec(),
                        error,
                    };
                    self.push(v.path, List::Errors, e.to_string());
                    return;
                }
            }
        } else {
            None
        };
        self.count();
        let path = || v.display();
        if want.unowned
            && let Some(md) = &md
        {
            let a = t.accounts();
            let user = a.user_by_uid(md.uid).is_some();
            let group = a.group_by_gid(md.gid).is_some();
            if !user || !group {
                let what = match (user, group) {
                    (false, false) => format!("uid {} and gid {} unknown", md.uid, md.gid),
                    (false, true) => format!("uid {} unknown", md.uid),
                    _ => format!("gid {} unknown", md.gid),
                };
                self.push(v.path, List::Unowned, format!("{} ({what})", path()));
            }
        }
        if want.sizes
            && let Some(md) = &md
            && md.file_type == FileType::File
        {
            self.size(v.path, path(), md, want);
        }
        match (v.file_type, &md) {
            (FileType::Symlink, _) if want.broken => {
                // From the walker: the link's end, found from its bytes,
                // so a name that is not UTF-8 is neither falsely broken
                // nor confused with a look-alike (`a\xff` vs `a�`).
                let Some(link) = &v.link else {
                    self.push(
                        v.path,
                        List::Errors,
                        format!("{}: the walk did not resolve this link", path()),
                    );
                    return;
                };
                match &link.target {
                    Ok(_) => {}
                    Err(e) if eval::is_absent(e) => {
                        let to = display_bytes(&link.text);
                        let path = path();
                        if !into_runtime_fs(&path, &to) {
                            self.push(v.path, List::Broken, format!("{path} -> {to}"));
                        }
                    }
                    Err(e) => self.push(v.path, List::Errors, format!("{}: {e}", path())),
                }
            }
            (_, Some(md)) if md.file_type == FileType::File => {
                if want.writable && md.mode & 0o002 != 0 {
                    let text = format!("{} ({})", path(), format_mode(md.mode));
                    self.push(v.path, List::Writable, text);
                }
                if want.setuid && md.mode & 0o6000 != 0 {
                    let path = path();
                    if allow.is_match(&path) {
                        self.lock().allowed += 1;
                    } else {
                        let text = format!("{path} ({})", format_mode(md.mode));
                        self.push(v.path, List::Setuid, text);
                    }
                }
                if let Some(caps_allow) = &want.capabilities {
                    let path = path();
                    match file_capability(t, &path) {
                        Ok(Some(caps)) if !caps_allow.is_match(&path) => {
                            self.push(v.path, List::Capabilities, format!("{path} ({caps})"));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            let text = format!("{path}: {}", eval::io_text(&e));
                            self.push(v.path, List::Errors, text);
                        }
                    }
                }
            }
            (_, Some(md))
                if md.file_type == FileType::Directory
                    && want.writable
                    && md.mode & 0o002 != 0
                    && md.mode & 0o1000 == 0 =>
            {
                let text = format!(
                    "{} (directory {}, no sticky bit)",
                    path(),
                    format_mode(md.mode)
                );
                self.push(v.path, List::Writable, text);
            }
            _ => {}
        }
    }

    /// A regular file's size, for the budgets: a hard-linked file once,
    /// under its first path in walk order (settled in `finish`).
    fn size(&self, raw: &[u8], path: String, md: &Metadata, want: &Wanted) {
        let key = walk_key(raw);
        let mut s = self.lock();
        if md.nlink > 1 {
            match s.linked.entry((md.dev, md.ino)) {
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    if key < e.get().0 {
                        e.insert((key, path, md.size));
                    }
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert((key, path, md.size));
                }
            }
            return;
        }
        s.add_file(md.size, key, path, want);
    }

    /// Everything in walk order, as [`Found`].
    fn finish(self, want: &Wanted) -> Found {
        let entries = self.entries.all().map(|c| c.load(Ordering::Relaxed)).sum();
        let mut s = self.shared.into_inner().unwrap_or_else(|p| p.into_inner());
        let linked: Vec<_> = s.linked.drain().map(|(_, v)| v).collect();
        for (key, path, size) in linked {
            s.add_file(size, key, path, want);
        }
        s.trim_largest();
        s.items.sort_by(|a, b| a.0.cmp(&b.0));
        let mut found = Found {
            entries,
            allowed: s.allowed,
            bytes: s.bytes,
            files: s.files,
            largest: s
                .largest
                .into_iter()
                .map(|(size, _, p)| (size, p))
                .collect(),
            oversized: s.oversized,
            ..Found::default()
        };
        for (_, list, text) in s.items {
            match list {
                List::Broken => found.broken.push(text),
                List::Writable => found.writable.push(text),
                List::Setuid => found.setuid.push(text),
                List::Unowned => found.unowned.push(text),
                List::Capabilities => found.capabilities.push(text),
                List::Errors => found.errors.push(text),
            }
        }
        found
    }
}

impl Shared {
    fn add_file(&mut self, size: u64, key: Vec<u8>, path: String, want: &Wanted) {
        self.bytes = self.bytes.saturating_add(size);
        self.files += 1;
        if let Some(m) = &want.max_file_size
            && !m.test(amount(size))
        {
            self.oversized.push((size, path.clone()));
        }
        self.largest.push((size, key, path));
        if self.largest.len() >= 8 * LARGEST {
            self.trim_largest();
        }
    }

    /// The largest files, largest first, ties in walk order; at most
    /// [`LARGEST`].
    fn trim_largest(&mut self) {
        self.largest
            .sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        self.largest.truncate(LARGEST);
    }
}

impl Found {
    /// The largest files, `path (size)`.
    fn largest(&self) -> Vec<String> {
        self.largest
            .iter()
            .map(|(s, p)| format!("{p} ({})", size(*s)))
            .collect()
    }

    /// An error when entries could not be read: a budget the walk may have
    /// undercounted is not a pass.
    fn undercounted(&self, key: &str, root: &str) -> Option<PropertyResult> {
        let e = self.errors.len();
        (e > 0).then(|| {
            PropertyResult::error(
                key,
                format!(
                    "{key}: {e} entr{} under {root} could not be read, so the count is incomplete: {}",
                    if e == 1 { "y" } else { "ies" },
                    eval::capped(&self.errors)
                ),
            )
        })
    }

    fn total_size(&self, m: &Matcher, root: &str, output: &mut String) -> PropertyResult {
        let ok = m.test(amount(self.bytes));
        if !ok {
            eval::section(
                output,
                &format!("total_size: the largest files under {root}"),
                &self.largest(),
            );
            return PropertyResult::compare(
                "total_size",
                false,
                m.describe(),
                format!(
                    "{} in {} files under {root}; largest: {}",
                    size(self.bytes),
                    self.files,
                    self.largest().join(", ")
                ),
            );
        }
        if let Some(e) = self.undercounted("total_size", root) {
            return e;
        }
        PropertyResult::compare(
            "total_size",
            true,
            m.describe(),
            format!("{} in {} files under {root}", size(self.bytes), self.files),
        )
    }

    fn entries(&self, m: &Matcher, root: &str) -> PropertyResult {
        let n = i64::try_from(self.entries).unwrap_or(i64::MAX);
        let ok = m.test(Actual::Int(n));
        if ok && let Some(e) = self.undercounted("entries", root) {
            return e;
        }
        PropertyResult::compare(
            "entries",
            ok,
            m.describe(),
            format!("{} entries under {root}", self.entries),
        )
    }

    fn max_file_size(&self, m: &Matcher, root: &str, output: &mut String) -> PropertyResult {
        let mut over = self.oversized.clone();
        over.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let items: Vec<String> = over
            .iter()
            .map(|(s, p)| format!("{p} ({})", size(*s)))
            .collect();
        if !items.is_empty() {
            eval::section(
                output,
                &format!("max_file_size: files under {root} not {}", m.describe()),
                &items,
            );
            return PropertyResult::compare(
                "max_file_size",
                false,
                m.describe(),
                format!(
                    "{} file{} under {root}: {}",
                    items.len(),
                    if items.len() == 1 { "" } else { "s" },
                    eval::capped(&items)
                ),
            );
        }
        if let Some(e) = self.undercounted("max_file_size", root) {
            return e;
        }
        let biggest = self
            .largest
            .first()
            .map_or("no file".to_string(), |(s, p)| {
                format!("the largest is {p} ({})", size(*s))
            });
        PropertyResult::compare(
            "max_file_size",
            true,
            m.describe(),
            format!("{biggest}, of {} files under {root}", self.files),
        )
    }

    /// One property's result from what the walk found; the full list goes
    /// into `output`.
    fn verdict(
        &self,
        key: &str,
        root: &str,
        what: &str,
        items: &[String],
        output: &mut String,
    ) -> PropertyResult {
        let n = items.len();
        let plural = |n: usize| {
            if n == 1 {
                what.to_string()
            } else {
                plural(what)
            }
        };
        if n > 0 {
            eval::section(
                output,
                &format!("{key}: {n} {} under {root}", plural(n)),
                items,
            );
            return PropertyResult::verdict(
                key,
                false,
                format!(
                    "{key}: {n} {} under {root}: {}",
                    plural(n),
                    eval::capped(items)
                ),
            )
            .with_expected("none")
            .with_actual(n.to_string());
        }
        if !self.errors.is_empty() {
            let e = self.errors.len();
            return PropertyResult::error(
                key,
                format!(
                    "{key}: {e} entr{} under {root} could not be read: {}",
                    if e == 1 { "y" } else { "ies" },
                    eval::capped(&self.errors)
                ),
            );
        }
        let allowed = if key == "setuid" {
            format!("{} allowed, ", self.allowed)
        } else {
            String::new()
        };
        PropertyResult::verdict(
            key,
            true,
            format!(
                "{key}: no {} under {root} ({allowed}{} entries checked)",
                plural(2),
                self.entries
            ),
        )
        .with_expected("none")
        .with_actual("0")
    }
}

/// `broken symlink` → `broken symlinks`, `…entry` → `…entries`,
/// `file outside the allow-list` → `files outside the allow-list`.
fn plural(what: &str) -> String {
    // The noun ends where its first qualifier starts.
    let (noun, rest) = match [" outside", " with"]
        .iter()
        .filter_map(|q| what.find(q))
        .min()
    {
        Some(i) => what.split_at(i),
        None => (what, ""),
    };
    match noun.strip_suffix('y') {
        Some(stem) => format!("{stem}ies{rest}"),
        None => format!("{noun}s{rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use nodecheck_core::outcome::Status::{Error, Fail, Pass, Skip};

    #[test]
    fn plurals_end_the_noun_at_its_first_qualifier() {
        assert_eq!(
            plural("file with capabilities outside the allow-list"),
            "files with capabilities outside the allow-list"
        );
        assert_eq!(
            plural("setuid/setgid file outside the allow-list"),
            "setuid/setgid files outside the allow-list"
        );
        assert_eq!(plural("world-writable entry"), "world-writable entries");
    }
    use nodecheck_core::target::MemoryTarget;

    fn image() -> MemoryTarget {
        MemoryTarget::new()
            .dir("/usr/bin", 0o755, 0, 0)
            .file("/usr/bin/sudo", 0o4755, 0, 0, "")
            .file("/usr/bin/wall", 0o2755, 0, 5, "")
            .file("/usr/bin/ls", 0o755, 0, 0, "")
            .symlink("/usr/bin/vi", "/etc/alternatives/vi")
            .symlink("/etc/alternatives/vi", "/usr/bin/vim.basic")
            .symlink("/usr/bin/editor", "nano")
            .symlink("/bin", "usr/bin")
            .dir("/tmp", 0o1777, 0, 0)
            .dir("/var/mail", 0o2775, 0, 8)
            .dir("/srv/drop", 0o777, 0, 0)
            .file("/srv/drop/notes", 0o666, 1000, 1000, "")
            .special("/dev/null", FileType::Char, 0o666, 0, 0)
    }

    fn eval(path: &str, props: Vec<(&str, Value)>) -> Evaluation {
        run(&check(&Tree, path, props), &image())
    }

    #[test]
    fn links_into_runtime_filesystems_are_not_broken() {
        assert!(into_runtime_fs(
            "/usr/lib/systemd/system/x.service",
            "/dev/null"
        ));
        assert!(into_runtime_fs("/etc/mtab", "../proc/self/mounts"));
        assert!(into_runtime_fs(
            "/etc/resolv.conf",
            "../run/systemd/resolve/stub-resolv.conf"
        ));
        assert!(!into_runtime_fs("/usr/bin/x", "../lib/x"));
        assert!(!into_runtime_fs("/usr/bin/x", "/devices/x"));
        assert!(!into_runtime_fs("/x", "../../../../etc/devx"));
        let t = MemoryTarget::new()
            .dir("/etc", 0o755, 0, 0)
            .symlink("/etc/mtab", "../proc/self/mounts")
            .symlink("/etc/gone", "/usr/lib/gone");
        let e = run(
            &check(&Tree, "/etc", vec![("broken_symlinks", b(false))]),
            &t,
        );
        let (status, msg) = result(&e, "broken_symlinks");
        assert_eq!(status, Fail, "{msg}");
        assert!(msg.contains("/etc/gone") && !msg.contains("mtab"), "{msg}");
    }

    #[test]
    fn broken_symlinks_resolve_inside_the_root() {
        let e = eval("/", vec![("broken_symlinks", b(false))]);
        assert_eq!(
            results(&e),
            [(
                "broken_symlinks".into(),
                Fail,
                "broken_symlinks: 3 broken symlinks under /: /etc/alternatives/vi -> /usr/bin/vim.basic, \
                 /usr/bin/editor -> nano, /usr/bin/vi -> /etc/alternatives/vi"
                    .into()
            )]
        );
        assert_eq!(
            e.output,
            "broken_symlinks: 3 broken symlinks under /:\n  /etc/alternatives/vi -> /usr/bin/vim.basic\n  \
             /usr/bin/editor -> nano\n  /usr/bin/vi -> /etc/alternatives/vi\n"
        );
        let e = eval(
            "/",
            vec![
                ("broken_symlinks", b(false)),
                ("exclude", list(&["/usr/bin/*", "/etc/alternatives"])),
            ],
        );
        assert_eq!(result(&e, "broken_symlinks").0, Pass);
        assert_eq!(e.properties.len(), 1);
    }

    #[test]
    fn the_message_is_capped_and_the_output_complete() {
        let mut t = MemoryTarget::new();
        for i in 0..12 {
            t = t.symlink(&format!("/l/{i:02}"), "/nowhere");
        }
        let e = run(&check(&Tree, "/l", vec![("broken_symlinks", b(false))]), &t);
        let (status, msg) = result(&e, "broken_symlinks");
        assert_eq!(status, Fail);
        assert!(
            msg.starts_with("broken_symlinks: 12 broken symlinks under /l: /l/00 -> /nowhere,")
        );
        assert!(msg.ends_with("/l/09 -> /nowhere and 2 more"), "{msg}");
        assert_eq!(e.output.lines().count(), 13);
        assert!(e.output.contains("  /l/11 -> /nowhere\n"));
    }

    /// The walk runs on many threads in no order; the report is in walk
    /// order all the same (depth first, names by their bytes), and a
    /// hard-linked file counts once, under its first path in walk order.
    #[test]
    #[expect(
        clippy::disallowed_methods,
        reason = "builds a tree on disk for the parallel walker"
    )]
    fn a_parallel_walk_reports_in_walk_order() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let mut want = Vec::new();
        // 600 entries in one directory (looked at in parallel chunks),
        // and nested directories (each a task of its own).
        for d in ["a", "a/b", "a.b", "z"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        for (d, n) in [("a", 600), ("a/b", 40), ("a.b", 40), ("z", 40)] {
            for i in 0..n {
                let p = r.join(format!("{d}/f{i:03}"));
                std::fs::write(&p, vec![0u8; i % 7]).unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
                want.push(format!("/{d}/f{i:03} (0666)"));
            }
        }
        // Walk order: `/` before any byte of a name, so `/a/b/f000` comes
        // before `/a/f000`, and both before `/a.b/f000`.
        want.sort_by_key(|p| walk_key(p.split(' ').next().unwrap().as_bytes()));
        // Two names of one 9-byte file, the later one in walk order first
        // created; and the largest files tie at 6 bytes.
        std::fs::write(r.join("z/big"), b"123456789").unwrap();
        std::fs::hard_link(r.join("z/big"), r.join("a/link")).unwrap();
        let t = nodecheck_core::target::RootFs::open(r).unwrap();
        let e = run(
            &check(
                &Tree,
                "/",
                vec![
                    ("world_writable", b(false)),
                    ("total_size", le("5B")),
                    ("max_file_size", le("5B")),
                ],
            ),
            &t,
        );
        let section: Vec<&str> = e
            .output
            .lines()
            .skip_while(|l| !l.starts_with("world_writable:"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .map(str::trim)
            .collect();
        assert_eq!(section, want, "{}", e.output);
        // The hard-linked file once, under its first path in walk order
        // (/a/link before /z/big). The largest files: ties in walk order;
        // the files over the bound: ties by path.
        let (_, msg) = result(&e, "total_size");
        assert!(
            msg.ends_with(
                "largest: /a/link (9B), /a/b/f006 (6B), /a/b/f013 (6B), /a/b/f020 (6B), \
                 /a/b/f027 (6B), /a/b/f034 (6B), /a/f006 (6B), /a/f013 (6B), /a/f020 (6B), \
                 /a/f027 (6B)"
            ),
            "{msg}"
        );
        let (_, msg) = result(&e, "max_file_size");
        assert!(
            msg.contains(": /a/link (9B), /a.b/f006 (6B), /a.b/f013 (6B),"),
            "{msg}"
        );
        assert!(!msg.contains("/z/big"), "{msg}");
    }

    #[test]
    fn world_writable_files_and_unsticky_dirs() {
        let e = eval("/", vec![("world_writable", b(false))]);
        assert_eq!(
            results(&e),
            [(
                "world_writable".into(),
                Fail,
                "world_writable: 2 world-writable entries under /: /srv/drop (directory 0777, no sticky bit), \
                 /srv/drop/notes (0666)"
                    .into()
            )]
        );
        let e = eval("/usr", vec![("world_writable", b(false))]);
        assert_eq!(
            result(&e, "world_writable"),
            (
                Pass,
                "world_writable: no world-writable entries under /usr (7 entries checked)".into()
            )
        );
    }

    #[test]
    fn setuid_allow_list_takes_globs() {
        let e = eval("/", vec![("setuid", list(&["/usr/bin/sudo"]))]);
        assert_eq!(
            result(&e, "setuid"),
            (
                Fail,
                "setuid: 1 setuid/setgid file outside the allow-list under /: /usr/bin/wall (2755)"
                    .into()
            )
        );
        let e = eval("/", vec![("setuid", list(&["/usr/bin/{sudo,wall}"]))]);
        assert_eq!(result(&e, "setuid").0, Pass);
        let e = eval("/", vec![("setuid", list(&[]))]);
        assert!(result(&e, "setuid").1.contains("2 setuid/setgid files"));
        // setgid directories are not setuid programs.
        let e = eval("/var", vec![("setuid", list(&[]))]);
        assert_eq!(
            result(&e, "setuid"),
            (
                Pass,
                "setuid: no setuid/setgid files outside the allow-list under /var (0 allowed, 2 entries checked)"
                    .into()
            )
        );
    }

    #[test]
    fn max_depth_limits_the_walk() {
        let e = eval(
            "/",
            vec![("world_writable", b(false)), ("max_depth", int(1))],
        );
        assert_eq!(result(&e, "world_writable").0, Pass);
        let e = eval(
            "/",
            vec![("world_writable", b(false)), ("max_depth", int(2))],
        );
        assert_eq!(result(&e, "world_writable").0, Fail);
    }

    #[test]
    fn start_symlinks_are_resolved() {
        let e = eval("/bin", vec![("setuid", list(&["/usr/bin/*"]))]);
        assert_eq!(result(&e, "setuid").0, Pass);
    }

    #[test]
    fn a_missing_tree_fails_once() {
        let e = eval(
            "/opt/apps",
            vec![("broken_symlinks", b(false)), ("world_writable", b(false))],
        );
        assert_eq!(
            results(&e),
            [
                (
                    "broken_symlinks".into(),
                    Fail,
                    "broken_symlinks: /opt/apps does not exist".into()
                ),
                (
                    "world_writable".into(),
                    Skip,
                    "/opt/apps does not exist".into()
                ),
            ]
        );
    }

    #[test]
    fn unreadable_dirs_make_an_otherwise_clean_tree_an_error() {
        let t = image()
            .dir("/root", 0o700, 0, 0)
            .file("/root/x", 0o666, 0, 0, "")
            .deny("/root");
        let e = run(
            &check(
                &Tree,
                "/",
                vec![("broken_symlinks", b(false)), ("world_writable", b(false))],
            ),
            &t,
        );
        let (status, msg) = result(&e, "broken_symlinks");
        assert_eq!(status, Fail, "{msg}");
        assert_eq!(
            result(&e, "world_writable").0,
            Fail,
            "offenders found elsewhere still fail"
        );
        let e = run(
            &check(&Tree, "/root", vec![("world_writable", b(false))]),
            &t,
        );
        assert_eq!(
            result(&e, "world_writable"),
            (
                Error,
                "world_writable: 1 entry under /root could not be read: /root: Permission denied (os error 13)"
                    .into()
            )
        );
        assert!(
            e.output
                .contains("unreadable entries under /root:\n  /root: Permission denied")
        );
    }

    #[test]
    fn validation() {
        let c = check(
            &Tree,
            "/",
            vec![
                ("broken_symlinks", b(true)),
                ("world_writable", b(true)),
                ("max_depth", int(-1)),
                ("exclude", list(&["/a/[b"])),
            ],
        );
        assert_eq!(
            messages(&Tree.validate(&c)),
            [
                "bad-value: `broken_symlinks = true` asserts nothing; write `broken_symlinks = false` \
                 to forbid broken symlinks",
                "bad-value: `world_writable = true` asserts nothing; write `world_writable = false` \
                 to forbid world-writable files",
                "bad-value: `max_depth` must be 0 or more",
                "bad-value: `exclude`: \"/a/[b\" is not a valid glob: unclosed character class; missing ']'",
            ]
        );
        let c = check(
            &Tree,
            "/",
            vec![("broken_symlinks", b(false)), ("setuid", list(&["/usr/*"]))],
        );
        assert!(Tree.validate(&c).is_empty());
    }

    #[test]
    fn plurals() {
        assert_eq!(plural("broken symlink"), "broken symlinks");
        assert_eq!(plural("world-writable entry"), "world-writable entries");
        assert_eq!(
            plural("setuid/setgid file outside the allow-list"),
            "setuid/setgid files outside the allow-list"
        );
    }

    fn le(q: &str) -> Value {
        preds(vec![Pred::Le(q.into())])
    }

    #[test]
    fn unowned_entries_are_named() {
        let t = image()
            .file("/etc/passwd", 0o644, 0, 0, "root:x:0:0::/root:/bin/sh\n")
            .file(
                "/etc/group",
                0o644,
                0,
                0,
                "root:x:0:\nutmp:x:5:\nmail:x:8:\n",
            )
            .file("/usr/bin/orphan", 0o755, 1234, 0, "")
            .file("/usr/bin/stray", 0o755, 0, 4321, "");
        let e = run(&check(&Tree, "/usr", vec![("unowned", b(false))]), &t);
        assert_eq!(
            result(&e, "unowned"),
            (
                Fail,
                "unowned: 2 entries with an unknown owner or group under /usr: \
                 /usr/bin/orphan (uid 1234 unknown), /usr/bin/stray (gid 4321 unknown)"
                    .into()
            )
        );
        let e = run(&check(&Tree, "/var", vec![("unowned", b(false))]), &t);
        assert_eq!(result(&e, "unowned").0, Pass);
        // Without an /etc/passwd nothing can be told: an error, not a pass.
        let e = run(&check(&Tree, "/usr", vec![("unowned", b(false))]), &image());
        let (status, msg) = result(&e, "unowned");
        assert_eq!(status, Error, "{msg}");
        assert!(
            msg.starts_with("unowned: the target's accounts cannot be read: /etc/passwd"),
            "{msg}"
        );
    }

    #[test]
    fn size_budgets_name_the_largest_files() {
        let t = MemoryTarget::new()
            .dir("/img", 0o755, 0, 0)
            .file("/img/big", 0o644, 0, 0, vec![0u8; 3000])
            .file("/img/mid", 0o644, 0, 0, vec![0u8; 1500])
            .file("/img/small", 0o644, 0, 0, vec![0u8; 10])
            .symlink("/img/link", "big");
        let e = run(
            &check(
                &Tree,
                "/img",
                vec![
                    ("total_size", le("4KiB")),
                    ("entries", le("4")),
                    ("max_file_size", le("1KiB")),
                ],
            ),
            &t,
        );
        assert_eq!(
            results(&e),
            [
                (
                    "total_size".into(),
                    Fail,
                    "total_size: expected <= 4KiB, got 4.4KiB in 3 files under /img; largest: \
                     /img/big (2.9KiB), /img/mid (1.5KiB), /img/small (10B)"
                        .into()
                ),
                (
                    "entries".into(),
                    Fail,
                    "entries: expected <= 4, got 5 entries under /img".into()
                ),
                (
                    "max_file_size".into(),
                    Fail,
                    "max_file_size: expected <= 1KiB, got 2 files under /img: /img/big (2.9KiB), \
                     /img/mid (1.5KiB)"
                        .into()
                ),
            ]
        );
        let e = run(
            &check(
                &Tree,
                "/img",
                vec![("total_size", le("1GiB")), ("max_file_size", le("1MiB"))],
            ),
            &t,
        );
        assert_eq!(
            results(&e),
            [
                (
                    "total_size".into(),
                    Pass,
                    "total_size: expected <= 1GiB, got 4.4KiB in 3 files under /img".into()
                ),
                (
                    "max_file_size".into(),
                    Pass,
                    "max_file_size: expected <= 1MiB, got the largest is /img/big (2.9KiB), of 3 files under /img"
                        .into()
                ),
            ]
        );
        let c = check(
            &Tree,
            "/",
            vec![("total_size", eq("2GiB")), ("unowned", b(true))],
        );
        assert_eq!(
            messages(&Tree.validate(&c)),
            [
                "bad-value: `unowned = true` asserts nothing; write `unowned = false` to forbid files whose owner or group the target does not know",
                "bad-value: `total_size` is a budget: write a bound such as `total_size = { le = \"2GiB\" }`",
            ]
        );
    }
}
