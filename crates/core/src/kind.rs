//! The contract between the engine and a resource kind (`file`, `user`, …).
//!
//! A kind is a unit struct implementing [`Kind`]: it declares its keys (the
//! loader validates profiles against them and `nodecheck explain` prints
//! them), what it needs from a target, and how to evaluate one check.
//! Adding a kind means one file in the checks crate and one line in its
//! registry.

use crate::outcome::Evaluation;
use crate::profile::{Check, Diagnostic};
use crate::run::Context;
use crate::target::Need;

/// The type of value a key takes in a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// `true` / `false`.
    Bool,
    /// An integer (a string of digits is accepted too, so `${var}` works).
    Int,
    /// A plain string.
    Str,
    /// A list of strings (a single string is a list of one).
    StrList,
    /// A table of string to string (`env = { A = "1" }`).
    StrMap,
    /// A value or matcher table; how comparisons read the values.
    Matcher(Compare),
    /// `"0644"` or `{ max = "0755" }`.
    Mode,
    /// A duration: `"30s"`, `"2m"`, `"500ms"`.
    Duration,
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
}

/// How a matcher's ordering keys (`ge`, `lt`, …) compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// Version-aware (`2.10 > 2.9`, `6.1.0-28 > 6.1.0-9`).
    Version,
    /// Numbers with optional units (`"256GiB"`, `"10%"`, `"30s"`).
    Quantity,
    /// Like `Quantity`, and a plain value means *at least* (`free`, `memory`).
    Amount,
}

/// One key a kind accepts.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    pub name: &'static str,
    pub ty: Ty,
    /// One line for `nodecheck explain` and the generated docs.
    pub doc: &'static str,
    /// A capability this property needs; without it the property is skipped
    /// by the runner with the need's reason.
    pub needs: Option<Need>,
    /// A key that only shapes how other keys are evaluated (`follow`,
    /// `recursive`, `exclude`): it asserts nothing on its own.
    pub modifier: bool,
}

impl Key {
    pub const fn new(name: &'static str, ty: Ty, doc: &'static str) -> Key {
        Key {
            name,
            ty,
            doc,
            needs: None,
            modifier: false,
        }
    }

    /// Marks a property that needs a target capability.
    pub const fn needs(mut self, need: Need) -> Key {
        self.needs = Some(need);
        self
    }

    /// Marks a key that asserts nothing by itself.
    pub const fn modifier(mut self) -> Key {
        self.modifier = true;
        self
    }
}

/// A resource kind.
pub trait Kind: Sync + Send {
    /// The snake_case noun used everywhere: TOML table, JSON `kind`, docs.
    fn name(&self) -> &'static str;

    /// The key that names what is checked (`path`, `name`, `key`, …). A list
    /// value expands into one check per element.
    fn subject(&self) -> Key;

    /// Every other key, in documentation order.
    fn keys(&self) -> &'static [Key];

    /// What the whole kind needs from a target (`process` needs a live node).
    fn needs(&self) -> Option<Need> {
        None
    }

    /// The kind's documentation in Markdown, with the sections
    /// `## What it checks`, `## Keys` (generated from [`Kind::keys`] when
    /// omitted), `## Example`, `## Targets`.
    fn doc(&self) -> &'static str;

    /// Checks relations between keys the schema cannot express. Return
    /// diagnostics located with `check.location` or a property's location.
    fn validate(&self, _check: &Check) -> Vec<Diagnostic> {
        Vec::new()
    }

    /// Evaluates one check against the target in `cx`. Properties whose
    /// needs the target lacks have already been removed by the runner.
    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation;
}

impl std::fmt::Debug for dyn Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kind({})", self.name())
    }
}

/// Finds a kind by name in a registry.
pub fn find<'a>(kinds: &[&'a dyn Kind], name: &str) -> Option<&'a dyn Kind> {
    kinds.iter().copied().find(|k| k.name() == name)
}
