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
}
