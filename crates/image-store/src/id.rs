//! [`ImageId`]: the sha256 digest of an image's config bytes.

use std::fmt;

use digest_set::Digest;

/// An image ID: the sha256 digest of the exact config bytes (moby's `image.ID`).
///
/// Displays as `sha256:<hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageId(pub Digest);

impl ImageId {
    /// The ID of a config: the sha256 of its bytes.
    pub fn of_config(config: &[u8]) -> Self {
        ImageId(Digest::sha256(config))
    }

    /// The underlying digest.
    pub fn digest(&self) -> &Digest {
        &self.0
    }

    /// The lowercase hex, without `sha256:`.
    pub fn hex(&self) -> String {
        self.0.hex()
    }

    /// Docker's short ID: the first 12 hex characters.
    pub fn short(&self) -> String {
        self.0.short()
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageId({})", self.0)
    }
}

impl std::str::FromStr for ImageId {
    type Err = digest_set::ParseError;
    /// Parses a full `sha256:<hex>` digest.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(ImageId)
    }
}

impl From<Digest> for ImageId {
    fn from(d: Digest) -> Self {
        ImageId(d)
    }
}

impl From<ImageId> for Digest {
    fn from(id: ImageId) -> Self {
        id.0
    }
}

impl serde::Serialize for ImageId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
