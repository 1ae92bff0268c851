//! moby's store_test.go cases, plus this store's own semantics, over the in-memory backend.

use crate::common;

use std::io::ErrorKind;

use common::{CountingLayers, chain, config, diff};
use digest_set::Digest;
use image_store::{
    CreateError, DeleteError, ImageId, ImageStore, InvalidImage, SearchError, SetParentError,
    SkipReason,
};
use imagedb_fs::{Faults, FaultyBackend, MemBackend, Op, StoreBackend};

fn store_with(layers: CountingLayers) -> ImageStore<MemBackend, CountingLayers> {
    ImageStore::open(MemBackend::new(), layers).expect("open").0
}

fn layers_for(diffs: &[&[layer_store::DiffId]]) -> CountingLayers {
    let l = CountingLayers::new();
    for d in diffs {
        l.add(chain(d));
    }
    l
}

#[test]
fn create_requires_rootfs() {
    let store = store_with(CountingLayers::new());
    let err = store.create(b"{}").expect_err("no rootfs");
    assert_eq!(err.to_string(), "invalid image JSON, no RootFS key");
    assert!(matches!(err, CreateError::Invalid(InvalidImage::NoRootFs)));
    assert!(matches!(
        store.create(b"invalid"),
        Err(CreateError::Invalid(InvalidImage::Json(_)))
    ));
}

#[test]
fn restore_moby_case() {
    let d = [diff(1)];
    let backend = MemBackend::new();
    let id1 = backend.set(&config("abc", &d)).expect("set");
    let bad = backend.set(b"invalid").expect("set");
    let id2 = backend.set(&config("def", &d)).expect("set");
    backend
        .set_metadata(&id2, "parent", id1.to_string().as_bytes())
        .expect("meta");
    let (store, report) = ImageStore::open(backend, layers_for(&[&d])).expect("open");
    assert_eq!(report.restored, 2);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].id, ImageId(bad));
    assert!(matches!(report.skipped[0].reason, SkipReason::Invalid(_)));
    assert!(
        report.skipped[0]
            .reason
            .to_string()
            .starts_with("invalid image")
    );
    assert!(report.dangling_parents.is_empty());

    let (id1, id2) = (ImageId(id1), ImageId(id2));
    let map = store.map();
    assert_eq!(map.len(), 2);
    assert_eq!(map[&id1].id, id1);
    assert_eq!(map[&id2].parent, Some(id1));
    assert_eq!(store.get(&id1).expect("get").config().comment, "abc");
    assert_eq!(store.get(&id2).expect("get").config().comment, "def");
    assert_eq!(store.get(&id2).expect("get").id(), id2);
    assert_eq!(store.get_parent(&id1).expect("known"), None);
    assert_eq!(store.get_parent(&id2).expect("known"), Some(id1));
    assert_eq!(store.children(&id1), vec![id2]);
    assert_eq!(store.heads().len(), 1);
    assert!(store.heads().contains_key(&id2));

    let full = id1.to_string();
    assert_eq!(store.search(&full[..10]).expect("sha256:+3 hex"), id1);
    let hex = id1.hex();
    assert_eq!(store.search(&hex[..6]).expect("6 hex"), id1);
    let err = store.search(&hex[1..6]).expect_err("not a prefix");
    assert!(matches!(err, SearchError::NotFound { .. }));
    assert!(err.to_string().contains(&hex[1..6]));
    assert_eq!(err.to_string(), format!("No such image: {}", &hex[1..6]));
}

#[test]
fn add_delete_and_parent_links() {
    let d = [diff(1)];
    let layers = layers_for(&[&d]);
    let store = store_with(layers);
    let id1 = store.create(&config("abc", &d)).expect("create");
    assert_eq!(id1, ImageId::of_config(&config("abc", &d)));
    let id2 = store.create(&config("def", &d)).expect("create");
    store.set_parent(&id2, &id1).expect("set parent");
    assert_eq!(store.get_parent(&id2).expect("known"), Some(id1));
    assert_eq!(store.layers().held()[&chain(&d)], 2);

    let deleted = store.delete(&id1).expect("delete");
    assert!(deleted.is_empty());
    assert!(store.get(&id1).is_err());
    assert!(store.backend().get(id1.digest()).is_err());
    assert_eq!(store.get(&id2).expect("get").config().comment, "def");
    assert_eq!(store.get_parent(&id2).expect("known"), None);
    assert_eq!(
        store
            .backend()
            .get_metadata(id2.digest(), "parent")
            .expect("read"),
        None
    );
    assert_eq!(store.layers().held()[&chain(&d)], 1);
}

#[test]
fn search_after_delete_and_unknown() {
    let d = [diff(1)];
    let store = store_with(layers_for(&[&d]));
    let id = store.create(&config("abc", &d)).expect("create");
    let term = &id.to_string()[..15];
    assert_eq!(store.search(term).expect("found"), id);
    store.delete(&id).expect("delete");
    let err = store.search(term).expect_err("gone");
    assert!(err.to_string().contains("No such image"));
    let unknown = ImageId(Digest::sha256(b"i_dont_exists"));
    assert!(matches!(
        store.delete(&unknown),
        Err(DeleteError::NotFound(_))
    ));
}

#[test]
fn ambiguous_search_names_candidates() {
    let store = store_with(CountingLayers::new());
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(
            store
                .create(&config(&format!("img {i}"), &[]))
                .expect("create"),
        );
    }
    // Some pair among 40 shares its first hex digit.
    let first = ids
        .iter()
        .find(|a| ids.iter().filter(|b| b.hex()[..1] == a.hex()[..1]).count() > 1)
        .expect("pigeonhole");
    let term = &first.hex()[..1];
    match store.search(term) {
        Err(SearchError::Ambiguous {
            count, candidates, ..
        }) => {
            assert!(count >= 2);
            assert!(candidates.contains(first) || count > candidates.len());
            let msg = store.search(term).expect_err("ambiguous").to_string();
            assert!(msg.contains(&candidates[0].to_string()), "{msg}");
        }
        other => panic!("expected ambiguous, got {other:?}"),
    }
    assert!(matches!(
        store.search(""),
        Err(SearchError::InvalidTerm { .. })
    ));
}

#[test]
fn parent_reset() {
    let store = store_with(CountingLayers::new());
    let a = store.create(&config("a", &[])).expect("a");
    let b = store.create(&config("b", &[])).expect("b");
    let c = store.create(&config("c", &[])).expect("c");
    store.set_parent(&a, &b).expect("a->b");
    store.set_parent(&a, &c).expect("a->c");
    assert!(store.children(&b).is_empty());
    assert_eq!(store.children(&c), vec![a]);
    assert_eq!(store.heads().len(), 2);
}

#[test]
fn set_parent_refusals() {
    let store = store_with(CountingLayers::new());
    let a = store.create(&config("a", &[])).expect("a");
    let b = store.create(&config("b", &[])).expect("b");
    let c = store.create(&config("c", &[])).expect("c");
    let unknown = ImageId(Digest::sha256(b"nope"));
    assert!(matches!(
        store.set_parent(&a, &unknown),
        Err(SetParentError::UnknownParent(_))
    ));
    assert!(matches!(
        store.set_parent(&unknown, &a),
        Err(SetParentError::UnknownImage(_))
    ));
    assert!(matches!(
        store.set_parent(&a, &a),
        Err(SetParentError::Cycle { .. })
    ));
    store.set_parent(&b, &a).expect("b->a");
    store.set_parent(&c, &b).expect("c->b");
    assert!(matches!(
        store.set_parent(&a, &c),
        Err(SetParentError::Cycle { .. })
    ));
    assert_eq!(store.get_parent(&a).expect("known"), None);
    assert_eq!(
        store
            .backend()
            .get_metadata(a.digest(), "parent")
            .expect("read"),
        None
    );
}

#[test]
fn last_updated_and_built_locally() {
    let store = store_with(CountingLayers::new());
    let id = store.create(&config("a", &[])).expect("a");
    assert_eq!(store.get_last_updated(&id).expect("read"), None);
    store.set_last_updated(&id).expect("set");
    let t = store.get_last_updated(&id).expect("read").expect("set");
    assert!(t.unix_secs() > 1_600_000_000);
    let raw = store
        .backend()
        .get_metadata(id.digest(), "lastUpdated")
        .expect("read")
        .expect("set");
    let text = String::from_utf8(raw).expect("utf8");
    assert!(text.ends_with('Z') && !text.ends_with("0Z"), "{text}");
    assert_eq!(text, t.to_string());

    assert!(!store.is_built_locally(&id).expect("read"));
    store.set_built_locally(&id).expect("set");
    assert!(store.is_built_locally(&id).expect("read"));
    assert_eq!(
        store
            .backend()
            .get_metadata(id.digest(), "builtLocally")
            .expect("read"),
        Some(vec![1])
    );
    let unknown = ImageId(Digest::sha256(b"nope"));
    assert!(store.set_last_updated(&unknown).is_err());
}

#[test]
fn store_len() {
    let store = store_with(CountingLayers::new());
    for i in 0..10 {
        store.create(&config(&format!("{i}"), &[])).expect("create");
    }
    assert_eq!(store.len(), 10);
    assert_eq!(store.map().len(), 10);
}

#[test]
fn create_checks_layer_first_and_is_idempotent() {
    let d = [diff(1), diff(2)];
    let store = store_with(CountingLayers::new());
    let cfg = config("x", &d);
    let err = store.create(&cfg).expect_err("layer missing");
    assert!(matches!(err, CreateError::Layer { .. }));
    assert!(store.backend().is_empty(), "no orphan config written");

    store.layers().add(chain(&d));
    let id = store.create(&cfg).expect("create");
    assert_eq!(store.create(&cfg).expect("again"), id);
    assert_eq!(store.layers().held()[&chain(&d)], 1);
    assert_eq!(store.len(), 1);
    store.delete(&id).expect("delete");
    assert!(store.layers().held().is_empty());
}

#[test]
fn failed_write_releases_the_layer() {
    let d = [diff(1)];
    let faults = Faults::new();
    let backend = FaultyBackend::new(MemBackend::new(), faults.clone());
    let (store, _) = ImageStore::open(backend, layers_for(&[&d])).expect("open");
    faults.fail_nth(Op::Set, 1, ErrorKind::StorageFull);
    assert!(matches!(
        store.create(&config("x", &d)),
        Err(CreateError::Write { .. })
    ));
    assert!(store.layers().held().is_empty());
    assert!(store.is_empty());
    assert!(store.backend().inner().is_empty());
}

#[test]
fn restore_skips_missing_layers_and_holds_none_for_empty_rootfs() {
    let d = [diff(1)];
    let backend = MemBackend::new();
    let with_layer = ImageId(backend.set(&config("a", &d)).expect("set"));
    let no_layers = ImageId(backend.set(&config("b", &[])).expect("set"));
    let layers = CountingLayers::new();
    let (store, report) = ImageStore::open(backend, layers).expect("open");
    assert_eq!(report.restored, 1);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].id, with_layer);
    assert_eq!(
        report.skipped[0].reason,
        SkipReason::LayerMissing(chain(&d))
    );
    assert!(store.contains(&no_layers));
    assert!(store.layers().held().is_empty());
    // The skipped config stays on disk.
    assert!(store.backend().get(with_layer.digest()).is_ok());
}

#[test]
fn restore_reports_corrupt_content() {
    let backend = MemBackend::new();
    let good = config("a", &[]);
    let id = Digest::sha256(&good);
    backend.insert_unchecked(id, b"{\"rootfs\":{}}".to_vec());
    let (store, report) = ImageStore::open(backend, CountingLayers::new()).expect("open");
    assert!(store.is_empty());
    assert!(matches!(
        report.skipped[0].reason,
        SkipReason::Unreadable(_)
    ));
}

#[test]
fn dangling_parent_is_kept_and_relinked() {
    let backend = MemBackend::new();
    let parent_cfg = config("parent", &[]);
    let parent = ImageId::of_config(&parent_cfg);
    let child = ImageId(backend.set(&config("child", &[])).expect("set"));
    backend
        .set_metadata(child.digest(), "parent", parent.to_string().as_bytes())
        .expect("meta");
    let (store, report) = ImageStore::open(backend, CountingLayers::new()).expect("open");
    assert_eq!(report.dangling_parents.len(), 1);
    assert_eq!(report.dangling_parents[0].child, child);
    assert_eq!(report.dangling_parents[0].parent, Some(parent));
    assert_eq!(store.get_parent(&child).expect("known"), Some(parent));
    assert_eq!(store.heads().len(), 1);
    // The link comes alive when the parent appears, as a restore would see it.
    assert_eq!(store.create(&parent_cfg).expect("create"), parent);
    assert_eq!(store.children(&parent), vec![child]);
    // And goes when the parent is deleted.
    store.delete(&parent).expect("delete");
    assert_eq!(store.get_parent(&child).expect("known"), None);
}

#[test]
fn failed_delete_keeps_memory_and_disk_in_step() {
    let faults = Faults::new();
    let backend = FaultyBackend::new(MemBackend::new(), faults.clone());
    let (store, _) = ImageStore::open(backend, CountingLayers::new()).expect("open");
    let p = store.create(&config("p", &[])).expect("p");
    let c1 = store.create(&config("c1", &[])).expect("c1");
    let c2 = store.create(&config("c2", &[])).expect("c2");
    store.set_parent(&c1, &p).expect("link");
    store.set_parent(&c2, &p).expect("link");
    faults.fail_nth(Op::DeleteMetadata, 2, ErrorKind::PermissionDenied);
    assert!(matches!(store.delete(&p), Err(DeleteError::Backend { .. })));
    assert!(store.contains(&p));
    // One child was unlinked on disk before the failure; memory says the same.
    let on_disk: Vec<_> = [c1, c2]
        .iter()
        .filter(|c| {
            store
                .backend()
                .get_metadata(c.digest(), "parent")
                .expect("read")
                .is_some()
        })
        .copied()
        .collect();
    assert_eq!(store.children(&p), on_disk);
    assert_eq!(on_disk.len(), 1);
    faults.fail_nth(Op::Delete, 1, ErrorKind::PermissionDenied);
    assert!(store.delete(&p).is_err());
    assert!(store.contains(&p));
    store.delete(&p).expect("delete");
    assert!(store.heads().len() == 2);
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<ImageStore<MemBackend, CountingLayers>>();
}

#[test]
fn failed_directory_sync_leaves_memory_matching_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let faults = Faults::new();
    let backend =
        imagedb_fs::FsBackend::open_with_faults(dir.path().join("imagedb"), faults.clone())
            .expect("open");
    let (store, _) = ImageStore::open(backend, CountingLayers::new()).expect("open");
    let content = dir.path().join("imagedb/content/sha256");
    let meta = dir.path().join("imagedb/metadata/sha256");

    // create: the rename happened, the directory sync failed.
    faults.fail_nth(Op::SyncDir, 1, ErrorKind::Other);
    let cfg = config("a", &[]);
    let a = ImageId::of_config(&cfg);
    let r = store.create(&cfg);
    assert!(matches!(r, Err(CreateError::Write { .. })), "{r:?}");
    assert_eq!(store.contains(&a), content.join(a.hex()).exists(), "{r:?}");
    let a = store.create(&cfg).expect("retry");
    let b = store.create(&config("b", &[])).expect("b");

    // set_parent: the link is written, the directory sync fails.
    faults.fail_nth(Op::SyncDir, 1, ErrorKind::Other);
    let r = store.set_parent(&b, &a);
    assert!(r.is_err());
    let on_disk = meta.join(b.hex()).join("parent").exists();
    assert_eq!(
        store.get_parent(&b).expect("known").is_some(),
        on_disk,
        "{r:?}"
    );
    assert_eq!(store.children(&a).len(), usize::from(on_disk));
    store.set_parent(&b, &a).expect("retry");

    // delete: unlinking the child is removed, the directory sync fails.
    faults.fail_nth(Op::SyncDir, 1, ErrorKind::Other);
    let r = store.delete(&a);
    assert!(r.is_err());
    let linked = meta.join(b.hex()).join("parent").exists();
    assert_eq!(
        store.get_parent(&b).expect("known").is_some(),
        linked,
        "{r:?}"
    );
    assert_eq!(store.contains(&a), content.join(a.hex()).exists());

    // delete: the config is removed, the directory sync fails.
    if store.contains(&a) {
        faults.clear();
        faults.fail_nth(Op::SyncDir, 1, ErrorKind::Other);
        let r = store.delete(&a);
        assert_eq!(store.contains(&a), content.join(a.hex()).exists(), "{r:?}");
    }
    assert!(faults.injected() >= 3);
}

#[test]
fn cycles_on_disk_restore_and_can_be_deleted() {
    // moby never refused cycles, so a disk may hold them.
    let backend = MemBackend::new();
    let a = ImageId(backend.set(&config("a", &[])).expect("a"));
    let b = ImageId(backend.set(&config("b", &[])).expect("b"));
    let c = ImageId(backend.set(&config("c", &[])).expect("c"));
    for (child, parent) in [(a, b), (b, a), (c, c)] {
        backend
            .set_metadata(child.digest(), "parent", parent.to_string().as_bytes())
            .expect("meta");
    }
    let (store, report) = ImageStore::open(backend, CountingLayers::new()).expect("open");
    assert_eq!(report.restored, 3);
    common::check_invariants(&store);
    common::check_disk(&store);
    assert!(store.heads().is_empty());
    // No image of a loop depends on another.
    for id in [a, b, c] {
        assert_eq!(store.children(&id).len(), 1, "{id}");
        assert!(store.dependent_children(&id).is_empty(), "{id}");
    }
    assert!(matches!(
        store.set_parent(&c, &a),
        Ok(()) | Err(SetParentError::Cycle { .. })
    ));
    common::check_invariants(&store);
    store.delete(&a).expect("delete a");
    store.delete(&c).expect("delete c");
    common::check_invariants(&store);
    common::check_disk(&store);
    assert_eq!(store.heads().len(), 1);
}

#[test]
fn restore_skips_configs_nested_deeper_than_they_decode() {
    // An unknown key nested 200 deep: Go (dockerd) would load it; serde_json cannot decode it
    // into the model, so restore skips it with the reason instead of showing defaults.
    let backend = MemBackend::new();
    let deep = format!(
        r#"{{"comment":"deep","rootfs":{{"type":"layers","diff_ids":[]}},"x":{}{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let ok = format!(
        r#"{{"comment":"ok","rootfs":{{"type":"layers","diff_ids":[]}},"x":{}{}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    let deep_id = ImageId(backend.set(deep.as_bytes()).expect("set"));
    let ok_id = ImageId(backend.set(ok.as_bytes()).expect("set"));
    let (store, report) = ImageStore::open(backend, CountingLayers::new()).expect("open");
    assert_eq!(report.restored, 1);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].id, deep_id);
    assert!(
        matches!(
            &report.skipped[0].reason,
            SkipReason::Invalid(InvalidImage::TooDeep(_))
        ),
        "{:?}",
        report.skipped[0].reason
    );
    assert!(
        report.skipped[0]
            .reason
            .to_string()
            .contains("nested deeper than 128 levels"),
        "{}",
        report.skipped[0].reason
    );
    assert!(!store.contains(&deep_id));
    let img = store.get(&ok_id).expect("restored");
    assert_eq!(img.config().comment, "ok");
    assert!(img.config().extra.contains_key("x"));
}

#[test]
fn dependent_children_leave_out_a_parent_loop_only() {
    // a -> b -> c -> a loop, and d a child of a outside it.
    let backend = MemBackend::new();
    let [a, b, c, d] =
        ["a", "b", "c", "d"].map(|n| ImageId(backend.set(&config(n, &[])).expect(n)));
    for (child, parent) in [(a, b), (b, c), (c, a), (d, a)] {
        backend
            .set_metadata(child.digest(), "parent", parent.to_string().as_bytes())
            .expect("meta");
    }
    let (store, _) = ImageStore::open(backend, CountingLayers::new()).expect("open");
    // a's children: c (on the loop) and d (depends on a).
    assert_eq!(store.children(&a).len(), 2);
    assert_eq!(store.dependent_children(&a), vec![d]);
    assert!(store.dependent_children(&b).is_empty());
    assert!(store.dependent_children(&c).is_empty());
    assert!(store.dependent_children(&d).is_empty());
    // Deleting c opens the loop: a's child b is a root now, and a still has d.
    store.delete(&c).expect("delete c");
    common::check_invariants(&store);
    common::check_disk(&store);
    assert_eq!(store.get_parent(&b).expect("b"), None);
    assert_eq!(store.dependent_children(&b), vec![a]);
    assert_eq!(store.dependent_children(&a), vec![d]);
}
