//! ld.so's library search, run inside the target: which file a DT_NEEDED
//! name loads, given the search path of the object that needs it.
//!
//! Everything a search reads is kept for the run (in the target's memo):
//! each file is parsed once, each path probed once, each (name, search
//! path) resolved once.

use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use foldhash::HashMap;
use goblin::elf::header::{ELFDATA2LSB, ELFOSABI_GNU, ELFOSABI_SYSV, ET_DYN};
use nodecheck_core::target::{FileAt, Target, join};

use super::object::{self, Ident, Malformed, Object};
use super::symbols::{self, Symbols};
use super::system::{Layout, System};

/// A file the loader opened.
#[derive(Debug)]
pub struct Loaded {
    /// The path it was opened by, inside the target (symlinks not
    /// resolved: `$ORIGIN` of a library is the directory it was found in).
    pub path: String,
    /// `(st_dev, st_ino)`: ld.so never maps the same file twice.
    pub id: (u64, u64),
    /// Permission bits of the file (setuid matters for the main program).
    pub mode: u32,
    pub obj: Arc<Object>,
}

/// What is at a path.
#[derive(Clone, Debug)]
pub enum Probe {
    /// Nothing the loader can open (missing, a directory, no permission):
    /// the search goes on.
    Absent,
    /// A file that is not ELF.
    NotElf,
    /// An ELF file that cannot be read.
    Malformed(String),
    Elf(Arc<Loaded>),
}

/// Where a library was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Via {
    /// The DT_NEEDED entry is a path.
    Path,
    Rpath,
    LibraryPath,
    Runpath,
    Cache,
    Default,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Path => "path",
            Via::Rpath => "RPATH",
            Via::LibraryPath => "library_path",
            Via::Runpath => "RUNPATH",
            Via::Cache => "ld.so.cache",
            Via::Default => "default path",
        }
    }
}

/// The outcome of one search.
#[derive(Clone, Debug)]
pub enum Resolution {
    Found(Arc<Loaded>, Via),
    /// Nothing loadable. `other`: a file of another class or machine was
    /// found and skipped.
    Missing {
        other: bool,
    },
    /// ld.so would stop at this file with an error.
    Broken {
        path: String,
        why: String,
    },
}

/// The directories searched for the DT_NEEDED entries of one object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SearchPath {
    pub ident: Ident,
    /// RPATHs, library_path, RUNPATH: expanded, in order.
    pub dirs: Vec<(String, Via)>,
    /// ld.so.cache and the default directories (off for `DF_1_NODEFLIB`).
    pub defaults: bool,
}

type Cell<T> = Arc<OnceLock<T>>;
type Parsed = Result<Option<Arc<Object>>, Malformed>;
type SymbolTables = Result<Arc<Symbols>, Malformed>;

/// The run's memory of the target's libraries.
#[derive(Default)]
pub struct Linker {
    system: OnceLock<System>,
    objects: Mutex<HashMap<(u64, u64), Cell<Parsed>>>,
    probes: Mutex<HashMap<String, Cell<Probe>>>,
    searches: Mutex<HashMap<SearchPath, HashMap<String, Cell<Resolution>>>>,
    symbols: Mutex<HashMap<(u64, u64), Cell<SymbolTables>>>,
    unresolved: Mutex<HashMap<Closure, Cell<Arc<Vec<u32>>>>>,
}

/// An object and the objects its dependencies loaded (sorted ids): what
/// decides which of its undefined symbols they define.
pub type Closure = ((u64, u64), Vec<(u64, u64)>);

/// The cell for `key`, made empty on first use; filled outside the lock.
fn cell<K: Hash + Eq, V>(map: &Mutex<HashMap<K, Cell<V>>>, key: K) -> Cell<V> {
    let mut m = map.lock().unwrap_or_else(PoisonError::into_inner);
    m.entry(key).or_default().clone()
}

impl Linker {
    pub fn system(&self, t: &dyn Target) -> &System {
        self.system.get_or_init(|| System::read(t))
    }

    /// The symbol tables of a loaded file, read once per file for the run.
    pub fn symbols(&self, t: &dyn Target, l: &Loaded) -> SymbolTables {
        cell(&self.symbols, l.id)
            .get_or_init(|| {
                let file = t
                    .open(&l.path)
                    .map_err(|e| Malformed(format!("cannot read: {e}")))?;
                let md = file.metadata();
                if (md.dev, md.ino) != l.id {
                    return Err(Malformed("the file was replaced while read".into()));
                }
                symbols::read(file.as_ref()).map(Arc::new)
            })
            .clone()
    }

    /// The indices of an object's needed symbols that its own dependency
    /// closure does not define: computed by `f` once per closure for the
    /// run (a library is loaded with the same dependencies by most of the
    /// programs that use it).
    pub fn unresolved(&self, key: Closure, f: impl FnOnce() -> Vec<u32>) -> Arc<Vec<u32>> {
        cell(&self.unresolved, key)
            .get_or_init(|| Arc::new(f()))
            .clone()
    }

    /// Opens and parses `path`.
    pub fn load(&self, t: &dyn Target, path: &str) -> Result<Probe, std::io::Error> {
        let file = t.open(path)?;
        Ok(self.opened(path, file.as_ref(), None))
    }

    /// Parses a file already opened (through the content door) by its
    /// in-target `path`, once per file for the run, given its first bytes
    /// where they were read already ([`object::read_from`]): a tree scan
    /// hands over the descriptor and the head its sniff read, so no file
    /// is opened or its head read twice.
    pub fn opened(&self, path: &str, file: &dyn FileAt, head: Option<&[u8]>) -> Probe {
        let md = file.metadata();
        let parsed = cell(&self.objects, (md.dev, md.ino))
            .get_or_init(|| {
                match head {
                    Some(h) => object::read_from(file, h),
                    None => object::read(file),
                }
                .map(|o| o.map(Arc::new))
            })
            .clone();
        match parsed {
            Ok(None) => Probe::NotElf,
            Err(e) => Probe::Malformed(e.0),
            Ok(Some(obj)) => Probe::Elf(Arc::new(Loaded {
                path: path.to_string(),
                id: (md.dev, md.ino),
                mode: md.mode,
                obj,
            })),
        }
    }

    /// What is at `path`, once per path for the run.
    pub fn probe(&self, t: &dyn Target, path: &str) -> Probe {
        cell(&self.probes, path.to_string())
            .get_or_init(|| self.load(t, path).unwrap_or(Probe::Absent))
            .clone()
    }

    /// The file `name` loads for an object searching `sp`.
    pub fn resolve(&self, t: &dyn Target, name: &str, sp: &SearchPath) -> Resolution {
        let c = {
            let mut m = self.searches.lock().unwrap_or_else(PoisonError::into_inner);
            if !m.contains_key(sp) {
                m.insert(sp.clone(), HashMap::default());
            }
            let Some(by_name) = m.get_mut(sp) else {
                return self.search(t, name, sp);
            };
            match by_name.get(name) {
                Some(c) => c.clone(),
                None => by_name.entry(name.to_string()).or_default().clone(),
            }
        };
        c.get_or_init(|| self.search(t, name, sp)).clone()
    }

    fn search(&self, t: &dyn Target, name: &str, sp: &SearchPath) -> Resolution {
        let mut other = false;
        let mut step = |path: &str, via: Via| match self.candidate(t, path, sp.ident) {
            Step::Skip(o) => {
                other |= o;
                None
            }
            Step::Take(Ok(l)) => Some(Resolution::Found(l, via)),
            Step::Take(Err(why)) => Some(Resolution::Broken {
                path: path.to_string(),
                why,
            }),
        };
        for (dir, via) in &sp.dirs {
            if let Some(r) = step(&join(dir, name), *via) {
                return r;
            }
        }
        if sp.defaults {
            let system = self.system(t);
            if let Some(e) = system.cache.as_ref().and_then(|c| c.lookup(name, sp.ident))
                && let Some(r) = step(&e.path, Via::Cache)
            {
                return r;
            }
            for dir in &system.layout(t, sp.ident).dirs {
                if let Some(r) = step(&join(dir, name), Via::Default) {
                    return r;
                }
            }
        }
        Resolution::Missing { other }
    }

    /// Why ld.so does not find `name` though the image has it: a library
    /// of the right class in a directory of ld.so.conf that the cache does
    /// not list (ld.so reads only the cache and its default directories;
    /// ldconfig, which turns ld.so.conf into the cache, was not re-run
    /// after the library was added, or never ran). `None`: not there
    /// either, or the search does not use the cache (`DF_1_NODEFLIB`).
    pub fn unconfigured(&self, t: &dyn Target, name: &str, sp: &SearchPath) -> Option<String> {
        if !sp.defaults || name.contains('/') {
            return None;
        }
        let system = self.system(t);
        let (dir, conf) = system
            .conf
            .dirs
            .iter()
            .zip(&system.conf.named_by)
            .find(|(dir, _)| {
                matches!(
                    self.candidate(t, &join(dir, name), sp.ident),
                    Step::Take(Ok(_))
                )
            })?;
        let path = join(dir, name);
        Some(match &system.no_cache {
            Some(why) => format!(
                "{why}, so ld.so searches only its default directories, not {dir} \
                 (named by {conf}) where {path} is: not in ld.so.cache; ldconfig not run"
            ),
            None => format!(
                "{path} is not in ld.so.cache; ldconfig not re-run after it was added to \
                 {dir} (named by {conf})"
            ),
        })
    }

    /// A DT_NEEDED entry that is a path (already expanded): opened as is.
    pub fn direct(&self, t: &dyn Target, path: &str, ident: Ident) -> Resolution {
        match self.candidate(t, path, ident) {
            Step::Skip(other) => Resolution::Missing { other },
            Step::Take(Ok(l)) => Resolution::Found(l, Via::Path),
            Step::Take(Err(why)) => Resolution::Broken {
                path: path.to_string(),
                why,
            },
        }
    }

    /// The program interpreter (PT_INTERP), which the kernel loads: any
    /// executable or shared object of the program's class and machine.
    pub fn interpreter(&self, t: &dyn Target, path: &str, want: Ident) -> Resolution {
        let l = match self.probe(t, path) {
            Probe::Absent => return Resolution::Missing { other: false },
            Probe::NotElf => "invalid ELF header".to_string(),
            Probe::Malformed(m) => m,
            Probe::Elf(l) if l.obj.ident != Some(want) => {
                return Resolution::Missing { other: true };
            }
            Probe::Elf(l) if !l.obj.is_loadable() => "not an executable or shared object".into(),
            Probe::Elf(l) => return Resolution::Found(l, Via::Path),
        };
        Resolution::Broken {
            path: path.to_string(),
            why: l,
        }
    }

    /// ld.so's `open_verify`: a file of another class or machine is
    /// skipped, anything else wrong stops the search with an error.
    fn candidate(&self, t: &dyn Target, path: &str, want: Ident) -> Step {
        let l = match self.probe(t, path) {
            Probe::Absent => return Step::Skip(false),
            Probe::NotElf => return Step::Take(Err("invalid ELF header".into())),
            Probe::Malformed(m) => return Step::Take(Err(m)),
            Probe::Elf(l) => l,
        };
        Step::Take(match verify(&l.obj, want) {
            Verdict::Skip => return Step::Skip(true),
            Verdict::Error(e) => Err(e),
            Verdict::Ok => Ok(l),
        })
    }
}

enum Step {
    Skip(bool),
    Take(Result<Arc<Loaded>, String>),
}

pub enum Verdict {
    Ok,
    /// Another class or machine: ld.so passes over it.
    Skip,
    Error(String),
}

/// Whether ld.so for objects of `want` accepts `obj` as a library.
pub fn verify(obj: &Object, want: Ident) -> Verdict {
    let Some(id) = obj.ident else {
        return Verdict::Error("invalid ELF header".into());
    };
    if id.class != want.class {
        return Verdict::Skip;
    }
    if id.data != want.data {
        let order = if want.data == ELFDATA2LSB {
            "little"
        } else {
            "big"
        };
        return Verdict::Error(format!("ELF file data encoding not {order}-endian"));
    }
    if id.machine != want.machine {
        return Verdict::Skip;
    }
    if obj.osabi != ELFOSABI_SYSV && obj.osabi != ELFOSABI_GNU {
        return Verdict::Error("ELF file OS ABI invalid".into());
    }
    if obj.e_type != ET_DYN {
        return Verdict::Error("cannot dynamically load executable".into());
    }
    if obj.pie {
        return Verdict::Error("cannot dynamically load position-independent executable".into());
    }
    Verdict::Ok
}

/// How DT_RPATH, DT_RUNPATH and library_path entries expand.
pub struct Expand<'a> {
    pub layout: &'a Layout,
    /// `$ORIGIN`: the directory of the object (unknown: entries using it
    /// are dropped, as ld.so drops them).
    pub origin: Option<&'a str>,
    /// A setuid or setgid main program: `$ORIGIN` entries survive only
    /// when they land in a default directory.
    pub secure: bool,
}

impl Expand<'_> {
    /// The directories of a colon-separated list. Empty and relative
    /// entries (relative to the working directory, unknown offline) are
    /// left out.
    pub fn dirs(&self, list: &str, via: Via, out: &mut Vec<(String, Via)>) {
        for entry in list.split(':') {
            let Some(dir) = self.one(entry) else { continue };
            let dir = match dir.trim_end_matches('/') {
                "" if dir.starts_with('/') => "/".to_string(),
                d => d.to_string(),
            };
            if dir.starts_with('/') && !out.iter().any(|(d, _)| *d == dir) {
                out.push((dir, via));
            }
        }
    }

    /// Expands the dynamic string tokens of one entry (also used for a
    /// DT_NEEDED path); `None` when a token has no value.
    pub fn one(&self, entry: &str) -> Option<String> {
        let mut out = String::with_capacity(entry.len());
        let mut rest = entry;
        let mut used_origin = false;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            let (token, len) = token(rest);
            let value = match token {
                Some("ORIGIN") => {
                    used_origin = true;
                    Some(self.origin?.to_string())
                }
                Some("LIB") => Some(self.layout.lib.clone()),
                Some("PLATFORM") => Some(self.layout.platform?.to_string()),
                _ => None,
            };
            match value {
                Some(v) => {
                    out.push_str(&v);
                    rest = &rest[len..];
                }
                // Not a token ld.so knows: the `$` stays.
                None => out.push('$'),
            }
        }
        out.push_str(rest);
        if self.secure
            && used_origin
            && !self
                .layout
                .dirs
                .iter()
                .any(|d| out.trim_end_matches('/') == d)
        {
            return None;
        }
        Some(out)
    }
}

/// The token at the start of `s` (after a `$`): `ORIGIN` or `{ORIGIN}`,
/// ending where a name character cannot follow; and its length in `s`.
fn token(s: &str) -> (Option<&str>, usize) {
    for name in ["ORIGIN", "PLATFORM", "LIB"] {
        if let Some(after) = s.strip_prefix(name)
            && !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        {
            return (Some(name), name.len());
        }
        if let Some(after) = s.strip_prefix('{').and_then(|a| a.strip_prefix(name))
            && after.starts_with('}')
        {
            return (Some(name), name.len() + 2);
        }
    }
    (None, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            dirs: vec![
                "/lib/x86_64-linux-gnu".into(),
                "/usr/lib/x86_64-linux-gnu".into(),
            ],
            lib: "lib/x86_64-linux-gnu".into(),
            platform: Some("x86_64"),
        }
    }

    fn dirs(list: &str, origin: Option<&str>, secure: bool) -> Vec<String> {
        let l = layout();
        let e = Expand {
            layout: &l,
            origin,
            secure,
        };
        let mut out = Vec::new();
        e.dirs(list, Via::Runpath, &mut out);
        out.into_iter().map(|(d, _)| d).collect()
    }

    #[test]
    fn tokens_expand_like_ld_so() {
        assert_eq!(
            dirs(
                "$ORIGIN/../lib:${ORIGIN}/x/:/opt/$LIB:/p/$PLATFORM/${PLATFORM}",
                Some("/opt/app/bin"),
                false
            ),
            [
                "/opt/app/bin/../lib",
                "/opt/app/bin/x",
                "/opt/lib/x86_64-linux-gnu",
                "/p/x86_64/x86_64"
            ]
        );
        // Unknown tokens stay literally; `$ORIGINAL` is not `$ORIGIN`.
        assert_eq!(
            dirs("/a/$HOME:/b/$ORIGINAL", Some("/o"), false),
            ["/a/$HOME", "/b/$ORIGINAL"]
        );
        // Empty, relative and origin-less entries are dropped, duplicates too.
        assert_eq!(dirs("::lib:/x:/x/:$ORIGIN/y", None, false), ["/x"]);
        assert_eq!(dirs("/", None, false), ["/"]);
    }

    #[test]
    fn secure_mode_keeps_origin_only_in_system_dirs() {
        assert_eq!(
            dirs("$ORIGIN/../lib:/opt/lib", Some("/opt/bin"), true),
            ["/opt/lib"]
        );
        assert_eq!(
            dirs("$ORIGIN", Some("/usr/lib/x86_64-linux-gnu"), true),
            ["/usr/lib/x86_64-linux-gnu"]
        );
    }
}
