//! The lz4 (frame and legacy) and bzip2 stream decoders on arbitrary
//! bytes: the first byte picks the magic put in front (so each decoder is
//! reached at once), the rest follows as the stream; then the flattened
//! archive is indexed as by `--target FILE`. It opens or errs, never
//! panics, and a bomb stops at the spill cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodecheck_core::target::ImageTarget;
use nodecheck_fuzz::{exercise_image, image_file};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let magic: &[u8] = match first % 4 {
        0 => b"\x02\x21\x4c\x18",
        1 => b"\x04\x22\x4d\x18",
        2 => b"BZh",
        _ => b"",
    };
    let f = image_file(&[magic, rest]);
    if let Ok(t) = ImageTarget::open(f.path()) {
        exercise_image(&t, 1 << 20, |_| {});
    }
});
