//! An oci-archive or docker-archive on arbitrary bytes: the outer tar,
//! index.json or manifest.json, the config, the layer blobs (gzip, zstd
//! or plain tar) applied in order with whiteouts and opaque directories;
//! the first byte picks the form and whether a reference is asked for.
//! Whatever opens is walked and every file read. It opens or errs, never
//! panics, and never allocates what a bogus size or digest asks for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodecheck_core::target::{ImageFormat, ImageTarget};
use nodecheck_fuzz::{exercise_image, image_file};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let format = if first & 1 == 0 {
        ImageFormat::OciArchive
    } else {
        ImageFormat::DockerArchive
    };
    let reference = (first & 2 != 0).then_some("localhost/fuzzseed:1");
    let f = image_file(&[rest]);
    if let Ok(t) = ImageTarget::open_oci(f.path(), format, reference) {
        let _ = format!("{:?}", t.info());
        exercise_image(&t, 1 << 20, |_| {});
    }
});
