//! Profiles: loading (raw TOML with spans), validation into checked types,
//! includes, variables, matrix expansion.
//!
//! Loading runs in two stages, as cargo-deny reads its configuration: the
//! file becomes a tree of values that remember their line and column
//! (`raw`), then that tree is validated into [`Profile`]. Every problem is
//! collected as a [`Diagnostic`] with a stable code, so one run of
//! `nodecheck validate` shows them all.

mod check;
mod diag;
mod load;
mod model;
mod only_if;
mod raw;
mod vars;

pub use diag::{Diagnostic, Diagnostics, Level};
pub use load::{LoadOptions, id_glob, load, load_all};
pub use model::{Check, Control, Location, NamedMatcher, Profile, Prop, Severity, Value, Waiver};
pub use only_if::{ONLY_IF_KEYS, OnlyIf};
pub use vars::VarValue;

#[cfg(test)]
mod tests;
