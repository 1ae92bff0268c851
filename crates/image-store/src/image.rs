//! [`Image`]: an image config, its raw bytes and its typed model ([`ImageConfig`], decoded
//! lazily).

use std::sync::OnceLock;

use digest_set::{Algorithm, Digest};
use layer_store::{ChainId, DiffId};

use crate::config::ImageConfig;
use crate::id::ImageId;
use crate::time::Timestamp;
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
