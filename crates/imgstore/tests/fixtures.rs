//! `ls`, `inspect`, `history`, `tree` and `fsck` on every dockerd 20.10 fixture root, compared
//! with what dockerd and the docker CLI printed for the same root (`*.expected/`).

use crate::common;

use common::{
    FIXTURES, expected, extract, json_lines_without_since, run, run_at, sorted_lines, stdout_ok,
};
use serde_json::Value;

#[test]
fn ls_json_matches_dockerd_for_every_fixture() {
    for name in FIXTURES {
        let (_guard, root) = extract(name);
        for (file, args) in [
            (
                "ls.json",
                vec!["ls", "--no-trunc", "--format", "{{json .}}"],
            ),
            (
                "ls-a.json",
                vec!["ls", "-a", "--no-trunc", "--format", "json"],
            ),
            (
                "ls-a-digests.json",
                vec!["ls", "-a", "--digests", "--no-trunc", "--format", "json"],
            ),
        ] {
            let out = stdout_ok(&run(&root, &args));
            let want = expected(name, file);
            assert_eq!(
                json_lines_without_since(&out),
                json_lines_without_since(&want),
                "{name} {file}"
            );
            // Byte-level: same keys in the same order, same Go escaping.
            let strip = |s: &str| -> Vec<String> {
                let mut v: Vec<String> = s
                    .lines()
                    .map(|l| {
                        let i = l.find("\"CreatedSince\"").expect("CreatedSince key");
                        let j = l[i..].find(",\"Digest\"").expect("Digest key") + i;
                        format!("{}{}", &l[..i], &l[j + 1..])
                    })
                    .collect();
                v.sort();
                v
            };
            assert_eq!(strip(&out), strip(&want), "{name} {file} bytes");
        }
    }
}

#[test]
fn ls_json_created_since_with_fixed_clock() {
    // dockerd-20.10 fixture 02 was listed at about 02:26:30 UTC.
    let name = "dockerroot-02-after-build";
    let (_guard, root) = extract(name);
    let out = stdout_ok(&run_at(
        &root,
        "2026-11-30T02:26:30Z",
        &["ls", "-a", "--no-trunc", "--format", "json"],
    ));
    assert_eq!(
        sorted_lines(&out),
        sorted_lines(&expected(name, "ls-a.json"))
    );
}

#[test]
fn inspect_matches_dockerd_byte_for_byte() {
    for name in FIXTURES {
        let (_guard, root) = extract(name);
        let ids = stdout_ok(&run(&root, &["ls", "-a", "-q", "--no-trunc"]));
        let mut ids: Vec<&str> = ids.lines().collect();
        ids.sort();
        ids.dedup();
        let want = expected(name, "inspect.json");
        if ids.is_empty() {
            assert_eq!(want, "[]\n");
            continue;
        }
        let mut args = vec!["inspect"];
        args.extend(ids.iter().copied());
        let out = stdout_ok(&run(&root, &args));
        assert_eq!(out, want, "{name} inspect");
    }
}

/// The overlay2 root dockerd 20.10 wrote: `inspect` (with `GraphDriver`) byte for byte, its
/// data root written as `/var/lib/docker`. Devices and FIFOs of the layers' content are not
/// extracted (they need root, and inspect does not read content).
#[test]
fn overlay2_inspect_matches_dockerd_byte_for_byte() {
    let (_dir, root) = extract_o2root();
    let want = std::fs::read_to_string(
        common::fixtures_dir().join("wave2/o2root-after-load.expected/inspect.json"),
    )
    .expect("expected inspect");
    let ids = stdout_ok(&run(&root, &["ls", "-a", "-q", "--no-trunc"]));
    let mut ids: Vec<&str> = ids.lines().collect();
    ids.sort();
    ids.dedup();
    let mut args = vec!["inspect"];
    args.extend(ids.iter().copied());
    let out = stdout_ok(&run(&root, &args));
    let out = out.replace(&root.display().to_string(), "/var/lib/docker");
    assert_eq!(out, want);
}

/// `fsck` on dockerd's overlay2 root finds nothing; then each kind of damage to the driver's
/// directory is found, and a directory nothing names is only a note.
#[test]
fn fsck_knows_overlay2() {
    let (_dir, root) = extract_o2root();
    let fsck = |root: &std::path::Path| {
        let out = run(root, &["fsck"]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = fsck(&root);
    assert_eq!(code, Some(0), "{text}");
    let o2 = root.join("overlay2");
    // A directory of another user of the driver (BuildKit): reported, not damage.
    std::fs::create_dir(o2.join("buildkit-snapshot-1")).expect("mkdir");
    let (code, text) = fsck(&root);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("driver-unnamed") && text.contains("buildkit-snapshot-1"),
        "{text}"
    );
    // What an interrupted write of ours left.
    let partial = format!("imgstore-partial-{}", "ab".repeat(32));
    std::fs::create_dir(o2.join(&partial)).expect("mkdir");
    let (code, text) = fsck(&root);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("leftover") && text.contains(&partial),
        "{text}"
    );
    std::fs::remove_dir(o2.join(&partial)).expect("rm");
    // A layer's l/ link gone, and so the lower of the layers above it.
    let base = "dfa385424919f3f47ccd3c242cd82459f032e86e0444eef40fed61060248a2d0";
    let short = std::fs::read_to_string(o2.join(base).join("link")).expect("link");
    std::fs::remove_file(o2.join("l").join(&short)).expect("rm link");
    let (code, text) = fsck(&root);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("driver-link") && text.contains(&short),
        "{text}"
    );
    assert!(
        text.contains("driver-lower") && text.contains(&format!("l/{short}")),
        "{text}"
    );
    // A dangling link.
    std::os::unix::fs::symlink("../nothing/diff", o2.join("l/AAAAAAAAAAAAAAAAAAAAAAAAAA"))
        .expect("symlink");
    let (_, text) = fsck(&root);
    assert!(
        text.contains("AAAAAAAAAAAAAAAAAAAAAAAAAA") && text.contains("../nothing/diff"),
        "{text}"
    );
}

/// dockerd's overlay2 root, extracted without its devices and FIFOs (they need root, and
/// neither inspect nor fsck reads content).
fn extract_o2root() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let tgz = common::fixtures_dir().join("wave2/o2root-after-load.tar.gz");
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
    let root = dir.path().join("o2root-after-load");
    (dir, root)
}

#[test]
fn inspect_by_reference_and_short_id() {
    let name = "dockerroot-02-after-build";
    let (_guard, root) = extract(name);
    let by_tag = stdout_ok(&run(&root, &["inspect", "peer/child:1"]));
    let by_short = stdout_ok(&run(&root, &["inspect", "2c8e"]));
    let by_full = stdout_ok(&run(
        &root,
        &[
            "inspect",
            "sha256:2c8eeb116eab69faa88d6672e0cb055ccb79d72546b28882234dd3acc54c4625",
        ],
    ));
    assert_eq!(by_tag, by_short);
    assert_eq!(by_tag, by_full);
    let v: Value = serde_json::from_str(&by_tag).expect("json");
    assert_eq!(v[0]["RepoTags"][0], "peer/child:1");
    // `base` means base:latest.
    let base = stdout_ok(&run(&root, &["inspect", "base"]));
    let v: Value = serde_json::from_str(&base).expect("json");
    assert_eq!(
        v[0]["Id"],
        "sha256:7db95e6e4fe3a141e68c2ff6cc0267d1fb63728cf6b9fa326a05ecb3b43ea6fe"
    );
    // Not found: the found ones are printed, the error goes to stderr, exit 1.
    let out = run(&root, &["inspect", "base", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "imgstore: No such image: nosuch:latest\n"
    );
}

#[test]
fn table_output_like_docker() {
    let name = "dockerroot-02-after-build";
    let (_guard, root) = extract(name);
    let out = stdout_ok(&run_at(&root, "2026-11-30T02:26:30Z", &["ls"]));
    assert_eq!(
        out,
        "REPOSITORY   TAG       IMAGE ID       CREATED         SIZE\n\
         peer/child   1         2c8eeb116eab   8 minutes ago   97B\n\
         base         latest    7db95e6e4fe3   9 minutes ago   80B\n\
         peer/base    v1        7db95e6e4fe3   9 minutes ago   80B\n"
    );
    let q = stdout_ok(&run(&root, &["images", "-q"]));
    assert_eq!(q, "2c8eeb116eab\n7db95e6e4fe3\n7db95e6e4fe3\n");
    let all = stdout_ok(&run(&root, &["ls", "-a", "-q"]));
    assert_eq!(all.lines().count(), 5);
}

#[test]
fn ls_filters() {
    let name = "dockerroot-02-after-build";
    let (_guard, root) = extract(name);
    let q = |args: &[&str]| {
        let mut a = vec!["ls", "-q"];
        a.extend_from_slice(args);
        stdout_ok(&run(&root, &a))
    };
    assert_eq!(
        q(&["--filter", "reference=peer/*"]),
        "2c8eeb116eab\n7db95e6e4fe3\n"
    );
    assert_eq!(q(&["--filter", "reference=base"]), "7db95e6e4fe3\n");
    assert_eq!(q(&["peer/child"]), "2c8eeb116eab\n");
    assert_eq!(q(&["-a", "--filter", "dangling=true"]), "");
    assert_eq!(q(&["-a", "--filter", "dangling=false"]).lines().count(), 3);
    assert_eq!(q(&["--filter", "label=stage=child"]), "2c8eeb116eab\n");
    let bad = run(&root, &["ls", "--filter", "dangling=maybe"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr),
        "imgstore: Invalid filter 'dangling=maybe'\n"
    );
}

#[test]
fn ls_digests_table_for_fixture_04() {
    let name = "dockerroot-04-after-partial-rm";
    let (_guard, root) = extract(name);
    let out = stdout_ok(&run_at(&root, "2026-11-30T02:27:00Z", &["ls", "--digests"]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("REPOSITORY            TAG       DIGEST"));
    assert!(lines[1].starts_with(
        "127.0.0.1:5000/test   1         sha256:55cedde171f6c6f7dd4a001c6cb59c52e635d0ddd301641a4f2f9733fe7bafe7   7db95e6e4fe3"
    ));
    assert!(lines[2].starts_with("peer/base             v1        <none>"));
}

#[test]
fn history_follows_dockerd() {
    let name = "dockerroot-02-after-build";
    let (_guard, root) = extract(name);
    let out = stdout_ok(&run_at(
        &root,
        "2026-11-30T02:26:30Z",
        &["history", "peer/child:1"],
    ));
    let want = "\
IMAGE          CREATED         CREATED BY                                      SIZE      COMMENT
2c8eeb116eab   8 minutes ago   /bin/sh -c #(nop)  ENV FOO=bar                  0B        
8198421c8dc5   8 minutes ago   /bin/sh -c #(nop)  LABEL stage=child            0B        
2beca2958a48   8 minutes ago   /bin/sh -c #(nop) COPY file:7b622272c0d090ba…   17B       
7db95e6e4fe3   9 minutes ago   umoci config                                    0B        
<missing>      9 minutes ago   umoci repack                                    19B       
<missing>      9 minutes ago   umoci repack                                    30B       
<missing>      9 minutes ago   umoci repack                                    31B       
";
    assert_eq!(out, want);
    let q = stdout_ok(&run(&root, &["history", "-q", "--no-trunc", "base"]));
    assert_eq!(
        q,
        "sha256:7db95e6e4fe3a141e68c2ff6cc0267d1fb63728cf6b9fa326a05ecb3b43ea6fe\n<missing>\n<missing>\n<missing>\n"
    );
    let raw = stdout_ok(&run(
        &root,
        &["history", "-H=false", "--format", "json", "base"],
    ));
    let first: Value = serde_json::from_str(raw.lines().next().expect("line")).expect("json");
    assert_eq!(first["CreatedAt"], "2026-11-30T02:16:59Z");
    assert_eq!(first["Size"], "0");
}

#[test]
fn tree_draws_the_graph() {
    let name = "dockerroot-02-after-build";
    let (_guard, root) = extract(name);
    let out = stdout_ok(&run(&root, &["tree"]));
    assert_eq!(
        out,
        "7db95e6e4fe3 base:latest, peer/base:v1 80B\n\
         └── 2beca2958a48 <none> 97B\n    \
         └── 8198421c8dc5 <none> 97B\n        \
         └── 2c8eeb116eab peer/child:1 97B\n"
    );
    let sub = stdout_ok(&run(&root, &["tree", "8198"]));
    assert_eq!(
        sub,
        "8198421c8dc5 <none> 97B\n└── 2c8eeb116eab peer/child:1 97B\n"
    );
}

#[test]
fn fsck_finds_every_fixture_healthy() {
    for name in FIXTURES {
        let (_guard, root) = extract(name);
        let out = run(&root, &["fsck"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn errors_are_one_line_and_exit_1() {
    let name = "dockerroot-02-after-build";
    let (_guard, root) = extract(name);
    for args in [
        vec!["inspect", "Bad:Ref"],
        vec!["history", "nosuch"],
        vec!["tag", "nosuch", "x"],
        vec!["tag", "base", "Bad"],
        vec!["rm", "nosuch"],
        vec!["ls", "--format", "{{.Nope}}"],
        vec!["history", "--format", "{{if .ID}}x{{end", "base"],
        vec!["inspect", "-f", "{{.Id}} {{.Nope}}", "base"],
        vec!["fsck", "--format", "yaml"],
        vec!["frobnicate"],
        vec!["inspect"],
        vec!["tree", ""],
        vec!["inspect", ""],
        vec!["inspect", "sha256:"],
        vec!["inspect", "@@@"],
    ] {
        let out = run(&root, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("imgstore: "), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    let out = run(std::path::Path::new("/nonexistent/root"), &["ls"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn ls_before_and_since_name_the_missing_image_as_dockerd() {
    // dockerd 20.10's Images() resolves before/since with GetImage: its error, not a filter's.
    let name = "dockerroot-02-after-build";
    let (_guard, root) = extract(name);
    for (args, want) in [
        (
            vec!["ls", "-f", "before=nonexist"],
            "No such image: nonexist:latest",
        ),
        (
            vec!["ls", "-f", "since=nonexist:1"],
            "No such image: nonexist:1",
        ),
        (
            vec!["ls", "-f", "since=base", "-f", "since=peer/nonexist"],
            "No such image: peer/nonexist:latest",
        ),
    ] {
        let out = run(&root, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("imgstore: {want}\n"),
            "{args:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // Images that exist still filter.
    let out = stdout_ok(&run(&root, &["ls", "-q", "-f", "since=base"]));
    assert_eq!(out, "2c8eeb116eab\n");
}

#[test]
fn shipped_extracted_root_matches_its_tarball() {
    // tests/fixtures/roots/dockerroot-02-after-build is the README's first command's data root:
    // the tarball extracted and committed (git keeps no empty directories).
    let name = "dockerroot-02-after-build";
    let shipped = common::fixtures_dir().join("roots").join(name);
    let out = stdout_ok(&run(
        &shipped,
        &["ls", "-a", "--no-trunc", "--format", "json"],
    ));
    assert_eq!(
        json_lines_without_since(&out),
        json_lines_without_since(&expected(name, "ls-a.json"))
    );
    assert_eq!(run(&shipped, &["fsck"]).status.code(), Some(0));
}

#[test]
fn custom_format_templates() {
    let name = "dockerroot-02-after-build";
    let (_guard, root) = extract(name);
    let out = stdout_ok(&run(
        &root,
        &["ls", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
    ));
    assert_eq!(
        out,
        "peer/child:1 2c8eeb116eab\nbase:latest 7db95e6e4fe3\npeer/base:v1 7db95e6e4fe3\n"
    );
    let out = stdout_ok(&run(
        &root,
        &[
            "ls",
            "-a",
            "--format",
            "table {{.ID}}\\t{{.Repository}}\\t{{.Size}}",
        ],
    ));
    assert_eq!(out.lines().next(), Some("IMAGE ID       REPOSITORY   SIZE"));
    assert_eq!(out.lines().count(), 6);
    let out = stdout_ok(&run(
        &root,
        &["history", "--format", "{{.ID}} {{.Size}}", "base"],
    ));
    assert_eq!(
        out,
        "7db95e6e4fe3 0B\n<missing> 19B\n<missing> 30B\n<missing> 31B\n"
    );
    let bad = run(&root, &["ls", "--format", "{{.Nope}}"]);
    assert_eq!(bad.status.code(), Some(1));
}

/// Runs `imgstore --data-root <root> <args>` and returns its stdout and peak RSS in KiB
/// (from `wait4`, so other tests' processes do not count).
// No safe call returns a child's rusage (rustix has no wait4): libc it is.
#[allow(unsafe_code)]
fn run_with_peak_rss(root: &std::path::Path, args: &[&str]) -> (String, i64) {
    use std::io::Read as _;
    // Reaped by `wait4` below, which also gives its resource usage.
    #[allow(clippy::zombie_processes)]
    let mut child = common::imgstore()
        .arg("--data-root")
        .arg(root)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn imgstore");
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read stdout");
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, which nothing else waits for.
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(got, pid, "wait4");
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    (out, usage.ru_maxrss)
}

#[test]
fn ls_memory_grows_with_the_tags_not_their_square() {
    // Before rows shared their image's tag list, 3,000 tags on one image took 500 MB.
    let (_guard, root) = extract("dockerroot-02-after-build");
    let repos = root.join("image/vfs/repositories.json");
    let mut doc: Value =
        serde_json::from_slice(&std::fs::read(&repos).expect("read")).expect("json");
    let base = "sha256:7db95e6e4fe3a141e68c2ff6cc0267d1fb63728cf6b9fa326a05ecb3b43ea6fe";
    let tags = doc["Repositories"]["base"]
        .as_object_mut()
        .expect("base repository");
    const N: usize = 4000;
    for i in 0..N {
        tags.insert(format!("base:t{i}"), Value::from(base));
    }
    std::fs::write(&repos, serde_json::to_vec(&doc).expect("json")).expect("write");
    for args in [vec!["ls"], vec!["ls", "--digests", "--format", "json"]] {
        let (out, peak_kib) = run_with_peak_rss(&root, &args);
        // Also base:latest, peer/base:v1 and peer/child:1 (and the table's header).
        assert!(out.lines().count() >= N + 3, "{args:?}");
        assert!(
            peak_kib < 200 * 1024,
            "{args:?}: peak RSS {peak_kib} KiB for {N} tags"
        );
    }
}
