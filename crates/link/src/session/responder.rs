//! The signer's side: the handshake, then a pinned peer's session or an
//! unknown peer's pairing invitation.

use tokio::net::TcpStream;
use tokio::time::timeout;
use vmux_proto::envelope::{Envelope, ErrorCode, PairCommit, PairResult, PairReveal, Role};

use super::{
    Channel, HANDSHAKE_TIMEOUT, PAIRING_CLOSED, Pairing, Peer, REQUESTERS, Session, expect_hello,
    hello, pairing_value, unexpected, write_frame,
};
use crate::device::Device;
use crate::noise::{self, KEY_LEN};
use crate::pairing::{self, PairingCode};
use crate::trust::{PeerRole, PinnedPeer, TrustStore};
use crate::{Error, Result, frame};

/// What a signer gets from an incoming connection.
#[derive(Debug)]
pub enum Accepted {
    /// A pinned peer: the session is running.
    Session(Session),
    /// An unknown peer asking to pair: its person must decide.
    Invitation(Invitation),
}

/// Runs the signer's side of the handshake and hello on `stream`, within
/// [`HANDSHAKE_TIMEOUT`]: [`respond`], then [`Responding::finish`].
pub async fn accept(
    stream: TcpStream,
    device: &Device,
    trust: &TrustStore,
    pairing: Pairing,
) -> Result<Accepted> {
    timeout(HANDSHAKE_TIMEOUT, async {
        respond(stream, device)
            .await?
            .finish(device, trust, pairing)
            .await
    })
    .await
    .map_err(|_| Error::Timeout("the requester's handshake"))?
}

/// The signer's side once handshake message 3 is read: the requester's
/// static key is authenticated and nothing else has been said. Here the
/// signer can tell a pinned key from a stranger's before any `hello`, and
/// refuse one it has no room for.
#[derive(Debug)]
pub struct Responding {
    ch: Channel,
}

/// Runs handshake messages 1 to 3 on `stream`. No deadline of its own: the
/// caller bounds it (a stranger's silence should cost less than setup's
/// 10 s).
pub async fn respond(mut stream: TcpStream, device: &Device) -> Result<Responding> {
    stream.set_nodelay(true)?;
    let msg1 = frame::read(&mut stream).await?;
    let (state, msg2) = noise::respond(&device.keypair, &msg1)?;
    write_frame(&mut stream, &msg2).await?;
    let transport = state.read_msg3(&frame::read(&mut stream).await?)?;
    Ok(Responding {
        ch: Channel::new(stream, transport),
    })
}

impl Responding {
    /// The requester's authenticated static key.
    pub fn remote_static(&self) -> [u8; KEY_LEN] {
        self.ch.remote_static
    }

    /// Turns the requester away with `error{code, message}` in place of our
    /// `hello`. Its `hello` is read first: closing with it unread would
    /// reset the connection before our error arrives.
    pub async fn refuse(mut self, code: ErrorCode, message: String) {
        let _ = self.ch.recv().await;
        self.ch.refuse(code, message).await;
    }

    /// The `hello`s, then a pinned peer's running session or an unknown
    /// peer's pairing invitation.
    ///
    /// A pinned peer is known by its static key, and the session carries
    /// the identity pinned for it. An unknown peer gets `pairingInvalid`:
    /// one that did not ask to pair with [`Error::UnknownPeer`] returned,
    /// one that did while `pairing` is [`Pairing::Closed`] with
    /// [`Error::PairingClosed`].
    pub async fn finish(
        self,
        device: &Device,
        trust: &TrustStore,
        pairing: Pairing,
    ) -> Result<Accepted> {
        hellos(self.ch, device, trust, pairing).await
    }
}

async fn hellos(
    mut ch: Channel,
    device: &Device,
    trust: &TrustStore,
    pairing: Pairing,
) -> Result<Accepted> {
    let h = expect_hello(&mut ch, REQUESTERS).await?;
    let key = ch.remote_static;

    if let Some(pinned) = trust.find(PeerRole::Requester, &key) {
        let peer = Peer::pinned(pinned, key, h.device_name);
        ch.send(&hello(device, Role::Signer, false)).await?;
        if h.pairing {
            // Already pinned: say so rather than show a code for nothing.
            ch.send(&Envelope::PairResult(PairResult { accepted: true }))
                .await?;
        }
        return Ok(Accepted::Session(Session::spawn(ch, peer)));
    }
    let wants_pairing = h.pairing;
    let peer = Peer::unpinned(h, key);
    if wants_pairing && pairing == Pairing::Closed {
        let presented = peer.fingerprint();
        ch.refuse(ErrorCode::PairingInvalid, PAIRING_CLOSED.to_owned())
            .await;
        return Err(Error::PairingClosed {
            name: peer.name,
            presented,
        });
    }
    if !wants_pairing {
        let presented = peer.fingerprint();
        ch.refuse(
            ErrorCode::PairingInvalid,
            format!(
                "this device is not paired with signer \"{}\"; run `vmux pair` first",
                device.name
            ),
        )
        .await;
        return Err(Error::UnknownPeer {
            name: peer.name,
            presented,
        });
    }

    ch.send(&hello(device, Role::Signer, false)).await?;
    let our_nonce = pairing::nonce()?;
    let commitment = pairing::commitment(&ch.handshake_hash, &our_nonce);
    ch.send(&Envelope::PairCommit(PairCommit {
        commitment: commitment.to_vec(),
    }))
    .await?;
    let their_nonce = match ch.recv().await? {
        Envelope::PairNonce(n) => pairing_value(&n.nonce)?,
        other => return Err(unexpected("pairNonce", &other)),
    };
    ch.send(&Envelope::PairReveal(PairReveal {
        nonce: our_nonce.to_vec(),
    }))
    .await?;
    let code = PairingCode::derive(&ch.handshake_hash, &their_nonce, &our_nonce);
    Ok(Accepted::Invitation(Invitation { ch, peer, code }))
}

/// An unknown device asking to pair, with the code its person sees.
#[derive(Debug)]
pub struct Invitation {
    ch: Channel,
    peer: Peer,
    code: PairingCode,
}

impl Invitation {
    /// The code to compare with the requester's.
    pub fn code(&self) -> PairingCode {
        self.code
    }

    /// The device asking.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The person accepted: tell the requester, pin it, run the session.
    /// `trust` is locked only to pin, after the requester was told.
    pub async fn accept(mut self, trust: &mut TrustStore, now_ms: u64) -> Result<Session> {
        // Told first and pinned second, so a requester that already left is
        // not pinned.
        self.ch
            .send(&Envelope::PairResult(PairResult { accepted: true }))
            .await?;
        trust.pin(PinnedPeer::new(
            self.peer.device_id.clone(),
            self.peer.name.clone(),
            PeerRole::Requester,
            &self.peer.public_key,
            now_ms,
        ))?;
        Ok(Session::spawn(self.ch, self.peer))
    }

    /// The person rejected it, or did not answer in time. Nothing is pinned.
    pub async fn reject(self, why: &str) {
        self.ch
            .refuse(ErrorCode::PairingInvalid, why.to_owned())
            .await;
    }
}
