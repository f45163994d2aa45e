//! The requester's side: connecting to a pinned signer, and pairing with a
//! new one.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};
use vmux_proto::envelope::{Envelope, ErrorCode, PairNonce, PairResult, Role};

use super::{
    Channel, HANDSHAKE_TIMEOUT, PAIRING_TIMEOUT, Peer, Session, expect_hello, hello, pairing_value,
    unexpected, write_frame,
};
use crate::backoff::Backoff;
use crate::clock::Clock;
use crate::device::Device;
use crate::noise;
use crate::pairing::{self, PairingCode};
use crate::trust::{PeerRole, PinnedPeer, TrustStore};
use crate::{Error, Fingerprint, Result, frame};

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
        &session.peer().public_key,
        now_ms,
        Some(address),
    ) {
        tracing::warn!(
            "connected to \"{}\", but cannot record that it was reached at {address}: {e}; \
             a restarted agent looks for it at its older address (or give --signer)",
            session.peer().name
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
