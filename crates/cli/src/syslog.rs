//! Syslog for `nodecheck nhc`: slurmd throws a HealthCheckProgram's
//! output away, so failures and drains go to the node's log as well.
//!
//! RFC 3164 messages (`<PRI>Mmm dd hh:mm:ss nodecheck[PID]: text`, what
//! glibc's syslog(3) sends) over a local datagram socket, `/dev/log` by
//! default; journald and rsyslog both read it. Facility `daemon`.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// Severity `err`.
pub const ERR: u8 = 3;
/// Severity `notice`.
pub const NOTICE: u8 = 5;
const DAEMON: u8 = 3;

/// Where messages go when `--syslog` is not given.
pub const DEFAULT: &str = "/dev/log";

/// A syslog connection. Sending never fails the health check; what could
/// not be delivered is counted and said once, at the end ([`Syslog::warning`]).
pub struct Syslog {
    path: PathBuf,
    /// The socket was named with `--syslog`: not reaching it is worth a
    /// word even when there was nothing to log.
    explicit: bool,
    socket: Option<UnixDatagram>,
    /// Why the socket could not be reached (at connect or a later send).
    error: Option<String>,
    /// Messages that could not be delivered.
    lost: usize,
}

impl Syslog {
    /// Connects to `path` (an explicit `--syslog`; `none` means no syslog),
    /// or to [`DEFAULT`] when `None`.
    pub fn open(path: Option<&Path>) -> Syslog {
        match path {
            Some(p) => Syslog::connect(p.to_path_buf(), true),
            None => Syslog::connect(PathBuf::from(DEFAULT), false),
        }
    }

    fn connect(path: PathBuf, explicit: bool) -> Syslog {
        let mut log = Syslog {
            explicit,
            socket: None,
            error: None,
            lost: 0,
            path,
        };
        if log.path.as_os_str() == "none" {
            return log;
        }
        // A syslog daemon that stopped reading must not hold the health
        // check past its budget: a send waits half a second at most.
        let socket = UnixDatagram::unbound().and_then(|s| {
            s.connect(&log.path)?;
            s.set_write_timeout(Some(std::time::Duration::from_millis(500)))?;
            Ok(s)
        });
        match socket {
            Ok(s) => log.socket = Some(s),
            Err(e) => log.error = Some(e.to_string()),
        }
        log
    }

    fn off(&self) -> bool {
        self.path.as_os_str() == "none"
    }

    /// Sends one message at `severity` (control characters replaced, at
    /// most 1 KiB as RFC 3164 advises).
    pub fn send(&mut self, severity: u8, text: &str) {
        if self.off() {
            return;
        }
        let Some(s) = &self.socket else {
            self.lost += 1;
            return;
        };
        let msg = message(severity, text, chrono::Local::now(), std::process::id());
        if let Err(e) = s.send(msg.as_bytes()) {
            self.lost += 1;
            self.error.get_or_insert_with(|| e.to_string());
        }
    }

    /// The one line to print on stderr at the end, if any: an explicit
    /// socket that could not be reached, or messages (failures, drains)
    /// that were not logged. The default socket missing on a run with
    /// nothing to log is no news (a container, a node without syslog).
    pub fn warning(&self) -> Option<String> {
        let e = self.error.as_deref()?;
        let path = self.path.display();
        let lost = match self.lost {
            0 => String::new(),
            1 => "; 1 message not logged".to_string(),
            n => format!("; {n} messages not logged"),
        };
        if self.explicit {
            Some(format!("--syslog {path}: cannot log there: {e}{lost}"))
        } else if self.lost > 0 {
            Some(format!(
                "cannot log to syslog ({path}: {e}){lost} (--syslog SOCKET names another socket, --syslog none turns this off)"
            ))
        } else {
            None
        }
    }
}

fn message<Tz: chrono::TimeZone>(
    severity: u8,
    text: &str,
    now: chrono::DateTime<Tz>,
    pid: u32,
) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut m = format!(
        "<{}>{} nodecheck[{pid}]: {}",
        DAEMON * 8 + severity,
        now.format("%b %e %H:%M:%S"),
        clean.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    if m.len() > 1024 {
        let mut end = 1024;
        while !m.is_char_boundary(end) {
            end -= 1;
        }
        m.truncate(end);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3164_line() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-07-01T09:05:03Z").unwrap();
        let m = message(ERR, "ERROR:  nodecheck:  x\x1b[31m\ny", t, 42);
        assert_eq!(
            m,
            "<27>Jul  1 09:05:03 nodecheck[42]: ERROR: nodecheck: x [31m y"
        );
        assert!(message(NOTICE, &"é".repeat(2000), t, 1).len() <= 1024);
    }

    #[test]
    fn messages_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let mut log = Syslog::open(Some(&path));
        log.send(NOTICE, "nodecheck:  slurm:  drained node n1: nodecheck: x");
        let mut buf = [0u8; 2048];
        let n = server.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]);
        assert!(got.starts_with("<29>"), "{got}");
        assert!(got.ends_with("drained node n1: nodecheck: x"), "{got}");
        assert_eq!(log.warning(), None);
        assert_eq!(Syslog::open(Some(Path::new("none"))).warning(), None);
    }

    #[test]
    fn the_default_socket_missing_is_said_only_when_something_was_lost() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Syslog::connect(dir.path().join("dev-log"), false);
        assert_eq!(log.warning(), None, "a passing run says nothing");
        log.send(ERR, "ERROR:  nodecheck:  Health check failed:  x");
        let w = log.warning().unwrap();
        assert!(w.starts_with("cannot log to syslog ("), "{w}");
        assert!(w.contains("; 1 message not logged"), "{w}");
    }

    #[test]
    fn an_explicit_socket_out_of_reach_is_said_even_with_nothing_to_log() {
        let dir = tempfile::tempdir().unwrap();
        let nope = dir.path().join("nope");
        let mut log = Syslog::open(Some(&nope));
        let w = log.warning().unwrap();
        assert!(
            w.starts_with(&format!("--syslog {}: cannot log there: ", nope.display())),
            "{w}"
        );
        assert!(!w.contains("not logged"), "{w}");
        log.send(ERR, "a");
        log.send(ERR, "b");
        assert!(log.warning().unwrap().ends_with("; 2 messages not logged"));
    }

    #[test]
    fn a_socket_that_goes_away_counts_what_was_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let mut log = Syslog::open(Some(&path));
        drop(server);
        log.send(ERR, "a");
        let w = log.warning().unwrap();
        assert!(
            w.contains("cannot log there") && w.ends_with("; 1 message not logged"),
            "{w}"
        );
    }
}
