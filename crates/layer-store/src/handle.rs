//! Handles on layers and the [`LayerGetReleaser`] trait the image store uses.

use crate::ids::{ChainId, DiffId};

/// What is known of a layer, as returned for each layer a release deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerMetadata {
    /// The layer's chain ID.
    pub chain_id: ChainId,
    /// The digest of its own tar stream.
    pub diff_id: DiffId,
    /// The size of the whole chain (this layer and its parents), in content bytes.
    pub size: u64,
    /// The size of this layer alone.
    pub diff_size: u64,
    /// The content driver's ID for the layer (`cache-id`).
    pub cache_id: String,
}

/// One reference on a layer. Every `get` gives out a new, distinct handle; releasing it drops
/// that reference. Not `Clone`: a handle is one reference.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LayerHandle {
    chain_id: ChainId,
    token: u64,
}

impl LayerHandle {
    /// A handle with the given token. Only layer stores create handles.
    pub fn new(chain_id: ChainId, token: u64) -> Self {
        LayerHandle { chain_id, token }
    }

    /// The chain ID of the layer this handle holds.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// The store's token that tells this handle from others on the same layer.
    pub fn token(&self) -> u64 {
        self.token
    }
}

/// Why `get` gave no handle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GetError {
    /// The store has no layer with this chain ID (dockerd's "layer does not exist").
    #[error("layer does not exist: {0}")]
    NotFound(ChainId),
}

/// Why `release` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The handle was already released, or never came from this store.
    #[error("layer not retained: {0}")]
    NotRetained(ChainId),
    /// Removing a layer that reached zero references failed.
    #[error("failed to delete layer {chain_id}: {message}")]
    Delete {
        /// The layer.
        chain_id: ChainId,
        /// What failed.
        message: String,
    },
}

/// The part of a layer store the image store uses: take and drop references on layers.
pub trait LayerGetReleaser: Send + Sync {
    /// A new reference on the layer `chain_id`.
    fn get(&self, chain_id: &ChainId) -> Result<LayerHandle, GetError>;
    /// Drops the reference `handle`; returns the layers this deleted, child first.
    fn release(&self, handle: &LayerHandle) -> Result<Vec<LayerMetadata>, ReleaseError>;
}
