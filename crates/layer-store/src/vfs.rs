//! The `vfs` content driver, laid out as dockerd 20.10's: `<data-root>/vfs/dir/<cache-id>/`
//! holds the whole root file system of a layer, a copy of its parent's directory with the
//! layer's diff applied on top. `vfs/` and `vfs/dir/` are created with mode 0710 and each
//! layer directory with 0755, as a real dockerd 20.10 leaves them.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;

use crate::apply;
use crate::content::{ContentError, DiffStream};
use crate::driver::{ContentIssue, Driver, DriverError};

/// The `vfs` driver, laid out as dockerd 20.10's: `<data-root>/vfs/dir/<cache-id>/` holds the
/// whole root file system of a layer, a copy of its parent's directory with the layer's diff
/// applied on top (see [`apply`](crate::apply) for how members are applied). `vfs/` and
/// `vfs/dir/` are created with mode 0710 and each layer directory with 0755, as a real
/// dockerd 20.10 leaves them.
#[derive(Debug, Clone)]
pub struct VfsDriver {
    home: PathBuf,
}

fn io_err(path: &Path, source: io::Error) -> DriverError {
    DriverError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn mkdir_mode(p: &Path, mode: u32) -> io::Result<()> {
    match fs::create_dir(p) {
        Ok(()) => fs::set_permissions(p, fs::Permissions::from_mode(mode)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && p.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

impl VfsDriver {
    /// A driver keeping its layers under `home` (dockerd's `<data-root>/vfs`). `home` and
    /// `home/dir` are created (mode 0710) by the first layer written, not before: opening a
    /// store changes nothing on disk.
    pub fn new(home: impl Into<PathBuf>) -> Result<Self, DriverError> {
        Ok(VfsDriver { home: home.into() })
    }

    /// Creates `home` and `home/dir` (mode 0710) when missing.
    fn create_home(&self) -> Result<(), DriverError> {
        let home = &self.home;
        if let Some(parent) = home.parent()
            && !parent.as_os_str().is_empty()
        {
            fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        }
        mkdir_mode(home, 0o710).map_err(|e| io_err(home, e))?;
        let dir = home.join("dir");
        mkdir_mode(&dir, 0o710).map_err(|e| io_err(&dir, e))
    }

    /// The driver for `home`, as [`new`](Self::new), infallibly (for reading and checking).
    pub fn existing(home: impl Into<PathBuf>) -> Self {
        VfsDriver { home: home.into() }
    }

    /// The driver's home (`<data-root>/vfs`).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The root directory of layer `cache_id`.
    pub fn layer_dir(&self, cache_id: &str) -> Result<PathBuf, DriverError> {
        if cache_id.is_empty()
            || cache_id == "."
            || cache_id == ".."
            || cache_id.contains('/')
            || cache_id.contains('\0')
        {
            return Err(DriverError::InvalidCacheId {
                cache_id: cache_id.to_string(),
                reason: "must be a single, non-empty path component".into(),
            });
        }
        Ok(self.home.join("dir").join(cache_id))
    }
}

impl Driver for VfsDriver {
    fn name(&self) -> &str {
        "vfs"
    }

    fn create(&self, cache_id: &str, parent_cache_id: Option<&str>) -> Result<(), DriverError> {
        let dir = self.layer_dir(cache_id)?;
        let parent_dir = parent_cache_id.map(|p| self.layer_dir(p)).transpose()?;
        self.create_home()?;
        // Beneath the home (which may be a link to another disk), nothing is followed: a
        // symlink at `dir`, at the new layer or at its parent's content is an error.
        let layers = durable_fs::Dir::open(&self.home)?.require_dir("dir")?;
        if layers.meta(cache_id)?.is_some() {
            return Err(io_err(&dir, io::Error::from(io::ErrorKind::AlreadyExists)));
        }
        layers.create_dir(cache_id, 0o755)?;
        if let Some(p) = parent_cache_id {
            layers.require_dir(p)?;
        }
        if let Some(src) = parent_dir {
            copy_dir(&src, &dir)?;
        }
        Ok(())
    }

    fn remove(&self, cache_id: &str) -> Result<(), DriverError> {
        self.layer_dir(cache_id)?;
        // The home may be a link to another disk (resolved once); nothing beneath it is
        // followed: a symlink at `dir` is an error, one at `dir/<cache-id>` is removed as a
        // link.
        let home = match durable_fs::Dir::open(&self.home) {
            Ok(h) => h,
            Err(e) if e.io_kind() == Some(io::ErrorKind::NotFound) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let Some(dir) = home.open_dir("dir")? else {
            return Ok(());
        };
        dir.remove_tree(cache_id)?;
        Ok(())
    }

    fn apply_diff(&self, cache_id: &str, diff: &mut DiffStream<'_>) -> Result<u64, DriverError> {
        let dir = self.layer_dir(cache_id)?;
        apply::apply_diff(&dir, diff).map_err(DriverError::from)
    }

    fn sync(&self, cache_id: &str) -> Result<(), DriverError> {
        let dir = self.layer_dir(cache_id)?;
        let f = fs::File::open(&dir).map_err(|e| io_err(&dir, e))?;
        rustix::fs::syncfs(&f).map_err(|e| io_err(&dir, e.into()))
    }

    /// Each layer's directory under `dir/`, and directories there that nothing names. A
    /// root without `vfs/dir` holds metadata only: nothing is reported.
    fn check_content(
        &self,
        layers: &[&str],
        others: &[&str],
    ) -> Result<Vec<ContentIssue>, DriverError> {
        let mut out = Vec::new();
        // A root without the driver's directory holds metadata only (a copy of the image
        // store): nothing to check.
        let home = match durable_fs::Dir::open(&self.home) {
            Ok(h) => h,
            Err(e) if e.io_kind() == Some(io::ErrorKind::NotFound) => return Ok(out),
            Err(e) => return Err(e.into()),
        };
        let Some(dir) = home.open_dir("dir")? else {
            return Ok(out);
        };
        for &c in layers {
            let present = self.layer_dir(c).is_ok()
                && dir
                    .meta(c)?
                    .is_some_and(|m| m.kind == durable_fs::FileKind::Dir);
            if !present {
                out.push(ContentIssue::Missing {
                    cache_id: c.to_owned(),
                    path: dir.join(c),
                });
            }
        }
        let named: std::collections::HashSet<&str> =
            layers.iter().chain(others.iter()).copied().collect();
        for e in dir.entries()? {
            if !named.contains(e.name.to_string_lossy().as_ref()) {
                out.push(ContentIssue::Unnamed {
                    path: dir.join(&e.name),
                });
            }
        }
        Ok(out)
    }

    fn open_file(
        &self,
        cache_id: &str,
        name: &[u8],
    ) -> Result<Box<dyn io::Read + Send>, DriverError> {
        let dir = self.layer_dir(cache_id)?;
        let f = apply::open_member(&dir, name)
            .map_err(|e| io_err(&dir.join(std::ffi::OsStr::from_bytes(name)), e))?;
        Ok(Box::new(f))
    }
}

/// The names of the extended attributes of `p` (not following a symbolic link).
fn list_xattrs(p: &Path) -> io::Result<Vec<Vec<u8>>> {
    let mut buf = vec![0u8; 1024];
    let n = loop {
        match rustix::fs::llistxattr(p, &mut buf[..]) {
            Ok(n) => break n,
            Err(Errno::RANGE) => buf.resize(buf.len() * 4, 0),
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    buf.truncate(n);
    Ok(buf
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// The value of extended attribute `name` of `p` (not following a symbolic link).
fn get_xattr(p: &Path, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        match rustix::fs::lgetxattr(p, OsStr::from_bytes(name), &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(Errno::RANGE) => buf.resize(buf.len() * 4, 0),
            Err(Errno::NODATA | Errno::NOTSUP) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sets one extended attribute of `p` (not following a symbolic link); file systems that
/// refuse it (ENOTSUP, EPERM) are ignored, as dockerd does.
fn set_xattr(p: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
    match rustix::fs::lsetxattr(p, OsStr::from_bytes(name), value, XattrFlags::empty()) {
        Ok(()) | Err(Errno::NOTSUP | Errno::PERM) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn meta_times(m: &fs::Metadata) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: m.atime(),
            tv_nsec: m.atime_nsec(),
        },
        last_modification: Timespec {
            tv_sec: m.mtime(),
            tv_nsec: m.mtime_nsec(),
        },
    }
}

/// Copies the tree `src` into the existing directory `dst` (dockerd's vfs `CopyDir`):
/// contents, hard links, symlinks, devices, owners, modes, xattrs and times.
pub(crate) fn copy_dir(src: &Path, dst: &Path) -> Result<(), DriverError> {
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let as_root = apply::is_root_user();
    copy_tree(src, dst, &mut links, as_root)?;
    let m = fs::symlink_metadata(src).map_err(|e| io_err(src, e))?;
    copy_meta(src, dst, &m, as_root)
}

fn copy_meta(src: &Path, dst: &Path, m: &fs::Metadata, as_root: bool) -> Result<(), DriverError> {
    let is_link = m.file_type().is_symlink();
    if as_root {
        let (uid, gid) = (
            rustix::fs::Uid::from_raw(m.uid()),
            rustix::fs::Gid::from_raw(m.gid()),
        );
        rustix::fs::chownat(CWD, dst, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_err(dst, e.into()))?;
    }
    for name in list_xattrs(src).map_err(|e| io_err(src, e))? {
        if let Some(v) = get_xattr(src, &name).map_err(|e| io_err(src, e))? {
            set_xattr(dst, &name, &v).map_err(|e| io_err(dst, e))?;
        }
    }
    if !is_link {
        fs::set_permissions(dst, fs::Permissions::from_mode(m.mode() & 0o7777))
            .map_err(|e| io_err(dst, e))?;
    }
    rustix::fs::utimensat(CWD, dst, &meta_times(m), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| io_err(dst, e.into()))
}

fn copy_tree(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
    as_root: bool,
) -> Result<(), DriverError> {
    let rd = fs::read_dir(src).map_err(|e| io_err(src, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| io_err(src, e))?;
        let s = ent.path();
        let d = dst.join(ent.file_name());
        let m = fs::symlink_metadata(&s).map_err(|e| io_err(&s, e))?;
        let ft = m.file_type();
        if ft.is_dir() {
            fs::create_dir(&d).map_err(|e| io_err(&d, e))?;
            copy_tree(&s, &d, links, as_root)?;
        } else if ft.is_file() {
            if m.nlink() > 1 {
                let key = (m.dev(), m.ino());
                if let Some(first) = links.get(&key) {
                    fs::hard_link(first, &d).map_err(|e| io_err(&d, e))?;
                    continue;
                }
                links.insert(key, d.clone());
            }
            fs::copy(&s, &d).map_err(|e| io_err(&d, e))?;
        } else if ft.is_symlink() {
            let t = fs::read_link(&s).map_err(|e| io_err(&s, e))?;
            std::os::unix::fs::symlink(&t, &d).map_err(|e| io_err(&d, e))?;
        } else {
            let kind = if ft.is_block_device() {
                FileType::BlockDevice
            } else if ft.is_char_device() {
                FileType::CharacterDevice
            } else {
                FileType::Fifo
            };
            let mode = Mode::from_raw_mode(m.mode() & 0o7777);
            rustix::fs::mknodat(CWD, &d, kind, mode, m.rdev()).map_err(|e| io_err(&d, e.into()))?;
        }
        copy_meta(&s, &d, &m, as_root)?;
    }
    Ok(())
}

impl From<ContentError> for DriverError {
    fn from(e: ContentError) -> Self {
        DriverError::Content(Box::new(e))
    }
}
