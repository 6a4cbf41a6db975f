//! The binary /etc/ld.so.cache that ldconfig writes and ld.so reads: which
//! file a soname maps to, per class and machine.
//!
//! Three layouts exist: the new format (`glibc-ld.so.cache1.1`, glibc ≥
//! 2.32 writes only this), the old `ld.so-1.7.0` table, and the "compat"
//! file (glibc ≤ 2.31, RHEL 8) where the old table comes first and the new
//! one follows at the next 8-byte boundary. In the new format string
//! offsets count from the new header; in the old one from the end of the
//! old entries.

use std::collections::HashMap;
use std::fmt;

use super::object::Ident;

pub(crate) const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
pub(crate) const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const OLD_ENTRY: usize = 12;
pub(crate) const NEW_ENTRY: usize = 24;
pub(crate) const NEW_HEADER: usize = 48;
/// Bit 62 of `hwcap`: the entry belongs to a glibc-hwcaps subdirectory
/// (x86-64-v3, …) and only loads on CPUs of that level.
pub(crate) const HWCAP_EXTENSION: u64 = 1 << 62;

/// One library of the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `FLAG_ELF_LIBC6 | FLAG_X8664_LIB64` (0x303) and so on.
    pub flags: i32,
    pub path: String,
    /// 0 for a library every CPU of the machine loads.
    pub hwcap: u64,
}

/// The cache, by soname, entries in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LdCache {
    pub entries: HashMap<String, Vec<Entry>>,
}

/// Why a cache file could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadCache(pub String);

impl fmt::Display for BadCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad(s: impl Into<String>) -> BadCache {
    BadCache(s.into())
}

struct Bytes<'a> {
    b: &'a [u8],
    big: bool,
}

impl Bytes<'_> {
    fn u32(&self, at: usize) -> Result<u32, BadCache> {
        let s = at
            .checked_add(4)
            .and_then(|end| self.b.get(at..end))
            .ok_or_else(|| bad(format!("truncated at byte {at}")))?;
        let a = [s[0], s[1], s[2], s[3]];
        Ok(if self.big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }

    fn u64(&self, at: usize) -> Result<u64, BadCache> {
        let (lo, hi) = (u64::from(self.u32(at)?), u64::from(self.u32(at + 4)?));
        Ok(if self.big {
            lo << 32 | hi
        } else {
            hi << 32 | lo
        })
    }

    /// The NUL-terminated string at `base + off`.
    fn string(&self, base: usize, off: u32) -> Result<String, BadCache> {
        let start = base
            .checked_add(off as usize)
            .filter(|&s| s < self.b.len())
            .ok_or_else(|| bad(format!("string offset {off} is outside the file")))?;
        let len = self.b[start..]
            .iter()
            .position(|&c| c == 0)
            .ok_or_else(|| bad(format!("unterminated string at byte {start}")))?;
        Ok(String::from_utf8_lossy(&self.b[start..start + len]).into_owned())
    }
}

impl LdCache {
    /// Parses a cache file's bytes.
    pub fn parse(b: &[u8]) -> Result<LdCache, BadCache> {
        if b.starts_with(NEW_MAGIC) {
            return parse_new(b, 0);
        }
        if !b.starts_with(OLD_MAGIC) {
            return Err(bad("not an ld.so.cache (unknown magic)"));
        }
        // Old header: magic[11], then nlibs at 12 (4-byte aligned).
        let le = Bytes { b, big: false };
        let nlibs = le.u32(12)? as usize;
        let end = nlibs
            .checked_mul(OLD_ENTRY)
            .and_then(|n| n.checked_add(16))
            .filter(|&e| e <= b.len())
            .ok_or_else(|| bad(format!("{nlibs} entries do not fit in {} bytes", b.len())))?;
        let new_at = end.next_multiple_of(8);
        if b.get(new_at..)
            .is_some_and(|rest| rest.starts_with(NEW_MAGIC))
        {
            return parse_new(b, new_at);
        }
        let mut cache = LdCache::default();
        for i in 0..nlibs {
            let at = 16 + i * OLD_ENTRY;
            let flags = le.u32(at)? as i32;
            let key = le.string(end, le.u32(at + 4)?)?;
            let path = le.string(end, le.u32(at + 8)?)?;
            cache.add(
                key,
                Entry {
                    flags,
                    path,
                    hwcap: 0,
                },
            );
        }
        Ok(cache)
    }

    fn add(&mut self, key: String, entry: Entry) {
        self.entries.entry(key).or_default().push(entry);
    }

    /// The file ld.so would take for `soname` in an object of `ident`:
    /// among entries whose flags fit the machine, one every CPU loads
    /// before a glibc-hwcaps one, else the first in file order.
    pub fn lookup(&self, soname: &str, ident: Ident) -> Option<&Entry> {
        let fits = |e: &&Entry| flags_fit(e.flags, ident);
        let all = self.entries.get(soname)?;
        all.iter()
            .filter(fits)
            .find(|e| e.hwcap & HWCAP_EXTENSION == 0)
            .or_else(|| all.iter().find(fits))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn parse_new(b: &[u8], at: usize) -> Result<LdCache, BadCache> {
    // `flags` at +28: 2 = little-endian, 3 = big-endian, 0 = not recorded
    // (older ldconfig, which wrote the host's order: assume little).
    let big = match b.get(at + 28).copied() {
        Some(0 | 2) => false,
        Some(3) => true,
        Some(f) => return Err(bad(format!("invalid byte-order flag {f}"))),
        None => return Err(bad("truncated header")),
    };
    let r = Bytes { b, big };
    let nlibs = r.u32(at + 20)? as usize;
    let first = at + NEW_HEADER;
    nlibs
        .checked_mul(NEW_ENTRY)
        .and_then(|n| n.checked_add(first))
        .filter(|&e| e <= b.len())
        .ok_or_else(|| bad(format!("{nlibs} entries do not fit in {} bytes", b.len())))?;
    let mut cache = LdCache::default();
    for i in 0..nlibs {
        let e = first + i * NEW_ENTRY;
        let flags = r.u32(e)? as i32;
        let key = r.string(at, r.u32(e + 4)?)?;
        let path = r.string(at, r.u32(e + 8)?)?;
        let hwcap = r.u64(e + 16)?;
        cache.add(key, Entry { flags, path, hwcap });
    }
    Ok(cache)
}

/// `_dl_cache_check_flags`: the entry type is ELF libc6 (3), or plain ELF
/// (1), and the architecture bits are those of the machine's ld.so.
fn flags_fit(flags: i32, ident: Ident) -> bool {
    use goblin::elf::header::{
        EM_386, EM_AARCH64, EM_ARM, EM_IA_64, EM_LOONGARCH, EM_PPC, EM_PPC64, EM_RISCV, EM_S390,
        EM_SPARCV9, EM_X86_64,
    };
    if flags == 1 {
        return true;
    }
    if flags & 0xff != 3 {
        return false;
    }
    let arch = flags & 0xff00;
    let want: &[i32] = match (ident.machine, ident.is_64()) {
        (EM_X86_64, true) => &[0x0300],
        (EM_X86_64, false) => &[0x0800],
        (EM_386 | EM_PPC, false) => &[0],
        (EM_AARCH64, true) => &[0x0a00],
        (EM_ARM, false) => &[0x0900, 0x0b00, 0],
        (EM_PPC64, true) => &[0x0500],
        (EM_S390, true) => &[0x0400],
        (EM_S390, false) => &[0],
        (EM_IA_64, true) => &[0x0200],
        (EM_SPARCV9, true) => &[0x0100],
        (EM_RISCV, true) => &[0x1000, 0x0f00],
        (EM_LOONGARCH, true) => &[0x1200, 0x1100],
        // Machines without a known tag (MIPS ABIs, …): ld.so checks the
        // file's header after opening it, and so does the resolver.
        _ => return true,
    };
    want.contains(&arch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86_64: Ident = Ident {
        class: 2,
        data: 1,
        machine: goblin::elf::header::EM_X86_64,
    };
    const I386: Ident = Ident {
        class: 1,
        data: 1,
        machine: goblin::elf::header::EM_386,
    };

    #[test]
    fn new_format_by_class_and_hwcap() {
        let b = crate::elf::fixture::ld_cache(&[
            (
                "libz.so.1",
                "/usr/lib/glibc-hwcaps/x86-64-v3/libz.so.1",
                0x303,
                HWCAP_EXTENSION | 1,
            ),
            ("libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1", 0x303, 0),
            ("libz.so.1", "/lib/i386-linux-gnu/libz.so.1", 0x3, 0),
            (
                "libfast.so",
                "/usr/lib/glibc-hwcaps/x86-64-v3/libfast.so",
                0x303,
                HWCAP_EXTENSION,
            ),
        ]);
        let c = LdCache::parse(&b).unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(
            c.lookup("libz.so.1", X86_64).unwrap().path,
            "/lib/x86_64-linux-gnu/libz.so.1"
        );
        assert_eq!(
            c.lookup("libz.so.1", I386).unwrap().path,
            "/lib/i386-linux-gnu/libz.so.1"
        );
        assert_eq!(
            c.lookup("libfast.so", X86_64).unwrap().path,
            "/usr/lib/glibc-hwcaps/x86-64-v3/libfast.so"
        );
        assert!(c.lookup("libfast.so", I386).is_none());
        assert!(c.lookup("libnone.so", X86_64).is_none());
    }

    #[test]
    fn old_and_compat_formats() {
        // Old table: magic, nlibs, entries, then strings.
        let mut old = OLD_MAGIC.to_vec();
        old.push(0);
        old.extend_from_slice(&1u32.to_le_bytes());
        old.extend_from_slice(&0x303u32.to_le_bytes());
        old.extend_from_slice(&0u32.to_le_bytes());
        old.extend_from_slice(&6u32.to_le_bytes());
        old.extend_from_slice(b"liba\0\0/a/liba\0");
        let c = LdCache::parse(&old).unwrap();
        assert_eq!(c.lookup("liba", X86_64).unwrap().path, "/a/liba");
        // Compat: the same old table, then a new one at an 8-byte boundary
        // (which wins).
        let mut compat = old[..28].to_vec();
        compat.resize(32, 0);
        compat.extend_from_slice(&crate::elf::fixture::ld_cache(&[(
            "libb", "/b/libb", 0x303, 0,
        )]));
        let c = LdCache::parse(&compat).unwrap();
        assert_eq!(c.lookup("libb", X86_64).unwrap().path, "/b/libb");
        assert!(c.lookup("liba", X86_64).is_none());
    }

    #[test]
    fn bad_files_are_errors() {
        assert!(LdCache::parse(b"").is_err());
        assert!(LdCache::parse(b"hello").is_err());
        let b = crate::elf::fixture::ld_cache(&[("libz.so.1", "/lib/libz.so.1", 0x303, 0)]);
        for cut in 0..b.len() {
            let _ = LdCache::parse(&b[..cut]);
        }
        // A huge entry count is refused before anything is allocated.
        let mut huge = b.clone();
        huge[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(LdCache::parse(&huge).unwrap_err().0.contains("do not fit"));
        let mut off = b.clone();
        off[NEW_HEADER + 8..NEW_HEADER + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(LdCache::parse(&off).is_err());
    }

    #[test]
    fn the_real_cache_of_this_machine_parses() {
        // The host's own cache, when there is one (a read of the host is
        // fine in a test of the parser; checks never do it).
        #[expect(clippy::disallowed_methods, reason = "a parser test on a real file")]
        let Ok(b) = std::fs::read("/etc/ld.so.cache") else {
            return;
        };
        let c = LdCache::parse(&b).unwrap();
        assert!(c.len() > 10);
        assert!(c.lookup("libc.so.6", X86_64).is_some() || c.lookup("libc.so.6", I386).is_some());
    }
}
