//! The zygote: a long-lived, single-threaded copy of nodecheck (started
//! like every helper through [`crate::helper`]) from which each command's
//! helper is forked. One zygote serves one command at a time; nodecheck
//! keeps as many as it runs commands at once (one per `--jobs` worker).
//!
//! What it saves per command: re-executing nodecheck, and moving a fresh
//! process into a cgroup (which waits for an RCU grace period, 7-15 ms on
//! a quiet machine): the zygote makes its cgroup and moves itself in once
//! ([`super::limits`]), and each helper is born inside. A plain `fork`
//! keeps the helper single-threaded, so it can still create and enter
//! namespaces.
//!
//! Protocol, on a `SOCK_SEQPACKET` socket that is its fd 3: the zygote
//! sends `R` once it is ready; each command is one message `J` carrying
//! four descriptors: the job (a memfd holding it as JSON), the program's
//! stdout and stderr, and the report pipe. The zygote forks the helper
//! ([`super::helper::command`]), closes its copies, waits for the helper,
//! kills whatever it left in the cgroup, and takes the next message. The
//! end of the stream (nodecheck closed it, or died) or SIGTERM (its
//! parent-death signal) ends it: it stops a running helper with SIGTERM,
//! kills what is left in its cgroup and removes it.
//!
//! What it holds: the control socket, a signalfd, its cgroup's directory
//! descriptors, and nothing else (everything it inherited is closed first
//! thing). It is non-dumpable, dies with nodecheck (parent-death signal,
//! re-checked against the parent's pid), and runs in a process group of
//! its own, which nodecheck kills whole (helpers and inits with it) when
//! a helper does not answer in time.

use std::fs::File;
use std::io::{Read, Seek};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::ForkResult;

use super::Job;
use super::helper::{command, failed};
use super::limits::Cgroup;
use super::sys;

/// The byte the zygote sends when it is ready for jobs.
pub(super) const READY: u8 = b'R';

/// The byte of a job message.
pub(super) const JOB: u8 = b'J';

/// The argument that tells the zygote to make no cgroup
/// (`NODECHECK_NO_CGROUP=1`).
pub(super) const NO_CGROUP: &str = "no-cgroup";

/// Entry point, called by [`crate::helper::dispatch`] with the arguments
/// `PARENT-PID [no-cgroup]`. Returns the exit code.
pub(super) fn main() -> i32 {
    // fd 3 is the control socket: keep a close-on-exec copy so that no
    // helper or program ever inherits it.
    // SAFETY: fd 3 was set up by the caller (or is not open, and fcntl
    // fails cleanly).
    let three = unsafe { BorrowedFd::borrow_raw(3) };
    let ctl = match nix::fcntl::fcntl(three, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10)) {
        // SAFETY: F_DUPFD_CLOEXEC returned a new fd that we own.
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        Err(_) => {
            eprintln!(
                "nodecheck: {} {} is internal; it is not meant to be run by hand",
                crate::helper::ARG,
                crate::helper::SANDBOX
            );
            return 2;
        }
    };
    // SAFETY: closing the original fd 3, which we no longer use.
    unsafe { libc::close(3) };
    // Whatever else came along (closed before exec already where the
    // kernel has close_range).
    crate::helper::close_fds_except(&[ctl.as_raw_fd()]);
    let args: Vec<String> = std::env::args().skip(3).collect();
    let parent: i32 = args.first().and_then(|p| p.parse().ok()).unwrap_or(-1);
    let no_cgroup = args.get(1).is_some_and(|a| a == NO_CGROUP);
    if sys::term_with_parent().is_err()
        || nix::unistd::getppid().as_raw() != parent
        || sys::not_dumpable().is_err()
    {
        return 1;
    }
    let mut cgroup = if no_cgroup {
        Err("NODECHECK_NO_CGROUP=1".to_string())
    } else {
        Cgroup::make()
    };
    if sys::send_fds(ctl.as_fd(), READY, &[]).is_err() {
        return 1;
    }
    let mut helpers = Helpers::default();
    while let Some(fds) = next_job(&ctl, &mut helpers, cgroup.as_ref().ok()) {
        let [job, out, err, report]: [OwnedFd; 4] = match fds.try_into() {
            Ok(a) => a,
            // Not nodecheck's message: nothing to answer on.
            Err(_) => continue,
        };
        let job = match read_job(job) {
            Ok(job) => job,
            Err(e) => {
                let bytes = serde_json::to_vec(&failed(e)).unwrap_or_default();
                let _ = std::io::Write::write_all(&mut File::from(report), &bytes);
                continue;
            }
        };
        // This command's limits, written before its helper exists.
        let (state, leave) = match &mut cgroup {
            Ok(cg) => match cg.set(&job.limits) {
                Ok(()) => (Ok(cg.version()), false),
                Err(e) => (Err(format!("cannot set its limits: {e}")), true),
            },
            Err(why) => (Err(why.clone()), false),
        };
        let me = std::process::id() as i32;
        // SAFETY: the zygote is single-threaded; the child builds the
        // sandbox and leaves with _exit.
        match unsafe { nix::unistd::fork() } {
            Ok(ForkResult::Child) => {
                drop(ctl);
                let cg = cgroup.as_ref().ok().filter(|_| leave);
                command(&job, out, err, report, state, cg, me)
            }
            Ok(ForkResult::Parent { child }) => {
                drop((out, err, report));
                helpers.started(child.as_raw());
            }
            Err(e) => {
                let msg = format!("cannot fork the sandbox helper: {}", e.desc());
                let bytes = serde_json::to_vec(&failed(msg)).unwrap_or_default();
                let _ = std::io::Write::write_all(&mut File::from(report), &bytes);
            }
        }
    }
    // nodecheck is gone: a running helper stops its program and cleans up
    // (SIGTERM, as its own parent-death signal would).
    helpers.end();
    // Kills what is left in the cgroup, moves out and removes it.
    drop(cgroup);
    0
}

/// The helpers forked and not yet reaped. A helper closes its report and
/// output pipes before it exits, and the caller sends the next job as
/// soon as it has read them: tearing down the helper's namespaces (an RCU
/// grace period for its mounts) then overlaps with the next command
/// instead of delaying it.
#[derive(Default)]
struct Helpers {
    /// Each with a pidfd that becomes readable when it has exited.
    running: Vec<(i32, Option<OwnedFd>)>,
    /// The helper of the latest job.
    latest: Option<i32>,
}

impl Helpers {
    fn started(&mut self, pid: i32) {
        // Where the kernel has no pidfds (before 5.3), the previous helper
        // is reaped, waiting, before the next one starts.
        for (p, fd) in std::mem::take(&mut self.running) {
            if fd.is_none() {
                sys::reap(p);
            } else {
                self.running.push((p, fd));
            }
        }
        self.running.push((pid, sys::pidfd(pid)));
        self.latest = Some(pid);
    }

    /// Reaps the helpers whose pidfd is ready (`ready[i]` for
    /// `running[i]`); once the latest one is gone no command is running,
    /// and whatever is left in the cgroup is killed.
    fn reap(&mut self, ready: &[bool], cgroup: Option<&Cgroup>) {
        let mut i = 0;
        self.running.retain(|(pid, _)| {
            let done = ready.get(i).copied().unwrap_or(false);
            i += 1;
            if done {
                sys::reap(*pid);
            }
            !done
        });
        if self.running.is_empty() && self.latest.take().is_some() {
            // Nothing should be left: the pid namespace, the container's
            // supervisor or the live helper (a subreaper) killed it all.
            if let Some(cg) = cgroup {
                cg.sweep();
            }
        }
    }

    fn end(self) {
        for (pid, _) in &self.running {
            // SAFETY: SIGTERM to our own, unreaped child.
            unsafe { libc::kill(*pid, libc::SIGTERM) };
        }
        for (pid, _) in &self.running {
            sys::reap(*pid);
        }
    }
}

/// The descriptors of the next job, reaping helpers as they exit; `None`
/// at the end of the stream, on an error, or on SIGTERM (nodecheck is
/// gone).
fn next_job(ctl: &OwnedFd, helpers: &mut Helpers, cgroup: Option<&Cgroup>) -> Option<Vec<OwnedFd>> {
    loop {
        let mut fds = vec![PollFd::new(ctl.as_fd(), PollFlags::POLLIN)];
        let term = sys::term_fd();
        if let Some(t) = term {
            fds.push(PollFd::new(t, PollFlags::POLLIN));
        }
        let first_helper = fds.len();
        for (_, fd) in &helpers.running {
            if let Some(fd) = fd {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return None,
            Ok(_) => {}
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(PollFd::revents)
                .is_some_and(|r| !r.is_empty())
        };
        if term.is_some() && ready(1) && sys::term_pending() {
            return None;
        }
        let exited: Vec<bool> = (first_helper..fds.len()).map(ready).collect();
        let job = if ready(0) {
            match sys::recv_fds(ctl.as_fd(), 4) {
                Ok(Some((JOB, fds))) => Some(fds),
                Ok(Some(_)) => None,
                Ok(None) | Err(_) => return None,
            }
        } else {
            None
        };
        drop(fds);
        // Only helpers with a pidfd are polled, and they come first in
        // `running` (see Helpers::started).
        if exited.iter().any(|e| *e) {
            helpers.reap(&exited, if job.is_some() { None } else { cgroup });
        }
        if job.is_some() {
            return job;
        }
    }
}

fn read_job(fd: OwnedFd) -> Result<Job, String> {
    let mut f = File::from(fd);
    let mut bytes = Vec::new();
    f.rewind()
        .and_then(|()| f.read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read the job: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("cannot parse the job: {e}"))
}
