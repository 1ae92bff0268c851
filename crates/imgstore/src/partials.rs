//! The partial downloads `pull` leaves in `image/<driver>/.imgstore-pull/` when it is killed
//! ([`crate::pull::PARTIAL_DIR`]): `fsck` reports them (a leftover a pull run again
//! continues, not damage) and `fsck --repair` removes them. Only regular files named as pull
//! names them (`<algorithm>-<hex>` of a valid digest) are ever removed; anything else there
//! is reported and left alone; nothing is followed through a symbolic link.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use digest_set::{Algorithm, Digest};
use durable_fs::{Dir, FileKind};

use crate::pull::PARTIAL_DIR;

/// What the directory of partial downloads holds.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// The directory (`image/<driver>/.imgstore-pull`).
    pub dir: PathBuf,
    /// Partial files pull wrote: (name, blob digest, size in bytes).
    pub partials: Vec<(OsString, Digest, u64)>,
    /// Entries pull does not write: (name, what it is).
    pub foreign: Vec<(OsString, FileKind)>,
    /// Why the directory cannot be listed or used (a symbolic link, not a directory...).
    pub problem: Option<String>,
    /// The opened directory, when it is a real one.
    pub opened: Option<Dir>,
}

/// The blob a partial file's name stands for: `<algorithm>-<hex>` of a valid digest.
pub(crate) fn blob_of(name: &std::ffi::OsStr) -> Option<Digest> {
    let name = name.to_str()?;
    let (alg, hex) = name.split_once('-')?;
    Digest::from_hex(Algorithm::from_name(alg)?, hex).ok()
}

/// Lists the directory of partial downloads of the image store at `image_dir`; an empty
/// [`Scan`] (no `opened`) when there is none.
pub(crate) fn scan(image_dir: &Path) -> Scan {
    let mut out = Scan {
        dir: image_dir.join(PARTIAL_DIR),
        ..Scan::default()
    };
    let image = match Dir::open_nofollow(image_dir) {
        Ok(d) => d,
        Err(e) => {
            out.problem = Some(e.to_string());
            return out;
        }
    };
    // Never through a link: `open_dir` refuses one.
    let dir = match image.open_dir(PARTIAL_DIR) {
        Ok(Some(d)) => d,
        Ok(None) => return out,
        Err(e) => {
            out.problem = Some(e.to_string());
            return out;
        }
    };
    let entries = match dir.entries() {
        Ok(e) => e,
        Err(e) => {
            out.problem = Some(e.to_string());
            return out;
        }
    };
    for e in entries {
        match blob_of(&e.name) {
            Some(d) if e.kind == FileKind::File => {
                let size = dir
                    .meta(&e.name)
                    .ok()
                    .flatten()
                    .map(|m| m.size)
                    .unwrap_or(0);
                out.partials.push((e.name, d, size));
            }
            _ => out.foreign.push((e.name, e.kind)),
        }
    }
    out.partials.sort();
    out.foreign.sort_by(|a, b| a.0.cmp(&b.0));
    out.opened = Some(dir);
    out
}
