//! A kernel module file on arbitrary bytes: the decompressors (xz, zstd,
//! gzip, by magic), then the ELF section reader shared with `elf`
//! (section table, name table, `.modinfo`) and the record split. It
//! returns a modinfo or an error, never panics, and never allocates what
//! a bogus size field asks for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodecheck_checks::elf::object::InMemory;
use nodecheck_checks::elf::section::Sections;
use nodecheck_checks::modfile;
use nodecheck_fuzz as _; // the allocation cap

fuzz_target!(|data: &[u8]| {
    let _ = modfile::modinfo_of_bytes(data);
    // The section reader alone, over the raw bytes, for any section.
    let file = InMemory::new(data);
    if let Ok(Some(mut s)) = Sections::open(&file) {
        let _ = s.section(".modinfo", 1 << 20);
        let _ = s.section(".shstrtab", 1 << 20);
    }
});
