//! `gpu`: the GPU driver of the target, offline: its kernel module and its
//! user-space libraries are both installed and of the same version.

use std::collections::BTreeSet;

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::Actual;
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::run::Context;
use nodecheck_core::target::{FileType, Need, READ_LIMIT, Target, TargetKind};

use crate::eval;
use crate::kmod::index::Index;
use crate::kmod::{self, Ready};
use crate::live::gpu::{PROBE, ProbeReport, nvidia_driver_version, pci_gpus};

pub struct Gpu;

const VENDORS: &[&str] = &["nvidia", "amd"];

const KEYS: &[Key] = &[
    Key::new(
        "kernel",
        Ty::Str,
        "The kernel release whose driver module is checked. Default (also when empty): the \
         target's only kernel, the running one on a live node.",
    )
    .modifier(),
    Key::new(
        "driver_installed",
        Ty::Bool,
        "The vendor's kernel driver module is a module of the kernel (`nvidia`, Debian's \
         `nvidia-current`; `amdgpu`).",
    ),
    Key::new(
        "driver_consistent",
        Ty::Bool,
        "NVIDIA: the kernel module's version equals the version of every user-space driver \
         library (`libcuda.so.VER`, `libnvidia-ml.so.VER`, …) and, on a live node, of the loaded \
         module. AMD: the ROCm user space and the amdgpu module are both installed. Skipped when \
         the target has no GPU driver at all.",
    ),
    Key::new(
        "count",
        Ty::Matcher(Compare::Quantity),
        "Live: GPUs of the vendor (any vendor without `vendor`) on the PCI bus with a kernel \
         driver bound to them; a GPU the driver did not take is listed in the message.",
    )
    .needs(Need::Live),
    Key::new(
        "driver_version",
        Ty::Matcher(Compare::Version),
        "Live: the loaded NVIDIA driver's version (`/proc/driver/nvidia/version`), e.g. \
         `{ ge = \"535\" }`; for `amd`, the amdgpu module's version when it reports one.",
    )
    .needs(Need::Live),
    Key::new(
        "init",
        Ty::Bool,
        "Live: the driver initialises. A child process (nodecheck's `gpu-probe` helper) loads \
         `libcuda.so.1`, calls `cuInit(0)` and counts devices; it passes when at least one \
         answers, and fails with the driver's own error or when it hangs past the timeout.",
    )
    .needs(Need::Live),
];

const DOC: &str = r#"## What it checks

The GPU driver as installed in the target, without a GPU: the seed's
"GPU driver not loading due to kernel/driver version mismatch" is an image
whose NVIDIA kernel module (built for, or by DKMS against, its kernel) and
user-space libraries come from different driver releases. The kernel
module refuses such a user space at run time (`nvidia-smi`: *Driver/library
version mismatch*).

`vendor` is `nvidia` or `amd`. Without it, the driver found in the target
is checked: NVIDIA when its kernel module or libraries are there, else AMD
when the ROCm user space is (every distribution kernel ships the in-tree
`amdgpu` module, so that alone says nothing).

NVIDIA: the kernel module is `nvidia` (Debian packages name it
`nvidia-current`), found in the kernel's `modules.dep` like
`kernel_module` does, its version read from its `.modinfo`. The user-space
libraries are the `libcuda.so.VER`, `libnvidia-*.so.VER`, `libnvcuvid`,
`libnvoptix`, `lib*_nvidia.so.VER` files whose version looks like a driver
release (`550.54.14`) in the library directories (`/usr/lib64`,
`/usr/lib/x86_64-linux-gnu` and the other multiarch directories, `/usr/lib`,
and the directories of `/etc/ld.so.conf.d/*.conf`). `driver_consistent`
passes when every one of them has the module's version; otherwise it fails
naming both versions. On a live node the loaded module's version
(`/sys/module/nvidia/version`) must agree too: an upgrade without a reboot
is the usual mismatch.

`driver_consistent` is *skipped* ("no GPU driver") when neither half is
installed, and on a target without a kernel (a container image, whose
driver comes from the host); ask `driver_installed = true` to make a
missing driver a failure. One half without the other fails.

AMD publishes no version equality between the `amdgpu` module and ROCm, so
for `amd` `driver_consistent` checks that both are installed: the ROCm user
space (`/opt/rocm*`, `libamdhip64.so*`) and the `amdgpu` module.

On a live node `count` counts the GPUs on the PCI bus (display controllers
of NVIDIA or AMD) that have a kernel driver bound, and `driver_version` reads
the loaded driver's version from /proc, with no NVIDIA tool needed.

## Example

```toml
[[control]]
id = "gpu-driver"
title = "NVIDIA kernel module and CUDA user space agree"

  [[control.gpu]]
  vendor            = "nvidia"
  driver_installed  = true
  driver_consistent = true
```

## Targets

Every target; on a live node the loaded module is compared too.
"#;

impl Kind for Gpu {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn subject(&self) -> Key {
        Key::new(
            "vendor",
            Ty::Str,
            "`nvidia` or `amd`. Default: the driver the target has.",
        )
    }

    fn default_subject(&self) -> Option<&'static str> {
        Some("")
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn validate(&self, check: &Check) -> Vec<Diagnostic> {
        if check.subject.is_empty() || VENDORS.contains(&check.subject.as_str()) {
            return Vec::new();
        }
        vec![
            Diagnostic::error(
                "bad-value",
                format!(
                    "`vendor` must be one of {}, got {:?}",
                    VENDORS.join(", "),
                    check.subject
                ),
            )
            .at(check.location.clone()),
        ]
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let t = cx.target;
        let ready = kmod::open(t, kmod::wanted(check), "kernel");
        let nvidia = Nvidia::look(t, &ready);
        let vendor = match check.subject.as_str() {
            "" if nvidia.any() => "nvidia",
            "" if rocm(t).is_some() => "amd",
            "" => "none",
            v => v,
        };
        let mut out = Evaluation::default();
        for p in eval::asserted(check, &[]) {
            let expected = check.bool(p.key).unwrap_or(true);
            let r = match (p.key, vendor) {
                ("driver_installed", "nvidia") => nvidia.installed(&ready, expected),
                ("driver_installed", "amd") => amd_installed(t, &ready, expected),
                ("driver_installed", _) => eval::boolean(
                    p.key,
                    expected,
                    false,
                    "no GPU driver in the target: no nvidia kernel module or library, no ROCm",
                ),
                ("driver_consistent", "nvidia") => nvidia.consistent(t, &ready, expected),
                ("driver_consistent", "amd") => amd_consistent(t, &ready, expected),
                ("driver_consistent", _) => PropertyResult::skip(
                    p.key,
                    "no GPU driver in the target: no nvidia kernel module or library, no ROCm",
                ),
                ("count", _) => match check.matcher("count") {
                    Some(m) => live_count(t, &check.subject, m),
                    None => continue,
                },
                ("init", _) => live_init(t, expected, check.timeout),
                ("driver_version", _) => match check.matcher("driver_version") {
                    Some(m) => live_driver_version(t, vendor, m),
                    None => continue,
                },
                _ => continue,
            };
            out.push(r);
        }
        out
    }
}

/// `count`: GPUs on the PCI bus with a driver bound (those without one are
/// on the bus but unusable, and named).
fn live_count(
    t: &dyn Target,
    vendor: &str,
    m: &nodecheck_core::matcher::Matcher,
) -> PropertyResult {
    let gpus = match pci_gpus(t) {
        Ok(g) => g,
        Err(e) => return PropertyResult::error("count", format!("cannot list PCI devices: {e}")),
    };
    let of_vendor: Vec<_> = gpus
        .iter()
        .filter(|g| vendor.is_empty() || g.vendor == vendor)
        .collect();
    let usable = of_vendor.iter().filter(|g| g.driver.is_some()).count();
    let idle: Vec<&str> = of_vendor
        .iter()
        .filter(|g| g.driver.is_none())
        .map(|g| g.address.as_str())
        .collect();
    let shown = if idle.is_empty() {
        usable.to_string()
    } else {
        format!(
            "{usable} ({} without a driver: {})",
            idle.len(),
            idle.join(", ")
        )
    };
    eval::matched("count", m, Actual::Int(usable as i64), shown)
}

/// `init`: cuInit in a child process, since loading the vendor's library
/// runs its constructors, and a wedged GPU can hang the caller.
fn live_init(
    t: &dyn Target,
    expected: bool,
    timeout: Option<std::time::Duration>,
) -> PropertyResult {
    // The probe loads the node's own driver: only the node itself has it.
    if t.kind() != TargetKind::Live {
        return PropertyResult::skip("init", Need::Live.skip_reason());
    }
    let timeout = timeout.unwrap_or(std::time::Duration::from_secs(30));
    let out = match t.helper(PROBE, &[], timeout) {
        Ok(o) => o,
        Err(e) => return PropertyResult::error("init", format!("cannot run the GPU probe: {e}")),
    };
    if out.timed_out {
        return eval::boolean(
            "init",
            expected,
            false,
            &format!(
                "the CUDA driver did not initialise within {}",
                nodecheck_core::matcher::format_duration(timeout)
            ),
        );
    }
    let (ok, why) = match ProbeReport::parse(&out.stdout) {
        Ok(r) => match r.cuda {
            Ok(c) if c.devices > 0 => (true, format!("cuInit: {} device(s)", c.devices)),
            Ok(_) => (
                false,
                "cuInit succeeded but the driver sees no device".to_string(),
            ),
            Err(e) => (false, e),
        },
        Err(e) => {
            return PropertyResult::error("init", format!("{e} ({})", out.stderr.trim()));
        }
    };
    eval::boolean("init", expected, ok, &why)
}

/// `driver_version`: what the loaded driver says it is.
fn live_driver_version(
    t: &dyn Target,
    vendor: &str,
    m: &nodecheck_core::matcher::Matcher,
) -> PropertyResult {
    let found = if vendor == "amd" {
        match t.read("/sys/module/amdgpu/version", 4096) {
            Ok(v) => Ok(Some(String::from_utf8_lossy(&v).trim().to_string())),
            Err(e) if eval::is_absent(&e) => Ok(None),
            Err(e) => Err(format!("/sys/module/amdgpu/version: {}", eval::io_text(&e))),
        }
    } else {
        nvidia_driver_version(t).map_err(|e| e.to_string())
    };
    match found {
        Ok(Some(v)) => eval::matched("driver_version", m, Actual::Str(&v), v.clone()),
        Ok(None) => PropertyResult::compare(
            "driver_version",
            false,
            m.describe(),
            "no loaded GPU driver reports a version",
        ),
        Err(e) => PropertyResult::error("driver_version", e),
    }
}

/// The module names NVIDIA's driver goes by.
const NVIDIA_MODULES: &[&str] = &["nvidia", "nvidia_current"];

/// What the target has of the NVIDIA driver.
struct Nvidia {
    /// The kernel module: its file and its version (or why it has none).
    module: Option<(String, Result<Option<String>, String>)>,
    /// The loaded module's version (live nodes).
    loaded: Option<String>,
    /// User-space libraries and their versions.
    libs: Vec<(String, String)>,
    /// A library directory that could not be listed.
    lib_error: Option<String>,
}

impl Nvidia {
    fn look(t: &dyn Target, ready: &Ready) -> Nvidia {
        let mut module = None;
        if let Ready::Index(i) = ready {
            module = NVIDIA_MODULES.iter().find_map(|n| nvidia_module(t, i, n));
        }
        let loaded = (t.kind() == TargetKind::Live)
            .then(|| t.read("/sys/module/nvidia/version", READ_LIMIT).ok())
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .filter(|v| !v.is_empty());
        let (libs, lib_error) = nvidia_libs(t);
        Nvidia {
            module,
            loaded,
            libs,
            lib_error,
        }
    }

    fn any(&self) -> bool {
        self.module.is_some() || self.loaded.is_some() || !self.libs.is_empty()
    }

    fn installed(&self, ready: &Ready, expected: bool) -> PropertyResult {
        match (&self.module, ready) {
            (Some((file, _)), _) => eval::boolean("driver_installed", expected, true, file),
            (None, Ready::Error(why)) => {
                PropertyResult::error("driver_installed", format!("driver_installed: {why}"))
            }
            (None, Ready::Absent(why)) => eval::boolean("driver_installed", expected, false, why),
            (None, Ready::Index(i)) => eval::boolean(
                "driver_installed",
                expected,
                false,
                &format!("no nvidia module in {}/modules.dep", i.dir),
            ),
        }
    }

    fn consistent(&self, t: &dyn Target, ready: &Ready, expected: bool) -> PropertyResult {
        const KEY: &str = "driver_consistent";
        if let Ready::Error(why) = ready {
            return PropertyResult::error(KEY, format!("{KEY}: {why}"));
        }
        if let Some(e) = &self.lib_error {
            return PropertyResult::error(KEY, format!("{KEY}: {e}"));
        }
        let libs_text = || {
            let names: Vec<String> = self
                .libs
                .iter()
                .map(|(p, _)| p.rsplit('/').next().unwrap_or(p).to_string())
                .collect();
            eval::capped(&names)
        };
        // The kernel side: the module on disk and, live, the loaded one.
        let mut kernel_side: Vec<(String, String)> = Vec::new();
        if let Some((file, version)) = &self.module {
            match version {
                Ok(Some(v)) => kernel_side.push((format!("the kernel module {file}"), v.clone())),
                Ok(None) => {
                    return PropertyResult::error(
                        KEY,
                        format!("{KEY}: {file} has no version in its modinfo: nothing to compare"),
                    );
                }
                Err(why) => return PropertyResult::error(KEY, format!("{KEY}: {why}")),
            }
        }
        if let Some(v) = &self.loaded {
            kernel_side.push(("the loaded nvidia module".to_string(), v.clone()));
        }
        if kernel_side.is_empty() && self.libs.is_empty() {
            return PropertyResult::skip(KEY, "no NVIDIA driver in the target");
        }
        if kernel_side.is_empty() {
            let why = match ready {
                Ready::Absent(why) if t.kind() != TargetKind::Live && no_kernel(why) => {
                    return PropertyResult::skip(
                        KEY,
                        format!(
                            "the target has no kernel (a container image: its driver comes from the host); it has {}",
                            libs_text()
                        ),
                    );
                }
                Ready::Absent(why) => why.clone(),
                Ready::Index(i) => format!("no nvidia module in {}/modules.dep", i.dir),
                Ready::Error(why) => why.clone(),
            };
            return eval::boolean(
                KEY,
                expected,
                false,
                &format!(
                    "the user-space driver {} is installed but the nvidia kernel module is not: {why}",
                    libs_text()
                ),
            );
        }
        if self.libs.is_empty() {
            let (what, v) = &kernel_side[0];
            return eval::boolean(
                KEY,
                expected,
                false,
                &format!(
                    "{what} is {v} but no user-space driver library (libcuda.so.{v}, libnvidia-ml.so.{v}, …) is installed"
                ),
            );
        }
        let (what, want) = &kernel_side[0];
        let mut mismatches: Vec<String> = kernel_side[1..]
            .iter()
            .filter(|(_, v)| v != want)
            .map(|(w, v)| format!("{w} is {v}"))
            .collect();
        let versions: BTreeSet<&str> = self.libs.iter().map(|(_, v)| v.as_str()).collect();
        for v in versions.iter().filter(|v| *v != want) {
            let files: Vec<String> = self
                .libs
                .iter()
                .filter(|(_, lv)| lv == v)
                .map(|(p, _)| p.clone())
                .collect();
            mismatches.push(format!(
                "the user-space driver is {v} ({})",
                eval::capped(&files)
            ));
        }
        if mismatches.is_empty() {
            eval::boolean(
                KEY,
                expected,
                true,
                &format!("{what} and {} are all {want}", libs_text()),
            )
        } else {
            eval::boolean(
                KEY,
                expected,
                false,
                &format!("{what} is {want}, but {}", mismatches.join("; ")),
            )
        }
    }
}

/// Whether an "absent" reason says the target has no kernel at all.
fn no_kernel(why: &str) -> bool {
    why.starts_with("the target has no kernel")
}

fn nvidia_module(
    t: &dyn Target,
    index: &Index,
    name: &str,
) -> Option<(String, Result<Option<String>, String>)> {
    let id = index.by_name(name)?;
    let file = index.file(id);
    let version = match index.info(t, id) {
        Ok(Some(info)) => match info.as_ref() {
            Ok(i) => Ok(i.version.clone()),
            Err(why) => Err(why.clone()),
        },
        // Listed in modules.dep, file gone: not installed.
        Ok(None) => return None,
        Err(why) => Err(why),
    };
    Some((file, version))
}

/// The library directories a dynamic loader searches, as far as they hold
/// driver libraries: the standard and multiarch ones, and those listed in
/// /etc/ld.so.conf.d/*.conf.
fn lib_dirs(t: &dyn Target) -> Vec<String> {
    let mut dirs: Vec<String> = [
        "/usr/lib64",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib/powerpc64le-linux-gnu",
        "/usr/lib",
        "/lib64",
        "/lib/x86_64-linux-gnu",
        "/lib/aarch64-linux-gnu",
        "/lib",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Ok(entries) = t.read_dir("/etc/ld.so.conf.d") {
        for e in entries.iter().filter(|e| e.name.ends_with(".conf")) {
            let Ok(text) = t.read(&format!("/etc/ld.so.conf.d/{}", e.name), READ_LIMIT) else {
                continue;
            };
            for line in String::from_utf8_lossy(&text).lines() {
                let line = line.split('#').next().unwrap_or("").trim();
                if line.starts_with('/') && !line.contains(char::is_whitespace) {
                    dirs.push(line.to_string());
                }
            }
        }
    }
    // /lib is /usr/lib on usr-merged images: list each real directory once.
    let mut seen = BTreeSet::new();
    dirs.into_iter()
        .filter(|d| match t.canonicalize(d) {
            Ok(real) => seen.insert(real),
            Err(_) => false,
        })
        .collect()
}

/// The version in a driver library's file name, when it is one:
/// `libcuda.so.550.54.14` → `550.54.14`. Libraries of NVIDIA's that carry
/// their own version (`libnvidia-egl-wayland.so.1.1.13`) do not count: a
/// driver release has a major of three digits or more.
fn driver_lib_version(name: &str) -> Option<&str> {
    let (lib, version) = name.split_once(".so.")?;
    let driver_lib = lib == "libcuda"
        || lib == "libnvcuvid"
        || lib == "libnvoptix"
        || lib.starts_with("libnvidia-")
        || lib.ends_with("_nvidia");
    let mut parts = version.split('.');
    let major = parts.next()?;
    let ok = driver_lib
        && major.len() >= 3
        && major.bytes().all(|b| b.is_ascii_digit())
        && parts.clone().count() <= 2
        && parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    ok.then_some(version)
}

fn nvidia_libs(t: &dyn Target) -> (Vec<(String, String)>, Option<String>) {
    let mut libs = Vec::new();
    let mut error = None;
    for dir in lib_dirs(t) {
        match t.read_dir(&dir) {
            Ok(entries) => {
                for e in entries {
                    if e.file_type != FileType::File {
                        continue;
                    }
                    if let Some(v) = driver_lib_version(&e.name) {
                        libs.push((format!("{dir}/{}", e.name), v.to_string()));
                    }
                }
            }
            Err(e) if eval::is_absent(&e) => {}
            Err(e) => {
                error.get_or_insert_with(|| format!("cannot list {dir}: {}", eval::io_text(&e)));
            }
        }
    }
    (libs, error)
}

/// The ROCm user space: `/opt/rocm*` or `libamdhip64.so*`.
fn rocm(t: &dyn Target) -> Option<String> {
    if let Ok(entries) = t.read_dir("/opt")
        && let Some(e) = entries.iter().find(|e| e.name.starts_with("rocm"))
    {
        return Some(format!("/opt/{}", e.name));
    }
    for dir in lib_dirs(t) {
        if let Ok(entries) = t.read_dir(&dir)
            && let Some(e) = entries
                .iter()
                .find(|e| e.name.starts_with("libamdhip64.so"))
        {
            return Some(format!("{dir}/{}", e.name));
        }
    }
    None
}

/// The amdgpu module of the kernel, or why there is none.
fn amdgpu(t: &dyn Target, ready: &Ready) -> Result<String, (bool, String)> {
    match ready {
        Ready::Error(why) => Err((true, why.clone())),
        Ready::Absent(why) => Err((false, why.clone())),
        Ready::Index(i) => match i.by_name("amdgpu") {
            Some(id) => {
                let file = i.file(id);
                match t.metadata(&file, true) {
                    Ok(_) => Ok(file),
                    Err(e) if eval::is_absent(&e) => {
                        Err((false, format!("modules.dep lists {file} but it is missing")))
                    }
                    Err(e) => Err((true, format!("cannot stat {file}: {}", eval::io_text(&e)))),
                }
            }
            None if i.is_builtin("amdgpu") => {
                Ok(format!("amdgpu (built into kernel {})", i.release))
            }
            None => Err((false, format!("no amdgpu module in {}/modules.dep", i.dir))),
        },
    }
}

fn amd_installed(t: &dyn Target, ready: &Ready, expected: bool) -> PropertyResult {
    match amdgpu(t, ready) {
        Ok(file) => eval::boolean("driver_installed", expected, true, &file),
        Err((true, why)) => {
            PropertyResult::error("driver_installed", format!("driver_installed: {why}"))
        }
        Err((false, why)) => eval::boolean("driver_installed", expected, false, &why),
    }
}

fn amd_consistent(t: &dyn Target, ready: &Ready, expected: bool) -> PropertyResult {
    const KEY: &str = "driver_consistent";
    let user = rocm(t);
    match (amdgpu(t, ready), user) {
        (Err((true, why)), _) => PropertyResult::error(KEY, format!("{KEY}: {why}")),
        (Ok(module), Some(user)) => eval::boolean(
            KEY,
            expected,
            true,
            &format!("{module} and the ROCm user space {user} are both installed"),
        ),
        (Ok(_), None) => PropertyResult::skip(KEY, "no ROCm user space in the target"),
        (Err((false, why)), Some(user)) if no_kernel(&why) => PropertyResult::skip(
            KEY,
            format!(
                "the target has no kernel (a container image: its driver comes from the host); it has {user}"
            ),
        ),
        (Err((false, why)), Some(user)) => eval::boolean(
            KEY,
            expected,
            false,
            &format!("the ROCm user space {user} is installed but the amdgpu module is not: {why}"),
        ),
        (Err((false, _)), None) => PropertyResult::skip(KEY, "no AMD GPU driver in the target"),
    }
}

#[cfg(test)]
mod tests;
