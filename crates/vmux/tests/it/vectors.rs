//! `docs/vectors/` says what the project's code computes: every file there
//! is recomputed by the generator (`cargo run -p vmux --example vectors`)
//! and compared, and the envelope and signature vectors are read back by
//! the decoders and an independent SSH implementation.

use vmux_testkit::vectors as generate;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;
use signature::Verifier as _;
use ssh_key::encoding::Decode as _;
use vmux_keys::pkcs11::wire::p256_signature_blob;
use vmux_proto::envelope::Envelope;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/vectors")
}

fn load(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(name)).unwrap()).unwrap()
}

fn unhex(v: &Value) -> Vec<u8> {
    let hex = v.as_str().unwrap_or_else(|| panic!("not hex: {v}"));
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn every_file_in_docs_vectors_is_what_the_code_computes() {
    let generated = generate::files().unwrap();
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != "README.md")
        .collect();
    let made: BTreeSet<String> = generated.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(
        on_disk, made,
        "docs/vectors/ holds other files than the generator makes"
    );
    for (name, content) in generated {
        let disk = std::fs::read_to_string(dir().join(name)).unwrap();
        assert!(
            disk == content,
            "docs/vectors/{name} is not what the code computes: run \
             `cargo run -p vmux --example vectors` and review the diff"
        );
    }
}

/// A sign request that carries session bindings is one the signer
/// verifies: its reading names the last bound host and the forwarded hops.
#[test]
fn the_bound_sign_request_vector_verifies_on_the_signer() {
    let file = load("envelopes.json");
    let mut bound = 0;
    for v in file["envelopes"].as_array().unwrap() {
        let Envelope::SignRequest(r) = Envelope::decode(&unhex(&v["cbor"])).unwrap() else {
            continue;
        };
        if r.bindings.is_empty() {
            continue;
        }
        bound += 1;
        let reading = vmux_signer::reading::read(&r).unwrap();
        assert!(reading.verified(), "{reading:?}");
        assert_eq!(reading.through.len(), r.bindings.len() - 1);
        assert_eq!(reading.forwarded, vmux_signer::reading::Forwarded::Bound);
    }
    assert_eq!(bound, 1);
}

#[test]
fn every_envelope_vector_decodes_to_its_meaning_and_encodes_back() {
    let file = load("envelopes.json");
    let vectors = file["envelopes"].as_array().unwrap();
    for v in vectors {
        let cbor = unhex(&v["cbor"]);
        let envelope = Envelope::decode(&cbor).unwrap();
        assert_eq!(envelope.type_name(), v["type"], "{v}");
        assert_eq!(envelope.encode().unwrap(), cbor, "{}", v["type"]);
        assert_eq!(
            generate::meaning(&cbor).unwrap(),
            v["json"],
            "{}",
            v["type"]
        );
    }

    // Every envelope type the spec documents has a vector.
    let spec = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/protocol.md"
    ));
    let documented: BTreeSet<&str> = spec
        .lines()
        .filter_map(|l| l.strip_prefix("#### `")?.strip_suffix('`'))
        .filter(|name| name.starts_with(|c: char| c.is_ascii_lowercase()))
        .collect();
    let covered: BTreeSet<&str> = vectors
        .iter()
        .map(|v| v["type"].as_str().unwrap())
        .collect();
    assert_eq!(documented, covered, "envelope types of protocol.md §8.2");
}

/// `value` with the entries of every map, at every depth, in reverse order.
fn reversed(value: ciborium::Value) -> ciborium::Value {
    use ciborium::Value;
    match value {
        Value::Map(entries) => Value::Map(
            entries
                .into_iter()
                .rev()
                .map(|(k, v)| (k, reversed(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(reversed).collect()),
        other => other,
    }
}

#[test]
fn envelopes_decode_with_their_keys_in_any_order() {
    // protocol.md §8.1: Swift and Kotlin dictionaries reorder keys.
    let file = load("envelopes.json");
    for v in file["envelopes"].as_array().unwrap() {
        let cbor = unhex(&v["cbor"]);
        let value: ciborium::Value = ciborium::from_reader(cbor.as_slice()).unwrap();
        let mut shuffled = Vec::new();
        ciborium::into_writer(&reversed(value), &mut shuffled).unwrap();
        assert_ne!(shuffled, cbor, "{}: nothing reordered", v["type"]);
        assert_eq!(
            Envelope::decode(&shuffled).unwrap(),
            Envelope::decode(&cbor).unwrap(),
            "{}",
            v["type"]
        );
    }
}

#[test]
fn every_signature_vector_verifies_with_ssh_key() {
    let file = load("signatures.json");
    for v in file["vectors"].as_array().unwrap() {
        let key = ssh_key::PublicKey::from_openssh(v["publicKey"].as_str().unwrap()).unwrap();
        assert_eq!(key.to_bytes().unwrap(), unhex(&v["publicKeyBlob"]));
        let blob = unhex(&v["signatureBlob"]);
        let signature = ssh_key::Signature::decode(&mut blob.as_slice()).unwrap();
        assert_eq!(signature.algorithm().as_str(), v["algorithm"], "{v}");
        key.key_data()
            .verify(&unhex(&v["dataToSign"]), &signature)
            .unwrap_or_else(|e| panic!("{}: {e}", v["note"]));
        if let Some(raw) = v.get("rawSignature") {
            assert_eq!(p256_signature_blob(&unhex(raw)).unwrap(), blob, "{v}");
        }
    }
}

#[test]
fn every_ssh_fingerprint_vector_is_openssh_s() {
    let file = load("fingerprints.json");
    for v in file["vectors"].as_array().unwrap() {
        if v["kind"] == "ssh public key blob" {
            let key = ssh_key::PublicKey::from_bytes(&unhex(&v["key"])).unwrap();
            assert_eq!(
                key.fingerprint(ssh_key::HashAlg::Sha256).to_string(),
                v["fingerprint"]
            );
        }
    }
}
