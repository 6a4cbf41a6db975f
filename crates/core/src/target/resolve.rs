//! Path resolution inside a root: every path a profile names, and every
//! symlink met on the way, stays below the root directory.
//!
//! Two resolvers give the same answers:
//! - [`Resolver::Kernel`]: `openat2(root, path, RESOLVE_IN_ROOT)`, which makes
//!   the kernel treat the root like a chroot (Linux ≥ 5.6).
//! - [`Resolver::Userspace`]: a component-by-component walk with
//!   `O_PATH|O_NOFOLLOW` opens, for kernels (or seccomp profiles) without
//!   openat2. It also computes canonical paths for both.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2, readlinkat};
use nix::sys::stat::{FileStat, Mode, fstat};

/// How many symlinks one resolution may follow before it fails with
/// `ELOOP`, as the kernel does (`MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// How many times a kernel resolution is retried when openat2 reports a
/// concurrent rename (`EAGAIN`) before the error is returned.
const EAGAIN_RETRIES: usize = 16;

/// Which path resolver a [`RootFs`](super::RootFs) uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resolver {
    /// The kernel's `openat2(RESOLVE_IN_ROOT)` when it works, else the
    /// userspace walk (chosen once, when the target is opened).
    Auto,
    /// `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` only.
    Kernel,
    /// The userspace walk only (what `Auto` falls back to).
    Userspace,
}

/// The `O_PATH` flags of a lookup that only needs an fd to `fstat`.
pub(crate) fn path_flags(follow: bool) -> OFlag {
    let flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    if follow {
        flags
    } else {
        flags | OFlag::O_NOFOLLOW
    }
}

/// Whether openat2 works on this kernel for `root`: `ENOSYS` (kernel before
/// 5.6) or `EPERM`/`EACCES` (a seccomp filter) mean it does not.
pub(crate) fn kernel_available(root: BorrowedFd<'_>) -> Result<(), Errno> {
    match kernel_open(root, b".", path_flags(true)) {
        Ok(_) => Ok(()),
        Err(e) => match Errno::try_from(e) {
            Ok(errno @ (Errno::ENOSYS | Errno::EPERM | Errno::EACCES | Errno::E2BIG)) => Err(errno),
            // Any other error on "." is not about openat2 support; let the
            // operations themselves report it.
            _ => Ok(()),
        },
    }
}

/// Opens `path` (inside `root`) with `flags`, using the chosen resolver.
/// `O_NOFOLLOW` in `flags` means "do not follow a symlink in the last
/// component"; links in earlier components are always followed inside the
/// root.
pub(crate) fn open(
    resolver: Resolver,
    root: BorrowedFd<'_>,
    path: &str,
    flags: OFlag,
) -> io::Result<OwnedFd> {
    open_bytes(resolver, root, path.as_bytes(), flags)
}

/// [`open`] for a path that is bytes (a name the walker found, which need
/// not be UTF-8).
pub(crate) fn open_bytes(
    resolver: Resolver,
    root: BorrowedFd<'_>,
    path: &[u8],
    flags: OFlag,
) -> io::Result<OwnedFd> {
    match resolver {
        Resolver::Userspace => userspace_open(root, path, flags),
        Resolver::Kernel | Resolver::Auto => kernel_open(root, path, flags),
    }
}

fn kernel_open(root: BorrowedFd<'_>, path: &[u8], flags: OFlag) -> io::Result<OwnedFd> {
    let how = || {
        OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
    };
    let mut tries = 0;
    loop {
        match openat2(root, path, how()) {
            // RESOLVE_IN_ROOT refuses to guess when a rename races with a
            // `..` lookup; trying again is what the man page advises.
            Err(Errno::EAGAIN) if tries < EAGAIN_RETRIES => tries += 1,
            other => return other.map_err(io::Error::from),
        }
    }
}

/// The canonical in-target path of `path`: absolute, every symlink followed
/// (inside the root), no `.` or `..`. Fails like `realpath` when a component
/// is missing.
pub(crate) fn canonicalize(root: BorrowedFd<'_>, path: &str) -> io::Result<String> {
    Ok(lossy(OsString::from_vec(canonicalize_bytes(
        root,
        path.as_bytes(),
    )?)))
}

/// [`canonicalize`] as bytes: names that are not UTF-8 kept as they are.
pub(crate) fn canonicalize_bytes(root: BorrowedFd<'_>, path: &[u8]) -> io::Result<Vec<u8>> {
    let walked = walk(root, path, true)?;
    let mut out = Vec::new();
    for (_, name) in &walked.stack {
        out.push(b'/');
        out.extend_from_slice(name.as_bytes());
    }
    if out.is_empty() {
        out.push(b'/');
    }
    Ok(out)
}

fn userspace_open(root: BorrowedFd<'_>, path: &[u8], flags: OFlag) -> io::Result<OwnedFd> {
    let follow = !flags.contains(OFlag::O_NOFOLLOW);
    let walked = walk(root, path, follow)?;
    let mut flags = flags | OFlag::O_CLOEXEC;
    if walked.trailing_slash {
        flags |= OFlag::O_DIRECTORY;
    }
    // Reopen the last component from its parent with O_NOFOLLOW: if it was
    // swapped for a symlink since the walk, this fails (ELOOP) instead of
    // following the new link outside the root.
    let n = walked.stack.len();
    match walked.stack.last() {
        None => Ok(openat(root, ".", flags, Mode::empty())?),
        Some((_, name)) => {
            let parent = match n {
                1 => root,
                _ => walked.stack[n - 2].0.as_fd(),
            };
            Ok(openat(
                parent,
                name.as_os_str(),
                flags | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )?)
        }
    }
}

/// The directories (and the last component) a userspace walk went through,
/// each with an `O_PATH` fd, root excluded.
struct Walked {
    stack: Vec<(OwnedFd, OsString)>,
    /// The path ended in `/`: the last component must be a directory.
    trailing_slash: bool,
}

/// Walks `path` from `root` one component at a time.
///
/// Each component is opened with `O_PATH|O_NOFOLLOW`, so the kernel never
/// follows a link on its own; a symlink's target is spliced into the
/// remaining components (an absolute one restarts at the root). `..` pops
/// the stack of opened directories and stops at the root, so no
/// `openat(fd, "..")` ever runs: renaming a directory out of the root while
/// we walk cannot lead us above it.
fn walk(root: BorrowedFd<'_>, path: &[u8], follow_last: bool) -> io::Result<Walked> {
    // Like openat2 and realpath: an empty path names nothing.
    if path.is_empty() {
        return Err(Errno::ENOENT.into());
    }
    let trailing_slash = path.ends_with(b"/") && path.iter().any(|&b| b != b'/');
    let follow_last = follow_last || trailing_slash;
    let mut todo = VecDeque::new();
    splice(&mut todo, path);
    let mut stack: Vec<(OwnedFd, OsString)> = Vec::new();
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            stack.pop();
            continue;
        }
        let dir = stack.last().map_or(root, |(fd, _)| fd.as_fd());
        let fd = openat(dir, name.as_os_str(), path_flags(false), Mode::empty())?;
        let st = fstat(&fd)?;
        let last = todo.is_empty();
        if is_type(&st, libc::S_IFLNK) && (!last || follow_last) {
            links += 1;
            if links > MAX_LINKS {
                return Err(Errno::ELOOP.into());
            }
            let target = readlinkat(&fd, "")?;
            if target.is_empty() {
                return Err(Errno::ENOENT.into());
            }
            if target.as_bytes().starts_with(b"/") {
                stack.clear();
            }
            let rest = std::mem::take(&mut todo);
            splice(&mut todo, target.as_bytes());
            todo.extend(rest);
            continue;
        }
        if (!last || trailing_slash) && !is_type(&st, libc::S_IFDIR) {
            return Err(Errno::ENOTDIR.into());
        }
        stack.push((fd, name));
    }
    Ok(Walked {
        stack,
        trailing_slash,
    })
}

/// Appends the components of `path` to `todo`, dropping empty ones and `.`.
fn splice(todo: &mut VecDeque<OsString>, path: &[u8]) {
    todo.extend(
        path.split(|&b| b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .map(|c| OsStr::from_bytes(c).to_os_string()),
    );
}

fn is_type(st: &FileStat, kind: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == kind
}

/// Turns an in-target name from the kernel into a `String` for reports.
pub(crate) fn lossy(name: OsString) -> String {
    match name.into_string() {
        Ok(s) => s,
        Err(raw) => String::from_utf8_lossy(&raw.into_vec()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn root() -> (tempfile::TempDir, OwnedFd) {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = dir.path();
        fs::create_dir_all(r.join("usr/lib")).expect("mkdir");
        fs::write(r.join("usr/lib/x"), "x").expect("write");
        symlink("usr/lib", r.join("lib")).expect("symlink");
        symlink("/usr/lib/x", r.join("abs")).expect("symlink");
        fs::write(r.join("file"), "f").expect("write");
        let fd = nix::fcntl::open(r, path_flags(true) | OFlag::O_DIRECTORY, Mode::empty())
            .expect("open root");
        (dir, fd)
    }

    #[test]
    fn canonicalize_splices_links_and_clamps_dotdot() {
        let (_dir, fd) = root();
        let c = |p: &str| canonicalize(fd.as_fd(), p);
        assert_eq!(c("/").expect("root"), "/");
        assert_eq!(c("/../..").expect("above root"), "/");
        assert_eq!(c("/lib/x").expect("dir link"), "/usr/lib/x");
        assert_eq!(c("/lib/../lib/./x").expect("dots"), "/usr/lib/x");
        assert_eq!(c("/abs").expect("abs link"), "/usr/lib/x");
        assert_eq!(c("lib/../../../file").expect("relative"), "/file");
        for missing in ["/nope", "/lib/nope", ""] {
            let e = c(missing).expect_err(missing);
            assert_eq!(e.kind(), io::ErrorKind::NotFound, "{missing:?}");
        }
    }

    #[test]
    fn file_in_the_middle_is_not_a_directory() {
        let (_dir, fd) = root();
        for p in ["/file/x", "/file/..", "/file/"] {
            let e = canonicalize(fd.as_fd(), p).expect_err(p);
            assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR), "{p}");
        }
        // Both resolvers agree on that.
        let e = kernel_open(fd.as_fd(), b"/file/", path_flags(true)).expect_err("kernel");
        assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
    }

    #[test]
    fn nofollow_opens_the_link_itself() {
        let (_dir, fd) = root();
        let link = userspace_open(fd.as_fd(), b"/lib", path_flags(false)).expect("lstat");
        let st = fstat(&link).expect("fstat");
        assert!(is_type(&st, libc::S_IFLNK));
        // A trailing slash asks for the directory behind the link.
        let dir = userspace_open(fd.as_fd(), b"/lib/", path_flags(false)).expect("stat");
        assert!(is_type(&fstat(&dir).expect("fstat"), libc::S_IFDIR));
    }
}
