//! Property tests: the reference store against a map model, reference parsing against the
//! grammar, and no panics on arbitrary input.

use crate::common;

use std::collections::BTreeMap;

use digest_set::Digest;
use imgstore::reference::{AnyReference, Reference};
use imgstore::refstore::RefStore;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Tag {
        name: usize,
        tag: usize,
        id: usize,
        force: bool,
    },
    Delete {
        name: usize,
        tag: usize,
    },
}

const NAMES: [&str; 4] = [
    "base",
    "peer/base",
    "127.0.0.1:5000/test",
    "docker.io/library/other",
];
const TAGS: [&str; 3] = ["latest", "v1", "1.0-rc_2"];

fn id(n: usize) -> Digest {
    Digest::sha256(format!("image {n}").as_bytes())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4usize, 0..3usize, 0..3usize, any::<bool>()).prop_map(|(name, tag, id, force)| {
            Op::Tag {
                name,
                tag,
                id,
                force,
            }
        }),
        (0..4usize, 0..3usize).prop_map(|(name, tag)| Op::Delete { name, tag }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn refstore_matches_model(ops in proptest::collection::vec(op(), 1..24)) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("repositories.json");
        let mut store = RefStore::load(&path).expect("load");
        // familiar name -> familiar ref -> id
        let mut model: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Tag { name, tag, id: i, force } => {
                    let r = Reference::parse_normalized(&format!("{}:{}", NAMES[name], TAGS[tag]))
                        .expect("valid");
                    let repo = model.entry(r.familiar_name()).or_default();
                    let key = r.familiar_string();
                    let conflict = repo.get(&key).is_some_and(|old| *old != id(i).to_string());
                    let res = store.add_tag(&r, &id(i), force);
                    if conflict && !force {
                        prop_assert!(res.is_err());
                        if repo.is_empty() {
                            model.remove(&r.familiar_name());
                        }
                    } else {
                        prop_assert!(res.is_ok());
                        repo.insert(key, id(i).to_string());
                    }
                }
                Op::Delete { name, tag } => {
                    let r = Reference::parse_normalized(&format!("{}:{}", NAMES[name], TAGS[tag]))
                        .expect("valid");
                    let existed = model
                        .get_mut(&r.familiar_name())
                        .and_then(|repo| repo.remove(&r.familiar_string()))
                        .is_some();
                    if model.get(&r.familiar_name()).is_some_and(BTreeMap::is_empty) {
                        model.remove(&r.familiar_name());
                    }
                    prop_assert_eq!(store.delete(&r).expect("delete"), existed);
                }
            }
            let want = format!(
                "{{\"Repositories\":{}}}",
                serde_json::to_string(&model).expect("json")
            );
            prop_assert_eq!(String::from_utf8_lossy(&store.to_bytes()).into_owned(), want.clone());
            if path.exists() {
                let reloaded = RefStore::load(&path).expect("reload");
                prop_assert_eq!(String::from_utf8_lossy(&reloaded.to_bytes()).into_owned(), want);
            }
            // References by ID agree with the model.
            for i in 0..3 {
                let mut from_model: Vec<String> = model
                    .values()
                    .flat_map(|repo| repo.iter())
                    .filter(|(_, v)| **v == id(i).to_string())
                    .map(|(k, _)| Reference::parse_normalized(k).expect("valid").to_string())
                    .collect();
                from_model.sort();
                let got: Vec<String> = store.references(&id(i)).iter().map(ToString::to_string).collect();
                prop_assert_eq!(got, from_model);
            }
        }
    }

    #[test]
    fn valid_references_round_trip(
        domain in prop_oneof![
            Just(String::new()),
            "[a-z][a-z0-9-]{0,6}[a-z0-9]\\.[a-z]{2,3}",
            "[a-z]{1,5}\\.[a-z]{1,5}:[0-9]{1,5}",
            Just("localhost".to_owned()),
        ],
        path in proptest::collection::vec("[a-z0-9]{1,4}((__|[._]|-{1,2})[a-z0-9]{1,4}){0,2}", 1..4),
        tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
    ) {
        let mut s = String::new();
        if !domain.is_empty() {
            s.push_str(&domain);
            s.push('/');
        }
        s.push_str(&path.join("/"));
        if let Some(t) = &tag {
            s.push(':');
            s.push_str(t);
        }
        prop_assume!(!(s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit())));
        let r = Reference::parse_normalized(&s).expect("grammar-valid reference parses");
        prop_assert_eq!(r.tag(), tag.as_deref());
        let again = Reference::parse_normalized(&r.familiar_string()).expect("familiar parses");
        prop_assert_eq!(&again, &r);
        let full = Reference::parse_normalized(&r.to_string()).expect("full parses");
        prop_assert_eq!(&full, &r);
        // Upper-case in the path is always refused.
        let upper = s.replacen(|c: char| c.is_ascii_lowercase(), "Q", 1);
        if upper != s && !domain.is_empty() && upper.starts_with(&domain) {
            prop_assert!(Reference::parse_normalized(&upper).is_err());
        }
    }

    #[test]
    fn parsing_never_panics(s in "\\PC{0,80}") {
        let _ = Reference::parse_normalized(&s);
        let _ = AnyReference::parse(&s);
        let _ = imgstore::reference::path_match(&s, "docker.io/library/base:latest");
        let _ = image_store::time::parse_rfc3339(&s);
    }
}

/// Every regular file under `root`, sorted.
fn files(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(p) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&p) {
            for e in rd.filter_map(Result::ok) {
                let path = e.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push(path);
                }
            }
        }
    }
    out.sort();
    out
}

#[derive(Debug, Clone)]
enum Damage {
    Truncate(usize),
    Append(Vec<u8>),
    Replace(Vec<u8>),
    Remove,
    Directory,
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (0..80usize).prop_map(Damage::Truncate),
        proptest::collection::vec(any::<u8>(), 1..8).prop_map(Damage::Append),
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(Damage::Replace),
        Just(Damage::Remove),
        Just(Damage::Directory),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever file of a data root is damaged, no command panics: each exits 0 or 1, and a
    /// failure is reported on stderr as `imgstore: ...` lines.
    #[test]
    fn damaged_roots_never_panic(
        fixture in 0..3usize,
        hits in proptest::collection::vec((any::<proptest::sample::Index>(), damage()), 1..4),
    ) {
        let name = ["dockerroot-01-after-load", "dockerroot-02-after-build",
                    "dockerroot-04-after-partial-rm"][fixture];
        let (_g, root) = common::extract(name);
        let all = files(&root);
        for (index, how) in &hits {
            let path = index.get(&all);
            if !path.is_file() {
                continue;
            }
            match how {
                Damage::Truncate(n) => {
                    let data = std::fs::read(path).unwrap_or_default();
                    std::fs::write(path, &data[..(*n).min(data.len())]).expect("write");
                }
                Damage::Append(b) => {
                    let mut data = std::fs::read(path).unwrap_or_default();
                    data.extend_from_slice(b);
                    std::fs::write(path, data).expect("write");
                }
                Damage::Replace(b) => std::fs::write(path, b).expect("write"),
                Damage::Remove => std::fs::remove_file(path).expect("remove"),
                Damage::Directory => {
                    std::fs::remove_file(path).expect("remove");
                    std::fs::create_dir(path).expect("mkdir");
                }
            }
        }
        for args in [
            vec!["ls", "-a", "--digests"],
            vec!["ls", "--format", "json"],
            vec!["inspect", "base", "peer/base:v1", "7db9", "2c8e", "2beca"],
            vec!["history", "peer/base:v1"],
            vec!["tree"],
            vec!["fsck"],
            vec!["fsck", "--format", "json"],
            vec!["tag", "7db9", "fresh:tag"],
            vec!["rm", "-f", "peer/child:1", "7db9", "127.0.0.1:5000/test:1"],
            vec!["ls", "-a", "-q"],
        ] {
            let out = common::run(&root, &args);
            let code = out.status.code();
            prop_assert!(code == Some(0) || code == Some(1), "{:?}: {:?} {}", args, code,
                String::from_utf8_lossy(&out.stderr));
            let err = String::from_utf8_lossy(&out.stderr);
            for line in err.lines() {
                prop_assert!(line.starts_with("imgstore: "), "{:?}: {}", args, line);
            }
        }
    }
}
