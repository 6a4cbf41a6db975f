use std::io::Write;

use nodecheck_core::matcher::Pred;
use nodecheck_core::outcome::Status;
use nodecheck_core::run::eval_check;
use nodecheck_core::target::{ImageTarget, MemoryTarget};

use super::Image;
use crate::testing::*;

/// A newc cpio of `(name, mode, data)` entries, gzip-compressed.
fn cpio_gz(entries: &[(&str, u32, &[u8])]) -> tempfile::NamedTempFile {
    let mut out = Vec::new();
    let trailer: (&str, u32, &[u8]) = ("TRAILER!!!", 0, b"");
    for (i, (name, mode, data)) in entries.iter().chain([&trailer]).enumerate() {
        let h = format!(
            "070701{:08X}{mode:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
            i + 1,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            1,
            0,
            0,
            name.len() + 1,
            0
        );
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&out).unwrap();
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&gz.finish().unwrap()).unwrap();
    f
}

fn le(v: &str) -> nodecheck_core::profile::Value {
    preds(vec![Pred::Le(v.into())])
}

#[test]
fn sizes_format_and_init_of_an_initramfs() {
    let big = vec![7u8; 3000];
    let f = cpio_gz(&[
        ("init", 0o100755, b"#!/bin/sh\n"),
        ("usr/lib/big.so", 0o100644, &big),
        ("etc/motd", 0o100644, b"hi"),
    ]);
    let t = ImageTarget::open(f.path()).unwrap();
    let c = check(
        &Image,
        "image",
        vec![
            ("format", eq("cpio")),
            ("compression", eq("gzip")),
            ("uncompressed_size", le("1MiB")),
            ("compressed_size", le("1KiB")),
            ("entries", eq_int(6)),
            ("max_file_size", le("2KiB")),
            ("init", b(true)),
        ],
    );
    let e = run(&c, &t);
    assert_eq!(result(&e, "format").0, Status::Pass);
    assert_eq!(result(&e, "compression").0, Status::Pass);
    assert_eq!(result(&e, "uncompressed_size").0, Status::Pass);
    // The file is ~200 bytes: passes; entries: / init usr usr/lib big.so etc motd = 7.
    assert_eq!(result(&e, "compressed_size").0, Status::Pass);
    let (st, msg) = result(&e, "entries");
    assert_eq!(
        (st, msg.as_str()),
        (Status::Fail, "entries: expected 6, got 7")
    );
    let (st, msg) = result(&e, "max_file_size");
    assert_eq!(st, Status::Fail);
    assert!(msg.contains("/usr/lib/big.so"), "{msg}");
    assert!(e.output.contains("/usr/lib/big.so"), "{}", e.output);
    assert_eq!(result(&e, "init").0, Status::Pass);
}

#[test]
fn init_must_exist_and_be_executable() {
    let f = cpio_gz(&[("init", 0o100644, b"#!/bin/sh\n")]);
    let t = ImageTarget::open(f.path()).unwrap();
    let c = check(&Image, "image", vec![("init", b(true))]);
    let (st, msg) = result(&run(&c, &t), "init");
    assert_eq!(st, Status::Fail);
    assert!(msg.contains("/init is not executable (mode 0644)"), "{msg}");

    let f = cpio_gz(&[("sbin/init", 0o100755, b"ELF")]);
    let t = ImageTarget::open(f.path()).unwrap();
    let (st, msg) = result(&run(&c, &t), "init");
    assert_eq!(st, Status::Fail);
    assert!(msg.contains("/init does not exist"), "{msg}");
}

#[test]
fn skipped_with_the_reason_on_other_targets() {
    let c = check(&Image, "image", vec![("format", eq("cpio"))]);
    let r = eval_check(&c, &MemoryTarget::new());
    assert_eq!(r.properties.len(), 1);
    assert_eq!(r.properties[0].status, Status::Skip);
    assert_eq!(
        r.properties[0].message,
        "needs a packed image target (cpio, tar)"
    );
}

#[test]
fn budgets_take_bounds() {
    use nodecheck_core::kind::Kind;
    let c = check(
        &Image,
        "image",
        vec![("max_file_size", eq("2GiB")), ("init", b(false))],
    );
    let d = messages(&Image.validate(&c));
    assert_eq!(d.len(), 2, "{d:?}");
}

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn oci_config_keys_on_a_docker_archive_and_skipped_on_cpio() {
    use nodecheck_core::profile::{NamedMatcher, Value};
    let layer = tar_of(&[("sbin/init", b"ELF")]);
    let config = r#"{"config":{"Env":["PATH=/usr/bin:/opt/slurm/bin"],"Entrypoint":["/sbin/init","--log"],"User":"slurm","WorkingDir":"/","Labels":{"site":"hpc"},"ExposedPorts":{"6818/tcp":{}}}}"#;
    let manifest = r#"[{"Config":"c.json","RepoTags":["node:1"],"Layers":["l.tar"]}]"#;
    let a = tar_of(&[
        ("manifest.json", manifest.as_bytes()),
        ("c.json", config.as_bytes()),
        ("l.tar", &layer),
    ]);
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&a).unwrap();
    let t = ImageTarget::open_oci(
        f.path(),
        nodecheck_core::target::ImageFormat::DockerArchive,
        None,
    )
    .unwrap();
    let named = |name: &str, m: Value| {
        let Value::Matcher(matcher) = m else {
            unreachable!()
        };
        NamedMatcher {
            name: name.into(),
            matcher,
            location: check(&Image, "image", vec![]).location,
        }
    };
    let c = check(
        &Image,
        "image",
        vec![
            ("layers", eq_int(1)),
            ("entrypoint", eq("/sbin/init --log")),
            ("user", eq("root")),
            (
                "env",
                Value::Matchers(vec![named("PATH", re("/opt/slurm/bin"))]),
            ),
            (
                "labels",
                Value::Matchers(vec![named("site", eq("hpc")), named("owner", eq("x"))]),
            ),
            ("exposed_ports", list(&["6818/tcp"])),
            ("init", b(true)),
        ],
    );
    let e = run(&c, &t);
    assert_eq!(result(&e, "layers").0, Status::Pass);
    assert_eq!(result(&e, "entrypoint").0, Status::Pass);
    assert_eq!(
        result(&e, "user"),
        (Status::Fail, "user: expected root, got slurm".into())
    );
    assert_eq!(result(&e, "env").0, Status::Pass);
    assert_eq!(
        result(&e, "labels"),
        (Status::Fail, "labels: owner is not set".into())
    );
    assert_eq!(result(&e, "exposed_ports").0, Status::Pass);
    // The layer's /sbin/init is 0644: the kernel could not start it.
    let (st, msg) = result(&e, "init");
    assert_eq!(st, Status::Fail);
    assert!(msg.contains("/sbin/init is not executable"), "{msg}");

    let f = cpio_gz(&[("init", 0o100755, b"#!")]);
    let t = ImageTarget::open(f.path()).unwrap();
    let c = check(&Image, "image", vec![("user", eq("root"))]);
    let (st, msg) = result(&run(&c, &t), "user");
    assert_eq!(
        (st, msg.as_str()),
        (Status::Skip, "not an OCI image (cpio): it has no config")
    );
}
