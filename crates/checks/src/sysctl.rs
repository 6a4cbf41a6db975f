//! `sysctl`: a kernel parameter, as the image configures it or as the
//! running kernel has it.

use std::collections::BTreeMap;

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::Actual;
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::Check;
use nodecheck_core::run::Context;
use nodecheck_core::target::{FileType, Need, Target};

use crate::config;
use crate::eval::{io_text, is_absent};

pub struct Sysctl;

/// systemd-sysctl's directories, highest priority first (sysctl.d(5)).
const DIRS: &[&str] = &[
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
];
const SYSCTL_CONF: &str = "/etc/sysctl.conf";

const KEYS: &[Key] = &[Key::new(
    "value",
    Ty::Matcher(Compare::Version),
    "The value: `\"1\"`, `{ ge = \"262144\" }`; runs of blanks in multi-number values \
     (`net.ipv4.tcp_rmem`) compare as one space.",
)];

const DOC: &str = r#"## What it checks

A kernel parameter (`net.ipv4.ip_forward`, or with slashes
`net/ipv4/ip_forward`).

- **Offline** (rootfs, container): the value the image will set at boot,
  computed as systemd-sysctl does: every `*.conf` file of `/etc/sysctl.d`,
  `/run/sysctl.d`, `/usr/local/lib/sysctl.d`, `/usr/lib/sysctl.d` and
  `/lib/sysctl.d`, a file name in an earlier directory hiding the same
  name in a later one, read in file-name order, and then
  `/etc/sysctl.conf` (as `sysctl --system` does) unless a sysctl.d link
  already points at it (Debian's `99-sysctl.conf`). The last assignment
  wins; a `-` before a key (ignore errors) is dropped, and globbed keys
  (`net.ipv4.conf.*.rp_filter`) apply to the keys they match. The
  message names the file and line of the assignment in force. A key no
  file sets fails saying so: the kernel's built-in default applies, which
  an image cannot tell.
- **Live**: `/proc/sys/<key>` of the running kernel.

A sysctl file nodecheck cannot parse (a line that is not `key = value`,
binary content) is an *error* naming the file and line.

## Example

```toml
[[control]]
id    = "sysctl"
title = "Kernel parameters for MPI jobs"

  [[control.sysctl]]
  key   = "vm.max_map_count"
  value = { ge = "262144" }

  [[control.sysctl]]
  key   = "kernel.randomize_va_space"
  value = "2"
```

## Targets

Every target: offline the configured value, on a live node the running
one.
"#;

impl Kind for Sysctl {
    fn name(&self) -> &'static str {
        "sysctl"
    }

    fn subject(&self) -> Key {
        Key::new("key", Ty::Str, "The parameter: `vm.swappiness`.")
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let key = normalize(&check.subject);
        let Some(m) = check.matcher("value") else {
            return Evaluation::default();
        };
        let t = cx.target;
        let (value, place) = if t.has(Need::Live) {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            match t.read(&path, 1 << 20) {
                Ok(b) => (squash(&String::from_utf8_lossy(&b)), path),
                Err(e) if is_absent(&e) => {
                    return vec![PropertyResult::compare(
                        "value",
                        false,
                        m.describe(),
                        format!("no such parameter ({path} does not exist)"),
                    )]
                    .into();
                }
                Err(e) => {
                    return Evaluation::error("value", format!("value: {path}: {}", io_text(&e)));
                }
            }
        } else {
            match configured(t) {
                Ok((values, files)) => match lookup(&values, &key) {
                    Some((v, at)) => (v, at),
                    None => {
                        let read = if files.is_empty() {
                            "no sysctl file exists".to_string()
                        } else {
                            format!("not set in {}", files.join(", "))
                        };
                        return vec![PropertyResult::verdict(
                            "value",
                            false,
                            format!("value: expected {}, but {key} is {read}: the kernel default applies", m.describe()),
                        )
                        .with_expected(m.describe())]
                        .into();
                    }
                },
                Err(e) => return Evaluation::error("value", format!("value: {e}")),
            }
        };
        let ok = m.test(Actual::Str(&value));
        vec![
            PropertyResult::verdict(
                "value",
                ok,
                format!("value: expected {}, got {value} ({place})", m.describe()),
            )
            .with_expected(m.describe())
            .with_actual(value),
        ]
        .into()
    }
}

/// `net/ipv4/ip_forward` → `net.ipv4.ip_forward` (sysctl.d(5): when the
/// first separator is a slash, slashes and dots swap).
fn normalize(key: &str) -> String {
    let key = key.trim().trim_start_matches('-');
    match key.find(['.', '/']) {
        Some(i) if key.as_bytes()[i] == b'/' => key
            .chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                c => c,
            })
            .collect(),
        _ => key.to_string(),
    }
}

fn squash(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// (key or glob) → (value, file:line), in application order.
type Assignments = Vec<(String, String, String)>;

/// Every assignment the image makes at boot, in the order applied, and
/// the files read.
fn configured(t: &dyn Target) -> Result<(Assignments, Vec<String>), String> {
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for dir in DIRS {
        let entries = match t.read_dir(dir) {
            Ok(e) => e,
            Err(e) if is_absent(&e) => continue,
            Err(e) => return Err(format!("{dir}: {}", io_text(&e))),
        };
        for e in entries {
            if e.name.ends_with(".conf") && e.file_type != FileType::Directory {
                by_name
                    .entry(e.name.clone())
                    .or_insert_with(|| format!("{dir}/{}", e.name));
            }
        }
    }
    let mut files: Vec<String> = by_name.into_values().collect();
    let covers_conf = files
        .iter()
        .any(|f| t.canonicalize(f).ok().as_deref() == Some(SYSCTL_CONF));
    if !covers_conf && t.metadata(SYSCTL_CONF, true).is_ok() {
        files.push(SYSCTL_CONF.to_string());
    }
    let mut out = Vec::new();
    for f in &files {
        let text = config::read_text(t, f)?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(format!(
                    "{f}:{}: expected `key = value`, got {:?}",
                    i + 1,
                    line.chars().take(60).collect::<String>()
                ));
            };
            let k = normalize(k);
            if k.is_empty() || k.contains(char::is_whitespace) {
                return Err(format!("{f}:{}: malformed key {k:?}", i + 1));
            }
            out.push((k, squash(v), format!("{f}:{}", i + 1)));
        }
    }
    Ok((out, files))
}

/// The last assignment matching `key` (globs in the files' keys match).
fn lookup(values: &Assignments, key: &str) -> Option<(String, String)> {
    values
        .iter()
        .rfind(|(k, _, _)| {
            k == key
                || (k.contains(['*', '?'])
                    && globset::Glob::new(k).is_ok_and(|g| g.compile_matcher().is_match(key)))
        })
        .map(|(_, v, at)| (v.clone(), at.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use nodecheck_core::matcher::Pred;
    use nodecheck_core::outcome::Status::{Error, Fail, Pass};
    use nodecheck_core::target::{MemoryTarget, TargetKind};

    fn image() -> MemoryTarget {
        MemoryTarget::new()
            .file(
                "/usr/lib/sysctl.d/50-pid-max.conf",
                0o644,
                0,
                0,
                "kernel.pid_max = 4194304\n",
            )
            .file(
                "/usr/lib/sysctl.d/10-net.conf",
                0o644,
                0,
                0,
                "net.ipv4.ip_forward=0\nnet/ipv4/conf/all/rp_filter = 2\n",
            )
            .file(
                "/etc/sysctl.d/10-net.conf",
                0o644,
                0,
                0,
                "# site override hides the vendor file\nnet.ipv4.ip_forward = 1\n",
            )
            .file(
                "/etc/sysctl.d/90-glob.conf",
                0o644,
                0,
                0,
                "-net.ipv4.conf.*.rp_filter = 1\nnet.ipv4.tcp_rmem = 4096\t87380   6291456\n",
            )
            .file("/etc/sysctl.conf", 0o644, 0, 0, "vm.swappiness=10\n")
            .symlink("/etc/sysctl.d/99-sysctl.conf", "../sysctl.conf")
    }

    fn eval_on(
        t: &MemoryTarget,
        key: &str,
        v: nodecheck_core::profile::Value,
    ) -> (nodecheck_core::outcome::Status, String) {
        result(&run(&check(&Sysctl, key, vec![("value", v)]), t), "value")
    }

    #[test]
    fn offline_in_systemd_sysctl_order() {
        let t = image();
        assert_eq!(
            eval_on(&t, "net.ipv4.ip_forward", eq("1")),
            (
                Pass,
                "value: expected 1, got 1 (/etc/sysctl.d/10-net.conf:2)".into()
            )
        );
        assert_eq!(
            eval_on(
                &t,
                "kernel/pid_max",
                preds(vec![Pred::Ge("4194304".into())])
            )
            .0,
            Pass
        );
        assert_eq!(
            eval_on(&t, "net.ipv4.conf.all.rp_filter", eq("2")),
            (
                Fail,
                "value: expected 2, got 1 (/etc/sysctl.d/90-glob.conf:1)".into()
            )
        );
        assert_eq!(
            eval_on(&t, "net.ipv4.tcp_rmem", eq("4096 87380 6291456")).0,
            Pass
        );
        assert_eq!(
            eval_on(&t, "vm.swappiness", eq("10")),
            (
                Pass,
                "value: expected 10, got 10 (/etc/sysctl.d/99-sysctl.conf:1)".into()
            )
        );
        let (status, msg) = eval_on(&t, "vm.max_map_count", eq("262144"));
        assert_eq!(status, Fail);
        assert!(msg.starts_with("value: expected 262144, but vm.max_map_count is not set in /etc/sysctl.d/10-net.conf, "), "{msg}");
        assert!(msg.ends_with(": the kernel default applies"), "{msg}");
        let t = MemoryTarget::new().file("/etc/sysctl.conf", 0o644, 0, 0, "vm.swappiness\n");
        assert_eq!(
            eval_on(&t, "vm.swappiness", eq("10")),
            (
                Error,
                "value: /etc/sysctl.conf:1: expected `key = value`, got \"vm.swappiness\"".into()
            )
        );
    }

    #[test]
    fn live_reads_proc_sys() {
        let t = image().kind(TargetKind::Live).with(Need::Live).file(
            "/proc/sys/net/ipv4/ip_forward",
            0o644,
            0,
            0,
            "0\n",
        );
        assert_eq!(
            eval_on(&t, "net.ipv4.ip_forward", eq("1")),
            (
                Fail,
                "value: expected 1, got 0 (/proc/sys/net/ipv4/ip_forward)".into()
            )
        );
        assert_eq!(eval_on(&t, "vm.nope", eq("1")).0, Fail);
    }
}
