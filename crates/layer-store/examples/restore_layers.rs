//! Opens a layerdb read-only and prints what restore found and how long it took.
//!
//! ```text
//! cargo run --release -p layer-store --example restore_layers -- LAYERDB [RUNS]
//! ```
//!
//! `LAYERDB` is `<data-root>/image/<driver>/layerdb`. The store is opened read-only with a
//! driver that keeps nothing, so nothing on disk changes. With `RUNS` greater than 1 the
//! store is opened that many times in a row (the previous one dropped first) and each time is
//! printed. Run it under `/usr/bin/time -v` for the peak memory.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use layer_store::{LayerStore, NullDriver};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(root) = args.next().map(PathBuf::from) else {
        eprintln!("usage: restore LAYERDB [RUNS]");
        return ExitCode::FAILURE;
    };
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    for _ in 0..runs {
        let start = Instant::now();
        match LayerStore::open_read_only(&root, Box::new(NullDriver)) {
            Ok((store, outcome)) => {
                let elapsed = start.elapsed();
                println!(
                    "layers: {} loaded, {} skipped, {} mounts in {:.3} s",
                    outcome.restored,
                    outcome.skipped.len(),
                    outcome.mounts,
                    elapsed.as_secs_f64()
                );
                drop(store);
            }
            Err(e) => {
                eprintln!("{}: {e}", root.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
