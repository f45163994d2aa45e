//! The XX pattern, one type per state:
//!
//! ```text
//! -> e
//! <- e, ee, s, es
//! -> s, se
//! ```
//!
//! On the link all payloads are empty and the prologue is [`PROLOGUE`]:
//! identities and everything else travel as envelopes after the handshake.
//! The steps below take payloads and a prologue anyway, so that the
//! published Noise test vectors can run through this very code
//! ([`super::fixed`]).

use x25519_dalek::{PublicKey, SharedSecret, StaticSecret};

use super::cipher::{CipherState, TAG_LEN};
use super::symmetric::SymmetricState;
use super::{KEY_LEN, PROLOGUE, StaticKeypair, random_array};
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

/// A fresh ephemeral key from the OS random source: the only kind the link
/// uses. (x25519-dalek takes the bytes by value; the wiped buffer is ours,
/// the copy it moves into the key is wiped when the key drops.)
fn fresh_ephemeral() -> Result<StaticSecret> {
    Ok(StaticSecret::from(*random_array()?))
}

/// Starts a handshake as initiator: returns the state and message 1.
pub fn initiate(local: &StaticKeypair) -> Result<(AwaitingMsg2, Vec<u8>)> {
    initiate_with(local, fresh_ephemeral()?, PROLOGUE, &[])
}

/// Reads message 1 as responder: returns the state and message 2.
pub fn respond(local: &StaticKeypair, msg1: &[u8]) -> Result<(AwaitingMsg3, Vec<u8>)> {
    if msg1.len() != MSG1_LEN {
        return Err(Error::Handshake("message 1 has the wrong length"));
    }
    let (state, _, msg2) = respond_with(local, fresh_ephemeral()?, PROLOGUE, msg1, &[])?;
    Ok((state, msg2))
}

pub(crate) fn initiate_with(
    local: &StaticKeypair,
    e: StaticSecret,
    prologue: &[u8],
    payload: &[u8],
) -> Result<(AwaitingMsg2, Vec<u8>)> {
    let mut sym = SymmetricState::new(prologue);
    let e_pub = PublicKey::from(&e);
    sym.mix_hash(e_pub.as_bytes());
    let mut msg = e_pub.as_bytes().to_vec();
    msg.extend(sym.encrypt_and_hash(payload)?);
    let s = local.secret.clone();
    Ok((AwaitingMsg2 { sym, s, e }, msg))
}

/// Reads message 1 and writes message 2: the state, message 1's payload and
/// message 2.
pub(crate) fn respond_with(
    local: &StaticKeypair,
    e: StaticSecret,
    prologue: &[u8],
    msg1: &[u8],
    payload: &[u8],
) -> Result<(AwaitingMsg3, Vec<u8>, Vec<u8>)> {
    let (re_bytes, rest) = msg1
        .split_at_checked(KEY_LEN)
        .ok_or(Error::Handshake("message 1 is too short"))?;
    let mut sym = SymmetricState::new(prologue);
    let re = public_key(re_bytes)?;
    sym.mix_hash(re.as_bytes());
    let received = sym.decrypt_and_hash(rest)?;

    let e_pub = PublicKey::from(&e);
    sym.mix_hash(e_pub.as_bytes());
    let mut msg = e_pub.as_bytes().to_vec();
    sym.mix_key(dh(&e, &re)?.as_bytes()); // ee
    msg.extend(sym.encrypt_and_hash(local.public.as_bytes())?); // s
    sym.mix_key(dh(&local.secret, &re)?.as_bytes()); // es
    msg.extend(sym.encrypt_and_hash(payload)?);
    Ok((AwaitingMsg3 { sym, e }, received, msg))
}

impl AwaitingMsg2 {
    /// Reads message 2 and authenticates the responder's static key.
    pub fn read_msg2(self, msg2: &[u8]) -> Result<PeerPresented> {
        if msg2.len() != MSG2_LEN {
            return Err(Error::Handshake("message 2 has the wrong length"));
        }
        Ok(self.read_msg2_with(msg2)?.0)
    }

    /// Reads message 2: the next state and message 2's payload.
    pub(crate) fn read_msg2_with(mut self, msg2: &[u8]) -> Result<(PeerPresented, Vec<u8>)> {
        let (re_bytes, rest) = msg2
            .split_at_checked(KEY_LEN)
            .ok_or(Error::Handshake("message 2 is too short"))?;
        let (enc_s, payload) = rest
            .split_at_checked(KEY_LEN + TAG_LEN)
            .ok_or(Error::Handshake("message 2 is too short"))?;
        let re = public_key(re_bytes)?;
        self.sym.mix_hash(re.as_bytes());
        self.sym.mix_key(dh(&self.e, &re)?.as_bytes()); // ee
        let rs = public_key(&self.sym.decrypt_and_hash(enc_s)?)?; // s
        self.sym.mix_key(dh(&self.e, &rs)?.as_bytes()); // es
        let received = self.sym.decrypt_and_hash(payload)?;
        let presented = PeerPresented {
            sym: self.sym,
            s: self.s,
            re,
            rs,
        };
        Ok((presented, received))
    }
}

impl PeerPresented {
    /// The responder's static public key, to check against the trust store.
    pub fn remote_static(&self) -> [u8; KEY_LEN] {
        self.rs.to_bytes()
    }

    /// Writes message 3, revealing our static key, and finishes.
    pub fn finish(self) -> Result<(Vec<u8>, Transport)> {
        self.finish_with(&[])
    }

    pub(crate) fn finish_with(mut self, payload: &[u8]) -> Result<(Vec<u8>, Transport)> {
        let s_pub = PublicKey::from(&self.s);
        let mut msg = self.sym.encrypt_and_hash(s_pub.as_bytes())?; // s
        self.sym.mix_key(dh(&self.s, &self.re)?.as_bytes()); // se
        msg.extend(self.sym.encrypt_and_hash(payload)?);
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
    pub fn read_msg3(self, msg3: &[u8]) -> Result<Transport> {
        if msg3.len() != MSG3_LEN {
            return Err(Error::Handshake("message 3 has the wrong length"));
        }
        Ok(self.read_msg3_with(msg3)?.0)
    }

    /// Reads message 3: the transport and message 3's payload.
    pub(crate) fn read_msg3_with(mut self, msg3: &[u8]) -> Result<(Transport, Vec<u8>)> {
        let (enc_s, payload) = msg3
            .split_at_checked(KEY_LEN + TAG_LEN)
            .ok_or(Error::Handshake("message 3 is too short"))?;
        let rs = public_key(&self.sym.decrypt_and_hash(enc_s)?)?; // s
        self.sym.mix_key(dh(&self.e, &rs)?.as_bytes()); // se
        let received = self.sym.decrypt_and_hash(payload)?;
        let (i_to_r, r_to_i) = self.sym.split();
        let transport = Transport {
            send: r_to_i,
            recv: i_to_r,
            remote_static: rs.to_bytes(),
            handshake_hash: self.sym.handshake_hash(),
        };
        Ok((transport, received))
    }
}

fn public_key(bytes: &[u8]) -> Result<PublicKey> {
    let bytes: [u8; KEY_LEN] = bytes
        .try_into()
        .map_err(|_| Error::Handshake("public key has the wrong length"))?;
    Ok(PublicKey::from(bytes))
}

/// X25519, refusing low-order points: a peer must not be able to force a
/// shared secret it did not have to compute. The result wipes itself.
fn dh(secret: &StaticSecret, public: &PublicKey) -> Result<SharedSecret> {
    let shared = secret.diffie_hellman(public);
    if !shared.was_contributory() {
        return Err(Error::Handshake("peer sent a low-order public key"));
    }
    Ok(shared)
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
