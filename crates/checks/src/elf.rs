//! `elf`: executables and shared libraries of the target find every
//! library they need, with every symbol version they need, exactly as the
//! target's own ld.so would find them — worked out statically, inside the
//! root, without running anything.

pub mod closure;
pub mod ldcache;
pub mod ldconf;
pub mod object;
mod report;
pub mod scan;
pub mod search;
pub mod section;
pub mod symbols;
pub mod system;

#[cfg(test)]
pub(crate) mod fixture;
#[cfg(test)]
mod symbol_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};
use nodecheck_core::kind::{Key, Kind, Ty};
use nodecheck_core::outcome::Evaluation;
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::run::Context;
use nodecheck_core::target::FileType;

use crate::eval;
use crate::eval::section;
use closure::Setup;
use report::{errors, missing, single, tree};
use scan::{Candidates, Found};
use search::Linker;

pub struct Elf;

const KEYS: &[Key] = &[
    Key::new(
        "resolves",
        Ty::Bool,
        "`true`: every DT_NEEDED library (and the program interpreter) is found and loadable, \
         searched as ld.so searches. `false` asserts something is missing.",
    ),
    Key::new(
        "symbol_versions",
        Ty::Bool,
        "`true`: every version an object needs (DT_VERNEED: `GLIBC_2.34`, `GLIBCXX_3.4.30`, …) \
         is defined by the library that satisfied it.",
    ),
    Key::new(
        "symbols",
        Ty::Bool,
        "`true`: every undefined symbol of the object and of each library it loads (but weak \
         ones) is defined by an object of the load, with the version it asks for, as \
         `ldd -r` checks.",
    ),
    Key::new(
        "recursive",
        Ty::Bool,
        "For a directory: check every file below it (`true`) or only its direct entries (the \
         default).",
    )
    .modifier(),
    Key::new(
        "candidates",
        Ty::Enum(scan::Candidates::WORDS),
        "For a directory, which files are examined: `loadable` (the default) opens only files \
         named like a shared object (`*.so`, `*.so.*`), and regular files with an execute bit \
         and at least 52 bytes whose name does not end like a source, text or data format \
         (`*.h`, `*.gz`, `*.py`, `*.txt`, …: docs/elf.md lists them): what exec(2) runs and \
         ld.so and dlopen load by the names programs use, outside the kernel's module tree \
         (`/lib/modules`, `/usr/lib/modules`: not walked); `all` sniffs every regular file (a \
         0644 ELF library named `plugin.bin`) and walks every directory. A file named as `path` \
         is always examined.",
    )
    .modifier(),
    Key::new(
        "library_path",
        Ty::StrList,
        "Extra directories searched where `LD_LIBRARY_PATH` is (after RPATH, before RUNPATH); \
         `$ORIGIN` is the program's directory.",
    )
    .modifier(),
    Key::new(
        "ignore",
        Ty::StrList,
        "Sonames (globs) whose absence or missing versions are not reported.",
    )
    .modifier(),
    Key::new(
        "exclude",
        Ty::StrList,
        "Globs over absolute paths in the target: matching files, and everything below matching \
         directories, are not checked. `*` also matches `/`.",
    )
    .modifier(),
];

const DOC: &str = r#"## What it checks

Executables and shared libraries find what they need at run time: for
every ELF file at `path` (one file, or every file of a directory), the
dynamic loader's work is done statically, inside the target's root, never
running a program of the image:

- the program interpreter (PT_INTERP) exists and is an ELF file of the
  right class and machine;
- each DT_NEEDED entry is searched as glibc's ld.so searches it: the
  DT_RPATH of the object and of the objects that loaded it (only for
  objects without DT_RUNPATH), `library_path` (the `LD_LIBRARY_PATH` slot),
  the object's own DT_RUNPATH, the image's `/etc/ld.so.cache` (the binary
  file ldconfig writes), then the default directories for the object's
  class and machine (`/lib/x86_64-linux-gnu`, `/usr/lib/x86_64-linux-gnu`,
  `/lib`, `/usr/lib` on a multiarch image; `/lib64`, `/usr/lib64`
  otherwise). `DF_1_NODEFLIB` turns the last two off;
- `$ORIGIN`, `$LIB` and `$PLATFORM` (and `${…}`) expand as in ld.so:
  `$ORIGIN` is the directory the object was found in (for the program, its
  real directory); `$LIB` is `lib/<multiarch triplet>` on a multiarch image,
  else `lib64` or `lib`. For a setuid or setgid program `library_path` is
  ignored and `$ORIGIN` kept only when it lands in a default directory, as
  in ld.so's secure mode;
- a candidate of another class or machine is passed over (a 32-bit
  library in a 64-bit search); a candidate that is not a valid ELF shared
  object stops the search with ld.so's error;
- names already loaded are not searched again (a library found through one
  object's RUNPATH satisfies the same soname needed elsewhere), and the
  same file is never loaded twice;
- `symbol_versions`: each DT_VERNEED version is defined (DT_VERDEF) by the
  library that was loaded for it (weak needs, and libraries with no version
  definitions at all, pass as in ld.so).
- `symbols`: what `ldd -r` checks (every relocation bound now, not
  lazily): each undefined `STB_GLOBAL` symbol of the program and of every
  library it loads is defined by an object of the load: the program and
  its libraries in load order (the interpreter only when a DT_NEEDED entry
  names it). A weak undefined symbol needs no definition. A versioned
  reference (`memcpy@GLIBC_2.14`) needs a definition of that version, or
  an unversioned one in a library without versions; an unversioned one
  takes the base definition, or the only non-hidden versioned one, as
  glibc's `check_match`. Definitions are found through each library's own
  hash table (DT_GNU_HASH, else DT_HASH), read once per run. This catches
  a library replaced by an older build with the same soname (the version
  tables agree, a function is gone). The chain ends at the object whose
  reference is undefined: `/usr/bin/app -> libsolver.so.2 (undefined
  symbols mkl_init, dgemm_@MKL_2)`. Plugins (Python extension modules,
  MPI components, gcc plugins) use symbols of the program that loads them,
  so in a whole tree they fail alone, as under `ldd -r`; a library that
  is fine where a program of the tree loads it is listed, not failed.

ld.so never reads `/etc/ld.so.conf` (ldconfig does, to write the cache):
a library that lives only in a directory ld.so.conf names, but that the
cache does not list, is not found, and the message names the cause
(`not in ld.so.cache; ldconfig not re-run after it was added to
/opt/site/lib (named by /etc/ld.so.conf.d/site.conf)`). Without a cache
(missing, or not a cache file) ld.so searches only the default
directories, and so does nodecheck; the output says so.

A failure shows the chain that needs the missing library:
`/usr/bin/mpirun -> libopen-rte.so.40 -> libhwloc.so.15 (not found)`. For
a directory the message names the first files and says how many there are;
every chain goes into the check's output (JUnit system-out). Each file is
checked as its own program, as `ldd FILE` does, and files that are not ELF
executables or shared objects (scripts, data, kernel modules) are skipped:
each file is recognised by its first bytes.

Which files of a directory are examined (`candidates`): by default
(`loadable`) what exec(2) can run and what ld.so and dlopen load by the
names programs use: regular files with an execute bit (and at least the
52 bytes of the smallest ELF header), and files named like a shared object
(`libfoo.so`, `libfoo.so.1.2`, `foo.cpython-311-x86_64-linux-gnu.so`).
A name that ends like a source, text or data format (`*.h`, `*.gz`,
`*.py`, `*.pm`, `*.mo`, `*.txt`, … — most of an image's /usr) is left
alone without a `stat`; anything else costs one `stat` and is never
opened. A 0644 ELF library named `plugin.bin` that a program dlopens by
that name, or an ELF program named `tool.py`, is found only with
`candidates = "all"`, which sniffs every regular file. Kernel modules
(`*.ko`, `*.ko.xz`, …), which ld.so never loads, are never opened, and
the kernel's module tree (`/lib/modules`, `/usr/lib/modules`) is not
walked unless the scan starts inside it or asks for `all`. The
output says how many files were examined and how many were skipped, and
why. A file named as `path` is always examined.
In a directory, a library that misses something when loaded alone but
loads whole where a program of the same tree loads it (a private library
found through its program's RUNPATH, like systemd's libsystemd-core) does
not fail the check: it is listed in the output with the program that
loads it.
A file that cannot be read or is not valid ELF makes the property an
*error* when nothing else is wrong. Every library is read once per run
however many files need it, and only the few kilobytes the loader looks
at are read from each file.

Not emulated: glibc-hwcaps and legacy platform subdirectories (a library
found only there would not load on every CPU, so it counts as missing),
relative RPATH entries (relative to the working directory, unknown
offline, so they are left out), and LD_PRELOAD. A DT_NEEDED entry holding
a `/` is opened as a path, a relative one from `/`.

## Example

```toml
[[control]]
id = "linkage"
title = "Installed software finds its libraries"

  [[control.elf]]
  path            = ["/usr/bin", "/usr/sbin", "/opt"]
  recursive       = true
  resolves        = true
  symbol_versions = true

  [[control.elf]]
  path         = "/opt/spack/linux-x86_64/gcc-12/app/bin/app"
  library_path = ["/opt/site/lib"]
  ignore       = ["libcuda.so.*"]   # comes with the driver on the node
  resolves     = true
```

## Targets

Every target: the files are read, never run. On a live node the result is
what a program started now would get (with `library_path` in place of the
caller's `LD_LIBRARY_PATH`).
"#;

impl Kind for Elf {
    fn name(&self) -> &'static str {
        "elf"
    }

    fn subject(&self) -> Key {
        Key::new(
            "path",
            Ty::Str,
            "An ELF file, or a directory of them (absolute, inside the target).",
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
        for key in ["ignore", "exclude"] {
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
        for dir in check.list("library_path").unwrap_or_default() {
            if dir
                .split(':')
                .any(|d| !d.starts_with('/') && !d.starts_with('$'))
            {
                out.push(eval::diagnostic(
                    check,
                    "library_path",
                    "bad-value",
                    format!("`library_path`: {dir:?} is not an absolute directory"),
                ));
            }
        }
        out
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let t = cx.target;
        let path = check.subject.as_str();
        let (ignore, exclude) = match (globs(check, "ignore"), globs(check, "exclude")) {
            (Ok(i), Ok(e)) => (i, e),
            (Err(e), _) | (_, Err(e)) => return errors(check, &e),
        };
        let local;
        let linker: Arc<Linker> = match t.memo() {
            Some(m) => m.get::<Linker>(),
            None => {
                local = Arc::new(Linker::default());
                local
            }
        };
        let setup = Setup {
            library_path: check.list("library_path").unwrap_or_default(),
            symbols: check.bool("symbols").is_some(),
            unlisted: false,
        };
        // The goss rule for a path every property needs (eval::PATH).
        let md = match t.metadata(path, true) {
            Ok(md) => md,
            Err(e) => {
                let p = if eval::is_absent(&e) {
                    eval::Presence::Absent(String::new())
                } else {
                    eval::Presence::Unknown(format!("cannot stat it: {}", eval::io_text(&e)))
                };
                let (Ok(v) | Err(v)) = eval::presence_as(check, &eval::PATH, path, p);
                return v.into();
            }
        };
        let real = match t.canonicalize(path) {
            Ok(p) => p,
            Err(e) => {
                return errors(
                    check,
                    &format!("cannot resolve {path}: {}", eval::io_text(&e)),
                );
            }
        };
        let scope = match md.file_type {
            FileType::Directory => {
                let recursive = check.bool("recursive").unwrap_or(false);
                let candidates = Candidates::from_word(check.str("candidates"));
                match scan::files(&linker, t, &real, recursive, &exclude, candidates, setup) {
                    Ok(found) => Scope::Tree(found, candidates),
                    Err(e) => {
                        return errors(
                            check,
                            &format!("cannot walk {path}: {}", eval::io_text(&e)),
                        );
                    }
                }
            }
            FileType::File => Scope::File(real.clone()),
            other => {
                return missing(
                    check,
                    &format!("{path} is a {other}, not a file or directory"),
                );
            }
        };
        let system = linker.system(t);
        let mut out = Evaluation::default();
        let mut notes = Vec::new();
        if let Some(why) = &system.no_cache {
            notes.push(format!(
                "{why}: ld.so searches only its default directories (and RPATH, RUNPATH)"
            ));
        }
        notes.extend(
            system
                .conf
                .errors
                .iter()
                .map(|e| format!("ld.so.conf: {e}")),
        );
        match scope {
            Scope::File(file) => {
                let outcome = scan::check(&linker, t, &file, path, setup);
                single(check, path, &file, outcome, &ignore, &mut out);
            }
            Scope::Tree(found, candidates) => {
                let counts = counts(&found, candidates);
                let Found {
                    files,
                    outcomes,
                    errors,
                    ..
                } = found;
                tree(check, path, &files, outcomes, errors, &ignore, &mut out);
                section(&mut out.output, &format!("files under {path}"), &counts);
            }
        }
        if !notes.is_empty() {
            section(&mut out.output, "notes", &notes);
        }
        out
    }
}

enum Scope {
    File(String),
    Tree(Found, Candidates),
}

/// What a directory scan opened and what it left alone, and why: a gate
/// says what it did not look at.
fn counts(found: &Found, candidates: Candidates) -> Vec<String> {
    let mut out = vec![format!(
        "{} files examined (candidates = \"{}\"), {} of them ELF executables or shared objects",
        found.examined,
        candidates.word(),
        found.files.len()
    )];
    if candidates == Candidates::Loadable {
        out.push(format!(
            "{} files skipped: no execute bit (or under {} bytes) and not named *.so or *.so.* \
             (candidates = \"all\" examines them)",
            found.skipped,
            scan::MIN_ELF
        ));
        if found.named > 0 {
            out.push(format!(
                "{} files skipped by name, a source, text or data format (*.h, *.gz, *.py, \
                 *.txt, …; candidates = \"all\" examines them)",
                found.named
            ));
        }
    }
    if found.modules > 0 {
        out.push(format!(
            "{} kernel modules skipped (ld.so never loads them)",
            found.modules
        ));
    }
    for tree in &found.module_trees {
        out.push(format!(
            "{tree} not walked: the kernel's module tree, which ld.so never loads from \
             (kernel_module and kernel check it; candidates = \"all\" walks it)"
        ));
    }
    out
}

fn globs(check: &Check, key: &str) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for p in check.list(key).unwrap_or_default() {
        b.add(
            Glob::new(p)
                .map_err(|e| format!("`{key}`: {p:?} is not a valid glob: {}", e.kind()))?,
        );
    }
    b.build().map_err(|e| e.to_string())
}
