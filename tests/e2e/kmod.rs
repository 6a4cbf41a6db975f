//! Kernels and kernel modules on the real Debian rootfs (linux-image-amd64:
//! 4,000 real modules, a real modules.dep): profiles/compute/kernel.toml
//! passes, also with the modules compressed as RHEL (xz) and Ubuntu (zstd)
//! ship them; each seeded fault fails the right control with a message
//! naming the cause; corrupt modules are errors, never a crash; and the
//! GPU driver consistency check on a synthetic nvidia module beside fake
//! driver libraries.
//!
//! Faults are made on a copy of the kernel's part of the rootfs (/boot,
//! /usr/lib/modules, the /lib link) whose files are hard links to the
//! cached rootfs: a file is detached (copied) before it is changed.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::util::*;

/// The modules profiles/compute/kernel.toml asks for.
const COMPUTE_MODULES: &[&str] = &[
    "mlx5_core",
    "mlx5_ib",
    "i40e",
    "xfs",
    "nfs",
    "nfsv4",
    "ib_core",
    "ib_umad",
    "rdma_cm",
];

/// The reference rootfs and its kernel release.
fn reference() -> Option<(PathBuf, String)> {
    let root = reference_rootfs()?;
    let kver = fs::read_dir(root.join("usr/lib/modules"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .next()
        .expect("the reference rootfs has a kernel");
    Some((root, kver))
}

/// A copy of the kernel's part of the rootfs, sharing file contents with
/// the original through hard links.
struct Kernel {
    dir: tempfile::TempDir,
    kver: String,
}

impl Kernel {
    fn of(root: &Path, kver: &str) -> Kernel {
        let dir = tempfile::Builder::new()
            .prefix("nodecheck-kmod-")
            .tempdir_in(root.parent().unwrap())
            .unwrap();
        fs::create_dir_all(dir.path().join("usr/lib")).unwrap();
        symlink("usr/lib", dir.path().join("lib")).unwrap();
        for (from, to) in [("boot", "boot"), ("usr/lib/modules", "usr/lib/modules")] {
            let st = Command::new("cp")
                .arg("-al")
                .arg(root.join(from))
                .arg(dir.path().join(to))
                .status()
                .unwrap();
            assert!(st.success(), "cp -al {from}");
        }
        Kernel {
            dir,
            kver: kver.to_string(),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The module directory on the host.
    fn modules(&self) -> PathBuf {
        self.root().join("usr/lib/modules").join(&self.kver)
    }

    /// Replaces the hard link at `rel` (under the module directory) by a
    /// private copy, so it can be changed.
    fn detach(&self, rel: &str) -> PathBuf {
        let p = self.modules().join(rel);
        let data = fs::read(&p).unwrap();
        fs::remove_file(&p).unwrap();
        fs::write(&p, data).unwrap();
        p
    }

    /// The modules.dep path of a module name (`kernel/fs/xfs/xfs.ko`).
    fn path_of(&self, name: &str) -> String {
        let dep = fs::read_to_string(self.modules().join("modules.dep")).unwrap();
        dep.lines()
            .map(|l| l.split(':').next().unwrap())
            .find(|p| {
                let base = p.rsplit('/').next().unwrap();
                base.split(".ko").next().unwrap().replace('-', "_") == name
            })
            .unwrap_or_else(|| panic!("{name} not in modules.dep"))
            .to_string()
    }

    /// The module files `names` and everything modules.dep says they need.
    fn closure(&self, names: &[&str]) -> Vec<String> {
        let dep = fs::read_to_string(self.modules().join("modules.dep")).unwrap();
        let mut out: Vec<String> = Vec::new();
        for name in names {
            let path = self.path_of(name);
            let line = dep
                .lines()
                .find(|l| l.starts_with(&format!("{path}:")))
                .unwrap();
            for p in std::iter::once(path.as_str()).chain(line.split_whitespace().skip(1)) {
                if !out.iter().any(|o| o == p) {
                    out.push(p.to_string());
                }
            }
        }
        out
    }

    /// Compresses the module files `paths` with `cmd` (which writes
    /// `FILE.suffix` and removes `FILE`) and points modules.dep at the new
    /// names, as depmod would.
    fn compress(&self, paths: &[String], cmd: &[&str], suffix: &str) {
        for p in paths {
            let file = self.detach(p);
            let st = Command::new(cmd[0])
                .args(&cmd[1..])
                .arg(&file)
                .status()
                .unwrap_or_else(|e| panic!("{} not runnable ({e}); run tests/deps.sh", cmd[0]));
            assert!(st.success(), "{cmd:?} {}", file.display());
        }
        let dep_path = self.detach("modules.dep");
        let mut dep = fs::read_to_string(&dep_path).unwrap();
        for p in paths {
            dep = dep.replace(&format!("{p}:"), &format!("{p}{suffix}:"));
            dep = dep.replace(&format!(" {p}\n"), &format!(" {p}{suffix}\n"));
            dep = dep.replace(&format!(" {p} "), &format!(" {p}{suffix} "));
        }
        fs::write(dep_path, dep).unwrap();
    }
}

/// Runs nodecheck with `args` plus `--json`, returning the exit code, the
/// report and the terminal output.
fn run_json(args: &[&str]) -> (i32, Value, String) {
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("r.json");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--json", json.to_str().unwrap()]);
    let o = nodecheck(&all);
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert!(json.exists(), "no report (exit {}): {text}", code(&o));
    let report: Value = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    (code(&o), report, text)
}

/// `id → status` of every control.
fn statuses(report: &Value) -> Vec<(String, String)> {
    report["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The status and messages of the check `name` (`kernel_module xfs`) of
/// control `id`.
fn check_of(report: &Value, id: &str, name: &str) -> (String, Vec<String>) {
    let control = report["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no control {id}"));
    let check = control["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {id}: {control:#}"));
    let messages = check["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}: {}",
                p["status"].as_str().unwrap(),
                p["message"].as_str().unwrap()
            )
        })
        .collect();
    (check["status"].as_str().unwrap().to_string(), messages)
}

fn kernel_controls(target: &Path) -> (i32, Value, String) {
    run_json(&[
        "run",
        "profiles/compute.toml",
        "--tags",
        "kernel",
        "--target",
        target.to_str().unwrap(),
    ])
}

fn expect_statuses(report: &Value, text: &str, want: &[(&str, &str)]) {
    let got = statuses(report);
    let got: Vec<(&str, &str)> = got.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(got, want, "{text}");
}

const ALL_PASS: &[(&str, &str)] = &[
    ("kernel-modules-dir", "pass"),
    ("kernel-module-tree", "pass"),
    ("kmod-network", "pass"),
    ("kmod-storage", "pass"),
    ("kmod-infiniband", "pass"),
];

#[test]
fn compute_kernel_controls_pass_on_the_reference_rootfs_and_leave_it_untouched() {
    let Some((root, kver)) = reference() else {
        return;
    };
    let modules = root.join("usr/lib/modules");
    let before = fingerprint(&modules);
    let (code, report, text) = kernel_controls(&root);
    assert_eq!(code, 0, "{text}");
    expect_statuses(&report, &text, ALL_PASS);
    let (_, msgs) = check_of(&report, "kmod-network", "kernel_module mlx5_ib");
    assert_eq!(
        msgs,
        vec![format!(
            "pass: loadable: expected true, got true (mlx5_ib and the 6 modules it needs are present, built for {kver})"
        )]
    );
    assert_same(&before, &fingerprint(&modules));
}

#[test]
fn compressed_modules_pass_as_rhel_and_ubuntu_ship_them() {
    let Some((root, kver)) = reference() else {
        return;
    };
    for (cmd, suffix) in [
        (&["xz", "-1", "--check=crc32"][..], ".xz"),
        (&["zstd", "-q", "--rm"][..], ".zst"),
        (&["gzip", "-1"][..], ".gz"),
    ] {
        let k = Kernel::of(&root, &kver);
        let closure = k.closure(COMPUTE_MODULES);
        assert!(closure.len() > 15, "{closure:?}");
        k.compress(&closure, cmd, suffix);
        let xfs = k.path_of("xfs");
        assert!(xfs.ends_with(&format!(".ko{suffix}")), "{xfs}");
        assert!(k.modules().join(&xfs).exists());
        let (code, report, text) = kernel_controls(k.root());
        assert_eq!(code, 0, "{suffix}: {text}");
        expect_statuses(&report, &text, ALL_PASS);
    }
}

#[test]
fn a_deleted_module_file_fails_its_control() {
    let Some((root, kver)) = reference() else {
        return;
    };
    let k = Kernel::of(&root, &kver);
    let xfs = k.path_of("xfs");
    fs::remove_file(k.modules().join(&xfs)).unwrap();
    let (code, report, text) = kernel_controls(k.root());
    assert_eq!(code, 1, "{text}");
    expect_statuses(
        &report,
        &text,
        &[
            ("kernel-modules-dir", "pass"),
            ("kernel-module-tree", "fail"),
            ("kmod-network", "pass"),
            ("kmod-storage", "fail"),
            ("kmod-infiniband", "pass"),
        ],
    );
    let (_, msgs) = check_of(&report, "kernel-module-tree", "kernel");
    assert!(
        msgs[0].contains(&format!(
            "1 file modules.dep of {kver} lists is missing: /lib/modules/{kver}/{xfs}"
        )),
        "{msgs:?}"
    );
    let (_, msgs) = check_of(&report, "kmod-storage", "kernel_module xfs");
    assert_eq!(
        msgs[0],
        format!(
            "fail: present: module xfs is absent (xfs is listed in modules.dep but its file /lib/modules/{kver}/{xfs} is missing)"
        )
    );
}

#[test]
fn a_deleted_dependency_names_the_chain() {
    let Some((root, kver)) = reference() else {
        return;
    };
    let k = Kernel::of(&root, &kver);
    let ib_core = k.path_of("ib_core");
    fs::remove_file(k.modules().join(&ib_core)).unwrap();
    let (code, report, text) = kernel_controls(k.root());
    assert_eq!(code, 1, "{text}");
    expect_statuses(
        &report,
        &text,
        &[
            ("kernel-modules-dir", "pass"),
            ("kernel-module-tree", "fail"),
            ("kmod-network", "fail"),
            ("kmod-storage", "pass"),
            ("kmod-infiniband", "fail"),
        ],
    );
    let (_, msgs) = check_of(&report, "kmod-network", "kernel_module mlx5_ib");
    assert_eq!(
        msgs,
        vec![format!(
            "fail: loadable: expected true, got false (mlx5_ib → ib_core: its file /lib/modules/{kver}/{ib_core} is missing (modules.dep lists it))"
        )]
    );
    // mlx5_core does not need ib_core.
    assert_eq!(
        check_of(&report, "kmod-network", "kernel_module mlx5_core").0,
        "pass"
    );
    let (_, msgs) = check_of(&report, "kmod-infiniband", "kernel_module rdma_cm");
    assert!(msgs[0].contains("rdma_cm → ib_core: its file"), "{msgs:?}");
}

#[test]
fn a_module_directory_renamed_to_another_release() {
    let Some((root, kver)) = reference() else {
        return;
    };
    let k = Kernel::of(&root, &kver);
    let other = "6.1.0-99-amd64";
    fs::rename(k.modules(), k.root().join("usr/lib/modules").join(other)).unwrap();
    let (code, report, text) = kernel_controls(k.root());
    assert_eq!(code, 1, "{text}");
    expect_statuses(
        &report,
        &text,
        &[
            ("kernel-modules-dir", "fail"),
            ("kernel-module-tree", "skip"),
            ("kmod-network", "skip"),
            ("kmod-storage", "skip"),
            ("kmod-infiniband", "skip"),
        ],
    );
    let (_, msgs) = check_of(&report, "kernel-modules-dir", "kernel");
    assert_eq!(
        msgs,
        vec![format!(
            "fail: modules_dir: expected true, got false (kernel {kver} has no module directory (/lib/modules/{kver} is missing); /lib/modules/{other} has no kernel image (no /boot/vmlinuz-{other}): a leftover of a removed kernel, or named for the wrong release)"
        )]
    );
    // The per-module controls say what they depend on instead of failing
    // one by one.
    let (_, msgs) = check_of(&report, "kmod-storage", "kernel_module xfs");
    assert_eq!(
        msgs[0],
        "skip: depends on `kernel-modules-dir`, which failed"
    );
}

/// A relocatable object with a `.modinfo` section of `records`, built the
/// way the issue suggests: gcc, then objcopy adding the section.
fn build_module(out: &Path, records: &[&str]) {
    let work = tempfile::tempdir().unwrap();
    let info = work.path().join("modinfo.bin");
    let mut bytes = Vec::new();
    for r in records {
        bytes.extend_from_slice(r.as_bytes());
        bytes.push(0);
    }
    fs::write(&info, bytes).unwrap();
    let obj = work.path().join("m.o");
    let mut gcc = Command::new("gcc")
        .args(["-c", "-x", "c", "-", "-o"])
        .arg(&obj)
        .stdin(Stdio::piped())
        .spawn()
        .expect("gcc (build-essential)");
    use std::io::Write;
    gcc.stdin
        .take()
        .unwrap()
        .write_all(b"int nodecheck_fixture;\n")
        .unwrap();
    assert!(gcc.wait().unwrap().success());
    let st = Command::new("objcopy")
        .arg("--add-section")
        .arg(format!(".modinfo={}", info.display()))
        .args(["--set-section-flags", ".modinfo=alloc,readonly"])
        .arg(&obj)
        .arg(out)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn a_module_built_for_another_kernel_fails_on_vermagic() {
    let Some((root, kver)) = reference() else {
        return;
    };
    // A real module patched in place: same length, another release.
    let k = Kernel::of(&root, &kver);
    let i40e = k.path_of("i40e");
    let file = k.detach(&i40e);
    let mut data = fs::read(&file).unwrap();
    let old = format!("vermagic={kver} ");
    let new = format!("vermagic={} ", kver.replacen("-50-", "-99-", 1));
    assert_eq!(old.len(), new.len());
    let at = data
        .windows(old.len())
        .position(|w| w == old.as_bytes())
        .expect("i40e has a vermagic");
    data[at..at + new.len()].copy_from_slice(new.as_bytes());
    fs::write(&file, data).unwrap();
    // And a dependency of mlx5_core replaced by a gcc-built module for 5.10.
    let psample = k.path_of("psample");
    let psample_file = k.modules().join(&psample);
    fs::remove_file(&psample_file).unwrap();
    build_module(
        &psample_file,
        &["vermagic=5.10.0-99-amd64 SMP mod_unload", "name=psample"],
    );
    let (code, report, text) = kernel_controls(k.root());
    assert_eq!(code, 1, "{text}");
    expect_statuses(
        &report,
        &text,
        &[
            ("kernel-modules-dir", "pass"),
            ("kernel-module-tree", "pass"),
            ("kmod-network", "fail"),
            ("kmod-storage", "pass"),
            ("kmod-infiniband", "pass"),
        ],
    );
    let (_, msgs) = check_of(&report, "kmod-network", "kernel_module i40e");
    let other = kver.replacen("-50-", "-99-", 1);
    assert_eq!(
        msgs,
        vec![format!(
            "fail: loadable: expected true, got false (/lib/modules/{kver}/{i40e} was built for kernel {other} (vermagic \"{other} SMP preempt mod_unload modversions \"), not {kver})"
        )]
    );
    let (_, msgs) = check_of(&report, "kmod-network", "kernel_module mlx5_core");
    assert_eq!(
        msgs,
        vec![format!(
            "fail: loadable: expected true, got false (mlx5_core → psample: /lib/modules/{kver}/{psample} was built for kernel 5.10.0-99-amd64 (vermagic \"5.10.0-99-amd64 SMP mod_unload\"), not {kver})"
        )]
    );
}

#[test]
fn corrupt_modules_and_indexes_are_errors_naming_the_file() {
    let Some((root, kver)) = reference() else {
        return;
    };
    let k = Kernel::of(&root, &kver);
    // Truncated, not a module at all, a decompression bomb, a module
    // installed after depmod ran.
    let mlx5 = k.path_of("mlx5_core");
    let f = k.detach(&mlx5);
    let data = fs::read(&f).unwrap();
    fs::write(&f, &data[..4096]).unwrap();
    let xfs = k.path_of("xfs");
    let f = k.detach(&xfs);
    fs::write(&f, "#!/bin/sh\nexit 0\n").unwrap();
    let i40e = k.path_of("i40e");
    let f = k.detach(&i40e);
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c 300M /dev/zero | zstd -q -1 > '{}'",
            f.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    assert!(fs::metadata(&f).unwrap().len() < 1 << 20, "a small file");
    fs::create_dir_all(k.modules().join("updates")).unwrap();
    fs::copy(
        k.modules().join(k.path_of("ib_umad")),
        k.modules().join("updates/lustre.ko"),
    )
    .unwrap();
    let profile = k.root().join("corrupt.toml");
    fs::write(
        &profile,
        "[profile]\nname = \"corrupt\"\n[[control]]\nid = \"mods\"\n  [[control.kernel_module]]\n  name = [\"mlx5_core\", \"xfs\", \"i40e\", \"ib_core\", \"lustre\"]\n  loadable = true\n",
    )
    .unwrap();
    let (code, report, text) = run_json(&[
        "run",
        profile.to_str().unwrap(),
        "--target",
        k.root().to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{text}");
    let dir = format!("/lib/modules/{kver}");
    for (name, status, want) in [
        (
            "mlx5_core",
            "error",
            format!("error: loadable: {dir}/{mlx5}: truncated ELF"),
        ),
        (
            "xfs",
            "error",
            format!(
                "error: loadable: {dir}/{xfs}: not a kernel module: neither ELF nor xz, zstd or gzip data"
            ),
        ),
        (
            "i40e",
            "error",
            format!(
                "error: loadable: {dir}/{i40e}: zstd data unpacks to more than 256 MiB (a decompression bomb?)"
            ),
        ),
        ("ib_core", "pass", "pass: loadable".to_string()),
        (
            "lustre",
            "fail",
            format!(
                "fail: present: module lustre is absent ({dir}/updates/lustre.ko exists but modules.dep does not list it"
            ),
        ),
    ] {
        let (s, msgs) = check_of(&report, "mods", &format!("kernel_module {name}"));
        assert_eq!(s, status, "{name}: {msgs:?}");
        assert!(msgs[0].starts_with(&want), "{name}: {msgs:?}");
    }
    // A modules.dep with a garbage line: every module check of the kernel
    // errs, naming the file and line.
    let dep = k.detach("modules.dep");
    let mut text_dep = fs::read(&dep).unwrap();
    let lines = text_dep.iter().filter(|&&b| b == b'\n').count();
    text_dep.extend_from_slice(b"\x00\xff\xfe garbage without a colon\n");
    fs::write(&dep, text_dep).unwrap();
    let (code, report, text) = run_json(&[
        "run",
        profile.to_str().unwrap(),
        "--target",
        k.root().to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{text}");
    let (s, msgs) = check_of(&report, "mods", "kernel_module ib_core");
    assert_eq!(s, "error");
    assert_eq!(
        msgs[0],
        format!(
            "error: present: module ib_core could not be looked up: the module index of kernel {kver} is corrupt: {dir}/modules.dep:{}: not text",
            lines + 1
        )
    );
}

#[test]
fn gpu_driver_consistency_with_a_synthetic_nvidia_module() {
    let Some((root, kver)) = reference() else {
        return;
    };
    for (lib_version, consistent) in [("550.54.14", true), ("535.104.05", false)] {
        let k = Kernel::of(&root, &kver);
        let dkms = k.modules().join("updates/dkms");
        fs::create_dir_all(&dkms).unwrap();
        let vermagic = format!("vermagic={kver} SMP preempt mod_unload modversions ");
        build_module(
            &dkms.join("nvidia.ko"),
            &[
                &vermagic,
                "version=550.54.14",
                "name=nvidia",
                "license=NVIDIA",
            ],
        );
        build_module(
            &dkms.join("nvidia-uvm.ko"),
            &[
                &vermagic,
                "version=550.54.14",
                "name=nvidia_uvm",
                "depends=nvidia",
            ],
        );
        let dep = k.detach("modules.dep");
        let mut text = fs::read_to_string(&dep).unwrap();
        text.push_str(
            "updates/dkms/nvidia.ko:\nupdates/dkms/nvidia-uvm.ko: updates/dkms/nvidia.ko\n",
        );
        fs::write(&dep, text).unwrap();
        let libs = k.root().join("usr/lib/x86_64-linux-gnu");
        fs::create_dir_all(&libs).unwrap();
        fs::write(libs.join(format!("libcuda.so.{lib_version}")), "\x7fELF").unwrap();
        fs::write(libs.join("libnvidia-ml.so.550.54.14"), "\x7fELF").unwrap();
        symlink(
            format!("libcuda.so.{lib_version}"),
            libs.join("libcuda.so.1"),
        )
        .unwrap();
        let (code, report, text) = run_json(&[
            "run",
            "profiles/gpu.toml",
            "--target",
            k.root().to_str().unwrap(),
        ]);
        let (s, msgs) = check_of(&report, "gpu-driver-consistent", "gpu nvidia");
        assert_eq!(
            check_of(&report, "gpu-modules", "kernel_module nvidia_uvm").0,
            "pass",
            "{text}"
        );
        let module = format!("/lib/modules/{kver}/updates/dkms/nvidia.ko");
        if consistent {
            assert_eq!(code, 0, "{text}");
            assert_eq!(s, "pass");
            assert_eq!(
                msgs[1],
                format!(
                    "pass: driver_consistent: expected true, got true (the kernel module {module} and libcuda.so.550.54.14, libnvidia-ml.so.550.54.14 are all 550.54.14)"
                )
            );
        } else {
            assert_eq!(code, 1, "{text}");
            assert_eq!(s, "fail");
            assert_eq!(
                msgs[1],
                format!(
                    "fail: driver_consistent: expected true, got false (the kernel module {module} is 550.54.14, but the user-space driver is 535.104.05 (/usr/lib/x86_64-linux-gnu/libcuda.so.535.104.05))"
                )
            );
        }
    }
}
