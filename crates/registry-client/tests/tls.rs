//! HTTPS with dockerd's `certs.d`: a docker-registry serving TLS on 127.0.0.1 with a
//! certificate from a test CA and asking for client certificates; the CA and the client
//! pair come from `certs.d/HOST:PORT/`.

use std::path::Path;
use std::process::Command;

use digest_set::Digest;
use registry_client::{Access, Client, ClientConfig, Endpoint, Error, RegistryConfig};
use test_dockerd::Registry;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client pair, in `dir`.
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=imgstore test CA",
        ],
    );
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).expect("ext");
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
}

fn client(certs: &Path) -> Client {
    let mut registry = RegistryConfig::default();
    registry.certs_dir = Some(certs.to_owned());
    Client::new(ClientConfig {
        registry,
        ..ClientConfig::default()
    })
}

#[test]
fn certs_d_gives_the_ca_and_the_client_certificate() {
    if let Some(why) = test_dockerd::registry_skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipping: no openssl to make certificates");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = tmp.path().join("pki");
    std::fs::create_dir(&pki).expect("mkdir");
    make_certs(&pki);
    let reg = Registry::start_with(
        &tmp.path().join("storage"),
        None,
        Some((
            &pki.join("server.crt"),
            &pki.join("server.key"),
            Some(&pki.join("ca.crt")),
        )),
    )
    .expect("start TLS registry");
    // A secure endpoint (127.0.0.0/8 is insecure by dockerd's rules, so it is made by hand).
    let ep = Endpoint {
        scheme: "https".to_owned(),
        host: reg.addr().to_owned(),
        mirror: false,
        verify_tls: true,
        index: reg.addr().to_owned(),
    };
    let certs = tmp.path().join("certs.d");
    let host_dir = certs.join(reg.addr());
    std::fs::create_dir_all(&host_dir).expect("mkdir");

    // Without the CA: the server's certificate does not verify, and that is not retried.
    let e = client(&certs)
        .open_endpoint(&ep, "t/app", Access::Push, None)
        .expect_err("unknown CA");
    assert!(
        matches!(
            e,
            Error::Transport {
                retryable: false,
                ..
            }
        ),
        "{e}"
    );

    // The CA but no client certificate: the registry refuses the handshake.
    std::fs::copy(pki.join("ca.crt"), host_dir.join("ca.crt")).expect("copy");
    let e = client(&certs)
        .open_endpoint(&ep, "t/app", Access::Push, None)
        .expect_err("no client certificate");
    assert!(matches!(e, Error::Transport { .. }), "{e}");

    // A client certificate without its key is a configuration error, as in dockerd.
    std::fs::copy(pki.join("client.crt"), host_dir.join("client.cert")).expect("copy");
    let e = client(&certs)
        .open_endpoint(&ep, "t/app", Access::Push, None)
        .expect_err("missing key");
    assert!(e.to_string().contains("missing key client.key"), "{e}");

    // Both: blobs go up and come back.
    std::fs::copy(pki.join("client.key"), host_dir.join("client.key")).expect("copy");
    let repo = client(&certs)
        .open_endpoint(&ep, "t/app", Access::Push, None)
        .expect("verified TLS with a client certificate");
    let d = repo.put_blob(b"over TLS").expect("put blob");
    assert_eq!(d, Digest::sha256(b"over TLS"));
    assert_eq!(repo.get_blob(&d, 100).expect("get blob"), b"over TLS");
}
