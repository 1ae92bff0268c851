//! `StoreBackend::bulk_reader`: the same results as `get` and `get_metadata`, on good and bad
//! data alike.

use std::fs;
use std::os::unix::fs::symlink;

use digest_set::Digest;
use imagedb_fs::{Error, FsBackend, MemBackend, StoreBackend};

/// A comparable rendering of a result (errors by kind, message and path).
fn show<T: std::fmt::Debug>(r: &Result<T, Error>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(e) => format!("err {e} at {:?} corrupt={}", e.path(), e.is_corrupt()),
    }
}

fn check_same(store: &dyn StoreBackend, ids: &[Digest], metadata_ids: &[Digest]) {
    let reader = store.bulk_reader().expect("reader");
    for id in ids {
        assert_eq!(show(&reader.get(id)), show(&store.get(id)), "get {id}");
    }
    for id in metadata_ids {
        for key in ["parent", "missing", "../x"] {
            assert_eq!(
                show(&reader.get_metadata(id, key)),
                show(&store.get_metadata(id, key)),
                "get_metadata {id} {key}"
            );
        }
    }
}

#[test]
fn fs_reader_matches_get_and_get_metadata() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FsBackend::open(dir.path()).expect("open");
    let md = dir.path().join("metadata/sha256");
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(store.set(format!("config {i}").as_bytes()).expect("set"));
    }
    let [
        plain,
        _no_md,
        md_no_key,
        md_file,
        md_link,
        key_link,
        key_dir,
        corrupt,
        empty,
        c_link,
    ] = ids[..]
    else {
        unreachable!()
    };
    store
        .set_metadata(&plain, "parent", b"sha256:1")
        .expect("md");
    store.set_metadata(&md_no_key, "other", b"x").expect("md");
    fs::write(md.join(md_file.hex()), b"junk").expect("file");
    symlink(md.join(plain.hex()), md.join(md_link.hex())).expect("link");
    fs::create_dir(md.join(key_link.hex())).expect("mkdir");
    symlink(
        md.join(plain.hex()).join("parent"),
        md.join(key_link.hex()).join("parent"),
    )
    .expect("link");
    fs::create_dir_all(md.join(key_dir.hex()).join("parent")).expect("mkdir");
    fs::write(store.content_path(&corrupt), b"other bytes").expect("write");
    fs::write(store.content_path(&empty), b"").expect("write");
    fs::remove_file(store.content_path(&c_link)).expect("rm");
    symlink(store.content_path(&plain), store.content_path(&c_link)).expect("link");

    let missing = Digest::sha256(b"never stored");
    let sha512 = Digest::sha512(b"config 0");
    let mut all = ids.clone();
    all.extend([missing, sha512]);
    // The reader may skip the content check of get_metadata: compare where content exists.
    let with_content: Vec<Digest> = ids.iter().copied().filter(|i| *i != c_link).collect();
    check_same(&store, &all, &with_content);

    // Without a metadata directory at all.
    fs::remove_dir_all(&md).expect("rm");
    check_same(&store, &all, &with_content);
}

#[test]
fn default_reader_forwards() {
    let store = MemBackend::new();
    let id = store.set(b"config").expect("set");
    store.set_metadata(&id, "parent", b"p").expect("md");
    check_same(&store, &[id, Digest::sha256(b"x")], &[id]);
}
