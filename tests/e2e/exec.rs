//! Running the image's own programs: the toolchain controls of
//! profiles/compute.toml (compilers, MPI, module system) on the real Debian
//! rootfs and on fault copies of it, the same profile against a container
//! made from that rootfs, rootless, and commands that hang, flood, fork
//! daemons or die by a signal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// Runs `nodecheck run PROFILE --target TARGET --json ...` (plus `extra`)
/// and returns the exit status and the parsed JSON report.
fn run_json(profile: &Path, target: &str, extra: &[&str]) -> (i32, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut args = vec![
        "run",
        profile.to_str().unwrap(),
        "--target",
        target,
        "--json",
        json.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = nodecheck(&args);
    let text = format!("{}\n{}", stdout(&o), stderr(&o));
    let report =
        std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("no JSON report ({e}):\n{text}"));
    (code(&o), serde_json::from_str(&report).unwrap(), text)
}

/// control id -> (status, every property message of its checks).
fn outcomes(report: &Value) -> BTreeMap<String, (String, Vec<String>)> {
    let mut out = BTreeMap::new();
    for c in report["controls"].as_array().unwrap() {
        let msgs = c["checks"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|k| k["properties"].as_array().unwrap().iter())
            .map(|p| p["message"].as_str().unwrap().to_string())
            .collect();
        out.insert(
            c["id"].as_str().unwrap().to_string(),
            (c["status"].as_str().unwrap().to_string(), msgs),
        );
    }
    out
}

/// The toolchain controls of profiles/compute.toml.
const TOOLCHAIN: &[&str] = &[
    "compiler[cc=gcc]",
    "compiler[cc=g++]",
    "compiler[cc=gfortran]",
    "mpi-c[cc=gcc,mpi=openmpi]",
    "mpi-fortran[fc=gfortran,mpi=openmpi]",
    "module-system",
];

fn compute() -> PathBuf {
    repo().join("profiles/compute.toml")
}

fn toolchain(target: &str) -> BTreeMap<String, (String, Vec<String>)> {
    let (_, report, text) = run_json(&compute(), target, &["--tags", "toolchain"]);
    let o = outcomes(&report);
    for id in TOOLCHAIN {
        assert!(o.contains_key(*id), "no control {id}:\n{text}");
    }
    o
}

fn assert_status(o: &BTreeMap<String, (String, Vec<String>)>, id: &str, status: &str) {
    let (s, msgs) = &o[id];
    assert_eq!(s, status, "{id}: {msgs:#?}");
}

fn messages_of(o: &BTreeMap<String, (String, Vec<String>)>, id: &str) -> String {
    o[id].1.join("\n")
}

/// Processes anywhere on the host whose command line contains `marker`.
fn survivors(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(marker) && !cmd.contains("nodecheck") {
                found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

fn root_needed() -> bool {
    if !is_root() {
        eprintln!("note: skipped, needs root (fault copies, containers)");
        return true;
    }
    false
}

#[test]
fn toolchain_passes_on_the_reference_rootfs_and_leaves_it_untouched() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    let before = fingerprint(&rootfs);
    let o = toolchain(rootfs.to_str().unwrap());
    for id in TOOLCHAIN {
        assert_status(&o, id, "pass");
    }
    assert!(
        messages_of(&o, "mpi-c[cc=gcc,mpi=openmpi]").contains("all 2 ranks reported"),
        "{o:#?}"
    );
    assert!(
        messages_of(&o, "module-system").contains("got lmod 8."),
        "{o:#?}"
    );
    assert_same(&before, &fingerprint(&rootfs));
}

/// The first `cc1` under usr/lib/gcc (any target triple and version).
fn find_under(root: &Path, dir: &str, name: &str) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root.join(dir))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| !e.file_type().is_dir() && e.file_name().to_string_lossy().starts_with(name))
        .map(|e| e.path().to_path_buf())
        .collect()
}

#[test]
fn without_cc1_gcc_fails_with_gccs_own_words() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    if root_needed() {
        return;
    }
    let fault = Fault::of(&rootfs);
    let cc1: Vec<PathBuf> = find_under(fault.path(), "usr/lib/gcc", "cc1")
        .into_iter()
        .filter(|p| p.file_name().unwrap() == "cc1")
        .collect();
    assert!(!cc1.is_empty(), "no cc1 in the image");
    for p in &cc1 {
        // Unlinking a hard link leaves the cached original alone.
        std::fs::remove_file(p).unwrap();
    }
    let o = toolchain(fault.path().to_str().unwrap());
    assert_status(&o, "compiler[cc=gcc]", "fail");
    let msg = messages_of(&o, "compiler[cc=gcc]");
    assert!(
        msg.contains("compile: gcc failed to compile the C hello world")
            && msg.contains("gcc: fatal error: cannot execute 'cc1'"),
        "{msg}"
    );
    // The other front ends are still there.
    assert_status(&o, "compiler[cc=g++]", "pass");
    assert_status(&o, "compiler[cc=gfortran]", "pass");
    assert_status(&o, "module-system", "pass");
}

#[test]
fn without_libhwloc_mpi_fails() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    if root_needed() {
        return;
    }
    let fault = Fault::of(&rootfs);
    let libs = find_under(fault.path(), "usr/lib", "libhwloc.so");
    assert!(!libs.is_empty(), "no libhwloc in the image");
    for p in &libs {
        std::fs::remove_file(p).unwrap();
    }
    let o = toolchain(fault.path().to_str().unwrap());
    for id in [
        "mpi-c[cc=gcc,mpi=openmpi]",
        "mpi-fortran[fc=gfortran,mpi=openmpi]",
    ] {
        assert_status(&o, id, "fail");
        let msg = messages_of(&o, id);
        assert!(msg.contains("libhwloc.so"), "{id}: {msg}");
        assert!(
            msg.contains("error while loading shared libraries"),
            "{id}: {msg}"
        );
    }
    assert_status(&o, "compiler[cc=gcc]", "pass");
}

/// The environment-modules package, downloaded by tests/deps.sh (or here,
/// when the cache is empty and apt can reach a mirror).
fn environment_modules_deb() -> PathBuf {
    let dir = Path::new("/var/cache/nodecheck/debs");
    let find = || {
        std::fs::read_dir(dir).ok().and_then(|d| {
            d.filter_map(Result::ok).map(|e| e.path()).find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("environment-modules_")
            })
        })
    };
    if let Some(p) = find() {
        return p;
    }
    std::fs::create_dir_all(dir).unwrap();
    let st = Command::new("apt-get")
        .args(["download", "environment-modules"])
        .current_dir(dir)
        .status();
    find().unwrap_or_else(|| {
        panic!(
            "no environment-modules .deb in {} ({st:?}); run tests/deps.sh",
            dir.display()
        )
    })
}

#[test]
fn environment_modules_instead_of_lmod_fails_the_module_system_control() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    if root_needed() {
        return;
    }
    let deb = environment_modules_deb();
    let fault = Fault::of(&rootfs);
    let f = fault.path();
    // Remove Lmod the way dpkg would: every file it installed.
    let list = std::fs::read_to_string(f.join("var/lib/dpkg/info/lmod.list")).unwrap();
    for line in list.lines() {
        let p = f.join(line.trim_start_matches('/'));
        if p.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
            std::fs::remove_file(&p).unwrap();
        }
    }
    for d in ["usr/share/lmod", "etc/lmod"] {
        let _ = std::fs::remove_dir_all(f.join(d));
    }
    // environment-modules brings only new files: extracting it creates
    // them in the copy and changes no shared (hard-linked) file.
    let st = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(f)
        .status()
        .unwrap();
    assert!(st.success());
    let o = toolchain(f.to_str().unwrap());
    assert_status(&o, "module-system", "fail");
    let msg = messages_of(&o, "module-system");
    assert!(
        msg.contains("kind: expected lmod, got environment-modules 5."),
        "{msg}"
    );
    assert!(
        msg.contains("avail: module avail does not offer Core/lmod"),
        "{msg}"
    );
    assert!(
        msg.contains("ERROR: Unable to locate a modulefile for 'Core/lmod'"),
        "{msg}"
    );
    assert_status(&o, "compiler[cc=gcc]", "pass");
}

const HIERARCHY: &str = r#"
[profile]
name = "hierarchy"

[[control]]
id = "lmod-hierarchy"
timeout = "1m"

  [[control.module_system]]
  kind      = "lmod"
  avail     = ["gcc/12"]
  load      = ["gcc/12", "openmpi/4"]
  hierarchy = { "gcc/12" = "openmpi/4" }

[[control]]
id = "mpi-from-modules"

  [[control.command]]
  run     = "echo $NODECHECK_MPI"
  modules = ["gcc/12", "openmpi/4"]
  stdout  = "openmpi-4"
"#;

#[test]
fn lmod_hierarchy_is_checked_on_a_site_tree() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    if root_needed() {
        return;
    }
    let fault = Fault::of(&rootfs);
    let f = fault.path();
    // A site's tree: Core has the compiler, which reveals its MPI.
    let core = f.join("etc/lmod/modules/gcc");
    let compiler = f.join("opt/modulefiles/Compiler/gcc/12/openmpi");
    std::fs::create_dir_all(&core).unwrap();
    std::fs::create_dir_all(&compiler).unwrap();
    std::fs::write(
        core.join("12.lua"),
        "family(\"compiler\")\nprepend_path(\"MODULEPATH\", \"/opt/modulefiles/Compiler/gcc/12\")\n",
    )
    .unwrap();
    std::fs::write(
        compiler.join("4.lua"),
        "family(\"mpi\")\nsetenv(\"NODECHECK_MPI\", \"openmpi-4\")\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("h.toml");
    std::fs::write(&profile, HIERARCHY).unwrap();
    let (rc, report, text) = run_json(&profile, f.to_str().unwrap(), &[]);
    let o = outcomes(&report);
    assert_eq!(rc, 0, "{text}");
    assert!(
        messages_of(&o, "lmod-hierarchy").contains("hierarchy: gcc/12 reveals openmpi/4"),
        "{o:#?}"
    );
    // The compiler module no longer reveals its MPI: the hierarchy is broken.
    std::fs::remove_dir_all(f.join("opt/modulefiles/Compiler")).unwrap();
    let (rc, report, _) = run_json(&profile, f.to_str().unwrap(), &[]);
    let o = outcomes(&report);
    assert_eq!(rc, 1);
    let msg = messages_of(&o, "lmod-hierarchy");
    assert!(
        msg.contains("hierarchy: loading gcc/12 does not reveal openmpi/4 (it reveals nothing)"),
        "{msg}"
    );
    assert!(msg.contains("load: module load openmpi/4 after gcc/12 failed (status 1): Lmod has detected the following error"), "{msg}");
    let msg = messages_of(&o, "mpi-from-modules");
    assert!(
        msg.contains("modules: module load openmpi/4 failed"),
        "{msg}"
    );
}

const BAD: &str = r#"
[profile]
name = "bad-commands"

[[control]]
id = "hang"
timeout = "1s"
  [[control.command]]
  run = "sleep 987700"

[[control]]
id = "endless-flood"
timeout = "1s"
  [[control.command]]
  run = "yes"

[[control]]
id = "flood"
  [[control.command]]
  run = "head -c 20000000 /dev/zero | tr '\\0' y; echo; echo done"
  stdout = { contains = "done" }

[[control]]
id = "daemons"
  [[control.command]]
  run = "(setsid sleep 987701 &); nohup sleep 987702 >/dev/null 2>&1 & echo started"
  stdout = "started"

[[control]]
id = "signal"
  [[control.command]]
  run = "kill -SEGV $$"
"#;

/// Hangs, floods, daemons and signals end with a clear outcome, bounded
/// in time and memory, and nothing they started survives.
fn bad_commands(target: &str, marker: &str) {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("bad.toml");
    std::fs::write(&profile, BAD.replace("98770", marker)).unwrap();
    let start = Instant::now();
    let (rc, report, text) = run_json(&profile, target, &["--jobs", "2"]);
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(rc, 1, "{text}");
    let o = outcomes(&report);
    assert_status(&o, "hang", "error");
    assert!(
        messages_of(&o, "hang").contains("the command timed out after 1s and was killed"),
        "{o:#?}"
    );
    assert_status(&o, "endless-flood", "error");
    assert_status(&o, "flood", "pass");
    assert_status(&o, "daemons", "pass");
    assert_status(&o, "signal", "fail");
    assert!(
        messages_of(&o, "signal").contains("got killed by signal 11 (SIGSEGV)"),
        "{o:#?}"
    );
    // The floods' output was capped, and the report says by how much.
    for id in ["flood", "endless-flood"] {
        let c = report["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap();
        let output = c["checks"][0]["output"].as_str().unwrap();
        assert!(output.contains("bytes of output dropped here"), "{id}");
        assert!(output.len() < 200_000, "{id}: {} bytes kept", output.len());
    }
    assert_eq!(survivors(marker), Vec::<String>::new());
}

#[test]
fn bad_commands_are_bounded_in_the_sandbox() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    bad_commands(rootfs.to_str().unwrap(), "98770");
}

#[test]
fn bad_commands_are_bounded_on_the_live_node() {
    bad_commands("local", "98771");
}

/// A container made by the test: the reference rootfs as root, in its own
/// mount and pid namespaces (`unshare --root`), running `sleep infinity`
/// as its pid 1. Killed, with everything in it, when dropped.
struct TestContainer {
    unshare: Child,
    pid: i32,
}

impl TestContainer {
    fn start(root: &Path) -> TestContainer {
        let mut unshare = Command::new("unshare")
            .args(["--mount", "--pid", "--fork", "--kill-child", "--mount-proc"])
            .arg(format!("--root={}", root.display()))
            .args(["sleep", "infinity"])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .spawn()
            .expect("unshare");
        let parent = unshare.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            let found = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
                let pid: i32 = e.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
                let after = &stat[stat.rfind(')')? + 2..];
                let ppid: u32 = after.split(' ').nth(1)?.parse().ok()?;
                let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
                (ppid == parent && comm.trim() == "sleep").then_some(pid)
            });
            if let Some(pid) = found {
                break pid;
            }
            if Instant::now() > deadline {
                let _ = unshare.kill();
                panic!("the test container did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        TestContainer { unshare, pid }
    }

    fn spec(&self) -> String {
        format!("pid:{}", self.pid)
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        // Its pid 1: SIGKILL from outside ends the whole pid namespace.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

#[test]
fn a_container_from_the_same_rootfs_gives_the_same_outcomes() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    if root_needed() {
        return;
    }
    let before = fingerprint(&rootfs);
    let on_rootfs = toolchain(rootfs.to_str().unwrap());
    let container = TestContainer::start(&rootfs);
    let (_, report, text) = run_json(&compute(), &container.spec(), &[]);
    assert_eq!(report["target"]["kind"], "container", "{text}");
    let in_container = outcomes(&report);
    for id in TOOLCHAIN {
        assert_eq!(
            in_container[*id].0, on_rootfs[*id].0,
            "{id}: container {:#?} rootfs {:#?}",
            in_container[*id], on_rootfs[*id]
        );
        assert_status(&in_container, id, "pass");
    }
    // The whole compute profile, file checks included, passes there too.
    assert_eq!(report["summary"]["controls"]["failed"], 0, "{text}");
    assert_eq!(report["summary"]["controls"]["errored"], 0, "{text}");
    bad_commands(&container.spec(), "98772");
    drop(container);
    // The container ran on the rootfs itself: the runs wrote nothing in it.
    assert_same(&before, &fingerprint(&rootfs));
}

#[test]
fn rootless_runs_in_a_user_namespace_and_skips_root_only_commands() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    if root_needed() {
        return;
    }
    // nobody must reach the binary and the rootfs.
    let exe = Path::new(env!("CARGO_BIN_EXE_nodecheck"));
    let reachable = |p: &Path| {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "test",
                "-r",
            ])
            .arg(p)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !reachable(exe) || !reachable(&rootfs.join("etc/os-release")) {
        eprintln!("note: skipped, user nobody cannot reach the binary or the rootfs");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let profile = dir.path().join("rootless.toml");
    std::fs::write(
        &profile,
        "[profile]\nname = \"rootless\"\ninclude = [\"PROFILE\"]\n\n\
         [[control]]\nid = \"reads-shadow\"\n  [[control.command]]\n  run = \"cat /etc/shadow\"\n  root = true\n\n\
         [[control]]\nid = \"as-root\"\n  [[control.command]]\n  run = \"id -u\"\n  stdout = \"0\"\n"
            .replace("PROFILE", repo().join("profiles/compute/toolchain.toml").to_str().unwrap()),
    )
    .unwrap();
    std::fs::set_permissions(
        &profile,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let json = dir.path().join("r.json");
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(exe)
        .args([
            "run",
            profile.to_str().unwrap(),
            "--target",
            rootfs.to_str().unwrap(),
            "--json",
        ])
        .arg(&json)
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = format!("{}\n{}", stdout(&o), stderr(&o));
    let Ok(report) = std::fs::read_to_string(&json) else {
        panic!("no report:\n{text}");
    };
    let report: Value = serde_json::from_str(&report).unwrap();
    let o = outcomes(&report);
    if o["as-root"].0 == "skip" {
        // The kernel refuses unprivileged user namespaces here: everything
        // that runs programs is skipped, nothing fails.
        eprintln!("note: unprivileged user namespaces are off; rootless exec is skipped");
        assert!(o.values().all(|(s, _)| s == "skip"), "{o:#?}");
        return;
    }
    for id in TOOLCHAIN {
        assert_status(&o, id, "pass");
    }
    assert_status(&o, "as-root", "pass");
    assert_status(&o, "reads-shadow", "skip");
    assert_eq!(o["reads-shadow"].1, vec!["needs root".to_string()]);
}

/// A podman container from the reference rootfs (imported once and kept
/// as `localhost/nodecheck-test:<rootfs name>`), removed when dropped.
struct PodmanContainer {
    name: String,
}

impl PodmanContainer {
    /// `Err(why)` when podman is missing or cannot run a container here.
    fn start(rootfs: &Path) -> Result<PodmanContainer, String> {
        let podman = |args: &[&str]| {
            Command::new("podman")
                .args(args)
                .output()
                .map_err(|e| format!("podman not runnable ({e}); apt-get install podman"))
        };
        let tag = format!(
            "localhost/nodecheck-test:{}",
            rootfs.file_name().unwrap().to_string_lossy()
        );
        if !podman(&["image", "exists", &tag])?.status.success() {
            let st = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "tar -C '{}' -c . 2>/dev/null | podman import - '{tag}' >/dev/null 2>&1",
                    rootfs.display()
                ))
                .status()
                .map_err(|e| e.to_string())?;
            if !st.success() {
                return Err(format!("podman import failed ({st})"));
            }
        }
        let name = format!("nodecheck-test-{}", std::process::id());
        let _ = podman(&["rm", "-f", &name]);
        // Small explicit limits: podman's defaults exceed the hard limits
        // of some build hosts (no CAP_SYS_RESOURCE).
        let base = [
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=4096:4096",
        ];
        let mut errors = Vec::new();
        // crun refuses hybrid cgroup hierarchies; runc copes.
        for runtime in [None, Some("runc")] {
            let mut args: Vec<&str> = base.to_vec();
            if let Some(r) = runtime {
                args.extend(["--runtime", r]);
            }
            args.extend([tag.as_str(), "sleep", "infinity"]);
            let o = podman(&args)?;
            if o.status.success() {
                return Ok(PodmanContainer { name });
            }
            errors.push(String::from_utf8_lossy(&o.stderr).trim().to_string());
            let _ = podman(&["rm", "-f", &name]);
        }
        Err(format!(
            "podman cannot start a container here: {}",
            errors.join("; ")
        ))
    }

    fn diff(&self) -> String {
        let o = Command::new("podman")
            .args(["diff", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for PodmanContainer {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0", &self.name])
            .output();
    }
}

#[test]
fn a_podman_container_gives_the_same_outcomes() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    if root_needed() {
        return;
    }
    let container = match PodmanContainer::start(&rootfs) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("note: podman test skipped: {why}");
            return;
        }
    };
    let before = container.diff();
    let (_, report, text) = run_json(&compute(), &format!("podman:{}", container.name), &[]);
    assert!(
        report["target"]["description"]
            .as_str()
            .unwrap()
            .starts_with(&format!("container:podman:{}", container.name)),
        "{text}"
    );
    let o = outcomes(&report);
    for id in TOOLCHAIN {
        assert_status(&o, id, "pass");
    }
    assert_eq!(report["summary"]["controls"]["failed"], 0, "{text}");
    bad_commands(&format!("podman:{}", container.name), "98773");
    // Nothing the runs did reached the container's filesystem.
    assert_eq!(container.diff(), before);
}
