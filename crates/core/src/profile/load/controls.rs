//! Pass 3: controls expanded over their matrix and validated; ids,
//! `disable` and `depends_on` across controls.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use super::{Expanded, Loader, RawControl};
use crate::matcher::parse_duration;
use crate::profile::check::{bad_duration, checks};
use crate::profile::diag::suggest;
use crate::profile::raw::{Entry, Sv, V};
use crate::profile::vars::{Scope, VarValue, interpolate, interpolate_mut, valid_name};
use crate::profile::{Control, Diagnostic, Location, Severity};
use crate::target::TargetKind;

impl Loader<'_> {
    /// Expands one control over its matrix and validates each instance.
    pub(super) fn control(
        &mut self,
        rc: RawControl,
        vars: &BTreeMap<String, VarValue>,
    ) -> Vec<Expanded> {
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
                    c.only_if =
                        crate::profile::only_if::parse(&e.value, &mut self.diags).map(Arc::new);
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

    pub(super) fn unique_ids(&mut self, controls: &[Expanded]) {
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

    pub(super) fn disable(
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

    pub(super) fn dependencies(&mut self, controls: &mut [Expanded]) {
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
}
