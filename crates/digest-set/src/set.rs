//! [`DigestSet`]: a sorted set of digests with prefix lookup.

use std::collections::BTreeMap;

use crate::digest::{Algorithm, Digest, nibble};

/// How many candidates a [`LookupError::Ambiguous`] carries at most.
pub const MAX_CANDIDATES: usize = 5;

/// Why [`DigestSet::lookup`] found no single digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No digest matches the term.
    #[error("no digest matches {term:?}")]
    NotFound {
        /// The term looked up.
        term: String,
    },
    /// Two or more digests match the term.
    #[error("{term:?} is ambiguous: it matches {count} digests, e.g. {}", display_candidates(.candidates))]
    Ambiguous {
        /// The term looked up.
        term: String,
        /// How many digests match.
        count: usize,
        /// The first few matches (at most [`MAX_CANDIDATES`]), in sorted order.
        candidates: Vec<Digest>,
    },
    /// The term cannot name a digest at all.
    #[error("invalid digest or prefix {term:?}: {reason}")]
    InvalidTerm {
        /// The term looked up.
        term: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

fn display_candidates(candidates: &[Digest]) -> String {
    candidates
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A parsed lookup term: optional algorithm plus a hex prefix in nibbles.
struct Term {
    algorithm: Option<Algorithm>,
    /// The prefix as bytes; an odd trailing nibble sits in the high half of the last byte.
    bytes: [u8; 64],
    nibbles: usize,
}

impl Term {
    fn parse(term: &str) -> Result<Self, LookupError> {
        let invalid = |reason| LookupError::InvalidTerm {
            term: term.to_owned(),
            reason,
        };
        let (algorithm, hex) = match term.split_once(':') {
            Some((alg, hex)) => {
                let alg = Algorithm::from_name(alg)
                    .ok_or_else(|| invalid("unsupported algorithm (expected sha256 or sha512)"))?;
                (Some(alg), hex)
            }
            None => (None, term),
        };
        if hex.is_empty() {
            return Err(invalid("empty hex prefix"));
        }
        let max = algorithm.unwrap_or(Algorithm::Sha512).hex_len();
        if hex.len() > max {
            return Err(invalid("longer than a digest"));
        }
        let mut bytes = [0u8; 64];
        for (i, c) in hex.bytes().enumerate() {
            let n = nibble(c).ok_or_else(|| invalid("not lowercase hex"))?;
            bytes[i / 2] |= if i % 2 == 0 { n << 4 } else { n };
        }
        Ok(Term {
            algorithm,
            bytes,
            nibbles: hex.len(),
        })
    }

    /// Whether `d`'s hex starts with this prefix (ignoring the algorithm).
    fn is_prefix_of(&self, d: &Digest) -> bool {
        let raw = d.as_bytes();
        if self.nibbles > raw.len() * 2 {
            return false;
        }
        let whole = self.nibbles / 2;
        if raw[..whole] != self.bytes[..whole] {
            return false;
        }
        self.nibbles.is_multiple_of(2) || (raw[whole] & 0xf0) == self.bytes[whole]
    }

    fn matches(&self, d: &Digest) -> bool {
        self.algorithm.is_none_or(|a| a == d.algorithm()) && self.is_prefix_of(d)
    }

    /// Whether `d` is exactly the digest this term spells out.
    fn is_exact(&self, d: &Digest) -> bool {
        self.nibbles == d.algorithm().hex_len() && self.matches(d)
    }

    /// The smallest byte string with this prefix.
    fn lower_bound(&self) -> &[u8] {
        &self.bytes[..self.nibbles.div_ceil(2)]
    }
}

/// A set of digests kept in sorted order, searchable by hex prefix.
///
/// This is the set Docker's image store uses to resolve short image IDs (digestset), with two
/// differences: bulk loading ([`FromIterator`], [`Extend`]) sorts once instead of shifting the
/// array for every element, and malformed terms are errors instead of accidents.
///
/// The set does no locking and no I/O; callers wrap it in their own lock.
///
/// ```
/// use digest_set::{Digest, DigestSet, LookupError};
///
/// let a = Digest::sha256(b"a");
/// let b = Digest::sha256(b"b");
/// let set: DigestSet = [a, b].into_iter().collect();
/// assert_eq!(set.lookup(&a.short()), Ok(a));
/// assert_eq!(set.lookup(&a.to_string()), Ok(a));
/// assert!(matches!(set.lookup("0000"), Err(LookupError::NotFound { .. })));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestSet {
    entries: Vec<Digest>,
}

impl DigestSet {
    /// An empty set.
    pub fn new() -> Self {
        DigestSet {
            entries: Vec::new(),
        }
    }

    /// An empty set with room for `capacity` digests, so that adding that many (with
    /// [`insert`](Self::insert) or [`Extend`]) does not reallocate.
    pub fn with_capacity(capacity: usize) -> Self {
        DigestSet {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// Reserves room for at least `additional` more digests.
    pub fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
    }

    /// Adds `d`; returns `false` if it was already present.
    pub fn insert(&mut self, d: Digest) -> bool {
        match self.entries.binary_search(&d) {
            Ok(_) => false,
            Err(at) => {
                self.entries.insert(at, d);
                true
            }
        }
    }

    /// Removes `d`; returns `false` if it was absent.
    pub fn remove(&mut self, d: &Digest) -> bool {
        match self.entries.binary_search(d) {
            Ok(at) => {
                self.entries.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether `d` is in the set.
    pub fn contains(&self, d: &Digest) -> bool {
        self.entries.binary_search(d).is_ok()
    }

    /// The number of digests.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The digests in sorted order (by hex, then algorithm).
    pub fn iter(&self) -> std::slice::Iter<'_, Digest> {
        self.entries.iter()
    }

    /// Finds the one digest a term names.
    ///
    /// The term is a full digest (`sha256:<hex>`), `algorithm:<hex prefix>`, or a bare hex
    /// prefix. An exact match wins; otherwise the single digest with that prefix is returned.
    /// Two or more give [`LookupError::Ambiguous`], none gives [`LookupError::NotFound`], and an
    /// empty term, an unknown algorithm or a character that is not lowercase hex give
    /// [`LookupError::InvalidTerm`].
    pub fn lookup(&self, term: &str) -> Result<Digest, LookupError> {
        let parsed = Term::parse(term)?;
        let start = self
            .entries
            .partition_point(|d| d.as_bytes() < parsed.lower_bound());
        let run = self.entries[start..]
            .iter()
            .take_while(|d| parsed.is_prefix_of(d))
            .filter(|d| parsed.matches(d));
        let mut first = None;
        let mut count = 0;
        let mut candidates = Vec::new();
        for d in run {
            if parsed.is_exact(d) {
                return Ok(*d);
            }
            if first.is_none() {
                first = Some(*d);
            }
            count += 1;
            if candidates.len() < MAX_CANDIDATES {
                candidates.push(*d);
            }
        }
        match (count, first) {
            (1, Some(d)) => Ok(d),
            (0, _) | (_, None) => Err(LookupError::NotFound {
                term: term.to_owned(),
            }),
            _ => Err(LookupError::Ambiguous {
                term: term.to_owned(),
                count,
                candidates,
            }),
        }
    }

    /// For each digest, its shortest unique hex prefix of at least `min_len` characters
    /// (digestset's `ShortCodeTable`). Algorithms are ignored when comparing; a digest whose
    /// whole hex is shared with another algorithm's digest gets its full `algorithm:hex` form.
    pub fn short_codes(&self, min_len: usize) -> BTreeMap<Digest, String> {
        let mut out = BTreeMap::new();
        for (i, d) in self.entries.iter().enumerate() {
            let prev = i
                .checked_sub(1)
                .map(|j| common_nibbles(&self.entries[j], d));
            let next = self.entries.get(i + 1).map(|n| common_nibbles(d, n));
            let shared = prev.unwrap_or(0).max(next.unwrap_or(0));
            let hex = d.hex();
            let code = if shared >= hex.len() {
                d.to_string()
            } else {
                let len = (shared + 1).max(min_len).min(hex.len());
                hex[..len].to_owned()
            };
            out.insert(*d, code);
        }
        out
    }
}

/// The number of leading hex characters two digests share.
fn common_nibbles(a: &Digest, b: &Digest) -> usize {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    for (i, (p, q)) in x.iter().zip(y).enumerate() {
        if p != q {
            return 2 * i + usize::from((p ^ q) & 0xf0 == 0);
        }
    }
    2 * x.len().min(y.len())
}

impl FromIterator<Digest> for DigestSet {
    /// Collects, sorts once and removes duplicates. The digests are gathered with one
    /// allocation when the iterator knows its length (its `size_hint` is exact), and in place,
    /// with no allocation at all, from a `Vec<Digest>`'s `into_iter()`. If duplicates were
    /// dropped or the length was not known in advance, the storage is shrunk to fit.
    fn from_iter<I: IntoIterator<Item = Digest>>(iter: I) -> Self {
        DigestSet::from(iter.into_iter().collect::<Vec<Digest>>())
    }
}

impl From<Vec<Digest>> for DigestSet {
    /// Sorts `digests` in place and removes duplicates, keeping its allocation (shrunk if
    /// larger than needed).
    fn from(mut digests: Vec<Digest>) -> Self {
        digests.sort_unstable();
        digests.dedup();
        digests.shrink_to_fit();
        DigestSet { entries: digests }
    }
}

impl Extend<Digest> for DigestSet {
    /// Appends, then sorts once and removes duplicates. When the iterator knows its length
    /// the set grows by exactly that much (one allocation at most).
    fn extend<I: IntoIterator<Item = Digest>>(&mut self, iter: I) {
        let iter = iter.into_iter();
        let before = self.entries.len();
        self.entries.reserve_exact(iter.size_hint().0);
        self.entries.extend(iter);
        if self.entries.len() != before {
            // Sorting a mostly sorted vector is close to linear.
            self.entries.sort_unstable();
            self.entries.dedup();
        }
    }
}

impl<'a> IntoIterator for &'a DigestSet {
    type Item = &'a Digest;
    type IntoIter = std::slice::Iter<'a, Digest>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests(n: u64) -> Vec<Digest> {
        (0..n).map(|i| Digest::sha256(&i.to_le_bytes())).collect()
    }

    #[test]
    fn collect_allocates_exactly() {
        let ds = digests(1000);
        // Exact size hint: one allocation of the right size.
        let set: DigestSet = ds.iter().copied().collect();
        assert_eq!(set.entries.capacity(), 1000);
        // From a Vec: sorted in place, the buffer is reused.
        let v = ds.clone();
        let ptr = v.as_ptr();
        let set2: DigestSet = v.into_iter().collect();
        assert_eq!(set2.entries.as_ptr(), ptr);
        assert_eq!(set2.entries.capacity(), 1000);
        assert_eq!(set, set2);
        // Unknown length (filter) and duplicates: shrunk to fit.
        let set3: DigestSet = ds
            .iter()
            .chain(ds.iter())
            .copied()
            .filter(|d| d.as_bytes()[0] != 0)
            .collect();
        assert_eq!(set3.entries.capacity(), set3.len());
        assert!(set3.entries.windows(2).all(|w| w[0] < w[1]));
        let mut set4 = DigestSet::with_capacity(1000);
        set4.extend(ds.iter().copied());
        assert_eq!(set4.entries.capacity(), 1000);
        assert_eq!(set4, set);
        // Extending a non-empty set by a known length grows it exactly.
        let mut set5: DigestSet = ds[..600].iter().copied().collect();
        set5.extend(ds[600..].iter().copied());
        assert_eq!(set5.entries.capacity(), 1000);
        assert_eq!(set5, set);
    }
}
