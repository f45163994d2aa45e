//! The hand-assembled Noise XX against itself and against `snow`, an
//! independent implementation, plus the tampering cases.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::Value;
use vmux_link::noise::{self, StaticKeypair, Transport, fixed};
use zeroize::Zeroizing;

const NAME: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

fn handshake(i: &StaticKeypair, r: &StaticKeypair) -> (Transport, Transport) {
    let (i_state, msg1) = noise::initiate(i).unwrap();
    let (r_state, msg2) = noise::respond(r, &msg1).unwrap();
    let presented = i_state.read_msg2(&msg2).unwrap();
    assert_eq!(presented.remote_static(), r.public());
    let (msg3, i_t) = presented.finish().unwrap();
    let r_t = r_state.read_msg3(&msg3).unwrap();
    (i_t, r_t)
}

#[test]
fn message_sizes_match_the_xx_pattern() {
    let (i, r) = (
        StaticKeypair::generate().unwrap(),
        StaticKeypair::generate().unwrap(),
    );
    let (i_state, msg1) = noise::initiate(&i).unwrap();
    let (r_state, msg2) = noise::respond(&r, &msg1).unwrap();
    let (msg3, _) = i_state.read_msg2(&msg2).unwrap().finish().unwrap();
    assert_eq!((msg1.len(), msg2.len(), msg3.len()), (32, 96, 64));
    r_state.read_msg3(&msg3).unwrap();
}

#[test]
fn both_ends_agree_and_learn_each_others_static_key() {
    let (i, r) = (
        StaticKeypair::generate().unwrap(),
        StaticKeypair::generate().unwrap(),
    );
    let (mut i_t, mut r_t) = handshake(&i, &r);
    assert_eq!(i_t.handshake_hash, r_t.handshake_hash);
    assert_eq!(i_t.remote_static, r.public());
    assert_eq!(r_t.remote_static, i.public());
    for n in 0..3u8 {
        let c = i_t.send.encrypt(&[n; 10]).unwrap();
        assert_eq!(r_t.recv.decrypt(&c).unwrap(), [n; 10]);
        let c = r_t.send.encrypt(b"back").unwrap();
        assert_eq!(i_t.recv.decrypt(&c).unwrap(), b"back");
    }
}

fn snow_builder(key: &StaticKeypair) -> snow::Builder<'static> {
    let secret = Box::leak(Box::new(key.secret_bytes()));
    snow::Builder::new(NAME.parse().unwrap())
        .local_private_key(secret.as_slice())
        .unwrap()
        .prologue(noise::PROLOGUE)
        .unwrap()
}

#[test]
fn interoperates_with_snow_as_initiator() {
    let (i, r) = (
        StaticKeypair::generate().unwrap(),
        StaticKeypair::generate().unwrap(),
    );
    let mut snow_r = snow_builder(&r).build_responder().unwrap();
    let mut buf = vec![0u8; 65535];
    let mut scratch = vec![0u8; 65535];

    let (i_state, msg1) = noise::initiate(&i).unwrap();
    snow_r.read_message(&msg1, &mut scratch).unwrap();
    let n = snow_r.write_message(&[], &mut buf).unwrap();
    let presented = i_state.read_msg2(&buf[..n]).unwrap();
    assert_eq!(presented.remote_static(), r.public());
    let (msg3, mut ours) = presented.finish().unwrap();
    snow_r.read_message(&msg3, &mut scratch).unwrap();
    assert_eq!(snow_r.get_remote_static().unwrap(), i.public());
    assert_eq!(snow_r.get_handshake_hash(), ours.handshake_hash);

    let mut theirs = snow_r.into_transport_mode().unwrap();
    let c = ours.send.encrypt(b"to snow").unwrap();
    let n = theirs.read_message(&c, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"to snow");
    let n = theirs.write_message(b"from snow", &mut buf).unwrap();
    assert_eq!(ours.recv.decrypt(&buf[..n]).unwrap(), b"from snow");
}

#[test]
fn interoperates_with_snow_as_responder() {
    let (i, r) = (
        StaticKeypair::generate().unwrap(),
        StaticKeypair::generate().unwrap(),
    );
    let mut snow_i = snow_builder(&i).build_initiator().unwrap();
    let mut buf = vec![0u8; 65535];
    let mut scratch = vec![0u8; 65535];

    let n = snow_i.write_message(&[], &mut buf).unwrap();
    let (r_state, msg2) = noise::respond(&r, &buf[..n]).unwrap();
    snow_i.read_message(&msg2, &mut scratch).unwrap();
    let n = snow_i.write_message(&[], &mut buf).unwrap();
    let mut ours = r_state.read_msg3(&buf[..n]).unwrap();
    assert_eq!(ours.remote_static, i.public());
    assert_eq!(snow_i.get_handshake_hash(), ours.handshake_hash);

    let mut theirs = snow_i.into_transport_mode().unwrap();
    let n = theirs.write_message(b"from snow", &mut buf).unwrap();
    assert_eq!(ours.recv.decrypt(&buf[..n]).unwrap(), b"from snow");
    let c = ours.send.encrypt(b"to snow").unwrap();
    let n = theirs.read_message(&c, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"to snow");
}

#[test]
fn a_flipped_bit_anywhere_fails_authentication_and_spends_no_nonce() {
    let (i, r) = (
        StaticKeypair::generate().unwrap(),
        StaticKeypair::generate().unwrap(),
    );
    let (mut i_t, mut r_t) = handshake(&i, &r);
    let c = i_t.send.encrypt(b"sign this").unwrap();
    for bit in 0..c.len() * 8 {
        let mut forged = c.clone();
        forged[bit / 8] ^= 1 << (bit % 8);
        assert!(
            r_t.recv.decrypt(&forged).is_err(),
            "bit {bit} went unnoticed"
        );
    }
    // Noise §5.1: a failed decryption leaves the counter alone, so the
    // genuine message still opens after every forgery.
    assert_eq!(r_t.recv.decrypt(&c).unwrap(), b"sign this");
    let next = i_t.send.encrypt(b"and this").unwrap();
    assert_eq!(r_t.recv.decrypt(&next).unwrap(), b"and this");
}

#[test]
fn a_replayed_or_reordered_message_fails() {
    let (i, r) = (
        StaticKeypair::generate().unwrap(),
        StaticKeypair::generate().unwrap(),
    );
    let (mut i_t, mut r_t) = handshake(&i, &r);
    let first = i_t.send.encrypt(b"one").unwrap();
    assert_eq!(r_t.recv.decrypt(&first).unwrap(), b"one");
    assert!(r_t.recv.decrypt(&first).is_err(), "replay accepted");

    let (mut i_t, mut r_t) = handshake(&i, &r);
    let _first = i_t.send.encrypt(b"one").unwrap();
    let second = i_t.send.encrypt(b"two").unwrap();
    assert!(
        r_t.recv.decrypt(&second).is_err(),
        "reordered message accepted"
    );
}

#[test]
fn tampered_handshake_messages_are_refused() {
    let (i, r) = (
        StaticKeypair::generate().unwrap(),
        StaticKeypair::generate().unwrap(),
    );
    let (i_state, msg1) = noise::initiate(&i).unwrap();
    let (_, mut msg2) = noise::respond(&r, &msg1).unwrap();
    msg2[40] ^= 1; // inside the encrypted static key
    assert!(i_state.read_msg2(&msg2).is_err());

    assert!(noise::respond(&r, &msg1[..31]).is_err());
    assert!(noise::respond(&r, &[0u8; 33]).is_err());
    // The all-zero point is of low order: no contributory shared secret.
    assert!(noise::respond(&r, &[0u8; 32]).is_err());
}

#[test]
fn keypair_survives_a_round_trip_through_its_secret_bytes() {
    let k = StaticKeypair::generate().unwrap();
    let again = StaticKeypair::from_secret_bytes(Zeroizing::new(*k.secret_bytes()));
    assert_eq!(k.public(), again.public());
}

// ---- the published Noise test vectors ----

/// The `Noise_XX_25519_ChaChaPoly_BLAKE2s` entries of cacophony's and snow's
/// vector files; where they come from is in the file's `note`.
const PUBLISHED_VECTORS: &str = include_str!("fixtures/noise-xx-vectors.json");

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn field(v: &Value, name: &str) -> Vec<u8> {
    unhex(v[name].as_str().unwrap_or_else(|| panic!("no {name}")))
}

fn secret(v: &Value, name: &str) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(field(v, name).try_into().unwrap())
}

#[test]
fn the_published_noise_vectors_pass_with_fixed_ephemeral_keys() {
    let file: Value = serde_json::from_str(PUBLISHED_VECTORS).unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 2, "cacophony's and snow's");
    for v in vectors {
        let source = v["source"].as_str().unwrap();
        assert_eq!(v["protocol_name"], NAME, "{source}");
        assert_eq!(v["init_prologue"], v["resp_prologue"], "{source}");
        let prologue = field(v, "init_prologue");
        let i = StaticKeypair::from_secret_bytes(secret(v, "init_static"));
        let r = StaticKeypair::from_secret_bytes(secret(v, "resp_static"));
        let messages = v["messages"].as_array().unwrap();
        let payload = |n: usize| field(&messages[n], "payload");
        let ciphertext = |n: usize| field(&messages[n], "ciphertext");

        let (i_state, msg1) =
            fixed::initiate(&i, secret(v, "init_ephemeral"), &prologue, &payload(0)).unwrap();
        assert_eq!(msg1, ciphertext(0), "{source}: message 1");
        let (r_state, got1, msg2) = fixed::respond(
            &r,
            secret(v, "resp_ephemeral"),
            &prologue,
            &msg1,
            &payload(1),
        )
        .unwrap();
        assert_eq!(
            (got1, &msg2),
            (payload(0), &ciphertext(1)),
            "{source}: message 2"
        );
        let (presented, got2) = fixed::read_msg2(i_state, &msg2).unwrap();
        assert_eq!(got2, payload(1), "{source}: message 2 read");
        assert_eq!(presented.remote_static(), r.public(), "{source}");
        let (msg3, mut i_t) = fixed::finish(presented, &payload(2)).unwrap();
        assert_eq!(msg3, ciphertext(2), "{source}: message 3");
        let (mut r_t, got3) = fixed::read_msg3(r_state, &msg3).unwrap();
        assert_eq!(got3, payload(2), "{source}: message 3 read");
        assert_eq!(r_t.remote_static, i.public(), "{source}");
        assert_eq!(i_t.handshake_hash, r_t.handshake_hash, "{source}");
        if let Some(h) = v["handshake_hash"].as_str() {
            assert_eq!(i_t.handshake_hash.to_vec(), unhex(h), "{source}: h");
        }

        // Transport messages alternate, the initiator first after message 3's
        // responder reply: message n is the initiator's when n is even.
        for (n, message) in messages.iter().enumerate().skip(3) {
            let (sender, receiver) = if n % 2 == 0 {
                (&mut i_t.send, &mut r_t.recv)
            } else {
                (&mut r_t.send, &mut i_t.recv)
            };
            let sealed = sender.encrypt(&field(message, "payload")).unwrap();
            assert_eq!(
                sealed,
                field(message, "ciphertext"),
                "{source}: message {}",
                n + 1
            );
            assert_eq!(
                receiver.decrypt(&sealed).unwrap(),
                field(message, "payload"),
                "{source}: message {} read",
                n + 1
            );
        }
    }
}

#[test]
fn fixed_keys_with_the_link_prologue_match_the_ordinary_handshake_with_snow() {
    // The same inputs through snow: the fixed-key path is the link's own.
    let (i, r) = (
        StaticKeypair::generate().unwrap(),
        StaticKeypair::generate().unwrap(),
    );
    let (ie, re) = ([7u8; 32], [9u8; 32]);
    let (i_state, msg1) = fixed::initiate(&i, Zeroizing::new(ie), noise::PROLOGUE, &[]).unwrap();
    let (r_state, _, msg2) =
        fixed::respond(&r, Zeroizing::new(re), noise::PROLOGUE, &msg1, &[]).unwrap();
    let (presented, _) = fixed::read_msg2(i_state, &msg2).unwrap();
    let (msg3, i_t) = fixed::finish(presented, &[]).unwrap();
    let (r_t, _) = fixed::read_msg3(r_state, &msg3).unwrap();
    assert_eq!((msg1.len(), msg2.len(), msg3.len()), (32, 96, 64));

    let mut snow_i = snow_builder(&i)
        .fixed_ephemeral_key_for_testing_only(&ie)
        .build_initiator()
        .unwrap();
    let mut snow_r = snow_builder(&r)
        .fixed_ephemeral_key_for_testing_only(&re)
        .build_responder()
        .unwrap();
    let (mut a, mut b) = (vec![0u8; 1024], vec![0u8; 1024]);
    let n = snow_i.write_message(&[], &mut a).unwrap();
    assert_eq!(a[..n], msg1);
    snow_r.read_message(&a[..n], &mut b).unwrap();
    let n = snow_r.write_message(&[], &mut a).unwrap();
    assert_eq!(a[..n], msg2);
    snow_i.read_message(&a[..n], &mut b).unwrap();
    let n = snow_i.write_message(&[], &mut a).unwrap();
    assert_eq!(a[..n], msg3);
    assert_eq!(snow_i.get_handshake_hash(), i_t.handshake_hash);
    assert_eq!(fixed::key(&i_t.send), fixed::key(&r_t.recv));
    assert_eq!(fixed::key(&i_t.recv), fixed::key(&r_t.send));
}
