//! `nodecheck report merge`: many nodes' JSON reports, one fleet report.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use nodecheck_core::fleet::{self, Fleet, MergeOptions};
use nodecheck_core::hostlist::HostList;
use nodecheck_core::profile::Severity;
use nodecheck_core::report::write_atomically;

use crate::exit;

#[derive(Subcommand)]
pub enum ReportCommand {
    /// Merge nodes' JSON reports (files, directories of `*.json`, or `-`
    /// for reports concatenated on stdin) into one fleet report: per
    /// control the nodes that passed, failed, errored or skipped in Slurm
    /// hostlist notation, failures grouped by message, nodes grouped by
    /// image. See docs/fleet.md.
    Merge(MergeArgs),
}

#[derive(Args)]
pub struct MergeArgs {
    /// Report files, directories searched for `*.json`, or `-` (stdin).
    #[arg(required = true, value_name = "REPORT|DIR|-")]
    inputs: Vec<PathBuf>,
    /// The nodes that should have reported, as a Slurm hostlist
    /// (`node[001-512]`); those without a report are named and fail.
    #[arg(long, value_name = "HOSTLIST")]
    expect: Option<String>,
    /// Write the fleet report as JSON to FILE (`-`: stdout, instead of the
    /// terminal report); see docs/fleet.md.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write JUnit XML (one testsuite per node) to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a Prometheus textfile (a `node` label per node) to FILE.
    #[arg(long, value_name = "FILE")]
    prometheus: Option<PathBuf>,
    /// Exit 1 when a node has a failure or error at or above this severity.
    #[arg(long, default_value = "low", value_parser = crate::parse_severity)]
    fail_on: Severity,
}

pub fn cmd_report(cmd: ReportCommand) -> u8 {
    match cmd {
        ReportCommand::Merge(args) => merge(args),
    }
}

fn merge(args: MergeArgs) -> u8 {
    let expect = match args.expect.as_deref().map(HostList::parse).transpose() {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "nodecheck: --expect {:?} is not a hostlist: {e}",
                args.expect.unwrap_or_default()
            );
            return exit::USAGE;
        }
    };
    let inputs = fleet::read_paths(&args.inputs);
    if inputs.reports.is_empty() {
        for p in &inputs.problems {
            eprintln!("nodecheck: {}: {}", p.source, p.message);
        }
        eprintln!("nodecheck: no report could be read");
        return exit::USAGE;
    }
    let fleet = Fleet::merge(inputs.reports, inputs.problems, &MergeOptions { expect });
    for p in &fleet.problems {
        eprintln!("nodecheck: {}: {}", p.source, p.message);
    }
    let stdout_json = args.json.as_deref() == Some(Path::new("-"));
    let mut ok = true;
    let mut write = |path: &Path, f: &dyn Fn(&mut dyn Write) -> io::Result<()>| {
        if let Err(e) = write_atomically(path, |w| f(w)) {
            eprintln!("nodecheck: failed to write {}: {e}", path.display());
            ok = false;
        }
    };
    if let Some(p) = args.json.as_deref().filter(|_| !stdout_json) {
        write(p, &|w| fleet::write_json(&fleet, args.fail_on, w));
    }
    if let Some(p) = &args.junit {
        write(p, &|w| fleet::write_junit(&fleet, w));
    }
    if let Some(p) = &args.prometheus {
        write(p, &|w| fleet::write_prometheus(&fleet, args.fail_on, w));
    }
    let mut out = io::stdout().lock();
    let printed = if stdout_json {
        fleet::write_json(&fleet, args.fail_on, &mut out)
    } else {
        fleet::write_terminal(&fleet, args.fail_on, &mut out)
    };
    // A closed stdout (`| head`) is not a failure of the fleet.
    if let Err(e) = printed.and_then(|()| out.flush())
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        eprintln!("nodecheck: failed to write the report: {e}");
        ok = false;
    }
    if !ok {
        exit::USAGE
    } else if fleet.failed_at(args.fail_on) {
        exit::FAILED
    } else {
        exit::OK
    }
}
