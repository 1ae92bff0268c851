//! Integration tests of `imagedb-fs`, in one binary: one module per former test file
//! (`umask.rs` stays a binary of its own: the umask is per process).

mod bad_data;
mod bulk_reader;
mod common;
mod concurrency;
mod contract;
mod dockerd;
mod durability;
mod fixtures;
mod moby_fs;
mod model;
mod open_existing;
