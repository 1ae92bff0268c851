//! docker's `--format` templates, run as the docker 20.10 CLI runs them, on the
//! [`go_template`] engine (Go 1.19's `text/template`):
//!
//! - [`docker_funcs`] / [`header_funcs`]: docker/cli's `templates` package (`json`, `split`,
//!   `join`, `title`, `lower`, `upper`, `pad`, `truncate`) and the header variants.
//! - [`ListFormat`]: the formatter `Context` of `ls` and `history` (and any future list such
//!   as `df`): the `table` prefix, `\t`/`\n` escapes, one execution per row, a header row
//!   run on the column names, Go's `tabwriter`; an execution error prints nothing.
//! - [`InspectFormat`]: the `inspect -f` template inspector: the template runs on the typed
//!   value and, where that fails, on the raw JSON (decoded with `UseNumber`) with
//!   `missingkey=error`.
//! - Go-typed values of what the CLI formats: [`ls_row_type`], [`history_row_type`],
//!   [`inspect_value`], with the CLI's type names, fields and methods.

use std::collections::BTreeMap;
use std::sync::Arc;

use go_template::{
    Field, Func, FuncMap, Method, MissingKey, Template, Type, TypeRef, Value, json, time, types,
};

use crate::gofmt::tabwriter;

/// A `--format` that does not parse or run: the docker CLI's message
/// (`template parsing error: template: :1: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// The message.
    pub message: String,
    /// The exit status the docker CLI uses (64 for an `inspect` template that does not
    /// parse, else 1).
    pub status: u8,
}

impl TemplateError {
    fn new(message: String) -> TemplateError {
        TemplateError { message, status: 1 }
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn string_fn(f: impl Fn(&str) -> String + Send + Sync + 'static) -> Func {
    Func::new(vec![types::string()], types::string(), move |a| {
        Value::string(&f(s(&a[0])))
    })
}

/// Go's `unicode.ToUpper`/`ToLower` rune by rune (a rune whose mapping is not a single rune
/// stays as it is).
fn map_runes(text: &str, upper: bool) -> String {
    text.chars()
        .map(|c| {
            let mut m: Vec<char> = if upper {
                c.to_uppercase().collect()
            } else {
                c.to_lowercase().collect()
            };
            if m.len() == 1 {
                m.pop().unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

/// Go's deprecated `strings.Title`: the first letter of each word upper-cased.
fn title(text: &str) -> String {
    let is_separator = |r: char| {
        if r.is_ascii() {
            !(r.is_ascii_alphanumeric() || r == '_')
        } else {
            !(r.is_alphanumeric()) && r.is_whitespace()
        }
    };
    let mut prev = ' ';
    text.chars()
        .map(|c| {
            let out = if is_separator(prev) {
                map_runes(&c.to_string(), true)
            } else {
                c.to_string()
            };
            prev = c;
            out
        })
        .collect()
}

/// Go's `strings.Split`.
fn split(text: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return text.chars().map(String::from).collect();
    }
    text.split(sep).map(str::to_owned).collect()
}

/// docker/cli's `templates` functions (`basicFunctions`).
pub fn docker_funcs() -> FuncMap {
    let mut m = FuncMap::new();
    m.insert(
        "json".to_owned(),
        Func::new(vec![types::any()], types::string(), |a| {
            // Encoder.Encode with SetEscapeHTML(false); an error writes nothing.
            let v = a[0].indirect_interface();
            Value::string(json::marshal(&v, false).unwrap_or_default().trim())
        }),
    );
    m.insert(
        "split".to_owned(),
        Func::new(
            vec![types::string(), types::string()],
            types::string_slice(),
            |a| Value::strings(&split(s(&a[0]), s(&a[1]))),
        ),
    );
    m.insert(
        "join".to_owned(),
        Func::new(
            vec![types::string_slice(), types::string()],
            types::string(),
            |a| {
                let parts: Vec<&str> = a[0].elems().iter().map(s).collect();
                Value::string(&parts.join(s(&a[1])))
            },
        ),
    );
    m.insert("title".to_owned(), string_fn(title));
    m.insert("lower".to_owned(), string_fn(|t| map_runes(t, false)));
    m.insert("upper".to_owned(), string_fn(|t| map_runes(t, true)));
    m.insert(
        "pad".to_owned(),
        Func::fallible(
            vec![types::string(), types::int(), types::int()],
            types::string(),
            |a| {
                let source = s(&a[0]);
                if source.is_empty() {
                    return Ok(Value::string(""));
                }
                let count = |v: &Value| {
                    usize::try_from(v.as_int().unwrap_or(0))
                        .map_err(|_| "strings: negative Repeat count".to_owned())
                };
                let (pre, post) = (count(&a[1])?, count(&a[2])?);
                Ok(Value::string(&format!(
                    "{}{source}{}",
                    " ".repeat(pre),
                    " ".repeat(post)
                )))
            },
        ),
    );
    m.insert(
        "truncate".to_owned(),
        Func::fallible(vec![types::string(), types::int()], types::string(), |a| {
            let source = s(&a[0]);
            let length = a[1].as_int().unwrap_or(0);
            if (source.len() as i64) < length {
                return Ok(Value::string(source));
            }
            let Ok(n) = usize::try_from(length) else {
                return Err(format!(
                    "runtime error: slice bounds out of range [:{length}]"
                ));
            };
            let b = &source.as_bytes()[..n];
            Ok(Value::string(&String::from_utf8_lossy(b)))
        }),
    );
    m
}

/// docker/cli's `HeaderFunctions`: what the header row runs with (the column name passes
/// through `json`, `split`, `join`, `title`, `lower`, `upper`, `truncate` unchanged).
pub fn header_funcs() -> FuncMap {
    let mut m = FuncMap::new();
    let ident = |params: Vec<TypeRef>| {
        Func::new(params, types::string(), |a| {
            Value::string(a.first().map(s).unwrap_or_default())
        })
    };
    m.insert("json".to_owned(), ident(vec![types::string()]));
    m.insert(
        "split".to_owned(),
        ident(vec![types::string(), types::string()]),
    );
    m.insert(
        "join".to_owned(),
        ident(vec![types::string(), types::string()]),
    );
    for name in ["title", "lower", "upper"] {
        m.insert(name.to_owned(), ident(vec![types::string()]));
    }
    m.insert(
        "truncate".to_owned(),
        ident(vec![types::string(), types::int()]),
    );
    m
}

/// The docker CLI's formatter `Context` for one `--format` of a list command.
#[derive(Debug, Clone)]
pub struct ListFormat {
    format: String,
    table: bool,
    tmpl: Template,
}

impl ListFormat {
    /// Parses a format as the CLI's `preFormat` + `parseFormat` do: a `table` prefix is
    /// removed, spaces trimmed, `\t` and `\n` (backslash sequences) expanded.
    pub fn parse(format: &str) -> Result<ListFormat, TemplateError> {
        let table = format.starts_with("table");
        let body = if table { &format[5..] } else { format };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        let tmpl = Template::parse("", &body, &docker_funcs())
            .map_err(|e| TemplateError::new(format!("template parsing error: {e}")))?;
        Ok(ListFormat {
            format: format.to_owned(),
            table,
            tmpl,
        })
    }

    /// Whether the format starts with `table`.
    pub fn is_table(&self) -> bool {
        self.table
    }

    /// Whether the format as given contains `sub` (the CLI's `Format.Contains`).
    pub fn contains(&self, sub: &str) -> bool {
        self.format.contains(sub)
    }

    /// Runs the template on each row (a newline after each) and, for a table, on `header`
    /// (the column names) with [`header_funcs`], aligning everything with Go's
    /// `tabwriter`. The first row that fails fails the whole output, as in the CLI.
    pub fn render(&self, rows: &[Value], header: &Value) -> Result<String, TemplateError> {
        let mut body = String::new();
        for row in rows {
            let out = self
                .tmpl
                .execute(row)
                .map_err(|e| TemplateError::new(format!("template parsing error: {e}")))?;
            body.push_str(&out);
            body.push('\n');
        }
        if !self.table {
            return Ok(body);
        }
        // The header's errors are ignored: what was written before one is the header.
        let head = match self.tmpl.with_funcs(&header_funcs()).execute(header) {
            Ok(h) => h,
            Err(e) => e.output,
        };
        let mut text = head;
        text.push('\n');
        text.push_str(&body);
        Ok(tabwriter(&text))
    }
}

/// The docker CLI's template inspector for `inspect -f`.
#[derive(Debug, Clone)]
pub struct InspectFormat {
    tmpl: Template,
}

impl InspectFormat {
    /// Parses the format (no `table` prefix, no escapes expanded); a parse error has exit
    /// status 64, as the CLI's.
    pub fn parse(format: &str) -> Result<InspectFormat, TemplateError> {
        let tmpl = Template::parse("", format, &docker_funcs()).map_err(|e| TemplateError {
            message: format!("template parsing error: {e}"),
            status: 64,
        })?;
        Ok(InspectFormat { tmpl })
    }

    /// One element: the template on the typed value, or where that fails on `raw` (the
    /// JSON dockerd sent) decoded with `UseNumber`, with `missingkey=error`. The output
    /// without its newline, or the error message.
    pub fn inspect(&self, typed: &Value, raw: &str) -> Result<String, TemplateError> {
        if let Ok(out) = self.tmpl.execute(typed) {
            return Ok(out);
        }
        let value = json::decode(raw, json::Numbers::UseNumber)
            .map_err(|e| TemplateError::new(format!("unable to read inspect data: {e}")))?;
        self.tmpl
            .with_missing_key(MissingKey::Error)
            .execute(&value)
            .map_err(|e| TemplateError::new(format!("template parsing error: {e}")))
    }
}

fn method(
    name: &str,
    result: TypeRef,
    f: impl Fn(&Value) -> Value + Send + Sync + 'static,
) -> Method {
    Method {
        name: name.to_owned(),
        func: Func::new(Vec::new(), result, move |a| f(&a[0])),
    }
}

/// `formatter.HeaderContext` (embedded in every row context: its `Header` is nil in rows).
fn header_context_type() -> TypeRef {
    Type::structure(
        "formatter.HeaderContext",
        vec![Field::new("Header", types::any())],
        Vec::new(),
    )
}

fn header_context() -> Value {
    Value::structure(
        &header_context_type(),
        vec![Value::interface(&types::any(), None)],
    )
}

/// `formatter.SubHeaderContext`: the column names a table's header row runs on.
pub fn header_value(columns: &[(&str, &str)]) -> Value {
    let label = Method {
        name: "Label".to_owned(),
        func: Func::new(vec![types::string()], types::string(), |a| {
            let name = s(&a[1]);
            let last = name.rsplit('.').next().unwrap_or_default();
            Value::string(&last.replace(['-', '_'], " "))
        }),
    };
    let t = Type::named(
        "formatter.SubHeaderContext",
        &types::string_map(),
        vec![label],
    );
    Value::map(
        &t,
        Some(
            columns
                .iter()
                .map(|(k, v)| (Value::string(k), Value::string(v)))
                .collect(),
        ),
    )
}

/// A row context's `MarshalJSON`: its exported no-argument methods (but `FullHeader`) as a
/// JSON object, as `json.Marshal` writes it (HTML-escaped).
fn marshal_methods(row: &Value) -> Result<String, String> {
    let (inner, _) = row.indirect();
    let Some(t) = inner.ty() else {
        return Ok("null".to_owned());
    };
    let mut entries = Vec::new();
    for m in t.methods() {
        if m.name == "FullHeader" || !m.func.params.is_empty() || m.func.returns_error {
            continue;
        }
        let v = (m.func.call)(std::slice::from_ref(&inner))?;
        entries.push((Value::string(&m.name), Value::any(v)));
    }
    json::marshal(&Value::map(&types::any_map(), Some(entries)), true).map_err(|e| e.to_string())
}

fn marshal_json_method() -> Method {
    Method {
        name: "MarshalJSON".to_owned(),
        func: Func::fallible(Vec::new(), Type::slice(&types::uint8()), |a| {
            let text = marshal_methods(&a[0])?;
            Ok(Value::slice(
                &Type::slice(&types::uint8()),
                Some(
                    text.bytes()
                        .map(|b| Value::uint_of(&types::uint8(), u64::from(b)))
                        .collect(),
                ),
            ))
        }),
    }
}

fn full_header_method() -> Method {
    method("FullHeader", types::any(), |v| {
        v.fields()
            .first()
            .and_then(|h| h.fields().first())
            .cloned()
            .unwrap_or_default()
    })
}

fn field_str(v: &Value, i: usize) -> String {
    v.fields().get(i).map(s).unwrap_or_default().to_owned()
}

fn strings_or_nil(items: &[String], nil_when_empty: bool) -> Value {
    if nil_when_empty && items.is_empty() {
        Value::slice(&types::string_slice(), None)
    } else {
        Value::strings(items)
    }
}

/// The values an `ls` row is made of (dockerd's `types.ImageSummary` and the CLI's row).
#[derive(Debug, Clone)]
pub struct LsRowData {
    /// Image ID (`sha256:...`).
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    /// Size in bytes.
    pub size: i64,
    /// `Labels` (`None`: null).
    pub labels: Option<BTreeMap<String, String>>,
    /// `ParentID`.
    pub parent: String,
    /// `RepoTags` as dockerd sent them.
    pub repo_tags: Vec<String>,
    /// `RepoDigests` as dockerd sent them.
    pub repo_digests: Vec<String>,
    /// The row's repository, tag and digest.
    pub repository: String,
    /// Tag.
    pub tag: String,
    /// Digest.
    pub digest: String,
    /// `Containers`: how many containers use the image (`-1`: not computed, `N/A`; only
    /// `df -v` computes it).
    pub containers: i64,
    /// `SharedSize`: the size of its layers other listed images share (`-1`: not computed).
    pub shared_size: i64,
}

/// `*formatter.imageContext`, the type of `ls` rows, for a run at `now` (Unix seconds) with
/// IDs truncated or not: construct rows with [`ls_row`].
pub fn ls_row_type(now: i64) -> TypeRef {
    let summary = Type::structure(
        "types.ImageSummary",
        vec![
            Field::new("Containers", types::int64()),
            Field::new("Created", types::int64()),
            Field::new("ID", types::string()).json_name("Id"),
            Field::new("Labels", types::string_map()),
            Field::new("ParentID", types::string()).json_name("ParentId"),
            Field::new("RepoDigests", types::string_slice()),
            Field::new("RepoTags", types::string_slice()),
            Field::new("SharedSize", types::int64()),
            Field::new("Size", types::int64()),
            Field::new("VirtualSize", types::int64()),
        ],
        Vec::new(),
    );
    // Field indexes: 0 HeaderContext, 1 trunc, 2 i, 3 repo, 4 tag, 5 digest.
    let i = |v: &Value, k: usize| v.fields().get(2).and_then(|s| s.fields().get(k)).cloned();
    let int = move |v: &Value, k: usize| i(v, k).and_then(|x| x.as_int()).unwrap_or(0);
    let methods = vec![
        method("Containers", types::string(), move |v| {
            let c = int(v, 0);
            Value::string(&if c == -1 {
                "N/A".to_owned()
            } else {
                c.to_string()
            })
        }),
        method("CreatedAt", types::string(), move |v| {
            Value::string(&crate::gofmt::go_time_string(int(v, 1)))
        }),
        method("CreatedSince", types::string(), move |v| {
            Value::string(&crate::render::created_since(int(v, 1), now))
        }),
        method("Digest", types::string(), |v| {
            Value::string(&field_str(v, 5))
        }),
        full_header_method(),
        method("ID", types::string(), move |v| {
            let id = i(v, 2).map(|x| s(&x).to_owned()).unwrap_or_default();
            let trunc = v.fields().get(1).and_then(Value::as_bool).unwrap_or(false);
            Value::string(&if trunc { truncate_id(&id) } else { id })
        }),
        marshal_json_method(),
        method("Repository", types::string(), |v| {
            Value::string(&field_str(v, 3))
        }),
        method("SharedSize", types::string(), move |v| {
            let n = int(v, 7);
            Value::string(&if n == -1 {
                "N/A".to_owned()
            } else {
                crate::gofmt::human_size(n as f64)
            })
        }),
        method("Size", types::string(), move |v| {
            Value::string(&crate::gofmt::human_size_with_precision(
                int(v, 8) as f64,
                3,
            ))
        }),
        method("Tag", types::string(), |v| Value::string(&field_str(v, 4))),
        method("UniqueSize", types::string(), move |v| {
            let (virt, shared) = (int(v, 9), int(v, 7));
            Value::string(&if virt == -1 || shared == -1 {
                "N/A".to_owned()
            } else {
                crate::gofmt::human_size((virt - shared) as f64)
            })
        }),
        method("VirtualSize", types::string(), move |v| {
            Value::string(&crate::gofmt::human_size(int(v, 9) as f64))
        }),
    ];
    let t = Type::structure(
        "formatter.imageContext",
        vec![
            Field::new("HeaderContext", header_context_type()).embedded(),
            Field::new("trunc", types::bool()),
            Field::new("i", summary),
            Field::new("repo", types::string()),
            Field::new("tag", types::string()),
            Field::new("digest", types::string()),
        ],
        methods,
    );
    Type::pointer(&t).with_marshal_json(Arc::new(marshal_methods))
}

/// The docker CLI's `stringid.TruncateID`.
fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map_or(id, |(_, h)| h);
    id.chars().take(12).collect()
}

/// One `ls` row of type `t` (from [`ls_row_type`]).
pub fn ls_row(t: &TypeRef, d: &LsRowData, trunc: bool) -> Value {
    let Some(ctx) = t.elem() else {
        return Value::Invalid;
    };
    let summary_t = ctx.fields()[2].ty.clone();
    let labels = Value::map(
        &types::string_map(),
        d.labels.as_ref().map(|l| {
            l.iter()
                .map(|(k, v)| (Value::string(k), Value::string(v)))
                .collect()
        }),
    );
    let summary = Value::structure(
        &summary_t,
        vec![
            Value::int64(d.containers),
            Value::int64(d.created),
            Value::string(&d.id),
            labels,
            Value::string(&d.parent),
            Value::strings(&d.repo_digests),
            Value::strings(&d.repo_tags),
            Value::int64(d.shared_size),
            Value::int64(d.size),
            Value::int64(d.size),
        ],
    );
    let row = Value::structure(
        ctx,
        vec![
            header_context(),
            Value::bool(trunc),
            summary,
            Value::string(&d.repository),
            Value::string(&d.tag),
            Value::string(&d.digest),
        ],
    );
    Value::pointer(t, Some(row))
}

/// The numbers of the images row of `docker system df` (the docker CLI's
/// `diskUsageImagesContext`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DfRowData {
    /// dockerd's `LayersSize`: the layers the listed images use, each once.
    pub total_size: i64,
    /// How many images are listed.
    pub count: i64,
    /// How many of them a container uses.
    pub active: i64,
    /// What the images containers use hold on their own (`VirtualSize - SharedSize`).
    pub used: i64,
}

/// The column names of `df` (`diskUsageImagesContext`'s header).
pub const DF_HEADERS: [(&str, &str); 5] = [
    ("Active", "ACTIVE"),
    ("Reclaimable", "RECLAIMABLE"),
    ("Size", "SIZE"),
    ("TotalCount", "TOTAL"),
    ("Type", "TYPE"),
];

/// `*formatter.diskUsageImagesContext`, the type of `df`'s images row.
pub fn df_row_type() -> TypeRef {
    let int = |v: &Value, k: usize| v.fields().get(k).and_then(|x| x.as_int()).unwrap_or(0);
    let methods = vec![
        method("Active", types::string(), move |v| {
            Value::string(&int(v, 3).to_string())
        }),
        marshal_json_method(),
        method("Reclaimable", types::string(), move |v| {
            let total = int(v, 1);
            let reclaimable = total - int(v, 4);
            Value::string(&if total > 0 {
                format!(
                    "{} ({}%)",
                    crate::gofmt::human_size(reclaimable as f64),
                    reclaimable * 100 / total
                )
            } else {
                crate::gofmt::human_size(reclaimable as f64)
            })
        }),
        method("Size", types::string(), move |v| {
            Value::string(&crate::gofmt::human_size(int(v, 1) as f64))
        }),
        method("TotalCount", types::string(), move |v| {
            Value::string(&int(v, 2).to_string())
        }),
        method("Type", types::string(), |_| Value::string("Images")),
    ];
    let t = Type::structure(
        "formatter.diskUsageImagesContext",
        vec![
            Field::new("HeaderContext", header_context_type()).embedded(),
            Field::new("totalSize", types::int64()),
            Field::new("count", types::int64()),
            Field::new("active", types::int64()),
            Field::new("used", types::int64()),
        ],
        methods,
    );
    Type::pointer(&t).with_marshal_json(Arc::new(marshal_methods))
}

/// The images row of `df`, of type `t` (from [`df_row_type`]).
pub fn df_row(t: &TypeRef, d: &DfRowData) -> Value {
    let Some(ctx) = t.elem() else {
        return Value::Invalid;
    };
    Value::pointer(
        t,
        Some(Value::structure(
            ctx,
            vec![
                header_context(),
                Value::int64(d.total_size),
                Value::int64(d.count),
                Value::int64(d.active),
                Value::int64(d.used),
            ],
        )),
    )
}

/// The values of a `history` row (dockerd's `image.HistoryResponseItem`).
#[derive(Debug, Clone)]
pub struct HistoryRowData {
    /// `Comment`.
    pub comment: String,
    /// `Created` (Unix seconds).
    pub created: i64,
    /// `CreatedBy`.
    pub created_by: String,
    /// `Id`.
    pub id: String,
    /// `Size`.
    pub size: i64,
    /// `Tags` (nil when empty).
    pub tags: Vec<String>,
}

/// `*image.historyContext`, the type of `history` rows, for a run at `now`.
pub fn history_row_type(now: i64) -> TypeRef {
    let item = Type::structure(
        "image.HistoryResponseItem",
        vec![
            Field::new("Comment", types::string()),
            Field::new("Created", types::int64()),
            Field::new("CreatedBy", types::string()),
            Field::new("ID", types::string()).json_name("Id"),
            Field::new("Size", types::int64()),
            Field::new("Tags", types::string_slice()),
        ],
        Vec::new(),
    );
    // Field indexes: 0 HeaderContext, 1 trunc, 2 human, 3 h.
    let h = |v: &Value, k: usize| v.fields().get(3).and_then(|s| s.fields().get(k)).cloned();
    let flag = |v: &Value, k: usize| v.fields().get(k).and_then(Value::as_bool).unwrap_or(false);
    let created = move |v: &Value| h(v, 1).and_then(|x| x.as_int()).unwrap_or(0);
    let methods = vec![
        method("Comment", types::string(), move |v| {
            h(v, 0).unwrap_or_default()
        }),
        method("CreatedAt", types::string(), move |v| {
            Value::string(&crate::gofmt::rfc3339_utc(created(v)))
        }),
        method("CreatedBy", types::string(), move |v| {
            let by = h(v, 2)
                .map(|x| s(&x).replace('\t', " "))
                .unwrap_or_default();
            Value::string(&if flag(v, 1) {
                crate::gofmt::ellipsis(&by, 45)
            } else {
                by
            })
        }),
        method("CreatedSince", types::string(), move |v| {
            if !flag(v, 2) {
                return Value::string(&crate::gofmt::rfc3339_utc(created(v)));
            }
            Value::string(&format!(
                "{} ago",
                crate::gofmt::human_duration(crate::render::since(now, created(v)))
            ))
        }),
        full_header_method(),
        method("ID", types::string(), move |v| {
            let id = h(v, 3).map(|x| s(&x).to_owned()).unwrap_or_default();
            Value::string(&if flag(v, 1) { truncate_id(&id) } else { id })
        }),
        marshal_json_method(),
        method("Size", types::string(), move |v| {
            let n = h(v, 4).and_then(|x| x.as_int()).unwrap_or(0);
            Value::string(&if flag(v, 2) {
                crate::gofmt::human_size_with_precision(n as f64, 3)
            } else {
                n.to_string()
            })
        }),
    ];
    let t = Type::structure(
        "image.historyContext",
        vec![
            Field::new("HeaderContext", header_context_type()).embedded(),
            Field::new("trunc", types::bool()),
            Field::new("human", types::bool()),
            Field::new("h", item),
        ],
        methods,
    );
    Type::pointer(&t).with_marshal_json(Arc::new(marshal_methods))
}

/// One `history` row of type `t` (from [`history_row_type`]).
pub fn history_row(t: &TypeRef, d: &HistoryRowData, trunc: bool, human: bool) -> Value {
    let Some(ctx) = t.elem() else {
        return Value::Invalid;
    };
    let item_t = ctx.fields()[3].ty.clone();
    let item = Value::structure(
        &item_t,
        vec![
            Value::string(&d.comment),
            Value::int64(d.created),
            Value::string(&d.created_by),
            Value::string(&d.id),
            Value::int64(d.size),
            strings_or_nil(&d.tags, true),
        ],
    );
    Value::pointer(
        t,
        Some(Value::structure(
            ctx,
            vec![
                header_context(),
                Value::bool(trunc),
                Value::bool(human),
                item,
            ],
        )),
    )
}

/// Go types of the inspect object (dockerd's API types as the 20.10 CLI vendors them).
struct InspectTypes {
    inspect: TypeRef,
    config: TypeRef,
    config_ptr: TypeRef,
    health: TypeRef,
    health_ptr: TypeRef,
    str_slice: TypeRef,
    port_set: TypeRef,
    volumes: TypeRef,
    int_ptr: TypeRef,
    graph: TypeRef,
    rootfs: TypeRef,
    metadata: TypeRef,
}

fn inspect_types() -> &'static InspectTypes {
    static T: std::sync::LazyLock<InspectTypes> = std::sync::LazyLock::new(|| {
        let s = types::string;
        let b = types::bool;
        let str_slice = Type::named("strslice.StrSlice", &types::string_slice(), Vec::new());
        let port = Type::named("nat.Port", &types::string(), Vec::new());
        let port_set = Type::named(
            "nat.PortSet",
            &Type::map(&port, &types::empty_struct()),
            Vec::new(),
        );
        let volumes = Type::map(&types::string(), &types::empty_struct());
        let health = Type::structure(
            "container.HealthConfig",
            vec![
                Field::new("Test", types::string_slice()).omit_empty(),
                Field::new("Interval", time::duration_type()).omit_empty(),
                Field::new("Timeout", time::duration_type()).omit_empty(),
                Field::new("StartPeriod", time::duration_type()).omit_empty(),
                Field::new("Retries", types::int()).omit_empty(),
            ],
            Vec::new(),
        );
        let health_ptr = Type::pointer(&health);
        let int_ptr = Type::pointer(&types::int());
        let config = Type::structure(
            "container.Config",
            vec![
                Field::new("Hostname", s()),
                Field::new("Domainname", s()),
                Field::new("User", s()),
                Field::new("AttachStdin", b()),
                Field::new("AttachStdout", b()),
                Field::new("AttachStderr", b()),
                Field::new("ExposedPorts", port_set.clone()).omit_empty(),
                Field::new("Tty", b()),
                Field::new("OpenStdin", b()),
                Field::new("StdinOnce", b()),
                Field::new("Env", types::string_slice()),
                Field::new("Cmd", str_slice.clone()),
                Field::new("Healthcheck", health_ptr.clone()).omit_empty(),
                Field::new("ArgsEscaped", b()).omit_empty(),
                Field::new("Image", s()),
                Field::new("Volumes", volumes.clone()),
                Field::new("WorkingDir", s()),
                Field::new("Entrypoint", str_slice.clone()),
                Field::new("NetworkDisabled", b()).omit_empty(),
                Field::new("MacAddress", s()).omit_empty(),
                Field::new("OnBuild", types::string_slice()),
                Field::new("Labels", types::string_map()),
                Field::new("StopSignal", s()).omit_empty(),
                Field::new("StopTimeout", int_ptr.clone()).omit_empty(),
                Field::new("Shell", str_slice.clone()).omit_empty(),
            ],
            Vec::new(),
        );
        let config_ptr = Type::pointer(&config);
        let graph = Type::structure(
            "types.GraphDriverData",
            vec![
                Field::new("Data", types::string_map()),
                Field::new("Name", s()),
            ],
            Vec::new(),
        );
        let rootfs = Type::structure(
            "types.RootFS",
            vec![
                Field::new("Type", s()),
                Field::new("Layers", types::string_slice()).omit_empty(),
                Field::new("BaseLayer", s()).omit_empty(),
            ],
            Vec::new(),
        );
        let metadata = Type::structure(
            "types.ImageMetadata",
            vec![Field::new("LastTagTime", time::time_type()).omit_empty()],
            Vec::new(),
        );
        let inspect = Type::structure(
            "types.ImageInspect",
            vec![
                Field::new("ID", s()).json_name("Id"),
                Field::new("RepoTags", types::string_slice()),
                Field::new("RepoDigests", types::string_slice()),
                Field::new("Parent", s()),
                Field::new("Comment", s()),
                Field::new("Created", s()),
                Field::new("Container", s()),
                Field::new("ContainerConfig", config_ptr.clone()),
                Field::new("DockerVersion", s()),
                Field::new("Author", s()),
                Field::new("Config", config_ptr.clone()),
                Field::new("Architecture", s()),
                Field::new("Variant", s()).omit_empty(),
                Field::new("Os", s()),
                Field::new("OsVersion", s()).omit_empty(),
                Field::new("Size", types::int64()),
                Field::new("VirtualSize", types::int64()),
                Field::new("GraphDriver", graph.clone()),
                Field::new("RootFS", rootfs.clone()),
                Field::new("Metadata", metadata.clone()),
            ],
            Vec::new(),
        );
        InspectTypes {
            inspect,
            config,
            config_ptr,
            health,
            health_ptr,
            str_slice,
            port_set,
            volumes,
            int_ptr,
            graph,
            rootfs,
            metadata,
        }
    });
    &T
}

fn opt_strings(t: &TypeRef, v: &Option<Vec<String>>) -> Value {
    Value::slice(
        t,
        v.as_ref()
            .map(|l| l.iter().map(|x| Value::string(x)).collect()),
    )
}

fn empty_set(t: &TypeRef, key: &TypeRef, v: Option<Vec<&String>>) -> Value {
    Value::map(
        t,
        v.map(|keys| {
            keys.into_iter()
                .map(|k| {
                    (
                        Value::string_of(key, k),
                        Value::structure(&types::empty_struct(), Vec::new()),
                    )
                })
                .collect()
        }),
    )
}

/// A `*container.Config` value.
fn config_value(c: Option<&image_store::ContainerConfig>) -> Value {
    let t = inspect_types();
    let Some(c) = c else {
        return Value::pointer(&t.config_ptr, None);
    };
    let port = t.port_set.key().cloned().unwrap_or_else(types::string);
    let health = Value::pointer(
        &t.health_ptr,
        c.healthcheck.as_ref().map(|h| {
            Value::structure(
                &t.health,
                vec![
                    opt_strings(&types::string_slice(), &h.test),
                    time::duration(h.interval),
                    time::duration(h.timeout),
                    time::duration(h.start_period),
                    Value::int(h.retries),
                ],
            )
        }),
    );
    let labels = Value::map(
        &types::string_map(),
        c.labels.as_ref().map(|l| {
            l.iter()
                .map(|(k, v)| (Value::string(k), Value::string(v)))
                .collect()
        }),
    );
    let config = Value::structure(
        &t.config,
        vec![
            Value::string(&c.hostname),
            Value::string(&c.domainname),
            Value::string(&c.user),
            Value::bool(c.attach_stdin),
            Value::bool(c.attach_stdout),
            Value::bool(c.attach_stderr),
            empty_set(
                &t.port_set,
                &port,
                c.exposed_ports.as_ref().map(|m| m.keys().collect()),
            ),
            Value::bool(c.tty),
            Value::bool(c.open_stdin),
            Value::bool(c.stdin_once),
            opt_strings(&types::string_slice(), &c.env),
            opt_strings(&t.str_slice, &c.cmd),
            health,
            Value::bool(c.args_escaped),
            Value::string(&c.image),
            empty_set(
                &t.volumes,
                &types::string(),
                c.volumes.as_ref().map(|m| m.keys().collect()),
            ),
            Value::string(&c.working_dir),
            opt_strings(&t.str_slice, &c.entrypoint),
            Value::bool(c.network_disabled),
            Value::string(&c.mac_address),
            opt_strings(&types::string_slice(), &c.on_build),
            labels,
            Value::string(&c.stop_signal),
            Value::pointer(&t.int_ptr, c.stop_timeout.map(Value::int)),
            opt_strings(&t.str_slice, &c.shell),
        ],
    );
    Value::pointer(&t.config_ptr, Some(config))
}

/// The typed value `inspect -f` templates run on first (`types.ImageInspect`).
pub fn inspect_value(i: &crate::query::Inspect) -> Value {
    let t = inspect_types();
    let last_tag = image_store::time::parse_rfc3339(&i.metadata.last_tag_time)
        .map(|ts| time::time(ts.unix_secs(), ts.nanos()))
        .unwrap_or_else(|_| time::zero_time());
    let graph_data = Value::map(
        &types::string_map(),
        i.graph_driver.data.as_ref().map(|d| {
            d.iter()
                .map(|(k, v)| (Value::string(k), Value::string(v)))
                .collect()
        }),
    );
    Value::structure(
        &t.inspect,
        vec![
            Value::string(&i.id),
            Value::strings(&i.repo_tags),
            Value::strings(&i.repo_digests),
            Value::string(&i.parent),
            Value::string(&i.comment),
            Value::string(&i.created),
            Value::string(&i.container),
            config_value(Some(&i.container_config)),
            Value::string(&i.docker_version),
            Value::string(&i.author),
            config_value(i.config.as_ref()),
            Value::string(&i.architecture),
            Value::string(&i.variant),
            Value::string(&i.os),
            Value::string(&i.os_version),
            Value::int64(i.size),
            Value::int64(i.virtual_size),
            Value::structure(
                &t.graph,
                vec![graph_data, Value::string(&i.graph_driver.name)],
            ),
            Value::structure(
                &t.rootfs,
                vec![
                    Value::string(&i.root_fs.fs_type),
                    if i.root_fs.layers.is_empty() {
                        Value::slice(&types::string_slice(), None)
                    } else {
                        Value::strings(&i.root_fs.layers)
                    },
                    Value::string(""),
                ],
            ),
            Value::structure(&t.metadata, vec![last_tag]),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_functions_behave_as_docker_cli() {
        let f = ListFormat::parse(
            r#"{{split "a,b" ","}} {{join (split "a,b" ",") "+"}} {{title "hello wORLD-x"}} {{upper "é"}} {{pad "x" 1 2}}| {{truncate "abcdef" 3}} {{json "<a>"}}"#,
        )
        .expect("parses");
        let out = f.render(&[Value::Invalid], &Value::Invalid).expect("runs");
        assert_eq!(out, "[a b] a+b Hello WORLD-X É  x  | abc \"<a>\"\n");
        assert_eq!(split("", ","), vec![String::new()]);
        let e = ListFormat::parse("{{nope}}").expect_err("fails");
        assert_eq!(
            e.message,
            "template parsing error: template: :1: function \"nope\" not defined"
        );
    }
}
