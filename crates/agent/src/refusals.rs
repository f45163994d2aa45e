//! Why the signer last refused this device, or could not be reached: kept
//! for `vmux status` with its time, in words a person reads, with what to
//! do next; and said once in the agent's log, not on every retry.

use std::sync::{Mutex, PoisonError};

use vmux_link::requester::Refusal;
use vmux_proto::envelope::ErrorCode;
use vmux_proto::text::escape;

use crate::control::StatusRefusal;

/// The words for a device removed on the signer.
pub const REMOVED: &str = "signer refused: device removed on the signer";
/// The words for a device whose certificates were revoked.
pub const REVOKED: &str = "certificate revoked: no more will be issued";

/// What went wrong, before it is put in words.
#[derive(Debug, Clone)]
pub enum Why {
    /// The signer no longer has this device paired; `address` is where it
    /// was last reached, for the pairing command.
    Removed {
        refusal: Refusal,
        address: Option<String>,
    },
    /// The signer refused a signature with the key commented `key`.
    Sign { key: String, refusal: Refusal },
    /// The signer refused a session certificate.
    Certificate(Refusal),
    /// No session with the signer within the bound.
    Unreachable,
    /// Sent, but no answer within the bound.
    TimedOut,
}

impl Why {
    /// The reason and the next step.
    fn words(&self) -> (String, String) {
        match self {
            Why::Removed { address, .. } => (
                REMOVED.to_owned(),
                format!(
                    "pair again: `vmux pair --signer {}` (the agent picks the new pairing up)",
                    address.as_deref().unwrap_or("HOST:PORT")
                ),
            ),
            Why::Certificate(r) if r.code == ErrorCode::CertificateRevoked => (
                REVOKED.to_owned(),
                "nothing to retry; logins go on with the signer's keys".to_owned(),
            ),
            Why::Certificate(r) => (
                format!("certificate refused: {}", r.code),
                next_step(r.code).to_owned(),
            ),
            Why::Sign { key, refusal } => (
                format!("the signer refused to sign with \"{key}\""),
                next_step(refusal.code).to_owned(),
            ),
            Why::Unreachable => (
                "signer unreachable".to_owned(),
                "start `vmux signer` on the signer's machine, or check the network between the two"
                    .to_owned(),
            ),
            Why::TimedOut => (
                "no answer from the signer in time".to_owned(),
                "approve on the signer within its 60 s window".to_owned(),
            ),
        }
    }

    /// The signer's own words and code, when it gave them.
    fn signer_said(&self) -> Option<(String, &'static str)> {
        match self {
            Why::Removed { refusal, .. }
            | Why::Sign { refusal, .. }
            | Why::Certificate(refusal) => Some((refusal.reason(), refusal.code.as_str())),
            Why::Unreachable | Why::TimedOut => None,
        }
    }

    /// Worth a warning: a person saying no is the system working.
    fn warns(&self) -> bool {
        !matches!(
            self,
            Why::Sign { refusal: r, .. } | Why::Certificate(r) if r.code == ErrorCode::UserDenied
        )
    }
}

/// What to do after a refusal with `code`.
fn next_step(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::UserDenied => "approve it on the signer next time",
        ErrorCode::RequestExpired => {
            "approve on the signer within its 60 s window; if that was done, check both clocks"
        }
        ErrorCode::PairingInvalid => "pair again with `vmux pair --signer HOST:PORT`",
        ErrorCode::UnknownKey => "run `vmux refresh` to update the agent's key list",
        ErrorCode::KeyDisabled => "enable the key on the signer (`vmux key enable NAME`)",
        ErrorCode::VerificationFailed => "retry with the right passphrase or PIN",
        ErrorCode::PolicyDenied => "see the signer's policy (`vmux ca policy`, `vmux key policy`)",
        ErrorCode::ReplayedRequest => "retry; if it persists, report it",
        ErrorCode::MalformedRequest => "update vmux on the older side",
        ErrorCode::SignerBusy => "answer or let the waiting requests expire, then retry",
        ErrorCode::CertificateRevoked => "nothing to retry; logins go on with the signer's keys",
        ErrorCode::Internal | ErrorCode::Unknown => {
            "see the signer's terminal and `vmux signer log`"
        }
    }
}

/// The last refusal, and what was last said about one.
#[derive(Debug, Default)]
pub struct Refusals {
    last: Mutex<Option<StatusRefusal>>,
    /// The warning last written, so a retry does not write it again.
    warned: Mutex<Option<String>>,
}

impl Refusals {
    /// Records `why`, at `now_ms`; warns unless that warning was the last.
    pub fn refused(&self, now_ms: u64, why: &Why) {
        let (reason, next_step) = why.words();
        let said = why.signer_said();
        // The signer's words and names from it reach a terminal: escaped.
        let warning = match &said {
            Some((message, code)) => format!(
                "{}: {} ({code}); {next_step}",
                escape(&reason),
                escape(message)
            ),
            None => format!("{}; {next_step}", escape(&reason)),
        };
        {
            let mut warned = self.warned.lock().unwrap_or_else(PoisonError::into_inner);
            if why.warns() && warned.as_deref() != Some(warning.as_str()) {
                tracing::warn!("{warning}");
                *warned = Some(warning);
            }
        }
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(StatusRefusal {
            at_milliseconds: now_ms,
            reason,
            next_step,
            signer_message: said.as_ref().map(|(m, _)| m.clone()),
            code: said.map(|(_, c)| c.to_owned()),
        });
    }

    /// A request went through: the refusal no longer stands, and the next
    /// one is worth a warning again.
    pub fn worked(&self) {
        *self.warned.lock().unwrap_or_else(PoisonError::into_inner) = None;
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// A session came up: a removal no longer stands (this device was
    /// paired again); other refusals stay until a request works.
    pub fn connected(&self) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.as_ref().is_some_and(|l| l.reason == REMOVED) {
            *last = None;
            *self.warned.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
    }

    /// The last refusal, while it stands.
    pub fn last(&self) -> Option<StatusRefusal> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn removed() -> Why {
        Why::Removed {
            refusal: Refusal::new(
                Some(ErrorCode::PairingInvalid),
                Some("not paired\u{1b}[2J".into()),
            ),
            address: Some("127.0.0.1:7000".into()),
        }
    }

    #[test]
    fn a_refusal_is_kept_in_words_until_something_works() {
        let refusals = Refusals::default();
        refusals.refused(1_000, &removed());
        let last = refusals.last().unwrap();
        assert_eq!(last.at_milliseconds, 1_000);
        assert_eq!(last.reason, REMOVED);
        assert!(last.next_step.contains("vmux pair --signer 127.0.0.1:7000"));
        assert_eq!(last.code.as_deref(), Some("pairingInvalid"));
        // Said once: the same refusal again changes only the time.
        refusals.refused(2_000, &removed());
        assert_eq!(
            refusals
                .warned
                .lock()
                .unwrap()
                .as_deref()
                .map(|w| w.contains("\\e[2J")),
            Some(true)
        );
        assert_eq!(refusals.last().unwrap().at_milliseconds, 2_000);
        refusals.worked();
        assert!(refusals.last().is_none());
        assert!(refusals.warned.lock().unwrap().is_none());

        let revoked = Why::Certificate(Refusal::new(Some(ErrorCode::CertificateRevoked), None));
        refusals.refused(3_000, &revoked);
        let last = refusals.last().unwrap();
        assert_eq!(last.reason, REVOKED);
        assert!(
            !last.next_step.contains("cert request"),
            "{}",
            last.next_step
        );
        // A person's Deny is recorded but not warned about.
        let denied = Why::Sign {
            key: "work".into(),
            refusal: Refusal::new(Some(ErrorCode::UserDenied), None),
        };
        refusals.worked();
        refusals.refused(4_000, &denied);
        assert!(refusals.warned.lock().unwrap().is_none());
        let last = refusals.last().unwrap();
        assert_eq!(last.reason, "the signer refused to sign with \"work\"");
        assert_eq!(last.code.as_deref(), Some("userDenied"));
    }
}
