use super::*;
use Ordering::{Equal, Greater, Less};

#[test]
fn rpmvercmp_matches_rpms_own_tests() {
    // From rpm's tests/rpmvercmp.at.
    for (a, b, o) in [
        ("1.0", "1.0", Equal),
        ("1.0", "2.0", Less),
        ("2.0.1", "2.0", Greater),
        ("2.0.1a", "2.0.1", Greater),
        ("5.5p1", "5.5p2", Less),
        ("5.5p10", "5.5p1", Greater),
        ("10xyz", "10.1xyz", Less),
        ("xyz10", "xyz10.1", Less),
        ("xyz.4", "8", Less),
        ("1b.fc17", "1b.fc17", Equal),
        ("1b.fc17", "1.fc17", Less),
        ("1g.fc17", "1.fc17", Greater),
        ("1.0a", "1.0", Greater),
        ("1.0", "1.0~rc1", Greater),
        ("1.0~rc1", "1.0~rc2", Less),
        ("1.0~rc1~git123", "1.0~rc1", Less),
        ("1.0^", "1.0", Greater),
        ("1.0^git1", "1.0", Greater),
        ("1.0^git1", "1.01", Less),
        ("1.0^20160101", "1.0.1", Less),
        ("1.0~rc1^git1", "1.0~rc1", Greater),
        ("1.0^git1~pre", "1.0^git1", Less),
        ("2_0", "2_0", Equal),
        ("2.0", "2_0", Equal),
        ("a", "a", Equal),
        ("a+", "a_", Equal),
        ("+", "_", Equal),
        ("001", "1", Equal),
        ("1.1.α", "1.1.α", Equal),
    ] {
        assert_eq!(rpmvercmp(a, b), o, "{a} vs {b}");
        if a != b {
            assert_eq!(rpmvercmp(b, a), o.reverse(), "{b} vs {a}");
        }
    }
}

#[test]
fn evr_order() {
    assert_eq!(compare("1:1.0-1", "2.0-1"), Greater);
    assert_eq!(compare("5.14.0-427.el9", "5.14.0"), Equal);
    assert_eq!(compare("5.14.0-427.el9", "5.14.0-70.el9"), Greater);
    assert_eq!(compare("0:2.1-1", "2.1-1"), Equal);
}

/// A header blob as rpmdb stores it.
pub fn blob(name: &str, epoch: Option<u32>, version: &str, release: &str) -> Vec<u8> {
    let mut index: Vec<(u32, u32, u32, u32)> = Vec::new();
    let mut data = Vec::new();
    if let Some(e) = epoch {
        index.push((TAG_EPOCH, TYPE_INT32, data.len() as u32, 1));
        data.extend(e.to_be_bytes());
    }
    for (tag, s) in [
        (TAG_NAME, name),
        (TAG_VERSION, version),
        (TAG_RELEASE, release),
        (TAG_ARCH, "x86_64"),
    ] {
        index.push((tag, TYPE_STRING, data.len() as u32, 1));
        data.extend(s.as_bytes());
        data.push(0);
    }
    let mut out = Vec::new();
    out.extend((index.len() as u32).to_be_bytes());
    out.extend((data.len() as u32).to_be_bytes());
    for (tag, ty, off, count) in index {
        for v in [tag, ty, off, count] {
            out.extend(v.to_be_bytes());
        }
    }
    out.extend(data);
    out
}

#[test]
fn headers_parse_and_corrupt_ones_are_errors() {
    let p = header(&blob("munge", Some(1), "0.5.13", "2.el9")).unwrap();
    assert_eq!(
        (p.name.as_str(), p.version.as_str(), p.arch.as_str()),
        ("munge", "1:0.5.13-2.el9", "x86_64")
    );
    let p = header(&blob("bash", None, "5.1.8", "9.el9")).unwrap();
    assert_eq!(p.version, "5.1.8-9.el9");
    let good = blob("bash", None, "5.1.8", "9.el9");
    assert!(
        header(&good[..good.len() - 3])
            .unwrap_err()
            .contains("truncated")
    );
    assert!(header(&[0xff; 16]).unwrap_err().contains("not plausible"));
    assert!(header(&[0, 0]).is_err());
    let mut bad = good.clone();
    bad[8 + 8..8 + 12].copy_from_slice(&9999u32.to_be_bytes());
    assert!(
        header(&bad).unwrap_err().contains("outside"),
        "{:?}",
        header(&bad)
    );
}

/// An rpmdb.sqlite like rpm writes, in WAL mode; `pending` rows are left in
/// the WAL (not checkpointed) when the files are copied.
#[expect(
    clippy::disallowed_methods,
    reason = "builds a fixture database in a private temporary directory"
)]
pub fn rpmdb(committed: &[Vec<u8>], pending: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rpmdb.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    conn.execute_batch(
        "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);
         CREATE TABLE Name (key TEXT NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL);",
    )
    .unwrap();
    for b in committed {
        conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [b])
            .unwrap();
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    for b in pending {
        conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [b])
            .unwrap();
    }
    let db = std::fs::read(&path).unwrap();
    let wal = std::fs::read(dir.path().join("rpmdb.sqlite-wal")).unwrap_or_default();
    drop(conn);
    (db, wal)
}

#[test]
fn sqlite_database_with_and_without_its_wal() {
    let (db, wal) = rpmdb(
        &[
            blob("bash", None, "5.1.8", "9.el9"),
            blob("gpg-pubkey", None, "fd431d51", "4ae0493b"),
        ],
        &[blob("munge", None, "0.5.13", "13.el9")],
    );
    assert!(wal.len() > 32, "the fixture left nothing in the WAL");
    let names = |p: Vec<Pkg>| p.into_iter().map(|p| p.name).collect::<Vec<_>>();
    assert_eq!(names(sqlite("/db", db.clone(), None).unwrap()), ["bash"]);
    assert_eq!(
        names(sqlite("/db", db.clone(), Some(&wal)).unwrap()),
        ["bash", "munge"]
    );
    // A torn last frame: the transaction is not committed, as in SQLite.
    let torn = &wal[..wal.len() - 100];
    assert_eq!(
        names(sqlite("/db", db.clone(), Some(torn)).unwrap()),
        ["bash"]
    );
    // A garbage WAL is ignored.
    assert_eq!(
        names(sqlite("/db", db.clone(), Some(&[7u8; 4096])).unwrap()),
        ["bash"]
    );
}

#[test]
fn corrupt_sqlite_databases_are_errors_naming_the_file() {
    assert_eq!(
        sqlite("/var/lib/rpm/rpmdb.sqlite", b"garbage".to_vec(), None).unwrap_err(),
        "/var/lib/rpm/rpmdb.sqlite: not an SQLite database"
    );
    let (db, _) = rpmdb(&[blob("bash", None, "5.1.8", "9.el9")], &[]);
    let mut broken = db.clone();
    let n = broken.len();
    for b in &mut broken[100..n] {
        *b = 0x5a;
    }
    let e = sqlite("/var/lib/rpm/rpmdb.sqlite", broken, None).unwrap_err();
    assert!(e.starts_with("/var/lib/rpm/rpmdb.sqlite"), "{e}");
    let mut truncated = db;
    truncated.truncate(2048);
    let e = sqlite("/var/lib/rpm/rpmdb.sqlite", truncated, None).unwrap_err();
    assert!(e.starts_with("/var/lib/rpm/rpmdb.sqlite"), "{e}");
    let (db, _) = rpmdb(&[b"\0\0\0\x01\0\0\0\x02xx".to_vec()], &[]);
    let e = sqlite("/var/lib/rpm/rpmdb.sqlite", db, None).unwrap_err();
    assert!(
        e.starts_with("/var/lib/rpm/rpmdb.sqlite: package #1: "),
        "{e}"
    );
}
