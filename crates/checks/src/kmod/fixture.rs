//! Module images for unit tests: a minimal relocatable ELF64 object with a
//! `.modinfo` section (what `gcc -c` of a file of `MODULE_INFO` strings
//! gives), and an in-memory module directory built around such files.

use nodecheck_core::target::MemoryTarget;

/// An ELF64 little-endian `ET_REL` x86-64 object whose `.modinfo` holds
/// `records` (`"vermagic=6.1.0-t SMP"`, `"depends=a,b"`).
pub fn ko(records: &[&str]) -> Vec<u8> {
    let mut modinfo = Vec::new();
    for r in records {
        modinfo.extend_from_slice(r.as_bytes());
        modinfo.push(0);
    }
    let names = b"\0.modinfo\0.shstrtab\0";
    let modinfo_at = 64usize;
    let names_at = modinfo_at + modinfo.len();
    let shoff = (names_at + names.len()).next_multiple_of(8);
    let mut out = vec![0u8; shoff];
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 2; // ELFCLASS64
    out[5] = 1; // little-endian
    out[6] = 1; // EV_CURRENT
    out[16..18].copy_from_slice(&1u16.to_le_bytes()); // ET_REL
    out[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    out[20..24].copy_from_slice(&1u32.to_le_bytes());
    out[40..48].copy_from_slice(&(shoff as u64).to_le_bytes());
    out[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    out[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
    out[60..62].copy_from_slice(&3u16.to_le_bytes()); // e_shnum
    out[62..64].copy_from_slice(&2u16.to_le_bytes()); // e_shstrndx
    out[modinfo_at..names_at].copy_from_slice(&modinfo);
    out[names_at..names_at + names.len()].copy_from_slice(names);
    let section = |name: u32, kind: u32, offset: usize, size: usize| {
        let mut s = vec![0u8; 64];
        s[0..4].copy_from_slice(&name.to_le_bytes());
        s[4..8].copy_from_slice(&kind.to_le_bytes());
        s[24..32].copy_from_slice(&(offset as u64).to_le_bytes());
        s[32..40].copy_from_slice(&(size as u64).to_le_bytes());
        s[48..56].copy_from_slice(&1u64.to_le_bytes()); // sh_addralign
        s
    };
    out.extend(vec![0u8; 64]);
    out.extend(section(1, 1, modinfo_at, modinfo.len())); // PROGBITS
    out.extend(section(10, 3, names_at, names.len())); // STRTAB
    out
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
