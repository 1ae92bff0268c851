//! Layer content checked against a real dockerd 20.10: layers we register are saved back
//! by dockerd byte for byte, and layers dockerd registered are streamed back by us byte for
//! byte. Skipped (with a printed reason) where dockerd cannot run.

#[path = "common/dockerd.rs"]
mod dockerd;

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use digest_set::Digest;
use dockerd::Dockerd;
use layer_store::{ChainId, DiffId, LayerStore, VfsDriver};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

const SAVE: &str = "archives/child-and-base.docker-save.tar";

/// The files of a `docker save` archive, with `docker save`'s symlinked layers resolved.
fn archive_files(path: &Path) -> HashMap<String, Vec<u8>> {
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

struct Image {
    tag: String,
    config_name: String,
    layers: Vec<Vec<u8>>,
}

fn images(files: &HashMap<String, Vec<u8>>) -> Vec<Image> {
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

fn sha(b: &[u8]) -> DiffId {
    DiffId(Digest::sha256(b))
}

fn mkdir_700(p: &Path) {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .expect("mkdir");
}

#[test]
fn dockerd_saves_layers_we_registered_byte_for_byte() {
    if let Some(why) = Dockerd::skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let files = archive_files(&fixtures().join(SAVE));
    let imgs = images(&files);
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    {
        let driver = VfsDriver::new(root.join("vfs")).expect("driver");
        let (store, _) =
            LayerStore::open(root.join("image/vfs/layerdb"), Box::new(driver)).expect("store");
        for img in &imgs {
            let mut parent: Option<ChainId> = None;
            for l in &img.layers {
                let h = store.register(&l[..], parent.as_ref()).expect("register");
                parent = Some(*h.chain_id());
            }
        }
    }
    // The image store is not ours to write yet: put the configs and tags in place by hand,
    // as dockerd would have.
    let imagedb = root.join("image/vfs/imagedb");
    mkdir_700(&imagedb.join("content/sha256"));
    mkdir_700(&imagedb.join("metadata/sha256"));
    let mut repos = serde_json::Map::new();
    for img in &imgs {
        let config = &files[&img.config_name];
        let hex = Digest::sha256(config).hex();
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(imagedb.join("content/sha256").join(&hex))
            .and_then(|mut f| std::io::Write::write_all(&mut f, config))
            .expect("write config");
        let (repo, _) = img.tag.rsplit_once(':').expect("tag");
        repos.insert(
            repo.to_string(),
            serde_json::json!({ img.tag.clone(): format!("sha256:{hex}") }),
        );
    }
    fs::write(
        root.join("image/vfs/repositories.json"),
        serde_json::to_vec(&serde_json::json!({ "Repositories": repos })).expect("json"),
    )
    .expect("repositories.json");

    let d = Dockerd::start(&root).expect("start dockerd");
    let ls = d.docker_ok(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]);
    for img in &imgs {
        assert!(ls.contains(&img.tag), "dockerd lists {}: {ls}", img.tag);
    }
    let out = tmp.path().join("saved.tar");
    let out_s = out.to_string_lossy().into_owned();
    let mut args = vec!["save", "-o", out_s.as_str()];
    args.extend(imgs.iter().map(|i| i.tag.as_str()));
    d.docker_ok(&args);
    drop(d);

    let saved = archive_files(&out);
    let saved_imgs = images(&saved);
    assert_eq!(saved_imgs.len(), imgs.len());
    for img in &imgs {
        let s = saved_imgs
            .iter()
            .find(|s| s.tag == img.tag)
            .expect("image saved");
        let ours: Vec<DiffId> = img.layers.iter().map(|l| sha(l)).collect();
        let theirs: Vec<DiffId> = s.layers.iter().map(|l| sha(l)).collect();
        assert_eq!(ours, theirs, "diff IDs of {}", img.tag);
        assert!(s.layers == img.layers, "layer bytes of {}", img.tag);
    }
}

#[test]
fn we_stream_back_layers_dockerd_registered() {
    if let Some(why) = Dockerd::skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let files = archive_files(&fixtures().join(SAVE));
    let imgs = images(&files);
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    {
        let d = Dockerd::start(&root).expect("start dockerd");
        d.docker_ok(&["load", "-i", &fixtures().join(SAVE).to_string_lossy()]);
    }
    let driver = VfsDriver::new(root.join("vfs")).expect("driver");
    let (store, outcome) =
        LayerStore::open(root.join("image/vfs/layerdb"), Box::new(driver)).expect("store");
    assert!(outcome.skipped.is_empty(), "{outcome:?}");
    let mut streamed = 0;
    for img in &imgs {
        let diffs: Vec<DiffId> = img.layers.iter().map(|l| sha(l)).collect();
        for (i, l) in img.layers.iter().enumerate() {
            let id = layer_store::chain_id(&diffs[..=i]).expect("chain");
            let h = store.get(&id).expect("dockerd registered the layer");
            let mut back = Vec::new();
            store
                .tar_stream(&h)
                .expect("stream")
                .read_to_end(&mut back)
                .expect("read");
            assert_eq!(sha(&back), diffs[i]);
            assert!(back == *l, "layer {id}");
            streamed += 1;
        }
    }
    assert_eq!(streamed, 7);
}
