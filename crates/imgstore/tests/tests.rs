//! Integration tests of `imgstore`, in one binary: one module per former test file.

mod common;
mod dockerd;
mod fixtures;
mod load;
mod proptests;
mod save;
mod templates;
mod writes;
