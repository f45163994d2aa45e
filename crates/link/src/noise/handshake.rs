//! The XX pattern, one type per state:
//!
//! ```text
//! -> e
//! <- e, ee, s, es
//! -> s, se
//! ```
//!
//! All payloads are empty: identities and everything else travel as
//! envelopes after the handshake.

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::cipher::{CipherState, TAG_LEN};
use super::symmetric::SymmetricState;
use super::{KEY_LEN, StaticKeypair, random_array};
use crate::{Error, Result};

const MSG1_LEN: usize = KEY_LEN;
const MSG2_LEN: usize = KEY_LEN + KEY_LEN + TAG_LEN + TAG_LEN;
const MSG3_LEN: usize = KEY_LEN + TAG_LEN + TAG_LEN;

/// Initiator, message 1 sent, waiting for message 2.
pub struct AwaitingMsg2 {
    sym: SymmetricState,
    s: StaticSecret,
    e: StaticSecret,
}

/// Initiator, message 2 read: the responder's static key is known but ours
/// has not been revealed yet, so the caller can still walk away.
pub struct PeerPresented {
    sym: SymmetricState,
    s: StaticSecret,
    re: PublicKey,
    rs: PublicKey,
}

/// Responder, message 2 sent, waiting for message 3.
pub struct AwaitingMsg3 {
    sym: SymmetricState,
    e: StaticSecret,
}

/// A finished handshake: one cipher per direction, the peer's static key and
/// the handshake hash (which pairing codes are derived from).
pub struct Transport {
    /// Encrypts what we send.
    pub send: CipherState,
    /// Decrypts what we receive.
    pub recv: CipherState,
    /// The peer's static public key, authenticated by the handshake.
    pub remote_static: [u8; KEY_LEN],
    /// The handshake hash `h` after the last message.
    pub handshake_hash: [u8; KEY_LEN],
}

/// Starts a handshake as initiator: returns the state and message 1.
pub fn initiate(local: &StaticKeypair) -> Result<(AwaitingMsg2, Vec<u8>)> {
    let mut sym = SymmetricState::new();
    let e = StaticSecret::from(*random_array()?);
    let e_pub = PublicKey::from(&e);
    sym.mix_hash(e_pub.as_bytes());
    let mut msg = e_pub.as_bytes().to_vec();
    msg.extend(sym.encrypt_and_hash(&[])?);
    Ok((
        AwaitingMsg2 {
            sym,
            s: local.secret.clone(),
            e,
        },
        msg,
    ))
}

/// Reads message 1 as responder: returns the state and message 2.
pub fn respond(local: &StaticKeypair, msg1: &[u8]) -> Result<(AwaitingMsg3, Vec<u8>)> {
    if msg1.len() != MSG1_LEN {
        return Err(Error::Handshake("message 1 has the wrong length"));
    }
    let mut sym = SymmetricState::new();
    let re = public_key(msg1)?;
    sym.mix_hash(re.as_bytes());
    sym.decrypt_and_hash(&[])?;

    let e = StaticSecret::from(*random_array()?);
    let e_pub = PublicKey::from(&e);
    sym.mix_hash(e_pub.as_bytes());
    let mut msg = e_pub.as_bytes().to_vec();
    sym.mix_key(dh(&e, &re)?.as_slice()); // ee
    msg.extend(sym.encrypt_and_hash(local.public.as_bytes())?); // s
    sym.mix_key(dh(&local.secret, &re)?.as_slice()); // es
    msg.extend(sym.encrypt_and_hash(&[])?);
    Ok((AwaitingMsg3 { sym, e }, msg))
}

impl AwaitingMsg2 {
    /// Reads message 2 and authenticates the responder's static key.
    pub fn read_msg2(mut self, msg2: &[u8]) -> Result<PeerPresented> {
        if msg2.len() != MSG2_LEN {
            return Err(Error::Handshake("message 2 has the wrong length"));
        }
        let (re_bytes, rest) = msg2.split_at(KEY_LEN);
        let (enc_s, payload) = rest.split_at(KEY_LEN + TAG_LEN);
        let re = public_key(re_bytes)?;
        self.sym.mix_hash(re.as_bytes());
        self.sym.mix_key(dh(&self.e, &re)?.as_slice()); // ee
        let rs = public_key(&self.sym.decrypt_and_hash(enc_s)?)?; // s
        self.sym.mix_key(dh(&self.e, &rs)?.as_slice()); // es
        self.sym.decrypt_and_hash(payload)?;
        Ok(PeerPresented {
            sym: self.sym,
            s: self.s,
            re,
            rs,
        })
    }
}

impl PeerPresented {
    /// The responder's static public key, to check against the trust store.
    pub fn remote_static(&self) -> [u8; KEY_LEN] {
        self.rs.to_bytes()
    }

    /// Writes message 3, revealing our static key, and finishes.
    pub fn finish(mut self) -> Result<(Vec<u8>, Transport)> {
        let s_pub = PublicKey::from(&self.s);
        let mut msg = self.sym.encrypt_and_hash(s_pub.as_bytes())?; // s
        self.sym.mix_key(dh(&self.s, &self.re)?.as_slice()); // se
        msg.extend(self.sym.encrypt_and_hash(&[])?);
        let (i_to_r, r_to_i) = self.sym.split();
        let transport = Transport {
            send: i_to_r,
            recv: r_to_i,
            remote_static: self.rs.to_bytes(),
            handshake_hash: self.sym.handshake_hash(),
        };
        Ok((msg, transport))
    }
}

impl AwaitingMsg3 {
    /// Reads message 3 and finishes; the caller then checks
    /// [`Transport::remote_static`] against its trust store.
    pub fn read_msg3(mut self, msg3: &[u8]) -> Result<Transport> {
        if msg3.len() != MSG3_LEN {
            return Err(Error::Handshake("message 3 has the wrong length"));
        }
        let (enc_s, payload) = msg3.split_at(KEY_LEN + TAG_LEN);
        let rs = public_key(&self.sym.decrypt_and_hash(enc_s)?)?; // s
        self.sym.mix_key(dh(&self.e, &rs)?.as_slice()); // se
        self.sym.decrypt_and_hash(payload)?;
        let (i_to_r, r_to_i) = self.sym.split();
        Ok(Transport {
            send: r_to_i,
            recv: i_to_r,
            remote_static: rs.to_bytes(),
            handshake_hash: self.sym.handshake_hash(),
        })
    }
}

fn public_key(bytes: &[u8]) -> Result<PublicKey> {
    let bytes: [u8; KEY_LEN] = bytes
        .try_into()
        .map_err(|_| Error::Handshake("public key has the wrong length"))?;
    Ok(PublicKey::from(bytes))
}

/// X25519, refusing low-order points: a peer must not be able to force a
/// shared secret it did not have to compute.
fn dh(secret: &StaticSecret, public: &PublicKey) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let shared = secret.diffie_hellman(public);
    if !shared.was_contributory() {
        return Err(Error::Handshake("peer sent a low-order public key"));
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

macro_rules! opaque_debug {
    ($($t:ty),*) => {$(
        impl core::fmt::Debug for $t {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_struct(stringify!($t)).finish_non_exhaustive()
            }
        }
    )*};
}
opaque_debug!(AwaitingMsg2, PeerPresented, AwaitingMsg3, Transport);
