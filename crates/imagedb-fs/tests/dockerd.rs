//! dockerd 20.10 reads back an imagedb written by FsBackend. Skips (with a reason) when
//! `/usr/sbin/dockerd` is missing or the test does not run as root.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use digest_set::Digest;
use imagedb_fs::{FsBackend, StoreBackend};

const DOCKERD: &str = "/usr/sbin/dockerd";
const DOCKER: &str = "/usr/bin/docker";

/// Stops dockerd (SIGTERM, then wait) even when the test panics.
struct Daemon {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Daemon {
    fn start(data_root: &Path, state: &Path) -> Daemon {
        let socket = state.join("d.sock");
        let log = state.join("dockerd.log");
        let child = Command::new(DOCKERD)
            .args([
                "--storage-driver=vfs",
                "--iptables=false",
                "--ip6tables=false",
            ])
            .args(["--bridge=none"])
            .arg("--data-root")
            .arg(data_root)
            .arg("--exec-root")
            .arg(state.join("exec"))
            .arg("--pidfile")
            .arg(state.join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", socket.display()))
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn dockerd");
        let daemon = Daemon { child, socket, log };
        // Wait until the API answers (bounded: 120 tries of 0.5 s).
        for _ in 0..120 {
            if daemon.docker(&["version"]).is_some() {
                return daemon;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        panic!(
            "dockerd did not come up; log:\n{}",
            fs::read_to_string(&daemon.log).unwrap_or_default()
        );
    }

    fn docker(&self, args: &[&str]) -> Option<String> {
        let out = Command::new(DOCKER)
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: sending a signal to our own child process.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let _ = self.child.wait();
    }
}

/// `docker image ls -a` rows without the clock-dependent field, sorted.
fn ls_rows(text: &str) -> Vec<String> {
    let mut rows: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let start = l.find("\"CreatedSince\":\"").expect("CreatedSince field");
            let rest = &l[start + 16..];
            let end = rest.find('"').expect("end of value");
            format!("{}{}", &l[..start], &rest[end + 2..])
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn dockerd_reads_what_fs_backend_writes() {
    if !Path::new(DOCKERD).exists() || !Path::new(DOCKER).exists() {
        eprintln!("skipping: {DOCKERD} or {DOCKER} is not installed");
        return;
    }
    if !common::is_root() {
        eprintln!("skipping: dockerd needs root");
        return;
    }
    let name = "dockerroot-02-after-build";
    let (tmp, imagedb) = common::extract_fixture(name);

    // Read everything dockerd wrote, then remove the imagedb and write it anew through
    // FsBackend (into a fresh directory, so modes come from us).
    let mut configs = Vec::new();
    let mut metadata: BTreeMap<Digest, Vec<(&str, Vec<u8>)>> = BTreeMap::new();
    {
        let original = FsBackend::open(&imagedb).expect("open fixture");
        for id in original.walk().expect("walk") {
            configs.push(original.get(&id).expect("get"));
            for key in ["parent", "lastUpdated"] {
                if let Some(v) = original.get_metadata(&id, key).expect("md") {
                    metadata.entry(id).or_default().push((key, v));
                }
            }
        }
    }
    fs::remove_dir_all(&imagedb).expect("remove imagedb");
    {
        let store = FsBackend::open(&imagedb).expect("open new");
        for c in &configs {
            store.set(c).expect("set");
        }
        for (id, values) in &metadata {
            for (key, v) in values {
                store.set_metadata(id, key, v).expect("set md");
            }
        }
    }

    let data_root = tmp.path().join(name);
    let state = tempfile::tempdir().expect("state dir");
    let daemon = Daemon::start(&data_root, state.path());
    let ls = daemon
        .docker(&["image", "ls", "-a", "--no-trunc", "--format", "{{json .}}"])
        .expect("docker image ls");
    let expected_dir = common::fixtures_dir().join(format!("{name}.expected"));
    let expected = fs::read_to_string(expected_dir.join("ls-a.json")).expect("expected ls");
    assert_eq!(ls_rows(&ls), ls_rows(&expected));
    let parent = daemon
        .docker(&[
            "image",
            "inspect",
            "--format",
            "{{.Parent}}",
            "peer/child:1",
        ])
        .expect("inspect");
    assert!(parent.trim().starts_with("sha256:"), "{parent}");
    let log = fs::read_to_string(&daemon.log).unwrap_or_default();
    let restore_errors: Vec<&str> = log.lines().filter(|l| l.contains("level=error")).collect();
    assert!(restore_errors.is_empty(), "{restore_errors:#?}");
    drop(daemon);

    // And what dockerd left is still read by FsBackend.
    let store = FsBackend::open(&imagedb).expect("reopen");
    assert_eq!(store.walk().expect("walk").len(), configs.len());
    for id in store.walk().expect("walk") {
        store.get(&id).expect("verifies");
    }
}
