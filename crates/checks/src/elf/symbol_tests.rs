//! `symbols`: every undefined symbol is defined somewhere in the load, as
//! `ldd -r` checks it.

use super::fixture::{exe, lib};
use super::tests::{elf, image, put};
use crate::testing::*;
use nodecheck_core::outcome::Status::{Fail, Pass};
use nodecheck_core::target::MemoryTarget;

const ML: &str = "/usr/lib/x86_64-linux-gnu";

fn symbols(t: &MemoryTarget, path: &str) -> (nodecheck_core::outcome::Status, String) {
    result(&elf(t, path, vec![("symbols", b(true))]), "symbols")
}

#[test]
fn a_library_replaced_by_an_older_build_misses_a_symbol() {
    let v1 = lib("libfg.so.1", &["libc.so.6"]).exports(&["f", "g"]);
    let v2 = lib("libfg.so.1", &["libc.so.6"]).exports(&["f"]);
    let prog = exe(&["libfg.so.1", "libc.so.6"]).uses(&["g"]);
    let t = put(
        put(image(), &format!("{ML}/libfg.so.1"), v1),
        "/usr/bin/p",
        prog.clone(),
    );
    assert_eq!(
        symbols(&t, "/usr/bin/p"),
        (
            Pass,
            "symbols: every symbol /usr/bin/p and its libraries use is defined".into()
        )
    );
    // Same soname, older build: resolves and versions still pass, the
    // symbol does not.
    let t = put(
        put(image(), &format!("{ML}/libfg.so.1"), v2),
        "/usr/bin/p",
        prog,
    );
    let e = elf(
        &t,
        "/usr/bin/p",
        vec![
            ("resolves", b(true)),
            ("symbol_versions", b(true)),
            ("symbols", b(true)),
        ],
    );
    assert_eq!(result(&e, "resolves").0, Pass);
    assert_eq!(result(&e, "symbol_versions").0, Pass);
    assert_eq!(
        result(&e, "symbols"),
        (Fail, "symbols: /usr/bin/p (undefined symbol g)".into())
    );
    // `symbols = false` asserts the opposite.
    let e = elf(&t, "/usr/bin/p", vec![("symbols", b(false))]);
    assert_eq!(result(&e, "symbols").0, Pass);
}

#[test]
fn weak_undefined_symbols_need_no_definition() {
    let prog = exe(&["libc.so.6"]).uses_weak(&["__gmon_start__", "_ITM_registerTMCloneTable"]);
    let t = put(image(), "/usr/bin/w", prog);
    assert_eq!(symbols(&t, "/usr/bin/w").0, Pass);
}

#[test]
fn a_library_needs_its_symbols_from_the_load_too() {
    // libb uses h, which only the program defines (as a plugin host
    // does): fine in the program's load, not when libb is loaded alone.
    let t = put(
        image(),
        &format!("{ML}/libb.so.1"),
        lib("libb.so.1", &[]).uses(&["h", "i"]).exports(&["i"]),
    );
    let t = put(t, "/usr/bin/host", exe(&["libb.so.1"]).exports(&["h"]));
    assert_eq!(symbols(&t, "/usr/bin/host").0, Pass);
    assert_eq!(
        symbols(&t, &format!("{ML}/libb.so.1")),
        (
            Fail,
            format!("symbols: {ML}/libb.so.1 (undefined symbol h)")
        )
    );
    // Through a chain, the library at fault is named.
    let t = put(t, "/usr/bin/other", exe(&["libb.so.1"]));
    assert_eq!(
        symbols(&t, "/usr/bin/other").1,
        "symbols: /usr/bin/other -> libb.so.1 (undefined symbol h)"
    );
}

#[test]
fn versions_of_symbols_are_honoured() {
    let fg = |defs: &[&str], exports: &[&str]| lib("libv.so.1", &[]).defines(defs).exports(exports);
    // libv.so.1 and the program /usr/bin/v that uses it.
    let layout = |libv, prog| {
        put(
            put(image(), &format!("{ML}/libv.so.1"), libv),
            "/usr/bin/v",
            prog,
        )
    };
    let prog = exe(&["libv.so.1"])
        .needs_versions("libv.so.1", &["V2"])
        .uses(&["g@V2"]);
    // g at V2: found.
    let t = layout(fg(&["libv.so.1", "V1", "V2"], &["g@V2"]), prog.clone());
    assert_eq!(symbols(&t, "/usr/bin/v").0, Pass);
    // A reference whose version's `vna_hash` is damaged: ld.so's
    // check_match compares the hashes before the names, and finds none.
    let mut damaged = prog.clone();
    damaged.wrong_need_hash = true;
    let t = layout(fg(&["libv.so.1", "V1", "V2"], &["g@V2"]), damaged);
    assert_eq!(
        symbols(&t, "/usr/bin/v"),
        (Fail, "symbols: /usr/bin/v (undefined symbol g@V2)".into())
    );
    // g only at V1 (V2 defined, but not for g): undefined, as ld.so says
    // "symbol g version V2 not defined in file libv.so.1".
    let t = layout(fg(&["libv.so.1", "V1", "V2"], &["g@V1"]), prog.clone());
    assert_eq!(
        symbols(&t, "/usr/bin/v"),
        (Fail, "symbols: /usr/bin/v (undefined symbol g@V2)".into())
    );
    // An unversioned g in a library with versions does not do for a
    // versioned reference (its index is the base version)...
    let t = layout(fg(&["libv.so.1", "V2"], &["g"]), prog);
    assert_eq!(symbols(&t, "/usr/bin/v").0, Fail);
    // ...and an unversioned reference takes a library's only versioned
    // definition, but not a hidden one.
    let plain = exe(&["libv.so.1"]).uses(&["g"]);
    let t = layout(fg(&["libv.so.1", "V1", "V2"], &["g@V2"]), plain.clone());
    assert_eq!(symbols(&t, "/usr/bin/v").0, Pass);
    let mut hidden = fg(&["libv.so.1", "V1", "V2"], &["g@V2"]);
    hidden.symbols[0].hidden = true;
    let t = layout(hidden, plain);
    assert_eq!(symbols(&t, "/usr/bin/v").0, Fail);
}

#[test]
fn the_interpreter_is_in_scope_only_when_needed() {
    let interp = "/usr/lib64/ld-linux-x86-64.so.2";
    let t = image().file(
        interp,
        0o755,
        0,
        0,
        lib("ld-linux-x86-64.so.2", &[])
            .exports(&["_dl_find_object"])
            .build(),
    );
    // (libz needs nothing; libc would bring ld.so in.)
    let t = put(
        t,
        "/usr/bin/a",
        exe(&["libz.so.1"]).uses(&["_dl_find_object"]),
    );
    assert_eq!(symbols(&t, "/usr/bin/a").0, Fail);
    let t = put(
        t,
        "/usr/bin/b",
        exe(&["libz.so.1", "ld-linux-x86-64.so.2"]).uses(&["_dl_find_object"]),
    );
    assert_eq!(symbols(&t, "/usr/bin/b").0, Pass);
}

#[test]
fn a_tree_names_the_files_and_symbols() {
    let t = put(
        image(),
        "/opt/x/bin/p",
        exe(&["libc.so.6"]).uses(&["gone1", "gone2"]),
    );
    let t = put(t, "/opt/x/bin/q", exe(&["libc.so.6"]));
    let e = elf(
        &t,
        "/opt/x",
        vec![("recursive", b(true)), ("symbols", b(true))],
    );
    let (st, msg) = result(&e, "symbols");
    assert_eq!(st, Fail);
    assert_eq!(
        msg,
        "symbols: 1 of 2 ELF files under /opt/x use symbols nothing they load defines: \
         /opt/x/bin/p (/opt/x/bin/p)"
    );
    assert!(
        e.output
            .contains("/opt/x/bin/p (undefined symbols gone1, gone2)"),
        "{}",
        e.output
    );
}
