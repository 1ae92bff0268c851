//! Applying a layer's tar members to a root directory the way dockerd 20.10's
//! `pkg/archive.UnpackLayer` does (inside its chroot): whiteouts, opaque directories, hard
//! and symbolic links, devices, ownership, modes, extended attributes and times.
//!
//! Security: nothing is ever written outside the root. Member names are cleaned; a name or a
//! hard-link target that climbs above the root (`../x`) is refused, an absolute name is taken
//! relative to the root (as dockerd does). Symbolic links met on the way to a member are
//! resolved *inside* the root, as they are in dockerd's chroot: an absolute target or `..`
//! never leaves the root. The member itself is never followed (it is removed and recreated,
//! and files are created with `O_NOFOLLOW | O_EXCL`).
//!
//! Every system call is made relative to a directory descriptor opened one component at a
//! time with `O_NOFOLLOW | O_DIRECTORY` from the root's descriptor, so that neither a
//! member of the layer nor a concurrent change can redirect a write through a symbolic link:
//! symbolic links are read with `readlinkat` and resolved by this module, never by the
//! kernel. Descriptors of recently used directories are kept (a bounded cache keyed by
//! path), so applying a member costs the same at any depth. Whiteouts naming `.`, `..` or
//! nothing, and whiteouts or opaque markers in a directory reached through a symbolic link,
//! are refused. Directory times are restored at the end by reopening each directory the same
//! way; a directory that is no longer one (replaced by a symbolic link, removed) is an error.
//!
//! [`apply_diff_with`] creates small regular files on worker threads, so that the kernel's
//! work of creating files overlaps: the thread reading the stream resolves the parent
//! directory (from the cache of descriptors) and reads the content; a worker creates the
//! file with `O_EXCL` in that directory and sets its metadata. The result is that of applying
//! the members one by one in stream order (see `Pool` for why): anything else waits for the
//! files in flight, a file that finds something at its name is handed back and replaced in
//! stream order, and the first error in stream order is the one reported.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use rustix::fs::{
    AtFlags, CWD, Dir, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags,
};
use rustix::io::Errno;

use crate::content::header::{self, TarHeader, Timestamp};
use crate::content::{ContentError, DiffStream};
use crate::tarsplit::clean_path;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";
const WHITEOUT_LINK_DIR: &[u8] = b".wh..wh.plnk";
const MAX_SYMLINKS: usize = 255;
const COPY_BUF: usize = 1 << 20;
/// Directory descriptors kept open by the cache of an [`Applier`].
const DIR_CACHE: usize = 128;
/// Directory descriptors kept open while clearing a tree; deeper, directories are reopened
/// through `..` (and checked by device and inode).
const WALK_FDS: usize = 32;

/// `O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC`: a directory, never through a symlink.
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Splits a member name into its cleaned components relative to the root. An absolute name
/// is taken relative to the root; a name that climbs above the root is refused.
pub(crate) fn member_components(name: &[u8]) -> Result<Vec<Vec<u8>>, ContentError> {
    let cleaned = clean_path(name);
    let rel: &[u8] = cleaned.strip_prefix(b"/").unwrap_or(&cleaned);
    let comps: Vec<Vec<u8>> = rel
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
        .collect();
    if comps.first().is_some_and(|c| c == b"..") {
        return Err(ContentError::Breakout {
            name: name.to_vec(),
            reason: "the path leads outside the layer".into(),
        });
    }
    Ok(comps)
}

fn os(c: &[u8]) -> &OsStr {
    OsStr::from_bytes(c)
}

/// `a/b` for components `[a, b]`; empty for the root.
fn join_bytes(comps: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(comps.iter().map(|c| c.len() + 1).sum());
    for c in comps {
        push_comp(&mut out, c);
    }
    out
}

/// Appends a component to a relative path (`""` is the root).
fn push_comp(path: &mut Vec<u8>, c: &[u8]) {
    if !path.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(c);
}

/// Removes the last component of a relative path (`""` stays `""`).
fn pop_comp(path: &mut Vec<u8>) {
    let cut = path.iter().rposition(|&b| b == b'/').unwrap_or(0);
    path.truncate(cut);
}

fn errno_io(e: Errno) -> io::Error {
    io::Error::from(e)
}

fn ctx(e: Errno, what: impl std::fmt::Display) -> io::Error {
    let io = io::Error::from(e);
    io::Error::new(io.kind(), format!("{what}: {io}"))
}

/// Opens the directory `name` of `dir` without following a symbolic link.
fn open_dir_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(dir, os(name), dir_flags(), Mode::empty())
}

fn same_file(a: &rustix::fs::Stat, b: &rustix::fs::Stat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

fn file_type(st: &rustix::fs::Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// Creates the regular file `name` of `dir`, empty, never following or replacing anything
/// already there, with the permission bits of `mode` (less the umask), as dockerd's
/// `os.OpenFile(path, O_CREATE|O_WRONLY, mode)`: [`set_meta`] then finds nothing to change
/// in the common case.
fn create_file_at(dir: BorrowedFd<'_>, name: &[u8], mode: i64) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        os(name),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode((mode & 0o777) as u32),
    )
}

/// The `lstat` of the entry `name` of `dir` (never following it); `None` when it does not
/// exist.
fn lstat_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<rustix::fs::Stat>> {
    match rustix::fs::statat(dir, os(name), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(errno_io(e)),
    }
}

/// A directory of the tree: its path relative to the root with no symbolic link in it, and
/// a descriptor.
#[derive(Debug, Clone)]
struct DirRef {
    real: Vec<u8>,
    fd: Arc<OwnedFd>,
    /// Whether resolving the member's path crossed a symbolic link.
    via_symlink: bool,
}

#[derive(Debug)]
struct CacheEntry {
    /// The real path when the key (a member path) crossed a symbolic link.
    real: Option<Vec<u8>>,
    fd: Arc<OwnedFd>,
    used: u64,
}

/// A tree rooted at a directory descriptor, with the descriptors of recently used
/// directories. Keys are member paths (relative, cleaned); an entry without `real` is a
/// directory at that very path (no symbolic link on the way).
#[derive(Debug)]
struct Tree {
    root: PathBuf,
    root_fd: Arc<OwnedFd>,
    cache: HashMap<Vec<u8>, CacheEntry>,
    tick: u64,
}

/// How a component of a path being resolved came about.
enum Step {
    /// Component `i` of the member path.
    Member(usize),
    /// A component of a symbolic link's target.
    Link(Vec<u8>),
    /// Member components `..i` are resolved: cache the result.
    Mark(usize),
}

impl Tree {
    fn open(root: &Path) -> io::Result<Tree> {
        let fd = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_io)?;
        Ok(Tree {
            root: root.to_path_buf(),
            root_fd: Arc::new(fd),
            cache: HashMap::new(),
            tick: 0,
        })
    }

    fn root_ref(&self) -> DirRef {
        DirRef {
            real: Vec::new(),
            fd: self.root_fd.clone(),
            via_symlink: false,
        }
    }

    /// The path of `rel` for messages.
    fn display(&self, rel: &[u8]) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(os(rel))
        }
    }

    fn get(&mut self, key: &[u8]) -> Option<DirRef> {
        self.tick += 1;
        let tick = self.tick;
        let e = self.cache.get_mut(key)?;
        e.used = tick;
        Some(DirRef {
            real: e.real.clone().unwrap_or_else(|| key.to_vec()),
            fd: e.fd.clone(),
            via_symlink: e.real.is_some(),
        })
    }

    /// The cached directory at real path `real` (not one reached through a symlink).
    fn get_real(&mut self, real: &[u8]) -> Option<Arc<OwnedFd>> {
        if real.is_empty() {
            return Some(self.root_fd.clone());
        }
        self.tick += 1;
        let tick = self.tick;
        let e = self.cache.get_mut(real)?;
        if e.real.is_some() {
            return None;
        }
        e.used = tick;
        Some(e.fd.clone())
    }

    fn insert(&mut self, key: Vec<u8>, real: Option<Vec<u8>>, fd: Arc<OwnedFd>) {
        if key.is_empty() {
            return;
        }
        if self.cache.len() >= DIR_CACHE && !self.cache.contains_key(&key) {
            let oldest = self
                .cache
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.cache.remove(&k);
            }
        }
        self.tick += 1;
        self.cache.insert(
            key,
            CacheEntry {
                real,
                fd,
                used: self.tick,
            },
        );
    }

    /// Forgets what a removal of the directory at `real` (or of everything in it when
    /// `contents_only`) may have made stale: directories under it and every path resolved
    /// through a symbolic link.
    fn removed_dir(&mut self, real: &[u8], contents_only: bool) {
        self.cache.retain(|k, e| {
            if e.real.is_some() {
                return false;
            }
            let under =
                real.is_empty() || (k.starts_with(real) && k.get(real.len()) == Some(&b'/'));
            !(under || (!contents_only && k == real))
        });
    }

    /// Forgets every path resolved through a symbolic link (one was removed).
    fn removed_symlink(&mut self) {
        self.cache.retain(|_, e| e.real.is_none());
    }

    /// Opens the directory at real path `real` (no symbolic link in it), one component at a
    /// time from the nearest cached ancestor, never following a symbolic link.
    fn dir_by_real(&mut self, real: &[u8]) -> io::Result<Arc<OwnedFd>> {
        if let Some(fd) = self.get_real(real) {
            return Ok(fd);
        }
        // The nearest cached ancestor.
        let mut cut = real.len();
        let (mut fd, mut pos) = loop {
            cut = real[..cut].iter().rposition(|&b| b == b'/').unwrap_or(0);
            if let Some(fd) = self.get_real(&real[..cut]) {
                break (fd, cut);
            }
        };
        while pos < real.len() {
            let start = if pos == 0 { 0 } else { pos + 1 };
            let end = real[start..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(real.len(), |i| start + i);
            let next = open_dir_at(fd.as_fd(), &real[start..end]).map_err(|e| match e {
                Errno::LOOP | Errno::NOTDIR => ctx(
                    Errno::NOTDIR,
                    format!(
                        "{} is no longer a directory",
                        self.display(&real[..end]).display()
                    ),
                ),
                e => ctx(e, self.display(&real[..end]).display()),
            })?;
            fd = Arc::new(next);
            self.insert(real[..end].to_vec(), None, fd.clone());
            pos = end;
        }
        Ok(fd)
    }

    /// Resolves the directory `comps` (member components) inside the root, following
    /// symbolic links as in a chroot: an absolute target restarts at the root, `..` stops at
    /// the root. With `create`, missing member components are created (mode 0755, like
    /// dockerd's `MkdirAll`); a missing directory named by a symbolic link is an error, as
    /// in dockerd.
    fn resolve_dir(&mut self, comps: &[Vec<u8>], create: bool) -> io::Result<DirRef> {
        let key = join_bytes(comps);
        if comps.is_empty() {
            return Ok(self.root_ref());
        }
        if let Some(d) = self.get(&key) {
            return Ok(d);
        }
        // The longest cached prefix of the member path.
        let mut ends = Vec::with_capacity(comps.len());
        let mut n = 0;
        for (i, c) in comps.iter().enumerate() {
            n += c.len() + usize::from(i > 0);
            ends.push(n);
        }
        let mut start = 0;
        let mut cur = self.root_ref();
        for k in (1..comps.len()).rev() {
            if let Some(d) = self.get(&key[..ends[k - 1]]) {
                cur = d;
                start = k;
                break;
            }
        }
        let mut queue: VecDeque<Step> = VecDeque::new();
        for i in start..comps.len() {
            queue.push_back(Step::Member(i));
            queue.push_back(Step::Mark(i + 1));
        }
        let mut links = 0;
        while let Some(step) = queue.pop_front() {
            let (c, from_link): (&[u8], bool) = match &step {
                Step::Mark(i) => {
                    if cur.via_symlink {
                        self.insert(
                            key[..ends[i - 1]].to_vec(),
                            Some(cur.real.clone()),
                            cur.fd.clone(),
                        );
                    }
                    continue;
                }
                Step::Member(i) => (&comps[*i], false),
                Step::Link(c) => (c, true),
            };
            if c.is_empty() || c == b"." {
                continue;
            }
            if c == b".." {
                if !cur.real.is_empty() {
                    pop_comp(&mut cur.real);
                    cur.fd = self.dir_by_real(&cur.real)?;
                }
                continue;
            }
            let mut child = cur.real.clone();
            push_comp(&mut child, c);
            if let Some(fd) = self.get_real(&child) {
                cur.real = child;
                cur.fd = fd;
                continue;
            }
            match open_dir_at(cur.fd.as_fd(), c) {
                Ok(fd) => {
                    let fd = Arc::new(fd);
                    self.insert(child.clone(), None, fd.clone());
                    cur.real = child;
                    cur.fd = fd;
                }
                Err(Errno::LOOP | Errno::NOTDIR) => {
                    let target = match rustix::fs::readlinkat(cur.fd.as_fd(), os(c), Vec::new()) {
                        Ok(t) => t.into_bytes(),
                        Err(Errno::INVAL) => {
                            return Err(ctx(
                                Errno::NOTDIR,
                                format!("{} is not a directory", self.display(&child).display()),
                            ));
                        }
                        Err(e) => return Err(ctx(e, self.display(&child).display())),
                    };
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!(
                                "too many symbolic links resolving {}",
                                self.display(&key).display()
                            ),
                        ));
                    }
                    cur.via_symlink = true;
                    if target.starts_with(b"/") {
                        cur.real.clear();
                        cur.fd = self.root_fd.clone();
                    }
                    for part in target.split(|&b| b == b'/').rev() {
                        queue.push_front(Step::Link(part.to_vec()));
                    }
                }
                Err(Errno::NOENT) if create && !from_link => {
                    rustix::fs::mkdirat(cur.fd.as_fd(), os(c), Mode::from_raw_mode(0o755))
                        .map_err(|e| {
                            ctx(
                                e,
                                format!("create directory {}", self.display(&child).display()),
                            )
                        })?;
                    let fd = open_dir_at(cur.fd.as_fd(), c)
                        .map_err(|e| ctx(e, self.display(&child).display()))?;
                    rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o755))
                        .map_err(|e| ctx(e, format!("chmod {}", self.display(&child).display())))?;
                    let fd = Arc::new(fd);
                    self.insert(child.clone(), None, fd.clone());
                    cur.real = child;
                    cur.fd = fd;
                }
                Err(Errno::NOENT) if from_link => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "{} does not exist (a symbolic link to a missing directory)",
                            self.display(&child).display()
                        ),
                    ));
                }
                Err(e) => return Err(ctx(e, self.display(&child).display())),
            }
        }
        Ok(cur)
    }
}

/// A directory being cleared by [`clear_dir`].
struct Level {
    /// `None` while closed to bound the number of open descriptors.
    dir: Option<Dir>,
    stat: rustix::fs::Stat,
    /// Its name in its parent (empty for the top).
    name: Vec<u8>,
    /// Length of the walk's path buffer for this level.
    len: usize,
    /// Removed entirely (not kept) once cleared.
    remove: bool,
    /// Kept entries already visited (a reopened directory is read from the start again).
    seen: HashSet<Vec<u8>>,
}

fn level_fd(l: &Level) -> io::Result<BorrowedFd<'_>> {
    match &l.dir {
        Some(d) => d.fd().map_err(errno_io),
        None => Err(io::Error::other("directory closed")),
    }
}

/// Clears the directory open as `top` (at relative path `top_path`): every entry for which
/// `keep(path)` is false is removed with everything under it, kept directories are cleared
/// the same way (dockerd's opaque directories); with `keep` always false, this empties the
/// directory. Never follows a symbolic link and holds at most [`WALK_FDS`] descriptors
/// whatever the depth: deeper, a directory is reopened through `..` from its child and
/// checked by device and inode.
fn clear_dir(top: BorrowedFd<'_>, top_path: &[u8], keep: &dyn Fn(&[u8]) -> bool) -> io::Result<()> {
    let stat = rustix::fs::fstat(top).map_err(errno_io)?;
    let dir = Dir::read_from(top).map_err(errno_io)?;
    let mut path = top_path.to_vec();
    let mut stack = vec![Level {
        dir: Some(dir),
        stat,
        name: Vec::new(),
        len: path.len(),
        remove: false,
        seen: HashSet::new(),
    }];
    while let Some(level) = stack.last_mut() {
        let Some(dir) = level.dir.as_mut() else {
            return Err(io::Error::other("directory closed"));
        };
        let ent = match dir.read() {
            Some(ent) => ent.map_err(errno_io)?,
            None => {
                // Cleared: remove it from its parent unless it is kept.
                let Some(child) = stack.pop() else { break };
                let Some(parent) = stack.last_mut() else {
                    break;
                };
                if parent.dir.is_none() {
                    let fd =
                        rustix::fs::openat(level_fd(&child)?, "..", dir_flags(), Mode::empty())
                            .map_err(errno_io)?;
                    let st = rustix::fs::fstat(&fd).map_err(errno_io)?;
                    if !same_file(&st, &parent.stat) {
                        return Err(io::Error::other(format!(
                            "{} was moved while being cleared",
                            String::from_utf8_lossy(&path[..parent.len])
                        )));
                    }
                    parent.dir = Some(Dir::new(fd).map_err(errno_io)?);
                }
                path.truncate(parent.len);
                if child.remove {
                    rustix::fs::unlinkat(level_fd(parent)?, os(&child.name), AtFlags::REMOVEDIR)
                        .map_err(errno_io)?;
                }
                continue;
            }
        };
        let name = ent.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let name = name.to_vec();
        path.truncate(level.len);
        push_comp(&mut path, &name);
        let kept = !level.remove && keep(&path);
        if kept && !level.seen.insert(name.clone()) {
            continue;
        }
        let fd = level_fd(level)?;
        let is_dir = match ent.file_type() {
            FileType::Directory => true,
            FileType::Unknown => {
                lstat_at(fd, &name)?.is_some_and(|st| file_type(&st) == FileType::Directory)
            }
            _ => false,
        };
        if !is_dir {
            if !kept {
                match rustix::fs::unlinkat(fd, os(&name), AtFlags::empty()) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    Err(e) => return Err(errno_io(e)),
                }
            }
            continue;
        }
        let child = open_dir_at(fd, &name).map_err(errno_io)?;
        let stat = rustix::fs::fstat(&child).map_err(errno_io)?;
        let remove = !kept;
        let len = path.len();
        stack.push(Level {
            dir: Some(Dir::new(child).map_err(errno_io)?),
            stat,
            name,
            len,
            remove,
            seen: HashSet::new(),
        });
        if stack.len() > WALK_FDS {
            let i = stack.len() - WALK_FDS - 1;
            stack[i].dir = None;
        }
    }
    Ok(())
}

/// Removes the entry `name` of `dir` and, if it is a directory, everything under it
/// (without following symbolic links). Returns the kind removed, `None` if there was none.
fn remove_all_at(dir: BorrowedFd<'_>, name: &[u8], path: &[u8]) -> io::Result<Option<FileType>> {
    let Some(st) = lstat_at(dir, name)? else {
        return Ok(None);
    };
    let kind = file_type(&st);
    if kind == FileType::Directory {
        let fd = open_dir_at(dir, name).map_err(errno_io)?;
        clear_dir(fd.as_fd(), path, &|_| false)?;
        drop(fd);
        rustix::fs::unlinkat(dir, os(name), AtFlags::REMOVEDIR).map_err(errno_io)?;
    } else {
        rustix::fs::unlinkat(dir, os(name), AtFlags::empty()).map_err(errno_io)?;
    }
    Ok(Some(kind))
}

fn timespec(t: Timestamp) -> Timespec {
    Timespec {
        tv_sec: t.secs,
        tv_nsec: i64::from(t.nanos),
    }
}

fn timestamps(atime: Timestamp, mtime: Timestamp) -> Timestamps {
    Timestamps {
        last_access: timespec(atime),
        last_modification: timespec(mtime),
    }
}

/// Go's `system.Chtimes` clamps times outside [epoch, year 2262] to the epoch.
fn clamp(t: Timestamp) -> Timestamp {
    const MAX_SECS: i64 = i64::MAX / 1_000_000_000;
    if t.secs < 0 || t.secs > MAX_SECS {
        Timestamp::default()
    } else {
        t
    }
}

/// `/proc/self/fd/<fd>`, through which a descriptor (even an `O_PATH` one) can be used by
/// calls that take a path.
fn proc_fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Sets the mode of the entry `name` of `dir`, which must not be a symbolic link: through an
/// `O_PATH | O_NOFOLLOW` descriptor of it (`chmod` on `/proc/self/fd/N`), or, without
/// `/proc`, by name after checking it is not a symbolic link.
pub(crate) fn chmod_at(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<()> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno_io)?;
    let st = rustix::fs::fstat(&fd).map_err(errno_io)?;
    if file_type(&st) == FileType::Symlink {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot change the mode of a symbolic link",
        ));
    }
    let mode = Mode::from_raw_mode(mode);
    match rustix::fs::chmodat(CWD, proc_fd_path(fd.as_fd()), mode, AtFlags::empty()) {
        Err(Errno::NOENT) if !Path::new("/proc/self/fd").exists() => {
            rustix::fs::chmodat(dir, name, mode, AtFlags::empty()).map_err(errno_io)
        }
        r => r.map_err(errno_io),
    }
}

/// Sets one extended attribute on the entry `name` of `dir` without following it (through
/// `/proc/self/fd/<dir>/<name>`); `Ok(false)` when the file system refuses it (ENOTSUP,
/// EPERM), which dockerd ignores.
pub(crate) fn lsetxattr_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    key: &[u8],
    value: &[u8],
) -> io::Result<bool> {
    let p = proc_fd_path(dir).join(name);
    xattr_result(rustix::fs::lsetxattr(
        p,
        os(key),
        value,
        XattrFlags::empty(),
    ))
}

/// Sets one extended attribute on an open file or directory; see [`lsetxattr_at`].
pub(crate) fn fsetxattr(fd: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> io::Result<bool> {
    xattr_result(rustix::fs::fsetxattr(
        fd,
        os(key),
        value,
        XattrFlags::empty(),
    ))
}

fn xattr_result(r: Result<(), Errno>) -> io::Result<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(Errno::NOTSUP | Errno::PERM) => Ok(false),
        Err(e) => Err(errno_io(e)),
    }
}

pub(crate) fn is_root_user() -> bool {
    rustix::process::geteuid().is_root()
}

/// Sets owner, extended attributes, mode and times of a member just created, in
/// dockerd's order (the mode after the owner, which may clear set-id bits). Symbolic
/// links (and hard links to them) keep their mode and get their times without being
/// followed. The one code path for this, whether the member is applied by the main
/// thread or by a worker.
fn set_meta(
    as_root: bool,
    h: &TarHeader,
    dir: BorrowedFd<'_>,
    base: Option<&[u8]>,
    created: Created,
    is_symlink: bool,
    path: &Path,
) -> Result<(), ContentError> {
    let name = base.map(os);
    let fd = match &created {
        Created::Fd(fd) => Some(fd.as_fd()),
        Created::Entry => None,
    };
    let entry = |what: &'static str| -> Result<&OsStr, ContentError> {
        name.ok_or_else(|| ContentError::apply(what, path, io::Error::other("no entry name")))
    };
    let mode = (h.mode & 0o7777) as u32;
    // What an entry created through a descriptor already has (its creator's owner, the
    // mode it was created with): a `stat` costs less than a `chown` or `chmod`, each of
    // which is a journalled inode change.
    let now = match fd {
        Some(fd) => Some(
            rustix::fs::fstat(fd).map_err(|e| ContentError::apply("stat", path, errno_io(e)))?,
        ),
        None => None,
    };
    let mut chowned = false;
    if as_root
        && now
            .as_ref()
            .is_none_or(|st| (st.st_uid, st.st_gid) != (h.uid as u32, h.gid as u32))
    {
        let (uid, gid) = (
            Some(rustix::fs::Uid::from_raw(h.uid as u32)),
            Some(rustix::fs::Gid::from_raw(h.gid as u32)),
        );
        match fd {
            Some(fd) => rustix::fs::fchown(fd, uid, gid),
            None => rustix::fs::chownat(dir, entry("lchown")?, uid, gid, AtFlags::SYMLINK_NOFOLLOW),
        }
        .map_err(|e| ContentError::apply("lchown", path, errno_io(e)))?;
        chowned = true;
    }
    // A chown clears set-user-ID and set-group-ID bits: then the mode is set again.
    let chmod_needed = chowned || now.as_ref().is_none_or(|st| (st.st_mode & 0o7777) != mode);
    let mut ignored = Vec::new();
    for (k, v) in &h.xattrs {
        let set = match fd {
            Some(fd) => fsetxattr(fd, k, v),
            None => lsetxattr_at(dir, entry("set xattr on")?, k, v),
        }
        .map_err(|e| ContentError::apply("set xattr on", path, e))?;
        if !set {
            ignored.push(String::from_utf8_lossy(k).into_owned());
        }
    }
    if !ignored.is_empty() {
        tracing::warn!(path = %path.display(), xattrs = ?ignored, "ignored xattrs in archive: underlying filesystem doesn't support them");
    }
    let atime = match h.atime {
        Some(a) if (a.secs, a.nanos) >= (h.mtime.secs, h.mtime.nanos) => a,
        _ => h.mtime,
    };
    if h.typeflag == header::TYPE_SYMLINK {
        let n = entry("set times on")?;
        rustix::fs::utimensat(
            dir,
            n,
            &timestamps(atime, h.mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| ContentError::apply("set times on", path, errno_io(e)))?;
    } else if !is_symlink {
        let ts = timestamps(clamp(atime), clamp(h.mtime));
        match fd {
            Some(fd) => {
                if chmod_needed {
                    rustix::fs::fchmod(fd, Mode::from_raw_mode(mode))
                        .map_err(|e| ContentError::apply("chmod", path, errno_io(e)))?;
                }
                rustix::fs::futimens(fd, &ts)
            }
            None => {
                let n = entry("chmod")?;
                chmod_at(dir, n, mode).map_err(|e| ContentError::apply("chmod", path, e))?;
                rustix::fs::utimensat(dir, n, &ts, AtFlags::SYMLINK_NOFOLLOW)
            }
        }
        .map_err(|e| ContentError::apply("set times on", path, errno_io(e)))?;
    }
    Ok(())
}

/// How whiteouts of a layer are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhiteoutFormat {
    /// The root holds the whole file system (vfs): `.wh.NAME` removes `NAME`, `.wh..wh..opq`
    /// empties its directory of what lower layers put there (dockerd's `UnpackLayer`).
    #[default]
    Remove,
    /// The root holds only this layer's changes (overlay2's `diff/`): `.wh.NAME` becomes a
    /// 0/0 character device `NAME` owned as the member, `.wh..wh..opq` the extended attribute
    /// `trusted.overlay.opaque=y` on its directory, and an existing root is left as it is
    /// (dockerd's `Unpack` with its overlay whiteout converter).
    Overlay,
}

/// The extended attribute that marks an overlay directory opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Applies members to a root directory; see the [module docs](self).
#[derive(Debug)]
pub struct Applier {
    root: PathBuf,
    format: WhiteoutFormat,
    /// Opened on first use.
    tree: Option<Tree>,
    /// Real paths (relative to the root) of the entries this layer created.
    unpacked: HashSet<Vec<u8>>,
    /// Directories whose times are set again at the end: real path, atime, mtime.
    dirs: Vec<(Vec<u8>, Option<Timestamp>, Timestamp)>,
    buf: Vec<u8>,
    as_root: bool,
    /// Workers creating small regular files, when applying a [`DiffStream`].
    pool: Option<Pool>,
}

/// A file or directory just created, for setting its metadata.
enum Created {
    /// An open regular file or directory.
    Fd(OwnedFd),
    /// Anything else, by name in its (open) parent directory.
    Entry,
}

impl Applier {
    /// An applier writing into `root`, which must exist.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self::with_format(root, WhiteoutFormat::Remove)
    }

    /// An applier writing into `root` (which must exist), applying whiteouts as `format`.
    pub fn with_format(root: impl Into<PathBuf>, format: WhiteoutFormat) -> Self {
        Applier {
            root: root.into(),
            format,
            tree: None,
            unpacked: HashSet::new(),
            dirs: Vec::new(),
            buf: Vec::new(),
            as_root: is_root_user(),
            pool: None,
        }
    }

    fn tree(&mut self) -> Result<&mut Tree, ContentError> {
        if self.tree.is_none() {
            let t =
                Tree::open(&self.root).map_err(|e| ContentError::apply("open", &self.root, e))?;
            self.tree = Some(t);
        }
        match self.tree.as_mut() {
            Some(t) => Ok(t),
            None => Err(ContentError::apply(
                "open",
                &self.root,
                io::Error::other("layer root not open"),
            )),
        }
    }

    /// Applies one member; `content` yields its data (for regular files).
    pub fn apply(&mut self, h: &TarHeader, content: &mut dyn Read) -> Result<(), ContentError> {
        self.apply_from(h, Source::Read(content))
    }

    fn apply_from(&mut self, h: &TarHeader, content: Source<'_, '_>) -> Result<(), ContentError> {
        let comps = member_components(&h.name)?;
        let member_path = self.root.join(os(&join_bytes(&comps)));
        let (parent_comps, base) = match comps.split_last() {
            Some((b, p)) => (p, Some(b.clone())),
            None => (&comps[..0], None),
        };
        if let Some(orig) = base
            .as_deref()
            .and_then(|b| b.strip_prefix(WHITEOUT_PREFIX))
            && base.as_deref() != Some(WHITEOUT_OPAQUE)
            && !comps[0].starts_with(WHITEOUT_META_PREFIX)
            && (orig.is_empty() || orig == b"." || orig == b"..")
        {
            return Err(ContentError::Breakout {
                name: h.name.clone(),
                reason: format!("a whiteout cannot name {:?}", String::from_utf8_lossy(orig)),
            });
        }
        // dockerd makes sure the parent exists first, for every member.
        let tree = self.tree()?;
        let parent = tree
            .resolve_dir(parent_comps, true)
            .map_err(|e| ContentError::apply("resolve the directory of", &member_path, e))?;
        if comps
            .first()
            .is_some_and(|c| c.starts_with(WHITEOUT_META_PREFIX))
        {
            let is_opq = comps.len() == 1 && comps[0] == WHITEOUT_OPAQUE;
            if !is_opq {
                tracing::debug!(name = %String::from_utf8_lossy(&h.name), "skipping AUFS metadata");
                return Ok(());
            }
        }
        let Some(base) = base else {
            // The root itself: only a directory member (metadata) can apply to it.
            if h.typeflag == header::TYPE_XGLOBAL {
                return Ok(());
            }
            if h.typeflag != header::TYPE_DIR {
                return Err(ContentError::Breakout {
                    name: h.name.clone(),
                    reason: "a non-directory member cannot replace the layer root".into(),
                });
            }
            if self.format == WhiteoutFormat::Overlay {
                // `Unpack` skips the root when it exists (it always does here).
                return Ok(());
            }
            let fd = rustix::fs::openat(&*parent.fd, ".", dir_flags(), Mode::empty())
                .map_err(|e| ContentError::apply("open", &member_path, errno_io(e)))?;
            set_meta(
                self.as_root,
                h,
                parent.fd.as_fd(),
                None,
                Created::Fd(fd),
                false,
                &member_path,
            )?;
            self.dirs.push((Vec::new(), h.atime, h.mtime));
            self.unpacked.insert(Vec::new());
            return Ok(());
        };
        let mut real = parent.real.clone();
        push_comp(&mut real, &base);
        if let Some(orig) = base.strip_prefix(WHITEOUT_PREFIX) {
            if parent.via_symlink {
                return Err(ContentError::Breakout {
                    name: h.name.clone(),
                    reason: "a whiteout in a directory reached through a symbolic link".into(),
                });
            }
            if self.format == WhiteoutFormat::Overlay {
                return self.overlay_whiteout(h, &parent, orig, &base, &member_path);
            }
            if base == WHITEOUT_OPAQUE {
                let unpacked = &self.unpacked;
                let r = clear_dir(parent.fd.as_fd(), &parent.real, &|p| unpacked.contains(p));
                self.tree()?.removed_dir(&parent.real, true);
                r.map_err(|e| ContentError::apply("clear opaque directory", &member_path, e))?;
            } else {
                let mut target = parent.real.clone();
                push_comp(&mut target, orig);
                self.remove(&parent, orig, &target, &member_path)?;
            }
            return Ok(());
        }
        // A regular file is created (`O_EXCL`) before anything is looked at: almost always
        // nothing is there, and this saves a `stat` per file. Only when something is
        // (`EEXIST`, whatever it is: a file, a directory, a symbolic link, dangling or not)
        // is it looked at and replaced, as for every other type.
        let mut opened = None;
        if h.typeflag == header::TYPE_REG {
            match create_file_at(parent.fd.as_fd(), &base, h.mode) {
                Ok(fd) => opened = Some(fd),
                Err(Errno::EXIST) => {}
                Err(e) => {
                    return Err(ContentError::apply(
                        "create file",
                        &member_path,
                        errno_io(e),
                    ));
                }
            }
        }
        if opened.is_none() {
            let existing = lstat_at(parent.fd.as_fd(), &base)
                .map_err(|e| ContentError::apply("stat", &member_path, e))?;
            if let Some(st) = existing
                && !(file_type(&st) == FileType::Directory && h.typeflag == header::TYPE_DIR)
            {
                self.remove(&parent, &base, &real, &member_path)?;
            }
        }
        self.create(h, &parent, &base, &real, content, opened, &member_path)?;
        if h.typeflag == header::TYPE_DIR {
            self.dirs.push((real.clone(), h.atime, h.mtime));
        }
        self.unpacked.insert(real);
        Ok(())
    }

    /// A whiteout in the overlay format: the opaque marker as an extended attribute of its
    /// directory, any other `.wh.NAME` as a 0/0 character device `NAME` (mode 0) owned as
    /// the member says. `NAME` must not exist in this layer yet (dockerd's `mknod` fails the
    /// same way).
    fn overlay_whiteout(
        &mut self,
        h: &TarHeader,
        parent: &DirRef,
        orig: &[u8],
        base: &[u8],
        member_path: &Path,
    ) -> Result<(), ContentError> {
        let dir = parent.fd.as_fd();
        if base == WHITEOUT_OPAQUE {
            let set = fsetxattr(dir, OVERLAY_OPAQUE_XATTR.as_bytes(), b"y").map_err(|e| {
                ContentError::apply(
                    "mark opaque",
                    member_path.parent().unwrap_or(member_path),
                    e,
                )
            })?;
            if !set {
                return Err(ContentError::apply(
                    "mark opaque",
                    member_path.parent().unwrap_or(member_path),
                    io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        "cannot set trusted.overlay.opaque (overlay2 needs root and a file system with trusted.* extended attributes)",
                    ),
                ));
            }
            return Ok(());
        }
        let target = member_path.with_file_name(os(orig));
        rustix::fs::mknodat(
            dir,
            os(orig),
            FileType::CharacterDevice,
            Mode::empty(),
            rustix::fs::makedev(0, 0),
        )
        .map_err(|e| ContentError::apply("create whiteout device", &target, errno_io(e)))?;
        if self.as_root {
            rustix::fs::chownat(
                dir,
                os(orig),
                Some(rustix::fs::Uid::from_raw(h.uid as u32)),
                Some(rustix::fs::Gid::from_raw(h.gid as u32)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| ContentError::apply("lchown", &target, errno_io(e)))?;
        }
        Ok(())
    }

    /// Removes `name` of `parent` (real path `real`) with everything under it.
    fn remove(
        &mut self,
        parent: &DirRef,
        name: &[u8],
        real: &[u8],
        member_path: &Path,
    ) -> Result<(), ContentError> {
        let removed = remove_all_at(parent.fd.as_fd(), name, real)
            .map_err(|e| ContentError::apply("remove", self.root.join(os(real)), e));
        let tree = self.tree()?;
        match removed {
            Ok(Some(FileType::Directory)) => tree.removed_dir(real, false),
            Ok(Some(FileType::Symlink)) => tree.removed_symlink(),
            Ok(_) => {}
            Err(e) => {
                // Something may have gone: forget it all.
                tree.removed_dir(b"", true);
                tracing::debug!(member = %member_path.display(), "removal failed");
                return Err(e);
            }
        }
        Ok(())
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the member, where it goes, its content and the file already opened for it"
    )]
    fn create(
        &mut self,
        h: &TarHeader,
        parent: &DirRef,
        base: &[u8],
        real: &[u8],
        content: Source<'_, '_>,
        opened: Option<OwnedFd>,
        path: &Path,
    ) -> Result<(), ContentError> {
        let mode = (h.mode & 0o7777) as u32;
        let dir = parent.fd.as_fd();
        let name = os(base);
        let mut link_is_symlink = false;
        let created = match h.typeflag {
            header::TYPE_DIR => {
                match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => {
                        return Err(ContentError::apply("create directory", path, errno_io(e)));
                    }
                }
                let fd = open_dir_at(dir, base)
                    .map_err(|e| ContentError::apply("open directory", path, errno_io(e)))?;
                let fd = Arc::new(fd);
                self.tree()?.insert(real.to_vec(), None, fd.clone());
                let dup = rustix::fs::openat(&*fd, ".", dir_flags(), Mode::empty())
                    .map_err(|e| ContentError::apply("open directory", path, errno_io(e)))?;
                Created::Fd(dup)
            }
            header::TYPE_REG => {
                let fd = match opened {
                    Some(fd) => fd,
                    None => create_file_at(dir, base, h.mode)
                        .map_err(|e| ContentError::apply("create file", path, errno_io(e)))?,
                };
                let mut f = fs::File::from(fd);
                let mut w = Writeback::default();
                match content {
                    Source::Diff(d) => {
                        d.copy_content(|b| {
                            f.write_all(b)
                                .map_err(|e| ContentError::apply("write", path, e))?;
                            w.wrote(&f, b.len());
                            Ok::<(), ContentError>(())
                        })?;
                    }
                    Source::Read(r) => self.copy_from_reader(r, &mut f, &mut w, path)?,
                }
                w.end(&f);
                Created::Fd(OwnedFd::from(f))
            }
            header::TYPE_BLOCK | header::TYPE_CHAR | header::TYPE_FIFO => {
                let kind = match h.typeflag {
                    header::TYPE_BLOCK => FileType::BlockDevice,
                    header::TYPE_CHAR => FileType::CharacterDevice,
                    _ => FileType::Fifo,
                };
                let dev = rustix::fs::makedev(h.devmajor as u32, h.devminor as u32);
                if let Err(e) = rustix::fs::mknodat(dir, name, kind, Mode::from_raw_mode(mode), dev)
                {
                    if !self.as_root && h.typeflag != header::TYPE_FIFO {
                        tracing::warn!(path = %path.display(), error = %e, "cannot create device node without root; skipped");
                        return Ok(());
                    }
                    return Err(ContentError::apply("create device node", path, errno_io(e)));
                }
                Created::Entry
            }
            header::TYPE_LINK => {
                if clean_path(&h.linkname).starts_with(WHITEOUT_LINK_DIR) {
                    return Err(ContentError::Unsupported {
                        name: h.name.clone(),
                        what: "hard links into AUFS .wh..wh.plnk".into(),
                    });
                }
                let comps = member_components(&h.linkname).map_err(|_| ContentError::Breakout {
                    name: h.name.clone(),
                    reason: format!(
                        "hard link target {:?} is outside the layer",
                        String::from_utf8_lossy(&h.linkname)
                    ),
                })?;
                let Some((last, pcomps)) = comps.split_last() else {
                    return Err(ContentError::Breakout {
                        name: h.name.clone(),
                        reason: "hard link to the layer root".into(),
                    });
                };
                let tparent = self
                    .tree()?
                    .resolve_dir(pcomps, false)
                    .map_err(|e| ContentError::apply("resolve hard link target of", path, e))?;
                rustix::fs::linkat(&*tparent.fd, os(last), dir, name, AtFlags::empty())
                    .map_err(|e| ContentError::apply("hard link", path, errno_io(e)))?;
                link_is_symlink = lstat_at(dir, base)
                    .map_err(|e| ContentError::apply("stat", path, e))?
                    .is_some_and(|st| file_type(&st) == FileType::Symlink);
                Created::Entry
            }
            header::TYPE_SYMLINK => {
                rustix::fs::symlinkat(os(&h.linkname), dir, name)
                    .map_err(|e| ContentError::apply("create symlink", path, errno_io(e)))?;
                link_is_symlink = true;
                Created::Entry
            }
            header::TYPE_XGLOBAL => return Ok(()),
            t => {
                return Err(ContentError::Unsupported {
                    name: h.name.clone(),
                    what: format!("unhandled tar header type {t}"),
                });
            }
        };
        set_meta(
            self.as_root,
            h,
            parent.fd.as_fd(),
            Some(base),
            created,
            link_is_symlink,
            path,
        )
    }

    fn copy_from_reader(
        &mut self,
        r: &mut dyn Read,
        f: &mut fs::File,
        w: &mut Writeback,
        path: &Path,
    ) -> Result<(), ContentError> {
        if self.buf.is_empty() {
            self.buf = vec![0; COPY_BUF];
        }
        loop {
            let n = match r.read(&mut self.buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(match e.downcast::<ContentError>() {
                        Ok(ce) => ce,
                        Err(e) => ContentError::Read(e),
                    });
                }
            };
            f.write_all(&self.buf[..n])
                .map_err(|e| ContentError::apply("write", path, e))?;
            w.wrote(f, n);
        }
    }

    /// Applies one member of `diff` with the workers: see [`Pool`].
    fn apply_member(
        &mut self,
        h: TarHeader,
        diff: &mut DiffStream<'_>,
    ) -> Result<(), ContentError> {
        let h = match self.plan(h, diff) {
            Ok(Plan::Sent) => return Ok(()),
            Ok(Plan::Inline(h)) => {
                return match self.apply_from(&h, Source::Diff(diff)) {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        // An earlier member's error comes first.
                        self.barrier()?;
                        Err(e)
                    }
                };
            }
            Ok(Plan::Wait(h)) => h,
            Err(e) => {
                self.barrier()?;
                return Err(e);
            }
        };
        self.barrier()?;
        // Nothing in flight now: a small file can still go to a worker.
        match self.plan(h, diff)? {
            Plan::Sent => Ok(()),
            Plan::Inline(h) | Plan::Wait(h) => self.apply_from(&h, Source::Diff(diff)),
        }
    }

    /// Queues `h` for a worker if it is a small regular file that does not depend on the
    /// jobs in flight (its content is read from `diff` then); says whether a directory can
    /// be applied now; anything else waits for the jobs.
    fn plan(&mut self, h: TarHeader, diff: &mut DiffStream<'_>) -> Result<Plan, ContentError> {
        let small = h.typeflag == header::TYPE_REG && (h.size.max(0) as u64) <= SMALL_FILE;
        if !(small || h.typeflag == header::TYPE_DIR) {
            return Ok(Plan::Wait(h));
        }
        match &mut self.pool {
            None => return Ok(Plan::Wait(h)),
            Some(pool) => {
                pool.poll();
                if !pool.unusual.is_empty() {
                    // A job failed or came back: deal with it first.
                    return Ok(Plan::Wait(h));
                }
            }
        }
        let comps = member_components(&h.name)?;
        let Some((base, pcomps)) = comps.split_last() else {
            return Ok(Plan::Wait(h));
        };
        if base.starts_with(WHITEOUT_PREFIX) || comps[0].starts_with(WHITEOUT_META_PREFIX) {
            return Ok(Plan::Wait(h));
        }
        let tree = self.tree()?;
        let parent = if pcomps.is_empty() {
            tree.root_ref()
        } else {
            match tree.get(&join_bytes(pcomps)) {
                Some(d) if !d.via_symlink => d,
                _ => return Ok(Plan::Wait(h)),
            }
        };
        let mut real = parent.real.clone();
        push_comp(&mut real, base);
        let Some(pool) = &self.pool else {
            return Ok(Plan::Wait(h));
        };
        if pool.conflicts(&parent.real, &real) {
            return Ok(Plan::Wait(h));
        }
        if h.typeflag == header::TYPE_DIR {
            return Ok(Plan::Inline(h));
        }
        let mut data = Vec::with_capacity(h.size.max(0) as usize);
        diff.copy_content(|b| {
            data.extend_from_slice(b);
            Ok::<(), ContentError>(())
        })?;
        let path = self.root.join(os(&join_bytes(&comps)));
        if self.format == WhiteoutFormat::Remove {
            // Only opaque directories of this format look at it.
            self.unpacked.insert(real.clone());
        }
        let job = FileJob {
            seq: 0,
            header: h,
            parent,
            base: base.clone(),
            real,
            path,
            data,
        };
        match &mut self.pool {
            Some(pool) => pool.send(job)?,
            None => return Err(ContentError::apply("create file", job.path, workers_gone())),
        }
        Ok(Plan::Sent)
    }

    /// Waits for every job in flight, then replaces, in stream order, what the files that
    /// came back found at their names; returns the first error in stream order.
    fn barrier(&mut self) -> Result<(), ContentError> {
        let Some(pool) = &mut self.pool else {
            return Ok(());
        };
        let flushed = pool.flush();
        while pool.outstanding > 0 {
            match pool.results.recv() {
                Ok(report) => pool.record(report),
                Err(_) => {
                    pool.outstanding = 0;
                    return Err(ContentError::apply("create", &self.root, workers_gone()));
                }
            }
        }
        flushed?;
        pool.paths.clear();
        pool.dirs.clear();
        pool.last_parent = None;
        let mut unusual = std::mem::take(&mut pool.unusual);
        unusual.sort_by_key(|(seq, _)| *seq);
        for (_, outcome) in unusual {
            match outcome {
                JobOutcome::Done => {}
                JobOutcome::Failed(e) => return Err(e),
                JobOutcome::Exists(job) => self.replay(*job)?,
            }
        }
        Ok(())
    }

    /// Applies a file that found something at its name as [`apply_from`](Self::apply_from)
    /// does: removes what is there and creates it.
    fn replay(&mut self, job: FileJob) -> Result<(), ContentError> {
        let FileJob {
            header,
            parent,
            base,
            real,
            path,
            data,
            ..
        } = job;
        let existing = lstat_at(parent.fd.as_fd(), &base)
            .map_err(|e| ContentError::apply("stat", &path, e))?;
        if existing.is_some() {
            self.remove(&parent, &base, &real, &path)?;
        }
        let mut content: &[u8] = &data;
        self.create(
            &header,
            &parent,
            &base,
            &real,
            Source::Read(&mut content),
            None,
            &path,
        )
    }

    /// Sets the directories' times (after their contents are written) and marks the root as
    /// modified now, as dockerd's apply does. Each directory is reopened from the root one
    /// component at a time without following symbolic links: one that is no longer a
    /// directory is left alone and reported.
    pub fn finish(mut self) -> Result<(), ContentError> {
        self.barrier()?;
        let dirs = std::mem::take(&mut self.dirs);
        let root = self.root.clone();
        let tree = self.tree()?;
        for (real, atime, mtime) in &dirs {
            let path = root.join(os(real));
            let fd = tree
                .dir_by_real(real)
                .map_err(|e| ContentError::apply("set times on", &path, e))?;
            let ts = timestamps(clamp(atime.unwrap_or_default()), clamp(*mtime));
            rustix::fs::futimens(&*fd, &ts)
                .map_err(|e| ContentError::apply("set times on", &path, errno_io(e)))?;
        }
        let now = Timestamps {
            last_access: Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_OMIT,
            },
            last_modification: Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_NOW,
            },
        };
        rustix::fs::futimens(&*tree.root_fd, &now)
            .map_err(|e| ContentError::apply("touch", &root, errno_io(e)))
    }
}

/// Where a member's content comes from.
enum Source<'r, 'd> {
    Read(&'r mut dyn Read),
    Diff(&'r mut DiffStream<'d>),
}

/// Applies every member of `diff` to `root` (which must exist) and returns the layer size.
pub fn apply_diff(root: &Path, diff: &mut DiffStream<'_>) -> Result<u64, ContentError> {
    apply_diff_with(root, diff, WhiteoutFormat::Remove)
}

/// Applies every member of `diff` to `root` (which must exist), whiteouts as `format`, and
/// returns the layer size as the stream counts it.
pub fn apply_diff_with(
    root: &Path,
    diff: &mut DiffStream<'_>,
    format: WhiteoutFormat,
) -> Result<u64, ContentError> {
    let workers = apply_workers();
    let (job_tx, job_rx) = mpsc::sync_channel::<Vec<FileJob>>(QUEUED_BATCHES);
    let job_rx = Mutex::new(job_rx);
    let (result_tx, result_rx) = mpsc::channel();
    let as_root = is_root_user();
    std::thread::scope(|s| {
        let mut started = 0;
        for i in 0..workers {
            let (jobs, results) = (&job_rx, result_tx.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("apply-{i}"))
                .spawn_scoped(s, move || worker(jobs, &results, as_root));
            match spawned {
                Ok(_) => started += 1,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot start an apply worker");
                    break;
                }
            }
        }
        drop(result_tx);
        let mut applier = Applier::with_format(root, format);
        if started > 0 {
            applier.pool = Some(Pool {
                jobs: job_tx,
                batch: Vec::with_capacity(BATCH),
                batch_bytes: 0,
                results: result_rx,
                outstanding: 0,
                next_seq: 0,
                unusual: Vec::new(),
                paths: HashSet::new(),
                dirs: HashSet::new(),
                last_parent: None,
            });
        }
        loop {
            let h = match diff.next_entry() {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(e) => {
                    applier.barrier()?;
                    return Err(e);
                }
            };
            applier.apply_member(h, diff)?;
        }
        // Closing the queue (dropping the applier) lets the workers end; the scope waits for
        // them before returning.
        applier.finish()?;
        Ok(diff.size())
    })
}

/// Regular files at most this large are written by the workers of [`apply_diff_with`]
/// (their content is buffered); larger ones by the thread reading the stream.
const SMALL_FILE: u64 = 128 << 10;
/// Files handed to a worker at once (fewer wake-ups), at most; and their content at most.
const BATCH: usize = 16;
const BATCH_BYTES: usize = 256 << 10;
/// Batches queued for the workers at most (so a few MiB of content buffered at most).
const QUEUED_BATCHES: usize = 4;

/// How many workers [`apply_diff_with`] starts: none on a single core (the thread reading
/// the stream creates every file), else one a core, at most 4. The environment variable
/// `IMGSTORE_APPLY_WORKERS` overrides it (for measurements; `0`: no workers; at most 64).
fn apply_workers() -> usize {
    if let Some(n) = std::env::var("IMGSTORE_APPLY_WORKERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        return n.min(64);
    }
    match std::thread::available_parallelism().map_or(1, |n| n.get()) {
        0 | 1 => 0,
        n => n.min(4),
    }
}

/// A small regular file whose parent directory is resolved and content read, for a worker to
/// create: `O_EXCL` and, if that succeeds, content and metadata exactly as the thread
/// reading the stream would. If something is already there, the job comes back to be
/// replaced in stream order ([`Applier::barrier`]).
#[derive(Debug)]
struct FileJob {
    /// Position among the jobs of this apply (stream order).
    seq: u64,
    header: TarHeader,
    parent: DirRef,
    base: Vec<u8>,
    /// The real path of the file (relative to the root).
    real: Vec<u8>,
    /// The member's path, for messages.
    path: PathBuf,
    data: Vec<u8>,
}

/// What became of a [`FileJob`].
#[derive(Debug)]
enum JobOutcome {
    Done,
    /// Something is already at the file's name: the job, for the main thread.
    Exists(Box<FileJob>),
    Failed(ContentError),
}

/// The workers of an [`Applier`] and the jobs in flight since the last barrier.
///
/// Invariants that make the outcome that of applying the members one by one in stream
/// order: every job in flight creates a regular file at a distinct real path, in a parent
/// directory that was in the tree's cache (resolved without crossing a symbolic link); no
/// job's path is the parent (or an ancestor of the parent) of another job or of a member
/// applied meanwhile by the main thread. A job can therefore only fail to create its file
/// (`EEXIST`) because of something there before the batch started, and replacing that
/// later, in stream order, changes nothing any other job or member of the batch depends
/// on. Anything else (links, whiteouts, devices, large files, a directory that is not in
/// the cache or conflicts) waits for every job first.
#[derive(Debug)]
struct Pool {
    jobs: mpsc::SyncSender<Vec<FileJob>>,
    /// Jobs not handed to a worker yet (they are in flight all the same).
    batch: Vec<FileJob>,
    batch_bytes: usize,
    results: mpsc::Receiver<Report>,
    /// Jobs queued or being written (the batch excepted).
    outstanding: usize,
    next_seq: u64,
    /// Outcomes other than [`JobOutcome::Done`] since the last barrier.
    unusual: Vec<(u64, JobOutcome)>,
    /// Real paths of the jobs since the last barrier.
    paths: HashSet<Vec<u8>>,
    /// Their parent directories and all their ancestors (real paths, the root excepted).
    dirs: HashSet<Vec<u8>>,
    /// The last parent added to `dirs`.
    last_parent: Option<Vec<u8>>,
}

impl Pool {
    /// Whether a member at real path `real` in the directory at real path `parent` depends
    /// on (or affects) a job since the last barrier.
    fn conflicts(&self, parent: &[u8], real: &[u8]) -> bool {
        if self.paths.is_empty() {
            return false;
        }
        if self.paths.contains(real) || self.dirs.contains(real) {
            return true;
        }
        if parent.is_empty() {
            return false;
        }
        if self.paths.contains(parent) {
            return true;
        }
        parent
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'/' && self.paths.contains(&parent[..i]))
    }

    fn record(&mut self, report: Report) {
        self.outstanding = self.outstanding.saturating_sub(report.done);
        self.unusual.extend(report.unusual);
    }

    /// Takes the outcomes already reported, without waiting.
    fn poll(&mut self) {
        while self.outstanding > 0 {
            match self.results.try_recv() {
                Ok(report) => self.record(report),
                Err(_) => break,
            }
        }
    }

    /// Hands the batch to a worker (waiting while the queue is full).
    fn flush(&mut self) -> Result<(), ContentError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.batch_bytes = 0;
        let n = batch.len();
        let path = batch.first().map(|j| j.path.clone()).unwrap_or_default();
        self.jobs
            .send(batch)
            .map_err(|_| ContentError::apply("create file", path, workers_gone()))?;
        self.outstanding += n;
        Ok(())
    }

    /// Queues `job` (waiting while the queue is full).
    fn send(&mut self, mut job: FileJob) -> Result<(), ContentError> {
        self.poll();
        job.seq = self.next_seq;
        self.next_seq += 1;
        self.paths.insert(job.real.clone());
        if self.last_parent.as_deref() != Some(&job.parent.real[..]) {
            let p = &job.parent.real;
            if !p.is_empty() {
                self.dirs.insert(p.clone());
                for (i, &b) in p.iter().enumerate() {
                    if b == b'/' {
                        self.dirs.insert(p[..i].to_vec());
                    }
                }
            }
            self.last_parent = Some(p.clone());
        }
        self.batch_bytes += job.data.len();
        self.batch.push(job);
        if self.batch.len() >= BATCH || self.batch_bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }
}

fn workers_gone() -> io::Error {
    io::Error::other("the apply workers stopped")
}

/// What a worker did with a batch: how many jobs, and those not simply done.
#[derive(Debug)]
struct Report {
    done: usize,
    unusual: Vec<(u64, JobOutcome)>,
}

/// A worker of [`apply_diff_with`]: creates the files it is given until the queue closes.
fn worker(
    jobs: &Mutex<mpsc::Receiver<Vec<FileJob>>>,
    results: &mpsc::Sender<Report>,
    as_root: bool,
) {
    loop {
        let batch = {
            let Ok(rx) = jobs.lock() else { return };
            match rx.recv() {
                Ok(batch) => batch,
                Err(_) => return,
            }
        };
        let done = batch.len();
        let first = batch.first().map(|j| (j.seq, j.path.clone()));
        // A panic must still account for the batch, or the reading thread would wait for it
        // forever.
        let unusual = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut unusual = Vec::new();
            for job in batch {
                let seq = job.seq;
                match run_job(job, as_root) {
                    JobOutcome::Done => {}
                    outcome => unusual.push((seq, outcome)),
                }
            }
            unusual
        }))
        .unwrap_or_else(|_| {
            let (seq, path) = first.unwrap_or_default();
            let e = io::Error::other("an apply worker panicked");
            vec![(
                seq,
                JobOutcome::Failed(ContentError::apply("create file", path, e)),
            )]
        });
        if results.send(Report { done, unusual }).is_err() {
            return;
        }
    }
}

/// Creates a job's file (never replacing anything), writes it and sets its metadata.
fn run_job(job: FileJob, as_root: bool) -> JobOutcome {
    let fd = match create_file_at(job.parent.fd.as_fd(), &job.base, job.header.mode) {
        Ok(fd) => fd,
        Err(Errno::EXIST) => return JobOutcome::Exists(Box::new(job)),
        Err(e) => {
            return JobOutcome::Failed(ContentError::apply("create file", &job.path, errno_io(e)));
        }
    };
    let mut f = fs::File::from(fd);
    if let Err(e) = f.write_all(&job.data) {
        return JobOutcome::Failed(ContentError::apply("write", &job.path, e));
    }
    match set_meta(
        as_root,
        &job.header,
        job.parent.fd.as_fd(),
        Some(&job.base),
        Created::Fd(OwnedFd::from(f)),
        false,
        &job.path,
    ) {
        Ok(()) => JobOutcome::Done,
        Err(e) => JobOutcome::Failed(e),
    }
}

/// Starts the disk writing a large file's content as it is written (every
/// [`Writeback::STEP`] bytes, and the rest at its end): the sync that makes a layer durable
/// then finds less left to write, instead of all of it at once.
///
/// Files under [`Writeback::LARGE`] are left to that sync: started one by one, each small
/// file would be a write request of its own (measured on a pull of 20,000 small files: 0.7 s
/// more system time), where the sync writes many at once.
#[derive(Default)]
struct Writeback {
    /// Bytes written so far.
    written: u64,
    /// Bytes already handed to the disk.
    started: u64,
}

impl Writeback {
    const STEP: u64 = 8 << 20;
    const LARGE: u64 = 1 << 20;

    fn wrote(&mut self, f: &fs::File, n: usize) {
        self.written += n as u64;
        if self.written - self.started >= Self::STEP {
            self.start(f);
        }
    }

    fn end(&mut self, f: &fs::File) {
        if self.written >= Self::LARGE && self.written > self.started {
            self.start(f);
        }
    }

    /// Hands what was written since the last time to the disk.
    fn start(&mut self, f: &fs::File) {
        durable_fs::start_writeback(f.as_fd(), self.started, self.written - self.started);
        self.started = self.written;
    }
}

/// How [`Applier::plan`] will apply a member.
enum Plan {
    /// Queued for a worker.
    Sent,
    /// Independent of the jobs in flight: applied now by the main thread.
    Inline(TarHeader),
    /// Applied by the main thread once every job is done.
    Wait(TarHeader),
}

/// Opens the file `name` (a member name) of the tree at `root` for reading, resolving its
/// parents inside the root (as in a chroot) and never following the file itself if it is a
/// symbolic link: with `openat2(RESOLVE_IN_ROOT)` where the kernel has it, else one
/// component at a time like the [`Applier`].
pub fn open_member(root: &Path, name: &[u8]) -> io::Result<fs::File> {
    let comps = member_components(name).map_err(io::Error::other)?;
    let Some((last, pcomps)) = comps.split_last() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the layer root is not a file",
        ));
    };
    let p = root.join(os(&join_bytes(&comps)));
    let fail = |e: io::Error| io::Error::new(e.kind(), format!("cannot open {}: {e}", p.display()));
    let mut tree = Tree::open(root).map_err(fail)?;
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat2(
        &*tree.root_fd,
        os(&join_bytes(&comps)),
        flags,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => return Ok(fs::File::from(fd)),
        // Kernels before 5.6 (or seccomp filters) lack openat2; paths may be too long for
        // it: resolve by hand.
        Err(Errno::NOSYS | Errno::PERM | Errno::NAMETOOLONG | Errno::AGAIN) => {}
        Err(e) => return Err(fail(errno_io(e))),
    }
    let parent = tree.resolve_dir(pcomps, false).map_err(fail)?;
    rustix::fs::openat(&*parent.fd, os(last), flags, Mode::empty())
        .map(fs::File::from)
        .map_err(|e| fail(errno_io(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_member_resolves_like_a_chroot() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        fs::create_dir(root.join("d")).expect("mkdir");
        fs::write(root.join("d/f"), b"inside").expect("write");
        std::os::unix::fs::symlink("/", root.join("d/up")).expect("symlink");
        std::os::unix::fs::symlink("../../../../d/f", root.join("l")).expect("symlink");
        let mut s = String::new();
        open_member(root, b"/d/up/d/./f")
            .expect("open member")
            .read_to_string(&mut s)
            .expect("read");
        assert_eq!(s, "inside");
        let mut tree = Tree::open(root).expect("tree");
        let d = tree
            .resolve_dir(&[b"d".to_vec(), b"up".to_vec(), b"d".to_vec()], false)
            .expect("resolve");
        assert_eq!(d.real, b"d");
        assert!(d.via_symlink);
        assert!(open_member(root, b"l").is_err(), "final symlink");
        assert!(open_member(root, b"../d/f").is_err());
    }

    /// A tree deeper than the descriptor window, with files, a symlink out and kept paths.
    fn deep_tree(root: &Path, depth: usize) -> PathBuf {
        let mut p = root.to_path_buf();
        for i in 0..depth {
            p.push("d");
            fs::create_dir(&p).expect("mkdir");
            fs::write(p.join(format!("f{i}")), b"x").expect("write");
        }
        std::os::unix::fs::symlink("/", p.join("up")).expect("symlink");
        p
    }

    #[test]
    fn clearing_deep_trees_keeps_few_descriptors_open_and_never_follows_symlinks() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).expect("outside");
        fs::write(outside.join("canary"), b"c").expect("canary");
        let root = tmp.path().join("root");
        fs::create_dir(&root).expect("root");
        let depth = 4 * WALK_FDS + 5;
        deep_tree(&root, depth);
        std::os::unix::fs::symlink(&outside, root.join("d/out")).expect("symlink");
        // Keep every directory `d` and the file f3 (a directory kept like an opaque
        // directory's unpacked entries); remove everything else.
        let mut tree = Tree::open(&root).expect("tree");
        let open_fds = || fs::read_dir("/proc/self/fd").map_or(0, |rd| rd.count());
        let baseline = open_fds();
        let most = std::cell::Cell::new(0);
        let keep = |p: &[u8]| {
            most.set(most.get().max(open_fds()));
            p.split(|&b| b == b'/').all(|c| c == b"d") || p.ends_with(b"/f3")
        };
        clear_dir(tree.root_fd.as_fd(), b"", &keep).expect("clear");
        // Other tests run meanwhile: allow some slack, far below one descriptor a level.
        assert!(
            most.get() < baseline + WALK_FDS + 48,
            "{} descriptors open (baseline {baseline})",
            most.get()
        );
        let mut p = root.clone();
        for i in 0..depth {
            p.push("d");
            assert!(p.is_dir());
            assert_eq!(p.join(format!("f{i}")).exists(), i == 3, "f{i}");
        }
        assert!(fs::symlink_metadata(p.join("up")).is_err());
        assert!(fs::symlink_metadata(root.join("d/out")).is_err());
        // Now remove it all.
        let root_fd = tree.root_fd.clone();
        assert_eq!(
            remove_all_at(root_fd.as_fd(), b"d", b"d").expect("remove"),
            Some(FileType::Directory)
        );
        tree.removed_dir(b"d", false);
        assert_eq!(fs::read_dir(&root).expect("root").count(), 0);
        assert_eq!(fs::read(outside.join("canary")).expect("canary"), b"c");
        assert!(tree.resolve_dir(&[b"d".to_vec()], false).is_err());
    }
}
