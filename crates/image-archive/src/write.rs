//! Writing image archives, without a store: [`write_archive`] takes the images (their
//! configs, tags, repo digests and parent links) and a [`LayerSource`] that hands out layer
//! tar streams, and streams one tar to any [`Write`].
//!
//! - [`Format::Docker`]: the archive `docker save` (moby 20.10) writes, member for member:
//!   `<v1 id>/{VERSION,json,layer.tar}` (a layer already written for an earlier image is a
//!   symbolic link to it), `<image id hex>.json`, `manifest.json`, `repositories`, in the
//!   order of a walk of docker's export directory (names sorted), with docker's headers and
//!   times (see [`WriteOptions::now`]).
//! - [`Format::Oci`]: an OCI image layout (`oci-layout`, `index.json` naming each tag with
//!   the `io.containerd.image.name` and `org.opencontainers.image.ref.name` annotations,
//!   `blobs/sha256/`), plus docker 25's `manifest.json` pointing into `blobs/`, so that
//!   `docker load` reads it too. Layers uncompressed, gzip or zstd.
//!
//! Both record each image's repo digests (imgstore's extension: `RepoDigests` in
//! `manifest.json`, [`ANNOTATION_REPO_DIGESTS`] in `index.json`).
//!
//! Nothing is staged: each layer goes from its source to the output in one pass. Headers
//! need a layer's length first, which the source tells ([`LayerSource::size`]); a compressed
//! layer's digest and length are only known once compressed, so it is compressed twice (once
//! to learn them, once to write it) and both passes must agree.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read, Write};
use std::sync::Arc;

use digest_set::Digest;
use docker_reference::reference::Reference;
use image_store::Image;
use image_store::time::Timestamp;
use layer_store::{ChainId, DiffId};
use sha2::Digest as _;

use crate::format::{
    ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, ANNOTATION_REPO_DIGESTS, Descriptor,
    ImageManifest, Index, LEGACY_REPOSITORIES_FILE, LEGACY_VERSION, LegacyRepositories,
    MANIFEST_FILE, ManifestEntry, OCI_INDEX_FILE, OCI_LAYOUT_FILE, OCI_LAYOUT_VERSION, OciLayout,
    Platform, media_type,
};
use crate::gojson;
use crate::tar_header as tar;
use crate::v1::{self, V1Error, V1Layer};

/// An error from a [`LayerSource`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A layer the writer asks a [`LayerSource`] for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LayerRef {
    /// The layer's chain ID (the layer with every layer below it).
    pub chain_id: ChainId,
    /// The layer's diff ID (the sha256 of its uncompressed tar stream).
    pub diff_id: DiffId,
}

/// Where the writer gets layer contents from.
pub trait LayerSource {
    /// The exact length of the layer's uncompressed tar stream.
    fn size(&self, layer: &LayerRef) -> Result<u64, BoxError>;

    /// The layer's uncompressed tar stream: exactly [`size`](Self::size) bytes that hash to
    /// its diff ID. A stream that does not must fail with an error before its end (the writer
    /// counts the bytes, but does not hash them again).
    fn open(&self, layer: &LayerRef) -> Result<Box<dyn Read + '_>, BoxError>;
}

/// One image to write.
#[derive(Debug, Clone)]
pub struct SaveImage {
    /// The image: its config bytes and their model.
    pub image: Arc<Image>,
    /// Its tags to record, in order (`RepoTags`, `repositories`, index entries). References
    /// without a tag are skipped; none: the image is recorded untagged (`RepoTags: null`).
    pub tags: Vec<Reference>,
    /// Its repo digests (`name@sha256:...`, familiar form), recorded as imgstore's extension.
    pub repo_digests: Vec<String>,
    /// Its parent image, recorded (`Parent` in `manifest.json`) when it is saved too.
    pub parent: Option<Digest>,
}

/// Compression of the layers of an OCI layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Uncompressed tar: each layer's blob is named by its diff ID.
    #[default]
    None,
    /// gzip (default level, no name, time 0).
    Gzip,
    /// zstd (level 3).
    Zstd,
}

/// The kind of archive to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `docker save`'s archive (moby 20.10).
    Docker,
    /// An OCI image layout, with layers compressed as given.
    Oci(Compression),
}

/// How far the writing is, in bytes of layer data read from the [`LayerSource`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes read so far.
    pub done: u64,
    /// Bytes to read in all (compressed layers are read twice).
    pub total: u64,
}

/// Options of [`write_archive`].
pub struct WriteOptions<'a> {
    /// What to write.
    pub format: Format,
    /// The time of the save, Unix seconds: docker gives the directory of a layer it links to
    /// an earlier copy (and that directory's `VERSION` and `json`) the time it wrote them.
    /// Every other time in the archive comes from the images.
    pub now: i64,
    /// Called as layer data is read.
    pub progress: Option<&'a mut dyn FnMut(Progress)>,
}

impl std::fmt::Debug for WriteOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteOptions")
            .field("format", &self.format)
            .field("now", &self.now)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl Default for WriteOptions<'_> {
    fn default() -> Self {
        WriteOptions {
            format: Format::Docker,
            now: 0,
            progress: None,
        }
    }
}

/// What [`write_archive`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Images written.
    pub images: usize,
    /// Layer contents written (a layer linked to an earlier copy counts once).
    pub layers: usize,
    /// Bytes of the archive.
    pub bytes: u64,
}

/// Why an archive could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// No images were given.
    #[error("no images to save")]
    NoImages,
    /// The same image was given twice.
    #[error("image {0} is given twice")]
    Duplicate(Digest),
    /// An image cannot be written in the legacy format (no layers, or its config does not
    /// encode).
    #[error(transparent)]
    V1(#[from] V1Error),
    /// The source could not tell the size of a layer or open it.
    #[error("layer {} (chain {}): {source}", .layer.diff_id, .layer.chain_id)]
    Layer {
        /// The layer.
        layer: LayerRef,
        /// The source's error.
        #[source]
        source: BoxError,
    },
    /// Reading a layer's tar stream failed (its content changed, a file is missing...).
    #[error("layer {} (chain {}): {source}", .layer.diff_id, .layer.chain_id)]
    LayerRead {
        /// The layer.
        layer: LayerRef,
        /// The stream's error.
        #[source]
        source: io::Error,
    },
    /// A layer's tar stream is not as long as its source said.
    #[error(
        "layer {}: its tar stream has {actual}{} bytes where {expected} were expected",
        .layer.diff_id,
        if *.more { " or more" } else { "" }
    )]
    LayerSize {
        /// The layer.
        layer: LayerRef,
        /// The length announced.
        expected: u64,
        /// The length read (a lower bound when `more`).
        actual: u64,
        /// The stream went on past `actual`.
        more: bool,
    },
    /// Compressing a layer twice gave different results.
    #[error(
        "layer {}: compressing it twice gave {second} ({second_size} bytes) after {first} ({first_size} bytes)",
        .layer.diff_id
    )]
    Unstable {
        /// The layer.
        layer: LayerRef,
        /// The first pass's digest.
        first: Digest,
        /// Its length.
        first_size: u64,
        /// The second pass's digest.
        second: Digest,
        /// Its length.
        second_size: u64,
    },
    /// A JSON file of the archive could not be encoded.
    #[error("cannot encode {what}: {source}")]
    Json {
        /// Which file.
        what: &'static str,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// Writing the archive failed.
    #[error("cannot write the archive: {0}")]
    Output(#[source] io::Error),
}

fn json_err(what: &'static str) -> impl FnOnce(serde_json::Error) -> WriteError {
    move |source| WriteError::Json { what, source }
}

/// The mtime docker's export gives a file it sets to `t` (moby's `system.Chtimes`, which
/// uses the Unix epoch for a time before it or past 2262; the tar header keeps whole
/// seconds).
fn chtimes(t: Option<Timestamp>) -> i64 {
    // Go's `time.Unix(0, 1<<63-1)`.
    const MAX: (i64, u32) = (9_223_372_036, 854_775_807);
    match t {
        Some(t) if t.unix_secs() >= 0 && (t.unix_secs(), t.nanos()) <= MAX => t.unix_secs(),
        _ => 0,
    }
}

/// Counts what goes through to the output.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes and counts what goes through.
struct Digesting<W> {
    inner: W,
    hasher: sha2::Sha256,
    bytes: u64,
}

impl<W: Write> Digesting<W> {
    fn new(inner: W) -> Self {
        Digesting {
            inner,
            hasher: sha2::Sha256::new(),
            bytes: 0,
        }
    }

    fn finish(self) -> (Digest, u64, W) {
        let d = Digest::from_sha256_bytes(self.hasher.finalize().into());
        (d, self.bytes, self.inner)
    }
}

impl<W: Write> Write for Digesting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A compressing writer.
enum Encoder<W: Write> {
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    fn new(c: Compression, w: W) -> io::Result<Self> {
        Ok(match c {
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(w, 3)?),
            Compression::Gzip | Compression::None => Encoder::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .write(w, flate2::Compression::default()),
            ),
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

/// The size of the buffer layer data is copied through.
const COPY_BUFFER: usize = 1 << 20;

/// Copies layers from the source, reporting progress.
struct Copier<'s, 'p> {
    source: &'s dyn LayerSource,
    buf: Vec<u8>,
    done: u64,
    /// `done` when progress was last reported.
    reported: u64,
    total: u64,
    progress: Option<&'p mut dyn FnMut(Progress)>,
}

/// Progress is reported at least this often (in bytes), and at the end of each layer.
const REPORT_EVERY: u64 = 1 << 20;

impl Copier<'_, '_> {
    fn size(&self, layer: &LayerRef) -> Result<u64, WriteError> {
        self.source.size(layer).map_err(|source| WriteError::Layer {
            layer: *layer,
            source,
        })
    }

    fn report(&mut self) {
        self.reported = self.done;
        let p = Progress {
            done: self.done,
            total: self.total,
        };
        if let Some(f) = self.progress.as_mut() {
            f(p);
        }
    }

    /// Copies the layer's whole stream (to its end, where the source verifies it) to `out`;
    /// it must be `expected` bytes long.
    fn copy(
        &mut self,
        layer: &LayerRef,
        expected: u64,
        out: &mut dyn Write,
    ) -> Result<(), WriteError> {
        let mut src = self
            .source
            .open(layer)
            .map_err(|source| WriteError::Layer {
                layer: *layer,
                source,
            })?;
        let mut read: u64 = 0;
        loop {
            let n = match src.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(WriteError::LayerRead {
                        layer: *layer,
                        source,
                    });
                }
            };
            read += n as u64;
            if read > expected {
                return Err(WriteError::LayerSize {
                    layer: *layer,
                    expected,
                    actual: read,
                    more: true,
                });
            }
            out.write_all(&self.buf[..n]).map_err(WriteError::Output)?;
            self.done += n as u64;
            if self.done - self.reported >= REPORT_EVERY {
                self.report();
            }
        }
        self.report();
        if read != expected {
            return Err(WriteError::LayerSize {
                layer: *layer,
                expected,
                actual: read,
                more: false,
            });
        }
        Ok(())
    }
}

/// Writes an archive of `images` (in this order; see the [module](self) docs) to `out`,
/// reading layers from `layers`. Returns `out` and what was written. On error, what was
/// written so far is not a valid archive: the caller discards it.
pub fn write_archive<W: Write>(
    out: W,
    images: &[SaveImage],
    layers: &dyn LayerSource,
    options: WriteOptions<'_>,
) -> Result<(W, Summary), WriteError> {
    if images.is_empty() {
        return Err(WriteError::NoImages);
    }
    let mut seen = HashSet::new();
    for i in images {
        let id = *i.image.id().digest();
        if !seen.insert(id) {
            return Err(WriteError::Duplicate(id));
        }
    }
    let mut copier = Copier {
        source: layers,
        buf: vec![0u8; COPY_BUFFER],
        done: 0,
        reported: 0,
        total: 0,
        progress: options.progress,
    };
    let mut out = Counting {
        inner: io::BufWriter::with_capacity(256 * 1024, out),
        bytes: 0,
    };
    let written = match options.format {
        Format::Docker => write_docker(&mut out, images, &mut copier, options.now)?,
        Format::Oci(c) => write_oci(&mut out, images, &mut copier, c)?,
    };
    tar::write_end(&mut out).map_err(WriteError::Output)?;
    out.flush().map_err(WriteError::Output)?;
    let bytes = out.bytes;
    let inner = out
        .inner
        .into_inner()
        .map_err(|e| WriteError::Output(e.into_error()))?;
    Ok((
        inner,
        Summary {
            images: images.len(),
            layers: written,
            bytes,
        },
    ))
}

/// The tags of an image to record: references with a tag, duplicates dropped.
fn tags_of(image: &SaveImage) -> Vec<&Reference> {
    let mut seen = HashSet::new();
    image
        .tags
        .iter()
        .filter(|r| r.tag().is_some() && seen.insert(r.to_string()))
        .collect()
}

/// `manifest.json`'s `Parent`: the parent, when it is saved too (moby's
/// `validatedParentLinks`).
fn parent_among(image: &SaveImage, saved: &HashSet<Digest>) -> Option<String> {
    let id = *image.image.id().digest();
    image
        .parent
        .filter(|p| *p != id && saved.contains(p))
        .map(|p| p.to_string())
}

/// What goes in one `<v1 id>/` directory.
struct LayerDir {
    v1: V1Layer,
    mtime: i64,
    content: DirContent,
}

enum DirContent {
    File { layer: LayerRef, size: u64 },
    Symlink(String),
}

/// A top-level member of a docker archive.
enum Member<'a> {
    Dir(Box<LayerDir>),
    File {
        name: String,
        data: Cow<'a, [u8]>,
        mtime: i64,
    },
}

impl Member<'_> {
    fn name(&self) -> String {
        match self {
            Member::Dir(d) => d.v1.id.hex(),
            Member::File { name, .. } => name.clone(),
        }
    }
}

/// `docker save` (moby 20.10 `image/tarexport/save.go`).
fn write_docker(
    out: &mut dyn Write,
    images: &[SaveImage],
    copier: &mut Copier<'_, '_>,
    now: i64,
) -> Result<usize, WriteError> {
    let saved: HashSet<Digest> = images.iter().map(|i| *i.image.id().digest()).collect();
    let mut members: Vec<Member<'_>> = Vec::new();
    let mut saved_layers: HashSet<Digest> = HashSet::new();
    let mut diff_paths: HashMap<DiffId, Digest> = HashMap::new();
    let mut manifest = Vec::with_capacity(images.len());
    let mut repositories = LegacyRepositories::new();
    let mut files = 0;
    for image in images {
        let img = &image.image;
        let created = chtimes(img.created());
        let v1_layers = v1::layers(img)?;
        let mut names = Vec::with_capacity(v1_layers.len());
        for l in &v1_layers {
            names.push(format!("{}/layer.tar", l.id.hex()));
            if !saved_layers.insert(l.id) {
                continue;
            }
            let layer = LayerRef {
                chain_id: l.chain_id,
                diff_id: l.diff_id,
            };
            let (content, mtime) = match diff_paths.get(&l.diff_id) {
                Some(first) => (
                    DirContent::Symlink(format!("../{}/layer.tar", first.hex())),
                    now,
                ),
                None => {
                    diff_paths.insert(l.diff_id, l.id);
                    let size = copier.size(&layer)?;
                    copier.total += size;
                    files += 1;
                    (DirContent::File { layer, size }, created)
                }
            };
            members.push(Member::Dir(Box::new(LayerDir {
                v1: l.clone(),
                mtime,
                content,
            })));
        }
        let top = v1_layers.last().map(|l| l.id.hex()).unwrap_or_default();
        let tags = tags_of(image);
        for t in &tags {
            if let Some(tag) = t.tag() {
                repositories
                    .entry(t.familiar_name())
                    .or_default()
                    .insert(tag.to_owned(), top.clone());
            }
        }
        let id = img.id();
        members.push(Member::File {
            name: format!("{}.json", id.hex()),
            data: Cow::Borrowed(img.raw_json()),
            mtime: created,
        });
        manifest.push(ManifestEntry {
            config: format!("{}.json", id.hex()),
            repo_tags: (!tags.is_empty())
                .then(|| tags.iter().map(|t| t.familiar_string()).collect()),
            layers: names,
            parent: parent_among(image, &saved),
            layer_sources: None,
            repo_digests: (!image.repo_digests.is_empty()).then(|| image.repo_digests.clone()),
        });
    }
    if !repositories.is_empty() {
        members.push(Member::File {
            name: LEGACY_REPOSITORIES_FILE.to_owned(),
            data: Cow::Owned(gojson::to_line(&repositories).map_err(json_err("repositories"))?),
            mtime: 0,
        });
    }
    members.push(Member::File {
        name: MANIFEST_FILE.to_owned(),
        data: Cow::Owned(gojson::to_line(&manifest).map_err(json_err("manifest.json"))?),
        mtime: 0,
    });
    // docker tars its export directory, walking it in name order.
    members.sort_by_cached_key(Member::name);
    copier.report();
    let io = WriteError::Output;
    for m in members {
        match m {
            Member::File { name, data, mtime } => {
                tar::write_file(out, &name, &data, mtime).map_err(io)?;
            }
            Member::Dir(d) => {
                let hex = d.v1.id.hex();
                tar::write_dir(out, &format!("{hex}/"), d.mtime).map_err(io)?;
                let version = format!("{hex}/VERSION");
                tar::write_file(out, &version, LEGACY_VERSION.as_bytes(), d.mtime).map_err(io)?;
                tar::write_file(out, &format!("{hex}/json"), &d.v1.json, d.mtime).map_err(io)?;
                let name = format!("{hex}/layer.tar");
                match &d.content {
                    DirContent::Symlink(target) => {
                        tar::write_symlink(out, &name, target, d.mtime).map_err(io)?;
                    }
                    DirContent::File { layer, size } => {
                        tar::write_header(
                            out,
                            &tar::Header {
                                name: &name,
                                mode: tar::MODE_FILE,
                                size: *size,
                                mtime: d.mtime,
                                typeflag: tar::TYPE_FILE,
                                linkname: "",
                            },
                        )
                        .map_err(io)?;
                        copier.copy(layer, *size, out)?;
                        tar::write_padding(out, *size).map_err(io)?;
                    }
                }
            }
        }
    }
    Ok(files)
}

/// A blob of an OCI layout.
struct Blob<'a> {
    digest: Digest,
    size: u64,
    mtime: i64,
    content: BlobContent<'a>,
}

enum BlobContent<'a> {
    Bytes(Cow<'a, [u8]>),
    Layer { layer: LayerRef, uncompressed: u64 },
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().name(), d.hex())
}

/// The platform of an image, from its config (`None` without architecture and OS).
fn platform_of(image: &Image) -> Option<Platform> {
    let c = image.config();
    if c.architecture.is_empty() || c.os.is_empty() {
        return None;
    }
    Some(Platform {
        architecture: c.architecture.clone(),
        os: c.os.clone(),
        os_version: (!c.os_version.is_empty()).then(|| c.os_version.clone()),
        os_features: c.os_features.clone().filter(|f| !f.is_empty()),
        variant: (!c.variant.is_empty()).then(|| c.variant.clone()),
    })
}

/// Compresses a layer without keeping the result: its digest and length.
fn measure(
    copier: &mut Copier<'_, '_>,
    layer: &LayerRef,
    uncompressed: u64,
    c: Compression,
) -> Result<(Digest, u64), WriteError> {
    let mut enc = Encoder::new(c, Digesting::new(io::sink())).map_err(WriteError::Output)?;
    copier.copy(layer, uncompressed, &mut enc)?;
    let (d, n, _) = enc.finish().map_err(WriteError::Output)?.finish();
    Ok((d, n))
}

/// An OCI image layout, with docker 25's `manifest.json`.
fn write_oci(
    out: &mut dyn Write,
    images: &[SaveImage],
    copier: &mut Copier<'_, '_>,
    compression: Compression,
) -> Result<usize, WriteError> {
    let saved: HashSet<Digest> = images.iter().map(|i| *i.image.id().digest()).collect();
    let layer_type = match compression {
        Compression::None => media_type::OCI_LAYER,
        Compression::Gzip => media_type::OCI_LAYER_GZIP,
        Compression::Zstd => media_type::OCI_LAYER_ZSTD,
    };
    // Every distinct layer, with its uncompressed length, in first-use order.
    let mut plans: Vec<(LayerRef, u64, i64)> = Vec::new();
    let mut by_diff: HashMap<DiffId, usize> = HashMap::new();
    for image in images {
        let diff_ids = image.image.diff_ids();
        if diff_ids.is_empty() {
            return Err(V1Error::NoLayers(*image.image.id().digest()).into());
        }
        let created = chtimes(image.image.created());
        for (diff_id, chain_id) in diff_ids.iter().zip(layer_store::chain_ids(diff_ids.iter())) {
            if by_diff.contains_key(diff_id) {
                continue;
            }
            let layer = LayerRef {
                chain_id,
                diff_id: *diff_id,
            };
            let size = copier.size(&layer)?;
            by_diff.insert(*diff_id, plans.len());
            plans.push((layer, size, created));
        }
    }
    let passes = if compression == Compression::None {
        1
    } else {
        2
    };
    copier.total = plans.iter().map(|p| p.1).sum::<u64>() * passes;
    copier.report();
    // The blob (digest, length) of each layer: compressed ones are measured first.
    let mut layer_blobs: Vec<(Digest, u64)> = Vec::with_capacity(plans.len());
    for (layer, size, _) in &plans {
        layer_blobs.push(match compression {
            Compression::None => (layer.diff_id.0, *size),
            c => measure(copier, layer, *size, c)?,
        });
    }
    let mut blobs: BTreeMap<String, Blob<'_>> = BTreeMap::new();
    for ((layer, size, mtime), (digest, blob_size)) in plans.iter().zip(&layer_blobs) {
        blobs.entry(digest.hex()).or_insert(Blob {
            digest: *digest,
            size: *blob_size,
            mtime: *mtime,
            content: BlobContent::Layer {
                layer: *layer,
                uncompressed: *size,
            },
        });
    }
    let mut index = Index {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.to_owned()),
        manifests: Vec::new(),
        annotations: None,
    };
    let mut docker_manifest = Vec::with_capacity(images.len());
    for image in images {
        let img = &image.image;
        let id = *img.id().digest();
        let raw = img.raw_json();
        blobs.entry(id.hex()).or_insert(Blob {
            digest: id,
            size: raw.len() as u64,
            mtime: chtimes(img.created()),
            content: BlobContent::Bytes(Cow::Borrowed(raw)),
        });
        let layer_descs: Vec<(Digest, u64)> = img
            .diff_ids()
            .iter()
            .filter_map(|d| by_diff.get(d).map(|&i| layer_blobs[i]))
            .collect();
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.to_owned()),
            config: Descriptor {
                media_type: media_type::OCI_CONFIG.to_owned(),
                digest: id.to_string(),
                size: raw.len() as u64,
                urls: None,
                annotations: None,
                platform: None,
            },
            layers: layer_descs
                .iter()
                .map(|(d, n)| Descriptor {
                    media_type: layer_type.to_owned(),
                    digest: d.to_string(),
                    size: *n,
                    urls: None,
                    annotations: None,
                    platform: None,
                })
                .collect(),
            annotations: None,
        };
        let manifest_json = gojson::to_vec(&manifest).map_err(json_err("an image manifest"))?;
        let manifest_digest = Digest::sha256(&manifest_json);
        let manifest_size = manifest_json.len() as u64;
        blobs.entry(manifest_digest.hex()).or_insert(Blob {
            digest: manifest_digest,
            size: manifest_size,
            mtime: 0,
            content: BlobContent::Bytes(Cow::Owned(manifest_json)),
        });
        let platform = platform_of(img);
        let descriptor = |annotations: BTreeMap<String, String>| Descriptor {
            media_type: media_type::OCI_MANIFEST.to_owned(),
            digest: manifest_digest.to_string(),
            size: manifest_size,
            urls: None,
            annotations: (!annotations.is_empty()).then_some(annotations),
            platform: platform.clone(),
        };
        let mut base = BTreeMap::new();
        if !image.repo_digests.is_empty() {
            base.insert(
                ANNOTATION_REPO_DIGESTS.to_owned(),
                image.repo_digests.join(","),
            );
        }
        let tags = tags_of(image);
        if tags.is_empty() {
            index.manifests.push(descriptor(base.clone()));
        }
        for t in &tags {
            let mut a = base.clone();
            a.insert(ANNOTATION_CONTAINERD_NAME.to_owned(), t.to_string());
            if let Some(tag) = t.tag() {
                a.insert(ANNOTATION_REF_NAME.to_owned(), tag.to_owned());
            }
            index.manifests.push(descriptor(a));
        }
        docker_manifest.push(ManifestEntry {
            config: blob_path(&id),
            repo_tags: (!tags.is_empty())
                .then(|| tags.iter().map(|t| t.familiar_string()).collect()),
            layers: layer_descs.iter().map(|(d, _)| blob_path(d)).collect(),
            parent: parent_among(image, &saved),
            layer_sources: None,
            repo_digests: (!image.repo_digests.is_empty()).then(|| image.repo_digests.clone()),
        });
    }
    let io = WriteError::Output;
    tar::write_dir(out, "blobs/", 0).map_err(io)?;
    tar::write_dir(out, "blobs/sha256/", 0).map_err(io)?;
    for blob in blobs.values() {
        let name = blob_path(&blob.digest);
        match &blob.content {
            BlobContent::Bytes(data) => {
                tar::write_file(out, &name, data, blob.mtime).map_err(io)?
            }
            BlobContent::Layer {
                layer,
                uncompressed,
            } => {
                tar::write_header(
                    out,
                    &tar::Header {
                        name: &name,
                        mode: tar::MODE_FILE,
                        size: blob.size,
                        mtime: blob.mtime,
                        typeflag: tar::TYPE_FILE,
                        linkname: "",
                    },
                )
                .map_err(io)?;
                if compression == Compression::None {
                    copier.copy(layer, *uncompressed, out)?;
                } else {
                    let mut enc =
                        Encoder::new(compression, Digesting::new(&mut *out)).map_err(io)?;
                    copier.copy(layer, *uncompressed, &mut enc)?;
                    let (d, n, _) = enc.finish().map_err(io)?.finish();
                    if d != blob.digest || n != blob.size {
                        return Err(WriteError::Unstable {
                            layer: *layer,
                            first: blob.digest,
                            first_size: blob.size,
                            second: d,
                            second_size: n,
                        });
                    }
                }
                tar::write_padding(out, blob.size).map_err(io)?;
            }
        }
    }
    let index_json = gojson::to_vec(&index).map_err(json_err("index.json"))?;
    tar::write_file(out, OCI_INDEX_FILE, &index_json, 0).map_err(io)?;
    let manifest_json = gojson::to_line(&docker_manifest).map_err(json_err("manifest.json"))?;
    tar::write_file(out, MANIFEST_FILE, &manifest_json, 0).map_err(io)?;
    let layout = gojson::to_vec(&OciLayout {
        image_layout_version: OCI_LAYOUT_VERSION.to_owned(),
    })
    .map_err(json_err("oci-layout"))?;
    tar::write_file(out, OCI_LAYOUT_FILE, &layout, 0).map_err(io)?;
    Ok(plans.len())
}
