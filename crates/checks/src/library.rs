//! `library`: a shared library can be found by name, as a program without
//! RPATH/RUNPATH (or `dlopen("libssl.so.3")`) would find it, with
//! everything it needs; on a live node, that `dlopen` really succeeds.

use std::sync::Arc;
use std::time::Duration;

use nodecheck_core::kind::{Key, Kind, Ty};
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Value};
use nodecheck_core::run::Context;
use nodecheck_core::target::{Need, Target};

use crate::elf::closure::{self, Setup};
use crate::elf::object::Ident;
use crate::elf::search::{Linker, Probe, Resolution, SearchPath};
use crate::eval;

pub struct Library;

const KEYS: &[Key] = &[
    Key::new(
        "resolves",
        Ty::Bool,
        "`true`: the name is found in the default search path (ld.so.cache, then the default \
         directories), and so is everything the library needs.",
    ),
    Key::new(
        "symbol_versions",
        Ty::Bool,
        "`true`: every version the library and its dependencies need (DT_VERNEED) is defined \
         by the library that satisfies it.",
    ),
    Key::new(
        "required",
        Ty::Bool,
        "Default `true`. `false`: a library the target does not have is *skipped* (\"not \
         installed\"), for optional stacks (Qt, X11) a site may or may not ship; one that is \
         there must still resolve.",
    )
    .modifier(),
    Key::new(
        "loadable",
        Ty::Bool,
        "`true`: `dlopen(name, RTLD_NOW)` succeeds on the node (in a child process, since it \
         runs the library's constructors); a failure shows the loader's error text.",
    )
    .needs(Need::Live),
];

const DOC: &str = r#"## What it checks

That a library is there for the programs that need it, by soname: the
name is searched as ld.so searches for a program that has no RPATH or
RUNPATH (and as `dlopen("libssl.so.3")` does): the target's
`/etc/ld.so.cache`, then the default directories of the image's machine,
which is taken from `/bin/sh` (never the ld.so.conf directories: ld.so
does not read ld.so.conf; a library that is only there and not in the
cache is not found, and the message says that ldconfig was not re-run). Libraries of another class or machine are passed
over. `resolves` then loads the library with everything it needs, exactly
as the `elf` kind loads a program (RPATH, RUNPATH, `$ORIGIN`, …), so a
library whose own dependencies are missing does not resolve either:

`resolves: /lib/x86_64-linux-gnu/libQt5Core.so.5 -> libicui18n.so.72 (not found)`

A name with a `/` is a path in the target and is opened as is.

`loadable` (live node only) asks the real dynamic loader: nodecheck runs
itself again in a child process that calls `dlopen(name, RTLD_NOW)` and
reports `dlerror()`'s text on failure. The library's constructors run in
that child, never in nodecheck; a child that crashes or does not return
within the control's `timeout` (default 30s) fails the property. The child
has nodecheck's environment, so `LD_LIBRARY_PATH` counts as it would for
the caller's programs.

## Example

```toml
[vars]
libraries = ["libssl.so.3", "libpython3.11.so.1.0", "libX11.so.6", "libQt5Core.so.5"]

[[control]]
id = "system-libraries"
title = "System libraries for user software"

  [[control.library]]
  name            = "${libraries}"
  resolves        = true
  symbol_versions = true

[[control]]
id = "cuda-runtime"
targets = ["live"]

  [[control.library]]
  name     = "libcuda.so.1"
  loadable = true
```

## Targets

`resolves` and `symbol_versions`: every target (the files are read, never
run). `loadable`: live nodes only; elsewhere it is skipped with "needs a
live node".
"#;

/// The time a `dlopen` child gets without a control `timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl Kind for Library {
    fn name(&self) -> &'static str {
        "library"
    }

    fn subject(&self) -> Key {
        Key::new(
            "name",
            Ty::Str,
            "A soname (`libssl.so.3`), or an absolute path in the target.",
        )
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let t = cx.target;
        let name = check.subject.as_str();
        let mut out = Evaluation::default();
        let static_keys: Vec<(&'static str, bool)> = eval::asserted(check, &[])
            .filter_map(|p| match (&p.value, p.key) {
                (Value::Bool(b), k @ ("resolves" | "symbol_versions")) => Some((k, *b)),
                _ => None,
            })
            .collect();
        if !static_keys.is_empty() {
            let required = check.bool("required").unwrap_or(true);
            statically(t, name, &static_keys, required, &mut out);
        }
        if let Some(expected) = check.bool("loadable") {
            let timeout = check.timeout.unwrap_or(DEFAULT_TIMEOUT);
            out.push(loadable(name, expected, timeout));
        }
        out
    }
}

fn statically(
    t: &dyn Target,
    name: &str,
    keys: &[(&'static str, bool)],
    required: bool,
    out: &mut Evaluation,
) {
    let local;
    let linker: Arc<Linker> = match t.memo() {
        Some(m) => m.get::<Linker>(),
        None => {
            local = Arc::new(Linker::default());
            local
        }
    };
    let all_error = |out: &mut Evaluation, msg: &str| {
        for (k, _) in keys {
            out.push(PropertyResult::error(*k, format!("{k}: {msg}")));
        }
    };
    let ident = match native(&linker, t) {
        Ok(i) => i,
        Err(e) => return all_error(out, &e),
    };
    let sp = SearchPath {
        ident,
        dirs: Vec::new(),
        defaults: true,
    };
    let found = if name.contains('/') {
        linker.direct(t, name, ident)
    } else {
        linker.resolve(t, name, &sp)
    };
    let (lib, via) = match found {
        Resolution::Found(l, via) => (l, via),
        Resolution::Missing { other: false } if !required => {
            for (k, _) in keys {
                out.push(PropertyResult::skip(
                    *k,
                    format!("{name} is not installed (required = false)"),
                ));
            }
            return;
        }
        other => {
            let why = match other {
                Resolution::Missing { other: true } => {
                    format!(
                        "{name} is not found (only a library for another class or machine than {ident})"
                    )
                }
                Resolution::Broken { path, why } => {
                    format!("{name} is not loadable: {path}: {why}")
                }
                _ => match linker.unconfigured(t, name, &sp) {
                    Some(why) => format!("{name} is not found; {why}"),
                    None => format!("{name} is not found"),
                },
            };
            // The goss rule: the first property fails, the others skip.
            let mut keys = keys.iter();
            if let Some((k, expected)) = keys.next() {
                out.push(PropertyResult::verdict(
                    *k,
                    !expected,
                    format!("{k}: {why}"),
                ));
            }
            for (k, _) in keys {
                out.push(PropertyResult::skip(*k, why.clone()));
            }
            return;
        }
    };
    let load = match closure::load(&linker, t, lib.clone(), &lib.path, Setup::default()) {
        Ok(l) => l,
        Err(e) => return all_error(out, &e),
    };
    let system = linker.system(t);
    if let Some(why) = &system.no_cache {
        out.output.push_str(&format!(
            "note: {why}: ld.so searches only its default directories\n"
        ));
    }
    for (key, expected) in keys {
        let problems = if *key == "resolves" {
            &load.missing
        } else {
            &load.versions
        };
        let found: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        let ok = found.is_empty() == *expected;
        let message = match (found.is_empty(), *key) {
            (true, "resolves") => format!(
                "{key}: {name} => {} ({}), with all {} libraries it needs",
                lib.path,
                via.as_str(),
                load.loaded.len()
            ),
            (true, _) => format!("{key}: every version {name} and its libraries need is defined"),
            (false, _) => format!("{key}: {}", eval::capped(&found)),
        };
        out.push(
            PropertyResult::verdict(*key, ok, message)
                .with_expected(expected.to_string())
                .with_actual(found.is_empty().to_string()),
        );
    }
    if !load.loaded.is_empty() {
        out.output
            .push_str(&format!("libraries of {}:\n", lib.path));
        for l in &load.loaded {
            out.output.push_str(&format!("  {l}\n"));
        }
    }
}

/// The class and machine of the target's own programs, from `/bin/sh`.
fn native(linker: &Linker, t: &dyn Target) -> Result<Ident, String> {
    let mut why = String::new();
    for p in ["/bin/sh", "/usr/bin/env", "/sbin/init"] {
        match linker.load(t, p) {
            Ok(Probe::Elf(l)) => {
                if let Some(id) = l.obj.ident {
                    return Ok(id);
                }
            }
            Ok(_) => why = format!("{p} is not an ELF program"),
            Err(e) if why.is_empty() => why = format!("{p}: {}", eval::io_text(&e)),
            Err(_) => {}
        }
    }
    Err(format!("cannot tell the target's machine ({why})"))
}

/// `loadable`: dlopen in a child process.
fn loadable(name: &str, expected: bool, timeout: Duration) -> PropertyResult {
    let key = "loadable";
    let out = match nodecheck_core::helper::run(DLOPEN, &[name], timeout) {
        Ok(o) => o,
        Err(e) => {
            return PropertyResult::error(
                key,
                format!("{key}: cannot start the dlopen helper: {e}"),
            );
        }
    };
    let first = out.stdout.lines().next().unwrap_or("");
    let call = format!("dlopen({name:?}, RTLD_NOW)");
    let (ok, shown) = if out.timed_out {
        (
            false,
            format!("{call} did not return within {}s", timeout.as_secs()),
        )
    } else if first == "ok" {
        (true, format!("{call} succeeded"))
    } else if let Some(e) = first.strip_prefix("error: ") {
        (false, format!("{call} failed: {e}"))
    } else if let Some(e) = first.strip_prefix("unsupported: ") {
        return PropertyResult::error(key, format!("{key}: {e}"));
    } else if let Some(sig) = out.signal {
        (
            false,
            format!("{call} killed its process with signal {sig}"),
        )
    } else {
        let text = out.stderr.trim();
        return PropertyResult::error(
            key,
            format!(
                "{key}: the dlopen helper failed (status {:?}){}{text}",
                out.status,
                if text.is_empty() { "" } else { ": " }
            ),
        );
    };
    PropertyResult::verdict(key, ok == expected, format!("{key}: {shown}"))
        .with_expected(expected.to_string())
        .with_actual(ok.to_string())
}

/// The helper name of the dlopen child.
pub const DLOPEN: &str = "dlopen";

/// The dlopen child: `dlopen(args[0], RTLD_NOW | RTLD_LOCAL)`; prints `ok`,
/// `error: <dlerror text>` or `unsupported: <why>` as its first line.
pub fn dlopen_helper(args: &[String]) -> i32 {
    use std::io::Write;
    let Some(name) = args.first() else {
        return 2;
    };
    let line = dlopen(name);
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
    i32::from(line != "ok")
}

#[cfg(feature = "live-dlopen")]
fn dlopen(name: &str) -> String {
    use libloading::os::unix::{Library as Lib, RTLD_LOCAL, RTLD_NOW};
    // SAFETY: loading a library runs its constructors; this runs in a
    // child process started only for this, which exits right after.
    match unsafe { Lib::open(Some(name), RTLD_NOW | RTLD_LOCAL) } {
        Ok(lib) => {
            // Keep it mapped until exit: unloading would run destructors
            // for nothing.
            std::mem::forget(lib);
            "ok".to_string()
        }
        Err(e) => {
            let detail =
                std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
            format!("error: {}", detail.replace('\n', " "))
        }
    }
}

#[cfg(not(feature = "live-dlopen"))]
fn dlopen(_name: &str) -> String {
    "unsupported: this nodecheck was built without the live-dlopen feature".to_string()
}

#[cfg(test)]
mod tests;
