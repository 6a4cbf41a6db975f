//! A compressed cpio indexed as it streams: small content kept in memory
//! within its budget, the rest read from a spill made on the first read
//! that needs it, and both identical to what the archive holds.

use std::io::Write;

use super::tests::{Cpio, REG, file_of};
use super::*;
use crate::target::{Target, WalkOptions};

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 1).unwrap()
}

/// A file whose bytes say where they are (no two files alike).
fn content(seed: u32, len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(31).wrapping_add(seed * 7) % 251) as u8)
        .collect()
}

#[test]
fn content_read_after_the_index_pass_is_what_the_archive_holds() {
    let files: Vec<(String, Vec<u8>)> = vec![
        ("etc/passwd".into(), b"root:x:0:0::/root:/bin/sh\n".to_vec()),
        ("etc/big.conf".into(), content(1, 60 << 10)),
        ("usr/lib/os-release".into(), b"ID=debian\n".to_vec()),
        ("usr/lib/small".into(), content(2, 4 << 10)),
        ("usr/lib/medium".into(), content(3, 5 << 10)),
        ("usr/bin/large".into(), content(4, 3 << 20)),
    ];
    let mut c = Cpio::default();
    for (name, data) in &files {
        c.entry(name, REG | 0o644, 0, data);
    }
    let raw = c.finish();
    let img = file_of(&zstd(&raw));
    let t = ImageTarget::open(img.path()).unwrap();
    assert_eq!(t.info().compression, [Compression::Zstd]);
    assert_eq!(t.info().uncompressed_size, raw.len() as u64);
    // passwd, big.conf (under /etc), os-release and small (≤ 4 KiB),
    // and the first 64 bytes of the two others.
    let kept = 26 + (60 << 10) + 10 + (4 << 10) + 2 * 64;
    assert_eq!(t.kept_bytes(), kept);
    // A read within a head (the platform's ELF probe) spills nothing; one
    // past it does.
    let f = t.open("/usr/bin/large").unwrap();
    assert_eq!(f.read_exact_at(0, 20).unwrap(), files[5].1[..20]);
    assert_eq!(f.read_exact_at(44, 20).unwrap(), files[5].1[44..64]);
    assert!(!t.spilled(), "a head read from a spill");
    // Reading what was kept decompresses nothing again.
    for (name, data) in &files[..4] {
        assert_eq!(
            &t.read(&format!("/{name}"), 1 << 30).unwrap(),
            data,
            "{name}"
        );
    }
    assert!(!t.spilled(), "kept content read from a spill");
    // The rest comes from the spill, made once, and is the same bytes.
    for (name, data) in &files[4..] {
        assert_eq!(
            &t.read(&format!("/{name}"), 1 << 30).unwrap(),
            data,
            "{name}"
        );
    }
    assert!(t.spilled());
    // pread-style reads at offsets across the boundary of the two sources.
    let f = t.open("/usr/bin/large").unwrap();
    let mut buf = vec![0; 1000];
    assert_eq!(f.read_at(&mut buf, 1 << 20).unwrap(), 1000);
    assert_eq!(buf, files[5].1[1 << 20..(1 << 20) + 1000]);
    let f = t.open("/etc/big.conf").unwrap();
    assert_eq!(f.read_at(&mut buf, (60 << 10) - 10).unwrap(), 10);
    assert_eq!(buf[..10], files[1].1[(60 << 10) - 10..]);
    assert_eq!(f.read_at(&mut buf, 60 << 10).unwrap(), 0);
}

#[test]
fn the_memory_budget_holds_and_every_file_still_reads_back() {
    // 12,000 files of 4 KiB (47 MiB) outside /etc, then /etc: the small
    // files stop at ¾ of the budget, /etc still fits after them.
    let mut c = Cpio::default();
    let mut all = Vec::new();
    for i in 0..12_000u32 {
        let name = format!("usr/share/f{i}");
        let data = content(i, 4096);
        c.entry(&name, REG | 0o644, 0, &data);
        all.push((name, data));
    }
    for i in 0..4u32 {
        let name = format!("etc/conf{i}");
        let data = content(100_000 + i, 64 << 10);
        c.entry(&name, REG | 0o644, 0, &data);
        all.push((name, data));
    }
    let img = file_of(&zstd(&c.finish()));
    let t = ImageTarget::open(img.path()).unwrap();
    assert!(t.kept_bytes() <= KEEP_BUDGET, "{} kept", t.kept_bytes());
    assert!(t.kept_bytes() > KEEP_BUDGET / 2, "{} kept", t.kept_bytes());
    for i in 0..4 {
        let name = format!("/etc/conf{i}");
        assert_eq!(t.read(&name, 1 << 20).unwrap(), all[12_000 + i].1);
    }
    assert!(!t.spilled(), "/etc was not kept within the budget");
    let by_path: std::collections::HashMap<String, &Vec<u8>> =
        all.iter().map(|(n, d)| (format!("/{n}"), d)).collect();
    let mut n = 0;
    t.walk("/", &WalkOptions::default(), &mut |e| {
        let e = e.unwrap();
        if e.metadata.file_type == FileType::File {
            let data = by_path[&e.path];
            assert_eq!(&t.read(&e.path, 1 << 20).unwrap(), data, "{}", e.path);
            n += 1;
        }
        true
    })
    .unwrap();
    assert_eq!(n, all.len());
    assert!(t.spilled());
}

#[test]
fn a_bomb_while_streaming_is_an_error_naming_the_image() {
    // 8 MiB of zeros compress to a few hundred bytes; a 1 MiB cap stops
    // the decompressing thread, and its error (not the truncation the
    // index pass sees) names the image.
    let mut c = Cpio::default();
    c.entry("zeros", REG | 0o644, 0, &vec![0; 8 << 20]);
    let bytes = zstd(&c.finish());
    let img = file_of(&bytes);
    let file = File::open(img.path()).unwrap();
    let e = ImageTarget::open_streamed(img.path(), &file, bytes.len() as u64, None, 1 << 20)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("decompresses to more than 1048576 bytes"), "{e}");
    assert!(e.starts_with(&img.path().display().to_string()), "{e}");
}

#[test]
fn an_image_changed_between_the_two_passes_is_an_error() {
    let mut c = Cpio::default();
    c.entry("usr/bin/large", REG | 0o755, 0, &content(9, 1 << 20));
    let bytes = zstd(&c.finish());
    let img = file_of(&bytes);
    let t = ImageTarget::open(img.path()).unwrap();
    // The same length, other bytes: the CRC tells.
    let mut c = Cpio::default();
    c.entry("usr/bin/large", REG | 0o755, 0, &content(10, 1 << 20));
    let other = zstd(&c.finish());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(img.path())
        .unwrap();
    f.write_all(&other).unwrap();
    f.set_len(other.len() as u64).unwrap();
    drop(f);
    let e = t.read("/usr/bin/large", 1 << 30).unwrap_err().to_string();
    assert!(e.contains("changed while being read"), "{e}");
}

#[test]
fn a_truncated_stream_is_an_error_naming_the_image() {
    let mut c = Cpio::default();
    c.entry("usr/bin/large", REG | 0o755, 0, &content(9, 1 << 20));
    let bytes = zstd(&c.finish());
    let img = file_of(&bytes[..bytes.len() / 2]);
    let e = ImageTarget::open(img.path()).err().unwrap().to_string();
    assert!(e.starts_with(&img.path().display().to_string()), "{e}");
}
