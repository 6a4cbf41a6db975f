//! tar archives (ustar, GNU, PAX) through the `tar` crate: GNU long names
//! and PAX `path`/`linkpath` come from the crate, owners and mtime from PAX
//! records where present, xattrs from `SCHILY.xattr.*` (what
//! `tar --xattrs` writes). The crate seeks past each entry's content; the
//! index keeps the content's offset.

use std::io::Seek;

use tar::EntryType;

use super::{Attrs, Data, Index, Store};
use crate::target::{FileType, display_bytes};

const MAX_LINK: u64 = 4096;

/// Indexes the tar archive `store` holds; returns 1 (the archives read).
pub(crate) fn read(store: &Store, store_id: u32, index: &mut Index) -> Result<u64, String> {
    let mut file = store.file.try_clone().map_err(|e| e.to_string())?;
    // A spill file was just written: its offset is at the end.
    file.seek(std::io::SeekFrom::Start(0))
        .map_err(|e| e.to_string())?;
    let mut archive = tar::Archive::new(file);
    let entries = archive
        .entries_with_seek()
        .map_err(|e| format!("tar: {e}"))?;
    let mut last = String::from("(the first entry)");
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("tar entry after {last}: {e}"))?;
        let name = entry.path_bytes().into_owned();
        last = display_bytes(&name);
        let bad = |why: String| format!("entry {last}: {why}");
        let h = entry.header();
        let kind = h.entry_type();
        let mut attrs = Attrs {
            file_type: FileType::File,
            mode: h.mode().map_err(|e| bad(e.to_string()))? & 0o7777,
            uid: h.uid().map_err(|e| bad(e.to_string()))? as u32,
            gid: h.gid().map_err(|e| bad(e.to_string()))? as u32,
            size: 0,
            mtime: h.mtime().map_err(|e| bad(e.to_string()))? as i64,
            rdev: 0,
            link: Vec::new(),
            xattrs: Vec::new(),
        };
        let major = h.device_major().ok().flatten().unwrap_or(0);
        let minor = h.device_minor().ok().flatten().unwrap_or(0);
        if let Some(pax) = entry.pax_extensions().map_err(|e| bad(e.to_string()))? {
            for ext in pax {
                let ext = ext.map_err(|e| bad(format!("PAX record: {e}")))?;
                let key = ext.key_bytes();
                let num = || {
                    std::str::from_utf8(ext.value_bytes())
                        .ok()
                        .and_then(|v| v.split('.').next()?.parse::<i64>().ok())
                };
                if let Some(x) = key.strip_prefix(b"SCHILY.xattr.") {
                    attrs.xattrs.push((x.to_vec(), ext.value_bytes().to_vec()));
                } else if key == b"uid" {
                    attrs.uid = num().ok_or_else(|| bad("bad PAX uid".into()))? as u32;
                } else if key == b"gid" {
                    attrs.gid = num().ok_or_else(|| bad("bad PAX gid".into()))? as u32;
                } else if key == b"mtime" {
                    attrs.mtime = num().ok_or_else(|| bad("bad PAX mtime".into()))?;
                }
            }
        }
        let size = entry.size();
        let offset = entry.raw_file_position();
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                if offset.checked_add(size).is_none_or(|e| e > store.len) {
                    return Err(bad(format!(
                        "its {size} bytes of content run past the end of the archive ({} bytes)",
                        store.len
                    )));
                }
                attrs.size = size;
                let data = Data {
                    store: store_id,
                    offset,
                };
                index.insert(&name, attrs, Some(data))?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| bad("a hard link without a target".into()))?
                    .into_owned();
                index.link(&name, &target)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| bad("a symlink without a target".into()))?
                    .into_owned();
                if target.len() as u64 > MAX_LINK {
                    return Err(bad("symlink text is too long".into()));
                }
                attrs.file_type = FileType::Symlink;
                attrs.link = target;
                index.insert(&name, attrs, None)?;
            }
            EntryType::Directory => {
                attrs.file_type = FileType::Directory;
                index.insert(&name, attrs, None)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                attrs.file_type = match kind {
                    EntryType::Char => FileType::Char,
                    EntryType::Block => FileType::Block,
                    _ => FileType::Fifo,
                };
                attrs.rdev = libc::makedev(major, minor);
                index.insert(&name, attrs, None)?;
            }
            // Records the crate has folded into the next entry.
            EntryType::XGlobalHeader | EntryType::XHeader => {}
            other => {
                return Err(bad(format!(
                    "unsupported tar entry type {:?}",
                    other.as_byte() as char
                )));
            }
        }
    }
    Ok(1)
}
