//! Go's `text/template`, as Go 1.19 runs it, and Go's `fmt` printing, in Rust.
//!
//! Templates written for Go programs (`docker inspect -f '{{index .Config.Labels "x"}}'`,
//! `{{range .RepoTags}}{{.}} {{end}}`, `{{printf "%-30s" .Name}}`) print here exactly what
//! they print in Go: the same lexer and parser (trim markers, comments, variables,
//! `if`/`else if`/`range`/`with`/`break`/`continue`/`define`/`template`/`block`), the same
//! evaluation rules (fields, methods, map keys, pipelines, nil handling, `missingkey`), the
//! same builtins (`and or not len index slice print printf println eq ne lt le gt ge html
//! js urlquery call`), `fmt`'s verbs and flags, and Go's error messages.
//!
//! Data is a [`Value`]: a small model of Go's `reflect` (kinds, named types, struct fields
//! with `json` tags, methods), so a typed struct prints `{a b}` and a map decoded from JSON
//! prints `map[k:v]` with sorted keys. [`json`] encodes values as Go's `encoding/json` does
//! and decodes JSON into `interface {}` values.
//!
//! ```
//! use go_template::{FuncMap, Template, Value, types, Type, Field};
//!
//! let image = Type::structure(
//!     "types.Image",
//!     vec![
//!         Field::new("ID", types::string()),
//!         Field::new("RepoTags", types::string_slice()),
//!         Field::new("Labels", types::string_map()),
//!     ],
//!     Vec::new(),
//! );
//! let labels = Value::map(
//!     &types::string_map(),
//!     Some(vec![(Value::string("b"), Value::string("2")), (Value::string("a"), Value::string("1"))]),
//! );
//! let data = Value::structure(
//!     &image,
//!     vec![Value::string("sha256:ab"), Value::strings(&["base:latest", "peer/base:v1"]), labels],
//! );
//! let run = |text: &str| {
//!     Template::parse("", text, &FuncMap::new()).expect("parses").execute(&data)
//! };
//! assert_eq!(run("{{.ID}} {{.RepoTags}} {{.Labels}}").expect("runs"),
//!            "sha256:ab [base:latest peer/base:v1] map[a:1 b:2]");
//! assert_eq!(run(r#"{{range $i, $t := .RepoTags}}{{if $i}},{{end}}{{$t}}{{end}}"#).expect("runs"),
//!            "base:latest,peer/base:v1");
//! assert_eq!(run(r#"{{printf "%-6s|%5.2f" (index .Labels "a") 3.14159}}"#).expect("runs"),
//!            "1     | 3.14");
//! assert_eq!(run("{{.Nope}}").unwrap_err().message,
//!            "template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type types.Image");
//! assert_eq!(Template::parse("", "{{if}}", &FuncMap::new()).unwrap_err().to_string(),
//!            "template: :1: missing value for if");
//! ```

#![deny(missing_docs)]

mod exec;
pub mod fmt;
mod funcs;
pub mod json;
mod lex;
mod parse;
mod strconv;
pub mod time;
mod value;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use exec::{ExecError, FuncMap, MissingKey};
pub use value::{
    Field, Func, FuncImpl, JsonTag, Kind, MarshalFn, Method, Type, TypeRef, Value, types,
};

/// A template that does not parse: Go's message (`template: name:1: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// The message.
    pub message: String,
}

/// A parsed template (with the templates it defines), ready to run.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    text: Arc<str>,
    trees: Arc<BTreeMap<String, parse::Tree>>,
    funcs: Arc<FuncMap>,
    missing_key: MissingKey,
}

impl Template {
    /// Parses `text` as the template `name` (Go's `template.New(name).Funcs(funcs).Parse(text)`):
    /// function names are checked against `funcs` and the builtins.
    pub fn parse(name: &str, text: &str, funcs: &FuncMap) -> Result<Template, ParseError> {
        let has = |f: &str| funcs.contains_key(f) || funcs::builtins().contains_key(f);
        let trees = parse::parse(name, text, &has).map_err(|message| ParseError { message })?;
        Ok(Template {
            name: name.to_owned(),
            text: Arc::from(text),
            trees: Arc::new(trees),
            funcs: Arc::new(funcs.clone()),
            missing_key: MissingKey::Invalid,
        })
    }

    /// The template with `funcs` added to (or replacing) its functions, as Go's
    /// `Template.Funcs` after parsing.
    pub fn with_funcs(&self, funcs: &FuncMap) -> Template {
        let mut all = (*self.funcs).clone();
        for (k, v) in funcs {
            all.insert(k.clone(), v.clone());
        }
        Template {
            funcs: Arc::new(all),
            ..self.clone()
        }
    }

    /// The template with the `missingkey` option set (Go's `Option("missingkey=error")`).
    pub fn with_missing_key(&self, missing_key: MissingKey) -> Template {
        Template {
            missing_key,
            ..self.clone()
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the template on `data` (Go's `Execute`): the output, or the error with what
    /// was written before it.
    pub fn execute(&self, data: &Value) -> Result<String, ExecError> {
        exec::Exec {
            name: &self.name,
            text: &self.text,
            trees: &self.trees,
            funcs: &self.funcs,
            missing_key: self.missing_key,
        }
        .run(data)
    }
}
