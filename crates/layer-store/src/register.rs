//! [`LayerStore::register`] and [`LayerStore::tar_stream`]: layers from and to tar streams.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use crate::content::{ContentError, DiffStream, TarStream};
use crate::driver::DriverError;
use crate::error::RegisterError;
use crate::handle::LayerHandle;
use crate::ids::{ChainId, DiffId};
use crate::store::{LayerStore, PendingLayer};
use crate::tarsplit;

/// The name of the tar-split file in a layer directory.
pub const TAR_SPLIT_FILE: &str = "tar-split.json.gz";

/// Options of [`LayerStore::register_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterOptions {
    /// The largest layer size accepted (the sum of the members' sizes, as dockerd counts
    /// it); a larger layer fails with [`ContentError::TooLarge`] and leaves nothing behind.
    pub max_size: Option<u64>,
    /// Flush the layer's content to disk before its metadata is committed (default `true`).
    /// dockerd does not; without it a crash can leave a committed layer whose files are
    /// incomplete.
    pub sync: bool,
}

impl Default for RegisterOptions {
    fn default() -> Self {
        RegisterOptions {
            max_size: None,
            sync: true,
        }
    }
}

/// A layer whose content is written but not committed, nor linked to a parent: see
/// [`LayerStore::register_detached`].
#[derive(Debug)]
pub struct DetachedLayer<'a> {
    pending: PendingLayer<'a>,
    diff_id: DiffId,
    size: u64,
}

impl DetachedLayer<'_> {
    /// The diff ID of the content (the sha256 of the stream).
    pub fn diff_id(&self) -> &DiffId {
        &self.diff_id
    }

    /// The layer's size, as the driver counts it.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Makes the content of all of `layers` durable at once (one `syncfs` where the driver
    /// allows): for layers registered with [`RegisterOptions::sync`] off, before their
    /// commits, so that a whole image costs one flush instead of one a layer.
    pub fn sync_all(layers: &[DetachedLayer<'_>]) -> Result<(), RegisterError> {
        let Some(first) = layers.first() else {
            return Ok(());
        };
        let ids: Vec<&str> = layers.iter().map(|l| l.pending.cache_id()).collect();
        first
            .pending
            .store()
            .driver()
            .sync_many(&ids)
            .map_err(|source| RegisterError::Driver {
                cache_id: ids.join(","),
                source,
            })
    }

    /// Links the layer on `parent` and commits it, as
    /// [`register_with`](LayerStore::register_with) would have on that parent. If the chain
    /// already exists, the content is discarded and a handle on the existing layer returned.
    pub fn commit(self, parent: Option<&ChainId>) -> Result<LayerHandle, RegisterError> {
        let DetachedLayer {
            mut pending,
            diff_id,
            size,
        } = self;
        pending.set_parent(parent)?;
        pending.commit(diff_id, size)
    }
}

/// Why [`LayerStore::tar_stream`] could not start a stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TarStreamError {
    /// The store has no such layer.
    #[error("layer does not exist: {0}")]
    NotFound(ChainId),
    /// The layer's tar-split file cannot be opened.
    #[error("cannot open {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The layer's tar-split file is not valid tar-split metadata.
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: tarsplit::TarSplitError,
    },
}

fn driver_to_io(e: DriverError) -> io::Error {
    match e {
        DriverError::Io { path, source } => io::Error::new(
            source.kind(),
            format!("cannot open layer file {}: {source}", path.display()),
        ),
        other => io::Error::other(other),
    }
}

impl LayerStore {
    /// Registers a layer from its uncompressed tar stream on top of `parent`, with default
    /// [`RegisterOptions`]. See [`register_with`](Self::register_with).
    pub fn register(
        &self,
        tar: impl Read,
        parent: Option<&ChainId>,
    ) -> Result<LayerHandle, RegisterError> {
        self.register_with(tar, parent, &RegisterOptions::default())
    }

    /// Registers a layer from its uncompressed tar stream on top of `parent` (dockerd's
    /// `Register`): reads the stream once, applying its members through the driver, writing
    /// `tar-split.json.gz`, hashing the whole stream (trailing bytes included) into the diff
    /// ID and counting the size; then commits the layer directory. If the layer already
    /// exists, the new content is discarded and a new handle on the existing layer is
    /// returned. A parent already [`MAX_LAYER_DEPTH`](crate::MAX_LAYER_DEPTH) deep is refused.
    ///
    /// On any error (a bad or hostile tar stream comes back as
    /// [`RegisterError::Driver`] with [`DriverError::Content`]) nothing is left behind: the
    /// driver content and the staging directory are removed.
    pub fn register_with(
        &self,
        tar: impl Read,
        parent: Option<&ChainId>,
        options: &RegisterOptions,
    ) -> Result<LayerHandle, RegisterError> {
        let pending = self.begin_register(parent)?;
        let (pending, diff_id, size) = self.fill(pending, tar, options)?;
        pending.commit(diff_id, size)
    }

    /// Registers a layer's content before its parent is known, where the driver allows it
    /// ([`Driver::independent_layers`](crate::Driver::independent_layers): overlay2), so that
    /// the layers of an image can be written in parallel: reads and applies the stream,
    /// writes its tar-split and syncs, like [`register_with`](Self::register_with), but
    /// commits nothing. [`DetachedLayer::commit`] then links it on its parent and commits it,
    /// in chain order. Dropping the [`DetachedLayer`] undoes everything. With a driver that
    /// does not allow it, fails with [`RegisterError::Driver`] /
    /// [`DriverError::Unsupported`] before reading anything.
    pub fn register_detached(
        &self,
        tar: impl Read,
        options: &RegisterOptions,
    ) -> Result<DetachedLayer<'_>, RegisterError> {
        if !self.driver().independent_layers() {
            return Err(RegisterError::Driver {
                cache_id: String::new(),
                source: DriverError::Unsupported {
                    driver: self.driver().name().to_owned(),
                    operation: "writing a layer before its parent",
                },
            });
        }
        let pending = self.begin_register(None)?;
        let (pending, diff_id, size) = self.fill(pending, tar, options)?;
        Ok(DetachedLayer {
            pending,
            diff_id,
            size,
        })
    }

    /// Applies `tar` to the pending layer's content and writes its tar-split; returns the
    /// diff ID and size.
    fn fill<'s>(
        &'s self,
        pending: PendingLayer<'s>,
        tar: impl Read,
        options: &RegisterOptions,
    ) -> Result<(PendingLayer<'s>, DiffId, u64), RegisterError> {
        let cache_id = pending.cache_id().to_string();
        let driver_err = |source: DriverError| RegisterError::Driver {
            cache_id: cache_id.clone(),
            source,
        };
        let content_err = |e: ContentError| driver_err(DriverError::Content(Box::new(e)));
        let Some(tx) = pending.transaction() else {
            return Err(RegisterError::ReadOnly {
                root: self.root().to_path_buf(),
            });
        };
        let file = tx.create_file(TAR_SPLIT_FILE)?;
        let tar_split_path = tx.dir().join(TAR_SPLIT_FILE);
        let io_content_err =
            |e: io::Error| content_err(ContentError::apply("write", &tar_split_path, e));
        let mut gz = tarsplit::BackgroundGzip::new(file).map_err(io_content_err)?;
        let mut diff = DiffStream::new(tar, &mut gz, options.max_size).map_err(content_err)?;
        let size = self
            .driver()
            .apply_diff(&cache_id, &mut diff)
            .map_err(driver_err)?;
        let (summary, _) = diff.finish().map_err(content_err)?;
        gz.finish().map_err(io_content_err)?;
        if options.sync {
            self.driver().sync(&cache_id).map_err(driver_err)?;
        }
        tracing::debug!(diff_id = %summary.diff_id, size, entries = summary.entries, "layer content registered");
        Ok((pending, summary.diff_id, size))
    }

    /// The exact tar stream of the layer `handle` holds, reassembled from its tar-split
    /// metadata and the driver's files and verified against its diff ID (see [`TarStream`]).
    pub fn tar_stream(&self, handle: &LayerHandle) -> Result<TarStream<'_>, TarStreamError> {
        self.tar_stream_chain(handle.chain_id())
    }

    /// Like [`tar_stream`](Self::tar_stream), by chain ID. The caller must keep the layer
    /// alive (hold a handle) while reading.
    pub fn tar_stream_chain(&self, chain_id: &ChainId) -> Result<TarStream<'_>, TarStreamError> {
        let info = self
            .layer(chain_id)
            .ok_or(TarStreamError::NotFound(*chain_id))?;
        let path = self.layer_dir(chain_id).join(TAR_SPLIT_FILE);
        let f = File::open(&path).map_err(|source| TarStreamError::Io { path, source })?;
        let driver = self.driver();
        let cache_id = info.cache_id;
        let open: crate::content::FileSource<'_> = Box::new(move |name: &[u8]| {
            let r: Box<dyn Read + '_> = driver.open_file(&cache_id, name).map_err(driver_to_io)?;
            Ok(r)
        });
        TarStream::new(f, info.diff_id, open).map_err(|source| TarStreamError::Io {
            path: self.layer_dir(chain_id).join(TAR_SPLIT_FILE),
            source,
        })
    }

    /// The length in bytes of the layer's tar stream: what [`tar_stream_chain`] yields when
    /// it succeeds. Read from the tar-split metadata alone (the recorded segments plus the
    /// members' sizes; no file content is touched), so that a caller can write a header
    /// that needs the length, such as a `layer.tar` member of an archive, before streaming
    /// the layer.
    ///
    /// [`tar_stream_chain`]: Self::tar_stream_chain
    pub fn tar_stream_size(&self, chain_id: &ChainId) -> Result<u64, TarStreamError> {
        if self.layer(chain_id).is_none() {
            return Err(TarStreamError::NotFound(*chain_id));
        }
        let path = self.layer_dir(chain_id).join(TAR_SPLIT_FILE);
        let f = File::open(&path).map_err(|source| TarStreamError::Io {
            path: path.clone(),
            source,
        })?;
        let gz = flate2::read::GzDecoder::new(f);
        let mut unpacker = tarsplit::Unpacker::new(io::BufReader::with_capacity(64 * 1024, gz));
        let mut size: u64 = 0;
        loop {
            match unpacker.next_entry() {
                Ok(Some(e)) => {
                    let n = match e.kind {
                        tarsplit::EntryKind::Segment => e.payload.len() as u64,
                        // The unpacker refuses negative sizes.
                        tarsplit::EntryKind::File => e.size.max(0) as u64,
                    };
                    size = size.saturating_add(n);
                }
                Ok(None) => return Ok(size),
                Err(source) => return Err(TarStreamError::Invalid { path, source }),
            }
        }
    }
}
