//! The agent's side of the link: a session with every pinned signer, each
//! kept up by its own [`supervisor`], and the routing of requests to them
//! and of responses back (matched by `requestID`, many in flight at once).
//!
//! With several signers, keys are listed from each, tagged with the signer
//! that holds them, and a signature goes to that signer. The *signer in
//! use* is the first session up, kept while it stays up, then the next one
//! up: it issues the session certificate, and `vmux status` names it.
//!
//! When no session with the signer a request needs is up, the supervisors
//! are told to retry at once, the signer is woken if it left a wake
//! endpoint ([`vmux_link::wake`]), and the request waits, within its bound.
//! With no endpoint it waits only `signer_wait`: a signer that is not
//! running should fail the login in seconds, not after the approval window.

pub mod supervisor;
mod waiters;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::{Instant, timeout_at};
use vmux_link::Fingerprint;
use vmux_link::clock::Clock;
use vmux_link::device::Device;
use vmux_link::requester::{self, Refusal, Requester};
use vmux_link::session::SessionSender;
use vmux_link::wake::Wakes;
use vmux_proto::envelope::limits::REQUEST_WAIT;
use vmux_proto::envelope::{
    Envelope, ErrorCode, KeyListRequest, Origin, SessionBinding, SignContext,
};

use crate::cert::{Issuer, Reply};
use crate::keys::{Holder, Key};
use crate::refusals::{Refusals, Why};
use waiters::{Answer, Waiters};
/// How long a request waits for a signer that cannot be woken, by default.
pub const DEFAULT_SIGNER_WAIT: Duration = Duration::from_secs(5);
/// How long `refresh@vmux` waits for the new key lists.
const REFRESH_WAIT: Duration = Duration::from_secs(10);
/// While a request waits for a signer, the supervisors are nudged this
/// often to try again rather than sleep out their backoff.
const NUDGE: Duration = Duration::from_secs(1);

/// A session that is up.
#[derive(Debug, Clone)]
pub struct Connected {
    /// The signer's name, from its hello.
    pub name: String,
    /// Its pinned link key's fingerprint.
    pub fingerprint: Fingerprint,
    sender: SessionSender,
}

impl Connected {
    /// The signer as its keys remember it.
    pub fn holder(&self) -> Holder {
        Holder {
            fingerprint: self.fingerprint.clone(),
            name: self.name.clone(),
        }
    }
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

/// The link as the rest of the agent sees it.
#[derive(Debug)]
pub struct Link {
    /// Builds this device's requests, timed by the agent's clock.
    requester: Requester,
    /// Sessions up now, in the order they came up.
    sessions: watch::Sender<Vec<Connected>>,
    /// The signer in use.
    in_use: watch::Sender<Option<Connected>>,
    /// The signers pinned now, as the supervisor last read them; `None`
    /// before that, and with `--signer`, which reads no list.
    pinned: Mutex<Option<Vec<Fingerprint>>>,
    waiters: Waiters,
    /// Bumped each time a key list arrives.
    key_lists: watch::Sender<u64>,
    /// A request waits for a signer: supervisors try now.
    wanted: Notify,
    wakes: Wakes,
    signer_wait: Duration,
    /// Why each signer last refused this device for good (`pairingInvalid`:
    /// it was removed there); cleared by its next session.
    refused: Mutex<HashMap<Fingerprint, String>>,
    /// The last refusal in words, for `vmux status`, said once.
    refusals: Arc<Refusals>,
}

/// The session-up mark: dropping it (the session ended, or its supervisor
/// was stopped) takes the session out of the link.
#[derive(Debug)]
pub struct SessionGuard {
    link: Arc<Link>,
    fingerprint: Fingerprint,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.link.session_down(&self.fingerprint);
    }
}

impl Link {
    /// A link for this device, not yet connected. `wakes` is where the
    /// signers' wake endpoints are kept; `signer_wait` bounds the wait for
    /// a signer that cannot be woken.
    pub fn new(
        device: &Device,
        clock: Arc<dyn Clock>,
        wakes: Wakes,
        signer_wait: Duration,
    ) -> Self {
        Self {
            requester: Requester::new(device, clock),
            sessions: watch::channel(Vec::new()).0,
            in_use: watch::channel(None).0,
            pinned: Mutex::new(None),
            waiters: Waiters::default(),
            key_lists: watch::channel(0).0,
            wanted: Notify::new(),
            wakes,
            signer_wait,
            refused: Mutex::new(HashMap::new()),
            refusals: Arc::new(Refusals::default()),
        }
    }

    /// Why the signer last refused this device, shared with the
    /// certificate requests.
    pub fn refusals(&self) -> &Arc<Refusals> {
        &self.refusals
    }

    /// Records that `signer` refuses this device (`None`: no longer).
    fn set_refused(&self, signer: &Fingerprint, why: Option<String>) {
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        match why {
            Some(why) => refused.insert(signer.clone(), why),
            None => refused.remove(signer),
        };
    }

    /// Why one of `holders` (any signer, when none is named) refuses this
    /// device, while it stands.
    fn refusal(&self, holders: &[Fingerprint]) -> Option<String> {
        let refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        if holders.is_empty() {
            return refused.values().next().cloned();
        }
        holders.iter().find_map(|h| refused.get(h).cloned())
    }

    /// The name of the signer in use, if a session is up.
    pub fn signer_name(&self) -> Option<String> {
        self.in_use.borrow().as_ref().map(|c| c.name.clone())
    }

    /// The names of every signer with a session up, the one in use first.
    pub fn connected(&self) -> Vec<String> {
        let in_use = self.in_use.borrow().as_ref().map(|c| c.fingerprint.clone());
        let mut names: Vec<(bool, String)> = self
            .sessions
            .borrow()
            .iter()
            .map(|c| (Some(&c.fingerprint) != in_use.as_ref(), c.name.clone()))
            .collect();
        names.sort_by_key(|(other, _)| *other);
        names.into_iter().map(|(_, n)| n).collect()
    }

    /// Bumped each time a key list arrives.
    pub fn key_lists(&self) -> watch::Receiver<u64> {
        self.key_lists.subscribe()
    }

    /// The signer in use as it changes: `Some` while one is up.
    pub fn in_use(&self) -> watch::Receiver<Option<Connected>> {
        self.in_use.subscribe()
    }

    /// Where the signers' wake endpoints are kept.
    pub fn wakes(&self) -> &Wakes {
        &self.wakes
    }

    /// The signers pinned now; `None` while no list was read.
    pub fn pinned(&self) -> Option<Vec<Fingerprint>> {
        self.pinned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records the signers pinned now, and forgets the wake endpoints and
    /// refusals of those no longer pinned. True if the list changed.
    pub(crate) fn set_pinned(&self, pinned: &[Fingerprint]) -> bool {
        let before = self
            .pinned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(pinned.to_vec());
        if before.as_deref() == Some(pinned) {
            return false;
        }
        for dropped in before.iter().flatten().filter(|f| !pinned.contains(f)) {
            if let Err(e) = self.wakes.set(dropped, "") {
                tracing::warn!("forgetting the wake endpoint of a removed signer: {e}");
            }
        }
        self.refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|f, _| pinned.contains(f));
        true
    }

    /// Marks a session up; the guard marks it down.
    fn session_up(self: &Arc<Self>, connected: Connected) -> SessionGuard {
        let fingerprint = connected.fingerprint.clone();
        self.sessions.send_modify(|all| {
            all.retain(|c| c.fingerprint != fingerprint);
            all.push(connected.clone());
        });
        self.in_use.send_if_modified(|in_use| {
            if in_use.is_none() {
                *in_use = Some(connected);
                true
            } else {
                false
            }
        });
        SessionGuard {
            link: Arc::clone(self),
            fingerprint,
        }
    }

    fn session_down(&self, fingerprint: &Fingerprint) {
        let mut next = None;
        self.sessions.send_modify(|all| {
            all.retain(|c| &c.fingerprint != fingerprint);
            next = all.first().cloned();
        });
        self.in_use.send_if_modified(|in_use| {
            if in_use
                .as_ref()
                .is_some_and(|c| &c.fingerprint == fingerprint)
            {
                if let Some(c) = &next {
                    tracing::info!("now using the signer {}", vmux_proto::text::escape(&c.name));
                }
                *in_use = next;
                true
            } else {
                false
            }
        });
        self.waiters.session_lost(fingerprint);
    }

    /// A session with one of `holders` (any session when none is named),
    /// the signer in use preferred.
    fn pick(&self, holders: &[Fingerprint]) -> Option<Connected> {
        let wanted = |c: &Connected| holders.is_empty() || holders.contains(&c.fingerprint);
        if let Some(c) = self.in_use.borrow().as_ref().filter(|c| wanted(c)) {
            return Some(c.clone());
        }
        self.sessions.borrow().iter().find(|c| wanted(c)).cloned()
    }

    /// Waits, until `deadline`, for a session with one of `holders`. While
    /// there is none, supervisors are nudged to retry and the signers are
    /// woken; with no wake endpoint the wait ends after `signer_wait`.
    async fn reach(&self, holders: &[Fingerprint], deadline: Instant) -> Option<Connected> {
        let started = Instant::now();
        let mut sessions = self.sessions.subscribe();
        let mut wakeable = None;
        loop {
            sessions.borrow_and_update();
            if let Some(c) = self.pick(holders) {
                return Some(c);
            }
            // Not worth waiting for a signer that refuses this device.
            if self.refusal(holders).is_some() {
                return None;
            }
            self.wanted.notify_waiters();
            let wakeable = *wakeable.get_or_insert_with(|| self.wake(holders));
            let give_up = if wakeable {
                deadline
            } else {
                deadline.min(started + self.signer_wait)
            };
            let now = Instant::now();
            if now >= give_up {
                return None;
            }
            let _ = timeout_at((now + NUDGE).min(give_up), sessions.changed()).await;
        }
    }

    /// Sends a wake to each of `holders` (every pinned signer when none is
    /// named) that left an endpoint, in the background; true if any did.
    /// A signer no longer pinned is not woken: it could not answer.
    fn wake(&self, holders: &[Fingerprint]) -> bool {
        let targets = match (self.pinned(), holders.is_empty()) {
            (Some(pinned), true) => pinned,
            (Some(pinned), false) => holders
                .iter()
                .filter(|h| pinned.contains(h))
                .cloned()
                .collect(),
            (None, _) => holders.to_vec(),
        };
        let mut any = false;
        for signer in targets {
            if self.wakes.get(&signer).is_none() {
                continue;
            }
            any = true;
            let (wakes, name) = (self.wakes.clone(), self.requester.device_name().to_owned());
            let now = self.requester.now_ms();
            tokio::spawn(async move {
                wakes.wake(&signer, &name, now).await;
            });
        }
        any
    }

    /// Asks the signer in use for a certificate on `public_key_blob` over
    /// the session that is up now (none: unreachable, no waiting), and
    /// waits at most `bound` for the answer.
    pub async fn certificate(
        &self,
        public_key_blob: Vec<u8>,
        validity_secs: u64,
        bound: Duration,
    ) -> Reply {
        let Some(connected) = self.in_use.borrow().clone() else {
            return Reply::Unreachable;
        };
        let Ok(request) = self
            .requester
            .certificate_request(public_key_blob, validity_secs)
        else {
            return Reply::Unreachable;
        };
        let (rx, mut guard) = self
            .waiters
            .wait_for(&request.request_id, &connected.fingerprint);
        let request = Envelope::CertificateRequest(request);
        if connected.sender.send(request).await.is_err() {
            return Reply::Unreachable;
        }
        guard.sent(&connected.sender);
        let answer = tokio::time::timeout(bound, rx).await;
        guard.answered = matches!(answer, Ok(Ok(_)));
        let read = match answer {
            Ok(Ok(Answer::Certificate(r))) => requester::read_certificate_response(r),
            Ok(Ok(Answer::Error(e))) => Err(requester::read_error(e)),
            Ok(Ok(Answer::Sign(_))) => Err(Refusal::new(
                Some(ErrorCode::Internal),
                Some("the signer answered a certificate request with a signature".into()),
            )),
            Ok(Err(_)) => return Reply::Unreachable,
            // The signer's window has passed with no answer.
            Err(_) => Err(requester::timed_out()),
        };
        match read {
            Ok(blob) => Reply::Issued(blob),
            Err(refusal) => Reply::Refused(refusal),
        }
    }

    /// Asks every connected signer for its key list now and waits for the
    /// lists. False when no session is up or no list came in time.
    pub async fn refresh(&self) -> bool {
        let sessions = self.sessions.borrow().clone();
        let mut lists = self.key_lists.subscribe();
        let before = *lists.borrow_and_update();
        let mut asked = 0u64;
        for c in &sessions {
            if c.sender
                .send(Envelope::KeyListRequest(KeyListRequest {}))
                .await
                .is_ok()
            {
                asked += 1;
            }
        }
        if asked == 0 {
            return false;
        }
        let all = tokio::time::timeout(
            REFRESH_WAIT,
            lists.wait_for(|n| n.wrapping_sub(before) >= asked),
        )
        .await
        .is_ok();
        all || *lists.borrow() != before
    }

    /// Forwards one signature to a signer holding `key`, with the
    /// connection's session bindings for it to check, and waits, at most
    /// `bound` (reaching the signer included), for the answer. Returns the
    /// outcome and the `requestID` if one was sent.
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
        let holders: Vec<Fingerprint> = key.signer.iter().map(|h| h.fingerprint.clone()).collect();
        let Some(connected) = self.reach(&holders, deadline).await else {
            // Removed on the signer: say so, rather than "unreachable". The
            // supervisor has told the person already.
            if let Some(why) = self.refusal(&holders) {
                return (Outcome::Refused(ErrorCode::PairingInvalid, Some(why)), None);
            }
            self.said(key, &Outcome::Unreachable);
            return (Outcome::Unreachable, None);
        };
        let request = self.requester.sign_request(requester::Sign {
            key_algorithm: key.blob_algorithm(),
            public_key_blob: key.blob.clone(),
            origin: Origin::GenericAgent,
            data: data.to_vec(),
            flags,
            context,
            bindings,
        });
        let Ok(request) = request else {
            return (Outcome::Unreachable, None);
        };
        let request_id = request.request_id.clone();
        let outcome = self.send_sign(&connected, request, deadline).await;
        self.said(key, &outcome);
        (outcome, Some(request_id))
    }

    /// Sends `request` on `connected` and waits, until `deadline`, for its
    /// answer.
    async fn send_sign(
        &self,
        connected: &Connected,
        request: vmux_proto::envelope::SignRequest,
        deadline: Instant,
    ) -> Outcome {
        let (rx, mut guard) = self
            .waiters
            .wait_for(&request.request_id, &connected.fingerprint);
        if connected
            .sender
            .send(Envelope::SignRequest(request))
            .await
            .is_err()
        {
            return Outcome::Unreachable;
        }
        guard.sent(&connected.sender);
        let answer = timeout_at(deadline, rx).await;
        guard.answered = matches!(answer, Ok(Ok(_)));
        let read = match answer {
            Ok(Ok(Answer::Sign(r))) => requester::read_sign_response(r),
            Ok(Ok(Answer::Error(e))) => Err(requester::read_error(e)),
            // An answer of the wrong kind for our requestID.
            Ok(Ok(Answer::Certificate(_))) => Err(Refusal::new(
                Some(ErrorCode::Internal),
                Some("the signer answered a sign request with a certificate".into()),
            )),
            // The session ended and took the waiter with it.
            Ok(Err(_)) => return Outcome::Unreachable,
            Err(_) => return Outcome::TimedOut,
        };
        match read {
            Ok(signature) => Outcome::Signed(signature),
            Err(r) => Outcome::Refused(r.code, r.message),
        }
    }

    /// Records how a signature went, for `vmux status`; a failure is said
    /// once in the log, with the reason and what to do.
    fn said(&self, key: &Key, outcome: &Outcome) {
        let now = self.requester.now_ms();
        let why = match outcome {
            Outcome::Signed(_) => return self.refusals.worked(),
            Outcome::Refused(code, message) => Why::Sign {
                key: key.comment.clone(),
                refusal: Refusal::new(Some(*code), message.clone()),
            },
            Outcome::Unreachable => Why::Unreachable,
            Outcome::TimedOut => Why::TimedOut,
        };
        self.refusals.refused(now, &why);
    }
}

impl Issuer for Link {
    async fn issue(&self, public_key_blob: Vec<u8>, validity_secs: u64) -> Reply {
        self.certificate(public_key_blob, validity_secs, REQUEST_WAIT)
            .await
    }
}

/// What the supervisors do with key lists.
pub trait KeyListSink: Send + Sync {
    /// Called with each key list a signer sends, and the CA key it names.
    fn key_list(&self, signer: &Holder, keys: Vec<Key>, ca_public_key: Option<Vec<u8>>);

    /// Called when the pinned signers change (after [`Link::pinned`] says
    /// so): what the others listed is forgotten.
    fn pinned_changed(&self, pinned: &[Fingerprint]);

    /// Called when `signer` says this device's certificates were revoked
    /// while its session is up: the certificate is no longer offered.
    fn certificates_revoked(&self, signer: &Holder, refusal: Refusal);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vmux_link::home::Home;

    #[test]
    fn a_signer_no_longer_pinned_is_neither_woken_nor_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_owned()).unwrap();
        let device = Device::load_or_create(&home, None).unwrap();
        let clock = Arc::new(vmux_link::clock::SystemClock);
        let link = Link::new(&device, clock, Wakes::new(&home), DEFAULT_SIGNER_WAIT);
        let phone = Fingerprint::from_string("SHA256:phone".into());
        let tablet = Fingerprint::from_string("SHA256:tablet".into());
        // Port 9 on loopback: a wake sent there fails fast.
        link.wakes.set(&phone, "http://127.0.0.1:9/up").unwrap();
        link.set_refused(&phone, Some("removed there".into()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _in = rt.enter();

        // No list read yet (or `--signer`): the holder named is woken.
        assert!(link.wake(std::slice::from_ref(&phone)));
        assert!(link.set_pinned(&[phone.clone(), tablet.clone()]));
        assert!(!link.set_pinned(&[phone.clone(), tablet.clone()]));
        assert!(link.wake(&[]));
        assert!(link.set_pinned(std::slice::from_ref(&tablet)));
        assert_eq!(link.wakes.get(&phone), None);
        assert_eq!(link.refusal(std::slice::from_ref(&phone)), None);
        // An endpoint that came back (a session ending as it went) is not
        // used either.
        link.wakes.set(&phone, "http://127.0.0.1:9/up").unwrap();
        assert!(!link.wake(std::slice::from_ref(&phone)));
        assert!(!link.wake(&[]));
        assert_eq!(link.pinned(), Some(vec![tablet]));
    }
}
