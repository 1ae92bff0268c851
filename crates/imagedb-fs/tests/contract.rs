//! The same contract, run against every backend.

use crate::common;

use imagedb_fs::{Faults, FaultyBackend, FsBackend, MemBackend, StoreBackend};

#[test]
fn fs_backend_contract() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FsBackend::open(dir.path().join("imagedb")).expect("open");
    common::contract(&store);
}

#[test]
fn mem_backend_contract() {
    common::contract(&MemBackend::new());
}

#[test]
fn faulty_wrapper_without_rules_keeps_the_contract() {
    common::contract(&FaultyBackend::new(MemBackend::new(), Faults::new()));
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FsBackend::open_with_faults(dir.path(), Faults::new()).expect("open");
    common::contract(&FaultyBackend::new(store, Faults::new()));
}

#[test]
fn backends_are_usable_as_trait_objects_across_threads() {
    fn assert_send_sync<T: Send + Sync + ?Sized>() {}
    assert_send_sync::<dyn StoreBackend>();
    assert_send_sync::<FsBackend>();
    assert_send_sync::<MemBackend>();
    assert_send_sync::<FaultyBackend<MemBackend>>();
}

#[test]
fn mem_backend_verifies_content() {
    let store = MemBackend::new();
    let id = digest_set::Digest::sha256(b"original");
    store.insert_unchecked(id, b"tampered".to_vec());
    let err = store.get(&id).expect_err("tampered");
    assert!(err.is_verify_failure(), "{err}");
    store.insert_unchecked(id, Vec::new());
    let err = store.get(&id).expect_err("empty");
    assert!(err.to_string().contains("empty"), "{err}");
    assert!(err.is_corrupt());
    assert_eq!(store.len(), 1);
}
