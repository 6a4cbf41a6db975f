//! Parsed module indexes shared by the checks of a run.
//!
//! A profile checks dozens of modules of the same kernel; parsing its
//! modules.dep (4,000 lines) for each would cost more than the checks.
//! The runner gives a kind nothing that lives for a run (its `Context`
//! holds only the target), so the indexes live here, in a small
//! process-wide table keyed by the target (its description and address)
//! and the module directory, and **validated on every use** by the stamp
//! (device, inode, size, mtime) of each index file: an index is reused only
//! while the files it was parsed from are unchanged, so a later run on a
//! changed image, or another target that happens to reuse an address,
//! never sees stale data. Targets without mtimes (the in-memory test
//! target) are never cached. The table holds at most [`MAX_ENTRIES`]
//! indexes (one per kernel of a target); the oldest is dropped first.
//!
//! The per-module modinfo kept inside an [`Index`] is validated the same
//! way, by the module file's own stamp.

use std::sync::{Arc, Mutex, PoisonError};

use nodecheck_core::target::Target;

use super::index::{Index, LoadError};
use super::modfile::Stamp;
use crate::eval;

/// Indexes kept at once: a few kernels of a few targets.
pub const MAX_ENTRIES: usize = 8;

/// The files an index is parsed from.
const FILES: &[&str] = &[
    "modules.dep",
    "modules.builtin",
    "modules.builtin.modinfo",
    "modules.alias",
];

type Stamps = Vec<Option<Stamp>>;

struct Entry {
    target: String,
    addr: usize,
    dir: String,
    stamps: Stamps,
    /// Filled by the first check that needs it; the others wait for it
    /// instead of parsing the same files again.
    index: Arc<Mutex<Option<Arc<Index>>>>,
}

static TABLE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// The index of module directory `dir` (kernel `release`) of `target`,
/// parsed once while its files are unchanged.
pub fn index(target: &dyn Target, release: &str, dir: &str) -> Result<Arc<Index>, LoadError> {
    let Some(stamps) = stamps(target, dir) else {
        return Index::load(target, release, dir).map(Arc::new);
    };
    let describe = target.describe();
    let addr = std::ptr::from_ref(target).cast::<()>() as usize;
    let slot = {
        let mut table = TABLE.lock().unwrap_or_else(PoisonError::into_inner);
        let found = table
            .iter()
            .position(|e| e.addr == addr && e.dir == dir && e.target == describe);
        match found {
            Some(i) if table[i].stamps == stamps => table[i].index.clone(),
            found => {
                if let Some(i) = found {
                    table.remove(i);
                }
                if table.len() >= MAX_ENTRIES {
                    table.remove(0);
                }
                let index = Arc::new(Mutex::new(None));
                table.push(Entry {
                    target: describe,
                    addr,
                    dir: dir.to_string(),
                    stamps,
                    index: index.clone(),
                });
                index
            }
        }
    };
    let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(index) = slot.as_ref() {
        return Ok(index.clone());
    }
    let index = Arc::new(Index::load(target, release, dir)?);
    *slot = Some(index.clone());
    Ok(index)
}

/// The stamps of the index files (`None` in the list: the file is absent);
/// `None` when one cannot be stamped (no mtime, or a stat error: then the
/// load itself reports it).
fn stamps(target: &dyn Target, dir: &str) -> Option<Stamps> {
    FILES
        .iter()
        .map(|f| match target.metadata(&format!("{dir}/{f}"), true) {
            Ok(m) => Stamp::of(&m).map(Some),
            Err(e) if eval::is_absent(&e) => Some(None),
            Err(_) => None,
        })
        .collect()
}
