//! The link over TCP: handshake, hello, pairing, then a running session
//! that answers pings and notices a dead peer.
//!
//! The crypto and the timing rules live in [`crate::noise`],
//! [`crate::pairing`] and [`crate::keepalive`]; this module only moves their
//! bytes over a socket.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use vmux_proto::envelope::{
    Envelope, ErrorCode, ErrorReport, Hello, PROTOCOL_MAJOR, PROTOCOL_MINOR, Role,
};

use crate::device::Device;
use crate::noise::{CipherState, KEY_LEN, Transport};
use crate::trust::PinnedPeer;
use crate::{Error, Fingerprint, Result, frame};

mod initiator;
mod responder;
mod running;

pub use initiator::{PendingPairing, connect, connect_retrying, start_pairing};
pub use responder::{Accepted, Invitation, Responding, accept, respond};
pub use running::{Session, SessionSender};

/// How long a handshake and hello may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the signer's person has to accept a pairing.
pub const PAIRING_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one frame may take to leave: a peer that stops reading must not
/// hold a task (and what it holds) forever.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// What an unpaired device asking to pair is told while the signer's
/// person has not opened a pairing window.
pub const PAIRING_CLOSED: &str =
    "The signer is not accepting new devices: on the signer press p, or start it with --pair.";

/// The device at the other end of a session.
///
/// Once the peer is pinned, `device_id` and `name` are the ones pinned at
/// pairing, found by the authenticated static key: what the peer says now
/// is only a claim ([`Peer::claimed_name`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its `deviceID`.
    pub device_id: String,
    /// Its name.
    pub name: String,
    /// Its authenticated static key.
    pub public_key: [u8; KEY_LEN],
    /// The name it gave in this session's `hello`.
    pub hello_name: String,
}

impl Peer {
    /// Its static key's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.public_key)
    }

    /// The name it gives now, when that is not the pinned one.
    pub fn claimed_name(&self) -> Option<&str> {
        (self.hello_name != self.name).then_some(self.hello_name.as_str())
    }

    /// `pinned` as met in a session whose `hello` said `hello_name`.
    fn pinned(pinned: &PinnedPeer, public_key: [u8; KEY_LEN], hello_name: String) -> Self {
        Self {
            device_id: pinned.device_id.clone(),
            name: pinned.name.clone(),
            public_key,
            hello_name,
        }
    }

    /// A peer not pinned (yet): all it has is its word.
    fn unpinned(hello: Hello, public_key: [u8; KEY_LEN]) -> Self {
        Self {
            device_id: hello.device_id,
            name: hello.device_name.clone(),
            public_key,
            hello_name: hello.device_name,
        }
    }
}

/// Whether a signer lets unpaired devices ask to pair now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pairing {
    /// Its person opened a pairing window: show them the invitation.
    Open,
    /// Refuse without troubling anyone ([`PAIRING_CLOSED`]).
    Closed,
}

/// A socket plus the two transport ciphers, before the session runs.
#[derive(Debug)]
struct Channel {
    stream: TcpStream,
    send: CipherState,
    recv: CipherState,
    remote_static: [u8; KEY_LEN],
    handshake_hash: [u8; KEY_LEN],
}

impl Channel {
    fn new(stream: TcpStream, t: Transport) -> Self {
        Self {
            stream,
            send: t.send,
            recv: t.recv,
            remote_static: t.remote_static,
            handshake_hash: t.handshake_hash,
        }
    }

    async fn send(&mut self, envelope: &Envelope) -> Result<()> {
        let ciphertext = self.send.encrypt(&envelope.encode()?)?;
        write_frame(&mut self.stream, &ciphertext).await
    }

    /// The next envelope; a peer's error envelope becomes [`Error::Peer`].
    async fn recv(&mut self) -> Result<Envelope> {
        let ciphertext = frame::read(&mut self.stream).await?;
        match Envelope::decode(&self.recv.decrypt(&ciphertext)?)? {
            Envelope::Error(e) => Err(Error::Peer {
                code: e.code,
                message: e.message,
            }),
            other => Ok(other),
        }
    }

    async fn refuse(mut self, code: ErrorCode, message: String) {
        let _ = self.send(&error_envelope(code, message)).await;
        let _ = self.stream.shutdown().await;
    }
}

fn error_envelope(code: ErrorCode, message: String) -> Envelope {
    Envelope::Error(ErrorReport {
        code,
        message,
        request_id: None,
    })
}

fn hello(device: &Device, role: Role, pairing: bool) -> Envelope {
    Envelope::Hello(Hello {
        protocol_major: PROTOCOL_MAJOR,
        protocol_minor: PROTOCOL_MINOR,
        device_id: device.id.clone(),
        // A long host name must not make every hello fail.
        device_name: device.wire_name(),
        role,
        pairing,
    })
}

fn pairing_value(bytes: &[u8]) -> Result<[u8; KEY_LEN]> {
    bytes
        .try_into()
        .map_err(|_| Error::Handshake("pairing value is not 32 bytes"))
}

fn unexpected(expected: &'static str, got: &Envelope) -> Error {
    Error::Unexpected {
        expected,
        got: got.type_name(),
    }
}

/// The peer's `hello`, from one of `roles`. Anything else, including a
/// `hello` refused at decode (a name holding a control character, say), is
/// answered with `malformedRequest` naming what was wrong (the caller then
/// drops the connection).
async fn expect_hello(ch: &mut Channel, roles: &[Role]) -> Result<Hello> {
    let error = match ch.recv().await {
        Ok(Envelope::Hello(h)) if roles.contains(&h.role) => return Ok(h),
        Ok(Envelope::Hello(_)) => Error::Unexpected {
            expected: "hello from another role",
            got: "hello",
        },
        Ok(other) => unexpected("hello", &other),
        Err(e @ Error::Proto(_)) => e,
        Err(e) => return Err(e),
    };
    let _ = ch
        .send(&error_envelope(
            ErrorCode::MalformedRequest,
            error.to_string(),
        ))
        .await;
    Err(error)
}

/// Who may open a session with a signer.
const REQUESTERS: &[Role] = &[Role::Agent, Role::Client];

/// Writes one frame within [`WRITE_TIMEOUT`].
async fn write_frame<W: tokio::io::AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> Result<()> {
    timeout(WRITE_TIMEOUT, frame::write(w, body))
        .await
        .map_err(|_| Error::Timeout("the peer to read what was sent"))?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every frame the link sends goes through `write_frame`: a peer that
    /// stops reading fails the write at the bound, and the session task
    /// (and what it holds) does not wait forever. Paused time: no real wait.
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_fails_the_write_at_the_bound() {
        // 1 KiB of buffer that nobody drains.
        let (mut to_peer, _peer) = tokio::io::duplex(1024);
        let started = tokio::time::Instant::now();
        write_frame(&mut to_peer, &[7; 512]).await.unwrap();
        let err = timeout(2 * WRITE_TIMEOUT, write_frame(&mut to_peer, &[7; 4096]))
            .await
            .expect("the write never gave up")
            .unwrap_err();
        assert!(matches!(err, Error::Timeout(_)), "{err}");
        assert_eq!(started.elapsed(), WRITE_TIMEOUT);
    }
}
