//! What packagers and editors get from the binary: the profile JSON Schema
//! (kept in sync with the checked-in copy and read by taplo), shell
//! completions and man pages.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::util::{code, nodecheck, repo, stderr, stdout};

#[test]
fn checked_in_schema_is_what_the_binary_generates() {
    let out = nodecheck(&["schema"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let checked_in = fs::read_to_string(repo().join("docs/profile.schema.json")).unwrap();
    assert!(
        stdout(&out) == checked_in,
        "docs/profile.schema.json is stale: run `nodecheck schema > docs/profile.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&checked_in).unwrap();
    // Every kind of the registry is a check table of a control.
    let control = &schema["properties"]["control"]["items"]["properties"];
    for kind in nodecheck_checks_kinds() {
        assert!(
            control.get(&kind).is_some(),
            "kind {kind} missing from the schema"
        );
    }
}

/// The kinds `nodecheck explain` lists.
fn nodecheck_checks_kinds() -> Vec<String> {
    let out = nodecheck(&["explain"]);
    stdout(&out)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// taplo, the TOML toolkit behind Even Better TOML, as tests/deps.sh
/// installs it (npm's @taplo/cli, cached in /var/cache/nodecheck/tools).
fn taplo() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os("NODECHECK_TAPLO").unwrap_or_else(|| {
        "/var/cache/nodecheck/tools/taplo-0.7.0/node_modules/.bin/taplo".into()
    }));
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "taplo is missing in CI: tests/deps.sh installs it"
    );
    eprintln!("note: taplo not installed (tests/deps.sh installs it); schema lint not tried");
    None
}

fn taplo_lint(taplo: &PathBuf, file: &std::path::Path) -> std::process::Output {
    let schema = repo().join("docs/profile.schema.json");
    Command::new(taplo)
        .arg("lint")
        .arg("--schema")
        .arg(format!("file://{}", schema.display()))
        .arg(file)
        .env("RUST_LOG", "error")
        .output()
        .expect("run taplo")
}

#[test]
fn taplo_accepts_every_bundled_profile_and_flags_a_misspelt_key() {
    let Some(taplo) = taplo() else { return };
    let mut profiles = Vec::new();
    for dir in ["profiles", "profiles/compute"] {
        for e in fs::read_dir(repo().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                profiles.push(p);
            }
        }
    }
    assert!(profiles.len() >= 8, "bundled profiles: {profiles:?}");
    for p in &profiles {
        let out = taplo_lint(&taplo, p);
        assert!(
            out.status.success(),
            "{} does not validate against the schema:\n{}",
            p.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    fs::write(
        &bad,
        "[profile]\nname = \"site\"\n\n[[control]]\nid = \"shadow\"\n\n  [[control.file]]\n  \
         path = \"/etc/shadow\"\n  ownr = \"root\"\n",
    )
    .unwrap();
    let out = taplo_lint(&taplo, &bad);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "taplo accepted `ownr`:\n{err}");
    assert!(err.contains("'ownr' was unexpected"), "{err}");
    assert!(
        err.contains("bad.toml:9:"),
        "the error points at the line: {err}"
    );
}

#[test]
fn completions_and_man_pages_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let out = nodecheck(&["completions", shell]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let text = stdout(&out);
        assert!(
            text.contains("nhc") && text.contains("target"),
            "{shell}: {text}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = nodecheck(&["manpages", dir.path().to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for page in [
        "nodecheck.1",
        "nodecheck-run.1",
        "nodecheck-nhc.1",
        "nodecheck-validate.1",
    ] {
        let text = fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page}: {text}"
        );
    }
    let run = fs::read_to_string(dir.path().join("nodecheck-run.1")).unwrap();
    assert!(
        run.contains("nodecheck run") || run.contains("nodecheck\\-run"),
        "{run}"
    );
    assert!(run.contains("\\-\\-junit"), "{run}");
}
