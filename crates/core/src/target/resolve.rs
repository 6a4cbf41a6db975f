//! Path resolution inside a root.
// STUB
