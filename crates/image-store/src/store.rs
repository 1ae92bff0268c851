//! [`ImageStore`]: moby's `image.Store`, restored in parallel and safe for concurrent use.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use dashmap::DashMap;
use digest_set::{Digest, DigestSet};
use imagedb_fs::{BulkReader, StoreBackend};
use layer_store::{ChainId, LayerGetReleaser, LayerHandle, LayerMetadata};
use rayon::prelude::*;

use crate::error::{
    CreateError, DanglingParent, DeleteError, GetError, MetadataError, NotFound, OpenError,
    RestoreReport, SearchError, SetParentError, SkipReason, SkippedImage, parse_parent,
};
use crate::id::ImageId;
use crate::image::{Checked, Image};
use crate::node::{Graph, ImageInfo, Node, forget_child};
use crate::time::{Timestamp, parse_rfc3339};

/// Metadata key of the parent link (`sha256:<hex>`).
pub const KEY_PARENT: &str = "parent";
/// Metadata key of the last-updated time (RFC 3339 with nanoseconds, UTC).
pub const KEY_LAST_UPDATED: &str = "lastUpdated";
/// Metadata key of the built-locally flag (the single byte `1`).
pub const KEY_BUILT_LOCALLY: &str = "builtLocally";

/// Docker's image store: image configs in a [`StoreBackend`], their layers held in a layer
/// store, and the parent/child graph in memory.
///
/// It serves readers and writers from many threads at once (`ImageStore` is `Send + Sync`).
/// Readers ([`map`](Self::map), [`heads`](Self::heads), [`children`](Self::children),
/// [`get_parent`](Self::get_parent), [`search`](Self::search)) work from memory and never wait
/// for a writer's disk I/O; writers ([`create`](Self::create), [`delete`](Self::delete),
/// [`set_parent`](Self::set_parent), the metadata setters) are serialised by one store lock, as
/// in moby, and change memory only after the disk, so that after a failed operation memory and
/// disk still agree.
///
/// Memory holds what listing needs of each image ([`ImageInfo`]), not its config bytes: a
/// 100k-image store keeps about 300 bytes an image instead of the 2 KiB of its config.
/// [`get`](Self::get) reads and verifies a config when no caller holds it already, and hands
/// out the same [`Image`] while one does.
///
/// Dropping the store does not release its layer references (like a daemon that stops): use
/// [`into_parts`](Self::into_parts) to get the backend and layer store back.
#[derive(Debug)]
pub struct ImageStore<B, L> {
    backend: B,
    layers: L,
    images: DashMap<ImageId, Node>,
    digests: RwLock<DigestSet>,
    graph: Mutex<Graph>,
}

/// An image store read from its backend, before it takes its layers: the first half of
/// [`ImageStore::open`], which [`ImageStore::load`] returns.
///
/// Loading reads, hashes and checks every config and reads every parent link; it does not need
/// the layer store. A caller that opens the layer store too (as a daemon does at start-up) can
/// run both at once and then [`attach`](Self::attach) the layers.
///
/// ```
/// use image_store::ImageStore;
/// use imagedb_fs::MemBackend;
/// use layer_store::{LayerStore, NullDriver};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let (loaded, layers) = rayon::join(
///     || ImageStore::load(MemBackend::new()),
///     || LayerStore::open(dir.path().join("layerdb"), Box::new(NullDriver)),
/// );
/// let (store, report) = loaded?.attach(layers?.0)?;
/// assert_eq!((store.len(), report.restored), (0, 0));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Loaded<B> {
    backend: B,
    /// Every valid config, linked to its parent and children.
    images: DashMap<ImageId, Node>,
    digests: DigestSet,
    graph: Graph,
    /// Configs skipped so far and the parent links that dangle so far.
    report: RestoreReport,
    /// Whether pass one skipped nothing and found no bad parent link.
    read_cleanly: bool,
}

/// What pass one has to report about one config; loaded images are already in the map
/// (with their parent link) and report nothing.
enum Outcome {
    Skipped(SkippedImage),
    Dangling(DanglingParent),
}

fn load_one(
    backend: &dyn BulkReader,
    images: &DashMap<ImageId, Node>,
    with_metadata: Option<&[Digest]>,
    digest: &Digest,
) -> Option<Outcome> {
    let id = ImageId(*digest);
    let skip = |reason| Some(Outcome::Skipped(SkippedImage { id, reason }));
    let raw = match backend.get(digest) {
        Ok(raw) => raw,
        Err(e) => return skip(SkipReason::Unreadable(e.to_string())),
    };
    // The backend verified the bytes against their name: no second hash. The bytes are
    // dropped after the check (`get` reads them again when asked).
    let checked = match Checked::of(&raw) {
        Ok(checked) => checked,
        Err(e) => return skip(SkipReason::Invalid(e)),
    };
    // As moby: the OS matters only for an image with layers.
    if let (Some(_), Some(os)) = (checked.chain_id, checked.other_os) {
        return skip(SkipReason::UnsupportedOs(os));
    }
    drop(raw);
    // Only images with a metadata directory can have a parent link: skip the read for the
    // others (pulled and loaded images have none).
    let link = match with_metadata {
        Some(list) if list.binary_search(digest).is_err() => Ok(None),
        _ => backend.get_metadata(digest, KEY_PARENT),
    };
    let (parent, outcome) = match parent_link(id, link) {
        Ok(p) => (p, None),
        Err(d) => (None, Some(Outcome::Dangling(d))),
    };
    images.insert(
        id,
        Node::new(checked.chain_id, checked.created, None, parent),
    );
    outcome
}

/// The parent link of image `id` from what reading its `parent` metadata gave: none, an
/// image, or the [`DanglingParent`] a load reports when the link cannot be read or is not a
/// digest.
fn parent_link(
    id: ImageId,
    read: Result<Option<Vec<u8>>, imagedb_fs::Error>,
) -> Result<Option<ImageId>, DanglingParent> {
    match read {
        Ok(None) => Ok(None),
        Ok(Some(bytes)) => match parse_parent(&bytes) {
            Some(p) => Ok(Some(p)),
            None => Err(DanglingParent {
                child: id,
                value: String::from_utf8_lossy(&bytes).into_owned(),
                parent: None,
            }),
        },
        Err(e) => Err(DanglingParent {
            child: id,
            value: e.to_string(),
            parent: None,
        }),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<B: StoreBackend> Loaded<B> {
    /// How many images were loaded (before their layers are checked).
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether no image was loaded.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Takes a reference in `layers` on each loaded image's top layer, skipping the images
    /// whose top layer is missing: the second half of [`ImageStore::open`].
    pub fn attach<L: LayerGetReleaser>(
        self,
        layers: L,
    ) -> Result<(ImageStore<B, L>, RestoreReport), OpenError> {
        let Loaded {
            backend,
            images,
            mut digests,
            mut graph,
            mut report,
            read_cleanly: _,
        } = self;
        let mut taken: Vec<LayerHandle> = Vec::new();
        let mut missing: Vec<(ImageId, ChainId)> = Vec::new();
        let mut fatal = None;
        for mut node in images.iter_mut() {
            let Some(chain_id) = node.chain_id else {
                continue;
            };
            match layers.get(&chain_id) {
                Ok(handle) => {
                    node.layer_token = handle.token();
                    taken.push(handle);
                }
                Err(layer_store::GetError::NotFound(c)) => missing.push((*node.key(), c)),
                #[allow(unreachable_patterns)]
                Err(source) => {
                    fatal = Some(OpenError::Layer {
                        image: *node.key(),
                        chain_id,
                        source,
                    });
                    break;
                }
            }
        }
        if let Some(e) = fatal {
            for handle in &taken {
                if let Err(re) = layers.release(handle) {
                    tracing::warn!(error = %re, "releasing a layer after a failed restore");
                }
            }
            return Err(e);
        }
        drop(taken);
        if !missing.is_empty() {
            unlink_missing(&images, &mut digests, &mut graph, &mut report, missing);
        }
        report.skipped.sort_by_key(|s| s.id);
        report.dangling_parents.sort_by_key(|a| a.child);
        report.restored = images.len();
        for s in &report.skipped {
            tracing::warn!(image = %s.id, reason = %s.reason, "image not restored");
        }
        tracing::debug!(
            restored = report.restored,
            skipped = report.skipped.len(),
            "image store restored"
        );
        Ok((
            ImageStore {
                backend,
                layers,
                images,
                digests: RwLock::new(digests),
                graph: Mutex::new(graph),
            },
            report,
        ))
    }
}

/// Takes the images whose top layer is missing out of a loaded store, as if pass two had
/// never seen them: their own parent links are forgotten (and no longer reported), and their
/// children's links to them wait for them like any link to an image not in the store.
fn unlink_missing(
    images: &DashMap<ImageId, Node>,
    digests: &mut DigestSet,
    graph: &mut Graph,
    report: &mut RestoreReport,
    missing: Vec<(ImageId, ChainId)>,
) {
    let mut removed: Vec<(ImageId, Node)> = Vec::with_capacity(missing.len());
    for (id, chain_id) in missing {
        if let Some(entry) = images.remove(&id) {
            removed.push(entry);
        }
        digests.remove(&id.0);
        report.skipped.push(SkippedImage {
            id,
            reason: SkipReason::LayerMissing(chain_id),
        });
    }
    let gone: BTreeSet<ImageId> = removed.iter().map(|(id, _)| *id).collect();
    report.dangling_parents.retain(|d| !gone.contains(&d.child));
    for (id, node) in removed {
        if let Some(p) = node.parent {
            forget_child(images, graph, id, p);
        }
        for child in node.children {
            if gone.contains(&child) {
                continue;
            }
            graph.waiting.entry(id).or_default().insert(child);
            report.dangling_parents.push(DanglingParent {
                child,
                value: id.to_string(),
                parent: Some(id),
            });
        }
    }
}

impl<B: StoreBackend> ImageStore<B, ()> {
    /// Reads every config and parent link from `backend`, in parallel, without the layer
    /// store: the first half of [`ImageStore::open`]; finish with [`Loaded::attach`].
    ///
    /// Each config is read, hashed and checked once. Images that cannot be read, are not valid
    /// configs, or are for another OS are skipped and listed in the report `attach` returns
    /// (their files stay on disk).
    pub fn load(backend: B) -> Result<Loaded<B>, OpenError> {
        let ids = backend.walk().map_err(OpenError::Walk)?;
        let images: DashMap<ImageId, Node> = DashMap::with_capacity(ids.len());
        let with_metadata = match backend.metadata_digests() {
            Ok(mut list) => {
                list.sort_unstable();
                Some(list)
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot list metadata; reading every parent link");
                None
            }
        };
        // Each chunk gets its own reader: threads that share one directory handle contend on
        // its reference count in the kernel at every open.
        let chunks: Vec<Result<Vec<Outcome>, OpenError>> = ids
            .par_chunks(512)
            .map(|chunk| {
                let reader = backend.bulk_reader().map_err(OpenError::Walk)?;
                Ok(chunk
                    .iter()
                    .filter_map(|d| load_one(reader.as_ref(), &images, with_metadata.as_deref(), d))
                    .collect())
            })
            .collect();
        drop(with_metadata);
        let mut outcomes = Vec::new();
        for chunk in chunks {
            outcomes.extend(chunk?);
        }
        drop(ids);
        let mut report = RestoreReport::default();
        for outcome in outcomes {
            match outcome {
                Outcome::Skipped(s) => report.skipped.push(s),
                Outcome::Dangling(d) => report.dangling_parents.push(d),
            }
        }
        Ok(Loaded::link(backend, images, report))
    }

    /// The parent link of image `id` in `backend`, read as [`load`](Self::load) reads it:
    /// `Ok(None)` when the image has none; the [`DanglingParent`] a load reports (with
    /// `parent` `None`) when the link cannot be read or is not a digest. For a caller that
    /// keeps what a load found ([`Loaded::for_each_image`]) and reads again only the links
    /// that may have changed since.
    pub fn read_parent(backend: &B, id: &ImageId) -> Result<Option<ImageId>, DanglingParent> {
        parent_link(*id, backend.get_metadata(&id.0, KEY_PARENT))
    }

    /// A loaded store of `images`, as an earlier [`load`](Self::load) of `backend` found
    /// them ([`Loaded::for_each_image`]), without reading the backend: the second half of
    /// `load` (linking children to parents, building the digest set) runs on them. Finish
    /// with [`Loaded::attach`].
    ///
    /// The result is what `load` gives as long as the backend still holds the same configs
    /// and parent links and that load read every one of them cleanly
    /// ([`Loaded::read_cleanly`]); telling whether it does is the caller's business. Of two
    /// images with one ID the last is kept.
    pub fn load_records(backend: B, images: impl IntoIterator<Item = ImageInfo>) -> Loaded<B> {
        let images = images.into_iter();
        let map: DashMap<ImageId, Node> = DashMap::with_capacity(images.size_hint().0);
        for info in images {
            map.insert(
                info.id,
                Node::new(info.chain_id, info.created, None, info.parent),
            );
        }
        Loaded::link(backend, map, RestoreReport::default())
    }
}

impl<B> Loaded<B> {
    /// Pass two of a load: links children to parents and builds the digest set. `report`
    /// holds what pass one found.
    fn link(backend: B, images: DashMap<ImageId, Node>, mut report: RestoreReport) -> Loaded<B> {
        let read_cleanly = report.skipped.is_empty() && report.dangling_parents.is_empty();
        // Pass two: link children to parents. Links to images not loaded stay as they are
        // (on disk and in the child's `parent`) and wait for their parent. Links are sorted
        // by parent, so that each parent is looked up once and gets its children sorted, in
        // a vector of the right size.
        let mut keys: Vec<Digest> = Vec::with_capacity(images.len());
        let mut links: Vec<(ImageId, ImageId)> = Vec::new();
        for e in images.iter() {
            keys.push(e.key().0);
            if let Some(p) = e.value().parent {
                links.push((p, *e.key()));
            }
        }
        links.sort_unstable();
        let mut graph = Graph::default();
        for group in links.chunk_by(|a, b| a.0 == b.0) {
            let Some(&(parent, _)) = group.first() else {
                continue;
            };
            if let Some(mut p) = images.get_mut(&parent) {
                p.children = group.iter().map(|&(_, child)| child).collect();
            } else {
                let waiting = graph.waiting.entry(parent).or_default();
                for &(_, child) in group {
                    waiting.insert(child);
                    report.dangling_parents.push(DanglingParent {
                        child,
                        value: parent.to_string(),
                        parent: Some(parent),
                    });
                }
            }
        }
        drop(links);
        // The digest set is built in bulk: one sort, no per-insert shifting.
        let digests: DigestSet = keys.into_iter().collect();
        Loaded {
            backend,
            images,
            digests,
            graph,
            report,
            read_cleanly,
        }
    }

    /// Whether the load read every config and parent link cleanly: no config was skipped
    /// (unreadable, invalid, for another OS) and no parent link was unreadable or
    /// malformed. (Links to images that are not in the store follow from the images
    /// present and do not count.)
    pub fn read_cleanly(&self) -> bool {
        self.read_cleanly
    }

    /// Calls `f` with every loaded image (including those whose top layer
    /// [`attach`](Self::attach) will find missing): what
    /// [`ImageStore::load_records`] takes to build this `Loaded` again.
    pub fn for_each_image(&self, mut f: impl FnMut(ImageInfo)) {
        for e in self.images.iter() {
            f(e.value().info(*e.key()));
        }
    }
}

impl<B: StoreBackend, L: LayerGetReleaser> ImageStore<B, L> {
    /// Restores the store from `backend`, taking a reference in `layers` on each image's top
    /// layer (moby's `NewImageStore`): [`ImageStore::load`] then [`Loaded::attach`].
    ///
    /// Pass one reads and hashes each config once, in parallel: images that cannot be read or
    /// are not valid configs, images for another OS and images whose top layer is missing are
    /// skipped and listed in the report (their files stay on disk). Pass two links children to
    /// parents; links to images that were not restored stay on disk and are reported.
    pub fn open(backend: B, layers: L) -> Result<(Self, RestoreReport), OpenError> {
        ImageStore::load(backend)?.attach(layers)
    }

    /// Stores a new image config and takes a reference on its top layer (moby's `Create`).
    ///
    /// The config is validated ([`Image::from_bytes`]); its top layer must be in the layer
    /// store. Creating an image that is already in the store returns its ID and changes nothing
    /// (no second layer reference). Unlike moby, the layer is checked before the config is
    /// written, so a failure leaves no file behind.
    pub fn create(&self, config: &[u8]) -> Result<ImageId, CreateError> {
        let image = Image::from_bytes(config.to_vec())?;
        let id = image.id();
        let mut graph = lock(&self.graph);
        if self.images.contains_key(&id) {
            return Ok(id);
        }
        let layer = match image.chain_id() {
            None => None,
            Some(chain_id) => {
                if !image.is_os_supported() {
                    return Err(CreateError::UnsupportedOs(image.config().os.clone()));
                }
                Some(
                    self.layers
                        .get(&chain_id)
                        .map_err(|source| CreateError::Layer { chain_id, source })?,
                )
            }
        };
        let written = self.backend.set(config);
        if let Err(source) = written {
            // An atomic write either put the whole file in place or nothing; a failure after
            // the rename (syncing the directory) leaves the config on disk. Then the image is
            // adopted, so memory matches the disk, and the error is still reported.
            if self.content_exists(&id) {
                tracing::warn!(image = %id, error = %source, "config written despite an error; keeping the image");
                self.insert_new(&mut graph, image, layer);
            } else if let Some(handle) = layer {
                self.release_and_log(&handle);
            }
            return Err(CreateError::Write { id, source });
        }
        self.insert_new(&mut graph, image, layer);
        Ok(id)
    }

    /// Puts a newly written image in memory.
    fn insert_new(&self, graph: &mut Graph, image: Image, layer: Option<LayerHandle>) {
        let id = image.id();
        // The config may have been on disk already (an image restore skipped), with a parent
        // link: keep memory as a restore would see it.
        let parent = match self.backend.get_metadata(&id.0, KEY_PARENT) {
            Ok(Some(bytes)) => parse_parent(&bytes),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(image = %id, error = %e, "cannot read parent link of new image");
                None
            }
        };
        let children: Vec<ImageId> = graph
            .waiting
            .remove(&id)
            .map(|set| set.into_iter().collect())
            .unwrap_or_default();
        let mut node = Node::new(image.chain_id(), image.created(), layer.as_ref(), parent);
        node.children = children;
        self.images.insert(id, node);
        // After the insert, so that a link to itself (a corrupt disk) is treated as restore
        // treats it.
        if let Some(p) = parent {
            self.attach(graph, id, p);
        }
        self.digests_write().insert(id.0);
    }

    /// Whether the backend holds content for `id` (without reading it).
    fn content_exists(&self, id: &ImageId) -> bool {
        // Metadata reads require the content: `NotFound` means there is none.
        !matches!(self.backend.get_metadata(&id.0, KEY_PARENT), Err(e) if e.is_not_found())
    }

    /// The image `id`: the one a caller still holds from an earlier `get` if any (no disk
    /// access), else its config read again from the backend and verified.
    pub fn get(&self, id: &ImageId) -> Result<Arc<Image>, GetError> {
        let held = self.images.get(id).ok_or(NotFound(*id))?.image.upgrade();
        if let Some(image) = held {
            return Ok(image);
        }
        let raw = match self.backend.get(&id.0) {
            Ok(raw) => raw,
            // Deleted meanwhile.
            Err(e) if e.is_not_found() && !self.images.contains_key(id) => {
                return Err(NotFound(*id).into());
            }
            Err(source) => return Err(GetError::Read { id: *id, source }),
        };
        let image = Image::from_verified_bytes(*id, raw)
            .map(Arc::new)
            .map_err(|source| GetError::Invalid { id: *id, source })?;
        let mut node = self.images.get_mut(id).ok_or(NotFound(*id))?;
        match node.image.upgrade() {
            // Another thread read it meanwhile: hand out one image.
            Some(other) => Ok(other),
            None => {
                node.image = Arc::downgrade(&image);
                Ok(image)
            }
        }
    }

    /// What the store keeps in memory of image `id` (no disk access).
    pub fn info(&self, id: &ImageId) -> Result<ImageInfo, NotFound> {
        self.images
            .get(id)
            .map(|n| n.info(*id))
            .ok_or(NotFound(*id))
    }

    /// Whether the image is in the store.
    pub fn contains(&self, id: &ImageId) -> bool {
        self.images.contains_key(id)
    }

    /// Deletes an image (moby's `Delete`): its children lose their parent link, it leaves the
    /// store and the disk, and its layer reference is released. Returns the layers the release
    /// deleted, child first.
    pub fn delete(&self, id: &ImageId) -> Result<Vec<LayerMetadata>, DeleteError> {
        let mut graph = lock(&self.graph);
        let children: Vec<ImageId> = match self.images.get(id) {
            Some(n) => n.children.to_vec(),
            None => return Err(NotFound(*id).into()),
        };
        for child in children {
            if let Err(source) = self.backend.delete_metadata(&child.0, KEY_PARENT) {
                // The link may be gone all the same (a failed directory sync).
                self.resync_parent(&mut graph, child);
                return Err(DeleteError::Backend { id: child, source });
            }
            self.detach(&mut graph, child);
        }
        match self.backend.delete(&id.0) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {
                tracing::warn!(image = %id, "image config was already gone from disk");
            }
            Err(source) => {
                if self.content_exists(id) {
                    self.resync_parent(&mut graph, *id);
                    return Err(DeleteError::Backend { id: *id, source });
                }
                // The config is gone (the error came after its removal): finish the delete.
                tracing::warn!(image = %id, error = %source, "config removed despite an error");
            }
        }
        self.detach(&mut graph, *id);
        let node = self.images.remove(id).map(|(_, n)| n);
        self.digests_write().remove(&id.0);
        drop(graph);
        match node.and_then(|n| n.layer()) {
            None => Ok(Vec::new()),
            Some(handle) => self
                .layers
                .release(&handle)
                .map_err(|source| DeleteError::Release { id: *id, source }),
        }
    }

    /// Finds the one image whose ID matches `term`: a full ID, `sha256:<prefix>` or a bare hex
    /// prefix (moby's `Search`). Unlike moby, an ambiguous prefix names the candidates.
    pub fn search(&self, term: &str) -> Result<ImageId, SearchError> {
        self.digests_read()
            .lookup(term)
            .map(ImageId)
            .map_err(SearchError::from)
    }

    /// Makes `parent` the parent of `id` (moby's `SetParent`), replacing any previous link.
    ///
    /// Both must be in the store, and, unlike moby, the link must not make `id` its own
    /// ancestor.
    pub fn set_parent(&self, id: &ImageId, parent: &ImageId) -> Result<(), SetParentError> {
        let mut graph = lock(&self.graph);
        if !self.images.contains_key(id) {
            return Err(SetParentError::UnknownImage(*id));
        }
        if !self.images.contains_key(parent) {
            return Err(SetParentError::UnknownParent(*parent));
        }
        // Walk up from the new parent; reaching `id` means a cycle. Bounded in case the disk
        // held a cycle already.
        let mut cursor = Some(*parent);
        let mut steps = 0usize;
        while let Some(p) = cursor {
            if p == *id {
                return Err(SetParentError::Cycle {
                    id: *id,
                    parent: *parent,
                });
            }
            steps += 1;
            if steps > self.images.len() {
                break;
            }
            cursor = self.images.get(&p).and_then(|n| n.parent);
        }
        if let Err(source) =
            self.backend
                .set_metadata(&id.0, KEY_PARENT, parent.to_string().as_bytes())
        {
            // The link may be in place all the same (a failed directory sync).
            self.resync_parent(&mut graph, *id);
            return Err(SetParentError::Backend { id: *id, source });
        }
        self.detach(&mut graph, *id);
        self.attach(&mut graph, *id, *parent);
        if let Some(mut n) = self.images.get_mut(id) {
            n.parent = Some(*parent);
        }
        Ok(())
    }

    /// The parent link of `id`, `None` when it has none. The parent may not be in the store
    /// (a link restore could not follow, see [`RestoreReport::dangling_parents`]).
    pub fn get_parent(&self, id: &ImageId) -> Result<Option<ImageId>, NotFound> {
        self.images.get(id).map(|n| n.parent).ok_or(NotFound(*id))
    }

    /// The images whose parent is `id`, sorted; empty for an unknown image.
    pub fn children(&self, id: &ImageId) -> Vec<ImageId> {
        self.images
            .get(id)
            .map(|n| n.children.clone())
            .unwrap_or_default()
    }

    /// The children of `id` that depend on it: [`children`](Self::children) without those that
    /// are also ancestors of `id`. Parent links that loop (moby never refused them, so a disk
    /// may hold them) make every image of the loop a child of another; none of them depends on
    /// the others, and deleting one ([`delete`](Self::delete) unlinks its children) opens the
    /// loop. Without this, a delete that refuses images with children could never remove them.
    pub fn dependent_children(&self, id: &ImageId) -> Vec<ImageId> {
        let mut children = self.children(id);
        if children.is_empty() {
            return children;
        }
        // The ancestors of `id`, up to the first repeat (bounded: a loop may not pass `id`).
        let mut ancestors = BTreeSet::new();
        let mut cursor = self.images.get(id).and_then(|n| n.parent);
        while let Some(p) = cursor {
            if !ancestors.insert(p) || ancestors.len() > self.images.len() {
                break;
            }
            cursor = self.images.get(&p).and_then(|n| n.parent);
        }
        children.retain(|c| !ancestors.contains(c));
        children
    }

    /// Every image in the store, from memory (use [`get`](Self::get) for an image's config).
    pub fn map(&self) -> BTreeMap<ImageId, ImageInfo> {
        self.images
            .iter()
            .map(|e| (*e.key(), e.value().info(*e.key())))
            .collect()
    }

    /// The IDs of every image, in no particular order, from memory: cheaper than
    /// [`map`](Self::map) for a caller that looks images up one by one
    /// ([`info`](Self::info)).
    pub fn ids(&self) -> Vec<ImageId> {
        let mut ids = Vec::with_capacity(self.images.len());
        ids.extend(self.images.iter().map(|e| *e.key()));
        ids
    }

    /// The images that are no image's parent (moby's `Heads`), from memory.
    pub fn heads(&self) -> BTreeMap<ImageId, ImageInfo> {
        self.images
            .iter()
            .filter(|e| e.value().children.is_empty())
            .map(|e| (*e.key(), e.value().info(*e.key())))
            .collect()
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether the store holds no image.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Records now as the time the image was last updated (key `lastUpdated`, RFC 3339 with
    /// nanoseconds, UTC).
    pub fn set_last_updated(&self, id: &ImageId) -> Result<(), MetadataError> {
        let now = Timestamp::now().to_string();
        self.set_meta(id, KEY_LAST_UPDATED, now.as_bytes())
    }

    /// When the image was last updated; `None` when never recorded (moby's zero time).
    pub fn get_last_updated(&self, id: &ImageId) -> Result<Option<Timestamp>, MetadataError> {
        let Some(bytes) = self.get_meta(id, KEY_LAST_UPDATED)? else {
            return Ok(None);
        };
        if bytes.is_empty() {
            return Ok(None);
        }
        let text = std::str::from_utf8(&bytes).map_err(|e| MetadataError::Malformed {
            id: *id,
            key: KEY_LAST_UPDATED,
            reason: e.to_string(),
        })?;
        parse_rfc3339(text)
            .map(Some)
            .map_err(|e| MetadataError::Malformed {
                id: *id,
                key: KEY_LAST_UPDATED,
                reason: e.to_string(),
            })
    }

    /// Marks the image as built on this host (key `builtLocally` = the byte `1`).
    pub fn set_built_locally(&self, id: &ImageId) -> Result<(), MetadataError> {
        self.set_meta(id, KEY_BUILT_LOCALLY, &[1])
    }

    /// Whether the image was built on this host.
    pub fn is_built_locally(&self, id: &ImageId) -> Result<bool, MetadataError> {
        Ok(self
            .get_meta(id, KEY_BUILT_LOCALLY)?
            .is_some_and(|b| b.first() == Some(&1)))
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The layer store.
    pub fn layers(&self) -> &L {
        &self.layers
    }

    /// Takes the store apart without releasing its layer references, as a daemon that stops
    /// leaves them (references live only in memory; a layer store restored from disk starts
    /// without them).
    pub fn into_parts(self) -> (B, L) {
        (self.backend, self.layers)
    }

    fn set_meta(&self, id: &ImageId, key: &'static str, value: &[u8]) -> Result<(), MetadataError> {
        let _graph = lock(&self.graph);
        if !self.images.contains_key(id) {
            return Err(NotFound(*id).into());
        }
        self.backend
            .set_metadata(&id.0, key, value)
            .map_err(|source| MetadataError::Backend {
                id: *id,
                key,
                source,
            })
    }

    fn get_meta(&self, id: &ImageId, key: &'static str) -> Result<Option<Vec<u8>>, MetadataError> {
        if !self.images.contains_key(id) {
            return Err(NotFound(*id).into());
        }
        match self.backend.get_metadata(&id.0, key) {
            Ok(v) => Ok(v),
            // Deleted meanwhile.
            Err(e) if e.is_not_found() => Err(NotFound(*id).into()),
            Err(source) => Err(MetadataError::Backend {
                id: *id,
                key,
                source,
            }),
        }
    }

    /// Links `child` under `parent` in memory (the child's own `parent` field is the caller's).
    fn attach(&self, graph: &mut Graph, child: ImageId, parent: ImageId) {
        match self.images.get_mut(&parent) {
            Some(mut p) => {
                if let Err(at) = p.children.binary_search(&child) {
                    p.children.insert(at, child);
                }
            }
            None => {
                graph.waiting.entry(parent).or_default().insert(child);
            }
        }
    }

    /// Removes the parent link of `child` in memory.
    fn detach(&self, graph: &mut Graph, child: ImageId) {
        let old = self
            .images
            .get_mut(&child)
            .and_then(|mut n| n.parent.take());
        if let Some(old) = old {
            forget_child(&self.images, graph, child, old);
        }
    }

    /// After a failed backend delete (which may have removed the metadata but not the
    /// content), makes the in-memory parent link of `id` match the disk again.
    fn resync_parent(&self, graph: &mut Graph, id: ImageId) {
        let on_disk = match self.backend.get_metadata(&id.0, KEY_PARENT) {
            Ok(v) => v.as_deref().and_then(parse_parent),
            Err(e) => {
                tracing::warn!(image = %id, error = %e, "cannot re-read parent link");
                return;
            }
        };
        let in_memory = self.images.get(&id).and_then(|n| n.parent);
        if on_disk != in_memory {
            self.detach(graph, id);
            if let Some(p) = on_disk {
                self.attach(graph, id, p);
                if let Some(mut n) = self.images.get_mut(&id) {
                    n.parent = Some(p);
                }
            }
        }
    }

    fn release_and_log(&self, handle: &LayerHandle) {
        match self.layers.release(handle) {
            Ok(deleted) => {
                for l in deleted {
                    tracing::debug!(layer = %l.chain_id, "cleaned up layer");
                }
            }
            Err(e) => {
                tracing::error!(layer = %handle.chain_id(), error = %e, "error releasing layer")
            }
        }
    }

    fn digests_read(&self) -> std::sync::RwLockReadGuard<'_, DigestSet> {
        self.digests.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn digests_write(&self) -> std::sync::RwLockWriteGuard<'_, DigestSet> {
        self.digests.write().unwrap_or_else(PoisonError::into_inner)
    }
}
