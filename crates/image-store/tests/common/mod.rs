//! Shared test helpers: a counting layer store and config builders.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
