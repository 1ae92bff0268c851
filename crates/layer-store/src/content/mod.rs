//! Layer content: reading a layer's tar stream once while recording its tar-split metadata
//! ([`DiffStream`]), and putting the exact stream back together ([`TarStream`]).
//!
//! [`LayerStore::register`](crate::LayerStore::register) and
//! [`LayerStore::tar_stream`](crate::LayerStore::tar_stream) tie them to the store and its
//! [`Driver`](crate::Driver):
//!
//! ```
//! use std::io::Read;
//! use layer_store::{LayerStore, VfsDriver};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let root = tempfile::tempdir()?;
//! let driver = VfsDriver::new(root.path().join("vfs"))?;
//! let (store, _) = LayerStore::open(root.path().join("image/vfs/layerdb"), Box::new(driver))?;
//!
//! // A layer with one file.
//! let mut b = tar::Builder::new(Vec::new());
//! let mut h = tar::Header::new_ustar();
//! h.set_size(5);
//! h.set_mode(0o644);
//! h.set_cksum();
//! b.append_data(&mut h, "hello.txt", &b"hello"[..])?;
//! let tar = b.into_inner()?;
//!
//! let layer = store.register(&tar[..], None)?;
//! let info = store.layer(layer.chain_id()).expect("registered");
//! assert_eq!(info.diff_size, 5);
//! let content = root.path().join("vfs/dir").join(&info.cache_id).join("hello.txt");
//! assert_eq!(std::fs::read(content)?, b"hello");
//!
//! let mut back = Vec::new();
//! store.tar_stream(&layer)?.read_to_end(&mut back)?;
//! assert_eq!(back, tar);
//! # Ok(()) }
//! ```

mod assemble;
mod crc64;
mod hasher;
pub mod header;

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use crate::ids::DiffId;
use crate::tarsplit::{Packer, TarSplitError};

use self::hasher::{Chunk, Hasher, Job};

pub use self::assemble::{FileSource, TarStream};
pub use self::header::{TarHeader, Timestamp};

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
    /// The layer's content is larger than allowed
    /// ([`RegisterOptions::max_size`](crate::RegisterOptions::max_size)).
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

/// Largest PAX or GNU long-name header accepted (Go's limit).
const MAX_SPECIAL_FILE: u64 = 1 << 20;
/// Trailing data after the end-of-archive is stored in segments of at most this size.
const PADDING_CHUNK: usize = 1 << 20;

fn hash_err(e: io::Error) -> ContentError {
    ContentError::Read(e)
}

/// The input of a [`DiffStream`]: every byte read goes to the hashing thread (diff ID), and
/// member contents to their CRC-64.
struct Input<'a> {
    r: Box<dyn Read + 'a>,
    hasher: Hasher,
    cur: Option<Chunk>,
    pos: usize,
    end: usize,
    eof: bool,
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
        if let Some(c) = self.cur.take() {
            self.hasher.retire(c);
        }
        self.pos = 0;
        self.end = 0;
        let mut buf = self.hasher.buffer().map_err(hash_err)?;
        loop {
            match self.r.read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    self.hasher.give_back(buf);
                    return Ok(false);
                }
                Ok(n) => {
                    let c = Arc::new(buf);
                    self.hasher
                        .submit(Job::Sha(Arc::clone(&c), 0..n))
                        .map_err(hash_err)?;
                    self.cur = Some(c);
                    self.end = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.hasher.give_back(buf);
                    return Err(ContentError::Read(e));
                }
            }
        }
    }

    fn chunk(&self) -> &[u8] {
        self.cur.as_deref().map_or(&[], |v| &v[..])
    }

    /// Appends up to `n` bytes to `out`; fewer only at the end of the input.
    fn take_into(&mut self, out: &mut Vec<u8>, mut n: usize) -> Result<usize, ContentError> {
        let mut got = 0;
        while n > 0 && self.refill()? {
            let k = n.min(self.end - self.pos);
            out.extend_from_slice(&self.chunk()[self.pos..self.pos + k]);
            self.pos += k;
            self.offset += k as u64;
            n -= k;
            got += k;
        }
        Ok(got)
    }

    /// Consumes up to `n` bytes of member content, copying them to `out` if given, and
    /// adds them to the member's CRC-64.
    fn content(&mut self, out: Option<&mut [u8]>, n: usize) -> Result<usize, ContentError> {
        if n == 0 || !self.refill()? {
            return Ok(0);
        }
        let k = n.min(self.end - self.pos);
        let range = self.pos..self.pos + k;
        if let Some(out) = out {
            out[..k].copy_from_slice(&self.chunk()[range.clone()]);
        }
        if let Some(c) = &self.cur {
            self.hasher
                .submit(Job::Crc(Arc::clone(c), range))
                .map_err(hash_err)?;
        }
        self.pos += k;
        self.offset += k as u64;
        Ok(k)
    }
}

struct Current {
    name: Vec<u8>,
    size: i64,
    remaining: u64,
}

/// A tar-split record waiting for its member's CRC-64 from the hashing thread.
enum Op {
    Segment(Vec<u8>),
    File {
        name: Vec<u8>,
        size: i64,
        crc: Option<u64>,
        pending: bool,
    },
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
/// and adds up the layer size. Memory stays flat whatever the size of the layer; hashing runs
/// on a helper thread.
///
/// A driver calls [`next_entry`](Self::next_entry) until it returns `None`, reading each
/// member's content through [`Read`] in between (unread content is skipped). The owner then
/// calls [`finish`](Self::finish).
///
/// [`Driver`]: crate::Driver
pub struct DiffStream<'a> {
    input: Input<'a>,
    packer: Packer<Box<dyn Write + 'a>>,
    ops: VecDeque<Op>,
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
    /// `tar_split`. `max_size` bounds the layer size (see [`DiffSummary::size`]). Fails only
    /// if the hashing thread cannot be started.
    pub fn new(
        input: impl Read + 'a,
        tar_split: impl Write + 'a,
        max_size: Option<u64>,
    ) -> Result<Self, ContentError> {
        Ok(DiffStream {
            input: Input {
                r: Box::new(input),
                hasher: Hasher::new().map_err(hash_err)?,
                cur: None,
                pos: 0,
                end: 0,
                eof: false,
                offset: 0,
            },
            packer: Packer::new(Box::new(tar_split)),
            ops: VecDeque::new(),
            raw: Vec::with_capacity(2 * BLOCK),
            pad: 0,
            cur: None,
            size: 0,
            max_size,
            entries: 0,
            done: false,
        })
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

    /// Writes the records whose CRC-64 is known, in order; with `wait`, all of them.
    fn flush_ops(&mut self, wait: bool) -> Result<(), ContentError> {
        while let Some(op) = self.ops.front_mut() {
            match op {
                Op::Segment(bytes) => self.packer.add_segment(bytes)?,
                Op::File {
                    name,
                    size,
                    crc,
                    pending,
                } => {
                    if *pending {
                        let got = if wait {
                            Some(self.input.hasher.wait_crc().map_err(hash_err)?)
                        } else {
                            self.input.hasher.try_crc().map_err(hash_err)?
                        };
                        match got {
                            Some(c) => {
                                *crc = Some(c);
                                *pending = false;
                            }
                            None => return Ok(()),
                        }
                    }
                    self.packer.write_file(name, *size, *crc)?;
                }
            }
            self.ops.pop_front();
        }
        Ok(())
    }

    fn push_segment(&mut self) -> Result<(), ContentError> {
        let raw = std::mem::replace(&mut self.raw, Vec::with_capacity(2 * BLOCK));
        self.ops.push_back(Op::Segment(raw));
        self.flush_ops(false)
    }

    /// Skips what is left of the current member and queues its tar-split file entry.
    fn close_current(&mut self) -> Result<(), ContentError> {
        let Some(mut cur) = self.cur.take() else {
            return Ok(());
        };
        while cur.remaining > 0 {
            let want = usize::try_from(cur.remaining).unwrap_or(usize::MAX);
            let n = self.input.content(None, want)?;
            if n == 0 {
                return Err(self.truncated());
            }
            cur.remaining -= n as u64;
        }
        self.packer.claim(&cur.name)?;
        let pending = cur.size > 0;
        if pending {
            self.input.hasher.submit(Job::FileEnd).map_err(hash_err)?;
        }
        self.ops.push_back(Op::File {
            name: cur.name,
            size: cur.size,
            crc: None,
            pending,
        });
        self.flush_ops(false)
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
        self.push_segment()?;
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
        });
        self.entries += 1;
        Ok(Some(h))
    }

    fn end_of_archive(&mut self) -> Result<Option<TarHeader>, ContentError> {
        self.done = true;
        if !self.raw.is_empty() {
            self.push_segment()?;
        }
        // Everything after the end-of-archive marker is kept too (dockerd hashes it into the
        // diff ID); tar-split 0.11 stores it as one final segment, empty when there is none.
        let mut wrote = false;
        loop {
            let n = self.input.take_into(&mut self.raw, PADDING_CHUNK)?;
            if n > 0 || !wrote {
                self.push_segment()?;
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
        self.flush_ops(true)?;
        let sha = self.input.hasher.finish().map_err(hash_err)?;
        let summary = DiffSummary {
            diff_id: DiffId(digest_set::Digest::from_sha256_bytes(sha)),
            size: self.size,
            stream_len: self.input.offset,
            entries: self.entries,
        };
        let mut w = self.packer.into_inner();
        w.flush().map_err(|e| ContentError::TarSplit(e.into()))?;
        Ok((summary, w))
    }
}

impl DiffStream<'_> {
    /// Hands the rest of the current member's content to `sink` straight from the input
    /// buffers (no copy); returns the number of bytes.
    pub(crate) fn copy_content<E: From<ContentError>>(
        &mut self,
        mut sink: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<u64, E> {
        let mut total = 0u64;
        loop {
            let Some(cur) = self.cur.as_mut() else {
                return Ok(total);
            };
            if cur.remaining == 0 {
                return Ok(total);
            }
            if !self.input.refill()? {
                return Err(ContentError::InvalidTar {
                    offset: self.input.offset,
                    reason: "unexpected end of stream".into(),
                }
                .into());
            }
            let k = usize::try_from(cur.remaining)
                .unwrap_or(usize::MAX)
                .min(self.input.end - self.input.pos);
            let range = self.input.pos..self.input.pos + k;
            sink(&self.input.chunk()[range.clone()])?;
            if let Some(c) = &self.input.cur {
                self.input
                    .hasher
                    .submit(Job::Crc(Arc::clone(c), range))
                    .map_err(hash_err)?;
            }
            self.input.pos += k;
            self.input.offset += k as u64;
            cur.remaining -= k as u64;
            total += k as u64;
        }
    }
}

impl Read for DiffStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(cur) = self.cur.as_mut() else {
            return Ok(0);
        };
        if cur.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(cur.remaining).unwrap_or(usize::MAX));
        let n = match self.input.content(Some(buf), want) {
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
