//! Live kernel parameters, from /proc/sys: the live half of the `sysctl`
//! kind.

use std::io;

use nodecheck_core::target::Target;

use super::{read_text, with_path};

/// The /proc/sys file of a sysctl key, as sysctl(8) maps it: dots separate
/// the levels (`net.ipv4.ip_forward`), unless the key contains a `/`, in
/// which case slashes do and dots are part of names
/// (`net/ipv4/conf/eth0.100/rp_filter`, for a VLAN interface).
pub fn sysctl_path(key: &str) -> Result<String, String> {
    let parts: Vec<&str> = if key.contains('/') {
        key.trim_matches('/').split('/').collect()
    } else {
        key.split('.').collect()
    };
    if parts.is_empty() || !parts.iter().all(|p| super::is_component(p)) {
        return Err(format!("{key:?} is not a sysctl key"));
    }
    Ok(format!("/proc/sys/{}", parts.join("/")))
}

/// The live value of a sysctl key, with runs of whitespace made single
/// spaces (the kernel separates multi-value keys such as
/// `net.ipv4.ip_local_port_range` with tabs, sysctl.conf with spaces), or
/// `None` when the kernel has no such key.
///
/// The lead's wiring of `sysctl` on live targets: `value` compares this.
pub fn sysctl_value(target: &dyn Target, key: &str) -> io::Result<Option<String>> {
    let path = sysctl_path(key).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    match read_text(target, &path) {
        Ok(v) => Ok(Some(normalize_value(&v))),
        Err(e) if crate::eval::is_absent(&e) => Ok(None),
        Err(e) => Err(with_path(&path, &e)),
    }
}

/// Whitespace runs become one space, ends trimmed: how sysctl values
/// compare (`"32768\t60999\n"` equals `"32768 60999"`).
pub fn normalize_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use nodecheck_core::target::MemoryTarget;

    use super::*;

    #[test]
    fn keys_map_like_sysctl() {
        assert_eq!(
            sysctl_path("vm.swappiness").unwrap(),
            "/proc/sys/vm/swappiness"
        );
        assert_eq!(
            sysctl_path("net/ipv4/conf/eth0.100/rp_filter").unwrap(),
            "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"
        );
        for bad in ["", "vm..x", "net/../../etc/shadow", "a/./b"] {
            assert!(sysctl_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_are_read_and_normalised() {
        let t = MemoryTarget::new()
            .file("/proc/sys/vm/swappiness", 0o644, 0, 0, "10\n")
            .file(
                "/proc/sys/net/ipv4/ip_local_port_range",
                0o644,
                0,
                0,
                "32768\t60999\n",
            );
        assert_eq!(
            sysctl_value(&t, "vm.swappiness").unwrap().as_deref(),
            Some("10")
        );
        assert_eq!(
            sysctl_value(&t, "net.ipv4.ip_local_port_range")
                .unwrap()
                .as_deref(),
            Some("32768 60999")
        );
        assert_eq!(sysctl_value(&t, "vm.nope").unwrap(), None);
        let e = sysctl_value(&t, "..").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn unreadable_keys_are_errors() {
        let t = MemoryTarget::new()
            .file("/proc/sys/kernel/secret", 0o600, 0, 0, "1\n")
            .deny("/proc/sys/kernel/secret");
        let e = sysctl_value(&t, "kernel.secret").unwrap_err();
        assert!(
            e.to_string().starts_with("/proc/sys/kernel/secret: "),
            "{e}"
        );
    }
}
