//! moby's `image/fs_test.go`, case by case (by behaviour; messages are this crate's own).
//! Backend-independent cases also run against MemBackend in `contract.rs`.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use digest_set::Digest;
use imagedb_fs::{Error, FsBackend, StoreBackend};

fn open() -> (tempfile::TempDir, FsBackend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FsBackend::open(dir.path()).expect("open");
    (dir, store)
}

/// TestFSGetInvalidData: a tampered file fails verification.
#[test]
fn get_invalid_data() {
    let (_dir, store) = open();
    let id = store.set(b"foobar").expect("set");
    fs::write(store.content_path(&id), b"foobar2").expect("tamper");
    let err = store.get(&id).expect_err("tampered");
    assert!(matches!(err, Error::Verify { .. }), "{err}");
    assert!(err.to_string().contains("failed to verify"), "{err}");
    assert!(err.to_string().contains(&id.hex()), "names the file: {err}");
    assert!(err.is_corrupt() && !err.is_not_found());
}

/// TestFSInvalidSet: a directory at the target path is refused, not written through.
#[test]
fn invalid_set_over_directory() {
    let (_dir, store) = open();
    let id = Digest::sha256(b"foobar");
    fs::create_dir(store.content_path(&id)).expect("mkdir");
    let err = store.set(b"foobar").expect_err("directory target");
    match &err {
        Error::NotAFile { path, what } => {
            assert_eq!(path, &store.content_path(&id));
            assert_eq!(*what, "directory");
        }
        other => panic!("expected NotAFile, got {other:?}"),
    }
    assert!(store.content_path(&id).is_dir(), "untouched");
    assert!(store.cleanup().expect("cleanup").is_empty(), "no temp left");
}

/// TestFSInvalidRoot: a file where root, content or metadata should be.
#[test]
fn invalid_root() {
    for file_at in [
        "",
        "content",
        "metadata",
        "content/sha256",
        "metadata/sha256",
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("root");
        if let Some(parent) = root.join(file_at).parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        let bad = if file_at.is_empty() {
            root.clone()
        } else {
            root.join(file_at)
        };
        fs::write(&bad, b"").expect("file");
        let err = FsBackend::open(&root).expect_err("file in the way");
        match &err {
            Error::NotADirectory { path, .. } => assert_eq!(path, &bad, "{err}"),
            other => panic!("{file_at}: expected NotADirectory, got {other:?}"),
        }
        assert!(err.to_string().contains(&*bad.to_string_lossy()));
    }
    // A file further up the path.
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("f"), b"").expect("file");
    let err = FsBackend::open(dir.path().join("f/imagedb")).expect_err("parent is a file");
    assert!(matches!(err, Error::NotADirectory { .. }), "{err:?}");
}

/// `open` creates the layout (MkdirAll semantics) with mode 0700.
#[test]
fn open_creates_layout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("a/b/imagedb");
    let _store = FsBackend::open(&root).expect("open");
    for sub in [
        "",
        "content",
        "content/sha256",
        "metadata",
        "metadata/sha256",
    ] {
        let meta = fs::metadata(root.join(sub)).expect("created");
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o777, 0o700, "{sub}");
    }
    // Opening again is fine.
    FsBackend::open(&root).expect("reopen");
}

/// TestFSMetadataGetSet: metadata files land in Docker's layout with Docker's modes.
#[test]
fn metadata_layout() {
    let (_dir, store) = open();
    let id = store.set(b"foobar").expect("set");
    store
        .set_metadata(&id, "parent", b"sha256:abc")
        .expect("set md");
    let path = store.metadata_path(&id, "parent").expect("path");
    assert_eq!(
        path,
        store
            .root()
            .join("metadata/sha256")
            .join(id.hex())
            .join("parent")
    );
    assert_eq!(fs::read(&path).expect("read"), b"sha256:abc");
    let mode = |p: &std::path::Path| fs::metadata(p).expect("stat").permissions().mode() & 0o7777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().expect("dir")), 0o700);
    assert_eq!(mode(&store.content_path(&id)), 0o600);
    assert!(matches!(
        store.metadata_path(&id, "../x"),
        Err(Error::InvalidKey { .. })
    ));
}

/// TestFSInvalidWalker: names that are not digests are skipped.
#[test]
fn invalid_walker_names_skipped() {
    let (_dir, store) = open();
    let id = store.set(b"foobar").expect("set");
    let content = store.root().join("content/sha256");
    for stray in [
        "foobar".to_owned(),
        format!(".tmp-{}-0123456789abcdef", id.hex()),
        id.hex().to_uppercase(),
        format!("{}0", id.hex()),
        id.hex()[1..].to_owned(),
    ] {
        fs::write(content.join(stray), b"x").expect("stray");
    }
    assert_eq!(store.walk().expect("walk"), vec![id]);
    // The same for metadata directories.
    fs::create_dir(store.root().join("metadata/sha256/foobar")).expect("mkdir");
    store.set_metadata(&id, "k", b"v").expect("md");
    assert_eq!(store.metadata_digests().expect("md digests"), vec![id]);
}

/// TestFSWalker: two ids give two entries, sorted. (TestFSWalkerStopOnError does not apply:
/// `walk` returns a Vec instead of calling back, so there is no callback error to propagate;
/// a failing directory read is returned as an error instead.)
#[test]
fn walker_counts() {
    let (_dir, store) = open();
    let a = store.set(b"foo").expect("set");
    let b = store.set(b"bar").expect("set");
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(store.walk().expect("walk"), expected);
}

/// A walk of a root whose content directory vanished is an error naming it.
#[test]
fn walk_error_is_returned() {
    let (_dir, store) = open();
    let content = store.root().join("content/sha256");
    fs::remove_dir(&content).expect("rmdir");
    fs::write(&content, b"").expect("file in its place");
    let err = store.walk().expect_err("not a dir");
    assert!(err.to_string().contains("content/sha256"), "{err}");
}

/// TestFSGetSet / TestFSDelete are in the shared contract; here the on-disk side of them.
#[test]
fn set_writes_docker_bytes() {
    let (_dir, store) = open();
    let id = store.set(b"foobar").expect("set");
    assert_eq!(id.to_string(), common::FOOBAR_ID);
    assert_eq!(fs::read(store.content_path(&id)).expect("read"), b"foobar");
    let data = common::pseudo_random(8192, 7);
    let id2 = store.set(&data).expect("set");
    assert_eq!(fs::read(store.content_path(&id2)).expect("read"), data);
    store.delete(&id).expect("delete");
    assert!(!store.content_path(&id).exists());
    assert!(store.content_path(&id2).exists());
}
