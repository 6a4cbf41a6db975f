//! /etc/ld.so.conf of the target, as ldconfig reads it: one directory per
//! line, `#` comments, `include` lines with glob patterns (relative ones
//! are relative to the including file's directory, matches taken in sorted
//! order), `hwcap` lines ignored, `dir=type` suffixes dropped.

use std::time::SystemTime;

use globset::GlobBuilder;
use nodecheck_core::target::{FileType, READ_LIMIT, Target};

/// Nested includes followed at most (ldconfig has no limit; a cycle of
/// includes would loop it forever).
const MAX_DEPTH: usize = 16;
/// Files read at most.
const MAX_FILES: usize = 1024;

/// What the configuration says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LdConf {
    /// Directories in order, without duplicates or trailing slashes.
    pub dirs: Vec<String>,
    /// Per directory (same order): the file that names it.
    pub named_by: Vec<String>,
    /// Every configuration file read, with its mtime.
    pub files: Vec<(String, Option<SystemTime>)>,
    /// Problems met (unreadable include, include cycle): the directories
    /// found elsewhere still count.
    pub errors: Vec<String>,
}

impl LdConf {
    /// Reads `/etc/ld.so.conf` of the target. A missing file is an empty
    /// configuration (ld.so then uses its default directories only).
    pub fn read(t: &dyn Target) -> LdConf {
        let mut conf = LdConf::default();
        conf.file(t, "/etc/ld.so.conf", 0, true);
        conf
    }

    fn file(&mut self, t: &dyn Target, path: &str, depth: usize, top: bool) {
        if self.files.len() >= MAX_FILES {
            self.errors
                .push(format!("{path}: more than {MAX_FILES} configuration files"));
            return;
        }
        if self.files.iter().any(|(f, _)| f == path) {
            self.errors
                .push(format!("{path}: included twice (include cycle?)"));
            return;
        }
        let text = match t.read(path, READ_LIMIT) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if top && e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                self.errors.push(format!("{path}: {e}"));
                return;
            }
        };
        let mtime = t.metadata(path, true).ok().and_then(|m| m.mtime);
        self.files.push((path.to_string(), mtime));
        let dir = match path.rfind('/') {
            Some(0) | None => "/",
            Some(i) => &path[..i],
        };
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            match words.next() {
                Some("include") => {
                    if depth >= MAX_DEPTH {
                        self.errors.push(format!(
                            "{path}: includes nested more than {MAX_DEPTH} deep"
                        ));
                        continue;
                    }
                    for pattern in words {
                        let pattern = nodecheck_core::target::join(dir, pattern);
                        for f in glob(t, &pattern) {
                            self.file(t, &f, depth + 1, false);
                        }
                    }
                }
                Some("hwcap") => {}
                _ => self.dir(line, path),
            }
        }
    }

    fn dir(&mut self, line: &str, file: &str) {
        // `/usr/lib=libc5` (an old type suffix) means /usr/lib.
        let d = line.split('=').next().unwrap_or(line).trim();
        let d = d.trim_end_matches('/');
        let d = if d.is_empty() { "/" } else { d };
        if d.starts_with('/') && !self.dirs.iter().any(|x| x == d) {
            self.dirs.push(d.to_string());
            self.named_by.push(file.to_string());
        }
    }
}

/// The files matching `pattern` (globs in the last component only, which
/// is what ld.so.conf files use), sorted like glob(3).
fn glob(t: &dyn Target, pattern: &str) -> Vec<String> {
    let (dir, name) = match pattern.rfind('/') {
        Some(i) => (&pattern[..i.max(1)], &pattern[i + 1..]),
        None => ("/", pattern),
    };
    if !name.contains(['*', '?', '[']) {
        return vec![pattern.to_string()];
    }
    let Ok(matcher) = GlobBuilder::new(name)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
    else {
        return Vec::new();
    };
    let Ok(entries) = t.read_dir(dir) else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter(|e| e.file_type != FileType::Directory && !e.name.starts_with('.'))
        .filter(|e| matcher.is_match(&e.name))
        .map(|e| nodecheck_core::target::join(dir, &e.name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodecheck_core::target::MemoryTarget;

    #[test]
    fn includes_globs_and_comments() {
        let t = MemoryTarget::new()
            .file(
                "/etc/ld.so.conf",
                0o644,
                0,
                0,
                "# top\ninclude /etc/ld.so.conf.d/*.conf\n/opt/top/lib/  # trailing\nhwcap 1 nosegneg\n",
            )
            .file("/etc/ld.so.conf.d/b.conf", 0o644, 0, 0, "/usr/lib/b\n/usr/lib/a\n")
            .file("/etc/ld.so.conf.d/a.conf", 0o644, 0, 0, "/usr/lib/a\ninclude sub/*.conf\n")
            .file("/etc/ld.so.conf.d/sub/x.conf", 0o644, 0, 0, "/usr/lib/x=libc6\n")
            .file("/etc/ld.so.conf.d/skip.txt", 0o644, 0, 0, "/nope\n")
            .file("/etc/ld.so.conf.d/.hidden.conf", 0o644, 0, 0, "/nope\n");
        let c = LdConf::read(&t);
        assert_eq!(
            c.dirs,
            ["/usr/lib/a", "/usr/lib/x", "/usr/lib/b", "/opt/top/lib"]
        );
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.files.len(), 4);
        assert_eq!(c.named_by[1], "/etc/ld.so.conf.d/sub/x.conf");
        assert_eq!(c.named_by[3], "/etc/ld.so.conf");
    }

    #[test]
    fn cycles_and_missing_files() {
        let t = MemoryTarget::new()
            .file(
                "/etc/ld.so.conf",
                0o644,
                0,
                0,
                "include /etc/loop.conf\n/a\n",
            )
            .file(
                "/etc/loop.conf",
                0o644,
                0,
                0,
                "include /etc/ld.so.conf\ninclude /etc/none.conf\n/b\n",
            );
        let c = LdConf::read(&t);
        assert_eq!(c.dirs, ["/b", "/a"]);
        assert_eq!(c.errors.len(), 2, "{:?}", c.errors);
        assert!(LdConf::read(&MemoryTarget::new()).dirs.is_empty());
    }
}
