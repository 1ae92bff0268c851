//! A fast, allocation-light check that config bytes decode into the image model.
//!
//! It mirrors [`ImageConfig`](crate::ImageConfig) field for field with zero-sized checkers
//! that accept exactly what the typed model accepts (the same JSON types, `null` where Go
//! allows it) but keep nothing, except what the store needs: the diff IDs, the non-empty
//! history count and the OS. Restore runs this on every config; the typed model is decoded only
//! when asked for.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::time::{Timestamp, parse_rfc3339};

/// What the store keeps from a config.
pub(crate) struct Essentials<'a> {
    pub(crate) has_rootfs: bool,
    pub(crate) diff_ids: Vec<Cow<'a, str>>,
    pub(crate) non_empty_history: usize,
    pub(crate) os: Option<Cow<'a, str>>,
    pub(crate) created: Option<Timestamp>,
}

pub(crate) fn check(raw: &[u8]) -> Result<Essentials<'_>, serde_json::Error> {
    // One UTF-8 check of the whole text (fast for the ASCII configs are) spares serde_json
    // a check of every string; text that is not UTF-8 takes the byte path and its errors.
    let top: Top<'_> = match std::str::from_utf8(raw) {
        Ok(text) => serde_json::from_str(text)?,
        Err(_) => serde_json::from_slice(raw)?,
    };
    let (has_rootfs, diff_ids) = match top.rootfs {
        None => (false, Vec::new()),
        Some(r) => (true, r.diff_ids.unwrap_or_default()),
    };
    Ok(Essentials {
        has_rootfs,
        diff_ids,
        non_empty_history: top
            .history
            .map(|h| {
                h.0.iter()
                    .filter(|e| !e.empty_layer.unwrap_or(false))
                    .count()
            })
            .unwrap_or(0),
        os: top.os,
        created: top.created.map(|t| t.0),
    })
}

/// A JSON string (any content); `null` is handled by wrapping in `Option`.
#[derive(Default)]
struct Str;

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Str;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Str, E> {
                Ok(Str)
            }
        }
        d.deserialize_str(V)
    }
}

/// An RFC 3339 timestamp string, parsed.
struct Time(Timestamp);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Time;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Time, E> {
                parse_rfc3339(s).map(Time).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// A list of `T`, kept only as a count of nothing (no allocation for zero-sized `T`).
struct Seq<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Seq<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Seq<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Seq<T>, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = seq.next_element()? {
                    out.push(x);
                }
                Ok(Seq(out))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// A JSON object with string keys and `V` values, kept as nothing.
struct Map<V>(PhantomData<V>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Map<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Map<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Map<T>, A::Error> {
                while map.next_entry::<Str, T>()?.is_some() {}
                Ok(Map(PhantomData))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// Go's `strslice.StrSlice`: a string or a list of strings.
struct StrSlice;

impl<'de> Deserialize<'de> for StrSlice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrSlice;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<StrSlice, E> {
                Ok(StrSlice)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrSlice, A::Error> {
                while seq.next_element::<Str>()?.is_some() {}
                Ok(StrSlice)
            }
        }
        d.deserialize_any(V)
    }
}

/// Go's `struct{}` set value: any object (or null, via `Option`).
type Empty = Option<Map<IgnoredAny>>;

#[derive(serde::Deserialize)]
#[allow(dead_code)] // The fields exist to be type-checked.
struct Top<'a> {
    #[serde(default)]
    id: Option<Str>,
    #[serde(default)]
    parent: Option<Str>,
    #[serde(default)]
    comment: Option<Str>,
    #[serde(default)]
    created: Option<Time>,
    #[serde(default)]
    container: Option<Str>,
    #[serde(default)]
    container_config: Option<Container>,
    #[serde(default)]
    docker_version: Option<Str>,
    #[serde(default)]
    author: Option<Str>,
    #[serde(default)]
    config: Option<Container>,
    #[serde(default)]
    architecture: Option<Str>,
    #[serde(default)]
    variant: Option<Str>,
    #[serde(default, borrow)]
    os: Option<Cow<'a, str>>,
    #[serde(rename = "Size", default)]
    size: Option<i64>,
    #[serde(default, borrow)]
    rootfs: Option<RootFs<'a>>,
    #[serde(default)]
    history: Option<Seq<HistoryEntry>>,
    #[serde(rename = "os.version", default)]
    os_version: Option<Str>,
    #[serde(rename = "os.features", default)]
    os_features: Option<Seq<Str>>,
    /// Every other key: the typed model keeps their values as JSON values, so they must decode
    /// as values do (collected the same way, refused when nested deeper than serde_json's
    /// recursion limit, which skipping them would not notice).
    #[serde(flatten)]
    extra: Map<IgnoredAny>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)] // The fields exist to be type-checked.
struct RootFs<'a> {
    #[serde(rename = "type", default)]
    fs_type: Option<Str>,
    #[serde(default, borrow)]
    diff_ids: Option<Vec<Cow<'a, str>>>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)] // The fields exist to be type-checked.
struct HistoryEntry {
    #[serde(default)]
    created: Option<Time>,
    #[serde(default)]
    created_by: Option<Str>,
    #[serde(default)]
    author: Option<Str>,
    #[serde(default)]
    comment: Option<Str>,
    #[serde(default)]
    empty_layer: Option<bool>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)] // The fields exist to be type-checked.
#[serde(rename_all = "PascalCase")]
struct Container {
    #[serde(default)]
    hostname: Option<Str>,
    #[serde(default)]
    domainname: Option<Str>,
    #[serde(default)]
    user: Option<Str>,
    #[serde(default)]
    attach_stdin: Option<bool>,
    #[serde(default)]
    attach_stdout: Option<bool>,
    #[serde(default)]
    attach_stderr: Option<bool>,
    #[serde(default)]
    exposed_ports: Option<Map<Empty>>,
    #[serde(default)]
    tty: Option<bool>,
    #[serde(default)]
    open_stdin: Option<bool>,
    #[serde(default)]
    stdin_once: Option<bool>,
    #[serde(default)]
    env: Option<Seq<Str>>,
    #[serde(default)]
    cmd: Option<StrSlice>,
    #[serde(default)]
    healthcheck: Option<Health>,
    #[serde(default)]
    args_escaped: Option<bool>,
    #[serde(default)]
    image: Option<Str>,
    #[serde(default)]
    volumes: Option<Map<Empty>>,
    #[serde(default)]
    working_dir: Option<Str>,
    #[serde(default)]
    entrypoint: Option<StrSlice>,
    #[serde(default)]
    network_disabled: Option<bool>,
    #[serde(default)]
    mac_address: Option<Str>,
    #[serde(default)]
    on_build: Option<Seq<Str>>,
    #[serde(default)]
    labels: Option<Map<Option<Str>>>,
    #[serde(default)]
    stop_signal: Option<Str>,
    #[serde(default)]
    stop_timeout: Option<i64>,
    #[serde(default)]
    shell: Option<StrSlice>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)] // The fields exist to be type-checked.
#[serde(rename_all = "PascalCase")]
struct Health {
    #[serde(default)]
    test: Option<Seq<Str>>,
    #[serde(default)]
    interval: Option<i64>,
    #[serde(default)]
    timeout: Option<i64>,
    #[serde(default)]
    start_period: Option<i64>,
    #[serde(default)]
    retries: Option<i64>,
}
