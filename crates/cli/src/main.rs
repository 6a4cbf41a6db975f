//! `nodecheck`: a thin command line over nodecheck-core and the kinds of
//! nodecheck-checks. Parses arguments, calls the libraries, maps the result
//! to an exit status.

mod drift;
mod exit;
mod fleet;
mod generate;
mod nhc;
mod syslog;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use clap::{Args, Parser, Subcommand, ValueEnum};
use nodecheck_checks::KINDS;
use nodecheck_core::kind::{self, Kind};
use nodecheck_core::profile::{self, Diagnostics, LoadOptions, Profile, Severity};
use nodecheck_core::report::{
    Destination, JsonReporter, JunitReporter, PrometheusReporter, Reporter, TerminalOptions,
    TerminalReporter,
};
use nodecheck_core::run;
use nodecheck_core::target::{Container, ImageFormat, ImageTarget, RootFs, Target};

/// Test HPC node images, containers and booted nodes against declarative
/// TOML profiles.
#[derive(Parser)]
#[command(
    name = "nodecheck",
    version,
    max_term_width = 100,
    after_help = "\
Examples:
  nodecheck run profiles/compute.toml --target /srv/images/compute --junit junit.xml
  nodecheck run profiles/base.toml --target docker:web --tags security
  nodecheck validate site.toml other-site.toml
  nodecheck explain file

Exit status of run: 0 passed, 1 a check failed (at or above --fail-on), 2 usage or
profile error (or a report that could not be written), 3 the target cannot be used,
4 nothing was checked (every check skipped; --allow-empty accepts it), 130/143
interrupted (SIGINT/SIGTERM)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run profiles against a target (an image tree, a container, this node)
    /// and report: terminal, JUnit, JSON, Prometheus; the exit status is the
    /// gate.
    Run(RunArgs),
    /// Parse and lint profiles without running them, each on its own (for
    /// editors and CI on profile repositories).
    Validate {
        /// Profile files; each is checked on its own.
        #[arg(required = true)]
        profiles: Vec<PathBuf>,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// List the controls and checks of profiles after includes and matrix
    /// (what `run` would evaluate).
    List {
        #[arg(required = true)]
        profiles: Vec<PathBuf>,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Show the documentation of a resource kind, its keys and an example
    /// (or list the kinds).
    Explain {
        /// A resource kind such as `file` or `kernel_module`.
        kind: Option<String>,
    },
    /// Check this node's health for Slurm (HealthCheckProgram): drain it
    /// when unhealthy, resume it when nodecheck drained it and it recovered.
    Nhc(nhc::NhcArgs),
    /// Record an image (every entry, digests, what it means) to a file
    /// (docs/snapshot.md).
    Snapshot(drift::SnapshotArgs),
    /// What changed between two images or snapshots, by meaning first,
    /// each change with a risk (docs/diff.md).
    Diff(drift::DiffArgs),
    /// Write a profile from a known-good image (docs/baseline.md).
    Baseline(drift::BaselineArgs),
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
    /// Write a JUnit XML report to FILE (replaced atomically; `-` is
    /// standard output, and the terminal report then goes to stderr; a
    /// symbolic link is followed; a device or FIFO is written in place).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a JSON report to FILE, as for --junit; see docs/json-report.md.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a Prometheus textfile-collector report to FILE, as for
    /// --junit; see docs/nhc.md.
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
    /// Exit 1 when a check of a control at or above --fail-on was skipped
    /// (for gates where every check must apply to the target).
    #[arg(long)]
    fail_on_skip: bool,
    /// Exit 0 (not 4) when no check was evaluated, every one skipped.
    #[arg(long)]
    allow_empty: bool,
    /// Show the output of each failing check (the program's streams, the
    /// linkage chain, the compiler's error) under it.
    #[arg(long, short)]
    verbose: bool,
    /// When to colour the terminal report: `auto` (a terminal, unless
    /// NO_COLOR is set or CLICOLOR=0; CLICOLOR_FORCE forces it), `always`
    /// or `never`.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, value_name = "WHEN")]
    color: ColorWhen,
    /// The same as `--color never`.
    #[arg(long)]
    no_color: bool,
    /// The image's own release file inside the target (a build id or
    /// commit), shown in the report's target identity.
    #[arg(long, value_name = "PATH", default_value = nodecheck_core::identity::IMAGE_RELEASE)]
    image_release: String,
    /// Hash the packed image file given as the target (sha256) into the
    /// report's target identity. Off by default: it reads the whole file
    /// once more (about a second per GB); OCI images are named by their
    /// manifest digest without it.
    #[arg(long)]
    sha256: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ColorWhen {
    Auto,
    Always,
    Never,
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

/// glibc grows each thread's heap by exactly what an allocation needs,
/// one `mprotect` (and fresh page faults) per step: a whole-/usr `elf`
/// scan made 850 of them, 5% of its CPU time. A larger pad makes the
/// steps megabytes; only the address space is reserved (pages become
/// memory when touched), and the helpers (children) keep the default.
fn grow_heaps_in_large_steps() {
    // SAFETY: mallopt only sets a malloc parameter; no allocation is in
    // flight on another thread (none has been started yet).
    unsafe { libc::mallopt(libc::M_TOP_PAD, 8 << 20) };
}

fn main() -> ExitCode {
    // A copy of this binary is every child nodecheck starts of itself: the
    // sandbox of each program (namespaces cannot be entered from the
    // runner's threads), dlopen and the GPU probe, nhc's budgeted child.
    let helpers: Vec<(&str, nodecheck_core::helper::Handler)> = nodecheck_checks::HELPERS
        .iter()
        .copied()
        .chain([(nhc::HELPER, nhc::child as nodecheck_core::helper::Handler)])
        .collect();
    if let Some(code) = nodecheck_core::helper::dispatch(&helpers) {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    grow_heaps_in_large_steps();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => cmd_run(args),
        Command::Validate { profiles, vars } => cmd_validate(&profiles, &vars.vars),
        Command::List { profiles, vars } => cmd_list(&profiles, &vars.vars),
        Command::Explain { kind } => cmd_explain(kind.as_deref()),
        Command::Nhc(args) => nhc::cmd_nhc(args),
        Command::Snapshot(args) => drift::cmd_snapshot(args),
        Command::Diff(args) => drift::cmd_diff(args),
        Command::Baseline(args) => drift::cmd_baseline(args),
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
        // `cpio:FILE`, `tar:FILE`, or a packed image known by its magic.
        s if let Some((f, path)) = s.split_once(':')
            && let Some(format) = ImageFormat::parse(f) =>
        {
            return image(spec, ImageTarget::open_as(path, Some(format)));
        }
        // A packed image, or an image archive, by its content; a file this
        // user cannot read says so (not "not a directory").
        path if std::path::Path::new(path).is_file()
            && (ImageTarget::sniff(path) || std::fs::File::open(path).is_err()) =>
        {
            return image(spec, ImageTarget::open(path));
        }
        // An OCI image layout directory (it holds `oci-layout`).
        path if ImageTarget::is_oci_layout(path) => {
            return image(spec, ImageTarget::open_oci(path, ImageFormat::Oci, None));
        }
        path => RootFs::open(path).map(|t| Box::new(t) as _),
    };
    target.map_err(|e| format!("cannot use target {spec}: {e}"))
}

fn image(spec: &str, t: io::Result<ImageTarget>) -> Result<Box<dyn Target>, String> {
    t.map(|t| Box::new(t) as _)
        .map_err(|e| format!("cannot use target {spec}: {e}"))
}

/// Set by the first SIGINT or SIGTERM; the run stops and reports.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Which signal it was, for the exit status (128 + signal).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // A second signal: the user means it. Only async-signal-safe
        // calls here.
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + sig) };
    }
    SIGNAL.store(sig, Ordering::SeqCst);
}

/// SIGINT and SIGTERM stop the run (reports are still written); a second
/// one ends the process at once.
fn catch_interrupts() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only touches atomics and calls _exit.
        if let Err(e) = unsafe { sigaction(sig, &action) } {
            eprintln!("nodecheck: cannot catch {sig}: {e}");
        }
    }
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
    let options = run::Options {
        jobs: args.jobs,
        tags: args.tags.clone(),
        controls: args.controls.clone(),
        budget: None,
        budget_from: None,
        interrupt: Some(&INTERRUPTED),
        image_release: Some(args.image_release.clone()),
        sha256: args.sha256,
    };
    // A selector that matches nothing would make a gate that checks
    // nothing pass.
    let unmatched = run::unmatched_selectors(&profile, &options);
    if !unmatched.is_empty() {
        for u in &unmatched {
            eprintln!("nodecheck: {u} matches no control of the profile");
        }
        return exit::USAGE;
    }
    // Warnings are part of the report (terminal and JSON), not printed here.
    let mut to_stdout = None;
    let mut to_stderr = false;
    for (flag, path) in [
        ("--junit", &args.junit),
        ("--json", &args.json),
        ("--prometheus", &args.prometheus),
    ] {
        let Some(path) = path else { continue };
        match Destination::of(path).and_then(|d| d.check(path).map(|()| d)) {
            Ok(d) if d.is_stdout() => {
                if let Some(other) = to_stdout.replace(flag) {
                    eprintln!("nodecheck: {other} and {flag} cannot both go to standard output");
                    return exit::USAGE;
                }
            }
            Ok(d) => to_stderr |= d == Destination::Fd(2),
            Err(e) => {
                eprintln!("nodecheck: {e}");
                return exit::USAGE;
            }
        }
    }
    let target: Arc<dyn Target> = match open_target(&args.target) {
        Ok(t) => Arc::from(t),
        Err(e) => {
            eprintln!("nodecheck: {e}");
            return exit::TARGET;
        }
    };
    // With a report on stdout, the terminal report goes to stderr.
    let (out, color, width): (Box<dyn Write + Send>, bool, Option<usize>) = if to_stdout.is_some() {
        let e = io::stderr();
        let (c, w) = (use_color(args.color, args.no_color, &e), terminal_width(&e));
        (Box::new(e), c, w)
    } else {
        let o = io::stdout();
        let (c, w) = (use_color(args.color, args.no_color, &o), terminal_width(&o));
        (Box::new(o), c, w)
    };
    // No bar through a report written to stderr.
    let progress = io::IsTerminal::is_terminal(&io::stderr()) && !to_stderr;
    let terminal = TerminalReporter::new(out, TerminalOptions { color, progress })
        .with_progress_target(indicatif::ProgressDrawTarget::stderr())
        .verbose(args.verbose)
        .width(width);
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
    catch_interrupts();
    let kept = Arc::clone(&target);
    let outcome = run::run_shared(&profile, target, &options, reporters);
    // The process exits next: its caches need no freeing (the target
    // itself is still dropped, which cleans up an image's tree).
    if let Some(memo) = kept.memo() {
        memo.leak_at_exit();
    }
    drop(kept);
    for e in &outcome.reporter_errors {
        eprintln!("nodecheck: {e}");
    }
    if INTERRUPTED.load(Ordering::SeqCst) {
        let sig = SIGNAL.load(Ordering::SeqCst);
        eprintln!(
            "nodecheck: interrupted by {}; unfinished checks are reported as errors",
            nix::sys::signal::Signal::try_from(sig).map_or("a signal", |s| s.as_str())
        );
        return u8::try_from(128 + sig).unwrap_or(exit::FAILED);
    }
    if !outcome.reporter_errors.is_empty() {
        return exit::USAGE;
    }
    gate(&outcome.report, &args)
}

/// The exit status of a finished run: failures first, then skips under
/// `--fail-on-skip`, then a run that checked nothing.
fn gate(report: &nodecheck_core::report::Report, args: &RunArgs) -> u8 {
    if report.failed(args.fail_on) {
        return exit::FAILED;
    }
    if args.fail_on_skip {
        let skipped = report.skipped_checks(args.fail_on);
        if let Some((c, k)) = skipped.first() {
            eprintln!(
                "nodecheck: --fail-on-skip: {} check{} skipped, the first {} / {}: {}",
                skipped.len(),
                if skipped.len() == 1 { " was" } else { "s were" },
                c.id,
                k.name,
                c.check_skip_message(k)
            );
            return exit::FAILED;
        }
    }
    if report.evaluated() == 0 && !args.allow_empty {
        let n = report.summary.checks.total;
        let what = if n == 0 {
            "no check ran".to_owned()
        } else {
            format!(
                "all {n} check{} skipped on this {} target",
                if n == 1 { " was" } else { "s were" },
                report.target.kind
            )
        };
        eprintln!("nodecheck: nothing was checked: {what} (--allow-empty accepts this)");
        return exit::EMPTY;
    }
    exit::OK
}

/// Whether the terminal report on `stream` is coloured: `--color`, then
/// (for `auto`) CLICOLOR_FORCE, NO_COLOR, CLICOLOR, TERM and whether it is
/// a terminal, as anstream decides for every CLI that uses it.
fn use_color<S: anstream::stream::RawStream>(when: ColorWhen, no_color: bool, stream: &S) -> bool {
    match (when, no_color) {
        (_, true) | (ColorWhen::Never, _) => false,
        (ColorWhen::Always, _) => true,
        (ColorWhen::Auto, _) => {
            anstream::AutoStream::choice(stream) != anstream::ColorChoice::Never
        }
    }
}

/// The width of the terminal `stream` is, if it is one.
fn terminal_width(stream: &impl std::os::fd::AsFd) -> Option<usize> {
    terminal_size::terminal_size_of(stream).map(|(w, _)| usize::from(w.0))
}

/// Lints each profile on its own: two site profiles that are never run
/// together may share a control id.
fn cmd_validate(profiles: &[PathBuf], vars: &[(String, String)]) -> u8 {
    let mut code = exit::OK;
    for path in profiles {
        match load(std::slice::from_ref(path), vars) {
            Ok(p) => {
                print_warnings(&p);
                let n = p.controls.len();
                let _ = writeln!(
                    io::stdout(),
                    "{}: ok ({n} control{}, {} checks)",
                    path.display(),
                    if n == 1 { "" } else { "s" },
                    p.check_count()
                );
            }
            Err(d) => {
                print_diagnostics(&d);
                code = exit::USAGE;
            }
        }
    }
    code
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
        Some(k) => {
            let doc = kind::render_doc(k);
            let text = match explain_width() {
                Some(w) => wrap_doc(&doc, w),
                None => doc,
            };
            quiet_pipe(write!(out, "{text}"))
        }
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

/// The width `explain` wraps to: the terminal's, or COLUMNS; unwrapped
/// when neither says (a pipe, a file).
fn explain_width() -> Option<usize> {
    terminal_width(&io::stdout())
        .or_else(|| std::env::var("COLUMNS").ok()?.parse().ok())
        .filter(|&w| w >= 20)
}

/// Re-wraps the prose of a kind's Markdown doc to `width` columns: each
/// paragraph and list item is joined and filled again; code blocks, tables
/// and headings stay as written (a cut there would change their meaning).
fn wrap_doc(doc: &str, width: usize) -> String {
    let mut out = String::new();
    let mut para: Vec<&str> = Vec::new();
    // The first-line and continuation indents of the paragraph in `para`.
    let mut indent = (String::new(), String::new());
    let mut code = false;
    let flush = |para: &mut Vec<&str>, indent: &(String, String), out: &mut String| {
        if para.is_empty() {
            return;
        }
        let words: Vec<&str> = para.iter().flat_map(|l| l.split_whitespace()).collect();
        let mut line = indent.0.clone();
        let mut fresh = true;
        for w in words {
            let len = line.chars().count();
            if !fresh && len + 1 + w.chars().count() > width {
                out.push_str(line.trim_end());
                out.push('\n');
                line = indent.1.clone();
                fresh = true;
            }
            if !fresh {
                line.push(' ');
            }
            line.push_str(w);
            fresh = false;
        }
        out.push_str(line.trim_end());
        out.push('\n');
        para.clear();
    };
    for raw in doc.lines() {
        let t = raw.trim_start();
        if t.starts_with("```") {
            flush(&mut para, &indent, &mut out);
            code = !code;
            out.push_str(raw);
            out.push('\n');
            continue;
        }
        if code || t.is_empty() || t.starts_with('#') || t.starts_with('|') {
            flush(&mut para, &indent, &mut out);
            out.push_str(raw);
            out.push('\n');
            continue;
        }
        let lead = &raw[..raw.len() - t.len()];
        let bullet = ["- ", "* "].iter().find(|b| t.starts_with(**b));
        if let Some(b) = bullet {
            flush(&mut para, &indent, &mut out);
            indent = (lead.to_owned(), format!("{lead}{}", " ".repeat(b.len())));
            para.push(raw.trim_start());
            // Keep the bullet: it is the first word.
            continue;
        }
        if para.is_empty() {
            indent = (lead.to_owned(), lead.to_owned());
        }
        para.push(t);
    }
    flush(&mut para, &indent, &mut out);
    out
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
