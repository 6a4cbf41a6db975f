//! What the kinds that run programs share (`command`, `compiler`, `mpi`,
//! `module_system`): building the shell command line (login shells,
//! `module load` first), running it through the target with the control's
//! timeout, splitting a driver script's output at its step markers, and
//! turning output into short messages and the long `output` of a check.

use nodecheck_core::kind::{Key, Ty};
use nodecheck_core::outcome::PropertyResult;
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::run::Context;
use nodecheck_core::target::{
    DEFAULT_TIMEOUT, ExecOutput, ExecRequest, Limits, Need, Target, format_duration,
};

/// Lines a driver script writes (on stderr, or stdout for
/// `module_system`) before each step: `@@nodecheck:compile`.
pub const MARK: &str = "@@nodecheck:";

/// Exit status of a driver script whose `module load` failed.
pub const MODULES_FAILED: i32 = 125;

/// The `modules` key, shared.
pub const MODULES: Key = Key::new(
    "modules",
    Ty::StrList,
    "Modules to `module load` first, in a login shell (implies `login`); the property fails \
     when one does not load.",
);

/// The `env` key, shared.
pub const ENV: Key = Key::new(
    "env",
    Ty::StrMap,
    "Environment variables set for the program, on top of nodecheck's clean environment.",
)
.modifier();

/// The `limits` key, shared.
pub const LIMITS: Key = Key::new(
    "limits",
    Ty::StrMap,
    "Resource limits of the run, each optional: `memory` (default `4GiB`: the program and \
     everything it starts, files it writes to a tmpfs included), `processes` (default `1024` \
     at once), `tmpfs` (default `1GiB`, each of the sandbox's /tmp, /dev/shm, scratch \
     directories and the overlay that takes writes to the image). \
     `limits = { memory = \"16GiB\", processes = \"4096\" }`. The check's output says \
     which limits applied (a cgroup, or rlimits where none can be made).",
)
.modifier();

/// The check's `limits` over the defaults, or what is wrong with them.
pub fn limits_of(check: &Check) -> Result<Limits, String> {
    let mut l = Limits::default();
    if let Some(m) = check.map("limits") {
        for (k, v) in m {
            l = l.with(k, v)?;
        }
    }
    Ok(l)
}

/// `limits` values that do not parse, as profile errors.
pub fn validate_limits(check: &Check) -> Vec<Diagnostic> {
    match limits_of(check) {
        Ok(_) => Vec::new(),
        Err(e) => vec![crate::eval::diagnostic(check, "limits", "bad-value", e)],
    }
}

/// Single-quotes `s` for a POSIX shell.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The shell a login script runs in: bash where the target has it (Lmod's
/// and environment-modules' `module` functions are at home there), else
/// `sh`.
pub fn login_shell(target: &dyn Target) -> &'static str {
    if target
        .metadata("/bin/bash", true)
        .is_ok_and(|m| m.file_type == nodecheck_core::target::FileType::File)
    {
        "bash"
    } else {
        "sh"
    }
}

/// `shell` split into words with `-l` after the program when `login`,
/// then `script`: `sh -c` + script = `["sh", "-c", script]`.
pub fn argv(shell: &str, login: bool, script: &str) -> Vec<String> {
    let mut words: Vec<String> = shell.split_whitespace().map(str::to_string).collect();
    if words.is_empty() {
        words = vec!["sh".into(), "-c".into()];
    }
    if login && !words.iter().any(|w| w == "-l" || w == "--login") {
        words.insert(1, "-l".into());
    }
    words.push(script.to_string());
    words
}

/// Shell lines that load `modules` (in order) and stop the script with
/// [`MODULES_FAILED`] and a `@@nodecheck:modules` line on stderr when the
/// `module` command is missing or a module does not load. A module counts
/// as loaded when `module load` succeeds and it shows in `LOADEDMODULES`
/// (environment-modules 3 returns 0 even when it failed).
pub fn module_prelude(modules: &[String]) -> String {
    if modules.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "if ! type module >/dev/null 2>&1; then echo '{MARK}modules there is no module command in a login shell' >&2; exit {MODULES_FAILED}; fi\n"
    );
    for m in modules {
        let q = quote(m);
        s.push_str(&format!(
            "module load {q} || {{ echo {mark} >&2; exit {MODULES_FAILED}; }}\n\
             case \":${{LOADEDMODULES:-}}:\" in *:{q}:*|*:{q}/*) ;; *) echo {mark2} >&2; exit {MODULES_FAILED};; esac\n",
            mark = quote(&format!("{MARK}modules module load {m} failed")),
            mark2 = quote(&format!("{MARK}modules {m} is not in LOADEDMODULES after module load")),
        ));
    }
    s.push_str(&format!("echo '{MARK}modules-ok' >&2\n"));
    s
}

/// The `env` table of a check as pairs.
pub fn env_of(check: &Check) -> Vec<(String, String)> {
    check
        .map("env")
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// Runs `req` in the target with the control's timeout (or the default),
/// or says why it could not run as an error result on `key`.
pub fn run(
    check: &Check,
    cx: &Context<'_>,
    req: ExecRequest,
    key: &str,
) -> Result<ExecOutput, PropertyResult> {
    let mut req = req.timeout(check.timeout.unwrap_or(DEFAULT_TIMEOUT));
    req.limits = limits_of(check).map_err(|e| PropertyResult::error(key, e))?;
    if req.argv.iter().take(2).any(|a| a == "-l" || a == "--login") {
        // Lmod's stock profile script sets nothing up for root unless told
        // to; programs run as root here, but the check is about what users
        // get. (Debian's script already defaults to yes; the check's own
        // `env` still wins.)
        req.env
            .insert(0, ("LMOD_ALLOW_ROOT_USE".into(), "yes".into()));
    }
    cx.target.exec(&req).map_err(|e| {
        PropertyResult::error(
            key,
            format!("{key}: cannot run in {}: {e}", cx.target.describe()),
        )
    })
}

/// `Some(reason)` when the check asks for real root (`root = true`) and
/// the target runs programs without it (a rootless sandbox).
pub fn needs_root(check: &Check, target: &dyn Target) -> Option<String> {
    if check.bool("root") == Some(true) {
        target.missing(Need::Root)
    } else {
        None
    }
}

/// One step of a driver script's output: the text after `@@nodecheck:NAME`
/// up to the next marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    /// What followed the name on the marker line.
    pub arg: String,
    pub text: String,
}

/// Splits output at marker lines; text before the first marker is a step
/// named `""`.
pub fn steps(output: &str) -> Vec<Step> {
    let mut out = vec![Step {
        name: String::new(),
        arg: String::new(),
        text: String::new(),
    }];
    for line in output.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix(MARK) {
            let rest = rest.trim_end_matches('\n');
            let (name, arg) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push(Step {
                name: name.to_string(),
                arg: arg.to_string(),
                text: String::new(),
            });
        } else if let Some(last) = out.last_mut() {
            last.text.push_str(line);
        }
    }
    out
}

/// The text of the last step called `name`.
pub fn step<'a>(steps: &'a [Step], name: &str) -> Option<&'a Step> {
    steps.iter().rev().find(|s| s.name == name)
}

/// The lines of a program's error output worth a one-line message: those
/// that say `error`/`fatal`/`cannot`/`not found` (the compiler's or the
/// loader's own words), else the last lines; at most three, 400 chars.
pub fn excerpt(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !l.starts_with(MARK))
        .collect();
    let telling: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            [
                "error",
                "fatal",
                "cannot",
                "not found",
                "no such",
                "undefined",
                "failed",
            ]
            .iter()
            .any(|w| l.contains(w))
        })
        .collect();
    let chosen: Vec<&str> = if telling.is_empty() {
        lines.iter().rev().take(3).rev().copied().collect()
    } else {
        telling.into_iter().take(3).collect()
    };
    let mut s = chosen.join(" | ");
    if s.chars().count() > 400 {
        s = s.chars().take(399).collect::<String>() + "…";
    }
    s
}

/// How the run ended, for messages: `exit status 1`, `killed by signal 11
/// (SIGSEGV)`, `timed out after 60s`.
pub fn ended(out: &ExecOutput, check: &Check) -> String {
    out.describe_exit(check.timeout.unwrap_or(DEFAULT_TIMEOUT))
}

/// A timeout as the error result on `key`, the rest skipped.
pub fn timed_out(check: &Check, key: &str, out: &ExecOutput, what: &str) -> Vec<PropertyResult> {
    let limit = format_duration(check.timeout.unwrap_or(DEFAULT_TIMEOUT));
    let mut v = vec![PropertyResult::error(
        key,
        format!(
            "{key}: {what} timed out after {limit} and was killed with everything it started{}",
            tail_note(out)
        ),
    )];
    v.extend(crate::eval::skip_rest(
        check,
        &[key],
        &format!("{what} timed out"),
    ));
    v
}

fn tail_note(out: &ExecOutput) -> String {
    let e = excerpt(&out.stderr.text());
    if e.is_empty() {
        String::new()
    } else {
        format!(" (stderr: {e})")
    }
}

/// The long output of a check that ran a program: what ran, how it
/// ended, and both streams (as captured; a flood is cut in the middle
/// with a note of how much was dropped).
pub fn transcript(what: &str, out: &ExecOutput, check: &Check) -> String {
    let mut s = format!(
        "$ {what}\n{} after {} ({})\n",
        ended(out, check),
        format_duration(out.duration),
        out.isolation
    );
    for (name, c) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        if c.total() == 0 {
            continue;
        }
        s.push_str(&format!("--- {name} ---\n"));
        let text = unmark(&c.text());
        s.push_str(&text);
        if !text.ends_with('\n') {
            s.push('\n');
        }
    }
    s
}

/// The driver scripts' marker lines as readers see them: `[step:
/// compile]` for `@@nodecheck:compile`. The markers are nodecheck's own
/// plumbing and never reach a report as they are.
fn unmark(text: &str) -> String {
    if !text.contains(MARK) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        match line.strip_prefix(MARK) {
            Some(rest) => {
                let (body, nl) = match rest.strip_suffix('\n') {
                    Some(b) => (b, "\n"),
                    None => (rest, ""),
                };
                out.push_str(&format!("[step: {body}]{nl}"));
            }
            None => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_never_reach_a_transcript() {
        assert_eq!(
            unmark("pre\n@@nodecheck:compile\nerr\n@@nodecheck:run Open MPI 4"),
            "pre\n[step: compile]\nerr\n[step: run Open MPI 4]"
        );
        assert_eq!(unmark("plain\n"), "plain\n");
    }

    #[test]
    fn argv_inserts_login_flag() {
        assert_eq!(argv("sh -c", false, "x"), ["sh", "-c", "x"]);
        assert_eq!(argv("bash -c", true, "x"), ["bash", "-l", "-c", "x"]);
        assert_eq!(argv("bash -lc", true, "x"), ["bash", "-l", "-lc", "x"]);
        assert_eq!(argv("", false, "x"), ["sh", "-c", "x"]);
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn steps_split_at_markers() {
        let s = steps("pre\n@@nodecheck:compile\nerr 1\n@@nodecheck:run Open MPI 4\nout\n");
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].text, "pre\n");
        assert_eq!(
            (s[1].name.as_str(), s[1].text.as_str()),
            ("compile", "err 1\n")
        );
        assert_eq!(
            (s[2].name.as_str(), s[2].arg.as_str()),
            ("run", "Open MPI 4")
        );
        assert_eq!(step(&s, "compile").unwrap().text, "err 1\n");
    }

    #[test]
    fn excerpts_prefer_error_lines() {
        let text = "In file included from x.c:1:\nx.c:3: error: expected ';'\nnote: here\n";
        assert_eq!(excerpt(text), "x.c:3: error: expected ';'");
        assert_eq!(excerpt("a\nb\nc\nd\n"), "b | c | d");
        assert_eq!(excerpt(""), "");
    }

    #[test]
    fn module_prelude_checks_each_module() {
        let p = module_prelude(&["gcc/12".into()]);
        assert!(p.contains("module load 'gcc/12' ||"), "{p}");
        assert!(p.contains("LOADEDMODULES"), "{p}");
        assert_eq!(module_prelude(&[]), "");
    }
}
