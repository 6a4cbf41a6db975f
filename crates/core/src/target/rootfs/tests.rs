//! Tests of [`RootFs`]: every escape attempt runs on both resolvers.

use super::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};

const HOST: &str = "HOST SENTINEL";

/// A tempdir holding `host/sentinel` (the host side, outside the root)
/// and `root/`, an image whose links all try to reach the sentinel.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = dir.path();
        let host = t.join("host");
        let sentinel = host.join("sentinel");
        let r = t.join("root");
        for d in ["host", "root/etc", "root/usr/lib", "root/a/b", "root/host"] {
            fs::create_dir_all(t.join(d)).expect("mkdir");
        }
        fs::write(&sentinel, HOST).expect("write");
        fs::write(t.join("x"), HOST).expect("write");
        fs::write(r.join("host/sentinel"), "image sentinel").expect("write");
        fs::write(r.join("etc/shadow"), "image shadow").expect("write");
        fs::write(r.join("x"), "image x").expect("write");
        fs::write(r.join("usr/lib/x"), "image lib x").expect("write");
        fs::write(
            r.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nmunge:x:990:990::/nonexistent:/usr/sbin/nologin\n",
        )
        .expect("write");
        fs::write(r.join("etc/group"), "root:x:0:\nmunge:x:990:\n").expect("write");
        let sentinel = sentinel.to_str().expect("utf-8 tempdir");
        let links = [
            ("etc/evil", format!("/../../../../{sentinel}")),
            ("etc/rel", "../../host/sentinel".to_string()),
            ("etc/abs", "/etc/shadow".to_string()),
            ("lib", "usr/lib".to_string()),
            ("up", "../../..".to_string()),
            ("hostdir", host.to_str().expect("utf-8").to_string()),
            ("chain1", "chain2".to_string()),
            ("chain2", "/etc/../chain3".to_string()),
            ("chain3", "etc/abs".to_string()),
            ("loop1", "loop2".to_string()),
            ("loop2", "/loop1".to_string()),
            ("dangling", "/nowhere/at/all".to_string()),
        ];
        for (link, to) in links {
            symlink(to, r.join(link)).expect("symlink");
        }
        Fixture { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The fixture opened with each resolver this kernel supports.
    fn targets(&self) -> Vec<RootFs> {
        let mut out = Vec::new();
        for resolver in [Resolver::Kernel, Resolver::Userspace] {
            match RootFs::open_with(self.root(), resolver) {
                Ok(fs) => out.push(fs),
                Err(e) => println!("note: {resolver:?} resolver skipped: {e}"),
            }
        }
        assert!(!out.is_empty(), "no resolver works");
        out
    }
}

fn read(fs: &RootFs, path: &str) -> io::Result<String> {
    let bytes = fs.read(path, READ_LIMIT)?;
    let text = String::from_utf8(bytes).expect("utf-8 fixture");
    assert_ne!(
        text,
        HOST,
        "{:?} read the host through {path}",
        fs.resolver()
    );
    Ok(text)
}

#[test]
fn escapes_read_the_image_or_fail_cleanly() {
    let fx = Fixture::new();
    for fs in fx.targets() {
        let r = fs.resolver();
        let cases = [
            ("/etc/abs", Some("image shadow")),
            ("/etc/rel", Some("image sentinel")),
            ("/a/b/../../../../x", Some("image x")),
            ("../../x", Some("image x")),
            ("/lib/x", Some("image lib x")),
            ("/lib/../../../x", Some("image x")),
            ("/up/host/sentinel", Some("image sentinel")),
            ("/up/up/up/x", Some("image x")),
            ("/chain1", Some("image shadow")),
            ("/etc/evil", None),
            ("/hostdir/sentinel", None),
        ];
        for (path, want) in cases {
            match (read(&fs, path), want) {
                (Ok(got), Some(want)) => assert_eq!(got, want, "{r:?} {path}"),
                (Err(e), None) => assert_eq!(e.kind(), io::ErrorKind::NotFound, "{r:?} {path}"),
                (got, want) => panic!("{r:?} {path}: got {got:?}, want {want:?}"),
            }
        }
    }
}

#[test]
fn loops_and_dangling_links_are_clean_errors() {
    let fx = Fixture::new();
    for fs in fx.targets() {
        let r = fs.resolver();
        let e = fs.read("/loop1", READ_LIMIT).expect_err("loop");
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{r:?}");
        let e = fs.canonicalize("/loop2/x").expect_err("loop");
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{r:?}");
        let e = fs.metadata("/dangling", true).expect_err("dangling");
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{r:?}");
        // The link itself is there.
        let md = fs.metadata("/dangling", false).expect("lstat");
        assert_eq!(md.file_type, FileType::Symlink, "{r:?}");
        assert_eq!(md.mode, 0o777, "{r:?}");
        assert_eq!(
            fs.read_link("/dangling").expect("readlink"),
            "/nowhere/at/all"
        );
    }
}

#[test]
fn canonicalize_stays_in_the_image() {
    let fx = Fixture::new();
    for fs in fx.targets() {
        let c = |p: &str| fs.canonicalize(p);
        assert_eq!(c("/lib/x").expect("lib"), "/usr/lib/x");
        assert_eq!(c("/chain1").expect("chain"), "/etc/shadow");
        assert_eq!(c("/up/up").expect("up"), "/");
        assert_eq!(c("/a/b/../../../../x").expect("dotdot"), "/x");
        let e = c("/etc/evil").expect_err("escape");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e = c("/hostdir").expect_err("host dir");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}

#[test]
fn metadata_read_dir_and_read_link_resolve_in_root() {
    let fx = Fixture::new();
    fs::set_permissions(
        fx.root().join("etc/shadow"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4640),
    )
    .expect("chmod");
    for fs in fx.targets() {
        let r = fs.resolver();
        let md = fs.metadata("/etc/abs", true).expect("stat");
        assert_eq!(md.file_type, FileType::File, "{r:?}");
        assert_eq!(md.mode, 0o4640, "{r:?}");
        assert_eq!(md.size, "image shadow".len() as u64, "{r:?}");
        assert!(md.mtime.is_some() && md.nlink == 1 && md.ino != 0, "{r:?}");
        let own = fs.metadata("/etc/abs", false).expect("lstat");
        assert_eq!(own.file_type, FileType::Symlink, "{r:?}");
        assert_eq!(fs.read_link("/etc/abs").expect("readlink"), "/etc/shadow");
        let e = fs.read_link("/etc/shadow").expect_err("not a link");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{r:?}");
        // `/up` is the image root, not the host's.
        let names: Vec<_> = fs
            .read_dir("/up")
            .expect("read_dir")
            .into_iter()
            .map(|e| e.name)
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "{r:?}");
        assert!(names.contains(&"loop1".to_string()), "{r:?} {names:?}");
        let lib = fs.read_dir("/lib").expect("dir link");
        assert_eq!(
            lib,
            vec![DirEntry {
                name: "x".into(),
                raw_name: b"x".to_vec(),
                file_type: FileType::File
            }]
        );
        let e = fs.read_dir("/etc/shadow").expect_err("not a dir");
        assert_eq!(e.kind(), io::ErrorKind::NotADirectory, "{r:?}");
        assert_eq!(
            fs.metadata("/", true).expect("root").file_type,
            FileType::Directory
        );
    }
}

#[test]
fn read_refuses_files_over_the_limit() {
    let fx = Fixture::new();
    for fs in fx.targets() {
        assert_eq!(fs.read("/x", 7).expect("exactly the limit"), b"image x");
        let e = fs.read("/x", 6).expect_err("over the limit");
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert!(e.to_string().contains("limit of 6 bytes"), "{e}");
        let e = fs.read("/etc", READ_LIMIT).expect_err("a directory");
        assert_eq!(e.kind(), io::ErrorKind::IsADirectory);
    }
}

#[test]
fn read_never_blocks_on_a_fifo() {
    let fx = Fixture::new();
    nix::unistd::mkfifo(&fx.root().join("fifo"), Mode::from_bits_truncate(0o644)).expect("mkfifo");
    for fs in fx.targets() {
        let e = fs.read("/fifo", READ_LIMIT).expect_err("fifo");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}

fn walk_paths(fs: &RootFs, start: &str, options: &WalkOptions) -> Vec<(String, usize)> {
    let mut seen = Vec::new();
    fs.walk(start, options, &mut |e| {
        let e = e.expect("walk entry");
        let keep = e.path != "/a";
        seen.push((e.path, e.depth));
        keep
    })
    .expect("walk");
    seen
}

#[test]
fn walk_lists_the_image_in_order_and_prunes() {
    let fx = Fixture::new();
    for fs in fx.targets() {
        let all = walk_paths(&fs, "/", &WalkOptions::default());
        let paths: Vec<&str> = all.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths[0], "/");
        assert!(paths.contains(&"/usr/lib/x") && paths.contains(&"/hostdir"));
        // Pruned below /a, links not followed, nothing from the host.
        assert!(paths.contains(&"/a") && !paths.contains(&"/a/b"));
        assert!(
            !paths
                .iter()
                .any(|p| p.starts_with("/lib/") || p.starts_with("/up/"))
        );
        assert!(!paths.iter().any(|p| p.starts_with("/hostdir/")));
        assert!(all.iter().any(|(p, d)| p == "/usr/lib/x" && *d == 3));
        // A link as the start: walked where it leads.
        let lib = walk_paths(&fs, "/lib", &WalkOptions::default());
        assert_eq!(lib, vec![("/usr/lib".into(), 0), ("/usr/lib/x".into(), 1)]);
        let shallow = WalkOptions {
            max_depth: Some(1),
            same_file_system: true,
            ..WalkOptions::default()
        };
        assert!(walk_paths(&fs, "/", &shallow).iter().all(|(_, d)| *d <= 1));
        let mut n = 0;
        let e = fs.walk("/etc/evil", &WalkOptions::default(), &mut |_| {
            n += 1;
            true
        });
        assert_eq!(e.expect_err("escape").kind(), io::ErrorKind::NotFound);
        assert_eq!(n, 0);
    }
}

#[test]
fn walk_reports_entry_errors_and_goes_on() {
    // A directory swapped for a symlink to the host after it was listed
    // and before it is entered: the walker opens it from its parent's
    // descriptor with O_NOFOLLOW, so it reports an error for /a and never
    // lists the host directory; the rest of the walk goes on.
    let fx = Fixture::new();
    let fs = RootFs::open(fx.root()).expect("open");
    let host = fx.dir.path().join("host");
    let seen = std::sync::Mutex::new((0, Vec::new(), Vec::new()));
    fs.walk_parallel("/", &WalkOptions::default(), &|v| {
        let mut seen = seen.lock().expect("lock");
        match v {
            Ok(v) => {
                if v.path == b"/a" {
                    fs::rename(fx.root().join("a"), fx.root().join("a.old")).expect("mv");
                    symlink(&host, fx.root().join("a")).expect("symlink");
                }
                seen.0 += 1;
                seen.1.push(v.display());
            }
            Err(e) => seen.2.push(e.into_io()),
        }
        true
    })
    .expect("walk");
    let (ok, paths, errors) = seen.into_inner().expect("lock");
    assert!(
        !paths
            .iter()
            .any(|p| p.contains("sentinel") && p.starts_with("/a")),
        "{paths:?}"
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert!(e.to_string().starts_with("/a: "), "{e}");
    assert!(
        e.raw_os_error().is_none()
            && [libc::ELOOP, libc::ENOTDIR].iter().any(|c| {
                e.to_string()
                    .contains(&io::Error::from_raw_os_error(*c).to_string())
            }),
        "{e}"
    );
    assert!(ok > 10, "{ok}");
}

/// A host loop device over a file holding `canary`, detached on drop:
/// the host thing a device node in an image may point at.
struct LoopCanary {
    dev: String,
    _file: tempfile::NamedTempFile,
}

impl LoopCanary {
    fn new(canary: &str) -> LoopCanary {
        let file = tempfile::NamedTempFile::new().expect("tempfile");
        let mut body = canary.repeat(64).into_bytes();
        body.resize(1 << 20, b'\n');
        fs::write(file.path(), body).expect("write");
        let out = std::process::Command::new("losetup")
            .args(["-f", "--show"])
            .arg(file.path())
            .output()
            .expect("run losetup (util-linux)");
        assert!(
            out.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dev = String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_string();
        LoopCanary { dev, _file: file }
    }

    fn rdev(&self) -> u64 {
        fs::metadata(&self.dev).expect("stat loop").rdev()
    }
}

impl Drop for LoopCanary {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.dev])
            .status();
    }
}

fn mknod(path: &Path, kind: libc::mode_t, rdev: u64) {
    nix::sys::stat::mknod(
        path,
        nix::sys::stat::SFlag::from_bits_truncate(kind),
        Mode::from_bits_truncate(0o644),
        rdev,
    )
    .expect("mknod");
}

#[test]
fn device_nodes_and_fifos_are_never_opened_for_content() {
    const CANARY: &str = "HOSTCANARY-3f9e";
    assert!(
        nix::unistd::geteuid().is_root(),
        "needs root (mknod, losetup)"
    );
    let dev = LoopCanary::new(CANARY);
    let fx = Fixture::new();
    let r = fx.root();
    fs::create_dir_all(r.join("etc/ssh")).expect("mkdir");
    fs::remove_file(r.join("etc/passwd")).expect("rm");
    mknod(&r.join("etc/passwd"), libc::S_IFBLK, dev.rdev());
    mknod(&r.join("etc/ssh/sshd_config"), libc::S_IFBLK, dev.rdev());
    // /dev/zero: an endless stream a read would fill memory with.
    mknod(
        &r.join("etc/zero"),
        libc::S_IFCHR,
        nix::sys::stat::makedev(1, 5),
    );
    nix::unistd::mkfifo(&r.join("etc/fifo"), Mode::from_bits_truncate(0o644)).expect("mkfifo");
    symlink("/etc/passwd", r.join("etc/to-dev")).expect("symlink");
    let mut targets: Vec<Box<dyn Target>> = fx
        .targets()
        .into_iter()
        .map(|t| Box::new(t) as Box<dyn Target>)
        .collect();
    // The container door (O_PATH + /proc/self/fd reopen), over the same tree.
    let mut container = RootFs::open(&r).expect("open");
    container.race_free = true;
    targets.push(Box::new(container));
    for t in &targets {
        for p in [
            "/etc/passwd",
            "/etc/ssh/sshd_config",
            "/etc/zero",
            "/etc/fifo",
            "/etc/to-dev",
        ] {
            let e = t.read(p, READ_LIMIT).expect_err(p);
            assert!(
                e.to_string().starts_with("not a regular file but a "),
                "{p}: {e}"
            );
            let e = t.open(p).err().expect(p);
            assert!(
                e.to_string().starts_with("not a regular file but a "),
                "{p}: {e}"
            );
        }
        let opened = std::sync::Mutex::new(Vec::new());
        t.walk_parallel("/etc", &WalkOptions::default(), &|v| {
            if let Ok(v) = v
                && v.depth > 0
                && v.file_type != FileType::Directory
            {
                opened.lock().expect("lock").push((v.display(), {
                    let mut h = [0u8; 64];
                    v.head(&mut h)
                        .map(|n| String::from_utf8_lossy(&h[..n]).into_owned())
                }));
            }
            true
        })
        .expect("walk");
        for (path, head) in opened.into_inner().expect("lock") {
            match head {
                Ok(h) => assert!(!h.contains(CANARY) && !h.contains('\0'), "{path}: {h:?}"),
                Err(e) => assert!(!e.to_string().contains(CANARY), "{path}: {e}"),
            }
        }
        // The accounts come from /etc/passwd: an error, not the device.
        assert!(t.accounts().user("root").is_none());
    }
}

#[test]
fn racing_directory_swaps_never_lead_the_walk_to_the_host() {
    // A thread swaps /a between a directory and a symlink to a host
    // directory holding a canary name while the tree is walked again
    // and again: no host name or mode may ever appear.
    const CANARY: &str = "HOST-CANARY-NAME-71c2";
    let fx = Fixture::new();
    let host = fx.dir.path().join("host");
    fs::create_dir_all(host.join(CANARY)).expect("mkdir");
    fs::write(host.join(CANARY).join("f"), "host").expect("write");
    let r = fx.root();
    for i in 0..20 {
        fs::write(r.join(format!("a/b/f{i}")), "image").expect("write");
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    for fs_t in fx.targets() {
        std::thread::scope(|s| {
            s.spawn(|| {
                let (a, tmp, link) = (r.join("a"), r.join("a.dir"), r.join("a.link"));
                let _ = fs::remove_file(&link);
                symlink(&host, &link).expect("symlink");
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // a: directory -> symlink -> directory, by renames.
                    let _ = fs::rename(&a, &tmp);
                    let _ = fs::rename(&link, &a);
                    let _ = fs::rename(&a, &link);
                    let _ = fs::rename(&tmp, &a);
                }
            });
            for _ in 0..200 {
                let mut shown = Vec::new();
                let walked = fs_t.walk(
                    "/",
                    &WalkOptions {
                        links: true,
                        ..WalkOptions::default()
                    },
                    &mut |e| {
                        match e {
                            Ok(e) => {
                                shown.push(format!("{} {:?} {:?}", e.path, e.metadata, e.link))
                            }
                            Err(e) => shown.push(e.to_string()),
                        }
                        true
                    },
                );
                if let Err(e) = walked {
                    shown.push(e.to_string());
                }
                for line in &shown {
                    assert!(!line.contains(CANARY), "{line}");
                }
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        stop.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn names_that_are_not_utf8_stay_bytes() {
    use std::os::unix::ffi::OsStrExt;
    let fx = Fixture::new();
    let r = fx.root();
    let dir = r.join("names");
    fs::create_dir_all(&dir).expect("mkdir");
    let raw = |b: &[u8]| dir.join(std::ffi::OsStr::from_bytes(b));
    // A broken link whose name is not UTF-8, and a working decoy whose
    // name lossy conversion makes the same ("bad\u{fffd}").
    symlink("/nowhere", raw(b"bad\xff")).expect("symlink");
    symlink("/etc/shadow", raw("bad\u{fffd}".as_bytes())).expect("symlink");
    // A working link whose name is not UTF-8.
    symlink("/etc/shadow", raw(b"ok\xfe")).expect("symlink");
    for fs_t in fx.targets() {
        let mut seen = Vec::new();
        fs_t.walk(
            "/names",
            &WalkOptions {
                links: true,
                ..WalkOptions::default()
            },
            &mut |e| {
                let e = e.expect("entry");
                if e.depth > 0 {
                    let link = e.link.as_ref().expect("links resolved");
                    seen.push((e.raw_path.clone(), e.path.clone(), link.target.is_ok()));
                }
                true
            },
        )
        .expect("walk");
        assert_eq!(
            seen,
            vec![
                (
                    b"/names/bad\xef\xbf\xbd".to_vec(),
                    "/names/bad\u{fffd}".to_string(),
                    true
                ),
                (
                    b"/names/bad\xff".to_vec(),
                    "/names/bad\\xff".to_string(),
                    false
                ),
                (
                    b"/names/ok\xfe".to_vec(),
                    "/names/ok\\xfe".to_string(),
                    true
                ),
            ]
        );
        // read_dir: escaped names (never merged), and the raw bytes.
        let listed: Vec<(String, Vec<u8>)> = fs_t
            .read_dir("/names")
            .expect("read_dir")
            .into_iter()
            .map(|e| (e.name, e.raw_name))
            .collect();
        assert_eq!(
            listed,
            vec![
                ("bad\u{fffd}".to_string(), "bad\u{fffd}".as_bytes().to_vec()),
                ("bad\\xff".to_string(), b"bad\xff".to_vec()),
                ("ok\\xfe".to_string(), b"ok\xfe".to_vec()),
            ]
        );
    }
}

#[test]
fn accounts_come_from_the_image() {
    let fx = Fixture::new();
    for fs in fx.targets() {
        let a = fs.accounts();
        assert!(a.errors.is_empty(), "{:?}", a.errors);
        assert_eq!(a.user("munge").map(|u| u.uid), Some(990));
        assert!(std::ptr::eq(a, fs.accounts()), "parsed once");
    }
}

#[test]
fn open_errors_and_kinds() {
    let fx = Fixture::new();
    let missing = fx.dir.path().join("missing");
    let e = RootFs::open(&missing).expect_err("missing");
    assert!(matches!(e, OpenError::NotFound { .. }), "{e:?}");
    assert!(e.to_string().ends_with("does not exist"), "{e}");
    let e = RootFs::open(fx.dir.path().join("x")).expect_err("a file");
    assert!(matches!(e, OpenError::NotADirectory { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "target {} is not a directory",
            fx.dir.path().join("x").display()
        )
    );

    let fs = RootFs::open(fx.root()).expect("open");
    assert_eq!(fs.kind(), TargetKind::Rootfs);
    assert!(!fs.has(Need::Live));
    let host = fx.root().canonicalize().expect("canonical");
    assert_eq!(fs.describe(), format!("rootfs:{}", host.display()));

    let live = RootFs::live().expect("live");
    assert_eq!(live.kind(), TargetKind::Live);
    assert!(live.has(Need::Live) && live.has(Need::Exec));
    assert_eq!(live.describe(), "live:/");
    assert_eq!(live.canonicalize("/..").expect("root"), "/");
}

/// The reference Debian image from tests/rootfs/build.sh, if it builds.
fn debian() -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/rootfs/build.sh");
    let out = std::process::Command::new(&script).output();
    match out {
        Ok(out) if out.status.success() => {
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            Some(PathBuf::from(path))
        }
        Ok(out) => {
            println!(
                "note: skipped, {} failed: {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
        Err(e) => {
            println!("note: skipped, cannot run {}: {e}", script.display());
            None
        }
    }
}

#[test]
fn real_debian_rootfs_resolves_inside() {
    let Some(path) = debian() else { return };
    for resolver in [Resolver::Kernel, Resolver::Userspace] {
        let fs = RootFs::open_with(&path, resolver).expect("open image");
        // An absolute link to /lib/..., itself a link to usr/lib.
        let ld = fs
            .canonicalize("/lib64/ld-linux-x86-64.so.2")
            .expect("ld.so");
        assert!(ld.starts_with("/usr/lib"), "{resolver:?} {ld}");
        let md = fs
            .metadata("/lib64/ld-linux-x86-64.so.2", true)
            .expect("stat ld.so");
        assert_eq!(md.file_type, FileType::File);
        let host_md = std::fs::metadata(path.join(ld.trim_start_matches('/'))).expect("host");
        assert_eq!(
            (md.dev, md.ino),
            (host_md.dev(), host_md.ino()),
            "{resolver:?}"
        );
        let sh = fs.canonicalize("/bin/sh").expect("sh");
        assert!(sh.starts_with("/usr/bin/"), "{resolver:?} {sh}");
        let root = fs.accounts().user("root").expect("root user");
        assert_eq!(root.uid, 0);
    }
}

#[test]
fn real_debian_rootfs_resolvers_agree() {
    let Some(path) = debian() else { return };
    let kernel = match RootFs::open_with(&path, Resolver::Kernel) {
        Ok(fs) => fs,
        Err(e) => return println!("note: skipped, {e}"),
    };
    let user = RootFs::open_with(&path, Resolver::Userspace).expect("open image");
    let key = |r: io::Result<Metadata>| r.map(|m| (m.dev, m.ino)).map_err(|e| e.kind());
    let mut n = 0;
    for dir in ["/etc", "/usr/bin", "/lib64", "/usr/lib/x86_64-linux-gnu"] {
        kernel
            .walk(dir, &WalkOptions::default(), &mut |e| {
                let Ok(e) = e else { return true };
                n += 1;
                for follow in [true, false] {
                    let (k, u) = (
                        kernel.metadata(&e.path, follow),
                        user.metadata(&e.path, follow),
                    );
                    assert_eq!(key(k), key(u), "{} follow={follow}", e.path);
                }
                true
            })
            .expect("walk");
    }
    assert!(n > 1000, "{n}");
}

#[test]
fn open_reads_at_offsets_inside_the_image_only() {
    let fx = Fixture::new();
    for fs in fx.targets() {
        let r = fs.resolver();
        // Through an absolute link: the image's file, never the host's.
        let f = fs.open("/etc/abs").expect("open");
        assert_eq!(f.size(), 12, "{r:?}");
        assert_eq!(f.read_exact_at(6, 6).expect("read"), b"shadow", "{r:?}");
        let e = f.read_exact_at(6, 7).expect_err("past the end");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{r:?}");
        let e = fs.open("/etc/evil").err().expect("escape");
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{r:?}");
        let e = fs.open("/etc").err().expect("a directory");
        assert_eq!(e.to_string(), "not a regular file but a directory", "{r:?}");
    }
    // The default (in memory) behaves the same.
    let m = super::super::MemoryTarget::new().file("/x", 0o644, 0, 0, "image x");
    let f = m.open("/x").expect("open");
    assert_eq!(f.read_exact_at(6, 1).expect("read"), b"x");
    assert!(f.read_exact_at(u64::MAX, 1).is_err());
    assert!(m.open("/").is_err());
}

#[test]
fn open_gives_metadata_and_short_reads_at_the_end() {
    let fx = Fixture::new();
    for fs in fx.targets() {
        let r = fs.resolver();
        let f = fs.open("/etc/abs").expect("open");
        assert_eq!(f.metadata().file_type, FileType::File);
        assert_eq!(f.metadata().size, 12);
        let mut buf = [0u8; 6];
        assert_eq!(f.read_at(&mut buf, 6).expect("read"), 6, "{r:?}");
        assert_eq!(&buf, b"shadow");
        // Past the end: a short read, not an error.
        assert_eq!(f.read_at(&mut buf, 10).expect("read"), 2);
        assert_eq!(f.read_at(&mut buf, 1 << 40).expect("read"), 0);
        assert!(fs.open("/etc/evil").is_err(), "{r:?}");
        let e = fs.open("/etc").err().expect("a directory is refused");
        assert_eq!(e.kind(), io::ErrorKind::IsADirectory, "{r:?}");
    }
}
