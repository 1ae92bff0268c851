//! Small file-system helpers: durable atomic writes (for `repositories.json`).

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// An I/O failure: what was done, on which path, and why.
pub type IoFailure = (&'static str, PathBuf, std::io::Error);

/// Writes `data` to `path` atomically and durably: a temp file in the same directory,
/// write, fsync, chmod `mode`, rename over `path`, fsync the directory.
pub fn atomic_write(path: &Path, data: &[u8], mode: u32) -> Result<(), IoFailure> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile_in(dir, &base)?;
    let tmp_path = tmp.1.clone();
    let result = (|| {
        tmp.0
            .write_all(data)
            .map_err(|e| ("write", tmp_path.clone(), e))?;
        tmp.0
            .sync_all()
            .map_err(|e| ("fsync", tmp_path.clone(), e))?;
        std::fs::set_permissions(&tmp_path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| ("chmod", tmp_path.clone(), e))?;
        std::fs::rename(&tmp_path, path).map_err(|e| ("rename", path.to_owned(), e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp_path);
    }
    result
}

/// fsyncs a directory so a rename or removal in it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), IoFailure> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| ("fsync", dir.to_owned(), e))
}

fn tempfile_in(dir: &Path, base: &str) -> Result<(std::fs::File, PathBuf), IoFailure> {
    let pid = std::process::id();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    for attempt in 0..100u32 {
        let p = dir.join(format!(".tmp-{base}{pid}{nanos}{attempt}"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => return Ok((f, p)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(("create", p, e)),
        }
    }
    Err((
        "create",
        dir.to_owned(),
        std::io::Error::other("cannot find a free temp file name"),
    ))
}
