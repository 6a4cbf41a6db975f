//! nodecheck's engine: load a profile, open a target, run, report.
//!
//! ```no_run
//! use nodecheck_core::{profile, run, target::RootFs};
//! # fn kinds() -> &'static [&'static dyn nodecheck_core::kind::Kind] { &[] }
//! let profile = profile::load("profiles/base.toml", kinds(), &Default::default())?;
//! let target = RootFs::open("/srv/images/compute")?;
//! let report = run::run(&profile, &target, &run::Options::default(), &mut []);
//! println!("{} checks failed", report.summary.checks.failed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod kind;
pub mod matcher;
pub mod outcome;
pub mod profile;
pub mod report;
pub mod run;
pub mod target;
