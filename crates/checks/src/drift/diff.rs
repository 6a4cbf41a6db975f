//! Comparing two snapshots by meaning first, each change with a risk
//! (rules in docs/diff.md, kept in [`RULES`]).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Serialize;

use super::{BPath, Entry, Snapshot};

/// How much a change matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Risk {
    pub const ALL: [Risk; 5] = [
        Risk::Info,
        Risk::Low,
        Risk::Medium,
        Risk::High,
        Risk::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Info => "info",
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
            Risk::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Risk> {
        Risk::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a change is about, in the order a report shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Packages,
    Kernels,
    Units,
    Accounts,
    Permissions,
    Linkage,
    Files,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::Packages,
        Category::Kernels,
        Category::Units,
        Category::Accounts,
        Category::Permissions,
        Category::Linkage,
        Category::Files,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Packages => "packages",
            Category::Kernels => "kernels",
            Category::Units => "units",
            Category::Accounts => "accounts",
            Category::Permissions => "permissions",
            Category::Linkage => "linkage",
            Category::Files => "files",
        }
    }
}

/// One change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    pub category: Category,
    pub risk: Risk,
    /// A stable short name of the rule that gave it (`setuid-gained`).
    pub rule: &'static str,
    /// What changed: a package, unit, account or path.
    pub subject: String,
    /// How: `1.2-3 → 1.2-4`, `mode 0755 → 0777`.
    pub detail: String,
    /// Bytes added (added or grown files), for the bloat summary.
    #[serde(skip_serializing_if = "is_zero")]
    pub bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Every rule: category, risk, name, what it means. docs/diff.md lists
/// them (a test keeps the page in step).
pub const RULES: &[(Category, Risk, &str, &str)] = &[
    (
        Category::Packages,
        Risk::High,
        "package-removed",
        "an installed package is gone",
    ),
    (
        Category::Packages,
        Risk::High,
        "package-downgraded",
        "a package has an older version",
    ),
    (
        Category::Packages,
        Risk::Medium,
        "package-added",
        "a package was installed",
    ),
    (
        Category::Packages,
        Risk::Low,
        "package-upgraded",
        "a package has a newer version",
    ),
    (
        Category::Kernels,
        Risk::High,
        "kernel-removed",
        "a kernel release is gone",
    ),
    (
        Category::Kernels,
        Risk::Medium,
        "kernel-added",
        "a kernel release was added",
    ),
    (
        Category::Kernels,
        Risk::High,
        "module-removed",
        "a kernel keeps its release but lost a module",
    ),
    (
        Category::Kernels,
        Risk::Low,
        "module-added",
        "a kernel keeps its release and gained a module",
    ),
    (
        Category::Units,
        Risk::High,
        "unit-disabled",
        "an enablement link of /etc/systemd/system is gone",
    ),
    (
        Category::Units,
        Risk::Medium,
        "unit-enabled",
        "a unit was enabled",
    ),
    (
        Category::Units,
        Risk::High,
        "unit-masked",
        "a unit was masked",
    ),
    (
        Category::Units,
        Risk::Medium,
        "unit-unmasked",
        "a unit was unmasked",
    ),
    (
        Category::Accounts,
        Risk::Critical,
        "uid0-added",
        "an account with uid 0 (other than root) appeared",
    ),
    (
        Category::Accounts,
        Risk::High,
        "account-added",
        "a user was added",
    ),
    (
        Category::Accounts,
        Risk::Medium,
        "account-removed",
        "a user was removed",
    ),
    (
        Category::Accounts,
        Risk::Critical,
        "uid-changed-owning-files",
        "a user's uid changed and files are owned by the old or new uid: they now belong to someone else",
    ),
    (
        Category::Accounts,
        Risk::High,
        "uid-changed",
        "a user's uid or primary gid changed",
    ),
    (
        Category::Accounts,
        Risk::Medium,
        "account-changed",
        "a user's home or shell changed",
    ),
    (
        Category::Accounts,
        Risk::Medium,
        "group-added",
        "a group was added",
    ),
    (
        Category::Accounts,
        Risk::Low,
        "group-removed",
        "a group was removed",
    ),
    (
        Category::Accounts,
        Risk::High,
        "privileged-member-added",
        "a user joined root, sudo, wheel, adm, shadow, disk or docker",
    ),
    (
        Category::Accounts,
        Risk::Medium,
        "group-changed",
        "a group's gid or members changed",
    ),
    (
        Category::Permissions,
        Risk::Critical,
        "setuid-gained",
        "a file is setuid that was not (new file or not)",
    ),
    (
        Category::Permissions,
        Risk::High,
        "setgid-gained",
        "a file is setgid that was not",
    ),
    (
        Category::Permissions,
        Risk::Critical,
        "capability-gained",
        "a file has file capabilities it did not have",
    ),
    (
        Category::Permissions,
        Risk::Medium,
        "setuid-lost",
        "a setuid/setgid file lost the bit or is gone",
    ),
    (
        Category::Permissions,
        Risk::Medium,
        "capability-lost",
        "a file lost its capabilities or is gone",
    ),
    (
        Category::Permissions,
        Risk::High,
        "world-writable-gained",
        "a file or directory (without sticky bit) became world-writable",
    ),
    (
        Category::Permissions,
        Risk::High,
        "owner-changed",
        "an entry kept its path but changed uid or gid",
    ),
    (
        Category::Permissions,
        Risk::Medium,
        "mode-loosened",
        "an entry gained permission bits",
    ),
    (
        Category::Permissions,
        Risk::Low,
        "mode-tightened",
        "an entry lost permission bits",
    ),
    (
        Category::Permissions,
        Risk::High,
        "unowned-gained",
        "an entry's uid or gid is no account of the image",
    ),
    (
        Category::Linkage,
        Risk::High,
        "linkage-broken",
        "an ELF program or library that loaded no longer does",
    ),
    (
        Category::Linkage,
        Risk::Info,
        "linkage-fixed",
        "an ELF file that did not load now does",
    ),
    (
        Category::Files,
        Risk::Medium,
        "config-changed",
        "a file under /etc changed content, link target or type",
    ),
    (
        Category::Files,
        Risk::Medium,
        "large-file-added",
        "a regular file of 64 MiB or more was added or grew past it",
    ),
    (
        Category::Files,
        Risk::Low,
        "file-removed",
        "an entry is gone (outside /etc)",
    ),
    (
        Category::Files,
        Risk::Low,
        "file-changed",
        "an entry outside /etc changed content, link target, type or device numbers",
    ),
    (
        Category::Files,
        Risk::Info,
        "file-added",
        "an entry was added",
    ),
    (
        Category::Files,
        Risk::Info,
        "mtime-changed",
        "only the modification time changed (shown with --all)",
    ),
];

const LD_SO_CACHE: &[u8] = b"/etc/ld.so.cache";

/// Files this large (added, or grown past it) are bloat worth a look.
pub const LARGE: u64 = 64 << 20;

/// Groups whose new members matter.
const PRIVILEGED_GROUPS: &[&str] = &["root", "sudo", "wheel", "adm", "shadow", "disk", "docker"];

fn rule(name: &str) -> (Category, Risk) {
    RULES
        .iter()
        .find(|r| r.2 == name)
        .map_or((Category::Files, Risk::Info), |r| (r.0, r.1))
}

/// What changes on every rebuild without meaning anything: ignored unless
/// `--all`. docs/diff.md explains each.
pub const DEFAULT_IGNORE: &[&str] = &[
    "/etc/machine-id",
    "/var/lib/dbus/machine-id",
    "/etc/ssh/ssh_host_*",
    "/etc/munge/munge.key",
    "/var/log/**",
    "/var/cache/**",
    "/var/lib/apt/lists/**",
    "/var/lib/systemd/random-seed",
    "/var/lib/systemd/catalog/database",
    "/var/lib/dpkg/*-old",
    "/var/backups/**",
    "/tmp/**",
    "/var/tmp/**",
    "/run/**",
    "/boot/initrd.img-*",
];

/// Which changes to leave out.
pub struct Ignore {
    globs: GlobSet,
    /// `--all`: nothing is left out and mtimes count.
    pub all: bool,
}

impl Ignore {
    /// The default list plus `extra` globs (an ignore file's lines).
    pub fn new(extra: &[String], all: bool) -> Result<Ignore, String> {
        let mut b = GlobSetBuilder::new();
        let defaults = DEFAULT_IGNORE.iter().map(|s| s.to_string());
        for g in defaults.chain(extra.iter().cloned()) {
            b.add(Glob::new(&g).map_err(|e| format!("ignore pattern {g:?}: {e}"))?);
        }
        Ok(Ignore {
            globs: b.build().map_err(|e| e.to_string())?,
            all,
        })
    }

    /// Reads an ignore file: one glob per line, `#` comments.
    pub fn parse_file(name: &str, text: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            Glob::new(line).map_err(|e| format!("{name}:{}: {e}", i + 1))?;
            out.push(line.to_string());
        }
        Ok(out)
    }

    fn skip(&self, path: &BPath) -> bool {
        !self.all && self.globs.is_match(path.show())
    }
}

/// The changes from `a` to `b`, by category then risk (highest first).
pub fn diff(a: &Snapshot, b: &Snapshot, ignore: &Ignore) -> Vec<Change> {
    let mut out = Vec::new();
    let mut push = |name: &'static str, subject: String, detail: String, bytes: u64| {
        let (category, risk) = rule(name);
        out.push(Change {
            category,
            risk,
            rule: name,
            subject,
            detail,
            bytes,
        });
    };
    let (ma, mb) = (&a.meaning, &b.meaning);

    // Packages.
    let rpm = mb.package_format.contains("rpm");
    for (name, va) in &ma.packages {
        match mb.packages.get(name) {
            None => push("package-removed", name.clone(), format!("{va} removed"), 0),
            Some(vb) if vb != va => {
                let order = if rpm {
                    crate::package::rpm::compare(va, vb)
                } else {
                    crate::package::dpkg::compare(va, vb)
                };
                let rule = if order == Ordering::Greater {
                    "package-downgraded"
                } else {
                    "package-upgraded"
                };
                push(rule, name.clone(), format!("{va} → {vb}"), 0);
            }
            Some(_) => {}
        }
    }
    for (name, vb) in &mb.packages {
        if !ma.packages.contains_key(name) {
            push("package-added", name.clone(), format!("{vb} installed"), 0);
        }
    }

    // Kernels and their modules.
    for (release, mods_a) in &ma.kernels {
        match mb.kernels.get(release) {
            None => push(
                "kernel-removed",
                release.clone(),
                format!("with {} modules", mods_a.len()),
                0,
            ),
            Some(mods_b) => {
                for m in mods_a.difference(mods_b) {
                    push(
                        "module-removed",
                        format!("{release}/{m}"),
                        "module gone".into(),
                        0,
                    );
                }
                for m in mods_b.difference(mods_a) {
                    push(
                        "module-added",
                        format!("{release}/{m}"),
                        "module added".into(),
                        0,
                    );
                }
            }
        }
    }
    for (release, mods_b) in &mb.kernels {
        if !ma.kernels.contains_key(release) {
            push(
                "kernel-added",
                release.clone(),
                format!("with {} modules", mods_b.len()),
                0,
            );
        }
    }

    // Units.
    let sets = |x: &BTreeSet<String>, y: &BTreeSet<String>| {
        (
            x.difference(y).cloned().collect::<Vec<_>>(),
            y.difference(x).cloned().collect::<Vec<_>>(),
        )
    };
    let (gone, new) = sets(&ma.units_enabled, &mb.units_enabled);
    for u in gone {
        push("unit-disabled", u, "enablement link removed".into(), 0);
    }
    for u in new {
        push("unit-enabled", u, "enablement link added".into(), 0);
    }
    let (gone, new) = sets(&ma.units_masked, &mb.units_masked);
    for u in gone {
        push(
            "unit-unmasked",
            u,
            "no longer linked to /dev/null".into(),
            0,
        );
    }
    for u in new {
        push("unit-masked", u, "linked to /dev/null".into(), 0);
    }

    // Accounts.
    let owned_by = |s: &Snapshot, uid: u32| s.entries.iter().filter(|e| e.uid == uid).count();
    for (name, ua) in &ma.users {
        match mb.users.get(name) {
            None => push(
                "account-removed",
                name.clone(),
                format!("uid {}", ua.uid),
                0,
            ),
            Some(ub) if ub.uid != ua.uid || ub.gid != ua.gid => {
                let files = owned_by(b, ua.uid) + owned_by(b, ub.uid);
                let detail = format!("uid {} → {}, gid {} → {}", ua.uid, ub.uid, ua.gid, ub.gid);
                if ub.uid != ua.uid && files > 0 {
                    push(
                        "uid-changed-owning-files",
                        name.clone(),
                        format!(
                            "{detail}; {files} entries are owned by uid {} or {}",
                            ua.uid, ub.uid
                        ),
                        0,
                    );
                } else {
                    push("uid-changed", name.clone(), detail, 0);
                }
            }
            Some(ub) if ub.home != ua.home || ub.shell != ua.shell => push(
                "account-changed",
                name.clone(),
                format!(
                    "home {} → {}, shell {} → {}",
                    ua.home, ub.home, ua.shell, ub.shell
                ),
                0,
            ),
            Some(_) => {}
        }
    }
    for (name, ub) in &mb.users {
        if !ma.users.contains_key(name) {
            let rule = if ub.uid == 0 {
                "uid0-added"
            } else {
                "account-added"
            };
            push(
                rule,
                name.clone(),
                format!("uid {} shell {}", ub.uid, ub.shell),
                0,
            );
        }
    }
    for (name, ga) in &ma.groups {
        match mb.groups.get(name) {
            None => push("group-removed", name.clone(), format!("gid {}", ga.gid), 0),
            Some(gb) if gb != ga => {
                let joined: Vec<&String> = gb
                    .members
                    .iter()
                    .filter(|m| !ga.members.contains(m))
                    .collect();
                let rule = if !joined.is_empty() && PRIVILEGED_GROUPS.contains(&name.as_str()) {
                    "privileged-member-added"
                } else {
                    "group-changed"
                };
                push(
                    rule,
                    name.clone(),
                    format!(
                        "gid {} → {}, members [{}] → [{}]",
                        ga.gid,
                        gb.gid,
                        ga.members.join(","),
                        gb.members.join(",")
                    ),
                    0,
                );
            }
            Some(_) => {}
        }
    }
    for (name, gb) in &mb.groups {
        if !ma.groups.contains_key(name) {
            push("group-added", name.clone(), format!("gid {}", gb.gid), 0);
        }
    }

    // Permissions: the privileged and loose sets, then per path.
    for p in mb.setuid.difference(&ma.setuid) {
        if !ignore.skip(p) {
            push("setuid-gained", p.show(), "setuid bit set".into(), 0);
        }
    }
    for p in mb.setgid.difference(&ma.setgid) {
        if !ignore.skip(p) {
            push("setgid-gained", p.show(), "setgid bit set".into(), 0);
        }
    }
    for p in ma
        .setuid
        .difference(&mb.setuid)
        .chain(ma.setgid.difference(&mb.setgid))
    {
        if !ignore.skip(p) {
            push("setuid-lost", p.show(), "setuid/setgid bit gone".into(), 0);
        }
    }
    for (p, cb) in &mb.capabilities {
        match ma.capabilities.get(p) {
            Some(ca) if ca == cb => {}
            before if !ignore.skip(p) => push(
                "capability-gained",
                p.show(),
                format!("{} → {cb}", before.map_or("none", String::as_str)),
                0,
            ),
            _ => {}
        }
    }
    for (p, ca) in &ma.capabilities {
        if !mb.capabilities.contains_key(p) && !ignore.skip(p) {
            push("capability-lost", p.show(), format!("{ca} → none"), 0);
        }
    }
    for p in mb.world_writable.difference(&ma.world_writable) {
        if !ignore.skip(p) {
            push(
                "world-writable-gained",
                p.show(),
                "world-writable".into(),
                0,
            );
        }
    }
    for p in mb.unowned.difference(&ma.unowned) {
        if !ignore.skip(p) {
            push(
                "unowned-gained",
                p.show(),
                "uid or gid unknown to the image".into(),
                0,
            );
        }
    }

    // Linkage.
    for (p, why) in &mb.broken_linkage {
        if !ma.broken_linkage.contains_key(p) && !ignore.skip(p) {
            push("linkage-broken", p.show(), why.join("; "), 0);
        }
    }
    for p in ma.broken_linkage.keys() {
        if !mb.broken_linkage.contains_key(p)
            && b.entries.binary_search_by(|e| e.path.cmp(p)).is_ok()
        {
            push("linkage-fixed", p.show(), "loads now".into(), 0);
        }
    }

    // Files, merged in path order.
    let (mut i, mut j) = (0, 0);
    let (ea, eb) = (&a.entries, &b.entries);
    while i < ea.len() || j < eb.len() {
        let order = match (ea.get(i), eb.get(j)) {
            (Some(x), Some(y)) => x.path.cmp(&y.path),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                let x = &ea[i];
                i += 1;
                if ignore.skip(&x.path) {
                    continue;
                }
                let rule = if in_etc(&x.path) {
                    "config-changed"
                } else {
                    "file-removed"
                };
                push(rule, x.path.show(), format!("{} removed", x.kind), 0);
            }
            Ordering::Greater => {
                let y = &eb[j];
                j += 1;
                if ignore.skip(&y.path) {
                    continue;
                }
                let size = if y.is_file() { y.size } else { 0 };
                let rule = if size >= LARGE {
                    "large-file-added"
                } else {
                    "file-added"
                };
                push(
                    rule,
                    y.path.show(),
                    format!("{} added, {}", y.kind, bytes(size)),
                    size,
                );
            }
            Ordering::Equal => {
                let (x, y) = (&ea[i], &eb[j]);
                i += 1;
                j += 1;
                if ignore.skip(&x.path) {
                    continue;
                }
                // ldconfig writes a new cache on every build; the same
                // set of libraries in it is no change.
                if !ignore.all && x.path.0 == LD_SO_CACHE && ma.ld_cache == mb.ld_cache {
                    continue;
                }
                entry_changes(x, y, a, b, ignore.all, &mut push);
            }
        }
    }
    out.sort_by(|x, y| {
        (x.category, std::cmp::Reverse(x.risk), &x.subject).cmp(&(
            y.category,
            std::cmp::Reverse(y.risk),
            &y.subject,
        ))
    });
    out
}

fn in_etc(p: &BPath) -> bool {
    p.0.starts_with(b"/etc/")
}

/// The changes of one path present on both sides.
fn entry_changes(
    x: &Entry,
    y: &Entry,
    a: &Snapshot,
    b: &Snapshot,
    all: bool,
    push: &mut impl FnMut(&'static str, String, String, u64),
) {
    let subject = x.path.show();
    if x.uid != y.uid || x.gid != y.gid {
        let name = |s: &Snapshot, u: u32, g: u32| {
            format!(
                "{}:{}",
                s.user_names
                    .get(&u)
                    .cloned()
                    .unwrap_or_else(|| u.to_string()),
                s.group_names
                    .get(&g)
                    .cloned()
                    .unwrap_or_else(|| g.to_string())
            )
        };
        push(
            "owner-changed",
            subject.clone(),
            format!("{} → {}", name(a, x.uid, x.gid), name(b, y.uid, y.gid)),
            0,
        );
    }
    if x.kind == y.kind {
        let perm = |m: u32| m & 0o777;
        let gained = perm(y.mode) & !perm(x.mode);
        let lost = perm(x.mode) & !perm(y.mode);
        if gained != 0 {
            push(
                "mode-loosened",
                subject.clone(),
                format!("mode {:04o} → {:04o}", x.mode, y.mode),
                0,
            );
        } else if lost != 0 {
            push(
                "mode-tightened",
                subject.clone(),
                format!("mode {:04o} → {:04o}", x.mode, y.mode),
                0,
            );
        }
    }
    let mut what = Vec::new();
    if x.kind != y.kind {
        what.push(format!("{} → {}", x.kind, y.kind));
    } else {
        if x.digest != y.digest {
            what.push(format!("content ({} → {})", bytes(x.size), bytes(y.size)));
        }
        if x.link != y.link {
            what.push(format!(
                "link {} → {}",
                x.link.as_ref().map(BPath::show).unwrap_or_default(),
                y.link.as_ref().map(BPath::show).unwrap_or_default()
            ));
        }
        if x.rdev != y.rdev {
            what.push(format!("device {:?} → {:?}", x.rdev, y.rdev));
        }
        let other_xattrs = |e: &Entry| {
            e.xattrs
                .iter()
                .filter(|(k, _)| k.as_str() != super::caps::XATTR)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<BTreeMap<String, String>>()
        };
        if other_xattrs(x) != other_xattrs(y) {
            what.push("xattrs".into());
        }
    }
    let grown = if y.is_file() {
        y.size.saturating_sub(x.size)
    } else {
        0
    };
    if !what.is_empty() {
        let rule = if in_etc(&x.path) {
            "config-changed"
        } else if y.is_file() && y.size >= LARGE && x.size < LARGE {
            "large-file-added"
        } else {
            "file-changed"
        };
        push(rule, subject, what.join(", "), grown);
    } else if all && x.mtime != y.mtime {
        push(
            "mtime-changed",
            subject,
            format!("mtime {} → {}", x.mtime, y.mtime),
            0,
        );
    }
}

/// `1.2 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The highest risk among the changes.
pub fn worst(changes: &[Change]) -> Option<Risk> {
    changes.iter().map(|c| c.risk).max()
}

/// Files changes summarised by directory (the first two levels):
/// `(dir, added, removed, changed, bytes added)`, largest first.
pub fn by_directory(changes: &[Change]) -> Vec<(String, usize, usize, usize, u64)> {
    let mut dirs: BTreeMap<String, (usize, usize, usize, u64)> = BTreeMap::new();
    for c in changes.iter().filter(|c| c.category == Category::Files) {
        let dir: String = {
            let parts: Vec<&str> = c.subject.split('/').collect();
            let keep = parts.len().saturating_sub(1).min(3);
            let d = parts[..keep].join("/");
            if d.is_empty() { "/".into() } else { d }
        };
        let slot = dirs.entry(dir).or_default();
        if c.detail.contains(" added") {
            slot.0 += 1;
        } else if c.detail.contains(" removed") {
            slot.1 += 1;
        } else {
            slot.2 += 1;
        }
        slot.3 += c.bytes;
    }
    let mut v: Vec<_> = dirs
        .into_iter()
        .map(|(d, (a, r, c, b))| (d, a, r, c, b))
        .collect();
    v.sort_by(|x, y| y.4.cmp(&x.4).then(x.0.cmp(&y.0)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::{Meaning, User};

    fn entry(path: &str, kind: &str, mode: u32, digest: &str) -> Entry {
        Entry {
            path: BPath(path.as_bytes().to_vec()),
            kind: kind.into(),
            mode,
            uid: 0,
            gid: 0,
            size: 10,
            mtime: 1,
            link: None,
            rdev: None,
            digest: (kind == "file").then(|| digest.to_string()),
            xattrs: BTreeMap::new(),
        }
    }

    fn snap(entries: Vec<Entry>, meaning: Meaning) -> Snapshot {
        Snapshot {
            source: "test".into(),
            tool: "test".into(),
            digest: "blake3".into(),
            user_names: BTreeMap::new(),
            group_names: BTreeMap::new(),
            meaning,
            entries,
            errors: Vec::new(),
        }
    }

    fn rules(changes: &[Change]) -> Vec<(&'static str, Risk, String)> {
        changes
            .iter()
            .map(|c| (c.rule, c.risk, c.subject.clone()))
            .collect()
    }

    #[test]
    fn same_snapshot_no_change() {
        let a = snap(
            vec![entry("/etc/x", "file", 0o644, "1")],
            Meaning::default(),
        );
        assert!(diff(&a, &a, &Ignore::new(&[], false).unwrap()).is_empty());
    }

    #[test]
    fn modes_owners_and_ignores() {
        let a = snap(
            vec![
                entry("/etc/machine-id", "file", 0o444, "1"),
                entry("/usr/bin/a", "file", 0o755, "1"),
                entry("/usr/bin/b", "file", 0o755, "1"),
            ],
            Meaning::default(),
        );
        let mut eb = vec![
            entry("/etc/machine-id", "file", 0o444, "2"),
            entry("/usr/bin/a", "file", 0o775, "1"),
            entry("/usr/bin/b", "file", 0o700, "1"),
        ];
        eb[2].uid = 7;
        let b = snap(eb, Meaning::default());
        let got = rules(&diff(&a, &b, &Ignore::new(&[], false).unwrap()));
        assert_eq!(
            got,
            [
                ("owner-changed", Risk::High, "/usr/bin/b".into()),
                ("mode-loosened", Risk::Medium, "/usr/bin/a".into()),
                ("mode-tightened", Risk::Low, "/usr/bin/b".into()),
            ]
        );
        let all = rules(&diff(&a, &b, &Ignore::new(&[], true).unwrap()));
        assert!(all.contains(&("config-changed", Risk::Medium, "/etc/machine-id".into())));
        let quiet = diff(&a, &b, &Ignore::new(&["/usr/bin/*".into()], false).unwrap());
        assert!(quiet.is_empty(), "{quiet:?}");
    }

    #[test]
    fn a_uid_that_owns_files_is_critical() {
        let user = |uid| User {
            uid,
            gid: 100,
            home: "/".into(),
            shell: "/bin/sh".into(),
        };
        let mut ma = Meaning::default();
        ma.users.insert("svc".into(), user(500));
        let mut mb = Meaning::default();
        mb.users.insert("svc".into(), user(501));
        let mut owned = entry("/srv/data", "file", 0o644, "1");
        owned.uid = 500;
        let a = snap(vec![owned.clone()], ma.clone());
        let b = snap(vec![owned], mb.clone());
        let got = rules(&diff(&a, &b, &Ignore::new(&[], false).unwrap()));
        assert_eq!(
            got,
            [("uid-changed-owning-files", Risk::Critical, "svc".into())]
        );
        let got = rules(&diff(
            &snap(vec![], ma),
            &snap(vec![], mb),
            &Ignore::new(&[], false).unwrap(),
        ));
        assert_eq!(got, [("uid-changed", Risk::High, "svc".into())]);
    }

    #[test]
    fn versions_order_by_the_package_manager() {
        let with = |v: &str| {
            let mut m = Meaning::default();
            m.packages.insert("p:amd64".into(), v.into());
            m.package_format = "dpkg".into();
            snap(vec![], m)
        };
        let ig = Ignore::new(&[], false).unwrap();
        // dpkg: 1.0~rc1 sorts before 1.0.
        assert_eq!(
            diff(&with("1.0"), &with("1.0~rc1"), &ig)[0].rule,
            "package-downgraded"
        );
        assert_eq!(
            diff(&with("1.0~rc1"), &with("1.0"), &ig)[0].rule,
            "package-upgraded"
        );
        assert_eq!(
            diff(&with("1:0.1"), &with("2.0"), &ig)[0].rule,
            "package-downgraded"
        );
    }

    #[test]
    fn a_rebuilt_ld_so_cache_with_the_same_set_is_no_change() {
        let with = |digest: &str, libs: &[&str]| {
            let m = Meaning {
                ld_cache: libs.iter().map(|s| s.to_string()).collect(),
                ..Meaning::default()
            };
            snap(vec![entry("/etc/ld.so.cache", "file", 0o644, digest)], m)
        };
        let ig = Ignore::new(&[], false).unwrap();
        let a = with("1", &["libc.so.6 => /usr/lib/libc.so.6 (0x303)"]);
        let same = with("2", &["libc.so.6 => /usr/lib/libc.so.6 (0x303)"]);
        assert!(diff(&a, &same, &ig).is_empty());
        let other = with("2", &["libc.so.6 => /opt/evil/libc.so.6 (0x303)"]);
        assert_eq!(
            rules(&diff(&a, &other, &ig)),
            [("config-changed", Risk::Medium, "/etc/ld.so.cache".into())]
        );
        // --all shows the rebuilt file anyway.
        assert!(!diff(&a, &same, &Ignore::new(&[], true).unwrap()).is_empty());
    }

    /// docs/diff.md lists every rule with its risk and every default
    /// ignore glob.
    #[test]
    fn docs_list_every_rule_and_ignore() {
        let doc = include_str!("../../../../docs/diff.md");
        for (cat, risk, name, _) in RULES {
            let row = format!("| {} | {} | `{name}` |", cat.as_str(), risk.as_str());
            assert!(doc.contains(&row), "docs/diff.md lacks {row}");
        }
        for glob in DEFAULT_IGNORE {
            assert!(
                doc.contains(&format!("| `{glob}` |")),
                "docs/diff.md lacks {glob}"
            );
        }
    }
}
