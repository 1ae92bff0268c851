//! Chain IDs: properties and the real vectors dockerd produced.

use crate::common;

use std::fs;

use common::{DATA_ROOTS, extract, fixtures};
use digest_set::Digest;
use layer_store::{ChainId, DiffId, chain_id};
use proptest::prelude::*;

fn arb_diff() -> impl Strategy<Value = DiffId> {
    any::<[u8; 32]>().prop_map(|b| DiffId(Digest::sha256(&b)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn one_layer_chain_is_its_diff_id(d in arb_diff()) {
        prop_assert_eq!(chain_id(&[d]), Some(ChainId(d.0)));
    }

    #[test]
    fn chain_extends_with_then(xs in prop::collection::vec(arb_diff(), 1..8), y in arb_diff()) {
        let mut all = xs.clone();
        all.push(y);
        let prefix = chain_id(&xs).expect("non-empty");
        prop_assert_eq!(chain_id(&all), Some(prefix.then(&y)));
    }

    #[test]
    fn different_lists_give_different_chain_ids(
        xs in prop::collection::vec(arb_diff(), 1..6),
        ys in prop::collection::vec(arb_diff(), 1..6),
    ) {
        prop_assume!(xs != ys);
        prop_assert_ne!(chain_id(&xs), chain_id(&ys));
    }

    #[test]
    fn reordering_changes_the_chain_id(a in arb_diff(), b in arb_diff()) {
        prop_assume!(a != b);
        prop_assert_ne!(chain_id(&[a, b]), chain_id(&[b, a]));
    }
}

#[test]
fn empty_list_has_no_chain_id() {
    assert_eq!(chain_id(&[]), None);
}

#[test]
fn base_archive_vectors() {
    let text = fs::read_to_string(fixtures().join("archives/base.chainids.txt")).expect("read");
    let mut diffs = Vec::new();
    let mut chains = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some((_, d)) = line.split_once("diffID=") {
            diffs.push(d.parse::<DiffId>().expect("diff"));
        } else if let Some(c) = line.strip_prefix("chainID=") {
            chains.push(c.parse::<ChainId>().expect("chain"));
        }
    }
    assert_eq!(diffs.len(), 3);
    assert_eq!(chains.len(), 3);
    for n in 1..=3 {
        assert_eq!(chain_id(&diffs[..n]), Some(chains[n - 1]), "layer {n}");
    }
}

/// Every `layerdb/sha256/<dir>` name of every fixture is the chain ID computed from its
/// `diff` and its `parent` file.
#[test]
fn fixture_layer_dirs_are_chain_ids() {
    let mut checked = 0;
    for name in DATA_ROOTS {
        let (_tmp, layerdb) = extract(name);
        for e in fs::read_dir(layerdb.join("sha256")).expect("read_dir") {
            let dir = e.expect("entry").path();
            let dir_name = dir.file_name().and_then(|n| n.to_str()).expect("name");
            let expected: ChainId = format!("sha256:{dir_name}").parse().expect("chain");
            let diff: DiffId = fs::read_to_string(dir.join("diff"))
                .expect("diff")
                .parse()
                .expect("diff digest");
            let computed = match fs::read_to_string(dir.join("parent")) {
                Ok(p) => p.parse::<ChainId>().expect("parent").then(&diff),
                Err(_) => ChainId(diff.0),
            };
            assert_eq!(computed, expected, "{}", dir.display());
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} layers checked");
}
