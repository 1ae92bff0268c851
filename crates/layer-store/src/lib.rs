//! Docker's layer store (being written: see issues 4 and 5).

mod handle;
mod ids;

pub use crate::handle::{GetError, LayerGetReleaser, LayerHandle, LayerMetadata, ReleaseError};
pub use crate::ids::{ChainId, DiffId, chain_id};
