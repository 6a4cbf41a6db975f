//! One module file: read through the target, decompressed in memory when it
//! is `.ko.xz`, `.ko.zst` or `.ko.gz` (told by magic bytes, as kmod does,
//! not by the name), and its `.modinfo` ELF section split into
//! `key=value` records: `vermagic`, `version`, `depends`, `name`, ….
//!
//! Module files come from the image and may be hostile: every size is
//! capped (the file, the decompressed data, the xz dictionary, the zstd
//! window), every offset is checked, and a panic inside a decoder becomes
//! an error naming the file.

use std::borrow::Cow;
use std::io::{self, Read};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, PoisonError};

use goblin::elf::header::ET_REL;
use nodecheck_core::target::{FileAt, Target};

use crate::elf::object::InMemory;
use crate::elf::section::Sections;

use super::normalize;

/// The largest module file read, and the most a compressed one may unpack
/// to. The biggest real modules are NVIDIA's (tens of MiB; Debian's largest
/// in-tree module is under 20 MiB), so this leaves room; [`Unpacking`]
/// keeps a run to one such unpacking at a time.
pub const SIZE_LIMIT: u64 = 256 << 20;

/// The most memory the xz decoder may use (its dictionary). Kernels
/// compress modules with a 1 MiB dictionary, `xz -9` uses 64 MiB.
const XZ_MEM_LIMIT_KIB: u32 = 128 << 10;

/// The largest zstd window accepted (`zstd --long` goes to 128 MiB).
const ZSTD_MAX_WINDOW: u64 = 128 << 20;

/// The magic of an ELF file.
const ELF: &[u8] = b"\x7fELF";

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
/// An uncompressed module is read by its headers (a few KiB, not the
/// whole file); a compressed one is read whole and unpacked in memory.
/// `Ok(None)`: there is no file at `path`; `Err`: it cannot be looked at
/// (permission); `Ok(Some(Err))`: it is no readable module. Every message
/// is a sentence naming the file.
pub fn read_modinfo(
    target: &dyn Target,
    path: &str,
) -> Result<Option<Result<ModInfo, String>>, String> {
    let file = match target.open(path) {
        Ok(f) => f,
        Err(e) if crate::eval::is_absent(&e) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(format!("cannot read {path}: {}", crate::eval::io_text(&e)));
        }
        Err(e) => return Ok(Some(Err(format!("cannot read {path}: {e}")))),
    };
    let shared;
    let budget = match target.memo() {
        Some(memo) => {
            shared = memo.get::<Unpacking>();
            &*shared
        }
        None => &FALLBACK,
    };
    Ok(Some(
        modinfo_of_file(&*file, budget).map_err(|e| format!("{path}: {e}")),
    ))
}

/// The memory one ordinary module may take to unpack (file, output and
/// decoder), reserved from [`POOL`] before it starts.
const SLOT: u64 = 64 << 20;
/// The most an ordinary module's compressed file may be.
const SLOT_FILE: u64 = 8 << 20;
/// What an ordinary module may unpack to, and its decoder's window.
const SLOT_OUT: u64 = 32 << 20;
const SLOT_WINDOW: u64 = 16 << 20;
/// The memory all ordinary unpacking of a run shares: four modules at a
/// time, however many worker threads the run has.
const POOL: u64 = 4 * SLOT;

/// Memory for unpacking compressed modules, shared by every check of a
/// run (through the target's memo): ordinary modules unpack side by side
/// within [`POOL`]; one that needs more (a big driver, or a bomb) waits
/// for the run's single large slot, where the full [`SIZE_LIMIT`] applies.
/// Per worker thread, bombs took 417 MB at `--jobs 1` and 1.9 GB at 8;
/// now the most is [`POOL`] plus one large unpacking, at any `--jobs`.
pub struct Unpacking {
    used: Mutex<u64>,
    freed: Condvar,
    large: Mutex<()>,
}

impl Default for Unpacking {
    fn default() -> Self {
        Unpacking::new()
    }
}

/// For a target without a memo: the whole process shares one budget.
static FALLBACK: Unpacking = Unpacking::new();

impl Unpacking {
    const fn new() -> Unpacking {
        Unpacking {
            used: Mutex::new(0),
            freed: Condvar::new(),
            large: Mutex::new(()),
        }
    }

    /// Waits until `n` bytes of the pool are free and takes them. Nothing
    /// else is held while waiting, so this cannot deadlock.
    fn take(&self, n: u64) -> Slot<'_> {
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        while *used + n > POOL {
            used = self
                .freed
                .wait(used)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *used += n;
        Slot { budget: self, n }
    }
}

/// Bytes taken from the pool, given back when dropped.
struct Slot<'a> {
    budget: &'a Unpacking,
    n: u64,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut used = self
            .budget
            .used
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *used -= self.n;
        self.budget.freed.notify_all();
    }
}

/// Limits of one unpacking.
#[derive(Clone, Copy)]
struct Limits {
    out: u64,
    xz_kib: u32,
    zstd_window: u64,
}

const FULL: Limits = Limits {
    out: SIZE_LIMIT,
    xz_kib: XZ_MEM_LIMIT_KIB,
    zstd_window: ZSTD_MAX_WINDOW,
};

const ORDINARY: Limits = Limits {
    out: SLOT_OUT,
    xz_kib: (SLOT_WINDOW >> 10) as u32,
    zstd_window: SLOT_WINDOW,
};

/// Reads a compressed module file whole and unpacks it within the run's
/// budget: in an ordinary slot when it fits, else (and after any failure
/// there, so the message is the one the full limits give) in the large
/// slot.
fn unpack_file(file: &dyn FileAt, size: u64, budget: &Unpacking) -> Result<ModInfo, String> {
    let read = || {
        file.read_exact_at(0, size as usize)
            .map_err(|e| format!("cannot read: {e}"))
    };
    if size <= SLOT_FILE {
        let _slot = budget.take(SLOT);
        let bytes = read()?;
        if let Ok(elf) = unpack_within(&bytes, ORDINARY) {
            return Ok(modinfo_of_records(&records(&InMemory::new(&elf))?));
        }
    }
    let _large = budget.large.lock().unwrap_or_else(PoisonError::into_inner);
    modinfo_of_bytes(&read()?)
}

fn modinfo_of_file(file: &dyn FileAt, budget: &Unpacking) -> Result<ModInfo, String> {
    let size = file.size();
    if size > SIZE_LIMIT {
        return Err(format!(
            "the file is larger than {} MiB: not a kernel module",
            SIZE_LIMIT >> 20
        ));
    }
    let head = file
        .read_exact_at(0, size.min(64) as usize)
        .map_err(|e| format!("cannot read: {e}"))?;
    // The decoders and the ELF parser are third-party code fed with
    // whatever the image holds; a panic in them is this file's fault, so
    // say which file instead of failing the whole check anonymously.
    let parsed = panic::catch_unwind(AssertUnwindSafe(|| {
        if head.starts_with(ELF) {
            // Read in place, by its headers: a few KiB of a big module.
            records(file).map(|r| modinfo_of_records(&r))
        } else {
            unpack_file(file, size, budget)
        }
    }));
    parsed.unwrap_or_else(|_| Err("the module file is corrupt (its decoder gave up)".into()))
}

/// The modinfo of a module file's bytes, compressed or not.
pub fn modinfo_of_bytes(bytes: &[u8]) -> Result<ModInfo, String> {
    let elf = unpack(bytes)?;
    Ok(modinfo_of_records(&records(&InMemory::new(&elf))?))
}

fn modinfo_of_records(records: &[(String, String)]) -> ModInfo {
    let mut info = ModInfo::default();
    for (k, v) in records {
        match k.as_str() {
            "vermagic" if info.vermagic.is_none() => info.vermagic = Some(v.clone()),
            "version" if info.version.is_none() => info.version = Some(v.clone()),
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
    info
}

/// The ELF image inside a module file: the bytes themselves, or what they
/// decompress to (at most [`SIZE_LIMIT`] bytes).
pub fn unpack(bytes: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    unpack_within(bytes, FULL)
}

fn unpack_within(bytes: &[u8], limits: Limits) -> Result<Cow<'_, [u8]>, String> {
    const XZ: &[u8] = b"\xfd7zXZ\x00";
    const ZSTD: &[u8] = b"\x28\xb5\x2f\xfd";
    const GZIP: &[u8] = b"\x1f\x8b";
    if bytes.starts_with(ELF) {
        return Ok(Cow::Borrowed(bytes));
    }
    let out = if bytes.starts_with(XZ) {
        let r = lzma_rust2::XzReader::new_mem_limit(bytes, true, limits.xz_kib);
        capped(r, "xz", limits.out)?
    } else if bytes.starts_with(ZSTD) {
        let r =
            ruzstd::decoding::StreamingDecoder::new_with_max_window_size(bytes, limits.zstd_window)
                .map_err(|e| format!("zstd data is corrupt: {e}"))?;
        capped(r, "zstd", limits.out)?
    } else if bytes.starts_with(GZIP) {
        capped(flate2::read::MultiGzDecoder::new(bytes), "gzip", limits.out)?
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
    Ok(Cow::Owned(out))
}

/// Reads a decoder to its end, failing past `limit` bytes. The buffer
/// grows by doubling but never past the limit (a plain `read_to_end`
/// would double a 256 MiB buffer to 512 MiB for the byte that proves the
/// bomb).
fn capped(mut r: impl Read, what: &str, limit: u64) -> Result<Vec<u8>, String> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut out: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("{what} data is corrupt: {e}")),
        };
        if out.len() + n > limit {
            return Err(format!(
                "{what} data unpacks to more than {} MiB (a decompression bomb?)",
                limit >> 20
            ));
        }
        if out.capacity() < out.len() + n {
            let grow = out.len().max(n).min(limit - out.len());
            out.reserve_exact(grow.max(n));
        }
        out.extend_from_slice(&buf[..n]);
    }
    Ok(out)
}

/// The `key=value` records of the `.modinfo` section of a relocatable ELF
/// object (what a `.ko` is), read with the ELF reader of `elf`: only the
/// ELF header, the section table, the section names and `.modinfo`.
fn records(file: &dyn FileAt) -> Result<Vec<(String, String)>, String> {
    let mut elf = match Sections::open(file) {
        Ok(Some(s)) => s,
        Ok(None) => return Err("not an ELF file".into()),
        Err(e) if e.0.starts_with("truncated ELF header") => {
            return Err(format!("not an ELF file: {e}"));
        }
        Err(e) => return Err(e.0),
    };
    if elf.e_type() != ET_REL {
        return Err(format!(
            "an ELF file but not a kernel module (type {}, a module is a relocatable object)",
            goblin::elf::header::et_to_str(elf.e_type())
        ));
    }
    let data = elf
        .section(".modinfo", SECTION_LIMIT)
        .map_err(|e| e.0)?
        .ok_or("no .modinfo section: not a kernel module")?;
    Ok(data
        .split(|&b| b == 0)
        .filter_map(|r| std::str::from_utf8(r).ok()?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// The largest `.modinfo` read. Real ones are a few KiB (NVIDIA's, with
/// its hundreds of PCI aliases, tens of KiB).
const SECTION_LIMIT: u64 = 16 << 20;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmod::fixture::ko;

    /// Sets field `at` (8 bytes, little-endian) of section header `n`.
    fn patch_section(elf: &mut [u8], n: usize, at: usize, value: u64) {
        let shoff = u64::from_le_bytes(elf[40..48].try_into().unwrap()) as usize;
        let base = shoff + n * 64 + at;
        elf[base..base + 8].copy_from_slice(&value.to_le_bytes());
    }

    #[test]
    fn records_and_lies_in_the_section_table() {
        let elf = ko(&[
            "vermagic=6.1.0-t SMP",
            "depends=a-b,c",
            "version=1.0",
            "junk",
        ]);
        let info = modinfo_of_bytes(&elf).unwrap();
        assert_eq!(info.built_for(), Some("6.1.0-t"));
        assert_eq!(info.depends, vec!["a_b", "c"]);
        assert_eq!(info.version.as_deref(), Some("1.0"));
        // .modinfo (section 1) claiming to be huge, or to lie past the end.
        let mut huge = elf.clone();
        patch_section(&mut huge, 1, 32, 1 << 40);
        let e = modinfo_of_bytes(&huge).unwrap_err();
        assert!(e.contains("claims 1099511627776 bytes"), "{e}");
        let mut past = elf.clone();
        patch_section(&mut past, 1, 24, 1 << 20);
        let e = modinfo_of_bytes(&past).unwrap_err();
        assert_eq!(
            e,
            "truncated ELF: the file ends before its .modinfo section"
        );
        // A section count the file cannot hold.
        let mut count = elf.clone();
        count[60..62].copy_from_slice(&u16::MAX.to_le_bytes());
        let e = modinfo_of_bytes(&count).unwrap_err();
        assert_eq!(e, "truncated ELF: the file ends before its section headers");
        // A name table index out of range.
        let mut names = elf.clone();
        names[62..64].copy_from_slice(&9u16.to_le_bytes());
        assert!(modinfo_of_bytes(&names).is_err());
    }

    #[test]
    fn no_prefix_or_bit_flip_panics() {
        let elf = ko(&["vermagic=6.1.0-t SMP", "name=x"]);
        for n in 0..elf.len() {
            let _ = modinfo_of_bytes(&elf[..n]);
            for bit in [0x01u8, 0x80] {
                let mut flipped = elf.clone();
                flipped[n] ^= bit;
                let _ = modinfo_of_bytes(&flipped);
            }
        }
    }
}
