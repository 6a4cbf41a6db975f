//! Reads what the dynamic loader needs from an ELF file, and nothing else:
//! the header, the program headers, the dynamic section (DT_NEEDED,
//! DT_SONAME, DT_RPATH, DT_RUNPATH, DT_FLAGS_1) and the version tables
//! (DT_VERNEED, DT_VERDEF), located through the dynamic section as ld.so
//! does, so stripped files without section headers read the same.
//!
//! goblin parses the structures; this module decides which bytes to read.
//! Files are read piecewise through [`FileAt`] (a 1 GB library costs a few
//! kilobytes), every size and count is capped, and every offset is checked
//! against the file: hostile input gives an error, never a panic or an
//! allocation the size of a bogus header field.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::dynamic::{
    DF_1_NODEFLIB, DF_1_PIE, DT_FLAGS_1, DT_NEEDED, DT_NULL, DT_RPATH, DT_RUNPATH, DT_SONAME,
    DT_STRSZ, DT_STRTAB, DT_VERDEF, DT_VERDEFNUM, DT_VERNEED, DT_VERNEEDNUM, Dyn,
};
use goblin::elf::header::{self, Header};
use goblin::elf::program_header::{PT_DYNAMIC, PT_INTERP, PT_LOAD, ProgramHeader};
use goblin::elf::section_header::{SHT_GNU_VERDEF, SHT_GNU_VERNEED, SectionHeader};
use goblin::elf::symver::{VER_FLG_WEAK, VerdefSection, VerneedSection};
use nodecheck_core::target::{FileAt, FileType, Metadata};
use scroll::Pread;

/// Bytes read at the start of a dynamic object in one go: the header and
/// program headers, and for small files the dynamic string table and
/// version tables too (strings elsewhere come through a window, see
/// [`Reader::cstr`]).
pub const HEAD: usize = 4 << 10;
/// The most program headers, dynamic entries and version entries read.
const MAX_PHDRS: usize = 4096;
const MAX_DYNAMIC: usize = 64 << 10;
const MAX_VERSIONS: usize = 1 << 16;
/// The largest version table read (real ones are a few kilobytes).
const MAX_VERSION_BYTES: u64 = 1 << 20;
/// Bytes read at once for a string outside the head (see [`Reader::cstr`]).
const STRING_WINDOW: usize = 4 << 10;
/// The longest string (a long Spack RUNPATH is a few kilobytes).
const MAX_STRING: usize = 64 << 10;
/// The most bytes read from one file in all.
const BUDGET: usize = 8 << 20;

/// Class, byte order and machine: what ld.so compares before it accepts
/// a candidate file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ident {
    /// `ELFCLASS32` (1) or `ELFCLASS64` (2).
    pub class: u8,
    /// `ELFDATA2LSB` (1) or `ELFDATA2MSB` (2).
    pub data: u8,
    pub machine: u16,
}

impl Ident {
    pub fn is_64(self) -> bool {
        self.class == header::ELFCLASS64
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = if self.is_64() { 64 } else { 32 };
        write!(f, "{}-bit {}", bits, header::machine_to_str(self.machine))
    }
}

/// A version an object needs from one of its libraries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub name: String,
    /// `VER_FLG_WEAK`: ld.so only warns when it is missing.
    pub weak: bool,
    /// `vna_other`: the index DT_VERSYM uses for it (bit 15: hidden).
    pub index: u16,
    /// `vna_hash`: the ELF hash of the name, as the linker wrote it. ld.so
    /// takes a definition only when its `vd_hash` equals this and the
    /// names are the same.
    pub hash: u32,
}

/// A version an object defines (DT_VERDEF, its first name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionDef {
    pub name: String,
    /// `vd_ndx`: the index DT_VERSYM uses for it.
    pub index: u16,
    /// `vd_hash`: a need matches it only with the same `vna_hash` (and
    /// name).
    pub hash: u32,
}

/// DT_VERNEED: the versions needed from one library (`vn_file`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionNeed {
    pub file: String,
    pub versions: Vec<Version>,
}

/// What the loader sees of an ELF file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Object {
    pub ident: Option<Ident>,
    /// `e_type`: `ET_EXEC`, `ET_DYN`, `ET_REL`, …
    pub e_type: u16,
    pub osabi: u8,
    /// PT_INTERP: the program interpreter an executable names.
    pub interp: Option<String>,
    /// Whether there is a PT_DYNAMIC segment at all.
    pub dynamic: bool,
    pub soname: Option<String>,
    pub needed: Vec<String>,
    /// DT_RPATH as written (colon-separated); ld.so drops it when a
    /// DT_RUNPATH is present, and so does the resolver.
    pub rpath: Option<String>,
    pub runpath: Option<String>,
    /// `DF_1_NODEFLIB`: skip ld.so.cache and the default directories.
    pub nodeflib: bool,
    /// `DF_1_PIE`: a position-independent executable, which ld.so refuses
    /// to load as a library.
    pub pie: bool,
    pub verneed: Vec<VersionNeed>,
    /// DT_VERDEF: the versions defined; `None` when the object has no
    /// version definitions (ld.so then accepts any needed version).
    pub verdef: Option<Vec<VersionDef>>,
}

impl Object {
    /// An object ld.so maps: an executable or a shared object.
    pub fn is_loadable(&self) -> bool {
        matches!(self.e_type, header::ET_EXEC | header::ET_DYN)
    }
}

/// A [`FileAt`] over bytes in memory: an ELF image that was not a file of
/// the target as such (a decompressed kernel module).
pub struct InMemory<'a> {
    metadata: Metadata,
    bytes: &'a [u8],
}

impl<'a> InMemory<'a> {
    pub fn new(bytes: &'a [u8]) -> InMemory<'a> {
        InMemory {
            metadata: Metadata {
                file_type: FileType::File,
                mode: 0o444,
                uid: 0,
                gid: 0,
                size: bytes.len() as u64,
                mtime: None,
                nlink: 1,
                dev: 0,
                ino: 0,
            },
            bytes,
        }
    }
}

impl FileAt for InMemory<'_> {
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        let n = buf.len().min(self.bytes.len() - start);
        buf[..n].copy_from_slice(&self.bytes[start..start + n]);
        Ok(n)
    }
}

/// Why a file could not be read as ELF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(super) fn bad(msg: impl Into<String>) -> Malformed {
    Malformed(msg.into())
}

/// Bytes [`is_program`] needs from the start of a file.
pub const SNIFF: usize = 18;

/// Whether the first bytes of a file are those of an ELF executable or
/// shared object (magic, then `e_type` in the file's byte order): the cheap
/// test a tree scan makes before reading a file as ELF. A file with the
/// magic but too short to tell is one (reading it says what is wrong).
pub fn is_program(head: &[u8]) -> bool {
    if head.len() < header::SELFMAG || head[..header::SELFMAG] != header::ELFMAG[..] {
        return false;
    }
    if head.len() < SNIFF {
        return true;
    }
    let t = [head[16], head[17]];
    let e_type = match head[header::EI_DATA] {
        header::ELFDATA2MSB => u16::from_be_bytes(t),
        _ => u16::from_le_bytes(t),
    };
    matches!(e_type, header::ET_EXEC | header::ET_DYN)
}

/// Reads an ELF file. `Ok(None)`: not ELF (no `\x7fELF` magic), which a
/// tree scan skips quietly. An object whose `e_type` is not loadable
/// (`ET_REL` kernel modules, cores) is returned with only its header read.
pub fn read(file: &dyn FileAt) -> Result<Option<Object>, Malformed> {
    Ok(parse(file, BUDGET)?.map(|d| d.obj))
}

/// [`read`], given the file's first bytes as read already: the first
/// [`head_len`] bytes (fewer only where the file is shorter). A tree scan
/// reads them once, to sniff the file and to parse it.
pub fn read_from(file: &dyn FileAt, head: &[u8]) -> Result<Option<Object>, Malformed> {
    Ok(parse_from(file, BUDGET, Some(head))?.map(|d| d.obj))
}

/// How many bytes the first read of a file of `size` bytes asks for: at
/// least a header's worth, even if the size said less (a file that
/// grew); at most [`HEAD`].
pub fn head_len(size: u64) -> usize {
    usize::try_from(size).unwrap_or(HEAD).clamp(64, HEAD)
}

/// A file read as far as its dynamic section, for readers of more
/// (the symbol tables).
pub(super) struct Dynamic<'a> {
    pub r: Reader<'a>,
    pub obj: Object,
    pub dyns: Vec<Dyn>,
    pub loads: Vec<ProgramHeader>,
}

impl Dynamic<'_> {
    /// The value of the last entry of `tag` (ld.so's `l_info[]`).
    pub fn last(&self, tag: u64) -> Option<u64> {
        self.dyns
            .iter()
            .rev()
            .find(|d| d.d_tag == tag)
            .map(|d| d.d_val)
    }

    /// The file offset of a virtual address and the file bytes after it
    /// in its segment.
    pub fn offset_of(&self, addr: u64) -> Option<(u64, u64)> {
        let loads: Vec<&ProgramHeader> = self.loads.iter().collect();
        offset_of(&loads, addr)
    }
}

/// [`read`] with a byte budget, keeping the reader.
pub(super) fn parse(file: &dyn FileAt, budget: usize) -> Result<Option<Dynamic<'_>>, Malformed> {
    parse_from(file, budget, None)
}

/// [`parse`], with the head read already where `head` is given.
fn parse_from<'a>(
    file: &'a dyn FileAt,
    budget: usize,
    head: Option<&[u8]>,
) -> Result<Option<Dynamic<'a>>, Malformed> {
    let size = file.metadata().size;
    // One read for the header, the program headers and, in most files,
    // the strings and version tables.
    let r = match head {
        Some(head) => Reader::with_head(file, size, budget, head.to_vec())?,
        None => Reader::new(file, size, budget)?,
    };
    let Some((h, ctx)) = elf_header(&r)? else {
        return Ok(None);
    };
    let first = &r.head;
    let class = first[header::EI_CLASS];
    let mut obj = Object {
        ident: Some(Ident {
            class,
            data: first[header::EI_DATA],
            machine: h.e_machine,
        }),
        e_type: h.e_type,
        osabi: first[header::EI_OSABI],
        ..Object::default()
    };
    let mut out = Dynamic {
        r,
        obj,
        dyns: Vec::new(),
        loads: Vec::new(),
    };
    if !out.obj.is_loadable() {
        return Ok(Some(out));
    }
    let phdrs = program_headers(&mut out.r, &h, ctx)?;
    for ph in &phdrs {
        if ph.p_type == PT_INTERP {
            let interp = out.r.cstr(ph.p_offset)?;
            out.obj.interp = Some(interp);
        }
    }
    let Some(dynamic) = phdrs.iter().find(|p| p.p_type == PT_DYNAMIC) else {
        return Ok(Some(out));
    };
    out.obj.dynamic = true;
    let loads: Vec<&ProgramHeader> = phdrs.iter().filter(|p| p.p_type == PT_LOAD).collect();
    let dyns = dynamic_entries(&mut out.r, dynamic, ctx)?;
    obj = std::mem::take(&mut out.obj);
    read_dynamic(&mut out.r, &mut obj, &dyns, &loads, ctx)?;
    out.obj = obj;
    out.loads = loads.into_iter().cloned().collect();
    out.dyns = dyns;
    Ok(Some(out))
}

/// The ELF header at the start of the reader's head, and the class and
/// byte order it gives. `Ok(None)`: not ELF (no magic).
pub(super) fn elf_header(r: &Reader<'_>) -> Result<Option<(Header, Ctx)>, Malformed> {
    let first = &r.head[..r.head.len().min(header::header64::SIZEOF_EHDR)];
    let n = first.len();
    if n < header::SELFMAG || first[..header::SELFMAG] != header::ELFMAG[..] {
        return Ok(None);
    }
    if n < header::SIZEOF_IDENT {
        return Err(bad(format!("truncated ELF header ({n} bytes)")));
    }
    let class = first[header::EI_CLASS];
    let container = match class {
        header::ELFCLASS32 => Container::Little,
        header::ELFCLASS64 => Container::Big,
        c => return Err(bad(format!("invalid ELF class {c}"))),
    };
    let endian = match first[header::EI_DATA] {
        header::ELFDATA2LSB => Endian::Little,
        header::ELFDATA2MSB => Endian::Big,
        d => return Err(bad(format!("invalid ELF data encoding {d}"))),
    };
    let ehsize = if class == header::ELFCLASS64 {
        header::header64::SIZEOF_EHDR
    } else {
        header::header32::SIZEOF_EHDR
    };
    if n < ehsize {
        return Err(bad(format!("truncated ELF header ({n} bytes)")));
    }
    let h: Header = first
        .pread_with(0, endian)
        .map_err(|e| bad(format!("bad ELF header: {e}")))?;
    Ok(Some((h, Ctx::new(container, endian))))
}

fn program_headers(
    r: &mut Reader<'_>,
    h: &Header,
    ctx: Ctx,
) -> Result<Vec<ProgramHeader>, Malformed> {
    let entsize = ProgramHeader::size(ctx);
    if h.e_phnum == 0 {
        return Ok(Vec::new());
    }
    if usize::from(h.e_phentsize) != entsize {
        return Err(bad(format!(
            "program header size {} is not {entsize}",
            h.e_phentsize
        )));
    }
    let count = usize::from(h.e_phnum).min(MAX_PHDRS);
    let bytes = r.bytes(h.e_phoff, count * entsize, "program headers")?;
    ProgramHeader::parse(&bytes, 0, count, ctx)
        .map_err(|e| bad(format!("bad program headers: {e}")))
}

fn dynamic_entries(
    r: &mut Reader<'_>,
    ph: &ProgramHeader,
    ctx: Ctx,
) -> Result<Vec<Dyn>, Malformed> {
    let entsize = Dyn::size(ctx.container);
    let count = usize::try_from(ph.p_filesz / entsize as u64)
        .unwrap_or(usize::MAX)
        .min(MAX_DYNAMIC);
    let bytes = r.bytes(ph.p_offset, count * entsize, "the dynamic section")?;
    let mut out = Vec::new();
    let mut at = 0;
    while at + entsize <= bytes.len() {
        let d: Dyn = bytes
            .gread_with(&mut at, ctx)
            .map_err(|e| bad(format!("bad dynamic entry: {e}")))?;
        if d.d_tag == DT_NULL {
            break;
        }
        out.push(d);
    }
    Ok(out)
}

/// The file offset of a virtual address, through the PT_LOAD segments
/// (only their file-backed part: a string cannot live in .bss).
fn offset_of(loads: &[&ProgramHeader], addr: u64) -> Option<(u64, u64)> {
    loads.iter().find_map(|p| {
        let rel = addr.checked_sub(p.p_vaddr)?;
        (rel < p.p_filesz).then(|| (p.p_offset.saturating_add(rel), p.p_filesz - rel))
    })
}

fn read_dynamic(
    r: &mut Reader<'_>,
    obj: &mut Object,
    dyns: &[Dyn],
    loads: &[&ProgramHeader],
    ctx: Ctx,
) -> Result<(), Malformed> {
    // Like ld.so's l_info[], the last entry of a tag wins.
    let last = |tag: u64| dyns.iter().rev().find(|d| d.d_tag == tag).map(|d| d.d_val);
    let strtab_addr = last(DT_STRTAB);
    let strsz = last(DT_STRSZ).unwrap_or(0);
    let strings = match strtab_addr {
        Some(a) => Some(
            offset_of(loads, a)
                .ok_or_else(|| bad(format!("DT_STRTAB {a:#x} is outside the file's segments")))?,
        ),
        None => None,
    };
    let string = |r: &mut Reader<'_>, what: &str, index: u64| -> Result<String, Malformed> {
        let Some((off, avail)) = strings else {
            return Err(bad(format!("{what} but no DT_STRTAB")));
        };
        if index >= strsz.min(avail) {
            return Err(bad(format!(
                "{what}: string offset {index:#x} is outside DT_STRTAB"
            )));
        }
        r.cstr(off.saturating_add(index))
    };
    for d in dyns {
        match d.d_tag {
            DT_NEEDED => {
                let s = string(r, "DT_NEEDED", d.d_val)?;
                obj.needed.push(s);
            }
            DT_FLAGS_1 => {
                obj.nodeflib = d.d_val & DF_1_NODEFLIB != 0;
                obj.pie = d.d_val & DF_1_PIE != 0;
            }
            _ => {}
        }
    }
    if let Some(i) = last(DT_SONAME) {
        obj.soname = Some(string(r, "DT_SONAME", i)?);
    }
    if let Some(i) = last(DT_RPATH) {
        obj.rpath = Some(string(r, "DT_RPATH", i)?);
    }
    if let Some(i) = last(DT_RUNPATH) {
        obj.runpath = Some(string(r, "DT_RUNPATH", i)?);
    }
    // Every version entry counts against one cap: hostile `vn_next`
    // values could otherwise make millions of tiny steps.
    let mut left = MAX_VERSIONS;
    let mut spend = || -> Result<(), Malformed> {
        left = left
            .checked_sub(1)
            .ok_or_else(|| bad(format!("more than {MAX_VERSIONS} version entries")))?;
        Ok(())
    };
    if let Some(addr) = last(DT_VERNEED) {
        let count = last(DT_VERNEEDNUM).unwrap_or(0);
        let bytes = version_bytes(r, loads, addr, count, Table::Need, ctx)?;
        let shdr = version_section(SHT_GNU_VERNEED, bytes.len(), count);
        let sec = VerneedSection::parse(&bytes, &[shdr], ctx)
            .map_err(|e| bad(format!("bad DT_VERNEED: {e}")))?;
        for need in sec.iter().flat_map(VerneedSection::iter) {
            spend()?;
            let file = string(r, "DT_VERNEED", need.vn_file as u64)?;
            let mut versions = Vec::new();
            for aux in need.iter() {
                spend()?;
                versions.push(Version {
                    name: string(r, "DT_VERNEED", aux.vna_name as u64)?,
                    weak: aux.vna_flags & VER_FLG_WEAK != 0,
                    index: aux.vna_other,
                    hash: aux.vna_hash,
                });
            }
            obj.verneed.push(VersionNeed { file, versions });
        }
    }
    if let Some(addr) = last(DT_VERDEF) {
        let count = last(DT_VERDEFNUM).unwrap_or(0);
        let bytes = version_bytes(r, loads, addr, count, Table::Def, ctx)?;
        let shdr = version_section(SHT_GNU_VERDEF, bytes.len(), count);
        let sec = VerdefSection::parse(&bytes, &[shdr], ctx)
            .map_err(|e| bad(format!("bad DT_VERDEF: {e}")))?;
        let mut defs = Vec::new();
        for def in sec.iter().flat_map(VerdefSection::iter) {
            spend()?;
            // ld.so compares a needed version with the first name only.
            if let Some(aux) = def.iter().next() {
                defs.push(VersionDef {
                    name: string(r, "DT_VERDEF", aux.vda_name as u64)?,
                    index: def.vd_ndx,
                    hash: def.vd_hash,
                });
            }
        }
        obj.verdef = Some(defs);
    }
    Ok(())
}

fn version_section(sh_type: u32, len: usize, count: u64) -> SectionHeader {
    SectionHeader {
        sh_type,
        sh_offset: 0,
        sh_size: len as u64,
        sh_info: u32::try_from(count.min(MAX_VERSIONS as u64)).unwrap_or(0),
        ..SectionHeader::default()
    }
}

/// The bytes of a version table. Its size is not recorded in the dynamic
/// section, so it may run to the end of its segment's file part (capped):
/// that is the most ever read, but a table is read first through a small
/// window, widened only while the walk of its entry chain (see
/// [`version_chain_leaves`]) leaves the window. A 1 MB `.rodata` after a
/// 300-byte table (perl's Encode modules) then costs 4 KB, and the parse
/// sees the same entries as over the whole span.
fn version_bytes(
    r: &mut Reader<'_>,
    loads: &[&ProgramHeader],
    addr: u64,
    count: u64,
    table: Table,
    ctx: Ctx,
) -> Result<Vec<u8>, Malformed> {
    let what = table.tag();
    let (off, avail) = offset_of(loads, addr)
        .ok_or_else(|| bad(format!("{what} {addr:#x} is outside the file's segments")))?;
    let full = usize::try_from(avail.min(MAX_VERSION_BYTES)).unwrap_or(0);
    let mut window = VERSION_WINDOW.min(full);
    loop {
        let bytes = r.bytes(off, window, what)?.into_owned();
        if window == full || !version_chain_leaves(&bytes, count, table, ctx) {
            return Ok(bytes);
        }
        window = window.saturating_mul(16).min(full);
    }
}

/// The first read of a version table ([`version_bytes`]).
const VERSION_WINDOW: usize = 4 << 10;

/// Which version table.
#[derive(Clone, Copy)]
enum Table {
    /// DT_VERNEED: `Elf_Verneed` (16 bytes: `vn_cnt` at 2, `vn_aux` at 8,
    /// `vn_next` at 12), each with `vn_cnt` `Elf_Vernaux` (16 bytes,
    /// `vna_next` at 12).
    Need,
    /// DT_VERDEF: `Elf_Verdef` (20 bytes: `vd_aux` at 12, `vd_next` at
    /// 16); only the first `Elf_Verdaux` (8 bytes) of each is read.
    Def,
}

impl Table {
    fn tag(self) -> &'static str {
        match self {
            Table::Need => "DT_VERNEED",
            Table::Def => "DT_VERDEF",
        }
    }
}

/// Whether walking the chain of a version table, the way the parse in
/// [`read_dynamic`] walks it (goblin's iterators: `count` entries, each
/// `next` offset added to the last, a zero `next` ends the chain), reads
/// past the end of `bytes`: then a wider window may parse differently.
/// Where the walk stops for any other reason (an offset that overflows,
/// more than [`MAX_VERSIONS`] steps) no wider window changes it.
fn version_chain_leaves(bytes: &[u8], count: u64, table: Table, ctx: Ctx) -> bool {
    let u16_at = |at: usize| -> Option<u64> {
        let b: [u8; 2] = bytes.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(u64::from(match ctx.le {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }))
    };
    let u32_at = |at: usize| -> Option<u64> {
        let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(u64::from(match ctx.le {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }))
    };
    // Past the window: `at + len` bytes are needed and not there.
    let past = |at: usize, len: usize| at.checked_add(len).is_some_and(|e| e > bytes.len());
    let (head, aux_at, next_at, aux_len, aux_next_at) = match table {
        Table::Need => (16, 8, 12, 16, 12),
        Table::Def => (20, 12, 16, 8, 4),
    };
    let mut steps = MAX_VERSIONS;
    let mut at = 0usize;
    for _ in 0..count.min(MAX_VERSIONS as u64) {
        if past(at, head) {
            return true;
        }
        let (Some(cnt), Some(aux), Some(next)) = (
            u16_at(at + if matches!(table, Table::Need) { 2 } else { 6 }),
            u32_at(at + aux_at),
            u32_at(at + next_at),
        ) else {
            return false;
        };
        let Some(mut a) = usize::try_from(aux).ok().and_then(|x| at.checked_add(x)) else {
            return false;
        };
        // goblin refuses an auxiliary offset at or past the end.
        if a >= bytes.len() {
            return true;
        }
        let auxes = match table {
            Table::Need => cnt,
            Table::Def => cnt.min(1),
        };
        for _ in 0..auxes {
            steps = match steps.checked_sub(1) {
                Some(s) => s,
                None => return false,
            };
            if past(a, aux_len) {
                return true;
            }
            let Some(n) = u32_at(a + aux_next_at) else {
                return false;
            };
            if n == 0 {
                break;
            }
            match usize::try_from(n).ok().and_then(|n| a.checked_add(n)) {
                Some(x) => a = x,
                None => return false,
            }
        }
        if next == 0 {
            return false;
        }
        match usize::try_from(next).ok().and_then(|n| at.checked_add(n)) {
            Some(x) => at = x,
            None => return false,
        }
        steps = match steps.checked_sub(1) {
            Some(s) => s,
            None => return false,
        };
    }
    false
}

/// Piecewise reads of one file: the head is read once, anything else on
/// demand, all within a byte budget.
pub(super) struct Reader<'a> {
    file: &'a dyn FileAt,
    pub size: u64,
    head: Vec<u8>,
    spent: usize,
    budget: usize,
    /// Strings read outside the head, by offset (version names repeat).
    strings: HashMap<u64, String>,
    /// The last window of bytes read for strings outside the head: its
    /// offset and bytes.
    window: (u64, Vec<u8>),
}

impl<'a> Reader<'a> {
    pub fn new(file: &'a dyn FileAt, size: u64, budget: usize) -> Result<Reader<'a>, Malformed> {
        let mut head = vec![0; head_len(size)];
        let n = file
            .read_at(&mut head, 0)
            .map_err(|e| bad(format!("cannot read: {e}")))?;
        head.truncate(n);
        Reader::with_head(file, size, budget, head)
    }

    /// A reader whose head (the file's first [`head_len`] bytes, or all
    /// of a shorter file) was read by the caller.
    fn with_head(
        file: &'a dyn FileAt,
        size: u64,
        budget: usize,
        head: Vec<u8>,
    ) -> Result<Reader<'a>, Malformed> {
        let spent = head.len();
        Ok(Reader {
            file,
            size,
            head,
            spent,
            budget,
            strings: HashMap::new(),
            window: (0, Vec::new()),
        })
    }

    /// Exactly `len` bytes at `off`, or an error naming `what`.
    pub fn bytes(&mut self, off: u64, len: usize, what: &str) -> Result<Cow<'_, [u8]>, Malformed> {
        let end = off.checked_add(len as u64);
        if end.is_none_or(|e| e > self.size) {
            return Err(bad(format!(
                "{what} at {off:#x} (+{len:#x}) are past the end of the file ({} bytes)",
                self.size
            )));
        }
        if let Some(end) = end.and_then(|e| usize::try_from(e).ok())
            && end <= self.head.len()
        {
            let start = end - len;
            return Ok(Cow::Borrowed(&self.head[start..end]));
        }
        // The string window often holds the version tables too (they
        // follow DT_STRTAB in the file).
        let (at, window) = &self.window;
        let hit = off
            .checked_sub(*at)
            .and_then(|s| usize::try_from(s).ok())
            .and_then(|start| Some((start, start.checked_add(len)?)))
            .filter(|&(_, end)| end <= window.len());
        if let Some((start, end)) = hit {
            return Ok(Cow::Borrowed(&self.window.1[start..end]));
        }
        self.spend(len)?;
        let mut buf = vec![0; len];
        let n = self
            .file
            .read_at(&mut buf, off)
            .map_err(|e| bad(format!("cannot read {what}: {e}")))?;
        if n < len {
            return Err(bad(format!(
                "{what}: the file ended early (it changed while read?)"
            )));
        }
        Ok(Cow::Owned(buf))
    }

    /// The NUL-terminated string at `off`.
    fn cstr(&mut self, off: u64) -> Result<String, Malformed> {
        if let Ok(start) = usize::try_from(off)
            && start < self.head.len()
            && let Some(nul) = self.head[start..].iter().position(|&b| b == 0)
        {
            return Ok(String::from_utf8_lossy(&self.head[start..start + nul]).into_owned());
        }
        if let Some(s) = self.in_window(off) {
            return Ok(s);
        }
        if let Some(s) = self.strings.get(&off) {
            return Ok(s.clone());
        }
        // The strings an object names (DT_NEEDED, version names) lie
        // close together in its DT_STRTAB: one read of a window from the
        // first of them usually serves the rest.
        let len = usize::try_from(self.size.saturating_sub(off))
            .unwrap_or(usize::MAX)
            .min(STRING_WINDOW);
        if len > 0 {
            self.spend(len)?;
            let mut buf = std::mem::take(&mut self.window.1);
            buf.clear();
            buf.resize(len, 0);
            let n = self
                .file
                .read_at(&mut buf, off)
                .map_err(|e| bad(format!("cannot read a string: {e}")))?;
            buf.truncate(n);
            self.window = (off, buf);
            if let Some(s) = self.in_window(off) {
                return Ok(s);
            }
        }
        let s = self.cstr_uncached(off)?;
        self.strings.insert(off, s.clone());
        Ok(s)
    }

    /// The string at `off` if the last string window holds all of it.
    fn in_window(&self, off: u64) -> Option<String> {
        let (at, bytes) = &self.window;
        let start = usize::try_from(off.checked_sub(*at)?).ok()?;
        let rest = bytes.get(start..)?;
        let nul = rest.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&rest[..nul]).into_owned())
    }

    fn cstr_uncached(&mut self, off: u64) -> Result<String, Malformed> {
        let mut chunk = 256;
        loop {
            let len = usize::try_from(self.size.saturating_sub(off))
                .unwrap_or(usize::MAX)
                .min(chunk);
            if len == 0 {
                return Err(bad(format!(
                    "string at {off:#x} is past the end of the file"
                )));
            }
            self.spend(len)?;
            let mut buf = vec![0; len];
            let n = self
                .file
                .read_at(&mut buf, off)
                .map_err(|e| bad(format!("cannot read a string: {e}")))?;
            buf.truncate(n);
            if let Some(nul) = buf.iter().position(|&b| b == 0) {
                return Ok(String::from_utf8_lossy(&buf[..nul]).into_owned());
            }
            if n < len || chunk >= MAX_STRING {
                return Err(bad(format!("unterminated string at {off:#x}")));
            }
            chunk *= 16;
        }
    }

    fn spend(&mut self, n: usize) -> Result<(), Malformed> {
        self.spent = self.spent.saturating_add(n);
        if self.spent > self.budget {
            return Err(bad(format!(
                "more than {} bytes of loader data (bogus sizes?)",
                self.budget
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "object_tests.rs"]
mod tests;
