//! [`Image`]: an image config, its raw bytes and its typed model ([`ImageConfig`]).
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
use std::sync::OnceLock;

use digest_set::{Algorithm, Digest};
use layer_store::{ChainId, DiffId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::ImageId;
use crate::time::{Timestamp, parse_rfc3339};
use crate::validate;

/// Why bytes are not a valid image config (dockerd's "invalid image").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidImage {
    /// The bytes are not JSON of the image config's shape.
    #[error("invalid image JSON: {0}")]
    Json(String),
    /// The JSON nests arrays and objects deeper than this store decodes (serde_json's limit of
    /// 128 levels; Go's, and so dockerd's, is 10,000): dockerd would load such a config, this
    /// store skips it rather than show it with defaults.
    #[error(
        "invalid image JSON: nested deeper than {MAX_JSON_DEPTH} levels, more than this store decodes ({0})"
    )]
    TooDeep(String),
    /// The config has no `rootfs` key (moby's exact message).
    #[error("invalid image JSON, no RootFS key")]
    NoRootFs,
    /// `history` has more entries without `empty_layer` than `rootfs.diff_ids` has layers.
    #[error(
        "too many non-empty layers in History section ({history} in history, {layers} diff_ids)"
    )]
    TooManyNonEmptyLayers {
        /// Non-empty history entries.
        history: usize,
        /// Entries in `rootfs.diff_ids`.
        layers: usize,
    },
    /// A `rootfs.diff_ids` entry is not a digest (`sha256:<64 hex>`). moby accepts any string
    /// here, but then no layer can ever have that chain ID; this store refuses it up front.
    #[error("invalid diff_id {value:?} at rootfs.diff_ids[{index}]: {reason}")]
    InvalidDiffId {
        /// The position in `diff_ids`.
        index: usize,
        /// The entry.
        value: String,
        /// Why it is not a digest.
        reason: String,
    },
}

/// An image: its ID, the exact config bytes it was read from, and their typed model.
///
/// The ID is the sha256 of the bytes, which are never re-serialised (a config that ends in a
/// newline keeps it). The typed model is decoded (and validated) when the image is built, then
/// dropped to keep memory low; [`Image::config`] decodes it again on first use and caches it.
#[derive(Debug)]
pub struct Image {
    id: ImageId,
    raw: Box<[u8]>,
    chain_id: Option<ChainId>,
    os_supported: bool,
    created: Option<Timestamp>,
    config: OnceLock<Box<ImageConfig>>,
}

impl Clone for Image {
    fn clone(&self) -> Self {
        Image {
            id: self.id,
            raw: self.raw.clone(),
            chain_id: self.chain_id,
            os_supported: self.os_supported,
            created: self.created,
            config: OnceLock::new(),
        }
    }
}

impl PartialEq for Image {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.raw == other.raw
    }
}

impl Eq for Image {}

impl Image {
    /// Builds an image from config bytes, as moby's `NewFromJSON` plus the checks of `Create`:
    /// the JSON must decode into the image model, have a `rootfs`, no more non-empty history
    /// entries than layers, and diff IDs that are digests.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Result<Image, InvalidImage> {
        let raw: Vec<u8> = bytes.into();
        let id = ImageId::of_config(&raw);
        Image::from_verified_bytes(id, raw)
    }

    /// Like [`Image::from_bytes`] when the caller already knows the bytes hash to `id` (e.g. a
    /// backend that verified them); saves hashing them again. Nothing checks that they do.
    pub fn from_verified_bytes(id: ImageId, raw: Vec<u8>) -> Result<Image, InvalidImage> {
        let checked = Checked::of(&raw)?;
        Ok(Image {
            id,
            raw: raw.into_boxed_slice(),
            chain_id: checked.chain_id,
            os_supported: checked.other_os.is_none(),
            created: checked.created,
            config: OnceLock::new(),
        })
    }

    /// The config's `created` time (`None` when absent or `null`), kept from the check that
    /// built the image, so listing images needs no second decode of every config.
    pub fn created(&self) -> Option<Timestamp> {
        self.created
    }

    /// The image ID (sha256 of [`Image::raw_json`]).
    pub fn id(&self) -> ImageId {
        self.id
    }

    /// The exact bytes of the config.
    pub fn raw_json(&self) -> &[u8] {
        &self.raw
    }

    /// The chain ID of the image's layers (its top layer), `None` for an image with no layers.
    pub fn chain_id(&self) -> Option<ChainId> {
        self.chain_id
    }

    /// Whether the image's OS can run here: `os` empty or equal (ignoring ASCII case) to the
    /// host's (`linux`), as moby's `CheckOS`.
    pub fn is_os_supported(&self) -> bool {
        self.os_supported
    }

    /// The typed model of the config, decoded on first use and cached.
    pub fn config(&self) -> &ImageConfig {
        self.config.get_or_init(|| match decode(&self.raw) {
            Ok(cfg) => Box::new(cfg),
            Err(e) => {
                // Cannot happen: the same bytes decoded when the image was built.
                tracing::error!(image = %self.id, error = %e, "image config no longer decodes");
                Box::default()
            }
        })
    }

    /// The layers' diff IDs, bottom first.
    pub fn diff_ids(&self) -> Vec<DiffId> {
        let layers = self
            .config()
            .rootfs
            .as_ref()
            .and_then(|r| r.diff_ids.as_deref())
            .unwrap_or(&[]);
        parse_diff_ids(layers).unwrap_or_default()
    }

    /// The raw config as a JSON value (decoded on each call).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_slice(&self.raw).unwrap_or(serde_json::Value::Null)
    }
}

/// What the store keeps of a config it has checked: a lean pass that type-checks every field
/// as the typed model would, keeping only this (the typed model is decoded on demand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    /// The top layer's chain ID.
    pub(crate) chain_id: Option<ChainId>,
    /// `created`.
    pub(crate) created: Option<Timestamp>,
    /// The `os` value when it names another OS than this host's (see
    /// [`Image::is_os_supported`]); `None` when the image can run here.
    pub(crate) other_os: Option<String>,
}

impl Checked {
    /// Checks config bytes as [`Image::from_verified_bytes`] does.
    pub(crate) fn of(raw: &[u8]) -> Result<Checked, InvalidImage> {
        let e = validate::check(raw).map_err(json_error)?;
        if !e.has_rootfs {
            return Err(InvalidImage::NoRootFs);
        }
        if e.non_empty_history > e.diff_ids.len() {
            return Err(InvalidImage::TooManyNonEmptyLayers {
                history: e.non_empty_history,
                layers: e.diff_ids.len(),
            });
        }
        let diff_ids = parse_diff_ids(&e.diff_ids)?;
        let os = e.os.as_deref().unwrap_or("");
        Ok(Checked {
            chain_id: layer_store::chain_id(&diff_ids),
            created: e.created,
            other_os: (!os_supported(os)).then(|| os.to_owned()),
        })
    }
}

fn decode(raw: &[u8]) -> Result<ImageConfig, InvalidImage> {
    serde_json::from_slice(raw).map_err(json_error)
}

/// How deep serde_json decodes nested arrays and objects (its recursion limit).
const MAX_JSON_DEPTH: usize = 128;

fn json_error(e: serde_json::Error) -> InvalidImage {
    let text = e.to_string();
    // serde_json has no error code for it; its message is stable.
    if text.starts_with("recursion limit exceeded") {
        InvalidImage::TooDeep(text)
    } else {
        InvalidImage::Json(text)
    }
}

fn os_supported(os: &str) -> bool {
    os.is_empty() || os.eq_ignore_ascii_case(std::env::consts::OS)
}

fn parse_diff_ids<S: AsRef<str>>(layers: &[S]) -> Result<Vec<DiffId>, InvalidImage> {
    layers
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let value = value.as_ref();
            let invalid = |reason: String| InvalidImage::InvalidDiffId {
                index,
                value: value.to_owned(),
                reason,
            };
            match value.strip_prefix("sha256:") {
                Some(hex) => Digest::from_hex(Algorithm::Sha256, hex)
                    .map(DiffId)
                    .map_err(|e| invalid(e.to_string())),
                None => Err(invalid("expected sha256:<64 lowercase hex>".into())),
            }
        })
        .collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    const MOBY_FIXTURE: &str = r#"{"comment": "abc", "rootfs": {"type": "layers", "diff_ids": ["sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"]}}"#;

    #[test]
    fn id_is_hash_of_bytes() {
        let img = Image::from_bytes(MOBY_FIXTURE).expect("valid");
        assert_eq!(
            img.id().to_string(),
            "sha256:19ed2664b9b3482d5d9453011aa23a97a8946aed50a5e161cbb34554ef1d516b"
        );
        assert_eq!(img.raw_json(), MOBY_FIXTURE.as_bytes());
        assert_eq!(img.config().comment, "abc");
        assert_eq!(img.diff_ids().len(), 1);
        assert_eq!(
            img.chain_id().map(|c| c.to_string()),
            Some("sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae".into())
        );
    }

    #[test]
    fn moby_bare_hex_fixture_is_refused() {
        // moby's store_test config: its ID is the hash of the bytes, but its diff ID is bare
        // hex, which this store refuses.
        let moby = r#"{"comment": "abc", "rootfs": {"type": "layers", "diff_ids": ["2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"]}}"#;
        assert_eq!(
            ImageId::of_config(moby.as_bytes()).to_string(),
            "sha256:8d25a9c45df515f9d0fe8e4a6b1c64dd3b965a84790ddbcc7954bb9bc89eb993"
        );
        assert!(matches!(
            Image::from_bytes(moby),
            Err(InvalidImage::InvalidDiffId { index: 0, .. })
        ));
    }

    #[test]
    fn created_is_kept_from_the_check() {
        let with = Image::from_bytes(
            &br#"{"created":"2026-11-30T03:16:58.5+01:00","rootfs":{"type":"layers"}}"#[..],
        )
        .expect("valid");
        assert_eq!(with.created(), with.config().created);
        assert_eq!(
            with.created().map(|t| t.to_string()).as_deref(),
            Some("2026-11-30T03:16:58.5+01:00")
        );
        for raw in [
            &br#"{"rootfs":{"type":"layers"}}"#[..],
            &br#"{"created":null,"rootfs":{"type":"layers"}}"#[..],
        ] {
            let without = Image::from_bytes(raw).expect("valid");
            assert_eq!(without.created(), None);
            assert_eq!(without.config().created, None);
        }
    }

    #[test]
    fn validation_errors() {
        assert_eq!(
            Image::from_bytes("{}").expect_err("no rootfs").to_string(),
            "invalid image JSON, no RootFS key"
        );
        assert!(matches!(
            Image::from_bytes("invalid"),
            Err(InvalidImage::Json(_))
        ));
        let too_many = r#"{"rootfs":{"type":"layers"},"history":[{"created_by":"x"}]}"#;
        assert!(matches!(
            Image::from_bytes(too_many),
            Err(InvalidImage::TooManyNonEmptyLayers {
                history: 1,
                layers: 0
            })
        ));
        let empty_ok = r#"{"rootfs":{"type":"layers"},"history":[{"empty_layer":true}]}"#;
        let img = Image::from_bytes(empty_ok).expect("valid");
        assert_eq!(img.chain_id(), None);
        let bare = r#"{"rootfs":{"type":"layers","diff_ids":["2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"]}}"#;
        assert!(matches!(
            Image::from_bytes(bare),
            Err(InvalidImage::InvalidDiffId { index: 0, .. })
        ));
        let bad_created = r#"{"created":"yesterday","rootfs":{"type":"layers"}}"#;
        assert!(matches!(
            Image::from_bytes(bad_created),
            Err(InvalidImage::Json(_))
        ));
    }

    #[test]
    fn go_decoding_rules() {
        let j = r#"{"rootfs":{"type":"layers"},"config":{"Hostname":null,"Cmd":"echo hi","Entrypoint":[],"Volumes":{"/data":{"x":1}},"ExposedPorts":{},"Healthcheck":{"Test":["NONE"]},"StopTimeout":3},"unknown":{"a":[1]}}"#;
        let img = Image::from_bytes(j).expect("valid");
        let cfg = img.config();
        let c = cfg.config.as_ref().expect("config");
        assert_eq!(c.cmd, Some(vec!["echo hi".to_owned()]));
        assert_eq!(c.entrypoint, Some(vec![]));
        assert_eq!(cfg.extra.len(), 1);
        assert_eq!(cfg.extra["unknown"], serde_json::json!({"a":[1]}));
        let out = serde_json::to_string(c).expect("serializes");
        assert_eq!(
            out,
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["echo hi"],"Healthcheck":{"Test":["NONE"]},"Image":"","Volumes":{"/data":{}},"WorkingDir":"","Entrypoint":[],"OnBuild":null,"Labels":null,"StopTimeout":3}"#
        );
        // container_config is always there in Go's model.
        let dflt = serde_json::to_string(&cfg.container_config).expect("serializes");
        assert!(dflt.starts_with(r#"{"Hostname":"""#));
    }

    /// A config with `{"rootfs":…}` and an extra key holding `depth` nested arrays.
    fn nested(key: &str, depth: usize) -> String {
        format!(
            r#"{{"rootfs":{{"type":"layers"}},"{key}":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    }

    #[test]
    fn check_and_decode_agree_on_deep_nesting() {
        for depth in [1, 100] {
            let img = Image::from_bytes(nested("deep", depth)).expect("decodes");
            assert!(img.config().extra.contains_key("deep"), "{depth}");
        }
        for depth in [200, 100_000] {
            let err = Image::from_bytes(nested("deep", depth)).expect_err("too deep");
            assert!(matches!(err, InvalidImage::TooDeep(_)), "{depth}: {err}");
            assert!(
                err.to_string().contains("nested deeper than 128 levels"),
                "{err}"
            );
        }
        // Around the limit, the check accepts exactly what the typed model decodes.
        for depth in 110..140 {
            let raw = nested("deep", depth);
            let checked = Image::from_bytes(raw.clone()).map(|_| ());
            let decoded = decode(raw.as_bytes()).map(|_| ());
            assert_eq!(checked, decoded, "{depth}");
        }
        // Nesting under keys the model knows and skips (values of `Volumes`) has no limit, in
        // either pass.
        let deep_volume = format!(
            r#"{{"rootfs":{{"type":"layers"}},"config":{{"Volumes":{{"/v":{{"x":{}{}}}}}}}}}"#,
            "[".repeat(300),
            "]".repeat(300)
        );
        let img = Image::from_bytes(deep_volume).expect("decodes");
        assert!(
            img.config()
                .config
                .as_ref()
                .is_some_and(|c| c.volumes.is_some())
        );
    }

    #[test]
    fn keeps_trailing_newline() {
        let j = format!("{MOBY_FIXTURE}\n");
        let img = Image::from_bytes(j.clone()).expect("valid");
        assert_eq!(img.raw_json(), j.as_bytes());
        assert_eq!(img.id(), ImageId::of_config(j.as_bytes()));
    }

    mod agreement {
        use proptest::prelude::*;
        use serde_json::{Value, json};

        fn scalar() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                Just(json!("x")),
                Just(json!("2026-11-30T02:18:00.5Z")),
                Just(json!(
                    "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
                )),
                Just(json!(3)),
                Just(json!(1.5)),
                Just(json!(true)),
                Just(json!(["a", "b"])),
                Just(json!([null])),
                Just(json!([1])),
                Just(json!({"k": "v"})),
                Just(json!({"k": null})),
                Just(json!({"k": {}})),
                Just(json!({"k": 1})),
                Just(json!({})),
                Just(json!([])),
            ]
        }

        fn object(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
            proptest::collection::vec((0..keys.len(), scalar()), 0..6).prop_map(move |kv| {
                let mut m = serde_json::Map::new();
                for (k, v) in kv {
                    m.insert(keys[k].to_owned(), v);
                }
                Value::Object(m)
            })
        }

        const CONTAINER: &[&str] = &[
            "Hostname",
            "User",
            "Tty",
            "ExposedPorts",
            "Env",
            "Cmd",
            "Healthcheck",
            "ArgsEscaped",
            "Volumes",
            "Entrypoint",
            "OnBuild",
            "Labels",
            "StopTimeout",
            "Shell",
        ];
        const TOP: &[&str] = &[
            "id",
            "comment",
            "created",
            "container",
            "author",
            "architecture",
            "os",
            "Size",
            "os.version",
            "os.features",
            "unknown",
        ];
        const HEALTH: &[&str] = &["Test", "Interval", "Retries"];
        const HISTORY: &[&str] = &["created", "created_by", "empty_layer"];
        const ROOTFS: &[&str] = &["type", "diff_ids"];

        fn config() -> impl Strategy<Value = Value> {
            (
                object(TOP),
                proptest::option::of(object(CONTAINER)),
                proptest::option::of(object(HEALTH)),
                proptest::option::of(proptest::collection::vec(object(HISTORY), 0..3)),
                proptest::option::of(object(ROOTFS)),
            )
                .prop_map(|(mut top, container, health, history, rootfs)| {
                    let m = top.as_object_mut().expect("object");
                    if let Some(mut c) = container {
                        if let Some(h) = health {
                            c["Healthcheck"] = h;
                        }
                        m.insert("config".into(), c.clone());
                        m.insert("container_config".into(), c);
                    }
                    if let Some(h) = history {
                        m.insert("history".into(), Value::Array(h));
                    }
                    if let Some(r) = rootfs {
                        m.insert("rootfs".into(), r);
                    }
                    top
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// The lean check accepts exactly what the typed model decodes, so `config()`
            /// never fails on an image that was accepted.
            #[test]
            fn lean_check_agrees_with_typed_model(cfg in config()) {
                let bytes = serde_json::to_vec(&cfg).expect("serialize");
                let lean = crate::validate::check(&bytes).is_ok();
                let typed = super::super::decode(&bytes).is_ok();
                prop_assert_eq!(lean, typed, "{}", String::from_utf8_lossy(&bytes));
            }
        }
    }
}
