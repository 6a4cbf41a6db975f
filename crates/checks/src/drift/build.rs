//! Recording a [`Snapshot`] of a target: one parallel walk through the
//! fd-based walker, every regular file hashed through the content door
//! (nothing is opened by path, nothing escapes the root), then the
//! image's meaning read from its own databases.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use nodecheck_core::target::{FileAt, FileType, Target, WalkOptions, display_bytes};

use super::{BPath, Entry, Group, Meaning, Snapshot, User, caps};
use crate::elf::closure::Setup;
use crate::elf::object;
use crate::elf::scan::{self, Outcome};
use crate::elf::search::Linker;
use crate::eval::io_text;

/// The trees whose ELF programs and libraries must load (their linkage
/// is recorded). Paths are resolved in the image, so `/lib` on a merged-
/// /usr image is `/usr/lib` and counted once.
pub const LINKAGE_TREES: &[&str] = &[
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib",
    "/usr/libexec",
    "/usr/local",
    "/opt",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
];

/// How much of a file one read hashes.
const CHUNK: usize = 256 << 10;

/// Records the target.
pub fn snapshot(t: &dyn Target) -> Result<Snapshot, String> {
    let options = WalkOptions {
        same_file_system: true,
        ..WalkOptions::default()
    };
    let entries: Mutex<Vec<Entry>> = Mutex::default();
    let errors: Mutex<Vec<String>> = Mutex::default();
    let elves: Mutex<Vec<Vec<u8>>> = Mutex::default();
    let error = |text: String| errors.lock().unwrap_or_else(|p| p.into_inner()).push(text);
    t.walk_parallel("/", &options, &|v| {
        let v = match v {
            Ok(v) => v,
            Err(e) => {
                error(format!("{}: {}", display_bytes(&e.path), io_text(&e.error)));
                return true;
            }
        };
        let md = match v.metadata() {
            Ok(m) => m,
            Err(e) => {
                error(format!("{}: {}", v.display(), io_text(&e)));
                return true;
            }
        };
        let mut entry = Entry {
            path: BPath(v.path.to_vec()),
            kind: md.file_type.as_str().to_string(),
            mode: md.mode & 0o7777,
            uid: md.uid,
            gid: md.gid,
            size: md.size,
            mtime: md.mtime.map_or(0, |m| match m.duration_since(UNIX_EPOCH) {
                Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
            }),
            link: None,
            rdev: None,
            digest: None,
            xattrs: BTreeMap::new(),
        };
        match md.file_type {
            FileType::Symlink => {
                let path = String::from_utf8_lossy(v.path);
                match v
                    .link
                    .as_ref()
                    .map(|l| Ok(l.text.clone()))
                    .unwrap_or_else(|| t.read_link(&path).map(String::into_bytes))
                {
                    Ok(text) => entry.link = Some(BPath(text)),
                    Err(e) => error(format!("{}: {}", v.display(), io_text(&e))),
                }
            }
            FileType::Char | FileType::Block => match v.rdev() {
                Ok(Some(r)) => {
                    entry.rdev = Some(dev_numbers(r));
                }
                Ok(None) => {}
                Err(e) => error(format!("{}: {}", v.display(), io_text(&e))),
            },
            FileType::File => match v.open().and_then(|f| hash(&*f, &mut entry)) {
                Ok(elf) => {
                    if elf {
                        elves
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(v.path.to_vec());
                    }
                }
                Err(e) => error(format!("{}: {}", v.display(), io_text(&e))),
            },
            _ => {}
        }
        entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry);
        true
    })
    .map_err(|e| format!("/: {}", io_text(&e)))?;
    let mut entries = entries.into_inner().unwrap_or_else(|p| p.into_inner());
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    entries.dedup_by(|a, b| a.path == b.path);
    let mut errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    let elves = elves.into_inner().unwrap_or_else(|p| p.into_inner());

    let mut meaning = Meaning::default();
    let accounts = t.accounts();
    errors.extend(accounts.errors.iter().cloned());
    let mut user_names = BTreeMap::new();
    let mut group_names = BTreeMap::new();
    for u in &accounts.users {
        user_names.entry(u.uid).or_insert_with(|| u.name.clone());
        meaning.users.insert(
            u.name.clone(),
            User {
                uid: u.uid,
                gid: u.gid,
                home: u.home.clone(),
                shell: u.shell.clone(),
            },
        );
    }
    for g in &accounts.groups {
        group_names.entry(g.gid).or_insert_with(|| g.name.clone());
        meaning.groups.insert(
            g.name.clone(),
            Group {
                gid: g.gid,
                members: g.members.clone(),
            },
        );
    }
    let (packages, format, package_errors) = crate::package::installed(t);
    meaning.packages = packages;
    meaning.package_format = format;
    errors.extend(package_errors);
    derive(&entries, &user_names, &group_names, &mut meaning);
    meaning.broken_linkage = linkage(t, &elves, &mut errors);
    meaning.ld_cache = ld_cache(t, &mut errors);
    for path in ["/etc/passwd", "/etc/group"] {
        match t.read(path, 64 << 20) {
            Ok(bytes) => {
                use sha2::Digest;
                let sum = sha2::Sha256::digest(&bytes);
                meaning
                    .account_files
                    .insert(path.to_string(), nodecheck_core::text::hex(&sum));
            }
            Err(e) if crate::eval::is_absent(&e) => {}
            Err(e) => errors.push(format!("{path}: {}", io_text(&e))),
        }
    }
    errors.sort();
    Ok(Snapshot {
        source: t.describe(),
        tool: format!("nodecheck {}", env!("CARGO_PKG_VERSION")),
        digest: "blake3".into(),
        user_names,
        group_names,
        meaning,
        entries,
        errors,
    })
}

/// Hashes a regular file whole (streaming, one chunk at a time) and reads
/// its xattrs from the same descriptor; says whether it is an ELF program
/// or library.
fn hash(f: &dyn FileAt, entry: &mut Entry) -> std::io::Result<bool> {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; CHUNK]);
    }
    let mut hasher = blake3::Hasher::new();
    let mut elf = false;
    let mut size = 0u64;
    BUF.with_borrow_mut(|buf| -> std::io::Result<()> {
        loop {
            let n = f.read_at(buf, size)?;
            if n == 0 {
                break;
            }
            if size == 0 {
                elf = object::is_program(&buf[..n.min(object::SNIFF)]);
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        Ok(())
    })?;
    entry.size = size;
    entry.digest = Some(hasher.finalize().to_hex().to_string());
    if let Some(xattrs) = f.xattrs()? {
        for (name, value) in xattrs {
            let name = display_bytes(&name);
            let shown = if name == caps::XATTR {
                caps::decode(&value).unwrap_or_else(|e| format!("invalid: {e}"))
            } else {
                match std::str::from_utf8(&value) {
                    Ok(text) if !text.contains('\0') => text.to_string(),
                    _ => format!("hex:{}", nodecheck_core::text::hex(&value)),
                }
            };
            entry.xattrs.insert(name, shown);
        }
    }
    Ok(elf)
}

/// The sets that follow from the entries alone.
fn derive(
    entries: &[Entry],
    users: &BTreeMap<u32, String>,
    groups: &BTreeMap<u32, String>,
    m: &mut Meaning,
) {
    for e in entries {
        let p = &e.path;
        if e.is_file() {
            if e.mode & 0o4000 != 0 {
                m.setuid.insert(p.clone());
            }
            if e.mode & 0o2000 != 0 {
                m.setgid.insert(p.clone());
            }
            if let Some(c) = e.capability() {
                m.capabilities.insert(p.clone(), c.to_string());
            }
        }
        let loose = match e.kind.as_str() {
            "file" => e.mode & 0o002 != 0,
            "directory" => e.mode & 0o002 != 0 && e.mode & 0o1000 == 0,
            _ => false,
        };
        if loose {
            m.world_writable.insert(p.clone());
        }
        if !users.contains_key(&e.uid) || !groups.contains_key(&e.gid) {
            m.unowned.insert(p.clone());
        }
        if let Some((release, module)) = kernel_module(&p.0) {
            m.kernels.entry(release).or_default().insert(module);
        }
        if let Some(release) = p.0.strip_prefix(b"/boot/vmlinuz-") {
            m.kernels
                .entry(String::from_utf8_lossy(release).into_owned())
                .or_default();
        }
        if e.kind == "symlink"
            && let Some(rest) = p.0.strip_prefix(b"/etc/systemd/system/")
        {
            let rest = String::from_utf8_lossy(rest);
            match rest.split_once('/') {
                Some((dir, unit))
                    if (dir.ends_with(".wants") || dir.ends_with(".requires"))
                        && !unit.contains('/') =>
                {
                    m.units_enabled.insert(rest.to_string());
                }
                None if e.link.as_ref().is_some_and(|l| l.0 == b"/dev/null") => {
                    m.units_masked.insert(rest.to_string());
                }
                _ => {}
            }
        }
    }
}

/// `/usr/lib/modules/6.1.0-9-amd64/kernel/fs/ext4/ext4.ko.xz` →
/// (`6.1.0-9-amd64`, `ext4`).
pub fn kernel_module(path: &[u8]) -> Option<(String, String)> {
    let path = std::str::from_utf8(path).ok()?;
    let rest = path
        .strip_prefix("/usr/lib/modules/")
        .or_else(|| path.strip_prefix("/lib/modules/"))?;
    let (release, tail) = rest.split_once('/')?;
    let file = tail.rsplit('/').next()?;
    let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))?;
    Some((release.to_string(), stem.replace('-', "_")))
}

/// The ELF files under [`LINKAGE_TREES`] that do not load, and why.
fn linkage(
    t: &dyn Target,
    elves: &[Vec<u8>],
    errors: &mut Vec<String>,
) -> BTreeMap<BPath, Vec<String>> {
    let mut roots: BTreeSet<String> = BTreeSet::new();
    for tree in LINKAGE_TREES {
        if let Ok(real) = t.canonicalize(tree) {
            roots.insert(real.trim_end_matches('/').to_string());
        }
    }
    let under = |p: &str| {
        roots.iter().any(|r| {
            p.strip_prefix(r.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        })
    };
    let files: Vec<String> = elves
        .iter()
        .filter_map(|p| std::str::from_utf8(p).ok())
        .filter(|p| under(p))
        .filter(|p| kernel_module(p.as_bytes()).is_none())
        .map(str::to_string)
        .collect();
    let linker = Arc::new(Linker::default());
    let setup = Setup {
        library_path: &[],
        symbols: false,
        unlisted: true,
    };
    let outcomes = scan::check_all(&linker, t, &files, setup);
    let mut out = BTreeMap::new();
    for (file, outcome) in files.iter().zip(outcomes) {
        match outcome {
            Outcome::Loaded(load) => {
                let mut why: Vec<String> = load
                    .missing
                    .iter()
                    .chain(&load.versions)
                    .map(|p| format!("{} ({})", p.soname(), p.detail))
                    .collect();
                why.sort();
                why.dedup();
                if !why.is_empty() {
                    out.insert(BPath(file.as_bytes().to_vec()), why);
                }
            }
            Outcome::Error(e) => errors.push(e),
            Outcome::Skipped(_) | Outcome::Static => {}
        }
    }
    out
}

/// The (soname, path) set of /etc/ld.so.cache.
fn ld_cache(t: &dyn Target, errors: &mut Vec<String>) -> BTreeSet<String> {
    const PATH: &str = "/etc/ld.so.cache";
    let bytes = match t.read(PATH, 64 << 20) {
        Ok(b) => b,
        Err(e) if crate::eval::is_absent(&e) => return BTreeSet::new(),
        Err(e) => {
            errors.push(format!("{PATH}: {}", io_text(&e)));
            return BTreeSet::new();
        }
    };
    match crate::elf::ldcache::LdCache::parse(&bytes) {
        Ok(c) => c
            .entries
            .iter()
            .flat_map(|(so, es)| {
                es.iter()
                    .map(move |e| format!("{so} => {} ({:#x})", e.path, e.flags))
            })
            .collect(),
        Err(e) => {
            errors.push(format!("{PATH}: {e}"));
            BTreeSet::new()
        }
    }
}

/// `[major, minor]` of a Linux `dev_t` (glibc's gnu_dev_major/minor).
fn dev_numbers(d: u64) -> [u32; 2] {
    let major = ((d >> 8) & 0xfff) | ((d >> 32) & !0xfff);
    let minor = (d & 0xff) | ((d >> 12) & !0xff);
    [major as u32, minor as u32]
}
