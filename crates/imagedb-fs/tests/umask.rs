//! Modes do not depend on the umask (one test in its own binary: the umask is per process).

use std::fs;
use std::os::unix::fs::PermissionsExt;

use imagedb_fs::{FsBackend, StoreBackend};

#[test]
fn modes_ignore_umask() {
    // This binary runs no other test concurrently.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o277));
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("imagedb");
    let result = modes(&root);
    rustix::process::umask(old);
    assert_eq!(result, (0o600, 0o600, 0o700, 0o700, 0o700));
}

fn modes(root: &std::path::Path) -> (u32, u32, u32, u32, u32) {
    {
        let store = FsBackend::open(root).expect("open");
        let id = store.set(b"foobar").expect("set");
        store.set_metadata(&id, "parent", b"p").expect("md");
        let mode =
            |p: &std::path::Path| fs::metadata(p).expect("stat").permissions().mode() & 0o7777;
        let md = store.metadata_path(&id, "parent").expect("path");
        (
            mode(&store.content_path(&id)),
            mode(&md),
            mode(md.parent().expect("dir")),
            mode(&root.join("content/sha256")),
            mode(&root.join("metadata/sha256")),
        )
    }
}
