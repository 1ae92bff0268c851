//! Putting a layer's tar stream back together from `tar-split.json.gz` and the layer's
//! files (tar-split's `asm.NewOutputTarStream` plus dockerd's verifying reader).

use std::io::{self, BufReader, Read};

use sha2::Digest as _;

use crate::ids::DiffId;
use crate::tarsplit::{CRC64_ISO, EntryKind, Unpacker};

/// Opens a member's content by its name in the tar stream.
pub type FileSource<'a> = Box<dyn FnMut(&[u8]) -> io::Result<Box<dyn Read + 'a>> + 'a>;

enum State<'a> {
    Idle,
    Segment(Vec<u8>, usize),
    File {
        name: Vec<u8>,
        reader: Box<dyn Read + 'a>,
        remaining: u64,
        crc: crc::Digest<'static, u64, crc::Table<16>>,
        expected: Vec<u8>,
    },
    Done,
}

/// The exact tar stream of a layer, read from its tar-split metadata and its files. Every
/// byte goes through a sha256 that must equal the layer's diff ID: a mismatch is an
/// [`io::Error`] (kind `InvalidData`) at the end of the stream, never silent corruption. A
/// member whose file changed fails earlier with its CRC-64 check.
pub struct TarStream<'a> {
    unpacker: Unpacker<BufReader<flate2::read::GzDecoder<Box<dyn Read + 'a>>>>,
    open: FileSource<'a>,
    state: State<'a>,
    sha: sha2::Sha256,
    diff_id: DiffId,
    failed: bool,
}

impl std::fmt::Debug for TarStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarStream")
            .field("diff_id", &self.diff_id)
            .finish_non_exhaustive()
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl<'a> TarStream<'a> {
    /// A stream reassembled from `tar_split_gz` (the gzip-compressed JSON lines), reading
    /// file contents through `open`, and verified against `diff_id`.
    pub fn new(tar_split_gz: impl Read + 'a, diff_id: DiffId, open: FileSource<'a>) -> Self {
        let gz = flate2::read::GzDecoder::new(Box::new(tar_split_gz) as Box<dyn Read + 'a>);
        TarStream {
            unpacker: Unpacker::new(BufReader::with_capacity(64 * 1024, gz)),
            open,
            state: State::Idle,
            sha: sha2::Sha256::new(),
            diff_id,
            failed: false,
        }
    }

    fn advance(&mut self) -> io::Result<()> {
        let entry = match self.unpacker.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => {
                self.state = State::Done;
                let got = digest_set::Digest::from_sha256_bytes(
                    std::mem::take(&mut self.sha).finalize().into(),
                );
                if got != self.diff_id.0 {
                    return Err(invalid(format!(
                        "could not verify layer data for: {}. This may be because internal files in the layer store were modified. Re-pulling or rebuilding this image may resolve the issue",
                        self.diff_id
                    )));
                }
                return Ok(());
            }
            Err(e) => return Err(invalid(format!("reading tar-split metadata: {e}"))),
        };
        match entry.kind {
            EntryKind::Segment => self.state = State::Segment(entry.payload, 0),
            EntryKind::File => {
                if entry.size == 0 {
                    return Ok(());
                }
                let reader = (self.open)(&entry.name)?;
                self.state = State::File {
                    name: entry.name,
                    reader,
                    remaining: entry.size as u64,
                    crc: CRC64_ISO.digest(),
                    expected: entry.payload,
                };
            }
        }
        Ok(())
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match &mut self.state {
                State::Done => return Ok(0),
                State::Idle => self.advance()?,
                State::Segment(data, pos) => {
                    if *pos >= data.len() {
                        self.state = State::Idle;
                        continue;
                    }
                    let n = buf.len().min(data.len() - *pos);
                    buf[..n].copy_from_slice(&data[*pos..*pos + n]);
                    *pos += n;
                    return Ok(n);
                }
                State::File {
                    name,
                    reader,
                    remaining,
                    crc,
                    expected,
                } => {
                    let checksum_failed = |name: &[u8]| {
                        invalid(format!(
                            "file integrity checksum failed for {:?}",
                            String::from_utf8_lossy(name)
                        ))
                    };
                    if *remaining == 0 {
                        // The file must end here: more content means it changed.
                        let mut probe = [0u8; 1];
                        let extra = loop {
                            match reader.read(&mut probe) {
                                Ok(n) => break n,
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                                Err(e) => return Err(e),
                            }
                        };
                        let sum = crc.clone().finalize().to_be_bytes();
                        if extra != 0 || sum.as_slice() != expected.as_slice() {
                            return Err(checksum_failed(name));
                        }
                        self.state = State::Idle;
                        continue;
                    }
                    let want = buf
                        .len()
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    let n = reader.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(checksum_failed(name));
                    }
                    crc.update(&buf[..n]);
                    *remaining -= n as u64;
                    return Ok(n);
                }
            }
        }
    }
}

impl Read for TarStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(invalid(format!(
                "tar stream of layer {} already failed",
                self.diff_id
            )));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        match self.read_inner(buf) {
            Ok(n) => {
                self.sha.update(&buf[..n]);
                Ok(n)
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }
}
