//! Media types of the distribution API, and how a manifest's type is told.

/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker schema 1 manifest (signed).
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker schema 1 manifest (unsigned).
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker layer, gzip.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// What `GET .../manifests/...` accepts (every manifest and index type, schema 1 included
/// so that it can be recognised and refused rather than converted).
pub const MANIFEST_ACCEPT: [&str; 6] = [
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_SCHEMA1_SIGNED,
    DOCKER_SCHEMA1,
];

/// A manifest's media type: the `Content-Type` without parameters, unless it is missing or
/// generic (`application/json`, `text/plain`): then the `mediaType` field, or schema 1 for
/// `"schemaVersion": 1`, or an OCI manifest or index by shape.
pub fn manifest_media_type(content_type: Option<&str>, bytes: &[u8]) -> String {
    let ct = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if !ct.is_empty()
        && ct != "application/json"
        && ct != "text/plain"
        && ct != "application/octet-stream"
    {
        return ct;
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "schemaVersion", default)]
        schema_version: u32,
        #[serde(rename = "mediaType", default)]
        media_type: String,
        #[serde(default)]
        manifests: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        layers: Option<serde::de::IgnoredAny>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(p) if !p.media_type.is_empty() => p.media_type,
        Ok(p) if p.schema_version == 1 => DOCKER_SCHEMA1_SIGNED.to_owned(),
        Ok(p) if p.manifests.is_some() => OCI_INDEX.to_owned(),
        Ok(p) if p.layers.is_some() => OCI_MANIFEST.to_owned(),
        _ => ct,
    }
}
