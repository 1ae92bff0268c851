//! Random IDs from `/dev/urandom`.

use std::io::Read;

/// 64 random lowercase hex characters (32 bytes from `/dev/urandom`), as dockerd's
/// `stringid.GenerateRandomID`.
pub(crate) fn random_hex() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let mut out = String::with_capacity(64);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    Ok(out)
}

const HEX: &[u8; 16] = b"0123456789abcdef";
