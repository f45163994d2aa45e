//! Tests of the link envelope codec (`vmux_proto::envelope`).
//!
//! # Golden vectors
//!
//! Each `const` below is the exact encoding of one fixture value. They were
//! produced by encoding the fixture with this codec, then decoded and
//! annotated by a separate ~80-line CBOR reader written from RFC 8949 (not
//! ciborium), whose output is pasted next to the bytes: the annotated hex
//! (cbor.me style) and the diagnostic notation (RFC 8949 §8). The
//! annotations were checked by hand: every integer is in its shortest form,
//! every map has a definite length, byte fields are major type 2, and the
//! body keys come in the order of the struct fields (which serde follows,
//! so these vectors pin the field order). A Swift or Kotlin implementation
//! should produce these bytes for these values and decode them back.
//!
//! Encoders in other languages need not match byte for byte (a different
//! key order or an indefinite length is valid CBOR and decodes the same);
//! decoding every vector to the fixture value is what matters.

// Tests assert by panicking; clippy.toml allows it in #[test] functions,
// this covers the helpers too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use ciborium::Value;
use vmux_proto::Error;
use vmux_proto::envelope::limits::{
    MAX_BINDINGS, MAX_BLOB_LEN, MAX_DATA_TO_SIGN_LEN, MAX_DEVICE_NAME_LEN, MAX_KEYS, MAX_NONCE_LEN,
    MAX_TEXT_LEN, MIN_NONCE_LEN, PAIRING_VALUE_LEN,
};
use vmux_proto::envelope::*;

// ---- fixtures: one value per envelope type ----

const DEVICE_ID: &str = "6f1c9a52-3c1e-4d8b-9a57-0e2f4b6c8d10";
const REQUEST_ID: &str = "2b7e1516-28ae-4d2a-8f3c-9cf4f3c6a1b0";

/// An `ssh-ed25519` public key blob (RFC 8709): string "ssh-ed25519", string key(32).
fn ed25519_blob(first: u8) -> Vec<u8> {
    let mut blob = vec![0, 0, 0, 11];
    blob.extend_from_slice(b"ssh-ed25519");
    blob.extend_from_slice(&[0, 0, 0, 32]);
    blob.extend((0..32).map(|i| first.wrapping_add(i)));
    blob
}

/// An `ecdsa-sha2-nistp256` public key blob (RFC 5656 §3.1) with a made-up point.
fn p256_blob() -> Vec<u8> {
    let mut blob = vec![0, 0, 0, 19];
    blob.extend_from_slice(b"ecdsa-sha2-nistp256");
    blob.extend_from_slice(&[0, 0, 0, 8]);
    blob.extend_from_slice(b"nistp256");
    blob.extend_from_slice(&[0, 0, 0, 65, 4]);
    blob.extend((0..64).map(|i| 0x40 + i));
    blob
}

/// An SSH signature blob (RFC 8709 §6): string "ssh-ed25519", string sig(64).
fn ed25519_signature() -> Vec<u8> {
    let mut blob = vec![0, 0, 0, 11];
    blob.extend_from_slice(b"ssh-ed25519");
    blob.extend_from_slice(&[0, 0, 0, 64]);
    blob.extend([0x5a; 64]);
    blob
}

fn hello() -> Envelope {
    Envelope::Hello(Hello {
        protocol_major: 1,
        protocol_minor: 0,
        device_id: DEVICE_ID.into(),
        device_name: "laptop".into(),
        role: Role::Agent,
        pairing: true,
    })
}

fn pair_commit() -> Envelope {
    Envelope::PairCommit(PairCommit {
        commitment: vec![0x11; 32],
    })
}

fn pair_nonce() -> Envelope {
    Envelope::PairNonce(PairNonce {
        nonce: vec![0x22; 32],
    })
}

fn pair_reveal() -> Envelope {
    Envelope::PairReveal(PairReveal {
        nonce: vec![0x33; 32],
    })
}

fn pair_result() -> Envelope {
    Envelope::PairResult(PairResult { accepted: true })
}

fn key_list_request() -> Envelope {
    Envelope::KeyListRequest(KeyListRequest {})
}

fn key_list() -> Envelope {
    Envelope::KeyList(KeyList {
        keys: vec![PublicKeyRecord {
            algorithm: "ssh-ed25519".into(),
            public_key_blob: ed25519_blob(0x01),
            comment: "me@laptop".into(),
            provider_kind: ProviderKind::Software,
            display_name: Some("Work".into()),
        }],
        ca_public_key: Some(ed25519_blob(0xa0)),
    })
}

fn sign_request() -> Envelope {
    Envelope::SignRequest(SignRequest {
        request_id: REQUEST_ID.into(),
        key_algorithm: "ssh-ed25519".into(),
        public_key_blob: ed25519_blob(0x01),
        source_device_id: DEVICE_ID.into(),
        source_device_name: "laptop".into(),
        origin: Origin::GenericAgent,
        data_to_sign: vec![0xde, 0xad, 0xbe, 0xef],
        nonce: (0..16).collect(),
        issued_at_milliseconds: 1_700_000_000_000,
        expires_at_milliseconds: 1_700_000_060_000,
        flags: 0,
        context: SignContext {
            context_quality: ContextQuality::Claimed,
            host: Some("example.com".into()),
            user: Some("git".into()),
            purpose: Some(Purpose::SshUserauth),
            namespace: None,
            forwarded: false,
            host_key: None,
        },
        bindings: Vec::new(),
    })
}

fn sign_response() -> Envelope {
    Envelope::SignResponse(SignResponse {
        request_id: REQUEST_ID.into(),
        approved: true,
        signature: Some(ed25519_signature()),
        error_code: None,
        error_message: None,
    })
}

fn sign_response_denied() -> Envelope {
    Envelope::SignResponse(SignResponse {
        request_id: REQUEST_ID.into(),
        approved: false,
        signature: None,
        error_code: Some(ErrorCode::UserDenied),
        error_message: Some("denied on the signer".into()),
    })
}

fn certificate_request() -> Envelope {
    Envelope::CertificateRequest(CertificateRequest {
        request_id: REQUEST_ID.into(),
        public_key_blob: p256_blob(),
        source_device_id: DEVICE_ID.into(),
        source_device_name: "laptop".into(),
        requested_validity_seconds: 28_800,
        nonce: (0..16).collect(),
        issued_at_milliseconds: 1_700_000_000_000,
        expires_at_milliseconds: 1_700_000_060_000,
    })
}

fn certificate_response() -> Envelope {
    Envelope::CertificateResponse(CertificateResponse {
        request_id: REQUEST_ID.into(),
        approved: true,
        // Not a real certificate: the codec carries blobs opaquely.
        certificate_blob: Some(b"cert".to_vec()),
        ca_public_key: Some(ed25519_blob(0xa0)),
        valid_after: Some(1_700_000_000),
        valid_before: Some(1_700_028_800),
        error_code: None,
        error_message: None,
    })
}

fn device_token_update() -> Envelope {
    Envelope::DeviceTokenUpdate(DeviceTokenUpdate {
        endpoint: "https://ntfy.example/vmux-7f3a".into(),
    })
}

fn cancel() -> Envelope {
    Envelope::Cancel(Cancel {
        request_id: REQUEST_ID.into(),
    })
}

fn ping() -> Envelope {
    Envelope::Ping(Ping { seq: 1 })
}

fn pong() -> Envelope {
    Envelope::Pong(Pong { seq: 1 })
}

fn error() -> Envelope {
    Envelope::Error(ErrorReport {
        code: ErrorCode::PairingInvalid,
        message: "pairing rejected on the signer".into(),
        request_id: None,
    })
}

fn error_with_request() -> Envelope {
    Envelope::Error(ErrorReport {
        code: ErrorCode::MalformedRequest,
        message: "unknown envelope type".into(),
        request_id: Some(REQUEST_ID.into()),
    })
}

// ---- golden vectors ----

// hello (136 bytes), diagnostic notation (RFC 8949 §8):
//
// {
//   "v": 1,
//   "type": "hello",
//   "body": {
//     "protocolMajor": 1,
//     "protocolMinor": 0,
//     "deviceID": "6f1c9a52-3c1e-4d8b-9a57-0e2f4b6c8d10",
//     "deviceName": "laptop",
//     "role": "agent",
//     "pairing": true
//   }
// }
const HELLO: &str = concat!(
    "a3",                                           // map(3)
    "61 76 01",                                     //   "v": 1
    "64 74 79 70 65 65 68 65 6c 6c 6f",             //   "type": text(5) "hello"
    "64 62 6f 64 79",                               //   "body":
    "a6",                                           //     map(6)
    "6d 70 72 6f 74 6f 63 6f 6c 4d 61 6a 6f 72 01", //       "protocolMajor": 1
    "6d 70 72 6f 74 6f 63 6f 6c 4d 69 6e 6f 72 00", //       "protocolMinor": 0
    "68 64 65 76 69 63 65 49 44",                   //       "deviceID":
    "78 24", //         text(36) "6f1c9a52-3c1e-4d8b-9a57-0e2f4b6c8d10"
    "36 66 31 63 39 61 35 32 2d 33 63 31 65 2d 34 64",
    "38 62 2d 39 61 35 37 2d 30 65 32 66 34 62 36 63",
    "38 64 31 30",
    "6a 64 65 76 69 63 65 4e 61 6d 65", //       "deviceName":
    "66 6c 61 70 74 6f 70",             //         text(6) "laptop"
    "64 72 6f 6c 65 65 61 67 65 6e 74", //       "role": text(5) "agent"
    "67 70 61 69 72 69 6e 67 f5",       //       "pairing": true
);

// pair_commit (71 bytes), diagnostic notation (RFC 8949 §8):
//
// {
//   "v": 1,
//   "type": "pairCommit",
//   "body": {
//     "commitment": h'1111111111111111111111111111111111111111111111111111111111111111'
//   }
// }
const PAIR_COMMIT: &str = concat!(
    "a3",                                              // map(3)
    "61 76 01",                                        //   "v": 1
    "64 74 79 70 65 6a 70 61 69 72 43 6f 6d 6d 69 74", //   "type": text(10) "pairCommit"
    "64 62 6f 64 79",                                  //   "body":
    "a1",                                              //     map(1)
    "6a 63 6f 6d 6d 69 74 6d 65 6e 74",                //       "commitment":
    "58 20",                                           //         bytes(32)
    "11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11",
    "11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11",
);

// pair_nonce (65 bytes), diagnostic notation (RFC 8949 §8):
//
// {
//   "v": 1,
//   "type": "pairNonce",
//   "body": {
//     "nonce": h'2222222222222222222222222222222222222222222222222222222222222222'
//   }
// }
const PAIR_NONCE: &str = concat!(
    "a3",                                           // map(3)
    "61 76 01",                                     //   "v": 1
    "64 74 79 70 65 69 70 61 69 72 4e 6f 6e 63 65", //   "type": text(9) "pairNonce"
    "64 62 6f 64 79",                               //   "body":
    "a1",                                           //     map(1)
    "65 6e 6f 6e 63 65",                            //       "nonce":
    "58 20",                                        //         bytes(32)
    "22 22 22 22 22 22 22 22 22 22 22 22 22 22 22 22",
    "22 22 22 22 22 22 22 22 22 22 22 22 22 22 22 22",
);

// pair_reveal (66 bytes), diagnostic notation (RFC 8949 §8):
//
// {
//   "v": 1,
//   "type": "pairReveal",
//   "body": {
//     "nonce": h'3333333333333333333333333333333333333333333333333333333333333333'
//   }
// }
const PAIR_REVEAL: &str = concat!(
    "a3",                                              // map(3)
    "61 76 01",                                        //   "v": 1
    "64 74 79 70 65 6a 70 61 69 72 52 65 76 65 61 6c", //   "type": text(10) "pairReveal"
    "64 62 6f 64 79",                                  //   "body":
    "a1",                                              //     map(1)
    "65 6e 6f 6e 63 65",                               //       "nonce":
    "58 20",                                           //         bytes(32)
    "33 33 33 33 33 33 33 33 33 33 33 33 33 33 33 33",
    "33 33 33 33 33 33 33 33 33 33 33 33 33 33 33 33",
);

// pair_result (36 bytes), diagnostic notation (RFC 8949 §8):
//
// {
//   "v": 1,
//   "type": "pairResult",
//   "body": {
//     "accepted": true
//   }
// }
const PAIR_RESULT: &str = concat!(
    "a3",                                              // map(3)
    "61 76 01",                                        //   "v": 1
    "64 74 79 70 65 6a 70 61 69 72 52 65 73 75 6c 74", //   "type": text(10) "pairResult"
    "64 62 6f 64 79",                                  //   "body":
    "a1",                                              //     map(1)
    "68 61 63 63 65 70 74 65 64 f5",                   //       "accepted": true
);

// key_list_request (30 bytes), diagnostic notation (RFC 8949 §8):
//
// {
//   "v": 1,
//   "type": "keyListRequest",
//   "body": {}
// }
const KEY_LIST_REQUEST: &str = concat!(
    "a3",             // map(3)
    "61 76 01",       //   "v": 1
    "64 74 79 70 65", //   "type":
    "6e",             //     text(14) "keyListRequest"
    "6b 65 79 4c 69 73 74 52 65 71 75 65 73 74",
    "64 62 6f 64 79", //   "body":
    "a0",             //     map(0)
);

// key_list (241 bytes), diagnostic notation (RFC 8949 §8):
//
// {
//   "v": 1,
//   "type": "keyList",
//   "body": {
//     "keys": [{
//       "algorithm": "ssh-ed25519",
//       "publicKeyBlob": h'0000000b7373682d65643235353139000000200102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20',
//       "comment": "me@laptop",
//       "providerKind": "software",
//       "displayName": "Work"
//     }],
//     "caPublicKey": h'0000000b7373682d6564323535313900000020a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf'
//   }
// }
const KEY_LIST: &str = concat!(
    "a3",                                        // map(3)
    "61 76 01",                                  //   "v": 1
    "64 74 79 70 65 67 6b 65 79 4c 69 73 74",    //   "type": text(7) "keyList"
    "64 62 6f 64 79",                            //   "body":
    "a2",                                        //     map(2)
    "64 6b 65 79 73",                            //       "keys":
    "81",                                        //         array(1)
    "a5",                                        //           map(5)
    "69 61 6c 67 6f 72 69 74 68 6d",             //             "algorithm":
    "6b 73 73 68 2d 65 64 32 35 35 31 39",       //               text(11) "ssh-ed25519"
    "6d 70 75 62 6c 69 63 4b 65 79 42 6c 6f 62", //             "publicKeyBlob":
    "58 33",                                     //               bytes(51)
    "00 00 00 0b 73 73 68 2d 65 64 32 35 35 31 39 00",
    "00 00 20 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d",
    "0e 0f 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d",
    "1e 1f 20",
    "67 63 6f 6d 6d 65 6e 74",                //             "comment":
    "69 6d 65 40 6c 61 70 74 6f 70",          //               text(9) "me@laptop"
    "6c 70 72 6f 76 69 64 65 72 4b 69 6e 64", //             "providerKind":
    "68 73 6f 66 74 77 61 72 65",             //               text(8) "software"
    "6b 64 69 73 70 6c 61 79 4e 61 6d 65",    //             "displayName":
    "64 57 6f 72 6b",                         //               text(4) "Work"
    "6b 63 61 50 75 62 6c 69 63 4b 65 79",    //       "caPublicKey":
    "58 33",                                  //         bytes(51)
    "00 00 00 0b 73 73 68 2d 65 64 32 35 35 31 39 00",
    "00 00 20 a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 aa ab ac",
    "ad ae af b0 b1 b2 b3 b4 b5 b6 b7 b8 b9 ba bb bc",
    "bd be bf",
);

// sign_request (460 bytes), diagnostic notation (RFC 8949 §8):
//
// {
//   "v": 1,
//   "type": "signRequest",
//   "body": {
//     "requestID": "2b7e1516-28ae-4d2a-8f3c-9cf4f3c6a1b0",
//     "keyAlgorithm": "ssh-ed25519",
//     "publicKeyBlob": h'0000000b7373682d65643235353139000000200102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20',
//     "sourceDeviceID": "6f1c9a52-3c1e-4d8b-9a57-0e2f4b6c8d10",
//     "sourceDeviceName": "laptop",
//     "origin": "genericAgent",
//     "dataToSign": h'deadbeef',
//     "nonce": h'000102030405060708090a0b0c0d0e0f',
//     "issuedAtMilliseconds": 1700000000000,
//     "expiresAtMilliseconds": 1700000060000,
//     "flags": 0,
//     "context": {
//       "contextQuality": "claimed",
//       "host": "example.com",
//       "user": "git",
//       "purpose": "sshUserauth",
//       "forwarded": false
//     }
//   }
// }
const SIGN_REQUEST: &str = concat!(
    "a3",                                  // map(3)
    "61 76 01",                            //   "v": 1
    "64 74 79 70 65",                      //   "type":
    "6b 73 69 67 6e 52 65 71 75 65 73 74", //     text(11) "signRequest"
    "64 62 6f 64 79",                      //   "body":
    "ac",                                  //     map(12)
    "69 72 65 71 75 65 73 74 49 44",       //       "requestID":
    "78 24", //         text(36) "2b7e1516-28ae-4d2a-8f3c-9cf4f3c6a1b0"
    "32 62 37 65 31 35 31 36 2d 32 38 61 65 2d 34 64",
    "32 61 2d 38 66 33 63 2d 39 63 66 34 66 33 63 36",
    "61 31 62 30",
    "6c 6b 65 79 41 6c 67 6f 72 69 74 68 6d", //       "keyAlgorithm":
    "6b 73 73 68 2d 65 64 32 35 35 31 39",    //         text(11) "ssh-ed25519"
    "6d 70 75 62 6c 69 63 4b 65 79 42 6c 6f 62", //       "publicKeyBlob":
    "58 33",                                  //         bytes(51)
    "00 00 00 0b 73 73 68 2d 65 64 32 35 35 31 39 00",
    "00 00 20 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d",
    "0e 0f 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d",
    "1e 1f 20",
    "6e 73 6f 75 72 63 65 44 65 76 69 63 65 49 44", //       "sourceDeviceID":
    "78 24", //         text(36) "6f1c9a52-3c1e-4d8b-9a57-0e2f4b6c8d10"
    "36 66 31 63 39 61 35 32 2d 33 63 31 65 2d 34 64",
    "38 62 2d 39 61 35 37 2d 30 65 32 66 34 62 36 63",
    "38 64 31 30",
    "70", //       "sourceDeviceName": (key, text(16))
    "73 6f 75 72 63 65 44 65 76 69 63 65 4e 61 6d 65",
    "66 6c 61 70 74 6f 70",                   //         text(6) "laptop"
    "66 6f 72 69 67 69 6e",                   //       "origin":
    "6c 67 65 6e 65 72 69 63 41 67 65 6e 74", //         text(12) "genericAgent"
    "6a 64 61 74 61 54 6f 53 69 67 6e 44 de ad be ef", //       "dataToSign": bytes(4) h'deadbeef'
    "65 6e 6f 6e 63 65",                      //       "nonce":
    "50",                                     //         bytes(16)
    "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f",
    "74", //       "issuedAtMilliseconds": (key, text(20))
    "69 73 73 75 65 64 41 74 4d 69 6c 6c 69 73 65 63",
    "6f 6e 64 73",
    "1b 00 00 01 8b cf e5 68 00", //         1700000000000
    "75",                         //       "expiresAtMilliseconds": (key, text(21))
    "65 78 70 69 72 65 73 41 74 4d 69 6c 6c 69 73 65",
    "63 6f 6e 64 73",
    "1b 00 00 01 8b cf e6 52 60", //         1700000060000
    "65 66 6c 61 67 73 00",       //       "flags": 0
    "67 63 6f 6e 74 65 78 74",    //       "context":
    "a5",                         //         map(5)
    "6e 63 6f 6e 74 65 78 74 51 75 61 6c 69 74 79", //           "contextQuality":
    "67 63 6c 61 69 6d 65 64",    //             text(7) "claimed"
    "64 68 6f 73 74",             //           "host":
    "6b 65 78 61 6d 70 6c 65 2e 63 6f 6d", //             text(11) "example.com"
    "64 75 73 65 72 63 67 69 74", //           "user": text(3) "git"
    "67 70 75 72 70 6f 73 65",    //           "purpose":
    "6b 73 73 68 55 73 65 72 61 75 74 68", //             text(11) "sshUserauth"
    "69 66 6f 72 77 61 72 64 65 64 f4", //           "forwarded": false
);

// sign_response (181 bytes), diagnostic notation (RFC 8949 §8):
//
// {
//   "v": 1,
//   "type": "signResponse",
//   "body": {
//     "requestID": "2b7e1516-28ae-4d2a-8f3c-9cf4f3c6a1b0",
//     "approved": true,
//     "signature": h'0000000b7373682d65643235353139000000405a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a'
//   }
// }
const SIGN_RESPONSE: &str = concat!(
    "a3",                                     // map(3)
    "61 76 01",                               //   "v": 1
    "64 74 79 70 65",                         //   "type":
    "6c 73 69 67 6e 52 65 73 70 6f 6e 73 65", //     text(12) "signResponse"
    "64 62 6f 64 79",                         //   "body":
    "a3",                                     //     map(3)
    "69 72 65 71 75 65 73 74 49 44",          //       "requestID":
    "78 24", //         text(36) "2b7e1516-28ae-4d2a-8f3c-9cf4f3c6a1b0"
    "32 62 37 65 31 35 31 36 2d 32 38 61 65 2d 34 64",
    "32 61 2d 38 66 33 63 2d 39 63 66 34 66 33 63 36",
    "61 31 62 30",
    "68 61 70 70 72 6f 76 65 64 f5", //       "approved": true
    "69 73 69 67 6e 61 74 75 72 65", //       "signature":
    "58 53",                         //         bytes(83)
    "00 00 00 0b 73 73 68 2d 65 64 32 35 35 31 39 00",
    "00 00 40 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a",
    "5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a",
    "5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a",
    "5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a",
    "5a 5a 5a",
);

// sign_response_denied (141 bytes), diagnostic notation (RFC 8949 §8):
//
// {
//   "v": 1,
//   "type": "signResponse",
//   "body": {
//     "requestID": "2b7e1516-28ae-4d2a-8f3c-9cf4f3c6a1b0",
//     "approved": false,
//     "errorCode": "userDenied",
//     "errorMessage": "denied on the signer"
//   }
// }
const SIGN_RESPONSE_DENIED: &str = concat!(
    "a3",                                     // map(3)
    "61 76 01",                               //   "v": 1
    "64 74 79 70 65",                         //   "type":
    "6c 73 69 67 6e 52 65 73 70 6f 6e 73 65", //     text(12) "signResponse"
    "64 62 6f 64 79",                         //   "body":
    "a4",                                     //     map(4)
    "69 72 65 71 75 65 73 74 49 44",          //       "requestID":
    "78 24", //         text(36) "2b7e1516-28ae-4d2a-8f3c-9cf4f3c6a1b0"
    "32 62 37 65 31 35 31 36 2d 32 38 61 65 2d 34 64",
    "32 61 2d 38 66 33 63 2d 39 63 66 34 66 33 63 36",
    "61 31 62 30",
    "68 61 70 70 72 6f 76 65 64 f4",    //       "approved": false
    "69 65 72 72 6f 72 43 6f 64 65",    //       "errorCode":
    "6a 75 73 65 72 44 65 6e 69 65 64", //         text(10) "userDenied"
    "6c 65 72 72 6f 72 4d 65 73 73 61 67 65", //       "errorMessage":
    "74",                               //         text(20) "denied on the signer"
    "64 65 6e 69 65 64 20 6f 6e 20 74 68 65 20 73 69",
    "67 6e 65 72",
);

// certificate_request (392 bytes), diagnostic notation (RFC 8949 §8):
//
// {
//   "v": 1,
//   "type": "certificateRequest",
//   "body": {
//     "requestID": "2b7e1516-28ae-4d2a-8f3c-9cf4f3c6a1b0",
//     "publicKeyBlob": h'0000001365636473612d736861322d6e69737470323536000000086e697374703235360000004104404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f',
//     "sourceDeviceID": "6f1c9a52-3c1e-4d8b-9a57-0e2f4b6c8d10",
//     "sourceDeviceName": "laptop",
//     "requestedValiditySeconds": 28800,
//     "nonce": h'000102030405060708090a0b0c0d0e0f',
//     "issuedAtMilliseconds": 1700000000000,
//     "expiresAtMilliseconds": 1700000060000
//   }
// }
const CERTIFICATE_REQUEST: &str = concat!(
    "a3",             // map(3)
    "61 76 01",       //   "v": 1
    "64 74 79 70 65", //   "type":
    "72",             //     text(18) "certificateRequest"
    "63 65 72 74 69 66 69 63 61 74 65 52 65 71 75 65",
    "73 74",
    "64 62 6f 64 79",                //   "body":
    "a8",                            //     map(8)
    "69 72 65 71 75 65 73 74 49 44", //       "requestID":
    "78 24",                         //         text(36) "2b7e1516-28ae-4d2a-8f3c-9cf4f3c6a1b0"
    "32 62 37 65 31 35 31 36 2d 32 38 61 65 2d 34 64",
    "32 61 2d 38 66 33 63 2d 39 63 66 34 66 33 63 36",
    "61 31 62 30",
    "6d 70 75 62 6c 69 63 4b 65 79 42 6c 6f 62", //       "publicKeyBlob":
    "58 68",                                     //         bytes(104)
    "00 00 00 13 65 63 64 73 61 2d 73 68 61 32 2d 6e",
    "69 73 74 70 32 35 36 00 00 00 08 6e 69 73 74 70",
    "32 35 36 00 00 00 41 04 40 41 42 43 44 45 46 47",
    "48 49 4a 4b 4c 4d 4e 4f 50 51 52 53 54 55 56 57",
    "58 59 5a 5b 5c 5d 5e 5f 60 61 62 63 64 65 66 67",
    "68 69 6a 6b 6c 6d 6e 6f 70 71 72 73 74 75 76 77",
    "78 79 7a 7b 7c 7d 7e 7f",
    "6e 73 6f 75 72 63 65 44 65 76 69 63 65 49 44", //       "sourceDeviceID":
    "78 24", //         text(36) "6f1c9a52-3c1e-4d8b-9a57-0e2f4b6c8d10"
    "36 66 31 63 39 61 35 32 2d 33 63 31 65 2d 34 64",
    "38 62 2d 39 61 35 37 2d 30 65 32 66 34 62 36 63",
    "38 64 31 30",
    "70", //       "sourceDeviceName": (key, text(16))
    "73 6f 75 72 63 65 44 65 76 69 63 65 4e 61 6d 65",
    "66 6c 61 70 74 6f 70", //         text(6) "laptop"
    "78 18",                //       "requestedValiditySeconds": (key, text(24))
    "72 65 71 75 65 73 74 65 64 56 61 6c 69 64 69 74",
    "79 53 65 63 6f 6e 64 73",
    "19 70 80",          //         28800
    "65 6e 6f 6e 63 65", //       "nonce":
    "50",                //         bytes(16)
    "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f",
    "74", //       "issuedAtMilliseconds": (key, text(20))
    "69 73 73 75 65 64 41 74 4d 69 6c 6c 69 73 65 63",
    "6f 6e 64 73",
    "1b 00 00 01 8b cf e5 68 00", //         1700000000000
    "75",                         //       "expiresAtMilliseconds": (key, text(21))
    "65 78 70 69 72 65 73 41 74 4d 69 6c 6c 69 73 65",
    "63 6f 6e 64 73",
    "1b 00 00 01 8b cf e6 52 60", //         1700000060000
);

// certificate_response (212 bytes), diagnostic notation (RFC 8949 §8):
//
// {
//   "v": 1,
//   "type": "certificateResponse",
//   "body": {
//     "requestID": "2b7e1516-28ae-4d2a-8f3c-9cf4f3c6a1b0",
//     "approved": true,
//     "certificateBlob": h'63657274',
//     "caPublicKey": h'0000000b7373682d6564323535313900000020a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf',
//     "validAfter": 1700000000,
//     "validBefore": 1700028800
//   }
// }
const CERTIFICATE_RESPONSE: &str = concat!(
    "a3",             // map(3)
    "61 76 01",       //   "v": 1
    "64 74 79 70 65", //   "type":
    "73",             //     text(19) "certificateResponse"
    "63 65 72 74 69 66 69 63 61 74 65 52 65 73 70 6f",
    "6e 73 65",
    "64 62 6f 64 79",                //   "body":
    "a6",                            //     map(6)
    "69 72 65 71 75 65 73 74 49 44", //       "requestID":
    "78 24",                         //         text(36) "2b7e1516-28ae-4d2a-8f3c-9cf4f3c6a1b0"
    "32 62 37 65 31 35 31 36 2d 32 38 61 65 2d 34 64",
    "32 61 2d 38 66 33 63 2d 39 63 66 34 66 33 63 36",
    "61 31 62 30",
    "68 61 70 70 72 6f 76 65 64 f5", //       "approved": true
    "6f 63 65 72 74 69 66 69 63 61 74 65 42 6c 6f 62", //       "certificateBlob":
    "44 63 65 72 74",                //         bytes(4) h'63657274'
    "6b 63 61 50 75 62 6c 69 63 4b 65 79", //       "caPublicKey":
    "58 33",                         //         bytes(51)
    "00 00 00 0b 73 73 68 2d 65 64 32 35 35 31 39 00",
    "00 00 20 a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 aa ab ac",
    "ad ae af b0 b1 b2 b3 b4 b5 b6 b7 b8 b9 ba bb bc",
    "bd be bf",
    "6a 76 61 6c 69 64 41 66 74 65 72 1a 65 53 f1 00", //       "validAfter": 1700000000
    "6b 76 61 6c 69 64 42 65 66 6f 72 65",             //       "validBefore":
    "1a 65 54 61 80",                                  //         1700028800
);

// device_token_update (74 bytes), diagnostic notation (RFC 8949 §8):
//
// {
//   "v": 1,
//   "type": "deviceTokenUpdate",
//   "body": {
//     "endpoint": "https://ntfy.example/vmux-7f3a"
//   }
// }
const DEVICE_TOKEN_UPDATE: &str = concat!(
    "a3",             // map(3)
    "61 76 01",       //   "v": 1
    "64 74 79 70 65", //   "type":
    "71",             //     text(17) "deviceTokenUpdate"
    "64 65 76 69 63 65 54 6f 6b 65 6e 55 70 64 61 74",
    "65",
    "64 62 6f 64 79",             //   "body":
    "a1",                         //     map(1)
    "68 65 6e 64 70 6f 69 6e 74", //       "endpoint":
    "78 1e",                      //         text(30) "https://ntfy.example/vmux-7f3a"
    "68 74 74 70 73 3a 2f 2f 6e 74 66 79 2e 65 78 61",
    "6d 70 6c 65 2f 76 6d 75 78 2d 37 66 33 61",
);

// cancel (70 bytes), diagnostic notation (RFC 8949 §8):
//
// {
//   "v": 1,
//   "type": "cancel",
//   "body": {
//     "requestID": "2b7e1516-28ae-4d2a-8f3c-9cf4f3c6a1b0"
//   }
// }
const CANCEL: &str = concat!(
    "a3",                            // map(3)
    "61 76 01",                      //   "v": 1
    "64 74 79 70 65",                //   "type":
    "66 63 61 6e 63 65 6c",          //     "cancel"
    "64 62 6f 64 79",                //   "body":
    "a1",                            //     map(1)
    "69 72 65 71 75 65 73 74 49 44", //       "requestID":
    "78 24",                         //         text(36) "2b7e1516-28ae-4d2a-8f3c-9cf4f3c6a1b0"
    "32 62 37 65 31 35 31 36 2d 32 38 61 65 2d 34 64",
    "32 61 2d 38 66 33 63 2d 39 63 66 34 66 33 63 36",
    "61 31 62 30",
);

// ping (25 bytes), diagnostic notation (RFC 8949 §8):
//
// {
//   "v": 1,
//   "type": "ping",
//   "body": {
//     "seq": 1
//   }
// }
const PING: &str = concat!(
    "a3",                            // map(3)
    "61 76 01",                      //   "v": 1
    "64 74 79 70 65 64 70 69 6e 67", //   "type": text(4) "ping"
    "64 62 6f 64 79",                //   "body":
    "a1",                            //     map(1)
    "63 73 65 71 01",                //       "seq": 1
);

// pong (25 bytes), diagnostic notation (RFC 8949 §8):
//
// {
//   "v": 1,
//   "type": "pong",
//   "body": {
//     "seq": 1
//   }
// }
const PONG: &str = concat!(
    "a3",                            // map(3)
    "61 76 01",                      //   "v": 1
    "64 74 79 70 65 64 70 6f 6e 67", //   "type": text(4) "pong"
    "64 62 6f 64 79",                //   "body":
    "a1",                            //     map(1)
    "63 73 65 71 01",                //       "seq": 1
);

// error (81 bytes), diagnostic notation (RFC 8949 §8):
//
// {
//   "v": 1,
//   "type": "error",
//   "body": {
//     "code": "pairingInvalid",
//     "message": "pairing rejected on the signer"
//   }
// }
const ERROR: &str = concat!(
    "a3",                               // map(3)
    "61 76 01",                         //   "v": 1
    "64 74 79 70 65 65 65 72 72 6f 72", //   "type": text(5) "error"
    "64 62 6f 64 79",                   //   "body":
    "a2",                               //     map(2)
    "64 63 6f 64 65",                   //       "code":
    "6e",                               //         text(14) "pairingInvalid"
    "70 61 69 72 69 6e 67 49 6e 76 61 6c 69 64",
    "67 6d 65 73 73 61 67 65", //       "message":
    "78 1e",                   //         text(30) "pairing rejected on the signer"
    "70 61 69 72 69 6e 67 20 72 65 6a 65 63 74 65 64",
    "20 6f 6e 20 74 68 65 20 73 69 67 6e 65 72",
);

// error_with_request (121 bytes), diagnostic notation (RFC 8949 §8):
//
// {
//   "v": 1,
//   "type": "error",
//   "body": {
//     "code": "malformedRequest",
//     "message": "unknown envelope type",
//     "requestID": "2b7e1516-28ae-4d2a-8f3c-9cf4f3c6a1b0"
//   }
// }
const ERROR_WITH_REQUEST: &str = concat!(
    "a3",                               // map(3)
    "61 76 01",                         //   "v": 1
    "64 74 79 70 65 65 65 72 72 6f 72", //   "type": text(5) "error"
    "64 62 6f 64 79",                   //   "body":
    "a3",                               //     map(3)
    "64 63 6f 64 65",                   //       "code":
    "70",                               //         text(16) "malformedRequest"
    "6d 61 6c 66 6f 72 6d 65 64 52 65 71 75 65 73 74",
    "67 6d 65 73 73 61 67 65", //       "message":
    "75",                      //         text(21) "unknown envelope type"
    "75 6e 6b 6e 6f 77 6e 20 65 6e 76 65 6c 6f 70 65",
    "20 74 79 70 65",
    "69 72 65 71 75 65 73 74 49 44", //       "requestID":
    "78 24",                         //         text(36) "2b7e1516-28ae-4d2a-8f3c-9cf4f3c6a1b0"
    "32 62 37 65 31 35 31 36 2d 32 38 61 65 2d 34 64",
    "32 61 2d 38 66 33 63 2d 39 63 66 34 66 33 63 36",
    "61 31 62 30",
);

// ---- helpers ----

/// Every golden vector with the value it encodes.
fn vectors() -> Vec<(Envelope, &'static str)> {
    vec![
        (hello(), HELLO),
        (pair_commit(), PAIR_COMMIT),
        (pair_nonce(), PAIR_NONCE),
        (pair_reveal(), PAIR_REVEAL),
        (pair_result(), PAIR_RESULT),
        (key_list_request(), KEY_LIST_REQUEST),
        (key_list(), KEY_LIST),
        (sign_request(), SIGN_REQUEST),
        (sign_response(), SIGN_RESPONSE),
        (sign_response_denied(), SIGN_RESPONSE_DENIED),
        (certificate_request(), CERTIFICATE_REQUEST),
        (certificate_response(), CERTIFICATE_RESPONSE),
        (device_token_update(), DEVICE_TOKEN_UPDATE),
        (cancel(), CANCEL),
        (ping(), PING),
        (pong(), PONG),
        (error(), ERROR),
        (error_with_request(), ERROR_WITH_REQUEST),
    ]
}

/// Hex to bytes, ignoring whitespace.
fn unhex(hex: &str) -> Vec<u8> {
    let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert_eq!(digits.len() % 2, 0, "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn cbor(bytes: &[u8]) -> Value {
    ciborium::from_reader(bytes).unwrap()
}

fn to_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).unwrap();
    out
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn map_mut(value: &mut Value) -> &mut Vec<(Value, Value)> {
    match value {
        Value::Map(entries) => entries,
        other => panic!("not a map: {other:?}"),
    }
}

fn get_mut<'a>(map: &'a mut [(Value, Value)], key: &str) -> &'a mut Value {
    map.iter_mut()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no key {key}"))
}

fn set(map: &mut Vec<(Value, Value)>, key: &str, value: Value) {
    match map.iter_mut().find(|(k, _)| k.as_text() == Some(key)) {
        Some((_, v)) => *v = value,
        None => map.push((text(key), value)),
    }
}

fn remove(map: &mut Vec<(Value, Value)>, key: &str) {
    map.retain(|(k, _)| k.as_text() != Some(key));
}

/// A golden vector with its outer map changed by `f`.
fn with_outer(golden: &str, f: impl FnOnce(&mut Vec<(Value, Value)>)) -> Vec<u8> {
    let mut value = cbor(&unhex(golden));
    f(map_mut(&mut value));
    to_bytes(&value)
}

/// A change to an envelope body.
type BodyEdit<'a> = &'a dyn Fn(&mut Vec<(Value, Value)>);

/// A golden vector with its body changed by `f`.
fn with_body(golden: &str, f: impl FnOnce(&mut Vec<(Value, Value)>)) -> Vec<u8> {
    with_outer(golden, |outer| f(map_mut(get_mut(outer, "body"))))
}

fn field_size(result: Result<Envelope, Error>) -> (&'static str, usize, usize, usize) {
    match result {
        Err(Error::FieldSize {
            field,
            len,
            min,
            max,
            ..
        }) => (field, len, min, max),
        other => panic!("expected a FieldSize error, got {other:?}"),
    }
}

/// xorshift64*: deterministic garbage without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

// ---- golden vectors ----

#[test]
fn golden_vectors_cover_every_envelope_type() {
    let mut names: Vec<&str> = vectors().iter().map(|(e, _)| e.type_name()).collect();
    names.dedup();
    assert_eq!(
        names,
        [
            "hello",
            "pairCommit",
            "pairNonce",
            "pairReveal",
            "pairResult",
            "keyListRequest",
            "keyList",
            "signRequest",
            "signResponse",
            "certificateRequest",
            "certificateResponse",
            "deviceTokenUpdate",
            "cancel",
            "ping",
            "pong",
            "error",
        ]
    );
}

#[test]
fn encode_matches_golden() {
    for (envelope, golden) in vectors() {
        let bytes = envelope.encode().unwrap();
        assert_eq!(hex(&bytes), hex(&unhex(golden)), "{}", envelope.type_name());
    }
}

#[test]
fn decode_golden_gives_the_fixture() {
    for (envelope, golden) in vectors() {
        assert_eq!(Envelope::decode(&unhex(golden)).unwrap(), envelope);
    }
}

#[test]
fn round_trip() {
    for (envelope, _) in vectors() {
        let again = Envelope::decode(&envelope.encode().unwrap()).unwrap();
        assert_eq!(again, envelope);
    }
}

#[test]
fn type_name_is_the_wire_type() {
    for (envelope, golden) in vectors() {
        let mut value = cbor(&unhex(golden));
        let outer = map_mut(&mut value);
        assert_eq!(get_mut(outer, "v"), &Value::Integer(1u8.into()));
        assert_eq!(get_mut(outer, "type").as_text(), Some(envelope.type_name()));
    }
}

#[test]
fn from_body_builds_the_variant() {
    assert_eq!(Envelope::from(Ping { seq: 1 }), ping());
    assert_eq!(Envelope::from(KeyListRequest {}), key_list_request());
}

// ---- forward compatibility ----

#[test]
fn unknown_body_fields_are_ignored() {
    for (envelope, golden) in vectors() {
        let bytes = with_body(golden, |body| {
            set(
                body,
                "someFutureField",
                Value::Array(vec![text("x"), Value::Bool(true)]),
            );
            set(body, "zz", Value::Map(vec![(text("nested"), Value::Null)]));
        });
        assert_eq!(Envelope::decode(&bytes).unwrap(), envelope);
    }
    // Also inside nested structs.
    let bytes = with_body(SIGN_REQUEST, |body| {
        let context = map_mut(get_mut(body, "context"));
        set(context, "extraContext", Value::Integer(5u8.into()));
    });
    assert_eq!(Envelope::decode(&bytes).unwrap(), sign_request());
    let bytes = with_body(KEY_LIST, |body| {
        let Value::Array(keys) = get_mut(body, "keys") else {
            panic!()
        };
        set(map_mut(&mut keys[0]), "color", text("blue"));
    });
    assert_eq!(Envelope::decode(&bytes).unwrap(), key_list());
}

#[test]
fn unknown_top_level_keys_are_ignored() {
    let bytes = with_outer(PING, |outer| set(outer, "trace", text("abc")));
    assert_eq!(Envelope::decode(&bytes).unwrap(), ping());
}

#[test]
fn unknown_enum_strings_decode_to_unknown() {
    let bytes = with_body(HELLO, |body| set(body, "role", text("relay")));
    let Envelope::Hello(hello) = Envelope::decode(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(hello.role, Role::Unknown);

    let bytes = with_body(KEY_LIST, |body| {
        let Value::Array(keys) = get_mut(body, "keys") else {
            panic!()
        };
        set(map_mut(&mut keys[0]), "providerKind", text("tpm"));
    });
    let Envelope::KeyList(list) = Envelope::decode(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(list.keys[0].provider_kind, ProviderKind::Unknown);

    let bytes = with_body(SIGN_REQUEST, |body| {
        set(body, "origin", text("browserExtension"));
        let context = map_mut(get_mut(body, "context"));
        set(context, "contextQuality", text("attested"));
        set(context, "purpose", text("x509"));
    });
    let Envelope::SignRequest(request) = Envelope::decode(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(request.origin, Origin::Unknown);
    assert_eq!(request.context.context_quality, ContextQuality::Unknown);
    assert_eq!(request.context.purpose, Some(Purpose::Unknown));

    let bytes = with_body(ERROR, |body| set(body, "code", text("quotaExceeded")));
    let Envelope::Error(report) = Envelope::decode(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(report.code, ErrorCode::Unknown);
}

#[test]
fn optional_fields_may_be_absent_or_null() {
    let bytes = with_body(HELLO, |body| remove(body, "pairing"));
    let Envelope::Hello(hello) = Envelope::decode(&bytes).unwrap() else {
        panic!()
    };
    assert!(!hello.pairing);

    let bytes = with_body(SIGN_REQUEST, |body| {
        remove(body, "flags");
        let context = map_mut(get_mut(body, "context"));
        remove(context, "forwarded");
        remove(context, "purpose");
        set(context, "host", Value::Null);
        set(context, "namespace", Value::Null);
    });
    let Envelope::SignRequest(request) = Envelope::decode(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(request.flags, 0);
    assert!(!request.context.forwarded);
    assert_eq!(request.context.purpose, None);
    assert_eq!(request.context.host, None);
    assert_eq!(request.context.namespace, None);

    let bytes = with_body(CERTIFICATE_RESPONSE, |body| {
        set(body, "certificateBlob", Value::Null);
        remove(body, "caPublicKey");
        set(body, "validAfter", Value::Null);
        remove(body, "validBefore");
        set(body, "errorCode", Value::Null);
    });
    let Envelope::CertificateResponse(response) = Envelope::decode(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(response.certificate_blob, None);
    assert_eq!(response.ca_public_key, None);
    assert_eq!(response.valid_after, None);
    assert_eq!(response.valid_before, None);
    assert_eq!(response.error_code, None);
}

#[test]
fn missing_required_fields_are_errors() {
    let optional = ["flags"];
    let mut value = cbor(&unhex(SIGN_REQUEST));
    let keys: Vec<String> = map_mut(get_mut(map_mut(&mut value), "body"))
        .iter()
        .map(|(k, _)| k.as_text().unwrap().to_owned())
        .collect();
    for key in keys {
        let bytes = with_body(SIGN_REQUEST, |body| remove(body, &key));
        let result = Envelope::decode(&bytes);
        if optional.contains(&key.as_str()) {
            assert!(result.is_ok(), "{key}");
        } else {
            match result {
                Err(Error::Cbor(message)) => {
                    assert!(message.contains(&key), "{key}: {message}");
                    assert!(message.starts_with("signRequest"), "{message}");
                }
                other => panic!("{key}: {other:?}"),
            }
        }
    }
    let bytes = with_body(SIGN_REQUEST, |body| {
        remove(map_mut(get_mut(body, "context")), "contextQuality")
    });
    assert!(matches!(Envelope::decode(&bytes), Err(Error::Cbor(_))));
}

#[test]
fn wrong_cbor_types_are_errors() {
    // Byte fields must be byte strings, not text or arrays of integers.
    let bytes = with_body(SIGN_REQUEST, |body| {
        set(body, "dataToSign", text("deadbeef"))
    });
    assert!(matches!(Envelope::decode(&bytes), Err(Error::Cbor(_))));
    let ints = Value::Array((0..16u8).map(|i| Value::Integer(i.into())).collect());
    let bytes = with_body(SIGN_REQUEST, |body| set(body, "nonce", ints));
    assert!(matches!(Envelope::decode(&bytes), Err(Error::Cbor(_))));
    // Text fields must be text.
    let bytes = with_body(HELLO, |body| {
        set(body, "deviceName", Value::Bytes(b"x".to_vec()))
    });
    assert!(matches!(Envelope::decode(&bytes), Err(Error::Cbor(_))));
    // Integers must fit and be unsigned.
    let bytes = with_body(HELLO, |body| {
        set(body, "protocolMinor", Value::Integer(70_000u32.into()))
    });
    assert!(matches!(Envelope::decode(&bytes), Err(Error::Cbor(_))));
    let bytes = with_body(PING, |body| set(body, "seq", Value::Integer((-1i8).into())));
    assert!(matches!(Envelope::decode(&bytes), Err(Error::Cbor(_))));
    // The body must be a map.
    let bytes = with_outer(PING, |outer| set(outer, "body", Value::Array(vec![])));
    assert!(matches!(Envelope::decode(&bytes), Err(Error::Cbor(_))));
    // The envelope must be a map.
    let bytes = to_bytes(&Value::Array(vec![Value::Integer(1u8.into())]));
    assert!(matches!(Envelope::decode(&bytes), Err(Error::Malformed(_))));
}

#[test]
fn duplicate_keys_are_refused() {
    let bytes = with_outer(PING, |outer| {
        outer.push((text("v"), Value::Integer(1u8.into())))
    });
    assert!(matches!(Envelope::decode(&bytes), Err(Error::Malformed(_))));
    let bytes = with_body(PING, |body| {
        body.push((text("seq"), Value::Integer(2u8.into())))
    });
    assert!(matches!(Envelope::decode(&bytes), Err(Error::Cbor(_))));
}

#[test]
fn indefinite_lengths_are_accepted() {
    // {_ "v": 1, "type": "ping", "body": {_ "seq": 1}}, as some CBOR
    // libraries write streamed maps.
    let bytes = unhex("bf 61 76 01 64 74797065 64 70696e67 64 626f6479 bf 63 736571 01 ff ff");
    assert_eq!(Envelope::decode(&bytes).unwrap(), ping());
    // A chunked byte string: (_ h'1111...', h'11...') for the commitment.
    let mut chunked = unhex(
        "a3 6176 01 6474797065 6a70616972436f6d6d6974 64626f6479 a1 6a636f6d6d69746d656e74 5f 50",
    );
    chunked.extend([0x11; 16]);
    chunked.push(0x50);
    chunked.extend([0x11; 16]);
    chunked.push(0xff);
    assert_eq!(Envelope::decode(&chunked).unwrap(), pair_commit());
}

// ---- versions and types ----

#[test]
fn other_major_version_is_refused_with_advice() {
    let bytes = with_outer(HELLO, |outer| set(outer, "v", Value::Integer(2u8.into())));
    let err = Envelope::decode(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedVersion {
                got: 2,
                supported: 1
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("update vmux"), "{err}");

    // The version is checked before anything else is assumed about the
    // envelope: a v2 message whose body v1 cannot read still says "version".
    let v2 = to_bytes(&Value::Map(vec![
        (text("v"), Value::Integer(2u8.into())),
        (text("type"), Value::Integer(7u8.into())),
        (text("kind"), text("somethingNew")),
    ]));
    assert!(matches!(
        Envelope::decode(&v2),
        Err(Error::UnsupportedVersion { got: 2, .. })
    ));
    let v0 = with_outer(PING, |outer| set(outer, "v", Value::Integer(0u8.into())));
    assert!(matches!(
        Envelope::decode(&v0),
        Err(Error::UnsupportedVersion { got: 0, .. })
    ));
}

#[test]
fn missing_or_bad_version_is_malformed() {
    for bad in [
        None,
        Some(text("1")),
        Some(Value::Integer((-1i8).into())),
        Some(Value::Null),
    ] {
        let bytes = with_outer(PING, |outer| match bad {
            None => remove(outer, "v"),
            Some(v) => set(outer, "v", v),
        });
        assert!(matches!(Envelope::decode(&bytes), Err(Error::Malformed(_))));
    }
    let bytes = with_outer(PING, |outer| remove(outer, "type"));
    assert!(matches!(Envelope::decode(&bytes), Err(Error::Malformed(_))));
    let bytes = with_outer(PING, |outer| remove(outer, "body"));
    assert!(matches!(Envelope::decode(&bytes), Err(Error::Malformed(_))));
}

#[test]
fn unknown_type_is_a_distinct_error_with_its_request_id() {
    let bytes = with_outer(SIGN_RESPONSE, |outer| {
        set(outer, "type", text("signBatchRequest"))
    });
    match Envelope::decode(&bytes) {
        Err(Error::UnknownEnvelope(name)) => assert_eq!(name, "signBatchRequest"),
        other => panic!("{other:?}"),
    }
    assert_eq!(peek_request_id(&bytes).as_deref(), Some(REQUEST_ID));

    // No requestID to peek at: the session answers without one.
    let bytes = with_outer(PING, |outer| set(outer, "type", text("ping2")));
    assert!(matches!(
        Envelope::decode(&bytes),
        Err(Error::UnknownEnvelope(_))
    ));
    assert_eq!(peek_request_id(&bytes), None);
}

#[test]
fn peek_request_id_reads_invalid_requests() {
    let bytes = with_body(SIGN_REQUEST, |body| {
        set(body, "nonce", Value::Bytes(vec![0; 4]))
    });
    assert!(Envelope::decode(&bytes).is_err());
    assert_eq!(peek_request_id(&bytes).as_deref(), Some(REQUEST_ID));
    assert_eq!(peek_request_id(&unhex(HELLO)), None);
    assert_eq!(peek_request_id(&[0xff, 0x00]), None);
    let long = with_body(SIGN_REQUEST, |body| {
        set(body, "requestID", text(&"a".repeat(MAX_TEXT_LEN + 1)))
    });
    assert_eq!(peek_request_id(&long), None);
}

#[test]
fn error_text_always_fits_an_error_envelope() {
    // serde quotes offending strings in full; the codec clips them, so the
    // session can send `err.to_string()` back as an `error` message.
    let huge = "\u{e9}".repeat(20_000);
    let inputs = [
        with_outer(PING, |outer| set(outer, "type", text(&huge))),
        with_body(SIGN_REQUEST, |body| set(body, "dataToSign", text(&huge))),
        with_body(HELLO, |body| {
            set(body, "role", Value::Bytes(vec![0; 30_000]))
        }),
        with_body(HELLO, |body| set(body, "protocolMinor", text(&huge))),
    ];
    for input in inputs {
        let err = Envelope::decode(&input).unwrap_err();
        let message = err.to_string();
        assert!(message.len() <= 300, "{} bytes: {message}", message.len());
        let reply = Envelope::Error(ErrorReport {
            code: ErrorCode::MalformedRequest,
            message,
            request_id: peek_request_id(&input),
        });
        assert!(reply.encode().is_ok());
    }
}

// ---- field limits ----

#[test]
fn pairing_values_must_be_exactly_32_bytes() {
    for (golden, key) in [
        (PAIR_COMMIT, "commitment"),
        (PAIR_NONCE, "nonce"),
        (PAIR_REVEAL, "nonce"),
    ] {
        for len in [0, 16, 31, 33, 64] {
            let bytes = with_body(golden, |body| set(body, key, Value::Bytes(vec![7; len])));
            let (field, got, min, max) = field_size(Envelope::decode(&bytes));
            assert!(field.ends_with(key), "{field}");
            assert_eq!((got, min, max), (len, PAIRING_VALUE_LEN, PAIRING_VALUE_LEN));
        }
    }
    let short = Envelope::PairNonce(PairNonce { nonce: vec![0; 31] });
    assert_eq!(
        field_size(short.encode().map(|_| short.clone())).0,
        "pairNonce.nonce"
    );
    let err = Envelope::decode(&with_body(PAIR_REVEAL, |body| {
        set(body, "nonce", Value::Bytes(vec![0; 31]))
    }))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "pairReveal.nonce is 31 bytes; it must be exactly 32"
    );
}

#[test]
fn request_nonces_must_be_16_to_64_bytes() {
    for golden in [SIGN_REQUEST, CERTIFICATE_REQUEST] {
        for len in [MIN_NONCE_LEN, 32, MAX_NONCE_LEN] {
            let bytes = with_body(golden, |body| {
                set(body, "nonce", Value::Bytes(vec![1; len]))
            });
            assert!(Envelope::decode(&bytes).is_ok(), "{len}");
        }
        for len in [0, MIN_NONCE_LEN - 1, MAX_NONCE_LEN + 1] {
            let bytes = with_body(golden, |body| {
                set(body, "nonce", Value::Bytes(vec![1; len]))
            });
            let (field, got, min, max) = field_size(Envelope::decode(&bytes));
            assert!(field.ends_with(".nonce"));
            assert_eq!((got, min, max), (len, MIN_NONCE_LEN, MAX_NONCE_LEN));
        }
    }
    let err = Envelope::decode(&with_body(SIGN_REQUEST, |body| {
        set(body, "nonce", Value::Bytes(vec![0; 8]))
    }))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "signRequest.nonce is 8 bytes; it must be 16 to 64"
    );
}

#[test]
fn data_to_sign_is_capped_at_16_kib() {
    let at = |len: usize| {
        with_body(SIGN_REQUEST, |body| {
            set(body, "dataToSign", Value::Bytes(vec![9; len]))
        })
    };
    assert!(Envelope::decode(&at(MAX_DATA_TO_SIGN_LEN)).is_ok());
    assert_eq!(
        field_size(Envelope::decode(&at(MAX_DATA_TO_SIGN_LEN + 1))),
        (
            "signRequest.dataToSign",
            MAX_DATA_TO_SIGN_LEN + 1,
            0,
            MAX_DATA_TO_SIGN_LEN
        )
    );
    let Envelope::SignRequest(mut request) = sign_request() else {
        panic!()
    };
    request.data_to_sign = vec![0; MAX_DATA_TO_SIGN_LEN + 1];
    assert!(matches!(
        Envelope::SignRequest(request).encode(),
        Err(Error::FieldSize {
            field: "signRequest.dataToSign",
            ..
        })
    ));
}

#[test]
fn key_list_is_capped_at_256_keys() {
    let Envelope::KeyList(list) = key_list() else {
        panic!()
    };
    let record = list.keys[0].clone();
    let small = PublicKeyRecord {
        public_key_blob: vec![1; 8],
        display_name: None,
        ..record
    };
    let full = Envelope::KeyList(KeyList {
        keys: vec![small.clone(); MAX_KEYS],
        ca_public_key: None,
    });
    let bytes = full.encode().unwrap();
    assert_eq!(Envelope::decode(&bytes).unwrap(), full);

    // One more, built by hand since the encoder refuses it.
    let mut value = cbor(&bytes);
    let body = map_mut(get_mut(map_mut(&mut value), "body"));
    let Value::Array(keys) = get_mut(body, "keys") else {
        panic!()
    };
    keys.push(keys[0].clone());
    let (field, len, _, max) = field_size(Envelope::decode(&to_bytes(&value)));
    assert_eq!((field, len, max), ("keyList.keys", MAX_KEYS + 1, MAX_KEYS));

    let over = Envelope::KeyList(KeyList {
        keys: vec![small; MAX_KEYS + 1],
        ca_public_key: None,
    });
    assert!(matches!(
        over.encode(),
        Err(Error::FieldSize {
            field: "keyList.keys",
            ..
        })
    ));
}

#[test]
fn text_fields_are_capped() {
    let name = |len: usize| {
        with_body(HELLO, |body| {
            set(body, "deviceName", text(&"n".repeat(len)))
        })
    };
    assert!(Envelope::decode(&name(MAX_DEVICE_NAME_LEN)).is_ok());
    assert_eq!(
        field_size(Envelope::decode(&name(MAX_DEVICE_NAME_LEN + 1))).0,
        "hello.deviceName"
    );
    // The cap counts UTF-8 bytes, not characters: 33 × "é" is 66 bytes.
    let bytes = with_body(HELLO, |body| set(body, "deviceName", text(&"é".repeat(33))));
    assert_eq!(field_size(Envelope::decode(&bytes)).1, 66);

    let long = "x".repeat(MAX_TEXT_LEN + 1);
    let cases: [(&str, BodyEdit); 4] = [
        ("signRequest.context.host", &|body| {
            set(map_mut(get_mut(body, "context")), "host", text(&long))
        }),
        ("signRequest.keyAlgorithm", &|body| {
            set(body, "keyAlgorithm", text(&long))
        }),
        ("signRequest.requestID", &|body| {
            set(body, "requestID", text(&long))
        }),
        ("signRequest.sourceDeviceName", &|body| {
            set(
                body,
                "sourceDeviceName",
                text(&"n".repeat(MAX_DEVICE_NAME_LEN + 1)),
            )
        }),
    ];
    for (field, f) in cases {
        let bytes = with_body(SIGN_REQUEST, |body| f(body));
        assert_eq!(field_size(Envelope::decode(&bytes)).0, field);
    }
    let bytes = with_body(ERROR, |body| set(body, "message", text(&long)));
    assert_eq!(field_size(Envelope::decode(&bytes)).0, "error.message");
    let bytes = with_body(DEVICE_TOKEN_UPDATE, |body| {
        set(body, "endpoint", text(&long))
    });
    assert_eq!(
        field_size(Envelope::decode(&bytes)).0,
        "deviceTokenUpdate.endpoint"
    );
    let exact = "x".repeat(MAX_TEXT_LEN);
    let bytes = with_body(ERROR, |body| set(body, "message", text(&exact)));
    assert!(Envelope::decode(&bytes).is_ok());
}

#[test]
fn blobs_are_capped_at_16_kib() {
    let blob = |len: usize| Value::Bytes(vec![3; len]);
    let ok = with_body(SIGN_RESPONSE, |body| {
        set(body, "signature", blob(MAX_BLOB_LEN))
    });
    assert!(Envelope::decode(&ok).is_ok());
    let cases = [
        (SIGN_REQUEST, "publicKeyBlob", "signRequest.publicKeyBlob"),
        (SIGN_RESPONSE, "signature", "signResponse.signature"),
        (
            CERTIFICATE_RESPONSE,
            "certificateBlob",
            "certificateResponse.certificateBlob",
        ),
        (KEY_LIST, "caPublicKey", "keyList.caPublicKey"),
    ];
    for (golden, key, field) in cases {
        let bytes = with_body(golden, |body| set(body, key, blob(MAX_BLOB_LEN + 1)));
        assert_eq!(field_size(Envelope::decode(&bytes)).0, field);
    }
}

// ---- robustness ----

#[test]
fn every_prefix_of_every_golden_is_an_error() {
    for (_, golden) in vectors() {
        let bytes = unhex(golden);
        for end in 0..bytes.len() {
            assert!(Envelope::decode(&bytes[..end]).is_err(), "prefix {end}");
            let _ = peek_request_id(&bytes[..end]);
        }
    }
    assert!(matches!(Envelope::decode(&[]), Err(Error::Truncated)));
    assert!(matches!(
        Envelope::decode(&unhex(HELLO)[..50]),
        Err(Error::Truncated)
    ));
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bytes = unhex(PING);
    bytes.push(0x00);
    assert!(matches!(
        Envelope::decode(&bytes),
        Err(Error::TrailingBytes)
    ));
    let mut twice = unhex(PING);
    twice.extend(unhex(PONG));
    assert!(matches!(
        Envelope::decode(&twice),
        Err(Error::TrailingBytes)
    ));
}

#[test]
fn garbage_never_panics() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let goldens: Vec<Vec<u8>> = vectors().iter().map(|(_, g)| unhex(g)).collect();
    for round in 0..10_000 {
        // Half pure noise, half goldens with a few bytes changed.
        let input = if round % 2 == 0 {
            let len = rng.below(300);
            (0..len).map(|_| rng.next() as u8).collect::<Vec<u8>>()
        } else {
            let mut input = goldens[rng.below(goldens.len())].clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(input.len());
                input[at] = rng.next() as u8;
            }
            input
        };
        match Envelope::decode(&input) {
            Ok(envelope) => {
                let again = envelope.encode().unwrap();
                assert_eq!(Envelope::decode(&again).unwrap(), envelope);
            }
            Err(e) => assert!(e.to_string().len() <= MAX_TEXT_LEN, "{e}"),
        }
        let _ = peek_request_id(&input);
    }
}

#[test]
fn huge_declared_lengths_fail_fast() {
    // Headers claiming 2^63 and 2^64 - 1 items/bytes: map, array, bytes, text.
    let heads: Vec<Vec<u8>> = [0xbb, 0x9b, 0x5b, 0x7b]
        .into_iter()
        .flat_map(|major| {
            [
                vec![major, 0x80, 0, 0, 0, 0, 0, 0, 0],
                vec![major, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                vec![major - 1, 0xff, 0xff, 0xff, 0xff],
            ]
        })
        .collect();
    for head in heads {
        let mut inputs = vec![head.clone()];
        // Inside the body, as an unknown field and as a known field.
        let prefix = unhex("a3 6176 01 6474797065 6470696e67 64626f6479 a2 63736571 01 63706164");
        inputs.push([prefix.as_slice(), &head].concat());
        let prefix = unhex(
            "a3 6176 01 6474797065 6a70616972436f6d6d6974 64626f6479 a1 6a636f6d6d69746d656e74",
        );
        inputs.push([prefix.as_slice(), &head, &[0; 40]].concat());
        for input in inputs {
            let start = Instant::now();
            let result = Envelope::decode(&input);
            assert!(result.is_err(), "{}", hex(&input));
            assert!(start.elapsed() < Duration::from_secs(1), "{}", hex(&input));
            let _ = peek_request_id(&input);
        }
    }
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    // 60 000 nested one-element arrays, alone and as an unknown body field.
    let deep = vec![0x81; 60_000];
    assert!(Envelope::decode(&deep).is_err());
    let mut input = unhex("a3 6176 01 6474797065 6470696e67 64626f6479 a2 63736571 01 63706164");
    input.extend(&deep);
    input.push(0x00);
    assert!(Envelope::decode(&input).is_err());
    assert_eq!(peek_request_id(&input), None);
    // Moderate nesting in an unknown field is fine.
    let mut input = unhex("a3 6176 01 6474797065 6470696e67 64626f6479 a2 63736571 01 63706164");
    input.extend([0x81; 250]);
    input.push(0x00);
    assert_eq!(Envelope::decode(&input).unwrap(), ping());
}

#[test]
fn oversize_input_is_refused_before_parsing() {
    // A valid ping padded by an unknown field to exactly the limit decodes...
    let padded = |total: usize| {
        let base = with_body(PING, |body| set(body, "pad", Value::Bytes(vec![])));
        // The pad's header grows from 1 to 3 bytes once it holds ≥ 256 bytes.
        let pad = total - base.len() - 2;
        let bytes = with_body(PING, |body| set(body, "pad", Value::Bytes(vec![0; pad])));
        assert_eq!(bytes.len(), total);
        bytes
    };
    assert_eq!(Envelope::decode(&padded(MAX_ENVELOPE_LEN)).unwrap(), ping());
    // ...and one byte more is refused as too long, not parsed.
    match Envelope::decode(&padded(MAX_ENVELOPE_LEN + 1)) {
        Err(Error::TooLong { len, max }) => {
            assert_eq!(
                (len, max),
                (MAX_ENVELOPE_LEN as u64 + 1, MAX_ENVELOPE_LEN as u64)
            );
        }
        other => panic!("{other:?}"),
    }
    let mut junk = unhex(PING);
    junk.resize(MAX_ENVELOPE_LEN + 1, 0xff);
    assert!(matches!(
        Envelope::decode(&junk),
        Err(Error::TooLong { .. })
    ));
    assert_eq!(peek_request_id(&junk), None);
    assert_eq!(MAX_ENVELOPE_LEN, 65_519);
}

#[test]
fn oversize_output_is_refused() {
    let record = PublicKeyRecord {
        algorithm: "ssh-rsa".into(),
        public_key_blob: vec![0xab; 1024],
        comment: "rsa".into(),
        provider_kind: ProviderKind::HardwareToken,
        display_name: None,
    };
    let list = Envelope::KeyList(KeyList {
        keys: vec![record; 64],
        ca_public_key: None,
    });
    match list.encode() {
        Err(Error::TooLong { len, max }) => {
            assert!(len > MAX_ENVELOPE_LEN as u64);
            assert_eq!(max, MAX_ENVELOPE_LEN as u64);
        }
        other => panic!("{other:?}"),
    }
}

// ---- error codes and constants ----

#[test]
fn error_codes_have_wire_names_and_meanings() {
    let codes = [
        ErrorCode::UserDenied,
        ErrorCode::RequestExpired,
        ErrorCode::PairingInvalid,
        ErrorCode::UnknownKey,
        ErrorCode::KeyDisabled,
        ErrorCode::VerificationFailed,
        ErrorCode::PolicyDenied,
        ErrorCode::ReplayedRequest,
        ErrorCode::MalformedRequest,
        ErrorCode::SignerBusy,
        ErrorCode::CertificateRevoked,
        ErrorCode::Internal,
    ];
    let mut meanings = Vec::new();
    for code in codes {
        let envelope = Envelope::Error(ErrorReport {
            code,
            message: String::new(),
            request_id: None,
        });
        let mut value = cbor(&envelope.encode().unwrap());
        let body = map_mut(get_mut(map_mut(&mut value), "body"));
        assert_eq!(get_mut(body, "code").as_text(), Some(code.as_str()));
        assert_eq!(
            Envelope::decode(&envelope.encode().unwrap()).unwrap(),
            envelope
        );
        let meaning = code.to_string();
        assert!(!meaning.is_empty() && !meaning.contains('\n'));
        meanings.push(meaning);
    }
    meanings.sort();
    meanings.dedup();
    assert_eq!(meanings.len(), codes.len());
    assert_eq!(ErrorCode::Unknown.as_str(), "unknown");
}

#[test]
fn constants_match_the_spec() {
    assert_eq!(SSH_AGENT_RSA_SHA2_256, 2);
    assert_eq!(SSH_AGENT_RSA_SHA2_512, 4);
    assert_eq!((PROTOCOL_MAJOR, PROTOCOL_MINOR), (1, 0));
    assert_eq!(
        (MIN_NONCE_LEN, MAX_NONCE_LEN, PAIRING_VALUE_LEN),
        (16, 64, 32)
    );
    assert_eq!(
        (MAX_DATA_TO_SIGN_LEN, MAX_KEYS, MAX_TEXT_LEN),
        (16_384, 256, 1024)
    );
    assert_eq!((MAX_DEVICE_NAME_LEN, MAX_BLOB_LEN), (64, 16_384));
}

// ---- docs/protocol.md agrees with the code ----

const PROTOCOL_MD: &str = include_str!("../../../docs/protocol.md");

/// One row of a field table in docs/protocol.md §8.2.
#[derive(Debug)]
struct DocField {
    name: String,
    kind: String,
    detail: String,
    required: bool,
}

/// The field tables of docs/protocol.md, by the name in their `#### ` heading.
fn documented_tables() -> Vec<(String, Vec<DocField>)> {
    let mut tables: Vec<(String, Vec<DocField>)> = Vec::new();
    for line in PROTOCOL_MD.lines() {
        if let Some(heading) = line.strip_prefix("#### `") {
            let name = heading.trim_end_matches('`').to_owned();
            tables.push((name, Vec::new()));
        } else if line.starts_with("## ") {
            // Only §8 has `####` headings, but stop a table at any section.
            tables.push((String::new(), Vec::new()));
        } else if let (Some(row), Some((_, fields))) = (line.strip_prefix("| `"), tables.last_mut())
        {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let (kind, detail) = match cells[1].split_once(' ') {
                Some((kind, detail)) => (kind.to_owned(), detail.to_owned()),
                None => (cells[1].to_owned(), String::new()),
            };
            fields.push(DocField {
                name: cells[0].trim_end_matches('`').to_owned(),
                kind,
                detail,
                required: cells[2].starts_with("required"),
            });
        }
    }
    tables.retain(|(name, _)| !name.is_empty());
    tables
}

/// Envelopes with every optional field set, and where in them each
/// documented table's map sits.
fn full_envelopes() -> Vec<(&'static str, Envelope, &'static [&'static str])> {
    let Envelope::SignRequest(mut request) = sign_request() else {
        panic!()
    };
    request.context.purpose = Some(Purpose::Sshsig);
    request.context.namespace = Some("git".into());
    request.context.host_key = Some(ed25519_blob(0x40));
    request.flags = SSH_AGENT_RSA_SHA2_512;
    request.bindings = vec![SessionBinding {
        host_key: ed25519_blob(0x40),
        session_id: vec![7; 32],
        signature: ed25519_signature(),
        forwarded: false,
        known_hosts_name: Some("db".into()),
    }];
    let Envelope::SignResponse(mut response) = sign_response() else {
        panic!()
    };
    response.error_code = Some(ErrorCode::Internal);
    response.error_message = Some("both, for the test".into());
    let Envelope::CertificateResponse(mut certificate) = certificate_response() else {
        panic!()
    };
    certificate.error_code = Some(ErrorCode::Internal);
    certificate.error_message = Some("both, for the test".into());
    vec![
        ("hello", hello(), &[]),
        ("pairCommit", pair_commit(), &[]),
        ("pairNonce", pair_nonce(), &[]),
        ("pairReveal", pair_reveal(), &[]),
        ("pairResult", pair_result(), &[]),
        ("keyListRequest", key_list_request(), &[]),
        ("keyList", key_list(), &[]),
        ("PublicKeyRecord", key_list(), &["keys"]),
        ("signRequest", Envelope::SignRequest(request.clone()), &[]),
        (
            "SessionBinding",
            Envelope::SignRequest(request.clone()),
            &["bindings"],
        ),
        ("SignContext", Envelope::SignRequest(request), &["context"]),
        ("signResponse", Envelope::SignResponse(response), &[]),
        ("certificateRequest", certificate_request(), &[]),
        (
            "certificateResponse",
            Envelope::CertificateResponse(certificate),
            &[],
        ),
        ("deviceTokenUpdate", device_token_update(), &[]),
        ("cancel", cancel(), &[]),
        ("ping", ping(), &[]),
        ("pong", pong(), &[]),
        ("error", error_with_request(), &[]),
    ]
}

/// The map at `path` inside an envelope's body (`keys` means its first record).
fn table_mut<'a>(envelope: &'a mut Value, path: &[&str]) -> &'a mut Vec<(Value, Value)> {
    let mut map = map_mut(get_mut(map_mut(envelope), "body"));
    for step in path {
        map = match get_mut(map, step) {
            Value::Array(items) => map_mut(&mut items[0]),
            other => map_mut(other),
        };
    }
    map
}

fn cbor_kind(value: &Value) -> &'static str {
    match value {
        Value::Integer(_) => "uint",
        Value::Text(_) => "text",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "bool",
        Value::Map(_) => "map",
        Value::Array(_) => "array",
        _ => "other",
    }
}

/// `(min, max)` from a documented size: `(≤ 64)`, `(16 to 64)`, `(exactly 32)`.
fn documented_size(detail: &str) -> Option<(usize, usize)> {
    let inner = detail.rsplit_once('(')?.1.strip_suffix(')')?;
    let number = |s: &str| s.trim().parse::<usize>().ok();
    if let Some(max) = inner.strip_prefix("≤ ") {
        Some((0, number(max)?))
    } else if let Some(n) = inner.strip_prefix("exactly ") {
        Some((number(n)?, number(n)?))
    } else {
        let (min, max) = inner.split_once(" to ")?;
        Some((number(min)?, number(max)?))
    }
}

/// `field` of the table at `path`, resized to `len` bytes or entries.
fn resized(envelope: &Envelope, path: &[&str], field: &str, len: usize) -> Vec<u8> {
    let mut value = cbor(&envelope.encode().unwrap());
    let table = table_mut(&mut value, path);
    let new = match get_mut(table, field) {
        Value::Text(_) => text(&"x".repeat(len)),
        Value::Bytes(_) => Value::Bytes(vec![0x42; len]),
        Value::Array(items) => Value::Array(vec![items[0].clone(); len]),
        other => panic!("{field}: no size for {other:?}"),
    };
    set(table, field, new);
    to_bytes(&value)
}

#[test]
fn protocol_md_documents_every_field_as_encoded() {
    let tables = documented_tables();
    let names: Vec<&str> = tables.iter().map(|(name, _)| name.as_str()).collect();
    let expected: Vec<&str> = full_envelopes().iter().map(|(name, ..)| *name).collect();
    assert_eq!(names, expected, "the #### tables of docs/protocol.md §8.2");

    for ((name, envelope, path), (_, documented)) in full_envelopes().into_iter().zip(&tables) {
        let mut value = cbor(&envelope.encode().unwrap());
        let encoded = table_mut(&mut value, path).clone();
        let encoded_names: Vec<&str> = encoded.iter().map(|(k, _)| k.as_text().unwrap()).collect();
        let documented_names: Vec<&str> = documented.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            documented_names, encoded_names,
            "{name}: fields or their order"
        );

        for (field, (_, value)) in documented.iter().zip(&encoded) {
            assert_eq!(field.kind, cbor_kind(value), "{name}.{}", field.name);

            // Required or optional, as documented.
            let mut without = cbor(&envelope.encode().unwrap());
            remove(table_mut(&mut without, path), &field.name);
            let decoded = Envelope::decode(&to_bytes(&without));
            assert_eq!(decoded.is_err(), field.required, "{name}.{}", field.name);

            // Integer widths, as documented.
            if let Some(bits) = field
                .detail
                .strip_prefix("(")
                .and_then(|d| d.strip_suffix(" bits)"))
            {
                let bits: u32 = bits.parse().unwrap();
                let with = |n: u64| {
                    let mut value = cbor(&envelope.encode().unwrap());
                    set(
                        table_mut(&mut value, path),
                        &field.name,
                        Value::Integer(n.into()),
                    );
                    Envelope::decode(&to_bytes(&value))
                };
                let max = u64::MAX >> (64 - bits);
                assert!(with(max).is_ok(), "{name}.{} = {max}", field.name);
                if bits < 64 {
                    assert!(
                        with(max + 1).is_err(),
                        "{name}.{} = {}",
                        field.name,
                        max + 1
                    );
                }
            }

            // Size limits, as documented.
            if let Some((min, max)) = documented_size(&field.detail) {
                let at = |len| Envelope::decode(&resized(&envelope, path, &field.name, len));
                assert!(at(max).is_ok(), "{name}.{} at {max}", field.name);
                let over = field_size(at(max + 1));
                assert_eq!((over.2, over.3), (min, max), "{name}.{}", field.name);
                if min > 0 {
                    assert_eq!(field_size(at(min - 1)).1, min - 1, "{name}.{}", field.name);
                }
            }
        }
    }
}

#[test]
fn protocol_md_lists_every_error_code() {
    for code in [
        ErrorCode::UserDenied,
        ErrorCode::RequestExpired,
        ErrorCode::PairingInvalid,
        ErrorCode::UnknownKey,
        ErrorCode::KeyDisabled,
        ErrorCode::VerificationFailed,
        ErrorCode::PolicyDenied,
        ErrorCode::ReplayedRequest,
        ErrorCode::MalformedRequest,
        ErrorCode::SignerBusy,
        ErrorCode::CertificateRevoked,
        ErrorCode::Internal,
    ] {
        let row = format!("| `{}` |", code.as_str());
        assert!(
            PROTOCOL_MD.contains(&row),
            "docs/protocol.md §11 lacks {row}"
        );
    }
}

#[test]
fn protocol_md_shows_the_golden_hello() {
    let (_, after) = PROTOCOL_MD
        .split_once("`hello` from the test file")
        .unwrap();
    let block = after.split("```").nth(1).unwrap();
    let hex_lines: String = block
        .lines()
        .filter(|line| !line.is_empty() && line.chars().all(|c| c.is_ascii_hexdigit() || c == ' '))
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(unhex(&hex_lines), unhex(HELLO));
}

/// `signRequest.bindings`: optional (an older requester sends none, an
/// older signer ignores them), at most 16, each field within its limits,
/// and the claimed name is text a person may read.
#[test]
fn session_bindings_are_optional_and_capped() {
    let Envelope::SignRequest(plain) = sign_request() else {
        panic!()
    };
    assert!(plain.bindings.is_empty());
    let binding = SessionBinding {
        host_key: ed25519_blob(0x40),
        session_id: vec![7; 32],
        signature: ed25519_signature(),
        forwarded: true,
        known_hosts_name: Some("bastion".into()),
    };
    let with = |bindings: Vec<SessionBinding>| {
        let mut r = plain.clone();
        r.bindings = bindings;
        Envelope::SignRequest(r)
    };
    let bound = with(vec![binding.clone()]);
    assert_eq!(Envelope::decode(&bound.encode().unwrap()).unwrap(), bound);
    // No field at all when there are none: the golden vector is unchanged.
    let encoded = Envelope::SignRequest(plain.clone()).encode().unwrap();
    assert_eq!(encoded, unhex(SIGN_REQUEST));
    assert!(!hex(&encoded).contains(&hex(b"bindings")));

    let refused = |b: Vec<SessionBinding>| match with(b).encode() {
        Err(Error::FieldSize { field, .. }) => field,
        Err(Error::ForbiddenCharacter { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        refused(vec![binding.clone(); MAX_BINDINGS + 1]),
        "signRequest.bindings"
    );
    let mut long = binding.clone();
    long.session_id = vec![0; 129];
    assert_eq!(refused(vec![long]), "signRequest.bindings.sessionID");
    let mut empty = binding.clone();
    empty.session_id.clear();
    assert_eq!(refused(vec![empty]), "signRequest.bindings.sessionID");
    let mut evil = binding;
    evil.known_hosts_name = Some("db\u{1b}[2J".into());
    assert_eq!(refused(vec![evil]), "signRequest.bindings.knownHostsName");
}
