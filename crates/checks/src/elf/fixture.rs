//! Small but well-formed ELF files for the unit tests: one PT_LOAD over the
//! whole file (so addresses equal offsets), PT_INTERP, PT_DYNAMIC, a
//! dynamic string table and version tables, for either class.

use goblin::elf::header::{EM_X86_64, ET_DYN, ET_EXEC, ET_REL};

use std::collections::HashMap;

use super::ldcache;
use super::symbols::sysv_hash;

#[derive(Clone, Debug)]
pub struct Spec {
    pub is_64: bool,
    pub machine: u16,
    pub e_type: u16,
    pub interp: Option<String>,
    pub soname: Option<String>,
    pub needed: Vec<String>,
    pub rpath: Option<String>,
    pub runpath: Option<String>,
    pub flags_1: u64,
    /// (file, [(version, weak)])
    pub verneed: Vec<(String, Vec<(String, bool)>)>,
    pub verdef: Option<Vec<String>>,
    /// Write each needed version's `vna_hash` off by one (a damaged file:
    /// ld.so then finds no definition).
    pub wrong_need_hash: bool,
    /// Dynamic symbols; any makes a symbol table (with DT_HASH and, when
    /// the object has versions, DT_VERSYM).
    pub symbols: Vec<SymSpec>,
}

/// One dynamic symbol.
#[derive(Clone, Debug, Default)]
pub struct SymSpec {
    pub name: String,
    pub defined: bool,
    pub weak: bool,
    /// A version of `verdef` (defined) or of `verneed` (undefined).
    pub version: Option<String>,
    /// Bit 15 of the DT_VERSYM entry.
    pub hidden: bool,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            is_64: true,
            machine: EM_X86_64,
            e_type: ET_DYN,
            interp: None,
            soname: None,
            needed: Vec::new(),
            rpath: None,
            runpath: None,
            flags_1: 0,
            verneed: Vec::new(),
            verdef: None,
            wrong_need_hash: false,
            symbols: Vec::new(),
        }
    }
}

/// A shared library with a soname and what it needs.
pub fn lib(soname: &str, needed: &[&str]) -> Spec {
    Spec {
        soname: Some(soname.into()),
        needed: needed.iter().map(|s| s.to_string()).collect(),
        ..Spec::default()
    }
}

/// A dynamically linked executable.
pub fn exe(needed: &[&str]) -> Spec {
    Spec {
        e_type: ET_EXEC,
        interp: Some("/lib64/ld-linux-x86-64.so.2".into()),
        needed: needed.iter().map(|s| s.to_string()).collect(),
        ..Spec::default()
    }
}

impl Spec {
    pub fn runpath(mut self, p: &str) -> Spec {
        self.runpath = Some(p.into());
        self
    }

    pub fn rpath(mut self, p: &str) -> Spec {
        self.rpath = Some(p.into());
        self
    }

    pub fn bits32(mut self) -> Spec {
        self.is_64 = false;
        if self.machine == EM_X86_64 {
            self.machine = goblin::elf::header::EM_386;
        }
        self
    }

    pub fn needs_versions(mut self, file: &str, versions: &[&str]) -> Spec {
        self.verneed.push((
            file.into(),
            versions.iter().map(|v| (v.to_string(), false)).collect(),
        ));
        self
    }

    pub fn defines(mut self, versions: &[&str]) -> Spec {
        self.verdef = Some(versions.iter().map(|v| v.to_string()).collect());
        self
    }

    /// Defines `names` (`f` or `f@VERSION`, the version one of `defines`).
    pub fn exports(mut self, names: &[&str]) -> Spec {
        for n in names {
            let (name, version) = split_version(n);
            self.symbols.push(SymSpec {
                name,
                defined: true,
                version,
                ..SymSpec::default()
            });
        }
        self
    }

    /// Uses `names` (`f` or `f@VERSION`, the version one of the needs).
    pub fn uses(mut self, names: &[&str]) -> Spec {
        for n in names {
            let (name, version) = split_version(n);
            self.symbols.push(SymSpec {
                name,
                version,
                ..SymSpec::default()
            });
        }
        self
    }

    /// Uses `names` weakly: nothing need define them.
    pub fn uses_weak(mut self, names: &[&str]) -> Spec {
        for n in names {
            self.symbols.push(SymSpec {
                name: n.to_string(),
                weak: true,
                ..SymSpec::default()
            });
        }
        self
    }

    pub fn build(&self) -> Vec<u8> {
        build(self)
    }
}

fn split_version(n: &str) -> (String, Option<String>) {
    match n.split_once('@') {
        Some((name, v)) => (name.to_string(), Some(v.to_string())),
        None => (n.to_string(), None),
    }
}

struct W {
    b: Vec<u8>,
    is_64: bool,
}

impl W {
    fn u16(&mut self, v: u16) {
        self.b.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.b.extend_from_slice(&v.to_le_bytes());
    }
    /// A word of the class: 4 or 8 bytes.
    fn word(&mut self, v: u64) {
        if self.is_64 {
            self.b.extend_from_slice(&v.to_le_bytes());
        } else {
            self.u32(v as u32);
        }
    }
    fn align(&mut self, n: usize) {
        while !self.b.len().is_multiple_of(n) {
            self.b.push(0);
        }
    }
}

pub fn build(s: &Spec) -> Vec<u8> {
    let (ehsize, phsize, dynsize) = if s.is_64 { (64, 56, 16) } else { (52, 32, 8) };
    let nph = 2 + usize::from(s.interp.is_some());
    // Strings first, so the tables can point into them.
    let mut strtab = vec![0u8];
    let mut strs = std::collections::HashMap::new();
    let mut intern = |x: &str, strtab: &mut Vec<u8>| -> u32 {
        *strs.entry(x.to_string()).or_insert_with(|| {
            let o = strtab.len() as u32;
            strtab.extend_from_slice(x.as_bytes());
            strtab.push(0);
            o
        })
    };
    let needed: Vec<u32> = s.needed.iter().map(|n| intern(n, &mut strtab)).collect();
    let soname = s.soname.as_deref().map(|n| intern(n, &mut strtab));
    let rpath = s.rpath.as_deref().map(|n| intern(n, &mut strtab));
    let runpath = s.runpath.as_deref().map(|n| intern(n, &mut strtab));
    let verneed: Vec<(u32, Vec<(u32, bool)>)> = s
        .verneed
        .iter()
        .map(|(f, vs)| {
            let f = intern(f, &mut strtab);
            (
                f,
                vs.iter()
                    .map(|(v, w)| (intern(v, &mut strtab), *w))
                    .collect(),
            )
        })
        .collect();
    let verdef: Option<Vec<u32>> = s
        .verdef
        .as_ref()
        .map(|vs| vs.iter().map(|v| intern(v, &mut strtab)).collect());
    let sym_names: Vec<u32> = s
        .symbols
        .iter()
        .map(|x| intern(&x.name, &mut strtab))
        .collect();

    let mut w = W {
        b: vec![0; ehsize + nph * phsize],
        is_64: s.is_64,
    };
    let interp_at = w.b.len();
    if let Some(i) = &s.interp {
        w.b.extend_from_slice(i.as_bytes());
        w.b.push(0);
    }
    let interp_len = w.b.len() - interp_at;
    let strtab_at = w.b.len();
    w.b.extend_from_slice(&strtab);
    w.align(8);
    // Version indices: the definitions take 1.., the needs follow.
    let first_need = 2 + s.verdef.as_ref().map_or(0, |d| d.len().saturating_sub(1));
    let mut need_index = HashMap::new();
    let mut next = first_need;
    for (_, vs) in &s.verneed {
        for (v, _) in vs {
            need_index.insert(v.clone(), next as u16);
            next += 1;
        }
    }
    let verneed_at = w.b.len();
    let mut k = first_need;
    for (i, ((file, vs), (_, names))) in verneed.iter().zip(&s.verneed).enumerate() {
        w.u16(1);
        w.u16(vs.len() as u16);
        w.u32(*file);
        w.u32(16);
        w.u32(if i + 1 == verneed.len() {
            0
        } else {
            16 + 16 * vs.len() as u32
        });
        for (j, ((name, weak), (text, _))) in vs.iter().zip(names).enumerate() {
            w.u32(sysv_hash(text.as_bytes()).wrapping_add(u32::from(s.wrong_need_hash)));
            w.u16(if *weak { 2 } else { 0 });
            w.u16(k as u16);
            k += 1;
            w.u32(*name);
            w.u32(if j + 1 == vs.len() { 0 } else { 16 });
        }
    }
    let verdef_at = w.b.len();
    if let (Some(defs), Some(texts)) = (&verdef, &s.verdef) {
        for (i, (name, text)) in defs.iter().zip(texts).enumerate() {
            w.u16(1);
            w.u16(if i == 0 { 1 } else { 0 });
            w.u16(1 + i as u16);
            w.u16(1);
            w.u32(sysv_hash(text.as_bytes()));
            w.u32(20);
            w.u32(if i + 1 == defs.len() { 0 } else { 28 });
            w.u32(*name);
            w.u32(0);
        }
    }
    w.align(8);
    // The symbol table: the null symbol, then each symbol; a DT_HASH over
    // it; DT_VERSYM when the object has versions.
    let syms = &s.symbols;
    let nsyms = syms.len() + 1;
    let symtab_at = w.b.len();
    let versioned = !s.verneed.is_empty() || s.verdef.is_some();
    let mut hash_at = 0;
    let mut versym_at = 0;
    if !syms.is_empty() {
        w.b.extend(vec![0; if s.is_64 { 24 } else { 16 }]);
        for (x, &name) in syms.iter().zip(&sym_names) {
            let info = (if x.weak { 2u8 } else { 1 }) << 4 | if x.defined { 2 } else { 0 };
            let (shndx, value) = if x.defined { (1u16, 0x100u64) } else { (0, 0) };
            if s.is_64 {
                w.u32(name);
                w.b.push(info);
                w.b.push(0);
                w.u16(shndx);
                w.word(value);
                w.word(0);
            } else {
                w.u32(name);
                w.word(value);
                w.u32(0);
                w.b.push(info);
                w.b.push(0);
                w.u16(shndx);
            }
        }
        w.align(8);
        hash_at = w.b.len();
        let nbucket = 3u32;
        let mut buckets = vec![0u32; nbucket as usize];
        let mut chains = vec![0u32; nsyms];
        for (i, x) in syms.iter().enumerate().rev() {
            let b = (sysv_hash(x.name.as_bytes()) % nbucket) as usize;
            chains[i + 1] = buckets[b];
            buckets[b] = (i + 1) as u32;
        }
        w.u32(nbucket);
        w.u32(nsyms as u32);
        for v in buckets.iter().chain(&chains) {
            w.u32(*v);
        }
        if versioned {
            versym_at = w.b.len();
            w.u16(0);
            for x in syms {
                let ndx = match &x.version {
                    None if x.defined => 1,
                    None => 0,
                    Some(v) if x.defined => {
                        let defs = s.verdef.as_ref().expect("defines() before exports()");
                        1 + defs.iter().position(|d| d == v).expect("a defined version") as u16
                    }
                    Some(v) => need_index[v],
                };
                w.u16(ndx | if x.hidden { 0x8000 } else { 0 });
            }
        }
        w.align(8);
    }
    let dynamic_at = w.b.len();
    let mut dyns: Vec<(u64, u64)> = needed.iter().map(|&n| (1, u64::from(n))).collect();
    if let Some(n) = soname {
        dyns.push((14, n.into()));
    }
    if let Some(n) = rpath {
        dyns.push((15, n.into()));
    }
    if let Some(n) = runpath {
        dyns.push((29, n.into()));
    }
    dyns.push((5, strtab_at as u64));
    dyns.push((10, strtab.len() as u64));
    if !syms.is_empty() {
        dyns.push((6, symtab_at as u64));
        dyns.push((11, if s.is_64 { 24 } else { 16 }));
        dyns.push((4, hash_at as u64));
        if versym_at != 0 {
            dyns.push((0x6fff_fff0, versym_at as u64));
        }
    }
    if s.flags_1 != 0 {
        dyns.push((0x6fff_fffb, s.flags_1));
    }
    if !verneed.is_empty() {
        dyns.push((0x6fff_fffe, verneed_at as u64));
        dyns.push((0x6fff_ffff, verneed.len() as u64));
    }
    if let Some(d) = &verdef {
        dyns.push((0x6fff_fffc, verdef_at as u64));
        dyns.push((0x6fff_fffd, d.len() as u64));
    }
    dyns.push((0, 0));
    for (tag, val) in &dyns {
        w.word(*tag);
        w.word(*val);
    }
    let total = w.b.len() as u64;
    let dyn_len = (dyns.len() * dynsize) as u64;

    // Header and program headers, written over the zeroes reserved.
    let mut h = W {
        b: Vec::new(),
        is_64: s.is_64,
    };
    h.b.extend_from_slice(b"\x7fELF");
    h.b.push(if s.is_64 { 2 } else { 1 });
    h.b.extend_from_slice(&[1, 1, 0]);
    h.b.extend_from_slice(&[0; 8]);
    h.u16(s.e_type);
    h.u16(s.machine);
    h.u32(1);
    h.word(0);
    h.word(ehsize as u64);
    h.word(0);
    h.u32(0);
    h.u16(ehsize as u16);
    h.u16(phsize as u16);
    h.u16(nph as u16);
    h.u16(if s.is_64 { 64 } else { 40 });
    h.u16(0);
    h.u16(0);
    let phdr = |h: &mut W, p_type: u32, off: u64, len: u64| {
        if h.is_64 {
            h.u32(p_type);
            h.u32(4);
            h.word(off);
            h.word(off);
            h.word(off);
            h.word(len);
            h.word(len);
            h.word(8);
        } else {
            h.u32(p_type);
            h.word(off);
            h.word(off);
            h.word(off);
            h.word(len);
            h.word(len);
            h.u32(4);
            h.word(8);
        }
    };
    if s.interp.is_some() {
        phdr(&mut h, 3, interp_at as u64, interp_len as u64);
    }
    phdr(&mut h, 1, 0, total);
    phdr(&mut h, 2, dynamic_at as u64, dyn_len);
    w.b[..h.b.len()].copy_from_slice(&h.b);
    w.b
}

/// A relocatable ELF64 little-endian x86-64 object (`ET_REL`, what
/// `gcc -c` gives and a kernel module is) with the given sections, in
/// order after the null section, then `.shstrtab` (the name table) last.
pub fn relocatable(sections: &[(&str, &[u8])]) -> Vec<u8> {
    let mut names = vec![0u8];
    let mut name_at = Vec::new();
    for (name, _) in sections
        .iter()
        .map(|(n, d)| (*n, *d))
        .chain([(".shstrtab", &[][..])])
    {
        name_at.push(names.len() as u32);
        names.extend_from_slice(name.as_bytes());
        names.push(0);
    }
    let mut out = vec![0u8; 64];
    let mut placed = Vec::new();
    for (_, data) in sections {
        placed.push((out.len(), data.len()));
        out.extend_from_slice(data);
    }
    placed.push((out.len(), names.len()));
    out.extend_from_slice(&names);
    let shoff = out.len().next_multiple_of(8);
    out.resize(shoff, 0);
    let shnum = sections.len() + 2;
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 2; // ELFCLASS64
    out[5] = 1; // little-endian
    out[6] = 1; // EV_CURRENT
    out[16..18].copy_from_slice(&ET_REL.to_le_bytes());
    out[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
    out[20..24].copy_from_slice(&1u32.to_le_bytes());
    out[40..48].copy_from_slice(&(shoff as u64).to_le_bytes());
    out[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    out[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
    out[60..62].copy_from_slice(&(shnum as u16).to_le_bytes());
    out[62..64].copy_from_slice(&((shnum - 1) as u16).to_le_bytes()); // e_shstrndx
    out.extend(vec![0u8; 64]);
    for (i, ((offset, size), name)) in placed.iter().zip(&name_at).enumerate() {
        let kind: u32 = if i + 2 == shnum { 3 } else { 1 }; // STRTAB, PROGBITS
        let mut s = vec![0u8; 64];
        s[0..4].copy_from_slice(&name.to_le_bytes());
        s[4..8].copy_from_slice(&kind.to_le_bytes());
        s[24..32].copy_from_slice(&(*offset as u64).to_le_bytes());
        s[32..40].copy_from_slice(&(*size as u64).to_le_bytes());
        s[48..56].copy_from_slice(&1u64.to_le_bytes()); // sh_addralign
        out.extend(s);
    }
    out
}

/// A new-format ld.so.cache; `(soname, path, flags, hwcap)` per entry.
pub fn ld_cache(entries: &[(&str, &str, i32, u64)]) -> Vec<u8> {
    let mut strings = Vec::new();
    let base = ldcache::NEW_HEADER + entries.len() * ldcache::NEW_ENTRY;
    let mut offs = Vec::new();
    for (k, p, _, _) in entries {
        let ko = base + strings.len();
        strings.extend_from_slice(k.as_bytes());
        strings.push(0);
        let po = base + strings.len();
        strings.extend_from_slice(p.as_bytes());
        strings.push(0);
        offs.push((ko as u32, po as u32));
    }
    let mut b = ldcache::NEW_MAGIC.to_vec();
    b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    b.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    b.extend_from_slice(&[2, 0, 0, 0]);
    b.extend_from_slice(&[0; 16]);
    for ((_, _, flags, hwcap), (ko, po)) in entries.iter().zip(offs) {
        b.extend_from_slice(&flags.to_le_bytes());
        b.extend_from_slice(&ko.to_le_bytes());
        b.extend_from_slice(&po.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&hwcap.to_le_bytes());
    }
    b.extend_from_slice(&strings);
    b
}
