//! A packed image on arbitrary bytes: the stream sniffer and decoders
//! (gzip, zstd, xz, concatenated archives), then the cpio or tar reader
//! by magic, or forced by the first byte; whatever opens is walked and
//! every file read. It opens or errs, never panics, and never spills past
//! the cap or allocates what a bogus size asks for.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use nodecheck_core::target::{FileType, ImageFormat, ImageTarget, Target, WalkOptions};
use nodecheck_fuzz as _; // the allocation cap

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let format = match first % 3 {
        0 => None,
        1 => Some(ImageFormat::Cpio),
        _ => Some(ImageFormat::Tar),
    };
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(rest).unwrap();
    let Ok(t) = ImageTarget::open_as(f.path(), format) else {
        return;
    };
    let _ = t.walk(
        "/",
        &WalkOptions {
            links: true,
            ..Default::default()
        },
        &mut |e| {
            if let Ok(e) = e
                && e.metadata.file_type == FileType::File
            {
                let _ = t.read(&e.path, 1 << 20);
            }
            true
        },
    );
    let _ = t.canonicalize("/../../etc/passwd");
    let _ = t.accounts();
});
