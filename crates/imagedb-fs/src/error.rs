//! [`Error`], what went wrong in a backend operation, and [`CleanupReport`].

use std::io;
use std::path::{Path, PathBuf};

use digest_set::Digest;

/// What went wrong in a [`StoreBackend`](crate::StoreBackend) operation. Every variant that concerns a file names it.
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
    /// The content is larger than the backend accepts ([`MAX_CONFIG_SIZE`](crate::MAX_CONFIG_SIZE)).
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

/// What [`StoreBackend::cleanup`](crate::StoreBackend::cleanup) removed.
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

/// An I/O error of operation `op` on `path`.
pub(crate) fn io_at(op: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}
