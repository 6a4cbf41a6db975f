//! Matchers: what a property's value must look like.
//!
//! A plain value means equality; a table (`{ ge = "2.34", lt = "3" }`) holds
//! predicates that must all hold. Ordering predicates compare versions
//! (`2.10 > 2.9`) or quantities with units (`"256GiB"`, `"10%"`, `"30s"`).

use std::cmp::Ordering;
use std::fmt;
use std::time::Duration;

use regex::Regex;

use crate::kind::Compare;

/// A literal in a matcher.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Str(s) => f.write_str(s),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// One predicate of a matcher table.
#[derive(Clone, Debug)]
pub enum Pred {
    Eq(Scalar),
    Ne(Scalar),
    Matches(Regex),
    NotMatches(Regex),
    Contains(String),
    NotContains(String),
    Ge(String),
    Gt(String),
    Le(String),
    Lt(String),
    OneOf(Vec<Scalar>),
}

/// The names of the predicate keys, for diagnostics.
pub const PRED_KEYS: &[&str] = &[
    "eq",
    "ne",
    "matches",
    "not_matches",
    "contains",
    "not_contains",
    "ge",
    "gt",
    "le",
    "lt",
    "one_of",
];

/// What a property actually is on the target.
#[derive(Clone, Copy, Debug)]
pub enum Actual<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
    List(&'a [String]),
    /// An amount; `total` is what a percentage is relative to (a
    /// filesystem's size for `free = "10%"`).
    Amount {
        value: f64,
        total: Option<f64>,
    },
}

impl fmt::Display for Actual<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actual::Str(s) => f.write_str(s),
            Actual::Int(i) => write!(f, "{i}"),
            Actual::Bool(b) => write!(f, "{b}"),
            Actual::List(l) => write!(f, "[{}]", l.join(", ")),
            Actual::Amount { value, total } => match total {
                Some(t) if *t > 0.0 => {
                    write!(f, "{} ({:.1}%)", human_amount(*value), value / t * 100.0)
                }
                _ => f.write_str(&human_amount(*value)),
            },
        }
    }
}

/// A value or matcher table, compiled.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub preds: Vec<Pred>,
    pub compare: Compare,
}

impl Matcher {
    /// Whether every predicate holds, comparing versions with the generic
    /// version order.
    pub fn test(&self, actual: Actual<'_>) -> bool {
        self.test_with(actual, &version_cmp)
    }

    /// Like [`Matcher::test`] with a caller's version order (dpkg's, rpm's).
    pub fn test_with(&self, actual: Actual<'_>, vcmp: &dyn Fn(&str, &str) -> Ordering) -> bool {
        self.preds
            .iter()
            .all(|p| p.test(actual, self.compare, vcmp))
    }

    /// The expectation in words: `0400`, `>= 2.34 and < 3`, `matches ^ID=`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self.preds.iter().map(Pred::describe).collect();
        parts.join(" and ")
    }

    /// The single equality value of a plain `key = value`, if that is what
    /// this matcher is.
    pub fn as_eq(&self) -> Option<&Scalar> {
        match self.preds.as_slice() {
            [Pred::Eq(s)] => Some(s),
            _ => None,
        }
    }
}

impl Pred {
    fn describe(&self) -> String {
        match self {
            Pred::Eq(s) => s.to_string(),
            Pred::Ne(s) => format!("not {s}"),
            Pred::Matches(r) => format!("matching /{}/", pattern(r)),
            Pred::NotMatches(r) => format!("not matching /{}/", pattern(r)),
            Pred::Contains(s) => format!("containing {s:?}"),
            Pred::NotContains(s) => format!("not containing {s:?}"),
            Pred::Ge(s) => format!(">= {s}"),
            Pred::Gt(s) => format!("> {s}"),
            Pred::Le(s) => format!("<= {s}"),
            Pred::Lt(s) => format!("< {s}"),
            Pred::OneOf(v) => {
                let v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
                format!("one of [{}]", v.join(", "))
            }
        }
    }

    fn test(
        &self,
        actual: Actual<'_>,
        compare: Compare,
        vcmp: &dyn Fn(&str, &str) -> Ordering,
    ) -> bool {
        match self {
            Pred::Eq(s) => equals(actual, s, compare),
            Pred::Ne(s) => !equals(actual, s, compare),
            Pred::OneOf(v) => v.iter().any(|s| equals(actual, s, compare)),
            Pred::Matches(r) => text(actual).is_some_and(|t| r.is_match(&t)),
            Pred::NotMatches(r) => text(actual).is_some_and(|t| !r.is_match(&t)),
            Pred::Contains(s) => contains(actual, s),
            Pred::NotContains(s) => !contains(actual, s),
            Pred::Ge(s) => order(actual, s, compare, vcmp).is_some_and(|o| o != Ordering::Less),
            Pred::Gt(s) => order(actual, s, compare, vcmp) == Some(Ordering::Greater),
            Pred::Le(s) => order(actual, s, compare, vcmp).is_some_and(|o| o != Ordering::Greater),
            Pred::Lt(s) => order(actual, s, compare, vcmp) == Some(Ordering::Less),
        }
    }
}

/// The pattern as the profile wrote it (the loader adds multi-line mode).
fn pattern(r: &Regex) -> &str {
    r.as_str().strip_prefix("(?m)").unwrap_or(r.as_str())
}

fn text(actual: Actual<'_>) -> Option<String> {
    match actual {
        Actual::List(l) => Some(l.join("\n")),
        other => Some(other.to_string()),
    }
}

fn equals(actual: Actual<'_>, expected: &Scalar, compare: Compare) -> bool {
    match (actual, expected) {
        (Actual::Bool(a), Scalar::Bool(b)) => a == *b,
        (Actual::Int(a), Scalar::Int(b)) => a == *b,
        (Actual::List(l), Scalar::Str(s)) => l.len() == 1 && l[0] == *s,
        (Actual::Amount { value, total }, e) => {
            parse_quantity(&e.to_string()).is_some_and(|q| (q.resolve(total) - value).abs() < 0.5)
        }
        (a, e) if compare != Compare::Version => {
            match (
                parse_quantity(&a.to_string()),
                parse_quantity(&e.to_string()),
            ) {
                (Some(x), Some(y)) => (x.value - y.value).abs() < 1e-9 && x.percent == y.percent,
                _ => a.to_string() == e.to_string(),
            }
        }
        (a, e) => a.to_string() == e.to_string(),
    }
}

fn contains(actual: Actual<'_>, needle: &str) -> bool {
    match actual {
        Actual::List(l) => l.iter().any(|e| e == needle),
        Actual::Str(s) => s.contains(needle),
        other => other.to_string().contains(needle),
    }
}

fn order(
    actual: Actual<'_>,
    expected: &str,
    compare: Compare,
    vcmp: &dyn Fn(&str, &str) -> Ordering,
) -> Option<Ordering> {
    match (compare, actual) {
        (_, Actual::Amount { value, total }) => {
            let e = parse_quantity(expected)?.resolve(total);
            value.partial_cmp(&e)
        }
        (Compare::Version, a) => Some(vcmp(&a.to_string(), expected)),
        (_, a) => {
            let x = parse_quantity(&a.to_string())?;
            let y = parse_quantity(expected)?;
            x.value.partial_cmp(&y.value)
        }
    }
}

/// Compares two version strings the way people read them: runs of digits
/// numerically, other runs byte-wise, `~` before anything (Debian's
/// pre-release marker), and a longer version after its prefix
/// (`6.1.0-28 > 6.1.0-9`, `2.10 > 2.9`, `1.0~rc1 < 1.0`).
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (Some(b'~'), Some(b'~')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (Some(b'~'), _) => return Ordering::Less,
            (_, Some(b'~')) => return Ordering::Greater,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let na = trim_zeros(&a[..da]);
                let nb = trim_zeros(&b[..db]);
                let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if o != Ordering::Equal {
                    return o;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) if x.is_ascii_digit() != y.is_ascii_digit() => {
                // A number sorts after a separator or letter run: 1.0.1 > 1.0a.
                return if x.is_ascii_digit() {
                    Ordering::Greater
                } else {
                    Ordering::Less
                };
            }
            (Some(x), Some(y)) => {
                if x != y {
                    // dpkg's order: letters before other characters.
                    let rank = |c: u8| u16::from(c) + if c.is_ascii_alphabetic() { 0 } else { 256 };
                    return rank(*x).cmp(&rank(*y));
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|&&c| c == b'0').count();
    &d[n..]
}

/// A number with its unit resolved: bytes, seconds, or a percentage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantity {
    pub value: f64,
    pub percent: bool,
}

impl Quantity {
    /// The absolute value, a percentage taken of `total` when there is one.
    pub fn resolve(self, total: Option<f64>) -> f64 {
        match (self.percent, total) {
            (true, Some(t)) => self.value / 100.0 * t,
            _ => self.value,
        }
    }
}

/// Parses `"256GiB"`, `"1.5G"`, `"10%"`, `"30s"`, `"500ms"`, `"4096"`.
///
/// Binary units for `K`/`M`/`G`/`T`/`P` with or without `iB` (as `free`,
/// `df -h` and NHC read them); `kB`/`MB`/`GB`/`TB` are decimal.
pub fn parse_quantity(s: &str) -> Option<Quantity> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().ok()?;
    let unit = unit.trim();
    let (mult, percent) = match unit {
        "" | "B" | "b" | "s" => (1.0, false),
        "%" => (1.0, true),
        "ms" => (1e-3, false),
        "m" | "min" => (60.0, false),
        "h" => (3600.0, false),
        "d" => (86400.0, false),
        "K" | "k" | "KiB" | "Ki" => (1024.0, false),
        "M" | "MiB" | "Mi" => (1024f64.powi(2), false),
        "G" | "GiB" | "Gi" => (1024f64.powi(3), false),
        "T" | "TiB" | "Ti" => (1024f64.powi(4), false),
        "P" | "PiB" | "Pi" => (1024f64.powi(5), false),
        "kB" | "KB" => (1e3, false),
        "MB" => (1e6, false),
        "GB" => (1e9, false),
        "TB" => (1e12, false),
        "PB" => (1e15, false),
        _ => return None,
    };
    Some(Quantity {
        value: value * mult,
        percent,
    })
}

/// Parses a duration: `"30s"`, `"500ms"`, `"2m"`, `"1h"`, or plain seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" | "sec" => value,
        "ms" => value / 1e3,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// A duration as a profile writes it, the one way nodecheck shows a
/// duration (budgets, timeouts, how long a program ran): `250ms`, `30s`,
/// `1.25s`, `2m`. Exact to the millisecond, so [`parse_duration`] reads
/// back what it wrote; below 10 ms a fraction is kept (`0.35ms`).
///
/// Not `humantime::format_duration`: it writes `1s 500ms`, which a profile
/// cannot hold, and `humantime::parse_duration` refuses the `1.5s` that
/// profiles and their docs use.
///
/// ```
/// use nodecheck_core::matcher::format_duration;
/// use std::time::Duration;
///
/// assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
/// assert_eq!(format_duration(Duration::from_secs(120)), "2m");
/// ```
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 10 && !d.subsec_nanos().is_multiple_of(1_000_000) {
        let text = format!("{:.3}", d.as_secs_f64() * 1e3);
        format!("{}ms", text.trim_end_matches('0').trim_end_matches('.'))
    } else if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        let text = format!("{}.{:03}", ms / 1000, ms % 1000);
        format!("{}s", text.trim_end_matches('0'))
    }
}

fn human_amount(v: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = v;
    let mut i = 0;
    while v.abs() >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0}{}", UNITS[i])
    } else {
        format!("{v:.1}{}", UNITS[i])
    }
}

/// A `mode` expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeSpec {
    /// Exactly these permission bits (setuid, setgid and sticky included).
    Exact(u32),
    /// No bit outside these: "no more permissive than".
    Max(u32),
}

impl ModeSpec {
    pub fn test(self, mode: u32) -> bool {
        let mode = mode & 0o7777;
        match self {
            ModeSpec::Exact(m) => mode == m,
            ModeSpec::Max(m) => mode & !m == 0,
        }
    }

    pub fn describe(self) -> String {
        match self {
            ModeSpec::Exact(m) => format_mode(m),
            ModeSpec::Max(m) => format!("at most {}", format_mode(m)),
        }
    }
}

/// Parses an octal mode string: `"0644"`, `"644"`, `"4755"`.
pub fn parse_mode(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    let m = u32::from_str_radix(s, 8).ok()?;
    (m <= 0o7777).then_some(m)
}

/// Renders permission bits as four octal digits.
pub fn format_mode(m: u32) -> String {
    format!("{:04o}", m & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(preds: Vec<Pred>, compare: Compare) -> Matcher {
        Matcher { preds, compare }
    }

    #[test]
    fn versions_order_like_people_read_them() {
        assert_eq!(version_cmp("2.10", "2.9"), Ordering::Greater);
        assert_eq!(version_cmp("6.1.0-28", "6.1.0-9"), Ordering::Greater);
        assert_eq!(version_cmp("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(version_cmp("2.34", "2.34"), Ordering::Equal);
        assert_eq!(version_cmp("2.034", "2.34"), Ordering::Equal);
        assert_eq!(version_cmp("1.0.1", "1.0a"), Ordering::Greater);
        assert_eq!(version_cmp("", "0"), Ordering::Less);
    }

    #[test]
    fn quantities_take_units() {
        assert_eq!(
            parse_quantity("256GiB").unwrap().value,
            256.0 * 1024f64.powi(3)
        );
        assert_eq!(parse_quantity("1.5G").unwrap().value, 1.5 * 1024f64.powi(3));
        assert!(parse_quantity("10%").unwrap().percent);
        assert_eq!(parse_quantity("30s").unwrap().value, 30.0);
        assert_eq!(parse_quantity("2GB").unwrap().value, 2e9);
        assert!(parse_quantity("lots").is_none());
        assert!(parse_quantity("5 parsecs").is_none());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("-1s"), None);
    }

    #[test]
    fn durations_are_written_as_profiles_write_them_and_read_back() {
        for (ms, text) in [
            (250, "250ms"),
            (0, "0ms"),
            (30_000, "30s"),
            (120_000, "2m"),
            (1500, "1.5s"),
            (1250, "1.25s"),
            (61_001, "61.001s"),
        ] {
            let d = Duration::from_millis(ms);
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text), Some(d), "{text} reads back");
        }
        assert_eq!(format_duration(Duration::from_micros(350)), "0.35ms");
        assert_eq!(format_duration(Duration::from_micros(2500)), "2.5ms");
        // Below a millisecond's resolution past 10 ms: whole milliseconds.
        assert_eq!(format_duration(Duration::from_micros(12_700)), "12ms");
    }

    #[test]
    fn version_matchers() {
        let v = m(
            vec![Pred::Ge("2.34".into()), Pred::Lt("3".into())],
            Compare::Version,
        );
        assert!(v.test(Actual::Str("2.36")));
        assert!(!v.test(Actual::Str("2.9")));
        assert!(!v.test(Actual::Str("3.0")));
        assert_eq!(v.describe(), ">= 2.34 and < 3");
    }

    #[test]
    fn amounts_and_percentages() {
        let free = m(vec![Pred::Ge("10%".into())], Compare::Amount);
        let a = Actual::Amount {
            value: 20.0,
            total: Some(100.0),
        };
        assert!(free.test(a));
        let a = Actual::Amount {
            value: 5.0,
            total: Some(100.0),
        };
        assert!(!free.test(a));
        let mem = m(vec![Pred::Ge("1GiB".into())], Compare::Amount);
        assert!(mem.test(Actual::Amount {
            value: 2.0 * 1024f64.powi(3),
            total: None
        }));
    }

    #[test]
    fn equality_contains_and_regex() {
        let eq = m(vec![Pred::Eq(Scalar::Str("root".into()))], Compare::Version);
        assert!(eq.test(Actual::Str("root")));
        assert!(!eq.test(Actual::Str("munge")));
        let list = vec!["a".to_string(), "b".to_string()];
        let c = m(vec![Pred::Contains("b".into())], Compare::Version);
        assert!(c.test(Actual::List(&list)));
        let re = Regex::new("(?m)^ID=debian$").unwrap();
        let r = m(vec![Pred::Matches(re)], Compare::Version);
        assert!(r.test(Actual::Str("NAME=x\nID=debian\n")));
        let size = m(
            vec![Pred::Eq(Scalar::Str("1KiB".into()))],
            Compare::Quantity,
        );
        assert!(size.test(Actual::Int(1024)));
        let one = m(
            vec![Pred::OneOf(vec![Scalar::Int(0), Scalar::Int(1)])],
            Compare::Quantity,
        );
        assert!(one.test(Actual::Int(1)));
        assert!(!one.test(Actual::Int(2)));
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0644"), Some(0o644));
        assert_eq!(parse_mode("4755"), Some(0o4755));
        assert_eq!(parse_mode("0999"), None);
        assert_eq!(parse_mode("rw-r--r--"), None);
        assert!(ModeSpec::Max(0o755).test(0o644));
        assert!(!ModeSpec::Max(0o640).test(0o666));
        assert!(ModeSpec::Exact(0o1777).test(0o41777));
        assert_eq!(ModeSpec::Max(0o600).describe(), "at most 0600");
    }
}
