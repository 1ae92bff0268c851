//! The kill -9 harness (`test_dockerd::crash`) at a small, fixed-seed size: every operation
//! (pull and push against a local registry too, where `docker-registry` is installed)
//! on vfs and overlay2 killed at a few random moments, repaired and checked; two trials
//! checked with dockerd. `cargo xtask crash` runs it at full size.

use crate::common;

use test_dockerd::crash::{Config, run};
use test_dockerd::skip_reason;

/// The seed of the sample (delays are drawn from it).
const SEED: u64 = 20;
/// Kill points per operation and driver.
const POINTS: usize = 2;

#[test]
fn killed_writes_are_repaired_and_rerun() {
    let work = tempfile::tempdir().expect("tempdir");
    let drivers = match skip_reason() {
        // overlay2 layers hold character devices and trusted.* xattrs: root only.
        Some(why) => {
            eprintln!("crash sample on vfs only, without a container or dockerd: {why}");
            vec!["vfs".to_owned()]
        }
        None => vec!["vfs".to_owned(), "overlay2".to_owned()],
    };
    let cfg = Config {
        imgstore: env!("CARGO_BIN_EXE_imgstore").into(),
        fixtures: common::fixtures_dir(),
        work: work.path().join("crash"),
        seed: SEED,
        points: POINTS,
        dockerd_every: 2 * POINTS * 5 / 2,
        drivers,
        only: None,
        ops: Vec::new(),
    };
    let report = run(&cfg, &mut |line| eprintln!("crash: {line}")).expect("harness");
    eprintln!("{}", report.table());
    let ops = match &report.without_registry {
        Some(why) => {
            eprintln!("crash sample without pull and push: {why}");
            5
        }
        None => 7,
    };
    let trials: usize = report.rows.iter().map(|r| r.trials).sum();
    assert_eq!(trials, cfg.drivers.len() * ops * POINTS);
    assert!(
        report.ok(),
        "violations (seed {SEED}; replay with cargo xtask crash --seed {SEED} --only OP/DRIVER/TRIAL):\n{:#?}",
        report.violations
    );
}
