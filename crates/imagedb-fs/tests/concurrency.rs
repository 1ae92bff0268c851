//! Several threads reading and writing at once, then a consistency check.

use std::collections::BTreeSet;

use digest_set::Digest;
use imagedb_fs::{FsBackend, MemBackend, StoreBackend};

const WRITERS: u64 = 4;
const PER_WRITER: u64 = 24;

fn config(writer: u64, i: u64) -> Vec<u8> {
    format!("{{\"writer\":{writer},\"i\":{i},\"rootfs\":{{\"type\":\"layers\"}}}}").into_bytes()
}

fn hammer(store: &dyn StoreBackend) {
    // Shared content that everyone rewrites, to race set against set on one name.
    let shared = store.set(b"shared config").expect("set shared");
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            s.spawn(move || {
                for i in 0..PER_WRITER {
                    let data = config(w, i);
                    let id = store.set(&data).expect("set");
                    store
                        .set_metadata(&id, "lastUpdated", format!("{w}-{i}").as_bytes())
                        .expect("set md");
                    store.set(b"shared config").expect("rewrite shared");
                    store
                        .set_metadata(&shared, &format!("w{w}"), &i.to_be_bytes())
                        .expect("shared md");
                    // Every third one is deleted again.
                    if i % 3 == 0 {
                        store.delete(&id).expect("delete");
                    }
                }
            });
        }
        for _ in 0..2 {
            s.spawn(move || {
                for _ in 0..20 {
                    for id in store.walk().expect("walk") {
                        // Content may vanish between walk and get; otherwise it verifies.
                        match store.get(&id) {
                            Ok(bytes) => assert_eq!(Digest::sha256(&bytes), id),
                            Err(e) => assert!(e.is_not_found(), "{e}"),
                        }
                        match store.get_metadata(&id, "lastUpdated") {
                            Ok(_) => {}
                            Err(e) => assert!(e.is_not_found(), "{e}"),
                        }
                    }
                    assert_eq!(store.get(&shared).expect("shared"), b"shared config");
                }
            });
        }
    });

    let mut expected: BTreeSet<Digest> = BTreeSet::new();
    expected.insert(shared);
    for w in 0..WRITERS {
        for i in 0..PER_WRITER {
            let id = Digest::sha256(&config(w, i));
            if i % 3 != 0 {
                expected.insert(id);
                assert_eq!(
                    store
                        .get_metadata(&id, "lastUpdated")
                        .expect("md")
                        .as_deref(),
                    Some(format!("{w}-{i}").as_bytes())
                );
            }
        }
        assert_eq!(
            store
                .get_metadata(&shared, &format!("w{w}"))
                .expect("md")
                .as_deref(),
            Some(&(PER_WRITER - 1).to_be_bytes()[..])
        );
    }
    let walked: BTreeSet<Digest> = store.walk().expect("walk").into_iter().collect();
    assert_eq!(walked, expected);
    for id in &walked {
        assert_eq!(Digest::sha256(&store.get(id).expect("get")), *id);
    }
    // Deleted content left no metadata behind.
    let md: BTreeSet<Digest> = store.metadata_digests().expect("md").into_iter().collect();
    assert_eq!(md, expected);
    assert!(
        store.cleanup().expect("cleanup").is_empty(),
        "no temp files left"
    );
}

#[test]
fn concurrent_fs_backend() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FsBackend::open(dir.path()).expect("open");
    hammer(&store);
    // A second instance on the same root sees the same state.
    let reopened = FsBackend::open(dir.path()).expect("reopen");
    assert_eq!(reopened.walk().expect("walk"), store.walk().expect("walk"));
}

#[test]
fn concurrent_mem_backend() {
    hammer(&MemBackend::new());
}
