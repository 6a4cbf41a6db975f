//! An in-memory target for unit tests of checks.
//!
//! It behaves like a [`RootFs`](super::RootFs) over a tiny image: symlinks
//! resolve inside its root (an absolute link restarts at `/`, `..` stops at
//! `/`), errors carry the same kinds and texts as the real target's, and
//! [`Target::accounts`] comes from its own `/etc/passwd` and `/etc/group`.
//!
//! ```
//! use nodecheck_core::target::{FileType, MemoryTarget, Target};
//!
//! let t = MemoryTarget::new()
//!     .dir("/usr/bin", 0o755, 0, 0)
//!     .file("/usr/bin/sh", 0o755, 0, 0, "#!")
//!     .symlink("/bin", "usr/bin")
//!     .file("/etc/passwd", 0o644, 0, 0, "root:x:0:0::/root:/bin/sh\n");
//! assert_eq!(t.metadata("/bin/sh", true)?.file_type, FileType::File);
//! assert_eq!(t.canonicalize("/bin/../bin/sh")?, "/usr/bin/sh");
//! assert_eq!(t.accounts().user("root").unwrap().uid, 0);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, OnceLock};

use super::{
    Accounts, DirEntry, ExecOutput, ExecRequest, FileType, FsStats, Memo, Metadata, Need,
    READ_LIMIT, Target, TargetKind, WalkEntry, WalkOptions,
};

/// How many symlinks one resolution may follow, as the kernel's
/// `MAXSYMLINKS`.
const MAX_LINKS: usize = 40;

#[derive(Clone, Debug)]
enum Body {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    /// A socket, fifo or device: no content.
    Special,
}

#[derive(Clone, Debug)]
struct Node {
    body: Body,
    file_type: FileType,
    mode: u32,
    uid: u32,
    gid: u32,
    dev: u64,
    ino: u64,
    /// Opening (reading, listing) fails with `EACCES`, as for a file the
    /// unprivileged nodecheck may not read. `stat` still works.
    denied: bool,
}

/// An in-memory root filesystem, built with a chain of calls.
///
/// Parents of every added path are created as `0755 root:root`
/// directories. Adding a path twice replaces the first entry.
#[derive(Debug)]
pub struct MemoryTarget {
    nodes: BTreeMap<String, Node>,
    kind: TargetKind,
    needs: BTreeSet<NeedKey>,
    next_ino: u64,
    accounts: OnceLock<Accounts>,
    memo: Memo,
    /// Mounted filesystems for [`Target::fs_stats`], by mount point.
    filesystems: BTreeMap<String, FsStats>,
    exec: Option<Runner>,
}

/// What [`MemoryTarget::exec_with`] runs instead of a program.
type ExecFn = dyn Fn(&ExecRequest) -> io::Result<ExecOutput> + Send + Sync;

struct Runner(Arc<ExecFn>);

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Runner(..)")
    }
}

/// `Need` is not `Ord`; keep the set ordered by a stable key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum NeedKey {
    Live,
    Exec,
    Root,
}

impl From<Need> for NeedKey {
    fn from(n: Need) -> NeedKey {
        match n {
            Need::Live => NeedKey::Live,
            Need::Exec => NeedKey::Exec,
            Need::Root => NeedKey::Root,
        }
    }
}

impl Default for MemoryTarget {
    fn default() -> Self {
        MemoryTarget::new()
    }
}

impl MemoryTarget {
    /// An empty root (`/` only), of kind `rootfs`, with no capabilities.
    pub fn new() -> MemoryTarget {
        let mut t = MemoryTarget {
            nodes: BTreeMap::new(),
            kind: TargetKind::Rootfs,
            needs: BTreeSet::new(),
            next_ino: 1,
            accounts: OnceLock::new(),
            filesystems: BTreeMap::new(),
            exec: None,
            memo: Memo::default(),
        };
        t.put("/", Body::Dir, FileType::Directory, 0o755, 0, 0);
        t
    }

    /// Sets the target kind (`targets = [...]` matches it).
    pub fn kind(mut self, kind: TargetKind) -> MemoryTarget {
        self.kind = kind;
        self
    }

    /// Grants a capability ([`Target::has`] answers true for it).
    pub fn with(mut self, need: Need) -> MemoryTarget {
        self.needs.insert(need.into());
        self
    }

    /// Answers [`Target::exec`] with `f` (and grants [`Need::Exec`]): unit
    /// tests of checks script what a program would print.
    ///
    /// ```
    /// use nodecheck_core::target::{Captured, ExecOutput, ExecRequest, Exit, MemoryTarget, Target};
    /// let t = MemoryTarget::new().exec_with(|req| Ok(ExecOutput {
    ///     exit: Exit::Code(0),
    ///     stdout: Captured { head: req.argv.join(" ").into_bytes(), ..Default::default() },
    ///     stderr: Captured::default(),
    ///     timed_out: false,
    ///     duration: Default::default(),
    ///     isolation: "memory".into(),
    /// }));
    /// assert_eq!(t.exec(&ExecRequest::new(["echo", "hi"]))?.stdout.text(), "echo hi");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn exec_with(
        mut self,
        f: impl Fn(&ExecRequest) -> io::Result<ExecOutput> + Send + Sync + 'static,
    ) -> MemoryTarget {
        self.exec = Some(Runner(Arc::new(f)));
        self.with(Need::Exec)
    }

    /// Adds a directory.
    pub fn dir(mut self, path: &str, mode: u32, uid: u32, gid: u32) -> MemoryTarget {
        self.put(path, Body::Dir, FileType::Directory, mode, uid, gid);
        self
    }

    /// Adds a regular file.
    pub fn file(
        mut self,
        path: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        content: impl AsRef<[u8]>,
    ) -> MemoryTarget {
        let body = Body::File(content.as_ref().to_vec());
        self.put(path, body, FileType::File, mode, uid, gid);
        self
    }

    /// Adds a symlink (`0777 root:root`) whose stored text is `target`.
    pub fn symlink(mut self, path: &str, target: &str) -> MemoryTarget {
        let body = Body::Symlink(target.to_string());
        self.put(path, body, FileType::Symlink, 0o777, 0, 0);
        self
    }

    /// Adds a socket, fifo or device node.
    pub fn special(
        mut self,
        path: &str,
        file_type: FileType,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> MemoryTarget {
        assert!(
            !matches!(
                file_type,
                FileType::File | FileType::Directory | FileType::Symlink
            ),
            "use file(), dir() or symlink() for a {file_type}"
        );
        self.put(path, Body::Special, file_type, mode, uid, gid);
        self
    }

    /// Makes an existing path inaccessible, as for an unprivileged run:
    /// reading or listing it, or reaching anything below it, fails with
    /// `EACCES`, while `stat` of the path itself still works.
    pub fn deny(mut self, path: &str) -> MemoryTarget {
        let key = normalize(path);
        self.nodes
            .get_mut(&key)
            .unwrap_or_else(|| panic!("deny: {key} was not added"))
            .denied = true;
        self
    }

    /// Mounts a filesystem with these statistics at the existing directory
    /// `path`: [`Target::fs_stats`] of any path below it answers them
    /// (the deepest mount wins). Without one, `fs_stats` is `Unsupported`.
    pub fn filesystem(mut self, path: &str, stats: FsStats) -> MemoryTarget {
        let key = normalize(path);
        assert!(
            self.nodes.contains_key(&key),
            "filesystem: {key} was not added"
        );
        self.filesystems.insert(key, stats);
        self
    }

    /// Puts an existing path on another device, to test
    /// [`WalkOptions::same_file_system`]; its children added later inherit
    /// the device.
    pub fn device(mut self, path: &str, dev: u64) -> MemoryTarget {
        let key = normalize(path);
        self.nodes
            .get_mut(&key)
            .unwrap_or_else(|| panic!("device: {key} was not added"))
            .dev = dev;
        self
    }

    fn put(&mut self, path: &str, body: Body, file_type: FileType, mode: u32, uid: u32, gid: u32) {
        // What checks remembered of the old tree no longer holds.
        self.memo = Memo::default();
        let key = normalize(path);
        let mut dev = 1;
        if key != "/" {
            let parent = parent_of(&key);
            if !self.nodes.contains_key(parent) {
                let parent = parent.to_string();
                self.put(&parent, Body::Dir, FileType::Directory, 0o755, 0, 0);
            }
            let p = &self.nodes[parent];
            assert!(
                matches!(p.body, Body::Dir),
                "cannot add {key}: {parent} is not a directory"
            );
            dev = p.dev;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(
            key,
            Node {
                body,
                file_type,
                mode: mode & 0o7777,
                uid,
                gid,
                dev,
                ino,
                denied: false,
            },
        );
    }

    /// Resolves `path` inside the root: every symlink on the way is followed
    /// (the last one only when `follow_last`), absolute link targets restart
    /// at `/`, `..` stops at `/`. Returns the normalised path of the node.
    fn resolve(&self, path: &str, follow_last: bool) -> io::Result<String> {
        if !path.starts_with('/') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("path {path:?} is not absolute"),
            ));
        }
        // Components still to walk, front first.
        let mut todo: Vec<String> = components(path).rev().map(str::to_string).collect();
        let mut at: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(name) = todo.pop() {
            match name.as_str() {
                "." => continue,
                ".." => {
                    at.pop();
                    continue;
                }
                _ => {}
            }
            let here = to_path(&at);
            let node = &self.nodes[&here];
            if !matches!(node.body, Body::Dir) {
                return Err(errno(libc::ENOTDIR));
            }
            if node.denied {
                return Err(errno(libc::EACCES));
            }
            let next = super::join(&here, &name);
            let Some(node) = self.nodes.get(&next) else {
                return Err(errno(libc::ENOENT));
            };
            let last = todo.is_empty();
            match &node.body {
                Body::Symlink(target) if !last || follow_last => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(errno(libc::ELOOP));
                    }
                    if target.starts_with('/') {
                        at.clear();
                    }
                    todo.extend(components(target).rev().map(str::to_string));
                }
                _ => at.push(name),
            }
        }
        Ok(to_path(&at))
    }

    fn node(&self, path: &str, follow: bool) -> io::Result<(&Node, String)> {
        let at = self.resolve(path, follow)?;
        Ok((&self.nodes[&at], at))
    }

    fn metadata_of(node: &Node) -> Metadata {
        let size = match &node.body {
            Body::Dir => 4096,
            Body::File(c) => c.len() as u64,
            Body::Symlink(t) => t.len() as u64,
            Body::Special => 0,
        };
        Metadata {
            file_type: node.file_type,
            mode: node.mode,
            uid: node.uid,
            gid: node.gid,
            size,
            mtime: None,
            nlink: 1,
            dev: node.dev,
            ino: node.ino,
        }
    }

    /// The direct children of the directory at normalised `dir`, sorted.
    fn children(&self, dir: &str) -> Vec<(&String, &Node)> {
        let prefix = if dir == "/" {
            "/".to_string()
        } else {
            format!("{dir}/")
        };
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| k.as_str() != "/" && parent_of(k) == dir)
            .collect()
    }
}

impl Target for MemoryTarget {
    fn kind(&self) -> TargetKind {
        self.kind
    }

    fn describe(&self) -> String {
        format!("{}:memory", self.kind)
    }

    fn has(&self, need: Need) -> bool {
        self.needs.contains(&need.into())
    }

    fn metadata(&self, path: &str, follow: bool) -> io::Result<Metadata> {
        let (node, _) = self.node(path, follow)?;
        Ok(MemoryTarget::metadata_of(node))
    }

    fn read_link(&self, path: &str) -> io::Result<String> {
        let (node, _) = self.node(path, false)?;
        match &node.body {
            Body::Symlink(t) => Ok(t.clone()),
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "not a symlink")),
        }
    }

    fn canonicalize(&self, path: &str) -> io::Result<String> {
        self.resolve(path, true)
    }

    fn read(&self, path: &str, limit: u64) -> io::Result<Vec<u8>> {
        let (node, _) = self.node(path, true)?;
        if node.denied {
            return Err(errno(libc::EACCES));
        }
        match &node.body {
            Body::Dir => Err(errno(libc::EISDIR)),
            Body::File(c) if c.len() as u64 > limit => Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("file is larger than the read limit of {limit} bytes"),
            )),
            Body::File(c) => Ok(c.clone()),
            // Like the content door of a real target: a device, FIFO or
            // socket is never read.
            Body::Special => Err(super::not_regular(node.file_type)),
            Body::Symlink(_) => unreachable!("resolve follows the last link"),
        }
    }

    fn read_dir(&self, path: &str) -> io::Result<Vec<DirEntry>> {
        let (node, at) = self.node(path, true)?;
        if !matches!(node.body, Body::Dir) {
            return Err(errno(libc::ENOTDIR));
        }
        if node.denied {
            return Err(errno(libc::EACCES));
        }
        Ok(self
            .children(&at)
            .into_iter()
            .map(|(k, n)| DirEntry {
                name: k[k.rfind('/').map_or(0, |i| i + 1)..].to_string(),
                raw_name: k.as_bytes()[k.rfind('/').map_or(0, |i| i + 1)..].to_vec(),
                file_type: n.file_type,
            })
            .collect())
    }

    fn walk(
        &self,
        path: &str,
        options: &WalkOptions,
        visit: &mut dyn FnMut(io::Result<WalkEntry>) -> bool,
    ) -> io::Result<()> {
        // Like RootFs: the start is resolved inside the root, entries below
        // it are reported under the resolved path and never followed.
        let start = self.canonicalize(path)?;
        let start_dev = self.nodes[&start].dev;
        self.walk_from(&start, 0, start_dev, options, visit);
        Ok(())
    }

    fn fs_stats(&self, path: &str) -> io::Result<FsStats> {
        let at = self.resolve(path, true)?;
        let mount = self
            .filesystems
            .iter()
            .filter(|(m, _)| m.as_str() == "/" || at == **m || at.starts_with(&format!("{m}/")))
            .max_by_key(|(m, _)| m.len());
        match mount {
            Some((_, stats)) => Ok(*stats),
            None => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no filesystem is mounted in this memory target",
            )),
        }
    }

    fn accounts(&self) -> &Accounts {
        self.accounts.get_or_init(|| {
            Accounts::parse(
                self.read("/etc/passwd", READ_LIMIT),
                self.read("/etc/group", READ_LIMIT),
            )
        })
    }

    fn exec(&self, req: &ExecRequest) -> io::Result<ExecOutput> {
        match &self.exec {
            Some(Runner(f)) => f(req),
            None => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this memory target runs no programs",
            )),
        }
    }

    fn memo(&self) -> Option<&Memo> {
        Some(&self.memo)
    }
}

impl MemoryTarget {
    fn walk_from(
        &self,
        at: &str,
        depth: usize,
        start_dev: u64,
        options: &WalkOptions,
        visit: &mut dyn FnMut(io::Result<WalkEntry>) -> bool,
    ) {
        let node = &self.nodes[at];
        let link = match &node.body {
            Body::Symlink(text) if options.links => Some(super::Link {
                text: text.clone().into_bytes(),
                target: self.metadata(at, true).map_err(Arc::new),
            }),
            _ => None,
        };
        let keep = visit(Ok(WalkEntry {
            path: at.to_string(),
            raw_path: at.as_bytes().to_vec(),
            depth,
            metadata: MemoryTarget::metadata_of(node),
            link,
        }));
        if !keep || !matches!(node.body, Body::Dir) {
            return;
        }
        // Like the real walker (and `find -xdev`): a mount point is reported, its
        // contents are not.
        if options.same_file_system && node.dev != start_dev {
            return;
        }
        if options.max_depth.is_some_and(|max| depth >= max) {
            return;
        }
        if node.denied {
            let e = errno(libc::EACCES);
            visit(Err(io::Error::new(e.kind(), format!("{at}: {e}"))));
            return;
        }
        let children: Vec<String> = self
            .children(at)
            .into_iter()
            .map(|(k, _)| k.clone())
            .collect();
        for child in children {
            self.walk_from(&child, depth + 1, start_dev, options, visit);
        }
    }
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty())
}

/// `/a/./b/` → `/a/b`, purely lexically (`..` stops at `/`); for the
/// builder's own paths, which contain no symlinks yet.
fn normalize(path: &str) -> String {
    assert!(path.starts_with('/'), "{path:?} is not absolute");
    let mut parts: Vec<&str> = Vec::new();
    for c in components(path) {
        match c {
            "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    to_path(&parts)
}

fn to_path<S: AsRef<str>>(parts: &[S]) -> String {
    let mut s = String::new();
    for p in parts {
        s.push('/');
        s.push_str(p.as_ref());
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> MemoryTarget {
        MemoryTarget::new()
            .dir("/usr/bin", 0o755, 0, 0)
            .file("/usr/bin/ls", 0o755, 0, 0, "ELF")
            .symlink("/bin", "usr/bin")
            .symlink("/etc/alternatives/sh", "/bin/ls")
            .symlink("/escape", "../../../usr/bin/ls")
            .symlink("/dangling", "/nowhere")
            .symlink("/loop", "loop")
            .file("/etc/shadow", 0o600, 0, 42, "root:*:::::::\n")
            .deny("/etc/shadow")
            .file(
                "/etc/passwd",
                0o644,
                0,
                0,
                "root:x:0:0::/root:/bin/sh\nmunge:x:101:102::/:/bin/false\n",
            )
            .file("/etc/group", 0o644, 0, 0, "root:x:0:\nmunge:x:102:\n")
    }

    #[test]
    fn links_resolve_inside_the_root() {
        let t = image();
        assert_eq!(t.canonicalize("/bin/ls").unwrap(), "/usr/bin/ls");
        assert_eq!(
            t.canonicalize("/etc/alternatives/sh").unwrap(),
            "/usr/bin/ls"
        );
        // `..` above the root stays at the root, like RESOLVE_IN_ROOT.
        assert_eq!(t.canonicalize("/escape").unwrap(), "/usr/bin/ls");
        assert_eq!(t.canonicalize("/../../bin/./ls").unwrap(), "/usr/bin/ls");
        assert_eq!(
            t.metadata("/dangling", true).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            t.metadata("/dangling", false).unwrap().file_type,
            FileType::Symlink
        );
        assert_eq!(t.read_link("/dangling").unwrap(), "/nowhere");
        assert_eq!(
            t.read_link("/usr/bin/ls").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            t.metadata("/loop", true).unwrap_err().raw_os_error(),
            Some(libc::ELOOP)
        );
        assert_eq!(
            t.metadata("/usr/bin/ls/x", true)
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ENOTDIR)
        );
    }

    #[test]
    fn reads_honour_limits_and_permissions() {
        let t = image();
        assert_eq!(t.read("/bin/ls", 3).unwrap(), b"ELF");
        let e = t.read("/bin/ls", 2).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(
            e.to_string(),
            "file is larger than the read limit of 2 bytes"
        );
        let e = t.read("/etc/shadow", READ_LIMIT).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(t.metadata("/etc/shadow", true).unwrap().gid, 42);
        assert_eq!(
            t.read("/usr", 10).unwrap_err().raw_os_error(),
            Some(libc::EISDIR)
        );
        let t = t.deny("/usr/bin");
        assert_eq!(t.metadata("/usr/bin", false).unwrap().mode, 0o755);
        let e = t.metadata("/bin/ls", false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    }

    #[test]
    fn lists_and_walks_without_following_links() {
        let t = image();
        let names: Vec<String> = t
            .read_dir("/")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["bin", "dangling", "escape", "etc", "loop", "usr"]);
        let mut seen = Vec::new();
        t.walk("/bin", &WalkOptions::default(), &mut |e| {
            let e = e.unwrap();
            seen.push((e.path, e.depth));
            true
        })
        .unwrap();
        assert_eq!(
            seen,
            [("/usr/bin".to_string(), 0), ("/usr/bin/ls".to_string(), 1)]
        );

        let mut seen = Vec::new();
        let opts = WalkOptions {
            max_depth: Some(1),
            ..WalkOptions::default()
        };
        t.walk("/", &opts, &mut |e| {
            let e = e.unwrap();
            let keep = e.path != "/etc";
            seen.push(e.path);
            keep
        })
        .unwrap();
        assert!(seen.contains(&"/etc".to_string()));
        assert!(
            !seen
                .iter()
                .any(|p| p.starts_with("/etc/") || p.starts_with("/usr/"))
        );
    }

    #[test]
    fn walk_reports_unreadable_dirs_and_goes_on() {
        let t = MemoryTarget::new()
            .dir("/a", 0o700, 0, 0)
            .file("/a/x", 0o644, 0, 0, "")
            .deny("/a")
            .file("/b", 0o644, 0, 0, "");
        let mut ok = Vec::new();
        let mut errs = Vec::new();
        t.walk("/", &WalkOptions::default(), &mut |e| {
            match e {
                Ok(e) => ok.push(e.path),
                Err(e) => errs.push(e.to_string()),
            }
            true
        })
        .unwrap();
        assert_eq!(ok, ["/", "/a", "/b"]);
        assert_eq!(errs, ["/a: Permission denied (os error 13)"]);
    }

    #[test]
    fn accounts_come_from_the_image() {
        let t = image().kind(TargetKind::Container).with(Need::Exec);
        assert_eq!(t.accounts().user("munge").unwrap().uid, 101);
        assert_eq!(t.accounts().group_name(102), "munge");
        assert!(t.accounts().errors.is_empty());
        assert_eq!(Target::kind(&t), TargetKind::Container);
        assert!(t.has(Need::Exec) && !t.has(Need::Live));
    }
}
