//! The trust boundary around programs nodecheck runs (issue 11): what a
//! program in the sandbox, a process of a container nodecheck joins, or a
//! descriptor nodecheck inherited could use to reach the host, and what
//! is left when nodecheck is killed mid-command. Each case puts a host
//! canary (a secret file in a host directory) where an escape would find
//! it: the secret must appear in no output and the directory must be
//! unchanged.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// A host directory holding a secret no sandboxed program may read, and
/// where none may create a file.
struct Canary {
    dir: tempfile::TempDir,
    secret: String,
}

impl Canary {
    fn new() -> Canary {
        let dir = tempfile::Builder::new()
            .prefix("ncanary-")
            .tempdir()
            .unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let secret = format!("HOSTCANARY-{}-{nanos}", std::process::id());
        std::fs::write(dir.path().join("canary"), &secret).unwrap();
        Canary { dir, secret }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("canary")
    }

    /// Shell lines that try every descriptor, working directory and root
    /// of every process in sight (`/proc/*/fd/*`, `cwd`, `root`) as a way
    /// to the canary: read it, write beside it, directly, through `..`
    /// (out of a host mount) and through the host's pid 1.
    fn probe(&self) -> String {
        format!(
            r#"C='{c}'; D='{d}'
for F in /proc/[0-9]*/fd/* /proc/[0-9]*/cwd /proc/[0-9]*/root; do
  for P in "$F/canary" "$F$C" "$F/..$C" "$F/../..$C" "$F/1/root$C"; do cat "$P" 2>/dev/null; done
  for W in "$F" "$F$D" "$F/..$D" "$F/../..$D" "$F/1/root$D"; do {{ echo pwned > "$W/written"; }} 2>/dev/null; done
done
"#,
            c = self.file().display(),
            d = self.dir().display()
        )
    }

    /// Fails when the secret is in any of `texts` or the directory holds
    /// anything but the canary, unchanged.
    fn assert_intact(&self, texts: &[&str]) {
        for t in texts {
            assert!(
                !t.contains(&self.secret),
                "the host canary leaked into the output:\n{t}"
            );
        }
        let names: Vec<String> = std::fs::read_dir(self.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["canary"], "something was written on the host");
        assert_eq!(std::fs::read_to_string(self.file()).unwrap(), self.secret);
    }
}

/// A profile of one `command` control running `script`.
fn profile(dir: &Path, script: &str, extra: &str) -> PathBuf {
    let p = dir.join("trust.toml");
    std::fs::write(
        &p,
        format!(
            "[profile]\nname = \"trust\"\n\n[[control]]\nid = \"probe\"\ntimeout = \"60s\"\n  \
             [[control.command]]\n  run = '''\n{script}'''\n{extra}\n"
        ),
    )
    .unwrap();
    p
}

/// `nodecheck run PROFILE --target TARGET --json J`, with `fd` (when
/// given) open as descriptor 7 and not close-on-exec, as a CI runner
/// leaks them. Returns stdout+stderr and the JSON report.
fn run_with(profile: &Path, target: &str, fd: Option<&std::fs::File>) -> (String, Value, String) {
    let json = profile.with_extension("json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nodecheck"));
    cmd.args([
        "run",
        profile.to_str().unwrap(),
        "--target",
        target,
        "--json",
    ])
    .arg(&json)
    .env("NO_COLOR", "1");
    if let Some(f) = fd {
        let raw = f.as_raw_fd();
        // SAFETY: dup2 is async-signal-safe; the result is not
        // close-on-exec, which is the point.
        unsafe {
            cmd.pre_exec(move || {
                if nix::libc::dup2(raw, 7) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let o = cmd.output().unwrap();
    let text = format!("{}\n{}", stdout(&o), stderr(&o));
    let raw = std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("no report ({e}):\n{text}"));
    (text, serde_json::from_str(&raw).unwrap(), raw)
}

/// The status and output of the only check of control `id`.
fn check_of(report: &Value, id: &str) -> (String, String) {
    let c = report["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no control {id}: {report:#}"));
    let check = &c["checks"][0];
    let msgs: Vec<String> = check["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap_or("").to_string())
        .collect();
    (
        c["status"].as_str().unwrap().to_string(),
        format!(
            "{}\n{}",
            msgs.join("\n"),
            check["output"].as_str().unwrap_or("")
        ),
    )
}

fn root_and_rootfs() -> Option<PathBuf> {
    let rootfs = reference_rootfs()?;
    if !is_root() {
        eprintln!("note: skipped, needs root");
        return None;
    }
    Some(rootfs)
}

/// Defect 2: `nodecheck run … 7</host/dir` — the descriptor must not
/// cross into the program, on a rootfs nor on the live node.
#[test]
fn an_inherited_descriptor_does_not_reach_a_command() {
    let Some(rootfs) = root_and_rootfs() else {
        return;
    };
    let canary = Canary::new();
    let leak = std::fs::File::open(canary.dir()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let script = format!(
        "{}if [ -e /proc/$$/fd/7 ]; then echo fd7-\"\"open; fi\necho probe-done\n",
        canary.probe()
    );
    let p = profile(
        work.path(),
        &script,
        "  stdout = { contains = \"probe-done\" }",
    );
    let (text, report, raw) = run_with(&p, rootfs.to_str().unwrap(), Some(&leak));
    let (status, out) = check_of(&report, "probe");
    assert!(!out.contains("fd7-open"), "{out}");
    assert_eq!(status, "pass", "{out}\n{text}");
    canary.assert_intact(&[&text, &raw]);
    // The live node: the program is on the host anyway, but nothing of
    // nodecheck's descriptors is handed to it.
    let p = profile(
        work.path(),
        "if [ -e /proc/$$/fd/7 ]; then echo fd7-\"\"open; fi\necho probe-done\n",
        "  stdout = \"probe-done\"",
    );
    let (text, report, _) = run_with(&p, "local", Some(&leak));
    let (status, out) = check_of(&report, "probe");
    assert_eq!(status, "pass", "{out}\n{text}");
}

/// The init of the sandbox (pid 1, which the program sees) holds nothing
/// of the host once the program runs: no /proc of the host to climb out
/// of with `..`.
#[test]
fn the_sandbox_init_holds_nothing_of_the_host() {
    let Some(rootfs) = root_and_rootfs() else {
        return;
    };
    let canary = Canary::new();
    let work = tempfile::tempdir().unwrap();
    let script = format!("{}echo probe-done\n", canary.probe());
    let p = profile(
        work.path(),
        &script,
        "  stdout = { contains = \"probe-done\" }",
    );
    let (text, report, raw) = run_with(&p, rootfs.to_str().unwrap(), None);
    let (status, out) = check_of(&report, "probe");
    assert_eq!(status, "pass", "{out}\n{text}");
    canary.assert_intact(&[&text, &raw]);
}

/// A container made by the test whose pid 1 is a root shell with Docker's
/// default capabilities that, for as long as it lives, scans every
/// process it can see for a way to the host canary.
struct Scanner {
    unshare: Child,
    pid: i32,
    seen: Arc<Mutex<String>>,
    /// The container's root: a private overlay over the reference rootfs,
    /// since the scanner writes into every root it sees, its own included
    /// (the cached reference must stay as debootstrap left it).
    _root: Overlay,
}

/// An overlay mount of `lower` with a throwaway upper layer, unmounted
/// when dropped.
struct Overlay {
    dir: tempfile::TempDir,
}

impl Overlay {
    fn new(lower: &Path) -> Overlay {
        let dir = tempfile::tempdir().unwrap();
        for d in ["upper", "work", "merged"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            dir.path().join("upper").display(),
            dir.path().join("work").display()
        );
        let st = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(dir.path().join("merged"))
            .status()
            .expect("mount");
        assert!(
            st.success(),
            "cannot mount an overlay over {}",
            lower.display()
        );
        Overlay { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("merged")
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// Docker's default capability set.
const DOCKER_CAPS: &str = "-all,+chown,+dac_override,+fowner,+fsetid,+kill,+setgid,+setuid,\
                           +setpcap,+net_bind_service,+net_raw,+sys_chroot,+mknod,+audit_write,\
                           +setfcap";

impl Scanner {
    fn start(lower: &Path, canary: &Canary) -> Scanner {
        let root = Overlay::new(lower);
        let script = format!(
            r#"seen=
while :; do
  for p in /proc/[0-9]*; do
    n=${{p#/proc/}}
    case "$(tr '\0' ' ' < $p/cmdline 2>/dev/null)" in
      *"__nodecheck-helper sandbox"*) case " $seen " in *" $n "*) ;; *) seen="$seen $n"; echo "SEEN $n";; esac ;;
    esac
  done
{probe}  for n in $seen; do [ -e /proc/$n ] && echo "SCANNED $n"; done
done
"#,
            probe = canary.probe()
        );
        let mut unshare = Command::new("unshare")
            .args(["--mount", "--pid", "--fork", "--kill-child", "--mount-proc"])
            .arg(format!("--root={}", root.path().display()))
            .args([
                "/usr/bin/setpriv",
                "--bounding-set",
                DOCKER_CAPS,
                "/bin/sh",
                "-c",
                &script,
            ])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("unshare");
        let seen = Arc::new(Mutex::new(String::new()));
        let mut out = unshare.stdout.take().unwrap();
        let sink = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let parent = unshare.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            if let Some(pid) = child_named(parent, "sh") {
                break pid;
            }
            assert!(
                Instant::now() < deadline,
                "the test container did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Scanner {
            unshare,
            pid,
            seen,
            _root: root,
        }
    }

    fn output(&self) -> String {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Scanner {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

/// The pid of a child of `parent` whose command name is `comm`.
fn child_named(parent: u32, comm: &str) -> Option<i32> {
    std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let after = &stat[stat.rfind(')')? + 2..];
        let ppid: u32 = after.split(' ').nth(1)?.parse().ok()?;
        let c = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (ppid == parent && c.trim() == comm).then_some(pid)
    })
}

/// Defect 1: the process nodecheck runs inside a container's pid
/// namespace is visible there; a root process of the container with
/// Docker's capabilities scans its descriptors, cwd and root the whole
/// time and must find no way to the host.
#[test]
fn a_container_cannot_reach_the_host_through_the_joining_process() {
    let Some(rootfs) = root_and_rootfs() else {
        return;
    };
    let canary = Canary::new();
    let scanner = Scanner::start(&rootfs, &canary);
    let work = tempfile::tempdir().unwrap();
    let p = profile(
        work.path(),
        "sleep 4; echo probe-done\n",
        "  stdout = \"probe-done\"",
    );
    let (text, report, raw) = run_with(&p, &format!("pid:{}", scanner.pid), None);
    let (status, out) = check_of(&report, "probe");
    assert_eq!(status, "pass", "{out}\n{text}");
    // One more round of the scan after the run.
    std::thread::sleep(Duration::from_secs(1));
    let seen = scanner.output();
    drop(scanner);
    assert!(
        seen.contains("SCANNED "),
        "the scanner never got to scan nodecheck's process in the container:\n{seen}"
    );
    canary.assert_intact(&[&text, &raw, &seen]);
}

/// `sleep` processes anywhere on the host whose argument starts with
/// `marker`.
fn survivors(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.starts_with(&format!("sleep {marker}")) {
                found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// Waits up to `secs` for `f` to hold.
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// The sandbox helpers nodecheck `pid` started.
fn helpers_of(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let p: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let after = &stat[stat.rfind(')')? + 2..];
            let ppid: u32 = after.split(' ').nth(1)?.parse().ok()?;
            (ppid == pid && String::from_utf8_lossy(&cmd).contains("__nodecheck-helper\0sandbox"))
                .then_some(p)
        })
        .collect()
}

/// Cgroups named after helper `pid` anywhere under this process's own
/// cgroups.
fn cgroups_of(helper: u32) -> Vec<PathBuf> {
    let mine = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut found = Vec::new();
    for line in mine.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctls, path) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        let rel = path.trim_start_matches('/');
        let mut dirs = vec![
            Path::new("/sys/fs/cgroup").join(rel),
            Path::new("/sys/fs/cgroup/unified").join(rel),
        ];
        for c in ctls.split(',').filter(|c| !c.is_empty()) {
            dirs.push(Path::new("/sys/fs/cgroup").join(c).join(rel));
        }
        for d in dirs {
            if let Ok(entries) = std::fs::read_dir(&d) {
                for e in entries.flatten() {
                    if e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("nodecheck-{helper}-"))
                    {
                        found.push(e.path());
                    }
                }
            }
        }
    }
    found
}

/// Defect 7: nodecheck killed (`signal`) while a command runs on `target`:
/// nothing the command started survives, and neither does its working
/// directory (live) nor its cgroup.
fn killed_mid_command(target: &str, marker: &str, signal: nix::sys::signal::Signal) {
    let canary = Canary::new();
    let work = tempfile::tempdir().unwrap();
    let pwd = canary.dir().join("pwd");
    let script = if target == "local" {
        format!(
            "echo $PWD > {}\nsleep {marker}1 &\n(setsid sleep {marker}2 &)\nsleep {marker}3\n",
            pwd.display()
        )
    } else {
        format!("sleep {marker}1 &\n(setsid sleep {marker}2 &)\nsleep {marker}3\n")
    };
    let p = profile(work.path(), &script, "");
    assert_eq!(
        survivors(marker),
        Vec::<String>::new(),
        "left over from an earlier run"
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_nodecheck"))
        .args(["run", p.to_str().unwrap(), "--target", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        eventually(30, || survivors(marker).len() == 3),
        "the command did not start: {:?}",
        survivors(marker)
    );
    let helpers = helpers_of(child.id());
    assert!(!helpers.is_empty(), "no sandbox helper under nodecheck");
    let workdir = if target == "local" {
        let w = std::fs::read_to_string(&pwd).unwrap().trim().to_string();
        assert!(Path::new(&w).is_dir(), "{w}");
        std::fs::remove_file(&pwd).unwrap();
        Some(w)
    } else {
        None
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    let _ = child.wait();
    assert!(
        eventually(5, || survivors(marker).is_empty()),
        "survived nodecheck ({signal}): {:?}",
        survivors(marker)
    );
    if let Some(w) = workdir {
        assert!(
            eventually(5, || !Path::new(&w).exists()),
            "{w} survived nodecheck ({signal})"
        );
    }
    for h in helpers {
        assert!(
            eventually(5, || cgroups_of(h).is_empty()),
            "cgroups left: {:?}",
            cgroups_of(h)
        );
    }
    canary.assert_intact(&[]);
}

#[test]
fn nothing_survives_nodecheck_killed_during_a_live_command() {
    if !is_root() {
        eprintln!("note: skipped, needs root");
        return;
    }
    killed_mid_command("local", "98790", nix::sys::signal::Signal::SIGKILL);
    killed_mid_command("local", "98791", nix::sys::signal::Signal::SIGTERM);
}

#[test]
fn nothing_survives_nodecheck_killed_during_a_sandboxed_command() {
    let Some(rootfs) = root_and_rootfs() else {
        return;
    };
    let target = rootfs.to_str().unwrap();
    killed_mid_command(target, "98792", nix::sys::signal::Signal::SIGKILL);
    killed_mid_command(target, "98793", nix::sys::signal::Signal::SIGTERM);
}

/// A working directory left by a killed run (ours, 0700, old, unlocked)
/// is removed by the next live command.
#[test]
fn stale_live_workdirs_are_removed() {
    if !is_root() {
        eprintln!("note: skipped, needs root");
        return;
    }
    let name = format!("nodecheck-{:06}", std::process::id() % 1_000_000);
    let stale = Path::new("/tmp").join(&name);
    let _ = std::fs::remove_dir_all(&stale);
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("left"), "x").unwrap();
    std::fs::set_permissions(&stale, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let old = nix::sys::time::TimeSpec::new(1_000_000_000, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        &stale,
        &old,
        &old,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let p = profile(work.path(), "true\n", "");
    let (text, report, _) = run_with(&p, "local", None);
    assert_eq!(check_of(&report, "probe").0, "pass", "{text}");
    assert!(!stale.exists(), "{} was not cleaned", stale.display());
}

const LIMITS: &str = r#"
[profile]
name = "limits"

[[control]]
id = "processes"
  [[control.command]]
  run    = "n=0; while [ $n -lt 200 ]; do sleep 98795$n & n=$((n+1)); done; [ $(ls /proc | grep -c '^[0-9]') -ge 200 ] && echo all-st\"\"arted"
  limits = { processes = "40" }

[[control]]
id = "fork-bomb"
timeout = "3s"
  [[control.command]]
  run    = "bomb() { bomb | bomb & }; bomb; sleep 5"
  shell  = "bash -c"
  limits = { processes = "64" }

[[control]]
id = "memory"
  [[control.command]]
  run    = "perl -e '$x = q(x) x (400 * 1024 * 1024); print qq(surv).qq(ived\n)'"
  limits = { memory = "64MiB" }

[[control]]
id = "tmpfs"
  [[control.command]]
  run    = "head -c 64M /dev/zero > /tmp/big"
  limits = { tmpfs = "16MiB" }

[[control]]
id = "defaults"
  [[control.command]]
  run    = "true"
"#;

/// Defect 6 (limits): a fork bomb, a memory hog and a tmpfs filler are
/// bounded and end with a clear outcome; the output says which limits
/// applied.
#[test]
fn runs_are_bounded_by_limits() {
    let Some(rootfs) = root_and_rootfs() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let p = work.path().join("limits.toml");
    std::fs::write(&p, LIMITS).unwrap();
    let start = Instant::now();
    let (text, report, _) = run_with(&p, rootfs.to_str().unwrap(), None);
    assert!(start.elapsed() < Duration::from_secs(90), "{text}");
    let (status, out) = check_of(&report, "processes");
    assert_eq!(status, "fail", "{out}");
    assert!(!out.contains("all-started"), "{out}");
    assert!(
        out.contains("limits: ") && out.contains("40 processes"),
        "{out}"
    );
    let (status, out) = check_of(&report, "fork-bomb");
    assert_eq!(status, "error", "{out}");
    assert!(out.contains("timed out after 3s"), "{out}");
    let (status, out) = check_of(&report, "memory");
    assert_eq!(status, "fail", "{out}");
    assert!(!out.contains("survived"), "{out}");
    let (status, out) = check_of(&report, "tmpfs");
    assert_eq!(status, "fail", "{out}");
    assert!(out.contains("No space left on device"), "{out}");
    assert!(out.contains("tmpfs 16MiB each"), "{out}");
    let (status, out) = check_of(&report, "defaults");
    assert_eq!(status, "pass", "{out}");
    assert!(out.contains("limits: "), "{out}");
    assert_eq!(survivors("98795"), Vec::<String>::new());
}

/// A `limits` value that does not parse is a profile error naming it.
#[test]
fn bad_limits_are_profile_errors() {
    let work = tempfile::tempdir().unwrap();
    let p = profile(work.path(), "true\n", "  limits = { memory = \"lots\" }");
    let o = nodecheck(&["validate", p.to_str().unwrap()]);
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(code(&o), 2, "{text}");
    assert!(
        text.contains("bad-value") && text.contains("limit memory"),
        "{text}"
    );
}
