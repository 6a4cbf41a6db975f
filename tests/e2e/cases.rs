//! Command cases, as typos and trycmd write them: `tests/cmd/<case>.toml`
//! gives the arguments and exit status, `<case>.stdout` / `<case>.stderr`
//! the exact output (the case directory is the working directory). Run with
//! `NODECHECK_BLESS=1` to rewrite the expected output after a deliberate
//! change, then review the diff.

use std::fs;
use std::process::Command;

use crate::util::*;

#[test]
fn command_cases() {
    let dir = repo().join("tests/cmd");
    let bless = std::env::var_os("NODECHECK_BLESS").is_some_and(|v| v == "1");
    let mut cases: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "toml")
                && !p.to_string_lossy().ends_with(".profile.toml")
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for case in cases {
        let spec: toml::Table = fs::read_to_string(&case).unwrap().parse().unwrap();
        let args: Vec<&str> = spec["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let want_status = spec["status"].as_integer().unwrap() as i32;
        let o = Command::new(env!("CARGO_BIN_EXE_nodecheck"))
            .args(&args)
            .env("NO_COLOR", "1")
            .current_dir(&dir)
            .output()
            .unwrap();
        let name = case.file_stem().unwrap().to_string_lossy().into_owned();
        if code(&o) != want_status {
            failures.push(format!(
                "{name}: exit {} (want {want_status})\n{}{}",
                code(&o),
                stdout(&o),
                stderr(&o)
            ));
        }
        for (stream, got) in [("stdout", stdout(&o)), ("stderr", stderr(&o))] {
            let got = got.replace(&dir.display().to_string(), "[CASES]");
            let path = dir.join(format!("{name}.{stream}"));
            let want = fs::read_to_string(&path).unwrap_or_default();
            if got != want {
                if bless {
                    if got.is_empty() {
                        let _ = fs::remove_file(&path);
                    } else {
                        fs::write(&path, &got).unwrap();
                    }
                } else {
                    failures.push(format!(
                        "{name}: {stream} differs\n--- want\n{want}--- got\n{got}"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(NODECHECK_BLESS=1 rewrites the expected output)",
        failures.join("\n")
    );
}
