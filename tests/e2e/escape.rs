//! Nothing inside an image may make nodecheck read the host: absolute
//! symlinks, `..` chains and symlinked directories all resolve inside the
//! root. Each escape attempt must read the image's file or end in a clean
//! fail/error, never in the host file's content.

use crate::util::*;

const SECRET: &str = "HOST-SECRET-5d1c";

#[test]
fn escapes_never_read_the_host() {
    let host = Tree::new();
    host.file("secret", 0o644, SECRET);
    let secret = host.path().join("secret").display().to_string();
    let secret_rel = secret.trim_start_matches('/');

    let img = Tree::new();
    img.file("rootfs/etc/shadow", 0o640, "IMAGE-SHADOW\n");
    img.file("rootfs/usr/lib/real.conf", 0o644, "IMAGE-LIB\n");
    img.link("rootfs/lib", "usr/lib");
    img.link("rootfs/etc/evil", &format!("/../../../../{secret_rel}"));
    img.link("rootfs/etc/abs", "/etc/shadow");
    img.link(
        "rootfs/etc/rel",
        &format!("../../../../../../../../{secret_rel}"),
    );
    img.link("rootfs/etc/chain1", "chain2");
    img.link("rootfs/etc/chain2", "/etc/evil");
    img.link("rootfs/updir", "../../../../../../..");
    img.link("rootfs/etc/loop1", "loop2");
    img.link("rootfs/etc/loop2", "loop1");
    let root = img.path().join("rootfs").display().to_string();

    // Every one of these must not see the host secret.
    let hostile = [
        "/etc/evil".to_string(),
        "/etc/rel".to_string(),
        "/etc/chain1".to_string(),
        format!("/updir/{secret_rel}"),
        format!("/../../../../../../{secret_rel}"),
        format!("/lib/../../../../../../{secret_rel}"),
        "/etc/loop1".to_string(),
    ];
    let mut profile = String::from("[profile]\nname = \"escape\"\n");
    for (i, p) in hostile.iter().enumerate() {
        profile += &format!(
            "[[control]]\nid = \"hostile-{i}\"\n[[control.file]]\npath = \"{p}\"\ncontent = {{ contains = \"{SECRET}\" }}\n\
             [[control.file]]\npath = \"{p}\"\nsha256 = \"{}\"\n",
            sha256_hex(SECRET)
        );
    }
    profile += "[[control]]\nid = \"abs-link-reads-image\"\n[[control.file]]\npath = \"/etc/abs\"\ncontent = { contains = \"IMAGE-SHADOW\" }\n\
                [[control]]\nid = \"usr-merged-lib\"\n[[control.file]]\npath = \"/lib/real.conf\"\ncontent = \"IMAGE-LIB\\n\"\n\
                [[control]]\nid = \"walk-stays-inside\"\n[[control.tree]]\npath = \"/\"\nworld_writable = false\n";
    img.file("p.toml", 0o644, &profile);
    let p = img.path().join("p.toml").display().to_string();
    let json = img.path().join("r.json");
    let o = nodecheck(&[
        "run",
        &p,
        "--target",
        &root,
        "--json",
        json.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert_eq!(
        code(&o),
        1,
        "hostile checks must fail:\n{out}\n{}",
        stderr(&o)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for c in report["controls"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let status = c["status"].as_str().unwrap();
        if id.starts_with("hostile-") {
            assert!(
                status == "fail" || status == "error",
                "{id} must not pass (that would mean the host file was read): {c:#}"
            );
        } else {
            assert_eq!(status, "pass", "{id}: {c:#}");
        }
    }
    assert!(!out.contains("panicked"), "{out}");
}

fn sha256_hex(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(s.as_bytes()))
}

/// A host loop device over a file full of `canary`, detached on drop: the
/// host thing a block-device node in an image may point at.
struct LoopCanary {
    dev: String,
    _file: tempfile::NamedTempFile,
}

impl LoopCanary {
    fn new(canary: &str) -> LoopCanary {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut body = format!("root:x:0:0:{canary}:/{canary}-home:/bin/sh\n")
            .repeat(64)
            .into_bytes();
        body.resize(1 << 20, b'\n');
        std::fs::write(file.path(), body).unwrap();
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
        let dev = String::from_utf8(out.stdout).unwrap().trim().to_string();
        LoopCanary { dev, _file: file }
    }

    fn rdev(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&self.dev).unwrap().rdev()
    }
}

impl Drop for LoopCanary {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.dev])
            .status();
    }
}

fn mknod(path: &std::path::Path, kind: nix::sys::stat::SFlag, rdev: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    nix::sys::stat::mknod(
        path,
        kind,
        nix::sys::stat::Mode::from_bits_truncate(0o644),
        rdev,
    )
    .unwrap();
}

/// Issue 11, defect 3: an image whose /etc/passwd and sshd_config are
/// block devices of a host loop device (and other files a FIFO and a
/// character device) gives `error` outcomes naming the files; the
/// device's bytes never reach any output or report. Run on the rootfs
/// target and on a container target (a process chrooted into the image).
#[test]
fn device_nodes_in_an_image_are_never_opened() {
    use nix::sys::stat::SFlag;
    assert!(is_root(), "needs root (mknod, losetup)");
    const CANARY: &str = "HOSTCANARY-0b7d";
    let dev = LoopCanary::new(CANARY);
    let img = Tree::new();
    let root = img.path().join("rootfs");
    img.file("rootfs/etc/shadow", 0o640, "root:*:19000::::::\n");
    mknod(&root.join("etc/passwd"), SFlag::S_IFBLK, dev.rdev());
    mknod(
        &root.join("etc/ssh/sshd_config"),
        SFlag::S_IFBLK,
        dev.rdev(),
    );
    mknod(
        &root.join("etc/motd"),
        SFlag::S_IFCHR,
        nix::sys::stat::makedev(1, 3),
    );
    nix::unistd::mkfifo(
        &root.join("etc/group"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    img.file(
        "p.toml",
        0o644,
        r#"[profile]
name = "devices"
[[control]]
id = "passwd"
  [[control.user]]
  name = "root"
  home = "/root"
[[control]]
id = "sshd"
  [[control.file]]
  path    = "/etc/ssh/sshd_config"
  content = { contains = "PermitRootLogin" }
[[control]]
id = "fifo"
  [[control.file]]
  path    = "/etc/group"
  content = { contains = "root" }
[[control]]
id = "chardev"
  [[control.file]]
  path    = "/etc/motd"
  content = { contains = "Debian" }
"#,
    );
    let p = img.path().join("p.toml").display().to_string();
    // A process whose root is the image: `pid:PID` reads it as a container.
    let mut jail = std::process::Command::new("python3")
        .args([
            "-c",
            "import os,sys,time; os.chroot(sys.argv[1]); os.chdir('/'); print('in', flush=True); time.sleep(60)",
        ])
        .arg(&root)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(jail.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let container = format!("pid:{}", jail.id());
    for target in [root.display().to_string(), container] {
        let json = img.path().join("r.json");
        let o = nodecheck(&[
            "run",
            &p,
            "--target",
            &target,
            "--json",
            json.to_str().unwrap(),
        ]);
        let report = std::fs::read_to_string(&json).unwrap();
        let all = format!("{}\n{}\n{report}", stdout(&o), stderr(&o));
        assert!(!all.contains(CANARY), "{target}: host device read:\n{all}");
        let report: serde_json::Value = serde_json::from_str(&report).unwrap();
        for c in report["controls"].as_array().unwrap() {
            let id = c["id"].as_str().unwrap();
            // The file kind looks at the type first and fails ("is a
            // block, not a regular file"); what reads the content (the
            // accounts behind `user`) gets the door's error.
            let status = c["status"].as_str().unwrap();
            assert!(
                status == "error" || (status == "fail" && id != "passwd"),
                "{target}: {id}: {c:#}"
            );
            let text = c.to_string();
            let file = match id {
                "passwd" => "/etc/passwd",
                "sshd" => "/etc/ssh/sshd_config",
                "fifo" => "/etc/group",
                _ => "/etc/motd",
            };
            assert!(
                text.contains(file) && text.contains("not a regular file"),
                "{target}: {id} must name {file}: {c:#}"
            );
        }
    }
    let _ = jail.kill();
    let _ = jail.wait();
}

/// Issue 11, defect 5: a directory swapped for a symlink to the host
/// while `tree` walks the image (again and again) never leads the walk
/// there: no host name or mode appears in any run.
#[test]
fn walks_never_follow_a_directory_swapped_for_a_link() {
    const CANARY: &str = "HOST-CANARY-NAME-e41a";
    let host = Tree::new();
    // Whatever lists the host directory reports this name: as a finding
    // (world-writable) or as an error (gone by the time it is looked at).
    host.file(CANARY, 0o666, "host");
    let img = Tree::new();
    let root = img.path().join("rootfs");
    // A directory walked before /a, so that time passes between listing
    // / (a is a directory) and entering /a (it may be a link by then).
    for i in 0..1000 {
        img.file(&format!("rootfs/0/f{i}"), 0o644, "image");
    }
    for i in 0..30 {
        img.file(&format!("rootfs/a/b/f{i}"), 0o644, "image");
    }
    img.file(
        "p.toml",
        0o644,
        "[profile]\nname = \"race\"\n[[control]]\nid = \"walk\"\n[[control.tree]]\npath = \"/\"\nworld_writable = false\nbroken_symlinks = false\n",
    );
    let p = img.path().join("p.toml").display().to_string();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let (a, tmp, link) = (root.join("a"), root.join("a.dir"), root.join("a.link"));
            std::os::unix::fs::symlink(host.path(), &link).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::rename(&a, &tmp);
                let _ = std::fs::rename(&link, &a);
                let _ = std::fs::rename(&a, &link);
                let _ = std::fs::rename(&tmp, &a);
            }
        });
        for _ in 0..100 {
            let o = nodecheck(&["run", &p, "--target", root.to_str().unwrap()]);
            let all = format!("{}\n{}", stdout(&o), stderr(&o));
            if all.contains(CANARY) {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                panic!("the walk followed the swapped link to the host:\n{all}");
            }
            assert!(!all.contains("panicked"), "{all}");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

/// Issue 11, defect 8: a broken link whose name is not UTF-8, next to a
/// working decoy that lossy conversion names the same, is reported (with
/// its byte escaped), and a working link with a non-UTF-8 name is not.
#[test]
fn names_that_are_not_utf8_are_neither_falsely_broken_nor_hidden() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let img = Tree::new();
    img.file("rootfs/etc/shadow", 0o640, "x\n");
    let names = img.path().join("rootfs/names");
    std::fs::create_dir_all(&names).unwrap();
    let raw = |b: &[u8]| names.join(OsStr::from_bytes(b));
    std::os::unix::fs::symlink("/nowhere", raw(b"bad\xff")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", raw("bad\u{fffd}".as_bytes())).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", raw(b"ok\xfe")).unwrap();
    img.file(
        "p.toml",
        0o644,
        "[profile]\nname = \"bytes\"\n[[control]]\nid = \"links\"\n[[control.tree]]\npath = \"/names\"\nbroken_symlinks = false\n",
    );
    let p = img.path().join("p.toml").display().to_string();
    let root = img.path().join("rootfs");
    let o = nodecheck(&["run", &p, "--target", root.to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}\n{}", stderr(&o));
    assert!(out.contains("1 broken symlink under /names"), "{out}");
    assert!(out.contains(r"/names/bad\xff -> /nowhere"), "{out}");
    assert!(
        !out.contains("/names/ok"),
        "a working link reported broken:\n{out}"
    );
}

/// Issue 11, defect 8, for the ELF scan: an ELF file whose name is not
/// UTF-8 next to a text file that lossy conversion names the same is
/// neither skipped (the look-alike sniffed in its place) nor loaded by a
/// wrong name: the scan says it cannot check it, naming it escaped.
#[test]
fn elf_scan_names_a_program_whose_name_is_not_utf8() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let img = Tree::new();
    let dir = img.path().join("rootfs/opt/app");
    std::fs::create_dir_all(&dir).unwrap();
    // An ELF header: magic, 64-bit, little-endian, e_type ET_DYN.
    let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
    elf.resize(16, 0);
    elf.extend_from_slice(&3u16.to_le_bytes());
    elf.resize(64, 0);
    // Both executable: candidates of the scan (a 0644 file with neither
    // an execute bit nor a .so name is not opened at all).
    use std::os::unix::fs::PermissionsExt;
    let exe = std::fs::Permissions::from_mode(0o755);
    std::fs::write(dir.join(OsStr::from_bytes(b"prog\xff")), &elf).unwrap();
    std::fs::set_permissions(dir.join(OsStr::from_bytes(b"prog\xff")), exe.clone()).unwrap();
    std::fs::write(
        dir.join("prog\u{fffd}"),
        "#!/bin/sh\n# not an ELF file, and longer than an ELF header\n",
    )
    .unwrap();
    std::fs::set_permissions(dir.join("prog\u{fffd}"), exe).unwrap();
    img.file(
        "p.toml",
        0o644,
        "[profile]\nname = \"elf-bytes\"\n[[control]]\nid = \"app\"\n[[control.elf]]\npath = \"/opt/app\"\nresolves = true\n",
    );
    let p = img.path().join("p.toml").display().to_string();
    let root = img.path().join("rootfs");
    let o = nodecheck(&["run", &p, "--target", root.to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}\n{}", stderr(&o));
    assert!(out.contains(r"/opt/app/prog\xff"), "{out}");
    assert!(!out.contains("panicked"), "{out}");
}
