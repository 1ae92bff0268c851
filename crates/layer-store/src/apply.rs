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

use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::content::header::{self, TarHeader, Timestamp};
use crate::content::{ContentError, DiffStream};
use crate::tarsplit::clean_path;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";
const WHITEOUT_LINK_DIR: &[u8] = b".wh..wh.plnk";
const MAX_SYMLINKS: usize = 255;
const COPY_BUF: usize = 1 << 20;

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

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Resolves `comps` under `root`, following symbolic links *inside* the root (like a chroot):
/// absolute link targets restart at the root and `..` stops at the root. Components that do
/// not exist are kept as they are.
pub(crate) fn resolve_in_root(root: &Path, comps: &[Vec<u8>]) -> io::Result<PathBuf> {
    let mut resolved: Vec<OsString> = Vec::new();
    let mut queue: std::collections::VecDeque<Vec<u8>> = comps.iter().cloned().collect();
    let mut links = 0;
    let mut path = root.to_path_buf();
    let mut missing = false;
    while let Some(c) = queue.pop_front() {
        if c.is_empty() || c == b"." {
            continue;
        }
        if c == b".." {
            resolved.pop();
            path = root.to_path_buf();
            path.extend(&resolved);
            missing = false;
            continue;
        }
        let candidate = path.join(os(&c));
        if !missing {
            match fs::symlink_metadata(&candidate) {
                Ok(m) if m.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("too many symbolic links resolving {}", candidate.display()),
                        ));
                    }
                    let target = fs::read_link(&candidate)?;
                    let t = target.as_os_str().as_bytes();
                    if t.starts_with(b"/") {
                        resolved.clear();
                        path = root.to_path_buf();
                    }
                    for part in t.split(|&b| b == b'/').rev() {
                        queue.push_front(part.to_vec());
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => missing = true,
                Err(e) => return Err(e),
            }
        }
        resolved.push(os(&c).to_os_string());
        path = candidate;
    }
    Ok(path)
}

fn remove_all(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn timespec(t: Timestamp) -> libc::timespec {
    libc::timespec {
        tv_sec: t.secs as libc::time_t,
        tv_nsec: t.nanos as libc::c_long,
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

pub(crate) fn set_times(
    p: &Path,
    atime: Timestamp,
    mtime: Timestamp,
    nofollow: bool,
) -> io::Result<()> {
    let c = cpath(p)?;
    let ts = [timespec(atime), timespec(mtime)];
    let flags = if nofollow {
        libc::AT_SYMLINK_NOFOLLOW
    } else {
        0
    };
    // SAFETY: `c` is a valid NUL-terminated path and `ts` points to two timespecs.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), ts.as_ptr(), flags) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub(crate) fn lchown(p: &Path, uid: i64, gid: i64) -> io::Result<()> {
    let c = cpath(p)?;
    // SAFETY: `c` is a valid NUL-terminated path.
    let r = unsafe { libc::lchown(c.as_ptr(), uid as libc::uid_t, gid as libc::gid_t) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets one extended attribute; `Ok(false)` when the file system refuses it (ENOTSUP,
/// EPERM), which dockerd ignores.
pub(crate) fn lsetxattr(p: &Path, name: &[u8], value: &[u8]) -> io::Result<bool> {
    let c = cpath(p)?;
    let n = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "xattr name contains NUL"))?;
    // SAFETY: valid NUL-terminated strings; `value` is a valid buffer of its length.
    let r = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r != 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOTSUP) | Some(libc::EPERM) => Ok(false),
            _ => Err(e),
        };
    }
    Ok(true)
}

pub(crate) fn mknod(p: &Path, mode: u32, major: i64, minor: i64) -> io::Result<()> {
    let c = cpath(p)?;
    let dev = libc::makedev(major as u32, minor as u32);
    // SAFETY: `c` is a valid NUL-terminated path.
    let r = unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, dev) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub(crate) fn is_root_user() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Applies members to a root directory; see the [module docs](self).
#[derive(Debug)]
pub struct Applier {
    root: PathBuf,
    unpacked: HashSet<PathBuf>,
    dirs: Vec<(PathBuf, Option<Timestamp>, Timestamp)>,
    parents: HashMap<Vec<Vec<u8>>, PathBuf>,
    buf: Vec<u8>,
    as_root: bool,
}

impl Applier {
    /// An applier writing into `root`, which must exist.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Applier {
            root: root.into(),
            unpacked: HashSet::new(),
            dirs: Vec::new(),
            parents: HashMap::new(),
            buf: Vec::new(),
            as_root: is_root_user(),
        }
    }

    /// Resolves (and creates, like dockerd's `MkdirAll(parent, 0755)`) the parent directory
    /// of a member.
    fn parent_dir(&mut self, comps: &[Vec<u8>], create: bool) -> Result<PathBuf, ContentError> {
        if let Some(p) = self.parents.get(comps) {
            return Ok(p.clone());
        }
        let p = resolve_in_root(&self.root, comps)
            .map_err(|e| ContentError::apply("resolve", self.root.join(join(comps)), e))?;
        if create {
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(ContentError::apply(
                        "use as a directory",
                        p,
                        io::Error::from_raw_os_error(libc::ENOTDIR),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // dockerd creates a missing parent only if the parent itself is missing,
                    // not when it is a symbolic link to nowhere.
                    if let Some((last, init)) = comps.split_last() {
                        let pp = resolve_in_root(&self.root, init).map_err(|e| {
                            ContentError::apply("resolve", self.root.join(join(init)), e)
                        })?;
                        let lp = pp.join(os(last));
                        if fs::symlink_metadata(&lp).is_ok_and(|m| m.file_type().is_symlink()) {
                            return Err(ContentError::apply(
                                "use as a directory",
                                lp,
                                io::Error::new(
                                    io::ErrorKind::NotFound,
                                    "symbolic link to a missing directory",
                                ),
                            ));
                        }
                    }
                    self.mkdir_all(&p)?
                }
                Err(e) => return Err(ContentError::apply("stat", p, e)),
            }
            self.parents.insert(comps.to_vec(), p.clone());
        }
        Ok(p)
    }

    fn mkdir_all(&self, p: &Path) -> Result<(), ContentError> {
        let rel = p.strip_prefix(&self.root).unwrap_or(p);
        let mut cur = self.root.clone();
        for c in rel.components() {
            cur.push(c);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => {
                    return Err(ContentError::apply(
                        "create directory",
                        cur,
                        io::Error::from_raw_os_error(libc::ENOTDIR),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&cur)
                        .map_err(|e| ContentError::apply("create directory", &cur, e))?;
                    fs::set_permissions(&cur, fs::Permissions::from_mode(0o755))
                        .map_err(|e| ContentError::apply("chmod", &cur, e))?;
                }
                Err(e) => return Err(ContentError::apply("stat", cur, e)),
            }
        }
        Ok(())
    }

    fn invalidate(&mut self) {
        self.parents.clear();
    }

    fn remove_all(&mut self, p: &Path) -> Result<(), ContentError> {
        self.invalidate();
        remove_all(p).map_err(|e| ContentError::apply("remove", p, e))
    }

    /// Removes everything under `dir` that this layer did not create.
    fn opaque(&mut self, dir: &Path) -> Result<(), ContentError> {
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ContentError::apply("read directory", dir, e)),
        };
        let mut children = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| ContentError::apply("read directory", dir, e))?;
            children.push(ent.path());
        }
        for child in children {
            if self.unpacked.contains(&child) {
                if fs::symlink_metadata(&child).is_ok_and(|m| m.is_dir()) {
                    self.opaque(&child)?;
                }
            } else {
                self.remove_all(&child)?;
            }
        }
        Ok(())
    }

    /// Applies one member; `content` yields its data (for regular files).
    pub fn apply(&mut self, h: &TarHeader, content: &mut dyn Read) -> Result<(), ContentError> {
        self.apply_from(h, Source::Read(content))
    }

    fn apply_from(&mut self, h: &TarHeader, content: Source<'_, '_>) -> Result<(), ContentError> {
        let comps = member_components(&h.name)?;
        // dockerd makes sure the parent exists first, for every member.
        let (parent_comps, base) = match comps.split_last() {
            Some((b, p)) => (p.to_vec(), Some(b.clone())),
            None => (Vec::new(), None),
        };
        let parent = self.parent_dir(&parent_comps, true)?;
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
            let root = self.root.clone();
            self.create(h, &root, content)?;
            self.dirs.push((root.clone(), h.atime, h.mtime));
            self.unpacked.insert(root);
            return Ok(());
        };
        let path = parent.join(os(&base));
        if let Some(orig) = base.strip_prefix(WHITEOUT_PREFIX) {
            if base == WHITEOUT_OPAQUE {
                fs::symlink_metadata(&parent)
                    .map_err(|e| ContentError::apply("stat", &parent, e))?;
                self.opaque(&parent)?;
            } else {
                let target = parent.join(os(orig));
                self.remove_all(&target)?;
            }
            return Ok(());
        }
        if let Ok(m) = fs::symlink_metadata(&path)
            && !(m.is_dir() && h.typeflag == header::TYPE_DIR)
        {
            self.remove_all(&path)?;
        }
        self.create(h, &path, content)?;
        if h.typeflag == header::TYPE_DIR {
            self.dirs.push((path.clone(), h.atime, h.mtime));
        }
        self.unpacked.insert(path);
        Ok(())
    }

    fn create(
        &mut self,
        h: &TarHeader,
        path: &Path,
        content: Source<'_, '_>,
    ) -> Result<(), ContentError> {
        let mode = (h.mode & 0o7777) as u32;
        let mut link_target: Option<PathBuf> = None;
        match h.typeflag {
            header::TYPE_DIR => {
                if !fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
                    fs::create_dir(path)
                        .map_err(|e| ContentError::apply("create directory", path, e))?;
                }
            }
            header::TYPE_REG => {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(path)
                    .map_err(|e| ContentError::apply("create file", path, e))?;
                match content {
                    Source::Diff(d) => {
                        d.copy_content(|b| {
                            f.write_all(b)
                                .map_err(|e| ContentError::apply("write", path, e))
                        })?;
                    }
                    Source::Read(r) => self.copy_from_reader(r, &mut f, path)?,
                }
            }
            header::TYPE_BLOCK | header::TYPE_CHAR | header::TYPE_FIFO => {
                let kind = match h.typeflag {
                    header::TYPE_BLOCK => libc::S_IFBLK,
                    header::TYPE_CHAR => libc::S_IFCHR,
                    _ => libc::S_IFIFO,
                };
                if let Err(e) = mknod(path, mode | kind, h.devmajor, h.devminor) {
                    if !self.as_root && h.typeflag != header::TYPE_FIFO {
                        tracing::warn!(path = %path.display(), error = %e, "cannot create device node without root; skipped");
                        return Ok(());
                    }
                    return Err(ContentError::apply("create device node", path, e));
                }
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
                let tparent = self.parent_dir(pcomps, false)?;
                let target = tparent.join(os(last));
                fs::hard_link(&target, path)
                    .map_err(|e| ContentError::apply("hard link", path, e))?;
                link_target = Some(target);
            }
            header::TYPE_SYMLINK => {
                std::os::unix::fs::symlink(os(&h.linkname), path)
                    .map_err(|e| ContentError::apply("create symlink", path, e))?;
                self.invalidate();
            }
            header::TYPE_XGLOBAL => return Ok(()),
            t => {
                return Err(ContentError::Unsupported {
                    name: h.name.clone(),
                    what: format!("unhandled tar header type {t}"),
                });
            }
        }
        if self.as_root {
            lchown(path, h.uid, h.gid).map_err(|e| ContentError::apply("lchown", path, e))?;
        }
        let mut ignored = Vec::new();
        for (k, v) in &h.xattrs {
            if !lsetxattr(path, k, v).map_err(|e| ContentError::apply("set xattr on", path, e))? {
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
        let follow_ok = match (&link_target, h.typeflag) {
            (_, header::TYPE_SYMLINK) => false,
            (Some(t), _) => !fs::symlink_metadata(t).is_ok_and(|m| m.file_type().is_symlink()),
            _ => true,
        };
        if follow_ok {
            fs::set_permissions(path, fs::Permissions::from_mode(mode))
                .map_err(|e| ContentError::apply("chmod", path, e))?;
            set_times(path, clamp(atime), clamp(h.mtime), false)
                .map_err(|e| ContentError::apply("set times on", path, e))?;
        } else if h.typeflag == header::TYPE_SYMLINK {
            set_times(path, atime, h.mtime, true)
                .map_err(|e| ContentError::apply("set times on", path, e))?;
        }
        Ok(())
    }

    fn copy_from_reader(
        &mut self,
        r: &mut dyn Read,
        f: &mut fs::File,
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
        }
    }

    /// Sets the directories' times (after their contents are written) and marks the root as
    /// modified now, as dockerd's apply does.
    pub fn finish(self) -> Result<(), ContentError> {
        for (p, atime, mtime) in &self.dirs {
            set_times(p, clamp(atime.unwrap_or_default()), clamp(*mtime), false)
                .map_err(|e| ContentError::apply("set times on", p, e))?;
        }
        let c = cpath(&self.root).map_err(|e| ContentError::apply("touch", &self.root, e))?;
        let ts = [
            libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_NOW,
            },
        ];
        // SAFETY: valid path and two timespecs.
        let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), ts.as_ptr(), 0) };
        if r != 0 {
            return Err(ContentError::apply(
                "touch",
                &self.root,
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}

fn join(comps: &[Vec<u8>]) -> PathBuf {
    let mut p = PathBuf::new();
    for c in comps {
        p.push(os(c));
    }
    p
}

/// Where a member's content comes from.
enum Source<'r, 'd> {
    Read(&'r mut dyn Read),
    Diff(&'r mut DiffStream<'d>),
}

/// Applies every member of `diff` to `root` (which must exist) and returns the layer size.
pub fn apply_diff(root: &Path, diff: &mut DiffStream<'_>) -> Result<u64, ContentError> {
    let mut applier = Applier::new(root);
    while let Some(h) = diff.next_entry()? {
        applier.apply_from(&h, Source::Diff(diff))?;
    }
    applier.finish()?;
    Ok(diff.size())
}

/// `struct open_how` of `openat2(2)`.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Opens `rel` under `root` with the kernel resolving it as in a chroot of `root`
/// (`openat2` with `RESOLVE_IN_ROOT`), never following the file itself.
fn open_in_root(root: &Path, rel: &Path) -> io::Result<fs::File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let dir = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(root)?;
    let c = cpath(rel)?;
    let how = OpenHow {
        flags: (libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: valid directory fd, NUL-terminated path, and a pointer to an `open_how` of the
    // size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new file descriptor that nothing else owns.
    Ok(unsafe { fs::File::from_raw_fd(fd as libc::c_int) })
}

/// Opens the file `name` (a member name) of the tree at `root` for reading, resolving its
/// parents inside the root and never following the file itself if it is a symbolic link.
pub fn open_member(root: &Path, name: &[u8]) -> io::Result<fs::File> {
    let comps = member_components(name).map_err(io::Error::other)?;
    let Some((last, pcomps)) = comps.split_last() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the layer root is not a file",
        ));
    };
    match open_in_root(root, &join(&comps)) {
        Ok(f) => return Ok(f),
        // Kernels before 5.6 (or seccomp filters) lack openat2: resolve by hand.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) => {}
        Err(e) => {
            let p = root.join(join(&comps));
            return Err(io::Error::new(
                e.kind(),
                format!("cannot open {}: {e}", p.display()),
            ));
        }
    }
    let parent = resolve_in_root(root, pcomps)?;
    let p = parent.join(os(last));
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&p)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", p.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_in_root_resolves_like_a_chroot() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        fs::create_dir(root.join("d")).expect("mkdir");
        fs::write(root.join("d/f"), b"inside").expect("write");
        std::os::unix::fs::symlink("/", root.join("d/up")).expect("symlink");
        std::os::unix::fs::symlink("../../../../d/f", root.join("l")).expect("symlink");
        match open_in_root(root, Path::new("d/up/d/up/d/f")) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) => {}
            r => {
                let mut s = String::new();
                r.expect("open").read_to_string(&mut s).expect("read");
                assert_eq!(s, "inside");
                let e = open_in_root(root, Path::new("l")).expect_err("final symlink");
                assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
            }
        }
        let mut s = String::new();
        open_member(root, b"/d/up/d/./f")
            .expect("open member")
            .read_to_string(&mut s)
            .expect("read");
        assert_eq!(s, "inside");
        assert!(open_member(root, b"../d/f").is_err());
    }
}
