//! Image archives as docker and OCI tools write them, without a store.
//!
//! - [`format`](mod@format): the files of a `docker save` archive (`manifest.json`, `repositories`, the
//!   legacy `<v1 id>/{VERSION,json,layer.tar}`) and of an OCI image layout (`oci-layout`,
//!   `index.json`, image manifests and descriptors), with the media types and annotations
//!   docker, skopeo and umoci use.
//! - [`source`]: random access to an archive's members ([`source::TarFile`] read in place or
//!   staged from a stream, [`source::DirSource`] for a layout directory), names confined to
//!   the archive.
//! - [`plan`]: the images an archive holds (any of the formats above, found from the
//!   content), and their layers as verified, decompressed streams ([`compress`]).
//! - [`write`](mod@write): [`write_archive`] streams a `docker save` archive (byte for byte what dockerd
//!   20.10 writes) or an OCI image layout (layers uncompressed, gzip or zstd) from image
//!   configs and a [`LayerSource`] of layer tar streams; nothing is staged on disk or in
//!   memory.
//! - [`v1`]: the legacy v1 IDs and `json` files of `docker save` (moby's `CreateID`).
//!
//! Archives written here keep what `docker load` loses (moby #22011): each image's repo digests, as
//! `RepoDigests` in `manifest.json` and [`ANNOTATION_REPO_DIGESTS`](format::ANNOTATION_REPO_DIGESTS)
//! in `index.json`, which other tools ignore.
//!
//! # Example
//!
//! A one-layer image saved as `docker save` would save it, its layer coming from memory:
//!
//! ```
//! use std::io::Read;
//! use std::sync::Arc;
//! use image_archive::format::ManifestEntry;
//! use image_archive::{BoxError, LayerRef, LayerSource, SaveImage, WriteOptions, write_archive};
//!
//! /// Layer tar streams by diff ID.
//! struct Memory(Vec<(layer_store::DiffId, Vec<u8>)>);
//!
//! impl LayerSource for Memory {
//!     fn size(&self, l: &LayerRef) -> Result<u64, BoxError> {
//!         let (_, tar) = self.0.iter().find(|(d, _)| *d == l.diff_id).ok_or("no layer")?;
//!         Ok(tar.len() as u64)
//!     }
//!     fn open(&self, l: &LayerRef) -> Result<Box<dyn Read + '_>, BoxError> {
//!         let (_, tar) = self.0.iter().find(|(d, _)| *d == l.diff_id).ok_or("no layer")?;
//!         Ok(Box::new(&tar[..]))
//!     }
//! }
//!
//! let layer = vec![0u8; 1024]; // an empty tar: its end-of-archive blocks
//! let diff_id = layer_store::DiffId(digest_set::Digest::sha256(&layer));
//! let config = format!(
//!     r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
//! );
//! let image = SaveImage {
//!     image: Arc::new(image_store::Image::from_bytes(config.into_bytes())?),
//!     tags: vec![docker_reference::reference::Reference::parse_normalized("example:1")?],
//!     repo_digests: Vec::new(),
//!     parent: None,
//! };
//! let (archive, summary) =
//!     write_archive(Vec::new(), &[image], &Memory(vec![(diff_id, layer)]), WriteOptions::default())?;
//! assert_eq!(summary.bytes, archive.len() as u64);
//!
//! let mut tar = tar::Archive::new(&archive[..]);
//! let mut manifest = Vec::new();
//! for entry in tar.entries()? {
//!     let mut entry = entry?;
//!     if entry.path()?.to_str() == Some("manifest.json") {
//!         entry.read_to_end(&mut manifest)?;
//!     }
//! }
//! let entries: Vec<ManifestEntry> = serde_json::from_slice(&manifest)?;
//! assert_eq!(entries[0].repo_tags.as_deref(), Some(&["example:1".to_owned()][..]));
//! assert_eq!(entries[0].layers.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// Errors carry the layers and images they concern (65-byte digests); they are the cold path,
// so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod compress;
mod error;
pub mod format;
mod gojson;
pub mod plan;
pub mod source;
mod tar_header;
pub mod v1;
pub mod write;

pub use crate::write::{
    BoxError, Compression, Format, LayerRef, LayerSource, Progress, SaveImage, Summary, WriteError,
    WriteOptions, write_archive,
};
pub use error::ReadError;
