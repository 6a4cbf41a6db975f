//! Small but well-formed ELF files for the unit tests: one PT_LOAD over the
//! whole file (so addresses equal offsets), PT_INTERP, PT_DYNAMIC, a
//! dynamic string table and version tables, for either class.

use goblin::elf::header::{EM_X86_64, ET_DYN, ET_EXEC};

use super::ldcache;

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

    pub fn build(&self) -> Vec<u8> {
        build(self)
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
    let verneed_at = w.b.len();
    for (i, (file, vs)) in verneed.iter().enumerate() {
        w.u16(1);
        w.u16(vs.len() as u16);
        w.u32(*file);
        w.u32(16);
        w.u32(if i + 1 == verneed.len() {
            0
        } else {
            16 + 16 * vs.len() as u32
        });
        for (j, (name, weak)) in vs.iter().enumerate() {
            w.u32(0);
            w.u16(if *weak { 2 } else { 0 });
            w.u16(2 + j as u16);
            w.u32(*name);
            w.u32(if j + 1 == vs.len() { 0 } else { 16 });
        }
    }
    let verdef_at = w.b.len();
    if let Some(defs) = &verdef {
        for (i, name) in defs.iter().enumerate() {
            w.u16(1);
            w.u16(if i == 0 { 1 } else { 0 });
            w.u16(1 + i as u16);
            w.u16(1);
            w.u32(0);
            w.u32(20);
            w.u32(if i + 1 == defs.len() { 0 } else { 28 });
            w.u32(*name);
            w.u32(0);
        }
    }
    w.align(8);
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
