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

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::ForkResult;

use super::root::{exec_program, exit, init};
use super::sys::{self, Procfd, Res, Src, ctx};
use super::{Job, Mode as JobMode, Report};

/// Entry point, called by [`crate::helper::dispatch`]. Returns the exit code.
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
    crate::helper::close_fds_except(&[report_fd.as_raw_fd()]);
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
    if let Err(e) = sys::term_with_parent() {
        return failed(e);
    }
    if nix::unistd::getppid().as_raw() != job.parent {
        return failed("nodecheck went away before the sandbox was set up".into());
    }
    let probe = matches!(job.mode, JobMode::Probe { .. });
    let root = nix::unistd::geteuid().is_root();
    let applied = (!probe).then(|| {
        super::limits::apply(
            &job.limits,
            !root,
            !matches!(job.mode, JobMode::Live),
            job.no_cgroup,
            root && matches!(job.mode, JobMode::Rootfs { .. }),
        )
    });
    let mut limits = applied.as_ref().map(|a| a.text.clone()).unwrap_or_default();
    let shift = applied.as_ref().is_some_and(|a| a.userns);
    let mut no_userns = None;
    let r = match &job.mode {
        JobMode::Rootfs { root } => rootfs(job, root, false, shift, &mut no_userns),
        JobMode::Probe { root } => rootfs(job, root, true, false, &mut no_userns),
        JobMode::Container { pid, start_time } => super::join::container(job, *pid, *start_time),
        JobMode::Live => live(job),
    };
    if let (Some(a), Some(e)) = (&applied, &no_userns) {
        limits = a.without_userns(&job.limits, e);
    }
    // Kills what is left in the run's cgroup and removes it.
    drop(applied);
    let mut report = r.unwrap_or_else(failed);
    if !limits.is_empty() {
        report.isolation = format!("{}; {limits}", report.isolation);
    }
    report
}

/// How the init prepares the new root before entering it.
pub(super) struct Setup {
    /// The root (an overlay, or the read-only bind where overlayfs was
    /// refused), as an `O_PATH` fd.
    pub(super) root: OwnedFd,
    /// Whether the root takes writes (overlay): mount points that are
    /// missing in the image can be created.
    pub(super) writable: bool,
    /// Mount a /proc for the new pid namespace (a container that has its
    /// own keeps it: programs see the container's processes, their own
    /// included).
    pub(super) fresh_proc: bool,
    /// Build a minimal /dev (a container that has its own keeps it).
    pub(super) fresh_dev: bool,
    /// Mount a fresh read-only sysfs (same).
    pub(super) fresh_sys: bool,
    /// Further directories that get a tmpfs (only without overlay).
    pub(super) extra_tmpfs: Vec<String>,
    /// In a user namespace that is not the initial one: /proc needs no
    /// masking (its sysctls are out of reach anyway).
    pub(super) userns: bool,
    /// Bytes of each tmpfs (/tmp, /dev/shm, the scratch directories).
    pub(super) tmpfs_size: u64,
    /// The user namespace (ids shifted to [`sys::ID_BASE`]) the init
    /// enters once the root is ready, as root without a cgroup.
    pub(super) shifted: Option<OwnedFd>,
}

// ---------------------------------------------------------------------
// Root filesystem
// ---------------------------------------------------------------------

/// `shift`: run the program in a user namespace whose ids are shifted to
/// [`sys::ID_BASE`], the image mounted idmapped through it (as root
/// without a cgroup: the process limit then binds); where that cannot be
/// done, `no_userns` gets why and the program runs without it.
fn rootfs(
    job: &Job,
    root: &Path,
    probe: bool,
    shift: bool,
    no_userns: &mut Option<String>,
) -> Res<Report> {
    let rootless = !nix::unistd::geteuid().is_root();
    let (uid, gid) = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    // A packed image's tree lives in its holder's mount namespace (and,
    // rootless, user namespace): joined first, in place of a user
    // namespace of our own.
    let joined_user = match &job.enter {
        Some(e) => {
            sys::enter_holder(e)?;
            e.user
        }
        None => false,
    };
    let procfd = Procfd::open()?;
    // Made before the new pid namespace, whose first child (the init)
    // must be the first process forked after it.
    let shifted = shift.then(|| sys::shifted_userns(&procfd));
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    if rootless && !joined_user {
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
    if rootless && !joined_user {
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
        job.limits.tmpfs,
    )?;
    let lower = scratch.dir("lower")?;
    let shifted = match shifted {
        Some(Ok(ns)) => match sys::idmapped_bind(image.as_fd(), lower.as_fd(), ns.as_fd()) {
            Ok(()) => {
                scratch.shift_upper(image.as_fd())?;
                Some(ns)
            }
            Err(e) => {
                *no_userns = Some(e);
                None
            }
        },
        Some(Err(e)) => {
            *no_userns = Some(e);
            None
        }
        None => None,
    };
    if shifted.is_none() {
        procfd.mount(
            Src::Fd(image.as_fd()),
            lower.as_fd(),
            None,
            MsFlags::MS_BIND,
            None,
            "the image",
        )?;
    }
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
        tmpfs_size: job.limits.tmpfs,
        shifted,
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
pub(super) fn writable_dirs(job: &Job) -> Vec<String> {
    let mut v = vec!["var/tmp".to_string(), "run".to_string()];
    if let Some((_, home)) = job.env.iter().find(|(k, _)| k == "HOME")
        && home != "/"
    {
        v.push(home.trim_start_matches('/').to_string());
    }
    v
}

pub(super) fn timeout(job: &Job) -> Duration {
    Duration::from_millis(job.timeout_ms)
}

pub(super) fn make_private() -> Res<()> {
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
pub(super) fn remount_ro(procfd: &Procfd, fd: BorrowedFd<'_>, userns: bool, what: &str) -> Res<()> {
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
pub(super) struct Scratch {
    pub(super) path: PathBuf,
}

impl Scratch {
    /// The tmpfs holds the overlay's upper layer: `size` bounds what the
    /// program can write over the image.
    pub(super) fn mount(procfd: &Procfd, candidates: &[&str], size: u64) -> Res<Scratch> {
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
            Some(&format!("mode=0755,size={size}")),
            "the sandbox's tmpfs",
        )?;
        for d in ["lower", "upper", "work", "root"] {
            fs::create_dir(path.join(d)).map_err(|e| format!("cannot create {d}: {e}"))?;
        }
        Ok(Scratch { path })
    }

    /// Gives the overlay's upper directory (whose owner the merged root
    /// shows) the owner the image's root has through an idmapped lower
    /// layer: `ID_BASE` + its ids.
    pub(super) fn shift_upper(&self, image: BorrowedFd<'_>) -> Res<()> {
        let st = nix::sys::stat::fstat(image).map_err(ctx("cannot stat the image"))?;
        let id = |n: u32| n.checked_add(sys::ID_BASE).filter(|_| n < sys::ID_COUNT);
        let (Some(u), Some(g)) = (id(st.st_uid), id(st.st_gid)) else {
            return Ok(());
        };
        nix::unistd::chown(
            &self.path.join("upper"),
            Some(nix::unistd::Uid::from_raw(u)),
            Some(nix::unistd::Gid::from_raw(g)),
        )
        .map_err(ctx("cannot chown the overlay's upper directory"))
    }

    pub(super) fn dir(&self, name: &str) -> Res<OwnedFd> {
        nix::fcntl::open(
            &self.path.join(name),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(ctx(format!("cannot open the sandbox's {name}")))
    }

    /// Mounts the overlay (read-only lower, tmpfs upper) on `root`.
    pub(super) fn overlay(&self, procfd: &Procfd, userns: bool) -> Res<OwnedFd> {
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
pub(super) fn stdin_fd(job: &Job) -> Res<Option<OwnedFd>> {
    if job.stdin.is_empty() {
        return Ok(None);
    }
    let mut f = anonymous_file().map_err(|e| format!("cannot create the program's stdin: {e}"))?;
    f.write_all(&job.stdin)
        .map_err(|e| format!("cannot write the program's stdin: {e}"))?;
    nix::unistd::lseek(&f, 0, nix::unistd::Whence::SeekSet).map_err(ctx("cannot rewind stdin"))?;
    Ok(Some(f.into()))
}

/// A file with no name: a memfd, or on kernels older than 3.17 (RHEL 7) an
/// O_TMPFILE in /tmp. memfd_create goes through the raw system call: its
/// glibc wrapper (2.27) is newer than the glibc nodecheck's release build
/// targets (2.17).
fn anonymous_file() -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // SAFETY: a valid NUL-terminated name and flags; the result is checked.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_memfd_create,
            c"nodecheck-stdin".as_ptr(),
            libc::MFD_CLOEXEC,
        )
    };
    if fd >= 0 {
        // SAFETY: a new descriptor this process owns.
        return Ok(unsafe { File::from_raw_fd(fd as i32) });
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .mode(0o600)
        .open("/tmp")
}

/// Reads the messages the init (and nested supervisor) left on the
/// status pipe: `S <raw status>`, `T` (timed out), `E <error>`.
pub(super) fn collect_report(r: OwnedFd, timed_out: bool, isolation: String) -> Report {
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

pub(super) fn send(w: &OwnedFd, msg: &str) {
    let line = format!("{}\n", msg.replace('\n', " "));
    let _ = nix::unistd::write(w, line.as_bytes());
}

/// Where the live target's working directories go, and their names:
/// `nodecheck-` and six random characters (mkdtemp), mode 0700.
const LIVE_TMP: &str = "/tmp";
const LIVE_PREFIX: &str = "nodecheck-";

fn live(job: &Job) -> Res<Report> {
    sys::subreaper()?;
    clean_stale_workdirs();
    let dir = nix::unistd::mkdtemp(&Path::new(LIVE_TMP).join(format!("{LIVE_PREFIX}XXXXXX")))
        .map_err(ctx("cannot create a working directory in /tmp"))?;
    // Held until the helper ends: a directory nobody holds is left over
    // from a run that was killed, and the next run removes it.
    let _lock = lock_dir(&dir, false);
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

/// Opens `dir` (not following a link) and takes an exclusive `flock` on
/// it; `None` when it cannot be opened or (with `try_only`) another
/// process holds it.
fn lock_dir(dir: &Path, try_only: bool) -> Option<OwnedFd> {
    let fd = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let op = if try_only {
        libc::LOCK_EX | libc::LOCK_NB
    } else {
        libc::LOCK_EX
    };
    // SAFETY: flock on a descriptor we own.
    (unsafe { libc::flock(fd.as_raw_fd(), op) } == 0).then_some(fd)
}

/// Removes working directories of live runs that were killed before they
/// could remove their own: ours (same owner, mode 0700, a real
/// directory), older than a minute, and locked by no running helper.
fn clean_stale_workdirs() {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = fs::read_dir(LIVE_TMP) else {
        return;
    };
    let me = nix::unistd::geteuid().as_raw();
    let now = std::time::SystemTime::now();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rand) = name.to_str().and_then(|n| n.strip_prefix(LIVE_PREFIX)) else {
            continue;
        };
        let path = e.path();
        let Ok(m) = fs::symlink_metadata(&path) else {
            continue;
        };
        let old = m
            .modified()
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > Duration::from_secs(60));
        if rand.len() != 6 || !m.is_dir() || m.uid() != me || m.mode() & 0o777 != 0o700 || !old {
            continue;
        }
        if let Some(_held) = lock_dir(&path, true) {
            let _ = fs::remove_dir_all(&path);
        }
    }
}
