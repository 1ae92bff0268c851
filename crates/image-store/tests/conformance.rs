//! Restoring the dockerd 20.10 fixture data roots gives what dockerd showed for them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use image_store::{ImageId, ImageStore};
use imagedb_fs::FsBackend;
use layer_store::{LayerStore, NullDriver};

const FIXTURES: [&str; 4] = [
    "dockerroot-01-after-load",
    "dockerroot-02-after-build",
    "dockerroot-04-after-partial-rm",
    "dockerroot-05-after-full-rm",
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/dockerd-20.10")
}

fn extract(name: &str, into: &Path) -> PathBuf {
    let file = std::fs::File::open(fixtures().join(format!("{name}.tar.gz"))).expect("fixture");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive.set_preserve_permissions(true);
    archive.unpack(into).expect("unpack");
    into.join(name).join("image/vfs")
}

/// Removes whitespace outside strings.
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_str, mut escaped) = (false, false);
    for c in json.chars() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

fn open(root: &Path) -> ImageStore<FsBackend, LayerStore> {
    let backend = FsBackend::open(root.join("imagedb")).expect("imagedb");
    let (layers, _) =
        LayerStore::open(root.join("layerdb"), Box::new(NullDriver)).expect("layerdb");
    let (store, report) = ImageStore::open(backend, layers).expect("restore");
    assert!(report.skipped.is_empty(), "{report:?}");
    assert!(report.dangling_parents.is_empty(), "{report:?}");
    store
}

#[test]
fn restore_gives_dockerds_images_and_parents() {
    for name in FIXTURES {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = extract(name, tmp.path());
        let store = open(&root);
        let expected = fixtures().join(format!("{name}.expected"));

        let ls = std::fs::read_to_string(expected.join("ls-a.json")).expect("ls-a");
        let want: BTreeSet<ImageId> = ls
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json line");
                v["ID"].as_str().expect("ID").parse().expect("image id")
            })
            .collect();
        let got: BTreeSet<ImageId> = store.map().keys().copied().collect();
        assert_eq!(got, want, "{name}: images");
        assert_eq!(store.len(), want.len());

        let inspect_text = std::fs::read_to_string(expected.join("inspect.json")).expect("inspect");
        let inspect: Vec<serde_json::Value> =
            serde_json::from_str(&inspect_text).unwrap_or_default();
        let compact_inspect = compact(&inspect_text);
        let mut parents = BTreeMap::new();
        for img in &inspect {
            let id: ImageId = img["Id"].as_str().expect("Id").parse().expect("id");
            let parent = img["Parent"].as_str().expect("Parent");
            let parent = (!parent.is_empty()).then(|| parent.parse::<ImageId>().expect("parent"));
            assert_eq!(
                store.get_parent(&id).expect("known"),
                parent,
                "{name}: parent of {id}"
            );
            parents.insert(id, parent);

            // The typed model prints as dockerd's inspect does.
            let image = store.get(&id).expect("get");
            let cfg = image.config();
            let cc = serde_json::to_string(&cfg.container_config).expect("ser");
            assert!(
                compact_inspect.contains(&format!("\"ContainerConfig\":{cc}")),
                "{name}: ContainerConfig of {id}: {cc}"
            );
            let c = serde_json::to_string(&cfg.config).expect("ser");
            assert!(
                compact_inspect.contains(&format!("\"Config\":{c}")),
                "{name}: Config of {id}: {c}"
            );
            let created = cfg.created.map(|t| t.to_string()).unwrap_or_default();
            assert_eq!(img["Created"].as_str(), Some(created.as_str()));
            assert_eq!(img["Author"].as_str(), Some(cfg.author.as_str()));
            let layers: Vec<String> = image.diff_ids().iter().map(|d| d.to_string()).collect();
            let want_layers: Vec<String> = img["RootFS"]["Layers"]
                .as_array()
                .expect("layers")
                .iter()
                .map(|v| v.as_str().expect("str").to_owned())
                .collect();
            assert_eq!(layers, want_layers);
        }
        // Children are the inverse of parents.
        for id in store.map().keys() {
            let children: Vec<ImageId> = parents
                .iter()
                .filter(|(_, p)| **p == Some(*id))
                .map(|(c, _)| *c)
                .collect();
            assert_eq!(store.children(id), children, "{name}: children of {id}");
        }
    }
}

#[test]
fn configs_are_never_reserialised() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = extract("dockerroot-02-after-build", tmp.path());
    let store = open(&root);
    for (id, info) in store.map() {
        let on_disk =
            std::fs::read(root.join("imagedb/content/sha256").join(id.hex())).expect("read");
        let image = store.get(&id).expect("get");
        assert_eq!(image.raw_json(), &on_disk[..]);
        assert_eq!(
            (info.chain_id, info.created),
            (image.chain_id(), image.created())
        );
    }
    // The base config (written by umoci) ends in a newline, which its ID covers.
    let base: ImageId = "sha256:7db95e6e4fe3a141e68c2ff6cc0267d1fb63728cf6b9fa326a05ecb3b43ea6fe"
        .parse()
        .expect("id");
    assert_eq!(
        store.get(&base).expect("base").raw_json().last(),
        Some(&b'\n')
    );
}

#[test]
fn last_updated_reads_dockerds_format() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = extract("dockerroot-02-after-build", tmp.path());
    let store = open(&root);
    for id in store.map().keys() {
        let path = root
            .join("imagedb/metadata/sha256")
            .join(id.hex())
            .join("lastUpdated");
        let got = store.get_last_updated(id).expect("read");
        match std::fs::read_to_string(&path) {
            Ok(text) => assert_eq!(got.map(|t| t.to_string()), Some(text)),
            Err(_) => assert_eq!(got, None),
        }
    }
}

#[test]
fn delete_on_a_real_root_releases_layers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = extract("dockerroot-02-after-build", tmp.path());
    let store = open(&root);
    let child: ImageId = store.search("2c8eeb116eab").expect("peer/child:1");
    let parent = store
        .get_parent(&child)
        .expect("known")
        .expect("has parent");
    // The child shares its top layer with its parent: nothing deleted.
    assert!(store.delete(&child).expect("delete").is_empty());
    assert!(
        !root
            .join("imagedb/content/sha256")
            .join(child.hex())
            .exists()
    );
    assert!(
        !root
            .join("imagedb/metadata/sha256")
            .join(child.hex())
            .exists()
    );
    assert!(store.children(&parent).is_empty());
    // Deleting the whole chain down to the base deletes the layers.
    let mut deleted = Vec::new();
    let mut cursor = Some(parent);
    while let Some(id) = cursor {
        cursor = store.get_parent(&id).expect("known");
        deleted.extend(store.delete(&id).expect("delete"));
    }
    assert_eq!(deleted.len(), 4, "{deleted:?}");
    assert!(store.is_empty());
}
