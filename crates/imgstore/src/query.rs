//! dockerd's answers for `ls`, `inspect` and `history` (`Images`, `ImageInspect`,
//! `ImageHistory`): which images, with which references and fields. Rendering them as the
//! docker CLI does is the `render` module's job (which depends on this one, not the other
//! way round).

use std::collections::BTreeMap;

use digest_set::Digest;
use image_store::ContainerConfig;
use serde::Serialize;

use crate::error::{LookupError, QueryError};
use crate::reference::Reference;
use crate::store::{GO_ZERO_UNIX, Store};

/// A timestamp as nanoseconds since the epoch, for ordering (no overflow for any year).
fn instant(t: &image_store::time::Timestamp) -> i128 {
    i128::from(t.unix_secs()) * 1_000_000_000 + i128::from(t.nanos())
}

/// `docker image ls` filters.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `-a`: include untagged images that have children.
    pub all: bool,
    /// `--filter key=value`, in order.
    pub filters: Vec<(String, String)>,
}

/// One image as dockerd's `Images()` returns it (`types.ImageSummary`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The image ID.
    pub id: Digest,
    /// `created` in Unix seconds.
    pub created: i64,
    /// Chain size of the top layer.
    pub size: i64,
    /// Tag references (familiar). Empty, with `repo_digests`, for an image without
    /// references, for which dockerd answers `<none>:<none>` (see [`Summary::tags`]).
    pub repo_tags: Vec<String>,
    /// Digest references (familiar). Empty, with `repo_tags`, for an image without
    /// references, for which dockerd answers `<none>@<none>`.
    pub repo_digests: Vec<String>,
}

impl Summary {
    /// Whether the image has no references: dockerd lists it as `<none>:<none>` and
    /// `<none>@<none>`.
    pub fn is_untagged(&self) -> bool {
        self.repo_tags.is_empty() && self.repo_digests.is_empty()
    }

    /// `RepoTags` and `RepoDigests` as dockerd sends them: `<none>:<none>` and
    /// `<none>@<none>` for an image without references.
    pub fn tags(&self) -> (Vec<String>, Vec<String>) {
        if self.is_untagged() {
            (
                vec!["<none>:<none>".to_owned()],
                vec!["<none>@<none>".to_owned()],
            )
        } else {
            (self.repo_tags.clone(), self.repo_digests.clone())
        }
    }
}

fn filter_values<'a>(opts: &'a ListOptions, key: &str) -> Vec<&'a str> {
    opts.filters
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Why a filter was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// Unknown filter key.
    #[error("Invalid filter '{0}'")]
    Key(String),
    /// Bad value.
    #[error("Invalid filter '{0}={1}'")]
    Value(String, String),
    /// Bad reference pattern.
    #[error(transparent)]
    Pattern(#[from] crate::reference::PatternError),
    /// A `before=`/`since=` image that does not resolve (dockerd's `GetImage` error, e.g.
    /// `No such image: nonexist:latest`).
    #[error(transparent)]
    Image(Box<LookupError>),
}

/// dockerd 20.10's `Images()`: which images are listed, with what references, newest first.
pub fn list(store: &Store, opts: &ListOptions) -> Result<Vec<Summary>, FilterError> {
    for (k, _) in &opts.filters {
        if !matches!(
            k.as_str(),
            "dangling" | "reference" | "label" | "before" | "since"
        ) {
            return Err(FilterError::Key(k.clone()));
        }
    }
    let dangling = filter_values(opts, "dangling");
    let mut dangling_only = false;
    if !dangling.is_empty() {
        if dangling.contains(&"true") {
            dangling_only = true;
        } else if !dangling.contains(&"false") {
            return Err(FilterError::Value(
                "dangling".to_owned(),
                dangling[0].to_owned(),
            ));
        }
    }
    let patterns = filter_values(opts, "reference");
    let labels = filter_values(opts, "label");
    // dockerd resolves every `before`/`since` value (failing on the first that does not
    // resolve) and keeps the last.
    let created_of = |key: &str| -> Result<Option<i128>, FilterError> {
        let mut created = None;
        for arg in filter_values(opts, key) {
            let id = store
                .resolve(arg)
                .map_err(|e| FilterError::Image(Box::new(e)))?;
            let entry = store.image(&id).ok_or_else(|| {
                FilterError::Image(Box::new(LookupError::NoSuchImage(arg.to_owned())))
            })?;
            created = Some(entry.created.map(|t| instant(&t)).unwrap_or(i128::MIN));
        }
        Ok(created)
    };
    let before = created_of("before")?;
    let since_f = created_of("since")?;
    let ids = store.image_ids();
    let mut out = Vec::with_capacity(ids.len());
    'images: for id in &ids {
        let Some(e) = store.image(id) else {
            continue;
        };
        if dangling_only && !store.children(id).is_empty() {
            continue;
        }
        let created_ns = e.created.map(|t| instant(&t)).unwrap_or(i128::MIN);
        if let Some(b) = before
            && created_ns >= b
        {
            continue;
        }
        if let Some(s) = since_f
            && created_ns <= s
        {
            continue;
        }
        if !labels.is_empty() {
            let image = match store.config(id) {
                Ok(image) => image,
                Err(err) => {
                    tracing::warn!(image = %id, error = %err, "cannot read config for the label filter; leaving the image out");
                    continue;
                }
            };
            let Some(config) = &image.config().config else {
                continue;
            };
            let empty = BTreeMap::new();
            let have = config.labels.as_ref().unwrap_or(&empty);
            for l in &labels {
                let ok = match l.split_once('=') {
                    Some((k, v)) => have.get(k).is_some_and(|x| x == v),
                    None => have.contains_key(*l),
                };
                if !ok {
                    continue 'images;
                }
            }
        }
        let mut tags = Vec::new();
        let mut digests = Vec::new();
        for r in store.refs().references(id) {
            if !patterns.is_empty() {
                let mut found = false;
                for p in &patterns {
                    if r.familiar_match(p)? {
                        found = true;
                        break;
                    }
                }
                if !found {
                    continue;
                }
            }
            if r.is_canonical() {
                digests.push(r.familiar_string());
            }
            if r.tag().is_some() {
                if dangling_only {
                    continue 'images;
                }
                tags.push(r.familiar_string());
            }
        }
        // An untagged image, unless left out here, is answered `<none>:<none>` and
        // `<none>@<none>` by dockerd; its summary keeps both lists empty (no allocation for
        // each of many untagged images).
        if tags.is_empty()
            && digests.is_empty()
            && ((!opts.all && !store.children(id).is_empty())
                || (!dangling.is_empty() && !dangling_only)
                || !patterns.is_empty())
        {
            continue;
        }
        out.push(Summary {
            id: *id,
            created: e.created_unix(),
            size: e.size,
            repo_tags: tags,
            repo_digests: digests,
        });
    }
    drop(ids);
    out.sort_unstable_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// dockerd's `types.ImageInspect`, serialized in dockerd's field order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Inspect {
    #[serde(rename = "Id")]
    pub(crate) id: String,
    pub(crate) repo_tags: Vec<String>,
    pub(crate) repo_digests: Vec<String>,
    pub(crate) parent: String,
    pub(crate) comment: String,
    pub(crate) created: String,
    pub(crate) container: String,
    pub(crate) container_config: ContainerConfig,
    pub(crate) docker_version: String,
    pub(crate) author: String,
    pub(crate) config: Option<ContainerConfig>,
    pub(crate) architecture: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) variant: String,
    pub(crate) os: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) os_version: String,
    pub(crate) size: i64,
    pub(crate) virtual_size: i64,
    pub(crate) graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    pub(crate) root_fs: RootFsJson,
    pub(crate) metadata: MetadataJson,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GraphDriver {
    pub(crate) data: Option<BTreeMap<String, String>>,
    pub(crate) name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RootFsJson {
    #[serde(rename = "Type")]
    pub(crate) fs_type: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) layers: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct MetadataJson {
    pub(crate) last_tag_time: String,
}

/// dockerd's `ImageInspect` for one image.
pub fn inspect(store: &Store, id: &Digest) -> Result<Inspect, QueryError> {
    let e = store
        .image(id)
        .ok_or_else(|| LookupError::NoSuchImage(id.to_string()))?;
    let image = store.config(id)?;
    let cfg = image.config();
    let mut tags = Vec::new();
    let mut digests = Vec::new();
    for r in store.refs().references(id) {
        if r.tag().is_some() {
            tags.push(r.familiar_string());
        } else if r.is_canonical() {
            digests.push(r.familiar_string());
        }
    }
    let rootfs = cfg.rootfs.as_ref();
    let os = if cfg.os.is_empty() {
        "linux"
    } else {
        cfg.os.as_str()
    };
    let j = Inspect {
        id: id.to_string(),
        repo_tags: tags,
        repo_digests: digests,
        parent: store.parent_link(id).unwrap_or_default(),
        comment: cfg.comment.clone(),
        created: cfg
            .created
            .map(|t| t.to_string())
            .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_owned()),
        container: cfg.container.clone(),
        container_config: cfg.container_config.clone(),
        docker_version: cfg.docker_version.clone(),
        author: cfg.author.clone(),
        config: cfg.config.clone(),
        architecture: cfg.architecture.clone(),
        variant: cfg.variant.clone(),
        os: os.to_owned(),
        os_version: cfg.os_version.clone(),
        size: e.size,
        virtual_size: e.size,
        graph_driver: GraphDriver {
            data: graph_driver_data(store, e.chain_id.as_ref()),
            name: store.data_root().driver().to_owned(),
        },
        root_fs: RootFsJson {
            fs_type: rootfs.map(|r| r.fs_type.clone()).unwrap_or_default(),
            layers: rootfs.and_then(|r| r.diff_ids.clone()).unwrap_or_default(),
        },
        metadata: MetadataJson {
            last_tag_time: store
                .last_updated(id)
                .ok()
                .flatten()
                .map(|t| t.to_string())
                .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_owned()),
        },
    };
    Ok(j)
}

/// The driver's metadata for a layer: `null` for vfs; overlay2's directories.
fn graph_driver_data(store: &Store, chain: Option<&Digest>) -> Option<BTreeMap<String, String>> {
    let layer = store.layer_store().layer(&layer_store::ChainId(*chain?))?;
    store.driver_metadata(&layer.cache_id)
}

/// One entry of dockerd's `ImageHistory`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryItem {
    /// The image ID for entries that are images of the parent chain, else `<missing>`.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    /// `created_by`.
    pub created_by: String,
    /// The layer's own size (0 for empty layers).
    pub size: i64,
    /// `comment`.
    pub comment: String,
    /// Tags of that image.
    pub tags: Vec<String>,
}

/// dockerd's `ImageHistory`: newest first, image IDs filled in along the parent chain.
pub fn history(store: &Store, id: &Digest) -> Result<Vec<HistoryItem>, QueryError> {
    let image = store.config(id)?;
    let cfg = image.config();
    let chain = store.image_chain(&image);
    let mut items = Vec::new();
    let mut layer = 0usize;
    for h in &cfg.history {
        let mut size = 0;
        if !h.empty_layer {
            let c = chain.get(layer).ok_or(QueryError::TooManyLayers)?;
            size = store
                .layer_store()
                .layer(&layer_store::ChainId(*c))
                .ok_or(QueryError::LayerMissing(*c))?
                .diff_size as i64;
            layer += 1;
        }
        items.push(HistoryItem {
            id: "<missing>".to_owned(),
            created: h.created.map(|t| t.unix_secs()).unwrap_or(GO_ZERO_UNIX),
            created_by: h.created_by.clone(),
            size,
            comment: h.comment.clone(),
            tags: Vec::new(),
        });
    }
    items.reverse();
    let mut current = Some(*id);
    for item in &mut items {
        let Some(cur) = current else { break };
        item.id = cur.to_string();
        item.tags = store
            .refs()
            .references(&cur)
            .iter()
            .filter(|r| r.tag().is_some())
            .map(Reference::familiar_string)
            .collect();
        current = store
            .image(&cur)
            .and_then(|e| e.parent_id())
            .filter(|p| store.contains(p));
    }
    Ok(items)
}
