//! Snapshots of an image and the drift between two of them
//! (`nodecheck snapshot`, `nodecheck diff`, `nodecheck baseline`).
//!
//! A [`Snapshot`] records every entry of a target (path bytes, type, mode,
//! owner, size, link, device numbers, xattrs, mtime, a BLAKE3 digest of
//! each regular file) and what the image *means* ([`Meaning`]: packages,
//! kernels and modules, units, accounts, privileged and loose files,
//! broken linkage). [`diff::diff`] compares two by meaning first, each
//! change with a [`diff::Risk`]; [`baseline::profile`] writes a profile
//! from one. The file format is in [`format`] and docs/snapshot.md.

pub mod baseline;
pub mod build;
pub mod caps;
pub mod diff;
pub mod format;
pub mod output;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

pub use format::{FORMAT_VERSION, MAGIC, SnapshotError, decode, encode};

/// A path inside the image, as the bytes the filesystem holds. Written as
/// a JSON string when it is UTF-8 and as an array of bytes otherwise, so
/// two names never become one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BPath(pub Vec<u8>);

impl BPath {
    pub fn show(&self) -> String {
        nodecheck_core::target::display_bytes(&self.0)
    }
}

impl fmt::Display for BPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.show())
    }
}

impl Serialize for BPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => self.0.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for BPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Bytes(Vec<u8>),
        }
        Ok(BPath(match Repr::deserialize(d)? {
            Repr::Text(t) => t.into_bytes(),
            Repr::Bytes(b) => b,
        }))
    }
}

/// One entry of the image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub path: BPath,
    /// `file`, `directory`, `symlink`, `char`, `block`, `fifo`, `socket`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Permission bits with setuid/setgid/sticky (`& 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Apparent size (regular files; symlinks: the length of the text).
    pub size: u64,
    /// Seconds since the epoch (kept, ignored by `diff` unless `--all`).
    pub mtime: i64,
    /// A symlink's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<BPath>,
    /// A device node's `[major, minor]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdev: Option<[u32; 2]>,
    /// BLAKE3 of a regular file's content, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Extended attributes of a regular file: `security.capability` as
    /// `cap_net_raw=ep`, text values as text, others as `hex:…`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub xattrs: BTreeMap<String, String>,
}

impl Entry {
    pub fn is_file(&self) -> bool {
        self.kind == "file"
    }

    /// The file capabilities, decoded (`security.capability`).
    pub fn capability(&self) -> Option<&str> {
        self.xattrs.get(caps::XATTR).map(String::as_str)
    }
}

/// A user of the image's /etc/passwd.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// A group of the image's /etc/group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub gid: u32,
    pub members: Vec<String>,
}

/// What the image means, read from its own databases and derived from
/// its entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meaning {
    /// `name:arch` → version, installed packages (dpkg or rpm).
    pub packages: BTreeMap<String, String>,
    /// Which package database they came from (`dpkg`, `rpm`), empty
    /// when none was found.
    pub package_format: String,
    /// Kernel release → the names of its modules (`ext4`, `mlx5_core`).
    pub kernels: BTreeMap<String, BTreeSet<String>>,
    /// `multi-user.target.wants/ssh.service`: the enablement links of
    /// /etc/systemd/system.
    pub units_enabled: BTreeSet<String>,
    /// Units masked in /etc/systemd/system (a link to /dev/null).
    pub units_masked: BTreeSet<String>,
    pub users: BTreeMap<String, User>,
    pub groups: BTreeMap<String, Group>,
    /// Regular files with the setuid bit.
    pub setuid: BTreeSet<BPath>,
    /// Regular files with the setgid bit.
    pub setgid: BTreeSet<BPath>,
    /// Regular files with file capabilities → `cap_net_raw=ep`.
    pub capabilities: BTreeMap<BPath, String>,
    /// World-writable regular files, and world-writable directories
    /// without the sticky bit.
    pub world_writable: BTreeSet<BPath>,
    /// Entries whose uid or gid the image's passwd/group does not name.
    pub unowned: BTreeSet<BPath>,
    /// ELF programs and libraries (in [`build::LINKAGE_TREES`]) that do
    /// not load → what is missing.
    pub broken_linkage: BTreeMap<BPath, Vec<String>>,
    /// The set /etc/ld.so.cache holds (`soname => path`), so a rebuilt
    /// cache with the same set is no change.
    pub ld_cache: BTreeSet<String>,
    /// SHA-256 of /etc/passwd and /etc/group (what a `file` check's
    /// `sha256` pins in a baseline profile).
    #[serde(default)]
    pub account_files: BTreeMap<String, String>,
}

/// A recorded image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// What was recorded (`rootfs:/srv/images/compute`).
    pub source: String,
    /// The nodecheck that wrote it.
    pub tool: String,
    /// The digest algorithm of [`Entry::digest`] (`blake3`).
    pub digest: String,
    /// uid → user name, gid → group name, from the image's own files.
    pub user_names: BTreeMap<u32, String>,
    pub group_names: BTreeMap<u32, String>,
    pub meaning: Meaning,
    /// Every entry, sorted by path bytes.
    pub entries: Vec<Entry>,
    /// What could not be read while recording (an unreadable file, a
    /// damaged database): a snapshot is never silently partial.
    pub errors: Vec<String>,
}
