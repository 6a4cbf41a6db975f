//! Real programs in real sandboxes: the reference Debian rootfs
//! (tests/rootfs/build.sh) and the live node.
//!
//! This test binary is its own sandbox helper, as any program embedding
//! nodecheck-core must be: `main` calls `helper::dispatch()` first, so it has
//! no libtest harness; each case is a plain function.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nodecheck_core::target::{ExecRequest, Exit, Need, RootFs, Target};

/// A named test over the reference rootfs.
type Case = (&'static str, fn(&Path));

fn main() {
    if let Some(code) = nodecheck_core::helper::dispatch(&[("fd-open", fd_open)]) {
        std::process::exit(code);
    }
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let cases: &[Case] = &[
        ("output_and_status", output_and_status),
        ("writes_vanish", writes_vanish),
        ("timeout_kills_everything", timeout_kills_everything),
        ("daemons_do_not_survive", daemons_do_not_survive),
        ("flood_is_capped", flood_is_capped),
        ("signal_death", signal_death),
        ("hermetic_network_and_mounts", hermetic_network_and_mounts),
        ("files_stdin_env", files_stdin_env),
        ("not_found_is_127", not_found_is_127),
        ("parallel_runs", parallel_runs),
        ("zygotes_are_sealed", zygotes_are_sealed),
        ("without_overlay", without_overlay),
        ("session_keyring_is_fresh", session_keyring_is_fresh),
        (
            "root_without_cgroup_is_bounded",
            root_without_cgroup_is_bounded,
        ),
        ("packed_image_tree", packed_image_tree),
        ("compressed_cpio_tree", compressed_cpio_tree),
    ];
    let live_cases: &[(&str, fn())] = &[
        ("live_runs_and_reaps", live_runs_and_reaps),
        ("live_timeout", live_timeout),
        (
            "helper_children_get_only_stdio",
            helper_children_get_only_stdio,
        ),
    ];
    let mut ran = 0;
    for (name, f) in live_cases {
        if filter.as_deref().is_some_and(|x| !name.contains(x)) {
            continue;
        }
        eprint!("test {name} ... ");
        f();
        eprintln!("ok");
        ran += 1;
    }
    match rootfs() {
        None => eprintln!(
            "note: no reference rootfs; run tests/rootfs/build.sh (sandbox cases skipped)"
        ),
        Some(root) => {
            if !nix::unistd::geteuid().is_root() {
                eprintln!("note: not root; the rootfs sandbox cases run rootless");
            }
            for (name, f) in cases {
                if filter.as_deref().is_some_and(|x| !name.contains(x)) {
                    continue;
                }
                eprint!("test {name} ... ");
                f(&root);
                eprintln!("ok");
                ran += 1;
            }
        }
    }
    eprintln!("{ran} sandbox tests passed");
}

fn rootfs() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NODECHECK_TEST_ROOTFS") {
        return Some(PathBuf::from(p));
    }
    std::fs::read_dir("/var/cache/nodecheck")
        .ok()?
        .filter_map(Result::ok)
        .find(|e| {
            e.file_name().to_string_lossy().starts_with("debian-")
                && e.path().join(".nodecheck-rootfs-complete").exists()
        })
        .map(|e| e.path())
}

fn open(root: &Path) -> RootFs {
    let t = RootFs::open(root).expect("open rootfs");
    assert!(t.has(Need::Exec), "the sandbox is not available here");
    t
}

fn sh(script: &str) -> ExecRequest {
    ExecRequest::new(["/bin/sh", "-c", script]).timeout(Duration::from_secs(30))
}

/// `sleep` processes whose argument starts with `marker`, anywhere on
/// the host (other programs' command lines may hold the digits).
fn survivors(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(&format!("sleep {marker}")) {
                found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

fn output_and_status(root: &Path) {
    let t = open(root);
    let out = t.exec(&sh("echo out; echo err >&2; exit 3")).unwrap();
    assert_eq!(out.stdout.text(), "out\n");
    assert_eq!(out.stderr.text(), "err\n");
    assert_eq!(out.exit, Exit::Code(3));
    assert!(!out.timed_out);
    if nix::unistd::geteuid().is_root() {
        assert!(out.isolation.starts_with("overlay; limits: "), "{out:?}");
    }
    // It ran in the image: its os-release, not the host's.
    let out = t.exec(&sh("cat /etc/debian_version; id -u")).unwrap();
    let image = std::fs::read_to_string(root.join("etc/debian_version")).unwrap();
    assert_eq!(out.stdout.text(), format!("{image}0\n"), "{out:?}");
}

fn writes_vanish(root: &Path) {
    let t = open(root);
    let marker = root.join("etc/nodecheck-sandbox-test");
    let out = t
        .exec(&sh(
            "echo x > /etc/nodecheck-sandbox-test && cat /etc/nodecheck-sandbox-test && \
             rm -f /etc/os-release && test ! -e /etc/os-release && echo removed",
        ))
        .unwrap();
    if out.isolation.starts_with("overlay;") && nix::unistd::geteuid().is_root() {
        assert_eq!(out.stdout.text(), "x\nremoved\n", "{out:?}");
    } else {
        // Read-only bind, or rootless (root-owned directories of the image
        // are not the user namespace's to write): the writes fail.
        assert!(!out.exit.success(), "{out:?}");
    }
    assert!(!marker.exists());
    assert!(root.join("etc/os-release").exists());
}

fn timeout_kills_everything(root: &Path) {
    let t = open(root);
    let start = Instant::now();
    let req = sh("sleep 987601 & (setsid sleep 987602 &); sleep 987603")
        .timeout(Duration::from_millis(700));
    let out = t.exec(&req).unwrap();
    assert!(out.timed_out, "{out:?}");
    assert_eq!(out.exit, Exit::Signal(9));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(out.describe_exit(req.timeout), "timed out after 700ms");
    assert_eq!(survivors("98760"), Vec::<String>::new());
}

fn daemons_do_not_survive(root: &Path) {
    let t = open(root);
    // The program exits at once, leaving a double-forked daemon that
    // holds its stdout: the run still ends, and the daemon with it.
    let start = Instant::now();
    let out = t
        .exec(&sh(
            "(setsid sh -c 'sleep 987611' &); nohup sleep 987612 >/dev/null 2>&1 & echo started",
        ))
        .unwrap();
    assert_eq!(out.stdout.text(), "started\n");
    assert!(out.exit.success());
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(survivors("98761"), Vec::<String>::new());
}

fn flood_is_capped(root: &Path) {
    let t = open(root);
    let out = t
        .exec(
            &sh("head -c 50000000 /dev/zero | tr '\\0' x; echo; echo end >&2")
                .output_limit(1 << 16),
        )
        .unwrap();
    assert!(out.exit.success(), "{out:?}");
    assert_eq!(out.stdout.total(), 50_000_001);
    assert_eq!(out.stdout.head.len() + out.stdout.tail.len(), 1 << 16);
    assert_eq!(out.stdout.dropped, 50_000_001 - (1 << 16));
    assert!(out.stdout.text().contains("bytes of output dropped here"));
    assert_eq!(out.stderr.text(), "end\n");
    // An endless flood ends at the timeout, output still bounded.
    let out = t
        .exec(&sh("yes").timeout(Duration::from_millis(500)))
        .unwrap();
    assert!(out.timed_out);
    assert!(out.stdout.head.len() + out.stdout.tail.len() <= ExecRequest::new(["x"]).output_limit);
    assert!(out.stdout.dropped > 0);
}

fn signal_death(root: &Path) {
    let t = open(root);
    let out = t.exec(&sh("kill -SEGV $$")).unwrap();
    assert_eq!(out.exit, Exit::Signal(11), "{out:?}");
    assert_eq!(out.exit.to_string(), "killed by signal 11 (SIGSEGV)");
    // SIGPIPE is back to its default for programs (Rust ignores it).
    let out = t.exec(&sh("yes | head -n 1; exit 0")).unwrap();
    assert_eq!(out.stdout.text(), "y\n");
}

fn hermetic_network_and_mounts(root: &Path) {
    let t = open(root);
    let out = t
        .exec(&sh(
            "ls /sys/class/net; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; \
             echo pid=$$; touch /sys/x 2>/dev/null || echo sys-ro; \
             touch /tmp/x /dev/shm/x && echo tmp-rw; ls /dev | tr '\\n' ' '",
        ))
        .unwrap();
    let text = out.stdout.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "lo", "{text}");
    assert_eq!(lines[1], "lo", "{text}");
    // The shell is the program; the init holds pid 1.
    assert_eq!(lines[2], "pid=2", "{text}");
    assert_eq!(lines[3], "sys-ro", "{text}");
    assert_eq!(lines[4], "tmp-rw", "{text}");
    for dev in ["null", "zero", "urandom", "shm", "pts", "fd"] {
        assert!(
            lines[5].split(' ').any(|d| d == dev),
            "no /dev/{dev}: {text}"
        );
    }
    // Nothing of the host is mounted in the sandbox.
    let out = t
        .exec(&sh("cat /proc/self/mountinfo; grep Cap /proc/self/status"))
        .unwrap();
    if std::env::var_os("SHOW").is_some() {
        eprintln!("{}", out.stdout.text());
    }
    let host_root = root.display().to_string();
    assert!(
        !out.stdout.text().contains("/var/cache/nodecheck/debian"),
        "{}",
        out.stdout.text()
    );
    let _ = host_root;
    // Capabilities are cut down: no mounting, no module loading.
    let out = t
        .exec(&sh("mount -t tmpfs none /mnt 2>&1; echo $?"))
        .unwrap();
    assert!(
        !out.stdout.text().ends_with("\n0\n"),
        "{}",
        out.stdout.text()
    );
}

fn files_stdin_env(root: &Path) {
    let t = open(root);
    let req = sh("cat a.txt; cat; echo \" $GREETING $PWD $HOME\"")
        .file("a.txt", "hello ")
        .stdin("from stdin")
        .env("GREETING", "hi");
    let out = t.exec(&req).unwrap();
    assert_eq!(
        out.stdout.text(),
        "hello from stdin hi /tmp/nodecheck /root\n",
        "{out:?}"
    );
    // nodecheck's own environment does not leak in.
    let out = t
        .exec(&sh("env | cut -d= -f1 | sort | tr '\\n' ' '"))
        .unwrap();
    assert_eq!(
        out.stdout.text(),
        "HOME LANG LOGNAME PATH PWD SHELL TERM USER ",
        "{out:?}"
    );
}

fn not_found_is_127(root: &Path) {
    let t = open(root);
    let out = t.exec(&ExecRequest::new(["no-such-program"])).unwrap();
    assert_eq!(out.exit, Exit::Code(127));
    assert!(
        out.stderr
            .text()
            .contains("no-such-program: command not found"),
        "{out:?}"
    );
}

fn parallel_runs(root: &Path) {
    let t = open(root);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let t = &t;
                s.spawn(move || t.exec(&sh(&format!("echo {i}"))).unwrap())
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().unwrap().stdout.text(), format!("{i}\n"));
        }
    });
}

/// Field `n` (1-based, as in proc(5)) of /proc/PID/stat.
fn stat_field(pid: i32, n: usize) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(n - 3)?.parse().ok()
}

/// Processes whose parent is `parent`.
fn children(parent: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| stat_field(p, 4) == Some(i64::from(parent)))
        .collect()
}

/// This process's sandbox zygotes.
fn zygotes() -> Vec<i32> {
    children(std::process::id() as i32)
        .into_iter()
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("__nodecheck-helper\0sandbox"))
        })
        .collect()
}

/// The zygotes that fork each command's helper live as long as this
/// process: each holds nothing of the host but its control socket, its
/// signalfd, helpers' pidfds and its cgroup's directories (not a host
/// directory this process leaks without close-on-exec, as a CI runner
/// would), and it leads a process group that its helpers and the
/// sandboxes' inits are in, which nodecheck kills whole when a helper
/// does not answer in time. (That zygotes die with nodecheck and leave no
/// cgroup is
/// `trust_sandbox::nothing_survives_nodecheck_killed_during_a_sandboxed_command`.)
fn zygotes_are_sealed(root: &Path) {
    let _root = leak_host_root_as(58);
    let t = open(root);
    // One command more than there are zygotes: a new one starts now,
    // with descriptor 58 open here.
    let before = zygotes();
    // Sleeps of 8.5 s whose argument names this test.
    let marker = format!("8.47{}", std::process::id());
    let n = before.len() + 1;
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..n)
            .map(|_| {
                let (t, marker) = (&t, &marker);
                s.spawn(move || t.exec(&sh(&format!("sleep {marker}"))).unwrap())
            })
            .collect();
        // The sleeps themselves (not a shell still on its way to exec one).
        let sleeping = || {
            let argv = format!("sleep\0{marker}\0");
            std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter(|e| {
                    std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == argv.as_bytes())
                })
                .count()
        };
        let started = Instant::now();
        while sleeping() < n && started.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(sleeping(), n, "the commands did not start");
        let zs = zygotes();
        assert!(
            zs.iter().any(|z| !before.contains(z)),
            "no new zygote: {before:?} then {zs:?}"
        );
        for &z in &zs {
            assert_eq!(stat_field(z, 5), Some(i64::from(z)), "zygote {z}'s group");
            let mut fds = Vec::new();
            for e in std::fs::read_dir(format!("/proc/{z}/fd"))
                .unwrap()
                .flatten()
            {
                let fd: i32 = e.file_name().to_str().unwrap().parse().unwrap();
                let to = std::fs::read_link(e.path()).unwrap_or_default();
                let to = to.to_string_lossy().into_owned();
                let allowed = if fd <= 2 {
                    to == "/dev/null"
                } else {
                    to.starts_with("socket:[")
                        || to == "anon_inode:[signalfd]"
                        || to.contains("pidfd")
                        || to.starts_with("/sys/fs/cgroup/")
                };
                fds.push(format!("{fd} -> {to}"));
                assert!(allowed, "zygote {z} holds {fd} -> {to}: {fds:?}");
            }
            // Its helpers, and their children (the inits: the programs
            // have sessions of their own), are in its group.
            for h in children(z) {
                assert_eq!(stat_field(h, 5), Some(i64::from(z)), "helper {h}");
                for i in children(h) {
                    assert_eq!(stat_field(i, 5), Some(i64::from(z)), "init {i}");
                }
            }
        }
        for r in runs {
            assert!(r.join().unwrap().exit.success());
        }
    });
    // SAFETY: closing the copy made above.
    unsafe { libc::close(58) };
}

fn live_runs_and_reaps() {
    let t = RootFs::live().unwrap();
    assert!(t.has(Need::Exec));
    let out = t
        .exec(&sh("cat f; (setsid sleep 987621 &); echo $PWD").file("f", "file "))
        .unwrap();
    let text = out.stdout.text();
    assert!(text.starts_with("file /tmp/nodecheck-"), "{text}");
    let dir = text.trim().trim_start_matches("file ").to_string();
    assert!(!Path::new(&dir).exists(), "{dir} was left behind");
    assert!(out.isolation.starts_with("live; limits: "), "{out:?}");
    assert_eq!(survivors("987621"), Vec::<String>::new());
}

fn live_timeout() {
    let t = RootFs::live().unwrap();
    let out = t
        .exec(&sh("(setsid sleep 987631 &); sleep 987632").timeout(Duration::from_millis(300)))
        .unwrap();
    assert!(out.timed_out);
    assert_eq!(survivors("98763"), Vec::<String>::new());
}

/// Where overlayfs is refused (or switched off), the image is bound
/// read-only and the usual scratch directories get a tmpfs: compiling in
/// /tmp still works, writing to the image fails, and nothing reaches it.
fn without_overlay(root: &Path) {
    // SAFETY: this test binary runs its cases one after the other, on the
    // main thread, and no other thread reads the environment.
    unsafe { std::env::set_var("NODECHECK_NO_OVERLAY", "1") };
    let t = open(root);
    let out = t
        .exec(&sh(
            "echo 'int main(void){return 0;}' > a.c && cc a.c -o a && ./a && echo built; \
             touch /var/tmp/x $HOME/x && echo scratch-ok; touch /etc/x 2>&1 || echo etc-ro",
        ))
        .unwrap();
    unsafe { std::env::remove_var("NODECHECK_NO_OVERLAY") };
    assert!(out.isolation.starts_with("read-only bind"), "{out:?}");
    let text = out.stdout.text();
    assert!(text.contains("built\nscratch-ok\n"), "{out:?}");
    assert!(
        text.contains("Read-only file system") && text.ends_with("etc-ro\n"),
        "{out:?}"
    );
    assert!(!root.join("etc/x").exists());
}

/// A helper (`nodecheck_core::helper::run`): whether the descriptor
/// number in its argument is open.
fn fd_open(args: &[String]) -> i32 {
    let fd: i32 = args[0].parse().unwrap();
    // SAFETY: F_GETFD on a descriptor number only asks about it.
    let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
    println!("{}", if open { "open" } else { "closed" });
    0
}

/// A descriptor this process holds without close-on-exec (as one a CI
/// runner leaks) does not reach a helper child (dlopen probe, gpu probe).
fn helper_children_get_only_stdio() {
    let _root = leak_host_root_as(57);
    let out = nodecheck_core::helper::run("fd-open", &["57"], Duration::from_secs(20)).unwrap();
    // SAFETY: closing the copy made above.
    unsafe { libc::close(57) };
    assert_eq!(out.stdout, "closed\n", "{out:?}");
}

/// A key in the caller's session keyring (a CI job's credentials) is out
/// of the program's reach: it runs in a fresh session keyring.
fn session_keyring_is_fresh(root: &Path) {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    const KEYCTL_SEARCH: libc::c_long = 10;
    const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
    let pid = std::process::id();
    let session = std::ffi::CString::new(format!("nodecheck-test-{pid}")).unwrap();
    let desc = format!("nodecheck-test-key-{pid}");
    let cdesc = std::ffi::CString::new(desc.clone()).unwrap();
    let secret = format!("KEYCANARY-{pid}");
    // SAFETY: keyctl and add_key with NUL-terminated strings and a
    // buffer of the given length.
    let id = unsafe {
        assert!(
            libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_JOIN_SESSION_KEYRING,
                session.as_ptr()
            ) >= 0
        );
        libc::syscall(
            libc::SYS_add_key,
            c"user".as_ptr(),
            cdesc.as_ptr(),
            secret.as_ptr(),
            secret.len(),
            KEY_SPEC_SESSION_KEYRING,
        )
    };
    assert!(
        id > 0,
        "cannot add a key: {}",
        std::io::Error::last_os_error()
    );
    // This process finds it where the program will look.
    // SAFETY: as above.
    let found = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_SEARCH,
            KEY_SPEC_SESSION_KEYRING,
            c"user".as_ptr(),
            cdesc.as_ptr(),
            0,
        )
    };
    assert_eq!(found, id);
    let t = open(root);
    let script = format!(
        "perl -e 'my ($t, $d) = (\"user\", \"{desc}\"); my $id = syscall(250, 10, -3, $t, $d, 0); \
         print \"search=$id\\n\"; \
         if ($id > 0) {{ my $b = \"\\0\" x 256; my $n = syscall(250, 11, $id, $b, 256); \
         print substr($b, 0, $n), \"\\n\"; }}'"
    );
    let out = t.exec(&sh(&script)).unwrap();
    let text = out.stdout.text();
    assert!(!text.contains(&secret), "{out:?}");
    assert_eq!(text, "search=-1\n", "{out:?}");
}

/// As root with no cgroup (`NODECHECK_NO_CGROUP=1`), the program runs in
/// a user namespace of its own whose root is not the host's uid 0, so
/// `RLIMIT_NPROC` binds it: 200 background processes against a limit of
/// 40, and a fork bomb, stay bounded; the image's files still read as
/// owned by root, and root can read /etc/shadow. Before the fallback, a
/// root run without a cgroup had no process limit at all.
fn root_without_cgroup_is_bounded(root: &Path) {
    if !nix::unistd::geteuid().is_root() {
        eprint!("(not root: the rootless cases cover rlimits) ");
        return;
    }
    let marker = format!("31{}", std::process::id());
    // perl's fork returns undef where the shell's would end the shell.
    let procs = "opendir D, q(/proc); $c = grep(/^[0-9]+\\z/, readdir D);";
    let mut req = sh(&format!(
        "perl -e '$n = 0; for (1..200) {{ $p = fork; defined $p or next; \
         $p or exec qw(sleep {marker}); $n++ }} {procs} print qq(started=$n procs=$c\\n)'; \
         stat -c 'owner=%u:%g' /etc/passwd /; id -u; head -c4 /etc/shadow; echo; \
         echo x > /etc/new && stat -c 'new=%u' /etc/new"
    ));
    req.limits.processes = 40;
    let mut bomb = sh(&format!(
        "perl -e '$top = $$; while (1) {{ defined(fork) or last }} sleep 1; \
         if ($$ == $top) {{ {procs} print qq(procs=$c\\n) }} sleep 1'"
    ))
    .timeout(Duration::from_secs(20));
    bomb.limits.processes = 40;
    // The same, each child taking another uid of the namespace.
    let mut spread = sh(&format!(
        "perl -e '$n = 0; for $u (1..200) {{ $p = fork; defined $p or next; \
         if (!$p) {{ $( = $) = $u; $< = $> = $u; exec qw(sleep {marker}) }} $n++ }} \
         {procs} print qq(started=$n procs=$c\\n)'"
    ));
    spread.limits.processes = 40;
    // SAFETY: the cases run one after the other on the main thread.
    unsafe { std::env::set_var("NODECHECK_NO_CGROUP", "1") };
    let t = open(root);
    let out = t.exec(&req);
    let bombed = t.exec(&bomb);
    let spread = t.exec(&spread);
    unsafe { std::env::remove_var("NODECHECK_NO_CGROUP") };
    let out = out.unwrap();
    assert!(
        out.isolation.contains("limits: user namespace + rlimits")
            && out.isolation.contains("40 processes"),
        "{out:?}"
    );
    let text = out.stdout.text();
    let num = |text: &str, key: &str| -> usize {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {text:?}"))
    };
    // The init, sh and perl count too; never more than the limit.
    let (started, seen) = (num(&text, "started="), num(&text, "procs="));
    assert!((30..=40).contains(&started), "{started} started: {out:?}");
    assert!(seen <= 40, "{seen} processes: {out:?}");
    assert!(
        text.contains("owner=0:0\nowner=0:0\n0\nroot\nnew=0\n"),
        "{out:?}"
    );
    assert!(survivors(&marker).is_empty(), "{:?}", survivors(&marker));
    let spread = spread.unwrap();
    let text = spread.stdout.text();
    let (started, seen) = (num(&text, "started="), num(&text, "procs="));
    assert!(
        started <= 40 && seen <= 40,
        "over uids: {started} started, {seen} seen: {spread:?}"
    );
    let bombed = bombed.unwrap();
    assert!(!bombed.timed_out, "{bombed:?}");
    let n = num(&bombed.stdout.text(), "procs=");
    assert!(
        (1..=40).contains(&n),
        "fork bomb: {n} processes: {bombed:?}"
    );
}

/// A packed image's tree, written out for programs as root: owners, modes,
/// hard links, xattrs, device nodes and symlinks as the archive records
/// them, in a tmpfs that only its holder's mount namespace sees (nothing
/// under the host's /tmp or $TMPDIR), programs run over it, and the tree
/// is gone with its holder when the target is dropped.
fn packed_image_tree(root: &Path) {
    use nodecheck_core::target::ImageTarget;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if !nix::unistd::geteuid().is_root() {
        eprint!("(as root only; tests/e2e/images.rs covers the rootless path) ");
        return;
    }
    let hdr = |kind: tar::EntryType, mode: u32, uid: u64, gid: u64, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h
    };
    let mut b = tar::Builder::new(Vec::new());
    for d in [
        "usr/",
        "usr/bin/",
        "usr/lib/",
        "usr/lib/x86_64-linux-gnu/",
        "usr/lib64/",
        "etc/",
        "dev/",
    ] {
        let mut h = hdr(tar::EntryType::Directory, 0o755, 0, 0, 0);
        b.append_data(&mut h, d, &b""[..]).unwrap();
    }
    for l in [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        let mut h = hdr(tar::EntryType::Symlink, 0o777, 0, 0, 0);
        b.append_link(&mut h, l.0, l.1).unwrap();
    }
    let mut h = hdr(tar::EntryType::Symlink, 0o777, 0, 0, 0);
    b.append_link(
        &mut h,
        "usr/lib64/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    )
    .unwrap();
    for f in [
        "usr/bin/dash",
        "usr/lib/x86_64-linux-gnu/libc.so.6",
        "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    ] {
        let data = std::fs::read(root.join(f)).unwrap();
        let mut h = hdr(tar::EntryType::Regular, 0o755, 0, 0, data.len() as u64);
        b.append_data(&mut h, f, &data[..]).unwrap();
    }
    let mut h = hdr(tar::EntryType::Symlink, 0o777, 0, 0, 0);
    b.append_link(&mut h, "usr/bin/sh", "dash").unwrap();
    b.append_pax_extensions([("SCHILY.xattr.user.note", &b"kept"[..])])
        .unwrap();
    let mut h = hdr(tar::EntryType::Regular, 0o4750, 0, 42, 4);
    b.append_data(&mut h, "usr/bin/su", &b"su!!"[..]).unwrap();
    let mut h = hdr(tar::EntryType::Link, 0o4750, 0, 42, 0);
    b.append_link(&mut h, "usr/bin/su2", "usr/bin/su").unwrap();
    let mut h = hdr(tar::EntryType::Regular, 0o640, 0, 42, 9);
    b.append_data(&mut h, "etc/shadow", &b"shadowed\n"[..])
        .unwrap();
    // An absolute link to a host file: written as a link, never followed.
    let mut h = hdr(tar::EntryType::Symlink, 0o777, 0, 0, 0);
    b.append_link(&mut h, "etc/evil", "/etc/hostname").unwrap();
    let mut h = hdr(tar::EntryType::Char, 0o666, 0, 0, 0);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    b.append_data(&mut h, "dev/null", &b""[..]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("tiny.tar");
    std::fs::write(&image, b.into_inner().unwrap()).unwrap();

    let trees = || -> Vec<_> {
        list_dir(&std::env::temp_dir())
            .into_iter()
            .filter(|n| n.to_string_lossy().starts_with("nodecheck-image-"))
            .collect()
    };
    // (Other runs, of older builds, may have left theirs.)
    let trees_before = trees();
    let t = ImageTarget::open(&image).unwrap();
    assert!(t.has(Need::Exec) && t.has(Need::Root));
    let (tree, holder) = t.written_tree().unwrap();
    let su = std::fs::symlink_metadata(tree.join("usr/bin/su")).unwrap();
    assert_eq!((su.mode() & 0o7777, su.uid(), su.gid()), (0o4750, 0, 42));
    assert_eq!(su.mtime(), 1_700_000_000);
    assert_eq!(
        su.ino(),
        std::fs::metadata(tree.join("usr/bin/su2")).unwrap().ino()
    );
    assert_eq!(std::fs::read(tree.join("usr/bin/su")).unwrap(), b"su!!");
    assert_eq!(
        std::fs::read_link(tree.join("etc/evil")).unwrap(),
        PathBuf::from("/etc/hostname")
    );
    let null = std::fs::symlink_metadata(tree.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device() && null.rdev() == nix::sys::stat::makedev(1, 3));
    let c = std::ffi::CString::new(
        tree.join("usr/bin/su")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    let mut v = [0u8; 16];
    // SAFETY: NUL-terminated strings and a buffer of the given length.
    let n = unsafe {
        libc::getxattr(
            c.as_ptr(),
            c"user.note".as_ptr(),
            v.as_mut_ptr().cast(),
            v.len(),
        )
    };
    assert_eq!(&v[..usize::try_from(n).unwrap()], b"kept");
    // Nothing of it in nodecheck's own mount namespace, nothing on disk.
    assert_eq!(trees(), trees_before);
    assert!(!Path::new("/tmp/root/usr/bin/su2").exists());

    // Programs run over it in the sandbox: the image's root owns its files.
    let out = t
        .exec(&sh("read l </etc/shadow; echo \"$l\"; test -u /usr/bin/su && echo setuid; echo x >/etc/shadow && echo written"))
        .unwrap();
    assert_eq!(out.stdout.text(), "shadowed\nsetuid\nwritten\n", "{out:?}");
    assert!(
        out.isolation.contains("packed image written out"),
        "{out:?}"
    );
    // The overlay took the write; the tree did not.
    assert_eq!(
        std::fs::read(tree.join("etc/shadow")).unwrap(),
        b"shadowed\n"
    );

    let mnt = std::fs::read_link(format!("/proc/{holder}/ns/mnt")).unwrap();
    drop(t);
    assert!(
        !Path::new(&format!("/proc/{holder}")).exists(),
        "the holder outlived its target"
    );
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_link(e.path().join("ns/mnt")).is_ok_and(|m| m == mnt))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.is_empty(),
        "processes still in the tree's namespace: {left:?}"
    );
    assert_eq!(std::fs::read(&image).unwrap().len() % 512, 0);
}

/// A newc cpio of `entries` (name, mode, uid, content), as `cpio -o -H newc`.
fn newc(entries: &[(&str, u32, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let trailer = ("TRAILER!!!", 0, 0, &b""[..]);
    for (ino, (name, mode, uid, data)) in entries.iter().chain([&trailer]).enumerate() {
        let h = format!(
            "070701{:08X}{mode:08X}{uid:08X}{uid:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
            ino + 1,
            1,
            1_700_000_000u32,
            data.len(),
            0,
            1,
            0,
            0,
            name.len() + 1,
            0
        );
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        out.extend_from_slice(data);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }
    out
}

/// A compressed cpio whose programs will run: the tree is written out
/// before the checks, its large files' content from a second pass over the
/// stream, in its order, into files the holder made (modes, owners and a
/// setuid bit applied after the content, directories' after their files,
/// so a 0500 directory of another owner gets its files too); reads are
/// then served from the tree, and the stream is never spilled. An image
/// changed between the two passes is an error, never a tree of mixed
/// content.
fn compressed_cpio_tree(root: &Path) {
    use nodecheck_core::target::ImageTarget;
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        eprint!("(as root only; tests/e2e/images.rs covers the rootless path) ");
        return;
    }
    const DIR: u32 = 0o040000;
    const REG: u32 = 0o100000;
    const LNK: u32 = 0o120000;
    let bin = |f: &str| std::fs::read(root.join(f)).unwrap();
    let (dash, libc, ld) = (
        bin("usr/bin/dash"),
        bin("usr/lib/x86_64-linux-gnu/libc.so.6"),
        bin("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
    );
    // Larger than what is kept in memory while indexing.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let text = |first: &str| {
        let mut t = format!("{first}\n").into_bytes();
        t.resize(50_000, b'.');
        t
    };
    let image_of = |line: &str| {
        let note = text(line);
        let raw = newc(&[
            (".", DIR | 0o755, 0, b""),
            ("usr", DIR | 0o755, 0, b""),
            ("usr/bin", DIR | 0o755, 0, b""),
            ("usr/bin/dash", REG | 0o755, 0, &dash),
            ("usr/bin/sh", LNK | 0o777, 0, b"dash"),
            ("usr/lib", DIR | 0o755, 0, b""),
            ("usr/lib/x86_64-linux-gnu", DIR | 0o755, 0, b""),
            ("usr/lib/x86_64-linux-gnu/libc.so.6", REG | 0o755, 0, &libc),
            (
                "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                REG | 0o755,
                0,
                &ld,
            ),
            ("usr/lib64", DIR | 0o755, 0, b""),
            (
                "usr/lib64/ld-linux-x86-64.so.2",
                LNK | 0o777,
                0,
                b"/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            ),
            ("bin", LNK | 0o777, 0, b"usr/bin"),
            ("lib", LNK | 0o777, 0, b"usr/lib"),
            ("lib64", LNK | 0o777, 0, b"usr/lib64"),
            ("opt", DIR | 0o755, 0, b""),
            ("opt/locked", DIR | 0o500, 7, b""),
            ("opt/locked/big", REG | 0o4755, 0, &big),
            ("opt/locked/note", REG | 0o600, 7, &note),
        ]);
        zstd::stream::encode_all(&raw[..], 3).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("tiny.cpio.zst");
    std::fs::write(&image, image_of("first")).unwrap();
    let t = ImageTarget::open(&image).unwrap();
    t.will_need(Need::Exec);
    assert!(!t.spilled(), "the stream was spilled to write the tree");
    let (tree, _) = t.written_tree().unwrap();
    let locked = std::fs::symlink_metadata(tree.join("opt/locked")).unwrap();
    assert_eq!((locked.mode() & 0o7777, locked.uid()), (0o500, 7));
    let b = std::fs::symlink_metadata(tree.join("opt/locked/big")).unwrap();
    assert_eq!(
        (b.mode() & 0o7777, b.uid(), b.mtime()),
        (0o4755, 0, 1_700_000_000)
    );
    assert_eq!(std::fs::read(tree.join("opt/locked/big")).unwrap(), big);
    assert_eq!(std::fs::read(tree.join("usr/bin/dash")).unwrap(), dash);
    // Reads past the kept heads come from the tree.
    assert_eq!(t.read("/opt/locked/big", 1 << 20).unwrap(), big);
    assert_eq!(t.read("/opt/locked/note", 1 << 20).unwrap(), text("first"));
    assert!(!t.spilled(), "a read spilled the stream");
    let out = t
        .exec(&sh(
            "test -u /opt/locked/big && echo setuid; read -r l </opt/locked/note; echo \"$l\"",
        ))
        .unwrap();
    assert_eq!(out.stdout.text(), "setuid\nfirst\n", "{out:?}");
    drop(t);

    // Rewritten in place after the index pass: the second pass sees
    // another stream, and nothing runs over it.
    let t = ImageTarget::open(&image).unwrap();
    std::fs::write(&image, image_of("other")).unwrap();
    t.will_need(Need::Exec);
    let e = t.exec(&sh("echo ran")).unwrap_err().to_string();
    assert!(e.contains("the image changed while being read"), "{e}");
}

/// Opens the host's `/` as descriptor `fd` of this process, not
/// close-on-exec: what a CI runner may leak into the jobs it starts. The
/// descriptor first opened (inheritable too) is returned, held by the
/// caller for as long as the test.
fn leak_host_root_as(fd: i32) -> std::os::fd::OwnedFd {
    let dir = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    // SAFETY: dup2 onto a free, high descriptor number of this process;
    // the copy is not close-on-exec.
    assert_eq!(
        unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&dir), fd) },
        fd
    );
    dir
}

fn list_dir(d: &Path) -> Vec<std::ffi::OsString> {
    let mut v: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    v.sort();
    v
}
