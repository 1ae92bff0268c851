//! The `imgstore` command (being written: see issue 7).

fn main() {}
