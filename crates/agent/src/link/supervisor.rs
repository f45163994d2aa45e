//! Keeping a session up with every pinned signer, for as long as the agent
//! runs: one task per signer, started as signers are paired (the trust
//! store is read again every few seconds) and stopped when they are
//! removed.
//!
//! Each task tries the address its signer was last reached at. When that
//! fails and the address is not on this machine, it looks for the signer's
//! fingerprint on the local network ([`vmux_link::find`], as `vmux ssh`
//! does): soon after the session was lost, then less and less often, and
//! every few seconds while a request waits. A session opened at a new
//! address records it in the trust store. A signer with no address
//! recorded is not looked for: pairing again records one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};
use vmux_link::Fingerprint;
use vmux_link::backoff::Backoff;
use vmux_link::device::Device;
use vmux_link::find::{self, DISCOVERY_WAIT};
use vmux_link::home::Home;
use vmux_link::requester::Refusal;
use vmux_link::session::{self, Session};
use vmux_link::trust::{self, PeerRole, TrustStore};
use vmux_proto::envelope::{Envelope, ErrorCode, KeyListRequest, Role};

use super::waiters::Answer;
use super::{Connected, KeyListSink, Link};
use crate::keys::{Holder, Key};
use crate::refusals::Why;

/// How often the trust store is read for signers paired or removed.
const TRUST_POLL: Duration = Duration::from_secs(2);
/// Browsing for a lost signer: first this soon, then doubling…
const BROWSE_FIRST: Duration = Duration::from_secs(5);
/// …up to this far apart while nobody waits for it.
const BROWSE_CAP: Duration = Duration::from_secs(60);

/// Which signer a task keeps a session with.
#[derive(Clone, Debug)]
enum Target {
    /// The pinned signer with this fingerprint, wherever it is.
    Pinned(Fingerprint),
    /// Whichever pinned signer answers at this address (`--signer`).
    Address(String),
}

/// The per-signer tasks; stopping the supervisor stops them all.
struct Tasks(HashMap<Fingerprint, JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in self.0.values() {
            task.abort();
        }
    }
}

/// Keeps a session up with every pinned signer (or, with `address`, with
/// the one there) for as long as the agent runs.
pub async fn supervise(
    link: Arc<Link>,
    sink: Arc<dyn KeyListSink>,
    home: Home,
    device: Device,
    address: Option<String>,
) {
    let device = Arc::new(device);
    if let Some(address) = address {
        keep_up(link, sink, home, device, Target::Address(address)).await;
        return;
    }
    let mut tasks = Tasks(HashMap::new());
    let mut told = String::new();
    loop {
        let pinned: Option<Vec<Fingerprint>> = match TrustStore::load(&home) {
            Ok(trust) => Some(
                trust
                    .signers()
                    .iter()
                    .map(|p| p.key_fingerprint())
                    .collect(),
            ),
            Err(e) => {
                say_once(&mut told, e.to_string());
                None
            }
        };
        if let Some(pinned) = pinned {
            // Before tasks start: the link takes key lists only from the
            // signers it knows are pinned.
            if link.set_pinned(&pinned) {
                sink.pinned_changed(&pinned);
            }
            tasks.0.retain(|fingerprint, task| {
                let keep = pinned.contains(fingerprint) && !task.is_finished();
                if !keep {
                    task.abort();
                }
                keep
            });
            for fingerprint in &pinned {
                tasks.0.entry(fingerprint.clone()).or_insert_with(|| {
                    tokio::spawn(keep_up(
                        Arc::clone(&link),
                        Arc::clone(&sink),
                        home.clone(),
                        Arc::clone(&device),
                        Target::Pinned(fingerprint.clone()),
                    ))
                });
            }
            if pinned.is_empty() {
                say_once(
                    &mut told,
                    "this device is not paired with a signer; run `vmux pair --signer HOST:PORT`, \
                     the agent will pick it up"
                        .to_owned(),
                );
            }
        }
        sleep(TRUST_POLL).await;
    }
}

/// Warns with `message` unless it was the last thing said: an agent left
/// running without its signer should not fill the terminal.
fn say_once(last: &mut String, message: String) {
    if *last != message {
        tracing::warn!("{message}");
        *last = message;
    }
}

/// When to look on the local network next.
struct Browsing {
    last: Option<Instant>,
    interval: Duration,
}

impl Browsing {
    fn new() -> Self {
        Self {
            last: None,
            interval: BROWSE_FIRST,
        }
    }

    /// Whether to browse now: at the first failure, then at growing
    /// intervals, or, while a request waits, [`BROWSE_FIRST`] after the
    /// last look.
    fn due(&mut self, wanted: bool) -> bool {
        let now = Instant::now();
        let due = match self.last {
            None => true,
            Some(last) => now >= last + self.interval || (wanted && now >= last + BROWSE_FIRST),
        };
        if due {
            if self.last.is_some() {
                self.interval = (self.interval * 2).min(BROWSE_CAP);
            }
            self.last = Some(now);
        }
        due
    }
}

/// One signer's session, kept up.
async fn keep_up(
    link: Arc<Link>,
    sink: Arc<dyn KeyListSink>,
    home: Home,
    device: Arc<Device>,
    target: Target,
) {
    let mut backoff = Backoff::default();
    let mut browsing = Browsing::new();
    let mut told = String::new();
    let mut wanted = false;
    loop {
        let mut trust = match TrustStore::load(&home) {
            Ok(t) => t,
            Err(e) => {
                say_once(&mut told, e.to_string());
                sleep(TRUST_POLL).await;
                continue;
            }
        };
        // Unpaired: the supervisor stops this task.
        let Some((addresses, fingerprint, name)) = where_now(&trust, &target) else {
            return;
        };
        let mut tried = Tried::default();
        let mut session = connect_first(&link, &addresses, &device, &mut trust, &mut tried).await;
        if session.is_none()
            && let Some(fp) = &fingerprint
            && find::worth_browsing(&addresses)
            && browsing.due(wanted)
        {
            let found: Vec<String> = find::discover(std::slice::from_ref(fp), DISCOVERY_WAIT)
                .await
                .into_iter()
                .map(|(_, a)| a)
                .filter(|a| !addresses.contains(a))
                .collect();
            session = connect_first(&link, &found, &device, &mut trust, &mut tried).await;
        }
        // Removed on the signer: its requests are refused at once, and
        // asking again cannot help until this device is paired again.
        if session.is_none()
            && let Some(why) = tried.refused
        {
            if let Some(fp) = &fingerprint {
                link.set_refused(fp, Some(why.message.clone().unwrap_or_default()));
            }
            removed_there(&link, &home, why, addresses.first().cloned()).await;
            continue;
        }
        match session {
            Some(session) => {
                backoff.reset();
                browsing = Browsing::new();
                told.clear();
                tracing::info!(
                    "connected to signer {}",
                    vmux_proto::text::escape(&session.peer().name)
                );
                let fp = session.peer().fingerprint();
                link.set_refused(&fp, None);
                link.refusals.connected();
                run_session(&link, sink.as_ref(), session, &home).await;
                // It said this device was removed as it closed the session.
                if let Some(message) = link.refusal(std::slice::from_ref(&fp)) {
                    let refusal = Refusal::new(Some(ErrorCode::PairingInvalid), Some(message));
                    removed_there(&link, &home, refusal, addresses.first().cloned()).await;
                    continue;
                }
            }
            None => say_once(&mut told, tried.words(&name)),
        }
        let mut random = [0u8; 4];
        let _ = getrandom::fill(&mut random);
        wanted = tokio::select! {
            () = sleep(backoff.next_delay(u32::from_le_bytes(random))) => false,
            () = link.wanted.notified() => true,
        };
    }
}

/// The addresses to try for `target`, its fingerprint and name; `None`
/// once it is no longer pinned.
fn where_now(
    trust: &TrustStore,
    target: &Target,
) -> Option<(Vec<String>, Option<Fingerprint>, String)> {
    match target {
        Target::Address(a) => Some((vec![a.clone()], None, String::new())),
        Target::Pinned(fp) => {
            let peer = trust
                .signers()
                .into_iter()
                .find(|p| &p.key_fingerprint() == fp)?;
            let addresses = peer.address.iter().cloned().collect();
            Some((addresses, Some(fp.clone()), peer.name.clone()))
        }
    }
}

/// The signer said this device was removed there: says so (once, and in
/// `vmux status`, with the pairing command for `address`), then waits
/// until the trust store changes. Only pairing again (or removing the
/// signer here) helps, so the agent does not knock on its door meanwhile.
async fn removed_there(link: &Link, home: &Home, refusal: Refusal, address: Option<String>) {
    let now = link.requester.now_ms();
    link.refusals
        .refused(now, &Why::Removed { refusal, address });
    tracing::info!("not connecting again until this device is paired again");
    vmux_link::watch::Watch::new([trust::path(home)])
        .changed()
        .await;
}

/// What the tries at a signer's addresses gave, when none worked.
#[derive(Default)]
struct Tried {
    /// Each address and why it failed.
    failures: Vec<String>,
    /// The signer's word when it refuses this device for good.
    refused: Option<Refusal>,
}

impl Tried {
    /// What to tell the person about the signer `name`.
    fn words(&self, name: &str) -> String {
        match self.failures.last() {
            Some(last) => last.clone(),
            // No address to try, so nothing to look for on the network
            // either: only a new address in the trust store helps.
            None => format!(
                "no address is known for the signer {}, so it is not tried; pair again \
                 with `vmux pair --signer HOST:PORT` to record one, which this agent then uses",
                vmux_proto::text::escape(name)
            ),
        }
    }
}

/// A session with the first of `addresses` that answers with a pinned key.
async fn connect_first(
    link: &Link,
    addresses: &[String],
    device: &Device,
    trust: &mut TrustStore,
    tried: &mut Tried,
) -> Option<Session> {
    for address in addresses {
        match session::connect(address, device, Role::Agent, trust, link.requester.now_ms()).await {
            Ok(session) => return Some(session),
            Err(e) => {
                if let vmux_link::Error::Peer {
                    code: ErrorCode::PairingInvalid,
                    message,
                } = &e
                {
                    let refusal =
                        Refusal::new(Some(ErrorCode::PairingInvalid), Some(message.clone()));
                    tried.refused = Some(refusal);
                }
                tried.failures.push(format!("signer at {address}: {e}"));
            }
        }
    }
    None
}

/// Serves one session until it ends: key lists, wake endpoints, and the
/// answers to requests.
async fn run_session(link: &Arc<Link>, sink: &dyn KeyListSink, mut session: Session, home: &Home) {
    let peer = session.peer().clone();
    // `vmux peers remove` of this signer ends the session at once.
    let removed = trust::unpinned(trust::path(home), PeerRole::Signer, peer.public_key);
    tokio::pin!(removed);
    let holder = Holder {
        fingerprint: peer.fingerprint(),
        name: peer.name.clone(),
    };
    let sender = session.sender();
    if let Err(e) = sender
        .send(Envelope::KeyListRequest(KeyListRequest {}))
        .await
    {
        tracing::warn!("signer {}: {e}", vmux_proto::text::escape(&peer.name));
        return;
    }
    let _up = link.session_up(Connected {
        name: peer.name.clone(),
        fingerprint: holder.fingerprint.clone(),
        sender,
    });
    let from = &holder.fingerprint;
    let why = loop {
        let received = tokio::select! {
            received = session.recv() => received,
            () = &mut removed => break vmux_link::Error::Peer {
                code: ErrorCode::PairingInvalid,
                message: "this signer was removed from the paired devices".into(),
            },
        };
        match received {
            Ok(Envelope::SignResponse(r)) => {
                link.waiters
                    .route(from, &r.request_id.clone(), Answer::Sign(r))
            }
            Ok(Envelope::CertificateResponse(r)) => {
                link.waiters
                    .route(from, &r.request_id.clone(), Answer::Certificate(r));
            }
            Ok(Envelope::KeyList(list)) => {
                let keys = list.keys.iter().map(Key::from_record).collect();
                sink.key_list(&holder, keys, list.ca_public_key);
                link.key_lists.send_modify(|n| *n = n.wrapping_add(1));
            }
            Ok(Envelope::DeviceTokenUpdate(update)) => {
                if let Err(e) = link.wakes.set(from, &update.endpoint) {
                    tracing::warn!(
                        "signer {}: not using its wake endpoint: {e}",
                        vmux_proto::text::escape(&peer.name)
                    );
                }
            }
            Ok(Envelope::Error(report)) => {
                tracing::warn!(
                    "signer {} reports: {} ({})",
                    vmux_proto::text::escape(&peer.name),
                    vmux_proto::text::escape(&report.message),
                    report.code.as_str()
                );
                // Removed on the signer: it closes the session next.
                if report.code == ErrorCode::PairingInvalid {
                    link.set_refused(from, Some(report.message.clone()));
                }
                // Revoked there while we are connected: stop offering the
                // certificate now.
                if report.code == ErrorCode::CertificateRevoked && report.request_id.is_none() {
                    sink.certificates_revoked(
                        &holder,
                        vmux_link::requester::read_error(report.clone()),
                    );
                }
                // Protocol §8.2: an error naming a request in flight ends
                // it now, instead of leaving it to its timeout.
                if let Some(id) = report.request_id.clone() {
                    link.waiters.route(from, &id, Answer::Error(report));
                }
            }
            // Nothing else is ours to handle.
            Ok(other) => tracing::debug!("ignoring {} from the signer", other.type_name()),
            Err(e) => break e,
        }
    };
    tracing::warn!(
        "lost the signer {}: {why}; reconnecting",
        vmux_proto::text::escape(&peer.name)
    );
}
