//! `config`: settings of a configuration file, parsed with its program's
//! own rules (sshd_config, slurm.conf, INI, key=value).

mod hpc;
pub(crate) mod ini;
mod slurm;
mod sshd;

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::Actual;
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic, NamedMatcher};
use nodecheck_core::run::Context;
use nodecheck_core::target::Target;

use crate::eval::{self, io_text, is_absent};

pub struct Config;

/// A config file is text of at most this size.
const CONFIG_LIMIT: u64 = 16 << 20;
/// OpenSSH's READCONF_MAX_DEPTH.
const MAX_INCLUDE_DEPTH: usize = 16;

const FORMATS: &[&str] = &[
    "keyvalue",
    "ini",
    "sshd",
    "slurm",
    "gres",
    "plugstack",
    "apptainer",
];

/// What a setting the files do not set counts as (`when_unset`).
const WHEN_UNSET: &[&str] = &["default", "fail", "pass"];

/// One assignment in a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name as written: `PermitRootLogin`, `main.gpgcheck`,
    /// `NodeName[gpu01].CPUs`.
    pub key: String,
    pub value: String,
    pub file: String,
    pub line: usize,
    /// The INI section, for yum_repo.
    pub section: Option<String>,
    /// Inside an sshd `Match` block: not a global value.
    pub conditional: bool,
}

impl Entry {
    pub fn new(key: &str, value: String, file: &str, line: usize) -> Entry {
        Entry {
            key: key.to_string(),
            value,
            file: file.to_string(),
            line,
            section: None,
            conditional: false,
        }
    }

    /// `/etc/ssh/sshd_config:32`
    pub fn place(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// A parsed file (with its includes) and how lookups work in its format.
#[derive(Debug)]
pub struct Parsed {
    pub entries: Vec<Entry>,
    /// sshd: the first value wins; elsewhere the last.
    pub first_wins: bool,
    pub case_insensitive: bool,
}

impl Parsed {
    /// The value in force for `name` (conditional entries ignored).
    pub fn get(&self, name: &str) -> Option<&Entry> {
        let mut it = self
            .entries
            .iter()
            .filter(|e| !e.conditional && self.same(&e.key, name));
        if self.first_wins {
            it.next()
        } else {
            it.next_back()
        }
    }

    /// The first conditional (Match-block) entry for `name`.
    fn conditional(&self, name: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.conditional && self.same(&e.key, name))
    }

    fn same(&self, a: &str, b: &str) -> bool {
        if self.case_insensitive {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    }
}

/// Reads config files through the target for formats with `Include`:
/// detects loops and bounds the depth, and expands globs in the last path
/// component.
pub struct Files<'a> {
    t: &'a dyn Target,
    stack: Vec<String>,
    /// Every file read, in order.
    pub read: Vec<String>,
}

impl<'a> Files<'a> {
    pub fn new(t: &'a dyn Target) -> Files<'a> {
        Files {
            t,
            stack: Vec::new(),
            read: Vec::new(),
        }
    }

    /// Reads `path` as text and pushes it on the include stack; `from` is
    /// the `Include` line that led here.
    pub fn enter(&mut self, path: &str, from: Option<(&str, usize)>) -> Result<String, String> {
        let at = from.map_or_else(String::new, |(f, l)| format!("{f}:{l}: "));
        let canon = self
            .t
            .canonicalize(path)
            .unwrap_or_else(|_| path.to_string());
        if self.stack.contains(&canon) {
            let mut chain = self.stack.clone();
            chain.push(canon);
            return Err(format!("{at}Include loop: {}", chain.join(" -> ")));
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(format!(
                "{at}Includes nested deeper than {MAX_INCLUDE_DEPTH}"
            ));
        }
        let text = read_text(self.t, path).map_err(|e| format!("{at}{e}"))?;
        self.stack.push(canon);
        self.read.push(path.to_string());
        Ok(text)
    }

    pub fn leave(&mut self) {
        self.stack.pop();
    }

    /// The files an `Include pattern` names, relative to `base`, sorted;
    /// wildcards (`*`, `?`, `[…]`) only in the last component. A pattern
    /// that matches nothing names nothing (as glob(3) in sshd).
    pub fn expand(
        &self,
        pattern: &str,
        base: &str,
        at: (&str, usize),
    ) -> Result<Vec<String>, String> {
        let full = nodecheck_core::target::join(base, pattern);
        let (dir, last) = full.rsplit_once('/').unwrap_or(("", full.as_str()));
        let dir = if dir.is_empty() { "/" } else { dir };
        let wild = |s: &str| s.contains(['*', '?', '[']);
        if wild(dir) {
            return Err(format!(
                "{}:{}: Include {pattern}: wildcards are supported in the file name only",
                at.0, at.1
            ));
        }
        if !wild(last) {
            return Ok(match self.t.metadata(&full, true) {
                Ok(_) => vec![full],
                Err(e) if is_absent(&e) => Vec::new(),
                Err(e) => return Err(format!("{full}: {}", io_text(&e))),
            });
        }
        let glob = globset::GlobBuilder::new(last)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("{}:{}: Include {pattern}: {e}", at.0, at.1))?
            .compile_matcher();
        let entries = match self.t.read_dir(dir) {
            Ok(e) => e,
            Err(e) if is_absent(&e) => return Ok(Vec::new()),
            Err(e) => return Err(format!("{dir}: {}", io_text(&e))),
        };
        Ok(entries
            .into_iter()
            .filter(|e| {
                glob.is_match(&e.name) && (!e.name.starts_with('.') || last.starts_with('.'))
            })
            .map(|e| format!("{}/{}", dir.trim_end_matches('/'), e.name))
            .collect())
    }
}

/// A file's text, or an error naming it (unreadable, binary, not UTF-8).
pub fn read_text(t: &dyn Target, path: &str) -> Result<String, String> {
    let bytes = t
        .read(path, CONFIG_LIMIT)
        .map_err(|e| format!("{path}: {}", io_text(&e)))?;
    if bytes.contains(&0) {
        return Err(format!("{path}: not a text file (it contains NUL bytes)"));
    }
    String::from_utf8(bytes).map_err(|e| format!("{path}: not a text file (not UTF-8: {e})"))
}

/// The format named, or the one the path implies.
fn format_of(check: &Check) -> &str {
    if let Some(f) = check.str("format") {
        return f;
    }
    let path = check.subject.as_str();
    let base = path.rsplit('/').next().unwrap_or(path);
    if base.starts_with("sshd_config") || path.starts_with("/etc/ssh/sshd_config.d/") {
        "sshd"
    } else if base == "gres.conf" {
        "gres"
    } else if base == "plugstack.conf" || path.starts_with("/etc/slurm/plugstack.conf.d/") {
        "plugstack"
    } else if base == "singularity.conf" || base == "apptainer.conf" {
        "apptainer"
    } else if base == "slurm.conf" || base == "slurmdbd.conf" || base == "cgroup.conf" {
        "slurm"
    } else if base.ends_with(".repo") || base.ends_with(".ini") || base.ends_with(".cfg") {
        "ini"
    } else {
        "keyvalue"
    }
}

/// Parses a file of a format (with includes for sshd and slurm).
pub fn parse(t: &dyn Target, path: &str, format: &str) -> Result<(Parsed, Vec<String>), String> {
    let mut files = Files::new(t);
    let parsed = match format {
        "sshd" => sshd::parse(&mut files, path)?,
        "slurm" => slurm::parse(&mut files, path)?,
        "gres" => hpc::gres(&mut files, path)?,
        "plugstack" => hpc::plugstack(&mut files, path)?,
        "apptainer" => hpc::apptainer(path, &files.enter(path, None)?)?,
        "ini" => ini::ini(path, &files.enter(path, None)?)?,
        _ => ini::keyvalue(path, &files.enter(path, None)?)?,
    };
    Ok((parsed, files.read))
}

const KEYS: &[Key] = &[
    Key::new(
        "exists",
        Ty::Bool,
        "The file exists (default `true`). When it does not, `settings` is skipped.",
    ),
    Key::new(
        "format",
        Ty::Enum(FORMATS),
        "How to read the file. Default: `sshd` for sshd_config, `slurm` for slurm.conf, \
         `gres` for gres.conf, `plugstack` for plugstack.conf, `apptainer` for \
         apptainer.conf/singularity.conf, `ini` for `.repo`/`.ini`/`.cfg`, else `keyvalue`.",
    )
    .modifier(),
    Key::new(
        "when_unset",
        Ty::Enum(WHEN_UNSET),
        "What a setting the files do not set counts as: `default` (the default: the program's \
         compiled-in value where nodecheck knows it, sshd's; else a failure), `fail`, or `pass` \
         (only values written in the files are judged: `PasswordAuthentication = \"no\"` then \
         fails on an explicit `yes` and passes when unset).",
    )
    .modifier(),
    Key::new(
        "settings",
        Ty::MatcherMap(Compare::Version),
        "Setting name = value or matcher: `{ PermitRootLogin = { ne = \"yes\" }, MaxAuthTries = \
         { le = \"4\" } }`. Each is reported on its own, with the file and line it comes from.",
    ),
];

const DOC: &str = r#"## What it checks

Settings of a configuration file, read the way the program that owns it
reads it. Each setting is a result of its own; a wrong one names the file
and line that set it: `PermitRootLogin: expected not yes, got yes
(/etc/ssh/sshd_config:32)`.

Formats:

- **`sshd`** (sshd_config(5)): keywords are case-insensitive and the
  **first** value wins; `Keyword value` and `Keyword=value` both work;
  `Include` is honoured where it stands (globs relative to /etc/ssh, in
  name order: Debian's `Include /etc/ssh/sshd_config.d/*.conf` on line 1
  makes those files win); settings inside a `Match` block (to the next
  `Match` or the end of its file) are conditional and never the global
  value. sshd's flag words are case-insensitive (`Yes` is `yes`). A
  keyword the files do not set takes **sshd's compiled-in default** for
  the keywords hardening profiles ask about (`PermitRootLogin`
  `prohibit-password`, `PasswordAuthentication` `yes`, `X11Forwarding`
  `no`, `MaxAuthTries` `6`, `PermitEmptyPasswords` `no`, `UsePAM` `no`,
  …), and the message says the value is the default; any other unset
  keyword fails as not set.
- **`slurm`** (slurm.conf(5)): parameter names are case-insensitive, a line
  holds several `Key=Value` pairs (quotes allowed), `#` starts a comment,
  a trailing `\` continues the line, `Include` files are read where they
  stand (relative to the main file's directory), and the last value wins.
  `NodeName`, `PartitionName`, `NodeSet`, `DownNodes`, `FrontendName` and
  `SwitchName` lines are records: `NodeName=gpu01 CPUs=64` is checked as
  `"NodeName[gpu01]" = "gpu01"` and `"NodeName[gpu01].CPUs" = "64"` (the
  name as written, hostlist expressions included).
- **`gres`** (gres.conf(5)): read like `slurm`, but every line is a
  record and a node may have several (one per GPU type or device file):
  `NodeName=gpu[01-02] Name=gpu Type=a100 File=/dev/nvidia0` gives
  `NodeName[gpu01].Name`, `NodeName[gpu01].File`, … for **each node of the
  hostlist**, and a key set by several lines for the same node keeps every
  value, one per line, in file order (check one with
  `{ matches = "^/dev/nvidia1$" }`, multi-line). Lines without `NodeName`
  give plain `Name`, `File`, … entries, also keeping every value.
- **`plugstack`** (spank(8), plugstack.conf): `required PLUGIN [ARGS]`,
  `optional PLUGIN [ARGS]` and `include PATTERN` (globs, relative to the
  file's directory) lines. Each plugin is a setting named by its path as
  written and by its file name (`"container_singularity.so" = "required"`),
  whose value is `required` or `optional`; `NAME.args` holds its
  arguments.
- **`apptainer`** (apptainer.conf, singularity.conf): `key = value` lines
  whose keys hold spaces (`"allow setuid" = "no"`, `"mount hostfs" =
  "no"`); keys compare without case and with runs of blanks as one. A key
  on several lines (`bind path`) keeps every value, one per line. No
  compiled-in defaults: an unset key fails as not set.
- **`ini`**: `[section]` headers, `key = value` or `key: value`, `#`/`;`
  comments, indented continuation lines; keys are named
  `section.key` (`main.gpgcheck`); the last value wins.
- **`keyvalue`**: `key=value`, `key = value`, `key: value` or
  `key value` lines (`/etc/default/*`, os-release, login.defs), `export`
  and surrounding quotes dropped; the last value wins.

`when_unset` says what a setting the files do not set counts as:
`default` (sshd's compiled-in value as above, else a failure), `fail`, or
`pass`, where only written values are judged. A bundled default waiver
uses it to waive exactly the stock state: the waived control asks for the
effective `PasswordAuthentication no`, and an unwaived control with
`when_unset = "pass"` fails when a file sets `PasswordAuthentication yes`.

Bad input is an *error* naming the file: an `Include` loop or nesting
deeper than 16 (with the chain of files), a binary or non-UTF-8 file, a
line the format cannot have (with its line number).

## Example

```toml
[[control]]
id    = "sshd-hardening"
title = "sshd refuses root passwords and password logins"

  [[control.config]]
  path     = "/etc/ssh/sshd_config"
  settings = { PermitRootLogin = { ne = "yes" }, PasswordAuthentication = "no", MaxAuthTries = { le = "4" } }

[[control]]
id    = "slurm-conf"
title = "slurm.conf tracks processes with cgroups"

  [[control.config]]
  path     = "/etc/slurm/slurm.conf"
  settings = { ProctrackType = "proctrack/cgroup", "NodeName[gpu01].Gres" = "gpu:4" }

[[control]]
id    = "apptainer-no-setuid"
title = "Apptainer runs without setuid and cannot mount the host's root"

  [[control.config]]
  path     = "/etc/apptainer/apptainer.conf"
  settings = { "allow setuid" = "no", "mount hostfs" = "no" }

[[control]]
id    = "spank-container"

  [[control.config]]
  path     = "/etc/slurm/plugstack.conf"
  settings = { "container_singularity.so" = "required" }
```

## Targets

Every target.
"#;

impl Kind for Config {
    fn name(&self) -> &'static str {
        "config"
    }

    fn subject(&self) -> Key {
        Key::new(
            "path",
            Ty::Str,
            "The configuration file (its includes are followed).",
        )
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn validate(&self, check: &Check) -> Vec<Diagnostic> {
        if check.bool("exists") == Some(false) && check.prop("settings").is_some() {
            return vec![eval::diagnostic(
                check,
                "settings",
                "conflicting-keys",
                "`settings` cannot be checked together with `exists = false`".into(),
            )];
        }
        Vec::new()
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let path = check.subject.as_str();
        let t = cx.target;
        let mut out = Vec::new();
        let exists = check.bool("exists");
        match t.metadata(path, true) {
            Ok(_) => {
                if exists == Some(true) {
                    out.push(PropertyResult::verdict(
                        "exists",
                        true,
                        format!("exists: {path} exists"),
                    ));
                }
                if exists == Some(false) {
                    out.push(PropertyResult::compare("exists", false, "false", "true"));
                    return out.into();
                }
            }
            Err(e) if is_absent(&e) => {
                let ok = exists == Some(false);
                let mut r =
                    PropertyResult::verdict("exists", ok, format!("exists: {path} does not exist"));
                if !ok {
                    r = r.with_expected("true").with_actual("false");
                }
                out.push(r);
                out.extend(eval::skip_rest(
                    check,
                    &["exists"],
                    &format!("{path} does not exist"),
                ));
                return out.into();
            }
            Err(e) => {
                out.push(PropertyResult::error(
                    "exists",
                    format!("exists: {path}: {}", io_text(&e)),
                ));
                out.extend(eval::skip_rest(
                    check,
                    &["exists"],
                    &format!("{path} could not be read"),
                ));
                return out.into();
            }
        }
        let Some(settings) = check.matchers("settings") else {
            return out.into();
        };
        let format = format_of(check);
        let (parsed, files) = match parse(t, path, format) {
            Ok(p) => p,
            Err(e) => {
                out.push(PropertyResult::error("settings", format!("settings: {e}")));
                return out.into();
            }
        };
        let when_unset = check.str("when_unset").unwrap_or("default");
        for s in settings {
            out.push(setting(s, &parsed, format, &files, when_unset));
        }
        Evaluation {
            properties: out,
            output: format!("read as {format}: {}\n", files.join(", ")),
        }
    }
}

/// One setting's result: `Name: expected X, got Y (file:line)`.
fn setting(
    s: &NamedMatcher,
    parsed: &Parsed,
    format: &str,
    files: &[String],
    when_unset: &str,
) -> PropertyResult {
    let key = format!("settings.{}", s.name);
    let expected = s.matcher.describe();
    let result = |ok: bool, actual: String, message: String| {
        PropertyResult::verdict(key.clone(), ok, message)
            .with_expected(expected.clone())
            .with_actual(actual)
    };
    if let Some(e) = parsed.get(&s.name) {
        let ok = s.matcher.test(Actual::Str(&e.value));
        return result(
            ok,
            e.value.clone(),
            format!(
                "{}: expected {expected}, got {} ({})",
                s.name,
                e.value,
                e.place()
            ),
        );
    }
    let mut why = format!("not set in {}", files.join(", "));
    if let Some(c) = parsed.conditional(&s.name) {
        why.push_str(&format!(
            "; {} sets it only inside a Match block",
            c.place()
        ));
    }
    if when_unset == "pass" {
        return PropertyResult::verdict(
            key.clone(),
            true,
            format!(
                "{}: {why} (when_unset = \"pass\": only written values are judged)",
                s.name
            ),
        )
        .with_expected(expected);
    }
    if format == "sshd" && when_unset == "default" {
        let lower = s.name.to_ascii_lowercase();
        if let Some((_, default)) = sshd::DEFAULTS.iter().find(|(k, _)| *k == lower) {
            let ok = s.matcher.test(Actual::Str(default));
            return result(
                ok,
                default.to_string(),
                format!(
                    "{}: expected {expected}, got {default} (sshd's default: {why})",
                    s.name
                ),
            );
        }
    }
    PropertyResult::verdict(
        key.clone(),
        false,
        format!("{}: expected {expected}, but it is {why}", s.name),
    )
    .with_expected(expected)
}

#[cfg(test)]
mod tests;
