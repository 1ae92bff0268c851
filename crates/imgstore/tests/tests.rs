//! Integration tests of `imgstore`, in one binary: one module per former test file.

mod common;
mod dockerd;
mod faults;
mod fixtures;
mod load;
mod proptests;
mod registry;
mod templates;
mod writes;
