//! Listening sockets, from /proc/net/{tcp,tcp6,udp,udp6}.

//!
//! The tables are parsed by procfs-core (procfs's parsing half) from the
//! bytes the Target read, never from the host's /proc directly.

use std::io;
use std::net::{IpAddr, SocketAddr};

use nodecheck_core::target::Target;
use procfs_core::net::{TcpNetEntries, TcpState, UdpNetEntries, UdpState};
use procfs_core::{ExplicitSystemInfo, FromBufReadSI};

use super::{read_text, with_path};

/// TCP or UDP (each over IPv4 and IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    fn files(self) -> [&'static str; 2] {
        match self {
            Protocol::Tcp => ["/proc/net/tcp", "/proc/net/tcp6"],
            Protocol::Udp => ["/proc/net/udp", "/proc/net/udp6"],
        }
    }
}

/// The local addresses with a socket listening on `port`: TCP sockets in
/// LISTEN, UDP sockets bound to the port and not connected to a peer. A
/// node without IPv6 has no `tcp6` file; that is not an error.
pub fn listening(target: &dyn Target, protocol: Protocol, port: u16) -> io::Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    let mut found_any = false;
    for file in protocol.files() {
        let text = match read_text(target, file) {
            Ok(t) => t,
            Err(e) if crate::eval::is_absent(&e) => continue,
            Err(e) => return Err(with_path(file, &e)),
        };
        found_any = true;
        let bad = |e: procfs_core::ProcError| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{file}: cannot parse: {e}"),
            )
        };
        let sockets: Vec<(SocketAddr, SocketAddr, bool)> = match protocol {
            Protocol::Tcp => TcpNetEntries::from_buf_read(text.as_bytes(), &SYSTEM)
                .map_err(bad)?
                .0
                .into_iter()
                .map(|s| {
                    (
                        s.local_address,
                        s.remote_address,
                        s.state == TcpState::Listen,
                    )
                })
                .collect(),
            Protocol::Udp => UdpNetEntries::from_buf_read(text.as_bytes(), &SYSTEM)
                .map_err(bad)?
                .0
                .into_iter()
                .map(|s| {
                    (
                        s.local_address,
                        s.remote_address,
                        s.state == UdpState::Close,
                    )
                })
                .collect(),
        };
        for (local, remote, state_listens) in sockets {
            // A UDP socket receives when bound and not connected to a peer.
            let listens = state_listens && (protocol == Protocol::Tcp || remote.port() == 0);
            let addr = shown(local.ip());
            if listens && local.port() == port && !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
    if !found_any {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: no such file", protocol.files()[0]),
        ));
    }
    Ok(out)
}

/// The node's byte order and page size as the socket tables need them
/// (procfs-core asks; only the byte order matters for these files).
const SYSTEM: ExplicitSystemInfo = ExplicitSystemInfo {
    boot_time_secs: 0,
    ticks_per_second: 100,
    page_size: 4096,
    is_little_endian: cfg!(target_endian = "little"),
};

/// `::ffff:a.b.c.d` listeners are IPv4 listeners to people.
fn shown(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use nodecheck_core::target::MemoryTarget;

    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1A0A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21 1 0000000000000000 100 0 0 10 0\n\
   2: 0100007F:0016 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 22 1 0000000000000000 100 0 0 10 0\n";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 30 1 0000000000000000 100 0 0 10 0\n\
   1: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31 1 0000000000000000 100 0 0 10 0\n";
    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  100: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 40 2 0000000000000000 0\n\
  101: 0100007F:0035 0101A8C0:0035 01 00000000:00000000 00:00000000 00000000     0        0 41 2 0000000000000000 0\n";

    fn node() -> MemoryTarget {
        MemoryTarget::new()
            .file("/proc/net/tcp", 0o444, 0, 0, TCP)
            .file("/proc/net/tcp6", 0o444, 0, 0, TCP6)
            .file("/proc/net/udp", 0o444, 0, 0, UDP)
    }

    #[test]
    fn tcp_listeners_over_both_families() {
        let t = node();
        let ssh = listening(&t, Protocol::Tcp, 22).unwrap();
        assert_eq!(
            ssh,
            vec!["0.0.0.0".parse::<IpAddr>().unwrap(), "::".parse().unwrap()]
        );
        let local = listening(&t, Protocol::Tcp, 6666).unwrap();
        assert_eq!(local, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
        // A v4-mapped v6 listener shows as IPv4.
        let mapped = listening(&t, Protocol::Tcp, 8080).unwrap();
        assert_eq!(mapped, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
        // An established connection from port 53999 listens on nothing.
        assert!(listening(&t, Protocol::Tcp, 53999).unwrap().is_empty());
    }

    #[test]
    fn udp_bound_but_not_connected() {
        let t = node();
        assert_eq!(listening(&t, Protocol::Udp, 68).unwrap().len(), 1);
        assert!(listening(&t, Protocol::Udp, 53).unwrap().is_empty());
    }

    #[test]
    fn garbage_is_an_error_naming_the_file() {
        let t = MemoryTarget::new().file("/proc/net/tcp", 0o444, 0, 0, "header\n 0: zz:zz\n");
        let e = listening(&t, Protocol::Tcp, 22).unwrap_err();
        assert!(
            e.to_string().starts_with("/proc/net/tcp: cannot parse"),
            "{e}"
        );
        let e = listening(&MemoryTarget::new(), Protocol::Tcp, 22).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
