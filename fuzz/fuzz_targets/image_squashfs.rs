//! A squashfs on arbitrary bytes: the superblock is made plausible (the
//! magic, version 4.0 and a block size whose log agrees, so the fuzzer
//! spends its time in the tables, not on the first check), then the image
//! is opened, walked, every xattr list and every file read, and a few
//! pieces of each file read at scattered offsets (the block cache). It
//! opens or errs, never panics, and never allocates what a bogus size or
//! count asks for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodecheck_core::target::{FileType, ImageFormat, ImageTarget, Target};
use nodecheck_fuzz::{exercise_image, image_file};

fuzz_target!(|data: &[u8]| {
    let mut b = data.to_vec();
    if b.len() >= 96 {
        b[..4].copy_from_slice(b"hsqs");
        let log = 12 + b[22] % 9;
        b[12..16].copy_from_slice(&(1u32 << log).to_le_bytes());
        b[22..24].copy_from_slice(&u16::from(log).to_le_bytes());
        b[28..32].copy_from_slice(&[4, 0, 0, 0]);
    }
    let f = image_file(&[&b]);
    let Ok(t) = ImageTarget::open_as(f.path(), Some(ImageFormat::Squashfs)) else {
        return;
    };
    exercise_image(&t, 1 << 22, |e| {
        let _ = t.xattrs(&e.path);
        if e.metadata.file_type != FileType::File {
            return;
        }
        if let Ok(file) = t.open(&e.path) {
            let mut buf = [0; 64];
            for off in [
                0,
                4095,
                4096,
                131_071,
                131_072,
                e.metadata.size.saturating_sub(1),
            ] {
                let _ = file.read_at(&mut buf, off);
            }
        }
    });
});
