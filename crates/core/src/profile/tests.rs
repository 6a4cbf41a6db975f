//! Loader tests with a stand-in kind (the real kinds live in the checks
//! crate, which depends on this one).

use std::path::{Path, PathBuf};

use super::*;
use crate::kind::{Compare, Key, Kind, Ty};
use crate::outcome::Evaluation;
use crate::run::Context;

struct FakeFile;

const KEYS: &[Key] = &[
    Key::new("exists", Ty::Bool, "exists"),
    Key::new("follow", Ty::Bool, "follow links").modifier(),
    Key::new("owner", Ty::Matcher(Compare::Version), "owner"),
    Key::new("mode", Ty::Mode, "mode"),
    Key::new("content", Ty::Matcher(Compare::Version), "content"),
    Key::new("size", Ty::Matcher(Compare::Quantity), "size"),
    Key::new("type", Ty::Enum(&["file", "directory"]), "type"),
    Key::new("settings", Ty::MatcherMap(Compare::Version), "settings"),
];

impl Kind for FakeFile {
    fn name(&self) -> &'static str {
        "file"
    }
    fn subject(&self) -> Key {
        Key::new("path", Ty::Str, "the path")
    }
    fn keys(&self) -> &'static [Key] {
        KEYS
    }
    fn doc(&self) -> &'static str {
        ""
    }
    fn eval(&self, _check: &Check, _cx: &Context<'_>) -> Evaluation {
        Evaluation::default()
    }
}

/// A kind whose subject may be left out (like `kernel`).
struct FakeKernel;

const KERNEL_KEYS: &[Key] = &[Key::new(
    "version",
    Ty::Matcher(Compare::Version),
    "version",
)];

impl Kind for FakeKernel {
    fn name(&self) -> &'static str {
        "kernel"
    }
    fn subject(&self) -> Key {
        Key::new("release", Ty::Str, "the release")
    }
    fn default_subject(&self) -> Option<&'static str> {
        Some("")
    }
    fn keys(&self) -> &'static [Key] {
        KERNEL_KEYS
    }
    fn doc(&self) -> &'static str {
        ""
    }
    fn eval(&self, _check: &Check, _cx: &Context<'_>) -> Evaluation {
        Evaluation::default()
    }
}

const KINDS: &[&dyn Kind] = &[&FakeFile, &FakeKernel];

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

fn load_str(text: &str) -> Result<Profile, Diagnostics> {
    let d = Dir::new();
    let p = d.write("p.toml", text);
    load(&p, KINDS, &LoadOptions::default())
}

fn errors(text: &str) -> Vec<(&'static str, u32, u32, String)> {
    let e = load_str(text).expect_err("the profile should not load");
    e.0.iter()
        .filter(|d| d.is_error())
        .map(|d| {
            let l = d.location.clone().unwrap();
            (d.code, l.line, l.column, d.message.clone())
        })
        .collect()
}

const HEAD: &str = "[profile]\nname = \"t\"\n";

#[test]
fn misspelt_key_is_an_error_at_its_line_and_column() {
    let e = errors(&format!(
        "{HEAD}[[control]]\nid = \"a\"\n  [[control.file]]\n  path = \"/etc/passwd\"\n  ownr = \"root\"\n"
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    let (code, line, col, msg) = &e[0];
    assert_eq!((*code, *line, *col), ("unknown-key", 7, 3));
    assert!(msg.contains("did you mean `owner`"), "{msg}");
    assert!(msg.contains("expected one of path, exists"), "{msg}");
}

#[test]
fn all_errors_are_collected() {
    let e = errors(&format!(
        "{HEAD}[[control]]\nid = \"a\"\nseverity = \"urgent\"\n  [[control.file]]\n  path = \"/x\"\n  mode = \"0999\"\n  content = {{ matches = \"([\" }}\n  [[control.fiel]]\n  path = \"/y\"\n  [[control.file]]\n  path = \"/z\"\n"
    ));
    let codes: Vec<&str> = e.iter().map(|e| e.0).collect();
    assert_eq!(
        codes,
        vec![
            "bad-value",
            "bad-mode",
            "bad-regex",
            "unknown-resource",
            "vacuous-check"
        ],
        "{e:?}"
    );
    assert!(e[3].3.contains("did you mean `file`"), "{}", e[3].3);
}

#[test]
fn syntax_errors_name_line_and_column() {
    let e = errors(&format!("{HEAD}[[control]]\nid = \"a\nx = 1\n"));
    assert_eq!(e[0].0, "syntax");
    assert_eq!(e[0].1, 4);
}

#[test]
fn wrong_types_and_missing_keys() {
    let e = errors(&format!(
        "{HEAD}[[control]]\nid = \"a\"\n  [[control.file]]\n  exists = \"yes\"\n  [[control.file]]\n  path = 3.5\n  exists = true\n"
    ));
    let codes: Vec<&str> = e.iter().map(|e| e.0).collect();
    assert_eq!(
        codes,
        vec!["missing-key", "wrong-type", "wrong-type"],
        "{e:?}"
    );
}

#[test]
fn vacuous_checks_are_errors() {
    for body in [
        "path = \"/x\"",
        "path = \"/x\"\nfollow = false",
        "path = \"/x\"\nowner = {}",
        "path = []\nexists = true",
    ] {
        let e = errors(&format!(
            "{HEAD}[[control]]\nid = \"a\"\n[[control.file]]\n{body}\n"
        ));
        assert!(
            e.iter()
                .any(|e| e.0 == "vacuous-check" || e.0 == "empty-matcher"),
            "{body}: {e:?}"
        );
    }
}

#[test]
fn an_optional_subject_may_be_left_out_but_not_empty() {
    let p = load_str(&format!(
        "{HEAD}[[control]]\nid = \"a\"\n[[control.kernel]]\nversion = {{ ge = \"6.1\" }}\n[[control.kernel]]\nrelease = \"6.1.0-28-amd64\"\nversion = \"6.1.0-28-amd64\"\n"
    ))
    .unwrap();
    let names: Vec<String> = p.controls[0].checks.iter().map(Check::name).collect();
    assert_eq!(names, vec!["kernel", "kernel 6.1.0-28-amd64"]);
    let e = load_str(&format!(
        "{HEAD}[[control]]\nid = \"a\"\n[[control.kernel]]\nrelease = \"\"\nversion = \"1\"\n"
    ))
    .unwrap_err();
    assert!(e.to_string().contains("`release` must not be empty"), "{e}");
    // A required subject is still required.
    let e = load_str(&format!(
        "{HEAD}[[control]]\nid = \"a\"\n[[control.file]]\nexists = true\n"
    ))
    .unwrap_err();
    assert!(e.to_string().contains("file check needs `path`"), "{e}");
}

#[test]
fn list_subjects_expand_and_vars_interpolate() {
    let p = load_str(&format!(
        "{HEAD}[vars]\ndirs = [\"/bin\", \"/etc\"]\nroot = \"root\"\n[[control]]\nid = \"a\"\ntitle = \"owned by ${{root}}\"\n[[control.file]]\npath = [\"${{dirs}}\", \"/usr\"]\nowner = \"${{root}}\"\n"
    ))
    .unwrap();
    let c = &p.controls[0];
    assert_eq!(c.title.as_deref(), Some("owned by root"));
    let subjects: Vec<&str> = c.checks.iter().map(|k| k.subject.as_str()).collect();
    assert_eq!(subjects, vec!["/bin", "/etc", "/usr"]);
}

#[test]
fn command_line_vars_win_and_unknown_ones_are_errors() {
    let d = Dir::new();
    let p = d.write(
        "p.toml",
        &format!(
            "{HEAD}[vars]\nrel = \"/etc/os-release\"\nlist = [\"a\"]\n[[control]]\nid = \"a\"\n[[control.file]]\npath = \"${{rel}}\"\nexists = true\n[[control.file]]\npath = \"${{list}}\"\nexists = true\n"
        ),
    );
    let o = LoadOptions {
        vars: vec![
            ("rel".into(), "/usr/lib/os-release".into()),
            ("list".into(), "x,y".into()),
        ],
        ..Default::default()
    };
    let prof = load(&p, KINDS, &o).unwrap();
    let subjects: Vec<&str> = prof.controls[0]
        .checks
        .iter()
        .map(|k| k.subject.as_str())
        .collect();
    assert_eq!(subjects, vec!["/usr/lib/os-release", "x", "y"]);
    let o = LoadOptions {
        vars: vec![("rell".into(), "x".into())],
        ..Default::default()
    };
    let e = load(&p, KINDS, &o).unwrap_err();
    assert_eq!(e.0[0].code, "unknown-var");
    assert!(e.0[0].message.contains("did you mean `rel`"));
}

#[test]
fn undefined_variables_are_located() {
    let e = errors(&format!(
        "{HEAD}[[control]]\nid = \"a\"\n[[control.file]]\npath = \"/lib/modules/${{kernel}}\"\nexists = true\n"
    ));
    assert_eq!(e[0].0, "undefined-variable");
    assert_eq!((e[0].1, e[0].2), (6, 8));
}

#[test]
fn matrix_expands_ids_and_variables() {
    let p = load_str(&format!(
        "{HEAD}[vars]\ncompilers = [\"gcc\", \"clang\"]\n[[control]]\nid = \"mpi-hello\"\nmatrix = {{ cc = \"${{compilers}}\", mpi = [\"openmpi\", \"mpich\"] }}\ntitle = \"${{cc}} with ${{mpi}}\"\n[[control.file]]\npath = \"/usr/bin/${{cc}}\"\nexists = true\n"
    ))
    .unwrap();
    let ids: Vec<&str> = p.controls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "mpi-hello[cc=gcc,mpi=openmpi]",
            "mpi-hello[cc=gcc,mpi=mpich]",
            "mpi-hello[cc=clang,mpi=openmpi]",
            "mpi-hello[cc=clang,mpi=mpich]"
        ]
    );
    assert_eq!(p.controls[2].title.as_deref(), Some("clang with openmpi"));
    assert_eq!(p.controls[2].checks[0].subject, "/usr/bin/clang");
}

#[test]
fn duplicate_ids_after_matrix_are_errors() {
    let e = errors(&format!(
        "{HEAD}[[control]]\nid = \"a[cc=gcc]\"\n[[control.file]]\npath = \"/x\"\nexists = true\n[[control]]\nid = \"a\"\nmatrix = {{ cc = [\"gcc\"] }}\n[[control.file]]\npath = \"/x\"\nexists = true\n"
    ));
    assert_eq!(e[0].0, "duplicate-control-id");
}

#[test]
fn includes_layer_override_and_disable() {
    let d = Dir::new();
    d.write(
        "base.toml",
        "[profile]\nname = \"base\"\n[vars]\nowner = \"root\"\n\
         [[control]]\nid = \"a\"\n[[control.file]]\npath = \"/a\"\nowner = \"${owner}\"\n\
         [[control]]\nid = \"b\"\n[[control.file]]\npath = \"/b\"\nexists = true\n\
         [[control]]\nid = \"c\"\n[[control.file]]\npath = \"/c\"\nexists = true\n",
    );
    let top = d.write(
        "top.toml",
        "[profile]\nname = \"top\"\ninclude = [\"base.toml\"]\ndisable = [\"c\"]\n[vars]\nowner = \"munge\"\n\
         [[control]]\nid = \"b\"\n[[control.file]]\npath = \"/b2\"\nexists = false\n\
         [[control]]\nid = \"d\"\ndepends_on = [\"a\"]\n[[control.file]]\npath = \"/d\"\nexists = true\n",
    );
    let p = load(&top, KINDS, &LoadOptions::default()).unwrap();
    let ids: Vec<&str> = p.controls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, vec!["a", "b", "d"]);
    assert_eq!(p.controls[1].checks[0].subject, "/b2");
    // The including profile's vars win, also inside included controls.
    let owner = p.controls[0].checks[0].matcher("owner").unwrap();
    assert_eq!(owner.describe(), "munge");
    assert_eq!(p.controls[2].depends_on, vec!["a"]);
    assert!(p.controls[0].location.file.ends_with("base.toml"));
}

#[test]
fn include_cycles_and_missing_includes_are_errors() {
    let d = Dir::new();
    d.write(
        "a.toml",
        "[profile]\nname = \"a\"\ninclude = [\"b.toml\"]\n",
    );
    d.write(
        "b.toml",
        "[profile]\nname = \"b\"\ninclude = [\"a.toml\", \"nope.toml\"]\n",
    );
    let e = load(d.0.path().join("a.toml"), KINDS, &LoadOptions::default()).unwrap_err();
    let codes: Vec<&str> = e.0.iter().map(|d| d.code).collect();
    assert_eq!(codes, vec!["include-cycle", "unreadable-profile"], "{e}");
    let cycle = &e.0[0];
    assert_eq!(cycle.location.as_ref().unwrap().line, 3);
    assert!(cycle.message.contains("a.toml -> "), "{}", cycle.message);
}

#[test]
fn an_include_chain_of_thousands_of_files_is_a_diagnostic_not_a_stack_overflow() {
    let d = Dir::new();
    let n = 8000;
    for i in 0..n {
        let include = if i + 1 < n {
            format!("include = [\"p{}.toml\"]\n", i + 1)
        } else {
            String::new()
        };
        d.write(
            &format!("p{i}.toml"),
            &format!("[profile]\nname = \"p{i}\"\n{include}"),
        );
    }
    let e = load(d.0.path().join("p0.toml"), KINDS, &LoadOptions::default()).unwrap_err();
    let codes: Vec<&str> = e.0.iter().map(|d| d.code).collect();
    assert_eq!(codes, vec!["include-depth"], "{e}");
    let at = e.0[0].location.as_ref().unwrap();
    assert!(at.file.ends_with("p63.toml"), "{at}");
    assert_eq!((at.line, at.column), (3, 12), "{e}");
    assert!(e.0[0].message.contains("deeper than 64 files"), "{e}");
    // 64 levels still load.
    let e = load(
        d.0.path().join(format!("p{}.toml", n - 64)),
        KINDS,
        &LoadOptions::default(),
    );
    assert!(e.is_ok(), "{:?}", e.err());
}

#[test]
fn a_long_line_makes_a_short_diagnostic() {
    // 256 KiB (the red team used 50 MB, minutes at debug speed): the
    // diagnostic was twice the line, quoted and underlined.
    let long = "A".repeat(1 << 18);
    // A value of the wrong type spanning the whole line, and an unknown
    // key that is the whole line.
    let e = load_str(&format!(
        "[profile]\nname = \"x\"\ntitle = [\"{long}\"]\n{long} = 1\n"
    ))
    .unwrap_err();
    let text = e.to_string();
    assert!(text.len() < 20_000, "{} bytes", text.len());
    let codes: Vec<&str> = e.0.iter().map(|d| d.code).collect();
    assert_eq!(codes, vec!["wrong-type", "unknown-key"], "{text:.2000}");
    let first = &e.0[0];
    assert_eq!(first.location.as_ref().unwrap().column, 9);
    // The caret still points at the value, under the excerpt.
    let shown: Vec<&str> = text.lines().take(3).collect();
    assert!(
        shown[1].starts_with("    | title = [\"AAAA"),
        "{}",
        shown[1]
    );
    assert!(
        shown[1].ends_with(&format!("… ({} bytes in all)", long.len() + 12)),
        "{}",
        shown[1]
    );
    assert!(shown[2].starts_with("    |         ^^^^"), "{}", shown[2]);
}

#[test]
fn dependencies_must_exist_and_not_cycle() {
    let e = errors(&format!(
        "{HEAD}[[control]]\nid = \"a\"\ndepends_on = [\"b\"]\n[[control.file]]\npath = \"/x\"\nexists = true\n\
         [[control]]\nid = \"b\"\ndepends_on = [\"a\", \"zz\"]\n[[control.file]]\npath = \"/x\"\nexists = true\n"
    ));
    let codes: Vec<&str> = e.iter().map(|e| e.0).collect();
    assert_eq!(
        codes,
        vec!["dependency-cycle", "unknown-dependency"],
        "{e:?}"
    );
}

#[test]
fn waivers_apply_until_they_expire() {
    let text = format!(
        "{HEAD}[[control]]\nid = \"kmod-network\"\n[[control.file]]\npath = \"/x\"\nexists = true\n\
         [[waiver]]\ncontrol = \"kmod-*\"\nreason = \"firmware lands in 2027.02\"\nexpires = \"2027-02-28\"\n"
    );
    let d = Dir::new();
    let p = d.write("p.toml", &text);
    let before = LoadOptions {
        today: chrono::NaiveDate::from_ymd_opt(2027, 2, 28),
        ..Default::default()
    };
    let prof = load(&p, KINDS, &before).unwrap();
    assert_eq!(
        prof.controls[0].waiver.as_ref().unwrap().reason,
        "firmware lands in 2027.02"
    );
    assert!(prof.warnings.is_empty());
    let after = LoadOptions {
        today: chrono::NaiveDate::from_ymd_opt(2027, 3, 1),
        ..Default::default()
    };
    let prof = load(&p, KINDS, &after).unwrap();
    assert!(prof.controls[0].waiver.is_none());
    assert_eq!(prof.warnings[0].code, "expired-waiver");
    assert!(prof.warnings[0].message.contains("kmod-*"));
}

#[test]
fn matchers_modes_and_timeouts_are_typed() {
    let p = load_str(&format!(
        "{HEAD}[[control]]\nid = \"a\"\ntimeout = \"90s\"\ntargets = [\"live\", \"rootfs\"]\nseverity = \"critical\"\n\
         [[control.file]]\npath = \"/x\"\nmode = {{ max = \"0755\" }}\nsize = {{ gt = \"1KiB\", le = 4096 }}\ncontent = {{ matches = \"^ID=\" }}\n"
    ))
    .unwrap();
    let c = &p.controls[0];
    assert_eq!(c.timeout, Some(std::time::Duration::from_secs(90)));
    assert_eq!(c.severity, Severity::Critical);
    let k = &c.checks[0];
    assert_eq!(k.mode("mode").unwrap().describe(), "at most 0755");
    assert_eq!(k.matcher("size").unwrap().describe(), "> 1KiB and <= 4096");
    assert_eq!(k.timeout, Some(std::time::Duration::from_secs(90)));
    let e = errors(&format!(
        "{HEAD}[[control]]\nid = \"a\"\ntimeout = \"soon\"\n[[control.file]]\npath = \"/x\"\nsize = {{ gt = \"lots\" }}\nmode = 644\n"
    ));
    let codes: Vec<&str> = e.iter().map(|e| e.0).collect();
    assert_eq!(
        codes,
        vec!["bad-duration", "bad-quantity", "bad-mode"],
        "{e:?}"
    );
}

#[test]
fn matcher_maps_keep_each_name_its_matcher_and_place() {
    let p = load_str(&format!(
        "{HEAD}[[control]]\nid = \"a\"\n[[control.file]]\npath = \"/x\"\n\
         settings = {{ PermitRootLogin = \"no\", MaxAuthTries = {{ le = \"4\" }} }}\n"
    ))
    .unwrap();
    let m = p.controls[0].checks[0].matchers("settings").unwrap();
    let got: Vec<(&str, String, u32)> = m
        .iter()
        .map(|n| (n.name.as_str(), n.matcher.describe(), n.location.line))
        .collect();
    assert_eq!(
        got,
        [
            ("PermitRootLogin", "no".to_string(), 7),
            ("MaxAuthTries", "<= 4".to_string(), 7)
        ]
    );
    let e = errors(&format!(
        "{HEAD}[[control]]\nid = \"a\"\n[[control.file]]\npath = \"/x\"\nsettings = {{ A = {{ lq = \"4\" }}, B = [1] }}\n\
         [[control.file]]\npath = \"/y\"\nsettings = {{}}\n[[control.file]]\npath = \"/z\"\nsettings = \"no\"\n"
    ));
    let codes: Vec<&str> = e.iter().map(|e| e.0).collect();
    assert_eq!(
        codes,
        vec!["unknown-key", "wrong-type", "empty-matcher", "wrong-type"],
        "{e:?}"
    );
    assert!(e[0].3.contains("`settings.A`"), "{}", e[0].3);
}

#[test]
fn diagnostics_render_with_a_caret() {
    let e = load_str(&format!(
        "{HEAD}[[control]]\nid = \"a\"\n[[control.file]]\npath = \"/x\"\nownr = \"root\"\n"
    ))
    .unwrap_err();
    let text = e.to_string();
    let file = Path::new(&*e.0[0].location.as_ref().unwrap().file)
        .display()
        .to_string();
    assert!(
        text.starts_with(&format!("{file}:7:1: error[unknown-key]")),
        "{text}"
    );
    assert!(
        text.contains("\n    | ownr = \"root\"\n    | ^^^^\n"),
        "{text}"
    );
}

#[test]
fn diagnostic_codes_are_documented() {
    // The loader's codes and those the kinds return from `validate`.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut sources = String::new();
    for dir in ["crates/core/src/profile", "crates/checks/src"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("tests.rs") {
                sources += &std::fs::read_to_string(p).unwrap();
            }
        }
    }
    let re = regex::Regex::new(
        r#"(?:Diagnostic::(?:error|warning)\(|diagnostic\(\s*check,\s*[^,]+,)\s*"([a-z0-9-]+)""#,
    )
    .unwrap();
    let mut used: Vec<&str> = re
        .captures_iter(&sources)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    used.sort_unstable();
    used.dedup();
    let docs = std::fs::read_to_string(root.join("docs/diagnostics.md")).unwrap();
    let row = regex::Regex::new(r"(?m)^\| `([a-z0-9-]+)` \|").unwrap();
    let documented: Vec<&str> = row
        .captures_iter(&docs)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    assert_eq!(used, documented, "docs/diagnostics.md is out of date");
}

#[test]
fn only_if_on_controls_and_checks_is_parsed_and_validated() {
    let p = load_str(&format!(
        "{HEAD}[[control]]\nid = \"a\"\nonly_if = {{ os = [\"debian\", \"ubuntu\"], os_version = {{ ge = \"12\" }}, arch = \"amd64\", exists = \"/usr/bin/python3\", hostname = \"node[001-128]\" }}\n  [[control.file]]\n  path = \"/x\"\n  exists = true\n  only_if = {{ os = \"rhel\" }}\n"
    ))
    .unwrap();
    let c = &p.controls[0];
    let o = c.only_if.as_ref().unwrap();
    assert_eq!(o.os, ["debian", "ubuntu"]);
    assert_eq!(o.arch, ["x86_64"], "Debian's name is the uname name");
    assert_eq!(o.exists, ["/usr/bin/python3"]);
    assert!(o.hostname.as_ref().unwrap().1.matches("node007"));
    assert_eq!(o.os_version.as_ref().unwrap().describe(), ">= 12");
    assert_eq!((o.location.line, o.location.column), (5, 11));
    assert_eq!(c.checks[0].only_if.as_ref().unwrap().os, ["rhel"]);
    let e = errors(&format!(
        "{HEAD}[[control]]\nid = \"a\"\nonly_if = {{ oss = \"debian\", arch = \"sparc\", exists = \"usr/bin\", hostname = \"n[3-1]\", os = \"Debian\" }}\n  [[control.file]]\n  path = \"/x\"\n  exists = true\n  only_if = {{}}\n[[control]]\nid = \"b\"\nonly_if = \"debian\"\n  [[control.file]]\n  path = \"/x\"\n  exists = true\n"
    ));
    let got: Vec<(&str, u32, u32)> = e.iter().map(|(c, l, col, _)| (*c, *l, *col)).collect();
    assert_eq!(
        got,
        [
            ("unknown-key", 5, 13),
            ("bad-value", 5, 36),
            ("bad-value", 5, 54),
            ("bad-value", 5, 76),
            ("bad-value", 5, 91),
            ("empty-matcher", 9, 13),
            ("wrong-type", 12, 11),
        ],
        "{e:#?}"
    );
    assert!(e[0].3.contains("did you mean `os`"), "{}", e[0].3);
    assert!(
        e[1].3.contains("unknown architecture \"sparc\""),
        "{}",
        e[1].3
    );
    assert!(e[3].3.contains("range 3-1 runs backwards"), "{}", e[3].3);
}
