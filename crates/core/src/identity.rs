//! What a target says it is: its name, OS release, kernel and the image's
//! own release file. Reports carry it under `target` so that a fleet
//! report can tell which nodes run which image (docs/json-report.md).
//!
//! Everything is read through the [`Target`], like any check: a rootfs's
//! identity is the image's, never the host's.
//!
//! ```
//! use nodecheck_core::identity::{TargetIdentity, IMAGE_RELEASE};
//! use nodecheck_core::target::RootFs;
//!
//! # let dir = tempfile::tempdir()?;
//! # let image = dir.path().join("compute-2026.07");
//! # std::fs::create_dir_all(image.join("etc"))?;
//! # std::fs::write(image.join("etc/os-release"), "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\n")?;
//! # std::fs::write(image.join("etc/image-release"), "abc123\n")?;
//! let target = RootFs::open(&image)?;
//! let id = TargetIdentity::read(&target, IMAGE_RELEASE);
//! assert_eq!(id.name.as_deref(), Some("compute-2026.07"));
//! assert_eq!(id.os.unwrap().version_id.as_deref(), Some("12"));
//! assert_eq!(id.image_release.as_deref(), Some("abc123"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::Serialize;

use crate::target::{Target, TargetKind};

/// Where an image's own release file is looked for unless told otherwise.
pub const IMAGE_RELEASE: &str = "/etc/image-release";

/// The most read of any identity file: they are one line or a few.
const LIMIT: u64 = 64 << 10;
/// The most of the image release file kept (a commit hash, a build id).
const RELEASE_CHARS: usize = 256;

/// A target's identity; what could not be read is left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TargetIdentity {
    /// The live node's or container's hostname; a root filesystem's
    /// directory name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// os-release `PRETTY_NAME` and `VERSION_ID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<OsRelease>,
    /// The running kernel's release on a live node or container; an
    /// image's installed kernel (several joined with `,`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// The image's release file (`/etc/image-release`), trimmed, at most
    /// 256 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_release: Option<String>,
    /// A packed image: which file, in which format, and its digests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageIdentity>,
}

/// A packed image target's file (docs/json-report.md, `target.image`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImageIdentity {
    /// The image file (or OCI layout directory) as given.
    pub path: String,
    /// `cpio`, `tar`, `oci`, `oci-archive`, `docker-archive`, …
    pub format: String,
    /// The file's size in bytes (a layout directory: its blobs read).
    pub size: u64,
    /// OCI layout and oci-archive: the digest of the manifest picked,
    /// checked against its content (`sha256:…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// OCI forms and docker-archive: `sha256:` of the image config, the
    /// image ID, the same whichever form the image was saved in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
    /// The image file's sha256 (hex), only when asked for (`--sha256`):
    /// hashing a large file would dominate the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl ImageIdentity {
    /// Hashes the image file into [`ImageIdentity::sha256`]; an error
    /// names the file.
    pub fn hash_file(&mut self) -> std::io::Result<()> {
        use sha2::{Digest, Sha256};
        use std::io::Read;
        let name = &self.path;
        let wrap = |e: std::io::Error| std::io::Error::new(e.kind(), format!("{name}: {e}"));
        let mut file = std::fs::File::open(&self.path).map_err(wrap)?;
        if !file.metadata().map_err(wrap)?.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "{name}: not a regular file (an OCI layout is named by its manifest digest)"
                ),
            ));
        }
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(wrap)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        self.sha256 = Some(crate::text::hex(&h.finalize()));
        Ok(())
    }

    /// `manifest sha256:…, image ID sha256:…, file sha256 …`, or `None`
    /// when no digest is known.
    pub fn describe_digests(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(d) = &self.digest {
            parts.push(format!("manifest {d}"));
        }
        if let Some(d) = &self.config_digest {
            parts.push(format!("image ID {d}"));
        }
        if let Some(h) = &self.sha256 {
            parts.push(format!("file sha256:{h}"));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// What os-release says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OsRelease {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

impl TargetIdentity {
    /// Reads the identity of `target`; `image_release` is the path of the
    /// image's release file inside the target.
    pub fn read(target: &dyn Target, image_release: &str) -> TargetIdentity {
        let live = matches!(target.kind(), TargetKind::Live | TargetKind::Container);
        let image = target.image().map(|i| ImageIdentity {
            path: i.path.display().to_string(),
            format: i.format.as_str().to_owned(),
            size: i.compressed_size,
            digest: i.digest.clone(),
            config_digest: i.config_digest.clone(),
            sha256: None,
        });
        let name = if live {
            read_line(target, "/proc/sys/kernel/hostname")
        } else if let Some(i) = target.image() {
            // The file's name: the description adds the compression and
            // size after it.
            i.path.file_name().map(|n| n.to_string_lossy().into_owned())
        } else {
            let d = target.describe();
            let path = d.split_once(':').map_or(d.as_str(), |(_, p)| p);
            path.trim_end_matches('/')
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
        };
        let os = ["/etc/os-release", "/usr/lib/os-release"]
            .into_iter()
            .find_map(|p| target.read(p, LIMIT).ok())
            .map(|data| os_release(&String::from_utf8_lossy(&data)))
            .filter(|o| o.pretty_name.is_some() || o.version_id.is_some());
        let kernel = if live {
            read_line(target, "/proc/sys/kernel/osrelease")
        } else {
            image_kernel(target)
        };
        let image_release = target.read(image_release, LIMIT).ok().and_then(|d| {
            let text = String::from_utf8_lossy(&d);
            let t = text.trim();
            (!t.is_empty()).then(|| t.chars().take(RELEASE_CHARS).collect())
        });
        TargetIdentity {
            name,
            os,
            kernel,
            image_release,
            image,
        }
    }

    /// `Debian GNU/Linux 12 (bookworm), kernel 6.1.0-18-amd64, release abc123`,
    /// or `None` when nothing is known.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(os) = &self.os {
            match (&os.pretty_name, &os.version_id) {
                (Some(p), _) => parts.push(p.clone()),
                (None, Some(v)) => parts.push(format!("version {v}")),
                (None, None) => {}
            }
        }
        if let Some(k) = &self.kernel {
            parts.push(format!("kernel {k}"));
        }
        if let Some(r) = &self.image_release {
            parts.push(format!("release {r}"));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

fn read_line(target: &dyn Target, path: &str) -> Option<String> {
    let data = target.read(path, LIMIT).ok()?;
    let text = String::from_utf8_lossy(&data);
    let line = text.lines().next()?.trim();
    (!line.is_empty()).then(|| line.to_owned())
}

/// `PRETTY_NAME` and `VERSION_ID` of an os-release file (shell-quoted
/// values unquoted).
fn os_release(text: &str) -> OsRelease {
    let mut out = OsRelease::default();
    for line in text.lines() {
        let Some((k, v)) = line.trim().split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v)
            .replace("\\\"", "\"");
        match k {
            "PRETTY_NAME" => out.pretty_name = Some(v),
            "VERSION_ID" => out.version_id = Some(v),
            _ => {}
        }
    }
    out
}

/// The kernel an image boots: the one `/vmlinuz` points at, else every
/// release under /lib/modules (or /usr/lib/modules).
fn image_kernel(target: &dyn Target) -> Option<String> {
    for link in ["/vmlinuz", "/boot/vmlinuz"] {
        if let Ok(to) = target.read_link(link)
            && let Some(release) = to
                .rsplit('/')
                .next()
                .and_then(|f| f.strip_prefix("vmlinuz-"))
            && !release.is_empty()
        {
            return Some(release.to_owned());
        }
    }
    let entries = ["/lib/modules", "/usr/lib/modules"]
        .into_iter()
        .find_map(|d| target.read_dir(d).ok())?;
    let names: Vec<String> = entries.into_iter().map(|e| e.name).collect();
    (!names.is_empty()).then(|| names.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values_are_unquoted() {
        let o =
            os_release("NAME=x\nPRETTY_NAME=\"Rocky Linux 9.4 (Blue Onyx)\"\nVERSION_ID='9.4'\n");
        assert_eq!(
            o.pretty_name.as_deref(),
            Some("Rocky Linux 9.4 (Blue Onyx)")
        );
        assert_eq!(o.version_id.as_deref(), Some("9.4"));
        assert_eq!(
            os_release("VERSION_ID=12").version_id.as_deref(),
            Some("12")
        );
    }

    /// A packed image is named by its file, not by the description that
    /// follows it with the compression and size (which it once was).
    #[test]
    fn a_packed_image_says_which_file_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("compute-2026.07.tar");
        let mut b = ::tar::Builder::new(Vec::new());
        let os = b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        let mut h = ::tar::Header::new_ustar();
        h.set_size(os.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(::tar::EntryType::Regular);
        b.append_data(&mut h, "etc/os-release", &os[..]).unwrap();
        std::fs::write(&path, b.into_inner().unwrap()).unwrap();
        let target = crate::target::ImageTarget::open(&path).unwrap();
        let id = TargetIdentity::read(&target, IMAGE_RELEASE);
        assert_eq!(id.name.as_deref(), Some("compute-2026.07.tar"));
        assert!(id.os.unwrap().pretty_name.unwrap().contains("bookworm"));
        let image = id.image.unwrap();
        assert_eq!(image.path, path.display().to_string());
        assert_eq!(image.format, "tar");
        assert_eq!(image.size, std::fs::metadata(&path).unwrap().len());
        assert_eq!(
            (image.digest, image.config_digest, image.sha256),
            (None, None, None)
        );
    }

    #[test]
    fn an_image_file_is_hashed_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("img.cpio");
        std::fs::write(&file, b"abc").unwrap();
        let mut id = ImageIdentity {
            path: file.display().to_string(),
            format: "cpio".into(),
            size: 3,
            ..Default::default()
        };
        assert_eq!(id.describe_digests(), None);
        id.hash_file().unwrap();
        // sha256("abc"), FIPS 180-2's example.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(id.sha256.as_deref(), Some(abc));
        assert_eq!(id.describe_digests(), Some(format!("file sha256:{abc}")));

        // A directory (an OCI layout) or a missing file: an error naming it.
        let mut layout = ImageIdentity {
            path: dir.path().display().to_string(),
            ..Default::default()
        };
        let e = layout.hash_file().unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
        let mut gone = ImageIdentity {
            path: dir.path().join("gone").display().to_string(),
            ..Default::default()
        };
        let e = gone.hash_file().unwrap_err().to_string();
        assert!(e.contains("gone"), "{e}");
    }

    #[test]
    fn the_reference_image_says_what_it_is() {
        let Some(root) = std::env::var_os("NODECHECK_TEST_ROOTFS") else {
            eprintln!("note: NODECHECK_TEST_ROOTFS not set; reference image identity not checked");
            return;
        };
        let target = crate::target::RootFs::open(std::path::Path::new(&root)).unwrap();
        let id = TargetIdentity::read(&target, IMAGE_RELEASE);
        let os = id.os.clone().unwrap();
        assert_eq!(os.version_id.as_deref(), Some("12"));
        assert!(os.pretty_name.unwrap().contains("bookworm"));
        let kernel = id.kernel.clone().unwrap();
        assert!(
            kernel.contains("amd64") || kernel.contains("arm64"),
            "{kernel}"
        );
        assert!(id.name.is_some());
    }
}
