//! The runner: evaluates a profile's checks in parallel against a target.
//!
//! Checks of independent controls run together on a rayon pool; a control
//! whose `depends_on` did not pass is skipped with that reason. Events go to
//! one reporter thread. A panic inside a check becomes an `error` outcome of
//! that check, never the end of the run.

use std::any::Any;
use std::collections::HashMap;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant, SystemTime};

use rayon::prelude::*;

use crate::outcome::{Evaluation, PropertyResult, Status};
use crate::profile::{Check, Control, Profile};
use crate::report::{
    CheckResult, ControlResult, Event, ProfileInfo, Report, Reporter, Summary, TargetInfo,
    JSON_SCHEMA,
};
use crate::target::Target;

/// What a kind gets to evaluate a check.
pub struct Context<'a> {
    pub target: &'a dyn Target,
}

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Checks evaluated at once; the number of CPUs when `None`.
    pub jobs: Option<usize>,
    /// Run only controls carrying one of these tags (and what they depend on).
    pub tags: Vec<String>,
    /// Run only controls whose id (or id before the matrix suffix) matches
    /// one of these ids or `*` globs (and what they depend on).
    pub controls: Vec<String>,
}

/// A run's report, and any reporter that could not write.
#[derive(Debug)]
pub struct Outcome {
    pub report: Arc<Report>,
    /// Errors of reporters (a full disk for `--junit`, …). A broken pipe on
    /// a terminal is not an error and never appears here.
    pub reporter_errors: Vec<io::Error>,
}

/// Runs `profile` against `target`, feeding `reporters` from one thread.
///
/// ```no_run
/// # use nodecheck_core::{profile, run, target::RootFs};
/// # let kinds: &[&'static dyn nodecheck_core::kind::Kind] = &[];
/// let profile = profile::load("profiles/base.toml", kinds, &Default::default())?;
/// let target = RootFs::open("/srv/images/compute")?;
/// let outcome = run::run(&profile, &target, &run::Options::default(), Vec::new());
/// assert!(outcome.report.summary.checks.total > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run(
    profile: &Profile,
    target: &dyn Target,
    options: &Options,
    mut reporters: Vec<Box<dyn Reporter + '_>>,
) -> Outcome {
    quiet_worker_panics();
    let selected = select(profile, options);
    let controls: Vec<&Control> = profile
        .controls
        .iter()
        .zip(&selected)
        .filter(|(_, s)| **s)
        .map(|(c, _)| c)
        .collect();
    let started = SystemTime::now();
    let clock = Instant::now();
    let (tx, rx) = mpsc::channel::<Event>();
    let mut reporter_errors = Vec::new();
    let report = std::thread::scope(|s| {
        let sink = s.spawn(move || {
            let mut errors = Vec::new();
            for event in rx {
                for r in reporters.iter_mut() {
                    if let Err(e) = r.event(&event) {
                        if e.kind() != io::ErrorKind::BrokenPipe {
                            errors.push(e);
                        }
                    }
                }
            }
            errors
        });
        let checks = controls.iter().map(|c| c.checks.len()).sum();
        let _ = tx.send(Event::Started {
            controls: controls.len(),
            checks,
        });
        let results = evaluate(&controls, target, options.jobs, &tx);
        let controls: Vec<ControlResult> = controls
            .iter()
            .zip(results)
            .map(|(c, (status, skip, checks, d))| control_result(c, status, skip, checks, d))
            .collect();
        let report = Arc::new(Report {
            schema: JSON_SCHEMA,
            profile: ProfileInfo {
                name: profile.name.clone(),
                title: profile.title.clone(),
                version: profile.version.clone(),
                file: profile.file.display().to_string(),
            },
            target: TargetInfo {
                kind: target.kind(),
                description: target.describe(),
            },
            hostname: hostname(),
            started,
            duration: clock.elapsed(),
            summary: Summary::of(&controls),
            controls,
            warnings: profile.warnings.iter().map(|w| w.to_string()).collect(),
        });
        let _ = tx.send(Event::Finished(report.clone()));
        drop(tx);
        reporter_errors = sink.join().unwrap_or_default();
        report
    });
    Outcome {
        report,
        reporter_errors,
    }
}

type ControlOutcome = (Status, Option<String>, Vec<CheckResult>, Duration);

/// Evaluates controls wave by wave: each wave holds the controls whose
/// dependencies are settled, and all their checks run in parallel.
fn evaluate(
    controls: &[&Control],
    target: &dyn Target,
    jobs: Option<usize>,
    tx: &mpsc::Sender<Event>,
) -> Vec<ControlOutcome> {
    let index: HashMap<&str, usize> = controls
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    let mut done: Vec<Option<ControlOutcome>> = vec![None; controls.len()];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.unwrap_or(0))
        .thread_name(|i| format!("nodecheck-worker-{i}"))
        .build();
    loop {
        let mut wave = Vec::new();
        for (i, c) in controls.iter().enumerate() {
            if done[i].is_some() {
                continue;
            }
            let deps: Vec<Option<&ControlOutcome>> = c
                .depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()))
                .map(|&j| done[j].as_ref())
                .collect();
            if deps.iter().any(Option::is_none) {
                continue;
            }
            if let Some(reason) = skip_reason(c, target, &index, &done) {
                let checks = c
                    .checks
                    .iter()
                    .map(|k| skipped(k, &reason))
                    .collect();
                done[i] = Some((Status::Skip, Some(reason), checks, Duration::ZERO));
                continue;
            }
            wave.push(i);
        }
        if wave.is_empty() {
            break;
        }
        let work: Vec<(usize, usize)> = wave
            .iter()
            .flat_map(|&i| (0..controls[i].checks.len()).map(move |j| (i, j)))
            .collect();
        let eval_all = || {
            work.par_iter()
                .map_with(tx.clone(), |tx, &(i, j)| {
                    let c = controls[i];
                    let check = &c.checks[j];
                    let name = check.name();
                    let _ = tx.send(Event::CheckStarted {
                        control: c.id.clone(),
                        check: name.clone(),
                    });
                    let r = eval_check(check, target);
                    let _ = tx.send(Event::CheckFinished {
                        control: c.id.clone(),
                        check: name,
                        status: r.status,
                    });
                    r
                })
                .collect::<Vec<CheckResult>>()
        };
        let results = match &pool {
            Ok(pool) => pool.install(eval_all),
            Err(_) => eval_all(),
        };
        let mut results = results.into_iter();
        for &i in &wave {
            let checks: Vec<CheckResult> = results.by_ref().take(controls[i].checks.len()).collect();
            let status = Status::combine(checks.iter().map(|c| c.status));
            let d = checks.iter().map(|c| c.duration).sum();
            done[i] = Some((status, None, checks, d));
        }
    }
    done.into_iter()
        .map(|d| d.unwrap_or((Status::Skip, None, Vec::new(), Duration::ZERO)))
        .collect()
}

/// Why a whole control does not run here, if it does not.
fn skip_reason(
    c: &Control,
    target: &dyn Target,
    index: &HashMap<&str, usize>,
    done: &[Option<ControlOutcome>],
) -> Option<String> {
    if !c.targets.is_empty() && !c.targets.contains(&target.kind()) {
        let kinds: Vec<&str> = c.targets.iter().map(|k| k.as_str()).collect();
        return Some(format!(
            "runs only on {} targets, this is a {} target",
            kinds.join(", "),
            target.kind()
        ));
    }
    for dep in &c.depends_on {
        let Some(&j) = index.get(dep.as_str()) else {
            continue;
        };
        if let Some((status, _, _, _)) = &done[j] {
            if *status != Status::Pass {
                let what = match status {
                    Status::Fail => "failed",
                    Status::Error => "errored",
                    _ => "was skipped",
                };
                return Some(format!("depends on `{dep}`, which {what}"));
            }
        }
    }
    None
}

fn skipped(check: &Check, reason: &str) -> CheckResult {
    CheckResult {
        kind: check.kind.name().to_string(),
        subject: check.subject.clone(),
        name: check.name(),
        status: Status::Skip,
        location: check.location.clone(),
        duration: Duration::ZERO,
        properties: vec![PropertyResult::skip("control", reason)],
        output: String::new(),
    }
}

/// Evaluates one check: capability needs first, then the kind, with panics
/// turned into an error outcome.
pub fn eval_check(check: &Check, target: &dyn Target) -> CheckResult {
    let start = Instant::now();
    let kind = check.kind;
    let evaluation = match kind.needs().filter(|n| !target.has(*n)) {
        Some(need) => Evaluation::from(vec![PropertyResult::skip(kind.name(), need.skip_reason())]),
        None => eval_supported(check, target),
    };
    let mut properties = evaluation.properties;
    if properties.is_empty() {
        properties.push(PropertyResult::error(
            kind.name(),
            "the check produced no result (a bug in nodecheck)",
        ));
    }
    CheckResult {
        kind: kind.name().to_string(),
        subject: check.subject.clone(),
        name: check.name(),
        status: Status::combine(properties.iter().map(|p| p.status)),
        location: check.location.clone(),
        duration: start.elapsed(),
        properties,
        output: evaluation.output,
    }
}

/// Removes the properties the target cannot answer (skipping them with the
/// need's reason) and evaluates the rest.
fn eval_supported(check: &Check, target: &dyn Target) -> Evaluation {
    let kind = check.kind;
    let mut skipped = Vec::new();
    let mut runnable = check.clone();
    runnable.props.retain(|p| {
        let need = kind
            .keys()
            .iter()
            .find(|k| k.name == p.key)
            .and_then(|k| k.needs);
        match need {
            Some(n) if !target.has(n) => {
                skipped.push(PropertyResult::skip(p.key, n.skip_reason()));
                false
            }
            _ => true,
        }
    });
    let asserts = runnable.props.iter().any(|p| {
        kind.keys()
            .iter()
            .any(|k| k.name == p.key && !k.modifier)
    });
    let mut evaluation = if !skipped.is_empty() && !asserts {
        Evaluation::default()
    } else {
        let cx = Context { target };
        match panic::catch_unwind(AssertUnwindSafe(|| kind.eval(&runnable, &cx))) {
            Ok(e) => e,
            Err(payload) => Evaluation::error(
                kind.name(),
                format!(
                    "the check panicked (a bug in nodecheck): {}",
                    panic_message(&*payload)
                ),
            ),
        }
    };
    evaluation.properties.extend(skipped);
    evaluation
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Keeps the default panic message off the terminal for panics inside
/// checks: they are reported as `error` outcomes instead.
fn quiet_worker_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let worker = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("nodecheck-worker"));
            if !worker {
                previous(info);
            }
        }));
    });
}

fn control_result(
    c: &Control,
    status: Status,
    skip_reason: Option<String>,
    mut checks: Vec<CheckResult>,
    duration: Duration,
) -> ControlResult {
    // JUnit keys test cases by classname + name: make names unique.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for k in &mut checks {
        let n = seen.entry(k.name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            k.name = format!("{} #{n}", k.name);
        }
    }
    ControlResult {
        id: c.id.clone(),
        title: c.title.clone(),
        severity: c.severity,
        tags: c.tags.clone(),
        desc: c.desc.clone(),
        status,
        waived: c.waiver.as_ref().map(|w| w.reason.clone()),
        skip_reason,
        location: c.location.clone(),
        duration,
        checks,
    }
}

/// Which controls run: all, or those selected by tag or id, plus what they
/// depend on.
fn select(profile: &Profile, options: &Options) -> Vec<bool> {
    if options.tags.is_empty() && options.controls.is_empty() {
        return vec![true; profile.controls.len()];
    }
    let globs: Vec<globset::GlobMatcher> = options
        .controls
        .iter()
        .filter_map(|p| {
            let escaped = p.replace('[', "\\[").replace(']', "\\]");
            globset::Glob::new(&escaped).ok().map(|g| g.compile_matcher())
        })
        .collect();
    let mut selected: Vec<bool> = profile
        .controls
        .iter()
        .map(|c| {
            let base = c.id.split('[').next().unwrap_or(&c.id);
            let by_id = globs.iter().any(|g| g.is_match(&c.id) || g.is_match(base));
            let by_tag = c.tags.iter().any(|t| options.tags.contains(t));
            by_id || by_tag
        })
        .collect();
    let index: HashMap<&str, usize> = profile
        .controls
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    let mut stack: Vec<usize> = (0..selected.len()).filter(|&i| selected[i]).collect();
    while let Some(i) = stack.pop() {
        for d in &profile.controls[i].depends_on {
            if let Some(&j) = index.get(d.as_str()) {
                if !selected[j] {
                    selected[j] = true;
                    stack.push(j);
                }
            }
        }
    }
    selected
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string())
}
