//! What `dpkg --verify` looks at: each package's `info/PKG[:ARCH].list`
//! (every path it installed), `info/PKG[:ARCH].md5sums` and the
//! `Conffiles` of the status database (the digests), and the diversions
//! database (a path diverted by another package, or by the admin, is
//! looked for where it was diverted to, as dpkg does).

use std::collections::HashMap;

use nodecheck_core::target::Target;
use rayon::prelude::*;

use super::{Entry, Expect, Plan};
use crate::eval::{io_text, is_absent};
use crate::package::Pkg;

pub const INFO: &str = "/var/lib/dpkg/info";
pub const DIVERSIONS: &str = "/var/lib/dpkg/diversions";

/// A package's file list of a few hundred thousand paths is plausible;
/// this bounds memory against a corrupt one.
const LIMIT: u64 = 128 << 20;

/// `dpkg-divert`'s database: path → (diverted to, by package; `None` for
/// a local diversion).
pub type Diversions = HashMap<String, (String, Option<String>)>;

/// Reads the diversions database (entries of three lines: the path, where
/// it is diverted to, the package that diverts it or `:`). No file means
/// no diversions.
pub fn diversions(t: &dyn Target) -> Result<Diversions, String> {
    let bytes = match t.read(DIVERSIONS, LIMIT) {
        Ok(b) => b,
        Err(e) if is_absent(&e) => return Ok(Diversions::new()),
        Err(e) => return Err(format!("{DIVERSIONS}: {}", io_text(&e))),
    };
    parse_diversions(&bytes)
}

pub fn parse_diversions(bytes: &[u8]) -> Result<Diversions, String> {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    if !lines.len().is_multiple_of(3) {
        return Err(format!(
            "{DIVERSIONS}: damaged: {} lines, but entries have three lines each",
            lines.len()
        ));
    }
    let mut out = Diversions::new();
    for (i, e) in lines.chunks_exact(3).enumerate() {
        if !e[0].starts_with('/') || !e[1].starts_with('/') || e[2].is_empty() {
            return Err(format!(
                "{DIVERSIONS}:{}: damaged entry {:?}",
                3 * i + 1,
                e.join(" ")
            ));
        }
        let by = (e[2] != ":").then(|| e[2].to_string());
        out.insert(e[0].to_string(), (e[1].to_string(), by));
    }
    Ok(out)
}

/// The plan for `pkgs` (status entries: installed, or half-installed,
/// or config-files: everything dpkg still keeps a file list for).
pub fn plan(t: &dyn Target, pkgs: &[&Pkg]) -> Plan {
    let divs = match diversions(t) {
        Ok(d) => d,
        Err(e) => {
            return Plan {
                errors: vec![e],
                ..Plan::default()
            };
        }
    };
    let per: Vec<Result<Vec<Entry>, String>> = pkgs
        .par_iter()
        .enumerate()
        .map(|(i, p)| package(t, i, p, &divs))
        .collect();
    let mut plan = Plan {
        packages: pkgs.iter().map(|p| shown(p)).collect(),
        ..Plan::default()
    };
    for r in per {
        match r {
            Ok(e) => plan.entries.extend(e),
            Err(e) => plan.errors.push(e),
        }
    }
    plan
}

/// dpkg's unambiguous name: `libc6:amd64` for a Multi-Arch: same package.
fn shown(p: &Pkg) -> String {
    if p.multiarch_same && !p.arch.is_empty() {
        format!("{}:{}", p.name, p.arch)
    } else {
        p.name.clone()
    }
}

/// Reads `info/NAME.EXT` (with `:ARCH` for Multi-Arch: same packages,
/// falling back to the plain name a pre-multiarch database uses).
fn info(t: &dyn Target, p: &Pkg, ext: &str) -> Result<Option<(String, Vec<u8>)>, String> {
    let mut names = vec![shown(p)];
    if p.multiarch_same {
        names.push(p.name.clone());
    }
    for n in names {
        let path = format!("{INFO}/{n}.{ext}");
        match t.read(&path, LIMIT) {
            Ok(b) => return Ok(Some((path, b))),
            Err(e) if is_absent(&e) => {}
            Err(e) => return Err(format!("{path}: {}", io_text(&e))),
        }
    }
    Ok(None)
}

/// dpkg's path normalisation: leading `./` and `/` dropped, one `/` put
/// back, a trailing `/` removed.
fn normal(p: &str) -> String {
    let mut s = p;
    loop {
        if let Some(r) = s.strip_prefix("./") {
            s = r;
        } else if let Some(r) = s.strip_prefix('/') {
            s = r;
        } else {
            break;
        }
    }
    let s = s.strip_suffix('/').unwrap_or(s);
    if s.is_empty() || s == "." {
        "/".into()
    } else {
        format!("/{s}")
    }
}

/// The lines of a file that must end with a newline, as dpkg requires of
/// its info files.
fn lines<'a>(path: &str, text: &'a str) -> Result<impl Iterator<Item = (usize, &'a str)>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(format!("{path}: damaged: the last line has no newline"));
    }
    Ok(text.lines().enumerate().map(|(i, l)| (i + 1, l)))
}

/// Parses an md5sums file: `<32 hex digits>  <path without leading />`.
pub fn md5sums(path: &str, bytes: &[u8]) -> Result<HashMap<String, String>, String> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = HashMap::new();
    for (n, line) in lines(path, &text)? {
        let ok = line.len() > 34
            && line.is_char_boundary(32)
            && line[..32].bytes().all(|b| b.is_ascii_hexdigit())
            && &line[32..34] == "  ";
        if !ok {
            return Err(format!(
                "{path}:{n}: damaged: expected `<md5>  <path>`, got {:?}",
                line.chars().take(80).collect::<String>()
            ));
        }
        out.insert(normal(&line[34..]), line[..32].to_ascii_lowercase());
    }
    Ok(out)
}

fn package(t: &dyn Target, idx: usize, p: &Pkg, divs: &Diversions) -> Result<Vec<Entry>, String> {
    let Some((list_path, list)) = info(t, p, "list")? else {
        // dpkg warns and assumes no files; an installed package without
        // its file list cannot be verified, which is not a pass.
        if p.installed {
            return Err(format!(
                "package {}: its file list {INFO}/{}.list is missing",
                shown(p),
                shown(p)
            ));
        }
        return Ok(Vec::new());
    };
    let sums = match info(t, p, "md5sums")? {
        Some((path, bytes)) => md5sums(&path, &bytes)?,
        None => HashMap::new(),
    };
    let conffiles: HashMap<String, &str> = p
        .conffiles
        .iter()
        .map(|(path, hash)| (normal(path), hash.as_str()))
        .collect();
    let text = String::from_utf8_lossy(&list);
    let mut out = Vec::new();
    for (n, line) in lines(&list_path, &text)? {
        if !line.starts_with('/') {
            return Err(format!(
                "{list_path}:{n}: damaged: {line:?} is not an absolute path"
            ));
        }
        let listed = normal(line);
        let path = match divs.get(&listed) {
            Some((to, by)) if by.as_deref() != Some(p.name.as_str()) => to.clone(),
            _ => listed,
        };
        let md5 = sums
            .get(&path)
            .cloned()
            .or_else(|| conffiles.get(&path).map(|h| h.to_string()));
        out.push(Entry {
            pkg: idx,
            conffile: conffiles.contains_key(&path),
            path,
            expect: Expect::Dpkg { md5 },
        });
    }
    Ok(out)
}
