//! `cargo xtask gen-archive [-o FILE] [--seed S]`: a `docker save` archive of one generated
//! image, `gen/bench:1`, for the save and load benchmarks: about 270 MiB in 4 layers.
//!
//! - layer 1: 10,000 small text files (100 B–3 KiB, 100 directories) and 5 large
//!   incompressible files (24 MiB each);
//! - layer 2: 10,000 more small files and 5 more large ones;
//! - layer 3: whiteouts: 500 files of layer 1 deleted (`.wh.<name>`), two directories made
//!   opaque (`.wh..wh..opq`) with new content, and a changed file;
//! - layer 4: a few files, a symbolic link and a hard link.
//!
//! The content depends only on the seed (splitmix64); every time in it is fixed. The archive
//! is written by `image-archive`'s writer (the format `docker save` writes) and loads into
//! dockerd 20.10 (`docker load -i FILE`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use digest_set::Digest;
use docker_reference::reference::Reference;
use image_archive::{BoxError, Format, LayerRef, LayerSource, SaveImage, WriteOptions};
use layer_store::DiffId;

use crate::gen_dataroot::Rng;

/// The size of each large file: 22.5 MiB.
const LARGE: usize = 45 << 19;
/// Files' mtime: 2024-01-01T00:00:00Z.
const MTIME: u64 = 1_704_067_200;

/// Parses the arguments and writes the archive.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut out: Option<PathBuf> = None;
    let mut seed: u64 = 1;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-o" | "--output" => {
                out = Some(PathBuf::from(
                    it.next().ok_or("gen-archive: -o needs a file")?,
                ));
            }
            "--seed" => {
                let v = it.next().ok_or("gen-archive: --seed needs a value")?;
                seed = v
                    .parse()
                    .map_err(|e| format!("gen-archive: --seed {v:?}: {e}"))?;
            }
            other => return Err(format!("gen-archive: unknown argument {other:?}")),
        }
    }
    let out = out.unwrap_or_else(|| crate::target_dir().join("bench/gen-bench.docker-save.tar"));
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let layers = generate(seed)?;
    let config = config(&layers);
    let image = Arc::new(
        image_store::Image::from_bytes(config).map_err(|e| format!("gen-archive: config: {e}"))?,
    );
    let tag = Reference::parse_normalized("gen/bench:1").map_err(|e| e.to_string())?;
    let source = Layers(layers.iter().map(|l| (l.0, l.1.clone())).collect());
    let file = std::fs::File::create(&out).map_err(|e| format!("create {}: {e}", out.display()))?;
    let (_, summary) = image_archive::write_archive(
        std::io::BufWriter::new(file),
        &[SaveImage {
            image,
            tags: vec![tag],
            repo_digests: Vec::new(),
            parent: None,
        }],
        &source,
        WriteOptions {
            format: Format::Docker,
            now: i64::try_from(MTIME).unwrap_or(0),
            progress: None,
        },
    )
    .map_err(|e| format!("gen-archive: {e}"))?;
    eprintln!(
        "gen-archive: wrote gen/bench:1 ({} layers, {:.1} MiB) to {}",
        summary.layers,
        summary.bytes as f64 / f64::from(1 << 20),
        out.display()
    );
    Ok(())
}

/// The layers' tar streams, by diff ID.
struct Layers(HashMap<DiffId, Arc<Vec<u8>>>);

impl LayerSource for Layers {
    fn size(&self, layer: &LayerRef) -> Result<u64, BoxError> {
        self.0
            .get(&layer.diff_id)
            .map(|d| d.len() as u64)
            .ok_or_else(|| "no such layer".into())
    }

    fn open(&self, layer: &LayerRef) -> Result<Box<dyn Read + '_>, BoxError> {
        let d = self.0.get(&layer.diff_id).ok_or("no such layer")?;
        Ok(Box::new(&d[..]))
    }
}

/// A layer: its diff ID and tar stream.
type Layer = (DiffId, Arc<Vec<u8>>);

/// A layer under construction: a tar stream in memory.
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Self {
        Tar(tar::Builder::new(Vec::new()))
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn dir(&mut self, path: &str) -> Result<(), String> {
        let mut h = Self::header(tar::EntryType::Directory, 0o755, 0);
        self.0
            .append_data(&mut h, path, std::io::empty())
            .map_err(|e| e.to_string())
    }

    fn file(&mut self, path: &str, data: &[u8]) -> Result<(), String> {
        let mut h = Self::header(tar::EntryType::Regular, 0o644, data.len() as u64);
        self.0
            .append_data(&mut h, path, data)
            .map_err(|e| e.to_string())
    }

    fn link(&mut self, kind: tar::EntryType, path: &str, target: &str) -> Result<(), String> {
        let mut h = Self::header(kind, 0o777, 0);
        self.0
            .append_link(&mut h, path, target)
            .map_err(|e| e.to_string())
    }

    fn finish(self) -> Result<Layer, String> {
        let data = self.0.into_inner().map_err(|e| e.to_string())?;
        Ok((DiffId(Digest::sha256(&data)), Arc::new(data)))
    }
}

const WORDS: [&str; 8] = [
    "alpha ", "bravo ", "charlie ", "delta ", "echo ", "foxtrot ", "golf ", "hotel ",
];

/// A small text file of 100 B to 3 KiB.
fn small(rng: &mut Rng) -> Vec<u8> {
    let len = rng.range(100, 3072) as usize;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        let w = WORDS[(rng.next() % 8) as usize];
        v.extend_from_slice(w.as_bytes());
    }
    v.truncate(len);
    v
}

/// A large incompressible file.
fn large(rng: &mut Rng) -> Vec<u8> {
    let mut v = Vec::with_capacity(LARGE);
    while v.len() < LARGE {
        v.extend_from_slice(&rng.next().to_le_bytes());
    }
    v
}

/// Layers 1 and 2: 100 directories of 100 small files, and 5 large files.
fn bulk(rng: &mut Rng, top: &str) -> Result<Layer, String> {
    let mut t = Tar::new();
    t.dir(&format!("{top}/"))?;
    for d in 0..100 {
        t.dir(&format!("{top}/d{d:03}/"))?;
        for f in 0..100 {
            t.file(&format!("{top}/d{d:03}/f{f:03}.txt"), &small(rng))?;
        }
    }
    t.dir(&format!("{top}/large/"))?;
    for i in 0..5 {
        t.file(&format!("{top}/large/blob{i}.bin"), &large(rng))?;
    }
    t.finish()
}

fn generate(seed: u64) -> Result<Vec<Layer>, String> {
    let mut rng = Rng(seed);
    let l1 = bulk(&mut rng, "usr")?;
    let l2 = bulk(&mut rng, "opt")?;
    // Layer 3: whiteouts.
    let mut t = Tar::new();
    t.dir("usr/")?;
    for d in 0..5 {
        t.dir(&format!("usr/d{d:03}/"))?;
        for f in 0..100 {
            t.file(&format!("usr/d{d:03}/.wh.f{f:03}.txt"), b"")?;
        }
    }
    for d in [10, 11] {
        t.dir(&format!("usr/d{d:03}/"))?;
        t.file(&format!("usr/d{d:03}/.wh..wh..opq"), b"")?;
        t.file(&format!("usr/d{d:03}/replaced.txt"), &small(&mut rng))?;
    }
    t.dir("usr/d020/")?;
    t.file("usr/d020/f000.txt", b"changed\n")?;
    let l3 = t.finish()?;
    // Layer 4: a few files and links.
    let mut t = Tar::new();
    t.dir("etc/")?;
    t.file("etc/bench.conf", b"generated = true\n")?;
    t.link(tar::EntryType::Symlink, "etc/usr-link", "../usr/d050")?;
    t.link(tar::EntryType::Link, "etc/hard.txt", "etc/bench.conf")?;
    let l4 = t.finish()?;
    Ok(vec![l1, l2, l3, l4])
}

/// The image config (fields as dockerd writes them).
fn config(layers: &[Layer]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| go_json::string(&l.0.to_string()))
        .collect();
    let history: Vec<String> = (1..=layers.len())
        .map(|i| {
            format!(
                r#"{{"created":"2024-01-01T00:00:0{i}Z","created_by":{}}}"#,
                go_json::string(&format!("/bin/sh -c #(nop) ADD layer{i}.tar /"))
            )
        })
        .collect();
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        r#"{{"architecture":"amd64","config":{{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{{"org.example.bench":"gen-archive"}}}},"created":"2024-01-01T00:00:0{}Z","history":[{}],"os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        layers.len(),
        history.join(","),
        diff_ids.join(",")
    );
    out
}
