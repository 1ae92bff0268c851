//! The durability sequence under injected faults: a failed write, fsync or rename leaves the
//! previous content intact and no partial file visible; temp files are removed by cleanup.

use crate::common;

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use digest_set::Digest;
use imagedb_fs::{Error, Faults, FaultyBackend, FsBackend, MemBackend, Op, StoreBackend};

fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn open(faults: &Faults) -> (tempfile::TempDir, FsBackend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FsBackend::open_with_faults(dir.path(), faults.clone()).expect("open");
    (dir, store)
}

/// A failing new `set` leaves nothing at the target and no temp file.
#[test]
fn failed_set_leaves_no_file() {
    for op in [Op::Write, Op::Sync, Op::Rename] {
        let faults = Faults::new();
        let (_dir, store) = open(&faults);
        faults.fail_nth(op, 1, ErrorKind::StorageFull);
        let err = store.set(b"foobar").expect_err("injected");
        match &err {
            Error::Io { source, .. } => assert_eq!(source.kind(), ErrorKind::StorageFull),
            other => panic!("{op:?}: expected Io, got {other:?}"),
        }
        assert!(
            err.path().is_some_and(|p| !p.as_os_str().is_empty()),
            "{err}"
        );
        assert_eq!(faults.injected(), 1);
        let content = store.root().join("content/sha256");
        assert!(
            dir_names(&content).is_empty(),
            "{op:?}: {:?}",
            dir_names(&content)
        );
        assert!(store.walk().expect("walk").is_empty());
        // The next attempt works.
        let id = store.set(b"foobar").expect("retry");
        assert_eq!(store.get(&id).expect("get"), b"foobar");
    }
}

/// A failing metadata rewrite leaves the previous value readable and complete.
#[test]
fn failed_metadata_rewrite_keeps_previous_value() {
    for op in [Op::Write, Op::Sync, Op::Rename] {
        let faults = Faults::new();
        let (_dir, store) = open(&faults);
        let id = store.set(b"config").expect("set");
        let old = b"2026-11-30T00:00:00.000000001Z";
        store.set_metadata(&id, "lastUpdated", old).expect("set md");
        faults.fail_nth(op, 1, ErrorKind::Other);
        let new = common::pseudo_random(4096, 3);
        store
            .set_metadata(&id, "lastUpdated", &new)
            .expect_err("injected");
        assert_eq!(
            store
                .get_metadata(&id, "lastUpdated")
                .expect("md")
                .as_deref(),
            Some(&old[..]),
            "{op:?}"
        );
        let md_dir = store.root().join("metadata/sha256").join(id.hex());
        assert_eq!(
            dir_names(&md_dir),
            vec!["lastUpdated"],
            "{op:?}: no temp visible"
        );
    }
}

/// A short write that is never cleaned up by the failing call (simulated crash: the temp
/// file is left behind) is invisible to walk and removed by cleanup.
#[test]
fn crash_leftovers_are_skipped_and_cleaned() {
    let faults = Faults::new();
    let (_dir, store) = open(&faults);
    let id = store.set(b"foobar").expect("set");
    store.set_metadata(&id, "parent", b"sha256:x").expect("md");
    // What a crash between create and rename leaves: temp files next to the targets.
    let content = store.root().join("content/sha256");
    let md_dir = store.root().join("metadata/sha256").join(id.hex());
    let leftovers = [
        content.join(format!(
            ".tmp-{}-00000000deadbeef",
            Digest::sha256(b"x").hex()
        )),
        md_dir.join(".tmp-parent-00000000deadbeef"),
    ];
    for path in &leftovers {
        fs::write(path, b"partial").expect("leftover");
    }
    // Not a temp file: never removed by cleanup.
    fs::write(content.join("stray"), b"x").expect("stray");
    assert_eq!(store.walk().expect("walk"), vec![id]);
    assert_eq!(
        store.get_metadata(&id, "parent").expect("md").as_deref(),
        Some(&b"sha256:x"[..])
    );
    let report = store.cleanup().expect("cleanup");
    let mut removed = report.removed.clone();
    removed.sort();
    let mut expected = leftovers.to_vec();
    expected.sort();
    assert_eq!(removed, expected);
    assert_eq!(report.len(), 2);
    assert!(content.join("stray").exists());
    assert!(store.cleanup().expect("again").is_empty());
    assert_eq!(store.get(&id).expect("get"), b"foobar");
}

/// The exact sequence of a write: write, fsync, rename, fsync dir, one of each per set.
#[test]
fn write_sequence_is_counted() {
    let faults = Faults::new();
    let (_dir, store) = open(&faults);
    let before = [Op::Write, Op::Sync, Op::Rename, Op::SyncDir].map(|op| faults.count(op));
    store.set(b"foobar").expect("set");
    let after = [Op::Write, Op::Sync, Op::Rename, Op::SyncDir].map(|op| faults.count(op));
    let delta: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    assert_eq!(delta, vec![1, 1, 1, 1]);
}

/// A failed directory fsync after the rename is reported: the new content is complete (the
/// rename happened) but its durability is not guaranteed, so the caller must treat the
/// operation as failed. Nothing partial is visible.
#[test]
fn failed_dir_fsync_is_reported() {
    let faults = Faults::new();
    let (_dir, store) = open(&faults);
    faults.fail_nth(Op::SyncDir, 1, ErrorKind::Other);
    let err = store.set(b"foobar").expect_err("dir fsync");
    assert!(err.to_string().contains("fsync directory"), "{err}");
    let id = Digest::sha256(b"foobar");
    // Either absent or complete, never partial.
    match store.get(&id) {
        Ok(bytes) => assert_eq!(bytes, b"foobar"),
        Err(e) => assert!(e.is_not_found(), "{e}"),
    }
    assert!(store.cleanup().expect("cleanup").is_empty());
}

/// The n-th write fails; every other one lands. "Disk full from here on" fails every write.
#[test]
fn nth_and_sticky_faults() {
    let faults = Faults::new();
    let (_dir, store) = open(&faults);
    faults.fail_nth(Op::Rename, 3, ErrorKind::Other);
    let results: Vec<bool> = (0..5u8).map(|i| store.set(&[i + 1]).is_ok()).collect();
    assert_eq!(results, vec![true, true, false, true, true]);
    assert_eq!(store.walk().expect("walk").len(), 4);

    faults.fail_always(Op::Write, ErrorKind::StorageFull);
    for i in 10..14u8 {
        assert!(store.set(&[i]).is_err());
    }
    // Reads still work while writes fail.
    assert_eq!(store.walk().expect("walk").len(), 4);
    faults.clear();
    store.set(&[20]).expect("after clear");
    assert_eq!(store.walk().expect("walk").len(), 5);
    let content = store.root().join("content/sha256");
    assert!(dir_names(&content).iter().all(|n| !n.starts_with(".tmp-")));
}

/// Failed delete: content stays readable.
#[test]
fn failed_delete_keeps_content() {
    let faults = Faults::new();
    let (_dir, store) = open(&faults);
    let id = store.set(b"foobar").expect("set");
    store.set_metadata(&id, "parent", b"p").expect("md");
    faults.fail_nth(Op::Remove, 1, ErrorKind::PermissionDenied);
    store.delete(&id).expect_err("injected");
    assert_eq!(store.get(&id).expect("still there"), b"foobar");
    assert_eq!(
        store.get_metadata(&id, "parent").expect("md").as_deref(),
        Some(&b"p"[..])
    );
    store.delete(&id).expect("retry");
    assert!(store.get(&id).expect_err("gone").is_not_found());

    // The content goes first: a failure removing the metadata leaves only orphan metadata,
    // which metadata_digests reports and a second delete removes (reporting NotFound).
    let id = store.set(b"second").expect("set");
    store.set_metadata(&id, "parent", b"p").expect("md");
    faults.fail_nth(Op::Remove, 2, ErrorKind::Other);
    store.delete(&id).expect_err("metadata removal fails");
    assert!(store.get(&id).expect_err("content gone").is_not_found());
    assert_eq!(store.walk().expect("walk"), Vec::<Digest>::new());
    assert_eq!(store.metadata_digests().expect("md"), vec![id]);
    assert!(store.delete(&id).expect_err("no content").is_not_found());
    assert!(store.metadata_digests().expect("md").is_empty());
}

/// Read faults reach get as an I/O error naming the file.
#[test]
fn read_faults() {
    let faults = Faults::new();
    let (_dir, store) = open(&faults);
    let id = store.set(b"foobar").expect("set");
    faults.fail_nth(Op::Read, 1, ErrorKind::Interrupted);
    let err = store.get(&id).expect_err("injected");
    assert_eq!(err.path(), Some(store.content_path(&id).as_path()));
    assert_eq!(store.get(&id).expect("next read"), b"foobar");
}

/// The trait-level wrapper fails the n-th mutating call before it reaches the backend, for
/// any backend; memory and disk both stay unchanged.
#[test]
fn faulty_backend_fails_nth_mutation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let backends: Vec<Box<dyn StoreBackend>> = vec![
        Box::new(MemBackend::new()),
        Box::new(FsBackend::open(dir.path()).expect("open")),
    ];
    for inner in backends {
        let faults = Faults::new();
        let store = FaultyBackend::new(inner, faults.clone());
        let id = store.set(b"one").expect("set");
        faults.fail_nth(Op::Mutation, 2, ErrorKind::Other);
        store
            .set_metadata(&id, "parent", b"a")
            .expect("1st mutation");
        let err = store
            .set_metadata(&id, "parent", b"b")
            .expect_err("2nd mutation fails");
        assert!(err.to_string().contains("injected"), "{err}");
        assert_eq!(
            store.get_metadata(&id, "parent").expect("md").as_deref(),
            Some(&b"a"[..])
        );
        faults.fail_nth(Op::Delete, 1, ErrorKind::Other);
        store.delete(&id).expect_err("delete fails");
        assert_eq!(store.get(&id).expect("still there"), b"one");
        faults.fail_nth(Op::Get, 1, ErrorKind::Other);
        store.get(&id).expect_err("get fails");
        assert_eq!(faults.count(Op::Set), 1);
        assert_eq!(faults.count(Op::SetMetadata), 2);
        assert_eq!(faults.count(Op::Delete), 1);
        assert_eq!(faults.count(Op::Mutation), 4);
        store.delete(&id).expect("delete");
        store.inner().walk().expect("walk");
    }
}
