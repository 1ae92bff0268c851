//! Authentication: [`Credentials`] (docker's `AuthConfig`), the `WWW-Authenticate`
//! challenge a registry answers `/v2/` with ([`Challenge`]), bearer tokens fetched from the
//! challenge's realm and cached per scope, and dockerd's HMAC of distribution metadata
//! ([`hmac_key`], [`metadata_hmac`]).

use std::collections::BTreeMap;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// What a user authenticates with (docker's `types.AuthConfig`, as the CLI resolves it).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password (or a personal access token).
    pub password: String,
    /// An OAuth refresh token (a credential helper's `<token>` user).
    pub identity_token: String,
    /// A bearer token to send as is.
    pub registry_token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field(
                "password",
                &(!self.password.is_empty()).then_some("<redacted>"),
            )
            .field(
                "identity_token",
                &(!self.identity_token.is_empty()).then_some("<redacted>"),
            )
            .field(
                "registry_token",
                &(!self.registry_token.is_empty()).then_some("<redacted>"),
            )
            .finish()
    }
}

impl Credentials {
    /// A user name and password.
    pub fn basic(username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
            ..Credentials::default()
        }
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.username.is_empty()
            && self.password.is_empty()
            && self.identity_token.is_empty()
            && self.registry_token.is_empty()
    }

    /// dockerd's `hasAuthInfo`: a registry token, or a user name and a password.
    pub fn has_auth_info(&self) -> bool {
        !self.registry_token.is_empty() || (!self.username.is_empty() && !self.password.is_empty())
    }

    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The HMAC key of dockerd's distribution metadata for pushes made with `creds`
/// (`metadata.ComputeV2MetadataHMACKey`): the text `sha256:<hex>` of the JSON of the user
/// name, password, identity and registry tokens (empty ones left out). `None` without
/// credentials (no HMAC).
pub fn hmac_key(creds: Option<&Credentials>) -> Option<Vec<u8>> {
    let c = creds?;
    let mut json = Vec::from(&b"{"[..]);
    let mut first = true;
    for (k, v) in [
        ("username", &c.username),
        ("password", &c.password),
        ("identitytoken", &c.identity_token),
        ("registrytoken", &c.registry_token),
    ] {
        if v.is_empty() {
            continue;
        }
        if !first {
            json.push(b',');
        }
        first = false;
        go_json::write_string(&mut json, k);
        json.push(b':');
        go_json::write_string(&mut json, v);
    }
    json.push(b'}');
    Some(digest_set::Digest::sha256(&json).to_string().into_bytes())
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[&[u8]]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    for d in data {
        inner.update(d);
    }
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// dockerd's `ComputeV2MetadataHMAC`: hex of HMAC-SHA256(key, digest + repository); empty
/// without a key.
pub fn metadata_hmac(key: Option<&[u8]>, digest: &str, source_repository: &str) -> String {
    match key {
        Some(k) if !k.is_empty() => {
            let mac = hmac_sha256(k, &[digest.as_bytes(), source_repository.as_bytes()]);
            let mut s = String::with_capacity(64);
            for b in mac {
                s.push_str(&format!("{b:02x}"));
            }
            s
        }
        _ => String::new(),
    }
}

/// An authentication challenge (`WWW-Authenticate: Bearer realm="...",service="..."`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `bearer` or `basic` (lower case).
    pub scheme: String,
    /// Its parameters (`realm`, `service`, `scope`, `error`), keys in lower case.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// Parses the challenges of a `WWW-Authenticate` header value.
    pub fn parse_all(value: &str) -> Vec<Challenge> {
        let mut out = Vec::new();
        let mut rest = value.trim();
        while !rest.is_empty() {
            let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
            let scheme = rest[..end].trim_end_matches(',').to_ascii_lowercase();
            rest = rest[end..].trim_start();
            let mut params = BTreeMap::new();
            // key=value or key="quoted"
            while let Some(eq) = rest.find('=') {
                let key = rest[..eq].trim();
                if key.is_empty() || key.contains(|c: char| c.is_whitespace() || c == ',') {
                    break;
                }
                let key = key.to_ascii_lowercase();
                rest = rest[eq + 1..].trim_start();
                let value;
                if let Some(q) = rest.strip_prefix('"') {
                    let mut v = String::new();
                    let mut chars = q.char_indices();
                    let mut consumed = q.len();
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '\\' => {
                                if let Some((_, n)) = chars.next() {
                                    v.push(n);
                                }
                            }
                            '"' => {
                                consumed = i + 1;
                                break;
                            }
                            c => v.push(c),
                        }
                    }
                    value = v;
                    rest = &q[consumed.min(q.len())..];
                } else {
                    let end = rest.find([',', ' ']).unwrap_or(rest.len());
                    value = rest[..end].to_owned();
                    rest = &rest[end..];
                }
                params.insert(key, value);
                rest = rest.trim_start();
                if let Some(r) = rest.strip_prefix(',') {
                    rest = r.trim_start();
                } else {
                    break;
                }
            }
            if !scheme.is_empty() {
                out.push(Challenge { scheme, params });
            }
            if params_stalled(rest) {
                break;
            }
        }
        out
    }
}

fn params_stalled(rest: &str) -> bool {
    // A scheme token followed by nothing parseable: stop instead of looping.
    rest.starts_with('=') || rest.starts_with('"')
}

/// A token endpoint's answer.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub expires_in: u64,
}

/// Percent-encodes a query value.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
