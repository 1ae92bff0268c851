//! A synchronous client of the Docker Registry HTTP API v2 (the OCI distribution spec), as
//! dockerd 20.10 talks to registries; it knows no image store.
//!
//! - [`endpoint`]: where a registry is and how to reach it: Docker Hub and its mirrors,
//!   HTTPS, insecure registries (by name or CIDR, `127.0.0.0/8` always) tried with HTTPS
//!   without verification then plain HTTP, `certs.d` certificates ([`RegistryConfig`]).
//! - [`Client`] opens a [`Repository`] on the first endpoint that answers `/v2/`, learning
//!   how to authenticate: anonymous, basic, or bearer tokens fetched from the challenge's
//!   realm and cached per scope ([`auth`]). Credentials come from docker's `config.json`
//!   and credential helpers ([`credentials::DockerConfig`]).
//! - [`Repository`]: manifests (capped, checked against their digest), blobs (`HEAD`,
//!   small blobs whole and verified, large ones as a [`BlobReader`] that resumes dropped
//!   connections with `Range`), uploads (streamed `PATCH`, `PUT ?digest=`), cross-repository
//!   mounts and manifest pushes.
//! - Connection errors and 5xx answers are retried with back-off, a bounded number of
//!   times ([`RetryPolicy`]); errors are one line naming the registry and what was asked
//!   for ([`Error`]).
//!
//! Proxies follow Go's `http.ProxyFromEnvironment` (`HTTPS_PROXY`, `HTTP_PROXY`,
//! `NO_PROXY`; never for loopback addresses).
//!
//! # Example
//!
//! ```
//! use registry_client::{RegistryConfig, auth};
//!
//! // dockerd's endpoint rules: a loopback registry is insecure (HTTPS without
//! // verification first, then plain HTTP); Docker Hub goes through its mirrors first.
//! let config = RegistryConfig::new(&[], &["https://mirror.example:5000".to_owned()])?;
//! let eps = config.endpoints("127.0.0.1:5000");
//! assert_eq!(eps.iter().map(|e| e.base_url()).collect::<Vec<_>>(),
//!            ["https://127.0.0.1:5000", "http://127.0.0.1:5000"]);
//! let hub = config.endpoints("docker.io");
//! assert_eq!(hub[0].base_url(), "https://mirror.example:5000");
//! assert_eq!(hub[1].base_url(), "https://registry-1.docker.io");
//!
//! // dockerd's HMAC of distribution metadata for a push with credentials.
//! let key = auth::hmac_key(Some(&auth::Credentials::basic("u", "p")));
//! let mac = auth::metadata_hmac(key.as_deref(), "sha256:00", "127.0.0.1:5000/app");
//! assert_eq!(mac.len(), 64);
//! # Ok::<(), registry_client::ConfigError>(())
//! ```
//!
//! Talking to a registry:
//!
//! ```no_run
//! use registry_client::{Access, Client, ClientConfig};
//!
//! let client = Client::new(ClientConfig::default());
//! let repo = client.open("127.0.0.1:5000", "fixture/bbapp", Access::Pull, None, true)?;
//! let manifest = repo.get_manifest("1")?;
//! println!("{} {}", manifest.media_type, manifest.digest);
//! # Ok::<(), registry_client::Error>(())
//! ```

pub mod auth;
pub mod blob;
pub mod client;
pub mod credentials;
pub mod endpoint;
pub mod error;
pub mod media;
pub mod retry;
mod transport;

pub use crate::auth::Credentials;
pub use crate::blob::BlobReader;
pub use crate::client::{Access, Client, ClientConfig, Manifest, Mount, Repository, UploadSession};
pub use crate::endpoint::{Endpoint, RegistryConfig};
pub use crate::error::{ConfigError, CredentialsError, Error};
pub use crate::retry::RetryPolicy;
