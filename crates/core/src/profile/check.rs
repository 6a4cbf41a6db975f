//! Stage two for checks: a `[[control.KIND]]` table, already interpolated,
//! becomes typed [`Check`]s, one per subject.

use std::collections::BTreeMap;
use std::time::Duration;

use regex::Regex;

use super::raw::{Entry, Sv, V};
use super::{Check, Diagnostic, Prop, Value};
use crate::kind::{Compare, Key, Kind, Ty};
use crate::matcher::{
    Matcher, ModeSpec, PRED_KEYS, Pred, Scalar, parse_duration, parse_mode, parse_quantity,
};

/// Turns the value of `control.KIND` (a table or an array of tables) into
/// checks. `name` is the table name as written.
pub(crate) fn checks(
    name: &Entry,
    kinds: &[&'static dyn Kind],
    timeout: Option<Duration>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Check> {
    let Some(kind) = kinds.iter().copied().find(|k| k.name() == name.key) else {
        let d = {
            let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
            Diagnostic::error(
                "unknown-resource",
                format!(
                    "unknown key or resource `{}` in control{}; expected a control key ({}) or a resource table ({})",
                    name.key,
                    suggest(
                        &name.key,
                        names
                            .iter()
                            .copied()
                            .chain(super::load::CONTROL_KEYS.iter().copied())
                    ),
                    super::load::CONTROL_KEYS.join(", "),
                    names.join(", ")
                ),
            )
        };
        diags.push(name.key_at.diag(d));
        return Vec::new();
    };
    let tables: Vec<&Sv> = match &name.value.v {
        V::Table(_) => vec![&name.value],
        V::Array(items) => items.iter().collect(),
        other => {
            diags.push(name.value.diag(Diagnostic::error(
                "wrong-type",
                format!(
                    "`{}` must be a table of check keys (write `[[control.{}]]`), got {}",
                    name.key,
                    name.key,
                    other.type_name()
                ),
            )));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for t in tables {
        let Some(entries) = t.as_table() else {
            diags.push(t.diag(Diagnostic::error(
                "wrong-type",
                format!(
                    "a {} check must be a table, got {}",
                    kind.name(),
                    t.v.type_name()
                ),
            )));
            continue;
        };
        out.extend(one_table(kind, t, entries, timeout, diags));
    }
    out
}

fn one_table(
    kind: &'static dyn Kind,
    table: &Sv,
    entries: &[Entry],
    timeout: Option<Duration>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Check> {
    let subject_key = kind.subject();
    let mut subjects: Option<Vec<String>> = None;
    let mut props = Vec::new();
    let mut only_if = None;
    let before = diags.len();
    for e in entries {
        if e.key == subject_key.name {
            subjects = subject_values(kind, &e.value, diags);
            continue;
        }
        if e.key == "only_if" {
            only_if = super::only_if::parse(&e.value, diags).map(std::sync::Arc::new);
            continue;
        }
        let Some(key) = kind.keys().iter().find(|k| k.name == e.key) else {
            let mut names = vec![subject_key.name];
            names.extend(kind.keys().iter().map(|k| k.name));
            names.push("only_if");
            diags.push(e.key_at.diag(Diagnostic::error(
                "unknown-key",
                format!(
                    "unknown key `{}` in {} check{}; expected one of {}",
                    e.key,
                    kind.name(),
                    suggest(&e.key, names.iter().copied()),
                    names.join(", ")
                ),
            )));
            continue;
        };
        if let Some(value) = convert(key, &e.value, diags) {
            props.push(Prop {
                key: key.name,
                value,
                location: e.key_at.loc.clone(),
            });
        }
    }
    let written = entries.iter().any(|e| e.key == subject_key.name);
    let subjects = match (subjects, kind.default_subject()) {
        (Some(s), _) => Some(s),
        (None, Some(default)) if !written => Some(vec![default.to_string()]),
        (None, _) => None,
    };
    let Some(subjects) = subjects else {
        if diags.len() == before || !written {
            diags.push(table.diag(Diagnostic::error(
                "missing-key",
                format!(
                    "{} check needs `{}` ({})",
                    kind.name(),
                    subject_key.name,
                    subject_key.doc
                ),
            )));
        }
        return Vec::new();
    };
    if !kind.subject_asserts()
        && !props
            .iter()
            .any(|p| kind.keys().iter().any(|k| k.name == p.key && !k.modifier))
        && diags.len() == before
    {
        let asserting: Vec<&str> = kind
            .keys()
            .iter()
            .filter(|k| !k.modifier)
            .map(|k| k.name)
            .collect();
        diags.push(table.diag(Diagnostic::error(
            "vacuous-check",
            format!(
                "this {} check asserts nothing; add at least one of {}",
                kind.name(),
                asserting.join(", ")
            ),
        )));
        return Vec::new();
    }
    let checks: Vec<Check> = subjects
        .into_iter()
        .map(|subject| Check {
            kind,
            subject,
            props: props.clone(),
            location: table.loc.clone(),
            timeout,
            only_if: only_if.clone(),
        })
        .collect();
    if diags.len() == before
        && let Some(first) = checks.first()
    {
        diags.extend(kind.validate(first));
    }
    checks
}

fn subject_values(kind: &dyn Kind, v: &Sv, diags: &mut Vec<Diagnostic>) -> Option<Vec<String>> {
    let key = kind.subject();
    let scalar = |s: &Sv| match &s.v {
        V::Str(x) => Some(x.clone()),
        V::Int(i) => Some(i.to_string()),
        _ => None,
    };
    let values = match &v.v {
        V::Array(items) => {
            let mut out = Vec::new();
            for i in items {
                match scalar(i) {
                    Some(s) => out.push(s),
                    None => diags.push(i.diag(Diagnostic::error(
                        "wrong-type",
                        format!(
                            "`{}` entries must be strings, got {}",
                            key.name,
                            i.v.type_name()
                        ),
                    ))),
                }
            }
            out
        }
        _ => match scalar(v) {
            Some(s) => vec![s],
            None => {
                diags.push(v.diag(Diagnostic::error(
                    "wrong-type",
                    format!(
                        "`{}` must be a string or a list of strings, got {}",
                        key.name,
                        v.v.type_name()
                    ),
                )));
                return None;
            }
        },
    };
    if values.is_empty() {
        diags.push(v.diag(Diagnostic::error(
            "vacuous-check",
            format!(
                "`{}` is an empty list: this {} check checks nothing",
                key.name,
                kind.name()
            ),
        )));
        return None;
    }
    if let Some(empty) = values.iter().position(String::is_empty) {
        let at = match &v.v {
            V::Array(items) => &items[empty],
            _ => v,
        };
        diags.push(at.diag(Diagnostic::error(
            "empty-value",
            format!("`{}` must not be empty", key.name),
        )));
        return None;
    }
    Some(values)
}

/// Converts a value to the key's type, or records why it cannot be.
pub(crate) fn convert(key: &Key, v: &Sv, diags: &mut Vec<Diagnostic>) -> Option<Value> {
    let wrong = |expected: &str| {
        v.diag(Diagnostic::error(
            "wrong-type",
            format!(
                "`{}` must be {expected}, got {}",
                key.name,
                describe_value(v)
            ),
        ))
    };
    let out = match (key.ty, &v.v) {
        (Ty::Bool, V::Bool(b)) => Value::Bool(*b),
        (Ty::Bool, V::Str(s)) if s == "true" || s == "false" => Value::Bool(s == "true"),
        (Ty::Bool, _) => return push(diags, wrong("true or false")),
        (Ty::Int, V::Int(i)) => Value::Int(*i),
        (Ty::Int, V::Str(s)) if s.parse::<i64>().is_ok() => Value::Int(s.parse().ok()?),
        (Ty::Int, _) => return push(diags, wrong("an integer")),
        (Ty::Str, V::Str(s)) => Value::Str(s.clone()),
        (Ty::Str, V::Int(i)) => Value::Str(i.to_string()),
        (Ty::Str, _) => return push(diags, wrong("a string")),
        (Ty::StrList, V::Str(s)) => Value::List(vec![s.clone()]),
        (Ty::StrList, V::Array(items)) => {
            let mut out = Vec::new();
            for i in items {
                match &i.v {
                    V::Str(s) => out.push(s.clone()),
                    V::Int(n) => out.push(n.to_string()),
                    _ => return push(diags, wrong("a list of strings")),
                }
            }
            Value::List(out)
        }
        (Ty::StrList, _) => return push(diags, wrong("a list of strings")),
        (Ty::StrMap, V::Table(entries)) => {
            let mut m = BTreeMap::new();
            for e in entries {
                match &e.value.v {
                    V::Str(s) => {
                        m.insert(e.key.clone(), s.clone());
                    }
                    V::Int(i) => {
                        m.insert(e.key.clone(), i.to_string());
                    }
                    V::Bool(b) => {
                        m.insert(e.key.clone(), b.to_string());
                    }
                    _ => return push(diags, wrong("a table of strings")),
                }
            }
            Value::Map(m)
        }
        (Ty::StrMap, _) => return push(diags, wrong("a table of strings")),
        (Ty::Enum(words), V::Str(s)) if words.contains(&s.as_str()) => Value::Str(s.clone()),
        (Ty::Enum(words), _) => {
            return push(
                diags,
                v.diag(Diagnostic::error(
                    "bad-value",
                    format!(
                        "`{}` must be one of {}, got {}",
                        key.name,
                        words.join(", "),
                        describe_value(v)
                    ),
                )),
            );
        }
        (Ty::Duration, V::Int(i)) if *i >= 0 => Value::Duration(Duration::from_secs(*i as u64)),
        (Ty::Duration, V::Str(s)) => match parse_duration(s) {
            Some(d) => Value::Duration(d),
            None => return push(diags, bad_duration(key.name, v)),
        },
        (Ty::Duration, _) => return push(diags, bad_duration(key.name, v)),
        (Ty::Mode, _) => Value::Mode(mode(key.name, v, diags)?),
        (Ty::Matcher(compare), _) => Value::Matcher(matcher(key.name, compare, v, diags)?),
        (Ty::MatcherMap(_), V::Table(entries)) if entries.is_empty() => {
            return push(
                diags,
                v.diag(Diagnostic::error(
                    "empty-matcher",
                    format!("`{}` is an empty table: it asserts nothing", key.name),
                )),
            );
        }
        (Ty::MatcherMap(compare), V::Table(entries)) => {
            let mut out = Vec::new();
            let mut ok = true;
            for e in entries {
                let name = format!("{}.{}", key.name, e.key);
                match matcher(&name, compare, &e.value, diags) {
                    Some(m) => out.push(super::NamedMatcher {
                        name: e.key.clone(),
                        matcher: m,
                        location: e.key_at.loc.clone(),
                    }),
                    None => ok = false,
                }
            }
            if !ok {
                return None;
            }
            Value::Matchers(out)
        }
        (Ty::MatcherMap(_), _) => {
            return push(
                diags,
                wrong(
                    "a table of values or matchers such as { Name = \"x\", Other = { le = \"4\" } }",
                ),
            );
        }
    };
    Some(out)
}

fn push<T>(diags: &mut Vec<Diagnostic>, d: Diagnostic) -> Option<T> {
    diags.push(d);
    None
}

fn describe_value(v: &Sv) -> String {
    match &v.v {
        V::Str(s) => format!("{s:?}"),
        V::Int(i) => i.to_string(),
        V::Bool(b) => b.to_string(),
        other => other.type_name().to_string(),
    }
}

pub(crate) fn bad_duration(key: &str, v: &Sv) -> Diagnostic {
    v.diag(Diagnostic::error(
        "bad-duration",
        format!(
            "`{key}` must be a duration such as \"30s\", \"500ms\" or \"2m\", got {}",
            describe_value(v)
        ),
    ))
}

fn mode(key: &str, v: &Sv, diags: &mut Vec<Diagnostic>) -> Option<ModeSpec> {
    let bad = |at: &Sv| {
        at.diag(Diagnostic::error(
            "bad-mode",
            format!(
                "`{key}` must be an octal mode string such as \"0644\" or {{ max = \"0755\" }}, got {}",
                describe_value(at)
            ),
        ))
    };
    // Modes are strings: a TOML integer 644 would silently mean decimal 644.
    let octal = |at: &Sv| at.as_str().and_then(parse_mode);
    match &v.v {
        V::Table(entries) => {
            let mut spec = None;
            for e in entries {
                let m = match octal(&e.value) {
                    Some(m) => m,
                    None => return push(diags, bad(&e.value)),
                };
                spec = Some(match e.key.as_str() {
                    "max" => ModeSpec::Max(m),
                    "eq" => ModeSpec::Exact(m),
                    _ => {
                        return push(
                            diags,
                            e.key_at.diag(Diagnostic::error(
                                "unknown-key",
                                format!(
                                    "unknown key `{}` in `{key}`; expected `max` (no more permissive than) or `eq`",
                                    e.key
                                ),
                            )),
                        );
                    }
                });
            }
            match spec {
                Some(s) if entries.len() == 1 => Some(s),
                _ => push(
                    diags,
                    v.diag(Diagnostic::error(
                        "empty-matcher",
                        format!("`{key}` needs exactly one of `max` or `eq`"),
                    )),
                ),
            }
        }
        _ => match octal(v) {
            Some(m) => Some(ModeSpec::Exact(m)),
            None => push(diags, bad(v)),
        },
    }
}

fn scalar(v: &Sv) -> Option<Scalar> {
    match &v.v {
        V::Str(s) => Some(Scalar::Str(s.clone())),
        V::Int(i) => Some(Scalar::Int(*i)),
        V::Bool(b) => Some(Scalar::Bool(*b)),
        V::Float(f) => Some(Scalar::Str(f.to_string())),
        V::Datetime(d) => Some(Scalar::Str(d.clone())),
        _ => None,
    }
}

fn matcher(key: &str, compare: Compare, v: &Sv, diags: &mut Vec<Diagnostic>) -> Option<Matcher> {
    let check_quantity = |s: &str, at: &Sv, diags: &mut Vec<Diagnostic>| -> bool {
        if compare == Compare::Version || parse_quantity(s).is_some() {
            return true;
        }
        diags.push(at.diag(Diagnostic::error(
            "bad-quantity",
            format!(
                "`{key}` compares amounts: expected a number with an optional unit (\"256GiB\", \"10%\", \"30s\"), got {s:?}"
            ),
        )));
        false
    };
    let entries = match &v.v {
        V::Table(entries) => entries,
        V::Array(_) => {
            return push(
                diags,
                v.diag(Diagnostic::error(
                    "wrong-type",
                    format!(
                        "`{key}` must be a value or a matcher table such as {{ one_of = [...] }}, got an array"
                    ),
                )),
            );
        }
        _ => {
            let s = scalar(v)?;
            if compare == Compare::Amount {
                if !check_quantity(&s.to_string(), v, diags) {
                    return None;
                }
                return Some(Matcher {
                    preds: vec![Pred::Ge(s.to_string())],
                    compare,
                });
            }
            return Some(Matcher {
                preds: vec![Pred::Eq(s)],
                compare,
            });
        }
    };
    if entries.is_empty() {
        return push(
            diags,
            v.diag(Diagnostic::error(
                "empty-matcher",
                format!(
                    "`{key}` is an empty matcher table: it asserts nothing; use one of {}",
                    PRED_KEYS.join(", ")
                ),
            )),
        );
    }
    let mut preds = Vec::new();
    let mut ok = true;
    for e in entries {
        let val = &e.value;
        let text = || scalar(val).map(|s| s.to_string());
        let pred = match e.key.as_str() {
            "eq" | "ne" => match scalar(val) {
                Some(s) if e.key == "eq" => Some(Pred::Eq(s)),
                Some(s) => Some(Pred::Ne(s)),
                None => None,
            },
            "matches" | "not_matches" => match &val.v {
                V::Str(re) => match Regex::new(&format!("(?m){re}")) {
                    Ok(r) if e.key == "matches" => Some(Pred::Matches(r)),
                    Ok(r) => Some(Pred::NotMatches(r)),
                    Err(err) => {
                        let msg = err.to_string();
                        let last = msg.lines().last().unwrap_or("").trim();
                        let last = last.strip_prefix("error: ").unwrap_or(last);
                        diags.push(val.diag(Diagnostic::error(
                            "bad-regex",
                            format!("`{key}.{}`: invalid regular expression: {last}", e.key),
                        )));
                        ok = false;
                        continue;
                    }
                },
                _ => None,
            },
            "contains" => text().map(Pred::Contains),
            "not_contains" => text().map(Pred::NotContains),
            "ge" | "gt" | "le" | "lt" => match text() {
                Some(s) => {
                    if !check_quantity(&s, val, diags) {
                        ok = false;
                        continue;
                    }
                    Some(match e.key.as_str() {
                        "ge" => Pred::Ge(s),
                        "gt" => Pred::Gt(s),
                        "le" => Pred::Le(s),
                        _ => Pred::Lt(s),
                    })
                }
                None => None,
            },
            "one_of" => match &val.v {
                V::Array(items) if !items.is_empty() => {
                    let s: Option<Vec<Scalar>> = items.iter().map(scalar).collect();
                    s.map(Pred::OneOf)
                }
                V::Array(_) => {
                    diags.push(val.diag(Diagnostic::error(
                        "empty-matcher",
                        format!("`{key}.one_of` is an empty list: nothing could match"),
                    )));
                    ok = false;
                    continue;
                }
                _ => None,
            },
            other => {
                diags.push(e.key_at.diag(Diagnostic::error(
                    "unknown-key",
                    format!(
                        "unknown matcher `{other}` in `{key}`{}; expected one of {}",
                        suggest(other, PRED_KEYS.iter().copied()),
                        PRED_KEYS.join(", ")
                    ),
                )));
                ok = false;
                continue;
            }
        };
        match pred {
            Some(p) => preds.push(p),
            None => {
                let expected = match e.key.as_str() {
                    "matches" | "not_matches" => "a regular expression string",
                    "one_of" => "a list of values",
                    _ => "a string or number",
                };
                diags.push(val.diag(Diagnostic::error(
                    "wrong-type",
                    format!(
                        "`{key}.{}` must be {expected}, got {}",
                        e.key,
                        describe_value(val)
                    ),
                )));
                ok = false;
            }
        }
    }
    ok.then_some(Matcher { preds, compare })
}

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
