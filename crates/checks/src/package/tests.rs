use super::*;
use crate::testing::*;
use nodecheck_core::matcher::Pred;
use nodecheck_core::outcome::Status::{Error, Fail, Pass, Skip};
use nodecheck_core::profile::Value;
use nodecheck_core::target::MemoryTarget;

const STATUS: &str = "Package: munge\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\n\
                      Version: 0.5.15-2\nDescription: authentication\n long text\n\n\
                      Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\n\n\
                      Package: libc6\nStatus: install ok installed\nArchitecture: i386\nVersion: 2.36-9+deb12u4\n\n\
                      Package: telnet\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 0.17+2.4-2\n\n\
                      Package: openssh-server\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:9.2p1-2+deb12u3\n";

fn debian() -> MemoryTarget {
    MemoryTarget::new().file("/var/lib/dpkg/status", 0o644, 0, 0, STATUS)
}

fn eval_on(t: &MemoryTarget, name: &str, props: Vec<(&str, Value)>) -> Evaluation {
    run(&check(&Package, name, props), t)
}

fn ge(v: &str) -> Value {
    preds(vec![Pred::Ge(v.into())])
}

#[test]
fn dpkg_packages_and_versions() {
    let t = debian();
    let e = eval_on(
        &t,
        "munge",
        vec![("installed", b(true)), ("version", ge("0.5.15"))],
    );
    assert_eq!(
        results(&e),
        [
            (
                "installed".into(),
                Pass,
                "installed: package munge is installed (0.5.15-2 (amd64) in /var/lib/dpkg/status)"
                    .into()
            ),
            (
                "version".into(),
                Pass,
                "version: expected >= 0.5.15, got 0.5.15-2 (amd64)".into()
            ),
        ]
    );
    // dpkg's order: the epoch wins, ~ sorts first.
    let e = eval_on(&t, "openssh-server", vec![("version", ge("9.9"))]);
    assert_eq!(result(&e, "version").0, Pass);
    let e = eval_on(&t, "munge", vec![("version", ge("0.5.15~rc1"))]);
    assert_eq!(result(&e, "version").0, Pass);
    let e = eval_on(&t, "munge", vec![("version", ge("0.5.16"))]);
    assert_eq!(result(&e, "version").0, Fail);
    let e = eval_on(&t, "libc6:i386", vec![("installed", b(true))]);
    assert_eq!(result(&e, "installed").0, Pass);
    let e = eval_on(&t, "libc6:arm64", vec![("installed", b(true))]);
    assert_eq!(result(&e, "installed").0, Fail);
}

#[test]
fn removed_and_missing_packages() {
    let t = debian();
    let e = eval_on(&t, "telnet", vec![("version", eq("0.17+2.4-2"))]);
    assert_eq!(
        results(&e),
        [
            (
                "installed".into(),
                Fail,
                "installed: package telnet is not installed (/var/lib/dpkg/status says \
                 \"deinstall ok config-files\", version 0.17+2.4-2)"
                    .into()
            ),
            (
                "version".into(),
                Skip,
                "package telnet is not installed".into()
            ),
        ]
    );
    let e = eval_on(&t, "slurmd", vec![("installed", b(false))]);
    assert_eq!(
        results(&e),
        [(
            "installed".into(),
            Pass,
            "installed: package slurmd is not installed (in /var/lib/dpkg/status)".into()
        )]
    );
    let e = eval_on(&t, "munge", vec![("installed", b(false))]);
    assert_eq!(result(&e, "installed").0, Fail);
}

#[test]
fn no_database_is_an_error_saying_where_it_looked() {
    let e = eval_on(&MemoryTarget::new(), "munge", vec![("version", ge("1"))]);
    let (status, msg) = result(&e, "installed");
    assert_eq!(status, Error);
    assert!(
        msg.starts_with(
            "installed: package munge could not be looked up: no package database found \
             (looked for /var/lib/dpkg/status, /var/lib/dpkg/status.d, /var/lib/rpm/rpmdb.sqlite"
        ),
        "{msg}"
    );
    assert_eq!(result(&e, "version").0, Skip);
}

#[test]
fn corrupt_databases_are_errors_naming_the_file() {
    let t = MemoryTarget::new().file(
        "/var/lib/dpkg/status",
        0o644,
        0,
        0,
        "Package: munge\nStatus: install ok installed\nVersion: 1\n\n\u{1}\u{2}garbage\n",
    );
    let e = eval_on(&t, "munge", vec![("installed", b(true))]);
    assert_eq!(
        result(&e, "installed"),
        (
            Error,
            "installed: package munge could not be looked up: /var/lib/dpkg/status:5: expected \
             `Field: value`, got \"\\u{1}\\u{2}garbage\""
                .into()
        )
    );
    let t = MemoryTarget::new().file(
        "/var/lib/rpm/rpmdb.sqlite",
        0o644,
        0,
        0,
        "not sqlite at all",
    );
    let e = eval_on(&t, "bash", vec![("installed", b(true))]);
    assert_eq!(
        result(&e, "installed").1,
        "installed: package bash could not be looked up: /var/lib/rpm/rpmdb.sqlite: not an SQLite database"
    );
    let t = MemoryTarget::new().file("/var/lib/rpm/Packages.db", 0o644, 0, 0, "ndb");
    let e = eval_on(&t, "bash", vec![("installed", b(true))]);
    assert!(
        result(&e, "installed")
            .1
            .contains("ndb format (SUSE) is not supported")
    );
}

#[test]
fn rpm_sqlite_with_wal_and_rpm_order() {
    use super::rpm::tests::{blob, rpmdb};
    let (db, wal) = rpmdb(
        &[
            blob("bash", None, "5.1.8", "9.el9"),
            blob("kernel-core", None, "5.14.0", "70.el9"),
        ],
        &[
            blob("munge", Some(1), "0.5.13", "13.el9"),
            blob("kernel-core", None, "5.14.0", "427.el9"),
        ],
    );
    let t = MemoryTarget::new()
        .file("/var/lib/rpm/rpmdb.sqlite", 0o644, 0, 0, db)
        .file("/var/lib/rpm/rpmdb.sqlite-wal", 0o644, 0, 0, wal);
    let e = eval_on(&t, "munge", vec![("version", ge("0.5.13-2"))]);
    assert_eq!(
        result(&e, "version"),
        (
            Pass,
            "version: expected >= 0.5.13-2, got 1:0.5.13-13.el9 (x86_64)".into()
        )
    );
    // rpm's order: "5.14.0" without a release matches any release; every
    // installed instance must match.
    let e = eval_on(&t, "kernel-core", vec![("version", ge("5.14.0"))]);
    assert_eq!(result(&e, "version").0, Pass);
    let e = eval_on(&t, "kernel-core", vec![("version", ge("5.14.0-100"))]);
    assert_eq!(
        result(&e, "version"),
        (
            Fail,
            "version: expected >= 5.14.0-100, got 5.14.0-70.el9 (x86_64), 5.14.0-427.el9 (x86_64)"
                .into()
        )
    );
}

#[test]
fn rpm_berkeley_db() {
    let t = MemoryTarget::new().file(
        "/var/lib/rpm/Packages",
        0o644,
        0,
        0,
        include_bytes!("testdata/Packages").as_slice(),
    );
    let e = eval_on(&t, "munge", vec![("version", eq("0.5.13-2.el8"))]);
    assert_eq!(
        results(&e),
        [(
            "version".into(),
            Pass,
            "version: expected 0.5.13-2.el8, got 0.5.13-2.el8 (x86_64)".into()
        )]
    );
}

#[test]
fn installed_false_conflicts_with_version() {
    let c = check(
        &Package,
        "telnet",
        vec![("installed", b(false)), ("version", eq("1"))],
    );
    assert_eq!(
        messages(&Package.validate(&c)),
        ["conflicting-keys: `version` cannot be checked together with `installed = false`"]
    );
}
