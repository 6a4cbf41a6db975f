//! The smaller trust-boundary defects (issue 11, items 4, 7 and 8): what a
//! hostile image, profile or environment could do to nodecheck itself: a
//! predictable temporary file, an include chain that overflowed the stack,
//! decompression memory growing with `--jobs`, a flooding `scontrol`, a
//! hung container engine, a 50 MB line quoted whole in a message.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nodecheck")
}

/// Runs `cmd` for at most `limit` (then kills it, so that a test of a hang
/// fails instead of hanging); its output and how long it took.
fn run_limited(cmd: &mut Command, limit: Duration) -> (Output, Duration) {
    let start = Instant::now();
    let mut child: Child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    (o, start.elapsed())
}

fn script(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// `PATH` with `dir` first.
fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn nhc_bundled_profile_ignores_what_others_plant_in_tmp() {
    if Path::new("/etc/nodecheck/nhc.toml").exists() {
        eprintln!("note: nhc_bundled_profile skipped: this node has /etc/nodecheck/nhc.toml");
        return;
    }
    // nhc wrote the bundled profile to $TMPDIR/nodecheck-nhc-<pid>.toml:
    // plant that name for the next 20,000 pids, as links to a canary.
    let tmp = tempfile::tempdir().unwrap();
    let canary_dir = tempfile::tempdir().unwrap();
    let canary = canary_dir.path().join("canary");
    fs::write(&canary, "CANARY-7d1e").unwrap();
    let last: u32 = fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for pid in last..last + 20_000 {
        symlink(
            &canary,
            tmp.path().join(format!("nodecheck-nhc-{pid}.toml")),
        )
        .unwrap();
    }
    let before = fs::read_dir(tmp.path()).unwrap().count();
    let (o, _) = run_limited(
        Command::new(bin())
            .args(["nhc", "--no-slurm"])
            .env("TMPDIR", tmp.path()),
        Duration::from_secs(60),
    );
    let out = stdout(&o);
    assert!(matches!(code(&o), 0 | 1), "{out}\n{}", stderr(&o));
    assert!(out.contains("nodecheck:  9 controls: "), "{out}");
    assert!(!out.contains("CANARY") && !stderr(&o).contains("CANARY"));
    assert_eq!(fs::read_to_string(&canary).unwrap(), "CANARY-7d1e");
    // Nothing left behind, nothing planted removed.
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), before);
}

#[test]
fn an_include_chain_of_8000_files_is_a_diagnostic_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let n = 8000;
    for i in 0..n {
        let include = if i + 1 < n {
            format!("include = [\"p{}.toml\"]\n", i + 1)
        } else {
            String::new()
        };
        fs::write(
            dir.path().join(format!("p{i}.toml")),
            format!("[profile]\nname = \"p{i}\"\n{include}"),
        )
        .unwrap();
    }
    let p0 = dir.path().join("p0.toml");
    for cmd in ["validate", "run"] {
        let o = nodecheck(&[cmd, p0.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(code(&o), 2, "{cmd}: {err:.3000}");
        let at = format!(
            "{}:3:12: error[include-depth]: includes nest deeper than 64 files",
            dir.path().join("p63.toml").display()
        );
        assert!(err.contains(&at), "{cmd}: {err:.3000}");
    }
}

#[test]
fn scontrol_output_over_64_kib_neither_stalls_nor_skips_the_drain() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = dir.path().join("bin");
    fs::create_dir(&bin_dir).unwrap();
    let log = dir.path().join("scontrol.log");
    // 300 KB on stderr and a 200 KB node line on stdout: either fills its
    // pipe long before scontrol exits.
    script(
        &bin_dir.join("scontrol"),
        "#!/bin/sh\necho \"$*\" >> \"$NC_SCONTROL_LOG\"\n\
         head -c 300000 /dev/zero | tr '\\0' e >&2\n\
         if [ \"$1\" = -o ]; then\n\
           printf 'NodeName=n1 State=IDLE Comment=%s Reason=(null)\\n' \"$(head -c 200000 /dev/zero | tr '\\0' x)\"\n\
         fi\nexit 0\n",
    );
    let profile = dir.path().join("p.toml");
    fs::write(
        &profile,
        "[profile]\nname = \"sick\"\n[[control]]\nid = \"scratch\"\n  [[control.file]]\n  path = \"/nonexistent-nodecheck-scratch\"\n  exists = true\n",
    )
    .unwrap();
    let (o, took) = run_limited(
        Command::new(bin())
            .args(["nhc", "--node", "n1", "--profile"])
            .arg(&profile)
            .env("PATH", path_with(&bin_dir))
            .env("NC_SCONTROL_LOG", &log)
            .env_remove("SLURMD_NODENAME"),
        Duration::from_secs(60),
    );
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}\n{}", stderr(&o));
    assert!(took < Duration::from_secs(8), "took {took:?}: {out}");
    assert!(
        out.contains("nodecheck:  slurm:  drained node n1: nodecheck: scratch: "),
        "{out}"
    );
    let calls = fs::read_to_string(&log).unwrap();
    assert!(calls.starts_with("-o show node n1\n"), "{calls}");
    assert!(
        calls.contains("update nodename=n1 state=drain reason=nodecheck: scratch: "),
        "{calls}"
    );
}

/// Whether a process runs the program at `exe`.
fn running(exe: &Path) -> bool {
    let want = exe.as_os_str().as_encoded_bytes();
    fs::read_dir("/proc").unwrap().flatten().any(|e| {
        fs::read(e.path().join("cmdline")).is_ok_and(|c| c.split(|b| *b == 0).next() == Some(want))
    })
}

#[test]
fn a_hung_container_engine_is_cut_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = dir.path().join("bin");
    fs::create_dir(&bin_dir).unwrap();
    // A CLI that never answers, with a child of its own holding the pipes.
    let sleeper = bin_dir.join("nodecheck-test-engine-sleep");
    fs::copy("/bin/sleep", &sleeper).unwrap();
    for engine in ["podman", "docker"] {
        script(
            &bin_dir.join(engine),
            &format!("#!/bin/sh\n'{0}' 1000 &\n'{0}' 1000\n", sleeper.display()),
        );
    }
    let profile = dir.path().join("p.toml");
    fs::write(
        &profile,
        "[profile]\nname = \"c\"\n[[control]]\nid = \"a\"\n  [[control.file]]\n  path = \"/etc/os-release\"\n  exists = true\n",
    )
    .unwrap();
    for engine in ["podman", "docker"] {
        let (o, took) = run_limited(
            Command::new(bin())
                .arg("run")
                .arg(&profile)
                .args(["--target", &format!("{engine}:web")])
                .env("PATH", path_with(&bin_dir))
                .env("NODECHECK_ENGINE_TIMEOUT", "1s"),
            Duration::from_secs(30),
        );
        let err = stderr(&o);
        assert_eq!(code(&o), 3, "{engine} took {took:?}: {err}");
        assert!(took < Duration::from_secs(6), "{engine}: took {took:?}");
        assert!(
            err.contains(&format!(
                "{engine} inspect --format {{{{.State.Pid}}}} web did not answer within 1s and was killed"
            )),
            "{err}"
        );
        // The engine CLI's whole process group went with it.
        let start = Instant::now();
        while running(&sleeper) && start.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            !running(&sleeper),
            "{engine}: a child of the engine CLI survived"
        );
    }
}

/// A zstd frame of RLE blocks: 8 KiB that unpack to 257 MiB of zeros.
fn zstd_bomb() -> Vec<u8> {
    let mut bomb = b"\x28\xb5\x2f\xfd\x00\x38".to_vec();
    let blocks = (257 << 20) / (128 << 10);
    for i in 0..blocks {
        let last = u32::from(i == blocks - 1);
        let header = last | (1 << 1) | ((128 << 10) << 3);
        bomb.extend_from_slice(&header.to_le_bytes()[..3]);
        bomb.push(0);
    }
    bomb
}

#[test]
fn decompression_memory_is_capped_per_run_not_per_job() {
    if !Path::new("/usr/bin/time").exists() {
        eprintln!(
            "note: decompression_memory skipped: /usr/bin/time not installed (tests/deps.sh)"
        );
        return;
    }
    // A kernel whose 12 modules are all bombs, checked 8 at a time.
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let kver = "6.1.0-bomb";
    let mods = r.join(format!("lib/modules/{kver}"));
    fs::create_dir_all(mods.join("kernel")).unwrap();
    fs::create_dir_all(r.join("boot")).unwrap();
    fs::write(r.join(format!("boot/vmlinuz-{kver}")), "MZ").unwrap();
    let bomb = zstd_bomb();
    let n = 12;
    let mut dep = String::new();
    let mut profile = String::from("[profile]\nname = \"bombs\"\n");
    for i in 0..n {
        fs::write(mods.join(format!("kernel/b{i}.ko.zst")), &bomb).unwrap();
        dep.push_str(&format!("kernel/b{i}.ko.zst:\n"));
        profile.push_str(&format!(
            "[[control]]\nid = \"b{i}\"\n  [[control.kernel_module]]\n  name = \"b{i}\"\n  loadable = true\n"
        ));
    }
    fs::write(mods.join("modules.dep"), dep).unwrap();
    fs::write(mods.join("modules.builtin"), "").unwrap();
    let p = r.join("bombs.toml");
    fs::write(&p, profile).unwrap();
    let json = r.join("report.json");
    let (o, _) = run_limited(
        Command::new("/usr/bin/time")
            .args(["-f", "maxrss_kib=%M", bin(), "run"])
            .arg(&p)
            .arg("--target")
            .arg(r)
            .args(["--jobs", "8", "--json"])
            .arg(&json),
        Duration::from_secs(300),
    );
    let err = stderr(&o);
    assert_eq!(code(&o), 1, "{}\n{err}", stdout(&o));
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    let controls = report["controls"].as_array().unwrap();
    assert_eq!(controls.len(), n);
    for c in controls {
        let msg = c["checks"][0]["properties"][0]["message"].as_str().unwrap();
        assert!(
            msg.contains("zstd data unpacks to more than 256 MiB (a decompression bomb?)"),
            "{msg}"
        );
    }
    let kib: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib="))
        .unwrap_or_else(|| panic!("no maxrss in {err}"))
        .trim()
        .parse()
        .unwrap();
    // One 256 MiB unpacking at a time plus the shared pool of ordinary
    // ones; eight bombs side by side took 1.9 GB.
    eprintln!("peak RSS {} MiB for {n} bombs at --jobs 8", kib >> 10);
    assert!(kib < 640 << 10, "peak RSS {} MiB", kib >> 10);
}

#[test]
fn a_long_line_makes_a_short_message() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // 8 MiB (the red team's 50 MB takes long at debug speed): the
    // messages quoted it whole, twice for a profile.
    let long = "A".repeat(8 << 20);
    fs::create_dir_all(r.join("etc/ssh")).unwrap();
    fs::create_dir_all(r.join("var/lib/dpkg")).unwrap();
    // A keyword without a value, and a field name with a space in it.
    fs::write(r.join("etc/ssh/sshd_config"), format!("{long}\n")).unwrap();
    fs::write(
        r.join("var/lib/dpkg/status"),
        format!("Package: bash\nStatus: install ok installed\nVersion: 5.2\n{long} x: y\n"),
    )
    .unwrap();
    let profile = r.join("p.toml");
    fs::write(
        &profile,
        "[profile]\nname = \"long\"\n\
         [[control]]\nid = \"sshd\"\n  [[control.config]]\n  path = \"/etc/ssh/sshd_config\"\n  settings = { PermitRootLogin = \"no\" }\n\
         [[control]]\nid = \"pkg\"\n  [[control.package]]\n  name = \"bash\"\n  installed = true\n",
    )
    .unwrap();
    let json = r.join("report.json");
    let o = nodecheck(&[
        "run",
        profile.to_str().unwrap(),
        "--target",
        r.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let all = stdout(&o).len() + stderr(&o).len();
    assert_eq!(code(&o), 1, "{:.3000}", stdout(&o));
    let report = fs::read_to_string(&json).unwrap();
    assert!(all < 200_000, "terminal output of {all} bytes");
    assert!(report.len() < 200_000, "report of {} bytes", report.len());
    for want in [
        "sshd_config:1: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA… (8388608 bytes in all) has no value",
        "status:4: malformed field name \\\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA… (8388610 bytes in all)",
    ] {
        assert!(report.contains(want), "{want}\n{report:.5000}");
    }
    // A long line in a profile: an excerpt under the diagnostic.
    let bad = r.join("bad.toml");
    fs::write(
        &bad,
        format!(
            "[profile]\nname = \"x\"\ntitle = [\"{}\"]\n",
            &long[..256 << 10]
        ),
    )
    .unwrap();
    let o = nodecheck(&["validate", bad.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(code(&o), 2);
    assert!(err.len() < 20_000, "a diagnostic of {} bytes", err.len());
    assert!(err.contains(":3:9: error[wrong-type]"), "{err}");
    assert!(err.contains("bytes in all)"), "{err}");
}
