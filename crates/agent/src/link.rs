//! The agent's side of the link: one session with the signer, kept up and
//! reconnected with backoff, and the routing of responses to the requests
//! waiting for them (matched by `requestID`, many in flight at once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, sleep, timeout_at};
use vmux_link::backoff::Backoff;
use vmux_link::clock::{Clock, SystemClock};
use vmux_link::device::{Device, new_uuid};
use vmux_link::home::Home;
use vmux_link::session::{self, Session, SessionSender};
use vmux_link::trust::{self, PeerRole, TrustStore};
use vmux_proto::envelope::{
    CertificateRequest, CertificateResponse, Envelope, ErrorCode, ErrorReport, KeyListRequest,
    Origin, Role, SessionBinding, SignContext, SignRequest, SignResponse,
};

use crate::cert::{Issuer, Reply};
use crate::keys::Key;

/// The signer's request window (docs/protocol.md §9.2).
pub const REQUEST_WINDOW_MS: u64 = 60_000;
/// How long one round of connection attempts runs before we look at the
/// trust store again.
const CONNECT_ROUND: Duration = Duration::from_secs(30);
/// How long `refresh@vmux` waits for the new key list.
const REFRESH_WAIT: Duration = Duration::from_secs(10);
/// How long a certificate request waits: the signer's window plus travel.
const CERTIFICATE_WAIT: Duration = Duration::from_secs(70);

/// The session, while one is up.
#[derive(Debug, Clone)]
pub struct Connected {
    /// The signer's name, from its hello.
    pub name: String,
    sender: SessionSender,
}

/// What became of a forwarded sign request.
#[derive(Debug)]
pub enum Outcome {
    /// Signed: the SSH signature blob.
    Signed(Vec<u8>),
    /// The signer said no, with its code and, when it gave one, its reason.
    Refused(ErrorCode, Option<String>),
    /// No session with the signer within the bound, or it ended before the
    /// answer came.
    Unreachable,
    /// Sent, but no answer within the bound.
    TimedOut,
}

impl Outcome {
    /// The name written to the request log.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Signed(_) => "approved",
            Outcome::Refused(code, _) => code.as_str(),
            Outcome::Unreachable => "unreachable",
            Outcome::TimedOut => "timedOut",
        }
    }
}

/// A response routed to the request waiting for it.
#[derive(Debug)]
enum Answer {
    Sign(SignResponse),
    Certificate(CertificateResponse),
    /// An `error` envelope naming the request (one the signer could not
    /// decode, say): it ends the request as a refusal.
    Error(ErrorReport),
}

type Waiters = Mutex<HashMap<String, oneshot::Sender<Answer>>>;

/// The link as the rest of the agent sees it.
#[derive(Debug)]
pub struct Link {
    device_id: String,
    device_name: String,
    state: watch::Sender<Option<Connected>>,
    waiters: Waiters,
    /// Bumped each time a key list arrives.
    key_lists: watch::Sender<u64>,
    /// Why the signer last refused this device for good (`pairingInvalid`:
    /// it was removed there); cleared by the next session.
    refused: Mutex<Option<String>>,
}

/// Removes a waiter however its request ends (answer, timeout, cancel).
struct WaiterGuard<'a> {
    waiters: &'a Waiters,
    id: String,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

impl Link {
    /// A link for this device, not yet connected.
    pub fn new(device: &Device) -> Self {
        Self {
            device_id: device.id.clone(),
            device_name: device.wire_name(),
            state: watch::channel(None).0,
            waiters: Mutex::new(HashMap::new()),
            key_lists: watch::channel(0).0,
            refused: Mutex::new(None),
        }
    }

    /// The signer's refusal of this device, while it stands.
    fn refusal(&self) -> Option<String> {
        self.refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The connected signer's name, if a session is up.
    pub fn signer_name(&self) -> Option<String> {
        self.state.borrow().as_ref().map(|c| c.name.clone())
    }

    /// Sessions as they come and go: `Some` while one is up.
    pub fn sessions(&self) -> watch::Receiver<Option<Connected>> {
        self.state.subscribe()
    }

    /// Registers a waiter for `request_id`; the guard removes it.
    fn wait_for(&self, request_id: &str) -> (oneshot::Receiver<Answer>, WaiterGuard<'_>) {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(request_id.to_owned(), tx);
        let guard = WaiterGuard {
            waiters: &self.waiters,
            id: request_id.to_owned(),
        };
        (rx, guard)
    }

    /// Asks the signer for a certificate on `public_key_blob` over the
    /// session that is up now (none: unreachable, no waiting), and waits
    /// at most `bound` for the answer.
    pub async fn certificate(
        &self,
        public_key_blob: Vec<u8>,
        validity_secs: u64,
        now_ms: u64,
        bound: Duration,
    ) -> Reply {
        let Some(connected) = self.state.borrow().clone() else {
            return Reply::Unreachable;
        };
        let (Ok(request_id), Ok(nonce)) = (new_uuid(), vmux_link::pairing::nonce()) else {
            return Reply::Unreachable;
        };
        let (rx, _guard) = self.wait_for(&request_id);
        let request = CertificateRequest {
            request_id,
            public_key_blob,
            source_device_id: self.device_id.clone(),
            source_device_name: self.device_name.clone(),
            requested_validity_seconds: validity_secs,
            nonce: nonce.to_vec(),
            issued_at_milliseconds: now_ms,
            expires_at_milliseconds: now_ms.saturating_add(REQUEST_WINDOW_MS),
        };
        if connected
            .sender
            .send(Envelope::CertificateRequest(request))
            .await
            .is_err()
        {
            return Reply::Unreachable;
        }
        match tokio::time::timeout(bound, rx).await {
            Ok(Ok(Answer::Certificate(r))) => match (r.approved, r.certificate_blob) {
                (true, Some(blob)) => Reply::Issued(blob),
                (true, None) => Reply::Refused(ErrorCode::Internal),
                (false, _) => Reply::Refused(known(r.error_code)),
            },
            Ok(Ok(Answer::Sign(_))) => Reply::Refused(ErrorCode::Internal),
            Ok(Ok(Answer::Error(e))) => Reply::Refused(known(Some(e.code))),
            Ok(Err(_)) => Reply::Unreachable,
            // The signer's window has passed with no answer.
            Err(_) => Reply::Refused(ErrorCode::RequestExpired),
        }
    }

    /// Asks the signer for its key list now and waits for it. False when
    /// no session is up or no list came in time.
    pub async fn refresh(&self) -> bool {
        let Some(connected) = self.state.borrow().clone() else {
            return false;
        };
        let mut lists = self.key_lists.subscribe();
        let before = *lists.borrow_and_update();
        if connected
            .sender
            .send(Envelope::KeyListRequest(KeyListRequest {}))
            .await
            .is_err()
        {
            return false;
        }
        matches!(
            tokio::time::timeout(REFRESH_WAIT, lists.wait_for(|n| *n != before)).await,
            Ok(Ok(_))
        )
    }

    /// Forwards one signature to the signer, with the connection's session
    /// bindings for it to check, and waits, at most `bound`, for the answer.
    /// Returns the outcome and the `requestID` if one was sent.
    pub async fn sign(
        &self,
        key: &Key,
        data: &[u8],
        flags: u32,
        context: SignContext,
        bindings: Vec<SessionBinding>,
        bound: Duration,
    ) -> (Outcome, Option<String>) {
        let deadline = Instant::now() + bound;
        // Wait for a session if there is none yet; the supervisor keeps
        // trying to connect meanwhile.
        let mut state = self.state.subscribe();
        // Not worth waiting for a signer that refuses this device.
        let connected = if self.refusal().is_some() {
            state.borrow().clone()
        } else {
            match timeout_at(deadline, state.wait_for(Option::is_some)).await {
                Ok(Ok(c)) => c.clone(),
                _ => None,
            }
        };
        let Some(connected) = connected else {
            // Removed on the signer: say so, rather than "unreachable".
            if let Some(why) = self.refusal() {
                return (Outcome::Refused(ErrorCode::PairingInvalid, Some(why)), None);
            }
            return (Outcome::Unreachable, None);
        };
        let (Ok(request_id), Ok(nonce)) = (new_uuid(), vmux_link::pairing::nonce()) else {
            return (Outcome::Unreachable, None);
        };
        let (rx, _guard) = self.wait_for(&request_id);
        let now = SystemClock.now_ms();
        let request = SignRequest {
            request_id: request_id.clone(),
            key_algorithm: key.blob_algorithm(),
            public_key_blob: key.blob.clone(),
            source_device_id: self.device_id.clone(),
            source_device_name: self.device_name.clone(),
            origin: Origin::GenericAgent,
            data_to_sign: data.to_vec(),
            nonce: nonce.to_vec(),
            issued_at_milliseconds: now,
            expires_at_milliseconds: now.saturating_add(REQUEST_WINDOW_MS),
            flags,
            context,
            bindings,
        };
        if connected
            .sender
            .send(Envelope::SignRequest(request))
            .await
            .is_err()
        {
            return (Outcome::Unreachable, Some(request_id));
        }
        let outcome = match timeout_at(deadline, rx).await {
            Ok(Ok(Answer::Sign(r))) => match (r.approved, r.signature) {
                (true, Some(sig)) => Outcome::Signed(sig),
                (true, None) => Outcome::Refused(
                    ErrorCode::Internal,
                    Some("the signer approved but sent no signature".into()),
                ),
                (false, _) => Outcome::Refused(known(r.error_code), r.error_message),
            },
            // An answer of the wrong kind for our requestID.
            Ok(Ok(Answer::Certificate(_))) => Outcome::Refused(
                ErrorCode::Internal,
                Some("the signer answered a sign request with a certificate".into()),
            ),
            Ok(Ok(Answer::Error(e))) => Outcome::Refused(known(Some(e.code)), Some(e.message)),
            // The session ended and took the waiter with it.
            Ok(Err(_)) => Outcome::Unreachable,
            Err(_) => Outcome::TimedOut,
        };
        (outcome, Some(request_id))
    }

    fn route(&self, request_id: &str, answer: Answer) {
        let waiter = self
            .waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(request_id);
        match waiter {
            Some(tx) => {
                let _ = tx.send(answer);
            }
            // We gave up on it (protocol §9.1): drop it.
            None => tracing::debug!("late response {request_id} dropped"),
        }
    }
}

/// A refusal code, an unknown one read as `internal` (protocol §11).
fn known(code: Option<ErrorCode>) -> ErrorCode {
    match code {
        Some(ErrorCode::Unknown) | None => ErrorCode::Internal,
        Some(code) => code,
    }
}

impl Issuer for Link {
    async fn issue(&self, public_key_blob: Vec<u8>, validity_secs: u64, now_ms: u64) -> Reply {
        self.certificate(public_key_blob, validity_secs, now_ms, CERTIFICATE_WAIT)
            .await
    }
}

/// What the supervisor does with a key list.
pub trait KeyListSink: Send + Sync {
    /// Called with each key list the signer sends.
    fn key_list(&self, signer: &str, keys: Vec<Key>);
}

/// Keeps a session with the signer up for as long as the agent runs.
pub async fn supervise(
    link: Arc<Link>,
    sink: Arc<dyn KeyListSink>,
    home: Home,
    device: Device,
    signer_address: Option<String>,
) {
    let mut backoff = Backoff::default();
    let mut told_unpaired = false;
    let mut last_error = String::new();
    // Which pinned signer to try: the most recently seen first, then the
    // others in turn while it stays unreachable.
    let mut turn = 0usize;
    loop {
        let mut trust = match TrustStore::load(&home) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("{e}");
                sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        let address = signer_address.clone().or_else(|| {
            let known: Vec<String> = trust
                .signers()
                .iter()
                .filter_map(|p| p.address.clone())
                .collect();
            known.get(turn % known.len().max(1)).cloned()
        });
        let Some(address) = address else {
            if !told_unpaired {
                tracing::warn!(
                    "this device is not paired with a signer; run `vmux pair --signer HOST:PORT`, the agent will pick it up"
                );
                told_unpaired = true;
            }
            sleep(Duration::from_secs(2)).await;
            continue;
        };
        match session::connect_retrying(
            &address,
            &device,
            Role::Agent,
            &mut trust,
            &SystemClock,
            CONNECT_ROUND,
        )
        .await
        {
            Ok(session) => {
                backoff.reset();
                turn = 0;
                last_error.clear();
                *link.refused.lock().unwrap_or_else(PoisonError::into_inner) = None;
                tracing::info!(
                    "connected to signer {}",
                    vmux_proto::text::escape(&session.peer().name)
                );
                run_session(&link, sink.as_ref(), session, &home).await;
            }
            Err(e) => {
                if let vmux_link::Error::Peer {
                    code: ErrorCode::PairingInvalid,
                    message,
                } = &e
                {
                    *link.refused.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(message.clone());
                }
                turn = turn.wrapping_add(1);
                // Say it once, not every round: an agent left running
                // without its signer should not fill the terminal.
                let message = format!("signer at {address}: {e}");
                if message != last_error {
                    tracing::warn!("{message}");
                    last_error = message;
                }
            }
        }
        let mut random = [0u8; 4];
        let _ = getrandom::fill(&mut random);
        sleep(backoff.next_delay(u32::from_le_bytes(random))).await;
    }
}

async fn run_session(link: &Link, sink: &dyn KeyListSink, mut session: Session, home: &Home) {
    let name = session.peer().name.clone();
    // For logs: a name pinned by an older build may hold anything.
    let shown = vmux_proto::text::escape(&name).into_owned();
    // `vmux peers remove` of this signer ends the session at once.
    let removed = trust::unpinned(
        trust::path(home),
        PeerRole::Signer,
        session.peer().public_key,
    );
    tokio::pin!(removed);
    let sender = session.sender();
    if let Err(e) = sender
        .send(Envelope::KeyListRequest(KeyListRequest {}))
        .await
    {
        tracing::warn!("signer {shown}: {e}");
        return;
    }
    link.state.send_replace(Some(Connected {
        name: name.clone(),
        sender,
    }));
    let why = loop {
        let received = tokio::select! {
            received = session.recv() => received,
            () = &mut removed => break vmux_link::Error::Peer {
                code: ErrorCode::PairingInvalid,
                message: "this signer was removed from the paired devices".into(),
            },
        };
        match received {
            Ok(Envelope::SignResponse(r)) => link.route(&r.request_id.clone(), Answer::Sign(r)),
            Ok(Envelope::CertificateResponse(r)) => {
                link.route(&r.request_id.clone(), Answer::Certificate(r));
            }
            Ok(Envelope::KeyList(list)) => {
                sink.key_list(&name, list.keys.iter().map(Key::from_record).collect());
                link.key_lists.send_modify(|n| *n = n.wrapping_add(1));
            }
            Ok(Envelope::Error(report)) => {
                tracing::warn!(
                    "signer {shown} reports: {} ({})",
                    vmux_proto::text::escape(&report.message),
                    report.code.as_str()
                );
                // Removed on the signer: it closes the session next.
                if report.code == ErrorCode::PairingInvalid {
                    *link.refused.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(report.message.clone());
                }
                // Protocol §8.2: an error naming a request in flight ends it
                // now, instead of leaving it to its timeout.
                if let Some(id) = report.request_id.clone() {
                    link.route(&id, Answer::Error(report));
                }
            }
            // Nothing else is ours to handle.
            Ok(other) => tracing::debug!("ignoring {} from the signer", other.type_name()),
            Err(e) => break e,
        }
    };
    tracing::warn!("lost the signer {shown}: {why}; reconnecting");
    link.state.send_replace(None);
    // Requests in flight on that session are lost (protocol §9.1): their
    // waiters learn it at once instead of waiting out the bound.
    link.waiters
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
}
