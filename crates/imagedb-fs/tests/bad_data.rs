//! Bad data on disk: each case is a typed error naming the path, never a panic.

use crate::common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};

use digest_set::Digest;
use imagedb_fs::{Error, FsBackend, MAX_CONFIG_SIZE, StoreBackend};

fn open() -> (tempfile::TempDir, FsBackend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FsBackend::open(dir.path()).expect("open");
    (dir, store)
}

fn names_path(err: &Error, path: &std::path::Path) {
    assert_eq!(err.path(), Some(path), "{err:?}");
    assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
}

#[test]
fn directory_where_config_should_be() {
    let (_dir, store) = open();
    let id = Digest::sha256(b"config");
    let path = store.content_path(&id);
    fs::create_dir(&path).expect("mkdir");
    assert_eq!(
        store.walk().expect("walk"),
        vec![id],
        "listed, as moby does"
    );
    let err = store.get(&id).expect_err("directory");
    assert!(
        matches!(
            err,
            Error::NotAFile {
                what: "directory",
                ..
            }
        ),
        "{err:?}"
    );
    names_path(&err, &path);
    // Metadata calls see it is not a file either.
    let err = store.get_metadata(&id, "parent").expect_err("directory");
    assert!(matches!(err, Error::NotAFile { .. }), "{err:?}");
    let err = store.delete(&id).expect_err("directory");
    assert!(matches!(err, Error::NotAFile { .. }), "{err:?}");
    assert!(path.is_dir(), "left alone");
}

#[test]
fn symlink_where_config_should_be_is_not_followed() {
    let (dir, store) = open();
    let data = b"config";
    let id = Digest::sha256(data);
    let target = dir.path().join("elsewhere");
    fs::write(&target, data).expect("target");
    let path = store.content_path(&id);
    symlink(&target, &path).expect("symlink");
    let err = store.get(&id).expect_err("symlink");
    assert!(
        matches!(
            err,
            Error::NotAFile {
                what: "symbolic link",
                ..
            }
        ),
        "{err:?}"
    );
    names_path(&err, &path);
    // Writing over it is refused too, and the link's target is untouched.
    let err = store.set(data).expect_err("symlink target");
    assert!(matches!(err, Error::NotAFile { .. }), "{err:?}");
    assert_eq!(fs::read(&target).expect("read"), data);
    // A dangling symlink is not followed either.
    let id2 = Digest::sha256(b"other");
    symlink(dir.path().join("missing"), store.content_path(&id2)).expect("symlink");
    assert!(matches!(store.get(&id2), Err(Error::NotAFile { .. })));
    // Metadata symlinks are not followed.
    let real = store.set(b"real").expect("set");
    let md_dir = store.root().join("metadata/sha256").join(real.hex());
    fs::create_dir(&md_dir).expect("mkdir");
    symlink(&target, md_dir.join("parent")).expect("symlink");
    assert!(matches!(
        store.get_metadata(&real, "parent"),
        Err(Error::NotAFile { .. })
    ));
    assert!(matches!(
        store.set_metadata(&real, "parent", b"x"),
        Err(Error::NotAFile { .. })
    ));
    assert_eq!(fs::read(&target).expect("read"), data);
}

#[test]
fn zero_byte_config_says_empty() {
    let (_dir, store) = open();
    let id = Digest::sha256(b"{\"rootfs\":{}}");
    let path = store.content_path(&id);
    fs::write(&path, b"").expect("empty file");
    let err = store.get(&id).expect_err("empty");
    assert!(matches!(err, Error::EmptyContent { .. }), "{err:?}");
    assert!(err.is_verify_failure() && err.is_corrupt());
    assert!(err.to_string().contains("empty"), "{err}");
    names_path(&err, &path);
}

#[test]
fn truncated_config_fails_verification() {
    let (_dir, store) = open();
    let data = br#"{"architecture":"amd64","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let id = store.set(data).expect("set");
    let path = store.content_path(&id);
    fs::write(&path, &data[..data.len() / 2]).expect("truncate");
    let err = store.get(&id).expect_err("truncated");
    match &err {
        Error::Verify {
            id: got,
            actual,
            path: p,
        } => {
            assert_eq!(got, &id);
            assert_eq!(actual, &Digest::sha256(&data[..data.len() / 2]).to_string());
            assert_eq!(p, &path);
        }
        other => panic!("expected Verify, got {other:?}"),
    }
}

#[test]
fn unreadable_config() {
    let (_dir, store) = open();
    let id = store.set(b"secret").expect("set");
    let path = store.content_path(&id);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).expect("chmod");
    let reading_fails = fs::read(&path).is_err();
    match store.get(&id) {
        Err(err) => {
            assert!(reading_fails, "only fails when the OS refuses: {err}");
            assert!(matches!(err, Error::Io { .. }), "{err:?}");
            names_path(&err, &path);
        }
        Ok(bytes) => {
            // Running as root: permissions do not stop reading.
            assert!(!reading_fails || common::is_root());
            assert_eq!(bytes, b"secret");
        }
    }
}

#[test]
fn unreadable_directory() {
    let (_dir, store) = open();
    let id = store.set(b"x").expect("set");
    let content = store.root().join("content/sha256");
    fs::set_permissions(&content, fs::Permissions::from_mode(0o000)).expect("chmod");
    let denied = fs::read_dir(&content).is_err();
    let walked = store.walk();
    fs::set_permissions(&content, fs::Permissions::from_mode(0o700)).expect("chmod back");
    match walked {
        Err(err) => {
            assert!(denied);
            assert!(err.to_string().contains("content/sha256"), "{err}");
        }
        Ok(ids) => assert_eq!(ids, vec![id]),
    }
}

#[test]
fn config_over_size_limit() {
    let (_dir, store) = open();
    let id = Digest::sha256(b"huge");
    let path = store.content_path(&id);
    let file = fs::File::create(&path).expect("create");
    file.set_len(MAX_CONFIG_SIZE + 1).expect("sparse file");
    let err = store.get(&id).expect_err("too large");
    match &err {
        Error::TooLarge { size, limit, .. } => {
            assert_eq!(*size, MAX_CONFIG_SIZE + 1);
            assert_eq!(*limit, MAX_CONFIG_SIZE);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    names_path(&err, &path);
    // Exactly at the limit is read (and then fails verification, as its name is wrong).
    file.set_len(MAX_CONFIG_SIZE).expect("shrink");
    assert!(matches!(store.get(&id), Err(Error::Verify { .. })));
    // set refuses what get would refuse.
    let big = vec![b'x'; usize::try_from(MAX_CONFIG_SIZE).expect("fits") + 1];
    assert!(matches!(store.set(&big), Err(Error::TooLarge { .. })));
}

#[test]
fn copes_with_missing_metadata_dir_and_unknown_dirs() {
    let (_dir, store) = open();
    let root = store.root().to_path_buf();
    let id = store.set(b"foobar").expect("set");
    // Unknown algorithm directories and files are left alone.
    fs::create_dir_all(root.join("content/sha512")).expect("mkdir");
    let sha512 = Digest::sha512(b"foobar");
    fs::write(root.join("content/sha512").join(sha512.hex()), b"foobar").expect("write");
    fs::create_dir_all(root.join("metadata/sha512")).expect("mkdir");
    fs::create_dir(root.join("content/unknown")).expect("mkdir");
    assert_eq!(store.walk().expect("walk"), vec![id]);
    assert!(store.get(&sha512).expect_err("sha512").is_not_found());
    assert!(
        store
            .set_metadata(&sha512, "k", b"v")
            .expect_err("sha512")
            .is_not_found()
    );
    store.delete_metadata(&sha512, "k").expect("no-op");
    // metadata/sha256 removed entirely: reads cope, writes recreate nothing they should not.
    fs::remove_dir_all(root.join("metadata/sha256")).expect("rm");
    assert!(store.metadata_digests().expect("md").is_empty());
    assert_eq!(store.get_metadata(&id, "parent").expect("md"), None);
    store.delete_metadata(&id, "parent").expect("delete md");
    store.delete(&id).expect("delete");
    // Reopening recreates it.
    FsBackend::open(&root).expect("reopen");
    assert!(root.join("metadata/sha256").is_dir());
    assert!(
        root.join("content/sha512").join(sha512.hex()).exists(),
        "untouched"
    );
}

#[test]
fn metadata_dir_replaced_by_file() {
    let (_dir, store) = open();
    let id = store.set(b"foobar").expect("set");
    let md_dir = store.root().join("metadata/sha256").join(id.hex());
    fs::write(&md_dir, b"junk").expect("file");
    let err = store
        .set_metadata(&id, "parent", b"x")
        .expect_err("not a dir");
    assert!(matches!(err, Error::NotADirectory { .. }), "{err:?}");
    names_path(&err, &md_dir);
    let err = store.get_metadata(&id, "parent").expect_err("not a dir");
    assert!(
        err.to_string().contains(&*md_dir.to_string_lossy()),
        "{err}"
    );
    // delete cleans it up together with the content.
    store.delete(&id).expect("delete");
    assert!(!md_dir.exists());
}

#[test]
fn metadata_key_that_is_a_directory() {
    let (_dir, store) = open();
    let id = store.set(b"foobar").expect("set");
    let key_path = store.metadata_path(&id, "parent").expect("path");
    fs::create_dir_all(&key_path).expect("mkdir");
    assert!(matches!(
        store.get_metadata(&id, "parent"),
        Err(Error::NotAFile { .. })
    ));
    assert!(matches!(
        store.set_metadata(&id, "parent", b"x"),
        Err(Error::NotAFile { .. })
    ));
    assert!(matches!(
        store.delete_metadata(&id, "parent"),
        Err(Error::NotAFile { .. })
    ));
}

#[test]
fn oversized_metadata_is_refused() {
    let (_dir, store) = open();
    let id = store.set(b"foobar").expect("set");
    let path = store.metadata_path(&id, "parent").expect("path");
    fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
    fs::File::create(&path)
        .expect("create")
        .set_len(MAX_CONFIG_SIZE + 1)
        .expect("sparse");
    assert!(matches!(
        store.get_metadata(&id, "parent"),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn symlinked_metadata_dir_is_not_followed() {
    let (dir, store) = open();
    let id = store.set(b"foobar").expect("set");
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).expect("mkdir");
    fs::write(elsewhere.join("parent"), b"sha256:planted").expect("write");
    let md_dir = store.root().join("metadata/sha256").join(id.hex());
    symlink(&elsewhere, &md_dir).expect("symlink");
    let err = store
        .get_metadata(&id, "parent")
        .expect_err("symlinked dir");
    assert!(matches!(err, Error::NotADirectory { .. }), "{err:?}");
    names_path(&err, &md_dir);
    let err = store
        .set_metadata(&id, "lastUpdated", b"x")
        .expect_err("symlinked dir");
    assert!(matches!(err, Error::NotADirectory { .. }), "{err:?}");
    store.delete_metadata(&id, "parent").expect("no-op");
    assert!(!elsewhere.join("lastUpdated").exists());
    assert!(
        elsewhere.join("parent").exists(),
        "not removed through the link"
    );
    // delete removes the link, not what it points to.
    store.delete(&id).expect("delete");
    assert!(fs::symlink_metadata(&md_dir).is_err());
    assert!(elsewhere.join("parent").exists());
}

#[test]
fn symlinked_layout_dirs_are_refused() {
    // The imagedb itself may be a symlink (a data root on another disk); the layout
    // directories beneath it may not: a crafted root must not lead reads or writes outside.
    let dir = tempfile::tempdir().expect("temp dir");
    let real = dir.path().join("real");
    fs::create_dir_all(real.join("content/sha256")).expect("mkdir");
    let root = dir.path().join("root");
    fs::create_dir(&root).expect("mkdir");
    symlink(real.join("content"), root.join("content")).expect("symlink");
    let err = FsBackend::open(&root).expect_err("symlinked content dir");
    assert!(matches!(err, Error::NotADirectory { .. }), "{err:?}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    // The root itself may be a link.
    let linked_root = dir.path().join("linked");
    symlink(&real, &linked_root).expect("symlink");
    let store = FsBackend::open(&linked_root).expect("open through a linked root");
    let id = store.set(b"foobar").expect("set");
    assert_eq!(store.get(&id).expect("get"), b"foobar");
}
