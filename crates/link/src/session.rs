//! The link over TCP: handshake, hello, pairing, then a running session
//! that answers pings and notices a dead peer.
//!
//! The crypto and the timing rules live in [`crate::noise`],
//! [`crate::pairing`] and [`crate::keepalive`]; this module only moves their
//! bytes over a socket.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};
use vmux_proto::envelope::{
    Envelope, ErrorCode, ErrorReport, Hello, PROTOCOL_MAJOR, PROTOCOL_MINOR, PairCommit, PairNonce,
    PairResult, PairReveal, Ping, Pong, Role, peek_request_id,
};

use crate::backoff::Backoff;
use crate::clock::Clock;
use crate::device::Device;
use crate::keepalive::{Action, Keepalive};
use crate::noise::{self, CipherState, KEY_LEN, Transport};
use crate::pairing::{self, PairingCode};
use crate::trust::{PeerRole, PinnedPeer, TrustStore};
use crate::{Error, Fingerprint, Result, frame};

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

// ---------------------------------------------------------------- initiator

/// Connects to `address` as a requester (agent or client).
async fn dial(address: &str, device: &Device) -> Result<(TcpStream, noise::PeerPresented)> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|source| Error::Unreachable {
            address: address.to_owned(),
            source,
        })?;
    stream.set_nodelay(true)?;
    let (state, msg1) = noise::initiate(&device.keypair)?;
    write_frame(&mut stream, &msg1).await?;
    let presented = state.read_msg2(&frame::read(&mut stream).await?)?;
    Ok((stream, presented))
}

async fn finish_handshake(
    mut stream: TcpStream,
    presented: noise::PeerPresented,
) -> Result<Channel> {
    let (msg3, transport) = presented.finish()?;
    write_frame(&mut stream, &msg3).await?;
    Ok(Channel::new(stream, transport))
}

/// Opens a session with a pinned signer at `address`.
///
/// The signer's static key is checked before ours is revealed: an impostor
/// learns nothing about who we are.
pub async fn connect(
    address: &str,
    device: &Device,
    role: Role,
    trust: &mut TrustStore,
    now_ms: u64,
) -> Result<Session> {
    let session = timeout(HANDSHAKE_TIMEOUT, async {
        let (stream, presented) = dial(address, device).await?;
        let key = presented.remote_static();
        let Some(pinned) = trust.find(PeerRole::Signer, &key).cloned() else {
            let presented = Fingerprint::of(&key);
            return Err(match trust.signer_at(address) {
                Some(pinned) => Error::SignerKeyChanged {
                    name: pinned.name.clone(),
                    expected: pinned.key_fingerprint(),
                    presented,
                },
                None => Error::NotPaired { presented },
            });
        };
        let mut ch = finish_handshake(stream, presented).await?;
        ch.send(&hello(device, role, false)).await?;
        let h = expect_hello(&mut ch, &[Role::Signer]).await?;
        Ok(Session::spawn(
            ch,
            Peer::pinned(&pinned, key, h.device_name),
        ))
    })
    .await
    .map_err(|_| Error::Timeout("the signer's handshake"))??;
    // The key was checked above; only the last-seen time and address would
    // be lost, so a read-only or full state directory must not keep us
    // from a signer we trust.
    if let Err(e) = trust.touch(
        PeerRole::Signer,
        &session.peer.public_key,
        now_ms,
        Some(address),
    ) {
        tracing::warn!(
            "connected to \"{}\", but cannot record that it was reached at {address}: {e}; \
             a restarted agent looks for it at its older address (or give --signer)",
            session.peer.name
        );
    }
    Ok(session)
}

/// [`connect`], retrying what waiting can fix (signer restarting, network
/// blip) with capped backoff until `give_up_after` has passed. A key that is
/// not pinned or has changed is returned at once: retrying can't fix it.
pub async fn connect_retrying(
    address: &str,
    device: &Device,
    role: Role,
    trust: &mut TrustStore,
    clock: &dyn Clock,
    give_up_after: Duration,
) -> Result<Session> {
    let deadline = Instant::now() + give_up_after;
    let mut backoff = Backoff::default();
    loop {
        let error = match connect(address, device, role, trust, clock.now_ms()).await {
            Ok(session) => return Ok(session),
            Err(e) if e.is_permanent() => return Err(e),
            Err(e) => e,
        };
        let mut random = [0u8; 4];
        getrandom::fill(&mut random).map_err(|_| Error::Random)?;
        let wake = Instant::now() + backoff.next_delay(u32::from_le_bytes(random));
        if wake > deadline {
            return Err(error);
        }
        tracing::debug!("signer at {address} not reachable ({error}); retrying");
        sleep_until(wake).await;
    }
}

/// First contact from the requester's side: the code is known, the signer's
/// person has not decided yet.
#[derive(Debug)]
pub struct PendingPairing {
    ch: Channel,
    signer: Peer,
    code: PairingCode,
    address: String,
}

/// Starts pairing with the signer at `address`; returns once both sides can
/// show the code.
pub async fn start_pairing(address: &str, device: &Device, role: Role) -> Result<PendingPairing> {
    timeout(HANDSHAKE_TIMEOUT, async {
        let (stream, presented) = dial(address, device).await?;
        let key = presented.remote_static();
        let mut ch = finish_handshake(stream, presented).await?;
        ch.send(&hello(device, role, true)).await?;
        let h = expect_hello(&mut ch, &[Role::Signer]).await?;
        let commitment = match ch.recv().await? {
            Envelope::PairCommit(c) => pairing_value(&c.commitment)?,
            // The signer has us pinned but we came here, so we lost our
            // record of it. Pinning it now would skip the code comparison.
            Envelope::PairResult(_) => {
                return Err(Error::Peer {
                    code: ErrorCode::PairingInvalid,
                    message: format!(
                        "signer \"{}\" already has this device paired, but this device has no record of it; \
                         on the signer run `vmux peers remove \"{}\"`, then pair again",
                        h.device_name,
                        device.wire_name()
                    ),
                });
            }
            other => return Err(unexpected("pairCommit", &other)),
        };
        let our_nonce = pairing::nonce()?;
        ch.send(&Envelope::PairNonce(PairNonce { nonce: our_nonce.to_vec() })).await?;
        let their_nonce = match ch.recv().await? {
            Envelope::PairReveal(r) => pairing_value(&r.nonce)?,
            other => return Err(unexpected("pairReveal", &other)),
        };
        pairing::verify_commitment(&ch.handshake_hash, &their_nonce, &commitment)?;
        let code = PairingCode::derive(&ch.handshake_hash, &our_nonce, &their_nonce);
        let signer = Peer::unpinned(h, key);
        Ok(PendingPairing { ch, signer, code, address: address.to_owned() })
    })
    .await
    .map_err(|_| Error::Timeout("the signer to start pairing"))?
}

impl PendingPairing {
    /// The code to show this side's person.
    pub fn code(&self) -> PairingCode {
        self.code
    }

    /// The signer as it introduced itself (not yet trusted).
    pub fn signer(&self) -> &Peer {
        &self.signer
    }

    /// Waits for the signer's person; on acceptance pins the signer and
    /// returns the running session.
    pub async fn finish(mut self, trust: &mut TrustStore, now_ms: u64) -> Result<Session> {
        let reply = timeout(PAIRING_TIMEOUT + HANDSHAKE_TIMEOUT, self.ch.recv())
            .await
            .map_err(|_| Error::Timeout("the signer to accept pairing"))?;
        match reply? {
            Envelope::PairResult(PairResult { accepted: true }) => {}
            Envelope::PairResult(PairResult { accepted: false }) => {
                return Err(Error::Peer {
                    code: ErrorCode::PairingInvalid,
                    message: "pairing was rejected on the signer".into(),
                });
            }
            other => return Err(unexpected("pairResult", &other)),
        }
        let mut pinned = PinnedPeer::new(
            self.signer.device_id.clone(),
            self.signer.name.clone(),
            PeerRole::Signer,
            &self.signer.public_key,
            now_ms,
        );
        pinned.address = Some(self.address.clone());
        trust.pin(pinned)?;
        Ok(Session::spawn(self.ch, self.signer))
    }
}

// ---------------------------------------------------------------- responder

/// What a signer gets from an incoming connection.
#[derive(Debug)]
pub enum Accepted {
    /// A pinned peer: the session is running.
    Session(Session),
    /// An unknown peer asking to pair: its person must decide.
    Invitation(Invitation),
}

/// Runs the signer's side of the handshake and hello on `stream`.
///
/// A pinned peer is known by its static key, and the session carries the
/// identity pinned for it. An unknown peer gets `pairingInvalid`: one that
/// did not ask to pair with [`Error::UnknownPeer`] returned, one that did
/// while `pairing` is [`Pairing::Closed`] with [`Error::PairingClosed`].
pub async fn accept(
    stream: TcpStream,
    device: &Device,
    trust: &TrustStore,
    pairing: Pairing,
) -> Result<Accepted> {
    timeout(
        HANDSHAKE_TIMEOUT,
        accept_inner(stream, device, trust, pairing),
    )
    .await
    .map_err(|_| Error::Timeout("the requester's handshake"))?
}

async fn accept_inner(
    mut stream: TcpStream,
    device: &Device,
    trust: &TrustStore,
    pairing: Pairing,
) -> Result<Accepted> {
    stream.set_nodelay(true)?;
    let msg1 = frame::read(&mut stream).await?;
    let (state, msg2) = noise::respond(&device.keypair, &msg1)?;
    write_frame(&mut stream, &msg2).await?;
    let transport = state.read_msg3(&frame::read(&mut stream).await?)?;
    let mut ch = Channel::new(stream, transport);
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

// ---------------------------------------------------------------- session

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
    fn spawn(ch: Channel, peer: Peer) -> Self {
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
