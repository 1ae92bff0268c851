//! Where snapshot files live ([`Snapshots`]), which file belongs to which data root
//! ([`Key`]), and reading and writing them: checked before use, written whole or not at
//! all, bounded in size and number.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Write as _};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

use super::format::{Decoder, Encoder, FORMAT, FormatError, MAGIC, SectionEncoder, SectionReader};
use crate::dataroot::DataRoot;

/// How long a directory must have been left alone before its stamp is trusted: longer
/// than the coarsest timestamps of the file systems a data root lives on (ext4 with small
/// inodes keeps seconds) plus one tick of the kernel's clock.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(2);
/// The most snapshot files kept in one cache directory (the oldest go first).
pub const MAX_FILES: usize = 8;
/// The largest snapshot written or read: about 25 times what a 100k-image root needs.
pub const MAX_BYTES: u64 = 1 << 30;
/// How old a temp file of an interrupted write must be before it is removed.
const STALE_TEMP: Duration = Duration::from_secs(3600);
/// Suffix of snapshot files.
const SUFFIX: &str = ".snapshot";
/// Prefix of temp files.
const TEMP_PREFIX: &str = ".tmp-";

/// Where snapshots of restores are kept, and how long a change must be past before a
/// snapshot vouches for it. See [the module](super) for what a snapshot is and when it is
/// used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshots {
    dir: PathBuf,
    settle: Duration,
}

impl Snapshots {
    /// Snapshots in `dir` (created, mode 0700, on the first write), trusting changes
    /// [`DEFAULT_SETTLE`] old.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Snapshots {
            dir: dir.into(),
            settle: DEFAULT_SETTLE,
        }
    }

    /// The same, trusting a directory changed at least `settle` before the restore started.
    /// Shorter than the default only where the file system's timestamps are known to be
    /// fine (tests on ext4, xfs, btrfs or tmpfs).
    pub fn with_settle(self, settle: Duration) -> Self {
        Snapshots { settle, ..self }
    }

    /// The user's cache directory for imgstore: `$XDG_CACHE_HOME/imgstore` (when set to an
    /// absolute path), else `$HOME/.cache/imgstore`; `None` without either.
    pub fn default_dir() -> Option<PathBuf> {
        let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
        std::env::var_os("XDG_CACHE_HOME")
            .and_then(absolute)
            .or_else(|| {
                std::env::var_os("HOME")
                    .and_then(absolute)
                    .map(|h| h.join(".cache"))
            })
            .map(|c| c.join("imgstore"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The settle time.
    pub fn settle(&self) -> Duration {
        self.settle
    }
}

/// A data root's identity: the build that wrote the snapshot, the root's device and inode,
/// its driver and its canonical path. A snapshot file is used only for the key it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key(String);

impl Key {
    /// The key of `root`; `None` when the root cannot be resolved (it does not exist).
    pub(crate) fn of(root: &DataRoot) -> Option<Key> {
        let path = std::fs::canonicalize(root.root()).ok()?;
        let meta = std::fs::metadata(&path).ok()?;
        Some(Key(format!(
            "{}\0{}\0{}\0{}\0{}",
            build(),
            meta.dev(),
            meta.ino(),
            root.driver(),
            path.display()
        )))
    }

    /// The file name of this key's snapshot.
    fn file_name(&self) -> String {
        let hash = Sha256::digest(self.0.as_bytes());
        let mut name = String::with_capacity(40);
        for b in &hash[..16] {
            name.push_str(&format!("{b:02x}"));
        }
        name.push_str(SUFFIX);
        name
    }
}

/// What wrote a snapshot: this crate's version and the format.
fn build() -> String {
    format!("imgstore {} format {FORMAT}", env!("CARGO_PKG_VERSION"))
}

/// Why a snapshot was not read or written (logged, never an error of the command).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheError {
    /// No snapshot for this root yet.
    #[error("no snapshot")]
    Missing,
    /// The cache directory or file may be written by others, or is not a directory or
    /// regular file: never trusted.
    #[error("{0}: not owned by this user and private, or not a plain file or directory")]
    NotPrivate(PathBuf),
    /// Too large.
    #[error("{0}: larger than {MAX_BYTES} bytes")]
    TooLarge(PathBuf),
    /// Written by another build, for another root, or damaged.
    #[error("{path}: {why}")]
    Foreign {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Whether `meta` is owned by this user and writable by no one else.
fn private(meta: &std::fs::Metadata) -> bool {
    meta.uid() == rustix::process::geteuid().as_raw() && meta.mode() & 0o022 == 0
}

/// A section of a snapshot file: kind, offset, length, sha256.
#[derive(Debug, Clone, Copy)]
struct Section {
    kind: u8,
    offset: u64,
    len: u64,
    hash: [u8; 32],
}

/// An open snapshot file whose trailer (build, key, sections) checked out.
#[derive(Debug)]
pub(crate) struct SnapshotFile {
    path: PathBuf,
    file: File,
    written_at: (i64, u32),
    sections: Vec<Section>,
}

/// The trailer's fixed-size end: sha256 of the trailer, its length, the magic.
const TAIL: usize = 32 + 4 + MAGIC.len();

impl SnapshotFile {
    /// Opens the snapshot of `key` in `snaps`' directory, if there is one that belongs to
    /// this build and this root.
    pub(crate) fn open(snaps: &Snapshots, key: &Key) -> Result<SnapshotFile, CacheError> {
        let dir = snaps.dir();
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() && private(&m) => {}
            Ok(_) => return Err(CacheError::NotPrivate(dir.to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CacheError::Missing),
            Err(e) => return Err(io_at(dir)(e)),
        }
        let path = dir.join(key.file_name());
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc_flags::NOFOLLOW | libc_flags::NONBLOCK)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CacheError::Missing),
            Err(e) => return Err(io_at(&path)(e)),
        };
        let meta = file.metadata().map_err(io_at(&path))?;
        if !meta.is_file() || !private(&meta) {
            return Err(CacheError::NotPrivate(path));
        }
        if meta.len() > MAX_BYTES {
            return Err(CacheError::TooLarge(path));
        }
        let foreign = |why: &str| CacheError::Foreign {
            path: path.clone(),
            why: why.to_owned(),
        };
        let size = meta.len();
        if size < (MAGIC.len() + TAIL) as u64 {
            return Err(foreign("too short"));
        }
        let mut head = [0u8; MAGIC.len()];
        file.read_exact_at(&mut head, 0).map_err(io_at(&path))?;
        let mut tail = [0u8; TAIL];
        file.read_exact_at(&mut tail, size - TAIL as u64)
            .map_err(io_at(&path))?;
        if &head != MAGIC || &tail[36..] != MAGIC {
            return Err(foreign("not a snapshot of this format"));
        }
        let mut d = Decoder::new(&tail);
        let (hash, trailer_len) = match (d.hash(), d.u32()) {
            (Ok(h), Ok(n)) => (h, u64::from(n)),
            _ => return Err(foreign("bad trailer")),
        };
        let Some(trailer_at) = (size - TAIL as u64)
            .checked_sub(trailer_len)
            .filter(|&at| at >= MAGIC.len() as u64)
        else {
            return Err(foreign("bad trailer length"));
        };
        let mut trailer = vec![0u8; trailer_len as usize];
        file.read_exact_at(&mut trailer, trailer_at)
            .map_err(io_at(&path))?;
        if <[u8; 32]>::from(Sha256::digest(&trailer)) != hash {
            return Err(foreign("trailer checksum mismatch"));
        }
        let parsed = (|| -> Result<_, FormatError> {
            let mut d = Decoder::new(&trailer);
            let build = d.string()?;
            let root = d.string()?;
            let written_at = d.time()?;
            let n = d.count(1 + 8 + 8 + 32)?;
            let mut sections = Vec::with_capacity(n);
            for _ in 0..n {
                sections.push(Section {
                    kind: d.u8()?,
                    offset: d.u64()?,
                    len: d.u64()?,
                    hash: d.hash()?,
                });
            }
            Ok((build, root, written_at, sections))
        })();
        let (build_text, root, written_at, sections) =
            parsed.map_err(|e| foreign(&e.to_string()))?;
        if build_text != build() {
            return Err(foreign(&format!("written by {build_text}")));
        }
        if root != key.0 {
            return Err(foreign("written for another data root"));
        }
        if sections.iter().any(|s| {
            s.offset
                .checked_add(s.len)
                .is_none_or(|end| end > trailer_at)
        }) {
            return Err(foreign("section out of bounds"));
        }
        Ok(SnapshotFile {
            path,
            file,
            written_at,
            sections,
        })
    }

    /// When the restore this snapshot was taken from started.
    pub(crate) fn written_at(&self) -> (i64, u32) {
        self.written_at
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A decoder of section `kind` (`None` when the file has none), reading the file as it
    /// goes; [`SectionDecoder::verify`] says at the end whether what was read is the whole
    /// section and matches its sha256.
    pub(crate) fn section(&self, kind: u8) -> Option<SectionDecoder<'_>> {
        let s = self.sections.iter().find(|s| s.kind == kind)?;
        let reader =
            BufReader::with_capacity(256 * 1024, SectionReader::new(&self.file, s.offset, s.len));
        Some(SectionDecoder {
            decoder: Decoder::of(reader, s.len),
            hash: s.hash,
        })
    }
}

/// A decoder of one section of a [`SnapshotFile`].
pub(crate) struct SectionDecoder<'f> {
    /// The decoder.
    pub(crate) decoder: Decoder<BufReader<SectionReader<'f>>>,
    hash: [u8; 32],
}

impl SectionDecoder<'_> {
    /// Whether the whole section was decoded and it matches its sha256.
    pub(crate) fn verify(self) -> bool {
        if !self.decoder.is_empty() {
            return false;
        }
        // Everything the buffered reader read was decoded: it read exactly the section.
        self.decoder.into_inner().into_inner().hash() == self.hash
    }
}

/// Flags for opening snapshot files.
mod libc_flags {
    /// `O_NOFOLLOW`.
    pub(super) const NOFOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;
    /// `O_NONBLOCK`: a FIFO in the file's place cannot block the open.
    pub(super) const NONBLOCK: i32 = rustix::fs::OFlags::NONBLOCK.bits() as i32;
}

/// Writes the snapshot of `key`: each of `sections` (a kind and a function that encodes
/// it) in turn, then the trailer, into a temp file renamed over the old snapshot once
/// complete. At most [`MAX_BYTES`] are written; then the oldest files beyond
/// [`MAX_FILES`] and stale temp files are removed. No fsync: a file cut short by a crash
/// fails its checksums and is ignored.
pub(crate) fn write(
    snaps: &Snapshots,
    key: &Key,
    written_at: SystemTime,
    sections: &[SectionEncoder<'_>],
) -> Result<PathBuf, CacheError> {
    let dir = snaps.dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_at(dir))?;
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() && private(&m) => {}
        Ok(_) => return Err(CacheError::NotPrivate(dir.to_owned())),
        Err(e) => return Err(io_at(dir)(e)),
    }
    let random = durable_fs::random_hex(8).map_err(io_at(dir))?;
    let temp = dir.join(format!("{TEMP_PREFIX}{random}{SUFFIX}"));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc_flags::NOFOLLOW)
        .open(&temp)
        .map_err(io_at(&temp))?;
    let result = write_into(file, key, written_at, sections);
    let final_path = dir.join(key.file_name());
    let result = result
        .map_err(|e| match e {
            FormatError::Io(source) => CacheError::Io {
                path: temp.clone(),
                source,
            },
            other => CacheError::Foreign {
                path: temp.clone(),
                why: other.to_string(),
            },
        })
        .and_then(|()| std::fs::rename(&temp, &final_path).map_err(io_at(&final_path)));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result?;
    evict(dir, &final_path);
    Ok(final_path)
}

fn write_into(
    file: File,
    key: &Key,
    written_at: SystemTime,
    sections: &[SectionEncoder<'_>],
) -> Result<(), FormatError> {
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    out.write_all(MAGIC)?;
    let mut budget = MAX_BYTES - (MAGIC.len() + TAIL) as u64;
    let mut offset = MAGIC.len() as u64;
    let mut table = Vec::new();
    for (kind, encode) in sections {
        let mut e = Encoder::to(&mut out, budget);
        encode(&mut e);
        let (len, hash, _) = e.finish()?;
        budget -= len;
        table.push(Section {
            kind: *kind,
            offset,
            len,
            hash,
        });
        offset += len;
    }
    let mut t = Encoder::default();
    t.bytes(build().as_bytes());
    t.bytes(key.0.as_bytes());
    let since = written_at
        .duration_since(UNIX_EPOCH)
        .map_err(|_| FormatError::Invalid("time before 1970"))?;
    t.time((
        i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        since.subsec_nanos(),
    ));
    t.count(table.len());
    for s in &table {
        t.u8(s.kind);
        t.u64(s.offset);
        t.u64(s.len);
        t.raw(&s.hash);
    }
    let (len, hash, trailer) = t.finish()?;
    if len > budget {
        return Err(FormatError::Invalid("size: larger than the cache allows"));
    }
    out.write_all(&trailer)?;
    out.write_all(&hash)?;
    out.write_all(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes())?;
    out.write_all(MAGIC)?;
    out.flush()?;
    Ok(())
}

/// Removes all but the [`MAX_FILES`] newest snapshots of `dir` (never `keep`), and temp
/// files older than [`STALE_TEMP`]. Failures are logged.
fn evict(dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    let mut snapshots: Vec<(SystemTime, PathBuf)> = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let Ok(meta) = e.metadata() else { continue };
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !meta.is_file() || !name.ends_with(SUFFIX) {
            continue;
        }
        let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
        if name.starts_with(TEMP_PREFIX) {
            if now.duration_since(mtime).is_ok_and(|age| age > STALE_TEMP) {
                remove(&path);
            }
        } else if path != keep {
            snapshots.push((mtime, path));
        }
    }
    snapshots.sort();
    let excess = (snapshots.len() + 1).saturating_sub(MAX_FILES);
    for (_, path) in snapshots.into_iter().take(excess) {
        remove(&path);
    }
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::debug!(path = %path.display(), error = %e, "cannot remove an old snapshot");
    }
}
