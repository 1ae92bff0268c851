//! The commands behind the `imgstore` binary, as functions that return what to print.

use std::path::PathBuf;
use std::time::Duration;

use crate::dataroot::{
    DEFAULT_LOCK_TIMEOUT, DaemonConfig, DataRoot, IfMissing, default_daemon_json, default_data_root,
};
use crate::error::{LookupError, OpenError, QueryError};
use crate::fsck;
use crate::query::{self, ListOptions};
use crate::render::{self, HistoryFormat, LsFormat};
use crate::store::{OpenOptions, Store};
use crate::tree;

/// The global flags.
#[derive(Debug, Clone)]
pub struct Global {
    /// `--data-root`.
    pub data_root: Option<PathBuf>,
    /// `--storage-driver`.
    pub storage_driver: Option<String>,
    /// `--config-file`: dockerd's `daemon.json`, for the defaults of the two above
    /// (`None`: [`default_daemon_json`]).
    pub config_file: Option<PathBuf>,
    /// `--lock-timeout`: how long to wait for another process's lock on the data root.
    pub lock_timeout: Duration,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            data_root: None,
            storage_driver: None,
            config_file: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }
}

/// What a command produced: text for stdout, error lines for stderr, and whether it failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Standard output.
    pub stdout: String,
    /// One message per error (printed as `imgstore: <message>`).
    pub errors: Vec<String>,
    /// Exit 1 even without error messages (e.g. `fsck` found problems).
    pub failed: bool,
}

impl Outcome {
    fn err(e: impl std::fmt::Display) -> Self {
        Outcome {
            stdout: String::new(),
            errors: vec![e.to_string()],
            failed: true,
        }
    }

    fn ok(stdout: String) -> Self {
        Outcome {
            stdout,
            errors: Vec::new(),
            failed: false,
        }
    }
}

impl Global {
    /// The data root and storage driver, with dockerd's defaults for what was not given:
    /// `data-root` and `storage-driver` from its `daemon.json`, then [`default_data_root`]
    /// and the driver found in the root. Returns (root, given explicitly, driver).
    fn resolve(&self) -> Result<(PathBuf, bool, Option<String>), OpenError> {
        if let (Some(root), Some(driver)) = (&self.data_root, &self.storage_driver) {
            return Ok((root.clone(), true, Some(driver.clone())));
        }
        let config = match self.config_file.clone().or_else(default_daemon_json) {
            Some(path) => DaemonConfig::load(&path)?,
            None => DaemonConfig::default(),
        };
        let driver = self
            .storage_driver
            .clone()
            .or(config.storage_driver.clone());
        match &self.data_root {
            Some(r) => Ok((r.clone(), true, driver)),
            None => Ok((default_data_root(&config)?, false, driver)),
        }
    }
}

fn open(g: &Global, write: bool) -> Result<Store, OpenError> {
    let (root, explicit, driver) = g.resolve()?;
    Store::open(&OpenOptions {
        root,
        driver,
        write,
        create_missing: !explicit,
        lock_timeout: Some(g.lock_timeout),
    })
}

/// A store opened for a write that needs images already there (`tag`, `rm`).
enum WriteStore {
    /// Opened for writing.
    Open(Store),
    /// The data root has no image store: nothing can be tagged or removed, and a failed
    /// write must create nothing. Read-only and empty: the write's own lookups fail as they
    /// would in an empty store, with the same messages.
    Empty(Store),
}

/// Opens for a write on images that must exist. A data root without an image store
/// (`<root>/image/<driver>`) is opened read-only instead, so that the write's failure
/// creates no directories.
fn open_existing_for_write(g: &Global) -> Result<WriteStore, OpenError> {
    let (root, _, driver) = g.resolve()?;
    let resolved = DataRoot::resolve(root.clone(), driver.as_deref())?;
    match std::fs::symlink_metadata(resolved.image_dir()) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // An explicit root must still exist and be a directory.
            if g.data_root.is_some() {
                DataRoot::open(root.clone(), driver.as_deref(), IfMissing::Fail)?;
            }
            Ok(WriteStore::Empty(Store::open(&OpenOptions {
                root,
                driver,
                write: false,
                create_missing: true,
                lock_timeout: Some(g.lock_timeout),
            })?))
        }
        _ => open(g, true).map(WriteStore::Open),
    }
}

/// `ls` flags.
#[derive(Debug, Clone, Default)]
pub struct LsArgs {
    /// `-a`.
    pub all: bool,
    /// `-q`.
    pub quiet: bool,
    /// `--no-trunc`.
    pub no_trunc: bool,
    /// `--digests`.
    pub digests: bool,
    /// `--filter`, raw `key=value`.
    pub filters: Vec<String>,
    /// `--format`.
    pub format: String,
}

/// `--format`: the default (`table`/`text`), `json` (also `{{json .}}`), or a template.
enum Format {
    Default,
    Json,
    Template(crate::template::Template),
}

/// Why a `--format` value was refused.
#[derive(Debug, thiserror::Error)]
enum FormatError {
    /// The command takes no templates.
    #[error("unsupported --format {given:?}: use {default} or json")]
    Unsupported {
        /// The value given.
        given: String,
        /// The command's default format.
        default: &'static str,
    },
    /// A template that does not parse.
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
}

fn parse_format(
    format: &str,
    text_name: &'static str,
    fields: &[&str],
) -> Result<Format, FormatError> {
    match format {
        "json" | "{{json .}}" => Ok(Format::Json),
        f if f == text_name || f.is_empty() => Ok(Format::Default),
        other if fields.is_empty() => Err(FormatError::Unsupported {
            given: other.to_owned(),
            default: text_name,
        }),
        other => Ok(Format::Template(crate::template::Template::parse(
            other, fields,
        )?)),
    }
}

fn split_format(f: Format) -> (bool, Option<crate::template::Template>) {
    match f {
        Format::Default => (false, None),
        Format::Json => (true, None),
        Format::Template(t) => (false, Some(t)),
    }
}

/// `imgstore ls`.
pub fn ls(g: &Global, a: &LsArgs) -> Outcome {
    let (json, template) = match parse_format(&a.format, "table", &render::LS_FIELDS) {
        Ok(f) => split_format(f),
        Err(e) => return Outcome::err(e),
    };
    let mut filters = Vec::new();
    for f in &a.filters {
        match f.split_once('=') {
            Some((k, v)) => filters.push((k.trim().to_lowercase(), v.to_owned())),
            None => {
                return Outcome::err(format!("bad format of filter (expected name=value): {f}"));
            }
        }
    }
    let store = match open(g, false) {
        Ok(s) => s,
        Err(e) => return Outcome::err(e),
    };
    let opts = ListOptions {
        all: a.all,
        filters,
    };
    let summaries = match query::list(&store, &opts) {
        Ok(s) => s,
        Err(e) => return Outcome::err(e),
    };
    let rows = render::ls_rows(&summaries, a.digests);
    let fmt = LsFormat {
        quiet: a.quiet,
        no_trunc: a.no_trunc,
        digests: a.digests,
        json,
        template,
    };
    let text = render::render_ls(&rows, &fmt, render::now_unix());
    discard(store, summaries, rows);
    Outcome::ok(text)
}

/// Drops a large read-only store on another thread: freeing ten thousand images takes tens
/// of milliseconds that the command's output need not wait for. (The lock goes with it.)
fn discard<A: Send + 'static, B: Send + 'static, C: Send + 'static>(a: A, b: B, c: C) {
    let handle = std::thread::spawn(move || drop((a, b, c)));
    // The process exits once the output is written; joining would only add the wait back.
    drop(handle);
}

/// `imgstore inspect [-f FORMAT]`.
pub fn inspect(g: &Global, images: &[String], format: Option<&str>) -> Outcome {
    let template = match format.filter(|f| !f.is_empty()) {
        Some(f) => match crate::template::PathTemplate::parse(f) {
            Ok(t) => Some(t),
            Err(e) => return Outcome::err(e),
        },
        None => None,
    };
    let store = match open(g, false) {
        Ok(s) => s,
        Err(e) => return Outcome::err(e),
    };
    let mut values = Vec::new();
    let mut errors = Vec::new();
    let mut text = String::new();
    for arg in images {
        match store
            .resolve(arg)
            .map_err(QueryError::from)
            .and_then(|id| query::inspect(&store, &id))
        {
            Ok(v) => match &template {
                Some(t) => {
                    let value = serde_json::to_value(&v).unwrap_or(serde_json::Value::Null);
                    text.push_str(&t.render(&value));
                    text.push('\n');
                }
                None => values.push(v),
            },
            Err(e) => errors.push(e.to_string()),
        }
    }
    Outcome {
        stdout: if template.is_some() {
            // The docker CLI's template inspector prints a lone newline when nothing matched.
            if text.is_empty() {
                "\n".to_owned()
            } else {
                text
            }
        } else {
            render::render_inspect(&values)
        },
        failed: !errors.is_empty(),
        errors,
    }
}

/// `imgstore history`.
pub fn history(
    g: &Global,
    image: &str,
    human: bool,
    no_trunc: bool,
    quiet: bool,
    format: &str,
) -> Outcome {
    let (json, template) = match parse_format(format, "table", &render::HISTORY_FIELDS) {
        Ok(f) => split_format(f),
        Err(e) => return Outcome::err(e),
    };
    let store = match open(g, false) {
        Ok(s) => s,
        Err(e) => return Outcome::err(e),
    };
    match store
        .resolve(image)
        .map_err(QueryError::from)
        .and_then(|id| query::history(&store, &id))
    {
        Ok(items) => Outcome::ok(render::render_history(
            &items,
            &HistoryFormat {
                no_trunc,
                human,
                quiet,
                json,
                template,
            },
            render::now_unix(),
        )),
        Err(e) => Outcome::err(e),
    }
}

/// `imgstore tag`.
pub fn tag(g: &Global, source: &str, target: &str) -> Outcome {
    let mut store = match open_existing_for_write(g) {
        Ok(WriteStore::Open(s)) => s,
        Ok(WriteStore::Empty(s)) => {
            return match s.resolve(source) {
                Err(e) => Outcome::err(e),
                // Not reached: an empty store resolves nothing.
                Ok(id) => Outcome::err(LookupError::NoSuchImage(id.to_string())),
            };
        }
        Err(e) => return Outcome::err(e),
    };
    match store.tag(source, target) {
        Ok(_) => Outcome::ok(String::new()),
        Err(e) => Outcome::err(e),
    }
}

/// `rm` flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct RmArgs {
    /// `-f`: remove images that have several references or stopped containers.
    pub force: bool,
    /// Delete untagged parents (`--no-prune` turns it off).
    pub prune: bool,
}

/// `imgstore rm`: each image in turn; errors do not stop the others.
pub fn rm(g: &Global, images: &[String], args: RmArgs) -> Outcome {
    let RmArgs { force, prune } = args;
    let mut store = match open_existing_for_write(g) {
        Ok(WriteStore::Open(s)) => s,
        Ok(WriteStore::Empty(s)) => {
            let mut out = Outcome::default();
            for arg in images {
                let e = match s.resolve(arg) {
                    Err(e) => e,
                    // Not reached: an empty store resolves nothing.
                    Ok(id) => LookupError::NoSuchImage(id.to_string()),
                };
                out.errors.push(e.to_string());
                out.failed = true;
            }
            return out;
        }
        Err(e) => return Outcome::err(e),
    };
    let mut out = Outcome::default();
    for arg in images {
        let mut records = Vec::new();
        let result = store.delete_into(arg, force, prune, &mut records);
        for r in records {
            out.stdout.push_str(&r.to_string());
            out.stdout.push('\n');
        }
        if let Err(e) = result {
            out.errors.push(e.to_string());
            out.failed = true;
        }
    }
    out
}

/// `imgstore tree`.
pub fn tree(g: &Global, image: Option<&str>, no_trunc: bool) -> Outcome {
    let store = match open(g, false) {
        Ok(s) => s,
        Err(e) => return Outcome::err(e),
    };
    let root = match image.map(|i| store.resolve(i)).transpose() {
        Ok(r) => r,
        Err(e) => return Outcome::err(e),
    };
    Outcome::ok(tree::render_tree(&store, root, no_trunc))
}

/// `imgstore fsck`: exit 1 when anything is found.
pub fn fsck(g: &Global, format: &str) -> Outcome {
    let json = match parse_format(format, "text", &[]) {
        Ok(f) => matches!(f, Format::Json),
        Err(e) => return Outcome::err(e),
    };
    let store = match open(g, false) {
        Ok(s) => s,
        Err(e) => return Outcome::err(e),
    };
    let findings = fsck::check(&store);
    let mut out = String::new();
    for f in &findings {
        if json {
            match serde_json::to_string(f) {
                Ok(line) => out.push_str(&crate::gofmt::escape_go_json(&line)),
                Err(e) => {
                    return Outcome {
                        stdout: out,
                        errors: vec![format!(
                            "cannot print finding {} for {} as JSON: {e}",
                            f.kind,
                            f.path.display()
                        )],
                        failed: true,
                    };
                }
            }
        } else {
            out.push_str(&f.to_string());
        }
        out.push('\n');
    }
    if !findings.iter().any(fsck::Finding::is_damage) && !json {
        out.push_str(&format!(
            "ok: {} images, {} layers, {} references; nothing wrong found\n",
            store.images().len(),
            store.layer_store().len(),
            store.refs().entries().count()
        ));
    }
    Outcome {
        stdout: out,
        errors: Vec::new(),
        failed: findings.iter().any(fsck::Finding::is_damage),
    }
}

/// `save` flags.
#[derive(Debug, Clone, Default)]
pub struct SaveArgs {
    /// `-o`: the file to write (standard output when `None`).
    pub output: Option<PathBuf>,
    /// `--format`: `docker` (default) or `oci`.
    pub format: String,
    /// `--compress`: `none` (default), `gzip` or `zstd` (OCI layouts only).
    pub compress: Option<String>,
}

/// `imgstore save`: the archive goes to the `-o` file (written beside it, renamed into place
/// when complete) or to standard output, never to a terminal. A progress bar shows on
/// standard error when it is a terminal, and nothing otherwise.
pub fn save(g: &Global, images: &[String], args: &SaveArgs) -> Outcome {
    use image_archive::{Compression, Format};
    use std::io::IsTerminal as _;

    let compression = match args.compress.as_deref() {
        None | Some("none") => Compression::None,
        Some("gzip") => Compression::Gzip,
        Some("zstd") => Compression::Zstd,
        Some(other) => {
            return Outcome::err(format!(
                "unsupported --compress {other:?}: use none, gzip or zstd"
            ));
        }
    };
    let format = match args.format.as_str() {
        "" | "docker" if args.compress.is_some() => {
            return Outcome::err(
                "--compress applies to --format oci only (docker's layer.tar files are uncompressed)",
            );
        }
        "" | "docker" => Format::Docker,
        "oci" => Format::Oci(compression),
        other => {
            return Outcome::err(format!("unsupported --format {other:?}: use docker or oci"));
        }
    };
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Outcome::err(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        );
    }
    let store = match open(g, false) {
        Ok(s) => s,
        Err(e) => return Outcome::err(e),
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} saving [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let mut on_progress = |p: image_archive::Progress| {
        if let Some(b) = &bar {
            b.set_length(p.total);
            b.set_position(p.done);
        }
    };
    let options = image_archive::WriteOptions {
        format,
        now: render::now_unix(),
        progress: Some(&mut on_progress),
    };
    let result = match &args.output {
        Some(path) => crate::save::save_to_file(&store, images, path, options),
        None => {
            let stdout = std::io::stdout().lock();
            crate::save::save(&store, images, stdout, options).map(|(_, s)| s)
        }
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    match result {
        Ok(summary) => {
            tracing::debug!(
                images = summary.images,
                layers = summary.layers,
                bytes = summary.bytes,
                "archive written"
            );
            Outcome::ok(String::new())
        }
        Err(e) => Outcome::err(e),
    }
}
