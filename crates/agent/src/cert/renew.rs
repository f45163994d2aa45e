//! Asking the signer for certificates: on each new session, when renewal
//! is due (checked by a timer), and on `vmux cert request`; and signing
//! locally with the certificate's key.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use vmux_link::clock::Clock;
use vmux_link::requester::Refusal;
use vmux_proto::agent::Identity;
use vmux_proto::envelope::{ErrorCode, SignContext};

use super::state::Held;
use super::{Action, COMMENT, CertState, Ephemeral};
use crate::refusals::{Refusals, Why};
use crate::request_log::{Entry, Event, Kind, Outcome, RequestLog, Via};

/// How often the timer looks at the certificate.
pub const TICK: Duration = Duration::from_secs(60);
/// How long a request joining one already with the signer waits for it:
/// the signer's 60 s window plus travel.
const JOIN_WAIT: Duration = Duration::from_secs(75);

/// The signer's answer to one certificate request.
#[derive(Debug)]
pub enum Reply {
    /// Issued: the certificate blob, not yet checked.
    Issued(Vec<u8>),
    /// Refused (denied, policy, revoked, expired, …), with the signer's reason.
    Refused(Refusal),
    /// No session, or it ended before the answer.
    Unreachable,
}

/// Who issues certificates: the link, or a fake in tests.
pub trait Issuer: Send + Sync {
    /// Asks for a certificate on `public_key_blob`, valid for
    /// `validity_secs`.
    fn issue(
        &self,
        public_key_blob: Vec<u8>,
        validity_secs: u64,
    ) -> impl Future<Output = Reply> + Send;
}

/// A sign request's fate with respect to the certificate.
#[derive(Debug)]
pub enum Local {
    /// Not the certificate (or it has expired): not ours to sign.
    NotOurs,
    /// Signed here; the key's fingerprint for the log.
    Signed(Vec<u8>, String),
    /// Ours, but signing failed.
    Failed(String),
}

/// The certificate, shared by the timer, the connections and control.
#[derive(Debug)]
pub struct Certs {
    state: Mutex<CertState>,
    /// Bumped each time a request finishes.
    finished: watch::Sender<u64>,
    clock: Arc<dyn Clock>,
    validity_secs: u64,
    log: Option<Arc<RequestLog>>,
    /// Where a refusal is recorded for `vmux status`, and said once.
    refusals: Option<Arc<Refusals>>,
}

impl Certs {
    /// No certificate yet; requests ask for `validity_secs`.
    pub fn new(clock: Arc<dyn Clock>, validity_secs: u64, log: Option<Arc<RequestLog>>) -> Self {
        Self {
            state: Mutex::new(CertState::default()),
            finished: watch::channel(0).0,
            clock,
            validity_secs,
            log,
            refusals: None,
        }
    }

    /// Records refusals in `refusals` too.
    pub fn with_refusals(mut self, refusals: Arc<Refusals>) -> Self {
        self.refusals = Some(refusals);
        self
    }

    /// The signer said this device's certificates were revoked: the one
    /// held is dropped now, and no other is asked for unless the person
    /// asks (`vmux cert request`).
    pub fn revoked(&self, refusal: Refusal) {
        self.state().revoked();
        self.said(&refusal);
    }

    /// Records `refusal` for `vmux status`; says it once.
    fn said(&self, refusal: &Refusal) {
        match &self.refusals {
            Some(r) => r.refused(self.clock.now_ms(), &Why::Certificate(refusal.clone())),
            None => tracing::warn!(
                "the signer issued no session certificate: {}",
                refusal.reason()
            ),
        }
    }

    pub(super) fn state(&self) -> MutexGuard<'_, CertState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The identity to list while the certificate is valid.
    pub fn identity(&self) -> Option<Identity> {
        let now = self.clock.now_ms();
        self.state().offered(now).map(|h| Identity {
            key_blob: h.certificate_blob.clone(),
            comment: COMMENT.to_owned(),
        })
    }

    /// Signs `data` here if `blob` is the valid certificate or its key.
    pub fn sign(&self, blob: &[u8], data: &[u8]) -> Local {
        let state = self.state();
        let Some(held) = self.offered_as(&state, blob) else {
            return Local::NotOurs;
        };
        let fingerprint = held.key.fingerprint().to_owned();
        match held.key.sign(data) {
            Some(sig) => Local::Signed(sig, fingerprint),
            None => Local::Failed(fingerprint),
        }
    }

    /// Whether `blob` is the valid certificate or its key: no fingerprint
    /// computed, for the route of every sign request.
    pub fn holds(&self, blob: &[u8]) -> bool {
        let state = self.state();
        self.offered_as(&state, blob).is_some()
    }

    /// The key's fingerprint if `blob` is the valid certificate or its
    /// key, without signing: for a request that may not use it.
    pub fn fingerprint_of(&self, blob: &[u8]) -> Option<String> {
        let state = self.state();
        self.offered_as(&state, blob)
            .map(|h| h.key.fingerprint().to_owned())
    }

    fn offered_as<'s>(&self, state: &'s CertState, blob: &[u8]) -> Option<&'s Held> {
        state
            .offered(self.clock.now_ms())
            .filter(|h| h.certificate_blob == blob || h.key.public_blob() == blob)
    }

    /// Forgets the certificate and wipes its key at once (SIGUSR1); no new
    /// one is asked for until `vmux cert request`.
    pub fn forget(&self) {
        self.state().forget();
        tracing::info!("SIGUSR1: the session certificate and its key are forgotten");
    }

    /// The status line.
    pub fn status_line(&self) -> String {
        let now = self.clock.now_ms();
        self.state().status_line(now)
    }

    /// The code of the last refusal, until a certificate is issued.
    pub fn last_refusal(&self) -> Option<ErrorCode> {
        self.state().last_refusal()
    }

    /// Asks `issuer` for a certificate now (or waits for the request
    /// already out). True if a certificate is valid afterwards.
    pub async fn request<I: Issuer>(&self, issuer: &I, manual: bool) -> bool {
        let mut finished = self.finished.subscribe();
        let before = *finished.borrow_and_update();
        if !self.state().begin(manual) {
            let _ = tokio::time::timeout(JOIN_WAIT, finished.wait_for(|n| *n != before)).await;
            return self.identity().is_some();
        }
        // Whatever happens below, even cancellation, the request ends.
        let mut pending = Pending {
            certs: self,
            done: false,
        };
        let started = Instant::now();
        let arrived = self.clock.now_ms();
        let epoch = self.state().epoch();
        let key = match Ephemeral::generate() {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!("session certificate: {e}");
                return false;
            }
        };
        let fingerprint = key.fingerprint().to_owned();
        let reply = issuer
            .issue(key.public_blob().to_vec(), self.validity_secs)
            .await;
        let now = self.clock.now_ms();
        let outcome = match reply {
            Reply::Issued(certificate_blob) => match key.certifies(&certificate_blob) {
                Ok((valid_after, valid_before)) if now / 1000 < valid_before => {
                    let held = Held {
                        key,
                        certificate_blob,
                        valid_after,
                        valid_before,
                    };
                    if self.state().issued_in(epoch, held) {
                        tracing::info!("{}", self.status_line());
                    } else {
                        tracing::info!("session certificate dropped: it was forgotten meanwhile");
                    }
                    Outcome::Event(Event::Approved)
                }
                Ok(_) => {
                    tracing::warn!("session certificate discarded: it had already expired");
                    self.state().refused(ErrorCode::Internal);
                    Outcome::Event(Event::CertificateExpired)
                }
                Err(why) => {
                    tracing::warn!("session certificate discarded: {why}");
                    self.state().refused(ErrorCode::Internal);
                    Outcome::Event(Event::CertificateMismatch)
                }
            },
            Reply::Refused(refusal) => {
                let code = refusal.code;
                if code == ErrorCode::CertificateRevoked {
                    self.state().revoked();
                } else {
                    self.state().refused(code);
                }
                self.said(&refusal);
                Outcome::Signer(code)
            }
            Reply::Unreachable => {
                self.state().unreachable();
                Outcome::Event(Event::Unreachable)
            }
        };
        pending.done = true;
        drop(pending);
        if let Some(log) = &self.log {
            log.append(&Entry {
                time: arrived,
                request_id: None,
                kind: Kind::Certificate,
                key_fingerprint: fingerprint,
                key_comment: COMMENT.to_owned(),
                path: Via::Certificate,
                context: SignContext::default(),
                outcome,
                latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                reason: None,
                route: None,
            });
        }
        self.identity().is_some()
    }

    /// Runs for as long as the agent does: asks on each new session and
    /// whenever renewal is due while one is up and `paused` says no (the
    /// agent is not locked); forgets an expired certificate. `sessions`
    /// holds `Some` while a session is up.
    pub async fn run<I: Issuer, C>(
        &self,
        issuer: &I,
        mut sessions: watch::Receiver<Option<C>>,
        tick: Duration,
        paused: impl Fn() -> bool,
    ) {
        let mut new_session = sessions.borrow_and_update().is_some();
        loop {
            let now = self.clock.now_ms();
            let up = sessions.borrow().is_some();
            let due = {
                let mut state = self.state();
                state.expire(now);
                if new_session {
                    state.connected();
                }
                state.due(now)
            };
            if up && due == Some(Action::Request) && !paused() {
                self.request(issuer, false).await;
            }
            tokio::select! {
                changed = sessions.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    new_session = sessions.borrow_and_update().is_some();
                }
                () = tokio::time::sleep(tick) => new_session = false,
            }
        }
    }
}

/// Ends a request however its future ends.
struct Pending<'a> {
    certs: &'a Certs,
    done: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.certs.state().unreachable();
        }
        self.certs.finished.send_modify(|n| *n = n.wrapping_add(1));
    }
}
