//! Reading systemd units from a target's files, the way systemd and
//! `systemctl` do offline: the unit search path, alias symlinks, template
//! instances, drop-ins, masks, the `[Install]` section and the
//! `.wants/`/`.requires/` links that enable a unit.

use std::collections::BTreeSet;
use std::io;

use nodecheck_core::target::{FileType, Target};

use crate::eval::{io_text, is_absent};

/// Where systemd (system manager) looks for unit files, highest priority
/// first (systemd.unit(5), "System Unit Search Path"). `/lib/systemd/system`
/// is where Debian and Ubuntu without merged /usr keep their units.
pub const SEARCH_PATH: &[&str] = &[
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/run/systemd/generator.late",
];

/// Directories whose `.wants/`, `.requires/`, `.upholds/` and alias links
/// are what `systemctl enable` writes: persistent, then runtime.
const CONFIG_DIRS: &[&str] = &["/etc/systemd/system", "/run/systemd/system"];

/// Unit file size limit: unit files are a few KiB; a larger one is garbage.
const UNIT_LIMIT: u64 = 4 << 20;

/// The unit types systemd knows, as name suffixes.
const SUFFIXES: &[&str] = &[
    "service",
    "socket",
    "target",
    "timer",
    "mount",
    "automount",
    "path",
    "slice",
    "scope",
    "swap",
    "device",
];

/// `munge` → `munge.service`; a name with a unit suffix is kept.
pub fn unit_name(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((_, suffix)) if SUFFIXES.contains(&suffix) => name.to_string(),
        _ => format!("{name}.service"),
    }
}

/// `getty@tty1.service` → `getty@.service`; `None` for a non-instance.
pub fn template_of(name: &str) -> Option<String> {
    let (prefix, rest) = name.split_once('@')?;
    let (instance, suffix) = rest.rsplit_once('.')?;
    (!instance.is_empty()).then(|| format!("{prefix}@.{suffix}"))
}

/// A parse error in a unit file: `file:line: what`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

/// The `[Install]` section of a unit file (drop-ins are not consulted,
/// as `systemctl enable` does not).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Install {
    pub wanted_by: Vec<String>,
    pub required_by: Vec<String>,
    pub upheld_by: Vec<String>,
    pub alias: Vec<String>,
    pub also: Vec<String>,
    pub default_instance: Option<String>,
}

impl Install {
    /// Whether the section asks for anything to be linked (otherwise the
    /// unit is *static* or *indirect*).
    pub fn links_something(&self) -> bool {
        !(self.wanted_by.is_empty()
            && self.required_by.is_empty()
            && self.upheld_by.is_empty()
            && self.alias.is_empty())
    }

    /// `WantedBy=multi-user.target` and friends, for messages.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (key, v) in [
            ("WantedBy", &self.wanted_by),
            ("RequiredBy", &self.required_by),
            ("UpheldBy", &self.upheld_by),
            ("Alias", &self.alias),
            ("Also", &self.also),
        ] {
            if !v.is_empty() {
                parts.push(format!("{key}={}", v.join(" ")));
            }
        }
        parts.join(", ")
    }
}

/// Parses a unit file's text (systemd.syntax(7)): `[Section]` headers,
/// `Key=Value` lines, `#`/`;` comments, trailing-backslash continuations.
/// Returns the `[Install]` section. A line systemd would reject (no `=`,
/// an assignment before any section, a malformed header) or a file that
/// is not UTF-8 text is an error naming the file and line.
pub fn parse(path: &str, bytes: &[u8]) -> Result<Install, ParseError> {
    let err = |line: usize, what: &str| ParseError(format!("{path}:{line}: {what}"));
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ParseError(format!("{path}: not a unit file: not UTF-8 text ({e})")))?;
    if text.contains('\0') {
        return Err(ParseError(format!(
            "{path}: not a unit file: it contains NUL bytes"
        )));
    }
    let mut install = Install::default();
    let mut section: Option<String> = None;
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, raw)) = lines.next() {
        let lineno = i + 1;
        let mut line = raw.trim().to_string();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        // Continuations: a trailing backslash joins the next line (comment
        // lines inside a continuation are skipped, as systemd does).
        while line.ends_with('\\') {
            line.pop();
            line.push(' ');
            match lines.next() {
                Some((_, next)) => {
                    let next = next.trim();
                    if next.starts_with('#') || next.starts_with(';') {
                        continue;
                    }
                    line.push_str(next);
                }
                None => break,
            }
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(err(lineno, &format!("malformed section header {line:?}")));
            };
            if name.is_empty() || name.contains(['[', ']']) {
                return Err(err(lineno, &format!("malformed section header {line:?}")));
            }
            section = Some(name.to_string());
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(err(
                lineno,
                &format!("expected Key=Value or [Section], got {:?}", short(&line)),
            ));
        };
        let key = key.trim();
        let value = value.trim();
        let Some(section) = &section else {
            return Err(err(
                lineno,
                &format!("assignment {key}= outside of any [Section]"),
            ));
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(err(lineno, &format!("malformed key {:?}", short(key))));
        }
        if section != "Install" {
            continue;
        }
        let list = match key {
            "WantedBy" => &mut install.wanted_by,
            "RequiredBy" => &mut install.required_by,
            "UpheldBy" => &mut install.upheld_by,
            "Alias" => &mut install.alias,
            "Also" => &mut install.also,
            "DefaultInstance" => {
                install.default_instance = (!value.is_empty()).then(|| value.to_string());
                continue;
            }
            _ => continue,
        };
        // An empty assignment resets the list, as in systemd.
        if value.is_empty() {
            list.clear();
        } else {
            list.extend(value.split_whitespace().map(str::to_string));
        }
    }
    Ok(install)
}

fn short(s: &str) -> String {
    let mut t: String = s.chars().take(60).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

/// Where a unit name led.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// A unit file (`fragment`, the file after every link) whose real name
    /// is `id` (differs from the asked name for an alias).
    File { id: String, fragment: String },
    /// Linked to /dev/null (or an empty file) at `at`.
    Masked { at: String },
    /// No unit, but a SysV init script that systemd-sysv-generator turns
    /// into one.
    SysV { script: String },
    /// A link in the search path whose target does not exist.
    Dangling { at: String, to: String },
    /// Nothing.
    Missing,
}

/// A unit as looked up on the target.
#[derive(Clone, Debug)]
pub struct Unit {
    /// The asked name, with its suffix: `sshd.service`.
    pub name: String,
    /// Where the name was found in the search path (a link for aliases).
    pub found_at: Option<String>,
    pub found: Found,
    /// `getty@.service` when the file is a template for an instance.
    pub template: Option<String>,
    /// Drop-in files that apply, in the order systemd reads them.
    pub dropins: Vec<String>,
}

/// Looks a unit up as systemd does: the first directory of the search path
/// holding the name wins; a link there to /dev/null masks it; a link to
/// another name makes it an alias; an instance falls back to its template.
pub fn find(t: &dyn Target, name: &str) -> io::Result<Unit> {
    let name = unit_name(name);
    let template = template_of(&name);
    let mut unit = Unit {
        name: name.clone(),
        found_at: None,
        found: Found::Missing,
        template: None,
        dropins: Vec::new(),
    };
    let mut candidates = vec![name.clone()];
    candidates.extend(template.clone());
    'search: for cand in &candidates {
        for dir in SEARCH_PATH {
            let path = format!("{dir}/{cand}");
            let meta = match t.metadata(&path, false) {
                Ok(m) => m,
                Err(e) if is_absent(&e) => continue,
                Err(e) => return Err(io::Error::new(e.kind(), format!("{path}: {}", io_text(&e)))),
            };
            unit.found_at = Some(path.clone());
            if Some(cand) == template.as_ref() {
                unit.template = Some(cand.clone());
            }
            unit.found = resolve(t, &path, meta.file_type, meta.size, cand)?;
            break 'search;
        }
    }
    if unit.found == Found::Missing {
        unit.found = by_alias(t, &name)?;
    }
    if unit.found == Found::Missing && name.ends_with(".service") {
        let base = name.trim_end_matches(".service");
        let script = format!("/etc/init.d/{base}");
        match t.metadata(&script, true) {
            Ok(m) if m.file_type == FileType::File => unit.found = Found::SysV { script },
            Ok(_) => {}
            Err(e) if is_absent(&e) => {}
            Err(e) => return Err(e),
        }
    }
    if let Found::File { id, .. } = &unit.found {
        unit.dropins = dropins(t, &name, id, unit.template.as_deref())?;
    }
    Ok(unit)
}

/// A unit whose `[Install] Alias=` names `name` although no alias link
/// exists (`sshd.service` after `systemctl disable ssh` removed the
/// link): the name is still that unit's, only disabled.
fn by_alias(t: &dyn Target, name: &str) -> io::Result<Found> {
    let suffix = name.rsplit('.').next().unwrap_or("service");
    let mut seen = BTreeSet::new();
    for dir in SEARCH_PATH {
        let entries = match t.read_dir(dir) {
            Ok(e) => e,
            Err(e) if is_absent(&e) => continue,
            Err(e) => return Err(e),
        };
        for e in entries {
            if e.file_type != FileType::File
                || !e.name.ends_with(&format!(".{suffix}"))
                || !seen.insert(e.name.clone())
            {
                continue;
            }
            let path = format!("{dir}/{}", e.name);
            // Unreadable or broken units cannot declare an alias.
            if let Ok(install) = install(t, &path)
                && install.alias.iter().any(|a| a == name)
            {
                return Ok(Found::File {
                    id: e.name,
                    fragment: path,
                });
            }
        }
    }
    Ok(Found::Missing)
}

fn resolve(t: &dyn Target, path: &str, ty: FileType, size: u64, asked: &str) -> io::Result<Found> {
    if ty != FileType::Symlink {
        if size == 0 && ty == FileType::File {
            return Ok(Found::Masked { at: path.into() });
        }
        return Ok(Found::File {
            id: asked.to_string(),
            fragment: path.to_string(),
        });
    }
    let raw = t.read_link(path)?;
    if raw == "/dev/null" {
        return Ok(Found::Masked { at: path.into() });
    }
    let real = match t.canonicalize(path) {
        Ok(r) => r,
        Err(e) if is_absent(&e) => {
            return Ok(Found::Dangling {
                at: path.into(),
                to: raw,
            });
        }
        Err(e) => return Err(e),
    };
    if real == "/dev/null" {
        return Ok(Found::Masked { at: path.into() });
    }
    let meta = t.metadata(&real, false)?;
    if meta.file_type == FileType::Char {
        return Ok(Found::Masked { at: path.into() });
    }
    if meta.file_type == FileType::File && meta.size == 0 {
        return Ok(Found::Masked { at: path.into() });
    }
    let base = real.rsplit('/').next().unwrap_or(&real).to_string();
    // A link to a file of another name is an alias of that unit; a link of
    // the same name (`systemctl link`) is the unit itself.
    Ok(Found::File {
        id: base,
        fragment: real,
    })
}

/// Drop-in `.conf` files for a unit: `NAME.d/`, the template's
/// `prefix@.service.d/`, the real name's when aliased, and the type-wide
/// `service.d/`; a file name in a higher-priority directory hides the same
/// name below it; applied in file-name order.
fn dropins(
    t: &dyn Target,
    name: &str,
    id: &str,
    template: Option<&str>,
) -> io::Result<Vec<String>> {
    let suffix = name.rsplit('.').next().unwrap_or("service");
    let mut dirs = vec![format!("{suffix}.d")];
    for n in [Some(id), template, Some(name)].into_iter().flatten() {
        let d = format!("{n}.d");
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    let mut seen = BTreeSet::new();
    let mut files: Vec<(String, String)> = Vec::new();
    for dir in SEARCH_PATH {
        for sub in &dirs {
            let d = format!("{dir}/{sub}");
            let entries = match t.read_dir(&d) {
                Ok(e) => e,
                Err(e) if is_absent(&e) => continue,
                Err(e) => return Err(e),
            };
            for e in entries {
                if e.name.ends_with(".conf") && seen.insert(e.name.clone()) {
                    files.push((e.name.clone(), format!("{d}/{}", e.name)));
                }
            }
        }
    }
    files.sort();
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

/// Reads and parses a unit file, for its `[Install]` section.
pub fn install(t: &dyn Target, fragment: &str) -> Result<Install, ParseError> {
    let bytes = t
        .read(fragment, UNIT_LIMIT)
        .map_err(|e| ParseError(format!("{fragment}: {}", io_text(&e))))?;
    parse(fragment, &bytes)
}

/// A link that enables a unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// `/etc/systemd/system/multi-user.target.wants/munge.service`
    pub path: String,
}

/// Every `.wants/`, `.requires/`, `.upholds/` link named after one of
/// `names` (an instance name matches itself; a template `x@.service` any
/// of its instances) in the directories `systemctl enable` writes to.
/// Links a package ships in /usr/lib/systemd/system are not counted, as
/// `systemctl is-enabled` does not count them.
pub fn wants_links(t: &dyn Target, names: &[String]) -> io::Result<Vec<Link>> {
    let mut out = Vec::new();
    {
        for dir in CONFIG_DIRS {
            let entries = match t.read_dir(dir) {
                Ok(e) => e,
                Err(e) if is_absent(&e) => continue,
                Err(e) => return Err(e),
            };
            for e in entries {
                let wants = [".wants", ".requires", ".upholds"]
                    .iter()
                    .any(|s| e.name.ends_with(s));
                if !wants || e.file_type != FileType::Directory {
                    continue;
                }
                let sub = format!("{dir}/{}", e.name);
                let links = match t.read_dir(&sub) {
                    Ok(l) => l,
                    Err(err) if is_absent(&err) => continue,
                    Err(err) => return Err(err),
                };
                for l in links {
                    if names.iter().any(|n| link_names(n, &l.name)) {
                        out.push(Link {
                            path: format!("{sub}/{}", l.name),
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

fn link_names(unit: &str, link: &str) -> bool {
    if unit == link {
        return true;
    }
    // A template is enabled through any of its instances.
    match unit.split_once("@.") {
        Some((prefix, suffix)) => {
            link.starts_with(&format!("{prefix}@")) && link.ends_with(&format!(".{suffix}"))
        }
        None => false,
    }
}

/// Alias links in the config directories (`sshd.service -> ssh.service`)
/// that resolve to `fragment`.
pub fn alias_links(t: &dyn Target, fragment: &str, id: &str) -> io::Result<Vec<Link>> {
    let mut out = Vec::new();
    for dir in CONFIG_DIRS {
        let entries = match t.read_dir(dir) {
            Ok(e) => e,
            Err(e) if is_absent(&e) => continue,
            Err(e) => return Err(e),
        };
        for e in entries {
            if e.file_type != FileType::Symlink || e.name == id {
                continue;
            }
            let path = format!("{dir}/{}", e.name);
            if t.canonicalize(&path).ok().as_deref() == Some(fragment) {
                out.push(Link { path });
            }
        }
    }
    Ok(out)
}

/// `/etc/rc[2-5].d/S??name` links that start a SysV script at boot (what
/// systemd-sysv-generator turns into `multi-user.target` wants).
pub fn sysv_links(t: &dyn Target, base: &str) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for level in 2..=5 {
        let dir = format!("/etc/rc{level}.d");
        let entries = match t.read_dir(&dir) {
            Ok(e) => e,
            Err(e) if is_absent(&e) => continue,
            Err(e) => return Err(e),
        };
        for e in entries {
            let Some(rest) = e.name.strip_prefix('S') else {
                continue;
            };
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 && &rest[digits..] == base {
                out.push(format!("{dir}/{}", e.name));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_templates() {
        assert_eq!(unit_name("munge"), "munge.service");
        assert_eq!(unit_name("munge.service"), "munge.service");
        assert_eq!(unit_name("fstrim.timer"), "fstrim.timer");
        assert_eq!(unit_name("dbus.org.x"), "dbus.org.x.service");
        assert_eq!(
            template_of("getty@tty1.service").as_deref(),
            Some("getty@.service")
        );
        assert_eq!(template_of("getty@.service"), None);
        assert_eq!(template_of("munge.service"), None);
        assert!(link_names("getty@.service", "getty@tty1.service"));
        assert!(!link_names("getty@.service", "serial-getty@ttyS0.service"));
    }

    #[test]
    fn install_section_with_resets_and_continuations() {
        let text = "# comment\n[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/a \\\n  --flag\n\
                    [Install]\nWantedBy=multi-user.target\nWantedBy=\nWantedBy=graphical.target default.target\n\
                    Alias=sshd.service\nAlso=ssh.socket\n";
        let i = parse("/u", text.as_bytes()).unwrap();
        assert_eq!(i.wanted_by, ["graphical.target", "default.target"]);
        assert_eq!(i.alias, ["sshd.service"]);
        assert_eq!(i.also, ["ssh.socket"]);
        assert!(i.links_something());
        assert_eq!(
            i.describe(),
            "WantedBy=graphical.target default.target, Alias=sshd.service, Also=ssh.socket"
        );
        assert!(
            !parse("/u", b"[Unit]\nDescription=static\n")
                .unwrap()
                .links_something()
        );
    }

    #[test]
    fn garbage_is_an_error_naming_file_and_line() {
        assert_eq!(
            parse("/u", b"[Unit]\nthis is not a unit\n").unwrap_err().0,
            "/u:2: expected Key=Value or [Section], got \"this is not a unit\""
        );
        assert_eq!(
            parse("/u", b"Description=x\n").unwrap_err().0,
            "/u:1: assignment Description= outside of any [Section]"
        );
        assert_eq!(
            parse("/u", b"[Unit\n").unwrap_err().0,
            "/u:1: malformed section header \"[Unit\""
        );
        assert!(
            parse("/u", b"\x7fELF\x02\x01\x01\0\0")
                .unwrap_err()
                .0
                .contains("NUL")
        );
        assert!(
            parse("/u", b"[Unit]\n\xff\xfe")
                .unwrap_err()
                .0
                .contains("not UTF-8")
        );
    }
}
