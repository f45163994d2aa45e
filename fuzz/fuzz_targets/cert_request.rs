//! Arbitrary bytes as a CA policy chosen by the person (extensions and
//! `source-address` networks, from the first bytes) and a link envelope
//! reaching the signer (the rest), followed through what the signer does
//! with a `certificateRequest` before and after the person approves: the key
//! blob's algorithm, the request window, the replay cache, the policy's
//! grant, and issuing. Whatever the CA issues must be a user certificate for
//! exactly the requested key, signed by the CA, carrying exactly the grant
//! the sheet showed: principals, validity, extensions, critical options.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ssh_key::{Algorithm, Certificate, HashAlg, LineEnding, PrivateKey, PublicKey};
use vmux_keys::ca::{BACKDATE_SECS, Ca, KNOWN_EXTENSIONS, Policy, canonical_cidr};
use vmux_link::home::Home;
use vmux_proto::envelope::{Envelope, ErrorCode};
use vmux_signer::checks::{MAX_SKEW_MS, MAX_WINDOW_MS, ReplayCache, window};
use vmux_signer::identities::blob_algorithm;
use zeroize::Zeroizing;

/// The signer's clock, fixed so runs are reproducible.
const NOW_MS: u64 = 1_790_000_000_000;
const NOW_SECS: u64 = NOW_MS / 1000;
const MAX_VALIDITY: u64 = 8 * 60 * 60;

/// A CA whose key is an unencrypted `ca.key` (as an older vmux left it), so
/// that issuing costs no key derivation per input; the encrypted store signs
/// through the same builder.
fn ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("vmux-fuzz-cert-request-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let home = Home::at(dir).expect("temp home");
        let key = PrivateKey::random(
            &mut ssh_key::rand_core::UnwrapErr(ssh_key::getrandom::SysRng),
            Algorithm::Ed25519,
        )
        .expect("a CA key");
        let pem = key.to_openssh(LineEnding::LF).expect("PEM");
        vmux_link::home::write_private(&vmux_keys::ca::KEY_FILE.path(&home), pem.as_bytes())
            .expect("write ca.key");
        Ca::open(&home).expect("the CA").expect("a CA")
    })
}

/// The policy the input's first bytes choose: byte 0 picks extensions
/// (one bit each), byte 1 the length of the `--source-address` text that
/// follows, read as `vmux ca policy` reads it. `None` when the CLI would
/// refuse the text. Returns the rest of the input too.
fn policy(data: &[u8]) -> Option<(Option<Policy>, &[u8])> {
    let (&bits, rest) = data.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let len = usize::from(len % 65);
    let text = rest.get(..len)?;
    let rest = rest.get(len..)?;
    let extensions = KNOWN_EXTENSIONS
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, e)| (*e).to_owned())
        .collect();
    let text = String::from_utf8_lossy(text);
    let mut networks = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Ok(canonical) = canonical_cidr(item) else {
            return Some((None, rest));
        };
        // One way to write each network: canonical forms are fixed points.
        assert_eq!(
            canonical_cidr(&canonical).expect("canonical accepted"),
            canonical
        );
        let (addr, bits) = canonical.split_once('/').expect("ADDR/BITS");
        let addr: std::net::IpAddr = addr.parse().expect("an IP address");
        let bits: u32 = bits.parse().expect("a prefix length");
        assert!(bits <= if addr.is_ipv4() { 32 } else { 128 });
        networks.push(canonical);
    }
    let policy = Policy {
        max_validity_secs: MAX_VALIDITY,
        principals: vec!["fuzz".into()],
        auto_issue: true,
        extensions,
        source_addresses: networks,
    };
    let valid = policy.validate();
    assert_eq!(
        valid.is_ok(),
        policy.source_addresses.len() <= vmux_keys::ca::MAX_SOURCE_ADDRESSES,
        "{valid:?}"
    );
    Some((valid.ok().map(|()| policy), rest))
}

fuzz_target!(|data: &[u8]| {
    let Some((policy, data)) = policy(data) else {
        return;
    };
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
    // The signer refuses a key that does not parse before the sheet.
    let (Ok(key), Some(policy)) = (key, policy) else {
        return;
    };
    // The requester chooses only the validity; the rest is the policy's.
    let Ok(grant) = policy.grant(
        &r.source_device_name,
        &r.source_device_id,
        r.requested_validity_seconds,
        NOW_SECS,
    ) else {
        assert_eq!(r.requested_validity_seconds, 0);
        return;
    };
    let validity = grant.validity_secs();
    assert!(validity >= 1 && validity <= r.requested_validity_seconds.min(MAX_VALIDITY));
    assert_eq!(
        grant.shortened(),
        r.requested_validity_seconds > MAX_VALIDITY
    );
    // The person approved: issue.
    let cert = ca()
        .issue(&key, &grant, &Zeroizing::default())
        .expect("a grant for a parsable key is issued");
    let cert = Certificate::from_bytes(&cert.to_bytes().expect("encodes"))
        .expect("our certificate parses");
    assert_eq!(cert.public_key(), key.key_data());
    assert!(cert.cert_type().is_user());
    assert_ne!(cert.serial(), 0);
    assert_eq!(cert.key_id(), grant.key_id);
    assert_eq!(cert.valid_principals(), ["fuzz".to_owned()]);
    assert_eq!(cert.valid_after(), NOW_SECS - BACKDATE_SECS);
    assert_eq!(cert.valid_before(), NOW_SECS + validity);
    let extensions: Vec<&String> = cert.extensions().keys().collect();
    let mut wanted: Vec<&String> = policy.extensions.iter().collect();
    wanted.sort();
    wanted.dedup();
    assert_eq!(extensions, wanted);
    assert!(cert.extensions().values().all(String::is_empty));
    let critical: Vec<(&String, &String)> = cert.critical_options().iter().collect();
    match policy.source_addresses.as_slice() {
        [] => assert!(critical.is_empty()),
        networks => {
            let joined = networks.join(",");
            assert_eq!(critical, [(&"source-address".to_owned(), &joined)]);
        }
    }
    let ca = ca().public_key().fingerprint(HashAlg::Sha256);
    cert.validate_at(NOW_SECS, [&ca])
        .expect("signed by our CA, valid now");
});
