//! The [`StoreBackend`] trait: what the image store needs from a place that keeps configs.

use std::path::PathBuf;

use digest_set::Digest;

/// The largest config (or metadata value) a backend loads or stores: 16 MiB.
///
/// Real image configs are a few KiB; anything near this size is corrupt or hostile, and
/// refusing it keeps a bad file from exhausting memory at startup.
pub const MAX_CONFIG_SIZE: u64 = 16 << 20;

/// What went wrong in a [`StoreBackend`] operation. Every variant that concerns a file names it.
///
/// Use [`Error::is_not_found`] to tell "there is nothing there" apart from real failures, and
/// [`Error::is_corrupt`] for content that exists but cannot be trusted.
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
    /// The stored content is empty (zero bytes), so it cannot hash to its name. This is what a
    /// crash before the data reached the disk leaves behind with non-atomic writers
    /// (moby#17618). A verification failure, like [`Error::Verify`].
    #[error(
        "failed to verify {path}: the file is empty (0 bytes), expected content hashing to {id} \
         (truncated by a crash?)"
    )]
    EmptyContent {
        /// The digest asked for.
        id: Digest,
        /// The file.
        path: PathBuf,
    },
    /// `set` was given no data.
    #[error("invalid empty data")]
    EmptyData,
    /// The content is larger than the backend accepts ([`MAX_CONFIG_SIZE`]).
    #[error("{path} is {size} bytes, over the limit of {limit} bytes for an image config")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size (when found while reading: at least this many bytes).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A metadata key that is not `[A-Za-z0-9._-]+` (and not `.` or `..`, and not starting
    /// with `.tmp-`, which is reserved for temporary files).
    #[error(
        "invalid metadata key {key:?}: allowed are A-Z a-z 0-9 . _ - (not empty, not . or .., \
         not starting with .tmp-)"
    )]
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
    /// Something that should be a directory of the imagedb layout is not.
    #[error("{path} is not a directory ({what}); the imagedb layout needs a directory there")]
    NotADirectory {
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

impl Error {
    /// True when the error means "no content stored under this digest" ([`Error::NotFound`]).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// True when content exists but cannot be trusted: it fails verification
    /// ([`Error::Verify`], [`Error::EmptyContent`]), is too large ([`Error::TooLarge`]) or is
    /// not a regular file ([`Error::NotAFile`]).
    pub fn is_corrupt(&self) -> bool {
        matches!(
            self,
            Error::Verify { .. }
                | Error::EmptyContent { .. }
                | Error::TooLarge { .. }
                | Error::NotAFile { .. }
        )
    }

    /// True when the stored content does not hash to its name (including empty content).
    pub fn is_verify_failure(&self) -> bool {
        matches!(self, Error::Verify { .. } | Error::EmptyContent { .. })
    }

    /// The path this error concerns, if any (empty for [`Error::NotFound`] from backends
    /// without files).
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Error::NotFound { path, .. }
            | Error::Verify { path, .. }
            | Error::EmptyContent { path, .. }
            | Error::TooLarge { path, .. }
            | Error::NotAFile { path, .. }
            | Error::NotADirectory { path, .. }
            | Error::Io { path, .. } => Some(path),
            Error::EmptyData | Error::InvalidKey { .. } => None,
        }
    }
}

/// What [`StoreBackend::cleanup`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// The leftover temporary files that were removed.
    pub removed: Vec<PathBuf>,
}

impl CleanupReport {
    /// How many files were removed.
    pub fn len(&self) -> usize {
        self.removed.len()
    }

    /// True when nothing was removed.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty()
    }
}

/// Where image configs and their metadata live. Content is addressed by its sha256 digest.
///
/// Implementations must be usable from many threads at once.
///
/// Contract shared by all implementations (checked by the crate's contract tests):
/// - only sha256 content is stored; any other algorithm is [`Error::NotFound`];
/// - [`get`](StoreBackend::get) verifies: content that does not hash to its name is an error;
/// - metadata keys are validated (see [`validate_key`](crate::validate_key)), a bad key is
///   [`Error::InvalidKey`] and never reaches a path;
/// - [`set_metadata`](StoreBackend::set_metadata) and [`get_metadata`](StoreBackend::get_metadata)
///   require the content to exist ([`Error::NotFound`] otherwise); unlike moby they do not
///   re-hash it (use [`get`](StoreBackend::get) for that).
pub trait StoreBackend: Send + Sync {
    /// Every valid content digest, sorted. Entries whose names are not digests (temp files,
    /// stray names) are skipped.
    fn walk(&self) -> Result<Vec<Digest>, Error>;
    /// The content stored under `id`, verified to hash to `id`.
    fn get(&self, id: &Digest) -> Result<Vec<u8>, Error>;
    /// Stores `data` under its sha256 digest and returns the digest. Empty data is refused.
    fn set(&self, data: &[u8]) -> Result<Digest, Error>;
    /// Removes the content and all metadata of `id`. Missing content is [`Error::NotFound`]
    /// (the metadata is removed all the same, as moby does).
    fn delete(&self, id: &Digest) -> Result<(), Error>;
    /// Writes metadata `key` of `id`. The content must exist.
    fn set_metadata(&self, id: &Digest, key: &str, data: &[u8]) -> Result<(), Error>;
    /// Reads metadata `key` of `id`; `Ok(None)` when the key is not set. The content must
    /// exist ([`Error::NotFound`] otherwise).
    fn get_metadata(&self, id: &Digest, key: &str) -> Result<Option<Vec<u8>>, Error>;
    /// Removes metadata `key` of `id`; removing a key that is not set is not an error.
    fn delete_metadata(&self, id: &Digest, key: &str) -> Result<(), Error>;
    /// Every digest that has a metadata directory, sorted (whether or not its content exists).
    fn metadata_digests(&self) -> Result<Vec<Digest>, Error>;
    /// Removes leftovers of interrupted writes (temporary files). Backends without such
    /// leftovers report nothing. Do not call it while another process writes the same store.
    fn cleanup(&self) -> Result<CleanupReport, Error> {
        Ok(CleanupReport::default())
    }
    /// A [`BulkReader`] for reading many configs in a row, from many threads (the image
    /// store's restore). The default reads through [`get`](StoreBackend::get) and
    /// [`get_metadata`](StoreBackend::get_metadata); a backend may keep directories open for
    /// the reader's lifetime.
    fn bulk_reader(&self) -> Result<Box<dyn BulkReader + '_>, Error> {
        Ok(Box::new(Direct(self)))
    }
}

/// Reads configs and their metadata in bulk; see [`StoreBackend::bulk_reader`]. Results are
/// those of the backend's own methods, errors included.
pub trait BulkReader: Sync {
    /// The content stored under `id`, verified, as [`StoreBackend::get`].
    fn get(&self, id: &Digest) -> Result<Vec<u8>, Error>;
    /// Metadata `key` of `id`, as [`StoreBackend::get_metadata`], except that a reader may
    /// skip checking that the content exists (call it for content [`get`](Self::get) just
    /// returned).
    fn get_metadata(&self, id: &Digest, key: &str) -> Result<Option<Vec<u8>>, Error>;
}

/// The default [`BulkReader`]: the backend's own methods.
pub(crate) struct Direct<'a, B: ?Sized>(pub(crate) &'a B);

impl<B: StoreBackend + ?Sized> BulkReader for Direct<'_, B> {
    fn get(&self, id: &Digest) -> Result<Vec<u8>, Error> {
        self.0.get(id)
    }
    fn get_metadata(&self, id: &Digest, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.0.get_metadata(id, key)
    }
}

/// Checks a metadata key: `[A-Za-z0-9._-]+`, not `.` or `..`, not starting with `.tmp-`.
///
/// ```
/// use imagedb_fs::validate_key;
/// assert!(validate_key("parent").is_ok());
/// assert!(validate_key("lastUpdated").is_ok());
/// assert!(validate_key("../x").is_err());
/// assert!(validate_key("").is_err());
/// ```
pub fn validate_key(key: &str) -> Result<(), Error> {
    let ok = !key.is_empty()
        && key != "."
        && key != ".."
        && !key.starts_with(crate::fs::TMP_PREFIX)
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidKey {
            key: key.to_owned(),
        })
    }
}

/// Forwards every method, so `Box<dyn StoreBackend>`, `Arc<B>` and `&B` are backends too.
macro_rules! forward_backend {
    ($($ty:ty),*) => {$(
        impl<B: StoreBackend + ?Sized> StoreBackend for $ty {
            fn walk(&self) -> Result<Vec<Digest>, Error> {
                (**self).walk()
            }
            fn get(&self, id: &Digest) -> Result<Vec<u8>, Error> {
                (**self).get(id)
            }
            fn set(&self, data: &[u8]) -> Result<Digest, Error> {
                (**self).set(data)
            }
            fn delete(&self, id: &Digest) -> Result<(), Error> {
                (**self).delete(id)
            }
            fn set_metadata(&self, id: &Digest, key: &str, data: &[u8]) -> Result<(), Error> {
                (**self).set_metadata(id, key, data)
            }
            fn get_metadata(&self, id: &Digest, key: &str) -> Result<Option<Vec<u8>>, Error> {
                (**self).get_metadata(id, key)
            }
            fn delete_metadata(&self, id: &Digest, key: &str) -> Result<(), Error> {
                (**self).delete_metadata(id, key)
            }
            fn metadata_digests(&self) -> Result<Vec<Digest>, Error> {
                (**self).metadata_digests()
            }
            fn cleanup(&self) -> Result<CleanupReport, Error> {
                (**self).cleanup()
            }
            fn bulk_reader(&self) -> Result<Box<dyn BulkReader + '_>, Error> {
                (**self).bulk_reader()
            }
        }
    )*};
}

forward_backend!(&B, Box<B>, std::sync::Arc<B>);
