//! Atomic creation of a layer directory: dockerd's `atomicwriter.WriteSet`.
//!
//! A [`Transaction`] is a staging directory `<layerdb>/tmp/write-set-<random>` (mode 0700).
//! Files are written into it; committing (through [`PendingLayer::commit`](crate::PendingLayer::commit)) fsyncs every file and the
//! directory, renames it to its final place in one step and fsyncs the parent directory.
//! A transaction dropped without commit removes its staging directory. A crash leaves at
//! most a `tmp/write-set-*` directory, which the next read-write open removes.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::random::random_hex;

/// Prefix of staging directories under `<layerdb>/tmp`.
pub const STAGING_PREFIX: &str = "write-set-";

/// Mode of the files of a layer directory (as dockerd writes them, umask 022).
pub const FILE_MODE: u32 = 0o644;

/// A file-system operation of a transaction failed.
#[derive(Debug, thiserror::Error)]
#[error("layer transaction: cannot {action} {path}: {source}")]
pub struct TransactionError {
    /// What was being done (e.g. "create", "write", "rename").
    pub action: &'static str,
    /// The file or directory concerned.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: std::io::Error,
}

impl TransactionError {
    pub(crate) fn new(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        TransactionError {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

/// A layer directory being written. See the [module docs](self).
#[derive(Debug)]
pub struct Transaction {
    dir: PathBuf,
    done: bool,
    synced: bool,
}

impl Transaction {
    /// Creates `<layerdb>/tmp` (0755) if needed and a fresh staging directory in it.
    pub(crate) fn start(layerdb_root: &Path) -> Result<Transaction, TransactionError> {
        let tmp = layerdb_root.join("tmp");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&tmp)
            .map_err(|e| TransactionError::new("create", &tmp, e))?;
        let rand = random_hex().map_err(|e| {
            TransactionError::new("read random bytes from", Path::new("/dev/urandom"), e)
        })?;
        let dir = tmp.join(format!("{STAGING_PREFIX}{}", &rand[..16]));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| TransactionError::new("create", &dir, e))?;
        Ok(Transaction {
            dir,
            done: false,
            synced: false,
        })
    }

    /// The staging directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the file `name` (mode 0644) in the staging directory. It is fsynced at commit.
    pub fn write_file(&self, name: &str, data: &[u8]) -> Result<(), TransactionError> {
        let mut f = self.create_file(name)?;
        let path = self.dir.join(name);
        f.write_all(data)
            .map_err(|e| TransactionError::new("write", &path, e))
    }

    /// Creates the file `name` (mode 0644, must not exist) in the staging directory, for
    /// streaming writes (e.g. `tar-split.json.gz`). It is fsynced at commit; the caller only
    /// has to write it fully (and finish any encoder) before committing.
    pub fn create_file(&self, name: &str) -> Result<File, TransactionError> {
        let path = self.dir.join(name);
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(|e| TransactionError::new("create", &path, e))?;
        // Independent of the umask, as in the fixtures.
        f.set_permissions(fs::Permissions::from_mode(FILE_MODE))
            .map_err(|e| TransactionError::new("chmod", &path, e))?;
        Ok(f)
    }

    /// Fsyncs every file in the staging directory and the directory itself. [`commit`]
    /// does it if it was not done; doing it first keeps the slow part out of the store lock.
    /// No file may be written after this.
    ///
    /// [`commit`]: Self::commit
    pub(crate) fn sync(&mut self) -> Result<(), TransactionError> {
        let entries =
            fs::read_dir(&self.dir).map_err(|e| TransactionError::new("list", &self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| TransactionError::new("list", &self.dir, e))?;
            let path = entry.path();
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| TransactionError::new("fsync", &path, e))?;
        }
        sync_dir(&self.dir)?;
        self.synced = true;
        Ok(())
    }

    /// Fsyncs every file and the staging directory (unless [`sync`](Self::sync) did), renames
    /// it to `target` (which must not exist; its parent is created with mode 0755 if needed)
    /// and fsyncs `target`'s parent.
    pub(crate) fn commit(mut self, target: &Path) -> Result<(), TransactionError> {
        if !self.synced {
            self.sync()?;
        }
        let parent = target.parent().unwrap_or(Path::new("."));
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| TransactionError::new("create", parent, e))?;
        // rename(2) would replace an empty directory: refuse an existing target, as
        // dockerd's rename does ("file exists").
        if fs::symlink_metadata(target).is_ok() {
            return Err(TransactionError::new(
                "commit to",
                target,
                std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            ));
        }
        fs::rename(&self.dir, target).map_err(|e| TransactionError::new("rename", target, e))?;
        self.done = true;
        sync_dir(parent)
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if !self.done
            && let Err(e) = fs::remove_dir_all(&self.dir)
        {
            tracing::warn!(path = %self.dir.display(), error = %e, "cannot remove layer staging directory");
        }
    }
}

/// Fsyncs a directory.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), TransactionError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| TransactionError::new("fsync", dir, e))
}
