//! Hostile and damaged data roots: whatever a root holds, no command may delete, change or
//! print anything outside it, hang, or take more than a bounded amount of memory. Each case
//! runs the real binary under a time and memory guard (30 s, 1 GiB: there to catch hangs and
//! blow-ups, not to measure speed) with a canary directory outside the root.

use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::extract;

use test_dockerd::canary::{Canary, SECRET};
const LIVE_CACHE: &str = "3cf2b5bd3f12c28e7a0b2c2f0b2e3bff96a4a7c0b7f6d5c9e6d9bb5e1ac3c0c1";

/// Runs `imgstore --data-root <root> <args>` with 1 GiB of address space and 30 s.
fn guarded(root: &Path, args: &[&str]) -> Output {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 1048576; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_imgstore"))
        .env("XDG_CACHE_HOME", crate::common::cache_home())
        .arg("--data-root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("imgstore {args:?} hung (killed after 30 s)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains(SECRET),
        "imgstore {args:?} printed the canary: {text}"
    );
    assert!(
        !text.contains("panicked"),
        "imgstore {args:?} panicked: {text}"
    );
    out
}

/// Runs every command on `root` (the writes first on a copy each), checking the canary.
fn every_command(root: &Path, canary: &Canary) {
    let before = canary.snapshot().expect("snapshot");
    for args in [
        &["ls", "-a"][..],
        &["ls", "--format", "json"],
        &["inspect", "base"],
        &["history", "base"],
        &["tree"],
        &["fsck"],
        &["fsck", "--format", "json"],
        &["tag", "base", "hostile:1"],
        &["rm", "-f", "hostile:1"],
        &["rm", "-f", "base"],
    ] {
        guarded(root, args);
        assert_eq!(
            canary.snapshot().expect("snapshot"),
            before,
            "imgstore {args:?} changed the canary"
        );
    }
}

fn layer_dirs(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(root.join("image/vfs/layerdb/sha256"))
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

fn fifo(p: &Path) {
    let _ = fs::remove_file(p);
    rustix::fs::mkfifoat(rustix::fs::CWD, p, rustix::fs::Mode::from_raw_mode(0o600))
        .expect("mkfifo");
}

fn replace_with_symlink(p: &Path, target: &Path) {
    if p.is_dir() {
        fs::remove_dir_all(p).expect("rm");
    } else {
        let _ = fs::remove_file(p);
    }
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    symlink(target, p).expect("symlink");
}

#[test]
fn symlinked_directories_at_every_level_are_never_followed() {
    let canary = Canary::new().expect("canary");
    for rel in [
        "image/vfs/layerdb/tmp",
        "image/vfs/layerdb/sha256",
        "image/vfs/layerdb/mounts",
        "image/vfs/layerdb",
        "image/vfs/imagedb",
        "image/vfs/imagedb/content/sha256",
        "image/vfs/imagedb/metadata/sha256",
        "image/vfs",
        "vfs/dir",
    ] {
        let (_g, root) = extract("dockerroot-02-after-build");
        fs::create_dir_all(root.join("image/vfs/layerdb/mounts")).expect("mkdir");
        replace_with_symlink(&root.join(rel), canary.path());
        every_command(&root, &canary);
    }
}

#[test]
fn removing_leftovers_are_removed_only_when_ours() {
    let canary = Canary::new().expect("canary");
    // `vfs/dir` leads outside, and a leftover names `Documents`.
    let (_g, root) = extract("dockerroot-02-after-build");
    replace_with_symlink(&root.join("vfs/dir"), canary.path());
    let leftover = root.join("image/vfs/layerdb/sha256/0000-x-removing");
    fs::create_dir(&leftover).expect("mkdir");
    fs::write(leftover.join("cache-id"), "Documents").expect("write");
    every_command(&root, &canary);

    // A stale leftover whose cache-id is a live layer's: tag keeps that layer's content,
    // and fsck reports the leftover.
    let (_g, root) = extract("dockerroot-02-after-build");
    let live = layer_dirs(&root)[0].clone();
    let cache = fs::read_to_string(live.join("cache-id")).expect("cache-id");
    let content = root.join("vfs/dir").join(cache.trim());
    fs::create_dir_all(&content).expect("content");
    fs::write(content.join("bin"), "x").expect("write");
    let name = format!(
        "{}-{}-removing",
        live.file_name().and_then(|n| n.to_str()).expect("name"),
        "ab".repeat(32)
    );
    let stale = root.join("image/vfs/layerdb/sha256").join(&name);
    fs::create_dir(&stale).expect("mkdir");
    fs::write(stale.join("cache-id"), cache.trim()).expect("write");
    let out = guarded(&root, &["tag", "base", "x:1"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        content.join("bin").exists(),
        "the live layer's content was deleted"
    );
    let out = guarded(&root, &["fsck"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains(&name), "{text}");
    let _ = LIVE_CACHE;
}

#[test]
fn outside_content_is_never_printed() {
    let canary = Canary::new().expect("canary");
    let (_g, root) = extract("dockerroot-02-after-build");
    let layer = layer_dirs(&root)[0].clone();
    replace_with_symlink(&layer.join("diff"), &canary.path().join("secret"));
    every_command(&root, &canary);
}

#[test]
fn fifos_and_devices_never_hang() {
    let canary = Canary::new().expect("canary");
    let (_g, root) = extract("dockerroot-02-after-build");
    fifo(&root.join("image/vfs/repositories.json"));
    every_command(&root, &canary);

    let (_g, root) = extract("dockerroot-02-after-build");
    fifo(&layer_dirs(&root)[0].join("size"));
    let config = fs::read_dir(root.join("image/vfs/imagedb/content/sha256"))
        .expect("list")
        .map(|e| e.expect("entry").path())
        .next()
        .expect("a config");
    fifo(&config);
    fs::create_dir_all(root.join("containers/c1")).expect("mkdir");
    fifo(&root.join("containers/c1/config.v2.json"));
    every_command(&root, &canary);

    let (_g, root) = extract("dockerroot-02-after-build");
    replace_with_symlink(
        &layer_dirs(&root)[0].join("descriptor.json"),
        Path::new("/dev/zero"),
    );
    every_command(&root, &canary);
}

#[test]
fn sparse_files_never_exhaust_memory() {
    let canary = Canary::new().expect("canary");
    let (_g, root) = extract("dockerroot-02-after-build");
    let sparse = |p: &Path| {
        fs::File::create(p)
            .and_then(|f| f.set_len(2 << 30))
            .expect("sparse");
    };
    sparse(&layer_dirs(&root)[0].join("descriptor.json"));
    let config = fs::read_dir(root.join("image/vfs/imagedb/content/sha256"))
        .expect("list")
        .map(|e| e.expect("entry").path())
        .next()
        .expect("a config");
    sparse(&config);
    sparse(&root.join("image/vfs/repositories.json"));
    every_command(&root, &canary);
}

#[test]
fn temp_files_are_reported_and_cleaned_by_the_next_write() {
    let (_g, root) = extract("dockerroot-02-after-build");
    let tmp = root.join("image/vfs/.tmp-repositories.json123456");
    fs::write(&tmp, "{").expect("write");
    // What a `rm` killed between removing a config and its metadata leaves.
    let orphan = root.join(format!(
        "image/vfs/imagedb/metadata/sha256/{}",
        "e1".repeat(32)
    ));
    fs::create_dir_all(&orphan).expect("mkdir");
    fs::write(orphan.join("lastUpdated"), "2020-01-01T00:00:00Z").expect("write");
    let meta_tmp = orphan.join(".tmp-lastUpdated-0123456789abcdef");
    fs::write(&meta_tmp, "2020").expect("write");
    let out = guarded(&root, &["fsck"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && text.contains(".tmp-repositories.json"),
        "{text}"
    );
    let out = guarded(&root, &["tag", "base", "t:1"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!tmp.exists());
    let mode = fs::metadata(root.join("image/vfs/repositories.json"))
        .expect("stat")
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// `rm` killed after the image's config and metadata went but before its layers: the next
/// write finishes the release from the note `rm` left, and leaves nothing behind.
#[test]
fn a_killed_rm_is_finished_by_the_next_write() {
    let (_g, root) = extract("dockerroot-02-after-build");
    let out = guarded(&root, &["inspect", "--format", "{{.Id}}", "base"]);
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("id")
        .to_owned();
    // Untag and remove everything but `base`'s layers, as rm would up to the kill point.
    let hex = id.trim_start_matches("sha256:");
    let layers_before = layer_dirs(&root).len();
    let chain_of = |root: &Path| {
        let store = imgstore::store::Store::open(&imgstore::store::OpenOptions {
            root: root.to_owned(),
            ..Default::default()
        })
        .expect("open");
        store
            .image_store()
            .info(&image_store::ImageId(id.parse().expect("digest")))
            .expect("info")
            .chain_id
            .expect("chain")
    };
    let chain = chain_of(&root);
    // Children of base keep its layer alive: remove every image but base first.
    let out = guarded(&root, &["rm", "-f", "peer/child:1"]);
    assert!(out.status.success(), "{out:?}");
    let others: Vec<String> =
        String::from_utf8_lossy(&guarded(&root, &["ls", "-aq", "--no-trunc"]).stdout)
            .lines()
            .filter(|l| *l != id)
            .map(str::to_owned)
            .collect();
    for o in &others {
        let out = guarded(&root, &["rm", "-f", o]);
        assert!(out.status.success(), "{out:?}");
    }
    // rm untags first.
    let repos = root.join("image/vfs/repositories.json");
    let mut refs = imgstore::refstore::RefStore::load(&repos).expect("load");
    for r in refs.references(&id.parse().expect("digest")).to_vec() {
        refs.delete(&r.with_default_tag()).expect("untag");
    }
    let note = root.join(format!("image/vfs/.imgstore-release-{}", chain.0.hex()));
    fs::write(&note, chain.to_string()).expect("note");
    fs::remove_file(root.join("image/vfs/imagedb/content/sha256").join(hex)).expect("rm");
    let _ = fs::remove_dir_all(root.join("image/vfs/imagedb/metadata/sha256").join(hex));
    assert!(
        root.join("image/vfs/layerdb/sha256")
            .join(chain.0.hex())
            .exists()
    );
    // Any write finishes it, even one that then fails (the store is opened for writing).
    let out = guarded(&root, &["rm", "nothing-here"]);
    assert!(!out.status.success());
    assert!(
        !root
            .join("image/vfs/layerdb/sha256")
            .join(chain.0.hex())
            .exists()
    );
    assert!(!note.exists());
    assert!(layer_dirs(&root).len() < layers_before);
    let out = guarded(&root, &["fsck"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
