//! Random access to the members of an archive: an uncompressed tar file read in place
//! ([`TarFile`]), or an OCI layout directory ([`DirSource`]). A compressed archive or a
//! stream is first copied, decompressed, to a staging file ([`TarFile::stage`]), because
//! `docker save` writes `manifest.json` last and a layer may be a link to a later member.
//!
//! Member names are cleaned as paths inside the archive; a name or link that climbs out of
//! it is refused. Links between members are followed inside the archive only.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::compress;
use crate::error::ReadError;

/// The most members an archive may have.
pub const MAX_MEMBERS: usize = 1 << 20;
/// The most links followed to find one member.
const MAX_LINK_HOPS: usize = 16;

/// What a member is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    File {
        offset: u64,
        size: u64,
    },
    Dir,
    /// A symbolic or hard link to another member (already cleaned, archive-relative).
    Link(String),
    Other,
}

/// Random access to an archive's members by name.
pub trait Source: Send + Sync {
    /// The size of the regular file `name` (links followed inside the archive), `None` if
    /// there is no such member.
    fn size(&self, name: &str) -> Result<Option<u64>, ReadError>;
    /// Opens the regular file `name` (links followed inside the archive).
    fn open(&self, name: &str) -> Result<Box<dyn Read + Send + '_>, ReadError>;
    /// What to call the archive in messages.
    fn describe(&self) -> String;

    /// Reads the whole member `name`, refusing one larger than `limit` bytes.
    fn read_all(&self, name: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
        let Some(size) = self.size(name)? else {
            return Err(ReadError::Missing {
                name: name.to_owned(),
            });
        };
        if size > limit {
            return Err(ReadError::TooLarge {
                name: name.to_owned(),
                size,
                limit,
            });
        }
        let mut buf = Vec::with_capacity(size as usize);
        self.open(name)?
            .take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| ReadError::io(name, e))?;
        if buf.len() as u64 != size {
            return Err(ReadError::Truncated {
                name: name.to_owned(),
            });
        }
        Ok(buf)
    }
}

/// `name` cleaned as a path inside the archive (no leading `/` or `./`, no `.`, `..`
/// resolved); `None` if it climbs out of the archive.
pub fn clean(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// An uncompressed tar file, indexed once and read in place with positional reads (so
/// members can be read from several threads at once).
#[derive(Debug)]
pub struct TarFile {
    file: File,
    path: PathBuf,
    members: HashMap<String, Kind>,
    /// A staging file to remove when dropped.
    staged: bool,
}

impl Drop for TarFile {
    fn drop(&mut self) {
        if self.staged {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl TarFile {
    /// Indexes the tar file at `path`. A compressed file is refused with
    /// [`ReadError::Compressed`]: stage it first.
    pub fn open(path: &Path) -> Result<TarFile, ReadError> {
        let mut file = File::open(path).map_err(|e| ReadError::io(path.display(), e))?;
        let mut magic = [0u8; 6];
        let n = read_up_to(&mut file, &mut magic).map_err(|e| ReadError::io(path.display(), e))?;
        if compress::detect(&magic[..n]) != compress::Compression::None {
            return Err(ReadError::Compressed);
        }
        file.seek(SeekFrom::Start(0))
            .map_err(|e| ReadError::io(path.display(), e))?;
        Self::index(file, path.to_owned(), false)
    }

    /// Copies `input`, decompressed (gzip, bzip2, xz, zstd or none, found from its first
    /// bytes), to a new staging file in `dir` (removed when the returned value is dropped,
    /// or by the caller's cleanup after a crash: its name starts with `prefix`), and indexes
    /// it.
    pub fn stage(input: impl Read + Send, dir: &Path, prefix: &str) -> Result<TarFile, ReadError> {
        let (name, mut file) = create_staging(dir, prefix)?;
        let path = dir.join(&name);
        let result = (|| {
            let mut r = compress::decompress(BufReader::with_capacity(1 << 20, input))
                .map_err(|e| ReadError::io("the archive", e))?;
            io::copy(&mut r, &mut file).map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof
                | io::ErrorKind::InvalidData
                | io::ErrorKind::InvalidInput
                | io::ErrorKind::Other => ReadError::Corrupt {
                    what: format!("the archive stream: {e}"),
                },
                _ => ReadError::io(path.display(), e),
            })?;
            file.seek(SeekFrom::Start(0))
                .map_err(|e| ReadError::io(path.display(), e))?;
            let f = file
                .try_clone()
                .map_err(|e| ReadError::io(path.display(), e))?;
            Self::index(f, path.clone(), true)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        result
    }

    fn index(file: File, path: PathBuf, staged: bool) -> Result<TarFile, ReadError> {
        let mut members = HashMap::new();
        {
            let mut ar = tar::Archive::new(BufReader::with_capacity(64 * 1024, &file));
            let entries = ar.entries_with_seek().map_err(|e| ReadError::Corrupt {
                what: format!("tar: {e}"),
            })?;
            let mut seen_any = false;
            for e in entries {
                let e = e.map_err(|e| ReadError::Corrupt {
                    what: format!("tar: {e}"),
                })?;
                seen_any = true;
                if members.len() >= MAX_MEMBERS {
                    return Err(ReadError::Corrupt {
                        what: format!("more than {MAX_MEMBERS} members"),
                    });
                }
                let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
                let Some(name) = clean(&raw) else {
                    return Err(ReadError::Escape { name: raw });
                };
                let h = e.header();
                let kind = match h.entry_type() {
                    tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File {
                        offset: e.raw_file_position(),
                        size: e.size(),
                    },
                    tar::EntryType::Directory => Kind::Dir,
                    t @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
                        let target = e
                            .link_name_bytes()
                            .map(|b| String::from_utf8_lossy(&b).into_owned())
                            .unwrap_or_default();
                        let joined = if t == tar::EntryType::Symlink && !target.starts_with('/') {
                            // Relative to the link's directory.
                            match name.rsplit_once('/') {
                                Some((dir, _)) => format!("{dir}/{target}"),
                                None => target.clone(),
                            }
                        } else {
                            target.clone()
                        };
                        let Some(to) = clean(&joined) else {
                            return Err(ReadError::Escape {
                                name: format!("{raw} -> {target}"),
                            });
                        };
                        Kind::Link(to)
                    }
                    _ => Kind::Other,
                };
                members.insert(name, kind);
            }
            if !seen_any {
                return Err(ReadError::Corrupt {
                    what: "empty archive".to_owned(),
                });
            }
        }
        // Every member must lie within the file: a truncated archive is refused here.
        let len = file
            .metadata()
            .map_err(|e| ReadError::io(path.display(), e))?
            .len();
        for (name, k) in &members {
            if let Kind::File { offset, size } = k
                && offset.saturating_add(*size) > len
            {
                return Err(ReadError::Truncated { name: name.clone() });
            }
        }
        Ok(TarFile {
            file,
            path,
            members,
            staged,
        })
    }

    fn resolve(&self, name: &str) -> Result<Option<(u64, u64)>, ReadError> {
        let Some(mut cur) = clean(name) else {
            return Err(ReadError::Escape {
                name: name.to_owned(),
            });
        };
        for _ in 0..MAX_LINK_HOPS {
            match self.members.get(&cur) {
                None => return Ok(None),
                Some(Kind::File { offset, size }) => return Ok(Some((*offset, *size))),
                Some(Kind::Link(to)) => cur = to.clone(),
                Some(Kind::Dir | Kind::Other) => {
                    return Err(ReadError::NotAFile {
                        name: name.to_owned(),
                    });
                }
            }
        }
        Err(ReadError::NotAFile {
            name: format!("{name} (too many links)"),
        })
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn create_staging(dir: &Path, prefix: &str) -> Result<(String, File), ReadError> {
    for i in 0..64u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("{prefix}{}-{nanos:08x}{i:02x}", std::process::id());
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join(&name))
        {
            Ok(f) => return Ok((name, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(ReadError::io(dir.join(&name).display(), e)),
        }
    }
    Err(ReadError::io(
        dir.display(),
        io::Error::other("no free staging file name"),
    ))
}

/// A member's bytes read with positional reads.
struct Member<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for Member<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        if left == 0 {
            return Ok(0);
        }
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let k = self.file.read_at(&mut buf[..n], self.pos)?;
        if k == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive member is truncated",
            ));
        }
        self.pos += k as u64;
        Ok(k)
    }
}

impl Source for TarFile {
    fn size(&self, name: &str) -> Result<Option<u64>, ReadError> {
        Ok(self.resolve(name)?.map(|(_, s)| s))
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send + '_>, ReadError> {
        let Some((offset, size)) = self.resolve(name)? else {
            return Err(ReadError::Missing {
                name: name.to_owned(),
            });
        };
        Ok(Box::new(BufReader::with_capacity(
            256 * 1024,
            Member {
                file: &self.file,
                pos: offset,
                end: offset + size,
            },
        )))
    }

    fn describe(&self) -> String {
        if self.staged {
            "the archive".to_owned()
        } else {
            self.path.display().to_string()
        }
    }
}

/// An OCI image layout directory; nothing beneath it is followed if it is a link.
#[derive(Debug)]
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    /// The layout at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirSource { root: root.into() }
    }

    fn file(&self, name: &str) -> Result<Option<File>, ReadError> {
        let Some(rel) = clean(name) else {
            return Err(ReadError::Escape {
                name: name.to_owned(),
            });
        };
        let mut p = self.root.clone();
        let parts: Vec<&str> = rel.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            p.push(part);
            let m = match std::fs::symlink_metadata(&p) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(ReadError::io(p.display(), e)),
            };
            let last = i + 1 == parts.len();
            if m.file_type().is_symlink() || (last && !m.is_file()) || (!last && !m.is_dir()) {
                return Err(ReadError::NotAFile {
                    name: name.to_owned(),
                });
            }
        }
        File::open(&p)
            .map(Some)
            .map_err(|e| ReadError::io(p.display(), e))
    }
}

impl Source for DirSource {
    fn size(&self, name: &str) -> Result<Option<u64>, ReadError> {
        match self.file(name)? {
            None => Ok(None),
            Some(f) => Ok(Some(
                f.metadata().map_err(|e| ReadError::io(name, e))?.len(),
            )),
        }
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send + '_>, ReadError> {
        match self.file(name)? {
            None => Err(ReadError::Missing {
                name: name.to_owned(),
            }),
            Some(f) => Ok(Box::new(BufReader::with_capacity(256 * 1024, f))),
        }
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}
