//! The store asks its driver to create and remove content at the right times.

use crate::common;

use std::sync::{Arc, Mutex};

use common::diff;
use layer_store::{Driver, DriverError, LayerStore, RegisterError};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Create(String, Option<String>),
    Remove(String),
}

#[derive(Debug, Clone, Default)]
struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
    fail_create: bool,
}

impl Recorder {
    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().expect("lock"))
    }
}

impl Driver for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    fn create(&self, cache_id: &str, parent: Option<&str>) -> Result<(), DriverError> {
        self.calls
            .lock()
            .expect("lock")
            .push(Call::Create(cache_id.to_owned(), parent.map(str::to_owned)));
        if self.fail_create {
            return Err(DriverError::Other("refused".into()));
        }
        Ok(())
    }

    fn remove(&self, cache_id: &str) -> Result<(), DriverError> {
        self.calls
            .lock()
            .expect("lock")
            .push(Call::Remove(cache_id.to_owned()));
        Ok(())
    }
}

#[test]
fn driver_sees_create_and_remove() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rec = Recorder::default();
    let (store, _) =
        LayerStore::open(tmp.path().join("layerdb"), Box::new(rec.clone())).expect("open");
    assert_eq!(store.driver().name(), "recorder");

    let h1 = store.register_metadata(diff(1), 1, None).expect("1");
    let c1 = store.layer(h1.chain_id()).expect("1").cache_id;
    assert_eq!(rec.take(), vec![Call::Create(c1.clone(), None)]);

    let h2 = store
        .register_metadata(diff(2), 2, Some(h1.chain_id()))
        .expect("2");
    let c2 = store.layer(h2.chain_id()).expect("2").cache_id;
    assert_eq!(rec.take(), vec![Call::Create(c2.clone(), Some(c1.clone()))]);

    // A duplicate registration creates content, then discards it.
    let dup = store
        .register_metadata(diff(2), 2, Some(h1.chain_id()))
        .expect("dup");
    let calls = rec.take();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let Call::Create(tmp_id, Some(p)) = &calls[0] else {
        panic!("{calls:?}")
    };
    assert_eq!(p, &c1);
    assert_ne!(tmp_id, &c2);
    assert_eq!(calls[1], Call::Remove(tmp_id.clone()));

    store.release(&dup).expect("dup");
    store.release(&h1).expect("1");
    assert!(rec.take().is_empty());
    store.release(&h2).expect("2");
    assert_eq!(rec.take(), vec![Call::Remove(c2), Call::Remove(c1)]);
}

#[test]
fn failed_driver_create_leaves_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("layerdb");
    let (store, _) = LayerStore::open(&root, Box::new(Recorder::default())).expect("open");
    let h1 = store.register_metadata(diff(1), 1, None).expect("1");
    drop(store);

    let rec = Recorder {
        fail_create: true,
        ..Recorder::default()
    };
    let (store, _) = LayerStore::open(&root, Box::new(rec.clone())).expect("open");
    // Hold the restored parent (refcount 0 otherwise: releasing the registration's reference
    // would delete it, as in dockerd).
    let held = store.get(h1.chain_id()).expect("get");
    let err = store
        .register_metadata(diff(2), 1, Some(h1.chain_id()))
        .expect_err("refused");
    assert!(matches!(err, RegisterError::Driver { .. }), "{err}");
    // Nothing was created, so nothing is removed; the parent reference was given back.
    assert_eq!(rec.take().len(), 1);
    assert_eq!(store.len(), 1);
    assert_eq!(store.ref_count(held.chain_id()), Some(1));
    assert_eq!(std::fs::read_dir(root.join("tmp")).expect("tmp").count(), 0);
}
