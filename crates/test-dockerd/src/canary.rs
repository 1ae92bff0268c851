//! A canary directory outside the tree under test: hostile-input tests check that nothing
//! in it was deleted, changed or printed.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What the canary's files hold; no output may contain it.
pub const SECRET: &str = "CANARY-SECRET-91c2";

/// A temporary directory outside the tree under test, with directories named like what a
/// confused cleanup would delete (`Documents`, `write-set-photos`, `backup-removing`, `d`),
/// each holding a file, and a 0600 file `secret`.
#[derive(Debug)]
pub struct Canary {
    dir: tempfile::TempDir,
}

/// One entry of a [`Canary::snapshot`]: path, mode, size, mtime (s, ns).
pub type CanaryEntry = (PathBuf, u32, u64, i64, i64);

impl Canary {
    /// A fresh canary.
    pub fn new() -> std::io::Result<Canary> {
        let dir = tempfile::tempdir()?;
        for d in ["Documents", "write-set-photos", "backup-removing", "d"] {
            fs::create_dir(dir.path().join(d))?;
            fs::write(dir.path().join(d).join("f"), SECRET)?;
        }
        fs::write(dir.path().join("secret"), SECRET)?;
        fs::set_permissions(dir.path().join("secret"), fs::Permissions::from_mode(0o600))?;
        Ok(Canary { dir })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Every entry with its mode, size and modification time, sorted: equal snapshots
    /// before and after mean nothing was touched.
    pub fn snapshot(&self) -> std::io::Result<Vec<CanaryEntry>> {
        let mut out = Vec::new();
        let mut stack = vec![self.path().to_owned()];
        while let Some(p) = stack.pop() {
            let m = fs::symlink_metadata(&p)?;
            out.push((p.clone(), m.mode(), m.len(), m.mtime(), m.mtime_nsec()));
            if m.is_dir() {
                for e in fs::read_dir(&p)? {
                    stack.push(e?.path());
                }
            }
        }
        out.sort();
        Ok(out)
    }
}
