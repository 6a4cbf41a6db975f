//! Syslog for `nodecheck nhc`: slurmd throws a HealthCheckProgram's
//! output away, so failures and drains go to the node's log as well.
//!
//! RFC 3164 messages (`<PRI>Mmm dd hh:mm:ss nodecheck[PID]: text`, what
//! glibc's syslog(3) sends) over a local datagram socket, `/dev/log` by
//! default; journald and rsyslog both read it. Facility `daemon`.

use std::os::unix::net::UnixDatagram;
use std::path::Path;

/// Severity `err`.
pub const ERR: u8 = 3;
/// Severity `notice`.
pub const NOTICE: u8 = 5;
const DAEMON: u8 = 3;

/// A syslog connection; sending never fails the health check, the first
/// error is kept for the output.
pub struct Syslog {
    socket: Option<UnixDatagram>,
    error: Option<String>,
}

impl Syslog {
    /// Connects to `path`; `none` means no syslog.
    pub fn open(path: &Path) -> Syslog {
        if path.as_os_str() == "none" {
            return Syslog {
                socket: None,
                error: None,
            };
        }
        match UnixDatagram::unbound().and_then(|s| s.connect(path).map(|()| s)) {
            Ok(s) => Syslog {
                socket: Some(s),
                error: None,
            },
            Err(e) => Syslog {
                socket: None,
                error: Some(format!("cannot log to {}: {e}", path.display())),
            },
        }
    }

    /// Sends one message at `severity` (control characters replaced, at
    /// most 1 KiB as RFC 3164 advises).
    pub fn send(&mut self, severity: u8, text: &str) {
        let Some(s) = &self.socket else { return };
        let msg = message(severity, text, chrono::Local::now(), std::process::id());
        if let Err(e) = s.send(msg.as_bytes())
            && self.error.is_none()
        {
            self.error = Some(format!("cannot log: {e}"));
        }
    }

    /// The first error, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
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
        let mut log = Syslog::open(&path);
        log.send(NOTICE, "nodecheck:  slurm:  drained node n1: nodecheck: x");
        let mut buf = [0u8; 2048];
        let n = server.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]);
        assert!(got.starts_with("<29>"), "{got}");
        assert!(got.ends_with("drained node n1: nodecheck: x"), "{got}");
        let missing = Syslog::open(&dir.path().join("nope"));
        assert!(missing.error().unwrap().contains("cannot log to"));
        assert!(Syslog::open(Path::new("none")).error().is_none());
    }
}
