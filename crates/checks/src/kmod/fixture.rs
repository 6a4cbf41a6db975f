//! Module images for unit tests: a minimal relocatable ELF64 object with a
//! `.modinfo` section (what `gcc -c` of a file of `MODULE_INFO` strings
//! gives), and an in-memory module directory built around such files.

use nodecheck_core::target::MemoryTarget;

/// An ELF64 little-endian `ET_REL` x86-64 object whose `.modinfo` holds
/// `records` (`"vermagic=6.1.0-t SMP"`, `"depends=a,b"`), built by the
/// one ELF test-file builder.
pub fn ko(records: &[&str]) -> Vec<u8> {
    let mut modinfo = Vec::new();
    for r in records {
        modinfo.extend_from_slice(r.as_bytes());
        modinfo.push(0);
    }
    crate::elf::fixture::relocatable(&[(".modinfo", &modinfo)])
}

/// The release the fixtures use.
pub const RELEASE: &str = "6.1.0-t";
/// Its module directory as nodecheck finds it (through the usr-merge link).
pub const DIR: &str = "/lib/modules/6.1.0-t";
/// Where the fixture's files are (/lib is a link to usr/lib).
pub const FILES: &str = "/usr/lib/modules/6.1.0-t";

/// A module of the fixture kernel: its path under the module directory,
/// dependencies (paths) and `.modinfo` records besides vermagic.
pub struct Module<'a> {
    pub path: &'a str,
    pub deps: &'a [&'a str],
    pub info: &'a [&'a str],
}

/// A usr-merged rootfs with one kernel (`/boot/vmlinuz-6.1.0-t`), the
/// given modules with a modules.dep that lists them, and `builtin`
/// (paths) in modules.builtin.
pub fn image(modules: &[Module<'_>], builtin: &[&str]) -> MemoryTarget {
    image_without(modules, builtin, &[])
}

/// Like [`image`], without the files of the modules at `omit` (paths
/// under the module directory) though modules.dep lists them.
pub fn image_without(modules: &[Module<'_>], builtin: &[&str], omit: &[&str]) -> MemoryTarget {
    let mut t = MemoryTarget::new().symlink("/lib", "usr/lib").file(
        &format!("/boot/vmlinuz-{RELEASE}"),
        0o644,
        0,
        0,
        "MZ",
    );
    let mut dep = String::new();
    for m in modules {
        dep.push_str(&format!("{}: {}\n", m.path, m.deps.join(" ")));
        let vermagic = format!("vermagic={RELEASE} SMP preempt mod_unload modversions ");
        let mut info: Vec<&str> = vec![vermagic.as_str()];
        info.extend(m.info);
        if !omit.contains(&m.path) {
            t = t.file(&format!("{FILES}/{}", m.path), 0o644, 0, 0, ko(&info));
        }
    }
    let builtin: String = builtin.iter().map(|b| format!("{b}\n")).collect();
    t.file(&format!("{FILES}/modules.dep"), 0o644, 0, 0, dep)
        .file(&format!("{FILES}/modules.builtin"), 0o644, 0, 0, builtin)
}
