//! Reading a booted node: /proc and /sys through the target, parsed here.
//!
//! Everything goes through [`Target::read`] and [`Target::read_dir`] (on
//! the live target its root is `/`), never through `std::fs` or a spawned
//! tool: a health check on a busy node should cost a few file reads, and
//! the parsers are tested on captured files in a
//! [`MemoryTarget`](nodecheck_core::target::MemoryTarget).
//!
//! Besides what the live kinds of this crate use, this module holds the
//! live half of `gpu` ([`gpu`]); `mount` and `sysctl` read their live
//! state in their own modules.

pub mod gpu;
pub mod procs;
pub mod sockets;

use std::io;

use nodecheck_core::target::Target;

/// The most nodecheck reads of one /proc or /sys file: far above any real
/// one (a /proc/self/mountinfo with thousands of mounts is well under
/// this), small enough that a hostile or broken file cannot eat memory.
pub const PROC_LIMIT: u64 = 16 << 20;

/// A /proc or /sys file as text (invalid UTF-8 replaced).
pub fn read_text(target: &dyn Target, path: &str) -> io::Result<String> {
    let bytes = target.read(path, PROC_LIMIT)?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// A one-value /sys attribute (`/sys/class/net/eth0/mtu`), trimmed.
pub fn read_attr(target: &dyn Target, path: &str) -> io::Result<String> {
    Ok(read_text(target, path)?.trim().to_string())
}

/// An io error with the path it happened on, for messages:
/// `/proc/meminfo: Permission denied (os error 13)`.
pub fn at(path: &str, e: &io::Error) -> String {
    format!("{path}: {}", crate::eval::io_text(e))
}

/// The same error with the file it happened on in front, keeping its kind.
pub fn with_path(path: &str, e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{path}: {}", crate::eval::io_text(e)))
}

/// Whether `name` can be one path component of /sys or /proc (an interface,
/// device or process name): not empty, no `/`, not `.` or `..`.
pub fn is_component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

/// Parses a kernel CPU list (`0-3,8,10-11`) into the CPUs it names.
pub fn parse_cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if b < a || b - a > 1 << 20 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse().ok()?),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11\n"),
            Some(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list(""), Some(vec![]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("a-b"), None);
        assert_eq!(parse_cpu_list("0-4294967295"), None);
    }

    #[test]
    fn components() {
        assert!(is_component("eth0"));
        assert!(is_component("mlx5_0"));
        for bad in ["", ".", "..", "a/b", "../../etc"] {
            assert!(!is_component(bad), "{bad}");
        }
    }
}
