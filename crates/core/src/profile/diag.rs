//! Profile diagnostics: every problem found while loading, with a stable
//! code and the file:line:column it is at.

use std::fmt;

use super::Location;

/// Whether a diagnostic stops the profile from loading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Warning,
    Error,
}

/// One problem in a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub level: Level,
    /// Stable kebab-case code (`unknown-key`, `duplicate-control-id`); the
    /// full list is in docs/diagnostics.md and snapshot-tested.
    pub code: &'static str,
    /// Lower-case sentence saying what is wrong and what was expected.
    pub message: String,
    pub location: Option<Location>,
    /// The source line the location points into, for a caret display.
    pub source_line: Option<String>,
    /// Width of the underlined span on `source_line` (at least 1).
    pub width: usize,
    /// The 1-based column of the caret on `source_line` when that is an
    /// excerpt of a long line; 0: the location's column.
    pub source_column: usize,
}

/// The most characters of a profile line a diagnostic quotes, and of its
/// message: a 50 MB line must not make a 100 MB diagnostic.
pub const LINE_MAX: usize = 160;
/// The most characters a diagnostic's message keeps.
pub const MESSAGE_MAX: usize = 2000;

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            level: Level::Error,
            code,
            message: crate::text::clip(&message.into(), MESSAGE_MAX).into_owned(),
            location: None,
            source_line: None,
            width: 1,
            source_column: 0,
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            level: Level::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub fn at(mut self, location: Location) -> Diagnostic {
        self.location = Some(location);
        self
    }

    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        write!(f, "{level}[{}]: {}", self.code, self.message)?;
        if let (Some(line), Some(loc)) = (&self.source_line, &self.location) {
            let col = match self.source_column {
                0 => loc.column.max(1) as usize,
                c => c,
            };
            let pad: String = line
                .chars()
                .take(col - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(
                f,
                "\n    | {line}\n    | {pad}{}",
                "^".repeat(self.width.max(1))
            )?;
        }
        Ok(())
    }
}

/// All diagnostics of a load; an error return of [`super::load`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        let n = self.errors().count();
        if n > 0 {
            write!(f, "\n{n} error{} in profile", if n == 1 { "" } else { "s" })?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// ", did you mean `x`?" for a near miss, or nothing.
pub(crate) fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    candidates
        .map(|c| (distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3) && *d < word.len().max(1))
        .min()
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

/// Edit distance (Levenshtein) between a word and a candidate.
fn distance(a: &str, b: &str) -> usize {
    strsim::levenshtein(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_only() {
        let keys = ["path", "owner", "group", "mode"];
        assert_eq!(
            suggest("ownr", keys.iter().copied()),
            " (did you mean `owner`?)"
        );
        assert_eq!(
            suggest("mdoe", keys.iter().copied()),
            " (did you mean `mode`?)"
        );
        assert_eq!(suggest("frobnicate", keys.iter().copied()), "");
    }
}
