use super::{Algo, digest};
use crate::package::Package;
use crate::package::rpm::tests::rpmdb;
use crate::testing::*;
use nodecheck_core::kind::Kind;
use nodecheck_core::outcome::Evaluation;
use nodecheck_core::outcome::Status::{Error, Fail, Pass};
use nodecheck_core::profile::Value;
use nodecheck_core::target::MemoryTarget;
use nodecheck_core::text::hex;
use sha2::Digest;

fn md5_of(b: &str) -> String {
    hex(&md5::Md5::digest(b.as_bytes()))
}

fn sha256_of(b: &str) -> String {
    hex(&sha2::Sha256::digest(b.as_bytes()))
}

const PASSWD: &str = "root:x:0:0::/root:/bin/sh\nmunge:x:101:102::/:/bin/false\nnobody:x:65534:65534::/:/bin/false\n";
const GROUP: &str = "root:x:0:\nmunge:x:102:\nnogroup:x:65534:\n";

/// A Debian image: munge (with a conffile), libc6:amd64 (Multi-Arch:
/// same, so its info files carry the arch), dash (diverts /bin/sh? no:
/// /usr/bin/less is diverted by the admin).
fn debian() -> MemoryTarget {
    debian_without(&[])
}

/// [`debian`] without the files `skip` (a MemoryTarget cannot delete).
fn debian_without(skip: &[&str]) -> MemoryTarget {
    let status = format!(
        "Package: munge\nStatus: install ok installed\nArchitecture: amd64\nVersion: 0.5.15-2\n\
         Conffiles:\n /etc/munge/munge.conf {}\n /etc/munge/old.conf 0123456789abcdef0123456789abcdef obsolete\n\n\
         Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nVersion: 2.36-9\n\n\
         Package: less\nStatus: install ok installed\nArchitecture: amd64\nVersion: 590-2\n\n\
         Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1\n\
         Conffiles:\n /etc/gone.conf {}\n\n\
         Package: never\nStatus: purge ok not-installed\nArchitecture: amd64\n",
        md5_of("conf\n"),
        md5_of("gone\n")
    );
    let files: Vec<(&str, u32, String)> = vec![
        ("/etc/passwd", 0o644, PASSWD.into()),
        ("/etc/group", 0o644, GROUP.into()),
        ("/var/lib/dpkg/status", 0o644, status),
        (
            "/var/lib/dpkg/info/munge.list",
            0o644,
            "/.\n/usr\n/usr/sbin\n/usr/sbin/munged\n/usr/share/doc/munge/README\n/etc/munge/munge.conf\n"
                .into(),
        ),
        (
            "/var/lib/dpkg/info/munge.md5sums",
            0o644,
            format!(
                "{}  usr/sbin/munged\n{}  usr/share/doc/munge/README\n",
                md5_of("munged\n"),
                md5_of("readme\n")
            ),
        ),
        ("/var/lib/dpkg/info/libc6:amd64.list", 0o644, "/usr/lib/libc.so.6\n".into()),
        (
            "/var/lib/dpkg/info/libc6:amd64.md5sums",
            0o644,
            format!("{}  usr/lib/libc.so.6\n", md5_of("libc\n")),
        ),
        ("/var/lib/dpkg/info/less.list", 0o644, "/usr/bin/less\n".into()),
        (
            "/var/lib/dpkg/info/less.md5sums",
            0o644,
            format!("{}  usr/bin/less\n", md5_of("less\n")),
        ),
        ("/var/lib/dpkg/info/gone.list", 0o644, "/etc/gone.conf\n".into()),
        // The admin diverted /usr/bin/less to less.real.
        ("/var/lib/dpkg/diversions", 0o644, "/usr/bin/less\n/usr/bin/less.real\n:\n".into()),
        ("/usr/sbin/munged", 0o755, "munged\n".into()),
        ("/usr/share/doc/munge/README", 0o644, "readme\n".into()),
        ("/etc/munge/munge.conf", 0o644, "conf\n".into()),
        ("/usr/lib/libc.so.6", 0o755, "libc\n".into()),
        ("/usr/bin/less.real", 0o755, "whatever\n".into()),
        ("/etc/gone.conf", 0o644, "gone\n".into()),
    ];
    let mut t = MemoryTarget::new().dir("/usr", 0o755, 0, 0);
    for (path, mode, body) in files {
        if !skip.contains(&path) {
            t = t.file(path, mode, 0, 0, body);
        }
    }
    t
}

fn verify_on(t: &MemoryTarget, name: &str, more: Vec<(&str, Value)>) -> Evaluation {
    let mut props = vec![("verify", b(true))];
    props.extend(more);
    run(&check(&Package, name, props), t)
}

#[test]
fn a_clean_dpkg_image_passes() {
    let e = verify_on(&debian(), "*", vec![]);
    assert_eq!(
        result(&e, "verify"),
        (
            Pass,
            "verify: 9 paths of 4 packages match the package database".into()
        ),
        "{}",
        e.output
    );
    // A named package: installed, then its files.
    let e = verify_on(&debian(), "libc6", vec![("installed", b(true))]);
    assert_eq!(result(&e, "installed").0, Pass);
    assert_eq!(
        result(&e, "verify").1,
        "verify: 1 path of 1 package match the package database"
    );
}

#[test]
fn dpkg_differences_are_named_and_conffiles_only_noted() {
    let t = debian_without(&["/usr/share/doc/munge/README", "/usr/lib/libc.so.6"])
        .file("/usr/sbin/munged", 0o755, 0, 0, "trojan\n")
        .file("/etc/munge/munge.conf", 0o644, 0, 0, "edited\n")
        .symlink("/usr/lib/libc.so.6", "/usr/lib/other")
        .file("/usr/lib/other", 0o644, 0, 0, "libc\n");
    let e = verify_on(&t, "*", vec![]);
    let (status, msg) = result(&e, "verify");
    assert_eq!(status, Fail, "{msg}");
    assert_eq!(
        msg,
        "verify: 3 of 9 paths (4 packages) differ from the package database: \
         libc6:amd64: /usr/lib/libc.so.6: type regular file → symlink, \
         munge: /usr/sbin/munged: digest, munge: /usr/share/doc/munge/README: missing; \
         1 changed conffile (reported, not failed): munge: /etc/munge/munge.conf (conffile): digest"
    );
    assert!(
        e.output
            .contains("changed conffiles (reported, not failed):\n  munge: /etc/munge/munge.conf (conffile): digest\n"),
        "{}",
        e.output
    );
    // conffiles = "fail" makes the edited conffile a failure; exclude
    // leaves paths out.
    let e = verify_on(
        &t,
        "munge",
        vec![("conffiles", s("fail")), ("exclude", list(&["/usr/s*"]))],
    );
    assert_eq!(
        result(&e, "verify"),
        (
            Fail,
            "verify: 1 of 3 paths (1 package) differ from the package database: \
             munge: /etc/munge/munge.conf (conffile): digest"
                .into()
        )
    );
    // Only a conffile changed: a pass with the note.
    let t = debian().file("/etc/munge/munge.conf", 0o644, 0, 0, "edited\n");
    let e = verify_on(&t, "munge", vec![]);
    assert_eq!(
        result(&e, "verify"),
        (
            Pass,
            "verify: 6 paths of 1 package match the package database; 1 changed conffile \
             (reported, not failed): munge: /etc/munge/munge.conf (conffile): digest"
                .into()
        )
    );
}

#[test]
fn diverted_files_are_looked_for_where_they_went() {
    // The admin diverted /usr/bin/less to less.real: the original path
    // may hold anything (or nothing); less.real has no digest in less's
    // md5sums, so only its existence counts, as with dpkg.
    let t = debian();
    let e = verify_on(&t, "less", vec![]);
    assert_eq!(result(&e, "verify").0, Pass, "{e:?}");
    let t = debian_without(&["/usr/bin/less.real"]);
    let e = verify_on(&t, "less", vec![]);
    assert_eq!(
        result(&e, "verify").1,
        "verify: 1 of 1 paths (1 package) differ from the package database: \
         less: /usr/bin/less.real: missing"
    );
    let t = debian().file(
        "/var/lib/dpkg/diversions",
        0o644,
        0,
        0,
        "/usr/bin/less\n/x\n",
    );
    let e = verify_on(&t, "less", vec![]);
    assert_eq!(
        result(&e, "verify"),
        (
            Error,
            "verify: could not verify all of 0 packages: /var/lib/dpkg/diversions: damaged: \
             2 lines, but entries have three lines each"
                .into()
        )
    );
}

#[test]
fn damaged_dpkg_info_files_are_errors_naming_the_file() {
    let t = debian().file(
        "/var/lib/dpkg/info/munge.md5sums",
        0o644,
        0,
        0,
        "d41d8cd98f00b204e9800998ecf8427e  usr/sbin/munged\nnot a digest line\n",
    );
    let e = verify_on(&t, "*", vec![]);
    let (status, msg) = result(&e, "verify");
    assert_eq!(status, Error);
    assert!(
        msg.contains(
            "/var/lib/dpkg/info/munge.md5sums:2: damaged: expected `<md5>  <path>`, got \"not a digest line\""
        ),
        "{msg}"
    );
    assert!(
        e.output.contains("could not be verified:\n"),
        "{}",
        e.output
    );
    let t = debian().file(
        "/var/lib/dpkg/info/munge.md5sums",
        0o644,
        0,
        0,
        "d41d8cd98f00b204e9800998ecf8427e  usr/sbin/mun",
    );
    let msg = result(&verify_on(&t, "munge", vec![]), "verify").1;
    assert!(
        msg.ends_with("/var/lib/dpkg/info/munge.md5sums: damaged: the last line has no newline"),
        "{msg}"
    );
    let t = debian().file("/var/lib/dpkg/info/munge.list", 0o644, 0, 0, "usr/bin\n");
    let msg = result(&verify_on(&t, "munge", vec![]), "verify").1;
    assert!(
        msg.contains(
            "/var/lib/dpkg/info/munge.list:1: damaged: \"usr/bin\" is not an absolute path"
        ),
        "{msg}"
    );
    let t = debian_without(&["/var/lib/dpkg/info/libc6:amd64.list"]);
    let msg = result(&verify_on(&t, "*", vec![]), "verify").1;
    assert!(
        msg.contains(
            "package libc6:amd64: its file list /var/lib/dpkg/info/libc6:amd64.list is missing"
        ),
        "{msg}"
    );
}

#[test]
fn keys_are_validated() {
    let diags = |name: &str, props: Vec<(&str, Value)>| {
        messages(&Package.validate(&check(&Package, name, props)))
    };
    assert_eq!(
        diags("*", vec![("installed", b(true))]),
        [
            "bad-value: `name = \"*\"` stands for every installed package and needs `verify = true`",
            "conflicting-keys: `installed` cannot be checked for `name = \"*\"`"
        ]
    );
    assert_eq!(
        diags("munge", vec![("verify", b(false))]),
        ["bad-value: `verify = false` asserts nothing; write `verify = true` or leave it out"]
    );
    assert_eq!(
        diags(
            "munge",
            vec![("installed", b(true)), ("conffiles", s("fail"))]
        ),
        ["conflicting-keys: `conffiles` only shapes `verify = true`, which this check lacks"]
    );
    assert_eq!(
        diags("munge", vec![("installed", b(false)), ("verify", b(true))]),
        ["conflicting-keys: `verify` cannot be checked together with `installed = false`"]
    );
    assert_eq!(
        diags(
            "*",
            vec![("verify", b(true)), ("exclude", list(&["/a/[b"]))]
        )
        .len(),
        1
    );
    assert!(diags("*", vec![("verify", b(true))]).is_empty());
}

// ---- rpm -------------------------------------------------------------

/// A header blob with file tags, as rpm writes them into rpmdb.
pub struct Hdr {
    index: Vec<(u32, u32, u32, u32)>,
    data: Vec<u8>,
}

impl Hdr {
    pub fn new(name: &str) -> Hdr {
        let mut h = Hdr {
            index: Vec::new(),
            data: Vec::new(),
        };
        h.string(1000, name)
            .string(1001, "1.0")
            .string(1002, "1.el9")
            .string(1022, "x86_64");
        h
    }

    fn align(&mut self, n: usize) {
        while !self.data.len().is_multiple_of(n) {
            self.data.push(0);
        }
    }

    pub fn string(&mut self, tag: u32, s: &str) -> &mut Hdr {
        self.index.push((tag, 6, self.data.len() as u32, 1));
        self.data.extend(s.as_bytes());
        self.data.push(0);
        self
    }

    pub fn strings(&mut self, tag: u32, v: &[&str]) -> &mut Hdr {
        self.index
            .push((tag, 8, self.data.len() as u32, v.len() as u32));
        for s in v {
            self.data.extend(s.as_bytes());
            self.data.push(0);
        }
        self
    }

    pub fn int32(&mut self, tag: u32, v: &[u32]) -> &mut Hdr {
        self.align(4);
        self.index
            .push((tag, 4, self.data.len() as u32, v.len() as u32));
        for x in v {
            self.data.extend(x.to_be_bytes());
        }
        self
    }

    pub fn int16(&mut self, tag: u32, v: &[u16]) -> &mut Hdr {
        self.align(2);
        self.index
            .push((tag, 3, self.data.len() as u32, v.len() as u32));
        for x in v {
            self.data.extend(x.to_be_bytes());
        }
        self
    }

    pub fn chars(&mut self, tag: u32, v: &[u8]) -> &mut Hdr {
        self.index
            .push((tag, 1, self.data.len() as u32, v.len() as u32));
        self.data.extend(v);
        self
    }

    pub fn blob(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend((self.index.len() as u32).to_be_bytes());
        out.extend((self.data.len() as u32).to_be_bytes());
        for (tag, ty, off, count) in &self.index {
            for v in [tag, ty, off, count] {
                out.extend(v.to_be_bytes());
            }
        }
        out.extend(&self.data);
        out
    }
}

/// munge: a binary (sha256), a %config file, a %ghost file, a symlink, a
/// directory, a missingok file and a --nodocs README (not installed).
fn munge_header() -> Hdr {
    let mut h = Hdr::new("munge");
    h.strings(
        1118,
        &[
            "/usr/sbin/",
            "/etc/munge/",
            "/var/run/",
            "/usr/share/doc/munge/",
            "/usr/lib/",
        ],
    )
    .strings(
        1117,
        &[
            "munged",
            "munge.conf",
            "munge.pid",
            "README",
            "libmunge.so",
            "munge",
            "opt.conf",
        ],
    )
    .int32(1116, &[0, 1, 2, 3, 4, 1, 1])
    .int16(
        1030,
        &[
            0o100755, 0o100644, 0o100644, 0o100644, 0o120777, 0o040700, 0o100644,
        ],
    )
    .int32(1028, &[7, 5, 0, 7, 0, 0, 4])
    .strings(
        1035,
        &[
            &sha256_of("munged\n"),
            &sha256_of("conf\n"),
            "",
            &sha256_of("readme\n"),
            "",
            "",
            &sha256_of("opt\n"),
        ],
    )
    .strings(1036, &["", "", "", "", "libmunge.so.2", "", ""])
    .int32(1037, &[0, 1 | 16, 64, 2, 0, 0, 8])
    .strings(
        1039,
        &["root", "root", "munge", "root", "root", "munge", "root"],
    )
    .strings(
        1040,
        &["root", "root", "munge", "root", "root", "munge", "root"],
    )
    .int32(5011, &[8])
    .chars(1029, &[0, 0, 0, 2, 0, 0, 0]);
    h
}

fn rhel(headers: &[Vec<u8>]) -> MemoryTarget {
    let (db, wal) = rpmdb(headers, &[]);
    let t = MemoryTarget::new()
        .file("/etc/passwd", 0o644, 0, 0, PASSWD)
        .file("/etc/group", 0o644, 0, 0, GROUP)
        .file("/var/lib/rpm/rpmdb.sqlite", 0o644, 0, 0, db);
    if wal.is_empty() {
        t
    } else {
        t.file("/var/lib/rpm/rpmdb.sqlite-wal", 0o644, 0, 0, wal)
    }
}

fn munge_tree(t: MemoryTarget) -> MemoryTarget {
    t.file("/usr/sbin/munged", 0o755, 0, 0, "munged\n")
        .file("/etc/munge/munge.conf", 0o644, 0, 0, "conf\n")
        .symlink("/usr/lib/libmunge.so", "libmunge.so.2")
        .dir("/etc/munge/munge", 0o700, 101, 102)
}

#[test]
fn a_clean_rpm_image_passes_like_rpm_v() {
    // The ghost pid file, the missingok opt.conf and the README a
    // --nodocs install left out are absent, as rpm -V accepts.
    let t = munge_tree(rhel(&[munge_header().blob()]));
    let e = verify_on(&t, "*", vec![]);
    assert_eq!(
        result(&e, "verify"),
        (
            Pass,
            "verify: 7 paths of 1 package match the package database".into()
        ),
        "{}",
        e.output
    );
}

#[test]
fn rpm_differences_name_mode_owner_link_size_and_digest() {
    let t = rhel(&[munge_header().blob()])
        .file("/usr/sbin/munged", 0o777, 65534, 0, "munged, but longer\n")
        .file("/etc/munge/munge.conf", 0o644, 0, 0, "conf\n")
        .symlink("/usr/lib/libmunge.so", "/tmp/evil.so")
        .dir("/etc/munge/munge", 0o755, 101, 65534);
    let e = verify_on(&t, "munge", vec![]);
    assert_eq!(
        result(&e, "verify"),
        (
            Fail,
            "verify: 3 of 7 paths (1 package) differ from the package database: \
             munge: /etc/munge/munge: mode 0700 → 0755, group munge → nogroup, \
             munge: /usr/lib/libmunge.so: link target libmunge.so.2 → /tmp/evil.so, \
             munge: /usr/sbin/munged: mode 0755 → 0777, digest, size 7 → 19, owner root → nobody"
                .into()
        )
    );
    // A regular file where a directory belongs; a %config file missing
    // (noted, not failed).
    let t = rhel(&[munge_header().blob()])
        .file("/usr/sbin/munged", 0o755, 0, 0, "munged\n")
        .symlink("/usr/lib/libmunge.so", "libmunge.so.2")
        .file("/etc/munge/munge", 0o700, 101, 102, "");
    let e = verify_on(&t, "munge", vec![]);
    assert_eq!(
        result(&e, "verify"),
        (
            Fail,
            "verify: 1 of 7 paths (1 package) differ from the package database: \
             munge: /etc/munge/munge: type directory → regular file, digest; \
             1 changed conffile (reported, not failed): munge: /etc/munge/munge.conf (conffile): missing"
                .into()
        )
    );
}

#[test]
fn damaged_rpm_headers_are_errors_naming_the_database() {
    let mut bad = munge_header();
    bad.int32(1116, &[0, 1, 9, 3, 4, 1, 1]);
    let t = munge_tree(rhel(&[bad.blob()]));
    let (status, msg) = result(&verify_on(&t, "*", vec![]), "verify");
    assert_eq!(status, Error);
    assert!(
        msg.contains(
            "/var/lib/rpm/rpmdb.sqlite: package #1: DIRINDEXES entry 9 is past the 5 DIRNAMES"
        ),
        "{msg}"
    );
    let mut bad = munge_header();
    bad.int32(5011, &[3]);
    let t = munge_tree(rhel(&[bad.blob()]));
    let msg = result(&verify_on(&t, "*", vec![]), "verify").1;
    assert!(
        msg.contains("file digest algorithm 3 is not supported"),
        "{msg}"
    );
    let mut bad = munge_header();
    bad.strings(1039, &["root"]);
    let t = munge_tree(rhel(&[bad.blob()]));
    let msg = result(&verify_on(&t, "*", vec![]), "verify").1;
    assert!(
        msg.contains("FILEUSERNAME (tag 1039) has 1 entries for 7 files"),
        "{msg}"
    );
}

#[test]
fn every_digest_algorithm_rpm_uses() {
    for (n, want) in [
        (1, md5_of("x")),
        (2, hex(&sha1::Sha1::digest(b"x"))),
        (8, sha256_of("x")),
        (9, hex(&sha2::Sha384::digest(b"x"))),
        (10, hex(&sha2::Sha512::digest(b"x"))),
        (11, hex(&sha2::Sha224::digest(b"x"))),
    ] {
        let t = MemoryTarget::new().file("/x", 0o644, 0, 0, "x");
        let algo = Algo::from_rpm(n).unwrap();
        let mut buf = vec![0; 3];
        assert_eq!(
            digest(&t, "/x", algo, &mut buf).unwrap(),
            (want, 1),
            "{algo:?}"
        );
    }
    assert_eq!(Algo::from_rpm(3), None);
}

#[test]
fn an_unreadable_file_is_an_error_naming_it_not_a_pass() {
    let t = debian().deny("/usr/sbin/munged");
    let e = verify_on(&t, "munge", vec![]);
    let (status, msg) = result(&e, "verify");
    assert_eq!(status, Error);
    assert!(
        msg.starts_with(
            "verify: could not verify all of 1 package: /usr/sbin/munged: cannot read it: "
        ),
        "{msg}"
    );
    assert!(msg.contains("nodecheck may need to run as root"), "{msg}");
}

#[test]
fn berkeley_db_packages_are_verified_too() {
    // The fixture's headers (testdata/README.md) carry no file tags: both
    // packages are verified, with nothing to look at.
    let t = MemoryTarget::new().file(
        "/var/lib/rpm/Packages",
        0o644,
        0,
        0,
        include_bytes!("../testdata/Packages").as_slice(),
    );
    let e = verify_on(&t, "*", vec![]);
    assert_eq!(
        result(&e, "verify"),
        (
            Pass,
            "verify: 0 paths of 2 packages match the package database".into()
        )
    );
    let e = verify_on(&t, "munge", vec![]);
    assert_eq!(
        result(&e, "verify").1,
        "verify: 0 paths of 1 package match the package database"
    );
}

#[test]
fn replaced_and_net_shared_files_follow_rpms_states() {
    // munged "replaced" by another package's copy: only its existence
    // counts; the README "net shared": not looked at at all.
    let mut h = munge_header();
    h.chars(1029, &[1, 0, 0, 3, 0, 0, 0]);
    let t = rhel(&[h.blob()])
        .file("/usr/sbin/munged", 0o600, 65534, 0, "other content\n")
        .file("/etc/munge/munge.conf", 0o644, 0, 0, "conf\n")
        .symlink("/usr/lib/libmunge.so", "libmunge.so.2")
        .dir("/etc/munge/munge", 0o700, 101, 102);
    let e = verify_on(&t, "munge", vec![]);
    assert_eq!(result(&e, "verify").0, Pass, "{e:?}");
    let t = remove_munged(h);
    let e = verify_on(&t, "munge", vec![]);
    assert_eq!(
        result(&e, "verify").1,
        "verify: 1 of 7 paths (1 package) differ from the package database: \
         munge: /usr/sbin/munged: missing"
    );
}

fn remove_munged(h: Hdr) -> MemoryTarget {
    rhel(&[h.blob()])
        .file("/etc/munge/munge.conf", 0o644, 0, 0, "conf\n")
        .symlink("/usr/lib/libmunge.so", "libmunge.so.2")
        .dir("/etc/munge/munge", 0o700, 101, 102)
}

#[test]
fn a_fifo_or_device_in_place_of_a_packaged_file_is_a_type_difference_never_a_read() {
    use nodecheck_core::target::FileType;
    let t = debian_without(&[
        "/usr/sbin/munged",
        "/usr/lib/libc.so.6",
        "/usr/share/doc/munge/README",
    ])
    .special("/usr/sbin/munged", FileType::Fifo, 0o644, 0, 0)
    .special("/usr/lib/libc.so.6", FileType::Char, 0o644, 0, 0)
    .special("/dev/zero", FileType::Char, 0o666, 0, 0)
    .symlink("/usr/share/doc/munge/README", "/dev/zero");
    let e = verify_on(&t, "*", vec![]);
    assert_eq!(
        result(&e, "verify").1,
        "verify: 3 of 9 paths (4 packages) differ from the package database: \
         libc6:amd64: /usr/lib/libc.so.6: type regular file → character device, \
         munge: /usr/sbin/munged: type regular file → fifo, \
         munge: /usr/share/doc/munge/README: type regular file → symlink"
    );
}

#[test]
fn verifying_a_package_that_is_not_installed_fails_and_skips_verify() {
    let e = verify_on(&debian(), "gone", vec![]);
    assert_eq!(
        results(&e),
        [
            (
                "installed".into(),
                Fail,
                "installed: package gone is not installed (/var/lib/dpkg/status says \
                 \"deinstall ok config-files\", version 1)"
                    .into()
            ),
            (
                "verify".into(),
                nodecheck_core::outcome::Status::Skip,
                "package gone is not installed".into()
            ),
        ]
    );
}
