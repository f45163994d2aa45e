//! The signer's accept loop and per-session request handling. Each kind
//! of request reads one way through its own file: [`pairing`], [`sign`]
//! and [`certificate`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use vmux_link::clock::Clock;
use vmux_link::device::Device;
use vmux_link::home::Home;
use vmux_link::session::{self, Accepted, Peer, Session, SessionSender};
use vmux_link::trust::{PeerRole, TrustStore};
use vmux_link::{Error, Result};
use vmux_proto::envelope::{
    CertificateRequest, Envelope, ErrorCode, KeyList, SignRequest, limits::MAX_PENDING_REQUESTS,
};

use crate::approval::Approvals;
use crate::checks::{self, Refusal, ReplayCache};
use crate::identities::Identities;
use crate::log::Log;

mod certificate;
mod pairing;
mod sign;
mod verification;

/// Handshakes (including pairing code exchanges) in progress at once.
const MAX_CONCURRENT_HANDSHAKES: usize = 64;
/// Pairing invitations waiting for the person at once.
const MAX_PENDING_INVITATIONS: usize = 4;

/// Signer settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long a pairing invitation waits for the person.
    pub pairing_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            pairing_timeout: session::PAIRING_TIMEOUT,
        }
    }
}

/// A running signer.
#[derive(Debug)]
pub struct Signer {
    device: Device,
    home: Home,
    trust: Mutex<TrustStore>,
    approvals: Approvals,
    clock: Arc<dyn Clock>,
    config: Config,
    invitations: Semaphore,
    replays: std::sync::Mutex<ReplayCache>,
    log: Log,
}

impl Signer {
    /// A signer for `device` keeping its state in `home` and asking its
    /// person through `approvals`.
    pub fn new(
        device: Device,
        home: Home,
        approvals: Approvals,
        clock: Arc<dyn Clock>,
        config: Config,
    ) -> Result<Arc<Self>> {
        let trust = TrustStore::load(&home)?;
        if let Some(warning) = crate::identities::ca_warning(&home) {
            tracing::warn!("{warning}");
        }
        let log = Log::at(home.file("signer-log.jsonl"));
        Ok(Arc::new(Self {
            device,
            home,
            trust: Mutex::new(trust),
            approvals,
            clock,
            config,
            invitations: Semaphore::new(MAX_PENDING_INVITATIONS),
            replays: std::sync::Mutex::new(ReplayCache::default()),
            log,
        }))
    }

    /// This signer's device identity.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Accepts connections until the listener fails.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        // Unauthenticated peers can hold a handshake open for up to
        // HANDSHAKE_TIMEOUT; bounding how many at once keeps a flood of them
        // from exhausting the signer.
        let handshakes = Arc::new(Semaphore::new(MAX_CONCURRENT_HANDSHAKES));
        loop {
            let (stream, from) = listener.accept().await?;
            let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
                tracing::warn!("dropping connection from {from}: too many handshakes in progress");
                continue;
            };
            tokio::spawn(Arc::clone(&self).handle(stream, from, permit));
        }
    }

    async fn handle(
        self: Arc<Self>,
        stream: TcpStream,
        from: SocketAddr,
        handshake: OwnedSemaphorePermit,
    ) {
        // The handshake checks against a snapshot: pinning happens only
        // under the lock, after the person accepts.
        let trust = self.trust.lock().await.clone();
        let accepted = session::accept(stream, &self.device, &trust).await;
        drop(handshake);
        let outcome = match accepted {
            Ok(Accepted::Session(session)) => {
                let key = session.peer().public_key;
                let now = self.clock.now_ms();
                if let Err(e) = self
                    .trust
                    .lock()
                    .await
                    .touch(PeerRole::Requester, &key, now, None)
                {
                    tracing::warn!("could not record last-seen time: {e}");
                }
                tracing::info!("session with \"{}\" from {from}", session.peer().name);
                Arc::clone(&self).run_session(session).await
            }
            Ok(Accepted::Invitation(invitation)) => Arc::clone(&self).pair(invitation).await,
            Err(e @ Error::UnknownPeer { .. }) => {
                tracing::warn!("{e} (from {from})");
                Ok(())
            }
            Err(e) => Err(e),
        };
        match outcome {
            // Includes a requester that hung up on seeing our key: normal
            // for `vmux pair` checking whether it is already paired.
            Err(Error::Closed) => tracing::debug!("connection from {from} closed"),
            Err(e) => tracing::info!("connection from {from} ended: {e}"),
            Ok(()) => {}
        }
    }

    /// Answers requests until the peer leaves. Each request runs in its own
    /// task, so a sheet waiting for the person never holds up a key list.
    async fn run_session(self: Arc<Self>, mut session: Session) -> Result<()> {
        let pending = Arc::new(AtomicUsize::new(0));
        let peer = session.peer().clone();
        loop {
            match session.recv().await? {
                Envelope::KeyListRequest(_) => session.send(self.key_list()).await?,
                Envelope::SignRequest(r) => {
                    self.spawn_request(&session.sender(), &pending, &peer, Request::Sign(r))
                }
                Envelope::CertificateRequest(r) => {
                    self.spawn_request(&session.sender(), &pending, &peer, Request::Certificate(r));
                }
                Envelope::Error(e) => {
                    tracing::info!("\"{}\" reported: {} ({})", peer.name, e.message, e.code)
                }
                other => tracing::debug!("ignoring {} from \"{}\"", other.type_name(), peer.name),
            }
        }
    }

    fn key_list(&self) -> Envelope {
        match Identities::load(&self.home) {
            Ok(ids) => Envelope::KeyList(KeyList {
                keys: ids.records(),
                ca_public_key: ids.ca_public_key_blob(),
            }),
            Err(e) => {
                tracing::warn!("cannot read identities: {e}");
                Envelope::KeyList(KeyList {
                    keys: Vec::new(),
                    ca_public_key: None,
                })
            }
        }
    }

    fn spawn_request(
        self: &Arc<Self>,
        reply: &SessionSender,
        pending: &Arc<AtomicUsize>,
        peer: &Peer,
        request: Request,
    ) {
        let (signer, reply, pending, peer) = (
            Arc::clone(self),
            reply.clone(),
            Arc::clone(pending),
            peer.clone(),
        );
        tokio::spawn(async move {
            let busy = pending.fetch_add(1, Ordering::SeqCst) >= MAX_PENDING_REQUESTS;
            let work = async {
                match request {
                    Request::Sign(r) => Envelope::SignResponse(signer.sign(&peer, r, busy).await),
                    Request::Certificate(r) => {
                        Envelope::CertificateResponse(signer.certificate(&peer, r, busy).await)
                    }
                }
            };
            // A device that disconnects takes its requests with it: their
            // sheets are withdrawn rather than left for the person to answer.
            let answer = tokio::select! {
                answer = work => Some(answer),
                () = reply.closed() => None,
            };
            pending.fetch_sub(1, Ordering::SeqCst);
            let delivered = match answer {
                Some(answer) => reply.send(answer).await.is_ok(),
                None => false,
            };
            if !delivered {
                tracing::info!(
                    "\"{}\" left before its answer could be delivered",
                    peer.name
                );
            }
        });
    }

    /// Checks shared by sign and certificate requests: §9.3 checks 2–5.
    fn admit(
        &self,
        peer: &Peer,
        busy: bool,
        source: &str,
        nonce: &[u8],
        issued: u64,
        expires: u64,
    ) -> Result<(), Refusal> {
        if source != peer.device_id {
            return Err((
                ErrorCode::MalformedRequest,
                "sourceDeviceID does not match the paired device".into(),
            ));
        }
        if busy {
            return Err((
                ErrorCode::SignerBusy,
                "too many requests waiting on the signer; try again shortly".into(),
            ));
        }
        let now = self.clock.now_ms();
        checks::window(issued, expires, now)?;
        let mut replays = self
            .replays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        replays.admit(peer.public_key, nonce, expires, now)
    }

    /// The tokio instant at which a request's window closes.
    fn deadline(&self, expires_ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(expires_ms.saturating_sub(self.clock.now_ms()))
    }
}

enum Request {
    Sign(SignRequest),
    Certificate(CertificateRequest),
}

fn internal(e: impl std::fmt::Display) -> Refusal {
    (ErrorCode::Internal, format!("the signer failed: {e}"))
}

fn outcome<T>(result: &Result<T, Refusal>) -> String {
    match result {
        Ok(_) => "approved".into(),
        Err((code, _)) => code.as_str().into(),
    }
}
