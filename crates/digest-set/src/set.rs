//! [`DigestSet`]: a sorted set of digests with prefix lookup.

use std::collections::{BTreeMap, BTreeSet, btree_set};
use std::fmt;
use std::iter::FusedIterator;

use crate::buckets::{self, Buckets, Key};
use crate::digest::{Algorithm, Digest, decode_hex_prefix};

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
    /// The first 8 bytes of `bytes` as a big-endian integer.
    head: u64,
    /// The bits of `head` that the prefix fixes.
    head_mask: u64,
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
        if !decode_hex_prefix(hex.as_bytes(), &mut bytes) {
            return Err(invalid("not lowercase hex"));
        }
        let nibbles = hex.len();
        let head_mask = u64::MAX
            .checked_shr(4 * nibbles as u32)
            .map_or(u64::MAX, |unfixed| !unfixed);
        let [a, b, c, d, e, f, g, h, ..] = bytes;
        Ok(Term {
            algorithm,
            bytes,
            nibbles,
            head: u64::from_be_bytes([a, b, c, d, e, f, g, h]),
            head_mask,
        })
    }

    /// Whether the sha256 key `key` starts with this prefix: its first 8 bytes are compared as
    /// one integer, the rest only for a term of more than 16 characters.
    fn is_prefix_of_key(&self, key: &Key) -> bool {
        (buckets::head(key) ^ self.head) & self.head_mask == 0
            && (self.nibbles <= 16 || self.is_prefix_of(key))
    }

    /// Whether the raw hash `raw` starts with this prefix (ignoring the algorithm).
    fn is_prefix_of(&self, raw: &[u8]) -> bool {
        if self.nibbles > raw.len() * 2 {
            return false;
        }
        let whole = self.nibbles / 2;
        if raw[..whole] != self.bytes[..whole] {
            return false;
        }
        self.nibbles.is_multiple_of(2) || (raw[whole] & 0xf0) == self.bytes[whole]
    }

    /// Whether the term can name a sha256 digest.
    fn wants_sha256(&self) -> bool {
        self.algorithm != Some(Algorithm::Sha512) && self.nibbles <= Algorithm::Sha256.hex_len()
    }

    /// Whether the term can name a sha512 digest.
    fn wants_sha512(&self) -> bool {
        self.algorithm != Some(Algorithm::Sha256)
    }

    /// The smallest sha256 key with this prefix.
    fn sha256_floor(&self) -> Key {
        let mut key = [0u8; 32];
        key.copy_from_slice(&self.bytes[..32]);
        key
    }
}

/// A set of digests kept in sorted order, searchable by hex prefix.
///
/// This is the set Docker's image store uses to resolve short image IDs (digestset), with
/// three differences: inserting and removing shift one small bucket instead of the whole set,
/// bulk loading ([`FromIterator`], [`Extend`]) sorts once, and malformed terms are errors
/// instead of accidents.
///
/// Inside, a sha256 digest takes its 32 raw bytes and little more (about 35 bytes asked of
/// the allocator at 100k digests): the keys sit in sorted buckets picked by their leading
/// bits, 32 to 64 to a bucket on average, so an insert shifts under a kilobyte on average and
/// a lookup by a 12-character short ID reads one or two cache lines of keys. sha512 digests, which are rare, sit beside them in
/// their own sorted tree. Digests crafted to share their leading bits share a bucket: they
/// stay correct and searchable in logarithmic time, but inserting among them shifts that
/// bucket, as a plain sorted array would.
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
/// let mut sorted = vec![a, b];
/// sorted.sort();
/// assert_eq!(set.iter().collect::<Vec<Digest>>(), sorted);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DigestSet {
    /// The sha256 digests' raw bytes.
    sha256: Buckets,
    /// The sha512 digests' raw bytes.
    sha512: BTreeSet<[u8; 64]>,
}

impl DigestSet {
    /// An empty set. It allocates nothing until the first digest is added.
    pub fn new() -> Self {
        DigestSet::default()
    }

    /// An empty set sized for `capacity` digests: adding that many (with
    /// [`insert`](Self::insert) or [`Extend`]) never redistributes the set, only grows its
    /// buckets a few keys at a time.
    pub fn with_capacity(capacity: usize) -> Self {
        DigestSet {
            sha256: Buckets::with_capacity(capacity),
            sha512: BTreeSet::new(),
        }
    }

    /// Sizes the set for at least `additional` more digests (see
    /// [`with_capacity`](Self::with_capacity)).
    pub fn reserve(&mut self, additional: usize) {
        self.sha256.reserve(additional);
    }

    /// Adds `d`; returns `false` if it was already present.
    pub fn insert(&mut self, d: Digest) -> bool {
        match d.sha256_bytes() {
            Some(key) => self.sha256.insert(key),
            None => self.sha512.insert(*d.raw_buffer()),
        }
    }

    /// Removes `d`; returns `false` if it was absent.
    pub fn remove(&mut self, d: &Digest) -> bool {
        match d.sha256_bytes() {
            Some(key) => self.sha256.remove(&key),
            None => self.sha512.remove(d.raw_buffer()),
        }
    }

    /// Whether `d` is in the set.
    pub fn contains(&self, d: &Digest) -> bool {
        match d.sha256_bytes() {
            Some(key) => self.sha256.contains(&key),
            None => self.sha512.contains(d.raw_buffer()),
        }
    }

    /// The number of digests.
    pub fn len(&self) -> usize {
        self.sha256.len() + self.sha512.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The digests in sorted order (by hex, then algorithm).
    ///
    /// The set keeps raw hash bytes, not [`Digest`] values, so the iterator yields digests by
    /// value.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            sha256: Ends::new(self.sha256.iter()),
            sha512: Ends::new(self.sha512.iter()),
            remaining: self.len(),
        }
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
        let is_match = |raw: &[u8]| parsed.is_prefix_of(raw);

        let (count256, from256) = if parsed.wants_sha256() {
            let from = self.sha256.lower_bound(&parsed.sha256_floor());
            (
                self.sha256.count_run(from, |k| parsed.is_prefix_of_key(k)),
                Some(from),
            )
        } else {
            (0, None)
        };
        let first256 = from256.and_then(|from| self.sha256.keys_from(from).next());
        if let Some(key) = first256
            && count256 > 0
            && parsed.nibbles == Algorithm::Sha256.hex_len()
        {
            // The whole hex of a sha256 digest: an exact match, whatever sha512 digests
            // start with it.
            return Ok(Digest::from_sha256_bytes(*key));
        }

        let run512 = || {
            self.sha512
                .range(parsed.bytes..)
                .take_while(|raw| is_match(&raw[..]))
        };
        let count512 = if parsed.wants_sha512() && !self.sha512.is_empty() {
            run512().count()
        } else {
            0
        };

        match (count256, count512) {
            (0, 0) => Err(LookupError::NotFound {
                term: term.to_owned(),
            }),
            (1, 0) => match first256 {
                Some(key) => Ok(Digest::from_sha256_bytes(*key)),
                None => Err(LookupError::NotFound {
                    term: term.to_owned(),
                }),
            },
            (0, 1) => match run512().next() {
                Some(raw) => Ok(Digest::from_sha512_bytes(*raw)),
                None => Err(LookupError::NotFound {
                    term: term.to_owned(),
                }),
            },
            _ => {
                let mut candidates: Vec<Digest> = Vec::with_capacity(2 * MAX_CANDIDATES);
                if let Some(from) = from256 {
                    candidates.extend(
                        self.sha256
                            .keys_from(from)
                            .take(count256.min(MAX_CANDIDATES))
                            .map(|k| Digest::from_sha256_bytes(*k)),
                    );
                }
                if count512 > 0 {
                    candidates.extend(
                        run512()
                            .take(MAX_CANDIDATES)
                            .map(|raw| Digest::from_sha512_bytes(*raw)),
                    );
                }
                candidates.sort_unstable();
                candidates.truncate(MAX_CANDIDATES);
                Err(LookupError::Ambiguous {
                    term: term.to_owned(),
                    count: count256 + count512,
                    candidates,
                })
            }
        }
    }

    /// For each digest, its shortest unique hex prefix of at least `min_len` characters
    /// (digestset's `ShortCodeTable`). Algorithms are ignored when comparing; a digest whose
    /// whole hex is shared with another algorithm's digest gets its full `algorithm:hex` form.
    pub fn short_codes(&self, min_len: usize) -> BTreeMap<Digest, String> {
        let mut out = BTreeMap::new();
        let mut digests = self.iter();
        let mut prev: Option<Digest> = None;
        let mut current = digests.next();
        while let Some(d) = current {
            let next = digests.next();
            let shared = prev
                .map_or(0, |p| common_nibbles(&p, &d))
                .max(next.map_or(0, |n| common_nibbles(&d, &n)));
            let hex = d.hex();
            let code = if shared >= hex.len() {
                d.to_string()
            } else {
                let len = (shared + 1).max(min_len).min(hex.len());
                hex[..len].to_owned()
            };
            out.insert(d, code);
            prev = Some(d);
            current = next;
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

impl fmt::Debug for DigestSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<Digest> for DigestSet {
    /// Collects, sorts once and removes duplicates (see [`Extend`]).
    fn from_iter<I: IntoIterator<Item = Digest>>(iter: I) -> Self {
        let mut set = DigestSet::new();
        set.extend(iter);
        set
    }
}

impl From<Vec<Digest>> for DigestSet {
    /// Builds the set from `digests`, duplicates removed, with one sort.
    fn from(digests: Vec<Digest>) -> Self {
        digests.into_iter().collect()
    }
}

impl Extend<Digest> for DigestSet {
    /// Gathers the sha256 digests' raw bytes, sorts them once and merges them into the set:
    /// the set is resized at most once, and each bucket that gets new digests is rebuilt
    /// once, at its exact size. sha512 digests go into their tree one by one.
    fn extend<I: IntoIterator<Item = Digest>>(&mut self, iter: I) {
        let iter = iter.into_iter();
        let mut keys: Vec<Key> = Vec::with_capacity(iter.size_hint().0);
        for d in iter {
            match d.sha256_bytes() {
                Some(key) => keys.push(key),
                None => {
                    self.sha512.insert(*d.raw_buffer());
                }
            }
        }
        keys.sort_unstable_by(buckets::cmp_keys);
        keys.dedup();
        self.sha256.extend_sorted(&keys);
    }
}

impl<'a> IntoIterator for &'a DigestSet {
    type Item = Digest;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// An iterator with a one-item lookahead at each end, for merging from either side.
#[derive(Clone)]
struct Ends<'a, T, I> {
    inner: I,
    front: Option<&'a T>,
    back: Option<&'a T>,
}

impl<'a, T, I: DoubleEndedIterator<Item = &'a T>> Ends<'a, T, I> {
    fn new(inner: I) -> Self {
        Ends {
            inner,
            front: None,
            back: None,
        }
    }

    fn peek_front(&mut self) -> Option<&'a T> {
        if self.front.is_none() {
            self.front = self.inner.next().or_else(|| self.back.take());
        }
        self.front
    }

    fn peek_back(&mut self) -> Option<&'a T> {
        if self.back.is_none() {
            self.back = self.inner.next_back().or_else(|| self.front.take());
        }
        self.back
    }
}

/// The digests of a [`DigestSet`] in sorted order (by hex, then algorithm), by value:
/// [`DigestSet::iter`].
#[derive(Clone)]
pub struct Iter<'a> {
    sha256: Ends<'a, Key, std::iter::Flatten<std::slice::Iter<'a, Vec<Key>>>>,
    sha512: Ends<'a, [u8; 64], btree_set::Iter<'a, [u8; 64]>>,
    remaining: usize,
}

impl Iter<'_> {
    /// The iterator itself: it already yields digests by value. Kept so that code written when
    /// [`DigestSet::iter`] yielded `&Digest` (`set.iter().copied()`) compiles unchanged.
    pub fn copied(self) -> Self {
        self
    }

    /// The iterator itself, like [`copied`](Self::copied).
    pub fn cloned(self) -> Self {
        self
    }
}

impl Iterator for Iter<'_> {
    type Item = Digest;

    fn next(&mut self) -> Option<Digest> {
        if self.remaining == 0 {
            return None;
        }
        let take_sha256 = match (self.sha256.peek_front(), self.sha512.peek_front()) {
            (Some(a), Some(b)) => a[..] < b[..],
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        self.remaining -= 1;
        if take_sha256 {
            self.sha256
                .front
                .take()
                .map(|k| Digest::from_sha256_bytes(*k))
        } else {
            self.sha512
                .front
                .take()
                .map(|k| Digest::from_sha512_bytes(*k))
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Digest> {
        if self.remaining == 0 {
            return None;
        }
        let take_sha256 = match (self.sha256.peek_back(), self.sha512.peek_back()) {
            (Some(a), Some(b)) => a[..] > b[..],
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        self.remaining -= 1;
        if take_sha256 {
            self.sha256
                .back
                .take()
                .map(|k| Digest::from_sha256_bytes(*k))
        } else {
            self.sha512
                .back
                .take()
                .map(|k| Digest::from_sha512_bytes(*k))
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl FusedIterator for Iter<'_> {}

impl fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests(n: u64) -> Vec<Digest> {
        (0..n).map(|i| Digest::sha256(&i.to_le_bytes())).collect()
    }

    fn mixed(n: u64) -> Vec<Digest> {
        (0..n)
            .map(|i| {
                if i % 5 == 0 {
                    Digest::sha512(&i.to_le_bytes())
                } else {
                    Digest::sha256(&i.to_le_bytes())
                }
            })
            .collect()
    }

    #[test]
    fn iter_is_sorted_from_both_ends_and_exact_size() {
        let ds = mixed(1000);
        let set: DigestSet = ds.iter().copied().collect();
        let mut sorted = ds.clone();
        sorted.sort();
        assert_eq!(set.iter().len(), 1000);
        assert_eq!(set.iter().collect::<Vec<_>>(), sorted);
        let mut backwards: Vec<Digest> = set.iter().rev().collect();
        backwards.reverse();
        assert_eq!(backwards, sorted);
        // Alternating ends meet in the middle without losing or repeating a digest.
        let mut it = set.iter();
        let (mut front, mut back) = (Vec::new(), Vec::new());
        while let Some(d) = it.next() {
            front.push(d);
            assert_eq!(it.len(), 1000 - front.len() - back.len());
            match it.next_back() {
                Some(d) => back.push(d),
                None => break,
            }
        }
        assert_eq!(it.next(), None);
        back.reverse();
        front.extend(back);
        assert_eq!(front, sorted);
        assert_eq!((&set).into_iter().count(), 1000);
    }

    #[test]
    fn bulk_and_one_by_one_agree() {
        let ds = mixed(3000);
        let bulk: DigestSet = ds.iter().rev().copied().collect();
        let mut one = DigestSet::new();
        for d in &ds {
            assert!(one.insert(*d));
        }
        assert_eq!(bulk, one);
        assert_eq!(DigestSet::from(ds.clone()), one);
        let mut extended: DigestSet = ds[..1000].iter().copied().collect();
        extended.extend(ds[500..].iter().copied());
        assert_eq!(extended, one);
        assert_eq!(extended.len(), 3000);
        let mut sized = DigestSet::with_capacity(3000);
        sized.extend(ds.iter().copied());
        assert_eq!(sized, one);
    }

    #[test]
    fn lookup_at_every_prefix_length_of_many_digests() {
        let ds = digests(20_000);
        let set: DigestSet = ds.iter().copied().collect();
        for d in ds.iter().step_by(97) {
            assert_eq!(set.lookup(&d.short()), Ok(*d));
            assert_eq!(set.lookup(&d.to_string()), Ok(*d));
        }
        // A 1-character prefix matches about a sixteenth of the set, over many buckets.
        let want = ds.iter().filter(|d| d.hex().starts_with('a')).count();
        match set.lookup("a") {
            Err(LookupError::Ambiguous {
                count, candidates, ..
            }) => {
                assert_eq!(count, want);
                let mut first: Vec<Digest> = ds
                    .iter()
                    .filter(|d| d.hex().starts_with('a'))
                    .copied()
                    .collect();
                first.sort();
                first.truncate(MAX_CANDIDATES);
                assert_eq!(candidates, first);
            }
            other => panic!("expected ambiguous, got {other:?}"),
        }
    }

    #[test]
    fn debug_lists_the_digests() {
        let d = Digest::sha256(b"x");
        let set: DigestSet = [d].into_iter().collect();
        assert_eq!(format!("{set:?}"), format!("{{{d:?}}}"));
        assert_eq!(format!("{:?}", set.iter()), format!("[{d:?}]"));
    }
}
