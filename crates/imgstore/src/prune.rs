//! `prune`: dockerd 20.10's `ImagesPrune` (`daemon/images/image_prune.go`) on a data root,
//! and, beyond docker, the removal of committed layers no image or container uses
//! (moby #45939).
//!
//! Selection: without `-a` (`dangling=true`) the heads of the image graph, with `-a` every
//! image; in both cases untagged images with children are left to their children's
//! pruning, and `until=` and `label=`/`label!=` filters apply. Each selected image is
//! deleted as `docker rmi` deletes it without `-f` (by each of its references with `-a` or
//! when it has only digest references, else by ID), so that containers are respected: a
//! conflict skips the image, as in dockerd. The space reclaimed is the sum of the sizes of
//! the layers deleted.

use std::collections::HashMap;

use digest_set::Digest;
use image_store::time::Timestamp;
use layer_store::ChainId;

use crate::error::RemoveError;
use crate::ops::DeleteRecord;
use crate::store::Store;

/// `prune` options (the filters as the CLI sends them, `dangling` included).
#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// `--filter key=value`, in order, with `dangling=true` (no `-a`) or `dangling=false`.
    pub filters: Vec<(String, String)>,
    /// `--layers`: also remove the committed layers no image or container uses.
    pub layers: bool,
    /// "Now", for `until=<duration>` (Unix seconds).
    pub now: i64,
}

/// What a prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// dockerd's `ImagesDeleted`: untagged references and deleted images and layers.
    pub deleted: Vec<DeleteRecord>,
    /// dockerd's `SpaceReclaimed`: the sizes of the layers the image deletions removed.
    pub space_reclaimed: u64,
    /// With `--layers`: the unused layers removed, children first.
    pub layers_deleted: Vec<ChainId>,
    /// Their sizes.
    pub layers_reclaimed: u64,
}

/// Why a prune failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PruneError {
    /// A filter dockerd refuses (its message).
    #[error("Invalid filter '{0}'")]
    Filter(String),
    /// A filter value dockerd refuses.
    #[error("invalid filter '{key}={value}'")]
    Value {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// `until` given more than once (dockerd's message).
    #[error("more than one until filter specified")]
    Until,
    /// An `until` value that is neither a time nor a duration (dockerd's message).
    #[error("failed to parse value as time or duration: {0:?}")]
    UntilValue(String),
    /// The storage driver's layers cannot be removed by this tool.
    #[error(transparent)]
    Remove(#[from] RemoveError),
    /// Removing an unused layer failed.
    #[error("cannot remove unused layer {chain}: {message}")]
    Layer {
        /// The layer.
        chain: ChainId,
        /// Why.
        message: String,
    },
}

/// The filters `image prune` accepts (dockerd's `imagesAcceptedFilters`).
const ACCEPTED: [&str; 4] = ["dangling", "label", "label!", "until"];

/// dockerd's `MatchKVList`: every `key` filter (`k` or `k=v`) matches `labels`; true when
/// there is none.
fn match_kv(values: &[&str], labels: &std::collections::BTreeMap<String, String>) -> bool {
    if values.is_empty() {
        return true;
    }
    if labels.is_empty() {
        return false;
    }
    values.iter().all(|v| match v.split_once('=') {
        Some((k, want)) => labels.get(k).is_some_and(|have| have == want),
        None => labels.contains_key(*v),
    })
}

/// Go's `time.ParseDuration`, in nanoseconds (`None` when it does not parse).
pub fn parse_go_duration(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        if num_len == 0 {
            return None;
        }
        let num: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .bytes()
            .take_while(|b| !b.is_ascii_digit() && *b != b'.')
            .count();
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += num * unit;
    }
    let ns = total as i128;
    Some(if neg { -ns } else { ns })
}

/// dockerd's `until` (`timetypes.GetTimestamp` relative to `now`): a Go duration before
/// now, a Unix timestamp (`seconds[.nanoseconds]`), or a date and time (`2006-01-02`,
/// `2006-01-02T15`, `2006-01-02T15:04`, `2006-01-02T15:04:05[.999999999]`, with `Z` or an
/// offset; without one, UTC). Nanoseconds since the epoch.
pub fn parse_until(value: &str, now: i64) -> Result<i128, PruneError> {
    let bad = || PruneError::UntilValue(value.to_owned());
    if value != "0"
        && let Some(d) = parse_go_duration(value)
    {
        return Ok(i128::from(now) * 1_000_000_000 - d);
    }
    if value.contains('-') && value.len() >= 10 {
        let (date, time) = match value.split_once('T') {
            Some((d, t)) => (d, t),
            None => (
                value.get(..10).ok_or_else(bad)?,
                value.get(10..).unwrap_or(""),
            ),
        };
        // The zone: `Z`, `+hh:mm`, `-hh:mm` at the end of the time part.
        let (clock, zone) = match time.find(['Z', 'z', '+', '-']) {
            Some(i) => (&time[..i], &time[i..]),
            None => (time, ""),
        };
        let zone = if zone.is_empty() || zone.eq_ignore_ascii_case("z") {
            "Z"
        } else {
            zone
        };
        let (hms, frac) = match clock.split_once('.') {
            Some((h, f)) => (h, Some(f)),
            None => (clock, None),
        };
        let hms = match hms.matches(':').count() {
            _ if hms.is_empty() => "00:00:00".to_owned(),
            0 => format!("{hms}:00:00"),
            1 => format!("{hms}:00"),
            _ => hms.to_owned(),
        };
        let text = match frac {
            Some(f) => format!("{date}T{hms}.{f}{zone}"),
            None => format!("{date}T{hms}{zone}"),
        };
        let t = image_store::time::parse_rfc3339(&text).map_err(|_| bad())?;
        return Ok(i128::from(t.unix_secs()) * 1_000_000_000 + i128::from(t.nanos()));
    }
    let (secs, nanos) = match value.split_once('.') {
        Some((s, n)) => (s, n),
        None => (value, ""),
    };
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let nanos: i128 = if nanos.is_empty() {
        0
    } else if nanos.len() <= 9 && nanos.bytes().all(|b| b.is_ascii_digit()) {
        format!("{nanos:0<9}").parse().map_err(|_| bad())?
    } else {
        return Err(bad());
    };
    Ok(i128::from(secs) * 1_000_000_000 + nanos)
}

fn instant(t: &Timestamp) -> i128 {
    i128::from(t.unix_secs()) * 1_000_000_000 + i128::from(t.nanos())
}

impl Store {
    /// dockerd 20.10's `ImagesPrune`, then (with [`PruneOptions::layers`]) the removal of
    /// every committed layer no image or container uses. Images are visited in ID order
    /// (dockerd's is Go's random map order; the images deleted are the same).
    pub fn prune(&mut self, opts: &PruneOptions) -> Result<PruneReport, PruneError> {
        for (k, _) in &opts.filters {
            if !ACCEPTED.contains(&k.as_str()) {
                return Err(PruneError::Filter(k.clone()));
            }
        }
        let values = |key: &str| -> Vec<&str> {
            opts.filters
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let mut dangling_only = true;
        let dangling = values("dangling");
        if !dangling.is_empty() {
            let exact = |v: &str| dangling.iter().all(|d| *d == v);
            if exact("false") || exact("0") {
                dangling_only = false;
            } else if !(exact("true") || exact("1")) {
                return Err(PruneError::Value {
                    key: "dangling".to_owned(),
                    value: dangling[0].to_owned(),
                });
            }
        }
        let until = match values("until").as_slice() {
            [] => None,
            [one] => Some(parse_until(one, opts.now)?),
            _ => return Err(PruneError::Until),
        };
        let (labels, not_labels) = (values("label"), values("label!"));
        if self.layer_store().mode() != layer_store::OpenMode::ReadWrite {
            return Err(
                RemoveError::UnsupportedDriver(self.data_root().driver().to_owned()).into(),
            );
        }

        let images = self.images();
        let all_layers: HashMap<Digest, u64> = self
            .layer_store()
            .layers()
            .into_iter()
            .map(|l| (l.chain_id.0, l.diff_size))
            .collect();
        let mut top = Vec::new();
        for (id, e) in &images {
            let children = self.children(id);
            if dangling_only && !children.is_empty() {
                continue;
            }
            if self.refs().references(id).is_empty() && !children.is_empty() {
                continue;
            }
            if let (Some(until), Some(created)) = (until, &e.created)
                && instant(created) > until
            {
                continue;
            }
            if !labels.is_empty() || !not_labels.is_empty() {
                let config = match self.config(id) {
                    Ok(c) => c,
                    Err(err) => {
                        tracing::warn!(image = %id, error = %err, "cannot read config for the label filter; leaving the image out");
                        continue;
                    }
                };
                if let Some(c) = &config.config().config {
                    let empty = std::collections::BTreeMap::new();
                    let have = c.labels.as_ref().unwrap_or(&empty);
                    if !match_kv(&labels, have) {
                        continue;
                    }
                    if !not_labels.is_empty() && match_kv(&not_labels, have) {
                        continue;
                    }
                }
            }
            top.push(*id);
        }

        let mut report = PruneReport::default();
        for id in top {
            let refs = self.refs().references(&id).to_vec();
            let args: Vec<String> = if refs.is_empty() {
                vec![id.hex().to_owned()]
            } else if !dangling_only || !refs.iter().any(|r| r.tag().is_some()) {
                refs.iter().map(ToString::to_string).collect()
            } else {
                Vec::new()
            };
            for arg in args {
                let mut records = Vec::new();
                match self.delete_into(&arg, false, true, &mut records) {
                    Ok(()) => report.deleted.extend(records),
                    Err(RemoveError::Conflict { .. } | RemoveError::ReferenceInUse { .. }) => {}
                    Err(e @ RemoveError::UnsupportedDriver(_)) => return Err(e.into()),
                    Err(e) => tracing::warn!(image = %arg, error = %e, "failed to prune image"),
                }
            }
        }
        report.space_reclaimed = report
            .deleted
            .iter()
            .filter_map(|r| match r {
                DeleteRecord::Deleted(d) => all_layers.get(d),
                DeleteRecord::Untagged(_) => None,
            })
            .sum();
        if opts.layers {
            self.prune_layers(&mut report)?;
        }
        Ok(report)
    }

    /// Removes the committed layers no image or container uses, children first (a
    /// release cascades to parents nothing else holds).
    fn prune_layers(&mut self, report: &mut PruneReport) -> Result<(), PruneError> {
        let layers = self.layer_store();
        for chain in crate::fsck::unreferenced_layers(self) {
            if layers.ref_count(&chain) != Some(0) {
                continue;
            }
            let Ok(handle) = layers.get(&chain) else {
                continue;
            };
            let removed = layers.release(&handle).map_err(|e| PruneError::Layer {
                chain,
                message: e.to_string(),
            })?;
            for l in removed {
                report.layers_reclaimed += l.diff_size;
                report.layers_deleted.push(l.chain_id);
            }
        }
        Ok(())
    }
}

/// What `docker image prune` prints for `report` (with the unused layers after, when
/// `--layers` removed any).
pub fn render(report: &PruneReport, layers: bool) -> String {
    let mut out = String::new();
    if !report.deleted.is_empty() {
        out.push_str("Deleted Images:\n");
        for r in &report.deleted {
            match r {
                DeleteRecord::Untagged(u) => out.push_str(&format!("untagged: {u}\n")),
                DeleteRecord::Deleted(d) => out.push_str(&format!("deleted: {d}\n")),
            }
        }
        out.push('\n');
    }
    let mut total = report.space_reclaimed;
    if layers {
        if !report.layers_deleted.is_empty() {
            out.push_str("Deleted Layers:\n");
            for l in &report.layers_deleted {
                out.push_str(&format!("deleted: {l}\n"));
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "Reclaimed space from unused layers: {}\n",
            crate::gofmt::human_size(report.layers_reclaimed as f64)
        ));
        total += report.layers_reclaimed;
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        crate::gofmt::human_size(total as f64)
    ));
    out
}

/// The warning `docker image prune` asks to confirm (`-a`: `all`).
pub fn warning(all: bool) -> &'static str {
    if all {
        "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?"
    } else {
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"
    }
}
