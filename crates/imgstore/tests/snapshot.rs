//! Snapshots of the restore: an open through the snapshot cache gives exactly what a full
//! restore gives, after any dockerd-like change to the data root; damaged, foreign and
//! stale snapshots are ignored and rewritten; the cache stays bounded; `--no-snapshot` and
//! `fsck` read everything.

use crate::common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use digest_set::Digest;
use image_store::{ImageId, ImageStore};
use imagedb_fs::FsBackend;
use imgstore::snapshot::{SnapshotUse, Snapshots};
use imgstore::store::{OpenOptions, Store};
use layer_store::{DiffId, LayerStore, NullDriver};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// How long a change must be past before the tests' snapshots trust it. Far shorter than
/// the default, which allows for file systems with one-second timestamps: the tests run on
/// temp dirs with fine timestamps (checked by [`fine_timestamps`]).
const SETTLE: Duration = Duration::from_millis(40);

/// Waits until every change made so far is settled.
fn settle() {
    std::thread::sleep(SETTLE + Duration::from_millis(25));
}

/// Whether files created in `dir` get sub-second change times (else the tests' short settle
/// time would not be sound there, and they use the default).
fn fine_timestamps(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    (0..3).any(|i| {
        let p = dir.join(format!(".fine-{i}"));
        let fine = std::fs::write(&p, b"x").is_ok()
            && std::fs::metadata(&p).is_ok_and(|m| m.ctime_nsec() != 0);
        let _ = std::fs::remove_file(&p);
        std::thread::sleep(Duration::from_millis(3));
        fine
    })
}

fn snapshots(cache: &Path) -> Snapshots {
    let s = Snapshots::new(cache);
    if fine_timestamps(cache.parent().unwrap_or(cache)) {
        s.with_settle(SETTLE)
    } else {
        s
    }
}

/// Opens `root` read-only, through `snapshots` if given.
fn open(root: &Path, snapshots: Option<&Snapshots>) -> Store {
    Store::open(&OpenOptions {
        root: root.to_owned(),
        snapshots: snapshots.cloned(),
        ..OpenOptions::default()
    })
    .expect("open")
}

/// Everything a restore gives, as text: images with sizes, times, parents and children,
/// heads, short-ID lookups, both restore reports, layers with their references, tags.
fn state(store: &Store) -> String {
    let mut out = String::new();
    let images = store.images();
    for (id, e) in &images {
        let _ = writeln!(out, "image {e:?} children {:?}", store.children(id));
        let _ = writeln!(out, "  resolves {:?}", store.resolve(&id.short()).ok());
    }
    let heads: Vec<ImageId> = store.image_store().heads().into_keys().collect();
    let _ = writeln!(out, "heads {heads:?}");
    let _ = writeln!(out, "image report {:?}", store.image_restore());
    for l in store.layer_store().layers() {
        let _ = writeln!(
            out,
            "layer {l:?} refs {:?} handles {:?}",
            store.layer_store().ref_count(&l.chain_id),
            store.layer_store().handle_count(&l.chain_id)
        );
    }
    let _ = writeln!(out, "layer report {:?}", store.layer_restore());
    for e in store.refs().entries() {
        let _ = writeln!(out, "ref {e:?}");
    }
    out
}

/// How often the property test's opens took each store from the snapshot.
static LAYERS_FROM_SNAPSHOT: AtomicUsize = AtomicUsize::new(0);
static IMAGES_FROM_SNAPSHOT: AtomicUsize = AtomicUsize::new(0);
static LINKS_READ_AGAIN: AtomicUsize = AtomicUsize::new(0);

/// Opens `root` through the snapshot cache and in full, and checks that both give the same
/// state; returns how the snapshot was used.
fn same_as_full(root: &Path, snaps: &Snapshots) -> SnapshotUse {
    let through = open(root, Some(snaps));
    let full = open(root, None);
    assert_eq!(full.snapshot_use(), SnapshotUse::default());
    let used = through.snapshot_use();
    let (got, want) = (state(&through), state(&full));
    if got != want {
        let differ: Vec<(&str, &str)> = got
            .lines()
            .zip(want.lines())
            .filter(|(a, b)| a != b)
            .take(4)
            .collect();
        panic!("through the snapshot ({used:?}) != full restore: {differ:#?}");
    }
    if used.layers {
        LAYERS_FROM_SNAPSHOT.fetch_add(1, Ordering::Relaxed);
    }
    if used.images {
        IMAGES_FROM_SNAPSHOT.fetch_add(1, Ordering::Relaxed);
    }
    LINKS_READ_AGAIN.fetch_add(used.reread_links, Ordering::Relaxed);
    used
}

/// The snapshot file of the cache (there is one data root per cache in these tests).
fn snapshot_file(cache: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(cache)
        .expect("cache dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "snapshot"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().expect("one file")
}

#[test]
fn fixtures_restore_the_same_through_the_snapshot() {
    for name in common::FIXTURES {
        let (tmp, root) = common::extract(name);
        let cache = tmp.path().join("cache");
        let snaps = snapshots(&cache);
        settle();
        let first = same_as_full(&root, &snaps);
        assert_eq!(
            first,
            SnapshotUse {
                written: true,
                ..SnapshotUse::default()
            },
            "{name}"
        );
        let second = same_as_full(&root, &snaps);
        assert_eq!(
            second,
            SnapshotUse {
                layers: true,
                images: true,
                ..SnapshotUse::default()
            },
            "{name}"
        );
        // Read commands change nothing under the data root.
        let before = common::sorted_lines(&tree(&root));
        same_as_full(&root, &snaps);
        assert_eq!(common::sorted_lines(&tree(&root)), before, "{name}");
    }
}

/// Every path under `dir` with its type, one a line.
fn tree(dir: &Path) -> String {
    fn walk(base: &Path, dir: &Path, out: &mut String) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let e = e.expect("entry");
            let t = e.file_type().expect("type");
            let _ = writeln!(
                out,
                "{} {}",
                e.path().strip_prefix(base).expect("prefix").display(),
                t.is_dir()
            );
            if t.is_dir() {
                walk(base, &e.path(), out);
            }
        }
    }
    let mut out = String::new();
    walk(dir, dir, &mut out);
    out
}

/// A change made within the settle time is not trusted: nothing is recorded for it, and
/// the next open after it settles reads it and records it.
#[test]
fn fresh_changes_are_not_recorded() {
    let (tmp, root) = common::extract("dockerroot-02-after-build");
    let cache = tmp.path().join("cache");
    // The default settle time (2 s): everything was just extracted.
    let strict = Snapshots::new(&cache);
    let used = open(&root, Some(&strict)).snapshot_use();
    assert_eq!(used, SnapshotUse::default());
    assert!(!cache.exists() || std::fs::read_dir(&cache).expect("dir").next().is_none());
}

/// A snapshot that is damaged, cut short, written for another root or by another build,
/// or replaced by something that is not a file, is ignored (the open reads everything),
/// and replaced by a good one.
#[test]
fn damaged_and_foreign_snapshots_are_ignored_and_rewritten() {
    let (tmp, root) = common::extract("dockerroot-02-after-build");
    let (_tmp2, other) = common::extract("dockerroot-01-after-load");
    let cache = tmp.path().join("cache");
    let snaps = snapshots(&cache);
    settle();
    assert!(same_as_full(&other, &snaps).written);
    let foreign = snapshot_file(&cache);
    let foreign_bytes = std::fs::read(&foreign).expect("read");
    std::fs::remove_file(&foreign).expect("rm");
    assert!(same_as_full(&root, &snaps).written);
    let file = snapshot_file(&cache);
    let good = std::fs::read(&file).expect("read");
    let flip = |at: usize| {
        let mut b = good.clone();
        b[at] ^= 0x40;
        b
    };
    let damages: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        (
            "garbage",
            b"not a snapshot at all, but long enough to be read".repeat(9),
        ),
        ("first byte", flip(0)),
        ("a section byte", flip(good.len() / 3)),
        ("another section byte", flip(good.len() / 2 + 7)),
        ("a trailer byte", flip(good.len() - 60)),
        ("last byte", flip(good.len() - 1)),
        ("cut short", good[..good.len() / 2].to_vec()),
        ("cut at the end", good[..good.len() - 1].to_vec()),
        ("another root's", foreign_bytes),
    ];
    for (what, bytes) in damages {
        std::fs::write(&file, &bytes).expect("write");
        let used = same_as_full(&root, &snaps);
        assert_eq!(
            (used.layers && used.images, used.written),
            (false, true),
            "{what}: {used:?}"
        );
        assert_eq!(snapshot_file(&cache), file);
        let used = same_as_full(&root, &snaps);
        assert!(
            used.layers && used.images && !used.written,
            "{what}: {used:?}"
        );
    }
    // A directory in the file's place: ignored, and not replaced.
    std::fs::remove_file(&file).expect("rm");
    std::fs::create_dir(&file).expect("mkdir");
    let used = same_as_full(&root, &snaps);
    assert!(!used.layers && !used.images, "{used:?}");
    std::fs::remove_dir(&file).expect("rmdir");
    // A cache others can write to is not used.
    use std::os::unix::fs::PermissionsExt;
    same_as_full(&root, &snaps);
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let used = same_as_full(&root, &snaps);
    assert_eq!(used, SnapshotUse::default());
}

/// The cache keeps at most `MAX_FILES` snapshots, the newest; temp files of a killed write
/// go once they are old.
#[test]
fn the_cache_stays_bounded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let snaps = snapshots(&cache);
    let mut roots = Vec::new();
    for _ in 0..imgstore::snapshot::MAX_FILES + 3 {
        roots.push(common::extract("dockerroot-05-after-full-rm"));
    }
    settle();
    for (_, root) in &roots {
        assert!(same_as_full(root, &snaps).written);
    }
    let count = std::fs::read_dir(&cache).expect("dir").count();
    assert_eq!(count, imgstore::snapshot::MAX_FILES);
    // The newest is kept.
    let (_, last) = roots.last().expect("roots");
    assert!(same_as_full(last, &snaps).layers);
}

// ---- Random dockerd-like changes between opens -------------------------------------

/// One change to a data root, as dockerd makes them.
#[derive(Debug, Clone)]
enum Change {
    /// Pull, load, build or commit an image: `layers` new layers on top of image `base`'s
    /// (if any), and a parent link to it (builds and commits) or not (pulls).
    Create {
        base: Option<usize>,
        layers: u8,
        link: bool,
    },
    /// Remove an image (its layers go with it when nothing else holds them).
    Delete(usize),
    /// Set an image's parent link (rewritten by rename in its metadata directory).
    SetParent(usize, usize),
    /// Tag an image: `lastUpdated` is rewritten by rename in its metadata directory.
    Tag(usize),
    /// Create a container on an image: a mount holding its top layer.
    Mount(usize),
    /// Remove a container.
    Unmount,
    /// A deletion or a layer write killed midway: a `-removing` or staging directory.
    Crash(bool),
    /// Something damaged appears by rename: a config that does not verify.
    BadConfig,
    /// Nothing.
    Nothing,
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        4 => (proptest::option::of(0..8usize), 1..3u8, any::<bool>())
            .prop_map(|(base, layers, link)| Change::Create { base, layers, link }),
        2 => (0..8usize).prop_map(Change::Delete),
        3 => (0..8usize, 0..8usize).prop_map(|(a, b)| Change::SetParent(a, b)),
        2 => (0..8usize).prop_map(Change::Tag),
        1 => (0..8usize).prop_map(Change::Mount),
        1 => Just(Change::Unmount),
        1 => any::<bool>().prop_map(Change::Crash),
        1 => Just(Change::BadConfig),
        1 => Just(Change::Nothing),
    ]
}

/// A data root and what the test knows of its images (to pick them by number).
struct Root {
    root: PathBuf,
    images: Vec<(ImageId, Vec<DiffId>)>,
    counter: u64,
}

impl Root {
    fn image_dir(&self) -> PathBuf {
        self.root.join("image/vfs")
    }

    /// Opens the stores read-write, as dockerd does at start, and applies `change`.
    fn apply(&mut self, change: &Change) {
        let base = self.image_dir();
        let (layers, _) =
            LayerStore::open(base.join("layerdb"), Box::new(NullDriver)).expect("layers");
        let backend = FsBackend::open(base.join("imagedb")).expect("imagedb");
        let (store, _) = ImageStore::open(backend, layers).expect("images");
        let pick = |n: usize| (!self.images.is_empty()).then(|| n % self.images.len());
        self.counter += 1;
        let n = self.counter;
        match change {
            Change::Create { base, layers, link } => {
                let base = base.and_then(pick);
                let mut diffs = base.map(|b| self.images[b].1.clone()).unwrap_or_default();
                for k in 0..*layers {
                    diffs.push(DiffId(Digest::sha256(format!("layer {n}.{k}").as_bytes())));
                }
                let mut handles = Vec::new();
                let mut parent = None;
                for (k, d) in diffs.iter().enumerate() {
                    let h = store
                        .layers()
                        .register_metadata(*d, 10 + k as u64, parent.as_ref())
                        .expect("register");
                    parent = Some(*h.chain_id());
                    handles.push(h);
                }
                let ids: Vec<String> = diffs.iter().map(|d| format!("\"{d}\"")).collect();
                let config = format!(
                    r#"{{"architecture":"amd64","os":"linux","created":"2021-0{}-02T03:04:05.{n}Z","comment":"{n}","rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
                    1 + n % 9,
                    ids.join(",")
                );
                let id = store.create(config.as_bytes()).expect("create");
                for h in &handles {
                    store.layers().release(h).expect("release");
                }
                if let (Some(b), true) = (base, link) {
                    let _ = store.set_parent(&id, &self.images[b].0);
                }
                self.images.push((id, diffs));
            }
            Change::Delete(k) => {
                if let Some(k) = pick(*k) {
                    let (id, _) = self.images.remove(k);
                    store.delete(&id).expect("delete");
                }
            }
            Change::SetParent(a, b) => {
                if let (Some(a), Some(b)) = (pick(*a), pick(*b)) {
                    // Cycles are refused; that is fine.
                    let _ = store.set_parent(&self.images[a].0, &self.images[b].0);
                }
            }
            Change::Tag(k) => {
                if let Some(k) = pick(*k) {
                    store
                        .set_last_updated(&self.images[k].0)
                        .expect("last updated");
                }
            }
            Change::Mount(k) => {
                if let Some(k) = pick(*k)
                    && let Some(chain) = layer_store::chain_id(&self.images[k].1)
                {
                    let dir = base.join(format!("layerdb/mounts/m{n}"));
                    std::fs::create_dir_all(&dir).expect("mount dir");
                    for (file, value) in [
                        ("mount-id", format!("{n:064x}")),
                        ("init-id", format!("{n:060x}init")),
                        ("parent", chain.to_string()),
                    ] {
                        let tmp = dir.join(format!(".tmp-{file}"));
                        std::fs::write(&tmp, value).expect("write");
                        std::fs::rename(&tmp, dir.join(file)).expect("rename");
                    }
                }
            }
            Change::Unmount => {
                let mounts = base.join("layerdb/mounts");
                if let Some(e) = std::fs::read_dir(&mounts).ok().and_then(|mut d| d.next()) {
                    std::fs::remove_dir_all(e.expect("entry").path()).expect("unmount");
                }
            }
            Change::Crash(removing) => {
                let dir = if *removing {
                    base.join(format!("layerdb/sha256/{:064x}-{:064x}-removing", n, n + 1))
                } else {
                    base.join(format!("layerdb/tmp/write-set-{n}"))
                };
                std::fs::create_dir_all(&dir).expect("leftover");
            }
            Change::BadConfig => {
                let content = base.join("imagedb/content/sha256");
                let tmp = content.join(".tmp-bad");
                std::fs::write(&tmp, b"{\"rootfs\": 3}").expect("write");
                let name = Digest::sha256(format!("bad {n}").as_bytes()).hex();
                std::fs::rename(&tmp, content.join(name)).expect("rename");
            }
            Change::Nothing => {}
        }
    }
}

/// Random dockerd-like changes between opens, some long enough apart to settle and some
/// not: the open through the snapshot always gives what a full restore gives.
#[test]
fn random_changes_never_make_the_snapshot_differ() {
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    let steps = proptest::collection::vec((change(), any::<bool>()), 1..7);
    let result = runner.run(&steps, |steps| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut root = Root {
            root: tmp.path().join("root"),
            images: Vec::new(),
            counter: 0,
        };
        std::fs::create_dir_all(root.image_dir()).expect("root");
        root.apply(&Change::Create {
            base: None,
            layers: 2,
            link: false,
        });
        root.apply(&Change::Create {
            base: Some(0),
            layers: 1,
            link: true,
        });
        root.apply(&Change::Create {
            base: Some(0),
            layers: 1,
            link: false,
        });
        // Every image has a metadata directory, so that links set later change only the
        // image's own directory.
        for k in 0..3 {
            root.apply(&Change::Tag(k));
        }
        let snaps = snapshots(&tmp.path().join("cache"));
        settle();
        same_as_full(&root.root, &snaps);
        for (change, wait) in &steps {
            root.apply(change);
            if *wait {
                settle();
            }
            same_as_full(&root.root, &snaps);
            // And once more: the snapshot the last open wrote is used or refused soundly.
            same_as_full(&root.root, &snaps);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The snapshot was really used, for both stores.
    assert!(LAYERS_FROM_SNAPSHOT.load(Ordering::Relaxed) > 0);
    assert!(IMAGES_FROM_SNAPSHOT.load(Ordering::Relaxed) > 0);
    assert!(LINKS_READ_AGAIN.load(Ordering::Relaxed) > 0);
}

/// Links set on images since the snapshot, in a metadata directory that existed (a second
/// link) or not (a first one), are read again; the rest comes from the snapshot.
#[test]
fn changed_and_new_metadata_directories_are_read_again() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut root = Root {
        root: tmp.path().join("root"),
        images: Vec::new(),
        counter: 0,
    };
    std::fs::create_dir_all(root.image_dir()).expect("root");
    for base in [None, Some(0), Some(0)] {
        root.apply(&Change::Create {
            base,
            layers: 1,
            link: false,
        });
    }
    root.apply(&Change::SetParent(1, 0));
    let snaps = snapshots(&tmp.path().join("cache"));
    settle();
    assert!(same_as_full(&root.root, &snaps).written);
    // A first link: image 2 had no metadata directory.
    root.apply(&Change::SetParent(2, 1));
    settle();
    let used = same_as_full(&root.root, &snaps);
    assert_eq!(
        (used.layers, used.images, used.reread_links),
        (true, true, 1)
    );
    assert!(used.written, "{used:?}");
    // A second link, in the same directory.
    root.apply(&Change::SetParent(2, 0));
    settle();
    let used = same_as_full(&root.root, &snaps);
    assert_eq!(
        (used.layers, used.images, used.reread_links),
        (true, true, 1)
    );
    // Nothing changed since.
    let used = same_as_full(&root.root, &snaps);
    assert_eq!(
        (used.images, used.reread_links, used.written),
        (true, 0, false)
    );
}

// ---- The command -------------------------------------------------------------------

/// Runs the binary with its cache in `cache`.
fn run_cached(root: &Path, cache: &Path, args: &[&str]) -> std::process::Output {
    common::imgstore()
        .arg("--data-root")
        .arg(root)
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .env("IMGSTORE_NOW", "2030-01-01T00:00:00Z")
        .output()
        .expect("run imgstore")
}

/// Read commands write and use a snapshot in `$XDG_CACHE_HOME/imgstore` and print the same
/// as without; `--no-snapshot` and `fsck` neither use nor write one.
#[test]
fn the_command_uses_the_cache_unless_told_not_to() {
    let (tmp, root) = common::extract("dockerroot-02-after-build");
    let cache = tmp.path().join("xdg");
    // The command trusts changes two seconds old.
    std::thread::sleep(imgstore::snapshot::DEFAULT_SETTLE + Duration::from_millis(100));
    for args in [vec!["--no-snapshot", "ls", "-a"], vec!["fsck"]] {
        common::stdout_ok(&run_cached(&root, &cache, &args));
        assert!(!cache.join("imgstore").exists(), "{args:?}");
    }
    let full = common::stdout_ok(&run_cached(&root, &cache, &["--no-snapshot", "ls", "-a"]));
    let first = common::stdout_ok(&run_cached(&root, &cache, &["ls", "-a"]));
    assert_eq!(first, full);
    assert_eq!(
        std::fs::read_dir(cache.join("imgstore"))
            .expect("cache written")
            .count(),
        1
    );
    let second = run_cached(&root, &cache, &["--log-level", "debug", "ls", "-a"]);
    let log = String::from_utf8_lossy(&second.stderr);
    assert!(
        log.contains("layers_from_snapshot=true") && log.contains("images_from_snapshot=true"),
        "{log}"
    );
    assert_eq!(common::stdout_ok(&second), full);
    for args in [
        vec!["inspect", "base"],
        vec!["history", "base"],
        vec!["tree"],
    ] {
        let mut plain = vec!["--no-snapshot"];
        plain.extend(&args);
        assert_eq!(
            common::stdout_ok(&run_cached(&root, &cache, &args)),
            common::stdout_ok(&run_cached(&root, &cache, &plain)),
            "{args:?}"
        );
    }
}

// ---- dockerd ---------------------------------------------------------------------------

/// dockerd itself changes the data root between opens: loads, removes, loads again, tags,
/// creates and removes a container, commits, removes. After each change the open through the
/// snapshot gives what a full restore gives, and once that open has recorded the change,
/// the next one takes both stores from the snapshot.
#[test]
fn dockerd_changes_between_opens() {
    if let Some(why) = test_dockerd::skip_reason() {
        eprintln!("skipping dockerd_changes_between_opens: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let cache = tmp.path().join("cache");
    let snaps = snapshots(&cache);
    let archive = common::fixtures_dir().join("archives/child-and-base.docker-save.tar");
    let archive = archive.to_str().expect("path");
    let other = common::fixtures_dir().join("wave2/bbapp.docker-save.tar");
    let other = other.to_str().expect("path");
    let d = test_dockerd::Dockerd::start(&root).expect("start dockerd");
    // Each step, and whether the open after it can take the layers and the images from the
    // snapshot the open before it wrote: a tag changes only the image's metadata
    // directory (its parent link is read again); a container only `mounts/` (read at every
    // open).
    let steps: Vec<(Vec<&str>, (bool, bool))> = vec![
        (vec!["load", "-q", "-i", archive], (false, false)),
        (vec!["load", "-q", "-i", other], (false, false)),
        (vec!["rmi", "peer/child:1"], (false, false)),
        (vec!["load", "-q", "-i", archive], (false, false)),
        (vec!["tag", "base:latest", "again:1"], (true, true)),
        (vec!["create", "--name", "c1", "base:latest"], (true, true)),
        (vec!["commit", "c1", "committed:1"], (false, false)),
        (vec!["rm", "c1"], (true, true)),
        // The commit of an unchanged container added no layer: its image shares `base`'s.
        (vec!["rmi", "-f", "committed:1", "again:1"], (true, false)),
    ];
    settle();
    same_as_full(&root, &snaps);
    for (step, expected) in &steps {
        d.docker_ok(step).expect("docker");
        settle();
        let first = same_as_full(&root, &snaps);
        assert_eq!((first.layers, first.images), *expected, "after {step:?}");
        if step[0] == "tag" {
            assert_eq!(first.reread_links, 1, "{first:?}");
        }
        let again = same_as_full(&root, &snaps);
        assert!(
            again.layers && again.images && again.reread_links == 0,
            "after {step:?}: {again:?}"
        );
    }
    drop(d);
    // What dockerd left when it stopped.
    settle();
    same_as_full(&root, &snaps);
}
