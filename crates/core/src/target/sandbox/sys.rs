//! Thin wrappers over the system calls the sandbox helper makes, each
//! returning an error text that says what failed and where. Everything
//! here runs in the single-threaded helper (or its forked children).

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::Mode;
use nix::sys::statvfs::FsFlags;

use crate::target::resolve::{self, Resolver};

pub(super) type Res<T> = Result<T, String>;

/// `what: error` for an errno.
pub(super) fn ctx(what: impl std::fmt::Display) -> impl FnOnce(Errno) -> String {
    move |e| format!("{what}: {}", e.desc())
}

/// Paths of the form `self/fd/N`, resolved against the host's /proc
/// (opened before any namespace was entered): the helper mounts onto and
/// from file descriptors, so no path inside an image is ever resolved
/// against the host, and it works after joining a container whose /proc
/// belongs to another pid namespace.
pub(super) struct Procfd {
    proc: OwnedFd,
}

impl Procfd {
    pub(super) fn open() -> Res<Procfd> {
        let proc = nix::fcntl::open(
            "/proc",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(ctx("cannot open /proc"))?;
        Ok(Procfd { proc })
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.proc.as_fd()
    }

    /// Mounts `source` (a path, or `Some(fd)` as a source) onto the
    /// directory or file `target` refers to.
    pub(super) fn mount(
        &self,
        source: Src<'_>,
        target: BorrowedFd<'_>,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
        what: &str,
    ) -> Res<()> {
        // mount(2) resolves relative paths from the cwd: make it /proc.
        nix::unistd::fchdir(&self.proc).map_err(ctx("cannot enter /proc"))?;
        let t = format!("self/fd/{}", target.as_raw_fd());
        let r = match source {
            Src::Path(p) => nix::mount::mount(Some(p), t.as_str(), fstype, flags, data),
            Src::Fd(fd) => {
                let s = format!("self/fd/{}", fd.as_raw_fd());
                nix::mount::mount(Some(s.as_str()), t.as_str(), fstype, flags, data)
            }
            Src::None => nix::mount::mount(None::<&str>, t.as_str(), fstype, flags, data),
        };
        r.map_err(ctx(format!("cannot mount {what}")))
    }
}

/// A mount source.
pub(super) enum Src<'a> {
    Path(&'a str),
    Fd(BorrowedFd<'a>),
    None,
}

/// Opens `rel` inside the directory `root` (symlinks resolve inside it),
/// as an `O_PATH` fd. With `create`, a missing final component (and its
/// missing parents) is created as a directory, or as an empty file.
pub(super) fn in_root(
    root: BorrowedFd<'_>,
    rel: &str,
    create: Option<Create>,
) -> io::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    let open = |rel: &str, flags| match resolve::open(Resolver::Kernel, root, rel, flags) {
        // No openat2 (kernels before 5.6): the userspace walk.
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            resolve::open(Resolver::Userspace, root, rel, flags)
        }
        other => other,
    };
    match open(rel, flags) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && create.is_some() => {
            let rel = rel.trim_matches('/');
            let (parent, name) = match rel.rsplit_once('/') {
                Some((p, n)) => (p, n),
                None => ("", rel),
            };
            let pfd = if parent.is_empty() {
                open(".", flags | OFlag::O_DIRECTORY)?
            } else {
                in_root(root, parent, Some(Create::Dir))?
            };
            // O_PATH fds cannot be used with mkdirat: reopen the parent.
            let dir = reopen_dir(pfd.as_fd())?;
            match create {
                Some(Create::Dir) => {
                    match nix::sys::stat::mkdirat(&dir, name, Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Some(Create::File) => {
                    match nix::fcntl::openat(
                        &dir,
                        name,
                        OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_WRONLY
                            | OFlag::O_CLOEXEC
                            | OFlag::O_NOFOLLOW,
                        Mode::from_bits_truncate(0o644),
                    ) {
                        Ok(_) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                None => {}
            }
            open(rel, flags)
        }
        other => other,
    }
}

/// What [`in_root`] creates when the path is missing.
#[derive(Clone, Copy, Debug)]
pub(super) enum Create {
    Dir,
    File,
}

/// A real (not `O_PATH`) directory fd for the directory `fd` refers to.
pub(super) fn reopen_dir(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Ok(nix::fcntl::openat(
        fd,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

/// The mount flags of the filesystem `fd` is on that a user namespace may
/// not clear (nosuid, nodev, noexec, the atime mode): a read-only remount
/// from a user namespace must repeat them or fail with `EPERM`.
pub(super) fn locked_flags(fd: BorrowedFd<'_>) -> MsFlags {
    let Ok(st) = nix::sys::statvfs::fstatvfs(fd) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut m = MsFlags::empty();
    for (s, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
    ] {
        if f.contains(s) {
            m |= ms;
        }
    }
    m
}

/// Maps uid and gid 0 of a fresh user namespace to the caller's ids.
pub(super) fn map_ids(uid: u32, gid: u32) -> Res<()> {
    let w = |file: &str, text: String| {
        fs::write(file, text).map_err(|e| format!("cannot write {file}: {e}"))
    };
    w("/proc/self/setgroups", "deny".into())?;
    w("/proc/self/uid_map", format!("0 {uid} 1\n"))?;
    w("/proc/self/gid_map", format!("0 {gid} 1\n"))?;
    Ok(())
}

/// Dies with the parent: the helper when nodecheck goes, the sandbox's
/// init when the helper goes.
pub(super) fn die_with_parent() {
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
}

/// The signalfd that reports SIGTERM, the helper's parent-death signal
/// (`-1` where none: in the helper's children).
static TERM_FD: AtomicI32 = AtomicI32::new(-1);

/// Set once SIGTERM came: nodecheck is gone, clean up and leave.
static TERMINATED: AtomicBool = AtomicBool::new(false);

/// Makes the helper learn of nodecheck's death (SIGTERM, its parent-death
/// signal, read from a signalfd by [`wait_exit`]) instead of dying at once:
/// it then kills the program and all it started, removes its temporary
/// directory and cgroup, and exits. A helper that simply died would leave
/// the program's daemons and its directory behind on a live node.
pub(super) fn term_with_parent() -> Res<()> {
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::Signal::SIGTERM);
    set.thread_block().map_err(ctx("cannot block SIGTERM"))?;
    let fd = nix::sys::signalfd::SignalFd::with_flags(
        &set,
        nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
    )
    .map_err(ctx("cannot create a signalfd"))?;
    let raw = fd.as_fd().as_raw_fd();
    // Lives as long as the helper.
    std::mem::forget(fd);
    TERM_FD.store(raw, Ordering::Relaxed);
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGTERM as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    Ok(())
}

/// In a child of the helper: the signalfd is not ours to poll (and is
/// closed with the other inherited descriptors).
pub(super) fn forget_term() {
    TERM_FD.store(-1, Ordering::Relaxed);
}

/// Whether SIGTERM is pending on the signalfd (consumes it).
fn term_pending() -> bool {
    let fd = TERM_FD.load(Ordering::Relaxed);
    if fd < 0 {
        return false;
    }
    let mut buf = [0u8; 128];
    // SAFETY: a read into a local buffer from the helper's own signalfd.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n > 0 {
        TERMINATED.store(true, Ordering::Relaxed);
    }
    n > 0 || TERMINATED.load(Ordering::Relaxed)
}

/// The process can no longer be inspected or traced through /proc by
/// processes that lack `CAP_SYS_PTRACE` over the namespace it was started
/// in (the host's): its `/proc/PID/fd`, `root`, `cwd`, `environ` and
/// `mem` are closed to a container's root, even one sharing its uid and
/// capabilities. Inherited by `fork`, reset by `exec`.
pub(super) fn not_dumpable() -> Res<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) } < 0 {
        return Err(format!(
            "cannot make the process non-dumpable: {}",
            io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Joins a new, empty session keyring: the program cannot reach the keys
/// of the caller's session (`@s`). Kernels without keyrings have nothing
/// to hide.
pub(super) fn new_session_keyring() -> Res<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl(JOIN_SESSION_KEYRING, NULL) creates and joins an
    // anonymous keyring; no pointer but NULL is passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    if r < 0 {
        let e = Errno::last();
        if e != Errno::ENOSYS {
            return Err(format!("cannot join a new session keyring: {}", e.desc()));
        }
    }
    Ok(())
}

/// Becomes the reaper of orphaned descendants (live targets).
pub(super) fn subreaper() -> Res<()> {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if r < 0 {
        return Err(format!(
            "cannot become a subreaper: {}",
            io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Brings the loopback interface of the current network namespace up, so
/// that programs (MPI's launchers among them) can talk to themselves.
pub(super) fn loopback_up() -> Res<()> {
    // SAFETY: plain socket and ioctl calls on a zeroed `ifreq` whose name
    // is NUL-terminated; the socket is closed by OwnedFd.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(format!(
                "cannot open a socket: {}",
                io::Error::last_os_error()
            ));
        }
        let sock = OwnedFd::from_raw_fd(s);
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(format!(
                "cannot read the flags of lo: {}",
                io::Error::last_os_error()
            ));
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(format!(
                "cannot bring lo up: {}",
                io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// The capabilities a program in the sandbox keeps: those a container
/// engine grants by default, without `CAP_MKNOD` (the sandbox has its own
/// /dev). Loading modules, mounting, raw I/O, setting the clock and the
/// like are gone, so even uid 0 inside cannot reach past the sandbox.
const KEEP_CAPS: &[u32] = &[
    0,  // CAP_CHOWN
    1,  // CAP_DAC_OVERRIDE
    3,  // CAP_FOWNER
    4,  // CAP_FSETID
    5,  // CAP_KILL
    6,  // CAP_SETGID
    7,  // CAP_SETUID
    8,  // CAP_SETPCAP
    10, // CAP_NET_BIND_SERVICE
    13, // CAP_NET_RAW
    18, // CAP_SYS_CHROOT
    29, // CAP_AUDIT_WRITE
    31, // CAP_SETFCAP
];

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

/// Drops every capability but [`KEEP_CAPS`] from the bounding, ambient,
/// effective, permitted and inheritable sets.
pub(super) fn drop_caps() -> Res<()> {
    let keep: u64 = KEEP_CAPS.iter().fold(0, |m, c| m | 1 << c);
    for cap in 0..64u32 {
        if keep & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments; EINVAL marks the end of
        // the capabilities this kernel knows.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if r < 0 {
            match Errno::last() {
                Errno::EINVAL => break,
                e => return Err(format!("cannot drop capability {cap}: {}", e.desc())),
            }
        }
    }
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data structs, as the
    // kernel expects for 64-bit capability sets.
    unsafe {
        if libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        ) < 0
        {
            return Err(format!(
                "cannot read capabilities: {}",
                io::Error::last_os_error()
            ));
        }
        for (i, d) in data.iter_mut().enumerate() {
            let k = (keep >> (32 * i)) as u32;
            d.effective &= k;
            d.permitted &= k;
            d.inheritable &= k;
        }
        hdr.version = CAP_V3;
        hdr.pid = 0;
        if libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) < 0 {
            return Err(format!(
                "cannot set capabilities: {}",
                io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// A pidfd for a child, when the kernel has them (5.3+).
fn pidfd(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the fd was just returned by the kernel and is ours.
    Some(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Waits until the child `pid` has ended (without reaping it, so its pid
/// and process group stay reserved), or kills it with SIGKILL once
/// `timeout` has passed (`true`).
pub(super) fn wait_exit(pid: i32, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    let fd = pidfd(pid);
    let mut sleep = Duration::from_micros(200);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || term_pending() {
            // SAFETY: kill of our own, unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return true;
        }
        match &fd {
            Some(fd) => {
                let term = TERM_FD.load(Ordering::Relaxed);
                // SAFETY: the signalfd lives as long as the helper.
                let term = (term >= 0).then(|| unsafe { BorrowedFd::borrow_raw(term) });
                let mut p = vec![nix::poll::PollFd::new(
                    fd.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                if let Some(t) = &term {
                    p.push(nix::poll::PollFd::new(
                        t.as_fd(),
                        nix::poll::PollFlags::POLLIN,
                    ));
                }
                let ms = u16::try_from(left.as_millis().min(30_000)).unwrap_or(30_000);
                if let Ok(n) = nix::poll::poll(&mut p, nix::poll::PollTimeout::from(ms))
                    && n > 0
                    && p[0].revents().is_some_and(|r| !r.is_empty())
                {
                    return false;
                }
            }
            None => {
                // SAFETY: a zeroed siginfo for waitid to fill.
                let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
                // SAFETY: non-blocking, non-reaping wait on our own child.
                let r = unsafe {
                    libc::waitid(
                        libc::P_PID,
                        pid as libc::id_t,
                        &mut info,
                        libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
                    )
                };
                // SAFETY: si_pid is valid after a successful waitid.
                if r < 0 || unsafe { info.si_pid() } == pid {
                    return false;
                }
                std::thread::sleep(sleep.min(left));
                sleep = (sleep * 2).min(Duration::from_millis(20));
            }
        }
    }
}

/// Reaps the child `pid` (blocking) and returns its raw wait status.
pub(super) fn reap(pid: i32) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: blocking wait on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid || (r < 0 && Errno::last() != Errno::EINTR) {
            return status;
        }
    }
}

/// Sends SIGKILL to every process whose parent is this one and reaps them,
/// until no child is left (a subreaper inherits the orphans of everything
/// it started, daemons included, so this ends them all).
pub(super) fn kill_descendants() {
    let me = std::process::id();
    loop {
        if let Ok(dir) = fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                    continue;
                };
                if parent_of(pid) == Some(me) {
                    // SAFETY: kill of a process we are the parent of.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        let mut status = 0;
        // SAFETY: reaping our own children; every live one was just sent
        // SIGKILL, so this does not block for long. ECHILD: none left.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r < 0 && Errno::last() == Errno::ECHILD {
            return;
        }
    }
}

/// The parent pid from /proc/PID/stat.
pub(super) fn parent_of(pid: i32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks
/// since boot. With the pid it names one process for good.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// `CString`s for exec.
pub(super) fn cstrings<'a>(v: impl IntoIterator<Item = &'a str>) -> Res<Vec<CString>> {
    v.into_iter()
        .map(|s| CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte")))
        .collect()
}

/// The first host uid (and gid) of the user namespace a root helper runs
/// the program in where no cgroup bounds it: the image's id `n` is the
/// host's `ID_BASE + n`. Above the ranges systemd gives containers
/// (524288–1879048191) and below 2^31, which some tools take as negative.
pub(super) const ID_BASE: u32 = 0x7000_0000;

/// How many ids that namespace maps (`0..ID_COUNT` inside).
pub(super) const ID_COUNT: u32 = 0x0fff_0000;

/// The host uid that owns that namespace (outside its map).
const ID_OWNER: u32 = ID_BASE - 1;

/// A user namespace that maps ids `0..ID_COUNT` to `ID_BASE..` on the
/// host, held by an fd. A root process may write any map, but only from
/// the parent namespace: a child made for it unshares, the helper writes
/// its maps and keeps `/proc/<child>/ns/user`.
pub(super) fn shifted_userns(procfd: &Procfd) -> Res<OwnedFd> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(ctx("cannot create a pipe"))?;
    let (r2, w2) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(ctx("cannot create a pipe"))?;
    // SAFETY: the helper is single-threaded; the child only makes system
    // calls and leaves with _exit.
    match unsafe { nix::unistd::fork() }.map_err(ctx("cannot fork"))? {
        nix::unistd::ForkResult::Child => {
            drop(r);
            drop(w2);
            die_with_parent();
            // Made by a uid that is not 0 (nor mapped in it), the
            // namespace takes this process's RLIMIT_NPROC as its own limit
            // over all its uids: a program cannot get round the limit by
            // spreading its processes over uids of the namespace.
            let owner = nix::unistd::Uid::from_raw(ID_OWNER);
            let ok = nix::unistd::setresuid(owner, owner, owner).is_ok()
                && nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_ok();
            let _ = nix::unistd::write(&w, if ok { b"y" } else { b"n" });
            // Held until the helper has opened the namespace.
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(&r2, &mut b);
            // SAFETY: leaving the forked child without running any of the
            // helper's exit handlers.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            drop(r2);
            let mut b = [0u8; 1];
            let result = (|| {
                let n = nix::unistd::read(&r, &mut b).map_err(ctx("cannot read from a pipe"))?;
                if n != 1 || b[0] != b'y' {
                    return Err("cannot create a user namespace".to_string());
                }
                let map = format!("0 {ID_BASE} {ID_COUNT}\n");
                for file in ["uid_map", "gid_map"] {
                    let rel = format!("{}/{file}", child.as_raw());
                    let fd = nix::fcntl::openat(
                        procfd.fd(),
                        rel.as_str(),
                        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(ctx(format!("cannot open the user namespace's {file}")))?;
                    nix::unistd::write(&fd, map.as_bytes())
                        .map_err(ctx(format!("cannot write the user namespace's {file}")))?;
                }
                nix::fcntl::openat(
                    procfd.fd(),
                    format!("{}/ns/user", child.as_raw()).as_str(),
                    OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(ctx("cannot open the user namespace"))
            })();
            drop(w2);
            reap(child.as_raw());
            result
        }
    }
}

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Binds the directory `src` onto `target` as an idmapped mount through
/// `userns` (Linux 5.12 and a filesystem that allows it): the files keep
/// their owners as seen from inside that namespace.
pub(super) fn idmapped_bind(
    src: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    userns: BorrowedFd<'_>,
) -> Res<()> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
    // SAFETY: open_tree with an fd, an empty NUL-terminated path and
    // flags; the result is checked and owned below.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            src.as_raw_fd(),
            c"".as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_EMPTY_PATH as libc::c_uint,
        )
    };
    if tree < 0 {
        return Err(format!(
            "cannot clone the image's mount: {}",
            Errno::last().desc()
        ));
    }
    // SAFETY: a new descriptor this process owns.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as RawFd) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: mount_setattr on the detached tree with a filled struct of
    // the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(format!(
            "cannot idmap the image's mount: {}",
            Errno::last().desc()
        ));
    }
    // SAFETY: move_mount of the detached tree onto the target fd, both
    // with empty paths.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | 0x0000_0040, // MOVE_MOUNT_T_EMPTY_PATH
        )
    };
    if r < 0 {
        return Err(format!(
            "cannot attach the image's idmapped mount: {}",
            Errno::last().desc()
        ));
    }
    Ok(())
}

/// Enters the user namespace `userns` and becomes its root (host uid and
/// gid [`ID_BASE`]), with no supplementary groups: from here on the
/// process has no privilege over the host, and `RLIMIT_NPROC` binds it.
pub(super) fn enter_userns(userns: BorrowedFd<'_>) -> Res<()> {
    nix::sched::setns(userns, nix::sched::CloneFlags::CLONE_NEWUSER)
        .map_err(ctx("cannot enter the user namespace"))?;
    nix::unistd::setgroups(&[]).map_err(ctx("cannot drop the supplementary groups"))?;
    let root_g = nix::unistd::Gid::from_raw(0);
    let root_u = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresgid(root_g, root_g, root_g).map_err(ctx("cannot set the group ids"))?;
    nix::unistd::setresuid(root_u, root_u, root_u).map_err(ctx("cannot set the user ids"))
}

/// Joins the namespaces of a packed image's tree holder (see
/// [`super::Enter`]): its user namespace first when asked (whose root the
/// caller then is, with every capability in it), then its mount
/// namespace, which that user namespace owns. The holder is a child of
/// nodecheck, not reaped while its tree is in use; its start time guards
/// against a recycled pid all the same.
pub(super) fn enter_holder(e: &super::Enter) -> Res<()> {
    if start_time(e.pid) != Some(e.start_time) {
        return Err(format!(
            "the holder of the image's tree (pid {}) is gone",
            e.pid
        ));
    }
    let open = |ns: &str| {
        nix::fcntl::open(
            format!("/proc/{}/ns/{ns}", e.pid).as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(ctx(format!("cannot open the image tree's {ns} namespace")))
    };
    let mnt = open("mnt")?;
    if e.user {
        let user = open("user")?;
        nix::sched::setns(user, nix::sched::CloneFlags::CLONE_NEWUSER)
            .map_err(ctx("cannot enter the image tree's user namespace"))?;
    }
    nix::sched::setns(mnt, nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(ctx("cannot enter the image tree's mount namespace"))
}
