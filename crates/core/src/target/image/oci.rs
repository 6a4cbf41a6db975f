//! OCI images: an image layout directory (`oci:DIR[:REF]`), the same as a
//! tar (`oci-archive:FILE[:REF]`), and `docker save` archives
//! (`docker-archive:FILE[:REF]`). The manifest names the config and the
//! layers; layers are applied in order, each one's whiteouts first
//! (`.wh.NAME` deletes a lower name, `.wh..wh..opq` hides a lower
//! directory's content), then its entries. An uncompressed layer is read in
//! place; a compressed one is decompressed into a spill file of its own.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::tar::{Window, read_window, whiteouts};
use super::{Index, Store, spill_cap, stream};
use crate::target::display_bytes;

/// The parts of an image config checks see (`config` of the OCI image
/// config, `docker inspect`'s `Config`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OciConfig {
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    config: Option<OciConfig>,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct OciIndex {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct OciManifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Where blobs come from: files of a layout directory, or windows of an
/// outer tar.
enum Blobs {
    Dir(std::path::PathBuf),
    Tar {
        store: Arc<Store>,
        entries: BTreeMap<Vec<u8>, (u64, u64)>,
    },
}

impl Blobs {
    fn tar(store: Arc<Store>) -> Result<Blobs, String> {
        let mut entries = BTreeMap::new();
        let window = Window::new(&store.file, 0, store.len).map_err(|e| e.to_string())?;
        let mut archive = ::tar::Archive::new(window);
        for entry in archive
            .entries_with_seek()
            .map_err(|e| format!("tar: {e}"))?
        {
            let entry = entry.map_err(|e| format!("tar: {e}"))?;
            let mut name = entry.path_bytes().into_owned();
            while name.starts_with(b"./") {
                name.drain(..2);
            }
            let (off, size) = (entry.raw_file_position(), entry.size());
            if off.checked_add(size).is_none_or(|e| e > store.len) {
                return Err(format!(
                    "entry {}: runs past the end of the archive",
                    display_bytes(&name)
                ));
            }
            entries.insert(name, (off, size));
        }
        Ok(Blobs::Tar { store, entries })
    }

    /// The blob at `name` (a path inside the layout) as a window.
    fn window(&self, name: &str) -> Result<(Window, Option<Arc<Store>>), String> {
        match self {
            Blobs::Dir(dir) => {
                if name.split('/').any(|c| c == "..") || name.starts_with('/') {
                    return Err(format!("blob {name}: the name leaves the layout"));
                }
                let path = dir.join(name);
                let f = File::open(&path).map_err(|e| format!("blob {name}: {e}"))?;
                let len = f.metadata().map_err(|e| e.to_string())?.len();
                let store = Arc::new(Store { file: f, len });
                let w = Window::new(&store.file, 0, len).map_err(|e| e.to_string())?;
                Ok((w, Some(store)))
            }
            Blobs::Tar { store, entries } => {
                let (off, len) = entries
                    .get(name.as_bytes())
                    .ok_or_else(|| format!("blob {name}: missing from the archive"))?;
                let w = Window::new(&store.file, *off, *len).map_err(|e| e.to_string())?;
                Ok((w, None))
            }
        }
    }

    fn read(&self, name: &str, limit: u64) -> Result<Vec<u8>, String> {
        use std::io::Read;
        let (w, _) = self.window(name)?;
        if w.len() > limit {
            return Err(format!("blob {name}: larger than {limit} bytes"));
        }
        let mut out = Vec::new();
        let mut w = w;
        w.read_to_end(&mut out)
            .map_err(|e| format!("blob {name}: {e}"))?;
        Ok(out)
    }
}

/// Which image form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    Layout,
    OciArchive,
    DockerArchive,
}

/// What reading an OCI image gives the target.
pub(crate) struct Read {
    pub stores: Vec<Arc<Store>>,
    pub layers: u64,
    pub config: OciConfig,
    pub digest: Option<String>,
    /// `sha256:` of the config blob.
    pub config_digest: String,
    pub uncompressed: u64,
}

const JSON_LIMIT: u64 = 16 << 20;

fn blob_path(digest: &str) -> Result<String, String> {
    let (alg, hex) = digest
        .split_once(':')
        .ok_or_else(|| format!("digest {digest:?} has no algorithm"))?;
    if alg.is_empty()
        || hex.is_empty()
        || !alg.bytes().all(|b| b.is_ascii_alphanumeric())
        || !hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(format!("digest {digest:?} is malformed"));
    }
    Ok(format!("blobs/{alg}/{hex}"))
}

/// `ALG:HEX` of `bytes` with the algorithm `digest` names (sha256 or
/// sha512, the two the OCI spec registers).
fn digest_of(digest: &str, bytes: &[u8]) -> Result<String, String> {
    use sha2::Digest;
    let (alg, _) = digest.split_once(':').unwrap_or((digest, ""));
    use crate::text::hex;
    match alg {
        "sha256" => Ok(format!("sha256:{}", hex(&sha2::Sha256::digest(bytes)))),
        "sha512" => Ok(format!("sha512:{}", hex(&sha2::Sha512::digest(bytes)))),
        _ => Err(format!(
            "digest {digest:?}: unsupported algorithm {alg:?} (sha256 and sha512 are read)"
        )),
    }
}

/// Reads the image at `path` (`form`), picking `reference` when given.
pub(crate) fn read(
    path: &Path,
    form: Form,
    reference: Option<&str>,
    index: &mut Index,
) -> Result<Read, String> {
    let mut stores = Vec::new();
    let blobs = match form {
        Form::Layout => Blobs::Dir(path.to_path_buf()),
        Form::OciArchive | Form::DockerArchive => {
            let file = File::open(path).map_err(|e| e.to_string())?;
            let len = file.metadata().map_err(|e| e.to_string())?.len();
            let flat = stream::flatten(file, len, spill_cap(len)).map_err(|e| e.to_string())?;
            let store = Arc::new(Store {
                file: flat.file,
                len: flat.len,
            });
            stores.push(store.clone());
            Blobs::tar(store)?
        }
    };
    let json = |name: &str| -> Result<serde_json::Value, String> {
        let bytes = blobs.read(name, JSON_LIMIT)?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{name}: {e}"))
    };
    // A blob named by its digest, checked against it: the digest is what
    // reports name the image by, so it must be the content's.
    let verified = |name: &str, digest: &str| -> Result<Vec<u8>, String> {
        let bytes = blobs.read(name, JSON_LIMIT)?;
        let got = digest_of(digest, &bytes)?;
        if got != digest {
            return Err(format!(
                "{name}: its content's digest is {got}, not {digest}"
            ));
        }
        Ok(bytes)
    };
    let (config_name, layer_names, digest) = if form == Form::DockerArchive {
        let all: Vec<DockerManifest> = serde_json::from_value(json("manifest.json")?)
            .map_err(|e| format!("manifest.json: {e}"))?;
        let pick = match reference {
            None if all.len() == 1 => all.into_iter().next(),
            None => {
                return Err(format!(
                    "manifest.json holds {} images: name one with docker-archive:FILE:REF",
                    all.len()
                ));
            }
            Some(r) => all.into_iter().find(|m| {
                m.repo_tags
                    .as_ref()
                    .is_some_and(|t| t.iter().any(|t| t == r || t.ends_with(&format!("/{r}"))))
            }),
        }
        .ok_or_else(|| format!("manifest.json: no image tagged {reference:?}"))?;
        (pick.config, pick.layers, None)
    } else {
        let idx: OciIndex =
            serde_json::from_value(json("index.json")?).map_err(|e| format!("index.json: {e}"))?;
        let named = |d: &Descriptor| {
            d.annotations
                .get("org.opencontainers.image.ref.name")
                .or_else(|| d.annotations.get("io.containerd.image.name"))
                .cloned()
        };
        let pick = match reference {
            None if idx.manifests.len() == 1 => idx.manifests.into_iter().next(),
            None => {
                return Err(format!(
                    "index.json holds {} manifests: name one with :REF",
                    idx.manifests.len()
                ));
            }
            Some(r) => idx
                .manifests
                .into_iter()
                .find(|d| named(d).is_some_and(|n| n == r || n.ends_with(&format!(":{r}")))),
        }
        .ok_or_else(|| format!("index.json: no manifest named {reference:?}"))?;
        if pick.media_type.contains("index") {
            return Err(format!(
                "manifest {} is an image index (several platforms): not supported yet",
                pick.digest
            ));
        }
        let raw = verified(&blob_path(&pick.digest)?, &pick.digest)?;
        let m: OciManifest =
            serde_json::from_slice(&raw).map_err(|e| format!("manifest {}: {e}", pick.digest))?;
        let layers = m
            .layers
            .iter()
            .map(|l| blob_path(&l.digest))
            .collect::<Result<Vec<_>, _>>()?;
        let config = blob_path(&m.config.digest)?;
        verified(&config, &m.config.digest)?;
        (config, layers, Some(pick.digest))
    };
    let config_raw = blobs.read(&config_name, JSON_LIMIT)?;
    // The image ID (`podman images`' IMAGE ID): the same for every form
    // the image is saved in, compressed or not.
    let config_digest = digest_of("sha256:", &config_raw)?;
    let config: ConfigFile =
        serde_json::from_slice(&config_raw).map_err(|e| format!("{config_name}: {e}"))?;
    let mut uncompressed = 0;
    for name in &layer_names {
        let (window, own) = blobs.window(name)?;
        if let Some(s) = own {
            stores.push(s);
        }
        // A compressed layer: decompressed into a spill of its own.
        let mut head = [0u8; 512];
        let n = super::read_full_at(&window_file(&window)?, &mut head, window_start(&window))
            .map_err(|e| e.to_string())?;
        let (store_id, window) = if stream::is_compressed(&head[..n]) {
            let flat = stream::flatten_window(&window, spill_cap(window_len(&window)))
                .map_err(|e| format!("layer {name}: {e}"))?;
            let store = Arc::new(Store {
                file: flat.file,
                len: flat.len,
            });
            stores.push(store.clone());
            let w = Window::new(&store.file, 0, store.len).map_err(|e| e.to_string())?;
            (stores.len() - 1, w)
        } else {
            // Read in place: the window's store is the outer tar (0) or
            // the blob file just pushed.
            let id = if matches!(blobs, Blobs::Tar { .. }) {
                0
            } else {
                stores.len() - 1
            };
            (id, window)
        };
        uncompressed += window_len(&window);
        let again = Window::new(
            &window_file(&window)?,
            window_start(&window),
            window_len(&window),
        )
        .map_err(|e| e.to_string())?;
        let (gone, opaque) = whiteouts(again).map_err(|e| format!("layer {name}: {e}"))?;
        for d in &opaque {
            index.clear(d).map_err(|e| format!("layer {name}: {e}"))?;
        }
        for g in &gone {
            index.remove(g).map_err(|e| format!("layer {name}: {e}"))?;
        }
        read_window(window, store_id as u32, index, true)
            .map_err(|e| format!("layer {name}: {e}"))?;
    }
    Ok(Read {
        stores,
        layers: layer_names.len() as u64,
        config: config.config.unwrap_or_default(),
        digest,
        config_digest,
        uncompressed,
    })
}

fn window_file(w: &Window) -> Result<File, String> {
    w.file().try_clone().map_err(|e| e.to_string())
}

fn window_start(w: &Window) -> u64 {
    w.start()
}

fn window_len(w: &Window) -> u64 {
    w.len()
}
