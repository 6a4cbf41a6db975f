//! A diff shown three ways: terminal text, JSON, JUnit (a testcase per
//! category).

use std::fmt::Write as _;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use nodecheck_core::report::junit_text as xml;

use super::diff::{Category, Change, Risk, by_directory, bytes};

/// What both sides were, for headers.
pub struct Sides<'a> {
    pub a: &'a str,
    pub b: &'a str,
}

/// Changes of `Files` below this risk are summarised by directory, not
/// listed one per line, in the terminal.
const LISTED: Risk = Risk::Low;
/// At most this many file lines per risk level in the terminal.
const MAX_LINES: usize = 40;

/// Terminal text: meaning first, then files by directory and the largest
/// additions.
pub fn terminal(changes: &[Change], sides: &Sides<'_>, fail_on: Risk) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "diff {} → {}", sides.a, sides.b);
    for cat in Category::ALL {
        let here: Vec<&Change> = changes.iter().filter(|c| c.category == cat).collect();
        if here.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{} ({} changes)", cat.as_str(), here.len());
        if cat == Category::Files {
            files(&mut out, &here, changes);
            continue;
        }
        for c in here {
            line(&mut out, c, fail_on);
        }
    }
    let mut counts = Vec::new();
    for r in Risk::ALL.iter().rev() {
        let n = changes.iter().filter(|c| c.risk == *r).count();
        if n > 0 {
            counts.push(format!("{n} {r}"));
        }
    }
    let _ = writeln!(
        out,
        "\n{}",
        if counts.is_empty() {
            "no changes".to_string()
        } else {
            format!("{} changes: {}", changes.len(), counts.join(", "))
        }
    );
    out
}

fn line(out: &mut String, c: &Change, fail_on: Risk) {
    let mark = if c.risk >= fail_on { "!" } else { " " };
    let _ = writeln!(
        out,
        "{mark} {:<8} {:<26} {}  {}",
        c.risk.as_str(),
        c.rule,
        c.subject,
        c.detail
    );
}

fn files(out: &mut String, here: &[&Change], all: &[Change]) {
    for r in Risk::ALL.iter().rev().filter(|r| **r >= LISTED) {
        let at: Vec<&&Change> = here.iter().filter(|c| c.risk == *r).collect();
        for c in at.iter().take(MAX_LINES) {
            line(out, c, Risk::Critical);
        }
        if at.len() > MAX_LINES {
            let _ = writeln!(out, "  … {} more {r} (all in --json)", at.len() - MAX_LINES);
        }
    }
    let _ = writeln!(
        out,
        "  by directory (added / removed / changed, bytes added):"
    );
    for (dir, a, r, c, b) in by_directory(all).iter().take(15) {
        let _ = writeln!(out, "    {dir:<40} +{a} -{r} ~{c}  {}", bytes(*b));
    }
    let mut largest: Vec<&&Change> = here.iter().filter(|c| c.bytes > 0).collect();
    largest.sort_by_key(|c| std::cmp::Reverse(c.bytes));
    if !largest.is_empty() {
        let _ = writeln!(out, "  largest additions:");
        for c in largest.iter().take(10) {
            let _ = writeln!(out, "    {:>10}  {}", bytes(c.bytes), c.subject);
        }
    }
}

#[derive(Serialize)]
struct Json<'a> {
    a: &'a str,
    b: &'a str,
    fail_on: Risk,
    worst: Option<Risk>,
    changes: &'a [Change],
}

/// Every change as JSON.
pub fn json(changes: &[Change], sides: &Sides<'_>, fail_on: Risk) -> String {
    serde_json::to_string_pretty(&Json {
        a: sides.a,
        b: sides.b,
        fail_on,
        worst: super::diff::worst(changes),
        changes,
    })
    .unwrap_or_default()
}

/// JUnit XML: one testsuite `diff`, a testcase per category, failing when
/// a change of it is at or above `fail_on`; its changes in system-out.
pub fn junit(changes: &[Change], sides: &Sides<'_>, fail_on: Risk) -> Result<String, String> {
    let mut report = quick_junit::Report::new("nodecheck diff");
    let mut suite = TestSuite::new("diff");
    for cat in Category::ALL {
        let here: Vec<&Change> = changes.iter().filter(|c| c.category == cat).collect();
        let bad: Vec<&&Change> = here.iter().filter(|c| c.risk >= fail_on).collect();
        let status = if bad.is_empty() {
            TestCaseStatus::success()
        } else {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_message(xml(&format!(
                "{} {} change(s) at or above {fail_on}",
                bad.len(),
                cat.as_str()
            )))
            .set_type("fail")
            .set_description(xml(&bad
                .iter()
                .map(|c| format!("{} {} {}: {}", c.risk, c.rule, c.subject, c.detail))
                .collect::<Vec<_>>()
                .join("\n")));
            st
        };
        let mut case = TestCase::new(cat.as_str(), status);
        case.set_classname(xml(&format!("diff {} → {}", sides.a, sides.b)));
        if !here.is_empty() {
            case.set_system_out(xml(&here
                .iter()
                .map(|c| format!("{} {} {}: {}", c.risk, c.rule, c.subject, c.detail))
                .collect::<Vec<_>>()
                .join("\n")));
        }
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    nodecheck_core::report::junit_xml(&report).map_err(|e| e.to_string())
}
