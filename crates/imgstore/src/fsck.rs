//! `fsck`: everything that is wrong with a data root, explained, without changing anything.

use std::collections::HashSet;
use std::path::PathBuf;

use digest_set::{Algorithm, Digest};
use serde::Serialize;

use crate::store::{SkipKind, Store};

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// A stable keyword: `config-unreadable`, `config-verify`, `config-invalid`, `image-os`,
    /// `image-layer-missing`, `layer-bad`, `parent-dangling`, `metadata-orphan`,
    /// `metadata-bad`, `parent-cycle`, `container-image-missing`, `reference-missing`, `reference-invalid`, `layer-orphan`, `leftover`.
    pub kind: &'static str,
    /// The ID concerned (`sha256:<hex>`), or empty.
    pub id: String,
    /// The file or directory concerned.
    pub path: PathBuf,
    /// What is wrong, in words.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = self
            .id
            .split_once(':')
            .map(|(_, h)| h.chars().take(12).collect::<String>())
            .unwrap_or_default();
        if short.is_empty() {
            write!(
                f,
                "{}: {} ({})",
                self.kind,
                self.message,
                self.path.display()
            )
        } else {
            write!(
                f,
                "{} {short}: {} ({})",
                self.kind,
                self.message,
                self.path.display()
            )
        }
    }
}

/// Checks the store and returns every finding, sorted by kind then path.
pub fn check(store: &Store) -> Vec<Finding> {
    let mut out = Vec::new();
    let imagedb = store.data_root().imagedb_dir();
    let meta = imagedb.join("metadata").join("sha256");
    for s in store.skipped_images() {
        let (kind, message) = match &s.kind {
            SkipKind::Unreadable(e) => (
                "config-unreadable",
                format!("image config cannot be read: {e}; dockerd does not restore this image"),
            ),
            SkipKind::Verify(actual) => (
                "config-verify",
                format!(
                    "image config fails verification: its content hashes to {actual}; dockerd does not restore this image"
                ),
            ),
            SkipKind::Invalid(e) => (
                "config-invalid",
                format!("image config does not parse: {e}; dockerd does not restore this image"),
            ),
            SkipKind::Os(os) => (
                "image-os",
                format!("image OS {os:?} is not supported; dockerd does not restore this image"),
            ),
            SkipKind::LayerMissing(c) => (
                "image-layer-missing",
                format!(
                    "top layer {c} is not loaded; dockerd does not restore this image (\"not restoring image\")"
                ),
            ),
        };
        out.push(Finding {
            kind,
            id: s.id.to_string(),
            path: s.path.clone(),
            message,
        });
    }
    for b in store.bad_layers() {
        out.push(Finding {
            kind: "layer-bad",
            id: b.chain_id.to_string(),
            path: b.dir.clone(),
            message: format!("layer does not load: {}", b.reason),
        });
    }
    for e in store.images().values() {
        let id = e.id();
        if let Some(p) = &e.parent {
            match p.parse::<Digest>() {
                Ok(pd) if store.image(&pd).is_some() => {}
                Ok(pd) => out.push(Finding {
                    kind: "parent-dangling",
                    id: id.to_string(),
                    path: meta.join(id.hex()).join("parent"),
                    message: format!("parent link names {pd}, which is not a restored image"),
                }),
                Err(_) => out.push(Finding {
                    kind: "parent-dangling",
                    id: id.to_string(),
                    path: meta.join(id.hex()).join("parent"),
                    message: format!("parent link holds {p:?}, which is not an image ID"),
                }),
            }
        }
        let lu = meta.join(id.hex()).join("lastUpdated");
        if let Err(text) = store.last_updated(&id) {
            out.push(Finding {
                kind: "metadata-bad",
                id: id.to_string(),
                path: lu,
                message: format!(
                    "lastUpdated holds {text:?}, not an RFC 3339 time (dockerd's inspect fails on it)"
                ),
            });
        }
    }
    // Parent links that loop (a restored image that is its own ancestor).
    let mut state: std::collections::HashMap<Digest, u8> = std::collections::HashMap::new();
    for start in store.images().keys() {
        let mut path = Vec::new();
        let mut cur = Some(*start);
        while let Some(c) = cur {
            match state.get(&c) {
                Some(2) => break,
                Some(1) => {
                    // `c` is on the current path: everything from it on is a cycle.
                    let from = path.iter().position(|p| *p == c).unwrap_or(0);
                    let members: Vec<String> = path[from..].iter().map(Digest::short).collect();
                    out.push(Finding {
                        kind: "parent-cycle",
                        id: c.to_string(),
                        path: meta.join(c.hex()).join("parent"),
                        message: format!(
                            "parent links loop: {} -> {}",
                            members.join(" -> "),
                            c.short()
                        ),
                    });
                    break;
                }
                _ => {}
            }
            state.insert(c, 1);
            path.push(c);
            cur = store
                .image(&c)
                .and_then(|e| e.parent_id())
                .filter(|p| store.image(p).is_some());
        }
        for p in path {
            state.insert(p, 2);
        }
    }
    // Metadata directories without a config.
    let known: HashSet<Digest> = store
        .images()
        .keys()
        .copied()
        .chain(store.skipped_images().iter().map(|s| s.id))
        .collect();
    if let Ok(entries) = std::fs::read_dir(&meta) {
        let mut names: Vec<_> = entries.filter_map(Result::ok).collect();
        names.sort_by_key(|e| e.file_name());
        for entry in names {
            let name = entry.file_name().to_string_lossy().into_owned();
            match Digest::from_hex(Algorithm::Sha256, &name) {
                Ok(d) if known.contains(&d) => {}
                Ok(d) => out.push(Finding {
                    kind: "metadata-orphan",
                    id: d.to_string(),
                    path: entry.path(),
                    message: "metadata for an image whose config does not exist".to_owned(),
                }),
                Err(_) => out.push(Finding {
                    kind: "leftover",
                    id: String::new(),
                    path: entry.path(),
                    message: format!("{name:?} in imagedb metadata is not an image ID"),
                }),
            }
        }
    }
    let repos = store.data_root().repositories_json();
    for (_, r, id) in store.refs().entries() {
        if crate::reference::Reference::parse_normalized(r).is_err() {
            out.push(Finding {
                kind: "reference-invalid",
                id: String::new(),
                path: repos.clone(),
                message: format!("reference {r:?} is not a valid reference; dockerd ignores it"),
            });
            continue;
        }
        match id.parse::<Digest>() {
            Ok(d) if store.image(&d).is_some() => {}
            Ok(d) => out.push(Finding {
                kind: "reference-missing",
                id: d.to_string(),
                path: repos.clone(),
                message: format!("reference {r} points to {d}, which is not a restored image"),
            }),
            Err(_) => out.push(Finding {
                kind: "reference-invalid",
                id: String::new(),
                path: repos.clone(),
                message: format!("reference {r} points to {id:?}, which is not an image ID"),
            }),
        }
    }
    // Containers whose image is gone.
    for c in crate::ops::read_containers(store.data_root().root()) {
        if store.image(&c.image).is_none() {
            out.push(Finding {
                kind: "container-image-missing",
                id: c.image.to_string(),
                path: store
                    .data_root()
                    .root()
                    .join("containers")
                    .join(&c.id)
                    .join("config.v2.json"),
                message: format!(
                    "container {} uses image {}, which is not a restored image",
                    c.id.chars().take(12).collect::<String>(),
                    c.image
                ),
            });
        }
    }
    // Layers no image (or mount) needs.
    let mut needed: HashSet<Digest> = HashSet::new();
    let mark = |start: Option<Digest>, needed: &mut HashSet<Digest>| {
        let mut cur = start;
        while let Some(c) = cur {
            if !needed.insert(c) {
                break;
            }
            cur = store.layers().get(&c).and_then(|l| l.parent);
        }
    };
    for e in store.images().values() {
        mark(e.chain_id, &mut needed);
    }
    for (_, p) in store.mounts() {
        mark(*p, &mut needed);
    }
    for (c, l) in store.layers() {
        if !needed.contains(c) {
            out.push(Finding {
                kind: "layer-orphan",
                id: c.to_string(),
                path: l.dir.clone(),
                message: format!(
                    "no image or container uses this layer (cache-id {}, {} bytes)",
                    l.cache_id, l.diff_size
                ),
            });
        }
    }
    for (path, name) in store
        .stray_content()
        .iter()
        .chain(store.stray_layer_entries())
    {
        let what = if name.ends_with("-removing") {
            "a layer deletion was interrupted"
        } else if name.contains(".tmp-") || name.starts_with("tmp/") {
            "a write was interrupted"
        } else {
            "not something dockerd writes here"
        };
        out.push(Finding {
            kind: "leftover",
            id: String::new(),
            path: path.clone(),
            message: format!("leftover entry {name:?}: {what}"),
        });
    }
    out.sort_by(|a, b| a.kind.cmp(b.kind).then(a.path.cmp(&b.path)));
    out
}
