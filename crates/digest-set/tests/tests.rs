//! Integration tests of `digest-set`, in one binary: one module per former test file.

mod digestset_cases;
mod many_digests;
mod proptests;
