//! The report: everything a run found, in profile order. Reporters render
//! it; the JSON reporter serializes it as is (see docs/json-report.md).

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::outcome::{PropertyResult, Status, secs};
use crate::profile::{Location, Severity};
use crate::target::TargetKind;

/// The version of the JSON layout; bumped on any incompatible change.
pub const JSON_SCHEMA: &str = "nodecheck/report/v1";

/// The result of one run of one profile against one target.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub profile: ProfileInfo,
    pub target: TargetInfo,
    /// Host nodecheck ran on.
    pub hostname: String,
    /// When the run started (RFC 3339 in JSON).
    #[serde(serialize_with = "rfc3339")]
    pub started: SystemTime,
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    pub controls: Vec<ControlResult>,
    pub summary: Summary,
    /// Non-fatal findings of the profile (expired waivers, …).
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProfileInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub file: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct TargetInfo {
    pub kind: TargetKind,
    pub description: String,
}

/// A control's result.
#[derive(Clone, Debug, Serialize)]
pub struct ControlResult {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub severity: Severity,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desc: Option<String>,
    /// pass/fail/skip/error, before any waiver.
    pub status: Status,
    /// Set when a waiver applies; a waived failure does not fail the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waived: Option<String>,
    /// Why the whole control was skipped (`targets`, `depends_on`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    pub location: Location,
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    pub checks: Vec<CheckResult>,
}

impl ControlResult {
    /// Whether this control counts against the exit status: it failed or
    /// errored and no waiver covers it.
    pub fn counts_as_failure(&self) -> bool {
        matches!(self.status, Status::Fail | Status::Error) && self.waived.is_none()
    }
}

/// One check's result (one JUnit testcase).
#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    /// The resource kind (`file`).
    pub kind: String,
    /// What was checked (`/etc/shadow`).
    pub subject: String,
    /// `kind subject`, unique within its control (a `#2` suffix is added to
    /// repeats).
    pub name: String,
    pub status: Status,
    pub location: Location,
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    pub properties: Vec<PropertyResult>,
    /// Longer output: command output, the full list of offenders.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub output: String,
}

impl CheckResult {
    /// The messages of the properties that did not pass (or, for a skipped
    /// check, the skip reasons), one per line.
    pub fn summary_message(&self) -> String {
        let want = match self.status {
            Status::Pass => return String::new(),
            s => s,
        };
        let lines: Vec<&str> = self
            .properties
            .iter()
            .filter(|p| p.status == want)
            .map(|p| p.message.as_str())
            .collect();
        lines.join("\n")
    }
}

/// Counts over a report, the same in every reporter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub controls: Counts,
    pub checks: Counts,
}

/// Outcome counts. `waived` failures and errors are counted in `skipped` as
/// JUnit reports them, and in `waived` too.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub errored: usize,
    pub skipped: usize,
    pub waived: usize,
}

impl Counts {
    fn add(&mut self, status: Status, waived: bool) {
        self.total += 1;
        match (status, waived) {
            (Status::Fail | Status::Error, true) => {
                self.skipped += 1;
                self.waived += 1;
            }
            (Status::Pass, _) => self.passed += 1,
            (Status::Fail, false) => self.failed += 1,
            (Status::Error, false) => self.errored += 1,
            (Status::Skip, _) => self.skipped += 1,
        }
    }
}

impl Summary {
    /// Counts a report's controls and checks.
    pub fn of(controls: &[ControlResult]) -> Summary {
        let mut s = Summary::default();
        for c in controls {
            let waived = c.waived.is_some();
            s.controls.add(c.status, waived);
            for k in &c.checks {
                s.checks.add(k.status, waived);
            }
        }
        s
    }
}

impl Report {
    /// Whether something at or above `fail_on` failed or errored (waived
    /// controls excluded): the run's exit status is 1 then.
    pub fn failed(&self, fail_on: Severity) -> bool {
        self.controls
            .iter()
            .any(|c| c.severity >= fail_on && c.counts_as_failure())
    }
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let dt: chrono::DateTime<chrono::Utc> = (*t).into();
    s.serialize_str(&dt.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}
