//! profiles/base.toml on the real Debian rootfs: it passes, it catches a
//! broken /etc/shadow, its JUnit validates and agrees with the terminal,
//! and the rootfs is byte-identical afterwards.

use std::os::unix::fs::PermissionsExt;

use crate::util::*;

/// "Test Summary: 18 successful, 1 failure, 0 skipped, 0 errors" as numbers.
fn test_summary(out: &str) -> (usize, usize, usize, usize) {
    let line = out
        .lines()
        .find(|l| l.starts_with("Test Summary:"))
        .unwrap_or_else(|| panic!("no Test Summary in:\n{out}"));
    let nums: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (nums[0], nums[1], nums[2], nums[3])
}

/// (tests, failures, errors, skipped) from the JUnit root element.
fn junit_counts(xml: &str) -> (usize, usize, usize, usize) {
    let r = quick_junit::Report::deserialize_from_str(xml).expect("JUnit parses");
    let mut t = (0, 0, 0, 0);
    for s in &r.test_suites {
        t.0 += s.tests;
        t.1 += s.failures;
        t.2 += s.errors;
        t.3 += s.skipped;
    }
    t
}

#[test]
fn base_profile_passes_on_the_reference_rootfs_and_leaves_it_untouched() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    let before = fingerprint(&rootfs);
    let out_dir = tempfile::tempdir().unwrap();
    let junit = out_dir.path().join("base.xml");
    let json = out_dir.path().join("base.json");
    let o = nodecheck(&[
        "run",
        "profiles/base.toml",
        "--target",
        rootfs.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}\n{}", stderr(&o));
    assert!(out.contains("Profile Summary: "), "{out}");
    let (passed, failed, skipped, errors) = test_summary(&out);
    assert_eq!((failed, errors), (0, 0), "{out}");
    xmllint(&junit).unwrap();
    let xml = std::fs::read_to_string(&junit).unwrap();
    let (tests, jfail, jerr, jskip) = junit_counts(&xml);
    assert_eq!(
        (tests, jfail, jerr, jskip),
        (passed + failed + skipped + errors, failed, errors, skipped)
    );
    assert_same(&before, &fingerprint(&rootfs));
}

#[test]
fn base_profile_fails_on_a_world_writable_shadow() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    if !is_root() {
        eprintln!("note: skipped, needs root to copy the reference rootfs");
        return;
    }
    let fault = Fault::of(&rootfs);
    let shadow = fault.detach("etc/shadow");
    std::fs::set_permissions(&shadow, std::fs::Permissions::from_mode(0o666)).unwrap();
    let junit = fault.path().with_extension("xml");
    let o = nodecheck(&[
        "run",
        "profiles/base.toml",
        "--target",
        fault.path().to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert!(out.contains("shadow-perms"), "{out}");
    assert!(
        out.contains("file /etc/shadow: mode: expected at most 0640, got 0666"),
        "{out}"
    );
    assert!(out.contains("profiles/base.toml:"), "{out}");
    // The world-writable file is also caught by the whole-image control.
    assert!(
        out.contains("world_writable: 1 world-writable entry under /: /etc/shadow (0666)"),
        "{out}"
    );
    let (_, failed, _, _) = test_summary(&out);
    assert_eq!(failed, 2, "{out}");
    xmllint(&junit).unwrap();
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("shadow-perms"), "{xml}");
    assert!(
        xml.contains("mode: expected at most 0640, got 0666"),
        "{xml}"
    );
    let (_, jfail, _, _) = junit_counts(&xml);
    assert_eq!(jfail, 2);
    let _ = std::fs::remove_file(junit);
    // The original is untouched by the fault copy.
    let meta = std::fs::metadata(rootfs.join("etc/shadow")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
}
