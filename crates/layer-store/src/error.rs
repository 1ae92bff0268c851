//! Errors of opening a store and registering layers.

use std::path::PathBuf;

use crate::driver::DriverError;
use crate::ids::ChainId;
use crate::transaction::TransactionError;

/// Why a [`LayerStore`](crate::LayerStore) could not be opened. Broken layers never cause
/// this: they are skipped and reported in the [`RestoreReport`](crate::RestoreReport).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A directory of the layerdb could not be created or listed.
    #[error("layer store: cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A directory of the layerdb is a symbolic link or not a directory (never followed),
    /// or cannot be opened.
    #[error("layer store: {0}")]
    Fs(#[from] durable_fs::Error),
}

/// Why registering a layer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// The store was opened read-only.
    #[error("layer store {root} is open read-only")]
    ReadOnly {
        /// The layerdb root.
        root: PathBuf,
    },
    /// The store holds as many layers as it can index (`u32::MAX - 1`).
    #[error("layer store {root} is full")]
    Full {
        /// The layerdb root.
        root: PathBuf,
    },
    /// The parent layer is not in the store (dockerd's `ErrLayerDoesNotExist`).
    #[error("layer does not exist: parent {0}")]
    ParentNotFound(ChainId),
    /// The parent chain is already [`MAX_LAYER_DEPTH`](crate::MAX_LAYER_DEPTH) layers deep
    /// (dockerd's `ErrMaxDepthExceeded`).
    #[error("max depth exceeded: parent {parent} is {depth} layers deep (max {max})", max = crate::info::MAX_LAYER_DEPTH)]
    MaxDepthExceeded {
        /// The parent layer.
        parent: ChainId,
        /// Its depth (number of layers in its chain).
        depth: usize,
    },
    /// Writing the layer directory failed.
    #[error(transparent)]
    Transaction(#[from] TransactionError),
    /// The content driver failed.
    #[error("content driver failed for cache id {cache_id}: {source}")]
    Driver {
        /// The layer's cache ID.
        cache_id: String,
        /// The driver's error.
        #[source]
        source: DriverError,
    },
}
