//! The [`StoreBackend`] trait: what the image store needs from a place that keeps configs.

use std::path::PathBuf;

use digest_set::Digest;

/// What went wrong in a [`StoreBackend`] operation. Every variant that concerns a file names it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No content is stored under this digest.
    #[error("no content for {id} ({path})")]
    NotFound {
        /// The digest asked for.
        id: Digest,
        /// Where it was looked for (empty for backends without files).
        path: PathBuf,
    },
    /// The stored content does not hash to its name.
    #[error("failed to verify {path}: content hashes to {actual}, not {id}")]
    Verify {
        /// The digest asked for.
        id: Digest,
        /// What the content hashes to (`algorithm:hex`).
        actual: String,
        /// The file.
        path: PathBuf,
    },
    /// `set` was given no data.
    #[error("invalid empty data")]
    EmptyData,
    /// The content is larger than the backend accepts.
    #[error("{path} is {size} bytes, over the limit of {limit} bytes for an image config")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A metadata key that is not `[A-Za-z0-9._-]+` (and not `.` or `..`).
    #[error("invalid metadata key {key:?}: allowed are A-Z a-z 0-9 . _ - (not . or ..)")]
    InvalidKey {
        /// The rejected key.
        key: String,
    },
    /// Something that should be a regular file is not (a directory, a symlink, a device...).
    #[error("{path} is not a regular file ({what})")]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        what: &'static str,
    },
    /// Any other I/O failure.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done, e.g. "read" or "rename".
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Where image configs and their metadata live. Content is addressed by its sha256 digest.
///
/// Implementations must be usable from many threads at once.
pub trait StoreBackend: Send + Sync {
    /// Every valid content digest, sorted. Entries whose names are not digests (temp files,
    /// stray names) are skipped.
    fn walk(&self) -> Result<Vec<Digest>, Error>;
    /// The content stored under `id`, verified to hash to `id`.
    fn get(&self, id: &Digest) -> Result<Vec<u8>, Error>;
    /// Stores `data` under its sha256 digest and returns the digest. Empty data is refused.
    fn set(&self, data: &[u8]) -> Result<Digest, Error>;
    /// Removes the content and all metadata of `id`. Missing content is [`Error::NotFound`].
    fn delete(&self, id: &Digest) -> Result<(), Error>;
    /// Writes metadata `key` of `id`. The content must exist.
    fn set_metadata(&self, id: &Digest, key: &str, data: &[u8]) -> Result<(), Error>;
    /// Reads metadata `key` of `id`; `Ok(None)` when the key is not set.
    fn get_metadata(&self, id: &Digest, key: &str) -> Result<Option<Vec<u8>>, Error>;
    /// Removes metadata `key` of `id`; removing a key that is not set is not an error.
    fn delete_metadata(&self, id: &Digest, key: &str) -> Result<(), Error>;
    /// Every digest that has a metadata directory, sorted (whether or not its content exists).
    fn metadata_digests(&self) -> Result<Vec<Digest>, Error>;
}
