//! [`Overlay2Driver`]: dockerd 20.10's `overlay2` driver, written without mounting anything.
//!
//! Layout (`<data-root>/overlay2`, mode 0710; checked against a root dockerd 20.10.24 wrote):
//! - `<cache-id>/` (0710) holds `diff/` (0755, the layer's own files), `link` (0644, a
//!   26-character base32 short name) and, for a layer with a parent, `work/` (0700, empty) and
//!   `lower` (0644: `l/<parent short>:l/<grandparent short>:...`, uppermost first, at most
//!   [`MAX_LOWERS`] entries). A layer that has a child holds an empty `committed` (0600).
//! - `l/` (0700) holds `<short>` symlinks to `../<cache-id>/diff`.
//!
//! Whiteouts are stored as overlayfs reads them (see
//! [`WhiteoutFormat::Overlay`](crate::apply::WhiteoutFormat::Overlay)): a deleted `NAME` is
//! a 0/0 character device, an opaque directory has `trusted.overlay.opaque=y`. The layer's tar
//! stream is reassembled from its tar-split, which keeps the whiteout members themselves.
//!
//! Writing is atomic: a layer is built under the in-flight name
//! `imgstore-partial-<cache-id>` ([`in_flight_cache_id`]) and renamed to `<cache-id>`, then
//! linked under `l/`, only at [`commit`](crate::Driver::commit), once complete and synced.
//! dockerd never looks at a directory under another name; [`remove`](crate::Driver::remove)
//! removes both names.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use durable_fs::{Dir, FileKind};

use crate::apply::{self, WhiteoutFormat};
use crate::content::DiffStream;
use crate::driver::{ContentIssue, ContentRepair, Driver, DriverError};

/// The most a `link` or `lower` file may hold (128 lower layers of `l/` + 26 characters).
const SMALL_FILE_LIMIT: u64 = 64 * 1024;

/// The most lower layers overlay2 stacks under a layer (dockerd's `maxDepth`).
pub const MAX_LOWERS: usize = 128;

/// The directory of short links.
const LINK_DIR: &str = "l";

/// The length of a short link name (dockerd's `idLength`).
pub const SHORT_ID_LEN: usize = 26;

/// The prefix of a layer directory being written (followed by its cache ID).
pub const IN_FLIGHT_PREFIX: &str = "imgstore-partial-";

/// The cache ID of an in-flight layer directory named `name`, if `name` is one of ours.
pub fn in_flight_cache_id(name: &str) -> Option<&str> {
    name.strip_prefix(IN_FLIGHT_PREFIX)
        .filter(|id| component(id) && crate::restore::valid_cache_id(id))
}

/// Whether `s` is a short link name as dockerd writes them: 26 characters of the base32
/// alphabet.
pub fn is_short_id(s: &str) -> bool {
    s.len() == SHORT_ID_LEN && s.bytes().all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7'))
}

/// The overlay2 driver over `<data-root>/overlay2`. Writing layers needs root (character
/// devices, `trusted.*` extended attributes); reading, describing and removing do not.
#[derive(Debug, Clone)]
pub struct Overlay2Driver {
    home: PathBuf,
}

impl Overlay2Driver {
    /// The driver for the directory `home` (`<data-root>/overlay2`). Creates nothing: the
    /// home and `l/` are created by the first layer written.
    pub fn new(home: impl Into<PathBuf>) -> Self {
        Overlay2Driver { home: home.into() }
    }

    /// The driver's home.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The home, opened (a link to another disk is followed once); `None` if missing.
    fn open_home(&self) -> Result<Option<Dir>, DriverError> {
        match Dir::open(&self.home) {
            Ok(h) => Ok(Some(h)),
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The home, created (0710, with `l/` 0700) when missing.
    fn create_home(&self) -> Result<Dir, DriverError> {
        let home = match self.open_home()? {
            Some(h) => h,
            None => {
                let (Some(parent), Some(name)) = (self.home.parent(), self.home.file_name()) else {
                    return Err(DriverError::Other(format!(
                        "cannot create the overlay2 home {}",
                        self.home.display()
                    )));
                };
                let parent = if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                };
                Dir::open(parent)?.create_dir(name, 0o710)?
            }
        };
        home.create_dir(LINK_DIR, 0o700)?;
        Ok(home)
    }

    /// The directory holding layer `cache_id`'s files now: its in-flight directory while it
    /// is being written, else its own.
    fn layer_rel(home: &Dir, cache_id: &str) -> Result<String, DriverError> {
        let partial = format!("{IN_FLIGHT_PREFIX}{cache_id}");
        Ok(match home.meta(&partial)? {
            Some(_) => partial,
            None => cache_id.to_owned(),
        })
    }

    /// The short link name of layer directory `rel`, checked.
    fn read_link_id(home: &Dir, rel: &str) -> Result<Option<String>, DriverError> {
        match home.read(Path::new(rel).join("link"), SMALL_FILE_LIMIT)? {
            None => Ok(None),
            Some(b) => {
                let s = String::from_utf8_lossy(&b).trim().to_owned();
                if is_short_id(&s) {
                    Ok(Some(s))
                } else {
                    Err(DriverError::Other(format!(
                        "{}: not a short link name: {:?}",
                        home.join(Path::new(rel).join("link")).display(),
                        durable_fs::escaped_prefix(&b, 80)
                    )))
                }
            }
        }
    }

    /// The `lower` of a layer on `parent` (`l/<parent short>` then the parent's own
    /// `lower`), or `None` without a parent. More than [`MAX_LOWERS`] is an error.
    fn lower_of(home: &Dir, parent: Option<&str>) -> Result<Option<String>, DriverError> {
        let Some(p) = parent else {
            return Ok(None);
        };
        let Some(plink) = Self::read_link_id(home, p)? else {
            return Err(DriverError::Other(format!(
                "parent layer {p} has no {}",
                home.join(Path::new(p).join("link")).display()
            )));
        };
        let mut lowers = vec![format!("{LINK_DIR}/{plink}")];
        if let Some(b) = home.read(Path::new(p).join("lower"), SMALL_FILE_LIMIT)? {
            let text = String::from_utf8_lossy(&b);
            lowers.extend(
                text.trim()
                    .split(':')
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned),
            );
        }
        if lowers.len() > MAX_LOWERS {
            return Err(DriverError::TooDeep {
                driver: "overlay2".to_owned(),
                max: MAX_LOWERS,
            });
        }
        Ok(Some(lowers.join(":")))
    }

    /// `work/` and `lower` in the layer directory `dir`, `committed` in the parent's.
    fn link_parent(home: &Dir, dir: &Dir, parent: &str, lower: &str) -> Result<(), DriverError> {
        dir.create_dir("work", 0o700)?;
        dir.write_new("lower", lower.as_bytes(), 0o644)?;
        let committed = Path::new(parent).join("committed");
        if home.meta(&committed)?.is_none() {
            home.write_new(&committed, b"", 0o600)?;
        }
        Ok(())
    }

    /// A fresh short link name, unused in `l/`.
    fn new_short_id(home: &Dir) -> Result<String, DriverError> {
        const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        for _ in 0..16 {
            // 17 random bytes as dockerd draws them; the first 26 base32 digits are used.
            let hex = durable_fs::random_hex(17).map_err(|e| DriverError::Io {
                path: PathBuf::from("getrandom"),
                source: e,
            })?;
            let mut bits: u32 = 0;
            let mut nbits = 0;
            let mut id = String::with_capacity(SHORT_ID_LEN);
            for pair in hex.as_bytes().chunks(2) {
                let byte = std::str::from_utf8(pair)
                    .ok()
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
                    .unwrap_or(0);
                bits = (bits << 8) | u32::from(byte);
                nbits += 8;
                while nbits >= 5 && id.len() < SHORT_ID_LEN {
                    nbits -= 5;
                    id.push(char::from(ALPHABET[((bits >> nbits) & 31) as usize]));
                }
            }
            if home.meta(Path::new(LINK_DIR).join(&id))?.is_none() {
                return Ok(id);
            }
        }
        Err(DriverError::Other(
            "no free overlay2 short link name".to_owned(),
        ))
    }
}

/// A single, plain path component (no `/`, not `.` or `..`, not empty).
fn component(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('\0')
}

fn check_cache_id(cache_id: &str) -> Result<(), DriverError> {
    if component(cache_id) && crate::restore::valid_cache_id(cache_id) {
        return Ok(());
    }
    Err(DriverError::InvalidCacheId {
        cache_id: cache_id.to_owned(),
        reason: "must be a single, non-empty path component of letters, digits and _+,-.".into(),
    })
}

/// `a` joined with `b` and cleaned lexically, as Go's `filepath.Join`.
fn join_clean(a: &Path, b: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in a.join(b).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

impl Driver for Overlay2Driver {
    fn name(&self) -> &str {
        "overlay2"
    }

    /// Builds the layer's directory under its in-flight name: `diff/`, `link` and, on a
    /// parent, `work/` and `lower` (and `committed` in the parent, as dockerd does). Nothing
    /// is linked under `l/` before [`commit`](Driver::commit).
    fn create(&self, cache_id: &str, parent_cache_id: Option<&str>) -> Result<(), DriverError> {
        check_cache_id(cache_id)?;
        if let Some(p) = parent_cache_id {
            check_cache_id(p)?;
        }
        if !apply::is_root_user() {
            return Err(DriverError::NeedsRoot {
                driver: "overlay2".to_owned(),
                why: "whiteouts are character devices and opaque directories trusted.* extended attributes".to_owned(),
            });
        }
        let home = self.create_home()?;
        let partial = format!("{IN_FLIGHT_PREFIX}{cache_id}");
        if home.meta(cache_id)?.is_some() {
            return Err(DriverError::Io {
                path: home.join(cache_id),
                source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            });
        }
        // What a killed write of the same (random) ID left: never a layer's.
        home.remove_tree(&partial)?;
        let lower = Self::lower_of(&home, parent_cache_id)?;
        let build = || -> Result<(), DriverError> {
            let dir = home.create_dir(&partial, 0o710)?;
            dir.create_dir("diff", 0o755)?;
            let id = Self::new_short_id(&home)?;
            dir.write_new("link", id.as_bytes(), 0o644)?;
            if let (Some(lower), Some(p)) = (&lower, parent_cache_id) {
                Self::link_parent(&home, &dir, p, lower)?;
            }
            Ok(())
        };
        build().inspect_err(|_| {
            let _ = home.remove_tree(&partial);
        })
    }

    fn independent_layers(&self) -> bool {
        true
    }

    /// Writes `lower` and `work/` in the in-flight directory of `cache_id` and `committed`
    /// in its parent's, as [`create`](Driver::create) does for a layer created on its parent.
    fn attach_parent(
        &self,
        cache_id: &str,
        parent_cache_id: Option<&str>,
    ) -> Result<(), DriverError> {
        check_cache_id(cache_id)?;
        let Some(p) = parent_cache_id else {
            return Ok(());
        };
        check_cache_id(p)?;
        let home = Dir::open(&self.home)?;
        let dir = home.require_dir(format!("{IN_FLIGHT_PREFIX}{cache_id}"))?;
        if dir.meta("lower")?.is_some() {
            return Err(DriverError::Other(format!(
                "{} already has a parent",
                dir.path().display()
            )));
        }
        if let Some(lower) = Self::lower_of(&home, Some(p))? {
            Self::link_parent(&home, &dir, p, &lower)?;
        }
        Ok(())
    }

    fn remove(&self, cache_id: &str) -> Result<(), DriverError> {
        if !component(cache_id) {
            return Err(DriverError::InvalidCacheId {
                cache_id: cache_id.to_owned(),
                reason: "must be a single, non-empty path component".to_owned(),
            });
        }
        // Nothing beneath the home is followed.
        let Some(home) = self.open_home()? else {
            return Ok(());
        };
        home.remove_tree(format!("{IN_FLIGHT_PREFIX}{cache_id}"))?;
        if let Ok(Some(link)) = home.read(Path::new(cache_id).join("link"), SMALL_FILE_LIMIT) {
            let link = String::from_utf8_lossy(&link);
            let link = link.trim();
            if component(link) {
                // Only the link that points at this layer's own `diff` (dockerd writes
                // `../<cache-id>/diff`).
                let target = home
                    .read_link(Path::new(LINK_DIR).join(link))
                    .ok()
                    .flatten();
                let ours = target
                    .is_some_and(|t| Path::new(&t).ends_with(Path::new(cache_id).join("diff")));
                if ours {
                    home.remove_file(Path::new(LINK_DIR).join(link))?;
                }
            }
        }
        home.remove_tree(cache_id)?;
        Ok(())
    }

    /// Applies the members to the layer's `diff/` with overlay whiteouts and returns what
    /// dockerd records as the layer's size: the apparent size of `diff/` (symlinks count
    /// their target's length, a hard-linked file once).
    fn apply_diff(&self, cache_id: &str, diff: &mut DiffStream<'_>) -> Result<u64, DriverError> {
        check_cache_id(cache_id)?;
        let home = Dir::open(&self.home)?;
        let rel = Self::layer_rel(&home, cache_id)?;
        let layer = home.require_dir(&rel)?;
        layer.require_dir("diff")?;
        apply::apply_diff_with(&layer.join("diff"), diff, WhiteoutFormat::Overlay)?;
        Ok(layer.apparent_size("diff")?)
    }

    fn sync(&self, cache_id: &str) -> Result<(), DriverError> {
        check_cache_id(cache_id)?;
        let home = Dir::open(&self.home)?;
        let rel = Self::layer_rel(&home, cache_id)?;
        let layer = home.require_dir(&rel)?;
        rustix::fs::syncfs(layer.fd()).map_err(|e| DriverError::Io {
            path: layer.path().to_owned(),
            source: e.into(),
        })
    }

    /// One `syncfs` of the file system of the first layer's directory: every layer of this
    /// driver lives under the same home, on that file system.
    fn sync_many(&self, cache_ids: &[&str]) -> Result<(), DriverError> {
        match cache_ids.first() {
            Some(c) => self.sync(c),
            None => Ok(()),
        }
    }

    /// Renames the in-flight directory to `<cache-id>`, links `l/<short>` to its `diff`
    /// and makes both durable.
    fn commit(&self, cache_id: &str) -> Result<(), DriverError> {
        check_cache_id(cache_id)?;
        let home = Dir::open(&self.home)?;
        let partial = format!("{IN_FLIGHT_PREFIX}{cache_id}");
        if home.meta(&partial)?.is_some() {
            if home.meta(cache_id)?.is_some() {
                return Err(DriverError::Io {
                    path: home.join(cache_id),
                    source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
                });
            }
            home.require_dir(&partial)?.sync()?;
            home.rename(&partial, &home, cache_id)?;
        }
        let Some(id) = Self::read_link_id(&home, cache_id)? else {
            return Err(DriverError::Other(format!(
                "{} is missing",
                home.join(Path::new(cache_id).join("link")).display()
            )));
        };
        let link = Path::new(LINK_DIR).join(&id);
        let target = format!("../{cache_id}/diff");
        match home.read_link(&link) {
            Ok(Some(t)) if t == target.as_str() => {}
            Ok(None) => home.symlink(&target, &link)?,
            _ => {
                return Err(DriverError::Other(format!(
                    "{} exists and is not a link to {target}",
                    home.join(&link).display()
                )));
            }
        }
        home.require_dir(LINK_DIR)?.sync()?;
        home.sync()?;
        Ok(())
    }

    /// `MergedDir`, `UpperDir`, `WorkDir` and, for a layer with parents, `LowerDir` (the
    /// `lower` links resolved, as dockerd's `GetMetadata`). `None` when the layer's directory
    /// is missing.
    fn metadata(&self, cache_id: &str) -> Result<Option<BTreeMap<String, String>>, DriverError> {
        if !component(cache_id) {
            return Ok(None);
        }
        let Some(home) = self.open_home()? else {
            return Ok(None);
        };
        match home.meta(cache_id)? {
            Some(m) if m.kind == FileKind::Dir => {}
            _ => return Ok(None),
        }
        let dir = self.home.join(cache_id);
        let s = |p: PathBuf| p.to_string_lossy().into_owned();
        let mut m = BTreeMap::new();
        m.insert("MergedDir".to_owned(), s(dir.join("merged")));
        m.insert("UpperDir".to_owned(), s(dir.join("diff")));
        m.insert("WorkDir".to_owned(), s(dir.join("work")));
        if let Ok(Some(lower)) = home.read(Path::new(cache_id).join("lower"), SMALL_FILE_LIMIT) {
            let lower = String::from_utf8_lossy(&lower);
            let dirs: Vec<String> = lower
                .trim()
                .split(':')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let link = self.home.join(l);
                    match home.read_link(l) {
                        Ok(Some(target)) => s(join_clean(
                            link.parent().unwrap_or(&self.home),
                            Path::new(&target),
                        )),
                        _ => s(link),
                    }
                })
                .collect();
            if !dirs.is_empty() {
                m.insert("LowerDir".to_owned(), dirs.join(":"));
            }
        }
        Ok(Some(m))
    }

    /// Each layer's directory, `link`, `l/` link and `lower` entries; dangling `l/` links;
    /// in-flight directories of interrupted writes; directories nothing names. A root
    /// without `overlay2/` holds metadata only: nothing is reported.
    fn check_content(
        &self,
        layers: &[&str],
        others: &[&str],
    ) -> Result<Vec<ContentIssue>, DriverError> {
        let mut out = Vec::new();
        // A root without the driver's directory holds metadata only: nothing to check.
        let Some(home) = self.open_home()? else {
            return Ok(out);
        };
        // Short links, and the layer directory each leads to.
        let mut links: BTreeMap<String, Option<String>> = BTreeMap::new();
        if let Some(l) = home.open_dir(LINK_DIR)? {
            for e in l.entries()? {
                let name = e.name.to_string_lossy().into_owned();
                let target = l.read_link(&e.name).ok().flatten();
                let layer = target.as_ref().and_then(|t| {
                    let t = t.to_string_lossy();
                    let id = t.strip_prefix("../")?.strip_suffix("/diff")?.to_owned();
                    component(&id).then_some(id)
                });
                let resolves = match &layer {
                    Some(id) => home
                        .meta(Path::new(id).join("diff"))
                        .ok()
                        .flatten()
                        .is_some_and(|m| m.kind == FileKind::Dir),
                    None => false,
                };
                if !resolves {
                    out.push(ContentIssue::DanglingLink {
                        path: l.join(&e.name),
                        target: target.map_or_else(
                            || "(not a symbolic link)".to_owned(),
                            |t| t.to_string_lossy().into_owned(),
                        ),
                    });
                }
                links.insert(name, layer.filter(|_| resolves));
            }
        }
        for &cache_id in layers {
            if !component(cache_id) {
                continue;
            }
            match home.meta(cache_id)? {
                Some(m) if m.kind == FileKind::Dir => {}
                _ => {
                    out.push(ContentIssue::Missing {
                        cache_id: cache_id.to_owned(),
                        path: home.join(cache_id),
                    });
                    continue;
                }
            }
            let link_file = home.join(Path::new(cache_id).join("link"));
            match Self::read_link_id(&home, cache_id) {
                Ok(Some(id)) => {
                    if links.get(&id).and_then(Option::as_deref) != Some(cache_id) {
                        out.push(ContentIssue::BadLink {
                            cache_id: cache_id.to_owned(),
                            path: home.join(Path::new(LINK_DIR).join(&id)),
                            why: format!("missing, or not a link to ../{cache_id}/diff"),
                        });
                    }
                }
                Ok(None) => out.push(ContentIssue::BadLink {
                    cache_id: cache_id.to_owned(),
                    path: link_file,
                    why: "missing".to_owned(),
                }),
                Err(e) => out.push(ContentIssue::BadLink {
                    cache_id: cache_id.to_owned(),
                    path: link_file,
                    why: e.to_string(),
                }),
            }
            let lower_rel = Path::new(cache_id).join("lower");
            if let Ok(Some(b)) = home.read(&lower_rel, SMALL_FILE_LIMIT) {
                for entry in String::from_utf8_lossy(&b)
                    .trim()
                    .split(':')
                    .filter(|e| !e.is_empty())
                {
                    let ok = entry
                        .strip_prefix("l/")
                        .and_then(|s| links.get(s))
                        .is_some_and(Option::is_some);
                    if !ok {
                        out.push(ContentIssue::LowerMissing {
                            cache_id: cache_id.to_owned(),
                            path: home.join(&lower_rel),
                            entry: entry.to_owned(),
                        });
                    }
                }
            }
        }
        let named: std::collections::HashSet<&str> =
            layers.iter().chain(others.iter()).copied().collect();
        for e in home.entries()? {
            let name = e.name.to_string_lossy().into_owned();
            if name == LINK_DIR || named.contains(name.as_str()) {
                continue;
            }
            let path = home.join(&e.name);
            match in_flight_cache_id(&name) {
                Some(id) if e.kind == FileKind::Dir => out.push(ContentIssue::InFlight {
                    path,
                    cache_id: id.to_owned(),
                }),
                _ => out.push(ContentIssue::Unnamed { path }),
            }
        }
        Ok(out)
    }

    /// Removes the in-flight directories of cache IDs that nothing names (a write killed
    /// after its staging directory was gone), creates a layer's missing `l/` link again from
    /// its `link` file (what [`commit`](Driver::commit) does last), and removes `l/` links of
    /// dockerd's form (`../<id>/diff`) whose layer directory does not exist. Directories
    /// under other names are never touched.
    fn repair_content(
        &self,
        layers: &[&str],
        others: &[&str],
    ) -> Result<Vec<ContentRepair>, DriverError> {
        let mut out = Vec::new();
        let Some(home) = self.open_home()? else {
            return Ok(out);
        };
        let named: std::collections::HashSet<&str> =
            layers.iter().chain(others.iter()).copied().collect();
        for e in home.entries()? {
            if e.kind != FileKind::Dir {
                continue;
            }
            let name = e.name.to_string_lossy().into_owned();
            let Some(id) = in_flight_cache_id(&name) else {
                continue;
            };
            if named.contains(id) {
                continue;
            }
            home.remove_tree(&e.name)?;
            out.push(ContentRepair::RemovedInFlight {
                path: home.join(&e.name),
                cache_id: id.to_owned(),
            });
        }
        for &cache_id in layers {
            if !component(cache_id) {
                continue;
            }
            let has_diff = home
                .meta(Path::new(cache_id).join("diff"))?
                .is_some_and(|m| m.kind == FileKind::Dir);
            if !has_diff {
                continue;
            }
            let Ok(Some(id)) = Self::read_link_id(&home, cache_id) else {
                continue;
            };
            let link = Path::new(LINK_DIR).join(&id);
            if home.meta(&link)?.is_none() {
                home.create_dir(LINK_DIR, 0o700)?;
                home.symlink(format!("../{cache_id}/diff"), &link)?;
                out.push(ContentRepair::Relinked {
                    cache_id: cache_id.to_owned(),
                    path: home.join(&link),
                });
            }
        }
        if let Some(l) = home.open_dir(LINK_DIR)? {
            for e in l.entries()? {
                if e.kind != FileKind::Symlink {
                    continue;
                }
                let Some(target) = l.read_link(&e.name)? else {
                    continue;
                };
                let target = target.to_string_lossy().into_owned();
                let Some(id) = target
                    .strip_prefix("../")
                    .and_then(|t| t.strip_suffix("/diff"))
                    .filter(|id| component(id))
                else {
                    continue;
                };
                if home.meta(id)?.is_some() {
                    continue;
                }
                l.remove_file(&e.name)?;
                out.push(ContentRepair::RemovedDanglingLink {
                    path: l.join(&e.name),
                    target,
                });
            }
            if !out.is_empty() {
                l.sync()?;
            }
        }
        if !out.is_empty() {
            home.sync()?;
        }
        Ok(out)
    }

    fn open_file(
        &self,
        cache_id: &str,
        name: &[u8],
    ) -> Result<Box<dyn std::io::Read + Send>, DriverError> {
        check_cache_id(cache_id)?;
        let home = Dir::open(&self.home)?;
        let rel = Self::layer_rel(&home, cache_id)?;
        let diff = home.require_dir(Path::new(&rel).join("diff"))?;
        let f = apply::open_member(diff.path(), name).map_err(|e| DriverError::Io {
            path: diff
                .path()
                .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name)),
            source: e,
        })?;
        Ok(Box::new(f))
    }
}
