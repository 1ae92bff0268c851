//! One error type per operation: opening a data root ([`OpenError`]), resolving an image
//! argument ([`LookupError`]), `tag` ([`TagError`]), `rm` ([`RemoveError`]), `inspect` and
//! `history` ([`QueryError`]). Each message is one line naming the file, image or argument.

use digest_set::Digest;

use crate::dataroot::DataRootError;
use crate::reference::ReferenceError;
use crate::refstore::RefStoreError;

/// Why a data root could not be opened ([`Store::open`](crate::store::Store::open)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Finding, configuring or locking the data root failed.
    #[error(transparent)]
    DataRoot(#[from] DataRootError),
    /// A directory of the data root is a symbolic link where a directory belongs, or not a
    /// directory: never followed.
    #[error("unsafe data root: {0}")]
    Unsafe(Box<durable_fs::Error>),
    /// `repositories.json` cannot be read.
    #[error(transparent)]
    RefStore(#[from] RefStoreError),
    /// Opening the layer store (`layerdb`) failed.
    #[error("cannot open the layer store: {0}")]
    LayerStore(Box<layer_store::OpenError>),
    /// Opening the image store (`imagedb`) failed.
    #[error("cannot open the image store: {0}")]
    ImageStore(Box<image_store::OpenError>),
    /// Opening the imagedb directory failed.
    #[error("cannot open the image store: {0}")]
    Backend(Box<imagedb_fs::Error>),
    /// The storage driver's content directory cannot be used.
    #[error("cannot use the storage driver's directory: {0}")]
    Driver(Box<layer_store::DriverError>),
    /// Finishing the release of a layer a killed deletion left failed.
    #[error("cannot finish an interrupted layer release: {0}")]
    Release(Box<layer_store::ReleaseError>),
}

impl From<durable_fs::Error> for OpenError {
    fn from(e: durable_fs::Error) -> Self {
        OpenError::Unsafe(Box::new(e))
    }
}

impl From<layer_store::OpenError> for OpenError {
    fn from(e: layer_store::OpenError) -> Self {
        OpenError::LayerStore(Box::new(e))
    }
}

impl From<image_store::OpenError> for OpenError {
    fn from(e: image_store::OpenError) -> Self {
        OpenError::ImageStore(Box::new(e))
    }
}

impl From<imagedb_fs::Error> for OpenError {
    fn from(e: imagedb_fs::Error) -> Self {
        OpenError::Backend(Box::new(e))
    }
}

impl From<layer_store::DriverError> for OpenError {
    fn from(e: layer_store::DriverError) -> Self {
        OpenError::Driver(Box::new(e))
    }
}

/// Why an image argument (ID, unique ID prefix or reference) names no single image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// No image matches the argument (dockerd's message).
    #[error("No such image: {}", .0.escape_debug())]
    NoSuchImage(String),
    /// A short ID matches several images.
    #[error("{term:?} is ambiguous: it matches {count} images: {}", .candidates.join(", "))]
    Ambiguous {
        /// The argument.
        term: String,
        /// How many images match.
        count: usize,
        /// Some of them (short IDs).
        candidates: Vec<String>,
    },
    /// The argument is not a valid reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// Reading the image's config again failed (removed or damaged since the store was
    /// opened).
    #[error(transparent)]
    Config(Box<image_store::GetError>),
}

impl From<image_store::GetError> for LookupError {
    fn from(e: image_store::GetError) -> Self {
        match e {
            image_store::GetError::NotFound(n) => LookupError::NoSuchImage(n.0.to_string()),
            other => LookupError::Config(Box::new(other)),
        }
    }
}

/// Why `tag` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TagError {
    /// The source does not name an image.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// The target is not a valid reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The reference store refused or failed (e.g. a tag with a digest).
    #[error(transparent)]
    RefStore(#[from] RefStoreError),
    /// Writing the image's `lastUpdated` failed.
    #[error(transparent)]
    Metadata(Box<image_store::MetadataError>),
}

impl From<image_store::MetadataError> for TagError {
    fn from(e: image_store::MetadataError) -> Self {
        TagError::Metadata(Box::new(e))
    }
}

/// Why `rm` of one image argument failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoveError {
    /// The argument does not name an image.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// A delete conflict (dockerd's message).
    #[error("conflict: unable to delete {short} ({force}) - {message}")]
    Conflict {
        /// The image's short ID.
        short: String,
        /// `must be forced` or `cannot be forced`.
        force: &'static str,
        /// Why.
        message: String,
    },
    /// A container uses the image a reference names (dockerd's message).
    #[error(
        "conflict: unable to remove repository reference {reference:?} (must force) - container {container} is using its referenced image {image}"
    )]
    ReferenceInUse {
        /// The reference given.
        reference: String,
        /// The container's short ID.
        container: String,
        /// The image's short ID.
        image: String,
    },
    /// A reference that is not in the reference store (e.g. `name:tag@digest`).
    #[error("reference does not exist: {0}")]
    ReferenceMissing(String),
    /// The image store has no such image (dockerd's message when pruning reaches a parent
    /// that was not restored).
    #[error("unrecognized image ID {0:?}")]
    UnrecognizedImage(String),
    /// The storage driver's content cannot be removed by this tool.
    #[error("removing layers of storage driver {0:?} is not supported (only vfs and overlay2)")]
    UnsupportedDriver(String),
    /// Untagging failed in the reference store.
    #[error(transparent)]
    RefStore(#[from] RefStoreError),
    /// Deleting the image failed in the image store (or releasing its layer).
    #[error(transparent)]
    Delete(Box<image_store::DeleteError>),
    /// Writing or clearing the note of a layer release failed.
    #[error("cannot note the layer release: {0}")]
    Note(Box<durable_fs::Error>),
}

impl From<ReferenceError> for RemoveError {
    fn from(e: ReferenceError) -> Self {
        RemoveError::Lookup(e.into())
    }
}

impl From<image_store::DeleteError> for RemoveError {
    fn from(e: image_store::DeleteError) -> Self {
        RemoveError::Delete(Box::new(e))
    }
}

impl From<durable_fs::Error> for RemoveError {
    fn from(e: durable_fs::Error) -> Self {
        RemoveError::Note(Box::new(e))
    }
}

/// Why `inspect` or `history` of an image failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The argument does not name an image, or its config cannot be read.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// The layer an image needs is gone.
    #[error("layer does not exist: {0}")]
    LayerMissing(Digest),
    /// A history that names more layers than the image has.
    #[error("too many non-empty layers in History section")]
    TooManyLayers,
}

impl From<image_store::GetError> for QueryError {
    fn from(e: image_store::GetError) -> Self {
        QueryError::Lookup(e.into())
    }
}
