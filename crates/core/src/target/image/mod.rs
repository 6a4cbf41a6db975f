//! Packed images (initramfs cpio, tar) as targets, read without unpacking.
//!
//! # Design
//!
//! A format reader walks the archive once and builds an [`Index`]: a tree
//! of nodes in memory (type, mode, owner, size, mtime, link text, device
//! numbers, xattrs, and *where the content lies*), about 200 bytes plus the
//! name per entry — some 15 MB for the 1.2 GB reference rootfs (≈ 60,000
//! entries). A node points at an offset in a *store*, a read-only file read
//! with `pread`, or at content kept in memory ([`Kept`], at most
//! [`KEEP_BUDGET`]).
//!
//! - An uncompressed archive is its own store: content is read at its
//!   offset in the image file. Nothing is written anywhere.
//! - A compressed cpio is indexed as its decompressed stream passes
//!   ([`stream::streamed`]), nothing written: small files (`/etc` first)
//!   and the first 64 bytes of the others are kept in memory; the first
//!   read of other content decompresses the image again, once, into a
//!   private spill file ([`Lazy`]), checked against the first pass by
//!   length and CRC-32.
//! - A compressed tar (or an OCI layer) is decompressed once, while
//!   indexing, into a private spill file (`O_TMPFILE` in `$TMPDIR`, mode
//!   0600, never linked into the filesystem, gone when nodecheck exits),
//!   and that spill is the store. Memory stays bounded (a 64 KiB copy
//!   buffer); disk use is the uncompressed size of the archive.
//!
//! Every decompression is capped ([`spill_cap`]) so that a bomb ends in an
//! error naming the image, not a full disk.
//!
//! Paths are resolved in the index, never on the host: `..` stops at the
//! image's `/`, absolute symlinks restart there, and no name of the archive
//! is ever joined onto a host path. Entry names holding `..` are refused
//! when the index is built (an error naming the entry), hard links must
//! name an earlier entry of the same archive, and a later entry replaces an
//! earlier one of the same name, as the kernel unpacks an initramfs.
//!
//! Programs (checks that need [`Need::Exec`]) run in the tree written out
//! once per run into a tmpfs of a private mount namespace ([`materialise`]:
//! as root, or unprivileged in a user namespace mapped over the caller's
//! subordinate ids), under the rootfs sandbox; where neither is possible
//! they are skipped, saying why.

mod cpio;
mod materialise;

pub(crate) use materialise::tree_helper_main;
mod oci;
mod squashfs;
mod stream;
mod tar;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_lazy;
#[cfg(test)]
mod tests_squashfs;
#[cfg(test)]
mod tests_streams;

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use super::{
    Accounts, DirEntry, FileAt, FileType, Memo, Metadata, Need, READ_LIMIT, Target, TargetKind,
    Visit, Visited, WalkEntry, WalkOptions, display_bytes, not_regular,
};

pub use oci::OciConfig;
pub use stream::Compression;

/// How many symlinks one resolution may follow, as the kernel's
/// `MAXSYMLINKS`.
const MAX_LINKS: usize = 40;

/// The archive formats an [`ImageTarget`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Cpio,
    Tar,
    /// squashfs 4.0, read by its tables.
    Squashfs,
    /// An OCI image layout directory.
    Oci,
    /// An OCI image layout in a tar.
    OciArchive,
    /// `docker save` / `podman save --format docker-archive`.
    DockerArchive,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Cpio => "cpio",
            Format::Tar => "tar",
            Format::Squashfs => "squashfs",
            Format::Oci => "oci",
            Format::OciArchive => "oci-archive",
            Format::DockerArchive => "docker-archive",
        }
    }

    /// The explicit `FORMAT:FILE` target forms.
    pub fn parse(s: &str) -> Option<Format> {
        [
            Format::Cpio,
            Format::Tar,
            Format::Squashfs,
            Format::Oci,
            Format::OciArchive,
            Format::DockerArchive,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }
}

/// What the `image` kind reports of a packed target.
#[derive(Clone, Debug)]
pub struct ImageInfo {
    /// The image file on the host.
    pub path: PathBuf,
    pub format: Format,
    /// The compressions met, in order (several for a concatenated
    /// initramfs: `none` then `zstd`); empty for an uncompressed archive.
    pub compression: Vec<Compression>,
    /// The image file's size.
    pub compressed_size: u64,
    /// The archive's size once decompressed.
    pub uncompressed_size: u64,
    /// Entries of the index (every name, `/` included).
    pub entries: u64,
    /// Archives concatenated in the file (an early-microcode cpio before
    /// the main one counts as one more).
    pub archives: u64,
    /// OCI: the layers applied.
    pub layers: Option<u64>,
    /// OCI: the image config (Env, Entrypoint, Cmd, User, …).
    pub config: Option<OciConfig>,
    /// OCI layout and oci-archive: the digest of the manifest picked, as
    /// index.json names it (checked against the manifest's content).
    pub digest: Option<String>,
    /// OCI forms, docker-archive included: `sha256:` of the image config,
    /// the image ID (the same whichever form the image was saved in).
    pub config_digest: Option<String>,
}

impl ImageInfo {
    /// A `format` image at `path` whose index is `index`: one archive, no
    /// compression, sizes zero and no OCI facts until the reader says.
    fn of(path: &Path, format: Format, index: &Index) -> ImageInfo {
        ImageInfo {
            path: path.to_path_buf(),
            format,
            compression: Vec::new(),
            compressed_size: 0,
            uncompressed_size: 0,
            entries: index.count(),
            archives: 1,
            layers: None,
            config: None,
            digest: None,
            config_digest: None,
        }
    }
}

/// The store number of a squashfs file's content: its `offset` is then
/// the file's number in the squashfs reader.
pub(crate) const SQUASH: u32 = u32::MAX;
/// The store number of content kept in memory while indexing: its
/// `offset` is then in [`Kept`]'s bytes.
pub(crate) const KEPT: u32 = u32::MAX - 1;
/// The store number of content in a compressed cpio not kept: its `offset`
/// is then in the decompressed stream, spilled on the first read ([`Lazy`]).
pub(crate) const LAZY: u32 = u32::MAX - 2;

/// Memory for content kept while a compressed image is indexed.
pub const KEEP_BUDGET: u64 = 32 << 20;
/// The largest file kept, under `/etc`.
const KEEP_ETC: u64 = 64 << 10;
/// The largest file kept elsewhere (and only within ¾ of the budget, so
/// that `/etc` finds room wherever the archive puts it).
const KEEP_SMALL: u64 = 4 << 10;

/// The first bytes of every other file kept (an ELF header: the
/// platform's probe of `/bin/sh`, magic numbers), within the budget.
const KEEP_HEAD: u64 = 64;

/// Small files' content, kept in memory while a compressed stream is
/// indexed (at most its budget, never grown past it), and the heads of
/// the other files.
#[derive(Debug)]
pub(crate) struct Kept {
    bytes: Vec<u8>,
    budget: u64,
    /// A file not kept whole: its offset in the stream → where its first
    /// `KEEP_HEAD` bytes (or fewer: its size) are in `bytes`.
    heads: std::collections::HashMap<u64, u64>,
}

impl Kept {
    /// Keeps nothing (an image read in place).
    pub(crate) fn none() -> Kept {
        Kept {
            bytes: Vec::new(),
            budget: 0,
            heads: Default::default(),
        }
    }

    pub(crate) fn with_budget(budget: u64) -> Kept {
        Kept {
            bytes: Vec::with_capacity(budget as usize),
            budget,
            heads: Default::default(),
        }
    }

    /// Where the content of the entry `name` (`size` bytes) goes, when it
    /// is kept.
    pub(crate) fn room(&self, name: &[u8], size: u64) -> Option<u64> {
        let etc = Index::components(name).is_ok_and(|c| c.len() > 1 && c[0] == b"etc");
        let (largest, budget) = if etc {
            (KEEP_ETC, self.budget)
        } else {
            (KEEP_SMALL, self.budget / 4 * 3)
        };
        let at = self.bytes.len() as u64;
        (size <= largest && at + size <= budget).then_some(at)
    }

    /// Where the head of a file not kept whole goes (its content at
    /// `offset` in the stream, `size` bytes), and how long it is.
    pub(crate) fn head_room(&mut self, offset: u64, size: u64) -> Option<(u64, u64)> {
        let at = self.bytes.len() as u64;
        let len = size.min(KEEP_HEAD);
        (at + len <= self.budget).then(|| {
            self.heads.insert(offset, at);
            (at, len)
        })
    }

    /// The head kept of the content at `offset`: where it is in `bytes`.
    fn head(&self, offset: u64) -> Option<u64> {
        self.heads.get(&offset).copied()
    }

    /// The room for `size` bytes at `at` (from [`Kept::room`]).
    pub(crate) fn take(&mut self, at: u64, size: u64) -> &mut [u8] {
        self.bytes.resize((at + size) as usize, 0);
        &mut self.bytes[at as usize..]
    }

    /// Bytes kept.
    pub(crate) fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// A compressed cpio's decompressed stream, spilled on the first read of
/// content not kept: decompressed a second time, once, into a private
/// spill file, and checked to be the stream the index was built from.
#[derive(Debug)]
pub(crate) struct Lazy {
    image: File,
    image_len: u64,
    cap: u64,
    /// The decompressed length and CRC-32 the index pass saw.
    len: u64,
    crc: u32,
    name: PathBuf,
    spill: OnceLock<Result<Arc<Store>, String>>,
}

impl Lazy {
    /// Whether a later pass over the stream (`len` bytes, `crc`) saw the
    /// stream the index was built from.
    pub(crate) fn same_stream(&self, len: u64, crc: u32) -> io::Result<()> {
        if (len, crc) == (self.len, self.crc) {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "decompresses to {len} bytes (CRC-32 {crc:08x}) now and to {} (CRC-32 {:08x}) \
                 when indexed: the image changed while being read",
                self.len, self.crc
            ),
        ))
    }

    fn store(&self) -> io::Result<&Arc<Store>> {
        let s = self.spill.get_or_init(|| {
            let name = self.name.display();
            let image = self.image.try_clone().map_err(|e| format!("{name}: {e}"))?;
            let spill = tempfile::tempfile().map_err(|e| format!("{name}: spill: {e}"))?;
            let mut w = io::BufWriter::with_capacity(256 << 10, spill);
            let (len, crc, _) = stream::flatten_into(&image, self.image_len, self.cap, &mut w)
                .map_err(|e| format!("{name}: {e}"))?;
            self.same_stream(len, crc)
                .map_err(|e| format!("{name}: {e}"))?;
            let file = w
                .into_inner()
                .map_err(|e| format!("{name}: spill: {}", e.error()))?;
            Ok(Arc::new(Store { file, len }))
        });
        s.as_ref().map_err(|e| io::Error::other(e.clone()))
    }
}

/// Where a node's content lies.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Data {
    pub store: u32,
    pub offset: u64,
}

/// What a reader knows of one entry.
#[derive(Clone, Debug)]
pub(crate) struct Attrs {
    pub file_type: FileType,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub rdev: u64,
    pub link: Vec<u8>,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Attrs {
    pub(crate) fn dir(mode: u32) -> Attrs {
        Attrs {
            file_type: FileType::Directory,
            mode,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            rdev: 0,
            link: Vec::new(),
            xattrs: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct Node {
    attrs: Attrs,
    data: Option<Data>,
    children: BTreeMap<Vec<u8>, usize>,
    nlink: u64,
}

/// The in-memory tree of an archive's entries.
#[derive(Debug)]
pub(crate) struct Index {
    nodes: Vec<Node>,
    /// Names in the tree (root included).
    names: u64,
}

impl Index {
    pub(crate) fn new() -> Index {
        Index {
            nodes: vec![Node {
                attrs: Attrs::dir(0o755),
                data: None,
                children: BTreeMap::new(),
                nlink: 1,
            }],
            names: 1,
        }
    }

    /// The components of an entry name, `.` and empty ones dropped; `..`
    /// refused (an archive that climbs is hostile, not merely odd).
    fn components(name: &[u8]) -> Result<Vec<&[u8]>, String> {
        let mut out = Vec::new();
        for c in name.split(|&b| b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => {
                    return Err(format!(
                        "entry {}: the name climbs out of the archive with `..`",
                        display_bytes(name)
                    ));
                }
                c => out.push(c),
            }
        }
        Ok(out)
    }

    /// The directory holding `comps`' last name, created (0755 root) where
    /// missing, as `tar` and the kernel do for an entry whose parents the
    /// archive does not list.
    fn parent(&mut self, name: &[u8], comps: &[&[u8]]) -> Result<usize, String> {
        let mut at = 0;
        for c in &comps[..comps.len().saturating_sub(1)] {
            at = match self.nodes[at].children.get(*c) {
                Some(&n) => {
                    if self.nodes[n].attrs.file_type != FileType::Directory {
                        return Err(format!(
                            "entry {}: {} is not a directory in the archive",
                            display_bytes(name),
                            display_bytes(c)
                        ));
                    }
                    n
                }
                None => {
                    let n = self.push(Attrs::dir(0o755), None);
                    self.nodes[at].children.insert(c.to_vec(), n);
                    self.names += 1;
                    n
                }
            };
        }
        Ok(at)
    }

    fn push(&mut self, attrs: Attrs, data: Option<Data>) -> usize {
        self.nodes.push(Node {
            attrs,
            data,
            children: BTreeMap::new(),
            nlink: 1,
        });
        self.nodes.len() - 1
    }

    /// Adds (or replaces) the entry `name`. A directory that meets a
    /// directory keeps its children and takes the new attributes. Returns
    /// the node.
    pub(crate) fn insert(
        &mut self,
        name: &[u8],
        attrs: Attrs,
        data: Option<Data>,
    ) -> Result<usize, String> {
        let comps = Index::components(name)?;
        let Some(last) = comps.last() else {
            // The archive's `.`: attributes of the root.
            if attrs.file_type != FileType::Directory {
                return Err(format!(
                    "entry {}: the root is not a directory",
                    display_bytes(name)
                ));
            }
            self.nodes[0].attrs = attrs;
            return Ok(0);
        };
        let parent = self.parent(name, &comps)?;
        if let Some(&old) = self.nodes[parent].children.get(*last)
            && self.nodes[old].attrs.file_type == FileType::Directory
            && attrs.file_type == FileType::Directory
        {
            self.nodes[old].attrs = attrs;
            return Ok(old);
        }
        let n = self.push(attrs, data);
        self.place(parent, last, n);
        Ok(n)
    }

    fn place(&mut self, parent: usize, name: &[u8], n: usize) {
        match self.nodes[parent].children.insert(name.to_vec(), n) {
            Some(old) => self.nodes[old].nlink = self.nodes[old].nlink.saturating_sub(1),
            None => self.names += 1,
        }
    }

    /// Adds `name` (one component) under the directory node `parent`, as
    /// a reader that walks the tree directory by directory (squashfs)
    /// does; a name met twice replaces the earlier one. Returns the node.
    pub(crate) fn add_child(
        &mut self,
        parent: usize,
        name: &[u8],
        attrs: Attrs,
        data: Option<Data>,
    ) -> usize {
        let n = self.push(attrs, data);
        self.place(parent, name, n);
        n
    }

    /// `name` under the directory node `parent` becomes one more name of
    /// node `at` (a hard link).
    pub(crate) fn link_child(&mut self, parent: usize, name: &[u8], at: usize) {
        if self.nodes[parent].children.get(name) != Some(&at) {
            self.place(parent, name, at);
            self.nodes[at].nlink += 1;
        }
    }

    /// A hard link: `name` becomes one more name of the entry `target`
    /// (an earlier name of the same archive, not followed).
    pub(crate) fn link(&mut self, name: &[u8], target: &[u8]) -> Result<usize, String> {
        let bad = |why: &str| {
            format!(
                "entry {}: hard link to {}: {why}",
                display_bytes(name),
                display_bytes(target)
            )
        };
        let tcomps = Index::components(target).map_err(|_| bad("climbs out with `..`"))?;
        let mut at = 0;
        for c in &tcomps {
            at = match self.nodes[at].children.get(*c) {
                Some(&n) => n,
                None => return Err(bad("no such entry earlier in the archive")),
            };
        }
        if self.nodes[at].attrs.file_type == FileType::Directory {
            return Err(bad("a directory"));
        }
        self.link_node(name, at)
    }

    /// `name` becomes one more name of node `at`.
    pub(crate) fn link_node(&mut self, name: &[u8], at: usize) -> Result<usize, String> {
        let comps = Index::components(name)?;
        let Some(last) = comps.last() else {
            return Err(format!(
                "entry {}: the root cannot be a hard link",
                display_bytes(name)
            ));
        };
        let parent = self.parent(name, &comps)?;
        if self.nodes[parent].children.get(*last) == Some(&at) {
            return Ok(at);
        }
        self.place(parent, last, at);
        self.nodes[at].nlink += 1;
        Ok(at)
    }

    /// The names reachable from the root (`/` included).
    pub(crate) fn count(&self) -> u64 {
        let mut n = 0;
        let mut todo = vec![0];
        while let Some(at) = todo.pop() {
            n += 1;
            if self.nodes[at].attrs.file_type == FileType::Directory {
                todo.extend(self.nodes[at].children.values().copied());
            }
        }
        n
    }

    /// Removes the name `path` (an OCI whiteout); a missing name is no
    /// error (a layer may delete what it never saw).
    pub(crate) fn remove(&mut self, path: &[u8]) -> Result<(), String> {
        let comps = Index::components(path)?;
        let Some((last, dirs)) = comps.split_last() else {
            return Err("a whiteout of the root".into());
        };
        let mut at = 0;
        for c in dirs {
            match self.nodes[at].children.get(*c) {
                Some(&n) => at = n,
                None => return Ok(()),
            }
        }
        if let Some(old) = self.nodes[at].children.remove(*last) {
            self.nodes[old].nlink = self.nodes[old].nlink.saturating_sub(1);
            self.names = self.names.saturating_sub(1);
        }
        Ok(())
    }

    /// Empties the directory `path` (an OCI opaque directory: what lower
    /// layers put there is hidden).
    pub(crate) fn clear(&mut self, path: &[u8]) -> Result<(), String> {
        let comps = Index::components(path)?;
        let mut at = 0;
        for c in &comps {
            match self.nodes[at].children.get(*c) {
                Some(&n) => at = n,
                None => return Ok(()),
            }
        }
        if self.nodes[at].attrs.file_type == FileType::Directory {
            let gone = std::mem::take(&mut self.nodes[at].children);
            self.names = self.names.saturating_sub(gone.len() as u64);
        }
        Ok(())
    }

    /// Gives node `n` its content (cpio: the last name of a hard-link set
    /// carries the data).
    pub(crate) fn set_data(&mut self, n: usize, size: u64, data: Data) {
        self.nodes[n].attrs.size = size;
        self.nodes[n].data = Some(data);
    }
}

/// A store: a read-only file whose bytes hold the entries' content.
#[derive(Debug)]
pub(crate) struct Store {
    pub file: File,
    pub len: u64,
}

/// A packed image read as a target.
pub struct ImageTarget {
    info: ImageInfo,
    index: Index,
    stores: Vec<Arc<Store>>,
    /// Content kept in memory while indexing (a compressed cpio).
    kept: Arc<Kept>,
    /// A compressed cpio's stream, spilled on the first read that needs it.
    lazy: Option<Arc<Lazy>>,
    /// The content reader of a squashfs.
    squash: Option<Arc<squashfs::Squash>>,
    accounts: OnceLock<Accounts>,
    memo: Memo,
    /// The tree written out for programs, on the first exec.
    materialised: OnceLock<Result<materialise::Materialised, String>>,
}

impl std::fmt::Debug for ImageTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageTarget")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// The spill cap for an image of `compressed` bytes: 64 times its size
/// plus 1 GiB. A real rootfs compresses 3–5 times; a bomb hits the cap.
pub fn spill_cap(compressed: u64) -> u64 {
    compressed.saturating_mul(64).saturating_add(1 << 30)
}

impl ImageTarget {
    /// Opens `path`, recognising the format by its magic bytes (after
    /// decompression): cpio (newc, crc) or tar.
    pub fn open(path: impl AsRef<Path>) -> io::Result<ImageTarget> {
        ImageTarget::open_as(path, None)
    }

    /// Whether `path` looks like a packed image this target reads (by its
    /// first bytes): a regular file holding compressed data, a cpio or a
    /// tar archive.
    pub fn sniff(path: impl AsRef<Path>) -> bool {
        let Ok(file) = File::open(path) else {
            return false;
        };
        let mut head = [0; 512];
        let Ok(n) = read_full_at(&file, &mut head, 0) else {
            return false;
        };
        head[..n].starts_with(squashfs::MAGIC) || stream::sniff(&head[..n]).is_some()
    }

    /// Opens `path` as `format` (`None`: by its magic bytes).
    pub fn open_as(path: impl AsRef<Path>, format: Option<Format>) -> io::Result<ImageTarget> {
        let path = path.as_ref();
        if let Some(f @ (Format::Oci | Format::OciArchive | Format::DockerArchive)) = format {
            // `FILE:REF`, unless the whole string names the file.
            if !path.exists()
                && let Some((file, reference)) = path.to_str().and_then(|s| s.rsplit_once(':'))
            {
                return ImageTarget::open_oci(file, f, Some(reference));
            }
            return ImageTarget::open_oci(path, f, None);
        }
        let name = path.display();
        let file =
            File::open(path).map_err(|e| io::Error::new(e.kind(), format!("{name}: {e}")))?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name}: not a regular file"),
            ));
        }
        let mut magic = [0; 4];
        let n = read_full_at(&file, &mut magic, 0)?;
        if format == Some(Format::Squashfs) || (format.is_none() && &magic[..n] == squashfs::MAGIC)
        {
            return ImageTarget::open_squashfs(path, file, meta.len());
        }
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{name}: {e}"));
        // A compressed cpio is indexed as it streams past, nothing spilled.
        let plain = stream::is_plain(&file, meta.len()).map_err(named)?;
        if !plain
            && matches!(format, None | Some(Format::Cpio))
            && let Some(t) =
                ImageTarget::open_streamed(path, &file, meta.len(), format, spill_cap(meta.len()))?
        {
            return Ok(t);
        }
        let flat = stream::flatten(file, meta.len(), spill_cap(meta.len())).map_err(named)?;
        let store = Arc::new(Store {
            len: flat.len,
            file: flat.file,
        });
        let mut head = [0; 512];
        let n = read_full_at(&store.file, &mut head, 0)?;
        let found = stream::archive_format(&head[..n]);
        let explicit = format.is_some();
        let format = match (format, found) {
            (Some(f), _) => f,
            (None, Some(f)) => f,
            (None, None) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{name}: neither a cpio nor a tar archive (by its first bytes)"),
                ));
            }
        };
        let mut index = Index::new();
        let archives = match format {
            Format::Cpio => cpio::read(
                &mut &store.file,
                store.len,
                0,
                &mut index,
                &mut Kept::none(),
            )
            .map(|(n, _)| n),
            _ => tar::read(&store, 0, &mut index),
        }
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{name}: {e}")))?;
        // A tar known by its magic may be an image archive: said by what
        // its root holds, not by the file's name.
        if found.is_some() && format == Format::Tar && !explicit {
            let shape = ImageTarget::shape_of(&index, std::slice::from_ref(&store));
            if let Some(form) = shape {
                drop(index);
                return ImageTarget::open_oci(path, form, None);
            }
        }
        let info = ImageInfo {
            compression: flat.compression,
            compressed_size: meta.len(),
            uncompressed_size: store.len,
            archives,
            ..ImageInfo::of(path, format, &index)
        };
        Ok(ImageTarget {
            stores: vec![store],
            ..ImageTarget::over(info, index)
        })
    }

    /// Indexes the compressed cpio `file` (`path`, `len` bytes) as its
    /// decompressed stream passes, once, keeping small files' content in
    /// memory ([`KEEP_BUDGET`]) and spilling nothing; the rest is
    /// decompressed again into a spill on the first read that needs it.
    /// `None` when the stream is not a cpio (the caller spills it and
    /// reads it as before).
    fn open_streamed(
        path: &Path,
        file: &File,
        len: u64,
        format: Option<Format>,
        cap: u64,
    ) -> io::Result<Option<ImageTarget>> {
        use std::io::BufRead;
        let name = path.display();
        let (reader, thread) = stream::streamed(file, len, cap)?;
        let mut r = io::BufReader::with_capacity(256 << 10, reader);
        let head = r.fill_buf()?;
        if head.len() < 6 || (format.is_none() && !cpio::is_magic(head)) {
            drop(r);
            // The thread stops at its next write; what it says is moot.
            let _ = thread.join();
            return Ok(None);
        }
        let mut src = cpio::Forward { r, pos: 0 };
        let mut index = Index::new();
        let mut kept = Kept::with_budget(KEEP_BUDGET);
        let parsed = cpio::read(&mut src, u64::MAX, LAZY, &mut index, &mut kept);
        // Whatever the reader read, the thread stops (its writes fail).
        drop(src);
        let joined = thread
            .join()
            .map_err(|_| io::Error::other(format!("{name}: the decompressing thread panicked")))?;
        let (archives, written, crc, kinds) = match (parsed, joined) {
            // The decompressor's own error says it best (a bomb, a
            // corrupt stream), unless it only saw the reader stop.
            (_, Err(e)) if e.kind() != io::ErrorKind::BrokenPipe => {
                return Err(io::Error::new(e.kind(), format!("{name}: {e}")));
            }
            (Err(e), _) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{name}: {e}"),
                ));
            }
            (Ok((archives, end)), Ok((written, crc, kinds))) => {
                if end != written {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{name}: the archive ends at {end} of {written} bytes"),
                    ));
                }
                (archives, written, crc, kinds)
            }
            (Ok(_), Err(e)) => return Err(io::Error::new(e.kind(), format!("{name}: {e}"))),
        };
        let lazy = Lazy {
            image: file.try_clone()?,
            image_len: len,
            cap,
            len: written,
            crc,
            name: path.to_path_buf(),
            spill: OnceLock::new(),
        };
        let info = ImageInfo {
            compression: kinds,
            compressed_size: len,
            uncompressed_size: written,
            archives,
            ..ImageInfo::of(path, Format::Cpio, &index)
        };
        Ok(Some(ImageTarget {
            kept: Arc::new(kept),
            lazy: Some(Arc::new(lazy)),
            ..ImageTarget::over(info, index)
        }))
    }

    /// Content kept in memory while indexing, in bytes (for tests).
    #[doc(hidden)]
    pub fn kept_bytes(&self) -> u64 {
        self.kept.len()
    }

    /// Whether the decompressed stream was spilled (for tests).
    #[doc(hidden)]
    pub fn spilled(&self) -> bool {
        self.lazy.as_ref().is_some_and(|l| l.spill.get().is_some())
    }

    /// Whether `dir` is an OCI image layout (it holds an `oci-layout`
    /// file and an `index.json`): `--target DIR` reads it as `oci:DIR`.
    pub fn is_oci_layout(dir: impl AsRef<Path>) -> bool {
        let dir = dir.as_ref();
        let file = |n: &str| std::fs::symlink_metadata(dir.join(n)).is_ok_and(|m| m.is_file());
        file("oci-layout") && file("index.json")
    }

    /// The image archive a tar's root says it is: `oci-layout` and
    /// `index.json` (an oci-archive), or a `manifest.json` holding a JSON
    /// array (a docker-archive, as `docker save` writes it).
    fn shape_of(index: &Index, stores: &[Arc<Store>]) -> Option<Format> {
        let root = &index.nodes[0].children;
        let file = |n: &[u8]| {
            root.get(n)
                .filter(|&&c| index.nodes[c].attrs.file_type == FileType::File)
                .copied()
        };
        if file(b"oci-layout").is_some() && file(b"index.json").is_some() {
            return Some(Format::OciArchive);
        }
        let m = file(b"manifest.json")?;
        let node = &index.nodes[m];
        let d = node.data?;
        let store = stores.get(d.store as usize)?;
        let mut head = [0; 64];
        let n = node.attrs.size.min(64) as usize;
        let got = read_full_at(&store.file, &mut head[..n], d.offset).ok()?;
        let first = head[..got].iter().find(|b| !b.is_ascii_whitespace())?;
        (*first == b'[').then_some(Format::DockerArchive)
    }

    /// Opens the squashfs `file` (`path` on the host, `len` bytes).
    fn open_squashfs(path: &Path, file: File, len: u64) -> io::Result<ImageTarget> {
        let mut index = Index::new();
        let read = squashfs::read(file, len, &mut index).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: squashfs: {e}", path.display()),
            )
        })?;
        let info = ImageInfo {
            compression: vec![read.compressor.into()],
            compressed_size: len,
            uncompressed_size: read.content,
            ..ImageInfo::of(path, Format::Squashfs, &index)
        };
        Ok(ImageTarget {
            squash: Some(read.squash),
            ..ImageTarget::over(info, index)
        })
    }

    /// Opens an OCI image: a layout directory, an oci-archive or a
    /// docker-archive, the image named `reference` (needed when there are
    /// several).
    pub fn open_oci(
        path: impl AsRef<Path>,
        format: Format,
        reference: Option<&str>,
    ) -> io::Result<ImageTarget> {
        let path = path.as_ref();
        let form = match format {
            Format::Oci => oci::Form::Layout,
            Format::OciArchive => oci::Form::OciArchive,
            Format::DockerArchive => oci::Form::DockerArchive,
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not an OCI form", other.as_str()),
                ));
            }
        };
        let mut index = Index::new();
        let read = oci::read(path, form, reference, &mut index).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
        let compressed_size = if form == oci::Form::Layout {
            read.stores.iter().map(|s| s.len).sum()
        } else {
            std::fs::metadata(path)?.len()
        };
        let info = ImageInfo {
            compressed_size,
            uncompressed_size: read.uncompressed,
            archives: read.layers,
            layers: Some(read.layers),
            config: Some(read.config),
            digest: read.digest,
            config_digest: Some(read.config_digest),
            ..ImageInfo::of(path, format, &index)
        };
        Ok(ImageTarget {
            stores: read.stores,
            ..ImageTarget::over(info, index)
        })
    }

    /// A target over `index`, described by `info`, with no content
    /// source yet: each reader names its own (stores, kept content, the
    /// lazy stream, a squashfs).
    fn over(info: ImageInfo, index: Index) -> ImageTarget {
        ImageTarget {
            info,
            index,
            stores: Vec::new(),
            kept: Arc::new(Kept::none()),
            lazy: None,
            squash: None,
            accounts: OnceLock::new(),
            memo: Memo::default(),
            materialised: OnceLock::new(),
        }
    }

    /// What the image is.
    pub fn info(&self) -> &ImageInfo {
        &self.info
    }

    /// The tree written out for programs, written on the first call.
    fn tree(&self) -> io::Result<&materialise::Materialised> {
        if let Some(why) = materialise::unavailable() {
            return Err(io::Error::new(io::ErrorKind::Unsupported, why));
        }
        let m = self.materialised.get_or_init(|| {
            materialise::materialise(self).map_err(|e| {
                format!(
                    "cannot write {} out to run programs: {e}",
                    self.info.path.display()
                )
            })
        });
        m.as_ref().map_err(|e| io::Error::other(e.clone()))
    }

    /// Writes the tree out for programs (once) and says where the host's
    /// root can see it (`/proc/HOLDER/root/…`) and the holder's pid: for
    /// tests, which look at what was written and at its removal.
    #[doc(hidden)]
    pub fn written_tree(&self) -> io::Result<(PathBuf, i32)> {
        let m = self.tree()?;
        let pid = m.enter.pid;
        Ok((
            PathBuf::from(format!("/proc/{pid}/root"))
                .join(m.root().strip_prefix("/").unwrap_or(&m.root())),
            pid,
        ))
    }

    /// Resolves `path` inside the image: every symlink on the way is
    /// followed (the last only when `follow_last`), absolute targets
    /// restart at `/`, `..` stops at `/`. Returns the node and its path.
    fn resolve(&self, path: &[u8], follow_last: bool) -> io::Result<(usize, Vec<Vec<u8>>)> {
        if !path.starts_with(b"/") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("path {:?} is not absolute", display_bytes(path)),
            ));
        }
        let mut todo: Vec<Vec<u8>> = split(path).rev().map(<[u8]>::to_vec).collect();
        let mut at: Vec<(Vec<u8>, usize)> = Vec::new();
        let mut links = 0;
        while let Some(name) = todo.pop() {
            match name.as_slice() {
                b"." => continue,
                b".." => {
                    at.pop();
                    continue;
                }
                _ => {}
            }
            let here = at.last().map_or(0, |(_, n)| *n);
            let node = &self.index.nodes[here];
            if node.attrs.file_type != FileType::Directory {
                return Err(errno(libc::ENOTDIR));
            }
            let Some(&next) = node.children.get(&name) else {
                return Err(errno(libc::ENOENT));
            };
            let attrs = &self.index.nodes[next].attrs;
            if attrs.file_type == FileType::Symlink && (!todo.is_empty() || follow_last) {
                links += 1;
                if links > MAX_LINKS {
                    return Err(errno(libc::ELOOP));
                }
                if attrs.link.starts_with(b"/") {
                    at.clear();
                }
                todo.extend(split(&attrs.link).rev().map(<[u8]>::to_vec));
            } else {
                at.push((name, next));
            }
        }
        let node = at.last().map_or(0, |(_, n)| *n);
        Ok((node, at.into_iter().map(|(c, _)| c).collect()))
    }

    fn metadata_of(&self, n: usize) -> Metadata {
        let node = &self.index.nodes[n];
        let a = &node.attrs;
        let size = match a.file_type {
            FileType::Symlink => a.link.len() as u64,
            FileType::File => a.size,
            _ => 0,
        };
        let mtime = if a.mtime >= 0 {
            SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(a.mtime as u64))
        } else {
            SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(a.mtime.unsigned_abs()))
        };
        Metadata {
            file_type: a.file_type,
            mode: a.mode & 0o7777,
            uid: a.uid,
            gid: a.gid,
            size,
            mtime,
            nlink: node.nlink,
            dev: 1,
            ino: n as u64 + 1,
        }
    }

    /// The extended attributes the archive records for `path` (not
    /// followed), as name → value.
    pub fn xattrs(&self, path: &str) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let (n, _) = self.resolve(path.as_bytes(), false)?;
        Ok(self.index.nodes[n].attrs.xattrs.clone())
    }

    /// The device number (`makedev(major, minor)`) of a device node.
    pub fn rdev(&self, path: &str) -> io::Result<u64> {
        let (n, _) = self.resolve(path.as_bytes(), false)?;
        Ok(self.index.nodes[n].attrs.rdev)
    }

    fn content(&self, path: &[u8]) -> io::Result<ImageFile> {
        let (n, _) = self.resolve(path, true)?;
        let node = &self.index.nodes[n];
        if node.attrs.file_type != FileType::File {
            return Err(not_regular(node.attrs.file_type));
        }
        Ok(self.file_of(n))
    }

    /// The content of the regular file `n`.
    fn file_of(&self, n: usize) -> ImageFile {
        let node = &self.index.nodes[n];
        let source = match (node.data, &self.squash) {
            (Some(d), Some(sq)) if d.store == SQUASH => {
                Source::Squash(sq.clone(), d.offset as usize)
            }
            (Some(d), _) if d.store == KEPT => Source::Kept(self.kept.clone(), d.offset),
            (Some(d), _) if d.store == LAZY => match &self.lazy {
                Some(l) => Source::Lazy(
                    l.clone(),
                    d.offset,
                    self.kept.head(d.offset).map(|at| (self.kept.clone(), at)),
                    // Written out for programs already: read from there.
                    match self.materialised.get() {
                        Some(Ok(m)) => Some((m.files.clone(), n, OnceLock::new())),
                        _ => None,
                    },
                ),
                None => Source::Empty,
            },
            (Some(d), _) => Source::Store(self.stores[d.store as usize].clone(), d.offset),
            (None, _) => Source::Empty,
        };
        ImageFile {
            metadata: self.metadata_of(n),
            source,
        }
    }

    fn walk_from(
        &self,
        n: usize,
        path: &mut Vec<u8>,
        depth: usize,
        options: &WalkOptions,
        visit: &mut dyn FnMut(io::Result<WalkEntry>) -> bool,
    ) {
        let node = &self.index.nodes[n];
        let link = if node.attrs.file_type == FileType::Symlink && options.links {
            Some(super::Link {
                text: node.attrs.link.clone(),
                target: self
                    .resolve(path, true)
                    .map(|(t, _)| self.metadata_of(t))
                    .map_err(Arc::new),
            })
        } else {
            None
        };
        let keep = visit(Ok(WalkEntry {
            path: display_bytes(path),
            raw_path: path.clone(),
            depth,
            metadata: self.metadata_of(n),
            link,
        }));
        if !keep || node.attrs.file_type != FileType::Directory {
            return;
        }
        if options.max_depth.is_some_and(|max| depth >= max) {
            return;
        }
        for (name, &child) in &node.children {
            let len = path.len();
            if !path.ends_with(b"/") {
                path.push(b'/');
            }
            path.extend_from_slice(name);
            self.walk_from(child, path, depth + 1, options, visit);
            path.truncate(len);
        }
    }
}

fn split(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

fn join_path(comps: &[Vec<u8>]) -> Vec<u8> {
    if comps.is_empty() {
        return b"/".to_vec();
    }
    let mut out = Vec::new();
    for c in comps {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    out
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// `pread` until `buf` is full or the file ends.
pub(crate) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Where a regular file's bytes come from.
enum Source {
    /// No content (an empty file).
    Empty,
    /// A window of a store, at this offset.
    Store(Arc<Store>, u64),
    /// File number N of a squashfs, block by block.
    Squash(Arc<squashfs::Squash>, usize),
    /// Kept in memory, at this offset.
    Kept(Arc<Kept>, u64),
    /// A compressed cpio's stream (spilled on the first read), at this
    /// offset; its head kept in memory (at this offset), when it was; and
    /// the file written out for programs (node number, opened on the first
    /// read past the head), read instead of a spill when it can be.
    Lazy(Arc<Lazy>, u64, Option<(Arc<Kept>, u64)>, Option<TreeFile>),
}

/// A file of the tree written out for programs: node, opened when first
/// needed (`None` inside: it could not be, and the spill serves).
type TreeFile = (Arc<materialise::TreeFiles>, usize, OnceLock<Option<File>>);

/// A regular file of an image.
struct ImageFile {
    metadata: Metadata,
    source: Source,
}

impl FileAt for ImageFile {
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let size = self.metadata.size;
        if let Source::Squash(sq, file) = &self.source {
            return sq.read_at(*file, buf, offset);
        }
        if offset >= size {
            return Ok(0);
        }
        let n = buf
            .len()
            .min((size - offset).min(usize::MAX as u64) as usize);
        let (store, start) = match &self.source {
            Source::Empty | Source::Squash(..) => return Ok(0),
            Source::Kept(kept, start) => {
                let from = (start + offset) as usize;
                let got = kept.bytes.get(from..from + n).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the kept content ends inside this entry",
                    )
                })?;
                buf[..n].copy_from_slice(got);
                return Ok(n);
            }
            Source::Lazy(_, _, Some((kept, at)), _) if offset + n as u64 <= size.min(KEEP_HEAD) => {
                let from = (at + offset) as usize;
                buf[..n].copy_from_slice(&kept.bytes[from..from + n]);
                return Ok(n);
            }
            Source::Lazy(lazy, start, _, tree) => {
                let written = tree.as_ref().and_then(|(files, node, opened)| {
                    opened.get_or_init(|| files.open(*node, size)).as_ref()
                });
                if let Some(f) = written {
                    let got = read_full_at(f, &mut buf[..n], offset)?;
                    if got < n {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the written-out file ends early",
                        ));
                    }
                    return Ok(got);
                }
                (lazy.store()?, *start)
            }
            Source::Store(store, start) => (store, *start),
        };
        let got = read_full_at(&store.file, &mut buf[..n], start + offset)?;
        if got < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside this entry's content",
            ));
        }
        Ok(got)
    }
}

impl Target for ImageTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::Image
    }

    fn describe(&self) -> String {
        let mut c: Vec<&str> = self.info.compression.iter().map(|c| c.as_str()).collect();
        if c.is_empty() {
            c.push("uncompressed");
        }
        format!(
            "{}:{} ({}, {} bytes)",
            self.info.format.as_str(),
            self.info.path.display(),
            c.join("+"),
            self.info.compressed_size
        )
    }

    fn has(&self, need: Need) -> bool {
        self.missing(need).is_none()
    }

    fn missing(&self, need: Need) -> Option<String> {
        match need {
            Need::Image => None,
            Need::Live => Some(need.skip_reason().to_string()),
            // Programs run in the tree written out with its owners (as
            // root, or mapped over the caller's subordinate ids), where
            // the image's root is root over all of it: docs/targets.md.
            Need::Exec | Need::Root => materialise::unavailable(),
        }
    }

    /// Writes the tree out once (into a holder's private tmpfs), then runs
    /// the program in the rootfs sandbox over it, in the holder's
    /// namespaces.
    fn exec(&self, req: &super::ExecRequest) -> io::Result<super::ExecOutput> {
        let m = self.tree()?;
        let env = super::merge_env(super::base_env(self.accounts(), 0), &req.env);
        let mut out = super::sandbox::run_entered(
            super::sandbox::Mode::Rootfs { root: m.root() },
            req,
            env,
            Some(m.enter.clone()),
        )?;
        out.isolation = if m.enter.user {
            format!(
                "{}; packed image written out in a user namespace over subordinate ids{}",
                out.isolation,
                match m.devices_left_out {
                    0 => String::new(),
                    n => format!(" ({n} device nodes of the image left out)"),
                }
            )
        } else {
            format!("{}; packed image written out", out.isolation)
        };
        Ok(out)
    }

    fn metadata(&self, path: &str, follow: bool) -> io::Result<Metadata> {
        let (n, _) = self.resolve(path.as_bytes(), follow)?;
        Ok(self.metadata_of(n))
    }

    fn read_link(&self, path: &str) -> io::Result<String> {
        let (n, _) = self.resolve(path.as_bytes(), false)?;
        let a = &self.index.nodes[n].attrs;
        if a.file_type != FileType::Symlink {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a symlink"));
        }
        String::from_utf8(a.link.clone()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("link text {} is not UTF-8", display_bytes(&a.link)),
            )
        })
    }

    fn canonicalize(&self, path: &str) -> io::Result<String> {
        let (_, comps) = self.resolve(path.as_bytes(), true)?;
        Ok(display_bytes(&join_path(&comps)))
    }

    fn read(&self, path: &str, limit: u64) -> io::Result<Vec<u8>> {
        let (n, _) = self.resolve(path.as_bytes(), true)?;
        let a = &self.index.nodes[n].attrs;
        match a.file_type {
            FileType::Directory => return Err(errno(libc::EISDIR)),
            FileType::File => {}
            other => return Err(not_regular(other)),
        }
        if a.size > limit {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("file is larger than the read limit of {limit} bytes"),
            ));
        }
        let file = self.content(path.as_bytes())?;
        let mut buf = vec![0; a.size as usize];
        let mut done = 0;
        while done < buf.len() {
            let got = file.read_at(&mut buf[done..], done as u64)?;
            if got == 0 {
                break;
            }
            done += got;
        }
        Ok(buf)
    }

    fn read_dir(&self, path: &str) -> io::Result<Vec<DirEntry>> {
        let (n, _) = self.resolve(path.as_bytes(), true)?;
        let node = &self.index.nodes[n];
        if node.attrs.file_type != FileType::Directory {
            return Err(errno(libc::ENOTDIR));
        }
        Ok(node
            .children
            .iter()
            .map(|(name, &c)| DirEntry {
                name: display_bytes(name),
                raw_name: name.clone(),
                file_type: self.index.nodes[c].attrs.file_type,
            })
            .collect())
    }

    fn walk(
        &self,
        path: &str,
        options: &WalkOptions,
        visit: &mut dyn FnMut(io::Result<WalkEntry>) -> bool,
    ) -> io::Result<()> {
        // Like RootFs: the start is resolved inside the root, entries below
        // it are reported under the resolved path and never followed.
        let (n, comps) = self.resolve(path.as_bytes(), true)?;
        let mut at = join_path(&comps);
        self.walk_from(n, &mut at, 0, options, visit);
        Ok(())
    }

    fn walk_parallel(
        &self,
        path: &str,
        options: &WalkOptions,
        visit: &(dyn Fn(Visited<'_, '_>) -> bool + Sync),
    ) -> io::Result<()> {
        // The index is in memory: one ordered walk, each entry visited as
        // it comes (nothing collected: a whole-tree check over an image
        // holds no list of its entries), each file opened by its byte path
        // (a name that is not UTF-8 included). `visit` prunes a directory
        // by returning false, as the walk's own callback does.
        let open = |p: &[u8]| -> io::Result<Box<dyn FileAt>> { Ok(Box::new(self.content(p)?)) };
        self.walk(path, options, &mut |e| match e {
            Ok(e) => visit(Ok(&Visit::by_path(&open, &e))),
            // (The index walk reports none today; never dropped if it does.)
            Err(error) => {
                visit(Err(crate::target::WalkError {
                    path: Vec::new(),
                    error,
                }));
                true
            }
        })?;
        Ok(())
    }

    fn accounts(&self) -> &Accounts {
        self.accounts.get_or_init(|| {
            Accounts::parse(
                self.read("/etc/passwd", READ_LIMIT),
                self.read("/etc/group", READ_LIMIT),
            )
        })
    }

    fn memo(&self) -> Option<&Memo> {
        Some(&self.memo)
    }

    fn open(&self, path: &str) -> io::Result<Box<dyn FileAt>> {
        Ok(Box::new(self.content(path.as_bytes())?))
    }

    fn image(&self) -> Option<&ImageInfo> {
        Some(&self.info)
    }

    /// Programs will run: a compressed cpio's tree is written out now,
    /// from a second pass over its stream, and its content read from there
    /// rather than decompressed a third time into a spill. (Other forms
    /// read content in place and write their tree at the first program.)
    /// What goes wrong is said by the first check that runs a program.
    fn will_need(&self, need: Need) {
        if need == Need::Exec && self.lazy.is_some() && materialise::unavailable().is_none() {
            let _ = self.tree();
        }
    }
}
