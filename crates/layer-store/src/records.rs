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
    let mut layers = LayerMap::from_parts(
        Vec::new(),
        HashMap::new(),
        HashTable::new(),
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
    for r in records {
        if layers.contains(&r.chain_id) {
            // Cannot come from a restore: directory names are unique.
            tracing::warn!(layer = %r.chain_id, "layer record given twice; the first is kept");
            continue;
        }
        let (parent, size, depth) = match &r.parent {
            None => (NO_PARENT, r.diff_size, 1),
            Some(p) => match layers.find(p).and_then(|i| Some((i, layers.at(i)?))) {
                Some((i, pe)) => (
                    i,
                    pe.size.saturating_add(r.diff_size),
                    pe.depth.saturating_add(1),
                ),
                None => {
                    skip(r.chain_id, SkipReason::MissingParent { parent: *p });
                    continue;
                }
            },
        };
        let (mut entry, extra) =
            Entry::new(&r.chain_id, &r.diff_id, &r.cache_id, parent, r.diff_size);
        entry.size = size;
        entry.depth = depth;
        if layers.insert(entry, extra).is_some()
            && let Some(pe) = layers.at_mut(parent)
        {
            pe.children = pe.children.saturating_add(1);
        }
    }
    skipped.sort_by_key(|s| s.chain_id);
    (layers, skipped)
}

/// The slab indices of `layers`, parents before children (by depth).
pub(crate) fn parents_first(layers: &LayerMap) -> Vec<u32> {
    let mut order: Vec<u32> = layers.indices().collect();
    order.sort_by_key(|&i| layers.at(i).map_or(0, |e| e.depth));
    order
}
