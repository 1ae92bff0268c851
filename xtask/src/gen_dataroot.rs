//! `cargo xtask gen-dataroot --images N --out DIR [--seed S]`: writes a synthetic Docker data
//! root of the shape dockerd 20.10 writes (`DIR/image/vfs/...`), for benchmarks.
//!
//! - `imagedb/content/sha256/<id>`: docker-like configs of about 1–3 KiB, mean ≈ 2.1 KiB
//!   (`config`, `container_config`, `history`, `rootfs`), files 0600, dirs 0700;
//! - `imagedb/metadata/sha256/<id>/{parent,lastUpdated}` (0600);
//! - `layerdb/sha256/<chain>/{diff,size,cache-id,parent}` (0644, dir 0700; `sha256/`, `tmp/`
//!   and `mounts/` 0755); no `tar-split.json.gz` (nothing reads it at restore);
//! - `repositories.json` tagging the head of each family as `gen/family-NNNNNN:latest`.
//!
//! Images come in families: a base image of 1–6 layers, then a chain of up to 7 children,
//! each adding one layer and carrying a `parent` link and `lastUpdated`. Every family has its
//! own layers. The output depends only on N and the seed (a splitmix64 PRNG; timestamps are
//! derived from the seed, not the clock).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use digest_set::{Algorithm, Digest};
use image_store::time::Timestamp;
use layer_store::{ChainId, DiffId};

/// Parses the arguments and writes the data root.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut images: Option<usize> = None;
    let mut out: Option<PathBuf> = None;
    let mut seed: u64 = 1;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("gen-dataroot: {name} needs a value"))
        };
        match a.as_str() {
            "--images" => {
                let v = value("--images")?;
                images = Some(
                    v.parse()
                        .map_err(|e| format!("gen-dataroot: --images {v:?}: {e}"))?,
                );
            }
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--seed" => {
                let v = value("--seed")?;
                seed = v
                    .parse()
                    .map_err(|e| format!("gen-dataroot: --seed {v:?}: {e}"))?;
            }
            other => return Err(format!("gen-dataroot: unknown argument {other:?}")),
        }
    }
    let images = images.ok_or("gen-dataroot: --images N is required")?;
    let out = out.ok_or("gen-dataroot: --out DIR is required")?;
    let summary = generate(&out, images, seed)?;
    eprintln!(
        "gen-dataroot: wrote {} images in {} families ({} layers) to {}",
        summary.images,
        summary.families,
        summary.layers,
        out.display()
    );
    Ok(())
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Image configs.
    pub images: usize,
    /// Families (tagged heads).
    pub families: usize,
    /// Layers in the layerdb.
    pub layers: usize,
}

/// splitmix64.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn hex(&mut self, bytes: usize) -> String {
        let mut s = String::with_capacity(bytes * 2);
        while s.len() < bytes * 2 {
            let _ = write!(s, "{:016x}", self.next());
        }
        s.truncate(bytes * 2);
        s
    }
}

const WORDS: [&str; 16] = [
    "alpine", "build", "cache", "debian", "entry", "fetch", "gzip", "http", "install", "java",
    "kernel", "locale", "make", "nginx", "openssl", "python",
];

/// One timestamp as dockerd writes it (Go's RFC 3339 with nanoseconds, UTC), `secs` after the
/// epoch plus `nanos % 10⁹` nanoseconds.
fn timestamp(secs: u64, nanos: u64) -> String {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    // Below 10⁹: the cast cannot truncate.
    Timestamp::from_unix(secs, (nanos % 1_000_000_000) as u32).to_string()
}

/// A JSON string as dockerd (Go's `encoding/json`) writes it.
fn json_str(s: &str) -> String {
    go_json::string(s)
}

fn str_list(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| json_str(s)).collect();
    format!("[{}]", parts.join(","))
}

struct HistoryEntry {
    created: String,
    created_by: String,
    empty: bool,
}

/// A docker `container.Config` object as dockerd writes it.
fn container_config(
    hostname: &str,
    env: &[String],
    cmd: &[String],
    image: &str,
    labels: &BTreeMap<String, String>,
) -> String {
    let labels: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{}:{}", json_str(k), json_str(v)))
        .collect();
    format!(
        concat!(
            r#"{{"Hostname":{},"Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"#,
            r#""AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":{},"#,
            r#""Cmd":{},"Image":{},"Volumes":null,"WorkingDir":"/app","Entrypoint":null,"#,
            r#""OnBuild":null,"Labels":{{{}}}}}"#
        ),
        json_str(hostname),
        str_list(env),
        str_list(cmd),
        json_str(image),
        labels.join(",")
    )
}

struct ImageSpec<'a> {
    parent_id: &'a str,
    created: &'a str,
    diff_ids: &'a [String],
    history: &'a [HistoryEntry],
    env: &'a [String],
    step: &'a str,
    target_size: usize,
}

fn image_config(rng: &mut Rng, spec: &ImageSpec<'_>) -> Vec<u8> {
    let mut labels = BTreeMap::new();
    let history: Vec<String> = spec
        .history
        .iter()
        .map(|h| {
            let empty = if h.empty {
                r#","empty_layer":true"#
            } else {
                ""
            };
            format!(
                r#"{{"created":{},"created_by":{}{empty}}}"#,
                json_str(&h.created),
                json_str(&h.created_by)
            )
        })
        .collect();
    let container = rng.hex(32);
    let build = |labels: &BTreeMap<String, String>| {
        let config = container_config(
            "",
            spec.env,
            &["/app/run.sh".to_owned()],
            spec.parent_id,
            labels,
        );
        let cc = container_config(
            &container[..12],
            spec.env,
            &[
                "/bin/sh".to_owned(),
                "-c".to_owned(),
                format!("#(nop) {}", spec.step),
            ],
            spec.parent_id,
            labels,
        );
        format!(
            concat!(
                r#"{{"architecture":"amd64","config":{},"container":{},"container_config":{},"#,
                r#""created":{},"docker_version":"20.10.24+dfsg1","history":[{}],"os":"linux","#,
                r#""rootfs":{{"type":"layers","diff_ids":{}}}}}"#
            ),
            config,
            json_str(&container),
            cc,
            json_str(spec.created),
            history.join(","),
            str_list(spec.diff_ids)
        )
    };
    let mut out = build(&labels);
    if out.len() < spec.target_size {
        // Each label appears twice (config and container_config), plus its key.
        let key = "org.example.description";
        let pad = (spec.target_size - out.len()).saturating_sub(2 * (key.len() + 6)) / 2;
        let mut text = String::with_capacity(pad);
        while text.len() < pad {
            let w = WORDS[(rng.next() % WORDS.len() as u64) as usize];
            text.push_str(w);
            text.push(' ');
        }
        text.truncate(pad);
        labels.insert(key.to_owned(), text);
        out = build(&labels);
    }
    out.into_bytes()
}

struct Writer {
    root: PathBuf,
}

impl Writer {
    fn dir(&self, path: &Path, mode: u32) -> Result<(), String> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(path)
            .map_err(|e| format!("mkdir {}: {e}", path.display()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {}: {e}", path.display()))
    }

    fn file(&self, path: &Path, data: &[u8], mode: u32) -> Result<(), String> {
        use std::io::Write as _;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(path)
            .map_err(|e| format!("create {}: {e}", path.display()))?;
        f.write_all(data)
            .map_err(|e| format!("write {}: {e}", path.display()))?;
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {}: {e}", path.display()))
    }
}

/// Writes a data root with `images` images under `out` (`out/image/vfs/...`).
pub fn generate(out: &Path, images: usize, seed: u64) -> Result<Summary, String> {
    let w = Writer {
        root: out.join("image/vfs"),
    };
    let imagedb = w.root.join("imagedb");
    let content = imagedb.join("content/sha256");
    let metadata = imagedb.join("metadata/sha256");
    let layerdb = w.root.join("layerdb");
    for d in [&out.join("image"), &w.root, &imagedb] {
        w.dir(d, 0o700)?;
    }
    for d in [&imagedb.join("content"), &content] {
        w.dir(d, 0o700)?;
    }
    for d in [&imagedb.join("metadata"), &metadata] {
        w.dir(d, 0o700)?;
    }
    w.dir(&layerdb, 0o700)?;
    for d in ["sha256", "tmp", "mounts"] {
        w.dir(&layerdb.join(d), 0o755)?;
    }

    let mut rng = Rng(seed ^ 0x1234_5678_9ABC_DEF0);
    let mut repositories: BTreeMap<String, String> = BTreeMap::new();
    let mut summary = Summary {
        images: 0,
        families: 0,
        layers: 0,
    };
    // 2026-01-01T00:00:00Z plus a seed-dependent offset.
    let mut clock: u64 = 1_767_225_600 + (seed % 1000) * 86_400;

    while summary.images < images {
        summary.families += 1;
        let family = summary.families;
        let remaining = images - summary.images;
        let children = (rng.range(0, 7) as usize).min(remaining - 1);
        let base_layers = rng.range(1, 6) as usize;

        let mut diff_ids: Vec<String> = Vec::new();
        let mut chain: Option<ChainId> = None;
        let mut history: Vec<HistoryEntry> = Vec::new();
        let mut env = vec!["PATH=/usr/local/bin:/usr/bin:/bin".to_owned()];
        let mut parent_id = String::new();
        let mut head = String::new();

        for step in 0..=children {
            let new_layers = if step == 0 { base_layers } else { 1 };
            for _ in 0..new_layers {
                clock += rng.range(1, 600);
                let diff = Digest::from_hex(Algorithm::Sha256, &rng.hex(32))
                    .map(DiffId)
                    .map_err(|e| e.to_string())?;
                let next_chain = ChainId::step(chain.as_ref(), &diff);
                let dir = layerdb.join("sha256").join(next_chain.0.hex_buf().as_str());
                w.dir(&dir, 0o700)?;
                w.file(&dir.join("diff"), diff.to_string().as_bytes(), 0o644)?;
                let size = rng.range(0, 200 << 20);
                w.file(&dir.join("size"), size.to_string().as_bytes(), 0o644)?;
                w.file(&dir.join("cache-id"), rng.hex(32).as_bytes(), 0o644)?;
                if let Some(c) = &chain {
                    w.file(&dir.join("parent"), c.to_string().as_bytes(), 0o644)?;
                }
                summary.layers += 1;
                history.push(HistoryEntry {
                    created: timestamp(clock, rng.next()),
                    created_by: format!("/bin/sh -c make {}", WORDS[(rng.next() % 16) as usize]),
                    empty: false,
                });
                diff_ids.push(diff.to_string());
                chain = Some(next_chain);
            }
            let step_text = if step == 0 {
                history.push(HistoryEntry {
                    created: timestamp(clock, rng.next()),
                    created_by: "/bin/sh -c #(nop)  CMD [\"/app/run.sh\"]".to_owned(),
                    empty: true,
                });
                "CMD [\"/app/run.sh\"]".to_owned()
            } else {
                // The child's one layer came from this step; it also sets a variable.
                let var = format!("S{step}={}", rng.hex(2));
                env.push(var.clone());
                format!("ENV {var}")
            };
            let created = timestamp(clock, rng.next());
            let target_size = rng.range(1024, 2048) as usize;
            let config = image_config(
                &mut rng,
                &ImageSpec {
                    parent_id: &parent_id,
                    created: &created,
                    diff_ids: &diff_ids,
                    history: &history,
                    env: &env,
                    step: &step_text,
                    target_size,
                },
            );
            let hex = Digest::sha256(&config).hex();
            w.file(&content.join(&hex), &config, 0o600)?;
            let meta = metadata.join(&hex);
            if step > 0 {
                w.dir(&meta, 0o700)?;
                w.file(&meta.join("parent"), parent_id.as_bytes(), 0o600)?;
                let updated = timestamp(clock + 1, rng.next());
                w.file(&meta.join("lastUpdated"), updated.as_bytes(), 0o600)?;
            }
            summary.images += 1;
            parent_id = format!("sha256:{hex}");
            head = parent_id.clone();
        }
        repositories.insert(format!("gen/family-{family:06}"), head);
    }

    let repos: Vec<String> = repositories
        .iter()
        .map(|(name, id)| {
            format!(
                "{}:{{{}:{}}}",
                json_str(name),
                json_str(&format!("{name}:latest")),
                json_str(id)
            )
        })
        .collect();
    let json = format!(r#"{{"Repositories":{{{}}}}}"#, repos.join(","));
    w.file(&w.root.join("repositories.json"), json.as_bytes(), 0o600)?;
    Ok(summary)
}
