//! The kill -9 harness: runs the real `imgstore` binary on copies of a data root, sends it
//! `SIGKILL` at random moments, and checks what is left.
//!
//! For each storage driver (vfs, overlay2) a base root is made from the fixtures: the
//! `bbapp`/`bb` images of `wave2/bbapp.docker-save.tar` (overlay2: the root dockerd 20.10
//! left after loading it; vfs: imgstore's own load of the archive) with, when dockerd can
//! run here, a container `c1` created from `bbapp:1` by dockerd on top. Each operation
//! ([`OPS`]: `load`, `tag`, `rm`, `rm -f`, `prune`, and with Debian's `docker-registry`
//! `pull` of an image pushed to a local registry at the start and `push` to an emptied
//! repository of it) starts from its own state of that root
//! (e.g. `rm` needs an image to remove) and is first run to completion a few times, to
//! learn its effect and measure its duration. Then, for each of `points` trials, a copy of
//! the root gets the operation killed after a delay drawn uniformly over that duration,
//! and:
//!
//! - a command that exited 0 before the kill must have its whole effect, and nothing for
//!   `fsck --repair` to do;
//! - otherwise `fsck --repair` must exit 0, then a second `fsck --repair` must find nothing
//!   to do and exit 0 (its exit status is `fsck`'s verdict after it), the operation run again
//!   must succeed (an `rm` whose images are already gone may say `No such image`, as docker
//!   does) and leave exactly the effect of an uninterrupted run (images, references,
//!   layers and the number of driver directories), with `fsck` still clean; once a `push`
//!   exits 0, what it pushed is pulled into a fresh root;
//! - for a sample of trials, dockerd 20.10 started on a copy of the repaired root lists
//!   exactly what `imgstore ls -a` lists, runs `bbapp:1` when it is there and starts the
//!   container, each printing what the fixture recorded.
//!
//! Every delay comes from the seed, the operation, the driver and the trial's number, so a
//! violation is replayed with the same seed (and [`Config::only`]).

use std::fmt::Write as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{Dockerd, skip_reason};

/// An operation of the harness: how to prepare its starting state from the base root, and
/// the command to kill.
#[derive(Debug, Clone, Copy)]
pub struct Op {
    /// Its name in the table.
    pub name: &'static str,
    /// imgstore commands run to completion on the base root first (`{base}` is the base
    /// archive's path).
    pub setup: &'static [&'static [&'static str]],
    /// The command killed (same substitution; `{reg}` is the local registry's address).
    pub command: &'static [&'static str],
    /// Needs the local registry (skipped, with the reason in [`Report::without_registry`],
    /// when `docker-registry` is missing).
    pub registry: bool,
}

/// The repository `pull` pulls from: `base:latest`, pushed once at the start.
const PULL_SOURCE: &str = "crash/base";
/// The repository `push` pushes to, emptied (its directory in the registry's storage
/// removed) before every run.
const PUSH_TARGET: &str = "crashpush/base";

/// The operations, in table order.
pub const OPS: [Op; 7] = [
    Op {
        name: "load",
        setup: &[],
        command: &["load", "-q", "-i", "{base}"],
        registry: false,
    },
    Op {
        name: "tag",
        setup: &[],
        command: &["tag", "bb:1", "new:1"],
        registry: false,
    },
    Op {
        name: "rm",
        setup: &[&["load", "-q", "-i", "{base}"]],
        command: &["rm", "base:latest"],
        registry: false,
    },
    Op {
        name: "rm -f",
        setup: &[
            &["load", "-q", "-i", "{base}"],
            &["tag", "base:latest", "base:two"],
        ],
        // bbapp:1 is the stopped container's image; base has two tags, so only its ID
        // with -f deletes it.
        command: &["rm", "-f", "bbapp:1", "7db95e6e4fe3"],
        registry: false,
    },
    Op {
        name: "prune",
        setup: &[&["load", "-q", "-i", "{base}"]],
        command: &["prune", "-a", "-f"],
        registry: false,
    },
    Op {
        name: "pull",
        setup: &[],
        // base:latest's layers are not in the base root: all downloaded.
        command: &["pull", "-q", "{reg}/crash/base:latest"],
        registry: true,
    },
    Op {
        name: "push",
        setup: &[
            &["load", "-q", "-i", "{base}"],
            &["tag", "base:latest", "{reg}/crashpush/base:latest"],
        ],
        command: &["push", "-q", "{reg}/crashpush/base:latest"],
        registry: true,
    },
];

/// How to run the harness.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `imgstore` binary.
    pub imgstore: PathBuf,
    /// The repository's `tests/fixtures`.
    pub fixtures: PathBuf,
    /// A scratch directory (created; what the harness puts there is removed as it goes).
    pub work: PathBuf,
    /// The seed every delay derives from.
    pub seed: u64,
    /// Trials per operation and driver.
    pub points: usize,
    /// Check every n-th trial (counted over the whole run) with dockerd; 0: never.
    pub dockerd_every: usize,
    /// The drivers (`vfs`, `overlay2`).
    pub drivers: Vec<String>,
    /// Only this operation, driver and trial (to replay a violation).
    pub only: Option<(String, String, usize)>,
    /// Only these operations (by name); empty: all.
    pub ops: Vec<String>,
}

/// A check that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The operation.
    pub op: &'static str,
    /// The driver.
    pub driver: String,
    /// The trial's number.
    pub trial: usize,
    /// When the kill was sent.
    pub kill_after: Duration,
    /// What went wrong.
    pub what: String,
}

/// The outcomes of one operation on one driver.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    /// The operation.
    pub op: &'static str,
    /// The driver.
    pub driver: String,
    /// The measured duration of an uninterrupted run (the median of three).
    pub duration: Duration,
    /// Trials run.
    pub trials: usize,
    /// The command exited 0 before the kill.
    pub finished: usize,
    /// Killed; after repair the root was as before the command.
    pub rolled_back: usize,
    /// Killed; after repair the command's whole effect was there.
    pub completed: usize,
    /// Killed; after repair part of the effect was there (e.g. some layers of a load).
    pub partial: usize,
    /// Killed trials where `fsck --repair` did something.
    pub repaired: usize,
    /// Repair actions in all.
    pub actions: usize,
    /// Trials checked with dockerd.
    pub dockerd: usize,
    /// Trials with a violation.
    pub violations: usize,
}

/// What a run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// One row per operation and driver.
    pub rows: Vec<Row>,
    /// Every violation.
    pub violations: Vec<Violation>,
    /// Why dockerd was not used, if it was not (no container on top, no dockerd checks).
    pub without_dockerd: Option<String>,
    /// Why `pull` and `push` were not run, if they were not (no `docker-registry`).
    pub without_registry: Option<String>,
}

impl Report {
    /// The operation x outcome table.
    pub fn table(&self) -> String {
        let header = [
            "operation",
            "driver",
            "duration",
            "trials",
            "finished",
            "rolled back",
            "completed",
            "partial",
            "repaired",
            "actions",
            "dockerd",
            "violations",
        ];
        let mut cells: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
        for r in &self.rows {
            cells.push(vec![
                r.op.to_owned(),
                r.driver.clone(),
                format!("{} ms", r.duration.as_millis()),
                r.trials.to_string(),
                r.finished.to_string(),
                r.rolled_back.to_string(),
                r.completed.to_string(),
                r.partial.to_string(),
                r.repaired.to_string(),
                r.actions.to_string(),
                r.dockerd.to_string(),
                r.violations.to_string(),
            ]);
        }
        let widths: Vec<usize> = (0..header.len())
            .map(|i| cells.iter().map(|c| c[i].len()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for c in &cells {
            let line: Vec<String> = c
                .iter()
                .zip(&widths)
                .map(|(v, w)| format!("{v:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        out
    }

    /// Whether every check held.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// SplitMix64: the delays' random numbers, from the seed and the trial's coordinates.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A number in [0, 1) for trial `i` of `op` on `driver`.
fn unit(seed: u64, op: &str, driver: &str, i: usize) -> f64 {
    let mut h = mix(seed);
    for b in op.bytes().chain([0]).chain(driver.bytes()) {
        h = mix(h ^ u64::from(b));
    }
    h = mix(h ^ i as u64);
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn fail(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> String {
    move |e| format!("{what}: {e}")
}

/// `cp -a` (device files, extended attributes and all, as root).
fn copy_root(from: &Path, to: &Path) -> Result<(), String> {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .map_err(fail("run cp"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("cp -a {} {} failed", from.display(), to.display()))
    }
}

fn remove(p: &Path) {
    let _ = std::fs::remove_dir_all(p);
}

struct Harness<'a> {
    cfg: &'a Config,
    base_archive: String,
    run_output: String,
    with_container: bool,
    /// The local registry and where it stores its data, for `pull` and `push`.
    registry: Option<(crate::Registry, PathBuf)>,
}

impl Harness<'_> {
    fn args(&self, args: &[&str]) -> Vec<String> {
        let reg = self.registry.as_ref().map_or("", |(r, _)| r.addr());
        args.iter()
            .map(|a| {
                a.replace("{base}", &self.base_archive)
                    .replace("{reg}", reg)
            })
            .collect()
    }

    /// Empties the repository `push` pushes to (its blobs stay in the registry's store,
    /// linked to no repository: a push must upload or mount them again).
    fn empty_push_target(&self) {
        if let Some((_, storage)) = &self.registry {
            remove(
                &storage
                    .join("docker/registry/v2/repositories")
                    .join(PUSH_TARGET),
            );
        }
    }

    /// What `push` pushed can be pulled: `imgstore pull` of it into a fresh root.
    fn pushed_is_pullable(&self, scratch: &Path) -> Result<(), String> {
        let root = scratch.join("pull-check");
        remove(&root);
        let r = self.args(&["pull", "-q", &format!("{{reg}}/{PUSH_TARGET}:latest")]);
        let result = self
            .run_ok(&root, "vfs", &r)
            .map_err(|e| format!("the pushed image cannot be pulled: {e}"));
        remove(&root);
        result.map(|_| ())
    }

    /// Pushes `base:latest` to the registry's [`PULL_SOURCE`] from a scratch root.
    fn push_pull_source(&self, scratch: &Path) -> Result<(), String> {
        let root = scratch.join("pull-source");
        remove(&root);
        std::fs::create_dir_all(&root).map_err(fail("create the pull source root"))?;
        let source = format!("{{reg}}/{PULL_SOURCE}:latest");
        for step in [
            &["load", "-q", "-i", "{base}"][..],
            &["tag", "base:latest", &source][..],
            &["push", "-q", &source][..],
        ] {
            self.run_ok(&root, "vfs", &self.args(step))?;
        }
        remove(&root);
        Ok(())
    }

    fn imgstore(&self, root: &Path, driver: &str) -> Command {
        let mut c = Command::new(&self.cfg.imgstore);
        c.arg("--data-root")
            .arg(root)
            .arg("--storage-driver")
            .arg(driver)
            .arg("--lock-timeout")
            .arg("5")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, root: &Path, driver: &str, args: &[String]) -> Result<Output, String> {
        self.imgstore(root, driver)
            .args(args)
            .output()
            .map_err(fail("run imgstore"))
    }

    fn run_ok(&self, root: &Path, driver: &str, args: &[String]) -> Result<String, String> {
        let out = self.run(root, driver, args)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "imgstore {args:?} on {} failed: {}{}",
                root.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// What an operation changes: images and references, layers, and how many driver
    /// directories there are (their names are random).
    fn state(&self, root: &Path, driver: &str) -> Result<String, String> {
        let ls = self.run_ok(
            root,
            driver,
            &self.args(&[
                "ls",
                "-a",
                "--no-trunc",
                "--digests",
                "--format",
                "{{.ID}} {{.Repository}}:{{.Tag}}@{{.Digest}}",
            ]),
        )?;
        let mut lines: Vec<&str> = ls.lines().collect();
        lines.sort_unstable();
        let mut out = lines.join("\n");
        let names = |dir: PathBuf| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(dir)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        };
        let layers = names(root.join("image").join(driver).join("layerdb/sha256"));
        let _ = write!(out, "\nlayers: {}", layers.join(" "));
        let content = match driver {
            "vfs" => names(root.join("vfs/dir")).len(),
            _ => names(root.join(driver))
                .iter()
                .filter(|n| *n != "l")
                .count(),
        };
        let links = names(root.join(driver).join("l")).len();
        let _ = write!(out, "\ndriver directories: {content}, short links: {links}");
        Ok(out)
    }

    /// The base root of `driver` under `dir`.
    fn base_root(&self, driver: &str, dir: &Path) -> Result<PathBuf, String> {
        let root = dir.join(format!("base-{driver}"));
        std::fs::create_dir_all(dir).map_err(fail("create the work directory"))?;
        let archive = self.cfg.fixtures.join("wave2/bbapp.docker-save.tar");
        if driver == "overlay2" {
            let st = Command::new("tar")
                .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xzf"])
                .arg(self.cfg.fixtures.join("wave2/o2root-after-load.tar.gz"))
                .arg("-C")
                .arg(dir)
                .status()
                .map_err(fail("run tar"))?;
            if !st.success() {
                return Err("extracting o2root-after-load failed".to_owned());
            }
            std::fs::rename(dir.join("o2root-after-load"), &root)
                .map_err(fail("rename the overlay2 root"))?;
        } else {
            std::fs::create_dir_all(&root).map_err(fail("create the vfs root"))?;
            self.run_ok(
                &root,
                driver,
                &self.args(&["load", "-q", "-i", &archive.to_string_lossy()]),
            )?;
        }
        if self.with_container {
            let d = Dockerd::start_with_driver(&root, driver).map_err(|e| e.to_string())?;
            d.docker_ok(&["create", "--network", "none", "--name", "c1", "bbapp:1"])
                .map_err(|e| e.to_string())?;
        }
        Ok(root)
    }

    /// dockerd on a copy of `root`: lists what imgstore lists, runs bbapp:1 if it is there
    /// and starts the container. `Err` names what differs.
    fn dockerd_agrees(&self, root: &Path, driver: &str, scratch: &Path) -> Result<(), String> {
        let copy = scratch.join("dockerd-copy");
        remove(&copy);
        copy_root(root, &copy)?;
        let format = "{{.ID}} {{.Repository}}:{{.Tag}}";
        let ours = self.run_ok(
            &copy,
            driver,
            &self.args(&["ls", "-a", "--no-trunc", "--format", format]),
        )?;
        let result = (|| {
            let d = Dockerd::start_with_driver(&copy, driver).map_err(|e| e.to_string())?;
            let theirs = d
                .docker_ok(&["images", "-a", "--no-trunc", "--format", format])
                .map_err(|e| e.to_string())?;
            let sorted = |t: &str| {
                let mut v: Vec<String> = t.lines().map(str::to_owned).collect();
                v.sort();
                v
            };
            if sorted(&ours) != sorted(&theirs) {
                return Err(format!("dockerd lists\n{theirs}imgstore lists\n{ours}"));
            }
            if ours.contains(" bbapp:1\n") {
                let out = d
                    .docker_ok(&["run", "--rm", "--network", "none", "bbapp:1"])
                    .map_err(|e| e.to_string())?;
                if out != self.run_output {
                    return Err(format!("docker run bbapp:1 printed {out:?}"));
                }
            }
            if self.with_container {
                let out = d
                    .docker_ok(&["start", "-a", "c1"])
                    .map_err(|e| e.to_string())?;
                if out != self.run_output {
                    return Err(format!("docker start -a c1 printed {out:?}"));
                }
            }
            Ok(())
        })();
        remove(&copy);
        result
    }
}

/// Runs the harness; `progress` gets a line per operation and driver as it goes.
pub fn run(cfg: &Config, progress: &mut dyn FnMut(&str)) -> Result<Report, String> {
    let without_dockerd = skip_reason();
    let run_output = std::fs::read_to_string(cfg.fixtures.join("wave2/bbapp.run-output.txt"))
        .map_err(fail("read bbapp.run-output.txt"))?;
    let run_output = run_output
        .split_once('\n')
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or_default();
    std::fs::create_dir_all(&cfg.work).map_err(fail("create the work directory"))?;
    let without_registry = crate::registry_skip_reason();
    let registry = match &without_registry {
        Some(_) => None,
        None => {
            let storage = cfg.work.join("registry");
            let r = crate::Registry::start(&storage, None).map_err(|e| e.to_string())?;
            Some((r, storage))
        }
    };
    let h = Harness {
        cfg,
        base_archive: cfg
            .fixtures
            .join("archives/base.docker-archive.skopeo.tar")
            .to_string_lossy()
            .into_owned(),
        run_output,
        with_container: without_dockerd.is_none(),
        registry,
    };
    if h.registry.is_some() {
        h.push_pull_source(&cfg.work)?;
    }
    let mut report = Report {
        seed: cfg.seed,
        without_dockerd,
        without_registry,
        ..Report::default()
    };
    let mut counter = 0usize;
    for driver in &cfg.drivers {
        if cfg.only.as_ref().is_some_and(|(_, d, _)| d != driver) {
            continue;
        }
        let dir = cfg.work.join(driver);
        let base = h.base_root(driver, &dir)?;
        for op in &OPS {
            if let Some((o, d, _)) = &cfg.only
                && (o != op.name || d != driver)
            {
                continue;
            }
            if op.registry && h.registry.is_none() {
                continue;
            }
            if !cfg.ops.is_empty() && !cfg.ops.iter().any(|o| o == op.name) {
                continue;
            }
            let row = run_op(&h, op, driver, &base, &dir, &mut counter, &mut report)?;
            progress(&format!(
                "{} on {}: {} trials, {} violations",
                op.name, driver, row.trials, row.violations
            ));
            report.rows.push(row);
        }
        remove(&dir);
    }
    Ok(report)
}

/// How an imgstore run ended.
enum End {
    /// It exited 0 before the kill.
    Finished,
    /// The kill ended it.
    Killed,
    /// It failed on its own.
    Failed(String),
}

fn run_op(
    h: &Harness<'_>,
    op: &Op,
    driver: &str,
    base: &Path,
    dir: &Path,
    counter: &mut usize,
    report: &mut Report,
) -> Result<Row, String> {
    let cfg = h.cfg;
    // The starting state of this operation.
    let pre_root = dir.join("pre");
    remove(&pre_root);
    copy_root(base, &pre_root)?;
    for step in op.setup {
        h.run_ok(&pre_root, driver, &h.args(step))?;
    }
    let pre = h.state(&pre_root, driver)?;
    let command = h.args(op.command);
    // Three uninterrupted runs: the effect (the same each time) and the duration.
    let mut times = Vec::new();
    let mut post = None;
    for k in 0..3 {
        let root = dir.join(format!("measure-{k}"));
        remove(&root);
        copy_root(&pre_root, &root)?;
        if op.name == "push" {
            h.empty_push_target();
        }
        let t = Instant::now();
        let out = h.run(&root, driver, &command)?;
        times.push(t.elapsed());
        if !out.status.success() {
            return Err(format!(
                "{} on {driver} fails without a kill: {}",
                op.name,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let state = h.state(&root, driver)?;
        match &post {
            None => post = Some(state),
            Some(p) if *p != state => {
                return Err(format!(
                    "{} on {driver} leaves different states:\n{p}\n---\n{state}",
                    op.name
                ));
            }
            Some(_) => {}
        }
        remove(&root);
    }
    let post = post.unwrap_or_default();
    times.sort();
    let duration = times[1];
    let mut row = Row {
        op: op.name,
        driver: driver.to_owned(),
        duration,
        ..Row::default()
    };
    for i in 0..cfg.points {
        if let Some((_, _, t)) = &cfg.only
            && *t != i
        {
            continue;
        }
        *counter += 1;
        let check_dockerd = h.with_container
            && cfg.dockerd_every > 0
            && (*counter).is_multiple_of(cfg.dockerd_every);
        let kill_after = duration.mul_f64(unit(cfg.seed, op.name, driver, i));
        let root = dir.join(format!("trial-{i}"));
        remove(&root);
        copy_root(&pre_root, &root)?;
        if op.name == "push" {
            h.empty_push_target();
        }
        let result = trial(
            h,
            driver,
            &root,
            dir,
            &command,
            kill_after,
            &pre,
            &post,
            check_dockerd,
            &mut row,
        );
        row.trials += 1;
        if let Err(what) = result {
            row.violations += 1;
            report.violations.push(Violation {
                op: op.name,
                driver: driver.to_owned(),
                trial: i,
                kill_after,
                what,
            });
        }
        remove(&root);
    }
    remove(&pre_root);
    Ok(row)
}

/// One trial: the kill, then the checks. `Err` is the violation.
#[allow(clippy::too_many_arguments)]
fn trial(
    h: &Harness<'_>,
    driver: &str,
    root: &Path,
    dir: &Path,
    command: &[String],
    kill_after: Duration,
    pre: &str,
    post: &str,
    check_dockerd: bool,
    row: &mut Row,
) -> Result<(), String> {
    let mut child = h
        .imgstore(root, driver)
        .args(command)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(fail("spawn imgstore"))?;
    std::thread::sleep(kill_after);
    let _ = child.kill();
    let out = child
        .wait_with_output()
        .map_err(fail("wait for imgstore"))?;
    let end = if out.status.success() {
        End::Finished
    } else if out.status.signal() == Some(9) {
        End::Killed
    } else {
        End::Failed(String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let fsck_ok = |when: &str| -> Result<(), String> {
        let out = h.run(root, driver, &h.args(&["fsck"]))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "fsck {when} exits {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stdout)
            ))
        }
    };
    let repair = || -> Result<usize, String> {
        let out = h.run(
            root,
            driver,
            &h.args(&["fsck", "--repair", "--format", "json"]),
        )?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!(
                "fsck --repair exits {}: {text}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(text.lines().filter(|l| l.starts_with("{\"verb\":")).count())
    };
    match end {
        End::Failed(e) => return Err(format!("the command failed on its own: {e}")),
        End::Finished => {
            row.finished += 1;
            let state = h.state(root, driver)?;
            if state != post {
                return Err(format!(
                    "the command exited 0 but its effect is not all there:\n{state}\n--- expected\n{post}"
                ));
            }
            // Its exit status is fsck's verdict.
            let actions = repair().map_err(|e| format!("after a command that exited 0, {e}"))?;
            if actions > 0 {
                return Err(format!(
                    "fsck --repair found {actions} things to do after a command that exited 0"
                ));
            }
            if command.first().is_some_and(|c| c == "push") {
                h.pushed_is_pullable(dir)?;
            }
            if check_dockerd {
                row.dockerd += 1;
                h.dockerd_agrees(root, driver, dir)
                    .map_err(|e| format!("dockerd on the root: {e}"))?;
            }
            return Ok(());
        }
        End::Killed => {}
    }
    let actions = repair()?;
    if actions > 0 {
        row.repaired += 1;
        row.actions += actions;
    }
    // A second repair must find nothing to do, and (its exit status) fsck nothing wrong.
    let again = repair().map_err(|e| format!("after fsck --repair, {e}"))?;
    if again > 0 {
        return Err(format!("a second fsck --repair did {again} more things"));
    }
    let mid = h.state(root, driver)?;
    if mid == pre {
        row.rolled_back += 1;
    } else if mid == post {
        row.completed += 1;
    } else {
        row.partial += 1;
    }
    if check_dockerd {
        row.dockerd += 1;
        h.dockerd_agrees(root, driver, dir)
            .map_err(|e| format!("dockerd on the repaired root: {e}"))?;
    }
    let rerun = h.run(root, driver, command)?;
    if !rerun.status.success() {
        let stderr = String::from_utf8_lossy(&rerun.stderr);
        let gone = command.first().is_some_and(|c| c == "rm")
            && stderr.lines().all(|l| l.contains("No such image"));
        if !gone {
            return Err(format!("the command run again fails: {stderr}"));
        }
    }
    let state = h.state(root, driver)?;
    if state != post {
        return Err(format!(
            "after the command ran again:\n{state}\n--- expected\n{post}"
        ));
    }
    if command.first().is_some_and(|c| c == "push") {
        h.pushed_is_pullable(dir)?;
    }
    fsck_ok("after the command ran again")
}
