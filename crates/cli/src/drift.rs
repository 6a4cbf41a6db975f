//! `nodecheck snapshot`, `nodecheck diff` and `nodecheck baseline`: the
//! arguments and files; the work is in nodecheck_checks::drift.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use nodecheck_checks::drift::diff::{self, Ignore, Risk};
use nodecheck_checks::drift::{self as drift, Snapshot, baseline, build, format, output};
use nodecheck_core::report::write_atomically;

use crate::{exit, open_target};

/// The largest snapshot file read (a 27,000-entry image makes ~2 MB).
const MAX_SNAPSHOT: u64 = 512 << 20;

#[derive(Args)]
pub struct SnapshotArgs {
    /// The image: a root filesystem directory, `/` or `local`, a
    /// container (`pid:PID`, `podman:NAME`, …).
    target: String,
    /// Where to write the snapshot (atomically).
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,
}

#[derive(Args)]
pub struct DiffArgs {
    /// The image before: a target or a snapshot file.
    a: String,
    /// The image after: a target or a snapshot file.
    b: String,
    /// Write every change as JSON to FILE (`-`: standard output instead
    /// of the terminal text).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit report (a testcase per category) to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Exit 1 when a change at or above this risk exists
    /// (info, low, medium, high, critical).
    #[arg(long, default_value = "high", value_parser = parse_risk)]
    fail_on: Risk,
    /// More paths to ignore: a file of globs, one a line (repeatable).
    #[arg(long, value_name = "FILE")]
    ignore: Vec<PathBuf>,
    /// Show everything: no default ignore list, mtimes count.
    #[arg(long)]
    all: bool,
}

#[derive(Args)]
pub struct BaselineArgs {
    /// The known-good image: a target or a snapshot file.
    target: String,
    /// Only these areas (comma-separated): packages, accounts,
    /// permissions, units, kernel, linkage.
    #[arg(long, value_delimiter = ',')]
    areas: Vec<String>,
    /// Where to write the profile (atomically).
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,
}

fn parse_risk(s: &str) -> Result<Risk, String> {
    Risk::parse(s).ok_or_else(|| {
        format!(
            "unknown risk {s:?}; expected one of {}",
            Risk::ALL.map(Risk::as_str).join(", ")
        )
    })
}

pub fn cmd_snapshot(args: SnapshotArgs) -> u8 {
    let t = match open_target(&args.target) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("nodecheck: {e}");
            return exit::TARGET;
        }
    };
    let snap = match build::snapshot(&*t) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nodecheck: snapshot of {}: {e}", args.target);
            return exit::TARGET;
        }
    };
    for e in &snap.errors {
        eprintln!("nodecheck: warning: {e}");
    }
    let bytes = drift::encode(&snap);
    if let Err(e) = write_atomically(&args.output, |w| w.write_all(&bytes)) {
        eprintln!("nodecheck: cannot write {}: {e}", args.output.display());
        return exit::USAGE;
    }
    eprintln!(
        "nodecheck: {} entries, {} packages, {} unreadable → {} ({} bytes)",
        snap.entries.len(),
        snap.meaning.packages.len(),
        snap.errors.len(),
        args.output.display(),
        bytes.len()
    );
    // A snapshot that could not read everything is written (it is still
    // useful) but is not a success.
    if snap.errors.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    }
}

/// Why a diff/baseline argument could not be used, and the exit code.
struct Bad(String, u8);

/// A snapshot file (recognised by its magic bytes), or a target.
fn load(arg: &str) -> Result<Snapshot, Bad> {
    let path = Path::new(arg);
    if let Ok(md) = std::fs::metadata(path)
        && md.is_file()
    {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_SNAPSHOT + 1).read_to_end(&mut bytes))
            .map_err(|e| Bad(format!("{arg}: {e}"), exit::USAGE))?;
        if bytes.len() as u64 > MAX_SNAPSHOT {
            return Err(Bad(
                format!(
                    "{arg}: larger than {MAX_SNAPSHOT} bytes: not a snapshot this nodecheck reads"
                ),
                exit::USAGE,
            ));
        }
        if format::is_snapshot(&bytes) || bytes.len() < format::MAGIC.len() {
            return format::decode(&bytes).map_err(|e| Bad(format!("{arg}: {e}"), exit::USAGE));
        }
        // Not a snapshot: a file may still be a target (a packed image,
        // where the target kinds know one); if not, say both.
        return match open_target(arg) {
            Ok(t) => record(arg, &*t),
            Err(e) => Err(Bad(
                format!("{arg}: not a nodecheck snapshot (no snapshot magic bytes), and {e}"),
                exit::USAGE,
            )),
        };
    }
    let t = open_target(arg).map_err(|e| Bad(e, exit::TARGET))?;
    record(arg, &*t)
}

/// Snapshots a target given as an argument (its read errors as warnings).
fn record(arg: &str, t: &dyn nodecheck_core::target::Target) -> Result<Snapshot, Bad> {
    let snap = build::snapshot(t).map_err(|e| Bad(format!("{arg}: {e}"), exit::TARGET))?;
    for e in &snap.errors {
        eprintln!("nodecheck: warning: {arg}: {e}");
    }
    Ok(snap)
}

/// Loads both sides at once (two images are walked in parallel).
fn load_two(a: &str, b: &str) -> Result<(Snapshot, Snapshot), Bad> {
    let (x, y) = rayon::join(|| load(a), || load(b));
    Ok((x?, y?))
}

pub fn cmd_diff(args: DiffArgs) -> u8 {
    let mut extra = Vec::new();
    for f in &args.ignore {
        match std::fs::read_to_string(f) {
            Ok(text) => match Ignore::parse_file(&f.display().to_string(), &text) {
                Ok(globs) => extra.extend(globs),
                Err(e) => {
                    eprintln!("nodecheck: {e}");
                    return exit::USAGE;
                }
            },
            Err(e) => {
                eprintln!("nodecheck: {}: {e}", f.display());
                return exit::USAGE;
            }
        }
    }
    let ignore = match Ignore::new(&extra, args.all) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("nodecheck: {e}");
            return exit::USAGE;
        }
    };
    let (a, b) = match load_two(&args.a, &args.b) {
        Ok(p) => p,
        Err(Bad(e, code)) => {
            eprintln!("nodecheck: {e}");
            return code;
        }
    };
    let changes = diff::diff(&a, &b, &ignore);
    let sides = output::Sides {
        a: &args.a,
        b: &args.b,
    };
    let stdout_json = args.json.as_deref() == Some(Path::new("-"));
    let mut out = std::io::stdout().lock();
    if stdout_json {
        let _ = writeln!(out, "{}", output::json(&changes, &sides, args.fail_on));
    } else {
        let _ = out.write_all(output::terminal(&changes, &sides, args.fail_on).as_bytes());
        if let Some(path) = &args.json {
            let text = output::json(&changes, &sides, args.fail_on);
            if let Err(e) = write_atomically(path, |w| w.write_all(text.as_bytes())) {
                eprintln!("nodecheck: cannot write {}: {e}", path.display());
                return exit::USAGE;
            }
        }
    }
    if let Some(path) = &args.junit {
        let text = match output::junit(&changes, &sides, args.fail_on) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("nodecheck: junit: {e}");
                return exit::USAGE;
            }
        };
        if let Err(e) = write_atomically(path, |w| w.write_all(text.as_bytes())) {
            eprintln!("nodecheck: cannot write {}: {e}", path.display());
            return exit::USAGE;
        }
    }
    match diff::worst(&changes) {
        Some(r) if r >= args.fail_on => exit::FAILED,
        _ => exit::OK,
    }
}

pub fn cmd_baseline(args: BaselineArgs) -> u8 {
    let areas = match baseline::Areas::parse(&args.areas) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("nodecheck: --areas: {e}");
            return exit::USAGE;
        }
    };
    let snap = match load(&args.target) {
        Ok(s) => s,
        Err(Bad(e, code)) => {
            eprintln!("nodecheck: {e}");
            return code;
        }
    };
    let text = baseline::profile(&snap, &areas);
    if let Err(e) = write_atomically(&args.output, |w| w.write_all(text.as_bytes())) {
        eprintln!("nodecheck: cannot write {}: {e}", args.output.display());
        return exit::USAGE;
    }
    eprintln!(
        "nodecheck: {} lines → {}",
        text.lines().count(),
        args.output.display()
    );
    exit::OK
}
