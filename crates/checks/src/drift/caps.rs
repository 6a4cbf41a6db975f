//! `security.capability` (struct vfs_cap_data) decoded the way `getcap`
//! prints it: `cap_net_admin,cap_net_raw=ep`.

/// The xattr holding file capabilities.
pub const XATTR: &str = "security.capability";

/// Capability names by number (linux/capability.h).
const NAMES: &[&str] = &[
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

const REVISION_MASK: u32 = 0xFF00_0000;
const EFFECTIVE: u32 = 0x0000_0001;

/// Decodes a `security.capability` value; `Err` says what is wrong.
pub fn decode(v: &[u8]) -> Result<String, String> {
    let word = |i: usize| -> Option<u32> {
        v.get(i * 4..i * 4 + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let magic = word(0).ok_or("capability xattr shorter than its header")?;
    let (words, len) = match magic & REVISION_MASK {
        0x0100_0000 => (1, 12),
        0x0200_0000 => (2, 20),
        0x0300_0000 => (2, 24),
        r => return Err(format!("unknown capability revision {:#x}", r >> 24)),
    };
    if v.len() != len {
        return Err(format!(
            "capability xattr of revision {} is {} bytes, expected {len}",
            magic >> 24,
            v.len()
        ));
    }
    let mut permitted = 0u64;
    let mut inheritable = 0u64;
    for w in 0..words {
        permitted |= u64::from(word(1 + 2 * w).unwrap_or(0)) << (32 * w);
        inheritable |= u64::from(word(2 + 2 * w).unwrap_or(0)) << (32 * w);
    }
    let effective = magic & EFFECTIVE != 0;
    // Group capabilities by their flags, as getcap does.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for bit in 0..64 {
        let (p, i) = (permitted >> bit & 1 == 1, inheritable >> bit & 1 == 1);
        if !p && !i {
            continue;
        }
        let mut flags = String::new();
        if effective {
            flags.push('e');
        }
        if i {
            flags.push('i');
        }
        if p {
            flags.push('p');
        }
        let name = NAMES
            .get(bit)
            .map_or_else(|| format!("cap_{bit}"), |n| (*n).to_string());
        match groups.iter_mut().find(|(f, _)| *f == flags) {
            Some((_, names)) => names.push(name),
            None => groups.push((flags, vec![name])),
        }
    }
    let mut text = groups
        .iter()
        .map(|(f, n)| format!("{}={f}", n.join(",")))
        .collect::<Vec<_>>()
        .join(" ");
    if text.is_empty() {
        text = "=".into();
    }
    if magic & REVISION_MASK == 0x0300_0000 {
        let root = word(5).unwrap_or(0);
        if root != 0 {
            text.push_str(&format!(" [rootid={root}]"));
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(magic: u32, p: u64, i: u64) -> Vec<u8> {
        let mut v = magic.to_le_bytes().to_vec();
        for w in 0..2 {
            v.extend(((p >> (32 * w)) as u32).to_le_bytes());
            v.extend(((i >> (32 * w)) as u32).to_le_bytes());
        }
        v
    }

    #[test]
    fn getcap_forms() {
        // setcap cap_net_raw=ep (ping)
        assert_eq!(
            decode(&v2(0x0200_0001, 1 << 13, 0)).unwrap(),
            "cap_net_raw=ep"
        );
        assert_eq!(
            decode(&v2(0x0200_0000, (1 << 12) | (1 << 13), 0)).unwrap(),
            "cap_net_admin,cap_net_raw=p"
        );
        assert_eq!(
            decode(&v2(0x0200_0001, 1 << 38, 1 << 38)).unwrap(),
            "cap_perfmon=eip"
        );
    }

    #[test]
    fn damaged_values_are_errors() {
        assert!(decode(&[1, 2]).is_err());
        assert!(decode(&v2(0x0500_0000, 1, 0)).is_err());
        let mut short = v2(0x0200_0001, 1, 0);
        short.pop();
        assert!(decode(&short).is_err());
    }
}
