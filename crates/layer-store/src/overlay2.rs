//! [`Overlay2Driver`]: the parts of dockerd 20.10's `overlay2` driver that do not mount:
//! removing a layer's content and describing its directories (`GraphDriver.Data`).
//!
//! Layout (`<data-root>/overlay2`): `<cache-id>/diff` holds the layer's files, `<cache-id>/link`
//! a short name, `l/<short>` a symlink to `../<cache-id>/diff`, `<cache-id>/lower` the short
//! links of the layers below (`l/<a>:l/<b>:...`, uppermost first).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use durable_fs::Dir;

use crate::driver::{Driver, DriverError};

/// The most a `link` or `lower` file may hold (128 lower layers of `l/` + 26 characters).
const SMALL_FILE_LIMIT: u64 = 64 * 1024;

/// The overlay2 driver over `<data-root>/overlay2`. It cannot create or fill layers yet:
/// those operations fail with [`DriverError::Unsupported`]. It creates nothing.
#[derive(Debug, Clone)]
pub struct Overlay2Driver {
    home: PathBuf,
}

impl Overlay2Driver {
    /// The driver for the directory `home` (`<data-root>/overlay2`). Creates nothing.
    pub fn new(home: impl Into<PathBuf>) -> Self {
        Overlay2Driver { home: home.into() }
    }

    /// The driver's home.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The home, opened (a link to another disk is followed once); `None` if missing.
    fn open_home(&self) -> Result<Option<Dir>, DriverError> {
        match Dir::open(&self.home) {
            Ok(h) => Ok(Some(h)),
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// A single, plain path component (no `/`, not `.` or `..`, not empty).
fn component(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('\0')
}

/// `a` joined with `b` and cleaned lexically, as Go's `filepath.Join`.
fn join_clean(a: &Path, b: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in a.join(b).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

impl Driver for Overlay2Driver {
    fn name(&self) -> &str {
        "overlay2"
    }

    fn create(&self, _cache_id: &str, _parent_cache_id: Option<&str>) -> Result<(), DriverError> {
        Err(DriverError::Unsupported {
            driver: "overlay2".to_owned(),
            operation: "creating layers",
        })
    }

    fn remove(&self, cache_id: &str) -> Result<(), DriverError> {
        if !component(cache_id) {
            return Err(DriverError::InvalidCacheId {
                cache_id: cache_id.to_owned(),
                reason: "must be a single, non-empty path component".to_owned(),
            });
        }
        // Nothing beneath the home is followed.
        let Some(home) = self.open_home()? else {
            return Ok(());
        };
        if let Ok(Some(link)) = home.read(Path::new(cache_id).join("link"), SMALL_FILE_LIMIT) {
            let link = String::from_utf8_lossy(&link);
            let link = link.trim();
            if component(link) {
                // Only the link that points at this layer's own `diff` (dockerd writes
                // `../<cache-id>/diff`).
                let target = home.read_link(Path::new("l").join(link)).ok().flatten();
                let ours = target
                    .is_some_and(|t| Path::new(&t).ends_with(Path::new(cache_id).join("diff")));
                if ours {
                    home.remove_file(Path::new("l").join(link))?;
                }
            }
        }
        home.remove_tree(cache_id)?;
        Ok(())
    }

    /// `MergedDir`, `UpperDir`, `WorkDir` and, for a layer with parents, `LowerDir` (the
    /// `lower` links resolved, as dockerd's `GetMetadata`). `None` when the layer's directory
    /// is missing.
    fn metadata(&self, cache_id: &str) -> Result<Option<BTreeMap<String, String>>, DriverError> {
        if !component(cache_id) {
            return Ok(None);
        }
        let Some(home) = self.open_home()? else {
            return Ok(None);
        };
        match home.meta(cache_id)? {
            Some(m) if m.kind == durable_fs::FileKind::Dir => {}
            _ => return Ok(None),
        }
        let dir = self.home.join(cache_id);
        let s = |p: PathBuf| p.to_string_lossy().into_owned();
        let mut m = BTreeMap::new();
        m.insert("MergedDir".to_owned(), s(dir.join("merged")));
        m.insert("UpperDir".to_owned(), s(dir.join("diff")));
        m.insert("WorkDir".to_owned(), s(dir.join("work")));
        if let Ok(Some(lower)) = home.read(Path::new(cache_id).join("lower"), SMALL_FILE_LIMIT) {
            let lower = String::from_utf8_lossy(&lower);
            let dirs: Vec<String> = lower
                .trim()
                .split(':')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let link = self.home.join(l);
                    match home.read_link(l) {
                        Ok(Some(target)) => s(join_clean(
                            link.parent().unwrap_or(&self.home),
                            Path::new(&target),
                        )),
                        _ => s(link),
                    }
                })
                .collect();
            if !dirs.is_empty() {
                m.insert("LowerDir".to_owned(), dirs.join(":"));
            }
        }
        Ok(Some(m))
    }
}
