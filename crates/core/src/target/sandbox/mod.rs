//! Running programs in a target without changing it, from a single-threaded
//! helper process.
//!
//! Namespaces cannot be entered from a multi-threaded process (`unshare`
//! of a user namespace and `setns` of a mount namespace fail with `EINVAL`,
//! and after `fork` only async-signal-safe calls are allowed), and the
//! runner evaluates checks on rayon threads. So every program is started
//! by a fresh copy of the running executable (`/proc/self/exe
//! __nodecheck-helper sandbox`, started like every helper by
//! [`crate::helper`]) that reads a [`Job`] on stdin, builds the sandbox,
//! runs the program and writes a [`Report`] on fd 3; the program's stdout
//! and stderr are the helper's, read by the caller with a cap (its own
//! poll loop over the three pipes, since the report pipe must be read
//! whole). A program embedding nodecheck-core must therefore call
//! [`crate::helper::dispatch`] first thing in `main`.
//!
//! The sandbox for a root filesystem (see [`helper`] for the details):
//! fresh mount, pid, ipc, uts and network namespaces (plus a user namespace
//! when not root); the image bound read-only (noatime) as the lower layer of
//! an overlay whose upper layer is a tmpfs that vanishes with the mount
//! namespace — or, where the kernel refuses the overlay, the read-only bind
//! itself with tmpfs on the usual scratch directories; fresh /proc, a
//! minimal /dev, /dev/shm, read-only /sys, tmpfs /tmp; `pivot_root` into it;
//! a reduced capability set. The program runs under a small init (pid 1 of
//! the new pid namespace); killing that init at the timeout kills every
//! process the program started, and the kernel does so as well when the
//! program itself exits.

mod helper;
mod join;
mod limits;
mod root;
mod sys;

pub(crate) use sys::start_time;

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::{Deserialize, Serialize};

use super::exec::{Captured, ExecOutput, ExecRequest, Exit, Limits};

/// How long past the program's timeout the caller waits for the helper
/// itself (setting up and tearing down a sandbox takes milliseconds; this
/// only catches a helper that is stuck).
const HELPER_GRACE: Duration = Duration::from_secs(20);

/// The sandbox helper's entry, called by [`crate::helper::dispatch`].
/// Returns the exit code.
pub(crate) fn helper_main() -> i32 {
    helper::main()
}

/// Where the program runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Mode {
    /// In a sandbox over the root filesystem at this host path.
    Rootfs { root: PathBuf },
    /// In the namespaces of a running container, with a private overlay
    /// over its root.
    Container { pid: i32, start_time: u64 },
    /// Directly on the node, in its own session, under a subreaper.
    Live,
    /// Only set up a sandbox over `root` and report whether that worked.
    Probe { root: PathBuf },
}

/// A process whose namespaces the helper joins before it builds a
/// rootfs sandbox (the holder of a packed image's written-out tree,
/// `image::materialise`): its mount namespace, where the tree is, and,
/// with `user`, first its user namespace (rootless: the one mapped over
/// the caller's subordinate ids), in place of the helper's own.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Enter {
    pub pid: i32,
    /// The holder's start time ([`start_time`]): a recycled pid is refused.
    pub start_time: u64,
    pub user: bool,
}

/// What the caller sends the helper on its stdin.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Job {
    mode: Mode,
    /// Rootfs only: namespaces to join first ([`run_entered`]).
    #[serde(default)]
    enter: Option<Enter>,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    files: Vec<(String, Vec<u8>, u32)>,
    stdin: Vec<u8>,
    timeout_ms: u64,
    /// The caller's pid: the helper dies with it.
    parent: i32,
    /// Skip the overlay: the read-only bind with tmpfs scratch directories
    /// (`NODECHECK_NO_OVERLAY=1`, for filesystems where overlayfs mounts
    /// but misbehaves; also what the kernel's refusal falls back to).
    no_overlay: bool,
    /// Make no cgroup: the limits fall back to a user namespace and
    /// rlimits (`NODECHECK_NO_CGROUP=1`, to test that fallback on hosts
    /// that have cgroups).
    no_cgroup: bool,
    limits: Limits,
}

/// What the helper answers on fd 3.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Report {
    /// Raw wait status of the program; `None` when it never ended (timeout)
    /// or never started.
    status: Option<i32>,
    timed_out: bool,
    /// Why the sandbox could not be set up or the program not started.
    error: Option<String>,
    /// How the program was isolated.
    isolation: String,
}

/// Runs `req` through a helper in `mode` with the final environment `env`.
pub(crate) fn run(
    mode: Mode,
    req: &ExecRequest,
    env: Vec<(String, String)>,
) -> io::Result<ExecOutput> {
    run_entered(mode, req, env, None)
}

/// [`run`], the helper first joining `enter`'s namespaces (a rootfs whose
/// path lies in that mount namespace).
pub(crate) fn run_entered(
    mode: Mode,
    req: &ExecRequest,
    env: Vec<(String, String)>,
    enter: Option<Enter>,
) -> io::Result<ExecOutput> {
    req.validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let job = Job {
        mode,
        enter,
        argv: req.argv.clone(),
        env,
        files: req
            .files
            .iter()
            .map(|f| (f.name.clone(), f.content.clone(), f.mode))
            .collect(),
        stdin: req.stdin.clone(),
        timeout_ms: u64::try_from(req.timeout.as_millis()).unwrap_or(u64::MAX),
        parent: i32::try_from(std::process::id()).unwrap_or(0),
        no_overlay: std::env::var_os("NODECHECK_NO_OVERLAY").is_some_and(|v| v == "1"),
        no_cgroup: std::env::var_os("NODECHECK_NO_CGROUP").is_some_and(|v| v == "1"),
        limits: req.limits,
    };
    let started = Instant::now();
    let (report, stdout, stderr) =
        spawn_helper(&job, req.output_limit, req.timeout + HELPER_GRACE)?;
    if let Some(e) = report.error {
        return Err(io::Error::other(e));
    }
    let exit = match report.status {
        Some(s) => Exit::from_wait_status(s),
        None => Exit::Signal(libc::SIGKILL),
    };
    Ok(ExecOutput {
        exit,
        stdout,
        stderr,
        timed_out: report.timed_out,
        duration: started.elapsed(),
        isolation: report.isolation,
    })
}

/// Whether a sandbox can be built over `root` by this process (as root,
/// or rootless through a user namespace). Asked once per process: the
/// answer depends on the kernel and privileges, not on the image.
pub(crate) fn available(root: &std::path::Path) -> Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let job = Job {
                mode: Mode::Probe {
                    root: root.to_path_buf(),
                },
                enter: None,
                argv: Vec::new(),
                env: Vec::new(),
                files: Vec::new(),
                stdin: Vec::new(),
                timeout_ms: 0,
                parent: i32::try_from(std::process::id()).unwrap_or(0),
                no_overlay: false,
                no_cgroup: false,
                limits: Limits::default(),
            };
            match spawn_helper(&job, 4096, HELPER_GRACE) {
                Ok((report, _, _)) => report.error.map_or(Ok(()), Err),
                // A program that forgot helper::dispatch(): say so on every
                // check that runs something, instead of skipping them.
                Err(e) if e.to_string().contains(NO_HOOK) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        })
        .clone()
}

/// What the error says when the helper never answered.
const NO_HOOK: &str = "the sandbox helper did not answer";

fn spawn_helper(
    job: &Job,
    limit: usize,
    deadline: Duration,
) -> io::Result<(Report, Captured, Captured)> {
    let input = serde_json::to_vec(job).map_err(io::Error::other)?;
    let (status_r, status_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let mut cmd = crate::helper::command(crate::helper::SANDBOX)?;
    cmd.env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let w = status_w.as_raw_fd();
    // SAFETY: dup2 and fcntl are async-signal-safe; `w` stays open in the
    // parent until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself keeps close-on-exec: clear it instead.
            let r = if w == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(w, 3)
            };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // Nothing but stdio and the report pipe crosses into the helper.
    crate::helper::child_hygiene(&mut cmd, 4);
    let mut child = cmd
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot start the sandbox helper: {e}")))?;
    drop(status_w);
    // The helper reads the whole job before it writes anything, so a
    // blocking write cannot deadlock against its output.
    let wrote = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(&input))
        .unwrap_or(Ok(()));
    let stdout: OwnedFd = child
        .stdout
        .take()
        .map(Into::into)
        .ok_or_else(|| io::Error::other("no stdout pipe"))?;
    let stderr: OwnedFd = child
        .stderr
        .take()
        .map(Into::into)
        .ok_or_else(|| io::Error::other("no stderr pipe"))?;
    let collected = collect(&[&stdout, &stderr, &status_r], limit, deadline);
    let (outs, expired) = match collected {
        Ok(v) => v,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    if expired {
        // The helper itself is stuck: kill it; its init child dies with it
        // (parent-death signal), and the namespaces with that.
        let _ = child.kill();
    }
    let status = child.wait()?;
    let [out, err, report] = outs;
    if expired {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the sandbox helper did not finish within {}s of the program's timeout and was killed",
                HELPER_GRACE.as_secs()
            ),
        ));
    }
    let report_bytes: Vec<u8> = report.head.iter().chain(&report.tail).copied().collect();
    match serde_json::from_slice::<Report>(&report_bytes) {
        Ok(r) => Ok((r, out, err)),
        Err(_) => {
            let why = if let Err(e) = wrote {
                format!("could not send it the job ({e})")
            } else {
                format!("{status}")
            };
            let text = err.text();
            let text = text.trim();
            Err(io::Error::other(format!(
                "{NO_HOOK} ({why}{}); a program embedding \
                 nodecheck-core must call nodecheck_core::helper::dispatch() first \
                 thing in main",
                if text.is_empty() {
                    String::new()
                } else {
                    format!(": {}", first_line(text))
                }
            )))
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Reads every fd to EOF, keeping at most `limit` bytes of each (the
/// report fd is kept whole up to 1 MiB), until all are closed or the
/// deadline passes (`true`).
fn collect(
    fds: &[&OwnedFd; 3],
    limit: usize,
    deadline: Duration,
) -> io::Result<([Captured; 3], bool)> {
    let end = Instant::now() + deadline;
    let mut out: [Captured; 3] = Default::default();
    let mut open = [true; 3];
    for fd in fds {
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    }
    let mut buf = vec![0u8; 64 << 10];
    while open.iter().any(|o| *o) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok((out, true));
        }
        let idx: Vec<usize> = (0..3).filter(|&i| open[i]).collect();
        let mut pfds: Vec<PollFd> = idx
            .iter()
            .map(|&i| PollFd::new(fds[i].as_fd(), PollFlags::POLLIN))
            .collect();
        let ms = u32::try_from(left.as_millis().min(60_000)).unwrap_or(60_000);
        match poll(
            &mut pfds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<bool> = pfds
            .iter()
            .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        for (k, &i) in idx.iter().enumerate() {
            if !ready[k] {
                continue;
            }
            // Drain what is there now; EOF closes this stream.
            loop {
                match nix::unistd::read(fds[i], &mut buf) {
                    Ok(0) => {
                        open[i] = false;
                        break;
                    }
                    Ok(n) => {
                        let cap = if i == 2 { 2 << 20 } else { limit };
                        out[i].push(&buf[..n], cap);
                    }
                    Err(nix::errno::Errno::EAGAIN) => break,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok((out, false))
}
