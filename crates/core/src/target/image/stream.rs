//! Compressed streams: magic bytes, and flattening an image into one
//! uncompressed archive (the file itself, or a private spill file).
//!
//! An initramfs may be several archives one after the other, each
//! compressed or not (an uncompressed early-microcode cpio, then the main
//! one compressed), with zero padding between them: the kernel unpacks
//! them in order, and so does [`flatten`].

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};

use super::{Format, cpio, read_full_at};

/// A compression of (a part of) an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
    Lz4,
    Bzip2,
    Lzma,
    /// squashfs only.
    Lzo,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
            Compression::Lz4 => "lz4",
            Compression::Bzip2 => "bzip2",
            Compression::Lzma => "lzma",
            Compression::Lzo => "lzo",
        }
    }
}

/// The compression `head` starts with, if any.
fn compression(head: &[u8]) -> Option<Compression> {
    let table: [(&[u8], Compression); 6] = [
        (b"\x1f\x8b", Compression::Gzip),
        (b"\x28\xb5\x2f\xfd", Compression::Zstd),
        (b"\xfd7zXZ\x00", Compression::Xz),
        (b"\x02\x21\x4c\x18", Compression::Lz4),
        (b"\x04\x22\x4d\x18", Compression::Lz4),
        (b"BZh", Compression::Bzip2),
    ];
    table
        .into_iter()
        .find(|(m, _)| head.starts_with(m))
        .map(|(_, c)| c)
}

/// The archive format `head` (uncompressed) starts with.
pub(crate) fn archive_format(head: &[u8]) -> Option<Format> {
    if cpio::is_magic(head) {
        Some(Format::Cpio)
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Some(Format::Tar)
    } else {
        None
    }
}

/// Whether `head` looks like something [`flatten`] takes: compressed data
/// or an archive.
pub(crate) fn sniff(head: &[u8]) -> Option<()> {
    (compression(head).is_some() || archive_format(head).is_some()).then_some(())
}

/// An image as one uncompressed archive.
pub(crate) struct Flat {
    pub file: File,
    pub len: u64,
    /// The compressions met, consecutive repeats folded; empty when the
    /// file is a plain archive (and `file` is the image itself).
    pub compression: Vec<Compression>,
}

/// Counts what the decoder's `BufReader` pulled from the file.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that refuses to grow past `cap` bytes (a decompression bomb
/// ends here, not on a full disk).
struct Capped<'a> {
    file: &'a mut dyn Write,
    written: u64,
    cap: u64,
    /// The CRC-32 of what was written.
    crc: crc32fast::Hasher,
}

impl Write for Capped<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.cap {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!(
                    "decompresses to more than {} bytes (the spill cap: 64 × the image + 1 GiB)",
                    self.cap
                ),
            ));
        }
        let n = self.file.write(buf)?;
        self.crc.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// The first non-zero byte at or after `pos` (padding between archives).
fn skip_zeros(file: &File, mut pos: u64, len: u64) -> io::Result<u64> {
    let mut buf = [0; 4096];
    while pos < len {
        let n = read_full_at(file, &mut buf, pos)?;
        if n == 0 {
            break;
        }
        match buf[..n].iter().position(|&b| b != 0) {
            Some(i) => return Ok(pos + i as u64),
            None => pos += n as u64,
        }
    }
    Ok(len)
}

/// The magic of an lz4 frame.
const LZ4_FRAME: &[u8] = b"\x04\x22\x4d\x18";
/// The magic of a legacy lz4 stream.
const LZ4_LEGACY: u32 = 0x184c_2102;
/// A legacy lz4 block's uncompressed size.
const LZ4_LEGACY_BLOCK: usize = 8 << 20;

/// Decodes a legacy lz4 stream (`r` at its magic) into `out`, as the
/// kernel's `unlz4` does: a u32 block size then the block, again and
/// again; a magic between blocks starts a new stream. It ends at the end
/// of the file, at a zero size, or at a size past LZ4's bound for an
/// 8 MiB block (what follows is something else); those 4 bytes are left
/// unread.
fn lz4_legacy(r: &mut impl BufRead, out: &mut impl Write) -> io::Result<u64> {
    let bound = LZ4_LEGACY_BLOCK + LZ4_LEGACY_BLOCK / 255 + 16;
    let mut word = [0; 4];
    r.read_exact(&mut word)?;
    if u32::from_le_bytes(word) != LZ4_LEGACY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a legacy lz4 stream",
        ));
    }
    let mut src = Vec::new();
    let mut dst = vec![0; LZ4_LEGACY_BLOCK];
    let mut total = 0;
    loop {
        let head = r.fill_buf()?;
        if head.len() < 4 {
            // The end of the file (a short tail is an error below).
            if head.is_empty() {
                return Ok(total);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated block size",
            ));
        }
        let size = u32::from_le_bytes(head[..4].try_into().unwrap());
        if size == LZ4_LEGACY {
            r.consume(4);
            continue;
        }
        if size == 0 || size as usize > bound {
            return Ok(total);
        }
        r.consume(4);
        src.resize(size as usize, 0);
        r.read_exact(&mut src).map_err(|e| {
            io::Error::new(e.kind(), format!("a block of {size} bytes is truncated"))
        })?;
        let n = lz4_flex::block::decompress_into(&src, &mut dst).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("corrupt block: {e}"))
        })?;
        out.write_all(&dst[..n])?;
        total += n as u64;
    }
}

/// Decompresses one stream of `kind` starting at `pos` into `out`;
/// returns where the stream ended in the file.
fn decode(file: &File, pos: u64, kind: Compression, out: &mut Capped<'_>) -> io::Result<u64> {
    let mut f = file.try_clone()?;
    f.seek(SeekFrom::Start(pos))?;
    let mut buffered = BufReader::with_capacity(64 << 10, Counting { inner: f, count: 0 });
    let copied = match kind {
        Compression::Gzip => io::copy(&mut flate2::bufread::GzDecoder::new(&mut buffered), out),
        // libzstd (the `zstd` crate): several times faster than a pure
        // Rust decoder on a 1 GB initramfs; one frame per call, so the
        // loop in `flatten` sees what follows it.
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(&mut buffered)?.single_frame();
            io::copy(&mut d, out)
        }
        Compression::Xz => io::copy(&mut lzma_rust2::XzReader::new(&mut buffered, false), out),
        // One bzip2 stream (`bufread` consumes only what it decodes).
        Compression::Bzip2 => io::copy(&mut bzip2::bufread::BzDecoder::new(&mut buffered), out),
        // The lz4 frame format (`lz4`'s default): lz4_flex's decoder stops
        // at the end of the first frame, having read it exactly.
        Compression::Lz4 if buffered.fill_buf()?.starts_with(LZ4_FRAME) => {
            io::copy(&mut lz4_flex::frame::FrameDecoder::new(&mut buffered), out)
        }
        // The legacy format (`lz4 -l`), the one the kernel takes for an
        // initramfs: blocks of at most 8 MiB, each a u32 size and the
        // compressed bytes, until the file ends or a size no block can
        // have (the next archive: a cpio's `0707` reads as 925 MB).
        Compression::Lz4 => lz4_legacy(&mut buffered, out),
        other => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{} compression (at offset {pos}) is not supported; decompress the image first",
                    other.as_str()
                ),
            ));
        }
    };
    copied.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("{} stream at offset {pos}: {e}", kind.as_str()),
        )
    })?;
    let left = buffered.buffer().len() as u64;
    Ok(pos + buffered.get_ref().count - left)
}

/// The image `file` (of `len` bytes) as one uncompressed archive: the file
/// itself when it is a single plain archive, else a spill file holding
/// every part decompressed, in order (at most `cap` bytes).
pub(crate) fn flatten(file: File, len: u64, cap: u64) -> io::Result<Flat> {
    // A tar, or a cpio followed by nothing (but padding): no spill.
    if is_plain(&file, len)? {
        return Ok(Flat {
            file,
            len,
            compression: Vec::new(),
        });
    }
    let spill = tempfile::tempfile()?;
    let mut writer = io::BufWriter::with_capacity(256 << 10, spill);
    let (written, _, kinds) = flatten_into(&file, len, cap, &mut writer)?;
    let spill = writer.into_inner().map_err(|e| e.into_error())?;
    Ok(Flat {
        file: spill,
        len: written,
        compression: kinds,
    })
}

/// Whether the image `file` (of `len` bytes) is a single plain archive
/// (read in place, nothing decompressed); an error when it is neither
/// compressed nor an archive.
pub(crate) fn is_plain(file: &File, len: u64) -> io::Result<bool> {
    let mut head = [0; 512];
    let n = read_full_at(file, &mut head, 0)?;
    let head = &head[..n];
    if compression(head).is_some() {
        return Ok(false);
    }
    let format = archive_format(head).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "neither a cpio nor a tar archive, nor a compressed one (by its first bytes)",
        )
    })?;
    Ok(match format {
        Format::Cpio => {
            let end = cpio::archive_end(file, 0, len)?;
            skip_zeros(file, end, len)? == len
        }
        _ => true,
    })
}

/// Writes every part of the image `file` (of `len` bytes) decompressed, in
/// order, into `out` (at most `cap` bytes); returns how many bytes that
/// was, their CRC-32 and the compressions met.
pub(crate) fn flatten_into(
    file: &File,
    len: u64,
    cap: u64,
    out: &mut dyn Write,
) -> io::Result<(u64, u32, Vec<Compression>)> {
    let file = file.try_clone()?;
    let mut out = Capped {
        file: out,
        written: 0,
        cap,
        crc: crc32fast::Hasher::new(),
    };
    let mut kinds: Vec<Compression> = Vec::new();
    let mut pos = 0;
    loop {
        pos = skip_zeros(&file, pos, len)?;
        if pos >= len {
            break;
        }
        let mut head = [0; 512];
        let n = read_full_at(&file, &mut head, pos)?;
        let head = &head[..n];
        let kind = if let Some(kind) = compression(head) {
            let end = decode(&file, pos, kind, &mut out)?;
            if end <= pos {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} stream at offset {pos} is empty", kind.as_str()),
                ));
            }
            pos = end;
            kind
        } else {
            let end = match archive_format(head) {
                Some(Format::Cpio) => cpio::archive_end(&file, pos, len)?,
                Some(_) => len,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unknown data at offset {pos} (neither an archive nor compressed)"),
                    ));
                }
            };
            let mut f = file.try_clone()?;
            f.seek(SeekFrom::Start(pos))?;
            io::copy(&mut f.take(end - pos), &mut out)?;
            pos = end;
            Compression::None
        };
        if kinds.last() != Some(&kind) {
            kinds.push(kind);
        }
    }
    out.flush()?;
    Ok((out.written, out.crc.clone().finalize(), kinds))
}

/// What [`streamed`] hands over: the bytes, in chunks of this size.
const CHUNK: usize = 256 << 10;
/// Chunks in flight between the decompressing thread and the reader.
const IN_FLIGHT: usize = 4;

/// The writing end of [`streamed`]'s channel.
struct ChanWriter {
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

impl Write for ChanWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = b.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&b[..n]);
        if self.buf.len() == CHUNK {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .send(full)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reader stopped"))
    }
}

/// The reading end of [`streamed`]'s channel: the image's parts
/// decompressed, in order, once.
pub(crate) struct Streamed {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    cur: Vec<u8>,
    at: usize,
}

impl Read for Streamed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.cur.len() {
            // A closed channel is the end: the thread says why.
            match self.rx.recv() {
                Ok(chunk) => {
                    self.cur = chunk;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.at);
        buf[..n].copy_from_slice(&self.cur[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The thread that decompresses for a [`Streamed`]: joined, it says how
/// many bytes there were, their CRC-32 and the compressions met, or what
/// went wrong.
pub(crate) type Decompressing = std::thread::JoinHandle<io::Result<(u64, u32, Vec<Compression>)>>;

/// The image `file` (of `len` bytes, at most `cap` once decompressed)
/// decompressed by a thread of its own into a bounded channel
/// (`IN_FLIGHT` chunks of 256 KiB): the bytes [`flatten`] would spill, read
/// once, in order, and nothing written anywhere. Dropping the reader stops
/// the thread (its next write fails).
pub(crate) fn streamed(file: &File, len: u64, cap: u64) -> io::Result<(Streamed, Decompressing)> {
    let file = file.try_clone()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(IN_FLIGHT);
    let handle = std::thread::Builder::new()
        .name("nodecheck-unpack".into())
        .spawn(move || {
            let mut w = ChanWriter {
                tx,
                buf: Vec::with_capacity(CHUNK),
            };
            flatten_into(&file, len, cap, &mut w)
        })?;
    Ok((
        Streamed {
            rx,
            cur: Vec::new(),
            at: 0,
        },
        handle,
    ))
}

/// Whether `head` starts a compressed stream.
pub(crate) fn is_compressed(head: &[u8]) -> bool {
    compression(head).is_some()
}

/// Decompresses the streams in `window` (an OCI layer blob) into a spill
/// file of its own (at most `cap` bytes).
pub(crate) fn flatten_window(window: &super::tar::Window, cap: u64) -> io::Result<Flat> {
    let file = window.file();
    let end = window.start() + window.len();
    let spill = tempfile::tempfile()?;
    let mut writer = io::BufWriter::with_capacity(256 << 10, spill);
    let mut out = Capped {
        file: &mut writer,
        written: 0,
        cap,
        crc: crc32fast::Hasher::new(),
    };
    let mut kinds = Vec::new();
    let mut pos = window.start();
    loop {
        pos = skip_zeros(file, pos, end)?;
        if pos >= end {
            break;
        }
        let mut head = [0; 16];
        let n = read_full_at(file, &mut head, pos)?;
        let Some(kind) = compression(&head[..n]) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("data after the compressed stream at offset {pos}"),
            ));
        };
        let next = decode(file, pos, kind, &mut out)?;
        if next <= pos || next > end {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} stream at offset {pos} is empty or runs past the blob",
                    kind.as_str()
                ),
            ));
        }
        pos = next;
        if kinds.last() != Some(&kind) {
            kinds.push(kind);
        }
    }
    out.flush()?;
    let written = out.written;
    let spill = writer.into_inner().map_err(|e| e.into_error())?;
    Ok(Flat {
        file: spill,
        len: written,
        compression: kinds,
    })
}

impl From<super::squashfs::Compressor> for Compression {
    fn from(c: super::squashfs::Compressor) -> Compression {
        use super::squashfs::Compressor as C;
        match c {
            C::Gzip => Compression::Gzip,
            C::Lzma => Compression::Lzma,
            C::Lzo => Compression::Lzo,
            C::Xz => Compression::Xz,
            C::Lz4 => Compression::Lz4,
            C::Zstd => Compression::Zstd,
        }
    }
}
