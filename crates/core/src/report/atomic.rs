//! Replacing a report file so that readers see the old file or the new one,
//! never half of either: CI picks up `junit.xml` even when a run is killed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Writes `path` atomically: `write` fills a new temporary file in the same
/// directory, which is flushed to disk and then renamed over `path`.
///
/// If `write` (or anything after it) fails, the temporary file is removed
/// and an existing file at `path` is left untouched. The directory is synced
/// after the rename so the new name survives a crash.
///
/// ```
/// use std::io::Write;
/// use nodecheck_core::report::write_atomically;
///
/// let dir = std::env::temp_dir().join(format!("nodecheck-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("report.txt");
/// write_atomically(&path, |w| w.write_all(b"all checks passed\n"))?;
/// assert_eq!(std::fs::read_to_string(&path)?, "all checks passed\n");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;

    let (file, tmp) = create_temp(dir, &name.to_string_lossy())?;
    // Removes the temporary file on every early return, and on a panic
    // inside `write`, until the rename succeeded.
    let mut guard = TempGuard(Some(tmp));

    let mut out = BufWriter::new(file);
    write(&mut out)?;
    let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()?;
    drop(file);

    let tmp = guard
        .0
        .as_deref()
        .expect("the guard holds the path until the rename");
    fs::rename(tmp, path)?;
    guard.0 = None;

    sync_dir(dir)
}

/// Creates a new file next to the target with `O_EXCL`, so that two runs
/// writing the same report never share a temporary file.
fn create_temp(dir: &Path, name: &str) -> io::Result<(File, PathBuf)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut last_err = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}.{n}.{nanos:09}.tmp", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((f, tmp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.expect("the loop ran at least once"))
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

struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(tmp) = self.0.take() {
            // Best effort: the write already failed and that error matters more.
            let _ = fs::remove_file(tmp);
        }
    }
}

#[cfg(test)]
mod tests {
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
    fn replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        fs::write(&path, "old").unwrap();
        write_atomically(&path, |w| w.write_all(b"new")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(entries(dir.path()), ["junit.xml"]);
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
    fn missing_directory_is_an_error_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope/junit.xml");
        let err = write_atomically(&path, |w| w.write_all(b"x")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn a_path_without_file_name_is_rejected() {
        let err = write_atomically(Path::new("/"), |_| Ok(())).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
