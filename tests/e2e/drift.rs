//! `nodecheck snapshot` and `nodecheck diff` on real images: two
//! independent debootstrap builds of the reference rootfs differ only by
//! what the default ignore list documents; each fault class made on a
//! hard-link copy shows in its category with its risk; a damaged snapshot
//! is exit 2 naming the file.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::util::*;

/// `(category, risk, rule, subject)` of each change of a `--json -` diff.
fn changes(o: &std::process::Output) -> Vec<(String, String, String, String)> {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)));
    v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap().to_string();
            (s("category"), s("risk"), s("rule"), s("subject"))
        })
        .collect()
}

fn snapshot(root: &Path, out: &Path) {
    let o = nodecheck(&[
        "snapshot",
        root.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn rebuild_shows_nothing_but_the_documented_noise() {
    let (Some(a), Some(b)) = (reference_rootfs(), rebuilt_rootfs()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (sa, sb) = (dir.path().join("a.snap"), dir.path().join("b.snap"));
    snapshot(&a, &sa);
    snapshot(&b, &sb);
    // ≤ 5 MB for the reference (docs/snapshot.md).
    let size = fs::metadata(&sa).unwrap().len();
    assert!(size <= 5 << 20, "snapshot is {size} bytes");
    let o = nodecheck(&[
        "diff",
        sa.to_str().unwrap(),
        sb.to_str().unwrap(),
        "--json",
        "-",
    ]);
    let found = changes(&o);
    let loud: Vec<_> = found.iter().filter(|c| c.1 != "info").collect();
    assert!(
        loud.is_empty(),
        "a rebuild shows changes at or above low: {loud:#?}"
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Without the default list the noise is there: the list does work.
    let o = nodecheck(&[
        "diff",
        sa.to_str().unwrap(),
        sb.to_str().unwrap(),
        "--all",
        "--json",
        "-",
    ]);
    let all = changes(&o);
    assert!(
        all.iter().any(|c| c.3.starts_with("/etc/ssh/ssh_host_")),
        "two builds have different ssh host keys: {all:#?}"
    );
}

/// Replaces `rel` in the copy by a private file with `content` (the
/// hard link to the original is never written through).
fn replace(f: &Fault, rel: &str, content: &[u8]) {
    let p = f.detach(rel);
    let tmp = p.with_extension("nodecheck-new");
    fs::write(&tmp, content).unwrap();
    fs::set_permissions(&tmp, fs::metadata(&p).unwrap().permissions()).unwrap();
    fs::rename(&tmp, &p).unwrap();
}

fn chmod(f: &Fault, rel: &str, mode: u32) {
    let p = f.detach(rel);
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn each_fault_class_shows_in_its_category_with_its_risk() {
    let Some(root) = reference_rootfs() else {
        return;
    };
    let f = Fault::of(&root);
    // Module removed.
    let kernel = fs::read_dir(f.path().join("usr/lib/modules"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    let module = format!(
        "usr/lib/modules/{kernel}/kernel/drivers/net/ethernet/mellanox/mlx5/core/mlx5_core.ko"
    );
    let module = ["", ".xz", ".zst"]
        .iter()
        .map(|ext| format!("{module}{ext}"))
        .find(|m| f.path().join(m).exists())
        .expect("the reference kernel has mlx5_core");
    fs::remove_file(f.path().join(&module)).unwrap();
    // Library removed: munge's programs need it.
    for lib in ["libmunge.so.2", "libmunge.so.2.0.0"] {
        fs::remove_file(f.path().join("usr/lib/x86_64-linux-gnu").join(lib)).unwrap();
    }
    // Mode loosened, setuid gained.
    chmod(&f, "etc/shadow", 0o644);
    chmod(&f, "usr/bin/find", 0o4755);
    // Account added.
    let mut passwd = fs::read(f.path().join("etc/passwd")).unwrap();
    passwd.extend_from_slice(b"intruder:x:1500:1500::/home/intruder:/bin/bash\n");
    replace(&f, "etc/passwd", &passwd);
    // Unit disabled.
    fs::remove_file(
        f.path()
            .join("etc/systemd/system/multi-user.target.wants/ssh.service"),
    )
    .unwrap();
    // Package removed and another downgraded (the status database says so).
    let status = fs::read_to_string(f.path().join("var/lib/dpkg/status")).unwrap();
    let stanzas: Vec<&str> = status.split("\n\n").collect();
    let mut kept = Vec::new();
    for s in &stanzas {
        if s.starts_with("Package: lmod\n") {
            continue;
        }
        if s.starts_with("Package: munge\n") {
            let v = s.lines().find(|l| l.starts_with("Version: ")).unwrap();
            kept.push(s.replace(v, "Version: 0.1-1"));
            continue;
        }
        kept.push(s.to_string());
    }
    replace(&f, "var/lib/dpkg/status", kept.join("\n\n").as_bytes());
    // Config changed.
    let mut sshd = fs::read(f.path().join("etc/ssh/sshd_config")).unwrap();
    sshd.extend_from_slice(b"PermitRootLogin yes\n");
    replace(&f, "etc/ssh/sshd_config", &sshd);
    // A large file added (sparse: 80 MiB of zeros).
    let blob = fs::File::create(f.path().join("opt/blob.bin")).unwrap();
    blob.set_len(80 << 20).unwrap();
    drop(blob);

    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("diff.xml");
    let o = nodecheck(&[
        "diff",
        root.to_str().unwrap(),
        f.path().to_str().unwrap(),
        "--json",
        "-",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let found = changes(&o);
    let has = |cat: &str, risk: &str, rule: &str, subject: &str| {
        assert!(
            found
                .iter()
                .any(|c| c.0 == cat && c.1 == risk && c.2 == rule && c.3.contains(subject)),
            "no {cat}/{risk}/{rule} change of {subject}: {found:#?}"
        );
    };
    has(
        "kernels",
        "high",
        "module-removed",
        &format!("{kernel}/mlx5_core"),
    );
    has("linkage", "high", "linkage-broken", "/usr/sbin/munged");
    has("permissions", "medium", "mode-loosened", "/etc/shadow");
    has("permissions", "critical", "setuid-gained", "/usr/bin/find");
    has("accounts", "high", "account-added", "intruder");
    has(
        "units",
        "high",
        "unit-disabled",
        "multi-user.target.wants/ssh.service",
    );
    has("packages", "high", "package-removed", "lmod");
    has("packages", "high", "package-downgraded", "munge");
    has("files", "medium", "config-changed", "/etc/ssh/sshd_config");
    has("files", "medium", "large-file-added", "/opt/blob.bin");
    // JUnit: a testcase per category, the failing ones named.
    let xml = fs::read_to_string(&junit).unwrap();
    xmllint(&junit).unwrap();
    for cat in [
        "packages",
        "kernels",
        "units",
        "accounts",
        "permissions",
        "linkage",
        "files",
    ] {
        assert!(xml.contains(&format!("name=\"{cat}\"")), "{xml}");
    }
    // Terminal: meaning first, files last, summarised by directory.
    let o = nodecheck(&["diff", root.to_str().unwrap(), f.path().to_str().unwrap()]);
    let text = stdout(&o);
    let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("no {s:?} in {text}"));
    assert!(at("packages (") < at("permissions ("));
    assert!(at("permissions (") < at("files ("));
    assert!(
        text.contains("largest additions:") && text.contains("/opt/blob.bin"),
        "{text}"
    );
    // --fail-on critical still fails (setuid gained); an ignore file
    // silences the setuid path.
    let ignore = dir.path().join("ignore");
    fs::write(&ignore, "# site\n/usr/bin/find\n").unwrap();
    let o = nodecheck(&[
        "diff",
        root.to_str().unwrap(),
        f.path().to_str().unwrap(),
        "--fail-on",
        "critical",
        "--ignore",
        ignore.to_str().unwrap(),
        "--json",
        "-",
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(!changes(&o).iter().any(|c| c.3 == "/usr/bin/find"));

    // The baseline written from the good image fails on the fault copy,
    // in the control of each fault's area.
    let golden = dir.path().join("golden.toml");
    let o = nodecheck(&[
        "baseline",
        root.to_str().unwrap(),
        "-o",
        golden.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (status, o) = run_profile(&golden, f.path());
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    for id in [
        "packages-installed",
        "account-files-pinned",
        "privileged-files",
        "sensitive-files",
        "units-enabled",
        "kernel-modules",
        "elf-linkage",
    ] {
        assert_eq!(
            status.get(id).map(String::as_str),
            Some("fail"),
            "{id}: {status:?}\n{}",
            stdout(&o)
        );
    }
}

/// Runs a profile against a tree: each control's status, and the output.
fn run_profile(
    profile: &Path,
    root: &Path,
) -> (
    std::collections::BTreeMap<String, String>,
    std::process::Output,
) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let o = nodecheck(&[
        "run",
        profile.to_str().unwrap(),
        "--target",
        root.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&json).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&o), stderr(&o)));
    let status = v["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (status, o)
}

#[test]
fn a_baseline_passes_on_its_image_and_its_rebuild_and_reads_like_a_profile() {
    let Some(root) = reference_rootfs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let golden = dir.path().join("golden.toml");
    let o = nodecheck(&[
        "baseline",
        root.to_str().unwrap(),
        "-o",
        golden.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = fs::read_to_string(&golden).unwrap();
    let lines = text.lines().count();
    assert!(lines < 300, "{lines} lines:\n{text}");
    let o = nodecheck(&["validate", golden.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let (status, o) = run_profile(&golden, &root);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(status.values().all(|s| s == "pass"), "{status:?}");
    // An independent rebuild from the same package list passes too.
    if let Some(rebuilt) = rebuilt_rootfs() {
        let (status, o) = run_profile(&golden, &rebuilt);
        assert_eq!(code(&o), 0, "{}", stdout(&o));
        assert!(status.values().all(|s| s == "pass"), "{status:?}");
    }
    // Areas: only what was asked.
    let o = nodecheck(&[
        "baseline",
        root.to_str().unwrap(),
        "--areas",
        "units,kernel",
        "-o",
        golden.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (status, _) = run_profile(&golden, &root);
    assert_eq!(
        status.keys().map(String::as_str).collect::<Vec<_>>(),
        ["kernel-modules", "units-enabled"]
    );
    let o = nodecheck(&[
        "baseline",
        root.to_str().unwrap(),
        "--areas",
        "bogus",
        "-o",
        "x",
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

#[test]
fn a_damaged_snapshot_is_exit_2_naming_the_file() {
    let t = Tree::new();
    t.file("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\n")
        .file("etc/group", 0o644, "root:x:0:\n")
        .file("usr/bin/tool", 0o755, "#!/bin/sh\n")
        .link("usr/bin/alias", "tool");
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.snap");
    let o = nodecheck(&[
        "snapshot",
        t.path().to_str().unwrap(),
        "-o",
        good.to_str().unwrap(),
    ]);
    // No package database: recorded as an error, so not a success.
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no package database found"),
        "{}",
        stderr(&o)
    );
    let bytes = fs::read(&good).unwrap();
    // The same snapshot twice: no change, exit 0.
    let o = nodecheck(&["diff", good.to_str().unwrap(), good.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("no changes"), "{}", stdout(&o));

    let mut future = bytes.clone();
    future[8..12].copy_from_slice(&99u32.to_le_bytes());
    let mut corrupt = bytes.clone();
    let mid = corrupt.len() / 2;
    for b in &mut corrupt[mid..mid + 16] {
        *b ^= 0x5a;
    }
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "truncated.snap",
            bytes[..bytes.len() / 2].to_vec(),
            "corrupt or truncated",
        ),
        ("header.snap", bytes[..10].to_vec(), "truncated snapshot"),
        ("corrupt.snap", corrupt, "corrupt"),
        ("future.snap", future, "version 99 is newer"),
        (
            "other.snap",
            b"hello, world\n".to_vec(),
            "not a nodecheck snapshot",
        ),
    ];
    for (name, content, says) in cases {
        let p = dir.path().join(name);
        fs::write(&p, content).unwrap();
        let o = nodecheck(&["diff", p.to_str().unwrap(), good.to_str().unwrap()]);
        assert_eq!(code(&o), 2, "{name}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(p.to_str().unwrap()) && err.contains(says),
            "{name}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// File capabilities as `setcap` writes them: recorded in `getcap`'s form,
/// held to `tree`'s `capabilities` allow-list, and a gained one is critical.
#[test]
fn file_capabilities_are_recorded_allow_listed_and_diffed() {
    if !is_root() {
        return;
    }
    let setcap = |caps: &str, p: &Path| {
        let st = std::process::Command::new("setcap")
            .arg(caps)
            .arg(p)
            .status();
        assert!(
            st.is_ok_and(|s| s.success()),
            "setcap {caps} {}",
            p.display()
        );
    };
    let t = Tree::new();
    t.file("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\n")
        .file("etc/group", 0o644, "root:x:0:\n")
        .file("var/lib/dpkg/status", 0o644, "")
        .file("usr/bin/ping", 0o755, "ping")
        .file("usr/bin/tool", 0o755, "tool");
    setcap("cap_net_raw=ep", &t.path().join("usr/bin/ping"));
    let getcap = std::process::Command::new("getcap")
        .arg(t.path().join("usr/bin/ping"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&getcap.stdout).contains("cap_net_raw=ep"));
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.snap");
    snapshot(t.path(), &a);

    let profile = dir.path().join("caps.toml");
    let write = |allow: &str| {
        fs::write(
            &profile,
            format!(
                "[profile]\nname = \"caps\"\n[[control]]\nid = \"caps\"\n  [[control.tree]]\n  \
                 path = \"/\"\n  capabilities = [{allow}]\n"
            ),
        )
        .unwrap()
    };
    write("");
    let o = nodecheck(&[
        "run",
        profile.to_str().unwrap(),
        "--target",
        t.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("/usr/bin/ping (cap_net_raw=ep)"),
        "{}",
        stdout(&o)
    );
    write("\"/usr/bin/ping\"");
    let o = nodecheck(&[
        "run",
        profile.to_str().unwrap(),
        "--target",
        t.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));

    setcap(
        "cap_sys_admin,cap_net_admin=eip",
        &t.path().join("usr/bin/tool"),
    );
    let o = nodecheck(&[
        "diff",
        a.to_str().unwrap(),
        t.path().to_str().unwrap(),
        "--json",
        "-",
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let found = changes(&o);
    assert!(
        found
            .iter()
            .any(|c| c.1 == "critical" && c.2 == "capability-gained" && c.3 == "/usr/bin/tool"),
        "{found:#?}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let detail = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["rule"] == "capability-gained")
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(detail, "none → cap_net_admin,cap_sys_admin=eip");
}
