//! Legacy v1 image IDs and `<v1 id>/json` files, as `docker save` (moby 20.10) makes them.
//!
//! `docker save` names each layer directory of its archive by a v1 ID that moby's
//! `image/v1.CreateID` computes, layer by layer, bottom first:
//!
//! 1. the layer's v1 image: for the top layer the image's own `V1Image` fields (decoded from
//!    its config: `comment`, `created`, `container`, `container_config`, `docker_version`,
//!    `author`, `config`, `architecture`, `variant`, `os`, `Size`), for every lower layer an
//!    empty one created at the Unix epoch;
//! 2. marshalled without `id` and `parent` (Go's struct order, `omitempty`), its top-level
//!    keys then re-marshalled sorted (a Go map) with `layer_id` = the layer's chain ID and,
//!    above the bottom layer, `parent` = the v1 ID below (`sha256:<hex>`);
//! 3. the v1 ID is the sha256 of those bytes.
//!
//! The layer's `json` file is the same v1 image with `id` (hex) and `parent` (hex) set and
//! `os` = the image's OS, in Go's struct order. Strings are escaped as Go escapes them.
//!
//! ```
//! use image_archive::v1;
//!
//! let config = br#"{"architecture":"amd64","os":"linux","created":"2026-11-30T09:33:55.207128342Z",
//!   "config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":
//!   ["sha256:fd92e13d6b1db5f7b8bf34e6f8ba9027e26a2c9532b38dce0ab2e807ef215db3"]}}"#;
//! let image = image_store::Image::from_bytes(config.to_vec())?;
//! let layers = v1::layers(&image)?;
//! assert_eq!(layers.len(), 1);
//! assert!(layers[0].parent.is_none());
//! let json = String::from_utf8(layers[0].json.clone())?;
//! assert!(json.starts_with(&format!(r#"{{"id":"{}","created":"2026-11-30T09:33:55.207128342Z""#, layers[0].id.hex())));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use digest_set::Digest;
use image_store::Image;
use image_store::time::Timestamp;
use image_store::{ContainerConfig, ImageConfig};
use layer_store::{ChainId, DiffId};

use crate::gojson;

/// Why the v1 layers of an image cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum V1Error {
    /// The image has no layers: docker cannot save it either ("empty export - not
    /// implemented").
    #[error("image {0} has no layers (empty export - not implemented)")]
    NoLayers(Digest),
    /// A part of the config cannot be written as JSON.
    #[error("image {image}: cannot encode its v1 config: {source}")]
    Json {
        /// The image.
        image: Digest,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
}

/// One layer of an image as `docker save` writes it: its v1 directory and `json` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Layer {
    /// The v1 ID: the directory name (hex) in the archive.
    pub id: Digest,
    /// The v1 ID of the layer below, if any.
    pub parent: Option<Digest>,
    /// The layer's chain ID.
    pub chain_id: ChainId,
    /// The layer's diff ID.
    pub diff_id: DiffId,
    /// The content of `<v1 id>/json`.
    pub json: Vec<u8>,
}

/// The top-level fields of a v1 image (moby's `image.V1Image`) without `id` and `parent`,
/// each as (JSON key, encoded value), in Go's struct order, empty ones omitted as
/// `omitempty` does.
struct Fields(Vec<(&'static str, Vec<u8>)>);

fn go_string(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    go_json::write_string(&mut out, s);
    out
}

fn go_time(t: &Timestamp) -> Vec<u8> {
    // RFC 3339 with nanoseconds: only ASCII digits, '-', ':', '.', 'T', 'Z' and '+'.
    format!("\"{t}\"").into_bytes()
}

impl Fields {
    /// An empty v1 image created at the Unix epoch (what lower layers carry).
    fn epoch(image: &Digest) -> Result<Fields, V1Error> {
        let config = encode(image, &ContainerConfig::default())?;
        Ok(Fields(vec![
            ("created", go_time(&Timestamp::from_unix(0, 0))),
            ("container_config", config),
        ]))
    }

    /// The image's own v1 fields, decoded from its config.
    fn of(image: &Digest, c: &ImageConfig) -> Result<Fields, V1Error> {
        let mut f = Vec::with_capacity(12);
        let string = |key: &'static str, v: &str, f: &mut Vec<(&'static str, Vec<u8>)>| {
            if !v.is_empty() {
                f.push((key, go_string(v)));
            }
        };
        string("comment", &c.comment, &mut f);
        // Go's zero time when absent or null.
        f.push((
            "created",
            go_time(&c.created.unwrap_or_else(Timestamp::go_zero)),
        ));
        string("container", &c.container, &mut f);
        f.push(("container_config", encode(image, &c.container_config)?));
        string("docker_version", &c.docker_version, &mut f);
        string("author", &c.author, &mut f);
        if let Some(config) = &c.config {
            f.push(("config", encode(image, config)?));
        }
        string("architecture", &c.architecture, &mut f);
        string("variant", &c.variant, &mut f);
        string("os", &c.os, &mut f);
        if c.size != 0 {
            f.push(("Size", c.size.to_string().into_bytes()));
        }
        Ok(Fields(f))
    }

    /// The v1 ID of a layer with these fields (moby's `CreateID`).
    fn create_id(&self, chain_id: &ChainId, parent: Option<&Digest>) -> Digest {
        let layer_id = go_string(&chain_id.to_string());
        let parent = parent.map(|p| go_string(&p.to_string()));
        let mut keys: Vec<(&str, &[u8])> = self
            .0
            .iter()
            .map(|(k, v)| (*k, v.as_slice()))
            .chain(std::iter::once(("layer_id", layer_id.as_slice())))
            .chain(parent.as_deref().map(|p| ("parent", p)))
            .collect();
        // A Go map marshals with its keys sorted bytewise.
        keys.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        Digest::sha256(&object(keys.into_iter()))
    }

    /// The `json` file: `id`, `parent`, the fields, with `os` set to `os`.
    fn file(&self, id: &Digest, parent: Option<&Digest>, os: &str) -> Vec<u8> {
        let id = go_string(&id.hex());
        let parent = parent.map(|p| go_string(&p.hex()));
        let has_os = self.0.iter().any(|(k, _)| *k == "os");
        let os_value = (!has_os && !os.is_empty()).then(|| go_string(os));
        // `os` goes after `variant` and before `Size` in the struct.
        let (before, after): (Vec<_>, Vec<_>) = self.0.iter().partition(|(k, _)| *k != "Size");
        let fields = std::iter::once(("id", id.as_slice()))
            .chain(parent.as_deref().map(|p| ("parent", p)))
            .chain(before.into_iter().map(|(k, v)| (*k, v.as_slice())))
            .chain(os_value.as_deref().map(|o| ("os", o)))
            .chain(after.into_iter().map(|(k, v)| (*k, v.as_slice())));
        object(fields)
    }
}

fn encode(image: &Digest, config: &ContainerConfig) -> Result<Vec<u8>, V1Error> {
    gojson::to_vec(config).map_err(|source| V1Error::Json {
        image: *image,
        source,
    })
}

/// A JSON object of already encoded values.
fn object<'a>(fields: impl Iterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.push(b'{');
    for (i, (k, v)) in fields.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        go_json::write_string(&mut out, k);
        out.push(b':');
        out.extend_from_slice(v);
    }
    out.push(b'}');
    out
}

/// The v1 layers of `image`, bottom first, as `docker save` writes them: v1 IDs, parents,
/// chain and diff IDs, and `json` files.
pub fn layers(image: &Image) -> Result<Vec<V1Layer>, V1Error> {
    let id = *image.id().digest();
    let diff_ids = image.diff_ids();
    if diff_ids.is_empty() {
        return Err(V1Error::NoLayers(id));
    }
    let config = image.config();
    let top = Fields::of(&id, config)?;
    let lower = Fields::epoch(&id)?;
    let mut out: Vec<V1Layer> = Vec::with_capacity(diff_ids.len());
    let chains: Vec<ChainId> = layer_store::chain_ids(diff_ids.iter()).collect();
    for (i, (diff_id, chain_id)) in diff_ids.iter().zip(chains).enumerate() {
        let fields = if i + 1 == diff_ids.len() {
            &top
        } else {
            &lower
        };
        let parent = out.last().map(|l| l.id);
        let v1 = fields.create_id(&chain_id, parent.as_ref());
        let json = fields.file(&v1, parent.as_ref(), &config.os);
        out.push(V1Layer {
            id: v1,
            parent,
            chain_id,
            diff_id: *diff_id,
            json,
        });
    }
    Ok(out)
}
