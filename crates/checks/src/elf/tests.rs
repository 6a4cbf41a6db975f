//! The `elf` kind on small in-memory images built from fixture ELF files.

use super::fixture::{self, Spec, exe, lib};
use super::*;
use crate::testing::*;
use nodecheck_core::outcome::Status::{Error, Fail, Pass, Skip};
use nodecheck_core::profile::Value;
use nodecheck_core::target::MemoryTarget;

const LIBC_VERSIONS: &[&str] = &["libc.so.6", "GLIBC_2.2.5", "GLIBC_2.34"];

/// A tiny multiarch image: ld.so, libc (in the cache), libm (only in the
/// default directory), a 32-bit libz in /usr/lib and a 64-bit one in the
/// multiarch directory (not in the cache).
pub(super) fn image() -> MemoryTarget {
    let ml = "/usr/lib/x86_64-linux-gnu";
    MemoryTarget::new()
        .symlink("/lib", "usr/lib")
        .symlink("/lib64", "usr/lib64")
        .file(
            "/usr/lib64/ld-linux-x86-64.so.2",
            0o755,
            0,
            0,
            lib("ld-linux-x86-64.so.2", &[]).build(),
        )
        .file(
            &format!("{ml}/libc.so.6"),
            0o755,
            0,
            0,
            lib("libc.so.6", &["ld-linux-x86-64.so.2"])
                .defines(LIBC_VERSIONS)
                .build(),
        )
        .file(
            &format!("{ml}/ld-linux-x86-64.so.2"),
            0o755,
            0,
            0,
            lib("ld-linux-x86-64.so.2", &[]).build(),
        )
        .file(
            &format!("{ml}/libm.so.6"),
            0o644,
            0,
            0,
            lib("libm.so.6", &["libc.so.6"])
                .needs_versions("libc.so.6", &["GLIBC_2.2.5"])
                .build(),
        )
        .file(
            "/usr/lib/libz.so.1",
            0o644,
            0,
            0,
            lib("libz.so.1", &[]).bits32().build(),
        )
        .file(
            &format!("{ml}/libz.so.1"),
            0o644,
            0,
            0,
            lib("libz.so.1", &[]).build(),
        )
        .file(
            "/etc/ld.so.cache",
            0o644,
            0,
            0,
            fixture::ld_cache(&[
                ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", 0x303, 0),
                (
                    "ld-linux-x86-64.so.2",
                    "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                    0x303,
                    0,
                ),
            ]),
        )
        .file(
            "/etc/ld.so.conf",
            0o644,
            0,
            0,
            "include /etc/ld.so.conf.d/*.conf\n",
        )
        .file(
            "/etc/ld.so.conf.d/local.conf",
            0o644,
            0,
            0,
            "/usr/local/lib\n",
        )
}

pub(super) fn put(t: MemoryTarget, path: &str, spec: Spec) -> MemoryTarget {
    t.file(path, 0o755, 0, 0, spec.build())
}

pub(super) fn elf(t: &MemoryTarget, path: &str, props: Vec<(&str, Value)>) -> Evaluation {
    run(&check(&Elf, path, props), t)
}

fn resolves(t: &MemoryTarget, path: &str) -> (nodecheck_core::outcome::Status, String) {
    result(&elf(t, path, vec![("resolves", b(true))]), "resolves")
}

#[test]
fn a_program_finds_its_libraries_through_cache_and_default_dirs() {
    let t = put(
        image(),
        "/usr/bin/tool",
        exe(&["libm.so.6", "libz.so.1", "libc.so.6"]),
    );
    let e = elf(
        &t,
        "/usr/bin/tool",
        vec![("resolves", b(true)), ("symbol_versions", b(true))],
    );
    assert_eq!(
        results(&e),
        [
            (
                "resolves".into(),
                Pass,
                "resolves: /usr/bin/tool finds all 4 libraries it needs".into()
            ),
            (
                "symbol_versions".into(),
                Pass,
                "symbol_versions: every version /usr/bin/tool needs is defined".into()
            ),
        ]
    );
    // The 32-bit libz in /usr/lib is not even looked at: the multiarch
    // directory comes first. The output lists what was loaded from where.
    assert!(
        e.output
            .contains("libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (default path)"),
        "{}",
        e.output
    );
    assert!(
        e.output
            .contains("libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (ld.so.cache)"),
        "{}",
        e.output
    );
    assert!(
        e.output
            .contains("/lib64/ld-linux-x86-64.so.2 (interpreter)")
    );
}

#[test]
fn a_missing_library_is_reported_with_its_chain() {
    let t = put(
        image(),
        "/usr/lib/x86_64-linux-gnu/libmpi.so.40",
        lib("libmpi.so.40", &["libopen-pal.so.40"]),
    );
    let t = put(
        t,
        "/usr/lib/x86_64-linux-gnu/libopen-pal.so.40",
        lib("libopen-pal.so.40", &["libhwloc.so.15", "libc.so.6"]),
    );
    let t = put(t, "/usr/bin/mpirun", exe(&["libmpi.so.40", "libc.so.6"]));
    assert_eq!(
        resolves(&t, "/usr/bin/mpirun"),
        (Fail, "resolves: /usr/bin/mpirun -> libmpi.so.40 -> libopen-pal.so.40 -> libhwloc.so.15 (not found)".into())
    );
    // `ignore` takes it out.
    let e = elf(
        &t,
        "/usr/bin/mpirun",
        vec![("resolves", b(true)), ("ignore", list(&["libhwloc.so.*"]))],
    );
    assert_eq!(result(&e, "resolves").0, Pass);
    // `resolves = false` asserts the opposite.
    let e = elf(&t, "/usr/bin/mpirun", vec![("resolves", b(false))]);
    assert_eq!(result(&e, "resolves").0, Pass);
}

#[test]
fn spack_style_origin_runpath() {
    let root = "/opt/spack/app";
    let t = put(
        image(),
        &format!("{root}/lib/libapp.so.1"),
        lib("libapp.so.1", &["libhelper.so", "libc.so.6"]),
    );
    let t = put(
        t,
        &format!("{root}/lib/libhelper.so"),
        lib("libhelper.so", &["libc.so.6"]),
    );
    // The program needs both (Spack links everything it needs), so
    // libhelper is found through the program's RUNPATH, and libapp's need
    // for it (libapp has no RUNPATH of its own) is met by the loaded copy.
    let t = put(
        t,
        &format!("{root}/bin/app"),
        exe(&["libhelper.so", "libapp.so.1", "libc.so.6"]).runpath("$ORIGIN/../lib"),
    );
    assert_eq!(resolves(&t, &format!("{root}/bin/app")).0, Pass);
    let e = elf(&t, &format!("{root}/bin/app"), vec![("resolves", b(true))]);
    assert!(
        e.output
            .contains("libapp.so.1 => /opt/spack/app/bin/../lib/libapp.so.1 (RUNPATH)"),
        "{}",
        e.output
    );
    // RUNPATH is not inherited: libapp alone does not find libhelper.
    let t2 = put(
        t,
        &format!("{root}/bin/app2"),
        exe(&["libapp.so.1"]).runpath("$ORIGIN/../lib"),
    );
    assert_eq!(
        resolves(&t2, &format!("{root}/bin/app2")),
        (
            Fail,
            "resolves: /opt/spack/app/bin/app2 -> libapp.so.1 -> libhelper.so (not found)".into()
        )
    );
    // A symlink to the program: $ORIGIN is the program's real directory.
    let t3 = image().symlink("/usr/bin/app", "/opt/spack/app/bin/app");
    let t3 = put(
        t3,
        &format!("{root}/lib/libhelper.so"),
        lib("libhelper.so", &[]),
    );
    let t3 = put(
        t3,
        &format!("{root}/lib/libapp.so.1"),
        lib("libapp.so.1", &[]),
    );
    let t3 = put(
        t3,
        &format!("{root}/bin/app"),
        exe(&["libhelper.so", "libapp.so.1"]).runpath("$ORIGIN/../lib"),
    );
    let e = elf(&t3, "/usr/bin/app", vec![("resolves", b(true))]);
    assert_eq!(
        result(&e, "resolves"),
        (
            Pass,
            "resolves: /usr/bin/app (= /opt/spack/app/bin/app) finds all 3 libraries it needs"
                .into()
        )
    );
}

#[test]
fn rpath_is_inherited_and_ignored_beside_runpath() {
    let t = put(image(), "/opt/a/lib/liba.so", lib("liba.so", &["libb.so"]));
    let t = put(t, "/opt/b/lib/libb.so", lib("libb.so", &[]));
    // The program's RPATH serves its libraries too.
    let t = put(
        t,
        "/opt/a/bin/x",
        exe(&["liba.so"]).rpath("/opt/a/lib:/opt/b/lib"),
    );
    assert_eq!(resolves(&t, "/opt/a/bin/x").0, Pass);
    // With a RUNPATH the RPATH is ignored, and RUNPATH is not inherited.
    let t = put(
        t,
        "/opt/a/bin/y",
        exe(&["liba.so"])
            .rpath("/opt/a/lib:/opt/b/lib")
            .runpath("/opt/a/lib"),
    );
    assert_eq!(
        resolves(&t, "/opt/a/bin/y"),
        (
            Fail,
            "resolves: /opt/a/bin/y -> liba.so -> libb.so (not found)".into()
        )
    );
    // library_path is searched for every object.
    let e = elf(
        &t,
        "/opt/a/bin/y",
        vec![
            ("resolves", b(true)),
            ("library_path", list(&["/opt/b/lib"])),
        ],
    );
    assert_eq!(result(&e, "resolves").0, Pass, "{}", e.output);
}

#[test]
fn nodeflib_skips_cache_and_default_dirs() {
    let mut s = exe(&["libc.so.6"]);
    s.flags_1 = 0x800;
    let t = put(image(), "/usr/bin/strict", s);
    assert_eq!(
        resolves(&t, "/usr/bin/strict"),
        (
            Fail,
            "resolves: /usr/bin/strict -> libc.so.6 (not found)".into()
        )
    );
}

#[test]
fn a_name_that_failed_is_searched_again_by_a_later_needer() {
    // The program (DF_1_NODEFLIB) misses libc; libmine, found through
    // the RPATH, then finds libc through the cache, as ld.so's trace mode
    // does: libc is loaded, and reported missing once.
    let mut s = exe(&["libmine.so.1", "libc.so.6"]).rpath("/opt/x/lib");
    s.flags_1 = 0x800;
    let t = put(image(), "/usr/bin/strict", s);
    let t = put(
        t,
        "/opt/x/lib/libmine.so.1",
        lib("libmine.so.1", &["libc.so.6"]),
    );
    let e = elf(&t, "/usr/bin/strict", vec![("resolves", b(true))]);
    assert_eq!(
        result(&e, "resolves"),
        (
            Fail,
            "resolves: /usr/bin/strict -> libc.so.6 (not found)".into()
        )
    );
    assert!(
        e.output
            .contains("libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (ld.so.cache)"),
        "{}",
        e.output
    );
}

#[test]
fn wrong_class_is_skipped_and_bad_files_stop_the_search() {
    // Only a 32-bit libonly32 exists: skipped, so missing, and said so.
    let t = image().file(
        "/usr/lib/libonly32.so",
        0o644,
        0,
        0,
        lib("libonly32.so", &[]).bits32().build(),
    );
    let t = put(t, "/usr/bin/p", exe(&["libonly32.so"]));
    let (st, msg) = resolves(&t, "/usr/bin/p");
    assert_eq!(st, Fail);
    assert!(
        msg.contains("only a library for another class or machine than 64-bit X86_64"),
        "{msg}"
    );
    // A text file where the library should be: ld.so stops with an error.
    let t = image().file(
        "/usr/lib/x86_64-linux-gnu/libtext.so",
        0o644,
        0,
        0,
        "INPUT(-lfoo)\n",
    );
    let t = put(t, "/usr/bin/q", exe(&["libtext.so"]));
    assert_eq!(
        resolves(&t, "/usr/bin/q"),
        (Fail, "resolves: /usr/bin/q -> libtext.so (not loadable: /lib/x86_64-linux-gnu/libtext.so: invalid ELF header)".into())
    );
    // A truncated library too.
    let bytes = lib("libcut.so", &[]).build();
    let t = image().file(
        "/usr/lib/x86_64-linux-gnu/libcut.so",
        0o644,
        0,
        0,
        &bytes[..40],
    );
    let t = put(t, "/usr/bin/r", exe(&["libcut.so"]));
    let (st, msg) = resolves(&t, "/usr/bin/r");
    assert_eq!(st, Fail);
    assert!(
        msg.contains("not loadable") && msg.contains("truncated"),
        "{msg}"
    );
}

#[test]
fn a_missing_interpreter_fails() {
    let mut s = exe(&[]);
    s.interp = Some("/lib/ld-musl-x86_64.so.1".into());
    let t = put(image(), "/usr/bin/musl", s);
    assert_eq!(
        resolves(&t, "/usr/bin/musl"),
        (
            Fail,
            "resolves: /usr/bin/musl -> /lib/ld-musl-x86_64.so.1 (interpreter not found)".into()
        )
    );
}

#[test]
fn symbol_versions_need_a_definition() {
    let t = put(
        image(),
        "/usr/bin/new",
        exe(&["libc.so.6", "libm.so.6"]).needs_versions("libc.so.6", &["GLIBC_2.34", "GLIBC_2.99"]),
    );
    let e = elf(
        &t,
        "/usr/bin/new",
        vec![("resolves", b(true)), ("symbol_versions", b(true))],
    );
    assert_eq!(result(&e, "resolves").0, Pass);
    assert_eq!(
        result(&e, "symbol_versions"),
        (Fail, "symbol_versions: /usr/bin/new -> libc.so.6 (version GLIBC_2.99 not defined by /lib/x86_64-linux-gnu/libc.so.6)".into())
    );
    // Weak needs, and libraries without version definitions, pass.
    let mut s = exe(&["libc.so.6", "libz.so.1"]).needs_versions("libz.so.1", &["ZLIB_9"]);
    s.verneed
        .push(("libc.so.6".into(), vec![("GLIBC_2.99".into(), true)]));
    let t = put(image(), "/usr/bin/weak", s);
    let e = elf(&t, "/usr/bin/weak", vec![("symbol_versions", b(true))]);
    assert_eq!(result(&e, "symbol_versions").0, Pass, "{}", e.output);
    // ld.so matches a version by its hash, then its name: a need whose
    // `vna_hash` is not the name's finds no definition.
    let mut s = exe(&["libc.so.6"]).needs_versions("libc.so.6", &["GLIBC_2.34"]);
    let t = put(image(), "/usr/bin/ok", s.clone());
    let e = elf(&t, "/usr/bin/ok", vec![("symbol_versions", b(true))]);
    assert_eq!(result(&e, "symbol_versions").0, Pass, "{}", e.output);
    s.wrong_need_hash = true;
    let t = put(image(), "/usr/bin/damaged", s);
    let e = elf(&t, "/usr/bin/damaged", vec![("symbol_versions", b(true))]);
    assert_eq!(
        result(&e, "symbol_versions"),
        (Fail, "symbol_versions: /usr/bin/damaged -> libc.so.6 (version GLIBC_2.34 not defined by /lib/x86_64-linux-gnu/libc.so.6)".into())
    );
}

#[test]
fn cycles_terminate() {
    let t = put(
        image(),
        "/usr/lib/x86_64-linux-gnu/liba.so",
        lib("liba.so", &["libb.so", "liba.so"]),
    );
    let t = put(
        t,
        "/usr/lib/x86_64-linux-gnu/libb.so",
        lib("libb.so", &["liba.so", "libc.so.6"]),
    );
    let t = put(t, "/usr/bin/cyc", exe(&["liba.so"]));
    assert_eq!(
        resolves(&t, "/usr/bin/cyc"),
        (
            Pass,
            "resolves: /usr/bin/cyc finds all 4 libraries it needs".into()
        )
    );
}

#[test]
fn ld_so_never_reads_ld_so_conf() {
    // liblocal.so.1 is only in /usr/local/lib, a directory ld.so.conf
    // names; the cache (what ldconfig made of ld.so.conf) does not list it.
    let local = || {
        let t = put(
            image(),
            "/usr/local/lib/liblocal.so.1",
            lib("liblocal.so.1", &[]),
        );
        put(t, "/usr/bin/loc", exe(&["liblocal.so.1"]))
    };
    let t = local();
    assert_eq!(
        resolves(&t, "/usr/bin/loc"),
        (
            Fail,
            "resolves: /usr/bin/loc -> liblocal.so.1 (not found; /usr/local/lib/liblocal.so.1 \
             is not in ld.so.cache; ldconfig not re-run after it was added to /usr/local/lib \
             (named by /etc/ld.so.conf.d/local.conf))"
                .into()
        )
    );
    // Without a usable cache ld.so searches its default directories
    // only: still not found.
    for t in [
        local().file("/etc/ld.so.cache", 0o644, 0, 0, "garbage"),
        local().symlink("/etc/ld.so.cache", "nowhere"),
    ] {
        let e = elf(&t, "/usr/bin/loc", vec![("resolves", b(true))]);
        let (st, msg) = result(&e, "resolves");
        assert_eq!(st, Fail, "{msg}");
        assert!(
            msg.contains(
                ", so ld.so searches only its default directories, not /usr/local/lib \
                 (named by /etc/ld.so.conf.d/local.conf) where /usr/local/lib/liblocal.so.1 is: \
                 not in ld.so.cache; ldconfig not run"
            ),
            "{msg}"
        );
        assert!(
            e.output
                .contains("ld.so searches only its default directories (and RPATH, RUNPATH)"),
            "{}",
            e.output
        );
    }
    // A library that is nowhere says only that.
    let t = put(t, "/usr/bin/none", exe(&["libnone.so.1"]));
    assert_eq!(
        resolves(&t, "/usr/bin/none").1,
        "resolves: /usr/bin/none -> libnone.so.1 (not found)"
    );
}

#[test]
fn a_tree_reports_every_broken_file() {
    let mut t = image();
    for i in 0..12 {
        t = put(
            t,
            &format!("/opt/app/bin/tool{i:02}"),
            exe(&["libgone.so.1", "libc.so.6"]),
        );
    }
    let t = put(t, "/opt/app/bin/ok", exe(&["libc.so.6"]));
    let t = t.file("/opt/app/bin/script", 0o755, 0, 0, "#!/bin/sh\n");
    let t = t.file("/opt/app/share/x.o", 0o644, 0, 0, {
        let mut b = lib("x", &[]).build();
        b[16] = 1;
        b
    });
    let e = elf(
        &t,
        "/opt",
        vec![
            ("resolves", b(true)),
            ("recursive", b(true)),
            ("symbol_versions", b(true)),
        ],
    );
    let (st, msg) = result(&e, "resolves");
    assert_eq!(st, Fail);
    assert!(
        msg.starts_with("resolves: 12 of 13 ELF files under /opt miss libraries: /opt/app/bin/tool00 (libgone.so.1), "),
        "{msg}"
    );
    assert!(msg.ends_with(" and 2 more"), "{msg}");
    assert_eq!(
        e.output
            .lines()
            .filter(|l| l.contains("libgone.so.1 (not found)"))
            .count(),
        12
    );
    assert_eq!(result(&e, "symbol_versions").0, Pass);
    // Not recursive: /opt holds no file itself.
    let e = elf(&t, "/opt", vec![("resolves", b(true))]);
    assert_eq!(
        result(&e, "resolves"),
        (
            Pass,
            "resolves: all 0 ELF files under /opt find all their libraries".into()
        )
    );
    // exclude
    let e = elf(
        &t,
        "/opt",
        vec![
            ("resolves", b(true)),
            ("recursive", b(true)),
            ("exclude", list(&["*/tool*"])),
        ],
    );
    assert_eq!(
        result(&e, "resolves"),
        (
            Pass,
            "resolves: all 1 ELF files under /opt find all their libraries".into()
        )
    );
}

#[test]
fn a_private_library_is_fine_where_its_program_loads_it() {
    let d = "/usr/lib/x86_64-linux-gnu/systemd";
    let t = put(
        image(),
        &format!("{d}/libcore.so"),
        lib("libcore.so", &["libshared.so"]),
    );
    let t = put(
        t,
        &format!("{d}/libshared.so"),
        lib("libshared.so", &["libc.so.6"]),
    );
    let t = put(
        t,
        "/usr/lib/systemd/systemd",
        exe(&["libshared.so", "libcore.so"]).runpath(d),
    );
    let e = elf(
        &t,
        "/usr/lib",
        vec![("resolves", b(true)), ("recursive", b(true))],
    );
    let (st, msg) = result(&e, "resolves");
    assert_eq!(st, Pass, "{msg}\n{}", e.output);
    assert!(
        msg.contains("(1 only where their programs load them"),
        "{msg}"
    );
    assert!(e.output.contains("libcore.so -> libshared.so (not found) [resolves where /usr/lib/systemd/systemd loads it]"), "{}", e.output);
    // Checked alone it fails.
    assert_eq!(resolves(&t, &format!("{d}/libcore.so")).0, Fail);
}

#[test]
fn paths_that_are_not_elf_programs() {
    let t = image().file("/usr/bin/script", 0o755, 0, 0, "#!/bin/sh\n");
    let e = elf(
        &t,
        "/usr/bin/script",
        vec![("resolves", b(true)), ("symbol_versions", b(true))],
    );
    assert_eq!(
        results(&e),
        [
            (
                "resolves".into(),
                Fail,
                "resolves: /usr/bin/script is not an ELF file".into()
            ),
            (
                "symbol_versions".into(),
                Skip,
                "/usr/bin/script is not an ELF file".into()
            ),
        ]
    );
    // The presence rule (eval::PATH): the first property fails, the rest
    // skip with the shared message.
    let e = elf(
        &t,
        "/usr/bin/none",
        vec![("resolves", b(true)), ("symbol_versions", b(true))],
    );
    assert_eq!(
        results(&e),
        vec![
            (
                "resolves".into(),
                Fail,
                "resolves: /usr/bin/none does not exist".into()
            ),
            (
                "symbol_versions".into(),
                Skip,
                "/usr/bin/none does not exist".into()
            ),
        ]
    );
    // A 64-bit ELF header (ET_DYN) cut short (60 of its 64 bytes), and a
    // file too short to be any ELF program (15 bytes).
    let mut cut = b"\x7fELF\x02\x01\x01garbage".to_vec();
    cut.resize(60, 0);
    cut[16] = 3;
    let t = image().file("/usr/bin/bad", 0o755, 0, 0, cut).file(
        "/usr/bin/tiny",
        0o755,
        0,
        0,
        b"\x7fELF\x02\x01\x01garbage".as_slice(),
    );
    for file in ["/usr/bin/bad", "/usr/bin/tiny"] {
        let e = elf(&t, file, vec![("resolves", b(true))]);
        let (st, msg) = result(&e, "resolves");
        assert_eq!(st, Error, "{msg}");
        assert!(msg.contains("truncated ELF header"), "{msg}");
    }
    // In a tree, a broken file is an error only when nothing else fails;
    // a file shorter than the smallest ELF header runs as no program and
    // is not a candidate (named as `path` it is examined, above).
    let e = elf(&t, "/usr/bin", vec![("resolves", b(true))]);
    let (st, msg) = result(&e, "resolves");
    assert_eq!(st, Error, "{msg}");
    assert!(msg.contains("/usr/bin/bad: truncated ELF header"), "{msg}");
    assert!(!msg.contains("tiny"), "{msg}");
    let e = elf(
        &t,
        "/usr/bin",
        vec![("resolves", b(true)), ("candidates", s("all"))],
    );
    let (st, msg) = result(&e, "resolves");
    assert_eq!(st, Error, "{msg}");
    assert!(msg.contains("/usr/bin/tiny: truncated ELF header"), "{msg}");
}

/// The files a directory scan examines: executables and shared-object
/// names by default, but executables named like a data format; every
/// regular file with `candidates = "all"`; the output says how many were
/// examined and skipped.
#[test]
fn a_directory_scan_examines_candidate_files() {
    let plugin = lib("plugin.bin", &["libgone.so.1"]);
    let t = image()
        .file("/opt/app/lib/plugin.bin", 0o644, 0, 0, plugin.build())
        .file("/opt/app/lib/libx.so.1", 0o644, 0, 0, {
            lib("libx.so.1", &["libgone.so.1"]).build()
        })
        .file(
            "/opt/app/lib/python/mod.cpython-311-x86_64-linux-gnu.so",
            0o644,
            0,
            0,
            lib("mod", &["libgone.so.1"]).build(),
        )
        .file("/opt/app/bin/tool", 0o755, 0, 0, {
            exe(&["libgone.so.1"]).build()
        })
        .file("/opt/app/share/data.txt", 0o644, 0, 0, "text\n")
        .file("/opt/app/include/odd.h", 0o755, 0, 0, {
            exe(&["libgone.so.1"]).build()
        })
        .file("/opt/app/lib/libz.so.1.gz", 0o644, 0, 0, {
            lib("libz.so.1", &["libgone.so.1"]).build()
        })
        .file(
            "/opt/app/share/run.sh",
            0o755,
            0,
            0,
            "#!/bin/sh\n# a script: examined, not ELF\nexec /opt/app/bin/tool \"$@\"\n",
        );
    let scan = |candidates: Option<&str>| {
        let mut props = vec![("resolves", b(true)), ("recursive", b(true))];
        if let Some(c) = candidates {
            props.push(("candidates", s(c)));
        }
        let e = elf(&t, "/opt", props);
        let (st, msg) = result(&e, "resolves");
        assert_eq!(st, Fail, "{msg}");
        (msg, e.output)
    };
    for default in [None, Some("loadable")] {
        let (msg, output) = scan(default);
        assert!(
            msg.starts_with("resolves: 4 of 4 ELF files under /opt miss libraries: "),
            "{msg}"
        );
        // A 0755 ELF without a .so name, a 0644 libx.so.1, a 0644
        // Python extension module, a shared object's name that also ends
        // like a data format: found.
        for found in [
            "/opt/app/bin/tool",
            "/opt/app/lib/libx.so.1",
            "mod.cpython-311-x86_64-linux-gnu.so",
            "libz.so.1.gz",
        ] {
            assert!(msg.contains(found), "{found}: {msg}");
        }
        // A 0644 ELF named plugin.bin, a 0755 ELF named like a header:
        // skipped, and counted.
        assert!(!msg.contains("plugin.bin"), "{msg}");
        assert!(!msg.contains("odd.h"), "{msg}");
        assert!(
            output.contains("files under /opt:\n  5 files examined (candidates = \"loadable\"), 4 of them ELF executables or shared objects\n  1 files skipped: no execute bit (or under 52 bytes) and not named *.so or *.so.* (candidates = \"all\" examines them)\n  2 files skipped by name, a source, text or data format (*.h, *.gz, *.py, *.txt, …; candidates = \"all\" examines them)\n"),
            "{output}"
        );
    }
    let (msg, output) = scan(Some("all"));
    assert!(
        msg.starts_with("resolves: 6 of 6 ELF files under /opt miss libraries: "),
        "{msg}"
    );
    assert!(msg.contains("/opt/app/lib/plugin.bin"), "{msg}");
    assert!(msg.contains("/opt/app/include/odd.h"), "{msg}");
    assert!(
        output.contains("files under /opt:\n  8 files examined (candidates = \"all\"), 6 of them ELF executables or shared objects\n"),
        "{output}"
    );
    assert!(!output.contains("skipped"), "{output}");
    // A file named as `path` is always examined, whatever its mode.
    let e = elf(&t, "/opt/app/lib/plugin.bin", vec![("resolves", b(true))]);
    assert_eq!(result(&e, "resolves").0, Fail);
}

/// The kernel's module tree is not walked by a `loadable` scan that meets
/// it, and said so; `all` walks it, and so does a scan that starts there.
#[test]
fn a_scan_does_not_walk_the_kernel_s_module_tree() {
    let t = image()
        .file(
            "/usr/lib/modules/6.1.0-50-amd64/kernel/drivers/net/x.ko",
            0o644,
            0,
            0,
            "not even ELF",
        )
        .file("/usr/lib/modules/6.1.0-50-amd64/helper", 0o755, 0, 0, {
            exe(&["libgone.so.1"]).build()
        });
    let scan = |path: &str, candidates: &str| {
        let e = elf(
            &t,
            path,
            vec![
                ("resolves", b(true)),
                ("recursive", b(true)),
                ("candidates", s(candidates)),
            ],
        );
        let (st, msg) = result(&e, "resolves");
        (st, msg, e.output)
    };
    let (st, msg, output) = scan("/usr", "loadable");
    assert_eq!(st, Pass, "{msg}");
    assert!(
        output.contains("  /usr/lib/modules not walked: the kernel's module tree, which ld.so never loads from (kernel_module and kernel check it; candidates = \"all\" walks it)\n"),
        "{output}"
    );
    assert!(!output.contains("kernel modules skipped"), "{output}");
    for (path, candidates) in [("/usr", "all"), ("/usr/lib/modules", "loadable")] {
        let (st, msg, output) = scan(path, candidates);
        assert_eq!(st, Fail, "{path} {candidates}: {msg}");
        assert!(
            msg.contains("/usr/lib/modules/6.1.0-50-amd64/helper"),
            "{msg}"
        );
        assert!(output.contains("1 kernel modules skipped"), "{output}");
        assert!(!output.contains("not walked"), "{output}");
    }
}

#[test]
fn shared_object_names() {
    for name in [
        "libfoo.so",
        "libfoo.so.1",
        "libfoo.so.1.2.3",
        "foo.cpython-311-x86_64-linux-gnu.so",
        "libstdc++.so.6.0.30",
    ] {
        assert!(scan::shared_object_name(name.as_bytes()), "{name}");
    }
    for name in [
        "libfoo.a",
        "foo.sop",
        "plugin.bin",
        "so",
        "x.so1",
        "README.solaris",
    ] {
        assert!(!scan::shared_object_name(name.as_bytes()), "{name}");
    }
}

#[test]
fn data_names() {
    let mut sorted = scan::DATA_EXTENSIONS.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, scan::DATA_EXTENSIONS, "sorted, once each");
    for name in [
        "stdio.h",
        "ls.1.gz",
        "os.py",
        "os.cpython-311.pyc",
        "POSIX.pm",
        "a.tar.xz",
        "x.service",
    ] {
        assert!(scan::data_name(name.as_bytes()), "{name}");
    }
    for name in [
        "ls",
        "python3.11",
        "mkfs.ext4",
        "ld.bfd",
        "x.H",
        ".h",
        "h",
        "plugin.bin",
        "foo.gz.bin",
        "x.services",
        "x.",
        "x.longer-than-8",
    ] {
        assert!(!scan::data_name(name.as_bytes()), "{name}");
    }
}

#[test]
fn static_programs_need_nothing() {
    let mut s = exe(&[]);
    s.interp = None;
    let mut b = s.build();
    // Turn PT_DYNAMIC (the second program header) into PT_NULL.
    b[64 + 56] = 0;
    let t = image().file("/usr/bin/static", 0o755, 0, 0, b);
    assert_eq!(
        resolves(&t, "/usr/bin/static"),
        (Pass, "resolves: /usr/bin/static needs no library".into())
    );
}

#[test]
fn setuid_programs_ignore_library_path_and_untrusted_origin() {
    let t = put(image(), "/opt/x/lib/libx.so", lib("libx.so", &[]));
    let t = t.file(
        "/opt/x/bin/su",
        0o4755,
        0,
        0,
        exe(&["libx.so"]).runpath("$ORIGIN/../lib").build(),
    );
    assert_eq!(
        resolves(&t, "/opt/x/bin/su"),
        (
            Fail,
            "resolves: /opt/x/bin/su -> libx.so (not found)".into()
        )
    );
    let e = elf(
        &t,
        "/opt/x/bin/su",
        vec![
            ("resolves", b(true)),
            ("library_path", list(&["/opt/x/lib"])),
        ],
    );
    assert_eq!(result(&e, "resolves").0, Fail);
}

#[test]
fn validation() {
    let c = check(
        &Elf,
        "/usr",
        vec![
            ("resolves", b(true)),
            ("ignore", list(&["lib[x"])),
            ("library_path", list(&["rel/lib"])),
        ],
    );
    assert_eq!(
        messages(&Elf.validate(&c)),
        [
            "bad-value: `ignore`: \"lib[x\" is not a valid glob: unclosed character class; missing ']'",
            "bad-value: `library_path`: \"rel/lib\" is not an absolute directory",
        ]
    );
}

#[test]
fn a_library_is_not_excused_by_a_program_that_fails_elsewhere_first() {
    // The program loads libfirst (which needs the missing libgone first)
    // and then libmpi, which needs libgone too: the program's chain goes
    // through libfirst, but libmpi is broken there as well.
    let ml = "/usr/lib/x86_64-linux-gnu";
    let t = put(
        image(),
        &format!("{ml}/libfirst.so"),
        lib("libfirst.so", &["libgone.so"]),
    );
    let t = put(
        t,
        &format!("{ml}/libmpi.so"),
        lib("libmpi.so", &["libgone.so"]),
    );
    let t = put(t, "/usr/bin/prog", exe(&["libfirst.so", "libmpi.so"]));
    let e = elf(
        &t,
        "/usr",
        vec![("resolves", b(true)), ("recursive", b(true))],
    );
    let (st, msg) = result(&e, "resolves");
    assert_eq!(st, Fail);
    assert!(
        msg.contains(&format!("{ml}/libmpi.so (libgone.so)")),
        "{msg}"
    );
    assert!(!e.output.contains("resolves where"), "{}", e.output);
}

#[test]
#[expect(
    clippy::disallowed_methods,
    reason = "builds a rootfs fixture on disk to test mtimes"
)]
fn a_stale_cache_fails_whatever_the_mtimes() {
    use std::time::{Duration, SystemTime};
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let w = |p: &str, b: &[u8]| {
        let p = r.join(p.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b).unwrap();
    };
    let ml = "/usr/lib/x86_64-linux-gnu";
    w(&format!("{ml}/libc.so.6"), &lib("libc.so.6", &[]).build());
    w(
        "/lib64/ld-linux-x86-64.so.2",
        &lib("ld-linux-x86-64.so.2", &[]).build(),
    );
    w(
        "/usr/bin/tool",
        &exe(&["liblocal.so.1", "libc.so.6"]).build(),
    );
    w("/etc/ld.so.conf", b"/opt/local/lib\n");
    w(
        "/etc/ld.so.cache",
        &fixture::ld_cache(&[("libc.so.6", &format!("{ml}/libc.so.6"), 0x303, 0)]),
    );
    w(
        "/opt/local/lib/liblocal.so.1",
        &lib("liblocal.so.1", &[]).build(),
    );
    let set = |p: &str, t: SystemTime| {
        let f = std::fs::File::options()
            .write(true)
            .open(r.join(p.trim_start_matches('/')))
            .unwrap();
        f.set_modified(t).unwrap();
    };
    let old = SystemTime::now() - Duration::from_secs(3600);
    let want = (
        Fail,
        "resolves: /usr/bin/tool -> liblocal.so.1 (not found; /opt/local/lib/liblocal.so.1 is \
         not in ld.so.cache; ldconfig not re-run after it was added to /opt/local/lib (named \
         by /etc/ld.so.conf))"
            .to_string(),
    );
    // The cache newer than ld.so.conf, or older: ld.so reads the cache
    // alone either way.
    for conf in [old, SystemTime::now() + Duration::from_secs(60)] {
        set("/etc/ld.so.cache", SystemTime::now());
        set("/etc/ld.so.conf", conf);
        let t = nodecheck_core::target::RootFs::open(r).unwrap();
        let e = run(
            &check(&Elf, "/usr/bin/tool", vec![("resolves", b(true))]),
            &t,
        );
        assert_eq!(result(&e, "resolves"), want, "{}", e.output);
    }
}

#[test]
#[expect(
    clippy::disallowed_methods,
    reason = "a sparse multi-gigabyte file can only be made on disk"
)]
fn a_huge_file_costs_only_what_the_loader_reads() {
    // An 8 GiB sparse "library" whose dynamic section claims a 4 GiB
    // string table at its end: reading it stays within the reader's
    // budget (a few kilobytes here), and the program needing it is told
    // what is wrong with it.
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let libdir = r.join("usr/lib/x86_64-linux-gnu");
    std::fs::create_dir_all(&libdir).unwrap();
    let mut spec = lib("libhuge.so", &[]);
    spec.needed = vec!["libx.so".into()];
    let mut bytes = spec.build();
    // Point DT_STRTAB past 4 GiB: outside the PT_LOAD, so an error.
    let strtab_tag = bytes
        .chunks_exact(8)
        .rposition(|w| u64::from_le_bytes(w.try_into().unwrap()) == 5)
        .unwrap();
    let at = (strtab_tag + 1) * 8;
    bytes[at..at + 8].copy_from_slice(&(5u64 << 30).to_le_bytes());
    let f = std::fs::File::create(libdir.join("libhuge.so")).unwrap();
    std::io::Write::write_all(&mut &f, &bytes).unwrap();
    f.set_len(8 << 30).unwrap();
    std::fs::write(
        r.join("usr/lib/x86_64-linux-gnu/libc.so.6"),
        lib("libc.so.6", &[]).build(),
    )
    .unwrap();
    std::fs::create_dir_all(r.join("usr/bin")).unwrap();
    std::fs::write(
        r.join("usr/bin/p"),
        Spec {
            interp: None,
            ..exe(&["libhuge.so"])
        }
        .build(),
    )
    .unwrap();
    let t = nodecheck_core::target::RootFs::open(r).unwrap();
    let e = run(&check(&Elf, "/usr/bin/p", vec![("resolves", b(true))]), &t);
    let (st, msg) = result(&e, "resolves");
    assert_eq!(st, Fail, "{msg}");
    assert!(
        msg.contains("libhuge.so (not loadable: /usr/lib/x86_64-linux-gnu/libhuge.so: DT_STRTAB"),
        "{msg}"
    );
    // Checked itself, it is an error naming the file.
    let e = run(
        &check(
            &Elf,
            "/usr/lib/x86_64-linux-gnu",
            vec![("resolves", b(true))],
        ),
        &t,
    );
    let (st, msg) = result(&e, "resolves");
    assert_eq!(st, Error, "{msg}");
    assert!(
        msg.contains("/usr/lib/x86_64-linux-gnu/libhuge.so: DT_STRTAB"),
        "{msg}"
    );
}
