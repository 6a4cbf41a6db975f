//! sshd_config(5) semantics.

use super::ini::short;
use super::{Entry, Files, Parsed};

/// What sshd uses for a keyword the files do not set (OpenSSH 9.x's
/// compiled-in defaults, sshd_config(5)), for the keywords hardening
/// profiles ask about. Keys lower-case.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("permitrootlogin", "prohibit-password"),
    ("passwordauthentication", "yes"),
    ("permitemptypasswords", "no"),
    ("pubkeyauthentication", "yes"),
    ("kbdinteractiveauthentication", "yes"),
    ("challengeresponseauthentication", "yes"),
    ("hostbasedauthentication", "no"),
    ("ignorerhosts", "yes"),
    ("gssapiauthentication", "no"),
    ("kerberosauthentication", "no"),
    ("usepam", "no"),
    ("x11forwarding", "no"),
    ("allowtcpforwarding", "yes"),
    ("allowagentforwarding", "yes"),
    ("permittunnel", "no"),
    ("permituserenvironment", "no"),
    ("strictmodes", "yes"),
    ("maxauthtries", "6"),
    ("maxsessions", "10"),
    ("maxstartups", "10:30:100"),
    ("logingracetime", "120"),
    ("clientaliveinterval", "0"),
    ("clientalivecountmax", "3"),
    ("loglevel", "INFO"),
    ("port", "22"),
    ("addressfamily", "any"),
    ("usedns", "no"),
    ("compression", "yes"),
    ("printmotd", "yes"),
];

/// Words sshd parses case-insensitively (`multistate` options): stored
/// lower-case so that `PermitRootLogin Yes` is seen as `yes`.
const FLAGS: &[&str] = &[
    "yes",
    "no",
    "prohibit-password",
    "without-password",
    "forced-commands-only",
    "any",
    "inet",
    "inet6",
    "local",
    "remote",
    "all",
    "none",
];

/// Reads `path` and its `Include`s: keywords case-insensitive, the first
/// value of a keyword wins, `Include` globs are relative to /etc/ssh and
/// read in place, and everything after a `Match` line (to the next `Match`
/// or the end of that file) is conditional, so it never sets the global
/// value.
pub fn parse(files: &mut Files<'_>, path: &str) -> Result<Parsed, String> {
    let mut entries = Vec::new();
    read(files, path, None, &mut entries)?;
    Ok(Parsed {
        entries,
        first_wins: true,
        case_insensitive: true,
    })
}

fn read(
    files: &mut Files<'_>,
    path: &str,
    from: Option<(&str, usize)>,
    out: &mut Vec<Entry>,
) -> Result<(), String> {
    let text = files.enter(path, from)?;
    let mut in_match = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = split(line);
        if key.is_empty() {
            return Err(format!(
                "{path}:{}: malformed line {:?}",
                i + 1,
                short(line)
            ));
        }
        if value.is_empty() {
            return Err(format!(
                "{path}:{}: {} has no value",
                i + 1,
                nodecheck_core::text::clip(key, 60)
            ));
        }
        let lower = key.to_ascii_lowercase();
        if lower == "match" {
            in_match = !value.eq_ignore_ascii_case("all");
            continue;
        }
        if lower == "include" {
            for pattern in value.split_whitespace() {
                for file in files.expand(pattern, "/etc/ssh", (path, i + 1))? {
                    let before = out.len();
                    read(files, &file, Some((path, i + 1)), out)?;
                    // An Include inside a Match block is conditional too.
                    for e in &mut out[before..] {
                        e.conditional |= in_match;
                    }
                }
            }
            continue;
        }
        let value = if FLAGS.iter().any(|f| f.eq_ignore_ascii_case(value)) {
            value.to_ascii_lowercase()
        } else {
            value.to_string()
        };
        let mut e = Entry::new(key, value, path, i + 1);
        e.conditional = in_match;
        out.push(e);
    }
    files.leave();
    Ok(())
}

/// `Keyword value`, `Keyword=value`, `Keyword = value`.
fn split(line: &str) -> (&str, &str) {
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let key = &line[..end];
    let mut rest = line[end..].trim_start();
    if let Some(r) = rest.strip_prefix('=') {
        rest = r.trim_start();
    }
    (key, rest.trim_end())
}
