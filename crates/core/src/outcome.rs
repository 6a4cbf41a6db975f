//! What a run produces: one [`Status`] per property, check and control.

use std::time::Duration;

use serde::Serialize;

/// The four outcomes of anything nodecheck evaluates.
///
/// Ordered by gravity so that the outcome of a group is the `max` of its
/// members' outcomes, except that a group whose members were all skipped is
/// skipped (see [`Status::combine`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not applicable here; the reason says why.
    Skip,
    /// The target is as the profile says.
    Pass,
    /// The target is wrong.
    Fail,
    /// The check could not be evaluated (permission, timeout, unreadable or
    /// corrupt input, a bug in the check).
    Error,
}

impl Status {
    /// The outcome of a group: the gravest member, or skip for an empty or
    /// all-skipped group.
    pub fn combine(statuses: impl IntoIterator<Item = Status>) -> Status {
        statuses.into_iter().max().unwrap_or(Status::Skip)
    }

    /// Lower-case name, as used in JSON and the terminal.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Skip => "skip",
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
        }
    }
}

/// The outcome of one property of a check (`mode`, `owner`, `exists`, …).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PropertyResult {
    /// The profile key this result is for.
    pub key: String,
    pub status: Status,
    /// What the profile asked for, rendered for humans (`0400`, `matches ^ID=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What the target had (`0644`), when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// One line a sysadmin can act on: `mode: expected 0400, got 0644`,
    /// or the skip/error reason.
    pub message: String,
}

/// The most characters a property's message, expected or actual value
/// keeps: a check that quotes what it read (a 50 MB line of a hostile
/// file) must still make a message, not a copy of the file.
pub const MESSAGE_MAX: usize = 4096;

fn bounded(text: String) -> String {
    match crate::text::clip(&text, MESSAGE_MAX) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(cut) => cut,
    }
}

impl PropertyResult {
    /// Compare-style result with the canonical message
    /// `KEY: expected EXPECTED, got ACTUAL`.
    pub fn compare(
        key: impl Into<String>,
        ok: bool,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Self {
        let key = key.into();
        let expected = bounded(expected.into());
        let actual = bounded(actual.into());
        let message = format!("{key}: expected {expected}, got {actual}");
        PropertyResult {
            key,
            status: if ok { Status::Pass } else { Status::Fail },
            expected: Some(expected),
            actual: Some(actual),
            message,
        }
    }

    /// A passing or failing property with a free-form message.
    pub fn verdict(key: impl Into<String>, ok: bool, message: impl Into<String>) -> Self {
        PropertyResult {
            key: key.into(),
            status: if ok { Status::Pass } else { Status::Fail },
            expected: None,
            actual: None,
            message: bounded(message.into()),
        }
    }

    /// A property that could not be evaluated.
    pub fn error(key: impl Into<String>, message: impl Into<String>) -> Self {
        PropertyResult {
            key: key.into(),
            status: Status::Error,
            expected: None,
            actual: None,
            message: bounded(message.into()),
        }
    }

    /// A property that does not apply; `reason` is shown as is.
    pub fn skip(key: impl Into<String>, reason: impl Into<String>) -> Self {
        PropertyResult {
            key: key.into(),
            status: Status::Skip,
            expected: None,
            actual: None,
            message: bounded(reason.into()),
        }
    }

    /// Adds an expected value to a verdict (for reports that show both).
    pub fn with_expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(bounded(expected.into()));
        self
    }

    /// Adds an actual value to a verdict.
    pub fn with_actual(mut self, actual: impl Into<String>) -> Self {
        self.actual = Some(bounded(actual.into()));
        self
    }
}

/// What a kind returns for one check: a result per property, plus any
/// longer output worth keeping (JUnit system-out, JSON `output`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evaluation {
    pub properties: Vec<PropertyResult>,
    /// Free text: command output, the full list of broken files, ….
    pub output: String,
}

impl Evaluation {
    pub fn push(&mut self, r: PropertyResult) {
        self.properties.push(r);
    }

    /// The whole check errored before any property could be looked at.
    pub fn error(key: impl Into<String>, message: impl Into<String>) -> Self {
        Evaluation {
            properties: vec![PropertyResult::error(key, message)],
            output: String::new(),
        }
    }
}

impl From<Vec<PropertyResult>> for Evaluation {
    fn from(properties: Vec<PropertyResult>) -> Self {
        Evaluation {
            properties,
            output: String::new(),
        }
    }
}

/// Serializes a duration as fractional seconds.
pub(crate) fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combine_is_gravest_and_empty_is_skip() {
        assert_eq!(Status::combine([]), Status::Skip);
        assert_eq!(Status::combine([Status::Skip, Status::Skip]), Status::Skip);
        assert_eq!(Status::combine([Status::Skip, Status::Pass]), Status::Pass);
        assert_eq!(Status::combine([Status::Pass, Status::Fail]), Status::Fail);
        assert_eq!(
            Status::combine([Status::Error, Status::Fail]),
            Status::Error
        );
    }

    #[test]
    fn messages_quoting_input_stay_bounded() {
        let line = "x".repeat(50 << 20);
        let r = PropertyResult::compare("content", false, "\"y\"", line.as_str());
        assert!(r.message.len() < 2 * MESSAGE_MAX, "{}", r.message.len());
        assert!(
            r.message
                .ends_with(&format!("… ({} bytes in all)", 50 << 20))
        );
        let r = PropertyResult::error("settings", format!("bad line {line}"));
        assert!(r.message.len() < 2 * MESSAGE_MAX);
        let r = PropertyResult::verdict("x", false, "m").with_actual(line);
        assert!(r.actual.unwrap().len() < 2 * MESSAGE_MAX);
    }

    #[test]
    fn compare_message_says_expected_and_got() {
        let r = PropertyResult::compare("mode", false, "0400", "0644");
        assert_eq!(r.message, "mode: expected 0400, got 0644");
        assert_eq!(r.status, Status::Fail);
    }
}
