//! The `elf` kind against the real dynamic loader, layout by layout: the
//! reference rootfs's own gcc builds many small layouts (RPATH, RUNPATH,
//! `$ORIGIN`, inherited RPATH, ld.so.conf directories with the cache
//! current, stale, absent or broken, a cache entry whose file is gone,
//! `DF_1_NODEFLIB`, a library of the wrong class, symbols present,
//! missing, versioned, moved to another version, weak, a version need
//! whose hash is damaged, a DT_NEEDED path)
//! in a private copy of the rootfs; then nodecheck's
//! verdict for every ELF file (missing libraries, missing versions,
//! undefined symbols) must equal what `ldd -r` (the image's ld.so in trace
//! mode, in a chroot of the same tree) reports, file by file.
//!
//! Exceptions, none of which a layout here meets: see docs/elf.md.
//! The wrong class is a real 32-bit shared object, built by the image's
//! gcc with `-m32 -nostdlib` (the image has no 32-bit C library, so it
//! has no libc dependency; ld.so rejects it by its class, as it would a
//! full one).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::util::*;

/// (file, library / version / symbol) pairs.
type Pairs = BTreeSet<(String, String)>;

#[derive(Debug, Default, PartialEq)]
struct Verdict {
    missing: Pairs,
    versions: Pairs,
    symbols: Pairs,
}

/// Sources and the layouts built from them, under /opt/d, run with
/// `sh -e` in a chroot of the copy. Each layout is a directory; what is
/// expected of it is asserted below, beside the comparison.
const BUILD: &str = r#"
set -e
mkdir -p /opt/d/src && cd /opt/d/src
cat > fg.c <<'EOF'
int f(void) { return 1; }
int g(void) { return 2; }
EOF
cat > f.c <<'EOF'
int f(void) { return 1; }
EOF
cat > main_f.c <<'EOF'
int f(void);
int main(void) { return f(); }
EOF
cat > main_g.c <<'EOF'
int g(void);
int main(void) { return g(); }
EOF
cat > main_fg.c <<'EOF'
int f(void);
int g(void);
int main(void) { return f() + g(); }
EOF
cat > weak.c <<'EOF'
__attribute__((weak)) int h(void);
int main(void) { return h ? h() : 0; }
EOF
cat > a.c <<'EOF'
int b(void);
int a(void) { return b(); }
EOF
cat > b.c <<'EOF'
int b(void) { return 3; }
EOF
cat > main_a.c <<'EOF'
int a(void);
int main(void) { return a(); }
EOF
cat > v12.map <<'EOF'
V1 { global: f; local: *; };
V2 { global: g; } V1;
EOF
cat > v1.map <<'EOF'
V1 { global: f; local: *; };
EOF
cat > vmoved.map <<'EOF'
V1 { global: f; g; local: *; };
V2 { } V1;
EOF
cat > vonly.map <<'EOF'
V1 { global: f; g; local: *; };
EOF
CC="gcc -O0 -Wl,--no-as-needed"
lib() { # lib OUT SONAME SRC [flags]
  out=$1 so=$2 src=$3; shift 3
  mkdir -p "$(dirname "$out")"
  $CC -shared -fPIC -o "$out" -Wl,-soname,"$so" "$src" "$@"
}
prog() { # prog OUT SRC [flags]
  out=$1 src=$2; shift 2
  mkdir -p "$(dirname "$out")"
  $CC -o "$out" "$src" "$@"
}
D=/opt/d

# RPATH, absolute.
lib $D/rpath/lib/libf.so.1 libf.so.1 fg.c
prog $D/rpath/bin/p main_f.c $D/rpath/lib/libf.so.1 -Wl,--disable-new-dtags,-rpath,$D/rpath/lib

# RUNPATH with $ORIGIN; and the same with the library gone.
for l in origin origin_gone; do
  lib $D/$l/lib/libf.so.1 libf.so.1 fg.c
  prog $D/$l/bin/p main_f.c $D/$l/lib/libf.so.1 -Wl,--enable-new-dtags,-rpath,'$ORIGIN/../lib'
done
rm $D/origin_gone/lib/libf.so.1

# RPATH is inherited by the libraries of the program; RUNPATH is not.
for l in rpath_inherit runpath_inherit; do
  lib $D/$l/libb/libb.so.1 libb.so.1 b.c
  lib $D/$l/lib/liba.so.1 liba.so.1 a.c $D/$l/libb/libb.so.1
done
prog $D/rpath_inherit/bin/p main_a.c $D/rpath_inherit/lib/liba.so.1 \
  -Wl,--disable-new-dtags,-rpath,$D/rpath_inherit/lib:$D/rpath_inherit/libb
prog $D/runpath_inherit/bin/p main_a.c $D/runpath_inherit/lib/liba.so.1 \
  -Wl,-rpath-link,$D/runpath_inherit/libb \
  -Wl,--enable-new-dtags,-rpath,$D/runpath_inherit/lib:$D/runpath_inherit/libb

# A directory of ld.so.conf.d: in the cache; and one added after ldconfig.
echo $D/conf/lib > /etc/ld.so.conf.d/diff.conf
echo $D/stale/lib >> /etc/ld.so.conf.d/diff.conf
echo $D/cache_gone/lib >> /etc/ld.so.conf.d/diff.conf
lib $D/conf/lib/libconf.so.1 libconf.so.1 fg.c
prog $D/conf/bin/p main_f.c $D/conf/lib/libconf.so.1
lib $D/cache_gone/lib/libgone.so.1 libgone.so.1 fg.c
prog $D/cache_gone/bin/p main_f.c $D/cache_gone/lib/libgone.so.1
mkdir -p $D/stale/lib
ldconfig -X
# In the cache, then deleted: the cache entry leads nowhere.
rm $D/cache_gone/lib/libgone.so.1
lib $D/stale/lib/libstale.so.1 libstale.so.1 fg.c
prog $D/stale/bin/p main_f.c $D/stale/lib/libstale.so.1

# DF_1_NODEFLIB: not even libc is found.
prog $D/nodeflib/bin/p main_f.c $D/rpath/lib/libf.so.1 -Wl,-z,nodefaultlib \
  -Wl,--disable-new-dtags,-rpath,$D/rpath/lib

# The wrong class first in the RUNPATH: passed over; alone: missing.
mkdir -p $D/class/lib32 $D/class32/lib32
gcc -m32 -nostdlib -shared -fPIC -o $D/class/lib32/libf.so.1 -Wl,-soname,libf.so.1 f.c
cp $D/class/lib32/libf.so.1 $D/class32/lib32/libf.so.1
lib $D/class/lib/libf.so.1 libf.so.1 fg.c
prog $D/class/bin/p main_f.c $D/class/lib/libf.so.1 \
  -Wl,--enable-new-dtags,-rpath,'$ORIGIN/../lib32:$ORIGIN/../lib'
lib $D/class32/build/libf.so.1 libf.so.1 fg.c
prog $D/class32/bin/p main_f.c $D/class32/build/libf.so.1 \
  -Wl,--enable-new-dtags,-rpath,'$ORIGIN/../lib32'
rm -r $D/class32/build

# Symbols: present; gone in an older build with the same soname; weak.
for l in sym_ok sym_gone; do
  lib $D/$l/lib/libfg.so.1 libfg.so.1 fg.c
  prog $D/$l/bin/p main_g.c $D/$l/lib/libfg.so.1 -Wl,-rpath,$D/$l/lib
done
lib $D/sym_gone/lib/libfg.so.1 libfg.so.1 f.c
prog $D/weak/bin/p weak.c

# Versioned symbols: present; the version gone; the symbol moved to
# another version; an unversioned reference to the only versioned g.
for l in ver_ok ver_old ver_moved; do
  lib $D/$l/lib/libv.so.1 libv.so.1 fg.c -Wl,--version-script,v12.map
  prog $D/$l/bin/p main_fg.c $D/$l/lib/libv.so.1 -Wl,-rpath,$D/$l/lib
done
lib $D/ver_old/lib/libv.so.1 libv.so.1 f.c -Wl,--version-script,v1.map
lib $D/ver_moved/lib/libv.so.1 libv.so.1 fg.c -Wl,--version-script,vmoved.map
lib $D/ver_unref/lib/libv.so.1 libv.so.1 fg.c
prog $D/ver_unref/bin/p main_g.c $D/ver_unref/lib/libv.so.1 -Wl,-rpath,$D/ver_unref/lib
lib $D/ver_unref/lib/libv.so.1 libv.so.1 fg.c -Wl,--version-script,vonly.map

# A need for V2 whose vna_hash is damaged (the names are intact): ld.so
# compares the hashes first, so neither the version nor g@V2 is found.
lib $D/ver_hash/lib/libv.so.1 libv.so.1 fg.c -Wl,--version-script,v12.map
prog $D/ver_hash/bin/p main_fg.c $D/ver_hash/lib/libv.so.1 -Wl,-rpath,$D/ver_hash/lib
needs=$(readelf -V $D/ver_hash/bin/p | sed -n '/Version needs section/,$p')
base=$(printf '%s\n' "$needs" | sed -n 's/.*Offset: \(0x[0-9a-f]*\).*/\1/p' | head -1)
at=$(printf '%s\n' "$needs" | sed -n '/File: libv.so.1/,/File:/s/^ *\(0x[0-9a-f]*\): *Name: V2 .*/\1/p')
test -n "$base" && test -n "$at"
printf '\377\377\377\377' | dd of=$D/ver_hash/bin/p bs=1 seek=$((base + at)) conv=notrunc status=none

# A DT_NEEDED entry that is a path (a library without a soname).
mkdir -p $D/path/lib
$CC -shared -fPIC -o $D/path/lib/libnoso.so fg.c
prog $D/path/bin/p main_f.c $D/path/lib/libnoso.so
rm -r /opt/d/src
"#;

const PROFILE: &str = r#"
[profile]
name = "ldso-diff"

[[control]]
id = "layouts"

  [[control.elf]]
  path            = "/opt/d"
  recursive       = true
  resolves        = true
  symbol_versions = true
  symbols         = true
"#;

/// nodecheck's verdict: the chains of the check's output.
fn ours(root: &Path) -> (Verdict, String) {
    let (_, report, _) = run_profile(root, PROFILE);
    let output = report["controls"][0]["checks"][0]["output"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let mut v = Verdict::default();
    for line in output.lines() {
        let Some(l) = line.strip_prefix("  /") else {
            continue;
        };
        let l = l.split(" [resolves where ").next().unwrap();
        let Some(open) = l.find(" (") else { continue };
        if !l.ends_with(')') {
            continue;
        }
        let chain: Vec<&str> = l[..open].split(" -> ").collect();
        let file = format!("/{}", chain[0]);
        let detail = &l[open + 2..l.len() - 1];
        if detail.starts_with("not found") || detail.starts_with("not loadable") {
            v.missing.insert((file, chain[chain.len() - 1].to_string()));
        } else if let Some(rest) = detail
            .strip_prefix("versions ")
            .or_else(|| detail.strip_prefix("version "))
        {
            let names = rest.split(" not defined by ").next().unwrap();
            for n in names.split(", ") {
                v.versions.insert((file.clone(), n.to_string()));
            }
        } else if let Some(rest) = detail
            .strip_prefix("undefined symbols ")
            .or_else(|| detail.strip_prefix("undefined symbol "))
        {
            for n in rest.split(", ") {
                v.symbols.insert((file.clone(), n.to_string()));
            }
        }
    }
    (v, output)
}

/// The ELF files under /opt/d, by their first bytes.
fn elf_files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root.join("opt/d")).sort_by_file_name() {
        let e = e.unwrap();
        if !e.file_type().is_file() {
            continue;
        }
        let bytes = fs::read(e.path()).unwrap();
        if bytes.starts_with(b"\x7fELF") {
            let rel = e.path().strip_prefix(root).unwrap();
            out.push(format!("/{}", rel.display()));
        }
    }
    out
}

/// `ldd -r FILE` for every file, in a chroot of `root`.
fn ldd(root: &Path, files: &[String]) -> (Verdict, String) {
    let o = Command::new("chroot")
        .arg(root)
        .args([
            "/bin/sh",
            "-c",
            r#"for f; do echo "==> $f"; ldd -r "$f" 2>&1; done"#,
            "sh",
        ])
        .args(files)
        .env("LC_ALL", "C")
        .output()
        .expect("chroot runs (as root)");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut v = Verdict::default();
    let mut file = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("==> ") {
            file = name.to_string();
        } else if let Some(lib) = line.strip_suffix(" => not found") {
            v.missing.insert((file.clone(), lib.to_string()));
        } else if let Some(i) = line.find("version `") {
            let rest = &line[i + 9..];
            if let Some(end) = rest.find("' not found") {
                v.versions.insert((file.clone(), rest[..end].to_string()));
            }
        } else if let Some(rest) = line.strip_prefix("undefined symbol: ") {
            // `g, version V2\t(/path)` or `g\t(/path)`
            let sym = rest.split('\t').next().unwrap().trim();
            let sym = match sym.split_once(", version ") {
                Some((name, ver)) => format!("{name}@{ver}"),
                None => sym.to_string(),
            };
            v.symbols.insert((file.clone(), sym));
        } else if let Some(rest) = line.strip_prefix("symbol ") {
            // `g version V2 not defined in file libv.so.1 with link time
            // reference\t(/path)`
            if let Some((name, rest)) = rest.split_once(" version ")
                && let Some((ver, _)) = rest.split_once(" not defined in file ")
            {
                v.symbols.insert((file.clone(), format!("{name}@{ver}")));
            }
        }
    }
    (v, text)
}

fn pair(file: &str, what: &str) -> (String, String) {
    (format!("/opt/d/{file}"), what.to_string())
}

/// Compares nodecheck with `ldd -r` on every ELF file of the layouts.
fn compare(root: &Path, phase: &str) -> (Verdict, String) {
    let files = elf_files(root);
    assert!(files.len() > 30, "{phase}: only {} ELF files", files.len());
    let (mine, output) = ours(root);
    let (theirs, text) = ldd(root, &files);
    assert_eq!(
        mine, theirs,
        "{phase}: nodecheck (left) and ldd -r (right) disagree\n--- nodecheck:\n{output}\n--- ldd -r:\n{text}"
    );
    (mine, output)
}

#[test]
fn nodecheck_equals_ldd_r_on_generated_layouts() {
    let Some(rootfs) = reference_rootfs() else {
        return;
    };
    if !is_root() {
        eprintln!("note: skipped, needs root (chroot)");
        return;
    }
    let copy = Fault::of(&rootfs);
    let root = copy.path();
    let o = Command::new("chroot")
        .arg(root)
        .args(["/bin/sh", "-c", BUILD])
        .env("LC_ALL", "C")
        .env("TMPDIR", "/tmp")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "building the layouts failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );

    // The cache as ldconfig wrote it, before libstale was installed.
    let (v, output) = compare(root, "cache current");
    // The comparison is not vacuous: each fault is there, and only those.
    let want_missing = BTreeSet::from([
        pair("origin_gone/bin/p", "libf.so.1"),
        pair("runpath_inherit/lib/liba.so.1", "libb.so.1"),
        pair("runpath_inherit/bin/p", "libb.so.1"),
        pair("rpath_inherit/lib/liba.so.1", "libb.so.1"),
        pair("stale/bin/p", "libstale.so.1"),
        pair("cache_gone/bin/p", "libgone.so.1"),
        pair("nodeflib/bin/p", "libc.so.6"),
        pair("class32/bin/p", "libf.so.1"),
    ]);
    assert_eq!(v.missing, want_missing, "{output}");
    assert_eq!(
        v.versions,
        BTreeSet::from([pair("ver_old/bin/p", "V2"), pair("ver_hash/bin/p", "V2")]),
        "{output}"
    );
    for s in [
        pair("sym_gone/bin/p", "g"),
        pair("ver_old/bin/p", "g@V2"),
        pair("ver_moved/bin/p", "g@V2"),
        pair("ver_hash/bin/p", "g@V2"),
    ] {
        assert!(v.symbols.contains(&s), "{s:?} not in {:?}", v.symbols);
    }
    assert!(
        output.contains(
            "/opt/d/stale/bin/p -> libstale.so.1 (not found; /opt/d/stale/lib/libstale.so.1 is \
             not in ld.so.cache; ldconfig not re-run after it was added to /opt/d/stale/lib \
             (named by /etc/ld.so.conf.d/diff.conf))"
        ),
        "{output}"
    );

    // No cache: ld.so searches only its default directories.
    fs::remove_file(root.join("etc/ld.so.cache")).unwrap();
    let (v, output) = compare(root, "no cache");
    assert!(
        v.missing.contains(&pair("conf/bin/p", "libconf.so.1")),
        "{output}"
    );
    assert!(
        output.contains("/etc/ld.so.cache does not exist, so ld.so searches only its default"),
        "{output}"
    );

    // A cache that is not one: the same.
    fs::write(root.join("etc/ld.so.cache"), b"not a cache\n").unwrap();
    let (v, _) = compare(root, "broken cache");
    assert!(v.missing.contains(&pair("conf/bin/p", "libconf.so.1")));
}
