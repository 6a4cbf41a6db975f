//! Running a program in a target: what a check asks for
//! ([`ExecRequest`]) and what it gets back ([`ExecOutput`]).
//!
//! Where the program runs depends on the target: in a throw-away sandbox
//! over a root filesystem (see [`helper::dispatch`](crate::helper::dispatch)), in a
//! running container's namespaces, or directly on the live node. In every
//! case the program gets a clean environment, an empty working directory
//! holding the request's files, a time limit after which it and everything
//! it started are killed, and bounded output capture.

use std::fmt;
use std::time::Duration;

use super::Accounts;

/// What to run.
///
/// ```
/// use std::time::Duration;
/// use nodecheck_core::target::ExecRequest;
///
/// let req = ExecRequest::new(["sh", "-c", "cc hello.c && ./a.out"])
///     .file("hello.c", "int main(void) { return 0; }\n")
///     .env("LC_ALL", "C")
///     .timeout(Duration::from_secs(30));
/// assert_eq!(req.argv[0], "sh");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecRequest {
    /// The program and its arguments. A program without `/` is looked up
    /// in the `PATH` of the environment the program gets, inside the target.
    pub argv: Vec<String>,
    /// Variables set on top of the target's base environment (see
    /// [`base_env`]).
    pub env: Vec<(String, String)>,
    /// Files written into the (empty) working directory before the program
    /// starts: name (no `/`), content, mode.
    pub files: Vec<ExecFile>,
    /// Bytes fed to the program's standard input (empty: `/dev/null`).
    pub stdin: Vec<u8>,
    /// After this long the program and all it started are killed.
    pub timeout: Duration,
    /// Bytes kept per stream: the first half and the last half of the
    /// output; what lies between is counted, not kept.
    pub output_limit: usize,
    /// Memory, process and scratch-space limits of the run.
    pub limits: Limits,
}

/// What one run may use: memory and processes (through a cgroup where
/// nodecheck can make one; the report says which limits applied) and the
/// size of each tmpfs of a sandbox (/tmp, /dev/shm, the overlay's upper
/// layer, ...).
///
/// ```
/// use nodecheck_core::target::Limits;
///
/// let l = Limits::default().with("memory", "512MiB").unwrap();
/// assert_eq!(l.memory, 512 << 20);
/// assert!(Limits::default().with("memory", "lots").is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Bytes of memory (tmpfs pages written by the program included).
    pub memory: u64,
    /// Processes (and threads) at once.
    pub processes: u64,
    /// Bytes of each tmpfs.
    pub tmpfs: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory: 4 << 30,
            processes: 1024,
            tmpfs: 1 << 30,
        }
    }
}

impl Limits {
    /// The names [`Limits::with`] takes.
    pub const NAMES: [&'static str; 3] = ["memory", "processes", "tmpfs"];

    /// These limits with `name` set from its text (`"2GiB"`, `"512M"`,
    /// `"4096"`), or why the text is wrong.
    pub fn with(mut self, name: &str, value: &str) -> Result<Limits, String> {
        let slot = match name {
            "memory" => &mut self.memory,
            "processes" => &mut self.processes,
            "tmpfs" => &mut self.tmpfs,
            _ => {
                return Err(format!(
                    "unknown limit {name:?} (known: {})",
                    Self::NAMES.join(", ")
                ));
            }
        };
        let n = if name == "processes" {
            value.trim().parse::<u64>().ok()
        } else {
            parse_bytes(value)
        };
        match n {
            Some(n) if n > 0 => {
                *slot = n;
                Ok(self)
            }
            _ => Err(format!(
                "limit {name} = {value:?}: expected {}",
                if name == "processes" {
                    "a positive number"
                } else {
                    "a size such as \"512MiB\" or \"2G\""
                }
            )),
        }
    }
}

/// `"2GiB"`, `"2G"`, `"512M"`, `"64KiB"`, `"4096"` (bytes; binary units).
fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        "T" | "TiB" => 40,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

/// A size as the limits read it back: `4GiB`, `512MiB`, `1000B`.
pub fn format_bytes(n: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    format!("{n}B")
}

/// A file handed to the program in its working directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecFile {
    pub name: String,
    pub content: Vec<u8>,
    pub mode: u32,
}

/// How long a program may run when the profile does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Bytes kept per output stream by default (64 KiB head + 64 KiB tail).
pub const DEFAULT_OUTPUT_LIMIT: usize = 128 << 10;

impl ExecRequest {
    /// A request for `argv` with the default timeout and output limit.
    pub fn new<I, S>(argv: I) -> ExecRequest
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExecRequest {
            argv: argv.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            files: Vec::new(),
            stdin: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            limits: Limits::default(),
        }
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> ExecRequest {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Adds a file (mode 0644) to the working directory.
    pub fn file(mut self, name: impl Into<String>, content: impl Into<Vec<u8>>) -> ExecRequest {
        self.files.push(ExecFile {
            name: name.into(),
            content: content.into(),
            mode: 0o644,
        });
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> ExecRequest {
        self.timeout = timeout;
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> ExecRequest {
        self.stdin = bytes.into();
        self
    }

    pub fn output_limit(mut self, bytes: usize) -> ExecRequest {
        self.output_limit = bytes;
        self
    }

    /// Rejects what no target could honour: an empty argv, a file name with
    /// a `/` (files stay in the working directory), NUL bytes.
    pub fn validate(&self) -> Result<(), String> {
        if self.argv.is_empty() || self.argv[0].is_empty() {
            return Err("nothing to run: the command is empty".into());
        }
        if let Some(a) = self.argv.iter().find(|a| a.contains('\0')) {
            return Err(format!("argument {a:?} contains a NUL byte"));
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                return Err(format!("invalid environment variable {k:?}"));
            }
        }
        for f in &self.files {
            if f.name.is_empty() || f.name.contains(['/', '\0']) || f.name == "." || f.name == ".."
            {
                return Err(format!("invalid file name {:?}", f.name));
            }
        }
        Ok(())
    }
}

/// How a program ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl Exit {
    /// From a raw `waitpid` status.
    pub fn from_wait_status(status: i32) -> Exit {
        if libc::WIFSIGNALED(status) {
            Exit::Signal(libc::WTERMSIG(status))
        } else {
            Exit::Code(libc::WEXITSTATUS(status))
        }
    }

    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }

    /// The exit status, or `None` for a signal.
    pub fn code(self) -> Option<i32> {
        match self {
            Exit::Code(c) => Some(c),
            Exit::Signal(_) => None,
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Exit::Code(c) => write!(f, "exit status {c}"),
            Exit::Signal(s) => match signal_name(s) {
                Some(name) => write!(f, "killed by signal {s} ({name})"),
                None => write!(f, "killed by signal {s}"),
            },
        }
    }
}

fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return None,
    })
}

/// One output stream, bounded: its first and last bytes, and how many in
/// between were dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Captured {
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
    /// Bytes neither in `head` nor in `tail`.
    pub dropped: u64,
}

impl Captured {
    /// Keeps up to `limit` bytes in all: `limit / 2` of the start, the rest
    /// of the end.
    pub fn push(&mut self, mut bytes: &[u8], limit: usize) {
        let head_cap = limit / 2;
        let tail_cap = limit - head_cap;
        if self.head.len() < head_cap {
            let n = bytes.len().min(head_cap - self.head.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        if bytes.is_empty() {
            return;
        }
        if bytes.len() >= tail_cap {
            self.dropped += (self.tail.len() + bytes.len() - tail_cap) as u64;
            self.tail.clear();
            self.tail
                .extend_from_slice(&bytes[bytes.len() - tail_cap..]);
            return;
        }
        let over = (self.tail.len() + bytes.len()).saturating_sub(tail_cap);
        if over > 0 {
            self.tail.drain(..over);
            self.dropped += over as u64;
        }
        self.tail.extend_from_slice(bytes);
    }

    /// Every byte the program wrote, kept or not.
    pub fn total(&self) -> u64 {
        (self.head.len() + self.tail.len()) as u64 + self.dropped
    }

    /// The kept bytes as text (invalid UTF-8 replaced), with a line saying
    /// how much was dropped where something was.
    pub fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.head).into_owned();
        if self.dropped > 0 {
            if !s.ends_with('\n') {
                s.push('\n');
            }
            s.push_str(&format!(
                "[nodecheck: {} bytes of output dropped here]\n",
                self.dropped
            ));
        }
        s.push_str(&String::from_utf8_lossy(&self.tail));
        s
    }
}

/// What a run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOutput {
    /// How the program ended; after a timeout, the kill.
    pub exit: Exit,
    pub stdout: Captured,
    pub stderr: Captured,
    /// The program ran past the request's timeout and was killed (with
    /// everything it started).
    pub timed_out: bool,
    /// Wall time from start to the end of the program, setup included.
    pub duration: Duration,
    /// How the program was isolated (`overlay`, `read-only bind`,
    /// `container namespaces`, `live`) and which limits applied
    /// (`overlay; limits: cgroup v1 memory 4GiB, 1024 processes, tmpfs
    /// 1GiB each`), for reports and debugging.
    pub isolation: String,
}

impl ExecOutput {
    /// `exit status 1`, or `timed out after 60s` for a timeout.
    pub fn describe_exit(&self, timeout: Duration) -> String {
        if self.timed_out {
            format!("timed out after {}", format_duration(timeout))
        } else {
            self.exit.to_string()
        }
    }
}

/// Kept here for the imports of `target::format_duration`; the one
/// formatter lives beside the parser.
pub use crate::matcher::format_duration;

/// The environment a program starts with before the request's own
/// variables: a fixed, minimal set so that the same profile behaves the
/// same from a CI job, a cron job or a terminal — nothing of nodecheck's
/// own environment leaks in. `HOME` and `SHELL` come from the target's
/// /etc/passwd entry for `uid`.
pub fn base_env(accounts: &Accounts, uid: u32) -> Vec<(String, String)> {
    let user = accounts.user_by_uid(uid);
    let name = user.map_or_else(|| uid.to_string(), |u| u.name.clone());
    let home = user
        .map(|u| u.home.clone())
        .filter(|h| h.starts_with('/'))
        .unwrap_or_else(|| if uid == 0 { "/root".into() } else { "/".into() });
    vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOME".into(), home),
        ("USER".into(), name.clone()),
        ("LOGNAME".into(), name),
        ("SHELL".into(), "/bin/sh".into()),
        ("LANG".into(), "C".into()),
        ("TERM".into(), "dumb".into()),
    ]
}

/// `base` with `extra` applied in order (a later value wins).
pub fn merge_env(
    mut base: Vec<(String, String)>,
    extra: &[(String, String)],
) -> Vec<(String, String)> {
    for (k, v) in extra {
        match base.iter_mut().find(|(bk, _)| bk == k) {
            Some(slot) => slot.1 = v.clone(),
            None => base.push((k.clone(), v.clone())),
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_head_and_tail_and_counts_the_rest() {
        let mut c = Captured::default();
        c.push(b"0123", 8);
        assert_eq!(
            (c.head.as_slice(), c.tail.as_slice(), c.dropped),
            (&b"0123"[..], &b""[..], 0)
        );
        c.push(b"456789", 8);
        assert_eq!(c.tail, b"6789");
        assert_eq!(c.dropped, 2);
        c.push(b"ab", 8);
        assert_eq!(c.tail, b"89ab");
        assert_eq!(c.dropped, 4);
        assert_eq!(c.total(), 12);
        assert_eq!(
            c.text(),
            "0123\n[nodecheck: 4 bytes of output dropped here]\n89ab"
        );
        // One huge chunk.
        let mut c = Captured::default();
        c.push(&[b'x'; 1000], 10);
        assert_eq!((c.head.len(), c.tail.len(), c.dropped), (5, 5, 990));
    }

    #[test]
    fn small_output_is_whole() {
        let mut c = Captured::default();
        c.push(b"hello\n", 100);
        c.push(b"world\n", 100);
        assert_eq!(c.text(), "hello\nworld\n");
    }

    #[test]
    fn exits_read_well() {
        assert_eq!(Exit::Code(2).to_string(), "exit status 2");
        assert_eq!(Exit::Signal(9).to_string(), "killed by signal 9 (SIGKILL)");
        assert!(Exit::Code(0).success());
    }

    #[test]
    fn requests_are_validated() {
        assert!(ExecRequest::new(Vec::<String>::new()).validate().is_err());
        assert!(
            ExecRequest::new(["true"])
                .file("../x", "")
                .validate()
                .is_err()
        );
        assert!(
            ExecRequest::new(["true"])
                .env("A=B", "")
                .validate()
                .is_err()
        );
        assert!(
            ExecRequest::new(["true"])
                .file("a.c", "")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn limits_parse_and_read_back() {
        let l = Limits::default()
            .with("tmpfs", "64MiB")
            .unwrap()
            .with("processes", "50")
            .unwrap();
        assert_eq!((l.tmpfs, l.processes), (64 << 20, 50));
        assert_eq!(format_bytes(l.tmpfs), "64MiB");
        assert_eq!(format_bytes(Limits::default().memory), "4GiB");
        assert_eq!(format_bytes(1000), "1000B");
        assert!(Limits::default().with("processes", "0").is_err());
        assert!(Limits::default().with("memory", "64m").is_err());
        let e = Limits::default().with("cpu", "1").unwrap_err();
        assert!(e.contains("unknown limit \"cpu\""), "{e}");
    }

    #[test]
    fn env_merges_in_order() {
        let base = vec![("PATH".to_string(), "/bin".to_string())];
        let env = merge_env(
            base,
            &[("PATH".into(), "/x".into()), ("A".into(), "1".into())],
        );
        assert_eq!(
            env,
            vec![("PATH".into(), "/x".into()), ("A".into(), "1".into())]
        );
    }
}
