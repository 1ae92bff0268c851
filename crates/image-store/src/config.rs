//! The typed model of an image config: [`ImageConfig`], [`RootFs`], [`History`],
//! [`ContainerConfig`], [`HealthConfig`], [`GoEmpty`].
//!
//! The typed model follows moby's `image.Image` / `V1Image` / `RootFS`, OCI's `History` and
//! docker's `container.Config`, field for field under the same JSON names, and decodes the way
//! Go's `encoding/json` does where it matters: `null` for a string, number or bool leaves the
//! zero value, `Cmd`/`Entrypoint`/`Shell` accept a string or a list, `Volumes` and
//! `ExposedPorts` values are empty objects, and a list or map keeps the difference between
//! absent/`null` (`None`) and empty (`Some(empty)`), which Go prints as `null` and `[]`/`{}`.
//! [`ContainerConfig`] and [`HealthConfig`] serialize exactly as Go's `json.Marshal` orders and
//! omits their fields, so `serde_json::to_string(&config)` gives dockerd's `inspect` object
//! (before Go's HTML escaping of `<`, `>` and `&`, which is the printer's job).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::{Timestamp, parse_rfc3339};

/// `null` decodes to the default value, as Go leaves a field untouched on `null`.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn none_or_empty_vec<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_none_or(Vec::is_empty)
}

fn none_or_empty_map<K, V>(v: &Option<BTreeMap<K, V>>) -> bool {
    v.as_ref().is_none_or(BTreeMap::is_empty)
}

/// Go's `strslice.StrSlice`: a JSON string or list of strings; `null` is `None`.
fn str_slice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(s)) => Some(vec![s]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
}

fn labels<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    let m: Option<BTreeMap<String, Option<String>>> = Option::deserialize(d)?;
    Ok(m.map(|m| {
        m.into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect()
    }))
}

fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => parse_rfc3339(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// The empty struct Go uses as a set value (`map[string]struct{}`): decodes from any JSON
/// object, encodes as `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct GoEmpty;

impl<'de> Deserialize<'de> for GoEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Go decodes any object (ignoring its keys) or null into struct{}.
        let _: Option<BTreeMap<String, serde::de::IgnoredAny>> = Option::deserialize(d)?;
        Ok(GoEmpty)
    }
}

impl Serialize for GoEmpty {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        s.serialize_map(Some(0))?.end()
    }
}

/// moby's `image.Image` (with its embedded `V1Image`): the image config as dockerd decodes it.
///
/// Fields are in Go's order under their JSON names. Keys this model does not know are kept in
/// [`ImageConfig::extra`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ImageConfig {
    /// `id` (legacy v1 ID).
    #[serde(default, deserialize_with = "nullable")]
    pub id: String,
    /// `parent` as written inside the config (legacy; the store's parent link is metadata).
    #[serde(default, deserialize_with = "nullable")]
    pub parent: String,
    /// `comment`.
    #[serde(default, deserialize_with = "nullable")]
    pub comment: String,
    /// `created`; `None` when absent or null.
    #[serde(default, deserialize_with = "timestamp")]
    pub created: Option<Timestamp>,
    /// `container`: the ID of the container the image was committed from.
    #[serde(default, deserialize_with = "nullable")]
    pub container: String,
    /// `container_config` (always present in Go's model: absent decodes as all defaults).
    #[serde(default, deserialize_with = "nullable")]
    pub container_config: ContainerConfig,
    /// `docker_version`.
    #[serde(default, deserialize_with = "nullable")]
    pub docker_version: String,
    /// `author`.
    #[serde(default, deserialize_with = "nullable")]
    pub author: String,
    /// `config`; `None` when absent or null.
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    /// `architecture`.
    #[serde(default, deserialize_with = "nullable")]
    pub architecture: String,
    /// `variant`.
    #[serde(default, deserialize_with = "nullable")]
    pub variant: String,
    /// `os`.
    #[serde(default, deserialize_with = "nullable")]
    pub os: String,
    /// `Size` (legacy).
    #[serde(rename = "Size", default, deserialize_with = "nullable")]
    pub size: i64,
    /// `rootfs`; required by the store.
    #[serde(default)]
    pub rootfs: Option<RootFs>,
    /// `history`.
    #[serde(default, deserialize_with = "nullable")]
    pub history: Vec<History>,
    /// `os.version`.
    #[serde(rename = "os.version", default, deserialize_with = "nullable")]
    pub os_version: String,
    /// `os.features`.
    #[serde(rename = "os.features", default)]
    pub os_features: Option<Vec<String>>,
    /// Every other top-level key, with its value as written.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// moby's `RootFS`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// `type`, normally `layers`.
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    pub fs_type: String,
    /// `diff_ids`, bottom layer first, as written.
    #[serde(default, skip_serializing_if = "none_or_empty_vec")]
    pub diff_ids: Option<Vec<String>>,
}

/// One `history` entry (OCI `History`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// `created`.
    #[serde(
        default,
        deserialize_with = "timestamp",
        serialize_with = "ser_timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub created: Option<Timestamp>,
    /// `created_by`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub created_by: String,
    /// `author`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub author: String,
    /// `comment`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub comment: String,
    /// `empty_layer`: the step added no layer.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub empty_layer: bool,
}

fn ser_timestamp<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(t),
        None => s.serialize_none(),
    }
}

/// Docker's `container.Config` (API 1.41), as found under `config` and `container_config`.
///
/// Serializes exactly as Go does: in this field order, with `ExposedPorts`, `Healthcheck`,
/// `ArgsEscaped`, `NetworkDisabled`, `MacAddress`, `StopSignal`, `StopTimeout` and `Shell`
/// omitted when empty, and the other lists and maps printed as `null` when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// `Hostname`.
    #[serde(default, deserialize_with = "nullable")]
    pub hostname: String,
    /// `Domainname`.
    #[serde(default, deserialize_with = "nullable")]
    pub domainname: String,
    /// `User`.
    #[serde(default, deserialize_with = "nullable")]
    pub user: String,
    /// `AttachStdin`.
    #[serde(default, deserialize_with = "nullable")]
    pub attach_stdin: bool,
    /// `AttachStdout`.
    #[serde(default, deserialize_with = "nullable")]
    pub attach_stdout: bool,
    /// `AttachStderr`.
    #[serde(default, deserialize_with = "nullable")]
    pub attach_stderr: bool,
    /// `ExposedPorts`: port specs such as `80/tcp`.
    #[serde(default, skip_serializing_if = "none_or_empty_map")]
    pub exposed_ports: Option<BTreeMap<String, GoEmpty>>,
    /// `Tty`.
    #[serde(default, deserialize_with = "nullable")]
    pub tty: bool,
    /// `OpenStdin`.
    #[serde(default, deserialize_with = "nullable")]
    pub open_stdin: bool,
    /// `StdinOnce`.
    #[serde(default, deserialize_with = "nullable")]
    pub stdin_once: bool,
    /// `Env`.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// `Cmd` (a string or a list in the JSON).
    #[serde(default, deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    /// `Healthcheck`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// `ArgsEscaped`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub args_escaped: bool,
    /// `Image`.
    #[serde(default, deserialize_with = "nullable")]
    pub image: String,
    /// `Volumes`.
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, GoEmpty>>,
    /// `WorkingDir`.
    #[serde(default, deserialize_with = "nullable")]
    pub working_dir: String,
    /// `Entrypoint` (a string or a list in the JSON).
    #[serde(default, deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    /// `NetworkDisabled`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub network_disabled: bool,
    /// `MacAddress`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub mac_address: String,
    /// `OnBuild`.
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    /// `Labels` (a `null` value decodes as the empty string, as in Go).
    #[serde(default, deserialize_with = "labels")]
    pub labels: Option<BTreeMap<String, String>>,
    /// `StopSignal`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub stop_signal: String,
    /// `StopTimeout`, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// `Shell` (a string or a list in the JSON).
    #[serde(
        default,
        deserialize_with = "str_slice",
        skip_serializing_if = "none_or_empty_vec"
    )]
    pub shell: Option<Vec<String>>,
}

/// Docker's `container.HealthConfig`. Durations are Go `time.Duration`s: nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `Test`: e.g. `["CMD-SHELL", "curl -f http://localhost/"]`, or `["NONE"]`.
    #[serde(default, skip_serializing_if = "none_or_empty_vec")]
    pub test: Option<Vec<String>>,
    /// `Interval`, in nanoseconds.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub interval: i64,
    /// `Timeout`, in nanoseconds.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub timeout: i64,
    /// `StartPeriod`, in nanoseconds.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub start_period: i64,
    /// `Retries`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub retries: i64,
}
