//! The dpkg status database (`/var/lib/dpkg/status`, deb822 stanzas) and
//! dpkg's version order.

use std::cmp::Ordering;

use super::Pkg;

/// Parses a status file. Every stanza is returned, installed or not
/// (`Pkg::state` says); a stanza without `Package` or `Status`, a line
/// that is neither `Field: value` nor a continuation, or a file that is
/// not text is an error naming file and line.
pub fn parse(path: &str, bytes: &[u8], need_status: bool) -> Result<Vec<Pkg>, String> {
    if bytes.contains(&0) {
        return Err(format!(
            "{path}: not a dpkg status file: it contains NUL bytes"
        ));
    }
    // dpkg writes UTF-8; very old descriptions may be Latin-1, which is
    // harmless for the fields read here.
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut start = 1;
    let finish = |fields: &mut Vec<(String, String)>, start: usize, out: &mut Vec<Pkg>| {
        if fields.is_empty() {
            return Ok(());
        }
        let get = |k: &str| {
            fields
                .iter()
                .find(|(f, _)| f.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        let name = get("Package")
            .ok_or_else(|| format!("{path}:{start}: stanza without a Package field"))?;
        let shown = nodecheck_core::text::clip(&name, 60).into_owned();
        let state = match get("Status") {
            Some(s) => s,
            None if !need_status => "install ok installed".to_string(),
            None => {
                return Err(format!(
                    "{path}:{start}: package {shown} has no Status field"
                ));
            }
        };
        let installed = state.split_whitespace().nth(2) == Some("installed");
        let version = get("Version").unwrap_or_default();
        if installed && version.is_empty() {
            return Err(format!(
                "{path}:{start}: installed package {shown} has no Version field"
            ));
        }
        let conffiles = match get("Conffiles") {
            Some(v) => conffiles(&v).map_err(|e| format!("{path}:{start}: package {name}: {e}"))?,
            None => Vec::new(),
        };
        out.push(Pkg {
            name,
            version,
            arch: get("Architecture").unwrap_or_default(),
            installed,
            state,
            multiarch_same: get("Multi-Arch").is_some_and(|m| m == "same"),
            conffiles,
        });
        fields.clear();
        Ok::<(), String>(())
    };
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if line.trim().is_empty() {
            finish(&mut fields, start, &mut out)?;
            start = lineno + 1;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some((key, value)) = fields.last_mut() else {
                return Err(format!(
                    "{path}:{lineno}: continuation line outside a field"
                ));
            };
            // Only `Conffiles` is read from its continuation lines; the
            // long descriptions are not kept.
            if key.eq_ignore_ascii_case("Conffiles") {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!(
                "{path}:{lineno}: expected `Field: value`, got {:?}",
                nodecheck_core::text::clip(line, 60)
            ));
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!(
                "{path}:{lineno}: malformed field name {:?}",
                nodecheck_core::text::clip(key, 60)
            ));
        }
        if fields.is_empty() {
            start = lineno;
        }
        fields.push((key.to_string(), value.trim().to_string()));
    }
    finish(&mut fields, start, &mut out)?;
    Ok(out)
}

/// The lines of a `Conffiles` field: ` /etc/foo.conf <md5> [obsolete]
/// [remove-on-upgrade]`; the path may hold spaces, the digest is the last
/// word before the flags.
fn conffiles(value: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for line in value.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut rest = line;
        while let Some(r) = rest
            .strip_suffix(" obsolete")
            .or_else(|| rest.strip_suffix(" remove-on-upgrade"))
        {
            rest = r.trim_end();
        }
        match rest.rsplit_once(' ') {
            Some((p, hash)) if p.starts_with('/') && !hash.is_empty() => {
                out.push((p.trim_end().to_string(), hash.to_string()));
            }
            _ => return Err(format!("malformed Conffiles line {line:?}")),
        }
    }
    Ok(out)
}

/// dpkg's order of two versions `[epoch:]upstream[-revision]`
/// (deb-version(7)): epochs numerically, then upstream and revision with
/// `verrevcmp`, where `~` sorts before everything, even the end.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| verrevcmp(ua, ub))
        .then_with(|| verrevcmp(ra, rb))
}

fn split(v: &str) -> (u64, &str, &str) {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (e.parse().unwrap_or(u64::MAX), r)
        }
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((u, r)) => (epoch, u, r),
        None => (epoch, rest, ""),
    }
}

fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let ac = order(a.get(i).copied());
            let bc = order(b.get(j).copied());
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    #[test]
    fn dpkg_order() {
        // Cases from dpkg's own test suite (t-version.c) and deb-version(7).
        for (a, b, o) in [
            ("1.0", "1.0", Equal),
            ("1.0-1", "1.0-1", Equal),
            ("0:1.0", "1.0", Equal),
            ("1:0.1", "2.0", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1.0", "1.0+b1", Less),
            ("1.0-1", "1.0-1ubuntu1", Less),
            ("2.10", "2.9", Greater),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0-", Greater),
            ("9.2p1-2+deb12u3", "9.2p1-2+deb12u2", Greater),
            ("9.2p1-2", "9.2p1", Greater),
            ("1.002", "1.2", Equal),
            ("1.0.0", "1.0", Greater),
            ("0.5.15-2", "0.5.15-10", Less),
            ("a", "+", Less),
        ] {
            assert_eq!(compare(a, b), o, "{a} vs {b}");
            assert_eq!(compare(b, a), o.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn status_stanzas() {
        let text = "Package: munge\nStatus: install ok installed\nArchitecture: amd64\nVersion: 0.5.15-2\n\
                    Description: auth\n with a continuation\n .\n\n\
                    Package: telnet\nStatus: deinstall ok config-files\nVersion: 0.17\n\n";
        let p = parse("/s", text.as_bytes(), true).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].name.as_str(), p[0].version.as_str(), p[0].installed),
            ("munge", "0.5.15-2", true)
        );
        assert!(!p[1].installed);
        assert_eq!(p[1].state, "deinstall ok config-files");
    }

    #[test]
    fn corrupt_status_files_are_errors_with_lines() {
        assert_eq!(
            parse(
                "/s",
                b"Package: a\nStatus: install ok installed\nVersion: 1\n\nthis is junk\n",
                true
            )
            .unwrap_err(),
            "/s:5: expected `Field: value`, got \"this is junk\""
        );
        assert_eq!(
            parse("/s", b"Version: 1\nStatus: install ok installed\n", true).unwrap_err(),
            "/s:1: stanza without a Package field"
        );
        assert_eq!(
            parse("/s", b"Package: a\nVersion: 1\n", true).unwrap_err(),
            "/s:1: package a has no Status field"
        );
        assert!(
            parse("/s", b"\x7fELF\0\0", true)
                .unwrap_err()
                .contains("NUL")
        );
        assert!(parse("/s", b"Package: a\nVersion: 1\n", false).unwrap()[0].installed);
    }
}
