//! squashfs: images made by the real `mksquashfs` (squashfs-tools, in
//! tests/deps.sh) from a small tree, with each compressor Debian's build
//! offers, then read back and compared with the tree; and hostile copies.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use super::*;
use crate::target::{Target, WalkOptions};

/// Bytes that do not compress to nothing.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn setxattr(path: &Path, name: &str, value: &[u8]) {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid NUL-terminated strings and a valid buffer.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr {name}: {}", io::Error::last_os_error());
}

/// The source tree: blocks and a fragment tail, a sparse file, hard
/// links, symlinks out, an empty file and directory, 300 names in one
/// directory (several directory headers), owners, setuid, xattrs.
fn tree(dir: &Path) {
    let w = |p: &str, b: &[u8]| {
        let p = dir.join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b).unwrap();
    };
    w(
        "etc/passwd",
        b"root:x:0:0::/root:/bin/sh\nmunge:x:101:102::/:/bin/false\n",
    );
    w("etc/group", b"root:x:0:\nmunge:x:102:\n");
    w("usr/bin/su", &noise(40_000, 1));
    fs::set_permissions(dir.join("usr/bin/su"), fs::Permissions::from_mode(0o4755)).unwrap();
    w("usr/lib/big", &noise(300 << 10, 2));
    let mut sparse = vec![0; 256 << 10];
    sparse.extend_from_slice(b"tail");
    w("var/sparse", &sparse);
    w("usr/bin/a", b"shared by two names");
    fs::hard_link(dir.join("usr/bin/a"), dir.join("usr/bin/b")).unwrap();
    w("empty", b"");
    fs::create_dir_all(dir.join("var/empty")).unwrap();
    fs::create_dir_all(dir.join("dev")).unwrap();
    for i in 0..300 {
        w(&format!("many/f{i:03}"), format!("{i}").as_bytes());
    }
    std::os::unix::fs::symlink("../../../../etc/passwd", dir.join("escape")).unwrap();
    std::os::unix::fs::symlink("/etc/group", dir.join("abs")).unwrap();
    std::os::unix::fs::chown(dir.join("etc/group"), Some(101), Some(102)).unwrap();
    setxattr(&dir.join("usr/bin/su"), "user.nodecheck", b"setuid");
    setxattr(&dir.join("usr/lib/big"), "user.nodecheck", b"big");
}

fn mksquashfs(src: &Path, out: &Path, comp: &str) {
    let o = Command::new("mksquashfs")
        .arg(src)
        .arg(out)
        .args([
            "-comp",
            comp,
            "-noappend",
            "-quiet",
            "-no-progress",
            "-processors",
            "1",
        ])
        // A character device, as a pseudo file (no mknod needed).
        .args(["-p", "dev/console c 600 0 0 5 1"])
        .output()
        .expect("mksquashfs (squashfs-tools, tests/deps.sh)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Every name of `src` answers in the image as on the tree.
fn same_as_tree(t: &ImageTarget, src: &Path) {
    let mut n = 0;
    for e in walk(src) {
        let rel = e.strip_prefix(src).unwrap();
        let path = format!("/{}", rel.display());
        let md = fs::symlink_metadata(&e).unwrap();
        let got = t
            .metadata(&path, false)
            .unwrap_or_else(|err| panic!("{path}: {err}"));
        assert_eq!(got.mode, md.mode() & 0o7777, "{path}");
        assert_eq!((got.uid, got.gid), (md.uid(), md.gid()), "{path}");
        let secs =
            |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs(got.mtime.unwrap()), md.mtime() as u64, "{path}");
        if md.is_file() {
            assert_eq!(
                t.read(&path, 1 << 30).unwrap(),
                fs::read(&e).unwrap(),
                "{path}"
            );
            assert_eq!(got.nlink, md.nlink(), "{path}");
        } else if md.is_symlink() {
            assert_eq!(
                t.read_link(&path).unwrap(),
                fs::read_link(&e).unwrap().to_str().unwrap()
            );
        } else {
            assert_eq!(got.file_type, FileType::Directory, "{path}");
        }
        n += 1;
    }
    assert!(n > 300, "{n}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn squashfs_of_each_compressor_reads_like_its_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    tree(&src);
    for comp in ["gzip", "xz", "zstd", "lz4", "lzma", "lzo"] {
        let img = tmp.path().join(format!("img.{comp}"));
        mksquashfs(&src, &img, comp);
        let t = ImageTarget::open(&img).unwrap_or_else(|e| panic!("{comp}: {e}"));
        assert_eq!(t.info().format, Format::Squashfs);
        assert_eq!(t.info().compression[0].as_str(), comp);
        same_as_tree(&t, &src);
        // Owners, setuid, hard links, xattrs, devices, links resolved inside.
        let su = t.metadata("/usr/bin/su", false).unwrap();
        assert_eq!(su.mode, 0o4755);
        assert_eq!(
            t.xattrs("/usr/bin/su").unwrap(),
            [(b"user.nodecheck".to_vec(), b"setuid".to_vec())]
        );
        let (a, b) = (
            t.metadata("/usr/bin/a", false).unwrap(),
            t.metadata("/usr/bin/b", false).unwrap(),
        );
        assert_eq!((a.ino, a.nlink), (b.ino, 2));
        let dev = t.metadata("/dev/console", false).unwrap();
        assert_eq!((dev.file_type, dev.mode), (FileType::Char, 0o600));
        assert_eq!(t.rdev("/dev/console").unwrap(), libc::makedev(5, 1));
        assert_eq!(t.canonicalize("/escape").unwrap(), "/etc/passwd");
        assert_eq!(t.accounts().user_name(101), "munge");
        // Random access: pieces of the big file at block edges.
        let big = fs::read(src.join("usr/lib/big")).unwrap();
        let f = t.open("/usr/lib/big").unwrap();
        for off in [0, 1, 131_071, 131_072, 262_143, 262_144, 300 * 1024 - 3] {
            let mut buf = [0; 7];
            let n = f.read_at(&mut buf, off as u64).unwrap();
            let want = &big[off..(off + 7).min(big.len())];
            assert_eq!(&buf[..n], &want[..n], "{comp} @{off}");
            assert!(n > 0);
        }
        assert_eq!(f.read_at(&mut [0; 4], big.len() as u64).unwrap(), 0);
        // One read across block edges and into the fragment fills the
        // whole buffer, as pread does (the ELF reader relies on it; short
        // reads made /usr/bin ELF files of the reference unreadable).
        let mut buf = vec![0; 200_000];
        assert_eq!(f.read_at(&mut buf, 100_000).unwrap(), 200_000, "{comp}");
        assert_eq!(buf, big[100_000..300_000], "{comp}");
        let mut tail = vec![0; 100_000];
        let n = f.read_at(&mut tail, 262_000).unwrap();
        assert_eq!(&tail[..n], &big[262_000..], "{comp}");
    }
}

/// A squashfs of the tree, for the hostile tests.
fn small_image() -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::create_dir(src.join("d")).unwrap();
    fs::write(src.join("d/f"), noise(200_000, 4)).unwrap();
    fs::write(src.join("small"), b"small file").unwrap();
    std::os::unix::fs::symlink("/d/f", src.join("l")).unwrap();
    setxattr(&src.join("small"), "user.k", b"v");
    let img = tmp.path().join("img");
    mksquashfs(&src, &img, "gzip");
    fs::read(img).unwrap()
}

fn open_squash(bytes: &[u8]) -> io::Result<ImageTarget> {
    ImageTarget::open_as(super::tests::file_of(bytes).path(), Some(Format::Squashfs))
}

fn read_everything(t: &ImageTarget) {
    t.walk(
        "/",
        &WalkOptions {
            links: true,
            ..Default::default()
        },
        &mut |e| {
            if let Ok(e) = e {
                let _ = t.xattrs(&e.path);
                if e.metadata.file_type == FileType::File {
                    let _ = t.read(&e.path, 1 << 24);
                }
            }
            true
        },
    )
    .unwrap();
}

#[test]
fn truncated_or_corrupt_squashfs_is_an_error_never_a_panic() {
    let full = small_image();
    let t = open_squash(&full).unwrap();
    assert_eq!(t.read("/small", 100).unwrap(), b"small file");
    // Every prefix short of what the superblock says the filesystem
    // uses (the rest is mksquashfs' padding to 4 KiB).
    let used = sb(&full, 40) as usize;
    for len in (0..used).step_by(61).chain([0, 95, 96, used - 1]) {
        let e = open_squash(&full[..len]).err().map(|e| e.to_string());
        let e = e.unwrap_or_else(|| panic!("a {len}-byte prefix opened"));
        assert!(e.contains("squashfs"), "{e}");
    }
    // Flipped bytes: an error, or an index that answers. Every byte of
    // the superblock and tables, every 101st of the data blocks.
    let tables = sb(&full, 64) as usize;
    let bytes = (0..96).chain((96..tables).step_by(101)).chain(tables..used);
    for i in bytes {
        let mut b = full.clone();
        b[i] ^= 0xa5;
        if let Ok(t) = open_squash(&b) {
            read_everything(&t);
        }
    }
    // Wrong magic, said by name.
    let mut b = full.clone();
    b[0] = b'x';
    let e = open_squash(&b).err().unwrap().to_string();
    assert!(e.contains("no `hsqs` magic"), "{e}");
}

/// The little-endian superblock fields of `img`, for hand-made damage.
fn sb(img: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(img[at..at + 8].try_into().unwrap())
}

#[test]
fn hostile_tables_are_errors_naming_what_is_wrong() {
    let full = small_image();
    // The inode table pointed past the end.
    let mut b = full.clone();
    b[64..72].copy_from_slice(&(full.len() as u64 + 10).to_le_bytes());
    let e = open_squash(&b).err().unwrap().to_string();
    assert!(
        e.contains("inode table") && e.contains("past the end"),
        "{e}"
    );
    // A root inode reference outside the inode table.
    let mut b = full.clone();
    b[32..40].copy_from_slice(&(0xffff_ffffu64 << 16).to_le_bytes());
    let e = open_squash(&b).err().unwrap().to_string();
    assert!(e.contains("root inode"), "{e}");
    // Block size out of range.
    let mut b = full.clone();
    b[12..16].copy_from_slice(&(3u32 << 20).to_le_bytes());
    let e = open_squash(&b).err().unwrap().to_string();
    assert!(e.contains("bad block size"), "{e}");
    // Unknown compressor.
    let mut b = full.clone();
    b[20..22].copy_from_slice(&9u16.to_le_bytes());
    let e = open_squash(&b).err().unwrap().to_string();
    assert!(e.contains("unknown compressor id 9"), "{e}");
    // squashfs 3 is not read.
    let mut b = full.clone();
    b[28..30].copy_from_slice(&3u16.to_le_bytes());
    let e = open_squash(&b).err().unwrap().to_string();
    assert!(e.contains("squashfs 3.0 is not read"), "{e}");
    // Fragments used, but no fragment table: an error at open (it was a
    // panic on the first read of `small`).
    let mut b = full.clone();
    b[80..88].copy_from_slice(&u64::MAX.to_le_bytes());
    let e = open_squash(&b).err().unwrap().to_string();
    assert!(
        e.contains("entry /small: inode") && e.contains("past the fragment table"),
        "{e}"
    );
    // The id table index pointing at garbage.
    let mut b = full.clone();
    let id = sb(&full, 48) as usize;
    b[id..id + 8].copy_from_slice(&(full.len() as u64 - 1).to_le_bytes());
    let e = open_squash(&b).err().unwrap().to_string();
    assert!(e.contains("id table"), "{e}");
}

/// A squashfs of `src` with every table uncompressed (`-noI -noD -noF
/// -noX`, plus `extra`), so a test can edit its tables in place.
fn plain_squashfs(src: &Path, extra: &[&str]) -> Vec<u8> {
    let img = src.with_extension("sqfs");
    let o = Command::new("mksquashfs")
        .arg(src)
        .arg(&img)
        .args([
            "-noappend",
            "-quiet",
            "-no-progress",
            "-noI",
            "-noD",
            "-noF",
            "-noX",
        ])
        .args(extra)
        .output()
        .expect("mksquashfs (squashfs-tools, tests/deps.sh)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    fs::read(&img).unwrap()
}

#[test]
fn a_squashfs_directory_loop_is_an_error() {
    // Uncompressed tables (-noI -noD) so the directory table can be
    // edited in place: point `d`'s entry at the root directory's inode.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("d/e")).unwrap();
    let mut b = plain_squashfs(&src, &[]);
    assert!(open_squash(&b).is_ok());
    // The root inode reference; the directory table holds entries
    // `d` (in /) and `e` (in /d), each an 8-byte entry + name. Make
    // `e`'s entry name the root inode: same metadata block, root offset.
    let root = sb(&b, 32);
    let dir = sb(&b, 72) as usize;
    let id = sb(&b, 48) as usize;
    let table = &b[dir..id];
    let e_at = table.windows(2).rposition(|w| w == [0, b'e']).unwrap() - 8 + 1;
    // Entry: offset u16, inode_offset i16, type u16, size u16, name.
    let at = dir + e_at;
    // A one-name listing header precedes it (count, start, inode number):
    // aim both at the root.
    b[at - 12 + 4..at - 12 + 8].copy_from_slice(&((root >> 16) as u32).to_le_bytes());
    b[at..at + 2].copy_from_slice(&((root & 0xffff) as u16).to_le_bytes());
    let e = open_squash(&b)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("directory loop"), "{e:?}");
}

#[test]
fn a_squashfs_file_size_far_past_the_image_is_an_error() {
    // Uncompressed tables, no fragments: the file's inode holds its size
    // in plain sight (blocks_start 96, no fragment, offset 0, size 10).
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), b"0123456789").unwrap();
    let b = plain_squashfs(&src, &["-no-fragments"]);
    assert_eq!(
        open_squash(&b).unwrap().read("/f", 100).unwrap(),
        b"0123456789"
    );
    let pat = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 10, 0, 0, 0];
    let at = b.windows(12).position(|w| w == pat).unwrap() + 8;
    for size in [0xffff_fff0u32, 1 << 20, 131_073] {
        let mut b = b.clone();
        b[at..at + 4].copy_from_slice(&size.to_le_bytes());
        match open_squash(&b) {
            // The block list runs past the inode table.
            Err(e) => assert!(e.to_string().contains("entry /f"), "{e}"),
            // Or it fits (a small lie): reading names the damage.
            Ok(t) => {
                let e = t.read("/f", 1 << 30).unwrap_err().to_string();
                assert!(
                    e.contains("data block") || e.contains("blocks end"),
                    "{size}: {e}"
                );
            }
        }
    }
}
