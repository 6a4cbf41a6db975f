//! Which files an `elf` check looks at, and each one's load, in parallel.

use std::sync::{Arc, Mutex};

use globset::GlobSet;
use nodecheck_core::target::{FileType, Target, WalkOptions, display_bytes};
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

/// The ELF executables and shared objects under the directory `start`
/// (canonical), in walk order, minus the `exclude` matches; files and
/// directories that could not be read as errors.
///
/// The tree is walked with [`Target::walk_parallel`]: each directory is
/// held open and listed once (entry types come from the listing, no
/// `stat` per file), and each regular file is sniffed by its first bytes
/// through the content door relative to that directory, so no path is
/// resolved again and a tree of 20,000 files costs one small read per
/// file; only ELF programs and libraries go on to be loaded. Symlinks are
/// never followed (the files they point to are checked where they are).
pub fn files(
    t: &dyn Target,
    start: &str,
    recursive: bool,
    exclude: &GlobSet,
) -> std::io::Result<(Vec<String>, Vec<String>)> {
    let options = WalkOptions {
        max_depth: (!recursive).then_some(1),
        ..WalkOptions::default()
    };
    let found: Mutex<Vec<Sniffed>> = Mutex::default();
    let push = |path: &[u8], item| {
        found
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((path.to_vec(), item));
    };
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
        if v.file_type != FileType::File || is_kernel_module(v.path) {
            return true;
        }
        // A stack buffer, and the path made text only for what is kept:
        // most of the files are not ELF and cost no allocation.
        let mut head = [0u8; object::SNIFF];
        match v.head(&mut head) {
            Ok(n) if object::is_program(&head[..n]) => {
                let shown = v.display();
                // Loading follows paths, which are text: a program whose
                // name is not UTF-8 cannot be loaded by its name, and a
                // look-alike must not be loaded in its place.
                if std::str::from_utf8(v.path).is_ok() {
                    push(v.path, Ok(shown));
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
    })?;
    let mut found = found.into_inner().unwrap_or_else(|p| p.into_inner());
    // Walk order: depth first, names by their bytes (`/` first).
    let key = |c: &u8| if *c == b'/' { 0 } else { *c };
    found.sort_unstable_by(|a, b| a.0.iter().map(key).cmp(b.0.iter().map(key)));
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for (_, item) in found {
        match item {
            Ok(f) => files.push(f),
            Err(e) => errors.push(e),
        }
    }
    Ok((files, errors))
}

/// One file the scan found: its path (bytes, for the order), and the
/// path to load (an ELF file) or why it cannot be.
type Sniffed = (Vec<u8>, Result<String, String>);

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
    let main = match linker.load(t, path) {
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
