//! Random IDs.

/// 64 random lowercase hex characters (32 bytes from `getrandom(2)`), as dockerd's
/// `stringid.GenerateRandomID`.
pub(crate) fn random_hex() -> std::io::Result<String> {
    durable_fs::random_hex(32)
}
