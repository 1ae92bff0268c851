//! Shared helpers for imgstore's tests: fixture roots and running the binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's `tests/fixtures` directory.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// The four dockerd 20.10 fixture names.
pub const FIXTURES: [&str; 4] = [
    "dockerroot-01-after-load",
    "dockerroot-02-after-build",
    "dockerroot-04-after-partial-rm",
    "dockerroot-05-after-full-rm",
];

/// Extracts `dockerd-20.10/<name>.tar.gz` into a fresh temp dir; returns (guard, data root).
pub fn extract(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let tgz = fixtures_dir()
        .join("dockerd-20.10")
        .join(format!("{name}.tar.gz"));
    let file = std::fs::File::open(&tgz).expect("fixture tarball");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive.set_preserve_permissions(true);
    archive.unpack(dir.path()).expect("unpack fixture");
    let root = dir.path().join(name);
    (dir, root)
}

/// The expected output file `dockerd-20.10/<name>.expected/<file>`.
pub fn expected(name: &str, file: &str) -> String {
    let p = fixtures_dir()
        .join("dockerd-20.10")
        .join(format!("{name}.expected"))
        .join(file);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Where the tests' runs of the binary keep their snapshot cache: beneath the target
/// directory, never the user's cache.
pub fn cache_home() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("imgstore-test-cache")
}

/// The `imgstore` binary, with its snapshot cache in [`cache_home`].
pub fn imgstore() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_imgstore"));
    c.env("XDG_CACHE_HOME", cache_home());
    c
}

/// Runs `imgstore --data-root <root> <args>`.
pub fn run(root: &Path, args: &[&str]) -> Output {
    imgstore()
        .arg("--data-root")
        .arg(root)
        .args(args)
        .env_remove("IMGSTORE_NOW")
        .output()
        .expect("run imgstore")
}

/// Runs with a fixed "now".
pub fn run_at(root: &Path, now: &str, args: &[&str]) -> Output {
    imgstore()
        .arg("--data-root")
        .arg(root)
        .args(args)
        .env("IMGSTORE_NOW", now)
        .output()
        .expect("run imgstore")
}

/// Stdout of a successful run.
pub fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "imgstore failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

/// JSON lines as sorted values, with `CreatedSince` removed (it depends on "now").
pub fn json_lines_without_since(text: &str) -> Vec<serde_json::Value> {
    let mut v: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("json line");
            if let Some(o) = v.as_object_mut() {
                o.remove("CreatedSince");
            }
            v
        })
        .collect();
    v.sort_by_key(|x| x.to_string());
    v
}

/// The lines of `text`, sorted.
pub fn sorted_lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(str::to_owned).collect();
    v.sort();
    v
}

/// Extracts `wave2/<name>.tar.gz` (a data root with layer content) into a fresh temp dir,
/// without its devices and FIFOs (they need root, and reading layers never opens them);
/// returns (guard, data root).
pub fn extract_wave2(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let tgz = fixtures_dir().join("wave2").join(format!("{name}.tar.gz"));
    let file = std::fs::File::open(&tgz).expect("fixture tarball");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive.set_preserve_permissions(true);
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let kind = entry.header().entry_type();
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            continue;
        }
        entry.unpack_in(dir.path()).expect("unpack");
    }
    let root = dir.path().join(name);
    (dir, root)
}
