//! One kernel's module indexes, as depmod writes them into
//! `/lib/modules/RELEASE/`: `modules.dep` (module → file and its whole
//! dependency list, see [`super::dep`]), `modules.builtin` and
//! `modules.builtin.modinfo` (modules compiled into the kernel), and
//! `modules.alias`. The text files are enough; the `.bin` tries depmod
//! writes beside them say the same.
//!
//! Lines nodecheck cannot read are kept as problems (`file:line: why`):
//! a check that relies on a corrupt index reports an error naming them
//! instead of guessing. Only modules.dep and modules.builtin are read up
//! front; the rest when a lookup needs them.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, OnceLock};

use nodecheck_core::target::{READ_LIMIT, Target};

use super::dep::{Dep, DepTable, shorten};
use super::glob;
use super::modfile::{self, Info};
use super::{module_name, normalize};

/// How many bad lines of one file are named before "and N more".
const PROBLEMS_SHOWN: usize = 5;

/// Where a name was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hit {
    /// A module file, by id.
    Module(usize),
    /// Compiled into the kernel (normalised name).
    Builtin(String),
}

/// What a lookup found: the modules a name stands for, and the alias
/// pattern it matched when it is not a module name itself.
#[derive(Clone, Debug, Default)]
pub struct Found {
    pub hits: Vec<Hit>,
    pub alias: Option<String>,
}

/// The parsed indexes of one module directory.
#[derive(Debug)]
pub struct Index {
    pub release: String,
    /// The module directory inside the target (`/lib/modules/6.1.0-28-amd64`).
    pub dir: String,
    dep: DepTable,
    builtin: HashMap<String, String>,
    /// Whether modules.builtin exists (kernels before 3.x and some custom
    /// builds have none: built-ins cannot be told then).
    pub has_builtin: bool,
    /// Bad lines of modules.dep and modules.builtin: every answer of this
    /// index is in doubt.
    pub problems: Vec<String>,
    builtin_info: OnceLock<BuiltinInfo>,
    aliases: OnceLock<Aliases>,
    /// Module files found by walking the directory, by name (only when a
    /// name is not in modules.dep).
    files: OnceLock<HashMap<String, Vec<String>>>,
    /// The modinfo of each module file, read on first use.
    infos: Vec<OnceLock<Result<Option<Info>, String>>>,
}

/// `modules.builtin.modinfo`: what `modinfo` shows for built-in modules.
#[derive(Debug, Default)]
struct BuiltinInfo {
    /// Normalised module name → its `key=value` records.
    records: HashMap<String, Vec<(String, String)>>,
    /// Bad records, or why the file could not be read: in doubt are the
    /// versions and aliases of built-in modules.
    problems: Vec<String>,
}

#[derive(Debug, Default)]
struct Aliases {
    /// (normalised pattern, normalised module name)
    entries: Vec<(String, String)>,
    problems: Vec<String>,
    /// modules.alias could not be read (other than "missing").
    error: Option<String>,
}

/// What [`Index::consistency`] found.
#[derive(Clone, Debug, Default)]
pub struct Consistency {
    /// Module files on disk that modules.dep does not list.
    pub unlisted: Vec<String>,
    /// Files modules.dep lists that do not exist.
    pub missing: Vec<String>,
    /// Files that could not be looked at.
    pub errors: Vec<String>,
    /// How many modules modules.dep lists.
    pub listed: usize,
}

/// Why an index could not be loaded at all.
#[derive(Debug)]
pub enum LoadError {
    /// No modules.dep: depmod never ran for this kernel.
    NoDep(String),
    /// modules.dep or modules.builtin could not be read.
    Io(String, io::Error),
}

impl Index {
    /// Reads and parses modules.dep and modules.builtin of `dir` for
    /// kernel `release`.
    pub fn load(target: &dyn Target, release: &str, dir: &str) -> Result<Index, LoadError> {
        let dep_path = format!("{dir}/modules.dep");
        let dep = match target.read(&dep_path, READ_LIMIT) {
            Ok(b) => b,
            Err(e) if crate::eval::is_absent(&e) => return Err(LoadError::NoDep(dep_path)),
            Err(e) => return Err(LoadError::Io(dep_path, e)),
        };
        let builtin_path = format!("{dir}/modules.builtin");
        let (builtin, has_builtin) = match target.read(&builtin_path, READ_LIMIT) {
            Ok(b) => (b, true),
            Err(e) if crate::eval::is_absent(&e) => (Vec::new(), false),
            Err(e) => return Err(LoadError::Io(builtin_path, e)),
        };
        let (dep, bad) = DepTable::parse(&dep_path, dep);
        let mut problems = cap(bad);
        let (builtin, bad) = parse_builtin(&builtin_path, &builtin);
        problems.extend(cap(bad));
        Ok(Index {
            release: release.to_string(),
            dir: dir.to_string(),
            infos: (0..dep.len()).map(|_| OnceLock::new()).collect(),
            dep,
            builtin,
            has_builtin,
            problems,
            builtin_info: OnceLock::new(),
            aliases: OnceLock::new(),
            files: OnceLock::new(),
        })
    }

    /// The normalised name of module `id`.
    pub fn name(&self, id: usize) -> &str {
        self.dep.name(id)
    }

    /// The module's file inside the target.
    pub fn file(&self, id: usize) -> String {
        super::in_dir(&self.dir, self.dep.path(id))
    }

    /// The dependencies modules.dep gives module `id`.
    pub fn deps(&self, id: usize) -> Vec<Dep> {
        self.dep.deps(id)
    }

    /// The module file of a normalised name, from modules.dep.
    pub fn by_name(&self, name: &str) -> Option<usize> {
        self.dep.by_name(name)
    }

    /// Whether a normalised name is compiled into the kernel.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains_key(name)
    }

    fn builtin_info(&self, target: &dyn Target) -> &BuiltinInfo {
        self.builtin_info.get_or_init(|| {
            let file = format!("{}/modules.builtin.modinfo", self.dir);
            match target.read(&file, READ_LIMIT) {
                Ok(b) => parse_builtin_info(&file, &b),
                Err(e) if crate::eval::is_absent(&e) => BuiltinInfo::default(),
                Err(e) => BuiltinInfo {
                    problems: vec![format!("cannot read {file}: {}", crate::eval::io_text(&e))],
                    ..BuiltinInfo::default()
                },
            }
        })
    }

    /// The modinfo values of a built-in module for `key` (`version`), or
    /// why they cannot be told.
    pub fn builtin_values(
        &self,
        target: &dyn Target,
        name: &str,
        key: &str,
    ) -> Result<Vec<String>, String> {
        let info = self.builtin_info(target);
        if !info.problems.is_empty() {
            return Err(info.problems.join("; "));
        }
        Ok(info
            .records
            .get(name)
            .into_iter()
            .flatten()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect())
    }

    /// Looks a name up as modprobe does: a module of modules.dep, a
    /// built-in, then an alias (the image's modprobe.d, modules.alias, and
    /// the aliases of built-in modules from modules.builtin.modinfo).
    /// Names compare with `-` = `_`.
    pub fn find(&self, target: &dyn Target, name: &str) -> Result<Found, String> {
        let n = normalize(name);
        if let Some(id) = self.by_name(&n) {
            return Ok(Found {
                hits: vec![Hit::Module(id)],
                alias: None,
            });
        }
        if self.is_builtin(&n) {
            return Ok(Found {
                hits: vec![Hit::Builtin(n)],
                alias: None,
            });
        }
        let aliases = self.aliases.get_or_init(|| self.load_aliases(target));
        let mut found = Found::default();
        // The image's own modprobe.d aliases first (Debian's `alias nvidia
        // nvidia-current`), then those depmod extracted from the modules.
        let config = config_aliases(target);
        for (pattern, module) in config.iter().chain(&aliases.entries) {
            if !glob::matches(pattern, &n) {
                continue;
            }
            let hit = match self.by_name(module) {
                Some(id) => Hit::Module(id),
                None if self.is_builtin(module) => Hit::Builtin(module.clone()),
                // An alias of a module that is not in the image: modprobe
                // skips it too.
                None => continue,
            };
            if !found.hits.contains(&hit) {
                found.hits.push(hit);
                found.alias.get_or_insert_with(|| pattern.clone());
            }
        }
        if found.hits.is_empty() {
            if let Some(e) = &aliases.error {
                return Err(e.clone());
            }
            if !aliases.problems.is_empty() {
                return Err(format!(
                    "{name} is not in modules.dep, and the alias files are corrupt: {}",
                    aliases.problems.join("; ")
                ));
            }
        }
        Ok(found)
    }

    fn load_aliases(&self, target: &dyn Target) -> Aliases {
        let file = format!("{}/modules.alias", self.dir);
        let bytes = match target.read(&file, READ_LIMIT) {
            Ok(b) => b,
            Err(e) if crate::eval::is_absent(&e) => Vec::new(),
            Err(e) => {
                return Aliases {
                    error: Some(format!("cannot read {file}: {}", crate::eval::io_text(&e))),
                    ..Aliases::default()
                };
            }
        };
        let mut out = Aliases::default();
        let mut bad = Vec::new();
        for (n, line) in lines(&bytes) {
            let Ok(line) = std::str::from_utf8(line) else {
                bad.push(format!("{file}:{n}: not text"));
                continue;
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next(), words.next()) {
                (Some("alias"), Some(pattern), Some(module), None) => out
                    .entries
                    .push((normalize_alias(pattern), normalize(module))),
                _ => bad.push(format!(
                    "{file}:{n}: not `alias PATTERN MODULE`: {}",
                    shorten(line)
                )),
            }
        }
        // Built-in modules have aliases too (`ext4` answers to `fs-ext4`),
        // kept only in modules.builtin.modinfo; in a stable order.
        let info = self.builtin_info(target);
        bad.extend(info.problems.iter().cloned());
        let mut builtin: Vec<(&String, &Vec<(String, String)>)> = info.records.iter().collect();
        builtin.sort();
        for (module, kv) in builtin {
            for (_, v) in kv.iter().filter(|(k, _)| k == "alias") {
                out.entries.push((normalize_alias(v), module.clone()));
            }
        }
        out.problems = cap(bad);
        out
    }

    /// The files under the module directory named like module `name`
    /// (normalised) that modules.dep does not list: a module installed
    /// after depmod last ran. The directory is walked once per index.
    pub fn unlisted_files(&self, target: &dyn Target, name: &str) -> Vec<String> {
        let files = self.files.get_or_init(|| self.module_files(target));
        files
            .get(name)
            .into_iter()
            .flatten()
            .filter(|f| {
                let rel = f
                    .strip_prefix(&self.dir)
                    .unwrap_or(f)
                    .trim_start_matches('/');
                !self.dep.lists(rel)
            })
            .cloned()
            .collect()
    }

    /// Whether the module directory and modules.dep agree: the module
    /// files on disk that modules.dep does not list (installed after depmod
    /// ran: modprobe cannot find them), and the files modules.dep lists
    /// that are not there. Both sorted.
    pub fn consistency(&self, target: &dyn Target) -> Consistency {
        let files = self.files.get_or_init(|| self.module_files(target));
        let mut out = Consistency::default();
        for paths in files.values() {
            for f in paths {
                let rel = f
                    .strip_prefix(&self.dir)
                    .unwrap_or(f)
                    .trim_start_matches('/');
                if !self.dep.lists(rel) {
                    out.unlisted.push(f.clone());
                }
            }
        }
        for id in 0..self.dep.len() {
            let file = self.file(id);
            match target.metadata(&file, true) {
                Ok(_) => {}
                Err(e) if crate::eval::is_absent(&e) => out.missing.push(file),
                Err(e) => out
                    .errors
                    .push(format!("{file}: {}", crate::eval::io_text(&e))),
            }
        }
        out.listed = self.dep.len();
        out.unlisted.sort();
        out.missing.sort();
        out
    }

    /// Every module file under the module directory, by normalised name.
    fn module_files(&self, target: &dyn Target) -> HashMap<String, Vec<String>> {
        let mut found: HashMap<String, Vec<String>> = HashMap::new();
        // The walk reports resolved paths (/usr/lib/...); show them under
        // the directory as the index names it.
        let real = target
            .canonicalize(&self.dir)
            .unwrap_or_else(|_| self.dir.clone());
        let _ = target.walk(
            &self.dir,
            &nodecheck_core::target::WalkOptions::default(),
            &mut |e| {
                if let Ok(e) = e
                    && e.metadata.file_type != nodecheck_core::target::FileType::Directory
                    && let Some(name) = e.path.rsplit('/').next().and_then(module_name)
                {
                    let rel = e.path.strip_prefix(&real).unwrap_or(&e.path);
                    found
                        .entry(name)
                        .or_default()
                        .push(format!("{}{rel}", self.dir));
                }
                true
            },
        );
        found
    }

    /// The modinfo of module `id`, read once: `Ok(None)` when its file
    /// does not exist, `Err` when it cannot be looked at (permission).
    pub fn info(&self, target: &dyn Target, id: usize) -> Result<Option<Info>, String> {
        self.infos[id]
            .get_or_init(|| Ok(modfile::read_modinfo(target, &self.file(id))?.map(Arc::new)))
            .clone()
    }
}

/// `modules.builtin`: one path per built-in module.
fn parse_builtin(file: &str, bytes: &[u8]) -> (HashMap<String, String>, Vec<String>) {
    let mut out = HashMap::new();
    let mut bad = Vec::new();
    for (n, line) in lines(bytes) {
        let Ok(line) = std::str::from_utf8(line) else {
            bad.push(format!("{file}:{n}: not text"));
            continue;
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match module_name(line) {
            Some(name) if !line.contains(char::is_whitespace) => {
                out.insert(name, line.to_string());
            }
            _ => bad.push(format!(
                "{file}:{n}: {} is not a module path",
                shorten(line)
            )),
        }
    }
    (out, bad)
}

/// `modules.builtin.modinfo`: NUL-separated `module.key=value` records
/// (kernel ≥ 5.2).
fn parse_builtin_info(file: &str, bytes: &[u8]) -> BuiltinInfo {
    let mut out = BuiltinInfo::default();
    let mut bad = Vec::new();
    for (i, rec) in bytes.split(|&b| b == 0).enumerate() {
        if rec.is_empty() {
            continue;
        }
        let parsed = std::str::from_utf8(rec).ok().and_then(|r| {
            let (k, v) = r.split_once('=')?;
            let (m, key) = k.split_once('.')?;
            (!m.is_empty() && !key.is_empty()).then_some((m, key, v))
        });
        match parsed {
            Some((m, key, v)) => out
                .records
                .entry(normalize(m))
                .or_default()
                .push((key.to_string(), v.to_string())),
            None => bad.push(format!(
                "{file}: record {} is not `module.key=value`: {}",
                i + 1,
                shorten(&String::from_utf8_lossy(rec))
            )),
        }
    }
    out.problems = cap(bad);
    out
}

/// Where modprobe reads its configuration, in priority order: a file name
/// found in an earlier directory hides the same name in later ones.
const MODPROBE_D: &[&str] = &[
    "/etc/modprobe.d",
    "/run/modprobe.d",
    "/usr/local/lib/modprobe.d",
    "/lib/modprobe.d",
    "/usr/lib/modprobe.d",
];

/// The `alias PATTERN MODULE` lines of the target's modprobe
/// configuration, normalised. Read on each lookup that misses modules.dep
/// (rare, and never cached, so an edited file is always seen). Only
/// aliases are taken: `install`, `blacklist` and `options` lines do not
/// change which module a name is.
fn config_aliases(target: &dyn Target) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for path in modprobe_files(target) {
        let Ok(bytes) = target.read(&path, READ_LIMIT) else {
            continue;
        };
        for line in String::from_utf8_lossy(&bytes).lines() {
            let mut words = line.split_whitespace();
            if let (Some("alias"), Some(pattern), Some(module)) =
                (words.next(), words.next(), words.next())
            {
                out.push((normalize_alias(pattern), normalize(module)));
            }
        }
    }
    out
}

/// The modprobe.d files of the target that modprobe reads, in the order it
/// reads them: one file name per name (an earlier directory hides the same
/// name in later ones), sorted by name.
fn modprobe_files(target: &dyn Target) -> Vec<String> {
    let mut files: Vec<(String, String)> = Vec::new();
    for dir in MODPROBE_D {
        let Ok(entries) = target.read_dir(dir) else {
            continue;
        };
        for e in entries {
            if e.name.ends_with(".conf") && !files.iter().any(|(n, _)| *n == e.name) {
                files.push((e.name.clone(), format!("{dir}/{}", e.name)));
            }
        }
    }
    files.sort();
    files.into_iter().map(|(_, p)| p).collect()
}

/// Why modprobe.d keeps a module from being loaded, if it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disabled {
    /// `install NAME /bin/false` (or `/bin/true`, `false`, `true`, with any
    /// path): modprobe runs the command instead of loading the module.
    Install { at: String, command: String },
    /// `blacklist NAME`: modprobe ignores the module's aliases, so the
    /// hardware never loads it (udev loads drivers by alias).
    Blacklist { at: String },
}

impl Disabled {
    /// `/etc/modprobe.d/x.conf:3: install nfs /bin/false (modprobe runs
    /// that instead of loading it)`.
    pub fn describe(&self, name: &str) -> String {
        match self {
            Disabled::Install { at, command } => format!(
                "{at}: `install {name} {command}`: modprobe runs that command instead of loading {name}"
            ),
            Disabled::Blacklist { at } => format!(
                "{at}: `blacklist {name}`: modprobe ignores its aliases, so no device loads it at boot"
            ),
        }
    }
}

/// The `install` and `blacklist` lines of the target's modprobe.d that
/// disable a module, by normalised module name (the first line found wins).
/// `install` lines that run something other than a bare `true`/`false`
/// (a wrapper that loads the module after all) do not disable it.
pub fn disabled_modules(target: &dyn Target) -> HashMap<String, Disabled> {
    let mut out: HashMap<String, Disabled> = HashMap::new();
    for path in modprobe_files(target) {
        let Ok(bytes) = target.read(&path, READ_LIMIT) else {
            continue;
        };
        for (n, line) in logical_lines(&String::from_utf8_lossy(&bytes)) {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let at = format!("{path}:{n}");
            match (words.next(), words.next()) {
                (Some("install"), Some(module)) => {
                    let command: Vec<&str> = words.collect();
                    let program = command.first().map(|p| p.rsplit('/').next().unwrap_or(p));
                    if matches!(program, Some("false" | "true")) && command.len() == 1 {
                        out.entry(normalize(module)).or_insert(Disabled::Install {
                            at,
                            command: command.join(" "),
                        });
                    }
                }
                (Some("blacklist"), Some(module)) => {
                    out.entry(normalize(module))
                        .or_insert(Disabled::Blacklist { at });
                }
                _ => {}
            }
        }
    }
    out
}

/// modprobe.d lines with their 1-based numbers, a line ending in a
/// backslash joined with the next (numbered as its first).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut open = false;
    for (i, line) in text.lines().enumerate() {
        let (body, cont) = match line.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (line, false),
        };
        match out.last_mut() {
            Some((_, last)) if open => {
                last.push(' ');
                last.push_str(body);
            }
            _ => out.push((i + 1, body.to_string())),
        }
        open = cont;
    }
    out
}

/// kmod's alias normalisation: `-` becomes `_` outside `[...]` classes.
fn normalize_alias(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut in_class = false;
    for c in pattern.chars() {
        match c {
            '[' => in_class = true,
            ']' => in_class = false,
            _ => {}
        }
        out.push(if c == '-' && !in_class { '_' } else { c });
    }
    out
}

/// Lines with their 1-based numbers.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

/// At most [`PROBLEMS_SHOWN`] problems, and a count of the rest.
fn cap(mut bad: Vec<String>) -> Vec<String> {
    if bad.len() > PROBLEMS_SHOWN {
        let more = bad.len() - PROBLEMS_SHOWN;
        bad.truncate(PROBLEMS_SHOWN);
        bad.push(format!("and {more} more bad lines"));
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodecheck_core::target::MemoryTarget;

    const DIR: &str = "/lib/modules/6.1.0-t";

    fn target(dep: &str) -> MemoryTarget {
        MemoryTarget::new()
            .file(&format!("{DIR}/modules.dep"), 0o644, 0, 0, dep)
            .file(
                &format!("{DIR}/modules.builtin"),
                0o644,
                0,
                0,
                "kernel/fs/ext4/ext4.ko\nkernel/drivers/net/dummy-thing.ko\n",
            )
            .file(
                &format!("{DIR}/modules.builtin.modinfo"),
                0o644,
                0,
                0,
                "ext4.version=1.2\0ext4.alias=fs-ext4\0ext4.alias=ext3\0",
            )
            .file(
                &format!("{DIR}/modules.alias"),
                0o644,
                0,
                0,
                "# Aliases extracted from modules themselves.\nalias fs-nfs4 nfsv4\nalias pci:v000015B3d0000101[79]sv* mlx5-core\n",
            )
    }

    const DEP: &str = "kernel/fs/nfs/nfsv4.ko: kernel/fs/nfs/nfs.ko kernel/net/sunrpc/sunrpc.ko\nkernel/fs/nfs/nfs.ko: kernel/net/sunrpc/sunrpc.ko\nkernel/net/sunrpc/sunrpc.ko:\nkernel/drivers/net/mlx5-core.ko.xz:\n";

    #[test]
    fn dep_builtin_and_aliases() {
        let t = target(DEP);
        let i = Index::load(&t, "6.1.0-t", DIR).unwrap();
        assert!(i.problems.is_empty(), "{:?}", i.problems);
        let v4 = i.by_name("nfsv4").unwrap();
        let deps: Vec<Dep> = i.deps(v4);
        assert_eq!(
            deps,
            vec![
                Dep::Listed(i.by_name("nfs").unwrap()),
                Dep::Listed(i.by_name("sunrpc").unwrap())
            ]
        );
        let f = i.find(&t, "mlx5-core").unwrap();
        assert_eq!(f.hits, vec![Hit::Module(i.by_name("mlx5_core").unwrap())]);
        assert_eq!(
            i.find(&t, "ext4").unwrap().hits,
            vec![Hit::Builtin("ext4".into())]
        );
        assert_eq!(
            i.find(&t, "dummy_thing").unwrap().hits,
            vec![Hit::Builtin("dummy_thing".into())]
        );
        let f = i.find(&t, "fs-nfs4").unwrap();
        assert_eq!(f.hits, vec![Hit::Module(v4)]);
        assert_eq!(f.alias.as_deref(), Some("fs_nfs4"));
        let f = i.find(&t, "pci:v000015B3d00001017sv00001234").unwrap();
        assert_eq!(f.hits.len(), 1);
        assert_eq!(
            i.find(&t, "ext3").unwrap().hits,
            vec![Hit::Builtin("ext4".into())]
        );
        assert!(i.find(&t, "nvidia").unwrap().hits.is_empty());
        assert_eq!(
            i.builtin_values(&t, "ext4", "version"),
            Ok(vec!["1.2".to_string()])
        );
    }

    #[test]
    fn garbage_lines_are_problems_with_file_and_line() {
        let t = target(
            "kernel/a.ko:\nthis is not a dep line\nkernel/b.ko: /etc/passwd\n\u{0}\u{1}garbage: x\n",
        );
        let i = Index::load(&t, "6.1.0-t", DIR).unwrap();
        assert_eq!(i.problems.len(), 3, "{:?}", i.problems);
        assert!(i.problems[0].starts_with("/lib/modules/6.1.0-t/modules.dep:2: no `:`"));
        assert!(i.problems[1].contains(":3: dependency \"/etc/passwd\" is not a module file"));
        assert!(i.by_name("a").is_some());
        let many: String = (0..100).map(|_| "junk\n").collect();
        let i = Index::load(&target(&many), "6.1.0-t", DIR).unwrap();
        assert_eq!(i.problems.len(), PROBLEMS_SHOWN + 1);
        assert_eq!(i.problems.last().unwrap(), "and 95 more bad lines");
    }

    #[test]
    fn binary_garbage_never_panics() {
        let mut junk: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        junk.extend_from_slice(b"\n:\n::\n: :\n.ko:\n");
        let t = MemoryTarget::new()
            .file(&format!("{DIR}/modules.dep"), 0o644, 0, 0, &junk)
            .file(&format!("{DIR}/modules.builtin"), 0o644, 0, 0, &junk)
            .file(
                &format!("{DIR}/modules.builtin.modinfo"),
                0o644,
                0,
                0,
                &junk,
            )
            .file(&format!("{DIR}/modules.alias"), 0o644, 0, 0, &junk);
        let i = Index::load(&t, "6.1.0-t", DIR).unwrap();
        assert!(!i.problems.is_empty());
        assert!(i.find(&t, "anything").is_err());
    }

    #[test]
    fn no_modules_dep_means_depmod_never_ran() {
        let t = MemoryTarget::new().dir(DIR, 0o755, 0, 0);
        assert!(
            matches!(Index::load(&t, "6.1.0-t", DIR), Err(LoadError::NoDep(p)) if p.ends_with("modules.dep"))
        );
    }

    #[test]
    fn modprobe_d_aliases_come_first() {
        let t = target(DEP)
            .file(
                "/etc/modprobe.d/nvidia.conf",
                0o644,
                0,
                0,
                "# Debian\nalias nvidia nvidia-current\nblacklist nouveau\n",
            )
            .file(
                "/usr/lib/modprobe.d/nvidia.conf",
                0o644,
                0,
                0,
                "alias nvidia sunrpc\n",
            )
            .file(&format!("{DIR}/kernel/nvidia-current.ko"), 0o644, 0, 0, "")
            .file(
                &format!("{DIR}/modules.dep"),
                0o644,
                0,
                0,
                format!("{DEP}kernel/nvidia-current.ko:\n"),
            );
        let i = Index::load(&t, "6.1.0-t", DIR).unwrap();
        let f = i.find(&t, "nvidia").unwrap();
        assert_eq!(
            f.hits,
            vec![Hit::Module(i.by_name("nvidia_current").unwrap())]
        );
    }

    #[test]
    fn alias_normalisation_keeps_classes() {
        assert_eq!(normalize_alias("fs-nfs4"), "fs_nfs4");
        assert_eq!(normalize_alias("x[a-z]-y"), "x[a-z]_y");
    }
}
