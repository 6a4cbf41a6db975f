//! The pages in docs/resources/ are generated from each kind's code
//! (`render_doc`); this test fails when one is stale, and rewrites them
//! with `NODECHECK_BLESS=1 cargo test -p nodecheck-checks --test docs`.

use std::path::{Path, PathBuf};

use nodecheck_checks::KINDS;
use nodecheck_core::kind::{Kind, Ty, render_doc};

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/resources")
}

#[test]
#[expect(
    clippy::disallowed_methods,
    reason = "the docs live in the repository, not in a target"
)]
fn resource_docs_are_fresh() {
    let dir = docs_dir();
    let bless = std::env::var_os("NODECHECK_BLESS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for kind in KINDS {
        let want = render_doc(*kind);
        let path = dir.join(format!("{}.md", kind.name()));
        if std::fs::read_to_string(&path).ok().as_deref() == Some(want.as_str()) {
            continue;
        }
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, want).unwrap();
        } else {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale or missing docs: {stale:?}\n\
         regenerate with: NODECHECK_BLESS=1 cargo test -p nodecheck-checks --test docs"
    );
    let orphans: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| {
            f.strip_suffix(".md")
                .is_some_and(|name| !KINDS.iter().any(|k| k.name() == name))
        })
        .collect();
    assert!(
        orphans.is_empty(),
        "docs for kinds that do not exist: {orphans:?}"
    );
}

#[test]
fn every_doc_has_the_sections() {
    for kind in KINDS {
        let page = render_doc(*kind);
        let mut at = 0;
        for section in ["## What it checks", "## Keys", "## Example", "## Targets"] {
            let found = page[at..]
                .find(&format!("\n{section}\n"))
                .unwrap_or_else(|| panic!("{}: no {section:?} after byte {at}", kind.name()));
            at += found + 1;
        }
    }
}

/// The ```toml block of a kind's `## Example`.
fn example(kind: &dyn Kind) -> String {
    let doc = kind.doc();
    let start = doc.find("## Example").expect("an example section");
    let block = &doc[start..];
    let open = block.find("```toml\n").expect("a ```toml block") + 8;
    let close = block[open..].find("```").expect("a closed block");
    block[open..open + close].to_string()
}

#[test]
fn examples_parse_and_use_only_declared_keys() {
    for kind in KINDS {
        let name = kind.name();
        let src = example(*kind);
        let doc: toml::Table = toml::from_str(&src)
            .unwrap_or_else(|e| panic!("{name}: the example is not valid TOML: {e}"));
        let controls = doc["control"].as_array().expect("[[control]] tables");
        let mut checks = 0;
        for control in controls {
            let control = control.as_table().unwrap();
            assert!(control.contains_key("id"), "{name}: a control without id");
            for check in control
                .get(name)
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
            {
                checks += 1;
                assert_check(*kind, check.as_table().unwrap());
            }
        }
        assert!(checks > 0, "{name}: the example has no [[control.{name}]]");
    }
}

fn assert_check(kind: &dyn Kind, check: &toml::Table) {
    let name = kind.name();
    let subject = kind.subject();
    assert!(
        check.contains_key(subject.name) || kind.default_subject().is_some(),
        "{name}: an example check without `{}`",
        subject.name
    );
    let mut asserts = false;
    for (key, value) in check {
        if key == subject.name {
            continue;
        }
        let k = kind
            .keys()
            .iter()
            .find(|k| k.name == key)
            .unwrap_or_else(|| panic!("{name}: the example uses an unknown key `{key}`"));
        asserts |= !k.modifier;
        let ok = match k.ty {
            Ty::Bool => value.is_bool(),
            Ty::Int => value.is_integer(),
            Ty::Str => value.is_str(),
            Ty::StrList => value.is_array() || value.is_str(),
            Ty::StrMap => value.is_table(),
            Ty::Matcher(_) => !value.is_array(),
            Ty::MatcherMap(_) => value.is_table(),
            Ty::Mode => value.is_str() || value.as_table().is_some_and(|t| t.contains_key("max")),
            Ty::Duration => value.is_str(),
            Ty::Enum(words) => value.as_str().is_some_and(|v| words.contains(&v)),
        };
        assert!(ok, "{name}: `{key} = {value}` does not fit {:?}", k.ty);
    }
    assert!(
        asserts || kind.subject_asserts(),
        "{name}: an example check that asserts nothing"
    );
}
