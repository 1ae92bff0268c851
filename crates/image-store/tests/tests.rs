//! Integration tests of `image-store`, in one binary: one module per former test file.

mod common;
mod conformance;
mod lazy_configs;
mod model;
mod store_cases;
mod stress;
