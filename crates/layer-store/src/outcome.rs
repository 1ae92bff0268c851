//! What opening a store found: [`RestoreReport`], [`SkippedLayer`] and [`SkipReason`],
//! [`Leftover`] and [`LeftoverKind`].

use std::fmt;
use std::path::PathBuf;

use crate::ids::ChainId;

/// What opening a store found: the layers loaded, the layers skipped and why, and the
/// leftovers of interrupted writes and deletions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Number of layers restored (loaded). Named as `image_store::RestoreReport`'s count.
    pub restored: usize,
    /// Layers that could not be loaded, sorted by chain ID. Their directories are left alone.
    pub skipped: Vec<SkippedLayer>,
    /// Leftover staging and `-removing` directories, and whether they were removed.
    pub leftovers: Vec<Leftover>,
    /// Number of RW mounts (`mounts/<id>/parent`) that hold a reference on a loaded layer.
    pub mounts: usize,
    /// Mounts whose `parent` could not be used, with the reason.
    pub skipped_mounts: Vec<(PathBuf, String)>,
    /// The driver content the RW mounts use (their `mount-id` and `init-id`), sorted: never
    /// a layer's, never to be deleted with one.
    pub mount_cache_ids: Vec<String>,
}

impl RestoreReport {
    /// Whether the layerdb was fully healthy: nothing skipped, no leftovers, no bad mounts.
    pub fn is_clean(&self) -> bool {
        self.skipped.is_empty() && self.leftovers.is_empty() && self.skipped_mounts.is_empty()
    }
}

impl fmt::Display for RestoreReport {
    /// A human-readable report, one problem a line, as `fsck` shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} layers loaded, {} skipped, {} leftovers, {} mounts",
            self.restored,
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
    /// `descriptor.json` exists but is not a JSON object (dockerd fails to load such a layer:
    /// `json.Unmarshal` into a descriptor struct).
    BadDescriptor {
        /// The decoding error.
        message: String,
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
            SkipReason::BadDescriptor { message } => {
                write!(f, "descriptor.json is not a descriptor: {message}")
            }
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
