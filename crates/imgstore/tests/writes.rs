//! `tag`, `rm`, the reference store's bytes, locking and `fsck` on damaged copies of the
//! dockerd 20.10 fixture roots.

use crate::common;
#[path = "hostile/mod.rs"]
mod hostile;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use common::{FIXTURES, extract, run, stdout_ok};
use digest_set::Digest;
use imgstore::reference::Reference;
use imgstore::refstore::RefStore;

const BASE: &str = "sha256:7db95e6e4fe3a141e68c2ff6cc0267d1fb63728cf6b9fa326a05ecb3b43ea6fe";
const CHILD: &str = "sha256:2c8eeb116eab69faa88d6672e0cb055ccb79d72546b28882234dd3acc54c4625";

fn repos(root: &Path) -> std::path::PathBuf {
    root.join("image/vfs/repositories.json")
}

fn r(s: &str) -> Reference {
    Reference::parse_normalized(s).expect("valid reference")
}

fn d(s: &str) -> Digest {
    s.parse().expect("valid digest")
}

#[test]
fn refstore_reads_and_writes_dockerd_bytes() {
    for name in FIXTURES {
        let (_g, root) = extract(name);
        let bytes = std::fs::read(repos(&root)).expect("read");
        let store = RefStore::load(&repos(&root)).expect("load");
        assert_eq!(store.to_bytes(), bytes, "{name}");
    }
    // Fixture 01 plus dockerd's two tags gives fixture 02's file, byte for byte.
    let (_g1, root1) = extract("dockerroot-01-after-load");
    let (_g2, root2) = extract("dockerroot-02-after-build");
    let mut store = RefStore::load(&repos(&root1)).expect("load");
    store
        .add_tag(&r("peer/base:v1"), &d(BASE), true)
        .expect("tag");
    store
        .add_tag(&r("peer/child:1"), &d(CHILD), true)
        .expect("tag");
    assert_eq!(
        std::fs::read(repos(&root1)).expect("read"),
        std::fs::read(repos(&root2)).expect("read")
    );
    let mode = std::fs::metadata(repos(&root1))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Then what push/pull and `rmi peer/child:1` + `rmi base` did gives fixture 04's file.
    let (_g4, root4) = extract("dockerroot-04-after-partial-rm");
    store
        .add_tag(&r("127.0.0.1:5000/test:1"), &d(BASE), true)
        .expect("tag");
    let canonical = r(
        "127.0.0.1:5000/test@sha256:55cedde171f6c6f7dd4a001c6cb59c52e635d0ddd301641a4f2f9733fe7bafe7",
    );
    store
        .add_digest(&canonical, &d(BASE), true)
        .expect("digest");
    assert!(store.delete(&r("peer/child:1")).expect("delete"));
    assert!(store.delete(&r("base")).expect("delete"));
    assert!(!store.delete(&r("base")).expect("delete again"));
    assert_eq!(
        std::fs::read(repos(&root1)).expect("read"),
        std::fs::read(repos(&root4)).expect("read")
    );
    // Lookups as dockerd's Get.
    assert_eq!(store.get(&r("peer/base")), None);
    assert_eq!(store.get(&r("peer/base:v1")), Some(d(BASE)));
    assert_eq!(store.get(&canonical), Some(d(BASE)));
    // Conflicts.
    assert!(store.add_tag(&canonical, &d(BASE), true).is_err());
    assert!(store.add_tag(&r("peer/base:v1"), &d(CHILD), false).is_err());
    assert!(store.add_digest(&canonical, &d(CHILD), true).is_err());
    assert!(store.add_tag(&r("sha256:x"), &d(CHILD), true).is_err());
    // No temp files left behind.
    let leftovers: Vec<_> = std::fs::read_dir(root1.join("image/vfs"))
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn tag_writes_references_and_last_updated() {
    let (_g, root) = extract("dockerroot-01-after-load");
    stdout_ok(&run(&root, &["tag", "7db9", "peer/base:v1"]));
    stdout_ok(&run(&root, &["tag", "base", "other"]));
    let text = std::fs::read_to_string(repos(&root)).expect("read");
    assert_eq!(
        text,
        format!(
            "{{\"Repositories\":{{\"base\":{{\"base:latest\":\"{BASE}\"}},\"other\":{{\"other:latest\":\"{BASE}\"}},\"peer/base\":{{\"peer/base:v1\":\"{BASE}\"}}}}}}"
        )
    );
    let lu = root.join(format!(
        "image/vfs/imagedb/metadata/sha256/{}/lastUpdated",
        &BASE[7..]
    ));
    let t = std::fs::read_to_string(&lu).expect("lastUpdated written");
    assert!(t.ends_with('Z') && t.contains('T'), "{t}");
    let meta = std::fs::metadata(&lu).expect("stat");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let inspect = stdout_ok(&run(&root, &["inspect", "other"]));
    assert!(inspect.contains(&format!("\"LastTagTime\": \"{t}\"")));
    // Tagging with a digest is refused, as dockerd does.
    let out = run(
        &root,
        &[
            "tag",
            "base",
            "x@sha256:55cedde171f6c6f7dd4a001c6cb59c52e635d0ddd301641a4f2f9733fe7bafe7",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "imgstore: refusing to create a tag with a digest reference\n"
    );
}

#[test]
fn rm_follows_dockerd_rules() {
    let (_g, root) = extract("dockerroot-02-after-build");
    // By ID with two tags and children: a hard conflict first.
    let out = run(&root, &["rm", "7db9"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "imgstore: conflict: unable to delete 7db95e6e4fe3 (cannot be forced) - image has dependent child images\n"
    );
    // Untagging the child deletes it and prunes its untagged parents and their layer.
    let out = stdout_ok(&run(&root, &["rmi", "peer/child:1"]));
    assert_eq!(
        out,
        "Untagged: peer/child:1\n\
         Deleted: sha256:2c8eeb116eab69faa88d6672e0cb055ccb79d72546b28882234dd3acc54c4625\n\
         Deleted: sha256:8198421c8dc571c5263ce2510713b2fe4162b31fc8ae4c0314509359ce5362af\n\
         Deleted: sha256:2beca2958a4803c8628494e775ab8da5b7e6f8905b6c6f72534118e07171911e\n\
         Deleted: sha256:4e989351ddaf626d76456629d4603ceb4eb77b8add196fbe637c109fc90bd4c8\n"
    );
    // The layer store now holds what dockerd's did (fixture 04).
    let (_g4, root4) = extract("dockerroot-04-after-partial-rm");
    let names = |r: &Path, sub: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(r.join(sub))
            .map(|it| {
                it.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    for sub in [
        "image/vfs/layerdb/sha256",
        "image/vfs/imagedb/content/sha256",
        "image/vfs/imagedb/metadata/sha256",
    ] {
        assert_eq!(names(&root, sub), names(&root4, sub), "{sub}");
    }
    // By ID with two tags in two repositories: must be forced.
    let out = run(&root, &["rm", "7db95e6e4fe3"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "imgstore: conflict: unable to delete 7db95e6e4fe3 (must be forced) - image is referenced in multiple repositories\n"
    );
    let out = stdout_ok(&run(&root, &["rm", "-f", "7db95e6e4fe3"]));
    assert_eq!(
        out,
        "Untagged: base:latest\n\
         Untagged: peer/base:v1\n\
         Deleted: sha256:7db95e6e4fe3a141e68c2ff6cc0267d1fb63728cf6b9fa326a05ecb3b43ea6fe\n\
         Deleted: sha256:06b5f6904ddc0031ed119e9a60dcc08061777fbf81d2d606e9fd2e1fd7665377\n\
         Deleted: sha256:686712228e91a77be8ad0d3d811b66ea7b6a5ad5d08b392d6247fcf659d9fb30\n\
         Deleted: sha256:516408ace5e52b139d13e99da654811994859543e92849eb04ab72af8d752856\n"
    );
    assert_eq!(
        std::fs::read_to_string(repos(&root)).expect("read"),
        "{\"Repositories\":{}}"
    );
    assert!(names(&root, "image/vfs/layerdb/sha256").is_empty());
    assert_eq!(run(&root, &["fsck"]).status.code(), Some(0));
}

#[test]
fn rm_no_prune_keeps_parents_and_vfs_dirs_go() {
    let (_g, root) = extract("dockerroot-02-after-build");
    // Give the layers driver directories, as a live root has.
    let layerdb = root.join("image/vfs/layerdb/sha256");
    let mut cache_ids = BTreeMap::new();
    for e in std::fs::read_dir(&layerdb)
        .expect("list")
        .filter_map(Result::ok)
    {
        let id = std::fs::read_to_string(e.path().join("cache-id")).expect("cache-id");
        let dir = root.join("vfs/dir").join(&id);
        std::fs::create_dir_all(dir.join("etc")).expect("mkdir");
        std::fs::write(dir.join("etc/file"), "x").expect("write");
        cache_ids.insert(e.file_name().to_string_lossy().into_owned(), id);
    }
    let out = stdout_ok(&run(&root, &["rm", "--no-prune", "peer/child:1"]));
    assert_eq!(
        out,
        "Untagged: peer/child:1\nDeleted: sha256:2c8eeb116eab69faa88d6672e0cb055ccb79d72546b28882234dd3acc54c4625\n"
    );
    // 8198 is now a dangling head and shows without -a.
    let ls = stdout_ok(&run(&root, &["ls", "-q"]));
    assert_eq!(ls, "8198421c8dc5\n7db95e6e4fe3\n7db95e6e4fe3\n");
    let out = stdout_ok(&run(&root, &["rm", "8198"]));
    assert!(out.ends_with(
        "Deleted: sha256:4e989351ddaf626d76456629d4603ceb4eb77b8add196fbe637c109fc90bd4c8\n"
    ));
    let top = &cache_ids["4e989351ddaf626d76456629d4603ceb4eb77b8add196fbe637c109fc90bd4c8"];
    assert!(!root.join("vfs/dir").join(top).exists());
    let base = &cache_ids["06b5f6904ddc0031ed119e9a60dcc08061777fbf81d2d606e9fd2e1fd7665377"];
    assert!(root.join("vfs/dir").join(base).exists());
}

#[test]
fn locks_give_clear_errors() {
    let (_g, root) = extract("dockerroot-02-after-build");
    let dir = std::fs::File::open(root.join("image/vfs")).expect("open dir");
    dir.try_lock_shared().expect("shared lock");
    // Reads share; with --lock-timeout 0 writes are refused at once, naming the holder.
    stdout_ok(&run(&root, &["ls"]));
    let out = run(&root, &["--lock-timeout", "0", "tag", "base", "x"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is locked by another process"), "{err}");
    assert!(
        err.contains(&format!("(pid {})", std::process::id())),
        "{err}"
    );
    assert!(err.contains("gave up after 0s (--lock-timeout)"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    dir.unlock().expect("unlock");
    dir.try_lock().expect("exclusive lock");
    let out = run(&root, &["ls", "--lock-timeout", "0.2"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is locked"), "{err}");
    assert!(err.contains("a shared lock is needed to read"), "{err}");
    assert!(err.contains("gave up after 0.2s"), "{err}");
    dir.unlock().expect("unlock");
    stdout_ok(&run(&root, &["tag", "base", "x"]));
    // A timeout that is not a number of seconds.
    let out = run(&root, &["--lock-timeout=-1", "ls"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("number of seconds"));
}

/// Holds `kind` of lock on the image store for `hold`, while `args` run; returns their
/// output and how long they took.
fn run_while_locked(
    root: &Path,
    exclusive: bool,
    hold: std::time::Duration,
    args: &[&str],
) -> (std::process::Output, std::time::Duration) {
    let dir = std::fs::File::open(root.join("image/vfs")).expect("open dir");
    if exclusive {
        dir.try_lock().expect("exclusive lock");
    } else {
        dir.try_lock_shared().expect("shared lock");
    }
    let started = std::time::Instant::now();
    let child = common::imgstore()
        .arg("--data-root")
        .arg(root)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn imgstore");
    std::thread::sleep(hold);
    dir.unlock().expect("unlock");
    let out = child.wait_with_output().expect("wait");
    (out, started.elapsed())
}

#[test]
fn writers_and_readers_wait_their_turn() {
    let (_g, root) = extract("dockerroot-02-after-build");
    let second = std::time::Duration::from_secs(1);
    // A write waits for a reader, then succeeds.
    let (out, took) = run_while_locked(&root, false, second, &["tag", "base", "waited:1"]);
    stdout_ok(&out);
    assert!(took >= second, "{took:?}");
    // A write waits for a writer.
    let (out, took) = run_while_locked(&root, true, second, &["rm", "waited:1"]);
    assert_eq!(stdout_ok(&out), "Untagged: waited:1\n");
    assert!(took >= second, "{took:?}");
    // A read waits for a writer.
    let (out, took) = run_while_locked(&root, true, second, &["ls", "-q"]);
    assert_eq!(stdout_ok(&out).lines().count(), 3);
    assert!(took >= second, "{took:?}");
    // A timeout shorter than the hold gives up.
    let (out, _) = run_while_locked(
        &root,
        true,
        second,
        &["--lock-timeout", "0.3", "tag", "base", "late"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "locked by another process (pid {})",
            std::process::id()
        )),
        "{err}"
    );
    let tags = stdout_ok(&run(&root, &["ls", "--format", "{{.Tag}}"]));
    assert!(!tags.lines().any(|t| t == "late"), "{tags}");
}

/// A process that looks like a dockerd to /proc: `argv[0]` is `dockerd` and its arguments
/// follow dockerd's (a shell waiting on its standard input; killed by PID when dropped).
struct FakeDockerd(std::process::Child);

impl FakeDockerd {
    fn start(args: &[&std::ffi::OsStr]) -> FakeDockerd {
        FakeDockerd::start_in(Path::new("/"), args)
    }

    /// Started in the working directory `cwd`.
    fn start_in(cwd: &Path, args: &[&std::ffi::OsStr]) -> FakeDockerd {
        use std::os::unix::process::CommandExt as _;
        let child = std::process::Command::new("/bin/sh")
            .current_dir(cwd)
            .arg0("dockerd")
            .args(["-c", "read x", "dockerd"])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("start fake dockerd");
        // Until the shell has exec'd, /proc shows the test binary's command line.
        let cmdline = format!("/proc/{}/cmdline", child.id());
        for _ in 0..500 {
            if std::fs::read(&cmdline).is_ok_and(|c| c.starts_with(b"dockerd\0")) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        FakeDockerd(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for FakeDockerd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn writes_refuse_while_dockerd_uses_the_root() {
    use std::ffi::OsStr;
    let (_g, root) = extract("dockerroot-02-after-build");
    let (_g2, other) = extract("dockerroot-01-after-load");
    let refused = |out: &std::process::Output, pid: u32| {
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("in use by dockerd (pid {pid}")),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    };
    {
        // `--data-root X`, named through another path to the same directory.
        let d = FakeDockerd::start(&[
            OsStr::new("--debug"),
            OsStr::new("--data-root"),
            root.as_os_str(),
        ]);
        let via = root.join("image/..");
        refused(&run(&via, &["tag", "base", "x"]), d.pid());
        refused(&run(&root, &["rm", "peer/child:1"]), d.pid());
        let link = root.with_file_name("link-to-root");
        std::os::unix::fs::symlink(&root, &link).expect("symlink");
        refused(&run(&link, &["tag", "base", "x"]), d.pid());
        // Reads are allowed.
        assert_eq!(stdout_ok(&run(&root, &["ls", "-q"])).lines().count(), 3);
        stdout_ok(&run(&root, &["fsck"]));
        // A dockerd on another root does not block.
        stdout_ok(&run(&other, &["tag", "base", "x"]));
    }
    stdout_ok(&run(&root, &["tag", "base", "x"]));
    {
        // `-g=X` (deprecated).
        let arg = format!("-g={}", root.display());
        let d = FakeDockerd::start(&[OsStr::new(&arg)]);
        refused(&run(&root, &["tag", "base", "y"]), d.pid());
    }
    {
        // `--data-root=X` relative to dockerd's working directory.
        let parent = root.parent().expect("parent");
        let name = root.file_name().expect("name").to_string_lossy();
        let d = FakeDockerd::start_in(parent, &[OsStr::new(&format!("--data-root=./{name}"))]);
        refused(&run(&root, &["tag", "base", "y"]), d.pid());
    }
    {
        // The data root from --config-file.
        let cfg = root.parent().expect("parent").join("daemon.json");
        std::fs::write(
            &cfg,
            serde_json::json!({ "debug": true, "data-root": root }).to_string(),
        )
        .expect("write daemon.json");
        let arg = format!("--config-file={}", cfg.display());
        let d = FakeDockerd::start(&[OsStr::new(&arg)]);
        refused(&run(&root, &["rm", "x"]), d.pid());
        let d2 = FakeDockerd::start(&[
            OsStr::new("--config-file"),
            cfg.as_os_str(),
            OsStr::new("--data-root"),
            other.as_os_str(),
        ]);
        // The flag wins over the file.
        refused(&run(&other, &["tag", "base", "z"]), d2.pid());
    }
    stdout_ok(&run(&root, &["rm", "x"]));
}

#[test]
fn data_root_that_is_a_file_is_not_a_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("plain");
    std::fs::write(&file, "not a root").expect("write");
    for args in [vec!["ls"], vec!["tag", "base", "x"], vec!["rm", "base"]] {
        let out = run(&file, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is not a directory") && !err.contains("does not exist"),
            "{args:?}: {err}"
        );
    }
}

/// Every path with its size and content hash, to prove a command changed nothing.
fn snapshot(root: &Path) -> Vec<(String, u64, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).expect("stat");
        let rel = p.strip_prefix(root).expect("prefix").display().to_string();
        if meta.is_dir() {
            out.push((rel, 0, format!("dir {:o}", meta.permissions().mode())));
            for e in std::fs::read_dir(&p).expect("list").filter_map(Result::ok) {
                stack.push(e.path());
            }
        } else {
            let data = std::fs::read(&p).unwrap_or_default();
            out.push((rel, meta.len(), Digest::sha256(&data).to_string()));
        }
    }
    out.sort();
    out
}

#[test]
fn fsck_explains_damage_and_changes_nothing() {
    let (_g, root) = extract("dockerroot-02-after-build");
    let v = root.join("image/vfs");
    let content = v.join("imagedb/content/sha256");
    // A config that no longer verifies (8198, the middle image).
    let mid = "8198421c8dc571c5263ce2510713b2fe4162b31fc8ae4c0314509359ce5362af";
    let mut bytes = std::fs::read(content.join(mid)).expect("read");
    bytes.push(b' ');
    std::fs::write(content.join(mid), bytes).expect("write");
    // A config that does not parse.
    let junk = Digest::sha256(b"not json");
    std::fs::write(content.join(junk.hex()), b"not json").expect("write");
    // A layer whose size is gone: the base image's top layer, so base is not restored either.
    std::fs::remove_file(v.join(
        "layerdb/sha256/06b5f6904ddc0031ed119e9a60dcc08061777fbf81d2d606e9fd2e1fd7665377/size",
    ))
    .expect("rm size");
    // Leftovers.
    std::fs::write(content.join(".tmp-abc123"), b"{}").expect("write");
    std::fs::create_dir_all(v.join("layerdb/tmp/write-set-123")).expect("mkdir");
    std::fs::create_dir_all(v.join(
        "layerdb/sha256/516408ace5e52b139d13e99da654811994859543e92849eb04ab72af8d752856-0123-removing",
    ))
    .expect("mkdir");
    let before = snapshot(&root);
    let out = run(&root, &["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let after = snapshot(&root);
    assert_eq!(before, after, "fsck changed the data root");
    let has = |kind: &str, id: &str| text.lines().any(|l| l.starts_with(kind) && l.contains(id));
    assert!(has("config-verify", "8198421c8dc5"), "{text}");
    assert!(has("config-invalid", &junk.short()), "{text}");
    assert!(has("layer-bad", "06b5f6904ddc"), "{text}");
    assert!(text.contains("size is missing"), "{text}");
    assert!(has("layer-bad", "4e989351ddaf"), "{text}");
    assert!(has("image-layer-missing", "7db95e6e4fe3"), "{text}");
    assert!(has("image-layer-missing", "2beca2958a48"), "{text}");
    assert!(has("image-layer-missing", "2c8eeb116eab"), "{text}");
    assert!(has("reference-missing", "7db95e6e4fe3"), "{text}");
    assert!(has("layer-orphan", "686712228e91"), "{text}");
    assert!(text.contains(".tmp-abc123"), "{text}");
    assert!(text.contains("write-set-123"), "{text}");
    assert!(text.contains("-removing"), "{text}");
    // Every line names a file.
    for l in text.lines() {
        assert!(l.contains(&*root.to_string_lossy()), "{l}");
    }
    // JSON: one object per line.
    let out = run(&root, &["fsck", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("json line");
        assert!(v["kind"].is_string() && v["path"].is_string());
    }
    // dockerd would list nothing here: every image lost its layer or its config.
    assert_eq!(stdout_ok(&run(&root, &["ls", "-a", "-q"])), "");
    assert_eq!(snapshot(&root), after);
}

#[test]
fn fsck_reports_dangling_parent_links() {
    let (_g, root) = extract("dockerroot-02-after-build");
    let content = root.join("image/vfs/imagedb/content/sha256");
    let first = "2beca2958a4803c8628494e775ab8da5b7e6f8905b6c6f72534118e07171911e";
    std::fs::remove_file(content.join(first)).expect("rm");
    let out = run(&root, &["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("parent-dangling 8198421c8dc5")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("metadata-orphan 2beca2958a48")),
        "{text}"
    );
}

#[test]
fn missing_empty_dirs_are_fine() {
    let (_g, root) = extract("dockerroot-01-after-load");
    let v = root.join("image/vfs");
    for d in [
        "layerdb/tmp",
        "layerdb/mounts",
        "imagedb/metadata/sha256",
        "distribution",
    ] {
        let _ = std::fs::remove_dir(v.join(d));
    }
    stdout_ok(&run(&root, &["ls", "-a"]));
    assert_eq!(run(&root, &["fsck"]).status.code(), Some(0));
    stdout_ok(&run(&root, &["tag", "base", "again"]));
    assert!(v.join("imagedb/metadata/sha256").is_dir());
}

#[test]
fn ambiguous_prefix_names_candidates() {
    // A root of layerless images; 17 IDs must share a first hex digit.
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let content = root.join("image/vfs/imagedb/content/sha256");
    std::fs::create_dir_all(&content).expect("mkdir");
    let mut ids = Vec::new();
    for i in 0..17 {
        let cfg = format!(
            "{{\"created\":\"2026-11-30T02:00:{i:02}Z\",\"comment\":\"{i}\",\"rootfs\":{{\"type\":\"layers\"}}}}"
        );
        let id = Digest::sha256(cfg.as_bytes());
        std::fs::write(content.join(id.hex()), cfg).expect("write");
        ids.push(id);
    }
    ids.sort();
    let (a, b) = ids
        .windows(2)
        .map(|w| (w[0], w[1]))
        .find(|(a, b)| a.hex()[..1] == b.hex()[..1])
        .expect("two IDs share a first digit");
    let prefix = &a.hex()[..1];
    let out = run(root, &["inspect", prefix]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is ambiguous"), "{err}");
    assert!(
        err.contains(&a.short()) && err.contains(&b.short()),
        "{err}"
    );
    // A unique prefix works, and a full ID without `sha256:` too.
    let unique = ids
        .iter()
        .find(|d| ids.iter().filter(|o| o.hex()[..2] == d.hex()[..2]).count() == 1)
        .map(|d| d.hex()[..2].to_owned());
    if let Some(u) = unique {
        stdout_ok(&run(root, &["inspect", &u]));
    }
    stdout_ok(&run(root, &["inspect", &a.hex()]));
    // Layerless images list with size 0 and no parent links.
    let ls = stdout_ok(&run(root, &["ls", "-a", "-q"]));
    assert_eq!(ls.lines().count(), 17);
    let one = stdout_ok(&run(root, &["ls", "--format", "json", "-a"]));
    assert!(one.contains("\"Size\":\"0B\""));
    assert_eq!(run(root, &["fsck"]).status.code(), Some(0));
    // rm by ID of an untagged image deletes it and nothing else.
    let out = stdout_ok(&run(root, &["rm", &a.to_string()]));
    assert_eq!(out, format!("Deleted: {a}\n"));
}

#[test]
fn parent_cycles_are_reported_and_drawn() {
    let (_g, root) = extract("dockerroot-02-after-build");
    let meta = root.join("image/vfs/imagedb/metadata/sha256");
    // base's parent becomes the child: base -> 2c8e -> 8198 -> 2beca -> base.
    let base = &BASE[7..];
    std::fs::create_dir_all(meta.join(base)).expect("mkdir");
    std::fs::write(meta.join(base).join("parent"), CHILD).expect("write");
    let out = run(&root, &["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("parent-cycle"))
            .count(),
        1,
        "{text}"
    );
    let tree = stdout_ok(&run(&root, &["tree"]));
    assert_eq!(tree.lines().count(), 5, "{tree}");
    assert!(tree.contains("(parent cycle)"), "{tree}");
    // Everything still lists and the history stops.
    assert_eq!(
        stdout_ok(&run(&root, &["ls", "-a", "-q"])).lines().count(),
        5
    );
    stdout_ok(&run(&root, &["history", "peer/child:1"]));
}

#[test]
fn rm_removes_images_on_a_parent_cycle() {
    let (_g, root) = extract("dockerroot-02-after-build");
    let meta = root.join("image/vfs/imagedb/metadata/sha256");
    // base -> 2c8e -> 8198 -> 2beca -> base, as in parent_cycles_are_reported_and_drawn.
    let base = &BASE[7..];
    std::fs::create_dir_all(meta.join(base)).expect("mkdir");
    std::fs::write(meta.join(base).join("parent"), CHILD).expect("write");
    // Each image of the loop has a child, but none depends on another: removing the tagged
    // child opens the loop, and pruning takes its untagged parents up to base (still tagged).
    let out = stdout_ok(&run(&root, &["rm", "peer/child:1"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Untagged: peer/child:1");
    assert_eq!(lines[1], format!("Deleted: {CHILD}"));
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("Deleted: ")).count(),
        4,
        "{out}"
    );
    assert!(!meta.join(base).join("parent").exists());
    // base's two tags.
    assert_eq!(
        stdout_ok(&run(&root, &["ls", "-a", "-q"])),
        "7db95e6e4fe3\n7db95e6e4fe3\n"
    );
    assert_eq!(run(&root, &["fsck"]).status.code(), Some(0));
    // Starting from the other side of the loop, everything goes.
    let (_g, root) = extract("dockerroot-02-after-build");
    let meta = root.join("image/vfs/imagedb/metadata/sha256");
    std::fs::create_dir_all(meta.join(base)).expect("mkdir");
    std::fs::write(meta.join(base).join("parent"), CHILD).expect("write");
    stdout_ok(&run(&root, &["rm", "base", "peer/base:v1", "peer/child:1"]));
    assert_eq!(stdout_ok(&run(&root, &["ls", "-a", "-q"])), "");
    assert_eq!(run(&root, &["fsck"]).status.code(), Some(0));
}

#[test]
fn several_drivers_need_a_choice() {
    let (_g, root) = extract("dockerroot-01-after-load");
    std::fs::create_dir_all(root.join("image/overlay2")).expect("mkdir");
    // dockerd 20.10 with image stores for vfs and overlay2 and no driver state picks
    // overlay2 (vfs never counts as prior state), and so do we.
    let out = stdout_ok(&run(&root, &["ls", "-q"]));
    assert_eq!(out, "");
    // With state in two drivers' directories, dockerd refuses to choose: so do we.
    std::fs::create_dir_all(root.join("image/btrfs")).expect("mkdir");
    std::fs::create_dir_all(root.join("overlay2/l")).expect("mkdir");
    std::fs::create_dir_all(root.join("btrfs/subvolumes")).expect("mkdir");
    let out = run(&root, &["ls"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("btrfs, overlay2, vfs") && err.contains("--storage-driver"),
        "{err}"
    );
    // With state in overlay2's only, overlay2.
    std::fs::remove_dir_all(root.join("btrfs")).expect("rm");
    let out = stdout_ok(&run(&root, &["ls", "-q"]));
    assert_eq!(out, "");
    let out = stdout_ok(&run(&root, &["--storage-driver", "vfs", "ls", "-q"]));
    assert_eq!(out, "7db95e6e4fe3\n");
    let out = stdout_ok(&run(&root, &["ls", "-q", "--storage-driver", "overlay2"]));
    assert_eq!(out, "");
}

#[test]
fn default_data_root_from_environment() {
    let (_g, root) = extract("dockerroot-01-after-load");
    let out = common::imgstore()
        .args(["ls", "-q"])
        .env("IMGSTORE_DATA_ROOT", &root)
        .output()
        .expect("run");
    assert_eq!(stdout_ok(&out), "7db95e6e4fe3\n");
    // The default root comes from dockerd's daemon.json (`--config-file`); one that does
    // not exist yet is empty, and reading creates nothing.
    let home = tempfile::tempdir().expect("temp dir");
    let config = home.path().join("daemon.json");
    let default_root = home.path().join("docker");
    std::fs::write(
        &config,
        format!(
            "{{\"data-root\": {:?}, \"storage-driver\": \"vfs\"}}",
            default_root.display().to_string()
        ),
    )
    .expect("daemon.json");
    let cmd = |args: &[&str]| {
        common::imgstore()
            .arg("--config-file")
            .arg(&config)
            .args(args)
            .env_remove("IMGSTORE_DATA_ROOT")
            .output()
            .expect("run")
    };
    assert_eq!(stdout_ok(&cmd(&["ls", "-q"])), "");
    assert!(!default_root.exists());
    // A write that fails (there is no image to tag or remove) creates nothing either.
    for args in [["tag", "base", "x"], ["rm", "base", "7db9"]] {
        let out = cmd(&args);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("No such image: base:latest"), "{err}");
        assert!(!default_root.exists(), "{args:?}");
    }
    // daemon.json's data root and driver are used.
    let (_g2, fixture) = extract("dockerroot-01-after-load");
    std::fs::write(
        &config,
        format!("{{\"data-root\": {:?}}}", fixture.display().to_string()),
    )
    .expect("daemon.json");
    assert_eq!(stdout_ok(&cmd(&["ls", "-q"])), "7db95e6e4fe3\n");
    // A daemon.json that is not JSON is a one-line error naming it.
    std::fs::write(&config, "{").expect("daemon.json");
    let out = cmd(&["ls"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("daemon.json") && err.lines().count() == 1,
        "{err}"
    );
    // The same on an explicit root without an image store.
    let empty = tempfile::tempdir().expect("temp dir");
    let out = run(empty.path(), &["tag", "base", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read_dir(empty.path()).expect("read").count(), 0);
}

fn add_container(root: &Path, id: &str, image: &str, running: bool) {
    let dir = root.join("containers").join(id);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("config.v2.json"),
        format!("{{\"ID\":\"{id}\",\"Image\":\"{image}\",\"State\":{{\"Running\":{running}}}}}"),
    )
    .expect("write");
}

#[test]
fn containers_block_removal_as_in_dockerd() {
    let cid = "abcdef1234567890abcdef1234567890abcdef1234567890abcdef1234567890";
    // A stopped container: untagging its only reference needs -f.
    let (_g, root) = extract("dockerroot-01-after-load");
    add_container(&root, cid, BASE, false);
    let out = run(&root, &["rm", "base"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "imgstore: conflict: unable to remove repository reference \"base\" (must force) - container abcdef123456 is using its referenced image 7db95e6e4fe3\n"
    );
    let out = run(&root, &["rm", "7db9"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "imgstore: conflict: unable to delete 7db95e6e4fe3 (must be forced) - image is being used by stopped container abcdef123456\n"
    );
    let out = stdout_ok(&run(&root, &["rm", "-f", "base"]));
    assert!(
        out.starts_with("Untagged: base:latest\nDeleted: sha256:7db95e6e4fe3"),
        "{out}"
    );
    // A running container: the image stays, even with -f.
    let (_g2, root) = extract("dockerroot-01-after-load");
    add_container(&root, cid, BASE, true);
    let out = run(&root, &["rm", "-f", "7db9"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "imgstore: conflict: unable to delete 7db95e6e4fe3 (cannot be forced) - image is being used by running container abcdef123456\n"
    );
    // Untagging by reference with -f works; the image is then kept quietly.
    let out = stdout_ok(&run(&root, &["rm", "-f", "base"]));
    assert_eq!(out, "Untagged: base:latest\n");
    assert_eq!(
        stdout_ok(&run(&root, &["ls", "-a", "-q"])),
        "7db95e6e4fe3\n"
    );
}

#[test]
fn extreme_and_missing_times() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let content = root.join("image/vfs/imagedb/content/sha256");
    std::fs::create_dir_all(&content).expect("mkdir");
    for cfg in [
        r#"{"created":"9999-12-31T23:59:59.999999999+14:00","rootfs":{"type":"layers"},"history":[{"created":"9999-01-01T00:00:00Z"}]}"#,
        r#"{"rootfs":{"type":"layers"},"history":[{"created_by":"x","empty_layer":true}]}"#,
        r#"{"created":"0001-01-01T00:00:00Z","rootfs":{"type":"layers"}}"#,
    ] {
        let id = Digest::sha256(cfg.as_bytes());
        std::fs::write(content.join(id.hex()), cfg).expect("write");
    }
    for args in [
        vec!["ls", "-a"],
        vec!["ls", "-a", "--format", "json"],
        vec!["ls", "-a", "--filter", "since=0", "--filter", "before=0"],
        vec!["tree"],
        vec!["fsck"],
    ] {
        let out = run(root, &args);
        assert!(matches!(out.status.code(), Some(0) | Some(1)), "{args:?}");
    }
    let ids = stdout_ok(&run(root, &["ls", "-a", "-q", "--no-trunc"]));
    for id in ids.lines() {
        stdout_ok(&run(root, &["inspect", id]));
        stdout_ok(&run(root, &["history", id]));
    }
    let json = stdout_ok(&run(root, &["ls", "-a", "--format", "json"]));
    assert!(
        json.contains("\"CreatedAt\":\"0001-01-01 00:00:00 +0000 UTC\""),
        "{json}"
    );
}

#[test]
fn rm_removes_overlay2_content_and_refuses_other_drivers() {
    // The same root under the overlay2 driver, with overlay2's layer directories and links.
    let (_g, root) = extract("dockerroot-01-after-load");
    std::fs::rename(root.join("image/vfs"), root.join("image/overlay2")).expect("rename");
    let layerdb = root.join("image/overlay2/layerdb/sha256");
    let mut dirs = Vec::new();
    for (i, e) in std::fs::read_dir(&layerdb)
        .expect("list")
        .filter_map(Result::ok)
        .enumerate()
    {
        let id = std::fs::read_to_string(e.path().join("cache-id")).expect("cache-id");
        let dir = root.join("overlay2").join(id.trim());
        let link = format!("LINK{i}");
        std::fs::create_dir_all(dir.join("diff")).expect("mkdir");
        std::fs::write(dir.join("link"), &link).expect("write");
        std::fs::create_dir_all(root.join("overlay2/l")).expect("mkdir");
        std::os::unix::fs::symlink(dir.join("diff"), root.join("overlay2/l").join(&link))
            .expect("symlink");
        dirs.push((dir, root.join("overlay2/l").join(link)));
    }
    assert!(!dirs.is_empty());
    let out = stdout_ok(&run(&root, &["rm", "base"]));
    assert!(out.contains(&format!("Deleted: {BASE}")), "{out}");
    for (dir, link) in &dirs {
        assert!(!dir.exists(), "{} still there", dir.display());
        assert!(
            link.symlink_metadata().is_err(),
            "{} still there",
            link.display()
        );
    }
    assert_eq!(stdout_ok(&run(&root, &["ls", "-a", "-q"])), "");

    // A driver whose content imgstore cannot remove: refused before anything changes.
    let (_g2, root) = extract("dockerroot-01-after-load");
    std::fs::rename(root.join("image/vfs"), root.join("image/btrfs")).expect("rename");
    let before = snapshot(&root);
    let out = run(&root, &["rm", "base"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not supported"), "{err}");
    assert_eq!(snapshot(&root), before);
    // Tagging works all the same.
    stdout_ok(&run(&root, &["tag", "base", "again"]));
}

#[test]
fn fsck_json_shows_paths_that_are_not_utf8() {
    use std::os::unix::ffi::OsStrExt as _;
    let (_g, root) = extract("dockerroot-02-after-build");
    let name = std::ffi::OsStr::from_bytes(b"ab\xfe");
    std::fs::create_dir(root.join("image/vfs/layerdb/sha256").join(name)).expect("mkdir");
    let text = run(&root, &["fsck"]);
    assert_eq!(text.status.code(), Some(1));
    let text = String::from_utf8(text.stdout).expect("utf-8");
    let out = run(&root, &["fsck", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(json.lines().count(), text.lines().count(), "{json}");
    for line in json.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON object per line");
        let path = v["path"].as_str().expect("path");
        // As the text output shows it.
        assert!(path.ends_with("layerdb/sha256/ab\u{fffd}"), "{line}");
        assert!(text.contains(path), "{text}");
    }
}
