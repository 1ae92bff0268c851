//! Docker's image store: image configs, the layers they hold, and the parent/child graph.
//!
//! This is a port of moby's `image/store.go` (dockerd 20.10), reading and writing the same
//! `imagedb` a dockerd data root holds (`/var/lib/docker/image/<driver>/imagedb`):
//!
//! - [`Image`]: a config's exact bytes (its ID is their sha256; they are never re-serialised)
//!   and its typed model [`ImageConfig`] (moby's `Image`/`V1Image`, docker's
//!   [`ContainerConfig`]), decoded as Go decodes it.
//! - [`ImageStore`]: `open` (restore; or [`ImageStore::load`] then [`Loaded::attach`], to open
//!   the layer store while the configs load), `create`, `get`, `info`, `delete`, `search`,
//!   `set_parent`, `get_parent`, `children`, `map`, `heads`, `len` and the
//!   `lastUpdated`/`builtLocally` metadata, over any
//!   [`StoreBackend`](imagedb_fs::StoreBackend) and
//!   [`LayerGetReleaser`](layer_store::LayerGetReleaser). Memory keeps an [`ImageInfo`] per
//!   image, not its config: `get` reads a config again unless a caller still holds it.
//! - [`time`]: RFC 3339 timestamps as Go formats and parses them.
//!
//! Where this store differs from moby on purpose: restore reads and hashes each config once
//! and runs in parallel; `create` checks the layer before writing, so a failure leaves no
//! orphan file; `set_parent` refuses unknown children and cycles; an ambiguous short ID names
//! its candidates; diff IDs must be digests (`sha256:<hex>`, moby accepts any string but no
//! layer can then match).
//!
//! # Example
//!
//! A store over the in-memory backend and a real layer store (metadata only):
//!
//! ```
//! use image_store::{ImageStore, SearchError};
//! use imagedb_fs::MemBackend;
//! use layer_store::{DiffId, LayerStore, NullDriver};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let (layers, _) = LayerStore::open(dir.path().join("layerdb"), Box::new(NullDriver))?;
//! // Register a layer, as `docker load` would before creating the image.
//! let diff: DiffId =
//!     "sha256:516408ace5e52b139d13e99da654811994859543e92849eb04ab72af8d752856".parse()?;
//! let registered = layers.register_metadata(diff, 80, None)?;
//!
//! let (store, report) = ImageStore::open(MemBackend::new(), layers)?;
//! assert_eq!(report.restored, 0);
//!
//! let base = store.create(
//!     br#"{"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:516408ace5e52b139d13e99da654811994859543e92849eb04ab72af8d752856"]}}"#,
//! )?;
//! // The image holds its own reference on the layer now.
//! store.layers().release(&registered)?;
//! let child = store.create(
//!     br#"{"comment":"child","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:516408ace5e52b139d13e99da654811994859543e92849eb04ab72af8d752856"]}}"#,
//! )?;
//! store.set_parent(&child, &base)?;
//! assert_eq!(store.children(&base), vec![child]);
//! assert_eq!(store.heads().len(), 1);
//! assert_eq!(store.search(&child.short())?, child);
//! assert!(matches!(store.search("0000000"), Err(SearchError::NotFound { .. })));
//!
//! assert_eq!(store.get(&child)?.config().comment, "child");
//! // Deleting the child keeps the layer (the base still holds it); deleting the base
//! // removes it.
//! assert!(store.delete(&child)?.is_empty());
//! assert_eq!(store.delete(&base)?.len(), 1);
//! assert!(store.is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! An image on its own:
//!
//! ```
//! use image_store::{Image, ImageId};
//!
//! let config = br#"{"comment": "abc", "rootfs": {"type": "layers", "diff_ids": ["sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"]}}"#;
//! let image = Image::from_bytes(&config[..]).expect("valid config");
//! assert_eq!(
//!     image.id().to_string(),
//!     "sha256:19ed2664b9b3482d5d9453011aa23a97a8946aed50a5e161cbb34554ef1d516b"
//! );
//! assert_eq!(image.id(), ImageId::of_config(config));
//! assert_eq!(image.config().comment, "abc");
//! ```

// Errors carry the IDs they concern (65-byte digests) and the backend's error; they are the
// cold path, so their size does not matter.
#![allow(clippy::result_large_err)]

mod config;
mod error;
mod id;
mod image;
mod node;
mod store;
pub mod time;
mod validate;

pub use crate::config::{ContainerConfig, GoEmpty, HealthConfig, History, ImageConfig, RootFs};
pub use crate::error::{
    CreateError, DanglingParent, DeleteError, GetError, MetadataError, NotFound, OpenError,
    RestoreReport, SearchError, SetParentError, SkipReason, SkippedImage,
};
pub use crate::id::ImageId;
pub use crate::image::{Image, InvalidImage};
pub use crate::node::ImageInfo;
pub use crate::store::{ImageStore, KEY_BUILT_LOCALLY, KEY_LAST_UPDATED, KEY_PARENT, Loaded};
