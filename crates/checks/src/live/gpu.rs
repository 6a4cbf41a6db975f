//! GPUs on a live node: the live half of the `gpu` kind.
//!
//! Three views, from cheapest to most telling:
//!
//! - [`pci_gpus`]: the GPUs on the PCI bus and the driver bound to each,
//!   from /sys. No vendor tool, and it still answers when the driver is
//!   wedged.
//! - [`nvidia_driver_version`]: the loaded NVIDIA kernel module's version,
//!   from /proc/driver/nvidia/version.
//! - [`ProbeReport::run`]: the vendor user-space stack itself. It loads
//!   `libnvidia-ml.so.1` (NVML: driver version, device count, and which
//!   devices answer) and `libcuda.so.1` (`cuInit`, device count) with
//!   libloading. That runs foreign code (library constructors, the
//!   driver's ioctls, which hang on a GPU that fell off the bus), so it
//!   must run **in a child process** — the [`PROBE`] helper — never in
//!   nodecheck itself: the parent reads its output with
//!   [`ProbeReport::parse`] and can kill it at its timeout. No NVIDIA tool
//!   (nvidia-smi) is needed.

use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::fmt::Write as _;
use std::io;

use nodecheck_core::target::Target;

use super::{read_attr, read_text, with_path};

/// PCI vendor ids of GPU makers nodecheck counts.
const VENDORS: &[(&str, &str)] = &[("0x10de", "nvidia"), ("0x1002", "amd")];

/// A GPU on the PCI bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciGpu {
    /// PCI address, `0000:3b:00.0`.
    pub address: String,
    /// `nvidia` or `amd`.
    pub vendor: &'static str,
    /// PCI device id, `0x2330`.
    pub device: String,
    /// The kernel driver bound to it (`nvidia`, `amdgpu`), `None` when no
    /// driver holds it: such a GPU is on the bus but unusable.
    pub driver: Option<String>,
}

/// The GPUs on the PCI bus: display controllers (class `0x03xxxx`) made by
/// NVIDIA or AMD. A server's BMC graphics (ASPEED, Matrox) are display
/// controllers too, and are left out by vendor; NVSwitches are bridges,
/// not display controllers. A node without PCI in /sys has no GPUs.
pub fn pci_gpus(target: &dyn Target) -> io::Result<Vec<PciGpu>> {
    const DIR: &str = "/sys/bus/pci/devices";
    let entries = match target.read_dir(DIR) {
        Ok(e) => e,
        Err(e) if crate::eval::is_absent(&e) => return Ok(Vec::new()),
        Err(e) => return Err(with_path(DIR, &e)),
    };
    let mut out = Vec::new();
    for e in entries {
        let dev = format!("{DIR}/{}", e.name);
        let class = match read_attr(target, &format!("{dev}/class")) {
            Ok(c) => c,
            // A device that went away while we looked.
            Err(e) if crate::eval::is_absent(&e) => continue,
            Err(e) => return Err(with_path(&format!("{dev}/class"), &e)),
        };
        if !class.starts_with("0x03") {
            continue;
        }
        let vendor = read_attr(target, &format!("{dev}/vendor")).unwrap_or_default();
        let Some(&(_, vendor)) = VENDORS.iter().find(|(id, _)| *id == vendor) else {
            continue;
        };
        let device = read_attr(target, &format!("{dev}/device")).unwrap_or_default();
        let driver = target
            .read_link(&format!("{dev}/driver"))
            .ok()
            .and_then(|l| l.rsplit('/').next().map(str::to_string));
        out.push(PciGpu {
            address: e.name,
            vendor,
            device,
            driver,
        });
    }
    Ok(out)
}

/// The loaded NVIDIA kernel module's version (`535.104.05`), or `None`
/// when no NVIDIA driver is loaded.
pub fn nvidia_driver_version(target: &dyn Target) -> io::Result<Option<String>> {
    const PROC: &str = "/proc/driver/nvidia/version";
    const MODULE: &str = "/sys/module/nvidia/version";
    match read_text(target, PROC) {
        Ok(text) => {
            return parse_nvidia_version(&text).map(Some).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{PROC}: no driver version in {:?}", text.lines().next()),
                )
            });
        }
        Err(e) if crate::eval::is_absent(&e) => {}
        Err(e) => return Err(with_path(PROC, &e)),
    }
    match read_attr(target, MODULE) {
        Ok(v) if !v.is_empty() => Ok(Some(v)),
        Ok(_) => Ok(None),
        Err(e) if crate::eval::is_absent(&e) => Ok(None),
        Err(e) => Err(with_path(MODULE, &e)),
    }
}

/// `NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19
/// 01:15:15 UTC 2023` (or `... Open Kernel Module for x86_64  550.54.14
/// Release Build ...`): the first dotted number after `Kernel Module`.
pub fn parse_nvidia_version(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("NVRM version:"))?;
    let after = &line[line.find("Kernel Module")?..];
    after
        .split_whitespace()
        .find(|w| w.contains('.') && w.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .map(str::to_string)
}

/// What NVML says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NvmlInfo {
    /// `nvmlSystemGetDriverVersion`.
    pub driver_version: String,
    /// `nvmlDeviceGetCount_v2`: the GPUs the driver knows.
    pub count: u32,
    /// Of those, how many NVML could open (`nvmlDeviceGetHandleByIndex_v2`);
    /// a GPU that fell off the bus is counted but does not answer.
    pub answering: u32,
    /// `index: error` for each GPU that did not answer.
    pub failures: Vec<String>,
}

/// What the CUDA driver API says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CudaInfo {
    /// `cuDriverGetVersion`: 12020 for CUDA 12.2.
    pub version: i32,
    /// `cuDeviceGetCount` after a successful `cuInit(0)`.
    pub devices: i32,
}

/// The GPU stack as a child process found it: each half is its info or
/// why it could not be had (the library is missing, init failed, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    pub nvml: Result<NvmlInfo, String>,
    pub cuda: Result<CudaInfo, String>,
}

/// The helper (see `nodecheck_core::helper`) that runs the probe.
pub const PROBE: &str = "gpu-probe";

/// The child side of the probe: what NVML and CUDA say, in the line
/// protocol of [`ProbeReport::to_text`]; exit 1 when either failed.
pub fn probe_helper(_args: &[String]) -> i32 {
    use std::io::Write;
    let report = ProbeReport::run();
    let _ = std::io::stdout().write_all(report.to_text().as_bytes());
    i32::from(report.nvml.is_err() || report.cuda.is_err())
}

impl ProbeReport {
    /// Loads NVML and the CUDA driver **in this process** and asks them.
    /// Only for the [`PROBE`] child (see the module docs).
    pub fn run() -> ProbeReport {
        ProbeReport {
            nvml: probe_nvml(),
            cuda: probe_cuda(),
        }
    }

    /// The line protocol the child prints and [`ProbeReport::parse`] reads:
    ///
    /// ```text
    /// nvml ok driver=535.104.05 count=8 answering=7
    /// nvml-failure 3: Unknown Error
    /// cuda error cuInit failed: CUDA_ERROR_NO_DEVICE
    /// ```
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        match &self.nvml {
            Ok(n) => {
                let _ = writeln!(
                    s,
                    "nvml ok driver={} count={} answering={}",
                    one_line(&n.driver_version).replace(' ', "_"),
                    n.count,
                    n.answering
                );
                for f in &n.failures {
                    let _ = writeln!(s, "nvml-failure {}", one_line(f));
                }
            }
            Err(e) => {
                let _ = writeln!(s, "nvml error {}", one_line(e));
            }
        }
        match &self.cuda {
            Ok(c) => {
                let _ = writeln!(s, "cuda ok version={} devices={}", c.version, c.devices);
            }
            Err(e) => {
                let _ = writeln!(s, "cuda error {}", one_line(e));
            }
        }
        s
    }

    /// Reads what [`ProbeReport::to_text`] wrote.
    pub fn parse(text: &str) -> Result<ProbeReport, String> {
        let mut nvml: Option<Result<NvmlInfo, String>> = None;
        let mut cuda: Option<Result<CudaInfo, String>> = None;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let bad = || format!("unexpected GPU probe output {line:?}");
            let (what, rest) = line.split_once(' ').ok_or_else(bad)?;
            match what {
                "nvml" | "cuda" => {
                    let (status, rest) = rest.split_once(' ').unwrap_or((rest, ""));
                    let fields = |rest: &str| -> Vec<(String, String)> {
                        rest.split_whitespace()
                            .filter_map(|f| f.split_once('='))
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect()
                    };
                    let get = |f: &[(String, String)], k: &str| {
                        f.iter()
                            .find(|(n, _)| n == k)
                            .map(|(_, v)| v.clone())
                            .ok_or_else(bad)
                    };
                    let num = |f: &[(String, String)], k: &str| -> Result<i64, String> {
                        get(f, k)?.parse::<i64>().map_err(|_| bad())
                    };
                    match (what, status) {
                        (_, "error") if what == "nvml" => nvml = Some(Err(rest.to_string())),
                        (_, "error") => cuda = Some(Err(rest.to_string())),
                        ("nvml", "ok") => {
                            let f = fields(rest);
                            nvml = Some(Ok(NvmlInfo {
                                driver_version: get(&f, "driver")?.replace('_', " "),
                                count: u32::try_from(num(&f, "count")?).map_err(|_| bad())?,
                                answering: u32::try_from(num(&f, "answering")?)
                                    .map_err(|_| bad())?,
                                failures: Vec::new(),
                            }));
                        }
                        ("cuda", "ok") => {
                            let f = fields(rest);
                            cuda = Some(Ok(CudaInfo {
                                version: i32::try_from(num(&f, "version")?).map_err(|_| bad())?,
                                devices: i32::try_from(num(&f, "devices")?).map_err(|_| bad())?,
                            }));
                        }
                        _ => return Err(bad()),
                    }
                }
                "nvml-failure" => match &mut nvml {
                    Some(Ok(n)) => n.failures.push(rest.to_string()),
                    _ => return Err(bad()),
                },
                _ => return Err(bad()),
            }
        }
        match (nvml, cuda) {
            (Some(nvml), Some(cuda)) => Ok(ProbeReport { nvml, cuda }),
            _ => Err(format!(
                "the GPU probe's output is incomplete: {:?}",
                text.trim()
            )),
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `dlopen` failures carry the dlerror text in their source; show it.
fn load(soname: &str, hint: &str) -> Result<libloading::Library, String> {
    // SAFETY: loading runs the library's initialisers; that is the point
    // of this probe, which runs in a throwaway child process.
    unsafe { libloading::Library::new(soname) }.map_err(|e| {
        let detail = std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
        format!("{soname} cannot be loaded ({hint}): {detail}")
    })
}

fn symbol<'l, T>(
    lib: &'l libloading::Library,
    soname: &str,
    name: &str,
) -> Result<libloading::Symbol<'l, T>, String> {
    // SAFETY: every caller names the symbol's C type as the vendor's
    // header declares it.
    unsafe { lib.get::<T>(name.as_bytes()) }.map_err(|e| {
        let detail = std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
        format!("{soname} has no {name}: {detail}")
    })
}

type NvmlReturn = c_uint;

/// NVML: driver version, device count, and which devices answer.
pub fn probe_nvml() -> Result<NvmlInfo, String> {
    const SO: &str = "libnvidia-ml.so.1";
    let lib = load(SO, "is the NVIDIA driver installed?")?;
    let init = symbol::<unsafe extern "C" fn() -> NvmlReturn>(&lib, SO, "nvmlInit_v2")?;
    let error_string =
        symbol::<unsafe extern "C" fn(NvmlReturn) -> *const c_char>(&lib, SO, "nvmlErrorString")?;
    let shutdown = symbol::<unsafe extern "C" fn() -> NvmlReturn>(&lib, SO, "nvmlShutdown")?;
    let driver = symbol::<unsafe extern "C" fn(*mut c_char, c_uint) -> NvmlReturn>(
        &lib,
        SO,
        "nvmlSystemGetDriverVersion",
    )?;
    let count = symbol::<unsafe extern "C" fn(*mut c_uint) -> NvmlReturn>(
        &lib,
        SO,
        "nvmlDeviceGetCount_v2",
    )?;
    let handle = symbol::<unsafe extern "C" fn(c_uint, *mut *mut c_void) -> NvmlReturn>(
        &lib,
        SO,
        "nvmlDeviceGetHandleByIndex_v2",
    )?;
    let text = |r: NvmlReturn| -> String {
        // SAFETY: nvmlErrorString returns a static NUL-terminated string
        // (or NULL) for any code.
        let p = unsafe { error_string(r) };
        if p.is_null() {
            format!("NVML error {r}")
        } else {
            // SAFETY: non-null, NUL-terminated, static.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    // SAFETY: plain NVML calls with out-pointers to live locals of the
    // declared types and sizes.
    unsafe {
        let r = init();
        if r != 0 {
            return Err(format!("nvmlInit failed: {}", text(r)));
        }
        let mut buf = [0 as c_char; 96];
        let r = driver(buf.as_mut_ptr(), buf.len() as c_uint);
        let driver_version = if r == 0 {
            CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
        } else {
            let _ = shutdown();
            return Err(format!("nvmlSystemGetDriverVersion failed: {}", text(r)));
        };
        let mut n: c_uint = 0;
        let r = count(&mut n);
        if r != 0 {
            let _ = shutdown();
            return Err(format!("nvmlDeviceGetCount failed: {}", text(r)));
        }
        let mut failures = Vec::new();
        for i in 0..n {
            let mut h: *mut c_void = std::ptr::null_mut();
            let r = handle(i, &mut h);
            if r != 0 {
                failures.push(format!("{i}: {}", text(r)));
            }
        }
        let _ = shutdown();
        Ok(NvmlInfo {
            driver_version,
            count: n,
            answering: n - failures.len() as c_uint,
            failures,
        })
    }
}

/// The CUDA driver API: `cuInit(0)`, then the driver version and device
/// count. `cuInit` is what fails when the user-space driver and the
/// kernel module disagree, or a GPU is wedged.
pub fn probe_cuda() -> Result<CudaInfo, String> {
    const SO: &str = "libcuda.so.1";
    let lib = load(SO, "is the NVIDIA driver's CUDA library installed?")?;
    let init = symbol::<unsafe extern "C" fn(c_uint) -> c_int>(&lib, SO, "cuInit")?;
    let version =
        symbol::<unsafe extern "C" fn(*mut c_int) -> c_int>(&lib, SO, "cuDriverGetVersion")?;
    let count = symbol::<unsafe extern "C" fn(*mut c_int) -> c_int>(&lib, SO, "cuDeviceGetCount")?;
    let name = symbol::<unsafe extern "C" fn(c_int, *mut *const c_char) -> c_int>(
        &lib,
        SO,
        "cuGetErrorName",
    )
    .ok();
    let text = |r: c_int| -> String {
        let mut p: *const c_char = std::ptr::null();
        // SAFETY: cuGetErrorName writes a static string pointer (or
        // leaves NULL) for any code; callable before cuInit.
        match &name {
            Some(f) if unsafe { f(r, &mut p) } == 0 && !p.is_null() => {
                // SAFETY: non-null, NUL-terminated, static.
                let n = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
                format!("{n} ({r})")
            }
            _ => format!("CUDA error {r}"),
        }
    };
    // SAFETY: plain CUDA driver calls with out-pointers to live locals.
    unsafe {
        let mut v: c_int = 0;
        let r = version(&mut v);
        if r != 0 {
            return Err(format!("cuDriverGetVersion failed: {}", text(r)));
        }
        let r = init(0);
        if r != 0 {
            return Err(format!("cuInit failed: {}", text(r)));
        }
        let mut n: c_int = 0;
        let r = count(&mut n);
        if r != 0 {
            return Err(format!("cuDeviceGetCount failed: {}", text(r)));
        }
        Ok(CudaInfo {
            version: v,
            devices: n,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use nodecheck_core::target::MemoryTarget;

    use super::*;

    pub(crate) fn dev(
        t: MemoryTarget,
        addr: &str,
        class: &str,
        vendor: &str,
        driver: Option<&str>,
    ) -> MemoryTarget {
        let d = format!("/sys/devices/pci0000:00/{addr}");
        let mut t = t
            .file(&format!("{d}/class"), 0o444, 0, 0, format!("{class}\n"))
            .file(&format!("{d}/vendor"), 0o444, 0, 0, format!("{vendor}\n"))
            .file(&format!("{d}/device"), 0o444, 0, 0, "0x2330\n")
            .symlink(
                &format!("/sys/bus/pci/devices/{addr}"),
                &format!("../../../devices/pci0000:00/{addr}"),
            );
        if let Some(drv) = driver {
            t = t
                .dir(&format!("/sys/bus/pci/drivers/{drv}"), 0o755, 0, 0)
                .symlink(
                    &format!("{d}/driver"),
                    &format!("../../../bus/pci/drivers/{drv}"),
                );
        }
        t
    }

    #[test]
    fn gpus_on_the_bus_by_class_and_vendor() {
        let mut t = MemoryTarget::new().dir("/sys/bus/pci/devices", 0o755, 0, 0);
        t = dev(t, "0000:3b:00.0", "0x030200", "0x10de", Some("nvidia"));
        t = dev(t, "0000:5e:00.0", "0x030200", "0x10de", None);
        t = dev(t, "0000:03:00.0", "0x030000", "0x1a03", Some("ast"));
        t = dev(t, "0000:c1:00.0", "0x038000", "0x1002", Some("amdgpu"));
        t = dev(t, "0000:00:1f.0", "0x060100", "0x8086", None);
        let gpus = pci_gpus(&t).unwrap();
        let got: Vec<(&str, &str, Option<&str>)> = gpus
            .iter()
            .map(|g| (g.address.as_str(), g.vendor, g.driver.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("0000:3b:00.0", "nvidia", Some("nvidia")),
                ("0000:5e:00.0", "nvidia", None),
                ("0000:c1:00.0", "amd", Some("amdgpu")),
            ]
        );
        assert!(pci_gpus(&MemoryTarget::new()).unwrap().is_empty());
    }

    #[test]
    fn driver_version_from_proc_or_sys() {
        let proprietary = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n";
        let open = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build  (dvs-builder@U16-I3-B03-4-3)  Thu Feb 22 01:25:25 UTC 2024\n";
        assert_eq!(
            parse_nvidia_version(proprietary).as_deref(),
            Some("535.104.05")
        );
        assert_eq!(parse_nvidia_version(open).as_deref(), Some("550.54.14"));
        assert_eq!(parse_nvidia_version("garbage"), None);
        let t = MemoryTarget::new().file("/proc/driver/nvidia/version", 0o444, 0, 0, proprietary);
        assert_eq!(
            nvidia_driver_version(&t).unwrap().as_deref(),
            Some("535.104.05")
        );
        let t = MemoryTarget::new().file("/sys/module/nvidia/version", 0o444, 0, 0, "550.54.14\n");
        assert_eq!(
            nvidia_driver_version(&t).unwrap().as_deref(),
            Some("550.54.14")
        );
        assert_eq!(nvidia_driver_version(&MemoryTarget::new()).unwrap(), None);
        let t = MemoryTarget::new().file("/proc/driver/nvidia/version", 0o444, 0, 0, "junk\n");
        assert_eq!(
            nvidia_driver_version(&t).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn probe_output_round_trips() {
        let r = ProbeReport {
            nvml: Ok(NvmlInfo {
                driver_version: "535.104.05".into(),
                count: 8,
                answering: 7,
                failures: vec!["3: Unknown Error".into()],
            }),
            cuda: Err("cuInit failed: CUDA_ERROR_NO_DEVICE (100)".into()),
        };
        assert_eq!(ProbeReport::parse(&r.to_text()).unwrap(), r);
        let r = ProbeReport {
            nvml: Err("libnvidia-ml.so.1 cannot be loaded (x):\nmulti line".into()),
            cuda: Ok(CudaInfo {
                version: 12020,
                devices: 8,
            }),
        };
        let back = ProbeReport::parse(&r.to_text()).unwrap();
        assert_eq!(
            back.nvml,
            Err("libnvidia-ml.so.1 cannot be loaded (x): multi line".into())
        );
        assert_eq!(back.cuda, r.cuda);
        assert!(ProbeReport::parse("nvml ok driver=1\n").is_err());
        assert!(ProbeReport::parse("").unwrap_err().contains("incomplete"));
        assert!(ProbeReport::parse("hello world\ncuda ok version=1 devices=1\n").is_err());
    }

    /// This machine has no NVIDIA driver: both halves must say so plainly
    /// (and nothing may crash). Where a driver is installed, the probe
    /// must at least find its libraries.
    #[test]
    fn absent_libraries_are_named() {
        let r = ProbeReport::run();
        match &r.nvml {
            Err(e) => assert!(
                e.starts_with("libnvidia-ml.so.1 ") || e.starts_with("nvml"),
                "{e}"
            ),
            Ok(n) => assert!(!n.driver_version.is_empty()),
        }
        if let Err(e) = &r.cuda {
            assert!(e.starts_with("libcuda.so.1 ") || e.starts_with("cu"), "{e}");
        }
        assert_eq!(
            ProbeReport::parse(&r.to_text()).unwrap(),
            ProbeReport {
                nvml: r.nvml.clone().map_err(|e| one_line(&e)),
                cuda: r.cuda.clone().map_err(|e| one_line(&e)),
            }
        );
    }
}
