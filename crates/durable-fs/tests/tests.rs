//! The public API of `durable-fs` on real files in temporary directories.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use durable_fs::{Dir, Error, FileKind};

/// A directory outside the one under test, with content whose names, modes and times are
/// compared before and after.
struct Canary {
    dir: tempfile::TempDir,
}

impl Canary {
    fn new() -> Canary {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("Documents")).expect("mkdir");
        fs::write(dir.path().join("Documents/secret"), "CANARY-SECRET").expect("write");
        fs::write(dir.path().join("file"), "CANARY-SECRET").expect("write");
        fs::set_permissions(dir.path().join("file"), fs::Permissions::from_mode(0o600))
            .expect("chmod");
        Canary { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn snapshot(&self) -> Vec<(String, u32, i64, u64)> {
        let mut out = Vec::new();
        for p in ["", "Documents", "Documents/secret", "file"] {
            let m = fs::symlink_metadata(self.path().join(p)).expect("canary entry");
            out.push((p.to_owned(), m.mode(), m.mtime(), m.len()));
        }
        out
    }
}

#[test]
fn reads_refuse_symlinks_at_every_level() {
    let canary = Canary::new();
    let before = canary.snapshot();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = Dir::open(tmp.path()).expect("open");
    fs::create_dir_all(tmp.path().join("a/b")).expect("mkdir");
    symlink(canary.path(), tmp.path().join("a/link")).expect("symlink");
    symlink(canary.path().join("file"), tmp.path().join("a/b/filelink")).expect("symlink");

    assert!(matches!(
        root.read("a/link/file", 1024),
        Err(Error::Symlink { .. })
    ));
    assert!(matches!(
        root.read("a/b/filelink", 1024),
        Err(Error::Symlink { .. })
    ));
    assert!(matches!(
        root.open_dir("a/link"),
        Err(Error::Symlink { .. })
    ));
    assert!(matches!(root.read("../x", 10), Err(Error::Escape { .. })));
    assert!(matches!(
        root.read("/etc/passwd", 10),
        Err(Error::Escape { .. })
    ));
    // meta does not follow the last component, and refuses links on the way.
    assert_eq!(
        root.meta("a/link").expect("meta").map(|m| m.kind),
        Some(FileKind::Symlink)
    );
    assert!(matches!(
        root.meta("a/link/file"),
        Err(Error::Symlink { .. })
    ));
    // Errors never carry the content.
    let e = root.read("a/b/filelink", 1024).expect_err("symlink");
    assert!(!e.to_string().contains("CANARY"));
    assert_eq!(canary.snapshot(), before);
}

#[test]
fn special_files_are_refused_at_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = Dir::open(tmp.path()).expect("open");
    let fifo = tmp.path().join("fifo");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .expect("mkfifo");
    match root.read("fifo", 1024) {
        Err(Error::NotAFile { what, .. }) => assert_eq!(what, FileKind::Fifo),
        other => panic!("expected NotAFile, got {other:?}"),
    }
    fs::create_dir(tmp.path().join("d")).expect("mkdir");
    assert!(matches!(root.read("d", 1024), Err(Error::NotAFile { .. })));
    fs::write(tmp.path().join("f"), "x").expect("write");
    assert!(matches!(
        root.open_dir("f"),
        Err(Error::NotADirectory { .. })
    ));
    assert!(root.read("missing", 10).expect("read").is_none());
    assert!(root.open_dir("missing").expect("open").is_none());
}

#[test]
fn reads_are_capped_even_for_sparse_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = Dir::open(tmp.path()).expect("open");
    let f = fs::File::create(tmp.path().join("sparse")).expect("create");
    f.set_len(2 << 30).expect("set_len");
    match root.read("sparse", 1 << 20) {
        Err(Error::TooLarge { size, limit, .. }) => {
            assert_eq!(size, 2 << 30);
            assert_eq!(limit, 1 << 20);
        }
        other => panic!(
            "expected TooLarge, got {:?}",
            other.map(|v| v.map(|v| v.len()))
        ),
    }
    fs::write(tmp.path().join("small"), "12345").expect("write");
    assert_eq!(
        root.read("small", 5).expect("read").as_deref(),
        Some(&b"12345"[..])
    );
    assert!(matches!(root.read("small", 4), Err(Error::TooLarge { .. })));
}

#[test]
fn remove_tree_never_follows_links_and_handles_depth() {
    let canary = Canary::new();
    let before = canary.snapshot();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = Dir::open(tmp.path()).expect("open");
    // 3,000 levels: more than the descriptors a process may have open by default.
    // Built with *at calls: the path is longer than PATH_MAX.
    let mut cur = root.create_dir("victim", 0o755).expect("mkdir");
    for i in 0..3000 {
        rustix::fs::mkdirat(cur.fd(), "d", rustix::fs::Mode::from_raw_mode(0o755)).expect("mkdir");
        cur = cur.require_dir("d").expect("open");
        if i % 500 == 0 {
            rustix::fs::symlinkat(canary.path(), cur.fd(), "outside").expect("symlink");
            rustix::fs::symlinkat(canary.path().join("Documents"), cur.fd(), "docs")
                .expect("symlink");
            cur.atomic_write("f", b"x", 0o644).expect("write");
        }
    }
    drop(cur);
    symlink(canary.path(), tmp.path().join("toplink")).expect("symlink");
    assert!(root.remove_tree("victim").expect("remove"));
    assert!(!tmp.path().join("victim").exists());
    // A symlink is removed as a link.
    assert!(root.remove_tree("toplink").expect("remove"));
    assert!(!root.remove_tree("toplink").expect("remove again"));
    assert_eq!(canary.snapshot(), before);
    // Through a symlinked parent: refused.
    symlink(canary.path(), tmp.path().join("l")).expect("symlink");
    assert!(matches!(
        root.remove_tree("l/Documents"),
        Err(Error::Symlink { .. })
    ));
    assert_eq!(canary.snapshot(), before);
}

#[test]
fn atomic_write_creates_with_the_final_mode_and_leaves_no_temp() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = Dir::open(tmp.path()).expect("open");
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    root.atomic_write("a.json", b"{}", 0o644).expect("write");
    rustix::process::umask(old);
    let m = fs::metadata(tmp.path().join("a.json")).expect("stat");
    assert_eq!(m.mode() & 0o7777, 0o644);
    root.atomic_write("a.json", b"{\"x\":1}", 0o600)
        .expect("rewrite");
    assert_eq!(
        fs::read(tmp.path().join("a.json")).expect("read"),
        b"{\"x\":1}"
    );
    assert!(root.temp_files().expect("temps").is_empty());
    // A temp file a crash left is found.
    let (name, _f) = root.create_temp("a.json", 0o600).expect("temp");
    assert_eq!(
        root.temp_files().expect("temps"),
        vec![std::ffi::OsString::from(&name)]
    );
    assert!(name.starts_with(durable_fs::TEMP_PREFIX));
    // Never replaces a directory or a symlink.
    fs::create_dir(tmp.path().join("d")).expect("mkdir");
    assert!(matches!(
        root.atomic_write("d", b"x", 0o600),
        Err(Error::NotAFile { .. })
    ));
    symlink("/etc/passwd", tmp.path().join("s")).expect("symlink");
    assert!(matches!(
        root.atomic_write("s", b"x", 0o600),
        Err(Error::Symlink { .. })
    ));
    assert!(matches!(
        root.atomic_write("../x", b"x", 0o600),
        Err(Error::Escape { .. })
    ));
}

#[test]
fn create_dir_sets_the_exact_mode() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = Dir::open(tmp.path()).expect("open");
    let d = root.create_dir_all("image/vfs", 0o700).expect("mkdir");
    assert_eq!(d.path(), tmp.path().join("image/vfs"));
    let m = fs::metadata(tmp.path().join("image/vfs")).expect("stat");
    assert_eq!(m.mode() & 0o7777, 0o700);
    symlink("/tmp", tmp.path().join("image/l")).expect("symlink");
    assert!(matches!(
        root.create_dir("image/l", 0o700),
        Err(Error::Symlink { .. })
    ));
}

#[test]
fn top_dirs_may_be_links_but_nothing_beneath() {
    let canary = Canary::new();
    let tmp = tempfile::tempdir().expect("tempdir");
    symlink(canary.path(), tmp.path().join("image")).expect("symlink");
    let root = Dir::open(tmp.path()).expect("open");
    let image = root.open_top_dir("image").expect("open").expect("exists");
    assert!(image.read("file", 100).expect("read").is_some());
    assert!(matches!(
        root.open_top_dir("image/Documents"),
        Err(Error::Escape { .. })
    ));
}

#[test]
fn escaped_prefix_is_short_and_printable() {
    let s = durable_fs::escaped_prefix(b"abc\n\x1b[31m\xffdef", 8);
    assert_eq!(s, "abc\\n\\u{1b}[31\u{2026}");
    assert_eq!(durable_fs::escaped_prefix(b"ok", 8), "ok");
}

#[test]
fn start_writeback_changes_nothing_a_reader_sees() {
    use std::io::{Seek, Write};
    use std::os::fd::AsFd;
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("big");
    let mut f = fs::File::create(&path).expect("create");
    let data: Vec<u8> = (0..(3 << 20)).map(|i: u32| (i % 251) as u8).collect();
    f.write_all(&data).expect("write");
    // A range, the rest of the file (0), past the end, and a length that does not fit an
    // i64: none fails, none changes the file.
    durable_fs::start_writeback(f.as_fd(), 0, 1 << 20);
    durable_fs::start_writeback(f.as_fd(), 1 << 20, 0);
    durable_fs::start_writeback(f.as_fd(), 10 << 20, 4096);
    durable_fs::start_writeback(f.as_fd(), 0, u64::MAX);
    f.seek(std::io::SeekFrom::End(0)).expect("seek");
    f.write_all(b"tail").expect("write after");
    f.sync_all().expect("fsync");
    let mut want = data;
    want.extend_from_slice(b"tail");
    assert!(fs::read(&path).expect("read") == want);
    // Not a regular file: ignored.
    let (r, _w) = std::io::pipe().expect("pipe");
    durable_fs::start_writeback(r.as_fd(), 0, 0);
}
