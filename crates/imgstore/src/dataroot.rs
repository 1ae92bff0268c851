//! Finding a data root, its storage driver, and locking it.
//!
//! Layout, as dockerd keeps it: `<data-root>/image/<driver>/{imagedb,layerdb,repositories.json}`
//! plus the driver's content under `<data-root>/<driver>/`.

use std::fs::File;
use std::path::{Path, PathBuf};

/// The environment variable naming the default data root.
pub const DATA_ROOT_ENV: &str = "IMGSTORE_DATA_ROOT";

/// What went wrong finding or locking a data root.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataRootError {
    /// No data root was given and no per-user directory could be worked out.
    #[error("no data root: pass --data-root, or set IMGSTORE_DATA_ROOT, XDG_DATA_HOME or HOME")]
    NoDefault,
    /// The data root does not exist.
    #[error("data root {0} does not exist")]
    Missing(PathBuf),
    /// Several drivers have image stores and none was chosen.
    #[error(
        "data root {root} holds image stores for several storage drivers ({}); choose one with --storage-driver",
        .drivers.join(", ")
    )]
    SeveralDrivers {
        /// The data root.
        root: PathBuf,
        /// The drivers found.
        drivers: Vec<String>,
    },
    /// An invalid driver name.
    #[error("invalid storage driver name {0:?}")]
    BadDriver(String),
    /// Another process holds the lock.
    #[error(
        "data root {path} is locked by another process ({what}); try again when it has finished"
    )]
    Locked {
        /// The locked directory.
        path: PathBuf,
        /// Which lock was wanted.
        what: &'static str,
    },
    /// Any other I/O failure.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The default data root: `$IMGSTORE_DATA_ROOT`, else `$XDG_DATA_HOME/imgstore`, else
/// `$HOME/.local/share/imgstore`.
pub fn default_data_root() -> Result<PathBuf, DataRootError> {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = non_empty(DATA_ROOT_ENV) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = non_empty("XDG_DATA_HOME") {
        return Ok(PathBuf::from(p).join("imgstore"));
    }
    if let Some(p) = non_empty("HOME") {
        return Ok(PathBuf::from(p).join(".local/share/imgstore"));
    }
    Err(DataRootError::NoDefault)
}

/// The drivers that have an image store under `<root>/image/`, sorted.
pub fn drivers_in(root: &Path) -> Result<Vec<String>, DataRootError> {
    let dir = root.join("image");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(DataRootError::Io {
                op: "read directory",
                path: dir,
                source: e,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DataRootError::Io {
            op: "read directory",
            path: dir.clone(),
            source: e,
        })?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false)
            && let Some(name) = entry.file_name().to_str()
        {
            out.push(name.to_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// Chooses the storage driver: `explicit` if given, else the only one found, else `vfs`.
pub fn choose_driver(root: &Path, explicit: Option<&str>) -> Result<String, DataRootError> {
    if let Some(d) = explicit {
        if d.is_empty() || d.contains('/') || d == "." || d == ".." {
            return Err(DataRootError::BadDriver(d.to_owned()));
        }
        return Ok(d.to_owned());
    }
    let drivers = drivers_in(root)?;
    match drivers.len() {
        0 => Ok("vfs".to_owned()),
        1 => Ok(drivers.into_iter().next().unwrap_or_default()),
        _ => Err(DataRootError::SeveralDrivers {
            root: root.to_owned(),
            drivers,
        }),
    }
}

/// A data root with its driver chosen.
#[derive(Debug, Clone)]
pub struct DataRoot {
    root: PathBuf,
    driver: String,
}

impl DataRoot {
    /// Resolves the root and driver without looking at whether the root exists.
    pub fn resolve(root: PathBuf, driver: Option<&str>) -> Result<Self, DataRootError> {
        let driver = choose_driver(&root, driver)?;
        Ok(DataRoot { root, driver })
    }

    /// Resolves the root and driver. The root must exist unless `create` is set, in which
    /// case the image store directory is created (0700, as dockerd does).
    pub fn open(root: PathBuf, driver: Option<&str>, create: bool) -> Result<Self, DataRootError> {
        if !root.is_dir() && !create {
            return Err(DataRootError::Missing(root));
        }
        let driver = choose_driver(&root, driver)?;
        let dr = DataRoot { root, driver };
        if create {
            let dir = dr.image_dir();
            use std::os::unix::fs::DirBuilderExt as _;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| DataRootError::Io {
                    op: "create directory",
                    path: dir.clone(),
                    source: e,
                })?;
        }
        Ok(dr)
    }

    /// The data root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The storage driver name.
    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// `<root>/image/<driver>`.
    pub fn image_dir(&self) -> PathBuf {
        self.root.join("image").join(&self.driver)
    }

    /// `<root>/image/<driver>/imagedb`.
    pub fn imagedb_dir(&self) -> PathBuf {
        self.image_dir().join("imagedb")
    }

    /// `<root>/image/<driver>/layerdb`.
    pub fn layerdb_dir(&self) -> PathBuf {
        self.image_dir().join("layerdb")
    }

    /// `<root>/image/<driver>/repositories.json`.
    pub fn repositories_json(&self) -> PathBuf {
        self.image_dir().join("repositories.json")
    }

    /// `<root>/<driver>`: the driver's content.
    pub fn driver_dir(&self) -> PathBuf {
        self.root.join(&self.driver)
    }

    /// Takes the lock on the image store directory: shared for reads, exclusive for writes.
    /// Never waits: a lock held elsewhere is [`DataRootError::Locked`]. `Ok(None)` when there
    /// is no image store directory yet (nothing to protect).
    pub fn lock(&self, exclusive: bool) -> Result<Option<RootLock>, DataRootError> {
        let dir = self.image_dir();
        let file = match File::open(&dir) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(DataRootError::Io {
                    op: "open",
                    path: dir,
                    source: e,
                });
            }
        };
        let res = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match res {
            Ok(()) => Ok(Some(RootLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Err(DataRootError::Locked {
                path: dir,
                what: if exclusive {
                    "an exclusive lock is needed to write"
                } else {
                    "a shared lock is needed to read"
                },
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(DataRootError::Io {
                op: "lock",
                path: dir,
                source: e,
            }),
        }
    }
}

/// A held lock on a data root; released when dropped.
#[derive(Debug)]
pub struct RootLock {
    _file: File,
}
