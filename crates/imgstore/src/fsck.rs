//! `fsck`: everything that is wrong with a data root, explained, without changing anything.

use std::collections::HashSet;
use std::path::PathBuf;

use digest_set::{Algorithm, Digest};
use serde::Serialize;

use layer_store::ChainId;

use crate::store::Store;

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// A stable keyword: `config-unreadable`, `config-verify`, `config-invalid`, `image-os`,
    /// `image-layer-missing`, `layer-bad`, `parent-dangling`, `metadata-orphan`,
    /// `metadata-bad`, `parent-cycle`, `container-image-missing` (a note), `reference-missing`,
    /// `reference-invalid`, `layer-orphan` (a note: unreferenced, not damage), `leftover`,
    /// `driver-content-missing`, `driver-link`, `driver-lower`, `driver-unnamed` (a note, not
    /// damage), `driver-unreadable`. [`Finding::is_damage`] tells damage from notes.
    pub kind: &'static str,
    /// The ID concerned (`sha256:<hex>`), or empty.
    pub id: String,
    /// The file or directory concerned (serialized as the text output shows it: bytes that
    /// are not UTF-8 become U+FFFD).
    #[serde(serialize_with = "serialize_path_lossy")]
    pub path: PathBuf,
    /// What is wrong, in words.
    pub message: String,
}

fn serialize_path_lossy<S: serde::Serializer>(
    path: &std::path::Path,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = self
            .id
            .split_once(':')
            .map(|(_, h)| h.chars().take(12).collect::<String>())
            .unwrap_or_default();
        if short.is_empty() {
            write!(
                f,
                "{}: {} ({})",
                self.kind,
                self.message,
                self.path.display()
            )
        } else {
            write!(
                f,
                "{} {short}: {} ({})",
                self.kind,
                self.message,
                self.path.display()
            )
        }
    }
}

/// `<hex>` of a sha256 image ID file, for messages.
fn content_file(store: &Store, id: &Digest) -> PathBuf {
    store
        .data_root()
        .imagedb_dir()
        .join("content")
        .join("sha256")
        .join(id.hex())
}

/// Why an image was not restored, from the image store's verdict, as `(kind, message)`.
/// For a config that could not be read, the file is hashed again only to say what it
/// hashes to.
fn skipped_image(
    store: &Store,
    id: &Digest,
    reason: &image_store::SkipReason,
) -> (&'static str, String) {
    use image_store::SkipReason as R;
    match reason {
        R::Unreadable(e) => {
            // Read again (capped, never through a link) only to say what it hashes to.
            let content = content_file(store, id);
            let actual = content
                .parent()
                .and_then(|dir| durable_fs::Dir::open_nofollow(dir).ok())
                .and_then(|d| d.read(id.hex(), imagedb_fs::MAX_CONFIG_SIZE).ok().flatten())
                .map(|b| Digest::sha256(&b));
            match actual {
                Some(actual) if actual != *id => (
                    "config-verify",
                    format!(
                        "image config fails verification: its content hashes to {actual}; dockerd does not restore this image"
                    ),
                ),
                _ => (
                    "config-unreadable",
                    format!(
                        "image config cannot be read: {e}; dockerd does not restore this image"
                    ),
                ),
            }
        }
        R::Invalid(e) => (
            "config-invalid",
            format!("image config does not parse: {e}; dockerd does not restore this image"),
        ),
        R::UnsupportedOs(os) => (
            "image-os",
            format!("image OS {os:?} is not supported; dockerd does not restore this image"),
        ),
        R::LayerMissing(c) => (
            "image-layer-missing",
            format!(
                "top layer {c} is not loaded; dockerd does not restore this image (\"not restoring image\")"
            ),
        ),
        other => (
            "config-invalid",
            format!("{other}; dockerd does not restore this image"),
        ),
    }
}

/// Why a layer did not load, from the layer store's verdict, in words naming the file.
fn skipped_layer(l: &layer_store::SkippedLayer) -> String {
    use layer_store::SkipReason as R;
    let file = |f: &str| l.path.join(f).display().to_string();
    match &l.reason {
        R::MissingFile { file: f } => format!("{} is missing", file(f)),
        R::Unreadable { file: f, message } => format!("read {}: {message}", file(f)),
        R::BadDigest {
            file: f,
            value,
            message,
        } => format!("{} holds {value:?}, not a digest: {message}", file(f)),
        R::BadSize { value } => format!("{} holds {value:?}, not a decimal number", file("size")),
        R::BadCacheId { value } => {
            format!("{} holds {value:?}, not a valid cache ID", file("cache-id"))
        }
        R::MissingParent { parent } => {
            format!("its parent layer {} does not exist", parent.0.short())
        }
        R::BrokenParent { parent } => format!("its parent layer {} did not load", parent.0.short()),
        R::ParentCycle { parent } => {
            format!("its parent chain loops through layer {}", parent.0.short())
        }
        other => other.to_string(),
    }
}

/// Checks the store and returns every finding, sorted by kind then path.
pub fn check(store: &Store) -> Vec<Finding> {
    let mut out = Vec::new();
    let imagedb = store.data_root().imagedb_dir();
    let meta = imagedb.join("metadata").join("sha256");
    let images = store.images();
    for s in &store.image_restore().skipped {
        let (kind, message) = skipped_image(store, &s.id.0, &s.reason);
        out.push(Finding {
            kind,
            id: s.id.to_string(),
            path: content_file(store, &s.id.0),
            message,
        });
    }
    for b in &store.layer_restore().skipped {
        out.push(Finding {
            kind: "layer-bad",
            id: b.chain_id.to_string(),
            path: b.path.clone(),
            message: format!("layer does not load: {}", skipped_layer(b)),
        });
    }
    for d in &store.image_restore().dangling_parents {
        // Links the restore could not follow; those whose child was deleted since are gone.
        if !images.contains_key(&d.child.0) {
            continue;
        }
        let message = match d.parent {
            Some(p) => format!("parent link names {p}, which is not a restored image"),
            None => format!("parent link holds {:?}, which is not an image ID", d.value),
        };
        out.push(Finding {
            kind: "parent-dangling",
            id: d.child.to_string(),
            path: meta.join(d.child.hex()).join("parent"),
            message,
        });
    }
    for id in images.keys() {
        let lu = meta.join(id.hex()).join("lastUpdated");
        if let Err(text) = store.last_updated(id) {
            out.push(Finding {
                kind: "metadata-bad",
                id: id.to_string(),
                path: lu,
                message: format!(
                    "lastUpdated holds {text:?}, not an RFC 3339 time (dockerd's inspect fails on it)"
                ),
            });
        }
    }
    // Parent links that loop (a restored image that is its own ancestor).
    let mut state: std::collections::HashMap<Digest, u8> = std::collections::HashMap::new();
    for start in images.keys() {
        let mut path = Vec::new();
        let mut cur = Some(*start);
        while let Some(c) = cur {
            match state.get(&c) {
                Some(2) => break,
                Some(1) => {
                    // `c` is on the current path: everything from it on is a cycle.
                    let from = path.iter().position(|p| *p == c).unwrap_or(0);
                    let members: Vec<String> = path[from..].iter().map(Digest::short).collect();
                    out.push(Finding {
                        kind: "parent-cycle",
                        id: c.to_string(),
                        path: meta.join(c.hex()).join("parent"),
                        message: format!(
                            "parent links loop: {} -> {}",
                            members.join(" -> "),
                            c.short()
                        ),
                    });
                    break;
                }
                _ => {}
            }
            state.insert(c, 1);
            path.push(c);
            cur = images
                .get(&c)
                .and_then(|e| e.parent_id())
                .filter(|p| images.contains_key(p));
        }
        for p in path {
            state.insert(p, 2);
        }
    }
    // Metadata directories without a config.
    let known: HashSet<Digest> = images
        .keys()
        .copied()
        .chain(store.image_restore().skipped.iter().map(|s| s.id.0))
        .collect();
    if let Ok(entries) = std::fs::read_dir(&meta) {
        let mut names: Vec<_> = entries.filter_map(Result::ok).collect();
        names.sort_by_key(|e| e.file_name());
        for entry in names {
            let name = entry.file_name().to_string_lossy().into_owned();
            match Digest::from_hex(Algorithm::Sha256, &name) {
                Ok(d) if known.contains(&d) => {}
                Ok(d) => out.push(Finding {
                    kind: "metadata-orphan",
                    id: d.to_string(),
                    path: entry.path(),
                    message: "metadata for an image whose config does not exist".to_owned(),
                }),
                Err(_) => out.push(Finding {
                    kind: "leftover",
                    id: String::new(),
                    path: entry.path(),
                    message: format!("{name:?} in imagedb metadata is not an image ID"),
                }),
            }
        }
    }
    let repos = store.data_root().repositories_json();
    for (_, r, id) in store.refs().entries() {
        if crate::reference::Reference::parse_normalized(r).is_err() {
            out.push(Finding {
                kind: "reference-invalid",
                id: String::new(),
                path: repos.clone(),
                message: format!("reference {r:?} is not a valid reference; dockerd ignores it"),
            });
            continue;
        }
        match id.parse::<Digest>() {
            Ok(d) if images.contains_key(&d) => {}
            Ok(d) => out.push(Finding {
                kind: "reference-missing",
                id: d.to_string(),
                path: repos.clone(),
                message: format!("reference {r} points to {d}, which is not a restored image"),
            }),
            Err(_) => out.push(Finding {
                kind: "reference-invalid",
                id: String::new(),
                path: repos.clone(),
                message: format!("reference {r} points to {id:?}, which is not an image ID"),
            }),
        }
    }
    // Containers whose image is gone.
    for c in crate::ops::read_containers(store.data_root().root()) {
        if !images.contains_key(&c.image) {
            out.push(Finding {
                kind: "container-image-missing",
                id: c.image.to_string(),
                path: store
                    .data_root()
                    .root()
                    .join("containers")
                    .join(&c.id)
                    .join("config.v2.json"),
                message: format!(
                    "container {} uses image {}, which is not a restored image",
                    c.id.chars().take(12).collect::<String>(),
                    c.image
                ),
            });
        }
    }
    let layers = store.layer_store();
    let orphans = unreferenced_layers(store);
    for c in orphans {
        if let Some(l) = layers.layer(&c) {
            out.push(Finding {
                kind: "layer-orphan",
                id: c.to_string(),
                path: layers.layer_dir(&c),
                message: format!(
                    "unreferenced: no image or container uses this layer (cache-id {}, {} bytes); a load that needs it again uses it, `imgstore prune --layers` removes it",
                    l.cache_id, l.diff_size
                ),
            });
        }
    }
    driver_findings(store, &mut out);
    partial_findings(store, &mut out);
    // Leftovers the layer store found (interrupted writes and deletions).
    for l in &store.layer_restore().leftovers {
        let (name, what) = match l.kind {
            layer_store::LeftoverKind::Staging => (
                format!("tmp/{}", file_name(&l.path)),
                "a write was interrupted",
            ),
            layer_store::LeftoverKind::Removing => {
                (file_name(&l.path), "a layer deletion was interrupted")
            }
        };
        out.push(Finding {
            kind: "leftover",
            id: String::new(),
            path: l.path.clone(),
            message: format!("leftover entry {name:?}: {what}"),
        });
    }
    // Names the stores skip without a word: temp files among the configs, anything else
    // in the layerdb.
    let reported: HashSet<PathBuf> = store
        .layer_restore()
        .leftovers
        .iter()
        .map(|l| l.path.clone())
        .collect();
    for (path, name) in stray_names(store) {
        if reported.contains(&path) {
            continue;
        }
        let what = if name.contains(".tmp-") || name.starts_with("tmp/") {
            "a write was interrupted"
        } else {
            "not something dockerd writes here"
        };
        out.push(Finding {
            kind: "leftover",
            id: String::new(),
            path,
            message: format!("leftover entry {name:?}: {what}"),
        });
    }
    out.sort_by(|a, b| a.kind.cmp(b.kind).then(a.path.cmp(&b.path)));
    out
}

/// The committed layers no image or container uses: those the layer store counts no
/// reference on and then, as a release would cascade, parents whose every reference is
/// such a layer. Children come before their parents.
pub(crate) fn unreferenced_layers(store: &Store) -> Vec<ChainId> {
    let layers = store.layer_store();
    let all = layers.layers();
    let mut refs: std::collections::HashMap<ChainId, usize> = all
        .iter()
        .map(|l| (l.chain_id, layers.ref_count(&l.chain_id).unwrap_or(0)))
        .collect();
    let mut orphans: Vec<ChainId> = all
        .iter()
        .map(|l| l.chain_id)
        .filter(|c| refs.get(c) == Some(&0))
        .collect();
    let mut i = 0;
    while let Some(c) = orphans.get(i).copied() {
        i += 1;
        if let Some(p) = layers.layer(&c).and_then(|l| l.parent)
            && let Some(n) = refs.get_mut(&p)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                orphans.push(p);
            }
        }
    }
    orphans
}

/// What the storage driver's directory holds against the layerdb: missing content, broken
/// overlay2 links and `lower` entries, interrupted writes, and directories nothing names
/// (reported, never damage: BuildKit keeps content there).
/// The cache IDs a driver's directory is checked against: those of the loaded layers, and
/// the others no one may call unnamed (mounts, layers that failed to load, leftovers).
pub(crate) fn driver_names(store: &Store) -> (Vec<String>, Vec<String>) {
    let used: Vec<String> = store
        .layer_store()
        .layers()
        .into_iter()
        .map(|l| l.cache_id)
        .collect();
    let report = store.layer_restore();
    let mut others: Vec<String> = report.mount_cache_ids.clone();
    let read_cache_id = |dir: &std::path::Path| {
        durable_fs::Dir::open_nofollow(dir)
            .ok()
            .and_then(|d| d.read("cache-id", 4096).ok().flatten())
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
    };
    others.extend(report.skipped.iter().filter_map(|s| read_cache_id(&s.path)));
    others.extend(
        report
            .leftovers
            .iter()
            .filter_map(|l| read_cache_id(&l.path)),
    );
    (used, others)
}

fn driver_findings(store: &Store, out: &mut Vec<Finding>) {
    let Some(driver) = store.reading_driver() else {
        return;
    };
    let layers = store.layer_store().layers();
    let (used, others) = driver_names(store);
    let used: Vec<&str> = used.iter().map(String::as_str).collect();
    let others: Vec<&str> = others.iter().map(String::as_str).collect();
    let issues = match driver.check_content(&used, &others) {
        Ok(i) => i,
        Err(e) => {
            out.push(Finding {
                kind: "driver-unreadable",
                id: String::new(),
                path: store.data_root().driver_dir(),
                message: format!(
                    "the {} driver's directory cannot be checked: {e}",
                    driver.name()
                ),
            });
            return;
        }
    };
    let chain_of = |cache_id: &str| {
        layers
            .iter()
            .find(|l| l.cache_id == cache_id)
            .map(|l| l.chain_id.to_string())
            .unwrap_or_default()
    };
    for issue in issues {
        use layer_store::ContentIssue as I;
        let (kind, id, path, message) = match issue {
            I::Missing { cache_id, path } => (
                "driver-content-missing",
                chain_of(&cache_id),
                path,
                format!("the layer's content (cache-id {cache_id}) is missing: containers cannot run from it"),
            ),
            I::BadLink { cache_id, path, why } => (
                "driver-link",
                chain_of(&cache_id),
                path,
                format!("the layer's short link is broken ({why}): images above it cannot be mounted"),
            ),
            I::LowerMissing { cache_id, path, entry } => (
                "driver-lower",
                chain_of(&cache_id),
                path,
                format!("lower names {entry}, which leads to no layer: the layer cannot be mounted"),
            ),
            I::DanglingLink { path, target } => (
                "driver-link",
                String::new(),
                path,
                format!("short link to {target}, which does not exist"),
            ),
            I::InFlight { path, cache_id } => (
                "leftover",
                String::new(),
                path,
                format!("leftover layer content for cache-id {cache_id}: a write was interrupted"),
            ),
            I::Unnamed { path } => (
                "driver-unnamed",
                String::new(),
                path,
                "no layer or container names this directory; it may belong to another user of the driver (BuildKit): not ours to remove".to_owned(),
            ),
            other => (
                "driver-content",
                String::new(),
                store.data_root().driver_dir(),
                format!("{other:?}"),
            ),
        };
        out.push(Finding {
            kind,
            id,
            path,
            message,
        });
    }
}

impl Finding {
    /// Whether this finding is damage (`fsck` exits 1) rather than a note: a directory of
    /// the driver nothing names may be another program's; a committed layer no image uses
    /// is what a killed load leaves, and a load run again uses it (`prune --layers` removes
    /// it); a container whose image was removed with `rm -f` still runs from its own layer
    /// (dockerd allows it); a partial download is what a killed pull leaves for the next
    /// one to continue (`fsck --repair` removes it), and something else in its directory is
    /// only ours to report. Those are only reported.
    pub fn is_damage(&self) -> bool {
        !matches!(
            self.kind,
            "driver-unnamed"
                | "layer-orphan"
                | "container-image-missing"
                | "pull-partial"
                | "pull-foreign"
        )
    }
}

/// The partial downloads a killed `pull` left (notes, with their total size), and what
/// else is in their directory.
fn partial_findings(store: &Store, out: &mut Vec<Finding>) {
    let scan = crate::partials::scan(&store.data_root().image_dir());
    if let Some(problem) = &scan.problem {
        out.push(Finding {
            kind: "pull-foreign",
            id: String::new(),
            path: scan.dir.clone(),
            message: format!(
                "the directory of pull's partial downloads cannot be used: {problem}; not touched"
            ),
        });
    }
    let total: u64 = scan.partials.iter().map(|p| p.2).sum();
    let count = scan.partials.len();
    for (name, blob, size) in &scan.partials {
        out.push(Finding {
            kind: "pull-partial",
            id: blob.to_string(),
            path: scan.dir.join(name),
            message: format!(
                "partial download of blob {blob}: {size} bytes (of {count} partial downloads, {total} bytes in all); a pull run again continues it, `fsck --repair` removes it"
            ),
        });
    }
    for (name, kind) in &scan.foreign {
        out.push(Finding {
            kind: "pull-foreign",
            id: String::new(),
            path: scan.dir.join(name),
            message: format!(
                "{:?} is {}, not a partial download pull writes; not touched",
                name.to_string_lossy(),
                kind.describe()
            ),
        });
    }
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Sorted `(path, name)` of the entries of `dir`, with whether each is a directory; empty
/// when it cannot be listed or is a symbolic link (never followed).
fn list(dir: &std::path::Path) -> Vec<(PathBuf, String, bool)> {
    if std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| {
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            (
                e.path(),
                e.file_name().to_string_lossy().into_owned(),
                is_dir,
            )
        })
        .collect();
    out.sort();
    out
}

/// Entries of `imagedb/content/sha256` that are not image IDs, entries of `layerdb/sha256`
/// that are not layer directories, anything in `layerdb/tmp`, and unknown `layerdb` entries.
fn stray_names(store: &Store) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let content = store
        .data_root()
        .imagedb_dir()
        .join("content")
        .join("sha256");
    for (path, name, _) in list(&content) {
        if Digest::from_hex(Algorithm::Sha256, &name).is_err() {
            out.push((path, name));
        }
    }
    // Temp files of interrupted writes of repositories.json and of image metadata.
    for (path, name, is_dir) in list(&store.data_root().image_dir()) {
        if !is_dir && name.starts_with(durable_fs::TEMP_PREFIX) {
            out.push((path, name));
        }
    }
    let metadata = store
        .data_root()
        .imagedb_dir()
        .join("metadata")
        .join("sha256");
    for (dir, id, is_dir) in list(&metadata) {
        if !is_dir {
            continue;
        }
        for (path, name, _) in list(&dir) {
            if name.starts_with(durable_fs::TEMP_PREFIX) {
                out.push((path, format!("{id}/{name}")));
            }
        }
    }
    let layerdb = store.data_root().layerdb_dir();
    for (path, name, is_dir) in list(&layerdb.join("sha256")) {
        if !is_dir || Digest::from_hex(Algorithm::Sha256, &name).is_err() {
            out.push((path, name));
        }
    }
    for (path, name, _) in list(&layerdb.join("tmp")) {
        out.push((path, format!("tmp/{name}")));
    }
    for (path, name, is_dir) in list(&layerdb) {
        if !matches!(name.as_str(), "sha256" | "tmp" | "mounts") || !is_dir {
            out.push((path, name));
        }
    }
    out
}

/// What is wrong with a layer's content, found by reassembling its tar stream.
enum ContentProblem {
    /// A member's file cannot be opened (`path`: the file, `why`).
    FileMissing { path: PathBuf, why: String },
    /// `tar-split.json.gz` cannot be opened or decoded.
    TarSplit { path: PathBuf, why: String },
    /// The reassembled stream is not the layer's (a file changed, got shorter or longer).
    Changed { why: String },
}

/// `fsck --content`: reassembles every committed layer's tar stream from its
/// `tar-split.json.gz` and the driver's files, as `save` and `push` would, into a sink that
/// keeps nothing, on a pool of threads (each layer once, however many images share it), and
/// reports each layer whose stream is not its diff ID's, with the images that use it (an
/// image uses every layer of its chain). Reads only.
pub fn check_content(store: &Store) -> Vec<Finding> {
    use rayon::prelude::*;
    let layers = store.layer_store();
    if store.reading_driver().is_none() {
        return vec![Finding {
            kind: "driver-unreadable",
            id: String::new(),
            path: store.data_root().driver_dir(),
            message: format!(
                "layer content cannot be checked: imgstore does not read the files of the {} driver",
                store.data_root().driver()
            ),
        }];
    }
    let all = layers.layers();
    let damaged: Vec<(layer_store::LayerInfo, ContentProblem)> = all
        .into_par_iter()
        .filter_map(|info| {
            let problem = layer_content(layers, &info)?;
            Some((info, problem))
        })
        .collect();
    if damaged.is_empty() {
        return Vec::new();
    }
    let users = layer_users(store);
    let mut out: Vec<Finding> = damaged
        .into_iter()
        .map(|(info, problem)| {
            let used_by = match users.get(&info.chain_id) {
                Some(images) if !images.is_empty() => {
                    format!("; used by {}", images.join(", "))
                }
                _ => "; no image uses it".to_owned(),
            };
            let what = format!(
                "content of layer {} (diff ID {}, cache-id {})",
                info.chain_id, info.diff_id, info.cache_id
            );
            let (kind, path, message) = match problem {
                ContentProblem::FileMissing { path, why } => (
                    "layer-content-missing",
                    path,
                    format!("{what} has lost a file: {why}; save and push of its images fail{used_by}"),
                ),
                ContentProblem::TarSplit { path, why } => (
                    "layer-tar-split",
                    path,
                    format!("{what}: its tar-split.json.gz is unreadable: {why}; save and push of its images fail{used_by}"),
                ),
                ContentProblem::Changed { why } => (
                    "layer-content-changed",
                    layers.layer_dir(&info.chain_id),
                    format!("{what} was changed, its tar stream does not match the diff ID: {why}; save and push of its images fail{used_by}"),
                ),
            };
            Finding {
                kind,
                id: info.chain_id.to_string(),
                path,
                message,
            }
        })
        .collect();
    out.sort_by(|a, b| a.kind.cmp(b.kind).then(a.path.cmp(&b.path)));
    out
}

/// For each layer, the restored images whose chain holds it, as `<short id> (<tags>)`,
/// sorted.
fn layer_users(store: &Store) -> std::collections::HashMap<ChainId, Vec<String>> {
    let layers = store.layer_store();
    let mut users: std::collections::HashMap<ChainId, Vec<String>> =
        std::collections::HashMap::new();
    for (id, entry) in store.images() {
        let (tags, _) = store.repo_tags_digests(&id);
        let name = if tags.is_empty() {
            id.short()
        } else {
            format!("{} ({})", id.short(), tags.join(" "))
        };
        let mut cur = entry.chain_id.map(ChainId);
        // A chain is at most MAX_LAYER_DEPTH long; the bound guards against a loop.
        let mut steps = 0;
        while let Some(c) = cur {
            if steps > layer_store::MAX_LAYER_DEPTH {
                break;
            }
            steps += 1;
            users.entry(c).or_default().push(name.clone());
            cur = layers.layer(&c).and_then(|l| l.parent);
        }
    }
    for v in users.values_mut() {
        v.sort();
        v.dedup();
    }
    users
}

/// Streams one layer's reassembled tar stream into a sink; `None` when it is intact.
fn layer_content(
    layers: &layer_store::LayerStore,
    info: &layer_store::LayerInfo,
) -> Option<ContentProblem> {
    let dir = layers.layer_dir(&info.chain_id);
    let tar_split = dir.join(layer_store::TAR_SPLIT_FILE);
    let opened =
        durable_fs::Dir::open_nofollow(&dir).and_then(|d| d.open_file(layer_store::TAR_SPLIT_FILE));
    let file = match opened {
        Ok(Some((f, _))) => f,
        Ok(None) => {
            return Some(ContentProblem::TarSplit {
                path: tar_split,
                why: "it is missing".to_owned(),
            });
        }
        Err(e) => {
            return Some(ContentProblem::TarSplit {
                path: tar_split,
                why: e.to_string(),
            });
        }
    };
    let driver = layers.driver();
    let cache_id = info.cache_id.clone();
    let missing: std::cell::RefCell<Option<(PathBuf, String)>> = std::cell::RefCell::new(None);
    let result = {
        let open: layer_store::content::FileSource<'_> =
            Box::new(|name: &[u8]| match driver.open_file(&cache_id, name) {
                Ok(r) => Ok(r as Box<dyn std::io::Read>),
                Err(e) => {
                    let (path, why) = match &e {
                        layer_store::DriverError::Io { path, source } => {
                            (path.clone(), source.to_string())
                        }
                        other => (
                            PathBuf::from(String::from_utf8_lossy(name).into_owned()),
                            other.to_string(),
                        ),
                    };
                    *missing.borrow_mut() = Some((path, why));
                    Err(std::io::Error::other(e))
                }
            });
        match layer_store::TarStream::new(file, info.diff_id, open) {
            Ok(stream) => {
                let mut stream = stream.with_file_checksums(true);
                std::io::copy(&mut stream, &mut std::io::sink()).map(|_| ())
            }
            Err(e) => Err(e),
        }
    };
    let err = result.err()?;
    if let Some((path, why)) = missing.into_inner() {
        return Some(ContentProblem::FileMissing { path, why });
    }
    // The stream failed on its metadata or on the content: reading the tar-split alone
    // tells which.
    if let Err(e) = layers.tar_stream_size(&info.chain_id) {
        return Some(ContentProblem::TarSplit {
            path: tar_split,
            why: match e {
                layer_store::TarStreamError::Invalid { source, .. } => source.to_string(),
                other => other.to_string(),
            },
        });
    }
    Some(ContentProblem::Changed {
        why: err.to_string(),
    })
}
