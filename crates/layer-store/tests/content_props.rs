//! Property tests: random layers (and a child layer deleting some of their files with
//! whiteouts) registered through the vfs driver match a simple model of the file tree, and
//! stream back byte for byte.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use layer_store::{LayerStore, RegisterOptions, VfsDriver};
use proptest::prelude::*;

fn build(files: &BTreeMap<String, Vec<u8>>, whiteouts: &[String]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o640);
        h.set_mtime(1_500_000_000);
        b.append_data(&mut h, name, &data[..]).expect("append");
    }
    for w in whiteouts {
        let p = Path::new(w);
        let base = p.file_name().expect("name").to_string_lossy();
        let wh = p.with_file_name(format!(".wh.{base}"));
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0);
        b.append_data(&mut h, wh, &[][..]).expect("append");
    }
    b.into_inner().expect("finish")
}

/// Every regular file under `root`, relative path to content.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(dir).expect("read_dir") {
            let p = e.expect("entry").path();
            let m = fs::symlink_metadata(&p).expect("meta");
            if m.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .expect("rel")
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, fs::read(&p).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn files() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
    let name = ("[a-c]", "[a-e]{1,3}").prop_map(|(d, f)| format!("{d}/{f}"));
    prop::collection::btree_map(name, prop::collection::vec(any::<u8>(), 0..3000), 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn layers_match_the_model(base in files(), delete_mask in any::<u16>(), extra in files()) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let driver = VfsDriver::new(tmp.path().join("vfs")).expect("driver");
        let (store, _) =
            LayerStore::open(tmp.path().join("layerdb"), Box::new(driver)).expect("open");
        let opts = RegisterOptions { max_size: None, sync: false };

        let base_tar = build(&base, &[]);
        let hb = store.register_with(&base_tar[..], None, &opts).expect("base");
        let info = store.layer(hb.chain_id()).expect("info");
        let dir = tmp.path().join("vfs/dir").join(&info.cache_id);
        prop_assert_eq!(&tree(&dir), &base);
        prop_assert_eq!(info.diff_size, base.values().map(|v| v.len() as u64).sum::<u64>());
        let mut back = Vec::new();
        store.tar_stream(&hb).expect("stream").read_to_end(&mut back).expect("read");
        prop_assert!(back == base_tar);

        // The child deletes some base files and adds or replaces others.
        let deleted: Vec<String> = base
            .keys()
            .enumerate()
            .filter(|(i, k)| delete_mask & (1 << (i % 16)) != 0 && !extra.contains_key(*k))
            .map(|(_, k)| k.clone())
            .collect();
        let child_tar = build(&extra, &deleted);
        let hc = store
            .register_with(&child_tar[..], Some(hb.chain_id()), &opts)
            .expect("child");
        let mut model = base.clone();
        for d in &deleted {
            model.remove(d);
        }
        model.extend(extra.clone());
        let cinfo = store.layer(hc.chain_id()).expect("info");
        let cdir = tmp.path().join("vfs/dir").join(&cinfo.cache_id);
        prop_assert_eq!(&tree(&cdir), &model);
        prop_assert_eq!(&tree(&dir), &base, "parent untouched");
        let mut back = Vec::new();
        store.tar_stream(&hc).expect("stream").read_to_end(&mut back).expect("read");
        prop_assert!(back == child_tar);
    }
}
