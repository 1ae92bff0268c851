//! What `pull` and `push` share: the registry client set up as dockerd would be (its
//! `daemon.json`'s `insecure-registries` and `registry-mirrors`, `/etc/docker/certs.d`) and
//! the docker CLI's credentials (`$DOCKER_CONFIG/config.json`, credential helpers).

use std::path::PathBuf;

use registry_client::credentials::DockerConfig;
use registry_client::{Client, ClientConfig, Credentials, RegistryConfig, RetryPolicy};

use crate::dataroot::DaemonConfig;
use crate::reference::Reference;

/// Why the registry settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// `insecure-registries`, `registry-mirrors` or a certificate is refused.
    #[error(transparent)]
    Config(#[from] registry_client::ConfigError),
    /// docker's `config.json` or a credential helper failed.
    #[error(transparent)]
    Credentials(#[from] registry_client::CredentialsError),
}

/// Where registry settings come from.
#[derive(Debug, Clone, Default)]
pub struct RemoteOptions {
    /// `--insecure-registry` flags, added to `daemon.json`'s list.
    pub insecure_registries: Vec<String>,
    /// `--registry-mirror` flags, added to `daemon.json`'s list.
    pub registry_mirrors: Vec<String>,
    /// docker's `config.json` (`None`: `$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`).
    pub docker_config: Option<PathBuf>,
    /// The per-registry certificates directory (`None`: `/etc/docker/certs.d`).
    pub certs_dir: Option<PathBuf>,
    /// Retries of failed requests (`None`: the client's default).
    pub retry: Option<RetryPolicy>,
}

/// A registry client and the credentials to use with it.
#[derive(Debug)]
pub struct Remote {
    /// The client.
    pub client: Client,
    docker_config: DockerConfig,
}

impl Remote {
    /// The client dockerd would use with `daemon` settings, plus `opts`.
    pub fn new(daemon: &DaemonConfig, opts: &RemoteOptions) -> Result<Remote, RemoteError> {
        let mut insecure = daemon.insecure_registries.clone();
        insecure.extend(opts.insecure_registries.iter().cloned());
        let mut mirrors = daemon.registry_mirrors.clone();
        mirrors.extend(opts.registry_mirrors.iter().cloned());
        let mut registry = RegistryConfig::new(&insecure, &mirrors)?;
        if let Some(c) = &opts.certs_dir {
            registry.certs_dir = Some(c.clone());
        }
        let config = ClientConfig {
            registry,
            retry: opts.retry.clone().unwrap_or_default(),
            ..ClientConfig::default()
        };
        let docker_config = match &opts.docker_config {
            Some(p) => DockerConfig::load(p)?,
            None => DockerConfig::load_default()?,
        };
        Ok(Remote {
            client: Client::new(config),
            docker_config,
        })
    }

    /// The credentials for the registry of `r` (`None`: anonymous).
    pub fn credentials(&self, r: &Reference) -> Result<Option<Credentials>, RemoteError> {
        Ok(self.docker_config.credentials(r.domain())?)
    }
}

/// The repository's name in its registry as dockerd names it for messages
/// (`FamiliarName` of the path alone: `busybox` for `library/busybox`).
pub(crate) fn familiar_path(r: &Reference) -> String {
    match r.path().strip_prefix("library/") {
        Some(rest) if !rest.contains('/') => rest.to_owned(),
        _ => r.path().to_owned(),
    }
}
