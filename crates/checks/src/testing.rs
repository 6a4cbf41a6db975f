//! Building checks by hand for the kinds' unit tests, the way the loader
//! would hand them over.

use std::path::PathBuf;
use std::sync::Arc;

use nodecheck_core::kind::{Kind, Ty};
use nodecheck_core::matcher::{Matcher, ModeSpec, Pred, Scalar};
use nodecheck_core::outcome::{Evaluation, Status};
use nodecheck_core::profile::{Check, Diagnostic, Location, Prop, Value};
use nodecheck_core::run::Context;
use nodecheck_core::target::Target;

/// A check of `kind` on `subject` with `props` (matchers get the compare
/// mode of their key, as the loader does).
pub fn check(kind: &'static dyn Kind, subject: &str, props: Vec<(&str, Value)>) -> Check {
    let file = Arc::new(PathBuf::from("test.toml"));
    let props = props
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| {
            let k = kind
                .keys()
                .iter()
                .find(|k| k.name == key)
                .unwrap_or_else(|| panic!("{} has no key {key}", kind.name()));
            let value = match (value, k.ty) {
                (Value::Matcher(mut m), Ty::Matcher(compare)) => {
                    m.compare = compare;
                    Value::Matcher(m)
                }
                (v, _) => v,
            };
            Prop {
                key: k.name,
                value,
                location: Location {
                    file: file.clone(),
                    line: u32::try_from(i).unwrap() + 3,
                    column: 1,
                },
            }
        })
        .collect();
    Check {
        kind,
        subject: subject.to_string(),
        props,
        location: Location {
            file,
            line: 2,
            column: 1,
        },
        timeout: None,
        only_if: None,
    }
}

pub fn run(check: &Check, target: &dyn Target) -> Evaluation {
    check.kind.eval(check, &Context { target })
}

/// `(key, status, message)` of each property, for compact assertions.
pub fn results(e: &Evaluation) -> Vec<(String, Status, String)> {
    e.properties
        .iter()
        .map(|p| (p.key.clone(), p.status, p.message.clone()))
        .collect()
}

/// The one result for `key`.
pub fn result(e: &Evaluation, key: &str) -> (Status, String) {
    let mut found = e.properties.iter().filter(|p| p.key == key);
    let p = found
        .next()
        .unwrap_or_else(|| panic!("no result for {key} in {:#?}", e.properties));
    assert!(found.next().is_none(), "two results for {key}");
    (p.status, p.message.clone())
}

pub fn messages(diags: &[Diagnostic]) -> Vec<String> {
    diags
        .iter()
        .map(|d| format!("{}: {}", d.code, d.message))
        .collect()
}

pub fn b(v: bool) -> Value {
    Value::Bool(v)
}

pub fn s(v: &str) -> Value {
    Value::Str(v.to_string())
}

pub fn int(v: i64) -> Value {
    Value::Int(v)
}

pub fn list(v: &[&str]) -> Value {
    Value::List(v.iter().map(|s| s.to_string()).collect())
}

/// A plain `key = "value"` matcher.
pub fn eq(v: &str) -> Value {
    preds(vec![Pred::Eq(Scalar::Str(v.to_string()))])
}

/// A plain `key = 42` matcher.
pub fn eq_int(v: i64) -> Value {
    preds(vec![Pred::Eq(Scalar::Int(v))])
}

pub fn preds(preds: Vec<Pred>) -> Value {
    Value::Matcher(Matcher {
        preds,
        compare: nodecheck_core::kind::Compare::Version,
    })
}

pub fn re(r: &str) -> Value {
    preds(vec![Pred::Matches(regex::Regex::new(r).unwrap())])
}

pub fn mode(m: u32) -> Value {
    Value::Mode(ModeSpec::Exact(m))
}

pub fn max_mode(m: u32) -> Value {
    Value::Mode(ModeSpec::Max(m))
}

/// What a program run by [`MemoryTarget::exec_with`] "printed".
pub fn output(
    code: nodecheck_core::target::Exit,
    stdout: &str,
    stderr: &str,
) -> nodecheck_core::target::ExecOutput {
    let cap = |s: &str| nodecheck_core::target::Captured {
        head: s.as_bytes().to_vec(),
        ..Default::default()
    };
    nodecheck_core::target::ExecOutput {
        exit: code,
        stdout: cap(stdout),
        stderr: cap(stderr),
        timed_out: false,
        duration: std::time::Duration::from_millis(5),
        isolation: "memory".into(),
    }
}

/// The requests a recording target was asked to run.
pub type Seen = Arc<std::sync::Mutex<Vec<nodecheck_core::target::ExecRequest>>>;

/// `base` answering every program with `out`, recording each request.
pub fn recording(
    base: nodecheck_core::target::MemoryTarget,
    out: nodecheck_core::target::ExecOutput,
) -> (nodecheck_core::target::MemoryTarget, Seen) {
    let seen = Seen::default();
    let s = seen.clone();
    let t = base.exec_with(move |req| {
        s.lock().unwrap().push(req.clone());
        Ok(out.clone())
    });
    (t, seen)
}

/// An empty target answering every program with `out`.
pub fn target(
    out: nodecheck_core::target::ExecOutput,
) -> (nodecheck_core::target::MemoryTarget, Seen) {
    recording(nodecheck_core::target::MemoryTarget::new(), out)
}
