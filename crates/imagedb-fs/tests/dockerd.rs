//! dockerd 20.10 reads back an imagedb written by FsBackend. Skips (with a reason) when
//! dockerd or the docker client is missing or the test does not run as root.

use crate::common;

use std::collections::BTreeMap;
use std::fs;

use digest_set::Digest;
use imagedb_fs::{FsBackend, StoreBackend};
use test_dockerd::Dockerd;

/// `docker image ls -a` rows without the clock-dependent field, sorted.
fn ls_rows(text: &str) -> Vec<String> {
    let mut rows: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let start = l.find("\"CreatedSince\":\"").expect("CreatedSince field");
            let rest = &l[start + 16..];
            let end = rest.find('"').expect("end of value");
            format!("{}{}", &l[..start], &rest[end + 2..])
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn dockerd_reads_what_fs_backend_writes() {
    if let Some(why) = test_dockerd::skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let name = "dockerroot-02-after-build";
    let (tmp, imagedb) = common::extract_fixture(name);

    // Read everything dockerd wrote, then remove the imagedb and write it anew through
    // FsBackend (into a fresh directory, so modes come from us).
    let mut configs = Vec::new();
    let mut metadata: BTreeMap<Digest, Vec<(&str, Vec<u8>)>> = BTreeMap::new();
    {
        let original = FsBackend::open(&imagedb).expect("open fixture");
        for id in original.walk().expect("walk") {
            configs.push(original.get(&id).expect("get"));
            for key in ["parent", "lastUpdated"] {
                if let Some(v) = original.get_metadata(&id, key).expect("md") {
                    metadata.entry(id).or_default().push((key, v));
                }
            }
        }
    }
    fs::remove_dir_all(&imagedb).expect("remove imagedb");
    {
        let store = FsBackend::open(&imagedb).expect("open new");
        for c in &configs {
            store.set(c).expect("set");
        }
        for (id, values) in &metadata {
            for (key, v) in values {
                store.set_metadata(id, key, v).expect("set md");
            }
        }
    }

    let data_root = tmp.path().join(name);
    let daemon = Dockerd::start(&data_root).expect("start dockerd");
    let ls = daemon
        .docker_ok(&["image", "ls", "-a", "--no-trunc", "--format", "{{json .}}"])
        .expect("docker image ls");
    let expected_dir = common::fixtures_dir().join(format!("{name}.expected"));
    let expected = fs::read_to_string(expected_dir.join("ls-a.json")).expect("expected ls");
    assert_eq!(ls_rows(&ls), ls_rows(&expected));
    let parent = daemon
        .docker_ok(&[
            "image",
            "inspect",
            "--format",
            "{{.Parent}}",
            "peer/child:1",
        ])
        .expect("inspect");
    assert!(parent.trim().starts_with("sha256:"), "{parent}");
    let log = daemon.log();
    // Errors of the image restore; a loaded machine can make dockerd's first dial of its
    // containerd fail (module=libcontainerd), which is not about images.
    let restore_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("level=error") && !l.contains("module=libcontainerd"))
        .collect();
    assert!(restore_errors.is_empty(), "{restore_errors:#?}");
    drop(daemon);

    // And what dockerd left is still read by FsBackend.
    let store = FsBackend::open(&imagedb).expect("reopen");
    assert_eq!(store.walk().expect("walk").len(), configs.len());
    for id in store.walk().expect("walk") {
        store.get(&id).expect("verifies");
    }
}
