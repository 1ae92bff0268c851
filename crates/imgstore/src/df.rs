//! `df`: the images part of `docker system df` (dockerd 20.10's `SystemDiskUsage`: its
//! `Images(all=false, withExtraAttrs=true)` and `LayerDiskUsage`), printed as the docker
//! 20.10 CLI prints it.
//!
//! The images are those `docker images` lists (tagged ones, and untagged ones without
//! children); each gets the number of containers created from it and its shared size (its
//! layers that another listed image also uses). The total size counts each layer those
//! images use once (a layer no image uses is left out, as dockerd's "leaked image layer");
//! what is reclaimable is the total minus what the images containers use hold alone.

use std::collections::HashMap;

use digest_set::Digest;

use crate::query::{self, ListOptions, Summary};
use crate::reference::Reference;
use crate::render::{LS_HEADERS, LsRow};
use crate::store::Store;
use crate::template::{self, DF_HEADERS, DfRowData, ListFormat, LsRowData, TemplateError};
use go_template::Value;

/// One image of `df -v`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUsage {
    /// What `ls` shows of it.
    pub summary: Summary,
    /// The size of its layers that another listed image uses too.
    pub shared_size: i64,
    /// How many containers were created from it.
    pub containers: i64,
}

/// What `df` shows of the images of a data root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// The listed images, newest first.
    pub images: Vec<ImageUsage>,
    /// dockerd's `LayersSize`: the size of every layer a listed image uses, once each.
    pub layers_size: i64,
}

/// Why `df` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DfError {
    /// Listing the images failed.
    #[error(transparent)]
    List(#[from] query::FilterError),
    /// A layer of a listed image is not loaded (dockerd's message).
    #[error("layer {0} was not found (corruption?)")]
    LayerMissing(Digest),
    /// A listed image's config cannot be read.
    #[error(transparent)]
    Config(#[from] crate::error::LookupError),
}

/// Computes what `docker system df` shows of the images of `store`.
pub fn disk_usage(store: &Store) -> Result<DiskUsage, DfError> {
    let summaries = query::list(store, &ListOptions::default())?;
    let containers = crate::ops::read_containers(store.data_root().root());
    let layers = store.layer_store();
    let mut chains: Vec<Vec<Digest>> = Vec::with_capacity(summaries.len());
    let mut layer_refs: HashMap<Digest, usize> = HashMap::new();
    for s in &summaries {
        let image = store.config(&s.id)?;
        let chain = store.image_chain(&image);
        for c in &chain {
            if !layers.contains(&layer_store::ChainId(*c)) {
                return Err(DfError::LayerMissing(*c));
            }
            *layer_refs.entry(*c).or_default() += 1;
        }
        chains.push(chain);
    }
    let diff_size = |c: &Digest| -> i64 {
        layers
            .layer(&layer_store::ChainId(*c))
            .map_or(0, |l| i64::try_from(l.diff_size).unwrap_or(i64::MAX))
    };
    let layers_size = layer_refs.keys().map(diff_size).sum();
    let images = summaries
        .into_iter()
        .zip(chains)
        .map(|(summary, chain)| {
            let shared_size = chain
                .iter()
                .filter(|c| layer_refs.get(c).is_some_and(|n| *n > 1))
                .map(diff_size)
                .sum();
            let used_by = containers.iter().filter(|c| c.image == summary.id).count();
            ImageUsage {
                summary,
                shared_size,
                containers: i64::try_from(used_by).unwrap_or(i64::MAX),
            }
        })
        .collect();
    Ok(DiskUsage {
        images,
        layers_size,
    })
}

/// The docker CLI's default `system df` format.
pub const DEFAULT_FORMAT: &str =
    "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";

/// The docker CLI's `system df -v` format for images.
pub const VERBOSE_IMAGE_FORMAT: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.VirtualSize}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}";

/// The numbers of the images row.
pub fn row_data(du: &DiskUsage) -> DfRowData {
    let mut active = 0;
    let mut used = 0;
    for i in &du.images {
        if i.containers > 0 {
            active += 1;
        }
        if i.containers != 0 {
            used += i.summary.size - i.shared_size;
        }
    }
    DfRowData {
        total_size: du.layers_size,
        count: i64::try_from(du.images.len()).unwrap_or(i64::MAX),
        active,
        used,
    }
}

/// `df` as the docker CLI prints its images row, with `format` (default
/// [`DEFAULT_FORMAT`]).
pub fn render(du: &DiskUsage, format: &ListFormat) -> Result<String, TemplateError> {
    let t = template::df_row_type();
    let row = template::df_row(&t, &row_data(du));
    format.render(&[row], &template::header_value(&DF_HEADERS))
}

/// `df` in the docker CLI's default format: its header and images row exactly as
/// `docker system df` prints them, whose `TYPE` column is as wide as its `Local Volumes`
/// row makes it. (Its other rows can widen the other columns when they hold longer
/// numbers than the images row.)
pub fn render_default(du: &DiskUsage) -> Result<String, TemplateError> {
    let cells =
        ListFormat::parse("{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}")?;
    let t = template::df_row_type();
    let line = cells.render(&[template::df_row(&t, &row_data(du))], &Value::Invalid)?;
    let header = ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"].map(str::to_owned);
    let row: Vec<String> = line
        .trim_end_matches('\n')
        .split('\t')
        .map(str::to_owned)
        .collect();
    // The widest name docker's table holds, with its cells: it sets the TYPE column.
    let volumes = vec![
        "Local Volumes".to_owned(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    ];
    let aligned = crate::gofmt::tabwrite(&[header.to_vec(), row, volumes]);
    Ok(aligned.lines().take(2).map(|l| format!("{l}\n")).collect())
}

/// `df -v`: `Images space usage:` and a row per image, as the docker CLI prints them (the
/// first tag of each image; `<none>` for the untagged).
pub fn render_verbose(du: &DiskUsage, now: i64) -> Result<String, TemplateError> {
    let format = ListFormat::parse(VERBOSE_IMAGE_FORMAT)?;
    let t = template::ls_row_type(now);
    let mut rows = Vec::with_capacity(du.images.len());
    for i in &du.images {
        let s = &i.summary;
        let dangling = s.is_untagged()
            || (s.repo_tags == ["<none>:<none>"] && s.repo_digests == ["<none>@<none>"]);
        let (mut repo, mut tag) = ("<none>".to_owned(), "<none>".to_owned());
        if let Some(first) = s.repo_tags.first().filter(|_| !dangling) {
            let Ok(r) = Reference::parse_normalized(first) else {
                continue;
            };
            if let Some(t) = r.tag() {
                repo = r.familiar_name();
                tag = t.to_owned();
            }
        }
        let row = LsRow {
            repository: repo.into(),
            tag: tag.into(),
            digest: "".into(),
            summary: s,
            containers: i.containers,
            shared_size: i.shared_size,
        };
        rows.push(template::ls_row(&t, &ls_data(&row), true));
    }
    let mut out = String::from("Images space usage:\n\n");
    out.push_str(&format.render(&rows, &template::header_value(&LS_HEADERS))?);
    Ok(out)
}

fn ls_data(r: &LsRow<'_>) -> LsRowData {
    let (repo_tags, repo_digests) = r.summary.tags();
    LsRowData {
        id: r.summary.id.to_string(),
        created: r.summary.created,
        size: r.summary.size,
        labels: None,
        parent: String::new(),
        repo_tags,
        repo_digests,
        repository: r.repository.to_string(),
        tag: r.tag.to_string(),
        digest: r.digest.to_string(),
        containers: r.containers,
        shared_size: r.shared_size,
    }
}
