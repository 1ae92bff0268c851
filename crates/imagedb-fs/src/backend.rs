//! The [`StoreBackend`] trait: what the image store needs from a place that keeps configs.

use digest_set::Digest;

use crate::error::{CleanupReport, Error};

/// The largest config (or metadata value) a backend loads or stores: 16 MiB.
///
/// Real image configs are a few KiB; anything near this size is corrupt or hostile, and
/// refusing it keeps a bad file from exhausting memory at startup.
pub const MAX_CONFIG_SIZE: u64 = 16 << 20;

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
