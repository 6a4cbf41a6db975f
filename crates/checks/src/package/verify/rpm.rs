//! What `rpm -V` looks at, from the file tags of each installed header:
//! paths (DIRNAMES + BASENAMES + DIRINDEXES, or OLDFILENAMES), digests
//! with their algorithm (FILEDIGESTS, FILEDIGESTALGO), sizes, modes,
//! owner and group names, link targets, mtimes, file flags (`%config`,
//! `%ghost`, `missingok`), per-file verify flags (`%verify(...)`) and file
//! states (a `--nodocs` or `--excludepath` install leaves files "not
//! installed"; another package's copy "replaced").
//!
//! The rules are rpm 4.18's `rpmfilesVerify` and `verifyHeader`
//! (lib/verify.c), applied to what the Target says.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::UNIX_EPOCH;

use nodecheck_core::target::{Accounts, FileType, Metadata, Target};

use super::{Algo, Diff, Entry, Expect, Plan};
use crate::package::rpm::Header;

const TAG_NAME: u32 = 1000;
const TAG_ARCH: u32 = 1022;
const TAG_OLDFILENAMES: u32 = 1027;
const TAG_FILESIZES: u32 = 1028;
const TAG_FILESTATES: u32 = 1029;
const TAG_FILEMODES: u32 = 1030;
const TAG_FILEMTIMES: u32 = 1034;
const TAG_FILEDIGESTS: u32 = 1035;
const TAG_FILELINKTOS: u32 = 1036;
const TAG_FILEFLAGS: u32 = 1037;
const TAG_FILEUSERNAME: u32 = 1039;
const TAG_FILEGROUPNAME: u32 = 1040;
const TAG_FILEVERIFYFLAGS: u32 = 1045;
const TAG_DIRINDEXES: u32 = 1116;
const TAG_BASENAMES: u32 = 1117;
const TAG_DIRNAMES: u32 = 1118;
const TAG_LONGFILESIZES: u32 = 5008;
const TAG_FILEDIGESTALGO: u32 = 5011;

/// File flags (rpmfiles.h).
pub const CONFIG: u32 = 1 << 0;
pub const MISSINGOK: u32 = 1 << 3;
pub const GHOST: u32 = 1 << 6;

/// File states (rpmfiles.h); stored as a signed char, `MISSING` is -1.
const STATE_REPLACED: u8 = 1;
const STATE_NOTINSTALLED: u8 = 2;
const STATE_NETSHARED: u8 = 3;
const STATE_WRONGCOLOR: u8 = 4;

/// Verify flags (rpmvf.h).
const V_DIGEST: u32 = 1 << 0;
const V_SIZE: u32 = 1 << 1;
const V_LINKTO: u32 = 1 << 2;
const V_USER: u32 = 1 << 3;
const V_GROUP: u32 = 1 << 4;
const V_MTIME: u32 = 1 << 5;
const V_MODE: u32 = 1 << 6;
const V_RDEV: u32 = 1 << 7;

const S_IFMT: u32 = 0o170_000;

/// One file of an installed header.
#[derive(Clone, Debug)]
pub struct File {
    /// `st_mode`, type bits included.
    pub mode: u32,
    pub size: u64,
    /// `None`: the header has no digest for it (rpm reports `5` for a
    /// regular file then).
    pub digest: Option<(Algo, String)>,
    pub link: String,
    pub user: String,
    pub group: String,
    pub mtime: u64,
    pub flags: u32,
    pub verify: u32,
    pub state: u8,
    /// Several packages own the path: rpm does not report its mtime.
    pub shared: bool,
}

/// `st_mode` type bits of a file type.
fn type_bits(t: FileType) -> u32 {
    match t {
        FileType::File => 0o100_000,
        FileType::Directory => 0o040_000,
        FileType::Symlink => 0o120_000,
        FileType::Socket => 0o140_000,
        FileType::Fifo => 0o010_000,
        FileType::Block => 0o060_000,
        FileType::Char => 0o020_000,
    }
}

fn st_mode(md: &Metadata) -> u32 {
    type_bits(md.file_type) | (md.mode & 0o7777)
}

impl File {
    /// rpm skips files it did not install.
    pub fn looked_at(&self) -> bool {
        self.state != STATE_NOTINSTALLED && self.state != STATE_NETSHARED
    }

    /// A missing `%ghost` or `missingok` file is not reported.
    pub fn missing_counts(&self) -> bool {
        self.flags & (MISSINGOK | GHOST) == 0
    }

    /// What differs at `path`, whose `lstat` is `md`.
    pub fn diffs(
        &self,
        t: &dyn Target,
        accounts: &Accounts,
        path: &str,
        md: &Metadata,
        hashed: &mut dyn FnMut(Algo) -> Result<(String, u64), String>,
    ) -> Result<Vec<Diff>, String> {
        let mut flags = self.verify;
        match self.state {
            STATE_REPLACED => flags = 0,
            STATE_WRONGCOLOR => flags &= !(V_DIGEST | V_SIZE | V_MTIME | V_RDEV),
            _ => {}
        }
        let mut sb = md.clone();
        // A directory replaced by a symlink to one (owned by root or by
        // the directory's owner) is followed, as rpm does.
        if self.mode & S_IFMT == type_bits(FileType::Directory)
            && sb.file_type == FileType::Symlink
            && let Ok(f) = t.metadata(path, true)
            && f.file_type == FileType::Directory
            && (sb.uid == 0 || sb.uid == f.uid)
        {
            sb = f;
        }
        if sb.file_type == FileType::Symlink {
            flags &= !V_MODE;
        } else {
            flags &= !V_LINKTO;
        }
        if sb.file_type != FileType::File {
            flags &= !(V_DIGEST | V_SIZE | V_MTIME);
        }
        let ghost = self.flags & GHOST != 0;
        if ghost {
            flags &= !(V_DIGEST | V_SIZE | V_MTIME | V_LINKTO);
        }
        let mut out = Vec::new();
        let mut size = sb.size;
        if flags & V_MODE != 0 {
            let mut want = self.mode;
            let mut got = st_mode(&sb);
            if ghost {
                want &= !S_IFMT;
                got &= !S_IFMT;
            }
            if want & S_IFMT != got & S_IFMT {
                out.push(Diff::Type(FileType::from_mode(want), sb.file_type));
            }
            if want & 0o7777 != got & 0o7777 {
                out.push(Diff::Mode(want & 0o7777, got & 0o7777));
            }
        }
        if flags & V_DIGEST != 0 {
            match &self.digest {
                Some((algo, want)) => {
                    let (got, n) = hashed(*algo).map_err(|e| format!("cannot read it: {e}"))?;
                    size = n;
                    if !got.eq_ignore_ascii_case(want) {
                        out.push(Diff::Digest);
                    }
                }
                None => out.push(Diff::Digest),
            }
        }
        if flags & V_SIZE != 0 && size != self.size {
            out.push(Diff::Size(self.size, size));
        }
        if flags & V_LINKTO != 0 {
            let got = t.read_link(path).unwrap_or_else(|_| "?".into());
            if got != self.link {
                out.push(Diff::Link(self.link.clone(), got));
            }
        }
        if flags & V_USER != 0 {
            let name = accounts.user_name(sb.uid);
            let id = accounts.user(&self.user).is_some_and(|u| u.uid == sb.uid);
            if name != self.user && !id {
                out.push(Diff::Owner(self.user.clone(), name));
            }
        }
        if flags & V_GROUP != 0 {
            let name = accounts.group_name(sb.gid);
            let id = accounts.group(&self.group).is_some_and(|g| g.gid == sb.gid);
            if name != self.group && !id {
                out.push(Diff::Group(self.group.clone(), name));
            }
        }
        if flags & V_MTIME != 0 && !self.shared {
            let got = sb
                .mtime
                .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            if got != self.mtime {
                out.push(Diff::Mtime(self.mtime, got));
            }
        }
        if flags & V_RDEV != 0 {
            let dev = |m: u32| {
                let t = m & S_IFMT;
                (
                    t == type_bits(FileType::Char),
                    t == type_bits(FileType::Block),
                )
            };
            if dev(self.mode) != dev(st_mode(&sb)) {
                out.push(Diff::Device);
            }
        }
        Ok(out)
    }
}

/// One header's name and files.
struct Parsed {
    name: String,
    files: Vec<(String, File)>,
}

/// The files of a header blob.
fn parse(blob: &[u8]) -> Result<Parsed, String> {
    let h = Header::parse(blob)?;
    let name = h.string(TAG_NAME)?.ok_or("header without NAME")?;
    let _arch = h.string(TAG_ARCH)?;
    let paths: Vec<String> = if h.has(TAG_BASENAMES) {
        let base = h.strings(TAG_BASENAMES)?.unwrap_or_default();
        let dirs = h
            .strings(TAG_DIRNAMES)?
            .ok_or("BASENAMES without DIRNAMES")?;
        let idx = h
            .ints(TAG_DIRINDEXES)?
            .ok_or("BASENAMES without DIRINDEXES")?;
        if idx.len() != base.len() {
            return Err(format!(
                "{} DIRINDEXES for {} BASENAMES",
                idx.len(),
                base.len()
            ));
        }
        base.iter()
            .zip(&idx)
            .map(|(b, &i)| {
                let d = dirs
                    .get(usize::try_from(i).unwrap_or(usize::MAX))
                    .ok_or(format!(
                        "DIRINDEXES entry {i} is past the {} DIRNAMES",
                        dirs.len()
                    ))?;
                Ok(format!("{d}{b}"))
            })
            .collect::<Result<_, String>>()?
    } else {
        h.strings(TAG_OLDFILENAMES)?.unwrap_or_default()
    };
    let n = paths.len();
    let mut files = Vec::with_capacity(n);
    if n == 0 {
        return Ok(Parsed { name, files });
    }
    let sized = |tag: u32, v: Option<Vec<u64>>, what: &str| -> Result<Option<Vec<u64>>, String> {
        match v {
            Some(v) if v.len() != n => Err(format!(
                "{what} (tag {tag}) has {} entries for {n} files",
                v.len()
            )),
            v => Ok(v),
        }
    };
    let strs =
        |tag: u32, v: Option<Vec<String>>, what: &str| -> Result<Option<Vec<String>>, String> {
            match v {
                Some(v) if v.len() != n => Err(format!(
                    "{what} (tag {tag}) has {} entries for {n} files",
                    v.len()
                )),
                v => Ok(v),
            }
        };
    let modes = sized(TAG_FILEMODES, h.ints(TAG_FILEMODES)?, "FILEMODES")?
        .ok_or("files without FILEMODES")?;
    let sizes = match h.ints(TAG_LONGFILESIZES)? {
        Some(v) => sized(TAG_LONGFILESIZES, Some(v), "LONGFILESIZES")?,
        None => sized(TAG_FILESIZES, h.ints(TAG_FILESIZES)?, "FILESIZES")?,
    };
    let states = sized(TAG_FILESTATES, h.ints(TAG_FILESTATES)?, "FILESTATES")?;
    let mtimes = sized(TAG_FILEMTIMES, h.ints(TAG_FILEMTIMES)?, "FILEMTIMES")?;
    let flags = sized(TAG_FILEFLAGS, h.ints(TAG_FILEFLAGS)?, "FILEFLAGS")?;
    let vflags = sized(
        TAG_FILEVERIFYFLAGS,
        h.ints(TAG_FILEVERIFYFLAGS)?,
        "FILEVERIFYFLAGS",
    )?;
    let digests = strs(TAG_FILEDIGESTS, h.strings(TAG_FILEDIGESTS)?, "FILEDIGESTS")?;
    let links = strs(TAG_FILELINKTOS, h.strings(TAG_FILELINKTOS)?, "FILELINKTOS")?;
    let users = strs(
        TAG_FILEUSERNAME,
        h.strings(TAG_FILEUSERNAME)?,
        "FILEUSERNAME",
    )?;
    let groups = strs(
        TAG_FILEGROUPNAME,
        h.strings(TAG_FILEGROUPNAME)?,
        "FILEGROUPNAME",
    )?;
    let algo_n = h
        .ints(TAG_FILEDIGESTALGO)?
        .and_then(|v| v.first().copied())
        .unwrap_or(1);
    let algo =
        Algo::from_rpm(algo_n).ok_or(format!("file digest algorithm {algo_n} is not supported"))?;
    let at = |v: &Option<Vec<u64>>, i: usize, default: u64| v.as_ref().map_or(default, |v| v[i]);
    let s = |v: &Option<Vec<String>>, i: usize| v.as_ref().map_or(String::new(), |v| v[i].clone());
    for (i, path) in paths.into_iter().enumerate() {
        let digest = s(&digests, i);
        files.push((
            path,
            File {
                mode: (modes[i] & 0xffff) as u32,
                size: at(&sizes, i, 0),
                digest: (!digest.is_empty()).then_some((algo, digest)),
                link: s(&links, i),
                user: s(&users, i),
                group: s(&groups, i),
                mtime: at(&mtimes, i, 0),
                flags: at(&flags, i, 0) as u32,
                verify: at(&vflags, i, u64::from(u32::MAX)) as u32,
                state: at(&states, i, 0) as u8,
                shared: false,
            },
        ));
    }
    Ok(Parsed { name, files })
}

/// Every header's files, parsed once per database and target, and the
/// headers that did not parse.
pub struct Files {
    pkgs: Vec<Parsed>,
    errors: Vec<String>,
}

/// Parses every header blob of the database `db` (each blob with where it
/// is, for messages), marking the paths several packages own as shared.
pub fn index(db: &str, blobs: &[(String, Vec<u8>)]) -> Files {
    let mut errors = Vec::new();
    let mut pkgs = Vec::new();
    for (at, blob) in blobs {
        match parse(blob) {
            Ok(p) if p.name == "gpg-pubkey" => {}
            Ok(p) => pkgs.push(p),
            Err(e) => errors.push(format!("{db}: {at}: {e}")),
        }
    }
    let mut owners: HashMap<String, u32> = HashMap::new();
    for p in &pkgs {
        for (path, _) in &p.files {
            *owners.entry(path.clone()).or_default() += 1;
        }
    }
    for p in &mut pkgs {
        for (path, f) in &mut p.files {
            f.shared = owners.get(path).is_some_and(|&n| n > 1);
        }
    }
    Files { pkgs, errors }
}

/// Header blobs, each with where it was found (`package #12`).
pub type Blobs = Vec<(String, Vec<u8>)>;

/// A database's [`Files`], or why it could not be read.
pub type Indexed = Arc<Result<Files, String>>;

/// The rpm databases of a target, indexed once each: a profile that
/// verifies ten packages by name reads and parses a 100 MB rpmdb once.
/// Kept in the target's memo, so it lives as long as the target object.
#[derive(Default)]
struct ByDb(Mutex<HashMap<String, Arc<OnceLock<Indexed>>>>);

/// [`index`] of the database at `db`, whose blobs `load` reads, once per
/// target (a target without a memo reads afresh).
pub fn cached(t: &dyn Target, db: &str, load: impl FnOnce() -> Result<Blobs, String>) -> Indexed {
    let Some(memo) = t.memo() else {
        return Arc::new(load().map(|b| index(db, &b)));
    };
    let slot = memo
        .get::<ByDb>()
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(db.to_string())
        .or_default()
        .clone();
    // Checks that arrive while the first one parses wait for it.
    slot.get_or_init(|| Arc::new(load().map(|b| index(db, &b))))
        .clone()
}

/// The plan for the packages `want` accepts (by name).
pub fn plan(files: &Files, want: &dyn Fn(&str) -> bool) -> Plan {
    let mut plan = Plan {
        errors: files.errors.clone(),
        ..Plan::default()
    };
    for p in files.pkgs.iter().filter(|p| want(&p.name)) {
        let idx = plan.packages.len();
        plan.packages.push(p.name.clone());
        for (path, f) in &p.files {
            plan.entries.push(Entry {
                pkg: idx,
                conffile: f.flags & CONFIG != 0,
                path: path.clone(),
                expect: Expect::Rpm(Box::new(f.clone())),
            });
        }
    }
    plan
}
