//! Finding a data root, its storage driver, and locking it.
//!
//! Layout, as dockerd keeps it: `<data-root>/image/<driver>/{imagedb,layerdb,repositories.json}`
//! plus the driver's content under `<data-root>/<driver>/`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod procfs;

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
    /// The data root is not a directory.
    #[error("data root {0} is not a directory")]
    NotADirectory(PathBuf),
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
    /// Another process held the lock for longer than the lock timeout.
    #[error(
        "image store {path} is locked by another process{}: {} is needed to {}; gave up after {} (--lock-timeout)",
        holders_text(.holders),
        .kind.article_name(),
        .kind.purpose(),
        seconds_text(*.waited)
    )]
    Locked {
        /// The locked directory.
        path: PathBuf,
        /// Which lock was wanted.
        kind: LockKind,
        /// The processes holding a lock on it, when `/proc/locks` tells.
        holders: Vec<u32>,
        /// How long it was waited for.
        waited: Duration,
    },
    /// dockerd's configuration file cannot be used.
    #[error("dockerd configuration {path}: {message}")]
    BadConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A dockerd uses the data root: writing behind its back would corrupt its state.
    #[error(
        "data root {root} is in use by dockerd (pid {pid}, data root {dockerd_root}): stop dockerd before changing its images, or use the docker CLI"
    )]
    DockerdRunning {
        /// The data root.
        root: PathBuf,
        /// dockerd's process ID.
        pid: u32,
        /// The data root as dockerd names it.
        dockerd_root: PathBuf,
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

fn holders_text(holders: &[u32]) -> String {
    match holders {
        [] => String::new(),
        [one] => format!(" (pid {one})"),
        many => format!(
            " (pids {})",
            many.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn seconds_text(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Which lock a command takes on a data root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Reads share the data root with other reads.
    Shared,
    /// A write has it to itself, and no dockerd may use it.
    Exclusive,
}

impl LockKind {
    fn article_name(self) -> &'static str {
        match self {
            LockKind::Shared => "a shared lock",
            LockKind::Exclusive => "an exclusive lock",
        }
    }

    fn purpose(self) -> &'static str {
        match self {
            LockKind::Shared => "read",
            LockKind::Exclusive => "write",
        }
    }
}

/// How long a command waits for the lock unless told otherwise (`--lock-timeout`).
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// dockerd's configuration file (for root).
pub const DEFAULT_DAEMON_JSON: &str = "/etc/docker/daemon.json";
/// dockerd's data root (for root).
pub const DEFAULT_DOCKERD_ROOT: &str = "/var/lib/docker";

/// dockerd's configuration file for a user: [`DEFAULT_DAEMON_JSON`] for root, else
/// rootless dockerd's `$XDG_CONFIG_HOME/docker/daemon.json` (`~/.config/docker/daemon.json`).
pub fn default_daemon_json() -> Option<PathBuf> {
    if rustix::process::geteuid().is_root() {
        return Some(PathBuf::from(DEFAULT_DAEMON_JSON));
    }
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    non_empty("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|c| c.join("docker/daemon.json"))
}

/// What imgstore takes from dockerd's `daemon.json`: the same keys dockerd reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonConfig {
    /// `data-root` (or the deprecated `graph`).
    pub data_root: Option<PathBuf>,
    /// `storage-driver`.
    pub storage_driver: Option<String>,
    /// `insecure-registries`: `host[:port]` names or CIDRs reached over plain HTTP (or
    /// HTTPS without verification), for `pull` and `push`.
    pub insecure_registries: Vec<String>,
    /// `registry-mirrors`: `http(s)://host[:port]` mirrors of Docker Hub, for `pull`.
    pub registry_mirrors: Vec<String>,
}

/// The most a `daemon.json` may hold.
const MAX_DAEMON_JSON: u64 = 1 << 20;

impl DaemonConfig {
    /// Reads `path`; a missing file is the empty configuration (dockerd's defaults). A file
    /// that is not a JSON object, a FIFO or one larger than 1 MiB is an error naming it.
    pub fn load(path: &Path) -> Result<DaemonConfig, DataRootError> {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Ok(DaemonConfig::default());
        };
        let bad = |message: String| DataRootError::BadConfig {
            path: path.to_owned(),
            message,
        };
        let bytes = match durable_fs::Dir::open(dir) {
            Ok(d) => d
                .read(name, MAX_DAEMON_JSON)
                .map_err(|e| bad(e.to_string()))?,
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => None,
            Err(e) => return Err(bad(e.to_string())),
        };
        let Some(bytes) = bytes else {
            return Ok(DaemonConfig::default());
        };
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if !value.is_object() {
            return Err(bad("not a JSON object".to_owned()));
        }
        let text = |k: &str| {
            value
                .get(k)
                .and_then(serde_json::Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let list = |k: &str| -> Result<Vec<String>, DataRootError> {
            match value.get(k) {
                None | Some(serde_json::Value::Null) => Ok(Vec::new()),
                Some(serde_json::Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| bad(format!("{k}: not a list of strings")))
                    })
                    .collect(),
                Some(_) => Err(bad(format!("{k}: not a list of strings"))),
            }
        };
        Ok(DaemonConfig {
            data_root: text("data-root")
                .or_else(|| text("graph"))
                .map(PathBuf::from),
            storage_driver: text("storage-driver"),
            insecure_registries: list("insecure-registries")?,
            registry_mirrors: list("registry-mirrors")?,
        })
    }
}

/// The default data root, as dockerd chooses its own: `$IMGSTORE_DATA_ROOT` if set, else
/// `data-root` in `config` (dockerd's `daemon.json`), else `/var/lib/docker` for root, and
/// for another user rootless dockerd's `$XDG_DATA_HOME/docker` (`~/.local/share/docker`).
pub fn default_data_root(config: &DaemonConfig) -> Result<PathBuf, DataRootError> {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = non_empty(DATA_ROOT_ENV) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = &config.data_root {
        return Ok(p.clone());
    }
    if rustix::process::geteuid().is_root() {
        return Ok(PathBuf::from(DEFAULT_DOCKERD_ROOT));
    }
    if let Some(p) = non_empty("XDG_DATA_HOME") {
        return Ok(PathBuf::from(p).join("docker"));
    }
    if let Some(p) = non_empty("HOME") {
        return Ok(PathBuf::from(p).join(".local/share/docker"));
    }
    Err(DataRootError::NoDefault)
}

/// The drivers that have an image store under `<root>/image/`, sorted.
pub fn drivers_in(root: &Path) -> Result<Vec<String>, DataRootError> {
    let dir = root.join("image");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(_) if std::fs::metadata(root).is_ok_and(|m| !m.is_dir()) => {
            return Err(DataRootError::NotADirectory(root.to_owned()));
        }
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

/// Whether `<root>/<name>` is a non-empty directory (dockerd's prior-driver test).
fn has_prior_state(root: &Path, name: &str) -> bool {
    std::fs::read_dir(root.join(name)).is_ok_and(|mut d| d.next().is_some())
}

/// Chooses the storage driver as dockerd 20.10 does (`graphdriver.New`): `explicit` if
/// given; else the only image store under `<root>/image`; with several, the one whose
/// driver directory `<root>/<name>` holds state (dockerd's prior-driver scan, in which vfs
/// never counts), or overlay2 (first in dockerd's priority list) when none does; with no
/// image store yet, the driver whose directory holds state (overlay2 first), else overlay2
/// when running as root (what dockerd picks on a new root) and vfs otherwise. Several drivers
/// with state are an error, as in dockerd. A choice among several is logged at info level.
pub fn choose_driver(root: &Path, explicit: Option<&str>) -> Result<String, DataRootError> {
    if let Some(d) = explicit {
        if d.is_empty() || d.contains('/') || d == "." || d == ".." {
            return Err(DataRootError::BadDriver(d.to_owned()));
        }
        return Ok(d.to_owned());
    }
    let drivers = drivers_in(root)?;
    match drivers.len() {
        0 if has_prior_state(root, "overlay2") => Ok("overlay2".to_owned()),
        0 if has_prior_state(root, "vfs") => Ok("vfs".to_owned()),
        0 => {
            // A new root: dockerd 20.10 takes the first driver of its priority list that
            // works, overlay2; writing it needs root, so others get vfs.
            let d = if rustix::process::geteuid().is_root() {
                "overlay2"
            } else {
                "vfs"
            };
            tracing::info!(root = %root.display(), driver = d, "no image store yet: using {d}, as dockerd 20.10 would on a new root (choose with --storage-driver)");
            Ok(d.to_owned())
        }
        1 => Ok(drivers.into_iter().next().unwrap_or_default()),
        _ => {
            let priors: Vec<&String> = drivers
                .iter()
                .filter(|d| d.as_str() != "vfs" && has_prior_state(root, d))
                .collect();
            let chosen = match priors.as_slice() {
                [one] => (*one).clone(),
                [] if drivers.iter().any(|d| d == "overlay2") => "overlay2".to_owned(),
                _ => {
                    return Err(DataRootError::SeveralDrivers {
                        root: root.to_owned(),
                        drivers,
                    });
                }
            };
            tracing::info!(
                root = %root.display(),
                found = %drivers.join(", "),
                driver = %chosen,
                "several image stores: using {chosen}, as dockerd 20.10 would (choose with --storage-driver)"
            );
            Ok(chosen)
        }
    }
}

/// What [`DataRoot::open`] does with a data root that is not there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMissing {
    /// It is an error ([`DataRootError::Missing`]).
    Fail,
    /// Create the root and its image store directory (for writes).
    Create,
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

    /// Resolves the root and driver. With [`IfMissing::Fail`] the root must exist; with
    /// [`IfMissing::Create`] the image store directory is created (0700, as dockerd does).
    pub fn open(
        root: PathBuf,
        driver: Option<&str>,
        if_missing: IfMissing,
    ) -> Result<Self, DataRootError> {
        let create = if_missing == IfMissing::Create;
        match std::fs::metadata(&root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(DataRootError::NotADirectory(root)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !create {
                    return Err(DataRootError::Missing(root));
                }
            }
            Err(e) => {
                return Err(DataRootError::Io {
                    op: "open data root",
                    path: root,
                    source: e,
                });
            }
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

    /// Takes the lock on the image store directory: [`LockKind::Shared`] for reads,
    /// [`LockKind::Exclusive`] for writes. A lock held elsewhere is waited for, up to `timeout`
    /// (zero: not at all), then is [`DataRootError::Locked`], naming the holder when
    /// `/proc/locks` tells. `Ok(None)` when there is no image store directory yet (nothing to
    /// protect).
    ///
    /// Every write goes through here: an exclusive lock is refused
    /// ([`DataRootError::DockerdRunning`]) while a dockerd uses this data root, before and
    /// after waiting.
    pub fn lock(
        &self,
        kind: LockKind,
        timeout: Duration,
    ) -> Result<Option<RootLock>, DataRootError> {
        if kind == LockKind::Exclusive {
            self.refuse_if_dockerd_runs()?;
        }
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
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        // Processes that start waiting together should not keep retrying together.
        let jitter = u64::from(std::process::id() % 7);
        loop {
            let res = match kind {
                LockKind::Exclusive => file.try_lock(),
                LockKind::Shared => file.try_lock_shared(),
            };
            match res {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    let waited = started.elapsed();
                    if waited >= timeout {
                        return Err(DataRootError::Locked {
                            holders: procfs::lock_holders(&dir),
                            path: dir,
                            kind,
                            waited: timeout,
                        });
                    }
                    std::thread::sleep(pause.min(timeout - waited));
                    pause = (pause * 2).min(Duration::from_millis(50 + jitter * 5));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(DataRootError::Io {
                        op: "lock",
                        path: dir,
                        source: e,
                    });
                }
            }
        }
        let lock = RootLock { _file: file };
        if kind == LockKind::Exclusive && started.elapsed() >= Duration::from_millis(100) {
            // A dockerd may have started while this waited.
            self.refuse_if_dockerd_runs()?;
        }
        Ok(Some(lock))
    }

    /// [`DataRootError::DockerdRunning`] when a running dockerd's data root is this one.
    fn refuse_if_dockerd_runs(&self) -> Result<(), DataRootError> {
        let dockerds = procfs::dockerds();
        if dockerds.is_empty() {
            return Ok(());
        }
        // A root that does not exist yet is no running dockerd's. Directories are compared
        // by device and inode, which is what comparing canonical paths means, but also holds
        // for a dockerd in another mount namespace.
        let Ok(ours) = std::fs::metadata(&self.root) else {
            return Ok(());
        };
        for d in dockerds {
            if d.uses(&ours) {
                return Err(DataRootError::DockerdRunning {
                    root: self.root.clone(),
                    pid: d.pid,
                    dockerd_root: d.root,
                });
            }
        }
        Ok(())
    }
}

/// A held lock on a data root; released when dropped.
#[derive(Debug)]
pub struct RootLock {
    _file: File,
}
