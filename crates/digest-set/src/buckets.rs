//! The sha256 part of a [`DigestSet`](crate::DigestSet): 32-byte keys in sorted buckets.
//!
//! Keys are spread over `2^bits` buckets by their leading `bits` bits, and each bucket is a
//! sorted `Vec<[u8; 32]>`. Bucket `i` holds exactly the keys whose leading bits spell `i`, so
//! walking the buckets in order walks every key in order, and a prefix's matches are one run
//! that may span neighbouring buckets.
//!
//! The directory doubles (every bucket splits in two) when the average bucket would pass
//! [`MAX_AVERAGE`] keys, so for sha256 digests, which are uniform, a bucket holds 32 to 64
//! keys on average: inserting shifts about a kilobyte at most. A bucket's allocation grows
//! [`GROWTH`] keys at a time, which keeps the slack at a few bytes per key (a `Vec`'s
//! doubling would waste a quarter on average).
//!
//! Inside a bucket a key's place is first guessed from the bits that follow the bucket's (they
//! are uniform too), then found by galloping from the guess: one or two cache lines for a hash.
//! Digests crafted to share their leading bits all land in one bucket; the search stays
//! logarithmic, and inserting there costs a shift of that bucket, as a plain sorted array would.

use std::cmp::Ordering;

/// The raw bytes of a sha256 digest.
pub(crate) type Key = [u8; 32];

/// The directory doubles when the average bucket would hold more keys than this.
const MAX_AVERAGE: usize = 64;

/// A full bucket grows its allocation by this many keys.
const GROWTH: usize = 8;

/// Sorted 32-byte keys in buckets by their leading bits.
#[derive(Clone, Default)]
pub(crate) struct Buckets {
    /// Empty (nothing allocated yet), or `1 << bits` sorted buckets.
    buckets: Vec<Vec<Key>>,
    /// How many leading bits pick a key's bucket.
    bits: u32,
    /// The number of keys.
    len: usize,
}

/// A place between two keys: before `buckets[bucket][index]` (which may be one past the end).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pos {
    bucket: usize,
    index: usize,
}

/// The first 8 bytes of a key, big-endian: its leading bits.
pub(crate) fn head(key: &Key) -> u64 {
    let [a, b, c, d, e, f, g, h, ..] = *key;
    u64::from_be_bytes([a, b, c, d, e, f, g, h])
}

/// Key order (byte order), deciding on the first 8 bytes as one integer where it can.
pub(crate) fn cmp_keys(a: &Key, b: &Key) -> Ordering {
    head(a).cmp(&head(b)).then_with(|| a[8..].cmp(&b[8..]))
}

/// Whether `a` sorts before `b` ([`cmp_keys`]).
fn less(a: &Key, b: &Key) -> bool {
    cmp_keys(a, b) == Ordering::Less
}

/// How many bits the directory needs for `n` keys at most [`MAX_AVERAGE`] per bucket.
fn bits_for(n: usize) -> u32 {
    n.div_ceil(MAX_AVERAGE).next_power_of_two().trailing_zeros()
}

/// The number of leading elements of `v` that satisfy `pred`, which holds for a prefix of `v`
/// only. Gallops from the front: `O(log k)` probes for an answer `k`, so a run of one or two
/// costs two probes instead of a binary search of the whole slice.
fn gallop(v: &[Key], pred: impl Fn(&Key) -> bool) -> usize {
    let mut lo = 0;
    let mut step = 1;
    // Invariant: every element of v[..lo] satisfies pred.
    loop {
        let probe = lo + step - 1;
        let Some(k) = v.get(probe) else {
            return lo + v[lo..].partition_point(&pred);
        };
        if !pred(k) {
            return lo + v[lo..probe].partition_point(&pred);
        }
        lo = probe + 1;
        step *= 2;
    }
}

/// The index of the first key in sorted `v` that is not less than `key`, searched from
/// `guess` outwards.
fn lower_bound(v: &[Key], key: &Key, guess: usize) -> usize {
    let Some(last) = v.len().checked_sub(1) else {
        return 0;
    };
    let g = guess.min(last);
    if less(&v[g], key) {
        g + 1 + gallop(&v[g + 1..], |k| less(k, key))
    } else {
        // Gallop leftwards. Invariant: v[hi] >= key.
        let mut hi = g;
        let mut step = 1;
        loop {
            let Some(probe) = hi.checked_sub(step) else {
                return v[..hi].partition_point(|k| less(k, key));
            };
            if less(&v[probe], key) {
                return probe + 1 + v[probe + 1..hi].partition_point(|k| less(k, key));
            }
            hi = probe;
            step *= 2;
        }
    }
}

impl Buckets {
    /// An empty set whose directory is sized for `capacity` keys (nothing allocated for 0).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let mut b = Buckets::default();
        b.reserve(capacity);
        b
    }

    /// Sizes the directory for `additional` more keys.
    pub(crate) fn reserve(&mut self, additional: usize) {
        if additional > 0 {
            self.grow_to(bits_for(self.len.saturating_add(additional)));
        }
    }

    /// The number of keys.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bucket of `key`.
    fn bucket_of(&self, key: &Key) -> usize {
        // `bits` stays far below 64 (2^bits buckets hold at least 32 keys each on average).
        head(key).checked_shr(64 - self.bits).unwrap_or(0) as usize
    }

    /// Where `key` probably sits in its bucket of `len` keys, from the bits after the
    /// bucket's.
    fn guess(&self, key: &Key, len: usize) -> usize {
        let fraction = head(key).checked_shl(self.bits).unwrap_or(0);
        ((u128::from(fraction) * len as u128) >> 64) as usize
    }

    /// The smallest key that bucket `bucket` can hold.
    fn floor(&self, bucket: usize) -> Key {
        let mut key = [0u8; 32];
        let head = (bucket as u64).checked_shl(64 - self.bits).unwrap_or(0);
        key[..8].copy_from_slice(&head.to_be_bytes());
        key
    }

    /// Splits every bucket so that there are `1 << bits` of them (no-op if there are as many
    /// already).
    fn grow_to(&mut self, bits: u32) {
        if !self.buckets.is_empty() && bits <= self.bits {
            return;
        }
        let old = std::mem::take(&mut self.buckets);
        self.bits = bits;
        let mut buckets: Vec<Vec<Key>> = Vec::with_capacity(1 << bits);
        buckets.resize_with(1 << bits, Vec::new);
        for mut v in old {
            // Split runs off the end into exact allocations; the first run keeps the old
            // allocation, shrunk in place, which leaves fewer holes in the heap.
            while let Some(last) = v.last() {
                let b = self.bucket_of(last);
                let at = v.partition_point(|k| self.bucket_of(k) < b);
                if at == 0 {
                    v.shrink_to_fit();
                    buckets[b] = v;
                    break;
                }
                buckets[b] = v.split_off(at);
            }
        }
        self.buckets = buckets;
    }

    /// Adds `key`; `false` if it was present.
    pub(crate) fn insert(&mut self, key: Key) -> bool {
        if self.buckets.is_empty() || self.len >= MAX_AVERAGE << self.bits {
            self.grow_to(bits_for(self.len + 1));
        }
        let b = self.bucket_of(&key);
        let guess = self.guess(&key, self.buckets[b].len());
        let v = &mut self.buckets[b];
        let at = lower_bound(v, &key, guess);
        if v.get(at) == Some(&key) {
            return false;
        }
        if v.len() == v.capacity() {
            v.reserve_exact(GROWTH);
        }
        v.insert(at, key);
        self.len += 1;
        true
    }

    /// Removes `key`; `false` if it was absent.
    pub(crate) fn remove(&mut self, key: &Key) -> bool {
        if self.buckets.is_empty() {
            return false;
        }
        let b = self.bucket_of(key);
        let guess = self.guess(key, self.buckets[b].len());
        let v = &mut self.buckets[b];
        let at = lower_bound(v, key, guess);
        if v.get(at) != Some(key) {
            return false;
        }
        v.remove(at);
        if v.is_empty() {
            *v = Vec::new();
        } else if v.capacity() - v.len() >= 2 * GROWTH {
            v.shrink_to(v.len() + GROWTH);
        }
        self.len -= 1;
        true
    }

    /// Whether `key` is present.
    pub(crate) fn contains(&self, key: &Key) -> bool {
        let pos = self.lower_bound(key);
        self.buckets
            .get(pos.bucket)
            .and_then(|v| v.get(pos.index))
            .is_some_and(|k| k == key)
    }

    /// The place of the first key not less than `key`.
    pub(crate) fn lower_bound(&self, key: &Key) -> Pos {
        let bucket = self.bucket_of(key);
        let index = self
            .buckets
            .get(bucket)
            .map_or(0, |v| lower_bound(v, key, self.guess(key, v.len())));
        Pos { bucket, index }
    }

    /// The number of keys from `from` on that satisfy `is_match`, which must hold for a run of
    /// keys starting at `from` and for no key after that run (as for a prefix and its lower
    /// bound). The first bucket is galloped from `from` (a short run reads one or two cache
    /// lines); later buckets inside the run are counted by their length.
    pub(crate) fn count_run(&self, from: Pos, is_match: impl Fn(&Key) -> bool) -> usize {
        let Some(first) = self.buckets.get(from.bucket) else {
            return 0;
        };
        let rest = first.get(from.index..).unwrap_or_default();
        let mut count = gallop(rest, &is_match);
        if count < rest.len() {
            return count;
        }
        for (b, v) in self.buckets.iter().enumerate().skip(from.bucket + 1) {
            if !is_match(&self.floor(b)) {
                // The run ended before this bucket's range starts.
                break;
            }
            match v.last() {
                None => {}
                Some(last) if is_match(last) => count += v.len(),
                Some(_) => {
                    count += gallop(v, &is_match);
                    break;
                }
            }
        }
        count
    }

    /// The keys from `from` on, in order.
    pub(crate) fn keys_from(&self, from: Pos) -> impl Iterator<Item = &Key> {
        let first = self
            .buckets
            .get(from.bucket)
            .and_then(|v| v.get(from.index..))
            .unwrap_or_default();
        let later = self
            .buckets
            .get(from.bucket + 1..)
            .unwrap_or_default()
            .iter()
            .flatten();
        first.iter().chain(later)
    }

    /// All keys, in order.
    pub(crate) fn iter(&self) -> std::iter::Flatten<std::slice::Iter<'_, Vec<Key>>> {
        self.buckets.iter().flatten()
    }

    /// Adds sorted, deduplicated `keys`: the directory is sized once, then each bucket that
    /// gets keys is merged with its run of them.
    pub(crate) fn extend_sorted(&mut self, keys: &[Key]) {
        self.reserve(keys.len());
        let mut rest = keys;
        while let Some(first) = rest.first() {
            let b = self.bucket_of(first);
            let n = rest.partition_point(|k| self.bucket_of(k) == b);
            let (run, tail) = rest.split_at(n);
            rest = tail;
            let v = &mut self.buckets[b];
            let before = v.len();
            if v.is_empty() {
                *v = run.to_vec();
            } else {
                *v = merge(v, run);
            }
            self.len += v.len() - before;
        }
    }
}

/// The sorted union of two sorted, deduplicated slices, allocated exactly.
fn merge(a: &[Key], b: &[Key]) -> Vec<Key> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        match cmp_keys(x, y) {
            Ordering::Less => {
                out.push(*x);
                i += 1;
            }
            Ordering::Greater => {
                out.push(*y);
                j += 1;
            }
            Ordering::Equal => {
                out.push(*x);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

impl PartialEq for Buckets {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for Buckets {}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> Key {
        crate::Digest::sha256(&i.to_le_bytes())
            .sha256_bytes()
            .expect("sha256")
    }

    fn check_invariants(b: &Buckets) {
        if b.buckets.is_empty() {
            assert_eq!(b.len, 0);
            return;
        }
        assert_eq!(b.buckets.len(), 1 << b.bits);
        let mut total = 0;
        for (i, v) in b.buckets.iter().enumerate() {
            assert!(v.windows(2).all(|w| w[0] < w[1]), "bucket {i} unsorted");
            assert!(v.iter().all(|k| b.bucket_of(k) == i), "key in wrong bucket");
            total += v.len();
        }
        assert_eq!(total, b.len);
    }

    #[test]
    fn grows_and_splits_keeping_order() {
        let mut b = Buckets::default();
        for i in 0..5000 {
            assert!(b.insert(key(i)));
        }
        assert!(!b.insert(key(7)));
        check_invariants(&b);
        assert_eq!(b.bits, bits_for(5000));
        // 5000 keys at most 64 per bucket on average: 128 buckets.
        assert_eq!(b.bits, 7);
        let mut sorted: Vec<Key> = (0..5000).map(key).collect();
        sorted.sort_unstable();
        assert!(b.iter().eq(sorted.iter()));
        for i in (0..5000).step_by(2) {
            assert!(b.remove(&key(i)));
            assert!(!b.remove(&key(i)));
        }
        check_invariants(&b);
        assert_eq!(b.len(), 2500);
        assert!(b.contains(&key(1)) && !b.contains(&key(0)));
        // Slack is bounded after removals.
        assert!(
            b.buckets
                .iter()
                .all(|v| v.capacity() - v.len() < 2 * GROWTH)
        );
    }

    #[test]
    fn extend_sorted_merges_and_counts_duplicates_once() {
        let mut b = Buckets::default();
        for i in 0..300 {
            b.insert(key(i));
        }
        let mut more: Vec<Key> = (200..3000).map(key).collect();
        more.sort_unstable();
        b.extend_sorted(&more);
        check_invariants(&b);
        assert_eq!(b.len(), 3000);
        let mut all: Vec<Key> = (0..3000).map(key).collect();
        all.sort_unstable();
        assert!(b.iter().eq(all.iter()));
    }

    #[test]
    fn with_capacity_sizes_the_directory_once() {
        let mut b = Buckets::with_capacity(10_000);
        let bits = b.bits;
        assert_eq!(b.buckets.len(), 1 << bits);
        for i in 0..10_000 {
            b.insert(key(i));
        }
        assert_eq!(b.bits, bits);
        assert!(Buckets::with_capacity(0).buckets.is_empty());
    }

    #[test]
    fn skewed_keys_share_a_bucket_and_still_work() {
        // Every key starts with the same 8 bytes: one bucket holds them all.
        let mut b = Buckets::default();
        let keys: Vec<Key> = (0..1000u64)
            .map(|i| {
                let mut k = [0xab; 32];
                k[8..16].copy_from_slice(&i.to_be_bytes());
                k
            })
            .collect();
        for k in keys.iter().rev() {
            assert!(b.insert(*k));
        }
        check_invariants(&b);
        for k in &keys {
            assert!(b.contains(k));
        }
        let start = b.lower_bound(&[0xab; 32]);
        assert_eq!(b.count_run(start, |k| k[..8] == [0xab; 8]), 0);
        let zero = {
            let mut k = [0xab; 32];
            k[8..].fill(0);
            k
        };
        let start = b.lower_bound(&zero);
        assert_eq!(b.count_run(start, |k| k[..8] == [0xab; 8]), 1000);
        assert_eq!(b.keys_from(start).next(), Some(&keys[0]));
    }

    #[test]
    fn gallop_and_lower_bound_agree_with_partition_point() {
        let mut v: Vec<Key> = (0..200).map(key).collect();
        v.sort_unstable();
        for probe in (0..400).map(key) {
            let want = v.partition_point(|k| *k < probe);
            for guess in [0, 1, 50, 100, 199, 500] {
                assert_eq!(lower_bound(&v, &probe, guess), want);
            }
            assert_eq!(gallop(&v, |k| *k < probe), want);
        }
        assert_eq!(lower_bound(&[], &key(0), 3), 0);
    }
}
