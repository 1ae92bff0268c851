//! Property test: random operation sequences against FsBackend, MemBackend and a plain model.

use std::collections::BTreeMap;

use digest_set::Digest;
use imagedb_fs::{FsBackend, MemBackend, StoreBackend};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Action {
    Set(u8),
    Delete(u8),
    SetMeta(u8, u8, u8),
    DeleteMeta(u8, u8),
}

const KEYS: [&str; 3] = ["parent", "lastUpdated", "builtLocally"];

fn data(i: u8) -> Vec<u8> {
    format!("config {i}").into_bytes()
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0u8..6).prop_map(Action::Set),
        (0u8..6).prop_map(Action::Delete),
        (0u8..6, 0u8..3, any::<u8>()).prop_map(|(i, k, v)| Action::SetMeta(i, k, v)),
        (0u8..6, 0u8..3).prop_map(|(i, k)| Action::DeleteMeta(i, k)),
    ]
}

#[derive(Default)]
struct Model {
    content: BTreeMap<Digest, Vec<u8>>,
    metadata: BTreeMap<Digest, BTreeMap<&'static str, Vec<u8>>>,
}

fn outcome<T>(r: &Result<T, imagedb_fs::Error>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) if e.is_not_found() => "not found",
        Err(_) => "error",
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn backends_match_model(actions in proptest::collection::vec(action(), 1..40)) {
        let dir = tempfile::tempdir().expect("temp dir");
        let fs = FsBackend::open(dir.path()).expect("open");
        let mem = MemBackend::new();
        let mut model = Model::default();
        for a in &actions {
            let expected = match a {
                Action::Set(i) => {
                    let d = data(*i);
                    model.content.insert(Digest::sha256(&d), d);
                    "ok"
                }
                Action::Delete(i) => {
                    let id = Digest::sha256(&data(*i));
                    model.metadata.remove(&id);
                    if model.content.remove(&id).is_some() { "ok" } else { "not found" }
                }
                Action::SetMeta(i, k, v) => {
                    let id = Digest::sha256(&data(*i));
                    if model.content.contains_key(&id) {
                        model.metadata.entry(id).or_default().insert(KEYS[*k as usize], vec![*v]);
                        "ok"
                    } else {
                        "not found"
                    }
                }
                Action::DeleteMeta(i, k) => {
                    let id = Digest::sha256(&data(*i));
                    if let Some(m) = model.metadata.get_mut(&id) {
                        m.remove(KEYS[*k as usize]);
                    }
                    "ok"
                }
            };
            for store in [&fs as &dyn StoreBackend, &mem] {
                let got = match a {
                    Action::Set(i) => outcome(&store.set(&data(*i))),
                    Action::Delete(i) => outcome(&store.delete(&Digest::sha256(&data(*i)))),
                    Action::SetMeta(i, k, v) => outcome(&store.set_metadata(
                        &Digest::sha256(&data(*i)), KEYS[*k as usize], &[*v])),
                    Action::DeleteMeta(i, k) => outcome(&store.delete_metadata(
                        &Digest::sha256(&data(*i)), KEYS[*k as usize])),
                };
                prop_assert_eq!(got, expected, "{:?}", a);
            }
        }
        let ids: Vec<Digest> = model.content.keys().copied().collect();
        for store in [&fs as &dyn StoreBackend, &mem] {
            prop_assert_eq!(store.walk().expect("walk"), ids.clone());
            for (id, bytes) in &model.content {
                prop_assert_eq!(&store.get(id).expect("get"), bytes);
                for key in KEYS {
                    let want = model.metadata.get(id).and_then(|m| m.get(key)).cloned();
                    prop_assert_eq!(store.get_metadata(id, key).expect("md"), want);
                }
            }
        }
    }
}
