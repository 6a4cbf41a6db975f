//! `yum_repo`: a repository defined in the target's yum/dnf configuration.

use nodecheck_core::kind::{Key, Kind, Ty};
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::run::Context;
use nodecheck_core::target::{FileType, Target};

use crate::config::{self, Entry};
use crate::eval::{self, io_text, is_absent};

pub struct YumRepo;

/// Where dnf and yum read repositories from: every `.repo` file of
/// `reposdir`, and the sections of the main configuration other than
/// `[main]`.
const REPO_DIRS: &[&str] = &["/etc/yum.repos.d", "/etc/distro.repos.d"];
const MAIN_FILES: &[&str] = &["/etc/dnf/dnf.conf", "/etc/yum.conf"];

const KEYS: &[Key] = &[
    Key::new(
        "exists",
        Ty::Bool,
        "A section `[name]` defines the repository (default `true`). When none does, \
         `enabled` is skipped.",
    ),
    Key::new(
        "enabled",
        Ty::Bool,
        "Its `enabled` option is on (`1`, `yes`, `true`, `on`); a repository without the \
         option is enabled, as in dnf and yum.",
    ),
];

const DOC: &str = r#"## What it checks

A yum/dnf repository of the target, by its id (the `[section]` name),
from the target's own files: every `*.repo` file in `/etc/yum.repos.d`
(and `/etc/distro.repos.d`), then the non-`[main]` sections of
`/etc/dnf/dnf.conf` and `/etc/yum.conf`. The files are INI as dnf reads
them (Python's configparser rules: `key=value` or `key: value`, `#` and
`;` comments, indented continuation lines). When several sections share
an id, the last one read wins, and the message names its file and line.

`enabled` follows dnf: `1`, `yes`, `true` and `on` (any case) are on,
`0`, `no`, `false`, `off` are off, and a repository without `enabled` is
on. Any other value is an *error*, as dnf refuses it.

A `.repo` file that cannot be parsed is an *error* naming the file and
line, unless the repository was found in another file. An image without
any of these files has no repositories: `exists` fails saying where
nodecheck looked.

## Example

```toml
[[control]]
id    = "repos"
title = "The site repositories are configured, the test repo is off"

  [[control.yum_repo]]
  name    = ["baseos", "appstream", "site-hpc"]
  enabled = true

  [[control.yum_repo]]
  name    = "epel-testing"
  enabled = false
```

## Targets

Every target.
"#;

impl Kind for YumRepo {
    fn name(&self) -> &'static str {
        "yum_repo"
    }

    fn subject(&self) -> Key {
        Key::new("name", Ty::Str, "The repository id: the `[section]` name.")
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn validate(&self, check: &Check) -> Vec<Diagnostic> {
        eval::exists_false_conflicts(check, "repository")
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let name = check.subject.as_str();
        let what = format!("repository {name}");
        let (found, errors, looked) = find(cx.target, name);
        let exists = check.bool("exists");
        let mut out = Vec::new();
        let Some((header, enabled_entry)) = found else {
            let p = if errors.is_empty() {
                eval::Presence::Absent(format!("looked in {}", looked.join(", ")))
            } else {
                eval::Presence::Unknown(errors.join("; "))
            };
            return match eval::presence(check, &what, p) {
                Ok(r) | Err(r) => r.into(),
            };
        };
        match exists {
            Some(true) => out.push(PropertyResult::verdict(
                "exists",
                true,
                format!("exists: {what} is defined at {}", header.place()),
            )),
            Some(false) => {
                out.push(PropertyResult::compare(
                    "exists",
                    false,
                    "false",
                    format!("true ({})", header.place()),
                ));
                return out.into();
            }
            None => {}
        }
        if let Some(want) = check.bool("enabled") {
            out.push(match &enabled_entry {
                None => eval::boolean(
                    "enabled",
                    want,
                    true,
                    &format!("no enabled= option at {}", header.place()),
                ),
                Some(e) => match flag(&e.value) {
                    Some(on) => eval::boolean(
                        "enabled",
                        want,
                        on,
                        &format!("enabled={} at {}", e.value, e.place()),
                    ),
                    None => PropertyResult::error(
                        "enabled",
                        format!(
                            "enabled: {}: enabled={} is not a boolean",
                            e.place(),
                            e.value
                        ),
                    ),
                },
            });
        }
        out.into()
    }
}

fn flag(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// The section header of the repository (its first entry stands for it)
/// and its `enabled` entry; the files that could not be read; where it
/// looked.
type Found = Option<(Entry, Option<Entry>)>;

fn find(t: &dyn Target, name: &str) -> (Found, Vec<String>, Vec<String>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for dir in REPO_DIRS {
        match t.read_dir(dir) {
            Ok(entries) => files.extend(
                entries
                    .into_iter()
                    .filter(|e| e.name.ends_with(".repo") && e.file_type != FileType::Directory)
                    .map(|e| format!("{dir}/{}", e.name)),
            ),
            Err(e) if is_absent(&e) => {}
            Err(e) => errors.push(format!("{dir}: {}", io_text(&e))),
        }
    }
    for f in MAIN_FILES {
        match t.metadata(f, true) {
            Ok(_) => files.push(f.to_string()),
            Err(e) if is_absent(&e) => {}
            Err(e) => errors.push(format!("{f}: {}", io_text(&e))),
        }
    }
    let mut found: Found = None;
    for f in &files {
        let text = match config::read_text(t, f) {
            Ok(text) => text,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let parsed = match config::ini::ini(f, &text) {
            Ok(p) => p,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if MAIN_FILES.contains(&f.as_str()) && name == "main" {
            continue;
        }
        let mut section = parsed
            .entries
            .iter()
            .filter(|e| e.section.as_deref() == Some(name));
        let Some(first) = section.next() else {
            if text.lines().any(|l| l.trim() == format!("[{name}]")) {
                // A section with no options at all.
                let line = text
                    .lines()
                    .position(|l| l.trim() == format!("[{name}]"))
                    .unwrap_or(0)
                    + 1;
                found = Some((Entry::new(name, String::new(), f, line), None));
            }
            continue;
        };
        let key = format!("{name}.enabled");
        let enabled = std::iter::once(first)
            .chain(section)
            .filter(|e| e.key == key)
            .fold(None, |_, e| Some(e.clone()));
        found = Some((first.clone(), enabled));
    }
    let mut looked: Vec<String> = REPO_DIRS.iter().map(|d| format!("{d}/*.repo")).collect();
    looked.extend(MAIN_FILES.iter().map(|s| s.to_string()));
    if found.is_some() {
        errors.clear();
    }
    (found, errors, looked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use nodecheck_core::outcome::Status::{Error, Fail, Pass, Skip};
    use nodecheck_core::target::MemoryTarget;

    fn rocky() -> MemoryTarget {
        MemoryTarget::new()
            .file(
                "/etc/yum.repos.d/rocky.repo",
                0o644,
                0,
                0,
                "[baseos]\nname=Rocky Linux $releasever - BaseOS\nmirrorlist=https://x\ngpgcheck=1\nenabled=1\n\n\
                 [devel]\nname=Devel\nenabled=0\n",
            )
            .file("/etc/yum.repos.d/site.repo", 0o644, 0, 0, "[site-hpc]\nbaseurl=http://repo/hpc\n")
            .file("/etc/dnf/dnf.conf", 0o644, 0, 0, "[main]\ngpgcheck=1\n")
    }

    fn eval_on(
        t: &MemoryTarget,
        name: &str,
        props: Vec<(&str, nodecheck_core::profile::Value)>,
    ) -> Evaluation {
        run(&check(&YumRepo, name, props), t)
    }

    #[test]
    fn repositories_and_their_enabled_flag() {
        let t = rocky();
        let e = eval_on(
            &t,
            "baseos",
            vec![("exists", b(true)), ("enabled", b(true))],
        );
        assert_eq!(
            results(&e),
            [
                (
                    "exists".into(),
                    Pass,
                    "exists: repository baseos is defined at /etc/yum.repos.d/rocky.repo:2".into()
                ),
                (
                    "enabled".into(),
                    Pass,
                    "enabled: expected true, got true (enabled=1 at /etc/yum.repos.d/rocky.repo:5)"
                        .into()
                ),
            ]
        );
        let e = eval_on(&t, "devel", vec![("enabled", b(true))]);
        assert_eq!(
            result(&e, "enabled"),
            (
                Fail,
                "enabled: expected true, got false (enabled=0 at /etc/yum.repos.d/rocky.repo:9)"
                    .into()
            )
        );
        let e = eval_on(&t, "site-hpc", vec![("enabled", b(true))]);
        assert_eq!(result(&e, "enabled").0, Pass);
        let e = eval_on(&t, "epel", vec![("enabled", b(true))]);
        assert_eq!(
            results(&e),
            [
                (
                    "exists".into(),
                    Fail,
                    "exists: repository epel does not exist (looked in /etc/yum.repos.d/*.repo, \
                     /etc/distro.repos.d/*.repo, /etc/dnf/dnf.conf, /etc/yum.conf)"
                        .into()
                ),
                (
                    "enabled".into(),
                    Skip,
                    "repository epel does not exist".into()
                ),
            ]
        );
        let e = eval_on(&t, "main", vec![("exists", b(false))]);
        assert_eq!(result(&e, "exists").0, Pass);
    }

    #[test]
    fn broken_repo_files_are_errors_naming_file_and_line() {
        let t = rocky()
            .file(
                "/etc/yum.repos.d/broken.repo",
                0o644,
                0,
                0,
                "[epel\nenabled=1\n",
            )
            .file(
                "/etc/yum.repos.d/odd.repo",
                0o644,
                0,
                0,
                "[odd]\nenabled=maybe\n",
            );
        let e = eval_on(&t, "epel", vec![("enabled", b(true))]);
        assert_eq!(
            result(&e, "exists"),
            (
                Error,
                "exists: repository epel could not be looked up: /etc/yum.repos.d/broken.repo:1: malformed section header \"[epel\"".into()
            )
        );
        // Found elsewhere: the broken file does not matter.
        let e = eval_on(&t, "baseos", vec![("enabled", b(true))]);
        assert_eq!(result(&e, "enabled").0, Pass);
        let e = eval_on(&t, "odd", vec![("enabled", b(true))]);
        assert_eq!(
            result(&e, "enabled"),
            (
                Error,
                "enabled: /etc/yum.repos.d/odd.repo:2: enabled=maybe is not a boolean".into()
            )
        );
    }
}
