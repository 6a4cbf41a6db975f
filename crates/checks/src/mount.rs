//! `mount`: a filesystem mount point, from the image's /etc/fstab or the
//! live node's mount table.

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::Actual;
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::Check;
use nodecheck_core::run::Context;
use nodecheck_core::target::{Need, Target, unescape_octal};

use crate::config;
use crate::eval::{self, is_absent};

pub struct Mount;

const FSTAB: &str = "/etc/fstab";
const MOUNTS: &str = "/proc/self/mounts";

const KEYS: &[Key] = &[
    Key::new(
        "exists",
        Ty::Bool,
        "The mount point has an entry (default `true`): in /etc/fstab offline, in the mount \
         table on a live node. When it has none, the other properties are skipped.",
    ),
    Key::new(
        "device",
        Ty::Matcher(Compare::Version),
        "The source: `UUID=…`, `/dev/sda1`, `nfs01:/home`.",
    ),
    Key::new(
        "fstype",
        Ty::Matcher(Compare::Version),
        "The filesystem type: `xfs`, `nfs4`, `{ one_of = [...] }`.",
    ),
    Key::new(
        "options",
        Ty::StrList,
        "Mount options that must all be present (`nosuid`, `vers=4.2`); others are allowed.",
    ),
    Key::new(
        "mounted",
        Ty::Bool,
        "Mounted now (the live mount table has it).",
    )
    .needs(Need::Live),
    Key::new("rw", Ty::Bool, "Mounted read-write now (not `ro`).").needs(Need::Live),
];

const DOC: &str = r#"## What it checks

A mount point. Offline (rootfs, container), from the image's `/etc/fstab`
(fstab(5): six fields, `#` comments, `\040` for a space in a path; the last
line for a mount point wins, as `mount -a` mounts them in order); on a
live node, `device`, `fstype` and `options` come from the running mount
table (`/proc/self/mounts`, the last mount on the point, which is the one
visible) and `mounted`/`rw` say whether and how it is mounted now.

An image whose `/etc/fstab` is missing has no mounts: `exists` fails
saying so. A line with fewer than three fields is an *error* naming the
file and line.

## Example

```toml
[[control]]
id    = "scratch"
title = "/scratch is mounted from the parallel filesystem, nosuid"

  [[control.mount]]
  path    = "/scratch"
  fstype  = { one_of = ["lustre", "gpfs", "nfs4"] }
  options = ["nosuid", "nodev"]
  mounted = true
  rw      = true
```

## Targets

Every target; `mounted` and `rw` only on a live node.
"#;

impl Kind for Mount {
    fn name(&self) -> &'static str {
        "mount"
    }

    fn subject(&self) -> Key {
        Key::new("path", Ty::Str, "The mount point: `/home`.")
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let t = cx.target;
        let path = check.subject.trim_end_matches('/');
        let path = if path.is_empty() { "/" } else { path };
        let table = if t.has(Need::Live) { MOUNTS } else { FSTAB };
        let what = format!("mount entry for {path}");
        let entries = match read_table(t, table) {
            Ok(e) => e,
            Err(e) => {
                return match eval::presence(check, &what, eval::Presence::Unknown(e)) {
                    Ok(r) | Err(r) => r.into(),
                };
            }
        };
        let found = entries.iter().rev().find(|m| m.point == path);
        let exists = check.bool("exists");
        let mut out = Vec::new();
        let Some(m) = found else {
            let looked = if t.metadata(table, true).is_err() {
                format!("{table} does not exist")
            } else {
                format!("none in {table}")
            };
            // `mounted = false` alone asks exactly this: no entry passes.
            if check.bool("mounted") == Some(false) && exists.is_none() {
                let why = format!("{what} does not exist ({looked})");
                return vec![eval::boolean("mounted", false, false, &why)].into();
            }
            return match eval::presence(check, &what, eval::Presence::Absent(looked)) {
                Ok(r) | Err(r) => r.into(),
            };
        };
        let at = format!("{table}:{}", m.line);
        if let Some(want) = exists {
            out.push(eval::boolean("exists", want, true, &at));
            if !want {
                return out.into();
            }
        }
        for prop in eval::asserted(check, &["exists"]) {
            out.push(match prop.key {
                "device" => matched(check, "device", &m.device, &at),
                "fstype" => matched(check, "fstype", &m.fstype, &at),
                "options" => {
                    let want = check.list("options").unwrap_or(&[]);
                    let missing: Vec<&String> =
                        want.iter().filter(|o| !m.options.contains(o)).collect();
                    PropertyResult::compare(
                        "options",
                        missing.is_empty(),
                        format!("including [{}]", want.join(", ")),
                        format!("[{}] ({at})", m.options.join(", ")),
                    )
                }
                "mounted" => {
                    eval::boolean("mounted", check.bool("mounted").unwrap_or(true), true, &at)
                }
                "rw" => {
                    let rw = !m.options.iter().any(|o| o == "ro");
                    eval::boolean(
                        "rw",
                        check.bool("rw").unwrap_or(true),
                        rw,
                        &m.options.join(","),
                    )
                }
                other => PropertyResult::error(other, format!("{other}: not a mount property")),
            });
        }
        out.into()
    }
}

fn matched(check: &Check, key: &str, actual: &str, at: &str) -> PropertyResult {
    match check.matcher(key) {
        Some(m) => eval::matched(key, m, Actual::Str(actual), format!("{actual} ({at})")),
        None => PropertyResult::error(key, format!("{key}: not a matcher")),
    }
}

/// One line of fstab or /proc/mounts.
#[derive(Debug)]
struct Entry {
    device: String,
    point: String,
    fstype: String,
    options: Vec<String>,
    line: usize,
}

fn read_table(t: &dyn Target, path: &str) -> Result<Vec<Entry>, String> {
    let text = match config::read_text(t, path) {
        Ok(text) => text,
        Err(_) if t.metadata(path, true).is_err_and(|e| is_absent(&e)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 {
            return Err(format!(
                "{path}:{}: expected at least 3 fields (device, mount point, type), got {}",
                i + 1,
                f.len()
            ));
        }
        let point = unescape_octal(f[1]);
        let point = point.trim_end_matches('/');
        out.push(Entry {
            device: unescape_octal(f[0]),
            point: if point.is_empty() {
                "/".into()
            } else {
                point.to_string()
            },
            fstype: f[2].to_string(),
            options: f.get(3).map_or_else(
                || vec!["defaults".to_string()],
                |o| o.split(',').map(str::to_string).collect(),
            ),
            line: i + 1,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use nodecheck_core::outcome::Status::{Error, Fail, Pass, Skip};
    use nodecheck_core::target::{MemoryTarget, TargetKind};

    const FSTAB_TEXT: &str = "# /etc/fstab\nUUID=1234 / ext4 errors=remount-ro 0 1\n\
                              nfs01:/home /home nfs4 rw,nosuid,vers=4.2 0 0\n\
                              /dev/sdb1 /scratch\\040space xfs defaults 0 2\n";

    fn image() -> MemoryTarget {
        MemoryTarget::new().file("/etc/fstab", 0o644, 0, 0, FSTAB_TEXT)
    }

    #[test]
    fn fstab_entries() {
        let t = image();
        let e = run(
            &check(
                &Mount,
                "/home/",
                vec![
                    ("fstype", eq("nfs4")),
                    ("options", list(&["nosuid", "nodev"])),
                    ("device", eq("nfs01:/home")),
                ],
            ),
            &t,
        );
        assert_eq!(
            results(&e),
            [
                ("fstype".into(), Pass, "fstype: expected nfs4, got nfs4 (/etc/fstab:3)".into()),
                (
                    "options".into(),
                    Fail,
                    "options: expected including [nosuid, nodev], got [rw, nosuid, vers=4.2] (/etc/fstab:3)".into()
                ),
                ("device".into(), Pass, "device: expected nfs01:/home, got nfs01:/home (/etc/fstab:3)".into()),
            ]
        );
        let e = run(
            &check(&Mount, "/scratch space", vec![("fstype", eq("xfs"))]),
            &t,
        );
        assert_eq!(result(&e, "fstype").0, Pass);
        let e = run(&check(&Mount, "/opt", vec![("fstype", eq("xfs"))]), &t);
        assert_eq!(
            results(&e),
            [
                (
                    "exists".into(),
                    Fail,
                    "exists: mount entry for /opt does not exist (none in /etc/fstab)".into()
                ),
                (
                    "fstype".into(),
                    Skip,
                    "mount entry for /opt does not exist".into()
                ),
            ]
        );
        let e = run(&check(&Mount, "/opt", vec![("exists", b(false))]), &t);
        assert_eq!(result(&e, "exists").0, Pass);
        let bad = MemoryTarget::new().file("/etc/fstab", 0o644, 0, 0, "/dev/sda1 /\n");
        let e = run(&check(&Mount, "/", vec![("fstype", eq("ext4"))]), &bad);
        assert_eq!(
            result(&e, "exists"),
            (Error, "exists: mount entry for / could not be looked up: /etc/fstab:1: expected at least 3 fields (device, mount point, type), got 2".into())
        );
        let e = run(
            &check(&Mount, "/", vec![("fstype", eq("ext4"))]),
            &MemoryTarget::new(),
        );
        assert_eq!(
            result(&e, "exists").1,
            "exists: mount entry for / does not exist (/etc/fstab does not exist)"
        );
    }

    #[test]
    fn live_mount_table() {
        let t = image().kind(TargetKind::Live).with(Need::Live).file(
            "/proc/self/mounts",
            0o444,
            0,
            0,
            "nfs01:/home /home nfs4 ro,nosuid,vers=4.2 0 0\n",
        );
        let e = run(
            &check(&Mount, "/home", vec![("mounted", b(true)), ("rw", b(true))]),
            &t,
        );
        assert_eq!(
            results(&e),
            [
                (
                    "mounted".into(),
                    Pass,
                    "mounted: expected true, got true (/proc/self/mounts:1)".into()
                ),
                (
                    "rw".into(),
                    Fail,
                    "rw: expected true, got false (ro,nosuid,vers=4.2)".into()
                ),
            ]
        );
        let e = run(&check(&Mount, "/scratch", vec![("mounted", b(false))]), &t);
        assert_eq!(result(&e, "mounted").0, Pass);
    }
}
