//! ELF sections by name, for the files that have no dynamic section to
//! go by: relocatable objects (kernel modules and their `.modinfo`).
//! The same lazy reader as [`super::object`]: the ELF header, then on
//! demand the section header table, the section name table and the one
//! section asked for, each capped and checked against the file.

use std::borrow::Cow;

use goblin::container::Ctx;
use goblin::elf::header::Header;
use goblin::elf::section_header::{SHN_XINDEX, SHT_NOBITS, SectionHeader};
use nodecheck_core::target::FileAt;

use super::object::{Malformed, Reader, bad, elf_header};

/// The most bytes read from one file (headers, names and sections).
const BUDGET: usize = 64 << 20;

/// An ELF file opened for its sections.
pub struct Sections<'a> {
    r: Reader<'a>,
    header: Header,
    ctx: Ctx,
    /// The section headers and the name table, once read.
    table: Option<(Vec<SectionHeader>, Vec<u8>)>,
}

fn past_end(what: &str) -> Malformed {
    bad(format!("truncated ELF: the file ends before its {what}"))
}

impl<'a> Sections<'a> {
    /// Reads the ELF header. `Ok(None)`: not ELF (no magic).
    pub fn open(file: &'a dyn FileAt) -> Result<Option<Sections<'a>>, Malformed> {
        let r = Reader::new(file, file.metadata().size, BUDGET)?;
        let Some((header, ctx)) = elf_header(&r)? else {
            return Ok(None);
        };
        Ok(Some(Sections {
            r,
            header,
            ctx,
            table: None,
        }))
    }

    /// `e_type`: `ET_REL` for a kernel module.
    pub fn e_type(&self) -> u16 {
        self.header.e_type
    }

    /// `len` bytes at `off`, or "the file ends before its `what`".
    fn at(&mut self, off: u64, len: u64, what: &str) -> Result<Cow<'_, [u8]>, Malformed> {
        if off.checked_add(len).is_none_or(|end| end > self.r.size) {
            return Err(past_end(what));
        }
        let len = usize::try_from(len).map_err(|_| past_end(what))?;
        self.r.bytes(off, len, what)
    }

    /// The section headers and the section name table.
    fn table(&mut self) -> Result<(Vec<SectionHeader>, Vec<u8>), Malformed> {
        let h = self.header;
        let entry = SectionHeader::size(self.ctx) as u64;
        let mut count = u64::from(h.e_shnum);
        if count == 0 {
            // More than 0xff00 sections: the count is in the first header.
            let first = self.at(h.e_shoff, entry, "section headers")?.into_owned();
            count = SectionHeader::parse_from(&first, 0, 1, self.ctx)
                .map_err(|e| bad(format!("corrupt ELF section headers: {e}")))?
                .first()
                .map_or(0, |s| s.sh_size);
        }
        // Each header takes `entry` bytes of the file, so a count the file
        // cannot hold is a lie, not an allocation to make.
        let len = count
            .checked_mul(entry)
            .filter(|&n| n <= self.r.size)
            .ok_or_else(|| past_end("section headers"))?;
        let bytes = self.at(h.e_shoff, len, "section headers")?.into_owned();
        let sections = SectionHeader::parse_from(&bytes, 0, count as usize, self.ctx)
            .map_err(|e| bad(format!("corrupt ELF section headers: {e}")))?;
        let names_at = if h.e_shstrndx == SHN_XINDEX as u16 {
            sections.first().map_or(0, |s| s.sh_link as usize)
        } else {
            usize::from(h.e_shstrndx)
        };
        let names = sections
            .get(names_at)
            .ok_or_else(|| bad("corrupt ELF: the section name table is missing"))?
            .clone();
        let names = self.data(&names, "section name table", SECTION_LIMIT)?;
        Ok((sections, names))
    }

    /// The contents of one section, at most `limit` bytes.
    fn data(&mut self, s: &SectionHeader, what: &str, limit: u64) -> Result<Vec<u8>, Malformed> {
        if s.sh_type == SHT_NOBITS {
            return Ok(Vec::new());
        }
        if s.sh_size > limit {
            return Err(bad(format!(
                "corrupt ELF: its {what} claims {} bytes",
                s.sh_size
            )));
        }
        Ok(self.at(s.sh_offset, s.sh_size, what)?.into_owned())
    }

    /// The contents of the first section called `name` (at most `limit`
    /// bytes); `Ok(None)`: the file has no such section, or no section
    /// headers at all.
    pub fn section(&mut self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, Malformed> {
        if self.header.e_shoff == 0 {
            return Ok(None);
        }
        if self.table.is_none() {
            self.table = Some(self.table()?);
        }
        let Some((sections, names)) = &self.table else {
            return Ok(None);
        };
        let Some(s) = sections
            .iter()
            .find(|s| name_at(names, s.sh_name) == Some(name.as_bytes()))
            .cloned()
        else {
            return Ok(None);
        };
        self.data(&s, &format!("{name} section"), limit).map(Some)
    }
}

/// The largest section name table read (real ones are a few KiB).
const SECTION_LIMIT: u64 = 16 << 20;

fn name_at(names: &[u8], at: usize) -> Option<&[u8]> {
    let rest = names.get(at..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    Some(&rest[..end])
}
