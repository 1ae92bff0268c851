//! imgstore's own read-only restore against the project's stores (`layer-store`,
//! `imagedb-fs`, `image-store`) on the fixture roots and on damaged copies: both must restore
//! the same images, with the same children and sizes, and load the same layers.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{FIXTURES, extract};
use digest_set::Digest;
use image_store::ImageStore;
use imagedb_fs::FsBackend;
use imgstore::store::{OpenOptions, Store};
use layer_store::{LayerStore, NullDriver};

type Graph = BTreeMap<Digest, (BTreeSet<Digest>, i64)>;

fn ours(root: &Path) -> (Graph, BTreeSet<Digest>) {
    let store = Store::open(&OpenOptions {
        root: root.to_owned(),
        driver: None,
        write: false,
        create_missing: false,
    })
    .expect("imgstore opens");
    let graph = store
        .images()
        .iter()
        .map(|(id, e)| (*id, (store.children(id).into_iter().collect(), e.size)))
        .collect();
    (graph, store.layers().keys().copied().collect())
}

fn theirs(root: &Path) -> (Graph, BTreeSet<Digest>) {
    let v = root.join("image/vfs");
    let (layers, _) = LayerStore::open_read_only(v.join("layerdb"), Box::new(NullDriver))
        .expect("layer store opens");
    let loaded: BTreeSet<Digest> = layers.layers().iter().map(|l| l.chain_id.0).collect();
    let sizes: BTreeMap<Digest, i64> = layers
        .layers()
        .iter()
        .map(|l| (l.chain_id.0, i64::try_from(l.size).expect("size fits")))
        .collect();
    let backend = FsBackend::open(v.join("imagedb")).expect("backend opens");
    let (images, _) = ImageStore::open(backend, layers).expect("image store opens");
    let graph = images
        .map()
        .iter()
        .map(|(id, img)| {
            let size = img.chain_id().map(|c| sizes[&c.0]).unwrap_or(0);
            let kids = images.children(id).into_iter().map(|c| c.0).collect();
            (id.0, (kids, size))
        })
        .collect();
    (graph, loaded)
}

fn damage(root: &Path, how: &str) {
    let v = root.join("image/vfs");
    let content = v.join("imagedb/content/sha256");
    let layers = v.join("layerdb/sha256");
    let mid = "8198421c8dc571c5263ce2510713b2fe4162b31fc8ae4c0314509359ce5362af";
    let top_layer = "4e989351ddaf626d76456629d4603ceb4eb77b8add196fbe637c109fc90bd4c8";
    let base_layer = "06b5f6904ddc0031ed119e9a60dcc08061777fbf81d2d606e9fd2e1fd7665377";
    match how {
        "config-verify" => {
            let mut b = std::fs::read(content.join(mid)).expect("read");
            b.push(b'\n');
            std::fs::write(content.join(mid), b).expect("write");
        }
        "config-junk" => {
            let d = Digest::sha256(b"[1,2");
            std::fs::write(content.join(d.hex()), b"[1,2").expect("write");
            let d = Digest::sha256(b"{}");
            std::fs::write(content.join(d.hex()), b"{}").expect("write");
            std::fs::write(content.join(".tmp-x"), b"{}").expect("write");
        }
        "no-size" => std::fs::remove_file(layers.join(base_layer).join("size")).expect("rm"),
        "size-newline" => std::fs::write(layers.join(top_layer).join("size"), "17\n").expect("w"),
        "bad-parent" => {
            std::fs::write(layers.join(top_layer).join("parent"), "sha256:zz").expect("w")
        }
        "no-layer-dir" => std::fs::remove_dir_all(layers.join(top_layer)).expect("rm"),
        "empty-cache-id" => {
            std::fs::write(layers.join(base_layer).join("cache-id"), " \n").expect("w")
        }
        "parent-link-missing" => {
            std::fs::remove_file(content.join(mid)).expect("rm");
        }
        other => panic!("unknown damage {other}"),
    }
}

#[test]
fn same_restore_as_the_project_stores() {
    let mut cases: Vec<(&str, Option<&str>)> = FIXTURES.iter().map(|f| (*f, None)).collect();
    for how in [
        "config-verify",
        "config-junk",
        "no-size",
        "size-newline",
        "bad-parent",
        "no-layer-dir",
        "empty-cache-id",
        "parent-link-missing",
    ] {
        cases.push(("dockerroot-02-after-build", Some(how)));
    }
    for (name, how) in cases {
        let (_g, root) = extract(name);
        if let Some(h) = how {
            damage(&root, h);
        }
        let (our_graph, our_layers) = ours(&root);
        let (their_graph, their_layers) = theirs(&root);
        assert_eq!(our_graph, their_graph, "{name} {how:?}: images");
        assert_eq!(our_layers, their_layers, "{name} {how:?}: layers");
    }
}
