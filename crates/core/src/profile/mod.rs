//! Profiles: loading (raw TOML with spans), validation into checked types,
//! includes, variables, matrix expansion.

mod diag;
mod model;

pub use diag::{Diagnostic, Diagnostics};
pub use model::{Check, Control, Location, Profile, Prop, Severity, Value, Waiver};
