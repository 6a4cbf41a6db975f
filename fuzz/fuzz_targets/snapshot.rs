//! The snapshot reader on arbitrary bytes (a damaged or hostile file given
//! to `nodecheck diff`): an error or a snapshot, never a panic; what it
//! reads is diffed against itself and written again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodecheck_checks::drift::{decode, diff, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = decode(data) {
        let ignore = diff::Ignore::new(&[], false).unwrap();
        assert!(diff::diff(&s, &s, &ignore).is_empty());
        let again = decode(&encode(&s)).unwrap();
        assert_eq!(again, s);
    }
});
