//! `repositories.json`: dockerd's reference store, read and written byte for byte as dockerd
//! does (`{"Repositories":{"<familiar name>":{"<familiar ref>":"sha256:<id>"}}}`, keys sorted,
//! no trailing newline, mode 0600, Go's HTML-safe escaping).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use digest_set::Digest;

use crate::reference::Reference;
use go_json::escape_html as escape_go_json;

/// What went wrong with the reference store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefStoreError {
    /// Reading or writing the file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is a symbolic link, a FIFO, too large, or its directory cannot be used.
    #[error(transparent)]
    Fs(#[from] durable_fs::Error),
    /// The file is not the JSON dockerd writes.
    #[error("{path} is not a valid reference store: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tag may not carry a digest.
    #[error("refusing to create a tag with a digest reference")]
    TagWithDigest,
    /// A name equal to a digest algorithm.
    #[error("refusing to create an ambiguous tag using digest algorithm as name")]
    AmbiguousName,
    /// The tag exists and points elsewhere.
    #[error(
        "Conflict: Tag {reference} is already set to image {existing}, if you want to replace it, please use the force option"
    )]
    TagConflict {
        /// The reference.
        reference: String,
        /// The image it points to.
        existing: String,
    },
    /// A digest reference is never overwritten.
    #[error("Cannot overwrite digest {digest}")]
    DigestConflict {
        /// The digest of the reference.
        digest: String,
    },
}

/// The reference store of one data root.
#[derive(Debug, Clone)]
pub struct RefStore {
    path: PathBuf,
    repositories: BTreeMap<String, BTreeMap<String, String>>,
    by_id: HashMap<Digest, Vec<Reference>>,
    existed: bool,
}

#[derive(serde::Deserialize)]
struct OnDisk {
    #[serde(rename = "Repositories", default)]
    repositories: Option<BTreeMap<String, Option<BTreeMap<String, String>>>>,
}

impl RefStore {
    /// Reads `path`; a missing file is an empty store (dockerd creates it on start).
    pub fn load(path: &Path) -> Result<Self, RefStoreError> {
        let read = match path.parent().zip(path.file_name()) {
            Some((dir, name)) => match durable_fs::Dir::open_nofollow(dir) {
                Ok(d) => d.read(name, MAX_REPOSITORIES_JSON)?,
                Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let (repositories, existed) = match read {
            Some(bytes) => {
                let parsed: OnDisk =
                    serde_json::from_slice(&bytes).map_err(|e| RefStoreError::Parse {
                        path: path.to_owned(),
                        message: e.to_string(),
                    })?;
                let repos = parsed
                    .repositories
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.unwrap_or_default()))
                    .collect();
                (repos, true)
            }
            None => (BTreeMap::new(), false),
        };
        let mut store = RefStore {
            path: path.to_owned(),
            repositories,
            by_id: HashMap::new(),
            existed,
        };
        store.reindex();
        Ok(store)
    }

    fn reindex(&mut self) {
        let mut by_id: HashMap<Digest, Vec<Reference>> = HashMap::new();
        for repo in self.repositories.values() {
            for (ref_str, id) in repo {
                let (Ok(r), Ok(id)) = (Reference::parse_normalized(ref_str), id.parse::<Digest>())
                else {
                    continue;
                };
                by_id.entry(id).or_default().push(r);
            }
        }
        for refs in by_id.values_mut() {
            refs.sort_by_cached_key(|r| r.to_string());
        }
        self.by_id = by_id;
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the file existed when loaded.
    pub fn existed(&self) -> bool {
        self.existed
    }

    /// Every reference to `id`, sorted by full string (dockerd's `References`).
    pub fn references(&self, id: &Digest) -> &[Reference] {
        self.by_id.get(id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every (reference string as stored, image ID string as stored) pair, in file order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.repositories.iter().flat_map(|(repo, refs)| {
            refs.iter()
                .map(move |(r, id)| (repo.as_str(), r.as_str(), id.as_str()))
        })
    }

    /// Every image ID something refers to.
    pub fn referenced_ids(&self) -> impl Iterator<Item = &Digest> {
        self.by_id.keys()
    }

    /// dockerd's `Get`: the image a reference points to. A reference with tag and digest is
    /// looked up by digest; one with neither gets `latest`.
    pub fn get(&self, r: &Reference) -> Option<Digest> {
        let r = match r.digest() {
            Some(d) => r.with_digest(*d),
            None => r.clone().with_default_tag(),
        };
        let repo = self.repositories.get(&r.familiar_name())?;
        repo.get(&r.familiar_string())?.parse().ok()
    }

    /// dockerd's `AddTag`: points the tag (default `latest`) at `id`.
    pub fn add_tag(
        &mut self,
        r: &Reference,
        id: &Digest,
        force: bool,
    ) -> Result<(), RefStoreError> {
        if r.is_canonical() {
            return Err(RefStoreError::TagWithDigest);
        }
        self.add(r.clone().with_default_tag(), id, force)
    }

    /// dockerd's `AddDigest`: records a digest reference to `id`.
    pub fn add_digest(
        &mut self,
        r: &Reference,
        id: &Digest,
        force: bool,
    ) -> Result<(), RefStoreError> {
        self.add(r.clone(), id, force)
    }

    fn add(&mut self, r: Reference, id: &Digest, force: bool) -> Result<(), RefStoreError> {
        let name = r.familiar_name();
        let ref_str = r.familiar_string();
        if name == "sha256" {
            return Err(RefStoreError::AmbiguousName);
        }
        let id_str = id.to_string();
        let repo = self.repositories.entry(name).or_default();
        if let Some(old) = repo.get(&ref_str) {
            if *old == id_str {
                return Ok(());
            }
            if let Some(d) = r.digest() {
                return Err(RefStoreError::DigestConflict {
                    digest: d.to_string(),
                });
            }
            if !force {
                return Err(RefStoreError::TagConflict {
                    reference: ref_str,
                    existing: old.clone(),
                });
            }
        }
        repo.insert(ref_str, id_str);
        self.reindex();
        self.save()
    }

    /// dockerd's `Delete`: removes the reference (tag `latest` when none); `Ok(false)` when it
    /// did not exist. An emptied repository is removed too.
    pub fn delete(&mut self, r: &Reference) -> Result<bool, RefStoreError> {
        let r = r.clone().with_default_tag();
        let name = r.familiar_name();
        let ref_str = r.familiar_string();
        let Some(repo) = self.repositories.get_mut(&name) else {
            return Ok(false);
        };
        if repo.remove(&ref_str).is_none() {
            return Ok(false);
        }
        if repo.is_empty() {
            self.repositories.remove(&name);
        }
        self.reindex();
        self.save().map(|()| true)
    }

    /// Removes the entry `reference` of repository `repo` exactly as stored, even one that is
    /// not a valid reference (which [`delete`](Self::delete) cannot name), and saves the
    /// store; returns the image ID string it held, `None` (and nothing written) when there
    /// is no such entry. An emptied repository is removed too.
    pub fn remove_entry(
        &mut self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<String>, RefStoreError> {
        let Some(refs) = self.repositories.get_mut(repo) else {
            return Ok(None);
        };
        let Some(id) = refs.remove(reference) else {
            return Ok(None);
        };
        if refs.is_empty() {
            self.repositories.remove(repo);
        }
        self.reindex();
        self.save().map(|()| Some(id))
    }

    /// The bytes dockerd's `json.Marshal` gives for this store.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::from("{\"Repositories\":{");
        for (i, (repo, refs)) in self.repositories.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&json_str(repo));
            out.push_str(":{");
            for (j, (r, id)) in refs.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                out.push_str(&json_str(r));
                out.push(':');
                out.push_str(&json_str(id));
            }
            out.push('}');
        }
        out.push_str("}}");
        escape_go_json(&out).into_bytes()
    }

    /// Writes the store atomically and durably (a temp file created 0600, fsync, rename,
    /// fsync of the directory), first removing the temp files earlier interrupted saves left.
    pub fn save(&self) -> Result<(), RefStoreError> {
        let (Some(dir), Some(name)) = (
            self.path.parent(),
            self.path.file_name().and_then(|n| n.to_str()),
        ) else {
            return Err(RefStoreError::Io {
                op: "write",
                path: self.path.clone(),
                source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
            });
        };
        let dir = durable_fs::Dir::open_nofollow(dir)?;
        for tmp in stale_temp_files(&dir, name)? {
            dir.remove_file(&tmp)?;
        }
        dir.atomic_write(name, &self.to_bytes(), 0o600)?;
        Ok(())
    }
}

/// The most `repositories.json` may hold (about 400,000 tags).
pub const MAX_REPOSITORIES_JSON: u64 = 64 << 20;

/// Temp files of interrupted saves of `name` in `dir`: ours (`.tmp-<name>-<random>`) and
/// those of earlier versions (`.tmp-<name><digits>`).
pub fn stale_temp_files(
    dir: &durable_fs::Dir,
    name: &str,
) -> Result<Vec<std::ffi::OsString>, durable_fs::Error> {
    let prefix = format!("{}{name}", durable_fs::TEMP_PREFIX);
    Ok(dir
        .temp_files()?
        .into_iter()
        .filter(|t| t.to_str().is_some_and(|t| t.starts_with(&prefix)))
        .collect())
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}
