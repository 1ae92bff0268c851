//! `register` into the overlay2 driver, side by side with GNU tar: `tar -x` of the same layer
//! into a fresh directory followed by `sync` (our writes are durable: `register` syncs the
//! layer's content and its layerdb entry). Two layers: 20k small files (2 KiB each, in 100
//! directories) and 200 MiB of large files (50 of 4 MiB). Needs root (overlay2 writes
//! character devices and `trusted.*` xattrs); prints why and does nothing otherwise.
//!
//! Run: `cargo bench -p layer-store --bench overlay2`
#![allow(missing_docs)]

use std::fs;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use layer_store::{LayerStore, Overlay2Driver, RegisterOptions};

struct Fixture {
    _tmp: tempfile::TempDir,
    tar: PathBuf,
    len: u64,
}

/// A layer of `files` files of `file_size` bytes (pseudo-random content) in `dirs`
/// directories, with directory entries first, as docker writes layers.
fn fixture_of(files: usize, file_size: usize, dirs: usize) -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tar = tmp.path().join("layer.tar");
    let f = fs::File::create(&tar).expect("create");
    let mut b = tar::Builder::new(std::io::BufWriter::new(f));
    for d in 0..dirs {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o755);
        h.set_mtime(1_600_000_000);
        b.append_data(&mut h, format!("dir{d}/"), &[][..])
            .expect("append");
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut data = vec![0u8; file_size];
    for i in 0..files {
        for chunk in data.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(file_size as u64);
        h.set_mode(0o644);
        h.set_mtime(1_600_000_000);
        b.append_data(&mut h, format!("dir{}/file{i}", i % dirs), &data[..])
            .expect("append");
    }
    b.into_inner().expect("finish").flush().expect("flush");
    let len = fs::metadata(&tar).expect("meta").len();
    Fixture {
        _tmp: tmp,
        tar,
        len,
    }
}

fn register_once(tar: &Path) -> Duration {
    let tmp = tempfile::tempdir().expect("tempdir");
    let driver = Overlay2Driver::new(tmp.path().join("overlay2"));
    let (store, _) = LayerStore::open(tmp.path().join("layerdb"), Box::new(driver)).expect("store");
    let f = fs::File::open(tar).expect("open");
    let opts = RegisterOptions::default();
    let start = Instant::now();
    store
        .register_with(BufReader::with_capacity(1 << 20, f), None, &opts)
        .expect("register");
    let t = start.elapsed();
    // Removing the tree is not measured, but its writeback must not land in the next run.
    drop(store);
    drop(tmp);
    sync();
    t
}

fn sync() {
    let st = Command::new("sync").status().expect("sync");
    assert!(st.success());
}

fn tar_x_sync_once(tar: &Path) -> Duration {
    let tmp = tempfile::tempdir().expect("tempdir");
    let start = Instant::now();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(tar)
        .arg("-C")
        .arg(tmp.path())
        .status()
        .expect("tar -x");
    assert!(st.success());
    sync();
    let t = start.elapsed();
    drop(tmp);
    sync();
    t
}

fn drain(mut r: impl Read) -> u64 {
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        match r.read(&mut buf).expect("read") {
            0 => return n,
            k => n += k as u64,
        }
    }
}

fn bench(c: &mut Criterion) {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipping: overlay2 writes need root");
        return;
    }
    if Command::new("tar").arg("--version").output().is_err() {
        eprintln!("skipping: no tar");
        return;
    }
    for (group, files, size, dirs) in [
        ("overlay2_register_20k_small_files", 20_000, 2048, 100),
        ("overlay2_register_200MiB", 50, 4 << 20, 5),
    ] {
        let fx = fixture_of(files, size, dirs);
        drain(fs::File::open(&fx.tar).expect("open"));
        sync();
        let mut g = c.benchmark_group(group);
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(8))
            .throughput(Throughput::Bytes(fx.len));
        g.bench_function("layer-store register (durable)", |b| {
            b.iter_custom(|n| (0..n).map(|_| register_once(&fx.tar)).sum())
        });
        g.bench_function("tar -x; sync", |b| {
            b.iter_custom(|n| (0..n).map(|_| tar_x_sync_once(&fx.tar)).sum())
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
