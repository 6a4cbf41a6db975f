//! Helpers for the end-to-end tests: the built binary, fixture trees, the
//! cached reference rootfs, and tree fingerprints.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// Runs the built `nodecheck` with `args`.
pub fn nodecheck(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nodecheck"))
        .args(args)
        .env("NO_COLOR", "1")
        .current_dir(repo())
        .output()
        .expect("run nodecheck")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The reference Debian rootfs (tests/rootfs/build.sh), or `None` with a
/// note when it is not available here. CI (tests/all.sh) always sets
/// NODECHECK_TEST_ROOTFS, so there these tests never skip.
pub fn reference_rootfs() -> Option<PathBuf> {
    static ROOT: OnceLock<Option<PathBuf>> = OnceLock::new();
    ROOT.get_or_init(|| {
        if let Some(p) = std::env::var_os("NODECHECK_TEST_ROOTFS") {
            let p = PathBuf::from(p);
            assert!(
                p.join("etc/os-release").exists(),
                "NODECHECK_TEST_ROOTFS={} is not a rootfs",
                p.display()
            );
            return Some(p);
        }
        // Use the cache if it was built, but never build it from a test.
        let cache = Path::new("/var/cache/nodecheck");
        let found = fs::read_dir(cache).ok()?.filter_map(Result::ok).find(|e| {
            e.file_name().to_string_lossy().starts_with("debian-")
                && !e.file_name().to_string_lossy().ends_with("-rebuild")
                && e.path().join(".nodecheck-rootfs-complete").exists()
        });
        if found.is_none() {
            eprintln!("note: no reference rootfs; run tests/rootfs/build.sh (tests/all.sh does)");
        }
        found.map(|e| e.path())
    })
    .clone()
}

/// The second, independent build of the reference rootfs
/// (`NODECHECK_ROOTFS_VARIANT=rebuild tests/rootfs/build.sh`), or `None`
/// with a note.
pub fn rebuilt_rootfs() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NODECHECK_TEST_ROOTFS_REBUILD") {
        return Some(PathBuf::from(p));
    }
    let reference = reference_rootfs()?;
    let p = PathBuf::from(format!("{}-rebuild", reference.display()));
    if p.join(".nodecheck-rootfs-complete").exists() {
        Some(p)
    } else {
        eprintln!(
            "note: no rebuilt rootfs; run NODECHECK_ROOTFS_VARIANT=rebuild tests/rootfs/build.sh"
        );
        None
    }
}

/// Whether we are root (some fixtures need chown; the reference rootfs has
/// root-only files).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A fixture tree built by a test.
pub struct Tree {
    pub dir: tempfile::TempDir,
}

impl Tree {
    pub fn new() -> Tree {
        Tree {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, rel: &str, mode: u32, content: &str) -> &Tree {
        let p = self.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    pub fn link(&self, rel: &str, to: &str) -> &Tree {
        let p = self.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(to, &p).unwrap();
        self
    }
}

/// A copy of a tree that shares file contents with the original through
/// hard links, so a 1 GB rootfs copies in a second. [`Fault::detach`] a
/// file before changing it, or the change would reach the original.
pub struct Fault {
    pub dir: tempfile::TempDir,
}

impl Fault {
    pub fn of(original: &Path) -> Fault {
        let dir = tempfile::Builder::new()
            .prefix("nodecheck-fault-")
            .tempdir_in(original.parent().unwrap())
            .unwrap();
        let st = Command::new("cp")
            .arg("-a")
            .arg("-l")
            .arg(format!("{}/.", original.display()))
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "cp -al failed");
        Fault { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces the hard link at `rel` by a private copy (same metadata).
    pub fn detach(&self, rel: &str) -> PathBuf {
        let p = self.path().join(rel);
        let tmp = p.with_extension("nodecheck-detach");
        let st = Command::new("cp")
            .arg("-a")
            .arg(&p)
            .arg(&tmp)
            .status()
            .unwrap();
        assert!(st.success());
        fs::rename(&tmp, &p).unwrap();
        p
    }
}

/// A fingerprint of every entry of a tree: type, mode, owner, size, mtime,
/// link target and content hash. Equal fingerprints before and after a run
/// mean the run left the tree as it was.
pub fn fingerprint(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
    {
        let e = e.unwrap();
        let m = e.path().symlink_metadata().unwrap();
        let mut line = format!(
            "{:o} {}:{} {} {}.{}",
            m.mode(),
            m.uid(),
            m.gid(),
            m.size(),
            m.mtime(),
            m.mtime_nsec()
        );
        if m.file_type().is_symlink() {
            line += &format!(" -> {}", fs::read_link(e.path()).unwrap().display());
        } else if m.file_type().is_file() {
            let mut h = Sha256::new();
            let mut f = fs::File::open(e.path()).unwrap();
            let mut buf = vec![0; 1 << 16];
            loop {
                let n = f.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            line += &format!(" {}", hex(&h.finalize()));
        }
        out.insert(e.path().strip_prefix(root).unwrap().to_path_buf(), line);
    }
    out
}

/// Asserts two fingerprints are equal, naming the first entries that differ.
pub fn assert_same(before: &BTreeMap<PathBuf, String>, after: &BTreeMap<PathBuf, String>) {
    if before == after {
        return;
    }
    let mut diffs = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            Some(w) if w == v => {}
            Some(w) => diffs.push(format!("changed {}: {v} => {w}", k.display())),
            None => diffs.push(format!("removed {}", k.display())),
        }
    }
    for k in after.keys().filter(|k| !before.contains_key(*k)) {
        diffs.push(format!("added {}", k.display()));
    }
    diffs.truncate(20);
    panic!("the target changed during the run:\n{}", diffs.join("\n"));
}

/// Validates a JUnit file against the repository's copy of junit-10.xsd.
pub fn xmllint(report: &Path) -> Result<(), String> {
    let xsd = repo().join("tests/fixtures/junit/junit-10.xsd");
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(report)
        .output()
        .map_err(|e| format!("xmllint not runnable ({e}); apt-get install libxml2-utils"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `profile` against `root`; (exit status, JSON report).
pub fn run_profile(root: &Path, profile: &str) -> (i32, serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(&p, profile).unwrap();
    let json = dir.path().join("r.json");
    let o = nodecheck(&[
        "run",
        p.to_str().unwrap(),
        "--target",
        root.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&json)
            .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{}\n{}", stdout(&o), stderr(&o))),
    )
    .unwrap();
    (code(&o), report, stdout(&o))
}
