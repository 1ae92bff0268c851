//! `prune` and `df` checked against the real thing: the same `image prune`, `prune -a`,
//! `rmi -f` sequences run by dockerd 20.10 on one copy of a root and by imgstore on another
//! (vfs, and overlay2 with a container), with `docker system df` after each step; then
//! dockerd on imgstore's copy lists the same images and still starts the container.
//! Without dockerd, the same sequences run on imgstore alone against recorded expectations
//! of the simplest cases.

use crate::common;

use std::path::Path;
use std::process::Output;

use common::{extract, run, sorted_lines, stdout_ok};
use test_dockerd::{Dockerd, skip_reason};

/// The imgstore command for a docker command.
fn ours_for(step: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = step.iter().map(|s| (*s).to_owned()).collect();
    match step {
        ["image", "prune", ..] | ["system", "df", ..] => {
            args.remove(0);
        }
        ["rmi", ..] => args[0] = "rm".to_owned(),
        _ => {}
    }
    if args[0] == "system" {
        args.remove(0);
    }
    args
}

/// `docker image prune` prints its `deleted:`/`untagged:` lines in Go's random map order:
/// the same lines, in any order, between the same first and last lines.
fn same_prune_output(theirs: &str, ours: &str) -> bool {
    let (t, o): (Vec<&str>, Vec<&str>) = (theirs.lines().collect(), ours.lines().collect());
    t.len() == o.len()
        && t.first() == o.first()
        && t.last() == o.last()
        && sorted_lines(theirs) == sorted_lines(ours)
}

/// The images part of `docker system df` output: its first two lines, or with `-v` its
/// `Images space usage` section.
fn images_part(df: &str, verbose: bool) -> String {
    if !verbose {
        return df.lines().take(2).map(|l| format!("{l}\n")).collect();
    }
    let section = df
        .split("\nContainers space usage:")
        .next()
        .unwrap_or_default();
    format!("{}\n", section.trim_end_matches('\n'))
}

/// Runs `step` with docker on `d` and imgstore on `ours`; compares stdout (prune output as a
/// set of lines), exit status and error message.
fn step_matches(d: &Dockerd, ours: &Path, step: &[&str]) {
    let want: Output = d.docker(step).expect("run docker");
    let got = run(
        ours,
        &ours_for(step)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let (w, g) = (
        String::from_utf8_lossy(&want.stdout),
        String::from_utf8_lossy(&got.stdout),
    );
    let ok = if step.get(1) == Some(&"prune") {
        same_prune_output(&w, &g)
    } else {
        w == g
    };
    assert!(
        ok,
        "{step:?}: docker printed\n{w}imgstore printed\n{g}stderr: {}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(
        want.status.success(),
        got.status.success(),
        "{step:?}: docker: {}; imgstore: {}",
        String::from_utf8_lossy(&want.stderr),
        String::from_utf8_lossy(&got.stderr)
    );
    if !got.status.success() {
        let ours_err = String::from_utf8_lossy(&got.stderr);
        let msg = ours_err.trim().trim_start_matches("imgstore: ");
        assert!(
            String::from_utf8_lossy(&want.stderr).contains(msg),
            "{step:?}: docker said {:?}, imgstore {msg:?}",
            String::from_utf8_lossy(&want.stderr)
        );
    }
}

/// `docker system df` (and `-v`) on `d` against `imgstore df` on `ours`.
fn df_matches(d: &Dockerd, ours: &Path, when: &str) {
    for verbose in [false, true] {
        let mut args = vec!["system", "df"];
        if verbose {
            args.push("-v");
        }
        let theirs = d.docker_ok(&args).expect("docker system df");
        let mine = stdout_ok(&run(
            ours,
            &ours_for(&args)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        ));
        assert_eq!(
            mine,
            images_part(&theirs, verbose),
            "df{} {when}: docker printed\n{theirs}",
            if verbose { " -v" } else { "" }
        );
    }
}

fn listing(d: &Dockerd) -> Vec<String> {
    sorted_lines(
        &d.docker_ok(&[
            "images",
            "-a",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Repository}}:{{.Tag}}",
        ])
        .expect("docker images"),
    )
}

fn our_listing(root: &Path) -> Vec<String> {
    sorted_lines(&stdout_ok(&run(
        root,
        &[
            "ls",
            "-a",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Repository}}:{{.Tag}}",
        ],
    )))
}

fn copy_root(from: &Path, to: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

/// dockerroot-02 (vfs; a build's intermediate images): `rmi --no-prune` leaves dangling
/// parents, `image prune` deletes them, `prune -a` the rest; the same lines and reclaimed
/// space as dockerd, and `df` as `docker system df` after each step.
#[test]
fn prune_and_df_match_dockerd_on_vfs() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        let (_g, root) = extract("dockerroot-02-after-build");
        // Nothing dangling: docker prints only the total.
        assert_eq!(
            stdout_ok(&run(&root, &["prune", "-f"])),
            "Total reclaimed space: 0B\n"
        );
        return;
    }
    let (_ga, theirs) = extract("dockerroot-02-after-build");
    let (_gb, ours) = extract("dockerroot-02-after-build");
    {
        let d = Dockerd::start(&theirs).expect("start dockerd");
        df_matches(&d, &ours, "at first");
        for step in [
            &["image", "prune", "-f"][..],
            &["rmi", "--no-prune", "peer/child:1"],
            &["image", "prune", "-f"],
            &["image", "prune", "-f"],
            &["tag", "base:latest", "x:1"],
            &[
                "image",
                "prune",
                "-a",
                "-f",
                "--filter",
                "until=2000-01-01T00:00:00Z",
            ],
            &["image", "prune", "-a", "-f"],
        ] {
            step_matches(&d, &ours, step);
            df_matches(&d, &ours, &format!("after {step:?}"));
        }
        assert_eq!(our_listing(&ours), listing(&d));
    }
    let d = Dockerd::start(&ours).expect("start dockerd on imgstore's copy");
    assert_eq!(listing(&d), our_listing(&ours));
    stdout_ok(&run(&ours, &["fsck"]));
}

/// overlay2 with a container dockerd created on `bbapp:1`: prune respects it, `rmi -f`
/// removes its image anyway (as dockerd does), and dockerd on imgstore's copy still starts
/// the container.
#[test]
fn prune_and_df_match_dockerd_with_a_container() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let st = std::process::Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xzf"])
        .arg(common::fixtures_dir().join("wave2/o2root-after-load.tar.gz"))
        .arg("-C")
        .arg(dir.path())
        .status()
        .expect("tar");
    assert!(st.success());
    let base = dir.path().join("o2root-after-load");
    {
        let d = Dockerd::start_with_driver(&base, "overlay2").expect("start dockerd");
        d.docker_ok(&["create", "--network", "none", "--name", "c1", "bbapp:1"])
            .expect("docker create");
        d.docker_ok(&["tag", "bb:1", "other/bb:x"])
            .expect("docker tag");
    }
    let theirs = dir.path().join("theirs");
    let ours = dir.path().join("ours");
    copy_root(&base, &theirs);
    copy_root(&base, &ours);
    {
        let d = Dockerd::start_with_driver(&theirs, "overlay2").expect("start dockerd");
        df_matches(&d, &ours, "with a container");
        for step in [
            &["image", "prune", "-f"][..],
            &["rmi", "bbapp:1"],
            &["image", "prune", "-a", "-f", "--filter", "label=nothing"],
            &["image", "prune", "-a", "-f"],
            &["rmi", "-f", "bbapp:1"],
            &["image", "prune", "-a", "-f"],
        ] {
            step_matches(&d, &ours, step);
            df_matches(&d, &ours, &format!("after {step:?}"));
        }
        assert_eq!(our_listing(&ours), listing(&d));
    }
    // fsck: the container whose image rm -f removed is a note, not damage.
    stdout_ok(&run(&ours, &["fsck"]));
    let d =
        Dockerd::start_with_driver(&ours, "overlay2").expect("start dockerd on imgstore's copy");
    assert_eq!(listing(&d), our_listing(&ours));
    let out = d.docker_ok(&["start", "-a", "c1"]).expect("docker start");
    let expected =
        std::fs::read_to_string(common::fixtures_dir().join("wave2/bbapp.run-output.txt"))
            .expect("run output");
    let expected: String = expected.split_inclusive('\n').skip(1).collect();
    assert_eq!(out, expected);
}

/// `prune --layers` removes what killed loads left (committed layers no image uses) and
/// says how much that freed; plain `prune` leaves them, as docker does.
#[test]
fn prune_layers_removes_unreferenced_layers() {
    let (_g, root) = extract("dockerroot-02-after-build");
    // A load killed after its layers: base's layers without base (and without its tags).
    let v = root.join("image/vfs");
    let mut refs = imgstore::refstore::RefStore::load(&v.join("repositories.json")).expect("load");
    for r in ["peer/child:1", "peer/base:v1", "base:latest"] {
        refs.delete(&imgstore::reference::Reference::parse_normalized(r).expect("ref"))
            .expect("untag");
    }
    for e in std::fs::read_dir(v.join("imagedb/content/sha256")).expect("list") {
        std::fs::remove_file(e.expect("entry").path()).expect("rm config");
    }
    std::fs::remove_dir_all(v.join("imagedb/metadata/sha256")).expect("rm metadata");
    let fsck = stdout_ok(&run(&root, &["fsck"]));
    assert!(fsck.contains("layer-orphan"), "{fsck}");
    assert_eq!(
        stdout_ok(&run(&root, &["prune", "-a", "-f"])),
        "Total reclaimed space: 0B\n"
    );
    let out = stdout_ok(&run(&root, &["prune", "-f", "--layers"]));
    assert!(
        out.starts_with("Deleted Layers:\ndeleted: sha256:"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("deleted: ")).count(),
        4,
        "{out}"
    );
    assert!(out.ends_with("Total reclaimed space: 97B\n"), "{out}");
    assert!(
        out.contains("Reclaimed space from unused layers: 97B\n"),
        "{out}"
    );
    let fsck = stdout_ok(&run(&root, &["fsck"]));
    assert!(!fsck.contains("layer-orphan"), "{fsck}");
    assert_eq!(
        std::fs::read_dir(v.join("layerdb/sha256"))
            .expect("list")
            .count(),
        0
    );
}
