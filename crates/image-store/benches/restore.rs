//! Restore benchmarks over synthetic data roots of 10k and 100k images.
//!
//! The roots are written once by `cargo xtask gen-dataroot` (run by this bench if missing)
//! into `<target dir>/bench-roots/images-<N>` and reused. Each size measures:
//!
//! - `read_every_file_once`: the baseline, reading every imagedb content and metadata file and
//!   every layerdb file once, single-threaded;
//! - `image_store_open`: `ImageStore::open` alone (the layer store is opened in the untimed
//!   setup);
//! - `full_restore`: what a daemon does at start-up: the layer store opened while the image
//!   configs are read (`ImageStore::load`), then the image store takes its layers
//!   (`Loaded::attach`).
//!
//! ```text
//! cargo bench -p image-store --bench restore
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use image_store::ImageStore;
use imagedb_fs::FsBackend;
use layer_store::{LayerStore, NullDriver};

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// The data root for `n` images, generated on first use.
fn data_root(n: usize) -> PathBuf {
    let roots = target_dir().join("bench-roots");
    let root = roots.join(format!("images-{n}"));
    if root.join("image/vfs/repositories.json").exists() {
        return root;
    }
    let _ = std::fs::remove_dir_all(&root);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        // A separate target dir: the outer `cargo bench` may still hold the build lock.
        .env("CARGO_TARGET_DIR", roots.join("xtask-target"))
        .args([
            "run",
            "--release",
            "-q",
            "-p",
            "xtask",
            "--",
            "gen-dataroot",
        ])
        .arg("--images")
        .arg(n.to_string())
        .arg("--out")
        .arg(&root)
        .status()
        .expect("run cargo xtask gen-dataroot");
    assert!(status.success(), "gen-dataroot failed: {status}");
    root
}

fn read_tree(dir: &Path, files: &mut usize, bytes: &mut usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => read_tree(&path, files, bytes),
            Ok(t) if t.is_file() => {
                if let Ok(data) = std::fs::read(&path) {
                    *files += 1;
                    *bytes += data.len();
                }
            }
            _ => {}
        }
    }
}

/// Reads every file restore could need once: the baseline.
fn read_every_file_once(root: &Path) -> (usize, usize) {
    let base = root.join("image/vfs");
    let (mut files, mut bytes) = (0, 0);
    for dir in [
        "imagedb/content/sha256",
        "imagedb/metadata/sha256",
        "layerdb/sha256",
    ] {
        read_tree(&base.join(dir), &mut files, &mut bytes);
    }
    (files, bytes)
}

fn open_layers(root: &Path) -> LayerStore {
    LayerStore::open_read_only(root.join("image/vfs/layerdb"), Box::new(NullDriver))
        .expect("layer store")
        .0
}

fn open_images(root: &Path, layers: LayerStore) -> usize {
    let backend = FsBackend::open(root.join("image/vfs/imagedb")).expect("imagedb");
    let (store, report) = ImageStore::open(backend, layers).expect("restore");
    assert!(report.skipped.is_empty());
    store.len()
}

/// What a daemon does at start-up: the layer store and the image configs read at the same
/// time, then the image store takes its layers.
fn full_restore(root: &Path) -> usize {
    let backend = FsBackend::open(root.join("image/vfs/imagedb")).expect("imagedb");
    let (loaded, layers) = rayon::join(
        || ImageStore::load(backend).expect("load"),
        || open_layers(root),
    );
    let (store, report) = loaded.attach(layers).expect("attach");
    assert!(report.skipped.is_empty());
    store.len()
}

fn bench_size(c: &mut Criterion, n: usize, label: &str) {
    let root = data_root(n);
    let mut group = c.benchmark_group(format!("restore/{label}"));
    if n >= 100_000 {
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(30));
    } else {
        group.sample_size(20);
        group.measurement_time(Duration::from_secs(10));
    }
    group.bench_function("read_every_file_once", |b| {
        b.iter(|| std::hint::black_box(read_every_file_once(&root)))
    });
    group.bench_function("image_store_open", |b| {
        b.iter_batched(
            || open_layers(&root),
            |layers| {
                let n = open_images(&root, layers);
                std::hint::black_box(n)
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("full_restore", |b| {
        b.iter(|| std::hint::black_box(full_restore(&root)))
    });
    group.finish();
}

fn restore(c: &mut Criterion) {
    bench_size(c, 10_000, "10k");
    bench_size(c, 100_000, "100k");
}

criterion_group!(benches, restore);
criterion_main!(benches);
