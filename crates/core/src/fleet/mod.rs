//! Fleet reports: many nodes' JSON reports merged into one answer.
//!
//! Slurm (`srun`, `sbatch`, HealthCheckProgram), pdsh or Ansible run
//! `nodecheck run --json` on every node; [`read_paths`] reads what they
//! wrote and [`Fleet::merge`] turns it into per-control counts, the nodes
//! behind each count in Slurm hostlist notation, failures grouped by
//! identical message and nodes grouped by image identity. The writers
//! ([`write_terminal`], [`write_json`], [`write_junit`],
//! [`write_prometheus`]) render it; docs/fleet.md documents them.
//!
//! ```
//! use nodecheck_core::fleet::{Fleet, MergeOptions, parse_one};
//!
//! let report = br#"{"schema":"nodecheck/report/v1","profile":{"name":"p","file":"p.toml"},
//!   "hostname":"node01","started":"2026-01-01T00:00:00.000Z","controls":[
//!   {"id":"munge","severity":"high","status":"pass","checks":[]}]}"#;
//! let node = parse_one(report, "node01.json").unwrap();
//! let fleet = Fleet::merge(vec![node], Vec::new(), &MergeOptions::default());
//! assert_eq!(fleet.nodes[0].name, "node01");
//! assert!(!fleet.failed());
//! ```

mod read;
mod write;

use std::collections::HashMap;

pub use read::{InputProblem, Inputs, MAX_REPORT_BYTES, parse_one, read_paths, read_stream};
pub use write::{write_json, write_junit, write_prometheus, write_terminal};

use crate::hostlist::{self, HostList};
use crate::outcome::Status;
use crate::profile::Severity;

/// The version of the fleet JSON layout (docs/fleet.md).
pub const FLEET_SCHEMA: &str = "nodecheck/fleet/v1";

/// What a node report says about the image a node runs: equal identities
/// are one image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    /// os-release `PRETTY_NAME`.
    pub pretty_name: Option<String>,
    /// os-release `VERSION_ID`.
    pub version_id: Option<String>,
    /// The kernel release (`uname -r`, or the image's kernel).
    pub kernel: Option<String>,
    /// The content of the image's release file (`/etc/image-release`).
    pub image_release: Option<String>,
    /// A packed image's content digest (`target.image`: the image ID,
    /// else the manifest digest, else the file's `--sha256`): two images
    /// that say the same os-release and release file but differ in content
    /// are two groups.
    pub image_digest: Option<String>,
}

impl Identity {
    /// One line for humans: `Debian GNU/Linux 12 (bookworm), kernel 6.1.0-18-amd64, release abc123`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match (&self.pretty_name, &self.version_id) {
            (Some(p), _) => parts.push(p.clone()),
            (None, Some(v)) => parts.push(format!("version {v}")),
            (None, None) => parts.push("unknown OS".to_owned()),
        }
        if let Some(k) = &self.kernel {
            parts.push(format!("kernel {k}"));
        }
        if let Some(r) = &self.image_release {
            parts.push(format!("release {}", r.trim()));
        }
        if let Some(d) = &self.image_digest {
            // As `podman images` shows an ID: the algorithm and 12 digits
            // (the JSON report has it whole).
            let short = match d.split_once(':') {
                Some((alg, hex)) => format!("{alg}:{}", hex.get(..12).unwrap_or(hex)),
                None => d.clone(),
            };
            parts.push(format!("image {short}"));
        }
        parts.join(", ")
    }
}

/// One node's report, reduced to what a fleet report shows.
#[derive(Clone, Debug)]
pub struct NodeReport {
    /// The node: the target's name (a live node's hostname, an image's
    /// directory), else the host nodecheck ran on.
    pub node: String,
    /// The file (or stream document) it was read from.
    pub source: String,
    pub profile: String,
    /// When the run started (RFC 3339, as the report wrote it).
    pub started: String,
    pub identity: Identity,
    pub controls: Vec<NodeControl>,
}

/// One control of one node's report.
#[derive(Clone, Debug)]
pub struct NodeControl {
    pub id: String,
    pub title: Option<String>,
    pub severity: Severity,
    pub status: Status,
    pub waived: bool,
    /// `check: message` lines of its failing (erroring, skipped) checks;
    /// empty for a pass.
    pub message: String,
}

/// How reports are merged.
#[derive(Clone, Debug, Default)]
pub struct MergeOptions {
    /// The nodes that should have sent a report (`--expect`).
    pub expect: Option<HostList>,
}

/// The merged fleet.
#[derive(Debug)]
pub struct Fleet {
    /// One per node, sorted by name.
    pub nodes: Vec<Node>,
    /// Every control seen, in the order first seen.
    pub controls: Vec<FleetControl>,
    /// Distinct images; [`Node::image`] indexes this.
    pub images: Vec<Identity>,
    /// Distinct messages; [`NodeResult::message`] indexes this.
    pub messages: Vec<String>,
    /// Inputs that could not be used, each naming its source.
    pub problems: Vec<InputProblem>,
    /// Expected nodes that sent no report.
    pub missing: Vec<String>,
    /// Reports from nodes outside `--expect` (kept in the merge).
    pub unexpected: Vec<String>,
}

/// A node of the fleet.
#[derive(Debug)]
pub struct Node {
    pub name: String,
    pub source: String,
    pub profile: String,
    pub started: String,
    pub image: usize,
    pub results: Vec<NodeResult>,
}

/// One control's outcome on one node.
#[derive(Clone, Copy, Debug)]
pub struct NodeResult {
    /// Index into [`Fleet::controls`].
    pub control: u32,
    pub status: Status,
    pub waived: bool,
    /// Index into [`Fleet::messages`] (0 is the empty message).
    pub message: u32,
}

impl NodeResult {
    /// The status a fleet report counts: a waived failure or error is a
    /// skip, as in a node's own summary.
    pub fn counted(&self) -> Status {
        match (self.status, self.waived) {
            (Status::Fail | Status::Error, true) => Status::Skip,
            (s, _) => s,
        }
    }
}

/// A control as the fleet knows it (title and severity of the first
/// report that had it).
#[derive(Debug)]
pub struct FleetControl {
    pub id: String,
    pub title: Option<String>,
    pub severity: Severity,
}

/// The nodes behind one outcome of one control, with the failures (errors,
/// skips) grouped by identical message.
#[derive(Debug, Default)]
pub struct ControlView {
    /// Node indexes by counted status: pass, fail, error, skip.
    pub pass: Vec<u32>,
    pub fail: Vec<u32>,
    pub error: Vec<u32>,
    pub skip: Vec<u32>,
    /// (status, message index, nodes), most nodes first.
    pub groups: Vec<(Status, u32, Vec<u32>)>,
    /// Nodes whose failure or error was waived.
    pub waived: Vec<u32>,
}

impl Fleet {
    /// Merges node reports. Two reports for one node keep the first (in
    /// input order) and name the second in [`Fleet::problems`].
    pub fn merge(
        reports: Vec<NodeReport>,
        mut problems: Vec<InputProblem>,
        options: &MergeOptions,
    ) -> Fleet {
        let mut fleet = Fleet {
            nodes: Vec::with_capacity(reports.len()),
            controls: Vec::new(),
            images: Vec::new(),
            messages: vec![String::new()],
            problems: Vec::new(),
            missing: Vec::new(),
            unexpected: Vec::new(),
        };
        let mut seen: HashMap<String, String> = HashMap::with_capacity(reports.len());
        let mut control_ix: HashMap<String, u32> = HashMap::new();
        let mut message_ix: HashMap<String, u32> = HashMap::new();
        message_ix.insert(String::new(), 0);
        let mut image_ix: HashMap<Identity, usize> = HashMap::new();
        for r in reports {
            if let Some(first) = seen.get(&r.node) {
                problems.push(InputProblem {
                    source: r.source,
                    message: format!(
                        "a second report for node {:?} (the first, from {first}, is used)",
                        r.node
                    ),
                });
                continue;
            }
            seen.insert(r.node.clone(), r.source.clone());
            let image = *image_ix.entry(r.identity).or_insert_with_key(|id| {
                fleet.images.push(id.clone());
                fleet.images.len() - 1
            });
            let mut results = Vec::with_capacity(r.controls.len());
            for c in r.controls {
                let control = match control_ix.get(&c.id) {
                    Some(&i) => i,
                    None => {
                        let i = fleet.controls.len() as u32;
                        control_ix.insert(c.id.clone(), i);
                        fleet.controls.push(FleetControl {
                            id: c.id,
                            title: c.title,
                            severity: c.severity,
                        });
                        i
                    }
                };
                let message = match message_ix.get(&c.message) {
                    Some(&i) => i,
                    None => {
                        let i = fleet.messages.len() as u32;
                        message_ix.insert(c.message.clone(), i);
                        fleet.messages.push(c.message);
                        i
                    }
                };
                results.push(NodeResult {
                    control,
                    status: c.status,
                    waived: c.waived,
                    message,
                });
            }
            fleet.nodes.push(Node {
                name: r.node,
                source: r.source,
                profile: r.profile,
                started: r.started,
                image,
                results,
            });
        }
        fleet.nodes.sort_by(|a, b| natural(&a.name, &b.name));
        if let Some(expect) = &options.expect {
            fleet.unexpected = fleet
                .nodes
                .iter()
                .filter(|n| !expect.matches(&n.name))
                .map(|n| n.name.clone())
                .collect();
            match expect.expand() {
                Ok(names) => {
                    fleet.missing = names
                        .into_iter()
                        .filter(|n| !seen.contains_key(n))
                        .collect();
                    fleet.missing.sort_by(|a, b| natural(a, b));
                    fleet.missing.dedup();
                }
                Err(e) => problems.push(InputProblem {
                    source: "--expect".into(),
                    message: e.to_string(),
                }),
            }
        }
        fleet.problems = problems;
        fleet
    }

    /// Whether a node has a failure or error at or above `fail_on` (waived
    /// ones excluded), or an expected node sent no report.
    pub fn failed_at(&self, fail_on: Severity) -> bool {
        !self.missing.is_empty() || self.nodes.iter().any(|n| self.node_failed(n, fail_on))
    }

    /// [`Fleet::failed_at`] with the default `--fail-on low`.
    pub fn failed(&self) -> bool {
        self.failed_at(Severity::Low)
    }

    /// Whether `node` has a failure or error at or above `fail_on`.
    pub fn node_failed(&self, node: &Node, fail_on: Severity) -> bool {
        node.results.iter().any(|r| {
            matches!(r.counted(), Status::Fail | Status::Error)
                && self.controls[r.control as usize].severity >= fail_on
        })
    }

    /// Per control, which nodes had which outcome, in one pass over the
    /// results.
    pub fn views(&self) -> Vec<ControlView> {
        let mut views: Vec<ControlView> = (0..self.controls.len())
            .map(|_| ControlView::default())
            .collect();
        let mut groups: Vec<HashMap<(Status, u32), Vec<u32>>> =
            (0..self.controls.len()).map(|_| HashMap::new()).collect();
        for (ni, node) in self.nodes.iter().enumerate() {
            let ni = ni as u32;
            for r in &node.results {
                let v = &mut views[r.control as usize];
                let counted = r.counted();
                match counted {
                    Status::Pass => v.pass.push(ni),
                    Status::Fail => v.fail.push(ni),
                    Status::Error => v.error.push(ni),
                    Status::Skip => v.skip.push(ni),
                }
                if r.waived && counted != r.status {
                    v.waived.push(ni);
                }
                if counted != Status::Pass {
                    groups[r.control as usize]
                        .entry((counted, r.message))
                        .or_default()
                        .push(ni);
                }
            }
        }
        for (v, g) in views.iter_mut().zip(groups) {
            v.groups = g.into_iter().map(|((s, m), n)| (s, m, n)).collect();
            // Gravest first, then most nodes, then message order: stable output.
            v.groups.sort_by(|a, b| {
                b.0.cmp(&a.0)
                    .then(b.2.len().cmp(&a.2.len()))
                    .then(self.messages[a.1 as usize].cmp(&self.messages[b.1 as usize]))
            });
        }
        views
    }

    /// Node indexes grouped by image, largest group first.
    pub fn image_groups(&self) -> Vec<(usize, Vec<u32>)> {
        let mut by: Vec<Vec<u32>> = vec![Vec::new(); self.images.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            by[n.image].push(i as u32);
        }
        let mut out: Vec<(usize, Vec<u32>)> = by.into_iter().enumerate().collect();
        out.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        out
    }

    /// The nodes at `indexes` in hostlist notation.
    pub fn hostlist(&self, indexes: &[u32]) -> String {
        hostlist::compress(
            indexes
                .iter()
                .map(|&i| self.nodes[i as usize].name.as_str()),
        )
    }
}

/// Orders `node2` before `node10`: names compare by their text with runs of
/// digits compared as numbers.
fn natural(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (&a[..da], &b[..db]);
                let ta = na.iter().skip_while(|&&c| c == b'0').count();
                let tb = nb.iter().skip_while(|&&c| c == b'0').count();
                let ord = ta
                    .cmp(&tb)
                    .then_with(|| na[da - ta..].cmp(&nb[db - tb..]))
                    .then(da.cmp(&db));
                if ord.is_ne() {
                    return ord;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn node(name: &str, results: &[(&str, Status, &str)]) -> NodeReport {
        NodeReport {
            node: name.into(),
            source: format!("{name}.json"),
            profile: "nhc".into(),
            started: "2026-01-01T00:00:00.000Z".into(),
            identity: Identity {
                pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
                version_id: Some("12".into()),
                kernel: Some("6.1.0".into()),
                image_release: None,
                image_digest: None,
            },
            controls: results
                .iter()
                .map(|(id, s, m)| NodeControl {
                    id: (*id).into(),
                    title: None,
                    severity: Severity::High,
                    status: *s,
                    waived: false,
                    message: (*m).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn failures_with_one_message_are_one_group() {
        let mut reports: Vec<_> = (1..=400)
            .map(|i| {
                node(
                    &format!("node{i:03}"),
                    &[("munge", Status::Fail, "service munge: not running")],
                )
            })
            .collect();
        reports.push(node("node401", &[("munge", Status::Pass, "")]));
        reports.push(node("node402", &[("munge", Status::Error, "timed out")]));
        let fleet = Fleet::merge(reports, vec![], &MergeOptions::default());
        let v = &fleet.views()[0];
        assert_eq!((v.pass.len(), v.fail.len(), v.error.len()), (1, 400, 1));
        assert_eq!(v.groups.len(), 2);
        assert_eq!(v.groups[0].0, Status::Error);
        assert_eq!(fleet.hostlist(&v.groups[1].2), "node[001-400]");
        assert_eq!(fleet.hostlist(&v.pass), "node401");
        assert!(fleet.failed());
    }

    #[test]
    fn duplicates_and_missing_nodes_are_named() {
        let reports = vec![
            node("n2", &[("a", Status::Pass, "")]),
            node("n10", &[("a", Status::Pass, "")]),
            node("n2", &[("a", Status::Fail, "x")]),
            node("login", &[("a", Status::Pass, "")]),
        ];
        let options = MergeOptions {
            expect: Some(HostList::parse("n[1-3,10]").unwrap()),
        };
        let fleet = Fleet::merge(reports, vec![], &options);
        let names: Vec<_> = fleet.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["login", "n2", "n10"]);
        assert_eq!(fleet.problems.len(), 1);
        assert!(fleet.problems[0].message.contains("second report"));
        assert_eq!(fleet.missing, ["n1", "n3"]);
        assert_eq!(fleet.unexpected, ["login"]);
        assert!(fleet.failed(), "missing nodes fail the fleet");
    }

    #[test]
    fn waived_failures_count_as_skips_and_fail_on_filters() {
        let mut r = node("n1", &[("a", Status::Fail, "x")]);
        r.controls[0].waived = true;
        let mut low = node("n2", &[("b", Status::Fail, "y")]);
        low.controls[0].severity = Severity::Low;
        let fleet = Fleet::merge(vec![r, low], vec![], &MergeOptions::default());
        let v = fleet.views();
        assert_eq!((v[0].skip.len(), v[0].waived.len()), (1, 1));
        assert!(fleet.failed_at(Severity::Low));
        assert!(!fleet.failed_at(Severity::Medium));
    }

    /// Packed images that say the same os-release, kernel and release
    /// file but hold different content are told apart by their digest.
    #[test]
    fn images_are_grouped_by_digest_too() {
        let with = |name: &str, digest: Option<&str>| {
            let mut r = node(name, &[("a", Status::Pass, "")]);
            r.identity.image_digest = digest.map(str::to_owned);
            r
        };
        let (old, new) = (
            format!("sha256:{}", "0".repeat(64)),
            format!("sha256:{}", "1".repeat(64)),
        );
        let fleet = Fleet::merge(
            vec![
                with("img1", Some(&old)),
                with("img2", Some(&new)),
                with("img3", Some(&old)),
                with("node1", None),
            ],
            vec![],
            &MergeOptions::default(),
        );
        let groups = fleet.image_groups();
        assert_eq!(groups.len(), 3, "{:?}", fleet.images);
        let (first, nodes) = &groups[0];
        assert_eq!(fleet.hostlist(nodes), "img[1,3]");
        assert!(
            fleet.images[*first]
                .describe()
                .ends_with(", image sha256:000000000000"),
            "{}",
            fleet.images[*first].describe()
        );
    }

    #[test]
    fn natural_order() {
        let mut v = ["n10", "n9", "n09", "a", "n1x"];
        v.sort_by(|a, b| natural(a, b));
        assert_eq!(v, ["a", "n1x", "n9", "n09", "n10"]);
    }
}
