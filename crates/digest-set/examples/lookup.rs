//! Resolves short IDs against a set of digests, the way `docker image inspect <prefix>` does.
//!
//! `cargo run -p digest-set --example lookup -- [TERM...]`

use digest_set::{Digest, DigestSet};

fn main() {
    let set: DigestSet = (0..8u8).map(|i| Digest::sha256(&[i])).collect();
    let codes = set.short_codes(4);
    eprintln!(
        "{} digests; shortest unique prefixes of at least 4 characters:",
        set.len()
    );
    for (digest, code) in &codes {
        eprintln!("  {code:<6} {digest}");
    }
    let terms: Vec<String> = std::env::args().skip(1).collect();
    let terms = if terms.is_empty() {
        codes
            .values()
            .take(3)
            .cloned()
            .chain(["".to_owned(), "zz".to_owned()])
            .collect()
    } else {
        terms
    };
    for term in terms {
        match set.lookup(&term) {
            Ok(d) => eprintln!("lookup({term:?}) = {d}"),
            Err(e) => eprintln!("lookup({term:?}) failed: {e}"),
        }
    }
}
