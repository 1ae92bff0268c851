//! Loading the layerdb at open: dockerd's `newStoreFromGraphDriver` + `loadLayer`.
//!
//! Every `layerdb/<alg>/<hex>` directory is read (in parallel for large stores), then each
//! layer is resolved together with its parent chain (memoised, iterative, so deep or cyclic
//! corrupt chains cannot overflow the stack). A layer whose metadata is missing or unreadable
//! is skipped with a [`SkipReason`]; its children are skipped too. Nothing is deleted.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use digest_set::{Algorithm, Digest};

use crate::driver::Driver;
use crate::error::OpenError;
use crate::ids::{ChainId, DiffId};
use crate::store::{Entry, LayerInfo};
use crate::transaction::STAGING_PREFIX;

/// Suffix of a layer directory being deleted (`<hex>-<random>-removing`).
pub const REMOVING_SUFFIX: &str = "-removing";

/// What opening a store found: the layers loaded, the layers skipped and why, and the
/// leftovers of interrupted writes and deletions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreOutcome {
    /// Number of layers loaded.
    pub loaded: usize,
    /// Layers that could not be loaded, sorted by chain ID. Their directories are left alone.
    pub skipped: Vec<SkippedLayer>,
    /// Leftover staging and `-removing` directories, and whether they were removed.
    pub leftovers: Vec<Leftover>,
    /// Number of RW mounts (`mounts/<id>/parent`) that hold a reference on a loaded layer.
    pub mounts: usize,
    /// Mounts whose `parent` could not be used, with the reason.
    pub skipped_mounts: Vec<(PathBuf, String)>,
}

impl RestoreOutcome {
    /// Whether the layerdb was fully healthy: nothing skipped, no leftovers, no bad mounts.
    pub fn is_clean(&self) -> bool {
        self.skipped.is_empty() && self.leftovers.is_empty() && self.skipped_mounts.is_empty()
    }
}

impl fmt::Display for RestoreOutcome {
    /// A human-readable report, one problem a line, as `fsck` shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} layers loaded, {} skipped, {} leftovers, {} mounts",
            self.loaded,
            self.skipped.len(),
            self.leftovers.len(),
            self.mounts
        )?;
        for s in &self.skipped {
            write!(f, "\nskipped layer {}: {}", s.chain_id, s)?;
        }
        for l in &self.leftovers {
            let kind = match l.kind {
                LeftoverKind::Staging => "interrupted write",
                LeftoverKind::Removing => "interrupted deletion",
            };
            let state = match (&l.error, l.cleaned) {
                (Some(e), _) => format!("not removed: {e}"),
                (None, true) => "removed".to_owned(),
                (None, false) => "left in place".to_owned(),
            };
            write!(f, "\nleftover of {kind}: {} ({state})", l.path.display())?;
        }
        for (path, reason) in &self.skipped_mounts {
            write!(f, "\nskipped mount {}: {reason}", path.display())?;
        }
        Ok(())
    }
}

/// A layer directory that restore skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLayer {
    /// The chain ID named by the directory.
    pub chain_id: ChainId,
    /// The layer directory.
    pub path: PathBuf,
    /// Why it was skipped.
    pub reason: SkipReason,
}

impl fmt::Display for SkippedLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// Why a layer was skipped at restore.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// A required file (`diff`, `size` or `cache-id`) does not exist.
    MissingFile {
        /// The file name.
        file: &'static str,
    },
    /// A file could not be read.
    Unreadable {
        /// The file name.
        file: &'static str,
        /// The I/O error.
        message: String,
    },
    /// `diff` or `parent` does not hold a valid digest (after trimming whitespace).
    BadDigest {
        /// The file name.
        file: &'static str,
        /// Its content (lossy UTF-8).
        value: String,
        /// The parse error.
        message: String,
    },
    /// `size` is not a non-negative decimal integer. It is parsed without trimming, as
    /// dockerd does (`strconv.ParseInt`), so an empty file or a trailing newline fails.
    BadSize {
        /// Its content (lossy UTF-8).
        value: String,
    },
    /// `cache-id` is empty or holds characters dockerd 20.10 rejects (it must match
    /// `^[\w+-\.]+$` after trimming).
    BadCacheId {
        /// Its content (lossy UTF-8).
        value: String,
    },
    /// The parent layer has no directory in the layerdb.
    MissingParent {
        /// The parent chain ID.
        parent: ChainId,
    },
    /// The parent layer was itself skipped.
    BrokenParent {
        /// The parent chain ID.
        parent: ChainId,
    },
    /// Following `parent` files leads back to this layer (only possible in corrupt data).
    ParentCycle {
        /// The parent chain ID.
        parent: ChainId,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::MissingFile { file } => write!(f, "missing file {file}"),
            SkipReason::Unreadable { file, message } => write!(f, "cannot read {file}: {message}"),
            SkipReason::BadDigest {
                file,
                value,
                message,
            } => write!(f, "bad digest in {file} ({value:?}): {message}"),
            SkipReason::BadSize { value } => write!(f, "bad size {value:?}"),
            SkipReason::BadCacheId { value } => write!(f, "invalid cache id value {value:?}"),
            SkipReason::MissingParent { parent } => {
                write!(f, "parent layer {parent} does not exist")
            }
            SkipReason::BrokenParent { parent } => {
                write!(f, "parent layer {parent} could not be loaded")
            }
            SkipReason::ParentCycle { parent } => {
                write!(f, "parent chain through {parent} loops back")
            }
        }
    }
}

/// What an interrupted operation left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftoverKind {
    /// `tmp/write-set-*`: a layer write that never committed.
    Staging,
    /// `<alg>/<hex>-<random>-removing`: a layer deletion that never finished.
    Removing,
}

/// A leftover directory found at open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// Its path.
    pub path: PathBuf,
    /// What left it.
    pub kind: LeftoverKind,
    /// Whether it was removed (only read-write opens remove leftovers).
    pub cleaned: bool,
    /// Why removing it failed, if it did.
    pub error: Option<String>,
}

/// The algorithms whose directories hold layers.
pub(crate) const LAYER_ALGORITHMS: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

/// A layer directory as read, before its parent is resolved.
struct Raw {
    path: PathBuf,
    diff_id: DiffId,
    diff_size: u64,
    cache_id: String,
    parent: Option<ChainId>,
}

pub(crate) struct Restored {
    pub(crate) entries: HashMap<ChainId, Entry>,
    pub(crate) outcome: RestoreOutcome,
}

fn list_dir(path: &Path) -> Result<Vec<fs::DirEntry>, OpenError> {
    match fs::read_dir(path) {
        Ok(rd) => rd
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| OpenError::Io {
                action: "list",
                path: path.to_owned(),
                source,
            }),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(OpenError::Io {
            action: "list",
            path: path.to_owned(),
            source,
        }),
    }
}

fn is_dir(entry: &fs::DirEntry) -> bool {
    entry.file_type().map(|t| t.is_dir()).unwrap_or(false)
}

/// Loads the layerdb at `root`; with `cleanup`, removes the leftovers found.
pub(crate) fn restore(
    root: &Path,
    cleanup: bool,
    driver: &dyn Driver,
) -> Result<Restored, OpenError> {
    let mut outcome = RestoreOutcome::default();
    let mut candidates: Vec<(ChainId, PathBuf)> = Vec::new();
    for alg in LAYER_ALGORITHMS {
        let dir = root.join(alg.name());
        for entry in list_dir(&dir)? {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !is_dir(&entry) {
                continue;
            }
            if name.ends_with(REMOVING_SUFFIX) {
                outcome.leftovers.push(Leftover {
                    path: entry.path(),
                    kind: LeftoverKind::Removing,
                    cleaned: false,
                    error: None,
                });
            } else if let Ok(d) = Digest::from_hex(alg, name) {
                candidates.push((ChainId(d), entry.path()));
            } else {
                tracing::debug!(path = %entry.path().display(), "ignoring non-layer directory in layerdb");
            }
        }
    }
    for entry in list_dir(&root.join("tmp"))? {
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| n.starts_with(STAGING_PREFIX)) {
            outcome.leftovers.push(Leftover {
                path: entry.path(),
                kind: LeftoverKind::Staging,
                cleaned: false,
                error: None,
            });
        }
    }
    outcome.leftovers.sort_by(|a, b| a.path.cmp(&b.path));
    if cleanup {
        for leftover in &mut outcome.leftovers {
            clean_leftover(leftover, driver);
        }
    }

    let raws = read_all(candidates);
    let (entries, skipped) = resolve(raws);
    outcome.loaded = entries.len();
    outcome.skipped = skipped;
    let mut restored = Restored { entries, outcome };
    load_mounts(root, &mut restored)?;
    Ok(restored)
}

fn clean_leftover(leftover: &mut Leftover, driver: &dyn Driver) {
    // The content a half-written or half-deleted layer created in the driver.
    if let Ok(cache_id) = fs::read_to_string(leftover.path.join("cache-id")) {
        let cache_id = cache_id.trim();
        if valid_cache_id(cache_id)
            && let Err(e) = driver.remove(cache_id)
        {
            tracing::warn!(path = %leftover.path.display(), error = %e, "cannot remove leftover layer content");
            leftover.error = Some(e.to_string());
            return;
        }
    }
    match fs::remove_dir_all(&leftover.path) {
        Ok(()) => {
            tracing::info!(path = %leftover.path.display(), "removed leftover layer directory");
            leftover.cleaned = true;
        }
        Err(e) => {
            tracing::warn!(path = %leftover.path.display(), error = %e, "cannot remove leftover layer directory");
            leftover.error = Some(e.to_string());
        }
    }
}

/// dockerd 20.10's `stringIDRegexp`: `^[\w+-\.]+$` (the class `+-\.` is the range `+`..`.`).
pub(crate) fn valid_cache_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b',' | b'-' | b'.'))
}

/// Reads every candidate directory, in parallel when there are many.
fn read_all(candidates: Vec<(ChainId, PathBuf)>) -> Vec<ReadResult> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if threads <= 1 || candidates.len() < 512 {
        return candidates
            .into_iter()
            .map(|(id, path)| (id, read_layer(path)))
            .collect();
    }
    let chunk = candidates.len().div_ceil(threads);
    let mut chunks: Vec<Vec<(ChainId, PathBuf)>> = Vec::new();
    let mut rest = candidates;
    while rest.len() > chunk {
        let tail = rest.split_off(chunk);
        chunks.push(rest);
        rest = tail;
    }
    chunks.push(rest);
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| {
                s.spawn(move || {
                    c.into_iter()
                        .map(|(id, path)| (id, read_layer(path)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            match h.join() {
                Ok(v) => out.extend(v),
                // read_layer does not panic; re-raise if it ever does.
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        out
    })
}

/// Reads a small file with plain `open` + `read` calls (no `fstat` for a size hint, unlike
/// `fs::read`): restore reads four tiny files per layer and is bound by system calls.
fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut f = fs::File::open(path)?;
    let mut buf = [0u8; 256];
    let mut out = Vec::new();
    loop {
        let n = match f.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn read_file(dir: &Path, file: &'static str) -> Result<Option<Vec<u8>>, SkipReason> {
    match read_small(&dir.join(file)) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SkipReason::Unreadable {
            file,
            message: e.to_string(),
        }),
    }
}

fn parse_digest(file: &'static str, bytes: &[u8]) -> Result<Digest, SkipReason> {
    let value = String::from_utf8_lossy(bytes);
    value
        .trim()
        .parse::<Digest>()
        .map_err(|e| SkipReason::BadDigest {
            file,
            value: value.into_owned(),
            message: e.to_string(),
        })
}

/// Reads one layer directory in dockerd's order: diff, size, cache-id, parent.
fn read_layer(path: PathBuf) -> Result<Raw, (PathBuf, SkipReason)> {
    match read_layer_files(&path) {
        Ok((diff_id, diff_size, cache_id, parent)) => Ok(Raw {
            path,
            diff_id,
            diff_size,
            cache_id,
            parent,
        }),
        Err(reason) => Err((path, reason)),
    }
}

/// A candidate directory as read: the layer, or where and why it failed.
type ReadResult = (ChainId, Result<Raw, (PathBuf, SkipReason)>);

type LayerFiles = (DiffId, u64, String, Option<ChainId>);

fn read_layer_files(dir: &Path) -> Result<LayerFiles, SkipReason> {
    let diff = read_file(dir, "diff")?.ok_or(SkipReason::MissingFile { file: "diff" })?;
    let diff_id = DiffId(parse_digest("diff", &diff)?);

    let size = read_file(dir, "size")?.ok_or(SkipReason::MissingFile { file: "size" })?;
    // Not trimmed: dockerd parses `size` with strconv.ParseInt(string(content), 10, 64), so
    // "12\n" or an empty file make the layer fail to load there too. Rust's i64 parser
    // accepts the same syntax (optional sign, decimal digits). Negative sizes, which dockerd
    // would accept, are rejected: a size cannot be negative.
    let size_str = String::from_utf8_lossy(&size);
    let diff_size = size_str
        .parse::<i64>()
        .ok()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| SkipReason::BadSize {
            value: size_str.clone().into_owned(),
        })?;

    let cache = read_file(dir, "cache-id")?.ok_or(SkipReason::MissingFile { file: "cache-id" })?;
    let cache_str = String::from_utf8_lossy(&cache);
    let cache_id = cache_str.trim();
    if !valid_cache_id(cache_id) {
        return Err(SkipReason::BadCacheId {
            value: cache_str.into_owned(),
        });
    }

    let parent = match read_file(dir, "parent")? {
        None => None,
        Some(b) => Some(ChainId(parse_digest("parent", &b)?)),
    };
    Ok((diff_id, diff_size, cache_id.to_owned(), parent))
}

enum Resolved {
    Ok { size: u64, depth: usize },
    Broken,
}

/// Resolves every layer with its parent chain, memoised and iterative.
fn resolve(raws: Vec<ReadResult>) -> (HashMap<ChainId, Entry>, Vec<SkippedLayer>) {
    let raws: HashMap<ChainId, Result<Raw, (PathBuf, SkipReason)>> = raws.into_iter().collect();
    let mut resolved: HashMap<ChainId, Resolved> = HashMap::with_capacity(raws.len());
    let mut skipped: Vec<SkippedLayer> = Vec::new();
    let mut stack: Vec<ChainId> = Vec::new();
    let mut on_stack: HashSet<ChainId> = HashSet::new();

    for start in raws.keys() {
        if resolved.contains_key(start) {
            continue;
        }
        stack.push(*start);
        on_stack.insert(*start);
        while let Some(&top) = stack.last() {
            let outcome = match raws.get(&top) {
                None => None, // unreachable: only known layers are pushed
                Some(Err((path, reason))) => Some(Err((path.clone(), reason.clone()))),
                Some(Ok(raw)) => match raw.parent {
                    None => Some(Ok((raw.diff_size, 1))),
                    Some(p) => match resolved.get(&p) {
                        Some(Resolved::Ok { size, depth }) => {
                            Some(Ok((size.saturating_add(raw.diff_size), depth + 1)))
                        }
                        Some(Resolved::Broken) => Some(Err((
                            raw.path.clone(),
                            SkipReason::BrokenParent { parent: p },
                        ))),
                        None if !raws.contains_key(&p) => Some(Err((
                            raw.path.clone(),
                            SkipReason::MissingParent { parent: p },
                        ))),
                        None if on_stack.contains(&p) => Some(Err((
                            raw.path.clone(),
                            SkipReason::ParentCycle { parent: p },
                        ))),
                        None => {
                            stack.push(p);
                            on_stack.insert(p);
                            continue;
                        }
                    },
                },
            };
            stack.pop();
            on_stack.remove(&top);
            match outcome {
                Some(Ok((size, depth))) => {
                    resolved.insert(top, Resolved::Ok { size, depth });
                }
                Some(Err((path, reason))) => {
                    tracing::debug!(path = %path.display(), %reason, "failed to load layer");
                    resolved.insert(top, Resolved::Broken);
                    skipped.push(SkippedLayer {
                        chain_id: top,
                        path,
                        reason,
                    });
                }
                None => {
                    resolved.insert(top, Resolved::Broken);
                }
            }
        }
    }

    let mut entries: HashMap<ChainId, Entry> = HashMap::with_capacity(resolved.len());
    for (id, raw) in raws {
        let (Ok(raw), Some(Resolved::Ok { size, depth })) = (raw, resolved.get(&id)) else {
            continue;
        };
        entries.insert(
            id,
            Entry::new(LayerInfo {
                chain_id: id,
                diff_id: raw.diff_id,
                parent: raw.parent,
                diff_size: raw.diff_size,
                size: *size,
                cache_id: raw.cache_id,
                depth: *depth,
            }),
        );
    }
    let parents: Vec<ChainId> = entries.values().filter_map(|e| e.info.parent).collect();
    for p in parents {
        if let Some(e) = entries.get_mut(&p) {
            e.children += 1;
        }
    }
    skipped.sort_by_key(|a| a.chain_id);
    (entries, skipped)
}

/// Counts the references RW mounts (`mounts/<id>/parent`) hold on loaded layers.
fn load_mounts(root: &Path, restored: &mut Restored) -> Result<(), OpenError> {
    let dir = root.join("mounts");
    for entry in list_dir(&dir)? {
        if !is_dir(&entry) {
            continue;
        }
        let path = entry.path();
        let parent = match fs::read(path.join("parent")) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => continue, // no parent: no reference
            Err(e) => {
                restored.outcome.skipped_mounts.push((path, e.to_string()));
                continue;
            }
        };
        match parse_digest("parent", &parent) {
            Ok(d) => match restored.entries.get_mut(&ChainId(d)) {
                Some(e) => {
                    e.mounts += 1;
                    restored.outcome.mounts += 1;
                }
                None => restored
                    .outcome
                    .skipped_mounts
                    .push((path, format!("parent layer {d} is not loaded"))),
            },
            Err(reason) => restored
                .outcome
                .skipped_mounts
                .push((path, reason.to_string())),
        }
    }
    Ok(())
}
