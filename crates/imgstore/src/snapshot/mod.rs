//! Snapshots of a restore: what a read-only open read of a data root, kept in the user's
//! cache directory and used instead of reading the root again while the root provably did
//! not change.
//!
//! A full restore opens and reads every config, parent link and layerdb file: about seven
//! small files an image, 700k at 100k images, which after a reboot means 700k random reads.
//! A snapshot holds the result of those reads, per store:
//!
//! - **layers**: each loaded layer's `diff`, `size`, `cache-id` and `parent` (a
//!   [`LayerRecord`]) and the `-removing` leftovers of the layer
//!   directories; [`LayerStore::open_read_only_from_records`](layer_store::LayerStore::open_read_only_from_records)
//!   computes sizes, depths and references from them and reads `tmp/` and `mounts/` (a few
//!   files) again;
//! - **images**: each loaded image's top chain ID, `created` and parent link (an
//!   [`ImageInfo`]), before the layers are attached;
//!   [`ImageStore::load_records`](image_store::ImageStore::load_records) links them and
//!   `attach` takes the layers, as after a full load.
//!
//! `repositories.json`, the layout checks and the lock are read and taken as always. Each
//! section is used only if its *stamps* still hold; otherwise that store is restored in
//! full (the other may still come from the snapshot), and a new snapshot is written. One
//! exception: when the configs are unchanged but metadata directories changed (a tag
//! rewrites `lastUpdated`, a build or a commit sets a parent link), only the parent links
//! in those directories are read again
//! ([`ImageStore::read_parent`](image_store::ImageStore::read_parent)), and the listing of
//! `metadata/sha256` when directories came or went.
//!
//! # Why a snapshot whose stamps hold gives what a full restore gives
//!
//! A stamp is what `lstat` says of a directory: device, inode, type and mode, link count,
//! size, mtime and ctime. Creating, removing or renaming an entry in a directory
//! sets the directory's ctime to the current time, and no system call sets a ctime to a
//! chosen value. The stamps a section holds are:
//!
//! - layers: `layerdb/sha256` and `layerdb/sha512` (or their absence). Restore reads the
//!   listings of these two and the files of each layer directory in them. dockerd and
//!   imgstore create a layer directory complete, by renaming a staging directory into
//!   place, and delete it by renaming it to `-removing` first: both change the listing, so
//!   the stamp. Neither ever writes into a committed layer directory.
//! - images: `imagedb/content/sha256`, `imagedb/metadata/sha256` and every digest-named
//!   entry of the latter. Restore reads the config files (content-addressed: a name stands
//!   for its bytes, and configs are written by temp file and rename, never in place), the
//!   listing of `metadata/sha256`, and each `metadata/sha256/<id>/parent`. `parent` (like
//!   `lastUpdated`) is rewritten by writing a temp file and renaming it over the old one
//!   inside the image's own directory, which changes that directory's stamp, not its
//!   parent's: hence one stamp per metadata directory.
//!
//! Stamps are taken *before* the restore reads what they cover, so a change during the
//! restore makes the stamp stale, never the snapshot. A stamp is written only if it is
//! *settled*: its ctime is older than the time read from the clock before stamping, minus
//! a margin ([`Snapshots::with_settle`], by default [`DEFAULT_SETTLE`], 2 s). File systems
//! take timestamps from a clock that is coarser than the one read here (a kernel tick, a
//! second on ext4 with small inodes); a change right after a stamp could otherwise get the
//! same ctime as the change right before it. With the margin, every later change gets a
//! ctime later than the recorded one. A snapshot written at a time later than the clock
//! says now (the clock was set back) is not used.
//!
//! So, as long as the stamps hold, every listing restore would read and every file it would
//! open is what it was when the snapshot was taken, and what restore computes from them is
//! what it computed then: the snapshot's records are passed to the same code that links
//! and checks them after a full read. Where only metadata directories changed, the configs
//! (and so each image's top layer and `created`) are still those recorded; each parent link
//! is then either recorded under a stamp that holds or read again after its directory was
//! stamped, which is all a load reads besides the configs. Only reads that found nothing wrong are recorded: a
//! store whose restore skipped a layer, a config or a parent link (unreadable, invalid, for
//! another OS) is not snapshotted, so that damage is always reported by a fresh read (and
//! `imgstore fsck` always reads everything).
//!
//! What this does not see: a file changed in place rather than replaced (`cp` over a
//! config, an editor writing into a layer's `size`), which neither dockerd nor imgstore
//! does; and file systems whose clock differs from this machine's by more than the margin
//! (a data root on a network file system). `--no-snapshot` restores from the files alone.
//!
//! # Files
//!
//! Snapshots live in [`Snapshots::default_dir`] (`$XDG_CACHE_HOME/imgstore` or
//! `~/.cache/imgstore`), outside the data root, so that read commands, which change nothing
//! under it, can write them. One file per data root, named by a hash of its key:
//! this build, the root's device, inode, driver and canonical path (a file holding another
//! key is ignored and replaced). Each section and the trailer carry a sha256; a file that
//! does not check out, or is not private to the user, is ignored and rewritten. Files are
//! written to a temp file and renamed into place, at most [`MAX_BYTES`] each and
//! [`MAX_FILES`] in the directory.

mod cache;
mod format;
mod stamp;

use std::cell::Cell;
use std::collections::HashMap;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use digest_set::{Algorithm, Digest};
use image_store::{ImageId, ImageInfo, ImageStore, Loaded};
use imagedb_fs::StoreBackend;
use layer_store::{LayerRecord, LayerStore, Leftover, LeftoverKind};

use self::cache::{CacheError, Key, SnapshotFile};
pub use self::cache::{DEFAULT_SETTLE, MAX_BYTES, MAX_FILES, Snapshots};
use self::format::{Decoder, Encoder, FormatError, IMAGES, LAYERS, SectionEncoder};
use self::stamp::{Stamp, open_dir, stamp_entries, stamp_path};
use crate::dataroot::DataRoot;
use crate::error::OpenError;

/// How an open used the snapshot of its data root.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotUse {
    /// The layers came from the snapshot.
    pub layers: bool,
    /// The images came from the snapshot.
    pub images: bool,
    /// How many parent links were read again for images that came from the snapshot
    /// (their metadata directories changed since, e.g. by a tag).
    pub reread_links: usize,
    /// A new snapshot was written.
    pub written: bool,
}

/// What [`restore`] gives: the stores before the image store takes its layers.
pub(crate) struct Restored {
    pub(crate) loaded: Loaded<Box<dyn StoreBackend>>,
    pub(crate) layers: LayerStore,
    pub(crate) layer_report: layer_store::RestoreReport,
    pub(crate) usage: SnapshotUse,
}

/// The directories whose stamps a snapshot holds.
struct Paths {
    layerdb: PathBuf,
    layer_algs: [PathBuf; 2],
    content: PathBuf,
    metadata: PathBuf,
}

impl Paths {
    fn of(root: &DataRoot) -> Paths {
        let layerdb = root.layerdb_dir();
        let imagedb = root.imagedb_dir();
        Paths {
            layer_algs: [layerdb.join("sha256"), layerdb.join("sha512")],
            layerdb,
            content: imagedb.join("content").join("sha256"),
            metadata: imagedb.join("metadata").join("sha256"),
        }
    }
}

/// The layer store restored, and the stamps to record it under (`None`: not to be
/// recorded).
struct LayerSide {
    store: LayerStore,
    report: layer_store::RestoreReport,
    from_snapshot: bool,
    stamps: Option<[Stamp; 2]>,
}

/// The image store loaded, and the stamps to record it under.
struct ImageSide {
    loaded: Loaded<Box<dyn StoreBackend>>,
    from_snapshot: bool,
    /// How many metadata directories changed since the snapshot (their links were read
    /// again).
    refreshed: usize,
    stamps: Option<ImageStamps>,
}

/// The stamps of the image section.
struct ImageStamps {
    top: [Stamp; 2],
    /// Metadata directories by the raw bytes of their names.
    metadata: Vec<([u8; 32], Stamp)>,
}

fn secs_nanos(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(_) => (i64::MIN, 0),
    }
}

/// Restores a data root read-only through its snapshot in `snaps`: each store from the
/// snapshot if its stamps hold, else from the files; then writes a new snapshot if a store
/// was read from the files and can be recorded. Problems with the snapshot itself are
/// logged and never fail the open. `make_backend` makes the image store's backend;
/// `imagedb` says whether it is the data root's imagedb (else there is nothing to snapshot
/// of the images).
pub(crate) fn restore(
    snaps: &Snapshots,
    root: &DataRoot,
    make_backend: &(dyn Fn() -> Result<Box<dyn StoreBackend>, OpenError> + Sync),
    make_driver: &(dyn Fn() -> Box<dyn layer_store::Driver> + Sync),
    imagedb: bool,
) -> Result<Restored, OpenError> {
    let start = SystemTime::now();
    let t = Instant::now();
    let key = Key::of(root);
    let file = key.as_ref().and_then(|key| match SnapshotFile::open(snaps, key) {
        Ok(f) if f.written_at() <= secs_nanos(start) => Some(f),
        Ok(f) => {
            tracing::debug!(path = %f.path().display(), "snapshot written later than now: the clock was set back; not used");
            None
        }
        Err(CacheError::Missing) => None,
        Err(e) => {
            tracing::debug!(error = %e, "snapshot not used");
            None
        }
    });
    let paths = Paths::of(root);
    let settled = |s: &Stamp| s.settled(start, snaps.settle());
    let (layers, images) = rayon::join(
        || restore_layers(file.as_ref(), &paths, make_driver, &settled),
        || restore_images(file.as_ref(), &paths, make_backend, imagedb, &settled),
    );
    let (layers, images) = (layers?, images?);
    let mut usage = SnapshotUse {
        layers: layers.from_snapshot,
        images: images.from_snapshot,
        reread_links: images.refreshed,
        written: false,
    };
    let fresh = (!layers.from_snapshot && layers.stamps.is_some())
        || ((!images.from_snapshot || images.refreshed > 0) && images.stamps.is_some());
    if let (Some(key), true) = (&key, fresh) {
        let encode_layers = |e: &mut Encoder<'_>| {
            if let Some(stamps) = &layers.stamps {
                encode_layers(e, stamps, &layers.report.leftovers, &layers.store);
            }
        };
        let encode_images = |e: &mut Encoder<'_>| {
            if let Some(stamps) = &images.stamps {
                encode_images(e, stamps, &images.loaded);
            }
        };
        let mut sections: Vec<SectionEncoder<'_>> = Vec::new();
        if layers.stamps.is_some() {
            sections.push((LAYERS, &encode_layers));
        }
        if images.stamps.is_some() {
            sections.push((IMAGES, &encode_images));
        }
        match cache::write(snaps, key, start, &sections) {
            Ok(path) => {
                usage.written = true;
                tracing::debug!(path = %path.display(), "snapshot written");
            }
            Err(e) => tracing::debug!(error = %e, "snapshot not written"),
        }
    }
    tracing::debug!(
        layers_from_snapshot = usage.layers,
        images_from_snapshot = usage.images,
        written = usage.written,
        ms = t.elapsed().as_millis() as u64,
        "restored through the snapshot cache"
    );
    Ok(Restored {
        loaded: images.loaded,
        layers: layers.store,
        layer_report: layers.report,
        usage,
    })
}

/// The layer section of `file` if its stamps are `stamps`: the store opened from its
/// records, as they are read. `None` when the section is missing, stale or damaged (a
/// store opened from a section that turns out damaged is dropped).
fn layers_from(
    file: &SnapshotFile,
    paths: &Paths,
    driver: Box<dyn layer_store::Driver>,
    stamps: &[Stamp; 2],
) -> Option<(LayerStore, layer_store::RestoreReport)> {
    let mut section = file.section(LAYERS)?;
    let d = &mut section.decoder;
    let head = (|| -> Result<_, FormatError> {
        let recorded = [d.stamp()?, d.stamp()?];
        if recorded != *stamps {
            return Ok(None);
        }
        let n = d.count(4)?;
        let mut removing = Vec::with_capacity(n);
        for _ in 0..n {
            removing.push(Leftover {
                path: PathBuf::from(std::ffi::OsString::from_vec(d.bytes()?)),
                kind: LeftoverKind::Removing,
                cleaned: false,
                error: None,
            });
        }
        Ok(Some((removing, d.count(1)?)))
    })();
    let (removing, count) = match head {
        Ok(Some(v)) => v,
        Ok(None) => return None,
        Err(e) => {
            tracing::debug!(path = %file.path().display(), error = %e, "snapshot layers not decoded");
            return None;
        }
    };
    let failed = Cell::new(false);
    let opened = LayerStore::open_read_only_from_records(
        &paths.layerdb,
        driver,
        Records {
            d,
            left: count,
            failed: &failed,
            next: Decoder::layer,
        },
        removing,
    );
    if failed.get() || !section.verify() {
        tracing::debug!(path = %file.path().display(), "snapshot layers damaged");
        return None;
    }
    match opened {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!(error = %e, "layer store not opened from the snapshot");
            None
        }
    }
}

/// `left` records decoded one by one as they are taken; a decoding error ends them and
/// sets `failed`.
struct Records<'d, R, T> {
    d: &'d mut Decoder<R>,
    left: usize,
    failed: &'d Cell<bool>,
    next: fn(&mut Decoder<R>) -> Result<T, FormatError>,
}

impl<R: Read, T> Iterator for Records<'_, R, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.left == 0 || self.failed.get() {
            return None;
        }
        self.left -= 1;
        match (self.next)(self.d) {
            Ok(v) => Some(v),
            Err(_) => {
                self.failed.set(true);
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // What a sound section holds: to reserve room for them.
        (self.left, Some(self.left))
    }
}

fn restore_layers(
    file: Option<&SnapshotFile>,
    paths: &Paths,
    make_driver: &(dyn Fn() -> Box<dyn layer_store::Driver> + Sync),
    settled: &(dyn Fn(&Stamp) -> bool + Sync),
) -> Result<LayerSide, OpenError> {
    let stamps = match (
        stamp_path(&paths.layer_algs[0]),
        stamp_path(&paths.layer_algs[1]),
    ) {
        (Ok(a), Ok(b)) => Some([a, b]),
        (Err(e), _) | (_, Err(e)) => {
            tracing::debug!(error = %e, "cannot stamp the layerdb");
            None
        }
    };
    let t = Instant::now();
    if let (Some(file), Some(stamps)) = (file, &stamps)
        && let Some((store, report)) = layers_from(file, paths, make_driver(), stamps)
    {
        tracing::debug!(
            ms = t.elapsed().as_millis() as u64,
            "layers restored from the snapshot"
        );
        return Ok(LayerSide {
            store,
            report,
            from_snapshot: true,
            stamps: Some(*stamps),
        });
    }
    let (store, report) = LayerStore::open_read_only(&paths.layerdb, make_driver())?;
    let recordable = report.skipped.is_empty();
    Ok(LayerSide {
        store,
        report,
        from_snapshot: false,
        stamps: stamps.filter(|s| recordable && s.iter().all(settled)),
    })
}

fn encode_layers(
    e: &mut Encoder<'_>,
    stamps: &[Stamp; 2],
    leftovers: &[Leftover],
    store: &LayerStore,
) {
    e.stamp(&stamps[0]);
    e.stamp(&stamps[1]);
    let removing: Vec<&Leftover> = leftovers
        .iter()
        .filter(|l| l.kind == LeftoverKind::Removing)
        .collect();
    e.count(removing.len());
    for l in removing {
        e.bytes(l.path.as_os_str().as_encoded_bytes());
    }
    e.count(store.len());
    store.for_each_record(|r: LayerRecord| e.layer(&r));
}

fn encode_images(
    e: &mut Encoder<'_>,
    stamps: &ImageStamps,
    loaded: &Loaded<Box<dyn StoreBackend>>,
) {
    e.stamp(&stamps.top[0]);
    e.stamp(&stamps.top[1]);
    e.count(stamps.metadata.len());
    for (name, s) in &stamps.metadata {
        e.raw(name);
        e.stamp(s);
    }
    e.count(loaded.len());
    loaded.for_each_image(|i: ImageInfo| e.image(&i));
}

/// The digest-named entries of the directory at `path` (none when it does not exist).
fn metadata_names(path: &std::path::Path) -> Result<Vec<[u8; 32]>, std::io::Error> {
    let mut names = Vec::new();
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if let Some(name) = entry.file_name().to_str()
            && let Ok(d) = Digest::from_hex(Algorithm::Sha256, name)
            && let Ok(raw) = <[u8; 32]>::try_from(d.as_bytes())
        {
            names.push(raw);
        }
    }
    Ok(names)
}

fn restore_images(
    file: Option<&SnapshotFile>,
    paths: &Paths,
    make_backend: &(dyn Fn() -> Result<Box<dyn StoreBackend>, OpenError> + Sync),
    imagedb: bool,
    settled: &(dyn Fn(&Stamp) -> bool + Sync),
) -> Result<ImageSide, OpenError> {
    if !imagedb {
        return Ok(ImageSide {
            loaded: ImageStore::load(make_backend()?)?,
            from_snapshot: false,
            refreshed: 0,
            stamps: None,
        });
    }
    let top = match (stamp_path(&paths.content), stamp_path(&paths.metadata)) {
        (Ok(a), Ok(b)) => Some([a, b]),
        (Err(e), _) | (_, Err(e)) => {
            tracing::debug!(error = %e, "cannot stamp the imagedb");
            None
        }
    };
    let meta_dir = match open_dir(&paths.metadata) {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!(error = %e, "cannot open the metadata directory to stamp it");
            None
        }
    };
    if let (Some(file), Some(top)) = (file, &top) {
        let t = Instant::now();
        if let Some(side) = images_from(
            file,
            paths,
            top,
            meta_dir.as_ref(),
            make_backend()?,
            settled,
        ) {
            tracing::debug!(
                ms = t.elapsed().as_millis() as u64,
                "images restored from the snapshot"
            );
            return Ok(side);
        }
    }
    let backend = make_backend()?;
    // Stamped before the load reads them.
    let metadata = match (&top, &meta_dir) {
        (Some(_), Some(dir)) => stamp_all(dir, &paths.metadata),
        (Some(_), None) => Some(Vec::new()),
        _ => None,
    };
    let loaded = ImageStore::load(backend)?;
    let stamps = match (top, metadata) {
        (Some(top), Some(metadata))
            if loaded.read_cleanly()
                && top.iter().all(settled)
                && metadata.iter().all(|(_, s)| settled(s)) =>
        {
            Some(ImageStamps { top, metadata })
        }
        _ => None,
    };
    Ok(ImageSide {
        loaded,
        from_snapshot: false,
        refreshed: 0,
        stamps,
    })
}

/// Stamps every digest-named entry of the metadata directory; `None` if one cannot be.
fn stamp_all(dir: &OwnedFd, path: &std::path::Path) -> Option<Vec<([u8; 32], Stamp)>> {
    let names = match metadata_names(path) {
        Ok(n) => n,
        Err(e) => {
            tracing::debug!(error = %e, "cannot list the metadata directory to stamp it");
            return None;
        }
    };
    let stamps: Vec<Mutex<Option<Stamp>>> = names.iter().map(|_| Mutex::new(None)).collect();
    let all = stamp_entries(dir, &names, &|i, r| match (r, stamps.get(i)) {
        (Ok(s), Some(slot)) => {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
            true
        }
        _ => false,
    });
    if !all {
        return None;
    }
    names
        .into_iter()
        .zip(stamps)
        .map(|(n, s)| Some((n, s.into_inner().unwrap_or_else(|e| e.into_inner())?)))
        .collect()
}

/// The image section of `file`, if its stamps hold: the images loaded from its records, as
/// they are read. Every metadata directory is stamped again (on many threads); the parent
/// link of each that changed since is read again, as a load reads it, and replaces the
/// recorded one. `None` when the section is missing, stale or damaged (a store loaded from
/// a section that turns out damaged is dropped), or a link read again does not read
/// cleanly (the full load reports it).
fn images_from(
    file: &SnapshotFile,
    paths: &Paths,
    top: &[Stamp; 2],
    meta_dir: Option<&OwnedFd>,
    backend: Box<dyn StoreBackend>,
    settled: &(dyn Fn(&Stamp) -> bool + Sync),
) -> Option<ImageSide> {
    let mut section = file.section(IMAGES)?;
    let d = &mut section.decoder;
    let head = (|| -> Result<_, FormatError> {
        let recorded = [d.stamp()?, d.stamp()?];
        // The configs must be those recorded; the metadata directories may have come or
        // gone (see below).
        if recorded[0] != top[0] {
            return Ok(None);
        }
        let n = d.count(32 + 1)?;
        let mut metadata = Vec::with_capacity(n);
        for _ in 0..n {
            metadata.push((d.array::<32>()?, d.stamp()?));
        }
        Ok(Some((recorded, metadata, d.count(1)?)))
    })();
    let (recorded, mut metadata, count) = match head {
        Ok(Some(v)) => v,
        Ok(None) => return None,
        Err(e) => {
            tracing::debug!(path = %file.path().display(), error = %e, "snapshot images not decoded");
            return None;
        }
    };
    if recorded[1] != top[1] {
        // Metadata directories were created or removed (listed after `top` was stamped):
        // stamp those of the listing and those recorded. One the snapshot does not know is
        // taken as recorded absent, so it counts as changed and its link is read.
        let listed = match metadata_names(&paths.metadata) {
            Ok(names) => names,
            Err(e) => {
                tracing::debug!(error = %e, "cannot list the metadata directory");
                return None;
            }
        };
        let known: std::collections::HashSet<[u8; 32]> = metadata.iter().map(|(n, _)| *n).collect();
        metadata.extend(
            listed
                .into_iter()
                .filter(|n| !known.contains(n))
                .map(|n| (n, Stamp::Absent)),
        );
    }
    let t = Instant::now();
    let names: Vec<[u8; 32]> = metadata.iter().map(|(n, _)| *n).collect();
    let changed: Mutex<Vec<(usize, Stamp)>> = Mutex::new(Vec::new());
    let stamped = match meta_dir {
        Some(dir) => stamp_entries(dir, &names, &|i, r| match (r, metadata.get(i)) {
            (Ok(s), Some((_, want))) => {
                if s != *want {
                    changed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((i, s));
                }
                true
            }
            _ => false,
        }),
        None => metadata.is_empty(),
    };
    drop(names);
    let changed = changed.into_inner().unwrap_or_else(|e| e.into_inner());
    tracing::debug!(
        directories = metadata.len(),
        changed = changed.len(),
        stamped,
        ms = t.elapsed().as_millis() as u64,
        "metadata directories stamped"
    );
    if !stamped {
        return None;
    }
    // Stamped again before their links are read again.
    let mut links: HashMap<ImageId, Option<Option<ImageId>>> = HashMap::new();
    let mut recordable = true;
    for &(i, stamp) in &changed {
        let Some(entry) = metadata.get_mut(i) else {
            continue;
        };
        let id = ImageId(Digest::from_sha256_bytes(entry.0));
        // A link that does not read cleanly matters only for an image in the records.
        let link = ImageStore::<Box<dyn StoreBackend>, ()>::read_parent(&backend, &id).ok();
        links.insert(id, link);
        entry.1 = stamp;
        recordable &= settled(&stamp);
    }
    let failed = Cell::new(false);
    let unclean = Cell::new(false);
    let records = Records {
        d,
        left: count,
        failed: &failed,
        next: Decoder::image,
    }
    .map(|mut image: ImageInfo| {
        match links.get(&image.id) {
            Some(Some(parent)) => image.parent = *parent,
            Some(None) => unclean.set(true),
            None => {}
        }
        image
    });
    let loaded = ImageStore::load_records(backend, records);
    if failed.get() || !section.verify() {
        tracing::debug!(path = %file.path().display(), "snapshot images damaged");
        return None;
    }
    if unclean.get() {
        tracing::debug!("a parent link read again is not clean: reading every image");
        return None;
    }
    // Directories gone since need no stamp: one created again changes `metadata/sha256`.
    metadata.retain(|(_, s)| *s != Stamp::Absent);
    Some(ImageSide {
        loaded,
        from_snapshot: true,
        refreshed: changed.len(),
        stamps: (recordable && settled(&top[1])).then_some(ImageStamps {
            top: *top,
            metadata,
        }),
    })
}
