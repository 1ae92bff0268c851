//! Small file-system helpers: durable atomic writes.

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

/// A directory opened once so the small files in it can be read without walking the whole
/// path again for each (`openat`). Layer directories hold four or five such files.
#[derive(Debug)]
pub struct Dir {
    file: std::fs::File,
    path: PathBuf,
}

impl Dir {
    /// Opens `path` as a directory.
    pub fn open(path: &Path) -> std::io::Result<Dir> {
        Ok(Dir {
            file: std::fs::File::open(path)?,
            path: path.to_owned(),
        })
    }

    /// Opens the subdirectory `name` (relative to this one).
    pub fn open_dir(&self, name: &str) -> std::io::Result<Dir> {
        let file = self.open_raw(name, libc::O_DIRECTORY)?;
        Ok(Dir {
            file,
            path: self.path.join(name),
        })
    }

    fn open_raw(&self, name: &str, extra: libc::c_int) -> std::io::Result<std::fs::File> {
        use std::os::fd::{AsRawFd as _, FromRawFd as _};
        let Ok(cname) = std::ffi::CString::new(name) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "file name with a NUL byte",
            ));
        };
        // SAFETY: the directory fd is valid for the lifetime of `self.file`, `cname` is a
        // NUL-terminated string that outlives the call, and `openat` has no other
        // preconditions.
        let fd = unsafe {
            libc::openat(
                self.file.as_raw_fd(),
                cname.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | extra,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns, so the `File` may take
        // ownership of it (and close it).
        Ok(unsafe { std::fs::File::from_raw_fd(fd) })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file `name` (relative to this directory; symlinks are followed, as dockerd's
    /// reads do); `Ok(None)` when it does not exist. Opened non-blocking, so a FIFO planted
    /// in the store is an error instead of a hang.
    pub fn read_opt(&self, name: &str) -> std::io::Result<Option<Vec<u8>>> {
        use std::io::Read as _;
        let mut file = match self.open_raw(name, 0) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        // A plain read loop: `read_to_end` would add an fstat and an lseek per file, which
        // for the many tiny files of a layer store cost more than the reads.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(buf))
    }
}
