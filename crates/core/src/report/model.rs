//! The report: everything a run found, in profile order. Reporters render
//! it; the JSON reporter serializes it as is (see docs/json-report.md).

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::identity::TargetIdentity;
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
    /// Name, OS release, kernel and image release, as read from the target.
    /// (Boxed: the runner's `Started` event carries a `TargetInfo`.)
    #[serde(flatten)]
    pub identity: Box<TargetIdentity>,
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

    /// The waiver's reason when a waiver turned this control's failure or
    /// error into a skip (a waiver on a passing control changes nothing).
    pub fn waived_failure(&self) -> Option<&str> {
        match self.status {
            Status::Fail | Status::Error => self.waived.as_deref(),
            Status::Pass | Status::Skip => None,
        }
    }

    /// Why `check` (one of this control's checks) was skipped: its own skip
    /// reasons, else the control's, else a generic word, so that reports
    /// never show an empty reason.
    pub fn check_skip_message(&self, check: &CheckResult) -> String {
        check
            .skip_message()
            .or_else(|| self.skip_reason.clone())
            .unwrap_or_else(|| "skipped".to_owned())
    }

    /// Why the whole control was skipped: its own reason, else the distinct
    /// reasons of its checks joined with `; `.
    pub fn skip_message(&self) -> String {
        if let Some(r) = &self.skip_reason {
            return r.clone();
        }
        let mut reasons: Vec<String> = Vec::new();
        for r in self.checks.iter().filter_map(CheckResult::skip_message) {
            if !reasons.contains(&r) {
                reasons.push(r);
            }
        }
        if reasons.is_empty() {
            "skipped".to_owned()
        } else {
            reasons.join("; ")
        }
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

    /// The properties that failed or errored, in profile order: what a
    /// report shows under a failing or erroring check.
    pub fn problems(&self) -> impl Iterator<Item = &PropertyResult> {
        self.properties
            .iter()
            .filter(|p| matches!(p.status, Status::Fail | Status::Error))
    }

    /// The distinct skip reasons of a skipped check joined with `; `, or
    /// `None` when the check was not skipped or gave no reason (a check
    /// skipped as a whole, e.g. by its control's `targets`).
    pub fn skip_message(&self) -> Option<String> {
        if self.status != Status::Skip {
            return None;
        }
        let mut reasons: Vec<&str> = Vec::new();
        for p in &self.properties {
            if p.status == Status::Skip
                && !p.message.is_empty()
                && !reasons.contains(&p.message.as_str())
            {
                reasons.push(&p.message);
            }
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
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

    /// How many checks were evaluated: all but the skipped ones (a waived
    /// failure was evaluated). A gate where this is 0 checked nothing.
    pub fn evaluated(&self) -> usize {
        self.controls
            .iter()
            .flat_map(|c| &c.checks)
            .filter(|k| k.status != Status::Skip)
            .count()
    }

    /// The skipped checks of controls at or above `fail_on` that no
    /// waiver covers, as (control, check): what `--fail-on-skip` fails on.
    pub fn skipped_checks(&self, fail_on: Severity) -> Vec<(&ControlResult, &CheckResult)> {
        self.controls
            .iter()
            .filter(|c| c.severity >= fail_on && c.waived.is_none())
            .flat_map(|c| c.checks.iter().map(move |k| (c, k)))
            .filter(|(_, k)| k.status == Status::Skip)
            .collect()
    }
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let dt: chrono::DateTime<chrono::Utc> = (*t).into();
    s.serialize_str(&dt.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::PropertyResult;
    use crate::report::test_report::{check, control};

    #[test]
    fn skip_messages_are_distinct_and_fall_back_to_the_control() {
        let live = |key| PropertyResult::skip(key, "needs a live node");
        let c = control(
            "c",
            None,
            1,
            vec![
                check("service", "munge", 2, vec![live("active"), live("running")]),
                check("command", "nvidia-smi", 3, vec![]),
            ],
        );
        assert_eq!(
            c.checks[0].skip_message().as_deref(),
            Some("needs a live node")
        );
        assert_eq!(c.checks[1].skip_message(), None);
        assert_eq!(c.check_skip_message(&c.checks[1]), "skipped");
        assert_eq!(c.skip_message(), "needs a live node");

        let mut c = c;
        c.skip_reason = Some("targets = [live]".to_owned());
        assert_eq!(c.check_skip_message(&c.checks[1]), "targets = [live]");
        assert_eq!(c.skip_message(), "targets = [live]");
    }

    #[test]
    fn waiver_turns_only_failures_into_skips() {
        let failing = check(
            "file",
            "/x",
            2,
            vec![PropertyResult::compare("mode", false, "1", "2")],
        );
        let passing = check(
            "file",
            "/y",
            3,
            vec![PropertyResult::compare("mode", true, "1", "1")],
        );
        let mut bad = control("bad", None, 1, vec![failing]);
        bad.waived = Some("later".to_owned());
        let mut good = control("good", None, 4, vec![passing]);
        good.waived = Some("later".to_owned());
        assert_eq!(bad.waived_failure(), Some("later"));
        assert_eq!(good.waived_failure(), None);
        let s = Summary::of(&[bad, good]);
        assert_eq!(
            (s.controls.passed, s.controls.skipped, s.controls.waived),
            (1, 1, 1)
        );
    }
}
