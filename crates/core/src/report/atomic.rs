//! Where a report goes, and replacing a report file so that readers see
//! the old file or the new one, never half of either: CI picks up
//! `junit.xml` even when a run is killed.
//!
//! A report path names one of:
//!
//! - `-`, `/dev/stdout`, `/dev/fd/1`, `/proc/self/fd/1`: standard output
//!   (likewise `/dev/stderr` and the other descriptors): written to the
//!   descriptor nodecheck holds, never opened by name, so the `/dev/stdout`
//!   symlink is never replaced;
//! - a device, FIFO or socket: written in place (opened without creating or
//!   truncating anything);
//! - a symbolic link: followed, and its final target replaced atomically,
//!   so the link stays a link;
//! - anything else: a regular file, replaced atomically (a temporary file
//!   with an unpredictable name, created with `O_EXCL` in the same
//!   directory, synced, then renamed over it).
//!
//! Temporary files of runs that died before their rename (`kill -9`) are
//! removed by the next run writing the same report: only files named like
//! ours, owned by us, whose writer is dead (or that are a day old).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Where a report path leads, once its symbolic links are followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A descriptor of this process (`-` is 1, `/dev/stderr` 2, …).
    Fd(i32),
    /// A device, FIFO or socket, written in place.
    InPlace(PathBuf),
    /// A regular file (existing or not) replaced atomically; the path is
    /// the final target of any symbolic links.
    Replace(PathBuf),
}

/// Symbolic links followed before a path is refused as a loop.
const MAX_LINKS: usize = 40;

impl Destination {
    /// Follows `path`'s symbolic links and says where the report goes.
    /// Fails (naming the path) for a directory, a link loop, or a path
    /// with no file name.
    ///
    /// ```
    /// use std::path::Path;
    /// use nodecheck_core::report::Destination;
    ///
    /// assert_eq!(Destination::of(Path::new("-"))?, Destination::Fd(1));
    /// assert_eq!(Destination::of(Path::new("/dev/stdout"))?, Destination::Fd(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn of(path: &Path) -> io::Result<Destination> {
        let named = |e: io::Error| annotate(path, e);
        let mut p = path.to_path_buf();
        for _ in 0..MAX_LINKS {
            if let Some(fd) = descriptor(&p) {
                return Ok(Destination::Fd(fd));
            }
            let meta = match fs::symlink_metadata(&p) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return replace(p).map_err(named);
                }
                Err(e) => return Err(named(e)),
            };
            let ft = meta.file_type();
            if ft.is_symlink() {
                let to = fs::read_link(&p).map_err(named)?;
                p = if to.is_absolute() {
                    to
                } else {
                    parent(&p).join(to)
                };
            } else if ft.is_file() {
                return replace(p).map_err(named);
            } else if ft.is_dir() {
                return Err(named(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    "it is a directory",
                )));
            } else {
                return Ok(Destination::InPlace(p));
            }
        }
        Err(named(io::Error::from_raw_os_error(libc::ELOOP)))
    }

    /// Whether this is standard output.
    pub fn is_stdout(&self) -> bool {
        *self == Destination::Fd(1)
    }

    /// Fails early, before a run, when the report could not be written:
    /// a missing or read-only directory for a file, a missing descriptor.
    pub fn check(&self, path: &Path) -> io::Result<()> {
        let named = |e: io::Error| annotate(path, e);
        match self {
            Destination::Fd(fd) => {
                // SAFETY: fcntl(F_GETFD) on any integer only queries.
                if unsafe { libc::fcntl(*fd, libc::F_GETFD) } < 0 {
                    return Err(named(io::Error::last_os_error()));
                }
                Ok(())
            }
            Destination::InPlace(_) => Ok(()),
            Destination::Replace(p) => {
                let dir = parent(p);
                let meta = fs::metadata(dir).map_err(|e| {
                    named(io::Error::new(e.kind(), format!("{}: {e}", dir.display())))
                })?;
                if !meta.is_dir() {
                    return Err(named(io::Error::new(
                        io::ErrorKind::NotADirectory,
                        format!("{} is not a directory", dir.display()),
                    )));
                }
                nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).map_err(|e| {
                    named(io::Error::new(
                        io::Error::from(e).kind(),
                        format!("{}: {}", dir.display(), e.desc()),
                    ))
                })
            }
        }
    }
}

/// `/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/N` and `/proc/<our pid>/fd/N`
/// name a descriptor of ours: opening them by name would reopen (and, for
/// a file, truncate) what the descriptor points at, and replacing them
/// would replace the link.
fn descriptor(p: &Path) -> Option<i32> {
    if p.as_os_str() == "-" {
        return Some(1);
    }
    let parts: Vec<&[u8]> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.as_bytes()),
            _ => None,
        })
        .collect();
    if !p.is_absolute() {
        return None;
    }
    let num = |s: &[u8]| std::str::from_utf8(s).ok()?.parse::<i32>().ok();
    match parts.as_slice() {
        [b"dev", b"stdin"] => Some(0),
        [b"dev", b"stdout"] => Some(1),
        [b"dev", b"stderr"] => Some(2),
        [b"dev", b"fd", n] => num(n),
        [b"proc", b"self", b"fd", n] => num(n),
        [b"proc", pid, b"fd", n] if num(pid) == i32::try_from(std::process::id()).ok() => num(n),
        _ => None,
    }
}

fn replace(p: PathBuf) -> io::Result<Destination> {
    if p.file_name().is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it does not name a file",
        ));
    }
    Ok(Destination::Replace(p))
}

fn parent(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// The error with the report's path in front: `cannot write report
/// out/junit.xml: Permission denied`.
fn annotate(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("cannot write report {}: {e}", path.display()),
    )
}

/// Writes the report at `path` where [`Destination::of`] says it goes;
/// errors name the path.
///
/// ```
/// use std::io::Write;
/// use nodecheck_core::report::write_report;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("report.txt");
/// write_report(&path, |w| w.write_all(b"all checks passed\n"))?;
/// assert_eq!(std::fs::read_to_string(&path)?, "all checks passed\n");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_report(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let named = |e: io::Error| annotate(path, e);
    match Destination::of(path)? {
        Destination::Fd(fd) => {
            // SAFETY: the descriptor was checked to be open before the run
            // and nodecheck never closes 0-2 or a descriptor it was given.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            let file = File::from(fd.try_clone_to_owned().map_err(named)?);
            let mut out = BufWriter::new(file);
            write(&mut out).and_then(|()| out.flush()).map_err(named)
        }
        Destination::InPlace(p) => {
            let file = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOCTTY | libc::O_NOFOLLOW)
                .open(&p)
                .map_err(named)?;
            let mut out = BufWriter::new(file);
            write(&mut out).and_then(|()| out.flush()).map_err(named)
        }
        Destination::Replace(p) => write_atomically(&p, write).map_err(named),
    }
}

/// Writes the regular file `path` atomically: `write` fills a new temporary
/// file in the same directory, which is flushed to disk and then renamed
/// over `path`. Prefer [`write_report`], which also knows `-`, devices and
/// symbolic links; this one replaces whatever is at `path`.
///
/// If `write` (or anything after it) fails, the temporary file is removed
/// and an existing file at `path` is left untouched. The directory is synced
/// after the rename so the new name survives a crash. An existing file's
/// mode (and, for root, owner) carries over to the new one.
///
/// ```
/// use std::io::Write;
/// use nodecheck_core::report::write_atomically;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("report.txt");
/// write_atomically(&path, |w| w.write_all(b"all checks passed\n"))?;
/// assert_eq!(std::fs::read_to_string(&path)?, "all checks passed\n");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let dir = parent(path);
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    clean_stale(dir, name.as_bytes());

    // Unpredictable name, O_EXCL, mode 0666 less the umask; removed when
    // dropped, that is on every early return and on a panic in `write`.
    let tmp = tempfile::Builder::new()
        .prefix(&temp_prefix(name.as_bytes()))
        .suffix(TEMP_SUFFIX)
        .rand_bytes(8)
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    if let Ok(old) = fs::metadata(path) {
        let f = tmp.as_file();
        let _ = f.set_permissions(fs::Permissions::from_mode(old.mode() & 0o7777));
        if nix::unistd::geteuid().is_root() {
            let _ = nix::unistd::fchown(f.as_fd(), Some(old.uid().into()), Some(old.gid().into()));
        }
    }

    let mut out = BufWriter::new(tmp);
    write(&mut out)?;
    let tmp = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

const TEMP_SUFFIX: &str = ".tmp";

/// `.junit.xml.nodecheck-1234-`: the report's name, then the writer's pid
/// (so a later run can tell whether the writer is gone), then random
/// characters from tempfile.
fn temp_prefix(name: &[u8]) -> OsString {
    let mut s = OsString::from(".");
    s.push(std::ffi::OsStr::from_bytes(name));
    s.push(format!(".nodecheck-{}-", std::process::id()));
    s
}

/// A temporary file this old is stale whoever wrote it (a pid reused since).
const STALE_AGE: Duration = Duration::from_secs(24 * 3600);
/// A dead writer's file is left alone this long: the pid may belong to
/// another pid namespace sharing the directory, whose writer is alive.
const DEAD_GRACE: Duration = Duration::from_secs(60);

/// Removes temporary files that runs killed before their rename left for
/// the report `name` in `dir`. Best effort: a failure here must not stop
/// the report.
fn clean_stale(dir: &Path, name: &[u8]) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut prefix = b".".to_vec();
    prefix.extend_from_slice(name);
    prefix.extend_from_slice(b".nodecheck-");
    let me = nix::unistd::geteuid().as_raw();
    let now = SystemTime::now();
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(pid) = file_name
            .as_bytes()
            .strip_prefix(prefix.as_slice())
            .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX.as_bytes()))
            .and_then(|rest| rest.split(|&b| b == b'-').next())
            .and_then(|pid| std::str::from_utf8(pid).ok()?.parse::<i32>().ok())
            .filter(|&pid| pid > 0)
        else {
            continue;
        };
        // Never someone else's file, never a link or a directory.
        let Ok(meta) = fs::symlink_metadata(e.path()) else {
            continue;
        };
        if !meta.file_type().is_file() || meta.uid() != me {
            continue;
        }
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        let dead = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
            == Err(nix::errno::Errno::ESRCH);
        if (dead && age >= DEAD_GRACE) || age >= STALE_AGE {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Makes the rename durable. Some file systems cannot sync a directory;
/// the report is in place by then, so that alone is not an error.
fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOTSUP)) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_an_existing_file_keeping_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&path, |w| w.write_all(b"new")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        assert_eq!(entries(dir.path()), ["junit.xml"]);
    }

    #[test]
    fn a_new_report_is_readable_by_others() {
        // node_exporter reads the .prom file as its own user.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.prom");
        write_atomically(&path, |w| w.write_all(b"x")).unwrap();
        let mode = fs::metadata(&path).unwrap().mode() & 0o777;
        let umask = {
            // SAFETY: umask only swaps the process's mask; set back at once.
            let m = unsafe { libc::umask(0o022) };
            unsafe { libc::umask(m) };
            m
        };
        assert_eq!(mode, 0o666 & !umask);
    }

    #[test]
    fn a_failing_writer_leaves_the_old_file_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        fs::write(&path, "old report").unwrap();
        let err = write_atomically(&path, |w| {
            w.write_all(b"half a rep")?;
            Err(io::Error::other("disk on fire"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
        assert_eq!(fs::read_to_string(&path).unwrap(), "old report");
        assert_eq!(entries(dir.path()), ["junit.xml"]);
    }

    #[test]
    fn a_panicking_writer_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let r = std::panic::catch_unwind(|| {
            let _ = write_atomically(&path, |_| panic!("bug in a reporter"));
        });
        assert!(r.is_err());
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_path_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope/junit.xml");
        let err = write_report(&path, |w| w.write_all(b"x")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn a_path_without_file_name_is_rejected() {
        let err = write_atomically(Path::new("/"), |_| Ok(())).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = write_report(Path::new("/"), |_| Ok(())).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::IsADirectory);
        assert!(err.to_string().contains("cannot write report /"), "{err}");
    }

    #[test]
    fn descriptors_are_recognised_by_name() {
        for (p, fd) in [
            ("-", 1),
            ("/dev/stdout", 1),
            ("/dev/stderr", 2),
            ("/dev/fd/1", 1),
            ("/proc/self/fd/1", 1),
            ("/proc/self/fd/7", 7),
        ] {
            assert_eq!(Destination::of(Path::new(p)).unwrap(), Destination::Fd(fd));
        }
        let mine = format!("/proc/{}/fd/1", std::process::id());
        assert_eq!(
            Destination::of(Path::new(&mine)).unwrap(),
            Destination::Fd(1)
        );
        assert_eq!(descriptor(Path::new("dev/stdout")), None);
        assert_eq!(descriptor(Path::new("/proc/1/fd/1")), None);
    }

    #[test]
    fn a_symlink_is_followed_and_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("real")).unwrap();
        fs::write(dir.path().join("real/r.json"), "old").unwrap();
        symlink("real/r.json", dir.path().join("link.json")).unwrap();
        symlink("link.json", dir.path().join("link2.json")).unwrap();
        let link = dir.path().join("link2.json");
        assert_eq!(
            Destination::of(&link).unwrap(),
            Destination::Replace(dir.path().join("real/r.json"))
        );
        write_report(&link, |w| w.write_all(b"new")).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("real/r.json")).unwrap(),
            "new"
        );
        assert_eq!(entries(&dir.path().join("real")), ["r.json"]);
        // A dangling link: the file is created where it points.
        symlink("real/new.json", dir.path().join("dangling")).unwrap();
        write_report(&dir.path().join("dangling"), |w| w.write_all(b"x")).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("real/new.json")).unwrap(),
            "x"
        );
        // A loop is an error naming the path.
        symlink("loop", dir.path().join("loop")).unwrap();
        let err = write_report(&dir.path().join("loop"), |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("loop"), "{err}");
    }

    #[test]
    fn a_fifo_is_written_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read_to_string(fifo).unwrap())
        };
        write_report(&fifo, |w| w.write_all(b"through the pipe")).unwrap();
        assert_eq!(reader.join().unwrap(), "through the pipe");
        let ft = fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&ft));
    }

    #[test]
    fn temp_names_are_unpredictable() {
        let p = temp_prefix(b"junit.xml");
        assert_eq!(
            p.to_string_lossy(),
            format!(".junit.xml.nodecheck-{}-", std::process::id())
        );
        // Two writes never share a name, and nothing is left behind.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        let mut seen = Vec::new();
        for _ in 0..2 {
            write_atomically(&path, |w| {
                seen.push(entries(dir.path()));
                w.write_all(b"x")
            })
            .unwrap();
        }
        assert_ne!(seen[0], seen[1]);
    }

    #[test]
    fn stale_temp_files_of_dead_writers_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let old = SystemTime::now() - Duration::from_secs(3600);
        let make = |name: &str, age: Option<SystemTime>| {
            let p = d.join(name);
            fs::write(&p, "x").unwrap();
            if let Some(t) = age {
                let f = File::options().write(true).open(&p).unwrap();
                f.set_modified(t).unwrap();
            }
            p
        };
        // A pid that cannot be alive (above pid_max).
        let dead = 0x3fff_fff0;
        let me = std::process::id();
        let stale = make(&format!(".r.json.nodecheck-{dead}-AbCd1234.tmp"), Some(old));
        let fresh_dead = make(&format!(".r.json.nodecheck-{dead}-ZZZZ1234.tmp"), None);
        let alive = make(&format!(".r.json.nodecheck-{me}-Live1234.tmp"), Some(old));
        let other_report = make(&format!(".x.json.nodecheck-{dead}-AbCd1234.tmp"), Some(old));
        let not_ours = make(".r.json.something.tmp", Some(old));
        symlink(
            "/etc/passwd",
            d.join(format!(".r.json.nodecheck-{dead}-Link1234.tmp")),
        )
        .unwrap();
        // Someone else's file (only root can make one here).
        let foreign = make(&format!(".r.json.nodecheck-{dead}-Else1234.tmp"), Some(old));
        if nix::unistd::geteuid().is_root() {
            nix::unistd::chown(&foreign, Some(65534.into()), None).unwrap();
        } else {
            fs::remove_file(&foreign).unwrap();
        }
        write_atomically(&d.join("r.json"), |w| w.write_all(b"new")).unwrap();
        assert!(!stale.exists());
        for kept in [&fresh_dead, &alive, &other_report, &not_ours] {
            assert!(kept.exists(), "{} was removed", kept.display());
        }
        assert_eq!(foreign.exists(), nix::unistd::geteuid().is_root());
        assert!(
            fs::symlink_metadata(d.join(format!(".r.json.nodecheck-{dead}-Link1234.tmp"))).is_ok()
        );
    }
}
