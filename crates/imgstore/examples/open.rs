//! Opens a data root read-only, as `imgstore`'s read commands do, and prints how it was
//! restored, how long it took and the process's peak memory: the restore alone, without a
//! command's own work.
//!
//! ```text
//! cargo run --release -p imgstore --example open -- DATA_ROOT [--no-snapshot]
//! ```
//!
//! The snapshot cache is the one the command uses (`$XDG_CACHE_HOME/imgstore` or
//! `~/.cache/imgstore`); `--no-snapshot` reads every file.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use imgstore::snapshot::Snapshots;
use imgstore::store::{OpenOptions, Store};

/// The peak resident set size in KiB (`VmHWM` of `/proc/self/status`).
fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> ExitCode {
    let mut root = None;
    let mut snapshot = true;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--no-snapshot" => snapshot = false,
            _ => root = Some(PathBuf::from(arg)),
        }
    }
    let Some(root) = root else {
        eprintln!("usage: open DATA_ROOT [--no-snapshot]");
        return ExitCode::FAILURE;
    };
    let start = Instant::now();
    let opened = Store::open(&OpenOptions {
        root,
        snapshots: if snapshot {
            Snapshots::default_dir().map(Snapshots::new)
        } else {
            None
        },
        ..OpenOptions::default()
    });
    let store = match opened {
        Ok(s) => s,
        Err(e) => {
            eprintln!("open: {e}");
            return ExitCode::FAILURE;
        }
    };
    let elapsed = start.elapsed();
    let used = store.snapshot_use();
    println!(
        "{} images, {} layers in {:.3} s; from the snapshot: layers {}, images {}; snapshot written: {}; peak RSS {} KiB",
        store.image_store().len(),
        store.layer_store().len(),
        elapsed.as_secs_f64(),
        used.layers,
        used.images,
        used.written,
        peak_kib().unwrap_or(0),
    );
    ExitCode::SUCCESS
}
