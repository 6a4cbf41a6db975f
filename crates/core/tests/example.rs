//! Runs the library example (examples/junit.rs) the way its docs say, so a
//! change to the public API cannot leave it broken.

use std::path::PathBuf;
use std::process::Command;

/// `cargo test` builds the examples next to the test binaries.
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    dir.join("examples/junit")
}

#[test]
fn the_junit_example_runs_a_profile_against_a_rootfs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/os-release"), "ID=debian\n").unwrap();
    let profile = dir.path().join("p.toml");
    std::fs::write(
        &profile,
        "[profile]\nname = \"demo\"\n[[control]]\nid = \"release\"\n\
         [[control.file]]\npath = \"/etc/os-release\"\ncontent = { matches = \"^ID=\" }\n\
         [[control.file]]\npath = \"/etc/hostname\"\nexists = true\n",
    )
    .unwrap();
    let out = dir.path().join("out.xml");
    let o = Command::new(example())
        .arg(&profile)
        .arg(&root)
        .arg(&out)
        .output()
        .expect("the example is built by cargo test");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "2 checks: 1 passed, 1 failed\n"
    );
    let xml = std::fs::read_to_string(&out).unwrap();
    let r = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(r.test_suites[0].failures, 1);
}
