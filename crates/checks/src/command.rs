//! `command`: runs a command line in the target and checks how it ended
//! and what it printed.

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::{Actual, Matcher};
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::Check;
use nodecheck_core::run::Context;
use nodecheck_core::target::{ExecOutput, ExecRequest, Exit, Need};

use crate::eval;
use crate::exec::{self, MARK, MODULES_FAILED};

pub struct Command;

const KEYS: &[Key] = &[
    Key::new(
        "shell",
        Ty::Str,
        "The shell that runs `run`, as words (default `sh -c`; `bash -c` when `login` and the \
         target has bash). With `login`, `-l` is added after the program.",
    )
    .modifier(),
    Key::new(
        "login",
        Ty::Bool,
        "Run in a login shell: /etc/profile and /etc/profile.d are read first, so `module` and \
         the site's paths exist, as for a user who logs in.",
    )
    .modifier(),
    exec::MODULES,
    exec::ENV,
    exec::LIMITS,
    Key::new(
        "exit_status",
        Ty::Matcher(Compare::Quantity),
        "Exit status (default `0`): `1`, `{ one_of = [0, 3] }`, `{ ne = 0 }`. A command killed by \
         a signal matches no number.",
    ),
    Key::new(
        "stdout",
        Ty::Matcher(Compare::Version),
        "Standard output, without its final newline: `\"ok\"`, `{ contains = \"Lmod\" }`, \
         `{ matches = \"^12\\\\.\" }`, `{ ge = \"12\" }`.",
    ),
    Key::new(
        "stderr",
        Ty::Matcher(Compare::Version),
        "Standard error, likewise.",
    ),
    Key::new(
        "root",
        Ty::Bool,
        "The command needs the real root: uid 0 owning the image's files and able to write where \
         only root may. Without it (a rootless sandbox) the check is skipped with \"needs root\".",
    )
    .modifier(),
];

const DOC: &str = r#"## What it checks

Runs a command line in the target — in a sandbox over a root filesystem,
in the namespaces of a container, directly on a live node — and checks its
exit status (`0` unless `exit_status` says otherwise) and, if asked, what it
printed. A `command` check with only `run` passes when the command exits 0.

The command runs with a clean environment (`PATH`, `HOME`, `USER`,
`LOGNAME`, `SHELL=/bin/sh`, `LANG=C`, `TERM=dumb`, plus `env`; in a
container, the container's own environment on top), stdin from /dev/null,
in an empty working directory, as root (on a rootfs: uid 0 of the image; a
rootless nodecheck maps its own user to it). It never changes the target:
on a rootfs every write lands in a throw-away overlay, in a container in a
private overlay over its root. Network access is cut off on a rootfs (only
`lo` exists).

`modules` loads environment modules first, in a login shell; when one does
not load (or there is no `module` command) the `modules` property fails with
the module system's own words and the others are skipped. `login` alone
gives the login shell without loading anything.

After the control's `timeout` (default 60s) the command and everything it
started are killed and the check is an *error*. Output is kept up to 64 KiB
from the start and 64 KiB from the end of each stream; the report says how
many bytes were dropped in between. Processes the command leaves behind
(daemons included) are killed when it exits.

Each run is bounded: memory (4 GiB) and processes (1024) through a cgroup
made for the run, and each tmpfs of the sandbox (/tmp, /dev/shm, the overlay
that takes writes) to 1 GiB; `limits` changes them. A fork bomb gets
`fork: Resource temporarily unavailable`, a memory hog is killed (SIGKILL),
a full tmpfs says `No space left on device`. The check's output says which
limits applied; where no cgroup can be made they are rlimits (rootless) or
only the tmpfs sizes and a per-process address-space cap (root), and the
output says so.

## Example

```toml
[[control]]
id = "gcc-version"
title = "The image's default gcc is 12"
timeout = "30s"

  [[control.command]]
  run    = "gcc -dumpversion"
  stdout = { ge = "12", lt = "13" }

  [[control.command]]
  run     = "module load gcc && which gcc"
  login   = true
  stdout  = { matches = "^/opt/" }
```

## Targets

rootfs (in a sandbox: as root, or rootless where the kernel allows
unprivileged user namespaces — then `root = true` checks are skipped with
"needs root"), container (as root in its namespaces) and live (directly, as
nodecheck's user). On a target that cannot run programs the check is
skipped with "needs command execution in the target". Where overlayfs is
refused the image is bound read-only instead, with a tmpfs on /tmp,
/var/tmp, /run and `HOME` (writes elsewhere fail); `NODECHECK_NO_OVERLAY=1`
chooses that mode. The report's output says which one ran, and which
limits applied (a cgroup, or rlimits in a user namespace where none can be
made; `NODECHECK_NO_CGROUP=1` chooses that).
"#;

impl Kind for Command {
    fn name(&self) -> &'static str {
        "command"
    }

    fn subject(&self) -> Key {
        Key::new(
            "run",
            Ty::Str,
            "The command line, run by `shell` in the target.",
        )
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn needs(&self) -> Option<Need> {
        Some(Need::Exec)
    }

    fn validate(&self, check: &Check) -> Vec<nodecheck_core::profile::Diagnostic> {
        exec::validate_limits(check)
    }

    fn subject_asserts(&self) -> bool {
        true
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        if let Some(reason) = exec::needs_root(check, cx.target) {
            let mut v = vec![PropertyResult::skip("exit_status", reason.clone())];
            v.extend(eval::skip_rest(check, &["exit_status"], &reason));
            return v.into();
        }
        let modules = check.list("modules").unwrap_or(&[]);
        let login = check.bool("login") == Some(true) || !modules.is_empty();
        let shell = match check.str("shell") {
            Some(s) => s.to_string(),
            None if login => format!("{} -c", exec::login_shell(cx.target)),
            None => "sh -c".to_string(),
        };
        let script = format!("{}{}", exec::module_prelude(modules), check.subject);
        let mut req = ExecRequest::new(exec::argv(&shell, login, &script));
        req.env = exec::env_of(check);
        let out = match exec::run(check, cx, req, "exit_status") {
            Ok(out) => out,
            Err(e) => {
                let mut v = vec![e];
                v.extend(eval::skip_rest(
                    check,
                    &["exit_status"],
                    "the command could not run",
                ));
                return v.into();
            }
        };
        Evaluation {
            properties: properties(check, &out, modules),
            output: exec::transcript(&check.subject, &out, check),
        }
    }
}

fn properties(check: &Check, out: &ExecOutput, modules: &[String]) -> Vec<PropertyResult> {
    if out.timed_out {
        return exec::timed_out(check, "exit_status", out, "the command");
    }
    let stderr = out.stderr.text();
    let mut v = Vec::new();
    if !modules.is_empty() {
        let steps = exec::steps(&stderr);
        if out.exit == Exit::Code(MODULES_FAILED)
            && let Some(at) = steps.iter().rposition(|s| s.name == "modules")
        {
            let failed = &steps[at];
            // The module system's words come just before the marker.
            let said = exec::excerpt(&steps[at.saturating_sub(1)].text);
            v.push(PropertyResult::verdict(
                "modules",
                false,
                format!(
                    "modules: {}{}",
                    failed.arg,
                    if said.is_empty() {
                        String::new()
                    } else {
                        format!(": {said}")
                    }
                ),
            ));
            let reason = "the modules did not load";
            if check.prop("exit_status").is_none() {
                v.push(PropertyResult::skip("exit_status", reason));
            }
            v.extend(eval::skip_rest(check, &["modules"], reason));
            return v;
        }
        v.push(PropertyResult::verdict(
            "modules",
            true,
            format!("modules: loaded {}", modules.join(", ")),
        ));
    }
    // What the user's command wrote, without the prelude's marker lines.
    let user_stderr: String = stderr
        .split_inclusive('\n')
        .filter(|l| !l.starts_with(MARK))
        .collect();
    v.push(exit_status(check.matcher("exit_status"), out, &user_stderr));
    for (key, text) in [
        ("stdout", out.stdout.text()),
        ("stderr", user_stderr.clone()),
    ] {
        if let Some(m) = check.matcher(key) {
            let shown = text.strip_suffix('\n').unwrap_or(&text);
            v.push(eval::matched(
                key,
                m,
                Actual::Str(shown),
                eval::summarize(shown),
            ));
        }
    }
    v
}

/// `exit_status` against the matcher (or 0), with the command's own error
/// words when it failed.
fn exit_status(m: Option<&Matcher>, out: &ExecOutput, stderr: &str) -> PropertyResult {
    let (ok, expected) = match (m, out.exit) {
        (Some(m), Exit::Code(c)) => (m.test(Actual::Int(i64::from(c))), m.describe()),
        (Some(m), Exit::Signal(_)) => (false, m.describe()),
        (None, e) => (e.success(), "0".to_string()),
    };
    let mut actual = match out.exit {
        Exit::Code(c) => c.to_string(),
        e => e.to_string(),
    };
    let said = exec::excerpt(stderr);
    if !ok && !said.is_empty() {
        actual = format!("{actual} (stderr: {said})");
    }
    PropertyResult::compare("exit_status", ok, expected, actual)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use nodecheck_core::outcome::Status;
    use nodecheck_core::target::MemoryTarget;

    use super::*;
    use crate::testing::*;

    /// A target with bash answering every command with `out`.
    fn target(out: ExecOutput) -> (MemoryTarget, Seen) {
        recording(MemoryTarget::new().file("/bin/bash", 0o755, 0, 0, ""), out)
    }

    #[test]
    fn exit_zero_passes_by_default() {
        let (t, seen) = target(output(Exit::Code(0), "ok\n", ""));
        let e = run(&check(&Command, "true", vec![]), &t);
        assert_eq!(
            results(&e),
            vec![(
                "exit_status".into(),
                Status::Pass,
                "exit_status: expected 0, got 0".into()
            )]
        );
        assert_eq!(seen.lock().unwrap()[0].argv, ["sh", "-c", "true"]);
        assert!(e.output.contains("$ true\nexit status 0"), "{}", e.output);
    }

    #[test]
    fn failure_shows_the_commands_own_words() {
        let (t, _) = target(output(
            Exit::Code(1),
            "",
            "ls: cannot access '/x': No such file or directory\n",
        ));
        let e = run(&check(&Command, "ls /x", vec![]), &t);
        assert_eq!(
            result(&e, "exit_status"),
            (
                Status::Fail,
                "exit_status: expected 0, got 1 (stderr: ls: cannot access '/x': No such file or directory)".into()
            )
        );
    }

    #[test]
    fn matchers_on_status_and_output() {
        let (t, _) = target(output(Exit::Code(3), "12.2.0\n", "warn\n"));
        let c = check(
            &Command,
            "x",
            vec![
                ("exit_status", eq_int(3)),
                (
                    "stdout",
                    preds(vec![nodecheck_core::matcher::Pred::Ge("12".into())]),
                ),
                ("stderr", re("^warn$")),
            ],
        );
        let e = run(&c, &t);
        assert!(
            e.properties.iter().all(|p| p.status == Status::Pass),
            "{:#?}",
            e.properties
        );
        let c = check(&Command, "x", vec![("stdout", eq("13"))]);
        assert_eq!(
            result(&run(&c, &t), "stdout").1,
            "stdout: expected 13, got \"12.2.0\""
        );
    }

    #[test]
    fn a_signal_matches_no_status() {
        let (t, _) = target(output(Exit::Signal(11), "", ""));
        let e = run(&check(&Command, "x", vec![]), &t);
        assert_eq!(
            result(&e, "exit_status"),
            (
                Status::Fail,
                "exit_status: expected 0, got killed by signal 11 (SIGSEGV)".into()
            )
        );
    }

    #[test]
    fn timeouts_are_errors() {
        let mut out = output(Exit::Signal(9), "", "");
        out.timed_out = true;
        let (t, _) = target(out);
        let c = check(&Command, "sleep 1000", vec![("stdout", eq("x"))]);
        let e = run(&c, &t);
        assert_eq!(result(&e, "exit_status").0, Status::Error);
        assert!(
            result(&e, "exit_status").1.contains("timed out after 1m"),
            "{:?}",
            e.properties
        );
        assert_eq!(result(&e, "stdout").0, Status::Skip);
    }

    #[test]
    fn modules_use_a_login_shell_and_report_failures() {
        let (t, seen) = target(output(
            Exit::Code(MODULES_FAILED),
            "",
            "Lmod has detected the following error: The following module(s) are unknown: \"gcc\"\n\
             @@nodecheck:modules module load gcc failed\n",
        ));
        let c = check(
            &Command,
            "gcc --version",
            vec![("modules", list(&["gcc"])), ("stdout", eq("x"))],
        );
        let e = run(&c, &t);
        let argv = &seen.lock().unwrap()[0].argv;
        assert_eq!(&argv[..3], ["bash", "-l", "-c"]);
        assert!(argv[3].starts_with("if ! type module"), "{}", argv[3]);
        assert_eq!(
            result(&e, "modules"),
            (
                Status::Fail,
                "modules: module load gcc failed: Lmod has detected the following error: The following module(s) are unknown: \"gcc\"".into()
            )
        );
        assert_eq!(result(&e, "exit_status").0, Status::Skip);
        assert_eq!(result(&e, "stdout").0, Status::Skip);
    }

    #[test]
    fn login_shells_let_lmod_set_up_for_root() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let t = MemoryTarget::new().exec_with(move |req| {
            s.lock().unwrap().push(req.env.clone());
            Ok(output(Exit::Code(0), "", ""))
        });
        let c = check(&Command, "module list", vec![("login", b(true))]);
        run(&c, &t);
        let c = check(&Command, "true", vec![]);
        run(&c, &t);
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[0],
            vec![("LMOD_ALLOW_ROOT_USE".to_string(), "yes".to_string())]
        );
        assert!(seen[1].is_empty());
    }

    #[test]
    fn root_only_commands_skip_without_root() {
        let (t, seen) = target(output(Exit::Code(0), "", ""));
        let c = check(&Command, "cat /etc/shadow", vec![("root", b(true))]);
        let e = run(&c, &t);
        assert_eq!(
            result(&e, "exit_status"),
            (Status::Skip, "needs root".into())
        );
        assert!(seen.lock().unwrap().is_empty());
        let t = t.with(Need::Root);
        assert_eq!(result(&run(&c, &t), "exit_status").0, Status::Pass);
    }
}
