//! Why reading an archive failed.

/// Why an archive could not be read; each names the member or file concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// An I/O error on a file or member.
    #[error("{what}: {source}")]
    Io {
        /// The file or member.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The archive is compressed and must be staged ([`TarFile::stage`](crate::source::TarFile::stage)).
    #[error("the archive is compressed")]
    Compressed,
    /// The archive is not a valid tar stream.
    #[error("the archive is corrupt: {what}")]
    Corrupt {
        /// What is wrong.
        what: String,
    },
    /// A member name or link leaves the archive.
    #[error("archive member {name:?} points outside the archive")]
    Escape {
        /// The member (and link target).
        name: String,
    },
    /// A member the archive's manifest names is not in it.
    #[error("archive member {name:?} is missing")]
    Missing {
        /// The member.
        name: String,
    },
    /// A member is shorter than its header says.
    #[error("archive member {name:?} is truncated")]
    Truncated {
        /// The member.
        name: String,
    },
    /// A member that must be a regular file is not.
    #[error("archive member {name:?} is not a regular file")]
    NotAFile {
        /// The member.
        name: String,
    },
    /// A JSON member is larger than allowed.
    #[error("archive member {name:?} is too large ({size} bytes, at most {limit})")]
    TooLarge {
        /// The member.
        name: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A JSON member does not parse, or holds what it may not.
    #[error("archive member {name:?} is invalid: {reason}")]
    Invalid {
        /// The member.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A blob's content does not match its digest.
    #[error("archive member {name:?} does not match its digest {expected} (it hashes to {actual})")]
    DigestMismatch {
        /// The member.
        name: String,
        /// The digest its descriptor gives.
        expected: String,
        /// What it hashes to.
        actual: String,
    },
    /// Neither `manifest.json` nor an OCI `index.json`.
    #[error("not an image archive: no manifest.json or index.json in {0}")]
    NotAnArchive(String),
    /// No image of the archive matches the platform asked for.
    #[error("no image for platform {platform} in {what}")]
    NoPlatform {
        /// The platform.
        platform: String,
        /// The index.
        what: String,
    },
}

impl ReadError {
    /// An I/O error on `what`.
    pub fn io(what: impl std::fmt::Display, source: std::io::Error) -> ReadError {
        ReadError::Io {
            what: what.to_string(),
            source,
        }
    }
}
