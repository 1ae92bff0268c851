//! `fsck --repair [--quarantine]` on copies of the fixture roots with what interrupted writes
//! leave and with damage: one line per action, a second run does nothing, `fsck` is clean
//! after, and (where dockerd runs) dockerd starts clean on the quarantined root.

use crate::common;

use std::path::Path;

use common::{extract, run, stdout_ok};
use imgstore::reference::Reference;
use imgstore::refstore::RefStore;
use test_dockerd::{Dockerd, skip_reason};

const CHILD: &str = "sha256:2c8eeb116eab69faa88d6672e0cb055ccb79d72546b28882234dd3acc54c4625";

/// The action lines of a repair's output (findings start with their kind, the verdict with
/// `ok:`).
fn actions(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| {
            [
                "removed ",
                "deleted ",
                "untagged ",
                "linked ",
                "quarantined ",
                "stopped ",
            ]
            .iter()
            .any(|v| l.starts_with(v))
        })
        .collect()
}

fn ls_all(root: &Path) -> String {
    stdout_ok(&run(
        root,
        &[
            "ls",
            "-a",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Repository}}:{{.Tag}}",
        ],
    ))
}

/// Everything a killed write can leave in a vfs root at once: temp files of the imagedb,
/// of repositories.json and of a note, a layer staging directory with its content, a
/// `-removing` layer, metadata of a deleted image, and an `rm` of `peer/child:1` killed
/// after it untagged. One repair finishes them all (the rm as an uninterrupted one would
/// have ended), says so line by line, and a second run has nothing to do.
#[test]
fn repair_finishes_what_killed_writes_left_once() {
    let (_g, root) = extract("dockerroot-02-after-build");
    let (_g2, want) = extract("dockerroot-02-after-build");
    stdout_ok(&run(&want, &["rm", "peer/child:1"]));

    let v = root.join("image/vfs");
    // The fixture keeps no layer content: give every layer an (empty) directory, so that
    // the one a staging directory names is not the only content there.
    for e in std::fs::read_dir(v.join("layerdb/sha256")).expect("list") {
        let id =
            std::fs::read_to_string(e.expect("entry").path().join("cache-id")).expect("cache-id");
        std::fs::create_dir_all(root.join("vfs/dir").join(id.trim())).expect("mkdir");
    }
    // rm peer/child:1 killed after its untag (done first here: a save of repositories.json
    // removes its stale temp files).
    let mut refs = RefStore::load(&v.join("repositories.json")).expect("load");
    refs.delete(&Reference::parse_normalized("peer/child:1").expect("ref"))
        .expect("untag");
    std::fs::write(v.join(".tmp-repositories.json-0123"), b"{\"Repos").expect("write");
    std::fs::write(v.join(".tmp-.imgstore-rm-77"), b"{").expect("write");
    std::fs::write(v.join("imagedb/content/sha256/.tmp-abc"), b"{}").expect("write");
    let cache = "c".repeat(64);
    let staging = v.join("layerdb/tmp/write-set-0a1b2c3d");
    std::fs::create_dir_all(&staging).expect("mkdir");
    std::fs::write(staging.join("cache-id"), &cache).expect("write");
    std::fs::create_dir_all(root.join("vfs/dir").join(&cache).join("etc")).expect("mkdir");
    let removing = v.join(format!(
        "layerdb/sha256/{}-{}-removing",
        "5".repeat(64),
        "6".repeat(64)
    ));
    std::fs::create_dir_all(&removing).expect("mkdir");
    let orphan_meta = v.join(format!("imagedb/metadata/sha256/{}", "e1".repeat(32)));
    std::fs::create_dir_all(&orphan_meta).expect("mkdir");
    std::fs::write(orphan_meta.join("lastUpdated"), "2020-01-01T00:00:00Z").expect("write");
    // The note that rm wrote first.
    let parent = std::fs::read_to_string(
        v.join("imagedb/metadata/sha256")
            .join(CHILD.trim_start_matches("sha256:"))
            .join("parent"),
    )
    .expect("parent link");
    std::fs::write(
        v.join(".imgstore-rm"),
        serde_json::json!({
            "image": CHILD, "parent": parent, "force": false, "prune": true, "quiet": true
        })
        .to_string(),
    )
    .expect("note");

    let out = run(&root, &["fsck", "--repair"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done = actions(&text);
    for want_line in [
        ".tmp-repositories.json-0123: temp file",
        ".tmp-.imgstore-rm-77: temp file",
        ".tmp-abc: temp file",
        "write-set-0a1b2c3d: staging directory of an interrupted layer write",
        "-removing: layer of an interrupted deletion",
        &format!(
            "{}: metadata of an image whose deletion was interrupted",
            "e1".repeat(32)
        ),
        &format!("deleted {CHILD}: finishing an interrupted rm"),
        ".imgstore-rm: note of an interrupted rm (finished)",
    ] {
        assert!(
            done.iter().any(|l| l.contains(want_line)),
            "no action {want_line:?} in\n{text}"
        );
    }
    assert!(!root.join("vfs/dir").join(&cache).exists());
    assert!(!staging.exists() && !removing.exists() && !orphan_meta.exists());
    assert!(
        text.lines().last().is_some_and(|l| l.starts_with("ok: ")),
        "{text}"
    );
    // As the uninterrupted rm left it, layers included.
    assert_eq!(ls_all(&root), ls_all(&want));
    let layers = |r: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(r.join("image/vfs/layerdb/sha256"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        v.sort();
        v
    };
    assert_eq!(layers(&root), layers(&want));
    // Idempotent.
    let again = stdout_ok(&run(&root, &["fsck", "--repair"]));
    assert!(actions(&again).is_empty(), "{again}");
    // JSON: one object a line, actions first.
    let json = stdout_ok(&run(&root, &["fsck", "--repair", "--format", "json"]));
    assert!(!json.contains("\"verb\""), "{json}");
}

/// overlay2: a killed write's in-flight directory that nothing names goes, so does a short
/// link that leads nowhere; a layer's missing short link is made again; a directory nothing
/// names (BuildKit's, perhaps) stays.
#[test]
fn repair_cleans_overlay2_in_flight_content_and_links() {
    if let Some(why) = skip_reason() {
        eprintln!(
            "skipping: extracting an overlay2 root (devices, trusted.* xattrs) needs root: {why}"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let st = std::process::Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xzf"])
        .arg(common::fixtures_dir().join("wave2/o2root-after-load.tar.gz"))
        .arg("-C")
        .arg(dir.path())
        .status()
        .expect("tar");
    assert!(st.success());
    let root = dir.path().join("o2root-after-load");
    let o2 = root.join("overlay2");
    let partial = o2.join(format!("imgstore-partial-{}", "a".repeat(64)));
    std::fs::create_dir_all(partial.join("diff/bin")).expect("mkdir");
    let dangling = o2.join("l/ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    std::os::unix::fs::symlink("../nothing-here/diff", &dangling).expect("symlink");
    let unnamed = o2.join("someone-elses");
    std::fs::create_dir_all(&unnamed).expect("mkdir");
    // Take away one layer's short link.
    let layer = std::fs::read_dir(&o2)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .find(|p| p.join("link").exists())
        .expect("a layer");
    let short = std::fs::read_to_string(layer.join("link")).expect("link");
    std::fs::remove_file(o2.join("l").join(short.trim())).expect("rm link");
    let before =
        String::from_utf8_lossy(&run(&root, &["fsck", "--format", "json"]).stdout).into_owned();
    assert!(before.contains("driver-link"), "{before}");

    let out = run(&root, &["fsck", "--repair"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    let done = actions(&text);
    assert_eq!(done.len(), 3, "{text}");
    assert!(
        done.iter()
            .any(|l| l.starts_with(&format!("removed {}", partial.display()))),
        "{text}"
    );
    assert!(
        done.iter()
            .any(|l| l.starts_with(&format!("removed {}", dangling.display()))),
        "{text}"
    );
    assert!(
        done.iter()
            .any(|l| l.starts_with("linked ") && l.contains(short.trim())),
        "{text}"
    );
    assert!(!partial.exists() && dangling.symlink_metadata().is_err());
    assert!(unnamed.exists(), "a directory nothing names was touched");
    assert_eq!(
        std::fs::read_link(o2.join("l").join(short.trim())).expect("relinked"),
        Path::new("..")
            .join(layer.file_name().expect("name"))
            .join("diff")
    );
    let again = stdout_ok(&run(&root, &["fsck", "--repair"]));
    assert!(actions(&again).is_empty(), "{again}");
    assert!(again.contains("driver-unnamed"), "{again}");
}

/// Damage that may hold data is reported and left by `--repair`, moved under
/// `image/vfs/quarantine/` by `--quarantine` (restorable by moving it back), and dockerd
/// then lists what imgstore lists without an error about images or layers.
#[test]
fn quarantine_moves_damage_aside_so_dockerd_starts_clean() {
    let (_g, root) = extract("dockerroot-02-after-build");
    let v = root.join("image/vfs");
    let content = v.join("imagedb/content/sha256");
    let mid = "8198421c8dc571c5263ce2510713b2fe4162b31fc8ae4c0314509359ce5362af";
    let mut bytes = std::fs::read(content.join(mid)).expect("read");
    bytes.push(b' ');
    std::fs::write(content.join(mid), &bytes).expect("write");
    let mut refs = RefStore::load(&v.join("repositories.json")).expect("load");
    refs.add_tag(
        &Reference::parse_normalized("gone:1").expect("ref"),
        &format!("sha256:{}", "9".repeat(64))
            .parse()
            .expect("digest"),
        true,
    )
    .expect("tag");

    let out = run(&root, &["fsck", "--repair"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(actions(&text).is_empty(), "{text}");
    assert!(text.contains("config-verify"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--quarantine"));
    assert!(content.join(mid).exists(), "repair deleted a config");

    let out = run(&root, &["fsck", "--repair", "--quarantine"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let q = v.join("quarantine");
    assert_eq!(
        std::fs::read(q.join("imagedb/content/sha256").join(mid)).expect("quarantined config"),
        bytes
    );
    assert!(!content.join(mid).exists());
    let qrefs = std::fs::read_to_string(q.join("repositories.json")).expect("quarantined refs");
    assert!(qrefs.contains("gone:1"), "{qrefs}");
    // The child's link to the quarantined parent went with it.
    assert!(
        actions(&text)
            .iter()
            .any(|l| l.ends_with("parent") || l.contains("/parent:")),
        "{text}"
    );
    assert!(
        actions(&text)
            .iter()
            .any(|l| l.starts_with("quarantined gone:1")),
        "{text}"
    );
    let again = stdout_ok(&run(&root, &["fsck", "--repair", "--quarantine"]));
    assert!(actions(&again).is_empty(), "{again}");
    stdout_ok(&run(&root, &["fsck"]));

    if let Some(why) = skip_reason() {
        eprintln!("skipping the dockerd half: {why}");
        return;
    }
    let ours = ls_all(&root);
    let d = Dockerd::start(&root).expect("start dockerd");
    let theirs = d
        .docker_ok(&[
            "images",
            "-a",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Repository}}:{{.Tag}}",
        ])
        .expect("docker images");
    assert_eq!(common::sorted_lines(&theirs), common::sorted_lines(&ours));
    let log = d.log();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("level=error") && (l.contains("image") || l.contains("layer")))
        .collect();
    assert!(errors.is_empty(), "dockerd logged {errors:#?}");
}

/// A killed pull's partial download is reported (a note: exit 0, with its size), removed by
/// `--repair` (one line), and a second repair does nothing; a file pull does not write
/// there, and a symbolic link named as a partial, are reported and left alone.
#[test]
fn partial_downloads_are_reported_then_removed_and_foreign_files_kept() {
    let (_g, root) = extract("dockerroot-02-after-build");
    let pdir = root.join("image/vfs/.imgstore-pull");
    std::fs::create_dir(&pdir).expect("mkdir");
    let partial = pdir.join(format!("sha256-{}", "ab".repeat(32)));
    std::fs::write(&partial, vec![7u8; 4321]).expect("write");
    let foreign = pdir.join("notes.txt");
    std::fs::write(&foreign, b"mine").expect("write");
    let link = pdir.join(format!("sha256-{}", "cd".repeat(32)));
    std::os::unix::fs::symlink("/etc/passwd", &link).expect("symlink");

    let out = run(&root, &["fsck"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "a partial is not damage: {text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("pull-partial ") && l.contains("4321 bytes")),
        "{text}"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("pull-foreign:"))
            .count(),
        2,
        "{text}"
    );

    let out = run(&root, &["fsck", "--repair"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    let done = actions(&text);
    assert_eq!(done.len(), 1, "{text}");
    assert!(
        done[0].contains("partial download of blob sha256:abab"),
        "{text}"
    );
    assert!(!partial.exists());
    assert!(foreign.exists() && link.symlink_metadata().is_ok());
    assert_eq!(
        std::fs::read_link(&link).expect("link"),
        Path::new("/etc/passwd")
    );

    let again = run(&root, &["fsck", "--repair"]);
    assert!(again.status.success());
    assert!(actions(&String::from_utf8_lossy(&again.stdout)).is_empty());

    // Once only partials were there, the directory goes with them.
    std::fs::remove_file(&foreign).expect("rm");
    std::fs::remove_file(&link).expect("rm");
    std::fs::write(&partial, b"x").expect("write");
    let out = run(&root, &["fsck", "--repair"]);
    assert_eq!(actions(&String::from_utf8_lossy(&out.stdout)).len(), 2);
    assert!(!pdir.exists());
    // A link in place of the directory is reported and not followed.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let target = elsewhere.path().join(format!("sha256-{}", "ef".repeat(32)));
    std::fs::write(&target, b"keep").expect("write");
    std::os::unix::fs::symlink(elsewhere.path(), &pdir).expect("symlink");
    let out = run(&root, &["fsck", "--repair"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(actions(&text).is_empty(), "{text}");
    assert!(text.contains("pull-foreign:"), "{text}");
    assert!(target.exists());
}
