//! [`LayerMap`]: the layers in memory, kept compact because restore holds one per layer.
//!
//! The layers live in a slab (`Vec<Option<Entry>>`) whose indices never move while a layer
//! is loaded, so a layer names its parent by index (4 bytes instead of a 66-byte
//! `Option<ChainId>`). A hash table of bare `u32` slab indices finds a layer by chain ID; it
//! hashes the chain ID stored in the slab, so the key is not stored twice. Freed slots are
//! reused. Every operation is O(1) (amortised), as with a `HashMap`.
//!
//! For 155k layers this is about 220 bytes a layer in the slab plus 5 bytes a bucket in the
//! table, against about 290 bytes a bucket (with 1.7 buckets a layer) and a heap `Vec` per
//! referenced layer for a `HashMap<ChainId, Entry>`.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use crate::ids::{ChainId, DiffId};
use crate::store::{CacheId, LayerInfo};

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

/// One layer in memory with its references.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) chain_id: ChainId,
    pub(crate) diff_id: DiffId,
    /// The slab index of the parent, or [`NO_PARENT`].
    pub(crate) parent: u32,
    pub(crate) diff_size: u64,
    /// The size of the whole chain.
    pub(crate) size: u64,
    pub(crate) cache_id: CacheId,
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
    /// The references on this layer: child layers + RW mounts + handles.
    pub(crate) fn ref_count(&self) -> usize {
        self.children as usize + self.mounts as usize + self.handles.len()
    }

    /// The parent's index, if any.
    pub(crate) fn parent_index(&self) -> Option<u32> {
        (self.parent != NO_PARENT).then_some(self.parent)
    }
}

/// The hash of a chain ID in a [`LayerMap`].
pub(crate) fn hash_id(hasher: &RandomState, id: &ChainId) -> u64 {
    hasher.hash_one(id)
}

/// The layers of a store, by slab index and by chain ID.
#[derive(Debug)]
pub(crate) struct LayerMap {
    slots: Vec<Option<Entry>>,
    /// Indices of the `None` slots.
    free: Vec<u32>,
    /// Slab indices of the loaded layers, hashed by their chain IDs.
    index: HashTable<u32>,
    hasher: RandomState,
}

impl LayerMap {
    /// A map of the given slab and index. `index` must hold exactly the indices of the
    /// `Some` slots, hashed with `hasher` by their chain IDs.
    pub(crate) fn from_parts(
        slots: Vec<Option<Entry>>,
        index: HashTable<u32>,
        hasher: RandomState,
    ) -> Self {
        let free = slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_none())
            .filter_map(|(i, _)| u32::try_from(i).ok())
            .collect();
        LayerMap {
            slots,
            free,
            index,
            hasher,
        }
    }

    /// The slab index of layer `id`.
    pub(crate) fn find(&self, id: &ChainId) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash_id(&self.hasher, id), |&i| {
                slots
                    .get(i as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|e| e.chain_id == *id)
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

    /// Every layer, in slab order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().flatten()
    }

    /// The chain ID of `entry`'s parent.
    pub(crate) fn parent_id(&self, entry: &Entry) -> Option<ChainId> {
        entry
            .parent_index()
            .and_then(|p| self.at(p))
            .map(|p| p.chain_id)
    }

    /// The [`LayerInfo`] of `entry`.
    pub(crate) fn info(&self, entry: &Entry) -> LayerInfo {
        LayerInfo {
            chain_id: entry.chain_id,
            diff_id: entry.diff_id,
            parent: self.parent_id(entry),
            diff_size: entry.diff_size,
            size: entry.size,
            cache_id: entry.cache_id.to_string(),
            depth: entry.depth as usize,
        }
    }

    /// Whether [`insert`](Self::insert) has a slab index left for one more layer.
    pub(crate) fn has_room(&self) -> bool {
        !self.free.is_empty() || self.slots.len() < NO_PARENT as usize
    }

    /// Adds `entry`, whose chain ID must not be loaded yet; returns its slab index, or `None`
    /// (and drops the entry) if the slab is full (see [`has_room`](Self::has_room)).
    pub(crate) fn insert(&mut self, entry: Entry) -> Option<u32> {
        let hash = hash_id(&self.hasher, &entry.chain_id);
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
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(hash, i, |&j| {
            slots
                .get(j as usize)
                .and_then(Option::as_ref)
                .map_or(0, |e| hash_id(hasher, &e.chain_id))
        });
        Some(i)
    }

    /// Removes the layer at slab index `i` and returns it.
    pub(crate) fn remove(&mut self, i: u32) -> Option<Entry> {
        let entry = self.slots.get_mut(i as usize)?.take()?;
        if let Ok(found) = self
            .index
            .find_entry(hash_id(&self.hasher, &entry.chain_id), |&j| j == i)
        {
            found.remove();
        }
        self.free.push(i);
        Some(entry)
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
        // Two 65-byte digests and the rest; a regression to `Option<ChainId>` parents or
        // `Vec` handles would show here.
        assert!(std::mem::size_of::<Option<Entry>>() <= 224);
    }
}
