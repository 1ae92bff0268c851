//! Helpers shared by the layer-store tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use digest_set::Digest;
use layer_store::{DiffId, LayerStore, NullDriver, RestoreReport};

/// `tests/fixtures` of the workspace.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// The names of the dockerd fixture data roots.
pub const DATA_ROOTS: [&str; 4] = [
    "dockerroot-01-after-load",
    "dockerroot-02-after-build",
    "dockerroot-04-after-partial-rm",
    "dockerroot-05-after-full-rm",
];

/// Extracts a dockerd fixture into a temp dir; returns the dir and its layerdb path.
pub fn extract(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = std::fs::File::open(fixtures().join(format!("dockerd-20.10/{name}.tar.gz")))
        .expect("open fixture");
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    ar.set_preserve_permissions(true);
    ar.unpack(tmp.path()).expect("unpack fixture");
    let layerdb = tmp.path().join(name).join("image/vfs/layerdb");
    (tmp, layerdb)
}

/// A deterministic diff ID for test number `n`.
pub fn diff(n: u64) -> DiffId {
    DiffId(Digest::sha256(format!("layer {n}").as_bytes()))
}

/// Opens a fresh read-write store in a temp dir.
pub fn fresh() -> (tempfile::TempDir, LayerStore) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (store, outcome) =
        LayerStore::open(tmp.path().join("layerdb"), Box::new(NullDriver)).expect("open");
    assert_eq!(outcome, RestoreReport::default());
    (tmp, store)
}

/// Reopens the store at `root` read-write.
pub fn reopen(root: &Path) -> (LayerStore, RestoreReport) {
    LayerStore::open(root, Box::new(NullDriver)).expect("reopen")
}

/// Every path under `dir` (relative), sorted.
pub fn tree(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let e = e.expect("entry");
            let p = e.path();
            out.push(p.strip_prefix(base).expect("prefix").to_owned());
            if e.file_type().expect("type").is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The files of a `docker save` archive, with `docker save`'s symlinked layers resolved.
pub fn archive_files(path: &Path) -> HashMap<String, Vec<u8>> {
    let mut ar = tar::Archive::new(fs::File::open(path).expect("open archive"));
    let mut files = HashMap::new();
    let mut links = Vec::new();
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").to_string_lossy().into_owned();
        if let Some(t) = e.link_name().expect("link") {
            links.push((
                name,
                t.to_string_lossy().trim_start_matches("../").to_string(),
            ));
            continue;
        }
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read");
        files.insert(name, data);
    }
    for (name, target) in links {
        let data = files.get(&target).cloned().unwrap_or_default();
        files.insert(name, data);
    }
    files
}

/// One image of a `docker save` archive.
pub struct Image {
    pub tag: String,
    pub config_name: String,
    pub layers: Vec<Vec<u8>>,
}

/// The images of a `docker save` manifest, with their layers' bytes.
pub fn images(files: &HashMap<String, Vec<u8>>) -> Vec<Image> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&files["manifest.json"]).expect("manifest");
    manifest
        .as_array()
        .expect("array")
        .iter()
        .map(|m| Image {
            tag: m["RepoTags"][0].as_str().expect("tag").to_string(),
            config_name: m["Config"].as_str().expect("config").to_string(),
            layers: m["Layers"]
                .as_array()
                .expect("layers")
                .iter()
                .map(|l| files[l.as_str().expect("layer")].clone())
                .collect(),
        })
        .collect()
}
