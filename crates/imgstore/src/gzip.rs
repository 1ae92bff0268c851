//! [`AdaptiveGzip`]: a gzip stream of a reader that stores, rather than compresses, the
//! parts that would not shrink.
//!
//! Layers often hold data that is already compressed (archives, images, binaries packed by
//! their own tools). Deflating it costs most of a push's CPU and saves nothing: the output is
//! as large as the input. This reader looks at each chunk of [`CHUNK`] bytes before
//! compressing it; a chunk whose bytes are spread almost evenly over all 256 values (Shannon
//! entropy of its byte histogram at least [`STORED_ENTROPY`] bits a byte, which text, tar
//! headers and ordinary binaries never reach) is written as stored deflate blocks, after a
//! full flush of the compressor, and the rest is compressed at the chosen level. The result is one ordinary gzip member (RFC 1952) that
//! any gzip reader accepts; only its bytes differ from a gzip of the whole at one level.

use std::io::{self, Read};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Bytes looked at and compressed at a time.
pub const CHUNK: usize = 256 * 1024;
/// The byte entropy (bits a byte, at most 8) from which a chunk is stored.
pub const STORED_ENTROPY: f64 = 7.97;

/// A gzip stream of `inner` (see the module documentation).
pub struct AdaptiveGzip<R> {
    inner: R,
    comp: Compress,
    crc: Crc,
    level: Compression,
    stored: bool,
    input: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    finished: bool,
    total: u64,
}

impl<R: Read> AdaptiveGzip<R> {
    /// Compresses `inner` at `level` (0 to 9); level 0 stores everything.
    pub fn new(inner: R, level: u32) -> Self {
        let level = Compression::new(level.min(9));
        let xfl = match level.level() {
            1 => 4,
            9 => 2,
            _ => 0,
        };
        let mut out = Vec::with_capacity(CHUNK + 1024);
        // No name, no mtime, OS "unknown" (as Go's gzip writer).
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]);
        AdaptiveGzip {
            inner,
            comp: Compress::new(level, false),
            crc: Crc::new(),
            level,
            stored: false,
            input: vec![0; CHUNK],
            out,
            out_pos: 0,
            finished: false,
            total: 0,
        }
    }

    /// Fills `out` with the next part of the stream; leaves it empty at the end.
    fn produce(&mut self) -> io::Result<()> {
        self.out.clear();
        self.out_pos = 0;
        if self.finished {
            return Ok(());
        }
        let n = read_full(&mut self.inner, &mut self.input)?;
        if n == 0 {
            self.deflate(0, FlushCompress::Finish)?;
            self.out.extend_from_slice(&self.crc.sum().to_le_bytes());
            // ISIZE: the input's length modulo 2^32.
            self.out
                .extend_from_slice(&(self.total as u32).to_le_bytes());
            self.finished = true;
            return Ok(());
        }
        self.crc.update(&self.input[..n]);
        self.total += n as u64;
        let store = self.level.level() == 0 || entropy(&self.input[..n]) >= STORED_ENTROPY;
        if !store {
            self.stored = false;
            return self.deflate(n, FlushCompress::None);
        }
        if !self.stored {
            // A full flush ends the compressor's output on a byte boundary and forgets its
            // history, so that nothing compressed later refers back across the stored
            // blocks written here behind its back.
            self.deflate_slice(&[], FlushCompress::Full)?;
            self.stored = true;
        }
        for block in self.input[..n].chunks(usize::from(u16::MAX)) {
            // BFINAL 0, BTYPE 00 (stored), padded to the byte; LEN and its complement.
            let len = block.len() as u16;
            self.out.push(0);
            self.out.extend_from_slice(&len.to_le_bytes());
            self.out.extend_from_slice(&(!len).to_le_bytes());
            self.out.extend_from_slice(block);
        }
        Ok(())
    }

    fn deflate(&mut self, n: usize, flush: FlushCompress) -> io::Result<()> {
        let input = std::mem::take(&mut self.input);
        let r = self.deflate_slice(&input[..n], flush);
        self.input = input;
        r
    }

    /// Runs the compressor over `data` with `flush` until it is all taken (and, for a flush
    /// or the finish, until the compressor has written everything out).
    fn deflate_slice(&mut self, mut data: &[u8], flush: FlushCompress) -> io::Result<()> {
        loop {
            if self.out.capacity() - self.out.len() < 1024 {
                self.out.reserve(self.out.capacity().max(64 * 1024));
            }
            let before = self.comp.total_in();
            let status = self
                .comp
                .compress_vec(data, &mut self.out, flush)
                .map_err(io::Error::other)?;
            let taken = usize::try_from(self.comp.total_in() - before).unwrap_or(data.len());
            data = &data[taken.min(data.len())..];
            let room_left = self.out.len() < self.out.capacity();
            match flush {
                FlushCompress::Finish => {
                    if status == Status::StreamEnd {
                        return Ok(());
                    }
                }
                FlushCompress::None => {
                    if data.is_empty() {
                        return Ok(());
                    }
                }
                _ => {
                    if data.is_empty() && room_left {
                        return Ok(());
                    }
                }
            }
        }
    }
}

impl<R: Read> Read for AdaptiveGzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.out_pos == self.out.len() {
            if self.finished {
                return Ok(0);
            }
            self.produce()?;
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// Reads until `buf` is full or the end; the count read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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

/// The Shannon entropy of the bytes of `data`, in bits a byte.
fn entropy(data: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &b in data {
        counts[usize::from(b)] += 1;
    }
    let total = data.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / total;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    fn noise(n: usize, mut x: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn mixed_content_round_trips_at_every_level() {
        let text: Vec<u8> = b"layer text, compressible: abcabcabc 0123456789\n"
            .iter()
            .copied()
            .cycle()
            .take(CHUNK * 2 + 17)
            .collect();
        let mut input = Vec::new();
        input.extend_from_slice(&text);
        input.extend_from_slice(&noise(CHUNK * 3 + 5, 7));
        input.extend_from_slice(&text);
        input.extend_from_slice(&noise(100, 9));
        // Stored first, then compressed, then stored to the end.
        let mut second = noise(CHUNK + 3, 11);
        second.extend_from_slice(&text);
        second.extend_from_slice(&noise(CHUNK * 2, 13));
        for (level, input) in [0, 1, 6, 9]
            .into_iter()
            .flat_map(|l| [(l, &input), (l, &second)])
        {
            let mut gz = Vec::new();
            // Small reads, to exercise the buffering.
            let mut r = AdaptiveGzip::new(&input[..], level);
            let mut buf = [0u8; 1000];
            loop {
                let n = r.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                gz.extend_from_slice(&buf[..n]);
            }
            assert_eq!(&gunzip(&gz), input, "level {level}");
            // Noise is stored: never much larger than the input.
            assert!(gz.len() < input.len() + input.len() / 100 + 1024);
        }
    }

    #[test]
    fn empty_input_is_a_valid_gzip() {
        let mut gz = Vec::new();
        AdaptiveGzip::new(&[][..], 1)
            .read_to_end(&mut gz)
            .expect("read");
        assert_eq!(gunzip(&gz), Vec::<u8>::new());
    }

    #[test]
    fn noise_is_stored_and_text_compressed() {
        assert!(entropy(&noise(CHUNK, 3)) >= STORED_ENTROPY);
        let text: Vec<u8> = (0..CHUNK).map(|i| b"hello world\n"[i % 12]).collect();
        assert!(entropy(&text) < STORED_ENTROPY);
        let mut gz = Vec::new();
        AdaptiveGzip::new(&text[..], 1)
            .read_to_end(&mut gz)
            .expect("read");
        assert!(gz.len() < CHUNK / 10);
    }
}
