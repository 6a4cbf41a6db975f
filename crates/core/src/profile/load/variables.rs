//! Pass 2: `[vars]` and `--var` into values.

use std::collections::BTreeMap;

use super::{Layer, Loader};
use crate::profile::Diagnostic;
use crate::profile::diag::suggest;
use crate::profile::raw::{Sv, V};
use crate::profile::vars::{Scope, VarValue, interpolate_str};

impl Loader<'_> {
    /// Resolves `[vars]` of every layer and the command line into values.
    pub(super) fn vars(
        &mut self,
        layers: &Layer,
        cli: &[(String, String)],
    ) -> BTreeMap<String, VarValue> {
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
}
