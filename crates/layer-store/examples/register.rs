//! Registers a layer tar into a store: `register DRIVER ROOT LAYER.TAR [--no-sync]`
//! (DRIVER: `vfs` or `overlay2`; ROOT: a data root). Prints the chain ID and the time taken.
#![allow(missing_docs, clippy::print_stdout)]

use std::time::Instant;

use layer_store::{Driver, LayerStore, Overlay2Driver, RegisterOptions, VfsDriver};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: register vfs|overlay2 ROOT LAYER.TAR [--no-sync]".into());
    }
    let root = std::path::Path::new(&args[2]);
    let driver: Box<dyn Driver> = match args[1].as_str() {
        "vfs" => Box::new(VfsDriver::new(root.join("vfs"))?),
        _ => Box::new(Overlay2Driver::new(root.join("overlay2"))),
    };
    let (store, _) = LayerStore::open(root.join("image").join(&args[1]).join("layerdb"), driver)?;
    let opts = RegisterOptions {
        max_size: None,
        sync: !args.iter().any(|a| a == "--no-sync"),
    };
    let t = Instant::now();
    let f = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&args[3])?);
    let h = store.register_with(f, None, &opts)?;
    println!("{} {:.3}s", h.chain_id(), t.elapsed().as_secs_f64());
    Ok(())
}
