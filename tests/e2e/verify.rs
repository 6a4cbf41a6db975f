//! `package` with `verify = true`, judged against the real tools as
//! oracles: on the reference rootfs and a fault copy of it, the set of
//! paths nodecheck reports equals `dpkg --root=ROOT --verify`'s; on an
//! rpm tree that Debian's rpm installed, it equals `rpm --root=ROOT -Va`'s,
//! mode and owner changes included.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use crate::util::*;

/// One reported path: `(path, conffile, what)`, where `what` is
/// `missing` or rpm's letters for what differs (`SM5DLUGT` order).
type Seen = BTreeSet<(String, bool, String)>;

/// Runs `verify = true` over every package of `root` and returns what the
/// JSON report's output lists, mapped to rpm's letters, and the terminal
/// output followed by the JUnit report.
fn nodecheck_verify(root: &Path, extra: &str) -> (i32, Seen, String) {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("verify.toml");
    fs::write(
        &profile,
        format!(
            "[profile]\nname = \"verify\"\n[[control]]\nid = \"integrity\"\n\
             [[control.package]]\nname = \"*\"\nverify = true\n{extra}"
        ),
    )
    .unwrap();
    let json = dir.path().join("out.json");
    let junit = dir.path().join("out.xml");
    let o = nodecheck(&[
        "run",
        profile.to_str().unwrap(),
        "--target",
        root.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let text = stdout(&o) + &fs::read_to_string(&junit).unwrap();
    assert!(code(&o) == 0 || code(&o) == 1, "{text}\n{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    let mut outputs = Vec::new();
    collect_outputs(&report, &mut outputs);
    assert_eq!(outputs.len(), 1, "{report:#}");
    let mut seen = Seen::new();
    let mut section = "";
    for line in outputs[0].lines() {
        if !line.starts_with("  ") {
            section = if line.starts_with("could not be verified") {
                "error"
            } else {
                "finding"
            };
            continue;
        }
        assert_eq!(section, "finding", "nodecheck could not verify: {line}");
        // `  pkg: /path[ (conffile)]: what, what`
        let line = line.trim_start();
        let (rest, what) = line.rsplit_once(": ").unwrap();
        let (_pkg, path) = rest.split_once(": ").unwrap();
        let conffile = path.ends_with(" (conffile)");
        let path = path.trim_end_matches(" (conffile)").to_string();
        seen.insert((path, conffile, letters(what)));
    }
    (code(&o), seen, text)
}

fn collect_outputs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let (Some(serde_json::Value::String(k)), Some(serde_json::Value::String(o))) =
                (m.get("kind"), m.get("output"))
                && k == "package"
            {
                out.push(o.clone());
            }
            m.values().for_each(|v| collect_outputs(v, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_outputs(v, out)),
        _ => {}
    }
}

/// nodecheck's words as rpm's letters: `mode 0755 → 0777, owner root →
/// nobody` is `MU`; `missing` stays.
fn letters(what: &str) -> String {
    if what == "missing" {
        return what.into();
    }
    let mut set = BTreeSet::new();
    for w in what.split(", ") {
        let c = match w.split(' ').next().unwrap() {
            "size" => 'S',
            "type" | "mode" => 'M',
            "digest" => '5',
            "device" => 'D',
            "link" => 'L',
            "owner" => 'U',
            "group" => 'G',
            "mtime" => 'T',
            other => panic!("unknown difference {other:?} in {what:?}"),
        };
        set.insert(c);
    }
    "SM5DLUGT".chars().filter(|c| set.contains(c)).collect()
}

/// `dpkg --verify` or `rpm -V` output lines (`??5?????? c /path`,
/// `missing   c /path`) in the same form.
fn oracle_lines(text: &str) -> Seen {
    let mut seen = Seen::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (flags, rest) = line.split_at(9);
        // dpkg: `%.9s %c %s`; rpm: `%s  %c %s` (or `missing   %c %s`).
        let rest = rest.trim_start_matches(' ');
        let (attr, path) = if rest.starts_with('/') {
            (' ', rest)
        } else {
            (rest.chars().next().unwrap(), rest[1..].trim_start())
        };
        let what = if flags.starts_with("missing") {
            "missing".to_string()
        } else {
            "SM5DLUGT"
                .chars()
                .zip([0, 1, 2, 3, 4, 5, 6, 7])
                .filter(|(c, i)| flags.as_bytes()[*i] as char == *c)
                .map(|(c, _)| c)
                .collect()
        };
        seen.insert((path.to_string(), attr == 'c', what));
    }
    seen
}

fn dpkg_verify(root: &Path) -> Seen {
    let o = Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .arg("--verify")
        .output()
        .expect("dpkg");
    // dpkg --verify exits 0 even when files differ.
    assert!(o.status.success(), "{}", stderr(&o));
    oracle_lines(&stdout(&o))
}

/// Replaces the hard link at `rel` in a fault copy by new content.
fn replace(fault: &Fault, rel: &str, content: &[u8]) {
    let p = fault.path().join(rel);
    let mode = fs::symlink_metadata(&p).unwrap().permissions();
    fs::remove_file(&p).unwrap();
    fs::write(&p, content).unwrap();
    fs::set_permissions(&p, mode).unwrap();
}

#[test]
fn verify_equals_dpkg_verify_on_the_reference_rootfs_and_its_faults() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    // The clean image: the same set as dpkg (the reference build empties
    // /var/lib/apt/lists, so both report that directory; the bundled
    // compute profile excludes it, and services.rs runs that profile on
    // this image and asserts it passes whole).
    let (_, ours, _) = nodecheck_verify(&rootfs, "");
    assert_eq!(ours, dpkg_verify(&rootfs));
    assert!(
        ours.contains(&("/var/lib/apt/lists/partial".into(), false, "missing".into())),
        "{ours:?}"
    );

    let fault = Fault::of(&rootfs);
    let f = fault.path();
    // A package file deleted (listed as /bin/ls on this merged-/usr
    // image: the path is reached through the /bin symlink, as dpkg does).
    fs::remove_file(f.join("usr/bin/ls")).unwrap();
    // Truncated.
    let libmunge = fs::read_dir(f.join("usr/lib/x86_64-linux-gnu"))
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("libmunge.so.2.")
        })
        .expect("libmunge.so.2.* in the reference rootfs")
        .path();
    let bytes = fs::read(&libmunge).unwrap();
    let rel = libmunge
        .strip_prefix(f)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    replace(&fault, &rel, &bytes[..bytes.len() / 2]);
    // Replaced by other content of the same size.
    let munged = fs::read(f.join("usr/sbin/munged")).unwrap();
    let mut other = munged.clone();
    other[100] ^= 0xff;
    replace(&fault, "usr/sbin/munged", &other);
    // Replaced by a symlink to a copy with the right content: dpkg
    // reports the type only.
    let cat = f.join("usr/bin/cat");
    fs::copy(&cat, f.join("usr/bin/cat.copy")).unwrap();
    fs::remove_file(&cat).unwrap();
    symlink("cat.copy", &cat).unwrap();
    // A conffile edited.
    replace(&fault, "etc/bash.bashrc", b"# edited by the site\n");
    // A mode changed (dpkg does not look at modes: neither reports it).
    let chmod = fault.detach("usr/bin/cp");
    fs::set_permissions(&chmod, fs::Permissions::from_mode(0o777)).unwrap();

    let before = fingerprint(&f.join("var/lib/dpkg"));
    let (status, ours, text) = nodecheck_verify(f, "");
    assert_same(&before, &fingerprint(&f.join("var/lib/dpkg")));
    let theirs = dpkg_verify(f);
    assert_eq!(ours, theirs);
    for expected in [
        ("/bin/ls", false, "missing"),
        (format!("/{rel}").as_str(), false, "5"),
        ("/usr/sbin/munged", false, "5"),
        ("/bin/cat", false, "M"),
        ("/etc/bash.bashrc", true, "5"),
    ] {
        let e = (expected.0.to_string(), expected.1, expected.2.to_string());
        assert!(ours.contains(&e), "{e:?} not in {ours:#?}");
    }
    // The edited conffile alone would pass; the other faults fail.
    assert_eq!(status, 1, "{text}");
    assert!(
        text.contains(
            "1 changed conffile (reported, not failed): bash: /etc/bash.bashrc (conffile): digest"
        ),
        "{text}"
    );
    // The JUnit report lists it too (system-out).
    assert!(
        text.contains(
            "changed conffiles (reported, not failed):\n  bash: /etc/bash.bashrc (conffile): digest"
        ),
        "{text}"
    );

    // A damaged md5sums file is an error naming it (one package: fast).
    replace(
        &fault,
        "var/lib/dpkg/info/munge.md5sums",
        b"0123456789abcdef0123456789abcdef  usr/sbin/munged\ngarbage\n",
    );
    let (status, text) = verify_one(f, "munge");
    assert_eq!(status, 1, "{text}");
    assert!(
        text.contains(
            "verify: could not verify all of 1 package: /var/lib/dpkg/info/munge.md5sums:2: \
             damaged: expected `<md5>  <path>`, got \"garbage\""
        ),
        "{text}"
    );
    assert!(text.contains("1 control error"), "{text}");
}

/// `verify = true` on one named package: exit status and terminal output.
fn verify_one(root: &Path, name: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("verify.toml");
    fs::write(
        &profile,
        format!(
            "[profile]\nname = \"verify\"\n[[control]]\nid = \"integrity\"\n\
             [[control.package]]\nname = \"{name}\"\nverify = true\n"
        ),
    )
    .unwrap();
    let o = nodecheck(&[
        "run",
        profile.to_str().unwrap(),
        "--target",
        root.to_str().unwrap(),
    ]);
    (code(&o), stdout(&o))
}

// ---- rpm ----------------------------------------------------------------

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

fn rpm(root: &Path, args: &[&str]) -> String {
    let o = Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args(["--dbpath", "/var/lib/rpm"])
        .args(args)
        .output()
        .unwrap();
    // rpm -V exits 1 when something differs.
    assert!(
        o.status.success() || args[0] == "-Va",
        "rpm {args:?}: {}",
        stderr(&o)
    );
    stdout(&o)
}

/// A package with a binary, a `%config` file, a `%ghost` file, a symlink,
/// a directory, a file owned by `daemon`, a `%doc` file (left out by
/// `--nodocs`) and a `missingok` one.
fn build_rpm(top: &Path) -> std::path::PathBuf {
    let spec = top.join("nc-verify.spec");
    fs::write(
        &spec,
        r#"Name: nc-verify
Version: 1.0
Release: 1
Summary: nodecheck verify test package
License: MIT
BuildArch: noarch
%description
Files of every kind rpm -V looks at.
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/etc %{buildroot}/var/lib/nc-verify %{buildroot}/usr/share/doc/nc-verify %{buildroot}/run
printf '#!/bin/sh\necho tool\n' > %{buildroot}/usr/bin/nc-tool
printf 'setting = 1\n' > %{buildroot}/etc/nc-verify.conf
printf 'secret\n' > %{buildroot}/etc/nc-secret
printf 'optional\n' > %{buildroot}/etc/nc-optional
printf 'docs\n' > %{buildroot}/usr/share/doc/nc-verify/README
printf 'data\n' > %{buildroot}/var/lib/nc-verify/data
ln -s nc-tool %{buildroot}/usr/bin/nc-tool-link
%files
%attr(0755, root, root) /usr/bin/nc-tool
/usr/bin/nc-tool-link
%config(noreplace) %attr(0644, root, root) /etc/nc-verify.conf
%attr(0640, daemon, daemon) /etc/nc-secret
%config(missingok) /etc/nc-optional
%ghost /run/nc-verify.pid
%dir %attr(0750, daemon, daemon) /var/lib/nc-verify
/var/lib/nc-verify/data
%doc /usr/share/doc/nc-verify/README
"#,
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
    assert!(o.status.success(), "rpmbuild: {}", stderr(&o));
    top.join("RPMS/noarch/nc-verify-1.0-1.noarch.rpm")
}

#[test]
fn verify_equals_rpm_va_with_modes_owners_links_and_flags() {
    if !have_rpm() || !is_root() {
        return;
    }
    let top = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let pkg = build_rpm(top.path());
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::write(
        r.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\nnobody:x:65534:65534::/:/bin/false\n",
    )
    .unwrap();
    fs::write(
        r.join("etc/group"),
        "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n",
    )
    .unwrap();
    rpm(r, &["--initdb"]);
    rpm(
        r,
        &[
            "-i",
            "--nodeps",
            "--noscripts",
            "--nodocs",
            pkg.to_str().unwrap(),
        ],
    );
    let rpm_va = |r: &Path| oracle_lines(&rpm(r, &["-Va", "--nodeps", "--noscripts"]));

    // Clean: both empty.
    let (status, ours, text) = nodecheck_verify(r, "");
    assert_eq!(ours, rpm_va(r));
    assert!(ours.is_empty(), "{ours:?}");
    assert_eq!(status, 0, "{text}");
    assert!(!r.join("usr/share/doc/nc-verify/README").exists());

    // Faults: a mode, an owner, a group, a link target, content of the
    // same size, a truncated file, a deleted file, a changed conffile and
    // a directory's mode.
    fs::set_permissions(r.join("usr/bin/nc-tool"), fs::Permissions::from_mode(0o777)).unwrap();
    nix::unistd::chown(&r.join("etc/nc-secret"), Some(65534.into()), None).unwrap();
    nix::unistd::chown(&r.join("var/lib/nc-verify/data"), None, Some(65534.into())).unwrap();
    fs::remove_file(r.join("usr/bin/nc-tool-link")).unwrap();
    symlink("/bin/sh", r.join("usr/bin/nc-tool-link")).unwrap();
    fs::write(r.join("etc/nc-verify.conf"), "setting = 2\n").unwrap();
    fs::write(r.join("var/lib/nc-verify/data"), "da").unwrap();
    fs::remove_file(r.join("etc/nc-optional")).unwrap();
    fs::set_permissions(
        r.join("var/lib/nc-verify"),
        fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    let before = fingerprint(r);
    let (status, ours, text) = nodecheck_verify(r, "");
    assert_same(&before, &fingerprint(r));
    let theirs = rpm_va(r);
    assert_eq!(ours, theirs, "{text}");
    for expected in [
        ("/usr/bin/nc-tool", false, "M"),
        ("/etc/nc-secret", false, "U"),
        ("/usr/bin/nc-tool-link", false, "L"),
        ("/var/lib/nc-verify", false, "M"),
    ] {
        let e = (expected.0.to_string(), expected.1, expected.2.to_string());
        assert!(ours.contains(&e), "{e:?} not in {ours:#?}");
    }
    // The edited conffile's digest differs; its mtime differs too unless
    // the edit fell in the second the package was built (rpm keeps
    // seconds), so `T` comes and goes with the clock — as in rpm -Va,
    // which `ours == theirs` above already holds us to.
    assert!(
        ours.iter()
            .any(|(p, conf, flags)| p == "/etc/nc-verify.conf" && *conf && flags.starts_with('5')),
        "{ours:#?}"
    );
    assert_eq!(status, 1, "{text}");
    assert!(
        text.contains("nc-verify: /usr/bin/nc-tool: mode 0755 → 0777"),
        "{text}"
    );
    assert!(
        text.contains("nc-verify: /etc/nc-secret: owner daemon → nobody"),
        "{text}"
    );

    // A damaged database is an error naming it, never a panic.
    let db = r.join("var/lib/rpm/rpmdb.sqlite");
    let mut bytes = fs::read(&db).unwrap();
    let n = bytes.len();
    bytes[100..n].fill(0x5a);
    fs::write(&db, bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("verify.toml");
    fs::write(
        &profile,
        "[profile]\nname = \"verify\"\n[[control]]\nid = \"integrity\"\n\
         [[control.package]]\nname = \"*\"\nverify = true\n",
    )
    .unwrap();
    let o = nodecheck(&[
        "run",
        profile.to_str().unwrap(),
        "--target",
        r.to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert_eq!(code(&o), 1, "{text}");
    assert!(
        text.contains("verify: could not verify all of 0 packages: /var/lib/rpm/rpmdb.sqlite: "),
        "{text}"
    );
}
