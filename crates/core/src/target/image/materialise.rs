//! Programs in a packed image: the tree is written out once per run, as
//! root, into a private directory (owners, modes, xattrs, device nodes
//! kept), the existing rootfs sandbox runs over it, and it is removed when
//! the target is dropped. The image file is only read.
//!
//! Only real directories this code created are ever descended into: an
//! entry is created by its name (no `/`, never `..`, refused when the
//! index was built) inside its parent's directory, and a symlink of the
//! image is created as a symlink, never followed. The outer directory is
//! 0700, so nobody else reaches the tree while it exists.

use std::ffi::{CString, OsStr};
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{ImageTarget, Node};
use crate::target::FileType;

/// The written-out tree: removed with this value.
pub(crate) struct Materialised {
    // Dropped after `rootfs` (field order): the sandbox's handles first.
    pub rootfs: crate::target::RootFs,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for Materialised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Materialised(..)")
    }
}

/// Writes the image out under a fresh private directory of `$TMPDIR`.
pub(crate) fn materialise(image: &ImageTarget) -> io::Result<Materialised> {
    let dir = tempfile::Builder::new()
        .prefix("nodecheck-image-")
        .tempdir()?;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))?;
    let root = dir.path().join("root");
    fs::DirBuilder::new().mode(0o700).create(&root)?;
    let mut written: Vec<Option<PathBuf>> = vec![None; image.index.nodes.len()];
    write_dir(image, 0, &root, &mut written)?;
    apply(&root, &image.index.nodes[0], true)?;
    let rootfs = crate::target::RootFs::open(&root).map_err(io::Error::other)?;
    Ok(Materialised { rootfs, _dir: dir })
}

fn write_dir(
    image: &ImageTarget,
    n: usize,
    at: &Path,
    written: &mut Vec<Option<PathBuf>>,
) -> io::Result<()> {
    for (name, &child) in &image.index.nodes[n].children {
        let path = at.join(OsStr::from_bytes(name));
        let node = &image.index.nodes[child];
        // A second name of a hard-link set.
        if let Some(first) = &written[child] {
            fs::hard_link(first, &path)?;
            continue;
        }
        match node.attrs.file_type {
            FileType::Directory => {
                fs::DirBuilder::new().mode(0o700).create(&path)?;
                write_dir(image, child, &path, written)?;
            }
            FileType::File => {
                let mut out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode_0600()
                    .open(&path)?;
                let file = image.file_of(child);
                let mut buf = vec![0; 1 << 20];
                let mut off = 0;
                loop {
                    let got = crate::target::FileAt::read_at(&file, &mut buf, off)?;
                    if got == 0 {
                        break;
                    }
                    out.write_all(&buf[..got])?;
                    off += got as u64;
                }
            }
            FileType::Symlink => {
                std::os::unix::fs::symlink(OsStr::from_bytes(&node.attrs.link), &path)?;
            }
            FileType::Char | FileType::Block | FileType::Fifo => {
                let kind = match node.attrs.file_type {
                    FileType::Char => nix::sys::stat::SFlag::S_IFCHR,
                    FileType::Block => nix::sys::stat::SFlag::S_IFBLK,
                    _ => nix::sys::stat::SFlag::S_IFIFO,
                };
                nix::sys::stat::mknod(
                    &path,
                    kind,
                    nix::sys::stat::Mode::from_bits_truncate(0o600),
                    node.attrs.rdev,
                )?;
            }
            // A socket is bound by a running program, never unpacked.
            FileType::Socket => continue,
        }
        written[child] = Some(path.clone());
        apply(&path, node, node.attrs.file_type != FileType::Symlink)?;
    }
    Ok(())
}

/// Owner, mode, xattrs and mtime as the archive records them (symlinks:
/// owner and mtime only, never followed).
fn apply(path: &Path, node: &Node, chmod: bool) -> io::Result<()> {
    use nix::fcntl::AT_FDCWD;
    use nix::unistd::{FchownatFlags, Gid, Uid, fchownat};
    let a = &node.attrs;
    fchownat(
        AT_FDCWD,
        path,
        Some(Uid::from_raw(a.uid)),
        Some(Gid::from_raw(a.gid)),
        FchownatFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    let c = CString::new(path.as_os_str().as_bytes())?;
    for (name, value) in &a.xattrs {
        let Ok(name) = CString::new(name.clone()) else {
            continue;
        };
        // SAFETY: both strings are NUL-terminated and live across the call;
        // the value pointer and length describe one slice.
        let r = unsafe {
            libc::lsetxattr(
                c.as_ptr(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            // A filesystem without xattrs (or without this namespace) loses
            // them, as `tar --xattrs` would.
            if !matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP) | Some(libc::EPERM)) {
                return Err(e);
            }
        }
    }
    // After chown (which clears setuid bits).
    if chmod {
        fs::set_permissions(path, fs::Permissions::from_mode(a.mode & 0o7777))?;
    }
    let t = nix::sys::time::TimeSpec::new(a.mtime, 0);
    nix::sys::stat::utimensat(
        AT_FDCWD,
        path,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}
