//! `save`: images of a data root as a `docker save` archive or an OCI image layout, with
//! `docker save`'s rules (moby 20.10 `image/tarexport/save.go`) for which images and tags go
//! in, and `image-archive`'s writer for the archive.
//!
//! - [`select`]: the images an argument list names, as dockerd's `parseNames`: a tag (that
//!   image, with that tag), a repository name alone (every image it tags, with those tags,
//!   sorted), a full or short image ID (that image, untagged). An image named twice is saved
//!   once, with the tags of every argument.
//! - [`StoreLayers`]: the layer store as the writer's [`LayerSource`]: each layer's tar stream
//!   reassembled from its tar-split metadata and the storage driver's files, and verified
//!   against its diff ID.
//! - [`save`]: both, to any writer; [`save_to_file`] writes a temporary file beside the
//!   target and renames it into place only when the whole archive is written and synced.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use digest_set::Digest;
use image_archive::{
    BoxError, LayerRef, LayerSource, SaveImage, Summary, WriteError, WriteOptions,
};
use image_store::SearchError;
use layer_store::LayerStore;

use crate::error::LookupError;
use crate::reference::{AnyReference, Reference};
use crate::store::Store;

/// Why `save` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaveError {
    /// An argument names no image (or several).
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// Writing the archive failed (a layer's content is missing or changed, the output
    /// failed...).
    #[error(transparent)]
    Write(Box<WriteError>),
    /// The output file could not be created, written, synced or renamed into place.
    #[error("{0}")]
    Output(String),
}

impl From<WriteError> for SaveError {
    fn from(e: WriteError) -> Self {
        SaveError::Write(Box::new(e))
    }
}

/// The images `names` designate, in the order first named, each with the tags the
/// arguments give it (dockerd's `parseNames`), its repo digests and its parent link.
pub fn select(store: &Store, names: &[String]) -> Result<Vec<SaveImage>, SaveError> {
    let mut order: Vec<Digest> = Vec::new();
    let mut tags: HashMap<Digest, Vec<Reference>> = HashMap::new();
    let mut add = |id: Digest, tag: Option<Reference>| {
        let list = tags.entry(id).or_insert_with(|| {
            order.push(id);
            Vec::new()
        });
        if let Some(t) = tag
            && !list.contains(&t)
        {
            list.push(t);
        }
    };
    for name in names {
        match AnyReference::parse(name).map_err(LookupError::from)? {
            AnyReference::Id(id) => {
                if !store.contains(&id) {
                    return Err(LookupError::NoSuchImage(id.to_string()).into());
                }
                add(id, None);
            }
            AnyReference::Named(r) if r.familiar_name() == "sha256" => {
                // `sha256:<prefix>`: an image ID prefix.
                add(search(store, name, &r)?, None);
            }
            AnyReference::Named(r) if r.tag().is_none() && r.digest().is_none() => {
                let repo = r.familiar_name();
                let mut refs: Vec<(Reference, Digest)> = store
                    .refs()
                    .entries()
                    .filter(|(name, _, _)| *name == repo)
                    .filter_map(|(_, r, id)| {
                        Some((Reference::parse_normalized(r).ok()?, id.parse().ok()?))
                    })
                    .filter(|(_, id)| store.contains(id))
                    .collect();
                refs.sort_by_cached_key(|(r, _)| r.to_string());
                if refs.is_empty() {
                    add(search(store, name, &r)?, None);
                }
                for (r, id) in refs {
                    // A digest reference brings its image, without a tag.
                    let tag = r.tag().is_some().then_some(r);
                    add(id, tag);
                }
            }
            AnyReference::Named(r) => {
                let id = store
                    .refs()
                    .get(&r)
                    .filter(|id| store.contains(id))
                    .ok_or_else(|| LookupError::NoSuchImage(r.familiar_string()))?;
                let tag = r.digest().is_none().then_some(r);
                add(id, tag);
            }
        }
    }
    order
        .into_iter()
        .map(|id| {
            let image = store.config(&id)?;
            let (_, repo_digests) = store.repo_tags_digests(&id);
            Ok(SaveImage {
                image,
                tags: tags.remove(&id).unwrap_or_default(),
                repo_digests,
                parent: store.image(&id).and_then(|e| e.parent),
            })
        })
        .collect()
}

/// dockerd's `Search`: a unique image ID prefix.
fn search(store: &Store, term: &str, r: &Reference) -> Result<Digest, LookupError> {
    match store.image_store().search(term) {
        Ok(id) => Ok(id.0),
        Err(SearchError::Ambiguous {
            count, candidates, ..
        }) => Err(LookupError::Ambiguous {
            term: term.to_owned(),
            count,
            candidates: candidates.iter().map(|c| c.short()).collect(),
        }),
        Err(_) => Err(LookupError::NoSuchImage(
            r.clone().with_default_tag().familiar_string(),
        )),
    }
}

/// The layer store as a [`LayerSource`]: tar streams reassembled from tar-split and the
/// driver's files, verified against their diff IDs.
#[derive(Debug)]
pub struct StoreLayers<'a> {
    layers: &'a LayerStore,
}

impl<'a> StoreLayers<'a> {
    /// The layers of `layers`.
    pub fn new(layers: &'a LayerStore) -> Self {
        StoreLayers { layers }
    }
}

impl LayerSource for StoreLayers<'_> {
    fn size(&self, layer: &LayerRef) -> Result<u64, BoxError> {
        let info = self
            .layers
            .layer(&layer.chain_id)
            .ok_or_else(|| format!("layer does not exist: {}", layer.chain_id))?;
        if info.diff_id != layer.diff_id {
            return Err(format!(
                "the layer store records diff ID {} for it, not {}",
                info.diff_id, layer.diff_id
            )
            .into());
        }
        Ok(self.layers.tar_stream_size(&layer.chain_id)?)
    }

    fn open(&self, layer: &LayerRef) -> Result<Box<dyn Read + '_>, BoxError> {
        Ok(Box::new(self.layers.tar_stream_chain(&layer.chain_id)?))
    }
}

/// Writes the archive of the images `names` designate to `out`.
pub fn save<W: Write>(
    store: &Store,
    names: &[String],
    out: W,
    options: WriteOptions<'_>,
) -> Result<(W, Summary), SaveError> {
    let images = select(store, names)?;
    let source = StoreLayers::new(store.layer_store());
    Ok(image_archive::write_archive(
        out, &images, &source, options,
    )?)
}

/// How many bytes [`SyncAhead`] lets accumulate before it asks for them to be flushed.
const SYNC_AHEAD: u64 = 64 << 20;

/// A file whose written data a helper thread flushes to disk (`fdatasync`) every
/// [`SYNC_AHEAD`] bytes while more is written, so that the final `fsync` before the rename
/// has little left to wait for.
struct SyncAhead {
    file: std::fs::File,
    unsynced: u64,
    tx: Option<std::sync::mpsc::SyncSender<()>>,
    helper: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl SyncAhead {
    fn new(file: std::fs::File) -> Self {
        let helper = file.try_clone().ok().and_then(|clone| {
            // At most one request waits: a writer that outpaces the disk queues no more.
            let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
            std::thread::Builder::new()
                .name("save-sync".to_owned())
                .spawn(move || {
                    while rx.recv().is_ok() {
                        clone.sync_data()?;
                    }
                    Ok(())
                })
                .ok()
                .map(|h| (tx, h))
        });
        let (tx, helper) = helper.unzip();
        SyncAhead {
            file,
            unsynced: 0,
            tx,
            helper,
        }
    }

    /// Stops the helper and flushes everything (data and metadata).
    fn finish(mut self) -> std::io::Result<()> {
        self.tx = None;
        if let Some(h) = self.helper.take() {
            h.join()
                .map_err(|_| std::io::Error::other("the sync thread panicked"))??;
        }
        self.file.sync_all()
    }
}

impl Write for SyncAhead {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.unsynced += n as u64;
        if self.unsynced >= SYNC_AHEAD {
            self.unsynced = 0;
            if let Some(tx) = &self.tx {
                // Full: the helper is still flushing an earlier batch; its next flush takes
                // these bytes too.
                let _ = tx.try_send(());
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// The longest part of the target's name a temporary file's name keeps.
const TEMP_NAME_KEEP: usize = 64;

/// Writes the archive to `path` as `docker save -o` does (mode 0600), never leaving a
/// partial file under that name: the archive goes to a temporary file beside it
/// (`.tmp-<name>-<random>`), which is synced and renamed over `path` only once complete, and
/// removed on any error.
pub fn save_to_file(
    store: &Store,
    names: &[String],
    path: &Path,
    options: WriteOptions<'_>,
) -> Result<Summary, SaveError> {
    // Look the images up before creating anything.
    let images = select(store, names)?;
    let out_err = |what: &str, e: &dyn std::fmt::Display| {
        SaveError::Output(format!("{what} {}: {e}", path.display()))
    };
    let name = path
        .file_name()
        .filter(|n| !n.is_empty() && n.as_bytes() != b"..")
        .ok_or_else(|| out_err("cannot write to", &"not a file name"))?;
    let dir_path = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = durable_fs::Dir::open(&dir_path).map_err(|e| out_err("cannot write", &e))?;
    let short: String = name
        .to_string_lossy()
        .chars()
        .filter(|c| *c != '/')
        .take(TEMP_NAME_KEEP)
        .collect();
    let (tmp, file) = dir
        .create_temp(&short, 0o600)
        .map_err(|e| out_err("cannot write", &e))?;
    let source = StoreLayers::new(store.layer_store());
    let result = image_archive::write_archive(SyncAhead::new(file), &images, &source, options)
        .map_err(SaveError::from)
        .and_then(|(file, summary)| {
            file.finish().map_err(|e| out_err("cannot sync", &e))?;
            let target: OsString = name.to_owned();
            dir.rename(&tmp, &dir, Path::new(&target))
                .map_err(|e| out_err("cannot write", &e))?;
            dir.sync()
                .map_err(|e| out_err("cannot sync the directory of", &e))?;
            Ok(summary)
        });
    if result.is_err() {
        let _ = dir.remove_file(&tmp);
    }
    result
}
