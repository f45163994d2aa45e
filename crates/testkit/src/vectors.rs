//! The known-answer vectors of `docs/vectors/`, computed by the project's own
//! code: the link's Noise steps (with chosen ephemeral keys), its pairing
//! code, the envelope codec, the signer's signature encoders and the
//! fingerprint. `cargo run -p vmux --example vectors` writes them; the
//! test `vectors::` of `crates/vmux/tests/it` checks that the files still
//! say what this computes.
//!
//! Every input is fixed here, so the output is the same on every run.

use std::fmt::Write as _;

use blake2::{Blake2s256, Digest};
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use ssh_key::private::{EcdsaKeypair, Ed25519Keypair, KeypairData};
use ssh_key::{HashAlg, PrivateKey};
use vmux_keys::pkcs11::wire::p256_signature_blob;
use vmux_keys::software::sign_blob;
use vmux_keys::store::RsaHash;
use vmux_link::noise::{self, StaticKeypair, fixed};
use vmux_link::pairing::{self, PairingCode};
use vmux_link::{Fingerprint, frame};
use vmux_proto::envelope::{
    Cancel, CertificateRequest, CertificateResponse, ContextQuality, DeviceTokenUpdate, Envelope,
    ErrorCode, ErrorReport, Hello, KeyList, KeyListRequest, Origin, PROTOCOL_MAJOR, PROTOCOL_MINOR,
    PairCommit, PairNonce, PairResult, PairReveal, Ping, Pong, ProviderKind, PublicKeyRecord,
    Purpose, Role, SessionBinding, SignContext, SignRequest, SignResponse,
};
use zeroize::Zeroizing;

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The RSA test key (made once with `ssh-keygen -t rsa -b 2048 -N ''`; a
/// vector key, public by design).
const RSA_KEY: &str = include_str!("vectors/rsa-2048.key");

/// Each file of `docs/vectors/` with its content.
pub fn files() -> Result<Vec<(&'static str, String)>> {
    let keys = Keys::new()?;
    let noise = noise_xx()?;
    let pairing = pairing_vectors(&noise.handshake_hash)?;
    Ok(vec![
        ("noise-xx.json", json(&noise.file)?),
        ("pairing.json", json(&pairing)?),
        (
            "envelopes.json",
            json(&envelopes(&keys, &noise.handshake_hash)?)?,
        ),
        ("signatures.json", json(&signatures(&keys)?)?),
        ("fingerprints.json", json(&fingerprints(&keys, &noise)?)?),
    ])
}

fn json<T: Serialize>(value: &T) -> Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `n` bytes counting up from `first`: inputs anyone can type in.
fn counting<const N: usize>(first: u8) -> [u8; N] {
    core::array::from_fn(|i| first.wrapping_add(i as u8))
}

// ------------------------------------------------------------------ noise

const INITIATOR_DEVICE_ID: &str = "6f1c9a52-3c1e-4d8b-9a57-0e2f4b6c8d10";
const SIGNER_DEVICE_ID: &str = "0d3e5b7a-8c21-4f6e-b3a9-52c7e1d4f806";
const REQUEST_ID: &str = "2b7e1516-28ae-4d2a-8f3c-9cf4f3c6a1b0";
const CERT_REQUEST_ID: &str = "8f14e45f-ceea-467f-a0e6-1b4a3c2d9e7b";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Party {
    static_private: String,
    static_public: String,
    ephemeral_private: String,
    ephemeral_public: String,
}

impl Party {
    fn new(static_secret: [u8; 32], ephemeral_secret: [u8; 32]) -> Self {
        let public = |s: [u8; 32]| StaticKeypair::from_secret_bytes(Zeroizing::new(s)).public();
        Self {
            static_private: hex(&static_secret),
            static_public: hex(&public(static_secret)),
            ephemeral_private: hex(&ephemeral_secret),
            ephemeral_public: hex(&public(ephemeral_secret)),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HandshakeMessage {
    name: &'static str,
    from: &'static str,
    message: String,
    frame: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TransportMessage {
    from: &'static str,
    nonce: u64,
    envelope: &'static str,
    plaintext: String,
    ciphertext: String,
    frame: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NoiseFile {
    description: &'static str,
    protocol: &'static str,
    prologue: String,
    initiator: Party,
    signer: Party,
    handshake: Vec<HandshakeMessage>,
    handshake_hash: String,
    initiator_to_signer_key: String,
    signer_to_initiator_key: String,
    transport: Vec<TransportMessage>,
}

pub struct Noise {
    file: NoiseFile,
    handshake_hash: [u8; 32],
    initiator_static: [u8; 32],
    signer_static: [u8; 32],
}

fn hello(device_id: &str, name: &str, role: Role, pairing: bool) -> Envelope {
    Envelope::Hello(Hello {
        protocol_major: PROTOCOL_MAJOR,
        protocol_minor: PROTOCOL_MINOR,
        device_id: device_id.into(),
        device_name: name.into(),
        role,
        pairing,
    })
}

fn noise_xx() -> Result<Noise> {
    let (i_s, i_e, r_s, r_e) = (
        counting::<32>(0x00),
        counting::<32>(0x20),
        counting::<32>(0x40),
        counting::<32>(0x60),
    );
    let initiator = StaticKeypair::from_secret_bytes(Zeroizing::new(i_s));
    let signer = StaticKeypair::from_secret_bytes(Zeroizing::new(r_s));

    let (i_state, msg1) = fixed::initiate(&initiator, Zeroizing::new(i_e), noise::PROLOGUE, &[])?;
    let (r_state, _, msg2) =
        fixed::respond(&signer, Zeroizing::new(r_e), noise::PROLOGUE, &msg1, &[])?;
    // The link's own checks (exact lengths, empty payloads) on the same bytes.
    let presented = i_state.read_msg2(&msg2)?;
    let (msg3, mut i_t) = presented.finish()?;
    let mut r_t = r_state.read_msg3(&msg3)?;
    if i_t.handshake_hash != r_t.handshake_hash || r_t.remote_static != initiator.public() {
        return Err("the two ends disagree".into());
    }
    let key = |c: &noise::CipherState| fixed::key(c).ok_or("a cipher without a key");

    let handshake = [
        ("message 1: -> e", "initiator", &msg1),
        ("message 2: <- e, ee, s, es", "signer", &msg2),
        ("message 3: -> s, se", "initiator", &msg3),
    ]
    .into_iter()
    .map(|(name, from, m)| {
        Ok(HandshakeMessage {
            name,
            from,
            message: hex(m),
            frame: hex(&frame::encode(m)?),
        })
    })
    .collect::<Result<_>>()?;

    // The first transport message each way: the two hellos of a paired session.
    let mut transport = Vec::new();
    for (from, envelope, send, recv) in [
        (
            "initiator",
            hello(INITIATOR_DEVICE_ID, "laptop", Role::Agent, false),
            &mut i_t.send,
            &mut r_t.recv,
        ),
        (
            "signer",
            hello(SIGNER_DEVICE_ID, "phone", Role::Signer, false),
            &mut r_t.send,
            &mut i_t.recv,
        ),
    ] {
        let plaintext = envelope.encode()?;
        let ciphertext = send.encrypt(&plaintext)?;
        if recv.decrypt(&ciphertext)? != plaintext {
            return Err("a transport message did not round-trip".into());
        }
        transport.push(TransportMessage {
            from,
            nonce: 0,
            envelope: envelope.type_name(),
            plaintext: hex(&plaintext),
            ciphertext: hex(&ciphertext),
            frame: hex(&frame::encode(&ciphertext)?),
        });
    }

    let file = NoiseFile {
        description: "Noise_XX_25519_ChaChaPoly_BLAKE2s as the link runs it (protocol.md §4): \
            prologue \"vmux link v1\", empty handshake payloads, fixed static and ephemeral \
            keys. Keys are raw X25519 (private: the 32 bytes before clamping). `frame` is the \
            message with its 2-byte big-endian length (§3). The split keys encrypt \
            initiator→signer and signer→initiator; each transport message is the first one its \
            way (nonce 0), carrying a hello envelope.",
        protocol: "Noise_XX_25519_ChaChaPoly_BLAKE2s",
        prologue: hex(noise::PROLOGUE),
        initiator: Party::new(i_s, i_e),
        signer: Party::new(r_s, r_e),
        handshake,
        handshake_hash: hex(&i_t.handshake_hash),
        initiator_to_signer_key: hex(&key(&i_t.send)?),
        signer_to_initiator_key: hex(&key(&i_t.recv)?),
        transport,
    };
    Ok(Noise {
        file,
        handshake_hash: i_t.handshake_hash,
        initiator_static: initiator.public(),
        signer_static: signer.public(),
    })
}

// ---------------------------------------------------------------- pairing

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PairingVector {
    note: &'static str,
    handshake_hash: String,
    initiator_nonce: String,
    signer_nonce: String,
    commitment: String,
    code_digest: String,
    code_number: u32,
    code: String,
    pair_commit: String,
    pair_nonce: String,
    pair_reveal: String,
}

#[derive(Serialize)]
struct PairingFile {
    description: &'static str,
    vectors: Vec<PairingVector>,
}

fn pairing_vector(
    note: &'static str,
    h: &[u8; 32],
    n_i: &[u8; 32],
    n_r: &[u8; 32],
) -> Result<PairingVector> {
    let commitment = pairing::commitment(h, n_r);
    pairing::verify_commitment(h, n_r, &commitment)?;
    let code = PairingCode::derive(h, n_i, n_r);
    // The intermediate digest, for implementers to debug against; it must
    // give the project's code.
    let digest: [u8; 32] = Blake2s256::new()
        .chain_update(b"vmux pairing code v1")
        .chain_update(h)
        .chain_update(n_i)
        .chain_update(n_r)
        .finalize()
        .into();
    let first: [u8; 8] = digest.first_chunk().copied().ok_or("short digest")?;
    if u64::from_be_bytes(first) % 1_000_000 != u64::from(code.value()) {
        return Err("code digest disagrees with PairingCode::derive".into());
    }
    let encode = |e: Envelope| e.encode().map(|b| hex(&b));
    Ok(PairingVector {
        note,
        handshake_hash: hex(h),
        initiator_nonce: hex(n_i),
        signer_nonce: hex(n_r),
        commitment: hex(&commitment),
        code_digest: hex(&digest),
        code_number: code.value(),
        code: code.to_string(),
        pair_commit: encode(Envelope::PairCommit(PairCommit {
            commitment: commitment.to_vec(),
        }))?,
        pair_nonce: encode(Envelope::PairNonce(PairNonce {
            nonce: n_i.to_vec(),
        }))?,
        pair_reveal: encode(Envelope::PairReveal(PairReveal {
            nonce: n_r.to_vec(),
        }))?,
    })
}

fn pairing_vectors(h: &[u8; 32]) -> Result<PairingFile> {
    let n_r = counting::<32>(0xa0);
    let first = pairing_vector("h from noise-xx.json", h, &counting::<32>(0x80), &n_r)?;
    // A code below 1000 shows the zero padding: the first initiator nonce,
    // counting from 0x80 with its last byte raised, that gives one.
    let mut n_i = counting::<32>(0x80);
    let padded = loop {
        if PairingCode::derive(h, &n_i, &n_r).value() < 1000 {
            break pairing_vector("a code below 1000, zero-padded", h, &n_i, &n_r)?;
        }
        let last = n_i.last_mut().ok_or("empty nonce")?;
        *last = last.wrapping_add(1);
        if *last == 0x9f {
            // 256 tries without one: walk the byte before it too.
            let before = n_i.get_mut(30).ok_or("short nonce")?;
            *before = before.wrapping_add(1);
        }
    };
    Ok(PairingFile {
        description: "Pairing (protocol.md §7): commitment = BLAKE2s-256(\"vmux pairing commit \
            v1\" ‖ h ‖ nR); codeDigest = BLAKE2s-256(\"vmux pairing code v1\" ‖ h ‖ nI ‖ nR); \
            codeNumber = big-endian u64 of its first 8 bytes mod 1000000; code is how both \
            screens show it. pairCommit, pairNonce and pairReveal are the envelopes carrying \
            these values, as CBOR.",
        vectors: vec![first, padded],
    })
}

// ------------------------------------------------------------------- keys

/// The SSH keys of the signature and envelope vectors.
struct Keys {
    ecdsa_scalar: [u8; 32],
    ecdsa: PrivateKey,
    ed25519_seed: [u8; 32],
    ed25519: PrivateKey,
    ca: PrivateKey,
    rsa: PrivateKey,
    /// An ephemeral P-256 key as the agent would make for a certificate.
    session: PrivateKey,
}

fn p256_key(scalar: &[u8; 32], comment: &str) -> Result<PrivateKey> {
    let secret = p256::SecretKey::from_slice(scalar)?;
    let public = ssh_key::sec1::EncodedPoint::from_bytes(secret.public_key().to_sec1_bytes())?;
    let keypair = EcdsaKeypair::NistP256 {
        public,
        private: secret.into(),
    };
    Ok(PrivateKey::new(KeypairData::Ecdsa(keypair), comment)?)
}

fn ed25519_key(seed: &[u8; 32], comment: &str) -> Result<PrivateKey> {
    let keypair = Ed25519Keypair::from_seed(seed);
    Ok(PrivateKey::new(KeypairData::Ed25519(keypair), comment)?)
}

impl Keys {
    fn new() -> Result<Self> {
        let ecdsa_scalar = counting::<32>(0xc0);
        let ed25519_seed = counting::<32>(0xe0);
        Ok(Self {
            ecdsa: p256_key(&ecdsa_scalar, "vectors ecdsa")?,
            ecdsa_scalar,
            ed25519: ed25519_key(&ed25519_seed, "vectors ed25519")?,
            ed25519_seed,
            ca: ed25519_key(&counting::<32>(0x10), "vectors CA")?,
            rsa: PrivateKey::from_openssh(RSA_KEY)?,
            session: p256_key(&counting::<32>(0x30), "")?,
        })
    }
}

fn blob(key: &PrivateKey) -> Result<Vec<u8>> {
    Ok(key.public_key().to_bytes()?)
}

// -------------------------------------------------------------- envelopes

/// A CBOR value as JSON: maps in their encoded order, byte strings as
/// `h'…'` (CBOR diagnostic notation), so text and bytes stay apart.
struct Meaning<'a>(&'a ciborium::Value);

impl Serialize for Meaning<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use ciborium::Value;
        match self.0 {
            Value::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(&Meaning(k), &Meaning(v))?;
                }
                map.end()
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Meaning(item))?;
                }
                seq.end()
            }
            Value::Bytes(b) => s.serialize_str(&format!("h'{}'", hex(b))),
            Value::Text(t) => s.serialize_str(t),
            Value::Integer(n) => s.serialize_i128(i128::from(*n)),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Null => s.serialize_unit(),
            other => Err(serde::ser::Error::custom(format!(
                "no JSON form for {other:?}"
            ))),
        }
    }
}

#[derive(Serialize)]
struct EnvelopeVector {
    #[serde(rename = "type")]
    kind: &'static str,
    note: &'static str,
    cbor: String,
    json: serde_json::Value,
}

#[derive(Serialize)]
struct EnvelopesFile {
    description: &'static str,
    envelopes: Vec<EnvelopeVector>,
}

/// The JSON meaning of an envelope's CBOR bytes.
pub fn meaning(cbor: &[u8]) -> Result<serde_json::Value> {
    let value: ciborium::Value = ciborium::from_reader(cbor)?;
    Ok(serde_json::to_value(Meaning(&value))?)
}

/// The message the signature vectors sign and the sign request carries: an
/// SSHSIG signed-data blob as `ssh-keygen -Y sign -n git` makes for
/// `hello\n` (PROTOCOL.sshsig), with the SHA-512 of the message.
fn sshsig_data() -> Vec<u8> {
    let message_hash = ssh_key::sha2::Sha512::digest(b"hello\n");
    let mut out = b"SSHSIG".to_vec();
    for field in [b"git".as_slice(), b"", b"sha512", message_hash.as_slice()] {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// What ssh signs to log in as `root` with `key` in session `sid` (RFC
/// 4252 §7, method `publickey`).
fn userauth_data(sid: &[u8], key: &PrivateKey) -> Result<Vec<u8>> {
    let put = |out: &mut Vec<u8>, field: &[u8]| {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field);
    };
    let mut out = Vec::new();
    put(&mut out, sid);
    out.push(50); // SSH_MSG_USERAUTH_REQUEST
    put(&mut out, b"root");
    put(&mut out, b"ssh-connection");
    put(&mut out, b"publickey");
    out.push(1); // a signature follows
    put(&mut out, key.algorithm().to_string().as_bytes());
    put(&mut out, &blob(key)?);
    Ok(out)
}

/// `host`'s `session-bind@openssh.com` proof for session `sid`, as an agent
/// relays it (Ed25519 signatures are deterministic).
fn session_binding(
    host: &PrivateKey,
    sid: &[u8],
    forwarded: bool,
    name: &str,
) -> Result<SessionBinding> {
    let signature: ssh_key::Signature = signature::Signer::try_sign(host, sid)?;
    Ok(SessionBinding {
        host_key: blob(host)?,
        session_id: sid.to_vec(),
        signature: Vec::<u8>::try_from(signature)?,
        forwarded,
        known_hosts_name: Some(name.into()),
    })
}

/// The signRequest of a login through a forwarded agent, with its bindings.
fn forwarded_login(keys: &Keys, issued: u64, expires: u64) -> Result<Envelope> {
    let bastion = ed25519_key(&counting::<32>(0x40), "")?;
    let db = ed25519_key(&counting::<32>(0x48), "")?;
    let (bastion_sid, db_sid) = (counting::<32>(0x50), counting::<32>(0x58));
    Ok(Envelope::SignRequest(SignRequest {
        request_id: REQUEST_ID.into(),
        key_algorithm: "ssh-ed25519".into(),
        public_key_blob: blob(&keys.ed25519)?,
        source_device_id: INITIATOR_DEVICE_ID.into(),
        source_device_name: "laptop".into(),
        origin: Origin::GenericAgent,
        data_to_sign: userauth_data(&db_sid, &keys.ed25519)?,
        nonce: counting::<32>(0x70).to_vec(),
        issued_at_milliseconds: issued,
        expires_at_milliseconds: expires,
        flags: 0,
        context: SignContext {
            context_quality: ContextQuality::Claimed,
            host: Some("db".into()),
            user: Some("root".into()),
            purpose: Some(Purpose::SshUserauth),
            namespace: None,
            forwarded: true,
            host_key: None,
        },
        bindings: vec![
            session_binding(&bastion, &bastion_sid, true, "bastion")?,
            session_binding(&db, &db_sid, false, "db")?,
        ],
    }))
}

fn certificate(keys: &Keys) -> Result<Vec<u8>> {
    let (valid_after, valid_before) = (1_700_000_000, 1_700_028_800);
    let mut builder = ssh_key::certificate::Builder::new(
        counting::<32>(0x50).to_vec(),
        keys.session.public_key().key_data().clone(),
        valid_after,
        valid_before,
    )?;
    builder
        .serial(1)?
        .key_id("vmux laptop")?
        .cert_type(ssh_key::certificate::CertType::User)?
        .valid_principal("alice")?;
    for extension in [
        "permit-X11-forwarding",
        "permit-agent-forwarding",
        "permit-port-forwarding",
        "permit-pty",
        "permit-user-rc",
    ] {
        builder.extension(extension, "")?;
    }
    Ok(builder.sign(&keys.ca)?.to_bytes()?)
}

fn envelopes(keys: &Keys, h: &[u8; 32]) -> Result<EnvelopesFile> {
    let record = |key: &PrivateKey, kind: ProviderKind| -> Result<PublicKeyRecord> {
        Ok(PublicKeyRecord {
            algorithm: key.algorithm().to_string(),
            public_key_blob: blob(key)?,
            comment: key.comment().to_string(),
            provider_kind: kind,
            display_name: None,
        })
    };
    let mut named = record(&keys.ed25519, ProviderKind::Software)?;
    named.display_name = Some("Work".into());
    let data = sshsig_data();
    let signature = sign_blob(&keys.ed25519, &data, RsaHash::Sha512)?;
    let (issued, expires) = (1_700_000_000_000, 1_700_000_060_000);

    let list: Vec<(&'static str, Envelope)> = vec![
        (
            "initiator's hello, first contact (vmux pair)",
            hello(INITIATOR_DEVICE_ID, "laptop", Role::Agent, true),
        ),
        (
            "signer's hello",
            hello(SIGNER_DEVICE_ID, "phone", Role::Signer, false),
        ),
        (
            "signer's commitment (pairing.json, first vector)",
            Envelope::PairCommit(PairCommit {
                commitment: pairing::commitment(h, &counting::<32>(0xa0)).to_vec(),
            }),
        ),
        (
            "initiator's pairing nonce",
            Envelope::PairNonce(PairNonce {
                nonce: counting::<32>(0x80).to_vec(),
            }),
        ),
        (
            "signer's pairing nonce, revealed",
            Envelope::PairReveal(PairReveal {
                nonce: counting::<32>(0xa0).to_vec(),
            }),
        ),
        (
            "the signer's person accepted",
            Envelope::PairResult(PairResult { accepted: true }),
        ),
        ("an empty body", Envelope::KeyListRequest(KeyListRequest {})),
        (
            "three keys and the CA; keys of signatures.json",
            Envelope::KeyList(KeyList {
                keys: vec![
                    record(&keys.ecdsa, ProviderKind::SecureEnclave)?,
                    named,
                    record(&keys.rsa, ProviderKind::HardwareToken)?,
                ],
                ca_public_key: Some(blob(&keys.ca)?),
            }),
        ),
        (
            "sign the SSHSIG data of signatures.json with the Ed25519 key",
            Envelope::SignRequest(SignRequest {
                request_id: REQUEST_ID.into(),
                key_algorithm: "ssh-ed25519".into(),
                public_key_blob: blob(&keys.ed25519)?,
                source_device_id: INITIATOR_DEVICE_ID.into(),
                source_device_name: "laptop".into(),
                origin: Origin::GenericAgent,
                data_to_sign: data,
                nonce: counting::<32>(0x70).to_vec(),
                issued_at_milliseconds: issued,
                expires_at_milliseconds: expires,
                flags: 0,
                context: SignContext {
                    context_quality: ContextQuality::Claimed,
                    host: None,
                    user: None,
                    purpose: Some(Purpose::Sshsig),
                    namespace: Some("git".into()),
                    forwarded: false,
                    host_key: None,
                },
                bindings: Vec::new(),
            }),
        ),
        (
            "a login to \"db\" through an agent forwarded to \"bastion\": the two session bindings the agent verified, oldest first; each host signature verifies over its sessionID with its hostKey, and the login's session is the one bound last",
            forwarded_login(keys, issued, expires)?,
        ),
        (
            "approved: the Ed25519 signature blob of signatures.json",
            Envelope::SignResponse(SignResponse {
                request_id: REQUEST_ID.into(),
                approved: true,
                signature: Some(signature),
                error_code: None,
                error_message: None,
            }),
        ),
        (
            "denied by the person",
            Envelope::SignResponse(SignResponse {
                request_id: REQUEST_ID.into(),
                approved: false,
                signature: None,
                error_code: Some(ErrorCode::UserDenied),
                error_message: Some("denied on the signer".into()),
            }),
        ),
        (
            "certify an ephemeral P-256 key for 8 hours",
            Envelope::CertificateRequest(CertificateRequest {
                request_id: CERT_REQUEST_ID.into(),
                public_key_blob: blob(&keys.session)?,
                source_device_id: INITIATOR_DEVICE_ID.into(),
                source_device_name: "laptop".into(),
                requested_validity_seconds: 28_800,
                nonce: counting::<32>(0x90).to_vec(),
                issued_at_milliseconds: issued,
                expires_at_milliseconds: expires,
            }),
        ),
        (
            "issued: an OpenSSH user certificate signed by the CA key",
            Envelope::CertificateResponse(CertificateResponse {
                request_id: CERT_REQUEST_ID.into(),
                approved: true,
                certificate_blob: Some(certificate(keys)?),
                ca_public_key: Some(blob(&keys.ca)?),
                valid_after: Some(1_700_000_000),
                valid_before: Some(1_700_028_800),
                error_code: None,
                error_message: None,
            }),
        ),
        (
            "refused: no CA on this signer",
            Envelope::CertificateResponse(CertificateResponse {
                request_id: CERT_REQUEST_ID.into(),
                approved: false,
                certificate_blob: None,
                ca_public_key: None,
                valid_after: None,
                valid_before: None,
                error_code: Some(ErrorCode::PolicyDenied),
                error_message: Some("this signer has no CA; run `vmux ca init` on it".into()),
            }),
        ),
        (
            "where to POST a wake-up",
            Envelope::DeviceTokenUpdate(DeviceTokenUpdate {
                endpoint: "https://push.example.net/wake/abc123".into(),
            }),
        ),
        (
            "withdraw a request whose client left",
            Envelope::Cancel(Cancel {
                request_id: REQUEST_ID.into(),
            }),
        ),
        ("keepalive probe", Envelope::Ping(Ping { seq: 1 })),
        ("keepalive answer", Envelope::Pong(Pong { seq: 1 })),
        (
            "an unpaired initiator, refused before any hello",
            Envelope::Error(ErrorReport {
                code: ErrorCode::PairingInvalid,
                message: "this device is not paired with signer \"phone\"; run `vmux pair` first"
                    .into(),
                request_id: None,
            }),
        ),
        (
            "a request the signer could not decode: ends that request at once",
            Envelope::Error(ErrorReport {
                code: ErrorCode::MalformedRequest,
                message: "dataToSign is 16385 bytes, over the limit of 16384".into(),
                request_id: Some(REQUEST_ID.into()),
            }),
        ),
    ];
    let envelopes = list
        .into_iter()
        .map(|(note, envelope)| {
            let cbor = envelope.encode()?;
            Ok(EnvelopeVector {
                kind: envelope.type_name(),
                note,
                json: meaning(&cbor)?,
                cbor: hex(&cbor),
            })
        })
        .collect::<Result<_>>()?;
    Ok(EnvelopesFile {
        description: "One or more of every envelope type (protocol.md §8), as the project \
            encodes them: `cbor` is the envelope (the plaintext of one transport message), \
            `json` what it means, with CBOR byte strings written h'…'. Decoders must accept \
            these bytes and also any key order (§8.1); encoders that follow the preferred \
            serialization and the field order of §8.2 produce them exactly.",
        envelopes,
    })
}

// ------------------------------------------------------------- signatures

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SignatureVector {
    algorithm: String,
    note: &'static str,
    /// ECDSA: the scalar d; Ed25519: the seed; RSA: an OpenSSH private key.
    private_key: String,
    public_key_blob: String,
    public_key: String,
    flags: u32,
    data_to_sign: String,
    /// ECDSA: r ‖ s, 32 bytes each (CryptoKit's rawRepresentation).
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_signature: Option<String>,
    signature_blob: String,
}

#[derive(Serialize)]
struct SignaturesFile {
    description: &'static str,
    vectors: Vec<SignatureVector>,
}

/// One signature made by the signer's code.
struct Signed<'a> {
    key: &'a PrivateKey,
    /// What the vector calls the private key (see [`SignatureVector`]).
    private_key: String,
    flags: u32,
    data: &'a [u8],
    blob: Vec<u8>,
    raw: Option<&'a [u8]>,
}

fn signature_vector(algorithm: &str, note: &'static str, s: Signed<'_>) -> Result<SignatureVector> {
    Ok(SignatureVector {
        algorithm: algorithm.into(),
        note,
        private_key: s.private_key,
        public_key_blob: hex(&blob(s.key)?),
        public_key: s.key.public_key().to_openssh()?,
        flags: s.flags,
        data_to_sign: hex(s.data),
        raw_signature: s.raw.map(hex),
        signature_blob: hex(&s.blob),
    })
}

/// An Ed25519 or RSA signature through the signer's software path.
fn software<'a>(
    key: &'a PrivateKey,
    private_key: String,
    flags: u32,
    data: &'a [u8],
) -> Result<Signed<'a>> {
    // §9.4: flag 2 picks SHA-256, anything else SHA-512 (never SHA-1).
    let hash = if flags & 2 != 0 {
        RsaHash::Sha256
    } else {
        RsaHash::Sha512
    };
    Ok(Signed {
        key,
        private_key,
        flags,
        data,
        blob: sign_blob(key, data, hash)?,
        raw: None,
    })
}

/// An ECDSA P-256 signature as a phone's key store gives it (r ‖ s), turned
/// into the SSH blob by the encoder the signer uses for such raw signatures.
/// The signer's software path must give the same blob for the same
/// (deterministic, RFC 6979) signature.
fn ecdsa_vector(keys: &Keys, note: &'static str, data: &[u8]) -> Result<SignatureVector> {
    use p256::ecdsa::signature::Signer as _;
    let signing = p256::ecdsa::SigningKey::from_slice(&keys.ecdsa_scalar)?;
    let signature: p256::ecdsa::Signature = signing.sign(data);
    let raw = signature.to_bytes();
    let from_raw = p256_signature_blob(&raw)?;
    if from_raw != sign_blob(&keys.ecdsa, data, RsaHash::Sha512)? {
        return Err("raw r‖s and the software signer disagree".into());
    }
    let signed = Signed {
        key: &keys.ecdsa,
        private_key: hex(&keys.ecdsa_scalar),
        flags: 0,
        data,
        blob: from_raw,
        raw: Some(&raw),
    };
    signature_vector("ecdsa-sha2-nistp256", note, signed)
}

/// The first message `vmux ecdsa N` whose r ‖ s satisfies `wanted`.
fn ecdsa_data_where(keys: &Keys, wanted: impl Fn(&[u8]) -> bool) -> Result<Vec<u8>> {
    use p256::ecdsa::signature::Signer as _;
    let signing = p256::ecdsa::SigningKey::from_slice(&keys.ecdsa_scalar)?;
    (0..100_000)
        .map(|n| format!("vmux ecdsa {n}").into_bytes())
        .find(|data| {
            let signature: p256::ecdsa::Signature = signing.sign(data);
            wanted(&signature.to_bytes())
        })
        .ok_or_else(|| "no such message".into())
}

fn signatures(keys: &Keys) -> Result<SignaturesFile> {
    let data = sshsig_data();
    let top_bit = |b: Option<&u8>| b.is_some_and(|b| b & 0x80 != 0);
    let r_padded = ecdsa_data_where(keys, |rs| top_bit(rs.first()) && !top_bit(rs.get(32)))?;
    let s_short = ecdsa_data_where(keys, |rs| {
        !top_bit(rs.first()) && rs.get(32) == Some(&0) && !top_bit(rs.get(33))
    })?;
    let rsa_private = RSA_KEY.to_owned();
    Ok(SignaturesFile {
        description: "SSH signature blobs (protocol.md §9.5: string algorithm, string \
            signature) as the signer returns them. ECDSA starts from r ‖ s, the 64-byte form \
            phone key stores (CryptoKit's rawRepresentation) return, and encodes each as an \
            mpint: leading zero bytes dropped, one 0x00 added when the top bit is set. \
            `flags` is signRequest.flags, which picks the RSA hash (§9.4). Every signature \
            verifies with `publicKey` over `dataToSign`; ECDSA and Ed25519 here are \
            deterministic (RFC 6979, RFC 8032), so an implementation using the same keys gets \
            the same bytes, while a phone's ECDSA (random k) will not: check those by \
            verifying, and the encoding from r ‖ s byte for byte.",
        vectors: vec![
            ecdsa_vector(keys, "SSHSIG data for `git` (as in envelopes.json)", &data)?,
            ecdsa_vector(
                keys,
                "r has its top bit set: its mpint gets a leading 0x00 (33 bytes)",
                &r_padded,
            )?,
            ecdsa_vector(
                keys,
                "s begins with a zero byte: its mpint drops it (31 bytes)",
                &s_short,
            )?,
            signature_vector(
                "ssh-ed25519",
                "the signature inside is the 64-byte Ed25519 signature",
                software(&keys.ed25519, hex(&keys.ed25519_seed), 0, &data)?,
            )?,
            signature_vector(
                "rsa-sha2-256",
                "flags & 2 (SSH_AGENT_RSA_SHA2_256)",
                software(&keys.rsa, rsa_private.clone(), 2, &data)?,
            )?,
            signature_vector(
                "rsa-sha2-512",
                "flags & 4 (SSH_AGENT_RSA_SHA2_512); also what flags 0 gets, never ssh-rsa",
                software(&keys.rsa, rsa_private, 4, &data)?,
            )?,
        ],
    })
}

// ----------------------------------------------------------- fingerprints

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FingerprintVector {
    kind: &'static str,
    note: &'static str,
    key: String,
    fingerprint: String,
}

#[derive(Serialize)]
struct FingerprintsFile {
    description: &'static str,
    vectors: Vec<FingerprintVector>,
}

fn fingerprints(keys: &Keys, noise: &Noise) -> Result<FingerprintsFile> {
    let link = |note, key: &[u8; 32]| FingerprintVector {
        kind: "link static key",
        note,
        key: hex(key),
        fingerprint: Fingerprint::of(key).to_string(),
    };
    let mut vectors = vec![
        link("the all-zero key, as in protocol.md §5", &[0u8; 32]),
        link("initiator of noise-xx.json", &noise.initiator_static),
        link("signer of noise-xx.json", &noise.signer_static),
    ];
    for (note, key) in [
        ("ecdsa key of signatures.json", &keys.ecdsa),
        ("ed25519 key of signatures.json", &keys.ed25519),
        ("rsa key of signatures.json", &keys.rsa),
    ] {
        let fingerprint = Fingerprint::of(&blob(key)?).to_string();
        // What `ssh-keygen -l` prints for the same key.
        if fingerprint != key.fingerprint(HashAlg::Sha256).to_string() {
            return Err(format!("{note}: not OpenSSH's fingerprint").into());
        }
        vectors.push(FingerprintVector {
            kind: "ssh public key blob",
            note,
            key: hex(&blob(key)?),
            fingerprint,
        });
    }
    Ok(FingerprintsFile {
        description: "Fingerprints (protocol.md §5): \"SHA256:\" and the unpadded standard \
            base64 of SHA-256 over the key bytes: the raw 32-byte X25519 key for link static \
            keys (DNS-SD `fp`, pairing screens), the public key blob for SSH keys (the same as \
            `ssh-keygen -l`).",
        vectors,
    })
}
