//! Loading the layerdb at open: dockerd's `newStoreFromGraphDriver` + `loadLayer`.
//!
//! Every `layerdb/<alg>/<hex>` directory is read (in parallel for large stores), then each
//! layer is resolved together with its parent chain (memoised, iterative, so deep or cyclic
//! corrupt chains cannot overflow the stack). A layer whose metadata is missing or unreadable
//! is skipped with a [`SkipReason`]; its children are skipped too. Nothing is deleted.

use std::collections::{HashMap, HashSet};
use std::hash::RandomState;
use std::io::ErrorKind;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use digest_set::{Algorithm, Digest};
use durable_fs::Dir;
use hashbrown::HashTable;
use rayon::prelude::*;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir};

use crate::driver::Driver;
use crate::error::OpenError;
use crate::ids::{ChainId, DiffId};
use crate::map::{Entry, Extra, LayerMap, NO_PARENT, hash_id};
use crate::outcome::{Leftover, LeftoverKind, RestoreReport, SkipReason, SkippedLayer};
use crate::records::LayerRecord;
use crate::transaction::STAGING_PREFIX;

/// Suffix of a layer directory being deleted (`<hex>-<random>-removing`).
pub const REMOVING_SUFFIX: &str = "-removing";

/// The algorithms whose directories hold layers.
pub(crate) const LAYER_ALGORITHMS: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

pub(crate) struct Restored {
    pub(crate) layers: LayerMap,
    pub(crate) outcome: RestoreReport,
}

/// Whether entry `name` of directory `dir`, of type `file_type` as `getdents` gave it, is a
/// directory (not following symlinks); asks `fstatat` when the file system does not say.
fn is_dir(dir: BorrowedFd<'_>, name: &str, file_type: FileType) -> bool {
    match file_type {
        FileType::Directory => true,
        FileType::Unknown => rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode).is_dir()),
        _ => false,
    }
}

/// The most a layerdb file other than `descriptor.json` may hold (a healthy one holds at
/// most 135 bytes).
const SMALL_FILE_LIMIT: usize = 4096;
/// The most `descriptor.json` may hold.
const DESCRIPTOR_LIMIT: usize = 1 << 20;
/// How much of a bad value a finding quotes.
pub(crate) const QUOTE_LIMIT: usize = 80;

/// Loads the layerdb at `root` (opened as `dir`; `None`: it does not exist); with
/// `cleanup`, removes the leftovers that are provably ours (see [`clean_leftovers`]).
pub(crate) fn restore(
    root: &Path,
    dir: Option<&Dir>,
    cleanup: bool,
    driver: &dyn Driver,
) -> Result<Restored, OpenError> {
    let mut outcome = RestoreReport::default();
    let mut candidates = Candidates::default();
    let mut alg_dirs: Vec<(Algorithm, OwnedFd)> = Vec::new();
    let Some(dir) = dir else {
        let (layers, skipped) = load_layers(root, &alg_dirs, candidates);
        outcome.skipped = skipped;
        return Ok(Restored { layers, outcome });
    };
    // One getdents buffer for both algorithm directories; entries are not collected (a
    // `fs::DirEntry` per layer would cost an allocation and ~120 bytes each).
    let mut buf: Vec<MaybeUninit<u8>> = vec![MaybeUninit::uninit(); 64 * 1024];
    for alg in LAYER_ALGORITHMS {
        // Never followed: a symlink here is an error naming it.
        let Some(alg_dir) = dir.open_dir(alg.name())? else {
            continue;
        };
        let path = alg_dir.path().to_owned();
        let fd = alg_dir.into_fd();
        let list_error = |e: rustix::io::Errno| OpenError::Io {
            action: "list",
            path: path.clone(),
            source: e.into(),
        };
        let mut entries = RawDir::new(fd.as_fd(), &mut buf);
        while let Some(entry) = entries.next() {
            let entry = entry.map_err(list_error)?;
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name == "." || name == ".." || !is_dir(fd.as_fd(), name, entry.file_type()) {
                continue;
            }
            if name.ends_with(REMOVING_SUFFIX) {
                outcome.leftovers.push(Leftover {
                    path: path.join(name),
                    kind: LeftoverKind::Removing,
                    cleaned: false,
                    error: None,
                });
            } else if let Ok(d) = Digest::from_hex(alg, name) {
                candidates.push(&d);
            } else {
                tracing::debug!(path = %path.join(name).display(), "ignoring non-layer directory in layerdb");
            }
        }
        alg_dirs.push((alg, fd));
    }
    drop(buf);
    candidates.sha256.shrink_to_fit();
    candidates.sha512.shrink_to_fit();
    list_staging(dir, &mut outcome)?;

    let (layers, skipped) = load_layers(root, &alg_dirs, candidates);
    drop(alg_dirs);
    outcome.restored = layers.len();
    outcome.skipped = skipped;
    let mut restored = Restored { layers, outcome };
    let mount_cache_ids = load_mounts(dir, &mut restored)?;
    if cleanup {
        clean_leftovers(dir, &mut restored, &mount_cache_ids, driver);
    }
    Ok(restored)
}

/// Adds the staging directories of interrupted layer writes (`tmp/write-set-*`) to the
/// leftovers, and sorts the leftovers by path.
fn list_staging(dir: &Dir, outcome: &mut RestoreReport) -> Result<(), OpenError> {
    if let Some(tmp) = dir.open_dir("tmp")? {
        for entry in tmp.entries()? {
            if entry.kind == durable_fs::FileKind::Dir
                && entry
                    .name
                    .to_str()
                    .is_some_and(|n| n.starts_with(STAGING_PREFIX))
            {
                outcome.leftovers.push(Leftover {
                    path: tmp.join(&entry.name),
                    kind: LeftoverKind::Staging,
                    cleaned: false,
                    error: None,
                });
            }
        }
    }
    outcome.leftovers.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(())
}

/// Restores the layerdb at `root` (opened as `dir`) from `records` instead of its layer
/// directories, read-only: the layers are the records (see [`LayerRecord`] for how parents
/// are found), the `-removing` leftovers are `removing`, and what is not in the layer
/// directories is read as [`restore`] reads it: the staging leftovers in `tmp/` and the
/// RW mounts in `mounts/`.
pub(crate) fn restore_from_records(
    root: &Path,
    dir: Option<&Dir>,
    records: impl IntoIterator<Item = LayerRecord>,
    removing: Vec<Leftover>,
) -> Result<Restored, OpenError> {
    let mut outcome = RestoreReport::default();
    let (layers, skipped) = crate::records::layer_map(root, records);
    outcome.restored = layers.len();
    outcome.skipped = skipped;
    outcome.leftovers = removing
        .into_iter()
        .filter(|l| l.kind == LeftoverKind::Removing)
        .map(|l| Leftover {
            cleaned: false,
            error: None,
            ..l
        })
        .collect();
    let Some(dir) = dir else {
        outcome.leftovers.sort_by(|a, b| a.path.cmp(&b.path));
        return Ok(Restored { layers, outcome });
    };
    list_staging(dir, &mut outcome)?;
    let mut restored = Restored { layers, outcome };
    load_mounts(dir, &mut restored)?;
    Ok(restored)
}

/// Whether `name` is what dockerd and this store name a layer being deleted:
/// `<chain ID hex>-<64 random hex>-removing`.
fn is_removing_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(REMOVING_SUFFIX) else {
        return false;
    };
    let Some((chain, random)) = stem.split_once('-') else {
        return false;
    };
    let hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    (chain.len() == 64 || chain.len() == 128) && random.len() == 64 && hex(chain) && hex(random)
}

/// Whether `name` is what a layer transaction names its staging directory.
fn is_staging_name(name: &str) -> bool {
    name.strip_prefix(STAGING_PREFIX)
        .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Removes the leftovers that are provably ours, with their driver content: a name of the
/// form this store and dockerd write, and a `cache-id` that is valid and used by no loaded
/// layer, no layer that failed to load and no mount. Anything else stays, with the reason
/// in [`Leftover::error`]. Nothing is followed: the leftover is removed beneath the layerdb
/// handle, its content through the driver.
fn clean_leftovers(
    dir: &Dir,
    restored: &mut Restored,
    mount_cache_ids: &HashSet<String>,
    driver: &dyn Driver,
) {
    // Cache IDs of the layers that failed to load: their content is not ours to delete.
    let mut skipped_cache_ids: HashSet<String> = HashSet::new();
    for s in &restored.outcome.skipped {
        let rel = Path::new(s.chain_id.0.algorithm().name())
            .join(s.chain_id.0.hex())
            .join("cache-id");
        if let Ok(Some(b)) = dir.read(&rel, SMALL_FILE_LIMIT as u64) {
            skipped_cache_ids.insert(String::from_utf8_lossy(&b).trim().to_owned());
        }
    }
    let layers = &restored.layers;
    for leftover in &mut restored.outcome.leftovers {
        let Ok(rel) = leftover.path.strip_prefix(dir.path()) else {
            continue;
        };
        let rel = rel.to_owned();
        let name = rel
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let refuse = |leftover: &mut Leftover, why: String| {
            tracing::warn!(path = %leftover.path.display(), reason = %why, "leftover not removed");
            leftover.error = Some(why);
        };
        let ours = match leftover.kind {
            LeftoverKind::Removing => is_removing_name(&name),
            LeftoverKind::Staging => is_staging_name(&name),
        };
        if !ours {
            refuse(
                leftover,
                "its name is not one this store or dockerd writes".to_owned(),
            );
            continue;
        }
        let cache_id = match dir.read(rel.join("cache-id"), SMALL_FILE_LIMIT as u64) {
            Ok(None) => None,
            // A staging directory's cache-id is created, written and made durable before
            // the driver creates any content: still empty, the write was killed before the
            // ID existed, and nothing was created under it.
            Ok(Some(b)) if b.is_empty() && leftover.kind == LeftoverKind::Staging => None,
            Ok(Some(b)) => {
                let text = String::from_utf8_lossy(&b);
                let cache_id = text.trim();
                if !valid_cache_id(cache_id) {
                    refuse(
                        leftover,
                        format!(
                            "its cache-id {:?} is not a valid cache ID",
                            durable_fs::escaped_prefix(&b, QUOTE_LIMIT)
                        ),
                    );
                    continue;
                }
                Some(cache_id.to_owned())
            }
            Err(e) => {
                refuse(leftover, format!("cannot read its cache-id: {e}"));
                continue;
            }
        };
        if let Some(cache_id) = &cache_id {
            let live = if layers.uses_cache_id(cache_id) {
                Some("a loaded layer")
            } else if skipped_cache_ids.contains(cache_id) {
                Some("a layer that failed to load")
            } else if mount_cache_ids.contains(cache_id) {
                Some("a container mount")
            } else {
                None
            };
            if let Some(user) = live {
                refuse(
                    leftover,
                    format!("its cache-id {cache_id} is the content of {user}"),
                );
                continue;
            }
            if let Err(e) = driver.remove(cache_id) {
                refuse(
                    leftover,
                    format!("cannot remove its content {cache_id}: {e}"),
                );
                continue;
            }
        }
        match dir.remove_tree(&rel) {
            Ok(_) => {
                tracing::info!(path = %leftover.path.display(), "removed leftover layer directory");
                leftover.cleaned = true;
            }
            Err(e) => refuse(leftover, e.to_string()),
        }
    }
}

/// dockerd 20.10's `stringIDRegexp`: `^[\w+-\.]+$` (the class `+-\.` is the range `+`..`.`).
pub(crate) fn valid_cache_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b',' | b'-' | b'.'))
}

/// The layer directories listed, sha256 ones first: slot `i` of the layer map is
/// candidate `i`. Raw bytes (32 for a sha256 layer) rather than 65-byte `ChainId`s, since
/// the list lives next to the slab while the layers are read.
#[derive(Default)]
struct Candidates {
    sha256: Vec<[u8; 32]>,
    sha512: Vec<[u8; 64]>,
}

impl Candidates {
    fn push(&mut self, d: &Digest) {
        let raw = d.as_bytes();
        if let Ok(b) = <[u8; 32]>::try_from(raw) {
            self.sha256.push(b);
        } else if let Ok(b) = <[u8; 64]>::try_from(raw) {
            self.sha512.push(b);
        }
    }

    fn len(&self) -> usize {
        self.sha256.len() + self.sha512.len()
    }

    /// The raw bytes of candidate `i`.
    fn raw(&self, i: usize) -> Option<&[u8]> {
        match self.sha256.get(i) {
            Some(b) => Some(b),
            None => self
                .sha512
                .get(i.checked_sub(self.sha256.len())?)
                .map(|b| &b[..]),
        }
    }

    /// The chain ID of candidate `i`.
    fn id(&self, i: usize) -> Option<ChainId> {
        let raw = self.raw(i)?;
        let alg = if raw.len() == 32 {
            Algorithm::Sha256
        } else {
            Algorithm::Sha512
        };
        Digest::from_raw(alg, raw).map(ChainId)
    }

    /// Whether candidate `i` is `id`.
    fn is(&self, i: usize, id: &ChainId) -> bool {
        self.raw(i) == Some(id.0.as_bytes())
    }
}

/// From how many layers restore reads on threads with their own file descriptor tables.
const PRIVATE_FD_TABLE_MIN: usize = 4096;

/// A thread pool for reading a large layerdb, as wide as the current one, whose threads
/// each have their own file descriptor table (`unshare(CLONE_FILES)`).
///
/// Restore opens and closes about five files a layer. Threads sharing one descriptor table
/// serialise on its lock in every `openat` and `close` (measured: ~10% of restore CPU on 2
/// cores at 155k layers, ~12% of its wall time). The descriptors these threads open are
/// private to them, which is fine because each is closed by the job that opened it; the
/// threads end when the pool is dropped after the read. (Until then their copies of the
/// process's other descriptors stay open: a pipe closed elsewhere meanwhile sees its end
/// of file only when they exit.) `None` if the pool cannot be built; a thread whose
/// `unshare` fails simply keeps sharing the table.
fn private_fd_pool() -> Option<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(rayon::current_num_threads())
        .thread_name(|i| format!("layer-restore-{i}"))
        .start_handler(|_| {
            // SAFETY: unshare(2) with CLONE_FILES only gives this thread a private copy of
            // its file descriptor table: no descriptor this thread uses is closed or
            // changed by it, and no memory is involved.
            #[allow(unsafe_code)]
            let r = unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FILES) };
            if let Err(e) = r {
                tracing::debug!(
                    error = %std::io::Error::from(e),
                    "cannot unshare the file descriptor table"
                );
            }
        })
        .build()
        .ok()
}

/// Reads every candidate directory (in parallel) straight into the slab of a [`LayerMap`],
/// one slot per candidate, then resolves the parent chains. Nothing but the slab, its index
/// and the candidate list is allocated per layer, so the peak is close to the final size.
fn load_layers(
    root: &Path,
    alg_dirs: &[(Algorithm, OwnedFd)],
    candidates: Candidates,
) -> (LayerMap, Vec<SkippedLayer>) {
    let hasher = RandomState::new();
    // Slot `i` is candidate `i`; the index is built first so that readers can turn `parent`
    // files into slot indices.
    let count = candidates.len().min(NO_PARENT as usize);
    let mut index: HashTable<u32> = HashTable::with_capacity(count);
    for i in 0..count {
        let Some(id) = candidates.id(i) else { break };
        index.insert_unique(hash_id(&hasher, &id), i as u32, |&j| {
            candidates
                .id(j as usize)
                .map_or(0, |c| hash_id(&hasher, &c))
        });
    }
    let find = |id: &ChainId| {
        index
            .find(hash_id(&hasher, id), |&j| candidates.is(j as usize, id))
            .copied()
    };
    let failed: Mutex<Vec<(u32, SkipReason)>> = Mutex::new(Vec::new());
    let extras: Mutex<Vec<(u32, Extra)>> = Mutex::new(Vec::new());
    let read_all = || -> Vec<Option<Entry>> {
        (0..count)
            .into_par_iter()
            .with_min_len(256)
            .map_init(
                // Each job opens the algorithm directories again: every `openat` takes a
                // reference on its directory's open file, and threads sharing one file contend
                // on that counter (measured: `fdget` went from 5% to 1% of restore samples).
                || {
                    alg_dirs
                        .iter()
                        .filter_map(|(alg, fd)| {
                            let own = rustix::fs::openat(
                                fd,
                                ".",
                                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                                Mode::empty(),
                            );
                            own.ok().map(|own| (*alg, own))
                        })
                        .collect::<Vec<(Algorithm, OwnedFd)>>()
                },
                |own_dirs, i| {
                    let Some(id) = candidates.id(i) else {
                        return None; // unreachable: i < count
                    };
                    let alg = id.0.algorithm();
                    let dir = own_dirs
                        .iter()
                        .chain(alg_dirs)
                        .find(|(a, _)| *a == alg)
                        .map(|(_, fd)| fd.as_fd());
                    let read = match dir {
                        Some(dir) => read_layer(dir, id, &find),
                        // Unreachable: candidates come from the listed directories.
                        None => Err(SkipReason::MissingFile { file: "diff" }),
                    };
                    match read {
                        Ok((entry, extra)) => {
                            if let Some(extra) = extra {
                                let i = u32::try_from(i).unwrap_or(NO_PARENT);
                                extras
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push((i, extra));
                            }
                            Some(entry)
                        }
                        Err(reason) => {
                            let i = u32::try_from(i).unwrap_or(NO_PARENT);
                            failed
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push((i, reason));
                            None
                        }
                    }
                },
            )
            .collect()
    };
    let slots = if count >= PRIVATE_FD_TABLE_MIN {
        match private_fd_pool() {
            Some(pool) => pool.install(read_all),
            None => read_all(),
        }
    } else {
        read_all()
    };
    let failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
    let failed: Vec<(u32, ChainId, SkipReason)> = failed
        .into_iter()
        .filter_map(|(i, reason)| Some((i, candidates.id(i as usize)?, reason)))
        .collect();
    drop(candidates);
    let extras = extras.into_inner().unwrap_or_else(|e| e.into_inner());
    let layers = LayerMap::from_parts(slots, extras.into_iter().collect(), index, hasher);
    resolve(root, layers, failed)
}

/// Whether to open layerdb files with `O_NOATIME`: reading does not update their access
/// times (no inode to write back, and a read-only open changes nothing on disk), and the
/// kernel skips its atime check (~1.5% of restore). Only the files' owner (or root) may ask;
/// the first `EPERM` turns it off for the process.
static NOATIME: AtomicBool = AtomicBool::new(true);

/// How many bytes of a layerdb file are read on the stack. `diff`, `size`, `cache-id` and
/// `parent` are at most `sha512:` + 128 hex digits (135 bytes) in a healthy store.
const INLINE_LEN: usize = 256;

/// The content of one layerdb file: on the stack when it fits in [`INLINE_LEN`] bytes.
#[expect(
    clippy::large_enum_variant,
    reason = "lives on the stack for one file; avoiding the heap is the point"
)]
enum FileBytes {
    Inline { buf: [u8; INLINE_LEN], len: usize },
    Heap(Vec<u8>),
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Inline { buf, len } => &buf[..*len],
            FileBytes::Heap(v) => v,
        }
    }
}

/// One `read(2)`, retried on `EINTR`.
fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, std::io::Error> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads `<layer>/<file>` relative to the algorithm directory `dir` with plain `openat` +
/// `read` calls (no `fstat` for a size hint, unlike `fs::read`, and no walk of the absolute
/// path): restore reads four tiny files per layer and is bound by system calls.
/// `Ok(None)` when the file does not exist.
///
/// A file is read with as few `read(2)` calls as possible: a read that returns fewer bytes
/// than asked ends the file. On Linux a read of a regular file on a local filesystem (ext4,
/// xfs, btrfs, tmpfs, overlayfs over those) only comes up short at end of file, so the usual
/// extra read that returns 0 is skipped; only a read that fills the buffer is followed by
/// another. (Layerdb files are written once, by rename, and never grow in place.)
fn read_file(
    dir: BorrowedFd<'_>,
    layer: &str,
    file: &'static str,
    limit: usize,
) -> Result<Option<FileBytes>, SkipReason> {
    let unreadable = |e: std::io::Error| SkipReason::Unreadable {
        file,
        message: e.to_string(),
    };
    // `<layer>/<file>` on the stack (rustix adds the NUL on the stack too): at most
    // 128 + 1 + 15 bytes.
    let mut rel = [0u8; 160];
    let len = layer.len() + 1 + file.len();
    let Some(rel) = rel.get_mut(..len) else {
        return Err(unreadable(std::io::Error::from(ErrorKind::InvalidInput)));
    };
    rel[..layer.len()].copy_from_slice(layer.as_bytes());
    rel[layer.len()] = b'/';
    rel[layer.len() + 1..].copy_from_slice(file.as_bytes());
    let rel = Path::new(std::ffi::OsStr::from_bytes(rel));
    // `<layer>` was listed as a directory by its `getdents` type (never a symlink), and the
    // file itself is opened with `O_NOFOLLOW`: nothing is followed. (Plain `openat` here:
    // `openat2`'s resolve flags cost more on this hot path.) `O_NONBLOCK` so that a FIFO
    // cannot block, then `fstat`: only a regular file is read.
    let open = |flags: OFlags| {
        rustix::fs::openat(
            dir,
            rel,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
    let opened = if NOATIME.load(Ordering::Relaxed) {
        match open(flags | OFlags::NOATIME) {
            Err(rustix::io::Errno::PERM) => {
                // Not the files' owner: open normally from now on.
                NOATIME.store(false, Ordering::Relaxed);
                open(flags)
            }
            r => r,
        }
    } else {
        open(flags)
    };
    let fd = match opened {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(rustix::io::Errno::LOOP) => {
            return Err(SkipReason::Unreadable {
                file,
                message: "a symbolic link is in the way (never followed)".to_owned(),
            });
        }
        Err(e) => return Err(unreadable(e.into())),
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| unreadable(e.into()))?;
    let kind = durable_fs::FileKind::from_mode(st.st_mode);
    if kind != durable_fs::FileKind::File {
        return Err(SkipReason::Unreadable {
            file,
            message: format!("it is {kind}, not a regular file"),
        });
    }
    let too_large = || SkipReason::Unreadable {
        file,
        message: format!("it holds more than {limit} bytes"),
    };
    if u64::try_from(st.st_size).unwrap_or(u64::MAX) > limit as u64 {
        return Err(too_large());
    }
    let mut buf = [0u8; INLINE_LEN];
    let len = read_some(fd.as_fd(), &mut buf).map_err(unreadable)?;
    if len < INLINE_LEN {
        return Ok(Some(FileBytes::Inline { buf, len }));
    }
    let mut out = buf.to_vec();
    loop {
        let start = out.len();
        if start > limit {
            return Err(too_large());
        }
        let want = start.max(INLINE_LEN);
        out.resize(start + want, 0);
        let n = read_some(fd.as_fd(), &mut out[start..]).map_err(unreadable)?;
        out.truncate(start + n);
        if n < want {
            if out.len() > limit {
                return Err(too_large());
            }
            return Ok(Some(FileBytes::Heap(out)));
        }
    }
}

fn parse_digest(file: &'static str, bytes: &[u8]) -> Result<Digest, SkipReason> {
    let value = String::from_utf8_lossy(bytes);
    value
        .trim()
        .parse::<Digest>()
        .map_err(|e| SkipReason::BadDigest {
            file,
            value: durable_fs::escaped_prefix(bytes, QUOTE_LIMIT),
            message: if bytes.len() > QUOTE_LIMIT {
                "not a digest".to_owned()
            } else {
                e.to_string()
            },
        })
}

/// Reads the directory of layer `chain_id` in the algorithm directory `dir`, in dockerd's
/// order: diff, size, cache-id, parent, descriptor.json. The entry is not resolved yet
/// (depth 0); `find` gives the slot index of the parent, which must be a candidate.
fn read_layer(
    dir: BorrowedFd<'_>,
    chain_id: ChainId,
    find: &(dyn Fn(&ChainId) -> Option<u32> + Sync),
) -> Result<(Entry, Option<Extra>), SkipReason> {
    let hex = chain_id.0.hex_buf();
    let layer = hex.as_str();
    let diff = read_file(dir, layer, "diff", SMALL_FILE_LIMIT)?
        .ok_or(SkipReason::MissingFile { file: "diff" })?;
    let diff_id = DiffId(parse_digest("diff", &diff)?);

    let size = read_file(dir, layer, "size", SMALL_FILE_LIMIT)?
        .ok_or(SkipReason::MissingFile { file: "size" })?;
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
            value: durable_fs::escaped_prefix(&size, QUOTE_LIMIT),
        })?;

    let cache = read_file(dir, layer, "cache-id", SMALL_FILE_LIMIT)?
        .ok_or(SkipReason::MissingFile { file: "cache-id" })?;
    let cache_str = String::from_utf8_lossy(&cache);
    let cache_id = cache_str.trim();
    if !valid_cache_id(cache_id) {
        return Err(SkipReason::BadCacheId {
            value: durable_fs::escaped_prefix(&cache, QUOTE_LIMIT),
        });
    }

    let parent = match read_file(dir, layer, "parent", SMALL_FILE_LIMIT)? {
        None => None,
        Some(b) => Some(ChainId(parse_digest("parent", &b)?)),
    };
    // Optional; written only for layers pulled with a foreign descriptor. dockerd loads it
    // with json.Unmarshal into a struct, which fails on bad JSON and on non-objects (null is
    // accepted), and then does not load the layer.
    if let Some(d) = read_file(dir, layer, "descriptor.json", DESCRIPTOR_LIMIT)? {
        match serde_json::from_slice::<serde_json::Value>(&d) {
            Ok(serde_json::Value::Object(_) | serde_json::Value::Null) => {}
            Ok(other) => {
                return Err(SkipReason::BadDescriptor {
                    message: format!(
                        "expected an object, found {}",
                        durable_fs::escaped_prefix(other.to_string().as_bytes(), QUOTE_LIMIT)
                    ),
                });
            }
            Err(e) => {
                return Err(SkipReason::BadDescriptor {
                    message: e.to_string(),
                });
            }
        }
    }
    let parent = match parent {
        None => NO_PARENT,
        Some(p) => find(&p).ok_or(SkipReason::MissingParent { parent: p })?,
    };
    Ok(Entry::new(&chain_id, &diff_id, cache_id, parent, diff_size))
}

/// The directory of layer `id` under `root`.
fn layer_path(root: &Path, id: &ChainId) -> PathBuf {
    root.join(id.0.algorithm().name()).join(id.0.hex())
}

/// Resolves every layer with its parent chain (size and depth), memoised and iterative;
/// drops the layers that cannot be loaded (with a broken chain; those `failed` to read are
/// not in `layers`) and counts children.
fn resolve(
    root: &Path,
    mut layers: LayerMap,
    failed: Vec<(u32, ChainId, SkipReason)>,
) -> (LayerMap, Vec<SkippedLayer>) {
    const UNRESOLVED: u8 = 0;
    const ON_STACK: u8 = 1;
    const DONE: u8 = 2;
    const BROKEN: u8 = 3;
    let slots = layers.slot_count();
    let mut state: Vec<u8> = (0..slots)
        .map(|i| {
            let live = u32::try_from(i).is_ok_and(|i| layers.at(i).is_some());
            if live { UNRESOLVED } else { BROKEN }
        })
        .collect();
    let mut skipped: Vec<SkippedLayer> = Vec::new();
    let mut skip = |id: ChainId, reason: SkipReason| {
        let path = layer_path(root, &id);
        tracing::debug!(path = %path.display(), %reason, "failed to load layer");
        skipped.push(SkippedLayer {
            chain_id: id,
            path,
            reason,
        });
    };
    // Chain IDs of the slots that hold no entry (read failures), for parent names.
    let mut failed_ids: HashMap<u32, ChainId> = HashMap::with_capacity(failed.len());
    for (i, id, reason) in failed {
        failed_ids.insert(i, id);
        skip(id, reason);
    }
    let id_of =
        |layers: &LayerMap, i: u32| layers.chain_id(i).or_else(|| failed_ids.get(&i).copied());

    let mut stack: Vec<u32> = Vec::new();
    for start in 0..slots {
        if state[start] != UNRESOLVED {
            continue;
        }
        let Ok(start) = u32::try_from(start) else {
            break;
        };
        stack.push(start);
        state[start as usize] = ON_STACK;
        while let Some(&top) = stack.last() {
            let Some(entry) = layers.at(top) else {
                break; // unreachable: only loaded layers are pushed
            };
            let outcome = match entry.parent_index() {
                None => Ok((entry.diff_size, 1)),
                Some(p) => {
                    let parent = || {
                        id_of(&layers, p)
                            .unwrap_or_else(|| ChainId(Digest::from_sha256_bytes([0; 32])))
                    };
                    match state.get(p as usize).copied().unwrap_or(BROKEN) {
                        BROKEN => Err(SkipReason::BrokenParent { parent: parent() }),
                        ON_STACK => Err(SkipReason::ParentCycle { parent: parent() }),
                        DONE => match layers.at(p) {
                            Some(pe) => Ok((
                                pe.size.saturating_add(entry.diff_size),
                                pe.depth.saturating_add(1),
                            )),
                            None => Err(SkipReason::BrokenParent { parent: parent() }),
                        },
                        _ => {
                            stack.push(p);
                            state[p as usize] = ON_STACK;
                            continue;
                        }
                    }
                }
            };
            stack.pop();
            match outcome {
                Ok((size, depth)) => {
                    if let Some(e) = layers.at_mut(top) {
                        e.size = size;
                        e.depth = depth;
                    }
                    state[top as usize] = DONE;
                }
                Err(reason) => {
                    state[top as usize] = BROKEN;
                    if let Some(id) = id_of(&layers, top) {
                        skip(id, reason);
                    }
                }
            }
        }
        stack.clear();
    }

    // Drop the broken layers, then count children.
    for (i, st) in state.iter().enumerate() {
        if *st != DONE
            && let Ok(i) = u32::try_from(i)
        {
            layers.remove(i);
        }
    }
    drop(state);
    let parents: Vec<u32> = layers
        .indices()
        .filter_map(|i| layers.at(i).and_then(Entry::parent_index))
        .collect();
    for p in parents {
        if let Some(pe) = layers.at_mut(p) {
            pe.children = pe.children.saturating_add(1);
        }
    }
    skipped.sort_by_key(|a| a.chain_id);
    (layers, skipped)
}

/// Counts the references RW mounts (`mounts/<id>/parent`) hold on loaded layers; returns
/// the cache IDs the mounts use (`mount-id`, `init-id`), which are never deleted (also
/// in [`RestoreReport::mount_cache_ids`], sorted).
fn load_mounts(dir: &Dir, restored: &mut Restored) -> Result<HashSet<String>, OpenError> {
    let cache_ids = read_mounts(dir, restored)?;
    let mut ids: Vec<String> = cache_ids.iter().cloned().collect();
    ids.sort();
    restored.outcome.mount_cache_ids = ids;
    Ok(cache_ids)
}

fn read_mounts(dir: &Dir, restored: &mut Restored) -> Result<HashSet<String>, OpenError> {
    let mut cache_ids = HashSet::new();
    let Some(mounts) = dir.open_dir("mounts")? else {
        return Ok(cache_ids);
    };
    for entry in mounts.entries()? {
        if entry.kind != durable_fs::FileKind::Dir {
            continue;
        }
        let path = mounts.join(&entry.name);
        let rel = Path::new(&entry.name);
        for file in ["mount-id", "init-id"] {
            if let Ok(Some(b)) = mounts.read(rel.join(file), SMALL_FILE_LIMIT as u64) {
                cache_ids.insert(String::from_utf8_lossy(&b).trim().to_owned());
            }
        }
        let parent = match mounts.read(rel.join("parent"), SMALL_FILE_LIMIT as u64) {
            Ok(Some(b)) => b,
            Ok(None) => continue, // no parent: no reference
            Err(e) => {
                restored.outcome.skipped_mounts.push((path, e.to_string()));
                continue;
            }
        };
        match parse_digest("parent", &parent) {
            Ok(d) => match restored.layers.get_mut(&ChainId(d)) {
                Some(e) => {
                    e.mounts = e.mounts.saturating_add(1);
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
    Ok(cache_ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// Files shorter than, equal to and longer than the inline buffer (and than several
    /// heap rounds) read back whole; a missing file is `None`.
    #[test]
    fn read_file_reads_every_length() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("layer")).expect("mkdir");
        let fd = rustix::fs::open(
            dir.path(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .expect("open dir");
        for len in [
            0,
            1,
            INLINE_LEN - 1,
            INLINE_LEN,
            INLINE_LEN + 1,
            2 * INLINE_LEN,
            4 * INLINE_LEN,
            4 * INLINE_LEN + 3,
            70_000,
        ] {
            let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            fs::write(dir.path().join("layer/descriptor.json"), &content).expect("write");
            let read = read_file(fd.as_fd(), "layer", "descriptor.json", 1 << 22)
                .expect("read")
                .expect("exists");
            assert_eq!(&*read, &content[..], "length {len}");
        }
        assert!(
            read_file(fd.as_fd(), "layer", "parent", SMALL_FILE_LIMIT)
                .expect("read")
                .is_none()
        );
    }
}
