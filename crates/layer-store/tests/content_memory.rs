//! Registering and streaming a layer keeps memory flat: a generated 64 MiB layer (never held
//! in memory by the test either) raises the peak RSS by far less than its size.

use std::fs;
use std::io::{self, Read};

use layer_store::{LayerStore, VfsDriver};

const FILES: u64 = 4;
const FILE_SIZE: u64 = 16 << 20;

/// A tar stream of `FILES` files of `FILE_SIZE` bytes, generated on the fly.
struct Generated {
    file: u64,
    /// Position inside the current member (header + content + padding).
    pos: u64,
    header: [u8; 512],
    end_left: u64,
}

impl Generated {
    fn new() -> Self {
        let mut g = Generated {
            file: 0,
            pos: 0,
            header: [0; 512],
            end_left: 1024,
        };
        g.make_header();
        g
    }

    fn make_header(&mut self) {
        let mut h = tar::Header::new_ustar();
        h.set_path(format!("big/file{}", self.file)).expect("path");
        h.set_size(FILE_SIZE);
        h.set_mode(0o644);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        self.header.copy_from_slice(h.as_bytes());
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.file == FILES {
            let n = buf.len().min(self.end_left as usize);
            buf[..n].fill(0);
            self.end_left -= n as u64;
            return Ok(n);
        }
        if self.pos < 512 {
            let n = buf.len().min(512 - self.pos as usize);
            buf[..n].copy_from_slice(&self.header[self.pos as usize..self.pos as usize + n]);
            self.pos += n as u64;
            return Ok(n);
        }
        let left = 512 + FILE_SIZE - self.pos;
        let n = buf.len().min(left as usize);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = ((self.pos + i as u64) % 251) as u8;
        }
        self.pos += n as u64;
        if self.pos == 512 + FILE_SIZE {
            self.file += 1;
            self.pos = 0;
            if self.file < FILES {
                self.make_header();
            }
        }
        Ok(n)
    }
}

fn vm_hwm_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn register_and_stream_keep_memory_flat() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let driver = VfsDriver::new(tmp.path().join("vfs")).expect("driver");
    let (store, _) = LayerStore::open(tmp.path().join("layerdb"), Box::new(driver)).expect("open");
    let before = vm_hwm_kib();
    let h = store.register(Generated::new(), None).expect("register");
    let info = store.layer(h.chain_id()).expect("info");
    assert_eq!(info.diff_size, FILES * FILE_SIZE);
    let mut s = store.tar_stream(&h).expect("stream");
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = s.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    assert_eq!(total, FILES * (512 + FILE_SIZE) + 1024);
    let grown_mib = (vm_hwm_kib().saturating_sub(before)) / 1024;
    eprintln!(
        "peak RSS grew by {grown_mib} MiB for a {} MiB layer",
        total >> 20
    );
    assert!(grown_mib < 32, "peak RSS grew by {grown_mib} MiB");
}
