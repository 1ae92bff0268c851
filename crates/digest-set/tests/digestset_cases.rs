//! The cases of go-digest's `digestset/set_test.go`, by behaviour, plus the cases where this
//! crate deliberately differs (malformed terms, ambiguity details).

use digest_set::{Digest, DigestSet, LookupError};

fn d(s: &str) -> Digest {
    s.parse().expect("test digest")
}

fn lookup_set() -> (Vec<Digest>, DigestSet) {
    let digests: Vec<Digest> = [
        "sha256:1234511111111111111111111111111111111111111111111111111111111111",
        "sha256:1234111111111111111111111111111111111111111111111111111111111111",
        "sha256:1234611111111111111111111111111111111111111111111111111111111111",
        "sha256:5432111111111111111111111111111111111111111111111111111111111111",
        "sha256:6543111111111111111111111111111111111111111111111111111111111111",
        "sha256:6432111111111111111111111111111111111111111111111111111111111111",
        "sha256:6542111111111111111111111111111111111111111111111111111111111111",
        "sha256:6532111111111111111111111111111111111111111111111111111111111111",
    ]
    .iter()
    .map(|s| d(s))
    .collect();
    let mut set = DigestSet::new();
    for x in &digests {
        assert!(set.insert(*x));
    }
    (digests, set)
}

#[test]
fn lookup() {
    let (digests, set) = lookup_set();
    assert_eq!(set.lookup("54"), Ok(digests[3]));
    assert!(matches!(
        set.lookup("1234"),
        Err(LookupError::Ambiguous { .. })
    ));
    assert!(matches!(
        set.lookup("9876"),
        Err(LookupError::NotFound { .. })
    ));
    assert!(matches!(
        set.lookup("sha256:1234"),
        Err(LookupError::Ambiguous { .. })
    ));
    assert_eq!(set.lookup("sha256:12345"), Ok(digests[0]));
    assert_eq!(set.lookup("sha256:12346"), Ok(digests[2]));
    assert_eq!(set.lookup("12346"), Ok(digests[2]));
    assert_eq!(set.lookup("12345"), Ok(digests[0]));
}

#[test]
fn ambiguous_carries_term_and_sorted_candidates() {
    let (digests, set) = lookup_set();
    let err = set.lookup("1234").expect_err("ambiguous");
    let LookupError::Ambiguous {
        term,
        count,
        candidates,
    } = &err
    else {
        panic!("expected ambiguous, got {err:?}");
    };
    assert_eq!(term, "1234");
    assert_eq!(*count, 3);
    assert_eq!(candidates, &vec![digests[1], digests[0], digests[2]]);
    let msg = err.to_string();
    assert!(
        msg.contains("1234") && msg.contains(&digests[1].to_string()),
        "{msg}"
    );
}

#[test]
fn not_found_carries_term() {
    let (_, set) = lookup_set();
    assert_eq!(
        set.lookup("9876"),
        Err(LookupError::NotFound {
            term: "9876".into()
        })
    );
    assert!(
        set.lookup("9876")
            .expect_err("missing")
            .to_string()
            .contains("9876")
    );
}

#[test]
fn exact_match_wins() {
    let (digests, set) = lookup_set();
    for x in &digests {
        assert_eq!(set.lookup(&x.to_string()), Ok(*x));
        assert_eq!(set.lookup(&x.hex()), Ok(*x));
    }
}

#[test]
fn invalid_terms_are_errors_not_accidents() {
    let one: DigestSet = [Digest::sha256(b"only")].into_iter().collect();
    // digestset returns the only member for "": we refuse the term.
    for term in [
        "", "sha256:", ":ab", "xyz", "ABCD", "12 34", "md5:12", "foo:ab",
    ] {
        assert!(
            matches!(one.lookup(term), Err(LookupError::InvalidTerm { .. })),
            "{term:?} gave {:?}",
            one.lookup(term)
        );
    }
    let too_long = "a".repeat(129);
    assert!(matches!(
        one.lookup(&too_long),
        Err(LookupError::InvalidTerm { .. })
    ));
    let sha256_too_long = format!("sha256:{}", "a".repeat(65));
    assert!(matches!(
        one.lookup(&sha256_too_long),
        Err(LookupError::InvalidTerm { .. })
    ));
}

#[test]
fn empty_set_is_not_found() {
    assert!(matches!(
        DigestSet::new().lookup("ab"),
        Err(LookupError::NotFound { .. })
    ));
}

#[test]
fn add_duplication() {
    let mut set: DigestSet = [
        "sha256:1234111111111111111111111111111111111111111111111111111111111111",
        "sha256:1234511111111111111111111111111111111111111111111111111111111111",
        "sha256:1234611111111111111111111111111111111111111111111111111111111111",
        "sha256:5432111111111111111111111111111111111111111111111111111111111111",
        "sha256:6543111111111111111111111111111111111111111111111111111111111111",
        "sha512:65431111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111",
        "sha512:65421111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111",
        "sha512:65321111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111",
    ]
    .iter()
    .map(|s| d(s))
    .collect();
    assert_eq!(set.len(), 8);
    assert!(!set.insert(d(
        "sha256:1234511111111111111111111111111111111111111111111111111111111111"
    )));
    assert_eq!(set.len(), 8);
    // The same hex under another algorithm is another digest.
    let same_hex_512 = d(&format!(
        "sha512:{}{}",
        "12345".to_owned() + &"1".repeat(59),
        "1".repeat(64)
    ));
    assert!(set.insert(same_hex_512));
    assert_eq!(set.len(), 9);
}

#[test]
fn ambiguous_across_algorithms() {
    let a = d(&format!("sha256:1234{}", "0".repeat(60)));
    let c = d(&format!("sha256:1234{}", "1".repeat(60)));
    let b = d(&format!("sha512:12340{}", "5".repeat(123)));
    let set: DigestSet = [a, b, c].into_iter().collect();
    assert!(matches!(
        set.lookup("sha256:1234"),
        Err(LookupError::Ambiguous { count: 2, .. })
    ));
    assert_eq!(set.lookup("sha512:12340"), Ok(b));
    assert_eq!(set.lookup("sha512:1"), Ok(b));
}

fn create_digests(n: u64) -> Vec<Digest> {
    (0..n)
        .map(|i| Digest::sha256(&i.wrapping_mul(25823).to_be_bytes()))
        .collect()
}

#[test]
fn remove() {
    let digests = create_digests(10);
    let mut set: DigestSet = digests.iter().copied().collect();
    assert_eq!(set.lookup(&digests[0].to_string()), Ok(digests[0]));
    assert!(set.remove(&digests[0]));
    assert!(!set.remove(&digests[0]));
    assert!(matches!(
        set.lookup(&digests[0].to_string()),
        Err(LookupError::NotFound { .. })
    ));
    assert!(!set.contains(&digests[0]));
    assert_eq!(set.len(), 9);
}

#[test]
fn all() {
    let digests = create_digests(100);
    let mut set = DigestSet::new();
    for x in &digests {
        set.insert(*x);
    }
    let all: Vec<Digest> = set.iter().copied().collect();
    assert_eq!(all.len(), 100);
    let mut sorted = digests.clone();
    sorted.sort();
    assert_eq!(all, sorted);
    // Bulk loading gives the same set.
    let bulk: DigestSet = digests.iter().rev().copied().collect();
    assert_eq!(bulk, set);
}

#[test]
fn short_code_table() {
    let digests: Vec<Digest> = [
        "sha256:1234111111111111111111111111111111111111111111111111111111111111",
        "sha256:1234511111111111111111111111111111111111111111111111111111111111",
        "sha256:1234611111111111111111111111111111111111111111111111111111111111",
        "sha256:5432111111111111111111111111111111111111111111111111111111111111",
        "sha256:6543111111111111111111111111111111111111111111111111111111111111",
        "sha256:6432111111111111111111111111111111111111111111111111111111111111",
        "sha256:6542111111111111111111111111111111111111111111111111111111111111",
        "sha256:6532111111111111111111111111111111111111111111111111111111111111",
    ]
    .iter()
    .map(|s| d(s))
    .collect();
    let set: DigestSet = digests.iter().copied().collect();
    let codes = set.short_codes(2);
    assert_eq!(codes.len(), digests.len());
    let expected = ["12341", "12345", "12346", "54", "6543", "64", "6542", "653"];
    for (x, want) in digests.iter().zip(expected) {
        assert_eq!(codes[x], want, "{x}");
    }
}
