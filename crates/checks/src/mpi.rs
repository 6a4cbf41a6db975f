//! `mpi`: builds an MPI hello world with the wrapper compiler and runs it
//! on several ranks with the launcher.

use std::collections::BTreeMap;

use nodecheck_core::kind::{Key, Kind, Ty};
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::run::Context;
use nodecheck_core::target::{ExecOutput, ExecRequest, Exit, Need};

use crate::compiler::Lang;
use crate::eval;
use crate::exec::{self, MODULES_FAILED, quote};

pub struct Mpi;

/// At most this many ranks: a hello world on a build host, not a job.
const MAX_RANKS: i64 = 256;

const KEYS: &[Key] = &[
    Key::new(
        "mpirun",
        Ty::Str,
        "The launcher (default `mpirun`; `mpiexec`, `srun` is not supported: it needs a cluster).",
    )
    .modifier(),
    Key::new(
        "ranks",
        Ty::Int,
        "Processes to start (default 2). Every one must report, and each must see a world of \
         this size.",
    ),
    Key::new(
        "lang",
        Ty::Enum(&["c", "c++", "fortran"]),
        "Language of the hello world (default: from the wrapper's name: `mpicxx` is C++, \
         `mpif90`/`mpifort` Fortran, else C).",
    )
    .modifier(),
    Key::new(
        "compiler",
        Ty::Str,
        "The compiler the wrapper must drive, for a compiler × MPI matrix: sets `OMPI_CC`, `MPICH_CC` and `I_MPI_CC` (or the C++ / Fortran equivalents) to it.",
    )
    .modifier(),
    Key::new(
        "flags",
        Ty::StrList,
        "Extra flags for the wrapper compiler.",
    )
    .modifier(),
    Key::new(
        "mpirun_flags",
        Ty::StrList,
        "Extra flags for the launcher, after nodecheck's own: `[\"--mca\", \"btl\", \"self,vader\"]`.",
    )
    .modifier(),
    exec::MODULES,
    exec::ENV,
    exec::LIMITS,
];

const DOC: &str = r#"## What it checks

That MPI works in the target for a single node: the wrapper compiler
(`mpicc`, `mpicxx`, `mpif90`) builds a hello world that calls `MPI_Init`,
`MPI_Comm_rank`, `MPI_Comm_size` and an `MPI_Allreduce`, and the launcher
runs it on `ranks` processes (default 2). Two properties:

- **compile** — the wrapper builds and links the program (a missing
  header, library, or a library the wrapper itself cannot load fails here,
  with the wrapper's own error text);
- **ranks** — every rank `0..ranks-1` reports, each saw a world of
  `ranks` processes (several "rank 0 of 1" mean the launcher and the
  library do not belong together), and the allreduce added up. Otherwise it
  fails with what did report, the launcher's exit status and its error text
  (`MPI_Init` failures, "error while loading shared libraries", …).

The launcher is recognised from `mpirun --version`, and given the flags
that make a single-node run work anywhere: Open MPI gets `--oversubscribe`
(more ranks than cores) and, as root, `--allow-run-as-root` (plus
`OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1`, since the
sandbox runs as uid 0); MPICH's and MVAPICH's Hydra get `-launcher fork`,
Intel MPI `-bootstrap fork` (no ssh). `mpirun_flags` come after those.

On a rootfs the sandbox has no network but `lo`, a private `/dev/shm` and
a read-only `/sys` (for hwloc's topology), which is what a single-node run
needs. A run that hangs (a misconfigured transport waiting for peers) ends
at the control's `timeout` (default 60s) as an *error*.

## Example

```toml
[vars]
mpi = ["openmpi"]

[[control]]
id = "mpi-hello"
title = "MPI hello world on 2 ranks"
matrix = { cc = ["gcc"], mpi = "${mpi}" }
timeout = "2m"

  [[control.mpi]]
  mpicc   = "mpicc"
  ranks   = 2
  modules = ["${cc}", "${mpi}"]
```

## Targets

rootfs (sandbox), container and live, as `command`.
"#;

impl Kind for Mpi {
    fn name(&self) -> &'static str {
        "mpi"
    }

    fn subject(&self) -> Key {
        Key::new(
            "mpicc",
            Ty::Str,
            "The MPI wrapper compiler: `mpicc`, `mpicxx`, `mpif90`, a full path.",
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
        match check.int("ranks") {
            Some(n) if !(1..=MAX_RANKS).contains(&n) => vec![eval::diagnostic(
                check,
                "ranks",
                "bad-value",
                format!("`ranks` must be between 1 and {MAX_RANKS}, got {n}"),
            )],
            _ => Vec::new(),
        }
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let mpicc = check.subject.as_str();
        let mpirun = check.str("mpirun").unwrap_or("mpirun");
        let ranks = check.int("ranks").unwrap_or(2).clamp(1, MAX_RANKS);
        let lang = Lang::of(check.str("lang"), mpicc);
        let modules = check.list("modules").unwrap_or(&[]);
        let source = lang.source_name("mpi_hello");
        let script = build_script(
            mpicc,
            check.list("flags").unwrap_or(&[]),
            &source,
            mpirun,
            check.list("mpirun_flags").unwrap_or(&[]),
            ranks,
            modules,
        );
        let login = !modules.is_empty();
        let shell = if login {
            exec::login_shell(cx.target)
        } else {
            "sh"
        };
        let mut req = ExecRequest::new(exec::argv(&format!("{shell} -c"), login, &script))
            .file(source.clone(), hello(lang))
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        if let Some(cc) = check.str("compiler") {
            for var in compiler_vars(lang) {
                req = req.env(*var, cc);
            }
        }
        req.env.extend(exec::env_of(check));
        let out = match exec::run(check, cx, req, "compile") {
            Ok(out) => out,
            Err(e) => {
                let mut v = vec![
                    e,
                    PropertyResult::skip("ranks", "the wrapper could not be run"),
                ];
                v.extend(eval::skip_rest(
                    check,
                    &["ranks"],
                    "the wrapper could not be run",
                ));
                return v.into();
            }
        };
        let what = format!("{mpicc} {source} && {mpirun} -np {ranks} ./mpi_hello");
        Evaluation {
            properties: properties(check, mpicc, mpirun, ranks, &out),
            output: exec::transcript(&what, &out, check),
        }
    }
}

/// The variables through which Open MPI's, MPICH's and Intel MPI's
/// wrappers take another compiler, by language.
fn compiler_vars(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::C => &["OMPI_CC", "MPICH_CC", "I_MPI_CC"],
        Lang::Cxx => &["OMPI_CXX", "MPICH_CXX", "I_MPI_CXX"],
        Lang::Fortran => &["OMPI_FC", "MPICH_FC", "MPICH_F90", "I_MPI_FC", "I_MPI_F90"],
    }
}

fn build_script(
    mpicc: &str,
    flags: &[String],
    source: &str,
    mpirun: &str,
    mpirun_flags: &[String],
    ranks: i64,
    modules: &[String],
) -> String {
    let words = |v: &[String]| {
        v.iter()
            .map(|f| format!(" {}", quote(f)))
            .collect::<String>()
    };
    let plain = |s: &str| s.replace(['"', '$', '`', '\\'], "_");
    let mut s = exec::module_prelude(modules);
    s.push_str(&format!(
        "echo @@nodecheck:compile >&2\n\
         command -v {cc} >/dev/null 2>&1 || {{ echo \"{cc_plain}: command not found (PATH=$PATH)\" >&2; exit 127; }}\n\
         {cc}{flags} {src} -o mpi_hello || exit\n\
         echo @@nodecheck:launch >&2\n\
         command -v {run} >/dev/null 2>&1 || {{ echo \"{run_plain}: command not found (PATH=$PATH)\" >&2; exit 127; }}\n\
         nc_v=$({run} --version 2>&1 </dev/null | head -n 1)\n\
         case \"$nc_v\" in\n\
         \x20 *'Open MPI'*|*OpenRTE*) nc_f='--oversubscribe'; [ \"$(id -u)\" = 0 ] && nc_f=\"$nc_f --allow-run-as-root\" ;;\n\
         \x20 *'Intel(R) MPI'*) nc_f='-bootstrap fork' ;;\n\
         \x20 *HYDRA*|*MPICH*|*hydra*|*MVAPICH*) nc_f='-launcher fork' ;;\n\
         \x20 *) nc_f='' ;;\n\
         esac\n\
         echo \"@@nodecheck:run $nc_v\" >&2\n\
         {run} $nc_f{mpirun_flags} -np {ranks} ./mpi_hello\n",
        cc = quote(mpicc),
        cc_plain = plain(mpicc),
        flags = words(flags),
        src = quote(source),
        run = quote(mpirun),
        run_plain = plain(mpirun),
        mpirun_flags = words(mpirun_flags),
    ));
    s
}

fn properties(
    check: &Check,
    mpicc: &str,
    mpirun: &str,
    ranks: i64,
    out: &ExecOutput,
) -> Vec<PropertyResult> {
    let stderr = out.stderr.text();
    let steps = exec::steps(&stderr);
    let mut v = Vec::new();
    let skip_rest = |reason: &str| eval::skip_rest(check, &["ranks", "modules"], reason);
    if out.exit == Exit::Code(MODULES_FAILED)
        && let Some(at) = steps.iter().rposition(|s| s.name == "modules")
    {
        let said = exec::excerpt(&steps[at.saturating_sub(1)].text);
        v.push(PropertyResult::verdict(
            "modules",
            false,
            format!("modules: {}{}", steps[at].arg, colon(&said)),
        ));
        v.push(PropertyResult::skip("compile", "the modules did not load"));
        v.push(PropertyResult::skip("ranks", "the modules did not load"));
        v.extend(skip_rest("the modules did not load"));
        return v;
    }
    if let Some(m) = check.list("modules") {
        v.push(PropertyResult::verdict(
            "modules",
            true,
            format!("modules: loaded {}", m.join(", ")),
        ));
    }
    let last = steps
        .iter()
        .rev()
        .find(|s| ["compile", "launch", "run"].contains(&s.name.as_str()))
        .map_or("compile", |s| s.name.as_str());
    let text = |name: &str| {
        exec::step(&steps, name)
            .map(|s| s.text.clone())
            .unwrap_or_default()
    };
    if last == "compile" {
        if out.timed_out {
            v.extend(exec::timed_out(check, "compile", out, mpicc));
            v.push(PropertyResult::skip("ranks", "the compile step timed out"));
        } else {
            v.push(PropertyResult::verdict(
                "compile",
                false,
                format!(
                    "compile: {mpicc} failed to build the MPI hello world ({}){}",
                    exec::ended(out, check),
                    colon(&exec::excerpt(&text("compile")))
                ),
            ));
            v.push(PropertyResult::skip("ranks", "it did not compile"));
            v.extend(skip_rest("it did not compile"));
        }
        return v;
    }
    v.push(PropertyResult::verdict(
        "compile",
        true,
        format!("compile: {mpicc} built the MPI hello world"),
    ));
    let flavour = exec::step(&steps, "run")
        .map(|s| s.arg.trim().to_string())
        .unwrap_or_default();
    if out.timed_out {
        v.push(PropertyResult::error(
            "ranks",
            format!(
                "ranks: {mpirun} -np {ranks} {} and was killed with everything it started{}{}",
                exec::ended(out, check),
                seen_note(&out.stdout.text(), ranks),
                colon(&exec::excerpt(&text(last)))
            ),
        ));
        v.extend(skip_rest("the launcher timed out"));
        return v;
    }
    let report = Ranks::parse(&out.stdout.text());
    let ok = out.exit.success() && report.complete(ranks);
    let by = if flavour.is_empty() {
        mpirun.to_string()
    } else {
        flavour
    };
    if ok {
        v.push(PropertyResult::verdict(
            "ranks",
            true,
            format!("ranks: all {ranks} ranks reported and agreed on the world size ({by})"),
        ));
        return v;
    }
    let said = exec::excerpt(&text(last));
    let problem = report.problem(ranks);
    v.push(
        PropertyResult::verdict(
            "ranks",
            false,
            format!(
                "ranks: expected {ranks} ranks to report, {problem}; {mpirun} {}{}",
                exec::ended(out, check),
                colon(&said)
            ),
        )
        .with_expected(format!("{ranks} ranks"))
        .with_actual(format!("{} ranks", report.ranks.len())),
    );
    v
}

fn seen_note(stdout: &str, ranks: i64) -> String {
    let r = Ranks::parse(stdout);
    if r.ranks.is_empty() {
        String::new()
    } else {
        format!(" ({})", r.problem(ranks))
    }
}

fn colon(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// What the ranks printed: `nodecheck-mpi rank R of N sum S`.
#[derive(Debug, Default, PartialEq)]
struct Ranks {
    /// rank -> (world size it saw, allreduce result).
    ranks: BTreeMap<i64, (i64, i64)>,
}

impl Ranks {
    fn parse(stdout: &str) -> Ranks {
        let mut r = Ranks::default();
        for line in stdout.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            if let ["nodecheck-mpi", "rank", rank, "of", size, "sum", sum] = w.as_slice()
                && let (Ok(rank), Ok(size), Ok(sum)) = (rank.parse(), size.parse(), sum.parse())
            {
                r.ranks.insert(rank, (size, sum));
            }
        }
        r
    }

    fn complete(&self, n: i64) -> bool {
        let want_sum = n * (n - 1) / 2;
        (0..n).all(|i| self.ranks.get(&i) == Some(&(n, want_sum))) && self.ranks.len() as i64 == n
    }

    /// What went wrong, in words: `got 1 (rank 1 missing)`.
    fn problem(&self, n: i64) -> String {
        let got = self.ranks.len();
        if got == 0 {
            return "got none".into();
        }
        let missing: Vec<String> = (0..n)
            .filter(|i| !self.ranks.contains_key(i))
            .map(|i| i.to_string())
            .collect();
        let sizes: Vec<i64> = self
            .ranks
            .values()
            .map(|(s, _)| *s)
            .filter(|s| *s != n)
            .collect();
        let mut parts = vec![format!("got {got}")];
        if !missing.is_empty() {
            parts.push(format!("missing rank {}", missing.join(", ")));
        }
        if let Some(s) = sizes.first() {
            parts.push(format!(
                "ranks saw a world of {s} instead of {n} (the launcher and the MPI library do not belong together)"
            ));
        } else if self.ranks.values().any(|(_, sum)| *sum != n * (n - 1) / 2) {
            parts.push("the allreduce of the ranks gave a wrong sum".into());
        }
        parts.join(", ")
    }
}

fn hello(lang: Lang) -> &'static str {
    match lang {
        Lang::C => concat!(
            "#include <mpi.h>\n#include <stdio.h>\n\n",
            "int main(int argc, char **argv)\n{\n",
            "    int rank = -1, size = -1, sum = -1;\n",
            "    MPI_Init(&argc, &argv);\n",
            "    MPI_Comm_rank(MPI_COMM_WORLD, &rank);\n",
            "    MPI_Comm_size(MPI_COMM_WORLD, &size);\n",
            "    MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);\n",
            "    printf(\"nodecheck-mpi rank %d of %d sum %d\\n\", rank, size, sum);\n",
            "    fflush(stdout);\n",
            "    MPI_Finalize();\n",
            "    return 0;\n}\n"
        ),
        Lang::Cxx => concat!(
            "#include <mpi.h>\n#include <iostream>\n\n",
            "int main(int argc, char **argv)\n{\n",
            "    int rank = -1, size = -1, sum = -1;\n",
            "    MPI_Init(&argc, &argv);\n",
            "    MPI_Comm_rank(MPI_COMM_WORLD, &rank);\n",
            "    MPI_Comm_size(MPI_COMM_WORLD, &size);\n",
            "    MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);\n",
            "    std::cout << \"nodecheck-mpi rank \" << rank << \" of \" << size << \" sum \" << sum << std::endl;\n",
            "    MPI_Finalize();\n",
            "    return 0;\n}\n"
        ),
        Lang::Fortran => concat!(
            "program mpi_hello\n",
            "  use mpi\n",
            "  implicit none\n",
            "  integer :: ierr, rank, nprocs, total\n",
            "  call MPI_Init(ierr)\n",
            "  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)\n",
            "  call MPI_Comm_size(MPI_COMM_WORLD, nprocs, ierr)\n",
            "  call MPI_Allreduce(rank, total, 1, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD, ierr)\n",
            "  write (*, '(a,i0,a,i0,a,i0)') 'nodecheck-mpi rank ', rank, ' of ', nprocs, ' sum ', total\n",
            "  call MPI_Finalize(ierr)\n",
            "end program mpi_hello\n"
        ),
    }
}

#[cfg(test)]
mod tests {

    use nodecheck_core::outcome::Status;

    use super::*;
    use crate::testing::*;

    const RAN: &str =
        "@@nodecheck:compile\n@@nodecheck:launch\n@@nodecheck:run mpirun (Open MPI) 4.1.4\n";

    #[test]
    fn every_rank_reports() {
        let (t, seen) = target(output(
            Exit::Code(0),
            "nodecheck-mpi rank 1 of 2 sum 1\nnodecheck-mpi rank 0 of 2 sum 1\n",
            RAN,
        ));
        let e = run(&check(&Mpi, "mpicc", vec![("compiler", s("clang"))]), &t);
        assert_eq!(
            results(&e),
            vec![
                ("compile".into(), Status::Pass, "compile: mpicc built the MPI hello world".into()),
                (
                    "ranks".into(),
                    Status::Pass,
                    "ranks: all 2 ranks reported and agreed on the world size (mpirun (Open MPI) 4.1.4)".into()
                ),
            ]
        );
        let req = &seen.lock().unwrap()[0];
        assert!(req.argv[2].contains("-np 2 ./mpi_hello"), "{}", req.argv[2]);
        assert!(
            req.env
                .contains(&("OMPI_ALLOW_RUN_AS_ROOT".into(), "1".into()))
        );
        assert_eq!(req.files[0].name, "mpi_hello.c");
    }

    #[test]
    fn missing_ranks_and_singletons_fail() {
        let (t, _) = target(output(
            Exit::Code(1),
            "nodecheck-mpi rank 0 of 2 sum 1\n",
            &format!(
                "{RAN}mpirun noticed that process rank 1 exited on signal 11 (Segmentation fault).\n"
            ),
        ));
        let e = run(&check(&Mpi, "mpicc", vec![]), &t);
        let (st, msg) = result(&e, "ranks");
        assert_eq!(st, Status::Fail);
        assert_eq!(
            msg,
            "ranks: expected 2 ranks to report, got 1, missing rank 1; mpirun exit status 1: mpirun noticed that process rank 1 exited on signal 11 (Segmentation fault)."
        );
        let (t, _) = target(output(
            Exit::Code(0),
            "nodecheck-mpi rank 0 of 1 sum 0\nnodecheck-mpi rank 0 of 1 sum 0\n",
            RAN,
        ));
        let e = run(&check(&Mpi, "mpicc", vec![]), &t);
        assert!(
            result(&e, "ranks")
                .1
                .contains("saw a world of 1 instead of 2"),
            "{:?}",
            e.properties
        );
    }

    #[test]
    fn a_broken_wrapper_fails_compile_with_its_words() {
        let (t, _) = target(output(
            Exit::Code(127),
            "",
            "@@nodecheck:compile\nmpicc: error while loading shared libraries: libhwloc.so.15: cannot open shared object file: No such file or directory\n",
        ));
        let e = run(&check(&Mpi, "mpicc", vec![]), &t);
        assert_eq!(
            result(&e, "compile"),
            (
                Status::Fail,
                "compile: mpicc failed to build the MPI hello world (exit status 127): mpicc: error while loading shared libraries: libhwloc.so.15: cannot open shared object file: No such file or directory".into()
            )
        );
        assert_eq!(
            result(&e, "ranks"),
            (Status::Skip, "it did not compile".into())
        );
    }

    #[test]
    fn a_hung_launcher_is_an_error() {
        let mut out = output(Exit::Signal(9), "nodecheck-mpi rank 0 of 2 sum 1\n", RAN);
        out.timed_out = true;
        let (t, _) = target(out);
        let e = run(&check(&Mpi, "mpicc", vec![("ranks", int(2))]), &t);
        let (st, msg) = result(&e, "ranks");
        assert_eq!(st, Status::Error);
        assert!(
            msg.contains("timed out after 1m") && msg.contains("missing rank 1"),
            "{msg}"
        );
    }

    #[test]
    fn ranks_are_bounded() {
        let c = check(&Mpi, "mpicc", vec![("ranks", int(0))]);
        assert_eq!(
            messages(&Mpi.validate(&c)),
            vec!["bad-value: `ranks` must be between 1 and 256, got 0"]
        );
    }
}
