//! Starting a real dockerd 20.10 (`--storage-driver=vfs`) on a data root for tests.
//!
//! Copy this file into another crate's `tests/common/` to use it there. Tests call
//! [`Dockerd::skip_reason`] first and return early (printing the reason) when dockerd cannot
//! run here. The daemon is stopped by its PID when the [`Dockerd`] is dropped, so a failing
//! assertion never leaves it running.
#![allow(dead_code)]

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The daemon binary.
pub const DOCKERD: &str = "/usr/sbin/dockerd";
/// Debian's 20.10 client (not `/usr/local/bin/docker`).
pub const DOCKER: &str = "/usr/bin/docker";

/// Serialises the daemons of one test binary (they are slow and heavy; one at a time).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A running dockerd.
pub struct Dockerd {
    child: Option<Child>,
    /// Short directory for the exec root and the socket (unix socket paths must stay short).
    short: tempfile::TempDir,
    data_root: PathBuf,
    log: PathBuf,
    _guard: MutexGuard<'static, ()>,
}

impl Dockerd {
    /// Why dockerd cannot be used here, if it cannot.
    pub fn skip_reason() -> Option<String> {
        if !Path::new(DOCKERD).exists() {
            return Some(format!("{DOCKERD} is not installed"));
        }
        if !Path::new(DOCKER).exists() {
            return Some(format!("{DOCKER} is not installed"));
        }
        use std::os::unix::fs::MetadataExt;
        if fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) != 0 {
            return Some("dockerd needs root".into());
        }
        None
    }

    /// Starts dockerd on `data_root` and waits until it answers (up to 60 s).
    pub fn start(data_root: &Path) -> io::Result<Dockerd> {
        let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let short = tempfile::Builder::new().prefix("dk").tempdir_in("/tmp")?;
        fs::create_dir_all(data_root)?;
        let log = short.path().join("dockerd.log");
        let log_file = fs::File::create(&log)?;
        let sock = short.path().join("d.sock");
        let child = Command::new(DOCKERD)
            .arg("--storage-driver=vfs")
            .arg("--iptables=false")
            .arg("--ip6tables=false")
            .arg("--bridge=none")
            .arg("--data-root")
            .arg(data_root)
            .arg("--exec-root")
            .arg(short.path().join("e"))
            .arg("--pidfile")
            .arg(short.path().join("pid"))
            .arg("--host")
            .arg(format!("unix://{}", sock.display()))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()?;
        let mut d = Dockerd {
            child: Some(child),
            short,
            data_root: data_root.to_path_buf(),
            log,
            _guard: guard,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if sock.exists() && d.docker(&["version"]).is_ok_and(|o| o.status.success()) {
                return Ok(d);
            }
            if let Some(c) = d.child.as_mut()
                && let Some(status) = c.try_wait()?
            {
                return Err(io::Error::other(format!(
                    "dockerd exited with {status}: {}",
                    d.log_tail()
                )));
            }
            if Instant::now() > deadline {
                let tail = d.log_tail();
                d.stop();
                return Err(io::Error::other(format!("dockerd did not start: {tail}")));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The socket's `unix://` address.
    pub fn host(&self) -> String {
        format!("unix://{}", self.short.path().join("d.sock").display())
    }

    /// The data root.
    pub fn data_root(&self) -> &Path {
        &self.data_root
    }

    /// Runs `docker -H <sock> args...`.
    pub fn docker(&self, args: &[&str]) -> io::Result<Output> {
        Command::new(DOCKER)
            .arg("-H")
            .arg(self.host())
            .args(args)
            .stdin(Stdio::null())
            .output()
    }

    /// Runs docker and fails (with its stderr) unless it succeeds; returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args).expect("run docker");
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}\n--- dockerd log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The last lines of the daemon's log.
    pub fn log_tail(&self) -> String {
        let s = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Stops the daemon: SIGTERM to its PID, then waits (SIGKILL after 30 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: sending a signal to our own child process by its PID.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
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
