//! The Prometheus report: node_exporter's textfile-collector format (the
//! Prometheus text exposition format, without timestamps), so a health
//! check's results land on the node's dashboards and alerts.
//!
//! Point node_exporter's `--collector.textfile.directory` at the file's
//! directory; the name must end in `.prom`. The file is replaced
//! atomically, so the collector never reads half of it.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use super::{Event, Report, Reporter, write_report};
use crate::outcome::Status;
use crate::profile::Severity;

const STATUSES: [Status; 4] = [Status::Pass, Status::Fail, Status::Error, Status::Skip];

/// Writes `report` in the Prometheus text format: one state set per
/// control (`nodecheck_control_status`, 1 for the outcome it had), its
/// duration, totals of controls and checks by outcome, the run's
/// duration and start time, and `nodecheck_healthy` (0 when a control at
/// or above `fail_on` failed or errored, as the exit status says).
///
/// ```
/// use nodecheck_core::profile::Severity;
/// use nodecheck_core::report::{Report, write_prometheus};
///
/// fn to_text(report: &Report) -> String {
///     let mut buf = Vec::new();
///     write_prometheus(report, Severity::Low, &mut buf).expect("a Vec never fails");
///     String::from_utf8(buf).expect("the format is UTF-8")
/// }
/// ```
pub fn write_prometheus(report: &Report, fail_on: Severity, w: &mut dyn Write) -> io::Result<()> {
    let mut out = String::new();
    let profile = label(&report.profile.name);

    family(
        &mut out,
        "nodecheck_control_status",
        "Outcome of each control of the last run: 1 for the status it ended with, 0 for the others.",
    );
    for c in &report.controls {
        for s in STATUSES {
            let _ = writeln!(
                out,
                "nodecheck_control_status{{profile=\"{profile}\",control=\"{}\",severity=\"{}\",status=\"{}\"}} {}",
                label(&c.id),
                c.severity,
                s.as_str(),
                u8::from(c.status == s)
            );
        }
    }

    family(
        &mut out,
        "nodecheck_control_waived",
        "1 when a waiver covers the control: its failures do not count.",
    );
    for c in &report.controls {
        let _ = writeln!(
            out,
            "nodecheck_control_waived{{profile=\"{profile}\",control=\"{}\"}} {}",
            label(&c.id),
            u8::from(c.waived.is_some())
        );
    }

    family(
        &mut out,
        "nodecheck_control_duration_seconds",
        "Time the checks of each control took in the last run.",
    );
    for c in &report.controls {
        let _ = writeln!(
            out,
            "nodecheck_control_duration_seconds{{profile=\"{profile}\",control=\"{}\"}} {}",
            label(&c.id),
            c.duration.as_secs_f64()
        );
    }

    for (name, help, counts) in [
        (
            "nodecheck_controls",
            "Controls of the last run by outcome; a waived failure counts as waived only, so the series add up to the controls run.",
            &report.summary.controls,
        ),
        (
            "nodecheck_checks",
            "Checks of the last run by outcome; a waived failure counts as waived only, so the series add up to the checks run.",
            &report.summary.checks,
        ),
    ] {
        family(&mut out, name, help);
        for (status, n) in [
            ("pass", counts.passed),
            ("fail", counts.failed),
            ("error", counts.errored),
            // The summary counts a waived failure as skipped too (as
            // JUnit does); here each control is counted once.
            ("skip", counts.skipped - counts.waived),
            ("waived", counts.waived),
        ] {
            let _ = writeln!(
                out,
                "{name}{{profile=\"{profile}\",status=\"{status}\"}} {n}"
            );
        }
    }

    // The target's identity as an info metric (value 1, the facts in
    // labels), the Prometheus way: join it on `profile` to see which
    // image or kernel the failing nodes run.
    family(
        &mut out,
        "nodecheck_target_info",
        "The target of the last run: its name, os-release, kernel and image release.",
    );
    let id = &report.target.identity;
    let os = id.os.clone().unwrap_or_default();
    // A packed image adds its file, format, size and digests (empty when
    // not known); other targets keep the shorter label set.
    let image = id.image.as_ref().map_or_else(String::new, |i| {
        let opt = |v: &Option<String>| label(v.as_deref().unwrap_or(""));
        format!(
            ",image=\"{}\",image_format=\"{}\",image_size=\"{}\",image_digest=\"{}\",image_config_digest=\"{}\",image_sha256=\"{}\"",
            label(&i.path),
            label(&i.format),
            i.size,
            opt(&i.digest),
            opt(&i.config_digest),
            opt(&i.sha256),
        )
    });
    let _ = writeln!(
        out,
        "nodecheck_target_info{{profile=\"{profile}\",kind=\"{}\",name=\"{}\",os=\"{}\",os_version=\"{}\",kernel=\"{}\",image_release=\"{}\"{image}}} 1",
        report.target.kind,
        label(id.name.as_deref().unwrap_or("")),
        label(os.pretty_name.as_deref().unwrap_or("")),
        label(os.version_id.as_deref().unwrap_or("")),
        label(id.kernel.as_deref().unwrap_or("")),
        label(id.image_release.as_deref().unwrap_or("")),
    );

    family(
        &mut out,
        "nodecheck_healthy",
        "1 when no control at or above the failing severity failed or errored in the last run.",
    );
    let _ = writeln!(
        out,
        "nodecheck_healthy{{profile=\"{profile}\"}} {}",
        u8::from(!report.failed(fail_on))
    );

    family(
        &mut out,
        "nodecheck_run_duration_seconds",
        "Wall time of the last run.",
    );
    let _ = writeln!(
        out,
        "nodecheck_run_duration_seconds{{profile=\"{profile}\"}} {}",
        report.duration.as_secs_f64()
    );

    family(
        &mut out,
        "nodecheck_run_timestamp_seconds",
        "When the last run started, in seconds since the Unix epoch.",
    );
    let started = report
        .started
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let _ = writeln!(
        out,
        "nodecheck_run_timestamp_seconds{{profile=\"{profile}\"}} {started}"
    );

    w.write_all(out.as_bytes())
}

/// `# HELP` and `# TYPE` lines opening a gauge family.
fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", help_text(help));
    let _ = writeln!(out, "# TYPE {name} gauge");
}

/// A label value with `\`, `"` and newlines escaped.
fn label(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

/// HELP text with `\` and newlines escaped.
fn help_text(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Writes the Prometheus report to a file when the run finishes,
/// replacing any previous file atomically.
///
/// ```
/// use nodecheck_core::profile::Severity;
/// use nodecheck_core::report::{PrometheusReporter, Reporter};
///
/// let file = "/var/lib/prometheus/node-exporter/nodecheck.prom";
/// let reporters: Vec<Box<dyn Reporter>> =
///     vec![Box::new(PrometheusReporter::new(file, Severity::Low))];
/// # drop(reporters);
/// ```
#[derive(Debug)]
pub struct PrometheusReporter {
    path: PathBuf,
    fail_on: Severity,
}

impl PrometheusReporter {
    /// A reporter that will write `path` on [`Event::Finished`];
    /// `fail_on` decides `nodecheck_healthy` as it decides the exit status.
    pub fn new(path: impl Into<PathBuf>, fail_on: Severity) -> Self {
        PrometheusReporter {
            path: path.into(),
            fail_on,
        }
    }
}

impl Reporter for PrometheusReporter {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Finished(report) => {
                write_report(&self.path, |w| write_prometheus(report, self.fail_on, w))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::report::test_report::sample;

    fn text(report: &Report, fail_on: Severity) -> String {
        let mut buf = Vec::new();
        write_prometheus(report, fail_on, &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    /// The samples of a text, `name{labels}` -> value, checking on the way
    /// the shape the format requires: each family announced by HELP and
    /// TYPE before its samples, and never reopened.
    fn samples(text: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        let mut families: Vec<String> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap().to_string();
                assert!(!families.contains(&name), "{name} reopened");
                assert_eq!(rest, format!("{name} gauge"));
                families.push(name);
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            let name = series.split('{').next().unwrap();
            assert_eq!(families.last().map(String::as_str), Some(name), "{line}");
            let prev = out.insert(series.to_string(), value.parse::<f64>().unwrap());
            assert!(prev.is_none(), "duplicate series {series}");
        }
        out
    }

    #[test]
    fn one_state_set_per_control_and_totals_that_add_up() {
        let report = sample();
        let s = samples(&text(&report, Severity::Low));
        for c in &report.controls {
            let ones: Vec<&str> = STATUSES
                .iter()
                .filter(|st| {
                    let key = format!(
                        "nodecheck_control_status{{profile=\"{}\",control=\"{}\",severity=\"{}\",status=\"{}\"}}",
                        report.profile.name,
                        label(&c.id),
                        c.severity,
                        st.as_str()
                    );
                    s[&key] == 1.0
                })
                .map(|st| st.as_str())
                .collect();
            assert_eq!(ones, vec![c.status.as_str()], "{}", c.id);
        }
        // Every control and every check is counted once: a waived one as
        // `waived`, not as `skip` too (which made 28 of 27 controls).
        assert!(report.summary.controls.waived > 0);
        for (family, total) in [
            ("nodecheck_controls", report.controls.len()),
            ("nodecheck_checks", report.summary.checks.total),
        ] {
            let sum: f64 = ["pass", "fail", "error", "skip", "waived"]
                .iter()
                .map(|st| s[&format!("{family}{{profile=\"compute\",status=\"{st}\"}}")])
                .sum();
            assert_eq!(sum as usize, total, "{family}");
        }
        assert_eq!(
            s["nodecheck_healthy{profile=\"compute\"}"],
            if report.failed(Severity::Low) {
                0.0
            } else {
                1.0
            }
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let mut report = sample();
        report.controls[0].id = "odd\"id\\x\ny".into();
        report.started = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let t = text(&report, Severity::Low);
        assert!(t.contains("control=\"odd\\\"id\\\\x\\ny\""), "{t}");
        assert!(t.contains("nodecheck_run_timestamp_seconds{profile=\"compute\"} 1700000000\n"));
        samples(&t);
    }

    #[test]
    fn healthy_follows_fail_on() {
        let report = sample();
        assert!(report.failed(Severity::Low));
        let s = samples(&text(&report, Severity::Low));
        assert_eq!(s["nodecheck_healthy{profile=\"compute\"}"], 0.0);
        if !report.failed(Severity::Critical) {
            let s = samples(&text(&report, Severity::Critical));
            assert_eq!(s["nodecheck_healthy{profile=\"compute\"}"], 1.0);
        }
    }

    #[test]
    fn reporter_writes_the_file_on_finished_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nodecheck.prom");
        let mut r = PrometheusReporter::new(&path, Severity::Low);
        r.event(&crate::report::test_report::started()).unwrap();
        assert!(!path.exists());
        r.event(&Event::Finished(Arc::new(sample()))).unwrap();
        let t = std::fs::read_to_string(&path).unwrap();
        samples(&t);
        assert!(t.starts_with("# HELP nodecheck_control_status "));
    }
}
