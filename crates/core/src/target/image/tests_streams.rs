//! lz4 (frame and legacy) and bzip2 streams around cpio and tar, made by
//! the real tools (`cpio`, `lz4`, `bzip2`, `tar`: tests/deps.sh), and
//! their bombs and truncations.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::tests::{file_of, open_bytes};
use super::*;
use crate::target::Target;

/// `cmd` with `input` on stdin; its stdout.
fn pipe(cmd: &[&str], input: &[u8]) -> Vec<u8> {
    let mut c = Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (tests/deps.sh)", cmd[0]));
    let mut stdin = c.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let o = c.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(o.status.success(), "{cmd:?}");
    o.stdout
}

/// A newc cpio of `files` (name, content), made by GNU cpio.
fn cpio(files: &[(&str, &[u8])]) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    for (name, data) in files {
        let p = tmp.path().join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }
    let names: Vec<u8> = files
        .iter()
        .flat_map(|(n, _)| format!("{n}\n").into_bytes())
        .collect();
    let o = Command::new("cpio")
        .args(["-o", "-H", "newc", "--quiet"])
        .current_dir(tmp.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    o.stdin.as_ref().unwrap().write_all(&names).unwrap();
    let o = o.wait_with_output().unwrap();
    assert!(o.status.success());
    o.stdout
}

fn big() -> Vec<u8> {
    // More than one 8 MiB legacy block, not all zeros.
    (0..9 << 20).map(|i: u32| (i / 4099) as u8).collect()
}

#[test]
fn lz4_legacy_initramfs_after_an_early_cpio_as_the_kernel_takes_it() {
    let early = cpio(&[("kernel/x86/microcode/GenuineIntel.bin", b"ucode")]);
    let main = cpio(&[("init", b"#!/bin/sh\n"), ("usr/lib/big", &big())]);
    let mut img = early.clone();
    img.extend(pipe(&["lz4", "-l", "-q", "-c"], &main));
    let t = open_bytes(&img).unwrap();
    assert_eq!(t.info().compression, [Compression::None, Compression::Lz4]);
    assert_eq!(t.info().archives, 2);
    assert_eq!(
        t.read("/kernel/x86/microcode/GenuineIntel.bin", 9).unwrap(),
        b"ucode"
    );
    assert_eq!(t.read("/init", 100).unwrap(), b"#!/bin/sh\n");
    assert_eq!(t.read("/usr/lib/big", 16 << 20).unwrap(), big());
    // Another archive after the legacy stream (zero-padded, gzip): its
    // first word is no block size, so the lz4 stream ends there.
    let mut more = img.clone();
    more.extend([0; 3]);
    more.extend(pipe(&["gzip", "-c"], &cpio(&[("etc/extra", b"x")])));
    let t = open_bytes(&more).unwrap();
    assert_eq!(t.read("/etc/extra", 1).unwrap(), b"x");
    assert_eq!(t.read("/init", 100).unwrap(), b"#!/bin/sh\n");
}

#[test]
fn lz4_frame_and_bzip2_cpio_and_tar_are_read() {
    let main = cpio(&[("init", b"#!/bin/sh\n"), ("usr/lib/big", &big())]);
    for (cmd, kind) in [
        (&["lz4", "-q", "-c"][..], Compression::Lz4),
        (
            &["lz4", "-q", "-c", "--content-size", "-BD"][..],
            Compression::Lz4,
        ),
        (&["bzip2", "-c", "-1"][..], Compression::Bzip2),
    ] {
        let mut img = pipe(cmd, &main);
        // A second archive after it, uncompressed: zero-padded to 4 bytes,
        // as the kernel wants a cpio header there (init/initramfs.c).
        img.resize(img.len().next_multiple_of(4), 0);
        img.extend(cpio(&[("etc/after", b"after")]));
        let t = open_bytes(&img).unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert_eq!(t.info().compression[0], kind, "{cmd:?}");
        assert_eq!(t.read("/usr/lib/big", 16 << 20).unwrap(), big(), "{cmd:?}");
        assert_eq!(t.read("/etc/after", 5).unwrap(), b"after", "{cmd:?}");
    }
    // A tar through each.
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("f"), b"in a tar").unwrap();
    let tar = Command::new("tar")
        .args(["-cf", "-", "-C"])
        .arg(tmp.path())
        .arg("f")
        .output()
        .unwrap()
        .stdout;
    for cmd in [
        &["lz4", "-q", "-c"][..],
        &["lz4", "-l", "-q", "-c"],
        &["bzip2", "-c"],
    ] {
        let t = open_bytes(&pipe(cmd, &tar)).unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert_eq!(t.info().format, Format::Tar);
        assert_eq!(t.read("/f", 100).unwrap(), b"in a tar", "{cmd:?}");
    }
}

fn flatten_bytes(bytes: &[u8], cap: u64) -> io::Result<stream::Flat> {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(bytes).unwrap();
    stream::flatten(f, bytes.len() as u64, cap)
}

#[test]
fn lz4_and_bzip2_bombs_hit_the_spill_cap_and_truncations_are_errors() {
    let zeros = cpio(&[("zeros", &vec![0; 16 << 20])]);
    for cmd in [
        &["lz4", "-q", "-c"][..],
        &["lz4", "-l", "-q", "-c"],
        &["bzip2", "-c"],
    ] {
        let packed = pipe(cmd, &zeros);
        assert!(packed.len() < 1 << 20, "{cmd:?}");
        let e = flatten_bytes(&packed, 1 << 20).err().unwrap().to_string();
        assert!(
            e.contains("decompresses to more than 1048576 bytes"),
            "{cmd:?}: {e}"
        );
        // Cut anywhere: an error naming the stream, never a panic.
        for len in (1..packed.len()).step_by(packed.len() / 23 + 1) {
            let e = match open_bytes(&packed[..len]) {
                Ok(_) => panic!("{cmd:?}: a {len}-byte prefix opened"),
                Err(e) => e.to_string(),
            };
            assert!(!e.is_empty(), "{cmd:?}");
        }
    }
    // A legacy block whose size runs past the file.
    let mut b = 0x184c_2102u32.to_le_bytes().to_vec();
    b.extend(1000u32.to_le_bytes());
    b.extend([1, 2, 3]);
    let e = flatten_bytes(&b, 1 << 20).err().unwrap().to_string();
    assert!(
        e.contains("lz4 stream at offset 0") && e.contains("truncated"),
        "{e}"
    );
}

/// The shapes `--target FILE` must tell apart by content alone.
#[test]
fn sniff_tells_packed_images_by_content_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, b: &[u8]| {
        let p = dir.path().join(name);
        fs::write(&p, b).unwrap();
        p
    };
    let plain = write("x.txt", b"hello, not an image, not at all, but long enough");
    assert!(!ImageTarget::sniff(&plain));
    let lz4 = write(
        "a.bin",
        &pipe(&["lz4", "-l", "-q", "-c"], &cpio(&[("f", b"f")])),
    );
    assert!(ImageTarget::sniff(&lz4));
    let bz = write("b.bin", &pipe(&["bzip2", "-c"], &cpio(&[("f", b"f")])));
    assert!(ImageTarget::sniff(&bz));
    let sq = write("c.bin", b"hsqs and the rest of a superblock");
    assert!(ImageTarget::sniff(Path::new(&sq)));
}

/// An oci-archive's files (layout, index, manifest, config, two layers).
fn oci_files() -> Vec<(String, Vec<u8>)> {
    use sha2::Digest;
    let (l1, l2) = super::tests::two_layers();
    let config = super::tests::CONFIG;
    let digest = |b: &[u8]| {
        sha2::Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    let manifest = format!(
        r#"{{"schemaVersion":2,"config":{{"digest":"sha256:{}"}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{}"}},{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{}"}}]}}"#,
        digest(config.as_bytes()),
        digest(&l1),
        digest(&l2)
    );
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"digest":"sha256:{}"}}]}}"#,
        digest(manifest.as_bytes())
    );
    let blob = |b: &[u8]| format!("blobs/sha256/{}", digest(b));
    vec![
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".into(), index.into_bytes()),
        (blob(manifest.as_bytes()), manifest.clone().into_bytes()),
        (blob(config.as_bytes()), config.as_bytes().to_vec()),
        (blob(&l1), l1.clone()),
        (blob(&l2), l2.clone()),
    ]
}

fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    super::tests::archive(&refs)
}

#[test]
fn oci_and_docker_archives_are_known_by_content_not_name() {
    // An oci-archive named like a plain tar.
    let t = open_bytes(&tar_of(&oci_files())).unwrap();
    assert_eq!(t.info().format, Format::OciArchive);
    super::tests::assert_layers_applied(&t);
    // A docker-archive: a root `manifest.json` holding an array.
    let (l1, l2) = super::tests::two_layers();
    let manifest = r#" [{"Config":"cfg.json","Layers":["l1/layer.tar","l2/layer.tar"]}]"#;
    let files = vec![
        ("manifest.json".to_string(), manifest.as_bytes().to_vec()),
        ("cfg.json".into(), super::tests::CONFIG.as_bytes().to_vec()),
        ("l1/layer.tar".into(), l1),
        ("l2/layer.tar".into(), l2),
    ];
    let t = open_bytes(&tar_of(&files)).unwrap();
    assert_eq!(t.info().format, Format::DockerArchive);
    super::tests::assert_layers_applied(&t);
    // A rootfs tar with a `manifest.json` that is no docker manifest, or
    // an `oci-layout` without an index, stays a tar.
    for files in [
        vec![("manifest.json".to_string(), br#"{"name":"app"}"#.to_vec())],
        vec![
            ("oci-layout".to_string(), b"{}".to_vec()),
            ("etc/x".into(), b"x".to_vec()),
        ],
    ] {
        let t = open_bytes(&tar_of(&files)).unwrap();
        assert_eq!(t.info().format, Format::Tar, "{files:?}");
    }
    // Said explicitly, a tar is read as a tar.
    let f = file_of(&tar_of(&oci_files()));
    let t = ImageTarget::open_as(f.path(), Some(Format::Tar)).unwrap();
    assert_eq!(t.info().format, Format::Tar);
    assert!(t.metadata("/index.json", false).is_ok());
}

#[test]
fn an_oci_layout_directory_is_known_by_its_oci_layout_file() {
    let dir = tempfile::tempdir().unwrap();
    assert!(!ImageTarget::is_oci_layout(dir.path()));
    for (n, b) in &oci_files() {
        let p = dir.path().join(n);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b).unwrap();
    }
    assert!(ImageTarget::is_oci_layout(dir.path()));
    // A rootfs with an index.json but no oci-layout is a rootfs.
    fs::remove_file(dir.path().join("oci-layout")).unwrap();
    assert!(!ImageTarget::is_oci_layout(dir.path()));
}
