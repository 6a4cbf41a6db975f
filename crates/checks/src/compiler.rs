//! `compiler`: compiles, links and runs a generated hello world in the
//! target.

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::Actual;
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::run::Context;
use nodecheck_core::target::{ExecOutput, ExecRequest, Exit, Need};

use crate::eval;
use crate::exec::{self, MODULES_FAILED, quote};

pub struct Compiler;

const LANGS: &[&str] = &["c", "c++", "fortran"];

const KEYS: &[Key] = &[
    Key::new(
        "lang",
        Ty::Enum(LANGS),
        "Language of the hello world. Default: from the compiler's name (`g++`, `clang++`, \
         `icpx`, `*++` and `*cxx` are C++; `gfortran`, `ifort`, `ifx`, `flang*`, `*f90`, `*f77`, \
         `*fort` are Fortran; anything else is C).",
    )
    .modifier(),
    Key::new(
        "flags",
        Ty::StrList,
        "Extra flags for compiling and linking: `[\"-O2\", \"-march=x86-64-v3\"]`.",
    )
    .modifier(),
    exec::MODULES,
    exec::ENV,
    exec::LIMITS,
    Key::new(
        "run",
        Ty::Bool,
        "Run the program (default `true`); `false` only compiles and links (a cross compiler).",
    ),
    Key::new(
        "stdout",
        Ty::Matcher(Compare::Version),
        "What the program prints, without its final newline (default: it must print its \
         greeting, `hello from nodecheck (LANG)`).",
    ),
];

const DOC: &str = r#"## What it checks

That a compiler works in the target, as a user would use it: nodecheck
writes a hello world in the language (`lang`), then

1. **compile** — `CC FLAGS -c hello.c -o hello.o`: the compiler is on the
   `PATH` and its front end (`cc1`, `cc1plus`, `f951`) and headers work;
2. **link** — `CC FLAGS hello.o -o hello`: the linker, the C runtime and the
   language's runtime library (libstdc++, libgfortran) are found;
3. **run** — `./hello`: the program starts (the dynamic loader finds those
   libraries at run time) and prints `hello from nodecheck (c)`.

Each step is its own property (`compile`, `link`, `run`); a failed step
fails with the compiler's, linker's or loader's own error text and skips
the steps after it. A check with only `cc` does all three. The whole
transcript goes to the report's output.

The C++ program uses `<iostream>` and `std::string`; the Fortran one is
free-form (`hello.f90`). `modules` loads environment modules first (in a
login shell), for compilers that come as modules.

It runs like a `command` (same sandbox, clean environment, `timeout`,
never writes to the target). Several compiler checks run in parallel up to
`--jobs`.

## Example

```toml
[vars]
compilers = ["gcc", "g++", "gfortran"]

[[control]]
id = "compilers"
title = "Every compiler compiles, links and runs a hello world"
timeout = "2m"

  [[control.compiler]]
  cc = "${compilers}"

  [[control.compiler]]
  cc      = "mpicc"
  lang    = "c"
  flags   = ["-O2"]
  modules = ["gcc/12"]
```

## Targets

rootfs (sandbox), container and live, as `command`.
"#;

impl Kind for Compiler {
    fn name(&self) -> &'static str {
        "compiler"
    }

    fn subject(&self) -> Key {
        Key::new(
            "cc",
            Ty::Str,
            "The compiler command: `gcc`, `g++`, `gfortran`, `clang`, `/opt/intel/bin/icx`.",
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
        if check.bool("run") == Some(false) && check.prop("stdout").is_some() {
            return vec![eval::diagnostic(
                check,
                "stdout",
                "conflicting-keys",
                "`stdout` cannot be checked with `run = false`: the program does not run".into(),
            )];
        }
        Vec::new()
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let cc = check.subject.as_str();
        let lang = Lang::of(check.str("lang"), cc);
        let run = check.bool("run") != Some(false);
        let flags = check.list("flags").unwrap_or(&[]);
        let modules = check.list("modules").unwrap_or(&[]);
        let source = lang.source_name("hello");
        let script = build_script(cc, flags, &source, run, modules);
        let login = !modules.is_empty();
        let shell = if login {
            exec::login_shell(cx.target)
        } else {
            "sh"
        };
        let mut req = ExecRequest::new(exec::argv(&format!("{shell} -c"), login, &script))
            .file(source.clone(), lang.hello());
        req.env = exec::env_of(check);
        let out = match exec::run(check, cx, req, "compile") {
            Ok(out) => out,
            Err(e) => {
                let mut v = vec![e];
                v.extend(skip_from(check, 1, run, "the compiler could not be run"));
                return v.into();
            }
        };
        let what = format!(
            "{cc} {source} (compile, link{})",
            if run { ", run" } else { "" }
        );
        Evaluation {
            properties: properties(check, cc, lang, run, &out),
            output: exec::transcript(&what, &out, check),
        }
    }
}

/// The driver: each step announces itself on stderr, so the output says
/// where it stopped and whose error text is whose.
pub(crate) fn build_script(
    cc: &str,
    flags: &[String],
    source: &str,
    run: bool,
    modules: &[String],
) -> String {
    let q = quote(cc);
    let flags: String = flags.iter().map(|f| format!(" {}", quote(f))).collect();
    let mut s = exec::module_prelude(modules);
    s.push_str(&format!(
        "echo @@nodecheck:compile >&2\n\
         command -v {q} >/dev/null 2>&1 || {{ echo \"{cc}: command not found (PATH=$PATH)\" >&2; exit 127; }}\n\
         {q}{flags} -c {src} -o hello.o || exit\n\
         echo @@nodecheck:link >&2\n\
         {q}{flags} hello.o -o hello || exit\n",
        cc = cc.replace(['"', '$', '`', '\\'], "_"),
        src = quote(source),
    ));
    if run {
        s.push_str("echo @@nodecheck:run >&2\nexec ./hello\n");
    }
    s
}

/// The steps of a compiler check, as properties.
const STEPS: [&str; 3] = ["compile", "link", "run"];

/// Skips for the steps from `from` on (of those that run), and for the
/// other asserted keys (`stdout`).
fn skip_from(check: &Check, from: usize, run: bool, reason: &str) -> Vec<PropertyResult> {
    let last = if run { 3 } else { 2 };
    let mut v: Vec<PropertyResult> = STEPS[from.min(last)..last]
        .iter()
        .map(|k| PropertyResult::skip(*k, reason))
        .collect();
    v.extend(
        eval::asserted(check, &["modules", "compile", "link", "run"])
            .map(|p| PropertyResult::skip(p.key, reason)),
    );
    v
}

fn properties(
    check: &Check,
    cc: &str,
    lang: Lang,
    run: bool,
    out: &ExecOutput,
) -> Vec<PropertyResult> {
    let stderr = out.stderr.text();
    let steps = exec::steps(&stderr);
    let mut v = Vec::new();
    if out.exit == Exit::Code(MODULES_FAILED)
        && let Some(at) = steps.iter().rposition(|s| s.name == "modules")
    {
        let said = exec::excerpt(&steps[at.saturating_sub(1)].text);
        v.push(PropertyResult::verdict(
            "modules",
            false,
            format!("modules: {}{}", steps[at].arg, colon(&said)),
        ));
        v.extend(skip_from(check, 0, run, "the modules did not load"));
        return v;
    }
    if let Some(m) = check.list("modules") {
        v.push(PropertyResult::verdict(
            "modules",
            true,
            format!("modules: loaded {}", m.join(", ")),
        ));
    }
    // The last step the script announced is where it ended.
    let reached = match steps
        .iter()
        .rev()
        .find(|s| STEPS.contains(&s.name.as_str()))
    {
        Some(s) => STEPS.iter().position(|k| *k == s.name).unwrap_or(0),
        None => 0,
    };
    let lang_name = lang.name();
    for step in &STEPS[..reached] {
        v.push(passed(step, cc, lang_name));
    }
    let step = STEPS[reached];
    if out.timed_out {
        v.push(PropertyResult::error(
            step,
            format!(
                "{step}: {} and was killed with everything it started{}",
                exec::ended(out, check),
                colon(&exec::excerpt(&step_text(&steps, step)))
            ),
        ));
        v.extend(skip_from(
            check,
            reached + 1,
            run,
            &format!("the {step} step timed out"),
        ));
        return v;
    }
    let last = if run { 2 } else { 1 };
    if !out.exit.success() {
        let what = match step {
            "compile" => format!("{cc} failed to compile the {lang_name} hello world"),
            "link" => format!("{cc} failed to link the {lang_name} hello world"),
            _ => "./hello failed".to_string(),
        };
        v.push(PropertyResult::verdict(
            step,
            false,
            format!(
                "{step}: {what} ({}){}",
                exec::ended(out, check),
                colon(&exec::excerpt(&step_text(&steps, step)))
            ),
        ));
        v.extend(skip_from(
            check,
            reached + 1,
            run,
            &format!("the {step} step failed"),
        ));
        return v;
    }
    if reached != last {
        v.push(PropertyResult::error(
            step,
            format!("{step}: the compile script ended after the {step} step without an error; its output is in the report"),
        ));
        return v;
    }
    if !run {
        v.push(passed("link", cc, lang_name));
        return v;
    }
    let stdout = out.stdout.text();
    let shown = stdout.strip_suffix('\n').unwrap_or(&stdout);
    match check.matcher("stdout") {
        Some(m) => {
            v.push(PropertyResult::verdict(
                "run",
                true,
                "run: ./hello exited 0",
            ));
            v.push(eval::matched(
                "stdout",
                m,
                Actual::Str(shown),
                eval::summarize(shown),
            ));
        }
        None => {
            let greeting = lang.greeting();
            v.push(PropertyResult::compare(
                "run",
                shown == greeting,
                format!("./hello prints {greeting:?}"),
                eval::summarize(shown),
            ));
        }
    }
    v
}

fn passed(step: &str, cc: &str, lang: &str) -> PropertyResult {
    let msg = match step {
        "compile" => format!("compile: {cc} compiled the {lang} hello world"),
        "link" => format!("link: {cc} linked it"),
        _ => "run: ./hello ran".to_string(),
    };
    PropertyResult::verdict(step, true, msg)
}

fn step_text(steps: &[exec::Step], name: &str) -> String {
    exec::step(steps, name)
        .map(|s| s.text.clone())
        .unwrap_or_default()
}

/// `": text"`, or nothing for empty text.
fn colon(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// The languages a hello world is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lang {
    C,
    Cxx,
    Fortran,
}

impl Lang {
    /// From `lang`, else from the compiler's file name.
    pub(crate) fn of(lang: Option<&str>, cc: &str) -> Lang {
        match lang {
            Some("c++") => return Lang::Cxx,
            Some("fortran") => return Lang::Fortran,
            Some("c") => return Lang::C,
            _ => {}
        }
        let name = cc
            .rsplit('/')
            .next()
            .unwrap_or(cc)
            .split_whitespace()
            .next()
            .unwrap_or("");
        // Versioned names: g++-12, gfortran-12, clang++-16 (but mpif90
        // keeps its digits: both forms are tried).
        let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
        // Debian's alternatives: mpif90.openmpi, mpicc.mpich.
        let stem = name.split('.').next().unwrap_or(name);
        let forms = [name, base, stem];
        let cxx = |n: &str| {
            n.ends_with("++")
                || n.ends_with("cxx")
                || ["icpx", "icpc", "FCC", "CC", "mpiCC"].contains(&n)
        };
        let fortran = |n: &str| {
            n.contains("fortran")
                || ["f90", "f77", "f95", "f08", "fort"]
                    .iter()
                    .any(|s| n.ends_with(s))
                || n.starts_with("flang")
                || ["ifort", "ifx", "frt", "ftn"].contains(&n)
        };
        if forms.iter().any(|n| cxx(n)) {
            Lang::Cxx
        } else if forms.iter().any(|n| fortran(n)) {
            Lang::Fortran
        } else {
            Lang::C
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Lang::C => "C",
            Lang::Cxx => "C++",
            Lang::Fortran => "Fortran",
        }
    }

    pub(crate) fn source_name(self, stem: &str) -> String {
        match self {
            Lang::C => format!("{stem}.c"),
            Lang::Cxx => format!("{stem}.cpp"),
            Lang::Fortran => format!("{stem}.f90"),
        }
    }

    fn greeting(self) -> &'static str {
        match self {
            Lang::C => "hello from nodecheck (c)",
            Lang::Cxx => "hello from nodecheck (c++)",
            Lang::Fortran => "hello from nodecheck (fortran)",
        }
    }

    fn hello(self) -> &'static str {
        match self {
            Lang::C => {
                "#include <stdio.h>\n\nint main(void)\n{\n    printf(\"hello from nodecheck (c)\\n\");\n    return 0;\n}\n"
            }
            Lang::Cxx => {
                "#include <iostream>\n#include <string>\n\nint main()\n{\n    const std::string lang = \"c++\";\n    std::cout << \"hello from nodecheck (\" << lang << \")\" << std::endl;\n    return 0;\n}\n"
            }
            Lang::Fortran => {
                "program hello\n  implicit none\n  print '(a)', 'hello from nodecheck (fortran)'\nend program hello\n"
            }
        }
    }
}

#[cfg(test)]
mod tests {

    use nodecheck_core::outcome::Status;

    use super::*;
    use crate::testing::*;

    #[test]
    fn languages_from_names() {
        for (cc, lang) in [
            ("gcc", Lang::C),
            ("cc", Lang::C),
            ("clang-16", Lang::C),
            ("g++", Lang::Cxx),
            ("g++-12", Lang::Cxx),
            ("/usr/bin/clang++", Lang::Cxx),
            ("mpicxx", Lang::Cxx),
            ("mpiCC", Lang::Cxx),
            ("icpx", Lang::Cxx),
            ("gfortran", Lang::Fortran),
            ("gfortran-12", Lang::Fortran),
            ("mpif90", Lang::Fortran),
            ("mpifort", Lang::Fortran),
            ("ifx", Lang::Fortran),
            ("flang-new", Lang::Fortran),
            ("mpicc", Lang::C),
            ("mpicc.openmpi", Lang::C),
            ("mpif90.openmpi", Lang::Fortran),
            ("mpicxx.mpich", Lang::Cxx),
        ] {
            assert_eq!(Lang::of(None, cc), lang, "{cc}");
        }
        assert_eq!(Lang::of(Some("fortran"), "gcc"), Lang::Fortran);
    }

    #[test]
    fn all_steps_pass() {
        let (t, seen) = target(output(
            Exit::Code(0),
            "hello from nodecheck (c++)\n",
            "@@nodecheck:compile\n@@nodecheck:link\n@@nodecheck:run\n",
        ));
        let e = run(&check(&Compiler, "g++", vec![]), &t);
        assert_eq!(
            results(&e),
            vec![
                ("compile".into(), Status::Pass, "compile: g++ compiled the C++ hello world".into()),
                ("link".into(), Status::Pass, "link: g++ linked it".into()),
                (
                    "run".into(),
                    Status::Pass,
                    "run: expected ./hello prints \"hello from nodecheck (c++)\", got \"hello from nodecheck (c++)\"".into()
                ),
            ]
        );
        let req = &seen.lock().unwrap()[0];
        assert_eq!(req.files[0].name, "hello.cpp");
        assert!(
            req.argv[2].contains("'g++' -c 'hello.cpp' -o hello.o"),
            "{}",
            req.argv[2]
        );
    }

    #[test]
    fn a_compile_failure_carries_the_compilers_words() {
        let (t, _) = target(output(
            Exit::Code(1),
            "",
            "@@nodecheck:compile\ngcc: fatal error: cannot execute 'cc1': execvp: No such file or directory\ncompilation terminated.\n",
        ));
        let e = run(&check(&Compiler, "gcc", vec![]), &t);
        assert_eq!(
            result(&e, "compile"),
            (
                Status::Fail,
                "compile: gcc failed to compile the C hello world (exit status 1): gcc: fatal error: cannot execute 'cc1': execvp: No such file or directory".into()
            )
        );
        assert_eq!(
            result(&e, "link"),
            (Status::Skip, "the compile step failed".into())
        );
        assert_eq!(result(&e, "run").0, Status::Skip);
    }

    #[test]
    fn link_and_run_failures() {
        let (t, _) = target(output(
            Exit::Code(1),
            "",
            "@@nodecheck:compile\n@@nodecheck:link\n/usr/bin/ld: cannot find -lstdc++: No such file or directory\n",
        ));
        let e = run(&check(&Compiler, "g++", vec![]), &t);
        assert_eq!(result(&e, "compile").0, Status::Pass);
        assert_eq!(
            result(&e, "link"),
            (
                Status::Fail,
                "link: g++ failed to link the C++ hello world (exit status 1): /usr/bin/ld: cannot find -lstdc++: No such file or directory".into()
            )
        );
        let (t, _) = target(output(
            Exit::Code(127),
            "",
            "@@nodecheck:compile\n@@nodecheck:link\n@@nodecheck:run\n./hello: error while loading shared libraries: libgfortran.so.5: cannot open shared object file\n",
        ));
        let e = run(&check(&Compiler, "gfortran", vec![]), &t);
        assert_eq!(result(&e, "link").0, Status::Pass);
        assert_eq!(
            result(&e, "run"),
            (
                Status::Fail,
                "run: ./hello failed (exit status 127): ./hello: error while loading shared libraries: libgfortran.so.5: cannot open shared object file".into()
            )
        );
    }

    #[test]
    fn stdout_matcher_and_no_run() {
        let (t, _) = target(output(
            Exit::Code(0),
            "hello from nodecheck (c)\n",
            "@@nodecheck:compile\n@@nodecheck:link\n@@nodecheck:run\n",
        ));
        let e = run(
            &check(&Compiler, "gcc", vec![("stdout", re("nodecheck"))]),
            &t,
        );
        assert!(
            e.properties.iter().all(|p| p.status == Status::Pass),
            "{:?}",
            e.properties
        );
        let (t, seen) = target(output(
            Exit::Code(0),
            "",
            "@@nodecheck:compile\n@@nodecheck:link\n",
        ));
        let e = run(&check(&Compiler, "gcc", vec![("run", b(false))]), &t);
        assert_eq!(results(&e).len(), 2, "{:?}", e.properties);
        assert!(!seen.lock().unwrap()[0].argv[2].contains("./hello"));
    }

    #[test]
    fn timeouts_error_on_the_step_that_hung() {
        let mut out = output(
            Exit::Signal(9),
            "",
            "@@nodecheck:compile\n@@nodecheck:link\n@@nodecheck:run\n",
        );
        out.timed_out = true;
        let (t, _) = target(out);
        let e = run(&check(&Compiler, "gcc", vec![]), &t);
        assert_eq!(result(&e, "run").0, Status::Error);
        assert!(
            result(&e, "run").1.contains("timed out"),
            "{:?}",
            e.properties
        );
    }

    #[test]
    fn stdout_with_run_false_conflicts() {
        let c = check(
            &Compiler,
            "gcc",
            vec![("run", b(false)), ("stdout", eq("x"))],
        );
        assert_eq!(messages(&Compiler.validate(&c)).len(), 1);
    }
}
