//! Byte-level conversions between PKCS#11 attribute values and SSH encodings.

use crate::{Error, Result};

/// DER of OID 1.2.840.10045.3.1.7 (prime256v1), the CKA_EC_PARAMS of P-256.
pub(crate) const P256_EC_PARAMS: [u8; 10] =
    [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// CKA_EC_PARAMS of Ed25519 keys: the DER of OID 1.3.101.112 (RFC 8410),
/// which current tokens use and vmux writes...
pub(crate) const ED25519_EC_PARAMS_OID: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];

/// ...or the PrintableString "edwards25519" that PKCS#11 3.0 tokens
/// (SoftHSM2 among them) also accept and report.
pub(crate) const ED25519_EC_PARAMS_NAME: &[u8] = b"\x13\x0cedwards25519";

/// Bytes of an Ed25519 public key, and of a signature.
const ED25519_KEY_LEN: usize = 32;
const ED25519_SIGNATURE_LEN: usize = 64;

/// SEC1 uncompressed P-256 point: 0x04 || x || y.
const P256_POINT_LEN: usize = 65;

/// Bytes of one P-256 scalar (r or s).
const P256_SCALAR_LEN: usize = 32;

/// Extracts the uncompressed SEC1 point from CKA_EC_POINT.
///
/// The standard wraps it in a DER OCTET STRING; some tokens return it bare, so
/// both are accepted.
pub fn ec_point(attr: &[u8]) -> Result<&[u8]> {
    let point = match attr {
        // Bare first: a wrapped point is never 65 bytes, a bare one always is.
        bare if bare.len() == P256_POINT_LEN => bare,
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
        _ => {
            return Err(Error::Other(
                "the token returned a malformed EC public key (CKA_EC_POINT)".into(),
            ));
        }
    };
    match point {
        [0x04, ..] if point.len() == P256_POINT_LEN => Ok(point),
        _ => Err(Error::Other(
            "the token's EC public key is not an uncompressed P-256 point (only P-256 is supported for now)".into(),
        )),
    }
}

/// Extracts the 32-byte Ed25519 public key from CKA_EC_POINT: a DER OCTET
/// STRING as PKCS#11 3.0 says, or bare as some tokens return it.
pub fn ed25519_point(attr: &[u8]) -> Result<&[u8]> {
    match attr {
        bare if bare.len() == ED25519_KEY_LEN => Ok(bare),
        [0x04, len, rest @ ..]
            if usize::from(*len) == ED25519_KEY_LEN && rest.len() == ED25519_KEY_LEN =>
        {
            Ok(rest)
        }
        _ => Err(Error::Other(
            "the token returned a malformed Ed25519 public key (CKA_EC_POINT)".into(),
        )),
    }
}

/// Turns a raw CKM_EDDSA signature (R || S, 64 bytes) into the SSH
/// signature blob: string "ssh-ed25519", string signature.
pub fn ed25519_signature_blob(raw: &[u8]) -> Result<Vec<u8>> {
    if raw.len() != ED25519_SIGNATURE_LEN {
        return Err(Error::Other(format!(
            "the token returned a {}-byte signature, not an Ed25519 one",
            raw.len()
        )));
    }
    let mut blob = Vec::with_capacity(4 + 11 + 4 + ED25519_SIGNATURE_LEN);
    put_string(&mut blob, b"ssh-ed25519")?;
    put_string(&mut blob, raw)?;
    Ok(blob)
}

/// Appends an SSH `string`.
fn put_string(out: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| Error::Other("SSH string too long".into()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Appends an SSH `mpint` for a non-negative big-endian integer: minimal
/// length, with a zero byte in front when the top bit would read as a sign.
fn put_positive_mpint(out: &mut Vec<u8>, magnitude: &[u8]) -> Result<()> {
    let start = magnitude
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(magnitude.len());
    let digits = magnitude.get(start..).unwrap_or_default();
    match digits.first() {
        Some(b) if b & 0x80 != 0 => {
            let mut padded = Vec::with_capacity(digits.len() + 1);
            padded.push(0);
            padded.extend_from_slice(digits);
            put_string(out, &padded)
        }
        _ => put_string(out, digits),
    }
}

/// Turns a raw CKM_ECDSA P-256 signature (r || s) into the SSH signature
/// blob: string "ecdsa-sha2-nistp256", string(mpint r, mpint s).
pub fn p256_signature_blob(raw: &[u8]) -> Result<Vec<u8>> {
    let (r, s) = raw
        .split_at_checked(P256_SCALAR_LEN)
        .filter(|(_, s)| s.len() == P256_SCALAR_LEN)
        .ok_or_else(|| {
            Error::Other(format!(
                "the token returned a {}-byte signature, not a P-256 one",
                raw.len()
            ))
        })?;
    let mut inner = Vec::with_capacity(2 * (4 + 1 + P256_SCALAR_LEN));
    put_positive_mpint(&mut inner, r)?;
    put_positive_mpint(&mut inner, s)?;
    let mut blob = Vec::with_capacity(4 + 19 + 4 + inner.len());
    put_string(&mut blob, b"ecdsa-sha2-nistp256")?;
    put_string(&mut blob, &inner)?;
    Ok(blob)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    fn mpint(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_positive_mpint(&mut out, bytes).unwrap();
        out
    }

    #[test]
    fn mpint_matches_rfc4251_examples() {
        assert_eq!(mpint(&[0, 0]), [0, 0, 0, 0]);
        assert_eq!(
            mpint(&[0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7]),
            [0, 0, 0, 8, 0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7]
        );
        assert_eq!(mpint(&[0x80]), [0, 0, 0, 2, 0, 0x80]);
        assert_eq!(mpint(&[0, 0, 0x7f]), [0, 0, 0, 1, 0x7f]);
        assert_eq!(mpint(&[0, 0x80, 1]), [0, 0, 0, 3, 0, 0x80, 1]);
    }

    #[test]
    fn signature_blob_decodes_with_ssh_key() {
        for (r0, s0) in [(0x00u8, 0xffu8), (0xff, 0x01), (0x7f, 0x80)] {
            let mut raw = [0x11u8; 64];
            raw[0] = r0;
            raw[32] = s0;
            let blob = p256_signature_blob(&raw).unwrap();
            let sig = ssh_key::Signature::try_from(blob.as_slice()).unwrap();
            assert_eq!(
                sig.algorithm(),
                ssh_key::Algorithm::Ecdsa {
                    curve: ssh_key::EcdsaCurve::NistP256
                }
            );
        }
        assert!(p256_signature_blob(&[1; 63]).is_err());
        assert!(p256_signature_blob(&[1; 96]).is_err());
    }

    #[test]
    fn ed25519_point_and_signature() {
        let key = [9u8; 32];
        let mut der = vec![0x04, 0x20];
        der.extend_from_slice(&key);
        assert_eq!(ed25519_point(&der).unwrap(), key);
        assert_eq!(ed25519_point(&key).unwrap(), key);
        assert!(ed25519_point(&der[..33]).is_err());
        assert!(ed25519_point(&[0x04, 0x21, 0]).is_err());
        let blob = ed25519_signature_blob(&[3; 64]).unwrap();
        let sig = ssh_key::Signature::try_from(blob.as_slice()).unwrap();
        assert_eq!(sig.algorithm(), ssh_key::Algorithm::Ed25519);
        assert!(ed25519_signature_blob(&[3; 63]).is_err());
    }

    #[test]
    fn ec_point_unwraps_der_or_bare() {
        let mut point = vec![0x04];
        point.extend_from_slice(&[7; 64]);
        let mut der = vec![0x04, 0x41];
        der.extend_from_slice(&point);
        assert_eq!(ec_point(&der).unwrap(), point.as_slice());
        assert_eq!(ec_point(&point).unwrap(), point.as_slice());
        let mut long = vec![0x04, 0x81, 0x41];
        long.extend_from_slice(&point);
        assert_eq!(ec_point(&long).unwrap(), point.as_slice());
        // A P-384 point (97 bytes) is refused.
        let mut p384 = vec![0x04, 0x61, 0x04];
        p384.extend_from_slice(&[7; 96]);
        assert!(ec_point(&p384).is_err());
        assert!(ec_point(&[0x04, 0x05, 1]).is_err());
    }
}
