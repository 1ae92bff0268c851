//! The `imgstore` command: docker's image commands on a data root, without dockerd.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Parser, Subcommand};

use imgstore::cli;

/// Read and repair a Docker data root without dockerd.
#[derive(Debug, Parser)]
#[command(name = "imgstore", version, about)]
struct Cli {
    /// The data root, as dockerd's (default: $IMGSTORE_DATA_ROOT, else `data-root` in
    /// dockerd's daemon.json, else /var/lib/docker for root; for other users rootless
    /// dockerd's $XDG_DATA_HOME/docker or ~/.local/share/docker).
    #[arg(long, global = true, value_name = "DIR")]
    data_root: Option<PathBuf>,
    /// The storage driver (default: `storage-driver` in dockerd's daemon.json, else the one
    /// dockerd 20.10 would use: the only one under <data-root>/image, the one with state
    /// among several, and overlay2 (vfs when not root) on a new root).
    #[arg(long, global = true, value_name = "NAME")]
    storage_driver: Option<String>,
    /// dockerd's configuration file, for the defaults above (default:
    /// /etc/docker/daemon.json for root, ~/.config/docker/daemon.json for other users).
    #[arg(long, global = true, value_name = "FILE")]
    config_file: Option<PathBuf>,
    /// Log level for messages on stderr (error, warn, info, debug, trace). What restore
    /// skips (reported by `fsck`) is logged from `info` on.
    #[arg(long, global = true, default_value = "warn", value_name = "LEVEL")]
    log_level: String,
    /// How long to wait for another imgstore's lock on the data root before giving up
    /// (writes wait for every other command, reads for writes); 0 fails at once.
    #[arg(long, global = true, default_value = "60", value_name = "SECONDS",
          value_parser = parse_seconds)]
    lock_timeout: std::time::Duration,
    /// Read the data root's files in full instead of using the snapshot of the last read
    /// command (kept in $XDG_CACHE_HOME/imgstore or ~/.cache/imgstore, used only while the
    /// root provably did not change), and write no snapshot. `fsck` never uses one.
    #[arg(long, global = true)]
    no_snapshot: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List images (docker image ls).
    #[command(visible_alias = "images")]
    Ls {
        /// Show all images (default hides intermediate images).
        #[arg(short, long)]
        all: bool,
        /// Only show image IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Don't truncate output.
        #[arg(long)]
        no_trunc: bool,
        /// Show digests.
        #[arg(long)]
        digests: bool,
        /// Filter output (dangling=true|false, reference=PATTERN, label=K[=V], before=IMAGE,
        /// since=IMAGE).
        #[arg(short, long, value_name = "FILTER")]
        filter: Vec<String>,
        /// Output format: table, raw, json (one object per line), or a Go template as the
        /// docker 20.10 CLI runs it, e.g. '{{.Repository}}:{{.Tag}}' or
        /// 'table {{.Repository}}\t{{.ID}}' (fields ID, Repository, Tag, Digest,
        /// CreatedSince, CreatedAt, Size, VirtualSize, SharedSize, UniqueSize, Containers).
        #[arg(long, default_value = "table")]
        format: String,
        /// Only images with this reference (a `reference=` filter), as `docker images NAME`.
        #[arg(value_name = "REPOSITORY[:TAG]")]
        name: Option<String>,
    },
    /// Show details of images as a JSON array (docker image inspect).
    Inspect {
        /// Images: ID, reference or unique ID prefix.
        #[arg(required = true)]
        images: Vec<String>,
        /// Print with a Go template instead of JSON, as docker inspect -f does: e.g. '{{.Id}}',
        /// '{{index .Config.Labels "x"}}', '{{range .RepoTags}}{{.}} {{end}}', '{{json .Config}}'.
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Show the history of an image (docker image history).
    History {
        /// The image.
        image: String,
        /// Print sizes and dates in human readable format.
        #[arg(short = 'H', long, action = ArgAction::Set, default_value_t = true,
              num_args = 0..=1, default_missing_value = "true", require_equals = true)]
        human: bool,
        /// Don't truncate output.
        #[arg(long)]
        no_trunc: bool,
        /// Only show image IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Output format: table, json (one object per line), or a Go template as the docker
        /// 20.10 CLI runs it (fields ID, CreatedSince, CreatedAt, CreatedBy, Size, Comment).
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Create a tag TARGET that refers to SOURCE (docker image tag).
    Tag {
        /// The image to tag.
        source: String,
        /// The new reference.
        target: String,
    },
    /// Remove images (docker image rm).
    #[command(visible_alias = "rmi")]
    Rm {
        /// Images: ID, reference or unique ID prefix.
        #[arg(required = true)]
        images: Vec<String>,
        /// Force removal of the image.
        #[arg(short, long)]
        force: bool,
        /// Do not delete untagged parents.
        #[arg(long)]
        no_prune: bool,
    },
    /// Draw the parent/child graph of images as a tree.
    Tree {
        /// Only this image and its descendants.
        image: Option<String>,
        /// Don't truncate IDs.
        #[arg(long)]
        no_trunc: bool,
    },
    /// Load images from an archive (docker load): docker save (20.10 and 25+), skopeo's
    /// docker-archive, an OCI layout as a tar or a directory; the archive or its layers
    /// may be gzip, bzip2, xz or zstd compressed.
    Load {
        /// Read from this archive file or OCI layout directory instead of standard input.
        #[arg(short, long)]
        input: Option<std::path::PathBuf>,
        /// Suppress the progress output.
        #[arg(short, long)]
        quiet: bool,
        /// The platform to load from a multi-platform index (os/arch[/variant]); default:
        /// this machine's.
        #[arg(long)]
        platform: Option<String>,
    },
    /// Pull an image from a registry (docker pull): Docker schema 2 and OCI manifests,
    /// manifest lists and indexes (the platform's image); layers verified and written as
    /// they arrive; a killed pull run again continues where it stopped.
    Pull {
        /// NAME[:TAG|@DIGEST] (`latest` when neither).
        reference: String,
        /// Print only the reference.
        #[arg(short, long)]
        quiet: bool,
        /// The platform to pull from a manifest list (os/arch[/variant]); default: this
        /// machine's.
        #[arg(long)]
        platform: Option<String>,
        /// How many layers to download at once.
        #[arg(long, default_value_t = imgstore::pull::DEFAULT_CONCURRENT_DOWNLOADS,
              value_parser = parse_concurrency)]
        max_concurrent_downloads: usize,
        #[command(flatten)]
        registry: RegistryFlags,
    },
    /// Push an image to a registry (docker push): layers the registry has (or can mount
    /// from another of its repositories) are not uploaded; the others go gzip-compressed.
    Push {
        /// NAME[:TAG] (without a tag: every tag of the repository).
        reference: String,
        /// Print only the pushed references.
        #[arg(short, long)]
        quiet: bool,
        /// How many layers to upload at once.
        #[arg(long, default_value_t = imgstore::push::DEFAULT_CONCURRENT_UPLOADS,
              value_parser = parse_concurrency)]
        max_concurrent_uploads: usize,
        /// gzip level of uploaded layers, 1 (fastest, the default) to 9 (smallest); dockerd
        /// uses 6.
        #[arg(long, default_value_t = imgstore::push::DEFAULT_COMPRESSION_LEVEL,
              value_parser = clap::value_parser!(u32).range(1..=9))]
        compression_level: u32,
        #[command(flatten)]
        registry: RegistryFlags,
    },
    /// Save images to a tar archive (docker save): the archive dockerd 20.10 writes, or an OCI
    /// image layout. Streams to standard output without -o. Each image's repo digests go
    /// in too (an extension docker ignores).
    Save {
        /// Images: tag, repository name (all its tags), ID or unique ID prefix.
        #[arg(required = true)]
        images: Vec<String>,
        /// Write to this file instead of standard output (written beside it, then renamed
        /// into place).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Archive format: docker (docker save's) or oci (an OCI image layout, which docker
        /// 25's manifest.json also makes loadable by docker load).
        #[arg(long, default_value = "docker")]
        format: String,
        /// Compress the layers of an OCI layout: none, gzip or zstd.
        #[arg(long, value_name = "ALGORITHM")]
        compress: Option<String>,
    },
    /// Show the images' disk usage (the images part of docker system df).
    Df {
        /// Show detailed information on space usage: a row per image with its shared and
        /// unique sizes and containers.
        #[arg(short, long)]
        verbose: bool,
        /// Print with a Go template as the docker 20.10 CLI runs it (fields Type,
        /// TotalCount, Active, Size, Reclaimable), e.g. 'table {{.Type}}\t{{.Size}}'.
        #[arg(long)]
        format: Option<String>,
    },
    /// Remove unused images (docker image prune): dangling ones, or with -a every image no
    /// container uses; --layers also removes committed layers nothing uses.
    Prune {
        /// Remove all unused images, not just dangling ones.
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
        /// Provide filter values (e.g. 'until=<timestamp>', 'label=<key>=<value>').
        #[arg(long, value_name = "FILTER")]
        filter: Vec<String>,
        /// Also remove committed layers that no image or container uses (moby #45939), and
        /// say how much that freed.
        #[arg(long)]
        layers: bool,
    },
    /// Check the data root and explain what is wrong; changes nothing unless --repair.
    Fsck {
        /// Output format: text or json (one object per line).
        #[arg(long, default_value = "text")]
        format: String,
        /// Finish or roll back what interrupted writes left (temp files, staging and
        /// -removing layers, in-flight driver directories, dangling short links, notes of
        /// killed rm, partial downloads of killed pulls), one line per action, then check;
        /// never deletes what may hold data.
        /// Takes the exclusive lock; refused while dockerd uses the root.
        #[arg(long)]
        repair: bool,
        /// With --repair: move what restore cannot use (configs that fail verification,
        /// layers that do not load, references and parent links to missing images) under
        /// image/<driver>/quarantine/, restorable by hand, so that dockerd starts clean.
        #[arg(long, requires = "repair")]
        quarantine: bool,
        /// Also reassemble every layer's tar stream from tar-split.json.gz and the driver's
        /// files (what save and push do), in parallel, and check it against the diff ID:
        /// names each layer whose content was changed or lost and the images that use it.
        /// Reported, never repaired.
        #[arg(long)]
        content: bool,
    },
}

/// Registry settings beyond dockerd's `daemon.json`.
#[derive(Debug, clap::Args)]
struct RegistryFlags {
    /// Also treat this registry (host[:port] or CIDR) as insecure: HTTPS without
    /// verification, then plain HTTP (as dockerd's --insecure-registry; daemon.json's
    /// `insecure-registries` and 127.0.0.0/8 always are).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure_registries: Vec<String>,
    /// Also use this mirror of Docker Hub (as dockerd's --registry-mirror).
    #[arg(long = "registry-mirror", value_name = "URL")]
    registry_mirrors: Vec<String>,
    /// The per-registry certificates directory.
    #[arg(long, value_name = "DIR", default_value = "/etc/docker/certs.d")]
    certs_dir: std::path::PathBuf,
}

impl RegistryFlags {
    fn options(self) -> imgstore::remote::RemoteOptions {
        imgstore::remote::RemoteOptions {
            insecure_registries: self.insecure_registries,
            registry_mirrors: self.registry_mirrors,
            docker_config: None,
            certs_dir: Some(self.certs_dir),
            retry: None,
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let text = e.to_string();
            let message: Vec<&str> = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:"))
                .map(|l| l.trim().trim_start_matches("error: "))
                .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
                .collect();
            return fail(&format!("{} (see imgstore --help)", message.join(" ")));
        }
    };
    // What the stores' restore skips is `fsck`'s to report: their per-image and per-layer
    // warnings show from `info` on, not on every `ls`.
    let level = match cli.log_level.as_str() {
        l @ ("warn" | "error") => {
            format!("{l},image_store=error,layer_store=error,imagedb_fs=error")
        }
        other => other.to_owned(),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();

    let global = cli::Global {
        data_root: cli.data_root,
        storage_driver: cli.storage_driver,
        config_file: cli.config_file,
        lock_timeout: cli.lock_timeout,
        no_snapshot: cli.no_snapshot,
    };
    let started = std::time::Instant::now();
    let outcome = match cli.command {
        Command::Ls {
            all,
            quiet,
            no_trunc,
            digests,
            mut filter,
            format,
            name,
        } => {
            if let Some(n) = name {
                filter.push(format!("reference={n}"));
            }
            cli::ls(
                &global,
                &cli::LsArgs {
                    all,
                    quiet,
                    no_trunc,
                    digests,
                    filters: filter,
                    format,
                },
            )
        }
        Command::Inspect { images, format } => cli::inspect(&global, &images, format.as_deref()),
        Command::History {
            image,
            human,
            no_trunc,
            quiet,
            format,
        } => cli::history(&global, &image, human, no_trunc, quiet, &format),
        Command::Tag { source, target } => cli::tag(&global, &source, &target),
        Command::Rm {
            images,
            force,
            no_prune,
        } => cli::rm(
            &global,
            &images,
            cli::RmArgs {
                force,
                prune: !no_prune,
            },
        ),
        Command::Tree { image, no_trunc } => cli::tree(&global, image.as_deref(), no_trunc),
        Command::Df { verbose, format } => cli::df(&global, verbose, format.as_deref()),
        Command::Prune {
            all,
            force,
            filter,
            layers,
        } => cli::prune(
            &global,
            &cli::PruneArgs {
                all,
                force,
                filters: filter,
                layers,
            },
            &mut confirm,
        ),
        Command::Fsck {
            format,
            repair: false,
            content,
            ..
        } => cli::fsck(&global, &format, content),
        Command::Fsck {
            format,
            quarantine,
            content,
            ..
        } => cli::fsck_repair(&global, &format, quarantine, content),
        Command::Push {
            reference,
            quiet,
            max_concurrent_uploads,
            compression_level,
            registry,
        } => cli::push(
            &global,
            &imgstore::push::PushArgs {
                reference,
                max_concurrent_uploads,
                compression_level,
            },
            &registry.options(),
            quiet,
        ),
        Command::Pull {
            reference,
            quiet,
            platform,
            max_concurrent_downloads,
            registry,
        } => cli::pull(
            &global,
            &imgstore::pull::PullArgs {
                reference,
                platform,
                max_concurrent_downloads,
            },
            &registry.options(),
            quiet,
        ),
        Command::Load {
            input,
            quiet,
            platform,
        } => cli::load(
            &global,
            &imgstore::load::LoadArgs { input, platform },
            quiet,
        ),
        Command::Save {
            images,
            output,
            format,
            compress,
        } => cli::save(
            &global,
            &images,
            &cli::SaveArgs {
                output,
                format,
                compress,
            },
        ),
    };
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "command done"
    );
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(outcome.stdout.as_bytes())
        .and_then(|()| stdout.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return fail(&format!("write standard output: {e}"));
    }
    for err in &outcome.errors {
        let _ = writeln!(std::io::stderr(), "imgstore: {}", one_line(err));
    }
    if outcome.failed || !outcome.errors.is_empty() {
        ExitCode::from(outcome.status.unwrap_or(1))
    } else {
        ExitCode::SUCCESS
    }
}

/// The docker CLI's `PromptForConfirmation`: prints `message` and ` [y/N] ` on stdout and
/// reads a line from stdin; only `y` (any case) confirms.
fn confirm(message: &str) -> bool {
    let mut stdout = std::io::stdout().lock();
    let _ = write!(stdout, "{message} [y/N] ");
    let _ = stdout.flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    answer
        .trim_end_matches(['\n', '\r'])
        .eq_ignore_ascii_case("y")
}

/// `--max-concurrent-downloads`: 1 to 64.
fn parse_concurrency(text: &str) -> Result<usize, String> {
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=64).contains(n))
        .ok_or_else(|| format!("{text:?} is not a number from 1 to 64"))
}

/// `--lock-timeout`: non-negative seconds, fractions allowed.
fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{text:?} is not a number of seconds (e.g. 0, 2.5, 60)"))
}

fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "imgstore: {}", one_line(message));
    ExitCode::from(1)
}

/// An error message as one line: control characters (which may come from file contents)
/// are escaped.
fn one_line(message: &str) -> String {
    message
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}
