//! Putting a layer's tar stream back together from `tar-split.json.gz` and the layer's
//! files (tar-split's `asm.NewOutputTarStream` plus dockerd's verifying reader).

use std::collections::VecDeque;
use std::io::{self, BufReader, Read};
use std::sync::Arc;

use super::hasher::{Chunk, Hasher, Job};
use crate::ids::DiffId;
use crate::tarsplit::{EntryKind, Unpacker};

/// Opens a member's content by its name in the tar stream.
pub type FileSource<'a> = Box<dyn FnMut(&[u8]) -> io::Result<Box<dyn Read + 'a>> + 'a>;

enum State<'a> {
    Idle,
    /// Bytes being handed out: a segment, or a piece of a member's content.
    Bytes(Chunk, usize, usize),
    File {
        name: Vec<u8>,
        reader: Box<dyn Read + 'a>,
        remaining: u64,
        expected: Vec<u8>,
    },
    Done,
}

/// The exact tar stream of a layer, read from its tar-split metadata and its files. Every
/// byte goes through a sha256 (on a helper thread) that must equal the layer's diff ID: a
/// mismatch is an [`io::Error`] (kind `InvalidData`) at the end of the stream, never silent
/// corruption. A member whose file changed fails with its CRC-64 check (reported as soon as
/// the helper thread has checked it, at the latest at the end).
pub struct TarStream<'a> {
    unpacker: Unpacker<BufReader<flate2::read::GzDecoder<Box<dyn Read + 'a>>>>,
    open: FileSource<'a>,
    state: State<'a>,
    /// The file the current content bytes belong to, once they are all handed out.
    after: Option<State<'a>>,
    hasher: Hasher,
    expected: VecDeque<(Vec<u8>, Vec<u8>)>,
    diff_id: DiffId,
    file_crcs: bool,
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

fn checksum_failed(name: &[u8]) -> io::Error {
    invalid(format!(
        "file integrity checksum failed for {:?}",
        String::from_utf8_lossy(name)
    ))
}

impl<'a> TarStream<'a> {
    /// A stream reassembled from `tar_split_gz` (the gzip-compressed JSON lines), reading
    /// file contents through `open`, and verified against `diff_id`. Fails only if the
    /// hashing thread cannot be started.
    pub fn new(
        tar_split_gz: impl Read + 'a,
        diff_id: DiffId,
        open: FileSource<'a>,
    ) -> io::Result<Self> {
        let gz = flate2::read::GzDecoder::new(Box::new(tar_split_gz) as Box<dyn Read + 'a>);
        Ok(TarStream {
            unpacker: Unpacker::new(BufReader::with_capacity(64 * 1024, gz)),
            open,
            state: State::Idle,
            after: None,
            hasher: Hasher::new()?,
            expected: VecDeque::new(),
            diff_id,
            file_crcs: false,
            failed: false,
        })
    }

    /// Also checks each member's CRC-64 from tar-split and that its file has no extra bytes
    /// (as dockerd does), to name the file that changed. Off by default: the sha256 of the
    /// whole stream already catches any change that matters (at the end of the stream), and
    /// the per-file checks cost throughput. A file that got shorter is always reported at
    /// once.
    pub fn with_file_checksums(mut self, on: bool) -> Self {
        self.file_crcs = on;
        self
    }

    /// Compares the CRCs the thread has computed so far (all of them with `wait`).
    fn check_crcs(&mut self, wait: bool) -> io::Result<()> {
        while !self.expected.is_empty() {
            let got = if wait {
                Some(self.hasher.wait_crc()?)
            } else {
                self.hasher.try_crc()?
            };
            let Some(got) = got else {
                return Ok(());
            };
            let Some((name, want)) = self.expected.pop_front() else {
                return Ok(());
            };
            if got.to_be_bytes().as_slice() != want.as_slice() {
                return Err(checksum_failed(&name));
            }
        }
        Ok(())
    }

    fn advance(&mut self) -> io::Result<()> {
        let entry = match self.unpacker.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => {
                self.state = State::Done;
                let sha = self.hasher.finish()?;
                self.check_crcs(true)?;
                if digest_set::Digest::from_sha256_bytes(sha) != self.diff_id.0 {
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
            EntryKind::Segment => {
                let n = entry.payload.len();
                let c = Arc::new(entry.payload);
                self.hasher.submit(Job::Sha(Arc::clone(&c), 0..n))?;
                self.state = State::Bytes(c, 0, n);
            }
            EntryKind::File => {
                if entry.size == 0 {
                    return Ok(());
                }
                let reader = (self.open)(&entry.name)?;
                self.state = State::File {
                    name: entry.name,
                    reader,
                    remaining: entry.size as u64,
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
                State::Bytes(c, pos, end) => {
                    if *pos >= *end {
                        let next = self.after.take().unwrap_or(State::Idle);
                        if let State::Bytes(c, _, _) = std::mem::replace(&mut self.state, next) {
                            self.hasher.retire(c);
                        }
                        continue;
                    }
                    let n = buf.len().min(*end - *pos);
                    buf[..n].copy_from_slice(&c[*pos..*pos + n]);
                    *pos += n;
                    return Ok(n);
                }
                State::File {
                    name,
                    reader,
                    remaining,
                    expected,
                } => {
                    if *remaining == 0 {
                        if self.file_crcs {
                            // The file must end here: more content means it changed. (Without
                            // this check only the recorded bytes are used, and the sha256 of
                            // the stream tells whether they are still the right ones.)
                            let mut probe = [0u8; 1];
                            let extra = loop {
                                match reader.read(&mut probe) {
                                    Ok(n) => break n,
                                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                                    Err(e) => return Err(e),
                                }
                            };
                            if extra != 0 {
                                return Err(checksum_failed(name));
                            }
                            self.hasher.submit(Job::FileEnd)?;
                            self.expected
                                .push_back((std::mem::take(name), std::mem::take(expected)));
                            self.state = State::Idle;
                            self.check_crcs(false)?;
                        } else {
                            self.state = State::Idle;
                        }
                        continue;
                    }
                    let mut chunk = self.hasher.buffer()?;
                    let want = chunk
                        .len()
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    let n = loop {
                        match reader.read(&mut chunk[..want]) {
                            Ok(n) => break n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                self.hasher.give_back(chunk);
                                return Err(e);
                            }
                        }
                    };
                    if n == 0 {
                        self.hasher.give_back(chunk);
                        return Err(checksum_failed(name));
                    }
                    *remaining -= n as u64;
                    let c = Arc::new(chunk);
                    let job = if self.file_crcs {
                        Job::Both(Arc::clone(&c), 0..n)
                    } else {
                        Job::Sha(Arc::clone(&c), 0..n)
                    };
                    self.hasher.submit(job)?;
                    let file = std::mem::replace(&mut self.state, State::Bytes(c, 0, n));
                    self.after = Some(file);
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
            Ok(n) => Ok(n),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }
}
