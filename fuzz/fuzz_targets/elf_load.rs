//! A whole `elf` check over an image where the fuzzed bytes are the
//! program, a library it needs, the interpreter and the ld.so.cache:
//! the search, the load graph, the version checks and the symbol lookups
//! (hash tables, version indices) on hostile input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodecheck_checks::elf::closure::{self, Setup};
use nodecheck_checks::elf::search::{Linker, Probe};
use nodecheck_core::target::MemoryTarget;
use nodecheck_fuzz as _; // the allocation cap

fuzz_target!(|data: &[u8]| {
    let t = MemoryTarget::new()
        .file("/usr/bin/prog", 0o755, 0, 0, data)
        .file("/usr/lib/x86_64-linux-gnu/libc.so.6", 0o644, 0, 0, data)
        .file("/lib64/ld-linux-x86-64.so.2", 0o755, 0, 0, data)
        .symlink("/usr/lib/x86_64-linux-gnu/libfoo.so.1", "libc.so.6")
        .file("/etc/ld.so.cache", 0o644, 0, 0, data)
        .file(
            "/etc/ld.so.conf",
            0o644,
            0,
            0,
            "include /etc/ld.so.conf\n/usr/lib\n",
        );
    let linker = Linker::default();
    if let Ok(Probe::Elf(main)) = linker.load(&t, "/usr/bin/prog") {
        let dirs = ["$ORIGIN/../lib:$LIB:$PLATFORM".to_string()];
        let _ = closure::load(
            &linker,
            &t,
            main,
            "/usr/bin/prog",
            Setup {
                library_path: &dirs,
                symbols: true,
                unlisted: false,
            },
        );
    }
});
