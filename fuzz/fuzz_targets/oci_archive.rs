//! An oci-archive or docker-archive on arbitrary bytes: the outer tar,
//! index.json or manifest.json, the config, the layer blobs (gzip, zstd
//! or plain tar) applied in order with whiteouts and opaque directories;
//! the first byte picks the form and whether a reference is asked for.
//! Whatever opens is walked and every file read. It opens or errs, never
//! panics, and never allocates what a bogus size or digest asks for.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use nodecheck_core::target::{FileType, ImageFormat, ImageTarget, Target, WalkOptions};
use nodecheck_fuzz as _; // the allocation cap

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
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(rest).unwrap();
    let Ok(t) = ImageTarget::open_oci(f.path(), format, reference) else {
        return;
    };
    let _ = format!("{:?}", t.info());
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
