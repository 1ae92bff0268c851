//! The store keeps configs out of memory: `get` shares an image a caller holds, reads the disk
//! again otherwise (and reports a config removed or damaged since), and `load` + `attach`
//! restore exactly what `open` restores.

use crate::common;

use std::sync::Arc;

use common::{CountingLayers, chain, config, diff};
use image_store::{GetError, ImageId, ImageStore, SkipReason};
use imagedb_fs::{FsBackend, StoreBackend};

#[test]
fn get_shares_a_held_image_and_reads_the_disk_otherwise() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = [diff(1)];
    let layers = CountingLayers::new();
    layers.add(chain(&d));
    let backend = FsBackend::open(dir.path().join("imagedb")).expect("backend");
    let (store, _) = ImageStore::open(backend, layers).expect("open");
    let bytes = config("abc", &d);
    let id = store.create(&bytes).expect("create");
    let path = dir.path().join("imagedb/content/sha256").join(id.hex());
    let moved = dir.path().join("moved");

    let first = store.get(&id).expect("get");
    assert_eq!(first.raw_json(), &bytes[..]);
    assert!(Arc::ptr_eq(&first, &store.get(&id).expect("get")));
    // While a caller holds the image, `get` does not read the disk.
    std::fs::rename(&path, &moved).expect("move config away");
    assert!(Arc::ptr_eq(&first, &store.get(&id).expect("held")));
    drop(first);

    // Released: the config is read again, and its absence is an error naming it.
    let err = store.get(&id).expect_err("config gone");
    assert!(
        matches!(err, GetError::Read { id: e, .. } if e == id),
        "{err:?}"
    );
    assert!(err.to_string().contains(&id.hex()), "{err}");
    // The store still knows the image: listing works from memory.
    let info = store.info(&id).expect("info");
    assert_eq!(info.chain_id, Some(chain(&d)));
    assert_eq!(store.map()[&id], info);

    std::fs::rename(&moved, &path).expect("move config back");
    assert_eq!(store.get(&id).expect("back").raw_json(), &bytes[..]);

    // Damaged on disk (same length, other bytes): verification fails.
    std::fs::write(&path, vec![b' '; bytes.len()]).expect("damage");
    assert!(matches!(store.get(&id), Err(GetError::Read { .. })));

    let unknown = ImageId::of_config(b"nope");
    assert!(matches!(store.get(&unknown), Err(GetError::NotFound(_))));
    assert_eq!(
        store.get(&unknown).expect_err("unknown").to_string(),
        format!("No such image: {unknown}")
    );
}

#[test]
fn load_and_attach_restore_what_open_restores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let imagedb = dir.path().join("imagedb");
    let backend = FsBackend::open(&imagedb).expect("backend");
    let (d1, d2) = ([diff(1)], [diff(1), diff(2)]);
    let base = backend.set(&config("base", &d1)).expect("set");
    let child = backend.set(&config("child", &d2)).expect("set");
    backend
        .set_metadata(&child, "parent", base.to_string().as_bytes())
        .expect("parent");
    let no_layer = backend.set(&config("no layer", &[diff(9)])).expect("set");
    let invalid = backend.set(b"{\"rootfs\": 3}").expect("set");
    let empty = backend
        .set(br#"{"rootfs":{"type":"layers"}}"#)
        .expect("set");
    let layers = || {
        let l = CountingLayers::new();
        l.add(chain(&d1));
        l.add(chain(&d2));
        l
    };

    let (opened, open_report) =
        ImageStore::open(FsBackend::open(&imagedb).expect("fs"), layers()).expect("open");
    let (loaded, attached_layers) = rayon::join(
        || ImageStore::load(FsBackend::open(&imagedb).expect("fs")).expect("load"),
        layers,
    );
    // Loading checks configs, not layers: the image whose layer is missing is still there.
    assert_eq!(loaded.len(), 4);
    let (attached, attach_report) = loaded.attach(attached_layers).expect("attach");

    assert_eq!(open_report, attach_report);
    assert_eq!(opened.map(), attached.map());
    assert_eq!(attach_report.restored, 3);
    let skipped: Vec<(ImageId, bool)> = attach_report
        .skipped
        .iter()
        .map(|s| (s.id, matches!(s.reason, SkipReason::LayerMissing(_))))
        .collect();
    let mut expected = vec![(ImageId(no_layer), true), (ImageId(invalid), false)];
    expected.sort();
    assert_eq!(
        skipped, expected,
        "sorted by ID, whatever pass skipped them"
    );
    assert_eq!(attached.children(&ImageId(base)), vec![ImageId(child)]);
    assert_eq!(
        attached.info(&ImageId(empty)).expect("no layers").chain_id,
        None
    );
    // One reference per restored image with layers, nothing for the skipped one.
    assert_eq!(attached.layers().held()[&chain(&d1)], 1);
    assert_eq!(attached.layers().held()[&chain(&d2)], 1);
}

#[test]
fn an_image_whose_layer_is_missing_leaves_the_graph_as_if_never_loaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let imagedb = dir.path().join("imagedb");
    let backend = FsBackend::open(&imagedb).expect("backend");
    let (d1, d2, d3) = ([diff(1)], [diff(1), diff(2)], [diff(1), diff(2), diff(3)]);
    let base = ImageId(backend.set(&config("base", &d1)).expect("set"));
    let mid = ImageId(backend.set(&config("mid", &d2)).expect("set"));
    let leaf = ImageId(backend.set(&config("leaf", &d3)).expect("set"));
    for (child, parent) in [(mid, base), (leaf, mid)] {
        backend
            .set_metadata(child.digest(), "parent", parent.to_string().as_bytes())
            .expect("parent");
    }
    // `mid`'s own layer is gone; `leaf`'s chain is there (a layer store keeps a chain's
    // layers only while they are referenced, but a damaged layerdb can look like this).
    let layers = CountingLayers::new();
    layers.add(chain(&d1));
    layers.add(chain(&d3));
    let (store, report) = ImageStore::open(backend, layers).expect("open");

    assert_eq!(report.restored, 2);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].id, mid);
    assert!(matches!(report.skipped[0].reason, SkipReason::LayerMissing(c) if c == chain(&d2)));
    // Only the leaf's link dangles; the skipped image's own link is not reported.
    assert_eq!(report.dangling_parents.len(), 1);
    assert_eq!(report.dangling_parents[0].child, leaf);
    assert_eq!(report.dangling_parents[0].parent, Some(mid));
    assert!(store.children(&base).is_empty());
    assert_eq!(store.get_parent(&leaf).expect("known"), Some(mid));
    let heads: Vec<ImageId> = store.heads().into_keys().collect();
    let mut expected = vec![base, leaf];
    expected.sort();
    assert_eq!(heads, expected);
    assert!(store.search(&mid.hex()).is_err());
    assert_eq!(store.search(&leaf.hex()).expect("leaf"), leaf);
    assert!(!store.layers().held().contains_key(&chain(&d2)));
}

/// `load_records` of what a load found, attached to the same layers, restores what the load
/// restores: images, parents and children (links to images not loaded and to images whose
/// layer is missing included), heads, short IDs, the report and the layer references.
#[test]
fn load_records_restores_what_load_restores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let imagedb = dir.path().join("imagedb");
    let backend = FsBackend::open(&imagedb).expect("backend");
    let d: Vec<[layer_store::DiffId; 1]> = (0..6).map(|n| [diff(n)]).collect();
    let ids: Vec<ImageId> = (0..6)
        .map(|n| ImageId(backend.set(&config(&format!("i{n}"), &d[n])).expect("set")))
        .collect();
    let no_layers = ImageId(
        backend
            .set(br#"{"rootfs":{"type":"layers"},"created":"2020-01-02T03:04:05.6+01:00"}"#)
            .expect("set"),
    );
    let not_stored = ImageId::of_config(b"not stored");
    // 1 -> 0, 2 -> 1, 3 -> (not stored), 4 -> 5 (whose layer is missing).
    for (child, parent) in [(1, ids[0]), (2, ids[1]), (3, not_stored), (4, ids[5])] {
        backend
            .set_metadata(ids[child].digest(), "parent", parent.to_string().as_bytes())
            .expect("parent");
    }
    let layers = || {
        let l = CountingLayers::new();
        for c in &d[..5] {
            l.add(chain(c));
        }
        l
    };
    let loaded = ImageStore::load(&backend).expect("load");
    assert!(loaded.read_cleanly());
    let mut records = Vec::new();
    loaded.for_each_image(|i| records.push(i));
    assert_eq!(records.len(), 7);
    let again = ImageStore::load_records(&backend, records);
    assert!(again.read_cleanly());
    let (a, report_a) = loaded.attach(layers()).expect("attach");
    let (b, report_b) = again.attach(layers()).expect("attach");
    assert_eq!(report_a, report_b);
    assert_eq!(report_a.restored, 6);
    assert_eq!(a.map(), b.map());
    assert_eq!(a.heads(), b.heads());
    for id in ids.iter().chain([&no_layers]) {
        assert_eq!(a.children(id), b.children(id), "{id}");
        assert_eq!(a.search(&id.short()).ok(), b.search(&id.short()).ok());
    }
    assert_eq!(a.layers().held(), b.layers().held());
    let created = b.info(&no_layers).expect("info").created.expect("created");
    assert_eq!(created.offset_secs(), 3600);

    // A config that does not verify: the load did not read cleanly.
    std::fs::write(imagedb.join("content/sha256").join(ids[2].hex()), b"{}").expect("damage");
    let damaged = ImageStore::load(&backend).expect("load");
    assert!(!damaged.read_cleanly());
    // A malformed parent link: not clean either.
    std::fs::write(
        imagedb.join("content/sha256").join(ids[2].hex()),
        config("i2", &d[2]),
    )
    .expect("repair");
    backend
        .set_metadata(ids[3].digest(), "parent", b"not a digest")
        .expect("parent");
    assert!(!ImageStore::load(&backend).expect("load").read_cleanly());
}

/// `read_parent` reads a link as `load` does: none, an image, or what `load` reports.
#[test]
fn read_parent_reads_a_link_as_load_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = FsBackend::open(dir.path().join("imagedb")).expect("backend");
    let d = [diff(1)];
    let a = ImageId(backend.set(&config("a", &d)).expect("set"));
    let b = ImageId(backend.set(&config("b", &d)).expect("set"));
    let c = ImageId(backend.set(&config("c", &d)).expect("set"));
    backend
        .set_metadata(b.digest(), "parent", a.to_string().as_bytes())
        .expect("parent");
    backend
        .set_metadata(c.digest(), "parent", b"sha256:not-hex")
        .expect("parent");
    assert_eq!(ImageStore::read_parent(&backend, &a), Ok(None));
    assert_eq!(ImageStore::read_parent(&backend, &b), Ok(Some(a)));
    let bad = ImageStore::read_parent(&backend, &c).expect_err("malformed");
    let layers = CountingLayers::new();
    layers.add(chain(&d));
    let (_, report) = ImageStore::open(&backend, layers).expect("open");
    assert_eq!(report.dangling_parents, vec![bad]);
}
