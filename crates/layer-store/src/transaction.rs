//! Atomic creation of a layer directory: dockerd's `atomicwriter.WriteSet`.
//!
//! A [`Transaction`] is a staging directory `<layerdb>/tmp/write-set-<random>` (mode 0700).
//! Files are written into it; committing (through [`PendingLayer::commit`](crate::PendingLayer::commit)) fsyncs every file and the
//! directory, renames it to its final place in one step and fsyncs the parent directory.
//! A transaction dropped without commit removes its staging directory. A crash leaves at
//! most a `tmp/write-set-*` directory, which the next read-write open removes.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use durable_fs::Dir;

use crate::ids::ChainId;

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

impl From<durable_fs::Error> for TransactionError {
    fn from(e: durable_fs::Error) -> Self {
        match e {
            durable_fs::Error::Io(io) => TransactionError {
                action: io.op,
                path: io.path,
                source: io.source,
            },
            other => TransactionError {
                action: "use",
                path: other.path().to_owned(),
                source: std::io::Error::other(other.to_string()),
            },
        }
    }
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
    /// `<layerdb>/tmp`.
    tmp: Dir,
    /// The staging directory's name in `tmp`.
    name: String,
    /// Its path.
    dir: PathBuf,
    done: bool,
    synced: bool,
}

impl Transaction {
    /// Creates `<layerdb>/tmp` (0755) if needed and a fresh staging directory in it. Neither
    /// may be a symbolic link.
    pub(crate) fn start(layerdb: &Dir) -> Result<Transaction, TransactionError> {
        let tmp = layerdb.create_dir("tmp", 0o755)?;
        let rand = durable_fs::random_hex(8)
            .map_err(|e| TransactionError::new("read random bytes for", tmp.path(), e))?;
        let name = format!("{STAGING_PREFIX}{rand}");
        let staging = tmp.create_dir(&name, 0o700)?;
        Ok(Transaction {
            dir: staging.path().to_owned(),
            tmp,
            name,
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

    /// Writes the file `name` (mode 0644) in the staging directory and makes it durable at
    /// once (the file and the directory are fsynced): for what a crash must find, such as
    /// the `cache-id` that names driver content created next.
    pub fn write_file_durable(&self, name: &str, data: &[u8]) -> Result<(), TransactionError> {
        let mut f = self.create_file(name)?;
        let path = self.dir.join(name);
        f.write_all(data)
            .map_err(|e| TransactionError::new("write", &path, e))?;
        f.sync_all()
            .map_err(|e| TransactionError::new("fsync", &path, e))?;
        self.tmp.require_dir(&self.name)?.sync()?;
        Ok(())
    }

    /// Creates the file `name` (mode 0644, must not exist) in the staging directory, for
    /// streaming writes (e.g. `tar-split.json.gz`). It is fsynced at commit; the caller only
    /// has to write it fully (and finish any encoder) before committing.
    pub fn create_file(&self, name: &str) -> Result<File, TransactionError> {
        let path = self.dir.join(name);
        if name.contains('/') || name == "." || name == ".." {
            return Err(TransactionError::new(
                "create",
                &path,
                std::io::Error::from(std::io::ErrorKind::InvalidInput),
            ));
        }
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
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
        let staging = self.tmp.require_dir(&self.name)?;
        for entry in staging.entries()? {
            if let Some((f, _)) = staging.open_file(&entry.name)? {
                f.sync_all()
                    .map_err(|e| TransactionError::new("fsync", &self.dir.join(&entry.name), e))?;
            }
        }
        staging.sync()?;
        self.synced = true;
        Ok(())
    }

    /// Fsyncs every file and the staging directory (unless [`sync`](Self::sync) did), renames
    /// it to `<alg>/<hex>` of `chain_id` in the layerdb `root` (which must not exist; the
    /// algorithm directory is created with mode 0755 if needed) and fsyncs that directory.
    pub(crate) fn commit(
        &mut self,
        root: &Dir,
        chain_id: &ChainId,
    ) -> Result<(), TransactionError> {
        if !self.synced {
            self.sync()?;
        }
        let alg_name = chain_id.0.algorithm().name();
        let alg = root.create_dir(alg_name, 0o755)?;
        let hex = chain_id.0.hex();
        // rename(2) would replace an empty directory: refuse an existing target, as
        // dockerd's rename does ("file exists").
        if alg.meta(&hex)?.is_some() {
            return Err(TransactionError::new(
                "commit to",
                &alg.join(&hex),
                std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            ));
        }
        self.tmp.rename(&self.name, &alg, &hex)?;
        self.done = true;
        alg.sync()?;
        Ok(())
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if !self.done
            && let Err(e) = self.tmp.remove_tree(&self.name)
        {
            tracing::warn!(path = %self.dir.display(), error = %e, "cannot remove layer staging directory");
        }
    }
}
