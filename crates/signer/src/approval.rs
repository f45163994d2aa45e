//! Sheets waiting for the person, one at a time, first come first served.
//!
//! A request's task queues a [`Sheet`] and awaits the [`Decision`]. If the
//! task gives up (timeout, peer gone) its answer channel closes and the UI
//! dismisses the sheet: a late answer is never applied to anything.

use tokio::sync::{mpsc, oneshot};
use vmux_link::Fingerprint;
use vmux_link::pairing::PairingCode;

/// What the person is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sheet {
    /// An unknown device wants to pair.
    Pairing {
        /// The name it gave.
        device: String,
        /// Its static key.
        fingerprint: Fingerprint,
        /// The code its person sees.
        code: PairingCode,
    },
}

/// The person's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Accept / approve.
    Approve,
    /// Reject / deny.
    Deny,
}

/// A sheet in the queue with the channel its answer goes back on.
#[derive(Debug)]
pub struct Pending {
    /// What to show.
    pub sheet: Sheet,
    /// Where the answer goes; closed if the requester stopped waiting.
    pub answer: oneshot::Sender<Decision>,
}

/// The sending side of the queue, cloned into every request task.
#[derive(Clone, Debug)]
pub struct Approvals {
    queue: mpsc::UnboundedSender<Pending>,
}

/// Why no decision came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoDecision {
    /// The UI is gone (the signer is shutting down).
    UiClosed,
}

impl Approvals {
    /// A new queue; the receiver goes to the UI.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Pending>) {
        let (queue, rx) = mpsc::unbounded_channel();
        (Self { queue }, rx)
    }

    /// Queues `sheet` and waits for the person. Cancel-safe: dropping the
    /// future withdraws the sheet.
    pub async fn ask(&self, sheet: Sheet) -> Result<Decision, NoDecision> {
        let (answer, decision) = oneshot::channel();
        self.queue
            .send(Pending { sheet, answer })
            .map_err(|_| NoDecision::UiClosed)?;
        decision.await.map_err(|_| NoDecision::UiClosed)
    }
}
