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
    /// Any other failure.
    #[error("driver error: {0}")]
    Other(String),
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
