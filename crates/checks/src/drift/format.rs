//! The snapshot file: magic bytes, a format version, the BLAKE3 digest of
//! the content, then one zstd frame holding the snapshot as JSON
//! (docs/snapshot.md). The digest makes any damage an error: zstd frames
//! carry no checksum by default, and a flipped byte inside a digest
//! string would still be valid JSON.

use std::io::Read;

use super::Snapshot;

/// The first bytes of every snapshot file. Like PNG's, the high byte and
/// the CR LF / ^Z / LF tail catch a file mangled by a text-mode copy, and
/// no packed image format (squashfs, cpio, tar, ext4, qcow2, zstd, xz,
/// gzip) starts with them.
pub const MAGIC: &[u8; 8] = b"\x8bNCSNP\r\n";

/// The version this nodecheck writes and reads. A reader refuses a newer
/// one by name instead of misreading it.
pub const FORMAT_VERSION: u32 = 1;

/// Magic, version, BLAKE3 of the JSON.
const HEADER: usize = 8 + 4 + 32;

/// The most a snapshot may decompress to: a hostile file cannot make the
/// reader take more memory than this.
pub const MAX_DECODED: u64 = 1 << 30;

/// Why a snapshot file could not be read; shown after the file's name.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a nodecheck snapshot (no snapshot magic bytes)")]
    NotSnapshot,
    #[error("truncated snapshot: the header is incomplete")]
    ShortHeader,
    #[error(
        "snapshot format version {0} is newer than this nodecheck reads ({FORMAT_VERSION}): \
         upgrade nodecheck"
    )]
    Future(u32),
    #[error("snapshot format version 0 does not exist: the file is corrupt")]
    Zero,
    #[error("corrupt or truncated snapshot: {0}")]
    Compressed(String),
    #[error("snapshot decompresses to more than {MAX_DECODED} bytes")]
    TooLarge,
    #[error("corrupt snapshot: {0}")]
    Content(String),
}

/// Writes a snapshot to bytes.
pub fn encode(s: &Snapshot) -> Vec<u8> {
    let json = serde_json::to_vec(s).unwrap_or_default();
    let mut out = Vec::with_capacity(json.len() / 4 + 16);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(blake3::hash(&json).as_bytes());
    out.extend(ruzstd::encoding::compress_to_vec(
        json.as_slice(),
        ruzstd::encoding::CompressionLevel::Fastest,
    ));
    out
}

/// Whether bytes start like a snapshot (for recognising an argument).
pub fn is_snapshot(head: &[u8]) -> bool {
    head.starts_with(MAGIC)
}

/// Reads a snapshot from bytes, checking everything it relies on.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    if bytes.len() < MAGIC.len() {
        return Err(if MAGIC.starts_with(bytes) && !bytes.is_empty() {
            SnapshotError::ShortHeader
        } else {
            SnapshotError::NotSnapshot
        });
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(SnapshotError::NotSnapshot);
    }
    let Some(v) = bytes.get(MAGIC.len()..MAGIC.len() + 4) else {
        return Err(SnapshotError::ShortHeader);
    };
    let version = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
    match version {
        0 => return Err(SnapshotError::Zero),
        FORMAT_VERSION => {}
        v => return Err(SnapshotError::Future(v)),
    }
    let Some(sum) = bytes.get(MAGIC.len() + 4..HEADER) else {
        return Err(SnapshotError::ShortHeader);
    };
    let body = &bytes[HEADER..];
    let mut decoder = ruzstd::decoding::StreamingDecoder::new(body)
        .map_err(|e| SnapshotError::Compressed(e.to_string()))?;
    // Snapshots compress about 4:1; reserving that up front saves the
    // copies of a growing buffer (a tenth of a diff's time).
    let mut json = Vec::with_capacity(body.len().saturating_mul(4).min(MAX_DECODED as usize));
    (&mut decoder)
        .take(MAX_DECODED + 1)
        .read_to_end(&mut json)
        .map_err(|e| SnapshotError::Compressed(e.to_string()))?;
    if json.len() as u64 > MAX_DECODED {
        return Err(SnapshotError::TooLarge);
    }
    if json.is_empty() {
        return Err(SnapshotError::Compressed("no content".into()));
    }
    if blake3::hash(&json).as_bytes() != sum {
        return Err(SnapshotError::Content(
            "the content does not match the digest in its header".into(),
        ));
    }
    let s: Snapshot =
        serde_json::from_slice(&json).map_err(|e| SnapshotError::Content(e.to_string()))?;
    check(&s)?;
    Ok(s)
}

/// What the diff relies on: known entry types, entries sorted and unique.
fn check(s: &Snapshot) -> Result<(), SnapshotError> {
    for (i, e) in s.entries.iter().enumerate() {
        if nodecheck_core::target::FileType::parse(&e.kind).is_none() {
            return Err(SnapshotError::Content(format!(
                "entry {}: unknown type {:?}",
                e.path, e.kind
            )));
        }
        if i > 0 && s.entries[i - 1].path >= e.path {
            return Err(SnapshotError::Content(format!(
                "entries are not sorted by path (at {})",
                e.path
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::{BPath, Entry, Meaning};
    use std::collections::BTreeMap;

    fn sample() -> Snapshot {
        Snapshot {
            source: "test".into(),
            tool: "test".into(),
            digest: "blake3".into(),
            user_names: BTreeMap::from([(0, "root".into())]),
            group_names: BTreeMap::new(),
            meaning: Meaning::default(),
            entries: vec![
                Entry {
                    path: BPath(b"/a".to_vec()),
                    kind: "file".into(),
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    size: 1,
                    mtime: 0,
                    link: None,
                    rdev: None,
                    digest: Some("00".into()),
                    xattrs: BTreeMap::new(),
                },
                Entry {
                    path: BPath(b"/b\xff".to_vec()),
                    kind: "symlink".into(),
                    mode: 0o777,
                    uid: 0,
                    gid: 0,
                    size: 1,
                    mtime: 0,
                    link: Some(BPath(b"\xfe".to_vec())),
                    rdev: None,
                    digest: None,
                    xattrs: BTreeMap::new(),
                },
            ],
            errors: Vec::new(),
        }
    }

    #[test]
    fn round_trip_keeps_byte_paths() {
        let s = sample();
        let bytes = encode(&s);
        assert!(is_snapshot(&bytes));
        assert_eq!(decode(&bytes).unwrap(), s);
    }

    #[test]
    fn every_damage_is_an_error_never_other_content() {
        let bytes = encode(&sample());
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // A flipped bit is an error, or (a zstd header field that does
        // not matter, such as a larger window) the very same snapshot:
        // never different content.
        let s = sample();
        for at in 0..bytes.len() {
            let mut b = bytes.clone();
            b[at] ^= 0x01;
            if let Ok(got) = decode(&b) {
                assert_eq!(got, s, "flip at {at}");
                assert!(at >= HEADER, "flip at {at} in the header");
            }
        }
        let mut future = bytes.clone();
        future[8] = 2;
        assert!(matches!(decode(&future), Err(SnapshotError::Future(2))));
        // Unsorted entries are refused even with a valid digest.
        let mut s = sample();
        s.entries.reverse();
        assert!(matches!(
            decode(&encode(&s)),
            Err(SnapshotError::Content(_))
        ));
    }
}
