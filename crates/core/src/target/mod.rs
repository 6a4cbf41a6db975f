//! Targets: the only way a check touches the system it checks.
//!
//! A check never calls `std::fs` or spawns a process itself (clippy's
//! `disallowed-methods` enforces that in the checks crate); it asks the
//! [`Target`]. For a root filesystem every path the profile names is resolved
//! *inside* the root — absolute symlinks, `..` and chains of links included —
//! so nothing in an image can make nodecheck read the host.

mod accounts;
mod memory;
mod resolve;
mod rootfs;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use serde::Serialize;

pub use accounts::{Accounts, Group, User};
pub use memory::MemoryTarget;
pub use resolve::Resolver;
pub use rootfs::{OpenError, RootFs};

/// The kinds of target a control can be limited to with `targets = [...]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// An unpacked root filesystem, not booted.
    Rootfs,
    /// A running container, reached through its pid.
    Container,
    /// The booted node nodecheck runs on.
    Live,
    /// A packed image (cpio, squashfs, OCI) read without unpacking.
    Image,
}

impl TargetKind {
    pub const ALL: [TargetKind; 4] = [
        TargetKind::Rootfs,
        TargetKind::Container,
        TargetKind::Live,
        TargetKind::Image,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Rootfs => "rootfs",
            TargetKind::Container => "container",
            TargetKind::Live => "live",
            TargetKind::Image => "image",
        }
    }

    pub fn parse(s: &str) -> Option<TargetKind> {
        TargetKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something a check (or one of its properties) needs from the target.
///
/// Kinds declare these; the runner compares them with the target's
/// [`Target::has`] and writes the skip reason itself, so no check ever
/// invents its own "not applicable" message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Need {
    /// A booted kernel and its /proc, /sys: loaded modules, processes, ports.
    Live,
    /// Running a program inside the target.
    Exec,
}

impl Need {
    /// The skip reason shown when the target lacks this capability.
    pub fn skip_reason(self) -> &'static str {
        match self {
            Need::Live => "needs a live node",
            Need::Exec => "needs command execution in the target",
        }
    }
}

/// File types as `stat` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    File,
    Directory,
    Symlink,
    Socket,
    Fifo,
    Block,
    Char,
}

impl FileType {
    pub const ALL: [FileType; 7] = [
        FileType::File,
        FileType::Directory,
        FileType::Symlink,
        FileType::Socket,
        FileType::Fifo,
        FileType::Block,
        FileType::Char,
    ];

    /// From the `S_IFMT` bits of `st_mode`.
    pub fn from_mode(mode: u32) -> FileType {
        match mode & libc::S_IFMT {
            libc::S_IFDIR => FileType::Directory,
            libc::S_IFLNK => FileType::Symlink,
            libc::S_IFSOCK => FileType::Socket,
            libc::S_IFIFO => FileType::Fifo,
            libc::S_IFBLK => FileType::Block,
            libc::S_IFCHR => FileType::Char,
            _ => FileType::File,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FileType::File => "file",
            FileType::Directory => "directory",
            FileType::Symlink => "symlink",
            FileType::Socket => "socket",
            FileType::Fifo => "fifo",
            FileType::Block => "block",
            FileType::Char => "char",
        }
    }

    pub fn parse(s: &str) -> Option<FileType> {
        FileType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `stat`/`lstat` says of a path inside the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub file_type: FileType,
    /// Permission bits including setuid, setgid and sticky (`& 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: Option<SystemTime>,
    pub nlink: u64,
    pub dev: u64,
    pub ino: u64,
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    /// The entry's own type (symlinks are not followed).
    pub file_type: FileType,
}

/// One entry found by [`Target::walk`]: the path inside the target and the
/// entry's own (not followed) metadata.
#[derive(Clone, Debug)]
pub struct WalkEntry {
    /// Absolute path inside the target, e.g. `/usr/bin/ls`.
    pub path: String,
    /// Depth below the walk's start (the start itself is 0).
    pub depth: usize,
    pub metadata: Metadata,
}

/// How [`Target::walk`] descends.
#[derive(Clone, Debug, Default)]
pub struct WalkOptions {
    /// Deepest level reported (0 = only the start). `None`: no limit.
    pub max_depth: Option<usize>,
    /// Stay on the start's filesystem (like `find -xdev`).
    pub same_file_system: bool,
}

/// A system nodecheck can inspect: a root filesystem, a container, the node
/// itself.
///
/// Paths are absolute paths *inside* the target (`/etc/passwd`). Every
/// implementation must resolve them inside its root.
pub trait Target: Send + Sync {
    /// What sort of target this is (`targets = [...]` in a control matches
    /// against it).
    fn kind(&self) -> TargetKind;

    /// Human description for reports: `rootfs:/srv/images/compute`.
    fn describe(&self) -> String;

    /// Whether the target offers a capability a check needs.
    fn has(&self, need: Need) -> bool;

    /// `stat` (`follow = true`) or `lstat` of a path inside the target.
    fn metadata(&self, path: &str, follow: bool) -> io::Result<Metadata>;

    /// The target of a symlink, as stored in the link.
    fn read_link(&self, path: &str) -> io::Result<String>;

    /// Where a path leads inside the target once every symlink is followed:
    /// an absolute, normalised path. Fails like `realpath` when a component
    /// is missing.
    fn canonicalize(&self, path: &str) -> io::Result<String>;

    /// At most `limit` bytes of a file (symlinks followed inside the
    /// target). A larger file is an error naming the limit, never a
    /// truncated read presented as whole.
    fn read(&self, path: &str, limit: u64) -> io::Result<Vec<u8>>;

    /// The entries of a directory, sorted by name.
    fn read_dir(&self, path: &str) -> io::Result<Vec<DirEntry>>;

    /// Visits every entry below `path` (the start included), without
    /// following symlinks, in a stable order. The callback returns `false` to
    /// prune a directory. Errors on single entries are reported through the
    /// callback's `Err` and the walk goes on.
    fn walk(
        &self,
        path: &str,
        options: &WalkOptions,
        visit: &mut dyn FnMut(io::Result<WalkEntry>) -> bool,
    ) -> io::Result<()>;

    /// Users and groups of the target, from its own /etc/passwd and
    /// /etc/group, parsed once.
    fn accounts(&self) -> &Accounts;

    /// Opens a regular file (symlinks followed inside the target) for
    /// reads at chosen offsets, so a check can look at the few parts of a
    /// large file it needs (ELF headers and tables) without reading it
    /// whole. A directory, fifo, socket or device is an error.
    ///
    /// The default reads the file whole (up to [`READ_LIMIT`]) and serves
    /// the pieces from memory.
    fn open(&self, path: &str) -> io::Result<Box<dyn FileAt>> {
        let metadata = self.metadata(path, true)?;
        if metadata.file_type != FileType::File {
            return Err(not_a_file(metadata.file_type));
        }
        let bytes = self.read(path, READ_LIMIT)?;
        Ok(Box::new(BytesAt { metadata, bytes }))
    }

    /// The first bytes (up to `len`) of each of `names`, entries of the
    /// directory `dir`, symlinks not followed: a cheap look at file
    /// signatures (ELF or compression magic) across a whole tree, where
    /// opening each file by its full path would cost most of the scan.
    /// Pass names [`Target::read_dir`] lists as regular files; anything
    /// else gives an error in its slot.
    fn heads(&self, dir: &str, names: &[String], len: usize) -> Vec<io::Result<Vec<u8>>> {
        names
            .iter()
            .map(|name| {
                let path = join(dir, name);
                let md = self.metadata(&path, false)?;
                if md.file_type != FileType::File {
                    return Err(not_a_file(md.file_type));
                }
                let file = self.open(&path)?;
                let mut buf = vec![0; len];
                let n = file.read_at(0, &mut buf)?;
                buf.truncate(n);
                Ok(buf)
            })
            .collect()
    }

    /// Memory that lives as long as the target, where checks keep what
    /// they parsed (the ELF kinds keep every library they read, so a run
    /// over a whole image reads each once). `None`: nothing is kept.
    ///
    /// A target is opened for one run; a target whose files change while
    /// it is held would be answered from the memo, so open a fresh one to
    /// check again.
    fn memo(&self) -> Option<&Memo> {
        None
    }
}

/// A file of the target opened by [`Target::open`].
pub trait FileAt: Send + Sync {
    /// What `fstat` said when the file was opened.
    fn metadata(&self) -> &Metadata;

    /// Reads up to `buf.len()` bytes at `offset`; fewer (or 0) at the end
    /// of the file.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

/// The error for opening something that is not a regular file.
pub(crate) fn not_a_file(t: FileType) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("not a regular file but a {t}"),
    )
}

/// A [`FileAt`] over bytes read whole.
struct BytesAt {
    metadata: Metadata,
    bytes: Vec<u8>,
}

impl FileAt for BytesAt {
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        let n = buf.len().min(self.bytes.len() - start);
        buf[..n].copy_from_slice(&self.bytes[start..start + n]);
        Ok(n)
    }
}

/// Per-target memory for checks: one value of each type, made on first
/// use and shared by every check of the run (see [`Target::memo`]).
///
/// ```
/// use nodecheck_core::target::Memo;
/// #[derive(Default)]
/// struct Seen(std::sync::Mutex<Vec<String>>);
/// let memo = Memo::default();
/// memo.get::<Seen>().0.lock().unwrap().push("libc.so.6".into());
/// assert_eq!(memo.get::<Seen>().0.lock().unwrap().len(), 1);
/// ```
#[derive(Default)]
pub struct Memo {
    values: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Memo {
    /// The value of type `T`, made with `T::default()` the first time.
    pub fn get<T: Any + Send + Sync + Default>(&self) -> Arc<T> {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        let value = values
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()))
            .clone();
        drop(values);
        // The map holds a `T` under `TypeId::of::<T>()` and nothing else.
        value
            .downcast::<T>()
            .unwrap_or_else(|_| Arc::new(T::default()))
    }
}

impl fmt::Debug for Memo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.values.lock().map_or(0, |v| v.len());
        write!(f, "Memo({n} values)")
    }
}

/// The default limit for reading a file whole (content matchers, config
/// files): big enough for any text file in an image, small enough to keep a
/// hostile file from eating the node's memory.
pub const READ_LIMIT: u64 = 64 << 20;

/// Joins `rel` onto the absolute in-target path `base` (no resolution).
pub fn join(base: &str, rel: &str) -> String {
    if rel.starts_with('/') {
        return rel.to_string();
    }
    let mut s = base.trim_end_matches('/').to_string();
    s.push('/');
    s.push_str(rel);
    s
}

/// The path nodecheck shows for an in-target path.
pub fn display(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
