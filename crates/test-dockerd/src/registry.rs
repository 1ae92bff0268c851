//! A throwaway Docker registry (Debian's `docker-registry`, distribution 2.8) on a free
//! `127.0.0.1` port with its own storage directory, optionally behind basic authentication
//! (an htpasswd file), stopped by its PID when dropped.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, io_err};

/// The registry binary.
pub const REGISTRY: &str = "/usr/bin/docker-registry";
/// `htpasswd` (apache2-utils), for [`Registry::htpasswd`].
pub const HTPASSWD: &str = "/usr/bin/htpasswd";

/// Why a registry cannot be started here, if it cannot.
pub fn registry_skip_reason() -> Option<String> {
    for bin in [REGISTRY, HTPASSWD] {
        if !Path::new(bin).exists() {
            return Some(format!(
                "{bin} is not installed (apt-get install docker-registry apache2-utils)"
            ));
        }
    }
    None
}

/// A running registry; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Registry {
    child: Option<Child>,
    addr: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("addr", &self.addr)
            .finish()
    }
}

fn free_port() -> Result<u16, Error> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io_err("bind 127.0.0.1:0"))?;
    Ok(l.local_addr().map_err(io_err("local address"))?.port())
}

/// Whether `GET /v2/` answers (any status) on `addr`.
fn answers(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.")
}

impl Registry {
    /// Starts a registry storing its data in `storage` (created if missing), asking for
    /// basic authentication when `htpasswd` is given; waits up to 30 s until it answers.
    pub fn start(storage: &Path, htpasswd: Option<&Path>) -> Result<Registry, Error> {
        Self::start_with(storage, htpasswd, None)
    }

    /// Like [`start`](Self::start), serving HTTPS only when `tls` is given: (certificate,
    /// key, and the CA client certificates must chain to if any).
    pub fn start_with(
        storage: &Path,
        htpasswd: Option<&Path>,
        tls: Option<(&Path, &Path, Option<&Path>)>,
    ) -> Result<Registry, Error> {
        let dir = tempfile::Builder::new()
            .prefix("reg")
            .tempdir_in("/tmp")
            .map_err(io_err("create a temp dir in /tmp"))?;
        fs::create_dir_all(storage).map_err(io_err(format_args!(
            "create registry storage {}",
            storage.display()
        )))?;
        let mut last = None;
        for _ in 0..5 {
            let port = free_port()?;
            let addr = format!("127.0.0.1:{port}");
            let mut config = format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                storage.display()
            );
            if let Some((cert, key, client_ca)) = tls {
                config.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                ));
                if let Some(ca) = client_ca {
                    config.push_str(&format!("    clientcas:\n      - {}\n", ca.display()));
                }
            }
            if let Some(h) = htpasswd {
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: test-registry\n    path: {}\n",
                    h.display()
                ));
            }
            let cfg = dir.path().join("config.yml");
            fs::write(&cfg, config).map_err(io_err("write registry config"))?;
            let log = dir.path().join("registry.log");
            let out = fs::File::create(&log).map_err(io_err("create registry log"))?;
            let err = out.try_clone().map_err(io_err("clone registry log"))?;
            let child = Command::new(REGISTRY)
                .arg("serve")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(io_err(format_args!("spawn {REGISTRY}")))?;
            let mut r = Registry {
                child: Some(child),
                addr: addr.clone(),
                log,
                _dir: tempfile::tempdir().map_err(io_err("temp dir"))?,
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if answers(&addr) {
                    r._dir = dir;
                    return Ok(r);
                }
                if let Some(c) = r.child.as_mut()
                    && let Ok(Some(status)) = c.try_wait()
                {
                    r.child = None;
                    last = Some(Error::Exited {
                        status,
                        log: fs::read_to_string(&r.log).unwrap_or_default(),
                    });
                    break;
                }
                if Instant::now() > deadline {
                    let log = fs::read_to_string(&r.log).unwrap_or_default();
                    drop(r);
                    return Err(Error::Timeout { log });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Err(last.unwrap_or_else(|| Error::Timeout { log: String::new() }))
    }

    /// Writes an htpasswd file (bcrypt, as the registry requires) for one user into `dir`.
    pub fn htpasswd(dir: &Path, user: &str, password: &str) -> Result<PathBuf, Error> {
        let out = Command::new(HTPASSWD)
            .args(["-Bbn", user, password])
            .output()
            .map_err(io_err(format_args!("run {HTPASSWD}")))?;
        let path = dir.join("htpasswd");
        fs::write(&path, &out.stdout).map_err(io_err("write htpasswd"))?;
        Ok(path)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// What the registry logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = c.id().to_string();
            let _ = Command::new("kill")
                .args(["-TERM", &pid])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match c.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                }
            }
        }
    }
}
