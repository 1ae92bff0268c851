//! Confined, durable file access beneath a directory handle.
//!
//! A [`Dir`] is an open directory. Everything reached through it stays beneath it: paths are
//! resolved with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (or one `O_NOFOLLOW` open
//! per component where `openat2` is missing), so a symbolic link anywhere on the way, `..`
//! or an absolute path is an error, never followed. Files are read only when they are
//! regular files (opened with `O_NONBLOCK`, then checked with `fstat`, so a FIFO or a device
//! never blocks) and never past a size cap. Trees are removed without following links and
//! with a bounded number of open descriptors, however deep.
//!
//! Writes are atomic and durable ([`Dir::atomic_write`]): a temporary file created with its
//! final mode, written, fsynced, renamed over the target, then the directory fsynced. A
//! crash leaves either the old file or the new one, plus at most a temporary file whose name
//! starts with [`TEMP_PREFIX`] ([`Dir::temp_files`] finds them).
//!
//! Only two things are followed on purpose: the path given to [`Dir::open`] (a data root
//! such as `/var/lib/docker` is often a link to another disk) and a single top-level name
//! opened with [`Dir::open_top_dir`] (an operator may move `image/` or `overlay2/` the same
//! way). Both are resolved once; nothing beneath them is ever followed.
//!
//! Every error is an [`Error`] naming the path.
//!
//! # Example
//!
//! ```
//! use durable_fs::{Dir, Error};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tmp = tempfile::tempdir()?;
//! let root = Dir::open(tmp.path())?;
//! let sub = root.create_dir("image", 0o700)?;
//! sub.atomic_write("repositories.json", b"{}", 0o600)?;
//! assert_eq!(root.read("image/repositories.json", 1024)?.as_deref(), Some(&b"{}"[..]));
//!
//! // A symbolic link is never followed.
//! std::os::unix::fs::symlink("/etc", tmp.path().join("image/etc"))?;
//! assert!(matches!(root.read("image/etc/hostname", 1024), Err(Error::Symlink { .. })));
//! # Ok(())
//! # }
//! ```

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir, ResolveFlags};
use rustix::io::Errno;

/// Names of temporary files of in-flight (or interrupted) atomic writes start with this.
pub const TEMP_PREFIX: &str = ".tmp-";

/// An I/O failure: what was being done, on which path, and why.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct IoError {
    /// What was being done (`open`, `read`, `rename`, ...).
    pub op: &'static str,
    /// The path it was done on.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: io::Error,
}

/// What went wrong beneath a [`Dir`]. Every variant names the path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A symbolic link where a file or directory belongs, or on the way to one. Never
    /// followed.
    #[error("{}: a symbolic link is in the way (never followed)", path.display())]
    Symlink {
        /// The path asked for.
        path: PathBuf,
    },
    /// A path that would leave the directory (`..`, an absolute path).
    #[error("{}: leads outside {}", path.display(), base.display())]
    Escape {
        /// The path asked for.
        path: PathBuf,
        /// The directory it must stay beneath.
        base: PathBuf,
    },
    /// Something other than a regular file where one belongs.
    #[error("{} is {}, not a regular file", path.display(), what.describe())]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What is there.
        what: FileKind,
    },
    /// Something other than a directory where one belongs.
    #[error("{} is {}, not a directory", path.display(), what.describe())]
    NotADirectory {
        /// The path.
        path: PathBuf,
        /// What is there.
        what: FileKind,
    },
    /// A file larger than the cap for its kind.
    #[error("{} is {size} bytes, more than the {limit} allowed", path.display())]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size (at least; reading stopped past the limit).
        size: u64,
        /// The cap.
        limit: u64,
    },
}

impl Error {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Error::Io(e) => &e.path,
            Error::Symlink { path }
            | Error::Escape { path, .. }
            | Error::NotAFile { path, .. }
            | Error::NotADirectory { path, .. }
            | Error::TooLarge { path, .. } => path,
        }
    }

    /// The `io::ErrorKind` of an [`Error::Io`], if it is one.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Error::Io(e) => Some(e.source.kind()),
            _ => None,
        }
    }
}

fn io_err(op: &'static str, path: PathBuf, e: impl Into<io::Error>) -> Error {
    Error::Io(IoError {
        op,
        path,
        source: e.into(),
    })
}

/// The type of a directory entry, as `lstat` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A socket.
    Socket,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// Anything else.
    Unknown,
}

impl FileKind {
    fn from_type(t: FileType) -> FileKind {
        match t {
            FileType::RegularFile => FileKind::File,
            FileType::Directory => FileKind::Dir,
            FileType::Symlink => FileKind::Symlink,
            FileType::Fifo => FileKind::Fifo,
            FileType::Socket => FileKind::Socket,
            FileType::CharacterDevice => FileKind::CharDevice,
            FileType::BlockDevice => FileKind::BlockDevice,
            FileType::Unknown => FileKind::Unknown,
        }
    }

    /// The kind from an `st_mode`.
    pub fn from_mode(mode: u32) -> FileKind {
        FileKind::from_type(FileType::from_raw_mode(mode))
    }

    /// "a regular file", "a directory", "a symbolic link", ...
    pub fn describe(self) -> &'static str {
        match self {
            FileKind::File => "a regular file",
            FileKind::Dir => "a directory",
            FileKind::Symlink => "a symbolic link",
            FileKind::Fifo => "a named pipe",
            FileKind::Socket => "a socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Unknown => "of unknown type",
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A place where an injected fault can make an operation fail (tests of durability).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultPoint {
    /// Writing a temporary file's data.
    Write,
    /// fsync of a temporary file.
    Sync,
    /// Renaming a temporary file onto its target.
    Rename,
    /// fsync of a directory.
    SyncDir,
    /// Removing a file or directory.
    Remove,
    /// Opening a file to read it.
    Read,
}

/// Decides whether an operation fails (for durability tests): [`Dir::with_faults`].
pub trait FaultHook: Send + Sync + fmt::Debug {
    /// Called before the operation; an error makes it fail with that error. A failing
    /// [`FaultPoint::Write`] leaves the first half of the data written, as a full disk would.
    fn hit(&self, at: FaultPoint) -> io::Result<()>;
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name (never `.` or `..`).
    pub name: OsString,
    /// Its type, not following symlinks.
    pub kind: FileKind,
}

/// Metadata of an entry, not following symlinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Its type.
    pub kind: FileKind,
    /// Permission bits (and setuid/setgid/sticky).
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Device and inode.
    pub dev_ino: (u64, u64),
}

impl Meta {
    fn from_stat(st: &rustix::fs::Stat) -> Meta {
        Meta {
            kind: FileKind::from_mode(st.st_mode),
            mode: st.st_mode & 0o7777,
            size: u64::try_from(st.st_size).unwrap_or(0),
            dev_ino: (st.st_dev, st.st_ino),
        }
    }
}

/// An open directory; everything reached through it stays beneath it.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
    faults: Option<Arc<dyn FaultHook>>,
}

/// Set once `openat2` turned out to be missing (old kernel, seccomp): walk per component.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Checks that `rel` is a relative path of plain names; returns them (`.` dropped).
fn components<'a>(base: &Path, rel: &'a Path) -> Result<Vec<&'a OsStr>, Error> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(Error::Escape {
                    path: base.join(rel),
                    base: base.to_owned(),
                });
            }
        }
    }
    Ok(out)
}

/// Opens `rel` beneath the directory `dir` with `flags`, following no symlink (on the way
/// or at the end: `ELOOP`) and never leaving `dir` (`EXDEV`). For callers that make many
/// opens of their own in a hot loop; [`Dir`]'s methods are the checked way.
pub fn open_beneath(
    dir: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlags,
    mode: Mode,
) -> rustix::io::Result<OwnedFd> {
    let flags = flags | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let rel: &Path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        match rustix::fs::openat2(
            dir,
            rel,
            flags,
            mode,
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(Errno::NOSYS) | Err(Errno::PERM) if !NO_OPENAT2.load(Ordering::Relaxed) => {
                NO_OPENAT2.store(true, Ordering::Relaxed);
            }
            // EAGAIN: the kernel could not prove the walk safe under concurrent renames.
            Err(Errno::AGAIN) => {}
            r => return r,
        }
    }
    let names: Vec<&OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let Some((last, parents)) = names.split_last() else {
        return rustix::fs::openat(dir, ".", flags, mode);
    };
    let mut cur: Option<OwnedFd> = None;
    for name in parents {
        let at = cur.as_ref().map_or(dir, |f| f.as_fd());
        let next = rustix::fs::openat(
            at,
            *name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            if e == Errno::NOTDIR {
                symlink_or_notdir(at, name)
            } else {
                e
            }
        })?;
        cur = Some(next);
    }
    let at = cur.as_ref().map_or(dir, |f| f.as_fd());
    rustix::fs::openat(at, *last, flags, mode)
}

/// `O_NOFOLLOW | O_DIRECTORY` on a symlink gives `ENOTDIR`; tell it apart as `ELOOP`.
fn symlink_or_notdir(dir: BorrowedFd<'_>, name: &OsStr) -> Errno {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => Errno::LOOP,
        _ => Errno::NOTDIR,
    }
}

impl Dir {
    /// Opens the directory `path`, following symlinks in it (resolved once: a data root is
    /// often a link to another disk). The path kept for messages is the one given.
    pub fn open(path: impl AsRef<Path>) -> Result<Dir, Error> {
        let path = path.as_ref();
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::NOTDIR => match std::fs::metadata(path) {
                Ok(m) => Error::NotADirectory {
                    path: path.to_owned(),
                    what: FileKind::from_mode(std::os::unix::fs::MetadataExt::mode(&m)),
                },
                Err(e) => io_err("open", path.to_owned(), e),
            },
            e => io_err("open", path.to_owned(), e),
        })?;
        Ok(Dir {
            fd,
            path: path.to_owned(),
            faults: None,
        })
    }

    /// Opens the directory `path` without following a symlink at its last component (the
    /// components before it are followed, as in [`Dir::open`]).
    pub fn open_nofollow(path: impl AsRef<Path>) -> Result<Dir, Error> {
        let path = path.as_ref();
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Self::dir_open_error(path, e, || std::fs::symlink_metadata(path)))?;
        Ok(Dir {
            fd,
            path: path.to_owned(),
            faults: None,
        })
    }

    fn dir_open_error(
        path: &Path,
        e: Errno,
        lstat: impl FnOnce() -> io::Result<std::fs::Metadata>,
    ) -> Error {
        match e {
            Errno::LOOP => Error::Symlink {
                path: path.to_owned(),
            },
            Errno::NOTDIR => match lstat() {
                Ok(m) => {
                    let kind = FileKind::from_mode(std::os::unix::fs::MetadataExt::mode(&m));
                    if kind == FileKind::Symlink {
                        Error::Symlink {
                            path: path.to_owned(),
                        }
                    } else {
                        Error::NotADirectory {
                            path: path.to_owned(),
                            what: kind,
                        }
                    }
                }
                Err(_) => io_err("open", path.to_owned(), e),
            },
            Errno::XDEV => Error::Escape {
                path: path.to_owned(),
                base: path.parent().map(Path::to_owned).unwrap_or_default(),
            },
            e => io_err("open", path.to_owned(), e),
        }
    }

    /// The same directory with operations going through `hook` (durability tests).
    pub fn with_faults(mut self, hook: Arc<dyn FaultHook>) -> Dir {
        self.faults = Some(hook);
        self
    }

    /// A second handle on the same directory (with the same fault hook).
    pub fn try_clone(&self) -> Result<Dir, Error> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| io_err("duplicate", self.path.clone(), e))?;
        Ok(Dir {
            fd,
            path: self.path.clone(),
            faults: self.faults.clone(),
        })
    }

    fn hit(&self, at: FaultPoint, op: &'static str, path: &Path) -> Result<(), Error> {
        match &self.faults {
            Some(h) => h.hit(at).map_err(|e| io_err(op, path.to_owned(), e)),
            None => Ok(()),
        }
    }

    /// The path this directory was opened as (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path()` joined with `rel` (for messages).
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// The descriptor, for callers that keep it (the path is dropped).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// The directory's descriptor, for `*at` calls of the caller's own.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn check(&self, rel: &Path) -> Result<(), Error> {
        components(&self.path, rel).map(|_| ())
    }

    fn open_error(&self, rel: &Path, e: Errno, want_dir: bool) -> Error {
        let path = self.join(rel);
        match e {
            Errno::LOOP => Error::Symlink { path },
            Errno::XDEV => Error::Escape {
                path,
                base: self.path.clone(),
            },
            Errno::NOTDIR => match self.meta(rel) {
                Ok(Some(m)) if m.kind == FileKind::Symlink => Error::Symlink { path },
                Ok(Some(m)) if want_dir => Error::NotADirectory { path, what: m.kind },
                // A component on the way is not a directory.
                _ => io_err("open", path, e),
            },
            e => io_err("open", path, e),
        }
    }

    /// Opens the directory `rel` beneath this one. `Ok(None)` when it does not exist.
    pub fn open_dir(&self, rel: impl AsRef<Path>) -> Result<Option<Dir>, Error> {
        let rel = rel.as_ref();
        self.check(rel)?;
        let opened = open_beneath(
            self.fd(),
            rel,
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        );
        self.sub_dir(rel, opened)
    }

    /// The directory `rel` opened as `opened` says: `None` when it does not exist.
    fn sub_dir(
        &self,
        rel: &Path,
        opened: rustix::io::Result<OwnedFd>,
    ) -> Result<Option<Dir>, Error> {
        match opened {
            Ok(fd) => Ok(Some(Dir {
                fd,
                path: self.join(rel),
                faults: self.faults.clone(),
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(self.open_error(rel, e, true)),
        }
    }

    /// Opens the directory `rel`, which must exist.
    pub fn require_dir(&self, rel: impl AsRef<Path>) -> Result<Dir, Error> {
        let rel = rel.as_ref();
        self.open_dir(rel)?
            .ok_or_else(|| io_err("open", self.join(rel), Errno::NOENT))
    }

    /// Opens the single-name directory `name`, following a symlink there (resolved once: an
    /// operator may have moved a top-level directory of a data root to another disk).
    /// Nothing reached through the result is followed. `Ok(None)` when it does not exist.
    pub fn open_top_dir(&self, name: &str) -> Result<Option<Dir>, Error> {
        let rel = Path::new(name);
        if components(&self.path, rel)?.len() != 1 {
            return Err(Error::Escape {
                path: self.join(rel),
                base: self.path.clone(),
            });
        }
        let opened = rustix::fs::openat(
            self.fd(),
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        );
        self.sub_dir(rel, opened)
    }

    /// Creates the directory `name` (one level, beneath this one) with exactly `mode`
    /// (whatever the umask) if it does not exist, and opens it. A symlink or a non-directory
    /// there is an error.
    pub fn create_dir(&self, rel: impl AsRef<Path>, mode: u32) -> Result<Dir, Error> {
        let rel = rel.as_ref();
        // Usually there already: one open, no failing mkdirat.
        if let Some(dir) = self.open_dir(rel)? {
            return Ok(dir);
        }
        let (parent, name) = self.parent_of(rel)?;
        let at = parent.as_ref().map_or(self.fd(), |d| d.fd());
        match rustix::fs::mkdirat(at, name, Mode::from_raw_mode(mode)) {
            Ok(()) => {
                let dir = self.require_dir(rel)?;
                rustix::fs::fchmod(&dir.fd, Mode::from_raw_mode(mode))
                    .map_err(|e| io_err("chmod", self.join(rel), e))?;
                let parent_path = self.join(rel);
                let parent_path = parent_path.parent().unwrap_or(&self.path);
                self.hit(FaultPoint::SyncDir, "fsync directory", parent_path)?;
                rustix::fs::fsync(at)
                    .map_err(|e| io_err("fsync directory", parent_path.to_owned(), e))?;
                Ok(dir)
            }
            Err(Errno::EXIST) => self.require_dir(rel),
            Err(e) => Err(io_err("create directory", self.join(rel), e)),
        }
    }

    /// Creates `rel` and its missing parents beneath this one, each with `mode`.
    pub fn create_dir_all(&self, rel: impl AsRef<Path>, mode: u32) -> Result<Dir, Error> {
        let rel = rel.as_ref();
        let names = components(&self.path, rel)?;
        let mut cur = self.try_clone()?;
        for name in names {
            cur = cur.create_dir(name, mode)?;
        }
        cur.path = self.join(rel);
        Ok(cur)
    }

    /// Opens the parent of `rel` (None: this directory) and returns the last name.
    fn parent_of<'a>(&self, rel: &'a Path) -> Result<(Option<Dir>, &'a OsStr), Error> {
        let names = components(&self.path, rel)?;
        let Some((last, parents)) = names.split_last() else {
            return Err(Error::Escape {
                path: self.join(rel),
                base: self.path.clone(),
            });
        };
        if parents.is_empty() {
            return Ok((None, last));
        }
        let parent_rel: PathBuf = parents.iter().collect();
        match self.open_dir(&parent_rel)? {
            Some(d) => Ok((Some(d), last)),
            None => Err(io_err("open", self.join(&parent_rel), Errno::NOENT)),
        }
    }

    /// `lstat` of `rel` beneath this directory (never following the last component; a
    /// symlink on the way is an error). `Ok(None)` when it does not exist.
    pub fn meta(&self, rel: impl AsRef<Path>) -> Result<Option<Meta>, Error> {
        let rel = rel.as_ref();
        let names = components(&self.path, rel)?;
        let Some((last, parents)) = names.split_last() else {
            return rustix::fs::fstat(&self.fd)
                .map(|st| Some(Meta::from_stat(&st)))
                .map_err(|e| io_err("stat", self.path.clone(), e));
        };
        let parent = if parents.is_empty() {
            None
        } else {
            let parent_rel: PathBuf = parents.iter().collect();
            match open_beneath(
                self.fd(),
                &parent_rel,
                OFlags::PATH | OFlags::DIRECTORY,
                Mode::empty(),
            ) {
                Ok(fd) => Some(fd),
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(self.open_error(&parent_rel, e, true)),
            }
        };
        let at = parent.as_ref().map_or(self.fd(), |f| f.as_fd());
        match rustix::fs::statat(at, *last, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(Meta::from_stat(&st))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(io_err("stat", self.join(rel), e)),
        }
    }

    /// Opens the regular file `rel` for reading. `Ok(None)` when it does not exist; anything
    /// but a regular file (symlink, FIFO, device, directory) is an error, and a FIFO never
    /// blocks.
    pub fn open_file(&self, rel: impl AsRef<Path>) -> Result<Option<(File, Meta)>, Error> {
        let rel = rel.as_ref();
        self.check(rel)?;
        let path = || self.join(rel);
        self.hit(FaultPoint::Read, "open", &path())?;
        let fd = match open_beneath(
            self.fd(),
            rel,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(self.open_error(rel, e, false)),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| io_err("stat", path(), e))?;
        let meta = Meta::from_stat(&st);
        if meta.kind != FileKind::File {
            return Err(Error::NotAFile {
                path: path(),
                what: meta.kind,
            });
        }
        Ok(Some((File::from(fd), meta)))
    }

    /// Reads the regular file `rel`, at most `limit` bytes (more is [`Error::TooLarge`]).
    /// `Ok(None)` when it does not exist.
    pub fn read(&self, rel: impl AsRef<Path>, limit: u64) -> Result<Option<Vec<u8>>, Error> {
        let rel = rel.as_ref();
        let Some((file, meta)) = self.open_file(rel)? else {
            return Ok(None);
        };
        read_capped(file, meta.size, limit, &self.join(rel)).map(Some)
    }

    /// Lists this directory (sorted by name), with each entry's type (not following links).
    pub fn entries(&self) -> Result<Vec<Entry>, Error> {
        let mut out = Vec::new();
        list(self.fd(), &self.path, |name, kind| {
            out.push(Entry {
                name: name.to_owned(),
                kind,
            });
        })?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes the file (or symlink, FIFO, ...) `rel`; a directory is an error. Returns
    /// whether something was removed.
    pub fn remove_file(&self, rel: impl AsRef<Path>) -> Result<bool, Error> {
        let rel = rel.as_ref();
        let (parent, name) = self.parent_of(rel)?;
        let at = parent.as_ref().map_or(self.fd(), |d| d.fd());
        self.hit(FaultPoint::Remove, "remove", &self.join(rel))?;
        match rustix::fs::unlinkat(at, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(Errno::ISDIR) => Err(Error::NotAFile {
                path: self.join(rel),
                what: FileKind::Dir,
            }),
            Err(e) => Err(io_err("remove", self.join(rel), e)),
        }
    }

    /// Removes `rel` and, if it is a directory, everything in it, never following a symlink
    /// (a symlink is removed as a link) and with at most two descriptors open at any depth.
    /// Returns whether something was removed. Nothing outside `rel` is ever touched.
    pub fn remove_tree(&self, rel: impl AsRef<Path>) -> Result<bool, Error> {
        let rel = rel.as_ref();
        let (parent, name) = self.parent_of(rel)?;
        let at = parent.as_ref().map_or(self.fd(), |d| d.fd());
        let path = self.join(rel);
        self.hit(FaultPoint::Remove, "remove", &path)?;
        remove_tree_at(at, name, &path)
    }

    /// Renames `from` (beneath this directory) to `to` beneath `to_dir`, replacing a file
    /// there (as `rename(2)`).
    pub fn rename(
        &self,
        from: impl AsRef<Path>,
        to_dir: &Dir,
        to: impl AsRef<Path>,
    ) -> Result<(), Error> {
        let (from, to) = (from.as_ref(), to.as_ref());
        let (fp, fname) = self.parent_of(from)?;
        let (tp, tname) = to_dir.parent_of(to)?;
        let fat = fp.as_ref().map_or(self.fd(), |d| d.fd());
        let tat = tp.as_ref().map_or(to_dir.fd(), |d| d.fd());
        self.hit(FaultPoint::Rename, "rename", &self.join(from))?;
        rustix::fs::renameat(fat, fname, tat, tname).map_err(|e| {
            io_err(
                "rename",
                PathBuf::from(format!(
                    "{} to {}",
                    self.join(from).display(),
                    to_dir.join(to).display()
                )),
                e,
            )
        })
    }

    /// fsyncs this directory, so that creations, renames and removals in it are durable.
    pub fn sync(&self) -> Result<(), Error> {
        self.hit(FaultPoint::SyncDir, "fsync directory", &self.path)?;
        rustix::fs::fsync(&self.fd).map_err(|e| io_err("fsync directory", self.path.clone(), e))
    }

    /// Writes `data` to the file `name` of this directory atomically and durably: a temporary
    /// file `.tmp-<name>-<random>` created with exactly `mode`, written, fsynced, renamed over
    /// `name`, then this directory fsynced. On failure the temporary file is removed (a crash
    /// may leave it: see [`Dir::temp_files`]). Something other than a regular file at `name`
    /// (a directory, a symlink, a FIFO) is an error and is left alone.
    pub fn atomic_write(&self, name: &str, data: &[u8], mode: u32) -> Result<(), Error> {
        let rel = Path::new(name);
        if components(&self.path, rel)?.len() != 1 {
            return Err(Error::Escape {
                path: self.join(rel),
                base: self.path.clone(),
            });
        }
        let target = self.join(name);
        match rustix::fs::statat(self.fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let kind = FileKind::from_mode(st.st_mode);
                if kind == FileKind::Symlink {
                    return Err(Error::Symlink { path: target });
                }
                if kind != FileKind::File {
                    return Err(Error::NotAFile {
                        path: target,
                        what: kind,
                    });
                }
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(io_err("stat", target, e)),
        }
        let (tmp, mut file) = self.create_temp(name, mode)?;
        let tmp_path = self.join(&tmp);
        let result = (|| {
            if let Some(h) = &self.faults
                && let Err(e) = h.hit(FaultPoint::Write)
            {
                let _ = file.write_all(&data[..data.len() / 2]);
                return Err(io_err("write", tmp_path.clone(), e));
            }
            file.write_all(data)
                .map_err(|e| io_err("write", tmp_path.clone(), e))?;
            self.hit(FaultPoint::Sync, "fsync", &tmp_path)?;
            file.sync_all()
                .map_err(|e| io_err("fsync", tmp_path.clone(), e))?;
            self.hit(FaultPoint::Rename, "rename", &tmp_path)?;
            rustix::fs::renameat(self.fd(), tmp.as_str(), self.fd(), name)
                .map_err(|e| io_err("rename", tmp_path.clone(), e))
        })();
        if let Err(e) = result {
            let _ = rustix::fs::unlinkat(self.fd(), tmp.as_str(), AtFlags::empty());
            return Err(e);
        }
        self.sync()
    }

    /// Creates a new temporary file `.tmp-<name>-<random>` with exactly `mode` (the umask
    /// does not apply). Returns its name and the open file.
    pub fn create_temp(&self, name: &str, mode: u32) -> Result<(String, File), Error> {
        for _ in 0..16 {
            let tmp = format!(
                "{TEMP_PREFIX}{name}-{}",
                random_hex(8).map_err(|e| io_err("getrandom", self.path.clone(), e))?
            );
            match rustix::fs::openat(
                self.fd(),
                tmp.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode),
            ) {
                Ok(fd) => {
                    // The final mode from the start, whatever the umask.
                    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| {
                        let _ = rustix::fs::unlinkat(self.fd(), tmp.as_str(), AtFlags::empty());
                        io_err("chmod", self.join(&tmp), e)
                    })?;
                    return Ok((tmp, File::from(fd)));
                }
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(io_err("create temporary file", self.join(&tmp), e)),
            }
        }
        Err(io_err(
            "create temporary file",
            self.path.clone(),
            io::Error::other("no free temporary file name"),
        ))
    }

    /// The temporary files (regular files named [`TEMP_PREFIX`]`*`) in this directory: what
    /// interrupted atomic writes left. Sorted.
    pub fn temp_files(&self) -> Result<Vec<OsString>, Error> {
        Ok(self
            .entries()?
            .into_iter()
            .filter(|e| {
                e.kind == FileKind::File && e.name.as_bytes().starts_with(TEMP_PREFIX.as_bytes())
            })
            .map(|e| e.name)
            .collect())
    }

    /// Creates the symbolic link `rel` (beneath this directory) pointing at `target`. An
    /// existing entry at `rel` is an error (`AlreadyExists`). Not synced: see [`Dir::sync`].
    pub fn symlink(&self, target: impl AsRef<OsStr>, rel: impl AsRef<Path>) -> Result<(), Error> {
        let rel = rel.as_ref();
        let (parent, name) = self.parent_of(rel)?;
        let at = parent.as_ref().map_or(self.fd(), |d| d.fd());
        rustix::fs::symlinkat(target.as_ref(), at, name)
            .map_err(|e| io_err("create symlink", self.join(rel), e))
    }

    /// Creates the new regular file `rel` (beneath this directory) with exactly `mode` and
    /// writes `data` to it. An existing entry at `rel` is an error (`AlreadyExists`); a
    /// symlink is never followed. Neither the file nor the directory is synced: for files
    /// inside a directory that becomes visible only later (by a rename), whose caller syncs
    /// the whole tree first. On failure the file is removed.
    pub fn write_new(&self, rel: impl AsRef<Path>, data: &[u8], mode: u32) -> Result<(), Error> {
        let rel = rel.as_ref();
        let (parent, name) = self.parent_of(rel)?;
        let at = parent.as_ref().map_or(self.fd(), |d| d.fd());
        let path = self.join(rel);
        let fd = rustix::fs::openat(
            at,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .map_err(|e| io_err("create", path.clone(), e))?;
        let result = (|| {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
                .map_err(|e| io_err("chmod", path.clone(), e))?;
            if let Some(h) = &self.faults
                && let Err(e) = h.hit(FaultPoint::Write)
            {
                return Err(io_err("write", path.clone(), e));
            }
            File::from(fd)
                .write_all(data)
                .map_err(|e| io_err("write", path.clone(), e))
        })();
        if result.is_err() {
            let _ = rustix::fs::unlinkat(at, name, AtFlags::empty());
        }
        result
    }

    /// The apparent size of the tree at `rel`, as Go's `directory.Size` in moby counts it
    /// (`du --apparent-size -b` without directories): the sum of the sizes of every entry
    /// that is not a directory (a symlink counts its target's length), each inode once (a
    /// hard-linked file counts once). Nothing is followed; at most two descriptors are open
    /// at any depth.
    pub fn apparent_size(&self, rel: impl AsRef<Path>) -> Result<u64, Error> {
        let rel = rel.as_ref();
        let top = match components(&self.path, rel)?.is_empty() {
            true => self.try_clone()?,
            false => self.require_dir(rel)?,
        };
        apparent_size_of(top.fd, top.path)
    }

    /// Reads the symbolic link `rel` (never following it). At most 4096 bytes.
    pub fn read_link(&self, rel: impl AsRef<Path>) -> Result<Option<OsString>, Error> {
        let rel = rel.as_ref();
        let (parent, name) = self.parent_of(rel)?;
        let at = parent.as_ref().map_or(self.fd(), |d| d.fd());
        match rustix::fs::readlinkat(at, name, Vec::new()) {
            Ok(target) => Ok(Some(OsString::from_vec(target.into_bytes()))),
            Err(Errno::NOENT) => Ok(None),
            Err(Errno::INVAL) => Err(Error::NotAFile {
                path: self.join(rel),
                what: self
                    .meta(rel)
                    .ok()
                    .flatten()
                    .map_or(FileKind::Unknown, |m| m.kind),
            }),
            Err(e) => Err(io_err("read link", self.join(rel), e)),
        }
    }
}

/// Reads `file` (of `size` bytes by `fstat`) up to `limit` bytes.
fn read_capped(file: File, size: u64, limit: u64, path: &Path) -> Result<Vec<u8>, Error> {
    if size > limit {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            size,
            limit,
        });
    }
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // One byte past the limit tells a file that grew since `fstat`.
    let mut take = file.take(limit.saturating_add(1));
    loop {
        match take.read_to_end(&mut buf) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("read", path.to_owned(), e)),
        }
    }
    if buf.len() as u64 > limit {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            size: buf.len() as u64,
            limit,
        });
    }
    Ok(buf)
}

/// Calls `f` for each entry of the directory `fd` (not `.` or `..`).
fn list(fd: BorrowedFd<'_>, path: &Path, mut f: impl FnMut(&OsStr, FileKind)) -> Result<(), Error> {
    // A fresh descriptor: getdents moves the offset of the open file.
    let own = rustix::fs::openat(
        fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err("list", path.to_owned(), e))?;
    let mut buf: Vec<MaybeUninit<u8>> = vec![MaybeUninit::uninit(); 32 * 1024];
    let mut entries = RawDir::new(own.as_fd(), &mut buf);
    while let Some(entry) = entries.next() {
        let entry = entry.map_err(|e| io_err("list", path.to_owned(), e))?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let kind = match entry.file_type() {
            FileType::Unknown => rustix::fs::statat(own.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW)
                .map_or(FileKind::Unknown, |st| FileKind::from_mode(st.st_mode)),
            t => FileKind::from_type(t),
        };
        f(name, kind);
    }
    Ok(())
}

/// One directory being emptied by [`remove_tree_at`].
struct Frame {
    /// Its name in its parent.
    name: OsString,
    /// Its identity, to check that `..` leads back to it.
    dev_ino: (u64, u64),
    /// Subdirectories still to empty and remove.
    pending: Vec<OsString>,
}

fn remove_tree_at(parent: BorrowedFd<'_>, name: &OsStr, path: &Path) -> Result<bool, Error> {
    let st = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(false),
        Err(e) => return Err(io_err("stat", path.to_owned(), e)),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(true),
            Err(e) => Err(io_err("remove", path.to_owned(), e)),
        };
    }
    let open_dir = |at: BorrowedFd<'_>, n: &OsStr| {
        rustix::fs::openat(
            at,
            n,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    // Empties `dir`: removes every non-directory, returns the subdirectories.
    let empty = |dir: BorrowedFd<'_>, at: &Path| -> Result<Vec<OsString>, Error> {
        let mut subdirs = Vec::new();
        let mut files = Vec::new();
        list(dir, at, |n, kind| {
            if kind == FileKind::Dir {
                subdirs.push(n.to_owned());
            } else {
                files.push(n.to_owned());
            }
        })?;
        for f in files {
            match rustix::fs::unlinkat(dir, f.as_os_str(), AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                // It became a directory meanwhile: empty it like the others.
                Err(Errno::ISDIR) => subdirs.push(f),
                Err(e) => return Err(io_err("remove", at.join(&f), e)),
            }
        }
        Ok(subdirs)
    };
    let mut cur = open_dir(parent, name).map_err(|e| io_err("open", path.to_owned(), e))?;
    let top = rustix::fs::fstat(&cur).map_err(|e| io_err("stat", path.to_owned(), e))?;
    let mut cur_path = path.to_owned();
    let mut stack = vec![Frame {
        name: name.to_owned(),
        dev_ino: (top.st_dev, top.st_ino),
        pending: empty(cur.as_fd(), &cur_path)?,
    }];
    while let Some(frame) = stack.last_mut() {
        if let Some(sub) = frame.pending.pop() {
            let sub_path = cur_path.join(&sub);
            match open_dir(cur.as_fd(), &sub) {
                Ok(fd) => {
                    let st =
                        rustix::fs::fstat(&fd).map_err(|e| io_err("stat", sub_path.clone(), e))?;
                    let pending = empty(fd.as_fd(), &sub_path)?;
                    stack.push(Frame {
                        name: sub,
                        dev_ino: (st.st_dev, st.st_ino),
                        pending,
                    });
                    cur = fd;
                    cur_path = sub_path;
                }
                Err(Errno::NOENT) => {}
                // Replaced by a non-directory (a symlink, say) meanwhile: remove that.
                Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                    match rustix::fs::unlinkat(cur.as_fd(), &sub, AtFlags::empty()) {
                        Ok(()) | Err(Errno::NOENT) => {}
                        Err(e) => return Err(io_err("remove", sub_path, e)),
                    }
                }
                Err(e) => return Err(io_err("open", sub_path, e)),
            }
            continue;
        }
        // `cur` is empty now: remove it from its parent.
        let Some(done) = stack.pop() else { break };
        match stack.last() {
            None => {
                drop(cur);
                return match rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
                    Ok(()) | Err(Errno::NOENT) => Ok(true),
                    Err(e) => Err(io_err("remove", path.to_owned(), e)),
                };
            }
            Some(up) => {
                let parent_fd = open_dir(cur.as_fd(), OsStr::new(".."))
                    .map_err(|e| io_err("open", cur_path.join(".."), e))?;
                let st = rustix::fs::fstat(&parent_fd)
                    .map_err(|e| io_err("stat", cur_path.join(".."), e))?;
                if (st.st_dev, st.st_ino) != up.dev_ino {
                    return Err(io_err(
                        "remove",
                        cur_path,
                        io::Error::other("the directory was moved while it was being removed"),
                    ));
                }
                let _ = done.dev_ino;
                cur = parent_fd;
                let _ = cur_path.pop();
                match rustix::fs::unlinkat(cur.as_fd(), &done.name, AtFlags::REMOVEDIR) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    Err(e) => return Err(io_err("remove", cur_path.join(&done.name), e)),
                }
            }
        }
    }
    Ok(true)
}

/// The walk of [`Dir::apparent_size`], from the open directory `top`.
fn apparent_size_of(top: OwnedFd, path: PathBuf) -> Result<u64, Error> {
    let open_dir = |at: BorrowedFd<'_>, n: &OsStr| {
        rustix::fs::openat(
            at,
            n,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let mut seen: std::collections::HashSet<(u64, u64)> = std::collections::HashSet::new();
    let mut total: u64 = 0;
    // Adds the non-directories of `dir`, returns its subdirectories.
    let mut scan = |dir: BorrowedFd<'_>, at: &Path| -> Result<Vec<OsString>, Error> {
        let mut names = Vec::new();
        list(dir, at, |n, _| names.push(n.to_owned()))?;
        let mut subdirs = Vec::new();
        for n in names {
            let st = match rustix::fs::statat(dir, n.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(io_err("stat", at.join(&n), e)),
            };
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                subdirs.push(n);
                continue;
            }
            let size = u64::try_from(st.st_size).unwrap_or(0);
            if size == 0 || !seen.insert((st.st_dev, st.st_ino)) {
                continue;
            }
            total = total.saturating_add(size);
        }
        Ok(subdirs)
    };
    let st = rustix::fs::fstat(&top).map_err(|e| io_err("stat", path.clone(), e))?;
    let mut cur = top;
    let mut cur_path = path;
    let mut stack = vec![Frame {
        name: OsString::new(),
        dev_ino: (st.st_dev, st.st_ino),
        pending: scan(cur.as_fd(), &cur_path)?,
    }];
    while let Some(frame) = stack.last_mut() {
        if let Some(sub) = frame.pending.pop() {
            let sub_path = cur_path.join(&sub);
            match open_dir(cur.as_fd(), &sub) {
                Ok(fd) => {
                    let st =
                        rustix::fs::fstat(&fd).map_err(|e| io_err("stat", sub_path.clone(), e))?;
                    let pending = scan(fd.as_fd(), &sub_path)?;
                    stack.push(Frame {
                        name: sub,
                        dev_ino: (st.st_dev, st.st_ino),
                        pending,
                    });
                    cur = fd;
                    cur_path = sub_path;
                }
                // Gone or replaced meanwhile: not counted.
                Err(Errno::NOENT | Errno::LOOP | Errno::NOTDIR) => {}
                Err(e) => return Err(io_err("open", sub_path, e)),
            }
            continue;
        }
        let Some(_done) = stack.pop() else { break };
        let Some(up) = stack.last() else { break };
        let parent_fd = open_dir(cur.as_fd(), OsStr::new(".."))
            .map_err(|e| io_err("open", cur_path.join(".."), e))?;
        let st =
            rustix::fs::fstat(&parent_fd).map_err(|e| io_err("stat", cur_path.join(".."), e))?;
        if (st.st_dev, st.st_ino) != up.dev_ino {
            return Err(io_err(
                "measure",
                cur_path,
                io::Error::other("the directory was moved while it was being measured"),
            ));
        }
        cur = parent_fd;
        let _ = cur_path.pop();
    }
    Ok(total)
}

/// `2 * bytes` random lowercase hex characters from `getrandom(2)`.
pub fn random_hex(bytes: usize) -> io::Result<String> {
    let mut raw = vec![0u8; bytes];
    let mut filled = 0;
    while filled < raw.len() {
        match rustix::rand::getrandom(&mut raw[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes);
    for b in raw {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    Ok(out)
}

/// Escapes `bytes` for a one-line message: at most `max` bytes shown, control characters
/// and invalid UTF-8 escaped, `…` when cut. Findings never quote more of a file than this.
pub fn escaped_prefix(bytes: &[u8], max: usize) -> String {
    let cut = bytes.len() > max;
    let shown = &bytes[..bytes.len().min(max)];
    let mut out = String::new();
    for chunk in shown.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if cut {
        out.push('…');
    }
    out
}

/// Starts writing the dirty pages of `len` bytes of `file` from `offset` (0 for the rest of
/// the file) to disk without waiting for them (`sync_file_range(SYNC_FILE_RANGE_WRITE)`).
///
/// This makes nothing durable by itself: a later `fsync` or `syncfs` still has to. It lets
/// the disk write a file while the next ones are produced, so that the final sync waits for
/// little. Errors are ignored (the final sync reports them); where the call is missing it
/// does nothing.
///
/// ```
/// use std::io::Write;
/// use std::os::fd::AsFd;
/// # fn main() -> std::io::Result<()> {
/// let tmp = tempfile::tempdir()?;
/// let mut file = std::fs::File::create(tmp.path().join("layer.bin"))?;
/// for chunk in [[1u8; 4096], [2u8; 4096]] {
///     file.write_all(&chunk)?;
/// }
/// durable_fs::start_writeback(file.as_fd(), 0, 0); // the disk starts now...
/// file.sync_all()?; // ...and this waits for less
/// # Ok(())
/// # }
/// ```
pub fn start_writeback(file: BorrowedFd<'_>, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range reads no memory of ours; the descriptor is borrowed, so open.
    #[allow(unsafe_code)]
    let _ = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
}
