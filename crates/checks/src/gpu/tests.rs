use nodecheck_core::matcher::Pred;
use nodecheck_core::outcome::Status;
use nodecheck_core::target::{MemoryTarget, Need, TargetKind};

use super::{Gpu, driver_lib_version};
use crate::kmod::fixture::{self, DIR, Module, RELEASE};
use crate::testing::*;

const NVIDIA: &str = "updates/dkms/nvidia.ko";
const LIBS: &str = "/usr/lib/x86_64-linux-gnu";

/// An image with the nvidia module of `module_version` (none: no module)
/// and `libs` (name, version) in the multiarch library directory.
fn image(module_version: Option<&str>, libs: &[(&str, &str)]) -> MemoryTarget {
    let version = module_version.map(|v| format!("version={v}"));
    let info: Vec<&str> = version.iter().map(String::as_str).collect();
    let modules = [Module {
        path: NVIDIA,
        deps: &[],
        info: &info,
    }];
    let mut t = fixture::image(
        if module_version.is_some() {
            &modules
        } else {
            &[]
        },
        &[],
    );
    for (name, v) in libs {
        t = t.file(&format!("{LIBS}/{name}.so.{v}"), 0o644, 0, 0, "\x7fELF");
        t = t.symlink(&format!("{LIBS}/{name}.so.1"), &format!("{name}.so.{v}"));
    }
    t
}

fn gpu(
    vendor: &str,
    props: Vec<(&str, nodecheck_core::profile::Value)>,
) -> nodecheck_core::profile::Check {
    check(&Gpu, vendor, props)
}

#[test]
fn matching_module_and_libraries_pass() {
    let t = image(
        Some("550.54.14"),
        &[("libcuda", "550.54.14"), ("libnvidia-ml", "550.54.14")],
    );
    let e = run(
        &gpu(
            "",
            vec![
                ("driver_installed", b(true)),
                ("driver_consistent", b(true)),
            ],
        ),
        &t,
    );
    assert_eq!(
        results(&e),
        vec![
            (
                "driver_installed".into(),
                Status::Pass,
                format!("driver_installed: expected true, got true ({DIR}/{NVIDIA})")
            ),
            (
                "driver_consistent".into(),
                Status::Pass,
                format!(
                    "driver_consistent: expected true, got true (the kernel module {DIR}/{NVIDIA} and libcuda.so.550.54.14, libnvidia-ml.so.550.54.14 are all 550.54.14)"
                )
            ),
        ]
    );
}

#[test]
fn a_mismatch_names_both_versions() {
    let t = image(
        Some("550.54.14"),
        &[
            ("libcuda", "535.104.05"),
            ("libnvidia-ml", "550.54.14"),
            ("libnvidia-egl-wayland", "1.1.13"),
        ],
    );
    let e = run(&gpu("nvidia", vec![("driver_consistent", b(true))]), &t);
    assert_eq!(
        result(&e, "driver_consistent"),
        (
            Status::Fail,
            format!(
                "driver_consistent: expected true, got false (the kernel module {DIR}/{NVIDIA} is 550.54.14, but the user-space driver is 535.104.05 ({LIBS}/libcuda.so.535.104.05))"
            )
        )
    );
}

#[test]
fn one_half_without_the_other_fails_and_no_driver_skips() {
    let t = image(Some("550.54.14"), &[]);
    let e = run(&gpu("", vec![("driver_consistent", b(true))]), &t);
    assert_eq!(
        result(&e, "driver_consistent").1,
        format!(
            "driver_consistent: expected true, got false (the kernel module {DIR}/{NVIDIA} is 550.54.14 but no user-space driver library (libcuda.so.550.54.14, libnvidia-ml.so.550.54.14, …) is installed)"
        )
    );
    let t = image(None, &[("libcuda", "550.54.14")]);
    let e = run(
        &gpu(
            "",
            vec![
                ("driver_consistent", b(true)),
                ("driver_installed", b(true)),
            ],
        ),
        &t,
    );
    assert_eq!(
        result(&e, "driver_consistent").1,
        format!(
            "driver_consistent: expected true, got false (the user-space driver libcuda.so.550.54.14 is installed but the nvidia kernel module is not: no nvidia module in {DIR}/modules.dep)"
        )
    );
    assert_eq!(
        result(&e, "driver_installed"),
        (
            Status::Fail,
            format!(
                "driver_installed: expected true, got false (no nvidia module in {DIR}/modules.dep)"
            )
        )
    );
    // No driver at all: consistency does not apply, installation fails.
    let t = image(None, &[]);
    let e = run(
        &gpu(
            "",
            vec![
                ("driver_consistent", b(true)),
                ("driver_installed", b(true)),
            ],
        ),
        &t,
    );
    assert_eq!(result(&e, "driver_consistent").0, Status::Skip);
    assert_eq!(result(&e, "driver_installed").0, Status::Fail);
    let e = run(&gpu("nvidia", vec![("driver_consistent", b(true))]), &t);
    assert_eq!(
        result(&e, "driver_consistent"),
        (Status::Skip, "no NVIDIA driver in the target".into())
    );
    // A container image: the libraries are there, the kernel is the host's.
    let t = MemoryTarget::new().file(&format!("{LIBS}/libcuda.so.550.54.14"), 0o644, 0, 0, "");
    let e = run(&gpu("", vec![("driver_consistent", b(true))]), &t);
    let (status, msg) = result(&e, "driver_consistent");
    assert_eq!(status, Status::Skip);
    assert!(msg.starts_with("the target has no kernel"), "{msg}");
}

#[test]
fn module_problems_are_errors() {
    let t = image(None, &[("libcuda", "550.54.14")]).file(
        &format!("{}/{NVIDIA}", fixture::FILES),
        0o644,
        0,
        0,
        "not a module",
    );
    let t = t.file(
        &format!("{}/modules.dep", fixture::FILES),
        0o644,
        0,
        0,
        format!("{NVIDIA}:\n"),
    );
    let e = run(&gpu("", vec![("driver_consistent", b(true))]), &t);
    let (status, msg) = result(&e, "driver_consistent");
    assert_eq!(status, Status::Error);
    assert!(
        msg.contains(&format!("{DIR}/{NVIDIA}: not a kernel module")),
        "{msg}"
    );
    // A module without a version cannot be compared.
    let t = image(Some("x"), &[("libcuda", "550.54.14")]).file(
        &format!("{}/{NVIDIA}", fixture::FILES),
        0o644,
        0,
        0,
        fixture::ko(&[&format!("vermagic={RELEASE}")]),
    );
    let e = run(&gpu("", vec![("driver_consistent", b(true))]), &t);
    assert_eq!(result(&e, "driver_consistent").0, Status::Error);
}

#[test]
fn a_live_node_compares_the_loaded_module() {
    let t = image(Some("550.54.14"), &[("libcuda", "550.54.14")])
        .kind(TargetKind::Live)
        .with(Need::Live)
        .file("/proc/sys/kernel/osrelease", 0o444, 0, 0, RELEASE)
        .file("/sys/module/nvidia/version", 0o444, 0, 0, "535.104.05\n");
    let e = run(&gpu("", vec![("driver_consistent", b(true))]), &t);
    assert_eq!(
        result(&e, "driver_consistent").1,
        format!(
            "driver_consistent: expected true, got false (the kernel module {DIR}/{NVIDIA} is 550.54.14, but the loaded nvidia module is 535.104.05)"
        )
    );
}

#[test]
fn amd_needs_both_halves() {
    let amdgpu = [Module {
        path: "kernel/drivers/gpu/drm/amd/amdgpu/amdgpu.ko",
        deps: &[],
        info: &[],
    }];
    let t = fixture::image(&amdgpu, &[]);
    // The in-tree module alone is no AMD GPU stack: nothing to check.
    let e = run(&gpu("", vec![("driver_consistent", b(true))]), &t);
    assert_eq!(result(&e, "driver_consistent").0, Status::Skip);
    let e = run(&gpu("amd", vec![("driver_installed", b(true))]), &t);
    assert_eq!(result(&e, "driver_installed").0, Status::Pass);
    let t = t.file("/opt/rocm-6.2.0/.info/version", 0o644, 0, 0, "6.2.0-66\n");
    let e = run(&gpu("", vec![("driver_consistent", b(true))]), &t);
    assert_eq!(
        result(&e, "driver_consistent").1,
        format!(
            "driver_consistent: expected true, got true ({DIR}/kernel/drivers/gpu/drm/amd/amdgpu/amdgpu.ko and the ROCm user space /opt/rocm-6.2.0 are both installed)"
        )
    );
    let t = fixture::image(&[], &[]).file("/opt/rocm-6.2.0/.info/version", 0o644, 0, 0, "6.2.0\n");
    let e = run(&gpu("", vec![("driver_consistent", b(true))]), &t);
    assert_eq!(result(&e, "driver_consistent").0, Status::Fail);
}

#[test]
fn vendor_is_validated() {
    let c = gpu("intel", vec![("driver_installed", b(true))]);
    assert_eq!(
        messages(&nodecheck_core::kind::Kind::validate(&Gpu, &c)),
        vec!["bad-value: `vendor` must be one of nvidia, amd, got \"intel\""]
    );
}

#[test]
fn driver_library_names() {
    assert_eq!(
        driver_lib_version("libcuda.so.550.54.14"),
        Some("550.54.14")
    );
    assert_eq!(
        driver_lib_version("libnvidia-ml.so.535.104.05"),
        Some("535.104.05")
    );
    assert_eq!(
        driver_lib_version("libGLX_nvidia.so.470.256.02"),
        Some("470.256.02")
    );
    assert_eq!(driver_lib_version("libnvidia-egl-wayland.so.1.1.13"), None);
    assert_eq!(driver_lib_version("libcuda.so.1"), None);
    assert_eq!(driver_lib_version("libcuda.so"), None);
    assert_eq!(driver_lib_version("libcudart.so.12.4.99"), None);
    assert_eq!(driver_lib_version("libnvidia-ml.so.550.x"), None);
}

/// A live node's PCI bus: two NVIDIA GPUs, one without a driver, an AMD
/// one, and BMC graphics.
fn live_node(nvidia_version: Option<&str>) -> MemoryTarget {
    use crate::live::gpu::tests::dev;
    let mut t = MemoryTarget::new()
        .kind(TargetKind::Live)
        .with(Need::Live)
        .dir("/sys/bus/pci/devices", 0o755, 0, 0);
    t = dev(t, "0000:3b:00.0", "0x030200", "0x10de", Some("nvidia"));
    t = dev(t, "0000:5e:00.0", "0x030200", "0x10de", None);
    t = dev(t, "0000:c1:00.0", "0x038000", "0x1002", Some("amdgpu"));
    t = dev(t, "0000:03:00.0", "0x030000", "0x1a03", Some("ast"));
    if let Some(v) = nvidia_version {
        t = t.file(
            "/proc/driver/nvidia/version",
            0o444,
            0,
            0,
            format!("NVRM version: NVIDIA UNIX x86_64 Kernel Module  {v}  Sat Aug 19 01:15:15 UTC 2023\n"),
        );
    }
    t
}

#[test]
fn live_count_counts_gpus_with_a_driver_and_names_the_others() {
    let t = live_node(Some("535.104.05"));
    let c = check(&Gpu, "nvidia", vec![("count", eq_int(2))]);
    assert_eq!(
        result(&run(&c, &t), "count"),
        (
            Status::Fail,
            "count: expected 2, got 1 (1 without a driver: 0000:5e:00.0)".into()
        )
    );
    let c = check(&Gpu, "", vec![("count", eq_int(2))]);
    assert_eq!(result(&run(&c, &t), "count").0, Status::Pass);
}

#[test]
fn live_driver_version_reads_proc() {
    let t = live_node(Some("535.104.05"));
    let c = check(
        &Gpu,
        "nvidia",
        vec![("driver_version", preds(vec![Pred::Ge("535".into())]))],
    );
    assert_eq!(
        result(&run(&c, &t), "driver_version"),
        (
            Status::Pass,
            "driver_version: expected >= 535, got 535.104.05".into()
        )
    );
    let t = live_node(None);
    assert_eq!(
        result(&run(&c, &t), "driver_version"),
        (
            Status::Fail,
            "driver_version: expected >= 535, got no loaded GPU driver reports a version".into()
        )
    );
}
