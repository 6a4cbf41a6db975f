//! `nodecheck baseline`: a profile written from a known-good snapshot,
//! controls grouped by area, the lists a site trims in `[vars]`
//! (docs/baseline.md).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::Snapshot;

/// The areas a baseline covers.
pub const AREAS: &[&str] = &[
    "packages",
    "accounts",
    "permissions",
    "units",
    "kernel",
    "linkage",
];

/// Which areas to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Areas(BTreeSet<&'static str>);

impl Areas {
    /// From `--areas` values; none = all.
    pub fn parse(names: &[String]) -> Result<Areas, String> {
        if names.is_empty() {
            return Ok(Areas(AREAS.iter().copied().collect()));
        }
        let mut out = BTreeSet::new();
        for n in names {
            match AREAS.iter().find(|a| **a == n.as_str()) {
                Some(a) => {
                    out.insert(*a);
                }
                None => {
                    return Err(format!(
                        "unknown area {n:?}; expected one of {}",
                        AREAS.join(", ")
                    ));
                }
            }
        }
        Ok(Areas(out))
    }

    fn has(&self, a: &str) -> bool {
        self.0.contains(a)
    }
}

/// Kernel modules an HPC node commonly needs; a baseline requires those
/// of them the known-good kernel has (a site adds its own).
const HPC_MODULES: &[&str] = &[
    "ext4",
    "xfs",
    "nfs",
    "nfsv4",
    "overlay",
    "squashfs",
    "loop",
    "nvme",
    "ahci",
    "sd_mod",
    "mlx5_core",
    "mlx5_ib",
    "ib_core",
    "ib_umad",
    "ib_uverbs",
    "ib_ipoib",
    "rdma_cm",
    "rdma_ucm",
    "i40e",
    "ice",
    "bnxt_en",
    "bonding",
    "8021q",
    "virtio_net",
    "virtio_blk",
];

/// Directories filled at boot or scratch: never walked by the whole-image
/// controls.
const RUNTIME: &[&str] = &["/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp"];

/// Files whose mode and owner are pinned (when the image has them).
const SENSITIVE: &[&str] = &[
    "/etc/passwd",
    "/etc/group",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/ssh/sshd_config",
    "/etc/munge/munge.key",
    "/etc/slurm/slurm.conf",
];

/// Writes `name = [ "a", "b", … ]` wrapped at 78 columns.
fn list(out: &mut String, name: &str, items: impl IntoIterator<Item = String>) {
    let items: Vec<String> = items.into_iter().map(|s| toml_str(&s)).collect();
    if items.is_empty() {
        let _ = writeln!(out, "{name} = []");
        return;
    }
    let _ = writeln!(out, "{name} = [");
    let mut line = String::from(" ");
    for item in items {
        if line.len() + item.len() + 2 > 78 {
            let _ = writeln!(out, "{}", line.trim_end());
            line = String::from(" ");
        }
        line.push(' ');
        line.push_str(&item);
        line.push(',');
    }
    let _ = writeln!(out, "{}", line.trim_end());
    let _ = writeln!(out, "]");
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A glob that matches exactly this path (glob metacharacters escaped).
fn literal_glob(p: &str) -> String {
    let mut out = String::new();
    for c in p.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\') {
            out.push('[');
            out.push(c);
            out.push(']');
        } else {
            out.push(c);
        }
    }
    out
}

/// The profile text.
pub fn profile(s: &Snapshot, areas: &Areas) -> String {
    let m = &s.meaning;
    let mut vars = String::new();
    let mut controls = String::new();
    let c = &mut controls;

    if areas.has("packages") {
        let _ = writeln!(
            vars,
            "\n# packages: every package of the known-good image ({} {}). Trim to\n\
             # what the site requires; versions are left to `nodecheck diff`.",
            m.packages.len(),
            if m.package_format.is_empty() {
                "packages"
            } else {
                &m.package_format
            }
        );
        let names: BTreeSet<String> = m
            .packages
            .keys()
            .map(|k| k.split(':').next().unwrap_or(k).to_string())
            .collect();
        list(&mut vars, "required_packages", names);
        let _ = writeln!(
            c,
            "\n# ── packages ──\n[[control]]\nid       = \"packages-installed\"\n\
             title    = \"The packages of the baseline are installed\"\nseverity = \"high\"\n\
             tags     = [\"baseline\", \"packages\"]\n\n  [[control.package]]\n\
             \x20 name      = \"${{required_packages}}\"\n  installed = true"
        );
    }

    if areas.has("accounts") {
        let _ = writeln!(
            c,
            "\n# ── accounts ──\n[[control]]\nid       = \"accounts\"\n\
             title    = \"The accounts of the baseline, with their uids and primary groups\"\n\
             severity = \"high\"\ntags     = [\"baseline\", \"accounts\"]\n"
        );
        let _ = writeln!(c, "  user = [");
        let mut users: Vec<_> = m.users.iter().collect();
        users.sort_by_key(|(_, u)| u.uid);
        for (name, u) in users {
            let _ = writeln!(
                c,
                "    {{ name = {}, uid = {}, gid = {} }},",
                toml_str(name),
                u.uid,
                u.gid
            );
        }
        let _ = writeln!(c, "  ]");
        let _ = writeln!(
            c,
            "\n  [[control.users]]\n  uid   = \"0\"\n  names = [\"root\"]"
        );
        if !m.account_files.is_empty() {
            let _ = writeln!(
                c,
                "\n[[control]]\nid       = \"account-files-pinned\"\n\
                 title    = \"No account or group was added, removed or changed\"\n\
                 severity = \"medium\"\ntags     = [\"baseline\", \"accounts\"]\n\
                 desc     = \"Pinned from the known-good image: update the digests when \
                 an account is added on purpose.\"\n"
            );
            let _ = writeln!(c, "  file = [");
            for (path, sum) in &m.account_files {
                let _ = writeln!(
                    c,
                    "    {{ path = {}, sha256 = \"{sum}\" }},",
                    toml_str(path)
                );
            }
            let _ = writeln!(c, "  ]");
        }
    }

    if areas.has("permissions") {
        let _ = writeln!(
            vars,
            "\n# permissions: the setuid/setgid programs and the files with\n\
             # capabilities of the known-good image (globs; trim what you do not need)."
        );
        let mut privileged: BTreeSet<String> = m.setuid.iter().map(|p| p.show()).collect();
        privileged.extend(m.setgid.iter().map(|p| p.show()));
        list(
            &mut vars,
            "setuid_allowed",
            privileged.iter().map(|p| literal_glob(p)),
        );
        list(
            &mut vars,
            "capabilities_allowed",
            m.capabilities.keys().map(|p| literal_glob(&p.show())),
        );
        list(
            &mut vars,
            "runtime_dirs",
            RUNTIME.iter().map(|s| s.to_string()),
        );
        let mut exceptions: Vec<String> = m
            .world_writable
            .iter()
            .map(|p| literal_glob(&p.show()))
            .collect();
        exceptions.extend(m.unowned.iter().map(|p| literal_glob(&p.show())));
        list(&mut vars, "loose_exceptions", exceptions);
        let _ = writeln!(
            c,
            "\n# ── permissions ──\n[[control]]\nid       = \"privileged-files\"\n\
             title    = \"Only the baseline's setuid/setgid programs and capabilities\"\n\
             severity = \"critical\"\ntags     = [\"baseline\", \"permissions\"]\n\n\
             \x20 [[control.tree]]\n  path         = \"/\"\n  exclude      = \"${{runtime_dirs}}\"\n\
             \x20 setuid       = \"${{setuid_allowed}}\"\n  capabilities = \"${{capabilities_allowed}}\"\n\n\
             [[control]]\nid       = \"no-loose-files\"\n\
             title    = \"No world-writable and no unowned files\"\nseverity = \"high\"\n\
             tags     = [\"baseline\", \"permissions\"]\n\n  [[control.tree]]\n  path           = \"/\"\n\
             \x20 exclude        = [\"${{runtime_dirs}}\", \"${{loose_exceptions}}\"]\n\
             \x20 world_writable = false\n  unowned        = false"
        );
        let present: Vec<&super::Entry> = SENSITIVE
            .iter()
            .filter_map(|p| {
                s.entries
                    .binary_search_by(|e| e.path.0.as_slice().cmp(p.as_bytes()))
                    .ok()
                    .map(|i| &s.entries[i])
            })
            .filter(|e| e.is_file())
            .collect();
        if !present.is_empty() {
            let _ = writeln!(
                c,
                "\n[[control]]\nid       = \"sensitive-files\"\n\
                 title    = \"Sensitive files keep their owner and are no more open than in the baseline\"\n\
                 severity = \"high\"\ntags     = [\"baseline\", \"permissions\"]\n\n  file = ["
            );
            for e in present {
                let owner = s
                    .user_names
                    .get(&e.uid)
                    .cloned()
                    .unwrap_or_else(|| e.uid.to_string());
                let _ = writeln!(
                    c,
                    "    {{ path = {}, owner = {}, mode = {{ max = \"{:04o}\" }} }},",
                    toml_str(&e.path.show()),
                    toml_str(&owner),
                    e.mode & 0o7777
                );
            }
            let _ = writeln!(c, "  ]");
        }
    }

    if areas.has("units") {
        let enabled: BTreeSet<String> = m
            .units_enabled
            .iter()
            .filter_map(|u| u.rsplit('/').next())
            .map(str::to_string)
            .collect();
        let _ = writeln!(
            vars,
            "\n# units: enabled (and masked) in /etc/systemd/system."
        );
        list(&mut vars, "enabled_units", enabled);
        list(&mut vars, "masked_units", m.units_masked.iter().cloned());
        let _ = writeln!(
            c,
            "\n# ── units ──\n[[control]]\nid       = \"units-enabled\"\n\
             title    = \"The units of the baseline start at boot\"\nseverity = \"high\"\n\
             tags     = [\"baseline\", \"units\"]\n\n  [[control.service]]\n\
             name    = \"${{enabled_units}}\"\n  enabled = true"
        );
        if !m.units_masked.is_empty() {
            let _ = writeln!(
                c,
                "\n  [[control.service]]\n  name   = \"${{masked_units}}\"\n  masked = true"
            );
        }
    }

    if areas.has("kernel") {
        // The kernel with the most modules (an image usually has one).
        if let Some((release, mods)) = m.kernels.iter().max_by_key(|(_, mods)| mods.len()) {
            let required: Vec<String> = HPC_MODULES
                .iter()
                .filter(|n| mods.contains(**n))
                .map(|s| s.to_string())
                .collect();
            let _ = writeln!(
                vars,
                "\n# kernel: the modules an HPC node needs that the known-good kernel\n\
                 # has ({} modules in all). Add the site's drivers.",
                mods.len()
            );
            let _ = writeln!(vars, "kernel = {}", toml_str(release));
            list(&mut vars, "required_modules", required);
            let _ = writeln!(
                c,
                "\n# ── kernel ──\n[[control]]\nid       = \"kernel-modules\"\n\
                 title    = \"The baseline's kernel modules load with the image's kernel\"\n\
                 severity = \"critical\"\ntags     = [\"baseline\", \"kernel\"]\n\n\
                 \x20 [[control.kernel_module]]\n  name     = \"${{required_modules}}\"\n\
                 \x20 kernel   = \"${{kernel}}\"\n  loadable = true"
            );
        }
    }

    if areas.has("linkage") {
        let trees: Vec<String> = [
            "/usr/bin",
            "/usr/sbin",
            "/usr/lib",
            "/usr/libexec",
            "/opt",
            "/usr/local",
        ]
        .iter()
        .filter(|t| {
            s.entries
                .iter()
                .any(|e| e.path.0.starts_with(t.as_bytes()) && e.path.0.get(t.len()) == Some(&b'/'))
        })
        .map(|t| t.to_string())
        .collect();
        let _ = writeln!(
            vars,
            "\n# linkage: trees whose every ELF file must load; the files that did\n\
             # not load in the known-good image either are exceptions (fix or drop them)."
        );
        list(&mut vars, "elf_trees", trees);
        list(
            &mut vars,
            "elf_exceptions",
            m.broken_linkage.keys().map(|p| literal_glob(&p.show())),
        );
        let _ = writeln!(
            c,
            "\n# ── linkage ──\n[[control]]\nid       = \"elf-linkage\"\n\
             title    = \"Every ELF program and library finds its libraries\"\nseverity = \"high\"\n\
             tags     = [\"baseline\", \"linkage\"]\n\n  [[control.elf]]\n\
             \x20 path            = \"${{elf_trees}}\"\n  recursive       = true\n\
             \x20 resolves        = true\n  symbol_versions = true\n  exclude         = \"${{elf_exceptions}}\""
        );
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Baseline of {}, written by `nodecheck baseline` ({}).\n\
         # A starting point, meant to be edited: trim the lists in [vars] to what\n\
         # the site requires. `nodecheck diff` shows what a profile does not name.\n\
         #\n#   nodecheck run baseline.toml --target IMAGE\n\n\
         [profile]\nname    = \"baseline\"\ntitle   = {}\nversion = \"1.0.0\"\n\n[vars]",
        s.source,
        s.tool,
        toml_str(&format!("Baseline of {}", s.source))
    );
    out.push_str(vars.trim_start_matches('\n'));
    out.push_str(&controls);
    out
}
