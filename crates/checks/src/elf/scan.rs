//! Which files an `elf` check looks at, and each one's load, in parallel.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use globset::GlobSet;
use nodecheck_core::target::{
    FileType, Metadata, PerThread, Target, WalkOptions, display_bytes, walk_key,
};
use rayon::prelude::*;

use super::closure::{self, Load, Setup};
use super::object;
use super::search::{Linker, Loaded, Probe};

/// What became of one file.
#[derive(Debug)]
pub enum Outcome {
    /// Not an executable or shared object (not ELF, a kernel module, an
    /// object file): not checked.
    Skipped(&'static str),
    /// Could not be read or parsed.
    Error(String),
    /// Statically linked: needs no library.
    Static,
    Loaded(Load),
}

/// Which files a directory scan examines (the `candidates` key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Candidates {
    /// What exec(2) can run and what ld.so and dlopen load by the names
    /// programs use: files named like a shared object
    /// ([`shared_object_name`]), and regular files with an execute bit (and
    /// at least an ELF header's bytes) whose name is not that of a
    /// source, text or data format ([`data_name`]). The default.
    Loadable,
    /// Every regular file (but kernel modules), sniffed by its first
    /// bytes.
    All,
}

impl Candidates {
    /// The key's words.
    pub const WORDS: &[&str] = &["loadable", "all"];

    pub fn from_word(word: Option<&str>) -> Candidates {
        match word {
            Some("all") => Candidates::All,
            _ => Candidates::Loadable,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Candidates::Loadable => "loadable",
            Candidates::All => "all",
        }
    }
}

/// The smallest ELF header (ELFCLASS32): a shorter file is no program the
/// kernel can run.
pub const MIN_ELF: u64 = 52;

/// Whether a file name has a shared object's shape: `.so` at the end or
/// `.so.` inside (`libfoo.so`, `libfoo.so.1.2`,
/// `foo.cpython-311-x86_64-linux-gnu.so`).
pub fn shared_object_name(name: &[u8]) -> bool {
    name.ends_with(b".so") || name.windows(4).any(|w| w == b".so.")
}

/// The name endings (after the last `.`) of formats that are not ELF
/// programs or libraries, or are ELF that ld.so never loads: sources and
/// headers, static archives and object files, compressed streams,
/// translations, scripting languages' modules and bytecode, markup, text,
/// configuration and unit files. Sorted (a test checks), compared exactly.
/// These names are most of the files of an image's /usr (headers, man
/// pages, Perl and Python modules, locales): skipping them by name spares
/// a `stat` each, a quarter of a whole-/usr scan.
pub const DATA_EXTENSIONS: &[&str] = &[
    "a", "al", "am", "bz2", "c", "cc", "conf", "cpp", "css", "cxx", "enc", "gz", "h", "hh", "hpp",
    "htm", "html", "hwdb", "hxx", "js", "json", "lua", "m4", "md", "mo", "msg", "o", "pc", "ph",
    "pl", "pm", "po", "pod", "py", "pyc", "pyi", "rules", "service", "socket", "target", "tcc",
    "tcl", "timer", "txt", "xml", "xz", "yaml", "yml", "zst",
];

/// Whether a file name ends in one of the [`DATA_EXTENSIONS`]
/// (`stdio.h`, `ls.1.gz`, `os.py`); a dot file (`.profile`) has none.
/// Asked of most of the files of a tree, so it compares integers: each
/// extension packed big-endian into a `u64` ([`ext_key`]), which keeps
/// the list's order.
pub fn data_name(name: &[u8]) -> bool {
    const KEYS: [u64; DATA_EXTENSIONS.len()] = {
        let mut keys = [0; DATA_EXTENSIONS.len()];
        let mut i = 0;
        while i < keys.len() {
            keys[i] = match ext_key(DATA_EXTENSIONS[i].as_bytes()) {
                Some(k) => k,
                None => panic!("an extension longer than 8 bytes"),
            };
            i += 1;
        }
        keys
    };
    match name.iter().rposition(|&b| b == b'.') {
        Some(dot) if dot > 0 => {
            ext_key(&name[dot + 1..]).is_some_and(|k| KEYS.binary_search(&k).is_ok())
        }
        _ => false,
    }
}

/// An extension of at most 8 bytes as a number that sorts as the bytes
/// do (zero-padded on the right; no extension holds a NUL).
const fn ext_key(ext: &[u8]) -> Option<u64> {
    if ext.is_empty() || ext.len() > 8 {
        return None;
    }
    let mut key = [0u8; 8];
    let mut i = 0;
    while i < ext.len() {
        key[i] = ext[i];
        i += 1;
    }
    Some(u64::from_be_bytes(key))
}

/// What a directory scan found.
#[derive(Debug, Default)]
pub struct Found {
    /// The ELF executables and shared objects, in walk order (shown
    /// paths), each opened once and parsed once.
    pub files: Vec<String>,
    /// Per file of `files`: its load as a program.
    pub outcomes: Vec<Outcome>,
    /// Files and directories that could not be read.
    pub errors: Vec<String>,
    /// Regular files opened and sniffed.
    pub examined: usize,
    /// Regular files the `candidates` rule left unopened after a `stat`.
    pub skipped: usize,
    /// Regular files the `candidates` rule left alone by their name
    /// ([`data_name`]): not even a `stat`.
    pub named: usize,
    /// Kernel modules, never opened.
    pub modules: usize,
    /// The kernel's module trees ([`MODULE_TREES`]) met below the start
    /// and not walked.
    pub module_trees: Vec<String>,
}

/// Where modprobe finds kernel modules (`/lib/modules/VERSION`, also
/// under /usr where /lib is a link to it). ld.so never loads from them,
/// the `kernel_module` and `kernel` kinds check them, and they are a
/// fifth of an image's /usr: a `loadable` scan does not walk them (a
/// scan that starts inside one does).
pub const MODULE_TREES: &[&str] = &["/lib/modules", "/usr/lib/modules"];

/// The ELF executables and shared objects under the directory `start`
/// (canonical), in walk order, minus the `exclude` matches; files and
/// directories that could not be read as errors.
///
/// The tree is walked with [`Target::walk_parallel`]: each directory is
/// held open and listed once (entry types come from the listing), and
/// each candidate file ([`Candidates`]) is sniffed by its first bytes
/// through the content door relative to that directory, so no path is
/// resolved again. A name with a shared object's shape is opened without
/// a `stat`; a name of a data format is left alone; any other file costs
/// one `fstatat` on the held directory and is opened only when it is
/// executable and large enough to be ELF. An
/// ELF program or library is parsed on the descriptor the sniff opened
/// (once per file for the run, [`Linker::opened`]) and closed: it is never
/// opened again to be checked. Its load as a program (`setup`, every
/// file unlisted) is a task of its own, started as soon as it is parsed,
/// so the loads run beside the rest of the walk. Symlinks are never
/// followed (the files they point to are checked where they are).
pub fn files(
    linker: &Linker,
    t: &dyn Target,
    start: &str,
    recursive: bool,
    exclude: &GlobSet,
    candidates: Candidates,
    setup: Setup<'_>,
) -> std::io::Result<Found> {
    let setup = Setup {
        unlisted: true,
        ..setup
    };
    let options = WalkOptions {
        max_depth: (!recursive).then_some(1),
        ..WalkOptions::default()
    };
    let found: Mutex<Vec<Sniffed>> = Mutex::default();
    // Kept with its walk key, and put in walk order at the end.
    let keep = |key: Vec<u8>, item| {
        found
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((key, item));
    };
    let push = |path: &[u8], item| keep(walk_key(path), item);
    let tally: PerThread<Counts> = PerThread::default();
    let add = |counter: fn(&Counts) -> &AtomicUsize| {
        counter(tally.mine()).fetch_add(1, Ordering::Relaxed);
    };
    let module_trees: Mutex<Vec<String>> = Mutex::default();
    // The rule for a file whose name does not say "shared object".
    let runnable = |md: &Metadata| md.mode & 0o111 != 0 && md.size >= MIN_ELF;
    rayon::scope(|loads| {
        t.walk_parallel(start, &options, &|v| {
            let v = match v {
                Ok(v) => v,
                Err(e) => {
                    let text = format!(
                        "{}: {}",
                        display_bytes(&e.path),
                        crate::eval::io_text(&e.error)
                    );
                    push(&e.path, Err(text));
                    return true;
                }
            };
            if v.depth == 0 {
                return true;
            }
            // Globs match the shown path; most scans have none to match.
            if !exclude.is_empty() && exclude.is_match(v.display()) {
                return false;
            }
            if v.file_type == FileType::Directory
                && candidates == Candidates::Loadable
                && MODULE_TREES.iter().any(|m| m.as_bytes() == v.path)
            {
                module_trees
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(v.display());
                return false;
            }
            if v.file_type != FileType::File {
                return true;
            }
            if is_kernel_module(v.path) {
                add(|c| &c.modules);
                return true;
            }
            let name = v.path.rsplit(|&b| b == b'/').next().unwrap_or(v.path);
            let opened = if candidates == Candidates::All || shared_object_name(name) {
                v.open().map(Some)
            } else if data_name(name) {
                add(|c| &c.named);
                return true;
            } else {
                v.open_if(&runnable)
            };
            let file = match opened {
                Ok(Some(f)) => f,
                Ok(None) => {
                    add(|c| &c.skipped);
                    return true;
                }
                Err(e) => {
                    push(
                        v.path,
                        Err(format!("{}: {}", v.display(), crate::eval::io_text(&e))),
                    );
                    return true;
                }
            };
            add(|c| &c.examined);
            // One read serves the sniff and the parse: a stack buffer, and
            // the path made text only for what is kept.
            let mut head = [0u8; object::HEAD];
            let size = file.metadata().size;
            let n = if size == 0 {
                Ok(0)
            } else {
                file.read_at(&mut head[..object::head_len(size)], 0)
            };
            match n {
                Ok(n) if object::is_program(&head[..n.min(object::SNIFF)]) => {
                    let shown = v.display();
                    // Loading follows paths, which are text: a program whose
                    // name is not UTF-8 cannot be loaded by its name, and a
                    // look-alike must not be loaded in its place.
                    if std::str::from_utf8(v.path).is_ok() {
                        let probe = linker.opened(&shown, file.as_ref(), Some(&head[..n]));
                        let key = walk_key(v.path);
                        let keep = &keep;
                        loads.spawn(move |_| {
                            let o = outcome(linker, t, &shown, &shown, Ok(probe), setup);
                            keep(key, Ok((shown, o)));
                        });
                    } else {
                        push(
                            v.path,
                            Err(format!(
                                "{shown}: an ELF file whose name is not UTF-8 cannot be checked"
                            )),
                        );
                    }
                }
                Ok(_) => {}
                Err(e) => push(
                    v.path,
                    Err(format!("{}: {}", v.display(), crate::eval::io_text(&e))),
                ),
            }
            true
        })
    })?;
    let mut found = found.into_inner().unwrap_or_else(|p| p.into_inner());
    found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let sum = |counter: fn(&Counts) -> &AtomicUsize| -> usize {
        tally
            .all()
            .map(|c| counter(c).load(Ordering::Relaxed))
            .sum()
    };
    let mut out = Found {
        examined: sum(|c| &c.examined),
        skipped: sum(|c| &c.skipped),
        named: sum(|c| &c.named),
        modules: sum(|c| &c.modules),
        module_trees: {
            let mut m = module_trees.into_inner().unwrap_or_else(|p| p.into_inner());
            m.sort();
            m
        },
        ..Found::default()
    };
    for (_, item) in found {
        match item {
            Ok((f, o)) => {
                out.files.push(f);
                out.outcomes.push(o);
            }
            Err(e) => out.errors.push(e),
        }
    }
    Ok(out)
}

/// What a scan counts, per thread ([`PerThread`]).
#[derive(Default)]
struct Counts {
    examined: AtomicUsize,
    skipped: AtomicUsize,
    named: AtomicUsize,
    modules: AtomicUsize,
}

/// One file the scan found: its sort key (the path's bytes, `/` as NUL),
/// and the path of an ELF file with its load, or why it cannot be loaded.
type Sniffed = (Vec<u8>, Result<(String, Outcome), String>);

/// Kernel modules (`.ko`, compressed or not) are relocatable objects that
/// ld.so never loads: an image has thousands of them, and not opening them
/// at all is a fifth of a /usr scan. `kernel_module` checks them.
fn is_kernel_module(name: &[u8]) -> bool {
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .any(|ext| name.ends_with(ext.as_bytes()))
}

/// Checks every file, in parallel; one outcome per file, in order.
pub fn check_all(
    linker: &Linker,
    t: &dyn Target,
    files: &[String],
    setup: Setup<'_>,
) -> Vec<Outcome> {
    files
        .par_iter()
        .with_min_len(8)
        .map(|f| check(linker, t, f, f, setup))
        .collect()
}

/// Loads one file as a program, the way ldd does. `path` is canonical;
/// `program` names it in chains.
pub fn check(
    linker: &Linker,
    t: &dyn Target,
    path: &str,
    program: &str,
    setup: Setup<'_>,
) -> Outcome {
    outcome(linker, t, path, program, linker.load(t, path), setup)
}

/// The outcome of loading `path` as a program, given what opening and
/// parsing it gave.
fn outcome(
    linker: &Linker,
    t: &dyn Target,
    path: &str,
    program: &str,
    probe: std::io::Result<Probe>,
    setup: Setup<'_>,
) -> Outcome {
    let main = match probe {
        Err(e) => return Outcome::Error(format!("{path}: {}", crate::eval::io_text(&e))),
        Ok(Probe::Absent | Probe::NotElf) => return Outcome::Skipped("not an ELF file"),
        Ok(Probe::Malformed(m)) => return Outcome::Error(format!("{path}: {m}")),
        Ok(Probe::Elf(l)) => l,
    };
    if !main.obj.is_loadable() {
        return Outcome::Skipped("not an ELF executable or shared object");
    }
    if !main.obj.dynamic && main.obj.interp.is_none() {
        return Outcome::Static;
    }
    match closure::load(linker, t, Arc::<Loaded>::clone(&main), program, setup) {
        Ok(load) => Outcome::Loaded(load),
        Err(e) => Outcome::Error(e),
    }
}
