//! `fsck --content` on copies of the wave2 roots (vfs and overlay2, with layer content): a
//! changed byte, a lost file and a truncated tar-split are each named with the images that
//! use the layer; plain `fsck` does not read content; `--repair` reports, never repairs.

use crate::common;

use std::path::{Path, PathBuf};

use common::{extract_wave2, run};

/// Layers of the wave2 roots (chain IDs): the base (busybox, under bb:1 and bbapp:1), the
/// one holding `d/a`, and the one above it (only under bbapp:1).
const BASE: &str = "c494037e07ec37ce2b477d211256c865e4d09766a6cee4a0087029d1158658c3";
const WITH_D_A: &str = "14a07cf63a9f66ca3dd3c73e798b2818e8b23e49bc8cd53dccfaea2ce889b5f3";
const ABOVE: &str = "c7a35b65b266c257da8dd6310d4e038d4c46b3de025dfc0b65764e68b70e7c26";

fn out_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The content directory of layer `chain` (hex) in `root`.
fn content_dir(root: &Path, driver: &str, chain: &str) -> PathBuf {
    let cache = std::fs::read_to_string(
        root.join("image")
            .join(driver)
            .join("layerdb/sha256")
            .join(chain)
            .join("cache-id"),
    )
    .expect("cache-id");
    match driver {
        "vfs" => root.join("vfs/dir").join(cache.trim()),
        _ => root.join("overlay2").join(cache.trim()).join("diff"),
    }
}

/// The single line of `text` about layer `chain`.
fn line_of<'a>(text: &'a str, kind: &str, chain: &str) -> &'a str {
    let want = format!("{kind} {}:", &chain[..12]);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(&want)).collect();
    assert_eq!(lines.len(), 1, "one {want} line in:\n{text}");
    lines[0]
}

fn damage_is_named(name: &str, driver: &str) {
    let (_g, root) = extract_wave2(name);
    let ok = run(&root, &["fsck", "--content"]);
    assert!(ok.status.success(), "{name}: {}", out_text(&ok));

    // One byte of busybox in the base layer.
    let busybox = content_dir(&root, driver, BASE).join("bin/busybox");
    let mut bytes = std::fs::read(&busybox).expect("busybox");
    bytes[1000] ^= 0x55;
    std::fs::write(&busybox, &bytes).expect("write");
    let plain = run(&root, &["fsck"]);
    assert!(
        plain.status.success(),
        "{name}: plain fsck reads no content: {}",
        out_text(&plain)
    );
    let out = run(&root, &["fsck", "--content"]);
    assert!(!out.status.success(), "{name}: {}", out_text(&out));
    let text = out_text(&out);
    let line = line_of(&text, "layer-content-changed", BASE);
    for want in [
        "bin/busybox",
        "bb:1",
        "bbapp:1",
        "diff ID sha256:",
        "cache-id ",
    ] {
        assert!(line.contains(want), "{name}: {want:?} in {line}");
    }

    // A lost file, and a truncated tar-split.
    std::fs::remove_file(content_dir(&root, driver, WITH_D_A).join("d/a")).expect("rm");
    let ts = root
        .join("image")
        .join(driver)
        .join("layerdb/sha256")
        .join(ABOVE)
        .join("tar-split.json.gz");
    let len = std::fs::metadata(&ts).expect("tar-split").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&ts)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
    for args in [
        &["fsck", "--content"][..],
        &["fsck", "--content", "--repair"][..],
    ] {
        let out = run(&root, args);
        assert!(!out.status.success(), "{name} {args:?}: {}", out_text(&out));
        let text = out_text(&out);
        line_of(&text, "layer-content-changed", BASE);
        let missing = line_of(&text, "layer-content-missing", WITH_D_A);
        assert!(
            missing.contains("d/a") && missing.contains("bbapp:1") && !missing.contains("bb:1)"),
            "{name}: {missing}"
        );
        let split = line_of(&text, "layer-tar-split", ABOVE);
        assert!(
            split.contains("tar-split.json.gz") && split.contains("bbapp:1"),
            "{name}: {split}"
        );
    }
    // Reported, never repaired: the files are as they were.
    assert_eq!(std::fs::read(&busybox).expect("busybox"), bytes);
    assert_eq!(std::fs::metadata(&ts).expect("tar-split").len(), len / 2);
}

#[test]
fn content_damage_is_named_with_its_images_vfs() {
    damage_is_named("vfsroot-after-load", "vfs");
}

#[test]
fn content_damage_is_named_with_its_images_overlay2() {
    let root_user = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if !root_user {
        eprintln!("skipped: overlay2 layer content is owned by root and needs root to read");
        return;
    }
    damage_is_named("o2root-after-load", "overlay2");
}
