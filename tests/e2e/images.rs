//! Packed images as targets: the oracle. The reference rootfs is packed with
//! the real tools (tests/images/pack.sh: `find | cpio -o -H newc | zstd`,
//! an early uncompressed cpio before a gzip one, `tar --xattrs`), cached
//! under /var/cache/nodecheck/images-KEY (KEY: the rootfs path, the tools'
//! versions and the script), and base.toml plus compute.toml must give
//! every check the outcome they give on the directory: as root; as an
//! unprivileged user with subordinate ids, programs included (they run in
//! the tree written out in a user namespace over those ids); as one
//! without, the static checks, programs skipped with the reason. A run
//! killed with SIGKILL leaves no written-out tree behind.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::util::{code, hex, is_root, nodecheck, reference_rootfs, repo, stderr};

/// The skip reason of programs for a user without subordinate ids.
const NO_SUBIDS: &str = "programs in a packed image need root or a subordinate id range for";

/// Kinds that run programs: skipped on a packed image with the reason.
const EXEC_KINDS: &[&str] = &["command", "compiler", "mpi", "module_system"];

fn version(tool: &str, arg: &str) -> String {
    Command::new(tool)
        .arg(arg)
        .output()
        .map(|o| {
            let all = [o.stdout, o.stderr].concat();
            String::from_utf8_lossy(&all)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_else(|_| format!("{tool} missing"))
}

/// The packed forms of the reference rootfs, built once (cached).
fn packed() -> Option<&'static PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = reference_rootfs()?;
        for tool in ["cpio", "zstd", "gzip", "tar", "mksquashfs", "lz4", "bzip2"] {
            if Command::new(tool).arg("--version").output().is_err() {
                eprintln!("skipped: {tool} is not installed (tests/deps.sh)");
                return None;
            }
        }
        let script = repo().join("tests/images/pack.sh");
        let mut key = Sha256::new();
        key.update(root.as_os_str().as_encoded_bytes());
        key.update(fs::read(&script).unwrap());
        for (tool, arg) in [
            ("cpio", "--version"),
            ("zstd", "--version"),
            ("gzip", "--version"),
            ("tar", "--version"),
            ("mksquashfs", "-version"),
            ("lz4", "--version"),
            ("bzip2", "--help"),
        ] {
            key.update(version(tool, arg).as_bytes());
        }
        let dir = PathBuf::from(format!(
            "/var/cache/nodecheck/images-{}",
            &hex(&key.finalize())[..16]
        ));
        let st = Command::new(&script).arg(&root).arg(&dir).status().unwrap();
        assert!(st.success(), "{} failed", script.display());
        Some(dir)
    })
    .as_ref()
}

/// Size, mtime and the sha256 of the first and last MiB: the image is
/// not changed by a run (a full hash of 1.2 GB would dominate the test).
fn stamp(path: &Path) -> (u64, i64, i64, String) {
    let md = fs::metadata(path).unwrap();
    let mut f = fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    let n = f.read(&mut buf).unwrap();
    h.update(&buf[..n]);
    f.seek(SeekFrom::End(-(md.len().min(1 << 20) as i64)))
        .unwrap();
    let n = f.read(&mut buf).unwrap();
    h.update(&buf[..n]);
    (md.len(), md.mtime(), md.mtime_nsec(), hex(&h.finalize()))
}

/// Trees written out for programs that are still in $TMPDIR.
fn tmp_trees() -> Vec<PathBuf> {
    fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("nodecheck-image-")
        })
        .map(|e| e.path())
        .collect()
}

type Outcomes = BTreeMap<String, (String, String)>;

/// Per check (control, kind, subject, line): status and first message.
fn outcomes(target: &str, json: &Path) -> Outcomes {
    outcomes_as(
        None,
        &["profiles/base.toml", "profiles/compute.toml"],
        target,
        json,
    )
}

/// The same for `profiles`.
fn outcomes_of(profiles: &[&str], target: &str, json: &Path) -> Outcomes {
    outcomes_as(None, profiles, target, json)
}

/// The same, run as `user` (through `setpriv`, groups cleared) when given.
fn outcomes_as(user: Option<&str>, profiles: &[&str], target: &str, json: &Path) -> Outcomes {
    let mut args = vec!["run"];
    args.extend(profiles);
    args.extend(["--target", target, "--json", json.to_str().unwrap()]);
    let o = match user {
        None => nodecheck(&args),
        Some(u) => Command::new("setpriv")
            .args([
                &format!("--reuid={u}"),
                &format!("--regid={u}"),
                "--clear-groups",
            ])
            .arg(env!("CARGO_BIN_EXE_nodecheck"))
            .args(&args)
            .env("NO_COLOR", "1")
            .current_dir(repo())
            .output()
            .unwrap(),
    };
    assert!(
        code(&o) == 0 || code(&o) == 1,
        "{target} (as {user:?}): exit {}: {}",
        code(&o),
        stderr(&o)
    );
    let report: serde_json::Value = serde_json::from_slice(&fs::read(json).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for c in report["controls"].as_array().unwrap() {
        for ch in c["checks"].as_array().unwrap() {
            let key = format!(
                "{} {} {} @{}",
                c["id"].as_str().unwrap(),
                ch["kind"].as_str().unwrap(),
                ch["subject"].as_str().unwrap(),
                ch["location"]["line"]
            );
            let msg = ch["properties"][0]["message"]
                .as_str()
                .unwrap_or("")
                .to_string();
            out.insert(key, (ch["status"].as_str().unwrap().to_string(), msg));
        }
    }
    out
}

/// This user's run on the reference directory: the oracle, computed once.
fn directory_outcomes(root: &Path) -> &'static Outcomes {
    static WANT: OnceLock<Outcomes> = OnceLock::new();
    WANT.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let want = outcomes(root.to_str().unwrap(), &tmp.path().join("dir.json"));
        assert!(want.len() > 50, "{want:?}");
        want
    })
}

fn runs_programs(key: &str) -> bool {
    EXEC_KINDS.iter().any(|k| key.contains(&format!(" {k} ")))
}

/// Compares a packed form's outcomes with the directory's. `exec`: how
/// programs must come out (`None`: as on the directory; `Some(reason)`:
/// skipped, the message starting with `reason`).
fn assert_same(form: &str, got: &Outcomes, want: &Outcomes, exec: Option<&str>) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{form}"
    );
    let mut programs = 0;
    for (key, (status, msg)) in got {
        if runs_programs(key) {
            programs += 1;
            // A check the directory run skipped too (its `only_if`) is
            // compared as any other.
            if let Some(reason) = exec.filter(|_| want[key].0 != "skip") {
                assert_eq!(status, "skip", "{form}: {key}: {msg}");
                assert!(msg.starts_with(reason), "{form}: {key}: {msg}");
                continue;
            }
        }
        // The early archive adds /kernel/x86/microcode/GenuineIntel.bin
        // (as dracut's does): a budget over the whole tree counts one
        // file more there, with the same verdict.
        if form.starts_with("early") && key.contains(" tree / ") {
            assert_eq!(status, &want[key].0, "{form}: {key}: {msg}");
            continue;
        }
        assert_eq!(
            (status, msg),
            (&want[key].0, &want[key].1),
            "{form}: {key} differs from the directory"
        );
    }
    assert!(programs >= 8, "{form}: only {programs} checks run programs");
}

#[test]
fn static_checks_give_the_directory_s_outcomes_on_every_packed_form() {
    let (Some(root), Some(dir)) = (reference_rootfs(), packed()) else {
        eprintln!("skipped: no reference rootfs (tests/rootfs/build.sh)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let want = directory_outcomes(&root);
    let host_trees = tmp_trees();
    for (form, target) in [
        ("tar", format!("tar:{}", dir.join("rootfs.tar").display())),
        (
            "cpio.zst",
            dir.join("rootfs.cpio.zst").display().to_string(),
        ),
        (
            "early+cpio.gz",
            dir.join("rootfs.early.cpio.gz").display().to_string(),
        ),
        // mksquashfs (zstd), known by its `hsqs` magic.
        ("squashfs", dir.join("rootfs.sqfs").display().to_string()),
    ] {
        let file = PathBuf::from(target.trim_start_matches("tar:"));
        let before = stamp(&file);
        let got = outcomes(&target, &tmp.path().join(format!("{form}.json")));
        assert_eq!(stamp(&file), before, "{form}: the image changed");
        // (Trees of other runs, of older builds, may come and go.)
        let leftover: Vec<_> = tmp_trees()
            .into_iter()
            .filter(|t| !host_trees.contains(t))
            .collect();
        assert!(
            leftover.is_empty(),
            "{form}: written-out trees left behind: {leftover:?}"
        );
        // As root, programs run in the tree written out once per run:
        // compilers, MPI and Lmod give the directory's outcomes too.
        // (Unprivileged, the suite's own user may or may not have
        // subordinate ids; the test below covers both with users of its
        // own.)
        let exec = (!is_root()
            && got
                .iter()
                .any(|(k, (s, _))| runs_programs(k) && s == "skip"))
        .then_some("programs in a packed image need root");
        assert_same(form, &got, want, exec);
    }
}

/// The test users (tests/images/users.sh), made when missing.
fn test_users() -> Result<(), String> {
    let exists = |u: &str| {
        Command::new("id")
            .arg(u)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !(exists("nc-subids") && exists("nc-nosubids")) {
        let st = Command::new(repo().join("tests/images/users.sh"))
            .status()
            .map_err(|e| format!("tests/images/users.sh: {e}"))?;
        if !st.success() {
            return Err(format!("tests/images/users.sh: {st}"));
        }
    }
    for prog in ["/usr/bin/newuidmap", "/usr/bin/newgidmap"] {
        if !Path::new(prog).exists() {
            return Err(format!(
                "{prog} is missing (apt-get install uidmap; tests/deps.sh)"
            ));
        }
    }
    Ok(())
}

/// Whether `user` can read `path` (and so reach it).
fn readable_by(user: &str, path: &Path) -> bool {
    Command::new("setpriv")
        .args([
            &format!("--reuid={user}"),
            &format!("--regid={user}"),
            "--clear-groups",
            "test",
            "-r",
        ])
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn unprivileged_users_get_the_directory_s_outcomes_or_the_reason() {
    let (Some(root), Some(dir)) = (reference_rootfs(), packed()) else {
        eprintln!("skipped: no reference rootfs (tests/rootfs/build.sh)");
        return;
    };
    if !is_root() {
        eprintln!("skipped: making the test users and root's oracle need root");
        return;
    }
    test_users().unwrap();
    let exe = Path::new(env!("CARGO_BIN_EXE_nodecheck"));
    for u in ["nc-subids", "nc-nosubids"] {
        if !readable_by(u, exe) || !readable_by(u, &repo().join("profiles/base.toml")) {
            eprintln!("note: skipped, {u} cannot reach the binary or the profiles");
            return;
        }
    }
    let want = directory_outcomes(&root);
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o777)).unwrap();
    // With subordinate ids: every check, programs included, as root's
    // run on the directory (the directory itself is unreadable to this
    // user in places; the archive is not): a tar read in place, and a
    // compressed cpio whose tree is written from a second pass over its
    // stream and then read from there (the spill where a mode bars the
    // caller).
    for (form, target, file) in [
        ("tar as nc-subids", "tar:", "rootfs.tar"),
        ("cpio.zst as nc-subids", "", "rootfs.cpio.zst"),
    ] {
        let file = dir.join(file);
        let before = stamp(&file);
        let got = outcomes_as(
            Some("nc-subids"),
            &["profiles/base.toml", "profiles/compute.toml"],
            &format!("{target}{}", file.display()),
            &tmp.path().join(format!("{form}.json").replace(' ', "-")),
        );
        assert_eq!(stamp(&file), before, "{form}: the image changed");
        let ran = got
            .iter()
            .filter(|(k, (s, _))| runs_programs(k) && s != "skip")
            .count();
        if ran == 0 {
            // The kernel refuses unprivileged user namespaces here: say so
            // loudly, and check that the reason says it.
            let (_, (_, msg)) = got.iter().find(|(k, _)| runs_programs(k)).unwrap();
            eprintln!("note: unprivileged user namespaces are off here: {msg}");
            assert_same(
                form,
                &got,
                want,
                Some("programs in a packed image need root"),
            );
        } else {
            assert_same(form, &got, want, None);
        }
    }
    // Without: the static checks on each other packed form, read in
    // place from the cache (0644 files under 0755 directories: nothing is
    // copied), programs skipped with the reason.
    let reason = format!("{NO_SUBIDS} nc-nosubids (/etc/subuid)");
    let both = ["profiles/base.toml", "profiles/compute.toml"];
    for (form, file) in [
        ("cpio.zst as nc-nosubids", "rootfs.cpio.zst"),
        ("early+cpio.gz as nc-nosubids", "rootfs.early.cpio.gz"),
        ("cpio.lz4 as nc-nosubids", "rootfs.cpio.lz4"),
        ("cpio.bz2 as nc-nosubids", "rootfs.cpio.bz2"),
        ("squashfs as nc-nosubids", "rootfs.sqfs"),
    ] {
        let file = dir.join(file);
        assert!(readable_by("nc-nosubids", &file), "{form}: unreadable");
        let json = tmp.path().join(format!("{form}.json").replace(' ', "-"));
        let got = outcomes_as(Some("nc-nosubids"), &both, file.to_str().unwrap(), &json);
        assert_same(form, &got, want, Some(&reason));
    }
    // podman's OCI layout, oci-archive and docker-archive (built as root
    // by the test above or here, cached): the directory's outcomes but
    // for the file the second layer deletes.
    let Some(p) = podman() else {
        eprintln!("note: podman's forms skipped: podman is not installed (tests/deps.sh)");
        return;
    };
    for (form, target, files) in p.forms() {
        for f in &files {
            assert!(readable_by("nc-nosubids", f), "{form}: {f:?} unreadable");
        }
        let json = tmp.path().join(format!("{form}.json"));
        let got = outcomes_as(Some("nc-nosubids"), &both, &target, &json);
        let form = format!("{form} as nc-nosubids");
        assert_podman_same(&form, &got, want, &p.gone, Some(&reason));
    }
}

/// Runs `nodecheck run profiles/base.toml --target TARGET` as `user`.
fn run_as(user: &str, target: &str) -> std::process::Output {
    Command::new("setpriv")
        .args([
            &format!("--reuid={user}"),
            &format!("--regid={user}"),
            "--clear-groups",
        ])
        .arg(env!("CARGO_BIN_EXE_nodecheck"))
        .args(["run", "profiles/base.toml", "--target", target])
        .env("NO_COLOR", "1")
        .current_dir(repo())
        .output()
        .unwrap()
}

#[test]
fn an_image_the_user_cannot_read_is_a_clear_error() {
    if !is_root() {
        eprintln!("skipped: making files another user cannot read needs root");
        return;
    }
    test_users().unwrap();
    let exe = Path::new(env!("CARGO_BIN_EXE_nodecheck"));
    if !readable_by("nc-nosubids", exe)
        || !readable_by("nc-nosubids", &repo().join("profiles/base.toml"))
    {
        eprintln!("note: skipped, nc-nosubids cannot reach the binary or the profiles");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // A file root alone may read: a cpio by its magic, and a squashfs.
    let cpio = tmp.path().join("secret.cpio");
    fs::write(&cpio, b"070701").unwrap();
    let sqfs = tmp.path().join("secret.sqfs");
    fs::write(&sqfs, b"hsqs").unwrap();
    // An OCI layout directory it cannot enter, and one whose blobs it
    // cannot enter.
    let layout = tmp.path().join("layout");
    let open = tmp.path().join("open");
    for d in [&layout, &open] {
        fs::create_dir_all(d.join("blobs/sha256")).unwrap();
        fs::write(d.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        fs::write(
            d.join("index.json"),
            format!(
                r#"{{"schemaVersion":2,"manifests":[{{"digest":"sha256:{}"}}]}}"#,
                "0".repeat(64)
            ),
        )
        .unwrap();
    }
    for f in [&cpio, &sqfs] {
        fs::set_permissions(f, fs::Permissions::from_mode(0o600)).unwrap();
    }
    fs::set_permissions(&layout, fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(open.join("blobs"), fs::Permissions::from_mode(0o700)).unwrap();
    for (target, names) in [
        (cpio.display().to_string(), cpio.display().to_string()),
        (
            format!("cpio:{}", cpio.display()),
            cpio.display().to_string(),
        ),
        (sqfs.display().to_string(), sqfs.display().to_string()),
        (
            format!("squashfs:{}", sqfs.display()),
            sqfs.display().to_string(),
        ),
        (
            format!("tar:{}", cpio.display()),
            cpio.display().to_string(),
        ),
        (
            format!("oci-archive:{}", cpio.display()),
            cpio.display().to_string(),
        ),
        (
            format!("docker-archive:{}", cpio.display()),
            cpio.display().to_string(),
        ),
        (layout.display().to_string(), layout.display().to_string()),
        (
            format!("oci:{}", layout.display()),
            layout.display().to_string(),
        ),
        (
            format!("oci:{}", open.display()),
            open.display().to_string(),
        ),
    ] {
        let o = run_as("nc-nosubids", &target);
        let err = stderr(&o);
        assert_eq!(code(&o), 3, "{target}: {err}");
        assert!(!err.contains("panicked"), "{target}: {err}");
        assert!(
            err.contains(&names),
            "{target}: the error names no file: {err}"
        );
        assert!(
            err.contains("Permission denied") || err.contains("permission denied"),
            "{target}: the error does not say why: {err}"
        );
    }
}

/// Pids whose command line holds `needle`.
fn pids_with(needle: &str) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = fs::read(e.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmd)
                .replace('\0', " ")
                .contains(needle)
                .then_some(pid)
        })
        .collect()
}

/// Whether `pid` is gone (or a zombie: it holds no namespace then).
fn gone(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

#[test]
fn a_run_killed_with_sigkill_leaves_no_written_tree() {
    let Some(dir) = packed() else {
        eprintln!("skipped: no reference rootfs (tests/rootfs/build.sh)");
        return;
    };
    if !is_root() {
        eprintln!("skipped: as root (unprivileged, the holder is the same process)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let private_tmp = tmp.path().join("tmp");
    fs::create_dir(&private_tmp).unwrap();
    let profile = tmp.path().join("sleep.toml");
    // compute.toml's programs, then one that holds the run while it is
    // killed.
    fs::write(
        &profile,
        format!(
            "[profile]\nname = \"killed\"\ninclude = [\"{}\"]\n\n             [[control]]\nid = \"holds\"\ntimeout = \"300s\"\n  [[control.command]]\n  run = \"sleep 987123\"\n",
            repo().join("profiles/compute/toolchain.toml").display()
        ),
    )
    .unwrap();
    let tar = dir.join("rootfs.tar");
    let before = stamp(&tar);
    let host_trees = tmp_trees();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nodecheck"))
        .args(["run", profile.to_str().unwrap(), "--target"])
        .arg(format!("tar:{}", tar.display()))
        .env("TMPDIR", &private_tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    // The tree is written once `sleep` runs over it.
    let start = Instant::now();
    let (holder, sleeper) = loop {
        let holders: Vec<i32> = pids_with("__nodecheck-helper image-tree")
            .into_iter()
            .filter(|h| {
                fs::read_to_string(format!("/proc/{h}/stat"))
                    .ok()
                    .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.to_string()))
                    .and_then(|r| {
                        r.split_whitespace()
                            .nth(1)
                            .and_then(|p| p.parse::<i32>().ok())
                    })
                    == Some(pid)
            })
            .collect();
        let sleepers = pids_with("sleep 987123");
        if let (Some(&h), Some(&s)) = (holders.first(), sleepers.first()) {
            break (h, s);
        }
        assert!(
            start.elapsed() < Duration::from_secs(400),
            "the run never got to its command"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(200));
    };
    let mnt = fs::read_link(format!("/proc/{holder}/ns/mnt")).unwrap();
    // The tree is there, in the holder's namespace only.
    assert!(Path::new(&format!("/proc/{holder}/root/tmp/root/etc/passwd")).exists());
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    loop {
        let in_ns: Vec<String> = fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| fs::read_link(e.path().join("ns/mnt")).is_ok_and(|m| m == mnt))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if gone(holder) && gone(sleeper) && in_ns.is_empty() {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(3),
            "3s after SIGKILL: holder gone {}, sleep gone {}, still in the tree's namespace {in_ns:?}",
            gone(holder),
            gone(sleeper)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Nothing on disk: not in the run's TMPDIR, not in the host's.
    assert_eq!(fs::read_dir(&private_tmp).unwrap().count(), 0);
    let leftover: Vec<_> = tmp_trees()
        .into_iter()
        .filter(|t| !host_trees.contains(t))
        .collect();
    assert!(leftover.is_empty(), "{leftover:?}");
    assert_eq!(stamp(&tar), before, "the image changed");
}

#[test]
fn image_kind_and_explicit_forms_on_the_packed_reference() {
    let Some(dir) = packed() else {
        eprintln!("skipped: no reference rootfs (tests/rootfs/build.sh)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("image.toml");
    fs::write(
        &profile,
        r#"
[profile]
name = "packed"

[[control]]
id = "packed"
title = "The packed reference"

  [[control.image]]
  format            = "cpio"
  compression       = "none+gzip"
  uncompressed_size = { le = "2GiB" }
  entries           = { ge = "20000" }
  init              = true

[[control]]
id = "budget"
title = "No file over 1 MiB"

  [[control.image]]
  max_file_size = { le = "1MiB" }
"#,
    )
    .unwrap();
    let gz = dir.join("rootfs.early.cpio.gz");
    let json = tmp.path().join("r.json");
    let o = nodecheck(&[
        "run",
        profile.to_str().unwrap(),
        "--target",
        &format!("cpio:{}", gz.display()),
        "--json",
        json.to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    let c = &report["controls"];
    let props = |i: usize| c[i]["checks"][0]["properties"].as_array().unwrap().clone();
    // The reference has no /init (it is a rootfs, not an initramfs): the
    // kernel could not start this cpio, and the check says so.
    for p in props(0) {
        let (k, s) = (p["key"].as_str().unwrap(), p["status"].as_str().unwrap());
        let want = if k == "init" { "fail" } else { "pass" };
        assert_eq!(s, want, "{k}: {}", p["message"]);
    }
    let budget = &props(1)[0];
    assert_eq!(budget["status"], "fail");
    assert!(
        budget["message"].as_str().unwrap().contains("/usr/"),
        "{}",
        budget["message"]
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        report["target"]["description"]
            .as_str()
            .unwrap()
            .starts_with("cpio:"),
        "{}",
        report["target"]
    );

    // A truncated copy: exit 3 naming the image, never a panic.
    let cut = tmp.path().join("cut.cpio.zst");
    let mut bytes = vec![0; 4 << 20];
    let n = fs::File::open(dir.join("rootfs.cpio.zst"))
        .unwrap()
        .read(&mut bytes)
        .unwrap();
    fs::write(&cut, &bytes[..n]).unwrap();
    let o = nodecheck(&[
        "run",
        "profiles/base.toml",
        "--target",
        cut.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("cut.cpio.zst"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

/// The reference rootfs built into an OCI image by the real `podman build`
/// (tests/images/podman.sh: `FROM scratch`, the rootfs ADDed as a tarball,
/// one file deleted by a second layer), saved as an OCI layout, an
/// oci-archive and a docker-archive. Cached by the script.
struct Podman {
    dir: PathBuf,
    /// The file the second layer deletes (a whiteout).
    gone: String,
}

fn podman() -> Option<&'static Podman> {
    static P: OnceLock<Option<Podman>> = OnceLock::new();
    P.get_or_init(|| {
        let root = reference_rootfs()?;
        if Command::new("podman").arg("--version").output().is_err() {
            eprintln!("skipped: podman is not installed (tests/deps.sh)");
            return None;
        }
        // The tar pack.sh made is the build context's tarball (hard-linked).
        let tar = packed().map(|d| d.join("rootfs.tar"));
        let o = Command::new(repo().join("tests/images/podman.sh"))
            .arg(&root)
            .args(tar)
            .output()
            .unwrap();
        if !o.status.success() && !is_root() {
            // Building takes a rootful podman; unprivileged, the tests use
            // the images a root run cached, or say why they cannot.
            eprintln!(
                "skipped: the podman images are built as root (tests/images/podman.sh): {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return None;
        }
        assert!(
            o.status.success(),
            "tests/images/podman.sh failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let dir = PathBuf::from(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .last()
                .unwrap()
                .trim(),
        );
        let gone = fs::read_to_string(dir.join("gone"))
            .unwrap()
            .trim()
            .to_string();
        Some(Podman { dir, gone })
    })
    .as_ref()
}

impl Podman {
    /// Each form as a target, with the files it is made of.
    fn forms(&self) -> Vec<(&'static str, String, Vec<PathBuf>)> {
        let layout = self.dir.join("oci");
        let mut files = vec![layout.join("index.json"), layout.join("oci-layout")];
        for e in fs::read_dir(layout.join("blobs/sha256")).unwrap() {
            files.push(e.unwrap().path());
        }
        files.sort();
        let archive = self.dir.join("oracle.oci.tar");
        let docker = self.dir.join("oracle.docker.tar");
        vec![
            ("oci", format!("oci:{}", layout.display()), files),
            (
                "oci-archive",
                format!("oci-archive:{}", archive.display()),
                vec![archive],
            ),
            (
                "docker-archive",
                format!("docker-archive:{}", docker.display()),
                vec![docker],
            ),
        ]
    }
}

/// The directory's outcomes under base.toml and compute.toml, once for the
/// tests that compare with them.
fn reference_outcomes() -> Option<&'static Outcomes> {
    Some(directory_outcomes(&reference_rootfs()?))
}

#[test]
fn the_full_compute_profile_gives_the_directory_s_outcomes_on_podman_s_images() {
    let (Some(want), Some(p)) = (reference_outcomes(), podman()) else {
        eprintln!("skipped: no reference rootfs (tests/rootfs/build.sh) or no podman");
        return;
    };
    assert!(want.len() > 50, "{want:?}");
    let tmp = tempfile::tempdir().unwrap();
    for (form, target, files) in p.forms() {
        let before: Vec<_> = files.iter().map(|f| stamp(f)).collect();
        let got = outcomes(&target, &tmp.path().join(format!("{form}.json")));
        let after: Vec<_> = files.iter().map(|f| stamp(f)).collect();
        assert_eq!(after, before, "{form}: the image changed");
        let leftover = tmp_trees();
        assert!(
            leftover.is_empty(),
            "{form}: written-out trees left behind: {leftover:?}"
        );
        // Unprivileged, programs skip (the reason is the unprivileged
        // test's to check).
        let exec = (!is_root()).then_some("");
        assert_podman_same(form, &got, want, &p.gone, exec);
    }
}

/// Compares outcomes on one of podman's images with the directory's: the
/// same but for the file the second layer deleted. `exec` as in
/// `assert_same`.
fn assert_podman_same(form: &str, got: &Outcomes, want: &Outcomes, gone: &str, exec: Option<&str>) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{form}"
    );
    let (mut programs, mut verified) = (0, false);
    for (key, (status, msg)) in got {
        let (want_status, want_msg) = &want[key];
        if runs_programs(key) {
            programs += 1;
            // A check the directory run skipped too (its `only_if`) is
            // compared as any other.
            if let Some(reason) = exec.filter(|_| want_status != "skip") {
                assert_eq!(status, "skip", "{form}: {key}: {msg}");
                assert!(msg.starts_with(reason), "{form}: {key}: {msg}");
                continue;
            }
        }
        // The one difference: the second layer deleted a file of
        // base-files. The package database still lists it, so package
        // verification names exactly that file, and only that file…
        if key.contains(" package * ") && key.starts_with("package-integrity ") {
            assert_eq!(want_status, "pass", "directory: {key}: {want_msg}");
            assert_eq!(status, "fail", "{form}: {key}: {msg}");
            assert!(
                msg.starts_with("verify: 1 of ")
                    && msg.ends_with(&format!("base-files: {gone}: missing")),
                "{form}: {key}: {msg}"
            );
            verified = true;
            continue;
        }
        // …and the budgets over the whole tree count one entry fewer,
        // with the same verdict.
        if key.contains(" tree / ") {
            assert_eq!(status, want_status, "{form}: {key}: {msg}");
            continue;
        }
        // Everything else, programs included (as root they run in the
        // tree written out once per run), is the directory's answer.
        assert_eq!(
            (status, msg),
            (want_status, want_msg),
            "{form}: {key} differs from the directory"
        );
    }
    assert!(verified, "{form}: no package-integrity check ran");
    assert!(programs >= 8, "{form}: only {programs} checks run programs");
}

/// The report's `target` for `target` under `profile`, and the whole report.
fn podman_run(
    profile: &Path,
    target: &str,
    extra: &[&str],
    dir: &Path,
) -> (i32, serde_json::Value, String) {
    let json = dir.join("r.json");
    let junit = dir.join("r.xml");
    let prom = dir.join("r.prom");
    let mut args = vec![
        "run",
        profile.to_str().unwrap(),
        "--target",
        target,
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--prometheus",
        prom.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = nodecheck(&args);
    assert!(
        code(&o) == 0 || code(&o) == 1,
        "{target}: exit {}: {}",
        code(&o),
        stderr(&o)
    );
    let report: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    let side = format!(
        "{}\n{}\n{}",
        fs::read_to_string(&junit).unwrap(),
        fs::read_to_string(&prom).unwrap(),
        crate::util::stdout(&o)
    );
    (code(&o), report, side)
}

fn sha256_file(path: &Path) -> String {
    let mut f = fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex(&h.finalize())
}

#[test]
fn image_kind_and_identity_on_podman_s_images() {
    let Some(p) = podman() else {
        eprintln!("skipped: no reference rootfs (tests/rootfs/build.sh) or no podman");
        return;
    };
    // What the Containerfile set (tests/images/podman.sh), and the deleted
    // file: gone from every form.
    let right = |format: &str| {
        format!(
            r#"
[profile]
name = "podman"

[[control]]
id = "config"
title = "The config the Containerfile wrote"

  [[control.image]]
  format        = "{format}"
  layers        = {{ eq = "2" }}
  env           = {{ NODECHECK_ORACLE = "podman", PATH = {{ contains = "/usr/sbin" }} }}
  entrypoint    = "/bin/sh -c"
  cmd           = "exec true"
  user          = "0:0"
  workdir       = "/root"
  labels        = {{ "org.opencontainers.image.title" = "nodecheck reference", "site.role" = "compute" }}
  exposed_ports = ["8080/tcp", "9100/udp"]

[[control]]
id = "whiteout"
title = "The second layer's deletion holds"

  [[control.file]]
  path   = "{gone}"
  exists = false

  [[control.file]]
  path   = "/usr/share/common-licenses/GPL-3"
  exists = true

[[control]]
id = "wrong"
title = "Every OCI key can fail"

  [[control.image]]
  layers        = {{ eq = "3" }}
  env           = {{ NODECHECK_ORACLE = "docker", UNSET = "x" }}
  entrypoint    = "/init"
  cmd           = "sleep 1"
  user          = "1000"
  workdir       = "/"
  labels        = {{ "site.role" = "login" }}
  exposed_ports = ["22/tcp"]
"#,
            gone = p.gone
        )
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut image_ids = Vec::new();
    for (form, target, files) in p.forms() {
        let before: Vec<_> = files.iter().map(|f| stamp(f)).collect();
        let profile = tmp.path().join(format!("{form}.toml"));
        fs::write(&profile, right(form)).unwrap();
        let (rc, report, side) = podman_run(&profile, &target, &[], tmp.path());
        assert_eq!(rc, 1, "{form}: only `wrong` fails");
        let c = report["controls"].as_array().unwrap();
        for (i, want) in [(0, "pass"), (1, "pass")] {
            for ch in c[i]["checks"].as_array().unwrap() {
                for prop in ch["properties"].as_array().unwrap() {
                    assert_eq!(
                        prop["status"], want,
                        "{form}: {} {}: {}",
                        c[i]["id"], prop["key"], prop["message"]
                    );
                }
            }
        }
        let wrong = c[2]["checks"][0]["properties"].as_array().unwrap();
        assert_eq!(wrong.len(), 8, "{form}: {wrong:?}");
        for prop in wrong {
            assert_eq!(prop["status"], "fail", "{form}: {prop}");
        }

        // The image's identity under `target`: the file, its format and
        // size; the manifest digest for the OCI forms (index.json's, and
        // the manifest's content hashes to it); the image ID for all three.
        let image = &report["target"]["image"];
        let path = files.last().unwrap();
        assert_eq!(image["format"], form, "{image}");
        if form == "oci" {
            let layout = p.dir.join("oci");
            assert_eq!(image["path"], layout.to_str().unwrap(), "{image}");
        } else {
            assert_eq!(image["path"], path.to_str().unwrap(), "{image}");
            assert_eq!(image["size"], fs::metadata(path).unwrap().len(), "{image}");
        }
        assert!(image.get("sha256").is_none(), "not asked: {image}");
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(p.dir.join("oci/index.json")).unwrap()).unwrap();
        let manifest = index["manifests"][0]["digest"].as_str().unwrap();
        if form == "docker-archive" {
            assert!(image.get("digest").is_none(), "{image}");
        } else {
            assert_eq!(image["digest"], manifest, "{form}: {image}");
            let blob = p
                .dir
                .join("oci/blobs/sha256")
                .join(manifest.trim_start_matches("sha256:"));
            assert_eq!(format!("sha256:{}", sha256_file(&blob)), manifest);
            assert!(
                side.contains(&format!(
                    "<property name=\"image_digest\" value=\"{manifest}\"/>"
                )),
                "{form}: JUnit: {side}"
            );
            assert!(
                side.contains(&format!("image_digest=\"{manifest}\"")),
                "{form}: Prometheus: {side}"
            );
            assert!(
                side.contains(&format!(
                    "\nImage:     manifest {manifest}, image ID sha256:"
                )),
                "{form}: terminal: {side}"
            );
        }
        let id = image["config_digest"].as_str().unwrap().to_string();
        let config = p
            .dir
            .join("oci/blobs/sha256")
            .join(id.trim_start_matches("sha256:"));
        assert_eq!(format!("sha256:{}", sha256_file(&config)), id, "{form}");
        image_ids.push(id);
        assert!(
            side.contains(&format!(
                "<property name=\"image_format\" value=\"{form}\"/>"
            )),
            "{form}: JUnit: {side}"
        );
        let after: Vec<_> = files.iter().map(|f| stamp(f)).collect();
        assert_eq!(after, before, "{form}: the image changed");
        fs::create_dir_all(tmp.path().join("fleet")).unwrap();
        fs::copy(
            tmp.path().join("r.json"),
            tmp.path().join(format!("fleet/{form}.json")),
        )
        .unwrap();
    }
    // The image ID is the same whichever form podman saved.
    image_ids.dedup();
    assert_eq!(image_ids.len(), 1, "{image_ids:?}");

    // `report merge` groups images by content: the three forms are one
    // image; the same tree packed as a cpio and hashed (--sha256) is
    // another, though os-release and kernel say the same.
    if let Some(packed) = packed() {
        let cpio = packed.join("rootfs.cpio.zst");
        let profile = tmp.path().join("docker-archive.toml");
        let (_, report, _) =
            podman_run(&profile, cpio.to_str().unwrap(), &["--sha256"], tmp.path());
        assert_eq!(
            report["target"]["image"]["sha256"],
            sha256_file(&cpio).as_str()
        );
        fs::copy(
            tmp.path().join("r.json"),
            tmp.path().join("fleet/cpio.json"),
        )
        .unwrap();
    }
    let fleet = tmp.path().join("fleet.json");
    let o = nodecheck(&[
        "report",
        "merge",
        "--json",
        fleet.to_str().unwrap(),
        tmp.path().join("fleet").to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "`wrong` fails on every node: {}", stderr(&o));
    let merged: serde_json::Value = serde_json::from_slice(&fs::read(&fleet).unwrap()).unwrap();
    let images = merged["images"].as_array().unwrap();
    let with_id: Vec<_> = images
        .iter()
        .filter(|i| i["image_digest"] == image_ids[0].as_str())
        .collect();
    assert_eq!(with_id.len(), 1, "{images:?}");
    assert_eq!(with_id[0]["count"], 3, "{images:?}");
    if packed().is_some() {
        assert_eq!(images.len(), 2, "{images:?}");
        let other = images.iter().find(|i| i["count"] == 1).unwrap();
        assert!(
            other["image_digest"]
                .as_str()
                .unwrap()
                .starts_with("sha256:"),
            "{other}"
        );
        assert_eq!(other["pretty_name"], with_id[0]["pretty_name"]);
    }

    // --sha256: the file's hash joins the identity, in every report.
    let archive = p.dir.join("oracle.oci.tar");
    let profile = tmp.path().join("oci-archive.toml");
    let (_, report, side) = podman_run(
        &profile,
        &format!("oci-archive:{}", archive.display()),
        &["--sha256"],
        tmp.path(),
    );
    let want = sha256_file(&archive);
    assert_eq!(report["target"]["image"]["sha256"], want.as_str());
    assert!(
        side.contains(&format!(
            "<property name=\"image_sha256\" value=\"{want}\"/>"
        )),
        "{side}"
    );
    assert!(side.contains(&format!("image_sha256=\"{want}\"")), "{side}");
    assert!(side.contains(&format!(", file sha256:{want}\n")), "{side}");
    assert_eq!(report["warnings"].as_array().unwrap().len(), 0, "{report}");
    // A layout directory is no one file: said in the report, not ignored.
    let (_, report, _) = podman_run(
        &profile,
        &format!("oci:{}", p.dir.join("oci").display()),
        &["--sha256"],
        tmp.path(),
    );
    assert!(report["target"]["image"].get("sha256").is_none());
    let w = report["warnings"][0].as_str().unwrap();
    assert!(
        w.contains("--sha256") && w.contains("not a regular file"),
        "{w}"
    );
}

#[test]
fn base_gives_the_directory_s_outcomes_on_lz4_legacy_and_bzip2_cpio() {
    let (Some(root), Some(dir)) = (reference_rootfs(), packed()) else {
        eprintln!("skipped: no reference rootfs (tests/rootfs/build.sh)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let base = ["profiles/base.toml"];
    let want = outcomes_of(&base, root.to_str().unwrap(), &tmp.path().join("dir.json"));
    assert!(want.len() > 20, "{want:?}");
    for name in ["rootfs.cpio.lz4", "rootfs.cpio.bz2"] {
        let file = dir.join(name);
        let before = stamp(&file);
        let got = outcomes_of(
            &base,
            file.to_str().unwrap(),
            &tmp.path().join(format!("{name}.json")),
        );
        assert_eq!(stamp(&file), before, "{name}: the image changed");
        assert_eq!(got, want, "{name}: outcomes differ from the directory");
    }
    // The compression is the one the file holds, known by magic.
    let o = image_check(
        tmp.path(),
        "lz4",
        "  format      = \"cpio\"\n  compression = \"lz4\"",
        dir.join("rootfs.cpio.lz4").to_str().unwrap(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// Writes `profile` (an `image` control) and runs it on `target`.
fn image_check(tmp: &Path, name: &str, body: &str, target: &str) -> std::process::Output {
    let profile = tmp.join(format!("{name}.toml"));
    fs::write(
        &profile,
        format!(
            "[profile]\nname = \"{name}\"\n\n[[control]]\nid = \"{name}\"\ntitle = \"{name}\"\n\n  [[control.image]]\n{body}\n"
        ),
    )
    .unwrap();
    nodecheck(&["run", profile.to_str().unwrap(), "--target", target])
}

#[test]
fn squashfs_and_an_oci_layout_directory_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    if let Some(dir) = packed() {
        let sqfs = dir.join("rootfs.sqfs");
        let body =
            "  format = \"squashfs\"\n  compression = \"zstd\"\n  entries = { ge = \"20000\" }";
        for target in [
            format!("squashfs:{}", sqfs.display()),
            sqfs.display().to_string(),
        ] {
            let o = image_check(tmp.path(), "sqfs", body, &target);
            assert_eq!(code(&o), 0, "{target}: {}", stderr(&o));
        }
        // A truncated copy, known by its magic: exit 3 naming it.
        let cut = tmp.path().join("cut.img");
        let mut bytes = vec![0; 4 << 20];
        let n = fs::File::open(&sqfs).unwrap().read(&mut bytes).unwrap();
        fs::write(&cut, &bytes[..n]).unwrap();
        let o = nodecheck(&[
            "run",
            "profiles/base.toml",
            "--target",
            cut.to_str().unwrap(),
        ]);
        assert_eq!(code(&o), 3, "{}", stderr(&o));
        assert!(
            stderr(&o).contains("cut.img: squashfs: truncated"),
            "{}",
            stderr(&o)
        );
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    } else {
        eprintln!("skipped the squashfs part: no reference rootfs (tests/rootfs/build.sh)");
    }

    // An OCI image layout made by hand (one layer, tarred by GNU tar),
    // given as a plain directory.
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("etc")).unwrap();
    fs::write(src.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    let layer = Command::new("tar")
        .args(["--numeric-owner", "-cf", "-", "-C"])
        .arg(&src)
        .arg("etc")
        .output()
        .unwrap()
        .stdout;
    let oci = tmp.path().join("layout");
    let blob = |b: &[u8]| {
        let d = hex(&Sha256::digest(b));
        let p = oci.join("blobs/sha256").join(&d);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b).unwrap();
        format!("sha256:{d}")
    };
    let config = blob(br#"{"architecture":"amd64","config":{"User":"root"}}"#);
    let layer = blob(&layer);
    let manifest = blob(
        format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{config}"}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}"}}]}}"#
        )
        .as_bytes(),
    );
    fs::write(oci.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    fs::write(
        oci.join("index.json"),
        format!(r#"{{"schemaVersion":2,"manifests":[{{"digest":"{manifest}"}}]}}"#),
    )
    .unwrap();
    let body = "  format = \"oci\"\n  layers = 1\n  user = \"root\"";
    let o = image_check(tmp.path(), "oci", body, oci.to_str().unwrap());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}
