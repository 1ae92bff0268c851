//! `imgstore pull`: an image from a registry into the data root, as dockerd 20.10 pulls
//! (`distribution/pull_v2.go`, `distribution/xfer/download.go`), writing what it writes.
//!
//! 1. The manifest is fetched by tag or digest (checked against it): Docker schema 2 or OCI;
//!    a manifest list or OCI index gives the manifest of the platform asked for (default:
//!    this machine's), with containerd's matching as dockerd 20.10 uses it. Schema 1 is
//!    refused.
//! 2. An image whose config is already in the store is not pulled again (dockerd's early
//!    return: only references are added, no distribution metadata).
//! 3. Layers known through the distribution metadata (`diffid-by-digest`) whose chain exists
//!    are "Already exists" (and this repository is recorded as a source of them), up to the
//!    first missing one; the rest are downloaded, several at once, each into a partial file
//!    under `image/<driver>/.imgstore-pull/` while the layer store registers it from that
//!    file as its bytes arrive: decompressed (gzip, zstd, ...), hashed into the diff ID and
//!    applied by the driver in one pass, no whole blob in memory. vfs layers are registered
//!    in chain order; overlay2 layers, which hold only their own changes, are written at the
//!    same time (`LayerStore::register_detached`), checked against their diff ID, flushed
//!    and committed in chain order. A blob is used only once its digest is verified; a layer
//!    whose diff ID is not the config's is dropped (overlay2) or released (vfs) at once.
//! 4. A dropped connection resumes with `Range` (the registry client); a partial file left
//!    by a killed pull is continued by the next one (its prefix hashed again, and started
//!    over if the result does not verify); committed layers are found again through the
//!    metadata, which is written right after each commit. Partial files go once their layer
//!    is committed.
//! 5. The image is created from the config bytes as served; the tag and the
//!    `name@<manifest digest>` reference (the list's digest for a list) are set as dockerd
//!    sets them, with its `Status:` line.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use digest_set::Digest;
use image_archive::format::{ImageManifest, Index, Platform};
use image_archive::plan::PlatformSpec;
use image_store::Image;
use layer_store::{ChainId, DiffId, LayerHandle, RegisterOptions};
use registry_client::{Access, Credentials, Repository, media};
use sha2::{Digest as _, Sha256};

use crate::distmeta::{DistMetaError, DistributionMetadata, V2Metadata};
use crate::progress::Progress;
use crate::reference::Reference;
use crate::remote::{Remote, RemoteError, familiar_path};
use crate::store::Store;

/// dockerd's default is 3; on a fast link more streams keep the pipe full.
pub const DEFAULT_CONCURRENT_DOWNLOADS: usize = 6;
/// The directory of partial downloads, in `image/<driver>`.
pub const PARTIAL_DIR: &str = ".imgstore-pull";
/// The largest config accepted (as the image store reads them).
const MAX_CONFIG: u64 = 16 << 20;
/// The most layers an image may have.
const MAX_LAYERS: usize = 1000;

/// `pull` flags.
#[derive(Debug, Clone)]
pub struct PullArgs {
    /// `NAME[:TAG|@DIGEST]` (`latest` when neither).
    pub reference: String,
    /// `--platform os/arch[/variant]` for a manifest list (default: this machine's).
    pub platform: Option<String>,
    /// `--max-concurrent-downloads`.
    pub max_concurrent_downloads: usize,
}

/// Why a pull failed. Every message names the reference.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PullError {
    /// The reference does not parse.
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
    /// `--platform` does not parse.
    #[error("invalid --platform {0:?}: use os/arch[/variant]")]
    Platform(String),
    /// The registry settings or credentials cannot be used.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The registry refused or failed.
    #[error("{reference}: {source}")]
    Registry {
        /// The reference pulled.
        reference: String,
        /// Why.
        #[source]
        source: registry_client::Error,
    },
    /// A schema 1 manifest (deprecated, unverifiable).
    #[error(
        "{reference}: the registry serves a schema 1 manifest, which is not supported: push the image again with a current docker"
    )]
    Schema1 {
        /// The reference pulled.
        reference: String,
    },
    /// No image of the manifest list is for the platform.
    #[error("{reference}: no matching manifest for {platform} in the manifest list entries")]
    NoMatchingPlatform {
        /// The reference pulled.
        reference: String,
        /// The platform asked for.
        platform: String,
    },
    /// A manifest that is not valid or not supported.
    #[error("{reference}: invalid manifest: {reason}")]
    Manifest {
        /// The reference pulled.
        reference: String,
        /// Why.
        reason: String,
    },
    /// The config does not parse as an image config.
    #[error("{reference}: invalid image config {digest}: {reason}")]
    Config {
        /// The reference pulled.
        reference: String,
        /// The config's digest.
        digest: String,
        /// Why.
        reason: String,
    },
    /// The layers do not match the config's diff IDs (dockerd's `errRootFSMismatch`).
    #[error(
        "{reference}: layers from manifest don't match image configuration: layer {index} ({blob}) has diff ID {actual}, the config says {expected}"
    )]
    RootFsMismatch {
        /// The reference pulled.
        reference: String,
        /// The layer's index.
        index: usize,
        /// The layer's blob.
        blob: String,
        /// The config's diff ID.
        expected: String,
        /// What the layer hashes to.
        actual: String,
    },
    /// A blob failed to download or verify.
    #[error("{reference}: blob {blob}: {reason}")]
    Download {
        /// The reference pulled.
        reference: String,
        /// The blob.
        blob: String,
        /// Why.
        reason: String,
    },
    /// A layer failed to register (bad content, disk full, ...).
    #[error("{reference}: layer {blob}: {source}")]
    Register {
        /// The reference pulled.
        reference: String,
        /// The blob.
        blob: String,
        /// Why.
        #[source]
        source: Box<layer_store::RegisterError>,
    },
    /// Creating the image failed.
    #[error("{reference}: {source}")]
    Create {
        /// The reference pulled.
        reference: String,
        /// Why.
        #[source]
        source: Box<image_store::CreateError>,
    },
    /// Writing a reference failed.
    #[error("{reference}: cannot set {target}: {source}")]
    Refs {
        /// The reference pulled.
        reference: String,
        /// The reference written.
        target: String,
        /// Why.
        #[source]
        source: crate::refstore::RefStoreError,
    },
    /// Distribution metadata cannot be read or written.
    #[error("{reference}: {source}")]
    Metadata {
        /// The reference pulled.
        reference: String,
        /// Why.
        #[source]
        source: DistMetaError,
    },
    /// A partial download file cannot be used.
    #[error("{reference}: {path}: {source}")]
    Partial {
        /// The reference pulled.
        reference: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// What a pull printed: `docker pull`'s lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pulled {
    /// `TAG: Pulling from NAME`, `Digest: ...`, `Status: ...`.
    pub lines: Vec<String>,
    /// The full reference pulled (what `docker pull` prints last, and alone with `-q`).
    pub reference: String,
    /// The image ID.
    pub id: Option<Digest>,
}

/// containerd's `platforms.Normalize` (1.4/1.5, as dockerd 20.10 vendors it).
fn normalize(os: &str, arch: &str, variant: Option<&str>) -> (String, String, String) {
    let os = match os.to_ascii_lowercase().as_str() {
        "macos" => "darwin".to_owned(),
        o => o.to_owned(),
    };
    let variant = variant.unwrap_or("").to_owned();
    let (arch, variant) = match arch.to_ascii_lowercase().as_str() {
        "i386" => ("386".to_owned(), String::new()),
        "x86_64" | "x86-64" => ("amd64".to_owned(), String::new()),
        "aarch64" | "arm64" => (
            "arm64".to_owned(),
            match variant.as_str() {
                "8" | "v8" => String::new(),
                _ => variant,
            },
        ),
        "armhf" => ("arm".to_owned(), "v7".to_owned()),
        "armel" => ("arm".to_owned(), "v6".to_owned()),
        "arm" => (
            "arm".to_owned(),
            match variant.as_str() {
                "" | "7" => "v7".to_owned(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            },
        ),
        a => (a.to_owned(), variant),
    };
    (os, arch, variant)
}

/// dockerd 20.10's `filterManifests`: the entries whose normalized platform equals the
/// wanted one, in list order; for `arm`, a match on OS and architecture alone when none.
fn filter_manifests<'a>(
    index: &'a Index,
    want: &PlatformSpec,
) -> Vec<&'a image_archive::format::Descriptor> {
    let w = normalize(&want.os, &want.arch, want.variant.as_deref());
    let plat = |p: &Platform| normalize(&p.os, &p.architecture, p.variant.as_deref());
    let mut m: Vec<_> = index
        .manifests
        .iter()
        .filter(|d| d.platform.as_ref().is_some_and(|p| plat(p) == w))
        .collect();
    if m.is_empty() && w.1 == "arm" {
        m = index
            .manifests
            .iter()
            .filter(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == w.0 && p.architecture == w.1)
            })
            .collect();
    }
    m
}

/// dockerd's `checkSupportedMediaType`: `application/vnd.oci.image.*` and
/// `application/vnd.docker.*`.
fn supported_media_type(mt: &str) -> bool {
    let l = mt.to_ascii_lowercase();
    ["application/vnd.oci.image", "application/vnd.docker"]
        .iter()
        .any(|p| l == *p || l.starts_with(&format!("{p}.")))
}

/// dockerd's `ImageTypes`: config media types pulled as images.
fn image_config_type(mt: &str) -> bool {
    matches!(
        mt,
        media::DOCKER_CONFIG
            | image_archive::format::media_type::OCI_CONFIG
            | "application/octet-stream"
            | "application/json"
            | "text/html"
            | ""
    )
}

/// One blob being downloaded into its partial file.
struct Job {
    digest: Digest,
    size: Option<u64>,
    file: File,
    path: PathBuf,
    state: Mutex<JobState>,
    cond: Condvar,
}

#[derive(Default)]
struct JobState {
    /// Bytes in the file that readers may use.
    written: u64,
    /// Bumped when the file is started over (a bad partial prefix).
    generation: u32,
    /// Set when the download ended: `Ok` = verified.
    done: Option<Result<(), String>>,
    /// Whether the worker started on it.
    started: bool,
    /// The last reads of the download, still in memory (offset, length, buffer),
    /// contiguous and in order, at most [`RECENT_CHUNKS`]: a follower that keeps up with
    /// the download takes them from here instead of reading them back from the file.
    recent: VecDeque<(u64, usize, Vec<u8>)>,
    /// Buffers the follower is done with, for the download to fill again.
    spare: Vec<Vec<u8>>,
    /// Whether the blob's only follower is reading: the download then waits while
    /// [`recent`](Self::recent) is full, so that the follower finds everything in memory.
    followed: bool,
}

/// The size of a download's reads, and of the buffers handed to followers.
const CHUNK: usize = 256 * 1024;
/// At most this many reads are kept in memory for followers, per blob (4 MiB).
const RECENT_CHUNKS: usize = 16;

impl JobState {
    /// A buffer for the next read.
    fn buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_else(|| vec![0; CHUNK])
    }

    /// Keeps `len` bytes of `buf`, downloaded at `offset`, for followers; the oldest go
    /// (they are in the file) once more than [`RECENT_CHUNKS`] are kept.
    fn keep(&mut self, offset: u64, len: usize, buf: Vec<u8>) {
        self.recent.push_back((offset, len, buf));
        while self.recent.len() > RECENT_CHUNKS {
            if let Some((_, _, b)) = self.recent.pop_front() {
                self.recycle(b);
            }
        }
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < 4 && buf.len() == CHUNK {
            self.spare.push(buf);
        }
    }

    /// Copies what the kept buffers hold at `pos` into `out`, dropping the buffers before
    /// it: how many bytes it copied (0 when the buffers do not hold `pos`) and whether it
    /// dropped any.
    fn take_recent(&mut self, pos: u64, out: &mut [u8]) -> (usize, bool) {
        let mut dropped = false;
        while let Some(&(off, len, _)) = self.recent.front() {
            if off + len as u64 > pos {
                break;
            }
            if let Some((_, _, b)) = self.recent.pop_front() {
                self.recycle(b);
                dropped = true;
            }
        }
        let n = match self.recent.front() {
            Some((off, len, b)) if *off <= pos => {
                let at = (pos - off) as usize;
                let n = (len - at).min(out.len());
                out[..n].copy_from_slice(&b[at..at + n]);
                n
            }
            _ => 0,
        };
        (n, dropped)
    }

    /// Forgets the kept buffers (the file is started over).
    fn forget(&mut self) {
        while let Some((_, _, b)) = self.recent.pop_front() {
            self.recycle(b);
        }
    }
}

impl Job {
    fn lock(&self) -> std::sync::MutexGuard<'_, JobState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn update(&self, f: impl FnOnce(&mut JobState)) {
        let mut st = self.lock();
        f(&mut st);
        drop(st);
        self.cond.notify_all();
    }

    /// A buffer for the download's next read, once there is room for it: while the blob's
    /// only follower reads, the download waits until it has taken the oldest read kept in
    /// memory (rather than leave it to read the file back), or until `cancel`.
    fn room(&self, cancel: &AtomicBool) -> Vec<u8> {
        let mut st = self.lock();
        while st.followed && st.recent.len() >= RECENT_CHUNKS && !cancel.load(Ordering::Relaxed) {
            st = match self.cond.wait_timeout(st, Duration::from_millis(100)) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        st.buffer()
    }

    /// Makes `len` bytes of `buf`, written to the file at `offset` (the end of what was
    /// written), available to followers.
    fn publish(&self, offset: u64, len: usize, buf: Vec<u8>) {
        self.update(|s| {
            s.written = offset + len as u64;
            s.keep(offset, len, buf);
        });
    }
}

/// Reads a job's file as the download fills it: waits for bytes, ends only when the blob
/// is verified, fails when the download fails or starts over.
struct Follow<'a> {
    job: &'a Job,
    pos: u64,
    generation: u32,
    /// The only follower of the blob (no other layer needs it): it empties the file once
    /// it is read whole and verified (its pages then never have to be written to disk by
    /// the layer's sync), and the download waits for it (see [`JobState::followed`]).
    sole: bool,
    /// Whether the file is still to be emptied.
    drop_at_end: bool,
}

impl<'a> Follow<'a> {
    fn new(job: &'a Job, generation: u32, sole: bool) -> Self {
        if sole {
            job.update(|s| s.followed = true);
        }
        Follow {
            job,
            pos: 0,
            generation,
            sole,
            drop_at_end: sole,
        }
    }
}

impl Drop for Follow<'_> {
    fn drop(&mut self) {
        if self.sole {
            self.job.update(|s| s.followed = false);
        }
    }
}

impl Read for Follow<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut st = self.job.lock();
        loop {
            if st.generation != self.generation {
                return Err(io::Error::other(Restarted));
            }
            if self.pos < st.written {
                let n = ((st.written - self.pos) as usize).min(buf.len());
                let (taken, dropped) = st.take_recent(self.pos, &mut buf[..n]);
                drop(st);
                if dropped {
                    // The download may wait for room.
                    self.job.cond.notify_all();
                }
                if taken > 0 {
                    self.pos += taken as u64;
                    return Ok(taken);
                }
                let n = self.job.file.read_at(&mut buf[..n], self.pos)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "partial file shorter than written",
                    ));
                }
                self.pos += n as u64;
                return Ok(n);
            }
            match &st.done {
                Some(Ok(())) => {
                    if self.drop_at_end && self.pos > 0 {
                        self.drop_at_end = false;
                        if let Err(e) = self.job.file.set_len(0) {
                            tracing::debug!(file = %self.job.path.display(), error = %e, "cannot empty the partial file");
                        }
                    }
                    return Ok(0);
                }
                Some(Err(e)) => return Err(io::Error::other(e.clone())),
                None => {}
            }
            st = self
                .job
                .cond
                .wait(st)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

/// The error a [`Follow`] returns when its download started over.
#[derive(Debug)]
struct Restarted;

impl std::fmt::Display for Restarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the partial download did not verify and was started over")
    }
}

impl std::error::Error for Restarted {}

fn is_restart(e: &layer_store::RegisterError) -> bool {
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cur {
        if c.is::<Restarted>() {
            return true;
        }
        if let Some(io) = c.downcast_ref::<io::Error>()
            && io.get_ref().is_some_and(|i| i.is::<Restarted>())
        {
            return true;
        }
        cur = c.source();
    }
    e.to_string().contains(&Restarted.to_string())
}

/// Downloads one blob into its job's file (continuing what is there), verifying it.
fn download(
    repo: &Repository,
    job: &Job,
    cancel: &AtomicBool,
    progress: &crate::progress::Bar,
) -> Result<(), String> {
    let io_err = |e: io::Error| format!("{}: {e}", job.path.display());
    let mut restarted = false;
    loop {
        let mut existing = job.file.metadata().map_err(io_err)?.len();
        if job.size.is_some_and(|s| existing > s) {
            job.file.set_len(0).map_err(io_err)?;
            existing = 0;
        }
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut pos = 0u64;
        while pos < existing {
            let want = ((existing - pos) as usize).min(buf.len());
            let n = job.file.read_at(&mut buf[..want], pos).map_err(io_err)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            pos += n as u64;
        }
        let existing = pos;
        if existing > 0 {
            tracing::info!(blob = %job.digest, bytes = existing, "continuing a partial download");
            progress.add(existing);
        }
        job.update(|s| s.written = existing);
        if job.size != Some(existing) {
            let mut r = repo
                .open_blob(&job.digest, existing)
                .map_err(|e| e.to_string())?;
            let mut pos = existing;
            loop {
                if cancel.load(Ordering::Relaxed) {
                    return Err("cancelled".to_owned());
                }
                if buf.is_empty() {
                    // Handed to the followers: a buffer for the next read.
                    buf = job.room(cancel);
                }
                let n = match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e.to_string()),
                };
                if let Some(size) = job.size
                    && pos + n as u64 > size
                {
                    // Never more on disk than the manifest announced.
                    let _ = job.file.set_len(0);
                    return Err(format!(
                        "size mismatch: the registry sent more than the {size} bytes the manifest says"
                    ));
                }
                job.file.write_all_at(&buf[..n], pos).map_err(io_err)?;
                hasher.update(&buf[..n]);
                job.publish(pos, n, std::mem::take(&mut buf));
                pos += n as u64;
                progress.add(n as u64);
            }
        }
        let total = job.file.metadata().map_err(io_err)?.len();
        let actual = Digest::from_sha256_bytes(hasher.finalize().into());
        let size_ok = job.size.is_none_or(|s| s == total);
        if actual == job.digest && size_ok {
            return Ok(());
        }
        if existing > 0 && !restarted {
            // dockerd retries a resumed download whose digest does not verify: the partial
            // prefix may be stale. Start over once.
            tracing::warn!(blob = %job.digest, "a resumed download did not verify; starting over");
            job.file.set_len(0).map_err(io_err)?;
            job.update(|s| {
                s.written = 0;
                s.generation += 1;
                s.forget();
            });
            restarted = true;
            continue;
        }
        // Nothing of a blob that does not verify is kept.
        let _ = job.file.set_len(0);
        return Err(if size_ok {
            format!("digest mismatch: the registry sent content hashing to {actual}")
        } else {
            format!(
                "size mismatch: the manifest says {} bytes, the registry sent {total}",
                job.size.unwrap_or(0)
            )
        });
    }
}

/// Releases handles (layers of this pull that nothing else uses go) when dropped.
struct Held<'a> {
    store: &'a Store,
    handles: Vec<LayerHandle>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        for h in self.handles.drain(..).rev() {
            if let Err(e) = self.store.layer_store().release(&h) {
                tracing::warn!(layer = %h.chain_id(), error = %e, "cannot release layer");
            }
        }
    }
}

/// The resolved image: manifest, config and where they came from.
struct Resolved {
    repo: Repository,
    /// The digest recorded in `name@digest` (the list's for a list).
    manifest_digest: Digest,
    manifest: ImageManifest,
}

/// `docker pull`: pulls `args.reference` into `store` (opened for writing).
pub fn pull(
    store: &mut Store,
    remote: &Remote,
    args: &PullArgs,
    progress: &Progress,
) -> (Pulled, Result<(), PullError>) {
    let mut pulled = Pulled::default();
    let r = pull_into(store, remote, args, progress, &mut pulled);
    (pulled, r)
}

fn registry(reference: &str) -> impl Fn(registry_client::Error) -> PullError + '_ {
    move |source| PullError::Registry {
        reference: reference.to_owned(),
        source,
    }
}

fn resolve(
    remote: &Remote,
    r: &Reference,
    creds: Option<Credentials>,
    platform: &PlatformSpec,
    refname: &str,
    pulled: &mut Pulled,
) -> Result<Resolved, PullError> {
    let tag_or_digest = match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => "latest".to_owned(),
    };
    // Endpoints in dockerd's order; a mirror that fails in any way hands over to the next.
    let endpoints = remote.client.endpoints(r.domain());
    let mut last = None;
    let mut found = None;
    for ep in &endpoints {
        let repo = match remote
            .client
            .open_endpoint(ep, r.path(), Access::Pull, creds.clone())
        {
            Ok(repo) => repo,
            Err(e) => {
                tracing::debug!(endpoint = %ep.base_url(), error = %e, "endpoint failed");
                last = Some(e);
                continue;
            }
        };
        match repo.get_manifest(&tag_or_digest) {
            Ok(m) => {
                found = Some((repo, m));
                break;
            }
            Err(e) if ep.mirror => {
                tracing::info!(mirror = %ep.base_url(), error = %e, "mirror failed; trying the next endpoint");
                last = Some(e);
            }
            Err(e) => return Err(registry(refname)(e)),
        }
    }
    let Some((repo, top)) = found else {
        return Err(registry(refname)(last.unwrap_or_else(|| {
            registry_client::Error::Invalid {
                what: r.domain().to_owned(),
                reason: "no endpoint".to_owned(),
            }
        })));
    };
    pulled.lines.push(format!(
        "{tag_or_digest}: Pulling from {}",
        familiar_path(r)
    ));
    let bad = |reason: String| PullError::Manifest {
        reference: refname.to_owned(),
        reason,
    };
    let mut mt = top.media_type.clone();
    let mut bytes = top.bytes.clone();
    if mt == media::DOCKER_SCHEMA1_SIGNED || mt == media::DOCKER_SCHEMA1 {
        return Err(PullError::Schema1 {
            reference: refname.to_owned(),
        });
    }
    if mt == media::DOCKER_MANIFEST_LIST || mt == media::OCI_INDEX {
        let index: Index =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("manifest list: {e}")))?;
        let matches = filter_manifests(&index, platform);
        let Some(m) = matches.first() else {
            return Err(PullError::NoMatchingPlatform {
                reference: refname.to_owned(),
                platform: platform.to_string(),
            });
        };
        let d: Digest = m
            .digest
            .parse()
            .map_err(|e| bad(format!("manifest digest {:?}: {e}", m.digest)))?;
        let child = repo
            .get_manifest(&d.to_string())
            .map_err(registry(refname))?;
        mt = child.media_type;
        bytes = child.bytes;
        if mt == media::DOCKER_SCHEMA1_SIGNED || mt == media::DOCKER_SCHEMA1 {
            return Err(PullError::Schema1 {
                reference: refname.to_owned(),
            });
        }
    }
    if mt != media::DOCKER_MANIFEST && mt != media::OCI_MANIFEST {
        return Err(bad(format!("unsupported manifest media type {mt:?}")));
    }
    let manifest: ImageManifest = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if !image_config_type(&manifest.config.media_type) {
        return Err(bad(format!(
            "config media type {:?} is not an image",
            manifest.config.media_type
        )));
    }
    if manifest.layers.len() > MAX_LAYERS {
        return Err(bad(format!("more than {MAX_LAYERS} layers")));
    }
    Ok(Resolved {
        repo,
        manifest_digest: top.digest,
        manifest,
    })
}

fn pull_into(
    store: &mut Store,
    remote: &Remote,
    args: &PullArgs,
    progress: &Progress,
    pulled: &mut Pulled,
) -> Result<(), PullError> {
    let platform = match &args.platform {
        Some(p) => PlatformSpec::parse(p).ok_or_else(|| PullError::Platform(p.clone()))?,
        None => PlatformSpec::host(),
    };
    let r = Reference::parse_normalized(&args.reference)?;
    let r = if r.digest().is_some() {
        r
    } else {
        r.with_default_tag()
    };
    let refname = r.familiar_string();
    pulled.reference = r.to_string();
    let creds = remote.credentials(&r)?;
    let res = resolve(remote, &r, creds, &platform, &refname, pulled)?;
    let bad = |reason: String| PullError::Manifest {
        reference: refname.clone(),
        reason,
    };
    let config_digest: Digest = res.manifest.config.digest.parse().map_err(|e| {
        bad(format!(
            "config digest {:?}: {e}",
            res.manifest.config.digest
        ))
    })?;
    let mut layers = Vec::with_capacity(res.manifest.layers.len());
    for l in &res.manifest.layers {
        let d: Digest = l
            .digest
            .parse()
            .map_err(|e| bad(format!("layer digest {:?}: {e}", l.digest)))?;
        if !supported_media_type(&l.media_type) {
            return Err(bad(format!(
                "unsupported layer media type {:?}",
                l.media_type
            )));
        }
        layers.push((d, l.size));
    }
    let id = if store.contains(&config_digest) {
        // dockerd: the image is there, nothing to pull.
        config_digest
    } else {
        pull_layers_and_create(
            store,
            &res,
            &config_digest,
            &layers,
            &refname,
            args.max_concurrent_downloads,
            progress,
        )?
    };
    pulled.id = Some(id);
    pulled
        .lines
        .push(format!("Digest: {}", res.manifest_digest));
    let updated = set_references(store, &r, &res.manifest_digest, &id, &refname)?;
    pulled.lines.push(if updated {
        format!("Status: Downloaded newer image for {refname}")
    } else {
        format!("Status: Image is up to date for {refname}")
    });
    Ok(())
}

/// dockerd's reference updates after a pull; returns `tagUpdated`.
fn set_references(
    store: &mut Store,
    r: &Reference,
    manifest_digest: &Digest,
    id: &Digest,
    refname: &str,
) -> Result<bool, PullError> {
    let refs_err = |target: &Reference| {
        let target = target.familiar_string();
        move |source| PullError::Refs {
            reference: refname.to_owned(),
            target,
            source,
        }
    };
    let digest_ref = r.trim().with_digest(*manifest_digest);
    let add_digest_reference = |store: &mut Store| -> Result<(), PullError> {
        match store.refs().get(&digest_ref) {
            Some(old) if old != *id => {
                tracing::error!(reference = %digest_ref, old = %old, new = %id, "image ID for digest changed, cannot update");
                Ok(())
            }
            Some(_) => Ok(()),
            None => store
                .refs_mut()
                .add_digest(&digest_ref, id, true)
                .map_err(refs_err(&digest_ref)),
        }
    };
    if store.refs().get(r) == Some(*id) {
        add_digest_reference(store)?;
        return Ok(false);
    }
    if r.is_canonical() {
        store
            .refs_mut()
            .add_digest(r, id, true)
            .map_err(refs_err(r))?;
    } else {
        add_digest_reference(store)?;
        store.refs_mut().add_tag(r, id, true).map_err(refs_err(r))?;
    }
    Ok(true)
}

fn short(d: &Digest) -> String {
    d.hex().chars().take(12).collect()
}

/// Opens (creating) the partial file of a blob.
fn open_partial(dir: &durable_fs::Dir, d: &Digest) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let name = format!("{}-{}", d.algorithm().name(), d.hex());
    let fd = rustix::fs::openat(
        dir.fd(),
        name.as_str(),
        OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let f = File::from(fd);
    if !f.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(f)
}

fn partial_name(d: &Digest) -> String {
    format!("{}-{}", d.algorithm().name(), d.hex())
}

fn pull_layers_and_create(
    store: &Store,
    res: &Resolved,
    config_digest: &Digest,
    layers: &[(Digest, u64)],
    refname: &str,
    concurrency: usize,
    progress: &Progress,
) -> Result<Digest, PullError> {
    let repo = &res.repo;
    let config = repo
        .get_blob(config_digest, MAX_CONFIG)
        .map_err(registry(refname))?;
    let image = Image::from_bytes(config.clone()).map_err(|e| PullError::Config {
        reference: refname.to_owned(),
        digest: config_digest.to_string(),
        reason: e.to_string(),
    })?;
    let diff_ids = image.diff_ids();
    if diff_ids.len() != layers.len() {
        return Err(PullError::Manifest {
            reference: refname.to_owned(),
            reason: format!(
                "layers from manifest don't match image configuration: {} layers for {} diff IDs",
                layers.len(),
                diff_ids.len()
            ),
        });
    }
    let meta = DistributionMetadata::new(store.data_root().image_dir());
    let meta_err = |source| PullError::Metadata {
        reference: refname.to_owned(),
        source,
    };
    let source_repo = format!("{}/{}", repo_domain_name(res), repo.name());
    let ls = store.layer_store();
    let mut held = Held {
        store,
        handles: Vec::new(),
    };
    // dockerd's Download: layers known through the metadata whose chain exists, up to the
    // first missing one, are "Already exists".
    let mut parent: Option<ChainId> = None;
    let mut first_missing = layers.len();
    for (i, (blob, _)) in layers.iter().enumerate() {
        let Some(diff) = meta.diff_id(blob).map_err(meta_err)? else {
            first_missing = i;
            break;
        };
        let chain = ChainId::step(parent.as_ref(), &diff);
        match ls.get(&chain) {
            Ok(h) => {
                progress.note(&format!("{}: Already exists", short(blob)));
                held.handles.push(h);
                meta.add(
                    &diff,
                    &V2Metadata {
                        digest: blob.to_string(),
                        source_repository: source_repo.clone(),
                        hmac: String::new(),
                    },
                )
                .map_err(meta_err)?;
                if diff != diff_ids[i] {
                    return Err(PullError::RootFsMismatch {
                        reference: refname.to_owned(),
                        index: i,
                        blob: blob.to_string(),
                        expected: diff_ids[i].to_string(),
                        actual: diff.to_string(),
                    });
                }
                parent = Some(chain);
            }
            Err(_) => {
                first_missing = i;
                break;
            }
        }
    }
    if first_missing < layers.len() {
        let image_dir =
            durable_fs::Dir::open_nofollow(store.data_root().image_dir()).map_err(|e| {
                PullError::Partial {
                    reference: refname.to_owned(),
                    path: store.data_root().image_dir(),
                    source: io::Error::other(e.to_string()),
                }
            })?;
        let pdir = image_dir
            .create_dir(PARTIAL_DIR, 0o700)
            .map_err(|e| PullError::Partial {
                reference: refname.to_owned(),
                path: image_dir.join(PARTIAL_DIR),
                source: io::Error::other(e.to_string()),
            })?;
        // One job per distinct blob, in the order the layers need them.
        let mut jobs: Vec<Arc<Job>> = Vec::new();
        let mut by_digest: HashMap<Digest, usize> = HashMap::new();
        for (blob, size) in &layers[first_missing..] {
            if by_digest.contains_key(blob) {
                continue;
            }
            let path = pdir.join(partial_name(blob));
            let file = open_partial(&pdir, blob).map_err(|source| PullError::Partial {
                reference: refname.to_owned(),
                path: path.clone(),
                source,
            })?;
            by_digest.insert(*blob, jobs.len());
            jobs.push(Arc::new(Job {
                digest: *blob,
                size: Some(*size),
                file,
                path,
                state: Mutex::new(JobState::default()),
                cond: Condvar::new(),
            }));
        }
        for (blob, _) in &layers[first_missing..] {
            progress.note(&format!("{}: Pulling fs layer", short(blob)));
        }
        let total: u64 = jobs.iter().filter_map(|j| j.size).sum();
        let bar = progress.bytes("Downloading", total);
        let cancel = AtomicBool::new(false);
        let next = AtomicUsize::new(0);
        let workers = concurrency.clamp(1, jobs.len().max(1));
        let outcome: Result<(), PullError> = std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(job) = jobs.get(i) else { break };
                        if cancel.load(Ordering::Relaxed) {
                            job.update(|st| st.done = Some(Err("cancelled".to_owned())));
                            continue;
                        }
                        job.update(|st| st.started = true);
                        let r = download(repo, job, &cancel, &bar);
                        tracing::debug!(layer = i, ok = r.is_ok(), "layer download done");
                        if r.is_ok() {
                            progress.note(&format!("{}: Download complete", short(&job.digest)));
                        }
                        job.update(|st| st.done = Some(r));
                    }
                });
            }
            let ctx = ApplyCtx {
                store,
                pdir: &pdir,
                jobs: &jobs,
                by_digest: &by_digest,
                layers: &layers[first_missing..],
                diff_ids: &diff_ids[first_missing..],
                offset: first_missing,
                meta: &meta,
                source_repo: &source_repo,
                refname,
                progress,
                cancel: &cancel,
            };
            let applied = if store.layer_store().driver().independent_layers() {
                ctx.in_parallel(parent, &mut held, concurrency)
            } else {
                ctx.in_order(parent, &mut held)
            };
            if applied.is_err() {
                cancel.store(true, Ordering::SeqCst);
            }
            applied
        });
        bar.finish();
        // Partial files of committed layers went as they committed; empty ones (not started,
        // or not verified and emptied) go; the others stay for the next pull to continue.
        for job in &jobs {
            if job.file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
                let _ = pdir.remove_file(partial_name(&job.digest));
            }
        }
        if pdir.entries().is_ok_and(|e| e.is_empty()) {
            let _ = image_dir.remove_tree(PARTIAL_DIR);
        }
        outcome?;
    }
    let id = store
        .image_store()
        .create(&config)
        .map_err(|source| PullError::Create {
            reference: refname.to_owned(),
            source: Box::new(source),
        })?;
    drop(held);
    Ok(id.0)
}

/// `domain` of the repository's full name, as dockerd's `repoInfo.Name` (`docker.io` for
/// Docker Hub and its mirrors).
fn repo_domain_name(res: &Resolved) -> String {
    res.repo.endpoint().index.clone()
}

/// What applying the missing layers needs.
struct ApplyCtx<'a> {
    store: &'a Store,
    pdir: &'a durable_fs::Dir,
    jobs: &'a [Arc<Job>],
    by_digest: &'a HashMap<Digest, usize>,
    /// The missing layers (blob, size) and their diff IDs in the config.
    layers: &'a [(Digest, u64)],
    diff_ids: &'a [DiffId],
    /// The index of the first missing layer in the image.
    offset: usize,
    meta: &'a DistributionMetadata,
    source_repo: &'a str,
    refname: &'a str,
    progress: &'a Progress,
    cancel: &'a AtomicBool,
}

impl ApplyCtx<'_> {
    fn job(&self, k: usize) -> &Job {
        &self.jobs[self.by_digest[&self.layers[k].0]]
    }

    /// Registers layer `k` from its job's file as it fills (`apply` does the work on the
    /// decompressed stream); a download that starts over (a stale partial file) is followed
    /// again once.
    fn register_from_download<T>(
        &self,
        k: usize,
        mut apply: impl FnMut(Box<dyn Read + Send + '_>) -> Result<T, layer_store::RegisterError>,
    ) -> Result<T, PullError> {
        let blob = &self.layers[k].0;
        let job = self.job(k);
        let mut tries = 0;
        loop {
            let generation = job.lock().generation;
            let users = self.layers.iter().filter(|(b, _)| b == blob).count();
            let follow = Follow::new(job, generation, users == 1);
            let stream = match image_archive::compress::decompress(BufReader::with_capacity(
                256 * 1024,
                follow,
            )) {
                Ok(st) => st,
                Err(e) => {
                    if e.get_ref().is_some_and(|i| i.is::<Restarted>()) && tries == 0 {
                        tries += 1;
                        continue;
                    }
                    return Err(download_error(job, blob, self.refname, e.to_string()));
                }
            };
            match apply(stream) {
                Ok(t) => return Ok(t),
                Err(e) if is_restart(&e) && tries == 0 => tries += 1,
                Err(e) => {
                    // A download error is reported as such, not as a bad layer.
                    if matches!(job.lock().done, Some(Err(_))) {
                        return Err(download_error(job, blob, self.refname, e.to_string()));
                    }
                    return Err(PullError::Register {
                        reference: self.refname.to_owned(),
                        blob: blob.to_string(),
                        source: Box::new(e),
                    });
                }
            }
        }
    }

    fn mismatch(&self, k: usize, actual: &DiffId) -> PullError {
        PullError::RootFsMismatch {
            reference: self.refname.to_owned(),
            index: self.offset + k,
            blob: self.layers[k].0.to_string(),
            expected: self.diff_ids[k].to_string(),
            actual: actual.to_string(),
        }
    }

    /// After layer `k` is committed: its metadata (dockerd's `Registered`), and its
    /// partial file once no later layer needs the blob.
    fn committed(&self, k: usize, diff: &DiffId) -> Result<(), PullError> {
        let blob = &self.layers[k].0;
        self.meta
            .add(
                diff,
                &V2Metadata {
                    digest: blob.to_string(),
                    source_repository: self.source_repo.to_owned(),
                    hmac: String::new(),
                },
            )
            .map_err(|source| PullError::Metadata {
                reference: self.refname.to_owned(),
                source,
            })?;
        self.progress
            .note(&format!("{}: Pull complete", short(blob)));
        if !self.layers[k + 1..].iter().any(|(b, _)| b == blob) {
            let _ = self.pdir.remove_file(partial_name(blob));
        }
        Ok(())
    }

    /// Applies and commits the layers in chain order (drivers whose layers start from their
    /// parent's content: vfs).
    fn in_order(&self, mut parent: Option<ChainId>, held: &mut Held<'_>) -> Result<(), PullError> {
        let ls = self.store.layer_store();
        for k in 0..self.layers.len() {
            let handle = self.register_from_download(k, |stream| {
                ls.register_with(stream, parent.as_ref(), &RegisterOptions::default())
            })?;
            let chain = *handle.chain_id();
            let diff = ls.layer(&chain).map(|l| l.diff_id);
            held.handles.push(handle);
            let diff = diff.ok_or_else(|| PullError::Download {
                reference: self.refname.to_owned(),
                blob: self.layers[k].0.to_string(),
                reason: "the registered layer vanished".to_owned(),
            })?;
            if diff != self.diff_ids[k] {
                return Err(self.mismatch(k, &diff));
            }
            self.committed(k, &diff)?;
            parent = Some(chain);
        }
        Ok(())
    }

    /// Applies up to `threads` layers at once, each as its blob arrives, and commits them in
    /// chain order, each checked against its diff ID before it is committed (overlay2).
    fn in_parallel(
        &self,
        mut parent: Option<ChainId>,
        held: &mut Held<'_>,
        threads: usize,
    ) -> Result<(), PullError> {
        let ls = self.store.layer_store();
        let n = self.layers.len();
        type Slot<'s> = Option<Result<layer_store::DetachedLayer<'s>, PullError>>;
        let slots: Mutex<Vec<Slot<'_>>> = Mutex::new((0..n).map(|_| None).collect());
        let ready = Condvar::new();
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..threads.clamp(1, n.max(1)) {
                s.spawn(|| {
                    loop {
                        let k = next.fetch_add(1, Ordering::SeqCst);
                        if k >= n {
                            break;
                        }
                        let r = if stop.load(Ordering::SeqCst) || self.cancel.load(Ordering::SeqCst)
                        {
                            Err(PullError::Download {
                                reference: self.refname.to_owned(),
                                blob: self.layers[k].0.to_string(),
                                reason: "cancelled".to_owned(),
                            })
                        } else {
                            self.register_from_download(k, |stream| {
                                ls.register_detached(
                                    stream,
                                    &RegisterOptions {
                                        sync: false,
                                        ..RegisterOptions::default()
                                    },
                                )
                            })
                        };
                        tracing::debug!(layer = k, ok = r.is_ok(), "layer applied");
                        slots
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)[k] = Some(r);
                        ready.notify_all();
                    }
                });
            }
            let result =
                (|| {
                    for k in 0..n {
                        let applied = {
                            let mut g = slots
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                            loop {
                                if let Some(r) = g[k].take() {
                                    break r;
                                }
                                g = ready
                                    .wait(g)
                                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                            }
                        }?;
                        let diff = *applied.diff_id();
                        if diff != self.diff_ids[k] {
                            // Dropped uncommitted: nothing of it stays.
                            return Err(self.mismatch(k, &diff));
                        }
                        // Flushed here rather than on the applying thread: a filesystem-wide
                        // sync (overlay2's) then covers the layers applied meanwhile at once.
                        layer_store::DetachedLayer::sync_all(std::slice::from_ref(&applied))
                            .map_err(|source| PullError::Register {
                                reference: self.refname.to_owned(),
                                blob: self.layers[k].0.to_string(),
                                source: Box::new(source),
                            })?;
                        tracing::debug!(layer = k, "layer content synced");
                        let handle = applied.commit(parent.as_ref()).map_err(|source| {
                            PullError::Register {
                                reference: self.refname.to_owned(),
                                blob: self.layers[k].0.to_string(),
                                source: Box::new(source),
                            }
                        })?;
                        let chain = *handle.chain_id();
                        held.handles.push(handle);
                        self.committed(k, &diff)?;
                        parent = Some(chain);
                    }
                    Ok(())
                })();
            if result.is_err() {
                stop.store(true, Ordering::SeqCst);
                self.cancel.store(true, Ordering::SeqCst);
                // Wake followers waiting on downloads that will not come.
                for j in self.jobs {
                    j.update(|st| {
                        if st.done.is_none() && !st.started {
                            st.done = Some(Err("cancelled".to_owned()));
                        }
                    });
                }
            }
            result
        })
    }
}

/// The download's own error when it failed, else `fallback`.
fn download_error(job: &Job, blob: &Digest, refname: &str, fallback: String) -> PullError {
    let reason = match job.lock().done.clone() {
        Some(Err(why)) => why,
        _ => fallback,
    };
    PullError::Download {
        reference: refname.to_owned(),
        blob: blob.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob "downloaded" in reads of varying sizes, as `download` does it (`room`, write
    /// to the file, `publish`), and followed by a reader taking varying amounts, fast or
    /// slow: the follower reads exactly the blob, whether from memory or from the file.
    #[test]
    fn a_follower_reads_the_blob_from_memory_or_from_the_file() {
        let data: Vec<u8> = (0..6_000_000u32).map(|i| (i * 7 % 253) as u8).collect();
        for (sole, slow) in [(true, false), (true, true), (false, false), (false, true)] {
            let tmp = tempfile::tempdir().expect("tempdir");
            let path = tmp.path().join("blob");
            let file = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .expect("open");
            let job = Job {
                digest: Digest::from_sha256_bytes([0; 32]),
                size: None,
                file,
                path: path.clone(),
                state: Mutex::new(JobState::default()),
                cond: Condvar::new(),
            };
            let cancel = AtomicBool::new(false);
            let mut follow = Follow::new(&job, 0, sole);
            let got = std::thread::scope(|s| {
                s.spawn(|| {
                    let mut pos = 0;
                    let mut step = 1;
                    while pos < data.len() {
                        let mut buf = job.room(&cancel);
                        let n = (step * 7919 % CHUNK).max(1).min(data.len() - pos);
                        buf[..n].copy_from_slice(&data[pos..pos + n]);
                        job.file.write_all_at(&buf[..n], pos as u64).expect("write");
                        job.publish(pos as u64, n, buf);
                        pos += n;
                        step += 1;
                    }
                    job.update(|st| st.done = Some(Ok(())));
                });
                let mut got = Vec::new();
                let mut buf = vec![0; CHUNK + 1000];
                let mut k = 0usize;
                loop {
                    let want = (k * 104_729 % buf.len()).max(1);
                    let n = follow.read(&mut buf[..want]).expect("read");
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                    k += 1;
                    if slow && k.is_multiple_of(16) {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                got
            });
            assert!(
                got == data,
                "sole {sole}, slow {slow}: the follower read other bytes"
            );
            drop(follow);
            assert!(!job.lock().followed);
            // The only follower empties the file once it has read it whole.
            let len = std::fs::metadata(&path).expect("stat").len();
            assert_eq!(len, if sole { 0 } else { data.len() as u64 });
        }
    }
}
