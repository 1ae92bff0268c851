//! The writing operations: `tag` and `rm`, with dockerd 20.10's rules
//! (`daemon/images/image_tag.go`, `image_delete.go`): imgstore's own conflict, untag and prune
//! rules on top of [`image_store::ImageStore::delete`] and [`layer_store::LayerStore::release`].

use std::path::Path;

use digest_set::Digest;
use image_store::ImageId;

use crate::error::{RemoveError, TagError};
use crate::reference::Reference;
use crate::store::Store;

/// One line of `rm` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteRecord {
    /// A reference was removed (`Untagged: <familiar ref>`).
    Untagged(String),
    /// An image or a layer was deleted (`Deleted: sha256:<id>`).
    Deleted(Digest),
}

impl std::fmt::Display for DeleteRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeleteRecord::Untagged(r) => write!(f, "Untagged: {r}"),
            DeleteRecord::Deleted(d) => write!(f, "Deleted: {d}"),
        }
    }
}

/// dockerd's `isImageIDPrefix`.
fn is_image_id_prefix(id: &Digest, arg: &str) -> bool {
    let full = id.to_string();
    full.starts_with(arg) || id.hex().starts_with(arg)
}

/// dockerd's `isSingleReference`: all references in one repository, at most one tag.
fn is_single_reference(refs: &[Reference]) -> bool {
    if refs.len() <= 1 {
        return refs.len() == 1;
    }
    let mut single: Option<&Reference> = None;
    let mut canonical = std::collections::BTreeSet::new();
    for r in refs {
        if r.is_canonical() {
            canonical.insert(r.name());
        } else if single.is_none() {
            single = Some(r);
        } else {
            return false;
        }
    }
    let single = single.unwrap_or(&refs[0]);
    canonical.len() == 1 && canonical.contains(&single.name())
}

struct Conflict {
    hard: bool,
    /// A container uses the image (such conflicts are reported even when pruning quietly).
    used: bool,
    message: String,
}

/// A container as far as image deletion cares: `<root>/containers/<id>/config.v2.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// The container ID.
    pub id: String,
    /// The image it was created from.
    pub image: Digest,
    /// Whether it is running.
    pub running: bool,
}

/// The most a container's `config.v2.json` may hold.
const MAX_CONTAINER_CONFIG: u64 = 16 << 20;

/// Reads the containers of a data root; unreadable entries are skipped.
pub fn read_containers(root: &Path) -> Vec<Container> {
    #[derive(serde::Deserialize)]
    struct State {
        #[serde(rename = "Running", default)]
        running: bool,
    }
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(rename = "ID", default)]
        id: String,
        #[serde(rename = "Image", default)]
        image: String,
        #[serde(rename = "State", default)]
        state: Option<State>,
    }
    let mut out = Vec::new();
    // `containers` may be a link to another disk; nothing beneath it is followed, and a
    // FIFO or a huge file in place of a config is skipped at once.
    let Ok(Some(containers)) =
        durable_fs::Dir::open(root).and_then(|r| r.open_top_dir("containers"))
    else {
        return out;
    };
    let Ok(entries) = containers.entries() else {
        return out;
    };
    for e in entries {
        if e.kind != durable_fs::FileKind::Dir {
            continue;
        }
        let Ok(Some(bytes)) = containers.read(
            std::path::Path::new(&e.name).join("config.v2.json"),
            MAX_CONTAINER_CONFIG,
        ) else {
            continue;
        };
        let Ok(c) = serde_json::from_slice::<Config>(&bytes) else {
            continue;
        };
        let Ok(image) = c.image.parse::<Digest>() else {
            continue;
        };
        let id = if c.id.is_empty() {
            e.name.to_string_lossy().into_owned()
        } else {
            c.id
        };
        out.push(Container {
            id,
            image,
            running: c.state.is_some_and(|s| s.running),
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn short_container(id: &str) -> String {
    id.chars().take(12).collect()
}

impl Store {
    /// `docker tag SOURCE TARGET`: points `target` (default tag `latest`) at the image
    /// `source` resolves to, replacing an existing tag, and records `lastUpdated` through the
    /// image store.
    pub fn tag(&mut self, source: &str, target: &str) -> Result<Digest, TagError> {
        let id = self.resolve(source)?;
        let r = Reference::parse_normalized(target)?;
        if r.is_canonical() {
            return Err(crate::refstore::RefStoreError::TagWithDigest.into());
        }
        let r = r.with_default_tag();
        self.refs_mut().add_tag(&r, &id, true)?;
        self.image_store().set_last_updated(&ImageId(id))?;
        Ok(id)
    }

    /// `docker rmi [-f] [--no-prune] IMAGE`: dockerd's `ImageDelete`. Returns the records in
    /// the order dockerd gives them.
    pub fn delete(
        &mut self,
        arg: &str,
        force: bool,
        prune: bool,
    ) -> Result<Vec<DeleteRecord>, RemoveError> {
        let mut records = Vec::new();
        self.delete_into(arg, force, prune, &mut records)?;
        Ok(records)
    }

    /// Like [`Store::delete`], appending to `records` as it goes, so that what was done before
    /// an error (e.g. pruning reaching a parent that cannot be deleted) is still known.
    pub fn delete_into(
        &mut self,
        arg: &str,
        force: bool,
        prune: bool,
        records: &mut Vec<DeleteRecord>,
    ) -> Result<(), RemoveError> {
        // Layers of other drivers are opened read-only: deleting their metadata without
        // their content would leak it.
        if self.layer_store().mode() != layer_store::OpenMode::ReadWrite {
            return Err(RemoveError::UnsupportedDriver(
                self.data_root().driver().to_owned(),
            ));
        }
        let id = self.resolve(arg)?;
        let containers = read_containers(self.data_root().root());
        let mut repo_refs: Vec<Reference> = self.refs().references(&id).to_vec();
        let mut removed_repository_ref = false;
        if !is_image_id_prefix(&id, arg) {
            if !force
                && is_single_reference(&repo_refs)
                && let Some(c) = containers.iter().find(|c| c.image == id)
            {
                return Err(RemoveError::ReferenceInUse {
                    reference: arg.to_owned(),
                    container: short_container(&c.id),
                    image: id.short(),
                });
            }
            let parsed = Reference::parse_normalized(arg)?.with_default_tag();
            if !self.refs_mut().delete(&parsed)? {
                return Err(RemoveError::ReferenceMissing(parsed.familiar_string()));
            }
            records.push(DeleteRecord::Untagged(parsed.familiar_string()));
            repo_refs = self.refs().references(&id).to_vec();
            if !parsed.is_canonical() {
                let found_tag = repo_refs
                    .iter()
                    .any(|r| !r.is_canonical() && r.name() == parsed.name());
                if !found_tag {
                    let mut remaining = Vec::new();
                    for r in repo_refs {
                        if r.is_canonical() && r.name() == parsed.name() {
                            self.refs_mut().delete(&r)?;
                            records.push(DeleteRecord::Untagged(r.familiar_string()));
                        } else {
                            remaining.push(r);
                        }
                    }
                    repo_refs = remaining;
                }
            }
            if !repo_refs.is_empty() {
                return Ok(());
            }
            removed_repository_ref = true;
        } else if is_single_reference(&repo_refs) {
            // Hard conflicts, and stopped containers unless forced.
            if let Some(c) = self.conflict(&id, false, !force, &containers) {
                return Err(conflict_error(&id, &c));
            }
            for r in repo_refs {
                let r = r.with_default_tag();
                self.refs_mut().delete(&r)?;
                records.push(DeleteRecord::Untagged(r.familiar_string()));
            }
        }
        self.delete_helper(
            id,
            records,
            force,
            prune,
            removed_repository_ref,
            &containers,
        )
    }

    /// dockerd's `checkImageDeleteConflict`: child images and running containers always;
    /// references (`refs`) and stopped containers (`stopped`) when asked.
    fn conflict(
        &self,
        id: &Digest,
        refs: bool,
        stopped: bool,
        containers: &[Container],
    ) -> Option<Conflict> {
        // Children that are also ancestors (parent links that loop) do not count.
        if !self
            .image_store()
            .dependent_children(&ImageId(*id))
            .is_empty()
        {
            return Some(Conflict {
                hard: true,
                used: false,
                message: "image has dependent child images".to_owned(),
            });
        }
        if let Some(c) = containers.iter().find(|c| c.image == *id && c.running) {
            return Some(Conflict {
                hard: true,
                used: true,
                message: format!(
                    "image is being used by running container {}",
                    short_container(&c.id)
                ),
            });
        }
        if refs && !self.refs().references(id).is_empty() {
            return Some(Conflict {
                hard: false,
                used: false,
                message: "image is referenced in multiple repositories".to_owned(),
            });
        }
        if stopped && let Some(c) = containers.iter().find(|c| c.image == *id && !c.running) {
            return Some(Conflict {
                hard: false,
                used: true,
                message: format!(
                    "image is being used by stopped container {}",
                    short_container(&c.id)
                ),
            });
        }
        None
    }

    fn delete_helper(
        &mut self,
        id: Digest,
        records: &mut Vec<DeleteRecord>,
        force: bool,
        prune: bool,
        quiet: bool,
        containers: &[Container],
    ) -> Result<(), RemoveError> {
        let mut id = id;
        let mut force = force;
        let mut quiet = quiet;
        loop {
            if let Some(c) = self.conflict(&id, !force, !force, containers) {
                let dangling =
                    self.refs().references(&id).is_empty() && self.children(&id).is_empty();
                if quiet && (!dangling || c.used) {
                    return Ok(());
                }
                return Err(conflict_error(&id, &c));
            }
            let parent = self.parent_link(&id);
            for r in self.refs().references(&id).to_vec() {
                let r = r.with_default_tag();
                self.refs_mut().delete(&r)?;
                records.push(DeleteRecord::Untagged(r.familiar_string()));
            }
            let removed = match self.delete_image(&id) {
                Ok(removed) => removed,
                Err(e @ RemoveError::Delete(_)) if !self.contains(&id) => {
                    // The image is gone; releasing its layer failed (the layer store keeps a
                    // `-removing` leftover for its next read-write open to clean).
                    records.push(DeleteRecord::Deleted(id));
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            records.push(DeleteRecord::Deleted(id));
            records.extend(removed.into_iter().map(DeleteRecord::Deleted));
            let Some(parent) = parent.filter(|p| !p.is_empty()) else {
                return Ok(());
            };
            if !prune {
                return Ok(());
            }
            let Ok(pid) = parent.parse::<Digest>() else {
                return Err(RemoveError::UnrecognizedImage(parent));
            };
            id = pid;
            force = false;
            quiet = true;
        }
    }

    /// The image store's `Delete` (children lose their link, the config and metadata go,
    /// the image's layer reference is released through the layer store). Returns the layers
    /// the release deleted, child first.
    fn delete_image(&mut self, id: &Digest) -> Result<Vec<Digest>, RemoveError> {
        if !self.contains(id) {
            return Err(RemoveError::UnrecognizedImage(id.to_string()));
        }
        // Written down first, so that a kill between the image's removal and its layers'
        // leaves a note the next write open finishes (`Store::open`).
        let chain = self
            .image_store()
            .info(&ImageId(*id))
            .ok()
            .and_then(|i| i.chain_id);
        let intent = chain.map(|c| self.record_release(&c)).transpose()?;
        let removed = self.image_store().delete(&ImageId(*id))?;
        if let Some(name) = intent {
            self.clear_release(&name)?;
        }
        Ok(removed.into_iter().map(|l| l.chain_id.0).collect())
    }
}

fn conflict_error(id: &Digest, c: &Conflict) -> RemoveError {
    RemoveError::Conflict {
        short: id.short(),
        force: if c.hard {
            "cannot be forced"
        } else {
            "must be forced"
        },
        message: c.message.clone(),
    }
}
