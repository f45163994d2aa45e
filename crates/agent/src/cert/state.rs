//! The certificate's life as a pure state machine: given the time, what is
//! offered, what status says, and whether to ask the signer. No I/O, so
//! tests drive it with any clock.

use vmux_link::clock::format_utc;
use vmux_proto::envelope::ErrorCode;

use super::Ephemeral;

/// Renew once fewer than this many seconds remain: an hour, so a
/// certificate is renewed well before a login could find it expired.
pub const RENEW_BEFORE_SECS: u64 = 60 * 60;

/// A certificate we hold, with the key it certifies.
#[derive(Debug)]
pub struct Held {
    /// The ephemeral key the certificate is for.
    pub key: Ephemeral,
    /// The OpenSSH certificate blob.
    pub certificate_blob: Vec<u8>,
    /// The certificate's `valid after`, seconds.
    pub valid_after: u64,
    /// The certificate's `valid before`, seconds.
    pub valid_before: u64,
}

impl Held {
    fn valid_at(&self, now_ms: u64) -> bool {
        now_ms / 1000 < self.valid_before
    }

    /// Under an hour left, or under half its life for a certificate the
    /// signer's policy made short: otherwise a 30-minute certificate would
    /// be renewed the moment it arrived, and then every minute.
    fn renewal_due(&self, now_ms: u64) -> bool {
        let lifetime = self.valid_before.saturating_sub(self.valid_after);
        let threshold = RENEW_BEFORE_SECS.min(lifetime / 2);
        self.valid_before.saturating_sub(now_ms / 1000) < threshold
    }
}

/// What the agent should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Ask the signer for a (new) certificate.
    Request,
}

/// Where the certificate stands.
#[derive(Debug, Default)]
pub struct CertState {
    current: Option<Held>,
    /// The last certificate ran out; its key is gone.
    expired: bool,
    /// A request is with the signer.
    pending: bool,
    /// The last request was refused: ask no more until the next session or
    /// `vmux cert request`, so a denial does not become a stream of sheets.
    held_back: bool,
    refused: Option<ErrorCode>,
    /// Forgotten on SIGUSR1: nothing is asked for until the person asks
    /// (`vmux cert request`), so the next login goes to the signer.
    forgotten: bool,
    /// Bumped by each forgetting, so an answer to a request sent before
    /// it is not taken after it.
    epoch: u64,
    /// The signer revoked this device's certificates: nothing is asked for
    /// again, not even on a new session, until the person asks.
    revoked: bool,
}

impl CertState {
    /// The certificate to offer at `now_ms`, if one is valid.
    pub fn offered(&self, now_ms: u64) -> Option<&Held> {
        self.current.as_ref().filter(|h| h.valid_at(now_ms))
    }

    /// What to do at `now_ms` while a session with the signer is up.
    pub fn due(&self, now_ms: u64) -> Option<Action> {
        if self.pending || self.held_back || self.forgotten || self.revoked {
            return None;
        }
        match &self.current {
            Some(h) if h.valid_at(now_ms) && !h.renewal_due(now_ms) => None,
            _ => Some(Action::Request),
        }
    }

    /// Forgets a certificate past `valid before` (and wipes its key).
    pub fn expire(&mut self, now_ms: u64) {
        if self.current.as_ref().is_some_and(|h| !h.valid_at(now_ms)) {
            self.current = None;
            self.expired = true;
        }
    }

    /// A new session with the signer came up: a refusal no longer holds
    /// requests back.
    pub fn connected(&mut self) {
        self.held_back = self.revoked;
    }

    /// Marks a request as sent; false if one already is. A manual request
    /// lifts the hold a refusal or a forgetting put on automatic ones.
    pub fn begin(&mut self, manual: bool) -> bool {
        if self.pending {
            return false;
        }
        if manual {
            self.held_back = false;
            self.forgotten = false;
        }
        self.pending = true;
        true
    }

    /// Drops the certificate and wipes its key now (SIGUSR1, as
    /// ssh-agent drops its keys: openssh-portable e86d7a077). An answer
    /// still on its way is dropped too.
    pub fn forget(&mut self) {
        self.current = None;
        self.expired = false;
        self.forgotten = true;
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// Which forgetting the state is in: a request keeps the value it
    /// began with and gives it back to [`Self::issued`].
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The signer issued `held`, already checked to be for its key, for a
    /// request begun in `epoch`; false (and `held` wiped) if the
    /// certificate was forgotten meanwhile.
    pub fn issued_in(&mut self, epoch: u64, held: Held) -> bool {
        if epoch != self.epoch {
            self.pending = false;
            return false;
        }
        self.issued(held);
        true
    }

    /// The signer issued `held`, already checked to be for its key.
    pub fn issued(&mut self, held: Held) {
        self.current = Some(held);
        self.expired = false;
        self.pending = false;
        self.held_back = false;
        self.refused = None;
        self.revoked = false;
    }

    /// The signer refused (or sent a certificate we had to discard).
    pub fn refused(&mut self, code: ErrorCode) {
        self.pending = false;
        self.held_back = true;
        self.refused = Some(code);
        self.expired = false;
    }

    /// The signer revoked this device's certificates: the one held is
    /// dropped (its key wiped), one still on its way too, and no other is
    /// asked for.
    pub fn revoked(&mut self) {
        self.current = None;
        self.pending = false;
        self.held_back = true;
        self.revoked = true;
        self.expired = false;
        self.refused = Some(ErrorCode::CertificateRevoked);
        // A certificate still on its way was issued before: not taken.
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// The request never reached an answer (no session, session lost):
    /// the next session asks again.
    pub fn unreachable(&mut self) {
        self.pending = false;
    }

    /// Whether a request is with the signer.
    pub fn is_pending(&self) -> bool {
        self.pending
    }

    /// The code of the last refusal, until a certificate is issued.
    pub fn last_refusal(&self) -> Option<ErrorCode> {
        self.refused
    }

    /// The status line, as the original's menu showed it: `Certificate
    /// valid until …`, `Certificate expired — connect signer to renew`, `No
    /// session certificate`.
    pub fn status_line(&self, now_ms: u64) -> String {
        match &self.current {
            Some(h) if h.valid_at(now_ms) => format!(
                "Certificate valid until {}",
                format_utc(h.valid_before.saturating_mul(1000))
            ),
            Some(_) => EXPIRED.to_owned(),
            None if self.forgotten => FORGOTTEN.to_owned(),
            None if self.expired => EXPIRED.to_owned(),
            None if self.revoked => {
                "No session certificate: revoked on the signer, no more will be issued".to_owned()
            }
            None => "No session certificate".to_owned(),
        }
    }
}

const EXPIRED: &str = "Certificate expired — connect signer to renew";
/// After SIGUSR1.
pub const FORGOTTEN: &str = "Certificate forgotten on SIGUSR1 — logins go to the signer; \
                             `vmux cert request` asks for a new one";
