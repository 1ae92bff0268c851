//! Throughput of `register` and `tar_stream` on a 100 MiB layer and on a layer of many small
//! files (32 MiB in 8192 files of 4 KiB), side by side with GNU tar (`tar -x` into a fresh
//! directory, `tar -c` of the same tree read through a pipe).
//!
//! Run: `cargo bench -p layer-store --bench content`
#![allow(missing_docs)]

use std::fs;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use layer_store::{LayerStore, RegisterOptions, VfsDriver};

const FILES: usize = 400;
const FILE_SIZE: usize = 256 * 1024;

struct Fixture {
    _tmp: tempfile::TempDir,
    tar: PathBuf,
    len: u64,
}

/// A 100 MiB layer: 400 files of 256 KiB with pseudo-random content in 20 directories.
fn fixture() -> Fixture {
    fixture_of(FILES, FILE_SIZE)
}

/// A layer of `files` files of `file_size` bytes with pseudo-random content in 20
/// directories.
fn fixture_of(files: usize, file_size: usize) -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tar = tmp.path().join("layer.tar");
    let f = fs::File::create(&tar).expect("create");
    let mut b = tar::Builder::new(std::io::BufWriter::new(f));
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
        b.append_data(&mut h, format!("dir{}/file{i}", i % 20), &data[..])
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

fn open_store(root: &Path) -> LayerStore {
    let driver = VfsDriver::new(root.join("vfs")).expect("driver");
    LayerStore::open(root.join("layerdb"), Box::new(driver))
        .expect("store")
        .0
}

fn register_once(tar: &Path, sync: bool) -> Duration {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open_store(tmp.path());
    let f = fs::File::open(tar).expect("open");
    let opts = RegisterOptions {
        max_size: None,
        sync,
    };
    let start = Instant::now();
    store
        .register_with(BufReader::with_capacity(1 << 20, f), None, &opts)
        .expect("register");
    start.elapsed()
}

fn tar_x_once(tar: &Path) -> Duration {
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
    start.elapsed()
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
    if Command::new("tar").arg("--version").output().is_err() {
        eprintln!("skipping: no tar");
        return;
    }
    let fx = fixture();
    // Warm the page cache.
    drain(fs::File::open(&fx.tar).expect("open"));

    bench_register(c, &fx, "register_100MiB");
    bench_tar_stream(c, &fx, "tar_stream_100MiB");
    drop(fx);
    let small = fixture_of(8192, 4096);
    drain(fs::File::open(&small.tar).expect("open"));
    bench_register(c, &small, "register_small_files_32MiB");
    bench_tar_stream(c, &small, "tar_stream_small_files_32MiB");
}

/// `register` of the layer in `fx` (with and without fsync), and `tar -x` of it.
fn bench_register(c: &mut Criterion, fx: &Fixture, group: &str) {
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Bytes(fx.len));
    g.bench_function("layer-store register (no fsync)", |b| {
        b.iter_custom(|n| (0..n).map(|_| register_once(&fx.tar, false)).sum())
    });
    g.bench_function("layer-store register (fsync)", |b| {
        b.iter_custom(|n| (0..n).map(|_| register_once(&fx.tar, true)).sum())
    });
    g.bench_function("tar -x", |b| {
        b.iter_custom(|n| (0..n).map(|_| tar_x_once(&fx.tar)).sum())
    });
    g.finish();
}

/// `tar_stream` of the layer in `fx`, and `tar -c` of its files.
fn bench_tar_stream(c: &mut Criterion, fx: &Fixture, group: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open_store(tmp.path());
    let f = fs::File::open(&fx.tar).expect("open");
    let h = store
        .register(BufReader::with_capacity(1 << 20, f), None)
        .expect("register");
    let info = store.layer(h.chain_id()).expect("info");
    let layer_dir = tmp.path().join("vfs/dir").join(&info.cache_id);
    assert_eq!(
        drain(store.tar_stream(&h).expect("stream")),
        fx.len,
        "stream length"
    );

    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Bytes(fx.len));
    g.bench_function("layer-store tar_stream", |b| {
        b.iter(|| drain(store.tar_stream(&h).expect("stream")))
    });
    g.bench_function("tar -c", |b| {
        b.iter(|| {
            let mut child = Command::new("tar")
                .arg("-cf")
                .arg("-")
                .arg("-C")
                .arg(&layer_dir)
                .arg(".")
                .stdout(Stdio::piped())
                .spawn()
                .expect("tar -c");
            let n = drain(child.stdout.take().expect("stdout"));
            assert!(child.wait().expect("wait").success());
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
