//! What a target is: its distribution (os-release), its architecture and
//! its host name, read through the [`Target`] once per run. Controls and
//! checks with `only_if` are judged against it.

use std::sync::{Arc, OnceLock};

use crate::target::{Target, TargetKind};

/// The facts `only_if` conditions look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// os-release `ID` (`debian`, `rocky`), lower case.
    pub id: Option<String>,
    /// os-release `ID_LIKE` words (`rhel centos fedora`).
    pub id_like: Vec<String>,
    /// os-release `VERSION_ID` (`12`, `9.3`, `22.04`).
    pub version_id: Option<String>,
    /// Why there is no os-release, when there is none.
    pub os_error: Option<String>,
    /// `uname -m` style: `x86_64`, `aarch64`, `ppc64le`; or why it is
    /// unknown.
    pub arch: Result<String, String>,
    /// The node's name (a live node's kernel host name, an image's
    /// /etc/hostname); or why it is unknown.
    pub hostname: Result<String, String>,
}

/// The os-release files, in the order systemd reads them.
pub const OS_RELEASE: &[&str] = &["/etc/os-release", "/usr/lib/os-release"];

/// Programs whose ELF header says the image's architecture: every Linux
/// image has a shell.
const ARCH_PROBES: &[&str] = &["/bin/sh", "/usr/bin/sh", "/bin/busybox", "/usr/bin/env"];

#[derive(Default)]
struct Cached(OnceLock<Arc<Platform>>);

impl Platform {
    /// The platform of `target`, read once per target (when it keeps a
    /// [`Target::memo`]), else afresh.
    pub fn of(target: &dyn Target) -> Arc<Platform> {
        match target.memo() {
            Some(memo) => memo
                .get::<Cached>()
                .0
                .get_or_init(|| Arc::new(Platform::read(target)))
                .clone(),
            None => Arc::new(Platform::read(target)),
        }
    }

    /// Reads the facts from the target.
    pub fn read(target: &dyn Target) -> Platform {
        let mut p = Platform {
            arch: arch(target),
            hostname: hostname(target),
            id: None,
            id_like: Vec::new(),
            version_id: None,
            os_error: None,
        };
        let mut missing = Vec::new();
        for path in OS_RELEASE {
            match target.read(path, 1 << 20) {
                Ok(bytes) => {
                    for (k, v) in parse_os_release(&String::from_utf8_lossy(&bytes)) {
                        match k.as_str() {
                            "ID" => p.id = Some(v.to_ascii_lowercase()),
                            "ID_LIKE" => {
                                p.id_like =
                                    v.split_whitespace().map(str::to_ascii_lowercase).collect()
                            }
                            "VERSION_ID" => p.version_id = Some(v),
                            _ => {}
                        }
                    }
                    return p;
                }
                Err(e) => missing.push(format!("{path}: {e}")),
            }
        }
        p.os_error = Some(format!(
            "the target has no os-release ({})",
            missing.join("; ")
        ));
        p
    }

    /// `rocky 9.3 (like rhel centos fedora)`, for skip reasons.
    pub fn describe_os(&self) -> String {
        let Some(id) = &self.id else {
            return self
                .os_error
                .clone()
                .unwrap_or_else(|| "an os-release without ID".to_string());
        };
        let mut s = id.clone();
        if let Some(v) = &self.version_id {
            s.push(' ');
            s.push_str(v);
        }
        if !self.id_like.is_empty() {
            s.push_str(&format!(" (like {})", self.id_like.join(" ")));
        }
        s
    }
}

/// `KEY=value` lines of os-release, values unquoted (`"..."`, `'...'`,
/// backslash escapes inside double quotes).
pub fn parse_os_release(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = if let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            let mut s = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        s.push(n);
                    }
                } else {
                    s.push(c);
                }
            }
            s
        } else if let Some(inner) = v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            inner.to_string()
        } else {
            v.to_string()
        };
        out.push((k.trim().to_string(), v));
    }
    out
}

/// The architecture from the ELF header of the target's shell.
fn arch(target: &dyn Target) -> Result<String, String> {
    let mut tried = Vec::new();
    for path in ARCH_PROBES {
        let head = target.open(path).and_then(|f| f.read_exact_at(0, 20));
        match head {
            Ok(h) => match elf_arch(&h) {
                Some(a) => return Ok(a),
                None => tried.push(format!("{path} is not an ELF program")),
            },
            Err(e) => tried.push(format!("{path}: {e}")),
        }
    }
    Err(format!(
        "the target's architecture is unknown ({})",
        tried.join("; ")
    ))
}

/// `uname -m` of an ELF header's machine, class and byte order.
pub fn elf_arch(h: &[u8]) -> Option<String> {
    if h.len() < 20 || &h[..4] != b"\x7fELF" {
        return None;
    }
    let is64 = h[4] == 2;
    let le = h[5] == 1;
    let machine = if le {
        u16::from_le_bytes([h[18], h[19]])
    } else {
        u16::from_be_bytes([h[18], h[19]])
    };
    Some(
        match (machine, is64, le) {
            (3, _, _) => "i686",
            (62, _, _) => "x86_64",
            (40, _, _) => "arm",
            (183, _, _) => "aarch64",
            (20, _, _) => "ppc",
            (21, true, true) => "ppc64le",
            (21, _, _) => "ppc64",
            (22, true, _) => "s390x",
            (22, false, _) => "s390",
            (243, true, _) => "riscv64",
            (243, false, _) => "riscv32",
            (258, _, _) => "loongarch64",
            (m, _, _) => return Some(format!("elf-machine-{m}")),
        }
        .to_string(),
    )
}

/// Architecture names `only_if.arch` accepts, as `uname -m` writes them,
/// and the distributions' other names for them.
pub const ARCHES: &[&str] = &[
    "x86_64",
    "aarch64",
    "ppc64le",
    "ppc64",
    "s390x",
    "riscv64",
    "i686",
    "arm",
    "loongarch64",
];

/// The `uname -m` name of an architecture name as a profile may write it
/// (Debian's `amd64`, `arm64`, `ppc64el`, `i386`), or `None`.
pub fn canonical_arch(name: &str) -> Option<&'static str> {
    let n = match name {
        "amd64" | "x86-64" => "x86_64",
        "arm64" => "aarch64",
        "ppc64el" => "ppc64le",
        "i386" | "i486" | "i586" | "x86" => "i686",
        "armhf" | "armel" | "armv7l" => "arm",
        other => other,
    };
    ARCHES.iter().copied().find(|a| *a == n)
}

fn hostname(target: &dyn Target) -> Result<String, String> {
    let path = match target.kind() {
        TargetKind::Live => "/proc/sys/kernel/hostname",
        _ => "/etc/hostname",
    };
    match target.read(path, 4096) {
        Ok(b) => {
            let text = String::from_utf8_lossy(&b);
            let name = text
                .lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .find(|l| !l.is_empty())
                .unwrap_or("");
            // The short name: node001.cluster → node001.
            let short = name.split('.').next().unwrap_or("");
            if short.is_empty() {
                Err(format!(
                    "the target's host name is unknown ({path} is empty)"
                ))
            } else {
                Ok(short.to_string())
            }
        }
        Err(e) => Err(format!("the target's host name is unknown ({path}: {e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::MemoryTarget;

    #[test]
    fn os_release_values_lose_their_quotes() {
        let kv = parse_os_release(
            "# c\nID=rocky\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID='9.3'\nNAME=\"A \\\"q\\\"\"\n",
        );
        assert_eq!(
            kv,
            [
                ("ID".into(), "rocky".into()),
                ("ID_LIKE".into(), "rhel centos fedora".into()),
                ("VERSION_ID".into(), "9.3".into()),
                ("NAME".into(), "A \"q\"".into()),
            ]
        );
    }

    fn elf(machine: u16, class: u8, data: u8) -> Vec<u8> {
        let mut h = b"\x7fELF".to_vec();
        h.extend([class, data, 1]);
        h.resize(18, 0);
        if data == 1 {
            h.extend(machine.to_le_bytes());
        } else {
            h.extend(machine.to_be_bytes());
        }
        h
    }

    #[test]
    fn elf_machines() {
        assert_eq!(elf_arch(&elf(62, 2, 1)).as_deref(), Some("x86_64"));
        assert_eq!(elf_arch(&elf(183, 2, 1)).as_deref(), Some("aarch64"));
        assert_eq!(elf_arch(&elf(21, 2, 1)).as_deref(), Some("ppc64le"));
        assert_eq!(elf_arch(&elf(21, 2, 2)).as_deref(), Some("ppc64"));
        assert_eq!(elf_arch(&elf(22, 2, 2)).as_deref(), Some("s390x"));
        assert_eq!(
            elf_arch(&elf(9999, 2, 1)).as_deref(),
            Some("elf-machine-9999")
        );
        assert_eq!(elf_arch(b"#!/bin/sh\n echo hello world"), None);
        assert_eq!(canonical_arch("amd64"), Some("x86_64"));
        assert_eq!(canonical_arch("ppc64el"), Some("ppc64le"));
        assert_eq!(canonical_arch("sparc"), None);
    }

    #[test]
    fn facts_of_an_image() {
        let mut sh = elf(183, 2, 1);
        sh.resize(64, 0);
        let t = MemoryTarget::new()
            .file(
                "/usr/lib/os-release",
                0o644,
                0,
                0,
                "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\n",
            )
            .file("/usr/bin/sh", 0o755, 0, 0, &sh)
            .symlink("/bin", "usr/bin")
            .file("/etc/hostname", 0o644, 0, 0, "node007.cluster\n");
        let p = Platform::read(&t);
        assert_eq!(p.id.as_deref(), Some("rocky"));
        assert_eq!(p.id_like, ["rhel", "centos", "fedora"]);
        assert_eq!(p.version_id.as_deref(), Some("9.3"));
        assert_eq!(p.arch.as_deref(), Ok("aarch64"));
        assert_eq!(p.hostname.as_deref(), Ok("node007"));
        assert_eq!(p.describe_os(), "rocky 9.3 (like rhel centos fedora)");
        let bare = Platform::read(&MemoryTarget::new());
        assert!(
            bare.os_error
                .as_deref()
                .unwrap()
                .starts_with("the target has no os-release")
        );
        assert!(
            bare.arch
                .unwrap_err()
                .starts_with("the target's architecture is unknown")
        );
        assert!(bare.hostname.is_err());
    }
}
