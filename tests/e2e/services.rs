//! profiles/compute/services.toml on the real Debian rootfs: its service,
//! package and config controls pass, each fault (munge disabled, munge.key
//! 0644, PermitRootLogin yes, munge removed with dpkg, a masked unit)
//! fails the right control, and the image is byte-identical afterwards.
//! And the package kind on a real RPM database that Debian's `rpm` wrote.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use crate::util::*;

/// The controls of compute/services.toml that must pass on a clean image
/// (sshd-password-auth is informational: stock sshd accepts passwords).
const CONTROLS: &str = "required-packages,boot-services,slurmd-enabled,munge-key,sshd-root-login";

fn run_services(target: &Path) -> (i32, String) {
    let o = nodecheck(&[
        "run",
        "profiles/compute.toml",
        "--target",
        target.to_str().unwrap(),
        "--controls",
        CONTROLS,
    ]);
    let out = stdout(&o);
    assert!(stderr(&o).is_empty() || code(&o) != 2, "{}", stderr(&o));
    (code(&o), out)
}

/// The parts of the image these kinds read, fingerprinted.
fn read_parts(root: &Path) -> Vec<std::collections::BTreeMap<std::path::PathBuf, String>> {
    ["etc", "var/lib/dpkg", "lib/systemd", "usr/lib/systemd"]
        .iter()
        .map(|p| root.join(p))
        .filter(|p| p.exists())
        .map(|p| fingerprint(&p))
        .collect()
}

#[test]
fn compute_services_pass_on_the_reference_rootfs_and_leave_it_untouched() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    let before = read_parts(&rootfs);
    let (status, out) = run_services(&rootfs);
    assert_eq!(status, 0, "{out}");
    assert!(
        out.contains("Profile Summary: 5 successful controls, 0 control failures"),
        "{out}"
    );
    // The whole compute profile exits 0 too, with no failure: the stock
    // sshd default is reported by the (waived) password control.
    let o = nodecheck(&[
        "run",
        "profiles/compute.toml",
        "--target",
        rootfs.to_str().unwrap(),
    ]);
    let all = stdout(&o);
    assert_eq!(code(&o), 0, "{all}");
    assert!(all.contains(" 0 control failures"), "{all}");
    assert!(all.contains("~  sshd-password-auth: waived: "), "{all}");
    assert!(
        all.contains(
            "PasswordAuthentication: expected no, got yes (sshd's default: not set in /etc/ssh/sshd_config)"
        ),
        "{all}"
    );
    let after = read_parts(&rootfs);
    for (b, a) in before.iter().zip(&after) {
        assert_same(b, a);
    }
}

/// A fault copy whose /etc is a private copy (not hard links), so that
/// tools run in it cannot write through to the cached original.
fn fault(rootfs: &Path) -> Option<Fault> {
    if !is_root() {
        eprintln!("note: skipped, needs root to copy the reference rootfs");
        return None;
    }
    let f = Fault::of(rootfs);
    for dir in ["etc", "var/lib"] {
        fs::remove_dir_all(f.path().join(dir)).unwrap();
        let st = Command::new("cp")
            .arg("-a")
            .arg(rootfs.join(dir))
            .arg(f.path().join(dir))
            .status()
            .unwrap();
        assert!(st.success());
    }
    Some(f)
}

/// Runs the services controls on a fault copy: exit 1, `control` failed
/// with a line containing `message`, and every other control passed.
fn fails(f: &Fault, control: &str, message: &str) -> String {
    let (status, out) = run_services(f.path());
    assert_eq!(status, 1, "{out}");
    let mut lines = out.lines();
    let head = lines
        .find(|l| l.contains(&format!(" {control}: ")))
        .unwrap_or_else(|| panic!("no {control} in {out}"));
    assert!(
        head.trim_start().starts_with('×'),
        "{control} did not fail:\n{out}"
    );
    assert!(out.contains(message), "expected {message:?} in:\n{out}");
    out
}

#[test]
fn each_fault_fails_the_right_control() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    let before = read_parts(&rootfs);

    // munge.service disabled (what `systemctl disable munge` does).
    let Some(f) = fault(&rootfs) else {
        return;
    };
    fs::remove_file(
        f.path()
            .join("etc/systemd/system/multi-user.target.wants/munge.service"),
    )
    .unwrap();
    let out = fails(
        &f,
        "boot-services",
        "service munge: enabled: expected true, got false (disabled: WantedBy=multi-user.target, \
         but no /etc/systemd/system/multi-user.target.wants/munge.service link)",
    );
    assert!(out.contains("✔  munge-key"), "{out}");

    // munge.key world-readable.
    let f = fault(&rootfs).unwrap();
    let key = f.path().join("etc/munge/munge.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    fails(
        &f,
        "munge-key",
        "file /etc/munge/munge.key: mode: expected at most 0600, got 0644",
    );

    // PermitRootLogin yes, at the end of the file: named with its line.
    let f = fault(&rootfs).unwrap();
    let conf = f.path().join("etc/ssh/sshd_config");
    let mut text = fs::read_to_string(&conf).unwrap();
    text.push_str("PermitRootLogin yes\n");
    let line = text.lines().count();
    fs::write(&conf, text).unwrap();
    fails(
        &f,
        "sshd-root-login",
        &format!("PermitRootLogin: expected not yes, got yes (/etc/ssh/sshd_config:{line})"),
    );

    // A required package removed with dpkg itself. No daemon may be
    // stopped or started by its maintainer scripts.
    let f = fault(&rootfs).unwrap();
    let policy = f.path().join("usr/sbin/policy-rc.d");
    fs::write(&policy, "#!/bin/sh\nexit 101\n").unwrap();
    fs::set_permissions(&policy, fs::Permissions::from_mode(0o755)).unwrap();
    let o = Command::new("dpkg")
        .arg("--root")
        .arg(f.path())
        .args(["-r", "--force-depends", "munge"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "dpkg -r: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    fails(
        &f,
        "required-packages",
        "package munge: installed: package munge is not installed (/var/lib/dpkg/status says \
         \"deinstall ok config-files\"",
    );

    // munge.service masked.
    let f = fault(&rootfs).unwrap();
    symlink(
        "/dev/null",
        f.path().join("etc/systemd/system/munge.service"),
    )
    .unwrap();
    fails(
        &f,
        "boot-services",
        "service munge: masked: expected false, got true (/etc/systemd/system/munge.service -> /dev/null)",
    );

    // A corrupt dpkg database is an error naming the file and line.
    let f = fault(&rootfs).unwrap();
    let status = f.path().join("var/lib/dpkg/status");
    let mut bytes = fs::read(&status).unwrap();
    bytes.splice(0..0, b"\x00\x01garbage without a colon\n".iter().copied());
    fs::write(&status, &bytes).unwrap();
    let (code, out) = run_services(f.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("/var/lib/dpkg/status: not a dpkg status file: it contains NUL bytes"),
        "{out}"
    );
    bytes.drain(0..2);
    fs::write(&status, &bytes).unwrap();
    let (_, out) = run_services(f.path());
    assert!(
        out.contains(
            "/var/lib/dpkg/status:1: expected `Field: value`, got \"garbage without a colon\""
        ),
        "{out}"
    );

    let after = read_parts(&rootfs);
    for (b, a) in before.iter().zip(&after) {
        assert_same(b, a);
    }
}

/// Debian's rpm and rpmbuild, which tests/deps.sh installs.
fn have_rpm() -> bool {
    let ok = Command::new("rpmbuild")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "rpmbuild is missing: tests/deps.sh installs the rpm package"
        );
        eprintln!("note: skipped, rpm is not installed (tests/deps.sh installs it)");
    }
    ok
}

/// Builds a noarch package with rpmbuild.
fn build_rpm(
    top: &Path,
    name: &str,
    epoch: Option<u32>,
    version: &str,
    release: &str,
) -> std::path::PathBuf {
    let spec = top.join(format!("{name}.spec"));
    let epoch = epoch.map_or(String::new(), |e| format!("Epoch: {e}\n"));
    fs::write(
        &spec,
        format!(
            "Name: {name}\n{epoch}Version: {version}\nRelease: {release}\nSummary: nodecheck test package\n\
             License: MIT\nBuildArch: noarch\n%description\nA package for nodecheck's tests.\n\
             %install\nmkdir -p %{{buildroot}}/etc\necho {name} > %{{buildroot}}/etc/{name}.conf\n\
             %files\n/etc/{name}.conf\n"
        ),
    )
    .unwrap();
    let o = Command::new("rpmbuild")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("--define")
        .arg(format!("_dbpath {}", top.join("builddb").display()))
        .args(["--quiet", "-bb"])
        .arg(&spec)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "rpmbuild: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    top.join(format!("RPMS/noarch/{name}-{version}-{release}.noarch.rpm"))
}

fn rpm(root: &Path, args: &[&str]) {
    let o = Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args(["--dbpath", "/var/lib/rpm"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "rpm {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn packages_in_a_real_rpm_database() {
    if !have_rpm() {
        return;
    }
    let top = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let hello = build_rpm(top.path(), "nc-hello", Some(2), "1.2.3", "4.el9");
    let munge = build_rpm(top.path(), "munge", None, "0.5.13", "13.el9");
    rpm(root.path(), &["--initdb"]);
    for p in [&hello, &munge] {
        rpm(
            root.path(),
            &["-i", "--nodeps", "--noscripts", p.to_str().unwrap()],
        );
    }
    assert!(root.path().join("var/lib/rpm/rpmdb.sqlite").exists());
    let profile = top.path().join("rpm.toml");
    fs::write(
        &profile,
        "[profile]\nname = \"rpm\"\n\
         [[control]]\nid = \"installed\"\n\
         [[control.package]]\nname = [\"munge\", \"nc-hello\"]\ninstalled = true\n\
         [[control]]\nid = \"versions\"\n\
         [[control.package]]\nname = \"nc-hello\"\nversion = { ge = \"2:1.2.3-4\", lt = \"2:1.10\" }\n\
         [[control.package]]\nname = \"munge\"\nversion = { ge = \"0.5.13\" }\n\
         [[control]]\nid = \"absent\"\n\
         [[control.package]]\nname = \"telnet-server\"\ninstalled = false\n\
         [[control]]\nid = \"too-old\"\n\
         [[control.package]]\nname = \"munge\"\nversion = { ge = \"0.5.14\" }\n",
    )
    .unwrap();
    let before = fingerprint(root.path());
    let o = nodecheck(&[
        "run",
        profile.to_str().unwrap(),
        "--target",
        root.path().to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}\n{}", stderr(&o));
    assert!(out.contains("✔  installed"), "{out}");
    assert!(out.contains("✔  versions"), "{out}");
    assert!(out.contains("✔  absent"), "{out}");
    assert!(
        out.contains("package munge: version: expected >= 0.5.14, got 0.5.13-13.el9 (noarch)"),
        "{out}"
    );
    // The database, its -shm and -wal included, is byte-identical.
    assert_same(&before, &fingerprint(root.path()));

    // A corrupt rpmdb is an error naming the file.
    let db = root.path().join("var/lib/rpm/rpmdb.sqlite");
    let mut bytes = fs::read(&db).unwrap();
    let n = bytes.len();
    bytes[100..n].fill(0x5a);
    fs::write(&db, bytes).unwrap();
    let o = nodecheck(&[
        "run",
        profile.to_str().unwrap(),
        "--target",
        root.path().to_str().unwrap(),
        "--controls",
        "installed",
    ]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert!(
        out.contains("package munge could not be looked up: /var/lib/rpm/rpmdb.sqlite: "),
        "{out}"
    );
}

/// `enabled` agrees with `systemctl --root=IMAGE list-unit-files` on every
/// unit file of the reference image (systemctl's offline mode is the
/// reference implementation of [Install] and its links). Alias names are
/// left out: systemctl says `alias` whatever the unit's state, nodecheck
/// reports the unit's own state (see the service kind's doc).
#[test]
fn enabled_agrees_with_systemctl_on_every_unit_of_the_image() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    let Ok(o) = Command::new("systemctl")
        .arg(format!("--root={}", rootfs.display()))
        .args(["list-unit-files", "--no-legend", "--no-pager"])
        .output()
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemctl is missing: tests/deps.sh installs systemd"
        );
        eprintln!("note: skipped, systemctl is not installed");
        return;
    };
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listing = String::from_utf8(o.stdout).unwrap();
    let mut profile = String::from("[profile]\nname = \"systemctl\"\n");
    let mut compared = 0;
    for line in listing.lines() {
        let mut f = line.split_whitespace();
        let (Some(unit), Some(state)) = (f.next(), f.next()) else {
            continue;
        };
        let want = match state {
            "enabled" | "enabled-runtime" | "static" | "generated" => true,
            "disabled" | "masked" => false,
            _ => continue,
        };
        compared += 1;
        profile.push_str(&format!(
            "[[control]]\nid = \"unit-{compared}\"\ntitle = '{unit} is {state}'\n\
             [[control.service]]\nname = '{unit}'\nenabled = {want}\n"
        ));
    }
    assert!(compared > 100, "only {compared} units listed:\n{listing}");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("systemctl.toml");
    fs::write(&p, profile).unwrap();
    let o = nodecheck(&[
        "run",
        p.to_str().unwrap(),
        "--target",
        rootfs.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert_eq!(
        code(&o),
        0,
        "nodecheck disagrees with systemctl:\n{out}\n{}",
        stderr(&o)
    );
    assert!(
        out.contains(&format!("Profile Summary: {compared} successful controls")),
        "{out}"
    );
}
