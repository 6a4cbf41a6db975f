//! Targets: the only way a check touches the system it checks.
//!
//! A check never calls `std::fs` or spawns a process itself (clippy's
//! `disallowed-methods` enforces that in the checks crate); it asks the
//! [`Target`]. For a root filesystem every path the profile names is resolved
//! *inside* the root — absolute symlinks, `..` and chains of links included —
//! so nothing in an image can make nodecheck read the host.

mod accounts;
mod container;
mod exec;
mod image;
mod memo;
mod memory;
mod resolve;
mod rootfs;
mod sandbox;
mod walk;

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

pub use accounts::{Accounts, Group, User};
pub use container::Container;
pub use exec::{
    Captured, DEFAULT_OUTPUT_LIMIT, DEFAULT_TIMEOUT, ExecFile, ExecOutput, ExecRequest, Exit,
    Limits, base_env, format_bytes, format_duration, merge_env,
};
pub(crate) use image::tree_helper_main as image_tree_helper;
pub use image::{Compression, Format as ImageFormat, ImageInfo, ImageTarget, spill_cap};
pub use memo::Memo;
pub use memory::MemoryTarget;
pub use resolve::Resolver;
pub use rootfs::{OpenError, RootFs};
pub(crate) use sandbox::helper_main as sandbox_helper;
pub use walk::{MAX_DEPTH, Opener, PerThread, Visit, Visited, WalkError, display_bytes, walk_key};

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
    /// Running it as the real root: uid 0 that owns the image's files. A
    /// rootless sandbox (a user namespace) shows root-owned files as
    /// `nobody` and cannot write where only root may. (A packed image
    /// written out in a user namespace mapped over the caller's
    /// subordinate ids keeps its owners: its root owns its files there.)
    Root,
    /// A packed image (cpio, tar): its format, compression and sizes.
    Image,
}

impl Need {
    /// The skip reason shown when the target lacks this capability.
    pub fn skip_reason(self) -> &'static str {
        match self {
            Need::Live => "needs a live node",
            Need::Exec => "needs command execution in the target",
            Need::Root => "needs root",
            Need::Image => "needs a packed image target (cpio, tar)",
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
    /// The name for reports and path-based calls. A name that is not
    /// UTF-8 shows its other bytes as `\\xNN` ([`display_bytes`]): two
    /// different names never come out as one (a path built from it finds
    /// nothing, rather than a look-alike).
    pub name: String,
    /// The name as the bytes the directory holds.
    pub raw_name: Vec<u8>,
    /// The entry's own type (symlinks are not followed).
    pub file_type: FileType,
}

/// One entry found by [`Target::walk`]: the path inside the target and the
/// entry's own (not followed) metadata.
#[derive(Clone, Debug)]
pub struct WalkEntry {
    /// Absolute path inside the target for reports, e.g. `/usr/bin/ls`;
    /// bytes that are not UTF-8 are escaped as `\xNN`
    /// ([`display_bytes`]), so two names never show as one.
    pub path: String,
    /// The same path as the bytes the filesystem holds: what decisions
    /// and lookups must use.
    pub raw_path: Vec<u8>,
    /// Depth below the walk's start (the start itself is 0).
    pub depth: usize,
    pub metadata: Metadata,
    /// For a symlink, when [`WalkOptions::links`] asks: its text and
    /// where it leads (inside the root).
    pub link: Option<Link>,
}

/// A symlink met by a walk, resolved inside the target's root by the
/// walker itself (from the link's byte path, so a name that is not UTF-8
/// is never confused with another).
#[derive(Clone, Debug)]
pub struct Link {
    /// The link's text, as stored.
    pub text: Vec<u8>,
    /// What it leads to once every link is followed inside the root, or
    /// why it leads nowhere (`NotFound`: a broken link).
    pub target: Result<Metadata, Arc<io::Error>>,
}

/// How [`Target::walk`] descends.
#[derive(Clone, Debug, Default)]
pub struct WalkOptions {
    /// Deepest level reported (0 = only the start). `None`: no limit.
    pub max_depth: Option<usize>,
    /// Stay on the start's filesystem (like `find -xdev`).
    pub same_file_system: bool,
    /// Resolve each symlink met (fills [`WalkEntry::link`]).
    pub links: bool,
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

    /// Why the target lacks `need` (the skip reason), or `None` when it
    /// has it. Targets that can say more than [`Need::skip_reason`] (a
    /// packed image: what programs would need here) override it, keeping
    /// it in step with [`Target::has`].
    fn missing(&self, need: Need) -> Option<String> {
        (!self.has(need)).then(|| need.skip_reason().to_string())
    }

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

    /// Visits every entry below `path` (the start included) like
    /// [`Target::walk`], but on many threads at once and in no fixed
    /// order: the fast way through a big tree. Each [`Visit`] can open
    /// its file through the content door relative to the walked
    /// directory ([`Visit::open`], [`Visit::head`]), so a scan or a hash
    /// of every file resolves no path again. `visit` returns `false` to
    /// prune a directory; errors on single entries come as `Err`.
    ///
    /// The default runs [`Target::walk`] and visits its entries in order.
    fn walk_parallel(
        &self,
        path: &str,
        options: &WalkOptions,
        visit: &(dyn Fn(Visited<'_, '_>) -> bool + Sync),
    ) -> io::Result<()> {
        let open = |p: &[u8]| match std::str::from_utf8(p) {
            Ok(p) => self.open(p),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "this target names files by UTF-8 paths only",
            )),
        };
        let mut errors = Vec::new();
        let mut entries = Vec::new();
        self.walk(path, options, &mut |e| {
            match e {
                Ok(e) => entries.push(e),
                Err(e) => errors.push(e),
            }
            true
        })?;
        // Pruning happens after the fact: skip what lies below a pruned
        // directory (entries come in walk order).
        let mut pruned: Option<String> = None;
        for e in &entries {
            if let Some(p) = &pruned {
                if e.path.starts_with(p.as_str()) && e.path[p.len()..].starts_with('/') {
                    continue;
                }
                pruned = None;
            }
            if !visit(Ok(&Visit::by_path(&open, e))) && e.metadata.file_type == FileType::Directory
            {
                pruned = Some(e.path.trim_end_matches('/').to_string());
            }
        }
        for error in errors {
            visit(Err(WalkError {
                path: Vec::new(),
                error,
            }));
        }
        Ok(())
    }

    /// Users and groups of the target, from its own /etc/passwd and
    /// /etc/group, parsed once.
    fn accounts(&self) -> &Accounts;

    /// Space, inodes and read-only flag of the filesystem holding `path`
    /// (`statvfs`), for live checks such as `filesystem`. Targets without a
    /// mounted filesystem to ask answer `Unsupported`.
    fn fs_stats(&self, path: &str) -> io::Result<FsStats> {
        let _ = path;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{} targets have no filesystem statistics", self.kind()),
        ))
    }

    /// What the checks of a run share through this target (parsed indexes
    /// that many checks need), kept as long as the target object, like
    /// [`Target::accounts`]. `None` (the default): nothing is kept, and
    /// every check reads afresh.
    fn memo(&self) -> Option<&Memo> {
        None
    }

    /// What a packed image target is (format, compression, sizes);
    /// `None` for every other target.
    fn image(&self) -> Option<&ImageInfo> {
        None
    }

    /// Told before the checks start that some of them will need `need`,
    /// so the target can get ready for it once rather than at the first
    /// check that asks (a packed image writes its tree out for programs
    /// then, and serves content from it instead of spilling its stream).
    /// The default does nothing.
    fn will_need(&self, need: Need) {
        let _ = need;
    }

    /// Opens a regular file (symlinks followed inside the target) for
    /// reads at any offset, for formats read by their headers (an ELF
    /// section, a kernel module's `.modinfo`) without reading the whole
    /// file. Anything but a regular file is an error.
    ///
    /// The default reads the whole file (at most [`READ_LIMIT`]) and
    /// serves the reads from memory; [`RootFs`] reads only what is asked.
    fn open(&self, path: &str) -> io::Result<Box<dyn FileAt>> {
        let meta = self.metadata(path, true)?;
        if meta.file_type != FileType::File {
            return Err(not_regular(meta.file_type));
        }
        let bytes = self.read(path, READ_LIMIT)?;
        Ok(Box::new(BytesAt {
            metadata: meta,
            bytes,
        }))
    }

    /// Runs helper `name` of this executable ([`crate::helper`]: a `dlopen`
    /// that runs a library's constructors, the GPU driver probe) as a
    /// child on the host, stdin closed, at most `timeout`. Only where the
    /// host *is* the target, the live node; every other target answers
    /// `Unsupported`, so a kind cannot reach the host through it.
    fn helper(
        &self,
        name: &str,
        args: &[&str],
        timeout: std::time::Duration,
    ) -> io::Result<crate::helper::HelperOutput> {
        if self.kind() != TargetKind::Live {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "helper {name} runs only on the live node, this is a {} target",
                    self.kind()
                ),
            ));
        }
        crate::helper::run(name, args, timeout)
    }

    /// Runs a program in the target and waits for it (at most
    /// `req.timeout`, after which it and everything it started are
    /// killed). The target itself is never changed: on a root filesystem
    /// the program runs in a sandbox whose writes vanish with it.
    ///
    /// Only targets that answer [`Target::has`]`(Need::Exec)` implement
    /// it; the others return an `Unsupported` error. An `Err` means the
    /// program could not be run at all (sandbox not available, helper
    /// failed); a program that fails or cannot be found in the target is an
    /// `Ok` with its exit status (127 for "not found", like a shell).
    fn exec(&self, req: &ExecRequest) -> io::Result<ExecOutput> {
        let _ = req;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{} cannot run programs", self.describe()),
        ))
    }
}

/// Extended attributes of a file: (name, value), sorted by name.
pub type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// A regular file of a target opened by [`Target::open`].
pub trait FileAt: Send + Sync {
    /// What `fstat` said when the file was opened.
    fn metadata(&self) -> &Metadata;

    /// The file's size when it was opened.
    fn size(&self) -> u64 {
        self.metadata().size
    }

    /// Reads up to `buf.len()` bytes at `offset`; fewer only at the end of
    /// the file (0 past it).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// The file's extended attributes (`security.capability`, …), name
    /// and value, sorted by name, read from the open descriptor (so they
    /// belong to the file whose content is read). `None`: this target
    /// cannot tell (a file read whole through a path-based target).
    fn xattrs(&self) -> io::Result<Option<Xattrs>> {
        Ok(None)
    }
}

impl dyn FileAt + '_ {
    /// Exactly `len` bytes at `offset`: an `UnexpectedEof` error when the
    /// file ends before (a truncated file), never a short buffer.
    pub fn read_exact_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let end = offset.checked_add(len as u64);
        if end.is_none_or(|e| e > self.size()) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{len} bytes at offset {offset} are past the end of the file ({} bytes)",
                    self.size()
                ),
            ));
        }
        let mut buf = vec![0; len];
        let mut done = 0;
        while done < len {
            let n = self.read_at(&mut buf[done..], offset + done as u64)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file shrank while it was read",
                ));
            }
            done += n;
        }
        Ok(buf)
    }
}

/// A [`FileAt`] over a file read whole (the default [`Target::open`]).
struct BytesAt {
    metadata: Metadata,
    bytes: Vec<u8>,
}

impl FileAt for BytesAt {
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        let n = buf.len().min(self.bytes.len() - start);
        buf[..n].copy_from_slice(&self.bytes[start..start + n]);
        Ok(n)
    }
}

/// The error of [`Target::open`] on something that is not a regular file.
pub(crate) fn not_regular(t: FileType) -> io::Error {
    let kind = match t {
        FileType::Directory => io::ErrorKind::IsADirectory,
        _ => io::ErrorKind::InvalidInput,
    };
    let what = match t {
        FileType::Block => "block device",
        FileType::Char => "character device",
        other => other.as_str(),
    };
    io::Error::new(kind, format!("not a regular file but a {what}"))
}

/// What `statvfs` says of a mounted filesystem, in bytes and inodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsStats {
    /// Size of the filesystem in bytes.
    pub size: u64,
    /// Bytes available to unprivileged users (`df`'s *Avail*).
    pub available: u64,
    /// Inodes in total (0 on filesystems without a fixed inode table).
    pub inodes: u64,
    /// Inodes available to unprivileged users.
    pub inodes_available: u64,
    /// Mounted read-only.
    pub read_only: bool,
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

/// Undoes the octal escapes of fstab and mountinfo fields (`\040` for a
/// space, `\011` for a tab).
pub fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::unescape_octal;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_octal("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_octal("/plain"), "/plain");
        assert_eq!(unescape_octal("/x\\"), "/x\\");
    }
}
