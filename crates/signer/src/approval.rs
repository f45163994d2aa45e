//! The person's attention, one request at a time.
//!
//! A request takes a [`Turn`] (first come, first served: tokio's mutex is
//! fair) and holds it through the whole exchange: the sheet, then user
//! verification, then the banner. Nothing else can be shown in between, so an
//! answer always belongs to the sheet on screen. Dropping the turn (the
//! request expired, the peer left) withdraws whatever it was showing.
//!
//! The front ends ([`crate::ui`]) only execute [`Command`]s; they never decide.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Mutex, OwnedMutexGuard, mpsc, oneshot};
use vmux_keys::ca::Grant;
use vmux_link::Fingerprint;
use vmux_link::pairing::PairingCode;
use vmux_proto::envelope::ContextQuality;
use zeroize::Zeroizing;

use crate::ui::guide::Guide;

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
    /// A paired device asks for a signature.
    Sign {
        /// The paired device's name.
        device: String,
        /// Where the signature will be used, as far as the requester knows.
        destination: Destination,
        /// The identity's name.
        key: String,
    },
    /// A paired device asks for a session certificate.
    Certificate {
        /// What the CA will sign, exactly: the device's pinned name, the
        /// principals, validity, extensions and critical options.
        grant: Grant,
        /// There is no CA yet: approving makes one, and the person chooses
        /// its passphrase.
        new_ca: bool,
    },
}

/// Where a signature is going, and how sure the requester is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Destination {
    /// Server host name.
    pub host: Option<String>,
    /// Login name on it.
    pub user: Option<String>,
    /// What the signature is for, e.g. `SSH login` or `git signature`.
    pub purpose: Option<String>,
    /// `unknown`, `claimed` or `verified`.
    pub quality: ContextQuality,
}

/// The person's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Accept / approve.
    Approve,
    /// Reject / deny.
    Deny,
}

/// What a front end is told to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Command {
    /// Show `sheet` and send back the answer; a closed `reply` means the
    /// request was withdrawn: dismiss it.
    Sheet {
        sheet: Sheet,
        reply: oneshot::Sender<Decision>,
    },
    /// Ask for a passphrase or PIN without echoing it.
    Secret {
        prompt: String,
        reply: oneshot::Sender<Zeroizing<String>>,
    },
    /// Show a status line.
    Banner(String),
    /// Keep this panel of next steps on the idle screen (replacing any).
    Guide(Guide),
    /// This many requests are queued behind the current one.
    Waiting(usize),
}

/// The request side: cloned into every request task.
#[derive(Clone, Debug)]
pub struct Approvals {
    floor: Arc<Mutex<()>>,
    waiting: Arc<AtomicUsize>,
    ui: mpsc::UnboundedSender<Command>,
}

/// The UI went away (the signer is stopping): treat as a denial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UiClosed;

impl Approvals {
    /// A new queue; the receiver goes to a front end.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Command>) {
        let (ui, rx) = mpsc::unbounded_channel();
        let approvals = Self {
            floor: Arc::new(Mutex::new(())),
            waiting: Arc::new(AtomicUsize::new(0)),
            ui,
        };
        (approvals, rx)
    }

    /// Waits for the person's attention, behind every earlier request.
    pub async fn turn(&self) -> Turn {
        let queued = self.waiting.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = self.ui.send(Command::Waiting(queued));
        // Decrements on every exit, including cancellation while queued.
        let counted = Counted(Arc::clone(&self.waiting), self.ui.clone());
        let guard = Arc::clone(&self.floor).lock_owned().await;
        drop(counted);
        Turn {
            _floor: guard,
            ui: self.ui.clone(),
        }
    }

    /// Shows a status line without taking a turn.
    pub fn banner(&self, text: impl Into<String>) {
        let _ = self.ui.send(Command::Banner(text.into()));
    }

    /// Shows (or replaces) the panel of next steps.
    pub fn guide(&self, guide: Guide) {
        let _ = self.ui.send(Command::Guide(guide));
    }
}

struct Counted(Arc<AtomicUsize>, mpsc::UnboundedSender<Command>);

impl Drop for Counted {
    fn drop(&mut self) {
        let left = self.0.fetch_sub(1, Ordering::SeqCst).saturating_sub(1);
        let _ = self.1.send(Command::Waiting(left));
    }
}

/// The person's attention, held by one request.
#[derive(Debug)]
pub struct Turn {
    _floor: OwnedMutexGuard<()>,
    ui: mpsc::UnboundedSender<Command>,
}

impl Turn {
    /// Shows `sheet` and waits for the answer.
    pub async fn ask(&mut self, sheet: Sheet) -> Result<Decision, UiClosed> {
        let (reply, answer) = oneshot::channel();
        self.ui
            .send(Command::Sheet { sheet, reply })
            .map_err(|_| UiClosed)?;
        answer.await.map_err(|_| UiClosed)
    }

    /// Asks for a secret (passphrase or PIN).
    pub async fn secret(
        &mut self,
        prompt: impl Into<String>,
    ) -> Result<Zeroizing<String>, UiClosed> {
        let (reply, answer) = oneshot::channel();
        self.ui
            .send(Command::Secret {
                prompt: prompt.into(),
                reply,
            })
            .map_err(|_| UiClosed)?;
        answer.await.map_err(|_| UiClosed)
    }

    /// Shows a status line.
    pub fn banner(&self, text: impl Into<String>) {
        let _ = self.ui.send(Command::Banner(text.into()));
    }
}
