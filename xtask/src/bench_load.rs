//! `cargo xtask bench-load`: `imgstore load` of the generated image (`gen-archive`) into a
//! fresh overlay2 root, side by side with `docker load` into a running dockerd 20.10 on
//! overlay2 and with GNU tar extracting the same layer tars followed by `sync`. Several
//! rounds, the order rotating from one round to the next; prints each run and the medians.
//! Needs root, dockerd and docker.
//!
//! `--work DIR` puts the archive, the roots and tar's output on another file system. On a
//! host whose file system deletes slowly or penalises creating files after deletions (an
//! ext4 without a journal skips every inode freed in the last minute, one lookup each, see
//! `docs/benchmarks.md`), a freshly made ext4 with a journal on a loop device gives every
//! side the same conditions. Each round starts after everything the previous one wrote is
//! removed and synced.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DOCKERD: &str = "/usr/sbin/dockerd";
const DOCKER: &str = "/usr/bin/docker";
const ROUNDS: usize = 3;

fn sh(cmd: &mut Command, what: &str) -> Result<(), String> {
    let st = cmd
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("{what}: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{what}: {st}"))
    }
}

fn sync() -> Result<(), String> {
    sh(&mut Command::new("sync"), "sync")
}

fn timed(f: impl FnOnce() -> Result<(), String>) -> Result<Duration, String> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed())
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs the benchmark; `args`: `[--archive FILE] [--work DIR] [--rounds N]`.
pub fn run(args: &[String]) -> Result<(), String> {
    if !Path::new(DOCKERD).exists() || !Path::new(DOCKER).exists() {
        println!("skipping: {DOCKERD} or {DOCKER} is missing");
        return Ok(());
    }
    let euid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&euid.stdout).trim() != "0" {
        println!("skipping: needs root (dockerd, overlay2)");
        return Ok(());
    }
    let opt = |name: &str| -> Result<Option<&String>, String> {
        match args.iter().position(|a| a == name) {
            Some(i) => args
                .get(i + 1)
                .map(Some)
                .ok_or_else(|| format!("{name} needs a value")),
            None => Ok(None),
        }
    };
    let work = match opt("--work")? {
        Some(d) => PathBuf::from(d).join("bench-load"),
        None => crate::target_dir().join("bench-load"),
    };
    let rounds = match opt("--rounds")? {
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("--rounds: {n} is not a positive count"))?,
        None => ROUNDS,
    };
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let archive = match args.iter().position(|a| a == "--archive") {
        Some(i) => PathBuf::from(args.get(i + 1).ok_or("--archive needs a file")?),
        None => {
            let p = work.join("gen.tar");
            crate::gen_archive::run(&["-o".to_owned(), p.display().to_string()])?;
            p
        }
    };
    // The layer tars, for GNU tar.
    let layers_dir = work.join("layers");
    std::fs::create_dir_all(&layers_dir).map_err(|e| e.to_string())?;
    sh(
        Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&layers_dir),
        "tar -x of the archive",
    )?;
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layers_dir.join("manifest.json")).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let layers: Vec<PathBuf> = manifest[0]["Layers"]
        .as_array()
        .ok_or("manifest.json has no Layers")?
        .iter()
        .filter_map(|l| l.as_str().map(|l| layers_dir.join(l)))
        .collect();
    let imgstore = crate::target_dir().join("release/imgstore");
    sh(
        crate::cargo().args(["build", "--release", "-p", "imgstore"]),
        "cargo build --release -p imgstore",
    )?;

    // dockerd, running for the whole docker side.
    let droot = work.join("dockerd-root");
    let sock = std::env::temp_dir().join(format!("bench-load-{}.sock", std::process::id()));
    let exec_root = std::env::temp_dir().join(format!("bench-load-{}-ex", std::process::id()));
    let log = std::fs::File::create(work.join("dockerd.log")).map_err(|e| e.to_string())?;
    let mut dockerd = Command::new(DOCKERD)
        .args([
            "--storage-driver=overlay2",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
        ])
        .arg("--data-root")
        .arg(&droot)
        .arg("--exec-root")
        .arg(&exec_root)
        .arg("--pidfile")
        .arg(work.join("dockerd.pid"))
        .arg("--host")
        .arg(format!("unix://{}", sock.display()))
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("start dockerd: {e}"))?;
    let host = format!("unix://{}", sock.display());
    let docker = |args: &[&str]| {
        let mut c = Command::new(DOCKER);
        c.arg("-H").arg(&host).args(args);
        c
    };
    let result = (|| -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !docker(&["version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            if Instant::now() > deadline {
                return Err("dockerd did not answer within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let (mut theirs, mut ours, mut tar) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let a = archive.display().to_string();
            let root = work.join(format!("ours-{round}"));
            let out = work.join(format!("tar-{round}"));
            let (mut d, mut o, mut t) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
            // Rotate who goes first: whatever one side leaves for the kernel to do (dirty
            // pages, freed inodes) falls on each side in turn.
            for side in (0..3).map(|i| (i + round) % 3) {
                sync()?;
                match side {
                    0 => d = timed(|| sh(&mut docker(&["load", "-q", "-i", &a]), "docker load"))?,
                    1 => {
                        o = timed(|| {
                            sh(
                                Command::new(&imgstore)
                                    .arg("--data-root")
                                    .arg(&root)
                                    .args(["--storage-driver", "overlay2", "load", "-q", "-i"])
                                    .arg(&archive),
                                "imgstore load",
                            )
                        })?
                    }
                    _ => {
                        t = timed(|| {
                            for (i, l) in layers.iter().enumerate() {
                                let dir = out.join(i.to_string());
                                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                                sh(
                                    Command::new("tar").arg("-xf").arg(l).arg("-C").arg(&dir),
                                    "tar -x",
                                )?;
                            }
                            sync()
                        })?
                    }
                }
            }
            sh(&mut docker(&["rmi", "gen/bench:1"]), "docker rmi")?;
            let _ = std::fs::remove_dir_all(&root);
            let _ = std::fs::remove_dir_all(&out);
            sync()?;
            println!(
                "round {}: docker load {:.2} s, imgstore load {:.2} s, tar -x + sync {:.2} s",
                round + 1,
                d.as_secs_f64(),
                o.as_secs_f64(),
                t.as_secs_f64()
            );
            theirs.push(d);
            ours.push(o);
            tar.push(t);
        }
        let (d, o, t) = (median(&mut theirs), median(&mut ours), median(&mut tar));
        println!("\n| | median of {rounds} | imgstore load is |");
        println!("|---|---|---|");
        println!(
            "| docker load (dockerd 20.10, overlay2) | {:.2} s | {:.2}x faster |",
            d.as_secs_f64(),
            d.as_secs_f64() / o.as_secs_f64()
        );
        println!("| imgstore load (overlay2) | {:.2} s | |", o.as_secs_f64());
        println!(
            "| tar -x of the layer tars + sync | {:.2} s | {:.2}x the time |",
            t.as_secs_f64(),
            o.as_secs_f64() / t.as_secs_f64()
        );
        Ok(())
    })();
    let _ = Command::new("kill").arg(dockerd.id().to_string()).status();
    let _ = dockerd.wait();
    // dockerd makes its homes private mounts and may leave them when killed.
    for m in [droot.join("overlay2"), droot.clone()] {
        let _ = Command::new("umount").arg(m).stderr(Stdio::null()).status();
    }
    let _ = std::fs::remove_dir_all(&droot);
    let _ = std::fs::remove_dir_all(&exec_root);
    result
}
