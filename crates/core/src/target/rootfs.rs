//! A root filesystem directory (or `/` for the live node).
//!
//! Every path a profile names is resolved inside the root through
//! [`resolve`](super::resolve) on a held directory fd, never by joining it
//! onto the host path: an image's `/lib64 -> /usr/lib64` or
//! `etc/x -> ../../../../etc/shadow` stays in the image.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode, fstat};
use walkdir::WalkDir;

use super::resolve::{self, Resolver, lossy, path_flags};
use super::{
    Accounts, DirEntry, FileAt, FileType, FsStats, Memo, Metadata, Need, READ_LIMIT, Target,
    TargetKind, WalkEntry, WalkOptions,
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
            accounts: OnceLock::new(),
            memo: Memo::default(),
        })
    }

    /// Opens `path` inside the root. Content opens ask for `O_NOATIME` so a
    /// scan leaves atimes alone; the kernel allows it only to the file's
    /// owner (or CAP_FOWNER), so retry without it on `EPERM`.
    fn open_fd(&self, path: &str, flags: OFlag) -> io::Result<OwnedFd> {
        let at = |flags| resolve::open(self.resolver, self.root.as_fd(), path, flags);
        if flags.contains(OFlag::O_PATH) {
            return at(flags);
        }
        match at(flags | OFlag::O_NOATIME) {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => at(flags),
            other => other,
        }
    }
}

/// Flags for opening contents: never block on a fifo, never acquire a
/// controlling terminal (the live node's /dev).
fn content_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK
}

fn metadata_of(st: &FileStat) -> Metadata {
    Metadata {
        file_type: FileType::from_mode(st.st_mode),
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        size: u64::try_from(st.st_size).unwrap_or(0),
        mtime: mtime(st.st_mtime, st.st_mtime_nsec),
        nlink: st.st_nlink,
        dev: st.st_dev,
        ino: st.st_ino,
    }
}

fn mtime(secs: i64, nsec: i64) -> Option<SystemTime> {
    let nsec = u32::try_from(nsec).ok()?;
    if secs >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(Duration::new(u64::try_from(secs).ok()?, nsec))
    } else {
        // Before 1970: go back whole seconds, then forward the fraction.
        SystemTime::UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))?
            .checked_add(Duration::from_nanos(u64::from(nsec)))
    }
}

/// A regular file inside the root, read with `pread`.
struct OpenFile {
    file: File,
    metadata: Metadata,
}

impl FileAt for OpenFile {
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// `pread` until `buf` is full or the file ends: a file that shrinks
    /// or grows meanwhile gives a short read, never a fault (as an mmap
    /// would).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match std::os::unix::fs::FileExt::read_at(
                &self.file,
                &mut buf[done..],
                offset.saturating_add(done as u64),
            ) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

fn too_large(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("file is larger than the read limit of {limit} bytes"),
    )
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
        let fd = self.open_fd(path, content_flags())?;
        let st = fstat(&fd)?;
        match FileType::from_mode(st.st_mode) {
            FileType::Directory => return Err(Errno::EISDIR.into()),
            t @ (FileType::Fifo | FileType::Socket) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("cannot read a {t}"),
                ));
            }
            _ => {}
        }
        let size = u64::try_from(st.st_size).unwrap_or(0);
        if size > limit {
            return Err(too_large(limit));
        }
        // The size is only a hint (/proc files say 0, a file may grow while
        // we read): read at most one byte past the limit to tell "exactly
        // the limit" from "larger", so memory stays bounded either way.
        let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
        File::from(fd)
            .take(limit.saturating_add(1))
            .read_to_end(&mut buf)?;
        if buf.len() as u64 > limit {
            return Err(too_large(limit));
        }
        Ok(buf)
    }

    fn memo(&self) -> Option<&Memo> {
        Some(&self.memo)
    }

    fn open(&self, path: &str) -> io::Result<Box<dyn FileAt>> {
        let fd = self.open_fd(path, content_flags())?;
        let metadata = metadata_of(&fstat(&fd)?);
        if metadata.file_type != FileType::File {
            return Err(super::not_regular(metadata.file_type));
        }
        Ok(Box::new(OpenFile {
            file: File::from(fd),
            metadata,
        }))
    }

    fn read_dir(&self, path: &str) -> io::Result<Vec<DirEntry>> {
        let fd = self.open_fd(path, content_flags() | OFlag::O_DIRECTORY)?;
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
                name: String::from_utf8_lossy(name).into_owned(),
                file_type,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn walk(
        &self,
        path: &str,
        options: &WalkOptions,
        visit: &mut dyn FnMut(io::Result<WalkEntry>) -> bool,
    ) -> io::Result<()> {
        // Resolve the start inside the root first; below it, walkdir never
        // follows links (entries are lstat'ed), so host paths are safe to
        // enumerate as long as the image is not being changed under us.
        let start = self.canonicalize(path)?;
        let host_start = self.host.join(start.trim_start_matches('/'));
        let mut walker = WalkDir::new(&host_start)
            .follow_links(false)
            .same_file_system(options.same_file_system)
            .sort_by_file_name();
        if let Some(depth) = options.max_depth {
            walker = walker.max_depth(depth);
        }
        let in_target = |host: &Path| -> String {
            match host.strip_prefix(&host_start) {
                Ok(rel) if rel.as_os_str().is_empty() => start.clone(),
                Ok(rel) => super::join(&start, &rel.to_string_lossy()),
                // walkdir only yields paths below its root.
                Err(_) => host.to_string_lossy().into_owned(),
            }
        };
        let mut it = walker.into_iter();
        while let Some(next) = it.next() {
            let entry = match next {
                Ok(entry) => entry,
                Err(e) => {
                    let at = e.path().map(in_target).unwrap_or_else(|| start.clone());
                    visit(Err(walk_error(&at, &e)));
                    continue;
                }
            };
            let target_path = in_target(entry.path());
            let md = match entry.metadata() {
                Ok(md) => md,
                Err(e) => {
                    visit(Err(walk_error(&target_path, &e)));
                    continue;
                }
            };
            let is_dir = entry.file_type().is_dir();
            let keep = visit(Ok(WalkEntry {
                path: target_path,
                depth: entry.depth(),
                metadata: Metadata {
                    file_type: FileType::from_mode(md.mode()),
                    mode: md.mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                    size: md.size(),
                    mtime: mtime(md.mtime(), md.mtime_nsec()),
                    nlink: md.nlink(),
                    dev: md.dev(),
                    ino: md.ino(),
                },
            }));
            // Only a directory may be pruned: on a file, skip_current_dir
            // would drop the rest of its parent.
            if !keep && is_dir {
                it.skip_current_dir();
            }
        }
        Ok(())
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

    fn heads(&self, dir: &str, names: &[String], len: usize) -> Vec<io::Result<Vec<u8>>> {
        // One resolution for the directory, then one-component opens
        // relative to it: a name holds no `/` and the last (only)
        // component is not followed, so nothing leaves the directory.
        let dirfd = match self.open_fd(dir, content_flags() | OFlag::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(e) => {
                return names
                    .iter()
                    .map(|_| Err(io::Error::new(e.kind(), e.to_string())))
                    .collect();
            }
        };
        let flags = content_flags() | OFlag::O_NOFOLLOW;
        names
            .iter()
            .map(|name| {
                if name.is_empty() || name == "." || name == ".." || name.contains('/') {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{name:?} is not a directory entry name"),
                    ));
                }
                let at = |flags| nix::fcntl::openat(&dirfd, name.as_str(), flags, Mode::empty());
                let fd = match at(flags | OFlag::O_NOATIME) {
                    Err(Errno::EPERM) => at(flags),
                    other => other,
                }?;
                let file = File::from(fd);
                let mut buf = vec![0; len];
                let mut done = 0;
                while done < len {
                    match file.read_at(&mut buf[done..], done as u64) {
                        Ok(0) => break,
                        Ok(n) => done += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                buf.truncate(done);
                Ok(buf)
            })
            .collect()
    }
}

/// A walkdir error with the in-target path instead of the host one, so
/// reports show `/usr/x: ...` and never where the image sits on the host.
fn walk_error(at: &str, e: &walkdir::Error) -> io::Error {
    match e.io_error() {
        Some(io) => io::Error::new(io.kind(), format!("{at}: {io}")),
        // Only a followed link can loop, and the walk follows none.
        // (`ErrorKind::FilesystemLoop` is unstable; take the kind of ELOOP.)
        None => {
            let kind = io::Error::from(Errno::ELOOP).kind();
            io::Error::new(kind, format!("{at}: filesystem loop"))
        }
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
