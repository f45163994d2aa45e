//! OpenSSH key revocation lists (`PROTOCOL.krl`, format version 1): the
//! encoding only, no I/O. sshd reads the result through `RevokedKeys`;
//! `ssh-keygen -Q -f KRL CERT` queries it.
//!
//! vmux revokes certificates only, by serial and by key ID, under the CA
//! key that issued them. It never signs a KRL: OpenSSH ≥ 9.4 refuses KRLs
//! with signature sections.

use std::collections::BTreeSet;

use ssh_key::encoding::Encode;

use crate::{Error, Result};

/// `"SSHKRL\n\0"`, the first eight bytes of every KRL.
pub const MAGIC: &[u8; 8] = b"SSHKRL\n\0";
const FORMAT_VERSION: u32 = 1;
const SECTION_CERTIFICATES: u8 = 1;
const CERT_SERIAL_LIST: u8 = 0x20;
const CERT_KEY_ID: u8 = 0x23;

/// A KRL as vmux writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Krl {
    /// Grows with every change, so a stale copy can be told apart.
    pub version: u64,
    /// When it was made, Unix seconds.
    pub generated: u64,
    /// Free text for people reading `ssh-keygen -Q -l`.
    pub comment: String,
    /// Revoked certificates, one entry per issuing CA.
    pub certificates: Vec<RevokedCertificates>,
}

/// Certificates of one CA, revoked by serial or by key ID.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevokedCertificates {
    /// The CA's public-key blob (SSH wire form).
    pub ca_key: Vec<u8>,
    /// Serials. Serial 0 is never written: OpenSSH means "no serial" by it
    /// and refuses a KRL that lists it.
    pub serials: BTreeSet<u64>,
    /// Key IDs, each revoking every certificate of this CA that carries it.
    pub key_ids: BTreeSet<String>,
}

impl Krl {
    /// The KRL's bytes: the header, then a certificates section per CA with
    /// anything revoked (serials ascending, key IDs in byte order, as
    /// ssh-keygen writes them).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        encode(&FORMAT_VERSION, &mut out)?;
        encode(&self.version, &mut out)?;
        encode(&self.generated, &mut out)?;
        encode(&0u64, &mut out)?; // flags: none defined
        encode(&[0u8; 0][..], &mut out)?; // reserved
        encode(self.comment.as_str(), &mut out)?;
        for revoked in &self.certificates {
            let mut section = Vec::new();
            encode(revoked.ca_key.as_slice(), &mut section)?;
            encode(&[0u8; 0][..], &mut section)?; // reserved
            let serials: Vec<u64> = revoked
                .serials
                .iter()
                .copied()
                .filter(|&s| s != 0)
                .collect();
            if !serials.is_empty() {
                let mut list = Vec::with_capacity(serials.len() * 8);
                for serial in serials {
                    encode(&serial, &mut list)?;
                }
                subsection(CERT_SERIAL_LIST, &list, &mut section)?;
            }
            if !revoked.key_ids.is_empty() {
                let mut ids = Vec::new();
                for id in &revoked.key_ids {
                    encode(id.as_str(), &mut ids)?;
                }
                subsection(CERT_KEY_ID, &ids, &mut section)?;
            }
            subsection(SECTION_CERTIFICATES, &section, &mut out)?;
        }
        Ok(out)
    }
}

/// `byte type, string data`: the shape of sections and subsections alike.
fn subsection(kind: u8, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
    encode(&kind, out)?;
    encode(data, out)
}

fn encode<T: Encode + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    value
        .encode(out)
        .map_err(|e| Error::other(format!("cannot encode the revocation list: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn header_and_sections_are_laid_out_as_protocol_krl_says() {
        let krl = Krl {
            version: 7,
            generated: 0x0102_0304,
            comment: "c".into(),
            certificates: vec![RevokedCertificates {
                ca_key: vec![0xAA, 0xBB],
                serials: [0, 5, 3].into_iter().collect(),
                key_ids: ["id".to_owned()].into_iter().collect(),
            }],
        };
        let bytes = krl.encode().unwrap();
        let mut expected = b"SSHKRL\n\0".to_vec();
        expected.extend([0, 0, 0, 1]); // format version
        expected.extend(7u64.to_be_bytes());
        expected.extend(0x0102_0304u64.to_be_bytes());
        expected.extend(0u64.to_be_bytes()); // flags
        expected.extend([0, 0, 0, 0]); // reserved
        expected.extend([0, 0, 0, 1, b'c']);
        let mut section = vec![0, 0, 0, 2, 0xAA, 0xBB, 0, 0, 0, 0];
        section.extend([0x20, 0, 0, 0, 16]);
        section.extend(3u64.to_be_bytes());
        section.extend(5u64.to_be_bytes());
        section.extend([0x23, 0, 0, 0, 6, 0, 0, 0, 2, b'i', b'd']);
        expected.push(1);
        expected.extend(u32::try_from(section.len()).unwrap().to_be_bytes());
        expected.extend(section);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn nothing_revoked_is_a_bare_header() {
        let krl = Krl {
            certificates: vec![RevokedCertificates::default()],
            ..Krl::default()
        };
        // An empty certificates section is still well formed; no subsections.
        let bytes = krl.encode().unwrap();
        assert_eq!(&bytes[..8], MAGIC);
        assert_eq!(bytes.len(), 8 + 4 + 8 + 8 + 8 + 4 + 4 + 1 + 4 + 8);
    }
}
