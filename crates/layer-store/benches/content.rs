//! Benchmarks of layer content (placeholder, filled in below).
#![allow(missing_docs)]
fn main() {}
