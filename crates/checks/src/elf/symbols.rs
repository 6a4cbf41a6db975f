//! The dynamic symbols of an object as ld.so's symbol lookup sees them:
//! the undefined symbols it needs (with the version each asks for), and a
//! lookup of a name in its definitions through the object's own hash
//! table (DT_GNU_HASH, else DT_HASH), with `check_match`'s rules.
//!
//! Like the rest of the reader, the tables are located through the
//! dynamic section (stripped files read the same), read once per file
//! within a byte budget, and every index is checked: hostile input gives
//! an error or a failed lookup, never a panic or a loop.

use std::collections::HashMap;

use goblin::elf::dynamic::{
    DT_GNU_HASH, DT_HASH, DT_STRSZ, DT_STRTAB, DT_SYMENT, DT_SYMTAB, DT_VERSYM,
};
use goblin::elf::section_header::{SHN_ABS, SHN_UNDEF};
use goblin::elf::sym::{
    STB_GLOBAL, STB_GNU_UNIQUE, STB_WEAK, STT_COMMON, STT_FUNC, STT_GNU_IFUNC, STT_NOTYPE,
    STT_OBJECT, STT_TLS,
};
use nodecheck_core::target::FileAt;

use super::object::{self, Dynamic, Malformed, bad};

/// The most bytes read from one file for its symbols (the largest real
/// libraries, LLVM's, have tens of megabytes of symbol names).
const BUDGET: usize = 256 << 20;
/// The most symbols and hash buckets read.
const MAX_SYMS: u64 = 1 << 22;

/// The version a needed symbol asks for (from the object's DT_VERNEED).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeedVersion {
    pub name: String,
    /// The library the version was found in at link time (`vn_file`).
    pub file: String,
    /// Bit 15 of `vna_other`: only this exact version will do.
    pub hidden: bool,
    /// `vna_hash`: a definition matches only with the same hash (and
    /// name).
    pub hash: u32,
}

/// An undefined symbol that must be found: `STB_GLOBAL` (a weak undefined
/// symbol that nothing defines is left at zero by ld.so, no error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    pub name: String,
    pub version: Option<NeedVersion>,
}

impl Need {
    /// `name` or `name@VERSION`.
    pub fn shown(&self) -> String {
        match &self.version {
            Some(v) => format!("{}@{}", self.name, v.name),
            None => self.name.clone(),
        }
    }
}

#[derive(Debug)]
enum Hash {
    /// No symbol table at all: nothing defined.
    None,
    Gnu {
        symoffset: u32,
        buckets: Vec<u32>,
        chains: Vec<u32>,
    },
    Sysv {
        buckets: Vec<u32>,
        chains: Vec<u32>,
    },
}

/// The symbol tables of one object.
#[derive(Debug)]
pub struct Symbols {
    big: bool,
    is_64: bool,
    syment: usize,
    nsyms: u32,
    symtab: Vec<u8>,
    strtab: Vec<u8>,
    /// DT_VERSYM: one half-word per symbol.
    versym: Option<Vec<u8>>,
    hash: Hash,
    /// `vd_ndx` → the version it defines, and its `vd_hash`.
    defined: HashMap<u16, (String, u32)>,
    /// Indices of DT_VERNEED entries (a version of another object), and
    /// their `vna_hash`.
    needed: HashMap<u16, u32>,
    /// The undefined symbols that must be found, in table order.
    pub needs: Vec<Need>,
}

/// One symbol table entry.
struct Sym {
    name: u32,
    info: u8,
    shndx: u16,
    value: u64,
}

impl Symbols {
    fn u16_at(&self, b: &[u8], at: usize) -> Option<u16> {
        let s: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.big {
            u16::from_be_bytes(s)
        } else {
            u16::from_le_bytes(s)
        })
    }

    fn u32_at(&self, b: &[u8], at: usize) -> Option<u32> {
        let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.big {
            u32::from_be_bytes(s)
        } else {
            u32::from_le_bytes(s)
        })
    }

    fn u64_at(&self, b: &[u8], at: usize) -> Option<u64> {
        let s: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
        Some(if self.big {
            u64::from_be_bytes(s)
        } else {
            u64::from_le_bytes(s)
        })
    }

    fn sym(&self, i: u32) -> Option<Sym> {
        let at = (i as usize).checked_mul(self.syment)?;
        let b = &self.symtab;
        Some(if self.is_64 {
            Sym {
                name: self.u32_at(b, at)?,
                info: *b.get(at + 4)?,
                shndx: self.u16_at(b, at + 6)?,
                value: self.u64_at(b, at + 8)?,
            }
        } else {
            Sym {
                name: self.u32_at(b, at)?,
                value: u64::from(self.u32_at(b, at + 4)?),
                info: *b.get(at + 12)?,
                shndx: self.u16_at(b, at + 14)?,
            }
        })
    }

    fn name(&self, off: u32) -> &[u8] {
        let rest = self.strtab.get(off as usize..).unwrap_or(&[]);
        let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    fn versym(&self, i: u32) -> Option<u16> {
        let v = self.versym.as_ref()?;
        self.u16_at(v, i as usize * 2)
    }

    /// Whether a version index names a version (`l_versions[ndx].hash`
    /// is not 0 in ld.so): one this object defines or needs, with a hash.
    fn names_version(&self, ndx: u16) -> bool {
        self.defined.get(&ndx).is_some_and(|(_, h)| *h != 0)
            || self.needed.get(&ndx).is_some_and(|h| *h != 0)
    }

    /// Whether this object defines `name` for a reference asking for
    /// `version`: glibc's `do_lookup_x` and `check_match`.
    pub fn defines(&self, name: &str, version: Option<&NeedVersion>) -> bool {
        let name = name.as_bytes();
        // Unversioned references: non-default versioned definitions count
        // only when there is exactly one.
        let mut versioned = 0;
        let mut check = |i: u32| -> bool {
            let Some(sym) = self.sym(i) else { return false };
            if self.name(sym.name) != name || !is_definition(&sym) {
                return false;
            }
            let Some(vs) = self.versym(i) else {
                return true;
            };
            let ndx = vs & 0x7fff;
            let hidden = vs & 0x8000 != 0;
            match version {
                Some(v) => {
                    self.defined
                        .get(&ndx)
                        .is_some_and(|(d, h)| *h == v.hash && *d == v.name)
                        || (!v.hidden && !self.names_version(ndx) && !hidden)
                }
                None if ndx < 3 => true,
                None => {
                    if !hidden {
                        versioned += 1;
                    }
                    false
                }
            }
        };
        let found = match &self.hash {
            Hash::None => false,
            Hash::Gnu {
                symoffset,
                buckets,
                chains,
            } => {
                let h = gnu_hash(name);
                let mut i = buckets[(h % buckets.len() as u32) as usize];
                let mut hit = false;
                while i >= *symoffset && i < self.nsyms {
                    let Some(&ch) = chains.get((i - symoffset) as usize) else {
                        break;
                    };
                    if (ch | 1) == (h | 1) && check(i) {
                        hit = true;
                        break;
                    }
                    if ch & 1 != 0 {
                        break;
                    }
                    i += 1;
                }
                hit
            }
            Hash::Sysv { buckets, chains } => {
                let h = sysv_hash(name);
                let mut i = buckets[(h % buckets.len() as u32) as usize];
                let mut hit = false;
                // A chain visits each symbol once at most; a longer one
                // is a loop in a hostile table.
                for _ in 0..chains.len() {
                    if i == 0 || i >= self.nsyms {
                        break;
                    }
                    if check(i) {
                        hit = true;
                        break;
                    }
                    i = chains.get(i as usize).copied().unwrap_or(0);
                }
                hit
            }
        };
        found || (version.is_none() && versioned == 1)
    }
}

/// A symbol ld.so may bind a reference to.
fn is_definition(sym: &Sym) -> bool {
    let stt = sym.info & 0xf;
    let bind = sym.info >> 4;
    if u32::from(sym.shndx) == SHN_UNDEF {
        return false;
    }
    if sym.value == 0 && u32::from(sym.shndx) != SHN_ABS && stt != STT_TLS {
        return false;
    }
    if ![
        STT_NOTYPE,
        STT_OBJECT,
        STT_FUNC,
        STT_COMMON,
        STT_TLS,
        STT_GNU_IFUNC,
    ]
    .contains(&stt)
    {
        return false;
    }
    matches!(bind, STB_GLOBAL | STB_WEAK | STB_GNU_UNIQUE)
}

fn gnu_hash(name: &[u8]) -> u32 {
    name.iter().fold(5381u32, |h, &c| {
        h.wrapping_mul(33).wrapping_add(u32::from(c))
    })
}

/// The System V ELF hash: DT_HASH buckets, and the `vna_hash` and
/// `vd_hash` of version names.
pub(super) fn sysv_hash(name: &[u8]) -> u32 {
    let mut h: u32 = 0;
    for &c in name {
        h = (h << 4).wrapping_add(u32::from(c));
        let g = h & 0xf000_0000;
        if g != 0 {
            h ^= g >> 24;
        }
        h &= !g;
    }
    h
}

/// Reads the symbol tables of an ELF file.
pub fn read(file: &dyn FileAt) -> Result<Symbols, Malformed> {
    let Some(mut d) = object::parse(file, BUDGET)? else {
        return Err(bad("not an ELF file"));
    };
    let ident = d.obj.ident.ok_or_else(|| bad("invalid ELF header"))?;
    let mut s = Symbols {
        big: ident.data == goblin::elf::header::ELFDATA2MSB,
        is_64: ident.is_64(),
        syment: if ident.is_64() { 24 } else { 16 },
        nsyms: 0,
        symtab: Vec::new(),
        strtab: Vec::new(),
        versym: None,
        hash: Hash::None,
        defined: d
            .obj
            .verdef
            .iter()
            .flatten()
            .map(|v| (v.index, (v.name.clone(), v.hash)))
            .collect(),
        needed: HashMap::new(),
        needs: Vec::new(),
    };
    let Some(symtab) = d.last(DT_SYMTAB) else {
        return Ok(s);
    };
    if let Some(ent) = d.last(DT_SYMENT)
        && ent != s.syment as u64
    {
        return Err(bad(format!("DT_SYMENT {ent} is not {}", s.syment)));
    }
    let (hash, nsyms) = hash_table(&mut d, &s)?;
    s.nsyms = nsyms;
    s.hash = hash;
    let len = nsyms as usize * s.syment;
    s.symtab = table(&mut d, symtab, len, "DT_SYMTAB")?;
    if let Some(strtab) = d.last(DT_STRTAB) {
        let (off, avail) = d.offset_of(strtab).ok_or_else(|| {
            bad(format!(
                "DT_STRTAB {strtab:#x} is outside the file's segments"
            ))
        })?;
        let len = d.last(DT_STRSZ).unwrap_or(0).min(avail);
        let len = usize::try_from(len).map_err(|_| bad("DT_STRSZ is too large"))?;
        s.strtab = d.r.bytes(off, len, "DT_STRTAB")?.into_owned();
    }
    if let Some(versym) = d.last(DT_VERSYM) {
        s.versym = Some(table(&mut d, versym, nsyms as usize * 2, "DT_VERSYM")?);
    }
    let mut needed: HashMap<u16, NeedVersion> = HashMap::new();
    for need in &d.obj.verneed {
        for v in &need.versions {
            needed.insert(
                v.index & 0x7fff,
                NeedVersion {
                    name: v.name.clone(),
                    file: need.file.clone(),
                    hidden: v.index & 0x8000 != 0,
                    hash: v.hash,
                },
            );
        }
    }
    s.needed = needed.iter().map(|(&i, v)| (i, v.hash)).collect();
    for i in 1..nsyms {
        let Some(sym) = s.sym(i) else { break };
        if u32::from(sym.shndx) != SHN_UNDEF || sym.info >> 4 != STB_GLOBAL {
            continue;
        }
        let name = s.name(sym.name);
        if name.is_empty() {
            continue;
        }
        let version = s.versym(i).and_then(|v| needed.get(&(v & 0x7fff))).cloned();
        s.needs.push(Need {
            name: String::from_utf8_lossy(name).into_owned(),
            version,
        });
    }
    Ok(s)
}

/// `len` bytes at the address `addr`.
fn table(d: &mut Dynamic<'_>, addr: u64, len: usize, what: &str) -> Result<Vec<u8>, Malformed> {
    let (off, avail) = d
        .offset_of(addr)
        .ok_or_else(|| bad(format!("{what} {addr:#x} is outside the file's segments")))?;
    if (len as u64) > avail {
        return Err(bad(format!(
            "{what} at {addr:#x} runs past the end of its segment"
        )));
    }
    Ok(d.r.bytes(off, len, what)?.into_owned())
}

fn words(s: &Symbols, b: &[u8]) -> Vec<u32> {
    (0..b.len() / 4)
        .filter_map(|i| s.u32_at(b, i * 4))
        .collect()
}

/// The hash table and, from it, the number of symbols (the dynamic
/// section does not record it).
fn hash_table(d: &mut Dynamic<'_>, s: &Symbols) -> Result<(Hash, u32), Malformed> {
    if let Some(addr) = d.last(DT_GNU_HASH) {
        let head = table(d, addr, 16, "DT_GNU_HASH")?;
        let w = words(s, &head);
        let (nbuckets, symoffset, bloom_size) = (w[0], w[1], w[2]);
        if nbuckets == 0 || u64::from(nbuckets) > MAX_SYMS || u64::from(bloom_size) > MAX_SYMS {
            return Err(bad(format!(
                "DT_GNU_HASH: {nbuckets} buckets, {bloom_size} bloom words"
            )));
        }
        let word = if s.is_64 { 8 } else { 4 };
        let buckets_at = addr + 16 + u64::from(bloom_size) * word;
        let buckets = words(
            s,
            &table(d, buckets_at, nbuckets as usize * 4, "DT_GNU_HASH buckets")?,
        );
        let chains_at = buckets_at + u64::from(nbuckets) * 4;
        let top = buckets.iter().copied().max().unwrap_or(0);
        let mut nsyms = symoffset;
        if top >= symoffset {
            // Walk the last chain to its end bit, a chunk at a time.
            let mut i = top;
            'walk: loop {
                let at = chains_at + u64::from(i - symoffset) * 4;
                let avail = d.offset_of(at).map_or(0, |(_, a)| a / 4);
                let n = avail.min(1024);
                if n == 0 || u64::from(i) >= MAX_SYMS {
                    return Err(bad("DT_GNU_HASH: a chain does not end"));
                }
                let chunk = words(s, &table(d, at, n as usize * 4, "DT_GNU_HASH chains")?);
                for ch in chunk {
                    if ch & 1 != 0 {
                        break 'walk;
                    }
                    i += 1;
                }
            }
            nsyms = i + 1;
        }
        if u64::from(nsyms) > MAX_SYMS {
            return Err(bad(format!("DT_GNU_HASH: {nsyms} symbols")));
        }
        let chains = words(
            s,
            &table(
                d,
                chains_at,
                (nsyms - symoffset.min(nsyms)) as usize * 4,
                "DT_GNU_HASH chains",
            )?,
        );
        return Ok((
            Hash::Gnu {
                symoffset,
                buckets,
                chains,
            },
            nsyms,
        ));
    }
    if let Some(addr) = d.last(DT_HASH) {
        let head = words(s, &table(d, addr, 8, "DT_HASH")?);
        let (nbucket, nchain) = (head[0], head[1]);
        if nbucket == 0 || u64::from(nbucket) > MAX_SYMS || u64::from(nchain) > MAX_SYMS {
            return Err(bad(format!("DT_HASH: {nbucket} buckets, {nchain} chains")));
        }
        let all = words(
            s,
            &table(
                d,
                addr,
                8 + (nbucket as usize + nchain as usize) * 4,
                "DT_HASH",
            )?,
        );
        let buckets = all[2..2 + nbucket as usize].to_vec();
        let chains = all[2 + nbucket as usize..].to_vec();
        return Ok((Hash::Sysv { buckets, chains }, nchain));
    }
    Err(bad(
        "no DT_GNU_HASH or DT_HASH: ld.so cannot look up its symbols",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::fixture;
    use nodecheck_core::target::{MemoryTarget, Target};

    fn symbols_of(b: &[u8]) -> Result<Symbols, Malformed> {
        let t = MemoryTarget::new().file("/f", 0o755, 0, 0, b);
        read(t.open("/f").unwrap().as_ref())
    }

    #[test]
    fn needs_and_definitions_are_read() {
        let b = fixture::lib("libv.so.1", &[])
            .defines(&["libv.so.1", "V1"])
            .needs_versions("libc.so.6", &["GLIBC_2.34"])
            .exports(&["f@V1", "g"])
            .uses(&["memcpy@GLIBC_2.34", "strlen"])
            .uses_weak(&["__gmon_start__"])
            .build();
        let s = symbols_of(&b).unwrap();
        let shown: Vec<String> = s.needs.iter().map(Need::shown).collect();
        assert_eq!(shown, ["memcpy@GLIBC_2.34", "strlen"]);
        assert_eq!(s.needs[0].version.as_ref().unwrap().file, "libc.so.6");
        let v1 = NeedVersion {
            name: "V1".into(),
            file: "libv.so.1".into(),
            hidden: false,
            hash: sysv_hash(b"V1"),
        };
        assert!(s.defines("f", Some(&v1)));
        assert!(s.defines("f", None));
        assert!(s.defines("g", None));
        assert!(!s.defines("g", Some(&v1)));
        assert!(!s.defines("strlen", None));
        assert!(!s.defines("nothing", None));
    }

    #[test]
    fn every_byte_flip_is_survived() {
        let good = fixture::lib("libv.so.1", &["libc.so.6"])
            .defines(&["libv.so.1", "V1"])
            .needs_versions("libc.so.6", &["GLIBC_2.34"])
            .exports(&["f@V1", "g", "h"])
            .uses(&["memcpy@GLIBC_2.34", "strlen"])
            .build();
        for i in 0..good.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut b = good.clone();
                b[i] = v;
                if let Ok(s) = symbols_of(&b) {
                    for n in ["f", "g", "h", "memcpy"] {
                        let _ = s.defines(n, None);
                    }
                }
            }
        }
    }

    #[test]
    fn hash_functions_match_the_abi() {
        // Values from the gABI and the GNU hash write-ups.
        assert_eq!(gnu_hash(b""), 5381);
        assert_eq!(gnu_hash(b"printf"), 0x156b_2bb8);
        assert_eq!(sysv_hash(b"printf"), 0x077905a6);
    }
}
