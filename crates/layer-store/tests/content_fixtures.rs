//! Layer content against dockerd's own files: the layers of a `docker save` archive hash to
//! the diff IDs dockerd recorded, our tar-split equals dockerd's, sizes match, and streaming
//! a registered layer back gives identical bytes.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use digest_set::Digest;
use layer_store::content::DiffStream;
use layer_store::{ChainId, DiffId, LayerStore, VfsDriver};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// The layer tars of `child-and-base.docker-save.tar`, per image, bottom first.
fn saved_layers() -> Vec<(String, Vec<Vec<u8>>)> {
    let f =
        fs::File::open(fixtures().join("archives/child-and-base.docker-save.tar")).expect("open");
    let mut ar = tar::Archive::new(f);
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    let mut links: Vec<(String, String)> = Vec::new();
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").to_string_lossy().into_owned();
        if let Some(target) = e.link_name().expect("link") {
            // `docker save` stores a repeated layer as a symlink `../<dir>/layer.tar`.
            let target = target.to_string_lossy();
            links.push((name, target.trim_start_matches("../").to_string()));
            continue;
        }
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read");
        files.insert(name, data);
    }
    for (name, target) in links {
        let data = files[&target].clone();
        files.insert(name, data);
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&files["manifest.json"]).expect("manifest");
    manifest
        .as_array()
        .expect("array")
        .iter()
        .map(|img| {
            let tag = img["RepoTags"][0].as_str().expect("tag").to_string();
            let layers = img["Layers"]
                .as_array()
                .expect("layers")
                .iter()
                .map(|l| files[l.as_str().expect("str")].clone())
                .collect();
            (tag, layers)
        })
        .collect()
}

struct FixtureLayer {
    diff: String,
    size: u64,
    tar_split: Vec<u8>,
}

/// The layerdb of dockerroot-02 (it holds every layer of the saved archive), by chain ID.
fn fixture_layerdb() -> (tempfile::TempDir, HashMap<String, FixtureLayer>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let f = fs::File::open(fixtures().join("dockerd-20.10/dockerroot-02-after-build.tar.gz"))
        .expect("open");
    tar::Archive::new(flate2::read::GzDecoder::new(f))
        .unpack(tmp.path())
        .expect("unpack");
    let db = tmp
        .path()
        .join("dockerroot-02-after-build/image/vfs/layerdb/sha256");
    let mut out = HashMap::new();
    for e in fs::read_dir(&db).expect("read_dir") {
        let p = e.expect("entry").path();
        let mut ts = Vec::new();
        flate2::read::GzDecoder::new(fs::File::open(p.join("tar-split.json.gz")).expect("ts"))
            .read_to_end(&mut ts)
            .expect("gunzip");
        out.insert(
            format!("sha256:{}", p.file_name().expect("name").to_string_lossy()),
            FixtureLayer {
                diff: fs::read_to_string(p.join("diff")).expect("diff"),
                size: fs::read_to_string(p.join("size"))
                    .expect("size")
                    .parse()
                    .expect("num"),
                tar_split: ts,
            },
        );
    }
    (tmp, out)
}

fn sha(data: &[u8]) -> DiffId {
    DiffId(Digest::sha256(data))
}

#[test]
fn tar_split_and_size_equal_dockerds() {
    let (_tmp, db) = fixture_layerdb();
    let mut checked = 0;
    for (_, layers) in saved_layers() {
        let mut chain: Option<ChainId> = None;
        for tar in layers {
            let mut json = Vec::new();
            let mut ds = DiffStream::new(&tar[..], &mut json, None).expect("stream");
            while ds.next_entry().expect("entry").is_some() {}
            let (summary, _) = ds.finish().expect("finish");
            assert_eq!(summary.diff_id, sha(&tar));
            let id = match chain {
                Some(c) => c.then(&summary.diff_id),
                None => ChainId(summary.diff_id.0),
            };
            chain = Some(id);
            let fx = db
                .get(&id.to_string())
                .unwrap_or_else(|| panic!("no {id} in {:?}", db.keys()));
            assert_eq!(fx.diff, summary.diff_id.to_string());
            assert_eq!(fx.size, summary.size, "size of {id}");
            assert_eq!(
                String::from_utf8_lossy(&json),
                String::from_utf8_lossy(&fx.tar_split),
                "tar-split of {id}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 7);
}

#[test]
fn register_and_stream_back_byte_exact() {
    let (_tmp, db) = fixture_layerdb();
    let root = tempfile::tempdir().expect("tempdir");
    let driver = VfsDriver::new(root.path().join("vfs")).expect("driver");
    let (store, _) = LayerStore::open(root.path().join("image/vfs/layerdb"), Box::new(driver))
        .expect("open store");
    let mut handles = Vec::new();
    for (_, layers) in saved_layers() {
        let mut parent: Option<ChainId> = None;
        for tar in &layers {
            let h = store.register(&tar[..], parent.as_ref()).expect("register");
            let id = *h.chain_id();
            assert!(db.contains_key(&id.to_string()), "unexpected chain {id}");
            let info = store.layer(&id).expect("layer");
            assert_eq!(info.diff_size, db[&id.to_string()].size);
            let mut back = Vec::new();
            store
                .tar_stream(&h)
                .expect("stream")
                .read_to_end(&mut back)
                .expect("read back");
            assert_eq!(back.len(), tar.len());
            assert!(back == *tar, "layer {id} differs");
            parent = Some(id);
            handles.push(h);
        }
    }
    // The base image's layers are shared by the child image: 4 layers, 4 directories.
    assert_eq!(store.len(), 4);
    assert_eq!(
        fs::read_dir(root.path().join("vfs/dir"))
            .expect("dir")
            .count(),
        4
    );
    // The layer dirs hold full root file systems.
    let top = store.layer(handles[3].chain_id()).expect("child top layer");
    let dir = root.path().join("vfs/dir").join(&top.cache_id);
    assert_eq!(
        fs::read_to_string(dir.join("extra.txt"))
            .expect("extra")
            .len(),
        17
    );
    assert_eq!(
        fs::read_link(dir.join("bin/greet")).expect("symlink"),
        Path::new("../etc/greeting")
    );
    assert!(!dir.join("etc/hostname").exists(), "whiteout applied");
    assert!(dir.join("opt/app/run.sh").exists());
    // Reopening the store streams the same bytes.
    drop(store);
    let driver = VfsDriver::new(root.path().join("vfs")).expect("driver");
    let (store, _) =
        LayerStore::open(root.path().join("image/vfs/layerdb"), Box::new(driver)).expect("reopen");
    for (_, layers) in saved_layers() {
        let diffs: Vec<DiffId> = layers.iter().map(|t| sha(t)).collect();
        let id = layer_store::chain_id(&diffs).expect("chain");
        let mut back = Vec::new();
        store
            .tar_stream_chain(&id)
            .expect("stream")
            .read_to_end(&mut back)
            .expect("read");
        assert!(back == *layers.last().expect("top"));
    }
}
