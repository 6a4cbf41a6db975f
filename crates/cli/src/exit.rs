//! Exit statuses of `nodecheck`, as the profile contract defines them.

/// Nothing at or above `--fail-on` failed or errored.
pub const OK: u8 = 0;
/// Something at or above `--fail-on` failed or errored.
pub const FAILED: u8 = 1;
/// A usage or profile error (the message names file:line:col), including a
/// report file that cannot be written.
pub const USAGE: u8 = 2;
/// The target itself cannot be used (missing, not a directory, no access).
pub const TARGET: u8 = 3;
/// Nothing was checked: every check was skipped (a live-only profile on an
/// image tree), so a pass would mean nothing. `--allow-empty` makes it 0.
pub const EMPTY: u8 = 4;
// An interrupted run (SIGINT, SIGTERM) exits 128 + the signal: 130, 143.
