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
        "The archive format: `\"cpio\"` or `\"tar\"`.",
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

Packed images only (cpio, tar); on every other target the check is
skipped with the reason.
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
