//! The format types read what docker, skopeo and umoci wrote.

use std::io::Read;
use std::path::Path;

use image_archive::format::{Index, ManifestEntry};

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn member(archive: &Path, name: &str) -> Vec<u8> {
    let mut ar = tar::Archive::new(std::fs::File::open(archive).expect("open"));
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        if e.path().expect("path").to_string_lossy() == name {
            let mut v = Vec::new();
            e.read_to_end(&mut v).expect("read");
            return v;
        }
    }
    panic!("{name} not in {}", archive.display());
}

#[test]
fn docker_save_manifest_reads_and_writes_back_as_docker_does() {
    let archive = fixtures().join("wave2/bbapp.docker-save.tar");
    let raw = member(&archive, "manifest.json");
    let entries: Vec<ManifestEntry> = serde_json::from_slice(&raw).expect("manifest.json");
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[0].repo_tags.as_deref(),
        Some(&["bbapp:1".to_owned()][..])
    );
    assert_eq!(entries[0].layers.len(), 4);
    // Written back, byte for byte (Go's field order, omitted empty fields; docker's
    // json.Encoder ends the file with a newline).
    let mut ours = serde_json::to_vec(&entries).expect("json");
    ours.push(b'\n');
    assert!(ours == raw, "{}", String::from_utf8_lossy(&ours));
}

#[test]
fn oci_index_of_skopeo_reads() {
    let archive = fixtures().join("wave2/bbapp.oci-archive.tar");
    let raw = member(&archive, "index.json");
    let index: Index = serde_json::from_slice(&raw).expect("index.json");
    assert_eq!(index.schema_version, 2);
    assert_eq!(index.manifests.len(), 1);
}
