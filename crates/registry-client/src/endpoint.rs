//! Where a repository's registry is and how to talk to it, with dockerd 20.10's rules
//! (`registry/config.go`, `registry/service_v2.go`):
//!
//! - Docker Hub (`docker.io`, `index.docker.io`) is `https://registry-1.docker.io`, after its
//!   `registry-mirrors` in order.
//! - Any other registry is `https://HOST[:PORT]`; an insecure one (listed in
//!   `insecure-registries` by name, or whose address falls in one of its CIDRs, `127.0.0.0/8`
//!   always included) is tried with HTTPS without certificate verification first, then with
//!   plain HTTP.
//! - Certificates for a secure registry come from the system's roots plus
//!   `/etc/docker/certs.d/HOST[:PORT]/` (`*.crt` CAs, `*.cert`/`*.key` client pairs).

use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;

use crate::error::ConfigError;

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's index host name (also accepted in references).
pub const INDEX_HOSTNAME: &str = "index.docker.io";
/// Docker Hub's registry.
pub const DOCKER_HUB_REGISTRY: &str = "https://registry-1.docker.io";
/// The key of Docker Hub's credentials in docker's `config.json`.
pub const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";
/// dockerd's default directory of per-registry certificates.
pub const DEFAULT_CERTS_DIR: &str = "/etc/docker/certs.d";

/// An IP network (`127.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR/PREFIX`.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = s.split_once('/')?;
        let addr: IpAddr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// Whether `ip` is in the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bytes: &[u8], prefix: u8) -> Vec<u8> {
            bytes
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let bits = (prefix as usize).saturating_sub(i * 8).min(8);
                    let mask = if bits == 0 { 0 } else { 0xffu8 << (8 - bits) };
                    b & mask
                })
                .collect()
        }
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                masked(&a.octets(), self.prefix) == masked(&b.octets(), self.prefix)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                masked(&a.octets(), self.prefix) == masked(&b.octets(), self.prefix)
            }
            (IpAddr::V6(a), IpAddr::V4(b)) => a.to_ipv4_mapped() == Some(b) && self.prefix == 128,
            (IpAddr::V4(a), IpAddr::V6(b)) => b.to_ipv4_mapped().is_some_and(|b| {
                masked(&a.octets(), self.prefix) == masked(&b.octets(), self.prefix)
            }),
        }
    }
}

/// Registry settings from dockerd's `daemon.json` (`insecure-registries`, `registry-mirrors`)
/// and its certificates directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    insecure_names: Vec<String>,
    insecure_cidrs: Vec<Cidr>,
    mirrors: Vec<String>,
    /// The per-registry certificates directory (`/etc/docker/certs.d`); `None`: none.
    pub certs_dir: Option<PathBuf>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            insecure_names: Vec::new(),
            insecure_cidrs: vec![Cidr {
                addr: IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 0)),
                prefix: 8,
            }],
            mirrors: Vec::new(),
            certs_dir: Some(PathBuf::from(DEFAULT_CERTS_DIR)),
        }
    }
}

fn valid_host_port(s: &str) -> bool {
    if s.is_empty() || s.contains('/') || s.chars().any(char::is_whitespace) {
        return false;
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
            !h.is_empty() && p.parse::<u16>().is_ok()
        }
        _ => true,
    }
}

impl RegistryConfig {
    /// dockerd's settings: `insecure` entries are CIDRs or `host[:port]` names (an
    /// `http://`/`https://` prefix is dropped, as dockerd does), `127.0.0.0/8` is always
    /// insecure; `mirrors` are `http(s)://host[:port]` URLs for Docker Hub.
    pub fn new(insecure: &[String], mirrors: &[String]) -> Result<RegistryConfig, ConfigError> {
        let mut config = RegistryConfig::default();
        for r in insecure {
            let lower = r.to_ascii_lowercase();
            let r = if lower.starts_with("http://") {
                &r[7..]
            } else if lower.starts_with("https://") {
                &r[8..]
            } else {
                r.as_str()
            };
            if r.contains("://") {
                return Err(ConfigError::InsecureRegistry(r.to_owned()));
            }
            if let Some(c) = Cidr::parse(r) {
                if !config.insecure_cidrs.contains(&c) {
                    config.insecure_cidrs.push(c);
                }
            } else if valid_host_port(r) {
                config.insecure_names.push(r.to_owned());
            } else {
                return Err(ConfigError::InsecureRegistry(r.to_owned()));
            }
        }
        for m in mirrors {
            config.mirrors.push(validate_mirror(m)?);
        }
        Ok(config)
    }

    /// The mirrors of Docker Hub, as `scheme://host[:port]` without a trailing slash.
    pub fn mirrors(&self) -> &[String] {
        &self.mirrors
    }

    /// Whether a registry (`host[:port]`) is secure: not listed by name and no address it
    /// resolves to in an insecure CIDR (dockerd's `isSecureIndex`).
    pub fn is_secure(&self, index: &str) -> bool {
        if index == DOCKER_HUB || index == INDEX_HOSTNAME {
            return true;
        }
        if self.insecure_names.iter().any(|n| n == index) {
            return false;
        }
        let host = split_host(index);
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => (host, 0u16)
                .to_socket_addrs()
                .map(|it| it.map(|a| a.ip()).collect())
                .unwrap_or_default(),
        };
        !addrs
            .iter()
            .any(|a| self.insecure_cidrs.iter().any(|c| c.contains(*a)))
    }

    /// The endpoints to try for a registry, in order (dockerd's `lookupV2Endpoints`):
    /// Docker Hub's mirrors then `registry-1.docker.io`; otherwise HTTPS, then plain HTTP
    /// for an insecure registry.
    pub fn endpoints(&self, domain: &str) -> Vec<Endpoint> {
        if domain == DOCKER_HUB || domain == INDEX_HOSTNAME {
            let mut v: Vec<Endpoint> = self
                .mirrors
                .iter()
                .map(|m| {
                    let (scheme, host) = m.split_once("://").unwrap_or(("https", m));
                    Endpoint {
                        scheme: scheme.to_owned(),
                        host: host.to_owned(),
                        mirror: true,
                        verify_tls: self.is_secure(host),
                        index: DOCKER_HUB.to_owned(),
                    }
                })
                .collect();
            v.push(Endpoint {
                scheme: "https".to_owned(),
                host: "registry-1.docker.io".to_owned(),
                mirror: false,
                verify_tls: true,
                index: DOCKER_HUB.to_owned(),
            });
            return v;
        }
        let secure = self.is_secure(domain);
        let mut v = vec![Endpoint {
            scheme: "https".to_owned(),
            host: domain.to_owned(),
            mirror: false,
            verify_tls: secure,
            index: domain.to_owned(),
        }];
        if !secure {
            v.push(Endpoint {
                scheme: "http".to_owned(),
                host: domain.to_owned(),
                mirror: false,
                verify_tls: false,
                index: domain.to_owned(),
            });
        }
        v
    }
}

/// The host of `host[:port]` (brackets of an IPv6 address removed).
pub(crate) fn split_host(index: &str) -> &str {
    if let Some(rest) = index.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match index.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.parse::<u16>().is_ok() => h,
        _ => index,
    }
}

/// dockerd's `ValidateMirror`: `http(s)://host[:port]`, no path, query, fragment or user.
fn validate_mirror(value: &str) -> Result<String, ConfigError> {
    let err = |reason: &str| ConfigError::Mirror {
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let (scheme, rest) = value
        .split_once("://")
        .ok_or_else(|| err("not a URL: use http(s)://host[:port]"))?;
    if scheme != "http" && scheme != "https" {
        return Err(err("unsupported scheme"));
    }
    let host = rest.strip_suffix('/').unwrap_or(rest);
    if host.contains('/') || host.contains('?') || host.contains('#') {
        return Err(err("path, query, or fragment at end of the URI"));
    }
    if host.contains('@') {
        return Err(err("username/password not allowed in the URI"));
    }
    if host.is_empty() || !valid_host_port(host) {
        return Err(err("no valid host"));
    }
    Ok(format!("{scheme}://{host}"))
}

/// One way to reach a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https` or `http`.
    pub scheme: String,
    /// `host[:port]`.
    pub host: String,
    /// A Docker Hub mirror (pulls fall back to the next endpoint on any error).
    pub mirror: bool,
    /// Whether the server's certificate is verified (off for insecure registries).
    pub verify_tls: bool,
    /// The registry the endpoint serves (`docker.io` for Docker Hub and its mirrors): the
    /// key of its credentials.
    pub index: String,
}

impl Endpoint {
    /// `scheme://host[:port]`.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }
}
