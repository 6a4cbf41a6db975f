//! The RPM database: `rpmdb.sqlite` (RHEL 9, Rocky, Alma, Fedora), the
//! header blobs it stores, and rpm's version order (`rpmvercmp`).
//!
//! The database is never opened in place. Its bytes are read through the
//! target (so the image's file is only ever read, and a symlink in the
//! image cannot lead outside it). Without a `-wal`, SQLite opens that copy
//! from memory (`sqlite3_deserialize`, read-only); with one, both are
//! written to a private 0700 scratch directory and SQLite opens the copy
//! there and replays the log itself, as it would on the node.

use std::cmp::Ordering;

use rusqlite::{Connection, MAIN_DB};

use super::Pkg;

/// Header tags (rpmtag.h).
const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

/// rpm's own limits on a header (header_internal.h).
const MAX_INDEX: usize = 0xffff;
const MAX_DATA: usize = 256 << 20;

/// A header blob as rpmdb stores it (no lead magic): `u32 il, u32 dl`,
/// `il` index entries of 16 bytes (`tag, type, offset, count`), then `dl`
/// bytes of data, all big-endian. Every read is bounds-checked: a corrupt
/// header is an error, never a panic.
pub struct Header<'a> {
    /// `tag -> (type, offset, count)`; a tag written twice (rpm appends
    /// tags to an installed header) keeps its last entry.
    index: std::collections::HashMap<u32, (u32, usize, usize)>,
    data: &'a [u8],
}

pub const TYPE_CHAR: u32 = 1;
pub const TYPE_INT8: u32 = 2;
pub const TYPE_INT16: u32 = 3;
pub const TYPE_INT64: u32 = 5;
pub const TYPE_STRING_ARRAY: u32 = 8;

impl<'a> Header<'a> {
    pub fn parse(blob: &'a [u8]) -> Result<Header<'a>, String> {
        let be = |at: usize| -> Option<u32> {
            blob.get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let il = be(0).ok_or("header shorter than 8 bytes")? as usize;
        let dl = be(4).ok_or("header shorter than 8 bytes")? as usize;
        if il == 0 || il > MAX_INDEX || dl > MAX_DATA {
            return Err(format!(
                "header with {il} entries and {dl} data bytes is not plausible"
            ));
        }
        let data_start = 8 + 16 * il;
        if blob.len() < data_start + dl {
            return Err(format!(
                "header truncated: {} bytes, needs {}",
                blob.len(),
                data_start + dl
            ));
        }
        let mut index = std::collections::HashMap::with_capacity(il);
        for i in 0..il {
            let e = 8 + 16 * i;
            let (Some(tag), Some(ty), Some(off), Some(count)) =
                (be(e), be(e + 4), be(e + 8), be(e + 12))
            else {
                return Err("index entry out of bounds".into());
            };
            index.insert(tag, (ty, off as usize, count as usize));
        }
        Ok(Header {
            index,
            data: &blob[data_start..data_start + dl],
        })
    }

    pub fn has(&self, tag: u32) -> bool {
        self.index.contains_key(&tag)
    }

    /// The bytes of `count` items of `size` bytes at the tag's offset.
    fn items(
        &self,
        tag: u32,
        types: &[u32],
        size: usize,
    ) -> Result<Option<(&'a [u8], usize)>, String> {
        let Some(&(ty, off, count)) = self.index.get(&tag) else {
            return Ok(None);
        };
        if !types.contains(&ty) {
            return Err(format!("tag {tag} has type {ty}, expected {types:?}"));
        }
        let bytes = count
            .checked_mul(size)
            .and_then(|n| self.data.get(off..off.checked_add(n)?))
            .ok_or(format!("tag {tag} points outside the header"))?;
        Ok(Some((bytes, count)))
    }

    /// A STRING (or I18NSTRING: its first translation).
    pub fn string(&self, tag: u32) -> Result<Option<String>, String> {
        let Some(&(ty, off, _)) = self.index.get(&tag) else {
            return Ok(None);
        };
        if ty != TYPE_STRING && ty != TYPE_I18NSTRING {
            return Err(format!("tag {tag} has type {ty}, expected a string"));
        }
        let rest = self
            .data
            .get(off..)
            .ok_or(format!("tag {tag} points outside the header"))?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(format!("tag {tag}: unterminated string"))?;
        Ok(Some(String::from_utf8_lossy(&rest[..end]).into_owned()))
    }

    /// A STRING_ARRAY: `count` NUL-terminated strings.
    pub fn strings(&self, tag: u32) -> Result<Option<Vec<String>>, String> {
        let Some(&(ty, off, count)) = self.index.get(&tag) else {
            return Ok(None);
        };
        if ty != TYPE_STRING_ARRAY && ty != TYPE_STRING && ty != TYPE_I18NSTRING {
            return Err(format!("tag {tag} has type {ty}, expected a string array"));
        }
        let mut rest = self
            .data
            .get(off..)
            .ok_or(format!("tag {tag} points outside the header"))?;
        let mut out = Vec::with_capacity(count.min(rest.len()));
        for _ in 0..count {
            let end = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or(format!("tag {tag}: unterminated string"))?;
            out.push(String::from_utf8_lossy(&rest[..end]).into_owned());
            rest = &rest[end + 1..];
        }
        Ok(Some(out))
    }

    /// An integer array of any width (CHAR, INT8, INT16, INT32, INT64),
    /// widened.
    pub fn ints(&self, tag: u32) -> Result<Option<Vec<u64>>, String> {
        let Some(&(ty, ..)) = self.index.get(&tag) else {
            return Ok(None);
        };
        let size = match ty {
            TYPE_CHAR | TYPE_INT8 => 1,
            TYPE_INT16 => 2,
            TYPE_INT32 => 4,
            TYPE_INT64 => 8,
            _ => return Err(format!("tag {tag} has type {ty}, expected integers")),
        };
        let Some((bytes, _)) = self.items(tag, &[ty], size)? else {
            return Ok(None);
        };
        Ok(Some(
            bytes
                .chunks_exact(size)
                .map(|c| c.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)))
                .collect(),
        ))
    }
}

/// Name, epoch, version, release and arch from a header blob.
pub fn header(blob: &[u8]) -> Result<Pkg, String> {
    let h = Header::parse(blob)?;
    let name = h.string(TAG_NAME)?.ok_or("header without NAME")?;
    let version = h
        .string(TAG_VERSION)?
        .ok_or_else(|| format!("{name}: header without VERSION"))?;
    let release = h.string(TAG_RELEASE)?.unwrap_or_default();
    let epoch = match h.index.get(&TAG_EPOCH) {
        None => None,
        Some(&(ty, _, count)) if ty != TYPE_INT32 || count < 1 => {
            return Err(format!("EPOCH has type {ty}, expected INT32"));
        }
        Some(_) => h.ints(TAG_EPOCH)?.and_then(|v| v.first().copied()),
    };
    let arch = h.string(TAG_ARCH)?;
    let mut evr = String::new();
    if let Some(e) = epoch.filter(|&e| e != 0) {
        evr.push_str(&format!("{e}:"));
    }
    evr.push_str(&version);
    if !release.is_empty() {
        evr.push('-');
        evr.push_str(&release);
    }
    Ok(Pkg {
        name,
        version: evr,
        arch: arch.unwrap_or_default(),
        installed: true,
        state: "installed".into(),
        multiarch_same: false,
        conffiles: Vec::new(),
    })
}

/// Reads every package of an rpmdb.sqlite given its bytes (and those of
/// its `-wal`, if any).
pub fn sqlite(path: &str, db: Vec<u8>, wal: Option<&[u8]>) -> Result<Vec<Pkg>, String> {
    packages(path, sqlite_blobs(path, db, wal)?)
}

/// The packages of header blobs (`where` names each for messages),
/// `gpg-pubkey` entries left out.
pub fn packages(path: &str, blobs: Vec<(String, Vec<u8>)>) -> Result<Vec<Pkg>, String> {
    let mut out = Vec::new();
    for (at, blob) in blobs {
        let p = header(&blob).map_err(|e| format!("{path}: {at}: {e}"))?;
        if p.name != "gpg-pubkey" {
            out.push(p);
        }
    }
    Ok(out)
}

/// The header blobs of an rpmdb.sqlite, each with where it was found.
///
/// Without a `-wal` the database is opened from memory. With one, SQLite
/// itself replays it: both files are copied (as read through the Target)
/// into a private, randomly named 0700 directory and the copy is opened
/// there. Nothing of the image is ever opened by SQLite, for writing or
/// reading.
pub fn sqlite_blobs(
    path: &str,
    mut db: Vec<u8>,
    wal: Option<&[u8]>,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    if !db.starts_with(b"SQLite format 3\0") || db.len() < 100 {
        return Err(format!("{path}: not an SQLite database"));
    }
    let fail = |e: rusqlite::Error| format!("{path}: {e}");
    // Kept alive until the query is done; removed when dropped.
    let mut _scratch = None;
    let conn = match wal {
        Some(wal) if !wal.is_empty() => {
            let (dir, conn) = open_copy(&db, wal).map_err(|e| format!("{path}: {e}"))?;
            _scratch = Some(dir);
            conn
        }
        _ => {
            // Bytes 18 and 19 say "WAL mode" (2); SQLite's memory VFS only
            // opens rollback-journal databases.
            db[18] = 1;
            db[19] = 1;
            let mut conn = Connection::open_in_memory().map_err(fail)?;
            let len = db.len();
            conn.deserialize_read_exact(MAIN_DB, &db[..], len, true)
                .map_err(fail)?;
            conn
        }
    };
    drop(db);
    let mut stmt = conn
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .map_err(|e| format!("{path}: not an rpm database: {e}"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .map_err(fail)?;
    let mut out = Vec::new();
    for row in rows {
        let (hnum, blob) = row.map_err(fail)?;
        out.push((format!("package #{hnum}"), blob));
    }
    Ok(out)
}

/// Writes the database and its WAL into a private scratch directory and
/// opens the copy, so that SQLite recovers the committed transactions of
/// the log as it would on the node (a torn or foreign log is ignored, as
/// SQLite ignores it).
#[expect(
    clippy::disallowed_methods,
    reason = "a private scratch copy of bytes read through the Target, never the image"
)]
fn open_copy(db: &[u8], wal: &[u8]) -> Result<(tempfile::TempDir, Connection), String> {
    let dir = tempfile::Builder::new()
        .prefix("nodecheck-rpmdb-")
        .tempdir()
        .map_err(|e| format!("cannot make a scratch directory: {e}"))?;
    let file = dir.path().join("rpmdb.sqlite");
    std::fs::write(&file, db).map_err(|e| format!("cannot copy the database: {e}"))?;
    std::fs::write(dir.path().join("rpmdb.sqlite-wal"), wal)
        .map_err(|e| format!("cannot copy its -wal: {e}"))?;
    let conn = Connection::open_with_flags(
        &file,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())?;
    Ok((dir, conn))
}

/// rpm's order of two `[epoch:]version[-release]`: epochs numerically,
/// then versions with `rpmvercmp`, then releases when both sides have one
/// (so `ge = "5.14.0"` holds for `5.14.0-427.el9`, as `rpm -q
/// --whatprovides 'x >= 5.14.0'` would say).
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, va, ra) = split(a);
    let (eb, vb, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| rpmvercmp(va, vb))
        .then_with(|| match (ra, rb) {
            (Some(x), Some(y)) => rpmvercmp(x, y),
            _ => Ordering::Equal,
        })
}

fn split(v: &str) -> (u64, &str, Option<&str>) {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (e.parse().unwrap_or(u64::MAX), r)
        }
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((ver, rel)) => (epoch, ver, Some(rel)),
        None => (epoch, rest, None),
    }
}

/// rpmvercmp (rpmio/rpmvercmp.c): alternating runs of digits and letters,
/// separators ignored; a digit run beats a letter run; `~` sorts before
/// everything, `^` after the end but before anything else.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    loop {
        while a.first().is_some_and(|&c| sep(c)) {
            a = &a[1..];
        }
        while b.first().is_some_and(|&c| sep(c)) {
            b = &b[1..];
        }
        if a.first() == Some(&b'~') || b.first() == Some(&b'~') {
            if a.first() != Some(&b'~') {
                return Ordering::Greater;
            }
            if b.first() != Some(&b'~') {
                return Ordering::Less;
            }
            a = &a[1..];
            b = &b[1..];
            continue;
        }
        if a.first() == Some(&b'^') || b.first() == Some(&b'^') {
            if a.is_empty() {
                return Ordering::Less;
            }
            if b.is_empty() {
                return Ordering::Greater;
            }
            if a.first() != Some(&b'^') {
                return Ordering::Greater;
            }
            if b.first() != Some(&b'^') {
                return Ordering::Less;
            }
            a = &a[1..];
            b = &b[1..];
            continue;
        }
        if a.is_empty() || b.is_empty() {
            break;
        }
        let numeric = a[0].is_ascii_digit();
        let class = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let na = a.iter().take_while(|c| class(c)).count();
        let nb = b.iter().take_while(|c| class(c)).count();
        let (sa, sb) = (&a[..na], &b[..nb]);
        if sb.is_empty() {
            // Segments of different kinds: a number is newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let o = if numeric {
            let ta = &sa[sa.iter().take_while(|&&c| c == b'0').count()..];
            let tb = &sb[sb.iter().take_while(|&&c| c == b'0').count()..];
            ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb))
        } else {
            sa.cmp(sb)
        };
        if o != Ordering::Equal {
            return o;
        }
        a = &a[na..];
        b = &b[nb..];
    }
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

#[cfg(test)]
pub mod tests;
