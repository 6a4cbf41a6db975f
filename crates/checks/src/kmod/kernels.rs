//! The kernels of a target: kernel images (`/boot/vmlinuz-RELEASE`, and
//! `/lib/modules/RELEASE/vmlinuz` where RHEL, Fedora, SUSE and Arch keep
//! the image their kernel-install copies to /boot), module directories
//! (`/lib/modules/RELEASE`, or `/usr/lib/modules/RELEASE` on images whose
//! /lib is not a link), and on a live node the running release.

use std::collections::{BTreeMap, BTreeSet};

use nodecheck_core::target::{FileType, READ_LIMIT, Target, TargetKind};

use crate::eval;

/// Where module directories live, in the order modprobe looks.
pub const MODULE_ROOTS: &[&str] = &["/lib/modules", "/usr/lib/modules"];

/// Kernel image names in /boot: `vmlinuz-R` (x86, most), `vmlinux-R`
/// (ppc64le, uncompressed), `Image-R` (SUSE on aarch64).
const IMAGE_PREFIXES: &[&str] = &["vmlinuz-", "vmlinux-", "Image-"];

/// Image names inside a module directory.
const IMAGES_IN_DIR: &[&str] = &["vmlinuz", "vmlinux", "Image"];

/// What the target holds.
#[derive(Clone, Debug, Default)]
pub struct Kernels {
    /// Release → the first kernel image found for it.
    pub images: BTreeMap<String, String>,
    /// Release → its module directory.
    pub dirs: BTreeMap<String, String>,
    /// Directories that could not be listed, with why (permission).
    pub errors: Vec<String>,
}

/// Why no single kernel could be chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// The target has no kernel at all (a container image).
    NoKernel,
    /// Several, and the check did not say which.
    Several(Vec<String>),
    /// The release the check named is not in the target.
    Unknown { wanted: String, have: Vec<String> },
    /// The running release could not be read, or /boot not listed.
    Error(String),
}

impl Choice {
    /// A sentence for a message; `key` is how the check names a release.
    pub fn message(&self, key: &str) -> String {
        match self {
            Choice::NoKernel => "the target has no kernel: no /boot/vmlinuz-*, no /lib/modules/* \
                                 (a container image?)"
                .to_string(),
            Choice::Several(all) => format!(
                "the target has several kernels ({}): say which with `{key} = \"{}\"`",
                all.join(", "),
                all.last().map_or("", String::as_str)
            ),
            Choice::Unknown { wanted, have } if have.is_empty() => {
                format!("no kernel {wanted} in the target: it has no kernel at all")
            }
            Choice::Unknown { wanted, have } => format!(
                "no kernel {wanted} in the target (it has {})",
                have.join(", ")
            ),
            Choice::Error(e) => e.clone(),
        }
    }
}

impl Kernels {
    /// Lists /boot and the module roots of `target`.
    pub fn scan(target: &dyn Target) -> Kernels {
        let mut k = Kernels::default();
        match target.read_dir("/boot") {
            Ok(entries) => {
                for e in entries {
                    if !matches!(e.file_type, FileType::File | FileType::Symlink) {
                        continue;
                    }
                    let Some(release) = IMAGE_PREFIXES.iter().find_map(|p| e.name.strip_prefix(p))
                    else {
                        continue;
                    };
                    // RHEL's rescue image (vmlinuz-0-rescue-MACHINEID) has no
                    // modules of its own; .old/.bak are backups; Arch names
                    // its image by package (vmlinuz-linux) and keeps the
                    // release's copy in /usr/lib/modules/RELEASE/vmlinuz. A
                    // release starts with a digit.
                    if !release.starts_with(|c: char| c.is_ascii_digit())
                        || release.contains("-rescue-")
                        || release.ends_with(".old")
                        || release.ends_with(".bak")
                    {
                        continue;
                    }
                    k.images
                        .entry(release.to_string())
                        .or_insert_with(|| format!("/boot/{}", e.name));
                }
            }
            Err(e) if eval::is_absent(&e) => {}
            Err(e) => k
                .errors
                .push(format!("cannot list /boot: {}", eval::io_text(&e))),
        }
        for root in MODULE_ROOTS {
            let entries = match target.read_dir(root) {
                Ok(e) => e,
                Err(e) if eval::is_absent(&e) => continue,
                Err(e) => {
                    k.errors
                        .push(format!("cannot list {root}: {}", eval::io_text(&e)));
                    continue;
                }
            };
            for e in entries {
                let dir = format!("{root}/{}", e.name);
                let is_dir = match e.file_type {
                    FileType::Directory => true,
                    FileType::Symlink => target
                        .metadata(&dir, true)
                        .is_ok_and(|m| m.file_type == FileType::Directory),
                    _ => false,
                };
                if !is_dir || k.dirs.contains_key(&e.name) {
                    continue;
                }
                for name in IMAGES_IN_DIR {
                    let image = format!("{dir}/{name}");
                    if target
                        .metadata(&image, true)
                        .is_ok_and(|m| m.file_type == FileType::File)
                    {
                        k.images.entry(e.name.clone()).or_insert(image);
                        break;
                    }
                }
                k.dirs.insert(e.name.clone(), dir);
            }
        }
        k
    }

    /// Every release with an image or a module directory.
    pub fn releases(&self) -> Vec<String> {
        let all: BTreeSet<&String> = self.images.keys().chain(self.dirs.keys()).collect();
        let mut v: Vec<String> = all.into_iter().cloned().collect();
        v.sort_by(|a, b| nodecheck_core::matcher::version_cmp(a, b));
        v
    }

    /// The release a check looks at: the one it names, else on a live node
    /// the running one, else the only kernel image (or, with no image at
    /// all, the only module directory).
    pub fn choose(&self, target: &dyn Target, wanted: Option<&str>) -> Result<String, Choice> {
        if let Some(w) = wanted {
            if target.kind() == TargetKind::Live
                || self.images.contains_key(w)
                || self.dirs.contains_key(w)
            {
                return Ok(w.to_string());
            }
            return Err(Choice::Unknown {
                wanted: w.to_string(),
                have: self.releases(),
            });
        }
        if target.kind() == TargetKind::Live {
            return running_release(target).map_err(Choice::Error);
        }
        if let Some(e) = self.errors.first() {
            return Err(Choice::Error(e.clone()));
        }
        let pick = |set: Vec<&String>| match set.as_slice() {
            [] => None,
            [one] => Some(Ok((*one).clone())),
            _ => Some(Err(Choice::Several(self.releases()))),
        };
        pick(self.images.keys().collect())
            .or_else(|| pick(self.dirs.keys().collect()))
            .unwrap_or(Err(Choice::NoKernel))
    }
}

/// `uname -r` of a live node, read through the target.
pub fn running_release(target: &dyn Target) -> Result<String, String> {
    const OSRELEASE: &str = "/proc/sys/kernel/osrelease";
    match target.read(OSRELEASE, READ_LIMIT) {
        Ok(b) => {
            let r = String::from_utf8_lossy(&b).trim().to_string();
            if r.is_empty() || r.contains(char::is_whitespace) {
                Err(format!("{OSRELEASE} does not hold a kernel release: {r:?}"))
            } else {
                Ok(r)
            }
        }
        Err(e) => Err(format!(
            "cannot read the running kernel's release from {OSRELEASE}: {}",
            eval::io_text(&e)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodecheck_core::target::MemoryTarget;

    fn image(t: MemoryTarget, release: &str) -> MemoryTarget {
        t.file(&format!("/boot/vmlinuz-{release}"), 0o644, 0, 0, "MZ")
    }

    fn modules(t: MemoryTarget, release: &str) -> MemoryTarget {
        t.file(
            &format!("/usr/lib/modules/{release}/modules.dep"),
            0o644,
            0,
            0,
            "",
        )
    }

    #[test]
    fn the_single_kernel_is_the_default() {
        let t = modules(
            image(MemoryTarget::new(), "6.1.0-28-amd64"),
            "6.1.0-28-amd64",
        )
        .symlink("/lib", "usr/lib")
        .file("/boot/vmlinuz-0-rescue-abc", 0o644, 0, 0, "MZ")
        .file("/boot/vmlinuz-linux", 0o644, 0, 0, "MZ");
        let k = Kernels::scan(&t);
        assert_eq!(k.choose(&t, None), Ok("6.1.0-28-amd64".to_string()));
        assert_eq!(k.dirs["6.1.0-28-amd64"], "/lib/modules/6.1.0-28-amd64");
        assert_eq!(k.releases(), vec!["6.1.0-28-amd64"]);
    }

    #[test]
    fn several_kernels_need_a_name() {
        let t = image(
            image(MemoryTarget::new(), "6.1.0-9-amd64"),
            "6.1.0-28-amd64",
        );
        let k = Kernels::scan(&t);
        let e = k.choose(&t, None).unwrap_err();
        assert_eq!(
            e.message("kernel"),
            "the target has several kernels (6.1.0-9-amd64, 6.1.0-28-amd64): say which with `kernel = \"6.1.0-28-amd64\"`"
        );
        assert_eq!(
            k.choose(&t, Some("6.1.0-9-amd64")),
            Ok("6.1.0-9-amd64".into())
        );
        assert!(
            k.choose(&t, Some("5.10"))
                .unwrap_err()
                .message("kernel")
                .contains("no kernel 5.10")
        );
    }

    #[test]
    fn an_image_beats_a_stray_module_directory_and_rhel_keeps_images_in_the_module_dir() {
        let t = modules(
            image(MemoryTarget::new(), "6.1.0-28-amd64"),
            "6.1.0-99-amd64",
        );
        assert_eq!(
            Kernels::scan(&t).choose(&t, None),
            Ok("6.1.0-28-amd64".into())
        );
        let t = MemoryTarget::new().file(
            "/usr/lib/modules/5.14.0-427.el9.x86_64/vmlinuz",
            0o644,
            0,
            0,
            "MZ",
        );
        let k = Kernels::scan(&t);
        assert_eq!(
            k.images["5.14.0-427.el9.x86_64"],
            "/usr/lib/modules/5.14.0-427.el9.x86_64/vmlinuz"
        );
        assert_eq!(k.choose(&t, None), Ok("5.14.0-427.el9.x86_64".into()));
        let t = MemoryTarget::new();
        assert_eq!(Kernels::scan(&t).choose(&t, None), Err(Choice::NoKernel));
    }

    #[test]
    fn a_live_node_uses_the_running_kernel() {
        let t = MemoryTarget::new().kind(TargetKind::Live).file(
            "/proc/sys/kernel/osrelease",
            0o444,
            0,
            0,
            "6.18.44\n",
        );
        assert_eq!(Kernels::scan(&t).choose(&t, None), Ok("6.18.44".into()));
        let t = MemoryTarget::new().kind(TargetKind::Live);
        let e = Kernels::scan(&t)
            .choose(&t, None)
            .unwrap_err()
            .message("kernel");
        assert!(
            e.starts_with("cannot read the running kernel's release"),
            "{e}"
        );
    }
}
