//! Opening a store from the records of an earlier restore gives what restoring the layerdb
//! again gives.

use crate::common;

use std::fs;
use std::path::Path;

use common::{DATA_ROOTS, diff, extract, fresh};
use layer_store::{
    ChainId, DiffId, LayerRecord, LayerStore, LeftoverKind, NullDriver, RestoreReport, SkipReason,
};

fn records(store: &LayerStore) -> Vec<LayerRecord> {
    let mut out = Vec::new();
    store.for_each_record(|r| out.push(r));
    out
}

/// Restores `root` read-only, then opens it again from the records and leftovers of that
/// restore, and checks that both give the same layers, references and report.
fn same_both_ways(root: &Path) -> (LayerStore, RestoreReport) {
    let (read, report) = LayerStore::open_read_only(root, Box::new(NullDriver)).expect("open");
    let recs = records(&read);
    assert_eq!(recs.len(), read.len());
    // Parents come first.
    for (i, r) in recs.iter().enumerate() {
        if let Some(p) = &r.parent {
            assert!(recs[..i].iter().any(|q| q.chain_id == *p), "{r:?}");
        }
    }
    let (again, report2) = LayerStore::open_read_only_from_records(
        root,
        Box::new(NullDriver),
        recs,
        report.leftovers.clone(),
    )
    .expect("open from records");
    assert_eq!(report2, report);
    assert_eq!(again.layers(), read.layers());
    for l in read.layers() {
        assert_eq!(again.ref_count(&l.chain_id), read.ref_count(&l.chain_id));
    }
    (again, report2)
}

#[test]
fn fixtures_open_from_records() {
    for name in DATA_ROOTS {
        let (_tmp, layerdb) = extract(name);
        let (store, report) = same_both_ways(&layerdb);
        assert!(report.is_clean(), "{name}: {report}");
        assert!(!store.is_empty() || name.contains("full-rm"), "{name}");
    }
}

/// sha512 layers, text cache IDs, `-removing` and staging leftovers, and mounts: the
/// leftovers come back from the report, the staging ones and the mounts are read again.
#[test]
fn leftovers_mounts_and_wide_ids_open_from_records() {
    let (tmp, store) = fresh();
    let h1 = store.register_metadata(diff(1), 1, None).expect("1");
    let h2 = store
        .register_metadata(diff(2), 2, Some(h1.chain_id()))
        .expect("2");
    let root = store.root().to_owned();
    drop(store);
    let wide = ChainId(digest_set::Digest::sha512(b"wide"));
    let dir = root.join("sha512").join(wide.0.hex());
    fs::create_dir_all(&dir).expect("mkdir");
    fs::write(dir.join("diff"), DiffId(wide.0).to_string()).expect("diff");
    fs::write(dir.join("size"), "7").expect("size");
    fs::write(dir.join("cache-id"), "my-layer_1.2").expect("cache-id");
    fs::write(dir.join("parent"), h2.chain_id().to_string()).expect("parent");
    let removing = root.join(format!(
        "sha256/{}-{}-removing",
        "ab".repeat(32),
        "cd".repeat(32)
    ));
    fs::create_dir(&removing).expect("removing");
    fs::create_dir(root.join("tmp/write-set-abc")).expect("staging");
    let m = root.join("mounts/abc");
    fs::create_dir_all(&m).expect("mount");
    fs::write(m.join("parent"), wide.to_string()).expect("write");
    fs::write(m.join("mount-id"), "ef".repeat(32)).expect("write");
    let (store, report) = same_both_ways(&root);
    assert_eq!(report.restored, 3);
    assert_eq!(report.mounts, 1);
    assert_eq!(report.leftovers.len(), 2);
    assert_eq!(store.ref_count(&wide), Some(1));
    assert_eq!(store.layer(&wide).map(|l| (l.size, l.depth)), Some((10, 3)));

    // Staging leftovers and mounts are read at open, not taken from the records.
    let (read, first) = LayerStore::open_read_only(&root, Box::new(NullDriver)).expect("open");
    fs::remove_dir(root.join("tmp/write-set-abc")).expect("rmdir");
    fs::remove_dir_all(&m).expect("rm mount");
    let (again, report) = LayerStore::open_read_only_from_records(
        &root,
        Box::new(NullDriver),
        records(&read),
        first.leftovers.clone(),
    )
    .expect("open");
    assert_eq!(report.mounts, 0);
    assert_eq!(
        report.leftovers.iter().map(|l| l.kind).collect::<Vec<_>>(),
        [LeftoverKind::Removing]
    );
    assert_eq!(again.ref_count(&wide), Some(0));
    drop(tmp);
}

/// A record whose parent did not come before it is skipped, and so are its children.
#[test]
fn records_out_of_order_are_skipped() {
    let (_tmp, store) = fresh();
    let h1 = store.register_metadata(diff(1), 1, None).expect("1");
    let h2 = store
        .register_metadata(diff(2), 2, Some(h1.chain_id()))
        .expect("2");
    let h3 = store
        .register_metadata(diff(3), 3, Some(h2.chain_id()))
        .expect("3");
    let root = store.root().to_owned();
    let mut recs = records(&store);
    recs.reverse();
    let (again, report) =
        LayerStore::open_read_only_from_records(&root, Box::new(NullDriver), recs, Vec::new())
            .expect("open");
    assert_eq!(again.len(), 1);
    assert!(again.contains(h1.chain_id()));
    let reasons: Vec<_> = report.skipped.iter().map(|s| s.chain_id).collect();
    assert_eq!(reasons.len(), 2);
    assert!(reasons.contains(h2.chain_id()) && reasons.contains(h3.chain_id()));
    assert!(
        report
            .skipped
            .iter()
            .all(|s| matches!(s.reason, SkipReason::MissingParent { .. }))
    );
}

/// A tree of layers (chains branching at several depths, several bases) comes back whole:
/// records come depth first, each parent before its descendants.
#[test]
fn branching_chains_open_from_records() {
    let (_tmp, store) = fresh();
    let mut handles = Vec::new();
    for base in 0..3u64 {
        let b = store
            .register_metadata(diff(100 + base), base, None)
            .expect("base");
        for branch in 0..3u64 {
            let mut parent = *b.chain_id();
            for depth in 0..=branch {
                let h = store
                    .register_metadata(diff(1000 * base + 10 * branch + depth), 7, Some(&parent))
                    .expect("layer");
                parent = *h.chain_id();
                handles.push(h);
            }
        }
        handles.push(b);
    }
    let root = store.root().to_owned();
    drop(store);
    let (again, report) = same_both_ways(&root);
    assert!(report.is_clean(), "{report}");
    assert_eq!(again.len(), 3 + 3 * 6);
}
