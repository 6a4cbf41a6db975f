//! How an `elf` check reports: one result per property, the goss rule for
//! a path that is not there, chains in the output, and for a tree the
//! libraries that only load whole where their programs load them.

use std::collections::{HashMap, HashSet};

use globset::GlobSet;
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Value};

use super::closure::{self, Problem, Question};
use super::scan::Outcome;
use crate::eval;

/// Every asserted property errors with `message`.
pub(super) fn errors(check: &Check, message: &str) -> Evaluation {
    eval::asserted(check, &[])
        .map(|p| PropertyResult::error(p.key, format!("{}: {message}", p.key)))
        .collect::<Vec<_>>()
        .into()
}

/// The first asserted property fails with `reason`, the others skip.
pub(super) fn missing(check: &Check, reason: &str) -> Evaluation {
    let mut props = eval::asserted(check, &[]);
    let mut out = Vec::new();
    if let Some(p) = props.next() {
        out.push(PropertyResult::verdict(
            p.key,
            false,
            format!("{}: {reason}", p.key),
        ));
    }
    out.extend(props.map(|p| PropertyResult::skip(p.key, reason)));
    out.into()
}

/// The properties, in the order the profile wrote them.
fn properties(check: &Check) -> impl Iterator<Item = (&'static str, bool)> + '_ {
    eval::asserted(check, &[]).filter_map(|p| match (&p.value, p.key) {
        (Value::Bool(b), k @ ("resolves" | "symbol_versions" | "symbols")) => Some((k, *b)),
        _ => None,
    })
}

/// What a property asks about.
fn question(key: &str) -> Question {
    match key {
        "resolves" => Question::Libraries,
        "symbol_versions" => Question::Versions,
        _ => Question::Symbols,
    }
}

/// The problems of one load for `key`, without ignored sonames.
fn problems<'a>(
    load: &'a closure::Load,
    key: &str,
    ignore: &'a GlobSet,
) -> impl Iterator<Item = &'a Problem> + 'a {
    let list = match question(key) {
        Question::Libraries => &load.missing,
        Question::Versions => &load.versions,
        Question::Symbols => &load.symbols,
    };
    list.iter().filter(|p| !ignore.is_match(p.soname()))
}

pub(super) fn single(
    check: &Check,
    subject: &str,
    file: &str,
    outcome: Outcome,
    ignore: &GlobSet,
    out: &mut Evaluation,
) {
    let shown = if subject == file {
        file.to_string()
    } else {
        format!("{subject} (= {file})")
    };
    let load = match outcome {
        Outcome::Error(e) => {
            *out = errors(check, &e);
            return;
        }
        Outcome::Skipped(why) => {
            *out = missing(check, &format!("{shown} is {why}"));
            return;
        }
        Outcome::Static => closure::Load::default(),
        Outcome::Loaded(load) => load,
    };
    for (key, expected) in properties(check) {
        let found: Vec<String> = problems(&load, key, ignore)
            .map(|p| p.to_string())
            .collect();
        let ok = found.is_empty() == expected;
        let message = match (found.is_empty(), key) {
            (true, "resolves") if load.loaded.is_empty() => {
                format!("{key}: {shown} needs no library")
            }
            (true, "resolves") => format!(
                "{key}: {shown} finds all {} libraries it needs",
                load.loaded.len()
            ),
            (true, "symbol_versions") => format!("{key}: every version {shown} needs is defined"),
            (true, _) => format!("{key}: every symbol {shown} and its libraries use is defined"),
            (false, _) => format!("{key}: {}", eval::capped(&found)),
        };
        if !found.is_empty() {
            crate::eval::section(&mut out.output, key, &found);
        }
        out.push(
            PropertyResult::verdict(key, ok, message)
                .with_expected(expected.to_string())
                .with_actual(found.is_empty().to_string()),
        );
    }
    if !load.loaded.is_empty() {
        crate::eval::section(
            &mut out.output,
            &format!("libraries of {file}"),
            &load.loaded,
        );
    }
}

pub(super) fn tree(
    check: &Check,
    subject: &str,
    files: &[String],
    outcomes: Vec<Outcome>,
    mut unreadable: Vec<String>,
    ignore: &GlobSet,
    out: &mut Evaluation,
) {
    let mut checked = 0usize;
    // Each load with the index of its file.
    let mut loads: Vec<(usize, closure::Load)> = Vec::new();
    for (file, o) in (0..files.len()).zip(outcomes) {
        match o {
            Outcome::Skipped(_) => {}
            Outcome::Error(e) => unreadable.push(e),
            Outcome::Static => checked += 1,
            Outcome::Loaded(l) => {
                checked += 1;
                loads.push((file, l));
            }
        }
    }
    // Which loads hold each file as a library: a private library that
    // misses something alone (systemd's libsystemd-core, found next to its
    // program through the program's RUNPATH) is fine where it is used.
    // Asked only of files with a problem, so only those are mapped.
    let troubled: HashSet<(u64, u64)> = loads
        .iter()
        .filter(|(_, load)| {
            properties(check).any(|(key, _)| problems(load, key, ignore).next().is_some())
        })
        .filter_map(|(_, load)| load.objects.first().copied())
        .collect();
    let mut users: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
    if !troubled.is_empty() {
        for (i, (_, load)) in loads.iter().enumerate() {
            for id in load.objects.iter().skip(1) {
                if troubled.contains(id) {
                    users.entry(*id).or_default().push(i);
                }
            }
        }
    }
    for (key, expected) in properties(check) {
        let mut bad_files = Vec::new();
        let mut lines = Vec::new();
        let mut in_context = Vec::new();
        for (i, load) in &loads {
            let file = &files[*i];
            let mut names: Vec<&str> = Vec::new();
            for p in problems(load, key, ignore) {
                if !names.contains(&p.soname()) {
                    names.push(p.soname());
                }
            }
            if names.is_empty() {
                continue;
            }
            // Another load that holds this file and in which nothing it
            // needs, directly or not, failed.
            let me = load.objects.first();
            let q = question(key);
            let user = me.and_then(|me| users.get(me)).and_then(|ls| {
                ls.iter().copied().find(|&g| {
                    let other = &loads[g].1;
                    other
                        .objects
                        .iter()
                        .position(|id| Some(id) == me)
                        .is_some_and(|i| other.whole_from(i, q))
                })
            });
            match user {
                Some(g) => in_context.extend(
                    problems(load, key, ignore)
                        .map(|p| format!("{p} [resolves where {} loads it]", files[loads[g].0])),
                ),
                None => {
                    lines.extend(problems(load, key, ignore).map(|p| p.to_string()));
                    bad_files.push(format!("{file} ({})", names.join(", ")));
                }
            }
        }
        let (what, fine) = match question(key) {
            Question::Libraries => ("miss libraries", "find all their libraries"),
            Question::Versions => (
                "need versions their libraries lack",
                "find every version they need",
            ),
            Question::Symbols => (
                "use symbols nothing they load defines",
                "find every symbol they use",
            ),
        };
        let n = bad_files.len();
        let r = if n > 0 {
            crate::eval::section(
                &mut out.output,
                &format!("{key}: {n} of {checked} ELF files under {subject} {what}"),
                &lines,
            );
            PropertyResult::verdict(
                key,
                !expected,
                format!(
                    "{key}: {n} of {checked} ELF files under {subject} {what}: {}",
                    eval::capped(&bad_files)
                ),
            )
        } else if !unreadable.is_empty() {
            PropertyResult::error(
                key,
                format!(
                    "{key}: {} file{} under {subject} could not be checked: {}",
                    unreadable.len(),
                    if unreadable.len() == 1 { "" } else { "s" },
                    eval::capped(&unreadable)
                ),
            )
        } else {
            let note = match in_context.len() {
                0 => String::new(),
                k => format!(" ({k} only where their programs load them, see the output)"),
            };
            PropertyResult::verdict(
                key,
                expected,
                format!("{key}: all {checked} ELF files under {subject} {fine}{note}"),
            )
        };
        if !in_context.is_empty() {
            crate::eval::section(
                &mut out.output,
                &format!(
                    "{key}: libraries under {subject} that {what} when loaded alone, but not where their programs load them"
                ),
                &in_context,
            );
        }
        out.push(
            r.with_expected(expected.to_string())
                .with_actual((n == 0).to_string()),
        );
    }
    if !unreadable.is_empty() {
        crate::eval::section(
            &mut out.output,
            &format!("files under {subject} that could not be checked"),
            &unreadable,
        );
    }
    // Freeing 1,500 loads is half a millisecond the run need not wait
    // for: an idle worker does it.
    let loads: Vec<closure::Load> = loads.into_iter().map(|(_, l)| l).collect();
    rayon::spawn(move || drop(loads));
}
