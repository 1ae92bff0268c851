//! The JSON files of image archives: `docker save`'s `manifest.json` and `repositories`, and
//! the OCI image layout's `oci-layout`, `index.json`, manifests and descriptors.
//!
//! Field names and omission rules are those of the Go structs that write them (moby's
//! `image/tarexport`, the OCI image-spec's `specs-go`), so that what we write reads back in
//! docker, skopeo and umoci, and what they write reads here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The name of `docker save`'s manifest file.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The name of `docker save`'s legacy repositories file.
pub const LEGACY_REPOSITORIES_FILE: &str = "repositories";
/// The content of each legacy `<v1 id>/VERSION` file.
pub const LEGACY_VERSION: &str = "1.0";
/// The name of an OCI layout's marker file.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
/// The name of an OCI layout's index.
pub const OCI_INDEX_FILE: &str = "index.json";
/// The directory of an OCI layout's blobs.
pub const OCI_BLOBS_DIR: &str = "blobs";
/// `imageLayoutVersion` of the OCI layouts written.
pub const OCI_LAYOUT_VERSION: &str = "1.0.0";

/// OCI annotation: the reference (tag) of a manifest in an index.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's (and docker 25's) annotation: the full image name of a manifest in an index.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
/// imgstore's annotation on a manifest in an index: the image's repo digests
/// (`name@sha256:...`), comma-separated. Other tools ignore it.
pub const ANNOTATION_REPO_DIGESTS: &str = "io.imgstore.image.repo-digests";

/// Media types.
pub mod media_type {
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// OCI layer, uncompressed.
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    /// OCI layer, gzip.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// OCI layer, zstd.
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// OCI non-distributable layer (deprecated), uncompressed.
    pub const OCI_LAYER_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
    /// OCI non-distributable layer (deprecated), gzip.
    pub const OCI_LAYER_NONDIST_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    /// Docker manifest list.
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image manifest, schema 2.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker layer, gzip.
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker layer, uncompressed.
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    /// Docker foreign layer.
    pub const DOCKER_FOREIGN_LAYER: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
}

/// One image of `docker save`'s `manifest.json` (moby's `tarexport.manifestItem`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The config's file name in the archive (`<hex>.json`, or `blobs/sha256/<hex>`).
    #[serde(rename = "Config")]
    pub config: String,
    /// The image's tags; `null` when it has none (as docker writes it).
    #[serde(rename = "RepoTags")]
    pub repo_tags: Option<Vec<String>>,
    /// The layer files, bottom first.
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
    /// The parent image ID, when docker knew it.
    #[serde(rename = "Parent", default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Descriptors of foreign layers, by diff ID.
    #[serde(
        rename = "LayerSources",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub layer_sources: Option<BTreeMap<String, Descriptor>>,
    /// imgstore's extension: the image's repo digests (`name@sha256:...`), which docker
    /// loses (moby #22011). docker ignores the field.
    #[serde(
        rename = "RepoDigests",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub repo_digests: Option<Vec<String>>,
}

/// `docker save`'s legacy `repositories` file: repository -> tag -> v1 ID (hex).
pub type LegacyRepositories = BTreeMap<String, BTreeMap<String, String>>;

/// An OCI content descriptor (also docker's distribution descriptor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// The media type of the content.
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// Its digest (`sha256:<hex>`).
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// Where else it may be fetched from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// The platform of the content (in an index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// The platform of an image (in an index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture (`amd64`, `arm64`, ...).
    pub architecture: String,
    /// Operating system (`linux`, ...).
    pub os: String,
    /// OS version.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// OS features.
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    /// CPU variant (`v7`, `v8`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An OCI image index (`index.json`), or a docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// The media type, when given.
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests (or nested indexes).
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An OCI image manifest, or a docker schema 2 manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageManifest {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// The media type, when given.
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config.
    pub config: Descriptor,
    /// The layers, bottom first.
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// The `oci-layout` marker file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OciLayout {
    /// The layout version (`1.0.0`).
    #[serde(rename = "imageLayoutVersion")]
    pub image_layout_version: String,
}
