//! Stage one: a profile file as a tree of values that remember where they
//! were written. Nothing is interpreted yet; stage two (`load.rs`) turns
//! this into checked types.

use std::path::PathBuf;
use std::sync::Arc;

use toml::de::{DeTable, DeValue};

use super::{Diagnostic, Location};

/// A profile file's text and where its lines start, to turn byte spans into
/// line:column.
pub(crate) struct Source {
    pub path: Arc<PathBuf>,
    pub text: String,
    line_starts: Vec<usize>,
}

impl Source {
    pub fn new(path: PathBuf, text: String) -> Source {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source {
            path: Arc::new(path),
            text,
            line_starts,
        }
    }

    /// The 1-based line and (character) column of a byte offset.
    pub fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let column = self.text[start..offset].chars().count() + 1;
        Location {
            file: self.path.clone(),
            line: line as u32 + 1,
            column: column as u32,
        }
    }

    /// The text of a 1-based line, without its newline.
    pub fn line(&self, line: u32) -> Option<&str> {
        let i = line.checked_sub(1)? as usize;
        let start = *self.line_starts.get(i)?;
        let end = self
            .line_starts
            .get(i + 1)
            .map_or(self.text.len(), |e| e - 1);
        Some(self.text[start..end].trim_end_matches('\r'))
    }

    /// A diagnostic at a byte span, with the source line for a caret. A
    /// line longer than [`LINE_MAX`](super::diag::LINE_MAX) characters is
    /// quoted as an excerpt around the span.
    pub fn diag(&self, mut d: Diagnostic, span: std::ops::Range<usize>) -> Diagnostic {
        use super::diag::LINE_MAX;
        let loc = self.location(span.start);
        let line = self.line(loc.line).unwrap_or("");
        let width = self.text[span.start.min(self.text.len())..span.end.min(self.text.len())]
            .split('\n')
            .next()
            .map_or(1, |s| s.chars().count());
        let col = (loc.column as usize).max(1);
        let line_len = line.chars().count();
        if line_len <= LINE_MAX {
            d.source_line = self.line(loc.line).map(str::to_string);
            d.width = width.clamp(1, line_len.saturating_sub(col - 1).max(1));
        } else {
            // Some context before the caret, the rest after it.
            let first = (col - 1).saturating_sub(LINE_MAX / 4);
            let shown: String = line.chars().skip(first).take(LINE_MAX).collect();
            let lead = if first > 0 { "…" } else { "" };
            let trail = if first + LINE_MAX < line_len {
                "…"
            } else {
                ""
            };
            d.source_line = Some(format!(
                "{lead}{shown}{trail} ({} bytes in all)",
                line.len()
            ));
            d.source_column = col - first + usize::from(first > 0);
            d.width = width.clamp(1, LINE_MAX - (col - 1 - first));
        }
        d.location = Some(loc);
        d
    }
}

/// A value with its place in the profile.
#[derive(Clone)]
pub(crate) struct Sv {
    pub v: V,
    pub loc: Location,
    /// The file and byte span, to show the source line in diagnostics
    /// (looked up only when a diagnostic is made).
    pub src: Arc<Source>,
    pub span: std::ops::Range<usize>,
}

impl std::fmt::Debug for Sv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} at {}", self.v, self.loc)
    }
}

#[derive(Clone, Debug)]
pub(crate) enum V {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Array(Vec<Sv>),
    Table(Vec<Entry>),
}

/// A key = value of a table; `key_loc` points at the key itself.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub key: String,
    pub key_at: Sv,
    pub value: Sv,
}

impl V {
    /// The TOML type name, for "expected X, got Y".
    pub fn type_name(&self) -> &'static str {
        match self {
            V::Str(_) => "a string",
            V::Int(_) => "an integer",
            V::Float(_) => "a float",
            V::Bool(_) => "a boolean",
            V::Datetime(_) => "a date",
            V::Array(_) => "an array",
            V::Table(_) => "a table",
        }
    }
}

impl Sv {
    /// A diagnostic pointing at this value.
    pub fn diag(&self, d: Diagnostic) -> Diagnostic {
        self.src.diag(d, self.span.clone())
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.v {
            V::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_table(&self) -> Option<&[Entry]> {
        match &self.v {
            V::Table(t) => Some(t),
            _ => None,
        }
    }
}

/// Parses a profile file into a spanned value tree, collecting every
/// syntax error.
pub(crate) fn parse(src: &Arc<Source>, diags: &mut Vec<Diagnostic>) -> Option<Sv> {
    let (doc, errors) = DeTable::parse_recoverable(&src.text);
    let failed = !errors.is_empty();
    for e in errors {
        let span = e.span().unwrap_or(0..0);
        let msg = e.message().trim().to_string();
        diags.push(src.diag(
            Diagnostic::error("syntax", format!("invalid TOML: {}", lowercase_first(&msg))),
            span,
        ));
    }
    if failed {
        return None;
    }
    let span = doc.span();
    Some(convert_table(src, doc.into_inner(), span))
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn spanned(src: &Arc<Source>, v: V, span: std::ops::Range<usize>) -> Sv {
    Sv {
        v,
        loc: src.location(span.start),
        src: src.clone(),
        span,
    }
}

fn convert_table(src: &Arc<Source>, t: DeTable<'_>, span: std::ops::Range<usize>) -> Sv {
    let mut entries = Vec::new();
    for (k, v) in t {
        let kspan = k.span();
        let key = k.into_inner().into_owned();
        let key_at = spanned(src, V::Str(key.clone()), kspan);
        let vspan = v.span();
        let value = convert(src, v.into_inner(), vspan);
        entries.push(Entry { key, key_at, value });
    }
    spanned(src, V::Table(entries), span)
}

fn convert(src: &Arc<Source>, v: DeValue<'_>, span: std::ops::Range<usize>) -> Sv {
    let v = match v {
        DeValue::String(s) => V::Str(s.into_owned()),
        DeValue::Integer(i) => {
            let digits: String = i.as_str().chars().filter(|c| *c != '_').collect();
            let digits = digits
                .trim_start_matches('+')
                .trim_start_matches("0x")
                .trim_start_matches("0o")
                .trim_start_matches("0b");
            match i64::from_str_radix(digits, i.radix()) {
                Ok(n) => V::Int(n),
                Err(_) => V::Str(i.as_str().to_string()),
            }
        }
        DeValue::Float(f) => V::Float(f.as_str().replace('_', "").parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => V::Bool(b),
        DeValue::Datetime(d) => V::Datetime(d.to_string()),
        DeValue::Array(a) => V::Array(
            a.into_iter()
                .map(|e| {
                    let s = e.span();
                    convert(src, e.into_inner(), s)
                })
                .collect(),
        ),
        DeValue::Table(t) => return convert_table(src, t, span),
    };
    spanned(src, v, span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_one_based_lines_and_columns() {
        let src = Source::new("p.toml".into(), "a = 1\n  bé = 2\n".into());
        let l = src.location(src.text.find('=').unwrap());
        assert_eq!((l.line, l.column), (1, 3));
        let l = src.location(src.text.find("= 2").unwrap());
        assert_eq!((l.line, l.column), (2, 6));
        assert_eq!(src.line(2), Some("  bé = 2"));
    }

    #[test]
    fn syntax_errors_are_all_collected() {
        let src = Arc::new(Source::new("p.toml".into(), "a = \nb = [1,\n".into()));
        let mut d = Vec::new();
        assert!(parse(&src, &mut d).is_none());
        assert!(!d.is_empty());
        assert!(d.iter().all(|d| d.code == "syntax"));
        assert!(d[0].location.as_ref().unwrap().line >= 1);
    }
}
