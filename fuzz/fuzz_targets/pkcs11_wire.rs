//! Arbitrary bytes as what a PKCS#11 token returns: a CKA_EC_POINT
//! attribute and a raw CKM_ECDSA signature. The point must come back only
//! as an uncompressed P-256 point inside the input; the signature only as
//! an SSH blob with minimal mpints of the same r and s, which ssh-key
//! decodes whenever r and s are valid P-256 scalars (1..n-1). The same
//! bytes as an Ed25519 CKA_EC_POINT and CKM_EDDSA signature: 32 bytes at
//! the end of the input, and `string "ssh-ed25519", string sig` of exactly
//! 64 bytes, which ssh-key decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssh_key::{Algorithm, EcdsaCurve, Signature};
use vmux_keys::pkcs11::wire::{
    ec_point, ed25519_point, ed25519_signature_blob, p256_signature_blob,
};

/// The order of the P-256 group, big-endian.
const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

fn scalar(v: &[u8]) -> bool {
    v.iter().any(|b| *b != 0) && v < N.as_slice()
}

/// Big-endian magnitude without leading zeros.
fn trimmed(n: &[u8]) -> &[u8] {
    let start = n.iter().position(|b| *b != 0).unwrap_or(n.len());
    &n[start..]
}

fn string<'a>(r: &mut &'a [u8]) -> &'a [u8] {
    let (len, rest) = r.split_first_chunk::<4>().expect("string length");
    let (v, rest) = rest.split_at(u32::from_be_bytes(*len) as usize);
    *r = rest;
    v
}

fn mpint(r: &mut &[u8]) -> Vec<u8> {
    let v = string(r);
    // Minimal: no zero byte in front unless the top bit needs it.
    match v {
        [0] => panic!("zero as a non-empty mpint"),
        [0, next, ..] => assert!(next & 0x80 != 0, "non-minimal mpint"),
        _ => {}
    }
    trimmed(v).to_vec()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = ed25519_point(data) {
        assert_eq!(key.len(), 32);
        assert!(data.ends_with(key) && data.len() <= 34);
    }
    match ed25519_signature_blob(data) {
        Ok(blob) => {
            let mut rest = blob.as_slice();
            assert_eq!(string(&mut rest), b"ssh-ed25519");
            assert_eq!(string(&mut rest), data);
            assert!(rest.is_empty());
            let sig = Signature::try_from(blob.as_slice()).expect("ssh-key decodes it");
            assert_eq!(sig.algorithm(), Algorithm::Ed25519);
        }
        Err(_) => assert_ne!(data.len(), 64),
    }
    if let Ok(point) = ec_point(data) {
        assert_eq!(point.len(), 65);
        assert_eq!(point[0], 0x04);
        assert!(data.ends_with(point));
    }
    match p256_signature_blob(data) {
        Ok(blob) => {
            assert_eq!(data.len(), 64);
            let (r, s) = data.split_at(32);
            // The layout, read by hand: string name, string(mpint r, mpint s).
            let mut rest = blob.as_slice();
            assert_eq!(string(&mut rest), b"ecdsa-sha2-nistp256");
            let mut inner = string(&mut rest);
            assert!(rest.is_empty());
            assert_eq!(mpint(&mut inner), trimmed(r));
            assert_eq!(mpint(&mut inner), trimmed(s));
            assert!(inner.is_empty());
            // What a token really returns, r and s in 1..n-1, ssh-key
            // (and so ssh) must take.
            if scalar(r) && scalar(s) {
                let sig = Signature::try_from(blob.as_slice()).expect("ssh-key decodes it");
                assert_eq!(
                    sig.algorithm(),
                    Algorithm::Ecdsa {
                        curve: EcdsaCurve::NistP256
                    }
                );
            }
        }
        Err(_) => assert_ne!(data.len(), 64),
    }
});
