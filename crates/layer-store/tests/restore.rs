//! Restore at open: the dockerd fixtures, broken layers, leftovers.

use crate::common;

use std::fs;
use std::path::Path;

use common::{DATA_ROOTS, diff, extract, fresh, reopen, tree};
use layer_store::{
    ChainId, DiffId, LayerStore, LeftoverKind, NullDriver, RestoreReport, SkipReason,
};

/// Every layer of every fixture loads, with the values of its files.
#[test]
fn fixtures_load_fully() {
    for name in DATA_ROOTS {
        let (_tmp, layerdb) = extract(name);
        let before = tree(&layerdb);
        let (store, outcome) =
            LayerStore::open_read_only(&layerdb, Box::new(NullDriver)).expect("open");
        assert!(outcome.skipped.is_empty(), "{name}: {:?}", outcome.skipped);
        assert!(outcome.leftovers.is_empty(), "{name}");
        let dirs: Vec<_> = fs::read_dir(layerdb.join("sha256"))
            .expect("sha256")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(outcome.restored, dirs.len(), "{name}");
        assert_eq!(store.len(), dirs.len(), "{name}");
        for dir in dirs {
            let hex = dir.file_name().and_then(|n| n.to_str()).expect("name");
            let chain: ChainId = format!("sha256:{hex}").parse().expect("chain");
            let info = store.layer(&chain).expect("loaded");
            let read = |f: &str| fs::read_to_string(dir.join(f)).ok();
            assert_eq!(Some(info.diff_id.to_string()), read("diff"));
            assert_eq!(Some(info.diff_size.to_string()), read("size"));
            assert_eq!(Some(info.cache_id.clone()), read("cache-id"));
            assert_eq!(info.parent.map(|p| p.to_string()), read("parent"));
            // Chain size: the sum of the diff sizes down the chain.
            let mut expected = 0;
            let mut cur = Some(chain);
            let mut depth = 0;
            while let Some(c) = cur {
                let l = store.layer(&c).expect("parent loaded");
                expected += l.diff_size;
                depth += 1;
                cur = l.parent;
            }
            assert_eq!(info.size, expected);
            assert_eq!(info.depth, depth);
            assert_eq!(store.metadata(&chain).expect("metadata").size, expected);
        }
        // Read-only open changed nothing.
        assert_eq!(tree(&layerdb), before, "{name}");
    }
}

/// The base image of the fixtures: 3 layers, sizes and chain sizes.
#[test]
fn fixture_01_chain_sizes() {
    let (_tmp, layerdb) = extract("dockerroot-01-after-load");
    let (store, _) = LayerStore::open(&layerdb, Box::new(NullDriver)).expect("open");
    let top: ChainId = "sha256:06b5f6904ddc0031ed119e9a60dcc08061777fbf81d2d606e9fd2e1fd7665377"
        .parse()
        .expect("chain");
    let l = store.layer(&top).expect("top");
    assert_eq!(l.depth, 3);
    let mid = store.layer(&l.parent.expect("parent")).expect("mid");
    let base = store.layer(&mid.parent.expect("parent")).expect("base");
    assert_eq!(l.size, l.diff_size + mid.diff_size + base.diff_size);
    assert_eq!(base.parent, None);
    assert_eq!(store.ref_count(&base.chain_id), Some(1));
    assert_eq!(store.ref_count(&top), Some(0));
    // Releasing a handle on the top deletes the whole unreferenced chain, child first.
    let h = store.get(&top).expect("get");
    let deleted = store.release(&h).expect("release");
    assert_eq!(
        deleted.iter().map(|m| m.chain_id).collect::<Vec<_>>(),
        vec![top, mid.chain_id, base.chain_id]
    );
    assert_eq!(
        fs::read_dir(layerdb.join("sha256"))
            .expect("sha256")
            .count(),
        0
    );
}

/// Builds 1 <- 2 <- 3 plus an unrelated 4; returns the root and the chain IDs.
fn three_chain() -> (tempfile::TempDir, std::path::PathBuf, [ChainId; 4]) {
    let (tmp, store) = fresh();
    let h1 = store.register_metadata(diff(1), 1, None).expect("1");
    let h2 = store
        .register_metadata(diff(2), 2, Some(h1.chain_id()))
        .expect("2");
    let h3 = store
        .register_metadata(diff(3), 3, Some(h2.chain_id()))
        .expect("3");
    let h4 = store.register_metadata(diff(4), 4, None).expect("4");
    let ids = [
        *h1.chain_id(),
        *h2.chain_id(),
        *h3.chain_id(),
        *h4.chain_id(),
    ];
    let root = store.root().to_owned();
    (tmp, root, ids)
}

fn dir(root: &Path, c: &ChainId) -> std::path::PathBuf {
    root.join("sha256").join(c.0.hex())
}

/// Breaks layer 2 with `breakage`, reopens, and checks that 2 and 3 are skipped with the
/// expected reasons, 1 and 4 load, and nothing is deleted.
fn check_broken(breakage: impl FnOnce(&Path), expect: impl FnOnce(&SkipReason) -> bool) {
    let (_tmp, root, [c1, c2, c3, c4]) = three_chain();
    breakage(&dir(&root, &c2));
    let before = tree(&root);
    let (store, outcome) = reopen(&root);
    assert_eq!(outcome.restored, 2);
    assert!(store.contains(&c1) && store.contains(&c4));
    assert!(!store.contains(&c2) && !store.contains(&c3));
    let mut skipped = outcome.skipped.clone();
    skipped.sort_by_key(|s| if s.chain_id == c2 { 0 } else { 1 });
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert_eq!(skipped[0].chain_id, c2);
    assert_eq!(skipped[0].path, dir(&root, &c2));
    assert!(expect(&skipped[0].reason), "{:?}", skipped[0].reason);
    assert_eq!(skipped[1].chain_id, c3);
    assert_eq!(skipped[1].reason, SkipReason::BrokenParent { parent: c2 });
    assert!(skipped[1].to_string().contains(&c2.to_string()));
    let report = outcome.to_string();
    assert!(report.contains(&format!("skipped layer {c3}")), "{report}");
    // Layer 1 lost its only child: refcount 0, but it stays (no GC).
    assert_eq!(store.ref_count(&c1), Some(0));
    assert_eq!(tree(&root), before, "nothing deleted");
}

#[test]
fn empty_size_is_skipped() {
    check_broken(
        |d| fs::write(d.join("size"), "").expect("write"),
        |r| matches!(r, SkipReason::BadSize { value } if value.is_empty()),
    );
}

/// dockerd parses `size` without trimming: a trailing newline fails.
#[test]
fn size_with_newline_is_skipped() {
    check_broken(
        |d| fs::write(d.join("size"), "2\n").expect("write"),
        |r| matches!(r, SkipReason::BadSize { value } if value == "2\\n"),
    );
}

/// dockerd decodes `descriptor.json` when it exists and fails the layer on bad JSON.
#[test]
fn bad_descriptor_is_skipped() {
    check_broken(
        |d| fs::write(d.join("descriptor.json"), "{not json").expect("write"),
        |r| matches!(r, SkipReason::BadDescriptor { .. }),
    );
    check_broken(
        |d| fs::write(d.join("descriptor.json"), "[1]").expect("write"),
        |r| matches!(r, SkipReason::BadDescriptor { .. }),
    );
}

#[test]
fn valid_descriptor_loads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("layerdb");
    let (store, _) = LayerStore::open(&root, Box::new(NullDriver)).expect("open");
    let diff: DiffId = format!("sha256:{}", "ab".repeat(32)).parse().expect("diff");
    let h = store.register_metadata(diff, 3, None).expect("register");
    let layer_dir = store.layer_dir(h.chain_id());
    drop(store);
    fs::write(
        layer_dir.join("descriptor.json"),
        r#"{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:abc","size":3}"#,
    )
    .expect("write");
    let (store, outcome) = LayerStore::open_read_only(&root, Box::new(NullDriver)).expect("reopen");
    assert!(outcome.skipped.is_empty(), "{outcome}");
    assert!(store.contains(h.chain_id()));
}

#[test]
fn missing_diff_is_skipped() {
    check_broken(
        |d| fs::remove_file(d.join("diff")).expect("rm"),
        |r| *r == SkipReason::MissingFile { file: "diff" },
    );
}

#[test]
fn bad_digest_is_skipped() {
    check_broken(
        |d| fs::write(d.join("diff"), "sha256:nothex").expect("write"),
        |r| matches!(r, SkipReason::BadDigest { file: "diff", .. }),
    );
}

#[test]
fn missing_cache_id_is_skipped() {
    check_broken(
        |d| fs::remove_file(d.join("cache-id")).expect("rm"),
        |r| *r == SkipReason::MissingFile { file: "cache-id" },
    );
}

#[test]
fn empty_cache_id_is_skipped() {
    check_broken(
        |d| fs::write(d.join("cache-id"), " \n").expect("write"),
        |r| matches!(r, SkipReason::BadCacheId { .. }),
    );
}

#[test]
fn missing_parent_is_skipped() {
    let ghost = ChainId(diff(77).0);
    check_broken(
        |d| fs::write(d.join("parent"), ghost.to_string()).expect("write"),
        |r| *r == SkipReason::MissingParent { parent: ghost },
    );
}

#[test]
fn bad_parent_digest_is_skipped() {
    check_broken(
        |d| fs::write(d.join("parent"), "").expect("write"),
        |r| matches!(r, SkipReason::BadDigest { file: "parent", .. }),
    );
}

/// `diff` and `cache-id` are trimmed, as dockerd does.
#[test]
fn diff_and_cache_id_are_trimmed() {
    let (_tmp, root, [_, c2, c3, _]) = three_chain();
    let d = dir(&root, &c2);
    fs::write(d.join("diff"), format!("{}\n", diff(2))).expect("write");
    let cache = fs::read_to_string(d.join("cache-id")).expect("cache");
    fs::write(d.join("cache-id"), format!(" {cache}\n")).expect("write");
    let (store, outcome) = reopen(&root);
    assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);
    assert_eq!(store.layer(&c2).expect("c2").cache_id, cache);
    assert_eq!(store.layer(&c2).expect("c2").diff_id, diff(2));
    assert!(store.contains(&c3));
}

#[test]
fn parent_cycle_is_skipped() {
    let (_tmp, root, [c1, c2, c3, _]) = three_chain();
    // 1's parent is 3: 1 -> 3 -> 2 -> 1.
    fs::write(dir(&root, &c1).join("parent"), c3.to_string()).expect("write");
    let (store, outcome) = reopen(&root);
    assert_eq!(outcome.restored, 1);
    assert_eq!(outcome.skipped.len(), 3);
    assert!(
        outcome
            .skipped
            .iter()
            .any(|s| matches!(s.reason, SkipReason::ParentCycle { .. }))
    );
    assert!(!store.contains(&c2));
}

/// Leftovers of interrupted writes and deletions are removed by a read-write open and reported.
#[test]
fn leftovers_are_cleaned_on_open() {
    let (_tmp, root, [c1, ..]) = three_chain();
    let staging = root.join("tmp/write-set-123456");
    fs::create_dir(&staging).expect("staging");
    fs::write(staging.join("diff"), diff(9).to_string()).expect("write");
    let removing = root.join(format!(
        "sha256/{}-{}-removing",
        c1.0.hex(),
        "ab".repeat(32)
    ));
    fs::create_dir(&removing).expect("removing");
    fs::write(removing.join("cache-id"), "ab".repeat(32)).expect("write");
    // Unrelated entries are left alone.
    fs::create_dir(root.join("sha256/not-a-layer")).expect("other");

    let (store, outcome) = reopen(&root);
    assert_eq!(outcome.restored, 4);
    assert_eq!(outcome.leftovers.len(), 2);
    let kinds: Vec<_> = outcome.leftovers.iter().map(|l| l.kind).collect();
    assert!(kinds.contains(&LeftoverKind::Staging));
    assert!(kinds.contains(&LeftoverKind::Removing));
    assert!(
        outcome
            .leftovers
            .iter()
            .all(|l| l.cleaned && l.error.is_none())
    );
    assert!(!staging.exists());
    assert!(!removing.exists());
    assert!(root.join("sha256/not-a-layer").exists());
    assert_eq!(store.len(), 4);

    let report = outcome.to_string();
    assert!(
        report.starts_with("4 layers loaded, 0 skipped, 2 leftovers"),
        "{report}"
    );
    assert!(
        report.contains("interrupted write") && report.contains("(removed)"),
        "{report}"
    );
    assert!(!outcome.is_clean());

    let (_, outcome) = reopen(&root);
    assert!(outcome.leftovers.is_empty());
    assert!(outcome.is_clean());
}

/// A write killed after creating its staging directory's `cache-id` but before writing
/// it leaves an empty file: no content exists yet, so the staging directory goes. An
/// empty `cache-id` in a `-removing` layer (a whole layer renamed) is not explained so, and
/// stays.
#[test]
fn staging_with_an_empty_cache_id_is_removed() {
    let (_tmp, root, [c1, ..]) = three_chain();
    let staging = root.join("tmp/write-set-0badc0de");
    fs::create_dir(&staging).expect("staging");
    fs::write(staging.join("cache-id"), "").expect("write");
    let removing = root.join(format!(
        "sha256/{}-{}-removing",
        c1.0.hex(),
        "cd".repeat(32)
    ));
    fs::create_dir(&removing).expect("removing");
    fs::write(removing.join("cache-id"), "").expect("write");
    let (_store, outcome) = reopen(&root);
    assert!(!staging.exists());
    assert!(removing.exists());
    let kept: Vec<_> = outcome.leftovers.iter().filter(|l| !l.cleaned).collect();
    assert_eq!(kept.len(), 1, "{outcome}");
    assert_eq!(kept[0].kind, LeftoverKind::Removing);
}

/// Mounts (containers) hold a reference on their parent layer.
#[test]
fn mounts_hold_references() {
    let (_tmp, root, [c1, c2, c3, c4]) = three_chain();
    let m = root.join("mounts/abc");
    fs::create_dir_all(&m).expect("mount");
    fs::write(m.join("parent"), c3.to_string()).expect("write");
    fs::write(m.join("mount-id"), "ab".repeat(32)).expect("write");
    let bad = root.join("mounts/def");
    fs::create_dir_all(&bad).expect("mount");
    fs::write(bad.join("parent"), ChainId(diff(55).0).to_string()).expect("write");
    let (store, outcome) = reopen(&root);
    assert_eq!(outcome.mounts, 1);
    assert_eq!(outcome.skipped_mounts.len(), 1);
    assert_eq!(store.ref_count(&c3), Some(1));
    let h = store.get(&c3).expect("get");
    assert!(store.release(&h).expect("release").is_empty());
    assert!(store.contains(&c2) && store.contains(&c1) && store.contains(&c4));
}

/// Many layers restore without quadratic behaviour (no timing assert: the count must match).
#[test]
fn many_layers_restore() {
    let (_tmp, store) = fresh();
    let root = store.root().to_owned();
    // Write 2000 layers directly in dockerd's format: 40 chains of 50.
    drop(store);
    let mut expected = RestoreReport::default();
    for chain in 0..40u64 {
        let mut parent: Option<ChainId> = None;
        for n in 0..50u64 {
            let d: DiffId = diff(chain * 1000 + n);
            let c = parent.map_or(ChainId(d.0), |p| p.then(&d));
            let dir = root.join("sha256").join(c.0.hex());
            fs::create_dir(&dir).expect("dir");
            fs::write(dir.join("diff"), d.to_string()).expect("diff");
            fs::write(dir.join("size"), n.to_string()).expect("size");
            fs::write(dir.join("cache-id"), format!("{:064x}", chain * 1000 + n)).expect("c");
            if let Some(p) = parent {
                fs::write(dir.join("parent"), p.to_string()).expect("parent");
            }
            parent = Some(c);
            expected.restored += 1;
        }
    }
    let (store, outcome) = reopen(&root);
    assert_eq!(outcome, expected);
    assert_eq!(store.len(), 2000);
    let deepest = store
        .layers()
        .into_iter()
        .max_by_key(|l| l.depth)
        .expect("layers");
    assert_eq!(deepest.depth, 50);
    assert_eq!(deepest.size, (0..50).sum::<u64>());
}

/// Registering a layer whose directory exists but was skipped (broken) fails like dockerd
/// ("file exists", moby#44909), leaves the broken directory alone and cleans up after itself.
#[test]
fn registering_over_a_broken_layer_fails_cleanly() {
    let (_tmp, root, [c1, c2, _, _]) = three_chain();
    fs::write(dir(&root, &c2).join("size"), "").expect("write");
    let (store, _) = reopen(&root);
    assert!(!store.contains(&c2));
    let err = store
        .register_metadata(diff(2), 2, Some(&c1))
        .expect_err("exists");
    assert!(
        matches!(&err, layer_store::RegisterError::Transaction(t) if t.source.kind() == std::io::ErrorKind::AlreadyExists),
        "{err}"
    );
    assert_eq!(fs::read(dir(&root, &c2).join("size")).expect("size"), b"");
    assert_eq!(fs::read_dir(root.join("tmp")).expect("tmp").count(), 0);
    // As in dockerd, the failed registration released its reference on the parent; c1 had
    // no other reference (its only child is broken), so that deleted it.
    assert!(!store.contains(&c1));
    assert!(!dir(&root, &c1).exists());
}

/// A store large enough to be read in parallel on private descriptor tables (5000 layers in
/// chains of up to 10), written file by file, with broken layers among them: every healthy
/// layer loads with its chain size, depth and child count, and every broken one (and its
/// descendants) is skipped with the right reason.
#[test]
fn large_store_loads_in_parallel() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("layerdb");
    let sha = root.join("sha256");
    fs::create_dir_all(&sha).expect("mkdir");
    let write = |chain: &ChainId, diff_id: &DiffId, size: u64, parent: Option<&ChainId>| {
        let dir = sha.join(chain.digest().hex());
        fs::create_dir(&dir).expect("layer dir");
        fs::write(dir.join("diff"), diff_id.to_string()).expect("diff");
        fs::write(dir.join("size"), size.to_string()).expect("size");
        fs::write(dir.join("cache-id"), format!("cache-{}", size)).expect("cache-id");
        if let Some(p) = parent {
            fs::write(dir.join("parent"), p.to_string()).expect("parent");
        }
        dir
    };
    // 500 chains of 10 layers; layer j of chain i has diff size 10 * i + j.
    let mut chains: Vec<Vec<ChainId>> = Vec::new();
    for i in 0..500u64 {
        let mut chain: Vec<ChainId> = Vec::new();
        for j in 0..10u64 {
            let d: DiffId = layer_store::DiffId(digest_set::Digest::sha256(
                format!("layer {i} {j}").as_bytes(),
            ));
            let id = match chain.last() {
                Some(p) => p.then(&d),
                None => ChainId(d.0),
            };
            write(&id, &d, 10 * i + j, chain.last());
            chain.push(id);
        }
        chains.push(chain);
    }
    // Chain 7: layer 4 has no size (skipped), so layers 5..10 have a broken parent.
    fs::remove_file(sha.join(chains[7][4].digest().hex()).join("size")).expect("rm size");
    // Chain 9: layer 0 names a parent that does not exist.
    let ghost = ChainId(digest_set::Digest::sha256(b"ghost"));
    fs::write(
        sha.join(chains[9][0].digest().hex()).join("parent"),
        ghost.to_string(),
    )
    .expect("parent");

    let (store, outcome) = LayerStore::open_read_only(&root, Box::new(NullDriver)).expect("open");
    assert_eq!(outcome.restored, 5000 - 6 - 10);
    assert_eq!(store.len(), outcome.restored);
    assert_eq!(outcome.skipped.len(), 16);
    let reason = |id: &ChainId| {
        outcome
            .skipped
            .iter()
            .find(|s| s.chain_id == *id)
            .map(|s| s.reason.clone())
    };
    assert_eq!(
        reason(&chains[7][4]),
        Some(SkipReason::MissingFile { file: "size" })
    );
    for j in 5..10 {
        assert_eq!(
            reason(&chains[7][j]),
            Some(SkipReason::BrokenParent {
                parent: chains[7][j - 1]
            })
        );
    }
    assert_eq!(
        reason(&chains[9][0]),
        Some(SkipReason::MissingParent { parent: ghost })
    );
    for j in 1..10 {
        assert_eq!(
            reason(&chains[9][j]),
            Some(SkipReason::BrokenParent {
                parent: chains[9][j - 1]
            })
        );
    }
    assert!(
        outcome
            .skipped
            .windows(2)
            .all(|w| w[0].chain_id < w[1].chain_id)
    );
    for (i, chain) in chains.iter().enumerate() {
        if i == 9 {
            continue;
        }
        let mut size = 0;
        for (j, id) in chain.iter().enumerate() {
            if i == 7 && j >= 4 {
                assert!(!store.contains(id));
                continue;
            }
            size += 10 * i as u64 + j as u64;
            let info = store.layer(id).expect("loaded");
            assert_eq!(info.depth, j + 1);
            assert_eq!(info.size, size);
            assert_eq!(info.parent, j.checked_sub(1).map(|p| chain[p]));
            assert_eq!(info.cache_id, format!("cache-{}", 10 * i + j));
            let children = usize::from(j < 9 && !(i == 7 && j == 3));
            assert_eq!(store.ref_count(id), Some(children), "chain {i} layer {j}");
        }
    }
    assert_eq!(store.layers().len(), outcome.restored);
}

/// Only directories named by a digest are layers: files, symlinks (even to a layer
/// directory) and other names in `sha256/` are ignored, and a missing `sha512/` is fine.
#[test]
fn non_layer_entries_are_ignored() {
    let (_tmp, root, [c1, c2, c3, c4]) = three_chain();
    let sha = root.join("sha256");
    let fake = ChainId(digest_set::Digest::sha256(b"file"));
    fs::write(sha.join(fake.0.hex()), "not a layer").expect("file");
    let link = ChainId(digest_set::Digest::sha256(b"link"));
    std::os::unix::fs::symlink(dir(&root, &c1), sha.join(link.0.hex())).expect("symlink");
    fs::create_dir(sha.join("not-a-digest")).expect("dir");
    let (store, outcome) = LayerStore::open_read_only(&root, Box::new(NullDriver)).expect("open");
    assert_eq!(outcome.restored, 4);
    assert!(outcome.is_clean(), "{outcome}");
    for c in [c1, c2, c3, c4] {
        assert!(store.contains(&c));
    }
    assert!(!store.contains(&fake));
    assert!(!store.contains(&link));
}

/// Layers under `sha512/`, sha512 diff IDs and cache IDs that are not 64 lowercase hex
/// digits load and read back exactly as written, also as parents of sha256 layers.
#[test]
fn sha512_layers_and_text_cache_ids_load() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("layerdb");
    let base = ChainId(digest_set::Digest::sha512(b"base"));
    let base_diff = DiffId(base.0);
    let top_diff = DiffId(digest_set::Digest::sha512(b"top"));
    let top = base.then(&top_diff);
    let upper = "AB".repeat(32);
    let layers = [
        (base, base_diff, "my-layer_1.2", None),
        (top, top_diff, upper.as_str(), Some(base)),
    ];
    for (id, diff_id, cache, parent) in &layers {
        let dir = root.join(id.0.algorithm().name()).join(id.0.hex());
        fs::create_dir_all(&dir).expect("mkdir");
        fs::write(dir.join("diff"), diff_id.to_string()).expect("diff");
        fs::write(dir.join("size"), "10").expect("size");
        fs::write(dir.join("cache-id"), cache).expect("cache-id");
        if let Some(p) = parent {
            fs::write(dir.join("parent"), p.to_string()).expect("parent");
        }
    }
    let (store, outcome) = LayerStore::open_read_only(&root, Box::new(NullDriver)).expect("open");
    assert!(outcome.is_clean(), "{outcome}");
    assert_eq!(outcome.restored, 2);
    for (id, diff_id, cache, parent) in &layers {
        let info = store.layer(id).expect("loaded");
        assert_eq!(info.chain_id, *id);
        assert_eq!(info.diff_id, *diff_id);
        assert_eq!(info.cache_id, *cache);
        assert_eq!(info.parent, *parent);
    }
    assert_eq!(store.layer(&top).map(|l| (l.size, l.depth)), Some((20, 2)));
    assert_eq!(store.ref_count(&base), Some(1));
    // A sha256 ID with the same first 32 bytes is another layer.
    let mut head = [0u8; 32];
    head.copy_from_slice(&base.0.as_bytes()[..32]);
    assert!(!store.contains(&ChainId(digest_set::Digest::from_sha256_bytes(head))));
}

/// Restore does not touch the access times of the layer files (`O_NOATIME`): a read-only
/// open changes nothing on disk, not even atimes that relatime would update.
#[test]
fn restore_keeps_access_times() {
    use std::time::{Duration, SystemTime};
    let (_tmp, root, [c1, ..]) = three_chain();
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let files: Vec<_> = ["diff", "size", "cache-id"]
        .iter()
        .map(|f| dir(&root, &c1).join(f))
        .collect();
    for f in &files {
        let file = fs::File::options().write(true).open(f).expect("open");
        file.set_times(fs::FileTimes::new().set_accessed(old))
            .expect("set atime");
    }
    let (store, _) = LayerStore::open_read_only(&root, Box::new(NullDriver)).expect("open");
    assert!(store.contains(&c1));
    for f in &files {
        let atime = fs::metadata(f).and_then(|m| m.accessed()).expect("atime");
        assert_eq!(atime, old, "{}", f.display());
    }
}
