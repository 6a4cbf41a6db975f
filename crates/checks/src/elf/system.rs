//! What the target's dynamic loader is configured with: its ld.so.cache,
//! its ld.so.conf, and per class and machine the default directories and
//! the values of `$LIB` and `$PLATFORM`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use goblin::elf::header::{
    EM_386, EM_AARCH64, EM_ARM, EM_LOONGARCH, EM_MIPS, EM_PPC, EM_PPC64, EM_RISCV, EM_S390,
    EM_X86_64,
};
use nodecheck_core::target::{FileType, Target};

use super::ldcache::LdCache;
use super::ldconf::LdConf;
use super::object::Ident;

/// The largest ld.so.cache read (real ones are tens of kilobytes).
const CACHE_LIMIT: u64 = 64 << 20;

/// The loader configuration of one target, read once.
#[derive(Debug)]
pub struct System {
    /// The parsed cache; `None` when absent or unreadable.
    pub cache: Option<LdCache>,
    /// ld.so.conf: ld.so never reads it (only ldconfig does, to write the
    /// cache); it is read to say why a library in one of its directories
    /// is not found.
    pub conf: LdConf,
    /// Why there is no cache to use (missing, unreadable): ld.so then
    /// searches only its default directories.
    pub no_cache: Option<String>,
    layouts: Mutex<HashMap<Ident, Arc<Layout>>>,
}

/// Where an object of one class and machine finds its system libraries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The default ("trusted") directories, in ld.so's order.
    pub dirs: Vec<String>,
    /// The value of `$LIB`.
    pub lib: String,
    /// The value of `$PLATFORM` (`AT_PLATFORM`), when known.
    pub platform: Option<&'static str>,
}

impl System {
    pub fn read(t: &dyn Target) -> System {
        let conf = LdConf::read(t);
        // glibc's _dl_load_cache_lookup: a cache that cannot be opened or
        // has no known magic is as good as none.
        let (cache, no_cache) = match t.read("/etc/ld.so.cache", CACHE_LIMIT) {
            Ok(bytes) => match LdCache::parse(&bytes) {
                Ok(cache) => (Some(cache), None),
                Err(e) => (None, Some(format!("/etc/ld.so.cache is unreadable ({e})"))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (None, Some("/etc/ld.so.cache does not exist".to_string()))
            }
            Err(e) => (None, Some(format!("/etc/ld.so.cache cannot be read ({e})"))),
        };
        System {
            cache,
            conf,
            no_cache,
            layouts: Mutex::new(HashMap::new()),
        }
    }

    /// The directories and substitutions for objects of `ident`.
    pub fn layout(&self, t: &dyn Target, ident: Ident) -> Arc<Layout> {
        let mut layouts = self.layouts.lock().unwrap_or_else(PoisonError::into_inner);
        layouts
            .entry(ident)
            .or_insert_with(|| Arc::new(Layout::of(t, ident)))
            .clone()
    }
}

impl Layout {
    fn of(t: &dyn Target, ident: Ident) -> Layout {
        let triplet = triplet(ident);
        // A Debian-style (multiarch) glibc searches /lib/<triplet> and
        // /usr/lib/<triplet>, then /lib and /usr/lib; the others search
        // /lib64 and /usr/lib64 for 64-bit objects (libx32 for x32).
        let multiarch = triplet.is_some_and(|tr| {
            t.metadata(&format!("/usr/lib/{tr}"), true)
                .is_ok_and(|m| m.file_type == FileType::Directory)
        });
        let (dirs, lib) = match triplet {
            Some(tr) if multiarch => (
                vec![
                    format!("/lib/{tr}"),
                    format!("/usr/lib/{tr}"),
                    "/lib".to_string(),
                    "/usr/lib".to_string(),
                ],
                format!("lib/{tr}"),
            ),
            _ => {
                let lib = match (ident.machine, ident.is_64()) {
                    (EM_X86_64, false) => "libx32",
                    (_, true) => "lib64",
                    (_, false) => "lib",
                };
                (
                    vec![format!("/{lib}"), format!("/usr/{lib}")],
                    lib.to_string(),
                )
            }
        };
        Layout {
            dirs,
            lib,
            platform: platform(ident),
        }
    }
}

/// The Debian multiarch tuple of a class and machine.
fn triplet(id: Ident) -> Option<&'static str> {
    let le = id.data == goblin::elf::header::ELFDATA2LSB;
    Some(match (id.machine, id.is_64()) {
        (EM_X86_64, true) => "x86_64-linux-gnu",
        (EM_X86_64, false) => "x86_64-linux-gnux32",
        (EM_386, false) => "i386-linux-gnu",
        (EM_AARCH64, true) => "aarch64-linux-gnu",
        (EM_ARM, false) => "arm-linux-gnueabihf",
        (EM_PPC64, true) if le => "powerpc64le-linux-gnu",
        (EM_PPC64, true) => "powerpc64-linux-gnu",
        (EM_PPC, false) => "powerpc-linux-gnu",
        (EM_S390, true) => "s390x-linux-gnu",
        (EM_RISCV, true) => "riscv64-linux-gnu",
        (EM_LOONGARCH, true) => "loongarch64-linux-gnu",
        (EM_MIPS, true) if le => "mips64el-linux-gnuabi64",
        (EM_MIPS, false) if le => "mipsel-linux-gnu",
        _ => return None,
    })
}

/// `AT_PLATFORM` as the kernel reports it for the machine; `None` where it
/// names the CPU model (POWER, s390, ARM) and cannot be known offline.
fn platform(id: Ident) -> Option<&'static str> {
    Some(match (id.machine, id.is_64()) {
        (EM_X86_64, _) => "x86_64",
        (EM_386, false) => "i686",
        (EM_AARCH64, true) => "aarch64",
        _ => return None,
    })
}
