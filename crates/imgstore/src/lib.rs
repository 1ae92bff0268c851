//! imgstore: read and repair a Docker data root without dockerd.
//!
//! The porcelain under the `imgstore` command: it opens a data root the way dockerd does
//! (`<data-root>/image/<driver>/{imagedb,layerdb,repositories.json}`), and lists, inspects,
//! tags, removes and checks images with dockerd's rules and the docker CLI's output.
//!
//! - [`store::Store`] opens a root (shared lock for reads, exclusive for writes) through the
//!   project's stores (`layer_store::LayerStore`, `image_store::ImageStore` over
//!   `imagedb_fs::FsBackend`), which restore it with dockerd's rules, and resolves image
//!   arguments ([`store::Store::resolve`]).
//! - [`ops`]: `tag` and `rm` ([`store::Store::tag`], [`store::Store::delete`]).
//! - [`save`]: `docker save`'s archives (and OCI layouts) of a root's images, through
//!   the `image-archive` crate's writer.
//! - [`query`]: dockerd's answers for `ls`, `inspect` and `history`; [`render`]: the docker
//!   CLI's rendering of them. [`tree`], [`fsck`]: what `tree` and `fsck` print.
//! - [`reference`](mod@reference) and [`refstore`]: Docker references and `repositories.json`
//!   (re-exported from the `docker-reference` crate).
//! - [`gofmt`] and [`template`]: Go-compatible formatting and `--format` templates.
//! - [`cli`]: each command as a function returning its output.
//!
//! ```
//! use imgstore::reference::Reference;
//! use imgstore::gofmt::human_size_with_precision;
//!
//! let r = Reference::parse_normalized("peer/base:v1").expect("valid reference");
//! assert_eq!(r.to_string(), "docker.io/peer/base:v1");
//! assert_eq!(human_size_with_precision(1_234_567.0, 3), "1.23MB");
//!
//! // A data root that does not exist yet reads as empty when asked to.
//! let dir = std::env::temp_dir().join("imgstore-doc-example-missing-root");
//! let store = imgstore::store::Store::open(&imgstore::store::OpenOptions {
//!     root: dir,
//!     driver: None,
//!     write: false,
//!     create_missing: true,
//!     lock_timeout: None,
//!     snapshots: None,
//! })
//! .expect("empty store");
//! assert!(store.images().is_empty());
//! ```

pub mod cli;
pub mod dataroot;
pub mod df;
pub mod distmeta;
pub mod error;
pub mod fsck;
pub mod gofmt;
pub mod load;
pub mod ops;
mod partials;
pub mod progress;
pub mod prune;
pub mod pull;
pub mod push;
pub mod query;
pub mod render;
pub mod repair;
pub mod save;
/// Docker references: the [`docker_reference`] crate's grammar.
pub use docker_reference::reference;
/// `repositories.json`: the [`docker_reference`] crate's reference store.
pub use docker_reference::refstore;
mod gzip;
pub mod remote;
pub mod snapshot;
pub mod store;
pub mod template;
pub mod tree;
