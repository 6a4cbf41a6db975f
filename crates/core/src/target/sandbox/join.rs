//! Joining a running container: its namespaces, a private copy of its
//! mounts with an overlay over its root (its own mounts bound read-only on
//! it), and the program run as one of its processes under a subreaper.

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::ForkResult;

use super::helper::{
    Scratch, Setup, collect_report, make_private, remount_ro, send, stdin_fd, timeout,
    writable_dirs,
};
use super::root::{enter_root, exec_program, exit, prepare_root, proc_inside, seal, workdir};
use super::sys::{self, Create, Procfd, Res, Src, ctx, in_root};
use super::{Job, Report};

const NAMESPACES: [(&str, CloneFlags); 7] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

pub(super) fn container(job: &Job, pid: i32, start_time: u64) -> Res<Report> {
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
    let scratch = Scratch::mount(&procfd, &scratch_at, job.limits.tmpfs)?;
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
    // A fresh /proc must be mounted from the container's pid namespace,
    // by the child; everything else is done here, in a process the
    // container cannot see.
    let proc_needed = !has("/proc");
    let setup = Setup {
        root,
        writable,
        fresh_proc: false,
        fresh_dev: !has("/dev"),
        fresh_sys: !has("/sys"),
        extra_tmpfs: if writable {
            Vec::new()
        } else {
            writable_dirs(job)
        },
        userns,
        tmpfs_size: job.limits.tmpfs,
        shifted: None,
    };
    prepare_root(&procfd, &setup)?;
    let stdin = stdin_fd(job)?;
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(ctx("cannot create a pipe"))?;
    // The child is a process of the container's pid namespace from its
    // first instant, visible to everything in the container: it must
    // start with nothing of the host. Non-dumpable (inherited by fork), so
    // that no process of the container can open its /proc/PID/fd, root or
    // cwd or trace it; the host's /proc and every other host directory
    // closed here, the working directory moved off the host's /proc. What
    // it still inherits (the report and output pipes) it closes first
    // thing.
    sys::not_dumpable()?;
    nix::unistd::fchdir(&setup.root).map_err(ctx("cannot enter the new root"))?;
    drop(procfd);
    drop(croot);
    drop(join);
    // SAFETY: single-threaded helper.
    match unsafe { nix::unistd::fork() }.map_err(ctx("cannot fork"))? {
        ForkResult::Child => {
            drop(r);
            contained(job, &setup, proc_needed, stdin.as_ref(), w)
        }
        ForkResult::Parent { child } => {
            drop(w);
            // The child enforces the timeout; this wait only ends with it
            // (or with nodecheck: then the child is killed).
            let forever = std::time::Duration::from_secs(100 * 365 * 86_400);
            sys::wait_exit(child.as_raw(), forever);
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
fn contained(
    job: &Job,
    setup: &Setup,
    proc_needed: bool,
    stdin: Option<&OwnedFd>,
    w: OwnedFd,
) -> ! {
    sys::die_with_parent();
    sys::forget_term();
    let keep = [
        Some(w.as_raw_fd()),
        stdin.map(AsRawFd::as_raw_fd),
        Some(setup.root.as_raw_fd()),
    ];
    let prepared = seal(&keep)
        .and_then(|()| enter_root(setup.root.as_fd()))
        .and_then(|()| {
            if proc_needed {
                proc_inside(setup)
            } else {
                Ok(())
            }
        })
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
        .map(super::super::unescape_octal)
        .collect())
}
