//! Inside the sandbox: the init (pid 1 of the new pid namespace) mounts
//! /proc, /dev, /sys and the tmpfs directories in the new root (every
//! target resolved inside it), pivots into it, drops capabilities and runs
//! the program; and how a program is started (stdin, signals, `PATH`
//! lookup inside the target).

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::ForkResult;

use super::Job;
use super::helper::{Setup, remount_ro, send};
use super::sys::{self, Create, Procfd, Res, Src, ctx, in_root};

/// Prepares the root, enters it, starts the program and waits for it.
/// Never returns.
pub(super) fn init(
    job: &Job,
    procfd: &Procfd,
    setup: &Setup,
    stdin: Option<&OwnedFd>,
    w: OwnedFd,
) -> ! {
    sys::die_with_parent();
    sys::forget_term();
    let keep = [Some(w.as_raw_fd()), stdin.map(AsRawFd::as_raw_fd)];
    let prepared = prepare_root(procfd, setup)
        .and_then(|()| enter_root(setup.root.as_fd()))
        .and_then(|()| match &setup.shifted {
            // From here on no privilege over the host (the mounts are
            // done), and RLIMIT_NPROC binds.
            Some(ns) => sys::enter_userns(ns.as_fd()),
            None => Ok(()),
        })
        .and_then(|()| seal(&keep))
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

/// What a process the program can see (the init, pid 1 of its pid
/// namespace; the supervisor in a container) does before the program
/// starts: closes every descriptor but `keep` (the host's /proc, the
/// image, the report pipe, anything nodecheck inherited), becomes
/// non-dumpable (its /proc/PID/fd, root, cwd and memory are out of the
/// program's reach, and it cannot be traced), and joins a fresh session
/// keyring that the program inherits.
pub(super) fn seal(keep: &[Option<RawFd>]) -> Res<()> {
    let keep: Vec<RawFd> = keep.iter().flatten().copied().collect();
    crate::helper::close_fds_except(&keep);
    sys::not_dumpable()?;
    sys::new_session_keyring()
}

pub(super) fn exit(code: i32) -> ! {
    // SAFETY: _exit skips atexit handlers and stdio flushing, which belong
    // to the helper we were forked from.
    unsafe { libc::_exit(code) }
}

/// Mounts /proc, /dev, /sys and the tmpfs directories inside the root,
/// every target resolved inside the root (an image's `/dev -> /` cannot
/// make the sandbox mount over the host's directories).
pub(super) fn prepare_root(procfd: &Procfd, s: &Setup) -> Res<()> {
    let root = s.root.as_fd();
    let create = |c| if s.writable { Some(c) } else { None };
    let noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    // In a shifted user namespace the tmpfs mounts belong to its root.
    let owner = if s.shifted.is_some() {
        format!(",uid={0},gid={0}", sys::ID_BASE)
    } else {
        String::new()
    };
    let sticky = format!("mode=1777{owner}");
    if s.fresh_proc {
        fresh_proc(procfd, s)?;
    }
    if s.fresh_dev {
        minimal_dev(procfd, root, create(Create::Dir), s.tmpfs_size, &owner)?;
    } else if let Ok(shm) = in_root(root, "dev/shm", None) {
        tmpfs(procfd, shm.as_fd(), &sticky, s.tmpfs_size, "/dev/shm")?;
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
    tmpfs(procfd, tmp.as_fd(), &sticky, s.tmpfs_size, "/tmp")?;
    for rel in &s.extra_tmpfs {
        if let Ok(fd) = in_root(root, rel, None) {
            let mode = if rel == "var/tmp" { "1777" } else { "0755" };
            let opts = format!("mode={mode}{owner}");
            tmpfs(procfd, fd.as_fd(), &opts, s.tmpfs_size, rel)?;
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
    mask_proc(procfd, s)
}

/// /proc for a container that has none, mounted by a process of the
/// container's pid namespace after it entered the new root (so that
/// nothing of the host is open in it): by path, which resolves inside
/// that root, then masked through the new /proc itself.
pub(super) fn proc_inside(s: &Setup) -> Res<()> {
    if s.writable {
        let _ = fs::create_dir("/proc");
    }
    let noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    nix::mount::mount(Some("proc"), "/proc", Some("proc"), noexec, None::<&str>)
        .map_err(ctx("cannot mount /proc"))?;
    let procfd = Procfd::open()?;
    mask_proc(&procfd, s)
}

fn mask_proc(procfd: &Procfd, s: &Setup) -> Res<()> {
    let root = s.root.as_fd();
    let noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
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

/// A size-capped tmpfs: a program filling it gets `ENOSPC`, not the
/// host's memory.
pub(super) fn tmpfs(
    procfd: &Procfd,
    at: BorrowedFd<'_>,
    mode: &str,
    size: u64,
    what: &str,
) -> Res<()> {
    procfd.mount(
        Src::Path("tmpfs"),
        at,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&format!("{mode},size={size}")),
        what,
    )
}

/// A tmpfs /dev with the usual character devices, /dev/shm and /dev/pts,
/// like a container engine's.
fn minimal_dev(
    procfd: &Procfd,
    root: BorrowedFd<'_>,
    create: Option<Create>,
    shm_size: u64,
    owner: &str,
) -> Res<()> {
    let dev = in_root(root, "dev", create).map_err(|e| format!("no /dev in the image: {e}"))?;
    procfd.mount(
        Src::Path("tmpfs"),
        dev.as_fd(),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(&format!("mode=0755,size=1m{owner}")),
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
    tmpfs(
        procfd,
        shm.as_fd(),
        &format!("mode=1777{owner}"),
        shm_size,
        "/dev/shm",
    )?;
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
pub(super) fn enter_root(root: BorrowedFd<'_>) -> Res<()> {
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
pub(super) fn workdir(job: &Job, dir: &Path) -> Res<()> {
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
pub(super) fn exec_program(job: &Job, stdin: Option<RawFd>) -> ! {
    let _ = nix::unistd::setsid();
    match stdin {
        // SAFETY: dup2 onto fd 0 of this (about to exec) process.
        Some(fd) => unsafe {
            libc::dup2(fd, 0);
        },
        None => {
            if let Ok(null) = nix::fcntl::open(
                "/dev/null",
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                // SAFETY: as above.
                unsafe { libc::dup2(null.as_raw_fd(), 0) };
            }
        }
    }
    // Only stdio crosses into the program: every other descriptor of the
    // helper or init (the host's /proc, the image, status pipes, anything
    // nodecheck inherited) is closed, close-on-exec or not.
    crate::helper::close_fds_except(&[]);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_uses_path_and_takes_slashes_as_is() {
        assert_eq!(lookup("./a.out", "/bin").unwrap(), PathBuf::from("./a.out"));
        let e = lookup("no-such-program-xyz", "/nonexistent").unwrap_err();
        assert!(e.contains("command not found"), "{e}");
    }
}
