//! Listening sockets, from /proc/net/{tcp,tcp6,udp,udp6}.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nodecheck_core::target::Target;

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

/// `TCP_LISTEN` in the `st` column.
const TCP_LISTEN: u8 = 0x0a;
/// `TCP_CLOSE`: what an unconnected (bound, receiving) UDP socket shows.
const UDP_UNCONNECTED: u8 = 0x07;

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
        for line in text.lines().skip(1) {
            let Some(s) = parse_line(line) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{file}: cannot parse {line:?}"),
                ));
            };
            let listens = match protocol {
                Protocol::Tcp => s.state == TCP_LISTEN,
                Protocol::Udp => s.state == UDP_UNCONNECTED && s.remote_port == 0,
            };
            if listens && s.port == port && !out.contains(&s.addr) {
                out.push(s.addr);
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

/// One socket line: `sl local_address rem_address st ...`.
#[derive(Debug, PartialEq, Eq)]
struct Socket {
    addr: IpAddr,
    port: u16,
    remote_port: u16,
    state: u8,
}

fn parse_line(line: &str) -> Option<Socket> {
    let mut f = line.split_whitespace();
    f.next()?;
    let (addr, port) = parse_endpoint(f.next()?)?;
    let (_, remote_port) = parse_endpoint(f.next()?)?;
    let state = u8::from_str_radix(f.next()?, 16).ok()?;
    Some(Socket {
        addr,
        port,
        remote_port,
        state,
    })
}

/// `0100007F:0016` (IPv4) or 32 hex digits (IPv6), then the port. The
/// kernel prints the address as 32-bit words in host byte order.
fn parse_endpoint(s: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Option<Vec<u32>> = (0..addr.len() / 8)
        .map(|i| {
            addr.get(i * 8..i * 8 + 8)
                .and_then(|w| u32::from_str_radix(w, 16).ok())
        })
        .collect();
    let words = words?;
    let bytes = |w: u32| {
        if cfg!(target_endian = "little") {
            w.to_le_bytes()
        } else {
            w.to_be_bytes()
        }
    };
    let ip = match (addr.len(), words.as_slice()) {
        (8, [w]) => IpAddr::V4(Ipv4Addr::from(bytes(*w))),
        (32, [a, b, c, d]) => {
            let mut o = [0u8; 16];
            for (i, w) in [a, b, c, d].into_iter().enumerate() {
                o[i * 4..i * 4 + 4].copy_from_slice(&bytes(*w));
            }
            let v6 = Ipv6Addr::from(o);
            // `::ffff:a.b.c.d` listeners are IPv4 listeners to people.
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some((ip, port))
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
