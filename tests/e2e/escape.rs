//! Nothing inside an image may make nodecheck read the host: absolute
//! symlinks, `..` chains and symlinked directories all resolve inside the
//! root. Each escape attempt must read the image's file or end in a clean
//! fail/error, never in the host file's content.

use crate::util::*;

const SECRET: &str = "HOST-SECRET-5d1c";

#[test]
fn escapes_never_read_the_host() {
    let host = Tree::new();
    host.file("secret", 0o644, SECRET);
    let secret = host.path().join("secret").display().to_string();
    let secret_rel = secret.trim_start_matches('/');

    let img = Tree::new();
    img.file("rootfs/etc/shadow", 0o640, "IMAGE-SHADOW\n");
    img.file("rootfs/usr/lib/real.conf", 0o644, "IMAGE-LIB\n");
    img.link("rootfs/lib", "usr/lib");
    img.link("rootfs/etc/evil", &format!("/../../../../{secret_rel}"));
    img.link("rootfs/etc/abs", "/etc/shadow");
    img.link(
        "rootfs/etc/rel",
        &format!("../../../../../../../../{secret_rel}"),
    );
    img.link("rootfs/etc/chain1", "chain2");
    img.link("rootfs/etc/chain2", "/etc/evil");
    img.link("rootfs/updir", "../../../../../../..");
    img.link("rootfs/etc/loop1", "loop2");
    img.link("rootfs/etc/loop2", "loop1");
    let root = img.path().join("rootfs").display().to_string();

    // Every one of these must not see the host secret.
    let hostile = [
        "/etc/evil".to_string(),
        "/etc/rel".to_string(),
        "/etc/chain1".to_string(),
        format!("/updir/{secret_rel}"),
        format!("/../../../../../../{secret_rel}"),
        format!("/lib/../../../../../../{secret_rel}"),
        "/etc/loop1".to_string(),
    ];
    let mut profile = String::from("[profile]\nname = \"escape\"\n");
    for (i, p) in hostile.iter().enumerate() {
        profile += &format!(
            "[[control]]\nid = \"hostile-{i}\"\n[[control.file]]\npath = \"{p}\"\ncontent = {{ contains = \"{SECRET}\" }}\n\
             [[control.file]]\npath = \"{p}\"\nsha256 = \"{}\"\n",
            sha256_hex(SECRET)
        );
    }
    profile += "[[control]]\nid = \"abs-link-reads-image\"\n[[control.file]]\npath = \"/etc/abs\"\ncontent = { contains = \"IMAGE-SHADOW\" }\n\
                [[control]]\nid = \"usr-merged-lib\"\n[[control.file]]\npath = \"/lib/real.conf\"\ncontent = \"IMAGE-LIB\\n\"\n\
                [[control]]\nid = \"walk-stays-inside\"\n[[control.tree]]\npath = \"/\"\nworld_writable = false\n";
    img.file("p.toml", 0o644, &profile);
    let p = img.path().join("p.toml").display().to_string();
    let json = img.path().join("r.json");
    let o = nodecheck(&[
        "run",
        &p,
        "--target",
        &root,
        "--json",
        json.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert_eq!(
        code(&o),
        1,
        "hostile checks must fail:\n{out}\n{}",
        stderr(&o)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for c in report["controls"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let status = c["status"].as_str().unwrap();
        if id.starts_with("hostile-") {
            assert!(
                status == "fail" || status == "error",
                "{id} must not pass (that would mean the host file was read): {c:#}"
            );
        } else {
            assert_eq!(status, "pass", "{id}: {c:#}");
        }
    }
    assert!(!out.contains("panicked"), "{out}");
}

fn sha256_hex(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(s.as_bytes()))
}
