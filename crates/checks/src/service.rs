//! `service`: a systemd unit, read from the target's unit files and links.

mod unit;

use nodecheck_core::kind::{Key, Kind, Ty};
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::run::Context;
use nodecheck_core::target::{FileType, Need, Target};

use crate::eval::{self, io_text, is_absent};
use unit::{Found, Install, Unit};

pub struct Service;

const KEYS: &[Key] = &[
    Key::new(
        "exists",
        Ty::Bool,
        "A unit file (or SysV init script) exists for the name (default `true`). When it \
         does not, every other property is skipped.",
    ),
    Key::new(
        "required",
        Ty::Bool,
        "Default `true`. `false`: a unit the image does not have at all is *skipped* (\"not \
         installed\"), for daemons that only some images ship (`slurmd` \"where installed\"); \
         one that is there is checked as usual, and a `.wants/` link to a missing unit still \
         fails.",
    )
    .modifier(),
    Key::new(
        "enabled",
        Ty::Bool,
        "The unit starts at boot: a `.wants/`/`.requires/` link names it, or it is static, \
         generated or started by an `Also=` unit that is enabled. A masked unit is not enabled.",
    ),
    Key::new(
        "masked",
        Ty::Bool,
        "The unit name is linked to /dev/null (or an empty file) ahead of its unit file.",
    ),
    Key::new(
        "active",
        Ty::Bool,
        "The unit has running processes in its control group (needs systemd running).",
    )
    .needs(Need::Live),
];

const DOC: &str = r#"## What it checks

A systemd unit, found the way systemd finds it, from the target's files
alone: no `systemctl`, no D-Bus, so an image that was never booted can be
checked. The name may omit `.service` (`munge` is `munge.service`).

- **Lookup**: the first directory of systemd's unit search path holding the
  name wins (`/etc/systemd/system`, `/run/systemd/system`,
  `/usr/local/lib/systemd/system`, `/usr/lib/systemd/system`,
  `/lib/systemd/system`, and the control, transient and generator
  directories). A link there to a file of another name is an *alias*
  (`sshd.service -> ssh.service` checks `ssh.service`); an instance such as
  `getty@tty1.service` falls back to its template `getty@.service`.
  Drop-ins (`NAME.d/*.conf`, the template's and `service.d/`) are listed in
  the check's output.
- **`masked`**: the name is linked to `/dev/null` (or is an empty file) in a
  directory that comes before the unit file.
- **`enabled`** answers "will it start at boot", from the unit's `[Install]`
  section and the links in the image:
  - a `*.wants/`, `*.requires/` or `*.upholds/` link named after the unit
    (or one of its aliases, or for a template any instance) in
    `/etc/systemd/system` or `/run/systemd/system` (what `systemctl enable`
    writes): **enabled**. Links a package ships in
    `/usr/lib/systemd/system/*.wants/` are not counted, as
    `systemctl is-enabled` does not count them;
  - an `[Install]` section with only `Alias=` and an alias link in
    `/etc/systemd/system`: **enabled**;
  - no `WantedBy=`/`RequiredBy=`/`UpheldBy=`/`Alias=` at all: **static**
    (started only as another unit's dependency), which counts as enabled as
    `systemctl is-enabled` counts it; with `Also=`, the unit is enabled
    when one of the `Also=` units is (socket activation);
  - a unit generated under `/run/systemd/generator*`: enabled;
  - otherwise **disabled**, and the message says which link is missing.

  `enabled = false` passes for a masked unit. On the reference Debian
  image this agrees with `systemctl --root=IMAGE is-enabled` (exit
  status) for every unit file but two deliberate cases: an alias name
  (`sshd.service`, `ctrl-alt-del.target`) reports the state of the unit it
  names, where systemctl just says `alias`; and a unit with only `Also=`
  is enabled when an `Also=` unit is, where systemctl always says
  `indirect` (exit 0).
- **SysV**: when no unit file exists but `/etc/init.d/NAME` does, the check
  reports the SysV script (systemd-sysv-generator makes a unit of it);
  it is enabled when an `/etc/rc[2-5].d/S??NAME` link exists.
- A name with no unit file while a `.wants/` link still names it is
  reported as missing with that link, and so is an alias link whose target
  is gone.
- A unit file that is not a unit file (binary, a line that is neither
  `Key=Value` nor `[Section]`) makes `enabled` an *error* naming the file
  and line; `exists` and `masked` do not need its content.
- **`active`** (live node only) needs systemd running
  (`/run/systemd/system` exists; otherwise the property is skipped saying
  so). Without `systemctl`, nodecheck reads the unit's control group: a
  unit is active when its cgroup (`/sys/fs/cgroup/…/NAME`, unified or the
  v1 `systemd` hierarchy) holds a process. That is what `systemctl
  is-active` says for daemons; a `Type=oneshot` unit with
  `RemainAfterExit=yes` has no process left and reads as inactive.

## Example

```toml
[[control]]
id    = "slurm-services"
title = "munge and slurmd start at boot"

  [[control.service]]
  name    = ["munge", "slurmd"]
  enabled = true
  masked  = false
  active  = true

  [[control.service]]
  name   = "debug-shell"
  enabled = false
```

## Targets

Every target; `active` only on a live node (skipped elsewhere with "needs
a live node").
"#;

impl Kind for Service {
    fn name(&self) -> &'static str {
        "service"
    }

    fn subject(&self) -> Key {
        Key::new(
            "name",
            Ty::Str,
            "The unit: `munge` (= `munge.service`), `fstrim.timer`, `getty@tty1.service`.",
        )
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn validate(&self, check: &Check) -> Vec<Diagnostic> {
        let mut out = eval::exists_false_conflicts(check, "service");
        let name = check.subject.as_str();
        if name.contains('/') || name.starts_with('.') || name.chars().any(char::is_whitespace) {
            out.push(
                Diagnostic::error(
                    "bad-value",
                    format!("`{name}` is not a unit name (no `/`, blanks or leading `.`)"),
                )
                .at(check.location.clone()),
            );
        }
        out
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let t = cx.target;
        let unit = match unit::find(t, &check.subject) {
            Ok(u) => u,
            Err(e) => {
                let what = format!("service {}", check.subject);
                return match eval::presence(check, &what, eval::Presence::Unknown(io_text(&e))) {
                    Ok(r) | Err(r) => r.into(),
                };
            }
        };
        let mut output = describe(&unit);
        // Absent as an option, unless something still wants it: a wants/
        // link to a missing unit is a broken image either way.
        if check.bool("required") == Some(false)
            && matches!(unit.found, Found::Missing)
            && unit::wants_links(t, std::slice::from_ref(&unit.name))
                .unwrap_or_default()
                .is_empty()
        {
            let why = format!("service {} is not installed (required = false)", unit.name);
            return Evaluation {
                properties: eval::skip_rest(check, &[], &why),
                output,
            };
        }
        let mut out = match existence(check, t, &unit) {
            Ok(first) => first,
            Err(done) => {
                return Evaluation {
                    properties: done,
                    output,
                };
            }
        };
        for prop in eval::asserted(check, &["exists"]) {
            let Some(want) = check.bool(prop.key) else {
                continue;
            };
            let r = match prop.key {
                "masked" => {
                    let (masked, why) = match &unit.found {
                        Found::Masked { at } => (true, format!("{at} -> /dev/null")),
                        _ => (false, String::new()),
                    };
                    eval::boolean("masked", want, masked, &why)
                }
                "enabled" => match enabled(t, &unit, 0) {
                    Ok((on, why)) => {
                        output.push_str(&format!("enabled: {on} ({why})\n"));
                        eval::boolean("enabled", want, on, &why)
                    }
                    Err(e) => PropertyResult::error("enabled", format!("enabled: {e}")),
                },
                "active" => active(t, &unit, want),
                other => PropertyResult::error(other, format!("{other}: not a service property")),
            };
            out.push(r);
        }
        Evaluation {
            properties: out,
            output,
        }
    }
}

fn describe(u: &Unit) -> String {
    let mut s = format!("unit {}: ", u.name);
    match &u.found {
        Found::File { id, fragment } => {
            s.push_str(fragment);
            if *id != u.name && u.template.is_none() {
                s.push_str(&format!(" (alias of {id})"));
            }
            if let Some(t) = &u.template {
                s.push_str(&format!(" (instance of {t})"));
            }
        }
        Found::Masked { at } => s.push_str(&format!("masked by {at}")),
        Found::SysV { script } => s.push_str(&format!("SysV init script {script}")),
        Found::Dangling { at, to } => s.push_str(&format!("{at} -> {to}, which does not exist")),
        Found::Missing => s.push_str("not found"),
    }
    s.push('\n');
    for d in &u.dropins {
        s.push_str(&format!("drop-in {d}\n"));
    }
    s
}

/// The goss rule ([`eval::presence`]), with what systemd would say about
/// a missing unit.
fn existence(
    check: &Check,
    t: &dyn Target,
    u: &Unit,
) -> Result<Vec<PropertyResult>, Vec<PropertyResult>> {
    let what = format!("service {}", u.name);
    let found = match &u.found {
        Found::File { fragment, .. } => eval::Presence::Found(fragment.clone()),
        Found::Masked { at } => eval::Presence::Found(format!("masked by {at}")),
        Found::SysV { script } => eval::Presence::Found(format!("SysV init script {script}")),
        Found::Dangling { at, to } => {
            eval::Presence::Absent(format!("{at} links to {to}, which does not exist"))
        }
        Found::Missing => {
            let names = vec![u.name.clone()];
            let links = unit::wants_links(t, &names).unwrap_or_default();
            eval::Presence::Absent(match links.first() {
                Some(l) => {
                    let to = t.read_link(&l.path).unwrap_or_default();
                    format!("{} links to it ({to})", l.path)
                }
                None => String::new(),
            })
        }
    };
    eval::presence(check, &what, found)
}

/// Whether the unit starts at boot, and why.
fn enabled(t: &dyn Target, u: &Unit, depth: usize) -> Result<(bool, String), String> {
    match &u.found {
        Found::Masked { at } => Ok((false, format!("masked by {at}"))),
        Found::Dangling { .. } | Found::Missing => Ok((false, "not found".into())),
        Found::SysV { script } => {
            let base = u.name.trim_end_matches(".service");
            let links = unit::sysv_links(t, base).map_err(|e| io_text(&e))?;
            Ok(match links.first() {
                Some(l) => (true, format!("SysV script {script}, started by {l}")),
                None => (
                    false,
                    format!("SysV script {script} with no /etc/rc[2-5].d/S??{base} link"),
                ),
            })
        }
        Found::File { id, fragment } => {
            let install = unit::install(t, fragment).map_err(|e| e.0)?;
            let mut names = vec![u.name.clone()];
            if u.template.is_none() {
                names.push(id.clone());
                names.extend(install.alias.iter().cloned());
            }
            names.dedup();
            let links = unit::wants_links(t, &names).map_err(|e| io_text(&e))?;
            if let Some(l) = links.first() {
                return Ok((true, format!("enabled by {}", l.path)));
            }
            let aliases = unit::alias_links(t, fragment, id).map_err(|e| io_text(&e))?;
            let only_aliases = install.links_something()
                && install.wanted_by.is_empty()
                && install.required_by.is_empty()
                && install.upheld_by.is_empty();
            if only_aliases && let Some(a) = aliases.first() {
                return Ok((true, format!("enabled by the alias link {}", a.path)));
            }
            if fragment.starts_with("/run/systemd/generator") {
                return Ok((true, format!("generated: {fragment}")));
            }
            if !install.links_something() {
                return also(t, &install, fragment, depth);
            }
            let real = if u.template.is_none() { id } else { &u.name };
            Ok((false, disabled_reason(&install, real)))
        }
    }
}

fn also(
    t: &dyn Target,
    install: &Install,
    fragment: &str,
    depth: usize,
) -> Result<(bool, String), String> {
    if install.also.is_empty() {
        return Ok((
            true,
            format!("static: {fragment} has no [Install] WantedBy/RequiredBy/Alias"),
        ));
    }
    if depth >= 4 {
        return Ok((false, "Also= chain too deep".into()));
    }
    let mut off = Vec::new();
    for other in &install.also {
        let u = unit::find(t, other).map_err(|e| io_text(&e))?;
        let (on, why) = enabled(t, &u, depth + 1)?;
        if on {
            return Ok((true, format!("indirect: Also={other}, {why}")));
        }
        off.push(format!("{other}: {why}"));
    }
    Ok((
        false,
        format!(
            "indirect, and no Also= unit is enabled ({})",
            off.join("; ")
        ),
    ))
}

fn disabled_reason(install: &Install, name: &str) -> String {
    let mut wanted: Vec<String> = Vec::new();
    for (targets, dir) in [
        (&install.wanted_by, "wants"),
        (&install.required_by, "requires"),
        (&install.upheld_by, "upholds"),
    ] {
        for target in targets {
            wanted.push(format!("/etc/systemd/system/{target}.{dir}/{name}"));
        }
    }
    if wanted.is_empty() {
        format!("disabled: {}, but no alias link exists", install.describe())
    } else {
        format!(
            "disabled: {}, but no {} link",
            install.describe(),
            wanted.join(" or ")
        )
    }
}

/// `active` on a live node: systemd running, and the unit's cgroup
/// populated.
fn active(t: &dyn Target, u: &Unit, want: bool) -> PropertyResult {
    match t.metadata("/run/systemd/system", true) {
        Ok(m) if m.file_type == FileType::Directory => {}
        Ok(_) => return PropertyResult::skip("active", "systemd is not running on this node"),
        Err(e) if is_absent(&e) => {
            return PropertyResult::skip(
                "active",
                "systemd is not running on this node (no /run/systemd/system)",
            );
        }
        Err(e) => {
            return PropertyResult::error(
                "active",
                format!("active: /run/systemd/system: {}", io_text(&e)),
            );
        }
    }
    let id = match &u.found {
        Found::File { id, .. } if u.template.is_none() => id.clone(),
        _ => u.name.clone(),
    };
    match cgroup_populated(t, &id) {
        Ok(Some((on, at))) => eval::boolean("active", want, on, &at),
        Ok(None) => eval::boolean("active", want, false, &format!("no control group for {id}")),
        Err(e) => PropertyResult::error("active", format!("active: {e}")),
    }
}

/// Finds the unit's cgroup under the slices and says whether a process
/// runs in it (or below it).
fn cgroup_populated(t: &dyn Target, id: &str) -> Result<Option<(bool, String)>, String> {
    let unified = t
        .metadata("/sys/fs/cgroup/cgroup.controllers", true)
        .is_ok();
    let roots: &[&str] = if unified {
        &["/sys/fs/cgroup"]
    } else {
        &["/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"]
    };
    for root in roots {
        let Some(dir) = find_cgroup(t, root, id, 0) else {
            continue;
        };
        let events = format!("{dir}/cgroup.events");
        if let Ok(text) = t.read(&events, 1 << 16) {
            let text = String::from_utf8_lossy(&text);
            let on = text.lines().any(|l| l.trim() == "populated 1");
            return Ok(Some((
                on,
                format!(
                    "{events}: {}",
                    if on { "populated 1" } else { "populated 0" }
                ),
            )));
        }
        let procs = format!("{dir}/cgroup.procs");
        match t.read(&procs, 16 << 20) {
            Ok(b) => {
                let n = String::from_utf8_lossy(&b)
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .count();
                return Ok(Some((n > 0, format!("{procs}: {n} processes"))));
            }
            Err(e) => return Err(format!("{procs}: {}", io_text(&e))),
        }
    }
    Ok(None)
}

fn find_cgroup(t: &dyn Target, dir: &str, id: &str, depth: usize) -> Option<String> {
    let direct = format!("{dir}/system.slice/{id}");
    if depth == 0 && t.metadata(&direct, false).is_ok() {
        return Some(direct);
    }
    if depth > 3 {
        return None;
    }
    let entries = t.read_dir(dir).ok()?;
    for e in &entries {
        if e.file_type == FileType::Directory && e.name == id {
            return Some(format!("{dir}/{id}"));
        }
    }
    entries
        .iter()
        .filter(|e| e.file_type == FileType::Directory && e.name.ends_with(".slice"))
        .find_map(|e| find_cgroup(t, &format!("{dir}/{}", e.name), id, depth + 1))
}

#[cfg(test)]
mod tests;
