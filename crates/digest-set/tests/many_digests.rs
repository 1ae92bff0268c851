//! Property tests of sets large enough to span many buckets, with leading bytes drawn from a
//! small alphabet (so that prefixes collide and runs cross bucket boundaries), against a
//! sorted `Vec` as the model.

use digest_set::{Algorithm, Digest, DigestSet, LookupError, MAX_CANDIDATES};
use proptest::prelude::*;

/// A digest: uniform, or with 1–6 leading bytes from a small alphabet; sha512 one time in ten.
fn digest() -> impl Strategy<Value = Digest> {
    (
        prop::bool::weighted(0.9),
        prop::collection::vec(
            prop::sample::select(vec![0x00u8, 0x01, 0x7f, 0x80, 0xff]),
            0..6,
        ),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
    )
        .prop_map(|(sha256, head, mut low, high)| {
            low[..head.len()].copy_from_slice(&head);
            if sha256 {
                Digest::from_sha256_bytes(low)
            } else {
                let mut raw = [0u8; 64];
                raw[..32].copy_from_slice(&low);
                raw[32..].copy_from_slice(&high);
                Digest::from_raw(Algorithm::Sha512, &raw).expect("64 bytes")
            }
        })
}

/// The model's answer: the sorted matches, or the exact match.
fn model_lookup(model: &[(Digest, String)], term: &str) -> Result<Digest, Vec<Digest>> {
    let (alg, hex) = match term.split_once(':') {
        Some((a, h)) => (Algorithm::from_name(a), h),
        None => (None, term),
    };
    let matching: Vec<&(Digest, String)> = model
        .iter()
        .filter(|(d, h)| alg.is_none_or(|a| a == d.algorithm()) && h.starts_with(hex))
        .collect();
    if let Some((exact, _)) = matching.iter().find(|(_, h)| h == hex) {
        return Ok(*exact);
    }
    match matching.as_slice() {
        [(one, _)] => Ok(*one),
        many => Err(many.iter().map(|(d, _)| *d).collect()),
    }
}

fn check(set: &DigestSet, model: &[(Digest, String)], term: &str) -> Result<(), TestCaseError> {
    match (set.lookup(term), model_lookup(model, term)) {
        (Ok(got), Ok(want)) => prop_assert_eq!(got, want, "term {}", term),
        (Err(LookupError::NotFound { .. }), Err(want)) if want.is_empty() => {}
        (
            Err(LookupError::Ambiguous {
                count, candidates, ..
            }),
            Err(want),
        ) => {
            prop_assert_eq!(count, want.len(), "term {}", term);
            prop_assert_eq!(&candidates[..], &want[..want.len().min(MAX_CANDIDATES)]);
        }
        (got, want) => prop_assert!(false, "term {term:?}: set {got:?}, model {want:?}"),
    }
    Ok(())
}

fn sorted_model(digests: &[Digest]) -> Vec<(Digest, String)> {
    let mut model = digests.to_vec();
    model.sort();
    model.dedup();
    model.into_iter().map(|d| (d, d.hex())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn lookups_across_buckets_agree_with_model(
        digests in prop::collection::vec(digest(), 0..2000),
        picks in prop::collection::vec((any::<prop::sample::Index>(), 1usize..=16), 24),
        random in prop::collection::vec("[0-9a-f]{1,5}", 16),
    ) {
        let set: DigestSet = digests.iter().copied().collect();
        let model = sorted_model(&digests);
        let want: Vec<Digest> = model.iter().map(|(d, _)| *d).collect();
        prop_assert_eq!(set.len(), want.len());
        prop_assert_eq!(set.iter().collect::<Vec<_>>(), want.clone());
        prop_assert_eq!(set.iter().rev().collect::<Vec<_>>(), want.iter().rev().copied().collect::<Vec<_>>());
        if !model.is_empty() {
            for (pick, len) in &picks {
                let (d, hex) = &model[pick.index(model.len())];
                for term in [&hex[..*len], hex.as_str()] {
                    check(&set, &model, term)?;
                    check(&set, &model, &format!("{}:{term}", d.algorithm()))?;
                }
            }
        }
        for term in &random {
            check(&set, &model, term)?;
            check(&set, &model, &format!("sha256:{term}"))?;
        }
    }

    #[test]
    fn one_by_one_bulk_and_extend_build_the_same_set(
        digests in prop::collection::vec(digest(), 0..2000),
        split in any::<prop::sample::Index>(),
    ) {
        let mut one = DigestSet::new();
        for d in &digests {
            one.insert(*d);
        }
        let bulk: DigestSet = digests.iter().rev().copied().collect();
        prop_assert_eq!(&one, &bulk);
        let at = split.index(digests.len() + 1);
        let mut extended: DigestSet = digests[..at].iter().copied().collect();
        extended.extend(digests[at..].iter().copied());
        prop_assert_eq!(&extended, &bulk);
        prop_assert_eq!(DigestSet::from(digests.clone()), bulk);
    }

    #[test]
    fn inserts_and_removes_in_a_large_set_match_model(
        pool in prop::collection::vec(digest(), 300),
        ops in prop::collection::vec((any::<bool>(), 0usize..300), 0..1500),
    ) {
        let mut set = DigestSet::new();
        let mut model = std::collections::BTreeSet::new();
        for (insert, i) in ops {
            let d = pool[i];
            if insert {
                prop_assert_eq!(set.insert(d), model.insert(d));
            } else {
                prop_assert_eq!(set.remove(&d), model.remove(&d));
            }
            prop_assert_eq!(set.contains(&d), model.contains(&d));
        }
        prop_assert_eq!(set.len(), model.len());
        prop_assert_eq!(set.iter().collect::<Vec<_>>(), model.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn short_codes_of_large_sets_are_unique_and_resolve(
        digests in prop::collection::vec(digest(), 1..400),
        min_len in 1usize..14,
    ) {
        let set: DigestSet = digests.into_iter().collect();
        let codes = set.short_codes(min_len);
        prop_assert_eq!(codes.len(), set.len());
        let mut seen = std::collections::HashSet::new();
        for (d, code) in &codes {
            prop_assert!(seen.insert(code.clone()), "duplicate code {}", code);
            prop_assert_eq!(set.lookup(code), Ok(*d));
        }
    }
}
