//! A running container, reached through one of its processes.
//!
//! Files are read through `/proc/PID/root`, resolved inside that root like
//! any image; programs run by joining the container's namespaces from the
//! sandbox helper (with a private overlay over its root, so they never
//! write into it). Nothing needs a shell inside the container for file
//! checks, and the same code serves every engine: the engine's command
//! line is used only to find the pid.

use std::io;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::sandbox::{self, Mode};
use super::{
    Accounts, DirEntry, ExecOutput, ExecRequest, FileAt, Metadata, Need, OpenError, RootFs, Target,
    TargetKind, Visited, WalkEntry, WalkOptions,
};

/// A container target: `pid:PID`, `podman:NAME`, `docker:NAME` or
/// `nspawn:MACHINE`.
///
/// ```no_run
/// use nodecheck_core::target::{Container, Target, READ_LIMIT};
/// let c = Container::open("podman:compute-test")?;
/// let release = c.read("/etc/os-release", READ_LIMIT)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Container {
    fs: RootFs,
    pid: i32,
    /// With the pid, names the process for good (pids are reused).
    start_time: u64,
    /// The spec as given, for reports.
    spec: String,
}

impl Container {
    /// Whether `spec` names a container (`ENGINE:NAME` or `pid:PID`).
    pub fn is_spec(spec: &str) -> bool {
        ["pid:", "podman:", "docker:", "nspawn:"]
            .iter()
            .any(|p| spec.starts_with(p))
    }

    /// Finds the container's pid (asking the engine where needed) and
    /// opens its root.
    pub fn open(spec: &str) -> Result<Container, OpenError> {
        let err = |msg: String| OpenError::Io {
            path: PathBuf::from(spec),
            error: io::Error::other(msg),
        };
        let (engine, name) = spec
            .split_once(':')
            .filter(|(_, n)| !n.is_empty())
            .ok_or_else(|| err("expected ENGINE:NAME or pid:PID".into()))?;
        let pid = match engine {
            "pid" => name
                .parse::<i32>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| err(format!("{name:?} is not a process id")))?,
            "podman" | "docker" => {
                engine_pid(engine, &["inspect", "--format", "{{.State.Pid}}", name]).map_err(err)?
            }
            "nspawn" => engine_pid(
                "machinectl",
                &["show", "--property=Leader", "--value", name],
            )
            .map_err(err)?,
            other => {
                return Err(err(format!(
                    "unknown container engine {other:?}; expected pid, podman, docker or nspawn"
                )));
            }
        };
        Container::from_pid(pid, spec).map_err(|e| match e {
            OpenError::NotFound { .. } => {
                err(format!("no process {pid} (is the container running?)"))
            }
            other => other,
        })
    }

    /// The container whose process `pid` is given; `spec` names it in
    /// reports.
    pub fn from_pid(pid: i32, spec: &str) -> Result<Container, OpenError> {
        let start_time = sandbox::start_time(pid).ok_or_else(|| OpenError::NotFound {
            path: PathBuf::from(format!("/proc/{pid}")),
        })?;
        let fs = RootFs::process_root(pid)?;
        Ok(Container {
            fs,
            pid,
            start_time,
            spec: spec.to_string(),
        })
    }

    /// The process the container is reached through.
    pub fn pid(&self) -> i32 {
        self.pid
    }
}

/// How long an engine's CLI may take to say where a container is
/// (`podman inspect` on a busy host takes a second or two); a hung daemon
/// or CLI must not hang nodecheck. `NODECHECK_ENGINE_TIMEOUT` (`5s`,
/// `500ms`) changes it.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(20);

/// The most of an engine CLI's output kept per stream.
const ENGINE_KEEP: usize = 64 << 10;

fn engine_timeout() -> Duration {
    std::env::var("NODECHECK_ENGINE_TIMEOUT")
        .ok()
        .and_then(|v| crate::matcher::parse_duration(&v))
        .filter(|d| !d.is_zero())
        .unwrap_or(ENGINE_TIMEOUT)
}

/// Runs an engine's command line and reads a pid from its output.
fn engine_pid(program: &str, args: &[&str]) -> Result<i32, String> {
    let timeout = engine_timeout();
    let out = crate::helper::run_bounded(
        Command::new(program).args(args),
        crate::helper::Bounds {
            timeout,
            keep: ENGINE_KEEP,
        },
    )
    .map_err(|e| format!("cannot run {program}: {e}"))?;
    let shown = || format!("{program} {}", args.join(" "));
    if out.timed_out {
        return Err(format!(
            "{} did not answer within {} and was killed (is the engine hung?)",
            shown(),
            crate::matcher::format_duration(timeout)
        ));
    }
    if out.status != Some(0) {
        let why = out.stderr.trim();
        let status = match (out.status, out.signal) {
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(s)) => format!("signal {s}"),
            (None, None) => "no exit status".to_string(),
        };
        return Err(format!(
            "{} failed ({status}){}",
            shown(),
            if why.is_empty() {
                String::new()
            } else {
                format!(": {}", crate::text::clip(why, crate::text::QUOTE_MAX))
            }
        ));
    }
    let stdout = out.stdout.trim();
    match stdout.parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        Ok(_) => Err("the container is not running".into()),
        Err(_) => Err(format!(
            "{} printed {:?}, not a pid",
            shown(),
            crate::text::clip(stdout, crate::text::QUOTE_MAX)
        )),
    }
}

impl Target for Container {
    fn kind(&self) -> TargetKind {
        TargetKind::Container
    }

    fn describe(&self) -> String {
        if self.spec.starts_with("pid:") {
            format!("container:{}", self.spec)
        } else {
            format!("container:{} (pid {})", self.spec, self.pid)
        }
    }

    fn has(&self, need: Need) -> bool {
        match need {
            // A container shares the host's kernel: its /proc and /sys
            // would describe the host, not the image.
            Need::Live => false,
            // Joining another process's namespaces takes root (or owning
            // them, for a rootless container of this user).
            Need::Exec => {
                let me = nix::unistd::geteuid();
                me.is_root()
                    || std::fs::metadata(format!("/proc/{}", self.pid))
                        .is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == me.as_raw())
            }
            Need::Root => nix::unistd::geteuid().is_root(),
            Need::Image => false,
        }
    }

    fn metadata(&self, path: &str, follow: bool) -> io::Result<Metadata> {
        self.fs.metadata(path, follow)
    }

    fn read_link(&self, path: &str) -> io::Result<String> {
        self.fs.read_link(path)
    }

    fn canonicalize(&self, path: &str) -> io::Result<String> {
        self.fs.canonicalize(path)
    }

    fn read(&self, path: &str, limit: u64) -> io::Result<Vec<u8>> {
        self.fs.read(path, limit)
    }

    fn read_dir(&self, path: &str) -> io::Result<Vec<DirEntry>> {
        self.fs.read_dir(path)
    }

    fn walk(
        &self,
        path: &str,
        options: &WalkOptions,
        visit: &mut dyn FnMut(io::Result<WalkEntry>) -> bool,
    ) -> io::Result<()> {
        self.fs.walk(path, options, visit)
    }

    // Content comes through the root's door, which for a container
    // reopens the very inode it checked: a process inside racing a swap
    // cannot make nodecheck open a device node.
    fn open(&self, path: &str) -> io::Result<Box<dyn FileAt>> {
        self.fs.open(path)
    }

    fn walk_parallel(
        &self,
        path: &str,
        options: &WalkOptions,
        visit: &(dyn Fn(Visited<'_, '_>) -> bool + Sync),
    ) -> io::Result<()> {
        self.fs.walk_parallel(path, options, visit)
    }

    fn accounts(&self) -> &Accounts {
        self.fs.accounts()
    }

    /// As root in the container's namespaces, with the container's own
    /// environment (that of its process) under the request's variables.
    fn exec(&self, req: &ExecRequest) -> io::Result<ExecOutput> {
        let mut env = super::base_env(self.accounts(), 0);
        // What the engine gave the container (PATH above all) wins over
        // the defaults, as with `podman exec`.
        if let Ok(bytes) = std::fs::read(format!("/proc/{}/environ", self.pid)) {
            let theirs: Vec<(String, String)> = bytes
                .split(|b| *b == 0)
                .filter_map(|kv| {
                    let kv = String::from_utf8_lossy(kv);
                    let (k, v) = kv.split_once('=')?;
                    (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
                })
                .filter(|(k, _)| k != "HOSTNAME")
                .collect();
            env = super::merge_env(env, &theirs);
        }
        let env = super::merge_env(env, &req.env);
        sandbox::run(
            Mode::Container {
                pid: self.pid,
                start_time: self.start_time,
            },
            req,
            env,
        )
    }
}
