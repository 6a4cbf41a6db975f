//! What every fuzz target shares: a cap on a single allocation, and for
//! the image readers, the file they open and the walk they are put to.
//!
//! libFuzzer's `-malloc_limit_mb` needs a sanitizer's malloc hooks, which a
//! stable-toolchain build has not, and `-rss_limit_mb` only sees memory
//! that is touched: a reader that reserves what a bogus size field asks
//! for (`Vec::with_capacity(len)`) and never fills it would pass. This
//! allocator refuses any single allocation over `FUZZ_MALLOC_LIMIT_MB`
//! (1024 by default; 0: no cap), so Rust aborts with "memory allocation of N bytes
//! failed" and libFuzzer records the input as a crash. A target links it
//! with `use nodecheck_fuzz as _;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Capped;

const DEFAULT_MB: usize = 1024;

/// The cap in bytes; 0 until first read. Reading the environment
/// allocates, so the default is in place before it does.
static LIMIT: AtomicUsize = AtomicUsize::new(0);

fn limit() -> usize {
    match LIMIT.load(Ordering::Relaxed) {
        0 => {
            LIMIT.store(DEFAULT_MB << 20, Ordering::Relaxed);
            let bytes = match std::env::var("FUZZ_MALLOC_LIMIT_MB").map(|v| v.parse::<usize>()) {
                Ok(Ok(0)) => usize::MAX,
                Ok(Ok(mb)) => mb.saturating_mul(1 << 20),
                _ => DEFAULT_MB << 20,
            };
            LIMIT.store(bytes, Ordering::Relaxed);
            bytes
        }
        bytes => bytes,
    }
}

// SAFETY: every call is passed on unchanged to the system allocator, or
// refused with null, which GlobalAlloc allows.
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > limit() {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > limit() {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > limit() {
            return std::ptr::null_mut();
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static CAPPED: Capped = Capped;

/// `parts`, one after the other, in a temporary file: image readers open
/// images by path.
pub fn image_file(parts: &[&[u8]]) -> tempfile::NamedTempFile {
    use std::io::Write;
    let mut f = tempfile::NamedTempFile::new().unwrap();
    for p in parts {
        f.write_all(p).unwrap();
    }
    f
}

/// Puts an opened image to what checks do: a walk with links resolved,
/// `each` on every entry and every regular file read (at most `limit`
/// bytes), then a path that climbs out of the root and the accounts.
pub fn exercise_image(
    t: &nodecheck_core::target::ImageTarget,
    limit: u64,
    mut each: impl FnMut(&nodecheck_core::target::WalkEntry),
) {
    use nodecheck_core::target::{FileType, Target, WalkOptions};
    let options = WalkOptions {
        links: true,
        ..Default::default()
    };
    let _ = t.walk("/", &options, &mut |e| {
        if let Ok(e) = e {
            each(&e);
            if e.metadata.file_type == FileType::File {
                let _ = t.read(&e.path, limit);
            }
        }
        true
    });
    let _ = t.canonicalize("/../../etc/passwd");
    let _ = t.accounts();
}
