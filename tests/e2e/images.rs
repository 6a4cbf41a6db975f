//! Packed images as targets: the oracle. The reference rootfs is packed with
//! the real tools (tests/images/pack.sh: `find | cpio -o -H newc | zstd`,
//! an early uncompressed cpio before a gzip one, `tar --xattrs`), cached
//! under /var/cache/nodecheck/images-KEY (KEY: the rootfs path, the tools'
//! versions and the script), and base.toml plus compute.toml must give
//! every check the outcome they give on the directory (as root, programs
//! run in the tree written out once per run; unprivileged, they skip).

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::util::{code, hex, is_root, nodecheck, reference_rootfs, repo, stderr};

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

/// Per check (control, kind, subject, line): status and first message,
/// for base.toml and compute.toml.
fn outcomes(target: &str, json: &Path) -> Outcomes {
    outcomes_of(
        &["profiles/base.toml", "profiles/compute.toml"],
        target,
        json,
    )
}

/// The same for `profiles`.
fn outcomes_of(profiles: &[&str], target: &str, json: &Path) -> Outcomes {
    let mut args = vec!["run"];
    args.extend(profiles);
    args.extend(["--target", target, "--json", json.to_str().unwrap()]);
    let o = nodecheck(&args);
    assert!(
        code(&o) == 0 || code(&o) == 1,
        "{target}: exit {}: {}",
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

#[test]
fn static_checks_give_the_directory_s_outcomes_on_every_packed_form() {
    let (Some(root), Some(dir)) = (reference_rootfs(), packed()) else {
        eprintln!("skipped: no reference rootfs (tests/rootfs/build.sh)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let want = outcomes(root.to_str().unwrap(), &tmp.path().join("dir.json"));
    assert!(want.len() > 50, "{want:?}");
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
        let leftover = tmp_trees();
        assert!(
            leftover.is_empty(),
            "{form}: written-out trees left behind: {leftover:?}"
        );
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>()
        );
        let mut exec = 0;
        for (key, (status, msg)) in &got {
            let runs_programs = EXEC_KINDS.iter().any(|k| key.contains(&format!(" {k} ")));
            exec += usize::from(runs_programs);
            if runs_programs && !is_root() {
                // Unprivileged, the tree cannot be written out with its
                // owners: skipped, saying why.
                assert_eq!(status, "skip", "{form}: {key}: {msg}");
                assert_eq!(
                    msg, "needs command execution in the target",
                    "{form}: {key}"
                );
                continue;
            }
            // The early archive adds /kernel/x86/microcode/GenuineIntel.bin
            // (as dracut's does): a budget over the whole tree counts one
            // file more there, with the same verdict.
            if form.starts_with("early") && key.contains(" tree / ") {
                assert_eq!(status, &want[key].0, "{form}: {key}: {msg}");
                continue;
            }
            // As root, programs run in the tree written out once per run:
            // compilers, MPI and Lmod give the directory's outcomes too.
            assert_eq!(
                (status, msg),
                (&want[key].0, &want[key].1),
                "{form}: {key} differs from the directory"
            );
        }
        assert!(exec >= 8, "{form}: only {exec} exec checks");
    }
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
    let json = tmp.path().join("kind.json");
    let profile = tmp.path().join("c.toml");
    fs::write(
        &profile,
        r#"
[profile]
name = "lz4"

[[control]]
id = "lz4"
title = "A legacy-lz4 initramfs"

  [[control.image]]
  format      = "cpio"
  compression = "lz4"
"#,
    )
    .unwrap();
    let o = nodecheck(&[
        "run",
        profile.to_str().unwrap(),
        "--target",
        dir.join("rootfs.cpio.lz4").to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
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
