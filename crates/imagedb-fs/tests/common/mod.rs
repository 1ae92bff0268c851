//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use digest_set::Digest;
use imagedb_fs::{Error, StoreBackend};

/// The four dockerd 20.10 fixtures.
pub const FIXTURES: [&str; 4] = [
    "dockerroot-01-after-load",
    "dockerroot-02-after-build",
    "dockerroot-04-after-partial-rm",
    "dockerroot-05-after-full-rm",
];

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/dockerd-20.10")
}

/// Extracts fixture `name` into a temp dir; returns the dir and the imagedb path inside it.
pub fn extract_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = std::fs::File::open(fixtures_dir().join(format!("{name}.tar.gz")))
        .expect("fixture tarball");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive.set_preserve_permissions(true);
    archive.unpack(tmp.path()).expect("unpack fixture");
    let imagedb = tmp.path().join(name).join("image/vfs/imagedb");
    (tmp, imagedb)
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

pub const FOOBAR_ID: &str =
    "sha256:c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2";

/// Deterministic pseudo-random bytes (xorshift), so tests need no rand crate.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The behaviour every backend shares (moby's fs_test.go cases that do not depend on files,
/// plus this crate's contract). Starts from an empty store and leaves it empty.
pub fn contract(store: &dyn StoreBackend) {
    assert!(store.walk().expect("walk").is_empty(), "store starts empty");

    // TestFSGetSet: "foobar" and 8 KiB of random data round-trip.
    let foobar = store.set(b"foobar").expect("set foobar");
    assert_eq!(foobar.to_string(), FOOBAR_ID);
    assert_eq!(store.get(&foobar).expect("get foobar"), b"foobar");
    let random = pseudo_random(8 * 1024, 42);
    let random_id = store.set(&random).expect("set random");
    assert_eq!(random_id, Digest::sha256(&random));
    assert_eq!(store.get(&random_id).expect("get random"), random);
    // Setting the same content again is fine and gives the same digest.
    assert_eq!(store.set(b"foobar").expect("set again"), foobar);

    // TestFSWalker: both ids, sorted.
    let mut expected = vec![foobar, random_id];
    expected.sort();
    assert_eq!(store.walk().expect("walk"), expected);

    // TestFSGetEmptyData.
    assert!(matches!(store.set(b""), Err(Error::EmptyData)));
    assert_eq!(
        store.set(&[]).expect_err("empty").to_string(),
        "invalid empty data"
    );

    // TestFSGetUnsetKey: a digest never stored (the Go cases "foobar:abc", "sha256:abc" and 65
    // hex digits cannot even be built as a Digest; they fail parsing instead).
    for bad in [
        "foobar:abc",
        "sha256:abc",
        &format!("sha256:{}", "a".repeat(65)),
    ] {
        assert!(bad.parse::<Digest>().is_err(), "{bad} must not parse");
    }
    let unset = Digest::sha256(b"never stored");
    let err = store.get(&unset).expect_err("unset");
    assert!(err.is_not_found(), "{err}");
    // Other algorithms are never stored: not found.
    let sha512 = Digest::sha512(b"foobar");
    assert!(store.get(&sha512).expect_err("sha512").is_not_found());

    // TestFSMetadataGetSet: round trip, missing key, missing content.
    store
        .set_metadata(&foobar, "parent", b"sha256:abc")
        .expect("set_metadata");
    store
        .set_metadata(&foobar, "lastUpdated", b"2026-11-30T00:00:00.123456789Z")
        .expect("set_metadata");
    assert_eq!(
        store
            .get_metadata(&foobar, "parent")
            .expect("get")
            .as_deref(),
        Some(&b"sha256:abc"[..])
    );
    store
        .set_metadata(&foobar, "parent", b"sha256:def")
        .expect("overwrite");
    assert_eq!(
        store
            .get_metadata(&foobar, "parent")
            .expect("get")
            .as_deref(),
        Some(&b"sha256:def"[..])
    );
    // Empty metadata values are allowed (only content must be non-empty).
    store
        .set_metadata(&foobar, "empty", b"")
        .expect("empty value");
    assert_eq!(
        store
            .get_metadata(&foobar, "empty")
            .expect("get")
            .as_deref(),
        Some(&b""[..])
    );
    assert_eq!(
        store.get_metadata(&foobar, "nokey").expect("missing key"),
        None
    );
    let err = store
        .set_metadata(&unset, "parent", b"x")
        .expect_err("no content");
    assert!(err.is_not_found(), "{err}");
    let err = store
        .get_metadata(&unset, "parent")
        .expect_err("no content");
    assert!(err.is_not_found(), "{err}");
    assert_eq!(
        store.metadata_digests().expect("metadata digests"),
        vec![foobar]
    );

    // Keys are validated and never become paths.
    for key in [
        "", ".", "..", "../x", "a/b", "/etc", "a b", "é", ".tmp-x", "a\0b",
    ] {
        for result in [
            store.set_metadata(&foobar, key, b"x").map(|_| None),
            store.get_metadata(&foobar, key),
            store.delete_metadata(&foobar, key).map(|_| None),
        ] {
            match result {
                Err(Error::InvalidKey { key: k }) => assert_eq!(k, key),
                other => panic!("key {key:?}: expected InvalidKey, got {other:?}"),
            }
        }
    }
    for key in ["a", "A-Z_0.9", "...", ".hidden", "builtLocally"] {
        store.set_metadata(&foobar, key, b"v").expect("valid key");
        store
            .delete_metadata(&foobar, key)
            .expect("delete valid key");
    }

    // delete_metadata: idempotent.
    store
        .delete_metadata(&foobar, "parent")
        .expect("delete key");
    store
        .delete_metadata(&foobar, "parent")
        .expect("delete missing key");
    assert_eq!(store.get_metadata(&foobar, "parent").expect("get"), None);
    assert_eq!(
        store
            .get_metadata(&foobar, "lastUpdated")
            .expect("get")
            .as_deref(),
        Some(&b"2026-11-30T00:00:00.123456789Z"[..])
    );

    // TestFSDelete: deleting one leaves the other.
    store.delete(&foobar).expect("delete");
    assert!(store.get(&foobar).expect_err("deleted").is_not_found());
    assert_eq!(store.get(&random_id).expect("other"), random);
    assert!(store.delete(&foobar).expect_err("twice").is_not_found());
    assert!(store.metadata_digests().expect("md").is_empty());
    assert!(
        store
            .get_metadata(&foobar, "lastUpdated")
            .expect_err("gone")
            .is_not_found()
    );
    assert_eq!(store.walk().expect("walk"), vec![random_id]);

    // Re-setting deleted content starts without metadata.
    let again = store.set(b"foobar").expect("set");
    assert_eq!(
        store.get_metadata(&again, "lastUpdated").expect("get"),
        None
    );

    store.delete(&again).expect("delete");
    store.delete(&random_id).expect("delete");
    assert!(store.walk().expect("walk").is_empty());
    assert!(store.cleanup().expect("cleanup").is_empty());
}
