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
use crate::snapshot::Snapshots;
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
    /// `--no-snapshot`: read commands restore the data root from its files alone, without
    /// the snapshot cache ([`crate::snapshot`]), and write no snapshot.
    pub no_snapshot: bool,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            data_root: None,
            storage_driver: None,
            config_file: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            no_snapshot: false,
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
    /// The exit status on failure, where the docker CLI's is not 1 (64 for an `inspect`
    /// template that does not parse).
    pub status: Option<u8>,
}

impl Outcome {
    fn err(e: impl std::fmt::Display) -> Self {
        Outcome {
            stdout: String::new(),
            errors: vec![e.to_string()],
            failed: true,
            status: None,
        }
    }

    fn ok(stdout: String) -> Self {
        Outcome {
            stdout,
            errors: Vec::new(),
            failed: false,
            status: None,
        }
    }

    /// What a command printed before it ended with `result`.
    fn printed(stdout: String, result: Result<(), impl std::fmt::Display>) -> Self {
        match result {
            Ok(()) => Outcome::ok(stdout),
            Err(e) => Outcome {
                stdout,
                ..Outcome::err(e)
            },
        }
    }

    fn template_err(e: crate::template::TemplateError) -> Self {
        Outcome {
            status: (e.status != 1).then_some(e.status),
            ..Outcome::err(e)
        }
    }
}

impl Global {
    /// dockerd's `daemon.json` (`--config-file`, else the default one; missing: empty).
    pub fn daemon_config(&self) -> Result<DaemonConfig, OpenError> {
        Ok(
            match self.config_file.clone().or_else(default_daemon_json) {
                Some(path) => DaemonConfig::load(&path)?,
                None => DaemonConfig::default(),
            },
        )
    }

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
    open_with(g, write, !g.no_snapshot)
}

/// Opens the data root; read-only opens use the snapshot cache when `snapshot` is true
/// and the user has a cache directory.
fn open_with(g: &Global, write: bool, snapshot: bool) -> Result<Store, OpenError> {
    let (root, explicit, driver) = g.resolve()?;
    let snapshots = match (write, snapshot) {
        (false, true) => Snapshots::default_dir().map(Snapshots::new),
        _ => None,
    };
    Store::open(&OpenOptions {
        root,
        driver,
        write,
        create_missing: !explicit,
        lock_timeout: Some(g.lock_timeout),
        snapshots,
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
                snapshots: None,
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

/// `--format`: the command's default (`table`, `text`), `json` (one JSON object a line, an
/// imgstore extension), or a docker CLI template.
enum Format {
    Default,
    Json,
    Template(crate::template::ListFormat),
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

/// `--format` of a command whose default is `text_name`; `templates`: whether it takes
/// templates.
fn parse_format(
    format: &str,
    text_name: &'static str,
    templates: bool,
) -> Result<Format, FormatError> {
    match format {
        "json" => Ok(Format::Json),
        f if f == text_name || f.is_empty() => Ok(Format::Default),
        other if !templates => Err(FormatError::Unsupported {
            given: other.to_owned(),
            default: text_name,
        }),
        other => Ok(Format::Template(crate::template::ListFormat::parse(other)?)),
    }
}

fn split_format(f: Format) -> (bool, Option<crate::template::ListFormat>) {
    match f {
        Format::Default => (false, None),
        Format::Json => (true, None),
        Format::Template(t) => (false, Some(t)),
    }
}

/// The docker CLI's `NewImageFormat`: `raw` is a template of its own; a table template gets
/// a digest column with `--digests`.
fn image_format(format: &str, quiet: bool, digests: bool) -> String {
    match format {
        "raw" if quiet => "image_id: {{.ID}}".to_owned(),
        "raw" if digests => "repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n".to_owned(),
        "raw" => "repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n".to_owned(),
        f if f.starts_with("table") && f != "table" && digests && !f.contains("{{.Digest}}") => {
            format!("{f}\t{{{{.Digest}}}}")
        }
        f => f.to_owned(),
    }
}

/// `imgstore ls`.
pub fn ls(g: &Global, a: &LsArgs) -> Outcome {
    let format = image_format(&a.format, a.quiet, a.digests);
    let (json, template) = match parse_format(&format, "table", true) {
        Ok(f) => split_format(f),
        Err(FormatError::Template(e)) => return Outcome::template_err(e),
        Err(e) => return Outcome::err(e),
    };
    // The CLI's `needDigest`: digests of tagged repositories with `--digests` or when the
    // format names `{{.Digest}}`.
    let need_digest = a.digests || template.as_ref().is_some_and(|t| t.contains("{{.Digest}}"));
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
    let rows = render::ls_rows(&summaries, need_digest, a.digests);
    // A template can print all of dockerd's `ImageSummary`, labels and parent included.
    let details = if template.is_some() {
        summaries
            .iter()
            .map(|s| (s.id, image_details(&store, &s.id)))
            .collect()
    } else {
        Default::default()
    };
    let fmt = LsFormat {
        quiet: a.quiet && template.is_none(),
        no_trunc: a.no_trunc,
        digests: a.digests,
        json,
        template,
        details,
    };
    let result = render::render_ls(&rows, &fmt, render::now_unix());
    drop(rows);
    discard(store, summaries, fmt);
    match result {
        Ok(text) => Outcome::ok(text),
        Err(e) => Outcome::template_err(e),
    }
}

/// dockerd's `ImageSummary` `Labels` (null without a config) and `ParentID` of an image.
fn image_details(
    store: &Store,
    id: &digest_set::Digest,
) -> (Option<std::collections::BTreeMap<String, String>>, String) {
    let labels = store.config(id).ok().and_then(|image| {
        image
            .config()
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
    });
    (labels, store.parent_link(id).unwrap_or_default())
}

/// Drops a large read-only store on another thread: freeing ten thousand images takes tens
/// of milliseconds that the command's output need not wait for. (The lock goes with it.)
fn discard<A: Send + 'static, B: Send + 'static, C: Send + 'static>(a: A, b: B, c: C) {
    let handle = std::thread::spawn(move || drop((a, b, c)));
    // The process exits once the output is written; joining would only add the wait back.
    drop(handle);
}

/// `imgstore inspect [-f FORMAT]`: JSON, or the template run on each image as the docker
/// CLI's template inspector runs it.
pub fn inspect(g: &Global, images: &[String], format: Option<&str>) -> Outcome {
    let template = match format.filter(|f| !f.is_empty()) {
        Some(f) => match crate::template::InspectFormat::parse(f) {
            Ok(t) => Some(t),
            Err(e) => return Outcome::template_err(e),
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
                    let raw = serde_json::to_string(&v).unwrap_or_default();
                    match t.inspect(&crate::template::inspect_value(&v), &raw) {
                        Ok(out) => {
                            text.push_str(&out);
                            text.push('\n');
                        }
                        Err(e) => errors.push(e.message),
                    }
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
        status: None,
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
    let (json, template) = match parse_format(format, "table", true) {
        Ok(f) => split_format(f),
        Err(FormatError::Template(e)) => return Outcome::template_err(e),
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
        Ok(items) => {
            let quiet = quiet && template.is_none();
            match render::render_history(
                &items,
                &HistoryFormat {
                    no_trunc,
                    human,
                    quiet,
                    json,
                    template,
                },
                render::now_unix(),
            ) {
                Ok(text) => Outcome::ok(text),
                Err(e) => Outcome::template_err(e),
            }
        }
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

/// `imgstore load`: the data root (and its image store) is created when missing.
pub fn load(g: &Global, args: &crate::load::LoadArgs, quiet: bool) -> Outcome {
    let opened = g.resolve().and_then(|(root, _, driver)| {
        Store::open(&OpenOptions {
            root,
            driver,
            write: true,
            create_missing: true,
            lock_timeout: Some(g.lock_timeout),
            snapshots: None,
        })
    });
    let mut store = match opened {
        Ok(s) => s,
        Err(e) => return Outcome::err(e),
    };
    let progress = crate::progress::Progress::stderr(quiet);
    let (loaded, result) = crate::load::load(&mut store, args, &progress);
    Outcome::printed(lines(&loaded.lines), result)
}

/// Opens the store for writing, creating the data root when missing (`load`, `pull`).
fn open_for_new_images(g: &Global) -> Result<Store, OpenError> {
    let (root, _, driver) = g.resolve()?;
    Store::open(&OpenOptions {
        root,
        driver,
        write: true,
        create_missing: true,
        lock_timeout: Some(g.lock_timeout),
        snapshots: None,
    })
}

/// `imgstore pull`: `docker pull`'s lines on stdout (only the reference with `quiet`),
/// per-layer progress on a terminal's stderr.
pub fn pull(
    g: &Global,
    args: &crate::pull::PullArgs,
    remote: &crate::remote::RemoteOptions,
    quiet: bool,
) -> Outcome {
    let remote = match remote_for(g, remote) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let mut store = match open_for_new_images(g) {
        Ok(s) => s,
        Err(e) => return Outcome::err(e),
    };
    let progress = crate::progress::Progress::stderr(quiet);
    let (pulled, result) = crate::pull::pull(&mut store, &remote, args, &progress);
    let mut stdout = match quiet {
        true => String::new(),
        false => lines(&pulled.lines),
    };
    if result.is_ok() {
        stdout.push_str(&pulled.reference);
        stdout.push('\n');
    }
    Outcome::printed(stdout, result)
}

/// `imgstore push`: `docker push`'s lines on stdout (only the pushed references with
/// `quiet`), per-layer progress on a terminal's stderr.
pub fn push(
    g: &Global,
    args: &crate::push::PushArgs,
    remote: &crate::remote::RemoteOptions,
    quiet: bool,
) -> Outcome {
    let remote = match remote_for(g, remote) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let mut store = match open_existing_for_write(g) {
        Ok(WriteStore::Open(s)) | Ok(WriteStore::Empty(s)) => s,
        Err(e) => return Outcome::err(e),
    };
    let progress = crate::progress::Progress::stderr(quiet);
    let (pushed, result) = crate::push::push(&mut store, &remote, args, &progress);
    let stdout = match quiet {
        true => lines(pushed.pushed.iter().map(|(r, _)| r)),
        false => lines(&pushed.lines),
    };
    Outcome::printed(stdout, result)
}

/// The lines, each ended by a newline.
fn lines<S: AsRef<str>>(lines: impl IntoIterator<Item = S>) -> String {
    let mut out = String::new();
    for l in lines {
        out.push_str(l.as_ref());
        out.push('\n');
    }
    out
}

/// The registry client as `daemon.json` and the flags set it up (`pull`, `push`).
fn remote_for(
    g: &Global,
    options: &crate::remote::RemoteOptions,
) -> Result<crate::remote::Remote, Outcome> {
    let daemon = g.daemon_config().map_err(Outcome::err)?;
    crate::remote::Remote::new(&daemon, options).map_err(Outcome::err)
}

/// `imgstore fsck [--content]`: exit 1 when damage is found. With `content`, every layer's
/// tar stream is also reassembled and checked against its diff ID ([`fsck::check_content`]).
pub fn fsck(g: &Global, format: &str, content: bool) -> Outcome {
    let json = match parse_format(format, "text", false) {
        Ok(f) => matches!(f, Format::Json),
        Err(e) => return Outcome::err(e),
    };
    // `fsck` looks for damage, so it reads everything: never a snapshot.
    let store = match open_with(g, false, false) {
        Ok(s) => s,
        Err(e) => return Outcome::err(e),
    };
    let mut findings = fsck::check(&store);
    if content {
        findings.extend(fsck::check_content(&store));
        findings.sort_by(|a, b| a.kind.cmp(b.kind).then(a.path.cmp(&b.path)));
    }
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
                        status: None,
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
        status: None,
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
    let progress = crate::progress::Progress::stderr(false);
    // The total is known once the writer has planned the archive (its first report).
    let mut bar: Option<crate::progress::Bar> = None;
    let mut shown = 0;
    let mut on_progress = |p: image_archive::Progress| {
        let b = bar.get_or_insert_with(|| progress.bytes("Saving", p.total));
        b.add(p.done.saturating_sub(shown));
        shown = p.done;
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
        b.finish();
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

/// `imgstore fsck --repair [--quarantine]`: the repair's actions, one a line (`json`: one
/// object a line), then what `fsck` finds afterwards; exit 1 when damage remains.
/// With `content`, the check afterwards is `fsck --content`'s (layer content is reported,
/// never repaired).
pub fn fsck_repair(g: &Global, format: &str, quarantine: bool, content: bool) -> Outcome {
    let json = match parse_format(format, "text", false) {
        Ok(f) => matches!(f, Format::Json),
        Err(e) => return Outcome::err(e),
    };
    let mut store = match open_existing_for_write(g) {
        Ok(WriteStore::Open(s)) => s,
        // No image store: nothing to repair, and nothing is created.
        Ok(WriteStore::Empty(_)) => return fsck(g, format, content),
        Err(e) => return Outcome::err(e),
    };
    let result = crate::repair::repair(&mut store, quarantine);
    drop(store);
    let mut out = String::new();
    let actions = match &result {
        Ok(a) => a.as_slice(),
        Err(_) => &[],
    };
    for a in actions {
        if json {
            out.push_str(&crate::gofmt::escape_go_json(
                &serde_json::to_string(a).unwrap_or_default(),
            ));
        } else {
            out.push_str(&a.to_string());
        }
        out.push('\n');
    }
    if let Err(e) = result {
        return Outcome {
            stdout: out,
            ..Outcome::err(e)
        };
    }
    let mut check = fsck(g, format, content);
    out.push_str(&check.stdout);
    check.stdout = out;
    if check.failed && check.errors.is_empty() && !quarantine {
        check.errors.push(
            "damage remains that repair does not delete; `fsck --repair --quarantine` moves it under image/<driver>/quarantine/"
                .to_owned(),
        );
    }
    check
}

/// `prune` flags.
#[derive(Debug, Clone, Default)]
pub struct PruneArgs {
    /// `-a`: every image without a container, not only dangling ones.
    pub all: bool,
    /// `-f`: do not ask for confirmation.
    pub force: bool,
    /// `--filter`, raw `key=value` (`until=...`, `label=...`, `label!=...`).
    pub filters: Vec<String>,
    /// `--layers`: also remove committed layers no image or container uses.
    pub layers: bool,
}

/// `imgstore prune`: `docker image prune`. Unless `-f`, `confirm` is asked first with the
/// docker CLI's warning (it prints it and reads the answer); a refusal prunes nothing.
pub fn prune(g: &Global, a: &PruneArgs, confirm: &mut dyn FnMut(&str) -> bool) -> Outcome {
    let mut filters = Vec::new();
    for f in &a.filters {
        match f.split_once('=') {
            Some((k, v)) => filters.push((k.trim().to_lowercase(), v.to_owned())),
            None => {
                return Outcome::err(format!("bad format of filter (expected name=value): {f}"));
            }
        }
    }
    filters.push(("dangling".to_owned(), (!a.all).to_string()));
    if !a.force && !confirm(crate::prune::warning(a.all)) {
        return Outcome::ok(crate::prune::render(&Default::default(), false));
    }
    let mut store = match open_existing_for_write(g) {
        Ok(WriteStore::Open(s)) => s,
        Ok(WriteStore::Empty(_)) => {
            return Outcome::ok(crate::prune::render(&Default::default(), a.layers));
        }
        Err(e) => return Outcome::err(e),
    };
    let opts = crate::prune::PruneOptions {
        filters,
        layers: a.layers,
        now: render::now_unix(),
    };
    match store.prune(&opts) {
        Ok(report) => Outcome::ok(crate::prune::render(&report, a.layers)),
        Err(e) => Outcome::err(e),
    }
}

/// `imgstore df [-v] [--format]`: the images part of `docker system df`.
pub fn df(g: &Global, verbose: bool, format: Option<&str>) -> Outcome {
    let format = match format.filter(|f| !f.is_empty()) {
        Some(_) if verbose => {
            return Outcome::err(
                "--format cannot be used with -v (the docker 20.10 CLI prints -v as a table)",
            );
        }
        Some(f) => f,
        None => crate::df::DEFAULT_FORMAT,
    };
    let list_format = match crate::template::ListFormat::parse(format) {
        Ok(f) => f,
        Err(e) => return Outcome::template_err(e),
    };
    let store = match open(g, false) {
        Ok(s) => s,
        Err(e) => return Outcome::err(e),
    };
    let du = match crate::df::disk_usage(&store) {
        Ok(d) => d,
        Err(e) => return Outcome::err(e),
    };
    let text = if verbose {
        crate::df::render_verbose(&du, render::now_unix())
    } else if format == crate::df::DEFAULT_FORMAT {
        crate::df::render_default(&du)
    } else {
        crate::df::render(&du, &list_format)
    };
    match text {
        Ok(t) => Outcome::ok(t),
        Err(e) => Outcome::template_err(e),
    }
}
