//! The one door for file content and the one directory walker.
//!
//! **The content door** ([`open_regular`]): every byte nodecheck reads
//! from a target comes through it. It opens nothing until the entry is
//! known to be a regular file, opens it with
//! `O_NOFOLLOW|O_NONBLOCK|O_NOCTTY|O_CLOEXEC`, and `fstat`s the descriptor
//! before any read: a device node, FIFO or socket in an image is never
//! opened (a host loop device behind a block node at `/etc/passwd` would
//! otherwise put host bytes in the report), and what was checked is what
//! is read. Where a process can race us (a running container), the door
//! opens an `O_PATH` descriptor, checks it, and reopens *that inode*
//! through `/proc/self/fd`, so not even a swap between check and open can
//! make it open a device.
//!
//! **The walker** ([`Walker`]): directories are opened one level at a time
//! with `openat(parent_fd, name, O_NOFOLLOW|O_DIRECTORY)`, listed with
//! `getdents64`, and their entries `fstatat(AT_SYMLINK_NOFOLLOW)`ed
//! relative to the held descriptor: no path string is ever resolved
//! below the start, so a directory swapped for a symlink mid-walk is
//! refused (`ELOOP`/`ENOTDIR`) instead of followed to the host. Each
//! directory is a rayon task (spawned, not nested, so a hostile depth
//! cannot exhaust the stack); callers that need a stable order sort the
//! results ([`walk_ordered`]). Paths are bytes throughout; they become
//! text only for display ([`display_bytes`]).

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, fstat, fstatat};
use rayon::prelude::*;

use super::resolve::{self, Resolver, path_flags};
use super::{FileAt, FileType, Link, Metadata, WalkEntry, WalkOptions};

/// The flags of every content open: never follow the last component,
/// never block on a FIFO, never take a controlling terminal.
const CONTENT: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_NOCTTY)
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_NOFOLLOW);

/// The flags a walked directory is opened with.
const DIR: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_NONBLOCK);

/// What is known of an entry before the door opens it.
#[derive(Clone, Copy)]
pub(crate) enum Known<'a> {
    /// Nothing: the door `fstatat`s it first.
    Nothing,
    /// The directory listing said "regular file" (`d_type`).
    Regular,
    /// Its own (not followed) `stat`.
    Stat(&'a FileStat),
}

/// Where the door opens from.
pub(crate) enum At<'a> {
    /// An `O_PATH` descriptor of the entry, already resolved inside the
    /// root (symlinks followed there, or not, as the caller asked).
    Resolved(OwnedFd),
    /// An entry (one name, never followed) of a directory held open.
    Entry {
        dir: BorrowedFd<'a>,
        name: &'a CStr,
        known: Known<'a>,
    },
}

/// A regular file of a target, opened by the door: reads go through
/// `pread`, so a file that shrinks or grows meanwhile gives a short read,
/// never a fault (as an mmap would).
pub(crate) struct Regular {
    file: File,
    metadata: Metadata,
}

impl Regular {
    /// The whole file, at most `limit` bytes: a larger one is an error
    /// naming the limit, never a truncated read presented as whole.
    pub(crate) fn read_all(self, limit: u64) -> io::Result<Vec<u8>> {
        let size = self.metadata.size;
        if size > limit {
            return Err(too_large(limit));
        }
        // The size is only a hint (a file may grow while we read): read
        // at most one byte past the limit to tell "exactly the limit"
        // from "larger", so memory stays bounded either way.
        let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
        self.file
            .take(limit.saturating_add(1))
            .read_to_end(&mut buf)?;
        if buf.len() as u64 > limit {
            return Err(too_large(limit));
        }
        Ok(buf)
    }
}

impl FileAt for Regular {
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

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

    fn xattrs(&self) -> io::Result<Option<super::Xattrs>> {
        fd_xattrs(self.file.as_fd()).map(Some)
    }
}

/// Every extended attribute of an open file (`flistxattr` + `fgetxattr`),
/// sorted by name. A filesystem without xattrs gives none.
fn fd_xattrs(fd: BorrowedFd<'_>) -> io::Result<super::Xattrs> {
    // A list or value that grows between the size query and the read
    // answers ERANGE: ask again, a few times.
    fn sized(mut call: impl FnMut(&mut [u8]) -> isize) -> io::Result<Vec<u8>> {
        for _ in 0..4 {
            let n = call(&mut []);
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.raw_os_error() {
                    Some(libc::ENOTSUP) | Some(libc::ENODATA) => Ok(Vec::new()),
                    _ => Err(e),
                };
            }
            if n == 0 {
                return Ok(Vec::new());
            }
            let mut buf = vec![0u8; n as usize];
            let m = call(&mut buf);
            if m >= 0 {
                buf.truncate(m as usize);
                return Ok(buf);
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ERANGE) {
                return Err(e);
            }
        }
        Err(io::Error::other(
            "extended attributes kept changing while read",
        ))
    }
    let raw = fd.as_raw_fd();
    let list = sized(|buf| {
        // SAFETY: the buffer pointer and length describe `buf` (a null
        // pointer with length 0 asks for the size only).
        unsafe {
            libc::flistxattr(
                raw,
                if buf.is_empty() {
                    std::ptr::null_mut()
                } else {
                    buf.as_mut_ptr().cast()
                },
                buf.len(),
            )
        }
    })?;
    let mut out = Vec::new();
    for name in list.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        let value = sized(|buf| {
            // SAFETY: as above; `cname` is NUL-terminated.
            unsafe {
                libc::fgetxattr(
                    raw,
                    cname.as_ptr(),
                    if buf.is_empty() {
                        std::ptr::null_mut()
                    } else {
                        buf.as_mut_ptr().cast()
                    },
                    buf.len(),
                )
            }
        })?;
        out.push((name.to_vec(), value));
    }
    out.sort();
    Ok(out)
}

fn too_large(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("file is larger than the read limit of {limit} bytes"),
    )
}

/// **The content door.** Opens a regular file of a target for reading;
/// anything else (directory, device, FIFO, socket, symlink) is an error
/// and is never opened for reading. `race_free` asks for the `O_PATH` +
/// `/proc/self/fd` reopen, which no concurrent swap can defeat (used for
/// running containers); without it (a still image) the entry is checked,
/// opened with [`CONTENT`] flags and checked again on the descriptor.
pub(crate) fn open_regular(at: At<'_>, race_free: bool) -> io::Result<Regular> {
    match at {
        At::Resolved(path_fd) => {
            let st = fstat(&path_fd)?;
            regular(&st)?;
            match proc_fd() {
                Some(proc) => reopen(proc, &path_fd, &st),
                None => Err(io::Error::other(
                    "/proc is not mounted: cannot reopen the file safely",
                )),
            }
        }
        At::Entry { dir, name, known } => {
            let looked;
            let expect = match known {
                Known::Nothing => {
                    looked = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
                    regular(&looked)?;
                    Some(&looked)
                }
                Known::Regular => None,
                Known::Stat(st) => {
                    regular(st)?;
                    Some(st)
                }
            };
            if race_free && let Some(proc) = proc_fd() {
                let path_fd = openat(dir, name, path_flags(false), Mode::empty())?;
                let st = fstat(&path_fd)?;
                regular(&st)?;
                same(expect, &st)?;
                return reopen(proc, &path_fd, &st);
            }
            let fd = open_noatime(|flags| openat(dir, name, flags, Mode::empty()), CONTENT)?;
            let st = fstat(&fd)?;
            // Dropping `fd` here closes it unread.
            regular(&st)?;
            same(expect, &st)?;
            Ok(Regular {
                file: File::from(fd),
                metadata: metadata_of(&st),
            })
        }
    }
}

/// Content opens ask for `O_NOATIME` so a scan leaves atimes alone; the
/// kernel allows it only to the file's owner (or CAP_FOWNER), so retry
/// without it on `EPERM`.
fn open_noatime(open: impl Fn(OFlag) -> nix::Result<OwnedFd>, flags: OFlag) -> io::Result<OwnedFd> {
    match open(flags | OFlag::O_NOATIME) {
        Err(Errno::EPERM) => Ok(open(flags)?),
        other => Ok(other?),
    }
}

/// Opens the very inode `path_fd` holds, for reading, through
/// `/proc/self/fd/N` (no name is looked up again).
fn reopen(proc: BorrowedFd<'_>, path_fd: &OwnedFd, st: &FileStat) -> io::Result<Regular> {
    let link = format!("self/fd/{}", path_fd.as_raw_fd());
    // Not CONTENT: O_NOFOLLOW would refuse the magic link itself.
    let flags = CONTENT.difference(OFlag::O_NOFOLLOW);
    let fd = open_noatime(|f| openat(proc, link.as_str(), f, Mode::empty()), flags)?;
    let now = fstat(&fd)?;
    regular(&now)?;
    same(Some(st), &now)?;
    Ok(Regular {
        file: File::from(fd),
        metadata: metadata_of(&now),
    })
}

/// The door for a path inside the root (symlinks followed inside it):
/// an `O_PATH` resolution, then [`open_regular`]. Where `/proc` is not
/// mounted, the canonical path's directory is resolved and the last
/// name opened from it, checked before and after.
pub(crate) fn open_path(
    resolver: Resolver,
    root: BorrowedFd<'_>,
    path: &[u8],
    race_free: bool,
) -> io::Result<Regular> {
    if proc_fd().is_some() {
        let fd = resolve::open_bytes(resolver, root, path, path_flags(true))?;
        return open_regular(At::Resolved(fd), race_free);
    }
    let canonical = resolve::canonicalize_bytes(root, path)?;
    let slash = canonical.iter().rposition(|&b| b == b'/').unwrap_or(0);
    let (dir, name) = (&canonical[..slash], &canonical[slash + 1..]);
    if name.is_empty() {
        return Err(Errno::EISDIR.into());
    }
    let dir = resolve::open_bytes(
        resolver,
        root,
        if dir.is_empty() { b"/" } else { dir },
        path_flags(false) | OFlag::O_DIRECTORY,
    )?;
    let name = CString::new(name).map_err(io::Error::other)?;
    open_regular(
        At::Entry {
            dir: dir.as_fd(),
            name: &name,
            known: Known::Nothing,
        },
        false,
    )
}

/// This process's `/proc`, checked to be procfs, or `None` where it is
/// not mounted.
fn proc_fd() -> Option<BorrowedFd<'static>> {
    static PROC: OnceLock<Option<OwnedFd>> = OnceLock::new();
    PROC.get_or_init(|| {
        let fd = nix::fcntl::open(
            "/proc",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let fs = nix::sys::statfs::fstatfs(&fd).ok()?;
        (fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC).then_some(fd)
    })
    .as_ref()
    .map(AsFd::as_fd)
}

/// Whether the door may open the file at all.
fn regular(st: &FileStat) -> io::Result<()> {
    match FileType::from_mode(st.st_mode) {
        FileType::File => Ok(()),
        t => Err(super::not_regular(t)),
    }
}

/// The opened file is the one that was checked.
fn same(expect: Option<&FileStat>, got: &FileStat) -> io::Result<()> {
    match expect {
        Some(e) if (e.st_dev, e.st_ino) != (got.st_dev, got.st_ino) => Err(io::Error::other(
            "the file was replaced while it was opened",
        )),
        _ => Ok(()),
    }
}

pub(crate) fn metadata_of(st: &FileStat) -> Metadata {
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

/// An in-target byte path as text for reports: valid UTF-8 as is, every
/// other byte as `\xNN`, so two different names never show as one (as
/// lossy conversion's `�` made them).
pub fn display_bytes(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len());
    for chunk in path.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// One entry met by a parallel walk ([`Target::walk_parallel`]).
///
/// [`Target::walk_parallel`]: super::Target::walk_parallel
pub struct Visit<'a> {
    /// Absolute path inside the target, as bytes.
    pub path: &'a [u8],
    /// Depth below the walk's start (the start itself is 0).
    pub depth: usize,
    /// The entry's own type (from the directory listing, or `fstatat`).
    pub file_type: FileType,
    /// For a symlink, when [`WalkOptions::links`] asks: its text and
    /// where it leads inside the root.
    pub link: Option<Link>,
    how: How<'a>,
}

enum How<'a> {
    /// An entry of a directory the walker holds.
    Held {
        dir: BorrowedFd<'a>,
        name: &'a CStr,
        stat: Option<&'a FileStat>,
        race_free: bool,
    },
    /// The start of a walk, or an entry of a target without descriptors:
    /// reached by its path through the target.
    Target {
        open: Opener<'a>,
        entry: &'a WalkEntry,
    },
}

impl<'a> Visit<'a> {
    /// A visit that goes through the target's path-based calls (targets
    /// without descriptors, and the start of a walk).
    pub fn by_path(open: Opener<'a>, entry: &'a WalkEntry) -> Visit<'a> {
        Visit {
            path: &entry.raw_path,
            depth: entry.depth,
            file_type: entry.metadata.file_type,
            link: entry.link.clone(),
            how: How::Target { open, entry },
        }
    }

    /// The path for reports (non-UTF-8 bytes escaped as `\xNN`).
    pub fn display(&self) -> String {
        display_bytes(self.path)
    }

    /// The entry's own metadata (symlinks not followed), asked of the
    /// held directory when the listing gave only the type.
    pub fn metadata(&self) -> io::Result<Metadata> {
        match &self.how {
            How::Held { stat: Some(st), .. } => Ok(metadata_of(st)),
            How::Held { dir, name, .. } => Ok(metadata_of(&fstatat(
                *dir,
                *name,
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )?)),
            How::Target { entry, .. } => Ok(entry.metadata.clone()),
        }
    }

    /// The device number (`st_rdev`) of a character or block device
    /// entry, asked of the held directory; `None` for anything else or a
    /// target without descriptors.
    pub fn rdev(&self) -> io::Result<Option<u64>> {
        if !matches!(self.file_type, FileType::Char | FileType::Block) {
            return Ok(None);
        }
        match &self.how {
            How::Held { stat: Some(st), .. } => Ok(Some(st.st_rdev)),
            How::Held { dir, name, .. } => Ok(Some(
                fstatat(*dir, *name, AtFlags::AT_SYMLINK_NOFOLLOW)?.st_rdev,
            )),
            How::Target { .. } => Ok(None),
        }
    }

    /// Opens the entry through the content door, relative to the walked
    /// directory's descriptor (no path is resolved again): only a regular
    /// file opens. For reading a head, hashing, or a whole-file read.
    pub fn open(&self) -> io::Result<Box<dyn FileAt>> {
        match &self.how {
            How::Held { .. } => Ok(Box::new(self.open_held()?)),
            How::Target { open, entry } => open(&entry.raw_path),
        }
    }

    /// Fills `buf` with the first bytes of a regular file (a signature
    /// sniff); how many there were (fewer when the file is shorter). The
    /// caller's buffer, so a scan of 20,000 files allocates nothing per
    /// file; an empty file (its size known from the door's `fstat`) is
    /// not read at all.
    pub fn head(&self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.how {
            How::Held { .. } => {
                let file = self.open_held()?;
                if file.metadata.size == 0 {
                    return Ok(0);
                }
                FileAt::read_at(&file, buf, 0)
            }
            How::Target { .. } => self.open()?.read_at(buf, 0),
        }
    }

    /// Opens the entry through the content door only when its own
    /// metadata (symlinks not followed; one `fstatat` relative to the held
    /// directory, unless the listing needed it already) passes `want`:
    /// a file `want` turns down costs that `fstatat` and is never opened.
    /// The door refuses anything that is not a regular file and checks
    /// that the descriptor it opened is the very inode that was looked at.
    /// `Ok(None)`: turned down.
    pub fn open_if(&self, want: &dyn Fn(&Metadata) -> bool) -> io::Result<Option<Box<dyn FileAt>>> {
        match &self.how {
            How::Held {
                dir,
                name,
                stat,
                race_free,
            } => {
                let looked;
                let st = match stat {
                    Some(st) => *st,
                    None => {
                        looked = fstatat(*dir, *name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
                        &looked
                    }
                };
                if !want(&metadata_of(st)) {
                    return Ok(None);
                }
                let at = At::Entry {
                    dir: *dir,
                    name,
                    known: Known::Stat(st),
                };
                Ok(Some(Box::new(open_regular(at, *race_free)?)))
            }
            How::Target { open, entry } => {
                if !want(&entry.metadata) {
                    return Ok(None);
                }
                open(&entry.raw_path).map(Some)
            }
        }
    }

    fn open_held(&self) -> io::Result<Regular> {
        let How::Held {
            dir,
            name,
            stat,
            race_free,
        } = &self.how
        else {
            return Err(io::Error::other("not an entry of a held directory"));
        };
        let known = match stat {
            Some(st) => Known::Stat(st),
            None if self.file_type == FileType::File => Known::Regular,
            None => return Err(super::not_regular(self.file_type)),
        };
        open_regular(
            At::Entry {
                dir: *dir,
                name,
                known,
            },
            *race_free,
        )
    }
}

/// How a [`Visit`] without a held directory opens its file: the
/// target's own [`Target::open`](super::Target::open).
pub type Opener<'a> = &'a (dyn Fn(&[u8]) -> io::Result<Box<dyn FileAt>> + Sync);

/// What a visitor of a parallel walk is given: an entry, or an error
/// naming the entry (in-target path) it is about.
pub type Visited<'v, 'a> = Result<&'v Visit<'a>, WalkError>;

/// An error met by a walk, with the in-target path it is about.
#[derive(Debug)]
pub struct WalkError {
    /// The entry (bytes), e.g. the directory that could not be opened.
    pub path: Vec<u8>,
    pub error: io::Error,
}

impl WalkError {
    /// `PATH: error` as io::Error, for reports (never the host path).
    pub fn into_io(self) -> io::Error {
        io::Error::new(self.error.kind(), self.to_string())
    }
}

/// `PATH: error`, the path in-target and escaped; just the error where
/// the path is unknown (a target whose errors name it already).
impl std::fmt::Display for WalkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.error)
        } else {
            write!(f, "{}: {}", display_bytes(&self.path), self.error)
        }
    }
}

/// Directories nested deeper than this below a walk's start are reported
/// as errors and not entered: no real tree comes near, and a hostile one
/// must not cost unbounded memory.
pub const MAX_DEPTH: usize = 4096;

/// A walk over a root held by descriptor.
pub(crate) struct Walker<'a> {
    /// The target's root: only symlink targets are resolved from it
    /// (inside it) when [`WalkOptions::links`] asks for them.
    pub root: BorrowedFd<'a>,
    pub resolver: Resolver,
    /// Use the race-free content door (a running container).
    pub race_free: bool,
    pub options: &'a WalkOptions,
}

/// One listed name, with its type and, when the listing did not say the
/// type, its `stat`.
struct Listed {
    file_type: FileType,
    stat: Option<FileStat>,
}

/// Entries of one directory looked at by one task.
const CHUNK: usize = 128;

type Visitor<'s> = &'s (dyn Fn(Visited<'_, '_>) -> bool + Sync);

impl Walker<'_> {
    /// Walks from `start` (a canonical in-target path) in parallel: the
    /// start itself, then everything below it that `visit` does not
    /// prune (it returns `false` for a directory not to be entered).
    /// `visit` runs on many threads at once, in no particular order.
    pub(crate) fn run(&self, open: Opener<'_>, start: &[u8], visit: Visitor<'_>) -> io::Result<()> {
        let opened = resolve::open_bytes(self.resolver, self.root, start, path_flags(false))?;
        let st = fstat(&opened)?;
        let mut entry = WalkEntry {
            path: display_bytes(start),
            raw_path: start.to_vec(),
            depth: 0,
            metadata: metadata_of(&st),
            link: None,
        };
        if entry.metadata.file_type == FileType::Symlink && self.options.links {
            entry.link = Some(self.link(&opened, c"", start));
        }
        let keep = visit(Ok(&Visit::by_path(open, &entry)));
        if !keep
            || entry.metadata.file_type != FileType::Directory
            || self.options.max_depth == Some(0)
        {
            return Ok(());
        }
        // Reopen the start itself for listing; it was resolved a moment
        // ago, and O_NOFOLLOW refuses it if it became a link since.
        let dir = resolve::open_bytes(self.resolver, self.root, start, DIR)?;
        let dev = st.st_dev;
        let dir = Arc::new(dir);
        rayon::scope(|s| self.list(s, dir, start.to_vec(), 1, dev, visit));
        Ok(())
    }

    /// Lists one directory (held as `dir`, its entries at `depth`) and
    /// spawns a task per subdirectory to enter: tasks are spawned, not
    /// nested, so the stack does not grow with the tree's depth.
    fn list<'s>(
        &'s self,
        s: &rayon::Scope<'s>,
        dir: Arc<OwnedFd>,
        path: Vec<u8>,
        depth: usize,
        dev: u64,
        visit: Visitor<'s>,
    ) {
        let names = match read_names(dir.as_fd()) {
            Ok(n) => n,
            Err(error) => {
                visit(Err(WalkError { path, error }));
                return;
            }
        };
        // A big directory (/usr/lib/<triplet> holds thousands of files)
        // is looked at in parallel chunks, not by one task. Each chunk
        // builds its entries' paths in one buffer: only the directories
        // to enter get a path of their own.
        let chunk = |entries: &[(u32, u8)]| {
            let mut child = path.clone();
            if !child.ends_with(b"/") {
                child.push(b'/');
            }
            let base = child.len();
            let mut enter = Vec::new();
            for &(at, dtype) in entries {
                let name = names.name(at);
                child.truncate(base);
                child.extend_from_slice(name.to_bytes());
                if self.entry(&dir, &child, depth, name, dtype, visit) {
                    enter.push((name.to_owned(), child.clone()));
                }
            }
            enter
        };
        let enter: Vec<(CString, Vec<u8>)> = if names.entries.len() > 2 * CHUNK {
            names
                .entries
                .par_chunks(CHUNK)
                .flat_map_iter(chunk)
                .collect()
        } else {
            chunk(&names.entries)
        };
        for (name, child) in enter {
            let parent = Arc::clone(&dir);
            s.spawn(move |s| {
                let fd = match openat(parent.as_fd(), name.as_c_str(), DIR, Mode::empty()) {
                    Ok(fd) => fd,
                    // Removed since it was listed.
                    Err(Errno::ENOENT) => return,
                    // Swapped for a symlink (ELOOP, ENOTDIR): never
                    // followed, and said.
                    Err(e) => {
                        visit(Err(WalkError {
                            path: child,
                            error: e.into(),
                        }));
                        return;
                    }
                };
                drop(parent);
                if self.options.same_file_system {
                    match fstat(&fd) {
                        // A mount point: reported, not entered (find -xdev).
                        Ok(st) if st.st_dev != dev => return,
                        Ok(_) => {}
                        Err(e) => {
                            visit(Err(WalkError {
                                path: child,
                                error: e.into(),
                            }));
                            return;
                        }
                    }
                }
                self.list(s, Arc::new(fd), child, depth + 1, dev, visit);
            });
        }
    }

    /// Looks at one listed name (`child` is its in-target path) and
    /// visits it; whether it is a subdirectory to enter.
    fn entry(
        &self,
        dir: &OwnedFd,
        child: &[u8],
        depth: usize,
        name: &CStr,
        dtype: u8,
        visit: Visitor<'_>,
    ) -> bool {
        let listed = match look(dir.as_fd(), name, dtype) {
            Ok(l) => l,
            // Gone since it was listed: nothing to report.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return false,
            Err(error) => {
                visit(Err(WalkError {
                    path: child.to_vec(),
                    error,
                }));
                return false;
            }
        };
        let link = (self.options.links && listed.file_type == FileType::Symlink)
            .then(|| self.link(dir, name, child));
        let v = Visit {
            path: child,
            depth,
            file_type: listed.file_type,
            link,
            how: How::Held {
                dir: dir.as_fd(),
                name,
                stat: listed.stat.as_ref(),
                race_free: self.race_free,
            },
        };
        let keep = visit(Ok(&v));
        if !keep
            || listed.file_type != FileType::Directory
            || self.options.max_depth.is_some_and(|m| depth >= m)
        {
            return false;
        }
        if depth >= MAX_DEPTH {
            visit(Err(WalkError {
                path: child.to_vec(),
                error: io::Error::other(format!(
                    "more than {MAX_DEPTH} nested directories: not entered"
                )),
            }));
            return false;
        }
        true
    }

    /// The symlink `name` of `dir` (`""`: `dir` is the link, `O_PATH`),
    /// at in-target `path`: its text, and where it leads inside the root.
    fn link(&self, dir: &OwnedFd, name: &CStr, path: &[u8]) -> Link {
        match nix::fcntl::readlinkat(dir, name) {
            Ok(text) => Link {
                text: text.into_encoded_bytes(),
                target: resolve::open_bytes(self.resolver, self.root, path, path_flags(true))
                    .and_then(|fd| Ok(metadata_of(&fstat(&fd)?)))
                    .map_err(Arc::new),
            },
            Err(e) => Link {
                text: Vec::new(),
                target: Err(Arc::new(e.into())),
            },
        }
    }
}

/// The type of one listed name: from `d_type`, or `fstatat` (relative to
/// the held directory, not followed) where the filesystem leaves it
/// unknown.
fn look(dir: BorrowedFd<'_>, name: &CStr, dtype: u8) -> io::Result<Listed> {
    let file_type = match dtype {
        libc::DT_REG => FileType::File,
        libc::DT_DIR => FileType::Directory,
        libc::DT_LNK => FileType::Symlink,
        libc::DT_FIFO => FileType::Fifo,
        libc::DT_SOCK => FileType::Socket,
        libc::DT_BLK => FileType::Block,
        libc::DT_CHR => FileType::Char,
        _ => {
            let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
            return Ok(Listed {
                file_type: FileType::from_mode(st.st_mode),
                stat: Some(st),
            });
        }
    };
    Ok(Listed {
        file_type,
        stat: None,
    })
}

/// The names of one directory listing, in one buffer: each name
/// NUL-terminated in `bytes`, listed by its offset there and its
/// `d_type`. Two allocations per directory, none per name.
struct Names {
    bytes: Vec<u8>,
    entries: Vec<(u32, u8)>,
}

impl Names {
    fn name(&self, at: u32) -> &CStr {
        // Every offset in `entries` starts a name that `read_names`
        // ended with a NUL, and names hold none of their own.
        CStr::from_bytes_until_nul(&self.bytes[at as usize..]).unwrap_or(c"")
    }
}

/// The names (without `.` and `..`) and `d_type`s of a directory, read
/// with `getdents64` from its descriptor.
fn read_names(dir: BorrowedFd<'_>) -> io::Result<Names> {
    // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen;
    // u8 d_type; char d_name[]; }
    const NAME: usize = 19;
    const BUF: usize = 32 << 10;
    thread_local! {
        // One buffer per thread, not one (zeroed) per directory.
        static BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; BUF]);
    }
    BUFFER.with_borrow_mut(|buf| {
        let mut out = Names {
            bytes: Vec::new(),
            entries: Vec::new(),
        };
        loop {
            // SAFETY: getdents64 writes at most `buf.len()` bytes into
            // `buf`, which lives across the call.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    dir.as_raw_fd(),
                    buf.as_mut_ptr(),
                    buf.len(),
                )
            };
            let n = match usize::try_from(n) {
                Ok(0) => return Ok(out),
                Ok(n) => n.min(buf.len()),
                Err(_) => return Err(io::Error::last_os_error()),
            };
            let mut off = 0;
            while off + NAME <= n {
                let reclen = usize::from(u16::from_ne_bytes([buf[off + 16], buf[off + 17]]));
                if reclen <= NAME || off + reclen > n {
                    return Err(io::Error::other("malformed directory listing"));
                }
                let dtype = buf[off + 18];
                let raw = &buf[off + NAME..off + reclen];
                let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
                off += reclen;
                if name.is_empty() || name == b"." || name == b".." {
                    continue;
                }
                let at = u32::try_from(out.bytes.len())
                    .map_err(|_| io::Error::other("directory listing too large"))?;
                // `name` stops at the first NUL, so it holds none.
                out.bytes.extend_from_slice(name);
                out.bytes.push(0);
                out.entries.push((at, dtype));
            }
        }
    })
}

/// The sort key of an in-target path for walk order: depth first, the
/// entries of a directory by the bytes of their names. `/` becomes 0,
/// which sorts before every byte a name can hold, so plain slice order
/// (a memcmp) is walk order. What a [`Target::walk_parallel`] visitor
/// collects is put in [`Target::walk`]'s order by this key.
///
/// [`Target::walk_parallel`]: super::Target::walk_parallel
/// [`Target::walk`]: super::Target::walk
pub fn walk_key(path: &[u8]) -> Vec<u8> {
    path.iter()
        .map(|&c| if c == b'/' { 0 } else { c })
        .collect()
}

/// One value per thread of a [`Target::walk_parallel`] visitor (each rayon
/// thread, and one for a thread outside the pool), each on a cache line of
/// its own: a counter every thread bumped for each of 20,000 entries would
/// bounce between the cores on every entry.
///
/// [`Target::walk_parallel`]: super::Target::walk_parallel
pub struct PerThread<T>(Vec<Padded<T>>);

#[derive(Default)]
#[repr(align(128))]
struct Padded<T>(T);

impl<T: Default> Default for PerThread<T> {
    fn default() -> Self {
        PerThread(
            (0..=rayon::current_num_threads())
                .map(|_| Padded::default())
                .collect(),
        )
    }
}

impl<T> PerThread<T> {
    /// The calling thread's value.
    pub fn mine(&self) -> &T {
        let n = self.0.len();
        &self.0[rayon::current_thread_index().map_or(n - 1, |i| i % n)].0
    }

    /// Every thread's value, to add them up.
    pub fn all(&self) -> impl Iterator<Item = &T> {
        self.0.iter().map(|p| &p.0)
    }
}

/// One result of an ordered walk: its walk key, and whether it is an
/// error (which sorts after the entry it is about).
type Item = (Vec<u8>, bool, io::Result<WalkEntry>);

/// Walks like [`Walker::run`] and hands `visit` every entry in a stable
/// order (see [`walk_key`]), with its full metadata. A directory that
/// `visit` prunes was still walked, but nothing below it is shown.
pub(crate) fn walk_ordered(
    walker: &Walker<'_>,
    open: Opener<'_>,
    start: &[u8],
    visit: &mut dyn FnMut(io::Result<WalkEntry>) -> bool,
) -> io::Result<()> {
    let items: Mutex<Vec<Item>> = Mutex::default();
    let push = |item: Item| items.lock().unwrap_or_else(|p| p.into_inner()).push(item);
    walker.run(open, start, &|v| {
        push(match v {
            Ok(v) => match v.metadata() {
                Ok(metadata) => (
                    walk_key(v.path),
                    false,
                    Ok(WalkEntry {
                        path: display_bytes(v.path),
                        raw_path: v.path.to_vec(),
                        depth: v.depth,
                        metadata,
                        link: v.link.clone(),
                    }),
                ),
                Err(error) => {
                    let e = WalkError {
                        path: v.path.to_vec(),
                        error,
                    };
                    (walk_key(v.path), true, Err(e.into_io()))
                }
            },
            Err(e) => (walk_key(&e.path), true, Err(e.into_io())),
        });
        true
    })?;
    let items = items.into_inner().unwrap_or_else(|p| p.into_inner());
    // Sort a permutation, not the (large) items themselves.
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.par_sort_unstable_by(|&a, &b| {
        let (a, b) = (&items[a], &items[b]);
        a.0.cmp(&b.0).then(a.1.cmp(&b.1))
    });
    let mut items: Vec<Option<Item>> = items.into_iter().map(Some).collect();
    let mut pruned: Option<Vec<u8>> = None;
    for i in order {
        let Some((key, _, item)) = items[i].take() else {
            continue;
        };
        if let Some(p) = &pruned {
            // The directory's own errors (it could not be listed) too.
            let below = key.starts_with(p)
                && (key.len() == p.len() || p.ends_with(&[0]) || key[p.len()] == 0);
            if below {
                continue;
            }
            pruned = None;
        }
        let is_dir = matches!(&item, Ok(e) if e.metadata.file_type == FileType::Directory);
        if !visit(item) && is_dir {
            pruned = Some(key);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_escapes_only_what_is_not_utf8() {
        assert_eq!(display_bytes(b"/usr/bin/ls"), "/usr/bin/ls");
        assert_eq!(display_bytes("/é/ü".as_bytes()), "/é/ü");
        assert_eq!(display_bytes(b"/bad\xff"), "/bad\\xff");
        // Lossy conversion would show both as "/bad\u{fffd}".
        assert_ne!(
            display_bytes(b"/bad\xff"),
            display_bytes("/bad\u{fffd}".as_bytes())
        );
        assert_eq!(display_bytes(b"\xc3"), "\\xc3");
    }

    #[test]
    fn walk_order_is_depth_first_by_name() {
        let mut paths: Vec<&[u8]> = vec![b"/a.b", b"/a/x", b"/a", b"/", b"/a/x/y", b"/b"];
        paths.sort_by_key(|p| walk_key(p));
        let want: Vec<&[u8]> = vec![b"/", b"/a", b"/a/x", b"/a/x/y", b"/a.b", b"/b"];
        assert_eq!(paths, want);
    }
}
