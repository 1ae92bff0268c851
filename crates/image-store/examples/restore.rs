//! Restores a dockerd data root and prints what it found and how long it took.
//!
//! ```text
//! cargo run --release -p image-store --example restore -- DATA_ROOT [DRIVER]
//! ```
//!
//! `DATA_ROOT` is a directory holding `image/<driver>/{imagedb,layerdb}` (driver `vfs` unless
//! given). The layer store is opened read-only with a driver that keeps nothing, so nothing on
//! disk changes. Run it under `/usr/bin/time -v` for the peak memory.
//!
//! With `IMAGE_ONLY=1` in the environment the layerdb is not read at all: a stand-in layer
//! store hands out a handle for any chain ID, which isolates the image store's own time and
//! memory.
#![allow(clippy::print_stdout)]
// The restore error is large (it carries IDs); it is the cold path.
#![allow(clippy::result_large_err)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use image_store::ImageStore;
use imagedb_fs::FsBackend;
use layer_store::{
    ChainId, GetError, LayerGetReleaser, LayerHandle, LayerMetadata, LayerStore, NullDriver,
    ReleaseError,
};

/// Hands out a handle for any chain ID.
struct AnyLayer;

impl LayerGetReleaser for AnyLayer {
    fn get(&self, chain_id: &ChainId) -> Result<LayerHandle, GetError> {
        Ok(LayerHandle::new(*chain_id, 0))
    }
    fn release(&self, _: &LayerHandle) -> Result<Vec<LayerMetadata>, ReleaseError> {
        Ok(Vec::new())
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(root) = args.next().map(PathBuf::from) else {
        eprintln!("usage: restore DATA_ROOT [DRIVER]");
        return ExitCode::FAILURE;
    };
    let driver = args.next().unwrap_or_else(|| "vfs".to_owned());
    let base = root.join("image").join(driver);
    let start = Instant::now();
    let backend = match FsBackend::open(base.join("imagedb")) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("imagedb: {e}");
            return ExitCode::FAILURE;
        }
    };
    if std::env::var_os("IMAGE_ONLY").is_some() {
        return match ImageStore::open(backend, AnyLayer) {
            Ok((store, report)) => {
                println!(
                    "images: {} restored, {} skipped, {} heads in {:.3} s (image store only, no layerdb)",
                    report.restored,
                    report.skipped.len(),
                    store.heads().len(),
                    start.elapsed().as_secs_f64()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("restore: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // As a daemon starts: the layer store and the image configs are read at the same time,
    // then the image store takes its layers.
    let (loaded, layers) = rayon::join(
        || ImageStore::load(backend),
        || {
            let opened = LayerStore::open_read_only(base.join("layerdb"), Box::new(NullDriver));
            (opened, start.elapsed())
        },
    );
    let (opened, layers_done) = layers;
    let (layers, layer_outcome) = match opened {
        Ok(l) => l,
        Err(e) => {
            eprintln!("layerdb: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (store, report) = match loaded.and_then(|l| l.attach(layers)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("restore: {e}");
            return ExitCode::FAILURE;
        }
    };
    let total = start.elapsed();
    println!(
        "layers: {} loaded, {} skipped in {:.3} s (while the image configs were read)",
        layer_outcome.restored,
        layer_outcome.skipped.len(),
        layers_done.as_secs_f64()
    );
    println!(
        "images: {} restored, {} skipped, {} dangling parent links, {} heads",
        report.restored,
        report.skipped.len(),
        report.dangling_parents.len(),
        store.heads().len(),
    );
    println!("total: {:.3} s", total.as_secs_f64());
    ExitCode::SUCCESS
}
