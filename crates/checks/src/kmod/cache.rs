//! The kernel and module index the checks of a run share.
//!
//! A profile checks dozens of modules of the same kernel; listing /boot and
//! /lib/modules and parsing modules.dep (4,000 lines) for each check would
//! cost more than the checks themselves. The choice of kernel and its
//! parsed [`Index`] (which keeps each module's modinfo once read) are kept
//! in the target's [`Memo`](nodecheck_core::target::Memo): they live
//! exactly as long as the target object, the way its accounts do, so a new
//! run (a new target) reads the image afresh and nothing is global. A
//! target without a memo (the in-memory test target) gets no caching:
//! every check reads afresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use nodecheck_core::target::Target;

use super::Ready;

/// One kernel choice (the check's `kernel`, and how it names it in
/// messages) and what it led to.
type Key = (Option<String>, &'static str);

#[derive(Default)]
struct Kmod {
    ready: Mutex<HashMap<Key, Arc<OnceLock<Ready>>>>,
}

/// [`super::open`], once per kernel choice and target.
pub fn open(target: &dyn Target, wanted: Option<&str>, key: &'static str) -> Ready {
    let Some(memo) = target.memo() else {
        return super::open_uncached(target, wanted, key);
    };
    let kmod = memo.get::<Kmod>();
    let slot = kmod
        .ready
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry((wanted.map(str::to_string), key))
        .or_default()
        .clone();
    // Checks that arrive while the first one parses wait for it instead
    // of parsing the same files again.
    slot.get_or_init(|| super::open_uncached(target, wanted, key))
        .clone()
}
