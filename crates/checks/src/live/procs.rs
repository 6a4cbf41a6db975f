//! The node's processes, from /proc/<pid>/stat, cmdline and status.

use std::io;

use nodecheck_core::target::{FileType, Target};

use super::read_text;

/// The kernel truncates a process's `comm` to this many bytes.
const COMM_MAX: usize = 15;

/// A live process whose name matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    /// The kernel's name for it (`comm`, at most 15 bytes).
    pub comm: String,
    /// The effective uid, when /proc/<pid>/status could be read.
    pub uid: Option<u32>,
}

/// The processes named `name`, in pid order: those whose `comm` is
/// `name`, or, for names longer than the 15 bytes the kernel keeps, whose
/// `comm` is the truncated name and whose `argv[0]` ends in `/name` or is
/// `name`. Zombies and dead tasks are not running and are left out; so are
/// processes that exit while the table is read.
pub fn named(target: &dyn Target, name: &str) -> io::Result<Vec<Proc>> {
    let mut out = Vec::new();
    for entry in target.read_dir("/proc")? {
        if entry.file_type != FileType::Directory {
            continue;
        }
        let Ok(pid) = entry.name.parse::<u32>() else {
            continue;
        };
        let Some((comm, state)) = stat_of(target, pid) else {
            continue;
        };
        if matches!(state, 'Z' | 'X' | 'x') || !name_matches(target, pid, &comm, name) {
            continue;
        }
        let uid = read_text(target, &format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| effective_uid(&s));
        out.push(Proc { pid, comm, uid });
    }
    out.sort_by_key(|p| p.pid);
    Ok(out)
}

/// `comm` and state of a process, or `None` when it is gone (or its stat
/// cannot be read or parsed: then it is not one we can vouch for).
fn stat_of(target: &dyn Target, pid: u32) -> Option<(String, char)> {
    let stat = target.read(&format!("/proc/{pid}/stat"), 4096).ok()?;
    parse_stat(&String::from_utf8_lossy(&stat))
}

/// `pid (comm) S ...`: the name sits between the first `(` and the *last*
/// `)`, since a name may itself hold parentheses and spaces.
pub fn parse_stat(stat: &str) -> Option<(String, char)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    if close < open {
        return None;
    }
    let comm = stat[open + 1..close].to_string();
    let state = stat[close + 1..].trim_start().chars().next()?;
    Some((comm, state))
}

fn name_matches(target: &dyn Target, pid: u32, comm: &str, name: &str) -> bool {
    if comm == name {
        return true;
    }
    if name.len() <= COMM_MAX || comm.len() < COMM_MAX || !name.starts_with(comm) {
        return false;
    }
    // A long name: the kernel kept only its first 15 bytes; argv[0] says
    // the rest (`systemd-journald`).
    let Ok(cmdline) = target.read(&format!("/proc/{pid}/cmdline"), 1 << 20) else {
        return false;
    };
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let argv0 = String::from_utf8_lossy(argv0);
    let argv0 = argv0.split_whitespace().next().unwrap_or_default();
    argv0 == name || argv0.rsplit('/').next() == Some(name)
}

/// The effective uid from /proc/<pid>/status (`Uid: real effective saved fs`).
pub fn effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use nodecheck_core::target::MemoryTarget;

    use super::*;

    fn status(uid: u32) -> String {
        format!("Name:\tx\nState:\tS (sleeping)\nUid:\t0\t{uid}\t{uid}\t{uid}\nGid:\t0\t0\t0\t0\n")
    }

    fn node() -> MemoryTarget {
        MemoryTarget::new()
            .file("/proc/1/stat", 0o444, 0, 0, "1 (init) S 0 1 1 0")
            .file("/proc/1/status", 0o444, 0, 0, status(0))
            .file("/proc/812/stat", 0o444, 0, 0, "812 (sshd) S 1 812 812 0")
            .file("/proc/812/status", 0o444, 0, 0, status(0))
            .file("/proc/977/stat", 0o444, 0, 0, "977 (sshd) S 812 977 977 0")
            .file("/proc/977/status", 0o444, 0, 0, status(1000))
            .file("/proc/990/stat", 0o444, 0, 0, "990 (sshd) Z 812 0 0 0")
            .file(
                "/proc/45/stat",
                0o444,
                0,
                0,
                "45 (systemd-journal) S 1 45 45 0",
            )
            .file(
                "/proc/45/cmdline",
                0o444,
                0,
                0,
                "/lib/systemd/systemd-journald\0",
            )
            .file(
                "/proc/46/stat",
                0o444,
                0,
                0,
                "46 (systemd-journal) S 1 46 46 0",
            )
            .file(
                "/proc/46/cmdline",
                0o444,
                0,
                0,
                "/usr/bin/systemd-journalx\0",
            )
            .file("/proc/50/stat", 0o444, 0, 0, "50 (a (b) c) R 1 50 50 0")
            // A process whose stat cannot be parsed is not vouched for.
            .file("/proc/51/stat", 0o444, 0, 0, "garbage")
            .file("/proc/meminfo", 0o444, 0, 0, "MemTotal: 1 kB\n")
            .dir("/proc/sys", 0o555, 0, 0)
    }

    #[test]
    fn finds_live_processes_by_comm_without_zombies() {
        let found = named(&node(), "sshd").unwrap();
        let pids: Vec<(u32, Option<u32>)> = found.iter().map(|p| (p.pid, p.uid)).collect();
        assert_eq!(pids, vec![(812, Some(0)), (977, Some(1000))]);
        assert!(named(&node(), "munged").unwrap().is_empty());
        assert_eq!(named(&node(), "init").unwrap()[0].pid, 1);
    }

    #[test]
    fn long_names_match_through_argv0() {
        let found = named(&node(), "systemd-journald").unwrap();
        assert_eq!(found.iter().map(|p| p.pid).collect::<Vec<_>>(), vec![45]);
        // The truncated name alone matches the kernel's comm.
        assert_eq!(named(&node(), "systemd-journal").unwrap().len(), 2);
    }

    #[test]
    fn names_with_parentheses_and_spaces() {
        assert_eq!(
            parse_stat("50 (a (b) c) R 1"),
            Some(("a (b) c".to_string(), 'R'))
        );
        assert_eq!(named(&node(), "a (b) c").unwrap()[0].pid, 50);
        assert_eq!(parse_stat("no parens"), None);
        assert_eq!(parse_stat("1 )x( S"), None);
    }

    #[test]
    fn uids_are_effective() {
        assert_eq!(effective_uid("Uid:\t0\t101\t101\t101\n"), Some(101));
        assert_eq!(effective_uid("Name: x\n"), None);
    }

    #[test]
    fn no_proc_is_an_error() {
        let e = named(&MemoryTarget::new(), "sshd").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
