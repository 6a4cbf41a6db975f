//! End-to-end tests: the built `nodecheck` binary against fixture trees and
//! the cached reference Debian rootfs (tests/rootfs/build.sh).

mod base;
mod cases;
mod cli;
mod drift;
mod elf;
mod escape;
mod exec;
mod fleet;
mod gate;
mod images;
mod install;
mod kmod;
mod ldso_diff;
mod live;
mod profiles;
mod services;
mod trust_misc;
mod trust_sandbox;
mod util;
mod verify;
