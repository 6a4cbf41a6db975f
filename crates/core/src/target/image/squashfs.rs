//! squashfs v4, read by its tables.
//!
//! Opening reads the superblock, then walks the directory table from the
//! root inode: each entry's inode (type, mode, owner through the uid/gid
//! table, mtime, link text, device number, xattrs through the xattr
//! table, hard links by inode number) goes into the [`Index`]. No data
//! block is read for that: metadata checks touch only the tables.
//!
//! A regular file keeps its *layout* (where its blocks start, their
//! on-disk sizes, its tail in a fragment). A read decompresses only the
//! blocks it covers, through a small cache of decompressed blocks shared
//! by the whole image ([`CACHE_BLOCKS`] of at most 1 MiB each), so an ELF
//! check that reads many small pieces of one file decompresses each block
//! once.
//!
//! A small reader of its own rather than `backhand` (0.25.5): backhand
//! does not read xattrs (a TODO in its `v4/entry.rs`), its file tree drops
//! inode numbers (so a hard link cannot be told from deduplicated data),
//! its directory entries are crate-private (`Dir`'s fields are
//! `pub(crate)`), and xz goes through a static build of the C liblzma.
//! The format is small (Documentation/filesystems/squashfs.rst and
//! squashfs-tools' `squashfs_fs.h`); the decoders are the ones the stream
//! reader already uses (flate2, lzma-rust2, zstd, lz4_flex).
//!
//! Hostile input: every offset and length is checked against the file
//! and the decompressed table before use, a metadata block may not grow
//! past 8 KiB nor a data block past the block size, the metadata decoded
//! while indexing is capped ([`metadata_cap`]), a directory met twice is
//! a loop, and names holding `/`, `.` or `..` are refused.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use super::{Attrs, Data, Index, read_full_at};
use crate::target::{FileType, display_bytes};

/// The first bytes of a little-endian squashfs (`hsqs`).
pub(crate) const MAGIC: &[u8; 4] = b"hsqs";
/// Decompressed data blocks kept for reuse.
const CACHE_BLOCKS: usize = 16;
/// A metadata block's largest decompressed size.
const META: usize = 8192;
/// No fragment / no table.
const NONE32: u32 = u32::MAX;
const NONE64: u64 = u64::MAX;

/// The compressor of a squashfs (its superblock's id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compressor {
    Gzip,
    Lzma,
    Lzo,
    Xz,
    Lz4,
    Zstd,
}

impl Compressor {
    fn from_id(id: u16) -> Option<Compressor> {
        Some(match id {
            1 => Compressor::Gzip,
            2 => Compressor::Lzma,
            3 => Compressor::Lzo,
            4 => Compressor::Xz,
            5 => Compressor::Lz4,
            6 => Compressor::Zstd,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Compressor::Gzip => "gzip",
            Compressor::Lzma => "lzma",
            Compressor::Lzo => "lzo",
            Compressor::Xz => "xz",
            Compressor::Lz4 => "lz4",
            Compressor::Zstd => "zstd",
        }
    }
}

/// Decompresses `src` (one squashfs block) into at most `max` bytes.
fn decompress(comp: Compressor, src: &[u8], max: usize) -> Result<Vec<u8>, String> {
    let too_big = || {
        format!(
            "a {} block decompresses to more than {max} bytes",
            comp.as_str()
        )
    };
    let bad = |e: &dyn std::fmt::Display| format!("corrupt {} block: {e}", comp.as_str());
    match comp {
        Compressor::Gzip => {
            let mut out = Vec::with_capacity(max);
            let mut d = flate2::Decompress::new(true);
            match d.decompress_vec(src, &mut out, flate2::FlushDecompress::Finish) {
                Ok(flate2::Status::StreamEnd) => Ok(out),
                Ok(_) if out.len() >= max => Err(too_big()),
                Ok(_) => Err(bad(&"the zlib stream ends early")),
                Err(e) => Err(bad(&e)),
            }
        }
        Compressor::Xz => {
            let r = lzma_rust2::XzReader::new_mem_limit(src, false, 64 << 10);
            read_capped(r, max)
                .map_err(|e| bad(&e))?
                .ok_or_else(too_big)
        }
        Compressor::Lzma => {
            // The .lzma header (props, dictionary, size), as squashfs-tools'
            // lzma_wrapper writes it; the dictionary is capped at 64 MiB.
            let r =
                lzma_rust2::LzmaReader::new_mem_limit(src, 64 << 10, None).map_err(|e| bad(&e))?;
            read_capped(r, max)
                .map_err(|e| bad(&e))?
                .ok_or_else(too_big)
        }
        Compressor::Lz4 => {
            let mut out = vec![0; max];
            let n = lz4_flex::block::decompress_into(src, &mut out).map_err(|e| bad(&e))?;
            out.truncate(n);
            Ok(out)
        }
        Compressor::Zstd => {
            // One decoder context per thread: creating one per block
            // showed in profiles.
            thread_local! {
                static ZSTD: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
                    const { std::cell::RefCell::new(None) };
            }
            let mut out = Vec::with_capacity(max);
            ZSTD.with(|z| {
                let mut z = z.borrow_mut();
                if z.is_none() {
                    *z = Some(zstd::bulk::Decompressor::new().map_err(|e| bad(&e))?);
                }
                let d = z.as_mut().expect("set above");
                d.decompress_to_buffer(src, &mut out).map_err(|e| bad(&e))
            })?;
            Ok(out)
        }
        Compressor::Lzo => {
            Err("lzo compression is not supported (repack with -comp gzip, xz, zstd or lz4)".into())
        }
    }
}

/// Reads `r` to its end, or `None` when it holds more than `max` bytes.
fn read_capped(r: impl Read, max: usize) -> io::Result<Option<Vec<u8>>> {
    let mut out = Vec::with_capacity(max.min(1 << 20));
    r.take(max as u64 + 1).read_to_end(&mut out)?;
    Ok((out.len() <= max).then_some(out))
}

/// What metadata (tables) may decompress to while indexing an image of
/// `len` bytes: 8 × its size + 32 MiB. Real tables are a few MB for a
/// 60,000-entry rootfs; a table of tiny blocks that each inflate to 8 KiB
/// stops here.
pub(crate) fn metadata_cap(len: u64) -> u64 {
    len.saturating_mul(8).saturating_add(32 << 20)
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64le(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Where a regular file's content lies.
#[derive(Debug)]
pub(crate) struct Layout {
    size: u64,
    /// The first block's offset in the image.
    start: u64,
    /// Its blocks' on-disk sizes, in [`Squash::sizes`].
    sizes_at: usize,
    blocks: usize,
    /// The tail: fragment index and offset in it.
    frag: Option<(u32, u32)>,
}

/// A squashfs image's content reader (shared by the files of one target).
#[derive(Debug)]
pub(crate) struct Squash {
    file: File,
    len: u64,
    comp: Compressor,
    block_size: u32,
    /// Fragment blocks: offset and on-disk size word.
    frags: Vec<(u64, u32)>,
    files: Vec<Layout>,
    sizes: Vec<u32>,
    cache: Mutex<Vec<(u64, Arc<Vec<u8>>)>>,
}

/// What [`read`] found besides the index.
pub(crate) struct Read_ {
    pub squash: Arc<Squash>,
    pub compressor: Compressor,
    /// The sum of the regular files' sizes (each hard-link set once).
    pub content: u64,
}

/// The metadata (inode, directory, table) reader: decompressed 8 KiB
/// blocks by their position, decoded once each, within the cap.
struct Meta<'a> {
    file: &'a File,
    len: u64,
    comp: Compressor,
    blocks: HashMap<u64, (Arc<Vec<u8>>, u64)>,
    decoded: u64,
    cap: u64,
}

impl<'f> Meta<'f> {
    /// The block at `pos` and where the next one starts.
    fn block(&mut self, pos: u64) -> Result<(Arc<Vec<u8>>, u64), String> {
        if let Some(b) = self.blocks.get(&pos) {
            return Ok(b.clone());
        }
        let mut head = [0; 2];
        if pos.checked_add(2).is_none_or(|e| e > self.len)
            || read_full_at(self.file, &mut head, pos).map_err(|e| e.to_string())? < 2
        {
            return Err(format!(
                "metadata block at offset {pos} lies past the end of the image"
            ));
        }
        let word = u16::from_le_bytes(head);
        let size = (word & 0x7fff) as u64;
        if size == 0 || size as usize > META || pos + 2 + size > self.len {
            return Err(format!("metadata block at offset {pos}: bad size {size}"));
        }
        let mut raw = vec![0; size as usize];
        if read_full_at(self.file, &mut raw, pos + 2).map_err(|e| e.to_string())? < raw.len() {
            return Err(format!("metadata block at offset {pos} is truncated"));
        }
        let data = if word & 0x8000 != 0 {
            raw
        } else {
            decompress(self.comp, &raw, META)
                .map_err(|e| format!("metadata block at offset {pos}: {e}"))?
        };
        self.decoded += data.len() as u64;
        if self.decoded > self.cap {
            return Err(format!(
                "the tables decompress to more than {} bytes (8 × the image + 32 MiB)",
                self.cap
            ));
        }
        let b = (Arc::new(data), pos + 2 + size);
        self.blocks.insert(pos, b.clone());
        Ok(b)
    }

    /// `n` bytes from block `pos`, offset `off`, running on through the
    /// following blocks; returns them and where they end.
    fn read(
        &mut self,
        mut pos: u64,
        mut off: usize,
        n: usize,
    ) -> Result<(Vec<u8>, u64, usize), String> {
        let mut out = Vec::with_capacity(n.min(1 << 20));
        loop {
            let (b, next) = self.block(pos)?;
            if off > b.len() {
                return Err(format!("offset {off} past the metadata block at {pos}"));
            }
            let take = (n - out.len()).min(b.len() - off);
            out.extend_from_slice(&b[off..off + take]);
            off += take;
            if out.len() == n {
                return Ok((out, pos, off));
            }
            pos = next;
            off = 0;
        }
    }

    /// A cursor at (block `pos`, `off`) for reading fields one by one.
    fn cursor<'m>(&'m mut self, pos: u64, off: usize) -> Cursor<'m, 'f> {
        Cursor {
            meta: self,
            pos,
            off,
        }
    }
}

struct Cursor<'m, 'f> {
    meta: &'m mut Meta<'f>,
    pos: u64,
    off: usize,
}

impl Cursor<'_, '_> {
    fn take(&mut self, n: usize) -> Result<Vec<u8>, String> {
        let (out, pos, off) = self.meta.read(self.pos, self.off, n)?;
        (self.pos, self.off) = (pos, off);
        Ok(out)
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16le(&self.take(2)?, 0))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32le(&self.take(4)?, 0))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64le(&self.take(8)?, 0))
    }
}

struct Super {
    block_size: u32,
    frag_count: u32,
    comp: Compressor,
    flags: u16,
    id_count: u16,
    root: u64,
    bytes_used: u64,
    id_table: u64,
    xattr_table: u64,
    inode_table: u64,
    dir_table: u64,
    frag_table: u64,
}

fn superblock(file: &File, len: u64) -> Result<Super, String> {
    let mut b = [0; 96];
    let n = read_full_at(file, &mut b, 0).map_err(|e| e.to_string())?;
    if n < 96 {
        return Err("truncated: shorter than a squashfs superblock (96 bytes)".into());
    }
    if &b[..4] != MAGIC {
        return Err("not a squashfs (no `hsqs` magic)".into());
    }
    let (major, minor) = (u16le(&b, 28), u16le(&b, 30));
    if (major, minor) != (4, 0) {
        return Err(format!("squashfs {major}.{minor} is not read (only 4.0)"));
    }
    let id = u16le(&b, 20);
    let comp = Compressor::from_id(id).ok_or(format!("unknown compressor id {id}"))?;
    let s = Super {
        block_size: u32le(&b, 12),
        frag_count: u32le(&b, 16),
        comp,
        flags: u16le(&b, 24),
        id_count: u16le(&b, 26),
        root: u64le(&b, 32),
        bytes_used: u64le(&b, 40),
        id_table: u64le(&b, 48),
        xattr_table: u64le(&b, 56),
        inode_table: u64le(&b, 64),
        dir_table: u64le(&b, 72),
        frag_table: u64le(&b, 80),
    };
    let log = u16le(&b, 22) as u32;
    if !(4096..=1 << 20).contains(&s.block_size)
        || !s.block_size.is_power_of_two()
        || s.block_size.trailing_zeros() != log
    {
        return Err(format!("bad block size {} (log {log})", s.block_size));
    }
    if s.bytes_used > len {
        return Err(format!(
            "truncated: the superblock says {} bytes, the file has {len}",
            s.bytes_used
        ));
    }
    for (what, at) in [
        ("inode table", s.inode_table),
        ("directory table", s.dir_table),
        ("id table", s.id_table),
    ] {
        if at >= s.bytes_used {
            return Err(format!(
                "{what} at {at} lies past the end ({})",
                s.bytes_used
            ));
        }
    }
    if s.dir_table < s.inode_table {
        return Err("the directory table lies before the inode table".into());
    }
    Ok(s)
}

/// Reads an indexed table: `count` entries of `size` bytes in metadata
/// blocks whose positions are the u64 list at `at`.
fn table(
    meta: &mut Meta<'_>,
    at: u64,
    count: u64,
    size: usize,
    what: &str,
) -> Result<Vec<u8>, String> {
    let bytes = count * size as u64;
    let nblocks = bytes.div_ceil(META as u64);
    if at.checked_add(nblocks * 8).is_none_or(|e| e > meta.len) {
        return Err(format!("the {what} index lies past the end of the image"));
    }
    let mut index = vec![0; nblocks as usize * 8];
    read_full_at(meta.file, &mut index, at).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(bytes.min(1 << 20) as usize);
    for i in 0..nblocks as usize {
        let pos = u64le(&index, i * 8);
        let want = (bytes as usize - out.len()).min(META);
        let (b, _) = meta.block(pos).map_err(|e| format!("{what}: {e}"))?;
        if b.len() < want {
            return Err(format!("{what}: block {i} is short"));
        }
        out.extend_from_slice(&b[..want]);
    }
    Ok(out)
}

/// One inode as read from the inode table.
struct Inode {
    number: u32,
    attrs: Attrs,
    /// Directories: (table block, offset, listing size).
    dir: Option<(u32, u16, u32)>,
    /// Regular files.
    layout: Option<Layout>,
    xattr: u32,
}

struct Reader<'a> {
    meta: Meta<'a>,
    s: Super,
    ids: Vec<u32>,
    xattr: Option<Xattrs>,
    files: Vec<Layout>,
    sizes: Vec<u32>,
    content: u64,
    /// Entries of the fragment table.
    nfrags: usize,
}

/// One inode's extended attributes: (name, value) pairs.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

struct Xattrs {
    kv_start: u64,
    ids: Vec<u8>,
    cache: HashMap<u32, Pairs>,
}

impl Reader<'_> {
    fn id(&self, i: u16) -> Result<u32, String> {
        self.ids.get(i as usize).copied().ok_or(format!(
            "id index {i} past the id table ({})",
            self.ids.len()
        ))
    }

    /// The inode at reference `r` (table block << 16 | offset).
    fn inode(&mut self, r: u64) -> Result<Inode, String> {
        let block = r >> 16;
        let off = (r & 0xffff) as usize;
        let pos = self.s.inode_table + block;
        if pos >= self.s.dir_table {
            return Err(format!(
                "inode reference {r:#x} lies outside the inode table"
            ));
        }
        let s_bs = self.s.block_size as u64;
        let cap = self.meta.cap;
        let mut c = self.meta.cursor(pos, off);
        let h = c.take(16)?;
        let (kind, perm, uid, gid) = (u16le(&h, 0), u16le(&h, 2), u16le(&h, 4), u16le(&h, 6));
        let mtime = u32le(&h, 8);
        let number = u32le(&h, 12);
        let mut dir = None;
        let mut layout = None;
        let mut link = Vec::new();
        let mut rdev = 0;
        let mut xattr = NONE32;
        let mut size = 0;
        let file_type = match kind {
            1 | 8 => FileType::Directory,
            2 | 9 => FileType::File,
            3 | 10 => FileType::Symlink,
            4 | 11 => FileType::Block,
            5 | 12 => FileType::Char,
            6 | 13 => FileType::Fifo,
            7 | 14 => FileType::Socket,
            k => return Err(format!("inode {number}: unknown type {k}")),
        };
        match kind {
            1 => {
                let b = c.take(16)?;
                dir = Some((u32le(&b, 0), u16le(&b, 10), u16le(&b, 8) as u32));
            }
            8 => {
                let b = c.take(24)?;
                dir = Some((u32le(&b, 8), u16le(&b, 18), u32le(&b, 4)));
                xattr = u32le(&b, 20);
            }
            2 | 9 => {
                let (start, frag, frag_off, fsize) = if kind == 2 {
                    let b = c.take(16)?;
                    (
                        u32le(&b, 0) as u64,
                        u32le(&b, 4),
                        u32le(&b, 8),
                        u32le(&b, 12) as u64,
                    )
                } else {
                    let b = c.take(40)?;
                    xattr = u32le(&b, 36);
                    (u64le(&b, 0), u32le(&b, 28), u32le(&b, 32), u64le(&b, 8))
                };
                let blocks = if frag == NONE32 {
                    fsize.div_ceil(s_bs)
                } else {
                    fsize / s_bs
                };
                // The block list lies in the inode table: a size far past
                // the image asks for more list than the table holds.
                if blocks.saturating_mul(4) > cap {
                    return Err(format!(
                        "inode {number}: size {fsize} needs {blocks} blocks, more than the inode table can list"
                    ));
                }
                if frag != NONE32 && frag as usize >= self.nfrags {
                    return Err(format!(
                        "inode {number}: fragment {frag} past the fragment table"
                    ));
                }
                let list = c.take(blocks as usize * 4)?;
                let sizes_at = self.sizes.len();
                self.sizes.extend(list.chunks_exact(4).map(|w| u32le(w, 0)));
                size = fsize;
                layout = Some(Layout {
                    size: fsize,
                    start,
                    sizes_at,
                    blocks: blocks as usize,
                    frag: (frag != NONE32).then_some((frag, frag_off)),
                });
            }
            3 | 10 => {
                let b = c.take(8)?;
                let n = u32le(&b, 4);
                if n > 4096 {
                    return Err(format!(
                        "inode {number}: symlink text of {n} bytes (over 4 KiB)"
                    ));
                }
                link = c.take(n as usize)?;
                if kind == 10 {
                    xattr = c.u32()?;
                }
            }
            4 | 5 | 11 | 12 => {
                let b = c.take(8)?;
                let d = u32le(&b, 4);
                rdev = libc::makedev((d >> 8) & 0xfff, (d & 0xff) | ((d >> 12) & 0xfff00));
                if kind > 10 {
                    xattr = c.u32()?;
                }
            }
            _ => {
                c.u32()?;
                if kind > 10 {
                    xattr = c.u32()?;
                }
            }
        }
        let attrs = Attrs {
            file_type,
            mode: perm as u32 & 0o7777,
            uid: self.id(uid)?,
            gid: self.id(gid)?,
            size,
            mtime: mtime as i64,
            rdev,
            link,
            xattrs: Vec::new(),
        };
        Ok(Inode {
            number,
            attrs,
            dir,
            layout,
            xattr,
        })
    }

    /// The xattrs of xattr id `i`.
    fn xattrs(&mut self, i: u32) -> Result<Pairs, String> {
        let Some(x) = &self.xattr else {
            return Err(format!("xattr id {i} but the image has no xattr table"));
        };
        if let Some(v) = x.cache.get(&i) {
            return Ok(v.clone());
        }
        let at = i as usize * 16;
        let Some(e) = x.ids.get(at..at + 16) else {
            return Err(format!("xattr id {i} past the xattr id table"));
        };
        let (r, count) = (u64le(e, 0), u32le(e, 8));
        let kv = x.kv_start;
        if count > 65536 {
            return Err(format!("xattr id {i}: {count} attributes"));
        }
        let mut out = Vec::new();
        let mut c = self.meta.cursor(kv + (r >> 16), (r & 0xffff) as usize);
        for _ in 0..count {
            let ty = c.u16()?;
            let n = c.u16()?;
            let prefix: &[u8] = match ty & 0xff {
                0 => b"user.",
                1 => b"trusted.",
                2 => b"security.",
                t => return Err(format!("xattr id {i}: unknown prefix type {t}")),
            };
            let mut name = prefix.to_vec();
            name.extend(c.take(n as usize)?);
            let vsize = c.u32()?;
            if vsize > 64 << 10 {
                return Err(format!(
                    "xattr {}: value of {vsize} bytes",
                    display_bytes(&name)
                ));
            }
            let value = if ty & 0x100 != 0 {
                // Out of line: a reference to the value elsewhere.
                if vsize != 8 {
                    return Err(format!(
                        "xattr {}: bad out-of-line value",
                        display_bytes(&name)
                    ));
                }
                let vr = c.u64()?;
                let (here, at) = (c.pos, c.off);
                let mut v = c.meta.cursor(kv + (vr >> 16), (vr & 0xffff) as usize);
                let n = v.u32()?;
                if n > 64 << 10 {
                    return Err(format!(
                        "xattr {}: value of {n} bytes",
                        display_bytes(&name)
                    ));
                }
                let value = v.take(n as usize)?;
                (c.pos, c.off) = (here, at);
                value
            } else {
                c.take(vsize as usize)?
            };
            out.push((name, value));
        }
        if let Some(x) = &mut self.xattr {
            x.cache.insert(i, out.clone());
        }
        Ok(out)
    }
}

/// Indexes the squashfs `file` (of `len` bytes) into `index`.
pub(crate) fn read(file: File, len: u64, index: &mut Index) -> Result<Read_, String> {
    let s = superblock(&file, len)?;
    let meta = Meta {
        file: &file,
        len: s.bytes_used,
        comp: s.comp,
        blocks: HashMap::new(),
        decoded: 0,
        cap: metadata_cap(len),
    };
    let mut r = Reader {
        meta,
        ids: Vec::new(),
        xattr: None,
        files: Vec::new(),
        sizes: Vec::new(),
        content: 0,
        nfrags: 0,
        s,
    };
    let ids = table(
        &mut r.meta,
        r.s.id_table,
        r.s.id_count as u64,
        4,
        "id table",
    )?;
    r.ids = ids.chunks_exact(4).map(|w| u32le(w, 0)).collect();
    let frags = if r.s.frag_table == NONE64 || r.s.frag_count == 0 {
        Vec::new()
    } else {
        let t = table(
            &mut r.meta,
            r.s.frag_table,
            r.s.frag_count as u64,
            16,
            "fragment table",
        )?;
        t.chunks_exact(16)
            .map(|e| (u64le(e, 0), u32le(e, 8)))
            .collect()
    };
    r.nfrags = frags.len();
    if r.s.xattr_table != NONE64 && r.s.flags & 0x0200 == 0 {
        let at = r.s.xattr_table;
        let mut h = [0; 16];
        if at.checked_add(16).is_none_or(|e| e > r.s.bytes_used)
            || read_full_at(&file, &mut h, at).map_err(|e| e.to_string())? < 16
        {
            return Err("the xattr table lies past the end of the image".into());
        }
        let (kv_start, count) = (u64le(&h, 0), u32le(&h, 8));
        let ids = table(&mut r.meta, at + 16, count as u64, 16, "xattr id table")?;
        r.xattr = Some(Xattrs {
            kv_start,
            ids,
            cache: HashMap::new(),
        });
    }

    // The root, then every directory's listing, depth first.
    let root = r.inode(r.s.root).map_err(|e| format!("root inode: {e}"))?;
    if root.attrs.file_type != FileType::Directory {
        return Err("the root inode is not a directory".into());
    }
    let mut seen_dirs = std::collections::HashSet::new();
    seen_dirs.insert(r.s.root);
    let mut links: HashMap<u32, usize> = HashMap::new();
    let mut root_attrs = root.attrs;
    if root.xattr != NONE32 {
        root_attrs.xattrs = r.xattrs(root.xattr).map_err(|e| format!("/: {e}"))?;
    }
    index.insert(b"/", root_attrs, None)?;
    let mut todo = vec![(b"".to_vec(), 0, root.dir.unwrap())];
    let mut listed = 0u64;
    while let Some((path, dir_node, (block, off, size))) = todo.pop() {
        let name_of = |path: &[u8]| {
            if path.is_empty() {
                "/".into()
            } else {
                display_bytes(path)
            }
        };
        if size < 3 {
            return Err(format!("{}: bad directory size {size}", name_of(&path)));
        }
        // Listings may overlap in a hostile image: what all of them read
        // together is capped like the tables.
        listed += size as u64;
        if listed > r.meta.cap {
            return Err(format!(
                "{}: the directory listings add up to more than {} bytes",
                name_of(&path),
                r.meta.cap
            ));
        }
        let listing = r
            .meta
            .cursor(r.s.dir_table + block as u64, off as usize)
            .take(size as usize - 3)
            .map_err(|e| format!("{}: directory table: {e}", name_of(&path)))?;
        let mut at = 0;
        while at < listing.len() {
            let Some(h) = listing.get(at..at + 12) else {
                return Err(format!("{}: truncated directory header", name_of(&path)));
            };
            let (count, start, base) = (u32le(h, 0) as usize + 1, u32le(h, 4), u32le(h, 8));
            at += 12;
            if count > 256 {
                return Err(format!(
                    "{}: directory header of {count} entries",
                    name_of(&path)
                ));
            }
            for _ in 0..count {
                let Some(e) = listing.get(at..at + 8) else {
                    return Err(format!("{}: truncated directory entry", name_of(&path)));
                };
                let (ioff, n) = (u16le(e, 0), u16le(e, 6) as usize + 1);
                at += 8;
                let Some(name) = listing.get(at..at + n) else {
                    return Err(format!("{}: truncated entry name", name_of(&path)));
                };
                at += n;
                let full = || {
                    let mut full = path.clone();
                    full.push(b'/');
                    full.extend_from_slice(name);
                    full
                };
                if name.contains(&b'/') || name == b"." || name == b".." || name.contains(&0) {
                    return Err(format!("entry {}: not a file name", display_bytes(&full())));
                }
                let iref = ((start as u64) << 16) | ioff as u64;
                let ino = r
                    .inode(iref)
                    .map_err(|e| format!("entry {}: {e}", display_bytes(&full())))?;
                let _ = base;
                if ino.attrs.file_type != FileType::Directory
                    && let Some(&n) = links.get(&ino.number)
                {
                    index.link_child(dir_node, name, n);
                    continue;
                }
                let mut attrs = ino.attrs;
                if ino.xattr != NONE32 {
                    attrs.xattrs = r
                        .xattrs(ino.xattr)
                        .map_err(|e| format!("entry {}: {e}", display_bytes(&full())))?;
                }
                let data = ino.layout.map(|l| {
                    r.content += l.size;
                    r.files.push(l);
                    Data {
                        store: super::SQUASH,
                        offset: r.files.len() as u64 - 1,
                    }
                });
                let n = index.add_child(dir_node, name, attrs, data);
                match ino.dir {
                    Some(d) => {
                        if !seen_dirs.insert(iref) {
                            return Err(format!(
                                "entry {}: directory loop (its inode is listed twice)",
                                display_bytes(&full())
                            ));
                        }
                        todo.push((full(), n, d));
                    }
                    None => {
                        links.insert(ino.number, n);
                    }
                }
            }
        }
    }
    let comp = r.s.comp;
    let bytes_used = r.s.bytes_used;
    let block_size = r.s.block_size;
    let content = r.content;
    let Reader { files, sizes, .. } = r;
    Ok(Read_ {
        squash: Arc::new(Squash {
            len: bytes_used,
            file,
            comp,
            block_size,
            frags,
            files,
            sizes,
            cache: Mutex::new(Vec::new()),
        }),
        compressor: comp,
        content,
    })
}

impl Squash {
    /// The block of on-disk size word `word` at `pos`, decompressed to
    /// exactly `want` bytes (a sparse block is zeros).
    fn block(&self, pos: u64, word: u32, want: usize) -> io::Result<Arc<Vec<u8>>> {
        let size = (word & !(1 << 24)) as u64;
        if size == 0 {
            return Ok(Arc::new(vec![0; want]));
        }
        {
            let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = c.iter().position(|(k, _)| *k == pos) {
                let b = c.remove(i);
                c.insert(0, b.clone());
                if b.1.len() >= want {
                    return Ok(b.1);
                }
            }
        }
        let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
        if size > self.block_size as u64 || pos.checked_add(size).is_none_or(|e| e > self.len) {
            return Err(bad(format!(
                "data block at offset {pos} of {size} bytes lies past the end of the image"
            )));
        }
        let mut raw = vec![0; size as usize];
        if read_full_at(&self.file, &mut raw, pos)? < raw.len() {
            return Err(bad(format!("data block at offset {pos} is truncated")));
        }
        let data = if word & (1 << 24) != 0 {
            raw
        } else {
            decompress(self.comp, &raw, self.block_size as usize)
                .map_err(|e| bad(format!("data block at offset {pos}: {e}")))?
        };
        if data.len() < want {
            return Err(bad(format!(
                "data block at offset {pos} holds {} bytes, the file needs {want}",
                data.len()
            )));
        }
        let data = Arc::new(data);
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        c.insert(0, (pos, data.clone()));
        c.truncate(CACHE_BLOCKS);
        Ok(data)
    }

    /// Reads file `file` at `offset` into `buf`, as `pread` on a regular
    /// file does: the whole of `buf` unless the file ends first (callers
    /// take a short read for the end of the file), across blocks and the
    /// fragment. Returns the bytes read (0 at the end).
    pub(crate) fn read_at(&self, file: usize, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let n = self.read_in_block(file, &mut buf[done..], offset + done as u64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    /// Reads what of `buf` lies in the block (or fragment tail) holding
    /// `offset`.
    fn read_in_block(&self, file: usize, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let l = &self.files[file];
        if offset >= l.size || buf.is_empty() {
            return Ok(0);
        }
        let bs = self.block_size as u64;
        let k = offset / bs;
        let in_block = (offset % bs) as usize;
        let (data, base) = if (k as usize) < l.blocks {
            let mut pos = l.start;
            for w in &self.sizes[l.sizes_at..l.sizes_at + k as usize] {
                pos = pos.saturating_add((w & !(1 << 24)) as u64);
            }
            let word = self.sizes[l.sizes_at + k as usize];
            let want = (l.size - k * bs).min(bs) as usize;
            (self.block(pos, word, want)?, 0)
        } else {
            let Some((fi, foff)) = l.frag else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the file's blocks end before its size",
                ));
            };
            let (pos, word) = self.frags[fi as usize];
            let tail = (l.size - k * bs) as usize;
            let want = foff as usize + tail;
            if (word & !(1 << 24)) == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "empty fragment block",
                ));
            }
            (self.block(pos, word, want)?, foff as usize)
        };
        let end = ((l.size - k * bs).min(bs) as usize) + base;
        let from = base + in_block;
        let n = buf.len().min(end - from);
        buf[..n].copy_from_slice(&data[from..from + n]);
        Ok(n)
    }
}
