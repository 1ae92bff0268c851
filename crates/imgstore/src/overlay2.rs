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

fn io_err(path: &Path, source: std::io::Error) -> DriverError {
    DriverError::Io {
        path: path.to_owned(),
        source,
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
        let dir = self.home.join(cache_id);
        if let Ok(link) = std::fs::read_to_string(dir.join("link")) {
            let link = link.trim();
            if component(link) {
                let l = self.home.join("l").join(link);
                match std::fs::remove_file(&l) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&l, e)),
                }
            }
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&dir, e)),
        }
    }
}
