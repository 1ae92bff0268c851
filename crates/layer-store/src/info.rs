//! [`LayerInfo`], what the store knows of one layer, and [`MAX_LAYER_DEPTH`].

use crate::handle::LayerMetadata;
use crate::ids::{ChainId, DiffId};

/// The deepest chain dockerd allows (`maxLayerDepth`): a layer cannot be registered on a
/// parent that is already this many layers deep.
pub const MAX_LAYER_DEPTH: usize = 125;

/// What the store knows of one layer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LayerInfo {
    /// The layer's chain ID (its directory name in the layerdb).
    pub chain_id: ChainId,
    /// The digest of its own uncompressed tar stream (`diff`).
    pub diff_id: DiffId,
    /// The chain ID of its parent (`parent`), `None` for a base layer.
    pub parent: Option<ChainId>,
    /// The content size of this layer alone (`size`).
    pub diff_size: u64,
    /// The content size of the whole chain: this layer plus all its parents (dockerd's
    /// `Layer.Size()`).
    pub size: u64,
    /// The content driver's ID for the layer (`cache-id`).
    pub cache_id: String,
    /// The number of layers in the chain (1 for a base layer).
    pub depth: usize,
}

impl LayerInfo {
    /// The [`LayerMetadata`] of this layer.
    pub fn metadata(&self) -> LayerMetadata {
        LayerMetadata {
            chain_id: self.chain_id,
            diff_id: self.diff_id,
            size: self.size,
            diff_size: self.diff_size,
            cache_id: self.cache_id.clone(),
        }
    }
}
