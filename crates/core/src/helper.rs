//! nodecheck running itself again as a child process, for work a check
//! must not do inside the run: `dlopen` runs a library's constructors (and
//! may crash or hang), and after `fork` a threaded process may only call
//! async-signal-safe functions, so the child is a fresh `exec` of the
//! current executable with a hidden first argument.
//!
//! A binary embedding nodecheck calls [`dispatch`] first thing in `main`,
//! with the handlers of the kinds it registers (the `nodecheck` binary
//! passes `nodecheck_checks::HELPERS`).
//!
//! Only stdio crosses into a child: descriptors nodecheck inherited (a CI
//! runner's `7</some/dir`) or opened itself are closed before the child's
//! program starts ([`close_fds_except`]), and a child dies with the
//! nodecheck that started it.

use std::io::{self, Read};
use std::os::fd::RawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The hidden first argument of a helper process.
pub const ARG: &str = "__nodecheck-helper";

/// Output kept per stream; the rest is read and dropped.
const KEEP: usize = 64 << 10;

/// How long output may trail the helper's exit.
const GRACE: Duration = Duration::from_secs(1);

/// A helper: gets the arguments after its name, returns the exit status.
pub type Handler = fn(&[String]) -> i32;

/// In a helper process, runs the handler named by the command line and
/// returns its exit status; `None` in an ordinary run.
///
/// ```
/// fn echo(args: &[String]) -> i32 { args.len() as i32 }
/// // Not started as a helper: nothing to do.
/// assert_eq!(nodecheck_core::helper::dispatch(&[("echo", echo)]), None);
/// ```
pub fn dispatch(handlers: &[(&str, Handler)]) -> Option<i32> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(ARG) {
        return None;
    }
    let name = args.get(2).map_or("", String::as_str);
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
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg(ARG)
        .arg(name)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    child_hygiene(&mut cmd, 3);
    let mut child = cmd.spawn()?;
    // Readers hand their text over a channel: a grandchild that keeps a
    // pipe open (a daemon started by a constructor) must not block us.
    let reader = |s: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        if let Some(s) = s {
            thread::spawn(move || {
                let _ = tx.send(keep(s));
            });
        }
        rx
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait()?;
        }
        thread::sleep(Duration::from_millis(5));
    };
    let text = |rx: mpsc::Receiver<String>| rx.recv_timeout(GRACE).unwrap_or_default();
    Ok(HelperOutput {
        status: status.code(),
        signal: status.signal(),
        stdout: text(out),
        stderr: text(err),
        timed_out,
    })
}

/// Reads a stream to its end, keeping the first [`KEEP`] bytes.
fn keep(mut r: impl Read) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = KEEP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
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
