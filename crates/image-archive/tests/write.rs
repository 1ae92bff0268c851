//! The writer against archives docker wrote: from the same configs and layer streams, the
//! same bytes.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use docker_reference::reference::Reference;
use image_archive::format::ManifestEntry;
use image_archive::{
    BoxError, Compression, Format, LayerRef, LayerSource, SaveImage, WriteError, WriteOptions, v1,
    write_archive,
};
use image_store::Image;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// Every member of a tar: (name, header bytes, content).
fn members(archive: &[u8]) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let mut ar = tar::Archive::new(archive);
    let mut out = Vec::new();
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").to_string_lossy().into_owned();
        let header = e.header().as_bytes().to_vec();
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read");
        out.push((name, header, data));
    }
    out
}

/// Layer streams by diff ID, taken from a docker archive's `layer.tar` files.
struct Layers(HashMap<layer_store::DiffId, Vec<u8>>);

impl LayerSource for Layers {
    fn size(&self, layer: &LayerRef) -> Result<u64, BoxError> {
        self.0
            .get(&layer.diff_id)
            .map(|d| d.len() as u64)
            .ok_or_else(|| format!("no layer {}", layer.diff_id).into())
    }

    fn open(&self, layer: &LayerRef) -> Result<Box<dyn Read + '_>, BoxError> {
        let d = self
            .0
            .get(&layer.diff_id)
            .ok_or_else(|| format!("no layer {}", layer.diff_id))?;
        Ok(Box::new(&d[..]))
    }
}

/// The images and layers of a docker archive, as the writer takes them.
fn inputs(archive: &[u8]) -> (Vec<SaveImage>, Layers) {
    let all = members(archive);
    let get = |name: &str| {
        all.iter()
            .find(|m| m.0 == name)
            .map(|m| m.2.clone())
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let manifest: Vec<ManifestEntry> =
        serde_json::from_slice(&get("manifest.json")).expect("manifest");
    let mut layers = HashMap::new();
    let mut images = Vec::new();
    for m in &manifest {
        let image = Arc::new(Image::from_bytes(get(&m.config)).expect("config"));
        for (diff_id, file) in image.diff_ids().iter().zip(&m.layers) {
            if let Some((_, _, data)) = all.iter().find(|x| &x.0 == file && !x.2.is_empty()) {
                layers.insert(*diff_id, data.clone());
            }
        }
        images.push(SaveImage {
            image,
            tags: m
                .repo_tags
                .iter()
                .flatten()
                .map(|t| Reference::parse_normalized(t).expect("tag"))
                .collect(),
            repo_digests: Vec::new(),
            parent: None,
        });
    }
    (images, Layers(layers))
}

/// The mtime docker gave the directory of the first linked layer (written at save time).
fn save_time(archive: &[u8]) -> i64 {
    let all = members(archive);
    let link = all
        .iter()
        .find(|m| m.1[156] == b'2')
        .expect("a symlinked layer");
    let mtime = std::str::from_utf8(&link.1[136..147]).expect("ascii");
    i64::from_str_radix(mtime, 8).expect("octal")
}

fn same_archive_as_docker(fixture: &str) {
    let want = std::fs::read(fixtures().join(fixture)).expect("fixture");
    let (images, layers) = inputs(&want);
    let (got, summary) = write_archive(
        Vec::new(),
        &images,
        &layers,
        WriteOptions {
            format: Format::Docker,
            now: save_time(&want),
            progress: None,
        },
    )
    .expect("write");
    assert_eq!(summary.bytes, got.len() as u64);
    let (g, w) = (members(&got), members(&want));
    let names =
        |v: &[(String, Vec<u8>, Vec<u8>)]| v.iter().map(|m| m.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&g), names(&w));
    for (a, b) in g.iter().zip(&w) {
        assert_eq!(
            String::from_utf8_lossy(&a.2),
            String::from_utf8_lossy(&b.2),
            "content of {}",
            a.0
        );
        assert_eq!(a.1, b.1, "header of {}", a.0);
    }
    assert!(got == want, "archives differ");
}

#[test]
fn bbapp_archive_is_dockers_byte_for_byte() {
    same_archive_as_docker("wave2/bbapp.docker-save.tar");
}

#[test]
fn child_and_base_archive_is_dockers_byte_for_byte() {
    same_archive_as_docker("archives/child-and-base.docker-save.tar");
}

#[test]
fn v1_ids_are_mobys() {
    let want = std::fs::read(fixtures().join("wave2/bbapp.docker-save.tar")).expect("fixture");
    let (images, _) = inputs(&want);
    let layers = v1::layers(&images[0].image).expect("v1");
    let ids: Vec<String> = layers.iter().map(|l| l.id.hex()).collect();
    assert_eq!(
        ids,
        [
            "fd92e13d6b1db5f7b8bf34e6f8ba9027e26a2c9532b38dce0ab2e807ef215db3",
            "17f87e45b8aad52661f45b9daa322f09555456cab2c1c66194f042c0f6fb4233",
            "004f4035af2a58762c7bd76ac4fd055aba0179ec861df6a7dce04297747c44b1",
            "eb2f74376aa84377867a88e3b7ff0e298297d05090d33edf1bb9e375a7a089d4",
        ]
    );
    assert_eq!(layers[1].parent, Some(layers[0].id));
}

#[test]
fn repo_digests_and_parent_are_recorded() {
    let want =
        std::fs::read(fixtures().join("archives/child-and-base.docker-save.tar")).expect("fixture");
    let (mut images, layers) = inputs(&want);
    let base = *images[1].image.id().digest();
    images[0].parent = Some(base);
    images[1].repo_digests = vec![
        "base@sha256:0123456789012345678901234567890123456789012345678901234567890123".to_owned(),
    ];
    let (got, _) =
        write_archive(Vec::new(), &images, &layers, WriteOptions::default()).expect("write");
    let m = members(&got);
    let manifest = &m
        .iter()
        .find(|x| x.0 == "manifest.json")
        .expect("manifest")
        .2;
    let entries: Vec<ManifestEntry> = serde_json::from_slice(manifest).expect("json");
    assert_eq!(
        entries[0].parent.as_deref(),
        Some(base.to_string().as_str())
    );
    assert_eq!(entries[1].parent, None);
    assert_eq!(entries[0].repo_digests, None);
    assert_eq!(entries[1].repo_digests.as_ref().map(Vec::len), Some(1));
    let text = String::from_utf8_lossy(manifest);
    assert!(
        text.contains(r#""Parent":"sha256:"#) && text.contains(r#""RepoDigests":["base@sha256:"#),
        "{text}"
    );
}

#[test]
fn untagged_images_have_null_repo_tags_and_no_repositories() {
    let want = std::fs::read(fixtures().join("wave2/bbapp.docker-save.tar")).expect("fixture");
    let (mut images, layers) = inputs(&want);
    images.truncate(1);
    images[0].tags.clear();
    let (got, _) =
        write_archive(Vec::new(), &images, &layers, WriteOptions::default()).expect("write");
    let m = members(&got);
    assert!(!m.iter().any(|x| x.0 == "repositories"));
    let manifest = &m
        .iter()
        .find(|x| x.0 == "manifest.json")
        .expect("manifest")
        .2;
    assert!(String::from_utf8_lossy(manifest).contains(r#""RepoTags":null"#));
}

#[test]
fn a_short_or_long_layer_stream_is_an_error() {
    struct Liar(Layers, i64);
    impl LayerSource for Liar {
        fn size(&self, layer: &LayerRef) -> Result<u64, BoxError> {
            Ok((self.0.size(layer)? as i64 + self.1) as u64)
        }
        fn open(&self, layer: &LayerRef) -> Result<Box<dyn Read + '_>, BoxError> {
            self.0.open(layer)
        }
    }
    let want = std::fs::read(fixtures().join("wave2/bbapp.docker-save.tar")).expect("fixture");
    for delta in [-1, 1] {
        let (images, layers) = inputs(&want);
        let err = write_archive(
            Vec::new(),
            &images,
            &Liar(layers, delta),
            WriteOptions::default(),
        )
        .expect_err("size mismatch");
        assert!(matches!(err, WriteError::LayerSize { .. }), "{err}");
    }
}

#[test]
fn oci_layouts_reference_every_blob_with_its_digest() {
    let want = std::fs::read(fixtures().join("wave2/bbapp.docker-save.tar")).expect("fixture");
    let (mut images, layers) = inputs(&want);
    images[1].repo_digests = vec![
        "bb@sha256:0123456789012345678901234567890123456789012345678901234567890123".to_owned(),
    ];
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let mut reports = 0;
        let mut progress = |_: image_archive::Progress| reports += 1;
        let (got, summary) = write_archive(
            Vec::new(),
            &images,
            &layers,
            WriteOptions {
                format: Format::Oci(c),
                now: 0,
                progress: Some(&mut progress),
            },
        )
        .expect("write");
        assert!(reports > 0);
        assert_eq!(summary.layers, 4);
        let m = members(&got);
        let get = |name: &str| {
            &m.iter()
                .find(|x| x.0 == name)
                .unwrap_or_else(|| panic!("{name}"))
                .2
        };
        assert_eq!(get("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#);
        let index: image_archive::format::Index =
            serde_json::from_slice(get("index.json")).expect("index");
        assert_eq!(index.manifests.len(), 2);
        let a = index.manifests[0]
            .annotations
            .as_ref()
            .expect("annotations");
        assert_eq!(a["io.containerd.image.name"], "docker.io/library/bbapp:1");
        assert_eq!(a["org.opencontainers.image.ref.name"], "1");
        let b = index.manifests[1]
            .annotations
            .as_ref()
            .expect("annotations");
        assert!(b[image_archive::format::ANNOTATION_REPO_DIGESTS].starts_with("bb@sha256:"));
        // Every blob hashes to its name, and every descriptor to its blob.
        for (name, _, data) in m
            .iter()
            .filter(|x| x.0.starts_with("blobs/sha256/") && !x.2.is_empty())
        {
            assert_eq!(
                digest_set::Digest::sha256(data).hex(),
                name["blobs/sha256/".len()..]
            );
        }
        for d in &index.manifests {
            let blob = get(&format!("blobs/sha256/{}", &d.digest["sha256:".len()..]));
            assert_eq!(blob.len() as u64, d.size);
            let manifest: image_archive::format::ImageManifest =
                serde_json::from_slice(blob).expect("manifest");
            for l in &manifest.layers {
                let blob = get(&format!("blobs/sha256/{}", &l.digest["sha256:".len()..]));
                assert_eq!(blob.len() as u64, l.size);
                let mut raw = Vec::new();
                match c {
                    Compression::None => raw.clone_from(blob),
                    Compression::Gzip => {
                        flate2::read::GzDecoder::new(&blob[..])
                            .read_to_end(&mut raw)
                            .expect("gunzip");
                    }
                    Compression::Zstd => raw = zstd::decode_all(&blob[..]).expect("unzstd"),
                }
                assert!(layers.0.values().any(|l| *l == raw));
            }
        }
        let docker: Vec<ManifestEntry> =
            serde_json::from_slice(get("manifest.json")).expect("manifest.json");
        assert_eq!(
            docker[0].repo_tags.as_deref(),
            Some(&["bbapp:1".to_owned()][..])
        );
        assert!(
            docker[0]
                .layers
                .iter()
                .all(|l| l.starts_with("blobs/sha256/"))
        );
    }
}
