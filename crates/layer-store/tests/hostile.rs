//! Hostile and damaged layerdbs: nothing outside the layerdb (or the driver's directory) is
//! ever deleted, changed or quoted; nothing hangs or takes unbounded memory; leftovers are
//! removed only when they are provably ours.

use crate::common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{diff, fresh, reopen};
use layer_store::{LayerStore, NullDriver, OpenError, SkipReason, VfsDriver};

use test_dockerd::canary::{Canary, SECRET};

/// A store with two layers; returns its layerdb path and the first layer's cache ID.
fn store_with_layers() -> (tempfile::TempDir, PathBuf, String) {
    let (tmp, store) = fresh();
    let h1 = store.register_metadata(diff(1), 1, None).expect("1");
    store
        .register_metadata(diff(2), 2, Some(h1.chain_id()))
        .expect("2");
    let cache = store.layer(h1.chain_id()).expect("layer").cache_id;
    let root = store.root().to_owned();
    (tmp, root, cache)
}

fn removing_name(n: u8) -> String {
    format!(
        "{}-{}-removing",
        "cd".repeat(32),
        format!("{n:02x}").repeat(32)
    )
}

#[test]
fn symlinked_layerdb_dirs_are_refused_not_followed() {
    let canary = Canary::new().expect("canary");
    let before = canary.snapshot().expect("snapshot");
    for sub in ["sha256", "tmp", "mounts"] {
        let (_tmp, root, _) = store_with_layers();
        let moved = root.join(format!("{sub}.moved"));
        fs::rename(root.join(sub), &moved).ok();
        symlink(canary.path(), root.join(sub)).expect("symlink");
        let err = LayerStore::open(&root, Box::new(NullDriver)).expect_err(sub);
        assert!(matches!(err, OpenError::Fs(_)), "{sub}: {err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let err = LayerStore::open_read_only(&root, Box::new(NullDriver)).expect_err(sub);
        assert!(!err.to_string().contains(SECRET));
        assert_eq!(canary.snapshot().expect("snapshot"), before, "{sub}");
    }
    // The layerdb itself.
    let (tmp, root, _) = store_with_layers();
    let link = tmp.path().join("layerdb-link");
    symlink(&root, &link).expect("symlink");
    assert!(LayerStore::open(&link, Box::new(NullDriver)).is_err());
}

#[test]
fn leftovers_are_removed_only_when_provably_ours() {
    let canary = Canary::new().expect("canary");
    let before = canary.snapshot().expect("snapshot");
    let (tmp, root, live_cache) = store_with_layers();
    let vfs_home = tmp.path().join("vfs");
    let driver = VfsDriver::new(&vfs_home).expect("vfs");
    fs::create_dir_all(vfs_home.join("dir").join(&live_cache)).expect("live content");
    fs::write(vfs_home.join("dir").join(&live_cache).join("bin"), "x").expect("write");
    let orphan = "ef".repeat(32);
    fs::create_dir(vfs_home.join("dir").join(&orphan)).expect("orphan content");
    let sha = root.join("sha256");
    let mk = |name: &str, cache_id: Option<&str>| {
        fs::create_dir(sha.join(name)).expect("mkdir");
        if let Some(c) = cache_id {
            fs::write(sha.join(name).join("cache-id"), c).expect("write");
        }
    };
    // A stale leftover naming a live layer's content: kept, content kept.
    mk(&removing_name(1), Some(&live_cache));
    // Names we never write.
    mk("backup-removing", Some(&orphan));
    mk("0000-x-removing", Some("Documents"));
    // A bad cache ID.
    mk(&removing_name(2), Some("../../../etc"));
    // Ours: removed with its content.
    mk(&removing_name(3), Some(&orphan));
    // A symlinked leftover is not even a leftover: never followed.
    symlink(
        canary.path().join("backup-removing"),
        sha.join(removing_name(4)),
    )
    .expect("ln");

    let (store, outcome) = LayerStore::open(&root, Box::new(driver)).expect("open");
    assert_eq!(store.len(), 2);
    let by_name = |n: &str| {
        outcome
            .leftovers
            .iter()
            .find(|l| l.path.file_name().and_then(|f| f.to_str()) == Some(n))
            .unwrap_or_else(|| panic!("{n} not reported: {:?}", outcome.leftovers))
    };
    let live = by_name(&removing_name(1));
    assert!(!live.cleaned);
    assert!(
        live.error.as_deref().unwrap_or("").contains("loaded layer"),
        "{live:?}"
    );
    assert!(vfs_home.join("dir").join(&live_cache).join("bin").exists());
    for n in ["backup-removing", "0000-x-removing"] {
        let l = by_name(n);
        assert!(!l.cleaned && l.error.is_some(), "{l:?}");
        assert!(sha.join(n).exists());
    }
    assert!(!by_name(&removing_name(2)).cleaned);
    assert!(by_name(&removing_name(3)).cleaned);
    assert!(!sha.join(removing_name(3)).exists());
    assert!(!vfs_home.join("dir").join(&orphan).exists());
    assert!(fs::symlink_metadata(sha.join(removing_name(4))).is_ok());
    assert_eq!(canary.snapshot().expect("snapshot"), before);
}

#[test]
fn symlinked_driver_dir_never_leads_deletion_outside() {
    let canary = Canary::new().expect("canary");
    let before = canary.snapshot().expect("snapshot");
    let (tmp, root, _) = store_with_layers();
    let vfs_home = tmp.path().join("vfs");
    fs::create_dir(&vfs_home).expect("mkdir");
    symlink(canary.path(), vfs_home.join("dir")).expect("symlink");
    let name = removing_name(5);
    fs::create_dir(root.join("sha256").join(&name)).expect("mkdir");
    fs::write(
        root.join("sha256").join(&name).join("cache-id"),
        "Documents",
    )
    .expect("write");
    let driver = VfsDriver::new(&vfs_home);
    if let Ok(driver) = driver {
        let (_store, outcome) = LayerStore::open(&root, Box::new(driver)).expect("open");
        let l = &outcome.leftovers[0];
        assert!(!l.cleaned, "{l:?}");
    }
    assert_eq!(canary.snapshot().expect("snapshot"), before);
}

#[test]
fn files_outside_are_never_read_or_quoted() {
    let canary = Canary::new().expect("canary");
    let (_tmp, root, _) = store_with_layers();
    let (store, _) = reopen(&root);
    let id = store.layers()[0].chain_id;
    drop(store);
    let layer = root.join("sha256").join(id.0.hex());
    fs::remove_file(layer.join("diff")).expect("rm");
    symlink(canary.path().join("secret"), layer.join("diff")).expect("symlink");
    let (_store, outcome) = LayerStore::open_read_only(&root, Box::new(NullDriver)).expect("open");
    let s = outcome
        .skipped
        .iter()
        .find(|s| s.chain_id == id)
        .expect("skipped");
    assert!(
        matches!(s.reason, SkipReason::Unreadable { .. }),
        "{:?}",
        s.reason
    );
    assert!(!outcome.to_string().contains(SECRET));
    assert!(outcome.to_string().contains("symbolic link"));
}

#[test]
fn long_values_are_quoted_short_and_escaped() {
    let (_tmp, root, _) = store_with_layers();
    let (store, _) = reopen(&root);
    let id = store.layers()[0].chain_id;
    drop(store);
    let layer = root.join("sha256").join(id.0.hex());
    let long = format!("\x1b[31m{}", "A".repeat(3000));
    fs::write(layer.join("diff"), &long).expect("write");
    let (_store, outcome) = LayerStore::open_read_only(&root, Box::new(NullDriver)).expect("open");
    let report = outcome.to_string();
    assert!(!report.contains('\x1b'), "{report}");
    assert!(report.len() < 1000, "{report}");
}

/// FIFOs, sockets, devices and huge or sparse files in place of every layerdb file: each
/// layer is skipped at once, with bounded memory.
#[test]
fn special_and_huge_files_never_hang_or_blow_up() {
    for file in ["diff", "size", "cache-id", "parent", "descriptor.json"] {
        for kind in ["fifo", "socket", "sparse", "dir", "zero-device"] {
            let (_tmp, root, _) = store_with_layers();
            let (store, _) = reopen(&root);
            let top = store
                .layers()
                .into_iter()
                .find(|l| l.parent.is_some())
                .expect("top");
            drop(store);
            let p = root.join("sha256").join(top.chain_id.0.hex()).join(file);
            let _ = fs::remove_file(&p);
            let _listener;
            match kind {
                "fifo" => rustix::fs::mkfifoat(
                    rustix::fs::CWD,
                    &p,
                    rustix::fs::Mode::from_raw_mode(0o600),
                )
                .expect("mkfifo"),
                "socket" => {
                    // Bound at a short path (sun_path is 108 bytes), then moved into place.
                    let short = tempfile::Builder::new().tempdir_in("/tmp").expect("tmp");
                    let s = short.path().join("s");
                    _listener = std::os::unix::net::UnixListener::bind(&s).expect("bind");
                    fs::rename(&s, &p).expect("rename");
                }
                "sparse" => fs::File::create(&p)
                    .and_then(|f| f.set_len(2 << 30))
                    .expect("sparse"),
                "dir" => fs::create_dir(&p).expect("mkdir"),
                _ => {
                    if rustix::process::geteuid().is_root() {
                        rustix::fs::mknodat(
                            rustix::fs::CWD,
                            &p,
                            rustix::fs::FileType::CharacterDevice,
                            rustix::fs::Mode::from_raw_mode(0o600),
                            rustix::fs::makedev(1, 5),
                        )
                        .expect("mknod");
                    } else {
                        eprintln!("skipping the device case: mknod needs root");
                        continue;
                    }
                }
            }
            let start = Instant::now();
            let (store, outcome) =
                LayerStore::open_read_only(&root, Box::new(NullDriver)).expect("open");
            assert!(start.elapsed() < Duration::from_secs(20), "{file} {kind}");
            assert!(!store.contains(&top.chain_id), "{file} {kind}");
            assert_eq!(outcome.skipped.len(), 1, "{file} {kind}: {outcome}");
        }
    }
}

#[test]
fn new_layers_never_land_outside_through_a_symlinked_driver_dir() {
    let canary = Canary::new().expect("canary");
    let before = canary.snapshot().expect("snapshot");
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("vfs");
    fs::create_dir(&home).expect("mkdir");
    symlink(canary.path(), home.join("dir")).expect("symlink");
    let driver = VfsDriver::new(&home).expect("vfs");
    let (store, _) = LayerStore::open(tmp.path().join("layerdb"), Box::new(driver)).expect("open");
    let err = store
        .register_metadata(diff(1), 1, None)
        .expect_err("refused");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(canary.snapshot().expect("snapshot"), before);
    assert!(store.is_empty());
}
