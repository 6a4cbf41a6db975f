//! cpio archives: newc (`070701`), crc (`070702`) and odc (`070707`).
//!
//! A small reader of its own: the `cpio` crate reads entries as a stream
//! and hides the data offset, and the index needs the offset (content is
//! read later, on demand, at that offset). Semantics follow the kernel's
//! initramfs unpacker (init/initramfs.c): several archives one after the
//! other, a later name replaces an earlier one, a directory met again
//! takes the new attributes, and names of one hard-link set (same inode,
//! device and mode, `nlink > 1`) share the node whose content comes with
//! whichever name carries data (GNU cpio writes it with the last).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, Read};

use super::{Attrs, Data, Index, KEPT, Kept, read_full_at};
use crate::target::{FileType, display_bytes};

/// The longest name accepted (the kernel's `PATH_MAX`).
const MAX_NAME: u64 = 4096;
/// The longest symlink text accepted.
const MAX_LINK: u64 = 4096;

pub(crate) fn is_magic(head: &[u8]) -> bool {
    head.starts_with(b"070701") || head.starts_with(b"070702") || head.starts_with(b"070707")
}

/// One header, its fields decoded.
struct Header {
    ino: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    mtime: i64,
    size: u64,
    dev: (u64, u64),
    rdev: u64,
    name: Vec<u8>,
    /// Where the content starts in the file.
    data: u64,
    /// Where the next header may start.
    next: u64,
}

fn field(bytes: &[u8], radix: u32, at: u64, what: &str) -> Result<u64, String> {
    let s = std::str::from_utf8(bytes).ok();
    s.and_then(|s| u64::from_str_radix(s, radix).ok())
        .ok_or_else(|| {
            format!(
                "cpio header at offset {at}: field {what} is not a number: {:?}",
                display_bytes(bytes)
            )
        })
}

fn align4(n: u64) -> u64 {
    n.div_ceil(4) * 4
}

/// Where headers, names and content are read from: a file read at any
/// offset, or a stream read once, forward only.
pub(crate) trait Src {
    /// Reads up to `buf.len()` bytes at `pos` (fewer only at the end).
    fn read_at(&mut self, buf: &mut [u8], pos: u64) -> io::Result<usize>;
    /// The byte at `pos` without reading past it; `None` at the end.
    fn peek(&mut self, pos: u64) -> io::Result<Option<u8>>;
}

impl Src for &File {
    fn read_at(&mut self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        read_full_at(self, buf, pos)
    }

    fn peek(&mut self, pos: u64) -> io::Result<Option<u8>> {
        let mut b = [0u8; 1];
        Ok((read_full_at(self, &mut b, pos)? == 1).then_some(b[0]))
    }
}

/// A stream read forward: a read at a later offset skips what lies
/// between; an earlier one is a bug of the reader, an error.
pub(crate) struct Forward<R> {
    pub r: R,
    pub pos: u64,
}

impl<R: BufRead> Src for Forward<R> {
    fn peek(&mut self, pos: u64) -> io::Result<Option<u8>> {
        if self.read_at(&mut [], pos)? == 0 && self.pos < pos {
            return Ok(None);
        }
        Ok(self.r.fill_buf()?.first().copied())
    }

    fn read_at(&mut self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        if pos < self.pos {
            return Err(io::Error::other(format!(
                "offset {pos} read after offset {} in a stream",
                self.pos
            )));
        }
        if pos > self.pos {
            let skip = pos - self.pos;
            let n = io::copy(&mut (&mut self.r).take(skip), &mut io::sink())?;
            self.pos += n;
            if n < skip {
                return Ok(0);
            }
        }
        let mut done = 0;
        while done < buf.len() {
            match self.r.read(&mut buf[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pos += done as u64;
        Ok(done)
    }
}

/// The header at `pos`, or an error naming the offset.
fn header(file: &mut impl Src, pos: u64, len: u64) -> Result<Header, String> {
    let io = |e: std::io::Error| format!("cpio header at offset {pos}: {e}");
    let mut buf = [0u8; 110];
    let n = file.read_at(&mut buf, pos).map_err(io)?;
    let odc = buf.starts_with(b"070707");
    let hlen = if odc { 76 } else { 110 };
    if n < 6 || !is_magic(&buf) {
        return Err(format!(
            "offset {pos}: no cpio header (truncated archive or wrong magic)"
        ));
    }
    if n < hlen {
        return Err(format!("cpio header at offset {pos}: truncated"));
    }
    let h = &buf[..hlen];
    let (ino, mode, uid, gid, nlink, mtime, size, dev, rdev, namesize);
    if odc {
        let f = |a: usize, b: usize, what| field(&h[a..b], 8, pos, what);
        let d = f(6, 12, "dev")?;
        dev = (d >> 8, d & 0xff);
        ino = f(12, 18, "ino")?;
        mode = f(18, 24, "mode")?;
        uid = f(24, 30, "uid")?;
        gid = f(30, 36, "gid")?;
        nlink = f(36, 42, "nlink")?;
        let r = f(42, 48, "rdev")?;
        rdev = libc::makedev((r >> 8) as u32, (r & 0xff) as u32);
        mtime = f(48, 59, "mtime")?;
        namesize = f(59, 65, "namesize")?;
        size = f(65, 76, "filesize")?;
    } else {
        let f = |i: usize, what| field(&h[6 + 8 * i..14 + 8 * i], 16, pos, what);
        ino = f(0, "ino")?;
        mode = f(1, "mode")?;
        uid = f(2, "uid")?;
        gid = f(3, "gid")?;
        nlink = f(4, "nlink")?;
        mtime = f(5, "mtime")?;
        size = f(6, "filesize")?;
        dev = (f(7, "devmajor")?, f(8, "devminor")?);
        rdev = libc::makedev(f(9, "rdevmajor")? as u32, f(10, "rdevminor")? as u32);
        namesize = f(11, "namesize")?;
    }
    if namesize == 0 || namesize > MAX_NAME {
        return Err(format!(
            "cpio header at offset {pos}: name size {namesize} is out of range"
        ));
    }
    let name_at = pos + hlen as u64;
    let mut name = vec![0; namesize as usize];
    let got = file.read_at(&mut name, name_at).map_err(io)?;
    if got < name.len() {
        return Err(format!("cpio header at offset {pos}: truncated name"));
    }
    // The name ends with NUL (counted in namesize).
    if let Some(nul) = name.iter().position(|&b| b == 0) {
        name.truncate(nul);
    }
    let data = if odc {
        name_at + namesize
    } else {
        align4(name_at + namesize)
    };
    let end = data.checked_add(size).filter(|&e| e <= len).ok_or_else(|| {
        format!(
            "entry {}: its {size} bytes of content run past the end of the archive ({len} bytes)",
            display_bytes(&name)
        )
    })?;
    let next = if odc { end } else { align4(end) };
    Ok(Header {
        ino,
        mode: mode as u32,
        uid: uid as u32,
        gid: gid as u32,
        nlink,
        mtime: mtime as i64,
        size,
        dev,
        rdev,
        name,
        data,
        next,
    })
}

/// Visits the headers of the archive at `pos` up to its trailer; returns
/// the offset after the trailer.
fn headers<S: Src>(
    file: &mut S,
    mut pos: u64,
    len: u64,
    mut f: impl FnMut(&mut S, Header) -> Result<(), String>,
) -> Result<u64, String> {
    loop {
        let h = header(file, pos, len)?;
        if h.name == b"TRAILER!!!" {
            return Ok(h.next);
        }
        pos = h.next;
        f(file, h)?;
    }
}

/// The end of the cpio archive at `pos` (after its trailer).
pub(crate) fn archive_end(file: &File, pos: u64, len: u64) -> std::io::Result<u64> {
    headers(&mut { file }, pos, len, |_, _| Ok(()))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Indexes every archive of `src` (`len` bytes; several archives, one
/// after the other, with zero padding between); content is left where it
/// lies (`store_id` at its offset) except what `keep` takes. Returns how
/// many archives there were and where the last ended.
pub(crate) fn read(
    src: &mut impl Src,
    len: u64,
    store_id: u32,
    index: &mut Index,
    keep: &mut Kept,
) -> Result<(u64, u64), String> {
    let mut pos = 0;
    let mut archives = 0;
    while pos < len {
        // Padding between archives; the end of a stream.
        match src.peek(pos).map_err(|e| e.to_string())? {
            None => break,
            Some(0) => {
                pos += 1;
                continue;
            }
            Some(_) => {}
        }
        // The kernel forgets hard-link sets at each trailer.
        let mut links: HashMap<(u64, u64, u64, u32), usize> = HashMap::new();
        pos = headers(src, pos, len, |src, h| {
            add(src, store_id, index, &mut links, keep, h)
        })?;
        archives += 1;
    }
    if archives == 0 {
        return Err("no cpio archive in the image".into());
    }
    Ok((archives, pos))
}

fn add(
    src: &mut impl Src,
    store_id: u32,
    index: &mut Index,
    links: &mut HashMap<(u64, u64, u64, u32), usize>,
    keep: &mut Kept,
    h: Header,
) -> Result<(), String> {
    let ft = match h.mode & libc::S_IFMT {
        libc::S_IFREG => FileType::File,
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFCHR => FileType::Char,
        libc::S_IFBLK => FileType::Block,
        libc::S_IFIFO => FileType::Fifo,
        libc::S_IFSOCK => FileType::Socket,
        other => {
            return Err(format!(
                "entry {}: unknown file type {other:#o}",
                display_bytes(&h.name)
            ));
        }
    };
    let mut attrs = Attrs {
        file_type: ft,
        mode: h.mode & 0o7777,
        uid: h.uid,
        gid: h.gid,
        size: 0,
        mtime: h.mtime,
        rdev: h.rdev,
        link: Vec::new(),
        xattrs: Vec::new(),
    };
    let mut data = Data {
        store: store_id,
        offset: h.data,
    };
    // Small content (configuration files first) kept in memory while the
    // stream passes, so that reading it later decompresses nothing.
    if ft == FileType::File
        && h.size > 0
        && let Some(at) = keep.room(&h.name, h.size)
    {
        let buf = keep.take(at, h.size);
        let got = src.read_at(buf, h.data).map_err(|e| e.to_string())?;
        if got < buf.len() {
            return Err(format!(
                "entry {}: its {} bytes of content run past the end of the archive",
                display_bytes(&h.name),
                h.size
            ));
        }
        data = Data {
            store: KEPT,
            offset: at,
        };
    } else if ft == FileType::File
        && h.size > 0
        && let Some((at, len)) = keep.head_room(h.data, h.size)
    {
        let buf = keep.take(at, len);
        if src.read_at(buf, h.data).map_err(|e| e.to_string())? < buf.len() {
            return Err(format!(
                "entry {}: its {} bytes of content run past the end of the archive",
                display_bytes(&h.name),
                h.size
            ));
        }
    }
    match ft {
        FileType::Symlink => {
            if h.size > MAX_LINK {
                return Err(format!(
                    "entry {}: symlink text of {} bytes is too long",
                    display_bytes(&h.name),
                    h.size
                ));
            }
            let mut text = vec![0; h.size as usize];
            if src.read_at(&mut text, h.data).map_err(|e| e.to_string())? < text.len() {
                return Err(format!(
                    "entry {}: its symlink text runs past the end of the archive",
                    display_bytes(&h.name)
                ));
            }
            attrs.link = text;
            index.insert(&h.name, attrs, None)?;
        }
        FileType::File if h.nlink > 1 => {
            let key = (h.dev.0, h.dev.1, h.ino, h.mode);
            match links.get(&key) {
                Some(&node) => {
                    let n = index.link_node(&h.name, node)?;
                    if h.size > 0 {
                        index.set_data(n, h.size, data);
                    }
                }
                None => {
                    attrs.size = h.size;
                    let d = (h.size > 0).then_some(data);
                    let n = index.insert(&h.name, attrs, d)?;
                    links.insert(key, n);
                }
            }
        }
        FileType::File => {
            attrs.size = h.size;
            index.insert(&h.name, attrs, Some(data))?;
        }
        _ => {
            index.insert(&h.name, attrs, None)?;
        }
    }
    Ok(())
}
