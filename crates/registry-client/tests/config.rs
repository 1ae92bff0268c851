//! Endpoint rules, credentials from docker's config.json and helpers, dockerd's HMAC.

use std::io::Write as _;

use registry_client::auth::{self, Challenge, Credentials};
use registry_client::credentials::DockerConfig;
use registry_client::{ConfigError, RegistryConfig};

#[test]
fn endpoints_follow_dockerd() {
    let c = RegistryConfig::new(
        &[
            "myreg:5000".to_owned(),
            "10.0.0.0/8".to_owned(),
            "http://other".to_owned(),
        ],
        &["http://mirror.local:5000/".to_owned()],
    )
    .expect("config");
    let urls = |d: &str| -> Vec<String> { c.endpoints(d).iter().map(|e| e.base_url()).collect() };
    assert_eq!(
        urls("myreg:5000"),
        ["https://myreg:5000", "http://myreg:5000"]
    );
    assert_eq!(
        urls("10.1.2.3:443"),
        ["https://10.1.2.3:443", "http://10.1.2.3:443"]
    );
    assert_eq!(
        urls("localhost:5000"),
        ["https://localhost:5000", "http://localhost:5000"]
    );
    assert_eq!(
        urls("127.0.0.1:5000"),
        ["https://127.0.0.1:5000", "http://127.0.0.1:5000"]
    );
    assert_eq!(urls("other"), ["https://other", "http://other"]);
    assert_eq!(urls("192.0.2.1:5000"), ["https://192.0.2.1:5000"]);
    assert!(!c.endpoints("myreg:5000")[0].verify_tls);
    assert!(c.endpoints("192.0.2.1")[0].verify_tls);
    assert_eq!(
        urls("docker.io"),
        ["http://mirror.local:5000", "https://registry-1.docker.io"]
    );
    assert!(c.endpoints("docker.io")[0].mirror);
    for bad in ["ftp://x", "a b"] {
        assert!(
            matches!(
                RegistryConfig::new(&[bad.to_owned()], &[]),
                Err(ConfigError::InsecureRegistry(_))
            ),
            "{bad}"
        );
    }
    for bad in ["mirror.local", "https://m/path", "ftp://m", "https://u:p@m"] {
        assert!(
            RegistryConfig::new(&[], &[bad.to_owned()]).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn challenges_parse() {
    let c = Challenge::parse_all(
        r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
    );
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].scheme, "bearer");
    assert_eq!(c[0].params["realm"], "https://auth.docker.io/token");
    assert_eq!(c[0].params["service"], "registry.docker.io");
    assert_eq!(c[0].params["scope"], "repository:library/busybox:pull");
    let b = Challenge::parse_all(r#"Basic realm="Registry Realm""#);
    assert_eq!(b[0].scheme, "basic");
    assert_eq!(b[0].params["realm"], "Registry Realm");
    // Garbage never loops.
    let _ = Challenge::parse_all(r#"= "" ,,, =x "#);
}

#[test]
fn hmac_is_rfc_4231_and_dockerds_key() {
    let mac = auth::hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // The key is the digest string of the JSON of the non-empty fields, in Go's order.
    let key = auth::hmac_key(Some(&Credentials::basic("u", "p<")));
    let want = digest_set::Digest::sha256(br#"{"username":"u","password":"p\u003c"}"#).to_string();
    assert_eq!(key.as_deref(), Some(want.as_bytes()));
    assert_eq!(auth::hmac_key(None), None);
    assert_eq!(auth::metadata_hmac(None, "sha256:x", "r"), "");
}

#[test]
fn credentials_from_config_json_and_helpers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("config.json");
    std::fs::write(
        &cfg,
        r#"{"auths":{
            "https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="},
            "http://reg.example:5000/v1/":{"auth":"dTpwOmM="},
            "tok.example":{"identitytoken":"refresh"}
        },
        "credHelpers":{"helped.example":"imgstoretest"}}"#,
    )
    .expect("write");
    let c = DockerConfig::load(&cfg).expect("load");
    let hub = c.credentials("docker.io").expect("hub").expect("some");
    assert_eq!(
        (hub.username.as_str(), hub.password.as_str()),
        ("hub", "secret")
    );
    let r = c
        .credentials("reg.example:5000")
        .expect("reg")
        .expect("some");
    assert_eq!((r.username.as_str(), r.password.as_str()), ("u", "p:c"));
    assert_eq!(
        c.credentials("tok.example")
            .expect("tok")
            .expect("some")
            .identity_token,
        "refresh"
    );
    assert!(c.credentials("none.example").expect("none").is_none());

    // A credential helper on PATH.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    let helper = bin.join("docker-credential-imgstoretest");
    let mut f = std::fs::File::create(&helper).expect("helper");
    writeln!(
        f,
        "#!/bin/sh\nread server\n[ \"$1\" = get ] || exit 3\nif [ \"$server\" = helped.example ]; then echo '{{\"ServerURL\":\"helped.example\",\"Username\":\"hu\",\"Secret\":\"hs\"}}'; else echo 'credentials not found in native keychain'; exit 1; fi"
    )
    .expect("write helper");
    drop(f);
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin.clone()];
    paths.extend(std::env::split_paths(&path));
    let c = c.with_helper_path(std::env::join_paths(paths).expect("join"));
    let h = c
        .credentials("helped.example")
        .expect("helper")
        .expect("some");
    assert_eq!((h.username.as_str(), h.password.as_str()), ("hu", "hs"));

    // Invalid files are one clear error.
    std::fs::write(&cfg, "{not json").expect("write");
    let e = DockerConfig::load(&cfg).expect_err("invalid");
    assert!(e.to_string().contains("config.json"), "{e}");
}
