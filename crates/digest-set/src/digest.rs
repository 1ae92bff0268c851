//! The [`Digest`] type: an algorithm plus the raw bytes of a hash.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

/// A hash algorithm a [`Digest`] can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256: 32 bytes, 64 hex characters. Every Docker image and layer ID uses it.
    Sha256,
    /// SHA-512: 64 bytes, 128 hex characters. Accepted, as OCI allows it.
    Sha512,
}

impl Algorithm {
    /// The name used in the `algorithm:hex` form, e.g. `sha256`.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the raw hash in bytes.
    pub const fn byte_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }

    /// Length of the hash in lowercase hex characters.
    pub const fn hex_len(self) -> usize {
        self.byte_len() * 2
    }

    /// Parses an algorithm name (`sha256` or `sha512`), or returns `None`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a string is not a valid digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// There is no `:` between algorithm and hex.
    #[error(
        "invalid digest {input:?}: expected the form algorithm:hex, e.g. sha256:<64 hex characters>"
    )]
    MissingAlgorithm {
        /// The rejected string.
        input: String,
    },
    /// The algorithm is neither `sha256` nor `sha512`.
    #[error(
        "invalid digest {input:?}: unsupported algorithm {algorithm:?} (expected sha256 or sha512)"
    )]
    UnsupportedAlgorithm {
        /// The rejected string.
        input: String,
        /// The algorithm part.
        algorithm: String,
    },
    /// The hex part has the wrong length for its algorithm.
    #[error("invalid digest {input:?}: {algorithm} needs {expected} hex characters, got {actual}")]
    InvalidLength {
        /// The rejected string.
        input: String,
        /// The algorithm named.
        algorithm: Algorithm,
        /// The length the algorithm needs.
        expected: usize,
        /// The length found.
        actual: usize,
    },
    /// The hex part holds a character that is not lowercase hex.
    #[error(
        "invalid digest {input:?}: character {character:?} at offset {offset} is not lowercase hex"
    )]
    InvalidHex {
        /// The rejected string.
        input: String,
        /// The offending character.
        character: char,
        /// Its byte offset within the hex part.
        offset: usize,
    },
}

/// A content digest: algorithm plus raw hash bytes.
///
/// Stored inline (no heap allocation); ordered by its hex form, then by algorithm, which is
/// the order Docker's digest set keeps.
#[derive(Clone, Copy)]
pub struct Digest {
    algorithm: Algorithm,
    bytes: [u8; 64],
}

impl Digest {
    /// The SHA-256 digest of `data`.
    pub fn sha256(data: &[u8]) -> Self {
        let hash = sha2::Sha256::digest(data);
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&hash);
        Digest {
            algorithm: Algorithm::Sha256,
            bytes,
        }
    }

    /// The SHA-512 digest of `data`.
    pub fn sha512(data: &[u8]) -> Self {
        let hash = sha2::Sha512::digest(data);
        let mut bytes = [0u8; 64];
        bytes.copy_from_slice(&hash);
        Digest {
            algorithm: Algorithm::Sha512,
            bytes,
        }
    }

    /// A digest from raw bytes; `None` if `raw` has the wrong length for `algorithm`.
    pub fn from_raw(algorithm: Algorithm, raw: &[u8]) -> Option<Self> {
        if raw.len() != algorithm.byte_len() {
            return None;
        }
        let mut bytes = [0u8; 64];
        bytes[..raw.len()].copy_from_slice(raw);
        Some(Digest { algorithm, bytes })
    }

    /// A SHA-256 digest from its 32 raw bytes.
    pub const fn from_sha256_bytes(raw: [u8; 32]) -> Self {
        let mut bytes = [0u8; 64];
        let mut i = 0;
        while i < 32 {
            bytes[i] = raw[i];
            i += 1;
        }
        Digest {
            algorithm: Algorithm::Sha256,
            bytes,
        }
    }

    /// Parses the hex part alone (`<hex>`, no algorithm), as found in file names such as
    /// `content/sha256/<hex>`.
    pub fn from_hex(algorithm: Algorithm, hex: &str) -> Result<Self, ParseError> {
        let input = || format!("{algorithm}:{hex}");
        if hex.len() != algorithm.hex_len() {
            return Err(ParseError::InvalidLength {
                input: input(),
                algorithm,
                expected: algorithm.hex_len(),
                actual: hex.len(),
            });
        }
        let mut bytes = [0u8; 64];
        let raw = hex.as_bytes();
        // Branch-free over the whole string: every invalid character has the high bit set
        // in the table, so one test at the end tells whether any was found.
        let mut invalid = 0u8;
        for (byte, pair) in bytes.iter_mut().zip(raw.chunks_exact(2)) {
            let hi = HEX_VALUE[usize::from(pair[0])];
            let lo = HEX_VALUE[usize::from(pair[1])];
            invalid |= hi | lo;
            *byte = (hi << 4) | (lo & 0xf);
        }
        if invalid & INVALID != 0 {
            // Rare: find the first offending character for the error.
            let offset = raw
                .iter()
                .position(|&c| HEX_VALUE[usize::from(c)] & INVALID != 0)
                .unwrap_or(0);
            // All bytes before `offset` are ASCII, so it is a character boundary.
            let character = hex
                .get(offset..)
                .and_then(|s| s.chars().next())
                .unwrap_or('?');
            return Err(ParseError::InvalidHex {
                input: input(),
                character,
                offset,
            });
        }
        Ok(Digest { algorithm, bytes })
    }

    /// A SHA-512 digest from its 64 raw bytes (crate-internal: sets store them so).
    pub(crate) const fn from_sha512_bytes(bytes: [u8; 64]) -> Self {
        Digest {
            algorithm: Algorithm::Sha512,
            bytes,
        }
    }

    /// The 32 raw bytes of a sha256 digest, `None` for another algorithm.
    pub(crate) fn sha256_bytes(&self) -> Option<[u8; 32]> {
        if self.algorithm != Algorithm::Sha256 {
            return None;
        }
        let mut raw = [0u8; 32];
        raw.copy_from_slice(&self.bytes[..32]);
        Some(raw)
    }

    /// All 64 bytes of the inline buffer (a sha256 digest's are zero past the 32nd).
    pub(crate) const fn raw_buffer(&self) -> &[u8; 64] {
        &self.bytes
    }

    /// The algorithm.
    pub const fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The raw hash bytes (32 for sha256, 64 for sha512).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.algorithm.byte_len()]
    }

    /// The lowercase hex of the hash, without the algorithm.
    pub fn hex(&self) -> String {
        self.hex_buf().as_str().to_owned()
    }

    /// The lowercase hex of the hash, without the algorithm, on the stack: no allocation.
    /// It derefs to `&str` and implements `Display`.
    ///
    /// ```
    /// let d = digest_set::Digest::sha256(b"");
    /// assert_eq!(d.hex_buf().as_str(), d.hex());
    /// ```
    pub fn hex_buf(&self) -> HexBuf {
        let mut buf = [0u8; 128];
        let len = self.write_hex(&mut buf).len();
        HexBuf { buf, len }
    }

    /// Writes the lowercase hex of the hash into `out` and returns it: no allocation.
    pub fn write_hex<'a>(&self, out: &'a mut [u8; 128]) -> &'a str {
        let raw = self.as_bytes();
        for (pair, b) in out.chunks_exact_mut(2).zip(raw) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0xf)];
        }
        // The buffer only holds ASCII hex digits there.
        std::str::from_utf8(&out[..2 * raw.len()]).unwrap_or_default()
    }

    /// The first 12 hex characters: Docker's short ID.
    pub fn short(&self) -> String {
        let mut hex = self.hex();
        hex.truncate(12);
        hex
    }

    /// The hex nibble at `index` (0-based), `None` past the end.
    pub fn nibble(&self, index: usize) -> Option<u8> {
        let byte = *self.as_bytes().get(index / 2)?;
        Some(if index.is_multiple_of(2) {
            byte >> 4
        } else {
            byte & 0xf
        })
    }
}

pub(crate) const HEX: &[u8; 16] = b"0123456789abcdef";

/// The lowercase hex of a [`Digest`] held on the stack ([`Digest::hex_buf`]).
#[derive(Clone, Copy)]
pub struct HexBuf {
    buf: [u8; 128],
    len: usize,
}

impl HexBuf {
    /// The hex digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are written below `len`.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl std::ops::Deref for HexBuf {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for HexBuf {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for HexBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for HexBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Marks a byte that is not a lowercase hex digit in [`HEX_VALUE`].
const INVALID: u8 = 0x80;

/// The value of each byte as a lowercase hex digit, or [`INVALID`].
static HEX_VALUE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 16 {
        table[HEX[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Decodes the lowercase hex prefix `hex` (at most 128 characters) into `out`, which must be
/// zeroed; an odd last digit goes in the high half of its byte. `false` if a character is not
/// lowercase hex. Branch-free over the string, like [`Digest::from_hex`].
pub(crate) fn decode_hex_prefix(hex: &[u8], out: &mut [u8; 64]) -> bool {
    let mut invalid = 0u8;
    let pairs = hex.chunks_exact(2);
    let odd = pairs.remainder();
    for (byte, pair) in out.iter_mut().zip(pairs) {
        let hi = HEX_VALUE[usize::from(pair[0])];
        let lo = HEX_VALUE[usize::from(pair[1])];
        invalid |= hi | lo;
        *byte = (hi << 4) | (lo & 0xf);
    }
    if let ([last], Some(byte)) = (odd, out.get_mut(hex.len() / 2)) {
        let hi = HEX_VALUE[usize::from(*last)];
        invalid |= hi;
        *byte = hi << 4;
    }
    invalid & INVALID == 0
}

/// The value of a lowercase hex digit.
#[cfg(test)]
fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl PartialEq for Digest {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Digest {}

impl std::hash::Hash for Digest {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.algorithm.hash(state);
        self.as_bytes().hash(state);
    }
}

impl Ord for Digest {
    fn cmp(&self, other: &Self) -> Ordering {
        // Lowercase hex preserves byte order, so comparing bytes is comparing hex strings.
        self.as_bytes()
            .cmp(other.as_bytes())
            .then(self.algorithm.cmp(&other.algorithm))
    }
}

impl PartialOrd for Digest {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.algorithm.name())?;
        f.write_str(":")?;
        f.write_str(&self.hex_buf())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(ParseError::MissingAlgorithm {
                input: s.to_owned(),
            });
        };
        let Some(algorithm) = Algorithm::from_name(alg) else {
            return Err(ParseError::UnsupportedAlgorithm {
                input: s.to_owned(),
                algorithm: alg.to_owned(),
            });
        };
        Digest::from_hex(algorithm, hex)
    }
}

impl TryFrom<&str> for Digest {
    type Error = ParseError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a digest string such as sha256:<64 hex characters>")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Digest, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_foobar() {
        let d = Digest::sha256(b"foobar");
        assert_eq!(
            d.to_string(),
            "sha256:c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2"
        );
        assert_eq!(d.short(), "c3ab8ff13720");
        assert_eq!(d.to_string().parse::<Digest>(), Ok(d));
    }

    #[test]
    fn rejects_malformed() {
        assert!(matches!(
            "abc".parse::<Digest>(),
            Err(ParseError::MissingAlgorithm { .. })
        ));
        assert!(matches!(
            "md5:abc".parse::<Digest>(),
            Err(ParseError::UnsupportedAlgorithm { .. })
        ));
        assert!(matches!(
            "sha256:abc".parse::<Digest>(),
            Err(ParseError::InvalidLength { .. })
        ));
        let upper = format!("sha256:{}", "A".repeat(64));
        assert!(matches!(
            upper.parse::<Digest>(),
            Err(ParseError::InvalidHex { offset: 0, .. })
        ));
        let bad = format!("sha256:{}g", "a".repeat(63));
        assert!(matches!(
            bad.parse::<Digest>(),
            Err(ParseError::InvalidHex { offset: 63, .. })
        ));
        let multibyte = format!("sha256:{}é", "a".repeat(62));
        assert!(multibyte.parse::<Digest>().is_err());
    }

    /// The decoder before the lookup table, kept as the model of `from_hex`'s results.
    fn from_hex_model(algorithm: Algorithm, hex: &str) -> Result<Digest, ParseError> {
        let input = || format!("{algorithm}:{hex}");
        if hex.len() != algorithm.hex_len() {
            return Err(ParseError::InvalidLength {
                input: input(),
                algorithm,
                expected: algorithm.hex_len(),
                actual: hex.len(),
            });
        }
        let mut bytes = [0u8; 64];
        let raw = hex.as_bytes();
        for (i, byte) in bytes[..algorithm.byte_len()].iter_mut().enumerate() {
            match (nibble(raw[2 * i]), nibble(raw[2 * i + 1])) {
                (Some(hi), Some(lo)) => *byte = (hi << 4) | lo,
                (hi, _) => {
                    let offset = if hi.is_none() { 2 * i } else { 2 * i + 1 };
                    let character = hex[offset..].chars().next().unwrap_or('?');
                    return Err(ParseError::InvalidHex {
                        input: input(),
                        character,
                        offset,
                    });
                }
            }
        }
        Ok(Digest { algorithm, bytes })
    }

    #[test]
    fn from_hex_errors() {
        let alg = Algorithm::Sha256;
        assert_eq!(
            Digest::from_hex(alg, "abc"),
            Err(ParseError::InvalidLength {
                input: "sha256:abc".to_owned(),
                algorithm: alg,
                expected: 64,
                actual: 3,
            })
        );
        // The length is counted in bytes, as before.
        let e_acute = format!("{}é", "a".repeat(63));
        assert!(matches!(
            Digest::from_hex(alg, &e_acute),
            Err(ParseError::InvalidLength { actual: 65, .. })
        ));
        for (hex, character, offset) in [
            (format!("{}é", "a".repeat(62)), 'é', 62),
            (format!("G{}", "a".repeat(63)), 'G', 0),
            (format!("a{}", "A".repeat(63)), 'A', 1),
            (format!("{}g", "0".repeat(63)), 'g', 63),
            (format!("{}:{}", "0".repeat(10), "z".repeat(53)), ':', 10),
            (format!("{}\0{}", "f".repeat(31), "f".repeat(32)), '\0', 31),
            (format!("{}\u{ff}", "f".repeat(62)), '\u{ff}', 62),
        ] {
            assert_eq!(
                Digest::from_hex(alg, &hex),
                Err(ParseError::InvalidHex {
                    input: format!("sha256:{hex}"),
                    character,
                    offset,
                }),
                "{hex:?}"
            );
        }
        let hex512 = format!("{}x", "9".repeat(127));
        assert!(matches!(
            Digest::from_hex(Algorithm::Sha512, &hex512),
            Err(ParseError::InvalidHex {
                offset: 127,
                character: 'x',
                ..
            })
        ));
        let all: String = "0123456789abcdef".repeat(4);
        let d = Digest::from_hex(alg, &all).expect("valid");
        assert_eq!(d.hex(), all);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// `from_hex` gives exactly the model's digest or error, for near-valid strings.
        #[test]
        fn from_hex_matches_model(
            chars in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => proptest::char::ranges(vec!['0'..='9', 'a'..='f'].into()),
                    1 => proptest::char::any(),
                ],
                60..=130,
            ),
            sha512 in proptest::bool::ANY,
        ) {
            let alg = if sha512 { Algorithm::Sha512 } else { Algorithm::Sha256 };
            let hex: String = chars.into_iter().collect();
            proptest::prop_assert_eq!(Digest::from_hex(alg, &hex), from_hex_model(alg, &hex));
            let len = alg.hex_len();
            if let Some(prefix) = hex.get(..len.min(hex.len())) {
                proptest::prop_assert_eq!(
                    Digest::from_hex(alg, prefix),
                    from_hex_model(alg, prefix)
                );
            }
        }
    }

    #[test]
    fn decode_hex_prefix_matches_nibbles() {
        for hex in [
            "0",
            "f",
            "a1",
            "abc",
            "0123456789abcdef",
            "g",
            "A",
            "1 2",
            "é",
            "ab:",
        ] {
            let mut got = [0u8; 64];
            let ok = decode_hex_prefix(hex.as_bytes(), &mut got);
            let mut want = [0u8; 64];
            let want_ok = hex.bytes().enumerate().all(|(i, c)| match nibble(c) {
                Some(n) => {
                    want[i / 2] |= if i % 2 == 0 { n << 4 } else { n };
                    true
                }
                None => false,
            });
            assert_eq!(ok, want_ok, "{hex:?}");
            if ok {
                assert_eq!(got, want, "{hex:?}");
            }
        }
        let max = "f".repeat(128);
        let mut out = [0u8; 64];
        assert!(decode_hex_prefix(max.as_bytes(), &mut out));
        assert_eq!(out, [0xff; 64]);
    }

    #[test]
    fn hex_buf_matches_display() {
        for d in [Digest::sha256(b"x"), Digest::sha512(b"x")] {
            let mut buf = [0u8; 128];
            let text = d.to_string();
            let hex = &text[text.len() - d.algorithm().hex_len()..];
            assert_eq!(d.write_hex(&mut buf), hex);
            assert_eq!(d.hex_buf().as_str(), hex);
            assert_eq!(d.hex_buf().to_string(), hex);
            assert_eq!(d.hex(), hex);
        }
    }

    #[test]
    fn sha512_round_trip() {
        let d = Digest::sha512(b"x");
        assert_eq!(d.hex().len(), 128);
        assert_eq!(d.to_string().parse::<Digest>(), Ok(d));
    }

    #[test]
    fn serde_as_string() {
        let d = Digest::sha256(b"foobar");
        let json = serde_json::to_string(&d).expect("serialize");
        assert_eq!(json, format!("\"{d}\""));
        let back: Digest = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, d);
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
    }
}
