//! Loading: files and includes, variables, matrix expansion, validation of
//! controls, depends_on and waivers. Every problem is collected; loading
//! fails only after the whole profile has been looked at.

mod controls;
mod includes;
mod variables;
mod waivers;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::diag::suggest;
use super::raw::{Sv, V};
use super::{Control, Diagnostic, Diagnostics, Profile};
use crate::kind::Kind;

/// Settings of a load that do not come from the profile files.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--var name=value`, winning over every profile's `[vars]`. For a
    /// variable declared as a list, the value is split on commas.
    pub vars: Vec<(String, String)>,
    /// The day waiver expiry is judged against; today when `None`.
    pub today: Option<chrono::NaiveDate>,
}

pub(super) const PROFILE_KEYS: &[&str] = &["name", "title", "version", "include", "disable"];
pub(super) const TOP_KEYS: &[&str] = &["profile", "vars", "control", "waiver"];
pub(super) const WAIVER_KEYS: &[&str] = &["control", "reason", "expires"];

/// The longest include chain loaded. Includes are resolved by recursion;
/// a hostile or generated chain of thousands of files would otherwise
/// overflow the stack (an abort, not a diagnostic). Real sites nest a
/// handful of levels.
pub const MAX_INCLUDE_DEPTH: usize = 64;

/// Loads one profile file with its includes.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("p.toml");
/// std::fs::write(&path, r#"
/// [profile]
/// name = "demo"
/// "#).unwrap();
/// let profile = nodecheck_core::profile::load(&path, &[], &Default::default()).unwrap();
/// assert_eq!(profile.name, "demo");
/// ```
pub fn load(
    path: impl AsRef<Path>,
    kinds: &[&'static dyn Kind],
    options: &LoadOptions,
) -> Result<Profile, Diagnostics> {
    load_all(&[path.as_ref().to_path_buf()], kinds, options)
}

/// Loads several profiles as one: their controls run together and their ids
/// must not collide. The first profile names the result.
pub fn load_all(
    paths: &[PathBuf],
    kinds: &[&'static dyn Kind],
    options: &LoadOptions,
) -> Result<Profile, Diagnostics> {
    let mut l = Loader {
        kinds,
        diags: Vec::new(),
        loaded: HashSet::new(),
        stack: Vec::new(),
    };
    let mut layers = Layer::default();
    let mut metas = Vec::new();
    for p in paths {
        if let Some((meta, layer)) = l.file(p, None) {
            metas.push(meta);
            layers.merge(layer, &mut l.diags);
        }
    }
    if metas.is_empty() || l.diags.iter().any(Diagnostic::is_error) {
        l.diags.sort_by(|a, b| a.location.cmp(&b.location));
        return Err(Diagnostics(l.diags));
    }
    let vars = l.vars(&layers, &options.vars);
    let mut controls = Vec::new();
    for rc in std::mem::take(&mut layers.controls) {
        controls.extend(l.control(rc, &vars));
    }
    l.unique_ids(&controls);
    l.disable(&mut controls, &layers.disables, &vars);
    l.dependencies(&mut controls);
    let today = options
        .today
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    l.waivers(&mut controls, &layers.waivers, &vars, today);
    // Report in reading order, whatever pass found each problem.
    l.diags.sort_by(|a, b| a.location.cmp(&b.location));
    if l.diags.iter().any(Diagnostic::is_error) {
        return Err(Diagnostics(l.diags));
    }
    let first = &metas[0];
    let name = metas
        .iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join("+");
    Ok(Profile {
        name,
        title: first.title.clone(),
        version: first.version.clone(),
        file: paths[0].clone(),
        controls: controls.into_iter().map(|c| c.control).collect(),
        warnings: l.diags,
    })
}

struct Loader<'k> {
    kinds: &'k [&'static dyn Kind],
    diags: Vec<Diagnostic>,
    /// Canonical paths of files already loaded (a file included twice
    /// through different routes is loaded once).
    loaded: HashSet<PathBuf>,
    /// The include chain being loaded, for cycle detection.
    stack: Vec<PathBuf>,
}

struct Meta {
    name: String,
    title: Option<String>,
    version: Option<String>,
}

/// What a file contributes after its includes are merged in.
#[derive(Default)]
struct Layer {
    vars: Vec<(String, Sv)>,
    controls: Vec<RawControl>,
    waivers: Vec<Sv>,
    disables: Vec<Sv>,
}

#[derive(Clone)]
struct RawControl {
    /// The id as written (before interpolation and matrix).
    id: String,
    table: Sv,
}

/// A control after expansion, with what the later passes need.
struct Expanded {
    control: Control,
    /// The id before the matrix suffix.
    base_id: String,
    depends_on: Vec<Sv>,
}

impl Layer {
    /// Adds an included (or sibling) layer; later layers override vars.
    fn merge(&mut self, other: Layer, _diags: &mut [Diagnostic]) {
        self.vars.extend(other.vars);
        self.controls.extend(other.controls);
        self.waivers.extend(other.waivers);
        self.disables.extend(other.disables);
    }
}

impl Loader<'_> {
    pub(super) fn glob(&mut self, at: &Sv, pattern: &str) -> Option<globset::GlobMatcher> {
        match id_glob(pattern) {
            Ok(g) => Some(g),
            Err(e) => {
                self.diags.push(at.diag(Diagnostic::error(
                    "bad-glob",
                    format!("invalid id pattern {pattern:?}: {e}"),
                )));
                None
            }
        }
    }

    pub(super) fn string(&mut self, v: &Sv, what: &str) -> Option<String> {
        match &v.v {
            V::Str(s) => Some(s.clone()),
            _ => {
                self.wrong_type(v, what, "a string");
                None
            }
        }
    }

    /// A list of strings (a single string counts as a list of one).
    pub(super) fn string_list(&mut self, v: &Sv, what: &str) -> Vec<Sv> {
        match &v.v {
            V::Str(_) => vec![v.clone()],
            V::Array(items) => {
                let mut out = Vec::new();
                for i in items {
                    match &i.v {
                        V::Str(_) => out.push(i.clone()),
                        V::Int(n) => out.push(Sv {
                            v: V::Str(n.to_string()),
                            ..i.clone()
                        }),
                        _ => self.wrong_type(i, &format!("entries of {what}"), "strings"),
                    }
                }
                out
            }
            _ => {
                self.wrong_type(v, what, "a list of strings");
                Vec::new()
            }
        }
    }

    pub(super) fn wrong_type(&mut self, v: &Sv, what: &str, expected: &str) {
        self.diags.push(v.diag(Diagnostic::error(
            "wrong-type",
            format!("{what} must be {expected}, got {}", v.v.type_name()),
        )));
    }

    pub(super) fn unknown_key(&mut self, at: &Sv, key: &str, place: &str, known: &[&str]) {
        self.diags.push(at.diag(Diagnostic::error(
            "unknown-key",
            format!(
                "unknown key `{key}` {place}{}; expected one of {}",
                suggest(key, known.iter().copied()),
                known.join(", ")
            ),
        )));
    }
}

/// A control id pattern (`disable`, waivers, `--controls`): `*` and `?`
/// are wildcards; `[` and `]` are literal, since matrix ids hold them.
pub fn id_glob(pattern: &str) -> Result<globset::GlobMatcher, globset::Error> {
    let escaped = pattern.replace('[', "\\[").replace(']', "\\]");
    globset::Glob::new(&escaped).map(|g| g.compile_matcher())
}
