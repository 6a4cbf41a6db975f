//! The bundled profiles as a whole: compute.toml passes on the reference
//! Debian rootfs; each fault copy of it (one per requirement of the seeds'
//! test plan) fails exactly the control that covers it, with a message
//! naming the offender; and on a RHEL-family tree each platform-dependent
//! control takes its RHEL branch.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::*;

/// Runs `profile` on `target` with `--json`: exit code, report, terminal.
fn run_json(profile: &str, target: &Path) -> (i32, Value, String) {
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("r.json");
    let o = nodecheck(&[
        "run",
        profile,
        "--target",
        target.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert!(json.exists(), "no report (exit {}): {text}", code(&o));
    let report: Value = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    (code(&o), report, text)
}

fn controls(report: &Value) -> &Vec<Value> {
    report["controls"].as_array().unwrap()
}

fn control<'a>(report: &'a Value, id: &str) -> &'a Value {
    controls(report)
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no control {id}"))
}

/// Ids of the controls that failed or errored (waived ones included: a
/// waiver must not hide a fault either).
fn not_passing(report: &Value) -> Vec<String> {
    controls(report)
        .iter()
        .filter(|c| c["status"] == "fail" || c["status"] == "error")
        .filter(|c| c["id"] != "sshd-password-auth")
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every property message of a control, `status: message`.
fn messages(report: &Value, id: &str) -> Vec<String> {
    control(report, id)["checks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|k| k["properties"].as_array().unwrap().iter())
        .map(|p| {
            format!(
                "{}: {}",
                p["status"].as_str().unwrap(),
                p["message"].as_str().unwrap()
            )
        })
        .collect()
}

fn needs_root_and_rootfs() -> Option<std::path::PathBuf> {
    let rootfs = reference_rootfs()?;
    if !is_root() {
        eprintln!("note: skipped, needs root to copy the reference rootfs and run sandboxes");
        return None;
    }
    Some(rootfs)
}

#[test]
fn compute_profile_passes_on_the_reference_rootfs_with_the_debian_branches() {
    let Some(rootfs) = needs_root_and_rootfs() else {
        return;
    };
    // (That the image stays byte-identical is tested by base.rs and
    // exec.rs; fingerprinting it again here would double the cost.)
    let (code, report, text) = run_json("profiles/compute.toml", &rootfs);
    assert_eq!(code, 0, "{text}");
    assert_eq!(not_passing(&report), Vec::<String>::new(), "{text}");
    // The Debian branches ran, the RHEL ones were skipped with the reason.
    let setuid = messages(&report, "setuid-allow-list");
    assert!(
        setuid[0]
            .starts_with("pass: setuid: no setuid/setgid files outside the allow-list under /"),
        "{setuid:?}"
    );
    assert_eq!(
        setuid[1],
        "skip: not applicable: only for os rhel, centos; this is debian 12"
    );
    for id in [
        "no-world-writable",
        "no-unowned-files",
        "image-size",
        "kernel-module-tree",
        "site-linkage",
        "system-python",
        "module-tree",
        "sshd-password-auth-explicit",
    ] {
        assert_eq!(control(&report, id)["status"], "pass", "{id}: {text}");
    }
    // The module tree walk and the Python check did something.
    let tree = messages(&report, "module-tree").join("\n");
    assert!(tree.contains("modules load cleanly"), "{tree}");
    let py = messages(&report, "system-python").join("\n");
    assert!(py.contains("compiled in /usr/lib/python3"), "{py}");
}

/// A fault copy, what it breaks, the control that must fail and a text
/// its message must hold, and the other controls that must fail with it
/// (package-integrity, when the fault changes a packaged file).
struct Case {
    what: &'static str,
    /// Breaks the copy; returns the paths it touched (relative), which
    /// [`restore`] puts back as the original has them.
    make: fn(&Path) -> Vec<String>,
    control: &'static str,
    names: &'static str,
    also: &'static [&'static str],
}

fn world_writable(root: &Path) -> Vec<String> {
    let p = root.join("etc/nodecheck-site.conf");
    fs::write(&p, "x=1\n").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o666)).unwrap();
    vec!["etc/nodecheck-site.conf".into()]
}

fn extra_setuid(root: &Path) -> Vec<String> {
    let p = root.join("usr/local/bin/rootshell");
    fs::copy(root.join("usr/bin/ls"), &p).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o4755)).unwrap();
    vec!["usr/local/bin/rootshell".into()]
}

fn unowned(root: &Path) -> Vec<String> {
    let p = root.join("opt/orphan.txt");
    fs::write(&p, "left behind\n").unwrap();
    nix::unistd::chown(
        &p,
        Some(nix::unistd::Uid::from_raw(4242)),
        Some(nix::unistd::Gid::from_raw(4242)),
    )
    .unwrap();
    vec!["opt/orphan.txt".into()]
}

fn kernel_dir(root: &Path) -> std::path::PathBuf {
    let modules = root.join("lib/modules");
    let release = fs::read_dir(&modules)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    modules.join(release)
}

fn module_without_depmod(root: &Path) -> Vec<String> {
    let dir = kernel_dir(root);
    let xfs = walkdir::WalkDir::new(&dir)
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("xfs.ko"))
        .expect("the reference kernel has xfs");
    let name = xfs
        .file_name()
        .to_string_lossy()
        .replace("xfs", "nodecheck_extra");
    let extra = dir.join("nodecheck-extra");
    fs::create_dir_all(&extra).unwrap();
    // A copy, never a link to the original's file.
    fs::copy(xfs.path(), extra.join(name)).unwrap();
    vec![rel(root, &extra)]
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap().to_string_lossy().into_owned()
}

fn module_disabled(root: &Path) -> Vec<String> {
    fs::write(
        root.join("etc/modprobe.d/nodecheck-site.conf"),
        "# site policy\ninstall xfs /bin/false\n",
    )
    .unwrap();
    vec!["etc/modprobe.d/nodecheck-site.conf".into()]
}

/// A copy of `/usr/bin/ls` whose need for GLIBC_2.34 is patched to
/// GLIBC_2.99: built on a newer system than the image.
fn newer_site_binary(root: &Path) -> Vec<String> {
    let to = root.join("usr/local/bin/newer-tool");
    let mut bytes = fs::read(root.join("usr/bin/ls")).unwrap();
    let needle = b"GLIBC_2.34\0";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("ls needs GLIBC_2.34");
    bytes[at..at + needle.len()].copy_from_slice(b"GLIBC_2.99\0");
    fs::write(&to, bytes).unwrap();
    fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).unwrap();
    vec!["usr/local/bin/newer-tool".into()]
}

fn python_extension_deleted(root: &Path) -> Vec<String> {
    let dir = fs::read_dir(root.join("usr/lib"))
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("python3."))
        .expect("the reference rootfs has python3")
        .path()
        .join("lib-dynload");
    let ssl = fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("_ssl."))
        .expect("python has _ssl");
    // Removes the copy's link only; the original keeps its file.
    fs::remove_file(ssl.path()).unwrap();
    vec![rel(root, &ssl.path())]
}

fn broken_lmod_hierarchy(root: &Path) -> Vec<String> {
    // A Core modulefile that points its compiler's hierarchy at a
    // directory that was renamed away.
    let dir = root.join("etc/lmod/modules/gcc");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("12.lua"),
        "prepend_path(\"MODULEPATH\", \"/etc/lmod/modules/Compiler/gcc/12\")\n",
    )
    .unwrap();
    fs::create_dir_all(root.join("etc/lmod/modules/Compiler/gcc/12.2")).unwrap();
    vec![
        "etc/lmod/modules/gcc".into(),
        "etc/lmod/modules/Compiler".into(),
    ]
}

fn three_gb_file(root: &Path) -> Vec<String> {
    // Sparse: 3 GiB of apparent size, what a cpio of the image would hold.
    let f = fs::File::create(root.join("srv/core.dump")).unwrap();
    f.set_len(3 << 30).unwrap();
    vec!["srv/core.dump".into()]
}

/// Puts `rel` of the copy back as the original has it: what a fault
/// created goes, what it removed is linked in again (never written).
fn restore(copy: &Path, original: &Path, rel: &str) {
    let c = copy.join(rel);
    if let Ok(m) = c.symlink_metadata() {
        if m.is_dir() {
            fs::remove_dir_all(&c).unwrap();
        } else {
            fs::remove_file(&c).unwrap();
        }
    }
    let o = original.join(rel);
    if o.symlink_metadata().is_ok() {
        assert!(o.is_file(), "{rel}: only files are put back");
        fs::hard_link(&o, &c).unwrap();
    }
}

const CASES: &[Case] = &[
    Case {
        what: "a world-writable file in /etc",
        make: world_writable,
        control: "no-world-writable",
        names: "/etc/nodecheck-site.conf (0666)",
        also: &[],
    },
    Case {
        what: "an extra setuid binary",
        make: extra_setuid,
        control: "setuid-allow-list",
        names: "/usr/local/bin/rootshell (4755)",
        also: &[],
    },
    Case {
        what: "a file of an unknown owner",
        make: unowned,
        control: "no-unowned-files",
        names: "/opt/orphan.txt (uid 4242 and gid 4242 unknown)",
        also: &[],
    },
    Case {
        what: "a module copied in without depmod",
        make: module_without_depmod,
        control: "kernel-module-tree",
        names: "/nodecheck-extra/nodecheck_extra.ko",
        also: &[],
    },
    Case {
        what: "a module disabled in modprobe.d",
        make: module_disabled,
        control: "kmod-storage",
        names: "/etc/modprobe.d/nodecheck-site.conf:2: `install xfs /bin/false`",
        also: &[],
    },
    Case {
        what: "a site binary in /usr/local needing a newer glibc",
        make: newer_site_binary,
        control: "site-linkage",
        names: "/usr/local/bin/newer-tool",
        also: &[],
    },
    Case {
        what: "a deleted Python extension module",
        make: python_extension_deleted,
        control: "system-python",
        names: "got \"cannot import ssl…\"",
        // The deleted module is a file of libpython3.11-stdlib.
        also: &["package-integrity"],
    },
    Case {
        what: "a broken Lmod hierarchy",
        make: broken_lmod_hierarchy,
        control: "module-tree",
        names: "gcc/12 adds MODULEPATH /etc/lmod/modules/Compiler/gcc/12, which does not exist",
        also: &[],
    },
    Case {
        what: "a 3 GB file",
        make: three_gb_file,
        control: "image-size",
        names: "/srv/core.dump (3.0GiB)",
        also: &[],
    },
];

#[test]
fn each_fault_fails_the_right_control_naming_the_offender_and_nothing_else() {
    let Some(rootfs) = needs_root_and_rootfs() else {
        return;
    };
    let mut wrong = Vec::new();
    // One copy, each fault made and undone in turn: copying 28,000
    // entries costs more than a run of the profile.
    let fault = Fault::of(&rootfs);
    for case in CASES {
        let touched = (case.make)(fault.path());
        let (code, report, text) = run_json("profiles/compute.toml", fault.path());
        for t in &touched {
            restore(fault.path(), &rootfs, t);
        }
        let mut failed = not_passing(&report);
        failed.sort();
        let mut expected: Vec<&str> = case.also.to_vec();
        expected.push(case.control);
        expected.sort_unstable();
        let said = messages(&report, case.control).join("\n");
        if code != 1 || failed != expected || !said.contains(case.names) {
            wrong.push(format!(
                "{}: exit {code}, failed {failed:?}, expected only {expected:?}, {} naming {:?}; it said:\n{said}\n{text}",
                case.what, case.control, case.names
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    // The original is as it was.
    assert!(!rootfs.join("etc/nodecheck-site.conf").exists());
    assert!(!rootfs.join("srv/core.dump").exists());
}

#[test]
fn an_explicit_password_login_is_not_hidden_by_the_default_waiver() {
    let Some(rootfs) = needs_root_and_rootfs() else {
        return;
    };
    let fault = Fault::of(&rootfs);
    fs::write(
        fault.path().join("etc/ssh/sshd_config.d/50-site.conf"),
        "PasswordAuthentication yes\n",
    )
    .unwrap();
    let (code, report, text) = run_json("profiles/compute/services.toml", fault.path());
    assert_eq!(code, 1, "{text}");
    assert!(control(&report, "sshd-password-auth")["waived"].is_string());
    assert_eq!(
        control(&report, "sshd-password-auth-explicit")["status"],
        "fail",
        "{text}"
    );
    let said = messages(&report, "sshd-password-auth-explicit").join("\n");
    assert!(
        said.contains(
            "PasswordAuthentication: expected no, got yes (/etc/ssh/sshd_config.d/50-site.conf:1)"
        ),
        "{said}"
    );
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
            "rpm is missing: tests/deps.sh installs it"
        );
        eprintln!("note: skipped, rpm is not installed (tests/deps.sh installs it)");
    }
    ok
}

/// A Rocky 9 tree: os-release, the usr-merged /usr/lib64 layout, the
/// host's shell, an rpm database built with Debian's rpm holding the
/// packages compute.toml requires, the RHEL places of OpenMPI and
/// ssh-keysign.
fn rocky_tree() -> Tree {
    let t = Tree::new();
    let root = t.path();
    t.file(
        "usr/lib/os-release",
        0o644,
        "NAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\nPLATFORM_ID=\"platform:el9\"\n",
    );
    t.link("etc/os-release", "../usr/lib/os-release");
    for (l, to) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        t.link(l, to);
    }
    for d in [
        "usr/sbin",
        "usr/lib64/openmpi/bin",
        "etc/ssh",
        "tmp",
        "var/tmp",
        "var/lib/rpm",
        "usr/libexec/openssh",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::copy("/bin/dash", root.join("usr/bin/sh")).unwrap();
    t.file("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/bash\n");
    t.file("etc/group", 0o644, "root:x:0:\nssh_keys:x:998:\n");
    t.file("etc/shadow", 0o000, "root:*::0:99999:7:::\n");
    t.file("etc/gshadow", 0o000, "root:::\n");
    t.file("etc/hostname", 0o644, "node042\n");
    // RHEL 9's setgid ssh-keysign: in its list, not in Debian's.
    t.file("usr/libexec/openssh/ssh-keysign", 0o2755, "");
    // The packages compute.toml requires, as stand-in noarch RPMs
    // installed into the tree's own database.
    let top = tempfile::tempdir().unwrap();
    let mut rpms = Vec::new();
    for (name, version, release) in [
        ("openssh-server", "8.7p1", "34.el9"),
        ("munge", "0.5.13", "13.el9"),
    ] {
        let spec = top.path().join(format!("{name}.spec"));
        fs::write(
            &spec,
            format!(
                "Name: {name}\nVersion: {version}\nRelease: {release}\nSummary: stand-in\nLicense: MIT\n\
                 BuildArch: noarch\n%description\nA stand-in for nodecheck's tests.\n%files\n"
            ),
        )
        .unwrap();
        let o = Command::new("rpmbuild")
            .arg("--define")
            .arg(format!("_topdir {}", top.path().display()))
            .arg("--define")
            .arg(format!("_dbpath {}", top.path().join("builddb").display()))
            .args(["--quiet", "-bb"])
            .arg(&spec)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "rpmbuild: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        rpms.push(
            top.path()
                .join(format!("RPMS/noarch/{name}-{version}-{release}.noarch.rpm")),
        );
    }
    let o = Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args([
            "--dbpath",
            "/var/lib/rpm",
            "--nodeps",
            "--noscripts",
            "--ignorearch",
            "-i",
        ])
        .args(&rpms)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "rpm -i: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    t
}

#[test]
fn a_rhel_family_tree_takes_the_rhel_branches() {
    if !have_rpm() || !is_root() {
        return;
    }
    let t = rocky_tree();
    let root = t.path();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::set_permissions(root.join("var/tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    let (_, report, text) = run_json("profiles/compute.toml", root);
    let skip = |id: &str, n: usize| -> String {
        let k = &control(&report, id)["checks"][n];
        assert_eq!(k["status"], "skip", "{id} #{n}: {k:#}\n{text}");
        k["properties"][0]["message"].as_str().unwrap().to_string()
    };
    let ran = |id: &str, n: usize| {
        let k = &control(&report, id)["checks"][n];
        assert_ne!(
            k["status"], "skip",
            "{id} #{n} should be evaluated: {k:#}\n{text}"
        );
    };
    let debian_only =
        "not applicable: only for os debian; this is rocky 9.3 (like rhel centos fedora)";
    // setuid: the Debian list skipped, the RHEL list judged (and it allows
    // RHEL's setgid ssh-keysign).
    assert_eq!(skip("setuid-allow-list", 0), debian_only);
    ran("setuid-allow-list", 1);
    assert_eq!(
        control(&report, "setuid-allow-list")["status"],
        "pass",
        "{text}"
    );
    // MPI: the Debian alternatives names skipped, /usr/lib64/openmpi tried.
    for id in [
        "mpi-c[cc=gcc,mpi=openmpi]",
        "mpi-fortran[fc=gfortran,mpi=openmpi]",
    ] {
        assert_eq!(skip(id, 0), debian_only);
        ran(id, 1);
        assert_eq!(
            control(&report, id)["checks"][1]["subject"],
            if id.starts_with("mpi-c") {
                "/usr/lib64/openmpi/bin/mpicc"
            } else {
                "/usr/lib64/openmpi/bin/mpif90"
            }
        );
    }
    // Linkage: the Debian MPI tree is not there, the RHEL one is walked.
    assert_eq!(
        skip("elf-linkage", 2),
        "not applicable: only where /usr/lib/x86_64-linux-gnu/openmpi exists"
    );
    ran("elf-linkage", 3);
    // No Python in this tree: skipped, saying why.
    assert_eq!(
        control(&report, "system-python")["skip_reason"],
        "not applicable: only where /usr/bin/python3 exists"
    );
    // The package database is the rpm one: the packages are read from it,
    // with their RPM versions, never guessed.
    let pkgs = messages(&report, "required-packages").join("\n");
    assert_eq!(
        control(&report, "required-packages")["status"],
        "pass",
        "{pkgs}"
    );
    assert!(pkgs.contains("8.7p1-34.el9"), "{pkgs}");
    // The account and permission controls work on RHEL's 0000 shadow.
    for id in ["shadow-perms", "gshadow-perms", "single-uid0", "tmp-sticky"] {
        assert_eq!(control(&report, id)["status"], "pass", "{id}: {text}");
    }
}

#[test]
fn only_if_reads_arch_and_hostname_from_the_target() {
    if !have_rpm() {
        return;
    }
    let t = rocky_tree();
    let p = t.path().join("p.toml");
    let arch = std::env::consts::ARCH;
    fs::write(
        &p,
        format!("[profile]\nname = \"p\"\n\
         [[control]]\nid = \"x86\"\nonly_if = {{ arch = \"{arch}\", hostname = \"node[001-128]\"  }}\n  [[control.file]]\n  path = \"/etc/hostname\"\n  exists = true\n\
         [[control]]\nid = \"arm\"\nonly_if = {{ arch = \"aarch64\"  }}\n  [[control.file]]\n  path = \"/etc/hostname\"\n  exists = true\n\
         [[control]]\nid = \"gpu-nodes\"\nonly_if = {{ hostname = \"gpu[01-04]\"  }}\n  [[control.file]]\n  path = \"/etc/hostname\"\n  exists = true\n"),
    )
    .unwrap();
    let (code, report, text) = run_json(p.to_str().unwrap(), t.path());
    assert_eq!(code, 0, "{text}");
    assert_eq!(control(&report, "x86")["status"], "pass", "{text}");
    assert_eq!(
        control(&report, "arm")["skip_reason"],
        format!(
            "not applicable: only for arch aarch64; this is {}",
            std::env::consts::ARCH
        )
    );
    assert_eq!(
        control(&report, "gpu-nodes")["skip_reason"],
        "not applicable: only for hosts gpu[01-04]; this is node042"
    );
}

/// Control ids of the bundled profiles, from `nodecheck list`.
fn listed_ids(profiles: &[&str]) -> Vec<String> {
    let mut args = vec!["list"];
    args.extend(profiles);
    let o = nodecheck(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    stdout(&o)
        .lines()
        .filter(|l| !l.starts_with(char::is_whitespace) && !l.is_empty())
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn docs_profiles_md_lists_every_bundled_control() {
    let doc = fs::read_to_string(repo().join("docs/profiles.md")).unwrap();
    // The `id`s in the first cell of each table row.
    let documented: Vec<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .flat_map(|l| {
            let cell = l.split(" |").next().unwrap_or("");
            format!("`{cell}")
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut ids = listed_ids(&["profiles/compute.toml", "profiles/gpu.toml"]);
    ids.extend(listed_ids(&["profiles/nhc.toml"]));
    assert!(
        ids.len() > 40 && documented.len() > 40,
        "{ids:?} {documented:?}"
    );
    // Matrix expansions are documented once, as `compiler[cc=…]`.
    let base = |id: &str| id.split('[').next().unwrap().to_string();
    let documented_bases: Vec<String> = documented.iter().map(|d| base(d)).collect();
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| !documented_bases.contains(&base(id)))
        .collect();
    assert!(missing.is_empty(), "docs/profiles.md lacks {missing:?}");
    let ids_bases: Vec<String> = ids.iter().map(|i| base(i)).collect();
    let stale: Vec<&String> = documented
        .iter()
        .filter(|d| !ids_bases.contains(&base(d)))
        .collect();
    assert!(
        stale.is_empty(),
        "docs/profiles.md lists controls no profile has: {stale:?}"
    );
}
