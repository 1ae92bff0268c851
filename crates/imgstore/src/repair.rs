//! `fsck --repair`: finishes or rolls back what interrupted writes left, and with
//! `--quarantine` moves damaged entries out of dockerd's way, one [`Action`] per change.
//!
//! Most of the work is the write open's ([`Store::open`]): every write open removes the
//! temp files of interrupted writes (imagedb, `repositories.json`, load staging, notes), the
//! layer store's staging and `-removing` leftovers with their content, the metadata of
//! images whose deletion was cut short, and finishes the layer releases and image deletions
//! a killed `rm` noted. `repair` opens for writing, reports what that open did
//! ([`Store::recovered`]), then asks the storage driver to repair its own directory
//! ([`layer_store::Driver::repair_content`]: in-flight directories nothing names, short links
//! that lead nowhere, a layer's missing short link), and removes the partial downloads of
//! killed pulls (`image/<driver>/.imgstore-pull/`, only files named as pull names them).
//!
//! What may hold data someone wants is never deleted: a config that fails verification or
//! does not parse, an image whose layer is gone, a layer that does not load, a reference to
//! a missing image, a parent link to one, a `lastUpdated` that does not parse. `fsck`
//! reports them; with `--quarantine` they are moved under `image/<driver>/quarantine/`, at
//! the same relative path (references into `quarantine/repositories.json`), so that dockerd
//! starts clean and an operator can move them back by hand. Directories of the driver that
//! nothing names are never touched (BuildKit keeps content there).
//!
//! A second run finds nothing to do.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::OpenError;
use crate::store::Store;

/// One change a repair made (or a write open made to finish an interrupted write).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    /// What was done: `removed`, `deleted`, `untagged`, `linked`, `quarantined`, `stopped`.
    pub verb: &'static str,
    /// The file, directory, reference or ID concerned.
    pub target: String,
    /// Why, in words.
    pub why: String,
}

impl Action {
    /// `removed <path>: <why>`.
    pub(crate) fn removed(path: &Path, why: &str) -> Action {
        Action {
            verb: "removed",
            target: path.display().to_string(),
            why: why.to_owned(),
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.verb, self.target, self.why)
    }
}

/// Why a repair stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepairError {
    /// Opening the data root for writing failed (locked, a dockerd uses it, unsafe layout,
    /// or finishing an interrupted write failed).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The storage driver could not repair its directory.
    #[error("cannot repair the storage driver's directory: {0}")]
    Driver(Box<layer_store::DriverError>),
    /// Removing a partial download of pull failed.
    #[error("cannot remove {path}: {source}")]
    Partial {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<durable_fs::Error>,
    },
    /// Moving an entry to the quarantine failed.
    #[error("cannot move {path} to the quarantine: {source}")]
    Quarantine {
        /// The entry.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<durable_fs::Error>,
    },
    /// Moving a reference out of `repositories.json` failed.
    #[error("cannot move reference {reference} to the quarantine: {message}")]
    Reference {
        /// The reference as stored.
        reference: String,
        /// Why.
        message: String,
    },
}

/// The directory, under `image/<driver>`, where `--quarantine` moves what it takes out.
pub const QUARANTINE_DIR: &str = "quarantine";

/// Repairs the store `store`, opened for writing (its open already finished what
/// interrupted writes left: see [`Store::recovered`]). With `quarantine`, damaged entries
/// are moved under `image/<driver>/quarantine/`. Returns every action taken, in order,
/// including the open's; the actions done before an error are lost only with the process.
pub fn repair(store: &mut Store, quarantine: bool) -> Result<Vec<Action>, RepairError> {
    let mut done: Vec<Action> = store.recovered().to_vec();
    if let Some(driver) = store.reading_driver() {
        let (used, others) = crate::fsck::driver_names(store);
        let used: Vec<&str> = used.iter().map(String::as_str).collect();
        let others: Vec<&str> = others.iter().map(String::as_str).collect();
        let repaired = driver
            .repair_content(&used, &others)
            .map_err(|e| RepairError::Driver(Box::new(e)))?;
        for r in repaired {
            tracing::info!("{r}");
            use layer_store::ContentRepair as R;
            done.push(match r {
                R::RemovedInFlight { path, cache_id } => Action::removed(
                    &path,
                    &format!("content of an interrupted layer write (cache-id {cache_id}) that no layer uses"),
                ),
                R::RemovedDanglingLink { path, target } => Action::removed(
                    &path,
                    &format!("short link to {target}, which does not exist"),
                ),
                R::Relinked { cache_id, path } => Action {
                    verb: "linked",
                    target: path.display().to_string(),
                    why: format!("the short link of layer content {cache_id} was missing"),
                },
                other => Action {
                    verb: "repaired",
                    target: store.data_root().driver_dir().display().to_string(),
                    why: other.to_string(),
                },
            });
        }
    }
    remove_partials(store, &mut done)?;
    if quarantine {
        quarantine_damage(store, &mut done)?;
    }
    Ok(done)
}

/// Removes the partial downloads a killed `pull` left (regular files named as pull names
/// them, never through a link), and their directory once empty. Anything else there stays.
fn remove_partials(store: &Store, done: &mut Vec<Action>) -> Result<(), RepairError> {
    let scan = crate::partials::scan(&store.data_root().image_dir());
    let Some(dir) = &scan.opened else {
        return Ok(());
    };
    let fail = |path: PathBuf, source: durable_fs::Error| RepairError::Partial {
        path,
        source: Box::new(source),
    };
    for (name, blob, size) in &scan.partials {
        let path = dir.join(name);
        if dir.remove_file(name).map_err(|e| fail(path.clone(), e))? {
            done.push(Action::removed(
                &path,
                &format!(
                    "partial download of blob {blob} ({size} bytes) an interrupted pull left; a pull downloads it again"
                ),
            ));
        }
    }
    if !scan.partials.is_empty() {
        dir.sync().map_err(|e| fail(scan.dir.clone(), e))?;
    }
    if scan.foreign.is_empty() && dir.entries().is_ok_and(|e| e.is_empty()) {
        let image = durable_fs::Dir::open_nofollow(store.data_root().image_dir())
            .map_err(|e| fail(scan.dir.clone(), e))?;
        if image
            .remove_tree(crate::pull::PARTIAL_DIR)
            .map_err(|e| fail(scan.dir.clone(), e))?
        {
            image.sync().map_err(|e| fail(scan.dir.clone(), e))?;
            done.push(Action::removed(
                &scan.dir,
                "empty directory of pull's partial downloads",
            ));
        }
    }
    Ok(())
}

/// Moves `rel` (beneath `image/<driver>`) to the same relative path under the quarantine,
/// adding `.1`, `.2`, ... when that name is taken. Returns where it went.
fn move_to_quarantine(image: &durable_fs::Dir, rel: &Path) -> Result<PathBuf, RepairError> {
    let fail = |source: durable_fs::Error| RepairError::Quarantine {
        path: image.join(rel),
        source: Box::new(source),
    };
    // Every caller names an entry inside a directory of the image store.
    let parent = rel.parent().unwrap_or(Path::new(""));
    let name = rel.file_name().unwrap_or(rel.as_os_str());
    let qdir = image
        .create_dir_all(Path::new(QUARANTINE_DIR).join(parent), 0o700)
        .map_err(fail)?;
    let mut target = name.to_owned();
    let mut n = 0;
    while qdir.meta(&target).map_err(fail)?.is_some() {
        n += 1;
        target = name.to_owned();
        target.push(format!(".{n}"));
    }
    let from_parent = if parent.as_os_str().is_empty() {
        durable_fs::Dir::open_nofollow(image.path()).map_err(fail)?
    } else {
        image.require_dir(parent).map_err(fail)?
    };
    from_parent.rename(name, &qdir, &target).map_err(fail)?;
    qdir.sync().map_err(fail)?;
    from_parent.sync().map_err(fail)?;
    Ok(qdir.join(&target))
}

/// Moves `rel` (under `image`) to the quarantine if it is there, noting it in `done`.
fn quarantine_present(
    image: &durable_fs::Dir,
    rel: &Path,
    why: impl FnOnce() -> String,
    done: &mut Vec<Action>,
) -> Result<(), RepairError> {
    if image
        .meta(rel)
        .map_err(|e| RepairError::Open(OpenError::from(e)))?
        .is_some()
    {
        let to = move_to_quarantine(image, rel)?;
        done.push(quarantined(&image.join(rel), &to, why()));
    }
    Ok(())
}

fn quarantined(from: &Path, to: &Path, why: String) -> Action {
    Action {
        verb: "quarantined",
        target: from.display().to_string(),
        why: format!("{why}; moved to {}", to.display()),
    }
}

/// Moves what restore could not use, and what names it, to the quarantine.
fn quarantine_damage(store: &mut Store, done: &mut Vec<Action>) -> Result<(), RepairError> {
    let image_dir = store.data_root().image_dir();
    let image = durable_fs::Dir::open_nofollow(&image_dir)
        .map_err(|e| RepairError::Open(OpenError::from(e)))?;
    let content = Path::new("imagedb").join("content").join("sha256");
    let metadata = Path::new("imagedb").join("metadata").join("sha256");
    // Images restore skipped: their config and metadata (an image of another OS is not
    // damage: dockerd of that OS uses it).
    let skipped: Vec<_> = store
        .image_restore()
        .skipped
        .iter()
        .filter(|s| !matches!(s.reason, image_store::SkipReason::UnsupportedOs(_)))
        .cloned()
        .collect();
    for s in &skipped {
        let hex = s.id.0.hex();
        for rel in [content.join(&hex), metadata.join(&hex)] {
            quarantine_present(
                &image,
                &rel,
                || format!("image {} is not restored ({})", s.id, s.reason),
                done,
            )?;
        }
    }
    // Layers that do not load (their content stays where it is, named by the moved entry).
    let skipped_layers = store.layer_restore().skipped.clone();
    for l in &skipped_layers {
        let rel = Path::new("layerdb")
            .join(l.chain_id.0.algorithm().name())
            .join(l.chain_id.0.hex());
        quarantine_present(
            &image,
            &rel,
            || format!("layer {} does not load ({})", l.chain_id, l.reason),
            done,
        )?;
    }
    // Parent links to images that are not restored, and lastUpdated that does not parse.
    let images = store.images();
    let dangling: Vec<_> = store
        .image_restore()
        .dangling_parents
        .iter()
        .filter(|d| images.contains_key(&d.child.0))
        .cloned()
        .collect();
    for d in &dangling {
        let rel = metadata.join(d.child.0.hex()).join(image_store::KEY_PARENT);
        let to = move_to_quarantine(&image, &rel)?;
        done.push(quarantined(
            &image.join(&rel),
            &to,
            format!("parent link {:?} names no restored image", d.value),
        ));
    }
    for id in images.keys() {
        if let Err(text) = store.last_updated(id) {
            let rel = metadata.join(id.hex()).join(image_store::KEY_LAST_UPDATED);
            quarantine_present(
                &image,
                &rel,
                || format!("lastUpdated holds {text:?}, not an RFC 3339 time"),
                done,
            )?;
        }
    }
    // References to images that are not restored, or that are not references at all.
    let bad: Vec<(String, String, String)> = store
        .refs()
        .entries()
        .filter(|(_, r, id)| {
            crate::reference::Reference::parse_normalized(r).is_err()
                || id
                    .parse::<digest_set::Digest>()
                    .map_or(true, |d| !images.contains_key(&d))
        })
        .map(|(repo, r, id)| (repo.to_owned(), r.to_owned(), id.to_owned()))
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    let qfile = image_dir.join(QUARANTINE_DIR).join("repositories.json");
    let mut kept: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> =
        image
            .read(
                Path::new(QUARANTINE_DIR).join("repositories.json"),
                64 << 20,
            )
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice::<QuarantinedRefs>(&b).ok())
            .map(|q| q.repositories)
            .unwrap_or_default();
    for (repo, r, id) in &bad {
        kept.entry(repo.clone())
            .or_default()
            .insert(r.clone(), id.clone());
    }
    // The quarantine's copy first: a kill in between leaves the reference in both places.
    let text = serde_json::to_vec(&QuarantinedRefs { repositories: kept }).unwrap_or_default();
    let qdir =
        image
            .create_dir_all(QUARANTINE_DIR, 0o700)
            .map_err(|e| RepairError::Quarantine {
                path: qfile.clone(),
                source: Box::new(e),
            })?;
    qdir.atomic_write("repositories.json", &text, 0o600)
        .map_err(|e| RepairError::Quarantine {
            path: qfile.clone(),
            source: Box::new(e),
        })?;
    for (repo, r, id) in bad {
        store
            .refs_mut()
            .remove_entry(&repo, &r)
            .map_err(|e| RepairError::Reference {
                reference: r.clone(),
                message: e.to_string(),
            })?;
        done.push(Action {
            verb: "quarantined",
            target: r.clone(),
            why: format!(
                "reference to {id:?}, which is not a restored image; moved to {}",
                qfile.display()
            ),
        });
    }
    Ok(())
}

/// `quarantine/repositories.json`: the references taken out, in dockerd's format.
#[derive(serde::Serialize, serde::Deserialize)]
struct QuarantinedRefs {
    #[serde(rename = "Repositories")]
    repositories: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}
