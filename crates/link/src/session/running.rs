//! A running session: envelopes in and out, keepalive, a dead peer noticed.

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};
use vmux_proto::envelope::{Envelope, ErrorCode, ErrorReport, Ping, Pong, peek_request_id};

use super::{Channel, Peer, error_envelope, write_frame};
use crate::keepalive::{Action, Keepalive};
use crate::noise::{CipherState, KEY_LEN};
use crate::{Error, Result, frame};

/// A running session: envelopes in and out, pings answered, a peer silent
/// for 15 s declared dead. Dropping it closes the connection, even while
/// [`SessionSender`]s remain (they then fail, and their `closed` resolves).
#[derive(Debug)]
pub struct Session {
    peer: Peer,
    handshake_hash: [u8; KEY_LEN],
    outgoing: mpsc::Sender<Envelope>,
    incoming: mpsc::Receiver<Result<Envelope>>,
    /// Dropped with the session: tells the session task to stop.
    _close: oneshot::Sender<()>,
}

/// A cloneable handle for sending on a session from several tasks.
#[derive(Clone, Debug)]
pub struct SessionSender(mpsc::Sender<Envelope>);

impl SessionSender {
    /// Queues `envelope`; fails once the session has ended.
    pub async fn send(&self, envelope: Envelope) -> Result<()> {
        self.0.send(envelope).await.map_err(|_| Error::Closed)
    }

    /// Resolves when the session has ended.
    pub async fn closed(&self) {
        self.0.closed().await;
    }
}

impl Session {
    pub(super) fn spawn(ch: Channel, peer: Peer) -> Self {
        let (outgoing, out_rx) = mpsc::channel(64);
        let (in_tx, incoming) = mpsc::channel(256);
        let (close, closed) = oneshot::channel();
        let handshake_hash = ch.handshake_hash;
        tokio::spawn(run(ch, out_rx, in_tx, closed));
        Self {
            peer,
            handshake_hash,
            outgoing,
            incoming,
            _close: close,
        }
    }

    /// The authenticated peer.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The Noise handshake hash, unique to this session.
    pub fn handshake_hash(&self) -> [u8; KEY_LEN] {
        self.handshake_hash
    }

    /// A handle for sending from other tasks.
    pub fn sender(&self) -> SessionSender {
        SessionSender(self.outgoing.clone())
    }

    /// Sends one envelope.
    pub async fn send(&self, envelope: Envelope) -> Result<()> {
        self.outgoing
            .send(envelope)
            .await
            .map_err(|_| Error::Closed)
    }

    /// The next envelope from the peer; an error says why the session ended.
    /// Error envelopes from the peer are delivered as they are.
    pub async fn recv(&mut self) -> Result<Envelope> {
        self.incoming.recv().await.unwrap_or(Err(Error::Closed))
    }
}

/// The session task: the only owner of the ciphers and the write half.
async fn run(
    ch: Channel,
    mut out_rx: mpsc::Receiver<Envelope>,
    in_tx: mpsc::Sender<Result<Envelope>>,
    mut closed: oneshot::Receiver<()>,
) {
    let Channel {
        stream,
        mut send,
        mut recv,
        ..
    } = ch;
    let (read_half, mut write_half) = stream.into_split();
    // Reading a frame is not cancel-safe, so a task of its own does it and
    // hands whole frames over.
    let (frame_tx, mut frame_rx) = mpsc::channel(16);
    let reader = tokio::spawn(read_frames(read_half, frame_tx));
    let mut keepalive = Keepalive::new(std::time::Instant::now());

    let outcome: Result<()> = loop {
        let wake = match keepalive.poll(std::time::Instant::now()) {
            Action::Dead => break Err(Error::Timeout("the peer (silent for 15 s)")),
            Action::Ping(seq) => {
                if let Err(e) =
                    write_envelope(&mut write_half, &mut send, &Envelope::Ping(Ping { seq })).await
                {
                    break Err(e);
                }
                continue;
            }
            Action::WaitUntil(at) => Instant::from_std(at),
        };
        tokio::select! {
            received = frame_rx.recv() => {
                let ciphertext = match received {
                    Some(Ok(c)) => c,
                    Some(Err(e)) => break Err(e),
                    None => break Err(Error::Closed),
                };
                // Any failure to authenticate ends the session: there is no
                // way to resynchronise a counter-nonce channel, and trying
                // would turn a tampering attempt into a replay window.
                let plaintext = match recv.decrypt(&ciphertext) {
                    Ok(p) => p,
                    Err(e) => break Err(e),
                };
                keepalive.heard(std::time::Instant::now());
                match Envelope::decode(&plaintext) {
                    Ok(Envelope::Ping(Ping { seq })) => {
                        if let Err(e) = write_envelope(&mut write_half, &mut send, &Envelope::Pong(Pong { seq })).await {
                            break Err(e);
                        }
                    }
                    Ok(Envelope::Pong(_)) => {}
                    Ok(envelope) => {
                        if in_tx.send(Ok(envelope)).await.is_err() {
                            break Ok(());
                        }
                    }
                    Err(vmux_proto::Error::UnsupportedVersion { got, supported }) => {
                        let e = vmux_proto::Error::UnsupportedVersion { got, supported };
                        let reply = error_envelope(ErrorCode::MalformedRequest, e.to_string());
                        let _ = write_envelope(&mut write_half, &mut send, &reply).await;
                        break Err(e.into());
                    }
                    Err(e) => {
                        // An authenticated peer sent something we can't read
                        // (a newer envelope type, say): say so and go on.
                        let reply = Envelope::Error(ErrorReport {
                            code: ErrorCode::MalformedRequest,
                            message: e.to_string(),
                            request_id: peek_request_id(&plaintext),
                        });
                        if let Err(e) = write_envelope(&mut write_half, &mut send, &reply).await {
                            break Err(e);
                        }
                    }
                }
            }
            queued = out_rx.recv() => {
                let Some(envelope) = queued else { break Ok(()) };
                if let Err(e) = write_envelope(&mut write_half, &mut send, &envelope).await {
                    break Err(e);
                }
            }
            () = sleep_until(wake) => {}
            // The owner dropped the session.
            _ = &mut closed => {
                // What was already queued (a last error, say) still goes.
                while let Ok(envelope) = out_rx.try_recv() {
                    if write_envelope(&mut write_half, &mut send, &envelope).await.is_err() {
                        break;
                    }
                }
                break Ok(());
            }
        }
    };
    reader.abort();
    let _ = write_half.shutdown().await;
    if let Err(e) = outcome {
        tracing::debug!("link session ended: {e}");
        let _ = in_tx.send(Err(e)).await;
    }
}

async fn read_frames(mut read_half: OwnedReadHalf, frames: mpsc::Sender<Result<Vec<u8>>>) {
    loop {
        let frame = frame::read(&mut read_half).await;
        let failed = frame.is_err();
        if frames.send(frame).await.is_err() || failed {
            return;
        }
    }
}

async fn write_envelope(
    w: &mut OwnedWriteHalf,
    send: &mut CipherState,
    envelope: &Envelope,
) -> Result<()> {
    let ciphertext = send.encrypt(&envelope.encode()?)?;
    write_frame(w, &ciphertext).await
}
