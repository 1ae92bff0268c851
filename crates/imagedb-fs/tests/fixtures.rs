//! The real imagedbs written by dockerd 20.10: read them, and write back what dockerd wrote.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use digest_set::{Algorithm, Digest};
use imagedb_fs::{FsBackend, StoreBackend};

/// Every regular file under `dir`, relative path -> (bytes, mode).
fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read_dir") {
            let entry = entry.expect("entry");
            let meta = fs::symlink_metadata(entry.path()).expect("stat");
            let rel = entry
                .path()
                .strip_prefix(dir)
                .expect("prefix")
                .to_string_lossy()
                .into_owned();
            if meta.is_dir() {
                out.insert(
                    format!("{rel}/"),
                    (Vec::new(), meta.permissions().mode() & 0o7777),
                );
                stack.push(entry.path());
            } else {
                let bytes = fs::read(entry.path()).expect("read");
                out.insert(rel, (bytes, meta.permissions().mode() & 0o7777));
            }
        }
    }
    out
}

fn content_files(imagedb: &Path) -> Vec<Digest> {
    let mut ids: Vec<Digest> = fs::read_dir(imagedb.join("content/sha256"))
        .expect("read_dir")
        .map(|e| {
            let name = e.expect("entry").file_name();
            Digest::from_hex(Algorithm::Sha256, name.to_str().expect("utf-8")).expect("hex name")
        })
        .collect();
    ids.sort();
    ids
}

#[test]
fn reads_every_fixture() {
    for name in common::FIXTURES {
        let (_tmp, imagedb) = common::extract_fixture(name);
        let store = FsBackend::open(&imagedb).expect("open fixture");
        let ids = store.walk().expect("walk");
        assert_eq!(
            ids,
            content_files(&imagedb),
            "{name}: walk gives exactly the files"
        );
        for id in &ids {
            let bytes = store.get(id).expect("get verifies");
            assert_eq!(bytes, fs::read(store.content_path(id)).expect("read"));
            for key in ["parent", "lastUpdated"] {
                let path = imagedb.join("metadata/sha256").join(id.hex()).join(key);
                let on_disk = fs::read(&path).ok();
                assert_eq!(
                    store.get_metadata(id, key).expect("get_metadata"),
                    on_disk,
                    "{name}: {key} of {id} byte-exact"
                );
            }
            assert_eq!(store.get_metadata(id, "builtLocally").expect("md"), None);
        }
        // Every metadata dir in these fixtures belongs to existing content.
        let md = store.metadata_digests().expect("metadata digests");
        assert!(md.iter().all(|d| ids.contains(d)), "{name}");
        assert!(store.cleanup().expect("cleanup").is_empty());
    }
}

#[test]
fn fixture_counts_and_values() {
    let (_tmp, imagedb) = common::extract_fixture("dockerroot-02-after-build");
    let store = FsBackend::open(&imagedb).expect("open");
    let ids = store.walk().expect("walk");
    assert_eq!(ids.len(), 4);
    let base: Digest = "sha256:7db95e6e4fe3a141e68c2ff6cc0267d1fb63728cf6b9fa326a05ecb3b43ea6fe"
        .parse()
        .expect("digest");
    assert!(ids.contains(&base));
    assert_eq!(store.get_metadata(&base, "parent").expect("md"), None);
    let updated = store
        .get_metadata(&base, "lastUpdated")
        .expect("md")
        .expect("lastUpdated is set");
    assert_eq!(updated.len(), 30);
    assert_ne!(updated.last(), Some(&b'\n'), "no trailing newline");
    let mut with_parent = 0;
    for id in &ids {
        if let Some(parent) = store.get_metadata(id, "parent").expect("md") {
            with_parent += 1;
            let text = std::str::from_utf8(&parent).expect("utf-8");
            let parent: Digest = text.parse().expect("parent is a digest, no newline");
            assert!(ids.contains(&parent));
        }
    }
    assert_eq!(with_parent, 3);

    for (name, count) in [
        ("dockerroot-01-after-load", 1),
        ("dockerroot-04-after-partial-rm", 1),
        ("dockerroot-05-after-full-rm", 0),
    ] {
        let (_tmp, imagedb) = common::extract_fixture(name);
        let store = FsBackend::open(&imagedb).expect("open");
        assert_eq!(store.walk().expect("walk").len(), count, "{name}");
    }
}

/// Rewriting everything through the backend reproduces dockerd's files: same bytes, same
/// modes, same directory modes, nothing else left behind.
#[test]
fn rewrite_reproduces_dockerd_bytes_and_modes() {
    for name in common::FIXTURES {
        let (_tmp, original) = common::extract_fixture(name);
        let before = snapshot(&original);

        // In place: set every config and metadata value again.
        let store = FsBackend::open(&original).expect("open");
        for id in store.walk().expect("walk") {
            let bytes = store.get(&id).expect("get");
            assert_eq!(store.set(&bytes).expect("set"), id);
            for key in ["parent", "lastUpdated"] {
                if let Some(v) = store.get_metadata(&id, key).expect("md") {
                    store.set_metadata(&id, key, &v).expect("set md");
                }
            }
        }
        assert_eq!(snapshot(&original), before, "{name}: in-place rewrite");

        // Into a fresh root: the same tree comes out (modes included, umask ignored).
        let fresh_dir = tempfile::tempdir().expect("temp dir");
        let fresh_root = fresh_dir.path().join("imagedb");
        let fresh = FsBackend::open(&fresh_root).expect("open fresh");
        for id in store.walk().expect("walk") {
            assert_eq!(fresh.set(&store.get(&id).expect("get")).expect("set"), id);
            for key in ["parent", "lastUpdated"] {
                if let Some(v) = store.get_metadata(&id, key).expect("md") {
                    fresh.set_metadata(&id, key, &v).expect("set md");
                }
            }
        }
        assert_eq!(snapshot(&fresh_root), before, "{name}: fresh write");
        let root_mode = fs::metadata(&fresh_root)
            .expect("stat")
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(root_mode, 0o700);
    }
}
