//! `${name}` interpolation.
//!
//! A string that is exactly `"${name}"` takes the variable's value whole, so
//! a list variable can feed a list (`name = "${compilers}"`); inside an array
//! such a list is spliced in. Anywhere else a list variable is an error.
//! `$${` writes a literal `${`.

use std::collections::BTreeMap;

use super::Diagnostic;
use super::raw::{Sv, V};

/// A variable's value.
#[derive(Clone, Debug, PartialEq)]
pub enum VarValue {
    Str(String),
    List(Vec<String>),
}

impl VarValue {
    pub fn render(&self) -> String {
        match self {
            VarValue::Str(s) => s.clone(),
            VarValue::List(l) => l.join(","),
        }
    }
}

/// Variables in scope, innermost first (matrix values shadow profile vars).
pub(crate) struct Scope<'a> {
    pub layers: Vec<&'a BTreeMap<String, VarValue>>,
}

impl Scope<'_> {
    fn get(&self, name: &str) -> Option<&VarValue> {
        self.layers.iter().find_map(|l| l.get(name))
    }
}

enum Piece<'s> {
    Lit(&'s str),
    Var(&'s str),
}

/// Splits a string into literal text and `${var}` references.
fn pieces(s: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        if after.starts_with("${") {
            // `$${` is an escaped `${`.
            out.push(Piece::Lit(&rest[..i]));
            out.push(Piece::Lit("$"));
            rest = &after[1..];
            out.push(Piece::Lit("{"));
            rest = &rest[1..];
            continue;
        }
        if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unterminated `${{` in {s:?}"))?;
            let name = &body[..end];
            if !valid_name(name) {
                return Err(format!(
                    "`${{{name}}}` is not a variable reference: names are letters, digits, `_` and `-`"
                ));
            }
            out.push(Piece::Lit(&rest[..i]));
            out.push(Piece::Var(name));
            rest = &body[end + 1..];
        } else {
            out.push(Piece::Lit(&rest[..=i]));
            rest = after;
        }
    }
    out.push(Piece::Lit(rest));
    Ok(out)
}

pub(crate) fn valid_name(name: &str) -> bool {
    let mut c = name.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Interpolates one string. `Ok(VarValue::List)` only for a whole-string
/// reference to a list variable.
pub(crate) fn interpolate_str(s: &str, scope: &Scope<'_>) -> Result<VarValue, String> {
    let ps = pieces(s)?;
    let non_empty: Vec<&Piece<'_>> = ps.iter().filter(|p| !matches!(p, Piece::Lit(""))).collect();
    if let [Piece::Var(name)] = non_empty.as_slice() {
        return scope
            .get(name)
            .cloned()
            .ok_or_else(|| format!("undefined variable `${{{name}}}`"));
    }
    let mut out = String::with_capacity(s.len());
    for p in ps {
        match p {
            Piece::Lit(l) => out.push_str(l),
            Piece::Var(name) => match scope.get(name) {
                Some(VarValue::Str(v)) => out.push_str(v),
                Some(VarValue::List(_)) => {
                    return Err(format!(
                        "list variable `${{{name}}}` can only stand alone as a whole value, not inside {s:?}"
                    ));
                }
                None => return Err(format!("undefined variable `${{{name}}}`")),
            },
        }
    }
    Ok(VarValue::Str(out))
}

/// Interpolates every string in a value tree (table keys excepted).
pub(crate) fn interpolate(sv: &Sv, scope: &Scope<'_>, diags: &mut Vec<Diagnostic>) -> Sv {
    let mut out = sv.clone();
    interpolate_mut(&mut out, scope, diags);
    out
}

/// Interpolates a value tree in place: profiles are mostly literal text, so
/// only strings holding a `$` are rebuilt.
pub(crate) fn interpolate_mut(sv: &mut Sv, scope: &Scope<'_>, diags: &mut Vec<Diagnostic>) {
    match &mut sv.v {
        V::Str(s) if s.contains('$') => match interpolate_str(s, scope) {
            Ok(VarValue::Str(n)) => *s = n,
            Ok(VarValue::List(l)) => {
                let items = l
                    .into_iter()
                    .map(|e| Sv {
                        v: V::Str(e),
                        loc: sv.loc.clone(),
                        src: sv.src.clone(),
                        span: sv.span.clone(),
                    })
                    .collect();
                sv.v = V::Array(items);
            }
            Err(e) => diags.push(sv.diag(Diagnostic::error("undefined-variable", e))),
        },
        V::Array(items) => {
            if !items.iter().any(holds_dollar) {
                return;
            }
            let mut out = Vec::with_capacity(items.len());
            for mut item in std::mem::take(items) {
                let was_str = matches!(item.v, V::Str(_));
                interpolate_mut(&mut item, scope, diags);
                // A list variable inside an array is spliced in.
                match item.v {
                    V::Array(spliced) if was_str => out.extend(spliced),
                    _ => out.push(item),
                }
            }
            sv.v = V::Array(out);
        }
        V::Table(entries) => {
            for e in entries {
                interpolate_mut(&mut e.value, scope, diags);
            }
        }
        _ => {}
    }
}

fn holds_dollar(sv: &Sv) -> bool {
    match &sv.v {
        V::Str(s) => s.contains('$'),
        V::Array(items) => items.iter().any(holds_dollar),
        V::Table(entries) => entries.iter().any(|e| holds_dollar(&e.value)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope_of(vars: &BTreeMap<String, VarValue>) -> Scope<'_> {
        Scope { layers: vec![vars] }
    }

    fn vars() -> BTreeMap<String, VarValue> {
        let mut m = BTreeMap::new();
        m.insert("kernel".into(), VarValue::Str("6.1.0-28-amd64".into()));
        m.insert(
            "compilers".into(),
            VarValue::List(vec!["gcc".into(), "g++".into()]),
        );
        m
    }

    #[test]
    fn strings_interpolate() {
        let v = vars();
        let s = scope_of(&v);
        assert_eq!(
            interpolate_str("/lib/modules/${kernel}/x", &s),
            Ok(VarValue::Str("/lib/modules/6.1.0-28-amd64/x".into()))
        );
        assert_eq!(
            interpolate_str("${compilers}", &s),
            Ok(VarValue::List(vec!["gcc".into(), "g++".into()]))
        );
        assert_eq!(
            interpolate_str("cost $5 and $${HOME}", &s),
            Ok(VarValue::Str("cost $5 and ${HOME}".into()))
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let v = vars();
        let s = scope_of(&v);
        assert!(
            interpolate_str("${nope}", &s)
                .unwrap_err()
                .contains("undefined variable `${nope}`")
        );
        assert!(
            interpolate_str("x ${compilers}", &s)
                .unwrap_err()
                .contains("can only stand alone")
        );
        assert!(
            interpolate_str("${oops", &s)
                .unwrap_err()
                .contains("unterminated")
        );
    }
}
