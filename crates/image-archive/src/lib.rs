//! Image archives as docker and OCI tools write them, without a store.
//!
//! - [`format`]: the files of a `docker save` archive (`manifest.json`, `repositories`, the
//!   legacy `<v1 id>/{VERSION,json,layer.tar}`) and of an OCI image layout (`oci-layout`,
//!   `index.json`, image manifests and descriptors), with the media types and annotations
//!   docker, skopeo and umoci use.
//! - [`source`]: random access to an archive's members ([`source::TarFile`] read in place or
//!   staged from a stream, [`source::DirSource`] for a layout directory), names confined to
//!   the archive.
//! - [`plan`]: the images an archive holds (any of the formats above, found from the
//!   content), and their layers as verified, decompressed streams ([`compress`]).
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

pub mod compress;
mod error;
pub mod format;
pub mod plan;
pub mod source;

pub use error::ReadError;
