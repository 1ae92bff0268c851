//! imgstore: read and repair a Docker data root without dockerd.
//!
//! The porcelain under the `imgstore` command: it opens a data root the way dockerd does
//! (`<data-root>/image/<driver>/{imagedb,layerdb,repositories.json}`), and lists, inspects,
//! tags, removes and checks images with dockerd's rules and the docker CLI's output.
//!
//! ```
//! use imgstore::reference::Reference;
//! use imgstore::gofmt::human_size_with_precision;
//!
//! let r = Reference::parse_normalized("peer/base:v1").expect("valid reference");
//! assert_eq!(r.to_string(), "docker.io/peer/base:v1");
//! assert_eq!(human_size_with_precision(1_234_567.0, 3), "1.23MB");
//! ```

pub mod cli;
pub mod dataroot;
pub mod fsck;
pub mod fsutil;
pub mod gofmt;
pub mod ops;
pub mod output;
pub mod overlay2;
pub mod reference;
pub mod refstore;
pub mod store;
pub mod template;
pub mod tree;
