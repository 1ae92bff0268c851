//! `FsBackend::open_existing`: reads an existing imagedb and creates nothing.

use imagedb_fs::{FsBackend, StoreBackend};

#[test]
fn open_existing_creates_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("imagedb");
    // Missing layout: an error, and nothing created.
    let err = FsBackend::open_existing(&root).expect_err("missing content dir");
    assert!(err.to_string().contains("content/sha256"), "{err}");
    assert!(!root.exists());

    // Content without a metadata directory: readable, no metadata, still nothing created.
    let id = FsBackend::open(&root)
        .expect("open")
        .set(b"{\"a\":1}")
        .expect("set");
    std::fs::remove_dir_all(root.join("metadata")).expect("rm metadata");
    let ro = FsBackend::open_existing(&root).expect("open existing");
    assert_eq!(ro.walk().expect("walk"), vec![id]);
    assert_eq!(ro.get(&id).expect("get"), b"{\"a\":1}");
    assert!(ro.get_metadata(&id, "parent").expect("meta").is_none());
    assert!(ro.metadata_digests().expect("digests").is_empty());
    let reader = ro.bulk_reader().expect("bulk reader");
    assert!(reader.get_metadata(&id, "parent").expect("meta").is_none());
    drop(reader);
    assert!(!root.join("metadata").exists());

    // Something else than a directory in place of content/sha256.
    std::fs::remove_dir_all(root.join("content/sha256")).expect("rm");
    std::fs::write(root.join("content/sha256"), b"x").expect("write");
    let err = FsBackend::open_existing(&root).expect_err("not a dir");
    assert!(err.to_string().contains("not a directory"), "{err}");
}
