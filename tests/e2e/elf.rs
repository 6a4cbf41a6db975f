//! The `elf` and `library` kinds on the real Debian rootfs and on fault
//! copies of it, with the image's own dynamic loader as the oracle: `ldd`
//! (ld.so in trace mode) run in a chroot of the same tree must report the
//! same missing libraries and versions as nodecheck, for every ELF file.
//! `lddtree -R` (pax-utils) is compared too; each of its differences must
//! be one of its known mistakes, confirmed by ldd.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::*;

/// (file, library or version) pairs.
type Pairs = BTreeSet<(String, String)>;

/// What a loader (nodecheck, ldd, lddtree) says is wrong.
#[derive(Debug, Default, PartialEq)]
struct Findings {
    missing: Pairs,
    versions: Pairs,
}

const TREE_PROFILE: &str = r#"
[profile]
name = "elf-e2e"

[[control]]
id = "linkage"

  [[control.elf]]
  path            = ["/usr", "/opt"]
  recursive       = true
  resolves        = true
  symbol_versions = true
"#;

/// The checks of a report, flattened.
fn checks(report: &serde_json::Value) -> Vec<&serde_json::Value> {
    report["controls"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["checks"].as_array().unwrap())
        .collect()
}

/// Every chain line of the checks' outputs
/// (`  /usr/bin/x -> liba.so -> libb.so (not found)`), as findings. Lines
/// of libraries that resolve only where their programs load them count:
/// ldd loads each file alone, and so is compared with that.
fn nodecheck_findings(report: &serde_json::Value) -> Findings {
    let mut f = Findings::default();
    for c in checks(report) {
        for line in c["output"].as_str().unwrap_or("").lines() {
            let Some(l) = line.strip_prefix("  /") else {
                continue;
            };
            let l = l.split(" [resolves where ").next().unwrap();
            let Some(open) = l.find(" (") else { continue };
            let chain: Vec<&str> = l[..open].split(" -> ").collect();
            if chain.len() < 2 || !l.ends_with(')') {
                continue;
            }
            let file = format!("/{}", chain[0]);
            let detail = &l[open + 2..l.len() - 1];
            if detail.starts_with("not found") || detail.starts_with("not loadable") {
                f.missing.insert((file, chain[chain.len() - 1].to_string()));
            } else if let Some(rest) = detail
                .strip_prefix("versions ")
                .or_else(|| detail.strip_prefix("version "))
            {
                let names = rest.split(" not defined by ").next().unwrap();
                for v in names.split(", ") {
                    f.versions.insert((file.clone(), v.to_string()));
                }
            }
        }
    }
    f
}

/// The ELF executables and shared objects under `dirs` of `root`, found
/// independently of nodecheck: a walk and the first 18 bytes of each file.
fn elf_files(root: &Path, dirs: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for d in dirs {
        let top = root.join(d.trim_start_matches('/'));
        for e in walkdir::WalkDir::new(&top).sort_by_file_name() {
            let e = e.unwrap();
            if !e.file_type().is_file() {
                continue;
            }
            let mut head = [0u8; 18];
            let Ok(mut file) = fs::File::open(e.path()) else {
                continue;
            };
            if file.read_exact(&mut head).is_err() || &head[..4] != b"\x7fELF" {
                continue;
            }
            let e_type = if head[5] == 2 {
                u16::from_be_bytes([head[16], head[17]])
            } else {
                u16::from_le_bytes([head[16], head[17]])
            };
            if e_type == 2 || e_type == 3 {
                let rel = e.path().strip_prefix(root).unwrap();
                out.push(format!("/{}", rel.display()));
            }
        }
    }
    out
}

/// `ldd FILE` for every file, inside a chroot of `root`, two processes at
/// once. ldd runs the image's own ld.so in trace mode: nothing of the
/// image is executed but its loader, which is the oracle.
fn ldd(root: &Path, files: &[String]) -> Findings {
    let script = r#"for f; do echo "==> $f"; ldd "$f" 2>&1; done"#;
    let half = files.len().div_ceil(2).max(1);
    let children: Vec<_> = files
        .chunks(half)
        .map(|chunk| {
            Command::new("chroot")
                .arg(root)
                .args(["/bin/sh", "-c", script, "sh"])
                .args(chunk)
                .env("LC_ALL", "C")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("chroot runs (as root)")
        })
        .collect();
    let mut f = Findings::default();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut file = String::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("==> ") {
                file = name.to_string();
            } else if let Some(lib) = line.trim().strip_suffix(" => not found") {
                f.missing.insert((file.clone(), lib.to_string()));
            } else if let Some(i) = line.find("version `") {
                let rest = &line[i + 9..];
                if let Some(end) = rest.find("' not found") {
                    f.versions.insert((file.clone(), rest[..end].to_string()));
                }
            }
        }
    }
    f
}

/// `lddtree -R ROOT FILES`: what it reports as missing (`=> None`).
fn lddtree(root: &Path, files: &[String]) -> Option<Pairs> {
    // The Debian script needs python3-pyelftools; call the system Python
    // (a pyenv or venv `python3` first in PATH would lack it).
    let out = Command::new("/usr/bin/python3")
        .arg("/usr/bin/lddtree")
        .arg("-R")
        .arg(root)
        .args(files)
        .output()
        .ok()?;
    if !out.status.success() && out.stdout.is_empty() {
        eprintln!(
            "note: lddtree not usable: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let prefix = root.to_str().unwrap();
    let mut missing = Pairs::new();
    let mut file = String::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if !line.starts_with(' ') {
            let path = line.split(" (interpreter").next().unwrap();
            file = path.strip_prefix(prefix).unwrap_or(path).to_string();
        } else if let Some(lib) = line.trim().strip_suffix(" => None") {
            missing.insert((file.clone(), lib.to_string()));
        }
    }
    Some(missing)
}

fn readelf_dynamic(root: &Path, file: &str) -> String {
    let out = Command::new("readelf")
        .arg("-d")
        .arg(root.join(file.trim_start_matches('/')))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Why lddtree reports `lib` missing for `file` when ld.so finds it: its
/// known mistakes. `None`: unexplained.
fn lddtree_mistake(root: &Path, file: &str, lib: &str) -> Option<&'static str> {
    let dynamic = readelf_dynamic(root, file);
    if dynamic.contains("$ORIGIN") {
        return Some(
            "lddtree expands $ORIGIN to the host path and then prefixes the root again \
             (the gconv modules' RUNPATH $ORIGIN)",
        );
    }
    let _ = lib;
    None
}

/// Compares nodecheck with ldd (must agree) and lddtree (differences
/// must be explained) on `root`; returns nodecheck's findings.
fn compare(root: &Path, what: &str, with_lddtree: bool) -> (Findings, serde_json::Value) {
    let (_, report, out) = run_profile(root, TREE_PROFILE);
    let ours = nodecheck_findings(&report);
    let files = elf_files(root, &["/usr", "/opt"]);
    assert!(files.len() > 1000, "{what}: only {} ELF files", files.len());
    let oracle = ldd(root, &files);
    assert_eq!(
        ours, oracle,
        "{what}: nodecheck and ldd disagree (left: nodecheck, right: ldd)\n{out}"
    );
    if with_lddtree && let Some(theirs) = lddtree(root, &files) {
        let mut explained: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (file, lib) in theirs.symmetric_difference(&ours.missing) {
            let in_ldd = oracle.missing.contains(&(file.clone(), lib.clone()));
            let why = if in_ldd {
                None
            } else {
                lddtree_mistake(root, file, lib)
            };
            match why {
                Some(why) => explained
                    .entry(why)
                    .or_default()
                    .push(format!("{file} -> {lib}")),
                None => panic!(
                    "{what}: lddtree and nodecheck differ on {file} -> {lib} \
                     (ldd: {}), and no known lddtree mistake explains it",
                    if in_ldd { "missing" } else { "found" }
                ),
            }
        }
        for (why, items) in explained {
            eprintln!(
                "{what}: lddtree reports {} false misses: {why}: {}",
                items.len(),
                items.join(", ")
            );
        }
    }
    (ours, report)
}

fn needs_root_and_rootfs() -> Option<std::path::PathBuf> {
    let rootfs = reference_rootfs()?;
    if !is_root() {
        eprintln!("note: skipped, needs root (chroot for ldd, copies of the rootfs)");
        return None;
    }
    Some(rootfs)
}

#[test]
fn every_elf_under_usr_resolves_on_the_clean_rootfs() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    let (code, report, out) = run_profile(&rootfs, TREE_PROFILE);
    assert_eq!(code, 0, "{out}");
    let usr = checks(&report)
        .into_iter()
        .find(|c| c["subject"] == "/usr")
        .unwrap();
    for p in usr["properties"].as_array().unwrap() {
        assert_eq!(p["status"], "pass", "{p}");
        let msg = p["message"].as_str().unwrap();
        let n: usize = msg.split_whitespace().find_map(|w| w.parse().ok()).unwrap();
        assert!(n > 1000, "{msg}");
    }
    // The candidate rule (execute bit, shared-object names, data names
    // left alone) finds every ELF program and library that sniffing every
    // file finds.
    let output = usr["output"].as_str().unwrap();
    let line = output
        .lines()
        .find(|l| l.contains("files examined (candidates = \"loadable\")"))
        .unwrap_or_else(|| panic!("no counts in the output:\n{output}"));
    let elves: usize = line
        .split(", ")
        .nth(1)
        .and_then(|w| w.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert_eq!(elves, elf_files(&rootfs, &["/usr"]).len(), "{output}");
    assert!(output.contains("files skipped by name"), "{output}");
    assert!(
        output.contains("/usr/lib/modules not walked: the kernel's module tree"),
        "{output}"
    );
    // The compute profile's linkage part passes as well.
    let o = nodecheck(&[
        "run",
        "profiles/compute/linkage.toml",
        "--target",
        rootfs.to_str().unwrap(),
    ]);
    assert_eq!(crate::util::code(&o), 0, "{}", stdout(&o));
}

#[test]
fn nodecheck_agrees_with_ldd_on_the_clean_tree() {
    let Some(rootfs) = needs_root_and_rootfs() else {
        return;
    };
    // A copy, so that nothing a chroot'ed ldd might do reaches the cache.
    let fault = Fault::of(&rootfs);
    let (ours, _) = compare(fault.path(), "clean tree", true);
    // The only standalone miss of the clean image: systemd's private
    // library, found only through systemd's RUNPATH.
    assert!(
        ours.missing.iter().all(|(f, _)| f.contains("/systemd/")),
        "{ours:?}"
    );
}

#[test]
fn a_missing_hwloc_breaks_mpi_with_its_chain() {
    let Some(rootfs) = needs_root_and_rootfs() else {
        return;
    };
    let fault = Fault::of(&rootfs);
    let libdir = fault.path().join("usr/lib/x86_64-linux-gnu");
    let mut removed = 0;
    for e in fs::read_dir(&libdir).unwrap() {
        let e = e.unwrap();
        if e.file_name()
            .to_string_lossy()
            .starts_with("libhwloc.so.15")
        {
            fs::remove_file(e.path()).unwrap();
            removed += 1;
        }
    }
    assert!(removed > 0, "no libhwloc.so.15 in the rootfs");
    let (ours, report) = compare(fault.path(), "libhwloc removed", false);
    let out: String = checks(&report)
        .iter()
        .filter_map(|c| c["output"].as_str())
        .collect();
    assert!(
        out.contains("/usr/bin/orterun -> libopen-rte.so.40 -> libhwloc.so.15 (not found)"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("/libmpi.so.40") && l.ends_with("-> libhwloc.so.15 (not found)")),
        "{out}"
    );
    assert!(ours.missing.len() > 20, "{ours:?}");
    // Through the symlink the profile names, the chain starts there.
    let (code, report, out) = run_profile(
        fault.path(),
        r#"
[profile]
name = "mpi"
[[control]]
id = "mpirun"
  [[control.elf]]
  path     = "/usr/bin/mpirun"
  resolves = true
"#,
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        checks(&report)[0]["properties"][0]["message"],
        "resolves: /usr/bin/mpirun -> libopen-rte.so.40 -> libhwloc.so.15 (not found)"
    );
}

/// Compiles a Spack-like install in the tree with the image's own gcc:
/// `/opt/spack/app/bin/app` with RUNPATH `$ORIGIN/../lib`, needing
/// `libapp.so.1` from `/opt/spack/app/lib`.
fn build_spack_app(root: &Path) {
    let src = root.join("opt/spack/app/src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("lib.c"), "int app_answer(void) { return 42; }\n").unwrap();
    fs::write(
        src.join("main.c"),
        "#include <stdio.h>\nint app_answer(void);\nint main(void) { printf(\"%d\\n\", app_answer()); return 0; }\n",
    )
    .unwrap();
    let script = "cd /opt/spack/app && mkdir -p lib bin \
        && gcc -shared -fPIC -o lib/libapp.so.1 -Wl,-soname,libapp.so.1 src/lib.c \
        && gcc -o bin/app src/main.c lib/libapp.so.1 -Wl,--enable-new-dtags,-rpath,'$ORIGIN/../lib'";
    let o = Command::new("chroot")
        .arg(root)
        .args(["/bin/sh", "-c", script])
        .env("LC_ALL", "C")
        .env("TMPDIR", "/tmp")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(readelf_dynamic(root, "/opt/spack/app/bin/app").contains("[$ORIGIN/../lib]"));
}

/// A copy of `/usr/bin/ls` whose need for GLIBC_2.34 is patched to
/// GLIBC_2.99 (same length; the hash no longer matches either, and ld.so
/// compares both).
fn newer_tool(root: &Path) {
    let to = root.join("opt/bin/newer-tool");
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    let mut bytes = fs::read(root.join("usr/bin/ls")).unwrap();
    let needle = b"GLIBC_2.34\0";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("ls needs GLIBC_2.34");
    bytes[at..at + needle.len()].copy_from_slice(b"GLIBC_2.99\0");
    fs::write(&to, bytes).unwrap();
    fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn spack_origin_layout_and_a_too_new_binary() {
    let Some(rootfs) = needs_root_and_rootfs() else {
        return;
    };
    let fault = Fault::of(&rootfs);
    let root = fault.path();
    build_spack_app(root);
    newer_tool(root);
    let (ours, report) = compare(root, "spack app and newer tool", false);
    // The $ORIGIN layout resolves; the patched binary fails naming the
    // version, and only that.
    assert!(
        ours.missing.iter().all(|(f, _)| f.contains("/systemd/")),
        "{ours:?}"
    );
    assert_eq!(
        ours.versions,
        Pairs::from([("/opt/bin/newer-tool".into(), "GLIBC_2.99".into())])
    );
    let opt = checks(&report)
        .into_iter()
        .find(|c| c["subject"] == "/opt")
        .unwrap();
    assert_eq!(opt["properties"][0]["status"], "pass", "{opt}");
    assert_eq!(opt["properties"][1]["status"], "fail", "{opt}");
    let msg = opt["properties"][1]["message"].as_str().unwrap();
    assert!(msg.contains("/opt/bin/newer-tool (libc.so.6)"), "{msg}");
    assert!(
        opt["output"].as_str().unwrap().contains(
            "/opt/bin/newer-tool -> libc.so.6 (version GLIBC_2.99 not defined by /lib/x86_64-linux-gnu/libc.so.6)"
        ),
        "{opt}"
    );

    // Without its library the app fails, with the chain.
    fs::remove_file(root.join("opt/spack/app/lib/libapp.so.1")).unwrap();
    let (ours, report) = compare(root, "spack app without its lib", false);
    assert!(
        ours.missing
            .contains(&("/opt/spack/app/bin/app".into(), "libapp.so.1".into())),
        "{ours:?}"
    );
    assert_eq!(
        ours.missing
            .iter()
            .filter(|(f, _)| f.starts_with("/opt"))
            .count(),
        1
    );
    let opt = checks(&report)
        .into_iter()
        .find(|c| c["subject"] == "/opt")
        .unwrap();
    assert!(
        opt["output"]
            .as_str()
            .unwrap()
            .contains("/opt/spack/app/bin/app -> libapp.so.1 (not found)"),
        "{opt}"
    );
}

#[test]
fn libraries_of_phase_five_resolve() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    let (code, report, out) = run_profile(
        &rootfs,
        r#"
[profile]
name = "libs"
[[control]]
id = "libs"
  [[control.library]]
  name            = ["libssl.so.3", "libcrypto.so.3", "libX11.so.6", "libQt5Core.so.5"]
  resolves        = true
  symbol_versions = true
  loadable        = true
[[control]]
id = "absent"
  [[control.library]]
  name     = "libnot-there.so.7"
  resolves = false
"#,
    );
    let _ = out;
    for c in checks(&report) {
        for p in c["properties"].as_array().unwrap() {
            let want = if p["key"] == "loadable" {
                "skip"
            } else {
                "pass"
            };
            assert_eq!(p["status"], want, "{}: {p}", c["name"]);
        }
    }
    assert_eq!(code, 0);
}

#[test]
fn loadable_asks_the_real_loader_on_a_live_node() {
    // The node running the tests is the live target: libc loads, a
    // missing library fails with dlerror's text.
    let (code, report, out) = run_profile(
        Path::new("/"),
        r#"
[profile]
name = "live"
[[control]]
id = "libc"
  [[control.library]]
  name     = "libc.so.6"
  loadable = true
[[control]]
id = "none"
  [[control.library]]
  name     = "libnodecheck-none.so.1"
  loadable = true
"#,
    );
    assert_eq!(code, 1, "{out}");
    let c = checks(&report);
    assert_eq!(c[0]["properties"][0]["status"], "pass", "{}", c[0]);
    assert_eq!(c[1]["properties"][0]["status"], "fail");
    assert_eq!(
        c[1]["properties"][0]["message"],
        "loadable: dlopen(\"libnodecheck-none.so.1\", RTLD_NOW) failed: \
         libnodecheck-none.so.1: cannot open shared object file: No such file or directory"
    );
}
