use core::fmt;

use base64ct::{Base64Unpadded, Encoding};
use sha2::{Digest, Sha256};

/// `SHA256:` + unpadded base64 of SHA-256 over a raw public key, the form
/// OpenSSH users already compare by eye.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of a raw 32-byte static key (or any public blob).
    pub fn of(public_key: &[u8]) -> Self {
        let digest = Sha256::digest(public_key);
        Self(format!("SHA256:{}", Base64Unpadded::encode_string(&digest)))
    }

    /// Wraps an already formatted fingerprint (from a file or TXT record).
    pub fn from_string(s: String) -> Self {
        Self(s)
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
