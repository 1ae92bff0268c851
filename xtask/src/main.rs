//! `cargo xtask <task>`: the project's chores, written in Rust so they run wherever cargo does.
//!
//! - `ci`: everything CI checks, stopping at the first failure.
//! - `bench`: the benchmarks recorded in `docs/benchmarks.md`.
//! - `bench-vs-go digest-set [-n N] [-lookups L] [-rounds R]`: `digest-set` next to
//!   docker/distribution's Go `digestset` on the same workload (skipped without Go).
//! - `gen-dataroot --images N --out DIR [--seed S]`: a synthetic Docker data root.
//! - `gen-archive [-o FILE] [--seed S]`: a `docker save` archive of a generated image of
//!   about 270 MiB (`gen/bench:1`), for the save and load benchmarks.
//! - `bench-load [--archive FILE]`: `imgstore load` of that image next to `docker load` and
//!   to `tar -x` of its layers followed by `sync` (root, dockerd).
//! - `crash [--seed S] [--points N] ...`: the kill -9 harness (see `crash.rs`).

#![allow(clippy::print_stdout)]

mod bench_load;
mod bench_vs_go;
mod crash;
mod gen_archive;
mod gen_dataroot;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(&args[1..]),
        Some("bench-vs-go") => bench_vs_go::run(&args[1..]),
        Some("bench-load") => bench_load::run(&args[1..]),
        Some("gen-dataroot") => gen_dataroot::run(&args[1..]),
        Some("gen-archive") => gen_archive::run(&args[1..]),
        Some("crash") => crash::run(&args[1..]),
        _ => Err(format!(
            "usage: cargo xtask <ci | bench [criterion filter] | bench-load [--archive FILE] | bench-vs-go digest-set [-n N] [-lookups L] [-rounds R] | crash [--seed S] [--points N] | gen-dataroot --images N --out DIR [--seed S] | gen-archive [-o FILE] [--seed S]>\n got: {args:?}"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(step: &str, mut cmd: Command) -> Result<(), String> {
    println!("==> {step}");
    let status = cmd
        .status()
        .map_err(|e| format!("{step}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step}: failed ({status})"))
    }
}

/// `cargo` for the CI steps: no incremental state (every CI build starts clean, where it
/// only costs time) and line tables only for debug info (enough for a panic's file and
/// line; full debug info is most of the link time of the test binaries).
fn ci_cargo() -> Command {
    let mut cmd = cargo();
    cmd.env("CARGO_INCREMENTAL", "0")
        .env("CARGO_PROFILE_DEV_DEBUG", "line-tables-only")
        .env("CARGO_PROFILE_TEST_DEBUG", "line-tables-only");
    cmd
}

fn ci() -> Result<(), String> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    run("cargo fmt --check", fmt)?;

    let mut clippy = ci_cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run(
        "cargo clippy --workspace --all-targets -- -D warnings",
        clippy,
    )?;

    let mut test = ci_cargo();
    test.args(["test", "--workspace"]);
    run("cargo test --workspace", test)?;

    let mut doc = ci_cargo();
    doc.args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings");
    run("cargo doc --workspace --no-deps (warnings denied)", doc)?;

    // Each library crate must package on its own. The crates are not on crates.io yet, so
    // they are packaged together: cargo resolves their path dependencies among themselves
    // through a temporary local registry, and extracts them under $CARGO_HOME/registry/src.
    // It never re-extracts a name-version it has seen, so drop earlier extractions first.
    // The same goes for the verify builds: cargo treats a registry crate as never changing, so
    // a build of an earlier `image-store 0.1.0` would pass for the new one. They get a target
    // directory of their own, where our crates' artifacts are dropped first (third-party ones
    // stay cached).
    clear_stale_package_sources()?;
    // In CI (a fresh clone, nothing built after this step) the verify builds share the main
    // target directory, so the third-party crates the tests already built are reused;
    // elsewhere they get their own, so that a developer's build is not thrown away.
    let verify_target = if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        target_dir()
    } else {
        target_dir().join("package-verify")
    };
    clear_own_artifacts(&verify_target)?;
    let mut package = ci_cargo();
    package
        .args([
            "package",
            "--workspace",
            "--exclude",
            "xtask",
            "--allow-dirty",
        ])
        .env("CARGO_TARGET_DIR", &verify_target);
    run("cargo package --workspace --exclude xtask", package)?;
    println!("==> ci: all steps passed");
    Ok(())
}

/// The workspace's packaged crates, as `cargo package` names its extractions.
const LIBRARY_CRATES: [&str; 12] = [
    "durable-fs",
    "go-json",
    "go-template",
    "docker-reference",
    "digest-set",
    "imagedb-fs",
    "layer-store",
    "image-store",
    "image-archive",
    "registry-client",
    "imgstore",
    "test-dockerd",
];

/// The build's target directory: `$CARGO_TARGET_DIR`, or `target/` in the workspace.
fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Removes what earlier builds in `target` made of our own crates (fingerprints, libraries,
/// build-script output, incremental state), so that they are built again from the sources
/// about to be packaged.
fn clear_own_artifacts(target: &std::path::Path) -> Result<(), String> {
    let profile = target.join("debug");
    for dir in [".fingerprint", "deps", "build", "incremental"] {
        let Ok(entries) = std::fs::read_dir(profile.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = LIBRARY_CRATES.iter().any(|c| {
                let lib = c.replace('-', "_");
                [format!("{c}-"), format!("{lib}-"), format!("lib{lib}-")]
                    .iter()
                    .any(|prefix| name.starts_with(prefix.as_str()))
            });
            if !ours {
                continue;
            }
            let path = entry.path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|e| format!("remove stale {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// Removes the extractions of our own crates that earlier `cargo package` runs left in
/// `$CARGO_HOME/registry/src/<local registry>/<crate>-<version>`. Those local registries have
/// directory names starting with `-`; crates.io's (`index.crates.io-...`) are left alone.
fn clear_stale_package_sources() -> Result<(), String> {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    let Some(home) = home else { return Ok(()) };
    let src = home.join("registry").join("src");
    let Ok(registries) = std::fs::read_dir(&src) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = LIBRARY_CRATES.iter().any(|c| {
                name.strip_prefix(c)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|v| v.starts_with(|ch: char| ch.is_ascii_digit()))
            });
            if ours {
                std::fs::remove_dir_all(entry.path())
                    .map_err(|e| format!("remove stale {}: {e}", entry.path().display()))?;
            }
        }
    }
    Ok(())
}

fn bench(filter: &[String]) -> Result<(), String> {
    let mut cmd = cargo();
    cmd.args(["bench", "--workspace"]);
    if !filter.is_empty() {
        cmd.arg("--").args(filter);
    }
    run("cargo bench --workspace", cmd)
}
