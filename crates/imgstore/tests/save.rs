//! `imgstore save` against the real thing: the archive docker wrote for the same images,
//! byte for byte; then dockerd, skopeo and umoci reading what imgstore wrote.

use crate::common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{extract_wave2, fixtures_dir, stdout_ok};
use test_dockerd::{Dockerd, skip_reason};

/// `docker save bbapp:1 bb:1` of dockerd 20.10, from which both wave2 roots were loaded.
fn docker_archive() -> Vec<u8> {
    std::fs::read(fixtures_dir().join("wave2/bbapp.docker-save.tar")).expect("fixture")
}

/// When docker wrote its archive: the time of the one layer directory it wrote as a link
/// (docker leaves such a directory the time it created it; the rest comes from the images).
fn docker_save_time() -> String {
    let archive = docker_archive();
    let mut ar = tar::Archive::new(&archive[..]);
    for e in ar.entries().expect("entries") {
        let e = e.expect("entry");
        if e.header().entry_type().is_symlink() {
            return e.header().mtime().expect("mtime").to_string();
        }
    }
    panic!("no symlinked layer in docker's archive");
}

/// Runs imgstore on `root` with "now" = docker's save time.
fn imgstore(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imgstore"))
        .arg("--data-root")
        .arg(root)
        .args(args)
        .env("IMGSTORE_NOW", docker_save_time())
        .output()
        .expect("run imgstore")
}

/// The members of a tar: (name, content).
fn members(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut ar = tar::Archive::new(archive);
    ar.entries()
        .expect("entries")
        .map(|e| {
            let mut e = e.expect("entry");
            let name = e.path().expect("path").to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("read");
            (name, data)
        })
        .collect()
}

fn member(archive: &[u8], name: &str) -> Vec<u8> {
    members(archive)
        .into_iter()
        .find(|m| m.0 == name)
        .unwrap_or_else(|| panic!("{name} not in the archive"))
        .1
}

fn manifest(archive: &[u8]) -> serde_json::Value {
    serde_json::from_slice(&member(archive, "manifest.json")).expect("manifest.json")
}

/// Saves `images` from `root` to a file in `dir`; returns its bytes.
fn save(root: &Path, dir: &Path, file: &str, args: &[&str]) -> Vec<u8> {
    let out = dir.join(file);
    let mut all = vec!["save", "-o", out.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    stdout_ok(&imgstore(root, &all));
    std::fs::read(&out).expect("archive")
}

#[test]
fn archives_of_overlay2_and_vfs_roots_are_dockers_byte_for_byte() {
    let want = docker_archive();
    let tmp = tempfile::tempdir().expect("temp dir");
    for name in ["o2root-after-load", "vfsroot-after-load"] {
        let (_guard, root) = extract_wave2(name);
        let got = save(&root, tmp.path(), "out.tar", &["bbapp:1", "bb:1"]);
        assert!(
            got == want,
            "{name}: imgstore's archive differs from docker's"
        );
        // To standard output: the same bytes.
        let piped = imgstore(&root, &["save", "bbapp:1", "bb:1"]);
        assert!(
            piped.status.success(),
            "{}",
            String::from_utf8_lossy(&piped.stderr)
        );
        assert!(
            piped.stdout == want,
            "{name}: stdout differs from docker's archive"
        );
        assert!(
            piped.stderr.is_empty(),
            "quiet when stderr is not a terminal"
        );
    }
    // docker's -o file is private (a temp file renamed into place), and so is ours.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(tmp.path().join("out.tar"))
            .expect("out")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn images_are_chosen_as_docker_save_chooses_them() {
    let (_guard, root) = extract_wave2("vfsroot-after-load");
    let tmp = tempfile::tempdir().expect("temp dir");
    let bbapp = "a5e9e0a7537481435a384dc949f12fbbd0700efdcf64f5c88124497dd025748e";
    // A repository name: all its tags.
    let m = manifest(&save(&root, tmp.path(), "a.tar", &["bbapp"]));
    assert_eq!(m[0]["RepoTags"], serde_json::json!(["bbapp:1"]));
    // An ID (full, short, with or without sha256:): untagged, no `repositories`.
    for id in [
        bbapp,
        &bbapp[..12],
        &format!("sha256:{bbapp}"),
        &format!("sha256:{}", &bbapp[..8]),
    ] {
        let archive = save(&root, tmp.path(), "b.tar", &[id]);
        let m = manifest(&archive);
        assert_eq!(m.as_array().map(Vec::len), Some(1), "{id}");
        assert_eq!(m[0]["Config"], format!("{bbapp}.json"), "{id}");
        assert!(m[0]["RepoTags"].is_null(), "{id}: {m}");
        assert!(!members(&archive).iter().any(|x| x.0 == "repositories"));
    }
    // The same image twice: once, with its tag.
    let m = manifest(&save(
        &root,
        tmp.path(),
        "c.tar",
        &[&bbapp[..12], "bbapp:1", "bbapp"],
    ));
    assert_eq!(m.as_array().map(Vec::len), Some(1));
    assert_eq!(m[0]["RepoTags"], serde_json::json!(["bbapp:1"]));
}

#[test]
fn oci_layouts_hold_every_blob_and_the_tags() {
    let (_guard, root) = extract_wave2("o2root-after-load");
    let tmp = tempfile::tempdir().expect("temp dir");
    for compress in ["none", "gzip", "zstd"] {
        let archive = save(
            &root,
            tmp.path(),
            "oci.tar",
            &["bbapp:1", "bb:1", "--format", "oci", "--compress", compress],
        );
        let index: serde_json::Value =
            serde_json::from_slice(&member(&archive, "index.json")).expect("index.json");
        let names: Vec<&str> = index["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .map(|d| {
                d["annotations"]["io.containerd.image.name"]
                    .as_str()
                    .expect("name")
            })
            .collect();
        assert_eq!(
            names,
            ["docker.io/library/bbapp:1", "docker.io/library/bb:1"]
        );
        for (name, data) in members(&archive) {
            if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
                assert_eq!(digest_set::Digest::sha256(&data).hex(), hex, "{compress}");
            }
        }
        // Saving again gives the same bytes.
        let again = save(
            &root,
            tmp.path(),
            "oci2.tar",
            &["bbapp:1", "bb:1", "--format", "oci", "--compress", compress],
        );
        assert!(archive == again, "{compress}: not deterministic");
    }
}

/// Files in `dir` other than `keep`.
fn strays(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

#[test]
fn failures_are_one_line_and_leave_no_file() {
    let (_guard, root) = extract_wave2("vfsroot-after-load");
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("out.tar");
    let out_s = out.to_str().expect("utf-8");
    let one_line_failure = |o: &Output, needle: &str| {
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("imgstore: ") && err.contains(needle),
            "{err}"
        );
        assert!(o.stdout.is_empty());
    };
    // An unknown image, alone or after a good one.
    for args in [
        vec!["nope:1"],
        vec!["bbapp:1", "nope:1"],
        vec!["0123456789ab"],
    ] {
        let mut all = vec!["save", "-o", out_s];
        all.extend(args);
        one_line_failure(&imgstore(&root, &all), "No such image");
    }
    one_line_failure(
        &imgstore(&root, &["save", "nope"]),
        "No such image: nope:latest",
    );
    // Flags.
    one_line_failure(
        &imgstore(&root, &["save", "-o", out_s, "--format", "zip", "bbapp:1"]),
        "--format",
    );
    one_line_failure(
        &imgstore(
            &root,
            &["save", "-o", out_s, "--compress", "gzip", "bbapp:1"],
        ),
        "--compress",
    );
    // A directory that does not exist, a file where a directory should be.
    for bad in [
        tmp.path().join("missing/out.tar"),
        root.join("image/vfs/repositories.json/x"),
    ] {
        one_line_failure(
            &imgstore(
                &root,
                &["save", "-o", bad.to_str().expect("utf-8"), "bbapp:1"],
            ),
            "cannot write",
        );
    }
    assert_eq!(strays(tmp.path(), &[]), Vec::<String>::new());
    // A full disk (a file size limit: writes fail with EFBIG), over an existing file.
    std::fs::write(&out, b"old").expect("write");
    let o = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 512; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_imgstore"))
        .args([
            "--data-root",
            root.to_str().expect("utf-8"),
            "save",
            "-o",
            out_s,
            "bbapp:1",
        ])
        .output()
        .expect("run");
    one_line_failure(&o, "cannot write the archive");
    assert_eq!(
        std::fs::read(&out).expect("old file"),
        b"old",
        "the old file is intact"
    );
    assert_eq!(strays(tmp.path(), &["out.tar"]), Vec::<String>::new());
    // A layer whose content changed: the diff ID check fails, and nothing is left.
    std::fs::remove_file(&out).expect("rm");
    let busybox = std::fs::read_dir(root.join("vfs/dir"))
        .expect("vfs/dir")
        .map(|e| e.expect("entry").path().join("bin/busybox"))
        .find(|p| p.exists())
        .expect("a busybox");
    let mut data = std::fs::read(&busybox).expect("read");
    data[1000] ^= 1;
    for dir in std::fs::read_dir(root.join("vfs/dir")).expect("vfs/dir") {
        let p = dir.expect("entry").path().join("bin/busybox");
        if p.exists() {
            std::fs::write(&p, &data).expect("corrupt");
        }
    }
    one_line_failure(
        &imgstore(&root, &["save", "-o", out_s, "bb:1"]),
        "could not verify layer data",
    );
    assert_eq!(strays(tmp.path(), &[]), Vec::<String>::new());
}

/// The saved archives a dockerd, skopeo and umoci read: from the overlay2 root, in each format.
struct Saved {
    _tmp: tempfile::TempDir,
    docker: PathBuf,
    oci: PathBuf,
    oci_gzip: PathBuf,
    oci_gzip_one: PathBuf,
    oci_zstd: PathBuf,
}

fn saved_archives() -> Saved {
    let (_guard, root) = extract_wave2("o2root-after-load");
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = |n: &str| tmp.path().join(n);
    let run = |file: &str, extra: &[&str]| {
        let p = path(file);
        let mut args = vec!["save", "-o", p.to_str().expect("utf-8")];
        args.extend_from_slice(extra);
        stdout_ok(&imgstore(&root, &args));
        p
    };
    let docker = run("docker.tar", &["bbapp:1", "bb:1"]);
    let oci = run("oci.tar", &["bbapp:1", "--format", "oci"]);
    let oci_gzip = run(
        "oci-gzip.tar",
        &["bbapp:1", "bb:1", "--format", "oci", "--compress", "gzip"],
    );
    let oci_gzip_one = run(
        "oci-gzip-one.tar",
        &["bbapp:1", "--format", "oci", "--compress", "gzip"],
    );
    let oci_zstd = run(
        "oci-zstd.tar",
        &["bbapp:1", "--format", "oci", "--compress", "zstd"],
    );
    Saved {
        _tmp: tmp,
        docker,
        oci,
        oci_gzip,
        oci_gzip_one,
        oci_zstd,
    }
}

/// `docker images` as sorted `repo:tag id` lines.
fn listing(d: &Dockerd) -> Vec<String> {
    let out = d
        .docker_ok(&[
            "images",
            "--no-trunc",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
        ])
        .expect("docker images");
    common::sorted_lines(&out)
}

#[test]
fn dockerd_loads_and_runs_what_imgstore_saves() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipping: {reason}");
        return;
    }
    let s = saved_archives();
    let want = vec![
        "bb:1 sha256:1ec1a6bc0c27e6c00c4bbe6d025342aa9ec92b9ee0e221dbeb9a1cd828f56d1d".to_owned(),
        "bbapp:1 sha256:a5e9e0a7537481435a384dc949f12fbbd0700efdcf64f5c88124497dd025748e"
            .to_owned(),
    ];
    let run_output = std::fs::read_to_string(fixtures_dir().join("wave2/bbapp.run-output.txt"))
        .expect("run output");
    let expected_run: String = run_output
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect();
    let tmp = tempfile::tempdir().expect("temp dir");
    let d = Dockerd::start(&tmp.path().join("root")).expect("start dockerd");
    for archive in [&s.docker, &s.oci_gzip] {
        d.docker_ok(&["load", "-i", archive.to_str().expect("utf-8")])
            .unwrap_or_else(|e| panic!("load {}: {e}", archive.display()));
        assert_eq!(listing(&d), want, "after loading {}", archive.display());
        let ran = d
            .docker_ok(&["run", "--rm", "--network", "none", "bbapp:1"])
            .expect("docker run");
        assert_eq!(ran, expected_run, "docker run bbapp:1");
        d.docker_ok(&["rmi", "bbapp:1", "bb:1"]).expect("rmi");
        assert_eq!(listing(&d), Vec::<String>::new());
    }
    // An uncompressed OCI layout of one image loads too (docker 25's manifest.json).
    d.docker_ok(&["load", "-i", s.oci.to_str().expect("utf-8")])
        .expect("load oci");
    assert_eq!(listing(&d), want[1..]);
}

fn installed(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn tool_ok(cmd: &mut Command) -> String {
    let o = cmd.output().expect("run tool");
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn skopeo_and_umoci_read_what_imgstore_saves() {
    for tool in ["skopeo", "umoci"] {
        if !installed(tool) {
            eprintln!("skipping: {tool} is not installed");
            return;
        }
    }
    let s = saved_archives();
    let tmp = tempfile::tempdir().expect("temp dir");
    let arg = |kind: &str, p: &Path, r: &str| format!("{kind}:{}{r}", p.display());
    // docker-archive: each image by its tag.
    for (tag, id, layers) in [
        (
            "bbapp:1",
            "sha256:a5e9e0a7537481435a384dc949f12fbbd0700efdcf64f5c88124497dd025748e",
            4,
        ),
        (
            "bb:1",
            "sha256:1ec1a6bc0c27e6c00c4bbe6d025342aa9ec92b9ee0e221dbeb9a1cd828f56d1d",
            1,
        ),
    ] {
        let image = arg("docker-archive", &s.docker, &format!(":{tag}"));
        let raw = tool_ok(Command::new("skopeo").args(["inspect", "--raw", &image]));
        let manifest: serde_json::Value = serde_json::from_str(&raw).expect("manifest");
        assert_eq!(manifest["config"]["digest"], id, "{tag}");
        let out = tool_ok(Command::new("skopeo").args(["inspect", &image]));
        let inspect: serde_json::Value = serde_json::from_str(&out).expect("inspect");
        assert_eq!(
            inspect["Layers"].as_array().map(Vec::len),
            Some(layers),
            "{tag}"
        );
    }
    // OCI layouts: copied by skopeo, unpacked by umoci (0.4.7 reads no zstd layers).
    for (archive, unpack) in [
        (&s.oci, true),
        (&s.oci_gzip_one, true),
        (&s.oci_zstd, false),
    ] {
        let stem = archive
            .file_stem()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let layout = tmp.path().join(format!("layout-{stem}"));
        tool_ok(Command::new("skopeo").args([
            "copy",
            "-q",
            &arg("oci-archive", archive, ":1"),
            &format!("oci:{}:bbapp", layout.display()),
        ]));
        if !unpack {
            continue;
        }
        let bundle = layout.with_extension("bundle");
        tool_ok(Command::new("umoci").args([
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:bbapp", layout.display()),
            bundle.to_str().expect("utf-8"),
        ]));
        let rootfs = bundle.join("rootfs");
        assert_eq!(
            std::fs::read_to_string(rootfs.join("app/hello.txt")).expect("hello"),
            "hello from the fixture\n"
        );
        for present in ["bin/busybox", "keep", "d/new"] {
            assert!(rootfs.join(present).exists(), "{present} missing");
        }
        assert!(rootfs.join("bin/sh").is_symlink());
        // Deleted by whiteouts: a file and, through an opaque directory, a directory's content.
        for absent in ["gone", "d/a", "d/sub", "d/sym", "d/hard"] {
            assert!(!rootfs.join(absent).exists(), "{absent} should be deleted");
        }
    }
}

/// What docker loses (moby #22011): an image's repo digests go into both formats, and
/// `imgstore load` puts them back.
#[test]
fn repo_digests_survive_save_and_load() {
    let (_guard, root) = extract_wave2("vfsroot-after-load");
    let digest_ref =
        "bbapp@sha256:b17ae6908c1adb7314dc517a7d335ba526d8d782d0e711c3d9d0a1a4ceb9b03d";
    let repos = root.join("image/vfs/repositories.json");
    let mut refs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&repos).expect("read")).expect("json");
    refs["Repositories"]["bbapp"][digest_ref] =
        "sha256:a5e9e0a7537481435a384dc949f12fbbd0700efdcf64f5c88124497dd025748e".into();
    std::fs::write(&repos, serde_json::to_vec(&refs).expect("json")).expect("write");
    let tmp = tempfile::tempdir().expect("temp dir");
    for format in ["docker", "oci"] {
        let archive = tmp.path().join(format!("{format}.tar"));
        let archive_s = archive.to_str().expect("utf-8");
        stdout_ok(&imgstore(
            &root,
            &["save", "--format", format, "-o", archive_s, "bbapp:1"],
        ));
        let new_root = tmp.path().join(format!("root-{format}"));
        std::fs::create_dir(&new_root).expect("mkdir");
        let load = ["--storage-driver", "vfs", "load", "-q", "-i", archive_s];
        stdout_ok(&imgstore(&new_root, &load));
        let inspect = [
            "--storage-driver",
            "vfs",
            "inspect",
            "-f",
            "{{json .RepoDigests}}",
            "bbapp:1",
        ];
        let digests = stdout_ok(&imgstore(&new_root, &inspect));
        assert_eq!(digests.trim(), format!("[\"{digest_ref}\"]"), "{format}");
    }
}
