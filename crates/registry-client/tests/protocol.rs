//! The protocol against the scripted server: authentication, retries, resumed blobs and
//! hostile answers.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use digest_set::Digest;
use registry_client::{Access, Client, ClientConfig, Credentials, Error, RetryPolicy};

use crate::server::{self, Reply, Request};

fn client() -> Client {
    Client::new(ClientConfig {
        retry: RetryPolicy {
            attempts: 3,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            max_elapsed: Duration::from_secs(10),
        },
        ..ClientConfig::default()
    })
}

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}"#;

fn manifest_reply() -> Reply {
    Reply::new(200)
        .header(
            "Content-Type",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .header(
            "Docker-Content-Digest",
            &Digest::sha256(MANIFEST.as_bytes()).to_string(),
        )
        .body(MANIFEST)
}

#[test]
fn bearer_tokens_are_fetched_with_credentials_and_cached() {
    let addr: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let tokens = Arc::new(AtomicUsize::new(0));
    let (a, t) = (addr.clone(), tokens.clone());
    let srv = server::start(move |r: &Request| {
        let realm = format!("http://{}/token", a.get().expect("addr"));
        match (r.method.as_str(), r.path.as_str()) {
            (_, "/v2/") => Reply::new(401).header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="{realm}",service="test-registry""#),
            ),
            (_, p) if p.starts_with("/token?") => {
                t.fetch_add(1, Ordering::SeqCst);
                // u:p
                if r.header("authorization") != Some("Basic dTpw")
                    || !p.contains("scope=repository%3Aapp%3Apull")
                    || !p.contains("service=test-registry")
                    || !p.contains("account=u")
                {
                    return Reply::new(401).body(
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or password"}]}"#,
                    );
                }
                Reply::new(200).body(r#"{"token":"T1","expires_in":300}"#)
            }
            _ if r.header("authorization") != Some("Bearer T1") => Reply::new(401)
                .header("WWW-Authenticate", &format!(r#"Bearer realm="{realm}""#))
                .body(
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
                ),
            (_, "/v2/app/manifests/1") => manifest_reply(),
            ("HEAD", p) if p.starts_with("/v2/app/blobs/") => {
                Reply::new(200).header("Content-Length", "2")
            }
            _ => Reply::new(404),
        }
    });
    addr.set(srv.addr.clone()).expect("set");
    let c = client();
    let repo = c
        .open(
            &srv.addr,
            "app",
            Access::Pull,
            Some(Credentials::basic("u", "p")),
            true,
        )
        .expect("open");
    assert_eq!(repo.endpoint().scheme, "http", "fell back from HTTPS");
    let m = repo.get_manifest("1").expect("manifest");
    assert_eq!(m.digest, Digest::sha256(MANIFEST.as_bytes()));
    assert_eq!(
        m.media_type,
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let d = Digest::sha256(b"{}");
    assert_eq!(repo.blob_exists(&d).expect("head"), Some(2));
    assert_eq!(tokens.load(Ordering::SeqCst), 1, "one token for the scope");

    // Wrong password: one line naming the registry.
    let repo = c
        .open(
            &srv.addr,
            "app",
            Access::Pull,
            Some(Credentials::basic("u", "wrong")),
            true,
        )
        .expect("open");
    let e = repo.get_manifest("1").expect_err("refused");
    assert_eq!(
        e.to_string(),
        format!(
            "unauthorized: incorrect username or password for {}",
            srv.addr
        )
    );
    // Anonymous: the registry's 401.
    let repo = c
        .open(&srv.addr, "app", Access::Pull, None, true)
        .expect("open");
    let e = repo.get_manifest("1").expect_err("refused");
    assert!(e.is_unauthorized(), "{e}");
}

#[test]
fn basic_auth_is_sent_when_asked_for() {
    let srv = server::start(|r: &Request| {
        if r.header("authorization") != Some("Basic dTpw") {
            return Reply::new(401).header("WWW-Authenticate", r#"Basic realm="Registry""#);
        }
        match r.path.as_str() {
            "/v2/" => Reply::new(200),
            "/v2/app/manifests/1" => manifest_reply(),
            _ => Reply::new(404)
                .body(r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#),
        }
    });
    let c = client();
    let repo = c
        .open(
            &srv.addr,
            "app",
            Access::Pull,
            Some(Credentials::basic("u", "p")),
            true,
        )
        .expect("open");
    repo.get_manifest("1").expect("manifest");
    let e = repo.get_manifest("2").expect_err("missing");
    assert!(e.is_not_found(), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "manifest 2 not found in {}/app: manifest unknown: manifest unknown",
            srv.addr
        )
    );
    let repo = c
        .open(&srv.addr, "app", Access::Pull, None, true)
        .expect("open");
    let e = repo.get_manifest("1").expect_err("no credentials");
    assert_eq!(
        e.to_string(),
        format!("unauthorized: no basic auth credentials for {}", srv.addr)
    );
}

#[test]
fn server_errors_are_retried_a_bounded_number_of_times() {
    let calls = Arc::new(AtomicUsize::new(0));
    let n = calls.clone();
    let srv = server::start(move |r: &Request| match r.path.as_str() {
        "/v2/" => Reply::new(200),
        "/v2/flaky/manifests/1" => {
            if n.fetch_add(1, Ordering::SeqCst) < 2 {
                Reply::new(503).body("busy")
            } else {
                manifest_reply()
            }
        }
        _ => Reply::new(500).body(r#"{"errors":[{"code":"UNKNOWN","message":"boom"}]}"#),
    });
    let c = client();
    let repo = c
        .open(&srv.addr, "flaky", Access::Pull, None, true)
        .expect("open");
    repo.get_manifest("1").expect("third time lucky");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let repo = c
        .open(&srv.addr, "broken", Access::Pull, None, true)
        .expect("open");
    let t = std::time::Instant::now();
    let e = repo.get_manifest("1").expect_err("always 500");
    assert!(
        matches!(e, Error::RetriesExhausted { attempts: 3, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("HTTP 500: unknown: boom"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn blobs_resume_with_range_after_a_dropped_connection() {
    let blob: Arc<Vec<u8>> = Arc::new((0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect());
    let digest = Digest::sha256(&blob);
    let b = blob.clone();
    let srv = server::start(move |r: &Request| {
        if r.path == "/v2/" {
            return Reply::new(200);
        }
        match r.header("range") {
            None => Reply {
                cut_after: Some(100_000),
                ..Reply::new(200).body(b.to_vec())
            },
            Some(range) => {
                let start: usize = range
                    .trim_start_matches("bytes=")
                    .trim_end_matches('-')
                    .parse()
                    .expect("range");
                // Cut once more in the middle of the second answer.
                let cut = (start < 300_000).then_some(300_000);
                Reply {
                    cut_after: cut,
                    ..Reply::new(206)
                        .header(
                            "Content-Range",
                            &format!("bytes {start}-{}/{}", b.len() - 1, b.len()),
                        )
                        .body(b[start..].to_vec())
                }
            }
        }
    });
    let c = client();
    let repo = c
        .open(&srv.addr, "app", Access::Pull, None, true)
        .expect("open");
    let mut r = repo.open_blob(&digest, 0).expect("open blob");
    let mut got = Vec::new();
    r.read_to_end(&mut got).expect("read");
    assert_eq!(got.len(), blob.len());
    assert!(got == *blob, "same bytes");
    assert_eq!(r.resumes(), 2);
    let log = srv.log.lock().expect("log");
    let ranges: Vec<String> = log
        .iter()
        .filter_map(|r| r.header("range").map(str::to_owned))
        .collect();
    assert_eq!(ranges, ["bytes=100000-", "bytes=400000-"]);
}

#[test]
fn hostile_answers_are_refused() {
    let srv = server::start(|r: &Request| match r.path.as_str() {
        "/v2/" => Reply::new(200),
        "/v2/app/manifests/huge" => Reply::new(200).body(vec![b' '; 5 << 20]),
        "/v2/app/manifests/lying" => Reply::new(200)
            .header(
                "Docker-Content-Digest",
                &Digest::sha256(b"other").to_string(),
            )
            .body(MANIFEST),
        p if p.starts_with("/v2/app/manifests/sha256:") => manifest_reply(),
        p if p.starts_with("/v2/app/blobs/") => Reply::new(200).body("not what you asked for"),
        _ => Reply::new(404),
    });
    let c = client();
    let repo = c
        .open(&srv.addr, "app", Access::Pull, None, true)
        .expect("open");
    let e = repo.get_manifest("huge").expect_err("too large");
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");
    let e = repo.get_manifest("lying").expect_err("digest");
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    let other = Digest::sha256(b"x");
    let e = repo.get_manifest(&other.to_string()).expect_err("digest");
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    let e = repo.get_blob(&other, 1000).expect_err("blob digest");
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    let e = repo.get_blob(&other, 5).expect_err("blob size");
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");
}

#[test]
fn uploads_stream_and_manifests_put() {
    let srv = server::start(|r: &Request| match (r.method.as_str(), r.path.as_str()) {
        (_, "/v2/") => Reply::new(200),
        ("POST", "/v2/app/blobs/uploads/") => {
            Reply::new(202).header("Location", "/v2/app/blobs/uploads/u1?_state=s")
        }
        ("POST", p) if p.starts_with("/v2/app/blobs/uploads/?mount=") => {
            if p.contains("from=other") {
                Reply::new(201)
            } else {
                Reply::new(202).header("Location", "/v2/app/blobs/uploads/u2")
            }
        }
        ("PATCH", "/v2/app/blobs/uploads/u1?_state=s") => {
            Reply::new(202).header("Location", "/v2/app/blobs/uploads/u1?_state=t")
        }
        ("PUT", p)
            if p.starts_with("/v2/app/blobs/uploads/u1?_state=")
                && p.contains("&digest=sha256%3A") =>
        {
            Reply::new(201)
        }
        ("PUT", "/v2/app/manifests/1") => Reply::new(201).header(
            "Docker-Content-Digest",
            &Digest::sha256(&r.body).to_string(),
        ),
        _ => Reply::new(404),
    });
    let c = client();
    let repo = c
        .open(&srv.addr, "app", Access::Push, None, false)
        .expect("open");
    let data = vec![7u8; 200_000];
    let s = repo.start_upload().expect("start");
    let s = repo.upload_stream(s, &mut &data[..]).expect("patch");
    repo.finish_upload(&s, &Digest::sha256(&data)).expect("put");
    let d = Digest::sha256(b"blob");
    assert_eq!(
        repo.mount_blob(&d, "other").expect("mount"),
        registry_client::Mount::Mounted
    );
    assert!(matches!(
        repo.mount_blob(&d, "elsewhere").expect("mount"),
        registry_client::Mount::Upload(_)
    ));
    let md = repo
        .put_manifest(
            "1",
            "application/vnd.docker.distribution.manifest.v2+json",
            MANIFEST.as_bytes(),
        )
        .expect("manifest");
    assert_eq!(md, Digest::sha256(MANIFEST.as_bytes()));
    let log = srv.log.lock().expect("log");
    let patch = log.iter().find(|r| r.method == "PATCH").expect("patch");
    assert_eq!(patch.body, data, "the stream arrived whole");
}
