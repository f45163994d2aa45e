//! The hand-assembled Noise XX against itself and against `snow`, an
//! independent implementation, plus the tampering cases.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use vmux_link::noise::{self, StaticKeypair, Transport};
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
fn a_flipped_bit_anywhere_fails_authentication() {
    let (i, r) = (
        StaticKeypair::generate().unwrap(),
        StaticKeypair::generate().unwrap(),
    );
    let len = b"sign this".len() + noise::TAG_LEN;
    for bit in 0..len * 8 {
        // A fresh session each time: a failed decrypt has spent the counter.
        let (mut i_t, mut r_t) = handshake(&i, &r);
        let mut c = i_t.send.encrypt(b"sign this").unwrap();
        c[bit / 8] ^= 1 << (bit % 8);
        assert!(r_t.recv.decrypt(&c).is_err(), "bit {bit} went unnoticed");
    }
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
