//! Loading: files and includes, variables, matrix expansion, validation of
//! controls, depends_on and waivers. Every problem is collected; loading
//! fails only after the whole profile has been looked at.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::check::{bad_duration, checks, suggest};
use super::raw::{self, Entry, Source, Sv, V};
use super::vars::{Scope, VarValue, interpolate, interpolate_mut, interpolate_str, valid_name};
use super::{Control, Diagnostic, Diagnostics, Location, Profile, Severity, Waiver};
use crate::kind::Kind;
use crate::matcher::parse_duration;
use crate::target::TargetKind;

/// Settings of a load that do not come from the profile files.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--var name=value`, winning over every profile's `[vars]`. For a
    /// variable declared as a list, the value is split on commas.
    pub vars: Vec<(String, String)>,
    /// The day waiver expiry is judged against; today when `None`.
    pub today: Option<chrono::NaiveDate>,
}

const PROFILE_KEYS: &[&str] = &["name", "title", "version", "include", "disable"];
const TOP_KEYS: &[&str] = &["profile", "vars", "control", "waiver"];
pub(crate) const CONTROL_KEYS: &[&str] = &[
    "id",
    "title",
    "severity",
    "tags",
    "desc",
    "matrix",
    "depends_on",
    "targets",
    "only_if",
    "timeout",
];
const WAIVER_KEYS: &[&str] = &["control", "reason", "expires"];

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
    /// Loads one file and what it includes.
    fn file(&mut self, path: &Path, included_at: Option<&Sv>) -> Option<(Meta, Layer)> {
        let canonical = match std::fs::canonicalize(path) {
            Ok(c) => c,
            Err(e) => {
                let d = Diagnostic::error(
                    "unreadable-profile",
                    format!("failed to read profile {}: {e}", path.display()),
                );
                self.diags.push(match included_at {
                    Some(at) => at.diag(d),
                    None => d,
                });
                return None;
            }
        };
        if let Some(pos) = self.stack.iter().position(|p| *p == canonical) {
            let mut chain: Vec<String> = self.stack[pos..]
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            chain.push(canonical.display().to_string());
            let d = Diagnostic::error(
                "include-cycle",
                format!("include cycle: {}", chain.join(" -> ")),
            );
            self.diags.push(match included_at {
                Some(at) => at.diag(d),
                None => d,
            });
            return None;
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            let d = Diagnostic::error(
                "include-depth",
                format!(
                    "includes nest deeper than {MAX_INCLUDE_DEPTH} files: {} would be file {} of the chain that starts at {}",
                    path.display(),
                    self.stack.len() + 1,
                    self.stack[0].display()
                ),
            );
            self.diags.push(match included_at {
                Some(at) => at.diag(d),
                None => d,
            });
            return None;
        }
        if !self.loaded.insert(canonical.clone()) {
            return None;
        }
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                self.diags.push(Diagnostic::error(
                    "unreadable-profile",
                    format!("failed to read profile {}: {e}", path.display()),
                ));
                return None;
            }
        };
        let src = Arc::new(Source::new(path.to_path_buf(), text));
        let root = raw::parse(&src, &mut self.diags)?;
        self.stack.push(canonical);
        let result = self.document(path, &root);
        self.stack.pop();
        result
    }

    fn document(&mut self, path: &Path, root: &Sv) -> Option<(Meta, Layer)> {
        let entries = root.as_table()?;
        let mut meta = None;
        let mut own = Layer::default();
        let mut included = Layer::default();
        for e in entries {
            match e.key.as_str() {
                "profile" => {
                    meta = self.profile_table(path, e, &mut included, &mut own.disables);
                }
                "vars" => self.vars_table(e, &mut own.vars),
                "control" => self.control_array(e, &mut own.controls),
                "waiver" => match &e.value.v {
                    V::Array(items) => own.waivers.extend(items.iter().cloned()),
                    V::Table(_) => own.waivers.push(e.value.clone()),
                    _ => self.wrong_type(&e.value, "`waiver`", "an array of tables ([[waiver]])"),
                },
                other => self.unknown_key(&e.key_at, other, "at the top level", TOP_KEYS),
            }
        }
        let Some(meta) = meta else {
            self.diags.push(root.diag(Diagnostic::error(
                "missing-key",
                format!(
                    "{}: a profile needs a [profile] table with a `name`",
                    path.display()
                ),
            )));
            return None;
        };
        // Own controls override included ones with the same id, in place.
        let mut seen: HashMap<String, Location> = HashMap::new();
        let mut from_includes: HashMap<String, usize> = included
            .controls
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        for c in own.controls.drain(..) {
            if let Some(first) = seen.get(&c.id) {
                self.diags.push(c.table.diag(Diagnostic::error(
                    "duplicate-control-id",
                    format!(
                        "control id `{}` is already used at {first} in the same file",
                        c.id
                    ),
                )));
                continue;
            }
            seen.insert(c.id.clone(), c.table.loc.clone());
            match from_includes.remove(&c.id) {
                Some(i) => included.controls[i] = c,
                None => included.controls.push(c),
            }
        }
        included.vars.extend(own.vars);
        included.waivers.extend(own.waivers);
        included.disables.extend(own.disables);
        Some((meta, included))
    }

    fn profile_table(
        &mut self,
        path: &Path,
        e: &Entry,
        included: &mut Layer,
        disables: &mut Vec<Sv>,
    ) -> Option<Meta> {
        let Some(entries) = e.value.as_table() else {
            self.wrong_type(&e.value, "`profile`", "a table ([profile])");
            return None;
        };
        let mut name = None;
        let mut meta = Meta {
            name: String::new(),
            title: None,
            version: None,
        };
        for f in entries {
            match f.key.as_str() {
                "name" => match f.value.as_str() {
                    Some(n)
                        if !n.is_empty()
                            && n.bytes().all(|b| {
                                b.is_ascii_lowercase()
                                    || b.is_ascii_digit()
                                    || b == b'_'
                                    || b == b'-'
                            }) =>
                    {
                        name = Some(n.to_string());
                    }
                    _ => self.diags.push(f.value.diag(Diagnostic::error(
                        "bad-value",
                        "`name` must be a non-empty string of a-z, 0-9, `_` and `-`",
                    ))),
                },
                "title" => meta.title = self.string(&f.value, "`title`"),
                "version" => meta.version = self.string(&f.value, "`version`"),
                "include" => {
                    for inc in self.string_list(&f.value, "`include`") {
                        let Some(rel) = inc.as_str() else { continue };
                        let target = path.parent().unwrap_or(Path::new(".")).join(rel);
                        if let Some((_, layer)) = self.file(&target, Some(&inc)) {
                            included.merge(layer, &mut self.diags);
                        }
                    }
                }
                "disable" => disables.extend(self.string_list(&f.value, "`disable`")),
                other => self.unknown_key(&f.key_at, other, "in [profile]", PROFILE_KEYS),
            }
        }
        match name {
            Some(n) => {
                meta.name = n;
                Some(meta)
            }
            None => {
                if !entries.iter().any(|f| f.key == "name") {
                    self.diags.push(
                        e.key_at
                            .diag(Diagnostic::error("missing-key", "[profile] needs a `name`")),
                    );
                }
                None
            }
        }
    }

    fn vars_table(&mut self, e: &Entry, out: &mut Vec<(String, Sv)>) {
        let Some(entries) = e.value.as_table() else {
            self.wrong_type(&e.value, "`vars`", "a table ([vars])");
            return;
        };
        for v in entries {
            if !valid_name(&v.key) {
                self.diags.push(v.key_at.diag(Diagnostic::error(
                    "bad-var",
                    format!(
                        "variable name `{}` must start with a letter or `_` and hold letters, digits, `_` and `-`",
                        v.key
                    ),
                )));
                continue;
            }
            out.push((v.key.clone(), v.value.clone()));
        }
    }

    fn control_array(&mut self, e: &Entry, out: &mut Vec<RawControl>) {
        let items = match &e.value.v {
            V::Array(items) => items.clone(),
            V::Table(_) => vec![e.value.clone()],
            _ => {
                self.wrong_type(&e.value, "`control`", "an array of tables ([[control]])");
                return;
            }
        };
        for t in items {
            let Some(entries) = t.as_table() else {
                self.wrong_type(&t, "a control", "a table");
                continue;
            };
            match entries.iter().find(|f| f.key == "id") {
                Some(f) => match f.value.as_str() {
                    Some(id) if !id.is_empty() => out.push(RawControl {
                        id: id.to_string(),
                        table: t.clone(),
                    }),
                    _ => self.wrong_type(&f.value, "`id`", "a non-empty string"),
                },
                None => self
                    .diags
                    .push(t.diag(Diagnostic::error("missing-key", "control needs an `id`"))),
            }
        }
    }

    /// Resolves `[vars]` of every layer and the command line into values.
    fn vars(&mut self, layers: &Layer, cli: &[(String, String)]) -> BTreeMap<String, VarValue> {
        let mut raw: BTreeMap<String, Sv> = BTreeMap::new();
        for (k, v) in &layers.vars {
            raw.insert(k.clone(), v.clone());
        }
        let mut out = BTreeMap::new();
        for (k, v) in &raw {
            let value = match &v.v {
                V::Str(s) => VarValue::Str(s.clone()),
                V::Int(i) => VarValue::Str(i.to_string()),
                V::Float(f) => VarValue::Str(f.to_string()),
                V::Bool(b) => VarValue::Str(b.to_string()),
                V::Datetime(d) => VarValue::Str(d.clone()),
                V::Array(items) => {
                    let mut l = Vec::new();
                    for i in items {
                        match &i.v {
                            V::Str(s) => l.push(s.clone()),
                            V::Int(n) => l.push(n.to_string()),
                            V::Bool(b) => l.push(b.to_string()),
                            _ => {
                                self.wrong_type(i, "a list variable's entries", "strings");
                            }
                        }
                    }
                    VarValue::List(l)
                }
                V::Table(_) => {
                    self.wrong_type(
                        v,
                        &format!("variable `{k}`"),
                        "a string or a list of strings",
                    );
                    continue;
                }
            };
            out.insert(k.clone(), value);
        }
        for (k, v) in cli {
            match out.get(k) {
                Some(VarValue::List(_)) => {
                    let list = v
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect();
                    out.insert(k.clone(), VarValue::List(list));
                }
                Some(VarValue::Str(_)) => {
                    out.insert(k.clone(), VarValue::Str(v.clone()));
                }
                None => {
                    let known: Vec<&str> = out.keys().map(String::as_str).collect();
                    self.diags.push(Diagnostic::error(
                        "unknown-var",
                        format!(
                            "--var {k}: no profile declares a variable `{k}`{}",
                            suggest(k, known.iter().copied())
                        ),
                    ));
                }
            }
        }
        // Variables may refer to variables; resolve until nothing changes.
        for _ in 0..16 {
            let snapshot = out.clone();
            let scope = Scope {
                layers: vec![&snapshot],
            };
            let mut changed = false;
            for (k, v) in out.iter_mut() {
                if let VarValue::Str(s) = v
                    && s.contains("${")
                {
                    match interpolate_str(s, &scope) {
                        Ok(n) if n != *v => {
                            *v = n;
                            changed = true;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            let d = Diagnostic::error(
                                "undefined-variable",
                                format!("in variable `{k}`: {e}"),
                            );
                            self.diags.push(match raw.get(k) {
                                Some(sv) => sv.diag(d),
                                None => d,
                            });
                            *v = VarValue::Str(String::new());
                        }
                    }
                }
            }
            if !changed {
                return out;
            }
        }
        self.diags.push(Diagnostic::error(
            "variable-cycle",
            "variables refer to each other in a cycle",
        ));
        out
    }

    /// Expands one control over its matrix and validates each instance.
    fn control(&mut self, rc: RawControl, vars: &BTreeMap<String, VarValue>) -> Vec<Expanded> {
        let Some(entries) = rc.table.as_table() else {
            return Vec::new();
        };
        let base_scope = Scope { layers: vec![vars] };
        let mut axes: Vec<(String, Vec<String>)> = Vec::new();
        if let Some(m) = entries.iter().find(|e| e.key == "matrix") {
            let m = interpolate(&m.value, &base_scope, &mut self.diags);
            match m.as_table() {
                Some(t) => {
                    for axis in t {
                        let values =
                            self.string_list(&axis.value, &format!("`matrix.{}`", axis.key));
                        if values.is_empty() {
                            self.diags.push(axis.value.diag(Diagnostic::error(
                                "vacuous-check",
                                format!(
                                    "`matrix.{}` has no values: the control would never run",
                                    axis.key
                                ),
                            )));
                            return Vec::new();
                        }
                        if !valid_name(&axis.key) {
                            self.diags.push(axis.key_at.diag(Diagnostic::error(
                                "bad-var",
                                format!("matrix variable `{}` must be a variable name", axis.key),
                            )));
                        }
                        axes.push((
                            axis.key.clone(),
                            values
                                .iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect(),
                        ));
                    }
                }
                None => self.wrong_type(&m, "`matrix`", "a table of lists"),
            }
        }
        let mut combos: Vec<BTreeMap<String, VarValue>> = vec![BTreeMap::new()];
        let mut suffixes: Vec<Vec<String>> = vec![Vec::new()];
        for (k, values) in &axes {
            let mut next = Vec::new();
            let mut next_suffix = Vec::new();
            for (c, s) in combos.iter().zip(&suffixes) {
                for v in values {
                    let mut c = c.clone();
                    c.insert(k.clone(), VarValue::Str(v.clone()));
                    next.push(c);
                    let mut s = s.clone();
                    s.push(format!("{k}={v}"));
                    next_suffix.push(s);
                }
            }
            combos = next;
            suffixes = next_suffix;
        }
        let mut out = Vec::new();
        let last = combos.len() - 1;
        let mut raw_table = Some(rc.table);
        for (i, (combo, suffix)) in combos.iter().zip(suffixes).enumerate() {
            let scope = Scope {
                layers: vec![combo, vars],
            };
            let before = self.diags.len();
            // Every combination but the last interpolates its own copy.
            let mut table = match (i == last, &raw_table) {
                (true, _) => raw_table.take().expect("taken once, last"),
                (false, Some(t)) => t.clone(),
                (false, None) => unreachable!("the raw table is kept until the last combination"),
            };
            interpolate_mut(&mut table, &scope, &mut self.diags);
            if self.diags.len() > before && !out.is_empty() {
                // The same error for every combination says nothing new.
                self.diags.truncate(before);
            }
            if let Some(mut e) = self.one_control(&table) {
                e.base_id = e.control.id.clone();
                if !suffix.is_empty() {
                    e.control.id = format!("{}[{}]", e.control.id, suffix.join(","));
                }
                out.push(e);
            }
        }
        out
    }

    fn one_control(&mut self, table: &Sv) -> Option<Expanded> {
        let entries = table.as_table()?;
        let before = self.diags.len();
        let mut id = String::new();
        let mut c = Control {
            id: String::new(),
            title: None,
            severity: Severity::Medium,
            tags: Vec::new(),
            desc: None,
            depends_on: Vec::new(),
            targets: Vec::new(),
            only_if: None,
            timeout: None,
            checks: Vec::new(),
            location: table.loc.clone(),
            waiver: None,
        };
        let mut depends_on = Vec::new();
        let mut timeout: Option<Duration> = None;
        if let Some(t) = entries.iter().find(|e| e.key == "timeout") {
            timeout = match &t.value.v {
                V::Str(s) => parse_duration(s),
                V::Int(i) if *i >= 0 => Some(Duration::from_secs(*i as u64)),
                _ => None,
            };
            if timeout.is_none() {
                self.diags.push(bad_duration("timeout", &t.value));
            }
        }
        let mut resources: Vec<&Entry> = Vec::new();
        for e in entries {
            match e.key.as_str() {
                "id" => {
                    if let Some(s) = self.string(&e.value, "`id`") {
                        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                            self.diags.push(e.value.diag(Diagnostic::error(
                                "bad-value",
                                format!(
                                    "control id {s:?} must be non-empty and hold no whitespace"
                                ),
                            )));
                        }
                        id = s;
                    }
                }
                "title" => c.title = self.string(&e.value, "`title`"),
                "desc" => c.desc = self.string(&e.value, "`desc`"),
                "severity" => {
                    if let Some(s) = self.string(&e.value, "`severity`") {
                        match Severity::parse(&s) {
                            Some(sev) => c.severity = sev,
                            None => self.diags.push(e.value.diag(Diagnostic::error(
                                "bad-value",
                                format!(
                                    "`severity` must be one of {}, got {s:?}",
                                    Severity::NAMES.join(", ")
                                ),
                            ))),
                        }
                    }
                }
                "tags" => {
                    c.tags = self
                        .string_list(&e.value, "`tags`")
                        .iter()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect();
                }
                "depends_on" => depends_on = self.string_list(&e.value, "`depends_on`"),
                "targets" => {
                    for t in self.string_list(&e.value, "`targets`") {
                        let Some(s) = t.as_str() else { continue };
                        match TargetKind::parse(s) {
                            Some(k) => c.targets.push(k),
                            None => self.diags.push(t.diag(Diagnostic::error(
                                "bad-value",
                                format!(
                                    "unknown target kind {s:?}; expected one of rootfs, container, live, image"
                                ),
                            ))),
                        }
                    }
                }
                "only_if" => {
                    c.only_if = super::only_if::parse(&e.value, &mut self.diags).map(Arc::new);
                }
                "timeout" | "matrix" => {}
                _ => resources.push(e),
            }
        }
        c.timeout = timeout;
        for r in resources {
            let found = checks(r, self.kinds, timeout, &mut self.diags);
            c.checks.extend(found);
        }
        if c.checks.is_empty() && self.diags.len() == before {
            self.diags.push(table.diag(Diagnostic::error(
                "vacuous-check",
                format!(
                    "control `{id}` has no checks: add a resource table such as [[control.file]]"
                ),
            )));
        }
        c.id = id;
        (self.diags.len() == before).then_some(Expanded {
            base_id: String::new(),
            control: c,
            depends_on,
        })
    }

    fn unique_ids(&mut self, controls: &[Expanded]) {
        let mut seen: HashMap<&str, &Location> = HashMap::new();
        for c in controls {
            if let Some(first) = seen.insert(&c.control.id, &c.control.location) {
                let d = Diagnostic::error(
                    "duplicate-control-id",
                    format!(
                        "control id `{}` is used twice (first at {first}); an including profile overrides a control by using its id, two included profiles may not both define it",
                        c.control.id
                    ),
                )
                .at(c.control.location.clone());
                self.diags.push(d);
            }
        }
    }

    fn disable(
        &mut self,
        controls: &mut Vec<Expanded>,
        disables: &[Sv],
        vars: &BTreeMap<String, VarValue>,
    ) {
        let scope = Scope { layers: vec![vars] };
        for d in disables {
            let d = interpolate(d, &scope, &mut self.diags);
            let Some(pattern) = d.as_str() else { continue };
            let Some(m) = self.glob(&d, pattern) else {
                continue;
            };
            let before = controls.len();
            controls.retain(|c| !(m.is_match(&c.control.id) || m.is_match(&c.base_id)));
            if controls.len() == before {
                self.diags.push(d.diag(Diagnostic::warning(
                    "unused-disable",
                    format!("`disable` names {pattern:?} but no control has that id"),
                )));
            }
        }
    }

    fn dependencies(&mut self, controls: &mut [Expanded]) {
        let ids: Vec<(String, String)> = controls
            .iter()
            .map(|c| (c.control.id.clone(), c.base_id.clone()))
            .collect();
        for c in controls.iter_mut() {
            let mut resolved = Vec::new();
            for dep in &c.depends_on {
                let Some(name) = dep.as_str() else { continue };
                let matched: Vec<&String> = ids
                    .iter()
                    .filter(|(id, base)| id == name || base == name)
                    .map(|(id, _)| id)
                    .collect();
                if matched.is_empty() {
                    let known = ids.iter().map(|(_, b)| b.as_str());
                    self.diags.push(dep.diag(Diagnostic::error(
                        "unknown-dependency",
                        format!(
                            "`depends_on` names {name:?} but no control has that id{}",
                            suggest(name, known)
                        ),
                    )));
                }
                for m in matched {
                    if *m == c.control.id {
                        self.diags.push(dep.diag(Diagnostic::error(
                            "dependency-cycle",
                            format!("control `{m}` depends on itself"),
                        )));
                    } else if !resolved.contains(m) {
                        resolved.push(m.clone());
                    }
                }
            }
            c.control.depends_on = resolved;
        }
        // Cycles through several controls.
        let index: HashMap<&str, usize> = controls
            .iter()
            .enumerate()
            .map(|(i, c)| (c.control.id.as_str(), i))
            .collect();
        let mut state = vec![0u8; controls.len()]; // 0 new, 1 on stack, 2 done
        let mut reported = false;
        for start in 0..controls.len() {
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if state[node] == 2 {
                    stack.pop();
                    continue;
                }
                state[node] = 1;
                let deps = &controls[node].control.depends_on;
                if *next < deps.len() {
                    let dep = index[deps[*next].as_str()];
                    *next += 1;
                    match state[dep] {
                        0 => stack.push((dep, 0)),
                        1 if !reported => {
                            reported = true;
                            let pos = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                            let mut chain: Vec<&str> = stack[pos..]
                                .iter()
                                .map(|(n, _)| controls[*n].control.id.as_str())
                                .collect();
                            chain.push(&controls[dep].control.id);
                            let d = Diagnostic::error(
                                "dependency-cycle",
                                format!("depends_on forms a cycle: {}", chain.join(" -> ")),
                            )
                            .at(controls[node].control.location.clone());
                            self.diags.push(d);
                        }
                        _ => {}
                    }
                } else {
                    state[node] = 2;
                    stack.pop();
                }
            }
        }
    }

    fn waivers(
        &mut self,
        controls: &mut [Expanded],
        waivers: &[Sv],
        vars: &BTreeMap<String, VarValue>,
        today: chrono::NaiveDate,
    ) {
        let scope = Scope { layers: vec![vars] };
        for w in waivers {
            let w = interpolate(w, &scope, &mut self.diags);
            let Some(entries) = w.as_table() else {
                self.wrong_type(&w, "a waiver", "a table");
                continue;
            };
            let mut control = None;
            let mut reason = None;
            let mut expires = None;
            for e in entries {
                match e.key.as_str() {
                    "control" => {
                        control = self
                            .string(&e.value, "`control`")
                            .map(|s| (s, e.value.clone()))
                    }
                    "reason" => reason = self.string(&e.value, "`reason`"),
                    "expires" => {
                        let text = match &e.value.v {
                            V::Str(s) | V::Datetime(s) => Some(s.clone()),
                            _ => None,
                        };
                        match text
                            .as_deref()
                            .map(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d"))
                        {
                            Some(Ok(d)) => expires = Some((d, text.unwrap_or_default())),
                            _ => self.diags.push(e.value.diag(Diagnostic::error(
                                "bad-date",
                                "`expires` must be a date written YYYY-MM-DD",
                            ))),
                        }
                    }
                    other => self.unknown_key(&e.key_at, other, "in [[waiver]]", WAIVER_KEYS),
                }
            }
            let (Some((pattern, at)), Some(reason)) = (control, reason) else {
                self.diags.push(w.diag(Diagnostic::error(
                    "missing-key",
                    "a waiver needs `control` (an id or glob) and `reason`",
                )));
                continue;
            };
            if let Some((date, text)) = &expires
                && *date < today
            {
                self.diags.push(w.diag(Diagnostic::warning(
                    "expired-waiver",
                    format!("waiver for {pattern:?} expired on {text} and is ignored ({reason})"),
                )));
                continue;
            }
            let Some(m) = self.glob(&at, &pattern) else {
                continue;
            };
            let waiver = Waiver {
                control: pattern.clone(),
                reason,
                expires: expires.map(|(_, t)| t),
                location: Some(w.loc.clone()),
            };
            let mut used = false;
            for c in controls.iter_mut() {
                if m.is_match(&c.control.id) || m.is_match(&c.base_id) {
                    c.control.waiver = Some(waiver.clone());
                    used = true;
                }
            }
            if !used {
                self.diags.push(w.diag(Diagnostic::warning(
                    "unused-waiver",
                    format!("waiver for {pattern:?} matches no control"),
                )));
            }
        }
    }

    fn glob(&mut self, at: &Sv, pattern: &str) -> Option<globset::GlobMatcher> {
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

    fn string(&mut self, v: &Sv, what: &str) -> Option<String> {
        match &v.v {
            V::Str(s) => Some(s.clone()),
            _ => {
                self.wrong_type(v, what, "a string");
                None
            }
        }
    }

    /// A list of strings (a single string counts as a list of one).
    fn string_list(&mut self, v: &Sv, what: &str) -> Vec<Sv> {
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

    fn wrong_type(&mut self, v: &Sv, what: &str, expected: &str) {
        self.diags.push(v.diag(Diagnostic::error(
            "wrong-type",
            format!("{what} must be {expected}, got {}", v.v.type_name()),
        )));
    }

    fn unknown_key(&mut self, at: &Sv, key: &str, place: &str, known: &[&str]) {
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
