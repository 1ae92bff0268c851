//! Integration tests of `image-archive`, in one binary.

mod format;
mod write;
