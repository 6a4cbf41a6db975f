//! The run as a CI gate: where reports go (stdout, links, devices, FIFOs,
//! read-only places, as root in a private mount namespace so the host's
//! /dev is never touched), gates that checked nothing, interrupted runs,
//! output as it happens, `-v`, colour, and the other subcommands' output.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// A tree with a file, and a profile with one passing control, one
/// live-only control and one failing control.
fn fixture() -> (Tree, String) {
    let t = Tree::new();
    t.file("root/etc/hostname", 0o644, "node01");
    t.file(
        "p.toml",
        0o644,
        "[profile]\nname = \"gate\"\n\n\
         [[control]]\nid = \"hostname\"\ntags = [\"base\"]\n  [[control.file]]\n  path = \"/etc/hostname\"\n  content = \"node01\"\n\n\
         [[control]]\nid = \"live-only\"\ntargets = [\"live\"]\n  [[control.file]]\n  path = \"/etc/hostname\"\n  exists = true\n\n\
         [[control]]\nid = \"motd\"\ntags = [\"motd\"]\nseverity = \"low\"\n  [[control.file]]\n  path = \"/etc/motd\"\n  exists = true\n",
    );
    let p = t.path().join("p.toml").display().to_string();
    (t, p)
}

fn root_of(t: &Tree) -> String {
    t.path().join("root").display().to_string()
}

/// Runs `script` with `sh -eu` as root in a private mount namespace (so
/// the mounts it makes, a tmpfs over /dev included, vanish with it), with
/// `$NC` the binary. `None` (and a note) where that is not possible.
fn in_private_namespace(script: &str) -> Option<Output> {
    if !is_root() {
        eprintln!("note: skipped, needs root (private mount namespace)");
        return None;
    }
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-euc", script])
        .env("NC", env!("CARGO_BIN_EXE_nodecheck"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run unshare");
    Some(o)
}

#[test]
fn json_to_dev_stdout_writes_stdout_and_keeps_the_link() {
    let (t, p) = fixture();
    let root = root_of(&t);
    let d = t.path().display();
    // In the namespace /dev is a fresh tmpfs holding only what nodecheck
    // could damage: the /dev/stdout link.
    let script = format!(
        "mount -t tmpfs nodecheck-test-dev /dev\n\
         ln -s /proc/self/fd/1 /dev/stdout\n\
         ln -s /proc/self/fd/2 /dev/stderr\n\
         rc=0; \"$NC\" run {p} --target {root} --json /dev/stdout > {d}/out.json 2> {d}/err.txt || rc=$?\n\
         echo rc=$rc\n\
         if [ -L /dev/stdout ]; then echo link-kept; fi\n\
         ls -a /dev | tr '\\n' ' '\n"
    );
    let Some(o) = in_private_namespace(&script) else {
        return;
    };
    let out = stdout(&o);
    assert!(out.contains("rc=1"), "{out}{}", stderr(&o));
    assert!(out.contains("link-kept"), "{out}");
    assert!(
        !out.contains(".stdout"),
        "a temp file was left in /dev: {out}"
    );
    let json: Value = serde_json::from_str(&fs::read_to_string(t.path().join("out.json")).unwrap())
        .expect("stdout holds the JSON report alone");
    assert_eq!(json["profile"]["name"], "gate");
    let err = fs::read_to_string(t.path().join("err.txt")).unwrap();
    assert!(
        err.contains("Profile Summary"),
        "terminal report on stderr: {err}"
    );
}

#[test]
fn json_to_dash_is_stdout_and_creates_no_file() {
    let (t, p) = fixture();
    let o = Command::new(env!("CARGO_BIN_EXE_nodecheck"))
        .args(["run", &p, "--target", &root_of(&t), "--json", "-"])
        .env("NO_COLOR", "1")
        .current_dir(t.path())
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let json: Value = serde_json::from_slice(&o.stdout).expect("stdout is the JSON alone");
    assert_eq!(json["controls"].as_array().unwrap().len(), 3);
    assert!(stderr(&o).contains("Profile Summary"), "{}", stderr(&o));
    assert!(!t.path().join("-").exists());
    // Two reports cannot share stdout.
    let o = nodecheck(&[
        "run",
        &p,
        "--target",
        &root_of(&t),
        "--json",
        "-",
        "--junit",
        "/dev/stdout",
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("--junit and --json cannot both go to standard output"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_symlinked_report_is_written_through_the_link() {
    let (t, p) = fixture();
    let reports = t.path().join("reports");
    fs::create_dir(&reports).unwrap();
    fs::write(reports.join("real.json"), "old").unwrap();
    std::os::unix::fs::symlink("reports/real.json", t.path().join("link.json")).unwrap();
    // A temp file a `kill -9`ed run left (its pid cannot be alive), an
    // hour old: cleaned. Another report's: left alone.
    let stale = reports.join(".real.json.nodecheck-1073741808-Abc12345.tmp");
    let other = reports.join(".other.json.nodecheck-1073741808-Abc12345.tmp");
    for f in [&stale, &other] {
        fs::write(f, "half").unwrap();
        fs::File::options()
            .write(true)
            .open(f)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
    }
    let link = t.path().join("link.json");
    let o = nodecheck(&[
        "run",
        &p,
        "--target",
        &root_of(&t),
        "--json",
        link.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let json: Value =
        serde_json::from_str(&fs::read_to_string(reports.join("real.json")).unwrap()).unwrap();
    assert_eq!(json["profile"]["name"], "gate");
    assert!(!stale.exists(), "stale temp file left");
    assert!(other.exists());
}

#[test]
fn a_fifo_is_written_in_place_to_its_reader() {
    let (t, p) = fixture();
    let fifo = t.path().join("report.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut reader = Command::new("cat")
        .arg(&fifo)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let o = nodecheck(&[
        "run",
        &p,
        "--target",
        &root_of(&t),
        "--junit",
        fifo.to_str().unwrap(),
    ]);
    // Should nodecheck not have opened the FIFO, let the reader go.
    let _ = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let mut got = String::new();
    reader
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut got)
        .unwrap();
    reader.wait().unwrap();
    assert!(got.starts_with("<?xml"), "{got}");
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn unwritable_reports_name_the_path_and_exit_2() {
    let (t, p) = fixture();
    let root = root_of(&t);
    let d = t.path().display();
    // A read-only directory (a read-only mount: root writes through 0555)
    // fails before the run; a device that refuses the bytes (like
    // /dev/full) fails at the end, after the summary was printed.
    let script = format!(
        "mkdir {d}/ro {d}/devs\n\
         mount -t tmpfs -o ro nodecheck-test-ro {d}/ro\n\
         mount -t tmpfs nodecheck-test-devs {d}/devs\n\
         mknod {d}/devs/full c 1 7\n\
         rc=0; \"$NC\" run {p} --target {root} --json {d}/ro/r.json > {d}/ro.out 2>&1 || rc=$?; echo ro=$rc\n\
         rc=0; \"$NC\" run {p} --target {root} --junit {d}/devs/full > {d}/full.out 2> {d}/full.err || rc=$?; echo full=$rc\n\
         if [ -c {d}/devs/full ]; then echo still-a-device; fi\n"
    );
    let Some(o) = in_private_namespace(&script) else {
        return;
    };
    let out = stdout(&o);
    assert!(out.contains("ro=2"), "{out}{}", stderr(&o));
    let ro = fs::read_to_string(t.path().join("ro.out")).unwrap();
    assert!(
        ro.contains(&format!("cannot write report {d}/ro/r.json")) && ro.contains("Read-only"),
        "{ro}"
    );
    assert!(out.contains("full=2"), "{out}");
    assert!(out.contains("still-a-device"), "{out}");
    let full_out = fs::read_to_string(t.path().join("full.out")).unwrap();
    assert!(full_out.contains("Profile Summary"), "{full_out}");
    let full_err = fs::read_to_string(t.path().join("full.err")).unwrap();
    assert!(
        full_err.contains(&format!("cannot write report {d}/devs/full"))
            && full_err.contains("No space left"),
        "{full_err}"
    );
}

#[test]
fn a_selector_that_matches_nothing_is_a_usage_error() {
    let (t, p) = fixture();
    let root = root_of(&t);
    for (flag, value) in [("--tags", "nosuchtag"), ("--controls", "nosuch*")] {
        let o = nodecheck(&["run", &p, "--target", &root, flag, value]);
        assert_eq!(code(&o), 2, "{flag}: {}", stdout(&o));
        assert!(
            stderr(&o).contains(&format!("{flag} {value} matches no control")),
            "{}",
            stderr(&o)
        );
        assert!(stdout(&o).is_empty(), "nothing ran: {}", stdout(&o));
    }
    // One selector that matches is not enough: each must.
    let o = nodecheck(&["run", &p, "--target", &root, "--tags", "base,nosuchtag"]);
    assert_eq!(code(&o), 2);
    let o = nodecheck(&["run", &p, "--target", &root, "--tags", "base"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
}

#[test]
fn a_run_that_checked_nothing_exits_4_unless_allowed() {
    // The bundled NHC profile is live-only: on an image tree every check
    // is skipped.
    let (t, _) = fixture();
    let root = root_of(&t);
    let o = nodecheck(&["run", "profiles/nhc.toml", "--target", &root]);
    assert_eq!(code(&o), 4, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("nothing was checked: all ")
            && stderr(&o).contains("skipped on this rootfs target"),
        "{}",
        stderr(&o)
    );
    let o = nodecheck(&[
        "run",
        "profiles/nhc.toml",
        "--target",
        &root,
        "--allow-empty",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn fail_on_skip_fails_the_gate_on_any_skip() {
    let (t, p) = fixture();
    let root = root_of(&t);
    let o = nodecheck(&[
        "run",
        &p,
        "--target",
        &root,
        "--controls",
        "hostname,live-only",
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let o = nodecheck(&[
        "run",
        &p,
        "--target",
        &root,
        "--controls",
        "hostname,live-only",
        "--fail-on-skip",
    ]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stderr(&o).contains("--fail-on-skip: 1 check was skipped, the first live-only / file /etc/hostname: runs only on live targets"),
        "{}",
        stderr(&o)
    );
    // Below --fail-on, a skip does not count either.
    let o = nodecheck(&[
        "run",
        &p,
        "--target",
        &root,
        "--controls",
        "hostname,live-only",
        "--fail-on-skip",
        "--fail-on",
        "critical",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// Processes whose command line contains `marker` (not nodecheck itself).
fn running(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(marker) && !cmd.contains("nodecheck") && !cmd.contains("sh -c") {
                found.push(cmd);
            }
        }
    }
    found
}

/// A profile with a fast control and a `command` that sleeps `secs`.
fn slow_profile(dir: &Path, secs: &str) -> String {
    let p = dir.join("slow.toml");
    fs::write(
        &p,
        format!(
            "[profile]\nname = \"slow\"\n\n\
             [[control]]\nid = \"fast\"\n  [[control.file]]\n  path = \"/etc/os-release\"\n  exists = true\n\n\
             [[control]]\nid = \"slow\"\ntimeout = \"120s\"\n  [[control.command]]\n  run = \"sleep {secs}\"\n\n\
             [[control]]\nid = \"after\"\ndepends_on = [\"slow\"]\n  [[control.file]]\n  path = \"/etc/hostname\"\n  exists = true\n"
        ),
    )
    .unwrap();
    p.display().to_string()
}

#[test]
fn sigterm_and_sigint_stop_the_run_report_and_kill_the_checks() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    if !is_root() {
        eprintln!("note: skipped, needs root (sandbox on the reference rootfs)");
        return;
    }
    for (signal, want, secs) in [
        (nix::sys::signal::Signal::SIGTERM, 143, "31.4159"),
        (nix::sys::signal::Signal::SIGINT, 130, "31.2718"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let profile = slow_profile(dir.path(), secs);
        let json = dir.path().join("r.json");
        let mut child = Command::new(env!("CARGO_BIN_EXE_nodecheck"))
            .args([
                "run",
                &profile,
                "--target",
                rootfs.to_str().unwrap(),
                "--json",
            ])
            .arg(&json)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while running(secs).is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "sleep never started"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let sent = Instant::now();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let status = child.wait().unwrap();
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "{:?}",
            sent.elapsed()
        );
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(status.code(), Some(want), "{signal}: {out}{err}");
        assert!(err.contains(&format!("interrupted by {signal}")), "{err}");
        assert!(
            out.contains("! command sleep") && out.contains(": interrupted"),
            "{out}"
        );
        let report: Value = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
        let by_id = |id: &str| {
            report["controls"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == id)
                .unwrap()
                .clone()
        };
        assert_eq!(by_id("fast")["status"], "pass");
        let slow = by_id("slow");
        assert_eq!(slow["status"], "error");
        assert_eq!(slow["checks"][0]["properties"][0]["message"], "interrupted");
        assert_eq!(by_id("after")["status"], "error", "{report}");
        // The sandboxed sleep died with the run.
        let gone = Instant::now();
        while !running(secs).is_empty() {
            assert!(
                gone.elapsed() < Duration::from_secs(5),
                "survived: {:?}",
                running(secs)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn each_control_is_printed_as_it_finishes() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    if !is_root() {
        eprintln!("note: skipped, needs root (sandbox on the reference rootfs)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let profile = slow_profile(dir.path(), "4");
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nodecheck"))
        .args(["run", &profile, "--target", rootfs.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut fast_at = None;
    for line in lines.by_ref() {
        if line.unwrap().contains("✔  fast") {
            fast_at = Some(start.elapsed());
            break;
        }
    }
    let fast_at = fast_at.expect("the fast control was printed");
    assert!(
        child.try_wait().unwrap().is_none(),
        "printed only when the run ended"
    );
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    child.wait().unwrap();
    let total = start.elapsed();
    assert!(total >= Duration::from_secs(4));
    assert!(
        fast_at + Duration::from_secs(2) < total,
        "fast at {fast_at:?}, run ended at {total:?}"
    );
    assert!(rest.iter().any(|l| l.contains("✔  slow")), "{rest:?}");
}

#[test]
fn verbose_shows_failing_output_without_internal_markers() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    if !is_root() {
        eprintln!("note: skipped, needs root (sandbox on the reference rootfs)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("v.toml");
    // A module that does not load (the module prelude's markers), and a C
    // program that does not compile (the compiler driver's markers).
    fs::write(
        &profile,
        "[profile]\nname = \"verbose\"\n\n\
         [[control]]\nid = \"module\"\n  [[control.command]]\n  run = \"true\"\n  modules = [\"nosuchmodule\"]\n\n\
         [[control]]\nid = \"cc\"\n  [[control.compiler]]\n  cc = \"gcc\"\n  flags = [\"-include\", \"nonexistent_header_xyz.h\"]\n",
    )
    .unwrap();
    let json = dir.path().join("r.json");
    let junit = dir.path().join("r.xml");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            profile.to_str().unwrap(),
            "--target",
            rootfs.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        nodecheck(&args)
    };
    let o = run(&[]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let plain = stdout(&o);
    assert!(!plain.contains("--- stderr ---"), "{plain}");
    let o = run(&["-v"]);
    let verbose = stdout(&o);
    assert!(verbose.contains("       | --- stderr ---"), "{verbose}");
    assert!(verbose.contains("nonexistent_header_xyz.h"), "{verbose}");
    assert!(verbose.contains("[step: compile]"), "{verbose}");
    for (what, text) in [
        ("terminal", verbose),
        ("json", fs::read_to_string(&json).unwrap()),
        ("junit", fs::read_to_string(&junit).unwrap()),
    ] {
        assert!(!text.contains("@@nodecheck"), "{what}: {text}");
    }
}

fn colored(args: &[&str], env: &[(&str, &str)]) -> bool {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nodecheck"));
    c.args(args).current_dir(repo()).env_remove("NO_COLOR");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    o.stdout.contains(&0x1b)
}

#[test]
fn color_follows_the_flag_then_the_environment() {
    let (t, p) = fixture();
    let root = root_of(&t);
    let base = ["run", p.as_str(), "--target", root.as_str()];
    let with = |extra: &[&'static str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        a
    };
    // stdout is a pipe here.
    assert!(!colored(&base, &[]));
    assert!(colored(&with(&["--color", "always"]), &[]));
    assert!(colored(&with(&["--color", "always"]), &[("NO_COLOR", "1")]));
    assert!(colored(&base, &[("CLICOLOR_FORCE", "1")]));
    assert!(!colored(
        &base,
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]
    ));
    assert!(!colored(
        &with(&["--color", "never"]),
        &[("CLICOLOR_FORCE", "1")]
    ));
    assert!(!colored(&with(&["--no-color"]), &[("CLICOLOR_FORCE", "1")]));
}

#[test]
fn prometheus_counts_a_waived_control_once_and_the_alert_ignores_it() {
    let dir = tempfile::tempdir().unwrap();
    let prom = dir.path().join("n.prom");
    let cases = repo().join("tests/cmd");
    let o = Command::new(env!("CARGO_BIN_EXE_nodecheck"))
        .args([
            "run",
            "waived.profile.toml",
            "--target",
            "waived.in",
            "--prometheus",
        ])
        .arg(&prom)
        .current_dir(&cases)
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let text = fs::read_to_string(&prom).unwrap();
    let series: Vec<(String, f64)> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (s, v) = l.rsplit_once(' ').unwrap();
            (s.to_string(), v.parse().unwrap())
        })
        .collect();
    let controls: f64 = series
        .iter()
        .filter(|(s, _)| s.starts_with("nodecheck_controls{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(controls, 3.0, "three controls, each counted once:\n{text}");

    // The alert of docs/nhc.md, evaluated on this file: it has the form
    // `SELECTOR == 1 unless on (LABELS) nodecheck_control_waived == 1`.
    let doc = fs::read_to_string(repo().join("docs/nhc.md")).unwrap();
    let expr = doc
        .split("```promql\n")
        .nth(1)
        .and_then(|r| r.split("```").next())
        .expect("docs/nhc.md shows the alert in a promql block");
    let expr = expr.split_whitespace().collect::<Vec<_>>().join(" ");
    let re = regex::Regex::new(
        r#"^nodecheck_control_status\{status=~"([a-z|]+)"\} == 1 unless on \(([a-z, ]+)\) nodecheck_control_waived == 1$"#,
    )
    .unwrap();
    let caps = re
        .captures(&expr)
        .unwrap_or_else(|| panic!("unexpected alert: {expr}"));
    let statuses: Vec<&str> = caps[1].split('|').collect();
    let on: Vec<&str> = caps[2].split(", ").collect();
    assert!(on.contains(&"control") && on.contains(&"profile"), "{expr}");
    let label = |s: &str, k: &str| {
        let key = format!("{k}=\"");
        s.split(&key)
            .nth(1)
            .map(|r| r.split('"').next().unwrap().to_string())
    };
    let waived: Vec<String> = series
        .iter()
        .filter(|(s, v)| s.starts_with("nodecheck_control_waived{") && *v == 1.0)
        .filter_map(|(s, _)| label(s, "control"))
        .collect();
    let firing: Vec<String> = series
        .iter()
        .filter(|(s, v)| s.starts_with("nodecheck_control_status{") && *v == 1.0)
        .filter(|(s, _)| label(s, "status").is_some_and(|st| statuses.contains(&st.as_str())))
        .filter_map(|(s, _)| label(s, "control"))
        .filter(|c| !waived.contains(c))
        .collect();
    assert_eq!(waived, ["motd-banner"]);
    assert_eq!(firing, ["issue-present"], "{text}");
}

#[test]
fn validate_lints_each_profile_on_its_own() {
    let t = Tree::new();
    let one = "[profile]\nname = \"site-a\"\n[[control]]\nid = \"shared-id\"\n  [[control.file]]\n  path = \"/etc\"\n  exists = true\n";
    t.file("a.toml", 0o644, one);
    t.file("b.toml", 0o644, &one.replace("site-a", "site-b"));
    t.file("bad.toml", 0o644, "[profile]\nname = \"bad\"\n[[control]]\nid = \"x\"\n  [[control.file]]\n  pth = \"/etc\"\n");
    let a = t.path().join("a.toml").display().to_string();
    let b = t.path().join("b.toml").display().to_string();
    let bad = t.path().join("bad.toml").display().to_string();
    let o = nodecheck(&["validate", &a, &b]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("{a}: ok (1 control, 1 checks)\n{b}: ok (1 control, 1 checks)\n")
    );
    let o = nodecheck(&["validate", &a, &bad, &b]);
    assert_eq!(code(&o), 2);
    assert!(stdout(&o).contains(&format!("{a}: ok")), "{}", stdout(&o));
    assert!(stdout(&o).contains(&format!("{b}: ok")), "{}", stdout(&o));
    assert!(stderr(&o).contains(&format!("{bad}:6:3")), "{}", stderr(&o));
}

#[test]
fn explain_wraps_to_the_width_and_help_says_what_commands_are_for() {
    let o = Command::new(env!("CARGO_BIN_EXE_nodecheck"))
        .args(["explain", "file"])
        .env("COLUMNS", "50")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0);
    let text = stdout(&o);
    let mut code_block = false;
    let mut prose = 0;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            code_block = !code_block;
            continue;
        }
        if code_block || line.starts_with('|') || line.starts_with('#') {
            continue;
        }
        prose += 1;
        // A single word longer than the width (a path) may stand alone.
        assert!(
            line.chars().count() <= 50 || !line.trim().contains(' '),
            "{line:?}"
        );
    }
    assert!(prose > 20, "{text}");
    // The same words as unwrapped.
    let plain = nodecheck(&["explain", "file"]);
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(words(&text), words(&stdout(&plain)));

    let o = nodecheck(&["--help"]);
    let help = stdout(&o);
    for want in [
        "Test HPC node images",
        "run       Run profiles against a target",
        "validate  Parse and lint profiles without running them, each on its own",
        "4 nothing was checked",
        "130/143",
    ] {
        // Column widths follow the longest command name: compare words.
        assert!(words(&help).contains(&words(want)), "{want:?} in:\n{help}");
    }
}
