//! Programs in a packed image: the tree is written out once per run into a
//! size-capped tmpfs that exists only in the mount namespace of a *holder*
//! process, and the rootfs sandbox joins that namespace to run programs
//! over it. Nothing is written to the host's filesystems, and removal does
//! not depend on nodecheck living: the holder dies with nodecheck (its
//! parent-death signal) or when nodecheck closes its stdin, the mount
//! namespace goes with its last process, and the kernel frees the tmpfs.
//! A SIGKILLed nodecheck leaves nothing to sweep.
//!
//! The holder is nodecheck itself again (`__nodecheck-helper image-tree`,
//! single-threaded, so it may unshare namespaces). nodecheck streams the
//! tree to it over its stdin from the index (one record per entry, content
//! read from the image's stores); the holder creates each entry by its name
//! inside the directory it created last (`mkdirat`, `openat(O_EXCL |
//! O_NOFOLLOW)`, `symlinkat`, `linkat`, `mknodat`), so no name of the image
//! is ever resolved on the host and a symlink of the image is written,
//! never followed.
//!
//! - As root, the holder has a mount namespace of its own; owners, modes,
//!   xattrs and device nodes are kept as the archive records them.
//! - Unprivileged, it first makes a user namespace mapped over the caller's
//!   subordinate ids by the setuid `newuidmap`/`newgidmap` (0 → the
//!   caller, 1…N → the first range of `/etc/subuid` and `/etc/subgid`), so
//!   the archive's owners are kept as mapped ids; device nodes cannot be
//!   made there and are left out (the sandbox brings its own `/dev`). An
//!   owner beyond the range is an error naming the entry.
//!
//! The tmpfs is capped at the tree's size (file data rounded to pages,
//! plus 64 MiB) and its entry count; the tree takes that much memory (or
//! swap) while the run lasts, so a tree larger than the memory available
//! is refused up front with the figures.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::{Attrs, ImageTarget};
use crate::target::FileType;
use crate::target::sandbox::{Enter, start_time};

/// Where the holder mounts its tmpfs, in its own mount namespace (hiding
/// the host's directory there only), and where the tree's root lies.
const MOUNT_AT: &str = "/tmp";
const ROOT: &str = "/tmp/root";

/// Headroom of the tmpfs over the tree's data: directories, long symlinks
/// and what the sandbox's overlay does not catch.
const HEADROOM: u64 = 64 << 20;

/// Where `newuidmap` and `newgidmap` are looked for (never `$PATH`: they
/// are setuid root, and only the system's own are trusted).
const MAP_DIRS: &[&str] = &["/usr/bin", "/bin", "/usr/sbin", "/sbin"];

/// The written-out tree: held by a process, gone with it.
pub(crate) struct Materialised {
    holder: Holder,
    pub enter: Enter,
    /// Device nodes left out (unprivileged).
    pub devices_left_out: u64,
    /// The files written from a compressed cpio's stream, for reads.
    pub files: Arc<TreeFiles>,
}

/// The regular files of a compressed cpio written out from a fresh pass
/// over its stream, read back from the tree rather than from a spill:
/// node → its path below the tree's root, and the root, opened on the
/// first read through the holder's `/proc/PID/root`.
#[derive(Debug)]
pub(crate) struct TreeFiles {
    paths: std::collections::HashMap<usize, Box<[u8]>>,
    root: Option<OwnedFd>,
}

impl TreeFiles {
    /// The written file of node `n` (`size` bytes), opened for reading
    /// beneath the tree's root, never through a symlink; `None` when it
    /// cannot be (unprivileged, a mode that refuses the caller: the spill
    /// serves then).
    pub fn open(&self, n: usize, size: u64) -> Option<File> {
        let file = open_beneath(
            self.root.as_ref()?,
            self.paths.get(&n)?,
            nix::fcntl::OFlag::O_RDONLY,
        )
        .ok()?;
        (file.metadata().ok()?.len() == size).then_some(file)
    }
}

impl Materialised {
    /// The tree's root, inside the holder's mount namespace.
    pub fn root(&self) -> PathBuf {
        PathBuf::from(ROOT)
    }
}

impl std::fmt::Debug for Materialised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Materialised(holder {})", self.holder.child.id())
    }
}

/// The caller's subordinate ids, for an unprivileged holder.
#[derive(Clone, Debug)]
struct SubIds {
    user: String,
    uid: u32,
    gid: u32,
    uids: (u32, u32),
    gids: (u32, u32),
}

/// Why programs cannot run in a packed image here, or `None` when they can:
/// as root always; unprivileged, with a subordinate id range in
/// `/etc/subuid` and `/etc/subgid`, `newuidmap`/`newgidmap`, and user
/// namespaces the kernel allows (tried once per process).
pub(crate) fn unavailable() -> Option<String> {
    if nix::unistd::geteuid().is_root() {
        return None;
    }
    static PROBE: OnceLock<Option<String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let ids = match subids() {
                Ok(ids) => ids,
                Err(e) => return Some(e),
            };
            let held = Holder::start(Some(&ids), true, 1 << 20, 64).and_then(|mut h| {
                h.expect("P")?;
                Ok(())
            });
            held.err().map(|e| {
                format!(
                    "programs in a packed image need root or a user namespace over the \
                     subordinate ids of {}: {e}",
                    ids.user
                )
            })
        })
        .clone()
}

/// Writes the image out into a fresh holder.
pub(crate) fn materialise(image: &ImageTarget) -> Result<Materialised, String> {
    let (size, inodes) = footprint(image);
    let available = mem_available();
    if let Some(avail) = available
        && size > avail
    {
        return Err(format!(
            "its tree needs {} MiB of memory (a tmpfs that goes with the run) and only {} MiB \
             are available",
            size >> 20,
            avail >> 20
        ));
    }
    let ids = if nix::unistd::geteuid().is_root() {
        None
    } else {
        Some(subids()?)
    };
    let mut h = Holder::start(ids.as_ref(), false, size, inodes)?;
    h.expect("R")?;
    let pid = i32::try_from(h.child.id()).unwrap_or(0);
    let mut later = Later::default();
    let root = match fill(&mut h, image, &mut later, pid) {
        Ok(root) => root,
        // The holder stopped reading: its own word says why.
        Err(Fill::Send(e)) => {
            return Err(match h.line() {
                Ok(l) if l.starts_with("E ") => l[2..].to_string(),
                _ => format!("cannot send the tree to its holder: {e}"),
            });
        }
        Err(Fill::Failed(e)) => return Err(e),
    };
    let devices_left_out = match h.line()? {
        l if l.starts_with("D ") => l[2..].trim().parse().unwrap_or(0),
        l if l.starts_with("E ") => return Err(l[2..].to_string()),
        l => return Err(format!("the tree's holder said {l:?}")),
    };
    let start = start_time(pid).ok_or("the tree's holder is gone")?;
    Ok(Materialised {
        holder: h,
        enter: Enter {
            pid,
            start_time: start,
            user: ids.is_some(),
        },
        devices_left_out,
        files: Arc::new(TreeFiles {
            paths: later.paths,
            root,
        }),
    })
}

/// Why the tree could not be filled.
enum Fill {
    /// Writing to the holder failed (it ended: it says why).
    Send(io::Error),
    /// Anything else, said.
    Failed(String),
}

/// Sends the tree to the holder: its skeleton (every entry, and the
/// content that can be read at any offset), then, for a compressed cpio,
/// the content of its other files, written into the files the holder made
/// from a second pass over the stream in its order, and checked to be the
/// stream the index was built from; the holder then applies those files'
/// attributes. The tree's root, opened beneath the holder's root, is
/// returned when content was written (reads use it afterwards).
fn fill(
    h: &mut Holder,
    image: &ImageTarget,
    later: &mut Later,
    pid: i32,
) -> Result<Option<OwnedFd>, Fill> {
    {
        let mut w = io::BufWriter::with_capacity(1 << 20, h.control.as_mut().expect("stdin"));
        send(image, &mut w, later).map_err(Fill::Send)?;
        let last: &[u8] = if later.content.is_empty() { b"e" } else { b"p" };
        w.write_all(last)
            .and_then(|()| w.flush())
            .map_err(Fill::Send)?;
    }
    let Some(lazy) = image.lazy.as_ref().filter(|_| !later.content.is_empty()) else {
        return Ok(None);
    };
    h.expect("S").map_err(Fill::Failed)?;
    let root = open_root(pid).map_err(|e| Fill::Failed(format!("cannot open the tree: {e}")))?;
    write_content(lazy, later, &root).map_err(|e| Fill::Failed(e.to_string()))?;
    let w = h.control.as_mut().expect("stdin");
    w.write_all(b"ae")
        .and_then(|()| w.flush())
        .map_err(Fill::Send)?;
    Ok(Some(root))
}

/// The tree's root in the holder's mount namespace, seen through its
/// `/proc/PID/root` (the holder is our child, not yet reaped: its pid
/// cannot be another process's).
fn open_root(pid: i32) -> io::Result<OwnedFd> {
    use nix::fcntl::OFlag;
    nix::fcntl::open(
        format!("/proc/{pid}/root{ROOT}").as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// Opens `rel` beneath the tree's `root`, never through a symlink, a
/// magic link or another mount.
fn open_beneath(root: &OwnedFd, rel: &[u8], flags: nix::fcntl::OFlag) -> io::Result<File> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
    let how = OpenHow::new()
        .flags(flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
                | ResolveFlag::RESOLVE_NO_XDEV,
        );
    let fd = openat2(root, rel, how).map_err(io::Error::from)?;
    let file = File::from(fd);
    let want_dir = flags.contains(OFlag::O_DIRECTORY);
    if file.metadata()?.is_file() == want_dir {
        return Err(io::Error::other(if want_dir {
            "not a directory"
        } else {
            "not a regular file"
        }));
    }
    Ok(file)
}

/// The tmpfs's size (file data in pages plus headroom) and inode count.
fn footprint(image: &ImageTarget) -> (u64, u64) {
    let page = 4096u64;
    let mut bytes = HEADROOM;
    for n in &image.index.nodes {
        let a = &n.attrs;
        match a.file_type {
            // A hard-link set shares one node, counted once.
            FileType::File => bytes += a.size.div_ceil(page) * page,
            // Long link texts take a page.
            FileType::Symlink if a.link.len() >= 128 => bytes += page,
            _ => {}
        }
    }
    (bytes, image.index.nodes.len() as u64 + 1024)
}

/// `MemAvailable` plus `SwapFree`, in bytes.
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb << 10)
    };
    Some(field("MemAvailable:")? + field("SwapFree:").unwrap_or(0))
}

/// The caller's first subordinate uid and gid ranges, by name or uid.
fn subids() -> Result<SubIds, String> {
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    let user = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name);
    let range = |file: &str, id: u32| -> Result<(u32, u32), String> {
        let missing = || {
            format!(
                "programs in a packed image need root or a subordinate id range for {user} ({file})"
            )
        };
        let text = std::fs::read_to_string(file).map_err(|_| missing())?;
        subid_range(&text, &user, id).ok_or_else(missing)
    };
    let uids = range("/etc/subuid", uid.as_raw())?;
    let gids = range("/etc/subgid", uid.as_raw())?;
    for prog in ["newuidmap", "newgidmap"] {
        if map_program(prog).is_none() {
            return Err(format!(
                "programs in a packed image need root, or {prog} (Debian's uidmap package) to \
                 map the subordinate ids of {user}"
            ));
        }
    }
    Ok(SubIds {
        user,
        uid: uid.as_raw(),
        gid: gid.as_raw(),
        uids,
        gids,
    })
}

/// The first `NAME:START:COUNT` line of a subordinate id file for `user`
/// (or its uid `id`), as `newuidmap` reads it.
pub(crate) fn subid_range(text: &str, user: &str, id: u32) -> Option<(u32, u32)> {
    let id = id.to_string();
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let (who, start, count) = (f.next()?, f.next()?, f.next()?);
        if who != user && who != id {
            return None;
        }
        let (start, count) = (start.parse().ok()?, count.parse::<u32>().ok()?);
        (count > 0).then_some((start, count))
    })
}

fn map_program(name: &str) -> Option<PathBuf> {
    MAP_DIRS
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The holder as nodecheck sees it: its stdin (records, then held open),
/// its stdout (one status line per step).
struct Holder {
    child: Child,
    control: Option<ChildStdin>,
    out: BufReader<ChildStdout>,
}

impl Holder {
    /// Starts a holder (`probe`: it only tries its namespaces and tmpfs),
    /// mapped over `ids` when unprivileged.
    fn start(ids: Option<&SubIds>, probe: bool, size: u64, inodes: u64) -> Result<Holder, String> {
        let mode = match (ids.is_some(), probe) {
            (true, true) => "probe-user",
            (true, false) => "user",
            (false, true) => "probe-root",
            (false, false) => "root",
        };
        let mut cmd =
            crate::helper::command(crate::helper::IMAGE_TREE).map_err(|e| e.to_string())?;
        cmd.arg(mode)
            .arg(size.to_string())
            .arg(inodes.to_string())
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        crate::helper::child_hygiene(&mut cmd, 3);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start the tree's holder: {e}"))?;
        let control = child.stdin.take();
        let out = BufReader::new(child.stdout.take().ok_or("no stdout pipe")?);
        let mut h = Holder {
            child,
            control,
            out,
        };
        if let Some(ids) = ids {
            h.expect("U")?;
            map(h.child.id(), ids)?;
            h.control
                .as_mut()
                .ok_or("no stdin pipe")?
                .write_all(b"M")
                .map_err(|e| format!("cannot reach the tree's holder: {e}"))?;
        }
        Ok(h)
    }

    /// The holder's next status line (`E …` is its error).
    fn line(&mut self) -> Result<String, String> {
        let mut l = String::new();
        match self.out.read_line(&mut l) {
            Ok(0) | Err(_) => Err("the tree's holder ended without a word".into()),
            Ok(_) => Ok(l.trim_end().to_string()),
        }
    }

    fn expect(&mut self, want: &str) -> Result<(), String> {
        let l = self.line()?;
        if l == want {
            Ok(())
        } else if let Some(e) = l.strip_prefix("E ") {
            Err(e.to_string())
        } else {
            Err(format!("the tree's holder said {l:?}, not {want:?}"))
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // The holder is the last process in its mount namespace (sandbox
        // helpers that joined it are gone once their exec returned): its
        // end frees the tmpfs.
        drop(self.control.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Maps the holder's user namespace: 0 → the caller, 1…N → its range.
fn map(pid: u32, ids: &SubIds) -> Result<(), String> {
    for (prog, own, (start, count)) in [
        ("newuidmap", ids.uid, ids.uids),
        ("newgidmap", ids.gid, ids.gids),
    ] {
        let path = map_program(prog).ok_or(format!("{prog} is not installed"))?;
        let mut cmd = Command::new(path);
        cmd.args([
            pid.to_string(),
            "0".into(),
            own.to_string(),
            "1".into(),
            "1".into(),
            start.to_string(),
            count.to_string(),
        ]);
        let out = crate::helper::run_bounded(
            &mut cmd,
            crate::helper::Bounds {
                timeout: Duration::from_secs(10),
                keep: 4096,
            },
        )
        .map_err(|e| format!("cannot run {prog}: {e}"))?;
        if out.status != Some(0) {
            return Err(format!("{prog} refused: {}", out.stderr.trim()));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------
// The stream: nodecheck → holder
// ---------------------------------------------------------------------
//
// Records, each a tag byte, a name (u32 length, bytes) and for all but
// `u`, `h` and `e` the attributes:
//   d NAME ATTRS           a directory (the first, nameless, is the root); entered
//   u                      the directory entered last is done (its attributes
//                          are applied at the end, children first)
//   f NAME ATTRS SIZE DATA a regular file
//   F NAME ATTRS SIZE      a regular file made empty: nodecheck writes its content
//   l NAME ATTRS LINK      a symlink
//   n NAME ATTRS           a device node or FIFO
//   h NAME COUNT PATH…     a further name of a file written before
//   p                      every entry is made: the holder says `S` and waits
//   a                      the `F` files are written: apply their attributes
//   e                      the end

fn put(w: &mut impl Write, b: &[u8]) -> io::Result<()> {
    let n = u32::try_from(b.len()).map_err(|_| io::Error::other("name too long"))?;
    w.write_all(&n.to_le_bytes())?;
    w.write_all(b)
}

fn put_attrs(w: &mut impl Write, a: &Attrs) -> io::Result<()> {
    let t: u8 = match a.file_type {
        FileType::File => 0,
        FileType::Directory => 1,
        FileType::Symlink => 2,
        FileType::Char => 3,
        FileType::Block => 4,
        FileType::Fifo => 5,
        FileType::Socket => 6,
    };
    w.write_all(&[t])?;
    w.write_all(&a.mode.to_le_bytes())?;
    w.write_all(&a.uid.to_le_bytes())?;
    w.write_all(&a.gid.to_le_bytes())?;
    w.write_all(&a.mtime.to_le_bytes())?;
    w.write_all(&a.rdev.to_le_bytes())?;
    w.write_all(&(a.xattrs.len() as u32).to_le_bytes())?;
    for (k, v) in &a.xattrs {
        put(w, k)?;
        put(w, v)?;
    }
    Ok(())
}

/// The files of a compressed cpio whose content comes after the tree's
/// skeleton, in the stream's order.
#[derive(Default)]
struct Later {
    /// (offset in the stream, size, node).
    content: Vec<(u64, u64, usize)>,
    /// Node → its path below the tree's root.
    paths: std::collections::HashMap<usize, Box<[u8]>>,
}

/// Sends the tree: its skeleton in the index's order (directories, links,
/// nodes, and files with their content where it can be read at any
/// offset), then the content of a compressed cpio's files in the order
/// of its stream, decompressed once more from the start and checked to be
/// the stream the index was built from (no spill: the tree is where the
/// run reads that content from afterwards).
fn send(image: &ImageTarget, w: &mut impl Write, later: &mut Later) -> io::Result<()> {
    w.write_all(b"d")?;
    put(w, b"")?;
    put_attrs(w, &image.index.nodes[0].attrs)?;
    let mut first: Vec<Option<Vec<Vec<u8>>>> = vec![None; image.index.nodes.len()];
    send_dir(image, 0, &mut Vec::new(), &mut first, later, w)?;
    w.write_all(b"u")
}

/// Writes the content of the files in `later` (made empty by the holder)
/// from a fresh pass over `lazy`'s stream, in its order.
fn write_content(lazy: &super::Lazy, later: &mut Later, root: &OwnedFd) -> io::Result<()> {
    later.content.sort_unstable();
    let (reader, thread) = super::stream::streamed(&lazy.image, lazy.image_len, lazy.cap)?;
    let mut r = BufReader::with_capacity(1 << 20, reader);
    let mut pos = 0u64;
    let mut result = Ok(());
    for &(offset, size, node) in &later.content {
        let rel = &later.paths[&node];
        let name = || format!("/{}", String::from_utf8_lossy(rel));
        if offset < pos {
            result = Err(io::Error::other(format!(
                "{}: its content overlaps another file's",
                name()
            )));
            break;
        }
        let skipped = io::copy(&mut (&mut r).take(offset - pos), &mut io::sink())?;
        let mut f = open_beneath(root, rel, nix::fcntl::OFlag::O_WRONLY)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", name())))?;
        let copied = io::copy(&mut (&mut r).take(size), &mut f)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot write {}: {e}", name())))?;
        if skipped != offset - pos || copied != size {
            result = Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: the stream ends inside its content", name()),
            ));
            break;
        }
        pos = offset + size;
    }
    if result.is_ok() {
        // To its end, so that the whole stream is checked.
        io::copy(&mut r, &mut io::sink())?;
    }
    drop(r);
    let joined = thread
        .join()
        .map_err(|_| io::Error::other("the decompressing thread panicked"))?;
    match joined {
        // The reader stopped early: its own error says why.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => result,
        Err(e) => Err(e),
        Ok((len, crc, _)) => lazy.same_stream(len, crc).and(result),
    }
}

fn send_dir(
    image: &ImageTarget,
    n: usize,
    path: &mut Vec<Vec<u8>>,
    first: &mut [Option<Vec<Vec<u8>>>],
    later: &mut Later,
    w: &mut impl Write,
) -> io::Result<()> {
    let mut buf = Vec::new();
    for (name, &child) in &image.index.nodes[n].children {
        let node = &image.index.nodes[child];
        let a = &node.attrs;
        if let Some(to) = &first[child] {
            w.write_all(b"h")?;
            put(w, name)?;
            w.write_all(&(to.len() as u32).to_le_bytes())?;
            for c in to {
                put(w, c)?;
            }
            continue;
        }
        match a.file_type {
            FileType::Directory => {
                w.write_all(b"d")?;
                put(w, name)?;
                put_attrs(w, a)?;
                path.push(name.clone());
                send_dir(image, child, path, first, later, w)?;
                path.pop();
                w.write_all(b"u")?;
                continue;
            }
            FileType::File if node.data.is_some_and(|d| d.store == super::LAZY) => {
                let d = node.data.expect("checked");
                w.write_all(b"F")?;
                put(w, name)?;
                put_attrs(w, a)?;
                w.write_all(&a.size.to_le_bytes())?;
                later.content.push((d.offset, a.size, child));
                let mut rel = path.join(&b'/');
                if !rel.is_empty() {
                    rel.push(b'/');
                }
                rel.extend_from_slice(name);
                later.paths.insert(child, rel.into_boxed_slice());
            }
            FileType::File => {
                w.write_all(b"f")?;
                put(w, name)?;
                put_attrs(w, a)?;
                w.write_all(&a.size.to_le_bytes())?;
                let file = image.file_of(child);
                buf.resize(1 << 20, 0);
                let mut off = 0;
                while off < a.size {
                    let want = (a.size - off).min(buf.len() as u64) as usize;
                    let got = crate::target::FileAt::read_at(&file, &mut buf[..want], off)?;
                    if got == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!(
                                "/{}: content ends early",
                                String::from_utf8_lossy(
                                    &[path.join(&b'/'), name.clone()].join(&b'/')[..]
                                )
                            ),
                        ));
                    }
                    w.write_all(&buf[..got])?;
                    off += got as u64;
                }
            }
            FileType::Symlink => {
                w.write_all(b"l")?;
                put(w, name)?;
                put_attrs(w, a)?;
                put(w, &a.link)?;
            }
            FileType::Char | FileType::Block | FileType::Fifo => {
                w.write_all(b"n")?;
                put(w, name)?;
                put_attrs(w, a)?;
            }
            // A socket is bound by a running program, never unpacked.
            FileType::Socket => continue,
        }
        if node.nlink > 1 {
            let mut p = path.clone();
            p.push(name.clone());
            first[child] = Some(p);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------
// The holder's side
// ---------------------------------------------------------------------

/// The holder's entry (`__nodecheck-helper image-tree MODE SIZE INODES`),
/// called by [`crate::helper::dispatch`]; it was started with a
/// parent-death signal, so it never outlives nodecheck.
pub(crate) fn tree_helper_main(args: &[String]) -> i32 {
    match holder(args) {
        Ok(()) => 0,
        Err(e) => {
            say(&format!("E {e}"));
            1
        }
    }
}

fn say(msg: &str) {
    let mut o = io::stdout().lock();
    let _ = writeln!(o, "{}", msg.replace('\n', " "));
    let _ = o.flush();
}

fn holder(args: &[String]) -> Result<(), String> {
    use nix::mount::{MsFlags, mount};
    use nix::sched::{CloneFlags, unshare};
    let [mode, size, inodes] = args else {
        return Err("usage: image-tree MODE SIZE INODES".into());
    };
    let (user, probe) = match mode.as_str() {
        "user" => (true, false),
        "probe-user" => (true, true),
        "root" => (false, false),
        "probe-root" => (false, true),
        other => return Err(format!("unknown mode {other:?}")),
    };
    let mut input = BufReader::with_capacity(1 << 20, io::stdin().lock());
    if user {
        unshare(CloneFlags::CLONE_NEWUSER)
            .map_err(|e| format!("cannot create a user namespace: {}", e.desc()))?;
        say("U");
        let mut b = [0u8; 1];
        input
            .read_exact(&mut b)
            .map_err(|e| format!("no word from nodecheck: {e}"))?;
        if b[0] != b'M' {
            return Err("the user namespace was not mapped".into());
        }
    }
    unshare(CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("cannot create a mount namespace: {}", e.desc()))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("cannot make the mounts private: {}", e.desc()))?;
    mount(
        Some("tmpfs"),
        MOUNT_AT,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(format!("mode=0700,size={size},nr_inodes={inodes}").as_str()),
    )
    .map_err(|e| format!("cannot mount a tmpfs for the tree: {}", e.desc()))?;
    if probe {
        say("P");
        return Ok(());
    }
    say("R");
    let left_out = Writer::new(user).run(&mut input)?;
    say(&format!("D {left_out}"));
    // Held until nodecheck closes our stdin (or dies: parent-death
    // signal); then the namespace and its tmpfs go.
    let mut sink = [0u8; 256];
    while matches!(input.read(&mut sink), Ok(n) if n > 0) {}
    Ok(())
}

/// The attributes as received.
struct Meta {
    file_type: u8,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    rdev: u64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Writes the records into the tmpfs, each entry created by its name in
/// the directory created before it.
struct Writer {
    user: bool,
    /// Open directories from the root down, with their names and
    /// attributes (applied when they are done).
    stack: Vec<(OwnedFd, Vec<u8>, Meta)>,
    root: Option<OwnedFd>,
    left_out: u64,
    /// Files created empty, their content written by nodecheck (`F`):
    /// path below the root, attributes (applied at `a`, once written),
    /// size.
    later: Vec<(CString, Meta, u64)>,
    /// Directories left (path below the root, attributes), applied at the
    /// end.
    dirs: Vec<(CString, Meta)>,
}

/// Names are what nodecheck's index holds: a single component, never
/// `.` or `..`, no `/` or NUL (refused when it was built); checked again.
fn name_ok(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

fn cstr(b: &[u8]) -> Result<CString, String> {
    CString::new(b).map_err(|_| "a name holds a NUL byte".to_string())
}

fn last_err() -> io::Error {
    io::Error::last_os_error()
}

impl Writer {
    fn new(user: bool) -> Writer {
        Writer {
            user,
            stack: Vec::new(),
            root: None,
            left_out: 0,
            later: Vec::new(),
            dirs: Vec::new(),
        }
    }

    fn path(&self, name: &[u8]) -> String {
        let mut p = Vec::new();
        for (_, n, _) in self.stack.iter().skip(1) {
            p.push(b'/');
            p.extend_from_slice(n);
        }
        p.push(b'/');
        p.extend_from_slice(name);
        String::from_utf8_lossy(&p).into_owned()
    }

    fn run(mut self, r: &mut impl Read) -> Result<u64, String> {
        let err = |e: io::Error| format!("the tree's stream broke off: {e}");
        loop {
            let mut tag = [0u8; 1];
            r.read_exact(&mut tag).map_err(err)?;
            match tag[0] {
                b'e' => break,
                // A directory's attributes wait for the end: its mode
                // could bar nodecheck from the files below it (their
                // content is written afterwards), and entries made in it
                // would move its times.
                b'u' => {
                    let (_, name, meta) = self.stack.pop().ok_or("unbalanced stream")?;
                    let path = self.path(&name);
                    self.dirs.push((cstr(&path.as_bytes()[1..])?, meta));
                }
                b'd' => {
                    let name = get(r).map_err(err)?;
                    let meta = get_meta(r).map_err(err)?;
                    let fd = self.mkdir(&name)?;
                    self.stack.push((fd, name, meta));
                }
                b'f' => {
                    let name = get(r).map_err(err)?;
                    let meta = get_meta(r).map_err(err)?;
                    let size = get_u64(r).map_err(err)?;
                    self.file(&name, &meta, size, r)?;
                }
                b'F' => {
                    let name = get(r).map_err(err)?;
                    let meta = get_meta(r).map_err(err)?;
                    let size = get_u64(r).map_err(err)?;
                    self.empty_file(&name, meta, size)?;
                }
                // Every entry is made: nodecheck writes the content of the
                // files made empty, then asks for their attributes.
                b'p' => say("S"),
                b'a' => self.apply_later()?,
                b'l' => {
                    let name = get(r).map_err(err)?;
                    let meta = get_meta(r).map_err(err)?;
                    let link = get(r).map_err(err)?;
                    self.symlink(&name, &meta, &link)?;
                }
                b'n' => {
                    let name = get(r).map_err(err)?;
                    let meta = get_meta(r).map_err(err)?;
                    self.node(&name, &meta)?;
                }
                b'h' => {
                    let name = get(r).map_err(err)?;
                    let count = get_u32(r).map_err(err)?;
                    let mut to = Vec::new();
                    for _ in 0..count.min(4096) {
                        to.push(get(r).map_err(err)?);
                    }
                    self.hard_link(&name, &to)?;
                }
                other => return Err(format!("unknown record {other:#x} in the tree's stream")),
            }
        }
        if !self.stack.is_empty() {
            return Err("the tree's stream ended inside a directory".into());
        }
        if let Some((path, ..)) = self.later.first() {
            return Err(format!(
                "/{}: its content never came",
                String::from_utf8_lossy(path.as_bytes())
            ));
        }
        // Children before their parents, as they were left.
        let root = self.root.as_ref().ok_or("an empty tree")?;
        for (rel, meta) in &self.dirs {
            let path = format!("/{}", String::from_utf8_lossy(rel.as_bytes()));
            let at: &[u8] = if rel.is_empty() { b"." } else { rel.as_bytes() };
            let d = open_beneath(root, at, nix::fcntl::OFlag::O_DIRECTORY)
                .map_err(|e| format!("cannot open {path} again: {e}"))?;
            self.apply_fd(d.as_raw_fd(), meta, &path)?;
        }
        Ok(self.left_out)
    }

    /// Creates the regular file `name` (mode 0600 until its attributes
    /// are applied) in the current directory, never through a link.
    fn create(&self, name: &[u8]) -> Result<(File, String), String> {
        let path = self.path(name);
        let (dirfd, c) = self.at(name)?;
        // SAFETY: a NUL-terminated name in a directory fd we own.
        let fd = unsafe {
            libc::openat(
                dirfd,
                c.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o600 as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(format!("cannot create {path}: {}", last_err()));
        }
        // SAFETY: a new descriptor this process owns.
        Ok((File::from(unsafe { OwnedFd::from_raw_fd(fd) }), path))
    }

    /// Creates a regular file whose content nodecheck writes later.
    fn empty_file(&mut self, name: &[u8], meta: Meta, size: u64) -> Result<(), String> {
        let (_, path) = self.create(name)?;
        self.later.push((cstr(&path.as_bytes()[1..])?, meta, size));
        Ok(())
    }

    /// Applies the attributes of the files made empty, once nodecheck has
    /// written their content (a write would clear a setuid bit or a file
    /// capability set before it), checking each one's size.
    fn apply_later(&mut self) -> Result<(), String> {
        let root = self.root.as_ref().ok_or("content before the root")?;
        for (rel, meta, size) in std::mem::take(&mut self.later) {
            let path = format!("/{}", String::from_utf8_lossy(rel.as_bytes()));
            let f = open_beneath(root, rel.as_bytes(), nix::fcntl::OFlag::O_RDONLY)
                .map_err(|e| format!("cannot open {path} again: {e}"))?;
            let len = f.metadata().map_err(|e| format!("{path}: {e}"))?.len();
            if len != size {
                return Err(format!("{path}: {len} bytes written of {size}"));
            }
            self.apply_fd(f.as_raw_fd(), &meta, &path)?;
        }
        Ok(())
    }

    /// The directory entries are created in, and a checked name.
    fn at(&self, name: &[u8]) -> Result<(RawFd, CString), String> {
        let (fd, _, _) = self.stack.last().ok_or("an entry outside the root")?;
        if !name_ok(name) {
            return Err(format!(
                "refused entry name {:?}",
                String::from_utf8_lossy(name)
            ));
        }
        Ok((fd.as_raw_fd(), cstr(name)?))
    }

    fn mkdir(&mut self, name: &[u8]) -> Result<OwnedFd, String> {
        let open_dir = |dirfd: RawFd, c: &CString| -> io::Result<OwnedFd> {
            // SAFETY: a NUL-terminated name and a directory fd we own.
            let fd = unsafe {
                libc::openat(
                    dirfd,
                    c.as_ptr(),
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(last_err());
            }
            // SAFETY: a new descriptor this process owns.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        };
        if self.stack.is_empty() {
            if self.root.is_some() {
                return Err("a second root in the tree's stream".into());
            }
            let c = cstr(ROOT.as_bytes())?;
            // SAFETY: a NUL-terminated path.
            if unsafe { libc::mkdir(c.as_ptr(), 0o700) } != 0 {
                return Err(format!("cannot create {ROOT}: {}", last_err()));
            }
            let fd =
                open_dir(libc::AT_FDCWD, &c).map_err(|e| format!("cannot open {ROOT}: {e}"))?;
            self.root = Some(
                fd.try_clone()
                    .map_err(|e| format!("cannot keep {ROOT} open: {e}"))?,
            );
            return Ok(fd);
        }
        let path = self.path(name);
        let (dirfd, c) = self.at(name)?;
        // SAFETY: a NUL-terminated name in a directory fd we own.
        if unsafe { libc::mkdirat(dirfd, c.as_ptr(), 0o700) } != 0 {
            return Err(format!("cannot create {path}: {}", last_err()));
        }
        open_dir(dirfd, &c).map_err(|e| format!("cannot open {path}: {e}"))
    }

    fn file(
        &mut self,
        name: &[u8],
        meta: &Meta,
        size: u64,
        r: &mut impl Read,
    ) -> Result<(), String> {
        let (mut f, path) = self.create(name)?;
        let copied =
            io::copy(&mut r.take(size), &mut f).map_err(|e| format!("cannot write {path}: {e}"))?;
        if copied != size {
            return Err(format!("the tree's stream broke off in {path}"));
        }
        self.apply_fd(f.as_raw_fd(), meta, &path)
    }

    fn symlink(&mut self, name: &[u8], meta: &Meta, link: &[u8]) -> Result<(), String> {
        let path = self.path(name);
        let (dirfd, c) = self.at(name)?;
        let l = cstr(link)?;
        // SAFETY: NUL-terminated strings and a directory fd we own.
        if unsafe { libc::symlinkat(l.as_ptr(), dirfd, c.as_ptr()) } != 0 {
            return Err(format!("cannot create {path}: {}", last_err()));
        }
        self.apply_at(dirfd, &c, meta, &path, false)
    }

    fn node(&mut self, name: &[u8], meta: &Meta) -> Result<(), String> {
        let path = self.path(name);
        let (dirfd, c) = self.at(name)?;
        let kind = match meta.file_type {
            3 => libc::S_IFCHR,
            4 => libc::S_IFBLK,
            5 => libc::S_IFIFO,
            _ => return Err(format!("{path}: not a device node or FIFO")),
        };
        // SAFETY: a NUL-terminated name in a directory fd we own.
        if unsafe { libc::mknodat(dirfd, c.as_ptr(), kind | 0o600, meta.rdev as libc::dev_t) } != 0
        {
            let e = last_err();
            if self.user && e.raw_os_error() == Some(libc::EPERM) && kind != libc::S_IFIFO {
                // No device nodes in a user namespace; the sandbox brings
                // its own /dev.
                self.left_out += 1;
                return Ok(());
            }
            return Err(format!("cannot create {path}: {e}"));
        }
        self.apply_at(dirfd, &c, meta, &path, true)
    }

    fn hard_link(&mut self, name: &[u8], to: &[Vec<u8>]) -> Result<(), String> {
        let path = self.path(name);
        let (dirfd, c) = self.at(name)?;
        let (last, dirs) = to.split_last().ok_or("an empty hard-link target")?;
        let root = self.root.as_ref().ok_or("a hard link before the root")?;
        let mut held: Option<OwnedFd> = None;
        for d in dirs {
            if !name_ok(d) {
                return Err(format!("{path}: refused hard-link target"));
            }
            let at = held.as_ref().map_or(root.as_raw_fd(), AsRawFd::as_raw_fd);
            let cd = cstr(d)?;
            // SAFETY: a NUL-terminated name in a directory fd we own; never
            // following a symlink.
            let fd = unsafe {
                libc::openat(
                    at,
                    cd.as_ptr(),
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(format!(
                    "{path}: cannot reach its hard-link target: {}",
                    last_err()
                ));
            }
            // SAFETY: a new descriptor this process owns.
            held = Some(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        if !name_ok(last) {
            return Err(format!("{path}: refused hard-link target"));
        }
        let at = held.as_ref().map_or(root.as_raw_fd(), AsRawFd::as_raw_fd);
        let cl = cstr(last)?;
        // SAFETY: NUL-terminated names in directory fds we own; flags 0:
        // a symlink is linked itself, never followed.
        if unsafe { libc::linkat(at, cl.as_ptr(), dirfd, c.as_ptr(), 0) } != 0 {
            return Err(format!("cannot link {path}: {}", last_err()));
        }
        Ok(())
    }

    fn owner_error(&self, path: &str, meta: &Meta, e: io::Error) -> String {
        if self.user && e.raw_os_error() == Some(libc::EINVAL) {
            format!(
                "cannot give {path} its owner {}:{}: beyond the subordinate ids mapped for this user",
                meta.uid, meta.gid
            )
        } else {
            format!(
                "cannot give {path} its owner {}:{}: {e}",
                meta.uid, meta.gid
            )
        }
    }

    /// Owner, xattrs, mode (after chown, which clears setuid bits) and
    /// mtime of a file or directory we hold open.
    fn apply_fd(&self, fd: RawFd, meta: &Meta, path: &str) -> Result<(), String> {
        // SAFETY: plain system calls on a descriptor we own.
        if unsafe { libc::fchown(fd, meta.uid, meta.gid) } != 0 {
            return Err(self.owner_error(path, meta, last_err()));
        }
        for (k, v) in &meta.xattrs {
            let Ok(k) = CString::new(k.clone()) else {
                continue;
            };
            // SAFETY: a NUL-terminated name and one slice.
            let r = unsafe { libc::fsetxattr(fd, k.as_ptr(), v.as_ptr().cast(), v.len(), 0) };
            xattr_result(r, path)?;
        }
        // SAFETY: as above.
        if unsafe { libc::fchmod(fd, meta.mode & 0o7777) } != 0 {
            return Err(format!("cannot chmod {path}: {}", last_err()));
        }
        let t = [timespec(meta.mtime), timespec(meta.mtime)];
        // SAFETY: two timespecs.
        if unsafe { libc::futimens(fd, t.as_ptr()) } != 0 {
            return Err(format!("cannot set the mtime of {path}: {}", last_err()));
        }
        Ok(())
    }

    /// The same by name, never following it (symlinks: no mode).
    fn apply_at(
        &self,
        dirfd: RawFd,
        c: &CString,
        meta: &Meta,
        path: &str,
        chmod: bool,
    ) -> Result<(), String> {
        // SAFETY: a NUL-terminated name in a directory fd we own.
        if unsafe {
            libc::fchownat(
                dirfd,
                c.as_ptr(),
                meta.uid,
                meta.gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        } != 0
        {
            return Err(self.owner_error(path, meta, last_err()));
        }
        if !meta.xattrs.is_empty() {
            let p = cstr(
                [format!("/proc/self/fd/{dirfd}/").as_bytes(), c.as_bytes()]
                    .concat()
                    .as_slice(),
            )?;
            for (k, v) in &meta.xattrs {
                let Ok(k) = CString::new(k.clone()) else {
                    continue;
                };
                // SAFETY: NUL-terminated strings and one slice.
                let r = unsafe {
                    libc::lsetxattr(p.as_ptr(), k.as_ptr(), v.as_ptr().cast(), v.len(), 0)
                };
                xattr_result(r, path)?;
            }
        }
        // A node we just made by this name (fchmodat cannot refuse to
        // follow a link before Linux 6.6; this one is not a link).
        // SAFETY: as above.
        if chmod && unsafe { libc::fchmodat(dirfd, c.as_ptr(), meta.mode & 0o7777, 0) } != 0 {
            return Err(format!("cannot chmod {path}: {}", last_err()));
        }
        let t = [timespec(meta.mtime), timespec(meta.mtime)];
        // SAFETY: two timespecs and a NUL-terminated name.
        if unsafe { libc::utimensat(dirfd, c.as_ptr(), t.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) } != 0
        {
            return Err(format!("cannot set the mtime of {path}: {}", last_err()));
        }
        Ok(())
    }
}

/// A filesystem without xattrs (or without this namespace, or `trusted.*`
/// in a user namespace) loses them, as `tar --xattrs` would.
fn xattr_result(r: libc::c_int, path: &str) -> Result<(), String> {
    if r == 0 {
        return Ok(());
    }
    let e = last_err();
    if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP) | Some(libc::EPERM)) {
        return Ok(());
    }
    Err(format!("cannot set an xattr of {path}: {e}"))
}

fn timespec(secs: i64) -> libc::timespec {
    libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    }
}

fn get_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn get_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn get(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let n = get_u32(r)? as usize;
    if n > 1 << 20 {
        return Err(io::Error::other("a name or value over 1 MiB"));
    }
    let mut b = vec![0; n];
    r.read_exact(&mut b)?;
    Ok(b)
}

fn get_meta(r: &mut impl Read) -> io::Result<Meta> {
    let mut t = [0u8; 1];
    r.read_exact(&mut t)?;
    let mode = get_u32(r)?;
    let uid = get_u32(r)?;
    let gid = get_u32(r)?;
    let mtime = get_u64(r)? as i64;
    let rdev = get_u64(r)?;
    let n = get_u32(r)?;
    let mut xattrs = Vec::new();
    for _ in 0..n.min(4096) {
        xattrs.push((get(r)?, get(r)?));
    }
    Ok(Meta {
        file_type: t[0],
        mode,
        uid,
        gid,
        mtime,
        rdev,
        xattrs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_are_found_by_name_or_uid() {
        let text = "alice:100000:65536\n1001:200000:65536\nbob:300000:0\n";
        assert_eq!(subid_range(text, "alice", 1000), Some((100000, 65536)));
        assert_eq!(subid_range(text, "carol", 1001), Some((200000, 65536)));
        // An empty range is no range.
        assert_eq!(subid_range(text, "bob", 1002), None);
        assert_eq!(subid_range(text, "dave", 1003), None);
    }

    #[test]
    fn names_that_could_leave_a_directory_are_refused() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b"] {
            assert!(!name_ok(bad), "{bad:?}");
        }
        assert!(name_ok(b"passwd"));
    }
}
