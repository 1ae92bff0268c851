//! Layer content checked against a real dockerd 20.10: layers we register are saved back
//! by dockerd byte for byte, and layers dockerd registered are streamed back by us byte for
//! byte. Skipped (with a printed reason) where dockerd cannot run.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use digest_set::Digest;
use layer_store::{ChainId, DiffId, LayerStore, VfsDriver};
use test_dockerd::Dockerd;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

const SAVE: &str = "archives/child-and-base.docker-save.tar";

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
    if let Some(why) = test_dockerd::skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let files = crate::common::archive_files(&fixtures().join(SAVE));
    let imgs = crate::common::images(&files);
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
    let ls = d
        .docker_ok(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
        .expect("docker");
    for img in &imgs {
        assert!(ls.contains(&img.tag), "dockerd lists {}: {ls}", img.tag);
    }
    let out = tmp.path().join("saved.tar");
    let out_s = out.to_string_lossy().into_owned();
    let mut args = vec!["save", "-o", out_s.as_str()];
    args.extend(imgs.iter().map(|i| i.tag.as_str()));
    d.docker_ok(&args).expect("docker");
    drop(d);

    let saved = crate::common::archive_files(&out);
    let saved_imgs = crate::common::images(&saved);
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
    if let Some(why) = test_dockerd::skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let files = crate::common::archive_files(&fixtures().join(SAVE));
    let imgs = crate::common::images(&files);
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    {
        let d = Dockerd::start(&root).expect("start dockerd");
        d.docker_ok(&["load", "-i", &fixtures().join(SAVE).to_string_lossy()])
            .expect("docker");
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

fn gnu_tar_available() -> bool {
    std::process::Command::new("tar")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("GNU tar"))
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    rustix::fs::setxattr(p, name, value, rustix::fs::XattrFlags::empty())
        .unwrap_or_else(|e| panic!("setxattr {}: {e}", p.display()));
}

/// Two layers made by GNU tar with every kind of member: GNU long names, PAX records,
/// a non-UTF-8 name, hard links, symlinks, a FIFO, setuid, xattrs, whiteouts and an opaque
/// directory.
fn rich_layers(dir: &Path) -> Vec<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let t1 = dir.join("tree1");
    let long = format!("long/{}/{}", "a".repeat(90), "b".repeat(90));
    fs::create_dir_all(t1.join(&long)).expect("mkdir");
    fs::create_dir_all(t1.join("d")).expect("mkdir");
    fs::write(t1.join(&long).join("f"), b"deep file\n").expect("write");
    fs::write(t1.join("long/old"), b"old\n").expect("write");
    fs::write(t1.join("d/file"), vec![b'x'; 100_000]).expect("write");
    fs::hard_link(t1.join("d/file"), t1.join("d/hard")).expect("link");
    fs::write(t1.join("empty"), b"").expect("write");
    fs::write(
        t1.join(std::ffi::OsStr::from_bytes(b"caf\xe9")),
        b"latin1\n",
    )
    .expect("write");
    std::os::unix::fs::symlink("/d/file", t1.join("sl")).expect("symlink");
    fs::write(t1.join("suid"), b"#!/bin/sh\n").expect("write");
    fs::set_permissions(t1.join("suid"), fs::Permissions::from_mode(0o4755)).expect("chmod");
    let st = std::process::Command::new("mkfifo")
        .arg(t1.join("fifo"))
        .status()
        .expect("mkfifo");
    assert!(st.success());

    let t2 = dir.join("tree2");
    fs::create_dir_all(t2.join("d")).expect("mkdir");
    fs::create_dir_all(t2.join("long")).expect("mkdir");
    fs::write(t2.join("d/.wh.hard"), b"").expect("write");
    fs::write(t2.join("long/.wh..wh..opq"), b"").expect("write");
    fs::write(t2.join("long/new"), b"new\n").expect("write");
    fs::write(t2.join("x"), b"with xattr\n").expect("write");
    set_xattr(&t2.join("x"), "user.test", b"value");
    fs::write(
        t2.join(format!("{}-pax-long-name", "p".repeat(150))),
        b"pax\n",
    )
    .expect("write");

    let mut out = Vec::new();
    for (tree, format) in [(&t1, "--format=gnu"), (&t2, "--format=pax")] {
        let tar = dir.join(format!("{}.tar", tree.display().to_string().len()));
        let st = std::process::Command::new("tar")
            .arg(format)
            .arg("--xattrs")
            .arg("--xattrs-include=user.*")
            .arg("--numeric-owner")
            .arg("-cf")
            .arg(&tar)
            .arg("-C")
            .arg(tree)
            .arg(".")
            .status()
            .expect("tar");
        assert!(st.success());
        out.push(fs::read(&tar).expect("read tar"));
    }
    out
}

/// A `docker load` archive of one image with these layers.
fn docker_archive(layers: &[Vec<u8>], tag: &str) -> (Vec<u8>, Vec<u8>) {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(l).to_string()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Cmd": ["/bin/true"] },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    }))
    .expect("config");
    let config_name = format!("{}.json", Digest::sha256(&config).hex());
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).expect("append");
    };
    let names: Vec<String> = (0..layers.len())
        .map(|i| format!("l{i}/layer.tar"))
        .collect();
    for (n, l) in names.iter().zip(layers) {
        add(n, l);
    }
    add(&config_name, &config);
    let manifest = serde_json::to_vec(&serde_json::json!([
        { "Config": config_name, "RepoTags": [tag], "Layers": names }
    ]))
    .expect("manifest");
    add("manifest.json", &manifest);
    (b.into_inner().expect("archive"), config)
}

#[test]
fn rich_layers_round_trip_through_dockerd_both_ways() {
    if let Some(why) = test_dockerd::skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    if !gnu_tar_available() {
        eprintln!("skipping: GNU tar is not installed");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let layers = rich_layers(tmp.path());
    let (archive, config) = docker_archive(&layers, "rich:latest");
    let archive_path = tmp.path().join("rich.tar");
    fs::write(&archive_path, &archive).expect("write archive");

    // dockerd registers, we stream back.
    let root_a = tmp.path().join("a");
    {
        let d = Dockerd::start(&root_a).expect("start dockerd");
        d.docker_ok(&["load", "-i", &archive_path.to_string_lossy()])
            .expect("docker");
    }
    {
        let driver = VfsDriver::new(root_a.join("vfs")).expect("driver");
        let (store, _) =
            LayerStore::open(root_a.join("image/vfs/layerdb"), Box::new(driver)).expect("store");
        let diffs: Vec<DiffId> = layers.iter().map(|l| sha(l)).collect();
        for (i, l) in layers.iter().enumerate() {
            let id = layer_store::chain_id(&diffs[..=i]).expect("chain");
            let h = store.get(&id).expect("layer");
            let mut back = Vec::new();
            store
                .tar_stream(&h)
                .expect("stream")
                .with_file_checksums(true)
                .read_to_end(&mut back)
                .expect("read");
            assert!(
                back == *l,
                "layer {i} streamed back from dockerd's store differs"
            );
            assert_eq!(
                store.layer(&id).expect("info").diff_size,
                {
                    let mut ours = Vec::new();
                    let mut ds =
                        layer_store::DiffStream::new(&l[..], &mut ours, None).expect("stream");
                    while ds.next_entry().expect("entry").is_some() {}
                    ds.finish().expect("finish").0.size
                },
                "size of layer {i}"
            );
        }
    }

    // We register, dockerd saves and uses the content.
    let root_b = tmp.path().join("b");
    {
        let driver = VfsDriver::new(root_b.join("vfs")).expect("driver");
        let (store, _) =
            LayerStore::open(root_b.join("image/vfs/layerdb"), Box::new(driver)).expect("store");
        let mut parent: Option<ChainId> = None;
        for l in &layers {
            let h = store.register(&l[..], parent.as_ref()).expect("register");
            parent = Some(*h.chain_id());
        }
    }
    let imagedb = root_b.join("image/vfs/imagedb");
    mkdir_700(&imagedb.join("content/sha256"));
    mkdir_700(&imagedb.join("metadata/sha256"));
    let hex = Digest::sha256(&config).hex();
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(imagedb.join("content/sha256").join(&hex))
        .and_then(|mut f| std::io::Write::write_all(&mut f, &config))
        .expect("config");
    fs::write(
        root_b.join("image/vfs/repositories.json"),
        format!(r#"{{"Repositories":{{"rich":{{"rich:latest":"sha256:{hex}"}}}}}}"#),
    )
    .expect("repositories.json");
    let d = Dockerd::start(&root_b).expect("start dockerd");
    let out = tmp.path().join("saved.tar");
    d.docker_ok(&["save", "-o", &out.to_string_lossy(), "rich:latest"])
        .expect("docker");
    // A container's root file system is a copy of our top layer directory.
    let cid = d.docker_ok(&["create", "rich:latest"]).expect("docker");
    let cid = cid.trim();
    let export = tmp.path().join("export.tar");
    d.docker_ok(&["export", "-o", &export.to_string_lossy(), cid])
        .expect("docker");
    d.docker_ok(&["rm", cid]).expect("docker");
    drop(d);

    let saved = crate::common::archive_files(&out);
    let img = crate::common::images(&saved).pop().expect("image");
    assert_eq!(img.layers.len(), layers.len());
    for (i, (s, l)) in img.layers.iter().zip(&layers).enumerate() {
        assert!(s == l, "layer {i} saved by dockerd differs");
    }
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(fs::File::open(&export).expect("export"));
    for e in ar.entries().expect("entries") {
        let e = e.expect("entry");
        names.push(e.path_bytes().into_owned());
    }
    let has = |n: &[u8]| names.iter().any(|x| x.as_slice() == n);
    assert!(has(b"d/file") && has(b"x") && has(b"long/new") && has(b"caf\xe9"));
    assert!(!has(b"d/hard"), "whiteout");
    assert!(!has(b"long/old"), "opaque directory");
}
