use super::*;
use crate::elf::fixture::{self, exe, lib};
use crate::testing::*;
use nodecheck_core::outcome::Status::{Error, Fail, Pass, Skip};
use nodecheck_core::target::MemoryTarget;

fn image() -> MemoryTarget {
    let ml = "/usr/lib/x86_64-linux-gnu";
    MemoryTarget::new()
        .symlink("/lib", "usr/lib")
        .file("/usr/bin/sh", 0o755, 0, 0, exe(&["libc.so.6"]).build())
        .symlink("/bin", "usr/bin")
        .file(
            &format!("{ml}/libc.so.6"),
            0o755,
            0,
            0,
            lib("libc.so.6", &[])
                .defines(&["libc.so.6", "GLIBC_2.34"])
                .build(),
        )
        .file(
            &format!("{ml}/libssl.so.3"),
            0o644,
            0,
            0,
            lib("libssl.so.3", &["libcrypto.so.3", "libc.so.6"])
                .needs_versions("libc.so.6", &["GLIBC_2.34"])
                .build(),
        )
        .file(
            &format!("{ml}/libQt5Core.so.5"),
            0o644,
            0,
            0,
            lib("libQt5Core.so.5", &["libicui18n.so.72"]).build(),
        )
        .file(
            "/usr/lib/libold32.so.1",
            0o644,
            0,
            0,
            lib("libold32.so.1", &[]).bits32().build(),
        )
        .file(
            "/etc/ld.so.cache",
            0o644,
            0,
            0,
            fixture::ld_cache(&[("libssl.so.3", "/lib/x86_64-linux-gnu/libssl.so.3", 0x303, 0)]),
        )
}

fn library(t: &MemoryTarget, name: &str, props: Vec<(&str, Value)>) -> Evaluation {
    run(&check(&Library, name, props), t)
}

#[test]
fn a_library_and_its_dependencies() {
    let t = image().file(
        "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
        0o644,
        0,
        0,
        lib("libcrypto.so.3", &[]).build(),
    );
    let e = library(
        &t,
        "libssl.so.3",
        vec![("resolves", b(true)), ("symbol_versions", b(true))],
    );
    assert_eq!(
        results(&e),
        [
            (
                "resolves".into(),
                Pass,
                "resolves: libssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (ld.so.cache), \
                 with all 2 libraries it needs"
                    .into()
            ),
            (
                "symbol_versions".into(),
                Pass,
                "symbol_versions: every version libssl.so.3 and its libraries need is defined"
                    .into()
            ),
        ]
    );
    // Without libcrypto, libssl does not resolve.
    let e = library(&image(), "libssl.so.3", vec![("resolves", b(true))]);
    assert_eq!(
        result(&e, "resolves"),
        (
            Fail,
            "resolves: /lib/x86_64-linux-gnu/libssl.so.3 -> libcrypto.so.3 (not found)".into()
        )
    );
    let e = library(&image(), "libQt5Core.so.5", vec![("resolves", b(true))]);
    assert_eq!(result(&e, "resolves").0, Fail);
}

#[test]
fn a_missing_library_fails_once() {
    let e = library(
        &image(),
        "libX11.so.6",
        vec![("resolves", b(true)), ("symbol_versions", b(true))],
    );
    assert_eq!(
        results(&e),
        [
            (
                "resolves".into(),
                Fail,
                "resolves: libX11.so.6 is not found".into()
            ),
            (
                "symbol_versions".into(),
                Skip,
                "libX11.so.6 is not found".into()
            ),
        ]
    );
    let e = library(&image(), "libold32.so.1", vec![("resolves", b(true))]);
    assert_eq!(
        result(&e, "resolves"),
        (
            Fail,
            "resolves: libold32.so.1 is not found (only a library for another class or machine \
             than 64-bit X86_64)"
                .into()
        )
    );
    let e = library(&image(), "libX11.so.6", vec![("resolves", b(false))]);
    assert_eq!(result(&e, "resolves").0, Pass);
}

#[test]
fn an_optional_library_is_skipped_when_absent_and_checked_when_present() {
    let e = library(
        &image(),
        "libX11.so.6",
        vec![("resolves", b(true)), ("required", b(false))],
    );
    assert_eq!(
        result(&e, "resolves"),
        (
            Skip,
            "libX11.so.6 is not installed (required = false)".into()
        )
    );
    // A library that is there (here only for another machine) is checked
    // as usual, required or not.
    let e = library(
        &image(),
        "libold32.so.1",
        vec![("resolves", b(true)), ("required", b(false))],
    );
    assert_eq!(result(&e, "resolves").0, Fail);
}

#[test]
fn a_path_is_opened_as_is() {
    let e = library(
        &image(),
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        vec![("resolves", b(true))],
    );
    assert_eq!(result(&e, "resolves").0, Pass, "{e:?}");
}

#[test]
fn without_a_shell_the_machine_is_unknown() {
    let t = MemoryTarget::new().file("/etc/ld.so.cache", 0o644, 0, 0, "");
    let e = library(&t, "libc.so.6", vec![("resolves", b(true))]);
    let (st, msg) = result(&e, "resolves");
    assert_eq!(st, Error);
    assert!(msg.contains("cannot tell the target's machine"), "{msg}");
}

#[test]
fn a_library_only_in_an_ld_so_conf_directory_is_not_found() {
    // ld.so reads the cache, never ld.so.conf: a library that ldconfig
    // has not put in the cache is missing, and the message says why.
    let t = image()
        .file("/etc/ld.so.conf", 0o644, 0, 0, "/opt/site/lib\n")
        .file(
            "/opt/site/lib/libsite.so.1",
            0o644,
            0,
            0,
            lib("libsite.so.1", &[]).build(),
        );
    let e = library(&t, "libsite.so.1", vec![("resolves", b(true))]);
    assert_eq!(
        result(&e, "resolves"),
        (
            Fail,
            "resolves: libsite.so.1 is not found; /opt/site/lib/libsite.so.1 is not in \
             ld.so.cache; ldconfig not re-run after it was added to /opt/site/lib (named by \
             /etc/ld.so.conf)"
                .into()
        )
    );
}
