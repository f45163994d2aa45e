//! Arbitrary bytes as a link envelope reaching the signer, followed through
//! what the signer does with a `certificateRequest` before and after the
//! person approves: the key blob's algorithm, the request window, the
//! replay cache, the CA policy, and issuing. Whatever the CA issues must be
//! a user certificate for exactly the requested key, signed by the CA, valid
//! for what the policy granted.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ssh_key::{Certificate, HashAlg, PublicKey};
use vmux_keys::ca::{BACKDATE_SECS, Ca, Policy};
use vmux_link::home::Home;
use vmux_proto::envelope::{Envelope, ErrorCode};
use vmux_signer::checks::{MAX_SKEW_MS, MAX_WINDOW_MS, ReplayCache, window};
use vmux_signer::identities::{Authority, blob_algorithm};

/// The signer's clock, fixed so runs are reproducible.
const NOW_MS: u64 = 1_790_000_000_000;
const NOW_SECS: u64 = NOW_MS / 1000;
const MAX_VALIDITY: u64 = 8 * 60 * 60;

struct Signer {
    authority: Authority,
    ca: PublicKey,
}

fn signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("vmux-fuzz-cert-request-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let home = Home::at(dir).expect("temp home");
        let mut ca = Ca::open(&home).expect("a fresh CA");
        ca.set_policy(Policy {
            max_validity_secs: MAX_VALIDITY,
            principals: vec!["fuzz".into()],
            auto_issue: true,
        })
        .expect("policy");
        Signer {
            authority: Authority::load(&home).expect("the CA as the request path opens it"),
            ca: ca.public_key().clone(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(Envelope::CertificateRequest(r)) = Envelope::decode(data) else {
        return;
    };
    let key = PublicKey::from_bytes(&r.public_key_blob);
    let algorithm = blob_algorithm(&r.public_key_blob);
    if let Ok(key) = &key {
        // The name the signer checks is the one the key really has.
        assert_eq!(algorithm.as_deref(), Some(key.algorithm().as_str()));
    }

    // Window and replay, as `Signer::admit` runs them.
    let (issued, expires) = (r.issued_at_milliseconds, r.expires_at_milliseconds);
    let in_window = window(issued, expires, NOW_MS);
    let ok = expires > issued
        && expires - issued <= MAX_WINDOW_MS
        && issued <= NOW_MS + MAX_SKEW_MS
        && NOW_MS <= expires;
    assert_eq!(in_window.is_ok(), ok, "window({issued}, {expires})");
    if ok {
        let mut replays = ReplayCache::default();
        assert!(replays.admit([1; 32], &r.nonce, expires, NOW_MS).is_ok());
        let again = replays.admit([1; 32], &r.nonce, expires, NOW_MS);
        assert_eq!(
            again.map_err(|(code, _)| code),
            Err(ErrorCode::ReplayedRequest)
        );
    }

    if algorithm.as_deref() != Some("ecdsa-sha2-nistp256") {
        return;
    }
    let signer = signer();
    let Ok(validity) = signer.authority.grantable(r.requested_validity_seconds) else {
        assert_eq!(r.requested_validity_seconds, 0);
        return;
    };
    assert!(validity >= 1 && validity <= r.requested_validity_seconds.min(MAX_VALIDITY));
    // The person approved: issue.
    let issued = match signer
        .authority
        .issue(&r.public_key_blob, "fuzz-device", validity, NOW_SECS)
    {
        Ok(issued) => issued,
        Err(e) => {
            assert!(key.is_err(), "a parsable key was refused: {e}");
            return;
        }
    };
    let key = key.expect("issued for a key that does not parse");
    let cert = Certificate::from_bytes(&issued.certificate_blob).expect("our certificate parses");
    assert_eq!(cert.public_key(), key.key_data());
    assert!(cert.cert_type().is_user());
    assert_eq!(cert.valid_principals(), ["fuzz".to_owned()]);
    assert_eq!(
        (cert.valid_after(), cert.valid_before()),
        (issued.valid_after, issued.valid_before)
    );
    assert_eq!(issued.valid_after, NOW_SECS - BACKDATE_SECS);
    assert_eq!(issued.valid_before, NOW_SECS + validity);
    assert_eq!(issued.ca_public_key, signer.ca.to_bytes().expect("CA blob"));
    let ca = signer.ca.fingerprint(HashAlg::Sha256);
    cert.validate_at(NOW_SECS, [&ca])
        .expect("signed by our CA, valid now");
});
