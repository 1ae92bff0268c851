//! `imgstore pull` and `push` against the real thing: Debian's docker-registry serving the
//! storage dockerd 20.10 pushed `fixture/bbapp:1` to, a manifest list added to it, and a
//! registry asking for basic authentication. Into fresh vfs and overlay2 roots, dockerd's
//! own pull and ours leave the same distribution metadata and `repositories.json`, and
//! dockerd started on our root lists and runs what we pulled. Faults (a dropped connection,
//! a wrong digest, 500s) give a resumed download or one clear error, never a corrupt layer.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use digest_set::Digest;
use registry_client::{Access, Client, ClientConfig};
use test_dockerd::{Dockerd, Registry};

use crate::common::{self, stdout_ok};

/// Why these tests cannot run here.
pub fn skip_reason() -> Option<String> {
    test_dockerd::registry_skip_reason()
}

/// A registry serving a fresh copy of the fixture storage (`fixture/bbapp:1`).
pub fn fixture_registry(dir: &Path, htpasswd: Option<&Path>) -> Registry {
    let tgz = common::fixtures_dir().join("wave2/bbapp.registry-storage.tar.gz");
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&tgz).expect("open fixture"),
    ));
    ar.unpack(dir).expect("unpack registry storage");
    Registry::start(&dir.join("registry"), htpasswd).expect("start registry")
}

/// Runs imgstore on `root` with docker's config in `docker_config`.
pub fn imgstore(root: &Path, docker_config: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_imgstore"));
    c.arg("--data-root").arg(root).args(args);
    match docker_config {
        Some(d) => c.env("DOCKER_CONFIG", d),
        None => c.env("DOCKER_CONFIG", "/nonexistent-docker-config"),
    };
    c.output().expect("run imgstore")
}

/// The bbapp image ID (its config digest).
pub const BBAPP_ID: &str =
    "sha256:a5e9e0a7537481435a384dc949f12fbbd0700efdcf64f5c88124497dd025748e";

/// Adds `fixture/bbapp:multi`, a manifest list with `linux/amd64` (bbapp) and `linux/arm64`
/// (bbapp's layers under a config saying arm64). Returns (list digest, arm64 image ID).
pub fn add_manifest_list(addr: &str) -> (Digest, Digest) {
    let client = Client::new(ClientConfig::default());
    let repo = client
        .open(addr, "fixture/bbapp", Access::Push, None, false)
        .expect("open registry");
    let amd: Digest = BBAPP_ID.parse().expect("digest");
    let config = repo.get_blob(&amd, 1 << 20).expect("config");
    let text = String::from_utf8(config).expect("utf-8");
    assert!(text.contains(r#""architecture":"amd64""#));
    let arm_config = text.replace(r#""architecture":"amd64""#, r#""architecture":"arm64""#);
    let arm_id = repo.put_blob(arm_config.as_bytes()).expect("put config");
    let manifest =
        std::fs::read_to_string(common::fixtures_dir().join("wave2/bbapp.manifest.json"))
            .expect("manifest");
    let amd_manifest = Digest::sha256(manifest.as_bytes());
    let arm_manifest = manifest
        .replace(&amd.to_string(), &arm_id.to_string())
        .replace(
            "\"size\": 2757,",
            &format!("\"size\": {},", arm_config.len()),
        );
    let arm_digest = repo
        .put_manifest(
            "arm",
            registry_client::media::DOCKER_MANIFEST,
            arm_manifest.as_bytes(),
        )
        .expect("put arm manifest");
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":{},"digest":"{arm_digest}","platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":{},"digest":"{amd_manifest}","platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        arm_manifest.len(),
        manifest.len()
    );
    let list_digest = repo
        .put_manifest(
            "multi",
            registry_client::media::DOCKER_MANIFEST_LIST,
            list.as_bytes(),
        )
        .expect("put list");
    (list_digest, arm_id)
}

/// Adds `oci/bbapp:1` (an OCI manifest with gzip OCI layers: skopeo's copy of
/// `bbapp.oci-archive.tar`) and `oci/bbapp:index`, an OCI index holding it for linux/amd64.
/// `None` without skopeo.
pub fn add_oci_image(addr: &str) -> Option<()> {
    let archive = common::fixtures_dir().join("wave2/bbapp.oci-archive.tar");
    let out = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--format", "oci"])
        .arg(format!("oci-archive:{}", archive.display()))
        .arg(format!("docker://{addr}/oci/bbapp:1"))
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = Client::new(ClientConfig::default());
    let repo = client
        .open(addr, "oci/bbapp", Access::Push, None, false)
        .expect("open registry");
    let m = repo.get_manifest("1").expect("OCI manifest");
    assert_eq!(m.media_type, registry_client::media::OCI_MANIFEST);
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        m.digest,
        m.bytes.len()
    );
    repo.put_manifest("index", registry_client::media::OCI_INDEX, index.as_bytes())
        .expect("put OCI index");
    Some(())
}

/// Every file and directory under `image/<driver>/distribution`: relative path -> (mode,
/// content as text: the files are JSON or digests).
pub fn dist_files(root: &Path, driver: &str) -> BTreeMap<String, (u32, String)> {
    let base = root.join("image").join(driver).join("distribution");
    let mut out = BTreeMap::new();
    let mut stack = vec![base.clone()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.expect("entry").path();
            let m = std::fs::symlink_metadata(&p).expect("meta");
            let rel = p.strip_prefix(&base).expect("rel").display().to_string();
            if m.is_dir() {
                out.insert(format!("{rel}/"), (m.mode() & 0o7777, String::new()));
                stack.push(p);
            } else {
                out.insert(
                    rel,
                    (
                        m.mode() & 0o7777,
                        String::from_utf8_lossy(&std::fs::read(&p).expect("read")).into_owned(),
                    ),
                );
            }
        }
    }
    out
}

/// `ID repo:tag digest` lines of `docker image ls -a --digests`, sorted.
fn docker_images(d: &Dockerd) -> Vec<String> {
    let out = d
        .docker_ok(&[
            "image",
            "ls",
            "-a",
            "--digests",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Repository}}:{{.Tag}} {{.Digest}}",
        ])
        .expect("docker image ls");
    common::sorted_lines(&out)
}

/// `RepoTags` and `RepoDigests` of an image, as dockerd shows them.
fn docker_refs(d: &Dockerd, id: &str) -> String {
    d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoTags}} {{json .RepoDigests}}",
        id,
    ])
    .expect("docker inspect")
}

fn expected_run_output() -> String {
    let e = std::fs::read_to_string(common::fixtures_dir().join("wave2/bbapp.run-output.txt"))
        .expect("run output");
    e.split_inclusive('\n').skip(1).collect()
}

/// Writes a docker `config.json` with basic credentials for `addr`.
fn docker_config(dir: &Path, addr: &str, user: &str, password: &str) -> PathBuf {
    use base64::Engine as _;
    std::fs::create_dir_all(dir).expect("mkdir");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{"{addr}":{{"auth":"{auth}"}}}}}}"#),
    )
    .expect("write config.json");
    dir.to_owned()
}

#[test]
fn pull_matches_dockerd_on_vfs_and_overlay2() {
    if let Some(why) = test_dockerd::skip_reason().or_else(skip_reason) {
        eprintln!("skipping: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let reg = fixture_registry(&tmp.path().join("open"), None);
    let (list_digest, arm_id) = add_manifest_list(reg.addr());
    let pw = Registry::htpasswd(tmp.path(), "tester", "s3cret").expect("htpasswd");
    let auth_reg = fixture_registry(&tmp.path().join("auth"), Some(&pw));
    let creds = docker_config(
        &tmp.path().join("creds"),
        auth_reg.addr(),
        "tester",
        "s3cret",
    );
    // The registry asking for credentials first: the layers come through it.
    let mut refs = vec![
        format!("{}/fixture/bbapp:1", auth_reg.addr()),
        format!("{}/fixture/bbapp:multi", reg.addr()),
        format!("{}/fixture/bbapp:1", reg.addr()),
    ];
    // An OCI manifest (skopeo's copy of the OCI archive) and an OCI index over it.
    match add_oci_image(reg.addr()) {
        Some(()) => refs.extend([
            format!("{}/oci/bbapp:1", reg.addr()),
            format!("{}/oci/bbapp:index", reg.addr()),
        ]),
        None => eprintln!("OCI pulls not tested: skopeo is not installed"),
    }
    let pushed = format!("{}/other/app:2", auth_reg.addr());
    for driver in ["vfs", "overlay2"] {
        // dockerd's own pulls.
        let theirs = tmp.path().join(format!("theirs-{driver}"));
        let (want_images, want_refs) = {
            let d = Dockerd::start_with_driver(&theirs, driver).expect("start dockerd");
            let cfg = tmp.path().join("dockercli");
            d.docker_ok(&[
                "--config",
                cfg.to_str().expect("path"),
                "login",
                "-u",
                "tester",
                "-p",
                "s3cret",
                auth_reg.addr(),
            ])
            .expect("docker login");
            for r in &refs {
                d.docker_ok(&["--config", cfg.to_str().expect("path"), "pull", r])
                    .expect("docker pull");
            }
            // A push with credentials (mounted from the pulled repository): metadata with
            // dockerd's HMAC keyed on them.
            d.docker_ok(&["tag", &refs[0], &pushed])
                .expect("docker tag");
            d.docker_ok(&["--config", cfg.to_str().expect("path"), "push", &pushed])
                .expect("docker push");
            (docker_images(&d), docker_refs(&d, BBAPP_ID))
        };
        // Ours.
        let ours = tmp.path().join(format!("ours-{driver}"));
        for r in &refs {
            let out = imgstore(
                &ours,
                Some(&creds),
                &["--storage-driver", driver, "pull", r],
            );
            let text = stdout_ok(&out);
            assert!(text.ends_with(&format!("{r}\n")), "{driver} {r}: {text}");
            assert!(
                text.contains("Status: Downloaded newer image for")
                    || text.contains("Status: Image is up to date for"),
                "{text}"
            );
        }
        let text = stdout_ok(&imgstore(
            &ours,
            None,
            &["--storage-driver", driver, "pull", "-q", &refs[1]],
        ));
        assert_eq!(
            text,
            format!("{}\n", refs[1]),
            "-q prints the reference only"
        );
        stdout_ok(&imgstore(
            &ours,
            None,
            &["--storage-driver", driver, "tag", &refs[0], &pushed],
        ));
        let text = stdout_ok(&imgstore(
            &ours,
            Some(&creds),
            &["--storage-driver", driver, "push", &pushed],
        ));
        assert!(text.contains("Mounted from fixture/bbapp"), "{text}");
        assert_eq!(
            dist_files(&ours, driver),
            dist_files(&theirs, driver),
            "{driver}: the distribution metadata is dockerd's"
        );
        let repos = |root: &Path| {
            std::fs::read(root.join("image").join(driver).join("repositories.json"))
                .expect("repositories.json")
        };
        assert_eq!(
            String::from_utf8(repos(&ours)).expect("utf-8"),
            String::from_utf8(repos(&theirs)).expect("utf-8"),
            "{driver}: repositories.json"
        );
        assert!(
            String::from_utf8(repos(&ours))
                .expect("utf-8")
                .contains(&format!("@{list_digest}")),
            "the list's digest is recorded"
        );
        assert_eq!(
            common::run(&ours, &["fsck"]).status.code(),
            Some(0),
            "{driver}: fsck"
        );
        assert!(
            !ours
                .join("image")
                .join(driver)
                .join(".imgstore-pull")
                .exists(),
            "no partial files left"
        );
        {
            let d = Dockerd::start_with_driver(&ours, driver).expect("start dockerd on ours");
            assert_eq!(
                docker_images(&d),
                want_images,
                "{driver}: dockerd lists the same"
            );
            assert_eq!(
                docker_refs(&d, BBAPP_ID),
                want_refs,
                "{driver}: RepoDigests"
            );
            let out = d
                .docker(&["run", "--rm", "--network", "none", &refs[0]])
                .expect("docker run");
            assert!(
                out.status.success(),
                "{driver}: docker run: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout), expected_run_output());
        }
        // The other platform of the list: its own config, the same layers.
        let text = stdout_ok(&imgstore(
            &ours,
            None,
            &[
                "--storage-driver",
                driver,
                "pull",
                "--platform",
                "linux/arm64",
                &format!("{}/fixture/bbapp:multi", reg.addr()),
            ],
        ));
        assert!(text.contains("Status: Downloaded newer image"), "{text}");
        let ids = stdout_ok(&common::run(
            &ours,
            &["--storage-driver", driver, "ls", "-q", "--no-trunc"],
        ));
        assert!(ids.contains(&arm_id.to_string()), "{ids}");
    }
}

/// `RepoDigests` of an image as `imgstore inspect` shows them.
fn our_repo_digests(root: &Path, id: &str) -> Vec<String> {
    let out = stdout_ok(&common::run(
        root,
        &["inspect", "--format", "{{json .RepoDigests}}", id],
    ));
    serde_json::from_str(out.trim()).expect("RepoDigests JSON")
}

#[test]
fn push_is_what_dockerd_pulls_and_skopeo_reads() {
    if let Some(why) = test_dockerd::skip_reason().or_else(skip_reason) {
        eprintln!("skipping: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = fixture_registry(&tmp.path().join("src"), None);
    let manifest_digest = Digest::sha256(
        &std::fs::read(common::fixtures_dir().join("wave2/bbapp.manifest.json")).expect("read"),
    );
    let source = format!("{}/fixture/bbapp:1", src.addr());
    let mounted = format!("{}/other/app:2", src.addr());
    // dockerd's push of the pulled image to another repository of the same registry: every
    // layer mounted, its metadata the reference for ours.
    let theirs = tmp.path().join("theirs");
    {
        let d = Dockerd::start(&theirs).expect("start dockerd");
        d.docker_ok(&["pull", &source]).expect("docker pull");
        d.docker_ok(&["tag", &source, &mounted])
            .expect("docker tag");
        let out = d.docker_ok(&["push", &mounted]).expect("docker push");
        assert!(out.contains("Mounted from fixture/bbapp"), "{out}");
    }
    for driver in ["vfs", "overlay2"] {
        let dst_reg = Registry::start(&tmp.path().join(format!("dst-{driver}")), None)
            .expect("start empty registry");
        let ours = tmp.path().join(format!("ours-{driver}"));
        let run = |args: &[&str]| {
            let mut a = vec!["--storage-driver", driver];
            a.extend_from_slice(args);
            imgstore(&ours, None, &a)
        };
        stdout_ok(&run(&["pull", "-q", &source]));
        // To another repository of the same registry: mounted, the manifest dockerd pushed.
        stdout_ok(&run(&["tag", &source, &mounted]));
        let text = stdout_ok(&run(&["push", &mounted]));
        assert_eq!(
            text.matches(": Mounted from fixture/bbapp").count(),
            4,
            "{text}"
        );
        assert!(
            text.ends_with(&format!("2: digest: {manifest_digest} size: 1149\n")),
            "{text}"
        );
        if driver == "vfs" {
            assert_eq!(
                dist_files(&ours, driver),
                dist_files(&theirs, driver),
                "the metadata of a mounting push is dockerd's"
            );
        }
        // To an empty registry: uploaded, then nothing to upload.
        let target = format!("{}/new/app:3", dst_reg.addr());
        stdout_ok(&run(&["tag", &source, &target]));
        let text = stdout_ok(&run(&["push", &target]));
        assert_eq!(text.matches(": Pushed").count(), 4, "{text}");
        let digest = text
            .lines()
            .last()
            .and_then(|l| l.split(' ').nth(2))
            .expect("digest")
            .to_owned();
        let again = stdout_ok(&run(&["push", &target]));
        assert_eq!(
            again.matches(": Layer already exists").count(),
            4,
            "pushing again uploads nothing: {again}"
        );
        assert!(
            again.ends_with(&format!("3: digest: {digest} size: 1149\n")),
            "{again}"
        );
        let ours_digests = our_repo_digests(&ours, BBAPP_ID);
        assert!(
            ours_digests.contains(&format!("{}/new/app@{digest}", dst_reg.addr())),
            "{ours_digests:?}"
        );
        // skopeo reads it.
        let sk = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{target}"))
            .output();
        match sk {
            Ok(o) if o.status.success() => {
                let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("skopeo JSON");
                assert_eq!(v["Digest"], serde_json::Value::String(digest.clone()));
            }
            Ok(o) => panic!("skopeo inspect: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => eprintln!("skopeo not run: {e}"),
        }
        // A fresh dockerd pulls it to the same image and runs it.
        let fresh = tmp.path().join(format!("fresh-{driver}"));
        let d = Dockerd::start_with_driver(&fresh, driver).expect("start dockerd");
        d.docker_ok(&["pull", &target]).expect("docker pull ours");
        let id = d
            .docker_ok(&["image", "inspect", "--format", "{{.Id}}", &target])
            .expect("inspect");
        assert_eq!(id.trim(), BBAPP_ID);
        let out = d
            .docker(&["run", "--rm", "--network", "none", &target])
            .expect("docker run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected_run_output());
        assert!(
            docker_refs(&d, BBAPP_ID).contains(&format!("@{digest}")),
            "dockerd's RepoDigests hold our pushed digest"
        );
    }
}

#[test]
fn missing_or_wrong_credentials_are_one_line_and_write_nothing() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let pw = Registry::htpasswd(tmp.path(), "tester", "s3cret").expect("htpasswd");
    let reg = fixture_registry(&tmp.path().join("auth"), Some(&pw));
    let root = tmp.path().join("root");
    stdout_ok(&common::run(
        &root,
        &[
            "--storage-driver",
            "vfs",
            "load",
            "-i",
            common::fixtures_dir()
                .join("wave2/bbapp.docker-save.tar")
                .to_str()
                .expect("path"),
        ],
    ));
    let snapshot = || {
        let mut v = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read_dir") {
                let p = e.expect("entry").path();
                let m = std::fs::symlink_metadata(&p).expect("meta");
                if m.is_dir() {
                    stack.push(p.clone());
                }
                v.push(format!("{} {}", p.display(), m.len()));
            }
        }
        v.sort();
        v
    };
    let image = format!("{}/fixture/bbapp:1", reg.addr());
    stdout_ok(&common::run(
        &root,
        &["--storage-driver", "vfs", "tag", "bbapp:1", &image],
    ));
    let before = snapshot();
    let wrong = docker_config(&tmp.path().join("wrong"), reg.addr(), "tester", "nope");
    for (what, cfg) in [
        ("anonymous", None),
        ("wrong password", Some(wrong.as_path())),
    ] {
        let out = imgstore(&root, cfg, &["--storage-driver", "vfs", "pull", &image]);
        assert_eq!(out.status.code(), Some(1), "{what}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(
            err.contains("unauthorized: ")
                && err.trim_end().ends_with(&format!(" for {}", reg.addr())),
            "{what}: {err}"
        );
        let out = imgstore(&root, cfg, &["--storage-driver", "vfs", "push", &image]);
        assert_eq!(out.status.code(), Some(1), "{what}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(err.contains("unauthorized: "), "{what}: {err}");
    }
    assert_eq!(snapshot(), before, "nothing written");
}

#[test]
fn an_insecure_registry_serving_https_is_pulled_from_without_verification() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=self-signed",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .current_dir(tmp.path())
        .output();
    if !made.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("skipping: openssl cannot make a certificate here");
        return;
    }
    let tgz = common::fixtures_dir().join("wave2/bbapp.registry-storage.tar.gz");
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&tgz).expect("open fixture"),
    ));
    ar.unpack(tmp.path()).expect("unpack");
    let reg = Registry::start_with(
        &tmp.path().join("registry"),
        None,
        Some((
            &tmp.path().join("cert.pem"),
            &tmp.path().join("key.pem"),
            None,
        )),
    )
    .expect("start TLS registry");
    // 127.0.0.0/8 is insecure for dockerd: HTTPS without verification (a self-signed
    // certificate), as dockerd does, before plain HTTP.
    let root = tmp.path().join("root");
    let r = format!("{}/fixture/bbapp:1", reg.addr());
    let text = stdout_ok(&imgstore(
        &root,
        None,
        &["--storage-driver", "vfs", "pull", &r],
    ));
    assert!(text.ends_with(&format!("{r}\n")), "{text}");
    // `localhost` resolves into 127.0.0.0/8: insecure too, by dockerd's CIDR rule.
    let out = imgstore(
        &root,
        None,
        &[
            "--storage-driver",
            "vfs",
            "pull",
            &format!(
                "{}/fixture/bbapp:1",
                reg.addr().replace("127.0.0.1", "localhost")
            ),
        ],
    );
    assert!(stdout_ok(&out).contains("Status: Downloaded newer image for localhost:"));
}

#[test]
fn docker_hub_names_go_through_the_mirrors_of_daemon_json() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let mirror = fixture_registry(&tmp.path().join("mirror"), None);
    // A mirror that refuses connections first (daemon.json), then the fixture registry
    // (a flag): `fixture/bbapp:1` is a Docker Hub name, served by the second mirror.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_addr = dead.local_addr().expect("addr").to_string();
    drop(dead);
    let daemon_json = tmp.path().join("daemon.json");
    std::fs::write(
        &daemon_json,
        format!(r#"{{"registry-mirrors": ["http://{dead_addr}"]}}"#),
    )
    .expect("daemon.json");
    let root = tmp.path().join("root");
    // Proxies never apply to loopback registries (Go's rule): a dead proxy changes nothing.
    let out = Command::new(env!("CARGO_BIN_EXE_imgstore"))
        .arg("--data-root")
        .arg(&root)
        .env("DOCKER_CONFIG", "/nonexistent-docker-config")
        .env("HTTP_PROXY", format!("http://{dead_addr}"))
        .env("HTTPS_PROXY", format!("http://{dead_addr}"))
        .args([
            "--config-file",
            daemon_json.to_str().expect("path"),
            "--storage-driver",
            "vfs",
            "pull",
            "--registry-mirror",
            &format!("http://{}", mirror.addr()),
            "fixture/bbapp:1",
        ])
        .output()
        .expect("run imgstore");
    let text = stdout_ok(&out);
    assert_eq!(
        text,
        "1: Pulling from fixture/bbapp\nDigest: sha256:e1609af193682f43fba7e4d12a06ecc7211e1b745337c605f2441bc1c883f9fb\nStatus: Downloaded newer image for fixture/bbapp:1\ndocker.io/fixture/bbapp:1\n"
    );
    let repos = std::fs::read_to_string(root.join("image/vfs/repositories.json")).expect("repos");
    assert!(
        repos.contains(r#""fixture/bbapp":{"fixture/bbapp:1":"#),
        "{repos}"
    );
    let meta = dist_files(&root, "vfs");
    assert!(
        meta.values()
            .any(|(_, c)| c.contains(r#""SourceRepository":"docker.io/fixture/bbapp""#)),
        "the repository is Docker Hub's, as dockerd names it: {meta:?}"
    );
}
