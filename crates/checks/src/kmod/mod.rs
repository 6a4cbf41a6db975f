//! Kernel modules read the way modprobe and modinfo find them, but inside
//! the target and without running anything: the kernels of a root
//! filesystem ([`kernels`]), a module directory's `modules.dep`,
//! `modules.builtin(.modinfo)` and `modules.alias` ([`index`]), module
//! files in every compression kmod knows ([`modfile`]), and the
//! dependency closure behind `loadable` ([`closure`]).
//!
//! Everything is read through the [`Target`](nodecheck_core::target::Target):
//! an image's `/lib -> usr/lib` link resolves inside the image, and a module
//! file is never decompressed on disk.

pub mod cache;
pub mod closure;
pub mod dep;
#[cfg(test)]
pub mod fixture;
mod glob;
pub mod index;
pub mod kernels;
pub mod modfile;

/// A module name as modprobe compares it: `-` and `_` are the same
/// character (kmod normalises to `_`).
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The file suffixes a module may have, longest first.
pub const SUFFIXES: &[&str] = &[".ko.zst", ".ko.xz", ".ko.gz", ".ko"];

/// The normalised module name of a module file path:
/// `kernel/fs/nfs/nfsv4.ko.xz` → `nfsv4`, `.../pci-hyperv-intf.ko` →
/// `pci_hyperv_intf`. `None` when the name has no module suffix.
pub fn module_name(path: &str) -> Option<String> {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = SUFFIXES.iter().find_map(|s| base.strip_suffix(s))?;
    (!stem.is_empty()).then(|| normalize(stem))
}

/// The in-target path of a path written in a module index: relative paths
/// are relative to the module directory (what depmod writes), absolute ones
/// are inside the target (older depmod with `-b`).
pub fn in_dir(dir: &str, path: &str) -> String {
    nodecheck_core::target::join(dir, path)
}

/// The `kernel` key of a check: `None` when absent or empty, so a profile
/// can write `kernel = "${kernel}"` with an empty default.
pub fn wanted(check: &nodecheck_core::profile::Check) -> Option<&str> {
    check.str("kernel").filter(|k| !k.is_empty())
}

/// The index a check on kernel modules works with, or why there is none.
#[derive(Clone)]
pub enum Ready {
    Index(std::sync::Arc<index::Index>),
    /// No module of this kernel can be found (no kernel, no module
    /// directory, no modules.dep): a module is *not present*, and why.
    Absent(String),
    /// The answer cannot be told (several kernels, a corrupt or unreadable
    /// index): an error, and why.
    Error(String),
}

/// Chooses the kernel (`wanted`, else the target's default; `key` is how
/// the check names it, for the message listing several) and loads its
/// index, once per target (see [`cache`]).
pub fn open(
    target: &dyn nodecheck_core::target::Target,
    wanted: Option<&str>,
    key: &'static str,
) -> Ready {
    cache::open(target, wanted, key)
}

fn open_uncached(
    target: &dyn nodecheck_core::target::Target,
    wanted: Option<&str>,
    key: &str,
) -> Ready {
    use kernels::Choice;
    let found = kernels::Kernels::scan(target);
    let release = match found.choose(target, wanted) {
        Ok(r) => r,
        Err(c @ (Choice::NoKernel | Choice::Unknown { .. })) => {
            return Ready::Absent(c.message(key));
        }
        Err(c) => return Ready::Error(c.message(key)),
    };
    let Some(dir) = found.dirs.get(&release) else {
        let others: Vec<&str> = found.dirs.keys().map(String::as_str).collect();
        let hint = if others.is_empty() {
            String::new()
        } else {
            format!(
                " (the target has module directories for {} only)",
                others.join(", ")
            )
        };
        return Ready::Absent(format!(
            "kernel {release} has no module directory: /lib/modules/{release} is missing{hint}"
        ));
    };
    match index::Index::load(target, &release, dir).map(std::sync::Arc::new) {
        Ok(i) if !i.problems.is_empty() => Ready::Error(format!(
            "the module index of kernel {release} is corrupt: {}",
            i.problems.join("; ")
        )),
        Ok(i) => Ready::Index(i),
        Err(index::LoadError::NoDep(p)) => Ready::Absent(format!(
            "{p} is missing: depmod was never run for kernel {release}, so modprobe finds no module"
        )),
        Err(index::LoadError::Io(p, e)) => {
            Ready::Error(format!("cannot read {p}: {}", crate::eval::io_text(&e)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_drop_suffixes_and_normalise_dashes() {
        assert_eq!(
            module_name("kernel/fs/nfs/nfsv4.ko.xz").as_deref(),
            Some("nfsv4")
        );
        assert_eq!(
            module_name("kernel/drivers/pci/controller/pci-hyperv-intf.ko").as_deref(),
            Some("pci_hyperv_intf")
        );
        assert_eq!(module_name("x.ko.zst").as_deref(), Some("x"));
        assert_eq!(module_name("kernel/x.o"), None);
        assert_eq!(module_name(".ko"), None);
        assert_eq!(
            in_dir("/lib/modules/6.1", "kernel/x.ko"),
            "/lib/modules/6.1/kernel/x.ko"
        );
        assert_eq!(in_dir("/lib/modules/6.1", "/opt/x.ko"), "/opt/x.ko");
    }
}
