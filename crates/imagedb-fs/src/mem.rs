//! [`MemBackend`]: an in-memory [`StoreBackend`] with the same contract, for tests.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use digest_set::{Algorithm, Digest};

use crate::backend::{MAX_CONFIG_SIZE, StoreBackend};
use crate::error::Error;
use crate::key::validate_key;

#[derive(Debug, Default)]
struct State {
    content: BTreeMap<Digest, Vec<u8>>,
    metadata: BTreeMap<Digest, BTreeMap<String, Vec<u8>>>,
}

/// An in-memory [`StoreBackend`] for tests of upper crates.
///
/// It follows the same contract as [`FsBackend`](crate::FsBackend): verified `get`, validated
/// keys, [`Error::EmptyData`], [`Error::TooLarge`] over [`MAX_CONFIG_SIZE`], metadata requires
/// the content, sha256 only. Errors carry an empty path. Thread-safe behind an `RwLock`.
///
/// ```
/// use imagedb_fs::{MemBackend, StoreBackend};
///
/// let store = MemBackend::new();
/// let id = store.set(b"foobar").expect("set");
/// assert_eq!(store.get(&id).expect("get"), b"foobar");
/// store.set_metadata(&id, "parent", b"sha256:...").expect("set_metadata");
/// assert_eq!(store.get_metadata(&id, "parent").expect("get_metadata").as_deref(), Some(&b"sha256:..."[..]));
/// assert!(store.get_metadata(&id, "lastUpdated").expect("get_metadata").is_none());
/// ```
#[derive(Debug, Default)]
pub struct MemBackend {
    state: RwLock<State>,
}

impl MemBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `data` under `id` without checking that it hashes to `id` (nor size nor
    /// emptiness): simulates corrupt or truncated content for tests. A later
    /// [`get`](StoreBackend::get) of `id` fails verification.
    pub fn insert_unchecked(&self, id: Digest, data: Vec<u8>) {
        self.write().content.insert(id, data);
    }

    /// How many content entries are stored.
    pub fn len(&self) -> usize {
        self.read().content.len()
    }

    /// True when no content is stored.
    pub fn is_empty(&self) -> bool {
        self.read().content.is_empty()
    }
}

fn not_found(id: &Digest) -> Error {
    Error::NotFound {
        id: *id,
        path: PathBuf::new(),
    }
}

fn require_content(state: &State, id: &Digest) -> Result<(), Error> {
    if id.algorithm() == Algorithm::Sha256 && state.content.contains_key(id) {
        Ok(())
    } else {
        Err(not_found(id))
    }
}

fn too_large(size: usize) -> Error {
    Error::TooLarge {
        path: PathBuf::new(),
        size: size as u64,
        limit: MAX_CONFIG_SIZE,
    }
}

impl StoreBackend for MemBackend {
    fn walk(&self) -> Result<Vec<Digest>, Error> {
        Ok(self
            .read()
            .content
            .keys()
            .filter(|d| d.algorithm() == Algorithm::Sha256)
            .copied()
            .collect())
    }

    fn get(&self, id: &Digest) -> Result<Vec<u8>, Error> {
        let state = self.read();
        require_content(&state, id)?;
        let data = state.content.get(id).ok_or_else(|| not_found(id))?;
        if data.len() as u64 > MAX_CONFIG_SIZE {
            return Err(too_large(data.len()));
        }
        if data.is_empty() {
            return Err(Error::EmptyContent {
                id: *id,
                path: PathBuf::new(),
            });
        }
        let actual = Digest::sha256(data);
        if actual != *id {
            return Err(Error::Verify {
                id: *id,
                actual: actual.to_string(),
                path: PathBuf::new(),
            });
        }
        Ok(data.clone())
    }

    fn set(&self, data: &[u8]) -> Result<Digest, Error> {
        if data.is_empty() {
            return Err(Error::EmptyData);
        }
        if data.len() as u64 > MAX_CONFIG_SIZE {
            return Err(too_large(data.len()));
        }
        let id = Digest::sha256(data);
        self.write().content.insert(id, data.to_vec());
        Ok(id)
    }

    fn delete(&self, id: &Digest) -> Result<(), Error> {
        let mut state = self.write();
        state.metadata.remove(id);
        match state.content.remove(id) {
            Some(_) => Ok(()),
            None => Err(not_found(id)),
        }
    }

    fn set_metadata(&self, id: &Digest, key: &str, data: &[u8]) -> Result<(), Error> {
        validate_key(key)?;
        if data.len() as u64 > MAX_CONFIG_SIZE {
            return Err(too_large(data.len()));
        }
        let mut state = self.write();
        require_content(&state, id)?;
        state
            .metadata
            .entry(*id)
            .or_default()
            .insert(key.to_owned(), data.to_vec());
        Ok(())
    }

    fn get_metadata(&self, id: &Digest, key: &str) -> Result<Option<Vec<u8>>, Error> {
        validate_key(key)?;
        let state = self.read();
        require_content(&state, id)?;
        Ok(state.metadata.get(id).and_then(|m| m.get(key)).cloned())
    }

    fn delete_metadata(&self, id: &Digest, key: &str) -> Result<(), Error> {
        validate_key(key)?;
        if let Some(keys) = self.write().metadata.get_mut(id) {
            keys.remove(key);
        }
        Ok(())
    }

    fn metadata_digests(&self) -> Result<Vec<Digest>, Error> {
        Ok(self.read().metadata.keys().copied().collect())
    }
}
