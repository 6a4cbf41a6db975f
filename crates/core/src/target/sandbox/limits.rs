//! Memory and process limits of one run, through a cgroup.
//!
//! rlimits do not bind uid 0 (`RLIMIT_NPROC` exempts root, `RLIMIT_AS`
//! counts one process), so the limits live in a cgroup: cgroup v2 where
//! the zygote's cgroup can delegate the `memory` and `pids` controllers,
//! else the v1 `memory` and `pids` hierarchies. Each zygote (see
//! [`super::zygote`]) makes one cgroup and moves itself in once, when it
//! starts: moving a process between cgroups waits for an RCU grace period
//! (`cgroup_threadgroup_rwsem`), 7-15 ms on a quiet machine, which must
//! not be paid per command. Before each command it writes that command's
//! limits into it; the command's helper is forked inside, so everything
//! the program starts is counted (tmpfs pages it writes included). After
//! each command it kills whatever is left in it but itself, and when it
//! ends it kills everything, moves out and removes it. Where no cgroup
//! can be made (rootless, a read-only /sys/fs/cgroup,
//! `NODECHECK_NO_CGROUP=1`) the program runs in a user namespace under
//! rlimits, which bind a user namespace's root when it is not the host's
//! uid 0: rootless, the sandbox's own; as root, one whose ids are shifted
//! to [`super::sys::ID_BASE`] with the image mounted idmapped through it,
//! so that its files keep their owners. The run's `isolation` says which
//! limits applied.

use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::sys::{Res, ctx};
use crate::target::exec::{Limits, format_bytes};

/// Names of the cgroups made for runs (also how stale ones are known).
const PREFIX: &str = "nodecheck-";

/// A cgroup (one directory per hierarchy) a zygote is in, held by
/// descriptors: the sandbox's `pivot_root` takes the host's /sys/fs/cgroup
/// out of the helper's view.
pub(super) struct Cgroup {
    dirs: Vec<Dir>,
    v2: bool,
    /// v1: swap is counted, and limited with the memory.
    memsw: bool,
    /// The limits written last (`None`: none yet, or a write failed).
    set: Option<Limits>,
}

/// One hierarchy's new cgroup.
struct Dir {
    /// The cgroup the zygote came from, where it returns.
    home: OwnedFd,
    /// Where the new one was made (and is removed from).
    parent: OwnedFd,
    name: String,
    dir: OwnedFd,
}

impl Dir {
    fn create(home: &Path, parent: &Path, name: &str) -> Res<Dir> {
        let open = |p: &Path| {
            nix::fcntl::open(
                p,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(ctx(format!("cannot open {}", p.display())))
        };
        let home_fd = open(home)?;
        let parent_fd = open(parent)?;
        let path = parent.join(name);
        fs::create_dir(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let dir = match open(&path) {
            Ok(d) => d,
            Err(e) => {
                let _ = fs::remove_dir(&path);
                return Err(e);
            }
        };
        Ok(Dir {
            home: home_fd,
            parent: parent_fd,
            name: name.to_string(),
            dir,
        })
    }

    fn write(&self, file: &str, v: &str) -> Res<()> {
        write_at(&self.dir, file, v).map_err(|e| format!("cannot write {}/{file}: {e}", self.name))
    }
}

fn write_at(dir: &OwnedFd, file: &str, v: &str) -> std::io::Result<()> {
    let fd = nix::fcntl::openat(dir, file, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    std::io::Write::write_all(&mut fs::File::from(fd), v.as_bytes())
}

/// Which limits a command got.
pub(super) struct Applied {
    /// What the report says about them.
    pub(super) text: String,
    /// No cgroup, as root: the program must run in a user namespace of
    /// its own (where `RLIMIT_NPROC` binds it) for the process limit to
    /// hold. Where that namespace cannot be made, [`Applied::without_userns`]
    /// says what is left.
    pub(super) userns: bool,
    why: String,
    tmpfs: String,
}

impl Applied {
    /// The text for a root run whose user namespace could not be made.
    pub(super) fn without_userns(&self, limits: &Limits, err: &str) -> String {
        format!(
            "limits: {} address space per process{}; no memory or process limit (no cgroup: \
             {}; no user namespace: {err})",
            format_bytes(limits.memory),
            self.tmpfs,
            self.why
        )
    }
}

/// Applies `limits` to the helper and everything it will start.
/// `cgroup`: the version of the zygote's cgroup, which already holds them
/// (the helper was forked inside), or why there is none; then rlimits.
/// `userns_ok`: as root, the program can be moved into a user namespace
/// of its own where no cgroup can be had (a root filesystem's sandbox).
pub(super) fn apply(
    limits: &Limits,
    rootless: bool,
    sandboxed: bool,
    cgroup: Result<&str, String>,
    userns_ok: bool,
) -> Applied {
    // The live node has no tmpfs of nodecheck's.
    let tmpfs = if sandboxed {
        format!(", tmpfs {} each", format_bytes(limits.tmpfs))
    } else {
        String::new()
    };
    let applied = |text, userns, why: String| Applied {
        text,
        userns,
        why,
        tmpfs: tmpfs.clone(),
    };
    match cgroup {
        Ok(version) => {
            let text = format!(
                "limits: cgroup {version} memory {}, {} processes{tmpfs}",
                format_bytes(limits.memory),
                limits.processes
            );
            applied(text, false, String::new())
        }
        Err(why) if rootless || userns_ok => {
            // In a user namespace whose root is not the host's uid 0,
            // RLIMIT_NPROC binds (the kernel exempts only uid 0 and
            // holders of CAP_SYS_RESOURCE or CAP_SYS_ADMIN in the initial
            // namespace), and RLIMIT_AS bounds each process. Rootless, the
            // sandbox's namespace is that; as root, the program's own.
            set_rlimit(libc::RLIMIT_NPROC, limits.processes);
            set_rlimit(libc::RLIMIT_AS, limits.memory);
            let text = format!(
                "limits: user namespace + rlimits (no cgroup: {why}): {} processes{}, \
                 {} address space per process{tmpfs}",
                limits.processes,
                if rootless { " of this user" } else { "" },
                format_bytes(limits.memory)
            );
            applied(text, !rootless, why)
        }
        Err(why) => {
            set_rlimit(libc::RLIMIT_AS, limits.memory);
            let text = format!(
                "limits: {} address space per process{tmpfs}; no memory or process \
                 limit (no cgroup: {why})",
                format_bytes(limits.memory)
            );
            applied(text, false, why)
        }
    }
}

fn set_rlimit(which: libc::__rlimit_resource_t, v: u64) {
    let lim = libc::rlimit {
        rlim_cur: v,
        rlim_max: v,
    };
    // SAFETY: setrlimit with a filled struct; a failure leaves the limit
    // as it was (the text still names the intended one).
    unsafe { libc::setrlimit(which, &lim) };
}

impl Cgroup {
    /// Makes the zygote's cgroup (no limits yet) and moves this process
    /// into it.
    pub(super) fn make() -> Res<Cgroup> {
        let mounts = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let mine = fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let name = format!("{PREFIX}{}-{}", std::process::id(), unique());
        let v2 = Self::make_v2(&mounts, &mine, &name);
        if let Ok(cg) = v2 {
            return Ok(cg);
        }
        Self::make_v1(&mounts, &mine, &name)
            .map_err(|e1| format!("{}; {e1}", v2.err().unwrap_or_default()))
    }

    fn make_v2(mounts: &str, mine: &str, name: &str) -> Res<Cgroup> {
        let mount = mount_of(mounts, "cgroup2", None).ok_or("no cgroup2 mount")?;
        let rel = mine
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .ok_or("not in a cgroup v2")?;
        // The zygote's own cgroup is usually a leaf with processes, where
        // no controller can be delegated; the nearest ancestor that
        // delegates both takes the run's cgroup (beside the service or
        // scope nodecheck runs in).
        let parent = ancestors(rel)
            .map(|r| join(&mount, r))
            .find(|dir| {
                fs::read_to_string(dir.join("cgroup.subtree_control")).is_ok_and(|c| {
                    let has = |x: &str| c.split_whitespace().any(|w| w == x);
                    has("memory") && has("pids")
                })
            })
            .ok_or_else(|| {
                format!("no cgroup v2 group above {rel} delegates the memory and pids controllers")
            })?;
        clean_stale(&parent);
        let dir = Dir::create(&join(&mount, rel), &parent, name)?;
        // Removed when dropped, on a failure too.
        let cg = Cgroup {
            dirs: vec![dir],
            v2: true,
            memsw: false,
            set: None,
        };
        cg.enter().map(|()| cg)
    }

    fn make_v1(mounts: &str, mine: &str, name: &str) -> Res<Cgroup> {
        let mut cg = Cgroup {
            dirs: Vec::new(),
            v2: false,
            memsw: false,
            set: None,
        };
        for ctl in ["memory", "pids"] {
            let mount = mount_of(mounts, "cgroup", Some(ctl))
                .ok_or_else(|| format!("no cgroup v1 {ctl} hierarchy"))?;
            let rel = mine
                .lines()
                .find_map(|l| {
                    let mut f = l.splitn(3, ':');
                    let (_, ctls, path) = (f.next()?, f.next()?, f.next()?);
                    ctls.split(',').any(|c| c == ctl).then_some(path)
                })
                .ok_or_else(|| format!("not in a cgroup v1 {ctl} group"))?;
            let parent = join(&mount, rel);
            clean_stale(&parent);
            if ctl == "memory" {
                cg.memsw = parent.join("memory.memsw.limit_in_bytes").exists();
            }
            // Pushed at once: removed (dropped) on a failure.
            cg.dirs.push(Dir::create(&parent, &parent, name)?);
        }
        cg.enter().map(|()| cg)
    }

    /// Moves this process in (the one slow step, once per zygote).
    fn enter(&self) -> Res<()> {
        for d in &self.dirs {
            d.write("cgroup.procs", &std::process::id().to_string())?;
        }
        Ok(())
    }

    /// Moves this process (a command's helper whose limits could not be
    /// set) back to where the zygote came from.
    pub(super) fn leave(&self) -> Res<()> {
        let me = std::process::id().to_string();
        for d in &self.dirs {
            write_at(&d.home, "cgroup.procs", &me)
                .map_err(|e| format!("cannot leave {}: {e}", d.name))?;
        }
        Ok(())
    }

    /// `v1` or `v2`, for the report.
    pub(super) fn version(&self) -> &'static str {
        if self.v2 { "v2" } else { "v1" }
    }

    /// Writes the next command's limits (only those that changed). The
    /// zygote itself is in the cgroup: one process more is allowed.
    pub(super) fn set(&mut self, limits: &Limits) -> Res<()> {
        let last = self.set.take();
        if last == Some(*limits) {
            self.set = last;
            return Ok(());
        }
        let processes = limits.processes.saturating_add(1).to_string();
        let memory = limits.memory.to_string();
        let mem_changed = last.is_none_or(|l| l.memory != limits.memory);
        let pids_changed = last.is_none_or(|l| l.processes != limits.processes);
        if self.v2 {
            let d = &self.dirs[0];
            if mem_changed {
                d.write("memory.max", &memory)?;
                // Not every kernel counts swap.
                let _ = d.write("memory.swap.max", "0");
            }
            if pids_changed {
                d.write("pids.max", &processes)?;
            }
        } else {
            let (mem, pids) = (&self.dirs[0], &self.dirs[1]);
            if mem_changed {
                for f in v1_memory_files(self.memsw, last.map(|l| l.memory), limits.memory) {
                    mem.write(f, &memory)?;
                }
            }
            if pids_changed {
                pids.write("pids.max", &processes)?;
            }
        }
        self.set = Some(*limits);
        Ok(())
    }

    /// Kills whatever is left in the cgroup but this process: SIGKILL
    /// until none is (a process forking as it is killed is caught by the
    /// next pass), bounded in time.
    pub(super) fn sweep(&self) {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let left = self.procs();
            if left.is_empty() || Instant::now() > end {
                break;
            }
            for p in left {
                // SAFETY: kill of a process in the cgroup this run made.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn procs(&self) -> Vec<i32> {
        let me = std::process::id() as i32;
        let mut v = Vec::new();
        for d in &self.dirs {
            let mut text = String::new();
            let read = nix::fcntl::openat(
                &d.dir,
                "cgroup.procs",
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map(fs::File::from)
            .map(|mut f| f.read_to_string(&mut text));
            if read.is_ok() {
                v.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
        }
        v.sort_unstable();
        v.dedup();
        v.retain(|&p| p != me);
        v
    }
}

/// Dropping the cgroup (the zygote ends) moves the zygote back out, kills
/// every process left in it and removes it.
impl Drop for Cgroup {
    fn drop(&mut self) {
        let me = std::process::id().to_string();
        for d in &self.dirs {
            let _ = write_at(&d.home, "cgroup.procs", &me);
        }
        if self.v2
            && let Some(d) = self.dirs.first()
        {
            // One write kills them all (kernels from 5.14).
            let _ = write_at(&d.dir, "cgroup.kill", "1");
        }
        self.sweep();
        for d in self.dirs.iter().rev() {
            // Killed processes take a moment to leave.
            let end = Instant::now() + Duration::from_secs(2);
            while nix::unistd::unlinkat(
                &d.parent,
                d.name.as_str(),
                nix::unistd::UnlinkatFlags::RemoveDir,
            )
            .is_err()
                && Instant::now() < end
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// The v1 files to write, in order, to change the memory limit from
/// `last` (`None`: a fresh cgroup, both unlimited) to `new`: memsw may
/// never be below the memory limit, so it is raised first and lowered
/// last.
fn v1_memory_files(memsw: bool, last: Option<u64>, new: u64) -> &'static [&'static str] {
    let raise = last.is_some_and(|l| new > l);
    match (memsw, raise) {
        (false, _) => &["memory.limit_in_bytes"],
        (true, true) => &["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"],
        (true, false) => &["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"],
    }
}

/// Removes empty cgroups of runs whose helper is gone (killed before it
/// could remove its own): their names hold the helper's pid.
fn clean_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        // SAFETY: kill with signal 0 only asks whether the pid exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || nix::errno::Errno::last() != nix::errno::Errno::ESRCH;
        if !alive {
            // Fails harmlessly while processes are still in it.
            let _ = fs::remove_dir(e.path());
        }
    }
}

/// A number no other run of this boot uses with the same pid.
fn unique() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `/a/b`, `/a`, `/`.
fn ancestors(rel: &str) -> impl Iterator<Item = &str> {
    let rel = rel.trim_end_matches('/');
    std::iter::successors(Some(rel), |r| {
        if r.is_empty() {
            None
        } else {
            Some(r.rsplit_once('/').map_or("", |(a, _)| a))
        }
    })
}

fn join(mount: &Path, rel: &str) -> PathBuf {
    mount.join(rel.trim_start_matches('/'))
}

/// The mount point of a cgroup filesystem of type `fstype` (with `ctl`
/// among its super options, for v1).
fn mount_of(mountinfo: &str, fstype: &str, ctl: Option<&str>) -> Option<PathBuf> {
    mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mut post = post.split(' ');
        let (ty, _src, opts) = (post.next()?, post.next()?, post.next()?);
        if ty != fstype {
            return None;
        }
        if let Some(c) = ctl
            && !opts.split(',').any(|o| o == c)
        {
            return None;
        }
        let mp = pre.split(' ').nth(4)?;
        Some(PathBuf::from(crate::target::unescape_octal(mp)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_groups_are_looked_for_upwards() {
        assert_eq!(
            ancestors("/system.slice/x.service").collect::<Vec<_>>(),
            ["/system.slice/x.service", "/system.slice", ""]
        );
        assert_eq!(ancestors("/").collect::<Vec<_>>(), [""]);
    }

    #[test]
    fn v1_memory_limits_change_in_an_order_the_kernel_takes() {
        let (mem, sw) = ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes");
        // Fresh: both unlimited, lower the memory first.
        assert_eq!(v1_memory_files(true, None, 1 << 30), [mem, sw]);
        assert_eq!(v1_memory_files(true, Some(4 << 30), 1 << 30), [mem, sw]);
        // Raising the memory above memsw would fail: memsw first.
        assert_eq!(v1_memory_files(true, Some(1 << 30), 4 << 30), [sw, mem]);
        assert_eq!(v1_memory_files(false, Some(1 << 30), 4 << 30), [mem]);
    }

    #[test]
    fn finds_cgroup_mounts() {
        let mi = "30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
                  35 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                  36 30 0:32 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
                  37 30 0:33 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            mount_of(mi, "cgroup", Some("pids")),
            Some(PathBuf::from("/sys/fs/cgroup/pids"))
        );
        assert_eq!(
            mount_of(mi, "cgroup2", None),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(mount_of(mi, "cgroup", Some("cpu")), None);
    }
}
