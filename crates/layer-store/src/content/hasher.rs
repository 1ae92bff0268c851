//! A helper thread that hashes a layer's stream (sha256 of every byte, CRC-64 of member
//! contents) while the caller's thread moves the bytes, so that hashing runs beside the
//! file-system work. Bytes travel in a bounded pool of shared chunks: memory stays flat.
//! Jobs are sent in batches, so that small members cost no thread wake-ups.

use std::collections::VecDeque;
use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, channel, sync_channel};
use std::thread::JoinHandle;

use sha2::Digest as _;

use super::crc64::Crc64;

/// Size of a chunk.
pub(crate) const CHUNK: usize = 1 << 20;
/// Most chunks alive at once (memory bound: `CHUNKS * CHUNK`).
const CHUNKS: usize = 8;
/// Batches queued for the thread.
const QUEUE: usize = 4;
/// A batch is sent when it holds this many jobs...
const BATCH_JOBS: usize = 256;
/// ...or this many bytes.
const BATCH_BYTES: usize = 2 * CHUNK;

pub(crate) type Chunk = Arc<Vec<u8>>;

pub(crate) enum Job {
    /// Hash into the stream's sha256 only.
    Sha(Chunk, Range<usize>),
    /// Hash into the current member's CRC-64 only.
    Crc(Chunk, Range<usize>),
    /// The current member ends: report its CRC-64 and start a new one.
    FileEnd,
}

fn gone() -> io::Error {
    io::Error::other("the hashing thread stopped unexpectedly")
}

/// See the [module docs](self).
pub(crate) struct Hasher {
    jobs: Option<SyncSender<Vec<Job>>>,
    /// One message per batch done: the CRCs of the members it finished.
    done: Receiver<Vec<u64>>,
    handle: Option<JoinHandle<[u8; 32]>>,
    batch: Vec<Job>,
    batch_bytes: usize,
    in_flight: usize,
    crcs: VecDeque<u64>,
    retired: Vec<Chunk>,
    allocated: usize,
}

impl Hasher {
    pub(crate) fn new() -> io::Result<Hasher> {
        let (jobs_tx, jobs_rx) = sync_channel::<Vec<Job>>(QUEUE);
        let (done_tx, done_rx) = channel::<Vec<u64>>();
        let handle = std::thread::Builder::new()
            .name("layer-hash".into())
            .spawn(move || {
                let mut sha = sha2::Sha256::new();
                let mut crc = Crc64::new();
                for batch in jobs_rx {
                    let mut finished = Vec::new();
                    for job in batch {
                        match job {
                            Job::Sha(c, r) => sha.update(&c[r]),
                            Job::Crc(c, r) => crc.update(&c[r]),
                            Job::FileEnd => {
                                let d = std::mem::replace(&mut crc, Crc64::new());
                                finished.push(d.finalize());
                            }
                        }
                    }
                    if done_tx.send(finished).is_err() {
                        break;
                    }
                }
                sha.finalize().into()
            })?;
        Ok(Hasher {
            jobs: Some(jobs_tx),
            done: done_rx,
            handle: Some(handle),
            batch: Vec::new(),
            batch_bytes: 0,
            in_flight: 0,
            crcs: VecDeque::new(),
            retired: Vec::new(),
            allocated: 0,
        })
    }

    /// Sends the jobs submitted so far to the thread.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let tx = self.jobs.as_ref().ok_or_else(gone)?;
        tx.send(std::mem::take(&mut self.batch))
            .map_err(|_| gone())?;
        self.batch_bytes = 0;
        self.in_flight += 1;
        Ok(())
    }

    fn poll(&mut self) -> io::Result<()> {
        loop {
            match self.done.try_recv() {
                Ok(v) => {
                    self.in_flight -= 1;
                    self.crcs.extend(v);
                }
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => {
                    return if self.in_flight == 0 {
                        Ok(())
                    } else {
                        Err(gone())
                    };
                }
            }
        }
    }

    /// Waits for one batch to be done.
    fn wait(&mut self) -> io::Result<()> {
        self.flush()?;
        if self.in_flight == 0 {
            return Err(io::Error::other("hashing thread has no work to wait for"));
        }
        let v = self.done.recv().map_err(|_| gone())?;
        self.in_flight -= 1;
        self.crcs.extend(v);
        Ok(())
    }

    /// A buffer of [`CHUNK`] bytes (contents unspecified), waiting for the thread to be done
    /// with one when all are in use.
    pub(crate) fn buffer(&mut self) -> io::Result<Vec<u8>> {
        loop {
            self.poll()?;
            if let Some(i) = self.retired.iter().position(|c| Arc::strong_count(c) == 1) {
                let c = self.retired.swap_remove(i);
                if let Ok(b) = Arc::try_unwrap(c) {
                    return Ok(b);
                }
                continue;
            }
            if self.allocated < CHUNKS {
                self.allocated += 1;
                return Ok(vec![0; CHUNK]);
            }
            self.wait()?;
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
        let bytes = match &job {
            Job::Sha(_, r) | Job::Crc(_, r) => r.len(),
            Job::FileEnd => 0,
        };
        self.batch.push(job);
        self.batch_bytes += bytes;
        if self.batch.len() >= BATCH_JOBS || self.batch_bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// The CRC-64 of the next finished member, if the thread has computed it yet.
    pub(crate) fn try_crc(&mut self) -> io::Result<Option<u64>> {
        if self.crcs.is_empty() {
            self.poll()?;
        }
        Ok(self.crcs.pop_front())
    }

    /// The CRC-64 of the next finished member, waiting for it.
    pub(crate) fn wait_crc(&mut self) -> io::Result<u64> {
        loop {
            self.poll()?;
            if let Some(c) = self.crcs.pop_front() {
                return Ok(c);
            }
            self.wait()?;
        }
    }

    /// Ends the stream and returns its sha256. Finished members' CRCs stay readable.
    pub(crate) fn finish(&mut self) -> io::Result<[u8; 32]> {
        self.flush()?;
        self.jobs = None;
        let h = self.handle.take().ok_or_else(gone)?;
        let sha = h.join().map_err(|_| gone())?;
        while let Ok(v) = self.done.try_recv() {
            self.in_flight = self.in_flight.saturating_sub(1);
            self.crcs.extend(v);
        }
        Ok(sha)
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
