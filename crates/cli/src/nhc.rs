//! `nodecheck nhc`: the node health check Slurm runs as its
//! HealthCheckProgram.
//!
//! Live checks under one time budget (a check stuck on a hung mount is cut
//! and named, never blocks past it), NHC-style lines on stdout, exit 0
//! healthy / 1 unhealthy. With Slurm at hand, an unhealthy node is drained
//! with a `nodecheck: <control>: <message>` reason, and a healthy node that
//! nodecheck drained is resumed; a drain with any other reason (an
//! admin's) is never touched.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser};
use nodecheck_core::helper;
use nodecheck_core::matcher::format_duration;
use nodecheck_core::matcher::parse_duration;
use nodecheck_core::outcome::Status;
use nodecheck_core::profile::Severity;
use nodecheck_core::report::{JsonReporter, JunitReporter, PrometheusReporter, Report, Reporter};
use nodecheck_core::run;
use nodecheck_core::target::{RootFs, Target};
use nodecheck_core::text::clip;
use serde::{Deserialize, Serialize};

use nodecheck_core::drain::{Action, NodeState, REASON_PREFIX, decide, drain_due, drain_reason};

use crate::syslog::Syslog;
use crate::{VarArgs, exit, load, parse_severity, print_diagnostics, print_warnings};

/// How long one `scontrol` may take: with the default 30 s budget, two
/// calls stay under slurmd's 60 s limit for the whole health check.
const SCONTROL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Args)]
pub struct NhcArgs {
    /// The health profile [default: /etc/nodecheck/nhc.toml, or the bundled
    /// profiles/nhc.toml when that file does not exist].
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// The most the checks may take together; a check still running then is
    /// reported by name and the node counts as unhealthy. Keep it below
    /// slurmd's own limit of 60 s.
    #[arg(long, default_value = "30s", value_parser = parse_budget)]
    budget: Duration,
    /// Print the scontrol command that would drain or resume the node
    /// instead of running it.
    #[arg(long)]
    dry_run: bool,
    /// Only report: never ask Slurm about the node or change it (for runs
    /// outside Slurm, from cron or by hand).
    #[arg(long, conflicts_with = "dry_run")]
    no_slurm: bool,
    /// This node's name in Slurm (default: $SLURMD_NODENAME, which slurmd
    /// sets for its HealthCheckProgram, else the short hostname).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Write a Prometheus textfile-collector report (atomically) to FILE.
    #[arg(long, value_name = "FILE")]
    prometheus: Option<PathBuf>,
    /// Write the JSON report (atomically) to FILE; see docs/json-report.md.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report (atomically) to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Log each failure and each drain or resume to this syslog socket
    /// (slurmd throws the health check's output away); `none` turns it off
    /// [default: /dev/log, where a missing socket is only mentioned when a
    /// message could not be logged].
    #[arg(long, value_name = "SOCKET")]
    syslog: Option<PathBuf>,
    /// Drain only after this many failing runs in a row (a passing run
    /// starts the count again), so that one slow NFS answer does not drain
    /// a node.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    drain_after: u32,
    /// Where the count of failing runs for --drain-after is kept.
    #[arg(long, value_name = "DIR", default_value = "/run/nodecheck")]
    state_dir: PathBuf,
    /// The node is unhealthy when a control at or above this severity fails
    /// or errors.
    #[arg(long, default_value = "low", value_parser = parse_severity)]
    fail_on: Severity,
    /// Checks evaluated at once (default: the number of CPUs).
    #[arg(long, short)]
    jobs: Option<usize>,
    #[command(flatten)]
    vars: VarArgs,
}

/// Where `nodecheck nhc` looks for its profile.
const DEFAULT_PROFILE: &str = "/etc/nodecheck/nhc.toml";

/// profiles/nhc.toml, built in, so that `nodecheck nhc` works on a node
/// before any profile was installed.
const BUNDLED: &str = include_str!("../../../profiles/nhc.toml");

/// Loads the built-in profile. The loader reads files (includes are
/// relative to them), so the text goes through a file in a fresh private
/// directory: an unpredictable name, mode 0700, created with `O_EXCL`, so
/// nothing another user put in /tmp can stand in for it or block it.
fn load_bundled(
    vars: &[(String, String)],
) -> Result<Result<nodecheck_core::profile::Profile, nodecheck_core::profile::Diagnostics>, String>
{
    let dir = tempfile::Builder::new()
        .prefix("nodecheck-nhc-")
        .tempdir()
        .map_err(|e| format!("cannot make a private directory for the bundled profile: {e}"))?;
    let path = dir.path().join("nhc.toml");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut f| f.write_all(BUNDLED.as_bytes()).map(|()| f))
        .map_err(|e| {
            format!(
                "cannot write the bundled profile to {}: {e}",
                path.display()
            )
        })?;
    let _ = f.flush();
    drop(f);
    Ok(load(std::slice::from_ref(&path), vars))
}

fn parse_budget(s: &str) -> Result<Duration, String> {
    match parse_duration(s) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(format!(
            "expected a duration such as 30s or 500ms, got {s:?}"
        )),
    }
}

/// The helper that loads the profile and runs the checks: `nodecheck
/// nhc` itself only waits for it, so that nothing stuck in the kernel (a
/// read on a hung NFS or FUSE mount, which no signal interrupts) can keep
/// it from exiting.
pub const HELPER: &str = "nhc";

/// How long past the budget `nodecheck nhc` waits for its child's report
/// before it kills it and reports it stuck. The child's runner returns at
/// the budget itself; this covers writing the report. Kept well under a
/// second: the promise is to exit within the budget + 1 s.
const CHILD_GRACE: Duration = Duration::from_millis(400);

/// The most of the child's output kept (the lines of a large profile).
const CHILD_KEEP: usize = 64 << 20;

/// The first line the child prints, once the profile is loaded.
const LOADED: &str = "loaded";

/// What the child hands back, as one line of JSON after [`LOADED`].
#[derive(Serialize, Deserialize)]
struct Verdict {
    /// The NHC lines for stdout.
    lines: String,
    healthy: bool,
    /// The drain reason when unhealthy.
    reason: Option<String>,
    hostname: String,
}

/// The command line of the child: the parent's options, and when the
/// parent started (the budget counts from there).
#[derive(Parser)]
#[command(name = "nodecheck nhc")]
struct ChildCli {
    /// `CLOCK_MONOTONIC` when the parent started, in nanoseconds.
    #[arg(long)]
    started_ns: u64,
    #[command(flatten)]
    args: NhcArgs,
}

pub fn cmd_nhc(args: NhcArgs) -> u8 {
    let started = helper::monotonic();
    let mut cmd = match helper::command(HELPER) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nodecheck: cannot start the health check: {e}");
            return exit::TARGET;
        }
    };
    cmd.arg("--started-ns")
        .arg(started.as_nanos().to_string())
        .args(child_args(&args));
    let out = match helper::run_bounded(
        &mut cmd,
        helper::Bounds {
            timeout: args.budget + CHILD_GRACE,
            keep: CHILD_KEEP,
        },
    ) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("nodecheck: cannot start the health check: {e}");
            return exit::TARGET;
        }
    };
    // Diagnostics, warnings and reporter errors of the child.
    eprint!("{}", out.stderr);
    let (first, rest) = out.stdout.split_once('\n').unwrap_or((&out.stdout, ""));
    let loaded = first == LOADED;
    let verdict = serde_json::from_str::<Verdict>(rest.trim_end()).ok();
    let verdict = match verdict {
        Some(v) => v,
        // A profile or target error: said on stderr, nothing to drain.
        None if !out.timed_out && matches!(out.status, Some(c) if c != 0) => {
            return out
                .status
                .and_then(|c| u8::try_from(c).ok())
                .unwrap_or(exit::USAGE);
        }
        None => {
            let budget = format_duration(args.budget);
            let why = match (out.timed_out, loaded) {
                (true, false) => format!(
                    "loading the profile did not finish within the {budget} budget (a hung mount?)"
                ),
                (true, true) => format!(
                    "the checks did not report within the {budget} budget (stuck in the kernel?)"
                ),
                _ => format!(
                    "the health check process ended without a report ({})",
                    match (out.status, out.signal) {
                        (Some(c), _) => format!("exit status {c}"),
                        (None, Some(s)) => format!("signal {s}"),
                        _ => "it closed its output and did not exit".to_string(),
                    }
                ),
            };
            Verdict {
                lines: format!("ERROR:  nodecheck:  Health check failed:  nhc:  {why}\n"),
                healthy: false,
                reason: Some(format!("{REASON_PREFIX} nhc: {why}")),
                hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| "localhost".to_string()),
            }
        }
    };
    let mut log = Syslog::open(args.syslog.as_deref());
    for line in verdict.lines.lines().filter(|l| l.starts_with("ERROR:")) {
        log.send(crate::syslog::ERR, line);
    }
    let mut out = io::stdout().lock();
    let _ = out.write_all(verdict.lines.as_bytes());
    let node = args
        .node
        .clone()
        .or_else(|| {
            std::env::var("SLURMD_NODENAME")
                .ok()
                .filter(|n| !n.is_empty())
        })
        .unwrap_or_else(|| short_hostname(&verdict.hostname));
    // With --drain-after 1 a failing run drains at once: nothing to count.
    let streak = if verdict.healthy || args.drain_after > 1 {
        damping(&args.state_dir, verdict.healthy)
    } else {
        Ok(1)
    };
    if !args.no_slurm {
        let mut said = Vec::new();
        match streak {
            Ok(n) if !verdict.healthy && !drain_due(n, args.drain_after) => {
                let _ = writeln!(
                    said,
                    "nodecheck:  slurm:  failing run {n} of {}: not draining yet",
                    args.drain_after
                );
            }
            _ => {
                if let Err(e) = &streak {
                    // Without the count, drain at once rather than never.
                    let _ = writeln!(said, "nodecheck:  {e}; draining without --drain-after");
                }
                slurm(&mut said, &node, verdict.reason.as_deref(), args.dry_run);
            }
        }
        let said = String::from_utf8_lossy(&said);
        for line in said.lines() {
            if line.contains(" drained node ") || line.contains(" resumed node ") {
                log.send(crate::syslog::NOTICE, line);
            } else if line.contains(" failed: ") {
                log.send(crate::syslog::ERR, line);
            }
        }
        let _ = out.write_all(said.as_bytes());
    }
    let _ = out.flush();
    if let Some(w) = log.warning() {
        eprintln!("nodecheck: warning: {w}");
    }
    if verdict.healthy {
        exit::OK
    } else {
        exit::FAILED
    }
}

/// The options the child needs, as arguments it parses like the parent.
fn child_args(args: &NhcArgs) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        "--budget".into(),
        format_duration(args.budget).into(),
        "--fail-on".into(),
        args.fail_on.as_str().into(),
    ];
    for (flag, path) in [
        ("--profile", &args.profile),
        ("--prometheus", &args.prometheus),
        ("--json", &args.json),
        ("--junit", &args.junit),
    ] {
        if let Some(p) = path {
            a.push(flag.into());
            a.push(p.clone().into_os_string());
        }
    }
    if let Some(j) = args.jobs {
        a.push(format!("--jobs={j}").into());
    }
    for (k, v) in &args.vars.vars {
        a.push(format!("--var={k}={v}").into());
    }
    a
}

/// The child: loads the profile and runs the checks under the budget,
/// prints [`LOADED`] then the [`Verdict`], and lets go of its output so
/// the parent has it even when a check's thread keeps this process from
/// ever exiting.
pub fn child(_: &[String]) -> i32 {
    let argv = std::iter::once(OsString::from("nodecheck nhc")).chain(std::env::args_os().skip(3));
    let cli = match ChildCli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nodecheck: bad arguments for the nhc helper: {e}");
            return i32::from(exit::USAGE);
        }
    };
    let spent = helper::monotonic().saturating_sub(Duration::from_nanos(cli.started_ns));
    let budget_from = Instant::now()
        .checked_sub(spent)
        .unwrap_or_else(Instant::now);
    let code = checks(&cli.args, budget_from);
    helper::release_stdio();
    i32::from(code)
}

fn checks(args: &NhcArgs, budget_from: Instant) -> u8 {
    let loaded = match &args.profile {
        Some(p) => load(std::slice::from_ref(p), &args.vars.vars),
        None if Path::new(DEFAULT_PROFILE).exists() => {
            load(&[PathBuf::from(DEFAULT_PROFILE)], &args.vars.vars)
        }
        None => match load_bundled(&args.vars.vars) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("nodecheck: {e}");
                return exit::USAGE;
            }
        },
    };
    let profile = match loaded {
        Ok(p) => p,
        Err(d) => {
            // A broken profile is the admin's problem, not the node's:
            // never drain a whole cluster over a typo.
            print_diagnostics(&d);
            return exit::USAGE;
        }
    };
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{LOADED}");
    let _ = stdout.flush();
    print_warnings(&profile);
    let target: Arc<dyn Target> = match RootFs::live() {
        Ok(t) => Arc::new(t),
        Err(e) => {
            eprintln!("nodecheck: {e}");
            return exit::TARGET;
        }
    };
    let mut reporters: Vec<Box<dyn Reporter>> = Vec::new();
    if let Some(p) = &args.prometheus {
        reporters.push(Box::new(PrometheusReporter::new(p.clone(), args.fail_on)));
    }
    if let Some(p) = &args.json {
        reporters.push(Box::new(JsonReporter::new(p.clone())));
    }
    if let Some(p) = &args.junit {
        reporters.push(Box::new(JunitReporter::new(p.clone())));
    }
    let options = run::Options {
        jobs: args.jobs,
        budget: Some(args.budget),
        budget_from: Some(budget_from),
        ..Default::default()
    };
    let outcome = run::run_shared(&profile, target, &options, reporters);
    let report = &outcome.report;
    for e in &outcome.reporter_errors {
        eprintln!("nodecheck: failed to write a report: {e}");
    }
    let healthy = !report.failed(args.fail_on);
    let mut lines = Vec::new();
    let _ = write_lines(&mut lines, report, args.fail_on, args.budget);
    let verdict = Verdict {
        lines: String::from_utf8_lossy(&lines).into_owned(),
        healthy,
        reason: (!healthy).then(|| drain_reason(report, args.fail_on)),
        hostname: report.hostname.clone(),
    };
    let _ = serde_json::to_writer(&mut stdout, &verdict);
    let _ = writeln!(stdout);
    let _ = stdout.flush();
    exit::OK
}

/// The file --drain-after counts failing runs in.
const STREAK_FILE: &str = "nhc-failures";

/// Counts this run into the streak of failing runs kept in `dir` and
/// returns its length (0 after a healthy run, which clears it).
fn damping(dir: &Path, healthy: bool) -> Result<u32, String> {
    let path = dir.join(STREAK_FILE);
    if healthy {
        return match std::fs::remove_file(&path) {
            Ok(()) => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(format!("cannot reset {}: {e}", path.display())),
        };
    }
    let before = match std::fs::read_to_string(&path) {
        Ok(t) => t.trim().parse::<u32>().unwrap_or(0),
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let now = before.saturating_add(1);
    std::fs::create_dir_all(dir)
        .and_then(|()| nodecheck_core::report::write_atomically(&path, |w| writeln!(w, "{now}")))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(now)
}

fn short_hostname(h: &str) -> String {
    h.split('.').next().unwrap_or(h).to_string()
}

/// One line per control, NHC's way: `ERROR:  nodecheck:  Health check
/// failed:  <control>:  <message>` for each problem, `OK`/`SKIP` lines
/// for the rest, then a summary.
fn write_lines(
    w: &mut dyn Write,
    report: &Report,
    fail_on: Severity,
    budget: Duration,
) -> io::Result<()> {
    for c in &report.controls {
        let counts = c.counts_as_failure() && c.severity >= fail_on;
        match c.status {
            Status::Pass => writeln!(w, "OK:     nodecheck:  {}", c.id)?,
            Status::Skip => writeln!(w, "SKIP:   nodecheck:  {}:  {}", c.id, c.skip_message())?,
            Status::Fail | Status::Error => {
                let tag = match (counts, c.waived.is_some()) {
                    (true, _) => "ERROR:  nodecheck:  Health check failed:  ",
                    (false, true) => "WAIVED: nodecheck:  ",
                    (false, false) => "NOTE:   nodecheck:  below --fail-on:  ",
                };
                for k in c
                    .checks
                    .iter()
                    .filter(|k| matches!(k.status, Status::Fail | Status::Error))
                {
                    for p in k.problems() {
                        writeln!(w, "{tag}{}:  {}: {}", c.id, k.name, p.message)?;
                    }
                }
            }
        }
    }
    let s = &report.summary.controls;
    writeln!(
        w,
        "nodecheck:  {} controls: {} passed, {} failed, {} errors, {} skipped in {} (budget {})",
        s.total,
        s.passed,
        s.failed,
        s.errored,
        s.skipped,
        format_duration(report.duration),
        format_duration(budget)
    )
}

/// `scontrol` from $PATH, else where Slurm packages put it (slurmd runs
/// its HealthCheckProgram with an empty environment).
fn find_scontrol() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            ["/usr/bin", "/usr/local/bin", "/opt/slurm/bin", "/usr/sbin"]
                .iter()
                .map(PathBuf::from),
        )
        .map(|d| d.join("scontrol"))
        .find(|p| p.is_file())
}

fn action_args(node: &str, action: &Action) -> Vec<String> {
    let mut a = vec!["update".to_string(), format!("nodename={node}")];
    match action {
        Action::Drain(r) => {
            a.push("state=drain".into());
            a.push(format!("reason={r}"));
        }
        Action::Resume => a.push("state=resume".into()),
        Action::Leave(_) => {}
    }
    a
}

/// The command as a shell would take it: `reason="..."` quoted.
fn shown(args: &[String]) -> String {
    let mut s = String::from("scontrol");
    for a in args {
        s.push(' ');
        match a.strip_prefix("reason=") {
            Some(r) => {
                let esc: String = r
                    .chars()
                    .flat_map(|c| match c {
                        '"' | '\\' | '$' | '`' => vec!['\\', c],
                        c => vec![c],
                    })
                    .collect();
                s.push_str(&format!("reason=\"{esc}\""));
            }
            None => s.push_str(a),
        }
    }
    s
}

fn slurm(w: &mut dyn Write, node: &str, reason: Option<&str>, dry_run: bool) {
    let Some(scontrol) = find_scontrol() else {
        if let (Some(r), true) = (reason, dry_run) {
            let _ = writeln!(
                w,
                "nodecheck:  dry run (no scontrol here):  {}",
                shown(&action_args(node, &Action::Drain(r.to_string())))
            );
        }
        return;
    };
    let state = match scontrol_run(&scontrol, &["-o", "show", "node", node]) {
        Ok(text) => match NodeState::parse(&text) {
            Some(s) => s,
            None => {
                let _ = writeln!(
                    w,
                    "nodecheck:  slurm:  cannot read the state of node {node} from scontrol: {:?}",
                    text.trim()
                );
                return;
            }
        },
        Err(e) => {
            // No Slurm controller configured or reachable, or this node is
            // not one of its nodes: report only.
            if let (Some(r), true) = (reason, dry_run) {
                let _ = writeln!(
                    w,
                    "nodecheck:  dry run (Slurm did not answer: {e}):  {}",
                    shown(&action_args(node, &Action::Drain(r.to_string())))
                );
            } else {
                let _ = writeln!(w, "nodecheck:  slurm:  not draining or resuming: {e}");
            }
            return;
        }
    };
    let action = decide(&state, reason);
    if let Action::Leave(why) = &action {
        if reason.is_some() || state.drained() {
            let _ = writeln!(w, "nodecheck:  slurm:  node {node} {why}");
        }
        return;
    }
    let args = action_args(node, &action);
    if dry_run {
        let _ = writeln!(w, "nodecheck:  dry run:  {}", shown(&args));
        return;
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    match scontrol_run(&scontrol, &argv) {
        Ok(_) => {
            let _ = match &action {
                Action::Drain(r) => writeln!(w, "nodecheck:  slurm:  drained node {node}: {r}"),
                _ => writeln!(w, "nodecheck:  slurm:  resumed node {node}"),
            };
        }
        Err(e) => {
            let _ = writeln!(w, "nodecheck:  slurm:  {} failed: {e}", shown(&args));
        }
    }
}

/// The most of scontrol's output kept per stream (one node's line is a
/// few KiB; the rest is read and dropped, never left to fill a pipe).
const SCONTROL_KEEP: usize = 1 << 20;

/// Runs scontrol with a timeout; its stdout, or why it failed.
fn scontrol_run(scontrol: &Path, args: &[&str]) -> Result<String, String> {
    let out = helper::run_bounded(
        Command::new(scontrol).args(args),
        helper::Bounds {
            timeout: SCONTROL_TIMEOUT,
            keep: SCONTROL_KEEP,
        },
    )
    .map_err(|e| format!("cannot run {}: {e}", scontrol.display()))?;
    if out.timed_out {
        return Err(format!(
            "scontrol took more than {}s",
            SCONTROL_TIMEOUT.as_secs()
        ));
    }
    if out.status == Some(0) {
        return Ok(out.stdout);
    }
    let msg = out.stderr.trim().lines().last().unwrap_or("").to_string();
    let msg = if msg.is_empty() {
        out.stdout.trim().to_string()
    } else {
        msg
    };
    let status = match (out.status, out.signal) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("signal {s}"),
        (None, None) => "no exit status".to_string(),
    };
    Err(format!(
        "scontrol {} exited with {status}: {}",
        args.join(" "),
        clip(&msg, 500)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_shown_quoted() {
        let a = action_args(
            "vm",
            &Action::Drain("nodecheck: x: say \"hi\" $HOME".into()),
        );
        assert_eq!(
            shown(&a),
            "scontrol update nodename=vm state=drain reason=\"nodecheck: x: say \\\"hi\\\" \\$HOME\""
        );
        assert_eq!(
            shown(&action_args("vm", &Action::Resume)),
            "scontrol update nodename=vm state=resume"
        );
    }

    #[test]
    fn the_child_gets_the_options_it_needs() {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: NhcArgs,
        }
        let parent = Cli::try_parse_from([
            "nhc",
            "--budget",
            "1.5s",
            "--profile",
            "/etc/x y.toml",
            "--prometheus",
            "/tmp/p.prom",
            "--fail-on",
            "high",
            "-j",
            "3",
            "--var",
            "min_cpus=4",
            "--var",
            "a=b=c",
            "--no-slurm",
        ])
        .unwrap()
        .args;
        let argv = ["nhc".into(), "--started-ns".into(), "7".into()]
            .into_iter()
            .chain(child_args(&parent));
        let child = ChildCli::try_parse_from::<_, OsString>(argv).unwrap();
        assert_eq!(child.started_ns, 7);
        let c = child.args;
        assert_eq!(c.budget, Duration::from_millis(1500));
        assert_eq!(c.profile, Some(PathBuf::from("/etc/x y.toml")));
        assert_eq!(c.prometheus, Some(PathBuf::from("/tmp/p.prom")));
        assert_eq!(c.fail_on, Severity::High);
        assert_eq!(c.jobs, Some(3));
        assert_eq!(
            c.vars.vars,
            vec![
                ("min_cpus".to_string(), "4".to_string()),
                ("a".to_string(), "b=c".to_string())
            ]
        );
    }

    #[test]
    fn budgets_parse() {
        assert_eq!(parse_budget("30s"), Ok(Duration::from_secs(30)));
        assert!(parse_budget("0s").is_err());
        assert!(parse_budget("soon").is_err());
        assert_eq!(short_hostname("node1.cluster.example"), "node1");
    }
}
