//! `kernel_module`: a module of the target's kernel, found the way modprobe
//! finds it, read without loading anything.

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::Actual;
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::run::Context;
use nodecheck_core::target::{Need, READ_LIMIT, Target};

use crate::eval;
use crate::kmod::dep::Dep;
use crate::kmod::index::{Disabled, Found, Hit, Index, disabled_modules};
use crate::kmod::modfile::Info;
use crate::kmod::{self, Ready, closure, normalize};

pub struct KernelModule;

const KEYS: &[Key] = &[
    Key::new(
        "kernel",
        Ty::Str,
        "The kernel release whose modules are checked (`6.1.0-28-amd64`). Default: the \
         target's only kernel on a rootfs, the running one on a live node (also when empty, so \
         `kernel = \"${kernel}\"` can default to it).",
    )
    .modifier(),
    Key::new(
        "present",
        Ty::Bool,
        "modprobe would find the module: a file modules.dep lists (and that exists), a \
         built-in, or an alias of one. When it is missing, every other property is skipped.",
    ),
    Key::new(
        "loadable",
        Ty::Bool,
        "Every module modprobe would insert (the module and its modules.dep dependencies) \
         is present, is a kernel module, and was built for this kernel (vermagic), and \
         modprobe.d does not disable it (`install NAME /bin/false`, `blacklist NAME`). \
         Built-ins are loadable.",
    ),
    Key::new(
        "loaded",
        Ty::Bool,
        "Loaded in the running kernel (/proc/modules) or built into it.",
    )
    .needs(Need::Live),
    Key::new(
        "version",
        Ty::Matcher(Compare::Version),
        "The module's modinfo `version` (the nvidia driver's `550.54.14`): \
         `{ ge = \"550\" }`. Modules without one fail.",
    ),
];

const DOC: &str = r#"## What it checks

One kernel module of the target's kernel, looked up as `modprobe` and
`modinfo` do it but read from the image's own files, without loading
anything and without the host's `modinfo`:

- the name is a module in `modules.dep`, a module built into the kernel
  (`modules.builtin`), or an alias (`modules.alias`, and the aliases of
  built-ins from `modules.builtin.modinfo`); `-` and `_` are the same;
- module files may be `.ko`, `.ko.xz`, `.ko.zst` or `.ko.gz`, told apart by
  their magic bytes and decompressed in memory;
- the kernel is the one named by `kernel`, else the target's only kernel
  (`/boot/vmlinuz-*`, `/lib/modules/*/vmlinuz`; or, with no image, the only
  `/lib/modules/*`); on a live node the running one. An image with several
  kernels and no `kernel` is an *error* listing them.

`present` fails, naming the cause, when the kernel has no module directory
(`/lib/modules/RELEASE` missing or named for another release), when
depmod never ran (no `modules.dep`), when `modules.dep` lists the file but
it is missing, and when the module is not found at all. A module file that
exists but that `modules.dep` does not list is a **stale depmod** (installed
after depmod ran: modprobe cannot find it) and fails `present` whatever it
expects. As with `file`'s `exists`, a missing module fails `present` even
when the check did not ask for it, and its other properties are skipped.

`loadable` follows what `modprobe` would insert: the module and every
dependency `modules.dep` gives it. Each must exist, be a relocatable ELF
object with a `.modinfo` section, and carry a `vermagic` whose first word is
the kernel release; each module's own `depends=` must be covered by
`modules.dep` (otherwise depmod is stale). RHEL's `weak-updates/` links
(modules of an earlier kernel of the same ABI, installed by weak-modules
for kmod packages) may carry another release when they were built with
modversions, as the kernel then accepts them; their symbol CRCs are not
checked. The message names the first
broken link of the chain, nearest first, along the modules' `depends=`:
`mlx5_ib → ib_core: /lib/modules/…/ib_core.ko is missing (modules.dep lists
it)`. Every problem is listed in the check's output.

`version` is the `version=` of the module's `.modinfo` (for a built-in,
from `modules.builtin.modinfo`). In-tree modules rarely have one;
out-of-tree drivers (nvidia, mlx5 from MLNX_OFED, lustre) do.

`loaded` (live node only) reads `/proc/modules`; a built-in module of the
running kernel counts as loaded (from its `modules.builtin`, or
`/sys/module/NAME`, which exists for built-ins with parameters). On a
kernel without module support (no `/proc/modules`) only built-ins are
loaded; without its module directory either, a module not in
`/sys/module` cannot be told and is an *error*.

The image's own `modprobe.d` aliases (`/etc/modprobe.d`, `/lib/modprobe.d`,
…; Debian's `alias nvidia nvidia-current`) are used for names that are not
a module or built-in themselves. A module that modprobe.d disables is
**not loadable**: `install NAME /bin/false` (or `/bin/true`, any path)
makes modprobe run that instead of loading it, also when NAME is a
dependency; `blacklist NAME` makes modprobe ignore its aliases, so no
device loads it at boot. The message names the file and line. An
`install` line that runs anything else (a wrapper that loads the module
after all) is taken as loading it. `loadable = false` thus asserts that a
module is disabled. Not considered: `options` and `softdep` lines, module
signatures and symbol CRCs.

Corrupt input is an *error* naming the file, never a crash: a truncated or
non-ELF `.ko`, corrupt or oversized compressed data (a module may unpack to
at most 256 MiB), garbage lines in `modules.dep` or `modules.builtin`
(`file:line` named).

## Example

```toml
[vars]
network_modules = ["mlx5_core", "mlx5_ib", "i40e"]

[[control]]
id = "kmod-network"
title = "Network drivers load with the image's kernel"

  [[control.kernel_module]]
  name     = "${network_modules}"
  loadable = true

[[control]]
id = "nvidia-driver"

  [[control.kernel_module]]
  name    = "nvidia"
  kernel  = "6.1.0-28-amd64"
  version = { ge = "550" }

[[control]]
id = "no-usb-storage"
targets = ["live"]

  [[control.kernel_module]]
  name   = "usb_storage"
  loaded = false
```

## Targets

Every target. `loaded` needs a live node (skipped elsewhere). On a rootfs
read without root, unreadable module files are errors, not failures.
"#;

impl Kind for KernelModule {
    fn name(&self) -> &'static str {
        "kernel_module"
    }

    fn subject(&self) -> Key {
        Key::new(
            "name",
            Ty::Str,
            "Module name (`mlx5_core`; `-` and `_` alike), built-in module or alias.",
        )
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn validate(&self, check: &Check) -> Vec<Diagnostic> {
        if check.bool("present") != Some(false) {
            return Vec::new();
        }
        eval::asserted(check, &["present", "loaded"])
            .map(|p| {
                eval::diagnostic(
                    check,
                    p.key,
                    "conflicting-keys",
                    format!(
                        "`{}` cannot be checked together with `present = false`: a missing module has no {}",
                        p.key, p.key
                    ),
                )
            })
            .collect()
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let t = cx.target;
        let name = check.subject.as_str();
        let mut out = Evaluation::default();
        let image_keys = eval::asserted(check, &["loaded"]).count() > 0;
        if image_keys {
            image_properties(check, t, name, &mut out);
        }
        if let Some(expected) = check.bool("loaded") {
            out.push(loaded(t, name, expected, kmod::wanted(check)));
        }
        out
    }
}

/// `present`: the presence of a module in the image (eval::presence_as).
/// `loaded` is asked of the running kernel, whatever the image holds.
const PRESENT: eval::Subject = eval::Subject {
    key: Some("present"),
    is: "is present",
    is_not: "is absent",
    apart: &["loaded"],
};

/// `present`, `loadable` and `version`: what the image's files say.
fn image_properties(check: &Check, t: &dyn Target, name: &str, out: &mut Evaluation) {
    let what = format!("module {name}");
    let (index, found, infos) = match look_up(check, t, name) {
        Ok(f) => f,
        Err(presence) => {
            let (Ok(v) | Err(v)) = eval::presence_as(check, &PRESENT, &what, presence);
            out.properties.extend(v);
            return;
        }
    };
    let desc = describe_hits(&index, name, &found.hits, found.alias.as_deref());
    match eval::presence_as(check, &PRESENT, &what, eval::Presence::Found(desc)) {
        Ok(v) => out.properties.extend(v),
        Err(v) => {
            out.properties.extend(v);
            return;
        }
    }
    for p in eval::asserted(check, &["present", "loaded"]) {
        match p.key {
            "loadable" => out_loadable(check, t, &index, &found.hits, out),
            "version" => out.push(version(check, t, &index, &infos)),
            _ => {}
        }
    }
}

/// The image's module index, what a name stands for there, and the
/// `.modinfo` of each of its files.
type LookedUp = (std::sync::Arc<Index>, Found, Vec<(Hit, Option<Info>)>);

/// The module in the image's index, with the `.modinfo` of each of its
/// files; or what the presence rule is to say when it is not there (or
/// cannot be told).
fn look_up(check: &Check, t: &dyn Target, name: &str) -> Result<LookedUp, eval::Presence> {
    let index = match kmod::open(t, kmod::wanted(check), "kernel") {
        Ready::Index(i) => i,
        Ready::Absent(why) => return Err(eval::Presence::Absent(why)),
        Ready::Error(why) => return Err(eval::Presence::Unknown(why)),
    };
    let found = index.find(t, name).map_err(eval::Presence::Unknown)?;
    if found.hits.is_empty() {
        let stale = index.unlisted_files(t, &normalize(name));
        if let Some(file) = stale.first() {
            // A file modprobe cannot find: absent to the loader, yet not
            // absent to `present = false` either (depmod would list it).
            let why = format!(
                "{file} exists but modules.dep does not list it: depmod was not run after it was \
                 installed, so modprobe cannot find {name} (run `depmod {}`)",
                index.release
            );
            return Err(if check.bool("present") == Some(false) {
                eval::Presence::Found(why)
            } else {
                eval::Presence::Absent(why)
            });
        }
        let builtin_note = if index.has_builtin {
            ""
        } else {
            " (it has no modules.builtin, so built-in modules cannot be told)"
        };
        return Err(eval::Presence::Absent(format!(
            "not a module of kernel {}: not in {}/modules.dep, not built in, no alias{builtin_note}",
            index.release, index.dir
        )));
    }
    // Every module the name stands for must have its file.
    let mut infos: Vec<(Hit, Option<Info>)> = Vec::new();
    for hit in &found.hits {
        match hit {
            Hit::Builtin(_) => infos.push((hit.clone(), None)),
            Hit::Module(id) => match index.info(t, *id) {
                Ok(Some(info)) => infos.push((hit.clone(), Some(info))),
                Ok(None) => {
                    return Err(eval::Presence::Absent(format!(
                        "{} is listed in modules.dep but its file {} is missing",
                        index.name(*id),
                        index.file(*id)
                    )));
                }
                Err(why) => return Err(eval::Presence::Unknown(why)),
            },
        }
    }
    Ok((index, found, infos))
}

/// `nfsv4 (kernel/fs/nfs/nfsv4.ko)`, `ext4 is built into 6.1.0-28-amd64`,
/// `fs-nfs4 is an alias of nfsv4 (…)`.
fn describe_hits(index: &Index, name: &str, hits: &[Hit], alias: Option<&str>) -> String {
    let one = |h: &Hit| match h {
        Hit::Module(id) => format!("{} ({})", index.name(*id), index.file(*id)),
        Hit::Builtin(n) => format!("{n} (built into kernel {})", index.release),
    };
    let all: Vec<String> = hits.iter().map(one).collect();
    match alias {
        Some(a) => format!("{name} is an alias ({a}) of {}", all.join(", ")),
        None => all.join(", "),
    }
}

fn out_loadable(check: &Check, t: &dyn Target, index: &Index, hits: &[Hit], out: &mut Evaluation) {
    let expected = check.bool("loadable").unwrap_or(true);
    let mut loads = 0;
    let mut fail: Option<String> = None;
    let mut error: Option<String> = None;
    let disabled = disabled_modules(t);
    for hit in hits {
        let Hit::Module(id) = hit else {
            continue;
        };
        let name = index.name(*id);
        if let Some(d) = disabled.get(name) {
            fail.get_or_insert_with(|| format!("modprobe.d disables {name}: {}", d.describe(name)));
            continue;
        }
        // modprobe runs a dependency's `install` command too.
        let off = index.deps(*id).into_iter().find_map(|d| match d {
            Dep::Listed(d) => match disabled.get(index.name(d)) {
                Some(how @ Disabled::Install { .. }) => Some((d, how)),
                _ => None,
            },
            Dep::Unlisted(_) => None,
        });
        if let Some((d, how)) = off {
            let dep = index.name(d);
            fail.get_or_insert_with(|| {
                format!(
                    "{name} needs {dep}, which modprobe.d disables: {}",
                    how.describe(dep)
                )
            });
            continue;
        }
        match closure::check(t, index, *id) {
            Ok(c) => {
                loads += c.members;
                if let Some((first, _)) = c.problems.first() {
                    let slot = if first.is_error() {
                        &mut error
                    } else {
                        &mut fail
                    };
                    slot.get_or_insert_with(|| c.explain(index));
                    out.output.push_str(&c.details(index));
                }
            }
            Err(why) => {
                error.get_or_insert(why);
            }
        }
    }
    let r = match (fail, error) {
        (Some(why), _) => eval::boolean("loadable", expected, false, &why),
        (None, Some(why)) => PropertyResult::error("loadable", format!("loadable: {why}")),
        (None, None) => {
            let why = if loads == 0 {
                format!("built into kernel {}", index.release)
            } else {
                let roots: Vec<&str> = hits
                    .iter()
                    .filter_map(|h| match h {
                        Hit::Module(id) => Some(index.name(*id)),
                        Hit::Builtin(_) => None,
                    })
                    .collect();
                match loads - roots.len() {
                    0 => format!(
                        "{} needs no other module, built for {}",
                        roots.join(", "),
                        index.release
                    ),
                    n => format!(
                        "{} and the {n} module{} it needs are present, built for {}",
                        roots.join(", "),
                        if n == 1 { "" } else { "s" },
                        index.release
                    ),
                }
            };
            eval::boolean("loadable", expected, true, &why)
        }
    };
    out.push(r);
}

fn version(
    check: &Check,
    t: &dyn Target,
    index: &Index,
    infos: &[(Hit, Option<Info>)],
) -> PropertyResult {
    let Some(m) = check.matcher("version") else {
        return PropertyResult::error("version", "version: not a matcher (a bug in nodecheck)");
    };
    let Some((hit, info)) = infos.first() else {
        return PropertyResult::error("version", "version: nothing found (a bug in nodecheck)");
    };
    let (version, whose) = match (hit, info) {
        (Hit::Builtin(n), _) => match index.builtin_values(t, n, "version") {
            Ok(v) => (v.into_iter().next(), format!("built-in {n}")),
            Err(why) => return PropertyResult::error("version", format!("version: {why}")),
        },
        (Hit::Module(id), Some(info)) => match info.as_ref() {
            Ok(i) => (i.version.clone(), index.name(*id).to_string()),
            Err(why) => return PropertyResult::error("version", format!("version: {why}")),
        },
        (Hit::Module(_), None) => {
            return PropertyResult::error("version", "version: no modinfo (a bug in nodecheck)");
        }
    };
    match version {
        Some(v) => eval::matched("version", m, Actual::Str(&v), v.clone()),
        None => PropertyResult::compare(
            "version",
            false,
            m.describe(),
            format!("none ({whose} has no version in its modinfo)"),
        ),
    }
}

/// `loaded`: /proc/modules of the running kernel, built-ins included.
fn loaded(t: &dyn Target, name: &str, expected: bool, wanted: Option<&str>) -> PropertyResult {
    use procfs_core::FromRead;
    let running = match kmod::kernels::running_release(t) {
        Ok(r) => r,
        Err(why) => return PropertyResult::error("loaded", format!("loaded: {why}")),
    };
    if let Some(w) = wanted
        && w != running
    {
        return PropertyResult::error(
            "loaded",
            format!(
                "loaded: the node runs kernel {running}, not {w}: modules of {w} cannot be loaded now"
            ),
        );
    }
    // The names the module goes by: itself, or what its alias resolves to
    // (lsmod shows real names only).
    let mut names = vec![normalize(name)];
    let index = match kmod::open(t, Some(&running), "kernel") {
        Ready::Index(i) => Some(i),
        _ => None,
    };
    if let Some(i) = &index
        && let Ok(found) = i.find(t, name)
    {
        for h in found.hits {
            names.push(match h {
                Hit::Module(id) => i.name(id).to_string(),
                Hit::Builtin(n) => n,
            });
        }
    }
    if let Some(i) = &index
        && let Some(n) = names.iter().find(|n| i.is_builtin(n))
    {
        return eval::boolean(
            "loaded",
            expected,
            true,
            &format!("{n} is built into the running kernel {running}"),
        );
    }
    // /sys/module/NAME exists for every loaded module and for the
    // built-ins that have parameters or a version: positive evidence even
    // where modules.builtin is missing.
    let in_sys = names.iter().find(|n| {
        t.metadata(&format!("/sys/module/{n}"), true)
            .is_ok_and(|m| m.file_type == nodecheck_core::target::FileType::Directory)
    });
    let modules = match t.read("/proc/modules", READ_LIMIT) {
        Ok(b) => b,
        Err(e) if eval::is_absent(&e) && in_sys.is_some() => {
            let n = in_sys.map_or("", String::as_str);
            return eval::boolean(
                "loaded",
                expected,
                true,
                &format!("{n} is built into the running kernel {running} (/sys/module/{n})"),
            );
        }
        Err(e) if eval::is_absent(&e) => {
            let why = if index.is_some() {
                format!(
                    "the running kernel {running} has no module support (no /proc/modules) and {name} is not built in"
                )
            } else {
                return PropertyResult::error(
                    "loaded",
                    format!(
                        "loaded: the running kernel {running} has no /proc/modules and no module directory to tell its built-ins by"
                    ),
                );
            };
            return eval::boolean("loaded", expected, false, &why);
        }
        Err(e) => {
            return PropertyResult::error(
                "loaded",
                format!("loaded: cannot read /proc/modules: {}", eval::io_text(&e)),
            );
        }
    };
    let parsed = match procfs_core::KernelModules::from_read(&modules[..]) {
        Ok(m) => m,
        Err(e) => {
            return PropertyResult::error(
                "loaded",
                format!("loaded: /proc/modules is not readable: {e}"),
            );
        }
    };
    let hit = parsed
        .0
        .values()
        .find(|m| names.contains(&normalize(&m.name)));
    match hit {
        Some(m) => eval::boolean(
            "loaded",
            expected,
            true,
            &format!("{} is loaded ({})", m.name, m.state),
        ),
        None => match in_sys {
            Some(n) => eval::boolean(
                "loaded",
                expected,
                true,
                &format!("{n} is built into the running kernel {running} (/sys/module/{n})"),
            ),
            None => eval::boolean(
                "loaded",
                expected,
                false,
                &format!("{name} is not in /proc/modules"),
            ),
        },
    }
}

#[cfg(test)]
mod tests;
