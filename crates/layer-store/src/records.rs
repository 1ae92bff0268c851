//! [`LayerRecord`]: what restore read of one layer, for a caller that keeps restores (a
//! cache of the layerdb) and opens a store from them again
//! ([`LayerStore::open_read_only_from_records`](crate::LayerStore::open_read_only_from_records)).

use std::collections::HashMap;
use std::hash::RandomState;
use std::path::Path;

use hashbrown::HashTable;

use crate::ids::{ChainId, DiffId};
use crate::map::{Entry, LayerMap, NO_PARENT};
use crate::outcome::{SkipReason, SkippedLayer};

/// What restore read of one loaded layer: the values of its `diff`, `size`, `cache-id` and
/// `parent` files. A store's layers, with their chain sizes, depths and child counts,
/// follow from these alone.
///
/// [`LayerStore::for_each_record`](crate::LayerStore::for_each_record) gives them, parents
/// first; [`LayerStore::open_read_only_from_records`](crate::LayerStore::open_read_only_from_records)
/// opens a store from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRecord {
    /// The chain ID (the layer directory's name).
    pub chain_id: ChainId,
    /// `diff`.
    pub diff_id: DiffId,
    /// `parent`; `None` for a base layer.
    pub parent: Option<ChainId>,
    /// `size`: the layer's own content size.
    pub diff_size: u64,
    /// `cache-id`.
    pub cache_id: String,
}

/// The layer map of `records`, taken in order: a record whose parent is not among the records
/// before it is skipped ([`SkipReason::MissingParent`]); of two records of one chain ID the
/// first is kept. Chain sizes, depths and child counts are computed as restore computes them.
pub(crate) fn layer_map(
    root: &Path,
    records: impl IntoIterator<Item = LayerRecord>,
) -> (LayerMap, Vec<SkippedLayer>) {
    let records = records.into_iter();
    let hint = records.size_hint().0;
    let mut layers = LayerMap::from_parts(
        Vec::with_capacity(hint),
        HashMap::new(),
        HashTable::with_capacity(hint),
        RandomState::new(),
    );
    let mut skipped = Vec::new();
    let mut skip = |id: ChainId, reason: SkipReason| {
        skipped.push(SkippedLayer {
            chain_id: id,
            path: root.join(id.0.algorithm().name()).join(id.0.hex()),
            reason,
        });
    };
    // The chain of the last record, base first: in the order `parents_first` gives, a
    // record's parent is on it, so most parents are found without a lookup.
    let mut path: Vec<(ChainId, u32)> = Vec::new();
    for r in records {
        let parent = match &r.parent {
            None => {
                path.clear();
                None
            }
            Some(p) => {
                while path.last().is_some_and(|(c, _)| c != p) {
                    path.pop();
                }
                match path.last().map(|&(_, i)| i).or_else(|| layers.find(p)) {
                    Some(i) => Some(i),
                    None => {
                        skip(r.chain_id, SkipReason::MissingParent { parent: *p });
                        continue;
                    }
                }
            }
        };
        let (parent, size, depth) = match parent.and_then(|i| Some((i, layers.at(i)?))) {
            None => (NO_PARENT, r.diff_size, 1),
            Some((i, pe)) => (
                i,
                pe.size.saturating_add(r.diff_size),
                pe.depth.saturating_add(1),
            ),
        };
        let (mut entry, extra) =
            Entry::new(&r.chain_id, &r.diff_id, &r.cache_id, parent, r.diff_size);
        entry.size = size;
        entry.depth = depth;
        let Some(i) = layers.insert_new(entry, extra) else {
            // Cannot come from a restore: directory names are unique.
            tracing::warn!(layer = %r.chain_id, "layer record given twice; the first is kept");
            continue;
        };
        if let Some(pe) = layers.at_mut(parent) {
            pe.children = pe.children.saturating_add(1);
        }
        if path.last().is_none_or(|&(_, p)| p != parent) {
            path.clear();
        }
        path.push((r.chain_id, i));
    }
    skipped.sort_by_key(|s| s.chain_id);
    (layers, skipped)
}

/// The slab indices of `layers`, parents before children: depth first, each layer followed
/// by its descendants, so that a layer's parent is on the chain of the layer before it.
pub(crate) fn parents_first(layers: &LayerMap) -> Vec<u32> {
    let slots = layers.slot_count();
    // Children by parent, as offsets into one array (no vector per layer).
    let mut start = vec![0u32; slots + 1];
    let mut roots = Vec::new();
    for i in layers.indices() {
        match layers.at(i).and_then(Entry::parent_index) {
            Some(p) if (p as usize) < slots => start[p as usize + 1] += 1,
            _ => roots.push(i),
        }
    }
    for k in 1..start.len() {
        start[k] += start[k - 1];
    }
    let mut fill = start.clone();
    let mut children = vec![0u32; start[slots] as usize];
    for i in layers.indices() {
        if let Some(p) = layers.at(i).and_then(Entry::parent_index)
            && let Some(at) = fill.get_mut(p as usize)
            && let Some(c) = children.get_mut(*at as usize)
        {
            *c = i;
            *at += 1;
        }
    }
    drop(fill);
    let mut order = Vec::with_capacity(layers.len());
    let mut stack: Vec<u32> = roots.into_iter().rev().collect();
    while let Some(i) = stack.pop() {
        order.push(i);
        let (from, to) = (start[i as usize] as usize, start[i as usize + 1] as usize);
        stack.extend(children[from..to].iter().rev());
    }
    order
}
