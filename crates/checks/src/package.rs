//! `package`: a package in the target's own dpkg or RPM database.

mod bdb;
pub(crate) mod dpkg;
pub(crate) mod rpm;
mod verify;

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use globset::{Glob, GlobSet, GlobSetBuilder};
use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::Actual;
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::run::Context;
use nodecheck_core::target::{FileType, Target};

use crate::eval::{self, io_text, is_absent};

/// `installed`: the presence of a package (eval::presence_as).
const INSTALLED: eval::Subject = eval::Subject {
    key: Some("installed"),
    is: "is installed",
    is_not: "is not installed",
    apart: &[],
};

pub struct Package;

/// One entry of a package database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pkg {
    pub name: String,
    /// `[epoch:]version[-release]` as the database's tools print it.
    pub version: String,
    pub arch: String,
    /// dpkg: the status says `installed`; rpm: always.
    pub installed: bool,
    /// dpkg's `Status` field (`deinstall ok config-files`), for messages.
    pub state: String,
    /// dpkg: `Multi-Arch: same`, whose info files are named `name:arch.*`.
    pub multiarch_same: bool,
    /// dpkg: the `Conffiles` field, `(path, md5)` (obsolete ones included,
    /// as dpkg keeps them).
    pub conffiles: Vec<(String, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Dpkg,
    Rpm,
}

/// A package database read from the target.
#[derive(Debug)]
struct Db {
    path: String,
    format: Format,
    packages: HashMap<String, Vec<Pkg>>,
}

/// Where package databases live, in the order they are tried.
const DPKG_STATUS: &str = "/var/lib/dpkg/status";
const DPKG_STATUS_D: &str = "/var/lib/dpkg/status.d";
const RPM_SQLITE: &[&str] = &[
    "/var/lib/rpm/rpmdb.sqlite",
    "/usr/lib/sysimage/rpm/rpmdb.sqlite",
];
const RPM_BDB: &[&str] = &["/var/lib/rpm/Packages", "/usr/lib/sysimage/rpm/Packages"];
const RPM_NDB: &[&str] = &[
    "/var/lib/rpm/Packages.db",
    "/usr/lib/sysimage/rpm/Packages.db",
];

/// An RPM database of a big image is 100-200 MB; this bounds memory.
const RPMDB_LIMIT: u64 = 512 << 20;
const DPKG_LIMIT: u64 = 256 << 20;

const KEYS: &[Key] = &[
    Key::new(
        "installed",
        Ty::Bool,
        "The package is installed (default `true`). When it is not, `version` is skipped.",
    ),
    Key::new(
        "version",
        Ty::Matcher(Compare::Version),
        "The installed version, `[epoch:]version[-release]`, compared in the database's own \
         order (dpkg's for dpkg, rpmvercmp for RPM). Every installed instance must match.",
    ),
    Key::new(
        "verify",
        Ty::Bool,
        "`true`: every file the package installed is there and unchanged, as `dpkg --verify` \
         or `rpm -V` would say, judged from the target's own database. `name = \"*\"` verifies \
         every installed package. `false` asserts nothing and is refused.",
    ),
    Key::new(
        "conffiles",
        Ty::Enum(&["report", "fail"]),
        "With `verify`: changed configuration files (dpkg conffiles, rpm `%config`) are listed \
         in a note and pass (`\"report\"`, the default), or fail like any other file (`\"fail\"`).",
    )
    .modifier(),
    Key::new(
        "exclude",
        Ty::StrList,
        "With `verify`: globs over absolute paths in the target that are not verified \
         (`*` also matches `/`).",
    )
    .modifier(),
];

/// The subject that stands for every installed package (with `verify`).
pub const ALL: &str = "*";

const DOC: &str = r#"## What it checks

A package in the target's own package database, read from its files (no
`dpkg-query` or `rpm` is run, nothing is written):

- **dpkg** (Debian, Ubuntu): `/var/lib/dpkg/status`, or the per-package
  files of `/var/lib/dpkg/status.d/` (distroless images). A package is
  installed when its `Status` ends in `installed`; one that was removed
  but left its configuration (`deinstall ok config-files`) is not, and the
  message says so. `name` may carry an architecture: `libc6:amd64`.
- **RPM** (RHEL 9, Rocky, Alma, Fedora): `rpmdb.sqlite` in
  `/var/lib/rpm` or `/usr/lib/sysimage/rpm`. Its bytes are read through the
  target and opened by SQLite in memory, read-only; where a `-wal` file
  exists, both are copied into a private scratch directory and SQLite
  replays the log's committed part on that copy. The image's database, its
  WAL and its shared-memory file are never opened by SQLite. The header
  blobs are parsed by nodecheck;
  `gpg-pubkey` entries are skipped.
- **BerkeleyDB** `Packages` (RHEL 7 and 8, Rocky/Alma 8): read by
  nodecheck's own read-only parser of the Berkeley DB hash format.
  SUSE's `Packages.db` (ndb) is reported as unsupported.

When no database is found the check is an *error* saying where it looked;
it never guesses. A database that cannot be parsed (corrupt, truncated) is
an *error* naming the file (and line, for dpkg). When an image has both
databases the package is looked up in each.

`version` compares with the distribution's order: dpkg's (epochs, `~`
before anything, letters before other characters) or rpm's `rpmvercmp`
(where `ge = "5.14.0"` holds for `5.14.0-427.el9`: a side without a
release compares versions only). With several installed instances
(multi-arch, several kernels) every one must match, so
`version = { ge = "..." }` means "no older one is installed".

### Package integrity: `verify = true`

Every file the package installed must still be there and unchanged, as
`dpkg --verify` and `rpm -V` would say: judged from the target's own
database, read through the target (the image's tools never run, nothing
is written, a symlink in the image never leads outside it).
`name = "*"` verifies every package the database lists (see
[verify.md](../verify.md) for the exact rules and speed).

- **dpkg**: every path of `info/PKG.list` (`PKG:ARCH.list` for
  `Multi-Arch: same` packages) must exist; those with a digest in
  `info/PKG.md5sums` or in the status database's `Conffiles` must be
  regular files with that MD5. A path another package or the admin
  diverted (`dpkg-divert`) is looked for where it was diverted to. dpkg
  records no modes or owners, so none are checked.
- **rpm** (sqlite and BerkeleyDB databases): digest (with the header's
  algorithm: MD5, SHA-1, SHA-224/256/384/512), size, mode and file type,
  owner and group (names, through the image's own `/etc/passwd` and
  `/etc/group`), symlink target and mtime, honouring `%ghost` (only
  mode and owner), `missingok` and `%ghost` files that are absent, files
  left out of the install (`--nodocs`, another architecture: rpm's
  "not installed" state), `%verify(...)` flags, and rpm's rule that a
  file several packages own has no mtime to compare.

A failure names the package, the path and what differs: `missing`,
`digest`, `type regular file → symlink`, `mode 0755 → 0777`,
`owner root → nobody`, `group`, `link target a → b`, `size`, `mtime`.
Changed **conffiles** (dpkg conffiles, rpm `%config`) are listed apart
and do not fail: the check passes with a note naming them (in its
message, its output, the JSON and JUnit reports), since a site edits its
`sshd_config` on purpose; `conffiles = "fail"` makes them fail.
`exclude` leaves paths out. The full lists go to the check's output.

A damaged `md5sums` or `.list` file, diversions database or rpm header,
and a file that cannot be read, make the property an *error* naming the
file; an installed dpkg package without its file list is one too.

## Example

```toml
[vars]
packages = ["munge", "slurmd", "openssh-server"]

[[control]]
id    = "hpc-packages"
title = "The node's software is installed"

  [[control.package]]
  name      = "${packages}"
  installed = true

  [[control.package]]
  name    = "openssl"
  version = { ge = "3.0.11" }

  [[control.package]]
  name      = "telnetd"
  installed = false

[[control]]
id    = "package-integrity"
title = "Installed packages are intact"

  [[control.package]]
  name    = "*"
  verify  = true
  exclude = ["/var/lib/apt/lists/*", "/var/cache/*", "/var/log/*"]

  [[control.package]]
  name      = "openssh-server"
  verify    = true
  conffiles = "fail"
```

## Targets

Every target. `verify` reads and hashes every file of the packages it
verifies: for the 1 GB of a compute image, about 2.2 s of CPU time
(mostly MD5), spread over every core.
"#;

impl Kind for Package {
    fn name(&self) -> &'static str {
        "package"
    }

    fn subject(&self) -> Key {
        Key::new(
            "name",
            Ty::Str,
            "The package name (`munge`); dpkg names may add `:arch`.",
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
        let mut refuse = |key: &str, code: &'static str, msg: String| {
            out.push(eval::diagnostic(check, key, code, msg));
        };
        if check.bool("installed") == Some(false) {
            for key in ["version", "verify"] {
                if check.prop(key).is_some() {
                    refuse(
                        key,
                        "conflicting-keys",
                        format!("`{key}` cannot be checked together with `installed = false`"),
                    );
                }
            }
        }
        if check.bool("verify") == Some(false) {
            refuse(
                "verify",
                "bad-value",
                "`verify = false` asserts nothing; write `verify = true` or leave it out".into(),
            );
        }
        if check.bool("verify") != Some(true) {
            for key in ["conffiles", "exclude"] {
                if check.prop(key).is_some() {
                    refuse(
                        key,
                        "conflicting-keys",
                        format!("`{key}` only shapes `verify = true`, which this check lacks"),
                    );
                }
            }
        }
        if check.subject == ALL {
            if check.bool("verify") != Some(true) {
                refuse(
                    "name",
                    "bad-value",
                    "`name = \"*\"` stands for every installed package and needs `verify = true`"
                        .into(),
                );
            }
            for key in ["installed", "version"] {
                if check.prop(key).is_some() {
                    refuse(
                        key,
                        "conflicting-keys",
                        format!("`{key}` cannot be checked for `name = \"*\"`"),
                    );
                }
            }
        }
        for pattern in check.list("exclude").unwrap_or_default() {
            if let Err(e) = Glob::new(pattern) {
                refuse(
                    "exclude",
                    "bad-value",
                    format!("`exclude`: {pattern:?} is not a valid glob: {}", e.kind()),
                );
            }
        }
        out
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        if check.subject == ALL {
            return verify_all(check, cx.target);
        }
        let (dbs, errors) = databases(cx.target);
        let name = check.subject.as_str();
        let (base, arch) = match name.split_once(':') {
            Some((b, a)) => (b, Some(a)),
            None => (name, None),
        };
        let mut found: Vec<(&Db, Vec<&Pkg>)> = Vec::new();
        let mut leftovers: Vec<(&Db, &Pkg)> = Vec::new();
        for db in &dbs {
            let all = db.packages.get(base).map(Vec::as_slice).unwrap_or(&[]);
            let matching = all.iter().filter(|p| arch.is_none_or(|a| p.arch == a));
            let (inst, other): (Vec<&Pkg>, Vec<&Pkg>) = matching.partition(|p| p.installed);
            leftovers.extend(other.into_iter().map(|p| (&**db, p)));
            if !inst.is_empty() {
                found.push((db, inst));
            }
        }
        let what = format!("package {name}");
        // The goss rule with `installed` (eval::presence_as).
        let shown = |pkgs: &[&Pkg]| -> String {
            let v: Vec<String> = pkgs
                .iter()
                .map(|p| {
                    if p.arch.is_empty() {
                        p.version.clone()
                    } else {
                        format!("{} ({})", p.version, p.arch)
                    }
                })
                .collect();
            v.join(", ")
        };
        let desc = found
            .iter()
            .map(|(db, p)| format!("{} in {}", shown(p), db.path))
            .collect::<Vec<_>>()
            .join("; ");
        let presence = if !found.is_empty() {
            eval::Presence::Found(desc.clone())
        } else if !errors.is_empty() {
            eval::Presence::Unknown(errors.join("; "))
        } else if let Some((db, p)) = leftovers.first() {
            eval::Presence::Absent(format!(
                "{} says {:?}{}",
                db.path,
                p.state,
                if p.version.is_empty() {
                    String::new()
                } else {
                    format!(", version {}", p.version)
                }
            ))
        } else {
            let searched: Vec<&str> = dbs.iter().map(|d| d.path.as_str()).collect();
            eval::Presence::Absent(format!("in {}", searched.join(", ")))
        };
        let mut out = match eval::presence_as(check, &INSTALLED, &what, presence) {
            Ok(v) => v,
            Err(v) => return v.into(),
        };
        if let Some(m) = check.matcher("version") {
            let mut ok = true;
            for (db, pkgs) in &found {
                let cmp: &dyn Fn(&str, &str) -> Ordering = match db.format {
                    Format::Dpkg => &dpkg::compare,
                    Format::Rpm => &rpm::compare,
                };
                ok &= pkgs
                    .iter()
                    .all(|p| m.test_with(Actual::Str(&p.version), cmp));
            }
            let versions: Vec<String> = found.iter().map(|(_, p)| shown(p)).collect();
            out.push(PropertyResult::compare(
                "version",
                ok,
                m.describe(),
                versions.join(", "),
            ));
        }
        let mut e = Evaluation {
            properties: out,
            output: format!("{what}: {desc}\n"),
        };
        if check.bool("verify") == Some(true) {
            let mut plan = verify::Plan::default();
            for (db, pkgs) in &found {
                merge(
                    &mut plan,
                    verify_plan(cx.target, db, &|p: &Pkg| pkgs.contains(&p)),
                );
            }
            verify_result(check, cx.target, &plan, &mut e);
        }
        e
    }
}

/// `name = "*"`: every package of every database of the target.
fn verify_all(check: &Check, t: &dyn Target) -> Evaluation {
    let (dbs, errors) = databases(t);
    let mut plan = verify::Plan {
        errors,
        ..verify::Plan::default()
    };
    // dpkg verifies every package it keeps a file list for: all but
    // those it calls `not-installed`.
    let listed = |p: &Pkg| p.state.split_whitespace().nth(2) != Some("not-installed");
    for db in &dbs {
        merge(&mut plan, verify_plan(t, db, &listed));
    }
    let mut e = Evaluation::default();
    let names: Vec<&str> = dbs.iter().map(|d| d.path.as_str()).collect();
    e.output = format!("packages from {}\n", names.join(", "));
    verify_result(check, t, &plan, &mut e);
    e
}

/// Appends `more` to `plan`, renumbering its packages.
fn merge(plan: &mut verify::Plan, more: verify::Plan) {
    let base = plan.packages.len();
    plan.packages.extend(more.packages);
    plan.errors.extend(more.errors);
    plan.entries.extend(more.entries.into_iter().map(|mut e| {
        e.pkg += base;
        e
    }));
}

/// What to verify of the packages of `db` that `want` selects.
fn verify_plan(t: &dyn Target, db: &Db, want: &dyn Fn(&Pkg) -> bool) -> verify::Plan {
    let mut pkgs: Vec<&Pkg> = db.packages.values().flatten().filter(|p| want(p)).collect();
    pkgs.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
    match db.format {
        Format::Dpkg if db.path == DPKG_STATUS_D => verify::Plan {
            errors: vec![format!(
                "{DPKG_STATUS_D}: verifying the packages of a distroless status.d database is \
                 not supported by this version of nodecheck"
            )],
            ..verify::Plan::default()
        },
        Format::Dpkg => verify::dpkg::plan(t, &pkgs),
        Format::Rpm => match &*verify::rpm::cached(t, &db.path, || rpm_blobs(t, &db.path)) {
            Ok(files) => {
                let names: std::collections::HashSet<&str> =
                    pkgs.iter().map(|p| p.name.as_str()).collect();
                verify::rpm::plan(files, &|n| names.contains(n))
            }
            Err(e) => verify::Plan {
                errors: vec![e.clone()],
                ..verify::Plan::default()
            },
        },
    }
}

/// The header blobs of the rpm database at `path` (the parsed database
/// keeps names and versions only; verify indexes the files once per
/// target, see `verify::rpm::cached`).
fn rpm_blobs(t: &dyn Target, path: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let db = t
        .read(path, RPMDB_LIMIT)
        .map_err(|e| format!("{path}: {}", io_text(&e)))?;
    if path.ends_with(".sqlite") {
        let wal_path = format!("{path}-wal");
        let wal = match t.read(&wal_path, RPMDB_LIMIT) {
            Ok(w) => Some(w),
            Err(e) if is_absent(&e) => None,
            Err(e) => return Err(format!("{wal_path}: {}", io_text(&e))),
        };
        rpm::sqlite_blobs(path, db, wal.as_deref())
    } else {
        bdb::blobs(path, &db)
    }
}

fn globs(patterns: &[String]) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).map_err(|e| format!("{p:?} is not a valid glob: {}", e.kind()))?);
    }
    b.build().map_err(|e| e.to_string())
}

/// The `verify` property: fails on any file that differs (conffiles
/// apart, unless `conffiles = "fail"`), errors when anything could not be
/// read; the full lists go to the output.
fn verify_result(check: &Check, t: &dyn Target, plan: &verify::Plan, e: &mut Evaluation) {
    let exclude = match globs(check.list("exclude").unwrap_or_default()) {
        Ok(g) => g,
        Err(err) => {
            e.push(PropertyResult::error(
                "verify",
                format!("verify: exclude: {err}"),
            ));
            return;
        }
    };
    let report = verify::check(t, plan, &exclude);
    let fail_conf = check.str("conffiles") == Some("fail");
    let mut failing = Vec::new();
    let mut noted = Vec::new();
    for f in &report.findings {
        let line = f.show(&plan.packages);
        if f.conffile && !fail_conf {
            noted.push(line);
        } else {
            failing.push(line);
        }
    }
    let mut errors = plan.errors.clone();
    errors.extend(report.errors.iter().cloned());
    let n = |k: usize, one: &str, many: &str| format!("{k} {}", if k == 1 { one } else { many });
    let packages = n(plan.packages.len(), "package", "packages");
    let mut msg = if !errors.is_empty() {
        let mut m = format!(
            "verify: could not verify all of {packages}: {}",
            eval::capped(&errors)
        );
        if !failing.is_empty() {
            m += &format!(
                "; besides, {} of {} paths differ: {}",
                failing.len(),
                report.entries,
                eval::capped(&failing)
            );
        }
        m
    } else if !failing.is_empty() {
        format!(
            "verify: {} of {} paths ({packages}) differ from the package database: {}",
            failing.len(),
            report.entries,
            eval::capped(&failing)
        )
    } else {
        format!(
            "verify: {} of {packages} match the package database",
            n(report.entries, "path", "paths")
        )
    };
    if !noted.is_empty() {
        msg += &format!(
            "; {} (reported, not failed): {}",
            n(noted.len(), "changed conffile", "changed conffiles"),
            eval::capped(&noted)
        );
    }
    let r = if errors.is_empty() {
        PropertyResult::verdict("verify", failing.is_empty(), msg)
    } else {
        PropertyResult::error("verify", msg)
    };
    e.push(r);
    if !failing.is_empty() {
        eval::section(
            &mut e.output,
            "files that differ from their package",
            &failing,
        );
    }
    if !noted.is_empty() {
        eval::section(
            &mut e.output,
            "changed conffiles (reported, not failed)",
            &noted,
        );
    }
    if !errors.is_empty() {
        eval::section(&mut e.output, "could not be verified", &errors);
    }
}

/// Every installed package of the target (`name:arch` → version) and the
/// database format (`dpkg`, `rpm`), for snapshots; the errors of the
/// databases that could not be read (no database at all is one).
pub fn installed(t: &dyn Target) -> (BTreeMap<String, String>, String, Vec<String>) {
    let (dbs, errors) = databases(t);
    let mut out = BTreeMap::new();
    let mut format = Vec::new();
    for db in &dbs {
        let f = match db.format {
            Format::Dpkg => "dpkg",
            Format::Rpm => "rpm",
        };
        if !format.contains(&f) {
            format.push(f);
        }
        for p in db.packages.values().flatten().filter(|p| p.installed) {
            let key = if p.arch.is_empty() {
                p.name.clone()
            } else {
                format!("{}:{}", p.name, p.arch)
            };
            out.insert(key, p.version.clone());
        }
    }
    (out, format.join(","), errors)
}

/// Every package database of the target, and the errors of those that
/// could not be read. No database at all is one error saying where
/// nodecheck looked.
fn databases(t: &dyn Target) -> (Vec<Arc<Db>>, Vec<String>) {
    let mut dbs = Vec::new();
    let mut errors = Vec::new();
    let mut results = Vec::new();
    let mut push = |r: Loaded| results.push(r);
    let mut any = false;
    if let Some(meta) = present(t, DPKG_STATUS, &mut errors) {
        any = true;
        push(cached(t, DPKG_STATUS, &meta, || {
            let bytes = t
                .read(DPKG_STATUS, DPKG_LIMIT)
                .map_err(|e| format!("{DPKG_STATUS}: {}", io_text(&e)))?;
            dpkg::parse(DPKG_STATUS, &bytes, true).map(|p| (Format::Dpkg, p))
        }));
    } else if let Some(meta) = present(t, DPKG_STATUS_D, &mut errors) {
        any = true;
        push(cached(t, DPKG_STATUS_D, &meta, || {
            status_d(t).map(|p| (Format::Dpkg, p))
        }));
    }
    for path in RPM_SQLITE {
        if let Some(meta) = present(t, path, &mut errors) {
            any = true;
            push(cached(t, path, &meta, || {
                let db = t
                    .read(path, RPMDB_LIMIT)
                    .map_err(|e| format!("{path}: {}", io_text(&e)))?;
                let wal_path = format!("{path}-wal");
                let wal = match t.read(&wal_path, RPMDB_LIMIT) {
                    Ok(w) => Some(w),
                    Err(e) if is_absent(&e) => None,
                    Err(e) => return Err(format!("{wal_path}: {}", io_text(&e))),
                };
                rpm::sqlite(path, db, wal.as_deref()).map(|p| (Format::Rpm, p))
            }));
            break;
        }
    }
    if !any {
        for path in RPM_BDB {
            if let Some(meta) = present(t, path, &mut errors) {
                any = true;
                push(cached(t, path, &meta, || {
                    let db = t
                        .read(path, RPMDB_LIMIT)
                        .map_err(|e| format!("{path}: {}", io_text(&e)))?;
                    bdb::packages(path, &db).map(|p| (Format::Rpm, p))
                }));
                break;
            }
        }
    }
    if !any {
        for path in RPM_NDB {
            if present(t, path, &mut errors).is_some() {
                any = true;
                errors.push(format!(
                    "{path}: the RPM ndb format (SUSE) is not supported by this version of nodecheck"
                ));
            }
        }
    }
    for r in results {
        match r {
            Ok(db) => dbs.push(db),
            Err(e) => errors.push(e),
        }
    }
    if !any && errors.is_empty() {
        let mut looked = vec![DPKG_STATUS, DPKG_STATUS_D];
        looked.extend(RPM_SQLITE);
        looked.extend(RPM_BDB);
        looked.extend(RPM_NDB);
        errors.push(format!(
            "no package database found (looked for {})",
            looked.join(", ")
        ));
    }
    (dbs, errors)
}

/// The metadata of `path` when it exists; an error other than "absent" is
/// recorded.
fn present(
    t: &dyn Target,
    path: &str,
    errors: &mut Vec<String>,
) -> Option<nodecheck_core::target::Metadata> {
    match t.metadata(path, true) {
        Ok(m) => Some(m),
        Err(e) if is_absent(&e) => None,
        Err(e) => {
            errors.push(format!("{path}: {}", io_text(&e)));
            None
        }
    }
}

fn status_d(t: &dyn Target) -> Result<Vec<Pkg>, String> {
    let entries = t
        .read_dir(DPKG_STATUS_D)
        .map_err(|e| format!("{DPKG_STATUS_D}: {}", io_text(&e)))?;
    let mut out = Vec::new();
    for e in entries {
        if e.file_type != FileType::File || e.name.ends_with(".md5sums") {
            continue;
        }
        let path = format!("{DPKG_STATUS_D}/{}", e.name);
        let bytes = t
            .read(&path, DPKG_LIMIT)
            .map_err(|err| format!("{path}: {}", io_text(&err)))?;
        out.extend(dpkg::parse(&path, &bytes, false)?);
    }
    Ok(out)
}

type Loaded = Result<Arc<Db>, String>;
type CacheKey = (String, String, u64, u64, u64, std::time::SystemTime);

/// Parsed databases, so that a profile with twenty package checks reads
/// and parses a 100 MB rpmdb once. Keyed by the target, the path and the
/// file's device, inode, size and mtime, so a changed file or another
/// image is read afresh; a file without an mtime is never cached.
fn cached(
    t: &dyn Target,
    path: &str,
    meta: &nodecheck_core::target::Metadata,
    load: impl FnOnce() -> Result<(Format, Vec<Pkg>), String>,
) -> Loaded {
    let build = |r: Result<(Format, Vec<Pkg>), String>| -> Loaded {
        let (format, list) = r?;
        let mut packages: HashMap<String, Vec<Pkg>> = HashMap::new();
        for p in list {
            packages.entry(p.name.clone()).or_default().push(p);
        }
        Ok(Arc::new(Db {
            path: path.to_string(),
            format,
            packages,
        }))
    };
    let Some(mtime) = meta.mtime else {
        return build(load());
    };
    static CACHE: OnceLock<Mutex<HashMap<CacheKey, Arc<OnceLock<Loaded>>>>> = OnceLock::new();
    let key = (
        t.describe(),
        path.to_string(),
        meta.dev,
        meta.ino,
        meta.size,
        mtime,
    );
    let cell = {
        let mut cache = CACHE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if cache.len() > 16 && !cache.contains_key(&key) {
            cache.clear();
        }
        cache.entry(key).or_default().clone()
    };
    // Checks of one run ask at once; the first loads, the others wait.
    cell.get_or_init(|| build(load())).clone()
}

#[cfg(test)]
mod tests;
