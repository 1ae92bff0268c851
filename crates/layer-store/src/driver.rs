//! The content driver a [`LayerStore`](crate::LayerStore) keeps layer contents in.
//!
//! The layer store itself only keeps metadata (the layerdb). Each layer's files live in a
//! driver under the layer's `cache-id`. The [`Driver`] trait is the store's view of such a
//! driver; new methods are added with default implementations so that existing drivers (such
//! as [`NullDriver`]) keep compiling.

use std::fmt;
use std::path::PathBuf;

/// Why a driver operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// A file-system operation on `path` failed.
    #[error("driver I/O error on {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The cache ID cannot be used by this driver (e.g. it holds a `/`).
    #[error("invalid cache id {cache_id:?}: {reason}")]
    InvalidCacheId {
        /// The rejected cache ID.
        cache_id: String,
        /// Why it is rejected.
        reason: String,
    },
    /// Reading or applying layer content failed (bad tar stream, refused member, I/O).
    #[error(transparent)]
    Content(Box<crate::content::ContentError>),
    /// The driver cannot do this (e.g. [`NullDriver`] keeps no files to read back).
    #[error("the {driver} driver does not support {operation}")]
    Unsupported {
        /// The driver's name.
        driver: String,
        /// The operation.
        operation: &'static str,
    },
    /// A path in the driver's directory is not what it must be (a symbolic link, a FIFO,
    /// a path leaving the directory): never followed.
    #[error(transparent)]
    Fs(#[from] durable_fs::Error),
    /// The driver cannot write layers as this user (overlay2 creates character devices and
    /// `trusted.*` extended attributes, which need root).
    #[error("the {driver} driver needs root to write layers: {why}")]
    NeedsRoot {
        /// The driver's name.
        driver: String,
        /// What needs it.
        why: String,
    },
    /// The layer is deeper than the driver can stack.
    #[error("the {driver} driver cannot stack more than {max} lower layers (max depth exceeded)")]
    TooDeep {
        /// The driver's name.
        driver: String,
        /// The most lower layers it stacks.
        max: usize,
    },
    /// Any other failure.
    #[error("driver error: {0}")]
    Other(String),
}

/// Something wrong, or not ours, in a driver's directory: what
/// [`Driver::check_content`] finds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContentIssue {
    /// A layer's content directory is missing.
    Missing {
        /// The layer's cache ID.
        cache_id: String,
        /// Where its content should be.
        path: PathBuf,
    },
    /// A layer's short link (overlay2's `link` file and `l/<short>` symlink) is missing,
    /// unreadable or does not lead to the layer's `diff/`.
    BadLink {
        /// The layer's cache ID.
        cache_id: String,
        /// The file or link concerned.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A layer's `lower` names a short link that leads to no layer.
    LowerMissing {
        /// The layer's cache ID.
        cache_id: String,
        /// Its `lower` file.
        path: PathBuf,
        /// The entry (`l/<short>`).
        entry: String,
    },
    /// A short link whose target is missing.
    DanglingLink {
        /// The link.
        path: PathBuf,
        /// Where it points.
        target: String,
    },
    /// A directory one of this store's writes was building when it was interrupted (named
    /// for `cache_id`): provably ours, safe to remove when no layer uses `cache_id`.
    InFlight {
        /// The directory.
        path: PathBuf,
        /// The cache ID it was for.
        cache_id: String,
    },
    /// A directory no layer or mount names. It may be live data of another user of the
    /// driver (dockerd's BuildKit keeps content there under its own records): never ours
    /// to delete.
    Unnamed {
        /// The directory.
        path: PathBuf,
    },
}

/// What [`Driver::repair_content`] did in a driver's directory, one action each.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContentRepair {
    /// The in-flight directory of an interrupted write (named for `cache_id`, which no layer,
    /// mount or leftover uses) was removed.
    RemovedInFlight {
        /// The directory.
        path: PathBuf,
        /// The cache ID it was for.
        cache_id: String,
    },
    /// A short link whose target does not exist was removed (it holds nothing).
    RemovedDanglingLink {
        /// The link.
        path: PathBuf,
        /// Where it pointed.
        target: String,
    },
    /// A layer's missing short link was created again from its `link` file, as the
    /// driver's commit would have.
    Relinked {
        /// The layer's cache ID.
        cache_id: String,
        /// The link created.
        path: PathBuf,
    },
}

impl fmt::Display for ContentRepair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContentRepair::RemovedInFlight { path, cache_id } => write!(
                f,
                "removed {}: content of an interrupted layer write (cache-id {cache_id})",
                path.display()
            ),
            ContentRepair::RemovedDanglingLink { path, target } => write!(
                f,
                "removed {}: short link to {target}, which does not exist",
                path.display()
            ),
            ContentRepair::Relinked { cache_id, path } => write!(
                f,
                "linked {}: the short link of layer content {cache_id} was missing",
                path.display()
            ),
        }
    }
}

/// Where layer contents live, keyed by cache ID (dockerd's graph driver).
///
/// Implementations must be usable from several threads.
pub trait Driver: Send + Sync + fmt::Debug {
    /// The driver's name, as in `<data-root>/image/<name>/layerdb`.
    fn name(&self) -> &str;

    /// Creates the (empty) content of a new layer `cache_id` on top of `parent_cache_id`.
    fn create(&self, cache_id: &str, parent_cache_id: Option<&str>) -> Result<(), DriverError>;

    /// Removes the content of layer `cache_id`. Removing content that does not exist is not
    /// an error.
    fn remove(&self, cache_id: &str) -> Result<(), DriverError>;

    /// Applies the members of a layer's tar stream to the (freshly created) content of
    /// `cache_id` and returns the layer's size (see
    /// [`DiffSummary::size`](crate::content::DiffSummary::size)). The default keeps nothing:
    /// it reads the members through (so the stream is still hashed and its tar-split recorded).
    fn apply_diff(
        &self,
        cache_id: &str,
        diff: &mut crate::content::DiffStream<'_>,
    ) -> Result<u64, DriverError> {
        let _ = cache_id;
        while diff
            .next_entry()
            .map_err(|e| DriverError::Content(Box::new(e)))?
            .is_some()
        {}
        Ok(diff.size())
    }

    /// Makes the content of `cache_id` durable (flushes it to disk). The default does
    /// nothing.
    fn sync(&self, cache_id: &str) -> Result<(), DriverError> {
        let _ = cache_id;
        Ok(())
    }

    /// Whether a layer's content can be created and filled before its parent is known
    /// ([`create`](Self::create) with no parent, then [`attach_parent`](Self::attach_parent)
    /// before [`commit`](Self::commit)): true where a layer's directory holds only its own
    /// changes (overlay2), so that the layers of an image can be written in parallel. The
    /// default, `false`, is right for drivers whose layer starts as a copy of its parent
    /// (vfs).
    fn independent_layers(&self) -> bool {
        false
    }

    /// Links the content of `cache_id`, created without a parent, to its parent
    /// `parent_cache_id` (overlay2 writes `lower`, `work/` and the parent's `committed`).
    /// Only called when [`independent_layers`](Self::independent_layers) is true. The default
    /// does nothing.
    fn attach_parent(
        &self,
        cache_id: &str,
        parent_cache_id: Option<&str>,
    ) -> Result<(), DriverError> {
        let _ = (cache_id, parent_cache_id);
        Ok(())
    }

    /// Makes the content of `cache_id`, complete and synced, the layer's for good, just
    /// before its layerdb entry is committed (overlay2 renames its in-flight directory and
    /// links it). Called once per layer; [`remove`](Self::remove) must still remove the
    /// content afterwards. The default does nothing.
    fn commit(&self, cache_id: &str) -> Result<(), DriverError> {
        let _ = cache_id;
        Ok(())
    }

    /// Makes the content of all of `cache_ids` durable. The default syncs each in turn;
    /// drivers whose [`sync`](Self::sync) flushes a whole file system (vfs, overlay2) do it
    /// once.
    fn sync_many(&self, cache_ids: &[&str]) -> Result<(), DriverError> {
        for c in cache_ids {
            self.sync(c)?;
        }
        Ok(())
    }

    /// What `docker inspect` shows as `GraphDriver.Data` for layer `cache_id` (dockerd's
    /// `GetMetadata`). The default, `None`, is what vfs shows (`null`).
    fn metadata(
        &self,
        cache_id: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>, DriverError> {
        let _ = cache_id;
        Ok(None)
    }

    /// Checks the driver's directory against the cache IDs in use (`layers`: those of the
    /// layers, whose content must be whole; `others`: mounts and layers that failed to load,
    /// whose content must not be called unnamed). Reads only. The default finds nothing.
    fn check_content(
        &self,
        layers: &[&str],
        others: &[&str],
    ) -> Result<Vec<ContentIssue>, DriverError> {
        let _ = (layers, others);
        Ok(Vec::new())
    }

    /// Repairs what interrupted writes left in the driver's directory, given the same cache
    /// IDs as [`check_content`](Self::check_content): removes only what is provably this
    /// store's and unused (in-flight directories of a cache ID nothing names, links that
    /// lead nowhere) and finishes what a commit would have done; never touches a directory
    /// nothing names (it may be another program's). Returns what it did. The default does
    /// nothing.
    fn repair_content(
        &self,
        layers: &[&str],
        others: &[&str],
    ) -> Result<Vec<ContentRepair>, DriverError> {
        let _ = (layers, others);
        Ok(Vec::new())
    }

    /// Opens the content of the member `name` (its raw name in the layer's tar stream) of
    /// layer `cache_id`, to reassemble the tar stream. The default fails with
    /// [`DriverError::Unsupported`].
    fn open_file(
        &self,
        cache_id: &str,
        name: &[u8],
    ) -> Result<Box<dyn std::io::Read + Send>, DriverError> {
        let _ = (cache_id, name);
        Err(DriverError::Unsupported {
            driver: self.name().to_string(),
            operation: "reading layer files",
        })
    }
}

/// A driver that keeps no content: every operation succeeds and stores nothing. For stores
/// used only for metadata (tests, inspection).
#[derive(Debug, Clone, Copy, Default)]
pub struct NullDriver;

impl Driver for NullDriver {
    fn name(&self) -> &str {
        "null"
    }

    fn create(&self, _cache_id: &str, _parent_cache_id: Option<&str>) -> Result<(), DriverError> {
        Ok(())
    }

    fn remove(&self, _cache_id: &str) -> Result<(), DriverError> {
        Ok(())
    }
}
