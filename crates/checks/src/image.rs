//! `image`: what a packed image is (format, compression, sizes, entries)
//! and whether the kernel can start it.

use std::collections::HashSet;

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::{Actual, Matcher, Pred};
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::run::Context;
use nodecheck_core::target::{FileType, ImageFormat, ImageInfo, Need, Target, WalkOptions};

use crate::eval;

pub struct Image;

const KEYS: &[Key] = &[
    Key::new(
        "format",
        Ty::Matcher(Compare::Version),
        "The format: `\"cpio\"`, `\"tar\"`, `\"oci\"`, `\"oci-archive\"`, `\"docker-archive\"`.",
    ),
    Key::new(
        "compression",
        Ty::Matcher(Compare::Version),
        "The compressions of the file, in order, joined by `+`: `\"zstd\"`, `\"none+gzip\"` \
         (an uncompressed early cpio, then a gzip one), `\"none\"` for a plain archive.",
    ),
    Key::new(
        "compressed_size",
        Ty::Matcher(Compare::Quantity),
        "The image file's size: `{ le = \"512MiB\" }` (what a PXE server sends).",
    ),
    Key::new(
        "uncompressed_size",
        Ty::Matcher(Compare::Quantity),
        "The archive's size once decompressed: `{ le = \"2GiB\" }` (what a RAM root \
         holds while the kernel unpacks it).",
    ),
    Key::new(
        "entries",
        Ty::Matcher(Compare::Quantity),
        "The number of names in the image (files, directories, links, `/` included): \
         `{ le = \"150000\" }`. The same key as `tree`'s budget.",
    ),
    Key::new(
        "max_file_size",
        Ty::Matcher(Compare::Quantity),
        "Every regular file's size satisfies it: `{ le = \"512MiB\" }`; the failure names the \
         files over it, largest first. The same key as `tree`'s budget.",
    ),
    Key::new(
        "init",
        Ty::Bool,
        "`true`: the kernel can start the image: `/init` of an initramfs (a cpio image), \
         `/sbin/init` of any other, resolved inside the image, is a regular file with an \
         execute bit. `false` is refused.",
    ),
    Key::new(
        "layers",
        Ty::Matcher(Compare::Quantity),
        "OCI images: the number of layers, `{ le = \"20\" }`.",
    ),
    Key::new(
        "env",
        Ty::MatcherMap(Compare::Version),
        "OCI images: variables of the config's `Env`, each a matcher: \
         `env = { PATH = { contains = \"/opt/slurm/bin\" } }`; a variable not set fails.",
    ),
    Key::new(
        "entrypoint",
        Ty::Matcher(Compare::Version),
        "OCI images: the config's `Entrypoint`, its words joined by spaces: `\"/init\"`.",
    ),
    Key::new(
        "cmd",
        Ty::Matcher(Compare::Version),
        "OCI images: the config's `Cmd`, its words joined by spaces.",
    ),
    Key::new(
        "user",
        Ty::Matcher(Compare::Version),
        "OCI images: the config's `User` (`\"\"` when unset: root).",
    ),
    Key::new(
        "workdir",
        Ty::Matcher(Compare::Version),
        "OCI images: the config's `WorkingDir` (`\"\"` when unset).",
    ),
    Key::new(
        "labels",
        Ty::MatcherMap(Compare::Version),
        "OCI images: labels of the config, each a matcher: \
         `labels = { \"org.opencontainers.image.version\" = { ge = \"2\" } }`; a label not set fails.",
    ),
    Key::new(
        "exposed_ports",
        Ty::StrList,
        "OCI images: ports the config exposes, each of these at least: `[\"22/tcp\"]`.",
    ),
];

/// The keys that read the OCI config or manifest.
const OCI_KEYS: &[&str] = &[
    "layers",
    "env",
    "entrypoint",
    "cmd",
    "user",
    "workdir",
    "labels",
    "exposed_ports",
];

const DOC: &str = r#"## What it checks

What a packed image target (`--target img.cpio.zst`, `tar:rootfs.tar`;
see docs/targets.md) is as a file: its archive format and compression,
its size packed and unpacked, how many entries it holds, its largest
files, and whether the kernel finds an init to start. Every other kind
checks the image's *content* as it would an unpacked tree; this one checks
what packing made of it (a forgotten installer that doubles a RAM root, a
compression the boot loader cannot read).

The sizes are the image's own: `compressed_size` is the file's size,
`uncompressed_size` the archive's once decompressed (a concatenated
initramfs counts every part), `entries` and `max_file_size` are counted
from the archive's index (a hard-linked file counts once).

## Example

```toml
[[control]]
id    = "initramfs"
title = "The RAM root fits the compute nodes"

  [[control.image]]
  compression       = "zstd"
  uncompressed_size = { le = "2GiB" }
  max_file_size     = { le = "256MiB" }
  init              = true
```

## Targets

Packed images only (cpio, tar, OCI layouts and archives); on every other
target the check is skipped with the reason. The OCI keys (`layers`,
`env`, `entrypoint`, `cmd`, `user`, `workdir`, `labels`, `exposed_ports`,
what container-structure-test's `metadataTest` checks) are skipped on a
cpio or tar image, which has no config.
"#;

impl Kind for Image {
    fn name(&self) -> &'static str {
        "image"
    }

    fn subject(&self) -> Key {
        Key::new(
            "image",
            Ty::Str,
            "Optional label for reports (default `image`): the check is about the whole target.",
        )
    }

    fn default_subject(&self) -> Option<&'static str> {
        Some("image")
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn needs(&self) -> Option<Need> {
        Some(Need::Image)
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn validate(&self, check: &Check) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        if check.bool("init") == Some(false) {
            out.push(eval::diagnostic(
                check,
                "init",
                "bad-value",
                "`init = false` asserts nothing; write `init = true` or leave it out".to_string(),
            ));
        }
        for key in [
            "compressed_size",
            "uncompressed_size",
            "entries",
            "max_file_size",
        ] {
            if check.matcher(key).is_some_and(|m| !is_bound(m)) {
                out.push(eval::diagnostic(
                    check,
                    key,
                    "bad-value",
                    format!(
                        "`{key}` is a budget: write a bound such as `{key} = {{ le = \"2GiB\" }}`"
                    ),
                ));
            }
        }
        out
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let t = cx.target;
        let Some(info) = t.image() else {
            return Evaluation::error("image", "the target is not a packed image");
        };
        let mut out = Evaluation::default();
        for p in eval::asserted(check, &[]) {
            if OCI_KEYS.contains(&p.key) {
                out.push(oci(check, p.key, info));
                continue;
            }
            let r = match p.key {
                "init" => init(t, info),
                "max_file_size" => match check.matcher(p.key) {
                    Some(m) => max_file_size(t, m, &mut out.output),
                    None => continue,
                },
                key => {
                    let Some(m) = check.matcher(key) else {
                        continue;
                    };
                    let compression = compression(info);
                    match key {
                        "format" => text(key, m, info.format.as_str()),
                        "compression" => text(key, m, &compression),
                        "compressed_size" => amount(key, m, info.compressed_size),
                        "uncompressed_size" => amount(key, m, info.uncompressed_size),
                        "entries" => {
                            let ok = m.test(Actual::Int(info.entries as i64));
                            PropertyResult::compare(key, ok, m.describe(), info.entries.to_string())
                        }
                        _ => continue,
                    }
                }
            };
            out.push(r);
        }
        out
    }
}

/// One property of the OCI config or manifest.
fn oci(check: &Check, key: &str, info: &ImageInfo) -> PropertyResult {
    let (Some(config), Some(layers)) = (&info.config, info.layers) else {
        return PropertyResult::skip(
            key,
            format!(
                "not an OCI image ({}): it has no config",
                info.format.as_str()
            ),
        );
    };
    let words = |w: &Option<Vec<String>>| w.as_ref().map(|w| w.join(" ")).unwrap_or_default();
    match key {
        "layers" => match check.matcher(key) {
            Some(m) => PropertyResult::compare(
                key,
                m.test(Actual::Int(layers as i64)),
                m.describe(),
                layers.to_string(),
            ),
            None => PropertyResult::error(key, "layers: not a matcher"),
        },
        "entrypoint" | "cmd" | "user" | "workdir" => {
            let actual = match key {
                "entrypoint" => words(&config.entrypoint),
                "cmd" => words(&config.cmd),
                "user" => config.user.clone().unwrap_or_default(),
                _ => config.working_dir.clone().unwrap_or_default(),
            };
            match check.matcher(key) {
                Some(m) => text(key, m, &actual),
                None => PropertyResult::error(key, format!("{key}: not a matcher")),
            }
        }
        "env" | "labels" => {
            let have: std::collections::BTreeMap<String, String> = if key == "env" {
                config
                    .env
                    .iter()
                    .flatten()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            } else {
                config.labels.clone().unwrap_or_default()
            };
            let mut bad = Vec::new();
            for nm in check.matchers(key).unwrap_or_default() {
                match have.get(&nm.name) {
                    Some(v) if nm.matcher.test(Actual::Str(v)) => {}
                    Some(v) => bad.push(format!(
                        "{} is {v:?}, expected {}",
                        nm.name,
                        nm.matcher.describe()
                    )),
                    None => bad.push(format!("{} is not set", nm.name)),
                }
            }
            PropertyResult::verdict(
                key,
                bad.is_empty(),
                if bad.is_empty() {
                    format!("{key}: as expected")
                } else {
                    format!("{key}: {}", bad.join("; "))
                },
            )
        }
        _ => {
            let have: Vec<&String> = config
                .exposed_ports
                .iter()
                .flatten()
                .map(|(k, _)| k)
                .collect();
            let missing: Vec<&String> = check
                .list(key)
                .unwrap_or_default()
                .iter()
                .filter(|p| !have.contains(p))
                .collect();
            PropertyResult::verdict(
                key,
                missing.is_empty(),
                format!(
                    "exposed_ports: {} (the image exposes {:?})",
                    if missing.is_empty() {
                        "all exposed".to_string()
                    } else {
                        format!("{missing:?} not exposed")
                    },
                    have
                ),
            )
        }
    }
}

fn compression(info: &ImageInfo) -> String {
    if info.compression.is_empty() {
        return "none".to_string();
    }
    let parts: Vec<&str> = info.compression.iter().map(|c| c.as_str()).collect();
    parts.join("+")
}

fn text(key: &str, m: &Matcher, actual: &str) -> PropertyResult {
    PropertyResult::compare(key, m.test(Actual::Str(actual)), m.describe(), actual)
}

fn bytes(n: u64) -> Actual<'static> {
    #[expect(clippy::cast_precision_loss, reason = "bytes, compared as amounts")]
    let value = n as f64;
    Actual::Amount { value, total: None }
}

fn amount(key: &str, m: &Matcher, n: u64) -> PropertyResult {
    let a = bytes(n);
    PropertyResult::compare(key, m.test(a), m.describe(), format!("{a} ({n} bytes)"))
}

/// The largest regular files failing `m`, from the index (one count per
/// hard-link set).
fn max_file_size(t: &dyn Target, m: &Matcher, output: &mut String) -> PropertyResult {
    let key = "max_file_size";
    let mut seen = HashSet::new();
    let mut over: Vec<(u64, String)> = Vec::new();
    let mut largest: Option<(u64, String)> = None;
    let mut files = 0u64;
    let mut errors = Vec::new();
    let walked = t.walk("/", &WalkOptions::default(), &mut |e| {
        match e {
            Ok(e) if e.metadata.file_type == FileType::File => {
                if seen.insert(e.metadata.ino) {
                    files += 1;
                    let size = e.metadata.size;
                    if largest.as_ref().is_none_or(|(s, _)| size > *s) {
                        largest = Some((size, e.path.clone()));
                    }
                    if !m.test(bytes(size)) {
                        over.push((size, e.path));
                    }
                }
            }
            Ok(_) => {}
            Err(e) => errors.push(e.to_string()),
        }
        true
    });
    if let Err(e) = walked {
        return PropertyResult::error(key, format!("{key}: cannot walk the image: {e}"));
    }
    if let Some(e) = errors.first() {
        return PropertyResult::error(key, format!("{key}: {e}"));
    }
    if !over.is_empty() {
        over.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let items: Vec<String> = over
            .iter()
            .map(|(s, p)| format!("{p} ({})", bytes(*s)))
            .collect();
        eval::section(
            output,
            &format!("{key}: files not {}", m.describe()),
            &items,
        );
        return PropertyResult::compare(
            key,
            false,
            m.describe(),
            format!(
                "{} file{}: {}",
                items.len(),
                if items.len() == 1 { "" } else { "s" },
                eval::capped(&items)
            ),
        );
    }
    let biggest = largest.map_or("no file".to_string(), |(s, p)| {
        format!("the largest is {p} ({})", bytes(s))
    });
    PropertyResult::compare(
        key,
        true,
        m.describe(),
        format!("{biggest}, of {files} files"),
    )
}

/// `/init` (initramfs) or `/sbin/init`, resolved in the image, a regular
/// file with an execute bit.
fn init(t: &dyn Target, info: &ImageInfo) -> PropertyResult {
    let path = if info.format == ImageFormat::Cpio {
        "/init"
    } else {
        "/sbin/init"
    };
    match t.metadata(path, true) {
        Ok(m) if m.file_type == FileType::File && m.mode & 0o111 != 0 => {
            let at = t.canonicalize(path).unwrap_or_else(|_| path.to_string());
            PropertyResult::verdict(
                "init",
                true,
                format!("init: {path} is an executable file ({at})"),
            )
        }
        Ok(m) if m.file_type == FileType::File => PropertyResult::verdict(
            "init",
            false,
            format!("init: {path} is not executable (mode {:04o})", m.mode),
        ),
        Ok(m) => PropertyResult::verdict(
            "init",
            false,
            format!("init: {path} is a {}, not a regular file", m.file_type),
        ),
        Err(e) if eval::is_absent(&e) => PropertyResult::verdict(
            "init",
            false,
            format!("init: {path} does not exist in the image: the kernel cannot start it"),
        ),
        Err(e) => PropertyResult::error("init", format!("init: {path}: {}", eval::io_text(&e))),
    }
}

/// Budgets take bounds only (as `tree`'s).
fn is_bound(m: &Matcher) -> bool {
    m.preds
        .iter()
        .all(|p| matches!(p, Pred::Le(_) | Pred::Lt(_) | Pred::Ge(_) | Pred::Gt(_)))
}

#[cfg(test)]
mod tests;
