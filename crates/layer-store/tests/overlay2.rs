//! The overlay2 driver against what dockerd 20.10 writes and reads: the layout and `diff/`
//! trees of `wave2/o2root-after-load` (dockerd's own `docker load` of `bbapp`), streaming
//! dockerd's layers back, dockerd running what we registered, a model of overlayfs's merged
//! view against vfs, hostile tars and killed writes. Needs root (character devices,
//! `trusted.*` extended attributes): without it each test prints why it is skipped.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use digest_set::Digest;
use layer_store::{
    ChainId, DiffId, Driver, DriverError, LayerStore, Overlay2Driver, RegisterError, SHORT_ID_LEN,
    VfsDriver, is_short_id,
};
use proptest::prelude::*;

use crate::common;

fn root_skip() -> Option<&'static str> {
    (!rustix::process::geteuid().is_root())
        .then_some("overlay2 needs root (character devices, trusted.* xattrs)")
}

fn bbapp_layers() -> Vec<Vec<u8>> {
    let files = common::archive_files(&common::fixtures().join("wave2/bbapp.docker-save.tar"));
    let imgs = common::images(&files);
    let img = imgs.iter().find(|i| i.tag == "bbapp:1").expect("bbapp:1");
    img.layers.clone()
}

fn overlay2_store(root: &Path) -> LayerStore {
    let driver = Overlay2Driver::new(root.join("overlay2"));
    let (store, _) =
        LayerStore::open(root.join("image/overlay2/layerdb"), Box::new(driver)).expect("store");
    store
}

fn register_all(store: &LayerStore, layers: &[Vec<u8>]) -> Vec<ChainId> {
    let mut parent: Option<ChainId> = None;
    let mut out = Vec::new();
    for l in layers {
        let h = store.register(&l[..], parent.as_ref()).expect("register");
        parent = Some(*h.chain_id());
        out.push(*h.chain_id());
    }
    out
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn xattrs(p: &Path) -> Vec<(String, Vec<u8>)> {
    let mut buf = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(p, &mut buf[..]).unwrap_or(0);
    let mut out = Vec::new();
    for name in buf[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        let mut v = vec![0u8; 4096];
        let m = rustix::fs::lgetxattr(p, name.as_str(), &mut v[..]).expect("getxattr");
        v.truncate(m);
        out.push((name, v));
    }
    out.sort();
    out
}

/// Everything about a tree that overlayfs or a `docker save` can see: per path, type, mode,
/// owner, size, content hash or link target, device, xattrs, times (the root's, and those of
/// whiteout devices, which record when they were made, excepted) and hard-link groups.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    fn walk(
        root: &Path,
        dir: &Path,
        inodes: &mut HashMap<u64, String>,
        out: &mut BTreeMap<String, String>,
    ) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .collect();
        names.sort();
        for p in names {
            let m = fs::symlink_metadata(&p).expect("meta");
            let rel = p
                .strip_prefix(root)
                .expect("rel")
                .to_string_lossy()
                .into_owned();
            let ft = m.file_type();
            let whiteout = ft.is_char_device() && m.rdev() == 0;
            let kind = if ft.is_dir() {
                "dir".to_owned()
            } else if ft.is_symlink() {
                format!("link->{}", fs::read_link(&p).expect("readlink").display())
            } else if ft.is_file() {
                format!("file:{}", Digest::sha256(&fs::read(&p).expect("read")))
            } else if ft.is_char_device() {
                format!("chr:{}", m.rdev())
            } else {
                format!("other:{:o}", m.mode())
            };
            let time = if whiteout {
                String::new()
            } else {
                format!("{}.{}", m.mtime(), m.mtime_nsec())
            };
            let link = if !ft.is_dir() && m.nlink() > 1 {
                let first = inodes.entry(m.ino()).or_insert_with(|| rel.clone());
                format!(" hardlink-group={first}")
            } else {
                String::new()
            };
            out.insert(
                rel,
                format!(
                    "{kind} mode={:o} owner={}:{} size={} mtime={time} xattrs={:?}{link}",
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid(),
                    if ft.is_dir() { 0 } else { m.size() },
                    xattrs(&p),
                ),
            );
            if ft.is_dir() {
                walk(root, &p, inodes, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut HashMap::new(), &mut out);
    out
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).expect("meta").mode() & 0o7777
}

/// The overlay2 layout of one layer, without its random names: modes of the layer
/// directory and its entries, the number of lower layers, whether it is committed.
fn layout(home: &Path, cache_id: &str) -> String {
    let d = home.join(cache_id);
    let link = read(&d.join("link"));
    assert!(is_short_id(&link), "{}: short id {link:?}", d.display());
    let target = fs::read_link(home.join("l").join(&link)).expect("l/ link");
    assert_eq!(target, Path::new("..").join(cache_id).join("diff"));
    let mut s = format!(
        "dir={:o} diff={:o} link={:o}",
        mode(&d),
        mode(&d.join("diff")),
        mode(&d.join("link"))
    );
    if d.join("lower").exists() {
        let lower = read(&d.join("lower"));
        for l in lower.split(':') {
            let short = l.strip_prefix("l/").expect("l/ prefix");
            assert!(is_short_id(short), "lower entry {l:?}");
            assert!(home.join(l).join(".").exists(), "{l} resolves");
        }
        s += &format!(
            " lower={:o}:{} work={:o}/{}",
            mode(&d.join("lower")),
            lower.split(':').count(),
            mode(&d.join("work")),
            fs::read_dir(d.join("work")).expect("work").count()
        );
    }
    if d.join("committed").exists() {
        s += &format!(" committed={:o}", mode(&d.join("committed")));
    }
    s
}

fn extract_o2root(dir: &Path) -> PathBuf {
    let tgz = common::fixtures().join("wave2/o2root-after-load.tar.gz");
    let st = Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xzf"])
        .arg(&tgz)
        .arg("-C")
        .arg(dir)
        .status()
        .expect("run tar");
    assert!(st.success(), "tar -x {}", tgz.display());
    dir.join("o2root-after-load")
}

fn cache_id(root: &Path, chain: &ChainId) -> String {
    read(
        &root
            .join("image/overlay2/layerdb/sha256")
            .join(chain.0.hex())
            .join("cache-id"),
    )
}

#[test]
fn registered_layers_match_what_dockerd_wrote_on_overlay2() {
    if let Some(why) = root_skip() {
        eprintln!("skipping: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let theirs = extract_o2root(tmp.path());
    let ours = tmp.path().join("ours");
    let chains = register_all(&overlay2_store(&ours), &bbapp_layers());
    for chain in &chains {
        let layerdb = |r: &Path| r.join("image/overlay2/layerdb/sha256").join(chain.0.hex());
        for f in ["diff", "size", "parent"] {
            let (a, b) = (layerdb(&ours).join(f), layerdb(&theirs).join(f));
            assert_eq!(a.exists(), b.exists(), "{f} of {chain}");
            if b.exists() {
                assert_eq!(read(&a), read(&b), "{f} of {chain}");
            }
        }
        let (oc, tc) = (cache_id(&ours, chain), cache_id(&theirs, chain));
        let (oh, th) = (ours.join("overlay2"), theirs.join("overlay2"));
        assert_eq!(layout(&oh, &oc), layout(&th, &tc), "layout of {chain}");
        let (mut a, mut b) = (
            snapshot(&oh.join(&oc).join("diff")),
            snapshot(&th.join(&tc).join("diff")),
        );
        // Times of a layer's root are when it was applied.
        a.remove("");
        b.remove("");
        assert_eq!(a, b, "diff/ of {chain}");
    }
    assert_eq!(mode(&ours.join("overlay2")), mode(&theirs.join("overlay2")));
    assert_eq!(
        mode(&ours.join("overlay2/l")),
        mode(&theirs.join("overlay2/l"))
    );
    assert_eq!(
        fs::read_dir(ours.join("overlay2/l")).expect("l").count(),
        chains.len()
    );
    // Nothing in flight is left.
    for e in fs::read_dir(ours.join("overlay2")).expect("home") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        assert!(name == "l" || name.len() == 64, "unexpected {name}");
    }
}

#[test]
fn layers_dockerd_wrote_on_overlay2_stream_back_byte_for_byte() {
    if let Some(why) = root_skip() {
        eprintln!("skipping: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = extract_o2root(tmp.path());
    let store = overlay2_store(&root);
    let layers = bbapp_layers();
    let mut parent: Option<ChainId> = None;
    for l in &layers {
        let diff = DiffId(Digest::sha256(l));
        let chain = ChainId::step(parent.as_ref(), &diff);
        let h = store.get(&chain).expect("layer dockerd registered");
        let mut out = Vec::new();
        store
            .tar_stream(&h)
            .expect("stream")
            .read_to_end(&mut out)
            .expect("read stream");
        assert!(out == *l, "layer {chain} streams back byte for byte");
        parent = Some(chain);
    }
}

#[test]
fn sizes_are_what_dockerd_records_for_overlay2() {
    if let Some(why) = root_skip() {
        eprintln!("skipping: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = overlay2_store(tmp.path());
    let chains = register_all(&store, &bbapp_layers());
    // busybox: the binary plus the 7 bytes of the `sh -> busybox` link (vfs counts 1982256).
    let base = store.layer(&chains[0]).expect("base");
    assert_eq!(base.diff_size, 1_982_263);
}

fn mkdir_700(p: &Path) {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .expect("mkdir");
}

#[test]
fn dockerd_on_overlay2_runs_and_saves_what_we_registered() {
    if let Some(why) = test_dockerd::skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let files = common::archive_files(&common::fixtures().join("wave2/bbapp.docker-save.tar"));
    let imgs = common::images(&files);
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    {
        let store = overlay2_store(&root);
        for img in &imgs {
            register_all(&store, &img.layers);
        }
    }
    let imagedb = root.join("image/overlay2/imagedb");
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
        root.join("image/overlay2/repositories.json"),
        serde_json::to_vec(&serde_json::json!({ "Repositories": repos })).expect("json"),
    )
    .expect("repositories.json");

    let d = test_dockerd::Dockerd::start_with_driver(&root, "overlay2").expect("start dockerd");
    let ls = d
        .docker_ok(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
        .expect("docker image ls");
    assert!(
        ls.lines().any(|l| l == "bbapp:1"),
        "dockerd lists bbapp:1: {ls}"
    );
    let out = d
        .docker(&["run", "--rm", "--network", "none", "bbapp:1"])
        .expect("docker run");
    let expected = read(&common::fixtures().join("wave2/bbapp.run-output.txt"));
    let expected: String = expected.split_inclusive('\n').skip(1).collect();
    assert!(
        out.status.success(),
        "docker run: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    let saved = tmp.path().join("saved.tar");
    let saved_s = saved.to_string_lossy().into_owned();
    d.docker_ok(&["save", "-o", saved_s.as_str(), "bbapp:1"])
        .expect("docker save");
    drop(d);
    let saved = common::archive_files(&saved);
    let saved_imgs = common::images(&saved);
    let ours = imgs.iter().find(|i| i.tag == "bbapp:1").expect("bbapp");
    assert!(
        saved_imgs[0].layers == ours.layers,
        "dockerd saves our layers byte for byte"
    );
}

#[test]
fn hostile_tars_stay_inside_diff_and_leave_nothing() {
    if let Some(why) = root_skip() {
        eprintln!("skipping: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).expect("mkdir");
    let store = overlay2_store(&root);
    let base = register_all(&store, &bbapp_layers()[..1])[0];
    let entry = |name: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        {
            let gnu = h.as_gnu_mut().expect("gnu");
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                gnu.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_cksum();
        let mut v = h.as_bytes().to_vec();
        v.extend_from_slice(data);
        v.resize(v.len().div_ceil(512) * 512, 0);
        v
    };
    let out = outside.to_string_lossy().into_owned();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "../escape",
            entry("../escape", tar::EntryType::Regular, None, b"x"),
        ),
        ("evil", {
            let mut v = entry("evil", tar::EntryType::Symlink, Some(&out), b"");
            v.extend(entry("evil/x", tar::EntryType::Regular, None, b"x"));
            v
        }),
        (
            "hl",
            entry("hl", tar::EntryType::Link, Some("../../../etc/passwd"), b""),
        ),
        (
            "a/.wh...",
            entry("a/.wh...", tar::EntryType::Regular, None, b""),
        ),
    ];
    for (what, mut tar) in cases {
        tar.extend([0u8; 1024]);
        let err = store
            .register(&tar[..], Some(&base))
            .expect_err(what)
            .to_string();
        assert!(!err.contains('\n'), "{what}: one line: {err}");
        assert!(
            err.contains(what.split('/').next().unwrap_or(what)),
            "{what}: names the entry: {err}"
        );
        assert_eq!(
            fs::read_dir(&outside).expect("outside").count(),
            0,
            "{what}"
        );
        // Only the base layer's directory and link are there.
        let names: Vec<String> = fs::read_dir(root.join("overlay2"))
            .expect("home")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{what}: {names:?}");
        assert_eq!(fs::read_dir(root.join("overlay2/l")).expect("l").count(), 1);
        assert_eq!(store.len(), 1);
    }
}

#[test]
fn a_killed_write_leaves_nothing_dockerd_would_use_and_is_cleaned_up() {
    if let Some(why) = root_skip() {
        eprintln!("skipping: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let layers = bbapp_layers();
    {
        let store = overlay2_store(&root);
        let base = register_all(&store, &layers[..1])[0];
        // A write killed after its content was applied, before the commit: as if the
        // process died (nothing of its cleanup runs).
        let pending = store.begin_register(Some(&base)).expect("begin");
        let cache = pending.cache_id().to_owned();
        let partial = root
            .join("overlay2")
            .join(format!("imgstore-partial-{cache}"));
        assert!(partial.join("diff").is_dir());
        assert!(!root.join("overlay2").join(&cache).exists());
        std::mem::forget(pending);
        // Nothing under `l/` points at it, no layer names it.
        assert_eq!(fs::read_dir(root.join("overlay2/l")).expect("l").count(), 1);
        std::mem::forget(store);
    }
    let (store, report) = {
        let driver = Overlay2Driver::new(root.join("overlay2"));
        LayerStore::open(root.join("image/overlay2/layerdb"), Box::new(driver)).expect("reopen")
    };
    assert_eq!(report.leftovers.len(), 1, "{report:?}");
    assert!(report.leftovers[0].cleaned, "{report:?}");
    let names: Vec<String> = fs::read_dir(root.join("overlay2"))
        .expect("home")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "in-flight directory removed: {names:?}");
    // And the same layers register again.
    register_all(&store, &layers);
}

#[test]
fn removing_a_layer_removes_its_link_and_directory() {
    if let Some(why) = root_skip() {
        eprintln!("skipping: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let store = overlay2_store(&root);
    let layers = bbapp_layers();
    let mut handles = Vec::new();
    let mut parent: Option<ChainId> = None;
    for l in &layers {
        let h = store.register(&l[..], parent.as_ref()).expect("register");
        parent = Some(*h.chain_id());
        handles.push(h);
    }
    let top = handles.pop().expect("top");
    for h in &handles {
        assert!(store.release(h).expect("release").is_empty());
    }
    let removed = store.release(&top).expect("release");
    assert_eq!(removed.len(), layers.len());
    assert_eq!(fs::read_dir(root.join("overlay2/l")).expect("l").count(), 0);
    assert_eq!(
        fs::read_dir(root.join("overlay2")).expect("home").count(),
        1,
        "only l/ is left"
    );
}

#[test]
fn writing_needs_root_and_says_so() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = Overlay2Driver::new(tmp.path().join("overlay2"));
    let r = d.create(&"a".repeat(64), None);
    if rustix::process::geteuid().is_root() {
        r.expect("root creates");
        assert!(
            tmp.path()
                .join("overlay2")
                .join(format!("imgstore-partial-{}", "a".repeat(64)))
                .join("diff")
                .is_dir()
        );
        d.commit(&"a".repeat(64)).expect("commit");
        let link = read(
            &tmp.path()
                .join("overlay2")
                .join("a".repeat(64))
                .join("link"),
        );
        assert_eq!(link.len(), SHORT_ID_LEN);
    } else {
        let e = r.expect_err("needs root");
        assert!(matches!(e, DriverError::NeedsRoot { .. }), "{e}");
        assert!(e.to_string().contains("needs root"), "{e}");
        assert!(!tmp.path().join("overlay2").exists());
        let e = RegisterError::Driver {
            cache_id: "x".into(),
            source: e,
        };
        assert!(e.to_string().contains("root"), "{e}");
    }
}

// ---- overlayfs's merged view, computed from `diff/` dirs, against vfs ----

/// A node of a merged tree: its description (type, mode, content).
fn describe(p: &Path) -> String {
    let m = fs::symlink_metadata(p).expect("meta");
    let ft = m.file_type();
    if ft.is_dir() {
        format!("dir {:o}", m.mode() & 0o7777)
    } else if ft.is_symlink() {
        format!("link {}", fs::read_link(p).expect("readlink").display())
    } else {
        format!(
            "file {:o} {}",
            m.mode() & 0o7777,
            Digest::sha256(&fs::read(p).expect("read"))
        )
    }
}

/// What overlayfs shows for `lowers` (bottom first): whiteout devices hide, opaque
/// directories hide what lies below them.
fn merged(diffs: &[PathBuf]) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .collect();
        names.sort();
        for p in names {
            let rel = p
                .strip_prefix(root)
                .expect("rel")
                .to_string_lossy()
                .into_owned();
            let m = fs::symlink_metadata(&p).expect("meta");
            let under = |k: &String| k.starts_with(&format!("{rel}/"));
            if m.file_type().is_char_device() && m.rdev() == 0 {
                out.retain(|k, _| k != &rel && !under(k));
                continue;
            }
            if m.is_dir() {
                if out.get(&rel).is_some_and(|d| !d.starts_with("dir")) {
                    out.remove(&rel);
                }
                let opaque = xattrs(&p)
                    .iter()
                    .any(|(k, v)| k == "trusted.overlay.opaque" && v == b"y");
                if opaque {
                    out.retain(|k, _| !under(k));
                }
                out.insert(rel.clone(), describe(&p));
                walk(root, &p, out);
            } else {
                out.retain(|k, _| !under(k));
                out.insert(rel, describe(&p));
            }
        }
    }
    let mut out = BTreeMap::new();
    for d in diffs {
        walk(d, d, &mut out);
    }
    out
}

fn plain(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in fs::read_dir(dir).expect("read_dir") {
            let p = e.expect("entry").path();
            let rel = p
                .strip_prefix(root)
                .expect("rel")
                .to_string_lossy()
                .into_owned();
            out.insert(rel, describe(&p));
            if fs::symlink_metadata(&p).expect("meta").is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[derive(Debug, Clone)]
struct Layer {
    files: BTreeMap<String, (Vec<u8>, bool)>,
    whiteouts: Vec<String>,
    opaque: Vec<String>,
}

fn build(l: &Layer) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    // Directories first, as docker writes them (an opaque marker keeps only what the
    // layer's own members name).
    let mut dirs = std::collections::BTreeSet::new();
    for name in l.files.keys() {
        let mut p = Path::new(name).parent();
        while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(d.to_path_buf());
            p = d.parent();
        }
    }
    for d in dirs {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o755);
        h.set_mtime(1_400_000_000);
        b.append_data(&mut h, &d, &[][..]).expect("append");
    }
    for (name, (data, link)) in &l.files {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_500_000_000);
        if *link {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            b.append_link(&mut h, name, String::from_utf8_lossy(data).as_ref())
                .expect("append");
        } else {
            h.set_size(data.len() as u64);
            h.set_mode(0o640);
            b.append_data(&mut h, name, &data[..]).expect("append");
        }
    }
    for d in &l.opaque {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0);
        b.append_data(&mut h, format!("{d}/.wh..wh..opq"), &[][..])
            .expect("append");
    }
    for w in &l.whiteouts {
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

fn layers() -> impl Strategy<Value = Vec<Layer>> {
    let name = ("[a-c]", "(/[d-e])?", "/[f-h]{1,2}").prop_map(|(a, b, c)| format!("{a}{b}{c}"));
    let content = (
        prop::collection::vec(any::<u8>(), 0..600),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(d, link)| {
            if link {
                (b"target".to_vec(), true)
            } else {
                (d, false)
            }
        });
    let layer = (
        prop::collection::btree_map(name, content, 1..8),
        prop::collection::vec(0usize..64, 0..4),
        prop::collection::vec("[a-c]", 0..2),
    );
    prop::collection::vec(layer, 1..4).prop_map(|raw| {
        let mut below: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for (files, wh, opq) in raw {
            // Whiteouts name what lower layers hold (files or their directories) and nothing
            // this layer adds or writes beneath.
            let mut candidates: Vec<String> = below.clone();
            for f in &below {
                let mut p = Path::new(f).parent();
                while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
                    candidates.push(d.to_string_lossy().into_owned());
                    p = d.parent();
                }
            }
            candidates.sort();
            candidates.dedup();
            let clash = |w: &str| {
                files.keys().any(|f: &String| {
                    f == w || f.starts_with(&format!("{w}/")) || w.starts_with(&format!("{f}/"))
                })
            };
            let mut whiteouts: Vec<String> = Vec::new();
            if !candidates.is_empty() {
                for i in wh {
                    let w = candidates[i % candidates.len()].clone();
                    if !clash(&w)
                        && !whiteouts.iter().any(|o| {
                            o == &w
                                || w.starts_with(&format!("{o}/"))
                                || o.starts_with(&format!("{w}/"))
                        })
                    {
                        whiteouts.push(w);
                    }
                }
            }
            // Opaque directories: ones this layer writes into (so they exist in `diff/`),
            // not whited out here, and not a file of its own.
            let opaque: Vec<String> = opq
                .into_iter()
                .filter(|d| files.keys().any(|f| f.starts_with(&format!("{d}/"))))
                .filter(|d| {
                    !whiteouts
                        .iter()
                        .any(|w| w == d || d.starts_with(&format!("{w}/")))
                })
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            // (Names end in f-h, directories are a-e: a file never stands where a later
            // layer needs a directory.)
            below.retain(|b| {
                !whiteouts
                    .iter()
                    .any(|w| b == w || b.starts_with(&format!("{w}/")))
                    && !opaque.iter().any(|d| b.starts_with(&format!("{d}/")))
                    && !files.keys().any(|f| b.starts_with(&format!("{f}/")))
            });
            below.extend(files.keys().cloned());
            below.sort();
            below.dedup();
            out.push(Layer {
                files,
                whiteouts,
                opaque,
            });
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random file trees with deletions and opaque directories, applied as layers through
    /// overlay2 and through vfs: overlayfs's merged view of the `diff/` dirs is vfs's tree,
    /// and both stream every layer back byte for byte.
    #[test]
    fn overlay2_merged_view_matches_vfs(layers in layers()) {
        if let Some(why) = root_skip() {
            eprintln!("skipping: {why}");
            return Ok(());
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let o2 = overlay2_store(tmp.path());
        let vfs_driver = VfsDriver::new(tmp.path().join("vfs")).expect("vfs");
        let (vfs, _) = LayerStore::open(tmp.path().join("image/vfs/layerdb"), Box::new(vfs_driver))
            .expect("vfs store");
        let tars: Vec<Vec<u8>> = layers.iter().map(build).collect();
        let (mut po, mut pv): (Option<ChainId>, Option<ChainId>) = (None, None);
        let mut diffs = Vec::new();
        for t in &tars {
            let ho = o2.register(&t[..], po.as_ref()).expect("overlay2 register");
            let hv = vfs.register(&t[..], pv.as_ref()).expect("vfs register");
            prop_assert_eq!(ho.chain_id(), hv.chain_id());
            for (store, h) in [(&o2, &ho), (&vfs, &hv)] {
                let mut back = Vec::new();
                store.tar_stream(h).expect("stream").read_to_end(&mut back).expect("read");
                prop_assert!(back == *t, "layer streams back");
            }
            let cache = cache_id(tmp.path(), ho.chain_id());
            diffs.push(tmp.path().join("overlay2").join(cache).join("diff"));
            po = Some(*ho.chain_id());
            pv = Some(*hv.chain_id());
        }
        let vcache = read(
            &tmp.path()
                .join("image/vfs/layerdb/sha256")
                .join(pv.expect("top").0.hex())
                .join("cache-id"),
        );
        let vfs_tree = plain(&tmp.path().join("vfs/dir").join(vcache));
        prop_assert_eq!(merged(&diffs), vfs_tree);
    }
}

#[test]
fn layers_written_in_parallel_then_committed_in_order_match_dockerd() {
    if let Some(why) = root_skip() {
        eprintln!("skipping: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let theirs = extract_o2root(tmp.path());
    let ours = tmp.path().join("ours");
    let store = overlay2_store(&ours);
    let layers = bbapp_layers();
    let opts = layer_store::RegisterOptions::default();
    let detached: Vec<_> = std::thread::scope(|s| {
        let jobs: Vec<_> = layers
            .iter()
            .map(|l| s.spawn(|| store.register_detached(&l[..], &opts).expect("detached")))
            .collect();
        jobs.into_iter().map(|j| j.join().expect("join")).collect()
    });
    let mut parent: Option<ChainId> = None;
    let mut chains = Vec::new();
    for d in detached {
        let h = d.commit(parent.as_ref()).expect("commit");
        parent = Some(*h.chain_id());
        chains.push(*h.chain_id());
    }
    for chain in &chains {
        let (oc, tc) = (cache_id(&ours, chain), cache_id(&theirs, chain));
        let (oh, th) = (ours.join("overlay2"), theirs.join("overlay2"));
        assert_eq!(layout(&oh, &oc), layout(&th, &tc), "layout of {chain}");
        let (mut a, mut b) = (
            snapshot(&oh.join(&oc).join("diff")),
            snapshot(&th.join(&tc).join("diff")),
        );
        a.remove("");
        b.remove("");
        assert_eq!(a, b, "diff/ of {chain}");
        let size = |r: &Path| {
            read(
                &r.join("image/overlay2/layerdb/sha256")
                    .join(chain.0.hex())
                    .join("size"),
            )
        };
        assert_eq!(size(&ours), size(&theirs));
    }
    // A detached layer dropped before its commit leaves nothing.
    let d = store
        .register_detached(&layers[3][..], &opts)
        .expect("detached");
    drop(d);
    assert_eq!(
        fs::read_dir(ours.join("overlay2")).expect("home").count(),
        chains.len() + 1
    );
    // vfs cannot write a layer before its parent.
    let vfs = VfsDriver::new(tmp.path().join("v/vfs")).expect("vfs");
    let (vstore, _) = LayerStore::open(tmp.path().join("v/layerdb"), Box::new(vfs)).expect("store");
    let e = vstore
        .register_detached(&layers[0][..], &opts)
        .expect_err("vfs");
    assert!(e.to_string().contains("before its parent"), "{e}");
}
