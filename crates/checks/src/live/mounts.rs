//! The live mount table, from /proc/self/mountinfo: the live half of the
//! `mount` kind (`mounted`, `rw`, and `fstype`/`options` as mounted).

use std::io;

use nodecheck_core::target::Target;

use super::{read_text, with_path};

/// Where the mount table is read.
pub const MOUNTINFO: &str = "/proc/self/mountinfo";

/// One line of /proc/self/mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted (`/scratch`), unescaped.
    pub mount_point: String,
    /// The filesystem type (`nfs4`, `ext4`, `fuse.sshfs`).
    pub fstype: String,
    /// What is mounted (`/dev/sda1`, `server:/export`).
    pub source: String,
    /// Per-mount options (`rw`, `nosuid`, `relatime`).
    pub options: Vec<String>,
    /// Options of the filesystem itself (`rw`, `vers=4.2`, `errors=remount-ro`).
    pub super_options: Vec<String>,
}

impl MountEntry {
    /// Mounted read-only, by the mount or by the filesystem (an ext4 that
    /// remounted itself read-only after errors shows `ro` in the latter).
    pub fn read_only(&self) -> bool {
        self.options
            .iter()
            .chain(&self.super_options)
            .any(|o| o == "ro")
    }

    /// Both option lists, per-mount first, without repeats: what `mount`
    /// prints and what an `options = { contains = "..." }` looks at.
    pub fn all_options(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for o in self.options.iter().chain(&self.super_options) {
            if !out.contains(o) {
                out.push(o.clone());
            }
        }
        out
    }
}

/// The whole mount table, in mount order.
pub fn mount_table(target: &dyn Target) -> io::Result<Vec<MountEntry>> {
    let text = read_text(target, MOUNTINFO).map_err(|e| with_path(MOUNTINFO, &e))?;
    parse_mountinfo(&text)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{MOUNTINFO}: {e}")))
}

/// What is mounted at `path` (the topmost mount when several are stacked
/// there), or `None` when `path` is not a mount point. The path is looked
/// up as written first, so that a hung mount is never touched; only when
/// that finds nothing is it resolved through the target's symlinks.
///
/// The lead's wiring of `mount`: `mounted` = `is_some()`, `rw` =
/// `!read_only()`.
pub fn mount_state(target: &dyn Target, path: &str) -> io::Result<Option<MountEntry>> {
    let table = mount_table(target)?;
    let find = |p: &str| table.iter().rev().find(|m| m.mount_point == p).cloned();
    let wanted = normalize(path);
    if let Some(m) = find(&wanted) {
        return Ok(Some(m));
    }
    match target.canonicalize(&wanted) {
        Ok(real) if real != wanted => Ok(find(&real)),
        Ok(_) => Ok(None),
        Err(e) if crate::eval::is_absent(&e) => Ok(None),
        Err(e) => Err(with_path(&wanted, &e)),
    }
}

/// `/scratch/`, `//scratch` and `/scratch/.` all name `/scratch`.
fn normalize(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// Parses mountinfo (proc(5)): `id parent maj:min root mount-point
/// options [optional...] - fstype source super-options`.
pub fn parse_mountinfo(text: &str) -> Result<Vec<MountEntry>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || format!("line {}: cannot parse {line:?}", n + 1);
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-").ok_or_else(bad)?;
        if sep < 6 || fields.len() < sep + 3 {
            return Err(bad());
        }
        let list = |s: &str| {
            s.split(',')
                .filter(|o| !o.is_empty())
                .map(unescape)
                .collect()
        };
        out.push(MountEntry {
            mount_point: unescape(fields[4]),
            options: list(fields[5]),
            fstype: unescape(fields[sep + 1]),
            source: unescape(fields[sep + 2]),
            super_options: fields.get(sep + 3).map_or_else(Vec::new, |s| list(s)),
        });
    }
    Ok(out)
}

/// Undoes the kernel's octal escapes (`\040` space, `\011` tab, `\012`
/// newline, `\134` backslash).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use nodecheck_core::target::MemoryTarget;

    use super::*;

    const MOUNTINFO_TEXT: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
40 27 0:40 / /scratch rw,nosuid,relatime shared:7 master:1 - nfs4 fs1:/export/scratch rw,vers=4.2,hard
41 27 8:1 / /data ro,relatime - xfs /dev/sdb1 rw
42 27 8:2 / /broken rw,relatime - ext4 /dev/sdc1 ro,errors=remount-ro
43 27 0:50 / /mnt/with\\040space rw - tmpfs tmpfs rw
44 40 0:51 / /scratch rw,relatime - tmpfs over rw
";

    fn node() -> MemoryTarget {
        MemoryTarget::new()
            .file("/proc/self/mountinfo", 0o444, 0, 0, MOUNTINFO_TEXT)
            .dir("/data", 0o755, 0, 0)
            .symlink("/d", "data")
            .dir("/home", 0o755, 0, 0)
    }

    #[test]
    fn parses_optional_fields_and_escapes() {
        let t = parse_mountinfo(MOUNTINFO_TEXT).unwrap();
        assert_eq!(t.len(), 7);
        let nfs = &t[2];
        assert_eq!(nfs.mount_point, "/scratch");
        assert_eq!(nfs.fstype, "nfs4");
        assert_eq!(nfs.source, "fs1:/export/scratch");
        assert_eq!(nfs.options, vec!["rw", "nosuid", "relatime"]);
        assert!(nfs.all_options().contains(&"vers=4.2".to_string()));
        assert_eq!(t[5].mount_point, "/mnt/with space");
        assert!(
            parse_mountinfo("1 2 3\n")
                .unwrap_err()
                .starts_with("line 1:")
        );
        assert_eq!(unescape("a\\134b\\0"), "a\\b\\0");
    }

    #[test]
    fn mounted_and_read_only() {
        let t = node();
        let root = mount_state(&t, "/").unwrap().unwrap();
        assert_eq!(root.fstype, "ext4");
        assert!(!root.read_only());
        assert!(mount_state(&t, "/data").unwrap().unwrap().read_only());
        // Read-only by the filesystem itself (errors=remount-ro).
        assert!(mount_state(&t, "/broken/").unwrap().unwrap().read_only());
        // The topmost of two mounts at one place.
        assert_eq!(
            mount_state(&t, "/scratch").unwrap().unwrap().fstype,
            "tmpfs"
        );
        // Through a symlink, and not mounted at all.
        assert_eq!(mount_state(&t, "/d").unwrap().unwrap().mount_point, "/data");
        assert_eq!(mount_state(&t, "/home").unwrap(), None);
        assert_eq!(mount_state(&t, "/nowhere").unwrap(), None);
    }

    #[test]
    fn unreadable_table_is_an_error_naming_it() {
        let e = mount_state(&MemoryTarget::new(), "/").unwrap_err();
        assert!(e.to_string().starts_with("/proc/self/mountinfo: "), "{e}");
        let t = MemoryTarget::new().file("/proc/self/mountinfo", 0o444, 0, 0, "junk\n");
        let e = mount_state(&t, "/").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
