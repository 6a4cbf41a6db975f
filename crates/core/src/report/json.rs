//! The JSON report: the [`Report`] model serialized as is. The layout is
//! documented field by field in `docs/json-report.md` and versioned by
//! [`JSON_SCHEMA`](super::JSON_SCHEMA).

use std::io::{self, Write};
use std::path::PathBuf;

use super::{Event, Report, Reporter, write_report};

/// Writes `report` as pretty-printed JSON followed by a newline.
///
/// ```
/// use nodecheck_core::report::{Report, write_json};
///
/// fn to_json(report: &Report) -> std::io::Result<String> {
///     let mut buf = Vec::new();
///     write_json(report, &mut buf)?;
///     Ok(String::from_utf8(buf).expect("serde_json writes UTF-8"))
/// }
/// ```
pub fn write_json(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, report).map_err(io::Error::from)?;
    w.write_all(b"\n")
}

/// Writes the JSON report to a file when the run finishes, replacing any
/// previous file atomically.
///
/// ```
/// use nodecheck_core::report::{JsonReporter, Reporter};
///
/// let reporters: Vec<Box<dyn Reporter>> = vec![Box::new(JsonReporter::new("report.json"))];
/// # drop(reporters);
/// ```
#[derive(Debug)]
pub struct JsonReporter {
    path: PathBuf,
}

impl JsonReporter {
    /// A reporter that will write `path` on [`Event::Finished`].
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JsonReporter { path: path.into() }
    }
}

impl Reporter for JsonReporter {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Finished(report) => write_report(&self.path, |w| write_json(report, w)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::report::test_report::sample;

    #[test]
    fn snapshot() {
        let mut buf = Vec::new();
        write_json(&sample(), &mut buf).unwrap();
        insta::assert_snapshot!(String::from_utf8(buf).unwrap());
    }

    #[test]
    fn summary_counts_match_the_report() {
        let report = sample();
        let mut buf = Vec::new();
        write_json(&report, &mut buf).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["schema"], "nodecheck/report/v1");
        let checks = &v["summary"]["checks"];
        assert_eq!(checks["total"], report.summary.checks.total);
        assert_eq!(checks["failed"], report.summary.checks.failed);
        assert_eq!(checks["skipped"], report.summary.checks.skipped);
        assert_eq!(
            v["controls"].as_array().unwrap().len(),
            report.controls.len()
        );
    }

    #[test]
    fn reporter_writes_the_file_on_finished_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        let mut r = JsonReporter::new(&path);
        r.event(&crate::report::test_report::started()).unwrap();
        assert!(!path.exists());
        r.event(&Event::Finished(Arc::new(sample()))).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["profile"]["name"], "compute");
    }
}
