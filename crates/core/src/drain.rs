//! The drain and resume policy of `nodecheck nhc` (Slurm's
//! HealthCheckProgram): what to do with a node given its health and what
//! Slurm says of it. Pure functions: the binary runs `scontrol` and maps
//! exit codes, this decides.
//!
//! - an unhealthy node is drained with a reason starting with
//!   [`REASON_PREFIX`], unless someone else already drained it (their
//!   reason stays);
//! - a healthy node is resumed only when the drain is nodecheck's;
//! - with flap damping ([`drain_due`]) the drain waits for N failing runs
//!   in a row.
//!
//! ```
//! use nodecheck_core::drain::{Action, NodeState, decide};
//!
//! let admin = NodeState::parse("NodeName=n1 State=IDLE+DRAIN Reason=bad dimm [root@2026-01-01T00:00:00]").unwrap();
//! assert!(matches!(decide(&admin, None), Action::Leave(_)));
//! let ours = NodeState::parse("NodeName=n1 State=IDLE+DRAIN Reason=nodecheck: tmp: full [root@x]").unwrap();
//! assert_eq!(decide(&ours, None), Action::Resume);
//! ```

use crate::profile::Severity;
use crate::report::Report;

/// Every drain reason nodecheck writes starts with this; only such drains
/// are ever resumed.
pub const REASON_PREFIX: &str = "nodecheck:";

/// The longest drain reason written: enough for the control and its first
/// message, short enough for `sinfo -R`.
pub const REASON_MAX: usize = 200;

/// `nodecheck: <control>: <first problem>` plus how many more controls
/// failed, at most [`REASON_MAX`] characters, on one line.
pub fn drain_reason(report: &Report, fail_on: Severity) -> String {
    let failing: Vec<_> = report
        .controls
        .iter()
        .filter(|c| c.severity >= fail_on && c.counts_as_failure())
        .collect();
    let Some(first) = failing.first() else {
        return format!("{REASON_PREFIX} unhealthy");
    };
    let message = first
        .checks
        .iter()
        .flat_map(|k| {
            k.problems()
                .map(move |p| format!("{}: {}", k.name, p.message))
        })
        .next()
        .unwrap_or_else(|| first.status.as_str().to_string());
    let mut reason = format!("{REASON_PREFIX} {}: {message}", first.id);
    if failing.len() > 1 {
        reason.push_str(&format!(" (+{} more)", failing.len() - 1));
    }
    let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    if reason.chars().count() > REASON_MAX {
        let mut cut: String = reason.chars().take(REASON_MAX - 1).collect();
        cut.push('…');
        cut
    } else {
        reason
    }
}

/// What Slurm says of this node: its state flags and drain reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeState {
    /// `IDLE`, `DRAIN`, `DOWN`, `NOT_RESPONDING`, … (`State=IDLE+DRAIN`).
    pub flags: Vec<String>,
    /// The reason without Slurm's ` [user@time]` suffix.
    pub reason: Option<String>,
}

impl NodeState {
    /// Parses one node of `scontrol -o show node NAME`.
    pub fn parse(text: &str) -> Option<NodeState> {
        let line = text.lines().find(|l| l.starts_with("NodeName="))?;
        let state = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("State="))?;
        let flags = state
            .split('+')
            .map(|f| f.trim_end_matches('*').to_string())
            .collect();
        // Reason= holds spaces and comes last but for Slurm's suffix.
        let reason = line.find(" Reason=").map(|i| {
            let r = &line[i + " Reason=".len()..];
            let r = match r.rfind(" [") {
                Some(j) if r.ends_with(']') && r[j..].contains('@') => &r[..j],
                _ => r,
            };
            r.trim().to_string()
        });
        Some(NodeState {
            flags,
            reason: reason.filter(|r| !r.is_empty() && r != "(null)"),
        })
    }

    /// Drained, down or failed.
    pub fn drained(&self) -> bool {
        self.flags
            .iter()
            .any(|f| f.starts_with("DRAIN") || f == "DOWN" || f == "FAIL")
    }

    /// The reason is nodecheck's own.
    pub fn ours(&self) -> bool {
        self.reason
            .as_deref()
            .is_some_and(|r| r.starts_with(REASON_PREFIX))
    }
}

/// What to do with the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Drain(String),
    Resume,
    /// Nothing, and why (for the log line).
    Leave(String),
}

/// Drains an unhealthy node unless someone else already drained it (their
/// reason stays), updates nodecheck's own reason when the problem changed,
/// and resumes a healthy node only when the drain is nodecheck's.
pub fn decide(state: &NodeState, reason: Option<&str>) -> Action {
    match (reason, state.drained(), state.ours()) {
        (Some(r), false, _) => Action::Drain(r.to_string()),
        (Some(r), true, true) if state.reason.as_deref() != Some(r) => Action::Drain(r.to_string()),
        (Some(_), true, true) => Action::Leave("already drained with this reason".into()),
        (Some(_), true, false) => Action::Leave(format!(
            "already drained by someone else ({}); leaving their reason",
            state.reason.as_deref().unwrap_or("no reason")
        )),
        (None, true, true) => Action::Resume,
        (None, true, false) => Action::Leave(format!(
            "drained by someone else ({}); not resuming",
            state.reason.as_deref().unwrap_or("no reason")
        )),
        (None, false, _) => Action::Leave("healthy".into()),
    }
}

/// Whether a failing run drains, with `--drain-after N`: `streak` is the
/// number of failing runs in a row, this one included.
pub fn drain_due(streak: u32, drain_after: u32) -> bool {
    streak >= drain_after.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRAINED: &str = "NodeName=vm Arch=x86_64 CoresPerSocket=1  CPUAlloc=0 State=IDLE+DRAIN ThreadsPerCore=1 Partitions=debug  CurrentWatts=0 AveWatts=0 Reason=nodecheck: sshd: process sshd: running: expected true, got false [root@2026-11-21T14:32:05]\n";
    const ADMIN: &str = "NodeName=vm Arch=x86_64 State=IDLE+DRAIN+NOT_RESPONDING Reason=bad dimm [admin@2026-11-21T14:32:05]\n";
    const IDLE: &str = "NodeName=vm Arch=x86_64 State=IDLE ThreadsPerCore=1\n";

    #[test]
    fn parses_state_and_reason() {
        let s = NodeState::parse(DRAINED).unwrap();
        assert_eq!(s.flags, vec!["IDLE", "DRAIN"]);
        assert_eq!(
            s.reason.as_deref(),
            Some("nodecheck: sshd: process sshd: running: expected true, got false")
        );
        assert!(s.drained() && s.ours());
        let s = NodeState::parse(ADMIN).unwrap();
        assert_eq!(s.reason.as_deref(), Some("bad dimm"));
        assert!(s.drained() && !s.ours());
        let s =
            NodeState::parse("NodeName=vm State=DOWN* Reason=Not responding [slurm@x]").unwrap();
        assert_eq!(s.flags, vec!["DOWN"]);
        assert!(NodeState::parse(IDLE).unwrap().reason.is_none());
        assert!(NodeState::parse("Node nosuch not found").is_none());
    }

    #[test]
    fn drains_resumes_and_leaves_admins_alone() {
        let idle = NodeState::parse(IDLE).unwrap();
        let ours = NodeState::parse(DRAINED).unwrap();
        let admin = NodeState::parse(ADMIN).unwrap();
        let r = "nodecheck: sshd: process sshd: running: expected true, got false";
        assert_eq!(decide(&idle, Some(r)), Action::Drain(r.into()));
        assert!(matches!(decide(&ours, Some(r)), Action::Leave(_)));
        assert_eq!(
            decide(&ours, Some("nodecheck: tmp: full")),
            Action::Drain("nodecheck: tmp: full".into())
        );
        assert!(matches!(decide(&admin, Some(r)), Action::Leave(w) if w.contains("bad dimm")));
        assert_eq!(decide(&ours, None), Action::Resume);
        assert!(matches!(decide(&admin, None), Action::Leave(_)));
        assert!(matches!(decide(&idle, None), Action::Leave(_)));
    }

    #[test]
    fn damping_waits_for_n_failures() {
        assert!(drain_due(1, 1));
        assert!(drain_due(1, 0));
        assert!(!drain_due(1, 3));
        assert!(!drain_due(2, 3));
        assert!(drain_due(3, 3));
        assert!(drain_due(4, 3));
    }
}
