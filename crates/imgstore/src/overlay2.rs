//! [`Overlay2Remover`]: the part of dockerd's `overlay2` driver `rm` needs, removing a layer's
//! content, as a [`Driver`] for the layer store.

use std::path::{Path, PathBuf};

use layer_store::{Driver, DriverError};

/// Removes overlay2 layer content (`<data-root>/overlay2/<cache-id>/` and its short link
/// `<data-root>/overlay2/l/<link>`). It cannot create or fill layers: those operations fail
/// with [`DriverError::Unsupported`].
#[derive(Debug, Clone)]
pub struct Overlay2Remover {
    home: PathBuf,
}

impl Overlay2Remover {
    /// A remover for the driver directory `home` (`<data-root>/overlay2`). Creates nothing.
    pub fn new(home: impl Into<PathBuf>) -> Self {
        Overlay2Remover { home: home.into() }
    }
}

/// A single, plain path component (no `/`, not `.` or `..`, not empty).
fn component(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('\0')
}

impl Driver for Overlay2Remover {
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
        // The home may be a link to another disk (resolved once); nothing beneath it is
        // followed.
        let home = match durable_fs::Dir::open(&self.home) {
            Ok(h) => h,
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if let Ok(Some(link)) = home.read(Path::new(cache_id).join("link"), 4096) {
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
}
