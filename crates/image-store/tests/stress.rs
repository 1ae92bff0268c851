//! Several threads create, delete, re-parent and search at once; the invariants hold after.

use crate::common;

use std::sync::Arc;
use std::thread;

use common::{CountingLayers, chain, check_disk, check_invariants, config, diff, snapshot};
use image_store::{ImageId, ImageStore};
use imagedb_fs::MemBackend;

const CONFIGS: usize = 32;
const THREADS: usize = 4;
const OPS: usize = 400;

fn cfg(i: usize) -> Vec<u8> {
    let d: Vec<_> = (0..(i % 4) as u64).map(diff).collect();
    config(&format!("stress {i}"), &d)
}

#[test]
fn concurrent_writers_and_readers_keep_invariants() {
    let layers = CountingLayers::new();
    for n in 1..4u64 {
        let d: Vec<_> = (0..n).map(diff).collect();
        layers.add(chain(&d));
    }
    let (store, _) = ImageStore::open(MemBackend::new(), layers).expect("open");
    let store = Arc::new(store);
    let ids: Vec<ImageId> = (0..CONFIGS).map(|i| ImageId::of_config(&cfg(i))).collect();
    let mut threads = Vec::new();
    for t in 0..THREADS {
        let store = Arc::clone(&store);
        let ids = ids.clone();
        threads.push(thread::spawn(move || {
            // A small xorshift PRNG per thread.
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1);
            let mut next = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            for _ in 0..OPS {
                let r = next();
                let i = (r >> 8) as usize % CONFIGS;
                let j = (r >> 24) as usize % CONFIGS;
                match r % 8 {
                    0..=2 => {
                        store.create(&cfg(i)).expect("create");
                    }
                    3 => {
                        let _ = store.delete(&ids[i]);
                    }
                    4 | 5 => {
                        let _ = store.set_parent(&ids[i], &ids[j]);
                    }
                    6 => {
                        if let Ok(found) = store.search(&ids[i].short()) {
                            assert_eq!(found, ids[i]);
                        }
                    }
                    _ => {
                        let heads = store.heads();
                        let map = store.map();
                        assert!(heads.len() <= map.len() + THREADS);
                        let _ = store.children(&ids[i]);
                        let _ = store.get_parent(&ids[j]);
                    }
                }
            }
        }));
    }
    for t in threads {
        t.join().expect("thread");
    }
    let store = Arc::into_inner(store).expect("sole owner");
    check_invariants(&store);
    check_disk(&store);
    let before = snapshot(&store);
    // No cycles: walking up from any image ends.
    for id in &before.0 {
        let mut cursor = Some(*id);
        let mut steps = 0;
        while let Some(c) = cursor {
            cursor = before.1.get(&c).copied().flatten();
            steps += 1;
            assert!(steps <= CONFIGS, "cycle through {id}");
        }
    }
    let (backend, layers) = store.into_parts();
    layers.restart();
    let (store, _) = ImageStore::open(backend, layers).expect("reopen");
    assert_eq!(snapshot(&store), before);
    check_invariants(&store);
}
