//! The signer's accept loop and per-session request handling. Each kind
//! of request reads one way through its own file: [`pairing`], [`sign`]
//! and [`certificate`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};
use tokio::time::Instant;
use vmux_link::clock::Clock;
use vmux_link::device::Device;
use vmux_link::home::Home;
use vmux_link::session::{self, Peer, Session, SessionSender};
use vmux_link::trust::{self, PeerRole, TrustStore};
use vmux_link::{Fingerprint, Result};
use vmux_proto::envelope::{
    CertificateRequest, DeviceTokenUpdate, Envelope, ErrorCode, ErrorReport, KeyList, SignRequest,
    limits::MAX_PENDING_REQUESTS,
};
use vmux_proto::text::escape;

use crate::approval::{Approvals, PairingWindow};
use crate::checks::{self, Refusal, ReplayCache};
use crate::identities::Identities;
use crate::log::{Entry, Log};

mod accept;
mod certificate;
mod handshakes;
mod names;
mod pairing;
mod push;
mod sessions;
mod sign;
mod verification;

use sessions::Sessions;

/// At most one "refused pairing" banner this often: strangers can cause
/// them, and must not fill the person's screen.
const REFUSED_PAIRING_BANNER_EVERY: Duration = Duration::from_secs(30);
/// Pairing invitations waiting for the person at once.
const MAX_PENDING_INVITATIONS: usize = 4;

/// Signer settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long a pairing invitation waits for the person.
    pub pairing_timeout: Duration,
    /// The push endpoint devices may POST to when they cannot reach us
    /// (`deviceTokenUpdate`); `None` tells them to forget any they hold.
    pub wake_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            pairing_timeout: session::PAIRING_TIMEOUT,
            wake_url: None,
        }
    }
}

/// The requests of one session still waiting for their answer, by
/// `requestID`, each with the number of its spawn: a `cancel` from that
/// session withdraws them.
type Cancels = Arc<std::sync::Mutex<HashMap<String, (u64, oneshot::Sender<()>)>>>;

/// A running signer.
///
/// It keeps no trust store in memory: each handshake and each request reads
/// `trust.json` as it is now, and every change to it is a locked
/// read-modify-write (see [`vmux_link::trust`]), so `vmux peers remove` in
/// another process takes effect at once and is never undone.
#[derive(Debug)]
pub struct Signer {
    device: Device,
    home: Home,
    approvals: Approvals,
    window: PairingWindow,
    clock: Arc<dyn Clock>,
    config: Config,
    invitations: Semaphore,
    /// When a refused pairing was last shown to the person.
    refused_pairing_shown: std::sync::Mutex<Option<Instant>>,
    /// When a flood's effect was last logged.
    flood_warned: std::sync::Mutex<Option<Instant>>,
    sessions: Sessions,
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
        // Fails early on a corrupt store, with the file named.
        TrustStore::load(&home)?;
        if let Some(warning) = crate::identities::ca_warning(&home) {
            tracing::warn!("{warning}");
        }
        let log = Log::at(home.file(crate::log::LOG_FILE));
        Ok(Arc::new(Self {
            device,
            home,
            window: approvals.pairing_window(),
            approvals,
            clock,
            config,
            invitations: Semaphore::new(MAX_PENDING_INVITATIONS),
            refused_pairing_shown: std::sync::Mutex::new(None),
            flood_warned: std::sync::Mutex::new(None),
            sessions: Sessions::default(),
            replays: std::sync::Mutex::new(ReplayCache::default()),
            log,
        }))
    }

    /// This signer's device identity.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Answers requests until the peer leaves or is removed from the trust
    /// store. Each request runs in its own task, so a sheet waiting for the
    /// person never holds up a key list.
    async fn run_session(self: Arc<Self>, mut session: Session) -> Result<()> {
        let pending = Arc::new(AtomicUsize::new(0));
        let cancels = Cancels::default();
        let peer = session.peer().clone();
        // Every session, so a device always holds the current endpoint
        // (empty: none, forget the old one).
        session
            .send(Envelope::DeviceTokenUpdate(DeviceTokenUpdate {
                endpoint: self.config.wake_url.clone().unwrap_or_default(),
            }))
            .await?;
        let removed = trust::unpinned(
            trust::path(&self.home),
            PeerRole::Requester,
            peer.public_key,
        );
        tokio::pin!(removed);
        let mut push = push::Push::new(&self.home, &peer.device_id);
        loop {
            let received = tokio::select! {
                received = session.recv() => received?,
                () = &mut removed => {
                    self.revoked(&session, &peer).await;
                    // Dropping the session closes it; its request tasks see
                    // that and withdraw their sheets.
                    return Ok(());
                }
                changed = push.changed() => {
                    if changed.keys {
                        session.send(self.key_list()).await?;
                    }
                    if let Some(revoked) = changed.revoked {
                        session.send(revoked).await?;
                    }
                    continue;
                }
            };
            match received {
                Envelope::KeyListRequest(_) => session.send(self.key_list()).await?,
                Envelope::SignRequest(r) => {
                    let id = r.request_id.clone();
                    let sender = session.sender();
                    self.spawn_request(&sender, &pending, &cancels, &peer, id, Request::Sign(r));
                }
                Envelope::CertificateRequest(r) => {
                    let id = r.request_id.clone();
                    let sender = session.sender();
                    let request = Request::Certificate(r);
                    self.spawn_request(&sender, &pending, &cancels, &peer, id, request);
                }
                // Only this session's own requests can be withdrawn.
                Envelope::Cancel(c) => {
                    let waiting = cancels
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(&c.request_id);
                    match waiting {
                        Some((_, cancel)) => {
                            let _ = cancel.send(());
                        }
                        None => tracing::debug!(
                            "\"{}\" cancelled a request that is not pending",
                            escape(&peer.name)
                        ),
                    }
                }
                Envelope::Error(e) => tracing::info!(
                    "\"{}\" reported: {} ({})",
                    escape(&peer.name),
                    escape(&e.message),
                    e.code
                ),
                other => tracing::debug!(
                    "ignoring {} from \"{}\"",
                    other.type_name(),
                    escape(&peer.name)
                ),
            }
        }
    }

    /// `vmux peers remove` took `peer` out of the trust store: tell it why
    /// its session ends, and the person that its requests are gone.
    async fn revoked(&self, session: &Session, peer: &Peer) {
        tracing::info!(
            "\"{}\" was removed from the paired devices; closing its session",
            escape(&peer.name)
        );
        self.approvals.banner(format!(
            "\"{}\" is no longer paired: its session is closed and its requests withdrawn",
            peer.name
        ));
        let _ = session
            .send(Envelope::Error(ErrorReport {
                code: ErrorCode::PairingInvalid,
                message: format!(
                    "this device was removed from signer \"{}\"; run `vmux pair` to pair it again",
                    self.device.wire_name()
                ),
                request_id: None,
            }))
            .await;
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
        cancels: &Cancels,
        peer: &Peer,
        request_id: String,
        request: Request,
    ) {
        let (signer, reply, pending, peer) = (
            Arc::clone(self),
            reply.clone(),
            Arc::clone(pending),
            peer.clone(),
        );
        let (cancel, cancelled) = oneshot::channel::<()>();
        // A request ID used twice: the later request takes the entry (the
        // earlier one can no longer be cancelled), and the earlier one's
        // end, matched by spawn number, does not remove the later's.
        static SPAWNS: AtomicU64 = AtomicU64::new(0);
        let spawn = SPAWNS.fetch_add(1, Ordering::Relaxed);
        cancels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(request_id.clone(), (spawn, cancel));
        let cancels = Arc::clone(cancels);
        tokio::spawn(async move {
            let peer = signer.pinned_now(peer);
            // Kept for the log line of a request withdrawn mid-way.
            let withdrawn_entry = match &request {
                Request::Sign(r) => {
                    signer.log_entry(&peer, "sign", &r.request_id, &r.public_key_blob)
                }
                Request::Certificate(r) => {
                    signer.log_entry(&peer, "certificate", &r.request_id, &r.public_key_blob)
                }
            };
            let busy = pending.fetch_add(1, Ordering::SeqCst) >= MAX_PENDING_REQUESTS;
            let work = async {
                match request {
                    Request::Sign(r) => Envelope::SignResponse(signer.sign(&peer, r, busy).await),
                    Request::Certificate(r) => {
                        Envelope::CertificateResponse(signer.certificate(&peer, r, busy).await)
                    }
                }
            };
            // A device that disconnects, or whose client left (`cancel`),
            // takes its request with it: the sheet is withdrawn rather than
            // left for the person to answer, and nothing is signed.
            let withdrawn = async {
                if cancelled.await.is_err() {
                    // Dropped uncalled (the session ended): not a cancel.
                    std::future::pending::<()>().await;
                }
            };
            let answer = tokio::select! {
                // An answer already made is delivered, not called withdrawn.
                biased;
                answer = work => Some(answer),
                () = reply.closed() => None,
                () = withdrawn => None,
            };
            pending.fetch_sub(1, Ordering::SeqCst);
            {
                let mut cancels = cancels
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if cancels.get(&request_id).is_some_and(|(n, _)| *n == spawn) {
                    cancels.remove(&request_id);
                }
            }
            // Banners go raw: every front end escapes them as it prints.
            let (name, escaped) = (&peer.name, escape(&peer.name));
            match answer {
                Some(answer) => {
                    if reply.send(answer).await.is_err() {
                        tracing::info!("\"{escaped}\" left before its answer could be delivered");
                        signer.approvals.banner(format!(
                            "The answer to \"{name}\" could not be delivered: the device left"
                        ));
                    }
                }
                None => {
                    // The request's own log line was never written: the
                    // person may have seen its sheet, so it leaves a trace.
                    signer.log_ended(Entry {
                        outcome: "withdrawn".into(),
                        ..withdrawn_entry
                    });
                    tracing::info!(
                        "\"{escaped}\" withdrew its request (its client left); nothing was signed"
                    );
                    signer.approvals.banner(format!(
                        "Withdrawn: the request from \"{name}\" can no longer be delivered \
                         (its client left); nothing was signed"
                    ));
                }
            }
        });
    }

    /// `peer` with the name and device id pinned for its key now, so that
    /// `vmux peers rename` applies from the next request on. (One no longer
    /// pinned is refused by [`Signer::admit`].)
    fn pinned_now(&self, peer: Peer) -> Peer {
        let trust = match TrustStore::load(&self.home) {
            Ok(trust) => trust,
            Err(_) => return peer,
        };
        match trust.find(PeerRole::Requester, &peer.public_key) {
            Some(pinned) => Peer {
                name: pinned.name.clone(),
                device_id: pinned.device_id.clone(),
                ..peer
            },
            None => peer,
        }
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
        // Removed a moment ago, before its session was closed: refused.
        let trust = TrustStore::load(&self.home).map_err(internal)?;
        if trust.find(PeerRole::Requester, &peer.public_key).is_none() {
            return Err((
                ErrorCode::PairingInvalid,
                "this device is no longer paired with the signer; run `vmux pair`".into(),
            ));
        }
        // `peer.device_id` is the one pinned at pairing.
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

impl Signer {
    /// A request's log line as far as its arrival tells.
    fn log_entry(&self, peer: &Peer, kind: &str, request_id: &str, key_blob: &[u8]) -> Entry {
        Entry {
            time: self.clock.now_ms(),
            request_id: request_id.to_owned(),
            kind: kind.into(),
            device: peer.name.clone(),
            claimed_device: peer.claimed_name().map(str::to_owned),
            key_fingerprint: Some(Fingerprint::of(key_blob).to_string()),
            ..Entry::default()
        }
    }

    /// Completes `entry` with how the request ended (and why it was
    /// refused, unless the person denied it) and appends it.
    fn log_outcome<T>(&self, entry: Entry, result: &Result<T, Refusal>) {
        let (outcome, reason) = match result {
            Ok(_) => ("approved".into(), None),
            Err((code, _)) if *code == ErrorCode::UserDenied => (code.as_str().into(), None),
            Err((code, message)) => (code.as_str().into(), Some(message.clone())),
        };
        self.log_ended(Entry {
            outcome,
            reason,
            ..entry
        });
    }

    /// Appends `entry` with its decision time.
    fn log_ended(&self, entry: Entry) {
        self.log.append(&Entry {
            decision_ms: self.clock.now_ms().saturating_sub(entry.time),
            ..entry
        });
    }
}
