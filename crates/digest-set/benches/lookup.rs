//! Hex parsing, and lookup and bulk-load throughput of `DigestSet`, next to one-at-a-time
//! insertion (the digestset way) as the baseline.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use digest_set::{Algorithm, Digest, DigestSet};
use std::hint::black_box;

fn digests(n: u64) -> Vec<Digest> {
    (0..n).map(|i| Digest::sha256(&i.to_le_bytes())).collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("digest-set");
    for n in [10_000u64, 100_000] {
        let ds = digests(n);
        group.bench_with_input(BenchmarkId::new("bulk_collect", n), &ds, |b, ds| {
            b.iter(|| black_box(ds.iter().copied().collect::<DigestSet>()))
        });
        if n <= 10_000 {
            group.bench_with_input(BenchmarkId::new("insert_one_by_one", n), &ds, |b, ds| {
                b.iter(|| {
                    let mut set = DigestSet::new();
                    for d in ds {
                        set.insert(*d);
                    }
                    black_box(set)
                })
            });
        }
        let set: DigestSet = ds.iter().copied().collect();
        let shorts: Vec<String> = ds.iter().map(|d| d.short()).collect();
        group.bench_with_input(BenchmarkId::new("lookup_short", n), &shorts, |b, shorts| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % shorts.len();
                black_box(set.lookup(&shorts[i]))
            })
        });
    }
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
