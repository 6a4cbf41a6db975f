//! `package`: a package in the target's own dpkg or RPM database.

mod bdb;
mod dpkg;
mod rpm;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::Actual;
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::run::Context;
use nodecheck_core::target::{FileType, Target};

use crate::eval::{self, io_text, is_absent};

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
];

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
  target and opened by SQLite in memory, read-only, with the committed part
  of a `-wal` file applied to that copy, so the image's database, its WAL
  and its shared-memory file are never opened for writing and no temporary
  file is created. The header blobs are parsed by nodecheck;
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
```

## Targets

Every target.
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
        if check.bool("installed") == Some(false) && check.prop("version").is_some() {
            return vec![eval::diagnostic(
                check,
                "version",
                "conflicting-keys",
                "`version` cannot be checked together with `installed = false`".into(),
            )];
        }
        Vec::new()
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
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
        let installed_key = check.bool("installed");
        let mut out = Vec::new();
        let what = format!("package {name}");
        if found.is_empty() {
            if !errors.is_empty() {
                let mut out = vec![PropertyResult::error(
                    "installed",
                    format!(
                        "installed: {what} could not be looked up: {}",
                        errors.join("; ")
                    ),
                )];
                out.extend(eval::skip_rest(
                    check,
                    &["installed"],
                    "the package database could not be read",
                ));
                return out.into();
            }
            let searched: Vec<&str> = dbs.iter().map(|d| d.path.as_str()).collect();
            let mut msg = format!("{what} is not installed (in {})", searched.join(", "));
            if let Some((db, p)) = leftovers.first() {
                msg = format!(
                    "{what} is not installed: {} says {:?}{}",
                    db.path,
                    p.state,
                    if p.version.is_empty() {
                        String::new()
                    } else {
                        format!(" (version {})", p.version)
                    }
                );
            }
            let ok = installed_key == Some(false);
            let mut r = PropertyResult::verdict("installed", ok, format!("installed: {msg}"));
            if !ok {
                r = r.with_expected("true").with_actual("false");
            }
            out.push(r);
            out.extend(eval::skip_rest(
                check,
                &["installed"],
                &format!("{what} is not installed"),
            ));
            return out.into();
        }
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
        match installed_key {
            Some(true) => out.push(PropertyResult::verdict(
                "installed",
                true,
                format!("installed: {what} is installed ({desc})"),
            )),
            Some(false) => {
                out.push(PropertyResult::compare(
                    "installed",
                    false,
                    "false",
                    format!("true ({desc})"),
                ));
                return out.into();
            }
            None => {}
        }
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
        Evaluation {
            properties: out,
            output: format!("{what}: {desc}\n"),
        }
    }
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
