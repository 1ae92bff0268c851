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
    /// Bytes being handed out from the fill buffer: a segment, or a piece of a member's
    /// content.
    Bytes(usize, usize),
    /// A segment too large for a fill buffer, handed out from its own chunk.
    Shared(Chunk, usize, usize),
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
    /// Where the stream's bytes are gathered (segments and members' contents, packed one
    /// after the other) before the whole buffer goes to the hashing thread at once: the
    /// thread then works on large pieces whatever the members' sizes, and the pool of
    /// buffers bounds the bytes in flight rather than the number of members.
    fill: Vec<u8>,
    /// Bytes of `fill` in use.
    filled: usize,
    /// CRC jobs on ranges of `fill`, sent along with it.
    pending: Vec<Pending>,
    expected: VecDeque<(Vec<u8>, Vec<u8>)>,
    diff_id: DiffId,
    file_crcs: bool,
    failed: bool,
}

/// A CRC job waiting for the fill buffer it refers to.
enum Pending {
    Crc(std::ops::Range<usize>),
    FileEnd,
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
        let mut hasher = Hasher::new()?;
        let fill = hasher.buffer()?;
        Ok(TarStream {
            unpacker: Unpacker::new(BufReader::with_capacity(64 * 1024, gz)),
            open,
            state: State::Idle,
            after: None,
            hasher,
            fill,
            filled: 0,
            pending: Vec::new(),
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

    /// Sends the fill buffer's bytes (and the CRC jobs on them) to the hashing thread and
    /// starts a new one. Only called once all its bytes are handed out.
    fn seal(&mut self) -> io::Result<()> {
        if self.filled == 0 && self.pending.is_empty() {
            return Ok(());
        }
        let next = self.hasher.buffer()?;
        let c = Arc::new(std::mem::replace(&mut self.fill, next));
        if self.filled > 0 {
            self.hasher
                .submit(Job::Sha(Arc::clone(&c), 0..self.filled))?;
        }
        for p in std::mem::take(&mut self.pending) {
            self.hasher.submit(match p {
                Pending::Crc(r) => Job::Crc(Arc::clone(&c), r),
                Pending::FileEnd => Job::FileEnd,
            })?;
        }
        self.hasher.retire(c);
        self.filled = 0;
        self.hasher.flush()
    }

    fn advance(&mut self) -> io::Result<()> {
        let entry = match self.unpacker.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => {
                self.state = State::Done;
                self.seal()?;
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
                if n > self.fill.len() {
                    self.seal()?;
                    let c = Arc::new(entry.payload);
                    self.hasher.submit(Job::Sha(Arc::clone(&c), 0..n))?;
                    self.state = State::Shared(c, 0, n);
                } else {
                    if self.fill.len() - self.filled < n {
                        self.seal()?;
                    }
                    let start = self.filled;
                    self.fill[start..start + n].copy_from_slice(&entry.payload);
                    self.filled += n;
                    self.state = State::Bytes(start, start + n);
                }
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
            if self.filled == self.fill.len() && matches!(self.state, State::File { .. }) {
                // Every byte of the full buffer is handed out: room for the member's next
                // bytes.
                self.seal()?;
            }
            match &mut self.state {
                State::Done => return Ok(0),
                State::Idle => self.advance()?,
                State::Bytes(pos, end) => {
                    if *pos >= *end {
                        self.state = self.after.take().unwrap_or(State::Idle);
                        continue;
                    }
                    let n = buf.len().min(*end - *pos);
                    buf[..n].copy_from_slice(&self.fill[*pos..*pos + n]);
                    *pos += n;
                    return Ok(n);
                }
                State::Shared(c, pos, end) => {
                    if *pos >= *end {
                        let next = self.after.take().unwrap_or(State::Idle);
                        if let State::Shared(c, _, _) = std::mem::replace(&mut self.state, next) {
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
                            self.pending.push(Pending::FileEnd);
                            self.expected
                                .push_back((std::mem::take(name), std::mem::take(expected)));
                            self.state = State::Idle;
                            self.check_crcs(false)?;
                        } else {
                            self.state = State::Idle;
                        }
                        continue;
                    }
                    let start = self.filled;
                    let want = (self.fill.len() - start)
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    let n = loop {
                        match reader.read(&mut self.fill[start..start + want]) {
                            Ok(n) => break n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e),
                        }
                    };
                    if n == 0 {
                        return Err(checksum_failed(name));
                    }
                    *remaining -= n as u64;
                    self.filled += n;
                    if self.file_crcs {
                        self.pending.push(Pending::Crc(start..start + n));
                    }
                    let file = std::mem::replace(&mut self.state, State::Bytes(start, start + n));
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

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Read;

    use crate::{LayerStore, VfsDriver};

    /// Files of many sizes (some larger than a fill buffer, some spanning two), a large PAX
    /// header (that does not fit after them in a fill buffer), and empty files.
    fn layer() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut x: u32 = 1;
        let sizes = [0usize, 1, 511, 512, 700_000, 3 << 20, 100, 1 << 20, 0, 5000];
        for (i, &size) in sizes.iter().enumerate() {
            if i == 3 {
                let big = vec![b'v'; 900_000];
                b.append_pax_extensions([("comment", &big[..])])
                    .expect("pax");
            }
            let data: Vec<u8> = (0..size)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let mut h = tar::Header::new_gnu();
            h.set_size(size as u64);
            h.set_mode(0o644);
            h.set_mtime(1_600_000_000);
            b.append_data(&mut h, format!("f{i}"), &data[..])
                .expect("append");
        }
        b.into_inner().expect("finish")
    }

    fn read_in(mut r: impl Read, step: usize) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; step];
        loop {
            match r.read(&mut buf)? {
                0 => return Ok(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[test]
    fn streams_back_across_fill_buffers_with_and_without_file_checksums() {
        let tmp = tempfile::tempdir().expect("tmp");
        let driver = VfsDriver::new(tmp.path().join("vfs")).expect("driver");
        let (store, _) =
            LayerStore::open(tmp.path().join("layerdb"), Box::new(driver)).expect("open");
        let tar = layer();
        let h = store.register(&tar[..], None).expect("register");
        for step in [1usize, 4096, 8192, 1 << 20, 4 << 20] {
            for crcs in [false, true] {
                if step == 1 && crcs {
                    continue;
                }
                let s = store
                    .tar_stream(&h)
                    .expect("stream")
                    .with_file_checksums(crcs);
                let back = read_in(s, step).expect("read");
                assert!(back == tar, "step {step}, crcs {crcs}");
            }
        }
        // A change in a member that follows large ones is caught by name with the file
        // checksums, and at the end by the diff ID without them.
        let info = store.layer(h.chain_id()).expect("info");
        let file = tmp.path().join("vfs/dir").join(&info.cache_id).join("f9");
        let mut data = fs::read(&file).expect("read f9");
        data[4000] ^= 1;
        fs::write(&file, &data).expect("tamper");
        let s = store
            .tar_stream(&h)
            .expect("stream")
            .with_file_checksums(true);
        let err = read_in(s, 8192).expect_err("tampered");
        assert!(
            err.to_string().contains("checksum failed for \"f9\""),
            "{err}"
        );
        let s = store.tar_stream(&h).expect("stream");
        let err = read_in(s, 8192).expect_err("tampered");
        assert!(
            err.to_string().contains("could not verify layer data"),
            "{err}"
        );
    }

    #[test]
    fn segments_larger_than_a_fill_buffer_keep_their_place() {
        use super::super::crc64::Crc64;
        use sha2::Digest as _;
        let x: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let big: Vec<u8> = (0..(5u32 << 19)).map(|i| (i % 253) as u8).collect();
        let mut gz = crate::tarsplit::gzip_writer(Vec::new());
        let mut p = crate::tarsplit::Packer::new(&mut gz);
        let crc = |b: &[u8]| {
            let mut c = Crc64::new();
            c.update(b);
            c.finalize()
        };
        p.add_segment(&[1; 100]).expect("seg");
        p.add_file(b"x", x.len() as i64, Some(crc(&x))).expect("x");
        p.add_segment(&big).expect("big");
        p.add_file(b"y", 10, Some(crc(&x[..10]))).expect("y");
        p.add_segment(&[0; 1024]).expect("end");
        drop(p);
        let split = gz.finish().expect("gz");
        let mut whole = vec![1u8; 100];
        whole.extend_from_slice(&x);
        whole.extend_from_slice(&big);
        whole.extend_from_slice(&x[..10]);
        whole.extend_from_slice(&[0; 1024]);
        let good = crate::DiffId(digest_set::Digest::from_sha256_bytes(
            sha2::Sha256::digest(&whole).into(),
        ));
        let bad = crate::DiffId(digest_set::Digest::from_sha256_bytes([0; 32]));
        for (diff_id, ok) in [(good, true), (bad, false)] {
            for crcs in [false, true] {
                for step in [4096usize, 3 << 20] {
                    let x = &x;
                    let open: super::FileSource<'_> = Box::new(move |name: &[u8]| {
                        let b: &[u8] = if name == b"x" { x } else { &x[..10] };
                        Ok(Box::new(b) as Box<dyn Read>)
                    });
                    let mut s = super::TarStream::new(&split[..], diff_id, open)
                        .expect("stream")
                        .with_file_checksums(crcs);
                    let mut out = Vec::new();
                    let mut buf = vec![0u8; step];
                    let res = loop {
                        match s.read(&mut buf) {
                            Ok(0) => break Ok(()),
                            Ok(n) => out.extend_from_slice(&buf[..n]),
                            Err(e) => break Err(e),
                        }
                    };
                    assert!(out == whole, "step {step}, crcs {crcs}");
                    assert_eq!(res.is_ok(), ok, "{res:?}");
                }
            }
        }
    }
}
