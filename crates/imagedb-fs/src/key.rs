//! Metadata keys: [`validate_key`], and the prefix of temporary file names no key may take.

use crate::error::Error;

/// Names starting with this are temporary files of interrupted or in-flight writes.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// Checks a metadata key: `[A-Za-z0-9._-]+`, not `.` or `..`, not starting with `.tmp-`.
///
/// ```
/// use imagedb_fs::validate_key;
/// assert!(validate_key("parent").is_ok());
/// assert!(validate_key("lastUpdated").is_ok());
/// assert!(validate_key("../x").is_err());
/// assert!(validate_key("").is_err());
/// ```
pub fn validate_key(key: &str) -> Result<(), Error> {
    let ok = !key.is_empty()
        && key != "."
        && key != ".."
        && !key.starts_with(TMP_PREFIX)
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidKey {
            key: key.to_owned(),
        })
    }
}
