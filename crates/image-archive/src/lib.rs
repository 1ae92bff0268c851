//! Image archives as docker and OCI tools write them, without a store.
//!
//! - [`format`]: the files of a `docker save` archive (`manifest.json`, `repositories`, the
//!   legacy `<v1 id>/{VERSION,json,layer.tar}`) and of an OCI image layout (`oci-layout`,
//!   `index.json`, image manifests and descriptors), with the media types and annotations
//!   docker, skopeo and umoci use.
//!
//! # Example
//!
//! ```
//! use image_archive::format::ManifestEntry;
//!
//! let json = br#"[{"Config":"a5e9.json","RepoTags":["bbapp:1"],"Layers":["fd92/layer.tar"]}]"#;
//! let entries: Vec<ManifestEntry> = serde_json::from_slice(json)?;
//! assert_eq!(entries[0].repo_tags.as_deref(), Some(&["bbapp:1".to_owned()][..]));
//! # Ok::<(), serde_json::Error>(())
//! ```

// Errors carry the layers and images they concern (65-byte digests); they are the cold path,
// so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod format;
mod gojson;
mod tar;
pub mod v1;
pub mod write;

pub use crate::write::{
    BoxError, Compression, Format, LayerRef, LayerSource, Progress, SaveImage, Summary, WriteError,
    WriteOptions, write_archive,
};
