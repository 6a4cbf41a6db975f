//! The ELF reader on arbitrary bytes: it returns (an object, "not ELF",
//! or an error), never panics, and never allocates what a bogus header
//! field asks for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodecheck_checks::elf::object;
use nodecheck_core::target::{MemoryTarget, Target};
use nodecheck_fuzz as _; // the allocation cap

fuzz_target!(|data: &[u8]| {
    let t = MemoryTarget::new().file("/f", 0o755, 0, 0, data);
    let Ok(file) = t.open("/f") else { return };
    let _ = object::is_program(data);
    let _ = object::read(file.as_ref());
});
