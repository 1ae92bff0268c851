//! Pulls through a faulty network and from a lying registry: a small HTTP proxy in front of
//! the fixture registry drops connections in the middle of a blob, answers 500, or stalls
//! while the pull is killed; a registry whose stored blob is corrupt serves the wrong bytes.
//! Each ends in a resumed download or one clear error, never a corrupt layer or an image
//! without its layers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{self, stdout_ok};
use crate::registry::{BBAPP_ID, fixture_registry, imgstore, skip_reason};

/// The fixture's bottom layer blob (1 MB) and top layer blob (163 bytes).
const BIG_BLOB: &str = "sha256:c5443491299400039faa3f0d3c80b3f7340315fc266ac8cbac0dc6e99d419a66";
const TOP_BLOB: &str = "sha256:3f6fd8c3a4bdb31a4869cfbc75265bf55c6307d550e6acc1a67fb4a684c146f3";

/// What the proxy does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Forward it.
    None,
    /// Forward the head and this many body bytes, then close.
    CutAfter(usize),
    /// Answer 500.
    Error500,
    /// Forward the head and this many body bytes, then hang until the client goes.
    StallAfter(usize),
    /// Forward the answer with this many more bytes than it has (its length fixed).
    Pad(usize),
}

type Rule = dyn Fn(&str, &str, usize) -> Fault + Send + Sync;

/// A proxy in front of `upstream`: `rule(method, path, n)` decides, `n` counting the
/// requests for that path so far. It logs `METHOD PATH RANGE` lines.
struct Proxy {
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn read_head(r: &mut BufReader<TcpStream>) -> Option<(String, Vec<(String, String)>)> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    Some((line.trim_end().to_owned(), headers))
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn serve(
    client: TcpStream,
    upstream: &str,
    rule: &Rule,
    counts: &Mutex<std::collections::HashMap<String, usize>>,
    log: &Mutex<Vec<String>>,
) -> Option<()> {
    let mut r = BufReader::new(client.try_clone().ok()?);
    let mut w = client;
    if r.fill_buf().ok()?.first() == Some(&0x16) {
        let _ = w.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
        return None;
    }
    let (line, headers) = read_head(&mut r)?;
    let mut parts = line.split(' ');
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut body = vec![
        0;
        header(&headers, "content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0)
    ];
    r.read_exact(&mut body).ok()?;
    let n = {
        let mut c = counts.lock().ok()?;
        let e = c.entry(format!("{method} {path}")).or_insert(0);
        *e += 1;
        *e
    };
    log.lock().ok()?.push(format!(
        "{method} {path} {}",
        header(&headers, "range").unwrap_or("-")
    ));
    let fault = rule(&method, &path, n);
    if fault == Fault::Error500 {
        let _ = w.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return Some(());
    }
    let mut up = TcpStream::connect(upstream).ok()?;
    let mut req = format!("{line}\r\n");
    for (k, v) in &headers {
        if !k.eq_ignore_ascii_case("connection") {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    req.push_str("Connection: close\r\n\r\n");
    up.write_all(req.as_bytes()).ok()?;
    up.write_all(&body).ok()?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp).ok()?;
    let split = resp.windows(4).position(|x| x == b"\r\n\r\n")? + 4;
    let (head, rbody) = resp.split_at(split);
    let mut head =
        String::from_utf8_lossy(head).replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
    let padded;
    let rbody = if let Fault::Pad(k) = fault {
        let mut b = rbody.to_vec();
        b.resize(b.len() + k, 0);
        head = head
            .lines()
            .map(|l| {
                if l.to_ascii_lowercase().starts_with("content-length:") {
                    format!("Content-Length: {}", b.len())
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\r\n");
        head.push_str("\r\n");
        padded = b;
        &padded[..]
    } else {
        rbody
    };
    w.write_all(head.as_bytes()).ok()?;
    match fault {
        Fault::CutAfter(k) => {
            let _ = w.write_all(&rbody[..k.min(rbody.len())]);
            let _ = w.shutdown(std::net::Shutdown::Both);
        }
        Fault::StallAfter(k) => {
            let _ = w.write_all(&rbody[..k.min(rbody.len())]);
            let _ = w.flush();
            // Hang until the client goes (or a minute passes).
            let _ = r.get_ref().set_read_timeout(Some(Duration::from_secs(60)));
            let mut sink = [0u8; 1];
            let _ = r.read(&mut sink);
        }
        _ => {
            let _ = w.write_all(rbody);
        }
    }
    Some(())
}

impl Proxy {
    fn start(
        upstream: &str,
        rule: impl Fn(&str, &str, usize) -> Fault + Send + Sync + 'static,
    ) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let rule: Arc<Rule> = Arc::new(rule);
        let counts = Arc::new(Mutex::new(std::collections::HashMap::new()));
        let (s, lg, up) = (stop.clone(), log.clone(), upstream.to_owned());
        std::thread::spawn(move || {
            for c in l.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(c) = c else { continue };
                let (rule, counts, lg, up) = (rule.clone(), counts.clone(), lg.clone(), up.clone());
                std::thread::spawn(move || serve(c, &up, &*rule, &counts, &lg));
            }
        });
        Proxy { addr, log, stop }
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }
}

fn is_blob(path: &str, blob: &str) -> bool {
    path.ends_with(&format!("/blobs/{blob}"))
}

/// Every path under `root` with its size, except the partial downloads (kept to be
/// continued).
fn snapshot(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.expect("entry").path();
            let m = std::fs::symlink_metadata(&p).expect("meta");
            let rel = p.strip_prefix(root).expect("rel").display().to_string();
            if rel.contains(".imgstore-pull") {
                continue;
            }
            if m.is_dir() {
                out.push(format!("{rel}/"));
                stack.push(p);
            } else {
                out.push(format!("{rel} {}", m.len()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn dropped_connections_resume_and_500s_are_retried() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let reg = fixture_registry(&tmp.path().join("reg"), None);
    // The big blob's first answer stops after 300 kB; every blob's first request gets a 500.
    let proxy = Proxy::start(reg.addr(), |method, path, n| {
        if method != "GET" || !path.contains("/blobs/") {
            return Fault::None;
        }
        match n {
            1 => Fault::Error500,
            2 if is_blob(path, BIG_BLOB) => Fault::CutAfter(300_000),
            _ => Fault::None,
        }
    });
    let root = tmp.path().join("root");
    let r = format!("{}/fixture/bbapp:1", proxy.addr);
    let text = stdout_ok(&imgstore(
        &root,
        None,
        &["--storage-driver", "vfs", "pull", &r],
    ));
    assert!(text.ends_with(&format!("{r}\n")), "{text}");
    let log = proxy.log();
    assert!(
        log.iter()
            .any(|l| l.contains(BIG_BLOB) && l.ends_with("bytes=300000-")),
        "resumed with Range: {log:#?}"
    );
    assert_eq!(common::run(&root, &["fsck"]).status.code(), Some(0));
    let ids = stdout_ok(&common::run(&root, &["ls", "-q", "--no-trunc"]));
    assert_eq!(ids.trim(), BBAPP_ID);

    // A registry that always fails: one line, exit 1, no image.
    let broken = Proxy::start(reg.addr(), |method, path, _| {
        if method == "GET" && is_blob(path, TOP_BLOB) {
            Fault::Error500
        } else {
            Fault::None
        }
    });
    let root2 = tmp.path().join("root2");
    let started = Instant::now();
    let out = imgstore(
        &root2,
        None,
        &[
            "--storage-driver",
            "vfs",
            "pull",
            &format!("{}/fixture/bbapp:1", broken.addr),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("HTTP 500") && err.contains("gave up after 5 attempts"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "bounded retries"
    );
    let ids = stdout_ok(&common::run(&root2, &["ls", "-a", "-q"]));
    assert_eq!(ids, "", "no image without its layers");
    assert_eq!(common::run(&root2, &["fsck"]).status.code(), Some(0));
}

#[test]
fn a_wrong_digest_is_refused_and_leaves_no_layer() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let reg = fixture_registry(&tmp.path().join("reg"), None);
    let good = fixture_registry(&tmp.path().join("good"), None);
    // Corrupt the stored big blob: the registry serves bytes that do not hash to its name.
    let hex = BIG_BLOB.trim_start_matches("sha256:");
    let data = tmp
        .path()
        .join("reg/registry/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let mut bytes = std::fs::read(&data).expect("blob");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&data, &bytes).expect("corrupt blob");
    for driver in drivers() {
        let root = tmp.path().join(format!("root-{driver}"));
        // A healthy store first, so that "nothing left" is checked against a real one.
        stdout_ok(&common::run(
            &root,
            &[
                "--storage-driver",
                driver,
                "load",
                "-i",
                common::fixtures_dir()
                    .join("archives/base.docker-archive.skopeo.tar")
                    .to_str()
                    .expect("path"),
            ],
        ));
        let before = snapshot(&root);
        let out = imgstore(
            &root,
            None,
            &[
                "--storage-driver",
                driver,
                "pull",
                &format!("{}/fixture/bbapp:1", reg.addr()),
            ],
        );
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(BIG_BLOB) && err.contains("digest mismatch"),
            "{err}"
        );
        assert_eq!(
            snapshot(&root),
            before,
            "{driver}: nothing of the bad blob is left"
        );
        assert_eq!(common::run(&root, &["fsck"]).status.code(), Some(0));
        // A blob longer than its descriptor says is cut off there (a fresh root: the one
        // above kept the verified partial blobs of the failed pull to continue them).
        let root = tmp.path().join(format!("padded-{driver}"));
        let padding = Proxy::start(good.addr(), |method, path, _| {
            if method == "GET" && is_blob(path, TOP_BLOB) {
                Fault::Pad(1 << 20)
            } else {
                Fault::None
            }
        });
        let out = imgstore(
            &root,
            None,
            &[
                "--storage-driver",
                driver,
                "pull",
                &format!("{}/fixture/bbapp:1", padding.addr),
            ],
        );
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(TOP_BLOB) && err.contains("more than the 163 bytes"),
            "{err}"
        );
        assert!(
            !stdout_ok(&common::run(&root, &["ls", "-a", "-q", "--no-trunc"])).contains(BBAPP_ID),
            "no image without its layers"
        );
    }
}

/// vfs, and overlay2 when run as root.
fn drivers() -> Vec<&'static str> {
    if rustix::process::geteuid().is_root() {
        vec!["vfs", "overlay2"]
    } else {
        eprintln!("overlay2 not tested: needs root");
        vec!["vfs"]
    }
}

/// Starts `imgstore pull` of `fixture/bbapp:1` into `root` through a proxy in front of
/// `upstream` whose first GET of the top layer's blob stalls after 50 bytes; returns the
/// proxy and the reference pulled, once it has killed the pull: when `reached` (polled
/// every 20 ms, for at most a minute) says the pull got where it should.
fn pull_until_stalled(
    upstream: &str,
    root: &Path,
    driver: &str,
    reached: impl Fn() -> bool,
) -> (Proxy, String) {
    let proxy = Proxy::start(upstream, |method, path, n| {
        if method == "GET" && is_blob(path, TOP_BLOB) && n == 1 {
            Fault::StallAfter(50)
        } else {
            Fault::None
        }
    });
    let r = format!("{}/fixture/bbapp:1", proxy.addr);
    let mut child = Command::new(env!("CARGO_BIN_EXE_imgstore"))
        .arg("--data-root")
        .arg(root)
        .args(["--storage-driver", driver, "pull", &r])
        .env("DOCKER_CONFIG", "/nonexistent-docker-config")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reached() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{driver}: the pull did not reach the stall");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill");
    let _ = child.wait();
    (proxy, r)
}

#[test]
fn a_killed_pull_continues_where_it_stopped() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let reg = fixture_registry(&tmp.path().join("reg"), None);
    // The top layer's blob stalls after 50 bytes the first time: the three layers below
    // commit, the top one waits in its partial file, and the pull is killed.
    for driver in drivers() {
        let root = tmp.path().join(format!("root-{driver}"));
        let image_dir = root.join("image").join(driver);
        let partial = image_dir
            .join(".imgstore-pull")
            .join(TOP_BLOB.replace(':', "-"));
        let committed = image_dir.join("distribution/diffid-by-digest/sha256");
        let (proxy, r) = pull_until_stalled(reg.addr(), &root, driver, || {
            // Committed entries only: an atomic write's `.tmp-*` file shows up first.
            let layers_done = std::fs::read_dir(&committed)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                        .count()
                })
                .unwrap_or(0);
            let partial_len = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
            layers_done == 3 && partial_len == 50
        });
        let before = proxy.log().len();
        let out = imgstore(&root, None, &["--storage-driver", driver, "pull", &r]);
        let text = stdout_ok(&out);
        assert!(text.contains("Status: Downloaded newer image"), "{text}");
        let second: Vec<String> = proxy.log()[before..].to_vec();
        let blob_gets: Vec<&String> = second
            .iter()
            .filter(|l| {
                l.starts_with("GET") && l.contains("/blobs/sha256:") && !l.contains("a5e9e0a7")
            })
            .collect();
        assert_eq!(
            blob_gets,
            [&format!("GET /v2/fixture/bbapp/blobs/{TOP_BLOB} bytes=50-")],
            "only the rest of the interrupted blob is fetched: {second:#?}"
        );
        assert!(!partial.exists(), "the partial file went with its commit");
        assert_eq!(common::run(&root, &["fsck"]).status.code(), Some(0));
        let ids = stdout_ok(&common::run(&root, &["ls", "-q", "--no-trunc"]));
        assert_eq!(ids.trim(), BBAPP_ID);
    }
}

/// A pull killed mid-blob (the top layer's blob stalls after 50 bytes): `fsck` reports the
/// partial download and exits 0, `fsck --repair` removes it (one line) and a second repair
/// does nothing, and the pull run again succeeds, leaving `fsck --content` clean.
#[test]
fn a_killed_pull_is_repaired_then_pulled_again() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let reg = fixture_registry(&tmp.path().join("reg"), None);
    for driver in drivers() {
        let root = tmp.path().join(format!("repaired-{driver}"));
        let pdir = root.join("image").join(driver).join(".imgstore-pull");
        let partial = pdir.join(TOP_BLOB.replace(':', "-"));
        let (_proxy, r) = pull_until_stalled(reg.addr(), &root, driver, || {
            std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) >= 50
        });
        let out = common::run(&root, &["--storage-driver", driver, "fsck"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            text.lines()
                .any(|l| l.starts_with("pull-partial ") && l.contains("50 bytes")),
            "{driver}: {text}"
        );
        let out = common::run(&root, &["--storage-driver", driver, "fsck", "--repair"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{driver}: {text}");
        assert!(
            text.contains(&format!("partial download of blob {TOP_BLOB}")),
            "{driver}: {text}"
        );
        assert!(!pdir.exists(), "{driver}: partials removed");
        let again = common::run(&root, &["--storage-driver", driver, "fsck", "--repair"]);
        assert!(again.status.success());
        assert!(
            !String::from_utf8_lossy(&again.stdout).contains("removed "),
            "a second repair does nothing"
        );
        let text = stdout_ok(&imgstore(
            &root,
            None,
            &["--storage-driver", driver, "pull", &r],
        ));
        assert!(text.contains("Status: Downloaded newer image"), "{text}");
        let out = common::run(&root, &["--storage-driver", driver, "fsck", "--content"]);
        assert!(
            out.status.success(),
            "{driver}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(!pdir.exists(), "{driver}: no partial left");
    }
}
