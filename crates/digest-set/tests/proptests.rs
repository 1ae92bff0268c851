//! Property tests against a naive model: a `Vec` scanned linearly.

use digest_set::{Algorithm, Digest, DigestSet, LookupError};
use proptest::prelude::*;

/// Digests drawn from a small alphabet of leading bytes, so prefixes collide often.
fn digest() -> impl Strategy<Value = Digest> {
    (
        prop::bool::weighted(0.9),
        prop::collection::vec(0u8..4, 4),
        any::<[u8; 32]>(),
    )
        .prop_map(|(sha256, head, mut tail)| {
            for (i, h) in head.iter().enumerate() {
                tail[i] = h * 0x11;
            }
            if sha256 {
                Digest::from_sha256_bytes(tail)
            } else {
                let mut raw = [0u8; 64];
                raw[..32].copy_from_slice(&tail);
                raw[32..].copy_from_slice(&tail);
                Digest::from_raw(Algorithm::Sha512, &raw).expect("64 bytes")
            }
        })
}

/// What lookup should answer, by a linear scan.
fn model_lookup(model: &[Digest], term: &str) -> Result<Digest, usize> {
    let (alg, hex) = match term.split_once(':') {
        Some((a, h)) => (Algorithm::from_name(a), h),
        None => (None, term),
    };
    let matching: Vec<Digest> = model
        .iter()
        .copied()
        .filter(|d| alg.is_none_or(|a| a == d.algorithm()) && d.hex().starts_with(hex))
        .collect();
    if let Some(exact) = matching.iter().find(|d| d.hex() == hex) {
        return Ok(*exact);
    }
    match matching.as_slice() {
        [one] => Ok(*one),
        many => Err(many.len()),
    }
}

fn check(set: &DigestSet, model: &[Digest], term: &str) -> Result<(), TestCaseError> {
    match (set.lookup(term), model_lookup(model, term)) {
        (Ok(got), Ok(want)) => prop_assert_eq!(got, want, "term {}", term),
        (Err(LookupError::NotFound { .. }), Err(0)) => {}
        (
            Err(LookupError::Ambiguous {
                count, candidates, ..
            }),
            Err(n),
        ) => {
            prop_assert_eq!(count, n);
            prop_assert!(candidates.windows(2).all(|w| w[0] < w[1]));
        }
        (got, want) => prop_assert!(false, "term {term:?}: set {got:?}, model {want:?}"),
    }
    Ok(())
}

proptest! {
    #[test]
    fn every_prefix_of_every_member_agrees_with_model(
        digests in prop::collection::vec(digest(), 0..24)
    ) {
        let set: DigestSet = digests.iter().copied().collect();
        let mut model = digests.clone();
        model.sort();
        model.dedup();
        prop_assert_eq!(set.iter().copied().collect::<Vec<_>>(), model.clone());
        for d in &model {
            let hex = d.hex();
            for len in 1..=hex.len() {
                check(&set, &model, &hex[..len])?;
                check(&set, &model, &format!("{}:{}", d.algorithm(), &hex[..len]))?;
            }
        }
    }

    #[test]
    fn short_codes_are_unique_and_resolve(
        digests in prop::collection::vec(digest(), 1..40),
        min_len in 1usize..16
    ) {
        let set: DigestSet = digests.into_iter().collect();
        let codes = set.short_codes(min_len);
        prop_assert_eq!(codes.len(), set.len());
        let mut seen = std::collections::HashSet::new();
        for (d, code) in &codes {
            prop_assert!(seen.insert(code.clone()), "duplicate code {}", code);
            prop_assert!(code.len() >= min_len.min(d.hex().len()));
            prop_assert_eq!(set.lookup(code), Ok(*d));
        }
    }

    #[test]
    fn insert_remove_sequences_match_model(
        ops in prop::collection::vec((any::<bool>(), 0usize..12), 0..200),
        pool in prop::collection::vec(digest(), 12)
    ) {
        let mut set = DigestSet::new();
        let mut model: Vec<Digest> = Vec::new();
        for (insert, i) in ops {
            let d = pool[i];
            if insert {
                let fresh = !model.contains(&d);
                if fresh { model.push(d); }
                prop_assert_eq!(set.insert(d), fresh);
            } else {
                let present = model.contains(&d);
                model.retain(|x| *x != d);
                prop_assert_eq!(set.remove(&d), present);
            }
            prop_assert_eq!(set.len(), model.len());
            for x in &pool {
                prop_assert_eq!(set.contains(x), model.contains(x));
            }
        }
        let mut sorted = model.clone();
        sorted.sort();
        prop_assert_eq!(set.iter().copied().collect::<Vec<_>>(), sorted);
    }

    #[test]
    fn display_from_str_round_trips(d in digest()) {
        let s = d.to_string();
        prop_assert_eq!(s.parse::<Digest>(), Ok(d));
        prop_assert_eq!(s.len(), d.algorithm().name().len() + 1 + d.algorithm().hex_len());
    }

    #[test]
    fn malformed_strings_never_panic(s in ".{0,140}", hexish in "[0-9a-fA-F:]{0,140}") {
        let set: DigestSet = [Digest::sha256(b"x"), Digest::sha256(b"y")].into_iter().collect();
        for input in [&s, &hexish] {
            let _ = input.parse::<Digest>();
            let _ = set.lookup(input);
            if let Ok(d) = input.parse::<Digest>() {
                prop_assert_eq!(&d.to_string(), input);
            }
        }
    }
}
