//! What `ls`, `inspect` and `history` print: [`crate::query`]'s answers rendered the way the
//! docker 20.10 CLI renders them (tables, `--format` templates, JSON).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use digest_set::Digest;
use serde::Serialize;

use crate::gofmt::{
    ellipsis, escape_go_json, go_time_string, human_duration, human_size,
    human_size_with_precision, rfc3339_utc, tabwrite, tabwrite_uniform,
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

fn ls_fields(r: &LsRow<'_>, no_trunc: bool, now: i64) -> Row {
    BTreeMap::from([
        ("Containers", "N/A".to_owned()),
        ("CreatedAt", go_time_string(r.summary.created)),
        ("CreatedSince", created_since(r.summary.created, now)),
        ("Digest", r.digest.to_string()),
        ("ID", trunc_id(&r.summary.id, no_trunc)),
        ("Repository", r.repository.to_string()),
        ("SharedSize", "N/A".to_owned()),
        ("Size", human_size_with_precision(r.summary.size as f64, 3)),
        ("Tag", r.tag.to_string()),
        ("UniqueSize", "N/A".to_owned()),
        ("VirtualSize", human_size(r.summary.size as f64)),
    ])
}

/// One printed row of `ls` (docker CLI's `imageContext`).
///
/// The rows of one image borrow its [`Summary`]: an image with n tags gives n rows, and each
/// holding its own copy of the n tags made memory grow with n². `<none>` and the other
/// fixed values are not allocated for each row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsRow<'a> {
    /// Repository.
    pub repository: Cow<'static, str>,
    /// Tag.
    pub tag: Cow<'static, str>,
    /// Digest column.
    pub digest: Cow<'static, str>,
    /// The summary of the row's image.
    pub summary: &'a Summary,
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
pub fn ls_rows(images: &[Summary], need_digest: bool, show_digests: bool) -> Vec<LsRow<'_>> {
    // One row an image, unless it has several references.
    let mut rows = Vec::with_capacity(images.len());
    const NONE: Cow<'static, str> = Cow::Borrowed("<none>");
    for summary in images {
        let row =
            |repo: Cow<'static, str>, tag: Cow<'static, str>, digest: Cow<'static, str>| LsRow {
                repository: repo,
                tag,
                digest,
                summary,
                containers: -1,
                shared_size: -1,
            };
        let s = summary;
        let dangling = s.is_untagged()
            || (s.repo_tags == ["<none>:<none>"] && s.repo_digests == ["<none>@<none>"]);
        if dangling {
            rows.push(row(NONE, NONE, NONE));
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
        let owned = |s: &str| Cow::Owned(s.to_owned());
        for (repo, tags) in &repo_tags.order {
            let digests = repo_digests.take(repo).unwrap_or_default();
            let digests = if need_digest { digests } else { Vec::new() };
            for tag in tags {
                if digests.is_empty() {
                    rows.push(row(owned(repo), owned(tag), NONE));
                } else {
                    for d in &digests {
                        rows.push(row(owned(repo), owned(tag), owned(d)));
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
                    rows.push(row(owned(repo), NONE, owned(d)));
                }
            } else {
                rows.push(row(owned(repo), NONE, Cow::Borrowed("")));
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
pub fn render_ls(rows: &[LsRow<'_>], fmt: &LsFormat, now: i64) -> Result<String, TemplateError> {
    if let Some(t) = &fmt.template {
        let ty = template::ls_row_type(now);
        let values: Vec<_> = rows
            .iter()
            .map(|r| {
                let (labels, parent) = fmt.details.get(&r.summary.id).cloned().unwrap_or_default();
                let (repo_tags, repo_digests) = r.summary.tags();
                let data = LsRowData {
                    id: r.summary.id.to_string(),
                    created: r.summary.created,
                    size: r.summary.size,
                    labels,
                    parent,
                    repo_tags,
                    repo_digests,
                    repository: r.repository.to_string(),
                    tag: r.tag.to_string(),
                    digest: r.digest.to_string(),
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
        let id_len = if fmt.no_trunc { 71 } else { 12 };
        let mut out = String::with_capacity(rows.len() * (id_len + 1));
        let mut buf = [0u8; 128];
        for r in rows {
            let id = &r.summary.id;
            if fmt.no_trunc {
                out.push_str(id.algorithm().name());
                out.push(':');
                out.push_str(id.write_hex(&mut buf));
            } else {
                out.push_str(id.write_hex(&mut buf).get(..12).unwrap_or_default());
            }
            out.push('\n');
        }
        return Ok(out);
    }
    Ok(render_table(rows, fmt, now))
}

/// The `ls` table, rows formatted as they are written (never held all at once).
fn render_table<'r>(rows: &'r [LsRow<'_>], fmt: &LsFormat, now: i64) -> String {
    let mut header: Vec<&'static str> = vec!["REPOSITORY", "TAG"];
    if fmt.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    let cells = |i: usize, line: &mut Vec<Cow<'r, str>>| {
        line.clear();
        let Some(r) = i.checked_sub(1).and_then(|i| rows.get(i)) else {
            line.extend(header.iter().map(|h| Cow::Borrowed(*h)));
            return;
        };
        line.push(Cow::Borrowed(&*r.repository));
        line.push(Cow::Borrowed(&*r.tag));
        if fmt.digests {
            line.push(Cow::Borrowed(&*r.digest));
        }
        let since = created_since(r.summary.created, now);
        line.push(Cow::Owned(trunc_id(&r.summary.id, fmt.no_trunc)));
        line.push(if since.is_empty() {
            Cow::Borrowed("N/A")
        } else {
            Cow::Owned(since)
        });
        line.push(Cow::Owned(human_size_with_precision(
            r.summary.size as f64,
            3,
        )));
    };
    tabwrite_uniform(rows.len() + 1, header.len(), cells)
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
