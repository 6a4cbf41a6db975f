//! `module_system`: which environment-module system a login shell gets,
//! and that it offers, loads and reveals (hierarchy) the site's modules.

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::Actual;
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::run::Context;
use nodecheck_core::target::{ExecOutput, ExecRequest, Need};

use crate::eval;
use crate::exec::{self, quote};

pub struct ModuleSystem;

const SYSTEMS: &[&str] = &["lmod", "environment-modules"];

const KEYS: &[Key] = &[
    Key::new(
        "version",
        Ty::Matcher(Compare::Version),
        "Version of the module system found: `{ ge = \"8.6\" }`.",
    ),
    Key::new(
        "avail",
        Ty::StrList,
        "Modules `module avail` must offer: a name (`gcc`: any version) or name/version \
         (`gcc/12`).",
    ),
    Key::new(
        "load",
        Ty::StrList,
        "Modules loaded one after the other in one login shell, then unloaded in reverse: each \
         `module load` / `module unload` must succeed and change `LOADEDMODULES` accordingly.",
    ),
    Key::new(
        "hierarchy",
        Ty::StrMap,
        "Loading the key reveals the value: `{ \"gcc/12\" = \"openmpi\" }` — `openmpi` is not \
         offered before `gcc/12` is loaded and is offered after (several: comma-separated).",
    ),
    Key::new(
        "tree",
        Ty::Bool,
        "`true`: walk the whole module tree: every module `module avail` offers, and every \
         module loading one of them reveals (Lmod's hierarchy), loads with status 0 and no error \
         output, and every `MODULEPATH` directory a module adds exists. `false` is refused.",
    ),
    exec::ENV,
    exec::LIMITS,
];

/// The most modules the `tree` walk loads, and how deep it follows a
/// hierarchy (Core → compiler → MPI → …).
const WALK_LIMIT: usize = 2000;
const WALK_DEPTH: usize = 5;

const DOC: &str = r#"## What it checks

The environment-module system of the target as a user meets it: a login
shell is started (`bash -l`, or `sh -l` without bash) so that
`/etc/profile.d` sets it up, and the `module` command is asked who it is.
Lmod and environment-modules are told apart by what `module --version`
answers ("Modules based on Lua: Version 8.6.19" against "Modules Release
5.2.0") and the variables each sets (`LMOD_CMD`, `MODULES_CMD`) — never by
a file name, since both can ship `/usr/share/modules` or a `modules.sh`.
`kind` fails naming what was found instead ("expected lmod, got
environment-modules 5.2.0"), or "no module command" when a login shell has
none; then the other properties are skipped. The shell runs as root with
`LMOD_ALLOW_ROOT_USE=yes`, so that Lmod's stock profile script sets up for
root what it sets up for users.

- `avail`: each listed module is offered by `module -t avail`.
- `load`: the modules are loaded in order in one shell (a compiler, then the
  MPI built with it); each `module load` must succeed and leave the module
  in `LOADEDMODULES`; then they are unloaded, last first, and must leave
  it. A failure shows the module system's own message.
- `tree`: the whole tree, with no module named in the profile: each
  module `module -t avail` offers is loaded in a fresh subshell of the login
  shell; it must return 0 and print nothing with "error" in it, and every
  directory it adds to `MODULEPATH` must exist in the target. What loading it
  reveals (a compiler's MPI modules) is walked the same way, with the
  modules that led there loaded first, up to 5 levels and 2000 modules. A
  failure names each module and what went wrong (`Core/gcc/12 adds
  MODULEPATH /opt/modulefiles/Compiler/gcc/12, which does not exist`): a
  hierarchy out of step with its Core modulefiles.
- `hierarchy`: for each `compiler = "mpi"` pair, in a fresh shell, the MPI
  module is not offered before the compiler module is loaded, and is offered
  after — Lmod's software hierarchy, where `Core/gcc/12.lua` prepends the
  compiler's own module directory to `MODULEPATH`.

## Example

```toml
[[control]]
id = "lmod"
title = "Lmod (not environment-modules) with the compiler hierarchy intact"

  [[control.module_system]]
  kind      = "lmod"
  version   = { ge = "8.6" }
  avail     = ["gcc/12"]
  load      = ["gcc/12", "openmpi/4"]
  hierarchy = { "gcc/12" = "openmpi/4" }
```

## Targets

rootfs (sandbox), container and live, as `command`.
"#;

impl Kind for ModuleSystem {
    fn name(&self) -> &'static str {
        "module_system"
    }

    fn subject(&self) -> Key {
        Key::new(
            "kind",
            Ty::Str,
            "The module system a login shell must get: `lmod` or `environment-modules`.",
        )
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn needs(&self) -> Option<Need> {
        Some(Need::Exec)
    }

    fn subject_asserts(&self) -> bool {
        true
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn validate(&self, check: &Check) -> Vec<Diagnostic> {
        let mut d = Vec::new();
        if !SYSTEMS.contains(&check.subject.as_str()) {
            d.push(
                Diagnostic::error(
                    "bad-value",
                    format!(
                        "unknown module system {:?}; expected one of {}",
                        check.subject,
                        SYSTEMS.join(", ")
                    ),
                )
                .at(check.location.clone()),
            );
        }
        if check.bool("tree") == Some(false) {
            d.push(eval::diagnostic(
                check,
                "tree",
                "bad-value",
                "`tree = false` asserts nothing; write `tree = true` to walk the module tree"
                    .to_string(),
            ));
        }
        if let Some(h) = check.map("hierarchy")
            && let Some((k, _)) = h.iter().find(|(k, v)| k.is_empty() || names(v).is_empty())
        {
            d.push(eval::diagnostic(
                check,
                "hierarchy",
                "bad-value",
                format!(
                    "`hierarchy` entry {k:?} needs a module to load and the modules it reveals"
                ),
            ));
        }
        d
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let script = build_script(check);
        let shell = exec::login_shell(cx.target);
        let mut req = ExecRequest::new(exec::argv(&format!("{shell} -c"), true, &script));
        req.env = exec::env_of(check);
        let out = match exec::run(check, cx, req, "kind") {
            Ok(out) => out,
            Err(e) => {
                let mut v = vec![e];
                v.extend(eval::skip_rest(
                    check,
                    &[],
                    "the login shell could not be run",
                ));
                return v.into();
            }
        };
        let mut e = Evaluation {
            properties: properties(check, &out),
            output: exec::transcript(
                &format!("{shell} -l: module --version, avail, load"),
                &out,
                check,
            ),
        };
        if check.bool("tree") == Some(true) {
            let stdout = out.stdout.text();
            let steps = exec::steps(&stdout);
            if exec::step(&steps, "none").is_some() || out.timed_out {
                // `kind` already failed and skipped the rest.
            } else {
                let avail = exec::step(&steps, "avail")
                    .map(|s| avail_names(&s.text))
                    .unwrap_or_default();
                let r = walk(check, cx, shell, avail, &mut e.output);
                e.properties.push(r);
            }
        }
        e
    }
}

/// `tree`: loads every module of the tree, level by level (one login shell
/// per level, a subshell per module), and checks what each adds to
/// `MODULEPATH`.
fn walk(
    check: &Check,
    cx: &Context<'_>,
    shell: &str,
    top: Vec<String>,
    output: &mut String,
) -> PropertyResult {
    let mut seen: std::collections::BTreeSet<String> = top.iter().cloned().collect();
    let mut level: Vec<Vec<String>> = top.into_iter().map(|m| vec![m]).collect();
    let mut problems: Vec<String> = Vec::new();
    let mut loaded = 0usize;
    let mut truncated = false;
    for depth in 0..WALK_DEPTH {
        if level.is_empty() {
            break;
        }
        if loaded + level.len() > WALK_LIMIT {
            level.truncate(WALK_LIMIT.saturating_sub(loaded));
            truncated = true;
        }
        let mut script = String::from("echo \"@@nodecheck:base ${MODULEPATH:-}\"\n");
        for chain in &level {
            let (last, before) = chain.split_last().expect("chains are never empty");
            let pre: String = before
                .iter()
                .map(|m| format!("module load {} >/dev/null 2>&1; ", quote(m)))
                .collect();
            script.push_str(&format!(
                "( echo '@@nodecheck:walk {name}'; {pre}module load {q} 2>&1; echo \"@@nodecheck:status $?\"; \
                 echo \"@@nodecheck:mpath ${{MODULEPATH:-}}\"; echo '@@nodecheck:after'; module -t avail 2>&1 )\n",
                name = last.replace('\'', ""),
                q = quote(last),
            ));
        }
        let mut req = ExecRequest::new(exec::argv(&format!("{shell} -c"), true, &script));
        req.env = exec::env_of(check);
        let out = match exec::run(check, cx, req, "tree") {
            Ok(o) => o,
            Err(e) => return e,
        };
        output.push_str(&exec::transcript(
            &format!("tree, level {}: {} module(s)", depth + 1, level.len()),
            &out,
            check,
        ));
        if out.timed_out {
            return PropertyResult::error(
                "tree",
                format!(
                    "tree: the walk did not finish within {} (level {}, {loaded} modules loaded); raise the control's `timeout`",
                    exec::ended(&out, check),
                    depth + 1
                ),
            );
        }
        let stdout = out.stdout.text();
        let steps = exec::steps(&stdout);
        let base: Vec<String> = exec::step(&steps, "base")
            .map(|s| {
                s.arg
                    .split(':')
                    .filter(|d| !d.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let mut next = Vec::new();
        for chain in &level {
            loaded += 1;
            let last = chain.last().expect("chains are never empty");
            let shown = chain.join(" → ");
            let name = last.replace('\'', "");
            let Some(at) = steps.iter().position(|s| s.name == "walk" && s.arg == name) else {
                problems.push(format!("{shown}: not tried (the shell ended early)"));
                continue;
            };
            let said = &steps[at].text;
            let status = steps
                .get(at + 1)
                .filter(|s| s.name == "status")
                .map(|s| s.arg.trim().to_string());
            if status.as_deref() != Some("0") || said.to_ascii_lowercase().contains("error") {
                problems.push(format!(
                    "{shown}: module load failed (status {}){}",
                    status.as_deref().unwrap_or("unknown"),
                    colon(&exec::excerpt(said))
                ));
                continue;
            }
            let mpath = steps
                .get(at + 2)
                .filter(|s| s.name == "mpath")
                .map(|s| s.arg.clone())
                .unwrap_or_default();
            for dir in mpath.split(':').filter(|d| !d.is_empty()) {
                if base.iter().any(|b| b == dir) {
                    continue;
                }
                match cx.target.metadata(dir, true) {
                    Ok(m) if m.file_type == nodecheck_core::target::FileType::Directory => {}
                    Ok(m) => problems.push(format!(
                        "{shown} adds MODULEPATH {dir}, which is a {} and not a directory",
                        m.file_type
                    )),
                    Err(e) if eval::is_absent(&e) => problems.push(format!(
                        "{shown} adds MODULEPATH {dir}, which does not exist"
                    )),
                    Err(e) => problems.push(format!(
                        "{shown} adds MODULEPATH {dir}, which cannot be looked at: {}",
                        eval::io_text(&e)
                    )),
                }
            }
            let after = steps
                .get(at + 3)
                .filter(|s| s.name == "after")
                .map(|s| avail_names(&s.text))
                .unwrap_or_default();
            for m in after {
                if seen.insert(m.clone()) {
                    let mut c = chain.clone();
                    c.push(m);
                    next.push(c);
                }
            }
        }
        level = next;
    }
    if !level.is_empty() {
        truncated = true;
    }
    let note = if truncated {
        format!(" (the walk stopped at {WALK_DEPTH} levels or {WALK_LIMIT} modules)")
    } else {
        String::new()
    };
    if problems.is_empty() {
        PropertyResult::verdict(
            "tree",
            true,
            format!(
                "tree: {loaded} module{} load cleanly and add only existing MODULEPATH directories{note}",
                if loaded == 1 { "" } else { "s" }
            ),
        )
    } else {
        eval::section(output, "tree: problems", &problems);
        PropertyResult::verdict(
            "tree",
            false,
            format!(
                "tree: {} problem{} in {loaded} modules: {}{note}",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                eval::capped(&problems)
            ),
        )
    }
}

/// Module names in a `hierarchy` value: comma- or space-separated.
fn names(v: &str) -> Vec<String> {
    v.split([',', ' ', '\t'])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// One login shell: who `module` is, what it offers, then each hierarchy
/// pair in a subshell (so each starts from the login state), then the
/// `load` sequence. Every part is announced by a marker on stdout.
fn build_script(check: &Check) -> String {
    let mut s = String::from(
        "if ! type module >/dev/null 2>&1; then echo '@@nodecheck:none'; exit 0; fi\n\
         echo '@@nodecheck:type'; type module 2>&1 | head -n 1\n\
         echo '@@nodecheck:version'; module --version 2>&1\n\
         echo \"@@nodecheck:vars LMOD_VERSION=${LMOD_VERSION:-} LMOD_CMD=${LMOD_CMD:-} MODULES_CMD=${MODULES_CMD:-}\"\n\
         echo '@@nodecheck:avail'; module -t avail 2>&1\n",
    );
    if let Some(h) = check.map("hierarchy") {
        for k in h.keys() {
            let q = quote(k);
            s.push_str(&format!(
                "( echo '@@nodecheck:hier {k}'; module load {q} 2>&1; echo \"@@nodecheck:status $?\"; \
                 echo '@@nodecheck:after'; module -t avail 2>&1 )\n",
                k = k.replace('\'', "")
            ));
        }
    }
    let loads = check.list("load").unwrap_or(&[]);
    for m in loads {
        s.push_str(&format!(
            "echo '@@nodecheck:load {name}'; module load {q} 2>&1; echo \"@@nodecheck:status $?\"; \
             echo \"@@nodecheck:loaded ${{LOADEDMODULES:-}}\"\n",
            name = m.replace('\'', ""),
            q = quote(m),
        ));
    }
    // Then unload them, last first.
    for m in loads.iter().rev() {
        s.push_str(&format!(
            "echo '@@nodecheck:unload {name}'; module unload {q} 2>&1; echo \"@@nodecheck:status $?\"; \
             echo \"@@nodecheck:loaded ${{LOADEDMODULES:-}}\"\n",
            name = m.replace('\'', ""),
            q = quote(m),
        ));
    }
    s
}

/// The module system found.
#[derive(Debug, PartialEq)]
struct Found {
    /// `lmod`, `environment-modules`, or `None`: a `module` of unknown make.
    kind: Option<&'static str>,
    version: Option<String>,
    /// What `module --version` said first, for messages.
    said: String,
}

fn detect(version_text: &str, vars: &str) -> Found {
    let var = |name: &str| {
        vars.split(' ')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let word_after = |marker: &str| {
        version_text.find(marker).and_then(|at| {
            version_text[at + marker.len()..]
                .split_whitespace()
                .next()
                .map(str::to_string)
        })
    };
    let said = version_text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string();
    if version_text.contains("Modules based on Lua") || var("LMOD_CMD").is_some() {
        let version = word_after("Version ").or_else(|| var("LMOD_VERSION"));
        return Found {
            kind: Some("lmod"),
            version,
            said,
        };
    }
    if version_text.contains("Modules Release") || var("MODULES_CMD").is_some() {
        return Found {
            kind: Some("environment-modules"),
            version: word_after("Modules Release "),
            said,
        };
    }
    // environment-modules 3.2 (the C version) prints VERSION=3.2.10.
    if let Some(v) = word_after("VERSION=") {
        return Found {
            kind: Some("environment-modules"),
            version: Some(v),
            said,
        };
    }
    Found {
        kind: None,
        version: None,
        said,
    }
}

impl Found {
    fn describe(&self) -> String {
        match (self.kind, &self.version) {
            (Some(k), Some(v)) => format!("{k} {v}"),
            (Some(k), None) => k.to_string(),
            (None, _) if self.said.is_empty() => "a module command of unknown make".to_string(),
            (None, _) => format!("a module command of unknown make ({:?})", self.said),
        }
    }
}

/// Module names from `module -t avail`: directory headers (`path:`),
/// directory entries (`Core/`) and markers (`(default)`) left out.
fn avail_names(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.ends_with(':')
                && !l.ends_with('/')
                && !l.contains(char::is_whitespace)
        })
        .map(|l| match l.find('(') {
            Some(at) if l.ends_with(')') => l[..at].to_string(),
            _ => l.to_string(),
        })
        .collect()
}

/// `gcc` is offered by `gcc` or `gcc/12.2`; `gcc/12` by `gcc/12` or
/// `gcc/12.2`... only on a version boundary (`gcc/12` is not `gcc/120`).
fn offers(names: &[String], want: &str) -> bool {
    names.iter().any(|n| {
        n == want
            || n.strip_prefix(want).is_some_and(|rest| {
                rest.starts_with('/') || (want.contains('/') && rest.starts_with('.'))
            })
    })
}

fn properties(check: &Check, out: &ExecOutput) -> Vec<PropertyResult> {
    if out.timed_out {
        return exec::timed_out(check, "kind", out, "the login shell");
    }
    let stdout = out.stdout.text();
    let steps = exec::steps(&stdout);
    let want = check.subject.as_str();
    if exec::step(&steps, "none").is_some() {
        let mut v = vec![
            PropertyResult::verdict(
                "kind",
                false,
                format!(
                    "kind: expected {want}, but a login shell has no module command (neither Lmod nor \
                     environment-modules is set up by /etc/profile.d){}",
                    colon(&exec::excerpt(&out.stderr.text()))
                ),
            )
            .with_expected(want)
            .with_actual("none"),
        ];
        v.extend(eval::skip_rest(check, &[], "there is no module command"));
        return v;
    }
    let text = |name: &str| {
        exec::step(&steps, name)
            .map(|s| s.text.clone())
            .unwrap_or_default()
    };
    let vars = exec::step(&steps, "vars")
        .map(|s| s.arg.clone())
        .unwrap_or_default();
    let found = detect(&text("version"), &vars);
    let mut v = vec![PropertyResult::compare(
        "kind",
        found.kind == Some(want),
        want,
        found.describe(),
    )];
    if let Some(m) = check.matcher("version") {
        v.push(match &found.version {
            Some(ver) => eval::matched("version", m, Actual::Str(ver), ver.clone()),
            None => PropertyResult::error(
                "version",
                format!(
                    "version: cannot tell the version of {} from `module --version`",
                    found.describe()
                ),
            ),
        });
    }
    let before = avail_names(&text("avail"));
    if let Some(wanted) = check.list("avail") {
        let missing: Vec<String> = wanted
            .iter()
            .filter(|w| !offers(&before, w))
            .cloned()
            .collect();
        v.push(if missing.is_empty() {
            PropertyResult::verdict(
                "avail",
                true,
                format!("avail: module avail offers {}", wanted.join(", ")),
            )
        } else {
            PropertyResult::verdict(
                "avail",
                false,
                format!(
                    "avail: module avail does not offer {} (it offers {})",
                    eval::capped(&missing),
                    if before.is_empty() {
                        "nothing".to_string()
                    } else {
                        eval::capped(&before)
                    }
                ),
            )
            .with_expected(wanted.join(", "))
            .with_actual(before.join(", "))
        });
    }
    if let Some(h) = check.map("hierarchy") {
        v.push(hierarchy(h, &steps, &before));
    }
    if let Some(loads) = check.list("load") {
        v.push(load(loads, &steps));
    }
    v
}

fn hierarchy(
    pairs: &std::collections::BTreeMap<String, String>,
    steps: &[exec::Step],
    before: &[String],
) -> PropertyResult {
    let mut problems = Vec::new();
    let mut shown = Vec::new();
    for (parent, children) in pairs {
        let children = names(children);
        let at = steps
            .iter()
            .position(|s| s.name == "hier" && s.arg == parent.replace('\'', ""));
        let Some(at) = at else {
            problems.push(format!(
                "loading {parent} was not tried (the shell ended early)"
            ));
            continue;
        };
        let loaded_text = &steps[at].text;
        let status = steps
            .get(at + 1)
            .filter(|s| s.name == "status")
            .map(|s| s.arg.trim().to_string());
        if status.as_deref() != Some("0") {
            problems.push(format!(
                "module load {parent} failed{}",
                colon(&exec::excerpt(loaded_text))
            ));
            continue;
        }
        let after = steps
            .get(at + 2)
            .filter(|s| s.name == "after")
            .map(|s| avail_names(&s.text))
            .unwrap_or_default();
        for c in &children {
            if offers(before, c) {
                problems.push(format!(
                    "{c} is offered before {parent} is loaded (a flat tree, not a hierarchy)"
                ));
            } else if !offers(&after, c) {
                let new: Vec<String> = after
                    .iter()
                    .filter(|n| !before.contains(n))
                    .cloned()
                    .collect();
                problems.push(format!(
                    "loading {parent} does not reveal {c} (it reveals {})",
                    if new.is_empty() {
                        "nothing".to_string()
                    } else {
                        eval::capped(&new)
                    }
                ));
            } else {
                shown.push(format!("{parent} reveals {c}"));
            }
        }
    }
    if problems.is_empty() {
        PropertyResult::verdict(
            "hierarchy",
            true,
            format!("hierarchy: {}", shown.join(", ")),
        )
    } else {
        PropertyResult::verdict(
            "hierarchy",
            false,
            format!("hierarchy: {}", problems.join("; ")),
        )
    }
}

fn load(loads: &[String], steps: &[exec::Step]) -> PropertyResult {
    let mut done = Vec::new();
    for m in loads {
        let name = m.replace('\'', "");
        let Some(at) = steps.iter().position(|s| s.name == "load" && s.arg == name) else {
            return PropertyResult::verdict(
                "load",
                false,
                format!("load: {m} was not tried (the shell ended early)"),
            );
        };
        let said = exec::excerpt(&steps[at].text);
        let status = steps
            .get(at + 1)
            .filter(|s| s.name == "status")
            .map(|s| s.arg.trim().to_string());
        let loaded: Vec<String> = steps
            .get(at + 2)
            .filter(|s| s.name == "loaded")
            .map(|s| {
                s.arg
                    .split(':')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let after = if done.is_empty() {
            String::new()
        } else {
            format!(" after {}", done.join(", "))
        };
        if status.as_deref() != Some("0") {
            return PropertyResult::verdict(
                "load",
                false,
                format!(
                    "load: module load {m}{after} failed (status {}){}",
                    status.as_deref().unwrap_or("unknown"),
                    colon(&said)
                ),
            );
        }
        if !offers(&loaded, m) {
            return PropertyResult::verdict(
                "load",
                false,
                format!(
                    "load: module load {m}{after} returned 0 but {m} is not loaded (LOADEDMODULES: {}){}",
                    if loaded.is_empty() {
                        "empty".to_string()
                    } else {
                        loaded.join(":")
                    },
                    colon(&said)
                ),
            );
        }
        done.push(m.clone());
    }
    for m in loads.iter().rev() {
        let name = m.replace('\'', "");
        let Some(at) = steps
            .iter()
            .position(|s| s.name == "unload" && s.arg == name)
        else {
            return PropertyResult::verdict(
                "load",
                false,
                format!("load: unloading {m} was not tried (the shell ended early)"),
            );
        };
        let status = steps
            .get(at + 1)
            .filter(|s| s.name == "status")
            .map(|s| s.arg.trim().to_string());
        let loaded: Vec<String> = steps
            .get(at + 2)
            .filter(|s| s.name == "loaded")
            .map(|s| {
                s.arg
                    .split(':')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if status.as_deref() != Some("0") || offers(&loaded, m) {
            return PropertyResult::verdict(
                "load",
                false,
                format!(
                    "load: loaded {} but module unload {m} failed (status {}, LOADEDMODULES: {}){}",
                    loads.join(", "),
                    status.as_deref().unwrap_or("unknown"),
                    if loaded.is_empty() {
                        "empty".to_string()
                    } else {
                        loaded.join(":")
                    },
                    colon(&exec::excerpt(&steps[at].text))
                ),
            );
        }
    }
    PropertyResult::verdict(
        "load",
        true,
        format!("load: loaded {} and unloaded them again", loads.join(", ")),
    )
}

fn colon(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use nodecheck_core::outcome::Status;
    use nodecheck_core::profile::Value;
    use nodecheck_core::target::{Captured, Exit, MemoryTarget};

    use super::*;
    use crate::testing::*;

    const LMOD: &str = "@@nodecheck:type\nmodule is a function\n@@nodecheck:version\n\
        \nModules based on Lua: Version 8.6.19  2022-04-16 13:46 -05:00\n    by Robert McLay\n\
        @@nodecheck:vars LMOD_VERSION=8.6.19 LMOD_CMD=/usr/share/lmod/lmod/libexec/lmod MODULES_CMD=\n\
        @@nodecheck:avail\n/usr/share/modulefiles/Core:\nCore/\ngcc/12\n/usr/share/lmod/lmod/modulefiles:\nCore/lmod\n";

    const ENVMOD: &str = "@@nodecheck:type\nmodule is a function\n@@nodecheck:version\n\
        Modules Release 5.2.0 (2022-11-08)\n\
        @@nodecheck:vars LMOD_VERSION= LMOD_CMD= MODULES_CMD=/usr/lib/x86_64-linux-gnu/modulecmd.tcl\n\
        @@nodecheck:avail\n/usr/share/modules/modulefiles:\ndot\nmodule-git\nnull\n";

    fn target(stdout: String) -> MemoryTarget {
        MemoryTarget::new()
            .file("/bin/bash", 0o755, 0, 0, "")
            .exec_with(move |_| {
                Ok(ExecOutput {
                    exit: Exit::Code(0),
                    stdout: Captured {
                        head: stdout.clone().into_bytes(),
                        ..Captured::default()
                    },
                    stderr: Captured::default(),
                    timed_out: false,
                    duration: Duration::from_millis(5),
                    isolation: "memory".into(),
                })
            })
    }

    fn map(pairs: &[(&str, &str)]) -> Value {
        Value::Map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn lmod_is_told_from_environment_modules() {
        let e = run(
            &check(
                &ModuleSystem,
                "lmod",
                vec![(
                    "version",
                    preds(vec![nodecheck_core::matcher::Pred::Ge("8.6".into())]),
                )],
            ),
            &target(LMOD.into()),
        );
        assert_eq!(
            result(&e, "kind"),
            (Status::Pass, "kind: expected lmod, got lmod 8.6.19".into())
        );
        assert_eq!(result(&e, "version").0, Status::Pass);
        let e = run(
            &check(&ModuleSystem, "lmod", vec![]),
            &target(ENVMOD.into()),
        );
        assert_eq!(
            result(&e, "kind"),
            (
                Status::Fail,
                "kind: expected lmod, got environment-modules 5.2.0".into()
            )
        );
        let e = run(
            &check(&ModuleSystem, "environment-modules", vec![]),
            &target(ENVMOD.into()),
        );
        assert_eq!(result(&e, "kind").0, Status::Pass);
    }

    #[test]
    fn no_module_command() {
        let e = run(
            &check(&ModuleSystem, "lmod", vec![("avail", list(&["gcc"]))]),
            &target("@@nodecheck:none\n".into()),
        );
        assert_eq!(result(&e, "kind").0, Status::Fail);
        assert!(result(&e, "kind").1.contains("has no module command"));
        assert_eq!(
            result(&e, "avail"),
            (Status::Skip, "there is no module command".into())
        );
    }

    #[test]
    fn avail_matches_names_and_versions() {
        let names = avail_names("/x:\nCore/\ngcc/12.2(default)\nopenmpi/4\n");
        assert_eq!(names, ["gcc/12.2", "openmpi/4"]);
        assert!(offers(&names, "gcc"));
        assert!(offers(&names, "gcc/12"));
        assert!(!offers(&names, "gcc/1"));
        assert!(!offers(&names, "openmpi/40"));
        let e = run(
            &check(
                &ModuleSystem,
                "lmod",
                vec![("avail", list(&["gcc", "cuda"]))],
            ),
            &target(LMOD.into()),
        );
        assert_eq!(
            result(&e, "avail"),
            (
                Status::Fail,
                "avail: module avail does not offer cuda (it offers gcc/12, Core/lmod)".into()
            )
        );
    }

    #[test]
    fn loads_in_order() {
        let out = format!(
            "{LMOD}@@nodecheck:load gcc/12\n@@nodecheck:status 0\n@@nodecheck:loaded gcc/12\n\
             @@nodecheck:load openmpi\nLmod has detected the following error: The following module(s) are unknown: \"openmpi\"\n\
             @@nodecheck:status 1\n@@nodecheck:loaded gcc/12\n"
        );
        let e = run(
            &check(
                &ModuleSystem,
                "lmod",
                vec![("load", list(&["gcc/12", "openmpi"]))],
            ),
            &target(out),
        );
        assert_eq!(
            result(&e, "load"),
            (
                Status::Fail,
                "load: module load openmpi after gcc/12 failed (status 1): Lmod has detected the following error: The following module(s) are unknown: \"openmpi\"".into()
            )
        );
        let out = format!(
            "{LMOD}@@nodecheck:load gcc/12\n@@nodecheck:status 0\n@@nodecheck:loaded gcc/12.2\n\
             @@nodecheck:unload gcc/12\n@@nodecheck:status 0\n@@nodecheck:loaded \n"
        );
        let e = run(
            &check(&ModuleSystem, "lmod", vec![("load", list(&["gcc/12"]))]),
            &target(out),
        );
        assert_eq!(
            result(&e, "load"),
            (
                Status::Pass,
                "load: loaded gcc/12 and unloaded them again".into()
            )
        );
        let out = format!(
            "{LMOD}@@nodecheck:load gcc/12\n@@nodecheck:status 0\n@@nodecheck:loaded gcc/12.2\n\
             @@nodecheck:unload gcc/12\n@@nodecheck:status 0\n@@nodecheck:loaded gcc/12.2\n"
        );
        let e = run(
            &check(&ModuleSystem, "lmod", vec![("load", list(&["gcc/12"]))]),
            &target(out),
        );
        assert!(
            result(&e, "load").1.contains("module unload gcc/12 failed"),
            "{:?}",
            e.properties
        );
    }

    #[test]
    fn hierarchy_must_reveal() {
        let ok = format!(
            "{LMOD}@@nodecheck:hier gcc/12\n@@nodecheck:status 0\n@@nodecheck:after\n/c:\ngcc/12\nopenmpi/4\n"
        );
        let c = check(
            &ModuleSystem,
            "lmod",
            vec![("hierarchy", map(&[("gcc/12", "openmpi")]))],
        );
        assert_eq!(
            result(&run(&c, &target(ok)), "hierarchy"),
            (Status::Pass, "hierarchy: gcc/12 reveals openmpi".into())
        );
        let broken = format!(
            "{LMOD}@@nodecheck:hier gcc/12\n@@nodecheck:status 0\n@@nodecheck:after\n/c:\ngcc/12\n"
        );
        assert_eq!(
            result(&run(&c, &target(broken)), "hierarchy"),
            (
                Status::Fail,
                "hierarchy: loading gcc/12 does not reveal openmpi (it reveals nothing)".into()
            )
        );
        let c = check(
            &ModuleSystem,
            "lmod",
            vec![("hierarchy", map(&[("gcc/12", "Core/lmod")]))],
        );
        let flat = format!(
            "{LMOD}@@nodecheck:hier gcc/12\n@@nodecheck:status 0\n@@nodecheck:after\nCore/lmod\n"
        );
        assert!(
            result(&run(&c, &target(flat)), "hierarchy")
                .1
                .contains("offered before gcc/12 is loaded")
        );
    }

    #[test]
    fn unknown_systems_are_refused() {
        let c = check(&ModuleSystem, "modules", vec![]);
        assert_eq!(
            messages(&ModuleSystem.validate(&c)),
            vec![
                "bad-value: unknown module system \"modules\"; expected one of lmod, environment-modules"
            ]
        );
    }

    #[test]
    fn tree_walks_the_hierarchy_and_names_each_broken_module() {
        const BASE: &str = "/usr/share/modulefiles/Core:/usr/share/lmod/lmod/modulefiles";
        let t = MemoryTarget::new()
            .file("/bin/bash", 0o755, 0, 0, "")
            .dir("/opt/mf/Compiler/gcc/12", 0o755, 0, 0)
            .exec_with(|req| {
                let script = req.argv.last().cloned().unwrap_or_default();
                let stdout = if !script.contains("@@nodecheck:base") {
                    LMOD.to_string()
                } else if script.contains("walk openmpi/4") {
                    // Level 2: the compiler that revealed it is loaded first.
                    assert!(script.contains("gcc/12") && script.contains(">/dev/null 2>&1"));
                    format!(
                        "@@nodecheck:base {BASE}\n@@nodecheck:walk openmpi/4\n\
                         Lmod has detected the following error: unable to load openmpi/4\n\
                         @@nodecheck:status 1\n@@nodecheck:mpath {BASE}\n@@nodecheck:after\n"
                    )
                } else {
                    format!(
                        "@@nodecheck:base {BASE}\n\
                         @@nodecheck:walk gcc/12\n@@nodecheck:status 0\n\
                         @@nodecheck:mpath /opt/mf/Compiler/gcc/12:/opt/mf/gone:{BASE}\n\
                         @@nodecheck:after\n/opt/mf/Compiler/gcc/12:\nopenmpi/4\n\
                         /usr/share/modulefiles/Core:\ngcc/12\nCore/lmod\n\
                         @@nodecheck:walk Core/lmod\n@@nodecheck:status 0\n@@nodecheck:mpath {BASE}\n\
                         @@nodecheck:after\ngcc/12\nCore/lmod\n"
                    )
                };
                Ok(ExecOutput {
                    exit: Exit::Code(0),
                    stdout: Captured {
                        head: stdout.into_bytes(),
                        ..Captured::default()
                    },
                    stderr: Captured::default(),
                    timed_out: false,
                    duration: Duration::from_millis(5),
                    isolation: "memory".into(),
                })
            });
        let e = run(&check(&ModuleSystem, "lmod", vec![("tree", b(true))]), &t);
        assert_eq!(result(&e, "kind").0, Status::Pass);
        assert_eq!(
            result(&e, "tree"),
            (
                Status::Fail,
                "tree: 2 problems in 3 modules: gcc/12 adds MODULEPATH /opt/mf/gone, which does not \
                 exist, gcc/12 → openmpi/4: module load failed (status 1): Lmod has detected the \
                 following error: unable to load openmpi/4"
                    .into()
            )
        );
        let c = check(&ModuleSystem, "lmod", vec![("tree", b(false))]);
        assert_eq!(
            messages(&ModuleSystem.validate(&c)),
            [
                "bad-value: `tree = false` asserts nothing; write `tree = true` to walk the module tree"
            ]
        );
    }
}
