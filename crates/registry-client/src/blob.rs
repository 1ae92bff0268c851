//! [`BlobReader`]: a blob as a stream that survives dropped connections: a read that fails
//! (or ends before the size the registry announced) is resumed with `Range: bytes=N-`,
//! with back-off, a bounded number of times in a row.

use std::io::{self, Read};

use digest_set::Digest;

use crate::client::Repository;
use crate::error::Error;

/// Resumes in a row without a byte of progress before giving up.
const MAX_STALLED_RESUMES: u32 = 5;
/// Resumes in all for one blob.
const MAX_RESUMES: u32 = 100;

/// A blob being read from the registry; see the module docs. Reads return the blob's bytes
/// from the offset it was opened at; the digest is the caller's to check.
pub struct BlobReader {
    repo: Repository,
    digest: Digest,
    pos: u64,
    total: Option<u64>,
    body: Option<ureq::BodyReader<'static>>,
    stalled: u32,
    resumes: u32,
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader")
            .field("digest", &self.digest)
            .field("pos", &self.pos)
            .field("total", &self.total)
            .field("resumes", &self.resumes)
            .finish_non_exhaustive()
    }
}

impl Repository {
    /// Opens the blob `digest` from byte `offset` (0: the whole blob). The first request is
    /// made here, so that a missing blob or refused credentials fail at once.
    pub fn open_blob(&self, digest: &Digest, offset: u64) -> Result<BlobReader, Error> {
        let (body, total) = self.open_blob_at(digest, offset)?;
        Ok(BlobReader {
            repo: self.clone(),
            digest: *digest,
            pos: offset,
            total,
            body: Some(body),
            stalled: 0,
            resumes: 0,
        })
    }
}

impl BlobReader {
    /// Bytes of the blob before the next one read.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The blob's size, when the registry said it.
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// How many times the stream was resumed.
    pub fn resumes(&self) -> u32 {
        self.resumes
    }

    fn fail(&mut self, why: String) -> io::Result<()> {
        self.body = None;
        self.stalled += 1;
        self.resumes += 1;
        if self.stalled > MAX_STALLED_RESUMES || self.resumes > MAX_RESUMES {
            return Err(io::Error::other(Error::Transport {
                method: "GET",
                url: format!("blob {}", self.digest),
                message: format!("{why} (gave up after {} resumes)", self.resumes - 1),
                retryable: false,
            }));
        }
        let policy = crate::retry::RetryPolicy::default();
        let wait = policy.delay(self.stalled);
        tracing::info!(blob = %self.digest, at = self.pos, error = %why, wait_ms = wait.as_millis() as u64, "resuming the download");
        std::thread::sleep(wait);
        Ok(())
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.total.is_some_and(|t| self.pos >= t) && self.body.is_none() {
                return Ok(0);
            }
            let body = match &mut self.body {
                Some(b) => b,
                None => match self.repo.open_blob_at(&self.digest, self.pos) {
                    Ok((b, total)) => {
                        if let (Some(old), Some(new)) = (self.total, total)
                            && old != new
                        {
                            return Err(io::Error::other(Error::Invalid {
                                what: format!("blob {}", self.digest),
                                reason: format!("its size changed from {old} to {new} bytes"),
                            }));
                        }
                        self.total = self.total.or(total);
                        self.body.insert(b)
                    }
                    Err(e) if e.is_retryable() || matches!(e, Error::Transport { .. }) => {
                        self.fail(e.to_string())?;
                        continue;
                    }
                    Err(e) => return Err(io::Error::other(e)),
                },
            };
            match body.read(buf) {
                Ok(0) => match self.total {
                    Some(t) if self.pos < t => {
                        let why = format!("connection closed at byte {} of {t}", self.pos);
                        self.fail(why)?;
                    }
                    Some(t) if self.pos > t => {
                        return Err(io::Error::other(Error::SizeMismatch {
                            what: format!("blob {}", self.digest),
                            expected: t,
                            actual: self.pos,
                        }));
                    }
                    _ => {
                        self.body = None;
                        self.total = Some(self.pos);
                        return Ok(0);
                    }
                },
                Ok(n) => {
                    self.pos += n as u64;
                    self.stalled = 0;
                    if let Some(t) = self.total
                        && self.pos > t
                    {
                        return Err(io::Error::other(Error::SizeMismatch {
                            what: format!("blob {}", self.digest),
                            expected: t,
                            actual: self.pos,
                        }));
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let why = format!("read failed at byte {}: {e}", self.pos);
                    self.fail(why)?;
                }
            }
        }
    }
}
