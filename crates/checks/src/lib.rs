//! nodecheck's resource kinds, one per module, and their registry.
//!
//! A kind never touches the system itself: everything goes through the
//! [`Target`](nodecheck_core::target::Target) in its context (clippy's
//! `disallowed-methods` in this crate's clippy.toml enforces it), so a
//! check on a rootfs cannot read the host.

pub mod elf;
mod eval;
pub mod file;
pub mod group;
pub mod library;
#[cfg(test)]
mod testing;
pub mod tree;
pub mod user;
pub mod users;

use nodecheck_core::kind::Kind;

/// Every resource kind, one line each.
pub const KINDS: &[&dyn Kind] = &[
    &file::File,
    &tree::Tree,
    &user::User,
    &group::Group,
    &users::Users,
    &elf::Elf,
    &library::Library,
];

/// The child-process helpers of the kinds ([`nodecheck_core::helper`]): a
/// binary calls `nodecheck_core::helper::dispatch(HELPERS)` first in `main`.
pub const HELPERS: &[(&str, nodecheck_core::helper::Handler)] =
    &[(library::DLOPEN, library::dlopen_helper)];
