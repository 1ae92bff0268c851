//! Docker's image references and reference store, as moby's `reference` package has them:
//!
//! - [`reference`](mod@reference): the reference grammar (`docker/distribution/reference`): parsing and
//!   normalising (`base` is `docker.io/library/base:latest`), familiar names, digest
//!   references, and `path.Match` patterns for `--filter reference=`.
//! - [`refstore`]: `repositories.json`, dockerd's tags and digest references of images, read
//!   and written byte for byte as dockerd 20.10 does (atomically and durably, mode 0600).
//!
//! Loading, pulling, pushing and saving images all name them this way; the crate knows
//! nothing else of Docker's stores.
//!
//! # Example
//!
//! ```
//! use docker_reference::{Reference, RefStore};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let r = Reference::parse_normalized("peer/base:v1")?;
//! assert_eq!(r.to_string(), "docker.io/peer/base:v1");
//! assert_eq!(r.familiar_string(), "peer/base:v1");
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("repositories.json");
//! let mut store = RefStore::load(&path)?;
//! let id = "sha256:7db95e6e4fe3a141e68c2ff6cc0267d1fb63728cf6b9fa326a05ecb3b43ea6fe".parse()?;
//! store.add_tag(&r, &id, false)?;
//! assert_eq!(store.references(&id), &[r]);
//! assert!(RefStore::load(&path)?.references(&id).len() == 1);
//! # Ok(())
//! # }
//! ```

pub mod reference;
pub mod refstore;

pub use crate::reference::Reference;
pub use crate::refstore::{RefStore, RefStoreError};
