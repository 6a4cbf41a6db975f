//! Slurm hostlists: `node[001-128,200],login1`, as `scontrol show hostnames`
//! reads them and `scontrol show hostlist` writes them.
//!
//! A hostlist is a comma-separated list of patterns; a pattern is text with
//! bracketed groups of numbers and ranges (`rack[1-2]-n[01-04]` is the
//! product of both groups). The width of a range's first number sets the
//! padding: `node[001-128]` names `node001` … `node128`, not `node1`.
//!
//! ```
//! use nodecheck_core::hostlist::{HostList, compress};
//!
//! let list = HostList::parse("node[001-128,200],login1").unwrap();
//! assert!(list.matches("node042"));
//! assert!(list.matches("node200"));
//! assert!(!list.matches("node42"));
//! assert!(!list.matches("node129"));
//! assert_eq!(list.len(), 130);
//!
//! let names = ["n01", "n02", "n03", "n07", "login"];
//! assert_eq!(compress(names.iter().copied()), "login,n[01-03,07]");
//! ```

use std::collections::BTreeMap;
use std::fmt;

/// The most names [`HostList::expand`] produces; a larger product is an
/// error instead of a huge allocation (`n[0-999999]x[0-999999]`).
pub const EXPAND_LIMIT: usize = 1 << 20;

/// A parsed hostlist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostList {
    patterns: Vec<Pattern>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    /// `[001-128,200]`: inclusive ranges, each with its padding width.
    Group(Vec<Range>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    lo: u64,
    hi: u64,
    /// Digits of the lower bound as written; numbers are zero-padded to it.
    width: usize,
}

/// Why a hostlist could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn err<T>(s: impl Into<String>) -> Result<T, Error> {
    Err(Error(s.into()))
}

impl HostList {
    /// Parses `node[001-128,200],login1`. An empty list, an unbalanced
    /// bracket, a reversed range or a number that is not one is an error.
    pub fn parse(text: &str) -> Result<HostList, Error> {
        let mut patterns = Vec::new();
        let mut depth = 0usize;
        let mut start = 0;
        let bytes = text.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'[' if depth > 0 => return err(format!("nested `[` at column {}", i + 1)),
                b'[' => depth += 1,
                b']' if depth == 0 => return err(format!("`]` without `[` at column {}", i + 1)),
                b']' => depth -= 1,
                b',' if depth == 0 => {
                    patterns.push(Pattern::parse(&text[start..i])?);
                    start = i + 1;
                }
                _ => {}
            }
        }
        if depth > 0 {
            return err(format!("`[` without `]` in {text:?}"));
        }
        patterns.push(Pattern::parse(&text[start..])?);
        Ok(HostList { patterns })
    }

    /// Whether `host` is one of the names of the list.
    pub fn matches(&self, host: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(&p.parts, host))
    }

    /// How many names the list holds (duplicates counted).
    pub fn len(&self) -> u128 {
        self.patterns.iter().map(Pattern::len).sum()
    }

    /// Whether the list holds no name (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every name, in the order written, each pattern's groups counting
    /// up from the right. More than [`EXPAND_LIMIT`] names is an error.
    pub fn expand(&self) -> Result<Vec<String>, Error> {
        if self.len() > EXPAND_LIMIT as u128 {
            return err(format!(
                "the hostlist names {} hosts, more than {EXPAND_LIMIT}",
                self.len()
            ));
        }
        let mut out = Vec::new();
        for p in &self.patterns {
            let mut names = vec![String::new()];
            for part in &p.parts {
                names = match part {
                    Part::Text(t) => names.into_iter().map(|n| n + t).collect(),
                    Part::Group(ranges) => {
                        let mut next = Vec::new();
                        for n in &names {
                            for r in ranges {
                                for i in r.lo..=r.hi {
                                    next.push(format!("{n}{i:0w$}", w = r.width));
                                }
                            }
                        }
                        next
                    }
                };
            }
            out.extend(names);
        }
        Ok(out)
    }
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, Error> {
        let text = text.trim();
        if text.is_empty() {
            return err("an empty host name");
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find('[') {
                Some(0) => {
                    let close = rest
                        .find(']')
                        .ok_or_else(|| Error("`[` without `]`".into()))?;
                    parts.push(Part::Group(group(&rest[1..close])?));
                    rest = &rest[close + 1..];
                }
                Some(i) => {
                    parts.push(Part::Text(literal(&rest[..i])?));
                    rest = &rest[i..];
                }
                None => {
                    parts.push(Part::Text(literal(rest)?));
                    rest = "";
                }
            }
        }
        Ok(Pattern { parts })
    }

    fn len(&self) -> u128 {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(_) => 1u128,
                Part::Group(r) => r.iter().map(|r| u128::from(r.hi - r.lo) + 1).sum(),
            })
            .fold(1u128, u128::saturating_mul)
    }

    fn matches(&self, parts: &[Part], host: &str) -> bool {
        let Some((first, rest)) = parts.split_first() else {
            return host.is_empty();
        };
        match first {
            Part::Text(t) => host
                .strip_prefix(t.as_str())
                .is_some_and(|h| self.matches(rest, h)),
            Part::Group(ranges) => {
                let digits = host.bytes().take_while(u8::is_ascii_digit).count();
                (1..=digits.min(20)).any(|n| {
                    let (num, tail) = host.split_at(n);
                    let Ok(value) = num.parse::<u64>() else {
                        return false;
                    };
                    ranges.iter().any(|r| {
                        (r.lo..=r.hi).contains(&value) && num.len() == width_of(value, r.width)
                    }) && self.matches(rest, tail)
                })
            }
        }
    }
}

/// Digits `value` is written with when padded to `width`.
fn width_of(value: u64, width: usize) -> usize {
    value.to_string().len().max(width)
}

fn literal(s: &str) -> Result<String, Error> {
    match s
        .chars()
        .find(|c| c.is_whitespace() || *c == ']' || c.is_control())
    {
        Some(c) => err(format!("{c:?} in host name {s:?}")),
        None => Ok(s.to_string()),
    }
}

fn group(inner: &str) -> Result<Vec<Range>, Error> {
    let number = |s: &str| -> Result<u64, Error> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return err(format!("{s:?} is not a number in [{inner}]"));
        }
        s.parse()
            .map_err(|_| Error(format!("{s} is too large in [{inner}]")))
    };
    let mut out = Vec::new();
    for item in inner.split(',') {
        let item = item.trim();
        let (lo_text, hi_text) = item.split_once('-').unwrap_or((item, item));
        let (lo, hi) = (number(lo_text)?, number(hi_text)?);
        if hi < lo {
            return err(format!("range {item} runs backwards in [{inner}]"));
        }
        out.push(Range {
            lo,
            hi,
            width: lo_text.trim().len(),
        });
    }
    Ok(out)
}

/// The shortest usual hostlist for `names`: names that end in a number
/// are grouped by what comes before it and by the number's padding, and
/// runs of numbers become ranges. Sorted; duplicates dropped.
pub fn compress<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    // (prefix, width) -> numbers; width 0 = written without padding.
    let mut groups: BTreeMap<(String, usize), Vec<u64>> = BTreeMap::new();
    let mut plain: Vec<String> = Vec::new();
    for name in names {
        let digits = name.bytes().rev().take_while(u8::is_ascii_digit).count();
        let (prefix, num) = name.split_at(name.len() - digits);
        match num.parse::<u64>() {
            Ok(n) if digits > 0 && digits <= 19 => {
                let width = if num.starts_with('0') && digits > 1 {
                    digits
                } else {
                    0
                };
                groups
                    .entry((prefix.to_string(), width))
                    .or_default()
                    .push(n);
            }
            _ => plain.push(name.to_string()),
        }
    }
    // An unpadded number as long as a padded group's width belongs there
    // (`n09`, `n10` → `n[09-10]`).
    let padded: Vec<(String, usize)> = groups.keys().filter(|(_, w)| *w > 0).cloned().collect();
    for (prefix, width) in padded {
        if let Some(natural) = groups.get_mut(&(prefix.clone(), 0)) {
            let (moved, kept): (Vec<u64>, Vec<u64>) =
                natural.iter().partition(|n| n.to_string().len() == width);
            *natural = kept;
            groups.entry((prefix, width)).or_default().extend(moved);
        }
    }
    let mut out: Vec<String> = plain;
    for ((prefix, width), mut nums) in groups {
        nums.sort_unstable();
        nums.dedup();
        if nums.is_empty() {
            continue;
        }
        if nums.len() == 1 {
            out.push(format!("{prefix}{:0width$}", nums[0]));
            continue;
        }
        let mut ranges: Vec<String> = Vec::new();
        let mut i = 0;
        while i < nums.len() {
            let mut j = i;
            while j + 1 < nums.len() && nums[j + 1] == nums[j] + 1 {
                j += 1;
            }
            if i == j {
                ranges.push(format!("{:0width$}", nums[i]));
            } else {
                ranges.push(format!("{:0width$}-{:0width$}", nums[i], nums[j]));
            }
            i = j + 1;
        }
        out.push(format!("{prefix}[{}]", ranges.join(",")));
    }
    out.sort();
    out.dedup();
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_pad_to_the_width_of_their_first_number() {
        let l = HostList::parse("node[001-128]").unwrap();
        assert!(l.matches("node001") && l.matches("node128") && l.matches("node064"));
        assert!(!l.matches("node1") && !l.matches("node0001") && !l.matches("node129"));
        assert!(!l.matches("node") && !l.matches("node001x") && !l.matches("xnode001"));
        let l = HostList::parse("n[1-10]").unwrap();
        assert!(l.matches("n1") && l.matches("n10"));
        assert!(!l.matches("n01"));
        // A number wider than the padding is written in full.
        let l = HostList::parse("n[08-100]").unwrap();
        assert!(l.matches("n08") && l.matches("n99") && l.matches("n100"));
        assert!(!l.matches("n8") && !l.matches("n099"));
    }

    #[test]
    fn lists_groups_and_products() {
        let l = HostList::parse("login1, gpu[01-02,07]-ib,rack[1-2]n[1-3]").unwrap();
        assert_eq!(l.len(), 1 + 3 + 6);
        assert_eq!(
            l.expand().unwrap(),
            [
                "login1", "gpu01-ib", "gpu02-ib", "gpu07-ib", "rack1n1", "rack1n2", "rack1n3",
                "rack2n1", "rack2n2", "rack2n3"
            ]
        );
        assert!(l.matches("gpu07-ib") && !l.matches("gpu07") && l.matches("rack2n3"));
        for name in l.expand().unwrap() {
            assert!(l.matches(&name), "{name}");
        }
        // Digits a group could take greedily or not: `n[1-2]1` holds n11, n21.
        let l = HostList::parse("n[1-2]1").unwrap();
        assert!(l.matches("n11") && l.matches("n21") && !l.matches("n1"));
    }

    #[test]
    fn bad_lists_are_errors() {
        for bad in [
            "",
            "a,,b",
            "n[1-",
            "n1-2]",
            "n[[1]]",
            "n[a-b]",
            "n[3-1]",
            "n[]",
            "n[1-2",
            "a b",
            "n[99999999999999999999999]",
        ] {
            assert!(HostList::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(
            HostList::parse("n[3-1]").unwrap_err().to_string(),
            "range 3-1 runs backwards in [3-1]"
        );
        let huge = HostList::parse("a[0-999999]b[0-999999]").unwrap();
        assert_eq!(huge.len(), 1_000_000_000_000);
        assert!(huge.expand().is_err());
        assert!(huge.matches("a5b7"));
    }

    #[test]
    fn compress_round_trips() {
        assert_eq!(compress(["n3", "n1", "n2", "n2"]), "n[1-3]");
        assert_eq!(compress(["n09", "n10", "n11"]), "n[09-11]");
        assert_eq!(compress(["n9", "n10"]), "n[9-10]");
        assert_eq!(compress(["login", "n7"]), "login,n7");
        assert_eq!(compress(["a1", "b1", "a2"]), "a[1-2],b1");
        let names = ["node001", "node002", "node003", "node128", "x", "y5"];
        let c = compress(names.iter().copied());
        assert_eq!(c, "node[001-003,128],x,y5");
        let mut back = HostList::parse(&c).unwrap().expand().unwrap();
        back.sort();
        assert_eq!(back, names);
    }
}
