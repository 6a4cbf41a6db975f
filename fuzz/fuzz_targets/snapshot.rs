//! The snapshot reader on arbitrary bytes (a damaged or hostile file given
//! to `nodecheck diff`): an error or a snapshot, never a panic; what it
//! reads is diffed against itself and written again.
//!
//! A file's BLAKE3 digest turns nearly every mutation into "does not match
//! the digest", so input that is not a snapshot file is also taken as the
//! JSON inside one and wrapped with a right header and digest: the JSON
//! reader and the checks after it (entry types, order, uniqueness) see
//! hostile content too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodecheck_checks::drift::{FORMAT_VERSION, MAGIC, decode, diff, encode};
use nodecheck_fuzz as _; // the allocation cap

fuzz_target!(|data: &[u8]| {
    round_trip(data);
    if !data.starts_with(MAGIC) {
        let mut file = Vec::with_capacity(data.len() + 64);
        file.extend_from_slice(MAGIC);
        file.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        file.extend_from_slice(blake3::hash(data).as_bytes());
        file.extend(ruzstd::encoding::compress_to_vec(
            data,
            ruzstd::encoding::CompressionLevel::Uncompressed,
        ));
        round_trip(&file);
    }
});

fn round_trip(file: &[u8]) {
    if let Ok(s) = decode(file) {
        let ignore = diff::Ignore::new(&[], false).unwrap();
        assert!(diff::diff(&s, &s, &ignore).is_empty());
        let again = decode(&encode(&s)).unwrap();
        assert_eq!(again, s);
    }
}
