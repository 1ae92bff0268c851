//! [`DiffId`], [`ChainId`] and the OCI chain-ID rule.

use std::fmt;

use digest_set::Digest;
use sha2::Digest as _;

/// The digest of a layer's uncompressed tar stream.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DiffId(pub Digest);

/// The identity of a layer together with all its parents: ChainID(L0) = DiffID(L0),
/// ChainID(Ln) = sha256(ChainID(Ln−1) + " " + DiffID(Ln)).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainId(pub Digest);

impl ChainId {
    /// The chain ID of this chain with `diff` on top.
    pub fn then(&self, diff: &DiffId) -> ChainId {
        let mut h = sha2::Sha256::new();
        h.update(self.0.to_string().as_bytes());
        h.update(b" ");
        h.update(diff.0.to_string().as_bytes());
        ChainId(Digest::from_sha256_bytes(h.finalize().into()))
    }

    /// The underlying digest.
    pub fn digest(&self) -> &Digest {
        &self.0
    }
}

impl DiffId {
    /// The underlying digest.
    pub fn digest(&self) -> &Digest {
        &self.0
    }
}

/// The chain ID of a list of diff IDs, bottom layer first; `None` for an empty list.
pub fn chain_id(diffs: &[DiffId]) -> Option<ChainId> {
    let (first, rest) = diffs.split_first()?;
    Some(rest.iter().fold(ChainId(first.0), |chain, d| chain.then(d)))
}

macro_rules! digest_newtype_fmt {
    ($t:ident) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($t), "({})"), self.0)
            }
        }
        impl std::str::FromStr for $t {
            type Err = digest_set::ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($t)
            }
        }
        impl From<Digest> for $t {
            fn from(d: Digest) -> Self {
                $t(d)
            }
        }
    };
}
digest_newtype_fmt!(DiffId);
digest_newtype_fmt!(ChainId);
