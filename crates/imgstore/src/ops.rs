//! The writing operations: `tag` and `rm`, with dockerd 20.10's rules
//! (`daemon/images/image_tag.go`, `image_delete.go`, `image/store.go`, `layer/layer_store.go`).

use std::collections::HashMap;
use std::path::Path;

use digest_set::Digest;
use image_store::time::Timestamp;

use crate::fsutil::{atomic_write, sync_dir};
use crate::reference::Reference;
use crate::store::{Error, Store};

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
    let Ok(entries) = std::fs::read_dir(root.join("containers")) else {
        return out;
    };
    for e in entries.filter_map(Result::ok) {
        let Ok(bytes) = std::fs::read(e.path().join("config.v2.json")) else {
            continue;
        };
        let Ok(c) = serde_json::from_slice::<Config>(&bytes) else {
            continue;
        };
        let Ok(image) = c.image.parse::<Digest>() else {
            continue;
        };
        let id = if c.id.is_empty() {
            e.file_name().to_string_lossy().into_owned()
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
    /// `source` resolves to, replacing an existing tag, and records `lastUpdated`.
    pub fn tag(&mut self, source: &str, target: &str) -> Result<Digest, Error> {
        let id = self.resolve(source)?;
        let r = Reference::parse_normalized(target)?;
        if r.is_canonical() {
            return Err(crate::refstore::RefStoreError::TagWithDigest.into());
        }
        let r = r.with_default_tag();
        self.ensure_image_dir()?;
        self.refs_mut().add_tag(&r, &id, true)?;
        self.set_last_updated(&id, Timestamp::now())?;
        Ok(id)
    }

    fn ensure_image_dir(&self) -> Result<(), Error> {
        let dir = self.data_root().image_dir();
        std::fs::create_dir_all(&dir).map_err(|e| Error::Io {
            op: "create directory",
            path: dir,
            source: e,
        })
    }

    fn metadata_dir(&self, id: &Digest) -> std::path::PathBuf {
        self.data_root()
            .imagedb_dir()
            .join("metadata")
            .join("sha256")
            .join(id.hex())
    }

    /// Writes `lastUpdated` metadata (RFC 3339 with nanoseconds), as dockerd's `SetLastUpdated`.
    pub fn set_last_updated(&mut self, id: &Digest, t: Timestamp) -> Result<(), Error> {
        let dir = self.metadata_dir(id);
        create_dir_0700(&dir)?;
        atomic_write(&dir.join("lastUpdated"), t.to_string().as_bytes(), 0o600)?;
        Ok(())
    }

    /// `docker rmi [-f] [--no-prune] IMAGE`: dockerd's `ImageDelete`. Returns the records in
    /// the order dockerd gives them.
    pub fn delete(
        &mut self,
        arg: &str,
        force: bool,
        prune: bool,
    ) -> Result<Vec<DeleteRecord>, Error> {
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
    ) -> Result<(), Error> {
        let driver = self.data_root().driver().to_owned();
        if driver != "vfs" && driver != "overlay2" {
            return Err(Error::UnsupportedDriver(driver));
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
                return Err(Error::ReferenceInUse {
                    reference: arg.to_owned(),
                    container: short_container(&c.id),
                    image: id.short(),
                });
            }
            let parsed = Reference::parse_normalized(arg)?.with_default_tag();
            if !self.refs_mut().delete(&parsed)? {
                return Err(Error::ReferenceMissing(parsed.familiar_string()));
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
        if !self.children(id).is_empty() {
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
    ) -> Result<(), Error> {
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
            let parent = self.image(&id).and_then(|e| e.parent.clone());
            for r in self.refs().references(&id).to_vec() {
                let r = r.with_default_tag();
                self.refs_mut().delete(&r)?;
                records.push(DeleteRecord::Untagged(r.familiar_string()));
            }
            let removed = self.delete_image(&id)?;
            records.push(DeleteRecord::Deleted(id));
            records.extend(removed.into_iter().map(DeleteRecord::Deleted));
            let Some(parent) = parent.filter(|p| !p.is_empty()) else {
                return Ok(());
            };
            if !prune {
                return Ok(());
            }
            let Ok(pid) = parent.parse::<Digest>() else {
                return Err(Error::UnrecognizedImage(parent));
            };
            id = pid;
            force = false;
            quiet = true;
        }
    }

    /// The image store's `Delete`: unlinks children, removes the config and metadata, and
    /// releases the image's layer. Returns the layers deleted, child first.
    fn delete_image(&mut self, id: &Digest) -> Result<Vec<Digest>, Error> {
        let Some(entry) = self.images().get(id).cloned() else {
            return Err(Error::UnrecognizedImage(id.to_string()));
        };
        let meta_root = self
            .data_root()
            .imagedb_dir()
            .join("metadata")
            .join("sha256");
        for child in self.children(id) {
            let p = meta_root.join(child.hex()).join("parent");
            remove_file_if_exists(&p)?;
            if let Some(c) = self.images_mut().get_mut(&child) {
                c.clear_parent();
            }
        }
        if let Some(p) = entry.parent_id()
            && let Some(set) = self.children_map_mut().get_mut(&p)
        {
            set.remove(id);
        }
        self.children_map_mut().remove(id);
        self.ids_mut().remove(id);
        self.images_mut().remove(id);
        let mdir = meta_root.join(id.hex());
        match std::fs::remove_dir_all(&mdir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Io {
                    op: "remove",
                    path: mdir,
                    source: e,
                });
            }
        }
        let content = self
            .data_root()
            .imagedb_dir()
            .join("content")
            .join("sha256")
            .join(id.hex());
        remove_file_if_exists(&content)?;
        if let Some(dir) = content.parent() {
            sync_dir(dir)?;
        }
        match entry.chain_id {
            Some(c) => self.release_layer(&c),
            None => Ok(Vec::new()),
        }
    }

    /// How many references each loaded layer has, as dockerd counts them after restore:
    /// loaded child layers, RW mounts, and one handle per restored image on top of it.
    fn layer_refcounts(&self) -> HashMap<Digest, usize> {
        let mut counts: HashMap<Digest, usize> = HashMap::new();
        for l in self.layers().values() {
            if let Some(p) = l.parent {
                *counts.entry(p).or_default() += 1;
            }
        }
        for (_, p) in self.mounts() {
            if let Some(p) = p {
                *counts.entry(*p).or_default() += 1;
            }
        }
        for e in self.images().values() {
            if let Some(c) = e.chain_id {
                *counts.entry(c).or_default() += 1;
            }
        }
        counts
    }

    /// Releases the reference a just-deleted image held on `top` and deletes every layer that
    /// drops to zero references, child first (dockerd's `releaseLayer`).
    fn release_layer(&mut self, top: &Digest) -> Result<Vec<Digest>, Error> {
        // The deleted image is no longer in the map, so its reference is already not counted.
        let mut counts = self.layer_refcounts();
        let mut removed = Vec::new();
        let mut current = Some(*top);
        while let Some(l) = current {
            if counts.get(&l).copied().unwrap_or(0) > 0 {
                break;
            }
            let Some(layer) = self.layers_mut().remove(&l) else {
                break;
            };
            self.delete_layer_files(&layer)?;
            removed.push(l);
            current = layer.parent;
            if let Some(p) = current
                && let Some(c) = counts.get_mut(&p)
            {
                *c = c.saturating_sub(1);
            }
        }
        Ok(removed)
    }

    fn delete_layer_files(&self, layer: &crate::store::Layer) -> Result<(), Error> {
        let parent_dir = layer.dir.parent().unwrap_or(Path::new("."));
        let removing = parent_dir.join(format!(
            "{}-{}-removing",
            layer.chain_id.hex(),
            random_hex()
        ));
        std::fs::rename(&layer.dir, &removing).map_err(|e| Error::Io {
            op: "rename",
            path: layer.dir.clone(),
            source: e,
        })?;
        sync_dir(parent_dir)?;
        self.remove_driver_content(&layer.cache_id)?;
        std::fs::remove_dir_all(&removing).map_err(|e| Error::Io {
            op: "remove",
            path: removing.clone(),
            source: e,
        })?;
        sync_dir(parent_dir)?;
        Ok(())
    }

    fn remove_driver_content(&self, cache_id: &str) -> Result<(), Error> {
        if cache_id.contains('/') || cache_id == "." || cache_id == ".." {
            return Ok(());
        }
        let droot = self.data_root().driver_dir();
        match self.data_root().driver() {
            "vfs" => remove_dir_if_exists(&droot.join("dir").join(cache_id)),
            "overlay2" => {
                let dir = droot.join(cache_id);
                if let Ok(link) = std::fs::read_to_string(dir.join("link")) {
                    let link = link.trim();
                    if !link.is_empty() && !link.contains('/') {
                        remove_file_if_exists(&droot.join("l").join(link))?;
                    }
                }
                remove_dir_if_exists(&dir)
            }
            other => Err(Error::UnsupportedDriver(other.to_owned())),
        }
    }
}

fn conflict_error(id: &Digest, c: &Conflict) -> Error {
    Error::Conflict {
        short: id.short(),
        force: if c.hard {
            "cannot be forced"
        } else {
            "must be forced"
        },
        message: c.message.clone(),
    }
}

fn create_dir_0700(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::Io {
            op: "create directory",
            path: dir.to_owned(),
            source: e,
        })
}

fn remove_file_if_exists(p: &Path) -> Result<(), Error> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io {
            op: "remove",
            path: p.to_owned(),
            source: e,
        }),
    }
}

fn remove_dir_if_exists(p: &Path) -> Result<(), Error> {
    match std::fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io {
            op: "remove",
            path: p.to_owned(),
            source: e,
        }),
    }
}

/// 64 hex characters that differ between calls (dockerd uses a random ID here).
fn random_hex() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Digest::sha256(format!("{t}-{}-{n}", std::process::id()).as_bytes()).hex()
}
