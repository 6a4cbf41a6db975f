//! The validated profile: what the runner executes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::kind::Kind;
use crate::matcher::{Matcher, ModeSpec};
use crate::target::TargetKind;

/// A place in a profile file, 1-based.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    pub file: Arc<PathBuf>,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// How bad a failing control is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const NAMES: &'static [&'static str] = &["critical", "high", "medium", "low", "info"];

    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s {
            "critical" => Severity::Critical,
            "high" => Severity::High,
            "medium" => Severity::Medium,
            "low" => Severity::Low,
            "info" => Severity::Info,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A typed property value, checked against the kind's [`crate::kind::Ty`].
#[derive(Clone, Debug)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<String>),
    Map(BTreeMap<String, String>),
    Matcher(Matcher),
    /// A table of named matchers, in the order written.
    Matchers(Vec<NamedMatcher>),
    Mode(ModeSpec),
    Duration(Duration),
}

/// One entry of a [`crate::kind::Ty::MatcherMap`] table.
#[derive(Clone, Debug)]
pub struct NamedMatcher {
    /// The name as written (`PermitRootLogin`).
    pub name: String,
    pub matcher: Matcher,
    /// Where the name was written.
    pub location: Location,
}

/// One key = value of a check, with where it was written.
#[derive(Clone, Debug)]
pub struct Prop {
    pub key: &'static str,
    pub value: Value,
    pub location: Location,
}

/// One check: a resource kind applied to one subject.
#[derive(Clone, Debug)]
pub struct Check {
    pub kind: &'static dyn Kind,
    /// The subject key's value (`/etc/passwd`, `munge`).
    pub subject: String,
    /// The other keys, in the order written.
    pub props: Vec<Prop>,
    /// The `[[control.KIND]]` table header.
    pub location: Location,
    /// The control's `timeout`, for anything that executes.
    pub timeout: Option<Duration>,
    /// Where the check applies; elsewhere it is skipped with the reason.
    pub only_if: Option<Arc<super::OnlyIf>>,
}

impl Check {
    /// The property for `key`, if the profile set it.
    pub fn prop(&self, key: &str) -> Option<&Prop> {
        self.props.iter().find(|p| p.key == key)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.prop(key).map(|p| &p.value)
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn list(&self, key: &str) -> Option<&[String]> {
        match self.get(key)? {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn map(&self, key: &str) -> Option<&BTreeMap<String, String>> {
        match self.get(key)? {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn matcher(&self, key: &str) -> Option<&Matcher> {
        match self.get(key)? {
            Value::Matcher(m) => Some(m),
            _ => None,
        }
    }

    pub fn matchers(&self, key: &str) -> Option<&[NamedMatcher]> {
        match self.get(key)? {
            Value::Matchers(m) => Some(m),
            _ => None,
        }
    }

    pub fn mode(&self, key: &str) -> Option<&ModeSpec> {
        match self.get(key)? {
            Value::Mode(m) => Some(m),
            _ => None,
        }
    }

    pub fn duration(&self, key: &str) -> Option<Duration> {
        match self.get(key)? {
            Value::Duration(d) => Some(*d),
            _ => None,
        }
    }

    /// `kind subject`, e.g. `file /etc/passwd`: the check's name in reports;
    /// just `kind` when an optional subject was left out.
    pub fn name(&self) -> String {
        if self.subject.is_empty() {
            return self.kind.name().to_string();
        }
        format!("{} {}", self.kind.name(), self.subject)
    }
}

/// A waiver that applies to a control.
#[derive(Clone, Debug, Serialize)]
pub struct Waiver {
    /// The id or glob as written.
    pub control: String,
    pub reason: String,
    /// `YYYY-MM-DD`, the last day the waiver applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(skip)]
    pub location: Option<Location>,
}

/// One control after includes, matrix expansion and interpolation.
#[derive(Clone, Debug)]
pub struct Control {
    pub id: String,
    pub title: Option<String>,
    pub severity: Severity,
    pub tags: Vec<String>,
    pub desc: Option<String>,
    /// Ids of controls that must pass first.
    pub depends_on: Vec<String>,
    /// Target kinds the control runs on; empty = all.
    pub targets: Vec<TargetKind>,
    /// Where the control applies (os, version, arch, paths, hosts);
    /// elsewhere it is skipped with the reason.
    pub only_if: Option<Arc<super::OnlyIf>>,
    pub timeout: Option<Duration>,
    pub checks: Vec<Check>,
    /// The `[[control]]` header.
    pub location: Location,
    /// The waiver in force for this control, if any.
    pub waiver: Option<Waiver>,
}

/// A loaded, validated profile.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: String,
    pub title: Option<String>,
    pub version: Option<String>,
    /// The top-level file the profile was loaded from.
    pub file: PathBuf,
    pub controls: Vec<Control>,
    /// Non-fatal findings: expired or unused waivers, ….
    pub warnings: Vec<super::Diagnostic>,
}

impl Profile {
    pub fn control(&self, id: &str) -> Option<&Control> {
        self.controls.iter().find(|c| c.id == id)
    }

    /// Number of checks over all controls.
    pub fn check_count(&self) -> usize {
        self.controls.iter().map(|c| c.checks.len()).sum()
    }
}
