//! `cargo xtask bench-vs-go digest-set [-n N] [-lookups L] [-rounds R]`: `DigestSet` next to
//! docker/distribution's Go `digestset`, the same workload in one run.
//!
//! The Go side (`xtask/go/digestset-bench`) is built in GOPATH mode against Debian's
//! `golang-github-docker-distribution-dev` (`/usr/share/gocode`); the Rust side is the
//! `bench_vs_go` example of `digest-set`, built with `--release`. Both print
//! `<operation> <ns per op>` lines for the same flags. They take turns, one round each at a
//! time (`-rounds`, 3 by default), and the fastest round of each operation is printed side by
//! side as a Markdown table. Without `go` or the Go package it prints why and skips (success).

use std::path::Path;
use std::process::Command;

/// Where Debian installs Go library sources.
const GOCODE: &str = "/usr/share/gocode";

/// The operations both programs report, with their labels and the targets
/// (minimum speed-up over Go).
const OPERATIONS: [(&str, &str, Option<f64>); 4] = [
    ("insert", "insert, one by one", Some(10.0)),
    ("lookup_12hex", "lookup of a 12-hex short ID", Some(4.0)),
    ("lookup_full", "lookup of a full `sha256:<hex>`", None),
    ("remove", "remove, one by one", None),
];

pub fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("digest-set") => digest_set(&args[1..]),
        _ => Err(format!(
            "usage: cargo xtask bench-vs-go digest-set [-n N] [-lookups L] [-rounds R]\n got: {args:?}"
        )),
    }
}

fn digest_set(flags: &[String]) -> Result<(), String> {
    check_flags(flags)?;
    let Some(go_version) = go_version() else {
        println!("bench-vs-go digest-set: skipped: `go` not found (apt-get install golang-go)");
        return Ok(());
    };
    let gocode = Path::new(GOCODE);
    for package in [
        "github.com/docker/distribution/digestset",
        "github.com/opencontainers/go-digest",
    ] {
        if !gocode.join("src").join(package).is_dir() {
            println!(
                "bench-vs-go digest-set: skipped: Go package {package} not found under {GOCODE}/src \
                 (apt-get install golang-github-docker-distribution-dev)"
            );
            return Ok(());
        }
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = crate::target_dir().join("bench-vs-go");
    let gopath = work.join("gopath");
    std::fs::create_dir_all(&gopath).map_err(|e| format!("create {}: {e}", gopath.display()))?;
    let go_bin = work.join("digestset-bench");
    let mut go_build = Command::new("go");
    go_build
        .args(["build", "-o"])
        .arg(&go_bin)
        .arg(".")
        .current_dir(root.join("xtask/go/digestset-bench"))
        .env("GO111MODULE", "off")
        .env("GOPATH", join_paths(&[&gopath, gocode])?)
        .env("GOCACHE", work.join("gocache"))
        .env("GOFLAGS", "");
    crate::run("go build xtask/go/digestset-bench (GOPATH mode)", go_build)?;

    let mut cargo_build = crate::cargo();
    cargo_build.args([
        "build",
        "--release",
        "-p",
        "digest-set",
        "--example",
        "bench_vs_go",
    ]);
    crate::run(
        "cargo build --release -p digest-set --example bench_vs_go",
        cargo_build,
    )?;
    let rust_bin = crate::target_dir().join("release/examples/bench_vs_go");

    // The two programs take turns, one round each at a time, so that load from elsewhere
    // falls on both alike; each operation's fastest round counts.
    let (rounds, pass) = split_rounds(flags)?;
    let load_before = load_average();
    let (mut go, mut rust) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        println!("==> round {round} of {rounds}: Go digestset, then digest-set");
        keep_fastest(&mut go, measure(&go_bin, &pass)?);
        keep_fastest(&mut rust, measure(&rust_bin, &pass)?);
    }
    let load_after = load_average();

    println!();
    println!(
        "`cargo xtask bench-vs-go digest-set{}{}`: {go_version}, fastest of {rounds} rounds each, load {load_before} -> {load_after}",
        if flags.is_empty() { "" } else { " " },
        flags.join(" ")
    );
    println!();
    println!("| operation | Go `digestset` | `digest-set` | speed-up | target |");
    println!("|---|---|---|---|---|");
    let mut missed = Vec::new();
    for (key, label, target) in OPERATIONS {
        let (g, r) = (value(&go, key)?, value(&rust, key)?);
        let ratio = g / r;
        let target_text = match target {
            Some(t) if ratio >= t => format!(">= {t}x: met"),
            Some(t) => {
                missed.push(label);
                format!(">= {t}x: NOT met")
            }
            None => "—".to_owned(),
        };
        println!("| {label} | {g:.1} ns | {r:.1} ns | {ratio:.1}x | {target_text} |");
    }
    let go_heap = value(&go, "heap_bytes_per_digest").ok();
    let rust_rss = value(&rust, "rss_bytes_per_digest").ok();
    println!(
        "| memory per digest (Go: heap after GC; ours: resident growth) | {} | {} | | ours <= 48 B |",
        go_heap.map_or("—".to_owned(), |b| format!("{b:.1} B")),
        rust_rss.map_or("—".to_owned(), |b| format!("{b:.1} B")),
    );
    if !missed.is_empty() {
        println!("targets not met: {}", missed.join(", "));
    }
    Ok(())
}

/// Only the flags both programs understand get through.
fn check_flags(flags: &[String]) -> Result<(), String> {
    let mut it = flags.iter();
    while let Some(flag) = it.next() {
        if !matches!(flag.trim_start_matches('-'), "n" | "lookups" | "rounds") {
            return Err(format!(
                "unknown flag {flag:?} (expected -n N, -lookups L, -rounds R)"
            ));
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        value
            .parse::<u64>()
            .map_err(|e| format!("{flag} {value:?}: {e}"))?;
    }
    Ok(())
}

/// The number of rounds (`-rounds`, 3 by default), and the other flags with `-rounds 1`, for
/// each program's run.
fn split_rounds(flags: &[String]) -> Result<(u64, Vec<String>), String> {
    let mut rounds = 3;
    let mut pass = Vec::new();
    for pair in flags.chunks(2) {
        if let [flag, value] = pair {
            if flag.trim_start_matches('-') == "rounds" {
                rounds = value
                    .parse()
                    .map_err(|e| format!("{flag} {value:?}: {e}"))?;
            } else {
                pass.extend([flag.clone(), value.clone()]);
            }
        }
    }
    if rounds == 0 {
        return Err("-rounds must be positive".into());
    }
    pass.extend(["-rounds".to_owned(), "1".to_owned()]);
    Ok((rounds, pass))
}

/// Merges one round's results into `best`: the lowest time per operation, and the first
/// round's memory figures (later runs of a program measure the same thing).
fn keep_fastest(best: &mut Vec<(String, f64)>, round: Vec<(String, f64)>) {
    for (name, v) in round {
        match best.iter_mut().find(|(n, _)| *n == name) {
            Some((_, b)) if !name.ends_with("_per_digest") => *b = b.min(v),
            Some(_) => {}
            None => best.push((name, v)),
        }
    }
}

/// `go version`'s answer, or `None` where `go` does not run.
fn go_version() -> Option<String> {
    let out = Command::new("go").arg("version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn join_paths(paths: &[&Path]) -> Result<std::ffi::OsString, String> {
    std::env::join_paths(paths).map_err(|e| format!("GOPATH: {e}"))
}

/// The 1-minute load average, as the benchmarks document records it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// Runs a benchmark program and collects its `<name> <number>` lines.
fn measure(bin: &Path, flags: &[String]) -> Result<Vec<(String, f64)>, String> {
    let out = Command::new(bin)
        .args(flags)
        .output()
        .map_err(|e| format!("run {}: {e}", bin.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}): {}{}",
            bin.display(),
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    stdout
        .lines()
        .map(|line| {
            let (name, number) = line
                .split_once(' ')
                .ok_or_else(|| format!("{}: unexpected line {line:?}", bin.display()))?;
            let number = number
                .trim()
                .parse()
                .map_err(|e| format!("{}: {line:?}: {e}", bin.display()))?;
            Ok((name.to_owned(), number))
        })
        .collect()
}

fn value(results: &[(String, f64)], name: &str) -> Result<f64, String> {
    results
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| format!("no {name} in the benchmark's output"))
}
