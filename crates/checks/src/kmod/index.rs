//! One kernel's module indexes, as depmod writes them into
//! `/lib/modules/RELEASE/`: `modules.dep` (module → file and its whole
//! dependency list), `modules.builtin` and `modules.builtin.modinfo`
//! (modules compiled into the kernel), and `modules.alias`. The text files
//! are enough; the `.bin` tries depmod writes beside them say the same.
//!
//! Lines nodecheck cannot read are kept as problems (`file:line: why`):
//! a check that relies on a corrupt index reports an error naming them
//! instead of guessing.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use nodecheck_core::target::{READ_LIMIT, Target};

use super::glob;
use super::modfile::{self, Info, Stamp};
use super::{module_name, normalize};

/// How many bad lines of one file are named before "and N more".
const PROBLEMS_SHOWN: usize = 5;

/// A module that has a line in modules.dep (or is named as a dependency in
/// one).
#[derive(Debug)]
pub struct Module {
    /// Normalised name (`pci_hyperv_intf`).
    pub name: String,
    /// The path as modules.dep has it (`kernel/fs/xfs/xfs.ko`).
    pub path: String,
    /// Its dependencies in modules.dep order (depmod lists the whole
    /// closure, nearest last), as ids into [`Index::module`].
    pub deps: Vec<usize>,
    /// Whether the module has its own line (a path that appears only as a
    /// dependency is listed by no line: a truncated modules.dep).
    pub listed: bool,
}

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
    modules: Vec<Module>,
    by_name: HashMap<String, usize>,
    builtin: HashMap<String, String>,
    /// Whether modules.builtin exists (kernels before 3.x and some custom
    /// builds have none: built-ins cannot be told then).
    pub has_builtin: bool,
    builtin_info: HashMap<String, Vec<(String, String)>>,
    /// Bad lines of modules.dep and modules.builtin: every answer of this
    /// index is in doubt.
    pub problems: Vec<String>,
    /// Bad records of modules.builtin.modinfo: in doubt are the versions
    /// and aliases of built-in modules only.
    pub builtin_info_problems: Vec<String>,
    aliases: OnceLock<Aliases>,
    /// Module files found by walking the directory, by name (only when a
    /// name is not in modules.dep).
    files: OnceLock<HashMap<String, Vec<String>>>,
    /// The modinfo of each module file, kept with the stamp of the file it
    /// was read from (see [`super::cache`]).
    infos: Vec<Mutex<Option<(Stamp, Info)>>>,
}

#[derive(Debug, Default)]
struct Aliases {
    /// (normalised pattern, normalised module name)
    entries: Vec<(String, String)>,
    problems: Vec<String>,
    /// modules.alias could not be read (other than "missing").
    error: Option<String>,
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
    /// Reads and parses the indexes of `dir` for kernel `release`.
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
        let info_path = format!("{dir}/modules.builtin.modinfo");
        let (info, info_error) = match target.read(&info_path, READ_LIMIT) {
            Ok(b) => (b, None),
            Err(e) if crate::eval::is_absent(&e) => (Vec::new(), None),
            Err(e) => (Vec::new(), Some(format!("{info_path}: {e}"))),
        };
        let mut index = Index {
            release: release.to_string(),
            dir: dir.to_string(),
            modules: Vec::new(),
            by_name: HashMap::new(),
            builtin: HashMap::new(),
            has_builtin,
            builtin_info: HashMap::new(),
            problems: Vec::new(),
            builtin_info_problems: info_error.into_iter().collect(),
            aliases: OnceLock::new(),
            files: OnceLock::new(),
            infos: Vec::new(),
        };
        index.parse_dep(&dep_path, &dep);
        index.parse_builtin(&builtin_path, &builtin);
        index.parse_builtin_info(&info_path, &info);
        index.infos = (0..index.modules.len()).map(|_| Mutex::new(None)).collect();
        Ok(index)
    }

    fn parse_dep(&mut self, file: &str, bytes: &[u8]) {
        let mut by_path: HashMap<String, usize> = HashMap::new();
        let mut bad = Vec::new();
        for (n, line) in lines(bytes) {
            let Ok(line) = std::str::from_utf8(line) else {
                bad.push(format!("{file}:{n}: not text"));
                continue;
            };
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((left, right)) = line.split_once(':') else {
                bad.push(format!("{file}:{n}: no `:` in {}", shorten(line)));
                continue;
            };
            let left = left.trim();
            if module_name(left).is_none() || left.contains(char::is_whitespace) {
                bad.push(format!(
                    "{file}:{n}: {} is not a module file",
                    shorten(left)
                ));
                continue;
            }
            let deps: Vec<&str> = right.split_whitespace().collect();
            if let Some(d) = deps.iter().find(|d| module_name(d).is_none()) {
                bad.push(format!(
                    "{file}:{n}: dependency {} is not a module file",
                    shorten(d)
                ));
                continue;
            }
            let id = self.intern(&mut by_path, left);
            if self.modules[id].listed {
                // A second line for the same file: depmod never writes one.
                bad.push(format!("{file}:{n}: {left} is listed twice"));
                continue;
            }
            let dep_ids = deps.iter().map(|d| self.intern(&mut by_path, d)).collect();
            let m = &mut self.modules[id];
            m.listed = true;
            m.deps = dep_ids;
            // depmod writes one line per name, the file that wins by its
            // search order (updates/ before kernel/); keep the first.
            self.by_name.entry(m.name.clone()).or_insert(id);
        }
        self.problems.extend(cap(bad));
    }

    fn intern(&mut self, by_path: &mut HashMap<String, usize>, path: &str) -> usize {
        if let Some(&id) = by_path.get(path) {
            return id;
        }
        let id = self.modules.len();
        self.modules.push(Module {
            name: module_name(path).unwrap_or_default(),
            path: path.to_string(),
            deps: Vec::new(),
            listed: false,
        });
        by_path.insert(path.to_string(), id);
        id
    }

    fn parse_builtin(&mut self, file: &str, bytes: &[u8]) {
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
                    self.builtin.insert(name, line.to_string());
                }
                _ => bad.push(format!(
                    "{file}:{n}: {} is not a module path",
                    shorten(line)
                )),
            }
        }
        self.problems.extend(cap(bad));
    }

    /// `modules.builtin.modinfo`: NUL-separated `module.key=value` records
    /// (kernel ≥ 5.2), what `modinfo` shows for a built-in module.
    fn parse_builtin_info(&mut self, file: &str, bytes: &[u8]) {
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
                Some((m, key, v)) => self
                    .builtin_info
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
        self.builtin_info_problems.extend(cap(bad));
    }

    /// The module with id `id`.
    pub fn module(&self, id: usize) -> &Module {
        &self.modules[id]
    }

    /// The module file of a normalised name, from modules.dep.
    pub fn by_name(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Whether a normalised name is compiled into the kernel.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains_key(name)
    }

    /// The modinfo values of a built-in module for `key` (`version`).
    pub fn builtin_info(&self, name: &str, key: &str) -> Vec<&str> {
        self.builtin_info
            .get(name)
            .into_iter()
            .flatten()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Looks a name up as modprobe does: a module of modules.dep, a
    /// built-in, then an alias (modules.alias, and the aliases of built-in
    /// modules from modules.builtin.modinfo). Names compare with `-` = `_`.
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
        for (pattern, module) in &aliases.entries {
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
            if !aliases.problems.is_empty() || !self.builtin_info_problems.is_empty() {
                let mut p = aliases.problems.clone();
                p.extend(self.builtin_info_problems.iter().cloned());
                return Err(format!(
                    "{name} is not in modules.dep, and the alias files are corrupt: {}",
                    p.join("; ")
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
        out.problems = cap(bad);
        // Built-in modules have aliases too (`ext4` answers to `fs-ext4`),
        // kept only in modules.builtin.modinfo.
        for (module, kv) in &self.builtin_info {
            for (_, v) in kv.iter().filter(|(k, _)| k == "alias") {
                out.entries.push((normalize_alias(v), module.clone()));
            }
        }
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
                !self.modules.iter().any(|m| m.listed && m.path == rel)
            })
            .cloned()
            .collect()
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

    /// The modinfo of module `id`, read once per file version: the cached
    /// answer is reused while the file's stamp (device, inode, size, mtime)
    /// is unchanged. `Ok(None)`: the file does not exist.
    pub fn info(&self, target: &dyn Target, id: usize) -> io::Result<Option<Info>> {
        let path = super::in_dir(&self.dir, &self.modules[id].path);
        let meta = match target.metadata(&path, true) {
            Ok(m) => m,
            Err(e) if crate::eval::is_absent(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let stamp = Stamp::of(&meta);
        let mut slot = self.infos[id]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let (Some(s), Some((cached, info))) = (stamp, slot.as_ref())
            && s == *cached
        {
            return Ok(Some(info.clone()));
        }
        let info = Arc::new(modfile::read_modinfo(target, &path));
        match stamp {
            Some(s) => *slot = Some((s, info.clone())),
            // No mtime (an in-memory target): nothing to tell a changed
            // file by, so nothing is kept.
            None => *slot = None,
        }
        Ok(Some(info))
    }
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

/// A line or word for a message: at most 60 characters, quoted.
fn shorten(s: &str) -> String {
    let t: String = s.chars().take(60).collect();
    if t.len() < s.len() {
        format!("{t:?}…")
    } else {
        format!("{t:?}")
    }
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
        let deps: Vec<&str> = i
            .module(v4)
            .deps
            .iter()
            .map(|&d| i.module(d).name.as_str())
            .collect();
        assert_eq!(deps, vec!["nfs", "sunrpc"]);
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
        assert_eq!(i.builtin_info("ext4", "version"), vec!["1.2"]);
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
    fn alias_normalisation_keeps_classes() {
        assert_eq!(normalize_alias("fs-nfs4"), "fs_nfs4");
        assert_eq!(normalize_alias("x[a-z]-y"), "x[a-z]_y");
    }
}
