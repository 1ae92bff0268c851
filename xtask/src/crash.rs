//! `cargo xtask crash`: the kill -9 harness (`test_dockerd::crash`) at full size, on the
//! debug (or `--release`) `imgstore` binary.

use std::path::PathBuf;

const USAGE: &str = "usage: cargo xtask crash [--seed S] [--points N] [--dockerd-every N] [--drivers vfs,overlay2] [--only OP/DRIVER/TRIAL] [--ops load,tag,rm,rm -f,prune,pull,push] [--release | --imgstore BINARY] [--work DIR]";

/// Parses the flags, builds imgstore, runs the harness, prints the table; an error (with the
/// seed and a replay command for each violation) when any check failed.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut seed: Option<u64> = None;
    let mut points = 200usize;
    let mut dockerd_every = 25usize;
    let mut drivers = vec!["vfs".to_owned(), "overlay2".to_owned()];
    let mut only = None;
    let mut ops: Vec<String> = Vec::new();
    let mut release = false;
    let mut binary: Option<PathBuf> = None;
    let mut work_dir: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--seed" => {
                seed = Some(
                    value("--seed")?
                        .parse()
                        .map_err(|e| format!("--seed: {e}"))?,
                )
            }
            "--points" => {
                points = value("--points")?
                    .parse()
                    .map_err(|e| format!("--points: {e}"))?
            }
            "--dockerd-every" => {
                dockerd_every = value("--dockerd-every")?
                    .parse()
                    .map_err(|e| format!("--dockerd-every: {e}"))?
            }
            "--drivers" => drivers = value("--drivers")?.split(',').map(str::to_owned).collect(),
            "--only" => {
                let v = value("--only")?;
                let parts: Vec<&str> = v.rsplitn(3, '/').collect();
                let [trial, driver, op] = parts.as_slice() else {
                    return Err(format!("--only wants OP/DRIVER/TRIAL, got {v:?}"));
                };
                let trial: usize = trial.parse().map_err(|e| format!("--only trial: {e}"))?;
                only = Some(((*op).to_owned(), (*driver).to_owned(), trial));
            }
            "--ops" => ops = value("--ops")?.split(',').map(str::to_owned).collect(),
            "--release" => release = true,
            // A copy of the binary, so that builds meanwhile do not change it mid-run.
            "--imgstore" => binary = Some(PathBuf::from(value("--imgstore")?)),
            "--work" => work_dir = Some(PathBuf::from(value("--work")?)),
            other => return Err(format!("unknown flag {other:?}\n{USAGE}")),
        }
    }
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let imgstore = match binary {
        Some(b) => b,
        None => {
            let mut build = crate::cargo();
            build.args(["build", "-p", "imgstore"]);
            if release {
                build.arg("--release");
            }
            crate::run("cargo build -p imgstore", build)?;
            crate::target_dir()
                .join(if release { "release" } else { "debug" })
                .join("imgstore")
        }
    };
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    // tmpfs by default: every load ends in syncfs(2), which on a disk shared with busy
    // builds waits for all their dirty data; a kill -9 tests the process's ordering of
    // its writes, the same on any file system.
    let scratch = work_dir.unwrap_or_else(|| {
        let shm = PathBuf::from("/dev/shm");
        if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        }
    });
    let work = scratch.join(format!("imgstore-crash-{}", std::process::id()));
    let cfg = test_dockerd::crash::Config {
        imgstore,
        fixtures: workspace.join("tests/fixtures"),
        work: work.clone(),
        seed,
        points,
        dockerd_every,
        drivers,
        only,
        ops,
    };
    println!("==> crash harness: seed {seed}, {points} kills per operation and driver");
    let started = std::time::Instant::now();
    let result = test_dockerd::crash::run(&cfg, &mut |line| println!("    {line}"));
    let _ = std::fs::remove_dir_all(&work);
    let report = result?;
    if let Some(why) = &report.without_dockerd {
        println!("    without dockerd ({why}): no container on top, no dockerd checks");
    }
    if let Some(why) = &report.without_registry {
        println!("    without a registry ({why}): no pull or push");
    }
    println!("{}", report.table());
    println!(
        "seed {seed}: {} trials in {:.0} s",
        report.rows.iter().map(|r| r.trials).sum::<usize>(),
        started.elapsed().as_secs_f64()
    );
    if report.ok() {
        return Ok(());
    }
    for v in &report.violations {
        println!(
            "VIOLATION {} on {} trial {} (kill after {} ms): {}\n  replay: cargo xtask crash --seed {seed} --only '{}/{}/{}'",
            v.op,
            v.driver,
            v.trial,
            v.kill_after.as_millis(),
            v.what,
            v.op,
            v.driver,
            v.trial
        );
    }
    Err(format!(
        "{} violations (seed {seed})",
        report.violations.len()
    ))
}
