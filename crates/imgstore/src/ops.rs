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

/// The note an `rm` keeps in `image/<driver>` while it changes the store, so that the next
/// write open finishes a killed one ([`Store::finish_removal`]): the image being deleted,
/// its parent (the next one pruning reaches) and the flags.
pub(crate) const RM_NOTE: &str = ".imgstore-rm";

/// The content of [`RM_NOTE`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct RmNote {
    /// The image being deleted.
    image: String,
    /// Its parent link (what pruning deletes next).
    parent: Option<String>,
    /// `-f`.
    force: bool,
    /// Untagged parents are deleted (no `--no-prune`).
    prune: bool,
    /// Conflicts end the deletion silently (a parent reached by pruning, or an image whose
    /// last reference the deletion removed).
    quiet: bool,
}

/// The most [`RM_NOTE`] may hold.
const MAX_RM_NOTE: u64 = 64 * 1024;

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
        let result = self.delete_noted(arg, force, prune, records);
        // The note goes once the deletion is over, whether it succeeded or not.
        let cleared = self.clear_rm_note();
        result.and(cleared.map_err(RemoveError::from))
    }

    fn delete_noted(
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
            // When removing these references leaves none, the image is deleted next: noted
            // before the first change, so that a kill in between is finished, not left as
            // a dangling image.
            let leaves_none = repo_refs.iter().all(|r| {
                *r == parsed
                    || (!parsed.is_canonical()
                        && r.is_canonical()
                        && r.name() == parsed.name()
                        && !repo_refs.iter().any(|t| {
                            !t.is_canonical() && t.name() == parsed.name() && *t != parsed
                        }))
            });
            if leaves_none && repo_refs.contains(&parsed) {
                self.write_rm_note(&id, force, prune, true)?;
            }
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
            if !repo_refs.is_empty() {
                self.write_rm_note(&id, force, prune, false)?;
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
            self.write_rm_note(&id, force, prune, quiet)?;
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

impl Store {
    /// Writes (durably) the note of the deletion of `id` about to change the store.
    fn write_rm_note(
        &self,
        id: &Digest,
        force: bool,
        prune: bool,
        quiet: bool,
    ) -> Result<(), durable_fs::Error> {
        let note = RmNote {
            image: id.to_string(),
            parent: self.parent_link(id).filter(|p| !p.is_empty()),
            force,
            prune,
            quiet,
        };
        let text = serde_json::to_vec(&note).unwrap_or_default();
        let dir = durable_fs::Dir::open_nofollow(self.data_root().image_dir())?;
        dir.atomic_write(RM_NOTE, &text, 0o600)
    }

    /// Removes the note of a deletion that is over.
    fn clear_rm_note(&self) -> Result<(), durable_fs::Error> {
        let dir = durable_fs::Dir::open_nofollow(self.data_root().image_dir())?;
        if dir.remove_file(RM_NOTE)? {
            dir.sync()?;
        }
        Ok(())
    }

    /// Finishes the deletion a killed `rm` (or `prune`) noted: the image is deleted with the
    /// flags it was given and the same conflict rules, and pruning goes on to its parents;
    /// if the image is already gone, pruning starts at its parent. What a conflict stops is
    /// left as it is. Returns what was done (and the error that stopped it, if any), then
    /// removes the note. Run by every write open, under the exclusive lock.
    pub(crate) fn finish_removal(&mut self) -> Result<(), crate::error::OpenError> {
        let dir = durable_fs::Dir::open_nofollow(self.data_root().image_dir())?;
        let Some(bytes) = dir.read(RM_NOTE, MAX_RM_NOTE)? else {
            return Ok(());
        };
        let path = dir.join(RM_NOTE);
        let note = serde_json::from_slice::<RmNote>(&bytes);
        let mut records = Vec::new();
        let mut stopped = None;
        if let Ok(note) = &note
            && let Ok(id) = note.image.parse::<Digest>()
            && self.layer_store().mode() == layer_store::OpenMode::ReadWrite
        {
            let containers = read_containers(self.data_root().root());
            let parent = note
                .parent
                .as_deref()
                .and_then(|p| p.parse::<Digest>().ok());
            let start = if self.contains(&id) {
                Some((id, note.force, note.quiet))
            } else if note.prune {
                parent
                    .filter(|p| self.contains(p))
                    .map(|p| (p, false, true))
            } else {
                None
            };
            if let Some((start, force, quiet)) = start
                && let Err(e) =
                    self.delete_helper(start, &mut records, force, note.prune, quiet, &containers)
            {
                stopped = Some(e.to_string());
            }
        }
        for r in records {
            let (verb, target) = match r {
                DeleteRecord::Untagged(r) => ("untagged", r),
                DeleteRecord::Deleted(d) => ("deleted", d.to_string()),
            };
            tracing::info!("{verb} {target}: finishing an interrupted rm");
            self.note_recovered(verb, target, "finishing an interrupted rm".to_owned());
        }
        if let Some(e) = stopped {
            tracing::warn!(error = %e, "an interrupted rm could not be finished");
            self.note_recovered(
                "stopped",
                "an interrupted rm".to_owned(),
                format!("{e} (as the rm itself would have)"),
            );
        }
        dir.remove_file(RM_NOTE)?;
        dir.sync()?;
        let why = match note {
            Ok(_) => "note of an interrupted rm (finished)".to_owned(),
            Err(e) => format!("note of an interrupted rm, unreadable ({e})"),
        };
        self.note_recovered("removed", path.display().to_string(), why);
        Ok(())
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
