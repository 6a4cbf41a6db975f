//! The JUnit report, built with quick-junit (never by string formatting):
//! one `<testsuite>` per control, one `<testcase>` per check.
//!
//! Status mapping, the same as [`Summary`](super::Summary) counts: pass is a
//! success, fail a `<failure>`, error an `<error>`, skip a `<skipped>`, and a
//! failure or error of a waived control a `<skipped>` whose message starts
//! with `waived:`. GitLab shows the element *body*, so the body carries every
//! non-passing property's message and the check's profile location; the
//! `message` attribute is a one-line summary.
//!
//! The output validates against the unmodified Jenkins `junit-10.xsd` (see
//! `tests/fixtures/junit/`): the profile file goes on `<testsuite file=..>`,
//! which that schema allows, and the `skipped` total quick-junit writes on
//! `<testsuites>`, which it does not, is left out (each suite carries its
//! own `skipped` count).

use std::io::{self, Write};
use std::path::PathBuf;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use super::{CheckResult, ControlResult, Event, Report, Reporter, write_report};
use crate::outcome::Status;

/// Writes `report` as JUnit XML.
///
/// ```
/// use nodecheck_core::report::{Report, write_junit};
///
/// fn to_junit(report: &Report) -> std::io::Result<Vec<u8>> {
///     let mut buf = Vec::new();
///     write_junit(report, &mut buf)?;
///     Ok(buf)
/// }
/// ```
pub fn write_junit(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    // Serialized in memory first: quick-junit's error type hides the io
    // error kind, and the XML of a run is small.
    w.write_all(junit_xml(&junit_report(report))?.as_bytes())
}

/// Serializes a JUnit report the way every nodecheck report is written
/// (valid against junit-10.xsd), for other writers of JUnit (`diff`).
pub fn junit_xml(report: &quick_junit::Report) -> io::Result<String> {
    let xml = report
        .to_string()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(without_root_skipped(&xml))
}

/// Drops the `skipped="N"` attribute from the root `<testsuites>` element:
/// quick-junit always writes it and junit-10.xsd (what Jenkins validates
/// with) does not allow it there. The element is quick-junit's own output,
/// so the attribute is exactly ` skipped="<digits>"` inside its start tag.
pub(crate) fn without_root_skipped(xml: &str) -> String {
    let Some(start) = xml.find("<testsuites") else {
        return xml.to_string();
    };
    let end = xml[start..].find('>').map_or(xml.len(), |e| start + e);
    let tag = &xml[start..end];
    match tag.find(" skipped=\"") {
        Some(at) => {
            let value_end = tag[at + 10..]
                .find('"')
                .map_or(tag.len(), |e| at + 10 + e + 1);
            let mut out = String::with_capacity(xml.len());
            out.push_str(&xml[..start + at]);
            out.push_str(&xml[start + value_end..]);
            out
        }
        None => xml.to_string(),
    }
}

/// Writes the JUnit report to a file when the run finishes, replacing any
/// previous file atomically.
///
/// ```
/// use nodecheck_core::report::{JunitReporter, Reporter};
///
/// let reporters: Vec<Box<dyn Reporter>> = vec![Box::new(JunitReporter::new("junit.xml"))];
/// # drop(reporters);
/// ```
#[derive(Debug)]
pub struct JunitReporter {
    path: PathBuf,
}

impl JunitReporter {
    /// A reporter that will write `path` on [`Event::Finished`].
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JunitReporter { path: path.into() }
    }
}

impl Reporter for JunitReporter {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Finished(report) => write_report(&self.path, |w| write_junit(report, w)),
            _ => Ok(()),
        }
    }
}

fn junit_report(report: &Report) -> quick_junit::Report {
    let mut out = quick_junit::Report::new(xml(&report.profile.name));
    out.set_time(report.duration);
    // No timestamp on <testsuites>: junit-10.xsd does not allow one there;
    // every <testsuite> carries the run's start instead.
    let started: chrono::DateTime<chrono::Utc> = report.started.into();
    let started = started.fixed_offset();
    for control in &report.controls {
        let mut suite = TestSuite::new(xml(&control.id));
        suite.set_time(control.duration).set_timestamp(started);
        suite
            .extra
            .insert("hostname".into(), xml(&report.hostname).into());
        suite.extra.insert(
            "file".into(),
            xml(&control.location.file.display().to_string()).into(),
        );
        suite_properties(&mut suite, report, control);
        for check in &control.checks {
            suite.add_test_case(test_case(control, check));
        }
        out.add_test_suite(suite);
    }
    out
}

/// Properties go on the testsuite only: junit-10.xsd has none on testcases.
fn suite_properties(suite: &mut TestSuite, report: &Report, control: &ControlResult) {
    let mut add = |name: &str, value: &str| {
        suite.add_property(Property::new(name, xml(value)));
    };
    if let Some(title) = &control.title {
        add("title", title);
    }
    add("severity", control.severity.as_str());
    add("tags", &control.tags.join(","));
    add("target", &report.target.description);
    // The target's identity: which node, OS, kernel and image build.
    let id = &report.target.identity;
    for (name, value) in [
        ("target_name", id.name.as_deref()),
        ("os", id.os.as_ref().and_then(|o| o.pretty_name.as_deref())),
        (
            "os_version",
            id.os.as_ref().and_then(|o| o.version_id.as_deref()),
        ),
        ("kernel", id.kernel.as_deref()),
        ("image_release", id.image_release.as_deref()),
    ] {
        if let Some(v) = value {
            add(name, v);
        }
    }
    // A packed image: which file, and the digests that name its content.
    if let Some(image) = &id.image {
        add("image_path", &image.path);
        add("image_format", &image.format);
        add("image_size", &image.size.to_string());
        for (name, value) in [
            ("image_digest", &image.digest),
            ("image_config_digest", &image.config_digest),
            ("image_sha256", &image.sha256),
        ] {
            if let Some(v) = value {
                add(name, v);
            }
        }
    }
    add("profile", &report.profile.name);
    if let Some(version) = &report.profile.version {
        add("profile_version", version);
    }
    if let Some(reason) = &control.waived {
        add("waived", reason);
    }
}

fn test_case(control: &ControlResult, check: &CheckResult) -> TestCase {
    // Keyed on the control's waiver exactly as `Summary::of` counts, so the
    // XML's counts always equal the report's.
    let status = match (check.status, control.waived.as_deref()) {
        (Status::Pass, _) => TestCaseStatus::success(),
        (Status::Fail | Status::Error, Some(reason)) => {
            let mut st = TestCaseStatus::skipped();
            st.set_message(xml(&format!("waived: {reason}")))
                .set_description(xml(&format!("waived: {reason}\n{}", details(check))));
            st
        }
        (Status::Fail | Status::Error, None) => {
            let kind = if check.status == Status::Fail {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let mut st = TestCaseStatus::non_success(kind);
            st.set_message(xml(&short_message(check)))
                .set_type(check.status.as_str())
                .set_description(xml(&details(check)));
            st
        }
        (Status::Skip, _) => {
            let reason = control.check_skip_message(check);
            let mut st = TestCaseStatus::skipped();
            st.set_message(xml(first_line(&reason)))
                .set_description(xml(&reason));
            st
        }
    };
    let mut case = TestCase::new(xml(&check.name), status);
    case.set_classname(xml(&control.id))
        .set_time(check.duration);
    if !check.output.is_empty() {
        case.set_system_out(xml(&check.output));
    }
    case
}

/// The first problem, and how many more there are: fits in a CI summary.
fn short_message(check: &CheckResult) -> String {
    let mut problems = check.problems();
    let Some(first) = problems.next() else {
        return format!("{} {}", check.name, check.status.as_str());
    };
    let more = problems.count();
    let first = first_line(&first.message);
    if more == 0 {
        first.to_owned()
    } else {
        format!("{first} (and {more} more)")
    }
}

/// Every failing or erroring property's message, one a line, then where
/// the check is written.
fn details(check: &CheckResult) -> String {
    let mut s = String::new();
    for p in check.problems() {
        s.push_str(&p.message);
        s.push('\n');
    }
    s.push_str(&format!("at {}", check.location));
    s
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// quick-junit strips ANSI escapes and C0 controls but lets U+FFFE and
/// U+FFFF through, which are not XML characters either.
pub fn xml(s: &str) -> String {
    s.replace(['\u{FFFE}', '\u{FFFF}'], "")
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;
    use std::process::Command;
    use std::sync::Arc;

    use super::*;
    use crate::report::test_report::{hostile, sample};

    fn render(report: &Report) -> String {
        let mut buf = Vec::new();
        write_junit(report, &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(render(&sample()));
    }

    fn assert_counts_match(report: &Report, xml: &str) {
        let parsed = quick_junit::Report::deserialize_from_str(xml).unwrap();
        let c = &report.summary.checks;
        assert_eq!(parsed.tests, c.total);
        assert_eq!(parsed.failures, c.failed);
        assert_eq!(parsed.errors, c.errored);
        // The root carries no `skipped` (junit-10.xsd forbids it there):
        // the suites' counts add up to the summary.
        let skipped: usize = parsed.test_suites.iter().map(|s| s.skipped).sum();
        assert_eq!(skipped, c.skipped);
        let root = &xml[xml.find("<testsuites").unwrap()..];
        assert!(
            !root[..root.find('>').unwrap()].contains(" skipped="),
            "{xml}"
        );
        assert_eq!(parsed.test_suites.len(), report.controls.len());
        for (suite, control) in parsed.test_suites.iter().zip(&report.controls) {
            assert_eq!(suite.name.as_str(), control.id);
            assert_eq!(suite.tests, control.checks.len());
        }
    }

    #[test]
    fn counts_equal_the_summary() {
        let report = sample();
        let xml = render(&report);
        assert_counts_match(&report, &xml);
        let c = &report.summary.checks;
        assert_eq!((c.total, c.failed, c.errored, c.skipped), (8, 1, 1, 3));
    }

    /// Validates with xmllint against the vendored schema; skipped (with a
    /// note) where xmllint is not installed.
    pub(crate) fn xmllint(xml: &str) {
        let schema =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/junit/junit-10.xsd");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("junit.xml");
        std::fs::write(&file, xml).unwrap();
        let out = match Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&schema)
            .arg(&file)
            .output()
        {
            Ok(out) => out,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                eprintln!("note: xmllint not installed (libxml2-utils); schema validation skipped");
                return;
            }
            Err(e) => panic!("running xmllint: {e}"),
        };
        assert!(
            out.status.success(),
            "xmllint rejected the report:\n{}\n{xml}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn validates_against_the_schema() {
        xmllint(&render(&sample()));
    }

    #[test]
    fn hostile_text_stays_well_formed_and_valid() {
        let report = hostile();
        let xml = render(&report);
        for bad in ["\x1b", "\0", "\x07", "\u{FFFE}", "\u{FFFF}", "]]>"] {
            assert!(!xml.contains(bad), "{bad:?} reached the XML:\n{xml}");
        }
        xmllint(&xml);
        assert_counts_match(&report, &xml);
        // The text survives, minus what XML cannot carry.
        let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        let case = &parsed.test_suites[0].test_cases[0];
        let out = case.system_out.as_deref().unwrap();
        assert!(out.contains("red nul: cdata-end:]]> markup:<a href=\"x\">&amp;</a>"));
        match &case.status {
            TestCaseStatus::NonSuccess {
                description: Some(d),
                ..
            } => assert!(d.contains("at profiles/compute.toml:5:3"), "{d:?}"),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn waived_failure_is_skipped_with_reason_and_details() {
        let report = sample();
        let parsed = quick_junit::Report::deserialize_from_str(&render(&report)).unwrap();
        let suite = parsed
            .test_suites
            .iter()
            .find(|s| s.name.as_str() == "kmod-network")
            .unwrap();
        match &suite.test_cases[0].status {
            TestCaseStatus::Skipped {
                message: Some(m),
                description: Some(d),
                ..
            } => {
                assert_eq!(m.as_str(), "waived: mlx5 firmware lands in image 2027.02");
                assert!(d.contains("present: expected true, got false"), "{d:?}");
            }
            other => panic!("expected skipped, got {other:?}"),
        }
    }

    #[test]
    fn reporter_writes_the_file_on_finished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        let mut r = JunitReporter::new(&path);
        r.event(&crate::report::test_report::started()).unwrap();
        assert!(!path.exists());
        r.event(&Event::Finished(Arc::new(sample()))).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), render(&sample()));
    }
}
