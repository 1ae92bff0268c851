//! [`Store`]: a data root opened the way dockerd opens it, read-only or for writing.
//!
//! Opening builds the project's stores on the data root and lets them restore it with
//! dockerd 20.10's rules: a [`LayerStore`] on `layerdb` (a layer whose metadata does not load
//! is skipped, and so are its children) and an [`ImageStore`] over an
//! [`FsBackend`] on `imagedb` (an image whose config does not verify
//! or parse, whose OS is not supported, or whose top layer is not loaded is not restored).
//! The reference store (`repositories.json`) is imgstore's own. Read-only opens create,
//! change and clean nothing; what restore skipped is kept (with the reason) for `fsck`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use digest_set::Digest;
use image_store::time::Timestamp;
use image_store::{Image, ImageId, ImageInfo, ImageStore, Loaded, SearchError};
use imagedb_fs::{FsBackend, MemBackend, StoreBackend};
use layer_store::LayerStore;

use crate::dataroot::{DEFAULT_LOCK_TIMEOUT, DataRoot, IfMissing, LockKind, RootLock};
use crate::error::{LookupError, OpenError};
use crate::reference::AnyReference;
use crate::refstore::RefStore;
use crate::repair::Action;
use crate::snapshot::{SnapshotUse, Snapshots};

/// Completes what interrupted writes left in the imagedb, under the exclusive lock: removes
/// temp files, and the metadata of images whose config is gone (an `rm` killed between the
/// two steps of `ImageStore::delete`, which removes the config first).
fn finish_interrupted_writes(
    backend: &FsBackend,
    metadata_dir: &std::path::Path,
    done: &mut Vec<Action>,
) -> Result<(), OpenError> {
    let report = backend.cleanup()?;
    for path in &report.removed {
        tracing::info!(path = %path.display(), "removed a temp file an interrupted write left");
        done.push(Action::removed(path, "temp file of an interrupted write"));
    }
    let configs: std::collections::HashSet<_> = backend.walk()?.into_iter().collect();
    for id in backend.metadata_digests()? {
        if !configs.contains(&id) {
            match backend.delete(&id) {
                Ok(()) | Err(imagedb_fs::Error::NotFound { .. }) => {
                    tracing::info!(image = %id, "removed the metadata of a deleted image");
                    done.push(Action::removed(
                        &metadata_dir.join(id.hex()),
                        "metadata of an image whose deletion was interrupted",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// Names of the notes `rm` leaves while it deletes an image: `.imgstore-release-<chain hex>`
/// in `image/<driver>`, holding the chain ID of the image's top layer.
const RELEASE_PREFIX: &str = ".imgstore-release-";

/// Checks the directories of the image store a data root holds: `image` may be a link to
/// another disk (resolved once), but `image/<driver>` and the directories of the imagedb and
/// the layerdb must be real directories where they exist. A symbolic link there is an
/// error naming it, never followed.
fn check_layout(root: &DataRoot) -> Result<(), OpenError> {
    let top = match durable_fs::Dir::open(root.root()) {
        Ok(d) => d,
        Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let Some(image) = top.open_top_dir("image")? else {
        return Ok(());
    };
    let Some(store) = image.open_dir(root.driver())? else {
        return Ok(());
    };
    for sub in [
        "imagedb",
        "imagedb/content",
        "imagedb/content/sha256",
        "imagedb/metadata",
        "imagedb/metadata/sha256",
        "layerdb",
    ] {
        store.open_dir(sub)?;
    }
    Ok(())
}

/// How to open a store.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// The data root.
    pub root: PathBuf,
    /// The storage driver; `None` picks the only one present (or `vfs`).
    pub driver: Option<String>,
    /// Open for writing: take the exclusive lock instead of the shared one, and open the
    /// layer store read-write (it then cleans leftovers of interrupted writes, as dockerd's
    /// start does, and deletes layers whose last reference goes).
    pub write: bool,
    /// A missing data root is not an error: reads see an empty store, writes create
    /// `<root>/image/<driver>` (for the per-user default root).
    pub create_missing: bool,
    /// How long to wait for a lock another process holds; `None`:
    /// [`DEFAULT_LOCK_TIMEOUT`], zero: fail at once.
    pub lock_timeout: Option<std::time::Duration>,
    /// Where read-only opens keep snapshots of their restore
    /// ([`snapshot`](crate::snapshot)): used while the data root provably did not change,
    /// written when it did. `None`: every open reads the data root in full. Write opens
    /// never use them.
    pub snapshots: Option<Snapshots>,
}

/// The image store imgstore works on: configs in the imagedb (or an empty in-memory store
/// when a read-only open finds no imagedb), layers in the layerdb.
pub type Images = ImageStore<Box<dyn StoreBackend>, LayerStore>;

/// A restored image, as the porcelain shows it: what the image store keeps of it in memory
/// and what the layer store knows of its top layer. The config itself comes from
/// [`Store::config`].
#[derive(Debug, Clone)]
pub struct ImageEntry {
    /// The image ID.
    pub id: Digest,
    /// The image store's parent link (possibly naming an image that is not restored).
    pub parent: Option<Digest>,
    /// The top layer's chain ID, `None` for an image without layers.
    pub chain_id: Option<Digest>,
    /// The size of the top layer's chain (0 without layers).
    pub size: i64,
    /// `created` (`None` when absent or null).
    pub created: Option<Timestamp>,
}

impl ImageEntry {
    /// The image ID.
    pub fn id(&self) -> Digest {
        self.id
    }

    /// `created` as Unix seconds (Go's zero time when absent).
    pub fn created_unix(&self) -> i64 {
        self.created.map(|t| t.unix_secs()).unwrap_or(GO_ZERO_UNIX)
    }

    /// The parent ID, if the image has a valid parent link.
    pub fn parent_id(&self) -> Option<Digest> {
        self.parent
    }
}

/// Unix seconds of Go's zero time.
pub use image_store::time::GO_ZERO_UNIX;

/// A data root opened and restored.
pub struct Store {
    root: DataRoot,
    _lock: Option<RootLock>,
    refs: RefStore,
    images: Images,
    layer_outcome: layer_store::RestoreReport,
    image_report: image_store::RestoreReport,
    write: bool,
    snapshot: SnapshotUse,
    recovered: Vec<Action>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.root)
            .field("images", &self.images.len())
            .field("layers", &self.layer_store().len())
            .field("write", &self.write)
            .finish_non_exhaustive()
    }
}

/// The content driver of a write open: the driver's content is removed with its layers.
/// `None` for drivers whose content this tool cannot remove (their layers are opened
/// read-only, so nothing is deleted without its content).
fn content_driver(root: &DataRoot) -> Result<Option<Box<dyn layer_store::Driver>>, OpenError> {
    Ok(match root.driver() {
        "vfs" => Some(Box::new(layer_store::VfsDriver::new(root.driver_dir())?)),
        "overlay2" => Some(Box::new(layer_store::Overlay2Driver::new(
            root.driver_dir(),
        ))),
        _ => None,
    })
}

/// The storage driver of `root` for reading its content: creates and removes nothing. `None`
/// for drivers this tool does not know.
fn reading_driver(root: &DataRoot) -> Option<Box<dyn layer_store::Driver>> {
    let home = root.driver_dir();
    match root.driver() {
        "vfs" => Some(Box::new(layer_store::VfsDriver::existing(home))),
        "overlay2" => Some(Box::new(layer_store::Overlay2Driver::new(home))),
        _ => None,
    }
}

impl Store {
    /// Opens and restores a data root. Read-only opens take a shared lock and change nothing;
    /// write opens take the exclusive lock.
    pub fn open(opts: &OpenOptions) -> Result<Store, OpenError> {
        let driver = opts.driver.as_deref();
        let root = match (opts.create_missing, opts.write) {
            (true, true) => DataRoot::open(opts.root.clone(), driver, IfMissing::Create)?,
            (true, false) => DataRoot::resolve(opts.root.clone(), driver)?,
            (false, _) => DataRoot::open(opts.root.clone(), driver, IfMissing::Fail)?,
        };
        check_layout(&root)?;
        let kind = match opts.write {
            true => LockKind::Exclusive,
            false => LockKind::Shared,
        };
        let timeout = opts.lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT);
        let lock = root.lock(kind, timeout)?;
        let t = std::time::Instant::now();
        let (refs, restored) = if opts.write {
            // Nothing is cleaned up when `repositories.json` cannot be read.
            let refs = RefStore::load(&root.repositories_json())?;
            (Ok(refs), Self::restore(opts, &root, t))
        } else {
            // Read while the stores restore.
            rayon::join(
                || RefStore::load(&root.repositories_json()),
                || Self::restore(opts, &root, t),
            )
        };
        let (refs, (loaded, (layers, layer_outcome), layers_done, snapshot, mut recovered)) =
            (refs?, restored?);
        let (images, image_report) = loaded.attach(layers)?;
        tracing::debug!(
            layers = layer_outcome.restored,
            bad_layers = layer_outcome.skipped.len(),
            images = image_report.restored,
            skipped_images = image_report.skipped.len(),
            layers_ms = layers_done.as_millis() as u64,
            total_ms = t.elapsed().as_millis() as u64,
            "data root restored"
        );
        for l in &layer_outcome.leftovers {
            if l.cleaned {
                recovered.push(Action::removed(
                    &l.path,
                    match l.kind {
                        layer_store::LeftoverKind::Staging => {
                            "staging directory of an interrupted layer write, with its content"
                        }
                        layer_store::LeftoverKind::Removing => {
                            "layer of an interrupted deletion, with its content"
                        }
                    },
                ));
            }
        }
        let mut store = Store {
            root,
            _lock: lock,
            refs,
            images,
            layer_outcome,
            image_report,
            write: opts.write,
            snapshot,
            recovered,
        };
        if opts.write {
            // Temp files first: a save of repositories.json below would remove its own
            // silently.
            store.remove_temp_files()?;
            store.finish_releases()?;
            store.finish_removal()?;
        }
        Ok(store)
    }

    /// The stores of `root` restored (a [`Loaded`] image store, the layer store and its
    /// report), when the layers were done, and how the snapshot was used.
    #[allow(clippy::type_complexity)]
    fn restore(
        opts: &OpenOptions,
        root: &DataRoot,
        t: std::time::Instant,
    ) -> Result<
        (
            Loaded<Box<dyn StoreBackend>>,
            (LayerStore, layer_store::RestoreReport),
            std::time::Duration,
            SnapshotUse,
            Vec<Action>,
        ),
        OpenError,
    > {
        let layerdb = root.layerdb_dir();
        // A read-only open reads layer content (`save`) through a driver that creates and
        // removes nothing.
        let content = match opts.write {
            true => content_driver(root)?,
            false => reading_driver(root),
        };
        let imagedb = root.imagedb_dir();
        let on_disk = opts.write
            || !matches!(
                std::fs::symlink_metadata(imagedb.join("content").join("sha256")),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound
            );
        let read_backend = || -> Result<Box<dyn StoreBackend>, OpenError> {
            Ok(match on_disk {
                true => Box::new(FsBackend::open_existing(&imagedb)?),
                false => Box::new(MemBackend::new()),
            })
        };
        let mut snapshot = SnapshotUse::default();
        let mut recovered = Vec::new();
        let (loaded, layers, layers_done) = match &opts.snapshots {
            Some(snaps) if !opts.write => {
                let driver = || -> Box<dyn layer_store::Driver> {
                    reading_driver(root).unwrap_or_else(|| Box::new(layer_store::NullDriver))
                };
                let restored =
                    crate::snapshot::restore(snaps, root, &read_backend, &driver, on_disk)?;
                snapshot = restored.usage;
                (
                    restored.loaded,
                    (restored.layers, restored.layer_report),
                    t.elapsed(),
                )
            }
            _ => {
                let backend: Box<dyn StoreBackend> = if opts.write {
                    let backend = FsBackend::open(&imagedb)?;
                    finish_interrupted_writes(
                        &backend,
                        &imagedb.join("metadata").join("sha256"),
                        &mut recovered,
                    )?;
                    Box::new(backend)
                } else {
                    read_backend()?
                };
                // The layer store and the image configs are read at the same time (the
                // configs do not need the layers); the image store then takes its layers.
                let (loaded, layers) = rayon::join(
                    || ImageStore::load(backend).map_err(Box::new),
                    || {
                        let opened = match (opts.write, content) {
                            (true, Some(d)) => LayerStore::open(layerdb, d),
                            (false, Some(d)) => LayerStore::open_read_only(layerdb, d),
                            (_, None) => LayerStore::open_read_only(
                                layerdb,
                                Box::new(layer_store::NullDriver),
                            ),
                        };
                        (opened, t.elapsed())
                    },
                );
                (loaded.map_err(OpenError::ImageStore)?, layers.0?, layers.1)
            }
        };
        Ok((loaded, layers, layers_done, snapshot, recovered))
    }

    /// What this write open did to finish or roll back interrupted writes, one action each
    /// (empty for a read-only open).
    pub fn recovered(&self) -> &[Action] {
        &self.recovered
    }

    pub(crate) fn note_recovered(&mut self, verb: &'static str, target: String, why: String) {
        self.recovered.push(Action { verb, target, why });
    }

    /// Removes the temp files of interrupted writes in `image/<driver>` (`.tmp-*`: the
    /// staging files of loads, `repositories.json` and the notes of `rm`, written by this
    /// tool or by dockerd's atomic writer): under the exclusive lock and with no dockerd on
    /// the root, none is in use.
    fn remove_temp_files(&mut self) -> Result<(), durable_fs::Error> {
        let Some(dir) = durable_fs::Dir::open_nofollow(self.root.image_dir())
            .map(Some)
            .or_else(|e| match e.io_kind() {
                Some(std::io::ErrorKind::NotFound) => Ok(None),
                _ => Err(e),
            })?
        else {
            return Ok(());
        };
        let mut removed = false;
        for name in dir.temp_files()? {
            if dir.remove_file(&name)? {
                removed = true;
                let what = if name
                    .to_str()
                    .is_some_and(|n| n.starts_with(crate::load::STAGING_PREFIX))
                {
                    "staging file of an interrupted load"
                } else {
                    "temp file of an interrupted write"
                };
                tracing::info!(file = %dir.join(&name).display(), "removed the {what}");
                self.recovered.push(Action::removed(&dir.join(&name), what));
            }
        }
        if removed {
            dir.sync()?;
        }
        Ok(())
    }

    /// Writes down that the layer `chain` is being released by a deletion, with every layer
    /// below it (a release cascades to parents, and a kill can stop it half-way); returns
    /// the note's name for [`clear_release`](Self::clear_release).
    pub(crate) fn record_release(
        &self,
        chain: &layer_store::ChainId,
    ) -> Result<String, durable_fs::Error> {
        let dir = durable_fs::Dir::open_nofollow(self.root.image_dir())?;
        let name = format!("{RELEASE_PREFIX}{}", chain.0.hex());
        let layers = self.images.layers();
        let mut text = String::new();
        let mut next = Some(*chain);
        while let Some(c) = next {
            text.push_str(&c.to_string());
            text.push('\n');
            next = layers.layer(&c).and_then(|l| l.parent);
        }
        dir.atomic_write(&name, text.as_bytes(), 0o600)?;
        Ok(name)
    }

    /// Removes a note [`record_release`](Self::record_release) wrote.
    pub(crate) fn clear_release(&self, name: &str) -> Result<(), durable_fs::Error> {
        let dir = durable_fs::Dir::open_nofollow(self.root.image_dir())?;
        if dir.remove_file(name)? {
            dir.sync()?;
        }
        Ok(())
    }

    /// Finishes the layer releases that killed deletions left notes for: each noted layer,
    /// top first, that nothing holds any more (no image, child layer or container) is
    /// released, as the deletion's cascade would have done; then the note is removed.
    fn finish_releases(&mut self) -> Result<(), OpenError> {
        /// The most a note may hold (a chain of 128 layers is ~9 KiB).
        const MAX_NOTE: u64 = 1 << 20;
        let dir = durable_fs::Dir::open_nofollow(self.root.image_dir())?;
        for entry in dir.entries()? {
            let Some(name) = entry.name.to_str() else {
                continue;
            };
            let Some(hex) = name.strip_prefix(RELEASE_PREFIX) else {
                continue;
            };
            if entry.kind != durable_fs::FileKind::File {
                continue;
            }
            // The noted chain, top first (a note of an earlier version holds the top only).
            let text = dir.read(name, MAX_NOTE)?.unwrap_or_default();
            let mut chain: Vec<layer_store::ChainId> = String::from_utf8_lossy(&text)
                .split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect();
            if chain.is_empty()
                && let Ok(top) = format!("sha256:{hex}").parse()
            {
                chain.push(top);
            }
            let layers = self.images.layers();
            let mut released = Vec::new();
            for c in &chain {
                if layers.ref_count(c) == Some(0)
                    && let Ok(handle) = layers.get(c)
                {
                    released.extend(
                        layers
                            .release(&handle)
                            .map_err(|e| OpenError::Release(Box::new(e)))?,
                    );
                }
            }
            for l in released {
                tracing::info!(layer = %l.chain_id, "released a layer a killed deletion left");
                self.recovered.push(Action {
                    verb: "deleted",
                    target: l.chain_id.to_string(),
                    why: "layer an interrupted rm had left to release".to_owned(),
                });
            }
            dir.remove_file(name)?;
            dir.sync()?;
            self.recovered.push(Action::removed(
                &dir.join(name),
                "note of an interrupted rm's layer release (finished)",
            ));
        }
        Ok(())
    }

    /// The storage driver, for reading and checking its content: creates nothing. `None`
    /// for drivers this tool does not know.
    pub fn reading_driver(&self) -> Option<Box<dyn layer_store::Driver>> {
        reading_driver(&self.root)
    }

    /// What the storage driver shows for a layer's content in `inspect` (`GraphDriver.Data`,
    /// dockerd's `GetMetadata`): `None` for vfs (`null`) and for a layer whose content is
    /// missing. Reads only.
    pub fn driver_metadata(
        &self,
        cache_id: &str,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        use layer_store::Driver as _;
        let found = match self.root.driver() {
            "overlay2" => {
                layer_store::Overlay2Driver::new(self.root.driver_dir()).metadata(cache_id)
            }
            _ => Ok(None),
        };
        found.unwrap_or_else(|e| {
            tracing::warn!(cache_id, error = %e, "cannot read the layer's driver metadata");
            None
        })
    }

    /// The data root.
    pub fn data_root(&self) -> &DataRoot {
        &self.root
    }

    /// The reference store.
    pub fn refs(&self) -> &RefStore {
        &self.refs
    }

    /// The image store (and, through [`ImageStore::layers`], the layer store).
    pub fn image_store(&self) -> &Images {
        &self.images
    }

    /// The layer store.
    pub fn layer_store(&self) -> &LayerStore {
        self.images.layers()
    }

    /// What the layer store's restore found: skipped layers and why, leftovers, mounts.
    pub fn layer_restore(&self) -> &layer_store::RestoreReport {
        &self.layer_outcome
    }

    /// What the image store's restore found: skipped images and why, dangling parent links.
    pub fn image_restore(&self) -> &image_store::RestoreReport {
        &self.image_report
    }

    fn entry(&self, info: ImageInfo) -> ImageEntry {
        let size = info
            .chain_id
            .and_then(|c| self.layer_store().chain_size(&c))
            .map(|size| i64::try_from(size).unwrap_or(i64::MAX))
            .unwrap_or(0);
        ImageEntry {
            id: info.id.0,
            parent: info.parent.map(|p| p.0),
            chain_id: info.chain_id.map(|c| c.0),
            size,
            created: info.created,
        }
    }

    /// Restored images by ID.
    pub fn images(&self) -> BTreeMap<Digest, ImageEntry> {
        self.image_ids()
            .into_iter()
            .filter_map(|id| Some((id, self.image(&id)?)))
            .collect()
    }

    /// The IDs of the restored images, in no particular order: to go through them one by
    /// one with [`image`](Self::image) without building every entry at once.
    pub fn image_ids(&self) -> Vec<Digest> {
        self.images.ids().into_iter().map(|id| id.0).collect()
    }

    /// A restored image.
    pub fn image(&self, id: &Digest) -> Option<ImageEntry> {
        self.images
            .info(&ImageId(*id))
            .ok()
            .map(|info| self.entry(info))
    }

    /// The config of a restored image (its exact bytes and typed model), read from the
    /// imagedb unless the image store still holds it.
    pub fn config(&self, id: &Digest) -> Result<Arc<Image>, LookupError> {
        Ok(self.images.get(&ImageId(*id))?)
    }

    /// Whether the image is restored.
    pub fn contains(&self, id: &Digest) -> bool {
        self.images.contains(&ImageId(*id))
    }

    /// The restored children of a restored image, sorted.
    pub fn children(&self, id: &Digest) -> Vec<Digest> {
        self.images
            .children(&ImageId(*id))
            .into_iter()
            .map(|c| c.0)
            .collect()
    }

    /// The `parent` metadata of an image as stored (any string, unvalidated, as dockerd's
    /// `GetParent` returns it); `None` when unset.
    pub fn parent_link(&self, id: &Digest) -> Option<String> {
        match self
            .images
            .backend()
            .get_metadata(id, image_store::KEY_PARENT)
        {
            Ok(Some(b)) => Some(String::from_utf8_lossy(&b).into_owned()),
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(image = %id, error = %e, "cannot read parent link");
                None
            }
        }
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
    pub fn resolve(&self, arg: &str) -> Result<Digest, LookupError> {
        let parsed = AnyReference::parse(arg)?;
        let not_found = || {
            LookupError::NoSuchImage(match &parsed {
                AnyReference::Id(d) => d.to_string(),
                AnyReference::Named(r) => r.clone().with_default_tag().familiar_string(),
            })
        };
        match &parsed {
            AnyReference::Id(d) => {
                return if self.contains(d) {
                    Ok(*d)
                } else {
                    Err(not_found())
                };
            }
            AnyReference::Named(r) => {
                if let Some(id) = self.refs.get(r)
                    && self.contains(&id)
                {
                    return Ok(id);
                }
            }
        }
        match self.images.search(arg) {
            Ok(d) => Ok(d.0),
            Err(SearchError::Ambiguous {
                count, candidates, ..
            }) => Err(LookupError::Ambiguous {
                term: arg.to_owned(),
                count,
                candidates: candidates.iter().map(|c| c.short()).collect(),
            }),
            Err(_) => Err(not_found()),
        }
    }

    /// The `lastUpdated` metadata of an image: `Ok(None)` when unset, `Err(text)` when it
    /// holds something that is not an RFC 3339 time.
    pub fn last_updated(&self, id: &Digest) -> Result<Option<Timestamp>, String> {
        let iid = ImageId(*id);
        match self.images.get_last_updated(&iid) {
            Ok(t) => Ok(t),
            Err(e) => Err(self
                .images
                .backend()
                .get_metadata(id, image_store::KEY_LAST_UPDATED)
                .ok()
                .flatten()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|| e.to_string())),
        }
    }

    /// The chain IDs of an image's layers, bottom first.
    pub fn image_chain(&self, image: &Image) -> Vec<Digest> {
        layer_store::chain_ids(image.diff_ids())
            .map(|c| c.0)
            .collect()
    }

    /// How the open used the snapshot of the data root (all `false` without
    /// [`OpenOptions::snapshots`], and for write opens).
    pub fn snapshot_use(&self) -> SnapshotUse {
        self.snapshot
    }

    /// True when the store was opened for writing.
    pub fn is_writable(&self) -> bool {
        self.write
    }

    pub(crate) fn refs_mut(&mut self) -> &mut RefStore {
        &mut self.refs
    }
}
