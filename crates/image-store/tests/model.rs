//! State-machine property test: random creates, deletes, parent changes and reopens against a
//! simple model, also with I/O faults injected into the backend.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;

use common::{CountingLayers, chain, check_disk, check_invariants, config, diff, snapshot};
use image_store::{ImageId, ImageStore};
use imagedb_fs::{Faults, FaultyBackend, MemBackend, Op as FaultOp, StoreBackend};
use layer_store::DiffId;
use proptest::prelude::*;

const N: usize = 8;

#[derive(Debug, Clone)]
enum Op {
    Create(usize),
    Delete(usize),
    SetParent(usize, usize),
    Reopen,
    /// Make the n-th operation of fault kind k (index into the run's kinds) from now fail.
    Fault(usize, u64),
}

fn op(faults: bool) -> BoxedStrategy<Op> {
    let base = prop_oneof![
        4 => (0..N).prop_map(Op::Create),
        2 => (0..N).prop_map(Op::Delete),
        3 => (0..N, 0..N).prop_map(|(a, b)| Op::SetParent(a, b)),
        1 => Just(Op::Reopen),
    ];
    if faults {
        prop_oneof![4 => base, 1 => (0..5usize, 1..4u64).prop_map(|(k, n)| Op::Fault(k, n))].boxed()
    } else {
        base.boxed()
    }
}

/// The diff IDs of config `i`: some without layers, some sharing a chain, one whose layer is
/// never in the layer store.
fn diffs(i: usize) -> Vec<DiffId> {
    match i % 8 {
        0 | 4 => vec![],
        1 | 6 => vec![diff(1)],
        2 | 3 => vec![diff(1), diff(2)],
        5 => vec![diff(99)],
        _ => vec![diff(1), diff(2), diff(3)],
    }
}

fn cfg(i: usize) -> Vec<u8> {
    config(&format!("image {i}"), &diffs(i))
}

fn id(i: usize) -> ImageId {
    ImageId::of_config(&cfg(i))
}

fn layers() -> CountingLayers {
    let l = CountingLayers::new();
    for i in 0..N {
        let d = diffs(i);
        if !d.is_empty() && i % 8 != 5 {
            l.add(chain(&d));
        }
    }
    l
}

#[derive(Debug, Default, Clone, PartialEq)]
struct Model {
    /// Live images and their parent.
    live: BTreeMap<usize, Option<usize>>,
}

impl Model {
    fn is_ancestor(&self, a: usize, mut of: usize) -> bool {
        loop {
            if of == a {
                return true;
            }
            match self.live.get(&of).copied().flatten() {
                Some(p) => of = p,
                None => return false,
            }
        }
    }
}

fn reopen<B: StoreBackend>(store: ImageStore<B, CountingLayers>) -> ImageStore<B, CountingLayers> {
    let before = snapshot(&store);
    let (backend, layers) = store.into_parts();
    layers.restart();
    let (store, report) = ImageStore::open(backend, layers).expect("reopen");
    assert!(report.skipped.is_empty(), "{report:?}");
    assert_eq!(
        snapshot(&store),
        before,
        "reopen gives the same images and graph"
    );
    store
}

fn run<B: StoreBackend>(backend: B, ops: &[Op], faults: Option<(&Faults, &[FaultOp])>) {
    let (mut store, _) = ImageStore::open(backend, layers()).expect("open");
    let mut model = Model::default();
    for op in ops {
        match *op {
            Op::Create(i) => {
                let r = store.create(&cfg(i));
                if faults.is_none() {
                    if i % 8 == 5 {
                        assert!(r.is_err());
                    } else {
                        assert_eq!(r.expect("create"), id(i));
                        model.live.entry(i).or_insert(None);
                    }
                }
            }
            Op::Delete(i) => {
                let r = store.delete(&id(i));
                if faults.is_none() {
                    if model.live.remove(&i).is_some() {
                        r.expect("delete");
                        for p in model.live.values_mut() {
                            if *p == Some(i) {
                                *p = None;
                            }
                        }
                    } else {
                        assert!(r.is_err());
                    }
                }
            }
            Op::SetParent(c, p) => {
                let r = store.set_parent(&id(c), &id(p));
                if faults.is_none() {
                    let ok = model.live.contains_key(&c)
                        && model.live.contains_key(&p)
                        && !model.is_ancestor(c, p);
                    assert_eq!(r.is_ok(), ok, "set_parent({c},{p}): {r:?}");
                    if ok {
                        model.live.insert(c, Some(p));
                    }
                }
            }
            Op::Reopen => store = reopen(store),
            Op::Fault(k, n) => {
                if let Some((f, kinds)) = faults {
                    f.fail_nth(kinds[k % kinds.len()], n, ErrorKind::StorageFull);
                }
            }
        }
        check_invariants(&store);
        check_disk(&store);
        if faults.is_none() {
            let want_ids: BTreeSet<ImageId> = model.live.keys().map(|i| id(*i)).collect();
            let want_parents: BTreeMap<ImageId, Option<ImageId>> = model
                .live
                .iter()
                .map(|(c, p)| (id(*c), p.map(id)))
                .collect();
            assert_eq!(snapshot(&store), (want_ids, want_parents), "store vs model");
        }
    }
    if let Some((f, _)) = faults {
        f.clear();
    }
    reopen(store);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn store_follows_the_model(ops in proptest::collection::vec(op(false), 1..40)) {
        run(MemBackend::new(), &ops, None);
    }

    #[test]
    fn faults_keep_memory_and_disk_in_step(ops in proptest::collection::vec(op(true), 1..40)) {
        let faults = Faults::new();
        let backend = FaultyBackend::new(MemBackend::new(), faults.clone());
        run(backend, &ops, Some((&faults, &[FaultOp::Mutation])));
    }

    #[test]
    fn filesystem_faults_keep_memory_and_disk_in_step(
        ops in proptest::collection::vec(op(true), 1..30)
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let faults = Faults::new();
        let backend = imagedb_fs::FsBackend::open_with_faults(dir.path().join("imagedb"), faults.clone())
            .expect("open");
        run(backend, &ops, Some((&faults, FS_FAULTS)));
    }
}

/// Filesystem-level faults: short writes, failed fsyncs, renames, directory syncs, removals.
const FS_FAULTS: &[FaultOp] = &[
    FaultOp::Write,
    FaultOp::Sync,
    FaultOp::Rename,
    FaultOp::SyncDir,
    FaultOp::Remove,
];

#[test]
fn model_over_the_filesystem_backend() {
    // One fixed long sequence over real files.
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = imagedb_fs::FsBackend::open(dir.path().join("imagedb")).expect("open");
    let mut ops = Vec::new();
    for k in 0..60usize {
        ops.push(match k % 6 {
            0 | 1 => Op::Create((k * 7) % N),
            2 => Op::SetParent((k * 3) % N, (k * 5) % N),
            3 => Op::SetParent((k * 5) % N, (k * 3 + 1) % N),
            4 => Op::Delete((k * 11) % N),
            _ => Op::Reopen,
        });
    }
    run(backend, &ops, None);
}

#[test]
fn fixed_sequence_with_faults_injects_and_stays_consistent() {
    let faults = Faults::new();
    let backend = FaultyBackend::new(MemBackend::new(), faults.clone());
    let mut ops = Vec::new();
    for k in 0..80usize {
        ops.push(match k % 8 {
            0 | 1 | 5 => Op::Create((k * 7) % N),
            2 => Op::SetParent((k * 3) % N, (k * 5) % N),
            3 => Op::Fault(0, 1 + (k as u64 % 3)),
            4 => Op::SetParent((k * 5) % N, (k * 3 + 1) % N),
            6 => Op::Delete((k * 11) % N),
            _ => Op::Reopen,
        });
    }
    run(backend, &ops, Some((&faults, &[FaultOp::Mutation])));
    assert!(faults.injected() > 0);
}
