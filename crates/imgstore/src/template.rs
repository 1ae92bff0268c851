//! The subset of docker's `--format` Go templates that scripts use: `{{.Field}}`,
//! `{{json .}}`, `{{json .Field}}`, literal text with `\t` and `\n`, and the `table` prefix
//! (a header row and `text/tabwriter` alignment), as the docker CLI's formatter applies them.

use std::collections::BTreeMap;

use crate::gofmt::{escape_go_json, tabwrite};

/// One row: field name to its printed value.
pub type Row = BTreeMap<&'static str, String>;

/// A parsed format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    table: bool,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(String),
    JsonRow,
    JsonField(String),
}

/// A format this subset does not support, or a field the rows do not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported --format {format:?}: {reason}")]
pub struct TemplateError {
    /// The format.
    pub format: String,
    /// What is not supported.
    pub reason: String,
}

impl Template {
    /// Parses `format`; `fields` are the field names the rows will have.
    pub fn parse(format: &str, fields: &[&str]) -> Result<Template, TemplateError> {
        let err = |reason: String| TemplateError {
            format: format.to_owned(),
            reason,
        };
        let table = format.starts_with("table");
        let body = if table { &format[5..] } else { format };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        let mut parts = Vec::new();
        let mut rest = body.as_str();
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| err("unclosed action".to_owned()))?;
            let action = after[..end].trim_matches(|c: char| c == ' ' || c == '-');
            let field = |name: &str| -> Result<String, TemplateError> {
                if fields.contains(&name) {
                    Ok(name.to_owned())
                } else {
                    Err(err(format!(
                        "no field .{name} (fields: {})",
                        fields.join(", ")
                    )))
                }
            };
            if action == "json ." {
                parts.push(Part::JsonRow);
            } else if let Some(name) = action.strip_prefix("json .") {
                parts.push(Part::JsonField(field(name.trim())?));
            } else if let Some(name) = action.strip_prefix('.') {
                parts.push(Part::Field(field(name.trim())?));
            } else {
                return Err(err(format!(
                    "only {{{{.Field}}}} and {{{{json .}}}} actions are supported, not {{{{{action}}}}}"
                )));
            }
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Template { table, parts })
    }

    fn line(&self, row: &Row, header: bool, headers: &BTreeMap<&str, &str>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.push_str(s),
                Part::Field(f) if header => {
                    out.push_str(headers.get(f.as_str()).copied().unwrap_or(f.as_str()));
                }
                Part::Field(f) => out.push_str(row.get(f.as_str()).map_or("", String::as_str)),
                Part::JsonRow | Part::JsonField(_) if header => {}
                Part::JsonRow => {
                    out.push_str(&escape_go_json(
                        &serde_json::to_string(row).unwrap_or_default(),
                    ));
                }
                Part::JsonField(f) => {
                    let v = row.get(f.as_str()).cloned().unwrap_or_default();
                    out.push_str(&escape_go_json(
                        &serde_json::to_string(&v).unwrap_or_default(),
                    ));
                }
            }
        }
        out
    }

    /// Renders the rows (one line each); in table mode with a header line from `headers` and
    /// aligned columns.
    pub fn render(&self, rows: &[Row], headers: &BTreeMap<&str, &str>) -> String {
        let empty = Row::new();
        if !self.table {
            let mut out = String::new();
            for r in rows {
                out.push_str(&self.line(r, false, headers));
                out.push('\n');
            }
            return out;
        }
        let mut lines = vec![self.line(&empty, true, headers)];
        lines.extend(rows.iter().map(|r| self.line(r, false, headers)));
        let cells: Vec<Vec<String>> = lines
            .iter()
            .flat_map(|l| l.split('\n'))
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect();
        tabwrite(&cells)
    }
}

/// A format for `inspect -f`: actions are paths into the inspect object (`{{.Id}}`,
/// `{{.Config.Env}}`, `{{json .RootFS}}`, `{{json .}}`), printed as Go's templates print them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    parts: Vec<PathPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PathPart {
    Literal(String),
    Value(Vec<String>),
    Json(Vec<String>),
}

impl PathTemplate {
    /// Parses a format such as `{{.Id}} {{json .RepoTags}}`.
    pub fn parse(format: &str) -> Result<PathTemplate, TemplateError> {
        let err = |reason: String| TemplateError {
            format: format.to_owned(),
            reason,
        };
        // `docker inspect -f` does not expand `\t` or `\n` (unlike the list commands).
        let body = format.to_owned();
        let path = |p: &str| -> Result<Vec<String>, TemplateError> {
            let p = p.trim();
            if p == "." {
                return Ok(Vec::new());
            }
            let Some(rest) = p.strip_prefix('.') else {
                return Err(err(format!("{p:?} is not a field path")));
            };
            let parts: Vec<String> = rest.split('.').map(str::to_owned).collect();
            if parts
                .iter()
                .any(|s| s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            {
                return Err(err(format!("{p:?} is not a field path")));
            }
            Ok(parts)
        };
        let mut parts = Vec::new();
        let mut rest = body.as_str();
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(PathPart::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| err("unclosed action".to_owned()))?;
            let action = after[..end].trim_matches(|c: char| c == ' ' || c == '-');
            if let Some(p) = action.strip_prefix("json ") {
                parts.push(PathPart::Json(path(p)?));
            } else if action.starts_with('.') {
                parts.push(PathPart::Value(path(action)?));
            } else {
                return Err(err(format!(
                    "only {{{{.Path}}}} and {{{{json .Path}}}} actions are supported, not {{{{{action}}}}}"
                )));
            }
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(PathPart::Literal(rest.to_owned()));
        }
        Ok(PathTemplate { parts })
    }

    /// Renders the template for one object (without the trailing newline), as the docker
    /// 20.10 CLI does: on the JSON decoded into Go maps, so keys print sorted and a missing
    /// or null value prints `<no value>`.
    pub fn render(&self, v: &serde_json::Value) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                PathPart::Literal(s) => out.push_str(s),
                PathPart::Value(path) => match lookup(v, path) {
                    Some(x) => out.push_str(&go_print(x)),
                    None => out.push_str("<no value>"),
                },
                PathPart::Json(path) => {
                    let x = lookup(v, path).unwrap_or(&serde_json::Value::Null);
                    out.push_str(&escape_go_json(
                        &serde_json::to_string(x).unwrap_or_default(),
                    ));
                }
            }
        }
        out
    }
}

fn lookup<'a>(v: &'a serde_json::Value, path: &[String]) -> Option<&'a serde_json::Value> {
    let mut cur = v;
    for key in path {
        cur = cur.as_object()?.get(key.as_str())?;
    }
    Some(cur)
}

/// Go's `%v` of a value the docker 20.10 CLI decoded into `map[string]interface{}`: `nil` is
/// `<no value>`, numbers are `float64`s (`1e+06` from a million on), lists `[a b]`, maps
/// `map[k:v]` with sorted keys.
fn go_print(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "<no value>".to_owned(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_float(n.as_f64().unwrap_or(0.0)),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_print_inner).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(o) => format!(
            "map[{}]",
            o.iter()
                .map(|(k, x)| format!("{k}:{}", go_print_inner(x)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Inside a list or map Go prints a nil interface as `<nil>`.
fn go_print_inner(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "<nil>".to_owned(),
        other => go_print(other),
    }
}

/// Go's `%v` of a `float64` (the shortest `%g`): the shortest digits, in exponent form when
/// the decimal exponent is below -4 or at least 6 (`80`, `123456`, `4.53e+07`).
fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".to_owned();
    }
    let exp = f.abs().log10().floor() as i32;
    if (-4..6).contains(&exp) {
        format!("{f}")
    } else {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((m, e)) => {
                let e: i32 = e.parse().unwrap_or(0);
                let sign = if e < 0 { '-' } else { '+' };
                format!("{m}e{sign}{:02}", e.unsigned_abs())
            }
            None => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fields_json_and_tables() {
        let fields = ["ID", "Tag"];
        let mut row = Row::new();
        row.insert("ID", "abc".to_owned());
        row.insert("Tag", "<none>".to_owned());
        let headers = BTreeMap::from([("ID", "IMAGE ID"), ("Tag", "TAG")]);
        let t = Template::parse("{{.ID}}:{{ .Tag }}", &fields).expect("parses");
        assert_eq!(
            t.render(std::slice::from_ref(&row), &headers),
            "abc:<none>\n"
        );
        let t = Template::parse("{{json .}}", &fields).expect("parses");
        assert_eq!(
            t.render(std::slice::from_ref(&row), &headers),
            "{\"ID\":\"abc\",\"Tag\":\"\\u003cnone\\u003e\"}\n"
        );
        let t = Template::parse("table {{.ID}}\\t{{.Tag}}", &fields).expect("parses");
        assert_eq!(
            t.render(std::slice::from_ref(&row), &headers),
            "IMAGE ID   TAG\nabc        <none>\n"
        );
        assert!(Template::parse("{{.Nope}}", &fields).is_err());
        assert!(Template::parse("{{if .ID}}x{{end}}", &fields).is_err());
        assert!(Template::parse("{{.ID", &fields).is_err());
    }
    #[test]
    fn path_templates_print_like_go() {
        let v = serde_json::json!({
            "Id": "sha256:ab",
            "RepoTags": ["base:latest", "peer/base:v1"],
            "Size": 80,
            "VirtualSize": 45_300_000,
            "Config": {"Env": null, "Labels": {"b": "2", "a": "1"}, "Cmd": ["/run"]},
        });
        let r = |f: &str| PathTemplate::parse(f).expect("parses").render(&v);
        assert_eq!(r("{{.Id}} {{.Size}}"), "sha256:ab 80");
        assert_eq!(r("{{.VirtualSize}}"), "4.53e+07");
        assert_eq!(r("{{.RepoTags}}"), "[base:latest peer/base:v1]");
        assert_eq!(
            r("{{json .RepoTags}}"),
            "[\"base:latest\",\"peer/base:v1\"]"
        );
        assert_eq!(
            r("{{.Config.Env}}|{{.Config.Labels}}"),
            "<no value>|map[a:1 b:2]"
        );
        assert_eq!(
            r("{{json .Config}}"),
            "{\"Cmd\":[\"/run\"],\"Env\":null,\"Labels\":{\"a\":\"1\",\"b\":\"2\"}}"
        );
        assert_eq!(r("{{.Nope}}"), "<no value>");
        assert!(PathTemplate::parse("{{range .RepoTags}}{{end}}").is_err());
        assert_eq!(go_float(123_456.0), "123456");
        assert_eq!(go_float(1e21), "1e+21");
    }
}
