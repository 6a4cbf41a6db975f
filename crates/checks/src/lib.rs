//! nodecheck's resource kinds, one per module, and their registry.
//!
//! A kind never touches the system itself: everything goes through the
//! [`Target`](nodecheck_core::target::Target) in its context (clippy's
//! `disallowed-methods` in this crate's clippy.toml enforces it), so a
//! check on a rootfs cannot read the host.

pub mod command;
pub mod compiler;
pub mod config;
pub mod drift;
pub mod elf;
mod eval;
mod exec;
pub mod file;
pub mod filesystem;
pub mod gpu;
pub mod group;
pub mod hardware;
pub mod infiniband;
pub mod interface;
pub mod kernel;
pub mod kernel_module;
mod kmod;
/// A kernel module file's `.modinfo` (public for the fuzz targets).
pub use kmod::modfile;
pub mod image;
pub mod library;
pub mod live;
pub mod module_system;
pub mod mount;
pub mod mpi;
pub mod package;
pub mod port;
pub mod process;
pub mod service;
pub mod slurm;
pub mod sysctl;
#[cfg(test)]
mod testing;
pub mod tree;
pub mod user;
pub mod users;
pub mod yum_repo;

use nodecheck_core::kind::Kind;

/// Every resource kind, one line each.
pub const KINDS: &[&dyn Kind] = &[
    &file::File,
    &tree::Tree,
    &image::Image,
    &user::User,
    &group::Group,
    &users::Users,
    &service::Service,
    &package::Package,
    &config::Config,
    &yum_repo::YumRepo,
    &sysctl::Sysctl,
    &mount::Mount,
    &process::Process,
    &port::Port,
    &filesystem::Filesystem,
    &hardware::Hardware,
    &interface::Interface,
    &infiniband::Infiniband,
    &kernel::Kernel,
    &kernel_module::KernelModule,
    &gpu::Gpu,
    &command::Command,
    &compiler::Compiler,
    &mpi::Mpi,
    &module_system::ModuleSystem,
    &elf::Elf,
    &library::Library,
    &slurm::Slurm,
];

/// The child-process helpers of the kinds ([`nodecheck_core::helper`]): a
/// binary calls `nodecheck_core::helper::dispatch(HELPERS)` first in `main`.
pub const HELPERS: &[(&str, nodecheck_core::helper::Handler)] = &[
    (library::DLOPEN, library::dlopen_helper),
    (live::gpu::PROBE, live::gpu::probe_helper),
];
