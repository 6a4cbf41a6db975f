//! The runner: evaluates a profile's checks in parallel against a target.

use crate::target::Target;

/// What a kind gets to evaluate a check.
pub struct Context<'a> {
    pub target: &'a dyn Target,
}
