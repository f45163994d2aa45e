//! Handshakes with chosen ephemeral keys, prologue and payloads: only for
//! known-answer tests (the published Noise test vectors, and the vectors in
//! `docs/vectors/`).
//!
//! A handshake whose ephemeral key is known to anyone else has no forward
//! secrecy, so this module exists only with the `test-vectors` feature, which
//! only dev-dependencies turn on: a build of the binaries has no way to reach
//! it. The steps are the link's own; only their inputs are chosen here.

use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use super::{
    AwaitingMsg2, AwaitingMsg3, CipherState, KEY_LEN, PeerPresented, StaticKeypair, Transport,
};
use crate::Result;

/// Starts a handshake as initiator with ephemeral secret `ephemeral`:
/// returns the state and message 1.
pub fn initiate(
    local: &StaticKeypair,
    ephemeral: Zeroizing<[u8; KEY_LEN]>,
    prologue: &[u8],
    payload: &[u8],
) -> Result<(AwaitingMsg2, Vec<u8>)> {
    super::handshake::initiate_with(local, StaticSecret::from(*ephemeral), prologue, payload)
}

/// Reads message 1 as responder with ephemeral secret `ephemeral`: returns
/// the state, message 1's payload, and message 2.
pub fn respond(
    local: &StaticKeypair,
    ephemeral: Zeroizing<[u8; KEY_LEN]>,
    prologue: &[u8],
    msg1: &[u8],
    payload: &[u8],
) -> Result<(AwaitingMsg3, Vec<u8>, Vec<u8>)> {
    super::handshake::respond_with(
        local,
        StaticSecret::from(*ephemeral),
        prologue,
        msg1,
        payload,
    )
}

/// Reads message 2: the next state and message 2's payload.
pub fn read_msg2(state: AwaitingMsg2, msg2: &[u8]) -> Result<(PeerPresented, Vec<u8>)> {
    state.read_msg2_with(msg2)
}

/// Writes message 3 with `payload` and finishes.
pub fn finish(state: PeerPresented, payload: &[u8]) -> Result<(Vec<u8>, Transport)> {
    state.finish_with(payload)
}

/// Reads message 3: the transport and message 3's payload.
pub fn read_msg3(state: AwaitingMsg3, msg3: &[u8]) -> Result<(Transport, Vec<u8>)> {
    state.read_msg3_with(msg3)
}

/// The key of a cipher (a `Split()` output), to publish as a vector.
pub fn key(cipher: &CipherState) -> Option<[u8; KEY_LEN]> {
    cipher.key().copied()
}
