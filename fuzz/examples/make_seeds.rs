//! Writes the seed corpora of the targets that need real messages, from the
//! OpenSSH traffic `fuzz/seeds/capture.sh` records and from vmux's own
//! encoders (so every seed is a message the code really reads or writes).
//!
//! ```sh
//! fuzz/seeds/capture.sh /tmp/capture
//! cd fuzz && cargo run --release --example make_seeds -- /tmp/capture
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ssh_key::{PublicKey, Signature};
use vmux_agent::cache;
use vmux_agent::cert::Ephemeral;
use vmux_agent::context::sign_context;
use vmux_agent::control::{CERT_REQUEST, STATUS, Status};
use vmux_agent::keys::Key;
use vmux_agent::request_log::{Entry, RequestLog};
use vmux_agent::session_bind::Bindings;
use vmux_keys::Keyring;
use vmux_keys::ca::{Ca, Policy};
use vmux_link::home::Home;
use vmux_link::trust::{PeerRole, PinnedPeer, TrustStore};
use vmux_proto::agent::{
    Extension, ExtensionResponse, Request, Response, SignedData, classify, encode_frame,
};
use vmux_proto::envelope::{
    CertificateRequest, CertificateResponse, Envelope, ErrorCode, ProviderKind, PublicKeyRecord,
};
use zeroize::Zeroizing;

/// The clock of the cert_request target.
const NOW_MS: u64 = 1_790_000_000_000;

/// cert_request's policy bytes: bit i of the first grants the i-th of
/// `KNOWN_EXTENSIONS`; the second is the length of the network text.
const DEFAULT_EXTENSION_BITS: u8 = 0b0_1110; // agent, port forwarding, pty
const PTY_BIT: u8 = 0b0_1000;

fn policy_prefix(extension_bits: u8, networks: &str) -> Vec<u8> {
    let mut prefix = vec![extension_bits, u8::try_from(networks.len()).unwrap()];
    prefix.extend_from_slice(networks.as_bytes());
    prefix
}

fn corpus(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn seed(target: &str, name: &str, bytes: &[u8]) {
    std::fs::write(corpus(target).join(format!("seed-{name}")), bytes).unwrap();
}

/// `(conn, dir, body)` of every line of a capture.
fn read_capture(path: &Path) -> Vec<(u64, String, Vec<u8>)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let hex = v["hex"].as_str().unwrap();
            let body = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (
                v["conn"].as_u64().unwrap(),
                v["dir"].as_str().unwrap().to_owned(),
                body,
            )
        })
        .collect()
}

fn algorithm_of(blob: &[u8]) -> String {
    PublicKey::from_bytes(blob).map_or("unknown".into(), |k| k.algorithm().as_str().to_owned())
}

fn short(algorithm: &str) -> &str {
    match algorithm {
        "ssh-ed25519" => "ed25519",
        "ecdsa-sha2-nistp256" => "ecdsa",
        "ssh-rsa" => "rsa",
        other => other,
    }
}

fn temp_home(name: &str) -> Home {
    let dir = std::env::temp_dir().join(format!("vmux-make-seeds-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Home::at(dir).unwrap()
}

fn main() {
    let capture_dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: make_seeds CAPTURE_DIR"),
    );
    let capture = read_capture(&capture_dir.join("capture.jsonl"));
    let golden = read_capture(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../crates/proto/tests/fixtures/agent/openssh-9.2p1-capture.jsonl"),
    );
    let public_keys: Vec<PublicKey> = std::fs::read_to_string(capture_dir.join("identities.pub"))
        .unwrap()
        .lines()
        .map(|l| PublicKey::from_openssh(l).unwrap())
        .collect();

    // Client-to-agent streams per connection, as ssh wrote them.
    let mut streams: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
    for (conn, dir, body) in &capture {
        if dir == "c2a" {
            streams.entry(*conn).or_default().push(body.clone());
        }
    }

    // session_bind: whole connections that bind, from real logins and a
    // forwarded agent; plus the golden good and bad binds.
    for (conn, bodies) in &streams {
        let mut name = None;
        for body in bodies {
            if let Ok(Request::Extension(Extension::SessionBind(b))) = Request::decode(body) {
                let kind = if b.is_forwarding {
                    "forwarded"
                } else {
                    "login"
                };
                name = Some(format!(
                    "{kind}-hostkey-{}-conn{conn}",
                    short(&algorithm_of(&b.host_key))
                ));
            }
        }
        if let Some(name) = name {
            let stream: Vec<u8> = bodies
                .iter()
                .flat_map(|b| encode_frame(b).unwrap())
                .collect();
            seed("session_bind", &name, &stream);
        }
    }
    for (conn, name) in [(16, "golden-bind"), (17, "golden-bind-bad-signature")] {
        let stream: Vec<u8> = golden
            .iter()
            .filter(|(c, d, _)| *c == conn && d == "c2a")
            .flat_map(|(_, _, b)| encode_frame(b).unwrap())
            .collect();
        seed("session_bind", name, &stream);
    }

    // userauth and sshsig: the data of every captured sign request.
    let mut sign_data = Vec::new();
    for bodies in streams.values() {
        for body in bodies {
            if let Ok(Request::SignRequest(s)) = Request::decode(body) {
                let key = short(&algorithm_of(&s.key_blob)).to_owned();
                match classify(&s.data) {
                    SignedData::Userauth(u) => {
                        let method = if u.host_key.is_some() {
                            "hostbound"
                        } else {
                            "publickey"
                        };
                        let host = u
                            .host_key
                            .as_deref()
                            .map_or("none".into(), |h| short(&algorithm_of(h)).to_owned());
                        seed(
                            "userauth",
                            &format!("{method}-{key}-hostkey-{host}"),
                            &s.data,
                        );
                    }
                    SignedData::SshSig(sig) => {
                        seed("sshsig", &format!("{}-{key}", sig.namespace), &s.data);
                    }
                    SignedData::Unknown => panic!("unrecognised captured sign data"),
                }
                sign_data.push(s.data);
            }
        }
    }

    // cert_request: the policy the person chose (extension bits, then the
    // `--source-address` text), then what the agent sends for a real
    // ephemeral key.
    let ephemeral = Ephemeral::generate().unwrap();
    let request = |blob: &[u8], validity: u64, issued: u64| {
        policy_prefix(DEFAULT_EXTENSION_BITS, "")
            .into_iter()
            .chain(
                Envelope::CertificateRequest(CertificateRequest {
                    request_id: "3f1b8c2e-6a4d-4e8b-9c1a-2b7d5e6f8a90".into(),
                    public_key_blob: blob.to_vec(),
                    source_device_id: "0b5e2d1c-7f3a-4c9e-8d6b-1a2f3e4d5c6b".into(),
                    source_device_name: "laptop".into(),
                    requested_validity_seconds: validity,
                    nonce: vec![0x5a; 32],
                    issued_at_milliseconds: issued,
                    expires_at_milliseconds: issued + 60_000,
                })
                .encode()
                .unwrap(),
            )
            .collect::<Vec<u8>>()
    };
    let eight_hours = request(ephemeral.public_blob(), 28_800, NOW_MS);
    seed("cert_request", "ephemeral-8h", &eight_hours);
    seed(
        "cert_request",
        "ephemeral-1w",
        &request(ephemeral.public_blob(), 604_800, NOW_MS - 1000),
    );
    seed(
        "cert_request",
        "ephemeral-zero-validity",
        &request(ephemeral.public_blob(), 0, NOW_MS),
    );
    seed(
        "cert_request",
        "ephemeral-expired",
        &request(ephemeral.public_blob(), 28_800, NOW_MS - 120_000),
    );
    let ed25519 = public_keys
        .iter()
        .find(|k| k.algorithm().as_str() == "ssh-ed25519")
        .unwrap();
    seed(
        "cert_request",
        "ed25519-key",
        &request(&ed25519.to_bytes().unwrap(), 28_800, NOW_MS),
    );
    // The same request under a policy with only permit-pty and two networks.
    let envelope = &eight_hours[2..];
    let bound = policy_prefix(PTY_BIT, "10.9.9.9/32,2001:db8::/32");
    seed(
        "cert_request",
        "pty-source-address",
        &[&bound[..], envelope].concat(),
    );
    let host_bits = policy_prefix(0, "10.0.0.1/8");
    seed(
        "cert_request",
        "source-address-host-bits",
        &[&host_bits[..], envelope].concat(),
    );

    // cert_response: a certificate a real CA issued for the ephemeral key.
    let home = temp_home("ca");
    let ca = Ca::init(&home, &Zeroizing::new("seed".into())).unwrap();
    let policy = Policy {
        max_validity_secs: 28_800,
        principals: vec!["alice".into()],
        ..Policy::default_for_this_user()
    };
    let grant = policy
        .grant(
            "laptop",
            "0b5e2d1c-7f3a-4c9e-8d6b-1a2f3e4d5c6b",
            28_800,
            NOW_MS / 1000,
        )
        .unwrap();
    let public = PublicKey::from_bytes(ephemeral.public_blob()).unwrap();
    let cert = ca
        .issue(&public, &grant, &Zeroizing::new("seed".into()))
        .unwrap();
    let approved = Envelope::CertificateResponse(CertificateResponse {
        request_id: "3f1b8c2e-6a4d-4e8b-9c1a-2b7d5e6f8a90".into(),
        approved: true,
        certificate_blob: Some(cert.to_bytes().unwrap()),
        ca_public_key: Some(ca.public_key().to_bytes().unwrap()),
        valid_after: Some(cert.valid_after()),
        valid_before: Some(cert.valid_before()),
        error_code: None,
        error_message: None,
    });
    seed("cert_response", "approved", &approved.encode().unwrap());
    let denied = Envelope::CertificateResponse(CertificateResponse {
        request_id: "3f1b8c2e-6a4d-4e8b-9c1a-2b7d5e6f8a90".into(),
        approved: false,
        certificate_blob: None,
        ca_public_key: None,
        valid_after: None,
        valid_before: None,
        error_code: Some(ErrorCode::UserDenied),
        error_message: Some("the certificate was denied on the signer".into()),
    });
    seed("cert_response", "denied", &denied.encode().unwrap());

    // keys_cache and control_status: the captured public keys.
    let keys: Vec<Key> = public_keys
        .iter()
        .map(|k| {
            Key::from_record(&PublicKeyRecord {
                algorithm: k.algorithm().as_str().into(),
                public_key_blob: k.to_bytes().unwrap(),
                comment: k.comment().to_string(),
                provider_kind: ProviderKind::Software,
                display_name: Some(k.comment().to_string()),
            })
        })
        .collect();
    let cache_home = temp_home("cache");
    let cache_path = cache_home.file(cache::CACHE_FILE);
    cache::save(&cache_path, Some("phone"), &keys).unwrap();
    seed(
        "keys_cache",
        "three-keys",
        &std::fs::read(&cache_path).unwrap(),
    );
    cache::save(&cache_path, None, &[]).unwrap();
    seed("keys_cache", "empty", &std::fs::read(&cache_path).unwrap());

    // Built from JSON so that fields added later take their defaults.
    let status_keys: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| serde_json::json!({"comment": k.comment, "fingerprint": k.fingerprint.to_string(), "algorithm": k.algorithm}))
        .collect();
    let connected: Status = serde_json::from_value(serde_json::json!({
        "connectedTo": "phone",
        "certificate": "Session certificate valid until 2026-09-21 22:13 UTC",
        "keys": status_keys,
    }))
    .unwrap();
    let cached: Status = serde_json::from_value(serde_json::json!({
        "certificate": "No session certificate",
        "certificateRefused": "userDenied",
        "locked": true,
        "fromCache": true,
        "keys": [],
    }))
    .unwrap();
    for (name, ext, status) in [
        ("status-connected", STATUS, &connected),
        ("cert-request-refused", CERT_REQUEST, &cached),
    ] {
        let reply = Response::ExtensionResponse(ExtensionResponse::Other {
            name: ext.into(),
            contents: status.to_contents(),
        });
        seed("control_status", name, &reply.encode().unwrap());
    }

    // identities: a registry made by the keyring itself, importing the
    // captured private keys (one encrypted, one disabled).
    let id_home = temp_home("identities");
    let mut ring = Keyring::load(&id_home).unwrap();
    for t in ["ed25519", "ecdsa", "rsa"] {
        let pem = std::fs::read(capture_dir.join(format!("key-{t}-encrypted"))).unwrap();
        ring.import_software(
            &format!("work-{t}"),
            &pem,
            &Zeroizing::new("hunter2".to_owned()),
        )
        .unwrap();
    }
    ring.set_enabled("work-rsa", false).unwrap();
    seed(
        "identities",
        "three-software-keys",
        &std::fs::read(id_home.file(vmux_keys::keyring::FILE)).unwrap(),
    );

    // trust_store: pairing pins a signer and a requester.
    let trust_home = temp_home("trust");
    let trust_path = trust_home.file("trust.json");
    let mut store = TrustStore::load_from(trust_path.clone()).unwrap();
    let mut signer = PinnedPeer::new(
        "0b5e2d1c-7f3a-4c9e-8d6b-1a2f3e4d5c6b".into(),
        "phone".into(),
        PeerRole::Signer,
        &[7; 32],
        NOW_MS,
    );
    signer.address = Some("127.0.0.1:7777".into());
    store.pin(signer).unwrap();
    store
        .pin(PinnedPeer::new(
            "3f1b8c2e-6a4d-4e8b-9c1a-2b7d5e6f8a90".into(),
            "laptop".into(),
            PeerRole::Requester,
            &[9; 32],
            NOW_MS,
        ))
        .unwrap();
    seed(
        "trust_store",
        "signer-and-requester",
        &std::fs::read(&trust_path).unwrap(),
    );

    // request_log: what the agent and the signer append for real requests.
    let log_home = temp_home("log");
    let agent_log = log_home.file("agent-log.jsonl");
    let log = RequestLog::new(agent_log.clone());
    for (i, data) in sign_data.iter().enumerate() {
        let entry: Entry = serde_json::from_value(serde_json::json!({
            "timeMilliseconds": NOW_MS + i as u64,
            "requestID": format!("3f1b8c2e-6a4d-4e8b-9c1a-2b7d5e6f8a9{i}"),
            "keyFingerprint": keys[i % keys.len()].fingerprint.to_string(),
            "keyComment": keys[i % keys.len()].comment,
            "path": "forwarded",
            "context": sign_context(data, &Bindings::default()),
            "outcome": if i % 3 == 0 { "userDenied" } else { "approved" },
            "latencyMs": 1200 + i as u64,
        }))
        .unwrap();
        log.append(&entry);
    }
    seed("request_log", "agent", &std::fs::read(&agent_log).unwrap());
    let signer_log = log_home.file("signer-log.jsonl");
    let slog = vmux_signer::log::Log::at(signer_log.clone());
    for (i, kind) in ["sign", "certificate", "sign"].iter().enumerate() {
        slog.append(&vmux_signer::log::Entry {
            time: NOW_MS + i as u64,
            request_id: format!("3f1b8c2e-6a4d-4e8b-9c1a-2b7d5e6f8a9{i}"),
            kind: (*kind).into(),
            device: "laptop".into(),
            claimed_device: (i == 2).then(|| "build-box".into()),
            key_fingerprint: Some(keys[i].fingerprint.to_string()),
            destination: (*kind == "sign")
                .then(|| "alice@prod-db (verified by this signer)".into()),
            purpose: (*kind == "sign").then(|| "SSH login (verified by this signer)".into()),
            path: (*kind == "sign")
                .then(|| "laptop → bastion (forwarded) → prod-db (verified by this signer)".into()),
            outcome: "approved".into(),
            decision_ms: 2300,
            ..Default::default()
        });
    }
    seed(
        "request_log",
        "signer",
        &std::fs::read(&signer_log).unwrap(),
    );

    // key_import: the private-key files ssh-keygen wrote.
    for t in ["ed25519", "ecdsa", "rsa"] {
        for suffix in ["", "-encrypted"] {
            let pem = std::fs::read(capture_dir.join(format!("key-{t}{suffix}"))).unwrap();
            seed("key_import", &format!("{t}{suffix}"), &pem);
        }
    }

    // pkcs11_wire: a real P-256 point as tokens return it, and a raw r || s.
    let blob = ephemeral.public_blob();
    let point = &blob[blob.len() - 65..];
    let mut der = vec![0x04, 0x41];
    der.extend_from_slice(point);
    let mut der_long = vec![0x04, 0x81, 0x41];
    der_long.extend_from_slice(point);
    seed("pkcs11_wire", "ec-point-der", &der);
    seed("pkcs11_wire", "ec-point-der-long", &der_long);
    seed("pkcs11_wire", "ec-point-bare", point);
    let sig = Signature::try_from(ephemeral.sign(b"vmux").unwrap().as_slice()).unwrap();
    let mut inner = sig.as_bytes();
    let mut raw = Vec::new();
    for _ in 0..2 {
        let len = u32::from_be_bytes(inner[..4].try_into().unwrap()) as usize;
        let v = &inner[4..4 + len];
        let v = &v[v.len().saturating_sub(32)..];
        raw.extend(std::iter::repeat_n(0, 32 - v.len()));
        raw.extend_from_slice(v);
        inner = &inner[4 + len..];
    }
    seed("pkcs11_wire", "raw-signature", &raw);

    for h in [home, cache_home, id_home, trust_home, log_home] {
        let _ = std::fs::remove_dir_all(h.root());
    }
    println!("seeds written under {}", corpus("").display());
}
