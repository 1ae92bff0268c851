//! [`LayerStore`]: the layerdb, reference counting and registration.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::driver::Driver;
use crate::error::{OpenError, RegisterError};
use crate::handle::{GetError, LayerGetReleaser, LayerHandle, LayerMetadata, ReleaseError};
use crate::ids::{ChainId, DiffId};
use crate::info::{LayerInfo, MAX_LAYER_DEPTH};
use crate::map::{Entry, LayerMap, NO_PARENT};
use crate::outcome::{Leftover, RestoreReport};
use crate::random::random_hex;
use crate::records::{LayerRecord, parents_first};
use crate::restore::{REMOVING_SUFFIX, restore, restore_from_records};
use crate::transaction::{Transaction, TransactionError};
use durable_fs::Dir;

/// How to open a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpenMode {
    /// Create the layerdb directories if missing and remove leftovers of interrupted writes
    /// and deletions.
    #[default]
    ReadWrite,
    /// Change nothing on disk: create nothing, clean nothing; registering fails with
    /// [`RegisterError::ReadOnly`], and a release that drops a layer's last reference keeps
    /// the layer (it is not deleted). For inspection (`fsck`, `ls`). A missing layerdb opens
    /// as an empty store.
    ReadOnly,
}

#[derive(Debug)]
struct State {
    layers: LayerMap,
}

/// Handle tokens are unique in the process, so a handle from another (or an earlier) store
/// is never mistaken for one of this store's.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

impl State {
    fn new_handle(&mut self, chain_id: ChainId) -> Option<LayerHandle> {
        let entry = self.layers.get_mut(&chain_id)?;
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        entry.handles.add(token);
        Some(LayerHandle::new(chain_id, token))
    }
}

/// Docker's layer store (the metadata side of moby's `layer` package).
///
/// Layers live in `<root>/<alg>/<chain-hex>/` (`diff`, `size`, `cache-id`, `parent`,
/// `tar-split.json.gz`), byte-compatible with dockerd 20.10; their contents live in a
/// [`Driver`]. A layer is held by its child layers, by RW mounts and by every
/// [`LayerHandle`] given out; when the last reference goes, the layer is deleted. The store
/// is safe to share between threads.
#[derive(Debug)]
pub struct LayerStore {
    root: PathBuf,
    /// The layerdb, opened without following a symlink (`None`: a read-only open of a
    /// layerdb that does not exist). Everything beneath it is reached through it.
    dir: Option<Dir>,
    driver: Box<dyn Driver>,
    mode: OpenMode,
    state: Mutex<State>,
}

impl LayerStore {
    /// Opens (creating if needed) the layerdb at `layerdb_root`
    /// (`<data-root>/image/<driver>/layerdb`) read-write, loading every layer.
    pub fn open(
        layerdb_root: impl Into<PathBuf>,
        driver: Box<dyn Driver>,
    ) -> Result<(LayerStore, RestoreReport), OpenError> {
        Self::open_with(layerdb_root, driver, OpenMode::ReadWrite)
    }

    /// Opens the layerdb without changing anything on disk (see [`OpenMode::ReadOnly`]).
    pub fn open_read_only(
        layerdb_root: impl Into<PathBuf>,
        driver: Box<dyn Driver>,
    ) -> Result<(LayerStore, RestoreReport), OpenError> {
        Self::open_with(layerdb_root, driver, OpenMode::ReadOnly)
    }

    /// Opens the layerdb in the given mode.
    ///
    /// In [`OpenMode::ReadWrite`] the root is created with mode 0700 and `sha256/` and `tmp/`
    /// with 0755 (as dockerd), and leftovers are removed. Layers that cannot be loaded are
    /// skipped and reported in the [`RestoreReport`], never deleted.
    pub fn open_with(
        layerdb_root: impl Into<PathBuf>,
        driver: Box<dyn Driver>,
        mode: OpenMode,
    ) -> Result<(LayerStore, RestoreReport), OpenError> {
        let root = layerdb_root.into();
        let dir = if mode == OpenMode::ReadWrite {
            let mkdir = |path: PathBuf, dir_mode: u32| {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(dir_mode)
                    .create(&path)
                    .map_err(|source| OpenError::Io {
                        action: "create",
                        path,
                        source,
                    })
            };
            mkdir(root.clone(), 0o700)?;
            let dir = Dir::open_nofollow(&root)?;
            for sub in ["sha256", "tmp"] {
                dir.create_dir(sub, 0o755)?;
            }
            Some(dir)
        } else {
            match Dir::open_nofollow(&root) {
                Ok(d) => Some(d),
                Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => None,
                Err(e) => return Err(e.into()),
            }
        };
        let restored = restore(
            &root,
            dir.as_ref(),
            mode == OpenMode::ReadWrite,
            driver.as_ref(),
        )?;
        tracing::debug!(
            root = %root.display(),
            loaded = restored.outcome.restored,
            skipped = restored.outcome.skipped.len(),
            "layer store restored"
        );
        let store = LayerStore {
            root,
            dir,
            driver,
            mode,
            state: Mutex::new(State {
                layers: restored.layers,
            }),
        };
        Ok((store, restored.outcome))
    }

    /// Opens the layerdb at `layerdb_root` read-only (as [`open_read_only`](Self::open_read_only))
    /// from what an earlier restore of it read, instead of reading every layer directory:
    /// `records` as [`for_each_record`](Self::for_each_record) gave them (parents first; a
    /// record whose parent did not come before it is skipped as
    /// [`SkipReason::MissingParent`](crate::SkipReason::MissingParent)), and the
    /// [`LeftoverKind::Removing`](crate::LeftoverKind::Removing) leftovers of that restore's
    /// report (other kinds are ignored).
    ///
    /// What is outside the layer directories is read as `open_read_only` reads it: the
    /// staging leftovers in `tmp/` and the RW mounts in `mounts/`. The store and report are
    /// those `open_read_only` gives as long as the layer directories (the listings of
    /// `sha256/` and `sha512/` and the files of each layer) are as they were when the records
    /// were taken; telling whether they are is the caller's business.
    pub fn open_read_only_from_records(
        layerdb_root: impl Into<PathBuf>,
        driver: Box<dyn Driver>,
        records: impl IntoIterator<Item = LayerRecord>,
        removing: Vec<Leftover>,
    ) -> Result<(LayerStore, RestoreReport), OpenError> {
        let root = layerdb_root.into();
        let dir = match Dir::open_nofollow(&root) {
            Ok(d) => Some(d),
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let restored = restore_from_records(&root, dir.as_ref(), records, removing)?;
        tracing::debug!(
            root = %root.display(),
            loaded = restored.outcome.restored,
            "layer store restored from records"
        );
        let store = LayerStore {
            root,
            dir,
            driver,
            mode: OpenMode::ReadOnly,
            state: Mutex::new(State {
                layers: restored.layers,
            }),
        };
        Ok((store, restored.outcome))
    }

    /// Calls `f` with the [`LayerRecord`] of every layer, parents before children: what
    /// [`open_read_only_from_records`](Self::open_read_only_from_records) takes to open
    /// this store again without reading the layer directories. Holds the store's lock
    /// meanwhile (`f` must not call the store).
    pub fn for_each_record(&self, mut f: impl FnMut(LayerRecord)) {
        let state = self.state();
        for i in parents_first(&state.layers) {
            if let Some(info) = state.layers.info(i) {
                f(LayerRecord {
                    chain_id: info.chain_id,
                    diff_id: info.diff_id,
                    parent: info.parent,
                    diff_size: info.diff_size,
                    cache_id: info.cache_id,
                });
            }
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // breaks memory safety; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The layerdb root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The content driver.
    pub fn driver(&self) -> &dyn Driver {
        self.driver.as_ref()
    }

    /// The mode the store was opened in.
    pub fn mode(&self) -> OpenMode {
        self.mode
    }

    /// The directory of layer `chain_id`: `<root>/<alg>/<hex>` (whether or not it exists).
    pub fn layer_dir(&self, chain_id: &ChainId) -> PathBuf {
        self.root
            .join(chain_id.0.algorithm().name())
            .join(chain_id.0.hex())
    }

    /// The layer `chain_id`, if loaded.
    pub fn layer(&self, chain_id: &ChainId) -> Option<LayerInfo> {
        let state = self.state();
        state
            .layers
            .find(chain_id)
            .and_then(|i| state.layers.info(i))
    }

    /// The size of layer `chain_id`'s whole chain ([`LayerInfo::size`]), if loaded, without
    /// building its [`LayerInfo`].
    pub fn chain_size(&self, chain_id: &ChainId) -> Option<u64> {
        self.state().layers.get(chain_id).map(|e| e.size)
    }

    /// The [`LayerMetadata`] of layer `chain_id`, if loaded.
    pub fn metadata(&self, chain_id: &ChainId) -> Option<LayerMetadata> {
        let state = self.state();
        state
            .layers
            .find(chain_id)
            .and_then(|i| state.layers.info(i))
            .map(|info| info.metadata())
    }

    /// Whether layer `chain_id` is loaded.
    pub fn contains(&self, chain_id: &ChainId) -> bool {
        self.state().layers.contains(chain_id)
    }

    /// Every layer, sorted by chain ID.
    pub fn layers(&self) -> Vec<LayerInfo> {
        let state = self.state();
        let mut v: Vec<LayerInfo> = state
            .layers
            .indices()
            .filter_map(|i| state.layers.info(i))
            .collect();
        drop(state);
        v.sort_by_key(|a| a.chain_id);
        v
    }

    /// The number of layers.
    pub fn len(&self) -> usize {
        self.state().layers.len()
    }

    /// Whether the store holds no layer.
    pub fn is_empty(&self) -> bool {
        self.state().layers.is_empty()
    }

    /// The references on layer `chain_id`: child layers + RW mounts + handles.
    pub fn ref_count(&self, chain_id: &ChainId) -> Option<usize> {
        self.state().layers.get(chain_id).map(Entry::ref_count)
    }

    /// The number of handles given out on layer `chain_id` and not yet released.
    pub fn handle_count(&self, chain_id: &ChainId) -> Option<usize> {
        self.state().layers.get(chain_id).map(|e| e.handles.len())
    }

    /// A new reference on layer `chain_id` (dockerd's `Get`).
    pub fn get(&self, chain_id: &ChainId) -> Result<LayerHandle, GetError> {
        self.state()
            .new_handle(*chain_id)
            .ok_or(GetError::NotFound(*chain_id))
    }

    /// Drops the reference `handle`, deleting every layer whose last reference this was
    /// (this layer, then its parent, and so on). Returns the deleted layers, child first.
    ///
    /// A handle that was already released is [`ReleaseError::NotRetained`], also when its
    /// layer is gone (dockerd returns an empty list in that case). Deleting a layer renames
    /// its directory to `<hex>-<random>-removing`, asks the driver to remove its content and
    /// removes the directory; if a step fails the layer is still dropped from the store and
    /// the first failure is returned as [`ReleaseError::Delete`] (a `-removing` leftover is
    /// cleaned at the next open).
    pub fn release(&self, handle: &LayerHandle) -> Result<Vec<LayerMetadata>, ReleaseError> {
        let mut state = self.state();
        let chain_id = *handle.chain_id();
        let index = state
            .layers
            .find(&chain_id)
            .ok_or(ReleaseError::NotRetained(chain_id))?;
        let removed = state
            .layers
            .at_mut(index)
            .is_some_and(|e| e.handles.remove(handle.token()));
        if !removed {
            return Err(ReleaseError::NotRetained(chain_id));
        }
        if self.mode == OpenMode::ReadOnly {
            return Ok(Vec::new());
        }
        let mut deleted = Vec::new();
        let mut to_remove: Vec<(LayerInfo, Dir, String, bool)> = Vec::new();
        let mut first_error: Option<ReleaseError> = None;
        let mut note_error = |chain_id: ChainId, message: String| {
            tracing::warn!(layer = %chain_id, %message, "failed to delete layer");
            if first_error.is_none() {
                first_error = Some(ReleaseError::Delete { chain_id, message });
            }
        };
        let mut current = Some(index);
        while let Some(i) = current {
            if state.layers.at(i).is_none_or(|e| e.ref_count() > 0) {
                break;
            }
            let Some((info, parent)) = state.layers.remove(i) else {
                break;
            };
            // Under the lock, so that a concurrent registration of the same chain ID finds
            // the name free.
            let id = info.chain_id;
            deleted.push(info.metadata());
            // Another layer with the same content (a damaged or crafted root): keep it.
            let shared = state.layers.uses_cache_id(&info.cache_id);
            match self.rename_for_removal(&info) {
                Ok((alg, removing)) => to_remove.push((info, alg, removing, shared)),
                Err(message) => note_error(id, message),
            }
            current = parent;
            if let Some(p) = current
                && let Some(pe) = state.layers.at_mut(p)
            {
                pe.children = pe.children.saturating_sub(1);
            }
        }
        drop(state);
        // The slow part (driver content, directory tree) runs without the lock.
        for (info, alg, removing, shared) in to_remove {
            if shared {
                tracing::warn!(layer = %info.chain_id, cache_id = %info.cache_id, "content shared with another layer: not removed");
            } else if let Err(e) = self.driver.remove(&info.cache_id) {
                note_error(
                    info.chain_id,
                    format!("driver cannot remove cache id {}: {e}", info.cache_id),
                );
                continue;
            }
            if let Err(e) = alg.remove_tree(&removing) {
                note_error(info.chain_id, format!("cannot remove: {e}"));
            }
            tracing::debug!(layer = %info.chain_id, "deleted layer");
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(deleted),
        }
    }

    /// Renames a layer directory to `<hex>-<random>-removing` and fsyncs its parent;
    /// returns that parent (the algorithm directory) and the new name.
    fn rename_for_removal(&self, info: &LayerInfo) -> Result<(Dir, String), String> {
        let Some(root) = &self.dir else {
            return Err(format!("{} is not open", self.root.display()));
        };
        let rand = random_hex().map_err(|e| format!("cannot get random bytes: {e}"))?;
        let alg = root
            .require_dir(info.chain_id.0.algorithm().name())
            .map_err(|e| e.to_string())?;
        let hex = info.chain_id.0.hex();
        let removing = format!("{hex}-{rand}{REMOVING_SUFFIX}");
        alg.rename(&hex, &alg, &removing)
            .map_err(|e| e.to_string())?;
        if let Err(e) = alg.sync() {
            tracing::warn!(error = %e, "cannot fsync layerdb directory");
        }
        Ok((alg, removing))
    }

    /// Starts registering a layer on `parent`: takes a reference on the parent, checks the
    /// depth limit, picks a random cache ID, opens a [`Transaction`] and asks the driver to
    /// create the content. The caller then fills the content and the transaction and calls
    /// [`PendingLayer::commit`]; dropping the [`PendingLayer`] undoes everything.
    pub fn begin_register(
        &self,
        parent: Option<&ChainId>,
    ) -> Result<PendingLayer<'_>, RegisterError> {
        if self.mode == OpenMode::ReadOnly {
            return Err(RegisterError::ReadOnly {
                root: self.root.clone(),
            });
        }
        let mut pending = PendingLayer {
            store: self,
            parent: None,
            cache_id: String::new(),
            tx: None,
            driver_created: false,
        };
        if let Some(p) = parent {
            pending.parent = Some(self.hold_parent(p)?);
        }
        pending.cache_id = random_hex().map_err(|e| {
            TransactionError::new("read random bytes from", Path::new("/dev/urandom"), e)
        })?;
        let Some(root) = &self.dir else {
            return Err(RegisterError::ReadOnly {
                root: self.root.clone(),
            });
        };
        let tx = Transaction::start(root)?;
        // Before any content exists: a crash from here on leaves a staging directory naming
        // the content, which the next write open removes with it.
        tx.write_file_durable("cache-id", pending.cache_id.as_bytes())?;
        pending.tx = Some(tx);
        let parent_cache = pending.parent.as_ref().map(|(_, i)| i.cache_id.as_str());
        self.driver
            .create(&pending.cache_id, parent_cache)
            .map_err(|source| RegisterError::Driver {
                cache_id: pending.cache_id.clone(),
                source,
            })?;
        pending.driver_created = true;
        Ok(pending)
    }

    /// Takes a reference on `p`, the parent of a new layer, checking the depth limit.
    fn hold_parent(&self, p: &ChainId) -> Result<(LayerHandle, LayerInfo), RegisterError> {
        let mut state = self.state();
        let handle = state
            .new_handle(*p)
            .ok_or(RegisterError::ParentNotFound(*p))?;
        let info = state
            .layers
            .find(p)
            .and_then(|i| state.layers.info(i))
            .ok_or(RegisterError::ParentNotFound(*p))?;
        drop(state);
        let depth = info.depth;
        if depth >= MAX_LAYER_DEPTH {
            // Dropping the handle would need the lock this function no longer holds: give
            // the reference back explicitly.
            if let Err(e) = self.release(&handle) {
                tracing::warn!(error = %e, "cannot release parent");
            }
            return Err(RegisterError::MaxDepthExceeded { parent: *p, depth });
        }
        Ok((handle, info))
    }

    /// Registers a layer from known metadata, without content (the driver only gets an empty
    /// `create`). If the layer already exists the new one is discarded and a new handle to
    /// the existing layer is returned, as dockerd's `Register` does.
    pub fn register_metadata(
        &self,
        diff_id: DiffId,
        diff_size: u64,
        parent: Option<&ChainId>,
    ) -> Result<LayerHandle, RegisterError> {
        self.begin_register(parent)?.commit(diff_id, diff_size)
    }
}

impl LayerGetReleaser for LayerStore {
    fn get(&self, chain_id: &ChainId) -> Result<LayerHandle, GetError> {
        LayerStore::get(self, chain_id)
    }

    fn release(&self, handle: &LayerHandle) -> Result<Vec<LayerMetadata>, ReleaseError> {
        LayerStore::release(self, handle)
    }
}

/// A layer being registered; see [`LayerStore::begin_register`]. Dropping it without
/// [`commit`](Self::commit) removes the staging directory and the driver content and
/// releases the parent.
#[derive(Debug)]
pub struct PendingLayer<'a> {
    store: &'a LayerStore,
    parent: Option<(LayerHandle, LayerInfo)>,
    cache_id: String,
    tx: Option<Transaction>,
    driver_created: bool,
}

impl PendingLayer<'_> {
    /// The new layer's cache ID (its content's name in the driver).
    pub fn cache_id(&self) -> &str {
        &self.cache_id
    }

    /// The parent layer.
    pub fn parent(&self) -> Option<&LayerInfo> {
        self.parent.as_ref().map(|(_, i)| i)
    }

    /// The store.
    pub fn store(&self) -> &LayerStore {
        self.store
    }

    /// Sets the parent of a layer begun without one, once its content is written (see
    /// [`LayerStore::register_detached`]): takes a reference on it and lets the driver link
    /// the content to it.
    pub(crate) fn set_parent(&mut self, parent: Option<&ChainId>) -> Result<(), RegisterError> {
        if self.parent.is_some() {
            return Err(RegisterError::Driver {
                cache_id: self.cache_id.clone(),
                source: crate::DriverError::Other("the layer already has a parent".to_owned()),
            });
        }
        let Some(p) = parent else {
            return Ok(());
        };
        let (handle, info) = self.store.hold_parent(p)?;
        let parent_cache = info.cache_id.clone();
        self.parent = Some((handle, info));
        self.store
            .driver
            .attach_parent(&self.cache_id, Some(&parent_cache))
            .map_err(|source| RegisterError::Driver {
                cache_id: self.cache_id.clone(),
                source,
            })
    }

    /// The transaction, to add files such as `tar-split.json.gz`. (`diff`, `size`,
    /// `cache-id` and `parent` are written by [`commit`](Self::commit).)
    pub fn transaction(&self) -> Option<&Transaction> {
        self.tx.as_ref()
    }

    /// Writes `diff`, `size`, `cache-id` and `parent`, then (under the store lock) either
    /// commits the layer directory and adds the layer, or, if the chain ID already exists,
    /// discards this one. Returns a new handle on the layer.
    pub fn commit(mut self, diff_id: DiffId, diff_size: u64) -> Result<LayerHandle, RegisterError> {
        let parent_info = self.parent.as_ref().map(|(_, i)| i.clone());
        let chain_id = ChainId::step(parent_info.as_ref().map(|p| &p.chain_id), &diff_id);
        let store = self.store;
        // The transaction stays in `self` until it is committed: on every early return,
        // dropping `self` removes the driver's content first and the staging directory
        // (which names that content) last, so a kill in between leaves a leftover that the
        // next write open traces to its content.
        let Some(tx) = self.tx.as_mut() else {
            return Err(RegisterError::ReadOnly {
                root: store.root.clone(),
            });
        };
        // Written before taking the lock; discarded if the layer turns out to exist.
        tx.write_file("diff", diff_id.to_string().as_bytes())?;
        tx.write_file("size", diff_size.to_string().as_bytes())?;
        if let Some(p) = &parent_info {
            tx.write_file("parent", p.chain_id.to_string().as_bytes())?;
        }
        tx.sync()?;
        // The driver's content becomes final (overlay2 renames its in-flight directory);
        // if the layer turns out to exist, dropping `self` removes it again.
        store
            .driver
            .commit(&self.cache_id)
            .map_err(|source| RegisterError::Driver {
                cache_id: self.cache_id.clone(),
                source,
            })?;
        let mut state = store.state();
        if state.layers.contains(&chain_id) {
            let handle = state.new_handle(chain_id);
            drop(state);
            // `self` is dropped on return: driver content, staging and parent reference go.
            return handle.ok_or(RegisterError::ParentNotFound(chain_id));
        }
        // The parent is held by the handle taken at begin, so it is loaded. (Errors drop
        // the lock first: dropping `self` releases the parent, which takes the lock.)
        let parent = match &parent_info {
            Some(p) => state.layers.find(&p.chain_id),
            None => Some(NO_PARENT),
        };
        let parent = match parent {
            Some(i) if state.layers.has_room() => i,
            Some(_) => {
                drop(state);
                return Err(RegisterError::Full {
                    root: store.root.clone(),
                });
            }
            None => {
                drop(state);
                let missing = parent_info.map_or(chain_id, |p| p.chain_id);
                return Err(RegisterError::ParentNotFound(missing));
            }
        };
        let (Some(root), Some(tx)) = (&store.dir, self.tx.as_mut()) else {
            drop(state);
            return Err(RegisterError::ReadOnly {
                root: store.root.clone(),
            });
        };
        if let Err(e) = tx.commit(root, &chain_id) {
            drop(state);
            return Err(e.into());
        }
        self.tx = None;
        let (mut entry, extra) = Entry::new(&chain_id, &diff_id, &self.cache_id, parent, diff_size);
        entry.size = parent_info
            .as_ref()
            .map_or(diff_size, |p| p.size.saturating_add(diff_size));
        entry.depth = parent_info
            .as_ref()
            .map_or(1, |p| u32::try_from(p.depth + 1).unwrap_or(u32::MAX));
        if state.layers.insert(entry, extra).is_none() {
            // Unreachable: room was checked under the same lock.
            drop(state);
            return Err(RegisterError::Full {
                root: store.root.clone(),
            });
        }
        // The parent reference taken at begin becomes the child link.
        if let Some((handle, _)) = self.parent.take()
            && let Some(pe) = state.layers.get_mut(handle.chain_id())
        {
            pe.handles.remove(handle.token());
            pe.children = pe.children.saturating_add(1);
        }
        self.driver_created = false;
        let handle = state.new_handle(chain_id);
        drop(state);
        handle.ok_or(RegisterError::ParentNotFound(chain_id))
    }
}

impl Drop for PendingLayer<'_> {
    fn drop(&mut self) {
        // Content first, then the staging directory that names it: a kill in between leaves
        // a staging directory the next write open removes, never content nothing names.
        if self.driver_created
            && let Err(e) = self.store.driver.remove(&self.cache_id)
        {
            tracing::warn!(cache_id = %self.cache_id, error = %e, "cannot remove content of abandoned layer");
        }
        self.tx = None;
        if let Some((handle, _)) = self.parent.take()
            && let Err(e) = self.store.release(&handle)
        {
            tracing::warn!(error = %e, "cannot release parent of abandoned layer");
        }
    }
}
