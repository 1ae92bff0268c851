//! Docker's imagedb: image configs stored by content digest, plus per-image metadata.
//!
//! This is moby's `image/fs.go` made safe. The crate holds:
//!
//! - [`StoreBackend`]: what the image store needs (walk, verified get, content-addressed set,
//!   delete, per-digest metadata), with a typed [`Error`] ([`Error::is_not_found`] tells
//!   "nothing there" apart from failures);
//! - [`FsBackend`]: the on-disk imagedb of dockerd 20.10, byte and mode compatible, with atomic
//!   and durable writes (temp file, write, fsync, rename, fsync directory) and strict handling
//!   of bad data (symlinks, directories, empty or oversized files, hash mismatches);
//! - test doubles for upper crates: [`MemBackend`] (in memory, same contract), [`Faults`] /
//!   [`FaultyBackend`] (fail the n-th write, fsync, rename or mutating call).
//!
//! ```
//! use imagedb_fs::{FsBackend, StoreBackend};
//!
//! let dir = tempfile::tempdir().expect("temp dir");
//! let store = FsBackend::open(dir.path().join("imagedb")).expect("open");
//! let id = store.set(b"foobar").expect("set");
//! assert_eq!(
//!     id.to_string(),
//!     "sha256:c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2"
//! );
//! assert_eq!(store.get(&id).expect("get"), b"foobar");
//! store.set_metadata(&id, "lastUpdated", b"2026-11-30T00:00:00Z").expect("set_metadata");
//! assert_eq!(store.walk().expect("walk"), vec![id]);
//! assert!(store.get_metadata(&id, "parent").expect("get_metadata").is_none());
//! assert!(store.set_metadata(&id, "../x", b"").expect_err("bad key").to_string().contains("invalid metadata key"));
//! store.delete(&id).expect("delete");
//! assert!(store.get(&id).expect_err("gone").is_not_found());
//! ```

mod backend;
mod error;
mod faults;
mod fs;
mod key;
mod mem;

pub use crate::backend::{BulkReader, MAX_CONFIG_SIZE, StoreBackend};
pub use crate::error::{CleanupReport, Error};
pub use crate::faults::{Faults, FaultyBackend, Op};
pub use crate::fs::FsBackend;
pub use crate::key::validate_key;
pub use crate::mem::MemBackend;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
