//! Robustness of every parser: arbitrary bytes and arbitrary mutations of real fixture
//! files fed to the image config parser, tar-split, `repositories.json`, references,
//! `manifest.json` (docker save), `index.json`/`oci-layout`/manifest blobs (OCI layout),
//! the layerdb's files and overlay2's `link`/`lower`: no panic, a bounded time per case,
//! and a clear (non-empty) error where the input is refused. [`CASES`] cases per property,
//! two properties (arbitrary, mutated) per parser.

use crate::common;

use std::collections::HashMap;
use std::io::{BufReader, Read as _, Write as _};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;

/// Cases per property (`PROPTEST_CASES` overrides it, as for every proptest).
const CASES: u32 = 256;

/// The most one case may take (debug build, shared CPU): a parser that loops or reads
/// without a bound fails here.
const LIMIT: Duration = Duration::from_secs(5);

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(CASES),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Runs `f`, failing the case when it takes longer than [`LIMIT`].
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    let took = t.elapsed();
    assert!(took < LIMIT, "{what} took {took:?}");
    out
}

/// A change to some bytes.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, Vec<u8>),
    Token(Index, Index),
    Delete(Index, usize),
    Truncate(Index),
    Duplicate(Index, usize),
}

/// What JSON and the formats here are made of, to insert where it hurts.
const TOKENS: [&[u8]; 16] = [
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"null",
    b"-1",
    b"99999999999999999999999",
    b"1e308",
    b"\\u0000",
    b"\\ud800",
    b"sha256:",
    b"/../",
    b"\n",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (
            any::<Index>(),
            proptest::collection::vec(any::<u8>(), 1..12)
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, t)| Mutation::Token(i, t)),
        (any::<Index>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(), 1..6)
}

fn apply(mut b: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len + 1) };
        match m {
            Mutation::Flip(i, bit) if !b.is_empty() => {
                let k = i.index(b.len());
                b[k] ^= 1 << bit;
            }
            Mutation::Set(i, v) if !b.is_empty() => {
                let k = i.index(b.len());
                b[k] = *v;
            }
            Mutation::Insert(i, v) => {
                let k = at(i, b.len());
                b.splice(k..k, v.iter().copied());
            }
            Mutation::Token(i, t) => {
                let k = at(i, b.len());
                b.splice(k..k, TOKENS[t.index(TOKENS.len())].iter().copied());
            }
            Mutation::Delete(i, n) if !b.is_empty() => {
                let k = i.index(b.len());
                let end = (k + n).min(b.len());
                b.drain(k..end);
            }
            Mutation::Truncate(i) => {
                let k = at(i, b.len());
                b.truncate(k);
            }
            Mutation::Duplicate(i, n) if !b.is_empty() => {
                let k = i.index(b.len());
                let end = (k + n).min(b.len());
                let copy = b[k..end].to_vec();
                b.splice(end..end, copy);
            }
            _ => {}
        }
    }
    b
}

fn arbitrary() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..1536)
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).expect("gzip");
    e.finish().expect("gzip")
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

/// Real files to mutate, read once from the fixtures.
struct Samples {
    configs: Vec<Vec<u8>>,
    tar_splits: Vec<Vec<u8>>,
    repositories: Vec<Vec<u8>>,
    references: Vec<String>,
    /// Each layer directory's files (name, bytes).
    layer_files: Vec<Vec<(String, Vec<u8>)>>,
    /// `bbapp.docker-save.tar`'s members.
    docker_save: HashMap<String, Vec<u8>>,
    /// The OCI layout's files, relative to its directory.
    oci_layout: HashMap<String, Vec<u8>>,
}

fn untar(r: impl std::io::Read) -> HashMap<String, Vec<u8>> {
    let mut out = HashMap::new();
    let mut a = tar::Archive::new(r);
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        if e.header().entry_type().is_file() {
            let name = e.path().expect("path").to_string_lossy().into_owned();
            let mut b = Vec::new();
            e.read_to_end(&mut b).expect("read");
            out.insert(name, b);
        }
    }
    out
}

fn samples() -> &'static Samples {
    static S: OnceLock<Samples> = OnceLock::new();
    S.get_or_init(|| {
        let mut s = Samples {
            configs: Vec::new(),
            tar_splits: Vec::new(),
            repositories: Vec::new(),
            references: Vec::new(),
            layer_files: Vec::new(),
            docker_save: HashMap::new(),
            oci_layout: HashMap::new(),
        };
        for name in common::FIXTURES {
            let (_g, root) = common::extract(name);
            let v = root.join("image/vfs");
            let repos = std::fs::read(v.join("repositories.json")).expect("repositories.json");
            let parsed: serde_json::Value = serde_json::from_slice(&repos).expect("json");
            if let Some(m) = parsed["Repositories"].as_object() {
                for refs in m.values().filter_map(|r| r.as_object()) {
                    s.references.extend(refs.keys().cloned());
                }
            }
            s.repositories.push(repos);
            for e in std::fs::read_dir(v.join("imagedb/content/sha256")).expect("configs") {
                s.configs.push(std::fs::read(e.expect("entry").path()).expect("config"));
            }
            for e in std::fs::read_dir(v.join("layerdb/sha256")).expect("layers") {
                let dir = e.expect("entry").path();
                let mut files = Vec::new();
                for f in std::fs::read_dir(&dir).expect("layer") {
                    let f = f.expect("file").path();
                    let name = f.file_name().expect("name").to_string_lossy().into_owned();
                    let bytes = std::fs::read(&f).expect("read");
                    if name == "tar-split.json.gz" {
                        s.tar_splits.push(bytes.clone());
                    }
                    files.push((name, bytes));
                }
                files.push((
                    "descriptor.json".to_owned(),
                    br#"{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","size":1,"digest":"sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"}"#.to_vec(),
                ));
                s.layer_files.push(files);
            }
        }
        let save = common::fixtures_dir().join("wave2/bbapp.docker-save.tar");
        s.docker_save = untar(std::fs::File::open(save).expect("docker save archive"));
        let layout = common::fixtures_dir().join("archives/base.oci-layout.umoci.tar.gz");
        s.oci_layout = untar(flate2::read::GzDecoder::new(
            std::fs::File::open(layout).expect("oci layout"),
        ))
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix("oci/").map(|k| (k.to_owned(), v)))
        .collect();
        assert!(s.docker_save.contains_key("manifest.json"));
        assert!(s.oci_layout.contains_key("index.json"));
        s
    })
}

/// The image config parser: refused with a message, or parsed (and its chain computed).
fn check_config(bytes: &[u8]) {
    timed("config", || {
        match image_store::Image::from_bytes(bytes.to_vec()) {
            Ok(image) => {
                let _ = layer_store::chain_ids(image.diff_ids()).count();
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    });
}

/// tar-split: every entry read until the end or an error with a message.
fn check_tar_split(gz: &[u8]) {
    timed("tar-split", || {
        let mut u =
            layer_store::tarsplit::Unpacker::new(BufReader::new(flate2::read::GzDecoder::new(gz)));
        loop {
            match u.next_entry() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    break;
                }
            }
        }
    });
}

fn check_repositories(bytes: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("repositories.json");
    std::fs::write(&path, bytes).expect("write");
    timed("repositories.json", || {
        match imgstore::refstore::RefStore::load(&path) {
            Ok(store) => {
                // What loads can be written back and loads again the same.
                let again = store.to_bytes();
                std::fs::write(&path, &again).expect("write");
                let reloaded = imgstore::refstore::RefStore::load(&path).expect("reload");
                assert_eq!(reloaded.to_bytes(), again);
            }
            Err(e) => assert!(e.to_string().contains("repositories.json"), "{e}"),
        }
    });
}

fn check_reference(s: &str) {
    timed("reference", || {
        use imgstore::reference::{AnyReference, Reference};
        match Reference::parse_normalized(s) {
            Ok(r) => {
                // What parses prints as something that parses to the same.
                let again = Reference::parse_normalized(&r.to_string()).expect("reparse");
                assert_eq!(again, r);
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
        let _ = AnyReference::parse(s);
    });
}

/// The archive planner on a directory of files (a docker save tree or an OCI layout).
fn check_plan(files: &HashMap<String, Vec<u8>>) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, bytes) in files {
        let p = dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, bytes).expect("write");
    }
    let src = image_archive::source::DirSource::new(dir.path().to_owned());
    let platform = image_archive::plan::PlatformSpec::parse("linux/amd64").expect("platform");
    timed("archive plan", || {
        match image_archive::plan::plan(&src, &platform) {
            Ok(plans) => {
                for p in plans {
                    assert!(!p.config.is_empty());
                }
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    });
}

/// A layerdb with one layer made of `files`: restore loads it or skips it with a reason;
/// it never fails.
fn check_layerdb(files: &[(String, Vec<u8>)]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let layerdb = dir.path().join("layerdb");
    let layer = layerdb.join("sha256").join("5".repeat(64));
    std::fs::create_dir_all(&layer).expect("mkdir");
    for (name, bytes) in files {
        std::fs::write(layer.join(name), bytes).expect("write");
    }
    timed("layerdb", || {
        let (store, report) =
            layer_store::LayerStore::open_read_only(&layerdb, Box::new(layer_store::NullDriver))
                .expect("a damaged layer is skipped, not an error");
        assert_eq!(store.len() + report.skipped.len(), 1);
        for s in &report.skipped {
            assert!(!s.to_string().is_empty());
        }
    });
}

/// An overlay2 home with a parent and a child layer whose `link` and `lower` files are
/// `links` and `lower`: checking and describing it never fails on their content.
fn check_overlay2(parent_link: &[u8], child_link: &[u8], lower: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("overlay2");
    let (p, c) = ("a".repeat(64), "b".repeat(64));
    for (id, link) in [(&p, parent_link), (&c, child_link)] {
        std::fs::create_dir_all(home.join(id).join("diff")).expect("mkdir");
        std::fs::write(home.join(id).join("link"), link).expect("write");
        let name = String::from_utf8_lossy(link).into_owned();
        if !name.is_empty() && !name.contains(['/', '\0']) && name != "." && name != ".." {
            std::fs::create_dir_all(home.join("l")).expect("mkdir");
            let _ = std::os::unix::fs::symlink(format!("../{id}/diff"), home.join("l").join(name));
        }
    }
    std::fs::write(home.join(&c).join("lower"), lower).expect("write");
    let driver = layer_store::Overlay2Driver::new(&home);
    timed("overlay2", || {
        use layer_store::Driver as _;
        let _ = driver.check_content(&[&p, &c], &[]).expect("check");
        let _ = driver.metadata(&c).expect("metadata");
        let _ = driver.repair_content(&[&p, &c], &[]).expect("repair");
    });
}

const PARENT_LINK: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const CHILD_LINK: &[u8] = b"ZYXWVUTSRQPONMLKJIHGFEDCBA";

fn pick<'a, T>(v: &'a [T], i: &Index) -> &'a T {
    &v[i.index(v.len())]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_arbitrary(b in arbitrary()) {
        check_config(&b);
    }

    #[test]
    fn config_mutated(i in any::<Index>(), ms in mutations()) {
        check_config(&apply(pick(&samples().configs, &i).clone(), &ms));
    }

    #[test]
    fn tar_split_arbitrary(b in arbitrary(), compress in any::<bool>()) {
        check_tar_split(&if compress { gzip(&b) } else { b });
    }

    #[test]
    fn tar_split_mutated(i in any::<Index>(), ms in mutations(), inside in any::<bool>()) {
        let gz = pick(&samples().tar_splits, &i);
        // The JSON lines inside, or the gzip stream itself.
        let bytes = if inside { gzip(&apply(gunzip(gz), &ms)) } else { apply(gz.clone(), &ms) };
        check_tar_split(&bytes);
    }

    #[test]
    fn repositories_json_arbitrary(b in arbitrary()) {
        check_repositories(&b);
    }

    #[test]
    fn repositories_json_mutated(i in any::<Index>(), ms in mutations()) {
        check_repositories(&apply(pick(&samples().repositories, &i).clone(), &ms));
    }

    #[test]
    fn references_arbitrary(b in arbitrary()) {
        check_reference(&String::from_utf8_lossy(&b));
    }

    #[test]
    fn references_mutated(i in any::<Index>(), ms in mutations()) {
        let r = pick(&samples().references, &i);
        check_reference(&String::from_utf8_lossy(&apply(r.as_bytes().to_vec(), &ms)));
    }

    #[test]
    fn docker_save_manifest_arbitrary(b in arbitrary()) {
        let mut files = samples().docker_save.clone();
        files.insert("manifest.json".to_owned(), b);
        check_plan(&files);
    }

    #[test]
    fn docker_save_json_mutated(i in any::<Index>(), ms in mutations()) {
        // manifest.json, the legacy repositories file, or a config.
        let mut files = samples().docker_save.clone();
        let mut names: Vec<String> = files
            .keys()
            .filter(|k| k.ends_with(".json") || *k == "repositories")
            .cloned()
            .collect();
        names.sort();
        let name = pick(&names, &i).clone();
        let bytes = apply(files[&name].clone(), &ms);
        files.insert(name, bytes);
        check_plan(&files);
    }

    #[test]
    fn oci_index_arbitrary(b in arbitrary()) {
        let mut files = samples().oci_layout.clone();
        files.insert("index.json".to_owned(), b);
        check_plan(&files);
    }

    #[test]
    fn oci_layout_mutated(i in any::<Index>(), ms in mutations()) {
        // index.json, oci-layout, or a blob (manifests and configs are JSON blobs).
        let mut files = samples().oci_layout.clone();
        let mut names: Vec<String> = files
            .iter()
            .filter(|(k, v)| !k.starts_with("blobs/") || v.first() == Some(&b'{'))
            .map(|(k, _)| k.clone())
            .collect();
        names.sort();
        let name = pick(&names, &i).clone();
        let bytes = apply(files[&name].clone(), &ms);
        files.insert(name, bytes);
        check_plan(&files);
    }

    #[test]
    fn layerdb_files_arbitrary(f in 0usize..5, b in arbitrary()) {
        let mut files = samples().layer_files[0].clone();
        let name = ["diff", "size", "cache-id", "parent", "descriptor.json"][f];
        files.retain(|(n, _)| n != name);
        files.push((name.to_owned(), b));
        check_layerdb(&files);
    }

    #[test]
    fn layerdb_files_mutated(l in any::<Index>(), f in any::<Index>(), ms in mutations()) {
        let mut files = pick(&samples().layer_files, &l).clone();
        let k = f.index(files.len());
        files[k].1 = apply(files[k].1.clone(), &ms);
        check_layerdb(&files);
    }

    #[test]
    fn overlay2_link_lower_arbitrary(a in arbitrary(), b in arbitrary(), c in arbitrary()) {
        check_overlay2(&a, &b, &c);
    }

    #[test]
    fn overlay2_link_lower_mutated(which in 0usize..3, ms in mutations()) {
        let lower = [b"l/".as_slice(), PARENT_LINK].concat();
        let mut parts = [PARENT_LINK.to_vec(), CHILD_LINK.to_vec(), lower];
        parts[which] = apply(parts[which].clone(), &ms);
        check_overlay2(&parts[0], &parts[1], &parts[2]);
    }
}

/// The samples themselves are what their parsers accept: the mutations start from valid
/// input.
#[test]
fn samples_parse_unmutated() {
    let s = samples();
    for c in &s.configs {
        image_store::Image::from_bytes(c.clone()).expect("config");
    }
    let platform = image_archive::plan::PlatformSpec::parse("linux/amd64").expect("platform");
    for files in [&s.docker_save, &s.oci_layout] {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, bytes) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, bytes).expect("write");
        }
        let src = image_archive::source::DirSource::new(dir.path().to_owned());
        let plans = image_archive::plan::plan(&src, &platform).expect("plan");
        assert!(!plans.is_empty());
    }
    for r in &s.references {
        imgstore::reference::Reference::parse_normalized(r).expect("reference");
    }
}
