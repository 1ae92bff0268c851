//! `cargo xtask gen-dataroot`: writes a synthetic data root (written in issue 6).

pub fn run(_args: &[String]) -> Result<(), String> {
    Err("gen-dataroot: not written yet".into())
}
