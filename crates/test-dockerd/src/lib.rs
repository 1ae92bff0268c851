//! Test support: a throwaway dockerd 20.10 on a data root, driven with the docker CLI.
//!
//! The workspace's compatibility tests check that what our crates write is what dockerd
//! reads, and the other way round. This crate is the one place that starts such a daemon
//! (`publish = false`; used only as a dev-dependency).
//!
//! - [`skip_reason`] says why dockerd cannot run here. Tests print it with `eprintln!` and
//!   return: they never fail or get `#[ignore]`d because dockerd is missing.
//! - [`Dockerd::start`] starts [`DOCKERD`] with the vfs storage driver and no networking
//!   (`--storage-driver=vfs --iptables=false --ip6tables=false --bridge=none`) on a data root
//!   ([`Dockerd::start_with_driver`] with another driver, such as `overlay2`),
//!   with its exec root, pid file, socket and log in a short temp dir under `/tmp` (unix
//!   socket paths are limited to about 100 bytes), and waits (up to 60 s) until
//!   `docker version` answers.
//! - [`Dockerd::docker`] and [`Dockerd::docker_ok`] run the [`DOCKER`] client against it.
//! - Dropping the [`Dockerd`] stops the daemon by its PID (SIGTERM, SIGKILL after 30 s), so a
//!   failing assertion never leaves it running.
//!
//! - [`Registry`] starts Debian's `docker-registry` (distribution 2.8) on a free `127.0.0.1`
//!   port with its own storage, optionally behind basic authentication, and stops it by PID
//!   when dropped ([`registry_skip_reason`] says why it cannot run here).
//!
//! One daemon runs at a time per test binary (they are slow and heavy): a second
//! [`Dockerd::start`] in the same process waits until the first [`Dockerd`] is dropped, so
//! a test must drop one daemon before it starts the next.
//!
//! ```
//! use test_dockerd::{Dockerd, skip_reason};
//!
//! if let Some(why) = skip_reason() {
//!     eprintln!("skipping: {why}");
//!     return;
//! }
//! let tmp = tempfile::tempdir().expect("temp dir");
//! let d = Dockerd::start(&tmp.path().join("root")).expect("start dockerd");
//! let ids = d.docker_ok(&["images", "-a", "-q"]).expect("docker images");
//! assert_eq!(ids, "", "a new data root holds no images");
//! drop(d); // stops the daemon
//! ```
#![deny(missing_docs)]

pub mod canary;
pub mod crash;
pub mod registry;

pub use registry::{Registry, registry_skip_reason};

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The daemon binary (Debian's docker.io 20.10).
pub const DOCKERD: &str = "/usr/sbin/dockerd";
/// The 20.10 client that goes with it (not `/usr/local/bin/docker`).
pub const DOCKER: &str = "/usr/bin/docker";

/// How long [`Dockerd::start`] waits for the API to answer.
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long [`Drop`] waits after SIGTERM before it kills the daemon.
const STOP_LIMIT: Duration = Duration::from_secs(30);
/// How many lines of the daemon's log an [`Error`] carries.
const LOG_TAIL_LINES: usize = 30;

/// Serialises the daemons of one test binary.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Why dockerd cannot be used here, if it cannot: [`DOCKERD`] or [`DOCKER`] is missing, or
/// the process does not run as root.
pub fn skip_reason() -> Option<String> {
    for bin in [DOCKERD, DOCKER] {
        if !Path::new(bin).exists() {
            return Some(format!("{bin} is not installed"));
        }
    }
    if fs::metadata("/proc/self").map_or(1, |m| m.uid()) != 0 {
        return Some("dockerd needs root".to_owned());
    }
    None
}

/// Why starting dockerd or a docker command failed. `Debug` prints the same text as
/// `Display`, so `.expect()` in a test shows the daemon's log readably.
pub enum Error {
    /// An I/O operation on `what` failed (temp dir, log file, spawning a process).
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: io::Error,
    },
    /// dockerd exited while starting.
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// The last lines of its log.
        log: String,
    },
    /// dockerd did not answer `docker version` within 60 s (it has been stopped).
    Timeout {
        /// The last lines of its log.
        log: String,
    },
    /// A docker command exited unsuccessfully.
    Docker {
        /// Its arguments (after `-H <socket>`).
        args: Vec<String>,
        /// Its exit status.
        status: ExitStatus,
        /// What it printed on stderr.
        stderr: String,
        /// The last lines of the daemon's log.
        log: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { what, source } => write!(f, "{what}: {source}"),
            Error::Exited { status, log } => {
                write!(
                    f,
                    "{DOCKERD} exited with {status}\n--- dockerd log ---\n{log}"
                )
            }
            Error::Timeout { log } => write!(
                f,
                "{DOCKERD} did not answer within {}s\n--- dockerd log ---\n{log}",
                START_LIMIT.as_secs()
            ),
            Error::Docker {
                args,
                status,
                stderr,
                log,
            } => write!(
                f,
                "docker {args:?} exited with {status}: {stderr}\n--- dockerd log ---\n{log}"
            ),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// `Error::Io` about `what`.
fn io_err(what: impl fmt::Display) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io {
        what: what.to_string(),
        source,
    }
}

/// A running dockerd on a data root; stopped by its PID when dropped.
pub struct Dockerd {
    child: Option<Child>,
    sock: PathBuf,
    log: PathBuf,
    /// Holds the exec root, pid file, socket and log (short, for the socket's sake).
    _short: tempfile::TempDir,
    _one_at_a_time: MutexGuard<'static, ()>,
}

impl Dockerd {
    /// Starts dockerd on `data_root` (created if missing) and waits until `docker version`
    /// answers, up to 60 s. Waits first for any other [`Dockerd`] of this process to be
    /// dropped.
    pub fn start(data_root: &Path) -> Result<Dockerd, Error> {
        Self::start_with_driver(data_root, "vfs")
    }

    /// Like [`start`](Self::start), with the storage driver `driver` (`vfs`, `overlay2`).
    pub fn start_with_driver(data_root: &Path, driver: &str) -> Result<Dockerd, Error> {
        let guard = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let short = tempfile::Builder::new()
            .prefix("dk")
            .tempdir_in("/tmp")
            .map_err(io_err("create a temp dir in /tmp"))?;
        fs::create_dir_all(data_root).map_err(io_err(format_args!(
            "create data root {}",
            data_root.display()
        )))?;
        let sock = short.path().join("d.sock");
        let log = short.path().join("dockerd.log");
        let log_file =
            fs::File::create(&log).map_err(io_err(format_args!("create log {}", log.display())))?;
        let log_file2 = log_file
            .try_clone()
            .map_err(io_err(format_args!("clone log {}", log.display())))?;
        let child = Command::new(DOCKERD)
            .arg(format!("--storage-driver={driver}"))
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .arg("--data-root")
            .arg(data_root)
            .arg("--exec-root")
            .arg(short.path().join("e"))
            .arg("--pidfile")
            .arg(short.path().join("pid"))
            .arg("--host")
            .arg(format!("unix://{}", sock.display()))
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_file2)
            .spawn()
            .map_err(io_err(format_args!("spawn {DOCKERD}")))?;
        let mut d = Dockerd {
            child: Some(child),
            sock,
            log,
            _short: short,
            _one_at_a_time: guard,
        };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if d.sock.exists() && d.docker(&["version"]).is_ok_and(|o| o.status.success()) {
                return Ok(d);
            }
            if let Some(child) = d.child.as_mut()
                && let Some(status) = child
                    .try_wait()
                    .map_err(io_err(format_args!("wait for {DOCKERD}")))?
            {
                d.child = None;
                return Err(Error::Exited {
                    status,
                    log: d.log_tail(),
                });
            }
            if Instant::now() > deadline {
                let log = d.log_tail();
                d.stop();
                return Err(Error::Timeout { log });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The daemon's unix socket.
    pub fn sock(&self) -> &Path {
        &self.sock
    }

    /// Everything the daemon has printed so far (stdout and stderr).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `docker -H unix://<sock> args...` and returns what it did, whatever its status.
    pub fn docker<S: AsRef<OsStr>>(&self, args: &[S]) -> io::Result<Output> {
        Command::new(DOCKER)
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
    }

    /// Runs docker like [`Dockerd::docker`] and returns its stdout, or an error with its
    /// stderr and the daemon's log unless it exits successfully.
    pub fn docker_ok<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<String, Error> {
        let out = self
            .docker(args)
            .map_err(io_err(format_args!("run {DOCKER}")))?;
        if !out.status.success() {
            return Err(Error::Docker {
                args: args
                    .iter()
                    .map(|a| a.as_ref().to_string_lossy().into_owned())
                    .collect(),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                log: self.log_tail(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The last lines of the daemon's log.
    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    /// SIGTERM to the daemon's PID, then waits for it; SIGKILL after 30 s.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id().to_string();
        // `kill` (procps or the shell builtin's binary) keeps this crate free of libc.
        let termed = Command::new("kill")
            .args(["-TERM", &pid])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + if termed { STOP_LIMIT } else { Duration::ZERO };
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
            }
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
    }
}
