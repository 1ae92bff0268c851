//! Docker's image store (being written: see issue 6).
