//! A root filesystem directory (or `/` for the live node).
//!
//! Every path a profile names is resolved inside the root through
//! [`resolve`](super::resolve) on a held directory fd, never by joining it
//! onto the host path: an image's `/lib64 -> /usr/lib64` or
//! `etc/x -> ../../../../etc/shadow` stays in the image.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, fstat};

use super::resolve::{self, Resolver, lossy, path_flags};
use super::walk::{self, Walker, metadata_of};
use super::{
    Accounts, DirEntry, FileAt, FileType, FsStats, Memo, Metadata, Need, READ_LIMIT, Target,
    TargetKind, Visited, WalkEntry, WalkOptions,
};

/// Why a target could not be opened (the CLI exits with 3).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Nothing at the path.
    #[error("target {} does not exist", .path.display())]
    NotFound { path: PathBuf },
    /// The path is a file (or a component of it is).
    #[error("target {} is not a directory", .path.display())]
    NotADirectory { path: PathBuf },
    /// Any other failure (permissions, or openat2 unusable when
    /// [`Resolver::Kernel`] was asked for).
    // The io error is part of the message (not `#[source]`) so that a plain
    // `{}` shows why, without printing it twice in an error chain.
    #[error("cannot open target {}: {error}", .path.display())]
    Io { path: PathBuf, error: io::Error },
}

/// A root filesystem: an unpacked image directory, or `/` of the live node.
///
/// ```no_run
/// use nodecheck_core::target::{RootFs, Target, READ_LIMIT};
/// let image = RootFs::open("/srv/images/compute")?;
/// // Reads the image's /etc/os-release, even if it is an absolute symlink.
/// let text = image.read("/etc/os-release", READ_LIMIT)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RootFs {
    /// `O_PATH|O_DIRECTORY` fd of the root: every lookup starts here.
    root: OwnedFd,
    /// The root on the host, canonical. Used only for reports and as the
    /// base of [`Target::walk`] (after the start was resolved in the root).
    host: PathBuf,
    kind: TargetKind,
    /// `Kernel` or `Userspace`, never `Auto` once opened.
    resolver: Resolver,
    /// Something may change the tree while we read it (a running
    /// container, users of the live node): the content door then reopens
    /// the inode it checked (see [`walk`]) instead of opening the name
    /// again. A still image is checked, opened and checked again.
    race_free: bool,
    accounts: OnceLock<Accounts>,
    memo: Memo,
}

impl RootFs {
    /// Opens an unpacked root filesystem directory (kind `rootfs`).
    pub fn open(path: impl AsRef<Path>) -> Result<RootFs, OpenError> {
        RootFs::open_with(path, Resolver::Auto)
    }

    /// Like [`RootFs::open`], with a chosen resolver. `Resolver::Kernel`
    /// fails when openat2 is unusable; tests force `Resolver::Userspace` to
    /// exercise the fallback on kernels that have openat2.
    pub fn open_with(path: impl AsRef<Path>, resolver: Resolver) -> Result<RootFs, OpenError> {
        RootFs::open_kind(path.as_ref(), resolver, TargetKind::Rootfs)
    }

    /// The booted node nodecheck runs on: root `/`, kind `live`.
    pub fn live() -> Result<RootFs, OpenError> {
        RootFs::open_kind(Path::new("/"), Resolver::Auto, TargetKind::Live)
    }

    /// The root of a running process, through `/proc/PID/root` (kind
    /// `container`). The path is kept as is: canonicalising the magic link
    /// would name the host's `/`.
    pub(crate) fn process_root(pid: i32) -> Result<RootFs, OpenError> {
        let path = PathBuf::from(format!("/proc/{pid}/root"));
        let mut fs = RootFs::open_kind(&path, Resolver::Auto, TargetKind::Container)?;
        fs.host = path;
        Ok(fs)
    }

    /// The resolver in use: `Kernel` or `Userspace` (what `Auto` chose).
    pub fn resolver(&self) -> Resolver {
        self.resolver
    }

    /// The root directory on the host.
    pub fn host_path(&self) -> &Path {
        &self.host
    }

    fn open_kind(path: &Path, resolver: Resolver, kind: TargetKind) -> Result<RootFs, OpenError> {
        let io_err = |error: io::Error| match error.kind() {
            io::ErrorKind::NotFound => OpenError::NotFound { path: path.into() },
            io::ErrorKind::NotADirectory => OpenError::NotADirectory { path: path.into() },
            _ => OpenError::Io {
                path: path.into(),
                error,
            },
        };
        // The target path itself comes from the operator, not from the
        // image, so following host symlinks here is intended.
        let root = nix::fcntl::open(path, path_flags(true) | OFlag::O_DIRECTORY, Mode::empty())
            .map_err(|e| io_err(e.into()))?;
        // `O_PATH` opens a directory its user cannot enter: every check
        // would then fail on its own. Say so once, naming the target.
        nix::unistd::faccessat(
            &root,
            ".",
            nix::unistd::AccessFlags::X_OK,
            nix::fcntl::AtFlags::AT_EACCESS,
        )
        .map_err(|e| io_err(e.into()))?;
        let host = if kind == TargetKind::Container {
            path.to_path_buf()
        } else {
            std::fs::canonicalize(path).map_err(io_err)?
        };
        let resolver = match resolver {
            Resolver::Auto => match resolve::kernel_available(root.as_fd()) {
                Ok(()) => Resolver::Kernel,
                Err(_) => Resolver::Userspace,
            },
            Resolver::Kernel => {
                resolve::kernel_available(root.as_fd()).map_err(|e| OpenError::Io {
                    path: path.into(),
                    error: io::Error::other(format!("openat2 is not usable: {}", e.desc())),
                })?;
                Resolver::Kernel
            }
            Resolver::Userspace => Resolver::Userspace,
        };
        Ok(RootFs {
            root,
            host,
            kind,
            resolver,
            race_free: kind != TargetKind::Rootfs,
            accounts: OnceLock::new(),
            memo: Memo::default(),
        })
    }

    /// Opens `path` inside the root: `O_PATH` lookups and directories
    /// only; file content goes through the door ([`RootFs::content`]).
    fn open_fd(&self, path: &str, flags: OFlag) -> io::Result<OwnedFd> {
        debug_assert!(flags.intersects(OFlag::O_PATH | OFlag::O_DIRECTORY));
        resolve::open(self.resolver, self.root.as_fd(), path, flags)
    }

    /// The content door for a path (symlinks followed inside the root).
    fn content(&self, path: &[u8]) -> io::Result<walk::Regular> {
        walk::open_path(self.resolver, self.root.as_fd(), path, self.race_free)
    }

    fn walker<'a>(&'a self, options: &'a WalkOptions) -> Walker<'a> {
        Walker {
            root: self.root.as_fd(),
            resolver: self.resolver,
            race_free: self.race_free,
            options,
        }
    }
}

/// Flags for listing a directory: never block, never take a terminal.
fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_DIRECTORY
}

impl Target for RootFs {
    fn kind(&self) -> TargetKind {
        self.kind
    }

    fn describe(&self) -> String {
        format!("{}:{}", self.kind, self.host.display())
    }

    fn has(&self, need: Need) -> bool {
        match need {
            Need::Live => self.kind == TargetKind::Live,
            // The live node runs programs directly; a rootfs needs the
            // sandbox, which needs root or unprivileged user namespaces.
            Need::Exec => match self.kind {
                TargetKind::Live => true,
                _ => super::sandbox::available(&self.host).is_ok(),
            },
            Need::Root => nix::unistd::geteuid().is_root(),
            Need::Image => false,
        }
    }

    fn metadata(&self, path: &str, follow: bool) -> io::Result<Metadata> {
        let fd = self.open_fd(path, path_flags(follow))?;
        Ok(metadata_of(&fstat(&fd)?))
    }

    fn read_link(&self, path: &str) -> io::Result<String> {
        let fd = self.open_fd(path, path_flags(false))?;
        if FileType::from_mode(fstat(&fd)?.st_mode) != FileType::Symlink {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a symlink"));
        }
        Ok(lossy(nix::fcntl::readlinkat(&fd, "")?))
    }

    fn canonicalize(&self, path: &str) -> io::Result<String> {
        resolve::canonicalize(self.root.as_fd(), path)
    }

    fn read(&self, path: &str, limit: u64) -> io::Result<Vec<u8>> {
        self.content(path.as_bytes())?.read_all(limit)
    }

    fn memo(&self) -> Option<&Memo> {
        Some(&self.memo)
    }

    fn open(&self, path: &str) -> io::Result<Box<dyn FileAt>> {
        Ok(Box::new(self.content(path.as_bytes())?))
    }

    fn read_dir(&self, path: &str) -> io::Result<Vec<DirEntry>> {
        let fd = self.open_fd(path, dir_flags())?;
        let mut dir = nix::dir::Dir::from_fd(fd)?;
        let dirfd = dir.as_fd().try_clone_to_owned()?;
        let mut out = Vec::new();
        for entry in dir.iter() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let file_type = match entry.file_type() {
                Some(t) => dir_type(t),
                // Some filesystems leave d_type unknown: ask the inode. A
                // bare name with AT_SYMLINK_NOFOLLOW cannot leave the dir.
                None => FileType::from_mode(
                    nix::sys::stat::fstatat(
                        &dirfd,
                        entry.file_name(),
                        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                    )?
                    .st_mode,
                ),
            };
            out.push(DirEntry {
                name: walk::display_bytes(name),
                raw_name: name.to_vec(),
                file_type,
            });
        }
        out.sort_by(|a, b| a.raw_name.cmp(&b.raw_name));
        Ok(out)
    }

    fn walk(
        &self,
        path: &str,
        options: &WalkOptions,
        visit: &mut dyn FnMut(io::Result<WalkEntry>) -> bool,
    ) -> io::Result<()> {
        // The start is resolved inside the root; below it the walker holds
        // each directory open and never resolves a path again.
        let start = resolve::canonicalize_bytes(self.root.as_fd(), path.as_bytes())?;
        let open = |p: &[u8]| -> io::Result<Box<dyn FileAt>> { Ok(Box::new(self.content(p)?)) };
        walk::walk_ordered(&self.walker(options), &open, &start, visit)
    }

    fn walk_parallel(
        &self,
        path: &str,
        options: &WalkOptions,
        visit: &(dyn Fn(Visited<'_, '_>) -> bool + Sync),
    ) -> io::Result<()> {
        let start = resolve::canonicalize_bytes(self.root.as_fd(), path.as_bytes())?;
        let open = |p: &[u8]| -> io::Result<Box<dyn FileAt>> { Ok(Box::new(self.content(p)?)) };
        self.walker(options).run(&open, &start, visit)
    }

    fn fs_stats(&self, path: &str) -> io::Result<FsStats> {
        let fd = self.open_fd(path, path_flags(true))?;
        let st = nix::sys::statvfs::fstatvfs(&fd)?;
        // The libc types are u64 on 64-bit Linux and u32 on some 32-bit ones.
        let unit = st.fragment_size() as u64;
        Ok(FsStats {
            size: (st.blocks() as u64).saturating_mul(unit),
            available: (st.blocks_available() as u64).saturating_mul(unit),
            inodes: st.files() as u64,
            inodes_available: st.files_available() as u64,
            read_only: st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
        })
    }

    fn accounts(&self) -> &Accounts {
        self.accounts.get_or_init(|| {
            Accounts::parse(
                self.read("/etc/passwd", READ_LIMIT),
                self.read("/etc/group", READ_LIMIT),
            )
        })
    }

    /// Live: directly on the node, as nodecheck's user. Rootfs: as uid 0
    /// in a sandbox over the image (see [`helper::dispatch`](crate::helper::dispatch)).
    fn exec(&self, req: &super::ExecRequest) -> io::Result<super::ExecOutput> {
        use super::sandbox::{Mode, run};
        let (mode, uid) = match self.kind {
            TargetKind::Live => (Mode::Live, nix::unistd::geteuid().as_raw()),
            TargetKind::Rootfs => (
                Mode::Rootfs {
                    root: self.host.clone(),
                },
                0,
            ),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("a {other} target cannot run programs here"),
                ));
            }
        };
        let env = super::merge_env(super::base_env(self.accounts(), uid), &req.env);
        run(mode, req, env)
    }
}

fn dir_type(t: nix::dir::Type) -> FileType {
    use nix::dir::Type;
    match t {
        Type::Fifo => FileType::Fifo,
        Type::CharacterDevice => FileType::Char,
        Type::Directory => FileType::Directory,
        Type::BlockDevice => FileType::Block,
        Type::File => FileType::File,
        Type::Symlink => FileType::Symlink,
        Type::Socket => FileType::Socket,
    }
}

// The tests are long (fixtures for every escape); they live beside.
#[cfg(test)]
mod tests;
