//! `--format` templates as the docker 20.10 CLI runs them: every case of
//! `tests/fixtures/templates/corpus.jsonl` (a fixture root and docker's arguments) run
//! through imgstore must print what `docker` printed against dockerd 20.10 on that root,
//! recorded in `tests/fixtures/templates/recorded.jsonl`, and succeed or fail as it did (with
//! the same exit status, and one `imgstore:` line on stderr per docker error line).
//!
//! `corpus_matches_live_docker` runs the docker CLI against a live dockerd on copies of the
//! roots (root only; it prints why it skips otherwise) and checks the recording; with
//! `IMGSTORE_RECORD_TEMPLATES=1` it rewrites the recording instead.
//!
//! Comparison rules (the only ones): the data root's path is replaced by `<ROOT>` (overlay2
//! paths in `GraphDriver.Data`); for `images`, lines are compared sorted, because dockerd
//! orders images created in the same second, and the CLI the rows of one image, at random.
//! Relative times (`CreatedSince`, "11 hours ago") depend on the clock: the recorded cases
//! run imgstore at the time of the recording ([`RECORDED_AT`]); the live test compares
//! docker and imgstore run at the same time, and checks the recording with relative times
//! masked.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{run, run_at};
use serde_json::{Value, json};
use test_dockerd::{Dockerd, skip_reason};

/// When `recorded.jsonl` was recorded (between 13:03:55 and 13:26 UTC, from its relative
/// times and its commit): imgstore runs at that time for the recorded comparison.
const RECORDED_AT: &str = "2026-11-30T13:20:00Z";

/// `text` with every relative time ("11 hours ago", "About a minute ago") masked.
fn mask_relative_times(text: &str) -> String {
    const UNITS: [&str; 7] = ["second", "minute", "hour", "day", "week", "month", "year"];
    let mut out = text.to_owned();
    for phrase in [
        "Less than a second ago",
        "About a minute ago",
        "About an hour ago",
    ] {
        out = out.replace(phrase, "<since>");
    }
    for unit in UNITS {
        for suffix in [format!(" {unit}s ago"), format!(" {unit} ago")] {
            while let Some(at) = out.find(&suffix) {
                let start = out[..at]
                    .rfind(|c: char| !c.is_ascii_digit())
                    .map_or(0, |p| p + 1);
                out.replace_range(start..at + suffix.len(), "<since>");
            }
        }
    }
    out
}

fn fixtures() -> PathBuf {
    crate::common::fixtures_dir()
}

fn corpus() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(fixtures().join("templates/corpus.jsonl")).expect("corpus");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("corpus line"))
        .collect()
}

/// (temp dir guard, data root, storage driver) of a fixture root.
fn extract(name: &str) -> (tempfile::TempDir, PathBuf, &'static str) {
    let (tgz, driver) = if name.starts_with("o2root") {
        (fixtures().join(format!("wave2/{name}.tar.gz")), "overlay2")
    } else {
        (
            fixtures().join(format!("dockerd-20.10/{name}.tar.gz")),
            "vfs",
        )
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = std::fs::File::open(&tgz).expect("fixture tarball");
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(dir.path())
        .expect("unpack fixture");
    let root = dir.path().join(name);
    (dir, root, driver)
}

/// docker's arguments as imgstore's.
fn imgstore_args(args: &[String]) -> Vec<String> {
    let mut a: Vec<String> = args.to_vec();
    if a[0] == "image" {
        a.remove(0);
    }
    if a[0] == "images" {
        a[0] = "ls".to_owned();
    }
    a
}

fn normalise(args: &[String], stdout: &[u8], root: &Path) -> String {
    let text = String::from_utf8_lossy(stdout).replace(&root.display().to_string(), "<ROOT>");
    if args[0] == "images" {
        let mut lines: Vec<&str> = text.split('\n').collect();
        lines.sort_unstable();
        return lines.join("\n");
    }
    text
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr_lines(o: &Output) -> usize {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// Checks imgstore against one recorded docker run; a message when they differ.
fn check(
    case: &[String],
    root: &Path,
    want_stdout: &str,
    want_code: i64,
    want_err_lines: usize,
    now: Option<&str>,
) -> Option<String> {
    let args = &case[1..];
    let ours_args = imgstore_args(args);
    let refs: Vec<&str> = ours_args.iter().map(String::as_str).collect();
    let got = match now {
        Some(now) => run_at(root, now, &refs),
        None => run(root, &refs),
    };
    let got_stdout = normalise(args, &got.stdout, root);
    let want = if args[0] == "images" {
        let mut lines: Vec<&str> = want_stdout.split('\n').collect();
        lines.sort_unstable();
        lines.join("\n")
    } else {
        want_stdout.to_owned()
    };
    let stderr = String::from_utf8_lossy(&got.stderr).into_owned();
    let one_line_each =
        stderr.lines().all(|l| l.starts_with("imgstore: ")) && stderr_lines(&got) == want_err_lines;
    if got_stdout != want || i64::from(code(&got)) != want_code || !one_line_each {
        return Some(format!(
            "{case:?}\n  docker (exit {want_code}, {want_err_lines} error lines): {want:?}\n  imgstore (exit {}): {got_stdout:?}\n  imgstore stderr: {stderr:?}",
            code(&got)
        ));
    }
    None
}

fn recorded() -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("templates/recorded.jsonl"))
        .expect("recorded docker outputs");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("recorded line"))
        .collect()
}

#[test]
fn corpus_is_recorded_and_large_enough() {
    let c = corpus();
    let r = recorded();
    assert!(c.len() >= 80, "only {} templates", c.len());
    assert_eq!(
        c.len(),
        r.len(),
        "recorded.jsonl is not the corpus's recording"
    );
    for (case, rec) in c.iter().zip(&r) {
        assert_eq!(&json!(case), &rec["case"], "recording out of date");
    }
}

#[test]
fn corpus_matches_recorded_docker_output() {
    let mut roots = std::collections::BTreeMap::new();
    let mut failures = Vec::new();
    let r = recorded();
    for rec in &r {
        let case: Vec<String> = serde_json::from_value(rec["case"].clone()).expect("case");
        let (_, root, _) = roots
            .entry(case[0].clone())
            .or_insert_with(|| extract(&case[0]));
        let err_lines = rec["stderr"]
            .as_str()
            .unwrap_or("")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count();
        if let Some(f) = check(
            &case,
            root,
            rec["stdout"].as_str().unwrap_or(""),
            rec["exit"].as_i64().unwrap_or(-1),
            err_lines,
            Some(RECORDED_AT),
        ) {
            failures.push(f);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} templates differ from docker 20.10:\n{}",
        failures.len(),
        r.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_matches_live_docker() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipping: {reason}");
        return;
    }
    let cases = corpus();
    let record = std::env::var_os("IMGSTORE_RECORD_TEMPLATES").is_some();
    let mut lines = Vec::new();
    let mut failures = Vec::new();
    let mut names: Vec<&String> = cases.iter().map(|c| &c[0]).collect();
    names.dedup();
    names.sort();
    names.dedup();
    let mut results: std::collections::BTreeMap<usize, Value> = Default::default();
    for name in names {
        let (_ga, root_a, driver) = extract(name);
        let (_gb, root_b, _) = extract(name);
        let d = Dockerd::start_with_driver(&root_a, driver).expect("start dockerd");
        for (i, case) in cases.iter().enumerate().filter(|(_, c)| &c[0] == name) {
            let out = d.docker(&case[1..]).expect("run docker");
            let stdout = String::from_utf8_lossy(&out.stdout)
                .replace(&root_a.display().to_string(), "<ROOT>");
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            let rec = json!({"case": case, "stdout": stdout, "exit": code(&out), "stderr": stderr});
            let err_lines = stderr_lines(&out);
            if let Some(f) = check(
                case,
                &root_b,
                &stdout,
                i64::from(code(&out)),
                err_lines,
                None,
            ) {
                failures.push(f);
            }
            results.insert(i, rec);
        }
        drop(d);
    }
    for (_, rec) in results {
        lines.push(rec.to_string());
    }
    if record {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(fixtures().join("templates/recorded.jsonl"), text).expect("write recording");
        eprintln!("recorded {} docker runs", lines.len());
    } else {
        let want: Vec<String> = recorded().iter().map(Value::to_string).collect();
        let drift: Vec<_> = lines
            .iter()
            .zip(&want)
            .filter(|(a, b)| {
                let a: Value = serde_json::from_str(a).unwrap_or_default();
                let b: Value = serde_json::from_str(b).unwrap_or_default();
                // stderr of the docker CLI may name temp paths; stdout and status must hold.
                let masked = |v: &Value| mask_relative_times(v["stdout"].as_str().unwrap_or(""));
                masked(&a) != masked(&b) || a["exit"] != b["exit"]
            })
            .map(|(a, _)| a.clone())
            .collect();
        // Images: docker's own order is random; the recorded comparison sorts lines.
        let drift: Vec<_> = drift
            .into_iter()
            .filter(|a| !a.contains("\"images\""))
            .collect();
        assert!(
            drift.is_empty(),
            "docker no longer prints what was recorded:\n{}",
            drift.join("\n")
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} templates differ from live docker 20.10:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
