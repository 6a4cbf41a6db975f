//! Which files an `elf` check looks at, and each one's load, in parallel.

use std::sync::Arc;

use globset::GlobSet;
use nodecheck_core::target::{DirEntry, FileType, Target, join};
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
/// (canonical), in name order, minus the `exclude` matches; files and
/// directories that could not be read as errors.
///
/// Directories are listed in parallel with `read_dir` (entry types come
/// from the directory itself, no `stat` per file) and each regular file is
/// sniffed by its first bytes with [`Target::heads`]: a tree of 20,000
/// files costs one small read per file, and only ELF programs and
/// libraries go on to be loaded. Symlinks are never followed (the files
/// they point to are checked where they are).
pub fn files(
    t: &dyn Target,
    start: &str,
    recursive: bool,
    exclude: &GlobSet,
) -> std::io::Result<(Vec<String>, Vec<String>)> {
    let entries = t.read_dir(start)?;
    let mut found = Found::default();
    visit(t, start, entries, recursive, exclude, &mut found);
    Ok((found.files, found.errors))
}

/// Files sniffed by one task.
const SNIFF_CHUNK: usize = 128;

#[derive(Default)]
struct Found {
    files: Vec<String>,
    errors: Vec<String>,
}

fn visit(
    t: &dyn Target,
    dir: &str,
    entries: Vec<DirEntry>,
    recursive: bool,
    exclude: &GlobSet,
    out: &mut Found,
) {
    let keep = |e: &DirEntry| !exclude.is_match(join(dir, &e.name));
    let (files, dirs): (Vec<DirEntry>, Vec<DirEntry>) = entries
        .into_iter()
        .filter(|e| matches!(e.file_type, FileType::File | FileType::Directory))
        .filter(keep)
        .partition(|e| e.file_type == FileType::File);
    let names: Vec<String> = files
        .into_iter()
        .map(|e| e.name)
        .filter(|n| !is_kernel_module(n))
        .collect();
    // Big directories (/usr/lib/<triplet> holds thousands of files) are
    // sniffed in parallel chunks.
    let sniffed: Vec<Found> = names
        .par_chunks(SNIFF_CHUNK)
        .map(|chunk| {
            let mut found = Found::default();
            for (name, head) in chunk.iter().zip(t.heads(dir, chunk, object::SNIFF)) {
                match head {
                    Ok(h) if object::is_program(&h) => found.files.push(join(dir, name)),
                    Ok(_) => {}
                    Err(e) => found.errors.push(format!(
                        "{}: {}",
                        join(dir, name),
                        crate::eval::io_text(&e)
                    )),
                }
            }
            found
        })
        .collect();
    for f in sniffed {
        out.files.extend(f.files);
        out.errors.extend(f.errors);
    }
    if !recursive {
        return;
    }
    let parts: Vec<Found> = dirs
        .into_par_iter()
        .map(|e| {
            let mut found = Found::default();
            let path = join(dir, &e.name);
            match t.read_dir(&path) {
                Ok(entries) => visit(t, &path, entries, recursive, exclude, &mut found),
                Err(e) => found
                    .errors
                    .push(format!("{path}: {}", crate::eval::io_text(&e))),
            }
            found
        })
        .collect();
    for p in parts {
        out.files.extend(p.files);
        out.errors.extend(p.errors);
    }
}

/// Kernel modules (`.ko`, compressed or not) are relocatable objects that
/// ld.so never loads: an image has thousands of them, and not opening them
/// at all is a fifth of a /usr scan. `kernel_module` checks them.
fn is_kernel_module(name: &str) -> bool {
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .any(|ext| name.ends_with(ext))
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
