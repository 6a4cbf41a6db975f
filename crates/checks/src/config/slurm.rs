//! slurm.conf(5) semantics.

use super::ini::short;
use super::{Entry, Files, Parsed};

/// Line types that describe a record rather than set a parameter: every
/// `Key=Value` on such a line belongs to the record named by its first
/// value.
const RECORDS: &[&str] = &[
    "nodename",
    "partitionname",
    "downnodes",
    "frontendname",
    "nodeset",
    "switchname",
];

/// Reads slurm.conf and its `Include`s (relative paths are taken from the
/// directory of the main file, as slurmctld does). Parameter names are
/// case-insensitive; a line may hold several `Key=Value` pairs; `#` starts
/// a comment anywhere; a trailing `\` continues the line; the last value of
/// a parameter wins. `NodeName=gpu01 CPUs=64` becomes the record entries
/// `NodeName[gpu01]` (= `gpu01`) and `NodeName[gpu01].CPUs` (= `64`).
pub fn parse(files: &mut Files<'_>, path: &str) -> Result<Parsed, String> {
    let mut entries = Vec::new();
    for (file, start, pairs) in parse_pairs(files, path)? {
        let (first_key, first_value) = &pairs[0];
        if RECORDS.contains(&first_key.to_ascii_lowercase().as_str()) {
            let record = format!("{first_key}[{first_value}]");
            entries.push(Entry::new(&record, first_value.clone(), &file, start));
            for (k, v) in &pairs[1..] {
                entries.push(Entry::new(
                    &format!("{record}.{k}"),
                    v.clone(),
                    &file,
                    start,
                ));
            }
        } else {
            for (k, v) in pairs {
                entries.push(Entry::new(&k, v, &file, start));
            }
        }
    }
    Ok(Parsed {
        entries,
        first_wins: false,
        case_insensitive: true,
    })
}

/// One logical line of `Key=Value` pairs: its file, first line number and
/// pairs (never empty).
pub type PairLine = (String, usize, Vec<(String, String)>);

/// The lines of a slurm-style file and its `Include`s, as pairs: `#`
/// comments, `\` continuations, includes relative to the main file's
/// directory.
pub fn parse_pairs(files: &mut Files<'_>, path: &str) -> Result<Vec<PairLine>, String> {
    let dir = path
        .rsplit_once('/')
        .map_or("/", |(d, _)| if d.is_empty() { "/" } else { d })
        .to_string();
    let mut lines = Vec::new();
    read(files, path, None, &dir, &mut lines)?;
    Ok(lines)
}

fn read(
    files: &mut Files<'_>,
    path: &str,
    from: Option<(&str, usize)>,
    dir: &str,
    out: &mut Vec<PairLine>,
) -> Result<(), String> {
    let text = files.enter(path, from)?;
    let mut pending = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        let no_comment = raw.split('#').next().unwrap_or("");
        if pending.is_empty() {
            start = i + 1;
        }
        if let Some(cont) = no_comment.trim_end().strip_suffix('\\') {
            pending.push_str(cont);
            pending.push(' ');
            continue;
        }
        pending.push_str(no_comment);
        let line = std::mem::take(&mut pending);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = strip_keyword(line, "include") {
            for pattern in rest.split_whitespace() {
                for file in files.expand(pattern, dir, (path, start))? {
                    read(files, &file, Some((path, start)), dir, out)?;
                }
            }
            continue;
        }
        let pairs = pairs(line).ok_or_else(|| {
            format!(
                "{path}:{start}: expected Key=Value pairs, got {:?}",
                short(line)
            )
        })?;
        out.push((path.to_string(), start, pairs));
    }
    files.leave();
    Ok(())
}

fn strip_keyword<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    let head = line.get(..word.len())?;
    let rest = &line[word.len()..];
    (head.eq_ignore_ascii_case(word) && rest.starts_with(char::is_whitespace)).then(|| rest.trim())
}

/// `A=1 B="x y" C=z` → pairs; `None` when a token has no `=`.
fn pairs(line: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return None;
        }
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        out.push((key.to_string(), value));
        rest = next.trim_start();
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_with_quotes() {
        assert_eq!(
            pairs("NodeName=gpu01 CPUs=64 Feature=\"a b\"").unwrap(),
            [
                ("NodeName".to_string(), "gpu01".to_string()),
                ("CPUs".into(), "64".into()),
                ("Feature".into(), "a b".into())
            ]
        );
        assert!(pairs("just words").is_none());
        assert!(pairs("A=\"unterminated").is_none());
    }
}
