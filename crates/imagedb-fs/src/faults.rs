//! Fault injection for tests: make the n-th write, fsync, rename or mutating call fail.
//!
//! A [`Faults`] value is a shared handle (cloning it shares the same rules and counters). Hand
//! one clone to [`FsBackend::open_with_faults`](crate::FsBackend::open_with_faults) for real
//! filesystem-level faults, or to [`FaultyBackend::new`] to fail trait calls of any backend;
//! keep another clone to add rules and read counters while the test runs.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use digest_set::Digest;

use crate::backend::StoreBackend;
use crate::error::{CleanupReport, Error};

/// An operation that a [`Faults`] rule can make fail.
///
/// The first group is counted by [`FsBackend`](crate::FsBackend) opened with
/// [`open_with_faults`](crate::FsBackend::open_with_faults) (real file operations); the second
/// group by [`FaultyBackend`] (trait calls, for any backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// Filesystem: writing data into a temporary file. An injected failure writes the first
    /// half of the data first, leaving a partial temp file behind, like a real short write.
    Write,
    /// Filesystem: fsync of a temporary file before its rename.
    Sync,
    /// Filesystem: renaming a temporary file onto its target.
    Rename,
    /// Filesystem: fsync of a directory after a rename, create or remove.
    SyncDir,
    /// Filesystem: removing a file or a metadata directory.
    Remove,
    /// Filesystem: opening a file for reading.
    Read,
    /// Trait call: [`StoreBackend::set`].
    Set,
    /// Trait call: [`StoreBackend::set_metadata`].
    SetMetadata,
    /// Trait call: [`StoreBackend::delete`].
    Delete,
    /// Trait call: [`StoreBackend::delete_metadata`].
    DeleteMetadata,
    /// Trait call: any of `set`, `set_metadata`, `delete`, `delete_metadata` (each such call
    /// counts once here and once under its own kind).
    Mutation,
    /// Trait call: [`StoreBackend::get`] or [`StoreBackend::get_metadata`].
    Get,
}

const OPS: usize = 12;

impl Op {
    fn index(self) -> usize {
        match self {
            Op::Write => 0,
            Op::Sync => 1,
            Op::Rename => 2,
            Op::SyncDir => 3,
            Op::Remove => 4,
            Op::Read => 5,
            Op::Set => 6,
            Op::SetMetadata => 7,
            Op::Delete => 8,
            Op::DeleteMetadata => 9,
            Op::Mutation => 10,
            Op::Get => 11,
        }
    }
}

#[derive(Debug)]
struct Rule {
    op: Op,
    /// Fails when the op's counter reaches this value.
    at: u64,
    kind: io::ErrorKind,
    /// Fail every op from `at` on, not just once.
    sticky: bool,
}

#[derive(Debug, Default)]
struct State {
    counts: [u64; OPS],
    rules: Vec<Rule>,
    injected: u64,
}

/// Shared fault-injection rules and per-[`Op`] counters. Cheap to clone (a handle).
///
/// Counting starts when the handle is created; `fail_nth(op, n, ..)` means "the n-th `op`
/// counted after this call" (n = 1 is the very next one).
///
/// Hand one clone to [`FsBackend::open_with_faults`](crate::FsBackend::open_with_faults) for
/// real filesystem-level faults ([`Op::Write`], [`Op::Sync`], [`Op::Rename`], [`Op::SyncDir`],
/// [`Op::Remove`], [`Op::Read`]), or to [`FaultyBackend::new`] to fail trait calls of any
/// backend ([`Op::Set`], [`Op::SetMetadata`], [`Op::Delete`], [`Op::DeleteMetadata`],
/// [`Op::Mutation`], [`Op::Get`]); keep another clone to add rules and read counters while the
/// test runs. Injected errors are [`io::Error`]s of the chosen kind, wrapped in
/// [`Error::Io`] naming the operation (and the file, for filesystem faults).
///
/// ```
/// use std::io::ErrorKind;
/// use imagedb_fs::{FaultyBackend, Faults, MemBackend, Op, StoreBackend};
///
/// let faults = Faults::new();
/// let store = FaultyBackend::new(MemBackend::new(), faults.clone());
/// faults.fail_nth(Op::Set, 2, ErrorKind::StorageFull); // the 2nd set from now fails
/// assert!(store.set(b"one").is_ok());
/// assert!(store.set(b"two").is_err());
/// assert!(store.set(b"three").is_ok());
/// assert_eq!(faults.count(Op::Set), 3);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

impl Faults {
    /// No rules yet: nothing fails.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `n`-th `op` from now (`n` >= 1; 0 is treated as 1) fails once with an
    /// [`io::Error`] of `kind`. Returns `self` for chaining.
    pub fn fail_nth(&self, op: Op, n: u64, kind: io::ErrorKind) -> &Self {
        self.add_rule(op, n, kind, false)
    }

    /// Every `op` from now on fails with `kind`, until [`clear`](Faults::clear).
    pub fn fail_always(&self, op: Op, kind: io::ErrorKind) -> &Self {
        self.fail_from_nth(op, 1, kind)
    }

    /// The `n`-th `op` from now and every later one fail with `kind`, until
    /// [`clear`](Faults::clear) (a "disk full from here on" fault).
    pub fn fail_from_nth(&self, op: Op, n: u64, kind: io::ErrorKind) -> &Self {
        self.add_rule(op, n, kind, true)
    }

    /// A rule for the `n`-th `op` from now; `sticky` keeps it failing every later one too.
    fn add_rule(&self, op: Op, n: u64, kind: io::ErrorKind, sticky: bool) -> &Self {
        let mut state = self.lock();
        let at = state.counts[op.index()] + n.max(1);
        state.rules.push(Rule {
            op,
            at,
            kind,
            sticky,
        });
        self
    }

    /// Removes every rule (counters keep running).
    pub fn clear(&self) -> &Self {
        self.lock().rules.clear();
        self
    }

    /// How many times `op` was attempted so far (including the ones that were made to fail).
    pub fn count(&self, op: Op) -> u64 {
        self.lock().counts[op.index()]
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.lock().injected
    }

    /// Counts one `op` and returns the injected error if a rule says it fails.
    pub(crate) fn hit(&self, op: Op) -> io::Result<()> {
        let mut state = self.lock();
        let count = state.counts[op.index()] + 1;
        state.counts[op.index()] = count;
        let found = state.rules.iter().position(|r| {
            r.op == op
                && if r.sticky {
                    count >= r.at
                } else {
                    count == r.at
                }
        });
        match found {
            None => Ok(()),
            Some(i) => {
                let kind = state.rules[i].kind;
                if !state.rules[i].sticky {
                    state.rules.remove(i);
                }
                state.injected += 1;
                Err(io::Error::new(
                    kind,
                    format!("injected fault: {op:?} #{count}"),
                ))
            }
        }
    }
}

/// The internal I/O layer of [`FsBackend`](crate::FsBackend): asks the optional [`Faults`]
/// before each file operation.
impl durable_fs::FaultHook for Faults {
    fn hit(&self, at: durable_fs::FaultPoint) -> io::Result<()> {
        let op = match at {
            durable_fs::FaultPoint::Write => Op::Write,
            durable_fs::FaultPoint::Sync => Op::Sync,
            durable_fs::FaultPoint::Rename => Op::Rename,
            durable_fs::FaultPoint::SyncDir => Op::SyncDir,
            durable_fs::FaultPoint::Remove => Op::Remove,
            _ => Op::Read,
        };
        Faults::hit(self, op)
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Injector {
    faults: Option<Faults>,
}

impl Injector {
    pub(crate) fn new(faults: Option<Faults>) -> Self {
        Injector { faults }
    }

    /// Whether faults are configured (every op is counted).
    pub(crate) fn is_active(&self) -> bool {
        self.faults.is_some()
    }

    pub(crate) fn hit(&self, op: Op) -> io::Result<()> {
        match &self.faults {
            None => Ok(()),
            Some(f) => f.hit(op),
        }
    }

    /// The hook that makes [`durable_fs`] operations count and fail as these faults say.
    pub(crate) fn hook(&self) -> Option<Arc<dyn durable_fs::FaultHook>> {
        self.faults
            .clone()
            .map(|f| Arc::new(f) as Arc<dyn durable_fs::FaultHook>)
    }
}

/// Wraps any [`StoreBackend`] and makes chosen trait calls fail, before they reach the inner
/// backend (so a failed call changes nothing).
///
/// Counted ops: [`Op::Set`], [`Op::SetMetadata`], [`Op::Delete`], [`Op::DeleteMetadata`],
/// [`Op::Mutation`] (any of those four) and [`Op::Get`] (`get` and `get_metadata`). An injected
/// failure is [`Error::Io`] with `op` naming the call, an empty path and the chosen kind.
#[derive(Debug)]
pub struct FaultyBackend<B> {
    inner: B,
    faults: Faults,
}

impl<B: StoreBackend> FaultyBackend<B> {
    /// Wraps `inner`; rules come from `faults` (keep a clone to change them).
    pub fn new(inner: B, faults: Faults) -> Self {
        FaultyBackend { inner, faults }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The fault rules and counters.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Unwraps the inner backend.
    pub fn into_inner(self) -> B {
        self.inner
    }

    fn check(&self, op: Op, name: &'static str, mutation: bool) -> Result<(), Error> {
        let wrap = |source| Error::Io {
            op: name,
            path: PathBuf::new(),
            source,
        };
        // Count both even when the first fails, so counters stay predictable.
        let specific = self.faults.hit(op);
        let any = if mutation {
            self.faults.hit(Op::Mutation)
        } else {
            Ok(())
        };
        specific.map_err(wrap)?;
        any.map_err(wrap)
    }
}

impl<B: StoreBackend> StoreBackend for FaultyBackend<B> {
    fn walk(&self) -> Result<Vec<Digest>, Error> {
        self.inner.walk()
    }

    fn get(&self, id: &Digest) -> Result<Vec<u8>, Error> {
        self.check(Op::Get, "get (injected)", false)?;
        self.inner.get(id)
    }

    fn set(&self, data: &[u8]) -> Result<Digest, Error> {
        self.check(Op::Set, "set (injected)", true)?;
        self.inner.set(data)
    }

    fn delete(&self, id: &Digest) -> Result<(), Error> {
        self.check(Op::Delete, "delete (injected)", true)?;
        self.inner.delete(id)
    }

    fn set_metadata(&self, id: &Digest, key: &str, data: &[u8]) -> Result<(), Error> {
        self.check(Op::SetMetadata, "set_metadata (injected)", true)?;
        self.inner.set_metadata(id, key, data)
    }

    fn get_metadata(&self, id: &Digest, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.check(Op::Get, "get_metadata (injected)", false)?;
        self.inner.get_metadata(id, key)
    }

    fn delete_metadata(&self, id: &Digest, key: &str) -> Result<(), Error> {
        self.check(Op::DeleteMetadata, "delete_metadata (injected)", true)?;
        self.inner.delete_metadata(id, key)
    }

    fn metadata_digests(&self) -> Result<Vec<Digest>, Error> {
        self.inner.metadata_digests()
    }

    fn cleanup(&self) -> Result<CleanupReport, Error> {
        self.inner.cleanup()
    }
}
