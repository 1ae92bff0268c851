//! Tar header blocks and PAX records, parsed the way Go's `archive/tar` (as forked by
//! tar-split) reads them.

use super::ContentError;

/// Size of a tar block.
pub(crate) const BLOCK: usize = 512;

/// Regular file (`'0'`).
pub const TYPE_REG: u8 = b'0';
/// Old regular file (`'\0'`), turned into [`TYPE_REG`] or [`TYPE_DIR`] by the reader.
pub const TYPE_REG_A: u8 = 0;
/// Hard link (`'1'`).
pub const TYPE_LINK: u8 = b'1';
/// Symbolic link (`'2'`).
pub const TYPE_SYMLINK: u8 = b'2';
/// Character device (`'3'`).
pub const TYPE_CHAR: u8 = b'3';
/// Block device (`'4'`).
pub const TYPE_BLOCK: u8 = b'4';
/// Directory (`'5'`).
pub const TYPE_DIR: u8 = b'5';
/// FIFO (`'6'`).
pub const TYPE_FIFO: u8 = b'6';
/// Contiguous file (`'7'`), treated as a regular file by Go.
pub const TYPE_CONT: u8 = b'7';
/// PAX extended header for the next member (`'x'`).
pub const TYPE_XHEADER: u8 = b'x';
/// PAX global header (`'g'`).
pub const TYPE_XGLOBAL: u8 = b'g';
/// GNU long name (`'L'`).
pub const TYPE_GNU_LONGNAME: u8 = b'L';
/// GNU long link name (`'K'`).
pub const TYPE_GNU_LONGLINK: u8 = b'K';
/// Old GNU sparse file (`'S'`).
pub const TYPE_GNU_SPARSE: u8 = b'S';

/// A point in time with nanoseconds, as in tar headers (seconds may be negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub secs: i64,
    /// Nanoseconds, 0..1e9.
    pub nanos: u32,
}

/// One member of a tar stream, with GNU long names and PAX records merged in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TarHeader {
    /// The name, raw bytes as in the stream (after PAX `path`, GNU long name, USTAR prefix).
    pub name: Vec<u8>,
    /// The link target of hard and symbolic links.
    pub linkname: Vec<u8>,
    /// The type flag (one of the `TYPE_*` constants; `'\0'` is reported as `'0'` or `'5'`).
    pub typeflag: u8,
    /// The size field (after PAX `size`). Header-only types (links, devices, directories,
    /// FIFOs) have no content whatever this says.
    pub size: i64,
    /// The mode bits from the header.
    pub mode: i64,
    /// Owner user ID.
    pub uid: i64,
    /// Owner group ID.
    pub gid: i64,
    /// Modification time.
    pub mtime: Timestamp,
    /// Access time, when the header has one (PAX `atime`, GNU or STAR fields).
    pub atime: Option<Timestamp>,
    /// Device major number.
    pub devmajor: i64,
    /// Device minor number.
    pub devminor: i64,
    /// Extended attributes from PAX `SCHILY.xattr.*` records, in stream order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl TarHeader {
    /// Whether this type never has content in the stream.
    pub fn is_header_only(&self) -> bool {
        is_header_only_type(self.typeflag)
    }

    /// The number of content bytes that follow the header in the stream.
    pub fn content_len(&self) -> u64 {
        if self.is_header_only() {
            0
        } else {
            self.size.max(0) as u64
        }
    }
}

pub(crate) fn is_header_only_type(t: u8) -> bool {
    matches!(
        t,
        TYPE_LINK | TYPE_SYMLINK | TYPE_CHAR | TYPE_BLOCK | TYPE_DIR | TYPE_FIFO
    )
}

/// Go's `parseString`: up to the first NUL.
fn parse_string(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

fn trim_nul_space(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b
        && (*first == b' ' || *first == 0)
    {
        b = rest;
    }
    while let [rest @ .., last] = b
        && (*last == b' ' || *last == 0)
    {
        b = rest;
    }
    b
}

fn parse_octal(b: &[u8]) -> Option<i64> {
    let b = parse_string(trim_nul_space(b));
    if b.is_empty() {
        return Some(0);
    }
    let s = std::str::from_utf8(b).ok()?;
    u64::from_str_radix(s, 8).ok().map(|v| v as i64)
}

/// Go's `parseNumeric`: base-256 when the high bit is set, else octal.
fn parse_numeric(b: &[u8]) -> Option<i64> {
    if let Some(&first) = b.first()
        && first & 0x80 != 0
    {
        let inv: u8 = if first & 0x40 != 0 { 0xff } else { 0 };
        let mut x: u64 = 0;
        for (i, &c) in b.iter().enumerate() {
            let mut c = c ^ inv;
            if i == 0 {
                c &= 0x7f;
            }
            if x >> 56 > 0 {
                return None;
            }
            x = (x << 8) | u64::from(c);
        }
        if x >> 63 > 0 {
            return None;
        }
        return Some(if inv == 0xff { !(x as i64) } else { x as i64 });
    }
    parse_octal(b)
}

fn is_zero_block(b: &[u8]) -> bool {
    b.iter().all(|&c| c == 0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    V7,
    Ustar,
    Star,
    Gnu,
}

fn block_format(b: &[u8; BLOCK]) -> Option<Format> {
    let stored = parse_octal(&b[148..156])?;
    let mut unsigned: i64 = 0;
    let mut signed: i64 = 0;
    for (i, &c) in b.iter().enumerate() {
        let c = if (148..156).contains(&i) { b' ' } else { c };
        unsigned += i64::from(c);
        signed += i64::from(c as i8);
    }
    if stored != unsigned && stored != signed {
        return None;
    }
    let magic = &b[257..263];
    let version = &b[263..265];
    let trailer = &b[508..512];
    Some(if magic == b"ustar\0" && trailer == b"tar\0" {
        Format::Star
    } else if magic == b"ustar\0" {
        Format::Ustar
    } else if magic == b"ustar " && version == b" \0" {
        Format::Gnu
    } else {
        Format::V7
    })
}

/// What a 512-byte block holds.
pub(crate) enum Block {
    /// A block of zeros (possibly the end of the archive).
    Zero,
    /// A header.
    Header(Box<TarHeader>),
}

/// Parses one header block.
pub(crate) fn parse_block(b: &[u8; BLOCK], offset: u64) -> Result<Block, ContentError> {
    if is_zero_block(b) {
        return Ok(Block::Zero);
    }
    let bad = |what: &str| ContentError::InvalidTar {
        offset,
        reason: what.to_string(),
    };
    let format =
        block_format(b).ok_or_else(|| bad("invalid tar header (bad checksum or format)"))?;
    let num = |r: std::ops::Range<usize>, what: &str| {
        parse_numeric(&b[r]).ok_or_else(|| bad(&format!("invalid {what} field in tar header")))
    };
    let mut h = TarHeader {
        typeflag: b[156],
        name: parse_string(&b[0..100]).to_vec(),
        linkname: parse_string(&b[157..257]).to_vec(),
        size: num(124..136, "size")?,
        mode: num(100..108, "mode")?,
        uid: num(108..116, "uid")?,
        gid: num(116..124, "gid")?,
        mtime: Timestamp {
            secs: num(136..148, "mtime")?,
            nanos: 0,
        },
        ..TarHeader::default()
    };
    if format != Format::V7 {
        h.devmajor = num(329..337, "devmajor")?;
        h.devminor = num(337..345, "devminor")?;
        let mut prefix: &[u8] = &[];
        match format {
            Format::Ustar => prefix = parse_string(&b[345..500]),
            Format::Star => {
                prefix = parse_string(&b[345..476]);
                h.atime = Some(Timestamp {
                    secs: num(476..488, "atime")?,
                    nanos: 0,
                });
            }
            Format::Gnu => {
                let at = &b[345..357];
                let ct = &b[357..369];
                let at_v = if at[0] != 0 {
                    parse_numeric(at)
                } else {
                    Some(0)
                };
                let ct_ok = ct[0] == 0 || parse_numeric(ct).is_some();
                match at_v {
                    Some(v) if ct_ok => {
                        if at[0] != 0 {
                            h.atime = Some(Timestamp { secs: v, nanos: 0 });
                        }
                    }
                    _ => {
                        // Pre-Go1.8 writers put a USTAR prefix here.
                        let p = parse_string(&b[345..500]);
                        if p.is_ascii() {
                            prefix = p;
                        }
                    }
                }
            }
            Format::V7 => {}
        }
        if !prefix.is_empty() {
            let mut name = prefix.to_vec();
            name.push(b'/');
            name.extend_from_slice(&h.name);
            h.name = name;
        }
    }
    Ok(Block::Header(Box::new(h)))
}

fn parse_pax_time(v: &[u8], offset: u64) -> Result<Timestamp, ContentError> {
    let bad = || ContentError::InvalidTar {
        offset,
        reason: format!("invalid PAX time {:?}", String::from_utf8_lossy(v)),
    };
    let s = std::str::from_utf8(v).map_err(|_| bad())?;
    let (ss, sn) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let secs: i64 = ss.parse().map_err(|_| bad())?;
    if sn.is_empty() {
        return Ok(Timestamp { secs, nanos: 0 });
    }
    if !sn.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let mut digits = sn.as_bytes().to_vec();
    digits.resize(9, b'0');
    let nsecs: i64 = std::str::from_utf8(&digits[..9])
        .ok()
        .and_then(|d| d.parse().ok())
        .ok_or_else(bad)?;
    // Go: a negative seconds part with a fraction counts the fraction backwards.
    if ss.starts_with('-') {
        let total = i128::from(secs) * 1_000_000_000 - i128::from(nsecs);
        let secs = total.div_euclid(1_000_000_000) as i64;
        let nanos = total.rem_euclid(1_000_000_000) as u32;
        return Ok(Timestamp { secs, nanos });
    }
    Ok(Timestamp {
        secs,
        nanos: nsecs as u32,
    })
}

/// The records of a PAX extended header, in order.
pub(crate) type PaxRecords = Vec<(Vec<u8>, Vec<u8>)>;

/// Parses PAX records (`"%d %s=%s\n"`).
pub(crate) fn parse_pax(mut buf: &[u8], offset: u64) -> Result<PaxRecords, ContentError> {
    let bad = |r: &str| ContentError::InvalidTar {
        offset,
        reason: format!("invalid PAX record: {r}"),
    };
    let mut out = Vec::new();
    while !buf.is_empty() {
        let sp = buf
            .iter()
            .position(|&c| c == b' ')
            .ok_or_else(|| bad("no length"))?;
        let n: usize = std::str::from_utf8(&buf[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad length"))?;
        if n < 5 || buf.len() < n || sp + 1 >= n - 1 {
            return Err(bad("bad length"));
        }
        let rec = &buf[sp + 1..n - 1];
        if buf[n - 1] != b'\n' {
            return Err(bad("missing newline"));
        }
        let eq = rec
            .iter()
            .position(|&c| c == b'=')
            .ok_or_else(|| bad("no '='"))?;
        let (k, v) = (&rec[..eq], &rec[eq + 1..]);
        if k.is_empty() {
            return Err(bad("empty key"));
        }
        out.push((k.to_vec(), v.to_vec()));
        buf = &buf[n..];
    }
    Ok(out)
}

/// Merges PAX records into `h` (Go's `mergePAX`). Sparse files are refused: tar-split cannot
/// reassemble them.
pub(crate) fn merge_pax(
    h: &mut TarHeader,
    recs: &PaxRecords,
    offset: u64,
) -> Result<(), ContentError> {
    let bad = |k: &[u8]| ContentError::InvalidTar {
        offset,
        reason: format!("invalid PAX record {:?}", String::from_utf8_lossy(k)),
    };
    let int = |k: &[u8], v: &[u8]| -> Result<i64, ContentError> {
        std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(k))
    };
    // Later records override earlier ones (Go keeps a map).
    for (k, v) in recs {
        if k.starts_with(b"GNU.sparse.") {
            return Err(ContentError::Unsupported {
                name: h.name.clone(),
                what: "sparse files (GNU.sparse PAX records)".into(),
            });
        }
        if v.is_empty() {
            continue;
        }
        match k.as_slice() {
            b"path" => h.name = v.clone(),
            b"linkpath" => h.linkname = v.clone(),
            b"uid" => h.uid = int(k, v)?,
            b"gid" => h.gid = int(k, v)?,
            b"size" => h.size = int(k, v)?,
            b"mtime" => h.mtime = parse_pax_time(v, offset)?,
            b"atime" => h.atime = Some(parse_pax_time(v, offset)?),
            b"ctime" => {
                parse_pax_time(v, offset)?;
            }
            _ => {
                if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                    if let Some(slot) = h.xattrs.iter_mut().find(|(n, _)| n == name) {
                        slot.1 = v.clone();
                    } else {
                        h.xattrs.push((name.to_vec(), v.clone()));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_fields() {
        assert_eq!(parse_numeric(b"0000644\0"), Some(0o644));
        assert_eq!(parse_numeric(b"   12 \0"), Some(0o12));
        assert_eq!(parse_numeric(b"\0\0\0"), Some(0));
        assert_eq!(parse_numeric(b"9\0"), None);
        assert_eq!(
            parse_numeric(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00]),
            Some(256)
        );
        assert_eq!(parse_numeric(&[0xff; 12]), Some(-1));
    }

    #[test]
    fn pax_records() {
        let recs = parse_pax(b"16 path=foo/bar\n21 mtime=1.500000001\n", 0).expect("pax");
        let mut h = TarHeader::default();
        merge_pax(&mut h, &recs, 0).expect("merge");
        assert_eq!(h.name, b"foo/bar");
        assert_eq!(
            h.mtime,
            Timestamp {
                secs: 1,
                nanos: 500_000_001
            }
        );
        assert!(parse_pax(b"3 a=\n", 0).is_err());
        assert_eq!(
            parse_pax_time(b"-1.25", 0).expect("t"),
            Timestamp {
                secs: -2,
                nanos: 750_000_000
            }
        );
    }
}
