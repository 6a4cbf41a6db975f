//! Formats of the HPC stack's own files: Apptainer/Singularity's
//! `apptainer.conf`/`singularity.conf`, Slurm's `gres.conf` (records) and
//! `plugstack.conf` (SPANK plugins).

use nodecheck_core::hostlist::HostList;

use super::ini::short;
use super::{Entry, Files, Parsed};

/// `singularity.conf` / `apptainer.conf`: `key = value` lines whose keys
/// hold spaces (`allow setuid = no`, `bind path = /etc/hosts`), `#`
/// comments. Runs of blanks in a key count as one. A key set on several
/// lines (`bind path`, `limit container owners`) is one entry holding
/// every value, one per line, in file order, at the place of the first.
pub fn apptainer(path: &str, text: &str) -> Result<Parsed, String> {
    let mut entries: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "{path}:{}: expected `key = value`, got {:?}",
                i + 1,
                short(line)
            ));
        };
        let key = key.split_whitespace().collect::<Vec<_>>().join(" ");
        if key.is_empty() {
            return Err(format!("{path}:{}: a value without a key", i + 1));
        }
        push_all(
            &mut entries,
            Entry::new(&key, value.trim().to_string(), path, i + 1),
            true,
        );
    }
    Ok(Parsed {
        entries,
        first_wins: false,
        case_insensitive: true,
    })
}

/// Adds `e`, or appends its value to an entry of the same key (compared
/// without case when `nocase`): every value is kept, one per line.
fn push_all(entries: &mut Vec<Entry>, e: Entry, nocase: bool) {
    let same = |a: &str| {
        if nocase {
            a.eq_ignore_ascii_case(&e.key)
        } else {
            a == e.key
        }
    };
    match entries.iter_mut().find(|x| same(&x.key)) {
        Some(x) => {
            x.value.push('\n');
            x.value.push_str(&e.value);
        }
        None => entries.push(e),
    }
}

/// The most nodes a `NodeName=` hostlist of gres.conf is expanded to.
const GRES_EXPAND_LIMIT: usize = 65_536;

/// gres.conf(5): `Key=Value` pairs, read like slurm.conf (comments,
/// continuations, `Include`), but every line is a record and a node may
/// have several: `NodeName=gpu[01-02] Name=gpu Type=a100 File=/dev/nvidia0`
/// gives `NodeName[gpu01].Name`, `NodeName[gpu01].File`, … for each node of
/// the hostlist, and the values of all lines for the same node are kept,
/// one per line, in file order (`File` = `/dev/nvidia0` and `/dev/nvidia1`
/// from two lines). Lines without `NodeName` apply to every node and give
/// plain `Name`, `File`, … entries, also keeping every value.
pub fn gres(files: &mut Files<'_>, path: &str) -> Result<Parsed, String> {
    let plain = super::slurm::parse_pairs(files, path)?;
    let mut entries: Vec<Entry> = Vec::new();
    for (file, line, pairs) in plain {
        let node = pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("nodename"))
            .map(|(_, v)| v.clone());
        let rest = pairs
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("nodename"));
        let Some(node) = node else {
            for (k, v) in rest {
                push_all(&mut entries, Entry::new(k, v.clone(), &file, line), true);
            }
            continue;
        };
        let names = HostList::parse(&node)
            .ok()
            .filter(|l| l.len() <= GRES_EXPAND_LIMIT as u128)
            .and_then(|l| l.expand().ok())
            .unwrap_or_else(|| vec![node.clone()]);
        for n in names {
            let record = format!("NodeName[{n}]");
            push_all(
                &mut entries,
                Entry::new(&record, n.clone(), &file, line),
                true,
            );
            for (k, v) in rest.clone() {
                push_all(
                    &mut entries,
                    Entry::new(&format!("{record}.{k}"), v.clone(), &file, line),
                    true,
                );
            }
        }
    }
    Ok(Parsed {
        entries,
        first_wins: false,
        case_insensitive: true,
    })
}

/// plugstack.conf (spank(8)): `required|optional PLUGIN [ARGS…]` lines and
/// `include PATTERN` (globs, relative to the file's directory), `#`
/// comments. Each plugin is an entry named by its path as written and one
/// named by its file name (`container_singularity.so`), whose value is
/// `required` or `optional`; `NAME.args` holds its arguments.
pub fn plugstack(files: &mut Files<'_>, path: &str) -> Result<Parsed, String> {
    let dir = path
        .rsplit_once('/')
        .map_or("/", |(d, _)| if d.is_empty() { "/" } else { d })
        .to_string();
    let mut entries = Vec::new();
    plugstack_file(files, path, None, &dir, &mut entries)?;
    Ok(Parsed {
        entries,
        first_wins: false,
        case_insensitive: false,
    })
}

fn plugstack_file(
    files: &mut Files<'_>,
    path: &str,
    from: Option<(&str, usize)>,
    dir: &str,
    out: &mut Vec<Entry>,
) -> Result<(), String> {
    let text = files.enter(path, from)?;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(first), rest) = (words.next(), words) else {
            continue;
        };
        let rest: Vec<&str> = rest.collect();
        match first {
            "include" => {
                if rest.is_empty() {
                    return Err(format!("{path}:{}: `include` without a file", i + 1));
                }
                for pattern in rest {
                    for file in files.expand(pattern, dir, (path, i + 1))? {
                        plugstack_file(files, &file, Some((path, i + 1)), dir, out)?;
                    }
                }
            }
            "required" | "optional" => {
                let Some((plugin, args)) = rest.split_first() else {
                    return Err(format!("{path}:{}: `{first}` without a plugin", i + 1));
                };
                let base = plugin.rsplit('/').next().unwrap_or(plugin);
                for name in [*plugin, base] {
                    out.push(Entry::new(name, first.to_string(), path, i + 1));
                    out.push(Entry::new(
                        &format!("{name}.args"),
                        args.join(" "),
                        path,
                        i + 1,
                    ));
                    if name == base {
                        break;
                    }
                }
            }
            _ => {
                return Err(format!(
                    "{path}:{}: expected `required PLUGIN`, `optional PLUGIN` or `include FILE`, got {:?}",
                    i + 1,
                    short(line)
                ));
            }
        }
    }
    files.leave();
    Ok(())
}
