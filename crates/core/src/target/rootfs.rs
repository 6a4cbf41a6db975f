//! A root filesystem directory (or `/` for the live node).
// STUB
/// A root filesystem.
pub struct RootFs;
