//! [`FsBackend`]: Docker's `imagedb` directory layout, byte for byte, with crash-safe writes.

use std::fs::{self, DirBuilder, File};
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use digest_set::{Algorithm, Digest};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::backend::{BulkReader, Direct, MAX_CONFIG_SIZE, StoreBackend};
use crate::error::{CleanupReport, Error, io_at};
use crate::faults::{Faults, Injector, Op};
use crate::key::{TMP_PREFIX, validate_key};

/// How content and metadata files are opened for reading: no following a final symlink, no
/// blocking on a FIFO.
const READ_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::CLOEXEC);

/// Mode of content and metadata files (as dockerd writes them).
const FILE_MODE: u32 = 0o600;
/// Mode of the directories this backend creates (as dockerd creates them).
const DIR_MODE: u32 = 0o700;

/// Docker's imagedb on disk (`/var/lib/docker/image/<driver>/imagedb`):
///
/// ```text
/// <root>/content/sha256/<hex>              the config, raw bytes, mode 0600
/// <root>/metadata/sha256/<hex>/<key>       metadata values (dirs 0700, files 0600)
/// ```
///
/// Compatible with dockerd 20.10 both ways: it reads what dockerd wrote and writes exactly what
/// dockerd would (same bytes, same modes, no trailing newline added). Unlike moby it
/// - writes atomically *and durably*: temp file `.tmp-<name>-<random>` in the same directory,
///   write, fsync, rename, then fsync the directory;
/// - never follows symlinks at file positions and refuses anything that is not a regular file;
/// - refuses files larger than [`MAX_CONFIG_SIZE`] before reading them;
/// - validates metadata keys and ignores algorithms other than sha256 (`content/sha512` and
///   other unknown directories are left alone).
///
/// Mutations hold a process-wide write lock for this instance; reads share a read lock.
#[derive(Debug)]
pub struct FsBackend {
    root: PathBuf,
    content: PathBuf,
    metadata: PathBuf,
    io: Injector,
    lock: RwLock<()>,
}

/// What `m` is, as this backend's errors name it.
fn describe(m: &fs::Metadata) -> &'static str {
    describe_kind(durable_fs::FileKind::from_mode(m.mode()))
}

/// How this backend's errors name a kind of file.
fn describe_kind(k: durable_fs::FileKind) -> &'static str {
    match k {
        durable_fs::FileKind::File => "regular file",
        durable_fs::FileKind::Dir => "directory",
        durable_fs::FileKind::Symlink => "symbolic link",
        durable_fs::FileKind::Fifo => "named pipe",
        durable_fs::FileKind::Socket => "socket",
        durable_fs::FileKind::CharDevice => "character device",
        durable_fs::FileKind::BlockDevice => "block device",
        durable_fs::FileKind::Unknown => "unknown file type",
    }
}

/// The backend's error for a [`durable_fs::Error`].
fn fs_error(e: durable_fs::Error) -> Error {
    let kind = describe_kind;
    match e {
        durable_fs::Error::Io(io) => Error::Io {
            op: io.op,
            path: io.path,
            source: io.source,
        },
        durable_fs::Error::Symlink { path } => Error::NotAFile {
            path,
            what: "symbolic link",
        },
        durable_fs::Error::NotAFile { path, what } => Error::NotAFile {
            path,
            what: kind(what),
        },
        durable_fs::Error::NotADirectory { path, what } => Error::NotADirectory {
            path,
            what: kind(what),
        },
        durable_fs::Error::TooLarge { path, size, limit } => Error::TooLarge { path, size, limit },
        other => Error::Io {
            op: "use",
            path: other.path().to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, other.to_string()),
        },
    }
}

/// Whether [`FsBackend::ensure_dir`] follows a symlink at the directory's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Follow {
    Yes,
    No,
}

impl FsBackend {
    /// Opens (creating if missing, like moby's `MkdirAll(.., 0700)`) the imagedb at `root`.
    ///
    /// Creates `root`, `content/sha256` and `metadata/sha256` with mode 0700 where missing.
    /// Something other than a directory at any of those places is [`Error::NotADirectory`]
    /// naming it. Existing directories are used as they are (their modes are not changed).
    pub fn open(root: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_inner(root.as_ref(), None)
    }

    /// Like [`open`](FsBackend::open), with file operations going through `faults`: each
    /// write, fsync, rename, directory fsync, remove and read-open is counted as an [`Op`] and
    /// fails when a rule says so. For durability tests; see [`Faults`].
    pub fn open_with_faults(root: impl AsRef<Path>, faults: Faults) -> Result<Self, Error> {
        Self::open_inner(root.as_ref(), Some(faults))
    }

    /// Opens an existing imagedb at `root` without creating anything, for read-only use
    /// (`imgstore ls`, `fsck`). `content/sha256` must be a directory (a missing one is
    /// [`Error::Io`] with kind `NotFound`); a missing `metadata/sha256` reads as "no metadata".
    pub fn open_existing(root: impl AsRef<Path>) -> Result<Self, Error> {
        let root = root.as_ref();
        let backend = FsBackend {
            root: root.to_path_buf(),
            content: root.join("content").join("sha256"),
            metadata: root.join("metadata").join("sha256"),
            io: Injector::new(None),
            lock: RwLock::new(()),
        };
        // The root may be a symlink; `content/sha256` may not.
        match fs::symlink_metadata(&backend.content) {
            Ok(m) if m.is_dir() => Ok(backend),
            Ok(m) => Err(Error::NotADirectory {
                path: backend.content.clone(),
                what: describe(&m),
            }),
            Err(e) => Err(io_at("stat", &backend.content, e)),
        }
    }

    fn open_inner(root: &Path, faults: Option<Faults>) -> Result<Self, Error> {
        let content = root.join("content").join("sha256");
        let metadata = root.join("metadata").join("sha256");
        let backend = FsBackend {
            root: root.to_path_buf(),
            content,
            metadata,
            io: Injector::new(faults),
            lock: RwLock::new(()),
        };
        // The root may be a symlink (resolved once); the layout directories beneath it may
        // not: a symlink there is refused, never followed.
        backend.ensure_dir(root, Follow::Yes)?;
        for dir in [
            root.join("content"),
            backend.content.clone(),
            root.join("metadata"),
            backend.metadata.clone(),
        ] {
            backend.ensure_dir(&dir, Follow::No)?;
        }
        Ok(backend)
    }

    /// Makes sure `dir` is a directory (following a symlink there only with
    /// [`Follow::Yes`]), creating it (and its parents) with mode 0700 when missing. Returns
    /// whether it was created.
    fn ensure_dir(&self, dir: &Path, follow: Follow) -> Result<bool, Error> {
        let meta = match follow {
            Follow::Yes => fs::metadata(dir),
            Follow::No => fs::symlink_metadata(dir),
        };
        match meta {
            Ok(m) if m.is_dir() => Ok(false),
            Ok(m) => Err(Error::NotADirectory {
                path: dir.to_path_buf(),
                what: describe(&m),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                DirBuilder::new()
                    .recursive(true)
                    .mode(DIR_MODE)
                    .create(dir)
                    .map_err(|e| io_at("create directory", dir, e))?;
                // Explicit, so the mode does not depend on the umask.
                fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
                    .map_err(|e| io_at("chmod", dir, e))?;
                if let Some(parent) = dir.parent() {
                    self.sync_dir(parent)?;
                }
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(Error::NotADirectory {
                path: dir.to_path_buf(),
                what: "a parent is not a directory",
            }),
            Err(e) => Err(io_at("stat", dir, e)),
        }
    }

    /// The root directory (the `imagedb` directory).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the content of `id` lives (or would live): `<root>/content/<alg>/<hex>`.
    pub fn content_path(&self, id: &Digest) -> PathBuf {
        self.root
            .join("content")
            .join(id.algorithm().name())
            .join(id.hex())
    }

    /// Where metadata `key` of `id` lives (or would live):
    /// `<root>/metadata/<alg>/<hex>/<key>`. The key is validated.
    pub fn metadata_path(&self, id: &Digest, key: &str) -> Result<PathBuf, Error> {
        validate_key(key)?;
        Ok(self.metadata_dir(id).join(key))
    }

    fn metadata_dir(&self, id: &Digest) -> PathBuf {
        self.root
            .join("metadata")
            .join(id.algorithm().name())
            .join(id.hex())
    }

    fn read_lock(&self) -> RwLockReadGuard<'_, ()> {
        self.lock.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, ()> {
        self.lock.write().unwrap_or_else(|e| e.into_inner())
    }

    fn sync_dir(&self, dir: &Path) -> Result<(), Error> {
        self.io
            .hit(Op::SyncDir)
            .and_then(|()| File::open(dir)?.sync_all())
            .map_err(|e| io_at("fsync directory", dir, e))
    }

    /// Reads a regular file beneath the root without following any symlink on the way
    /// (`openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` through [`durable_fs`]), refusing
    /// more than the limit. `Ok(None)` when it does not exist.
    fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>, Error> {
        self.read_with(
            || {
                let rel = path.strip_prefix(&self.root).map_err(|_| Errno::INVAL)?;
                let root = rustix::fs::open(
                    &self.root,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                durable_fs::open_beneath(root.as_fd(), rel, READ_FLAGS, Mode::empty())
            },
            &|| path.to_path_buf(),
        )
    }

    /// [`read_file`](Self::read_file) of the file `open` opens (with [`READ_FLAGS`]; restore
    /// opens relative to a directory, so as not to walk the absolute path for every file);
    /// errors name `path()`.
    fn read_with(
        &self,
        open: impl FnOnce() -> rustix::io::Result<OwnedFd>,
        path: &dyn Fn() -> PathBuf,
    ) -> Result<Option<Vec<u8>>, Error> {
        self.io
            .hit(Op::Read)
            .map_err(|e| io_at("open", &path(), e))?;
        let file = match open() {
            Ok(fd) => File::from(fd),
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => {
                return Err(Error::NotAFile {
                    path: path(),
                    what: "symbolic link",
                });
            }
            Err(e) => return Err(io_at("open", &path(), e.into())),
        };
        let meta = file.metadata().map_err(|e| io_at("stat", &path(), e))?;
        if !meta.is_file() {
            return Err(Error::NotAFile {
                path: path(),
                what: describe(&meta),
            });
        }
        if meta.len() > MAX_CONFIG_SIZE {
            return Err(Error::TooLarge {
                path: path(),
                size: meta.len(),
                limit: MAX_CONFIG_SIZE,
            });
        }
        // Read the size `fstat` gave and stop there, without a last read to see end of file:
        // files here are replaced by rename, never written in place, and content is verified
        // against its digest, so a file that changed between the two calls is caught anyway.
        let len = usize::try_from(meta.len()).unwrap_or(0);
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            match (&file).read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_at("read", &path(), e)),
            }
        }
        buf.truncate(filled);
        Ok(Some(buf))
    }

    /// The content of `id` as read (`None`: no such file), checked to hash to `id`.
    fn verified(id: &Digest, data: Option<Vec<u8>>, path: PathBuf) -> Result<Vec<u8>, Error> {
        let Some(data) = data else {
            return Err(Error::NotFound { id: *id, path });
        };
        if data.is_empty() {
            return Err(Error::EmptyContent { id: *id, path });
        }
        let actual = Digest::sha256(&data);
        if actual != *id {
            return Err(Error::Verify {
                id: *id,
                actual: actual.to_string(),
                path,
            });
        }
        Ok(data)
    }

    /// moby's atomicwriter checks, then temp file, write, fsync, chmod 0600, rename, fsync dir.
    fn atomic_write(&self, dir: &Path, name: &str, data: &[u8]) -> Result<(), Error> {
        let target = dir.join(name);
        // Follows symlinks: the layout directories may be symlinks (as `open` accepts);
        // per-digest metadata directories are checked without following by the caller.
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(m) => {
                return Err(Error::NotADirectory {
                    path: dir.to_path_buf(),
                    what: describe(&m),
                });
            }
            Err(e) => return Err(io_at("stat", dir, e)),
        }
        match fs::symlink_metadata(&target) {
            Ok(m) if !m.is_file() => {
                return Err(Error::NotAFile {
                    path: target,
                    what: describe(&m),
                });
            }
            Ok(m) if m.permissions().mode() & 0o6000 != 0 => {
                return Err(Error::NotAFile {
                    path: target,
                    what: "setuid or setgid file",
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at("stat", &target, e)),
        }

        let mut handle = durable_fs::Dir::open(dir).map_err(fs_error)?;
        if let Some(hook) = self.io.hook() {
            handle = handle.with_faults(hook);
        }
        handle.atomic_write(name, data, FILE_MODE).map_err(fs_error)
    }

    /// The sha256 hex of `id`, or NotFound for other algorithms (never stored here).
    fn sha256_hex(&self, id: &Digest) -> Result<String, Error> {
        if id.algorithm() == Algorithm::Sha256 {
            Ok(id.hex())
        } else {
            Err(Error::NotFound {
                id: *id,
                path: self.content_path(id),
            })
        }
    }

    /// Checks that the content of `id` exists as a regular file (without reading it).
    fn require_content(&self, id: &Digest) -> Result<(), Error> {
        self.sha256_hex(id)?;
        let path = self.content_path(id);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => Ok(()),
            Ok(m) => Err(Error::NotAFile {
                path,
                what: describe(&m),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound { id: *id, path }),
            Err(e) => Err(io_at("stat", &path, e)),
        }
    }

    fn list_digests(dir: &Path) -> Result<Vec<Digest>, Error> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_at("read directory", dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_at("read directory", dir, e))?;
            let name = entry.file_name();
            let parsed = name
                .to_str()
                .map(|n| Digest::from_hex(Algorithm::Sha256, n));
            match parsed {
                Some(Ok(d)) => out.push(d),
                Some(Err(e)) => {
                    tracing::debug!(dir = %dir.display(), name = ?name, error = %e, "skipping invalid digest name");
                }
                None => {
                    tracing::debug!(dir = %dir.display(), name = ?name, "skipping non-UTF-8 name");
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn remove_file_if_exists(&self, path: &Path) -> Result<bool, Error> {
        self.io
            .hit(Op::Remove)
            .map_err(|e| io_at("remove", path, e))?;
        match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_at("remove", path, e)),
        }
    }

    fn temp_files_in(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_at("read directory", dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_at("read directory", dir, e))?;
            let is_tmp = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(TMP_PREFIX));
            let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
            if is_tmp && is_file {
                out.push(entry.path());
            }
        }
        Ok(())
    }
}

impl StoreBackend for FsBackend {
    /// Lists `content/sha256`. Entries with valid names are listed whatever their type (as
    /// moby does), so a directory or symlink with a digest name shows up and its
    /// [`get`](StoreBackend::get) reports it.
    fn walk(&self) -> Result<Vec<Digest>, Error> {
        let _guard = self.read_lock();
        Self::list_digests(&self.content)
    }

    fn get(&self, id: &Digest) -> Result<Vec<u8>, Error> {
        self.sha256_hex(id)?;
        let path = self.content_path(id);
        let data = {
            let _guard = self.read_lock();
            self.read_file(&path)?
        };
        Self::verified(id, data, path)
    }

    fn set(&self, data: &[u8]) -> Result<Digest, Error> {
        if data.is_empty() {
            return Err(Error::EmptyData);
        }
        let id = Digest::sha256(data);
        if data.len() as u64 > MAX_CONFIG_SIZE {
            return Err(Error::TooLarge {
                path: self.content_path(&id),
                size: data.len() as u64,
                limit: MAX_CONFIG_SIZE,
            });
        }
        let _guard = self.write_lock();
        self.atomic_write(&self.content, &id.hex(), data)?;
        Ok(id)
    }

    /// Removes the content first, then the metadata directory: a crash in between leaves
    /// only a metadata directory without content (listed by
    /// [`metadata_digests`](StoreBackend::metadata_digests)), never an image that lost its
    /// metadata. moby does it the other way round.
    fn delete(&self, id: &Digest) -> Result<(), Error> {
        self.sha256_hex(id)?;
        let _guard = self.write_lock();
        let path = self.content_path(id);
        if let Ok(m) = fs::symlink_metadata(&path)
            && m.is_dir()
        {
            return Err(Error::NotAFile {
                path,
                what: "directory",
            });
        }
        let existed = self.remove_file_if_exists(&path)?;
        if existed {
            self.sync_dir(&self.content)?;
        }
        let meta_dir = self.metadata_dir(id);
        match fs::symlink_metadata(&meta_dir) {
            Ok(m) => {
                self.io
                    .hit(Op::Remove)
                    .map_err(|e| io_at("remove", &meta_dir, e))?;
                if m.is_dir() {
                    fs::remove_dir_all(&meta_dir)
                } else {
                    fs::remove_file(&meta_dir)
                }
                .map_err(|e| io_at("remove", &meta_dir, e))?;
                self.sync_dir(&self.metadata)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at("stat", &meta_dir, e)),
        }
        if existed {
            Ok(())
        } else {
            Err(Error::NotFound { id: *id, path })
        }
    }

    fn set_metadata(&self, id: &Digest, key: &str, data: &[u8]) -> Result<(), Error> {
        validate_key(key)?;
        let dir = self.metadata_dir(id);
        if data.len() as u64 > MAX_CONFIG_SIZE {
            return Err(Error::TooLarge {
                path: dir.join(key),
                size: data.len() as u64,
                limit: MAX_CONFIG_SIZE,
            });
        }
        let _guard = self.write_lock();
        self.require_content(id)?;
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(m) => {
                return Err(Error::NotADirectory {
                    path: dir,
                    what: describe(&m),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                DirBuilder::new()
                    .mode(DIR_MODE)
                    .create(&dir)
                    .map_err(|e| io_at("create directory", &dir, e))?;
                // Explicit, so the mode does not depend on the umask.
                fs::set_permissions(&dir, fs::Permissions::from_mode(DIR_MODE))
                    .map_err(|e| io_at("chmod", &dir, e))?;
                self.sync_dir(&self.metadata)?;
            }
            Err(e) => return Err(io_at("stat", &dir, e)),
        }
        self.atomic_write(&dir, key, data)
    }

    fn get_metadata(&self, id: &Digest, key: &str) -> Result<Option<Vec<u8>>, Error> {
        validate_key(key)?;
        let _guard = self.read_lock();
        self.require_content(id)?;
        let dir = self.metadata_dir(id);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(m) => {
                return Err(Error::NotADirectory {
                    path: dir,
                    what: describe(&m),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_at("stat", &dir, e)),
        }
        self.read_file(&dir.join(key))
    }

    fn delete_metadata(&self, id: &Digest, key: &str) -> Result<(), Error> {
        validate_key(key)?;
        if id.algorithm() != Algorithm::Sha256 {
            return Ok(());
        }
        let _guard = self.write_lock();
        let dir = self.metadata_dir(id);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            // No directory (or a stray file or link in its place): no key to remove.
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_at("stat", &dir, e)),
        }
        let path = dir.join(key);
        if let Ok(m) = fs::symlink_metadata(&path)
            && m.is_dir()
        {
            return Err(Error::NotAFile {
                path,
                what: "directory",
            });
        }
        if self.remove_file_if_exists(&path)? {
            self.sync_dir(&dir)?;
        }
        Ok(())
    }

    fn metadata_digests(&self) -> Result<Vec<Digest>, Error> {
        let _guard = self.read_lock();
        Self::list_digests(&self.metadata)
    }

    /// Removes `.tmp-*` regular files from `content/sha256` and every
    /// `metadata/sha256/<hex>/`. Holds the write lock, so writes of this instance in flight
    /// are not disturbed; do not run it while another process writes the same root.
    fn cleanup(&self) -> Result<CleanupReport, Error> {
        let _guard = self.write_lock();
        let mut found = Vec::new();
        Self::temp_files_in(&self.content, &mut found)?;
        for id in Self::list_digests(&self.metadata)? {
            let dir = self.metadata_dir(&id);
            if fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
                Self::temp_files_in(&dir, &mut found)?;
            }
        }
        let mut report = CleanupReport::default();
        for path in found {
            if self.remove_file_if_exists(&path)? {
                tracing::debug!(path = %path.display(), "removed leftover temporary file");
                report.removed.push(path);
            }
        }
        let mut dirs: Vec<&Path> = report.removed.iter().filter_map(|p| p.parent()).collect();
        dirs.dedup();
        for dir in dirs {
            self.sync_dir(dir)?;
        }
        Ok(report)
    }

    /// Keeps `content/sha256` and `metadata/sha256` open for the reader's lifetime and opens
    /// files relative to them. A metadata directory that is missing or cannot be opened is
    /// read through [`get_metadata`](StoreBackend::get_metadata).
    fn bulk_reader(&self) -> Result<Box<dyn BulkReader + '_>, Error> {
        if self.io.is_active() {
            // Fault tests count every operation of the path-based methods.
            return Ok(Box::new(Direct(self)));
        }
        // Beneath the root, following no symlink (the root itself may be one).
        let root = durable_fs::Dir::open(&self.root).map_err(fs_error)?;
        let open_dir = |rel: &str| root.require_dir(rel).map(durable_fs::Dir::into_fd);
        let content = open_dir("content/sha256").map_err(fs_error)?;
        let metadata = open_dir("metadata/sha256").ok();
        Ok(Box::new(FsReader {
            backend: self,
            content,
            metadata,
        }))
    }
}

/// [`FsBackend`]'s [`BulkReader`]: files are opened relative to the layout directories.
struct FsReader<'a> {
    backend: &'a FsBackend,
    content: OwnedFd,
    metadata: Option<OwnedFd>,
}

impl BulkReader for FsReader<'_> {
    fn get(&self, id: &Digest) -> Result<Vec<u8>, Error> {
        let b = self.backend;
        let hex = b.sha256_hex(id)?;
        let data = {
            let _guard = b.read_lock();
            let open =
                || rustix::fs::openat(&self.content, hex.as_str(), READ_FLAGS, Mode::empty());
            b.read_with(open, &|| b.content_path(id))?
        };
        FsBackend::verified(id, data, b.content_path(id))
    }

    fn get_metadata(&self, id: &Digest, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let b = self.backend;
        validate_key(key)?;
        let (Some(dir), Ok(hex)) = (&self.metadata, b.sha256_hex(id)) else {
            return b.get_metadata(id, key);
        };
        let rel = PathBuf::from(format!("{hex}/{key}"));
        // A link anywhere in `<hex>/<key>` fails this open; the path-based read then reports
        // it exactly as `get_metadata` does (as does a `<hex>` that is not a directory).
        let opened = {
            let _guard = b.read_lock();
            let opened = rustix::fs::openat2(
                dir,
                &rel,
                READ_FLAGS,
                Mode::empty(),
                ResolveFlags::NO_SYMLINKS,
            );
            match opened {
                // No metadata directory, or no such key in it.
                Err(Errno::NOENT) => return Ok(None),
                Ok(fd) => Some(b.read_with(|| Ok(fd), &|| b.metadata_dir(id).join(key))),
                Err(_) => None,
            }
        };
        opened.unwrap_or_else(|| b.get_metadata(id, key))
    }
}
