//! `verify = true`: every file a package installed is still there and
//! unchanged, as `dpkg --verify` and `rpm -V` would say, judged from the
//! target's own package database and read through the Target only.
//!
//! The database side ([`dpkg`], [`rpm`]) makes a [`Plan`]: what each path
//! of each package should be. [`check`] then looks at every path once
//! (paths several packages list are stat'ed and hashed once), in
//! parallel, streaming file contents in [`CHUNK`]-sized reads.

pub mod dpkg;
pub mod rpm;

use std::collections::HashMap;
use std::fmt;
use std::io;

use globset::GlobSet;
use nodecheck_core::target::{Accounts, FileType, Metadata, Target};
use nodecheck_core::text::hex;
use rayon::prelude::*;
use sha2::Digest;

use crate::eval::{io_text, is_absent};

/// Bytes read from a file at a time: large enough that the syscalls cost
/// nothing beside the hashing, small enough for one buffer per thread.
pub const CHUNK: usize = 256 << 10;

/// Digest algorithms package databases use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algo {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Algo {
    /// rpm's `FILEDIGESTALGO` numbers (OpenPGP hash ids, RFC 4880 9.4).
    pub fn from_rpm(n: u64) -> Option<Algo> {
        Some(match n {
            1 => Algo::Md5,
            2 => Algo::Sha1,
            8 => Algo::Sha256,
            9 => Algo::Sha384,
            10 => Algo::Sha512,
            11 => Algo::Sha224,
            _ => return None,
        })
    }
}

enum Hasher {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn new(algo: Algo) -> Hasher {
        match algo {
            Algo::Md5 => Hasher::Md5(md5::Md5::new()),
            Algo::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algo::Sha224 => Hasher::Sha224(sha2::Sha224::new()),
            Algo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algo::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            Algo::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(b),
            Hasher::Sha1(h) => h.update(b),
            Hasher::Sha224(h) => h.update(b),
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha384(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
        }
    }

    fn hex(self) -> String {
        let bytes: Vec<u8> = match self {
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha224(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        };
        hex(&bytes)
    }
}

/// The digest of a file of the target (symlinks followed inside it) and
/// the number of bytes hashed, read in `buf`-sized pieces: the file is
/// never held whole in memory.
pub fn digest(t: &dyn Target, path: &str, algo: Algo, buf: &mut [u8]) -> io::Result<(String, u64)> {
    let file = t.open(path)?;
    let mut h = Hasher::new(algo);
    let mut at = 0u64;
    loop {
        let n = file.read_at(buf, at)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        at += n as u64;
    }
    Ok((h.hex(), at))
}

/// What the database says one path of one package must be.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Index into [`Plan::packages`].
    pub pkg: usize,
    /// Where the file is looked for (a dpkg diversion already applied).
    pub path: String,
    /// A dpkg conffile or an rpm `%config` file.
    pub conffile: bool,
    pub expect: Expect,
}

#[derive(Clone, Debug)]
pub enum Expect {
    /// dpkg knows only that the path exists and, for files with an entry
    /// in `md5sums` or `Conffiles`, their MD5 (so they must be regular
    /// files).
    Dpkg {
        md5: Option<String>,
    },
    Rpm(Box<rpm::File>),
}

/// Everything to look at, and what could not be planned (a damaged
/// md5sums file, an unreadable header): those make the check an error.
#[derive(Debug, Default)]
pub struct Plan {
    /// Package names as shown (`libc6:amd64` for a dpkg Multi-Arch: same
    /// package).
    pub packages: Vec<String>,
    pub entries: Vec<Entry>,
    pub errors: Vec<String>,
}

/// How one path differs from what its package says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Diff {
    Missing,
    /// The wrong sort of file (`regular file → symlink`).
    Type(FileType, FileType),
    Digest,
    Size(u64, u64),
    /// Permission bits.
    Mode(u32, u32),
    Owner(String, String),
    Group(String, String),
    Link(String, String),
    Mtime(u64, u64),
    /// A device node of the wrong sort (character vs block).
    Device,
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = |t: &FileType| match t {
            FileType::File => "regular file",
            FileType::Char => "character device",
            FileType::Block => "block device",
            other => other.as_str(),
        };
        match self {
            Diff::Missing => write!(f, "missing"),
            Diff::Type(a, b) => write!(f, "type {} → {}", kind(a), kind(b)),
            Diff::Digest => write!(f, "digest"),
            Diff::Size(a, b) => write!(f, "size {a} → {b}"),
            Diff::Mode(a, b) => write!(f, "mode {a:04o} → {b:04o}"),
            Diff::Owner(a, b) => write!(f, "owner {a} → {b}"),
            Diff::Group(a, b) => write!(f, "group {a} → {b}"),
            Diff::Link(a, b) => write!(f, "link target {a} → {b}"),
            Diff::Mtime(a, b) => write!(f, "mtime {a} → {b}"),
            Diff::Device => write!(f, "device type"),
        }
    }
}

/// One path of one package that differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub pkg: usize,
    pub path: String,
    pub conffile: bool,
    pub diffs: Vec<Diff>,
}

impl Finding {
    /// `openssh-server: /etc/ssh/sshd_config (conffile): digest`
    pub fn show(&self, packages: &[String]) -> String {
        let diffs: Vec<String> = self.diffs.iter().map(ToString::to_string).collect();
        format!(
            "{}: {}{}: {}",
            packages[self.pkg],
            self.path,
            if self.conffile { " (conffile)" } else { "" },
            diffs.join(", ")
        )
    }
}

/// What [`check`] found.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub errors: Vec<String>,
    /// Entries looked at (after `exclude`).
    pub entries: usize,
}

/// Looks at every entry of `plan` not matched by `exclude`.
pub fn check(t: &dyn Target, plan: &Plan, exclude: &GlobSet) -> Report {
    let mut by_path: HashMap<&str, Vec<&Entry>> = HashMap::new();
    for e in &plan.entries {
        if exclude.is_empty() || !exclude.is_match(&e.path) {
            by_path.entry(e.path.as_str()).or_default().push(e);
        }
    }
    let entries = by_path.values().map(Vec::len).sum();
    let mut groups: Vec<(&str, Vec<&Entry>)> = by_path.into_iter().collect();
    // Big files first would balance threads better, but sizes are unknown
    // before the stat; sorting by path keeps reads of one directory close.
    groups.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let accounts = t.accounts();
    let results: Vec<(Vec<Finding>, Vec<String>)> = groups
        .par_iter()
        .map_init(
            || vec![0u8; CHUNK],
            |buf, (path, entries)| look(t, accounts, path, entries, buf),
        )
        .collect();
    let mut report = Report {
        entries,
        ..Report::default()
    };
    for (f, e) in results {
        report.findings.extend(f);
        report.errors.extend(e);
    }
    report
        .findings
        .sort_by(|a, b| (&plan.packages[a.pkg], &a.path).cmp(&(&plan.packages[b.pkg], &b.path)));
    report
}

/// The entries of one path: one lstat, one digest per algorithm.
fn look(
    t: &dyn Target,
    accounts: &Accounts,
    path: &str,
    entries: &[&Entry],
    buf: &mut [u8],
) -> (Vec<Finding>, Vec<String>) {
    let mut findings = Vec::new();
    let mut errors = Vec::new();
    // rpm does not look at files it did not install (--nodocs, another
    // colour, a network-shared path).
    let wanted: Vec<&Entry> = entries
        .iter()
        .copied()
        .filter(|e| match &e.expect {
            Expect::Rpm(f) => f.looked_at(),
            Expect::Dpkg { .. } => true,
        })
        .collect();
    if wanted.is_empty() {
        return (findings, errors);
    }
    let md = match t.metadata(path, false) {
        Ok(md) => md,
        Err(e) if is_absent(&e) => {
            for e in wanted {
                let report = match &e.expect {
                    Expect::Rpm(f) => f.missing_counts(),
                    Expect::Dpkg { .. } => true,
                };
                if report {
                    findings.push(Finding {
                        pkg: e.pkg,
                        path: path.to_string(),
                        conffile: e.conffile,
                        diffs: vec![Diff::Missing],
                    });
                }
            }
            return (findings, errors);
        }
        Err(e) => {
            errors.push(format!("{path}: {}", io_text(&e)));
            return (findings, errors);
        }
    };
    let mut digests: HashMap<Algo, Result<(String, u64), String>> = HashMap::new();
    let mut hashed = |algo: Algo| -> Result<(String, u64), String> {
        digests
            .entry(algo)
            .or_insert_with(|| digest(t, path, algo, buf).map_err(|e| io_text(&e)))
            .clone()
    };
    for e in wanted {
        let diffs = match &e.expect {
            Expect::Dpkg { md5 } => dpkg_diffs(t, path, &md, md5.as_deref(), &mut hashed),
            Expect::Rpm(f) => f.diffs(t, accounts, path, &md, &mut hashed),
        };
        match diffs {
            Ok(d) if d.is_empty() => {}
            Ok(diffs) => findings.push(Finding {
                pkg: e.pkg,
                path: path.to_string(),
                conffile: e.conffile,
                diffs,
            }),
            Err(err) => errors.push(format!("{path}: {err}")),
        }
    }
    (findings, errors)
}

/// `dpkg --verify`: a path with a known digest must be a regular file
/// with that MD5 (dpkg hashes what the path leads to, so a symlink to a
/// file with the right content is only a type difference; a symlink that
/// leads nowhere, or to anything but a regular file, is only that).
fn dpkg_diffs(
    t: &dyn Target,
    path: &str,
    md: &Metadata,
    md5: Option<&str>,
    hashed: &mut dyn FnMut(Algo) -> Result<(String, u64), String>,
) -> Result<Vec<Diff>, String> {
    let mut out = Vec::new();
    let Some(md5) = md5 else {
        return Ok(out);
    };
    if md.file_type != FileType::File {
        out.push(Diff::Type(FileType::File, md.file_type));
        // dpkg hashes what a symlink leads to; anything else (a device
        // node, a fifo) is never opened.
        let leads_to_file = md.file_type == FileType::Symlink
            && t.metadata(path, true)
                .is_ok_and(|m| m.file_type == FileType::File);
        if !leads_to_file {
            return Ok(out);
        }
    }
    match hashed(Algo::Md5) {
        Ok((h, _)) if !h.eq_ignore_ascii_case(md5) => out.push(Diff::Digest),
        Ok(_) => {}
        Err(e) => return Err(format!("cannot read it: {e}")),
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
