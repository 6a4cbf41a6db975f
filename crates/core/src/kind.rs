//! The contract between the engine and a resource kind (`file`, `user`, …).
//!
//! A kind is a unit struct implementing [`Kind`]: it declares its keys (the
//! loader validates profiles against them and `nodecheck explain` prints
//! them), what it needs from a target, and how to evaluate one check.
//! Adding a kind means one file in the checks crate and one line in its
//! registry.

use crate::outcome::Evaluation;
use crate::profile::{Check, Diagnostic};
use crate::target::{Need, Target};

/// What a kind gets to evaluate a check.
pub struct Context<'a> {
    pub target: &'a dyn Target,
}

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
    /// A table of names to values or matcher tables, each a matcher of its
    /// own (`settings = { PermitRootLogin = "no", MaxAuthTries = { le = "4" } }`).
    /// The names are free: the kind decides what they mean.
    MatcherMap(Compare),
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

    /// The subject of a check that does not name one, for kinds with one
    /// natural default (`hardware`: the node; `kernel`: the image's only
    /// kernel, written as an empty subject; `gpu`: whichever driver is
    /// installed): the subject key may then be left out. `None` (the
    /// default): the subject key is required. A subject the profile writes
    /// is never empty (the loader rejects `""`).
    fn default_subject(&self) -> Option<&'static str> {
        None
    }

    /// Every other key, in documentation order.
    fn keys(&self) -> &'static [Key];

    /// What the whole kind needs from a target (`process` needs a live node).
    fn needs(&self) -> Option<Need> {
        None
    }

    /// Whether the subject alone is a complete check: `cc = "gcc"` for a
    /// `compiler` (compile, link and run a hello world), `run = "..."` for
    /// a `command` (exit status 0). For most kinds a check that only names
    /// its subject asserts nothing and is refused as vacuous.
    fn subject_asserts(&self) -> bool {
        false
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

/// Renders a kind's Markdown documentation page: a `# name` title, the
/// kind's [`Kind::doc`], and, when the doc has no `## Keys` section of its
/// own, a table generated from [`Kind::subject`] and [`Kind::keys`] placed
/// right after `## What it checks` (or at the end when that is missing).
///
/// ```
/// # use nodecheck_core::kind::{render_doc, Key, Kind, Ty};
/// # use nodecheck_core::{kind::Context, outcome::Evaluation, profile::Check};
/// struct Motd;
/// impl Kind for Motd {
///     fn name(&self) -> &'static str { "motd" }
///     fn subject(&self) -> Key { Key::new("path", Ty::Str, "The file.") }
///     fn keys(&self) -> &'static [Key] {
///         const KEYS: &[Key] = &[Key::new("empty", Ty::Bool, "The file is empty.")];
///         KEYS
///     }
///     fn doc(&self) -> &'static str {
///         "## What it checks\n\nThe message of the day.\n\n## Example\n\n...\n"
///     }
///     fn eval(&self, _: &Check, _: &Context<'_>) -> Evaluation { Evaluation::default() }
/// }
/// let page = render_doc(&Motd);
/// assert!(page.starts_with("# `motd`\n"));
/// assert!(page.contains("| `empty` | bool |  | The file is empty. |\n\n## Example"));
/// ```
pub fn render_doc(kind: &dyn Kind) -> String {
    let doc = kind.doc().trim();
    let mut page = format!("# `{}`\n\n", kind.name());
    if doc.lines().any(|l| l.trim_end() == "## Keys") {
        page.push_str(doc);
        page.push('\n');
        return page;
    }
    let table = keys_table(kind);
    // The section after "What it checks" starts at the next `## ` heading.
    let lines: Vec<&str> = doc.lines().collect();
    let what = lines
        .iter()
        .position(|l| l.trim_end() == "## What it checks");
    let insert_at = what.map_or(lines.len(), |w| {
        lines[w + 1..]
            .iter()
            .position(|l| l.starts_with("## "))
            .map_or(lines.len(), |i| w + 1 + i)
    });
    let before = lines[..insert_at].join("\n");
    let after = lines[insert_at..].join("\n");
    page.push_str(before.trim_end());
    if !before.trim().is_empty() {
        page.push_str("\n\n");
    }
    page.push_str(&table);
    if !after.is_empty() {
        page.push('\n');
        page.push_str(&after);
    }
    page.push('\n');
    page
}

fn keys_table(kind: &dyn Kind) -> String {
    let mut t = String::from("## Keys\n\n| key | type | needs | meaning |\n|---|---|---|---|\n");
    let subject = kind.subject();
    let mut row = |key: &Key, note: &str| {
        let needs = match key.needs {
            None => "",
            Some(Need::Live) => "live node",
            Some(Need::Exec) => "command execution",
            Some(Need::Root) => "root",
            Some(Need::Image) => "packed image",
        };
        let doc = format!("{note}{}", key.doc).replace('|', "\\|");
        t.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            key.name,
            ty_name(key.ty).replace('|', "\\|"),
            needs,
            doc.trim()
        ));
    };
    let note = if kind.default_subject().is_some() {
        "**Subject**, optional (a list checks each element). "
    } else {
        "**Subject** (a list checks each element). "
    };
    row(&subject, note);
    for key in kind.keys() {
        row(key, if key.modifier { "*Modifier.* " } else { "" });
    }
    t
}

/// How a key's type reads in the docs.
fn ty_name(ty: Ty) -> String {
    match ty {
        Ty::Bool => "bool".into(),
        Ty::Int => "integer".into(),
        Ty::Str => "string".into(),
        Ty::StrList => "list of strings".into(),
        Ty::StrMap => "table of strings".into(),
        Ty::Matcher(Compare::Version) => "matcher".into(),
        Ty::Matcher(Compare::Quantity) => "matcher (numeric)".into(),
        Ty::Matcher(Compare::Amount) => "matcher (amount; plain value = at least)".into(),
        Ty::MatcherMap(_) => "table of matchers".into(),
        Ty::Mode => "mode (`\"0644\"` or `{ max = \"0755\" }`)".into(),
        Ty::Duration => "duration".into(),
        Ty::Enum(words) => {
            let w: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
            w.join(" | ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Doc(&'static str);
    impl Kind for Doc {
        fn name(&self) -> &'static str {
            "thing"
        }
        fn subject(&self) -> Key {
            Key::new("name", Ty::Str, "What to look at.")
        }
        fn keys(&self) -> &'static [Key] {
            const KEYS: &[Key] = &[
                Key::new("state", Ty::Enum(&["on", "off"]), "Its state.").needs(Need::Live),
                Key::new("follow", Ty::Bool, "Follow | links.").modifier(),
            ];
            KEYS
        }
        fn doc(&self) -> &'static str {
            self.0
        }
        fn eval(&self, _: &Check, _: &Context<'_>) -> Evaluation {
            Evaluation::default()
        }
    }

    #[test]
    fn generated_keys_go_after_what_it_checks() {
        let page = render_doc(&Doc(
            "## What it checks\n\nA thing.\n\n## Example\n\nx\n\n## Targets\n\nAll.\n",
        ));
        assert_eq!(
            page,
            "# `thing`\n\n## What it checks\n\nA thing.\n\n## Keys\n\n\
             | key | type | needs | meaning |\n|---|---|---|---|\n\
             | `name` | string |  | **Subject** (a list checks each element). What to look at. |\n\
             | `state` | `on` \\| `off` | live node | Its state. |\n\
             | `follow` | bool |  | *Modifier.* Follow \\| links. |\n\
             \n## Example\n\nx\n\n## Targets\n\nAll.\n"
        );
    }

    #[test]
    fn a_written_keys_section_is_kept() {
        let page = render_doc(&Doc("## What it checks\n\nA.\n\n## Keys\n\nmine\n"));
        assert_eq!(
            page,
            "# `thing`\n\n## What it checks\n\nA.\n\n## Keys\n\nmine\n"
        );
    }
}
