//! The fleet report's renderings: terminal, JSON, JUnit, Prometheus.

use std::fmt::Write as _;
use std::io::{self, Write};

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};
use serde_json::{Value, json};

use super::{FLEET_SCHEMA, Fleet};
use crate::outcome::Status;
use crate::profile::Severity;

/// Text read from nodes may carry escape sequences: everything but a
/// printable character is shown escaped.
fn safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes the fleet report for a terminal: one line per control with the
/// nodes per outcome, each distinct failure once with its nodes, the
/// images, the nodes that sent no report and the inputs that were bad.
pub fn write_terminal(fleet: &Fleet, fail_on: Severity, w: &mut dyn Write) -> io::Result<()> {
    let mut out = String::new();
    let all: Vec<u32> = (0..fleet.nodes.len() as u32).collect();
    let failed: Vec<u32> = all
        .iter()
        .copied()
        .filter(|&i| fleet.node_failed(&fleet.nodes[i as usize], fail_on))
        .collect();
    let mut profiles: Vec<&str> = fleet.nodes.iter().map(|n| n.profile.as_str()).collect();
    profiles.sort_unstable();
    profiles.dedup();
    let _ = writeln!(
        out,
        "fleet: {} nodes {}; profile {}",
        fleet.nodes.len(),
        safe(&fleet.hostlist(&all)),
        safe(&profiles.join(", "))
    );
    let _ = writeln!(
        out,
        "failed: {} nodes {}",
        failed.len(),
        safe(&fleet.hostlist(&failed))
    );
    let width = fleet
        .controls
        .iter()
        .map(|c| c.id.chars().count())
        .max()
        .unwrap_or(7)
        .clamp(7, 48);
    let _ = writeln!(
        out,
        "\n{:<width$}  {:>8}  {:>6} {:>6} {:>6} {:>6}",
        "CONTROL", "SEVERITY", "PASS", "FAIL", "ERROR", "SKIP"
    );
    for (c, v) in fleet.controls.iter().zip(fleet.views()) {
        let _ = writeln!(
            out,
            "{:<width$}  {:>8}  {:>6} {:>6} {:>6} {:>6}",
            safe(&c.id),
            c.severity.as_str(),
            v.pass.len(),
            v.fail.len(),
            v.error.len(),
            v.skip.len()
        );
        for (status, message, nodes) in &v.groups {
            if *status == Status::Skip {
                continue;
            }
            let _ = writeln!(
                out,
                "  {} on {} {}:",
                status.as_str(),
                nodes.len(),
                safe(&fleet.hostlist(nodes))
            );
            for line in fleet.messages[*message as usize].lines() {
                let _ = writeln!(out, "      {}", safe(line));
            }
        }
        if !v.waived.is_empty() {
            let _ = writeln!(out, "  waived on {}", safe(&fleet.hostlist(&v.waived)));
        }
    }
    let groups = fleet.image_groups();
    let _ = writeln!(out, "\nimages: {}", groups.len());
    for (image, nodes) in &groups {
        let _ = writeln!(
            out,
            "  {} {}: {}",
            nodes.len(),
            safe(&fleet.hostlist(nodes)),
            safe(&fleet.images[*image].describe())
        );
    }
    if !fleet.missing.is_empty() {
        let names = crate::hostlist::compress(fleet.missing.iter().map(String::as_str));
        let _ = writeln!(
            out,
            "\nno report from {} expected nodes: {}",
            fleet.missing.len(),
            safe(&names)
        );
    }
    if !fleet.unexpected.is_empty() {
        let names = crate::hostlist::compress(fleet.unexpected.iter().map(String::as_str));
        let _ = writeln!(out, "\nreports from nodes not expected: {}", safe(&names));
    }
    if !fleet.problems.is_empty() {
        let _ = writeln!(out, "\n{} inputs not used:", fleet.problems.len());
        for p in &fleet.problems {
            let _ = writeln!(out, "  {}: {}", safe(&p.source), safe(&p.message));
        }
    }
    w.write_all(out.as_bytes())
}

fn nodes(fleet: &Fleet, indexes: &[u32]) -> Value {
    json!({ "count": indexes.len(), "nodes": fleet.hostlist(indexes) })
}

/// The fleet report as one JSON document (layout in docs/fleet.md).
pub fn fleet_json(fleet: &Fleet, fail_on: Severity) -> Value {
    let all: Vec<u32> = (0..fleet.nodes.len() as u32).collect();
    let failed: Vec<u32> = all
        .iter()
        .copied()
        .filter(|&i| fleet.node_failed(&fleet.nodes[i as usize], fail_on))
        .collect();
    let controls: Vec<Value> = fleet
        .controls
        .iter()
        .zip(fleet.views())
        .map(|(c, v)| {
            let groups: Vec<Value> = v
                .groups
                .iter()
                .map(|(s, m, n)| {
                    json!({
                        "status": s.as_str(),
                        "message": fleet.messages[*m as usize],
                        "count": n.len(),
                        "nodes": fleet.hostlist(n),
                    })
                })
                .collect();
            let mut o = json!({
                "id": c.id,
                "severity": c.severity.as_str(),
                "pass": nodes(fleet, &v.pass),
                "fail": nodes(fleet, &v.fail),
                "error": nodes(fleet, &v.error),
                "skip": nodes(fleet, &v.skip),
                "waived": nodes(fleet, &v.waived),
                "groups": groups,
            });
            if let Some(t) = &c.title {
                o["title"] = json!(t);
            }
            o
        })
        .collect();
    let images: Vec<Value> = fleet
        .image_groups()
        .into_iter()
        .map(|(i, n)| {
            let id = &fleet.images[i];
            let mut o = json!({ "count": n.len(), "nodes": fleet.hostlist(&n) });
            for (k, v) in [
                ("pretty_name", &id.pretty_name),
                ("version_id", &id.version_id),
                ("kernel", &id.kernel),
                ("image_release", &id.image_release),
                ("image_digest", &id.image_digest),
            ] {
                if let Some(v) = v {
                    o[k] = json!(v);
                }
            }
            o
        })
        .collect();
    let problems: Vec<Value> = fleet
        .problems
        .iter()
        .map(|p| json!({ "source": p.source, "message": p.message }))
        .collect();
    let list = |v: &[String]| crate::hostlist::compress(v.iter().map(String::as_str));
    json!({
        "schema": FLEET_SCHEMA,
        "fail_on": fail_on.as_str(),
        "failed": fleet.failed_at(fail_on),
        "nodes": nodes(fleet, &all),
        "failed_nodes": nodes(fleet, &failed),
        "missing": { "count": fleet.missing.len(), "nodes": list(&fleet.missing) },
        "unexpected": { "count": fleet.unexpected.len(), "nodes": list(&fleet.unexpected) },
        "controls": controls,
        "images": images,
        "problems": problems,
    })
}

/// Writes [`fleet_json`] pretty-printed, with a final newline.
pub fn write_json(fleet: &Fleet, fail_on: Severity, w: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, &fleet_json(fleet, fail_on)).map_err(io::Error::from)?;
    w.write_all(b"\n")
}

fn xml(s: &str) -> String {
    s.replace(['\u{FFFE}', '\u{FFFF}'], "")
}

/// Writes JUnit XML: one `<testsuite>` per node (named by the node, its
/// image in the properties), one `<testcase>` per control (classname the
/// control id); an expected node without a report is a suite with one
/// erroring `report` case, so CI shows it.
pub fn write_junit(fleet: &Fleet, w: &mut dyn Write) -> io::Result<()> {
    let mut report = quick_junit::Report::new("nodecheck fleet");
    for node in &fleet.nodes {
        let mut suite = TestSuite::new(xml(&node.name));
        suite
            .extra
            .insert("hostname".into(), xml(&node.name).into());
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&node.started) {
            suite.set_timestamp(t);
        }
        let id = &fleet.images[node.image];
        suite.add_property(Property::new("profile", xml(&node.profile)));
        suite.add_property(Property::new("source", xml(&node.source)));
        suite.add_property(Property::new("image", xml(&id.describe())));
        for r in &node.results {
            let c = &fleet.controls[r.control as usize];
            let message = &fleet.messages[r.message as usize];
            let first = message.lines().next().unwrap_or("");
            let status = match r.counted() {
                Status::Pass => TestCaseStatus::success(),
                Status::Skip => {
                    let mut st = TestCaseStatus::skipped();
                    let why = if r.waived {
                        format!("waived: {message}")
                    } else {
                        message.clone()
                    };
                    st.set_message(xml(why.lines().next().unwrap_or("")))
                        .set_description(xml(&why));
                    st
                }
                s @ (Status::Fail | Status::Error) => {
                    let kind = if s == Status::Fail {
                        NonSuccessKind::Failure
                    } else {
                        NonSuccessKind::Error
                    };
                    let mut st = TestCaseStatus::non_success(kind);
                    st.set_message(xml(first))
                        .set_type(s.as_str())
                        .set_description(xml(message));
                    st
                }
            };
            let mut case = TestCase::new(xml(&c.id), status);
            case.set_classname(xml(&c.id));
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    for name in &fleet.missing {
        let mut suite = TestSuite::new(xml(name));
        suite.extra.insert("hostname".into(), xml(name).into());
        let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
        st.set_message("no report from this node")
            .set_type("missing");
        let mut case = TestCase::new("report", st);
        case.set_classname("report");
        suite.add_test_case(case);
        report.add_test_suite(suite);
    }
    let text = report
        .to_string()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    w.write_all(crate::report::without_root_skipped(&text).as_bytes())
}

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

/// Writes the Prometheus text format: per node, 1 when it failed
/// (`nodecheck_fleet_node_failed{node=..}`) and its controls by outcome;
/// per control, how many nodes had each outcome; the nodes missing.
pub fn write_prometheus(fleet: &Fleet, fail_on: Severity, w: &mut dyn Write) -> io::Result<()> {
    let mut out = String::new();
    let statuses = [Status::Pass, Status::Fail, Status::Error, Status::Skip];
    out.push_str("# HELP nodecheck_fleet_node_failed 1 when the node had a failure or error at or above --fail-on.\n# TYPE nodecheck_fleet_node_failed gauge\n");
    for n in &fleet.nodes {
        let _ = writeln!(
            out,
            "nodecheck_fleet_node_failed{{node=\"{}\"}} {}",
            label(&n.name),
            u8::from(fleet.node_failed(n, fail_on))
        );
    }
    for n in &fleet.missing {
        let _ = writeln!(
            out,
            "nodecheck_fleet_node_failed{{node=\"{}\"}} 1",
            label(n)
        );
    }
    out.push_str("# HELP nodecheck_fleet_node_controls Controls of each node's report by outcome.\n# TYPE nodecheck_fleet_node_controls gauge\n");
    for n in &fleet.nodes {
        let mut counts = [0usize; 4];
        for r in &n.results {
            let i = statuses.iter().position(|&s| s == r.counted()).unwrap_or(3);
            counts[i] += 1;
        }
        for (s, c) in statuses.iter().zip(counts) {
            let _ = writeln!(
                out,
                "nodecheck_fleet_node_controls{{node=\"{}\",status=\"{}\"}} {c}",
                label(&n.name),
                s.as_str()
            );
        }
    }
    out.push_str("# HELP nodecheck_fleet_control_nodes Nodes per outcome of each control.\n# TYPE nodecheck_fleet_control_nodes gauge\n");
    for (c, v) in fleet.controls.iter().zip(fleet.views()) {
        for (s, n) in statuses
            .iter()
            .zip([v.pass.len(), v.fail.len(), v.error.len(), v.skip.len()])
        {
            let _ = writeln!(
                out,
                "nodecheck_fleet_control_nodes{{control=\"{}\",severity=\"{}\",status=\"{}\"}} {n}",
                label(&c.id),
                c.severity.as_str(),
                s.as_str()
            );
        }
    }
    out.push_str("# HELP nodecheck_fleet_nodes_missing Expected nodes that sent no report.\n# TYPE nodecheck_fleet_nodes_missing gauge\n");
    let _ = writeln!(out, "nodecheck_fleet_nodes_missing {}", fleet.missing.len());
    w.write_all(out.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::super::tests::node;
    use super::super::{MergeOptions, read::InputProblem};
    use super::*;
    use crate::hostlist::HostList;
    use crate::report::junit::tests::xmllint;

    fn fleet() -> Fleet {
        let reports = vec![
            node(
                "node1",
                &[("munge", Status::Pass, ""), ("mem", Status::Pass, "")],
            ),
            node(
                "node2",
                &[("munge", Status::Pass, ""), ("mem", Status::Pass, "")],
            ),
            node(
                "node3",
                &[
                    (
                        "munge",
                        Status::Fail,
                        "service munge: running: expected true, got false",
                    ),
                    ("mem", Status::Error, "meminfo: \x1b[31mcannot read"),
                ],
            ),
            node(
                "node4",
                &[
                    ("munge", Status::Pass, ""),
                    ("mem", Status::Skip, "needs a live node"),
                ],
            ),
        ];
        let problems = vec![InputProblem {
            source: "bad.json".into(),
            message: "truncated JSON report (ends at line 3)".into(),
        }];
        let options = MergeOptions {
            expect: Some(HostList::parse("node[1-5]").unwrap()),
        };
        Fleet::merge(reports, problems, &options)
    }

    #[test]
    fn terminal_names_the_nodes_of_each_outcome() {
        let mut buf = Vec::new();
        write_terminal(&fleet(), Severity::Low, &mut buf).unwrap();
        let t = String::from_utf8(buf).unwrap();
        assert!(t.contains("fleet: 4 nodes node[1-4]"), "{t}");
        assert!(t.contains("failed: 1 nodes node3"), "{t}");
        assert!(
            t.contains(
                "  fail on 1 node3:\n      service munge: running: expected true, got false"
            ),
            "{t}"
        );
        assert!(
            t.contains("\\u{1b}[31m"),
            "escapes are shown, not sent: {t}"
        );
        assert!(!t.contains('\x1b'));
        assert!(t.contains("no report from 1 expected nodes: node5"), "{t}");
        assert!(t.contains("bad.json: truncated JSON report"), "{t}");
        assert!(
            t.contains("4 node[1-4]: Debian GNU/Linux 12 (bookworm), kernel 6.1.0"),
            "{t}"
        );
    }

    #[test]
    fn json_carries_counts_and_hostlists() {
        let v = fleet_json(&fleet(), Severity::Low);
        assert_eq!(v["schema"], FLEET_SCHEMA);
        assert_eq!(v["failed"], true);
        assert_eq!(v["nodes"]["nodes"], "node[1-4]");
        assert_eq!(v["missing"]["nodes"], "node5");
        let munge = &v["controls"][0];
        assert_eq!(munge["pass"]["nodes"], "node[1-2,4]");
        assert_eq!(munge["fail"]["count"], 1);
        assert_eq!(munge["groups"][0]["nodes"], "node3");
        assert_eq!(v["problems"][0]["source"], "bad.json");
    }

    #[test]
    fn junit_has_a_suite_per_node_and_validates() {
        let mut buf = Vec::new();
        write_junit(&fleet(), &mut buf).unwrap();
        let xml = String::from_utf8(buf).unwrap();
        assert_eq!(xml.matches("<testsuite ").count(), 5, "{xml}");
        assert!(xml.contains("name=\"node5\""));
        assert!(xml.contains("no report from this node"));
        xmllint(&xml);
    }

    #[test]
    fn prometheus_labels_nodes() {
        let mut buf = Vec::new();
        write_prometheus(&fleet(), Severity::Low, &mut buf).unwrap();
        let t = String::from_utf8(buf).unwrap();
        assert!(
            t.contains("nodecheck_fleet_node_failed{node=\"node3\"} 1\n"),
            "{t}"
        );
        assert!(
            t.contains("nodecheck_fleet_node_failed{node=\"node1\"} 0\n"),
            "{t}"
        );
        assert!(
            t.contains("nodecheck_fleet_node_failed{node=\"node5\"} 1\n"),
            "{t}"
        );
        assert!(t.contains(
            "nodecheck_fleet_control_nodes{control=\"munge\",severity=\"high\",status=\"pass\"} 3\n"
        ));
    }
}
