//! Integration tests of `layer-store`, in one binary: one module per former test file
//! (`content_memory.rs` stays a binary of its own: it measures the process's peak RSS).

mod chain_ids;
mod common;
mod content_apply;
mod content_dockerd;
mod content_fixtures;
mod content_props;
mod driver_calls;
mod hostile;
mod overlay2;
mod records;
mod refcount_model;
mod restore;
mod store;
