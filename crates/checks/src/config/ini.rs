//! `keyvalue` and `ini` files.

use super::{Entry, Parsed};

/// `key = value`, `key=value`, `key: value` or `key value` lines (the first
/// `=` or `:` separates, else the first blank); `#` and `;` start comment
/// lines; a value wholly in matching quotes loses them (os-release,
/// /etc/default files). The last assignment of a key wins.
pub fn keyvalue(path: &str, text: &str) -> Result<Parsed, String> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let sep = line
            .find(['=', ':'])
            .or_else(|| line.find(char::is_whitespace));
        let Some(at) = sep else {
            return Err(format!(
                "{path}:{}: expected `key = value`, got {:?}",
                i + 1,
                short(line)
            ));
        };
        let key = line[..at].trim();
        let value = line[at + 1..].trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!(
                "{path}:{}: expected `key = value`, got {:?}",
                i + 1,
                short(line)
            ));
        }
        entries.push(Entry::new(key, unquote(value), path, i + 1));
    }
    Ok(Parsed {
        entries,
        first_wins: false,
        case_insensitive: false,
    })
}

/// INI: `[section]` headers, `key = value` (or `key: value`) lines, `#` and
/// `;` comments, indented continuation lines appended to the value (as
/// Python's configparser, which yum and dnf use). A key is named
/// `section.key` (`main.gpgcheck`), or just `key` before any section. The
/// last assignment wins.
pub fn ini(path: &str, text: &str) -> Result<Parsed, String> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut section: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if raw.starts_with([' ', '\t']) && !entries.is_empty() && !line.starts_with('[') {
            let last = entries.last_mut().expect("checked non-empty");
            if !last.value.is_empty() {
                last.value.push('\n');
            }
            last.value.push_str(line);
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            match rest.strip_suffix(']') {
                Some(name) if !name.trim().is_empty() => section = Some(name.trim().to_string()),
                _ => {
                    return Err(format!(
                        "{path}:{}: malformed section header {:?}",
                        i + 1,
                        short(line)
                    ));
                }
            }
            continue;
        }
        let Some(at) = line.find(['=', ':']) else {
            return Err(format!(
                "{path}:{}: expected `key = value` or [section], got {:?}",
                i + 1,
                short(line)
            ));
        };
        let key = line[..at].trim();
        if key.is_empty() {
            return Err(format!("{path}:{}: a value without a key", i + 1));
        }
        let name = match &section {
            Some(s) => format!("{s}.{key}"),
            None => key.to_string(),
        };
        let mut e = Entry::new(&name, line[at + 1..].trim().to_string(), path, i + 1);
        e.section = section.clone();
        entries.push(e);
    }
    Ok(Parsed {
        entries,
        first_wins: false,
        case_insensitive: false,
    })
}

fn unquote(v: &str) -> String {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

pub(super) fn short(s: &str) -> String {
    let mut t: String = s.chars().take(60).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyvalue_lines() {
        let p = keyvalue(
            "/f",
            "# c\nID=debian\nVERSION_ID=\"12\"\nUMASK\t\t022\nkey: v\nID=other\n",
        )
        .unwrap();
        assert_eq!(p.get("ID").unwrap().value, "other");
        assert_eq!(p.get("ID").unwrap().line, 6);
        assert_eq!(p.get("VERSION_ID").unwrap().value, "12");
        assert_eq!(p.get("UMASK").unwrap().value, "022");
        assert_eq!(p.get("key").unwrap().value, "v");
        assert_eq!(
            keyvalue("/f", "a=1\nlonely\n").unwrap_err(),
            "/f:2: expected `key = value`, got \"lonely\""
        );
    }

    #[test]
    fn ini_sections() {
        let text = "top = 1\n[main]\ngpgcheck=1\n; c\n[epel]\nname = EPEL\nbaseurl = http://a\n  http://b\nenabled: 0\n";
        let p = ini("/r", text).unwrap();
        assert_eq!(p.get("top").unwrap().value, "1");
        assert_eq!(p.get("main.gpgcheck").unwrap().value, "1");
        assert_eq!(p.get("epel.baseurl").unwrap().value, "http://a\nhttp://b");
        assert_eq!(p.get("epel.enabled").unwrap().line, 9);
        assert_eq!(
            ini("/r", "[main\n").unwrap_err(),
            "/r:1: malformed section header \"[main\""
        );
        assert!(
            ini("/r", "[a]\njunk line\n")
                .unwrap_err()
                .starts_with("/r:2: expected")
        );
    }
}
