//! nodecheck's engine: load a profile, open a target, run, report.
//!
//! A program whose profiles run commands in the target (`command`,
//! `compiler`, `mpi`, `module_system`) must call
//! [`helper::dispatch`] first thing in `main`: every such command is
//! started by a re-executed copy of the program.
//!
//! ```
//! use nodecheck_core::{profile, run, target::RootFs};
//!
//! # let dir = tempfile::tempdir()?;
//! # let image = dir.path().join("rootfs");
//! # std::fs::create_dir_all(image.join("etc"))?;
//! # std::fs::write(image.join("etc/os-release"), "ID=debian\n")?;
//! # let path = dir.path().join("p.toml");
//! # std::fs::write(&path, "[profile]\nname = \"demo\"\n[[control]]\nid = \"release\"\n\
//! #   [[control.file]]\npath = \"/etc/os-release\"\ncontent = { matches = \"^ID=\" }\n")?;
//! let kinds = nodecheck_checks::KINDS; // the resource kinds
//! let profile = profile::load(&path, kinds, &Default::default())?;
//! let target = RootFs::open(&image)?;
//! let outcome = run::run(&profile, &target, &run::Options::default(), Vec::new());
//! assert_eq!(outcome.report.summary.checks.passed, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod drain;
pub mod fleet;
pub mod helper;
pub mod hostlist;
pub mod identity;
pub mod kind;
pub mod matcher;
pub mod outcome;
pub mod platform;
pub mod profile;
pub mod report;
pub mod run;
pub mod schema;
pub mod target;
pub mod text;
