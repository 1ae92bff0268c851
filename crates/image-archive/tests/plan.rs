//! Planning loads from archives real tools wrote, and reading their layers back to the
//! config's diff IDs.

use std::io::Read;
use std::path::{Path, PathBuf};

use digest_set::Digest;
use image_archive::ReadError;
use image_archive::plan::{PlatformSpec, open_layer, plan};
use image_archive::source::{DirSource, Source, TarFile};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn diff_ids(config: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(config).expect("config");
    v["rootfs"]["diff_ids"]
        .as_array()
        .expect("diff_ids")
        .iter()
        .map(|d| d.as_str().expect("str").to_owned())
        .collect()
}

/// Plans `src`, reads every layer and checks it against the config's diff IDs; returns
/// (tags, image ID) per image.
fn check(src: &dyn Source) -> Vec<(Vec<String>, String)> {
    let images = plan(src, &PlatformSpec::host()).expect("plan");
    images
        .iter()
        .map(|img| {
            let want = diff_ids(&img.config);
            assert_eq!(want.len(), img.layers.len(), "{}", img.origin);
            for (l, want) in img.layers.iter().zip(&want) {
                let mut data = Vec::new();
                open_layer(src, l)
                    .expect("open layer")
                    .read_to_end(&mut data)
                    .expect("read layer");
                assert_eq!(&Digest::sha256(&data).to_string(), want, "{}", l.name);
            }
            (img.tags.clone(), Digest::sha256(&img.config).to_string())
        })
        .collect()
}

#[test]
fn docker_save_with_a_linked_layer() {
    let src = TarFile::open(&fixtures().join("wave2/bbapp.docker-save.tar")).expect("open");
    let got = check(&src);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, ["bbapp:1"]);
    assert_eq!(got[1].0, ["bb:1"]);
}

#[test]
fn skopeo_docker_archive_and_docker_save_of_two_images() {
    for f in [
        "archives/base.docker-archive.skopeo.tar",
        "archives/child-and-base.docker-save.tar",
    ] {
        let src = TarFile::open(&fixtures().join(f)).expect("open");
        assert!(!check(&src).is_empty(), "{f}");
    }
}

#[test]
fn skopeo_oci_archive_with_gzip_layers() {
    let src = TarFile::open(&fixtures().join("wave2/bbapp.oci-archive.tar")).expect("open");
    let got = check(&src);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, ["bbapp:1"]);
}

#[test]
fn umoci_layout_directory_and_staged_compressed_archive() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tgz = fixtures().join("archives/base.oci-layout.umoci.tar.gz");
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&tgz).expect("open"),
    ));
    ar.unpack(tmp.path()).expect("unpack");
    let src = DirSource::new(tmp.path().join("oci"));
    let images = plan(&src, &PlatformSpec::host()).expect("plan");
    assert_eq!(images.len(), 1);
    // umoci names the manifest with a bare tag.
    assert_eq!(images[0].bare_ref_name.as_deref(), Some("base"));
    assert!(images[0].tags.is_empty());
    check(&src);
    // The docker-save archive gzipped, from a stream: staged, then read the same.
    let raw = std::fs::read(fixtures().join("wave2/bbapp.docker-save.tar")).expect("read");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &raw).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let staged = TarFile::stage(&gz[..], tmp.path(), ".stage-").expect("stage");
    assert_eq!(check(&staged).len(), 2);
    drop(staged);
    assert!(
        std::fs::read_dir(tmp.path()).expect("ls").all(|e| !e
            .expect("e")
            .file_name()
            .to_string_lossy()
            .starts_with(".stage-")),
        "the staging file is removed"
    );
}

#[test]
fn hostile_archives_fail_with_the_member_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let raw =
        std::fs::read(fixtures().join("archives/child-and-base.docker-save.tar")).expect("read");
    // Truncated at every 4 KiB boundary: an error, never a panic, never a wrong image.
    for cut in (4096..raw.len()).step_by(4096) {
        let p = tmp.path().join("cut.tar");
        std::fs::write(&p, &raw[..cut]).expect("write");
        let r = TarFile::open(&p).and_then(|src| {
            let images = plan(&src, &PlatformSpec::host())?;
            for img in &images {
                for l in &img.layers {
                    let mut sink = Vec::new();
                    open_layer(&src, l)?
                        .read_to_end(&mut sink)
                        .map_err(|e| ReadError::io(&l.name, e))?;
                    let want = diff_ids(&img.config);
                    let i = img.layers.iter().position(|x| x == l).unwrap_or(0);
                    if Digest::sha256(&sink).to_string() != want[i] {
                        return Err(ReadError::Truncated {
                            name: l.name.clone(),
                        });
                    }
                }
            }
            Ok(())
        });
        let e = r.expect_err("a truncated archive fails").to_string();
        assert!(!e.contains('\n'), "{e}");
    }
    // A member that climbs out.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    {
        let gnu = h.as_gnu_mut().expect("gnu");
        gnu.name[..14].copy_from_slice(b"../escape.json");
    }
    h.set_cksum();
    b.append(&h, &b"{}"[..]).expect("append");
    let p = tmp.path().join("escape.tar");
    std::fs::write(&p, b.into_inner().expect("tar")).expect("write");
    let e = TarFile::open(&p).expect_err("escape").to_string();
    assert!(e.contains("../escape.json"), "{e}");
    // A manifest naming a missing config.
    let mut b = tar::Builder::new(Vec::new());
    let m = br#"[{"Config":"nothere.json","RepoTags":null,"Layers":[]}]"#;
    let mut h = tar::Header::new_gnu();
    h.set_size(m.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "manifest.json", &m[..])
        .expect("append");
    let p = tmp.path().join("missing.tar");
    std::fs::write(&p, b.into_inner().expect("tar")).expect("write");
    let src = TarFile::open(&p).expect("open");
    let e = plan(&src, &PlatformSpec::host())
        .expect_err("missing")
        .to_string();
    assert!(e.contains("nothere.json") && e.contains("missing"), "{e}");
}

fn compress_with(kind: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match kind {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).expect("gzip");
            e.finish().expect("gzip")
        }
        "bzip2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(data).expect("bzip2");
            e.finish().expect("bzip2")
        }
        "xz" => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(data).expect("xz");
            e.finish().expect("xz")
        }
        "zstd" => zstd::encode_all(data, 1).expect("zstd"),
        _ => data.to_vec(),
    }
}

/// Layers compressed with each format (zstd too, which dockerd 20.10 cannot read), and the
/// whole archive compressed: every layer still reads back to its diff ID.
#[test]
fn every_compression_of_layers_and_archives() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A small archive (debug builds of the C codecs are slow).
    let path = fixtures().join("archives/child-and-base.docker-save.tar");
    let mut ar = tar::Archive::new(std::fs::File::open(&path).expect("open"));
    let mut members: Vec<(String, Vec<u8>, Option<String>)> = Vec::new();
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").to_string_lossy().into_owned();
        let link = e
            .link_name()
            .expect("link")
            .map(|l| l.to_string_lossy().into_owned());
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read");
        members.push((name, data, link));
    }
    for kind in ["gzip", "bzip2", "xz", "zstd"] {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data, link) in &members {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            if let Some(l) = link {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, name, l).expect("link");
                continue;
            }
            let data = if name.ends_with("layer.tar") {
                compress_with(kind, data)
            } else {
                data.clone()
            };
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, &data[..]).expect("append");
        }
        let archive = b.into_inner().expect("tar");
        let p = tmp.path().join(format!("{kind}.tar"));
        std::fs::write(&p, &archive).expect("write");
        let src = TarFile::open(&p).expect("open");
        assert_eq!(check(&src).len(), 2, "{kind} layers");
        // The whole archive compressed the same way, staged.
        let staged =
            TarFile::stage(&compress_with(kind, &archive)[..], tmp.path(), ".s-").expect("stage");
        assert_eq!(check(&staged).len(), 2, "{kind} archive");
    }
}

/// An OCI layout with one image per platform, at the top and nested in an index: the host's
/// platform is chosen, `--platform` chooses another, a missing one is a clear error.
#[test]
fn multi_platform_indexes_pick_the_platform() {
    use image_archive::format::{Descriptor, ImageManifest, Index, Platform, media_type};
    let tmp = tempfile::tempdir().expect("tempdir");
    let blobs = tmp.path().join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir");
    let put = |bytes: &[u8], mt: &str| -> Descriptor {
        let d = Digest::sha256(bytes);
        std::fs::write(blobs.join(d.hex()), bytes).expect("write blob");
        Descriptor {
            media_type: mt.to_owned(),
            digest: d.to_string(),
            size: bytes.len() as u64,
            urls: None,
            annotations: None,
            platform: None,
        }
    };
    let host = PlatformSpec::host();
    let mut manifests = Vec::new();
    for arch in [host.arch.as_str(), "s390x-not-host"] {
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        );
        let cd = put(config.as_bytes(), media_type::OCI_CONFIG);
        let m = ImageManifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.to_owned()),
            config: cd,
            layers: vec![],
            annotations: None,
        };
        let mut md = put(
            &serde_json::to_vec(&m).expect("json"),
            media_type::OCI_MANIFEST,
        );
        md.platform = Some(Platform {
            architecture: arch.to_owned(),
            os: "linux".to_owned(),
            os_version: None,
            os_features: None,
            variant: None,
        });
        manifests.push(md);
    }
    let write_index = |manifests: Vec<Descriptor>| {
        let index = Index {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.to_owned()),
            manifests,
            annotations: None,
        };
        std::fs::write(
            tmp.path().join("index.json"),
            serde_json::to_vec(&index).expect("json"),
        )
        .expect("write index");
    };
    let arch_of = |p: &image_archive::plan::ImagePlan| {
        let v: serde_json::Value = serde_json::from_slice(&p.config).expect("config");
        v["architecture"].as_str().expect("arch").to_owned()
    };
    let src = DirSource::new(tmp.path());
    // At the top of index.json.
    write_index(manifests.clone());
    let got = plan(&src, &host).expect("plan");
    assert_eq!(got.len(), 1);
    assert_eq!(arch_of(&got[0]), host.arch);
    let other = PlatformSpec::parse("linux/s390x-not-host").expect("platform");
    assert_eq!(
        arch_of(&plan(&src, &other).expect("plan")[0]),
        "s390x-not-host"
    );
    let none = PlatformSpec::parse("linux/mips").expect("platform");
    let e = plan(&src, &none).expect_err("no such platform").to_string();
    assert!(e.contains("linux/mips"), "{e}");
    // Nested: index.json names one image index.
    let nested = Index {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.to_owned()),
        manifests,
        annotations: None,
    };
    let mut nd = put(
        &serde_json::to_vec(&nested).expect("json"),
        media_type::OCI_INDEX,
    );
    nd.annotations = Some(
        [(
            image_archive::format::ANNOTATION_REF_NAME.to_owned(),
            "example.com/multi:1".to_owned(),
        )]
        .into_iter()
        .collect(),
    );
    write_index(vec![nd]);
    let got = plan(&src, &other).expect("plan");
    assert_eq!(arch_of(&got[0]), "s390x-not-host");
    assert_eq!(got[0].tags, ["example.com/multi:1"]);
    assert_eq!(arch_of(&plan(&src, &host).expect("plan")[0]), host.arch);
}
