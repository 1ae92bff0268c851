//! dockerd's distribution metadata (`distribution/metadata` in moby 20.10), under
//! `image/<driver>/distribution/`: which blob a layer was pulled as or pushed to, and where.
//!
//! - `diffid-by-digest/sha256/<blob hex>`: `sha256:<diff id>`, no newline.
//! - `v2metadata-by-diffid/sha256/<diff id hex>`: a JSON array of
//!   `{"Digest":..,"SourceRepository":..,"HMAC":..}`, at most 50, oldest first; adding an
//!   entry that is there moves it to the end; removing the last one deletes the file.
//!
//! The directory is 0700, its subdirectories 0755, files 0644 written atomically, as
//! dockerd's `FSMetadataStore` does. Reads are capped; keys are digests (validated hex), never
//! other text from a registry.

use std::path::{Path, PathBuf};

use digest_set::Digest;
use durable_fs::Dir;
use layer_store::DiffId;

/// The most entries a `v2metadata-by-diffid` file keeps (dockerd's `maxMetadata`).
pub const MAX_METADATA: usize = 50;
/// The largest metadata file read.
const MAX_FILE: u64 = 1 << 20;

const BY_DIGEST: &str = "diffid-by-digest";
const BY_DIFF_ID: &str = "v2metadata-by-diffid";

/// One place a layer is known to be in a registry (dockerd's `metadata.V2Metadata`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct V2Metadata {
    /// The blob's digest (the compressed layer).
    #[serde(rename = "Digest")]
    pub digest: String,
    /// The repository, full name (`127.0.0.1:5000/fixture/bbapp`, `docker.io/library/x`).
    #[serde(rename = "SourceRepository")]
    pub source_repository: String,
    /// dockerd's HMAC of digest and repository under the pusher's credentials; empty for
    /// pulls.
    #[serde(rename = "HMAC")]
    pub hmac: String,
}

/// Why distribution metadata could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DistMetaError {
    /// A file or directory of the metadata store.
    #[error(transparent)]
    Fs(#[from] durable_fs::Error),
    /// A file that does not parse.
    #[error("invalid distribution metadata {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The distribution metadata of one image store.
#[derive(Debug, Clone)]
pub struct DistributionMetadata {
    image_dir: PathBuf,
}

fn key(d: &Digest) -> String {
    format!("{}/{}", d.algorithm().name(), d.hex())
}

/// dockerd's JSON of a metadata list (Go's field order, Go's string escaping).
fn encode(list: &[V2Metadata]) -> Vec<u8> {
    let mut out = Vec::from(&b"["[..]);
    for (i, m) in list.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"Digest\":");
        go_json::write_string(&mut out, &m.digest);
        out.extend_from_slice(b",\"SourceRepository\":");
        go_json::write_string(&mut out, &m.source_repository);
        out.extend_from_slice(b",\"HMAC\":");
        go_json::write_string(&mut out, &m.hmac);
        out.push(b'}');
    }
    out.push(b']');
    out
}

impl DistributionMetadata {
    /// The metadata of the image store `image_dir` (`<root>/image/<driver>`).
    pub fn new(image_dir: impl Into<PathBuf>) -> DistributionMetadata {
        DistributionMetadata {
            image_dir: image_dir.into(),
        }
    }

    /// `image/<driver>/distribution`.
    pub fn dir(&self) -> PathBuf {
        self.image_dir.join("distribution")
    }

    fn open(&self) -> Result<Option<Dir>, durable_fs::Error> {
        match Dir::open_nofollow(&self.image_dir) {
            Ok(d) => d.open_dir("distribution"),
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn read(&self, namespace: &str, k: &str) -> Result<Option<Vec<u8>>, durable_fs::Error> {
        let Some(d) = self.open()? else {
            return Ok(None);
        };
        d.read(Path::new(namespace).join(k), MAX_FILE)
    }

    fn write(&self, namespace: &str, d: &Digest, data: &[u8]) -> Result<(), durable_fs::Error> {
        let image = Dir::open_nofollow(&self.image_dir)?;
        let dist = image.create_dir("distribution", 0o700)?;
        let ns = dist.create_dir(namespace, 0o755)?;
        let alg = ns.create_dir(d.algorithm().name(), 0o755)?;
        alg.atomic_write(&d.hex(), data, 0o644)
    }

    /// dockerd's `GetDiffID`: the diff ID of the layer a blob was pulled as or pushed from.
    /// A file that does not hold a digest is an error.
    pub fn diff_id(&self, blob: &Digest) -> Result<Option<DiffId>, DistMetaError> {
        let Some(bytes) = self.read(BY_DIGEST, &key(blob))? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        text.parse::<DiffId>()
            .map(Some)
            .map_err(|e| DistMetaError::Invalid {
                path: self.dir().join(BY_DIGEST).join(key(blob)),
                reason: e.to_string(),
            })
    }

    /// dockerd's `GetMetadata`: where a layer is known to be, oldest first.
    pub fn metadata(&self, diff_id: &DiffId) -> Result<Vec<V2Metadata>, DistMetaError> {
        let Some(bytes) = self.read(BY_DIFF_ID, &key(&diff_id.0))? else {
            return Ok(Vec::new());
        };
        serde_json::from_slice(&bytes).map_err(|e| DistMetaError::Invalid {
            path: self.dir().join(BY_DIFF_ID).join(key(&diff_id.0)),
            reason: e.to_string(),
        })
    }

    /// dockerd's `Add`: appends `m` (moving it to the end if present, keeping the last 50),
    /// then writes the blob's diff ID. An unreadable list starts over, as in dockerd.
    pub fn add(&self, diff_id: &DiffId, m: &V2Metadata) -> Result<(), DistMetaError> {
        let blob: Digest = m.digest.parse().map_err(|e| DistMetaError::Invalid {
            path: self.dir(),
            reason: format!("blob digest {:?}: {e}", m.digest),
        })?;
        let mut list: Vec<V2Metadata> = self
            .metadata(diff_id)
            .unwrap_or_default()
            .into_iter()
            .filter(|o| o != m)
            .collect();
        list.push(m.clone());
        if list.len() > MAX_METADATA {
            list.drain(..list.len() - MAX_METADATA);
        }
        self.write(BY_DIFF_ID, &diff_id.0, &encode(&list))?;
        self.write(BY_DIGEST, &blob, diff_id.to_string().as_bytes())?;
        Ok(())
    }

    /// dockerd's `Remove`: drops `m` from the list of the layer its blob belongs to; the
    /// file goes when the list empties.
    pub fn remove(&self, m: &V2Metadata) -> Result<(), DistMetaError> {
        let Ok(blob) = m.digest.parse::<Digest>() else {
            return Ok(());
        };
        let Some(diff_id) = self.diff_id(&blob)? else {
            return Ok(());
        };
        let list: Vec<V2Metadata> = self
            .metadata(&diff_id)
            .unwrap_or_default()
            .into_iter()
            .filter(|o| o != m)
            .collect();
        if list.is_empty() {
            if let Some(d) = self.open()?
                && let Some(alg) =
                    d.open_dir(Path::new(BY_DIFF_ID).join(diff_id.0.algorithm().name()))?
                && alg.remove_file(diff_id.0.hex())?
            {
                alg.sync()?;
            }
            return Ok(());
        }
        self.write(BY_DIFF_ID, &diff_id.0, &encode(&list))?;
        Ok(())
    }
}
