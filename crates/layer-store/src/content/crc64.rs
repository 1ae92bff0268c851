//! CRC-64/GO-ISO (Go's `crc64.MakeTable(crc64.ISO)`, which tar-split uses for file
//! payloads), folded with carry-less multiplication (PCLMULQDQ) where the CPU has it and
//! table-driven otherwise. Checked against the `crc` crate's implementation (a dev-dependency).
//!
//! Folding: a 16-byte block `X = A·x^64 + B` followed by `D` more bits is congruent, modulo
//! the polynomial, to `A·(x^(D+64) mod P) + B·(x^D mod P)`; in the bit-reflected
//! representation the products come out shifted by one bit, which constants of
//! `x^(e-1) mod P` absorb. The folded 16 bytes and the tail are then run through the table,
//! which gives the same remainder as the whole input.

/// The polynomial, normal form without the `x^64` term: `x^64 + x^4 + x^3 + x + 1`.
const POLY: u64 = 0x1b;
/// The same, bit-reflected (for the table).
const POLY_REFLECTED: u64 = POLY.reverse_bits();

const fn make_table() -> [u64; 256] {
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u64;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ POLY_REFLECTED
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static TABLE: [u64; 256] = make_table();

/// `x^e mod P`, bit-reflected.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const fn key(e: u32) -> u64 {
    let mut r: u64 = 1;
    let mut i = 0;
    while i < e {
        r = if r & (1 << 63) != 0 {
            (r << 1) ^ POLY
        } else {
            r << 1
        };
        i += 1;
    }
    r.reverse_bits()
}

fn update_table(mut crc: u64, data: &[u8]) -> u64 {
    for &b in data {
        crc = TABLE[((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// A running CRC-64/GO-ISO.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Crc64 {
    state: u64,
}

impl Crc64 {
    pub(crate) fn new() -> Self {
        Crc64 { state: !0 }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        #[cfg(target_arch = "x86_64")]
        {
            if data.len() >= 128
                && std::arch::is_x86_feature_detected!("pclmulqdq")
                && std::arch::is_x86_feature_detected!("sse4.1")
            {
                // SAFETY: the CPU has the features the function is compiled for.
                #[allow(unsafe_code)]
                let state = unsafe { clmul::update(self.state, data) };
                self.state = state;
                return;
            }
        }
        self.state = update_table(self.state, data);
    }

    pub(crate) fn finalize(self) -> u64 {
        !self.state
    }
}

// Only the unaligned load and store below (and the call of `update` above) need `unsafe`.
#[cfg(target_arch = "x86_64")]
mod clmul {
    use std::arch::x86_64::{
        __m128i, _mm_clmulepi64_si128, _mm_cvtsi64_si128, _mm_loadu_si128, _mm_storeu_si128,
        _mm_xor_si128,
    };

    use super::{key, update_table};

    // Folding distances: 64 bytes (4 lanes), then 48, 32 and 16 bytes to merge the lanes.
    const K512: (u64, u64) = (key(575), key(511));
    const K384: (u64, u64) = (key(447), key(383));
    const K256: (u64, u64) = (key(319), key(255));
    const K128: (u64, u64) = (key(191), key(127));

    #[target_feature(enable = "pclmulqdq,sse2,sse4.1")]
    fn fold(x: __m128i, k: __m128i) -> __m128i {
        // low 64 bits of x (the earlier bytes) times k.low, high times k.high.
        _mm_xor_si128(
            _mm_clmulepi64_si128::<0x00>(x, k),
            _mm_clmulepi64_si128::<0x11>(x, k),
        )
    }

    #[target_feature(enable = "pclmulqdq,sse2,sse4.1")]
    fn keys(k: (u64, u64)) -> __m128i {
        let lo = _mm_cvtsi64_si128(k.0 as i64);
        let hi = _mm_cvtsi64_si128(k.1 as i64);
        std::arch::x86_64::_mm_unpacklo_epi64(lo, hi)
    }

    #[allow(unsafe_code)]
    #[target_feature(enable = "pclmulqdq,sse2,sse4.1")]
    fn load(b: &[u8]) -> __m128i {
        debug_assert!(b.len() >= 16);
        // SAFETY: `b` has at least 16 bytes; unaligned load.
        unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
    }

    /// Updates the (non-inverted) register `crc` with `data` (at least 128 bytes).
    #[target_feature(enable = "pclmulqdq,sse2,sse4.1")]
    pub(super) fn update(crc: u64, data: &[u8]) -> u64 {
        let mut lanes = [
            load(&data[0..]),
            load(&data[16..]),
            load(&data[32..]),
            load(&data[48..]),
        ];
        lanes[0] = _mm_xor_si128(lanes[0], _mm_cvtsi64_si128(crc as i64));
        let k512 = keys(K512);
        let mut rest = &data[64..];
        while rest.len() >= 64 {
            for (i, lane) in lanes.iter_mut().enumerate() {
                *lane = _mm_xor_si128(fold(*lane, k512), load(&rest[16 * i..]));
            }
            rest = &rest[64..];
        }
        let mut x = _mm_xor_si128(fold(lanes[0], keys(K384)), fold(lanes[1], keys(K256)));
        x = _mm_xor_si128(x, fold(lanes[2], keys(K128)));
        x = _mm_xor_si128(x, lanes[3]);
        let k128 = keys(K128);
        while rest.len() >= 16 {
            x = _mm_xor_si128(fold(x, k128), load(rest));
            rest = &rest[16..];
        }
        let mut block = [0u8; 16];
        // SAFETY: `block` has 16 bytes; unaligned store.
        #[allow(unsafe_code)]
        unsafe {
            _mm_storeu_si128(block.as_mut_ptr().cast(), x)
        };
        update_table(update_table(0, &block), rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_crc_crate() {
        let reference = crate::tarsplit::CRC64_ISO;
        let mut data = vec![0u8; 5000];
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for b in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        for len in (0..300).chain([511, 512, 513, 1000, 4096, 4999, 5000]) {
            let d = &data[..len];
            let mut c = Crc64::new();
            c.update(d);
            assert_eq!(c.finalize(), reference.checksum(d), "len {len}");
            // Split updates.
            for split in [1, 17, 64, 129, 200] {
                if split < len {
                    let mut c = Crc64::new();
                    c.update(&d[..split]);
                    c.update(&d[split..]);
                    assert_eq!(
                        c.finalize(),
                        reference.checksum(d),
                        "len {len} split {split}"
                    );
                }
            }
        }
        assert_eq!(
            {
                let mut c = Crc64::new();
                c.update(b"123456789");
                c.finalize()
            },
            0xb909_56c7_75a4_1001
        );
    }
}
