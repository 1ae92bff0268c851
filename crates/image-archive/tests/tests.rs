//! Integration tests of `image-archive`, in one binary.

mod format;
mod plan;
mod write;
