//! What an archive holds, as a list of images to load ([`plan`]), and their layers as
//! verified, decompressed streams ([`open_layer`]).
//!
//! Formats, found from the content: `docker save` of docker 20.10 (`manifest.json`,
//! `repositories`, `<v1 id>/{VERSION,json,layer.tar}`, a repeated `layer.tar` as a link),
//! of docker 25+ (`manifest.json` beside an OCI layout, layers as `blobs/sha256/<hex>`),
//! skopeo's `docker-archive`, and OCI image layouts (`oci-layout`, `index.json`, `blobs/`)
//! from skopeo, umoci or docker 25 without `manifest.json`. An OCI index with several
//! platforms gives the image of the platform asked for.

use std::io::{self, Read};

use digest_set::Digest;
use sha2::{Digest as _, Sha256};

use crate::compress;
use crate::error::ReadError;
use crate::format::{
    ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, ANNOTATION_REPO_DIGESTS, Descriptor,
    ImageManifest, Index, MANIFEST_FILE, ManifestEntry, OCI_INDEX_FILE, media_type,
};
use crate::source::Source;

/// The largest JSON member read (`manifest.json`, `index.json`, configs, manifests).
pub const MAX_JSON: u64 = 16 << 20;
/// The most images an archive may hold.
pub const MAX_IMAGES: usize = 10_000;
/// The most layers an image may have.
pub const MAX_LAYERS: usize = 1000;

/// A platform to choose from an index (`os/arch[/variant]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    /// `linux`, ...
    pub os: String,
    /// `amd64`, `arm64`, ...
    pub arch: String,
    /// `v8`, `v7`, ... if given.
    pub variant: Option<String>,
}

impl PlatformSpec {
    /// The platform of this machine, in Go's names.
    pub fn host() -> PlatformSpec {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        PlatformSpec {
            os: "linux".to_owned(),
            arch: arch.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<PlatformSpec> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?;
        let arch = parts.next().filter(|p| !p.is_empty())?;
        let variant = parts.next().map(str::to_owned);
        if parts.next().is_some() {
            return None;
        }
        Some(PlatformSpec {
            os: os.to_owned(),
            arch: arch.to_owned(),
            variant,
        })
    }

    fn matches(&self, p: &crate::format::Platform) -> bool {
        p.os == self.os
            && p.architecture == self.arch
            && match (&self.variant, &p.variant) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            }
    }
}

impl std::fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// One layer of an image to load: its member and, for a blob, the digest and size its
/// descriptor gives (checked while it is read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    /// The member (links are followed inside the archive).
    pub name: String,
    /// The digest of the member's bytes, when the archive names it.
    pub digest: Option<Digest>,
    /// The member's size, when a descriptor gives it.
    pub size: Option<u64>,
}

/// One image to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePlan {
    /// Where it was found, for messages (`manifest.json entry 2`, `index.json manifest 1`).
    pub origin: String,
    /// The config bytes, exactly as stored in the archive (the image ID is their sha256);
    /// checked against their name or descriptor when that gives a digest.
    pub config: Vec<u8>,
    /// The layers, bottom first.
    pub layers: Vec<LayerRef>,
    /// The references to tag it with, as written in the archive (`RepoTags`, or an OCI
    /// index's `io.containerd.image.name` or full `org.opencontainers.image.ref.name`).
    pub tags: Vec<String>,
    /// A bare OCI `org.opencontainers.image.ref.name` (a tag without a name, as umoci
    /// writes it): not a reference by itself.
    pub bare_ref_name: Option<String>,
    /// The repo digests imgstore recorded when it saved the image.
    pub repo_digests: Vec<String>,
    /// The parent image ID `manifest.json` names.
    pub parent: Option<String>,
}

fn invalid(name: &str, reason: impl std::fmt::Display) -> ReadError {
    ReadError::Invalid {
        name: name.to_owned(),
        reason: reason.to_string(),
    }
}

/// The digest a member's name encodes: `<64 hex>.json`, `<64 hex>.tar`, `blobs/sha256/<hex>`.
fn digest_in_name(name: &str) -> Option<Digest> {
    let base = name.rsplit('/').next()?;
    let hex = base
        .strip_suffix(".json")
        .or_else(|| base.strip_suffix(".tar"))
        .unwrap_or(base);
    if name.starts_with("blobs/sha256/") || (hex.len() == 64 && hex != base) {
        return Digest::from_hex(digest_set::Algorithm::Sha256, hex).ok();
    }
    None
}

fn blob_name(d: &Descriptor, what: &str) -> Result<(String, Digest), ReadError> {
    let digest: Digest = d
        .digest
        .parse()
        .map_err(|e| invalid(what, format!("bad digest {:?}: {e}", d.digest)))?;
    Ok((
        format!("blobs/{}/{}", digest.algorithm().name(), digest.hex()),
        digest,
    ))
}

/// Reads a JSON blob and checks it against its digest and size.
fn read_blob(src: &dyn Source, d: &Descriptor, what: &str) -> Result<Vec<u8>, ReadError> {
    let (name, digest) = blob_name(d, what)?;
    let bytes = src.read_all(&name, MAX_JSON)?;
    verify(&name, &bytes, &digest)?;
    if bytes.len() as u64 != d.size {
        return Err(invalid(
            &name,
            format!("size {} where its descriptor says {}", bytes.len(), d.size),
        ));
    }
    Ok(bytes)
}

fn verify(name: &str, bytes: &[u8], digest: &Digest) -> Result<(), ReadError> {
    let actual = match digest.algorithm() {
        digest_set::Algorithm::Sha256 => Digest::sha256(bytes),
        digest_set::Algorithm::Sha512 => Digest::sha512(bytes),
    };
    if actual != *digest {
        return Err(ReadError::DigestMismatch {
            name: name.to_owned(),
            expected: digest.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

/// The images `src` holds, for `platform` where an index offers several.
pub fn plan(src: &dyn Source, platform: &PlatformSpec) -> Result<Vec<ImagePlan>, ReadError> {
    if src.size(MANIFEST_FILE)?.is_some() {
        return plan_docker(src);
    }
    if src.size(OCI_INDEX_FILE)?.is_some() {
        return plan_oci(src, platform);
    }
    Err(ReadError::NotAnArchive(src.describe()))
}

fn plan_docker(src: &dyn Source) -> Result<Vec<ImagePlan>, ReadError> {
    let raw = src.read_all(MANIFEST_FILE, MAX_JSON)?;
    let entries: Vec<ManifestEntry> =
        serde_json::from_slice(&raw).map_err(|e| invalid(MANIFEST_FILE, e))?;
    if entries.len() > MAX_IMAGES {
        return Err(invalid(MANIFEST_FILE, "too many images"));
    }
    let mut out = Vec::new();
    for (i, e) in entries.into_iter().enumerate() {
        let origin = format!("{MANIFEST_FILE} entry {}", i + 1);
        if e.layers.len() > MAX_LAYERS {
            return Err(invalid(MANIFEST_FILE, format!("{origin}: too many layers")));
        }
        let config = src.read_all(&e.config, MAX_JSON)?;
        if let Some(d) = digest_in_name(&e.config) {
            verify(&e.config, &config, &d)?;
        }
        let layers = e
            .layers
            .iter()
            .map(|l| LayerRef {
                name: l.clone(),
                digest: l.starts_with("blobs/").then(|| digest_in_name(l)).flatten(),
                size: None,
            })
            .collect();
        out.push(ImagePlan {
            origin,
            config,
            layers,
            tags: e.repo_tags.unwrap_or_default(),
            bare_ref_name: None,
            repo_digests: e.repo_digests.unwrap_or_default(),
            parent: e.parent.filter(|p| !p.is_empty()),
        });
    }
    Ok(out)
}

fn is_manifest(mt: &str) -> bool {
    mt == media_type::OCI_MANIFEST || mt == media_type::DOCKER_MANIFEST
}

fn is_index(mt: &str) -> bool {
    mt == media_type::OCI_INDEX || mt == media_type::DOCKER_MANIFEST_LIST
}

fn plan_oci(src: &dyn Source, platform: &PlatformSpec) -> Result<Vec<ImagePlan>, ReadError> {
    let raw = src.read_all(OCI_INDEX_FILE, MAX_JSON)?;
    let index: Index = serde_json::from_slice(&raw).map_err(|e| invalid(OCI_INDEX_FILE, e))?;
    if index.manifests.len() > MAX_IMAGES {
        return Err(invalid(OCI_INDEX_FILE, "too many manifests"));
    }
    // A top-level index listing one image per platform (no names) is one image.
    let by_platform = index.manifests.len() > 1
        && index
            .manifests
            .iter()
            .all(|d| d.platform.is_some() && is_manifest(&d.media_type));
    let chosen: Vec<(usize, &Descriptor)> = if by_platform {
        let found = index
            .manifests
            .iter()
            .enumerate()
            .find(|(_, d)| d.platform.as_ref().is_some_and(|p| platform.matches(p)));
        match found {
            Some(f) => vec![f],
            None => {
                return Err(ReadError::NoPlatform {
                    platform: platform.to_string(),
                    what: OCI_INDEX_FILE.to_owned(),
                });
            }
        }
    } else {
        index.manifests.iter().enumerate().collect()
    };
    let mut out = Vec::new();
    for (i, top) in chosen {
        let origin = format!("{OCI_INDEX_FILE} manifest {}", i + 1);
        let mut desc = top.clone();
        // Nested indexes (a multi-platform image): down to the platform's manifest.
        for _ in 0..4 {
            if !is_index(&desc.media_type) {
                break;
            }
            let raw = read_blob(src, &desc, &origin)?;
            let nested: Index = serde_json::from_slice(&raw).map_err(|e| invalid(&origin, e))?;
            let found = nested
                .manifests
                .iter()
                .find(|d| d.platform.as_ref().is_none_or(|p| platform.matches(p)));
            desc = match found {
                Some(d) => d.clone(),
                None => {
                    return Err(ReadError::NoPlatform {
                        platform: platform.to_string(),
                        what: origin,
                    });
                }
            };
        }
        if !is_manifest(&desc.media_type) {
            return Err(invalid(
                OCI_INDEX_FILE,
                format!("{origin}: unsupported media type {:?}", desc.media_type),
            ));
        }
        let raw = read_blob(src, &desc, &origin)?;
        let manifest: ImageManifest =
            serde_json::from_slice(&raw).map_err(|e| invalid(&origin, e))?;
        if manifest.layers.len() > MAX_LAYERS {
            return Err(invalid(&origin, "too many layers"));
        }
        let config = read_blob(src, &manifest.config, &origin)?;
        let mut layers = Vec::new();
        for l in &manifest.layers {
            let (name, digest) = blob_name(l, &origin)?;
            layers.push(LayerRef {
                name,
                digest: Some(digest),
                size: Some(l.size),
            });
        }
        let ann = top.annotations.clone().unwrap_or_default();
        let mut tags = Vec::new();
        let mut bare_ref_name = None;
        if let Some(n) = ann.get(ANNOTATION_CONTAINERD_NAME) {
            tags.push(n.clone());
        } else if let Some(n) = ann.get(ANNOTATION_REF_NAME) {
            if n.contains(':') || n.contains('/') || n.contains('@') {
                tags.push(n.clone());
            } else {
                bare_ref_name = Some(n.clone());
            }
        }
        let repo_digests = ann
            .get(ANNOTATION_REPO_DIGESTS)
            .map(|s| {
                s.split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        out.push(ImagePlan {
            origin,
            config,
            layers,
            tags,
            bare_ref_name,
            repo_digests,
            parent: None,
        });
    }
    Ok(out)
}

/// Checks a blob's bytes against its digest and size as they are read; fails at the end
/// (before the reader reports its end) on a mismatch.
struct Verify<R> {
    inner: R,
    name: String,
    want: Digest,
    size: Option<u64>,
    hasher: Sha256,
    read: u64,
    done: bool,
}

impl<R: Read> Read for Verify<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.done = true;
            let actual = Digest::from_sha256_bytes(self.hasher.finalize_reset().into());
            if actual != self.want {
                return Err(io::Error::other(ReadError::DigestMismatch {
                    name: self.name.clone(),
                    expected: self.want.to_string(),
                    actual: actual.to_string(),
                }));
            }
            if let Some(size) = self.size
                && size != self.read
            {
                return Err(io::Error::other(invalid(
                    &self.name,
                    format!("size {} where its descriptor says {size}", self.read),
                )));
            }
            return Ok(0);
        }
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// The layer `l` of `src` as an uncompressed tar stream: decompressed as its first bytes say
/// (gzip, bzip2, xz, zstd or none), its member's bytes checked against the digest and size
/// the archive gives for them (an error at the end of the stream on a mismatch). The diff
/// ID is the caller's to check.
pub fn open_layer<'a>(
    src: &'a dyn Source,
    l: &LayerRef,
) -> Result<Box<dyn Read + Send + 'a>, ReadError> {
    let r = src.open(&l.name)?;
    let r: Box<dyn Read + Send + 'a> = match &l.digest {
        Some(d) if d.algorithm() == digest_set::Algorithm::Sha256 => Box::new(Verify {
            inner: r,
            name: l.name.clone(),
            want: *d,
            size: l.size,
            hasher: Sha256::new(),
            read: 0,
            done: false,
        }),
        _ => r,
    };
    compress::decompress(io::BufReader::with_capacity(256 * 1024, r))
        .map_err(|e| ReadError::io(&l.name, e))
}
