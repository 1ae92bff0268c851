//! Layer content: reading a layer's tar stream once while recording its tar-split metadata
//! ([`DiffStream`]), and putting the exact stream back together ([`TarStream`]).

mod assemble;
pub mod header;
mod register;

use std::io::{self, Read, Write};
use std::path::PathBuf;

use sha2::Digest as _;

use crate::ids::DiffId;
use crate::tarsplit::{CRC64_ISO, Packer, TarSplitError};

pub use self::assemble::{FileSource, TarStream};
pub use self::header::{TarHeader, Timestamp};
pub use self::register::{RegisterOptions, TarStreamError};

use self::header::{BLOCK, Block};

/// Why reading, applying or reassembling layer content failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// Reading the layer's tar stream failed.
    #[error("cannot read layer tar stream: {0}")]
    Read(#[source] io::Error),
    /// The stream is not a valid tar archive.
    #[error("invalid tar stream at byte {offset}: {reason}")]
    InvalidTar {
        /// The offset of the offending block in the stream.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A member would be written outside the layer (`..`, links pointing out).
    #[error("refusing tar member {}: {reason}", String::from_utf8_lossy(.name))]
    Breakout {
        /// The member name as in the stream.
        name: Vec<u8>,
        /// Why it is refused.
        reason: String,
    },
    /// A member uses a tar feature that cannot be stored or reassembled.
    #[error("unsupported tar member {}: {what}", String::from_utf8_lossy(.name))]
    Unsupported {
        /// The member name as in the stream.
        name: Vec<u8>,
        /// What is unsupported.
        what: String,
    },
    /// The layer's content is larger than allowed ([`RegisterOptions::max_size`]).
    #[error("layer content exceeds the size limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// Writing the tar-split metadata failed (includes duplicate paths).
    #[error(transparent)]
    TarSplit(#[from] TarSplitError),
    /// Creating a member on disk failed.
    #[error("cannot {action} {path}: {source}")]
    Apply {
        /// What was being done.
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl ContentError {
    pub(crate) fn apply(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        ContentError::Apply {
            action,
            path: path.into(),
            source,
        }
    }
}

const BUF_SIZE: usize = 256 * 1024;
/// Largest PAX or GNU long-name header accepted (Go's limit).
const MAX_SPECIAL_FILE: u64 = 1 << 20;
/// Trailing data after the end-of-archive is stored in segments of at most this size.
const PADDING_CHUNK: usize = 1 << 20;

/// The input of a [`DiffStream`]: everything read is hashed into the diff ID.
struct Input<'a> {
    r: Box<dyn Read + 'a>,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    sha: sha2::Sha256,
    offset: u64,
}

impl Input<'_> {
    fn refill(&mut self) -> Result<bool, ContentError> {
        if self.pos < self.end {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        self.pos = 0;
        self.end = 0;
        loop {
            match self.r.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.sha.update(&self.buf[..n]);
                    self.end = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ContentError::Read(e)),
            }
        }
    }

    /// Appends up to `n` bytes to `out`; fewer only at the end of the input.
    fn take_into(&mut self, out: &mut Vec<u8>, mut n: usize) -> Result<usize, ContentError> {
        let mut got = 0;
        while n > 0 && self.refill()? {
            let k = n.min(self.end - self.pos);
            out.extend_from_slice(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
            self.offset += k as u64;
            n -= k;
            got += k;
        }
        Ok(got)
    }

    /// Reads at most `out.len()` bytes.
    fn read_some(&mut self, out: &mut [u8]) -> Result<usize, ContentError> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.pos == self.end && !self.eof && out.len() >= self.buf.len() {
            // Large read straight into the caller's buffer.
            loop {
                match self.r.read(out) {
                    Ok(0) => {
                        self.eof = true;
                        return Ok(0);
                    }
                    Ok(n) => {
                        self.sha.update(&out[..n]);
                        self.offset += n as u64;
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(ContentError::Read(e)),
                }
            }
        }
        if !self.refill()? {
            return Ok(0);
        }
        let k = out.len().min(self.end - self.pos);
        out[..k].copy_from_slice(&self.buf[self.pos..self.pos + k]);
        self.pos += k;
        self.offset += k as u64;
        Ok(k)
    }
}

struct Current {
    name: Vec<u8>,
    size: i64,
    remaining: u64,
    crc: crc::Digest<'static, u64, crc::Table<16>>,
}

/// What [`DiffStream::finish`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffSummary {
    /// The sha256 of the whole stream, trailing bytes included.
    pub diff_id: DiffId,
    /// The layer's size as dockerd counts it: the sum of the members' size fields.
    pub size: u64,
    /// The number of bytes in the stream.
    pub stream_len: u64,
    /// The number of members (tar headers after PAX/GNU merging).
    pub entries: u64,
}

/// A layer's tar stream being read once: it hands out the members (for a [`Driver`] to
/// apply), records every raw byte into tar-split metadata, hashes the stream into the diff ID
/// and adds up the layer size. Memory stays flat whatever the size of the layer.
///
/// A driver calls [`next_entry`](Self::next_entry) until it returns `None`, reading each
/// member's content through [`Read`] in between (unread content is skipped). The owner then
/// calls [`finish`](Self::finish).
///
/// [`Driver`]: crate::Driver
pub struct DiffStream<'a> {
    input: Input<'a>,
    packer: Packer<Box<dyn Write + 'a>>,
    raw: Vec<u8>,
    pad: usize,
    cur: Option<Current>,
    size: u64,
    max_size: Option<u64>,
    entries: u64,
    done: bool,
}

impl std::fmt::Debug for DiffStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiffStream")
            .field("offset", &self.input.offset)
            .field("size", &self.size)
            .field("entries", &self.entries)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<'a> DiffStream<'a> {
    /// Reads the tar stream `input`, writing tar-split JSON lines (uncompressed) to
    /// `tar_split`. `max_size` bounds the layer size (see [`DiffSummary::size`]).
    pub fn new(input: impl Read + 'a, tar_split: impl Write + 'a, max_size: Option<u64>) -> Self {
        DiffStream {
            input: Input {
                r: Box::new(input),
                buf: vec![0; BUF_SIZE],
                pos: 0,
                end: 0,
                eof: false,
                sha: sha2::Sha256::new(),
                offset: 0,
            },
            packer: Packer::new(Box::new(tar_split)),
            raw: Vec::with_capacity(2 * BLOCK),
            pad: 0,
            cur: None,
            size: 0,
            max_size,
            entries: 0,
            done: false,
        }
    }

    /// The layer size counted so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    fn truncated(&self) -> ContentError {
        ContentError::InvalidTar {
            offset: self.input.offset,
            reason: "unexpected end of stream".into(),
        }
    }

    /// Skips what is left of the current member and records its tar-split file entry.
    fn close_current(&mut self) -> Result<(), ContentError> {
        let Some(mut cur) = self.cur.take() else {
            return Ok(());
        };
        let mut scratch = [0u8; 8192];
        while cur.remaining > 0 {
            let want = scratch.len().min(cur.remaining as usize);
            let n = self.input.read_some(&mut scratch[..want])?;
            if n == 0 {
                return Err(self.truncated());
            }
            cur.crc.update(&scratch[..n]);
            cur.remaining -= n as u64;
        }
        let crc = (cur.size > 0).then(|| cur.crc.finalize());
        self.packer.add_file(&cur.name, cur.size, crc)?;
        Ok(())
    }

    /// Reads exactly one block into `raw`; `Ok(false)` at a clean end of input.
    fn read_block(&mut self) -> Result<Option<[u8; BLOCK]>, ContentError> {
        let start = self.raw.len();
        let n = self.input.take_into(&mut self.raw, BLOCK)?;
        if n == 0 {
            return Ok(None);
        }
        if n < BLOCK {
            return Err(self.truncated());
        }
        let mut b = [0u8; BLOCK];
        b.copy_from_slice(&self.raw[start..]);
        Ok(Some(b))
    }

    /// The next member, or `None` after the end of the archive. Its content can then be read
    /// from `self` (as [`Read`]).
    pub fn next_entry(&mut self) -> Result<Option<TarHeader>, ContentError> {
        if self.done {
            return Ok(None);
        }
        self.close_current()?;
        self.raw.clear();
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Option<header::PaxRecords> = None;
        loop {
            // Padding of the previous member (or of a PAX/GNU header's content).
            let pad = std::mem::take(&mut self.pad);
            if pad > 0 {
                let got = self.input.take_into(&mut self.raw, pad)?;
                if got == 0 {
                    // Go's reader takes a stream ending before the padding as the end.
                    return self.end_of_archive();
                }
                if got < pad {
                    return Err(self.truncated());
                }
            }
            let hdr_offset = self.input.offset;
            let Some(block) = self.read_block()? else {
                return self.end_of_archive();
            };
            let mut h = match header::parse_block(&block, hdr_offset)? {
                Block::Zero => {
                    // A second zero block ends the archive; a lone one at EOF too.
                    match self.read_block()? {
                        None => return self.end_of_archive(),
                        Some(b2) if b2.iter().all(|&c| c == 0) => return self.end_of_archive(),
                        Some(_) => {
                            return Err(ContentError::InvalidTar {
                                offset: hdr_offset,
                                reason: "zero block followed by a non-zero block".into(),
                            });
                        }
                    }
                }
                Block::Header(h) => h,
            };
            if h.size < 0 {
                return Err(ContentError::InvalidTar {
                    offset: hdr_offset,
                    reason: "negative size".into(),
                });
            }
            match h.typeflag {
                header::TYPE_XHEADER
                | header::TYPE_XGLOBAL
                | header::TYPE_GNU_LONGNAME
                | header::TYPE_GNU_LONGLINK => {
                    let len = h.size as u64;
                    if len > MAX_SPECIAL_FILE {
                        return Err(ContentError::InvalidTar {
                            offset: hdr_offset,
                            reason: format!("extended header of {len} bytes is too large"),
                        });
                    }
                    let start = self.raw.len();
                    if self.input.take_into(&mut self.raw, len as usize)? < len as usize {
                        return Err(self.truncated());
                    }
                    self.pad = padding(len);
                    let data = self.raw[start..].to_vec();
                    match h.typeflag {
                        header::TYPE_XHEADER => pax = Some(header::parse_pax(&data, hdr_offset)?),
                        header::TYPE_XGLOBAL => {
                            let recs = header::parse_pax(&data, hdr_offset)?;
                            header::merge_pax(&mut h, &recs, hdr_offset)?;
                            let g = TarHeader {
                                name: h.name.clone(),
                                typeflag: header::TYPE_XGLOBAL,
                                xattrs: h.xattrs.clone(),
                                ..TarHeader::default()
                            };
                            return self.start_entry(g);
                        }
                        header::TYPE_GNU_LONGNAME => {
                            long_name = Some(cut_nul(&data).to_vec());
                        }
                        _ => long_link = Some(cut_nul(&data).to_vec()),
                    }
                    continue;
                }
                _ => {}
            }
            if let Some(recs) = &pax {
                header::merge_pax(&mut h, recs, hdr_offset)?;
            }
            if let Some(n) = long_name.take().filter(|n| !n.is_empty()) {
                h.name = n;
            }
            if let Some(l) = long_link.take().filter(|l| !l.is_empty()) {
                h.linkname = l;
            }
            if h.typeflag == header::TYPE_REG_A {
                h.typeflag = if h.name.ends_with(b"/") {
                    header::TYPE_DIR
                } else {
                    header::TYPE_REG
                };
            }
            if h.size < 0 {
                return Err(ContentError::InvalidTar {
                    offset: hdr_offset,
                    reason: "negative size".into(),
                });
            }
            if h.typeflag == header::TYPE_GNU_SPARSE {
                return Err(ContentError::Unsupported {
                    name: h.name.clone(),
                    what: "sparse files (GNU type 'S')".into(),
                });
            }
            return self.start_entry(*h);
        }
    }

    fn start_entry(&mut self, h: TarHeader) -> Result<Option<TarHeader>, ContentError> {
        self.packer.add_segment(&self.raw)?;
        self.raw.clear();
        let content = h.content_len();
        self.pad = padding(content);
        self.size = self.size.saturating_add(h.size.max(0) as u64);
        if let Some(limit) = self.max_size
            && self.size > limit
        {
            return Err(ContentError::TooLarge { limit });
        }
        self.cur = Some(Current {
            name: h.name.clone(),
            size: h.size,
            remaining: content,
            crc: CRC64_ISO.digest(),
        });
        self.entries += 1;
        Ok(Some(h))
    }

    fn end_of_archive(&mut self) -> Result<Option<TarHeader>, ContentError> {
        self.done = true;
        if !self.raw.is_empty() {
            self.packer.add_segment(&self.raw)?;
            self.raw.clear();
        }
        // Everything after the end-of-archive marker is kept too (dockerd hashes it into the
        // diff ID); tar-split 0.11 stores it as one final segment, empty when there is none.
        let mut wrote = false;
        loop {
            let n = self.input.take_into(&mut self.raw, PADDING_CHUNK)?;
            if n > 0 || !wrote {
                self.packer.add_segment(&self.raw)?;
                wrote = true;
            }
            self.raw.clear();
            if n < PADDING_CHUNK {
                break;
            }
        }
        Ok(None)
    }

    /// Reads the remaining members (without applying them), checks the end of the stream
    /// and returns the diff ID and size. The tar-split writer is flushed and returned.
    pub fn finish(mut self) -> Result<(DiffSummary, Box<dyn Write + 'a>), ContentError> {
        while self.next_entry()?.is_some() {}
        let summary = DiffSummary {
            diff_id: DiffId(digest_set::Digest::from_sha256_bytes(
                self.input.sha.finalize().into(),
            )),
            size: self.size,
            stream_len: self.input.offset,
            entries: self.entries,
        };
        let mut w = self.packer.into_inner();
        w.flush().map_err(|e| ContentError::TarSplit(e.into()))?;
        Ok((summary, w))
    }
}

impl Read for DiffStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(cur) = self.cur.as_mut() else {
            return Ok(0);
        };
        if cur.remaining == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(cur.remaining).unwrap_or(usize::MAX));
        let n = match self.input.read_some(&mut buf[..want]) {
            Ok(n) => n,
            Err(ContentError::Read(e)) => return Err(e),
            Err(e) => return Err(io::Error::other(e)),
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "tar stream ends inside a member",
            ));
        }
        cur.crc.update(&buf[..n]);
        cur.remaining -= n as u64;
        Ok(n)
    }
}

fn padding(len: u64) -> usize {
    ((BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64) as usize
}

fn cut_nul(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}
