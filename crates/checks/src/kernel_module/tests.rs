use std::io::Write;

use nodecheck_core::outcome::Status;
use nodecheck_core::target::{MemoryTarget, Need, TargetKind};

use super::KernelModule;
use crate::kmod::fixture::{self, DIR, FILES, Module, RELEASE, ko};
use crate::testing::*;

const IB_CORE: &str = "kernel/drivers/infiniband/core/ib_core.ko";
const IB_UVERBS: &str = "kernel/drivers/infiniband/core/ib_uverbs.ko";
const MLX5_CORE: &str = "kernel/drivers/net/ethernet/mellanox/mlx5/core/mlx5_core.ko";
const MLX5_IB: &str = "kernel/drivers/infiniband/hw/mlx5/mlx5_ib.ko";

/// mlx5_ib needs mlx5_core, ib_uverbs (which needs ib_core) and ib_core,
/// as on Debian 12; ext4 is built in.
fn image() -> MemoryTarget {
    image_without(&[])
}

fn image_without(omit: &[&str]) -> MemoryTarget {
    fixture::image_without(
        &[
            Module {
                path: MLX5_IB,
                deps: &[MLX5_CORE, IB_UVERBS, IB_CORE],
                info: &["depends=mlx5_core,ib_uverbs,ib_core", "name=mlx5_ib"],
            },
            Module {
                path: MLX5_CORE,
                deps: &[],
                info: &["name=mlx5_core", "version=24.10-1.1.4"],
            },
            Module {
                path: IB_UVERBS,
                deps: &[IB_CORE],
                info: &["depends=ib_core"],
            },
            Module {
                path: IB_CORE,
                deps: &[],
                info: &[],
            },
        ],
        &["kernel/fs/ext4/ext4.ko"],
        omit,
    )
}

fn km(
    name: &str,
    props: Vec<(&str, nodecheck_core::profile::Value)>,
) -> nodecheck_core::profile::Check {
    check(&KernelModule, name, props)
}

#[test]
fn a_complete_module_is_present_loadable_and_has_its_version() {
    let t = image();
    let e = run(
        &km(
            "mlx5-core",
            vec![
                ("present", b(true)),
                ("loadable", b(true)),
                ("version", re("^24\\.")),
            ],
        ),
        &t,
    );
    assert_eq!(
        results(&e),
        vec![
            (
                "present".into(),
                Status::Pass,
                format!("present: module mlx5-core is present (mlx5_core ({DIR}/{MLX5_CORE}))")
            ),
            (
                "loadable".into(),
                Status::Pass,
                format!(
                    "loadable: expected true, got true (mlx5_core needs no other module, built for {RELEASE})"
                )
            ),
            (
                "version".into(),
                Status::Pass,
                "version: expected matching /^24\\./, got 24.10-1.1.4".into()
            ),
        ]
    );
    let e = run(&km("mlx5_ib", vec![("loadable", b(true))]), &t);
    assert_eq!(
        result(&e, "loadable"),
        (
            Status::Pass,
            format!(
                "loadable: expected true, got true (mlx5_ib and the 3 modules it needs are present, built for {RELEASE})"
            )
        )
    );
}

#[test]
fn built_ins_and_aliases_are_found() {
    let t = image().file(
        &format!("{FILES}/modules.alias"),
        0o644,
        0,
        0,
        "alias pci:v000015B3d0000101[79]sv* mlx5_core\n",
    );
    let e = run(
        &km("ext4", vec![("present", b(true)), ("loadable", b(true))]),
        &t,
    );
    assert_eq!(result(&e, "present").0, Status::Pass);
    assert_eq!(
        result(&e, "loadable").1,
        format!("loadable: expected true, got true (built into kernel {RELEASE})")
    );
    let e = run(
        &km("pci:v000015B3d00001017sv0000", vec![("loadable", b(true))]),
        &t,
    );
    assert_eq!(result(&e, "loadable").0, Status::Pass);
    let e = run(
        &km("pci:v000015B3d00001017sv0000", vec![("present", b(true))]),
        &t,
    );
    assert!(
        result(&e, "present")
            .1
            .contains("is an alias (pci:v000015B3d0000101[79]sv*) of mlx5_core")
    );
}

#[test]
fn a_missing_module_fails_present_and_skips_the_rest() {
    let t = image();
    let e = run(
        &km("xfs", vec![("loadable", b(true)), ("version", eq("1"))]),
        &t,
    );
    assert_eq!(
        results(&e),
        vec![
            (
                "present".into(),
                Status::Fail,
                format!(
                    "present: module xfs is absent (not a module of kernel {RELEASE}: not in {DIR}/modules.dep, not built in, no alias)"
                )
            ),
            (
                "loadable".into(),
                Status::Skip,
                "module xfs is absent".into()
            ),
            (
                "version".into(),
                Status::Skip,
                "module xfs is absent".into()
            ),
        ]
    );
    let e = run(&km("xfs", vec![("present", b(false))]), &t);
    assert_eq!(result(&e, "present").0, Status::Pass);
    let e = run(&km("mlx5_core", vec![("present", b(false))]), &t);
    assert_eq!(
        result(&e, "present"),
        (
            Status::Fail,
            format!(
                "present: expected false, but module mlx5_core is present (mlx5_core ({DIR}/{MLX5_CORE}))"
            )
        )
    );
}

#[test]
fn a_deleted_file_and_a_deleted_dependency() {
    // The file of ib_core is gone, modules.dep still lists it.
    let t = image_without(&[IB_CORE]);
    let e = run(&km("ib_core", vec![("present", b(true))]), &t);
    assert_eq!(
        result(&e, "present"),
        (
            Status::Fail,
            format!(
                "present: module ib_core is absent (ib_core is listed in modules.dep but its file {DIR}/{IB_CORE} is missing)"
            )
        )
    );
    let e = run(&km("mlx5_ib", vec![("loadable", b(true))]), &t);
    assert_eq!(
        result(&e, "loadable"),
        (
            Status::Fail,
            format!(
                "loadable: expected true, got false (mlx5_ib → ib_core: its file {DIR}/{IB_CORE} is missing (modules.dep lists it))"
            )
        )
    );
    assert!(
        e.output.contains("mlx5_ib → ib_core: its file"),
        "{}",
        e.output
    );
    // Not loadable is what `loadable = false` asks.
    let e = run(&km("mlx5_ib", vec![("loadable", b(false))]), &t);
    assert_eq!(result(&e, "loadable").0, Status::Pass);
}

#[test]
fn the_chain_follows_depends_to_the_first_broken_link() {
    // ib_uverbs is gone and modules.dep forgot ib_core for mlx5_ib: the
    // nearest problem is ib_uverbs, one step away.
    let t = image_without(&[IB_UVERBS]);
    let e = run(&km("mlx5_ib", vec![("loadable", b(true))]), &t);
    let (status, msg) = result(&e, "loadable");
    assert_eq!(status, Status::Fail);
    assert!(msg.contains("(mlx5_ib → ib_uverbs: its file"), "{msg}");
    // A module's depends= naming something modules.dep does not list for
    // it: depmod is stale.
    let t = fixture::image(
        &[
            Module {
                path: "kernel/a.ko",
                deps: &[],
                info: &["depends=b"],
            },
            Module {
                path: "kernel/b.ko",
                deps: &[],
                info: &[],
            },
            Module {
                path: "kernel/c.ko",
                deps: &[],
                info: &["depends=nowhere"],
            },
        ],
        &[],
    );
    let e = run(&km("a", vec![("loadable", b(true))]), &t);
    assert_eq!(
        result(&e, "loadable").1,
        "loadable: expected true, got false (a needs b, but modules.dep does not list it: modules.dep is stale, run `depmod 6.1.0-t`)"
    );
    let e = run(&km("c", vec![("loadable", b(true))]), &t);
    assert_eq!(
        result(&e, "loadable").1,
        "loadable: expected true, got false (c needs nowhere, which is not in the image (neither in modules.dep nor built in))"
    );
}

#[test]
fn vermagic_of_another_kernel_fails_loadable() {
    let other = ko(&[
        "vermagic=6.1.0-99-amd64 SMP preempt mod_unload modversions ",
        "name=ib_core",
    ]);
    let t = image().file(&format!("{FILES}/{IB_CORE}"), 0o644, 0, 0, other);
    let e = run(
        &km("mlx5_ib", vec![("loadable", b(true)), ("present", b(true))]),
        &t,
    );
    assert_eq!(result(&e, "present").0, Status::Pass);
    assert_eq!(
        result(&e, "loadable").1,
        format!(
            "loadable: expected true, got false (mlx5_ib → ib_core: {DIR}/{IB_CORE} was built for kernel 6.1.0-99-amd64 (vermagic \"6.1.0-99-amd64 SMP preempt mod_unload modversions \"), not {RELEASE})"
        )
    );
    let t = image().file(
        &format!("{FILES}/{IB_CORE}"),
        0o644,
        0,
        0,
        ko(&["name=ib_core"]),
    );
    let e = run(&km("ib_core", vec![("loadable", b(true))]), &t);
    assert!(
        result(&e, "loadable")
            .1
            .ends_with("has no vermagic: the kernel refuses to load it)")
    );
    // RHEL's weak-updates: another release of the same ABI, with
    // modversions, is what the kernel accepts.
    let weak = |vermagic: &str| {
        fixture::image(&[], &[])
            .file(
                &format!("{FILES}/modules.dep"),
                0o644,
                0,
                0,
                "weak-updates/x.ko:\n",
            )
            .file(
                &format!("{FILES}/weak-updates/x.ko"),
                0o644,
                0,
                0,
                ko(&[vermagic]),
            )
    };
    let t = weak("vermagic=6.1.0-s SMP mod_unload modversions ");
    let e = run(&km("x", vec![("loadable", b(true))]), &t);
    assert_eq!(result(&e, "loadable").0, Status::Pass);
    let t = weak("vermagic=6.1.0-s SMP mod_unload ");
    let e = run(&km("x", vec![("loadable", b(true))]), &t);
    assert_eq!(result(&e, "loadable").0, Status::Fail);
}

#[test]
fn a_module_installed_after_depmod_is_a_stale_depmod() {
    let t = image().file(&format!("{FILES}/updates/lustre.ko"), 0o644, 0, 0, ko(&[]));
    for present in [true, false] {
        let e = run(&km("lustre", vec![("present", b(present))]), &t);
        let why = format!(
            "{DIR}/updates/lustre.ko exists but modules.dep does not list it: depmod was not run after it was installed, so modprobe cannot find lustre (run `depmod {RELEASE}`)"
        );
        assert_eq!(
            result(&e, "present"),
            (
                Status::Fail,
                if present {
                    format!("present: module lustre is absent ({why})")
                } else {
                    format!("present: expected false, but module lustre is present ({why})")
                }
            )
        );
    }
}

#[test]
fn corrupt_module_files_are_errors_naming_the_file() {
    let elf = ko(&[&format!("vermagic={RELEASE} SMP"), "version=1"]);
    let mut exec = elf.clone();
    exec[16] = 2; // ET_EXEC
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", elf[..100].to_vec(), "truncated ELF"),
        ("empty", Vec::new(), "the module file is empty"),
        (
            "text",
            b"#!/bin/sh\necho hi\n".to_vec(),
            "not a kernel module: neither ELF nor xz, zstd or gzip data (starts with 23 21 2f 62)",
        ),
        (
            "exec",
            exec,
            "an ELF file but not a kernel module (type EXEC",
        ),
        (
            "gzip",
            b"\x1f\x8b\x08\x00garbage".to_vec(),
            "gzip data is corrupt",
        ),
        (
            "xz",
            b"\xfd7zXZ\x00\x00\x04garbage".to_vec(),
            "xz data is corrupt",
        ),
        (
            "zstd",
            b"\x28\xb5\x2f\xfdgarbage".to_vec(),
            "zstd data is corrupt",
        ),
        ("header", b"\x7fELF\x02\x01\x01".to_vec(), "not an ELF file"),
    ];
    for (what, bytes, why) in cases {
        let t = image().file(&format!("{FILES}/{IB_CORE}"), 0o644, 0, 0, bytes);
        let e = run(
            &km(
                "ib_core",
                vec![
                    ("present", b(true)),
                    ("loadable", b(true)),
                    ("version", eq("1")),
                ],
            ),
            &t,
        );
        assert_eq!(result(&e, "present").0, Status::Pass, "{what}");
        for key in ["loadable", "version"] {
            let (status, msg) = result(&e, key);
            assert_eq!(status, Status::Error, "{what} {key}: {msg}");
            assert!(msg.contains(&format!("{DIR}/{IB_CORE}: ")), "{what}: {msg}");
            assert!(msg.contains(why), "{what}: {msg}");
        }
        // Through a dependency, too.
        let e = run(&km("mlx5_ib", vec![("loadable", b(true))]), &t);
        assert_eq!(result(&e, "loadable").0, Status::Error, "{what}");
    }
    // Every prefix of a module, compressed or not: never a panic.
    let gz = gzip(&elf);
    for data in [&elf, &gz] {
        for n in 0..data.len() {
            let _ = crate::kmod::modfile::modinfo_of_bytes(&data[..n]);
        }
    }
}

#[test]
fn compressed_modules_read_like_plain_ones() {
    let elf = ko(&[&format!("vermagic={RELEASE} SMP"), "version=2.5"]);
    let mut xz = Vec::new();
    let mut opts = lzma_rust2::XzOptions::with_preset(1);
    opts.set_check_sum_type(lzma_rust2::CheckType::Crc32);
    let mut w = lzma_rust2::XzWriter::new(&mut xz, opts).unwrap();
    w.write_all(&elf).unwrap();
    w.finish().unwrap();
    let zst =
        ruzstd::encoding::compress_to_vec(&elf[..], ruzstd::encoding::CompressionLevel::Fastest);
    for (suffix, bytes) in [("ko.xz", xz), ("ko.zst", zst), ("ko.gz", gzip(&elf))] {
        let path = format!("kernel/fs/x/x.{suffix}");
        let t = fixture::image(&[], &[])
            .file(
                &format!("{FILES}/modules.dep"),
                0o644,
                0,
                0,
                format!("{path}:\n"),
            )
            .file(&format!("{FILES}/{path}"), 0o644, 0, 0, bytes);
        let e = run(
            &km("x", vec![("loadable", b(true)), ("version", eq("2.5"))]),
            &t,
        );
        assert_eq!(result(&e, "loadable").0, Status::Pass, "{suffix}: {:?}", e);
        assert_eq!(result(&e, "version").0, Status::Pass, "{suffix}");
    }
}

#[test]
fn a_decompression_bomb_is_an_error_with_bounded_memory() {
    // A zstd frame of RLE blocks: 8 KiB that unpack to 257 MiB of zeros.
    let mut bomb = b"\x28\xb5\x2f\xfd\x00\x38".to_vec();
    let blocks = (257 << 20) / (128 << 10);
    for i in 0..blocks {
        let last = u32::from(i == blocks - 1);
        let header = last | (1 << 1) | ((128 << 10) << 3);
        bomb.extend_from_slice(&header.to_le_bytes()[..3]);
        bomb.push(0);
    }
    let t = image().file(&format!("{FILES}/{IB_CORE}"), 0o644, 0, 0, bomb);
    let e = run(&km("ib_core", vec![("loadable", b(true))]), &t);
    assert_eq!(
        result(&e, "loadable"),
        (
            Status::Error,
            format!(
                "loadable: {DIR}/{IB_CORE}: zstd data unpacks to more than 256 MiB (a decompression bomb?)"
            )
        )
    );
    // A frame that asks for a 2 TiB window is refused before allocating.
    let huge = b"\x28\xb5\x2f\xfd\x00\xf8\x03\x00\x10\x00".to_vec();
    let t = image().file(&format!("{FILES}/{IB_CORE}"), 0o644, 0, 0, huge);
    let e = run(&km("ib_core", vec![("loadable", b(true))]), &t);
    let (status, msg) = result(&e, "loadable");
    assert_eq!(status, Status::Error);
    assert!(msg.contains("zstd data is corrupt"), "{msg}");
}

#[test]
fn a_corrupt_modules_dep_is_an_error_naming_the_line() {
    let t = image().file(
        &format!("{FILES}/modules.dep"),
        0o644,
        0,
        0,
        format!("{MLX5_CORE}:\n\u{7}\u{0}garbage line\n"),
    );
    let e = run(
        &km(
            "mlx5_core",
            vec![("present", b(true)), ("loadable", b(true))],
        ),
        &t,
    );
    assert_eq!(
        result(&e, "present"),
        (
            Status::Error,
            format!(
                "present: module mlx5_core could not be looked up: the module index of kernel {RELEASE} is corrupt: {DIR}/modules.dep:2: not text"
            )
        )
    );
    assert_eq!(
        result(&e, "loadable"),
        (
            Status::Skip,
            "module mlx5_core could not be looked up".into()
        )
    );
}

#[test]
fn kernel_choice_and_module_directories() {
    // No module directory for the image's kernel (renamed to another).
    let t = MemoryTarget::new()
        .file(&format!("/boot/vmlinuz-{RELEASE}"), 0o644, 0, 0, "MZ")
        .file("/usr/lib/modules/6.1.0-99/modules.dep", 0o644, 0, 0, "")
        .symlink("/lib", "usr/lib");
    let e = run(&km("xfs", vec![("loadable", b(true))]), &t);
    assert_eq!(
        result(&e, "present").1,
        format!(
            "present: module xfs is absent (kernel {RELEASE} has no module directory: /lib/modules/{RELEASE} is missing (the target has module directories for 6.1.0-99 only))"
        )
    );
    assert_eq!(result(&e, "loadable").0, Status::Skip);
    // Two kernels: an error that lists them, unless `kernel` says which.
    let t = image().file("/boot/vmlinuz-6.1.0-s", 0o644, 0, 0, "MZ");
    let e = run(&km("ib_core", vec![("loadable", b(true))]), &t);
    assert_eq!(
        result(&e, "present"),
        (
            Status::Error,
            "present: module ib_core could not be looked up: the target has several kernels (6.1.0-s, 6.1.0-t): say which with `kernel = \"6.1.0-t\"`".into()
        )
    );
    assert_eq!(
        result(&e, "loadable"),
        (Status::Skip, "module ib_core could not be looked up".into())
    );
    let e = run(
        &km(
            "ib_core",
            vec![("loadable", b(true)), ("kernel", s(RELEASE))],
        ),
        &t,
    );
    assert_eq!(result(&e, "loadable").0, Status::Pass);
    // No depmod.
    let t = MemoryTarget::new()
        .file(&format!("/boot/vmlinuz-{RELEASE}"), 0o644, 0, 0, "MZ")
        .file(
            &format!("/lib/modules/{RELEASE}/kernel/x.ko"),
            0o644,
            0,
            0,
            ko(&[]),
        );
    let e = run(&km("x", vec![("present", b(true))]), &t);
    assert_eq!(
        result(&e, "present").1,
        format!(
            "present: module x is absent (/lib/modules/{RELEASE}/modules.dep is missing: depmod was never run for kernel {RELEASE}, so modprobe finds no module)"
        )
    );
    // A container: no kernel at all.
    let e = run(&km("x", vec![("present", b(true))]), &MemoryTarget::new());
    assert!(result(&e, "present").1.contains("the target has no kernel"));
}

fn live(proc_modules: Option<&str>) -> MemoryTarget {
    let t = image().kind(TargetKind::Live).with(Need::Live).file(
        "/proc/sys/kernel/osrelease",
        0o444,
        0,
        0,
        format!("{RELEASE}\n"),
    );
    match proc_modules {
        Some(m) => t.file("/proc/modules", 0o444, 0, 0, m),
        None => t,
    }
}

#[test]
fn loaded_reads_proc_modules_and_counts_built_ins() {
    let t = live(Some(
        "mlx5_core 2490368 0 - Live 0xffffffffc0a00000\nib_core 442368 1 mlx5_ib, Live 0x0\n",
    ));
    let e = run(&km("mlx5-core", vec![("loaded", b(true))]), &t);
    assert_eq!(
        result(&e, "loaded"),
        (
            Status::Pass,
            "loaded: expected true, got true (mlx5_core is loaded (Live))".into()
        )
    );
    let e = run(&km("mlx5_ib", vec![("loaded", b(true))]), &t);
    assert_eq!(
        result(&e, "loaded"),
        (
            Status::Fail,
            "loaded: expected true, got false (mlx5_ib is not in /proc/modules)".into()
        )
    );
    let e = run(&km("ext4", vec![("loaded", b(true))]), &t);
    assert_eq!(
        result(&e, "loaded").1,
        format!(
            "loaded: expected true, got true (ext4 is built into the running kernel {RELEASE})"
        )
    );
    let e = run(
        &km(
            "mlx5_ib",
            vec![("loaded", b(true)), ("kernel", s("6.1.0-other"))],
        ),
        &t,
    );
    assert_eq!(result(&e, "loaded").0, Status::Error);
    // A kernel without module support (like this VM's).
    let t = live(None);
    let e = run(&km("mlx5_core", vec![("loaded", b(false))]), &t);
    assert_eq!(
        result(&e, "loaded"),
        (
            Status::Pass,
            format!(
                "loaded: expected false, got false (the running kernel {RELEASE} has no module support (no /proc/modules) and mlx5_core is not built in)"
            )
        )
    );
    // Positive evidence from /sys/module without any module index.
    let t = MemoryTarget::new()
        .kind(TargetKind::Live)
        .with(Need::Live)
        .file("/proc/sys/kernel/osrelease", 0o444, 0, 0, "6.18.44\n")
        .dir("/sys/module/fuse", 0o755, 0, 0);
    let e = run(&km("fuse", vec![("loaded", b(true))]), &t);
    assert_eq!(
        result(&e, "loaded"),
        (
            Status::Pass,
            "loaded: expected true, got true (fuse is built into the running kernel 6.18.44 (/sys/module/fuse))".into()
        )
    );
    let e = run(&km("xfs", vec![("loaded", b(true))]), &t);
    assert_eq!(result(&e, "loaded").0, Status::Error);
    let t = live(Some("garbage\n"));
    let e = run(&km("mlx5_core", vec![("loaded", b(true))]), &t);
    assert_eq!(result(&e, "loaded").0, Status::Error);
}

#[test]
fn present_false_conflicts_with_other_properties() {
    let c = km("x", vec![("present", b(false)), ("loadable", b(true))]);
    assert_eq!(
        messages(&nodecheck_core::kind::Kind::validate(&KernelModule, &c)),
        vec![
            "conflicting-keys: `loadable` cannot be checked together with `present = false`: a missing module has no loadable"
        ]
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn a_module_modprobe_d_disables_is_not_loadable() {
    let loadable = |t: &MemoryTarget, name: &str| {
        let e = run(&km(name, vec![("loadable", b(true))]), t);
        result(&e, "loadable")
    };
    // Before: loadable.
    assert_eq!(loadable(&image(), "mlx5_core").0, Status::Pass);
    let t = image()
        .file(
            "/etc/modprobe.d/disable.conf",
            0o644,
            0,
            0,
            "# site policy\ninstall mlx5_core /bin/false\nblacklist \\\n  ib-uverbs\n",
        )
        .file(
            "/usr/lib/modprobe.d/fine.conf",
            0o644,
            0,
            0,
            "install ib_core /sbin/modprobe --ignore-install ib_core && echo ok\n",
        );
    assert_eq!(
        loadable(&t, "mlx5-core"),
        (
            Status::Fail,
            "loadable: expected true, got false (modprobe.d disables mlx5_core: \
             /etc/modprobe.d/disable.conf:2: `install mlx5_core /bin/false`: modprobe runs that \
             command instead of loading mlx5_core)"
                .into()
        )
    );
    assert_eq!(
        loadable(&t, "ib_uverbs"),
        (
            Status::Fail,
            "loadable: expected true, got false (modprobe.d disables ib_uverbs: \
             /etc/modprobe.d/disable.conf:3: `blacklist ib_uverbs`: modprobe ignores its aliases, \
             so no device loads it at boot)"
                .into()
        )
    );
    // A dependency's install command runs too; its blacklist does not matter.
    let (status, msg) = loadable(&t, "mlx5_ib");
    assert_eq!(status, Status::Fail);
    assert!(
        msg.contains("(mlx5_ib needs mlx5_core, which modprobe.d disables: "),
        "{msg}"
    );
    // A wrapper that loads the module after all does not disable it.
    assert_eq!(loadable(&t, "ib_core").0, Status::Pass);
    // `loadable = false` asserts that a module is disabled.
    let e = run(&km("mlx5_core", vec![("loadable", b(false))]), &t);
    assert_eq!(result(&e, "loadable").0, Status::Pass);
}
