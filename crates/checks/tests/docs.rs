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

fn repo_doc(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(name)
}

/// The keys the contract's resource table (docs/profile.md) names for each
/// kind: the backticked names that open an item of the keys column, with
/// the parenthesised explanations taken out (`follow (link properties —
/// `type = "symlink"`, …)` names `follow`, not `type`).
fn contract_keys(contract: &str) -> Vec<(String, Vec<String>)> {
    let row = regex::Regex::new(r"(?m)^\| `([a-z_]+)` \| (.*) \|[^|]*\|$").unwrap();
    let item = regex::Regex::new(r"(?:^|, )`([a-z0-9_]+)").unwrap();
    row.captures_iter(contract)
        .map(|c| {
            let mut flat = String::new();
            let mut depth = 0usize;
            for ch in c[2].chars() {
                match ch {
                    '(' => depth += 1,
                    ')' => depth = depth.saturating_sub(1),
                    _ if depth == 0 => flat.push(ch),
                    _ => {}
                }
            }
            let keys = item
                .captures_iter(&flat)
                .map(|k| k[1].to_string())
                .collect();
            (c[1].to_string(), keys)
        })
        .collect()
}

const BEGIN: &str = "<!-- keys beyond the contract: generated from the registry by crates/checks/tests/docs.rs -->\n";
const END: &str = "<!-- end of generated keys -->\n";

/// The table of every key the registry has and the contract does not name,
/// one row per key with the kind's own one-line doc; kinds the contract
/// does not have at all are listed first.
fn extension_keys_table(contract: &[(String, Vec<String>)]) -> String {
    let named = |kind: &dyn Kind| -> Option<&[String]> {
        contract
            .iter()
            .find(|(k, _)| k == kind.name())
            .map(|(_, keys)| keys.as_slice())
    };
    let mut out = String::new();
    let new_kinds: Vec<String> = KINDS
        .iter()
        .filter(|k| named(**k).is_none())
        .map(|k| format!("[`{0}`](resources/{0}.md)", k.name()))
        .collect();
    if !new_kinds.is_empty() {
        out += &format!(
            "Kinds the contract does not have: {}.\n\n",
            new_kinds.join(", ")
        );
    }
    out += "| kind | key | what it checks |\n|---|---|---|\n";
    for kind in KINDS {
        let named = named(*kind).unwrap_or(&[]);
        for key in std::iter::once(kind.subject()).chain(kind.keys().iter().copied()) {
            if named.iter().any(|n| n == key.name) {
                continue;
            }
            out += &format!(
                "| [`{0}`](resources/{0}.md) | `{1}` | {2} |\n",
                kind.name(),
                key.name,
                key.doc.replace('|', "\\|").replace('\n', " ")
            );
        }
    }
    out
}

#[test]
#[expect(
    clippy::disallowed_methods,
    reason = "the docs live in the repository, not in a target"
)]
fn every_registry_key_is_in_the_contract_or_the_extensions_page() {
    let contract_text = std::fs::read_to_string(repo_doc("profile.md")).unwrap();
    let contract = contract_keys(&contract_text);
    assert!(
        contract.len() >= 20 && contract.iter().all(|(_, keys)| !keys.is_empty()),
        "the contract's resource table no longer parses: {contract:?}"
    );
    let keys_of = |kind: &str| &contract.iter().find(|(k, _)| k == kind).unwrap().1;
    // Words inside an explanation or a value are not keys.
    assert!(keys_of("file").contains(&"follow".to_string()));
    assert!(!keys_of("file").contains(&"symlink".to_string()));
    assert_eq!(keys_of("config"), &["path", "format", "settings"]);
    // The engine may add keys but must not drop or rename the contract's.
    let mut dropped = Vec::new();
    for (kind_name, keys) in &contract {
        let Some(kind) = KINDS.iter().find(|k| k.name() == kind_name) else {
            dropped.push(format!("kind {kind_name}"));
            continue;
        };
        for key in keys {
            let known = kind.subject().name == key || kind.keys().iter().any(|k| k.name == key);
            if !known {
                dropped.push(format!("{kind_name}.{key}"));
            }
        }
    }
    assert!(
        dropped.is_empty(),
        "the contract names what the registry lacks: {dropped:?}"
    );

    let path = repo_doc("profile-extensions.md");
    let page = std::fs::read_to_string(&path).unwrap();
    let start = page
        .find(BEGIN)
        .expect("profile-extensions.md has the generated-keys marker")
        + BEGIN.len();
    let end = start + page[start..].find(END).expect("and its end marker");
    let want = extension_keys_table(&contract);
    if page[start..end] == want {
        return;
    }
    if std::env::var_os("NODECHECK_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, format!("{}{want}{}", &page[..start], &page[end..])).unwrap();
        return;
    }
    panic!(
        "docs/profile-extensions.md's table of keys beyond the contract is stale; \
         regenerate with: NODECHECK_BLESS=1 cargo test -p nodecheck-checks --test docs"
    );
}
