//! Integration tests of `digest-set`, in one binary: one module per former test file.

mod digestset_cases;
mod proptests;
