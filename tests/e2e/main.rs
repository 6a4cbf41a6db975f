//! End-to-end tests: the built `nodecheck` binary against fixture trees and
//! the cached reference Debian rootfs (tests/rootfs/build.sh).

mod base;
mod cases;
mod cli;
mod elf;
mod escape;
mod exec;
mod gate;
mod kmod;
mod live;
mod services;
mod util;
