//! The layer store: moby's `layer_test.go` cases that need no graph driver, registration,
//! reopening, the on-disk format, and concurrency.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::{diff, extract, fresh, reopen, tree};
use layer_store::{
    ChainId, GetError, LayerGetReleaser, LayerStore, MAX_LAYER_DEPTH, NullDriver, RegisterError,
    ReleaseError,
};

fn mode(p: &std::path::Path) -> u32 {
    fs::metadata(p).expect("metadata").permissions().mode() & 0o7777
}

/// moby TestLayerRelease: 1 <- 2 <- {3a, 3b}.
#[test]
fn layer_release_scenario() {
    let (_tmp, store) = fresh();
    let h1 = store.register_metadata(diff(1), 10, None).expect("1");
    let h2 = store
        .register_metadata(diff(2), 20, Some(h1.chain_id()))
        .expect("2");
    let h3a = store
        .register_metadata(diff(31), 30, Some(h2.chain_id()))
        .expect("3a");
    let h3b = store
        .register_metadata(diff(32), 40, Some(h2.chain_id()))
        .expect("3b");

    assert!(store.release(&h1).expect("release 1").is_empty());
    assert!(store.release(&h2).expect("release 2").is_empty());
    assert_eq!(store.len(), 4);

    let deleted = store.release(&h3b).expect("release 3b");
    assert_eq!(
        deleted.iter().map(|m| m.chain_id).collect::<Vec<_>>(),
        vec![*h3b.chain_id()]
    );
    assert_eq!(deleted[0].diff_id, diff(32));
    assert_eq!(deleted[0].diff_size, 40);
    assert_eq!(deleted[0].size, 70);
    assert_eq!(store.len(), 3);

    let deleted = store.release(&h3a).expect("release 3a");
    assert_eq!(
        deleted.iter().map(|m| m.chain_id).collect::<Vec<_>>(),
        vec![*h3a.chain_id(), *h2.chain_id(), *h1.chain_id()]
    );
    assert_eq!(
        deleted.iter().map(|m| m.size).collect::<Vec<_>>(),
        vec![60, 30, 10]
    );
    assert!(store.is_empty());
    // Nothing left on disk but the empty sha256/ and tmp/.
    assert_eq!(
        tree(store.root()),
        vec![std::path::PathBuf::from("sha256"), "tmp".into()]
    );
}

#[test]
fn release_twice_is_not_retained() {
    let (_tmp, store) = fresh();
    let h1 = store.register_metadata(diff(1), 1, None).expect("1");
    let h1b = store.get(h1.chain_id()).expect("get");
    assert!(store.release(&h1).expect("first").is_empty());
    assert!(matches!(
        store.release(&h1),
        Err(ReleaseError::NotRetained(c)) if c == *h1.chain_id()
    ));
    assert_eq!(store.release(&h1b).expect("last").len(), 1);
    // The layer is gone: releasing again is still NotRetained.
    assert!(matches!(
        store.release(&h1b),
        Err(ReleaseError::NotRetained(_))
    ));
}

#[test]
fn get_unknown_is_not_found() {
    let (_tmp, store) = fresh();
    let missing = ChainId(diff(9).0);
    assert!(matches!(store.get(&missing), Err(GetError::NotFound(c)) if c == missing));
    assert!(matches!(
        store.register_metadata(diff(1), 1, Some(&missing)),
        Err(RegisterError::ParentNotFound(c)) if c == missing
    ));
    // The failed registration left nothing behind.
    assert_eq!(
        tree(store.root()),
        vec![std::path::PathBuf::from("sha256"), "tmp".into()]
    );
}

/// moby TestRegisterExistingLayer.
#[test]
fn register_existing_layer_gives_two_handles_to_one_layer() {
    let (_tmp, store) = fresh();
    let base = store.register_metadata(diff(1), 5, None).expect("base");
    let a = store
        .register_metadata(diff(2), 7, Some(base.chain_id()))
        .expect("a");
    let cache_id = store.layer(a.chain_id()).expect("a").cache_id;
    let b = store
        .register_metadata(diff(2), 7, Some(base.chain_id()))
        .expect("b");
    assert_eq!(a.chain_id(), b.chain_id());
    assert_ne!(a, b);
    assert_eq!(store.len(), 2);
    assert_eq!(store.handle_count(a.chain_id()), Some(2));
    // The duplicate's parent reference was given back: base is held by its handle + 1 child.
    assert_eq!(store.ref_count(base.chain_id()), Some(2));
    assert_eq!(store.layer(a.chain_id()).expect("a").cache_id, cache_id);
    // The discarded transaction left nothing in tmp/.
    assert_eq!(
        fs::read_dir(store.root().join("tmp")).expect("tmp").count(),
        0
    );
    assert!(store.release(&a).expect("a").is_empty());
    assert_eq!(store.release(&b).expect("b").len(), 1);
    assert_eq!(store.release(&base).expect("base").len(), 1);
}

/// moby TestStoreRestore (without mounts): a reopened store equals the store before.
#[test]
fn reopened_store_equals_the_store_before() {
    let (tmp, store) = fresh();
    let h1 = store.register_metadata(diff(1), 100, None).expect("1");
    let h2 = store
        .register_metadata(diff(2), 200, Some(h1.chain_id()))
        .expect("2");
    let h3 = store
        .register_metadata(diff(3), 300, Some(h2.chain_id()))
        .expect("3");
    let before = store.layers();
    drop(store);
    let (store, outcome) = reopen(&tmp.path().join("layerdb"));
    assert_eq!(outcome.restored, 3);
    assert!(outcome.skipped.is_empty());
    assert_eq!(store.layers(), before);
    let l3 = store.layer(h3.chain_id()).expect("l3");
    assert_eq!(l3.size, 600);
    assert_eq!(l3.depth, 3);
    assert_eq!(l3.parent, Some(*h2.chain_id()));
    // Restored layers have no handles; children hold their parents.
    assert_eq!(store.ref_count(h3.chain_id()), Some(0));
    assert_eq!(store.ref_count(h1.chain_id()), Some(1));
    // A layer at refcount 0 stays until a handle on it is released (no GC at load).
    let h = store.get(h3.chain_id()).expect("get");
    let deleted = store.release(&h).expect("release");
    assert_eq!(deleted.len(), 3);
}

/// A layer we write has the same files, bytes and modes as dockerd's for the same
/// diff/size/parent (cache-id is random: only its form is compared).
#[test]
fn written_layer_matches_dockerd_format() {
    let (_fx, fixture_db) = extract("dockerroot-01-after-load");
    let (_tmp, store) = fresh();
    let base: ChainId = "sha256:516408ace5e52b139d13e99da654811994859543e92849eb04ab72af8d752856"
        .parse()
        .expect("chain");
    let mut parent: Option<ChainId> = None;
    let mut handles = Vec::new();
    for chain in [
        base,
        "sha256:686712228e91a77be8ad0d3d811b66ea7b6a5ad5d08b392d6247fcf659d9fb30"
            .parse()
            .expect("chain"),
        "sha256:06b5f6904ddc0031ed119e9a60dcc08061777fbf81d2d606e9fd2e1fd7665377"
            .parse()
            .expect("chain"),
    ] {
        let fdir = fixture_db.join("sha256").join(chain.0.hex());
        let d = fs::read_to_string(fdir.join("diff"))
            .expect("diff")
            .parse()
            .expect("diff id");
        let size: u64 = fs::read_to_string(fdir.join("size"))
            .expect("size")
            .parse()
            .expect("size");
        let h = store
            .register_metadata(d, size, parent.as_ref())
            .expect("register");
        assert_eq!(*h.chain_id(), chain);
        let ours = store.layer_dir(&chain);
        for file in ["diff", "size", "parent"] {
            let theirs = fs::read(fdir.join(file)).ok();
            assert_eq!(fs::read(ours.join(file)).ok(), theirs, "{file}");
            if theirs.is_some() {
                assert_eq!(mode(&ours.join(file)), mode(&fdir.join(file)), "{file}");
            }
        }
        let cache = fs::read_to_string(ours.join("cache-id")).expect("cache-id");
        assert_eq!(cache.len(), 64);
        assert!(
            cache
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(mode(&ours.join("cache-id")), mode(&fdir.join("cache-id")));
        assert_eq!(mode(&ours), mode(&fdir), "layer dir mode");
        assert_eq!(mode(&ours), 0o700);
        parent = Some(chain);
        handles.push(h);
    }
    assert_eq!(mode(store.root()), mode(&fixture_db));
    for d in ["sha256", "tmp"] {
        assert_eq!(
            mode(&store.root().join(d)),
            mode(&fixture_db.join(d)),
            "{d}"
        );
    }
}

#[test]
fn max_depth_is_enforced() {
    let (_tmp, store) = fresh();
    let mut parent: Option<ChainId> = None;
    let mut handles = Vec::new();
    for n in 0..MAX_LAYER_DEPTH as u64 {
        let h = store
            .register_metadata(diff(n), 1, parent.as_ref())
            .expect("register");
        parent = Some(*h.chain_id());
        handles.push(h);
    }
    let top = parent.expect("top");
    assert_eq!(store.layer(&top).expect("top").depth, MAX_LAYER_DEPTH);
    let err = store
        .register_metadata(diff(1000), 1, Some(&top))
        .expect_err("too deep");
    assert!(
        matches!(err, RegisterError::MaxDepthExceeded { parent, depth } if parent == top && depth == MAX_LAYER_DEPTH),
        "{err}"
    );
    // The failed attempt gave its parent reference back.
    assert_eq!(store.handle_count(&top), Some(1));
    assert_eq!(store.len(), MAX_LAYER_DEPTH);
}

#[test]
fn read_only_changes_nothing() {
    let (tmp, store) = fresh();
    let h1 = store.register_metadata(diff(1), 1, None).expect("1");
    let _h2 = store
        .register_metadata(diff(2), 2, Some(h1.chain_id()))
        .expect("2");
    drop(store);
    let root = tmp.path().join("layerdb");
    fs::create_dir(root.join("tmp/write-set-leftover")).expect("leftover");
    let before = tree(&root);
    let (ro, outcome) = LayerStore::open_read_only(&root, Box::new(NullDriver)).expect("open");
    assert_eq!(outcome.restored, 2);
    assert_eq!(outcome.leftovers.len(), 1);
    assert!(!outcome.leftovers[0].cleaned);
    assert!(matches!(
        ro.register_metadata(diff(3), 3, None),
        Err(RegisterError::ReadOnly { .. })
    ));
    let h = ro.get(h1.chain_id()).expect("get");
    assert!(ro.release(&h).expect("release").is_empty());
    assert_eq!(tree(&root), before);

    // A missing layerdb opens as an empty store, and is not created.
    let missing = tmp.path().join("nope");
    let (ro, _) = LayerStore::open_read_only(&missing, Box::new(NullDriver)).expect("open");
    assert!(ro.is_empty());
    assert!(!missing.exists());
}

/// Handles got and released from several threads; the store ends consistent.
#[test]
fn concurrent_get_release_register() {
    let (_tmp, store) = fresh();
    let base = store.register_metadata(diff(0), 1, None).expect("base");
    let mid = store
        .register_metadata(diff(1), 1, Some(base.chain_id()))
        .expect("mid");
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let store = &store;
            let (base, mid) = (*base.chain_id(), *mid.chain_id());
            s.spawn(move || {
                for i in 0..50u64 {
                    let h = store.get(&base).expect("get base");
                    let h2 = store.get(&mid).expect("get mid");
                    // Each thread registers (and later drops) its own layers and also races on
                    // a shared one.
                    let own = store
                        .register_metadata(diff(1000 + t * 100 + i), i, Some(&mid))
                        .expect("own");
                    let shared = store
                        .register_metadata(diff(99), 1, Some(&mid))
                        .expect("shared");
                    store.release(&h).expect("release base");
                    let deleted = store.release(&own).expect("release own");
                    assert_eq!(deleted.len(), 1);
                    store.release(&shared).expect("release shared");
                    store.release(&h2).expect("release mid");
                }
            });
        }
    });
    assert_eq!(store.len(), 2);
    assert_eq!(store.handle_count(base.chain_id()), Some(1));
    assert_eq!(store.ref_count(base.chain_id()), Some(2));
    assert_eq!(store.ref_count(mid.chain_id()), Some(1));
    let on_disk = fs::read_dir(store.root().join("sha256"))
        .expect("sha256")
        .count();
    assert_eq!(on_disk, 2);
    assert_eq!(
        fs::read_dir(store.root().join("tmp")).expect("tmp").count(),
        0
    );
    assert_eq!(store.release(&mid).expect("mid").len(), 1);
    assert_eq!(store.release(&base).expect("base").len(), 1);
    assert_eq!(
        fs::read_dir(store.root().join("sha256"))
            .expect("sha256")
            .count(),
        0
    );
}

/// The store is usable through the trait object the image store holds.
#[test]
fn usable_as_layer_get_releaser() {
    let (_tmp, store) = fresh();
    let h = store.register_metadata(diff(1), 3, None).expect("1");
    let lgr: &dyn LayerGetReleaser = &store;
    let h2 = lgr.get(h.chain_id()).expect("get");
    assert!(lgr.release(&h2).expect("release").is_empty());
    let deleted = lgr.release(&h).expect("release");
    assert_eq!(deleted[0].cache_id.len(), 64);
}
