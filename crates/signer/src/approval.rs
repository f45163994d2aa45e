//! The person's attention, one request at a time.
//!
//! A request takes a [`Turn`] (first come, first served: tokio's mutex is
//! fair) and holds it through the whole exchange: the sheet, then user
//! verification, then the banner. Nothing else can be shown in between, so an
//! answer always belongs to the sheet on screen. Dropping the turn (the
//! request expired, the peer left) withdraws whatever it was showing.
//!
//! Requests from paired devices come first. A pairing invitation (which
//! anyone on the network can send while a window is open) is shown only
//! when no such request waits, and is withdrawn the moment one arrives, to
//! come back after it ([`Approvals::ask_yielding`]): a sign request never
//! expires behind a pairing sheet.
//!
//! The front ends ([`crate::ui`]) only execute [`Command`]s; they never decide.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, OwnedMutexGuard, mpsc, oneshot, watch};
use vmux_keys::ca::Grant;
use vmux_link::Fingerprint;
use vmux_link::pairing::PairingCode;
use zeroize::Zeroizing;

use crate::ui::guide::Guide;

pub use crate::destination::Destination;

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
        /// The keys of paired devices already pinned under that name.
        already_named: Vec<Fingerprint>,
    },
    /// A paired device asks for a signature.
    Sign {
        /// The paired device's name, as pinned at pairing.
        device: String,
        /// The name it gives itself now, when that differs: its claim.
        claimed: Option<String>,
        /// Where the signature will be used, each item with how sure the
        /// signer is of it (boxed: it is most of the sheet's size).
        destination: Box<Destination>,
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
        /// The name the device gives itself now, when that differs from the
        /// pinned one in `grant`: its claim.
        claimed: Option<String>,
        /// The device's key fingerprint, when another paired device has
        /// the same name.
        device_key: Option<Fingerprint>,
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

/// What a front end is told to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Command {
    /// Show `sheet` and send back the answer; a closed `reply` means the
    /// request was withdrawn: dismiss it. `expires` is when the request
    /// runs out, for the countdown (the pipeline then says so itself).
    Sheet {
        sheet: Sheet,
        expires: Option<Instant>,
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
    /// Request turns queued or held: while any is, pairing sheets wait.
    requests: Arc<watch::Sender<usize>>,
    ui: mpsc::UnboundedSender<Command>,
    window: PairingWindow,
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
            requests: Arc::new(watch::channel(0).0),
            window: PairingWindow {
                closes: Arc::default(),
                command: Arc::new(std::sync::Mutex::new("vmux pair".to_owned())),
                ui: ui.downgrade(),
            },
            ui,
        };
        (approvals, rx)
    }

    /// Waits for the person's attention, behind every earlier request (a
    /// pairing sheet on screen steps aside).
    pub async fn turn(&self) -> Turn {
        self.requests.send_modify(|n| *n += 1);
        // Held until the turn ends, and dropped with a cancelled wait.
        let request = RequestCount(Arc::clone(&self.requests));
        let mut turn = self.queue().await;
        turn._request = Some(request);
        turn
    }

    /// Shows `sheet`, which must not hold back requests from paired
    /// devices: only while none waits, withdrawn when one comes and shown
    /// again after it. Returns the turn it was answered in.
    /// `expires` is when it runs out, for the countdown.
    pub async fn ask_yielding(
        &self,
        sheet: Sheet,
        expires: Option<Instant>,
    ) -> (Turn, Result<Decision, UiClosed>) {
        let mut requests = self.requests.subscribe();
        loop {
            // The sender lives in `self`: this cannot fail.
            let _ = requests.wait_for(|n| *n == 0).await;
            let turn = self.queue().await;
            // One may have come while we queued for the floor.
            if *requests.borrow_and_update() > 0 {
                continue;
            }
            let (reply, answer) = oneshot::channel();
            if self
                .ui
                .send(Command::Sheet {
                    sheet: sheet.clone(),
                    expires,
                    reply,
                })
                .is_err()
            {
                return (turn, Err(UiClosed));
            }
            tokio::select! {
                answer = answer => return (turn, answer.map_err(|_| UiClosed)),
                // Dropping `answer` withdraws the sheet.
                _ = requests.wait_for(|n| *n > 0) => {
                    turn.banner("Pairing request set aside for a request from a paired device; it comes back after");
                }
            }
        }
    }

    /// The floor, behind everyone queued before.
    async fn queue(&self) -> Turn {
        let queued = self.waiting.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = self.ui.send(Command::Waiting(queued));
        // Decrements on every exit, including cancellation while queued.
        let counted = Counted(Arc::clone(&self.waiting), self.ui.clone());
        let guard = Arc::clone(&self.floor).lock_owned().await;
        drop(counted);
        Turn {
            _floor: guard,
            _request: None,
            ui: self.ui.clone(),
        }
    }

    /// When unpaired devices may ask to pair; the front ends open it.
    pub fn pairing_window(&self) -> PairingWindow {
        self.window.clone()
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

/// One request turn queued or held, counted in [`Approvals::requests`].
#[derive(Debug)]
struct RequestCount(Arc<watch::Sender<usize>>);

impl Drop for RequestCount {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
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
    _request: Option<RequestCount>,
    ui: mpsc::UnboundedSender<Command>,
}

impl Turn {
    /// Shows `sheet` and waits for the answer.
    pub async fn ask(&mut self, sheet: Sheet) -> Result<Decision, UiClosed> {
        self.ask_expiring(sheet, None).await
    }

    /// Shows `sheet`, with a countdown to `expires`, and waits for the
    /// answer. The caller withdraws it then, and says so.
    pub async fn ask_until(
        &mut self,
        sheet: Sheet,
        expires: Instant,
    ) -> Result<Decision, UiClosed> {
        self.ask_expiring(sheet, Some(expires)).await
    }

    async fn ask_expiring(
        &mut self,
        sheet: Sheet,
        expires: Option<Instant>,
    ) -> Result<Decision, UiClosed> {
        let (reply, answer) = oneshot::channel();
        self.ui
            .send(Command::Sheet {
                sheet,
                expires,
                reply,
            })
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

/// When unpaired devices may ask to pair: only while the person has opened
/// a window (`vmux signer --pair`, `p` on the sheet). Outside one, nobody on
/// the network can put a sheet in front of the person.
#[derive(Clone, Debug)]
pub struct PairingWindow {
    closes: Arc<std::sync::Mutex<Option<Instant>>>,
    /// What the new device runs, as the banner says it.
    command: Arc<std::sync::Mutex<String>>,
    /// Weak: the front end holds a window, and must still see its command
    /// queue close when the signer stops.
    ui: mpsc::WeakUnboundedSender<Command>,
}

impl PairingWindow {
    /// How long a window stays open.
    pub const LENGTH: Duration = Duration::from_secs(5 * 60);

    /// Sets the command the banner tells the new device to run, e.g.
    /// `vmux pair --signer 127.0.0.1:PORT` for a signer not advertised.
    pub fn set_command(&self, command: String) {
        *self.command.lock().unwrap_or_else(PoisonError::into_inner) = command;
    }

    /// Opens (or extends) a window of [`Self::LENGTH`] from now, and says so.
    pub fn open(&self) {
        let closes = Instant::now() + Self::LENGTH;
        *self.closes.lock().unwrap_or_else(PoisonError::into_inner) = Some(closes);
        if let Some(ui) = self.ui.upgrade() {
            let command = self
                .command
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let _ = ui.send(Command::Banner(format!(
                "Accepting new devices for {} minutes: run `{command}` on the new device",
                Self::LENGTH.as_secs() / 60
            )));
        }
    }

    /// Whether a window is open now.
    pub fn is_open(&self) -> bool {
        self.closes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|closes| Instant::now() < closes)
    }
}
