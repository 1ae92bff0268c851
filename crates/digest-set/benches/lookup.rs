//! `DigestSet` at 10k, 100k and 1M sha256 digests (of the little-endian `u64`s `0..n`):
//! inserting one by one, removing one by one, bulk building (`collect`), and lookups by 4-,
//! 12- and 64-character hex terms; plus hex parsing.
//!
//! `cargo bench -p digest-set --bench lookup`; the 1M cases take 10 samples.

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use digest_set::{Algorithm, Digest, DigestSet};
use std::hint::black_box;
use std::time::Duration;

fn digests(n: u64) -> Vec<Digest> {
    (0..n).map(|i| Digest::sha256(&i.to_le_bytes())).collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("digest-set");
    for n in [10_000u64, 100_000, 1_000_000] {
        if n >= 1_000_000 {
            group
                .sample_size(10)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(8));
        }
        let ds = digests(n);

        // Whole-set operations, reported per digest.
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::new("bulk_collect", n), &ds, |b, ds| {
            b.iter(|| black_box(ds.iter().copied().collect::<DigestSet>()))
        });
        group.bench_with_input(BenchmarkId::new("insert_one_by_one", n), &ds, |b, ds| {
            b.iter(|| {
                let mut set = DigestSet::new();
                for d in ds {
                    set.insert(*d);
                }
                black_box(set)
            })
        });
        let full: DigestSet = ds.iter().copied().collect();
        group.bench_with_input(BenchmarkId::new("remove_one_by_one", n), &ds, |b, ds| {
            b.iter_batched(
                || full.clone(),
                |mut set| {
                    for d in ds {
                        set.remove(d);
                    }
                    black_box(set)
                },
                BatchSize::LargeInput,
            )
        });

        // Lookups, one per iteration; term i names digest i.
        group.throughput(Throughput::Elements(1));
        for len in [4, 12, 64] {
            let terms: Vec<String> = ds.iter().map(|d| d.hex()[..len].to_owned()).collect();
            let name = format!("lookup_{len}hex");
            group.bench_with_input(BenchmarkId::new(name, n), &terms, |b, terms| {
                let mut i = 0;
                b.iter(|| {
                    i = (i + 1) % terms.len();
                    black_box(full.lookup(&terms[i]))
                })
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("digest");
    let hexes: Vec<String> = digests(1000).iter().map(Digest::hex).collect();
    group.bench_function("from_hex_1000", |b| {
        b.iter(|| {
            for h in &hexes {
                black_box(Digest::from_hex(Algorithm::Sha256, black_box(h)).is_ok());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
