//! Tar headers as Go's `archive/tar` writes them for `docker save` (moby's `archive.Tar`
//! over the export directory): USTAR, owner `0`/`0` named `root`/`root`, file-type bits in
//! the mode (`0100644`, `040755`, `0120777`), octal fields zero-padded and NUL-terminated,
//! the checksum as six octal digits, NUL, space. A size or time that does not fit its octal
//! field goes into a PAX extended header first, as Go's writer does for `FormatPAX`.

use std::io::{self, Write};

/// The size of a tar block.
pub(crate) const BLOCK: usize = 512;

/// Regular file.
pub(crate) const TYPE_FILE: u8 = b'0';
/// Symbolic link.
pub(crate) const TYPE_SYMLINK: u8 = b'2';
/// Directory.
pub(crate) const TYPE_DIR: u8 = b'5';
/// PAX extended header.
const TYPE_PAX: u8 = b'x';

/// Mode of a regular file as moby's `archive.Tar` writes it (0644 plus Go's `c_ISREG`).
pub(crate) const MODE_FILE: u32 = 0o100_644;
/// Mode of a directory (0755 plus `c_ISDIR`).
pub(crate) const MODE_DIR: u32 = 0o040_755;
/// Mode of a symbolic link (0777 plus `c_ISLNK`).
pub(crate) const MODE_SYMLINK: u32 = 0o120_777;

/// One member's header.
#[derive(Debug, Clone)]
pub(crate) struct Header<'a> {
    /// The name (a directory's ends in `/`).
    pub(crate) name: &'a str,
    /// Mode with file-type bits.
    pub(crate) mode: u32,
    /// Content length.
    pub(crate) size: u64,
    /// Modification time, Unix seconds.
    pub(crate) mtime: i64,
    /// Type flag.
    pub(crate) typeflag: u8,
    /// A symbolic link's target.
    pub(crate) linkname: &'a str,
}

/// Whether `x` fits an octal field of `len` bytes (one left for the NUL).
fn fits_octal(len: usize, x: i64) -> bool {
    let digits = (len - 1) as u32;
    x >= 0 && (digits >= 21 || x < 1i64 << (3 * digits))
}

/// Go's `formatOctal`: zero-padded digits and a NUL; a value that does not fit is written as
/// zero (the real value then travels in a PAX record).
fn put_octal(field: &mut [u8], x: i64) {
    let x = if fits_octal(field.len(), x) { x } else { 0 };
    let s = format!("{x:o}");
    let width = field.len() - 1;
    let pad = width.saturating_sub(s.len());
    for b in field.iter_mut().take(pad) {
        *b = b'0';
    }
    field[pad..pad + s.len()].copy_from_slice(s.as_bytes());
    field[width] = 0;
}

fn put_str(field: &mut [u8], s: &str) -> io::Result<()> {
    if s.len() > field.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("tar header field too long: {s:?}"),
        ));
    }
    field[..s.len()].copy_from_slice(s.as_bytes());
    Ok(())
}

/// Magic and version of USTAR (and PAX), and the checksum.
fn finish(block: &mut [u8; BLOCK]) {
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    put_octal(&mut block[148..155], i64::from(sum));
    block[155] = b' ';
}

/// Go's `formatPAXRecord`: `"<len> <key>=<value>\n"`, where len counts itself.
fn pax_record(key: &str, value: &str) -> String {
    let base = key.len() + value.len() + 3;
    let mut size = base + base.to_string().len();
    let mut record = format!("{size} {key}={value}\n");
    if record.len() != size {
        size = record.len();
        record = format!("{size} {key}={value}\n");
    }
    record
}

/// Writes `h` (with a PAX extended header first when its size or time needs one).
pub(crate) fn write_header(out: &mut dyn Write, h: &Header<'_>) -> io::Result<()> {
    let size = i64::try_from(h.size).unwrap_or(i64::MAX);
    let mut records = Vec::new();
    if !fits_octal(12, h.mtime) {
        records.push(("mtime", h.mtime.to_string()));
    }
    if !fits_octal(12, size) {
        records.push(("size", h.size.to_string()));
    }
    if !records.is_empty() {
        records.sort();
        let data: String = records.iter().map(|(k, v)| pax_record(k, v)).collect();
        let (dir, file) = match h.name.trim_end_matches('/').rsplit_once('/') {
            Some((d, f)) => (format!("{d}/"), f),
            None => (String::new(), h.name.trim_end_matches('/')),
        };
        let name = format!("{dir}PaxHeaders.0/{file}");
        let mut block = [0u8; BLOCK];
        put_str(&mut block[0..100], &name)?;
        put_octal(&mut block[100..108], 0);
        put_octal(&mut block[108..116], 0);
        put_octal(&mut block[116..124], 0);
        put_octal(&mut block[124..136], data.len() as i64);
        put_octal(&mut block[136..148], 0);
        block[156] = TYPE_PAX;
        finish(&mut block);
        out.write_all(&block)?;
        out.write_all(data.as_bytes())?;
        out.write_all(&[0u8; BLOCK][..padding(data.len() as u64)])?;
    }
    let mut block = [0u8; BLOCK];
    put_str(&mut block[0..100], h.name)?;
    put_octal(&mut block[100..108], i64::from(h.mode));
    put_octal(&mut block[108..116], 0);
    put_octal(&mut block[116..124], 0);
    put_octal(&mut block[124..136], size);
    put_octal(&mut block[136..148], h.mtime);
    block[156] = h.typeflag;
    put_str(&mut block[157..257], h.linkname)?;
    put_str(&mut block[265..297], "root")?;
    put_str(&mut block[297..329], "root")?;
    put_octal(&mut block[329..337], 0);
    put_octal(&mut block[337..345], 0);
    finish(&mut block);
    out.write_all(&block)
}

/// The zero bytes that pad `size` bytes of content to a whole block.
pub(crate) fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

/// Writes the padding after `size` bytes of content.
pub(crate) fn write_padding(out: &mut dyn Write, size: u64) -> io::Result<()> {
    out.write_all(&[0u8; BLOCK][..padding(size)])
}

/// Writes a whole regular file.
pub(crate) fn write_file(
    out: &mut dyn Write,
    name: &str,
    data: &[u8],
    mtime: i64,
) -> io::Result<()> {
    write_header(
        out,
        &Header {
            name,
            mode: MODE_FILE,
            size: data.len() as u64,
            mtime,
            typeflag: TYPE_FILE,
            linkname: "",
        },
    )?;
    out.write_all(data)?;
    write_padding(out, data.len() as u64)
}

/// Writes a directory (`name` ends in `/`).
pub(crate) fn write_dir(out: &mut dyn Write, name: &str, mtime: i64) -> io::Result<()> {
    write_header(
        out,
        &Header {
            name,
            mode: MODE_DIR,
            size: 0,
            mtime,
            typeflag: TYPE_DIR,
            linkname: "",
        },
    )
}

/// Writes a symbolic link.
pub(crate) fn write_symlink(
    out: &mut dyn Write,
    name: &str,
    target: &str,
    mtime: i64,
) -> io::Result<()> {
    write_header(
        out,
        &Header {
            name,
            mode: MODE_SYMLINK,
            size: 0,
            mtime,
            typeflag: TYPE_SYMLINK,
            linkname: target,
        },
    )
}

/// The end of an archive: two zero blocks (Go's `Writer.Close`).
pub(crate) fn write_end(out: &mut dyn Write) -> io::Result<()> {
    out.write_all(&[0u8; 2 * BLOCK])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_counts_its_own_length() {
        assert_eq!(pax_record("size", "8589934592"), "19 size=8589934592\n");
        assert_eq!(pax_record("a", "bcd"), "8 a=bcd\n");
        // 9 + 1 digit = 10 would be wrong: the length's second digit makes it 11.
        assert_eq!(pax_record("a", "bcdef"), "11 a=bcdef\n");
    }

    #[test]
    fn large_sizes_and_times_go_to_pax() {
        let mut out = Vec::new();
        write_header(
            &mut out,
            &Header {
                name: "abc/layer.tar",
                mode: MODE_FILE,
                size: 1 << 33,
                mtime: 0,
                typeflag: TYPE_FILE,
                linkname: "",
            },
        )
        .expect("header");
        assert_eq!(out.len(), 3 * BLOCK);
        assert!(out.starts_with(b"abc/PaxHeaders.0/layer.tar\0"));
        assert_eq!(&out[BLOCK..BLOCK + 20], b"19 size=8589934592\n\0");
        assert_eq!(&out[2 * BLOCK + 124..2 * BLOCK + 136], b"00000000000\0");
    }
}
