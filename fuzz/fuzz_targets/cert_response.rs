//! Arbitrary bytes as what the agent reads back about its session
//! certificate: a `certificateResponse` envelope, and our own certificate
//! with input bytes XORed into it (a signer that garbles the blob). The
//! agent must take a certificate only when it is a user certificate for its
//! own ephemeral key, and report that certificate's validity.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ssh_key::{Certificate, PublicKey};
use vmux_agent::cert::Ephemeral;
use vmux_keys::ca::{Ca, Policy};
use vmux_link::home::Home;
use vmux_proto::envelope::Envelope;
use zeroize::Zeroizing;

struct Agent {
    key: Ephemeral,
    public: PublicKey,
    /// A certificate the CA really issued for `key`.
    certificate: Vec<u8>,
}

fn agent() -> &'static Agent {
    static AGENT: OnceLock<Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("vmux-fuzz-cert-response-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let home = Home::at(dir).expect("temp home");
        let ca = Ca::init(&home, &Zeroizing::new("fuzz".into())).expect("a fresh CA");
        let policy = Policy {
            max_validity_secs: 3600,
            principals: vec!["fuzz".into()],
            ..Policy::default_for_this_user()
        };
        let grant = policy
            .grant("fuzz", "fuzz-id", 3600, 1_790_000_000)
            .expect("grant");
        let key = Ephemeral::generate().expect("ephemeral key");
        let public = PublicKey::from_bytes(key.public_blob()).expect("our blob parses");
        let certificate = ca
            .issue(&public, &grant, &Zeroizing::new("fuzz".into()))
            .expect("issue")
            .to_bytes()
            .expect("encode");
        assert!(key.certifies(&certificate).is_ok());
        Agent {
            key,
            public,
            certificate,
        }
    })
}

/// What `certifies` must answer, read independently.
fn check(agent: &Agent, blob: &[u8]) {
    let got = agent.key.certifies(blob);
    let want = Certificate::from_bytes(blob)
        .ok()
        .filter(|c| c.public_key() == agent.public.key_data() && c.cert_type().is_user())
        .map(|c| (c.valid_after(), c.valid_before()));
    assert_eq!(got.ok(), want);
}

fuzz_target!(|data: &[u8]| {
    let agent = agent();
    if let Ok(Envelope::CertificateResponse(r)) = Envelope::decode(data)
        && let Some(blob) = &r.certificate_blob
    {
        check(agent, blob);
    }
    // Our certificate, garbled from an input-chosen offset, and cut short
    // when the input is longer than it.
    let Some((&at, patch)) = data.split_first() else {
        return;
    };
    let mut blob = agent.certificate.clone();
    let start = usize::from(at) * blob.len() / 256;
    for (b, p) in blob.iter_mut().skip(start).zip(patch) {
        *b ^= p;
    }
    if patch.len() > blob.len() - start {
        blob.truncate(start + (patch.len() - (blob.len() - start)) % (blob.len() - start));
    }
    check(agent, &blob);
});
