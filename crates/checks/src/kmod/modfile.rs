//! One module file: read through the target, decompressed in memory when it
//! is `.ko.xz`, `.ko.zst` or `.ko.gz` (told by magic bytes, as kmod does,
//! not by the name), and its `.modinfo` ELF section split into
//! `key=value` records: `vermagic`, `version`, `depends`, `name`, ….
//!
//! Module files come from the image and may be hostile: every size is
//! capped (the file, the decompressed data, the xz dictionary, the zstd
//! window), every offset is checked, and a panic inside a decoder becomes
//! an error naming the file.

use std::io::Read;
use std::panic::{self, AssertUnwindSafe};
use std::time::SystemTime;

use goblin::container::Ctx;
use goblin::elf::header::{ET_REL, Header};
use goblin::elf::section_header::{SHN_XINDEX, SHT_NOBITS, SectionHeader};
use nodecheck_core::target::Metadata;

use super::normalize;

/// The largest module file read, and the most a compressed one may unpack
/// to. The biggest real modules are NVIDIA's (tens of MiB; Debian's largest
/// in-tree module is under 20 MiB), so this leaves room while keeping a
/// decompression bomb from taking more than this per worker thread.
pub const SIZE_LIMIT: u64 = 256 << 20;

/// The most memory the xz decoder may use (its dictionary). Kernels
/// compress modules with a 1 MiB dictionary, `xz -9` uses 64 MiB.
const XZ_MEM_LIMIT_KIB: u32 = 128 << 10;

/// The largest zstd window accepted (`zstd --long` goes to 128 MiB).
const ZSTD_MAX_WINDOW: u64 = 128 << 20;

/// What tells one version of a file from another without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: SystemTime,
}

impl Stamp {
    /// `None` when the target gives no mtime (an in-memory target): such
    /// a file cannot be told from a changed one, so it is never cached.
    pub fn of(m: &Metadata) -> Option<Stamp> {
        Some(Stamp {
            dev: m.dev,
            ino: m.ino,
            size: m.size,
            mtime: m.mtime?,
        })
    }
}

/// A module file's modinfo as read, or why it could not be (a sentence
/// naming the file), shared between the checks that need it.
pub type Info = std::sync::Arc<Result<ModInfo, String>>;

/// What nodecheck keeps of a module's `.modinfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModInfo {
    /// `6.1.0-28-amd64 SMP preempt mod_unload modversions`
    pub vermagic: Option<String>,
    pub version: Option<String>,
    /// Direct dependencies, normalised (`depends=ib_core,mlx5_core`).
    pub depends: Vec<String>,
    /// The module's own name (`name=`), normalised, when it has one.
    pub name: Option<String>,
}

impl ModInfo {
    /// The kernel release a module was built for: the first word of its
    /// vermagic.
    pub fn built_for(&self) -> Option<&str> {
        self.vermagic.as_deref()?.split_whitespace().next()
    }
}

/// Reads the module file at `path` (inside the target) and its modinfo.
/// Errors are whole sentences naming the file.
pub fn read_modinfo(
    target: &dyn nodecheck_core::target::Target,
    path: &str,
) -> Result<ModInfo, String> {
    let bytes = target
        .read(path, SIZE_LIMIT)
        .map_err(|e| format!("cannot read {path}: {}", crate::eval::io_text(&e)))?;
    // The decoders and the ELF parser are third-party code fed with
    // whatever the image holds; a panic in them is this file's fault, so
    // say which file instead of failing the whole check anonymously.
    match panic::catch_unwind(AssertUnwindSafe(|| modinfo_of_bytes(&bytes))) {
        Ok(r) => r.map_err(|e| format!("{path}: {e}")),
        Err(_) => Err(format!(
            "{path}: the module file is corrupt (its decoder gave up)"
        )),
    }
}

/// The modinfo of a module file's bytes, compressed or not.
pub fn modinfo_of_bytes(bytes: &[u8]) -> Result<ModInfo, String> {
    let elf = unpack(bytes)?;
    let records = modinfo_records(&elf)?;
    let mut info = ModInfo::default();
    for (k, v) in records {
        match k {
            "vermagic" if info.vermagic.is_none() => info.vermagic = Some(v.to_string()),
            "version" if info.version.is_none() => info.version = Some(v.to_string()),
            "name" if info.name.is_none() => info.name = Some(normalize(v)),
            "depends" => info.depends.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(normalize),
            ),
            _ => {}
        }
    }
    Ok(info)
}

/// The ELF image inside a module file: the bytes themselves, or what they
/// decompress to (at most [`SIZE_LIMIT`] bytes).
pub fn unpack(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    const XZ: &[u8] = b"\xfd7zXZ\x00";
    const ZSTD: &[u8] = b"\x28\xb5\x2f\xfd";
    const GZIP: &[u8] = b"\x1f\x8b";
    const ELF: &[u8] = b"\x7fELF";
    if bytes.starts_with(ELF) {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    let out = if bytes.starts_with(XZ) {
        let r = lzma_rust2::XzReader::new_mem_limit(bytes, true, XZ_MEM_LIMIT_KIB);
        capped(r, "xz")?
    } else if bytes.starts_with(ZSTD) {
        let r =
            ruzstd::decoding::StreamingDecoder::new_with_max_window_size(bytes, ZSTD_MAX_WINDOW)
                .map_err(|e| format!("zstd data is corrupt: {e}"))?;
        capped(r, "zstd")?
    } else if bytes.starts_with(GZIP) {
        capped(flate2::read::MultiGzDecoder::new(bytes), "gzip")?
    } else if bytes.is_empty() {
        return Err("the module file is empty".into());
    } else {
        let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        return Err(format!(
            "not a kernel module: neither ELF nor xz, zstd or gzip data (starts with {})",
            head.join(" ")
        ));
    };
    if !out.starts_with(ELF) {
        return Err("the decompressed data is not an ELF file".into());
    }
    Ok(std::borrow::Cow::Owned(out))
}

/// Reads a decoder to its end, failing past [`SIZE_LIMIT`].
fn capped(r: impl Read, what: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    r.take(SIZE_LIMIT + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("{what} data is corrupt: {e}"))?;
    if out.len() as u64 > SIZE_LIMIT {
        return Err(format!(
            "{what} data unpacks to more than {} MiB (a decompression bomb?)",
            SIZE_LIMIT >> 20
        ));
    }
    Ok(out)
}

/// The `key=value` records of the `.modinfo` section of a relocatable ELF
/// object (what a `.ko` is).
pub fn modinfo_records(elf: &[u8]) -> Result<Vec<(&str, &str)>, String> {
    let header =
        goblin::elf::Elf::parse_header(elf).map_err(|e| format!("not an ELF file: {e}"))?;
    if header.e_type != ET_REL {
        return Err(format!(
            "an ELF file but not a kernel module (type {}, a module is a relocatable object)",
            goblin::elf::header::et_to_str(header.e_type)
        ));
    }
    let sections = section_headers(elf, &header)?;
    let names_at = if header.e_shstrndx == SHN_XINDEX as u16 {
        sections.first().map_or(0, |s| s.sh_link as usize)
    } else {
        usize::from(header.e_shstrndx)
    };
    let names = sections
        .get(names_at)
        .and_then(|s| section_data(elf, s))
        .ok_or("truncated ELF: the section name table is missing or past the end of the file")?;
    let modinfo = sections
        .iter()
        .find(|s| name_at(names, s.sh_name) == Some(b".modinfo".as_slice()))
        .ok_or("no .modinfo section: not a kernel module")?;
    let data = section_data(elf, modinfo)
        .ok_or("truncated ELF: the .modinfo section runs past the end of the file")?;
    Ok(data
        .split(|&b| b == 0)
        .filter_map(|r| std::str::from_utf8(r).ok()?.split_once('='))
        .collect())
}

fn section_headers(elf: &[u8], header: &Header) -> Result<Vec<SectionHeader>, String> {
    let container = header
        .container()
        .map_err(|e| format!("corrupt ELF header: {e}"))?;
    let endian = header
        .endianness()
        .map_err(|e| format!("corrupt ELF header: {e}"))?;
    let ctx = Ctx::new(container, endian);
    let offset = usize::try_from(header.e_shoff)
        .map_err(|_| "truncated ELF: section headers out of range")?;
    let count = usize::from(header.e_shnum);
    let entry = SectionHeader::size(ctx);
    if offset == 0 {
        return Err("no section headers: not a kernel module".into());
    }
    let end = if count == 0 {
        offset.checked_add(entry)
    } else {
        count.checked_mul(entry).and_then(|n| n.checked_add(offset))
    };
    if end.is_none_or(|e| e > elf.len()) {
        return Err("truncated ELF: the section headers run past the end of the file".into());
    }
    SectionHeader::parse(elf, offset, count, ctx)
        .map_err(|e| format!("corrupt ELF section headers: {e}"))
}

fn section_data<'a>(elf: &'a [u8], s: &SectionHeader) -> Option<&'a [u8]> {
    if s.sh_type == SHT_NOBITS {
        return Some(&[]);
    }
    let start = usize::try_from(s.sh_offset).ok()?;
    let len = usize::try_from(s.sh_size).ok()?;
    elf.get(start..start.checked_add(len)?)
}

fn name_at(names: &[u8], at: usize) -> Option<&[u8]> {
    let rest = names.get(at..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    Some(&rest[..end])
}
