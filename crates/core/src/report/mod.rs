//! Reporters: turn the runner's events into terminal output, JUnit, JSON.
//!
//! The runner sends [`Event`]s over a channel to one reporter thread; each
//! reporter writes to the `Write` it was given, never to stdout directly.

mod atomic;
mod json;
pub(crate) mod junit;
mod model;
mod prometheus;
mod terminal;
#[cfg(test)]
mod test_report;

use std::io;
use std::sync::Arc;

pub use atomic::{Destination, write_atomically, write_report};
pub use json::{JsonReporter, write_json};
pub(crate) use junit::without_root_skipped;
pub use junit::{JunitReporter, junit_xml, write_junit, xml as junit_text};
pub use model::{
    CheckResult, ControlResult, Counts, JSON_SCHEMA, ProfileInfo, Report, Summary, TargetInfo,
};
pub use prometheus::{PrometheusReporter, write_prometheus};
pub use terminal::{TerminalOptions, TerminalReporter, write_terminal};

use crate::outcome::Status;

/// What the runner tells reporters while it works.
#[derive(Clone, Debug)]
pub enum Event {
    /// The run begins: `checks` checks in `controls` controls of
    /// `profile` against `target`.
    Started {
        controls: usize,
        checks: usize,
        profile: ProfileInfo,
        target: TargetInfo,
    },
    /// A check began (for live progress only).
    CheckStarted { control: String, check: String },
    /// A check ended.
    CheckFinished {
        control: String,
        check: String,
        status: Status,
    },
    /// A control is settled (its checks all ended, or it was skipped as a
    /// whole): its result as the report will hold it, at `index` of the
    /// report's controls. Controls settle in any order; one interrupted
    /// run may never settle some (the final report has them all).
    ControlFinished {
        index: usize,
        result: Arc<ControlResult>,
    },
    /// The run is over; the full report, in profile order.
    Finished(Arc<Report>),
}

/// Something that consumes run events.
pub trait Reporter: Send {
    fn event(&mut self, event: &Event) -> io::Result<()>;
}
