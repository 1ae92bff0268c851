//! The errors of this crate: [`Error`] for requests to a registry, [`ConfigError`] for
//! building a client's configuration (insecure registries, mirrors, certificates) and
//! [`CredentialsError`] for reading docker's `config.json` and credential helpers. Every
//! message is one line naming the registry, repository, blob or file.

/// Why a request to a registry failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The registry refused the credentials (or asked for some and none were given).
    #[error("unauthorized: {message} for {host}")]
    Unauthorized {
        /// The registry (`host[:port]`).
        host: String,
        /// What the registry said (`authentication required`, ...).
        message: String,
    },
    /// The registry denied access to the repository (HTTP 403, `DENIED`).
    #[error("denied: {message} for {repository}")]
    Denied {
        /// The repository (`host/path`).
        repository: String,
        /// What the registry said.
        message: String,
    },
    /// The manifest, tag, blob or repository does not exist.
    #[error("{what} not found in {repository}: {message}")]
    NotFound {
        /// The repository (`host/path`).
        repository: String,
        /// What was asked for (`manifest 1`, `blob sha256:...`).
        what: String,
        /// What the registry said.
        message: String,
    },
    /// Any other unexpected HTTP status.
    #[error("{method} {url}: HTTP {status}: {message}")]
    Status {
        /// The request method.
        method: &'static str,
        /// The URL (without credentials).
        url: String,
        /// The status code.
        status: u16,
        /// What the registry said (its error codes and messages), or the status text.
        message: String,
    },
    /// The connection failed (refused, reset, timed out, TLS).
    #[error("{method} {url}: {message}")]
    Transport {
        /// The request method.
        method: &'static str,
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
        /// Whether a retry may help (not for a certificate that does not verify).
        retryable: bool,
    },
    /// Content does not hash to the digest it was asked for by.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was read (`manifest ...`, `blob ...`).
        what: String,
        /// The digest asked for.
        expected: String,
        /// What the content hashes to.
        actual: String,
    },
    /// Content is not the size its descriptor says.
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// What was read.
        what: String,
        /// The size the descriptor gives.
        expected: u64,
        /// What was received.
        actual: u64,
    },
    /// A response is larger than this client accepts for it.
    #[error("{what}: larger than {limit} bytes")]
    TooLarge {
        /// What was read.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// A response that does not follow the protocol (bad JSON, missing header, ...).
    #[error("{what}: invalid response: {reason}")]
    Invalid {
        /// What was read.
        what: String,
        /// Why it is refused.
        reason: String,
    },
    /// The registry kept failing (connection errors or 5xx) until the retries ran out.
    #[error("{last} (gave up after {attempts} attempts)")]
    RetriesExhausted {
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        last: Box<Error>,
    },
    /// Reading the body to upload failed (a layer's content, for instance).
    #[error("{what}: {source}")]
    Source {
        /// What was being uploaded.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether retrying the same request may succeed: connection errors, and HTTP 5xx and
    /// 429 answers.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport { retryable, .. } => *retryable,
            Error::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// Whether the registry said the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::NotFound { .. } => true,
            Error::RetriesExhausted { last, .. } => last.is_not_found(),
            _ => false,
        }
    }

    /// Whether the credentials were refused (or missing).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Error::Unauthorized { .. } | Error::Denied { .. })
    }
}

/// Why a client configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An `insecure-registries` entry that is neither a CIDR nor a `host[:port]`.
    #[error("invalid insecure registry {0:?}: use host[:port] or a CIDR (no scheme)")]
    InsecureRegistry(String),
    /// A `registry-mirrors` entry that is not an `http(s)://host[:port]` URL.
    #[error("invalid mirror {value:?}: {reason}")]
    Mirror {
        /// The entry.
        value: String,
        /// Why.
        reason: String,
    },
    /// A certificate or key file of `certs.d` (or the system's bundle) cannot be read or
    /// parsed.
    #[error("{path}: {reason}")]
    Certificate {
        /// The file or directory.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// A proxy URL from the environment that does not parse.
    #[error("invalid proxy {value:?} in ${var}: {reason}")]
    Proxy {
        /// The variable (`HTTPS_PROXY`, ...).
        var: String,
        /// Its value.
        value: String,
        /// Why.
        reason: String,
    },
}

/// Why credentials could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// `config.json` cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` is not valid JSON of the expected shape, or too large.
    #[error("invalid {path}: {reason}")]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// An `auth` entry that is not base64 of `user:password`.
    #[error("invalid auth for {server} in {path}: {reason}")]
    Auth {
        /// The key in `auths`.
        server: String,
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// A credential helper failed.
    #[error("credential helper docker-credential-{helper} for {server}: {reason}")]
    Helper {
        /// The helper's suffix (`pass`, `secretservice`, ...).
        helper: String,
        /// The server asked about.
        server: String,
        /// Why.
        reason: String,
    },
}
