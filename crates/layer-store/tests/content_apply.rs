//! Registering layers through the vfs driver: whiteouts, links, metadata, hostile tar
//! streams, limits, and verification of streamed-back layers.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use digest_set::Digest;
use layer_store::apply::{Applier, WhiteoutFormat};
use layer_store::content::ContentError;
use layer_store::{
    ChainId, DiffId, DiffStream, DriverError, LayerHandle, LayerStore, NullDriver, Overlay2Driver,
    RegisterError, RegisterOptions, VfsDriver,
};

/// Builds tar streams block by block, with full control over names (for hostile input).
#[derive(Default)]
struct Tar {
    out: Vec<u8>,
}

struct H<'a> {
    name: &'a [u8],
    typeflag: u8,
    size: usize,
    link: &'a [u8],
    mode: u32,
    uid: u32,
    mtime: u64,
}

impl Default for H<'_> {
    fn default() -> Self {
        H {
            name: b"",
            typeflag: b'0',
            size: 0,
            link: b"",
            mode: 0o644,
            uid: 0,
            mtime: 1_600_000_000,
        }
    }
}

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0width$o}", v, width = field.len() - 1);
    field[..s.len()].copy_from_slice(s.as_bytes());
}

impl Tar {
    fn header(&mut self, h: &H<'_>) {
        let mut b = [0u8; 512];
        b[..h.name.len()].copy_from_slice(h.name);
        octal(&mut b[100..108], u64::from(h.mode));
        octal(&mut b[108..116], u64::from(h.uid));
        octal(&mut b[116..124], u64::from(h.uid));
        octal(&mut b[124..136], h.size as u64);
        octal(&mut b[136..148], h.mtime);
        b[156] = h.typeflag;
        b[157..157 + h.link.len()].copy_from_slice(h.link);
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        b[148..156].copy_from_slice(b"        ");
        let sum: u32 = b.iter().map(|&c| u32::from(c)).sum();
        let s = format!("{sum:06o}\0 ");
        b[148..156].copy_from_slice(s.as_bytes());
        self.out.extend_from_slice(&b);
    }

    fn data(&mut self, d: &[u8]) {
        self.out.extend_from_slice(d);
        let pad = (512 - d.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
    }

    fn file(&mut self, name: &str, content: &[u8]) -> &mut Self {
        self.header(&H {
            name: name.as_bytes(),
            size: content.len(),
            ..H::default()
        });
        self.data(content);
        self
    }

    fn dir(&mut self, name: &str) -> &mut Self {
        self.header(&H {
            name: name.as_bytes(),
            typeflag: b'5',
            mode: 0o755,
            ..H::default()
        });
        self
    }

    fn entry(&mut self, h: H<'_>, content: &[u8]) -> &mut Self {
        self.header(&H {
            size: content.len(),
            ..h
        });
        self.data(content);
        self
    }

    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        for (k, v) in records {
            let rest = 1 + k.len() + 1 + v.len() + 1;
            let mut n = rest + 1;
            while n.to_string().len() + rest != n {
                n += 1;
            }
            body.extend_from_slice(format!("{n} {k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        self.header(&H {
            name: b"PaxHeaders/x",
            typeflag: b'x',
            size: body.len(),
            ..H::default()
        });
        self.data(&body);
        self
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.out);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

struct Env {
    tmp: tempfile::TempDir,
    store: LayerStore,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().expect("tempdir");
        let driver = VfsDriver::new(tmp.path().join("vfs")).expect("driver");
        let (store, _) =
            LayerStore::open(tmp.path().join("image/vfs/layerdb"), Box::new(driver)).expect("open");
        Env { tmp, store }
    }

    fn dir_of(&self, h: &LayerHandle) -> PathBuf {
        let info = self.store.layer(h.chain_id()).expect("layer");
        self.tmp.path().join("vfs/dir").join(info.cache_id)
    }

    /// The layer's tar stream; its length is what `tar_stream_size` tells beforehand.
    fn stream(&self, h: &LayerHandle) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.store
            .tar_stream(h)
            .expect("stream")
            .read_to_end(&mut out)?;
        let size = self.store.tar_stream_size(h.chain_id()).expect("size");
        assert_eq!(size, out.len() as u64, "tar_stream_size");
        Ok(out)
    }

    fn count(&self, sub: &str) -> usize {
        fs::read_dir(self.tmp.path().join(sub))
            .map(|rd| rd.count())
            .unwrap_or(0)
    }

    /// Nothing of a failed registration is left behind.
    fn assert_clean(&self, layers: usize) {
        assert_eq!(self.store.len(), layers);
        assert_eq!(self.count("vfs/dir"), layers, "driver dirs");
        assert_eq!(self.count("image/vfs/layerdb/tmp"), 0, "staging dirs");
        assert_eq!(self.count("image/vfs/layerdb/sha256"), layers, "layer dirs");
    }
}

fn content_error(e: RegisterError) -> ContentError {
    match e {
        RegisterError::Driver {
            source: DriverError::Content(c),
            ..
        } => *c,
        other => panic!("expected a content error, got {other:?}"),
    }
}

#[test]
fn whiteouts_links_and_metadata_apply_like_dockerd() {
    let env = Env::new();
    let base = Tar::default()
        .dir("a/")
        .file("a/x", b"x")
        .file("a/y", b"y")
        .dir("b/")
        .file("b/file", b"shared")
        .dir("c/")
        .dir("c/sub/")
        .file("c/sub/f", b"f")
        .file("c/keep-me-not", b"z")
        .finish();
    let hb = env.store.register(&base[..], None).expect("base");
    let child = Tar::default()
        .file("a/.wh.x", b"")
        .file("c/.wh..wh..opq", b"")
        .file("c/new", b"new")
        .entry(
            H {
                name: b"h",
                typeflag: b'1',
                link: b"b/file",
                ..H::default()
            },
            b"",
        )
        .entry(
            H {
                name: b"s",
                typeflag: b'2',
                link: b"/b/file",
                mtime: 1_000_000_000,
                mode: 0o777,
                ..H::default()
            },
            b"",
        )
        .entry(
            H {
                name: b"suid",
                mode: 0o4755,
                uid: 1234,
                ..H::default()
            },
            b"#!/bin/sh\n",
        )
        .pax(&[
            ("SCHILY.xattr.user.test", b"value"),
            ("mtime", b"1234567890.5"),
        ])
        .file("with-xattr", b"data")
        .entry(
            H {
                name: b"fifo",
                typeflag: b'6',
                mode: 0o600,
                ..H::default()
            },
            b"",
        )
        .finish();
    let hc = env
        .store
        .register(&child[..], Some(hb.chain_id()))
        .expect("child");
    let d = env.dir_of(&hc);
    assert!(!d.join("a/x").exists(), "whiteout removed a/x");
    assert!(d.join("a/y").exists());
    assert!(!d.join("c/sub").exists(), "opaque dir emptied");
    assert!(!d.join("c/keep-me-not").exists());
    assert_eq!(fs::read(d.join("c/new")).expect("new"), b"new");
    assert_eq!(
        fs::metadata(d.join("h")).expect("h").ino(),
        fs::metadata(d.join("b/file")).expect("b/file").ino(),
        "hard link"
    );
    assert_eq!(fs::read_link(d.join("s")).expect("s"), Path::new("/b/file"));
    assert_eq!(
        fs::symlink_metadata(d.join("s")).expect("s").mtime(),
        1_000_000_000
    );
    let m = fs::metadata(d.join("suid")).expect("suid");
    assert_eq!(m.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(m.mtime(), 1_600_000_000);
    if fs::metadata("/proc/self").expect("proc").uid() == 0 {
        assert_eq!(m.uid(), 1234);
    }
    let x = fs::metadata(d.join("with-xattr")).expect("x");
    assert_eq!((x.mtime(), x.mtime_nsec()), (1_234_567_890, 500_000_000));
    assert!(
        fs::symlink_metadata(d.join("fifo"))
            .expect("fifo")
            .file_type()
            .is_fifo()
    );
    // The parent layer is untouched.
    let pd = env.dir_of(&hb);
    assert!(pd.join("a/x").exists() && pd.join("c/sub/f").exists());
    // Both stream back byte for byte.
    assert_eq!(env.stream(&hb).expect("base"), base);
    assert_eq!(env.stream(&hc).expect("child"), child);
    assert_eq!(
        env.store.layer(hc.chain_id()).expect("info").diff_size,
        3 + 10 + 4
    );
}

use std::os::unix::fs::FileTypeExt;

#[test]
fn long_names_pax_non_utf8_and_trailing_bytes_round_trip() {
    let env = Env::new();
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(150));
    let mut t = Tar::default();
    t.pax(&[("path", long.as_bytes())])
        .file("short-name", b"long");
    // A GNU long name.
    let gnu = format!("{}/gnu", "g".repeat(200));
    t.header(&H {
        name: b"././@LongLink",
        typeflag: b'L',
        size: gnu.len() + 1,
        ..H::default()
    });
    let mut n = gnu.clone().into_bytes();
    n.push(0);
    t.data(&n);
    t.file("trunc", b"gnu content");
    t.entry(
        H {
            name: b"caf\xe9",
            ..H::default()
        },
        b"latin1",
    );
    let mut tar = t.finish();
    tar.extend_from_slice(&[0u8; 8192]);
    tar.extend_from_slice(b"trailing garbage");
    let h = env.store.register(&tar[..], None).expect("register");
    assert_eq!(
        env.store.layer(h.chain_id()).expect("info").diff_id,
        DiffId(Digest::sha256(&tar))
    );
    let d = env.dir_of(&h);
    assert_eq!(fs::read(d.join(&long)).expect("pax path"), b"long");
    assert_eq!(fs::read(d.join(&gnu)).expect("gnu path"), b"gnu content");
    assert_eq!(
        fs::read(d.join(std::ffi::OsStr::from_bytes(b"caf\xe9"))).expect("raw"),
        b"latin1"
    );
    assert!(env.stream(&h).expect("stream") == tar);
}

use std::os::unix::ffi::OsStrExt;

#[test]
fn hostile_tars_are_refused_and_leave_nothing_behind() {
    let env = Env::new();
    let outside = tempfile::tempdir().expect("outside");
    let outside_abs = outside.path().to_string_lossy().into_owned();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dotdot", Tar::default().file("../evil", b"x").finish()),
        (
            "nested dotdot",
            Tar::default().file("a/../../evil", b"x").finish(),
        ),
        (
            "hardlink out",
            Tar::default()
                .entry(
                    H {
                        name: b"h",
                        typeflag: b'1',
                        link: b"../../../../etc/passwd",
                        ..H::default()
                    },
                    b"",
                )
                .finish(),
        ),
        (
            "write through symlink",
            Tar::default()
                .entry(
                    H {
                        name: b"evil",
                        typeflag: b'2',
                        link: outside_abs.as_bytes(),
                        ..H::default()
                    },
                    b"",
                )
                .file("evil/pwned", b"owned")
                .finish(),
        ),
        (
            "duplicate",
            Tar::default().file("a", b"1").file("./a", b"2").finish(),
        ),
        ("bad checksum", {
            let mut t = Tar::default().file("a", b"1").finish();
            t[148] = b'7';
            t
        }),
        ("truncated", {
            let t = Tar::default().file("a", &[7u8; 2000]).finish();
            t[..1200].to_vec()
        }),
        (
            "root replaced by a file",
            Tar::default().file("./", b"").finish(),
        ),
    ];
    for (what, tar) in cases {
        let err = env.store.register(&tar[..], None);
        assert!(err.is_err(), "{what} was accepted");
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(!msg.is_empty(), "{what}");
        env.assert_clean(0);
    }
    assert_eq!(fs::read_dir(outside.path()).expect("outside").count(), 0);
    // A symlink climbing far above the root resolves to the root, as in dockerd's chroot:
    // what is written through it stays in the layer.
    let tar = Tar::default()
        .entry(
            H {
                name: b"up",
                typeflag: b'2',
                link: b"../../../../../../../../../..",
                ..H::default()
            },
            b"",
        )
        .file(&format!("up{outside_abs}/pwned2"), b"contained")
        .finish();
    let h = env.store.register(&tar[..], None).expect("contained");
    assert_eq!(fs::read_dir(outside.path()).expect("outside").count(), 0);
    let inside = env
        .dir_of(&h)
        .join(outside_abs.trim_start_matches('/'))
        .join("pwned2");
    assert_eq!(fs::read(inside).expect("inside the layer"), b"contained");
    assert!(env.stream(&h).expect("stream") == tar);
    // Symlinks pointing out are fine as content (absolute targets are common); writing
    // through them stays inside the layer.
    let tar = Tar::default()
        .dir("usr/")
        .dir("usr/lib/")
        .entry(
            H {
                name: b"lib",
                typeflag: b'2',
                link: b"/usr/lib",
                ..H::default()
            },
            b"",
        )
        .file("lib/libx.so", b"elf")
        .finish();
    let h = env.store.register(&tar[..], None).expect("usrmerge layer");
    env.assert_clean(2);
    assert_eq!(
        fs::read(env.dir_of(&h).join("usr/lib/libx.so")).expect("through symlink"),
        b"elf"
    );
    assert!(env.stream(&h).expect("stream") == tar);
}

#[test]
fn registering_the_same_layer_twice_returns_the_existing_layer() {
    let env = Env::new();
    let tar = Tar::default().file("a", b"1").finish();
    let h1 = env.store.register(&tar[..], None).expect("first");
    let h2 = env.store.register(&tar[..], None).expect("second");
    assert_eq!(h1.chain_id(), h2.chain_id());
    assert_ne!(h1, h2);
    env.assert_clean(1);
}

#[test]
fn size_limit_is_enforced() {
    let env = Env::new();
    let tar = Tar::default().file("big", &[1u8; 5000]).finish();
    let opts = RegisterOptions {
        max_size: Some(4096),
        ..RegisterOptions::default()
    };
    let e = env
        .store
        .register_with(&tar[..], None, &opts)
        .expect_err("too big");
    assert!(matches!(
        content_error(e),
        ContentError::TooLarge { limit: 4096 }
    ));
    env.assert_clean(0);
    let opts = RegisterOptions {
        max_size: Some(5000),
        sync: false,
    };
    env.store
        .register_with(&tar[..], None, &opts)
        .expect("fits");
}

#[test]
fn depth_limit_is_125_layers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (store, _) =
        LayerStore::open(tmp.path().join("layerdb"), Box::new(NullDriver)).expect("open");
    let mut parent: Option<ChainId> = None;
    for i in 0..125 {
        let tar = Tar::default().file("f", format!("{i}").as_bytes()).finish();
        let h = store.register(&tar[..], parent.as_ref()).expect("register");
        parent = Some(*h.chain_id());
    }
    let tar = Tar::default().file("f", b"one too many").finish();
    let e = store
        .register(&tar[..], parent.as_ref())
        .expect_err("126th layer");
    assert!(
        matches!(e, RegisterError::MaxDepthExceeded { depth: 125, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("max depth exceeded"));
    // The null driver keeps no files: streaming back is refused with a clear error.
    let mut out = Vec::new();
    let err = store
        .tar_stream_chain(&parent.expect("top"))
        .expect("stream")
        .read_to_end(&mut out)
        .expect_err("no files");
    assert!(err.to_string().contains("does not support"), "{err}");
}

#[test]
fn modified_layer_files_fail_the_stream() {
    let env = Env::new();
    let tar = Tar::default()
        .file("a", b"hello")
        .file("b", b"world")
        .finish();
    let h = env.store.register(&tar[..], None).expect("register");
    let d = env.dir_of(&h);
    fs::write(d.join("b"), b"WORLD").expect("tamper");
    let err = env.stream(&h).expect_err("tampered");
    assert!(
        err.to_string().contains("could not verify layer data"),
        "{err}"
    );
    let mut out = Vec::new();
    let err = env
        .store
        .tar_stream(&h)
        .expect("stream")
        .with_file_checksums(true)
        .read_to_end(&mut out)
        .expect_err("tampered");
    assert!(
        err.to_string().contains("checksum failed for \"b\""),
        "{err}"
    );
    fs::write(d.join("b"), b"worl").expect("shorter");
    let err = env.stream(&h).expect_err("shorter");
    assert!(
        err.to_string().contains("checksum failed for \"b\""),
        "{err}"
    );
    fs::write(d.join("b"), b"world").expect("restore");
    assert_eq!(env.stream(&h).expect("ok again"), tar);
    // A tar-split whose raw bytes were changed gets through the file checksums but not the
    // diff ID check, which fails at the end of the stream.
    // Same files, another mtime: a different stream.
    let other = Tar::default()
        .entry(
            H {
                name: b"a",
                mtime: 1,
                ..H::default()
            },
            b"hello",
        )
        .file("b", b"world")
        .finish();
    let tmp2 = tempfile::tempdir().expect("tmp");
    let driver = VfsDriver::new(tmp2.path().join("vfs")).expect("driver");
    let (s2, _) = LayerStore::open(tmp2.path().join("layerdb"), Box::new(driver)).expect("open");
    let h2 = s2.register(&other[..], None).expect("other");
    let ts = |s: &LayerStore, h: &LayerHandle| s.layer_dir(h.chain_id()).join("tar-split.json.gz");
    fs::copy(ts(&s2, &h2), ts(&env.store, &h)).expect("swap tar-split");
    let mut out = Vec::new();
    let err = env
        .store
        .tar_stream(&h)
        .expect("stream")
        .read_to_end(&mut out)
        .expect_err("unverified");
    assert!(
        err.to_string().starts_with(&format!(
            "could not verify layer data for: {}",
            env.store.layer(h.chain_id()).expect("info").diff_id
        )),
        "{err}"
    );
    assert_eq!(out.len(), other.len(), "the error comes at the end");
}

#[test]
fn child_layers_start_from_a_faithful_copy_of_the_parent() {
    let env = Env::new();
    let base = Tar::default()
        .dir("d/")
        .file("d/a", b"shared inode")
        .entry(
            H {
                name: b"d/b",
                typeflag: b'1',
                link: b"d/a",
                ..H::default()
            },
            b"",
        )
        .entry(
            H {
                name: b"sym",
                typeflag: b'2',
                link: b"d/a",
                mtime: 1_000_000_001,
                ..H::default()
            },
            b"",
        )
        .entry(
            H {
                name: b"fifo",
                typeflag: b'6',
                mode: 0o640,
                ..H::default()
            },
            b"",
        )
        .pax(&[("SCHILY.xattr.user.copied", b"yes")])
        .entry(
            H {
                name: b"x",
                mode: 0o2750,
                uid: 4321,
                mtime: 1_234_567_890,
                ..H::default()
            },
            b"xattr",
        )
        .finish();
    let hb = env.store.register(&base[..], None).expect("base");
    let child = Tar::default().file("new", b"n").finish();
    let hc = env
        .store
        .register(&child[..], Some(hb.chain_id()))
        .expect("child");
    let (pd, cd) = (env.dir_of(&hb), env.dir_of(&hc));
    let ino = |p: PathBuf| fs::metadata(p).expect("meta").ino();
    assert_eq!(ino(cd.join("d/a")), ino(cd.join("d/b")), "hard link kept");
    assert_ne!(
        ino(cd.join("d/a")),
        ino(pd.join("d/a")),
        "a copy, not shared"
    );
    assert_eq!(
        fs::read_link(cd.join("sym")).expect("sym"),
        Path::new("d/a")
    );
    assert_eq!(
        fs::symlink_metadata(cd.join("sym")).expect("sym").mtime(),
        1_000_000_001
    );
    assert!(
        fs::symlink_metadata(cd.join("fifo"))
            .expect("fifo")
            .file_type()
            .is_fifo()
    );
    let (pm, cm) = (
        fs::metadata(pd.join("x")).expect("x"),
        fs::metadata(cd.join("x")).expect("x"),
    );
    assert_eq!(cm.permissions().mode() & 0o7777, 0o2750);
    assert_eq!((cm.uid(), cm.gid()), (pm.uid(), pm.gid()));
    assert_eq!((cm.mtime(), cm.mtime_nsec()), (1_234_567_890, 0));
    let dm = |d: &Path| {
        let m = fs::metadata(d.join("d")).expect("d");
        (m.mtime(), m.permissions().mode())
    };
    assert_eq!(dm(&cd), dm(&pd), "directory times and modes");
    assert_eq!(
        get_xattr(&pd.join("x"), "user.copied").as_deref(),
        Some(&b"yes"[..])
    );
    assert_eq!(
        get_xattr(&cd.join("x"), "user.copied").as_deref(),
        Some(&b"yes"[..])
    );
    assert_eq!(fs::read(cd.join("new")).expect("new"), b"n");
    assert!(!pd.join("new").exists());
    assert_eq!(env.stream(&hc).expect("child"), child);
}

fn get_xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(p, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// One entry of a directory tree as seen by `lstat`: kind, mode, mtime, and content or
/// link target.
type Snapshot = Vec<(PathBuf, u32, i64, i64, Vec<u8>)>;

/// Every entry under `dir`, `dir` included, never following symbolic links, as `entry`
/// makes it of its path relative to `dir`, its `lstat` and its content (a symbolic link's
/// target, a regular file's bytes, else nothing); sorted.
fn walk_tree<T: Ord>(
    dir: &Path,
    mut entry: impl FnMut(PathBuf, &fs::Metadata, Vec<u8>) -> T,
) -> Vec<T> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let m = fs::symlink_metadata(&d).expect("lstat");
        let data = if m.file_type().is_symlink() {
            fs::read_link(&d)
                .expect("readlink")
                .into_os_string()
                .into_vec()
        } else if m.is_file() {
            fs::read(&d).expect("read")
        } else {
            Vec::new()
        };
        if m.is_dir() {
            for e in fs::read_dir(&d).expect("readdir") {
                todo.push(e.expect("entry").path());
            }
        }
        let rel = d.strip_prefix(dir).expect("under dir").to_path_buf();
        out.push(entry(rel, &m, data));
    }
    out.sort();
    out
}

/// Everything under `dir` (not following symbolic links), sorted.
fn snapshot(dir: &Path) -> Snapshot {
    walk_tree(dir, |rel, m, data| {
        (rel, m.mode(), m.mtime(), m.mtime_nsec(), data)
    })
}

use std::os::unix::ffi::OsStringExt;

/// A store with one base layer, and a canary tree outside every layer directory: files, a
/// subdirectory `d` and a symlink, with old times.
struct Canary {
    env: Env,
    base: LayerHandle,
    base_snapshot: Snapshot,
    dir: PathBuf,
    before: Snapshot,
}

impl Canary {
    fn new() -> Canary {
        let env = Env::new();
        let base_tar = Tar::default()
            .dir("keep/")
            .file("keep/f", b"base layer")
            .finish();
        let base = env.store.register(&base_tar[..], None).expect("base");
        let base_snapshot = snapshot(&env.dir_of(&base));
        let dir = env.tmp.path().join("canary");
        fs::create_dir(&dir).expect("canary");
        fs::create_dir(dir.join("d")).expect("canary/d");
        fs::write(dir.join("f"), b"canary").expect("canary/f");
        fs::write(dir.join("d/f"), b"canary/d").expect("canary/d/f");
        std::os::unix::fs::symlink("f", dir.join("l")).expect("canary/l");
        let old = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: 1_000_000,
                tv_nsec: 0,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: 1_000_000,
                tv_nsec: 0,
            },
        };
        for p in ["d/f", "f", "l", "d", ""] {
            rustix::fs::utimensat(
                rustix::fs::CWD,
                dir.join(p),
                &old,
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .expect("utimensat");
        }
        fs::set_permissions(dir.join("d"), fs::Permissions::from_mode(0o700)).expect("chmod");
        let before = snapshot(&dir);
        Canary {
            env,
            base,
            base_snapshot,
            dir,
            before,
        }
    }

    fn abs(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    /// Registers `tar` on top of the base layer and checks that neither the canary nor the
    /// base layer changed.
    fn register(&self, what: &str, tar: &[u8]) -> Result<LayerHandle, RegisterError> {
        let r = self.env.store.register(tar, Some(self.base.chain_id()));
        assert_eq!(snapshot(&self.dir), self.before, "{what}: canary changed");
        assert_eq!(
            snapshot(&self.env.dir_of(&self.base)),
            self.base_snapshot,
            "{what}: base layer changed"
        );
        r
    }

    /// Registers `tar`, which must be refused with an error naming `entry`.
    fn refused(&self, what: &str, tar: &[u8], entry: &str) {
        let e = self
            .register(what, tar)
            .err()
            .unwrap_or_else(|| panic!("{what} was accepted"));
        let msg = content_error(e).to_string();
        assert!(msg.contains(entry), "{what}: {msg:?} does not name {entry}");
        self.env.assert_clean(1);
    }
}

fn symlink_entry<'a>(name: &'a str, target: &'a str) -> H<'a> {
    H {
        name: name.as_bytes(),
        typeflag: b'2',
        link: target.as_bytes(),
        mode: 0o777,
        ..H::default()
    }
}

#[test]
fn whiteouts_of_dot_dotdot_and_empty_names_are_refused() {
    for name in [
        ".wh...",
        ".wh..",
        ".wh.",
        "x/.wh...",
        "x/y/.wh..",
        "./.wh...",
    ] {
        let c = Canary::new();
        let tar = Tar::default()
            .dir("x/")
            .dir("x/y/")
            .file(name, b"")
            .finish();
        c.refused(name, &tar, name.trim_start_matches("./"));
    }
}

#[test]
fn whiteouts_and_opaque_markers_through_symlinks_are_refused() {
    let c = Canary::new();
    let abs = c.abs();
    for (target, member) in [
        (abs.as_str(), "l/.wh.f"),
        (abs.as_str(), "l/.wh.d"),
        ("../../../..", "l/.wh.keep"),
        ("keep", "l/.wh.f"),
        (abs.as_str(), "l/.wh..wh..opq"),
        ("../../../..", "l/.wh..wh..opq"),
        ("keep", "l/.wh..wh..opq"),
        (abs.as_str(), "l/d/.wh.f"),
    ] {
        let tar = Tar::default()
            .entry(symlink_entry("l", target), b"")
            .file(member, b"")
            .finish();
        c.refused(&format!("l -> {target}, {member}"), &tar, member);
    }
}

#[test]
fn directory_times_are_never_restored_through_a_symlink() {
    let c = Canary::new();
    let abs = c.abs();
    let tar = Tar::default()
        .dir("x/d/")
        .entry(symlink_entry("x", &abs), b"")
        .finish();
    // dockerd fails too: x/d no longer exists once x is a symlink.
    c.refused("x/d/ then x -> canary", &tar, "x/d");
    // The same with a relative link climbing out.
    let tar = Tar::default()
        .dir("y/d/")
        .entry(symlink_entry("y", "../../../../../../../../.."), b"")
        .finish();
    assert!(c.register("y/d/ then y -> ../..", &tar).is_err());
}

#[test]
fn links_and_files_through_symlinks_stay_in_the_layer() {
    let c = Canary::new();
    let abs = c.abs();
    let hard = |name: &'static str, target: &'static str| H {
        name: name.as_bytes(),
        typeflag: b'1',
        link: target.as_bytes(),
        ..H::default()
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "hard link through a symlink",
            Tar::default()
                .entry(symlink_entry("l", &abs), b"")
                .entry(hard("h", "l/f"), b"")
                .finish(),
        ),
        (
            "hard link into a subdir through a symlink",
            Tar::default()
                .entry(symlink_entry("l", &abs), b"")
                .entry(hard("h", "l/d/f"), b"")
                .finish(),
        ),
        (
            "file through a symlink",
            Tar::default()
                .entry(symlink_entry("l", &abs), b"")
                .file("l/pwned", b"x")
                .finish(),
        ),
        (
            "file into a subdir through a symlink",
            Tar::default()
                .entry(symlink_entry("l", &abs), b"")
                .file("l/d/pwned", b"x")
                .finish(),
        ),
        (
            "directory through a symlink",
            Tar::default()
                .entry(symlink_entry("l", &abs), b"")
                .dir("l/d/")
                .finish(),
        ),
        (
            "symlink and fifo through a symlink",
            Tar::default()
                .entry(symlink_entry("l", &format!("{abs}/d")), b"")
                .entry(symlink_entry("l/s", "/etc/passwd"), b"")
                .entry(
                    H {
                        name: b"l/p",
                        typeflag: b'6',
                        ..H::default()
                    },
                    b"",
                )
                .finish(),
        ),
    ];
    for (what, tar) in cases {
        assert!(c.register(what, &tar).is_err(), "{what} was accepted");
        c.env.assert_clean(1);
    }
    // Through a relative symlink resolving to the layer root, everything stays inside.
    let tar = Tar::default()
        .entry(symlink_entry("up", "../../../../../../.."), b"")
        .dir("up/d/")
        .file("up/d/f", b"inside")
        .entry(hard("up/h", "up/d/f"), b"")
        .finish();
    let h = c.register("relative climb", &tar).expect("contained");
    let d = c.env.dir_of(&h);
    assert_eq!(fs::read(d.join("d/f")).expect("d/f"), b"inside");
    assert_eq!(fs::read(d.join("h")).expect("h"), b"inside");
}

/// `depth` nested directories `d/d/.../d/` (names in PAX records), then `extra` members.
fn deep_tar(depth: usize, extra: impl FnOnce(&mut Tar, &str)) -> Vec<u8> {
    let mut t = Tar::default();
    let mut path = String::new();
    for _ in 0..depth {
        path.push_str("d/");
        t.pax(&[("path", path.as_bytes())]).dir("placeholder/");
    }
    extra(&mut t, &path);
    t.finish()
}

use rustix::fs::{Mode, OFlags};

/// The directory `dir/d/d/...` (`depth` times), opened without building a path longer than
/// `PATH_MAX`.
fn open_deep(dir: &Path, depth: usize) -> std::os::fd::OwnedFd {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW;
    let mut fd = rustix::fs::open(dir, flags, Mode::empty()).expect("open");
    for _ in 0..depth {
        fd = rustix::fs::openat(&fd, "d", flags, Mode::empty()).expect("open d");
    }
    fd
}

#[test]
fn deep_trees_apply_quickly() {
    let c = Canary::new();
    let tar = deep_tar(2000, |_, _| {});
    let start = std::time::Instant::now();
    let h = c.register("2000 nested dirs", &tar).expect("deep");
    let took = start.elapsed();
    eprintln!("2000 nested directories: {took:?}");
    let m = rustix::fs::fstat(open_deep(&c.env.dir_of(&h), 2000)).expect("deepest");
    assert_eq!(
        rustix::fs::FileType::from_raw_mode(m.st_mode),
        rustix::fs::FileType::Directory
    );
    assert_eq!(m.st_mtime, 1_600_000_000);
    assert_eq!(m.st_mode & 0o7777, 0o755);
    assert!(c.env.stream(&h).expect("stream") == tar);
}

#[test]
fn deep_symlinks_and_files_apply_quickly() {
    let c = Canary::new();
    let abs = c.abs();
    let tar = deep_tar(2000, |t, path| {
        for i in 0..300 {
            let l = format!("{path}l{i}");
            let target = if i % 2 == 0 {
                abs.clone()
            } else {
                "../..".into()
            };
            t.pax(&[("path", l.as_bytes()), ("linkpath", target.as_bytes())])
                .entry(symlink_entry("placeholder", "placeholder"), b"");
            let f = format!("{path}f{i}");
            t.pax(&[("path", f.as_bytes())]).file("placeholder", b"f");
        }
    });
    let start = std::time::Instant::now();
    let h = c.register("600 members at depth", &tar).expect("deep");
    let took = start.elapsed();
    eprintln!("600 symlinks and files at depth 2000: {took:?}");
    let d = open_deep(&c.env.dir_of(&h), 2000);
    let f = rustix::fs::openat(&d, "f299", OFlags::RDONLY, Mode::empty()).expect("f299");
    let mut s = String::new();
    fs::File::from(f).read_to_string(&mut s).expect("read");
    assert_eq!(s, "f");
    assert_eq!(
        rustix::fs::readlinkat(&d, "l1", Vec::new())
            .expect("l1")
            .as_bytes(),
        b"../.."
    );
    assert!(c.env.stream(&h).expect("stream") == tar);
}

// Small regular files are written by worker threads (`apply_diff_with`); everything here
// compares `register` (vfs and overlay2) with the sequential public `Applier`.

/// Applies `tar` one member at a time with the public `Applier` (no workers): the reference
/// for what `register` writes.
fn apply_sequentially(tar: &[u8], root: &Path, format: WhiteoutFormat) -> Result<(), ContentError> {
    let mut split = Vec::new();
    let mut diff = DiffStream::new(tar, &mut split, None)?;
    let mut applier = Applier::with_format(root, format);
    while let Some(h) = diff.next_entry()? {
        applier.apply(&h, &mut diff)?;
    }
    applier.finish()
}

/// One entry of a tree: path, mode (with type), owner, mtime, content or link target, and
/// the inode's link count.
type FullEntry = (PathBuf, u32, u32, u32, i64, i64, Vec<u8>, u64);

/// Everything under `dir` (the mtimes of the root, of whiteout devices and of the directories
/// `t` of [`many_files_tar`] excepted: they are when they were made).
fn full_snapshot(dir: &Path) -> Vec<FullEntry> {
    walk_tree(dir, |rel, m, data| {
        // The times of the root, of implicit directories (`t`) and of whiteout devices are
        // when they were made.
        let made = rel.as_os_str().is_empty()
            || (m.is_dir() && rel.ends_with("t"))
            || m.file_type().is_char_device();
        let (mtime, nsec) = if made {
            (0, 0)
        } else {
            (m.mtime(), m.mtime_nsec())
        };
        let nlink = if m.is_dir() { 0 } else { m.nlink() };
        (rel, m.mode(), m.uid(), m.gid(), mtime, nsec, data, nlink)
    })
}

/// Asserts two trees are equal, naming the first difference (content shown by length).
fn assert_same_tree(got: &Path, want: &Path, what: &str) {
    let (g, w) = (full_snapshot(got), full_snapshot(want));
    let brief = |e: &FullEntry| {
        let (p, mode, uid, gid, mt, ns, data, nlink) = e;
        format!(
            "{} mode {mode:o} owner {uid}:{gid} mtime {mt}.{ns} {} bytes nlink {nlink}",
            p.display(),
            data.len()
        )
    };
    for (a, b) in g.iter().zip(&w) {
        assert!(a == b, "{what}: got {}, want {}", brief(a), brief(b));
    }
    assert_eq!(g.len(), w.len(), "{what}: number of entries");
}

/// An overlay2 store under `root`, or `None` when not root (overlay2 needs it).
fn overlay2_env(root: &Path) -> Option<LayerStore> {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipping overlay2: needs root");
        return None;
    }
    let driver = Overlay2Driver::new(root.join("overlay2"));
    let (store, _) =
        LayerStore::open(root.join("image/overlay2/layerdb"), Box::new(driver)).expect("store");
    Some(store)
}

fn overlay2_diff(root: &Path, store: &LayerStore, h: &LayerHandle) -> PathBuf {
    let info = store.layer(h.chain_id()).expect("layer");
    root.join("overlay2").join(info.cache_id).join("diff")
}

fn read_all(store: &LayerStore, h: &LayerHandle) -> Vec<u8> {
    let mut out = Vec::new();
    store
        .tar_stream(h)
        .expect("stream")
        .read_to_end(&mut out)
        .expect("read");
    out
}

/// Registers `tar` on vfs (on top of `parent` if given) and on overlay2 (alone), checks
/// each tree against the sequential `Applier` and the stream read back against `tar` (unless
/// a member is overwritten: the earlier content is gone, the stream cannot be verified).
fn register_like_sequential(parent: Option<&[u8]>, tar: &[u8], stream_back: bool) {
    let env = Env::new();
    let reference = env.tmp.path().join("reference");
    fs::create_dir(&reference).expect("mkdir");
    let mut parent_chain = None;
    if let Some(p) = parent {
        let hp = env.store.register(p, None).expect("parent");
        apply_sequentially(p, &reference, WhiteoutFormat::Remove).expect("reference parent");
        assert_same_tree(&env.dir_of(&hp), &reference, "vfs parent");
        parent_chain = Some(*hp.chain_id());
    }
    let h = env
        .store
        .register(tar, parent_chain.as_ref())
        .expect("register on vfs");
    apply_sequentially(tar, &reference, WhiteoutFormat::Remove).expect("reference");
    assert_same_tree(&env.dir_of(&h), &reference, "vfs");
    if stream_back {
        assert!(env.stream(&h).expect("stream") == tar, "vfs stream");
    }

    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(store) = overlay2_env(tmp.path()) else {
        return;
    };
    let h = store.register(tar, None).expect("register on overlay2");
    let reference = tmp.path().join("reference");
    fs::create_dir(&reference).expect("mkdir");
    apply_sequentially(tar, &reference, WhiteoutFormat::Overlay).expect("reference");
    assert_same_tree(
        &overlay2_diff(tmp.path(), &store, &h),
        &reference,
        "overlay2",
    );
    if stream_back {
        assert!(read_all(&store, &h) == tar, "overlay2 stream");
    }
}

/// Pseudo-random bytes.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Many small files across directories, in an interleaved order, with various sizes (some
/// too large for the workers), modes, owners, times and xattrs; directories met again
/// mid-stream, links, and (with `replace`) a directory replaced by a file.
fn many_files_tar(files: usize, dirs: usize, salt: u64, replace: bool) -> Vec<u8> {
    let mut t = Tar::default();
    for d in 0..dirs {
        t.dir(&format!("d{d}/"));
        t.dir(&format!("d{d}/s/"));
    }
    let sizes = [
        0,
        1,
        511,
        512,
        2048,
        4096,
        128 << 10,
        (128 << 10) + 1,
        300_000,
    ];
    let modes = [0o644, 0o755, 0o600, 0o4755, 0o2711, 0o444];
    let mut again = std::collections::HashSet::new();
    for i in 0..files {
        let d = i % dirs;
        let name = if i % 3 == 0 {
            format!("d{d}/s/f{i}")
        } else if i % 5 == 1 {
            // A directory without an entry of its own (created on the way).
            format!("d{d}/t/f{i}")
        } else {
            format!("d{d}/f{i}")
        };
        let size = sizes[i % sizes.len()] % if i % 21 == 0 { usize::MAX } else { 5000 };
        if i % 11 == 0 {
            t.pax(&[("SCHILY.xattr.user.n", format!("{i}").as_bytes())]);
        }
        t.entry(
            H {
                name: name.as_bytes(),
                mode: modes[i % modes.len()],
                uid: [0, 1000, 12345][i % 3],
                mtime: 1_600_000_000 + (i as u64 * 37 + salt) % 100_000,
                ..H::default()
            },
            &noise(i as u64 + salt, size),
        );
        if i % 97 == 50 && again.insert(d) {
            // A directory met again while files in it may be in flight (rooted: tar-split
            // refuses the same cleaned name twice).
            t.dir(&format!("/d{d}/"));
        }
        if i % 101 == 7 {
            t.entry(symlink_entry(&format!("d{d}/l{i}"), &format!("f{i}")), b"");
        }
        if i % 103 == 9 {
            t.entry(
                H {
                    name: format!("d{d}/h{i}").as_bytes(),
                    typeflag: b'1',
                    link: name.as_bytes(),
                    ..H::default()
                },
                b"",
            );
        }
    }
    // A directory full of files replaced by a file (one without an entry: the times of a
    // directory entry are set at the end, which would fail), then a file in a fresh
    // directory.
    if replace {
        t.file("d0/t", b"now a file");
    }
    t.dir("z/");
    t.file("z/after", b"after");
    t.finish()
}

#[test]
fn many_small_files_apply_as_one_by_one() {
    register_like_sequential(None, &many_files_tar(3000, 23, 0, false), true);
    register_like_sequential(None, &many_files_tar(1000, 7, 3, true), false);
}

#[test]
fn a_child_layer_overwriting_its_parents_files_applies_as_one_by_one() {
    // On vfs a layer starts as a copy of its parent: most files already exist.
    let parent = many_files_tar(1500, 17, 0, true);
    let mut t = Tar::default();
    // Entries for the directories changed, so that their times are the layer's.
    for d in 0..17 {
        t.dir(&format!("d{d}/"));
    }
    t.dir("d2/s/");
    for i in (0..2000).step_by(2) {
        let d = i % 17;
        t.file(&format!("d{d}/f{i}"), &noise(i as u64 + 5, i % 3000));
    }
    t.file("d1/.wh.f1", b"");
    t.file("d2/s/new", b"new");
    t.file("d3/.wh..wh..opq", b"");
    t.file("d3/f3", b"again");
    register_like_sequential(Some(&parent), &t.finish(), true);
}

#[test]
fn the_same_file_twice_in_one_layer_keeps_the_later_one() {
    let mut t = Tar::default();
    t.dir("d/");
    for i in 0..50 {
        t.file(&format!("d/f{i}"), b"first");
    }
    for i in 0..50 {
        t.file(&format!("/d/f{i}"), format!("second {i}").as_bytes());
    }
    let tar = t.finish();
    register_like_sequential(None, &tar, false);
    let env = Env::new();
    let h = env.store.register(&tar[..], None).expect("register");
    assert_eq!(
        fs::read(env.dir_of(&h).join("d/f7")).expect("f7"),
        b"second 7"
    );
}

#[test]
fn a_hard_link_to_a_file_just_written_links_it() {
    let mut t = Tar::default();
    t.dir("d/");
    for i in 0..50 {
        t.file(&format!("d/f{i}"), format!("content {i}").as_bytes());
        t.entry(
            H {
                name: format!("d/h{i}").as_bytes(),
                typeflag: b'1',
                link: format!("d/f{i}").as_bytes(),
                ..H::default()
            },
            b"",
        );
    }
    let tar = t.finish();
    register_like_sequential(None, &tar, true);
    let env = Env::new();
    let h = env.store.register(&tar[..], None).expect("register");
    let dir = env.dir_of(&h);
    let (f, l) = (
        fs::metadata(dir.join("d/f9")).expect("f9"),
        fs::metadata(dir.join("d/h9")).expect("h9"),
    );
    assert_eq!((f.ino(), f.nlink()), (l.ino(), 2));
}

#[test]
fn a_whiteout_of_a_file_just_written_removes_it_or_is_refused_on_overlay2() {
    let mut t = Tar::default();
    t.dir("d/");
    for i in 0..20 {
        t.file(&format!("d/f{i}"), b"x");
    }
    t.file("d/.wh.f5", b"");
    let tar = t.finish();
    let env = Env::new();
    let h = env.store.register(&tar[..], None).expect("register");
    let dir = env.dir_of(&h);
    assert!(!dir.join("d/f5").exists());
    assert!(dir.join("d/f6").exists());

    // overlay2: the whiteout device cannot be made where the file is (as in dockerd).
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(store) = overlay2_env(tmp.path()) else {
        return;
    };
    let reference = tmp.path().join("reference");
    fs::create_dir(&reference).expect("mkdir");
    let seq = apply_sequentially(&tar, &reference, WhiteoutFormat::Overlay)
        .expect_err("sequential apply");
    let msg = content_error(store.register(&tar[..], None).expect_err("overlay2")).to_string();
    assert!(msg.contains("whiteout") && msg.contains("d/f5"), "{msg}");
    assert!(seq.to_string().contains("whiteout"), "{seq}");
    assert_eq!(store.len(), 0);
}

/// A tar whose file `d/bad{k}` carries an extended attribute larger than the kernel takes
/// (`E2BIG` from the worker), among many good files; `then` adds members after them.
fn tar_with_failing_files(then: impl FnOnce(&mut Tar)) -> Vec<u8> {
    let big = vec![b'v'; 70_000];
    let mut t = Tar::default();
    t.dir("d/");
    for i in 0..200 {
        if i == 120 || i == 150 {
            t.pax(&[("SCHILY.xattr.user.big", &big[..])]);
            t.file(&format!("d/bad{i}"), b"bad");
        } else {
            t.file(&format!("d/f{i}"), b"good");
        }
    }
    then(&mut t);
    t.finish()
}

#[test]
fn a_failing_file_is_reported_first_in_stream_order_and_leaves_nothing() {
    let tars = [
        tar_with_failing_files(|_| {}),
        // A later member the main thread refuses must not hide the earlier failure.
        tar_with_failing_files(|t| {
            t.file("../escape", b"x");
        }),
        tar_with_failing_files(|t| {
            for i in 0..200 {
                t.file(&format!("d/g{i}"), b"more");
            }
        }),
    ];
    for tar in &tars {
        assert_refused_naming(tar, "d/bad120");
    }
}

/// `tar` is refused naming `name` by `register` on vfs and on overlay2 and by the
/// sequential `Applier`, and nothing of it is left in either store.
fn assert_refused_naming(tar: &[u8], name: &str) {
    let env = Env::new();
    let msg = content_error(env.store.register(tar, None).expect_err("register")).to_string();
    assert!(msg.contains(name), "{msg}");
    env.assert_clean(0);
    let reference = env.tmp.path().join("reference");
    fs::create_dir(&reference).expect("mkdir");
    let seq = apply_sequentially(tar, &reference, WhiteoutFormat::Remove).expect_err("seq");
    assert!(seq.to_string().contains(name), "{seq}");

    let tmp = tempfile::tempdir().expect("tempdir");
    if let Some(store) = overlay2_env(tmp.path()) {
        let msg = content_error(store.register(tar, None).expect_err("overlay2")).to_string();
        assert!(msg.contains(name), "{msg}");
        assert_eq!(store.len(), 0);
        let left: Vec<_> = fs::read_dir(tmp.path().join("overlay2"))
            .expect("overlay2 dir")
            .map(|e| e.expect("entry").file_name())
            .filter(|n| n != "l")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

#[test]
fn a_file_under_a_file_is_refused_naming_it() {
    let mut t = Tar::default();
    t.dir("d/");
    for i in 0..100 {
        t.file(&format!("d/f{i}"), b"x");
    }
    t.file("d/f50/inner", b"y");
    assert_refused_naming(&t.finish(), "d/f50/inner");
}

/// Files are created with their member's permission bits and only changed where that was
/// not enough (the umask took bits away, a special bit, another owner): whatever the mode,
/// owner and size (small files go to the workers, large ones are written by the reader),
/// the result is the member's mode and owner.
#[test]
fn modes_and_owners_are_the_members_whatever_the_umask_took() {
    let env = Env::new();
    let cases: [(u32, u32); 9] = [
        (0o644, 0),
        (0o666, 0),
        (0o777, 0),
        (0o000, 0),
        (0o444, 1000),
        (0o4755, 0),
        (0o4755, 1000),
        (0o2711, 1000),
        (0o1777, 0),
    ];
    let mut t = Tar::default();
    let mut names = Vec::new();
    for (i, (mode, uid)) in cases.iter().enumerate() {
        for size in [3usize, 300_000] {
            let name = format!("f{i}-{size}");
            t.entry(
                H {
                    name: name.as_bytes(),
                    mode: *mode,
                    uid: *uid,
                    ..H::default()
                },
                &vec![b'x'; size],
            );
            names.push((name, *mode, *uid));
        }
    }
    let h = env.store.register(&t.finish()[..], None).expect("register");
    let d = env.dir_of(&h);
    let root = fs::metadata("/proc/self").expect("proc").uid() == 0;
    for (name, mode, uid) in names {
        let m = fs::symlink_metadata(d.join(&name)).expect("file");
        assert_eq!(m.permissions().mode() & 0o7777, mode, "{name}: mode");
        if root {
            assert_eq!(m.uid(), uid, "{name}: owner");
        }
    }
    // The stream read back is the one registered.
    assert!(env.stream(&h).is_ok());
}
