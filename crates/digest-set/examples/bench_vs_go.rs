//! The Rust side of `cargo xtask bench-vs-go digest-set`: the workload of
//! `xtask/go/digestset-bench` (docker/distribution's Go `digestset`) on [`DigestSet`].
//!
//! `n` sha256 digests (of the little-endian `u64`s `0..n`) are inserted one by one, looked up
//! `lookups` times by their 12-character short IDs and by their full `sha256:<hex>` strings
//! (term `i` names digest `i % n`), then removed one by one. Each round starts from an empty
//! set; the fastest round is reported. It prints one line per operation, name and nanoseconds
//! per operation, then the growth of resident memory while the first set was built, per
//! digest (Linux only: read from `/proc/self/status`).
//!
//! `cargo run --release -p digest-set --example bench_vs_go -- [-n N] [-lookups L] [-rounds R]`

#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use digest_set::{Digest, DigestSet};

struct Args {
    n: usize,
    lookups: usize,
    rounds: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        n: 100_000,
        lookups: 1_000_000,
        rounds: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let slot = match flag.trim_start_matches('-') {
            "n" => &mut args.n,
            "lookups" => &mut args.lookups,
            "rounds" => &mut args.rounds,
            _ => return Err(format!("unknown flag {flag:?}")),
        };
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        *slot = value
            .parse()
            .map_err(|e| format!("{flag} {value:?}: {e}"))?;
    }
    if args.n == 0 || args.rounds == 0 {
        return Err("-n and -rounds must be positive".into());
    }
    Ok(args)
}

/// Resident memory in bytes (`VmRSS`), where `/proc` has it.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn per_op(d: Duration, ops: usize) -> f64 {
    d.as_nanos() as f64 / ops as f64
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_vs_go: {e}");
            return ExitCode::FAILURE;
        }
    };
    let digests: Vec<Digest> = (0..args.n as u64)
        .map(|i| Digest::sha256(&i.to_le_bytes()))
        .collect();
    let shorts: Vec<String> = digests.iter().map(Digest::short).collect();
    let fulls: Vec<String> = digests.iter().map(Digest::to_string).collect();

    let names = ["insert", "lookup_12hex", "lookup_full", "remove"];
    let mut best = [f64::INFINITY; 4];
    let mut resident = None;
    for round in 0..args.rounds {
        let before = resident_bytes();
        let mut set = DigestSet::new();
        let start = Instant::now();
        for d in &digests {
            set.insert(*d);
        }
        let mut times = [per_op(start.elapsed(), args.n), 0.0, 0.0, 0.0];
        if round == 0 {
            // Later rounds reuse memory the allocator kept from this one.
            resident = before
                .zip(resident_bytes())
                .map(|(b, a)| a.saturating_sub(b) as f64 / args.n as f64);
        }
        if set.len() != args.n {
            eprintln!(
                "bench_vs_go: {} digests in the set, not {}",
                set.len(),
                args.n
            );
            return ExitCode::FAILURE;
        }

        for (slot, terms) in [(1, &shorts), (2, &fulls)] {
            let mut found = 0;
            let start = Instant::now();
            for i in 0..args.lookups {
                let j = i % args.n;
                if set.lookup(black_box(&terms[j])) == Ok(digests[j]) {
                    found += 1;
                }
            }
            times[slot] = per_op(start.elapsed(), args.lookups);
            if found != args.lookups {
                eprintln!(
                    "bench_vs_go: {}: {found} of {} lookups found their digest",
                    names[slot], args.lookups
                );
                return ExitCode::FAILURE;
            }
        }

        let start = Instant::now();
        for d in &digests {
            set.remove(d);
        }
        times[3] = per_op(start.elapsed(), args.n);
        if !set.is_empty() {
            eprintln!("bench_vs_go: set not empty after removing everything");
            return ExitCode::FAILURE;
        }
        for (b, t) in best.iter_mut().zip(times) {
            *b = b.min(t);
        }
    }
    for (name, ns) in names.iter().zip(best) {
        println!("{name} {ns:.1}");
    }
    if let Some(bytes) = resident {
        println!("rss_bytes_per_digest {bytes:.1}");
    }
    ExitCode::SUCCESS
}
