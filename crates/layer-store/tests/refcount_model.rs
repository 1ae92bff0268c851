//! Reference counting against a simple model: random register/get/release/reopen sequences.
//!
//! The model keeps, for each live layer, its parent and the set of live handles; a layer's
//! refcount is its number of live children plus its live handles. Releasing a handle deletes
//! the layer if that count reaches zero, then its parent likewise, and so on. Layers restored
//! at reopen keep no handles but stay (no GC at load). After every step the store must agree
//! with the model: same layers, same refcounts, same directories on disk.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use common::{diff, reopen};
use layer_store::{ChainId, LayerHandle, LayerStore, NullDriver, ReleaseError};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Register diff `diff` on the `parent % n`th live layer (or as a base layer).
    Register { parent: Option<usize>, diff: u8 },
    /// Get a handle on the `idx % n`th live layer.
    Get { idx: usize },
    /// Release the `idx % n`th handle ever given out (may be released or stale already).
    Release { idx: usize },
    /// Close and reopen the store: all handles become stale.
    Reopen,
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (prop::option::weighted(0.7, any::<usize>()), 0u8..6)
            .prop_map(|(parent, diff)| Op::Register { parent, diff }),
        2 => any::<usize>().prop_map(|idx| Op::Get { idx }),
        4 => any::<usize>().prop_map(|idx| Op::Release { idx }),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Default)]
struct Model {
    /// Live layers: chain ID -> (parent, diff size).
    layers: BTreeMap<ChainId, (Option<ChainId>, u64)>,
    /// Live handles: token -> chain ID (tokens are the store's, valid in the current epoch).
    handles: BTreeMap<u64, ChainId>,
}

impl Model {
    fn ref_count(&self, c: &ChainId) -> usize {
        let children = self
            .layers
            .values()
            .filter(|(p, _)| p.as_ref() == Some(c))
            .count();
        children + self.handles.values().filter(|h| *h == c).count()
    }

    /// Deletes `c` and its ancestors while unreferenced; returns them, child first.
    fn cascade(&mut self, c: ChainId) -> Vec<ChainId> {
        let mut out = Vec::new();
        let mut cur = Some(c);
        while let Some(id) = cur {
            if !self.layers.contains_key(&id) || self.ref_count(&id) > 0 {
                break;
            }
            let (parent, _) = self.layers.remove(&id).expect("present");
            out.push(id);
            cur = parent;
        }
        out
    }
}

fn check(store: &LayerStore, model: &Model) {
    let ours: BTreeSet<ChainId> = store.layers().into_iter().map(|l| l.chain_id).collect();
    let theirs: BTreeSet<ChainId> = model.layers.keys().copied().collect();
    assert_eq!(ours, theirs);
    for c in &theirs {
        assert_eq!(store.ref_count(c), Some(model.ref_count(c)), "{c}");
        let info = store.layer(c).expect("layer");
        assert_eq!(info.parent, model.layers[c].0);
        assert_eq!(info.diff_size, model.layers[c].1);
    }
    let on_disk: BTreeSet<String> = fs::read_dir(store.root().join("sha256"))
        .expect("sha256")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = theirs.iter().map(|c| c.0.hex()).collect();
    assert_eq!(on_disk, expected);
    assert_eq!(
        fs::read_dir(store.root().join("tmp")).expect("tmp").count(),
        0
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn refcounts_follow_the_model(ops in prop::collection::vec(arb_op(), 1..32)) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("layerdb");
        let (mut store, _) = LayerStore::open(&root, Box::new(NullDriver)).expect("open");
        let mut model = Model::default();
        let mut issued: Vec<LayerHandle> = Vec::new();
        for op in ops {
            match op {
                Op::Register { parent, diff: d } => {
                    let live: Vec<ChainId> = model.layers.keys().copied().collect();
                    let parent = match parent {
                        Some(i) if !live.is_empty() => Some(live[i % live.len()]),
                        _ => None,
                    };
                    let d = diff(u64::from(d));
                    let size = u64::from(d.0.as_bytes()[0]);
                    let h = store.register_metadata(d, size, parent.as_ref()).expect("register");
                    let chain = parent.map_or(ChainId(d.0), |p| p.then(&d));
                    prop_assert_eq!(*h.chain_id(), chain);
                    model.layers.entry(chain).or_insert((parent, size));
                    model.handles.insert(h.token(), chain);
                    issued.push(h);
                }
                Op::Get { idx } => {
                    let live: Vec<ChainId> = model.layers.keys().copied().collect();
                    if live.is_empty() {
                        continue;
                    }
                    let c = live[idx % live.len()];
                    let h = store.get(&c).expect("get");
                    model.handles.insert(h.token(), c);
                    issued.push(h);
                }
                Op::Release { idx } => {
                    if issued.is_empty() {
                        continue;
                    }
                    let h = &issued[idx % issued.len()];
                    let result = store.release(h);
                    if model.handles.remove(&h.token()).is_some() {
                        let expected = model.cascade(*h.chain_id());
                        let deleted: Vec<ChainId> =
                            result.expect("release").into_iter().map(|m| m.chain_id).collect();
                        prop_assert_eq!(deleted, expected);
                    } else {
                        prop_assert!(matches!(result, Err(ReleaseError::NotRetained(_))));
                    }
                }
                Op::Reopen => {
                    drop(store);
                    let (s, outcome) = reopen(&root);
                    store = s;
                    prop_assert_eq!(outcome.restored, model.layers.len());
                    prop_assert!(outcome.skipped.is_empty());
                    model.handles.clear();
                }
            }
            check(&store, &model);
        }
    }
}
