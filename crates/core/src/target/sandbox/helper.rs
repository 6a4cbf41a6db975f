//! The helper process: builds the sandbox (or joins the container, or
//! stays on the live node), runs one program, reports on fd 3.
//!
//! Process tree for a root filesystem:
//!
//! ```text
//! nodecheck (rayon thread) ── helper (new mount/net/ipc/uts ns; user ns when rootless)
//!                               └─ init: pid 1 of a new pid ns; mounts /proc, pivots, drops caps
//!                                    └─ the program (own session)
//! ```
//!
//! For a container, the helper joins the container's namespaces and takes
//! a private copy of its mount namespace (an overlay over the container's
//! root, the container's own mounts bound read-only on it); its child, a
//! process of the container's pid namespace, runs the program as a
//! subreaper and kills the program's process group and every re-parented
//! descendant when the program ends or times out. A nested pid namespace
//! would make that simpler but leave `getpid()` and the container's /proc
//! disagreeing (`ps` refuses to run then).
//!
//! The init exits as soon as the program does, and the kernel then kills
//! every process left in its pid namespace (forked daemons included);
//! at the timeout the init itself is killed, with the same effect. The
//! mount namespace, and with it the overlay's tmpfs upper layer, goes away
//! with the last process in it.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::ForkResult;

use super::sys::{self, Create, Procfd, Res, Src, ctx, in_root};
use super::{Job, Mode as JobMode, Report};

/// Entry point, called by [`super::sandbox_main`]. Returns the exit code.
pub(super) fn main() -> i32 {
    // fd 3 is the report pipe: keep a close-on-exec copy so that no
    // program ever inherits it.
    // SAFETY: fd 3 was set up by the caller (or is not open, and fcntl
    // fails cleanly).
    let three = unsafe { BorrowedFd::borrow_raw(3) };
    let report_fd = match nix::fcntl::fcntl(three, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10)) {
        // SAFETY: F_DUPFD_CLOEXEC returned a new fd that we own.
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        Err(_) => {
            eprintln!(
                "nodecheck: {} is internal; it is not meant to be run by hand",
                super::HELPER_ARG
            );
            return 2;
        }
    };
    // SAFETY: closing the original fd 3, which we no longer use.
    unsafe { libc::close(3) };
    let mut input = Vec::new();
    let report = match std::io::stdin().lock().read_to_end(&mut input) {
        Err(e) => failed(format!("cannot read the job: {e}")),
        Ok(_) => match serde_json::from_slice::<Job>(&input) {
            Err(e) => failed(format!("cannot parse the job: {e}")),
            Ok(job) => run(&job),
        },
    };
    let bytes = serde_json::to_vec(&report).unwrap_or_default();
    let _ = File::from(report_fd).write_all(&bytes);
    0
}

fn failed(e: String) -> Report {
    Report {
        error: Some(e),
        ..Report::default()
    }
}

fn run(job: &Job) -> Report {
    sys::die_with_parent();
    if nix::unistd::getppid().as_raw() != job.parent {
        return failed("nodecheck went away before the sandbox was set up".into());
    }
    let r = match &job.mode {
        JobMode::Rootfs { root } => rootfs(job, root, false),
        JobMode::Probe { root } => rootfs(job, root, true),
        JobMode::Container { pid, start_time } => container(job, *pid, *start_time),
        JobMode::Live => live(job),
    };
    r.unwrap_or_else(failed)
}

/// How the init prepares the new root before entering it.
struct Setup {
    /// The root (an overlay, or the read-only bind where overlayfs was
    /// refused), as an `O_PATH` fd.
    root: OwnedFd,
    /// Whether the root takes writes (overlay): mount points that are
    /// missing in the image can be created.
    writable: bool,
    /// Mount a /proc for the new pid namespace (a container that has its
    /// own keeps it: programs see the container's processes, their own
    /// included).
    fresh_proc: bool,
    /// Build a minimal /dev (a container that has its own keeps it).
    fresh_dev: bool,
    /// Mount a fresh read-only sysfs (same).
    fresh_sys: bool,
    /// Further directories that get a tmpfs (only without overlay).
    extra_tmpfs: Vec<String>,
    /// In a user namespace that is not the initial one: /proc needs no
    /// masking (its sysctls are out of reach anyway).
    userns: bool,
}

// ---------------------------------------------------------------------
// Root filesystem
// ---------------------------------------------------------------------

fn rootfs(job: &Job, root: &Path, probe: bool) -> Res<Report> {
    let procfd = Procfd::open()?;
    let rootless = !nix::unistd::geteuid().is_root();
    let (uid, gid) = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    if rootless {
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    nix::sched::unshare(flags).map_err(|e| {
        format!(
            "cannot create the sandbox's namespaces: {}{}",
            e.desc(),
            if rootless {
                " (without root, nodecheck needs unprivileged user namespaces)"
            } else {
                ""
            }
        )
    })?;
    if rootless {
        sys::map_ids(uid, gid)?;
    }
    make_private()?;
    // Opened in the new mount namespace (a bind from a file descriptor of
    // another namespace is refused), before the scratch tmpfs may hide it.
    let image = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(ctx(format!("cannot open {}", root.display())))?;
    let scratch = Scratch::mount(
        &procfd,
        &["/tmp", "/run", "/mnt", "/var/tmp", "/media", "/srv"],
    )?;
    let lower = scratch.dir("lower")?;
    procfd.mount(
        Src::Fd(image.as_fd()),
        lower.as_fd(),
        None,
        MsFlags::MS_BIND,
        None,
        "the image",
    )?;
    let lower = scratch.dir("lower")?;
    remount_ro(&procfd, lower.as_fd(), rootless, "the image read-only")?;
    let overlay = if job.no_overlay {
        Err("NODECHECK_NO_OVERLAY=1".to_string())
    } else {
        scratch.overlay(&procfd, rootless)
    };
    let (root, isolation, writable) = match overlay {
        Ok(root) => (root, "overlay".to_string(), true),
        Err(e) => (lower, format!("read-only bind (no overlay: {e})"), false),
    };
    if probe {
        return Ok(Report {
            isolation,
            ..Report::default()
        });
    }
    // Without a loopback, launchers that talk to themselves over TCP
    // (MPI's) fail; a failure here shows in their own errors.
    let _ = sys::loopback_up();
    let setup = Setup {
        root,
        writable,
        fresh_proc: true,
        fresh_dev: true,
        fresh_sys: true,
        extra_tmpfs: if writable {
            Vec::new()
        } else {
            writable_dirs(job)
        },
        userns: rootless,
    };
    let stdin = stdin_fd(job)?;
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(ctx("cannot create a pipe"))?;
    // SAFETY: the helper is single-threaded, so the child may do anything.
    match unsafe { nix::unistd::fork() }.map_err(ctx("cannot fork"))? {
        ForkResult::Child => {
            drop(r);
            init(job, &procfd, &setup, stdin.as_ref(), w)
        }
        ForkResult::Parent { child } => {
            drop(w);
            let timed_out = sys::wait_exit(child.as_raw(), timeout(job));
            sys::reap(child.as_raw());
            Ok(collect_report(r, timed_out, isolation))
        }
    }
}

/// Directories a program commonly writes to, which get a tmpfs when the
/// image is only bound read-only.
fn writable_dirs(job: &Job) -> Vec<String> {
    let mut v = vec!["var/tmp".to_string(), "run".to_string()];
    if let Some((_, home)) = job.env.iter().find(|(k, _)| k == "HOME")
        && home != "/"
    {
        v.push(home.trim_start_matches('/').to_string());
    }
    v
}

fn timeout(job: &Job) -> Duration {
    Duration::from_millis(job.timeout_ms)
}

fn make_private() -> Res<()> {
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(ctx("cannot make the mounts private"))
}

/// Remounts the bind mount at `fd` read-only, keeping what a user
/// namespace may not change.
fn remount_ro(procfd: &Procfd, fd: BorrowedFd<'_>, userns: bool, what: &str) -> Res<()> {
    let mut flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV;
    if userns {
        flags |= sys::locked_flags(fd);
    } else {
        // Reads must not even change atimes in the image.
        flags |= MsFlags::MS_NOATIME;
    }
    procfd.mount(Src::None, fd, None, flags, None, what)
}

/// A tmpfs holding the overlay's layers, mounted over a directory that
/// only this mount namespace sees.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn mount(procfd: &Procfd, candidates: &[&str]) -> Res<Scratch> {
        let path = candidates
            .iter()
            .map(PathBuf::from)
            .find(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()))
            .ok_or_else(|| {
                format!(
                    "no directory to hold the sandbox (tried {})",
                    candidates.join(", ")
                )
            })?;
        let fd = nix::fcntl::open(
            &path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )
        .map_err(ctx(format!("cannot open {}", path.display())))?;
        procfd.mount(
            Src::Path("tmpfs"),
            fd.as_fd(),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755"),
            "the sandbox's tmpfs",
        )?;
        for d in ["lower", "upper", "work", "root"] {
            fs::create_dir(path.join(d)).map_err(|e| format!("cannot create {d}: {e}"))?;
        }
        Ok(Scratch { path })
    }

    fn dir(&self, name: &str) -> Res<OwnedFd> {
        nix::fcntl::open(
            &self.path.join(name),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(ctx(format!("cannot open the sandbox's {name}")))
    }

    /// Mounts the overlay (read-only lower, tmpfs upper) on `root`.
    fn overlay(&self, procfd: &Procfd, userns: bool) -> Res<OwnedFd> {
        let p = |d: &str| self.path.join(d).display().to_string();
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}{}",
            p("lower"),
            p("upper"),
            p("work"),
            if userns { ",userxattr" } else { "" }
        );
        let target = self.dir("root")?;
        procfd
            .mount(
                Src::Path("overlay"),
                target.as_fd(),
                Some("overlay"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(&opts),
                "the overlay",
            )
            .map_err(|e| {
                e.trim_start_matches("cannot mount the overlay: ")
                    .to_string()
            })?;
        self.dir("root")
    }
}

/// The program's stdin: a memfd with the job's bytes, or `None` for
/// /dev/null.
fn stdin_fd(job: &Job) -> Res<Option<OwnedFd>> {
    if job.stdin.is_empty() {
        return Ok(None);
    }
    let fd =
        nix::sys::memfd::memfd_create(c"nodecheck-stdin", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(ctx("cannot create the program's stdin"))?;
    let mut f = File::from(fd);
    f.write_all(&job.stdin)
        .map_err(|e| format!("cannot write the program's stdin: {e}"))?;
    nix::unistd::lseek(&f, 0, nix::unistd::Whence::SeekSet).map_err(ctx("cannot rewind stdin"))?;
    Ok(Some(f.into()))
}

/// Reads the messages the init (and nested supervisor) left on the
/// status pipe: `S <raw status>`, `T` (timed out), `E <error>`.
fn collect_report(r: OwnedFd, timed_out: bool, isolation: String) -> Report {
    let mut text = String::new();
    let _ = File::from(r).read_to_string(&mut text);
    let mut report = Report {
        timed_out,
        isolation,
        ..Report::default()
    };
    for line in text.lines() {
        if let Some(s) = line.strip_prefix("S ") {
            report.status = s.parse().ok();
        } else if line == "T" {
            report.timed_out = true;
        } else if let Some(e) = line.strip_prefix("E ") {
            report.error.get_or_insert_with(|| e.to_string());
        }
    }
    if report.timed_out {
        report.status = None;
        report.error = None;
    }
    report
}

fn send(w: &OwnedFd, msg: &str) {
    let line = format!("{}\n", msg.replace('\n', " "));
    let _ = nix::unistd::write(w, line.as_bytes());
}

// ---------------------------------------------------------------------
// The init: pid 1 of the sandbox's pid namespace
// ---------------------------------------------------------------------

/// Prepares the root, enters it, starts the program and waits for it.
/// Never returns.
fn init(job: &Job, procfd: &Procfd, setup: &Setup, stdin: Option<&OwnedFd>, w: OwnedFd) -> ! {
    sys::die_with_parent();
    let prepared = prepare_root(procfd, setup)
        .and_then(|()| enter_root(setup.root.as_fd()))
        .and_then(|()| workdir(job, Path::new("/tmp/nodecheck")))
        .and_then(|()| sys::drop_caps());
    if let Err(e) = prepared {
        send(&w, &format!("E {e}"));
        exit(125);
    }
    // SAFETY: single-threaded; the child execs right away.
    match unsafe { nix::unistd::fork() } {
        Err(e) => {
            send(&w, &format!("E cannot fork: {}", e.desc()));
            exit(125)
        }
        Ok(ForkResult::Child) => exec_program(job, stdin.map(AsRawFd::as_raw_fd)),
        Ok(ForkResult::Parent { child }) => {
            // Reap everything (orphans come to pid 1) until the program
            // ends; then leave, which ends the rest.
            loop {
                let mut status = 0;
                // SAFETY: waiting for any of our children.
                let r = unsafe { libc::waitpid(-1, &mut status, 0) };
                if r == child.as_raw() {
                    send(&w, &format!("S {status}"));
                    exit(0);
                }
                if r < 0 && Errno::last() == Errno::ECHILD {
                    send(&w, "E the program vanished");
                    exit(125);
                }
            }
        }
    }
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit skips atexit handlers and stdio flushing, which belong
    // to the helper we were forked from.
    unsafe { libc::_exit(code) }
}

/// Mounts /proc, /dev, /sys and the tmpfs directories inside the root,
/// every target resolved inside the root (an image's `/dev -> /` cannot
/// make the sandbox mount over the host's directories).
fn prepare_root(procfd: &Procfd, s: &Setup) -> Res<()> {
    let root = s.root.as_fd();
    let create = |c| if s.writable { Some(c) } else { None };
    let noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if s.fresh_proc {
        fresh_proc(procfd, s)?;
    }
    if s.fresh_dev {
        minimal_dev(procfd, root, create(Create::Dir))?;
    } else if let Ok(shm) = in_root(root, "dev/shm", None) {
        tmpfs(procfd, shm.as_fd(), "mode=1777", "/dev/shm")?;
    }
    if s.fresh_sys {
        let sys_dir = in_root(root, "sys", create(Create::Dir))
            .map_err(|e| format!("no /sys in the image: {e}"))?;
        let ro = noexec | MsFlags::MS_RDONLY;
        if procfd
            .mount(
                Src::Path("sysfs"),
                sys_dir.as_fd(),
                Some("sysfs"),
                ro,
                None,
                "/sys",
            )
            .is_err()
        {
            // The host's, read-only (hwloc reads the topology there).
            procfd.mount(
                Src::Path("/sys"),
                sys_dir.as_fd(),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
                "/sys",
            )?;
            let sys_dir = in_root(root, "sys", None).map_err(|e| format!("/sys: {e}"))?;
            remount_ro(procfd, sys_dir.as_fd(), s.userns, "/sys read-only")?;
        }
    }
    let tmp = in_root(root, "tmp", create(Create::Dir))
        .map_err(|e| format!("no /tmp in the image: {e}"))?;
    tmpfs(procfd, tmp.as_fd(), "mode=1777", "/tmp")?;
    for rel in &s.extra_tmpfs {
        if let Ok(fd) = in_root(root, rel, None) {
            let mode = if rel == "var/tmp" {
                "mode=1777"
            } else {
                "mode=0755"
            };
            tmpfs(procfd, fd.as_fd(), mode, rel)?;
        }
    }
    Ok(())
}

/// /proc for the new pid namespace, its global knobs read-only.
fn fresh_proc(procfd: &Procfd, s: &Setup) -> Res<()> {
    let root = s.root.as_fd();
    let create = |c| if s.writable { Some(c) } else { None };
    let noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let proc = in_root(root, "proc", create(Create::Dir))
        .map_err(|e| format!("no /proc in the image: {e}"))?;
    if let Err(e) = procfd.mount(
        Src::Path("proc"),
        proc.as_fd(),
        Some("proc"),
        noexec,
        None,
        "/proc",
    ) {
        // Some hosts forbid a fresh proc (a masked /proc in a container):
        // the host's view still lets programs find themselves.
        procfd
            .mount(
                Src::Path("/proc"),
                proc.as_fd(),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
                "/proc",
            )
            .map_err(|e2| format!("{e}; {e2}"))?;
    }
    if !s.userns {
        // Real root keeps CAP_DAC_OVERRIDE: the global knobs under /proc
        // become read-only, as container engines do.
        for rel in [
            "proc/sys",
            "proc/sysrq-trigger",
            "proc/irq",
            "proc/bus",
            "proc/fs",
        ] {
            if let Ok(fd) = in_root(root, rel, None)
                && procfd
                    .mount(
                        Src::Fd(fd.as_fd()),
                        fd.as_fd(),
                        None,
                        MsFlags::MS_BIND,
                        None,
                        rel,
                    )
                    .is_ok()
                && let Ok(fd) = in_root(root, rel, None)
            {
                let _ = procfd.mount(
                    Src::None,
                    fd.as_fd(),
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | noexec,
                    None,
                    rel,
                );
            }
        }
    }
    Ok(())
}

fn tmpfs(procfd: &Procfd, at: BorrowedFd<'_>, mode: &str, what: &str) -> Res<()> {
    procfd.mount(
        Src::Path("tmpfs"),
        at,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(mode),
        what,
    )
}

/// A tmpfs /dev with the usual character devices, /dev/shm and /dev/pts,
/// like a container engine's.
fn minimal_dev(procfd: &Procfd, root: BorrowedFd<'_>, create: Option<Create>) -> Res<()> {
    let dev = in_root(root, "dev", create).map_err(|e| format!("no /dev in the image: {e}"))?;
    procfd.mount(
        Src::Path("tmpfs"),
        dev.as_fd(),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=0755,size=1m"),
        "/dev",
    )?;
    let dev = in_root(root, "dev", None).map_err(|e| format!("/dev: {e}"))?;
    let dir = sys::reopen_dir(dev.as_fd()).map_err(|e| format!("/dev: {e}"))?;
    let old_umask = nix::sys::stat::umask(Mode::empty());
    let result = (|| -> Res<()> {
        for (name, major, minor) in [
            ("null", 1, 3),
            ("zero", 1, 5),
            ("full", 1, 7),
            ("random", 1, 8),
            ("urandom", 1, 9),
            ("tty", 5, 0),
        ] {
            let perm = Mode::from_bits_truncate(0o666);
            match nix::sys::stat::mknodat(
                &dir,
                name,
                SFlag::S_IFCHR,
                perm,
                nix::sys::stat::makedev(major, minor),
            ) {
                Ok(()) => {}
                // In a user namespace device nodes cannot be made: bind the
                // host's (or the container's) instead.
                Err(Errno::EPERM) => {
                    let f = nix::fcntl::openat(
                        &dir,
                        name,
                        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
                        perm,
                    )
                    .map_err(ctx(format!("cannot create /dev/{name}")))?;
                    drop(f);
                    let at = nix::fcntl::openat(
                        &dir,
                        name,
                        OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
                        Mode::empty(),
                    )
                    .map_err(ctx(format!("/dev/{name}")))?;
                    let host = format!("/dev/{name}");
                    procfd.mount(
                        Src::Path(&host),
                        at.as_fd(),
                        None,
                        MsFlags::MS_BIND,
                        None,
                        &host,
                    )?;
                }
                Err(e) => return Err(format!("cannot create /dev/{name}: {}", e.desc())),
            }
        }
        for (name, to) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("ptmx", "pts/ptmx"),
        ] {
            nix::unistd::symlinkat(to, &dir, name)
                .map_err(ctx(format!("cannot create /dev/{name}")))?;
        }
        for (name, mode) in [("shm", 0o1777), ("pts", 0o755)] {
            nix::sys::stat::mkdirat(&dir, name, Mode::from_bits_truncate(mode))
                .map_err(ctx(format!("cannot create /dev/{name}")))?;
        }
        Ok(())
    })();
    nix::sys::stat::umask(old_umask);
    result?;
    let shm = in_root(root, "dev/shm", None).map_err(|e| format!("/dev/shm: {e}"))?;
    tmpfs(procfd, shm.as_fd(), "mode=1777", "/dev/shm")?;
    // Terminals are a nicety (`script`, `expect`): no error without them.
    if let Ok(pts) = in_root(root, "dev/pts", None) {
        let _ = procfd.mount(
            Src::Path("devpts"),
            pts.as_fd(),
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
            "/dev/pts",
        );
    }
    Ok(())
}

/// Makes `root` the root of this mount namespace and detaches everything
/// else, so nothing of the host stays reachable.
fn enter_root(root: BorrowedFd<'_>) -> Res<()> {
    nix::unistd::fchdir(root).map_err(ctx("cannot enter the root"))?;
    match nix::unistd::pivot_root(".", ".") {
        Ok(()) => {
            nix::mount::umount2(".", MntFlags::MNT_DETACH)
                .map_err(ctx("cannot detach the old root"))?;
        }
        // pivot_root is refused when the current root is not a mount (a
        // node running from its initramfs): chroot is the best left.
        Err(Errno::EINVAL) => nix::unistd::chroot(".").map_err(ctx("cannot chroot"))?,
        Err(e) => return Err(format!("cannot pivot_root: {}", e.desc())),
    }
    nix::unistd::chdir("/").map_err(ctx("cannot enter /"))
}

/// Creates the program's working directory with the job's files, and
/// enters it.
fn workdir(job: &Job, dir: &Path) -> Res<()> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, content, mode) in &job.files {
        let p = dir.join(name);
        fs::write(&p, content).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        let perm = std::os::unix::fs::PermissionsExt::from_mode(*mode & 0o7777);
        fs::set_permissions(&p, perm).map_err(|e| format!("cannot chmod {}: {e}", p.display()))?;
    }
    nix::unistd::chdir(dir).map_err(ctx(format!("cannot enter {}", dir.display())))
}

/// Becomes the program: own session, stdin, default signal handling, the
/// job's environment. Never returns.
fn exec_program(job: &Job, stdin: Option<RawFd>) -> ! {
    let _ = nix::unistd::setsid();
    match stdin {
        // SAFETY: dup2 onto fd 0 of this (about to exec) process.
        Some(fd) => unsafe {
            libc::dup2(fd, 0);
        },
        None => {
            if let Ok(null) = nix::fcntl::open("/dev/null", OFlag::O_RDONLY, Mode::empty()) {
                // SAFETY: as above.
                unsafe { libc::dup2(null.as_raw_fd(), 0) };
            }
        }
    }
    // Rust ignores SIGPIPE; a program must get the default back (`yes |
    // head` ends `yes` by SIGPIPE).
    // SAFETY: resetting signal dispositions and the mask before exec.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
    let argv0 = job.argv[0].as_str();
    let path_var = job
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map_or("/usr/bin:/bin", |(_, v)| v.as_str());
    let (code, msg) = match lookup(argv0, path_var) {
        Err(m) => (127, m),
        Ok(path) => {
            let prepared = sys::cstrings(job.argv.iter().map(String::as_str)).and_then(|argv| {
                let env: Vec<String> = job.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                Ok((argv, sys::cstrings(env.iter().map(String::as_str))?))
            });
            match (prepared, CString::new(path.as_os_str().as_encoded_bytes())) {
                (Ok((argv, env)), Ok(p)) => {
                    let e = nix::unistd::execve(&p, &argv, &env).unwrap_err();
                    let code = if e == Errno::ENOENT { 127 } else { 126 };
                    (code, format!("cannot run {argv0}: {}", e.desc()))
                }
                (Err(e), _) => (126, e),
                (_, Err(_)) => (126, format!("{argv0:?} contains a NUL byte")),
            }
        }
    };
    eprintln!("nodecheck: {msg}");
    exit(code)
}

/// Finds `name` in `path_var` like a shell (a name with `/` is taken as
/// is).
fn lookup(name: &str, path_var: &str) -> Result<PathBuf, String> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let p = Path::new(dir).join(name);
        if fs::metadata(&p).is_ok_and(|m| m.is_file())
            && nix::unistd::access(&p, nix::unistd::AccessFlags::X_OK).is_ok()
        {
            return Ok(p);
        }
    }
    Err(format!("{name}: command not found (PATH={path_var})"))
}

// ---------------------------------------------------------------------
// Container
// ---------------------------------------------------------------------

const NAMESPACES: [(&str, CloneFlags); 7] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

fn container(job: &Job, pid: i32, start_time: u64) -> Res<Report> {
    if sys::start_time(pid) != Some(start_time) {
        return Err(format!("the container's process {pid} is gone"));
    }
    let procfd = Procfd::open()?;
    let croot = nix::fcntl::open(
        format!("/proc/{pid}/root").as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(ctx(format!("cannot open the root of process {pid}")))?;
    // Open every namespace before joining any: after the mount namespace
    // changes, /proc is the container's.
    let mut join = Vec::new();
    for (name, flag) in NAMESPACES {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let ours = format!("/proc/self/ns/{name}");
        let (Ok(t), Ok(o)) = (fs::metadata(&theirs), fs::metadata(&ours)) else {
            // A kernel without this namespace type.
            continue;
        };
        if std::os::unix::fs::MetadataExt::ino(&t) == std::os::unix::fs::MetadataExt::ino(&o) {
            continue;
        }
        let fd = nix::fcntl::open(
            theirs.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(ctx(format!("cannot open {theirs}")))?;
        join.push((name, flag, fd));
    }
    if sys::start_time(pid) != Some(start_time) {
        return Err(format!("the container's process {pid} is gone"));
    }
    let mut userns = false;
    for (name, flag, fd) in &join {
        nix::sched::setns(fd, *flag)
            .map_err(ctx(format!("cannot join the container's {name} namespace")))?;
        if *flag == CloneFlags::CLONE_NEWUSER {
            userns = true;
            let root_ids = nix::unistd::setresgid(0.into(), 0.into(), 0.into())
                .and_then(|()| nix::unistd::setresuid(0.into(), 0.into(), 0.into()));
            root_ids.map_err(ctx("cannot become root in the container's user namespace"))?;
        }
    }
    // A private copy of the container's mounts: nothing done below is
    // seen by the container. The copy moves the cwd (the container's root)
    // along; "/" is still the namespace's root, which can be made private.
    nix::unistd::fchdir(&croot).map_err(ctx("cannot enter the container's root"))?;
    nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(ctx("cannot create a mount namespace"))?;
    make_private()?;
    nix::unistd::chroot(".").map_err(ctx("cannot chroot into the container"))?;
    nix::unistd::chdir("/").map_err(ctx("cannot enter /"))?;
    let mounts = mount_points(&procfd)?;
    let scratch_at = ["/tmp", "/var/tmp", "/run", "/mnt", "/root", "/srv", "/opt"];
    let scratch = Scratch::mount(&procfd, &scratch_at)?;
    let scratch_path = scratch.path.display().to_string();
    let lower = scratch.dir("lower")?;
    procfd.mount(
        Src::Path("/"),
        lower.as_fd(),
        None,
        MsFlags::MS_BIND,
        None,
        "the container's root",
    )?;
    let lower = scratch.dir("lower")?;
    remount_ro(
        &procfd,
        lower.as_fd(),
        userns,
        "the container's root read-only",
    )?;
    let (root, isolation, writable) = match scratch.overlay(&procfd, userns) {
        Ok(root) => (root, "container namespaces, overlay".to_string(), true),
        Err(e) => (
            lower,
            format!("container namespaces, read-only bind (overlayfs refused: {e})"),
            false,
        ),
    };
    // The container's own mounts (its /proc, /dev, /sys, volumes,
    // /etc/hosts), read-only, on the new root; /tmp and /dev/shm are fresh.
    // One that cannot be bound (a user namespace refuses a non-recursive
    // bind of a mount with locked submounts) is replaced by a fresh one.
    let under = |p: &str, dir: &str| p == dir || p.starts_with(&format!("{dir}/"));
    let mut bound: Vec<&str> = Vec::new();
    for mp in &mounts {
        if mp == "/"
            || ["/tmp", "/dev/shm", scratch_path.as_str()]
                .iter()
                .any(|d| under(mp, d))
        {
            continue;
        }
        let kind = if fs::metadata(mp).is_ok_and(|m| m.is_dir()) {
            Create::Dir
        } else {
            Create::File
        };
        let Ok(target) = in_root(root.as_fd(), mp, if writable { Some(kind) } else { None }) else {
            continue;
        };
        if procfd
            .mount(
                Src::Path(mp),
                target.as_fd(),
                None,
                MsFlags::MS_BIND,
                None,
                mp,
            )
            .is_ok()
            && let Ok(target) = in_root(root.as_fd(), mp, None)
        {
            bound.push(mp);
            // Read-only, but otherwise as the container has it: its /dev
            // must keep device access.
            let flags = MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | sys::locked_flags(target.as_fd());
            let _ = procfd.mount(Src::None, target.as_fd(), None, flags, None, mp);
        }
    }
    let has = |dir: &str| bound.contains(&dir);
    let setup = Setup {
        root,
        writable,
        fresh_proc: !has("/proc"),
        fresh_dev: !has("/dev"),
        fresh_sys: !has("/sys"),
        extra_tmpfs: if writable {
            Vec::new()
        } else {
            writable_dirs(job)
        },
        userns,
    };
    let stdin = stdin_fd(job)?;
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(ctx("cannot create a pipe"))?;
    // SAFETY: single-threaded helper.
    match unsafe { nix::unistd::fork() }.map_err(ctx("cannot fork"))? {
        ForkResult::Child => {
            drop(r);
            contained(job, &procfd, &setup, stdin.as_ref(), w)
        }
        ForkResult::Parent { child } => {
            drop(w);
            // The child enforces the timeout; this wait only ends with it.
            sys::reap(child.as_raw());
            Ok(collect_report(r, false, isolation))
        }
    }
}

/// In the container's pid namespace (as a process of the container, so
/// that `ps` and `/proc/self` agree with `getpid()`): prepares the root,
/// runs the program as a subreaper and, when it ends or the timeout passes,
/// kills its process group and every descendant left (daemons re-parent to
/// this process). Never returns.
fn contained(job: &Job, procfd: &Procfd, setup: &Setup, stdin: Option<&OwnedFd>, w: OwnedFd) -> ! {
    sys::die_with_parent();
    let prepared = prepare_root(procfd, setup)
        .and_then(|()| enter_root(setup.root.as_fd()))
        .and_then(|()| workdir(job, Path::new("/tmp/nodecheck")))
        .and_then(|()| sys::subreaper())
        .and_then(|()| sys::drop_caps());
    if let Err(e) = prepared {
        send(&w, &format!("E {e}"));
        exit(125);
    }
    // SAFETY: single-threaded; the child execs right away.
    match unsafe { nix::unistd::fork() } {
        Err(e) => {
            send(&w, &format!("E cannot fork: {}", e.desc()));
            exit(125)
        }
        Ok(ForkResult::Child) => exec_program(job, stdin.map(AsRawFd::as_raw_fd)),
        Ok(ForkResult::Parent { child }) => {
            let timed_out = sys::wait_exit(child.as_raw(), timeout(job));
            // SAFETY: kill of the program's process group (its leader is
            // not reaped yet, so the id is still its).
            unsafe { libc::kill(-child.as_raw(), libc::SIGKILL) };
            let status = sys::reap(child.as_raw());
            sys::kill_descendants();
            if timed_out {
                send(&w, "T");
            } else {
                send(&w, &format!("S {status}"));
            }
            exit(0)
        }
    }
}

/// Mount points visible under the current root, in mount order, from the
/// host's /proc (the container's /proc belongs to a pid namespace this
/// process is not in).
fn mount_points(procfd: &Procfd) -> Res<Vec<String>> {
    let fd = nix::fcntl::openat(
        procfd.fd(),
        "self/mountinfo",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(ctx("cannot open /proc/self/mountinfo"))?;
    let mut text = String::new();
    File::from(fd)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .collect())
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------
// Live node
// ---------------------------------------------------------------------

fn live(job: &Job) -> Res<Report> {
    sys::subreaper()?;
    let dir = nix::unistd::mkdtemp("/tmp/nodecheck-XXXXXX")
        .map_err(ctx("cannot create a working directory in /tmp"))?;
    let result = (|| {
        let stdin = stdin_fd(job)?;
        for (name, content, mode) in &job.files {
            let p = dir.join(name);
            fs::write(&p, content).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
            fs::set_permissions(
                &p,
                std::os::unix::fs::PermissionsExt::from_mode(*mode & 0o7777),
            )
            .map_err(|e| format!("cannot chmod {}: {e}", p.display()))?;
        }
        // SAFETY: single-threaded helper.
        match unsafe { nix::unistd::fork() }.map_err(ctx("cannot fork"))? {
            ForkResult::Child => {
                // Dies with the helper (nodecheck interrupted): on the
                // live node no pid namespace does it for us.
                sys::die_with_parent();
                if let Err(e) = nix::unistd::chdir(&dir) {
                    eprintln!("nodecheck: cannot enter {}: {}", dir.display(), e.desc());
                    exit(126);
                }
                exec_program(job, stdin.as_ref().map(AsRawFd::as_raw_fd))
            }
            ForkResult::Parent { child } => {
                let timed_out = sys::wait_exit(child.as_raw(), timeout(job));
                // The program's process group (its pid is still reserved:
                // not reaped yet), then whatever escaped it (daemons
                // re-parented to us): all of it goes.
                // SAFETY: kill of the program's own process group.
                unsafe { libc::kill(-child.as_raw(), libc::SIGKILL) };
                let status = sys::reap(child.as_raw());
                sys::kill_descendants();
                Ok(Report {
                    status: (!timed_out).then_some(status),
                    timed_out,
                    error: None,
                    isolation: "live".into(),
                })
            }
        }
    })();
    let _ = fs::remove_dir_all(&dir);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/x\\"), "/x\\");
    }

    #[test]
    fn lookup_uses_path_and_takes_slashes_as_is() {
        assert_eq!(lookup("./a.out", "/bin").unwrap(), PathBuf::from("./a.out"));
        let e = lookup("no-such-program-xyz", "/nonexistent").unwrap_err();
        assert!(e.contains("command not found"), "{e}");
    }
}
