//! The snapshot file: sections, then a checksummed trailer naming the data root the file
//! belongs to and where each section is, with its sha256. Little-endian throughout.
//!
//! ```text
//! magic    "imgstore-snap-v1"
//! sections one after the other
//! trailer  build string (imgstore version and format), root key, time written (i64
//!          seconds, u32 nanoseconds), u32 section count, then per section: u8 kind (1
//!          layers, 2 images), u64 offset, u64 length, sha256 of the section
//! end      sha256(trailer), u32 trailer length, magic again
//!
//! layers   stamp of layerdb/sha256, stamp of layerdb/sha512,
//!          u32 count + `-removing` leftover paths,
//!          u32 count + records: chain ID, diff ID, parent (option), u64 diff size,
//!          cache ID (0 + 32 bytes: 64 lowercase hex digits; 1 + string: anything else),
//!          each layer followed by its descendants
//! images   stamp of imagedb/content/sha256, stamp of imagedb/metadata/sha256,
//!          u32 count + (32-byte name, stamp) of each metadata/sha256/<hex>,
//!          u32 count + images: ID, top chain ID (option), created (option: i64 seconds,
//!          u32 nanoseconds, i32 offset), parent (option)
//! ```
//!
//! Sections are written as they are encoded (the trailer, written last, says where they
//! are) and decoded as they are read. Strings and byte strings are a u32 length and the
//! bytes; digests a byte for the algorithm (1 sha256, 2 sha512) and the raw hash; an
//! option a byte 0 or 1 before the value; a stamp 0 (absent) or 1 and dev, ino (u64), mode
//! (u32), nlink, size (u64), mtime and ctime (i64 seconds, u32 nanoseconds).

use std::io::{Read, Write};

use digest_set::{Algorithm, Digest};
use image_store::ImageInfo;
use image_store::time::Timestamp;
use layer_store::{ChainId, DiffId, LayerRecord};
use sha2::{Digest as _, Sha256};

use super::stamp::Stamp;

/// The first bytes of every snapshot file.
pub(crate) const MAGIC: &[u8; 16] = b"imgstore-snap-v1";
/// Bump when the meaning of a snapshot changes (what restore computes from the same files,
/// or the encoding): files of another format are ignored.
pub(crate) const FORMAT: u32 = 1;
/// Section kinds.
pub(crate) const LAYERS: u8 = 1;
/// Section kinds.
pub(crate) const IMAGES: u8 = 2;

/// Why bytes are not a snapshot section or header.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FormatError {
    /// The bytes end early.
    #[error("truncated")]
    Truncated,
    /// A value that cannot be.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// Writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Writes a section (or the trailer), hashing what it writes: into memory, or through to a
/// file once [`FLUSH_AT`] bytes are buffered, within a byte budget.
pub(crate) struct Encoder<'w> {
    buf: Vec<u8>,
    out: Option<&'w mut dyn Write>,
    hasher: Sha256,
    written: u64,
    budget: u64,
    error: Option<FormatError>,
}

/// A section to write: its kind and what encodes it.
pub(crate) type SectionEncoder<'a> = (u8, &'a dyn Fn(&mut Encoder<'_>));

/// How much an [`Encoder`] buffers before it writes.
const FLUSH_AT: usize = 256 * 1024;

impl Default for Encoder<'_> {
    fn default() -> Self {
        Encoder {
            buf: Vec::new(),
            out: None,
            hasher: Sha256::new(),
            written: 0,
            budget: u64::MAX,
            error: None,
        }
    }
}

impl<'w> Encoder<'w> {
    /// An encoder writing to `out`, failing once more than `budget` bytes were written.
    pub(crate) fn to(out: &'w mut dyn Write, budget: u64) -> Self {
        Encoder {
            out: Some(out),
            budget,
            ..Encoder::default()
        }
    }

    fn flush(&mut self) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        if self.error.is_some() {
            self.buf.clear();
            return;
        }
        let n = self.buf.len() as u64;
        if n > self.budget {
            self.error = Some(FormatError::Invalid("size: larger than the cache allows"));
        } else if let Err(e) = out.write_all(&self.buf) {
            self.error = Some(e.into());
        } else {
            self.budget -= n;
            self.hasher.update(&self.buf);
            self.written += n;
        }
        self.buf.clear();
    }

    fn grew(&mut self) {
        if self.out.is_some() && self.buf.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// Writes what is buffered; returns the length and sha256 of everything encoded, and,
    /// when encoding into memory, the bytes.
    pub(crate) fn finish(mut self) -> Result<(u64, [u8; 32], Vec<u8>), FormatError> {
        if self.out.is_some() {
            self.flush();
            if let Some(e) = self.error {
                return Err(e);
            }
            return Ok((self.written, self.hasher.finalize().into(), Vec::new()));
        }
        self.hasher.update(&self.buf);
        let len = self.buf.len() as u64;
        Ok((len, self.hasher.finalize().into(), self.buf))
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
        self.grew();
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self.grew();
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self.grew();
    }
    pub(crate) fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self.grew();
    }
    pub(crate) fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self.grew();
    }
    pub(crate) fn raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
        self.grew();
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.raw(v);
    }
    pub(crate) fn count(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    pub(crate) fn digest(&mut self, d: &Digest) {
        self.u8(match d.algorithm() {
            Algorithm::Sha256 => 1,
            Algorithm::Sha512 => 2,
        });
        self.raw(d.as_bytes());
    }
    pub(crate) fn opt_digest(&mut self, d: Option<&Digest>) {
        match d {
            None => self.u8(0),
            Some(d) => {
                self.u8(1);
                self.digest(d);
            }
        }
    }
    pub(crate) fn time(&mut self, (secs, nanos): (i64, u32)) {
        self.i64(secs);
        self.u32(nanos);
    }
    pub(crate) fn stamp(&mut self, s: &Stamp) {
        match s {
            Stamp::Absent => self.u8(0),
            Stamp::Present {
                dev,
                ino,
                mode,
                nlink,
                size,
                mtime,
                ctime,
            } => {
                self.u8(1);
                self.u64(*dev);
                self.u64(*ino);
                self.u32(*mode);
                self.u64(*nlink);
                self.u64(*size);
                self.time(*mtime);
                self.time(*ctime);
            }
        }
    }

    /// One layer record.
    pub(crate) fn layer(&mut self, r: &LayerRecord) {
        self.digest(&r.chain_id.0);
        self.digest(&r.diff_id.0);
        self.opt_digest(r.parent.as_ref().map(|p| &p.0));
        self.u64(r.diff_size);
        match Digest::from_hex(Algorithm::Sha256, &r.cache_id) {
            // Only lowercase hex decodes back to the same string.
            Ok(d) if d.hex_buf().as_str() == r.cache_id => {
                self.u8(0);
                self.raw(d.as_bytes());
            }
            _ => {
                self.u8(1);
                self.bytes(r.cache_id.as_bytes());
            }
        }
    }

    /// One image record.
    pub(crate) fn image(&mut self, i: &ImageInfo) {
        self.digest(&i.id.0);
        self.opt_digest(i.chain_id.as_ref().map(|c| &c.0));
        match &i.created {
            None => self.u8(0),
            Some(t) => {
                self.u8(1);
                self.time((t.unix_secs(), t.nanos()));
                self.i32(t.offset_secs());
            }
        }
        self.opt_digest(i.parent.as_ref().map(|p| &p.0));
    }
}

/// Reads what an [`Encoder`] wrote, from any reader, knowing how many bytes are left.
pub(crate) struct Decoder<R> {
    src: R,
    left: u64,
}

impl<'a> Decoder<&'a [u8]> {
    /// A decoder of bytes in memory.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Decoder {
            src: buf,
            left: buf.len() as u64,
        }
    }
}

impl<R: Read> Decoder<R> {
    /// A decoder of the `len` bytes `src` gives.
    pub(crate) fn of(src: R, len: u64) -> Self {
        Decoder { src, left: len }
    }
    /// The reader, once decoding is done.
    pub(crate) fn into_inner(self) -> R {
        self.src
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.left == 0
    }
    fn fill(&mut self, out: &mut [u8]) -> Result<(), FormatError> {
        let n = out.len() as u64;
        if n > self.left {
            return Err(FormatError::Truncated);
        }
        self.src.read_exact(out).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => FormatError::Truncated,
            _ => FormatError::Io(e),
        })?;
        self.left -= n;
        Ok(())
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let mut out = [0u8; N];
        self.fill(&mut out)?;
        Ok(out)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, FormatError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub(crate) fn i32(&mut self) -> Result<i32, FormatError> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    pub(crate) fn hash(&mut self) -> Result<[u8; 32], FormatError> {
        self.array()
    }
    pub(crate) fn bytes(&mut self) -> Result<Vec<u8>, FormatError> {
        let n = self.u32()?;
        if u64::from(n) > self.left {
            return Err(FormatError::Truncated);
        }
        let mut out = vec![0u8; n as usize];
        self.fill(&mut out)?;
        Ok(out)
    }
    pub(crate) fn string(&mut self) -> Result<String, FormatError> {
        String::from_utf8(self.bytes()?).map_err(|_| FormatError::Invalid("string"))
    }
    /// A count of items of at least `min_size` bytes each (never more than the bytes left
    /// could hold, so that no count makes a large allocation).
    pub(crate) fn count(&mut self, min_size: u64) -> Result<usize, FormatError> {
        let n = self.u32()?;
        if u64::from(n).saturating_mul(min_size) > self.left {
            return Err(FormatError::Truncated);
        }
        Ok(n as usize)
    }
    pub(crate) fn digest(&mut self) -> Result<Digest, FormatError> {
        let d = match self.u8()? {
            1 => Digest::from_raw(Algorithm::Sha256, &self.array::<32>()?),
            2 => Digest::from_raw(Algorithm::Sha512, &self.array::<64>()?),
            _ => return Err(FormatError::Invalid("digest algorithm")),
        };
        d.ok_or(FormatError::Invalid("digest"))
    }
    fn flag(&mut self) -> Result<bool, FormatError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(FormatError::Invalid("option")),
        }
    }
    pub(crate) fn opt_digest(&mut self) -> Result<Option<Digest>, FormatError> {
        if self.flag()? {
            Ok(Some(self.digest()?))
        } else {
            Ok(None)
        }
    }
    pub(crate) fn time(&mut self) -> Result<(i64, u32), FormatError> {
        Ok((self.i64()?, self.u32()?))
    }
    pub(crate) fn stamp(&mut self) -> Result<Stamp, FormatError> {
        if !self.flag()? {
            return Ok(Stamp::Absent);
        }
        Ok(Stamp::Present {
            dev: self.u64()?,
            ino: self.u64()?,
            mode: self.u32()?,
            nlink: self.u64()?,
            size: self.u64()?,
            mtime: self.time()?,
            ctime: self.time()?,
        })
    }

    /// One layer record.
    pub(crate) fn layer(&mut self) -> Result<LayerRecord, FormatError> {
        let chain_id = ChainId(self.digest()?);
        let diff_id = DiffId(self.digest()?);
        let parent = self.opt_digest()?.map(ChainId);
        let diff_size = self.u64()?;
        let cache_id = match self.u8()? {
            0 => Digest::from_sha256_bytes(self.array()?).hex(),
            1 => self.string()?,
            _ => return Err(FormatError::Invalid("cache ID")),
        };
        Ok(LayerRecord {
            chain_id,
            diff_id,
            parent,
            diff_size,
            cache_id,
        })
    }

    /// One image record.
    pub(crate) fn image(&mut self) -> Result<ImageInfo, FormatError> {
        let id = image_store::ImageId(self.digest()?);
        let chain_id = self.opt_digest()?.map(ChainId);
        let created = if self.flag()? {
            let (secs, nanos) = self.time()?;
            if nanos >= 1_000_000_000 {
                return Err(FormatError::Invalid("time"));
            }
            Some(Timestamp::from_unix(secs, nanos).with_offset(self.i32()?))
        } else {
            None
        };
        let parent = self.opt_digest()?.map(image_store::ImageId);
        Ok(ImageInfo {
            id,
            chain_id,
            created,
            parent,
        })
    }
}

/// Reads `len` bytes of a file from `offset` (positioned reads: several readers can share
/// the file), hashing them.
pub(crate) struct SectionReader<'f> {
    file: &'f std::fs::File,
    offset: u64,
    end: u64,
    hasher: Sha256,
}

impl<'f> SectionReader<'f> {
    pub(crate) fn new(file: &'f std::fs::File, offset: u64, len: u64) -> Self {
        SectionReader {
            file,
            offset,
            end: offset.saturating_add(len),
            hasher: Sha256::new(),
        }
    }

    /// The sha256 of what was read.
    pub(crate) fn hash(self) -> [u8; 32] {
        self.hasher.finalize().into()
    }
}

impl Read for SectionReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt as _;
        let want = usize::try_from(self.end.saturating_sub(self.offset))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.offset)?;
        self.hasher.update(&buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let records = [
            LayerRecord {
                chain_id: ChainId(Digest::sha256(b"a")),
                diff_id: DiffId(Digest::sha512(b"b")),
                parent: None,
                diff_size: 7,
                cache_id: "ab".repeat(32),
            },
            LayerRecord {
                chain_id: ChainId(Digest::sha512(b"c")),
                diff_id: DiffId(Digest::sha256(b"d")),
                parent: Some(ChainId(Digest::sha256(b"a"))),
                diff_size: u64::MAX,
                cache_id: "AB".repeat(32),
            },
            LayerRecord {
                chain_id: ChainId(Digest::sha256(b"e")),
                diff_id: DiffId(Digest::sha256(b"f")),
                parent: None,
                diff_size: 0,
                cache_id: "my-layer_1.2".to_owned(),
            },
        ];
        let images = [
            ImageInfo {
                id: image_store::ImageId(Digest::sha256(b"i")),
                chain_id: None,
                created: None,
                parent: None,
            },
            ImageInfo {
                id: image_store::ImageId(Digest::sha256(b"j")),
                chain_id: Some(ChainId(Digest::sha256(b"a"))),
                created: Some(Timestamp::from_unix(-62135596800, 5).with_offset(-3600)),
                parent: Some(image_store::ImageId(Digest::sha256(b"i"))),
            },
        ];
        let stamps = [
            Stamp::Absent,
            Stamp::Present {
                dev: 1,
                ino: 2,
                mode: 0o40755,
                nlink: 3,
                size: 4096,
                mtime: (-1, 999_999_999),
                ctime: (i64::MAX, 0),
            },
        ];
        let mut e = Encoder::default();
        for r in &records {
            e.layer(r);
        }
        for i in &images {
            e.image(i);
        }
        for s in &stamps {
            e.stamp(s);
        }
        let (_, _, buf) = e.finish().expect("in memory");
        let mut d = Decoder::new(&buf);
        for r in &records {
            assert_eq!(&d.layer().expect("layer"), r);
        }
        for i in &images {
            assert_eq!(&d.image().expect("image"), i);
        }
        for s in &stamps {
            assert_eq!(&d.stamp().expect("stamp"), s);
        }
        assert!(d.is_empty());
        // Every truncation is an error, never a panic.
        for n in 0..buf.len() {
            let mut d = Decoder::new(&buf[..n]);
            let ok = records.iter().all(|_| d.layer().is_ok())
                && images.iter().all(|_| d.image().is_ok())
                && stamps.iter().all(|_| d.stamp().is_ok());
            assert!(!ok, "{n}");
        }
    }
}
