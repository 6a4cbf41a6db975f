//! nodecheck running itself again as a child process, for work a check
//! must not do inside the run: `dlopen` runs a library's constructors (and
//! may crash or hang), and after `fork` a threaded process may only call
//! async-signal-safe functions, so the child is a fresh `exec` of the
//! current executable with a hidden first argument.
//!
//! Every child nodecheck starts of itself goes through here: the sandbox's
//! zygote, which forks each program's sandbox (built in, named
//! [`SANDBOX`]), the holder of a packed image's written-out tree (built in,
//! [`IMAGE_TREE`]) and the helpers the kinds register (dlopen, the GPU probe, nhc's budgeted
//! child). A binary embedding nodecheck calls [`dispatch`] first thing in
//! `main`, before any thread starts, with the handlers of the kinds it
//! registers (the `nodecheck` binary passes `nodecheck_checks::HELPERS`
//! and nhc's child): one hidden argument, one entry function.
//!
//! Only stdio crosses into a child: descriptors nodecheck inherited (a CI
//! runner's `7</some/dir`) or opened itself are closed before the child's
//! program starts ([`close_fds_except`]), and a child dies with the
//! nodecheck that started it.

use std::io::{self, Read};
use std::os::fd::RawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// The hidden first argument of a helper process.
pub const ARG: &str = "__nodecheck-helper";

/// The built-in helper that becomes a sandbox zygote: placed in the run's
/// cgroup once, it forks the sandbox of each program `crate::target`'s
/// exec runs; a handler of that name is never called.
pub const SANDBOX: &str = "sandbox";

/// The built-in helper that holds a packed image's tree, written out for
/// programs, in a private mount namespace (`target::image`); a handler of
/// that name is never called.
pub const IMAGE_TREE: &str = "image-tree";

/// Output kept per stream; the rest is read and dropped.
const KEEP: usize = 64 << 10;

/// How long output may trail the helper's exit.
const GRACE: Duration = Duration::from_secs(1);

/// A helper: gets the arguments after its name, returns the exit status.
pub type Handler = fn(&[String]) -> i32;

/// In a helper process, runs the helper named by the command line (the
/// built-in [`SANDBOX`] or one of `handlers`) and returns its exit status;
/// `None` in an ordinary run. Call it first thing in `main` of any program
/// that runs checks, before threads are started (namespaces cannot be
/// entered from a threaded process): a program that does not gets an
/// error naming this function from every command it tries to run.
///
/// ```
/// fn echo(args: &[String]) -> i32 { args.len() as i32 }
/// // The first lines of `main`:
/// if let Some(code) = nodecheck_core::helper::dispatch(&[("echo", echo)]) {
///     std::process::exit(code);
/// }
/// // Not started as a helper: on to parsing arguments, loading, running.
/// ```
pub fn dispatch(handlers: &[(&str, Handler)]) -> Option<i32> {
    // Lossy: a handler that takes paths reads `std::env::args_os` itself.
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.get(1).map(String::as_str) != Some(ARG) {
        return None;
    }
    let name = args.get(2).map_or("", String::as_str);
    if name == SANDBOX {
        // Keeps its control socket (fd 3) and closes the rest itself.
        return Some(crate::target::sandbox_helper());
    }
    if name == IMAGE_TREE {
        close_fds_except(&[]);
        return Some(crate::target::image_tree_helper(&args[3..]));
    }
    // Closed before exec already where the kernel has close_range; this
    // catches older kernels (and a parent that was not nodecheck).
    close_fds_except(&[]);
    Some(match handlers.iter().find(|(n, _)| *n == name) {
        Some((_, handler)) => handler(&args[3..]),
        None => {
            eprintln!("nodecheck: unknown helper {name:?}");
            2
        }
    })
}

/// What a helper process did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelperOutput {
    /// Exit status; `None` when killed by a signal (or by the timeout).
    pub status: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

/// Runs helper `name` with `args` in a child process (this executable
/// again), stdin closed, environment inherited, and waits at most
/// `timeout` (then kills it).
pub fn run(name: &str, args: &[&str], timeout: Duration) -> io::Result<HelperOutput> {
    let mut cmd = command(name)?;
    cmd.args(args);
    run_bounded(
        &mut cmd,
        Bounds {
            timeout,
            keep: KEEP,
        },
    )
}

/// The command line of helper `name` (this executable with the hidden
/// argument), for a caller that adds its own arguments and runs it with
/// [`run_bounded`]. The executable is `/proc/self/exe`, the file this
/// process runs, even when its path was replaced since (a package
/// upgrade during the run).
pub fn command(name: &str) -> io::Result<Command> {
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg(ARG).arg(name);
    Ok(cmd)
}

/// The time on `CLOCK_MONOTONIC`: unlike an [`Instant`], a parent can hand
/// it to a child process (same boot, same clock) to share a deadline.
pub fn monotonic() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to; CLOCK_MONOTONIC
    // always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Points this process's stdout and stderr at /dev/null, after flushing
/// them: a helper that has written its answer calls it so that its parent
/// sees the end of the output even when a thread stuck in the kernel keeps
/// the process (and its descriptors) alive.
pub fn release_stdio() {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        for fd in [1, 2] {
            // SAFETY: dup2 onto a standard descriptor from a file we own;
            // whatever writes there later writes to /dev/null.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

/// The limits of [`run_bounded`].
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// How long the child may run before it and its process group are
    /// killed.
    pub timeout: Duration,
    /// Output kept per stream; the rest is read and dropped.
    pub keep: usize,
}

/// How long a child that closed both its outputs may take to exit before
/// it is killed and left: it may be stuck in the kernel (a hung FUSE or
/// NFS mount), where no signal reaches it.
const LINGER: Duration = Duration::from_millis(200);

/// How long to wait for a killed child to be reaped; one in an
/// uninterruptible sleep never is, and is left behind instead of blocking
/// the caller.
const REAP: Duration = Duration::from_millis(100);

/// Runs a host program (a helper, `scontrol`, a container engine's CLI)
/// with stdin closed, in a process group of its own, reading stdout and
/// stderr at the same time (no pipe can fill and stall it) and keeping
/// the first `bounds.keep` bytes of each. At `bounds.timeout` the whole
/// group is killed; the call returns shortly after that even when the
/// child cannot die (stuck in the kernel), with what it had written.
///
/// ```
/// use std::{process::Command, time::Duration};
/// use nodecheck_core::helper::{Bounds, run_bounded};
///
/// let bounds = Bounds { timeout: Duration::from_secs(5), keep: 4 };
/// let out = run_bounded(Command::new("echo").arg("hello"), bounds).unwrap();
/// assert_eq!((out.status, out.stdout.as_str()), (Some(0), "hell"));
/// ```
pub fn run_bounded(cmd: &mut Command, bounds: Bounds) -> io::Result<HelperOutput> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    child_hygiene(cmd, 3);
    let mut child = cmd.spawn()?;
    let group = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    // Readers fill shared buffers: a grandchild that keeps a pipe open (a
    // daemon started by a constructor) or a child stuck in the kernel must
    // not block us, and what was written before is still there.
    let out = Stream::read(child.stdout.take(), bounds.keep);
    let err = Stream::read(child.stderr.take(), bounds.keep);
    let deadline = Instant::now() + bounds.timeout;
    let mut closed_at: Option<Instant> = None;
    let mut timed_out = false;
    let kill_group = || {
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    };
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break Some(st);
        }
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            kill_group();
            break reap(&mut child);
        }
        if out.done() && err.done() {
            let at = *closed_at.get_or_insert(now);
            if now.duration_since(at) >= LINGER {
                kill_group();
                break reap(&mut child);
            }
        }
        thread::sleep(Duration::from_millis(5));
    };
    // After a normal exit, output may trail (a grandchild holding the
    // pipes); after a kill, take what is there.
    let wait = if status.is_some() && !timed_out {
        GRACE
    } else {
        REAP
    };
    let until = Instant::now() + wait;
    while !(out.done() && err.done()) && Instant::now() < until {
        thread::sleep(Duration::from_millis(5));
    }
    Ok(HelperOutput {
        status: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        stdout: out.text(),
        stderr: err.text(),
        timed_out,
    })
}

/// Waits a little for a killed child; `None` when it is not gone by then.
fn reap(child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + REAP;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < until => thread::sleep(Duration::from_millis(5)),
            _ => return None,
        }
    }
}

/// One output stream of a child, read to its end on a thread of its own.
struct Stream(Arc<(Mutex<Vec<u8>>, AtomicBool)>);

impl Stream {
    fn read(source: Option<impl Read + Send + 'static>, keep: usize) -> Stream {
        let shared = Arc::new((Mutex::new(Vec::new()), AtomicBool::new(source.is_none())));
        if let Some(mut r) = source {
            let to = Arc::clone(&shared);
            thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match r.read(&mut buf) {
                        Ok(0) => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                        Ok(n) => {
                            let mut kept = to.0.lock().unwrap_or_else(PoisonError::into_inner);
                            let room = keep.saturating_sub(kept.len());
                            kept.extend_from_slice(&buf[..n.min(room)]);
                        }
                    }
                }
                to.1.store(true, Ordering::Release);
            });
        }
        Stream(shared)
    }

    fn done(&self) -> bool {
        self.0.1.load(Ordering::Acquire)
    }

    fn text(&self) -> String {
        let kept = self.0.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&kept).into_owned()
    }
}

/// Makes `cmd`'s child die with this process and close every descriptor
/// from `first` up before exec (stdio and what the caller placed below
/// `first` stay). Only async-signal-safe system calls run between fork
/// and exec; where the kernel lacks `close_range` the child closes them
/// itself after exec ([`close_fds_except`] at its start).
pub(crate) fn child_hygiene(cmd: &mut Command, first: RawFd) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl, getppid, close_range and _exit are async-signal-safe
    // system calls on plain integers.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            // The parent went before the line above took effect.
            if libc::getppid() != parent {
                libc::_exit(125);
            }
            close_range(first, RawFd::MAX);
            Ok(())
        });
    }
}

/// `close_range(first, last)` by raw system call (glibc < 2.34 has no
/// wrapper); `false` where the kernel has none (before 5.9).
fn close_range(first: RawFd, last: RawFd) -> bool {
    if first > last {
        return true;
    }
    // SAFETY: close_range on a range of descriptor numbers, no pointers.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            last as libc::c_uint,
            0,
        ) == 0
    }
}

/// Closes every descriptor from 3 up except `keep`: what a child inherited
/// and must not hand on (host directories, other runs' pipes). By
/// `close_range`, else by the list in /proc/self/fd, else one by one up to
/// the descriptor limit. Only for a single-threaded process (after exec,
/// or after fork of one): the fallbacks allocate.
pub(crate) fn close_fds_except(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&fd| fd >= 3).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut from = 3;
    let mut ok = true;
    for &k in &keep {
        ok &= close_range(from, k - 1);
        from = k + 1;
    }
    ok &= close_range(from, RawFd::MAX);
    if ok {
        return;
    }
    let listed: Option<Vec<RawFd>> = std::fs::read_dir("/proc/self/fd").ok().map(|d| {
        d.filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect()
    });
    let fds = listed.unwrap_or_else(|| {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit fills the struct it is given.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
        let max = RawFd::try_from(lim.rlim_cur.min(1 << 20)).unwrap_or(1 << 20);
        (3..max).collect()
    });
    for fd in fds {
        if fd >= 3 && !keep.contains(&fd) {
            // SAFETY: closing a descriptor this process no longer uses
            // (the read_dir one is gone by now: EBADF at worst).
            unsafe { libc::close(fd) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Duration, keep: usize) -> (HelperOutput, Duration) {
        let start = Instant::now();
        let out = run_bounded(
            Command::new("sh").arg("-c").arg(script),
            Bounds { timeout, keep },
        )
        .unwrap();
        (out, start.elapsed())
    }

    #[test]
    fn only_the_live_target_starts_a_helper_on_the_host() {
        use crate::target::{MemoryTarget, Target, TargetKind};
        for kind in [TargetKind::Rootfs, TargetKind::Container, TargetKind::Image] {
            let t = MemoryTarget::new().kind(kind);
            let e = t
                .helper("dlopen", &["libc.so.6"], Duration::from_secs(5))
                .expect_err("no host process for an image or a container");
            assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{kind}");
            assert!(e.to_string().contains("only on the live node"), "{e}");
        }
    }

    #[test]
    fn both_outputs_are_read_at_once_and_kept_bounded() {
        // 1 MiB on each stream: reading one after the other would leave
        // the child blocked on a full pipe until the timeout.
        let (out, took) = sh(
            "head -c 1048576 /dev/zero >&2; head -c 1048576 /dev/zero | tr '\\0' x; echo done >&2",
            Duration::from_secs(20),
            100 << 10,
        );
        assert_eq!(out.status, Some(0));
        assert!(!out.timed_out);
        assert_eq!(out.stdout.len(), 100 << 10);
        assert!(out.stdout.bytes().all(|b| b == b'x'));
        assert_eq!(out.stderr.len(), 100 << 10);
        assert!(took < Duration::from_secs(10), "{took:?}");
    }

    #[test]
    fn the_timeout_kills_the_whole_process_group() {
        // The grandchild holds the pipes open: killing only the shell would
        // leave the readers waiting for it.
        let (out, took) = sh(
            "echo started; sleep 1000 & sleep 1000; echo never",
            Duration::from_millis(300),
            1 << 10,
        );
        assert!(out.timed_out);
        assert_eq!(out.status, None);
        assert_eq!(out.stdout, "started\n");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }
}
