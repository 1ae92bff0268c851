//! Credentials as the docker CLI finds them: `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`), its `auths.<server>` entries (`auth` = base64 of
//! `user:password`, or `username`/`password`, `identitytoken`, `registrytoken`), Docker Hub
//! under `https://index.docker.io/v1/`, and credential helpers (`credHelpers.<server>`, else
//! `credsStore`) run as `docker-credential-NAME get`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;

use crate::auth::Credentials;
use crate::endpoint::{DOCKER_HUB, DOCKER_HUB_CONFIG_KEY, INDEX_HOSTNAME};
use crate::error::CredentialsError;

/// The largest `config.json` read.
const MAX_CONFIG: u64 = 4 << 20;
/// The largest answer read from a credential helper.
const MAX_HELPER_OUTPUT: u64 = 1 << 20;

#[derive(Debug, Default, serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    identitytoken: String,
    #[serde(default)]
    registrytoken: String,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: String,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

/// docker's client configuration (the part about credentials).
#[derive(Debug, Default)]
pub struct DockerConfig {
    path: Option<PathBuf>,
    file: ConfigFile,
    helper_path: Option<std::ffi::OsString>,
}

/// The docker CLI's `ConvertToHostname`: a server key without scheme and path.
pub fn convert_to_hostname(key: &str) -> &str {
    let s = key
        .strip_prefix("http://")
        .or_else(|| key.strip_prefix("https://"))
        .unwrap_or(key);
    s.split('/').next().unwrap_or(s)
}

/// The key docker uses for a registry's credentials: `https://index.docker.io/v1/` for
/// Docker Hub, else `host[:port]`.
pub fn server_key(index: &str) -> &str {
    if index == DOCKER_HUB || index == INDEX_HOSTNAME {
        DOCKER_HUB_CONFIG_KEY
    } else {
        index
    }
}

impl DockerConfig {
    /// The default file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(d).join("config.json"));
        }
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".docker").join("config.json"))
    }

    /// Reads the default file; a missing file is an empty configuration.
    pub fn load_default() -> Result<DockerConfig, CredentialsError> {
        match Self::default_path() {
            Some(p) => Self::load(&p),
            None => Ok(DockerConfig::default()),
        }
    }

    /// Reads `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<DockerConfig, CredentialsError> {
        let f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DockerConfig {
                    path: Some(path.to_owned()),
                    file: ConfigFile::default(),
                    helper_path: None,
                });
            }
            Err(source) => {
                return Err(CredentialsError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let mut data = Vec::new();
        f.take(MAX_CONFIG + 1)
            .read_to_end(&mut data)
            .map_err(|source| CredentialsError::Read {
                path: path.to_owned(),
                source,
            })?;
        if data.len() as u64 > MAX_CONFIG {
            return Err(CredentialsError::Invalid {
                path: path.to_owned(),
                reason: format!("larger than {MAX_CONFIG} bytes"),
            });
        }
        let file: ConfigFile = if data.iter().all(u8::is_ascii_whitespace) {
            ConfigFile::default()
        } else {
            serde_json::from_slice(&data).map_err(|e| CredentialsError::Invalid {
                path: path.to_owned(),
                reason: e.to_string(),
            })?
        };
        Ok(DockerConfig {
            path: Some(path.to_owned()),
            file,
            helper_path: None,
        })
    }

    /// Looks credential helpers up in `path` (a `PATH`-style list) instead of `$PATH`.
    pub fn with_helper_path(mut self, path: std::ffi::OsString) -> DockerConfig {
        self.helper_path = Some(path);
        self
    }

    fn path_display(&self) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| PathBuf::from("config.json"))
    }

    /// The credentials for a registry (`docker.io` or `host[:port]`), as the docker CLI
    /// resolves them; `None`: anonymous.
    pub fn credentials(&self, index: &str) -> Result<Option<Credentials>, CredentialsError> {
        let key = server_key(index);
        let helper = self
            .file
            .cred_helpers
            .get(key)
            .or_else(|| {
                self.file
                    .cred_helpers
                    .iter()
                    .find(|(k, _)| convert_to_hostname(k) == convert_to_hostname(key))
                    .map(|(_, v)| v)
            })
            .filter(|h| !h.is_empty())
            .or((!self.file.creds_store.is_empty()).then_some(&self.file.creds_store));
        if let Some(h) = helper {
            return run_helper(h, key, self.helper_path.as_deref());
        }
        let entry = self.file.auths.get(key).or_else(|| {
            self.file
                .auths
                .iter()
                .find(|(k, _)| convert_to_hostname(k) == convert_to_hostname(key))
                .map(|(_, v)| v)
        });
        let Some(e) = entry else {
            return Ok(None);
        };
        let mut c = Credentials {
            username: e.username.clone(),
            password: e.password.clone(),
            identity_token: e.identitytoken.clone(),
            registry_token: e.registrytoken.clone(),
        };
        if !e.auth.is_empty() {
            let err = |reason: String| CredentialsError::Auth {
                server: key.to_owned(),
                path: self.path_display(),
                reason,
            };
            let raw = base64::engine::general_purpose::STANDARD
                .decode(e.auth.trim())
                .map_err(|e| err(e.to_string()))?;
            let text = String::from_utf8(raw).map_err(|_| err("not UTF-8".to_owned()))?;
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| err("not user:password".to_owned()))?;
            c.username = u.to_owned();
            c.password = p.trim_end_matches('\0').to_owned();
        }
        Ok((!c.is_empty()).then_some(c))
    }
}

#[derive(serde::Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-<helper> get` for `server`.
fn run_helper(
    helper: &str,
    server: &str,
    path: Option<&std::ffi::OsStr>,
) -> Result<Option<Credentials>, CredentialsError> {
    let err = |reason: String| CredentialsError::Helper {
        helper: helper.to_owned(),
        server: server.to_owned(),
        reason,
    };
    if helper.contains('/') || helper.contains(char::is_whitespace) {
        return Err(err("invalid helper name".to_owned()));
    }
    let mut cmd = Command::new(format!("docker-credential-{helper}"));
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let mut child = cmd
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| err(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| err(e.to_string()))?;
    }
    let mut out = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        stdout
            .take(MAX_HELPER_OUTPUT)
            .read_to_end(&mut out)
            .map_err(|e| err(e.to_string()))?;
    }
    let status = child.wait().map_err(|e| err(e.to_string()))?;
    let text = String::from_utf8_lossy(&out);
    if !status.success() {
        // The helpers' "not found" answer: anonymous access.
        if text.contains("credentials not found") {
            return Ok(None);
        }
        return Err(err(format!(
            "exited with {status}: {}",
            text.lines().next().unwrap_or("")
        )));
    }
    let a: HelperAnswer = serde_json::from_slice(&out).map_err(|e| err(e.to_string()))?;
    if a.username == "<token>" {
        return Ok(Some(Credentials {
            identity_token: a.secret,
            ..Credentials::default()
        }));
    }
    let c = Credentials::basic(&a.username, &a.secret);
    Ok((!c.is_empty()).then_some(c))
}
