//! The `tar-split.json.gz` format (vbatts/tar-split, as vendored by dockerd 20.10).
//!
//! A tar stream is stored as a sequence of JSON objects, one per line:
//!
//! - type 2 ("segment"): raw bytes of the stream (headers, padding, the end-of-archive
//!   blocks and anything after them), base64 in `payload`;
//! - type 1 ("file"): a member's content, which is kept elsewhere (in the content driver):
//!   `name` (or `name_raw`, base64, when the name is not UTF-8), `size` (omitted when 0) and
//!   `payload`, the CRC-64 (ISO polynomial, as Go's `hash/crc64`) of the content as 8
//!   big-endian bytes in base64, or `null` when the size is 0.
//!
//! Every object carries its `position`, counting from 0. Fields appear in the order
//! `type, name, name_raw, size, payload, position`, exactly as Go's `encoding/json` writes the
//! `storage.Entry` struct, and the file is gzip-compressed with a Go-like header (no name,
//! mtime 0, OS 255).

use std::collections::HashSet;
use std::io::{self, BufRead, Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The CRC-64 used for file payloads, Go's `crc64.MakeTable(crc64.ISO)`, from the `crc` crate:
/// the tests' reference for `content::crc64`, which computes it (see docs/benchmarks.md).
#[cfg(test)]
pub(crate) const CRC64_ISO: crc::Crc<u64, crc::Table<16>> =
    crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_GO_ISO);

/// What an [`Entry`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A member whose content is stored outside tar-split (type 1).
    File,
    /// Raw bytes of the tar stream (type 2).
    Segment,
}

/// One record of a tar-split stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// File or segment.
    pub kind: EntryKind,
    /// For files: the member name, raw bytes as found in the tar stream.
    pub name: Vec<u8>,
    /// For files: the content size from the header.
    pub size: i64,
    /// For segments: the raw bytes; for files: the CRC-64 (8 bytes) or empty when `size` is 0.
    pub payload: Vec<u8>,
    /// The position in the stream, from 0.
    pub position: u64,
}

/// Why a tar-split stream could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TarSplitError {
    /// Writing or reading the underlying file failed.
    #[error("tar-split I/O error: {0}")]
    Io(#[from] io::Error),
    /// Two file entries have the same (cleaned) name; tar-split cannot represent this
    /// (`ErrDuplicatePath`).
    #[error("duplicates of file paths not supported: {}", String::from_utf8_lossy(.0))]
    DuplicatePath(Vec<u8>),
    /// A line is not a valid tar-split entry.
    #[error("invalid tar-split entry at position {position}: {reason}")]
    Invalid {
        /// The entry's index in the stream.
        position: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Cleans a slash-separated path the way Go's `path/filepath.Clean` does, on raw bytes.
pub fn clean_path(name: &[u8]) -> Vec<u8> {
    if name.is_empty() {
        return b".".to_vec();
    }
    let rooted = name[0] == b'/';
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in name.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|p| *p != b"..") {
                    parts.pop();
                } else if !rooted {
                    parts.push(comp);
                }
            }
            _ => parts.push(comp),
        }
    }
    let mut out = Vec::with_capacity(name.len());
    if rooted {
        out.push(b'/');
    }
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// Writes tar-split entries as JSON lines (Go's `storage.NewJSONPacker`), refusing duplicate
/// file paths as tar-split does.
#[derive(Debug)]
pub struct Packer<W: Write> {
    w: W,
    pos: u64,
    seen: HashSet<Vec<u8>>,
    line: Vec<u8>,
}

impl<W: Write> Packer<W> {
    /// A packer writing to `w` (usually a gzip encoder).
    pub fn new(w: W) -> Self {
        Packer {
            w,
            pos: 0,
            seen: HashSet::new(),
            line: Vec::with_capacity(4096),
        }
    }

    /// The number of entries written so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Adds a raw segment.
    pub fn add_segment(&mut self, bytes: &[u8]) -> Result<(), TarSplitError> {
        self.line.clear();
        self.line.extend_from_slice(b"{\"type\":2,\"payload\":\"");
        let start = self.line.len();
        let enc_len = base64::encoded_len(bytes.len(), true).unwrap_or(0);
        self.line.resize(start + enc_len, 0);
        let written = BASE64
            .encode_slice(bytes, &mut self.line[start..])
            .map_err(|e| TarSplitError::Invalid {
                position: self.pos,
                reason: e.to_string(),
            })?;
        self.line.truncate(start + written);
        self.line.extend_from_slice(b"\",\"position\":");
        self.finish_line()
    }

    /// Adds a file entry: `name` as in the tar stream, `size` from its header, and `crc` the
    /// CRC-64 of its content (`None` when `size` is 0).
    pub fn add_file(
        &mut self,
        name: &[u8],
        size: i64,
        crc: Option<u64>,
    ) -> Result<(), TarSplitError> {
        self.claim(name)?;
        self.write_file(name, size, crc)
    }

    /// Records a file name, refusing a duplicate, without writing its entry yet.
    pub(crate) fn claim(&mut self, name: &[u8]) -> Result<(), TarSplitError> {
        if !self.seen.insert(clean_path(name)) {
            return Err(TarSplitError::DuplicatePath(name.to_vec()));
        }
        Ok(())
    }

    /// Writes a file entry whose name was [`claim`](Self::claim)ed.
    pub(crate) fn write_file(
        &mut self,
        name: &[u8],
        size: i64,
        crc: Option<u64>,
    ) -> Result<(), TarSplitError> {
        self.line.clear();
        self.line.extend_from_slice(b"{\"type\":1,");
        match std::str::from_utf8(name) {
            Ok(s) if !s.is_empty() => {
                self.line.extend_from_slice(b"\"name\":");
                go_json::write_string(&mut self.line, s);
                self.line.push(b',');
            }
            Ok(_) => {}
            Err(_) => {
                self.line.extend_from_slice(b"\"name_raw\":\"");
                self.line.extend_from_slice(BASE64.encode(name).as_bytes());
                self.line.extend_from_slice(b"\",");
            }
        }
        if size != 0 {
            self.line
                .extend_from_slice(format!("\"size\":{size},").as_bytes());
        }
        match crc {
            Some(c) => {
                self.line.extend_from_slice(b"\"payload\":\"");
                self.line
                    .extend_from_slice(BASE64.encode(c.to_be_bytes()).as_bytes());
                self.line.extend_from_slice(b"\",");
            }
            None => self.line.extend_from_slice(b"\"payload\":null,"),
        }
        self.line.extend_from_slice(b"\"position\":");
        self.finish_line()
    }

    fn finish_line(&mut self) -> Result<(), TarSplitError> {
        self.line
            .extend_from_slice(format!("{}}}\n", self.pos).as_bytes());
        self.w.write_all(&self.line)?;
        self.pos += 1;
        Ok(())
    }

    /// Returns the underlying writer.
    pub fn into_inner(self) -> W {
        self.w
    }
}

#[derive(serde::Deserialize)]
struct RawEntry {
    #[serde(rename = "type")]
    kind: i64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    name_raw: Option<String>,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    position: Option<i64>,
}

/// The longest entry line an [`Unpacker`] reads (16 MiB): a segment holds one tar header
/// with its PAX records, far less; a longer line (say, a decompression bomb without a
/// newline) is an error, not an allocation.
pub const MAX_LINE: u64 = 16 << 20;

/// Reads tar-split entries from JSON lines (Go's `storage.NewJSONUnpacker`), refusing
/// duplicate file paths.
#[derive(Debug)]
pub struct Unpacker<R: BufRead> {
    r: R,
    index: u64,
    seen: HashSet<Vec<u8>>,
    line: Vec<u8>,
}

impl<R: BufRead> Unpacker<R> {
    /// An unpacker reading JSON lines from `r` (usually a buffered gzip decoder).
    pub fn new(r: R) -> Self {
        Unpacker {
            r,
            index: 0,
            seen: HashSet::new(),
            line: Vec::new(),
        }
    }

    fn invalid(&self, reason: impl Into<String>) -> TarSplitError {
        TarSplitError::Invalid {
            position: self.index,
            reason: reason.into(),
        }
    }

    /// The next entry, or `None` at the end of the stream.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, TarSplitError> {
        loop {
            self.line.clear();
            let n = (&mut self.r)
                .take(MAX_LINE + 1)
                .read_until(b'\n', &mut self.line)?;
            if n == 0 {
                return Ok(None);
            }
            if n as u64 > MAX_LINE {
                return Err(self.invalid(format!(
                    "an entry longer than {MAX_LINE} bytes (never read whole)"
                )));
            }
            if self.line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            break;
        }
        let raw: RawEntry =
            serde_json::from_slice(&self.line).map_err(|e| self.invalid(e.to_string()))?;
        let decode = |s: &str| BASE64.decode(s.trim_end_matches(['\r', '\n']));
        let kind = match raw.kind {
            1 => EntryKind::File,
            2 => EntryKind::Segment,
            k => return Err(self.invalid(format!("unknown entry type {k}"))),
        };
        let mut name = match &raw.name_raw {
            Some(s) if !s.is_empty() => {
                decode(s).map_err(|e| self.invalid(format!("name_raw: {e}")))?
            }
            _ => Vec::new(),
        };
        if name.is_empty() {
            name = raw.name.unwrap_or_default().into_bytes();
        }
        let payload = match &raw.payload {
            Some(s) => decode(s).map_err(|e| self.invalid(format!("payload: {e}")))?,
            None => Vec::new(),
        };
        let size = raw.size.unwrap_or(0);
        if kind == EntryKind::File {
            if !self.seen.insert(clean_path(&name)) {
                return Err(TarSplitError::DuplicatePath(name));
            }
            if size < 0 {
                return Err(self.invalid(format!("negative size {size}")));
            }
            if size > 0 && payload.len() != 8 {
                return Err(
                    self.invalid(format!("file checksum is {} bytes, not 8", payload.len()))
                );
            }
        }
        let position = raw.position.map_or(self.index, |p| p.max(0) as u64);
        self.index += 1;
        Ok(Some(Entry {
            kind,
            name,
            size,
            payload,
            position,
        }))
    }
}

/// A gzip encoder with the header Go's `gzip.NewWriter` writes (as dockerd does for
/// `tar-split.json.gz`).
///
/// It compresses at level 2, not gzip's default 6: on the tar-split of a 10,000-file layer
/// (11.5 MB of JSON) level 2 is five times faster (14 ms against 72 ms) for an output 8 %
/// larger (491 KB against 452 KB). Readers do not care; the header is the same.
pub fn gzip_writer<W: Write>(w: W) -> flate2::write::GzEncoder<W> {
    flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(w, flate2::Compression::new(2))
}

/// A [`gzip_writer`] into a file on a thread of its own, so that compressing the tar-split
/// of a layer overlaps applying the layer instead of adding to it. Writes are gathered into
/// chunks of [`BackgroundGzip::CHUNK`] bytes and handed over through a bounded channel (at
/// most four chunks in flight). [`finish`](Self::finish) ends the stream and reports the
/// first error; dropping it unfinished waits for the thread and discards the result.
pub struct BackgroundGzip {
    buf: Vec<u8>,
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl BackgroundGzip {
    /// Bytes gathered before a chunk is handed to the thread.
    pub const CHUNK: usize = 256 * 1024;

    /// Starts the thread compressing into `file`.
    pub fn new(file: std::fs::File) -> io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let thread = std::thread::Builder::new()
            .name("tar-split-gzip".into())
            .spawn(move || {
                let mut gz = gzip_writer(io::BufWriter::with_capacity(64 * 1024, file));
                for chunk in rx {
                    gz.write_all(&chunk)?;
                }
                gz.finish()?.into_inner().map_err(|e| e.into_error())?;
                Ok(())
            })?;
        Ok(BackgroundGzip {
            buf: Vec::with_capacity(Self::CHUNK),
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(Self::CHUNK));
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(chunk).is_ok());
        if sent {
            Ok(())
        } else {
            // The thread stopped: its error says why.
            Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::Error::other("the tar-split compression thread stopped")))
        }
    }

    fn join(&mut self) -> io::Result<()> {
        self.tx = None;
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| {
                Err(io::Error::other(
                    "the tar-split compression thread panicked",
                ))
            }),
            None => Ok(()),
        }
    }

    /// Compresses what is left, writes the gzip trailer and flushes the file (not synced).
    pub fn finish(mut self) -> io::Result<()> {
        self.send()?;
        self.join()
    }
}

impl Write for BackgroundGzip {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= Self::CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for BackgroundGzip {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        for (i, o) in [
            ("", "."),
            (".", "."),
            ("./", "."),
            ("a/", "a"),
            ("a//b/./c/..", "a/b"),
            ("../a", "../a"),
            ("/../a", "/a"),
            ("a/../../b", "../b"),
            ("/", "/"),
        ] {
            assert_eq!(clean_path(i.as_bytes()), o.as_bytes(), "{i}");
        }
    }

    #[test]
    fn crc_matches_go() {
        // Go: crc64.Checksum([]byte("123456789"), crc64.MakeTable(crc64.ISO)) = 0xb90956c775a41001
        assert_eq!(CRC64_ISO.checksum(b"123456789"), 0xb909_56c7_75a4_1001);
    }

    #[test]
    fn pack_unpack_round_trip() {
        let mut p = Packer::new(Vec::new());
        p.add_segment(b"hdr").expect("seg");
        p.add_file(b"a/b", 3, Some(7)).expect("file");
        p.add_file(b"\xff\xfe", 0, None).expect("raw");
        assert!(matches!(
            p.add_file(b"a/./b/", 0, None),
            Err(TarSplitError::DuplicatePath(_))
        ));
        p.add_segment(b"").expect("seg");
        let bytes = p.into_inner();
        let text = String::from_utf8(bytes.clone()).expect("utf8");
        assert_eq!(
            text,
            "{\"type\":2,\"payload\":\"aGRy\",\"position\":0}\n\
             {\"type\":1,\"name\":\"a/b\",\"size\":3,\"payload\":\"AAAAAAAAAAc=\",\"position\":1}\n\
             {\"type\":1,\"name_raw\":\"//4=\",\"payload\":null,\"position\":2}\n\
             {\"type\":2,\"payload\":\"\",\"position\":3}\n"
        );
        let mut u = Unpacker::new(&bytes[..]);
        let mut got = Vec::new();
        while let Some(e) = u.next_entry().expect("entry") {
            got.push(e);
        }
        assert_eq!(got.len(), 4);
        assert_eq!(got[1].name, b"a/b");
        assert_eq!(got[1].payload, 7u64.to_be_bytes());
        assert_eq!(got[2].name, b"\xff\xfe");
        assert_eq!(got[3].payload, b"");
    }

    /// A line without end (a decompression bomb) is refused after `MAX_LINE` bytes, never
    /// buffered whole.
    #[test]
    fn endless_lines_are_refused() {
        struct Endless(u64);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(usize::try_from(self.0).unwrap_or(usize::MAX));
                buf[..n].fill(b'a');
                self.0 -= n as u64;
                Ok(n)
            }
        }
        let mut u = Unpacker::new(io::BufReader::new(Endless(4 * MAX_LINE)));
        let err = u.next_entry().expect_err("refused");
        assert!(err.to_string().contains("longer than"), "{err}");
    }
}
