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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant, SystemTime};

use rayon::prelude::*;

use crate::identity::{IMAGE_RELEASE, TargetIdentity};
use crate::outcome::{Evaluation, PropertyResult, Status};
use crate::profile::{Check, Control, Profile};
use crate::report::{
    CheckResult, ControlResult, Event, JSON_SCHEMA, ProfileInfo, Report, Reporter, Summary,
    TargetInfo,
};
use crate::target::{Need, Target};

pub use crate::kind::Context;

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
    /// The time the whole run may take. A check still running when it is
    /// up, or not started by then, ends as an `error` "did not finish
    /// within the 30s budget". [`run_shared`] returns at the deadline even
    /// when a check is stuck in the kernel (a hung NFS mount) and abandons
    /// its thread; [`run`], which only borrows the target, reports the same
    /// but has to wait for such a thread before it returns.
    pub budget: Option<Duration>,
    /// When the budget started counting; the start of the run when `None`.
    /// A caller that spent some of the budget before the run (loading the
    /// profile, as `nodecheck nhc` does) passes when it began.
    pub budget_from: Option<Instant>,
    /// The image's release file inside the target;
    /// [`IMAGE_RELEASE`](crate::identity::IMAGE_RELEASE) when `None`.
    pub image_release: Option<String>,
    /// Hash a packed image's file into the report's identity
    /// (`target.image.sha256`; `--sha256`). Off by default: reading a large
    /// image once more would dominate a metadata run.
    pub sha256: bool,
    /// Set (by a signal handler, say) to stop the run: no check starts
    /// after it, and the checks still running end as an `error`
    /// "interrupted". [`run_shared`] returns within a fraction of a second
    /// and abandons their threads (programs they started die with the
    /// process: the sandbox helper has a parent-death signal); [`run`]
    /// waits for them.
    pub interrupt: Option<&'static AtomicBool>,
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
    reporters: Vec<Box<dyn Reporter + '_>>,
) -> Outcome {
    run_on(profile, &Shared::Borrowed(target), options, reporters)
}

/// Like [`run`], on a target the runner may share with threads that outlive
/// the call: with [`Options::budget`], this returns at the deadline even
/// when a check is stuck in an uninterruptible system call. Such a thread
/// is abandoned (it ends with the process); nothing it finishes later is
/// reported.
///
/// ```no_run
/// # use std::{sync::Arc, time::Duration};
/// # use nodecheck_core::{profile, run, target::{RootFs, Target}};
/// # let kinds: &[&'static dyn nodecheck_core::kind::Kind] = &[];
/// let profile = profile::load("/etc/nodecheck/nhc.toml", kinds, &Default::default())?;
/// let node: Arc<dyn Target> = Arc::new(RootFs::live()?);
/// let options = run::Options { budget: Some(Duration::from_secs(30)), ..Default::default() };
/// let outcome = run::run_shared(&profile, node, &options, Vec::new());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run_shared(
    profile: &Profile,
    target: Arc<dyn Target>,
    options: &Options,
    reporters: Vec<Box<dyn Reporter + '_>>,
) -> Outcome {
    run_on(profile, &Shared::Owned(target), options, reporters)
}

/// The target as the runner holds it: borrowed for the length of the run,
/// or shared with worker threads that may outlive it.
enum Shared<'a> {
    Borrowed(&'a dyn Target),
    Owned(Arc<dyn Target>),
}

impl Shared<'_> {
    fn get(&self) -> &dyn Target {
        match self {
            Shared::Borrowed(t) => *t,
            Shared::Owned(t) => t.as_ref(),
        }
    }
}

/// When the run's budget is up, and how it reads in messages.
#[derive(Clone, Copy)]
struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    fn passed(&self) -> bool {
        Instant::now() >= self.at
    }
}

fn run_on(
    profile: &Profile,
    shared: &Shared<'_>,
    options: &Options,
    mut reporters: Vec<Box<dyn Reporter + '_>>,
) -> Outcome {
    let target = shared.get();
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
    let deadline = options.budget.map(|budget| Deadline {
        at: options.budget_from.unwrap_or(clock) + budget,
        budget,
    });
    let profile_info = ProfileInfo {
        name: profile.name.clone(),
        title: profile.title.clone(),
        version: profile.version.clone(),
        file: profile.file.display().to_string(),
    };
    let mut identity = TargetIdentity::read(
        target,
        options.image_release.as_deref().unwrap_or(IMAGE_RELEASE),
    );
    let mut warnings: Vec<String> = profile.warnings.iter().map(|w| w.to_string()).collect();
    if options.sha256 {
        // Said in every report rather than left out quietly.
        match identity.image.as_mut() {
            Some(image) => {
                if let Err(e) = image.hash_file() {
                    warnings.push(format!("--sha256: cannot hash the image: {e}"));
                }
            }
            None => warnings.push(format!(
                "--sha256: the target is not a packed image; nothing was hashed ({})",
                target.describe()
            )),
        }
    }
    let target_info = TargetInfo {
        kind: target.kind(),
        description: target.describe(),
        identity: Box::new(identity),
    };
    let (tx, rx) = mpsc::channel::<Event>();
    let mut reporter_errors = Vec::new();
    let report = std::thread::scope(|s| {
        let sink = s.spawn(move || {
            let mut errors = Vec::new();
            for event in rx {
                for r in reporters.iter_mut() {
                    if let Err(e) = r.event(&event)
                        && e.kind() != io::ErrorKind::BrokenPipe
                    {
                        errors.push(e);
                    }
                }
            }
            errors
        });
        let checks = controls.iter().map(|c| c.checks.len()).sum();
        let _ = tx.send(Event::Started {
            controls: controls.len(),
            checks,
            profile: profile_info.clone(),
            target: target_info.clone(),
        });
        if controls.iter().any(|c| c.checks.iter().any(needs_exec)) {
            target.will_need(Need::Exec);
        }
        let controls: Vec<ControlResult> = evaluate(&controls, shared, options, deadline, &tx)
            .into_iter()
            .map(Arc::unwrap_or_clone)
            .collect();
        let report = Arc::new(Report {
            schema: JSON_SCHEMA,
            profile: profile_info,
            target: target_info,
            hostname: hostname(),
            started,
            duration: clock.elapsed(),
            summary: Summary::of(&controls),
            controls,
            warnings,
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
    shared: &Shared<'_>,
    options: &Options,
    deadline: Option<Deadline>,
    tx: &mpsc::Sender<Event>,
) -> Vec<Arc<ControlResult>> {
    let target = shared.get();
    let (jobs, interrupt) = (options.jobs, options.interrupt);
    let stop = move || interrupt.is_some_and(|f| f.load(Ordering::Relaxed));
    // The control's result, told to reporters as soon as it is settled.
    let settle = |i: usize, (status, skip, checks, d): ControlOutcome| {
        let r = Arc::new(control_result(controls[i], status, skip, checks, d));
        let _ = tx.send(Event::ControlFinished {
            index: i,
            result: Arc::clone(&r),
        });
        r
    };
    let index: HashMap<&str, usize> = controls
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    let mut done: Vec<Option<Arc<ControlResult>>> = vec![None; controls.len()];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.unwrap_or(0))
        .thread_name(|i| format!("nodecheck-worker-{i}"))
        .build();
    loop {
        if stop() {
            for (i, c) in controls.iter().enumerate() {
                if done[i].is_none() {
                    let checks = c
                        .checks
                        .iter()
                        .map(|k| interrupted(k, Duration::ZERO))
                        .collect();
                    done[i] = Some(settle(i, (Status::Error, None, checks, Duration::ZERO)));
                }
            }
            break;
        }
        let mut wave = Vec::new();
        for (i, c) in controls.iter().enumerate() {
            if done[i].is_some() {
                continue;
            }
            let waiting = c
                .depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()))
                .any(|&j| done[j].is_none());
            if waiting {
                continue;
            }
            if let Some(reason) = skip_reason(c, target, &index, &done) {
                let checks = c.checks.iter().map(|k| skipped(k, &reason)).collect();
                done[i] = Some(settle(
                    i,
                    (Status::Skip, Some(reason), checks, Duration::ZERO),
                ));
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
                    if let Some(d) = deadline.filter(Deadline::passed) {
                        return timed_out(check, d.budget, Duration::ZERO);
                    }
                    if stop() {
                        return interrupted(check, Duration::ZERO);
                    }
                    let name = check.name();
                    let _ = tx.send(Event::CheckStarted {
                        control: c.id.clone(),
                        check: name.clone(),
                    });
                    let mut r = eval_check(check, target);
                    if let Some(d) = deadline.filter(Deadline::passed) {
                        r = timed_out(check, d.budget, r.duration);
                    }
                    let _ = tx.send(Event::CheckFinished {
                        control: c.id.clone(),
                        check: name,
                        status: r.status,
                    });
                    r
                })
                .collect::<Vec<CheckResult>>()
        };
        let results = match shared {
            Shared::Owned(t) if deadline.is_some() || interrupt.is_some() => {
                let mut on_control = |i: usize, checks: &[CheckResult]| {
                    done[i] = Some(settle(i, settled(checks.to_vec())));
                };
                let run = Detached {
                    deadline,
                    interrupt,
                    pool: pool.as_ref().ok(),
                    tx,
                };
                eval_detached(controls, &work, t, &run, &mut on_control)
            }
            _ => match &pool {
                Ok(pool) => pool.install(eval_all),
                Err(_) => eval_all(),
            },
        };
        let mut results = results.into_iter();
        for &i in &wave {
            let checks: Vec<CheckResult> =
                results.by_ref().take(controls[i].checks.len()).collect();
            // Settled already when its checks all finished in time.
            if done[i].is_none() {
                done[i] = Some(settle(i, settled(checks)));
            }
        }
    }
    done.into_iter()
        .enumerate()
        .map(|(i, d)| {
            d.unwrap_or_else(|| {
                let (c, z) = (controls[i], Duration::ZERO);
                Arc::new(control_result(c, Status::Skip, None, Vec::new(), z))
            })
        })
        .collect()
}

/// A control whose checks all ran.
fn settled(checks: Vec<CheckResult>) -> ControlOutcome {
    let status = Status::combine(checks.iter().map(|c| c.status));
    let d = checks.iter().map(|c| c.duration).sum();
    (status, None, checks, d)
}

/// How often a run with an interrupt flag looks at it while it waits.
const POLL: Duration = Duration::from_millis(50);

/// What [`eval_detached`] works with besides the checks.
struct Detached<'a> {
    deadline: Option<Deadline>,
    interrupt: Option<&'static AtomicBool>,
    pool: Option<&'a rayon::ThreadPool>,
    tx: &'a mpsc::Sender<Event>,
}

/// What a detached worker tells the waiting runner.
enum Progress {
    Started(usize),
    Done(usize, CheckResult),
}

/// Runs one wave's checks on threads that may outlive the run, and waits
/// for them no longer than the deadline or an interrupt: what has not
/// finished by then is reported as timed out (or interrupted) and its
/// thread abandoned (it only holds clones of the check and the target, and
/// a channel nobody reads any more). `on_control` hears of each control
/// whose checks all finished, as soon as they did.
fn eval_detached(
    controls: &[&Control],
    work: &[(usize, usize)],
    target: &Arc<dyn Target>,
    run: &Detached<'_>,
    on_control: &mut dyn FnMut(usize, &[CheckResult]),
) -> Vec<CheckResult> {
    let Detached {
        deadline,
        interrupt,
        pool,
        tx,
    } = *run;
    let over = move || deadline.is_some_and(|d| d.passed());
    let stop = move || interrupt.is_some_and(|f| f.load(Ordering::Relaxed));
    let (done_tx, done_rx) = mpsc::channel::<Progress>();
    if !over() && !stop() {
        for (n, &(i, j)) in work.iter().enumerate() {
            let check = controls[i].checks[j].clone();
            let target = Arc::clone(target);
            let done_tx = done_tx.clone();
            let job = move || {
                if over() || stop() {
                    return;
                }
                let _ = done_tx.send(Progress::Started(n));
                let r = eval_check(&check, target.as_ref());
                let _ = done_tx.send(Progress::Done(n, r));
            };
            match pool {
                Some(pool) => pool.spawn(job),
                None => rayon::spawn(job),
            }
        }
    }
    drop(done_tx);
    let mut results: Vec<Option<CheckResult>> = vec![None; work.len()];
    let mut started: Vec<Option<Instant>> = vec![None; work.len()];
    let mut left = work.len();
    // Per control: where its checks start in `work` (they are
    // contiguous) and how many have not finished.
    let mut open: HashMap<usize, (usize, usize)> = HashMap::new();
    for (n, &(i, _)) in work.iter().enumerate() {
        open.entry(i).or_insert((n, 0)).1 += 1;
    }
    while left > 0 && !stop() {
        let mut wait = deadline.map_or(Duration::MAX, |d| {
            d.at.saturating_duration_since(Instant::now())
        });
        if interrupt.is_some() {
            wait = wait.min(POLL);
        }
        let (n, r) = match done_rx.recv_timeout(wait) {
            Ok(Progress::Started(n)) => {
                started[n] = Some(Instant::now());
                let (i, j) = work[n];
                let _ = tx.send(Event::CheckStarted {
                    control: controls[i].id.clone(),
                    check: controls[i].checks[j].name(),
                });
                continue;
            }
            // A check ending after an interrupt ended because of it (a
            // terminal's Ctrl-C reaches its programs too): interrupted.
            Ok(Progress::Done(..)) if stop() => break,
            Ok(Progress::Done(n, r)) => (n, r),
            Err(mpsc::RecvTimeoutError::Timeout) if !over() => continue,
            Err(_) => break,
        };
        let i = work[n].0;
        let _ = tx.send(Event::CheckFinished {
            control: controls[i].id.clone(),
            check: r.name.clone(),
            status: r.status,
        });
        results[n] = Some(r);
        left -= 1;
        if let Some((first, left)) = open.get_mut(&i) {
            *left -= 1;
            if *left == 0 {
                let len = controls[i].checks.len();
                let checks: Vec<CheckResult> = results[*first..*first + len]
                    .iter()
                    .filter_map(Clone::clone)
                    .collect();
                on_control(i, &checks);
            }
        }
    }
    let interrupted_now = stop();
    results
        .into_iter()
        .zip(work)
        .zip(started)
        .map(|((r, &(i, j)), started)| {
            r.unwrap_or_else(|| {
                let check = &controls[i].checks[j];
                let ran = started.map_or(Duration::ZERO, |s| s.elapsed());
                let r = match deadline {
                    Some(d) if !interrupted_now => timed_out(check, d.budget, ran),
                    _ => interrupted(check, ran),
                };
                let _ = tx.send(Event::CheckFinished {
                    control: controls[i].id.clone(),
                    check: r.name.clone(),
                    status: r.status,
                });
                r
            })
        })
        .collect()
}

/// The result of a check cut by the run's budget.
fn timed_out(check: &Check, budget: Duration, ran: Duration) -> CheckResult {
    let kind = check.kind.name();
    CheckResult {
        kind: kind.to_string(),
        subject: check.subject.clone(),
        name: check.name(),
        status: Status::Error,
        location: check.location.clone(),
        duration: ran,
        properties: vec![PropertyResult::error(
            kind,
            format!(
                "did not finish within the {} budget",
                crate::matcher::format_duration(budget)
            ),
        )],
        output: String::new(),
    }
}

/// The result of a check that an interrupt (SIGINT, SIGTERM) stopped or
/// kept from starting.
fn interrupted(check: &Check, ran: Duration) -> CheckResult {
    let kind = check.kind.name();
    CheckResult {
        kind: kind.to_string(),
        subject: check.subject.clone(),
        name: check.name(),
        status: Status::Error,
        location: check.location.clone(),
        duration: ran,
        properties: vec![PropertyResult::error(kind, "interrupted")],
        output: String::new(),
    }
}

/// Why a whole control does not run here, if it does not.
fn skip_reason(
    c: &Control,
    target: &dyn Target,
    index: &HashMap<&str, usize>,
    done: &[Option<Arc<ControlResult>>],
) -> Option<String> {
    if !c.targets.is_empty() && !c.targets.contains(&target.kind()) {
        let kinds: Vec<&str> = c.targets.iter().map(|k| k.as_str()).collect();
        return Some(format!(
            "runs only on {} targets, this is a {} target",
            kinds.join(", "),
            target.kind()
        ));
    }
    if let Some(reason) = c.only_if.as_ref().and_then(|o| o.unmet(target)) {
        return Some(reason);
    }
    for dep in &c.depends_on {
        let Some(&j) = index.get(dep.as_str()) else {
            continue;
        };
        if let Some(r) = &done[j]
            && r.status != Status::Pass
        {
            let what = match r.status {
                Status::Fail => "failed",
                Status::Error => "errored",
                _ => "was skipped",
            };
            return Some(format!("depends on `{dep}`, which {what}"));
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

/// Whether `check` runs a program in the target: its kind does, or one
/// of the keys it uses.
fn needs_exec(check: &Check) -> bool {
    let kind = check.kind;
    kind.needs() == Some(Need::Exec)
        || check.props.iter().any(|p| {
            kind.keys()
                .iter()
                .any(|k| k.name == p.key && k.needs == Some(Need::Exec))
        })
}

/// Evaluates one check: capability needs first, then the kind, with panics
/// turned into an error outcome.
pub fn eval_check(check: &Check, target: &dyn Target) -> CheckResult {
    let start = Instant::now();
    let kind = check.kind;
    let unmet = check.only_if.as_ref().and_then(|o| o.unmet(target));
    let evaluation = match (unmet, kind.needs().and_then(|n| target.missing(n))) {
        (Some(reason), _) => Evaluation::from(vec![PropertyResult::skip("only_if", reason)]),
        (None, Some(why)) => Evaluation::from(vec![PropertyResult::skip(kind.name(), why)]),
        (None, None) => eval_supported(check, target),
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
    let unmet = |p: &crate::profile::Prop| {
        kind.keys()
            .iter()
            .find(|k| k.name == p.key)
            .and_then(|k| k.needs)
            .and_then(|n| target.missing(n))
    };
    let skipped: Vec<PropertyResult> = check
        .props
        .iter()
        .filter_map(|p| unmet(p).map(|why| PropertyResult::skip(p.key, why)))
        .collect();
    // Most checks keep every property: copy the check only when some go.
    let pruned;
    let runnable = if skipped.is_empty() {
        check
    } else {
        pruned = Check {
            kind,
            subject: check.subject.clone(),
            props: check
                .props
                .iter()
                .filter(|p| unmet(p).is_none())
                .cloned()
                .collect(),
            location: check.location.clone(),
            timeout: check.timeout,
            only_if: None,
        };
        &pruned
    };
    let asserts = runnable
        .props
        .iter()
        .any(|p| kind.keys().iter().any(|k| k.name == p.key && !k.modifier));
    let mut evaluation = if !skipped.is_empty() && !asserts {
        Evaluation::default()
    } else {
        let cx = Context { target };
        match panic::catch_unwind(AssertUnwindSafe(|| kind.eval(runnable, &cx))) {
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

/// Whether `glob` selects control `c`: by its id, or its id before the
/// matrix suffix.
fn id_matches(glob: &globset::GlobMatcher, c: &Control) -> bool {
    let base = c.id.split('[').next().unwrap_or(&c.id);
    glob.is_match(&c.id) || glob.is_match(base)
}

/// The selectors of `options` that match no control of `profile`, as the
/// command line spells them (`--tags nosuch`, `--controls 'x*'`): a gate
/// asked to run them would check nothing, so callers treat them as usage
/// errors. An invalid `--controls` pattern is reported too.
///
/// ```no_run
/// # use nodecheck_core::{profile, run};
/// # let kinds: &[&'static dyn nodecheck_core::kind::Kind] = &[];
/// let profile = profile::load("profiles/base.toml", kinds, &Default::default())?;
/// let options = run::Options { tags: vec!["nosuchtag".into()], ..Default::default() };
/// assert_eq!(run::unmatched_selectors(&profile, &options), ["--tags nosuchtag"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn unmatched_selectors(profile: &Profile, options: &Options) -> Vec<String> {
    let mut out = Vec::new();
    for t in &options.tags {
        if !profile.controls.iter().any(|c| c.tags.contains(t)) {
            out.push(format!("--tags {t}"));
        }
    }
    for p in &options.controls {
        let hit = crate::profile::id_glob(p)
            .is_ok_and(|g| profile.controls.iter().any(|c| id_matches(&g, c)));
        if !hit {
            out.push(format!("--controls {p}"));
        }
    }
    out
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
        .filter_map(|p| crate::profile::id_glob(p).ok())
        .collect();
    let mut selected: Vec<bool> = profile
        .controls
        .iter()
        .map(|c| {
            let by_id = globs.iter().any(|g| id_matches(g, c));
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
            if let Some(&j) = index.get(d.as_str())
                && !selected[j]
            {
                selected[j] = true;
                stack.push(j);
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

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::kind::{Key, Kind, Ty};
    use crate::profile::{Location, Prop, Severity, Value};
    use crate::target::{Accounts, DirEntry, Metadata, Need, TargetKind, WalkEntry, WalkOptions};

    /// A target with nothing in it; `live` says whether it is a booted node.
    struct Empty {
        live: bool,
        accounts: Accounts,
        /// What the runner said it will need.
        told: std::sync::Mutex<Vec<Need>>,
    }

    impl Target for Empty {
        fn kind(&self) -> TargetKind {
            if self.live {
                TargetKind::Live
            } else {
                TargetKind::Rootfs
            }
        }
        fn describe(&self) -> String {
            "empty".into()
        }
        fn has(&self, need: Need) -> bool {
            self.live && need == Need::Live
        }
        fn metadata(&self, _: &str, _: bool) -> io::Result<Metadata> {
            Err(io::ErrorKind::NotFound.into())
        }
        fn read_link(&self, _: &str) -> io::Result<String> {
            Err(io::ErrorKind::NotFound.into())
        }
        fn canonicalize(&self, _: &str) -> io::Result<String> {
            Err(io::ErrorKind::NotFound.into())
        }
        fn read(&self, _: &str, _: u64) -> io::Result<Vec<u8>> {
            Err(io::ErrorKind::NotFound.into())
        }
        fn read_dir(&self, _: &str) -> io::Result<Vec<DirEntry>> {
            Err(io::ErrorKind::NotFound.into())
        }
        fn walk(
            &self,
            _: &str,
            _: &WalkOptions,
            _: &mut dyn FnMut(io::Result<WalkEntry>) -> bool,
        ) -> io::Result<()> {
            Ok(())
        }
        fn accounts(&self) -> &Accounts {
            &self.accounts
        }
        fn will_need(&self, need: Need) {
            self.told.lock().unwrap().push(need);
        }
    }

    /// Passes when its subject is "pass", fails on "fail", panics on
    /// "panic", takes 300 ms on "slow" and blocks on "hang".
    struct Probe;

    static RELEASE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    const KEYS: &[Key] = &[
        Key::new("ok", Ty::Bool, "asserted"),
        Key::new("loaded", Ty::Bool, "live only").needs(Need::Live),
        Key::new("runs", Ty::Bool, "runs a program").needs(Need::Exec),
    ];

    impl Kind for Probe {
        fn name(&self) -> &'static str {
            "probe"
        }
        fn subject(&self) -> Key {
            Key::new("name", Ty::Str, "what")
        }
        fn keys(&self) -> &'static [Key] {
            KEYS
        }
        fn doc(&self) -> &'static str {
            ""
        }
        fn eval(&self, check: &Check, _: &Context<'_>) -> Evaluation {
            let mut out = Vec::new();
            for p in &check.props {
                match check.subject.as_str() {
                    "panic" => panic!("probe exploded"),
                    "slow" => {
                        std::thread::sleep(Duration::from_millis(300));
                        out.push(PropertyResult::verdict(p.key, true, "slow"));
                    }
                    // Stuck like a stat on a hung NFS mount, until released
                    // (or, so no test leaks it for long, ten seconds).
                    "hang" => {
                        let start = Instant::now();
                        while !RELEASE.load(std::sync::atomic::Ordering::Relaxed)
                            && start.elapsed() < Duration::from_secs(10)
                        {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        out.push(PropertyResult::verdict(p.key, true, "released"));
                    }
                    // Busy for a while whatever other tests release.
                    "stuck" => {
                        std::thread::sleep(Duration::from_secs(3));
                        out.push(PropertyResult::verdict(p.key, true, "stuck"));
                    }
                    s => out.push(PropertyResult::verdict(p.key, s == "pass", s)),
                }
            }
            out.into()
        }
    }

    fn loc() -> Location {
        Location {
            file: Arc::new("t.toml".into()),
            line: 1,
            column: 1,
        }
    }

    fn check(subject: &str, keys: &[&'static str]) -> Check {
        Check {
            kind: &Probe,
            subject: subject.into(),
            props: keys
                .iter()
                .map(|k| Prop {
                    key: k,
                    value: Value::Bool(true),
                    location: loc(),
                })
                .collect(),
            location: loc(),
            timeout: None,
            only_if: None,
        }
    }

    fn control(id: &str, deps: &[&str], checks: Vec<Check>) -> Control {
        Control {
            id: id.into(),
            title: None,
            severity: Severity::Medium,
            tags: vec![],
            desc: None,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            targets: vec![],
            only_if: None,
            timeout: None,
            checks,
            location: loc(),
            waiver: None,
        }
    }

    fn profile(controls: Vec<Control>) -> Profile {
        Profile {
            name: "t".into(),
            title: None,
            version: None,
            file: "t.toml".into(),
            controls,
            warnings: vec![],
        }
    }

    fn empty(live: bool) -> Empty {
        Empty {
            live,
            accounts: Accounts::default(),
            told: Default::default(),
        }
    }

    fn run_on(p: &Profile, live: bool) -> Arc<Report> {
        run(p, &empty(live), &Options::default(), Vec::new()).report
    }

    #[test]
    fn the_target_is_told_before_the_checks_that_programs_will_run() {
        let p = profile(vec![
            control("static", &[], vec![check("pass", &["ok"])]),
            control("exec", &[], vec![check("pass", &["ok", "runs"])]),
        ]);
        let t = empty(false);
        run(&p, &t, &Options::default(), Vec::new());
        assert_eq!(*t.told.lock().unwrap(), [Need::Exec]);
        // Not when the checks that would run programs are not selected.
        let t = empty(false);
        let only_static = Options {
            controls: vec!["static".into()],
            ..Options::default()
        };
        run(&p, &t, &only_static, Vec::new());
        assert!(t.told.lock().unwrap().is_empty());
    }

    #[test]
    fn dependents_of_a_failure_are_skipped_with_the_reason() {
        let p = profile(vec![
            control("b", &["a"], vec![check("pass", &["ok"])]),
            control("a", &[], vec![check("fail", &["ok"])]),
            control("c", &["b"], vec![check("pass", &["ok"])]),
        ]);
        let r = run_on(&p, false);
        let status: Vec<Status> = r.controls.iter().map(|c| c.status).collect();
        assert_eq!(status, vec![Status::Skip, Status::Fail, Status::Skip]);
        assert_eq!(
            r.controls[0].skip_reason.as_deref(),
            Some("depends on `a`, which failed")
        );
        assert_eq!(
            r.controls[2].skip_reason.as_deref(),
            Some("depends on `b`, which was skipped")
        );
        assert_eq!(r.summary.checks.skipped, 2);
    }

    #[test]
    fn a_panicking_check_is_an_error_and_the_run_goes_on() {
        let p = profile(vec![control(
            "a",
            &[],
            vec![check("panic", &["ok"]), check("pass", &["ok"])],
        )]);
        let r = run_on(&p, false);
        let c = &r.controls[0];
        assert_eq!(c.checks[0].status, Status::Error);
        assert!(c.checks[0].properties[0].message.contains("probe exploded"));
        assert_eq!(c.checks[1].status, Status::Pass);
        assert_eq!(c.status, Status::Error);
        assert!(r.failed(Severity::Low));
    }

    #[test]
    fn live_only_properties_are_skipped_by_the_runner() {
        let p = profile(vec![
            control("a", &[], vec![check("pass", &["loaded"])]),
            control("b", &[], vec![check("pass", &["ok", "loaded"])]),
        ]);
        let r = run_on(&p, false);
        assert_eq!(r.controls[0].status, Status::Skip);
        assert_eq!(
            r.controls[0].checks[0].properties[0].message,
            "needs a live node"
        );
        assert_eq!(r.controls[1].status, Status::Pass);
        let r = run_on(&p, true);
        assert_eq!(r.controls[0].status, Status::Pass);
    }

    #[test]
    fn targets_limit_where_a_control_runs() {
        let mut c = control("a", &[], vec![check("fail", &["ok"])]);
        c.targets = vec![TargetKind::Live];
        let r = run_on(&profile(vec![c]), false);
        assert_eq!(r.controls[0].status, Status::Skip);
        assert_eq!(
            r.controls[0].skip_reason.as_deref(),
            Some("runs only on live targets, this is a rootfs target")
        );
        assert!(!r.failed(Severity::Info));
    }

    #[test]
    fn waived_failures_do_not_fail_the_run_and_fail_on_filters_severity() {
        let mut a = control("a", &[], vec![check("fail", &["ok"])]);
        a.severity = Severity::Low;
        let r = run_on(&profile(vec![a.clone()]), false);
        assert!(r.failed(Severity::Low));
        assert!(!r.failed(Severity::High));
        a.waiver = Some(crate::profile::Waiver {
            control: "a".into(),
            reason: "known".into(),
            expires: None,
            location: None,
        });
        let r = run_on(&profile(vec![a]), false);
        assert!(!r.failed(Severity::Info));
        assert_eq!(r.summary.checks.waived, 1);
        assert_eq!(r.summary.checks.skipped, 1);
    }

    #[test]
    fn a_stuck_check_is_cut_at_the_budget_and_named() {
        let p = profile(vec![
            control("a", &[], vec![check("pass", &["ok"])]),
            control("b", &[], vec![check("hang", &["ok"])]),
            control("c", &["b"], vec![check("pass", &["ok"])]),
        ]);
        let t: Arc<dyn Target> = Arc::new(empty(true));
        let o = Options {
            budget: Some(Duration::from_millis(200)),
            ..Default::default()
        };
        let clock = Instant::now();
        let r = run_shared(&p, t, &o, Vec::new()).report;
        // Returned at the deadline, with the stuck thread still blocked.
        assert!(
            clock.elapsed() < Duration::from_secs(5),
            "{:?}",
            clock.elapsed()
        );
        let status: Vec<Status> = r.controls.iter().map(|c| c.status).collect();
        assert_eq!(status, vec![Status::Pass, Status::Error, Status::Skip]);
        let stuck = &r.controls[1].checks[0];
        assert_eq!(stuck.name, "probe hang");
        assert_eq!(
            stuck.properties[0].message,
            "did not finish within the 200ms budget"
        );
        assert_eq!(
            r.controls[2].skip_reason.as_deref(),
            Some("depends on `b`, which errored")
        );
        RELEASE.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    #[test]
    fn a_borrowed_target_reports_late_checks_as_over_budget() {
        let p = profile(vec![
            control("a", &[], vec![check("pass", &["ok"])]),
            control("b", &[], vec![check("slow", &["ok"])]),
        ]);
        let t = empty(false);
        let o = Options {
            budget: Some(Duration::from_millis(100)),
            ..Default::default()
        };
        let r = run(&p, &t, &o, Vec::new()).report;
        assert_eq!(r.controls[0].status, Status::Pass);
        assert_eq!(r.controls[1].status, Status::Error);
        assert_eq!(
            r.controls[1].checks[0].properties[0].message,
            "did not finish within the 100ms budget"
        );
        // Without a budget the same check passes.
        let r = run(&p, &t, &Options::default(), Vec::new()).report;
        assert_eq!(r.controls[1].status, Status::Pass);
    }

    #[test]
    fn selection_pulls_in_dependencies_and_names_are_unique() {
        let mut a = control(
            "a",
            &[],
            vec![check("pass", &["ok"]), check("pass", &["ok"])],
        );
        a.tags = vec!["x".into()];
        let p = profile(vec![
            a,
            control("b", &["a"], vec![check("pass", &["ok"])]),
            control("c", &[], vec![check("pass", &["ok"])]),
        ]);
        let t = empty(false);
        let o = Options {
            controls: vec!["b".into()],
            ..Default::default()
        };
        let r = run(&p, &t, &o, Vec::new()).report;
        let ids: Vec<&str> = r.controls.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, vec!["a", "b"]);
        assert_eq!(r.controls[0].checks[1].name, "probe pass #2");
        let o = Options {
            tags: vec!["x".into()],
            jobs: Some(1),
            ..Default::default()
        };
        let r = run(&p, &t, &o, Vec::new()).report;
        assert_eq!(r.controls.len(), 1);
    }

    /// Collects the events of a run.
    struct Events(Arc<std::sync::Mutex<Vec<Event>>>);

    impl Reporter for Events {
        fn event(&mut self, e: &Event) -> io::Result<()> {
            self.0.lock().unwrap().push(e.clone());
            Ok(())
        }
    }

    #[test]
    fn each_control_settles_once_and_as_soon_as_it_ends() {
        let p = profile(vec![
            control("slow", &[], vec![check("slow", &["ok"])]),
            control("fast", &[], vec![check("pass", &["ok"])]),
            control("dep", &["fast"], vec![check("fail", &["ok"])]),
            control("skipped", &["dep"], vec![check("pass", &["ok"])]),
        ]);
        for shared in [false, true] {
            let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
            let reporters: Vec<Box<dyn Reporter>> = vec![Box::new(Events(seen.clone()))];
            let t = empty(false);
            static NEVER: AtomicBool = AtomicBool::new(false);
            let o = Options {
                interrupt: Some(&NEVER),
                ..Default::default()
            };
            let r = if shared {
                run_shared(&p, Arc::new(t), &o, reporters).report
            } else {
                run(&p, &t, &Options::default(), reporters).report
            };
            let events = seen.lock().unwrap();
            assert!(matches!(&events[0], Event::Started { profile, .. } if profile.name == "t"));
            let settled: Vec<usize> = events
                .iter()
                .filter_map(|e| match e {
                    Event::ControlFinished { index, result } => {
                        assert_eq!(result.status, r.controls[*index].status);
                        Some(*index)
                    }
                    _ => None,
                })
                .collect();
            let mut sorted = settled.clone();
            sorted.sort();
            assert_eq!(sorted, [0, 1, 2, 3], "once each");
            if shared {
                // The detached runner tells of `fast` before `slow` ends.
                let pos = |i| settled.iter().position(|&x| x == i).unwrap();
                assert!(pos(1) < pos(0), "{settled:?}");
            }
            assert!(matches!(events.last(), Some(Event::Finished(_))));
        }
    }

    #[test]
    fn an_interrupt_stops_the_run_and_reports_unfinished_checks() {
        static STOP: AtomicBool = AtomicBool::new(false);
        let p = profile(vec![
            control("a", &[], vec![check("pass", &["ok"])]),
            control("b", &[], vec![check("stuck", &["ok"])]),
            control("c", &["b"], vec![check("pass", &["ok"])]),
        ]);
        let t: Arc<dyn Target> = Arc::new(empty(true));
        let o = Options {
            interrupt: Some(&STOP),
            ..Default::default()
        };
        let stopper = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            STOP.store(true, Ordering::Relaxed);
        });
        let clock = Instant::now();
        let r = run_shared(&p, t, &o, Vec::new()).report;
        stopper.join().unwrap();
        // Returned soon after the interrupt, the stuck check abandoned.
        assert!(
            clock.elapsed() < Duration::from_secs(2),
            "{:?}",
            clock.elapsed()
        );
        let status: Vec<Status> = r.controls.iter().map(|c| c.status).collect();
        assert_eq!(status, vec![Status::Pass, Status::Error, Status::Error]);
        for c in &r.controls[1..] {
            assert_eq!(c.checks[0].properties[0].message, "interrupted", "{}", c.id);
        }
        // An interrupt before the run starts nothing.
        let t = empty(true);
        let r = run(&p, &t, &o, Vec::new()).report;
        assert!(r.controls.iter().all(|c| c.status == Status::Error));
        assert_eq!(r.evaluated(), 3);
    }

    #[test]
    fn selectors_that_match_nothing_are_named() {
        let mut a = control("compiler[cc=gcc]", &[], vec![check("pass", &["ok"])]);
        a.tags = vec!["toolchain".into()];
        let p = profile(vec![a]);
        let o = Options {
            tags: vec!["toolchain".into(), "nosuchtag".into()],
            controls: vec!["compiler".into(), "comp*".into(), "nosuch".into()],
            ..Default::default()
        };
        assert_eq!(
            unmatched_selectors(&p, &o),
            ["--tags nosuchtag", "--controls nosuch"]
        );
    }
}
