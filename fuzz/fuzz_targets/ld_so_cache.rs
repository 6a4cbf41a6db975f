//! The ld.so.cache reader on arbitrary bytes, then a lookup in whatever it
//! read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodecheck_checks::elf::ldcache::LdCache;
use nodecheck_checks::elf::object::Ident;
use nodecheck_fuzz as _; // the allocation cap

fuzz_target!(|data: &[u8]| {
    if let Ok(cache) = LdCache::parse(data) {
        let id = Ident {
            class: 2,
            data: 1,
            machine: 62,
        };
        for key in cache.entries.keys().take(8) {
            let _ = cache.lookup(key, id);
        }
    }
});
