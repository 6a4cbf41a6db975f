//! `filesystem`: free space, free inodes and writability of the
//! filesystem holding a path on the live node (NHC's `check_fs_free`,
//! `check_fs_ifree`, `check_fs_mount_rw`).

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::{Actual, Matcher};
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::run::Context;
use nodecheck_core::target::{FsStats, Need};

use crate::eval;

pub struct Filesystem;

const KEYS: &[Key] = &[
    Key::new(
        "free",
        Ty::Matcher(Compare::Amount),
        "Space available to users (`df`'s *Avail*): `\"10%\"` of the size or an amount \
         (`\"20GiB\"`); a plain value means at least.",
    ),
    Key::new(
        "inodes_free",
        Ty::Matcher(Compare::Amount),
        "Inodes available: `\"5%\"` or a count; a plain value means at least. Skipped on \
         filesystems without a fixed inode table (btrfs, some network filesystems report 0).",
    ),
    Key::new(
        "rw",
        Ty::Bool,
        "The filesystem is mounted read-write (`true`) or read-only (`false`); an ext4 that \
         remounted itself read-only after errors fails `rw = true`.",
    ),
];

const DOC: &str = r#"## What it checks

The mounted filesystem holding a path on the live node, through `statvfs`
(what `df` shows): space and inodes available to unprivileged users, and
whether it is mounted read-only. Percentages are of the filesystem's size
(`free = "10%"` passes with at least a tenth of it available).

A path that does not exist fails the first property (`/scratch does
not exist`) and skips the others; one that cannot be examined is an error
on it, the others skipped. A mount that does not
answer (a hung NFS server) blocks the `statvfs`; under `nodecheck nhc` the
run's time budget cuts it and reports this check by name.

To check the mount table itself (is `/scratch` a mount point, with which
type and options) use the `mount` kind; `filesystem` looks at whatever
filesystem the path is on.

## Example

```toml
[[control]]
id = "tmp-space"
title = "/tmp has room for jobs"

  [[control.filesystem]]
  path        = "/tmp"
  free        = "10%"
  inodes_free = "5%"

  [[control.filesystem]]
  path = "/"
  rw   = true
  free = { ge = "2GiB" }
```

## Targets

Live node only (`needs a live node` elsewhere): an image's files are not a
mounted filesystem with free space of its own.
"#;

impl Kind for Filesystem {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn subject(&self) -> Key {
        Key::new(
            "path",
            Ty::Str,
            "A path on the filesystem to check, usually its mount point (`/tmp`, `/scratch`).",
        )
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn needs(&self) -> Option<Need> {
        Some(Need::Live)
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn validate(&self, check: &Check) -> Vec<Diagnostic> {
        if check.subject.starts_with('/') {
            return Vec::new();
        }
        vec![eval::diagnostic(
            check,
            "path",
            "bad-value",
            format!("`path` must be absolute, got {:?}", check.subject),
        )]
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let path = check.subject.as_str();
        // The goss rule for a path every property needs (eval::PATH).
        let stats = match cx.target.fs_stats(path) {
            Ok(s) => s,
            Err(e) => {
                let p = if eval::is_absent(&e) {
                    eval::Presence::Absent(String::new())
                } else {
                    eval::Presence::Unknown(format!("cannot statvfs it: {}", eval::io_text(&e)))
                };
                return match eval::presence_as(check, &eval::PATH, path, p) {
                    Ok(v) | Err(v) => v.into(),
                };
            }
        };
        let mut out = Vec::new();
        for p in eval::asserted(check, &[]) {
            match p.key {
                "free" => {
                    if let Some(m) = check.matcher("free") {
                        out.push(free(m, &stats));
                    }
                }
                "inodes_free" => {
                    if let Some(m) = check.matcher("inodes_free") {
                        out.push(inodes_free(m, &stats, path));
                    }
                }
                "rw" => {
                    if let Some(want) = check.bool("rw") {
                        let why = if stats.read_only {
                            "mounted read-only"
                        } else {
                            "mounted read-write"
                        };
                        out.push(eval::boolean("rw", want, !stats.read_only, why));
                    }
                }
                _ => {}
            }
        }
        out.into()
    }
}

fn free(m: &Matcher, s: &FsStats) -> PropertyResult {
    #[expect(clippy::cast_precision_loss, reason = "bytes, compared as amounts")]
    let actual = Actual::Amount {
        value: s.available as f64,
        total: Some(s.size as f64),
    };
    eval::matched("free", m, actual, actual.to_string())
}

fn inodes_free(m: &Matcher, s: &FsStats, path: &str) -> PropertyResult {
    if s.inodes == 0 {
        return PropertyResult::skip(
            "inodes_free",
            format!("the filesystem holding {path} has no fixed number of inodes"),
        );
    }
    #[expect(
        clippy::cast_precision_loss,
        reason = "inode counts, compared as amounts"
    )]
    let (value, total) = (s.inodes_available as f64, s.inodes as f64);
    let actual = Actual::Amount {
        value,
        total: Some(total),
    };
    // Inodes are counts, not bytes: show them as such.
    let shown = format!(
        "{} of {} ({:.1}%)",
        s.inodes_available,
        s.inodes,
        value / total * 100.0
    );
    PropertyResult::compare("inodes_free", m.test(actual), m.describe(), shown)
}

#[cfg(test)]
mod tests {
    use nodecheck_core::matcher::Pred;
    use nodecheck_core::outcome::Status::{Error, Fail, Pass, Skip};
    use nodecheck_core::profile::Value;
    use nodecheck_core::target::{MemoryTarget, TargetKind};

    use super::*;
    use crate::testing::*;

    const GIB: u64 = 1 << 30;

    fn node() -> MemoryTarget {
        MemoryTarget::new()
            .kind(TargetKind::Live)
            .with(Need::Live)
            .dir("/tmp", 0o1777, 0, 0)
            .dir("/scratch", 0o755, 0, 0)
            .dir("/btrfs", 0o755, 0, 0)
            .filesystem(
                "/",
                FsStats {
                    size: 100 * GIB,
                    available: 40 * GIB,
                    inodes: 1000,
                    inodes_available: 900,
                    read_only: false,
                },
            )
            .filesystem(
                "/scratch",
                FsStats {
                    size: 100 * GIB,
                    available: 2 * GIB,
                    inodes: 1000,
                    inodes_available: 10,
                    read_only: true,
                },
            )
            .filesystem(
                "/btrfs",
                FsStats {
                    size: GIB,
                    available: GIB,
                    ..FsStats::default()
                },
            )
    }

    fn at_least(q: &str) -> Value {
        Value::Matcher(Matcher {
            preds: vec![Pred::Ge(q.into())],
            compare: Compare::Amount,
        })
    }

    #[test]
    fn space_inodes_and_rw() {
        let c = check(
            &Filesystem,
            "/tmp",
            vec![
                ("free", at_least("10%")),
                ("inodes_free", at_least("50%")),
                ("rw", b(true)),
            ],
        );
        let e = run(&c, &node());
        assert_eq!(
            results(&e),
            vec![
                (
                    "free".into(),
                    Pass,
                    "free: expected >= 10%, got 40.0GiB (40.0%)".into()
                ),
                (
                    "inodes_free".into(),
                    Pass,
                    "inodes_free: expected >= 50%, got 900 of 1000 (90.0%)".into()
                ),
                (
                    "rw".into(),
                    Pass,
                    "rw: expected true, got true (mounted read-write)".into()
                ),
            ]
        );
        let c = check(
            &Filesystem,
            "/scratch",
            vec![
                ("free", at_least("10%")),
                ("inodes_free", at_least("5%")),
                ("rw", b(true)),
            ],
        );
        let e = run(&c, &node());
        assert_eq!(
            result(&e, "free"),
            (Fail, "free: expected >= 10%, got 2.0GiB (2.0%)".into())
        );
        assert_eq!(result(&e, "inodes_free").0, Fail);
        assert_eq!(
            result(&e, "rw"),
            (
                Fail,
                "rw: expected true, got false (mounted read-only)".into()
            )
        );
        let e = run(
            &check(&Filesystem, "/scratch", vec![("free", at_least("1GiB"))]),
            &node(),
        );
        assert_eq!(result(&e, "free").0, Pass);
    }

    #[test]
    fn no_inode_table_skips() {
        let e = run(
            &check(&Filesystem, "/btrfs", vec![("inodes_free", at_least("5%"))]),
            &node(),
        );
        assert_eq!(result(&e, "inodes_free").0, Skip);
    }

    #[test]
    fn a_missing_path_fails_and_an_unsupported_target_errors() {
        let c = check(
            &Filesystem,
            "/nope",
            vec![("free", at_least("1%")), ("rw", b(true))],
        );
        assert_eq!(
            results(&run(&c, &node())),
            vec![
                ("free".into(), Fail, "free: /nope does not exist".into()),
                ("rw".into(), Skip, "/nope does not exist".into()),
            ]
        );
        let t = MemoryTarget::new().kind(TargetKind::Live).with(Need::Live);
        let c = check(&Filesystem, "/", vec![("free", at_least("1%"))]);
        assert_eq!(result(&run(&c, &t), "free").0, Error);
        let c = check(&Filesystem, "tmp", vec![("rw", b(true))]);
        assert!(messages(&Filesystem.validate(&c))[0].starts_with("bad-value"));
    }
}
