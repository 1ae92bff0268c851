//! [`LayerMap`]: the layers in memory, kept compact because restore holds one per layer.
//!
//! The layers live in a slab (`Vec<Option<Entry>>`) whose indices never move while a layer
//! is loaded, so a layer names its parent by index (4 bytes instead of a 66-byte
//! `Option<ChainId>`). A hash table of bare `u32` slab indices finds a layer by chain ID; it
//! hashes the chain ID stored in the slab, so the key is not stored twice. Freed slots are
//! reused. Every operation is O(1) (amortised), as with a `HashMap`.
//!
//! An entry keeps chain ID, diff ID and cache ID as 32 raw bytes each; the rare values that
//! do not fit (sha512 IDs, cache IDs that are not 64 lowercase hex digits) live in a side
//! table. For 155k layers this is 152 bytes a layer in the slab plus 5 bytes a bucket in the
//! table (about 25 MB), against about 290 bytes a bucket (with 1.7 buckets a layer) and a
//! heap `Vec` per referenced layer for a `HashMap<ChainId, Entry>` (about 76 MB).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use digest_set::{Algorithm, Digest};
use hashbrown::HashTable;

use crate::ids::{ChainId, DiffId};
use crate::info::LayerInfo;

/// [`Entry::parent`] of a base layer.
pub(crate) const NO_PARENT: u32 = u32::MAX;

/// The tokens of the handles given out on one layer. Most layers hold none or one, which
/// needs no allocation; more are kept sorted on the heap.
#[derive(Debug, Default)]
pub(crate) enum Handles {
    /// No handle.
    #[default]
    None,
    /// One handle.
    One(u64),
    /// Two or more handles, sorted.
    #[expect(
        clippy::box_collection,
        reason = "a thin pointer keeps every entry 8 bytes smaller; several handles are rare"
    )]
    Many(Box<Vec<u64>>),
}

impl Handles {
    pub(crate) fn len(&self) -> usize {
        match self {
            Handles::None => 0,
            Handles::One(_) => 1,
            Handles::Many(v) => v.len(),
        }
    }

    pub(crate) fn add(&mut self, token: u64) {
        match self {
            Handles::None => *self = Handles::One(token),
            Handles::One(t) => {
                let (a, b) = if *t < token { (*t, token) } else { (token, *t) };
                *self = Handles::Many(Box::new(vec![a, b]));
            }
            Handles::Many(v) => {
                let at = v.partition_point(|&t| t < token);
                v.insert(at, token);
            }
        }
    }

    /// Removes `token`; false if it was not there.
    pub(crate) fn remove(&mut self, token: u64) -> bool {
        match self {
            Handles::None => false,
            Handles::One(t) if *t == token => {
                *self = Handles::None;
                true
            }
            Handles::One(_) => false,
            Handles::Many(v) => match v.binary_search(&token) {
                Ok(at) => {
                    v.remove(at);
                    if let [last] = v.as_slice() {
                        *self = Handles::One(*last);
                    }
                    true
                }
                Err(_) => false,
            },
        }
    }
}

/// [`Entry::flags`]: the chain ID is a sha512 digest (its last 32 bytes are in the extras).
const WIDE_CHAIN: u8 = 1;
/// [`Entry::flags`]: the diff ID is a sha512 digest (its last 32 bytes are in the extras).
const WIDE_DIFF: u8 = 2;
/// [`Entry::flags`]: the cache ID is not 64 lowercase hex digits (it is in the extras).
const TEXT_CACHE: u8 = 4;

/// What does not fit in an [`Entry`]: the second half of sha512 chain and diff IDs, and
/// cache IDs that are not 64 lowercase hex digits. Layers written by dockerd or by this
/// store never have any.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Extra {
    chain_tail: Option<[u8; 32]>,
    diff_tail: Option<[u8; 32]>,
    cache_id: Option<Box<str>>,
}

/// Splits a digest into its first 32 bytes and, for sha512, the last 32.
fn split(d: &Digest) -> ([u8; 32], Option<[u8; 32]>) {
    let raw = d.as_bytes();
    let mut head = [0u8; 32];
    head.copy_from_slice(&raw[..32]);
    let tail = (raw.len() == 64).then(|| {
        let mut tail = [0u8; 32];
        tail.copy_from_slice(&raw[32..]);
        tail
    });
    (head, tail)
}

/// The digest of `head` and, if given, `tail` (sha512).
fn join(head: &[u8; 32], tail: Option<&[u8; 32]>) -> Digest {
    match tail {
        None => Digest::from_sha256_bytes(*head),
        Some(tail) => {
            let mut raw = [0u8; 64];
            raw[..32].copy_from_slice(head);
            raw[32..].copy_from_slice(tail);
            // Cannot fail: 64 bytes is a sha512 digest.
            Digest::from_raw(Algorithm::Sha512, &raw)
                .unwrap_or_else(|| Digest::from_sha256_bytes(*head))
        }
    }
}

/// One layer in memory with its references, kept to 152 bytes: chain ID, diff ID and cache
/// ID as 32 raw bytes each (what does not fit is in an [`Extra`]).
#[derive(Debug)]
pub(crate) struct Entry {
    chain: [u8; 32],
    diff: [u8; 32],
    /// The cache ID decoded from 64 lowercase hex digits (unless [`TEXT_CACHE`]).
    cache: [u8; 32],
    flags: u8,
    /// The slab index of the parent, or [`NO_PARENT`].
    pub(crate) parent: u32,
    pub(crate) diff_size: u64,
    /// The size of the whole chain.
    pub(crate) size: u64,
    /// The number of layers in the chain; 0 while restore has not resolved it.
    pub(crate) depth: u32,
    /// Loaded child layers.
    pub(crate) children: u32,
    /// RW mounts (containers) on this layer.
    pub(crate) mounts: u32,
    /// Handles given out and not yet released.
    pub(crate) handles: Handles,
}

impl Entry {
    /// A new entry (size = diff size, depth 0, no references) and what does not fit in it
    /// (`None` for sha256 IDs and a hex cache ID).
    pub(crate) fn new(
        chain_id: &ChainId,
        diff_id: &DiffId,
        cache_id: &str,
        parent: u32,
        diff_size: u64,
    ) -> (Entry, Option<Extra>) {
        let (chain, chain_tail) = split(&chain_id.0);
        let (diff, diff_tail) = split(&diff_id.0);
        let mut flags = 0;
        let mut extra = Extra::default();
        if chain_tail.is_some() {
            flags |= WIDE_CHAIN;
            extra.chain_tail = chain_tail;
        }
        if diff_tail.is_some() {
            flags |= WIDE_DIFF;
            extra.diff_tail = diff_tail;
        }
        let cache = match decode_hex_cache_id(cache_id) {
            Some(bytes) => bytes,
            None => {
                flags |= TEXT_CACHE;
                extra.cache_id = Some(cache_id.into());
                [0u8; 32]
            }
        };
        let entry = Entry {
            chain,
            diff,
            cache,
            flags,
            parent,
            diff_size,
            size: diff_size,
            depth: 0,
            children: 0,
            mounts: 0,
            handles: Handles::None,
        };
        (entry, (flags != 0).then_some(extra))
    }

    /// The references on this layer: child layers + RW mounts + handles.
    pub(crate) fn ref_count(&self) -> usize {
        self.children as usize + self.mounts as usize + self.handles.len()
    }

    /// The parent's index, if any.
    pub(crate) fn parent_index(&self) -> Option<u32> {
        (self.parent != NO_PARENT).then_some(self.parent)
    }

    /// The chain ID, given this entry's extras.
    fn chain_id(&self, extra: Option<&Extra>) -> ChainId {
        let tail = if self.flags & WIDE_CHAIN != 0 {
            extra.and_then(|x| x.chain_tail.as_ref())
        } else {
            None
        };
        ChainId(join(&self.chain, tail))
    }

    /// Whether this entry's chain ID is `id` (without building it).
    fn is(&self, id: &ChainId, extra: Option<&Extra>) -> bool {
        let raw = id.0.as_bytes();
        let wide = self.flags & WIDE_CHAIN != 0;
        raw[..32] == self.chain
            && match (wide, raw.len()) {
                (false, 32) => true,
                (true, 64) => extra
                    .and_then(|x| x.chain_tail.as_ref())
                    .is_some_and(|t| raw[32..] == t[..]),
                _ => false,
            }
    }
}

/// 64 lowercase hex digits as their 32 bytes (decoded as a sha256 digest's hex is).
fn decode_hex_cache_id(s: &str) -> Option<[u8; 32]> {
    let digest = Digest::from_hex(Algorithm::Sha256, s).ok()?;
    digest.as_bytes().try_into().ok()
}

/// The hash of a chain ID in a [`LayerMap`].
pub(crate) fn hash_id(hasher: &RandomState, id: &ChainId) -> u64 {
    hasher.hash_one(id)
}

/// The layers of a store, by slab index and by chain ID.
#[derive(Debug)]
pub(crate) struct LayerMap {
    slots: Vec<Option<Entry>>,
    /// What does not fit in the entries, by slab index.
    extras: HashMap<u32, Extra>,
    /// Indices of the `None` slots.
    free: Vec<u32>,
    /// Slab indices of the loaded layers, hashed by their chain IDs.
    index: HashTable<u32>,
    hasher: RandomState,
}

impl LayerMap {
    /// A map of the given slab, extras and index. `index` must hold the indices of the
    /// `Some` slots, hashed with `hasher` by their chain IDs; the indices of `None` slots
    /// are dropped from it.
    pub(crate) fn from_parts(
        slots: Vec<Option<Entry>>,
        mut extras: HashMap<u32, Extra>,
        mut index: HashTable<u32>,
        hasher: RandomState,
    ) -> Self {
        let live = |i: u32| slots.get(i as usize).is_some_and(Option::is_some);
        index.retain(|i| live(*i));
        extras.retain(|i, _| live(*i));
        let free = slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_none())
            .filter_map(|(i, _)| u32::try_from(i).ok())
            .collect();
        LayerMap {
            slots,
            extras,
            free,
            index,
            hasher,
        }
    }

    /// The chain ID of the entry at slab index `i`.
    fn chain_of(&self, i: u32, e: &Entry) -> ChainId {
        e.chain_id(self.extras.get(&i))
    }

    /// The slab index of layer `id`.
    pub(crate) fn find(&self, id: &ChainId) -> Option<u32> {
        let (slots, extras) = (&self.slots, &self.extras);
        self.index
            .find(hash_id(&self.hasher, id), |&i| {
                slots
                    .get(i as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|e| e.is(id, extras.get(&i)))
            })
            .copied()
    }

    /// The layer at slab index `i`.
    pub(crate) fn at(&self, i: u32) -> Option<&Entry> {
        self.slots.get(i as usize).and_then(Option::as_ref)
    }

    /// The layer at slab index `i`, mutably.
    pub(crate) fn at_mut(&mut self, i: u32) -> Option<&mut Entry> {
        self.slots.get_mut(i as usize).and_then(Option::as_mut)
    }

    /// Layer `id`.
    pub(crate) fn get(&self, id: &ChainId) -> Option<&Entry> {
        self.find(id).and_then(|i| self.at(i))
    }

    /// Layer `id`, mutably.
    pub(crate) fn get_mut(&mut self, id: &ChainId) -> Option<&mut Entry> {
        self.find(id).and_then(|i| self.at_mut(i))
    }

    /// Whether layer `id` is loaded.
    pub(crate) fn contains(&self, id: &ChainId) -> bool {
        self.find(id).is_some()
    }

    /// The number of layers.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there is no layer.
    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The number of slots in the slab (loaded layers and free slots).
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The slab indices of every layer, in slab order.
    pub(crate) fn indices(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .filter_map(|(i, _)| u32::try_from(i).ok())
    }

    /// The chain ID of the layer at slab index `i`.
    pub(crate) fn chain_id(&self, i: u32) -> Option<ChainId> {
        self.at(i).map(|e| self.chain_of(i, e))
    }

    /// The [`LayerInfo`] of the layer at slab index `i`.
    pub(crate) fn info(&self, i: u32) -> Option<LayerInfo> {
        let e = self.at(i)?;
        let extra = self.extras.get(&i);
        let diff_tail = if e.flags & WIDE_DIFF != 0 {
            extra.and_then(|x| x.diff_tail.as_ref())
        } else {
            None
        };
        let cache_id = match extra.and_then(|x| x.cache_id.as_deref()) {
            Some(text) if e.flags & TEXT_CACHE != 0 => text.to_owned(),
            _ => Digest::from_sha256_bytes(e.cache).hex(),
        };
        Some(LayerInfo {
            chain_id: e.chain_id(extra),
            diff_id: DiffId(join(&e.diff, diff_tail)),
            parent: e.parent_index().and_then(|p| self.chain_id(p)),
            diff_size: e.diff_size,
            size: e.size,
            cache_id,
            depth: e.depth as usize,
        })
    }

    /// Whether a loaded layer's content is `cache_id` (no allocation).
    pub(crate) fn uses_cache_id(&self, cache_id: &str) -> bool {
        match decode_hex_cache_id(cache_id) {
            Some(bytes) => self
                .slots
                .iter()
                .flatten()
                .any(|e| e.flags & TEXT_CACHE == 0 && e.cache == bytes),
            None => self.indices().any(|i| {
                self.at(i).is_some_and(|e| e.flags & TEXT_CACHE != 0)
                    && self
                        .extras
                        .get(&i)
                        .and_then(|x| x.cache_id.as_deref())
                        .is_some_and(|c| c == cache_id)
            }),
        }
    }

    /// Whether [`insert`](Self::insert) has a slab index left for one more layer.
    pub(crate) fn has_room(&self) -> bool {
        !self.free.is_empty() || self.slots.len() < NO_PARENT as usize
    }

    /// Adds `entry` (with its `extra`), whose chain ID must not be loaded yet; returns its
    /// slab index, or `None` (and drops the entry) if the slab is full (see
    /// [`has_room`](Self::has_room)).
    pub(crate) fn insert(&mut self, entry: Entry, extra: Option<Extra>) -> Option<u32> {
        let hash = hash_id(&self.hasher, &entry.chain_id(extra.as_ref()));
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.slots.get_mut(i as usize) {
                    *slot = Some(entry);
                }
                i
            }
            None => {
                let i = u32::try_from(self.slots.len()).ok()?;
                if i == NO_PARENT {
                    return None;
                }
                self.slots.push(Some(entry));
                i
            }
        };
        if let Some(extra) = extra {
            self.extras.insert(i, extra);
        }
        let (slots, extras, hasher) = (&self.slots, &self.extras, &self.hasher);
        self.index.insert_unique(hash, i, |&j| {
            slots
                .get(j as usize)
                .and_then(Option::as_ref)
                .map_or(0, |e| hash_id(hasher, &e.chain_id(extras.get(&j))))
        });
        Some(i)
    }

    /// Adds `entry` (with its `extra`) unless its chain ID is loaded already, in one probe of
    /// the index; returns its slab index, or `None` (and drops the entry) if the chain ID is
    /// loaded or the slab is full.
    pub(crate) fn insert_new(&mut self, entry: Entry, extra: Option<Extra>) -> Option<u32> {
        let id = entry.chain_id(extra.as_ref());
        let hash = hash_id(&self.hasher, &id);
        let (slots, extras, hasher) = (&self.slots, &self.extras, &self.hasher);
        let vacant = match self.index.entry(
            hash,
            |&j| {
                slots
                    .get(j as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|e| e.is(&id, extras.get(&j)))
            },
            |&j| {
                slots
                    .get(j as usize)
                    .and_then(Option::as_ref)
                    .map_or(0, |e| hash_id(hasher, &e.chain_id(extras.get(&j))))
            },
        ) {
            hashbrown::hash_table::Entry::Occupied(_) => return None,
            hashbrown::hash_table::Entry::Vacant(v) => v,
        };
        let i = match self.free.last() {
            Some(&i) => i,
            None => {
                let i = u32::try_from(self.slots.len()).ok()?;
                if i == NO_PARENT {
                    return None;
                }
                i
            }
        };
        vacant.insert(i);
        if self.free.pop().is_none() {
            self.slots.push(Some(entry));
        } else if let Some(slot) = self.slots.get_mut(i as usize) {
            *slot = Some(entry);
        }
        if let Some(extra) = extra {
            self.extras.insert(i, extra);
        }
        Some(i)
    }

    /// Removes the layer at slab index `i`; returns its [`LayerInfo`] and its parent's
    /// slab index.
    pub(crate) fn remove(&mut self, i: u32) -> Option<(LayerInfo, Option<u32>)> {
        let info = self.info(i)?;
        let entry = self.slots.get_mut(i as usize)?.take()?;
        if let Ok(found) = self
            .index
            .find_entry(hash_id(&self.hasher, &info.chain_id), |&j| j == i)
        {
            found.remove();
        }
        self.extras.remove(&i);
        self.free.push(i);
        Some((info, entry.parent_index()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_add_and_remove() {
        let mut h = Handles::default();
        assert!(!h.remove(1));
        for t in [5, 3, 9, 7] {
            h.add(t);
        }
        assert_eq!(h.len(), 4);
        assert!(matches!(&h, Handles::Many(v) if **v == [3, 5, 7, 9]));
        assert!(!h.remove(4));
        assert!(h.remove(3) && h.remove(9) && h.remove(5));
        assert!(matches!(h, Handles::One(7)));
        assert!(!h.remove(5));
        assert!(h.remove(7));
        assert!(matches!(h, Handles::None));
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn entry_is_compact() {
        // Three 32-byte IDs and the rest; a regression to full `Digest`s, `Option<ChainId>`
        // parents or `Vec` handles would show here.
        assert!(std::mem::size_of::<Option<Entry>>() <= 152);
    }

    #[test]
    fn cache_ids_round_trip() {
        let hex = "0123456789abcdef".repeat(4);
        let id = ChainId(Digest::sha256(b"x"));
        for s in [
            hex.as_str(),
            &hex.to_uppercase(),
            &hex[..63],
            &format!("{hex}0"),
            "my-layer_1.2",
            "g123",
        ] {
            let (e, x) = Entry::new(&id, &DiffId(id.0), s, NO_PARENT, 0);
            assert_eq!(x.is_none(), s == hex, "{s}");
            let mut map = LayerMap::from_parts(
                Vec::new(),
                HashMap::new(),
                HashTable::new(),
                RandomState::new(),
            );
            let i = map.insert(e, x).expect("insert");
            assert_eq!(map.info(i).expect("info").cache_id, s);
        }
    }

    /// sha512 IDs and text cache IDs go through the extras and come back whole; lookups
    /// tell a sha256 ID from a sha512 one with the same first half.
    #[test]
    fn wide_ids_and_text_cache_ids_round_trip() {
        let mut map = LayerMap::from_parts(
            Vec::new(),
            HashMap::new(),
            HashTable::new(),
            RandomState::new(),
        );
        let wide = ChainId(Digest::sha512(b"wide"));
        let (head, _) = split(&wide.0);
        let narrow = ChainId(Digest::from_sha256_bytes(head));
        let diff512 = DiffId(Digest::sha512(b"diff"));
        let hex_cache = "ab".repeat(32);
        let (e, x) = Entry::new(&wide, &diff512, "my-cache.1", NO_PARENT, 5);
        assert!(x.is_some());
        let wi = map.insert(e, x).expect("insert");
        let (e, x) = Entry::new(&narrow, &DiffId(narrow.0), &hex_cache, wi, 7);
        assert!(x.is_none());
        let ni = map.insert(e, x).expect("insert");
        assert_eq!(map.find(&wide), Some(wi));
        assert_eq!(map.find(&narrow), Some(ni));
        let info = map.info(wi).expect("info");
        assert_eq!(
            (info.chain_id, info.diff_id, info.cache_id.as_str()),
            (wide, diff512, "my-cache.1")
        );
        let info = map.info(ni).expect("info");
        assert_eq!(info.parent, Some(wide));
        assert_eq!(info.cache_id, hex_cache);
        // Upper-case hex is not decoded: it must come back as written.
        let upper = ChainId(Digest::sha256(b"upper"));
        let (e, x) = Entry::new(&upper, &DiffId(upper.0), &"AB".repeat(32), NO_PARENT, 1);
        let ui = map.insert(e, x).expect("insert");
        assert_eq!(map.info(ui).expect("info").cache_id, "AB".repeat(32));
        assert_eq!(map.remove(wi).map(|(i, _)| i.chain_id), Some(wide));
        assert_eq!(map.find(&wide), None);
        assert_eq!(map.find(&narrow), Some(ni));
        assert_eq!(map.len(), 2);
        // The freed slot is reused, without the old extras.
        let (e, x) = Entry::new(&wide, &DiffId(narrow.0), &hex_cache, NO_PARENT, 1);
        assert_eq!(map.insert(e, x), Some(wi));
        assert_eq!(map.info(wi).expect("info").cache_id, hex_cache);
    }
}
