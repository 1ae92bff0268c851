//! [`Client`] and [`Repository`]: the requests of the distribution API on one repository,
//! authenticated, retried and checked.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use digest_set::Digest;
use ureq::http;

use crate::auth::{Challenge, Credentials, TokenResponse, query_escape};
use crate::endpoint::{Endpoint, RegistryConfig};
use crate::error::{ConfigError, Error};
use crate::media;
use crate::retry::RetryPolicy;
use crate::transport;

/// The largest manifest accepted (a manifest or index).
pub const MAX_MANIFEST: u64 = 4 << 20;
/// The largest error or token body read.
const MAX_SMALL_BODY: u64 = 1 << 20;

/// How a client is set up.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Insecure registries, mirrors, certificates.
    pub registry: RegistryConfig,
    /// Retries of failed requests.
    pub retry: RetryPolicy,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            registry: RegistryConfig::default(),
            retry: RetryPolicy::default(),
            user_agent: format!("imgstore/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// What a repository is opened for: the token scope asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `pull`.
    Pull,
    /// `pull,push`.
    Push,
}

/// A registry client: endpoints and their HTTP agents (connections are reused).
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    agents: Mutex<HashMap<String, ureq::Agent>>,
}

/// The registry's answer to the first request (`GET /v2/`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scheme {
    None,
    Basic,
    Bearer { realm: String, service: String },
}

#[derive(Debug)]
struct AuthState {
    scheme: Scheme,
    /// Bearer tokens by scope, with the time they stop being used.
    tokens: HashMap<String, (String, Instant)>,
}

#[derive(Debug)]
struct RepoInner {
    agent: ureq::Agent,
    endpoint: Endpoint,
    name: String,
    access: Access,
    creds: Option<Credentials>,
    auth: Mutex<AuthState>,
    retry: RetryPolicy,
}

/// One repository of one registry endpoint. Cheap to clone; usable from several threads.
#[derive(Debug, Clone)]
pub struct Repository {
    inner: Arc<RepoInner>,
}

/// A manifest (or index) as the registry served it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The exact bytes (their digest is the manifest's).
    pub bytes: Vec<u8>,
    /// The media type (`Content-Type`, or the `mediaType` field when the header is generic).
    pub media_type: String,
    /// The sha256 of the bytes, checked against the digest asked for or announced.
    pub digest: Digest,
}

/// An upload in progress (its `Location`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSession {
    location: String,
}

/// What a cross-repository mount did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// The blob is now in the repository.
    Mounted,
    /// The registry could not mount it and started an upload instead.
    Upload(UploadSession),
}

/// A request body.
enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    Reader(&'a mut dyn Read),
}

/// The registry's error body (`{"errors":[{"code":..,"message":..}]}`), as docker prints
/// it: `code words: message`.
fn error_message(status: u16, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Es {
        #[serde(default)]
        errors: Vec<E>,
    }
    if let Ok(es) = serde_json::from_slice::<Es>(body)
        && !es.errors.is_empty()
    {
        return es
            .errors
            .iter()
            .map(|e| {
                let code = e.code.to_ascii_lowercase().replace('_', " ");
                if e.message.is_empty() {
                    code
                } else if code.is_empty() {
                    e.message.clone()
                } else {
                    format!("{code}: {}", e.message)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
    }
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() || line.len() > 200 {
        http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("unexpected status")
            .to_owned()
    } else {
        line.to_owned()
    }
}

/// The first message of an error body (`authentication required`), for 401s.
fn first_message(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Es {
        #[serde(default)]
        errors: Vec<E>,
        #[serde(default)]
        details: String,
    }
    let es: Es = serde_json::from_slice(body).ok()?;
    es.errors
        .into_iter()
        .map(|e| e.message)
        .find(|m| !m.is_empty())
        .or((!es.details.is_empty()).then_some(es.details))
}

fn read_limited(body: &mut ureq::Body, limit: u64, what: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    body.as_reader()
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::Transport {
            method: "GET",
            url: what.to_owned(),
            message: e.to_string(),
            retryable: true,
        })?;
    if out.len() as u64 > limit {
        return Err(Error::TooLarge {
            what: what.to_owned(),
            limit,
        });
    }
    Ok(out)
}

fn transport_error(method: &'static str, url: &str, e: ureq::Error) -> Error {
    // A TLS handshake with a server that does not speak TLS (or whose certificate does not
    // verify) fails the same way every time.
    let tls = matches!(&e, ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData);
    let retryable = !tls
        && !matches!(
            e,
            ureq::Error::Tls(_)
                | ureq::Error::BadUri(_)
                | ureq::Error::InvalidProxyUrl
                | ureq::Error::TooManyRedirects
                | ureq::Error::RedirectFailed
        );
    let message = match &e {
        ureq::Error::Io(io) if tls => format!("TLS error: {io}"),
        ureq::Error::Io(io) => format!("connection error: {io}"),
        other => other.to_string(),
    };
    Error::Transport {
        method,
        url: url.to_owned(),
        message,
        retryable,
    }
}

fn header(resp: &http::Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl Client {
    /// A client with `config`.
    pub fn new(config: ClientConfig) -> Client {
        Client {
            config,
            agents: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    fn agent(&self, ep: &Endpoint) -> Result<ureq::Agent, ConfigError> {
        let key = format!("{}://{}#{}", ep.scheme, ep.host, ep.verify_tls);
        let mut agents = self
            .agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(a) = agents.get(&key) {
            return Ok(a.clone());
        }
        let a = transport::agent(
            ep,
            transport::certs_path(self.config.registry.certs_dir.as_ref()),
            &self.config.user_agent,
        )?;
        agents.insert(key, a.clone());
        Ok(a)
    }

    /// The endpoints of a registry (`docker.io`, `host[:port]`), in the order to try them.
    pub fn endpoints(&self, domain: &str) -> Vec<Endpoint> {
        self.config.registry.endpoints(domain)
    }

    /// Opens the repository `name` (its path in the registry, `library/busybox`) on one
    /// endpoint: asks `/v2/` how to authenticate. Fails when the endpoint does not answer
    /// as a v2 registry.
    pub fn open_endpoint(
        &self,
        ep: &Endpoint,
        name: &str,
        access: Access,
        creds: Option<Credentials>,
    ) -> Result<Repository, Error> {
        let agent = self.agent(ep).map_err(|e| Error::Transport {
            method: "GET",
            url: ep.base_url(),
            message: e.to_string(),
            retryable: false,
        })?;
        let url = format!("{}/v2/", ep.base_url());
        // A mirror that does not answer hands over to the next endpoint at once.
        let policy = if ep.mirror {
            RetryPolicy::none()
        } else {
            self.config.retry.clone()
        };
        let scheme = policy.run(&url, || {
            let req = http::Request::get(&url)
                .body(())
                .map_err(|e| invalid(&url, e.to_string()))?;
            let mut resp = agent
                .run(req)
                .map_err(|e| transport_error("GET", &url, e))?;
            let status = resp.status().as_u16();
            match status {
                200..=299 => Ok(Scheme::None),
                401 => {
                    let challenges: Vec<Challenge> = resp
                        .headers()
                        .get_all("www-authenticate")
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .flat_map(Challenge::parse_all)
                        .collect();
                    if let Some(b) = challenges.iter().find(|c| c.scheme == "bearer") {
                        let realm = b.params.get("realm").cloned().unwrap_or_default();
                        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
                            return Err(invalid(
                                &url,
                                format!("bearer realm {realm:?} is not a URL"),
                            ));
                        }
                        Ok(Scheme::Bearer {
                            realm,
                            service: b.params.get("service").cloned().unwrap_or_default(),
                        })
                    } else if challenges.iter().any(|c| c.scheme == "basic") {
                        Ok(Scheme::Basic)
                    } else {
                        Ok(Scheme::None)
                    }
                }
                _ => {
                    let body =
                        read_limited(resp.body_mut(), MAX_SMALL_BODY, &url).unwrap_or_default();
                    Err(Error::Status {
                        method: "GET",
                        url: url.clone(),
                        status,
                        message: error_message(status, &body),
                    })
                }
            }
        })?;
        tracing::debug!(endpoint = %ep.base_url(), ?scheme, "registry endpoint answered");
        Ok(Repository {
            inner: Arc::new(RepoInner {
                agent,
                endpoint: ep.clone(),
                name: name.to_owned(),
                access,
                creds,
                auth: Mutex::new(AuthState {
                    scheme,
                    tokens: HashMap::new(),
                }),
                retry: self.config.retry.clone(),
            }),
        })
    }

    /// Opens the repository on the first endpoint of `domain` that answers (HTTPS before
    /// plain HTTP for an insecure registry, mirrors only when `mirrors`). A certificate
    /// error on a secure registry is not a reason to fall back.
    pub fn open(
        &self,
        domain: &str,
        name: &str,
        access: Access,
        creds: Option<Credentials>,
        mirrors: bool,
    ) -> Result<Repository, Error> {
        let mut last = None;
        for ep in self.endpoints(domain) {
            if ep.mirror && !mirrors {
                continue;
            }
            match self.open_endpoint(&ep, name, access, creds.clone()) {
                Ok(r) => return Ok(r),
                Err(e) => {
                    tracing::debug!(endpoint = %ep.base_url(), error = %e, "endpoint failed; trying the next");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Invalid {
            what: domain.to_owned(),
            reason: "no endpoint".to_owned(),
        }))
    }
}

fn invalid(what: &str, reason: String) -> Error {
    Error::Invalid {
        what: what.to_owned(),
        reason,
    }
}

/// A location header made absolute against the endpoint.
fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else if location.starts_with('/') {
        format!("{base}{location}")
    } else {
        format!("{base}/{location}")
    }
}

fn with_query(url: &str, kv: &str) -> String {
    if url.contains('?') {
        format!("{url}&{kv}")
    } else {
        format!("{url}?{kv}")
    }
}

impl Repository {
    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The repository's path in the registry (`library/busybox`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// `host[:port]/path`, for messages.
    pub fn display_name(&self) -> String {
        format!("{}/{}", self.inner.endpoint.host, self.inner.name)
    }

    fn base(&self) -> String {
        self.inner.endpoint.base_url()
    }

    fn scope(&self) -> String {
        let actions = match self.inner.access {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        };
        format!("repository:{}:{actions}", self.inner.name)
    }

    fn unauthorized(&self, message: String) -> Error {
        Error::Unauthorized {
            host: self.inner.endpoint.host.clone(),
            message,
        }
    }

    /// The `Authorization` header for a request needing `scopes` (`None` without auth).
    fn authorization(&self, extra: &[String], fresh: bool) -> Result<Option<String>, Error> {
        let mut st = self
            .inner
            .auth
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let creds = self.inner.creds.as_ref();
        match st.scheme.clone() {
            Scheme::None => Ok(None),
            Scheme::Basic => match creds {
                Some(c) if !c.username.is_empty() => Ok(Some(c.basic_header())),
                _ => Err(self.unauthorized("no basic auth credentials".to_owned())),
            },
            Scheme::Bearer { realm, service } => {
                if let Some(c) = creds
                    && !c.registry_token.is_empty()
                {
                    return Ok(Some(format!("Bearer {}", c.registry_token)));
                }
                let mut scopes = vec![self.scope()];
                scopes.extend(extra.iter().cloned());
                let key = scopes.join(" ");
                if !fresh
                    && let Some((tok, until)) = st.tokens.get(&key)
                    && Instant::now() < *until
                {
                    return Ok(Some(format!("Bearer {tok}")));
                }
                let (tok, ttl) = self.fetch_token(&realm, &service, &scopes)?;
                st.tokens.insert(key, (tok.clone(), Instant::now() + ttl));
                Ok(Some(format!("Bearer {tok}")))
            }
        }
    }

    /// Asks the token server for a token covering `scopes`.
    fn fetch_token(
        &self,
        realm: &str,
        service: &str,
        scopes: &[String],
    ) -> Result<(String, Duration), Error> {
        let creds = self.inner.creds.as_ref();
        let mut query = Vec::new();
        if !service.is_empty() {
            query.push(format!("service={}", query_escape(service)));
        }
        let agent = &self.inner.agent;
        let retry = &self.inner.retry;
        let resp_body = if let Some(c) = creds.filter(|c| !c.identity_token.is_empty()) {
            // OAuth2 refresh-token grant, as the distribution client does for identity tokens.
            let mut form = vec![
                "grant_type=refresh_token".to_owned(),
                format!("refresh_token={}", query_escape(&c.identity_token)),
                "client_id=docker".to_owned(),
            ];
            form.extend(query.iter().cloned());
            form.push(format!("scope={}", query_escape(&scopes.join(" "))));
            let form = form.join("&");
            retry.run(realm, || {
                let req = http::Request::post(realm)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(form.as_bytes())
                    .map_err(|e| invalid(realm, e.to_string()))?;
                let resp = agent
                    .run(req)
                    .map_err(|e| transport_error("POST", realm, e))?;
                self.token_body(resp, realm)
            })?
        } else {
            for s in scopes {
                query.push(format!("scope={}", query_escape(s)));
            }
            if let Some(c) = creds.filter(|c| !c.username.is_empty()) {
                query.push(format!("account={}", query_escape(&c.username)));
            }
            let url = with_query(realm, &query.join("&"));
            retry.run(realm, || {
                let mut b = http::Request::get(&url);
                if let Some(c) = creds.filter(|c| !c.username.is_empty()) {
                    b = b.header("Authorization", c.basic_header());
                }
                let req = b.body(()).map_err(|e| invalid(realm, e.to_string()))?;
                let resp = agent
                    .run(req)
                    .map_err(|e| transport_error("GET", realm, e))?;
                self.token_body(resp, realm)
            })?
        };
        let t: TokenResponse = serde_json::from_slice(&resp_body)
            .map_err(|e| invalid(realm, format!("token response: {e}")))?;
        let token = if t.token.is_empty() {
            t.access_token
        } else {
            t.token
        };
        if token.is_empty() || token.contains(['\r', '\n']) {
            return Err(invalid(realm, "no usable token in the response".to_owned()));
        }
        // Tokens live at least 60 s (the distribution client's minimum); renew a little early.
        let ttl = Duration::from_secs(t.expires_in.max(60).saturating_sub(10));
        Ok((token, ttl))
    }

    fn token_body(
        &self,
        mut resp: http::Response<ureq::Body>,
        realm: &str,
    ) -> Result<Vec<u8>, Error> {
        let status = resp.status().as_u16();
        let body = read_limited(resp.body_mut(), MAX_SMALL_BODY, realm)?;
        match status {
            200..=299 => Ok(body),
            401 | 403 => Err(self.unauthorized(
                first_message(&body).unwrap_or_else(|| "incorrect username or password".to_owned()),
            )),
            _ => Err(Error::Status {
                method: "GET",
                url: realm.to_owned(),
                status,
                message: error_message(status, &body),
            }),
        }
    }

    /// Sends one request with authentication; a 401 gets one more try with a fresh token.
    fn send(
        &self,
        method: &'static str,
        url: &str,
        headers: &[(&str, &str)],
        mut body: Body<'_>,
        extra_scopes: &[String],
    ) -> Result<http::Response<ureq::Body>, Error> {
        let mut fresh = false;
        loop {
            let auth = self.authorization(extra_scopes, fresh)?;
            let mut b = http::Request::builder().method(method).uri(url);
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            if let Some(a) = &auth {
                b = b.header("Authorization", a.as_str());
            }
            let result = match &mut body {
                Body::Empty => {
                    let req = b.body(()).map_err(|e| invalid(url, e.to_string()))?;
                    self.inner.agent.run(req)
                }
                Body::Bytes(bytes) => {
                    let req = b.body(*bytes).map_err(|e| invalid(url, e.to_string()))?;
                    self.inner.agent.run(req)
                }
                Body::Reader(r) => {
                    let req = b
                        .body(ureq::SendBody::from_reader(*r))
                        .map_err(|e| invalid(url, e.to_string()))?;
                    self.inner.agent.run(req)
                }
            };
            let mut resp = result.map_err(|e| transport_error(method, url, e))?;
            if resp.status().as_u16() == 401 {
                let can_retry = !fresh
                    && auth.is_some()
                    && !matches!(body, Body::Reader(_))
                    && matches!(
                        self.inner
                            .auth
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .scheme,
                        Scheme::Bearer { .. }
                    );
                if can_retry {
                    fresh = true;
                    continue;
                }
                let b = read_limited(resp.body_mut(), MAX_SMALL_BODY, url).unwrap_or_default();
                return Err(self.unauthorized(
                    first_message(&b).unwrap_or_else(|| "authentication required".to_owned()),
                ));
            }
            return Ok(resp);
        }
    }

    /// An error for an unexpected answer.
    fn status_error(
        &self,
        method: &'static str,
        url: &str,
        what: &str,
        mut resp: http::Response<ureq::Body>,
    ) -> Error {
        let status = resp.status().as_u16();
        let body = read_limited(resp.body_mut(), MAX_SMALL_BODY, url).unwrap_or_default();
        let message = error_message(status, &body);
        match status {
            404 => Error::NotFound {
                repository: self.display_name(),
                what: what.to_owned(),
                message,
            },
            403 => Error::Denied {
                repository: self.display_name(),
                message,
            },
            _ => Error::Status {
                method,
                url: url.to_owned(),
                status,
                message,
            },
        }
    }

    /// `GET /v2/<name>/manifests/<reference>` (a tag or a digest), accepting every manifest
    /// and index type. The bytes are checked against the digest asked for, or the one the
    /// registry announces (`Docker-Content-Digest`), and capped at [`MAX_MANIFEST`].
    pub fn get_manifest(&self, reference: &str) -> Result<Manifest, Error> {
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base(),
            self.inner.name,
            reference
        );
        let what = format!("manifest {}:{reference}", self.display_name());
        let accept = media::MANIFEST_ACCEPT.join(", ");
        self.inner.retry.run(&url, || {
            let mut resp = self.send("GET", &url, &[("Accept", &accept)], Body::Empty, &[])?;
            if !resp.status().is_success() {
                return Err(self.status_error("GET", &url, &format!("manifest {reference}"), resp));
            }
            let content_type = header(&resp, "content-type");
            let announced = header(&resp, "docker-content-digest");
            let bytes = read_limited(resp.body_mut(), MAX_MANIFEST, &what)?;
            let digest = Digest::sha256(&bytes);
            let expected = match reference.parse::<Digest>() {
                Ok(d) => Some(d),
                Err(_) => announced
                    .as_deref()
                    .and_then(|a| a.parse::<Digest>().ok())
                    .filter(|d| d.algorithm() == digest_set::Algorithm::Sha256),
            };
            if let Some(e) = expected {
                let actual = match e.algorithm() {
                    digest_set::Algorithm::Sha256 => digest,
                    _ => Digest::sha512(&bytes),
                };
                if actual != e {
                    return Err(Error::DigestMismatch {
                        what: what.clone(),
                        expected: e.to_string(),
                        actual: actual.to_string(),
                    });
                }
            }
            let media_type = media::manifest_media_type(content_type.as_deref(), &bytes);
            Ok(Manifest {
                bytes,
                media_type,
                digest,
            })
        })
    }

    /// `HEAD` of a blob: its size when the repository has it, `None` when it does not.
    pub fn blob_exists(&self, digest: &Digest) -> Result<Option<u64>, Error> {
        let url = format!("{}/v2/{}/blobs/{digest}", self.base(), self.inner.name);
        self.inner.retry.run(&url, || {
            let resp = self.send("HEAD", &url, &[], Body::Empty, &[])?;
            match resp.status().as_u16() {
                200..=299 => Ok(Some(
                    header(&resp, "content-length")
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(0),
                )),
                404 => Ok(None),
                _ => Err(self.status_error("HEAD", &url, &format!("blob {digest}"), resp)),
            }
        })
    }

    /// A small blob (a config), whole, checked against its digest, at most `limit` bytes.
    pub fn get_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, Error> {
        let url = format!("{}/v2/{}/blobs/{digest}", self.base(), self.inner.name);
        let what = format!("blob {digest}");
        self.inner.retry.run(&url, || {
            let mut resp = self.send("GET", &url, &[], Body::Empty, &[])?;
            if !resp.status().is_success() {
                return Err(self.status_error("GET", &url, &what, resp));
            }
            let bytes = read_limited(resp.body_mut(), limit, &what)?;
            let actual = match digest.algorithm() {
                digest_set::Algorithm::Sha256 => Digest::sha256(&bytes),
                _ => Digest::sha512(&bytes),
            };
            if actual != *digest {
                return Err(Error::DigestMismatch {
                    what: what.clone(),
                    expected: digest.to_string(),
                    actual: actual.to_string(),
                });
            }
            Ok(bytes)
        })
    }

    /// Opens a blob from byte `offset` (`Range: bytes=offset-` when not 0): the response
    /// body and the blob's total size when the registry says it. A registry that ignores
    /// the range is read from the start and the first `offset` bytes skipped.
    pub(crate) fn open_blob_at(
        &self,
        digest: &Digest,
        offset: u64,
    ) -> Result<(ureq::BodyReader<'static>, Option<u64>), Error> {
        let url = format!("{}/v2/{}/blobs/{digest}", self.base(), self.inner.name);
        let what = format!("blob {digest}");
        let range = format!("bytes={offset}-");
        self.inner.retry.run(&url, || {
            let headers: Vec<(&str, &str)> = if offset > 0 {
                vec![("Range", range.as_str())]
            } else {
                Vec::new()
            };
            let resp = self.send("GET", &url, &headers, Body::Empty, &[])?;
            let status = resp.status().as_u16();
            match status {
                206 if offset > 0 => {
                    let cr = header(&resp, "content-range").unwrap_or_default();
                    // bytes START-END/TOTAL
                    let spec = cr.trim().strip_prefix("bytes ").unwrap_or("");
                    let (span, total) = spec.split_once('/').unwrap_or((spec, "*"));
                    let start: Option<u64> = span.split('-').next().and_then(|s| s.parse().ok());
                    if start != Some(offset) {
                        return Err(invalid(
                            &what,
                            format!("Content-Range {cr:?} for a request from byte {offset}"),
                        ));
                    }
                    let total = total.parse().ok();
                    Ok((resp.into_body().into_reader(), total))
                }
                200 => {
                    let total = header(&resp, "content-length").and_then(|l| l.parse().ok());
                    let mut r = resp.into_body().into_reader();
                    if offset > 0 {
                        let skipped =
                            std::io::copy(&mut (&mut r).take(offset), &mut std::io::sink())
                                .map_err(|e| transport_error("GET", &url, ureq::Error::Io(e)))?;
                        if skipped != offset {
                            return Err(Error::Transport {
                                method: "GET",
                                url: url.clone(),
                                message: "connection closed before the resume point".to_owned(),
                                retryable: true,
                            });
                        }
                    }
                    Ok((r, total))
                }
                _ => Err(self.status_error("GET", &url, &what, resp)),
            }
        })
    }

    /// Starts an upload (`POST /v2/<name>/blobs/uploads/`).
    pub fn start_upload(&self) -> Result<UploadSession, Error> {
        let url = format!("{}/v2/{}/blobs/uploads/", self.base(), self.inner.name);
        self.inner.retry.run(&url, || {
            let resp = self.send("POST", &url, &[("Content-Length", "0")], Body::Empty, &[])?;
            match resp.status().as_u16() {
                202 => self.session(&url, &resp),
                _ => Err(self.status_error("POST", &url, "upload", resp)),
            }
        })
    }

    fn session(
        &self,
        url: &str,
        resp: &http::Response<ureq::Body>,
    ) -> Result<UploadSession, Error> {
        let loc = header(resp, "location")
            .ok_or_else(|| invalid(url, "no Location in the upload answer".to_owned()))?;
        Ok(UploadSession {
            location: absolute(&self.base(), &loc),
        })
    }

    /// Mounts `digest` from the repository `from` (a path on the same registry):
    /// `POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<from>`.
    pub fn mount_blob(&self, digest: &Digest, from: &str) -> Result<Mount, Error> {
        let url = format!(
            "{}/v2/{}/blobs/uploads/?mount={}&from={}",
            self.base(),
            self.inner.name,
            query_escape(&digest.to_string()),
            query_escape(from)
        );
        let extra = [format!("repository:{from}:pull")];
        self.inner.retry.run(&url, || {
            let resp = self.send(
                "POST",
                &url,
                &[("Content-Length", "0")],
                Body::Empty,
                &extra,
            )?;
            match resp.status().as_u16() {
                201 => Ok(Mount::Mounted),
                202 => Ok(Mount::Upload(self.session(&url, &resp)?)),
                _ => Err(self.status_error(
                    "POST",
                    &url,
                    &format!("mount of {digest} from {from}"),
                    resp,
                )),
            }
        })
    }

    /// Streams `body` into the upload (one chunked `PATCH`); returns the session to finish.
    /// Not retried: the body is consumed (start again with a new session).
    pub fn upload_stream(
        &self,
        session: UploadSession,
        body: &mut dyn Read,
    ) -> Result<UploadSession, Error> {
        let url = session.location;
        let resp = self.send(
            "PATCH",
            &url,
            &[("Content-Type", "application/octet-stream")],
            Body::Reader(body),
            &[],
        )?;
        match resp.status().as_u16() {
            202 | 204 => self.session(&url, &resp),
            _ => Err(self.status_error("PATCH", &url, "upload", resp)),
        }
    }

    /// Completes an upload: `PUT <location>&digest=<digest>`.
    pub fn finish_upload(&self, session: &UploadSession, digest: &Digest) -> Result<(), Error> {
        let url = with_query(
            &session.location,
            &format!("digest={}", query_escape(&digest.to_string())),
        );
        let resp = self.send("PUT", &url, &[("Content-Length", "0")], Body::Empty, &[])?;
        match resp.status().as_u16() {
            201 | 204 => Ok(()),
            _ => Err(self.status_error("PUT", &url, &format!("blob {digest}"), resp)),
        }
    }

    /// Cancels an upload (`DELETE <location>`); failures are only logged.
    pub fn cancel_upload(&self, session: &UploadSession) {
        if let Err(e) = self.send("DELETE", &session.location, &[], Body::Empty, &[]) {
            tracing::debug!(error = %e, "cannot cancel an upload");
        }
    }

    /// Uploads a small blob in one request (`POST`, then `PUT` with the bytes); returns
    /// its digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest, Error> {
        let digest = Digest::sha256(bytes);
        self.inner.retry.run("blob upload", || {
            let s = self.start_upload()?;
            let url = with_query(
                &s.location,
                &format!("digest={}", query_escape(&digest.to_string())),
            );
            let len = bytes.len().to_string();
            let resp = self.send(
                "PUT",
                &url,
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Length", &len),
                ],
                Body::Bytes(bytes),
                &[],
            )?;
            match resp.status().as_u16() {
                201 | 204 => Ok(digest),
                _ => Err(self.status_error("PUT", &url, &format!("blob {digest}"), resp)),
            }
        })
    }

    /// `PUT /v2/<name>/manifests/<reference>`; returns the manifest's digest (checked
    /// against the one the registry answers with).
    pub fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, Error> {
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base(),
            self.inner.name,
            reference
        );
        let digest = Digest::sha256(bytes);
        self.inner.retry.run(&url, || {
            let len = bytes.len().to_string();
            let resp = self.send(
                "PUT",
                &url,
                &[("Content-Type", media_type), ("Content-Length", &len)],
                Body::Bytes(bytes),
                &[],
            )?;
            match resp.status().as_u16() {
                200..=299 => {
                    if let Some(d) = header(&resp, "docker-content-digest")
                        .and_then(|d| d.parse::<Digest>().ok())
                        && d != digest
                    {
                        return Err(Error::DigestMismatch {
                            what: format!("manifest {}:{reference}", self.display_name()),
                            expected: digest.to_string(),
                            actual: d.to_string(),
                        });
                    }
                    Ok(digest)
                }
                _ => Err(self.status_error("PUT", &url, &format!("manifest {reference}"), resp)),
            }
        })
    }
}
