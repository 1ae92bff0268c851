//! Docker's layer store: chain IDs, the layerdb on disk, reference counting and restore,
//! byte-compatible with dockerd 20.10 (the metadata side of moby's `layer` package).
//!
//! - [`ChainId`], [`DiffId`], [`chain_id`], [`chain_ids`]: ChainID(L0) = DiffID(L0),
//!   ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
//! - [`LayerStore`]: the layerdb at `<data-root>/image/<driver>/layerdb`, with
//!   `sha256/<chain-hex>/{diff,size,cache-id,parent,tar-split.json.gz}`. New layers are
//!   written through a [`Transaction`] (staging dir under `tmp/`, fsync, one rename, fsync of
//!   the directory); deletion renames to `<hex>-<random>-removing` first. Leftovers of both
//!   are cleaned by the next read-write open.
//! - Reference counting as dockerd: a layer is held by its children, by RW mounts and by
//!   every [`LayerHandle`]; [`LayerStore::release`] deletes what is no longer referenced and
//!   returns it, child first. [`LayerStore`] implements [`LayerGetReleaser`].
//! - Restore ([`LayerStore::open`]) skips broken layers (and their children) with a
//!   [`SkipReason`] in the [`RestoreReport`], and never deletes them.
//! - Layer contents live in a [`Driver`], keyed by cache ID; [`NullDriver`] keeps nothing.
//!
//! # Example
//!
//! ```
//! use layer_store::{LayerStore, NullDriver, DiffId};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let (store, outcome) = LayerStore::open(dir.path().join("layerdb"), Box::new(NullDriver))?;
//! assert_eq!(outcome.restored, 0);
//!
//! let base: DiffId = "sha256:516408ace5e52b139d13e99da654811994859543e92849eb04ab72af8d752856".parse()?;
//! let top: DiffId = "sha256:4061e969f27fa3e1c20287f02b25d50c8d30d319c29c3c48208b1872836930d8".parse()?;
//! let h1 = store.register_metadata(base, 100, None)?;
//! let h2 = store.register_metadata(top, 20, Some(h1.chain_id()))?;
//! assert_eq!(
//!     h2.chain_id().to_string(),
//!     "sha256:686712228e91a77be8ad0d3d811b66ea7b6a5ad5d08b392d6247fcf659d9fb30"
//! );
//! assert_eq!(store.layer(h2.chain_id()).map(|l| l.size), Some(120));
//!
//! // The base is still held by its child: releasing its handle deletes nothing.
//! assert!(store.release(&h1)?.is_empty());
//! // Releasing the top deletes both, child first.
//! let deleted = store.release(&h2)?;
//! assert_eq!(deleted.len(), 2);
//! assert_eq!(deleted[0].chain_id, *h2.chain_id());
//! # Ok(())
//! # }
//! ```

pub mod apply;
pub mod content;
mod driver;
mod error;
mod handle;
mod ids;
mod info;
mod map;
mod outcome;
mod overlay2;
mod random;
mod records;
mod register;
mod restore;
mod store;
pub mod tarsplit;
pub mod transaction;
mod vfs;

pub use crate::content::{ContentError, DiffStream, DiffSummary, TarStream};
pub use crate::driver::{ContentIssue, ContentRepair, Driver, DriverError, NullDriver};
pub use crate::error::{OpenError, RegisterError};
pub use crate::handle::{GetError, LayerGetReleaser, LayerHandle, LayerMetadata, ReleaseError};
pub use crate::ids::{ChainId, ChainIds, DiffId, chain_id, chain_ids};
pub use crate::info::{LayerInfo, MAX_LAYER_DEPTH};
pub use crate::outcome::{Leftover, LeftoverKind, RestoreReport, SkipReason, SkippedLayer};
pub use crate::overlay2::{
    IN_FLIGHT_PREFIX, MAX_LOWERS, Overlay2Driver, SHORT_ID_LEN, in_flight_cache_id, is_short_id,
};
pub use crate::records::LayerRecord;
pub use crate::register::{DetachedLayer, RegisterOptions, TAR_SPLIT_FILE, TarStreamError};
pub use crate::store::{LayerStore, OpenMode, PendingLayer};
pub use crate::transaction::{Transaction, TransactionError};
pub use crate::vfs::VfsDriver;
