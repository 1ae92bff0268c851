//! Shared test helpers: a counting layer store and config builders.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use image_store::{ImageId, ImageStore};
use imagedb_fs::StoreBackend;
use std::sync::Mutex;

use digest_set::Digest;
use layer_store::{
    ChainId, DiffId, GetError, LayerGetReleaser, LayerHandle, LayerMetadata, ReleaseError,
};

#[derive(Debug, Default)]
struct State {
    present: BTreeSet<ChainId>,
    handles: HashMap<u64, ChainId>,
    next: u64,
}

/// A layer store that only counts references: `get` succeeds for chain IDs added with
/// [`CountingLayers::add`], each handle is distinct, `release` drops one.
#[derive(Debug, Default)]
pub struct CountingLayers {
    state: Mutex<State>,
}

impl CountingLayers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&self, chain: ChainId) {
        self.state.lock().expect("lock").present.insert(chain);
    }

    pub fn remove(&self, chain: &ChainId) {
        self.state.lock().expect("lock").present.remove(chain);
    }

    /// References held per chain ID.
    pub fn held(&self) -> BTreeMap<ChainId, usize> {
        let mut out = BTreeMap::new();
        for c in self.state.lock().expect("lock").handles.values() {
            *out.entry(*c).or_insert(0) += 1;
        }
        out
    }

    /// Forgets every reference, as a restarted process would.
    pub fn restart(&self) {
        self.state.lock().expect("lock").handles.clear();
    }
}

impl LayerGetReleaser for CountingLayers {
    fn get(&self, chain_id: &ChainId) -> Result<LayerHandle, GetError> {
        let mut s = self.state.lock().expect("lock");
        if !s.present.contains(chain_id) {
            return Err(GetError::NotFound(*chain_id));
        }
        s.next += 1;
        let token = s.next;
        s.handles.insert(token, *chain_id);
        Ok(LayerHandle::new(*chain_id, token))
    }

    fn release(&self, handle: &LayerHandle) -> Result<Vec<LayerMetadata>, ReleaseError> {
        let mut s = self.state.lock().expect("lock");
        match s.handles.remove(&handle.token()) {
            Some(_) => Ok(Vec::new()),
            None => Err(ReleaseError::NotRetained(*handle.chain_id())),
        }
    }
}

/// A diff ID derived from a number.
pub fn diff(n: u64) -> DiffId {
    DiffId(Digest::sha256(format!("layer {n}").as_bytes()))
}

/// A config with the given comment and diff IDs.
pub fn config(comment: &str, diffs: &[DiffId]) -> Vec<u8> {
    let ids: Vec<String> = diffs.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        r#"{{"comment": "{comment}", "rootfs": {{"type": "layers", "diff_ids": [{}]}}}}"#,
        ids.join(",")
    )
    .into_bytes()
}

/// The chain ID of `diffs`.
pub fn chain(diffs: &[DiffId]) -> ChainId {
    layer_store::chain_id(diffs).expect("non-empty")
}

pub type Snapshot = (BTreeSet<ImageId>, BTreeMap<ImageId, Option<ImageId>>);

pub fn snapshot<B: StoreBackend>(store: &ImageStore<B, CountingLayers>) -> Snapshot {
    let ids: BTreeSet<ImageId> = store.map().keys().copied().collect();
    let parents = ids
        .iter()
        .map(|i| (*i, store.get_parent(i).expect("live")))
        .collect();
    (ids, parents)
}

pub fn check_invariants<B: StoreBackend>(store: &ImageStore<B, CountingLayers>) {
    let (ids, parents) = snapshot(store);
    // children(p) holds c exactly when get_parent(c) == p and both exist.
    for p in &ids {
        let want: Vec<ImageId> = ids
            .iter()
            .filter(|c| parents[c] == Some(*p))
            .copied()
            .collect();
        assert_eq!(store.children(p), want, "children of {p}");
    }
    // heads are the images with no children.
    let heads: BTreeSet<ImageId> = store.heads().keys().copied().collect();
    let want: BTreeSet<ImageId> = ids
        .iter()
        .filter(|p| !parents.values().any(|v| *v == Some(**p)))
        .copied()
        .collect();
    assert_eq!(heads, want);
    // short IDs resolve unless shared.
    for i in &ids {
        let short = i.short();
        if ids.iter().filter(|j| j.short() == short).count() == 1 {
            assert_eq!(store.search(&short).expect("short id"), *i);
        }
        assert_eq!(store.search(&i.to_string()).expect("full id"), *i);
    }
    // Layers held are exactly those the live images need.
    let mut need: BTreeMap<ChainId, usize> = BTreeMap::new();
    for i in &ids {
        if let Some(c) = store.get(i).expect("live").chain_id() {
            *need.entry(c).or_insert(0) += 1;
        }
    }
    assert_eq!(store.layers().held(), need);
    assert_eq!(store.len(), ids.len());
}

/// Memory and disk agree: the configs on disk are the images in memory, and the parent links
/// on disk are those in memory.
pub fn check_disk<B: StoreBackend>(store: &ImageStore<B, CountingLayers>) {
    let (ids, parents) = snapshot(store);
    let on_disk: BTreeSet<ImageId> = store
        .backend()
        .walk()
        .expect("walk")
        .into_iter()
        .map(ImageId)
        .collect();
    assert_eq!(on_disk, ids, "configs on disk");
    for i in &ids {
        let link = store
            .backend()
            .get_metadata(i.digest(), "parent")
            .expect("read")
            .map(|b| {
                String::from_utf8(b)
                    .expect("utf8")
                    .parse::<ImageId>()
                    .expect("id")
            });
        assert_eq!(link, parents[i], "parent link of {i} on disk");
    }
}
