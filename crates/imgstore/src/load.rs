//! `imgstore load`: images from an archive into the data root, as `docker load` does
//! (moby 20.10 `image/tarexport/load.go`), for every archive format [`image_archive`] reads.
//!
//! Per image: each layer not already present (by chain ID) is registered from its stream and
//! checked against the config's diff ID; then the image is created from the config bytes
//! exactly as stored, its parent link set when `manifest.json` names one, its tags set
//! (moving a tag that pointed elsewhere, with docker's message) and the repo digests imgstore
//! recorded at save restored. A failure leaves nothing of that image: no image, no tag, and
//! no layer of this load that nothing else uses.

use std::path::{Path, PathBuf};

use image_archive::ReadError;
use image_archive::plan::{self, ImagePlan, PlatformSpec};
use image_archive::source::{DirSource, Source, TarFile};
use image_store::{Image, ImageId};
use layer_store::{ChainId, LayerHandle};

use crate::progress::Progress;
use crate::reference::Reference;
use crate::store::Store;

/// The prefix of the staging file of an archive read from a stream or compressed: a temp
/// file of the image store's directory, removed by the next write open if a crash left it.
pub const STAGING_PREFIX: &str = ".tmp-load-";

/// `load` flags.
#[derive(Debug, Clone, Default)]
pub struct LoadArgs {
    /// `-i`: the archive file or OCI layout directory (`None`: standard input).
    pub input: Option<PathBuf>,
    /// `--platform os/arch[/variant]`: which image of a multi-platform index.
    pub platform: Option<String>,
}

/// Why a load failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The archive cannot be read.
    #[error("{0}")]
    Archive(#[from] ReadError),
    /// `--platform` does not parse.
    #[error("invalid --platform {0:?}: use os/arch[/variant]")]
    Platform(String),
    /// The input cannot be opened.
    #[error("cannot open {path}: {source}")]
    Input {
        /// The input.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The config does not parse as an image config.
    #[error("{origin}: invalid image config: {source}")]
    Config {
        /// Where the image was found in the archive.
        origin: String,
        /// Why.
        #[source]
        source: image_store::InvalidImage,
    },
    /// The manifest and the config disagree on the number of layers.
    #[error(
        "{origin}: invalid manifest, layers length mismatch: {layers} layers for {diff_ids} diff IDs"
    )]
    LayerCount {
        /// Where the image was found in the archive.
        origin: String,
        /// Layers in the manifest.
        layers: usize,
        /// Diff IDs in the config.
        diff_ids: usize,
    },
    /// A layer failed to register (a bad stream, a digest mismatch, a hostile member).
    #[error("{origin}: layer {name}: {source}")]
    Register {
        /// Where the image was found in the archive.
        origin: String,
        /// The layer's member.
        name: String,
        /// Why.
        #[source]
        source: Box<layer_store::RegisterError>,
    },
    /// A layer's content is not what the config says.
    #[error(
        "{origin}: invalid diffID for layer {index} ({name}): expected {expected}, got {actual}"
    )]
    DiffId {
        /// Where the image was found in the archive.
        origin: String,
        /// The layer's index.
        index: usize,
        /// The layer's member.
        name: String,
        /// The config's diff ID.
        expected: String,
        /// What the layer hashes to.
        actual: String,
    },
    /// Creating the image failed.
    #[error("{origin}: {source}")]
    Create {
        /// Where the image was found in the archive.
        origin: String,
        /// Why.
        #[source]
        source: Box<image_store::CreateError>,
    },
    /// A tag of the archive is not a valid `name:tag`.
    #[error("{origin}: invalid tag {tag:?}")]
    Tag {
        /// Where the image was found in the archive.
        origin: String,
        /// The tag.
        tag: String,
    },
    /// Writing a reference failed.
    #[error("{origin}: cannot set {reference}: {source}")]
    Reference {
        /// Where the image was found in the archive.
        origin: String,
        /// The reference.
        reference: String,
        /// Why.
        #[source]
        source: crate::refstore::RefStoreError,
    },
    /// Setting the parent link failed.
    #[error("{origin}: cannot set parent {parent}: {reason}")]
    Parent {
        /// Where the image was found in the archive.
        origin: String,
        /// The parent.
        parent: String,
        /// Why.
        reason: String,
    },
}

/// What a load did: the lines `docker load` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// `Loaded image: NAME:TAG`, `Loaded image ID: sha256:...` and rename notices, in order.
    pub lines: Vec<String>,
}

/// Opens the archive: a directory as an OCI layout, an uncompressed tar file in place,
/// anything else (a compressed file, standard input) staged, decompressed, under `staging`.
fn open_source(args: &LoadArgs, staging: &Path) -> Result<Box<dyn Source>, LoadError> {
    match &args.input {
        Some(p) => {
            let meta = std::fs::metadata(p).map_err(|source| LoadError::Input {
                path: p.clone(),
                source,
            })?;
            if meta.is_dir() {
                return Ok(Box::new(DirSource::new(p.clone())));
            }
            match TarFile::open(p) {
                Ok(t) => Ok(Box::new(t)),
                Err(ReadError::Compressed) => {
                    let f = std::fs::File::open(p).map_err(|source| LoadError::Input {
                        path: p.clone(),
                        source,
                    })?;
                    Ok(Box::new(TarFile::stage(f, staging, STAGING_PREFIX)?))
                }
                Err(e) => Err(e.into()),
            }
        }
        None => Ok(Box::new(TarFile::stage(
            std::io::stdin(),
            staging,
            STAGING_PREFIX,
        )?)),
    }
}

/// `docker load`: loads every image of the archive into `store` (opened for writing).
/// Images loaded before a failure stay, as in docker; the lines for them are in the error's
/// companion `Loaded`.
pub fn load(
    store: &mut Store,
    args: &LoadArgs,
    progress: &Progress,
) -> (Loaded, Result<(), LoadError>) {
    let mut loaded = Loaded::default();
    let result = load_into(store, args, progress, &mut loaded);
    (loaded, result)
}

fn load_into(
    store: &mut Store,
    args: &LoadArgs,
    progress: &Progress,
    loaded: &mut Loaded,
) -> Result<(), LoadError> {
    let platform = match &args.platform {
        Some(p) => PlatformSpec::parse(p).ok_or_else(|| LoadError::Platform(p.clone()))?,
        None => PlatformSpec::host(),
    };
    let staging = store.data_root().image_dir();
    let src = open_source(args, &staging)?;
    let plans = plan::plan(src.as_ref(), &platform)?;
    for p in &plans {
        load_image(store, src.as_ref(), p, progress, loaded)?;
    }
    Ok(())
}

/// Releases the handles (layers of this load that nothing else uses go) when dropped.
struct Held<'a> {
    store: &'a Store,
    handles: Vec<LayerHandle>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        for h in self.handles.drain(..).rev() {
            if let Err(e) = self.store.layer_store().release(&h) {
                tracing::warn!(layer = %h.chain_id(), error = %e, "cannot release layer");
            }
        }
    }
}

fn load_image(
    store: &mut Store,
    src: &dyn Source,
    p: &ImagePlan,
    progress: &Progress,
    loaded: &mut Loaded,
) -> Result<(), LoadError> {
    let origin = p.origin.clone();
    let image = Image::from_bytes(p.config.clone()).map_err(|source| LoadError::Config {
        origin: origin.clone(),
        source,
    })?;
    let diff_ids = image.diff_ids();
    if diff_ids.len() != p.layers.len() {
        return Err(LoadError::LayerCount {
            origin,
            layers: p.layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    // Tags are checked before anything is written.
    let mut tags = Vec::new();
    for t in &p.tags {
        let r = Reference::parse_normalized(t)
            .ok()
            .filter(|r| r.tag().is_some() && !r.is_canonical())
            .ok_or_else(|| LoadError::Tag {
                origin: origin.clone(),
                tag: t.clone(),
            })?;
        tags.push(r);
    }
    let layers = store.layer_store();
    let mut held = Held {
        store: &*store,
        handles: Vec::new(),
    };
    // The layers not there yet are a suffix of the chain (a layer's chain ID covers its
    // parents). Where the driver keeps each layer's own changes apart (overlay2), they are
    // written in parallel and committed in chain order afterwards.
    let mut chains = Vec::with_capacity(diff_ids.len());
    let mut parent: Option<ChainId> = None;
    for d in &diff_ids {
        let c = ChainId::step(parent.as_ref(), d);
        chains.push(c);
        parent = Some(c);
    }
    let first_missing = chains
        .iter()
        .position(|c| layers.layer(c).is_none())
        .unwrap_or(chains.len());
    let missing = chains.len() - first_missing;
    let mut detached: Vec<Option<layer_store::DetachedLayer<'_>>> = Vec::new();
    if missing >= 2 && layers.driver().independent_layers() {
        detached = write_in_parallel(
            layers,
            src,
            &p.layers[first_missing..],
            &diff_ids[first_missing..],
            &origin,
            progress,
        )?
        .into_iter()
        .map(Some)
        .collect();
    }
    let mut parent: Option<ChainId> = None;
    for (i, (l, diff_id)) in p.layers.iter().zip(&diff_ids).enumerate() {
        let chain = chains[i];
        let prepared = i
            .checked_sub(first_missing)
            .and_then(|j| detached.get_mut(j))
            .and_then(Option::take);
        let handle = match (layers.get(&chain), prepared) {
            (Ok(h), _) => {
                progress.note(&format!("{}: Already exists", short(diff_id)));
                h
            }
            (Err(_), Some(d)) => {
                d.commit(parent.as_ref())
                    .map_err(|source| LoadError::Register {
                        origin: origin.clone(),
                        name: l.name.clone(),
                        source: Box::new(source),
                    })?
            }
            (Err(_), None) => {
                let size = src.size(&l.name)?.unwrap_or(0);
                let bar = progress.bytes(&format!("Loading layer {}", short(diff_id)), size);
                let stream = plan::open_layer(src, l)?;
                let counted = bar.wrap(stream);
                let h = layers
                    .register(counted, parent.as_ref())
                    .map_err(|source| LoadError::Register {
                        origin: origin.clone(),
                        name: l.name.clone(),
                        source: Box::new(source),
                    })?;
                bar.finish();
                h
            }
        };
        let got = *handle.chain_id();
        held.handles.push(handle);
        if got != chain {
            let actual = layers
                .layer(&got)
                .map(|x| x.diff_id.to_string())
                .unwrap_or_default();
            return Err(LoadError::DiffId {
                origin,
                index: i,
                name: l.name.clone(),
                expected: diff_id.to_string(),
                actual,
            });
        }
        parent = Some(chain);
    }
    let id = store
        .image_store()
        .create(&p.config)
        .map_err(|source| LoadError::Create {
            origin: origin.clone(),
            source: Box::new(source),
        })?;
    drop(held);
    drop(detached);
    if let Some(parent) = &p.parent
        && let Ok(pid) = parent.parse::<digest_set::Digest>()
    {
        store
            .image_store()
            .set_parent(&id, &ImageId(pid))
            .map_err(|e| LoadError::Parent {
                origin: origin.clone(),
                parent: parent.clone(),
                reason: e.to_string(),
            })?;
    }
    for r in &tags {
        let r = r.clone().with_default_tag();
        if let Some(prev) = store.refs().get(&r)
            && prev != id.0
        {
            loaded.lines.push(format!(
                "The image {} already exists, renaming the old one with ID {prev} to empty string",
                r.familiar_string()
            ));
        }
        store
            .refs_mut()
            .add_tag(&r, &id.0, true)
            .map_err(|source| LoadError::Reference {
                origin: origin.clone(),
                reference: r.familiar_string(),
                source,
            })?;
        loaded
            .lines
            .push(format!("Loaded image: {}", r.familiar_string()));
    }
    for d in &p.repo_digests {
        match Reference::parse_normalized(d) {
            Ok(r) if r.is_canonical() => {
                if let Err(e) = store.refs_mut().add_digest(&r, &id.0, true) {
                    tracing::warn!(reference = %d, error = %e, "cannot restore repo digest");
                }
            }
            _ => tracing::warn!(reference = %d, "ignoring an invalid repo digest in the archive"),
        }
    }
    if tags.is_empty() {
        if let Some(t) = &p.bare_ref_name {
            tracing::info!(ref_name = %t, "the archive names the image only by a tag without a repository: loaded by ID");
        }
        loaded.lines.push(format!("Loaded image ID: {}", id.0));
    }
    Ok(())
}

/// Writes the content of `refs` (each checked against its diff ID) in parallel, on up to as
/// many threads as there are CPUs (each streaming with bounded buffers); returns them in
/// order, uncommitted. The first failure stops the others and is returned; what was written
/// is removed.
fn write_in_parallel<'s>(
    layers: &'s layer_store::LayerStore,
    src: &dyn Source,
    refs: &[image_archive::plan::LayerRef],
    diff_ids: &[layer_store::DiffId],
    origin: &str,
    progress: &Progress,
) -> Result<Vec<layer_store::DetachedLayer<'s>>, LoadError> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8)
        .min(refs.len());
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<layer_store::DetachedLayer<'s>, LoadError>>>> =
        Mutex::new((0..refs.len()).map(|_| None).collect());
    // Synced all at once below, before any is committed: one flush for the image.
    let opts = layer_store::RegisterOptions {
        sync: false,
        ..layer_store::RegisterOptions::default()
    };
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= refs.len() || failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let l = &refs[i];
                    let r = plan::open_layer(src, l)
                        .map_err(LoadError::from)
                        .and_then(|stream| {
                            layers.register_detached(stream, &opts).map_err(|source| {
                                LoadError::Register {
                                    origin: origin.to_owned(),
                                    name: l.name.clone(),
                                    source: Box::new(source),
                                }
                            })
                        })
                        .and_then(|d| {
                            if d.diff_id() == &diff_ids[i] {
                                progress.note(&format!("{}: Loaded", short(&diff_ids[i])));
                                Ok(d)
                            } else {
                                Err(LoadError::DiffId {
                                    origin: origin.to_owned(),
                                    index: i,
                                    name: l.name.clone(),
                                    expected: diff_ids[i].to_string(),
                                    actual: d.diff_id().to_string(),
                                })
                            }
                        });
                    if r.is_err() {
                        failed.store(true, Ordering::SeqCst);
                    }
                    if let Ok(mut v) = results.lock() {
                        v[i] = Some(r);
                    }
                }
            });
        }
    });
    let results = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = Vec::with_capacity(results.len());
    let mut first_err = None;
    for r in results {
        match r {
            Some(Ok(d)) => out.push(d),
            Some(Err(e)) if first_err.is_none() => first_err = Some(e),
            _ => {}
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    layer_store::DetachedLayer::sync_all(&out).map_err(|source| LoadError::Register {
        origin: origin.to_owned(),
        name: "(syncing the layers)".to_owned(),
        source: Box::new(source),
    })?;
    Ok(out)
}

fn short(d: &layer_store::DiffId) -> String {
    d.0.hex().chars().take(12).collect()
}
