//! `imgstore push`: an image's layers, config and manifest to a registry, as dockerd 20.10
//! pushes (`distribution/push_v2.go`), recording what it records.
//!
//! Per layer, as dockerd's `pushV2Layer`: the distribution metadata's entries for this
//! repository are checked with `HEAD` (a blob the registry no longer has loses its entry);
//! entries for other repositories of the same registry are tried as cross-repository mounts
//! (best matches first; a failed mount loses its entry); then, for larger layers, a `HEAD`
//! of other known digests; only then is the layer uploaded: its exact tar stream,
//! reassembled from the layer store and checked against its diff ID, gzip-compressed and
//! hashed as it streams out. Each found, mounted or uploaded blob is recorded in
//! `v2metadata-by-diffid` with dockerd's HMAC (keyed on the credentials; anonymous pushes
//! use docker's empty credentials, as the docker CLI sends them). The config goes next
//! (unless the registry has it), then the schema 2 manifest, byte for byte as dockerd's
//! `MarshalIndent` writes it, and the `name@sha256:<manifest digest>` reference.
//!
//! Pushing again uploads nothing: every layer is found through the metadata.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use digest_set::Digest;
use layer_store::{ChainId, DiffId};
use registry_client::{Access, Mount, Repository, auth, media};
use sha2::{Digest as _, Sha256};

use crate::distmeta::{DistMetaError, DistributionMetadata, V2Metadata};
use crate::progress::Progress;
use crate::reference::Reference;
use crate::remote::{Remote, RemoteError};
use crate::store::Store;

/// dockerd's default number of concurrent uploads.
pub const DEFAULT_CONCURRENT_UPLOADS: usize = 5;
/// The gzip level of uploaded layers. dockerd uses Go's default, 6; level 1 compresses
/// 2 to 4 times faster here for blobs a few percent larger (a busybox layer: 1.09 MB instead
/// of 1.03 MB), which is what makes a push of a large image more than twice as fast as
/// dockerd's (`docs/benchmarks.md`). `--compression-level 6` gives dockerd's ratio. At any
/// level, parts of a layer that would not shrink (already compressed data) are stored,
/// not compressed (`AdaptiveGzip` in `gzip.rs`).
pub const DEFAULT_COMPRESSION_LEVEL: u32 = 1;
/// dockerd's `smallLayerMaximumSize`.
const SMALL_LAYER: u64 = 100 << 10;
/// dockerd's `middleLayerMaximumSize`.
const MIDDLE_LAYER: u64 = 10 << 20;
/// Attempts at uploading one layer (a new upload session each).
const UPLOAD_ATTEMPTS: u32 = 3;

/// `push` flags.
#[derive(Debug, Clone)]
pub struct PushArgs {
    /// `NAME[:TAG]`: without a tag, every tag of the repository.
    pub reference: String,
    /// `--max-concurrent-uploads`.
    pub max_concurrent_uploads: usize,
    /// gzip level of uploaded layers (default [`DEFAULT_COMPRESSION_LEVEL`]; dockerd: 6).
    pub compression_level: u32,
}

/// Why a push failed. Every message names the reference.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The reference does not parse.
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
    /// A digest reference (dockerd refuses them too).
    #[error("cannot push a digest reference: {0}")]
    Digest(String),
    /// The tag is not in the store.
    #[error("tag does not exist: {0}")]
    NoSuchTag(String),
    /// A repository without tags.
    #[error("no tags to push for {0}")]
    NoTags(String),
    /// The registry settings or credentials cannot be used.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The registry refused or failed.
    #[error("{reference}: {source}")]
    Registry {
        /// The reference pushed.
        reference: String,
        /// Why.
        #[source]
        source: registry_client::Error,
    },
    /// The image or one of its layers cannot be read.
    #[error("{reference}: {reason}")]
    Image {
        /// The reference pushed.
        reference: String,
        /// Why.
        reason: String,
    },
    /// A layer's content cannot be read (a damaged layer: its stream does not match its
    /// diff ID).
    #[error("{reference}: layer {diff_id}: {reason}")]
    Layer {
        /// The reference pushed.
        reference: String,
        /// The layer's diff ID.
        diff_id: String,
        /// Why.
        reason: String,
    },
    /// Distribution metadata cannot be read or written.
    #[error("{reference}: {source}")]
    Metadata {
        /// The reference pushed.
        reference: String,
        /// Why.
        #[source]
        source: DistMetaError,
    },
    /// Writing the digest reference failed.
    #[error("{reference}: cannot set {target}: {source}")]
    Refs {
        /// The reference pushed.
        reference: String,
        /// The reference written.
        target: String,
        /// Why.
        #[source]
        source: crate::refstore::RefStoreError,
    },
}

/// What a push printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pushed {
    /// `The push refers to repository [...]`, then `TAG: digest: sha256:... size: N` per tag.
    pub lines: Vec<String>,
    /// The references pushed (full form), with their manifest digests.
    pub pushed: Vec<(String, Digest)>,
    /// Layers uploaded (not found or mounted).
    pub uploaded: usize,
}

/// A blob as it is in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Remote2 {
    digest: Digest,
    size: u64,
}

/// What one push shares across tags and threads.
struct PushState<'a> {
    repo: &'a Repository,
    meta: &'a DistributionMetadata,
    /// Serialises metadata updates (two layers of an image may share a diff ID).
    meta_lock: Mutex<()>,
    /// The repository's full name (`127.0.0.1:5000/app`), dockerd's `repoInfo.Name`.
    repo_name: String,
    domain: String,
    hmac_key: Vec<u8>,
    has_auth_info: bool,
    remote_layers: Mutex<HashMap<DiffId, Remote2>>,
    refname: String,
    progress: &'a Progress,
    uploaded: AtomicUsize,
    level: u32,
    /// What happened to each layer (`Pushed`, `Layer already exists`, `Mounted from X`).
    statuses: Mutex<HashMap<DiffId, String>>,
}

fn short(d: &Digest) -> String {
    d.hex().chars().take(12).collect()
}

impl PushState<'_> {
    fn meta_err(&self) -> impl Fn(DistMetaError) -> PushError + '_ {
        |source| PushError::Metadata {
            reference: self.refname.clone(),
            source,
        }
    }

    fn reg_err(&self) -> impl Fn(registry_client::Error) -> PushError + '_ {
        |source| PushError::Registry {
            reference: self.refname.clone(),
            source,
        }
    }

    /// Records (and shows on a terminal) what happened to a layer.
    fn status(&self, diff: &DiffId, what: String) {
        self.progress.note(&format!("{}: {what}", short(&diff.0)));
        self.statuses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(*diff, what);
    }

    fn hmac_ok(&self, m: &V2Metadata) -> bool {
        // dockerd's CheckV2MetadataHMAC.
        if m.hmac.is_empty() || self.hmac_key.is_empty() {
            return m.hmac.is_empty() && self.hmac_key.is_empty();
        }
        auth::metadata_hmac(Some(&self.hmac_key), &m.digest, &m.source_repository) == m.hmac
    }

    fn tag_and_add(&self, diff: &DiffId, digest: &Digest) -> Result<(), PushError> {
        let m = V2Metadata {
            digest: digest.to_string(),
            source_repository: self.repo_name.clone(),
            hmac: auth::metadata_hmac(Some(&self.hmac_key), &digest.to_string(), &self.repo_name),
        };
        let _g = self
            .meta_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.meta.add(diff, &m).map_err(self.meta_err())
    }

    fn remove(&self, m: &V2Metadata) {
        let _g = self
            .meta_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = self.meta.remove(m) {
            tracing::warn!(digest = %m.digest, error = %e, "cannot remove distribution metadata");
        }
    }

    /// dockerd's `sortV2MetadataByLikenessAndAge`: newest first, then HMAC matches first,
    /// then more matching path components first (stable).
    fn sort_by_likeness(&self, v: &mut [V2Metadata]) {
        v.reverse();
        let ours: Vec<&str> = self.repo_name.split('/').collect();
        let matching = |p: &str| p.split('/').zip(&ours).take_while(|(a, b)| a == *b).count();
        v.sort_by(|a, b| {
            let (am, bm) = (self.hmac_ok(a), self.hmac_ok(b));
            if am != bm {
                return bm.cmp(&am);
            }
            matching(&b.source_repository).cmp(&matching(&a.source_repository))
        });
    }

    /// dockerd's `layerAlreadyExists`.
    fn already_exists(
        &self,
        diff: &DiffId,
        check_other: bool,
        max_checks: usize,
        metadata: &[V2Metadata],
        checked: &mut Vec<String>,
    ) -> Result<Option<Remote2>, PushError> {
        let mut candidates: Vec<V2Metadata> = metadata
            .iter()
            .filter(|m| {
                m.source_repository.is_empty()
                    || check_other
                    || m.source_repository == self.repo_name
            })
            .cloned()
            .collect();
        self.sort_by_likeness(&mut candidates);
        let mut to_check: Vec<V2Metadata> = Vec::new();
        for m in candidates {
            if to_check.len() >= max_checks {
                break;
            }
            if to_check.iter().any(|c| c.digest == m.digest) || checked.contains(&m.digest) {
                continue;
            }
            to_check.push(m);
        }
        for m in &to_check {
            let Ok(d) = m.digest.parse::<Digest>() else {
                continue;
            };
            checked.push(m.digest.clone());
            match self.repo.blob_exists(&d) {
                Ok(Some(size)) => {
                    if m.source_repository != self.repo_name || !self.hmac_ok(m) {
                        self.tag_and_add(diff, &d)?;
                    }
                    let r = Remote2 { digest: d, size };
                    self.remote_layers
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(*diff, r);
                    self.status(diff, "Layer already exists".to_owned());
                    return Ok(Some(r));
                }
                Ok(None) => {
                    if m.source_repository == self.repo_name {
                        self.remove(m);
                    }
                }
                Err(e) => {
                    tracing::debug!(blob = %d, error = %e, "cannot check for the blob");
                }
            }
        }
        Ok(None)
    }

    /// dockerd's `pushV2Layer.Upload` for one layer.
    fn push_layer(
        &self,
        store: &Store,
        chain: &ChainId,
        diff: &DiffId,
    ) -> Result<Remote2, PushError> {
        if let Some(r) = self
            .remote_layers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(diff)
        {
            let r = *r;
            self.status(diff, "Layer already exists".to_owned());
            return Ok(r);
        }
        let size = store
            .layer_store()
            .layer(chain)
            .map(|l| l.diff_size)
            .unwrap_or(0);
        let (max_mounts, max_checks, check_other) = if size > MIDDLE_LAYER {
            (4, 3, true)
        } else if size > SMALL_LAYER {
            (3, 1, false)
        } else {
            (1, 1, false)
        };
        let metadata = self.meta.metadata(diff).map_err(self.meta_err())?;
        let mut checked = Vec::new();
        if let Some(r) = self.already_exists(diff, false, 1, &metadata, &mut checked)? {
            return Ok(r);
        }
        // Cross-repository mounts.
        let mut candidates: Vec<V2Metadata> = metadata
            .iter()
            .filter(|m| {
                Reference::parse_normalized(&m.source_repository)
                    .is_ok_and(|r| r.domain() == self.domain)
                    && m.source_repository != self.repo_name
            })
            .cloned()
            .collect();
        self.sort_by_likeness(&mut candidates);
        candidates.truncate(max_mounts);
        let mut session = None;
        for c in &candidates {
            let (Ok(d), Ok(src)) = (
                c.digest.parse::<Digest>(),
                Reference::parse_normalized(&c.source_repository),
            ) else {
                self.remove(c);
                continue;
            };
            let mut unauthorized = false;
            match self.repo.mount_blob(&d, src.path()) {
                Ok(Mount::Mounted) => {
                    let size = self
                        .repo
                        .blob_exists(&d)
                        .map_err(self.reg_err())?
                        .unwrap_or(0);
                    let r = Remote2 { digest: d, size };
                    self.remote_layers
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(*diff, r);
                    self.tag_and_add(diff, &d)?;
                    self.status(
                        diff,
                        format!("Mounted from {}", crate::remote::familiar_path(&src)),
                    );
                    if let Some(s) = session.take() {
                        self.repo.cancel_upload(&s);
                    }
                    return Ok(r);
                }
                Ok(Mount::Upload(s)) => {
                    if let Some(old) = session.replace(s) {
                        self.repo.cancel_upload(&old);
                    }
                }
                Err(e) => {
                    unauthorized = e.is_unauthorized();
                    tracing::info!(blob = %d, from = %c.source_repository, error = %e, "cannot mount");
                }
            }
            // dockerd drops the association, unless an anonymous push was refused.
            if (c.hmac.is_empty() || self.hmac_ok(c)) && (self.has_auth_info || !unauthorized) {
                self.remove(c);
            }
        }
        if max_checks > checked.len()
            && let Some(r) = self.already_exists(
                diff,
                check_other,
                max_checks - checked.len(),
                &metadata,
                &mut checked,
            )?
        {
            if let Some(s) = session.take() {
                self.repo.cancel_upload(&s);
            }
            return Ok(r);
        }
        self.upload(store, chain, diff, session)
    }

    /// Uploads a layer: its tar stream, gzip-compressed and hashed as it streams.
    fn upload(
        &self,
        store: &Store,
        chain: &ChainId,
        diff: &DiffId,
        mut session: Option<registry_client::UploadSession>,
    ) -> Result<Remote2, PushError> {
        let layer_err = |reason: String| PushError::Layer {
            reference: self.refname.clone(),
            diff_id: diff.to_string(),
            reason,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let s = match session.take() {
                Some(s) => s,
                None => self.repo.start_upload().map_err(self.reg_err())?,
            };
            let tar = store
                .layer_store()
                .tar_stream_chain(chain)
                .map_err(|e| layer_err(e.to_string()))?;
            let gz = crate::gzip::AdaptiveGzip::new(tar, self.level);
            let mut hashing = Hashing {
                inner: gz,
                hasher: Sha256::new(),
                count: 0,
                failed: None,
            };
            let result = self.repo.upload_stream(s, &mut hashing);
            let s = match result {
                Ok(s) => s,
                Err(e) => {
                    // A layer whose stream fails to read is damaged: no retry, and the
                    // unfinished upload is abandoned (the registry never commits it).
                    if let Some(why) = hashing.failed.take() {
                        return Err(layer_err(why));
                    }
                    if attempt < UPLOAD_ATTEMPTS && e.is_retryable() {
                        tracing::info!(layer = %diff, error = %e, "upload failed; retrying");
                        std::thread::sleep(std::time::Duration::from_millis(
                            500 * u64::from(attempt),
                        ));
                        continue;
                    }
                    return Err(self.reg_err()(e));
                }
            };
            let digest = Digest::from_sha256_bytes(hashing.hasher.finalize().into());
            let size = hashing.count;
            self.repo
                .finish_upload(&s, &digest)
                .map_err(self.reg_err())?;
            self.tag_and_add(diff, &digest)?;
            let r = Remote2 { digest, size };
            self.remote_layers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(*diff, r);
            self.uploaded.fetch_add(1, Ordering::Relaxed);
            self.status(diff, "Pushed".to_owned());
            return Ok(r);
        }
    }
}

/// Counts and hashes what is read through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    /// Why reading the source failed, if it did.
    failed: Option<String>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).inspect_err(|e| {
            self.failed = Some(e.to_string());
        })?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A schema 2 manifest as Go's `json.MarshalIndent(m, "", "   ")` writes dockerd's.
fn manifest_json(config: &Remote2, layers: &[Remote2]) -> Vec<u8> {
    let mut s = String::new();
    s.push_str("{\n   \"schemaVersion\": 2,\n   \"mediaType\": ");
    s.push_str(&go_json::string(media::DOCKER_MANIFEST));
    s.push_str(",\n   \"config\": {\n      \"mediaType\": ");
    s.push_str(&go_json::string(media::DOCKER_CONFIG));
    s.push_str(&format!(
        ",\n      \"size\": {},\n      \"digest\": \"{}\"\n   }},\n   \"layers\": [",
        config.size, config.digest
    ));
    for (i, l) in layers.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("\n      {\n         \"mediaType\": ");
        s.push_str(&go_json::string(media::DOCKER_LAYER_GZIP));
        s.push_str(&format!(
            ",\n         \"size\": {},\n         \"digest\": \"{}\"\n      }}",
            l.size, l.digest
        ));
    }
    if layers.is_empty() {
        s.push_str("]\n}");
    } else {
        s.push_str("\n   ]\n}");
    }
    s.into_bytes()
}

/// `docker push`: pushes `args.reference` (a tag, or every tag of a repository) from
/// `store` (opened for writing: metadata and references are written).
pub fn push(
    store: &mut Store,
    remote: &Remote,
    args: &PushArgs,
    progress: &Progress,
) -> (Pushed, Result<(), PushError>) {
    let mut pushed = Pushed::default();
    let r = push_into(store, remote, args, progress, &mut pushed);
    (pushed, r)
}

fn push_into(
    store: &mut Store,
    remote: &Remote,
    args: &PushArgs,
    progress: &Progress,
    pushed: &mut Pushed,
) -> Result<(), PushError> {
    let r = Reference::parse_normalized(&args.reference)?;
    if r.digest().is_some() {
        return Err(PushError::Digest(r.familiar_string()));
    }
    // The tags to push, with their images.
    let mut tags: Vec<(Reference, Digest)> = Vec::new();
    if r.tag().is_some() {
        let id = store
            .refs()
            .get(&r)
            .ok_or_else(|| PushError::NoSuchTag(r.familiar_string()))?;
        tags.push((r.clone(), id));
    } else {
        let name = r.familiar_name();
        let mut all: Vec<(String, Reference, Digest)> = store
            .refs()
            .entries()
            .filter_map(|(_, rr, id)| {
                let parsed = Reference::parse_normalized(rr).ok()?;
                let id = id.parse::<Digest>().ok()?;
                (parsed.familiar_name() == name && parsed.tag().is_some() && !parsed.is_canonical())
                    .then(|| (parsed.to_string(), parsed, id))
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        tags = all.into_iter().map(|(_, r, id)| (r, id)).collect();
        if tags.is_empty() {
            return Err(PushError::NoTags(r.familiar_name()));
        }
    }
    let refname = r.familiar_string();
    let creds = remote.credentials(&r)?;
    let repo = remote
        .client
        .open(r.domain(), r.path(), Access::Push, creds.clone(), false)
        .map_err(|source| PushError::Registry {
            reference: refname.clone(),
            source,
        })?;
    // The docker CLI always sends an auth config (empty when anonymous): dockerd keys its
    // HMAC on it.
    let creds = creds.unwrap_or_default();
    let hmac_key = auth::hmac_key(Some(&creds)).unwrap_or_default();
    pushed
        .lines
        .push(format!("The push refers to repository [{}]", r.name()));
    let meta = DistributionMetadata::new(store.data_root().image_dir());
    let state = PushState {
        repo: &repo,
        meta: &meta,
        meta_lock: Mutex::new(()),
        repo_name: r.name(),
        domain: r.domain().to_owned(),
        hmac_key,
        has_auth_info: creds.has_auth_info(),
        remote_layers: Mutex::new(HashMap::new()),
        refname: refname.clone(),
        progress,
        uploaded: AtomicUsize::new(0),
        level: args.compression_level.min(9),
        statuses: Mutex::new(HashMap::new()),
    };
    for (tag_ref, id) in &tags {
        let (digest, size, diffs) =
            push_tag(store, &state, tag_ref, id, args.max_concurrent_uploads)?;
        // docker's order: top layer first.
        let statuses = state
            .statuses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for d in diffs.iter().rev() {
            if let Some(st) = statuses.get(d) {
                pushed.lines.push(format!("{}: {st}", short(&d.0)));
            }
        }
        let tag = tag_ref.tag().unwrap_or("latest").to_owned();
        pushed
            .lines
            .push(format!("{tag}: digest: {digest} size: {size}"));
        pushed.pushed.push((tag_ref.to_string(), digest));
        // dockerd's addDigestReference.
        let digest_ref = tag_ref.trim().with_digest(digest);
        match store.refs().get(&digest_ref) {
            Some(old) if old != *id => {
                tracing::error!(reference = %digest_ref, "image ID for digest changed, cannot update");
            }
            Some(_) => {}
            None => store
                .refs_mut()
                .add_digest(&digest_ref, id, true)
                .map_err(|source| PushError::Refs {
                    reference: refname.clone(),
                    target: digest_ref.familiar_string(),
                    source,
                })?,
        }
    }
    pushed.uploaded = state.uploaded.load(Ordering::Relaxed);
    Ok(())
}

fn push_tag(
    store: &Store,
    state: &PushState<'_>,
    tag_ref: &Reference,
    id: &Digest,
    concurrency: usize,
) -> Result<(Digest, usize, Vec<DiffId>), PushError> {
    let img_err = |reason: String| PushError::Image {
        reference: state.refname.clone(),
        reason,
    };
    let image = store.config(id).map_err(|e| {
        img_err(format!(
            "could not find image from tag {}: {e}",
            tag_ref.familiar_string()
        ))
    })?;
    let diff_ids = image.diff_ids();
    let chains: Vec<ChainId> = layer_store::chain_ids(&diff_ids).collect();
    // Hold the layers while their streams are read.
    let ls = store.layer_store();
    let mut handles = Vec::new();
    for c in &chains {
        match ls.get(c) {
            Ok(h) => handles.push(h),
            Err(e) => {
                for h in handles.drain(..) {
                    let _ = ls.release(&h);
                }
                return Err(img_err(format!("failed to get layer {c}: {e}")));
            }
        }
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Remote2, PushError>>>> =
        Mutex::new((0..chains.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..concurrency.clamp(1, chains.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= chains.len() {
                        break;
                    }
                    let r = state.push_layer(store, &chains[i], &diff_ids[i]);
                    results
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)[i] = Some(r);
                }
            });
        }
    });
    for h in handles.drain(..) {
        let _ = ls.release(&h);
    }
    let mut layers = Vec::with_capacity(chains.len());
    for r in results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        match r {
            Some(Ok(l)) => layers.push(l),
            Some(Err(e)) => return Err(e),
            None => return Err(img_err("a layer was not pushed".to_owned())),
        }
    }
    // The config, unless the registry has it (dockerd's manifest builder).
    let config_bytes = image.raw_json();
    let config_digest = Digest::sha256(config_bytes);
    let config = match state
        .repo
        .blob_exists(&config_digest)
        .map_err(state.reg_err())?
    {
        Some(size) if size == config_bytes.len() as u64 => Remote2 {
            digest: config_digest,
            size,
        },
        _ => {
            let d = state.repo.put_blob(config_bytes).map_err(state.reg_err())?;
            Remote2 {
                digest: d,
                size: config_bytes.len() as u64,
            }
        }
    };
    let manifest = manifest_json(&config, &layers);
    let tag = tag_ref.tag().unwrap_or("latest");
    let digest = state
        .repo
        .put_manifest(tag, media::DOCKER_MANIFEST, &manifest)
        .map_err(state.reg_err())?;
    Ok((digest, manifest.len(), diff_ids))
}
