//! tar archives (ustar, GNU, PAX) through the `tar` crate: GNU long names
//! and PAX `path`/`linkpath` come from the crate, owners and mtime from PAX
//! records where present, xattrs from `SCHILY.xattr.*` (what
//! `tar --xattrs` writes). The crate seeks past each entry's content; the
//! index keeps the content's offset.

use std::io::{Read, Seek};

use tar::EntryType;

use super::{Attrs, Data, Index, Store};
use crate::target::{FileType, display_bytes};

const MAX_LINK: u64 = 4096;

/// A window `[start, start + len)` of a file, as a seekable reader: a
/// layer inside an outer archive.
pub(crate) struct Window {
    file: std::fs::File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Window {
    pub(crate) fn new(file: &std::fs::File, start: u64, len: u64) -> std::io::Result<Window> {
        Ok(Window {
            file: file.try_clone()?,
            start,
            len,
            pos: 0,
        })
    }

    pub(crate) fn file(&self) -> &std::fs::File {
        &self.file
    }

    pub(crate) fn start(&self) -> u64 {
        self.start
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }
}

impl Read for Window {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let left = self.len.saturating_sub(self.pos);
        let n = buf.len().min(left.min(usize::MAX as u64) as usize);
        let got = self.file.read_at(&mut buf[..n], self.start + self.pos)?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl Seek for Window {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let p = match to {
            std::io::SeekFrom::Start(p) => Some(p),
            std::io::SeekFrom::End(d) => self.len.checked_add_signed(d),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = p.ok_or_else(|| std::io::Error::other("seek out of range"))?;
        Ok(self.pos)
    }
}

/// Indexes the tar archive `store` holds; returns 1 (the archives read).
pub(crate) fn read(store: &Store, store_id: u32, index: &mut Index) -> Result<u64, String> {
    let window = Window::new(&store.file, 0, store.len).map_err(|e| e.to_string())?;
    read_window(window, store_id, index, false)?;
    Ok(1)
}

/// Paths inside an image, as bytes.
pub(crate) type Paths = Vec<Vec<u8>>;

/// The whiteouts of an OCI layer: names deleted (`.wh.NAME`) and
/// directories made opaque (`.wh..wh..opq`), as paths.
pub(crate) fn whiteouts(window: Window) -> Result<(Paths, Paths), String> {
    let mut archive = tar::Archive::new(window);
    let entries = archive
        .entries_with_seek()
        .map_err(|e| format!("tar: {e}"))?;
    let (mut gone, mut opaque) = (Vec::new(), Vec::new());
    for entry in entries {
        let entry = entry.map_err(|e| format!("tar: {e}"))?;
        let name = entry.path_bytes().into_owned();
        let (dir, base) = match name.iter().rposition(|&b| b == b'/') {
            Some(i) => (&name[..=i], &name[i + 1..]),
            None => (&b""[..], &name[..]),
        };
        if base == b".wh..wh..opq" {
            opaque.push(dir.to_vec());
        } else if let Some(hidden) = base.strip_prefix(b".wh.") {
            if hidden.is_empty() || hidden == b"." || hidden == b".." || hidden.starts_with(b".wh.")
            {
                return Err(format!(
                    "entry {}: a malformed whiteout",
                    display_bytes(&name)
                ));
            }
            let mut p = dir.to_vec();
            p.extend_from_slice(hidden);
            gone.push(p);
        }
    }
    Ok((gone, opaque))
}

/// Indexes a tar read through `window` (offsets in the index are the
/// window's plus its start). `layer`: whiteout entries are skipped (the
/// caller applied them first).
pub(crate) fn read_window(
    window: Window,
    store_id: u32,
    index: &mut Index,
    layer: bool,
) -> Result<(), String> {
    let base = window.start;
    let store_len = window.len;
    let mut archive = tar::Archive::new(window);
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
        if layer
            && name
                .rsplit(|&b| b == b'/')
                .next()
                .is_some_and(|b| b.starts_with(b".wh."))
        {
            continue;
        }
        let size = entry.size();
        let offset = entry.raw_file_position();
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                if offset.checked_add(size).is_none_or(|e| e > store_len) {
                    return Err(bad(format!(
                        "its {size} bytes of content run past the end of the archive ({store_len} bytes)"
                    )));
                }
                attrs.size = size;
                let data = Data {
                    store: store_id,
                    offset: base + offset,
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
    Ok(())
}
