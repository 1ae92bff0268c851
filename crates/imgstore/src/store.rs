//! [`Store`]: a data root opened the way dockerd opens it, read-only or for writing.
//!
//! Opening reads the layer store (`layerdb`), the image configs (`imagedb`) and the reference
//! store (`repositories.json`) and restores them with dockerd 20.10's rules: a layer whose
//! metadata does not load is skipped (and so are its children), an image whose config does
//! not verify or parse, whose OS is not supported, or whose top layer is not loaded is not
//! restored. Nothing is created, changed or cleaned up by opening; what was skipped is kept
//! (with the reason) for `fsck`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use digest_set::{Digest, DigestSet, LookupError};
use image_store::Image;
use image_store::time::Timestamp;
use rayon::prelude::*;

use crate::dataroot::{DataRoot, DataRootError, RootLock};
use crate::reference::{AnyReference, ReferenceError};
use crate::refstore::{RefStore, RefStoreError};

/// What went wrong opening or using a [`Store`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Finding or locking the data root failed.
    #[error(transparent)]
    DataRoot(#[from] DataRootError),
    /// The reference store failed.
    #[error(transparent)]
    RefStore(#[from] RefStoreError),
    /// An argument is not a valid reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// No image matches the argument (dockerd's message).
    #[error("No such image: {}", .0.escape_debug())]
    NoSuchImage(String),
    /// A container uses the image a reference names (dockerd's message).
    #[error(
        "conflict: unable to remove repository reference {reference:?} (must force) - container {container} is using its referenced image {image}"
    )]
    ReferenceInUse {
        /// The reference given.
        reference: String,
        /// The container's short ID.
        container: String,
        /// The image's short ID.
        image: String,
    },
    /// `rm` of a reference that is not in the reference store (e.g. `name:tag@digest`).
    #[error("reference does not exist: {0}")]
    ReferenceMissing(String),
    /// The image store has no such image (dockerd's message when pruning reaches a parent
    /// that was not restored).
    #[error("unrecognized image ID {0:?}")]
    UnrecognizedImage(String),
    /// A bad `ls` filter.
    #[error(transparent)]
    Filter(#[from] crate::output::FilterError),
    /// A short ID matches several images.
    #[error("{term:?} is ambiguous: it matches {count} images: {}", .candidates.join(", "))]
    Ambiguous {
        /// The argument.
        term: String,
        /// How many images match.
        count: usize,
        /// Some of them (short IDs).
        candidates: Vec<String>,
    },
    /// A delete conflict (dockerd's message).
    #[error("conflict: unable to delete {short} ({force}) - {message}")]
    Conflict {
        /// The image's short ID.
        short: String,
        /// `must be forced` or `cannot be forced`.
        force: &'static str,
        /// Why.
        message: String,
    },
    /// The layer an image needs is gone.
    #[error("layer does not exist: {0}")]
    LayerMissing(Digest),
    /// A history that names more layers than the image has.
    #[error("too many non-empty layers in History section")]
    TooManyLayers,
    /// The storage driver's content cannot be removed by this tool.
    #[error("removing layers of storage driver {0:?} is not supported (only vfs and overlay2)")]
    UnsupportedDriver(String),
    /// An I/O failure.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl From<crate::fsutil::IoFailure> for Error {
    fn from((op, path, source): crate::fsutil::IoFailure) -> Self {
        Error::Io { op, path, source }
    }
}

/// How to open a store.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// The data root.
    pub root: PathBuf,
    /// The storage driver; `None` picks the only one present (or `vfs`).
    pub driver: Option<String>,
    /// Open for writing: take the exclusive lock instead of the shared one.
    pub write: bool,
    /// A missing data root is not an error: reads see an empty store, writes create
    /// `<root>/image/<driver>` (for the per-user default root).
    pub create_missing: bool,
}

/// A layer loaded from `layerdb/sha256/<chain-id>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The chain ID (the directory name).
    pub chain_id: Digest,
    /// The `diff` file: the digest of the layer's own tar stream.
    pub diff_id: Digest,
    /// The `size` file: the layer's own content size.
    pub diff_size: i64,
    /// The size of the whole chain (this layer and its parents).
    pub size: i64,
    /// The `cache-id`: the driver's ID for the content.
    pub cache_id: String,
    /// The parent chain ID, if any.
    pub parent: Option<Digest>,
    /// The layer directory.
    pub dir: PathBuf,
}

/// A layer directory that did not load, and why (dockerd logs these and skips them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLayer {
    /// The chain ID from the directory name.
    pub chain_id: Digest,
    /// The directory.
    pub dir: PathBuf,
    /// Why it did not load.
    pub reason: String,
}

/// A restored image.
#[derive(Debug, Clone)]
pub struct ImageEntry {
    /// The config, its bytes and typed model.
    pub image: Image,
    /// The `parent` metadata as dockerd reads it (any string, unvalidated); `None` if unset.
    pub parent: Option<String>,
    /// The top layer's chain ID, `None` for an image without layers.
    pub chain_id: Option<Digest>,
    /// The size of the top layer's chain (0 without layers).
    pub size: i64,
    /// `created`, read when the store was opened (`None` when absent or null).
    pub created: Option<Timestamp>,
    /// [`ImageEntry::parent`] parsed, when it is a digest.
    parent_digest: Option<Digest>,
}

impl ImageEntry {
    /// Forgets the parent link (after the parent was deleted).
    pub(crate) fn clear_parent(&mut self) {
        self.parent = None;
        self.parent_digest = None;
    }

    /// The image ID.
    pub fn id(&self) -> Digest {
        self.image.id().0
    }

    /// `created` as Unix seconds (Go's zero time when absent).
    pub fn created_unix(&self) -> i64 {
        self.created.map(|t| t.unix_secs()).unwrap_or(GO_ZERO_UNIX)
    }

    /// The parent ID if the metadata names a valid digest.
    pub fn parent_id(&self) -> Option<Digest> {
        self.parent_digest
    }
}

/// Unix seconds of Go's zero time.
pub const GO_ZERO_UNIX: i64 = -62_135_596_800;

/// An image config that was not restored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedImage {
    /// The image ID (file name).
    pub id: Digest,
    /// The config file.
    pub path: PathBuf,
    /// What is wrong.
    pub kind: SkipKind,
}

/// Why an image was not restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipKind {
    /// The config could not be read.
    Unreadable(String),
    /// The config does not hash to its name.
    Verify(Digest),
    /// The config does not parse as an image config.
    Invalid(String),
    /// The OS in the config is not supported here.
    Os(String),
    /// Its top layer is not loaded.
    LayerMissing(Digest),
}

/// A data root opened and restored.
#[derive(Debug)]
pub struct Store {
    root: DataRoot,
    _lock: Option<RootLock>,
    refs: RefStore,
    layers: BTreeMap<Digest, Layer>,
    bad_layers: Vec<BadLayer>,
    layer_names: Vec<(PathBuf, String)>,
    mount_parents: Vec<(PathBuf, Option<Digest>)>,
    images: BTreeMap<Digest, ImageEntry>,
    skipped: Vec<SkippedImage>,
    content_names: Vec<(PathBuf, String)>,
    children: HashMap<Digest, BTreeSet<Digest>>,
    ids: DigestSet,
    write: bool,
}

/// `created` alone, without decoding the rest of the config (the config already passed the
/// image store's check, so a failure here only means "absent").
fn lean_created(raw: &[u8]) -> Option<Timestamp> {
    #[derive(serde::Deserialize)]
    struct Lean {
        #[serde(default)]
        created: Option<String>,
    }
    let lean: Lean = serde_json::from_slice(raw).ok()?;
    image_store::time::parse_rfc3339(&lean.created?).ok()
}

/// Reads a small file; `Ok(None)` when it does not exist.
fn read_opt(path: &Path) -> Result<Option<Vec<u8>>, String> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("read {}: {e}", path.display())),
    }
}

/// A `sha256` digest from its 64 lowercase hex characters (a directory or file name).
fn parse_hex64(s: &str) -> Option<Digest> {
    fn val(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut raw = [0u8; 32];
    for (i, byte) in raw.iter_mut().enumerate() {
        *byte = (val(b[2 * i])? << 4) | val(b[2 * i + 1])?;
    }
    Some(Digest::from_sha256_bytes(raw))
}

/// The raw files of one layer directory.
struct RawLayer {
    dir: PathBuf,
    parsed: Result<(Digest, i64, String, Option<Digest>), String>,
}

fn read_raw_layer(
    parent: Option<&crate::fsutil::Dir>,
    dir: &Path,
) -> Result<(Digest, i64, String, Option<Digest>), String> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Files are opened relative to `layerdb/sha256` as `<hex>/<file>`: one path component
    // more per lookup, but no open and close of the layer directory itself.
    let own;
    let (handle, prefix) = match parent {
        Some(p) => (p, format!("{name}/")),
        None => {
            own = crate::fsutil::Dir::open(dir)
                .map_err(|e| format!("open {}: {e}", dir.display()))?;
            (&own, String::new())
        }
    };
    let opt = |file: &str| -> Result<Option<Vec<u8>>, String> {
        handle
            .read_opt(&format!("{prefix}{file}"))
            .map_err(|e| format!("read {}: {e}", dir.join(file).display()))
    };
    let req = |name: &str| -> Result<Vec<u8>, String> {
        opt(name)?.ok_or_else(|| format!("{} is missing", dir.join(name).display()))
    };
    let diff = req("diff")?;
    let diff = String::from_utf8_lossy(&diff);
    let diff_id: Digest = diff
        .trim()
        .parse()
        .map_err(|e| format!("failed to get diff id: {}: {e}", dir.join("diff").display()))?;
    let size = req("size")?;
    // dockerd: strconv.ParseInt on the raw bytes, no trimming.
    let size: i64 = std::str::from_utf8(&size)
        .ok()
        .and_then(|s| match s.strip_prefix('+') {
            Some(rest) => rest.parse().ok(),
            None => s.parse().ok(),
        })
        .ok_or_else(|| {
            format!(
                "failed to get size: {} holds {:?}, not a decimal number",
                dir.join("size").display(),
                String::from_utf8_lossy(&size)
            )
        })?;
    let cache = req("cache-id")?;
    let cache_id = String::from_utf8_lossy(&cache).trim().to_owned();
    if cache_id.is_empty() {
        return Err(format!(
            "failed to get cache id: {} is empty",
            dir.join("cache-id").display()
        ));
    }
    let parent = match opt("parent")? {
        None => None,
        Some(p) => Some(
            String::from_utf8_lossy(&p)
                .trim()
                .parse::<Digest>()
                .map_err(|e| {
                    format!(
                        "failed to get parent: {}: {e}",
                        dir.join("parent").display()
                    )
                })?,
        ),
    };
    if let Some(d) = opt("descriptor.json")?
        && serde_json::from_slice::<serde_json::Value>(&d).is_err()
    {
        return Err(format!(
            "failed to get descriptor: {} is not JSON",
            dir.join("descriptor.json").display()
        ));
    }
    Ok((diff_id, size, cache_id, parent))
}

fn list_dir(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::Io {
                op: "read directory",
                path: dir.to_owned(),
                source: e,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::Io {
            op: "read directory",
            path: dir.to_owned(),
            source: e,
        })?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
            is_dir,
        ));
    }
    out.sort();
    Ok(out)
}

/// Image configs read and checked, and stray names in `content/sha256`.
type LoadedImages = (
    Vec<Result<ImageEntry, Box<SkippedImage>>>,
    Vec<(PathBuf, String)>,
);

/// Reads and checks every image config (in parallel), without looking at layers yet.
fn read_images(root: &DataRoot) -> Result<LoadedImages, Error> {
    let imagedb = root.imagedb_dir();
    let content = imagedb.join("content").join("sha256");
    let meta = imagedb.join("metadata").join("sha256");
    let mut candidates = Vec::new();
    let mut content_names = Vec::new();
    for (name, path, _) in list_dir(&content)? {
        match parse_hex64(&name) {
            Some(d) => candidates.push((d, path)),
            None => content_names.push((path, name)),
        }
    }
    let content_dir = crate::fsutil::Dir::open(&content).ok();
    let meta_dir = crate::fsutil::Dir::open(&meta).ok();
    let loaded: Vec<Result<ImageEntry, Box<SkippedImage>>> = candidates
        .into_par_iter()
        .map(|(id, path)| {
            let skip = |kind| {
                Box::new(SkippedImage {
                    id,
                    path: path.clone(),
                    kind,
                })
            };
            let hex = id.hex();
            let raw = match &content_dir {
                Some(dir) => dir.read_opt(&hex).and_then(|r| {
                    r.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
                }),
                None => std::fs::read(&path),
            }
            .map_err(|e| skip(SkipKind::Unreadable(e.to_string())))?;
            let actual = Digest::sha256(&raw);
            if actual != id {
                return Err(skip(SkipKind::Verify(actual)));
            }
            let image = Image::from_verified_bytes(image_store::ImageId(id), raw)
                .map_err(|e| skip(SkipKind::Invalid(e.to_string())))?;
            if !image.is_os_supported() {
                return Err(skip(SkipKind::Os(image.config().os.clone())));
            }
            let parent = meta_dir
                .as_ref()
                .and_then(|dir| dir.read_opt(&format!("{hex}/parent")).ok().flatten())
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            let chain_id = image.chain_id().map(|c| c.0);
            let created = lean_created(image.raw_json());
            let parent_digest = parent.as_deref().and_then(|p| p.parse().ok());
            Ok(ImageEntry {
                image,
                parent,
                chain_id,
                size: 0,
                created,
                parent_digest,
            })
        })
        .collect();
    Ok((loaded, content_names))
}

impl Store {
    /// Opens and restores a data root. Read-only opens take a shared lock and change nothing;
    /// write opens take the exclusive lock.
    pub fn open(opts: &OpenOptions) -> Result<Store, Error> {
        let driver = opts.driver.as_deref();
        let root = match (opts.create_missing, opts.write) {
            (true, true) => DataRoot::open(opts.root.clone(), driver, true)?,
            (true, false) => DataRoot::resolve(opts.root.clone(), driver)?,
            (false, _) => DataRoot::open(opts.root.clone(), driver, false)?,
        };
        let lock = root.lock(opts.write)?;
        let refs = RefStore::load(&root.repositories_json())?;
        let mut store = Store {
            root,
            _lock: lock,
            refs,
            layers: BTreeMap::new(),
            bad_layers: Vec::new(),
            layer_names: Vec::new(),
            mount_parents: Vec::new(),
            images: BTreeMap::new(),
            skipped: Vec::new(),
            content_names: Vec::new(),
            children: HashMap::new(),
            ids: DigestSet::new(),
            write: opts.write,
        };
        let t = std::time::Instant::now();
        // Layers and image configs are read at the same time; only then are images checked
        // against the layers.
        let image_root = store.root.clone();
        let (layers, images) = rayon::join(|| store.load_layers(), || read_images(&image_root));
        layers?;
        let layers_done = t.elapsed();
        let (loaded, content_names) = images?;
        store.content_names = content_names;
        store.finish_images(loaded);
        tracing::debug!(
            layers = store.layers.len(),
            bad_layers = store.bad_layers.len(),
            images = store.images.len(),
            skipped_images = store.skipped.len(),
            layers_ms = layers_done.as_millis() as u64,
            images_ms = (t.elapsed() - layers_done).as_millis() as u64,
            "data root restored"
        );
        Ok(store)
    }

    fn load_layers(&mut self) -> Result<(), Error> {
        let layerdb = self.root.layerdb_dir();
        let sha_dir = layerdb.join("sha256");
        let mut candidates = Vec::new();
        for (name, path, is_dir) in list_dir(&sha_dir)? {
            if let Some(d) = parse_hex64(&name).filter(|_| is_dir) {
                candidates.push((d, path));
            } else {
                self.layer_names.push((path, name));
            }
        }
        for (name, path, _) in list_dir(&layerdb.join("tmp"))? {
            self.layer_names.push((path, format!("tmp/{name}")));
        }
        for (name, path, is_dir) in list_dir(&layerdb)? {
            if !matches!(name.as_str(), "sha256" | "tmp" | "mounts") || !is_dir {
                self.layer_names.push((path, name));
            }
        }
        for (_, path, is_dir) in list_dir(&layerdb.join("mounts"))? {
            if !is_dir {
                continue;
            }
            let parent = read_opt(&path.join("parent"))
                .ok()
                .flatten()
                .and_then(|p| String::from_utf8_lossy(&p).trim().parse().ok());
            self.mount_parents.push((path, parent));
        }
        let sha = crate::fsutil::Dir::open(&sha_dir).ok();
        let raw: HashMap<Digest, RawLayer> = candidates
            .into_par_iter()
            .map(|(d, dir)| {
                let parsed = read_raw_layer(sha.as_ref(), &dir);
                (d, RawLayer { dir, parsed })
            })
            .collect();
        // Resolve chains, memoised, iteratively (cycles and deep chains cannot overflow):
        // the chain size of each layer, or why it does not load.
        let mut result: HashMap<Digest, Result<i64, String>> = HashMap::with_capacity(raw.len());
        let mut stack: Vec<Digest> = Vec::new();
        for key in raw.keys() {
            if result.contains_key(key) {
                continue;
            }
            stack.clear();
            stack.push(*key);
            while let Some(&top) = stack.last() {
                let Some(entry) = raw.get(&top) else {
                    // Unreachable: only parents that exist are pushed.
                    stack.pop();
                    continue;
                };
                let outcome: Option<Result<i64, String>> = match &entry.parsed {
                    Err(e) => Some(Err(e.clone())),
                    Ok((_, diff_size, _, None)) => Some(Ok(*diff_size)),
                    Ok((_, diff_size, _, Some(p))) => match result.get(p) {
                        Some(Ok(size)) => Some(Ok(size.saturating_add(*diff_size))),
                        Some(Err(_)) => {
                            Some(Err(format!("its parent layer {} did not load", p.short())))
                        }
                        None if !raw.contains_key(p) => Some(Err(format!(
                            "its parent layer {} does not exist",
                            p.short()
                        ))),
                        None if stack.contains(p) => Some(Err(format!(
                            "its parent chain loops through layer {}",
                            p.short()
                        ))),
                        None => {
                            stack.push(*p);
                            None
                        }
                    },
                };
                if let Some(outcome) = outcome {
                    stack.pop();
                    result.insert(top, outcome);
                }
            }
        }
        for (chain_id, r) in raw {
            match (result.remove(&chain_id), r.parsed) {
                (Some(Ok(size)), Ok((diff_id, diff_size, cache_id, parent))) => {
                    self.layers.insert(
                        chain_id,
                        Layer {
                            chain_id,
                            diff_id,
                            diff_size,
                            size,
                            cache_id,
                            parent,
                            dir: r.dir,
                        },
                    );
                }
                (Some(Err(reason)), _) | (None, Err(reason)) => {
                    self.bad_layers.push(BadLayer {
                        chain_id,
                        dir: r.dir,
                        reason,
                    });
                }
                (None, Ok(_)) | (Some(Ok(_)), Err(_)) => {}
            }
        }
        self.bad_layers.sort_by_key(|a| a.chain_id);
        Ok(())
    }

    fn finish_images(&mut self, loaded: Vec<Result<ImageEntry, Box<SkippedImage>>>) {
        let content = self.root.imagedb_dir().join("content").join("sha256");
        for r in loaded {
            match r {
                Ok(mut e) => {
                    if let Some(c) = e.chain_id {
                        match self.layers.get(&c) {
                            Some(l) => e.size = l.size,
                            None => {
                                self.skipped.push(SkippedImage {
                                    id: e.id(),
                                    path: content.join(e.id().hex()),
                                    kind: SkipKind::LayerMissing(c),
                                });
                                continue;
                            }
                        }
                    }
                    self.ids.insert(e.id());
                    self.images.insert(e.id(), e);
                }
                Err(s) => self.skipped.push(*s),
            }
        }
        self.skipped.sort_by_key(|a| a.id);
        // Pass 2: children of restored parents.
        let links: Vec<(Digest, Digest)> = self
            .images
            .values()
            .filter_map(|e| e.parent_id().map(|p| (p, e.id())))
            .filter(|(p, _)| self.images.contains_key(p))
            .collect();
        for (p, c) in links {
            self.children.entry(p).or_default().insert(c);
        }
    }

    /// The data root.
    pub fn data_root(&self) -> &DataRoot {
        &self.root
    }

    /// The reference store.
    pub fn refs(&self) -> &RefStore {
        &self.refs
    }

    /// Restored images by ID.
    pub fn images(&self) -> &BTreeMap<Digest, ImageEntry> {
        &self.images
    }

    /// A restored image.
    pub fn image(&self, id: &Digest) -> Option<&ImageEntry> {
        self.images.get(id)
    }

    /// Loaded layers by chain ID.
    pub fn layers(&self) -> &BTreeMap<Digest, Layer> {
        &self.layers
    }

    /// Layer directories that did not load.
    pub fn bad_layers(&self) -> &[BadLayer] {
        &self.bad_layers
    }

    /// Image configs that were not restored.
    pub fn skipped_images(&self) -> &[SkippedImage] {
        &self.skipped
    }

    /// Entries of `imagedb/content/sha256` that are not image IDs (temp files...).
    pub fn stray_content(&self) -> &[(PathBuf, String)] {
        &self.content_names
    }

    /// Entries of `layerdb` that are not layers (`-removing` dirs, `tmp/` leftovers...).
    pub fn stray_layer_entries(&self) -> &[(PathBuf, String)] {
        &self.layer_names
    }

    /// RW mounts and the layer each names as parent.
    pub fn mounts(&self) -> &[(PathBuf, Option<Digest>)] {
        &self.mount_parents
    }

    /// The restored children of a restored image, sorted.
    pub fn children(&self, id: &Digest) -> Vec<Digest> {
        self.children
            .get(id)
            .map(|c| c.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Tagged and digest references of an image, familiar strings, sorted as dockerd sorts.
    pub fn repo_tags_digests(&self, id: &Digest) -> (Vec<String>, Vec<String>) {
        let mut tags = Vec::new();
        let mut digests = Vec::new();
        for r in self.refs.references(id) {
            if r.is_canonical() {
                digests.push(r.familiar_string());
            }
            if r.tag().is_some() {
                tags.push(r.familiar_string());
            }
        }
        (tags, digests)
    }

    /// Resolves an image argument as dockerd does: a full ID, then a reference, then a unique
    /// short-ID prefix.
    pub fn resolve(&self, arg: &str) -> Result<Digest, Error> {
        let parsed = AnyReference::parse(arg)?;
        let not_found = || {
            Error::NoSuchImage(match &parsed {
                AnyReference::Id(d) => d.to_string(),
                AnyReference::Named(r) => r.clone().with_default_tag().familiar_string(),
            })
        };
        match &parsed {
            AnyReference::Id(d) => {
                return if self.images.contains_key(d) {
                    Ok(*d)
                } else {
                    Err(not_found())
                };
            }
            AnyReference::Named(r) => {
                if let Some(id) = self.refs.get(r)
                    && self.images.contains_key(&id)
                {
                    return Ok(id);
                }
            }
        }
        match self.ids.lookup(arg) {
            Ok(d) => Ok(d),
            Err(LookupError::Ambiguous {
                count, candidates, ..
            }) => Err(Error::Ambiguous {
                term: arg.to_owned(),
                count,
                candidates: candidates.iter().map(|c| c.short()).collect(),
            }),
            Err(_) => Err(not_found()),
        }
    }

    /// The `lastUpdated` metadata of an image (read on demand): `Ok(None)` when unset,
    /// `Err(text)` when it holds something that is not an RFC 3339 time.
    pub fn last_updated(&self, id: &Digest) -> Result<Option<Timestamp>, String> {
        let p = self
            .root
            .imagedb_dir()
            .join("metadata")
            .join("sha256")
            .join(id.hex())
            .join("lastUpdated");
        match read_opt(&p)? {
            None => Ok(None),
            Some(b) => {
                let text = String::from_utf8_lossy(&b).into_owned();
                image_store::time::parse_rfc3339(&text)
                    .map(Some)
                    .map_err(|_| text)
            }
        }
    }

    /// The chain IDs of an image's layers, bottom first.
    pub fn image_chain(&self, e: &ImageEntry) -> Vec<Digest> {
        let mut out = Vec::new();
        let mut chain: Option<layer_store::ChainId> = None;
        for d in e.image.diff_ids() {
            let next = match chain {
                None => layer_store::ChainId(d.0),
                Some(c) => c.then(&d),
            };
            out.push(next.0);
            chain = Some(next);
        }
        out
    }

    /// True when the store was opened for writing.
    pub fn is_writable(&self) -> bool {
        self.write
    }

    pub(crate) fn refs_mut(&mut self) -> &mut RefStore {
        &mut self.refs
    }

    pub(crate) fn children_map_mut(&mut self) -> &mut HashMap<Digest, BTreeSet<Digest>> {
        &mut self.children
    }

    pub(crate) fn images_mut(&mut self) -> &mut BTreeMap<Digest, ImageEntry> {
        &mut self.images
    }

    pub(crate) fn layers_mut(&mut self) -> &mut BTreeMap<Digest, Layer> {
        &mut self.layers
    }

    pub(crate) fn ids_mut(&mut self) -> &mut DigestSet {
        &mut self.ids
    }
}
