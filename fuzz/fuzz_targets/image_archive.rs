//! A packed image on arbitrary bytes: the stream sniffer and decoders
//! (gzip, zstd, xz, concatenated archives), then the cpio or tar reader
//! by magic, or forced by the first byte; whatever opens is walked and
//! every file read. It opens or errs, never panics, and never spills past
//! the cap or allocates what a bogus size asks for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodecheck_core::target::{ImageFormat, ImageTarget};
use nodecheck_fuzz::{exercise_image, image_file};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let format = match first % 3 {
        0 => None,
        1 => Some(ImageFormat::Cpio),
        _ => Some(ImageFormat::Tar),
    };
    let f = image_file(&[rest]);
    if let Ok(t) = ImageTarget::open_as(f.path(), format) {
        exercise_image(&t, 1 << 20, |_| {});
    }
});
