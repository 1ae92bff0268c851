//! A helper thread that hashes a layer's stream (sha256 of every byte, CRC-64 of member
//! contents) while the caller's thread moves the bytes, so that hashing runs beside the
//! file-system work. Bytes travel in a bounded pool of shared chunks: memory stays flat.

use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, channel, sync_channel};
use std::thread::JoinHandle;

use sha2::Digest as _;

use crate::tarsplit::CRC64_ISO;

/// Size of a chunk.
pub(crate) const CHUNK: usize = 1 << 20;
/// Most chunks alive at once (memory bound: `CHUNKS * CHUNK`).
const CHUNKS: usize = 8;
/// Most jobs queued for the thread.
const QUEUE: usize = 256;

pub(crate) type Chunk = Arc<Vec<u8>>;

pub(crate) enum Job {
    /// Hash into the stream's sha256 only.
    Sha(Chunk, Range<usize>),
    /// Hash into the current member's CRC-64 only.
    Crc(Chunk, Range<usize>),
    /// Both.
    Both(Chunk, Range<usize>),
    /// The current member ends: report its CRC-64 and start a new one.
    FileEnd,
}

fn gone() -> io::Error {
    io::Error::other("the hashing thread stopped unexpectedly")
}

/// See the [module docs](self).
pub(crate) struct Hasher {
    jobs: Option<SyncSender<Job>>,
    crcs: Receiver<u64>,
    back: Receiver<Chunk>,
    handle: Option<JoinHandle<[u8; 32]>>,
    retired: Vec<Chunk>,
    allocated: usize,
}

impl Hasher {
    pub(crate) fn new() -> io::Result<Hasher> {
        let (jobs_tx, jobs_rx) = sync_channel::<Job>(QUEUE);
        let (crc_tx, crc_rx) = channel::<u64>();
        let (back_tx, back_rx) = channel::<Chunk>();
        let handle = std::thread::Builder::new()
            .name("layer-hash".into())
            .spawn(move || {
                let mut sha = sha2::Sha256::new();
                let mut crc = CRC64_ISO.digest();
                for job in jobs_rx {
                    match job {
                        Job::Sha(c, r) => {
                            sha.update(&c[r]);
                            let _ = back_tx.send(c);
                        }
                        Job::Crc(c, r) => {
                            crc.update(&c[r]);
                            let _ = back_tx.send(c);
                        }
                        Job::Both(c, r) => {
                            sha.update(&c[r.clone()]);
                            crc.update(&c[r]);
                            let _ = back_tx.send(c);
                        }
                        Job::FileEnd => {
                            let done = std::mem::replace(&mut crc, CRC64_ISO.digest());
                            let _ = crc_tx.send(done.finalize());
                        }
                    }
                }
                sha.finalize().into()
            })?;
        Ok(Hasher {
            jobs: Some(jobs_tx),
            crcs: crc_rx,
            back: back_rx,
            handle: Some(handle),
            retired: Vec::new(),
            allocated: 0,
        })
    }

    fn reclaim(&mut self) -> Option<Vec<u8>> {
        while let Ok(c) = self.back.try_recv() {
            drop(c);
        }
        let i = self
            .retired
            .iter()
            .position(|c| Arc::strong_count(c) == 1)?;
        let c = self.retired.swap_remove(i);
        Arc::try_unwrap(c).ok()
    }

    /// A buffer of [`CHUNK`] bytes (contents unspecified), waiting for the thread to give
    /// one back when all are in use.
    pub(crate) fn buffer(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(b) = self.reclaim() {
                return Ok(b);
            }
            if self.allocated < CHUNKS {
                self.allocated += 1;
                return Ok(vec![0; CHUNK]);
            }
            match self.back.recv() {
                Ok(c) => drop(c),
                Err(_) => return Err(gone()),
            }
        }
    }

    /// Hands a chunk the caller is done with back to the pool.
    pub(crate) fn retire(&mut self, c: Chunk) {
        self.retired.push(c);
    }

    /// Returns an unused buffer to the pool.
    pub(crate) fn give_back(&mut self, b: Vec<u8>) {
        self.retired.push(Arc::new(b));
    }

    pub(crate) fn submit(&mut self, job: Job) -> io::Result<()> {
        let tx = self.jobs.as_ref().ok_or_else(gone)?;
        tx.send(job).map_err(|_| gone())
    }

    /// The CRC-64 of the next finished member, if the thread has computed it yet.
    pub(crate) fn try_crc(&mut self) -> io::Result<Option<u64>> {
        match self.crcs.try_recv() {
            Ok(c) => Ok(Some(c)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(gone()),
        }
    }

    /// The CRC-64 of the next finished member, waiting for it.
    pub(crate) fn wait_crc(&mut self) -> io::Result<u64> {
        self.crcs.recv().map_err(|_| gone())
    }

    /// Ends the stream and returns its sha256. Finished members' CRCs stay readable.
    pub(crate) fn finish(&mut self) -> io::Result<[u8; 32]> {
        self.jobs = None;
        let h = self.handle.take().ok_or_else(gone)?;
        h.join().map_err(|_| gone())
    }
}

impl Drop for Hasher {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
