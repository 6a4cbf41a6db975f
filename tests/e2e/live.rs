//! The booted node: the live kinds and `nodecheck nhc` on this machine,
//! against daemons the tests start themselves (a private sshd, a stuck
//! FUSE mount, a real Slurm with munge on loopback) and always stop, so
//! nothing depends on what the host happens to run.
//!
//! Tests that need root or a package say so on stderr and return when it
//! is missing; tests/all.sh runs as root with tests/deps.sh's packages, so
//! in CI they all run.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::util::*;

/// Process names of private sshds: copies of the real one, so the tests
/// never touch (or mistake) a host sshd, nor each other's (they run in
/// parallel).
const SSHD_HEALTHY: &str = "nodecheck-sshd1";
const SSHD_SLURM: &str = "nodecheck-sshd2";
/// Never started: the sshd of a node whose sshd died.
const SSHD_DEAD: &str = "nodecheck-sshd0";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nodecheck")
}

/// A program from $PATH or the sbin directories.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether the test can run here; says why not on stderr.
fn can_run(test: &str, root: bool, programs: &[&str]) -> bool {
    if root && !is_root() {
        eprintln!("note: {test} skipped: needs root");
        return false;
    }
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| which(p).is_none())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "note: {test} skipped: {} not installed (tests/deps.sh installs them)",
            missing.join(", ")
        );
        return false;
    }
    true
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Stops a child: SIGCONT (it may be stopped), SIGTERM, up to five
/// seconds, then SIGKILL; always reaped.
fn stop(child: &mut Child) {
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    let _ = kill(pid, Signal::SIGCONT);
    let _ = kill(pid, Signal::SIGTERM);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Daemons a test started, in the foreground so they are its children:
/// dropped (even on a failed assertion) they are stopped in reverse order
/// and reaped, so no daemon outlives a test.
#[derive(Default)]
struct Daemons {
    procs: Vec<(String, Child)>,
}

impl Daemons {
    fn start(&mut self, name: &str, cmd: &mut Command, log: &Path) -> u32 {
        let out = fs::File::create(log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let pid = child.id();
        self.procs.push((name.to_string(), child));
        pid
    }

    fn stop(&mut self, name: &str) {
        if let Some(i) = self.procs.iter().position(|(n, _)| n == name) {
            let (_, mut child) = self.procs.remove(i);
            stop(&mut child);
        }
    }

    /// Panics with the daemon's log when it has exited.
    fn assert_running(&mut self, name: &str, log: &Path) {
        let (_, child) = self
            .procs
            .iter_mut()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} was not started"));
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{name} exited ({status}):\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        while let Some((_, mut child)) = self.procs.pop() {
            stop(&mut child);
        }
    }
}

/// Waits up to `limit` for `ok`, polling.
fn wait_for(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// Starts a private sshd (a copy named `name`) on a loopback port.
fn start_sshd(dir: &Path, name: &str, daemons: &mut Daemons) {
    let exe = dir.join(name);
    if !exe.exists() {
        fs::copy(which("sshd").unwrap(), &exe).unwrap();
        let st = Command::new(which("ssh-keygen").unwrap())
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(dir.join("hostkey"))
            .status()
            .unwrap();
        assert!(st.success());
        // sshd refuses to start without its privilege separation directory.
        fs::create_dir_all("/run/sshd").unwrap();
    }
    let port = free_port();
    let log = dir.join("sshd.log");
    daemons.start(
        name,
        Command::new(&exe)
            .args(["-D", "-e", "-f", "/dev/null", "-o", "PidFile=none", "-o"])
            .arg(format!("ListenAddress=127.0.0.1:{port}"))
            .arg("-h")
            .arg(dir.join("hostkey")),
        &log,
    );
    wait_for(Duration::from_secs(10), "sshd to listen", || {
        daemons.assert_running(name, &log);
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// A profile that is profiles/nhc.toml with its sshd control looking for
/// the private sshd named `sshd`, plus `extra` TOML.
fn nhc_profile(dir: &Path, sshd: &str, extra: &str) -> PathBuf {
    let p = dir.join("nhc-test.toml");
    let nhc = repo().join("profiles/nhc.toml");
    fs::write(
        &p,
        format!(
            "[profile]\nname = \"nhc-test\"\ninclude = [\"{}\"]\n{extra}\n\n\
             [[control]]\nid = \"sshd\"\ntitle = \"sshd is running\"\nseverity = \"critical\"\n\n  \
             [[control.process]]\n  name = \"{sshd}\"\n  user = \"root\"\n",
            nhc.display()
        ),
    )
    .unwrap();
    p
}

/// `nodecheck nhc` with Slurm out of the picture (no configuration).
fn nhc(args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let o = Command::new(bin())
        .arg("nhc")
        .args(args)
        // No configuration: scontrol fails at once. (A SLURM_CONF naming a
        // missing file would make it retry for a minute.)
        .env_remove("SLURM_CONF")
        .env_remove("SLURMD_NODENAME")
        .output()
        .unwrap();
    (o, start.elapsed())
}

#[test]
fn nhc_passes_on_a_healthy_node_within_the_budget() {
    if !can_run(
        "nhc_passes_on_a_healthy_node",
        true,
        &["sshd", "ssh-keygen"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut daemons = Daemons::default();
    start_sshd(dir.path(), SSHD_HEALTHY, &mut daemons);
    // This machine runs no Slurm of its own: leave those daemons out here
    // (the Slurm test below runs them).
    let profile = nhc_profile(
        dir.path(),
        SSHD_HEALTHY,
        "disable = [\"munge\", \"slurmd\"]",
    );
    let prom = dir.path().join("nodecheck.prom");
    let (o, took) = nhc(&[
        "--profile",
        profile.to_str().unwrap(),
        "--node",
        "nodecheck-test",
        "--prometheus",
        prom.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}\n{}", stderr(&o));
    assert!(out.contains("OK:     nodecheck:  sshd\n"), "{out}");
    assert!(out.contains("OK:     nodecheck:  root-fs\n"), "{out}");
    assert!(!out.contains("ERROR"), "{out}");
    assert!(!out.contains("scontrol update"), "{out}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    let metrics = parse_prometheus(&prom);
    assert_eq!(metrics["nodecheck_healthy{profile=\"nhc-test\"}"], 1.0);
}

#[test]
fn nhc_with_sshd_stopped_fails_names_it_and_shows_the_drain() {
    let dir = tempfile::tempdir().unwrap();
    // The private sshd is not started: as on a node whose sshd died.
    let profile = nhc_profile(dir.path(), SSHD_DEAD, "disable = [\"munge\", \"slurmd\"]");
    let (o, _) = nhc(&[
        "--profile",
        profile.to_str().unwrap(),
        "--node",
        "nodecheck-test",
        "--dry-run",
    ]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}\n{}", stderr(&o));
    let why = format!(
        "process {SSHD_DEAD}: running: expected true, got false (no process named {SSHD_DEAD} is running)"
    );
    assert!(
        out.contains(&format!(
            "ERROR:  nodecheck:  Health check failed:  sshd:  {why}\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "scontrol update nodename=nodecheck-test state=drain reason=\"nodecheck: sshd: {why}\"\n"
        )),
        "{out}"
    );
    // Without --dry-run and without Slurm it only reports.
    let (o, _) = nhc(&[
        "--profile",
        profile.to_str().unwrap(),
        "--node",
        "nodecheck-test",
    ]);
    assert_eq!(code(&o), 1);
    assert!(!stdout(&o).contains("scontrol update"), "{}", stdout(&o));
    // A profile error is a usage error, and drains nothing.
    fs::write(dir.path().join("bad.toml"), "[profile]\nname = \"x\"\n[[control]]\nid = \"a\"\n  [[control.process]]\n  name = \"sshd\"\n  runing = true\n").unwrap();
    let (o, _) = nhc(&[
        "--profile",
        dir.path().join("bad.toml").to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
}

/// A mount whose FUSE daemon is stopped: every stat on it blocks, as on a
/// hung NFS server. Dropping it resumes the daemon and unmounts.
struct StuckMount {
    mnt: PathBuf,
    daemons: Daemons,
}

impl Drop for StuckMount {
    fn drop(&mut self) {
        if let Some((_, child)) = self.daemons.procs.first() {
            let _ = kill(
                Pid::from_raw(i32::try_from(child.id()).unwrap()),
                Signal::SIGCONT,
            );
        }
        let _ = Command::new("fusermount").arg("-u").arg(&self.mnt).status();
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mnt)
            .stderr(Stdio::null())
            .status();
    }
}

/// A FUSE mount whose server answers INIT, then reads every request and
/// never answers it. A process that touches the mount waits in the kernel
/// uninterruptibly, SIGKILL included (the request is already "in
/// userspace"), as on a hard NFS mount whose server died; unlike a stopped
/// daemon (whose requests are still queued, so a fatal signal frees the
/// waiter). Dropping it detaches the mount and closes the device, which
/// aborts the connection and frees every waiter.
struct DeafFuse {
    mnt: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    server: Option<std::thread::JoinHandle<()>>,
}

impl DeafFuse {
    fn mount(mnt: &Path) -> DeafFuse {
        use std::os::fd::AsRawFd;
        use std::sync::atomic::Ordering;
        let dev = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .unwrap();
        let opts = format!(
            "fd={},rootmode=40000,user_id=0,group_id=0,allow_other",
            dev.as_raw_fd()
        );
        nix::mount::mount(
            Some("nodecheck-deaf"),
            mnt,
            Some("fuse.nodecheck-deaf"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            Some(opts.as_str()),
        )
        .unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = std::sync::Arc::clone(&stop);
        let server = std::thread::spawn(move || {
            use std::os::fd::AsFd;
            let mut dev = dev;
            let mut buf = vec![0u8; (1 << 20) + 4096];
            while !stopped.load(Ordering::Relaxed) {
                let mut pfd = [nix::poll::PollFd::new(
                    dev.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                match nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(50u8)) {
                    Ok(0) => continue,
                    Ok(_) => {}
                    Err(_) => break,
                }
                let n = match dev.read(&mut buf) {
                    Ok(n) if n >= 40 => n,
                    _ => break,
                };
                let opcode = u32::from_le_bytes(buf[4..8].try_into().unwrap());
                let unique = u64::from_le_bytes(buf[8..16].try_into().unwrap());
                // FUSE_INIT: agree on the kernel's minor version; every
                // later request is read and left unanswered.
                if opcode == 26 && n >= 56 {
                    let minor = u32::from_le_bytes(buf[44..48].try_into().unwrap());
                    let mut reply = Vec::with_capacity(80);
                    reply.extend_from_slice(&80u32.to_le_bytes());
                    reply.extend_from_slice(&0i32.to_le_bytes());
                    reply.extend_from_slice(&unique.to_le_bytes());
                    reply.extend_from_slice(&7u32.to_le_bytes());
                    reply.extend_from_slice(&minor.to_le_bytes());
                    reply.extend_from_slice(&0u32.to_le_bytes()); // max_readahead
                    reply.extend_from_slice(&0u32.to_le_bytes()); // flags
                    reply.extend_from_slice(&0u16.to_le_bytes()); // max_background
                    reply.extend_from_slice(&0u16.to_le_bytes()); // congestion_threshold
                    reply.extend_from_slice(&4096u32.to_le_bytes()); // max_write
                    reply.extend_from_slice(&1u32.to_le_bytes()); // time_gran
                    reply.resize(80, 0);
                    let _ = dev.write_all(&reply);
                }
            }
        });
        DeafFuse {
            mnt: mnt.to_path_buf(),
            stop,
            server: Some(server),
        }
    }
}

impl Drop for DeafFuse {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.mnt, nix::mount::MntFlags::MNT_DETACH);
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // The server's end of the device closes with its thread: that
        // aborts the connection.
        if let Some(t) = self.server.take() {
            let _ = t.join();
        }
    }
}

/// Runs `nodecheck nhc` on a profile that checks the filesystem at `mnt`,
/// and one whose include lives on `mnt`, with a 2 s budget: each must exit
/// within the budget + 1 s, the first naming the stuck check, the second
/// saying the profile could not be loaded in time.
fn nhc_exits_within_the_budget_on(dir: &Path, mnt: &Path) {
    let budget = Duration::from_secs(2);
    let profile = dir.join("hang.toml");
    fs::write(
        &profile,
        format!(
            "[profile]\nname = \"hang\"\n\n[[control]]\nid = \"root-fs\"\n  [[control.filesystem]]\n  path = \"/\"\n  rw = true\n\n\
             [[control]]\nid = \"scratch\"\n  [[control.filesystem]]\n  path = \"{}\"\n  free = \"1%\"\n",
            mnt.display()
        ),
    )
    .unwrap();
    let (o, took) = nhc(&[
        "--profile",
        profile.to_str().unwrap(),
        "--budget",
        "2s",
        "--node",
        "nodecheck-test",
        "--dry-run",
    ]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}\n{}", stderr(&o));
    assert!(
        took < budget + Duration::from_secs(1),
        "took {took:?}:\n{out}"
    );
    assert!(out.contains("OK:     nodecheck:  root-fs\n"), "{out}");
    let named = format!(
        "ERROR:  nodecheck:  Health check failed:  scratch:  filesystem {}: did not finish within the 2s budget\n",
        mnt.display()
    );
    assert!(out.contains(&named), "{out}");
    assert!(
        out.contains("reason=\"nodecheck: scratch: filesystem "),
        "{out}"
    );

    // The profile itself is read under the budget.
    let including = dir.join("including.toml");
    fs::write(
        &including,
        format!(
            "[profile]\nname = \"including\"\ninclude = [\"{}/site.toml\"]\n",
            mnt.display()
        ),
    )
    .unwrap();
    let (o, took) = nhc(&[
        "--profile",
        including.to_str().unwrap(),
        "--budget",
        "2s",
        "--node",
        "nodecheck-test",
        "--dry-run",
    ]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}\n{}", stderr(&o));
    assert!(
        took < budget + Duration::from_secs(1),
        "took {took:?}:\n{out}"
    );
    assert!(
        out.contains(
            "ERROR:  nodecheck:  Health check failed:  nhc:  loading the profile did not finish within the 2s budget"
        ),
        "{out}"
    );
    assert!(
        out.contains("state=drain reason=\"nodecheck: nhc: "),
        "{out}"
    );
}

#[test]
fn a_hung_mount_is_cut_at_the_budget_and_named() {
    if !can_run(
        "a_hung_mount_is_cut_at_the_budget",
        true,
        &["bindfs", "fusermount"],
    ) || !Path::new("/dev/fuse").exists()
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let mnt = dir.path().join("mnt");
    fs::create_dir_all(&src).unwrap();
    fs::create_dir_all(&mnt).unwrap();
    fs::write(src.join("marker"), "x").unwrap();
    let mut stuck = StuckMount {
        mnt: mnt.clone(),
        daemons: Daemons::default(),
    };
    let log = dir.path().join("bindfs.log");
    let pid = stuck.daemons.start(
        "bindfs",
        Command::new("bindfs").arg("-f").arg(&src).arg(&mnt),
        &log,
    );
    wait_for(Duration::from_secs(10), "bindfs to mount", || {
        stuck.daemons.assert_running("bindfs", &log);
        mnt.join("marker").exists()
    });
    kill(Pid::from_raw(i32::try_from(pid).unwrap()), Signal::SIGSTOP).unwrap();
    nhc_exits_within_the_budget_on(dir.path(), &mnt);
}

#[test]
fn nhc_exits_at_the_budget_even_when_the_kernel_never_lets_a_check_go() {
    if !can_run("nhc_exits_at_the_budget", true, &[]) || !Path::new("/dev/fuse").exists() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let _deaf = DeafFuse::mount(&mnt);
    nhc_exits_within_the_budget_on(dir.path(), &mnt);
}

/// The samples of a Prometheus text file, as the official Python client's
/// parser reads them (python3-prometheus-client); fails when it rejects
/// the file.
pub(crate) fn parse_prometheus(file: &Path) -> std::collections::BTreeMap<String, f64> {
    let script = "import sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        for fam in text_string_to_metric_families(open(sys.argv[1]).read()):\n\
        \x20   for s in fam.samples:\n\
        \x20       labels = ','.join('%s=\"%s\"' % kv for kv in sorted(s.labels.items()))\n\
        \x20       print('%s{%s} %r' % (s.name, labels, s.value))\n";
    let python = Path::new("/usr/bin/python3");
    assert!(
        python.exists(),
        "python3 is needed to parse Prometheus files (tests/deps.sh installs it)"
    );
    let o = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the Prometheus parser rejected {}:\n{}\n{}",
        file.display(),
        stderr(&o),
        fs::read_to_string(file).unwrap_or_default()
    );
    stdout(&o)
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            let k = k.replace("{}", "");
            (k, v.parse::<f64>().unwrap())
        })
        .collect()
}

#[test]
fn prometheus_reports_parse_with_prometheus_parsers() {
    let has_client = Command::new("/usr/bin/python3")
        .args(["-c", "import prometheus_client"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_client {
        eprintln!(
            "note: prometheus_reports_parse skipped: python3-prometheus-client is not installed (tests/deps.sh installs it)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("live.toml");
    fs::write(
        &profile,
        "[profile]\nname = \"live\"\n\n\
         [[control]]\nid = \"root-fs\"\nseverity = \"critical\"\n  [[control.filesystem]]\n  path = \"/\"\n  rw = true\n\n\
         [[control]]\nid = \"no-such-daemon\"\n  [[control.process]]\n  name = \"nodecheck-nothing\"\n  running = true\n\n\
         [[control]]\nid = \"img-only\"\ntargets = [\"rootfs\"]\n  [[control.file]]\n  path = \"/etc/passwd\"\n  exists = true\n",
    )
    .unwrap();
    let textfiles = dir.path().join("textfiles");
    fs::create_dir_all(&textfiles).unwrap();
    let prom = textfiles.join("nodecheck.prom");
    let o = Command::new(bin())
        .args([
            "run",
            profile.to_str().unwrap(),
            "--target",
            "/",
            "--prometheus",
        ])
        .arg(&prom)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    let m = parse_prometheus(&prom);
    let status = |control: &str, sev: &str, st: &str| {
        m[&format!(
            "nodecheck_control_status{{control=\"{control}\",profile=\"live\",severity=\"{sev}\",status=\"{st}\"}}"
        )]
    };
    assert_eq!(status("root-fs", "critical", "pass"), 1.0);
    assert_eq!(status("no-such-daemon", "medium", "fail"), 1.0);
    assert_eq!(status("img-only", "medium", "skip"), 1.0);
    assert_eq!(m["nodecheck_healthy{profile=\"live\"}"], 0.0);
    assert_eq!(m["nodecheck_checks{profile=\"live\",status=\"fail\"}"], 1.0);

    // node_exporter's textfile collector reads it without complaint.
    let Some(exporter) = which("prometheus-node-exporter").or_else(|| which("node_exporter"))
    else {
        eprintln!("note: node_exporter not installed; only the Python parser was used");
        return;
    };
    let port = free_port();
    let mut daemons = Daemons::default();
    let log = dir.path().join("node_exporter.log");
    daemons.start(
        "node_exporter",
        Command::new(exporter)
            .args(["--collector.disable-defaults", "--collector.textfile"])
            .arg(format!(
                "--collector.textfile.directory={}",
                textfiles.display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}")),
        &log,
    );
    let mut body = String::new();
    wait_for(
        Duration::from_secs(15),
        "node_exporter to serve /metrics",
        || {
            daemons.assert_running("node_exporter", &log);
            let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                return false;
            };
            let _ = write!(s, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
            body.clear();
            s.read_to_string(&mut body).is_ok() && body.contains("node_textfile_scrape_error")
        },
    );
    assert!(body.contains("node_textfile_scrape_error 0"), "{body}");
    assert!(
        body.contains("nodecheck_control_status{control=\"root-fs\",profile=\"live\",severity=\"critical\",status=\"pass\"} 1"),
        "{body}"
    );
}

#[test]
fn live_kinds_see_what_the_test_started() {
    let dir = tempfile::tempdir().unwrap();
    // A process with a name of our own, and a port only we listen on.
    let sleepy = dir.path().join("nodecheck-sleepy");
    fs::copy("/bin/sleep", &sleepy).unwrap();
    fs::set_permissions(&sleepy, fs::Permissions::from_mode(0o755)).unwrap();
    let mut daemons = Daemons::default();
    daemons.start(
        "sleepy",
        Command::new(&sleepy).arg("600"),
        &dir.path().join("sleepy.log"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let me = nix::unistd::geteuid().as_raw();
    let profile = dir.path().join("live.toml");
    fs::write(
        &profile,
        format!(
            "[profile]\nname = \"live\"\n\n\
             [[control]]\nid = \"proc\"\n  [[control.process]]\n  name = \"nodecheck-sleepy\"\n  running = true\n  user = \"{me}\"\n  count = 1\n\n\
             [[control]]\nid = \"port\"\n  [[control.port]]\n  port = {port}\n  addresses = \"127.0.0.1\"\n\n\
             [[control]]\nid = \"hw\"\n  [[control.hardware]]\n  cpus = {{ ge = 1 }}\n  memory = \"1MiB\"\n\n\
             [[control]]\nid = \"lo\"\n  [[control.interface]]\n  name = \"lo\"\n  up = true\n\n\
             [[control]]\nid = \"tmp\"\n  [[control.filesystem]]\n  path = \"{}\"\n  free = \"1B\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let o = nodecheck(&["run", profile.to_str().unwrap(), "--target", "/"]);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    // Stopped, the process and the port are gone, and the checks say so.
    daemons.stop("sleepy");
    drop(listener);
    let o = nodecheck(&["run", profile.to_str().unwrap(), "--target", "/"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert!(
        out.contains("process nodecheck-sleepy: running: expected true, got false"),
        "{out}"
    );
    assert!(
        out.contains(&format!("port {port}: listening: expected true, got false")),
        "{out}"
    );
    // On an image, live checks are skipped, never failed; with every
    // check skipped nothing was checked (exit 4, not a pass).
    let image = Tree::new();
    image.file("etc/passwd", 0o644, "root:x:0:0::/root:/bin/sh\n");
    let o = nodecheck(&[
        "run",
        profile.to_str().unwrap(),
        "--target",
        image.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 4, "{}", stdout(&o));
    assert!(stdout(&o).contains("needs a live node"), "{}", stdout(&o));
}

/// A single-node Slurm cluster on loopback, built in a temporary directory
/// and torn down when dropped.
struct Slurm {
    dir: tempfile::TempDir,
    node: String,
    conf: PathBuf,
    daemons: Daemons,
}

impl Slurm {
    fn scontrol(&self, args: &[&str]) -> Output {
        Command::new(which("scontrol").unwrap())
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap()
    }

    /// (State=..., Reason=...) of the node.
    fn node_state(&self) -> (String, String) {
        let o = self.scontrol(&["-o", "show", "node", &self.node]);
        let line = stdout(&o);
        let state = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("State="))
            .unwrap_or("")
            .to_string();
        let reason = line
            .find(" Reason=")
            .map(|i| line[i + 8..].trim().to_string())
            .unwrap_or_default();
        (state, reason)
    }

    fn health_runs(&self) -> usize {
        fs::read_to_string(self.dir.path().join("hc.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("nodecheck:  ") && l.contains(" controls: "))
            .count()
    }

    fn log(&self) -> String {
        let mut s = String::new();
        for f in ["hc.log", "slurmctld.log", "slurmd.log"] {
            let text = fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            s += &format!("--- {f} (last lines)\n");
            for l in tail.into_iter().rev() {
                s += l;
                s.push('\n');
            }
        }
        s
    }

    /// Waits (up to 60 s) until the node's state and reason satisfy `ok`.
    fn wait_state(&self, what: &str, ok: impl Fn(&str, &str) -> bool) {
        let start = Instant::now();
        loop {
            let (state, reason) = self.node_state();
            if ok(&state, &reason) {
                return;
            }
            if start.elapsed() > Duration::from_secs(60) {
                panic!(
                    "timed out waiting for {what}: State={state} Reason={reason}\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn start_slurm(profile_extra: &str) -> Slurm {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["state", "spool", "munge"] {
        fs::create_dir_all(d.join(sub)).unwrap();
    }
    fs::set_permissions(d.join("munge"), fs::Permissions::from_mode(0o755)).unwrap();
    let key: Vec<u8> = (0..1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(d.join("munge/munge.key"), key).unwrap();
    fs::set_permissions(d.join("munge/munge.key"), fs::Permissions::from_mode(0o400)).unwrap();
    let node = nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .split('.')
        .next()
        .unwrap()
        .to_string();
    let conf = d.join("slurm.conf");
    let socket = d.join("munge/munge.socket");
    let profile = nhc_profile(d, SSHD_SLURM, profile_extra);
    // slurmd runs its HealthCheckProgram with no arguments and an empty
    // environment: a wrapper names the profile and the cluster's config.
    let hc = d.join("healthcheck.sh");
    fs::write(
        &hc,
        format!(
            "#!/bin/sh\nexport SLURM_CONF={conf} PATH=/usr/bin:/bin:/usr/sbin:/sbin\n\
             exec {bin} nhc --profile {profile} --budget 10s --prometheus {prom} >>{log} 2>&1\n",
            conf = conf.display(),
            bin = bin(),
            profile = profile.display(),
            prom = d.join("nodecheck.prom").display(),
            log = d.join("hc.log").display(),
        ),
    )
    .unwrap();
    fs::set_permissions(&hc, fs::Permissions::from_mode(0o755)).unwrap();
    let (ctld_port, slurmd_port) = (free_port(), free_port());
    fs::write(
        &conf,
        format!(
            "ClusterName=nodecheck\n\
             SlurmctldHost={node}(127.0.0.1)\n\
             SlurmctldPort={ctld_port}\n\
             SlurmdPort={slurmd_port}\n\
             CommunicationParameters=NoInAddrAny\n\
             AuthType=auth/munge\n\
             AuthInfo=socket={socket}\n\
             CredType=cred/munge\n\
             SlurmUser=root\n\
             SlurmdUser=root\n\
             StateSaveLocation={d}/state\n\
             SlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\n\
             SlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldLogFile={d}/slurmctld.log\n\
             SlurmdLogFile={d}/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             JobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\n\
             JobCompType=jobcomp/none\n\
             SwitchType=switch/none\n\
             MpiDefault=none\n\
             SchedulerType=sched/builtin\n\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_Core\n\
             ReturnToService=2\n\
             HealthCheckProgram={hc}\n\
             HealthCheckInterval=2\n\
             HealthCheckNodeState=ANY\n\
             NodeName={node} NodeAddr=127.0.0.1 CPUs=1 RealMemory=100 State=UNKNOWN\n\
             PartitionName=debug Nodes={node} Default=YES State=UP\n",
            socket = socket.display(),
            d = d.display(),
            hc = hc.display(),
        ),
    )
    .unwrap();
    let mut slurm = Slurm {
        node,
        conf: conf.clone(),
        daemons: Daemons::default(),
        dir,
    };
    let d = slurm.dir.path().to_path_buf();
    start_sshd(&d, SSHD_SLURM, &mut slurm.daemons);
    let munge_log = d.join("munged.out");
    slurm.daemons.start(
        "munged",
        Command::new(which("munged").unwrap())
            .args(["-F", "-f"])
            .arg(format!(
                "--key-file={}",
                d.join("munge/munge.key").display()
            ))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!(
                "--pid-file={}",
                d.join("munge/munged.pid").display()
            ))
            .arg(format!(
                "--log-file={}",
                d.join("munge/munged.log").display()
            ))
            .arg(format!("--seed-file={}", d.join("munge/seed").display())),
        &munge_log,
    );
    wait_for(Duration::from_secs(10), "munged's socket", || {
        slurm.daemons.assert_running("munged", &munge_log);
        socket.exists()
    });
    for (name, exe) in [("slurmctld", "slurmctld"), ("slurmd", "slurmd")] {
        slurm.daemons.start(
            name,
            Command::new(which(exe).unwrap())
                .args(["-D", "-f"])
                .arg(&conf)
                .env("SLURM_CONF", &conf),
            &d.join(format!("{name}.out")),
        );
        std::thread::sleep(Duration::from_millis(500));
        slurm
            .daemons
            .assert_running(name, &d.join(format!("{name}.out")));
    }
    slurm
}

#[test]
fn slurm_drains_on_failure_resumes_on_recovery_and_leaves_admin_drains() {
    if !can_run(
        "slurm_drains_on_failure",
        true,
        &[
            "slurmctld",
            "slurmd",
            "scontrol",
            "munged",
            "sshd",
            "ssh-keygen",
        ],
    ) {
        return;
    }
    let mut slurm = start_slurm("");
    let d = slurm.dir.path().to_path_buf();

    // Healthy: the node comes up idle, and nodecheck's runs say healthy.
    slurm.wait_state("the node to be idle", |s, _| {
        s.starts_with("IDLE") && !s.contains("DRAIN") && !s.contains("DOWN")
    });
    wait_for(Duration::from_secs(30), "a healthy health check", || {
        fs::read_to_string(d.join("hc.log"))
            .unwrap_or_default()
            .contains(" 0 failed, 0 errors")
    });
    let metrics = parse_prometheus(&d.join("nodecheck.prom"));
    assert_eq!(
        metrics["nodecheck_healthy{profile=\"nhc-test\"}"],
        1.0,
        "{}",
        slurm.log()
    );

    // sshd dies: the next health check drains the node, naming the control.
    slurm.daemons.stop(SSHD_SLURM);
    let reason =
        format!("nodecheck: sshd: process {SSHD_SLURM}: running: expected true, got false");
    slurm.wait_state("a nodecheck drain", |s, r| {
        s.contains("DRAIN") && r.starts_with(&reason)
    });

    // sshd is back: nodecheck resumes the node it drained.
    start_sshd(&d, SSHD_SLURM, &mut slurm.daemons);
    slurm.wait_state("the node to be resumed", |s, _| !s.contains("DRAIN"));

    // An admin drains the node: healthy runs leave it drained, and so do
    // unhealthy ones (the admin's reason stays).
    let o = slurm.scontrol(&[
        "update",
        &format!("nodename={}", slurm.node),
        "state=drain",
        "reason=admin: bad DIMM",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let runs = slurm.health_runs();
    wait_for(Duration::from_secs(30), "two more health checks", || {
        slurm.health_runs() >= runs + 2
    });
    let (state, reason) = slurm.node_state();
    assert!(state.contains("DRAIN"), "State={state}\n{}", slurm.log());
    assert!(reason.starts_with("admin: bad DIMM"), "Reason={reason}");
    slurm.daemons.stop(SSHD_SLURM);
    let runs = slurm.health_runs();
    wait_for(Duration::from_secs(30), "two more health checks", || {
        slurm.health_runs() >= runs + 2
    });
    let (state, reason) = slurm.node_state();
    assert!(state.contains("DRAIN"), "State={state}");
    assert!(
        reason.starts_with("admin: bad DIMM"),
        "Reason={reason}\n{}",
        slurm.log()
    );
    assert!(
        fs::read_to_string(d.join("hc.log"))
            .unwrap()
            .contains("already drained by someone else (admin: bad DIMM)"),
        "{}",
        slurm.log()
    );
}

#[test]
fn the_gpu_probe_child_names_what_is_missing() {
    // The gpu-probe helper is the child process that loads NVML and the
    // CUDA driver; its output is read back with ProbeReport::parse.
    let o = Command::new(bin())
        .args([nodecheck_core::helper::ARG, "gpu-probe"])
        .output()
        .unwrap();
    let report = nodecheck_checks::live::gpu::ProbeReport::parse(&stdout(&o))
        .unwrap_or_else(|e| panic!("{e}\n{}", stderr(&o)));
    match (&report.nvml, &report.cuda) {
        (Ok(n), Ok(c)) => {
            assert_eq!(code(&o), 0);
            assert!(!n.driver_version.is_empty() && c.version > 0, "{report:?}");
        }
        _ => {
            // No NVIDIA driver here: a clear message, exit 1, no crash.
            assert_eq!(code(&o), 1, "{report:?}");
            if let Err(e) = &report.nvml {
                assert!(
                    e.contains("libnvidia-ml.so.1") || e.starts_with("nvml"),
                    "{e}"
                );
            }
            if let Err(e) = &report.cuda {
                assert!(e.contains("libcuda.so.1") || e.starts_with("cu"), "{e}");
            }
        }
    }
}

#[test]
fn bare_nhc_uses_the_bundled_profile_when_none_is_installed() {
    if Path::new("/etc/nodecheck/nhc.toml").exists() {
        eprintln!("note: bare_nhc skipped: this node has /etc/nodecheck/nhc.toml");
        return;
    }
    let (o, _) = nhc(&["--no-slurm"]);
    let out = stdout(&o);
    assert!(matches!(code(&o), 0 | 1), "{out}\n{}", stderr(&o));
    for id in [
        "root-fs",
        "tmp",
        "sshd",
        "munge",
        "munge-roundtrip",
        "slurmd",
        "cpus-memory",
        "ib",
        "gpus",
    ] {
        assert!(
            out.contains(&format!("  {id}\n")) || out.contains(&format!("  {id}:  ")),
            "{id}:\n{out}"
        );
    }
    assert!(out.contains("nodecheck:  9 controls: "), "{out}");
}
