//! [`DiffId`], [`ChainId`] and the OCI chain-ID rule.

use std::borrow::Borrow;
use std::fmt;

use digest_set::Digest;

/// The digest of a layer's uncompressed tar stream.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DiffId(pub Digest);

/// The identity of a layer together with all its parents: ChainID(L0) = DiffID(L0),
/// ChainID(Ln) = sha256(ChainID(Ln−1) + " " + DiffID(Ln)).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainId(pub Digest);

impl ChainId {
    /// The chain ID of this chain with `diff` on top:
    /// sha256(`"<this chain ID> <diff ID>"`), computed without allocating.
    pub fn then(&self, diff: &DiffId) -> ChainId {
        // "algorithm:hex algorithm:hex": at most 6 + 1 + 128 characters each, plus the space.
        let mut buf = [0u8; 2 * (6 + 1 + 128) + 1];
        let mut len = put_digest(&mut buf, 0, &self.0);
        buf[len] = b' ';
        len = put_digest(&mut buf, len + 1, &diff.0);
        ChainId(Digest::sha256(&buf[..len]))
    }

    /// The chain ID of a layer with diff ID `diff` on `parent` (its own diff ID for a base
    /// layer): one step of [`chain_ids`].
    pub fn step(parent: Option<&ChainId>, diff: &DiffId) -> ChainId {
        match parent {
            Some(p) => p.then(diff),
            None => ChainId(diff.0),
        }
    }

    /// The underlying digest.
    pub fn digest(&self) -> &Digest {
        &self.0
    }
}

/// Writes `d` as `algorithm:hex` into `buf` at `at`; returns the end.
fn put_digest(buf: &mut [u8], at: usize, d: &Digest) -> usize {
    let name = d.algorithm().name().as_bytes();
    let mut hex = [0u8; 128];
    let hex = d.write_hex(&mut hex).as_bytes();
    let colon = at + name.len();
    let end = colon + 1 + hex.len();
    buf[at..colon].copy_from_slice(name);
    buf[colon] = b':';
    buf[colon + 1..end].copy_from_slice(hex);
    end
}

impl DiffId {
    /// The underlying digest.
    pub fn digest(&self) -> &Digest {
        &self.0
    }
}

/// The chain ID of a list of diff IDs, bottom layer first; `None` for an empty list.
pub fn chain_id(diffs: &[DiffId]) -> Option<ChainId> {
    chain_ids(diffs).last()
}

/// The chain IDs of every layer of a list of diff IDs, bottom layer first: the `n`th item is
/// the chain ID of the first `n + 1` diff IDs. Allocates nothing.
///
/// ```
/// use layer_store::{ChainId, DiffId, chain_id, chain_ids};
/// let diffs = [DiffId(digest_set::Digest::sha256(b"a")), DiffId(digest_set::Digest::sha256(b"b"))];
/// let chains: Vec<ChainId> = chain_ids(&diffs).collect();
/// assert_eq!(chains[0], ChainId(diffs[0].0));
/// assert_eq!(chains[1], chains[0].then(&diffs[1]));
/// assert_eq!(chain_id(&diffs), Some(chains[1]));
/// ```
pub fn chain_ids<I>(diffs: I) -> ChainIds<I::IntoIter>
where
    I: IntoIterator,
    I::Item: Borrow<DiffId>,
{
    ChainIds {
        diffs: diffs.into_iter(),
        last: None,
    }
}

/// The iterator of [`chain_ids`].
#[derive(Debug, Clone)]
pub struct ChainIds<I> {
    diffs: I,
    last: Option<ChainId>,
}

impl<I> Iterator for ChainIds<I>
where
    I: Iterator,
    I::Item: Borrow<DiffId>,
{
    type Item = ChainId;

    fn next(&mut self) -> Option<ChainId> {
        let diff = self.diffs.next()?;
        let chain = ChainId::step(self.last.as_ref(), diff.borrow());
        self.last = Some(chain);
        Some(chain)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.diffs.size_hint()
    }
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
