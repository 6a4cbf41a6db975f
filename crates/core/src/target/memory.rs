//! An in-memory target for unit tests of checks.
// STUB
/// In-memory target.
pub struct MemoryTarget;
