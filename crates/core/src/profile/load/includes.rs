//! Pass 1: files and includes, raw TOML into layers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::{Layer, Loader, MAX_INCLUDE_DEPTH, Meta, PROFILE_KEYS, RawControl, TOP_KEYS};
use crate::profile::raw::{self, Entry, Source, Sv, V};
use crate::profile::vars::valid_name;
use crate::profile::{Diagnostic, Location};

impl Loader<'_> {
    /// Loads one file and what it includes.
    pub(super) fn file(&mut self, path: &Path, included_at: Option<&Sv>) -> Option<(Meta, Layer)> {
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
}
