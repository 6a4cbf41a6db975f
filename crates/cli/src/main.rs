//! `nodecheck`: a thin command line over nodecheck-core and the kinds of
//! nodecheck-checks. Parses arguments, calls the libraries, maps the result
//! to an exit status.

mod exit;
mod fleet;
mod generate;
mod nhc;
mod syslog;

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use nodecheck_checks::KINDS;
use nodecheck_core::kind::{self, Kind};
use nodecheck_core::profile::{self, Diagnostics, LoadOptions, Profile, Severity};
use nodecheck_core::report::{
    JsonReporter, JunitReporter, PrometheusReporter, Reporter, TerminalOptions, TerminalReporter,
};
use nodecheck_core::run;
use nodecheck_core::target::{Container, RootFs, Target};

/// Test HPC node images, containers and booted nodes against declarative
/// TOML profiles.
#[derive(Parser)]
#[command(name = "nodecheck", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run profiles against a target and report.
    Run(RunArgs),
    /// Parse and lint profiles without running them.
    Validate {
        /// Profile files.
        #[arg(required = true)]
        profiles: Vec<PathBuf>,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// List the controls and checks of profiles after includes and matrix.
    List {
        #[arg(required = true)]
        profiles: Vec<PathBuf>,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Show the documentation of a resource kind (or list the kinds).
    Explain {
        /// A resource kind such as `file` or `kernel_module`.
        kind: Option<String>,
    },
    /// Check this node's health for Slurm (HealthCheckProgram): drain it
    /// when unhealthy, resume it when nodecheck drained it and it recovered.
    Nhc(nhc::NhcArgs),
    /// Work with JSON reports of many nodes (`report merge`).
    #[command(subcommand)]
    Report(fleet::ReportCommand),
    /// Print the JSON Schema of profiles (for taplo / Even Better TOML).
    Schema,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Write a man page per subcommand into DIR (for packagers).
    #[command(hide = true)]
    Manpages { dir: PathBuf },
}

#[derive(Args)]
struct VarArgs {
    /// Set a profile variable, winning over every [vars] table
    /// (a list variable takes comma-separated values).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    vars: Vec<(String, String)>,
}

#[derive(Args)]
struct RunArgs {
    /// Profile files; several run together as one.
    #[arg(required = true)]
    profiles: Vec<PathBuf>,
    /// What to check: a root filesystem directory; `/` or `local` for the
    /// node nodecheck runs on; a running container as `pid:PID`,
    /// `podman:NAME`, `docker:NAME` or `nspawn:MACHINE`.
    #[arg(long, short, default_value = "local", value_name = "TARGET")]
    target: String,
    #[command(flatten)]
    vars: VarArgs,
    /// Write a JUnit XML report (atomically) to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a JSON report (atomically) to FILE; see docs/json-report.md.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a Prometheus textfile-collector report (atomically) to FILE;
    /// see docs/nhc.md.
    #[arg(long, value_name = "FILE")]
    prometheus: Option<PathBuf>,
    /// Exit 1 only when a control at or above this severity fails or errors.
    #[arg(long, default_value = "low", value_parser = parse_severity)]
    fail_on: Severity,
    /// Checks evaluated at once (default: the number of CPUs).
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Run only controls with one of these tags (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',')]
    tags: Vec<String>,
    /// Run only these controls: ids or `*` globs (repeatable, or
    /// comma-separated); what they depend on runs too.
    #[arg(long, value_delimiter = ',')]
    controls: Vec<String>,
    /// No colour in terminal output (also: the NO_COLOR variable).
    #[arg(long)]
    no_color: bool,
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::parse(s).ok_or_else(|| {
        format!(
            "unknown severity {s:?}; expected one of {}",
            Severity::NAMES.join(", ")
        )
    })
}

fn main() -> ExitCode {
    // A copy of this binary runs each sandboxed program (namespaces cannot
    // be entered from the runner's threads): it must not get further.
    nodecheck_core::target::sandbox_main();
    // A child process of a check (dlopen of a library on a live node).
    let helpers: Vec<(&str, nodecheck_core::helper::Handler)> = nodecheck_checks::HELPERS
        .iter()
        .copied()
        .chain([(nhc::HELPER, nhc::child as nodecheck_core::helper::Handler)])
        .collect();
    if let Some(code) = nodecheck_core::helper::dispatch(&helpers) {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => cmd_run(args),
        Command::Validate { profiles, vars } => cmd_validate(&profiles, &vars.vars),
        Command::List { profiles, vars } => cmd_list(&profiles, &vars.vars),
        Command::Explain { kind } => cmd_explain(kind.as_deref()),
        Command::Nhc(args) => nhc::cmd_nhc(args),
        Command::Report(cmd) => fleet::cmd_report(cmd),
        Command::Schema => generate::schema(),
        Command::Completions { shell } => generate::completions::<Cli>(shell),
        Command::Manpages { dir } => generate::manpages::<Cli>(&dir),
    };
    ExitCode::from(code)
}

fn load(profiles: &[PathBuf], vars: &[(String, String)]) -> Result<Profile, Diagnostics> {
    let options = LoadOptions {
        vars: vars.to_vec(),
        today: None,
    };
    profile::load_all(profiles, KINDS, &options)
}

fn print_diagnostics(d: &Diagnostics) {
    let _ = writeln!(io::stderr(), "{d}");
}

fn print_warnings(p: &Profile) {
    let mut err = io::stderr().lock();
    for w in &p.warnings {
        let _ = writeln!(err, "{w}");
    }
}

fn open_target(spec: &str) -> Result<Box<dyn Target>, String> {
    let target: Result<Box<dyn Target>, _> = match spec {
        "local" | "/" => RootFs::live().map(|t| Box::new(t) as _),
        s if Container::is_spec(s) => Container::open(s).map(|t| Box::new(t) as _),
        path => RootFs::open(path).map(|t| Box::new(t) as _),
    };
    target.map_err(|e| format!("cannot use target {spec}: {e}"))
}

fn cmd_run(args: RunArgs) -> u8 {
    let profile = match load(&args.profiles, &args.vars.vars) {
        Ok(p) => p,
        Err(d) => {
            print_diagnostics(&d);
            return exit::USAGE;
        }
    };
    for pattern in &args.controls {
        if let Err(e) = profile::id_glob(pattern) {
            eprintln!("nodecheck: --controls {pattern:?} is not a valid id pattern: {e}");
            return exit::USAGE;
        }
    }
    // Warnings are part of the report (terminal and JSON), not printed here.
    for path in [&args.junit, &args.json, &args.prometheus]
        .into_iter()
        .flatten()
    {
        if let Err(e) = check_writable(path) {
            eprintln!("nodecheck: {e:#}");
            return exit::USAGE;
        }
    }
    let target = match open_target(&args.target) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("nodecheck: {e}");
            return exit::TARGET;
        }
    };
    let color = !args.no_color
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && io::stdout().is_terminal();
    let progress = io::stderr().is_terminal();
    let mut terminal =
        TerminalReporter::new(Box::new(io::stdout()), TerminalOptions { color, progress });
    if progress {
        terminal = terminal.with_progress_writer(Box::new(io::stderr()));
    }
    let mut reporters: Vec<Box<dyn Reporter>> = vec![Box::new(terminal)];
    if let Some(p) = &args.junit {
        reporters.push(Box::new(JunitReporter::new(p.clone())));
    }
    if let Some(p) = &args.json {
        reporters.push(Box::new(JsonReporter::new(p.clone())));
    }
    if let Some(p) = &args.prometheus {
        reporters.push(Box::new(PrometheusReporter::new(p.clone(), args.fail_on)));
    }
    let options = run::Options {
        jobs: args.jobs,
        tags: args.tags,
        controls: args.controls,
        ..Default::default()
    };
    let outcome = run::run(&profile, target.as_ref(), &options, reporters);
    if !outcome.reporter_errors.is_empty() {
        for e in &outcome.reporter_errors {
            eprintln!("nodecheck: failed to write a report: {e}");
        }
        return exit::USAGE;
    }
    if outcome.report.failed(args.fail_on) {
        exit::FAILED
    } else {
        exit::OK
    }
}

/// Fails early, before any check runs, when a report could not be written.
fn check_writable(path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("cannot write report {}: {}", path.display(), dir.display()))?;
    anyhow::ensure!(
        meta.is_dir(),
        "cannot write report {}: {} is not a directory",
        path.display(),
        dir.display()
    );
    anyhow::ensure!(
        !path.is_dir(),
        "cannot write report {}: it is a directory",
        path.display()
    );
    Ok(())
}

fn cmd_validate(profiles: &[PathBuf], vars: &[(String, String)]) -> u8 {
    match load(profiles, vars) {
        Ok(p) => {
            print_warnings(&p);
            let n = p.controls.len();
            let _ = writeln!(
                io::stdout(),
                "{}: ok ({n} control{}, {} checks)",
                profiles
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                if n == 1 { "" } else { "s" },
                p.check_count()
            );
            exit::OK
        }
        Err(d) => {
            print_diagnostics(&d);
            exit::USAGE
        }
    }
}

fn cmd_list(profiles: &[PathBuf], vars: &[(String, String)]) -> u8 {
    let p = match load(profiles, vars) {
        Ok(p) => p,
        Err(d) => {
            print_diagnostics(&d);
            return exit::USAGE;
        }
    };
    print_warnings(&p);
    let mut out = io::stdout().lock();
    let result = (|| -> io::Result<()> {
        for c in &p.controls {
            write!(out, "{} [{}]", c.id, c.severity)?;
            if let Some(t) = &c.title {
                write!(out, " {t}")?;
            }
            writeln!(out, "  ({})", c.location)?;
            for k in &c.checks {
                let keys: Vec<&str> = k.props.iter().map(|p| p.key).collect();
                writeln!(out, "    {}: {}", k.name(), keys.join(", "))?;
            }
        }
        Ok(())
    })();
    quiet_pipe(result)
}

fn cmd_explain(name: Option<&str>) -> u8 {
    let mut out = io::stdout().lock();
    let Some(name) = name else {
        let result = (|| -> io::Result<()> {
            writeln!(out, "resource kinds (nodecheck explain KIND):")?;
            for k in KINDS {
                let first = summary_line(*k);
                writeln!(out, "  {:<14} {first}", k.name())?;
            }
            Ok(())
        })();
        return quiet_pipe(result);
    };
    match kind::find(KINDS, name) {
        Some(k) => quiet_pipe(write!(out, "{}", kind::render_doc(k))),
        None => {
            let names: Vec<&str> = KINDS.iter().map(|k| k.name()).collect();
            eprintln!(
                "nodecheck: unknown resource kind {name:?}; expected one of {}",
                names.join(", ")
            );
            exit::USAGE
        }
    }
}

/// The first sentence under `## What it checks`.
fn summary_line(k: &dyn Kind) -> String {
    let doc = k.doc();
    let body = doc
        .split("## What it checks")
        .nth(1)
        .unwrap_or(doc)
        .trim_start();
    body.lines().next().unwrap_or("").trim().to_string()
}

/// A closed pipe (`nodecheck list | head`) is not an error.
pub(crate) fn quiet_pipe(r: io::Result<()>) -> u8 {
    match r {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            eprintln!("nodecheck: {e}");
            exit::USAGE
        }
        _ => exit::OK,
    }
}
