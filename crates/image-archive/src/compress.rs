//! Compression of archives and layers, found from their first bytes: gzip, bzip2, xz, zstd
//! or none (dockerd 20.10 reads the first three; zstd layers load here too).

use std::io::{self, BufRead, Read};

/// A compression format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip.
    Gzip,
    /// bzip2.
    Bzip2,
    /// xz.
    Xz,
    /// zstd.
    Zstd,
}

/// The compression of data starting with `magic` (at least 6 bytes for a sure answer).
pub fn detect(magic: &[u8]) -> Compression {
    if magic.starts_with(&[0x1f, 0x8b, 0x08]) {
        Compression::Gzip
    } else if magic.starts_with(b"BZh") {
        Compression::Bzip2
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// `r` decompressed as its first bytes say. Multi-member gzip streams are read whole.
pub fn decompress<'a>(mut r: impl BufRead + Send + 'a) -> io::Result<Box<dyn Read + Send + 'a>> {
    let kind = {
        let b = r.fill_buf()?;
        detect(b)
    };
    Ok(match kind {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(r)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
    })
}
