//! `modules.dep`: one line per module file, `path: dep dep …`, the whole
//! dependency list of the module (depmod has already closed it).
//!
//! Parsed into a compact table: the file's text is kept once and lines,
//! paths and names are offsets into it, names are found by binary search
//! in a sorted list. A Debian kernel's 4,000 lines take one pass and a
//! handful of allocations, and no input, however hostile, makes a lookup
//! slower than a logarithm (no hash table to flood with collisions).

use std::ops::Range;

use super::{SUFFIXES, normalize};

/// One valid line: where its path and dependency list are in the text,
/// and where its normalised name is in the names.
#[derive(Clone, Debug)]
struct Line {
    path: Range<u32>,
    deps: Range<u32>,
    name: Range<u32>,
}

/// A dependency of a module as modules.dep writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dep {
    /// A module with its own line, by id.
    Listed(usize),
    /// A path with no line of its own: a truncated or hand-edited
    /// modules.dep.
    Unlisted(String),
}

#[derive(Debug, Default)]
pub struct DepTable {
    text: String,
    lines: Vec<Line>,
    /// Every line's normalised name, one after the other.
    names: String,
    /// Line ids sorted by name; among equal names, file order.
    sorted: Vec<u32>,
}

impl DepTable {
    /// Parses `bytes`; bad lines are returned as `file:line: why`.
    pub fn parse(file: &str, bytes: Vec<u8>) -> (DepTable, Vec<String>) {
        // Invalid UTF-8 is replaced; only then can a line hold U+FFFD that
        // was not in the file.
        let (text, lossy) = match String::from_utf8(bytes) {
            Ok(t) => (t, false),
            Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
        };
        let mut t = DepTable::default();
        let mut bad = Vec::new();
        let mut at = 0usize;
        for (i, raw) in text.split('\n').enumerate() {
            let start = at;
            at += raw.len() + 1;
            let n = i + 1;
            let line = raw.trim_end_matches('\r');
            if line.as_bytes().contains(&0) || (lossy && line.contains('\u{fffd}')) {
                bad.push(format!("{file}:{n}: not text"));
                continue;
            }
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let Some(colon) = line.find(':') else {
                bad.push(format!("{file}:{n}: no `:` in {}", shorten(line)));
                continue;
            };
            let left = line[..colon].trim();
            let Some(stem) = module_stem(left) else {
                bad.push(format!(
                    "{file}:{n}: {} is not a module file",
                    shorten(left)
                ));
                continue;
            };
            let right = &line[colon + 1..];
            if let Some(d) = right
                .split_ascii_whitespace()
                .find(|d| module_stem(d).is_none())
            {
                bad.push(format!(
                    "{file}:{n}: dependency {} is not a module file",
                    shorten(d)
                ));
                continue;
            }
            let left_at = start + (left.as_ptr() as usize - line.as_ptr() as usize);
            let name_at = t.names.len();
            t.names.push_str(&normalize(stem));
            t.lines.push(Line {
                path: offsets(left_at, left.len()),
                deps: offsets(start + colon + 1, right.len()),
                name: offsets(name_at, t.names.len() - name_at),
            });
        }
        t.text = text;
        let mut sorted: Vec<u32> = (0..t.lines.len() as u32).collect();
        sorted.sort_by(|&a, &b| t.name(a as usize).cmp(t.name(b as usize)));
        t.sorted = sorted;
        // Two lines for one file: depmod never writes that.
        for w in t.sorted.windows(2) {
            let (a, b) = (w[0] as usize, w[1] as usize);
            if t.name(a) == t.name(b) && t.path(a) == t.path(b) {
                bad.push(format!("{file}: {} is listed twice", t.path(b)));
            }
        }
        (t, bad)
    }

    /// How many modules have a line.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// The normalised name of module `id` (`pci_hyperv_intf`).
    pub fn name(&self, id: usize) -> &str {
        &self.names[range(&self.lines[id].name)]
    }

    /// The path of module `id` as modules.dep has it
    /// (`kernel/fs/xfs/xfs.ko`).
    pub fn path(&self, id: usize) -> &str {
        &self.text[range(&self.lines[id].path)]
    }

    /// The module of a normalised name: the first line with that name
    /// (depmod writes the file that wins its search order).
    pub fn by_name(&self, name: &str) -> Option<usize> {
        let i = self
            .sorted
            .partition_point(|&id| self.name(id as usize) < name);
        let id = *self.sorted.get(i)? as usize;
        (self.name(id) == name).then_some(id)
    }

    /// The dependencies of module `id`, in modules.dep order.
    pub fn deps(&self, id: usize) -> Vec<Dep> {
        self.text[range(&self.lines[id].deps)]
            .split_ascii_whitespace()
            .map(|path| {
                module_stem(path)
                    .and_then(|stem| self.by_name(&normalize(stem)))
                    .filter(|&d| self.path(d) == path)
                    .map_or_else(|| Dep::Unlisted(path.to_string()), Dep::Listed)
            })
            .collect()
    }

    /// Whether `path` has a line of its own.
    pub fn lists(&self, path: &str) -> bool {
        module_stem(path)
            .and_then(|stem| self.by_name(&normalize(stem)))
            .is_some_and(|id| self.path(id) == path)
    }
}

/// The file name of a module path without its suffix (`nfsv4` of
/// `kernel/fs/nfs/nfsv4.ko.xz`), when it is one: a module suffix after a
/// non-empty name, and no whitespace.
pub fn module_stem(path: &str) -> Option<&str> {
    if path.contains(char::is_whitespace) {
        return None;
    }
    let base = path.rsplit('/').next().unwrap_or(path);
    SUFFIXES
        .iter()
        .find_map(|s| base.strip_suffix(s))
        .filter(|stem| !stem.is_empty())
}

fn offsets(start: usize, len: usize) -> Range<u32> {
    // The text is at most READ_LIMIT (64 MiB) long.
    start as u32..(start + len) as u32
}

fn range(r: &Range<u32>) -> Range<usize> {
    r.start as usize..r.end as usize
}

/// A line or word for a message: at most 60 characters, quoted.
pub fn shorten(s: &str) -> String {
    let t: String = s.chars().take(60).collect();
    if t.len() < s.len() {
        format!("{t:?}…")
    } else {
        format!("{t:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_names_and_dependencies() {
        let (t, bad) = DepTable::parse(
            "m.dep",
            b"kernel/b-x.ko.xz:\nkernel/a.ko: kernel/b-x.ko.xz kernel/gone.ko\n\nkernel/c.ko:\n"
                .to_vec(),
        );
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(t.len(), 3);
        let a = t.by_name("a").unwrap();
        assert_eq!(t.path(a), "kernel/a.ko");
        assert_eq!(t.name(t.by_name("b_x").unwrap()), "b_x");
        assert_eq!(
            t.deps(a),
            vec![Dep::Listed(0), Dep::Unlisted("kernel/gone.ko".into())]
        );
        assert!(t.by_name("b-x").is_none());
        assert!(t.by_name("zz").is_none());
        assert!(t.lists("kernel/c.ko"));
        assert!(!t.lists("updates/c.ko"));
    }

    #[test]
    fn the_first_line_of_a_name_wins_and_duplicates_are_bad() {
        let (t, bad) = DepTable::parse(
            "m.dep",
            b"updates/x.ko:\nkernel/x.ko:\nkernel/y.ko:\nkernel/y.ko:\n".to_vec(),
        );
        assert_eq!(t.path(t.by_name("x").unwrap()), "updates/x.ko");
        assert_eq!(bad, vec!["m.dep: kernel/y.ko is listed twice"]);
    }

    #[test]
    fn invalid_utf8_is_a_bad_line_not_a_lost_file() {
        let (t, bad) =
            DepTable::parse("m.dep", b"kernel/a.ko:\n\xff\xfe:\nkernel/b.ko:\n".to_vec());
        assert_eq!(bad, vec!["m.dep:2: not text"]);
        assert_eq!(t.path(t.by_name("b").unwrap()), "kernel/b.ko");
    }
}
