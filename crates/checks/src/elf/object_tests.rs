use super::*;
use crate::elf::fixture::{self, Spec};
use crate::elf::symbols::sysv_hash;
use nodecheck_core::target::{FileAt, MemoryTarget, Metadata, Target};

fn parse(bytes: &[u8]) -> Result<Option<Object>, Malformed> {
    let t = MemoryTarget::new().file("/f", 0o755, 0, 0, bytes);
    let f = t.open("/f").unwrap();
    read(f.as_ref())
}

#[test]
fn reads_what_the_loader_reads() {
    let spec = fixture::exe(&["libfoo.so.1", "libc.so.6"])
        .runpath("$ORIGIN/../lib")
        .rpath("/opt/old")
        .needs_versions("libc.so.6", &["GLIBC_2.2.5", "GLIBC_2.34"]);
    let o = parse(&spec.build()).unwrap().unwrap();
    assert_eq!(o.needed, ["libfoo.so.1", "libc.so.6"]);
    assert_eq!(o.interp.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
    assert_eq!(o.runpath.as_deref(), Some("$ORIGIN/../lib"));
    assert_eq!(o.rpath.as_deref(), Some("/opt/old"));
    assert_eq!(o.verneed.len(), 1);
    assert_eq!(o.verneed[0].file, "libc.so.6");
    let names: Vec<&str> = o.verneed[0]
        .versions
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(names, ["GLIBC_2.2.5", "GLIBC_2.34"]);
    assert!(o.verdef.is_none());
    assert!(o.dynamic && o.is_loadable());
    assert_eq!(o.ident.unwrap().to_string(), "64-bit X86_64");

    let lib = fixture::lib("libc.so.6", &["ld-linux-x86-64.so.2"])
        .defines(&["libc.so.6", "GLIBC_2.2.5", "GLIBC_2.34"])
        .bits32()
        .build();
    let o = parse(&lib).unwrap().unwrap();
    assert_eq!(o.soname.as_deref(), Some("libc.so.6"));
    let defs: Vec<(&str, u16, u32)> = o
        .verdef
        .iter()
        .flatten()
        .map(|d| (d.name.as_str(), d.index, d.hash))
        .collect();
    assert_eq!(
        defs,
        [
            ("libc.so.6", 1, sysv_hash(b"libc.so.6")),
            ("GLIBC_2.2.5", 2, sysv_hash(b"GLIBC_2.2.5")),
            ("GLIBC_2.34", 3, sysv_hash(b"GLIBC_2.34")),
        ]
    );
    assert!(!o.ident.unwrap().is_64());
}

#[test]
fn other_files_are_not_elf() {
    assert_eq!(parse(b"#!/bin/sh\necho hi\n").unwrap(), None);
    assert_eq!(parse(b"\x7fEL").unwrap(), None);
    // An object file is ELF but not loadable; only its header is read.
    let mut rel = fixture::lib("x", &[]).build();
    rel[16] = 1; // ET_REL
    let o = parse(&rel).unwrap().unwrap();
    assert!(!o.is_loadable() && o.needed.is_empty());
}

#[test]
fn every_truncation_is_an_error_or_a_skip_never_a_panic() {
    let full = fixture::exe(&["libfoo.so.1"])
        .runpath("/x")
        .needs_versions("libc.so.6", &["GLIBC_2.34"])
        .build();
    for cut in 0..full.len() {
        let r = parse(&full[..cut]);
        if (4..64).contains(&cut) {
            assert!(r.is_err(), "cut at {cut}: {r:?}");
        }
    }
    assert!(parse(&full).unwrap().is_some());
}

#[test]
fn bogus_fields_are_errors() {
    let good = fixture::exe(&["libfoo.so.1"]).build();
    // e_phoff far past the end.
    let mut b = good.clone();
    b[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(
        parse(&b).unwrap_err().0.contains("past the end"),
        "{:?}",
        parse(&b)
    );
    // A wrong program header size.
    let mut b = good.clone();
    b[54] = 7;
    assert!(parse(&b).unwrap_err().0.contains("program header size"));
    // Invalid class and data bytes.
    let mut b = good.clone();
    b[4] = 9;
    assert!(parse(&b).unwrap_err().0.contains("class"));
    let mut b = good.clone();
    b[5] = 0;
    assert!(parse(&b).unwrap_err().0.contains("data encoding"));
}

#[test]
fn a_segment_at_the_top_of_the_file_offsets_is_an_error() {
    // Found by the elf_object fuzz target: a PT_LOAD whose p_offset is
    // near u64::MAX puts DT_STRTAB there, and a string's offset inside it
    // overflowed (a panic with overflow checks, a wrapped read of the
    // wrong bytes without them).
    let mut b = fixture::exe(&["libfoo.so.1"]).build();
    let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes([b[56], b[57]]) as usize;
    let load = (0..phnum)
        .map(|i| phoff + i * 56)
        .find(|&p| b[p..p + 4] == 1u32.to_le_bytes())
        .unwrap();
    b[load + 8..load + 16].copy_from_slice(&(u64::MAX - 4).to_le_bytes());
    let err = parse(&b).unwrap_err();
    assert!(err.0.contains("past the end of the file"), "{err:?}");
}

#[test]
fn every_byte_flip_is_survived() {
    // Flip each byte of a small executable to a few values: whatever the
    // result, the reader returns.
    let good = fixture::exe(&["libfoo.so.1", "libbar.so.2"])
        .runpath("$ORIGIN")
        .needs_versions("libc.so.6", &["GLIBC_2.34", "GLIBC_2.2.5"])
        .build();
    for i in 0..good.len() {
        for v in [0u8, 1, 0x7f, 0x80, 0xff] {
            let mut b = good.clone();
            b[i] = v;
            let _ = parse(&b);
        }
    }
}

/// A file that shrinks between the size check and the reads.
struct Shrinking(Metadata, Vec<u8>);

impl FileAt for Shrinking {
    fn metadata(&self) -> &Metadata {
        &self.0
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        // Only the first 100 bytes are still there.
        let data = &self.1[..100.min(self.1.len())];
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }
}

#[test]
fn a_file_that_changes_while_read_is_an_error() {
    let b = Spec {
        needed: vec!["libfoo.so.1".into()],
        ..Spec::default()
    }
    .build();
    let t = MemoryTarget::new().file("/f", 0o755, 0, 0, &b);
    let md = t.metadata("/f", true).unwrap();
    let r = read(&Shrinking(md, b));
    assert!(r.is_err(), "{r:?}");
}

/// A version table read through a window ([`version_bytes`]) is widened
/// while its chain reaches past the window, so a table whose entries lie
/// far apart parses as over its whole span; a chain that ends inside the
/// window needs no more bytes.
#[test]
fn a_version_chain_past_the_window_widens_it() {
    let le = Ctx::new(Container::Big, Endian::Little);
    let put16 =
        |b: &mut Vec<u8>, at: usize, v: u16| b[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 =
        |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    // Two Elf_Verneed, the second 6,000 bytes after the first, one
    // Elf_Vernaux each right after its entry.
    let mut need = vec![0u8; 6_032];
    for (at, next) in [(0usize, 6_000u32), (6_000, 0)] {
        put16(&mut need, at, 1);
        put16(&mut need, at + 2, 1);
        put32(&mut need, at + 8, 16);
        put32(&mut need, at + 12, next);
    }
    assert!(version_chain_leaves(&need[..4096], 2, Table::Need, le));
    assert!(!version_chain_leaves(&need, 2, Table::Need, le));
    // Only one entry asked for: the window holds it.
    assert!(!version_chain_leaves(&need[..4096], 1, Table::Need, le));
    // An auxiliary entry past the window.
    let mut aux = need[..6_000].to_vec();
    put32(&mut aux, 8, 5_000);
    assert!(version_chain_leaves(&aux[..4096], 1, Table::Need, le));
    // Elf_Verdef: 20 bytes, aux at 12, next at 16; Elf_Verdaux 8 bytes.
    let mut def = vec![0u8; 5_028];
    for (at, next) in [(0usize, 5_000u32), (5_000, 0)] {
        put16(&mut def, at + 6, 1);
        put32(&mut def, at + 12, 20);
        put32(&mut def, at + 16, next);
    }
    assert!(version_chain_leaves(&def[..4096], 2, Table::Def, le));
    assert!(!version_chain_leaves(&def, 2, Table::Def, le));
}
