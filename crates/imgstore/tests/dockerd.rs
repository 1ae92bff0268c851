//! The same `tag`/`rm` sequence applied by dockerd 20.10 (through the docker CLI) to one copy
//! of a fixture root and by imgstore to another: the outputs must match, and dockerd started on
//! imgstore's copy must list and inspect what it lists and inspects on its own copy.
//!
//! Needs root and `/usr/sbin/dockerd` + `/usr/bin/docker` (see `test_dockerd::skip_reason`);
//! skips with a message otherwise.

use crate::common;

use std::path::Path;
use std::process::Output;

use common::{extract, json_lines_without_since, run, sorted_lines};
use serde_json::Value;
use test_dockerd::{Dockerd, skip_reason};

/// `docker images` listing everything as JSON lines.
const LIST_ALL: &[&str] = &[
    "images",
    "-a",
    "--digests",
    "--no-trunc",
    "--format",
    "{{json .}}",
];

/// JSON lines as sorted values without `CreatedSince`.
fn json_set(text: &[u8]) -> Vec<Value> {
    json_lines_without_since(&String::from_utf8_lossy(text))
}

/// The same command through the docker CLI against `d`, and through imgstore on `root`
/// (where `images` is `ls`): (docker's output, imgstore's).
fn docker_and_ours(d: &Dockerd, root: &Path, args: &[&str]) -> (Output, Output) {
    let want = d.docker(args).expect("run docker");
    let mut ours = args.to_vec();
    if ours[0] == "images" {
        ours[0] = "ls";
    }
    (want, run(root, &ours))
}

/// `inspect` output without the tag times (they differ between the two runs).
fn strip_tag_times(mut v: Value) -> Value {
    if let Some(arr) = v.as_array_mut() {
        for item in arr {
            if let Some(m) = item.get_mut("Metadata").and_then(Value::as_object_mut) {
                m.remove("LastTagTime");
            }
        }
    }
    v
}

/// Applies `steps` with dockerd to one copy of `name` and with imgstore to another, comparing
/// each step's output and exit status; then compares listings, history, `repositories.json`,
/// and what dockerd shows of each copy. Returns everything imgstore printed.
fn same_as_dockerd(name: &str, steps: &[Vec<&str>], history_of: &str) -> String {
    let (_ga, root_a) = extract(name);
    let (_gb, root_b) = extract(name);
    let mut printed = String::new();
    {
        let d = Dockerd::start(&root_a).expect("start dockerd");
        for step in steps {
            let want = d.docker(step).expect("run docker");
            let mut args: Vec<&str> = step.clone();
            if args[0] == "rmi" {
                args[0] = "rm";
            }
            let got = run(&root_b, &args);
            printed.push_str(&String::from_utf8_lossy(&got.stdout));
            assert_eq!(
                String::from_utf8_lossy(&got.stdout),
                String::from_utf8_lossy(&want.stdout),
                "stdout of {step:?}; dockerd stderr: {}; imgstore stderr: {}",
                String::from_utf8_lossy(&want.stderr),
                String::from_utf8_lossy(&got.stderr)
            );
            assert_eq!(
                got.status.success(),
                want.status.success(),
                "exit status of {step:?}: docker {:?}, imgstore {:?}",
                String::from_utf8_lossy(&want.stderr),
                String::from_utf8_lossy(&got.stderr)
            );
        }
        // Listings and history agree.
        for args in [
            LIST_ALL.to_vec(),
            vec!["images", "--format", "{{json .}}"],
            vec![
                "history",
                "--no-trunc",
                "--format",
                "{{json .}}",
                history_of,
            ],
        ] {
            let (want, got) = docker_and_ours(&d, &root_b, &args);
            assert_eq!(json_set(&got.stdout), json_set(&want.stdout), "{args:?}");
        }
        // Tables from templates (no clock-dependent columns): the same text. Rows of one
        // image come in Go's random map order, so they are compared as sorted lines.
        for args in [
            vec![
                "images",
                "--format",
                "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.Size}}",
            ],
            vec![
                "images",
                "-a",
                "--digests",
                "--format",
                "table {{.ID}}\\t{{.Digest}}\\t{{.Repository}}",
            ],
            vec![
                "history",
                "--format",
                "table {{.ID}}\\t{{.CreatedBy}}\\t{{.Size}}",
                history_of,
            ],
            vec![
                "history",
                "-H=false",
                "--no-trunc",
                "--format",
                "{{.CreatedAt}} {{.Size}}",
                history_of,
            ],
        ] {
            let (want, got) = docker_and_ours(&d, &root_b, &args);
            let lines = |b: &[u8]| sorted_lines(&String::from_utf8_lossy(b));
            assert_eq!(lines(&got.stdout), lines(&want.stdout), "{args:?}");
            assert_eq!(got.stdout.len(), want.stdout.len(), "{args:?}");
        }
        // `inspect -f` templates: the same bytes.
        let f = "{{.Id}} {{.RepoTags}} {{.RepoDigests}} {{.Size}} {{.Parent}} {{json .Config}} \
                 {{.Config.Env}} {{.Config.Labels}} {{.ContainerConfig.Cmd}} {{.GraphDriver.Data}} \
                 {{json .RootFS}} {{.Os}} {{json .Metadata}}";
        let want = d
            .docker(&["image", "inspect", "-f", f, history_of])
            .expect("run docker");
        let got = run(&root_b, &["inspect", "-f", f, history_of]);
        let strip = |b: &[u8]| {
            let s = String::from_utf8_lossy(b).into_owned();
            s.split("{\"LastTagTime\"")
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(strip(&got.stdout), strip(&want.stdout), "inspect -f");
        assert_eq!(got.status.success(), want.status.success());
    }
    // repositories.json: byte for byte what dockerd wrote.
    let repos = |r: &Path| std::fs::read(r.join("image/vfs/repositories.json")).expect("read");
    assert_eq!(
        String::from_utf8_lossy(&repos(&root_b)),
        String::from_utf8_lossy(&repos(&root_a))
    );
    // What each dockerd shows of each copy.
    let show = |root: &Path| {
        let d = Dockerd::start(root).expect("start dockerd");
        let list = d.docker(LIST_ALL).expect("run docker");
        let ids = d
            .docker(&["images", "-a", "-q", "--no-trunc"])
            .expect("run docker");
        let mut ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        ids.sort();
        ids.dedup();
        let inspect = if ids.is_empty() {
            Value::Null
        } else {
            let mut args = vec!["image".to_owned(), "inspect".to_owned()];
            args.extend(ids);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            serde_json::from_slice(&d.docker(&refs).expect("run docker").stdout)
                .unwrap_or(Value::Null)
        };
        (json_set(&list.stdout), strip_tag_times(inspect))
    };
    let (list_a, inspect_a) = show(&root_a);
    let (list_b, inspect_b) = show(&root_b);
    assert_eq!(list_b, list_a, "dockerd lists imgstore's copy as its own");
    assert_eq!(
        inspect_b, inspect_a,
        "dockerd inspects imgstore's copy as its own"
    );
    // And imgstore agrees with dockerd on dockerd's copy.
    let ours = run(
        &root_a,
        &["ls", "-a", "--digests", "--no-trunc", "--format", "json"],
    );
    assert_eq!(json_set(&ours.stdout), list_a);
    printed
}

#[test]
fn tag_and_rm_match_dockerd() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipping: {reason}");
        return;
    }
    let steps: Vec<Vec<&str>> = vec![
        vec!["tag", "base:latest", "127.0.0.1:5000/test:1"],
        vec!["tag", "peer/child:1", "newname"],
        vec!["tag", "2beca", "peer/mid:x"],
        vec!["rmi", "7db9"],
        vec!["rmi", "base"],
        vec!["rmi", "2c8e"],
        vec!["rmi", "-f", "--no-prune", "2c8e"],
        vec!["rmi", "peer/mid:x"],
        vec!["rmi", "8198"],
        vec!["rmi", "nosuch"],
        vec!["tag", "peer/base:v1", "peer/base:v2"],
        vec!["rmi", "peer/base:v1"],
    ];
    let printed = same_as_dockerd("dockerroot-02-after-build", &steps, "peer/base:v2");
    assert!(printed.contains("Untagged: base:latest\n"), "{printed}");
    assert!(
        printed.contains("Deleted: sha256:4e989351ddaf"),
        "{printed}"
    );
}

#[test]
fn digest_references_match_dockerd() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipping: {reason}");
        return;
    }
    let digest_ref = "127.0.0.1:5000/test@sha256:55cedde171f6c6f7dd4a001c6cb59c52e635d0ddd301641a4f2f9733fe7bafe7";
    // Untagging the last tag of a repository drops its digest references too.
    let steps: Vec<Vec<&str>> = vec![
        vec!["tag", "peer/base:v1", "127.0.0.1:5000/test:2"],
        vec!["rmi", "127.0.0.1:5000/test:1"],
        vec!["rmi", "127.0.0.1:5000/test:2"],
        vec!["tag", "peer/base:v1", "other"],
        vec!["rmi", "7db9"],
        vec!["rmi", "peer/base"],
    ];
    let printed = same_as_dockerd("dockerroot-04-after-partial-rm", &steps, "peer/base:v1");
    assert!(
        printed.contains(&format!("Untagged: {digest_ref}\n")),
        "{printed}"
    );
    // A digest reference removed by itself, then removal by full ID.
    let steps: Vec<Vec<&str>> = vec![
        vec!["rmi", digest_ref],
        vec!["rmi", "127.0.0.1:5000/test:1"],
        vec!["tag", "peer/base:v1", "x:1"],
        vec![
            "rmi",
            "sha256:7db95e6e4fe3a141e68c2ff6cc0267d1fb63728cf6b9fa326a05ecb3b43ea6fe",
        ],
        vec![
            "rmi",
            "-f",
            "7db95e6e4fe3a141e68c2ff6cc0267d1fb63728cf6b9fa326a05ecb3b43ea6fe",
        ],
    ];
    let printed = same_as_dockerd("dockerroot-04-after-partial-rm", &steps, "nosuch");
    assert!(
        printed.contains("Deleted: sha256:516408ace5e5"),
        "{printed}"
    );
}

#[test]
fn damaged_root_lists_like_dockerd() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipping: {reason}");
        return;
    }
    let (_g, root) = extract("dockerroot-02-after-build");
    let v = root.join("image/vfs");
    let content = v.join("imagedb/content/sha256");
    // The tagged child's config no longer verifies: 8198 becomes an untagged head.
    let child = "2c8eeb116eab69faa88d6672e0cb055ccb79d72546b28882234dd3acc54c4625";
    let mut bytes = std::fs::read(content.join(child)).expect("read");
    bytes.push(b'\n');
    std::fs::write(content.join(child), bytes).expect("write");
    // A config that is not JSON, a temp file, and a layer directory without `diff`.
    let junk = digest_set::Digest::sha256(b"junk");
    std::fs::write(content.join(junk.hex()), b"junk").expect("write");
    std::fs::write(content.join(".tmp-x"), b"{}").expect("write");
    let fake = v
        .join("layerdb/sha256")
        .join(digest_set::Digest::sha256(b"fake").hex());
    std::fs::create_dir_all(&fake).expect("mkdir");
    std::fs::write(fake.join("size"), "1").expect("write");
    // imgstore first (read-only), then dockerd.
    let ours_all = run(&root, &["ls", "-a", "--no-trunc", "--format", "json"]);
    let ours = run(&root, &["ls", "--no-trunc", "--format", "json"]);
    let fsck = run(&root, &["fsck"]);
    assert_eq!(fsck.status.code(), Some(1));
    let d = Dockerd::start(&root).expect("start dockerd");
    let theirs_all = d
        .docker(&["images", "-a", "--no-trunc", "--format", "{{json .}}"])
        .expect("run docker");
    let theirs = d
        .docker(&["images", "--no-trunc", "--format", "{{json .}}"])
        .expect("run docker");
    assert_eq!(json_set(&ours_all.stdout), json_set(&theirs_all.stdout));
    assert_eq!(json_set(&ours.stdout), json_set(&theirs.stdout));
    assert_eq!(json_set(&ours.stdout).len(), 3);
}
