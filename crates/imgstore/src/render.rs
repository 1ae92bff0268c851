//! What `ls`, `inspect` and `history` print: [`crate::query`]'s answers rendered the way the
//! docker 20.10 CLI renders them (tables, `--format` templates, JSON).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use digest_set::Digest;
use serde::Serialize;

use crate::gofmt::{
    ellipsis, escape_go_json, go_time_string, human_duration, human_size,
    human_size_with_precision, rfc3339_utc, tabwrite,
};
use crate::query::{HistoryItem, Inspect, Summary};
use crate::reference::Reference;
use crate::store::GO_ZERO_UNIX;
use crate::template::{self, HistoryRowData, ListFormat, LsRowData, TemplateError};

/// The environment variable that fixes "now" (Unix seconds or RFC 3339) for tests.
pub const NOW_ENV: &str = "IMGSTORE_NOW";

/// "Now" in Unix seconds: `$IMGSTORE_NOW` if set and valid, else the clock.
pub fn now_unix() -> i64 {
    if let Ok(v) = std::env::var(NOW_ENV) {
        if let Ok(n) = v.trim().parse::<i64>() {
            return n;
        }
        if let Ok(t) = image_store::time::parse_rfc3339(v.trim()) {
            return t.unix_secs();
        }
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Go's `time.Now().Sub(t)` in seconds, saturating like `time.Duration` (about 292 years).
pub(crate) fn since(now: i64, then: i64) -> i64 {
    const MAX: i64 = i64::MAX / 1_000_000_000;
    now.saturating_sub(then).clamp(-MAX, MAX)
}

/// How `ls` prints.
#[derive(Debug, Clone, Default)]
pub struct LsFormat {
    /// `-q`.
    pub quiet: bool,
    /// `--no-trunc`.
    pub no_trunc: bool,
    /// `--digests`.
    pub digests: bool,
    /// `--format json`.
    pub json: bool,
    /// A custom `--format` template (overrides the other choices).
    pub template: Option<ListFormat>,
    /// `Labels` and `ParentID` of the images, for templates (dockerd's `ImageSummary`
    /// fields that only a template can print: `{{.}}`).
    pub details: BTreeMap<Digest, (Option<BTreeMap<String, String>>, String)>,
}

/// The docker CLI's column headers for `ls` fields (`imageContext`'s header).
pub const LS_HEADERS: [(&str, &str); 11] = [
    ("Containers", "CONTAINERS"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedSince", "CREATED"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("SharedSize", "SHARED SIZE"),
    ("Size", "SIZE"),
    ("Tag", "TAG"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "SIZE"),
];

/// One row's printed fields, for `--format json`.
type Row = BTreeMap<&'static str, String>;

fn ls_fields(r: &LsRow, no_trunc: bool, now: i64) -> Row {
    BTreeMap::from([
        ("Containers", "N/A".to_owned()),
        ("CreatedAt", go_time_string(r.summary.created)),
        ("CreatedSince", created_since(r.summary.created, now)),
        ("Digest", r.digest.clone()),
        ("ID", trunc_id(&r.summary.id, no_trunc)),
        ("Repository", r.repository.clone()),
        ("SharedSize", "N/A".to_owned()),
        ("Size", human_size_with_precision(r.summary.size as f64, 3)),
        ("Tag", r.tag.clone()),
        ("UniqueSize", "N/A".to_owned()),
        ("VirtualSize", human_size(r.summary.size as f64)),
    ])
}

/// One printed row of `ls` (docker CLI's `imageContext`).
///
/// The rows of one image share its [`Summary`]: an image with n tags gives n rows, and each
/// holding its own copy of the n tags made memory grow with n².
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsRow {
    /// Repository.
    pub repository: String,
    /// Tag.
    pub tag: String,
    /// Digest column.
    pub digest: String,
    /// The summary, shared by the image's rows.
    pub summary: Arc<Summary>,
    /// `Containers` (`-1`: not computed, as in `ls`).
    pub containers: i64,
    /// `SharedSize` (`-1`: not computed, as in `ls`).
    pub shared_size: i64,
}

/// Values grouped by key, groups in order of first appearance (Go's map order is random; this
/// one is stable), found by key in constant time.
#[derive(Default)]
struct Groups {
    order: Vec<(String, Vec<String>)>,
    index: HashMap<String, usize>,
}

impl Groups {
    fn push(&mut self, key: String, value: String) {
        match self.index.get(&key) {
            Some(&i) => self.order[i].1.push(value),
            None => {
                self.index.insert(key.clone(), self.order.len());
                self.order.push((key, vec![value]));
            }
        }
    }

    /// Takes the values of `key` out (the group stays, empty and marked taken).
    fn take(&mut self, key: &str) -> Option<Vec<String>> {
        let i = self.index.remove(key)?;
        Some(std::mem::take(&mut self.order[i].1))
    }
}

/// The CLI's `imageFormat`: rows per tag (and per digest where `need_digest`: `--digests`
/// or a format with `{{.Digest}}`); digest-only repositories get a row per digest with
/// `--digests` (`show_digests`), else one row.
pub fn ls_rows(images: &[Summary], need_digest: bool, show_digests: bool) -> Vec<LsRow> {
    let mut rows = Vec::new();
    for s in images {
        let dangling = (s.repo_tags.is_empty() && s.repo_digests.is_empty())
            || (s.repo_tags == ["<none>:<none>"] && s.repo_digests == ["<none>@<none>"]);
        let summary = Arc::new(s.clone());
        let row = |repo: &str, tag: &str, digest: &str| LsRow {
            repository: repo.to_owned(),
            tag: tag.to_owned(),
            digest: digest.to_owned(),
            summary: Arc::clone(&summary),
            containers: -1,
            shared_size: -1,
        };
        if dangling {
            rows.push(row("<none>", "<none>", "<none>"));
            continue;
        }
        let mut repo_tags = Groups::default();
        let mut repo_digests = Groups::default();
        for t in &s.repo_tags {
            if let Ok(r) = Reference::parse_normalized(t)
                && let Some(tag) = r.tag()
            {
                repo_tags.push(r.familiar_name(), tag.to_owned());
            }
        }
        for d in &s.repo_digests {
            if let Ok(r) = Reference::parse_normalized(d)
                && let Some(dg) = r.digest()
            {
                repo_digests.push(r.familiar_name(), dg.to_string());
            }
        }
        for (repo, tags) in &repo_tags.order {
            let digests = repo_digests.take(repo).unwrap_or_default();
            let digests = if need_digest { digests } else { Vec::new() };
            for tag in tags {
                if digests.is_empty() {
                    rows.push(row(repo, tag, "<none>"));
                } else {
                    for d in &digests {
                        rows.push(row(repo, tag, d));
                    }
                }
            }
        }
        // The digest-only repositories: those no tag's repository took.
        for (repo, digests) in &repo_digests.order {
            if !repo_digests.index.contains_key(repo) {
                continue;
            }
            if show_digests {
                for d in digests {
                    rows.push(row(repo, "<none>", d));
                }
            } else {
                rows.push(row(repo, "<none>", ""));
            }
        }
    }
    rows
}

fn trunc_id(id: &Digest, no_trunc: bool) -> String {
    if no_trunc { id.to_string() } else { id.short() }
}

pub(crate) fn created_since(created: i64, now: i64) -> String {
    if created == GO_ZERO_UNIX {
        return String::new();
    }
    format!("{} ago", human_duration(since(now, created)))
}

/// Renders `ls` output as the docker 20.10 CLI does; a template that fails on a row prints
/// nothing.
pub fn render_ls(rows: &[LsRow], fmt: &LsFormat, now: i64) -> Result<String, TemplateError> {
    if let Some(t) = &fmt.template {
        let ty = template::ls_row_type(now);
        let values: Vec<_> = rows
            .iter()
            .map(|r| {
                let (labels, parent) = fmt.details.get(&r.summary.id).cloned().unwrap_or_default();
                let data = LsRowData {
                    id: r.summary.id.to_string(),
                    created: r.summary.created,
                    size: r.summary.size,
                    labels,
                    parent,
                    repo_tags: r.summary.repo_tags.clone(),
                    repo_digests: r.summary.repo_digests.clone(),
                    repository: r.repository.clone(),
                    tag: r.tag.clone(),
                    digest: r.digest.clone(),
                    containers: r.containers,
                    shared_size: r.shared_size,
                };
                template::ls_row(&ty, &data, !fmt.no_trunc)
            })
            .collect();
        return t.render(&values, &template::header_value(&LS_HEADERS));
    }
    if fmt.json {
        let mut out = String::new();
        for r in rows {
            let fields = ls_fields(r, fmt.no_trunc, now);
            out.push_str(&escape_go_json(
                &serde_json::to_string(&fields).unwrap_or_default(),
            ));
            out.push('\n');
        }
        return Ok(out);
    }
    if fmt.quiet {
        let mut out = String::new();
        for r in rows {
            out.push_str(&trunc_id(&r.summary.id, fmt.no_trunc));
            out.push('\n');
        }
        return Ok(out);
    }
    let mut table: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["REPOSITORY".to_owned(), "TAG".to_owned()];
    if fmt.digests {
        header.push("DIGEST".to_owned());
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"].map(str::to_owned));
    table.push(header);
    use rayon::prelude::*;
    let lines: Vec<Vec<String>> = rows
        .par_iter()
        .map(|r| {
            let mut line = Vec::with_capacity(6);
            line.push(r.repository.clone());
            line.push(r.tag.clone());
            if fmt.digests {
                line.push(r.digest.clone());
            }
            let since = created_since(r.summary.created, now);
            line.push(trunc_id(&r.summary.id, fmt.no_trunc));
            line.push(if since.is_empty() {
                "N/A".to_owned()
            } else {
                since
            });
            line.push(human_size_with_precision(r.summary.size as f64, 3));
            line
        })
        .collect();
    table.extend(lines);
    Ok(tabwrite(&table))
}

/// Renders `inspect` output: docker's indented JSON array and a newline.
pub fn render_inspect(values: &[Inspect]) -> String {
    let buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(buf, formatter);
    if values.serialize(&mut ser).is_err() {
        return "[]\n".to_owned();
    }
    let text = String::from_utf8(ser.into_inner()).unwrap_or_default();
    let mut out = escape_go_json(&text);
    out.push('\n');
    out
}

/// How `history` prints.
#[derive(Debug, Clone)]
pub struct HistoryFormat {
    /// `--no-trunc`.
    pub no_trunc: bool,
    /// `-H` (default true): human sizes and dates.
    pub human: bool,
    /// `-q`.
    pub quiet: bool,
    /// `--format json`.
    pub json: bool,
    /// A custom `--format` template (overrides the other choices).
    pub template: Option<ListFormat>,
}

/// The docker CLI's column headers for `history` fields.
pub const HISTORY_HEADERS: [(&str, &str); 6] = [
    ("Comment", "COMMENT"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("CreatedSince", "CREATED"),
    ("ID", "IMAGE"),
    ("Size", "SIZE"),
];

fn trunc_str_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        return id.to_owned();
    }
    let s = id.split_once(':').map(|(_, h)| h).unwrap_or(id);
    s.chars().take(12).collect()
}

/// Renders `history` as the docker 20.10 CLI does; a template that fails on a row prints
/// nothing.
pub fn render_history(
    items: &[HistoryItem],
    fmt: &HistoryFormat,
    now: i64,
) -> Result<String, TemplateError> {
    let created_at = |c: i64| rfc3339_utc(c);
    let created_since = |c: i64| {
        if fmt.human {
            format!("{} ago", human_duration(since(now, c)))
        } else {
            created_at(c)
        }
    };
    let created_by = |s: &str| {
        let s = s.replace('\t', " ");
        if fmt.no_trunc { s } else { ellipsis(&s, 45) }
    };
    let size = |n: i64| {
        if fmt.human {
            human_size_with_precision(n as f64, 3)
        } else {
            n.to_string()
        }
    };
    let mut out = String::new();
    if fmt.quiet {
        for i in items {
            out.push_str(&trunc_str_id(&i.id, fmt.no_trunc));
            out.push('\n');
        }
        return Ok(out);
    }
    let fields = |i: &HistoryItem| -> Row {
        BTreeMap::from([
            ("Comment", i.comment.clone()),
            ("CreatedAt", created_at(i.created)),
            ("CreatedBy", created_by(&i.created_by)),
            ("CreatedSince", created_since(i.created)),
            ("ID", trunc_str_id(&i.id, fmt.no_trunc)),
            ("Size", size(i.size)),
        ])
    };
    if let Some(t) = &fmt.template {
        let ty = template::history_row_type(now);
        let rows: Vec<_> = items
            .iter()
            .map(|i| {
                let data = HistoryRowData {
                    comment: i.comment.clone(),
                    created: i.created,
                    created_by: i.created_by.clone(),
                    id: i.id.clone(),
                    size: i.size,
                    tags: i.tags.clone(),
                };
                template::history_row(&ty, &data, !fmt.no_trunc, fmt.human)
            })
            .collect();
        return t.render(&rows, &template::header_value(&HISTORY_HEADERS));
    }
    if fmt.json {
        for i in items {
            out.push_str(&escape_go_json(
                &serde_json::to_string(&fields(i)).unwrap_or_default(),
            ));
            out.push('\n');
        }
        return Ok(out);
    }
    let mut table = vec![vec![
        "IMAGE".to_owned(),
        if fmt.human { "CREATED" } else { "CREATED AT" }.to_owned(),
        "CREATED BY".to_owned(),
        "SIZE".to_owned(),
        "COMMENT".to_owned(),
    ]];
    for i in items {
        table.push(vec![
            trunc_str_id(&i.id, fmt.no_trunc),
            created_since(i.created),
            created_by(&i.created_by),
            size(i.size),
            i.comment.clone(),
        ]);
    }
    Ok(tabwrite(&table))
}
