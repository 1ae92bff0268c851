//! The store's error types and its restore report.

use digest_set::Digest;
use layer_store::ChainId;

use crate::id::ImageId;
use crate::image::InvalidImage;

/// Why [`ImageStore::open`](crate::ImageStore::open) failed. Skipped images are not errors:
/// they are listed in the [`RestoreReport`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Listing the stored configs failed.
    #[error("failed to list image configs: {0}")]
    Walk(#[source] imagedb_fs::Error),
    /// The layer store failed for a reason other than a missing layer (which only skips the
    /// image); dockerd aborts its start on this too.
    #[error("failed to get layer {chain_id} for image {image}: {source}")]
    Layer {
        /// The image being restored.
        image: ImageId,
        /// Its top layer.
        chain_id: ChainId,
        /// The layer store's error.
        #[source]
        source: layer_store::GetError,
    },
}

/// Why an image found on disk was not restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SkipReason {
    /// The config could not be read or does not hash to its name (dockerd's "invalid image").
    #[error("invalid image: {0}")]
    Unreadable(String),
    /// The config is not a valid image config (dockerd's "invalid image").
    #[error("invalid image: {0}")]
    Invalid(InvalidImage),
    /// The image's OS is not this host's.
    #[error("not restoring image with unsupported operating system {0:?}")]
    UnsupportedOs(String),
    /// The image's top layer is not in the layer store (dockerd's "layer does not exist, not
    /// restoring image").
    #[error("layer does not exist, not restoring image (layer {0})")]
    LayerMissing(ChainId),
}

/// An image on disk that restore left out, and why. Its files stay on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedImage {
    /// The config's digest (its file name).
    pub id: ImageId,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// A `parent` metadata link restore could not follow. The link stays on disk; if an image with
/// that ID is created later, the link becomes live again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DanglingParent {
    /// The image carrying the link.
    pub child: ImageId,
    /// The link's value as stored (normally `sha256:<hex>`), or the read error.
    pub value: String,
    /// Whether the value names a digest (an image that was not restored) rather than being
    /// unreadable or malformed.
    pub parent: Option<ImageId>,
}

/// What [`ImageStore::open`](crate::ImageStore::open) found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// How many images were restored.
    pub restored: usize,
    /// The images left out, in digest order.
    pub skipped: Vec<SkippedImage>,
    /// Parent links to images that were not restored (or that could not be read), by child.
    pub dangling_parents: Vec<DanglingParent>,
}

/// The image is not in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("No such image: {0}")]
pub struct NotFound(pub ImageId);

/// Why [`ImageStore::get`](crate::ImageStore::get) gave no image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GetError {
    /// The image is not in the store.
    #[error(transparent)]
    NotFound(#[from] NotFound),
    /// The store knows the image, but its config could not be read again (removed or damaged
    /// on disk since the store was opened).
    #[error("failed to read image config {id}: {source}")]
    Read {
        /// The image.
        id: ImageId,
        /// The backend's error.
        #[source]
        source: imagedb_fs::Error,
    },
    /// The config read again is no longer a valid image config.
    #[error("image config {id} is no longer valid: {source}")]
    Invalid {
        /// The image.
        id: ImageId,
        /// Why it is not valid.
        #[source]
        source: InvalidImage,
    },
}

/// Why [`ImageStore::create`](crate::ImageStore::create) failed.
///
/// Nothing was written, except after [`CreateError::Write`] when the config reached the disk
/// before the error (a failed directory sync): the image is then in the store, as on disk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// The config is not a valid image config.
    #[error(transparent)]
    Invalid(#[from] InvalidImage),
    /// The image is for another operating system.
    #[error("operating system is not supported: {0:?}")]
    UnsupportedOs(String),
    /// The image's top layer is not in the layer store.
    #[error("failed to get layer {chain_id}: {source}")]
    Layer {
        /// The top layer.
        chain_id: ChainId,
        /// The layer store's error.
        #[source]
        source: layer_store::GetError,
    },
    /// Writing the config failed.
    #[error("failed to write image config {id}: {source}")]
    Write {
        /// The image.
        id: ImageId,
        /// The backend's error.
        #[source]
        source: imagedb_fs::Error,
    },
}

/// Why [`ImageStore::delete`](crate::ImageStore::delete) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeleteError {
    /// The image is not in the store.
    #[error(transparent)]
    NotFound(#[from] NotFound),
    /// A disk operation failed. The image is still in the store; children unlinked before the
    /// failure stay unlinked. Memory follows what the disk holds after the failure.
    #[error("failed to delete image {id}: {source}")]
    Backend {
        /// The image (or the child being unlinked).
        id: ImageId,
        /// The backend's error.
        #[source]
        source: imagedb_fs::Error,
    },
    /// The image was deleted, but releasing its layer failed.
    #[error("deleted image {id}, but failed to release its layer: {source}")]
    Release {
        /// The deleted image.
        id: ImageId,
        /// The layer store's error.
        #[source]
        source: layer_store::ReleaseError,
    },
}

/// Why [`ImageStore::search`](crate::ImageStore::search) found no single image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// No image ID matches.
    #[error("No such image: {term}")]
    NotFound {
        /// The term searched for.
        term: String,
    },
    /// The term cannot be part of an image ID (empty, not lowercase hex, unknown algorithm).
    #[error("No such image: {term} ({reason})")]
    InvalidTerm {
        /// The term searched for.
        term: String,
        /// Why it cannot match.
        reason: &'static str,
    },
    /// Several image IDs start with the term.
    #[error(
        "ambiguous image ID prefix {term:?}: it matches {count} images: {}{}",
        list(.candidates),
        if *.count > .candidates.len() { ", ..." } else { "" }
    )]
    Ambiguous {
        /// The term searched for.
        term: String,
        /// How many images match.
        count: usize,
        /// The first few matches, in sorted order.
        candidates: Vec<ImageId>,
    },
}

fn list(ids: &[ImageId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<digest_set::LookupError> for SearchError {
    fn from(e: digest_set::LookupError) -> Self {
        use digest_set::LookupError as L;
        match e {
            L::NotFound { term } => SearchError::NotFound { term },
            L::InvalidTerm { term, reason } => SearchError::InvalidTerm { term, reason },
            L::Ambiguous {
                term,
                count,
                candidates,
            } => SearchError::Ambiguous {
                term,
                count,
                candidates: candidates.into_iter().map(ImageId).collect(),
            },
        }
    }
}

/// Why [`ImageStore::set_parent`](crate::ImageStore::set_parent) failed.
///
/// Nothing changed, except after [`SetParentError::Backend`] when the link reached the disk
/// before the error: memory then follows the disk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetParentError {
    /// The child is not in the store.
    #[error("unknown image ID {0}")]
    UnknownImage(ImageId),
    /// The parent is not in the store (moby's "unknown parent image ID").
    #[error("unknown parent image ID {0}")]
    UnknownParent(ImageId),
    /// The link would make the image its own ancestor.
    #[error("cannot set parent of {id} to {parent}: {id} would become its own ancestor")]
    Cycle {
        /// The child.
        id: ImageId,
        /// The requested parent.
        parent: ImageId,
    },
    /// Writing the link failed.
    #[error("failed to write parent of {id}: {source}")]
    Backend {
        /// The child.
        id: ImageId,
        /// The backend's error.
        #[source]
        source: imagedb_fs::Error,
    },
}

/// Why reading or writing an image's metadata (`lastUpdated`, `builtLocally`) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// The image is not in the store.
    #[error(transparent)]
    NotFound(#[from] NotFound),
    /// The backend failed.
    #[error("metadata {key} of image {id}: {source}")]
    Backend {
        /// The image.
        id: ImageId,
        /// The metadata key.
        key: &'static str,
        /// The backend's error.
        #[source]
        source: imagedb_fs::Error,
    },
    /// The stored value is malformed.
    #[error("metadata {key} of image {id} is malformed: {reason}")]
    Malformed {
        /// The image.
        id: ImageId,
        /// The metadata key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

pub(crate) fn parse_parent(bytes: &[u8]) -> Option<ImageId> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse::<Digest>().ok())
        .map(ImageId)
}
