//! Docker's imagedb: image configs stored by content digest, plus per-image metadata.
//!
//! (Being written: see issue 3.)

mod backend;

pub use crate::backend::{Error, StoreBackend};
