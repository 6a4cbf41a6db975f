//! The command line: exit statuses, diagnostics, subcommands.

use crate::util::*;

fn profile(tree: &Tree, text: &str) -> String {
    tree.file("p.toml", 0o644, text);
    tree.path().join("p.toml").display().to_string()
}

#[test]
fn a_misspelt_key_exits_2_naming_file_line_and_column() {
    let t = Tree::new();
    let p = profile(
        &t,
        "[profile]\nname = \"t\"\n\n[[control]]\nid = \"x\"\n  [[control.file]]\n  path = \"/etc/passwd\"\n  ownr = \"root\"\n",
    );
    for cmd in ["run", "validate", "list"] {
        let mut args = vec![cmd, p.as_str()];
        if cmd == "run" {
            args.extend(["--target", "/"]);
        }
        let o = nodecheck(&args);
        assert_eq!(code(&o), 2, "{cmd}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("{p}:8:3: error[unknown-key]: unknown key `ownr` in file check (did you mean `owner`?)")),
            "{cmd}: {err}"
        );
        assert!(err.contains("^^^^"), "{err}");
    }
}

#[test]
fn a_missing_target_exits_3() {
    let t = Tree::new();
    let p = profile(
        &t,
        "[profile]\nname = \"t\"\n[[control]]\nid = \"x\"\n[[control.file]]\npath = \"/etc\"\nexists = true\n",
    );
    let o = nodecheck(&["run", &p, "--target", "/nonexistent/rootfs"]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("/nonexistent/rootfs"), "{}", stderr(&o));
    let f = t.path().join("p.toml").display().to_string();
    let o = nodecheck(&["run", &p, "--target", &f]);
    assert_eq!(code(&o), 3, "a file is not a rootfs: {}", stderr(&o));
}

#[test]
fn usage_errors_exit_2() {
    let o = nodecheck(&["run"]);
    assert_eq!(code(&o), 2);
    let o = nodecheck(&["run", "profiles/base.toml", "--fail-on", "urgent"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("expected one of critical"));
    let o = nodecheck(&["run", "profiles/base.toml", "--var", "nope=1"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("unknown-var"), "{}", stderr(&o));
    let o = nodecheck(&[
        "run",
        "profiles/base.toml",
        "--junit",
        "/nonexistent/dir/x.xml",
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("cannot write report"), "{}", stderr(&o));
}

#[test]
fn validate_list_and_explain() {
    let o = nodecheck(&["validate", "profiles/base.toml"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("profiles/base.toml: ok ("),
        "{}",
        stdout(&o)
    );
    let o = nodecheck(&["list", "profiles/base.toml"]);
    assert_eq!(code(&o), 0);
    let out = stdout(&o);
    assert!(out.contains("shadow-perms [critical]"), "{out}");
    assert!(
        out.contains("    file /etc/shadow: type, owner, group, mode"),
        "{out}"
    );
    assert!(out.contains("    file /usr: type"), "list expansion: {out}");
    let o = nodecheck(&["explain", "file"]);
    assert_eq!(code(&o), 0);
    let doc = stdout(&o);
    for section in ["## What it checks", "## Keys", "## Example", "## Targets"] {
        assert!(doc.contains(section), "{section} missing:\n{doc}");
    }
    let o = nodecheck(&["explain"]);
    assert!(stdout(&o).contains("tree"));
    let o = nodecheck(&["explain", "fiel"]);
    assert_eq!(code(&o), 2);
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_nodecheck"))
        .args(["explain", "file"])
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

#[test]
fn severity_threshold_and_waivers_decide_the_exit_status() {
    let t = Tree::new();
    t.file("rootfs/etc/motd", 0o666, "hi\n");
    let root = t.path().join("rootfs").display().to_string();
    let body = "[[control]]\nid = \"motd\"\nseverity = \"low\"\n[[control.file]]\npath = \"/etc/motd\"\nmode = \"0644\"\n";
    let p = profile(&t, &format!("[profile]\nname = \"t\"\n{body}"));
    assert_eq!(code(&nodecheck(&["run", &p, "--target", &root])), 1);
    assert_eq!(
        code(&nodecheck(&[
            "run",
            &p,
            "--target",
            &root,
            "--fail-on",
            "medium"
        ])),
        0
    );
    let p = profile(
        &t,
        &format!(
            "[profile]\nname = \"t\"\n{body}[[waiver]]\ncontrol = \"motd\"\nreason = \"fixed in next image\"\nexpires = \"2999-01-01\"\n"
        ),
    );
    let o = nodecheck(&["run", &p, "--target", &root]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("fixed in next image"), "{}", stdout(&o));
    let p = profile(
        &t,
        &format!(
            "[profile]\nname = \"t\"\n{body}[[waiver]]\ncontrol = \"motd\"\nreason = \"old\"\nexpires = \"2020-01-01\"\n"
        ),
    );
    let o = nodecheck(&["run", &p, "--target", &root]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("expired-waiver"), "{}", stdout(&o));
}
