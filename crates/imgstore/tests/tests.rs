//! Integration tests of `imgstore`, in one binary: one module per former test file.

mod common;
mod crash;
mod dockerd;
mod faults;
mod fixtures;
mod fsck_content;
mod load;
mod parsers;
mod proptests;
mod reclaim;
mod registry;
mod repair;
mod save;
mod snapshot;
mod templates;
mod writes;
