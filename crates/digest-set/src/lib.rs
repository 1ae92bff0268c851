//! Content digests and a prefix-searchable set of them.
//!
//! This is the bottom crate of imgstore. It holds two things:
//!
//! - [`Digest`]: an algorithm (sha256, or sha512) plus the raw hash bytes, stored inline.
//!   It parses and prints the `algorithm:hex` form strictly (lowercase hex of exact length).
//! - [`DigestSet`]: a sorted set of digests that resolves short IDs the way Docker's image
//!   store does (`docker image inspect 7db9`), via [`DigestSet::lookup`], and computes the
//!   shortest unique prefixes ([`DigestSet::short_codes`]). A sha256 digest takes its 32 raw
//!   bytes and a few more in the set; inserting, removing and looking up a short ID work on
//!   one small bucket of keys, not on the whole set.
//!
//! It does no I/O and has no interior mutability: wrap a set in your own lock.
//!
//! ```
//! use digest_set::{Digest, DigestSet, LookupError};
//!
//! let id: Digest = "sha256:7db95e6e4fe3a141e68c2ff6cc0267d1fb63728cf6b9fa326a05ecb3b43ea6fe"
//!     .parse()
//!     .expect("valid digest");
//! let mut set = DigestSet::new();
//! set.insert(id);
//! set.insert(Digest::sha256(b"another config"));
//!
//! assert_eq!(set.lookup("7db95e"), Ok(id));
//! assert_eq!(set.lookup("sha256:7db95e"), Ok(id));
//! assert!(matches!(set.lookup(""), Err(LookupError::InvalidTerm { .. })));
//! assert_eq!(id.short(), "7db95e6e4fe3");
//! ```

mod buckets;
mod digest;
mod set;

pub use crate::digest::{Algorithm, Digest, HexBuf, ParseError};
pub use crate::set::{DigestSet, Iter, LookupError, MAX_CANDIDATES};
