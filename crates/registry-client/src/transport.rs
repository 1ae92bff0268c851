//! The HTTP agent of an endpoint: TLS roots (the system's bundle plus `certs.d`), client
//! certificates, and the proxy Go's `http.ProxyFromEnvironment` would choose.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::endpoint::{Cidr, Endpoint, split_host};
use crate::error::ConfigError;

/// The largest certificate or key file read.
const MAX_PEM: u64 = 4 << 20;

/// Where Go looks for the system's CA bundle on Linux (`crypto/x509/root_linux.go`).
const SYSTEM_BUNDLES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

fn read_capped(path: &Path) -> Result<Vec<u8>, ConfigError> {
    use std::io::Read;
    let err = |reason: String| ConfigError::Certificate {
        path: path.to_owned(),
        reason,
    };
    let f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut data = Vec::new();
    f.take(MAX_PEM + 1)
        .read_to_end(&mut data)
        .map_err(|e| err(e.to_string()))?;
    if data.len() as u64 > MAX_PEM {
        return Err(err(format!("larger than {MAX_PEM} bytes")));
    }
    Ok(data)
}

fn pem_certs(path: &Path, out: &mut Vec<Certificate<'static>>) -> Result<(), ConfigError> {
    let data = read_capped(path)?;
    for item in ureq::tls::parse_pem(&data) {
        match item {
            Ok(PemItem::Certificate(c)) => out.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(ConfigError::Certificate {
                    path: path.to_owned(),
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The system's CA certificates: `$SSL_CERT_FILE`, else the first bundle found, plus the
/// files of `$SSL_CERT_DIR` (as Go reads them).
fn system_roots() -> Result<Vec<Certificate<'static>>, ConfigError> {
    let mut certs = Vec::new();
    match std::env::var_os("SSL_CERT_FILE") {
        Some(f) => pem_certs(Path::new(&f), &mut certs)?,
        None => {
            if let Some(b) = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.is_file()) {
                pem_certs(b, &mut certs)?;
            }
        }
    }
    if let Some(dirs) = std::env::var_os("SSL_CERT_DIR") {
        for dir in std::env::split_paths(&dirs) {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                if e.path().is_file() {
                    // Unparseable files in a hashed directory are skipped, as Go does.
                    let _ = pem_certs(&e.path(), &mut certs);
                }
            }
        }
    }
    Ok(certs)
}

/// What `certs.d/HOST[:PORT]/` adds: CA certificates and client certificate pairs
/// (dockerd's `ReadCertsDirectory`: a `.cert` needs its `.key` and the other way round).
fn certs_dir(
    dir: &Path,
    roots: &mut Vec<Certificate<'static>>,
) -> Result<Option<ClientCert>, ConfigError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ConfigError::Certificate {
                path: dir.to_owned(),
                reason: e.to_string(),
            });
        }
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect();
    names.sort();
    let mut client = None;
    for n in &names {
        let path = dir.join(n);
        if n.ends_with(".crt") {
            pem_certs(&path, roots)?;
        } else if let Some(stem) = n.strip_suffix(".cert") {
            let key = format!("{stem}.key");
            if !names.contains(&key) {
                return Err(ConfigError::Certificate {
                    path,
                    reason: format!(
                        "missing key {key} for client certificate {n}. Note that CA certificates should use the extension .crt"
                    ),
                });
            }
            let mut chain = Vec::new();
            pem_certs(&path, &mut chain)?;
            let key_path = dir.join(&key);
            let key_pem = read_capped(&key_path)?;
            let key = PrivateKey::from_pem(&key_pem).map_err(|e| ConfigError::Certificate {
                path: key_path.clone(),
                reason: e.to_string(),
            })?;
            if client.is_none() {
                client = Some(ClientCert::new_with_certs(&chain, key));
            }
        } else if let Some(stem) = n.strip_suffix(".key")
            && !names.contains(&format!("{stem}.cert"))
        {
            return Err(ConfigError::Certificate {
                path,
                reason: format!("missing client certificate {stem}.cert for key {n}"),
            });
        }
    }
    Ok(client)
}

/// The TLS settings of an endpoint.
pub(crate) fn tls_config(ep: &Endpoint, certs: Option<&Path>) -> Result<TlsConfig, ConfigError> {
    if !ep.verify_tls {
        return Ok(TlsConfig::builder().disable_verification(true).build());
    }
    let mut roots = system_roots()?;
    let client = match certs {
        Some(dir) => certs_dir(&dir.join(&ep.host), &mut roots)?,
        None => None,
    };
    let roots = if roots.is_empty() {
        RootCerts::WebPki
    } else {
        RootCerts::new_with_certs(&roots)
    };
    Ok(TlsConfig::builder()
        .root_certs(roots)
        .client_cert(client)
        .build())
}

fn env(names: &[&str]) -> Option<(String, String)> {
    names.iter().find_map(|n| {
        std::env::var(n)
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| ((*n).to_owned(), v))
    })
}

/// Whether `NO_PROXY` (Go's rules) exempts `host` (with `port`).
fn no_proxy_matches(no_proxy: &str, host: &str, port: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let ip = host.parse::<IpAddr>().ok();
    for entry in no_proxy.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry == "*" {
            return true;
        }
        let entry = entry.to_ascii_lowercase();
        if let Some(c) = Cidr::parse(&entry) {
            if ip.is_some_and(|ip| c.contains(ip)) {
                return true;
            }
            continue;
        }
        if let Ok(e) = entry.parse::<IpAddr>() {
            if ip == Some(e) {
                return true;
            }
            continue;
        }
        let (ehost, eport) = match entry.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_owned(), Some(p.to_owned())),
            _ => (entry.clone(), None),
        };
        if eport.as_deref().is_some_and(|p| p != port) {
            continue;
        }
        let ehost = ehost.trim_start_matches('*');
        if let Some(suffix) = ehost.strip_prefix('.') {
            if host.ends_with(&format!(".{suffix}")) {
                return true;
            }
        } else if host == ehost || host.ends_with(&format!(".{ehost}")) {
            return true;
        }
    }
    false
}

/// The proxy Go's `http.ProxyFromEnvironment` uses for an endpoint: `HTTPS_PROXY` for
/// HTTPS, `HTTP_PROXY` for HTTP, none for `localhost`, loopback addresses and what
/// `NO_PROXY` lists.
pub(crate) fn proxy_for(ep: &Endpoint) -> Result<Option<ureq::Proxy>, ConfigError> {
    let host = split_host(&ep.host);
    if host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        return Ok(None);
    }
    let vars: &[&str] = if ep.scheme == "https" {
        &["HTTPS_PROXY", "https_proxy"]
    } else {
        &["HTTP_PROXY", "http_proxy"]
    };
    let Some((var, value)) = env(vars) else {
        return Ok(None);
    };
    let port = match ep.host.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => p.to_owned(),
        _ => if ep.scheme == "https" { "443" } else { "80" }.to_owned(),
    };
    if let Some((_, np)) = env(&["NO_PROXY", "no_proxy"])
        && no_proxy_matches(&np, host, &port)
    {
        return Ok(None);
    }
    let url = if value.contains("://") {
        value.clone()
    } else {
        format!("http://{value}")
    };
    ureq::Proxy::new(&url)
        .map(Some)
        .map_err(|e| ConfigError::Proxy {
            var,
            value,
            reason: e.to_string(),
        })
}

/// Timeouts of every agent.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// No byte for this long on an open connection fails the read (and a download resumes).
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The agent of an endpoint.
pub(crate) fn agent(
    ep: &Endpoint,
    certs: Option<&Path>,
    user_agent: &str,
) -> Result<ureq::Agent, ConfigError> {
    let tls = tls_config(ep, certs)?;
    let proxy = proxy_for(ep)?;
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(10)
        .max_idle_connections(64)
        .max_idle_connections_per_host(32)
        .tls_config(tls)
        .proxy(proxy)
        .user_agent(user_agent)
        .accept_encoding("identity")
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        .timeout_per_write(Some(READ_TIMEOUT))
        .build();
    Ok(ureq::Agent::new_with_config(config))
}

/// `certs.d` for an endpoint, when the configuration names one.
pub(crate) fn certs_path(dir: Option<&PathBuf>) -> Option<&Path> {
    dir.map(PathBuf::as_path)
}

#[cfg(test)]
mod tests {
    use super::no_proxy_matches;

    #[test]
    fn no_proxy_follows_go() {
        assert!(no_proxy_matches(
            "example.com",
            "registry.example.com",
            "443"
        ));
        assert!(no_proxy_matches(
            ".example.com",
            "registry.example.com",
            "443"
        ));
        assert!(!no_proxy_matches(".example.com", "example.org", "443"));
        assert!(no_proxy_matches("10.0.0.0/8", "10.1.2.3", "5000"));
        assert!(no_proxy_matches("reg:5000", "reg", "5000"));
        assert!(!no_proxy_matches("reg:5000", "reg", "443"));
        assert!(no_proxy_matches("*", "anything", "1"));
    }
}
