//! The accept loop and each connection's setup: handshakes bounded against
//! strangers ([`super::handshakes`]), sessions bounded per device
//! ([`super::sessions`]), and running out of descriptors met with a pause,
//! never an exit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustix::io::Errno;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, sleep, timeout};
use vmux_link::session::{self, Accepted, HANDSHAKE_TIMEOUT, Invitation, Pairing, Session};
use vmux_link::trust::{PeerRole, TrustStore};
use vmux_link::{Error, Result};
use vmux_proto::envelope::ErrorCode;
use vmux_proto::text::escape;

use super::Signer;
use super::handshakes::{Handshake, Handshakes, SILENT_LIMIT};
use super::sessions::SessionSlot;

/// The first pause after `accept` found no descriptor free, doubled on
/// each failure up to [`ACCEPT_PAUSE_MAX`]: sessions ending free some.
const ACCEPT_PAUSE_FIRST: Duration = Duration::from_millis(10);
const ACCEPT_PAUSE_MAX: Duration = Duration::from_secs(1);
/// At most one warning this often about what a flood causes (evicted
/// handshakes, devices over their session cap): a log line per connection
/// would be a flood of its own.
const FLOOD_WARNING_EVERY: Duration = Duration::from_secs(30);

/// How a connection's setup ended, short of a failure.
enum Setup {
    Session(Session, SessionSlot),
    Invitation(Invitation),
    /// Turned away for want of room (a session cap).
    Refused,
    /// Its stranger's slot went to a newer connection, or it proved no key
    /// within [`SILENT_LIMIT`].
    Dropped(&'static str),
}

/// What a failed `accept` calls for.
enum AcceptFailure {
    /// No descriptor or memory free: wait for some.
    Exhausted,
    /// That one connection failed (it was aborted, say): go on.
    Connection,
    /// The listener itself is broken.
    Fatal,
}

fn accept_failure(e: &std::io::Error) -> AcceptFailure {
    use std::io::ErrorKind;
    match Errno::from_io_error(e) {
        Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM) => {
            return AcceptFailure::Exhausted;
        }
        // accept(2): errors of the new connection, to be retried.
        Some(
            Errno::PROTO
            | Errno::NETDOWN
            | Errno::NOPROTOOPT
            | Errno::HOSTDOWN
            | Errno::HOSTUNREACH
            | Errno::OPNOTSUPP
            | Errno::NETUNREACH,
        ) => return AcceptFailure::Connection,
        // ENONET is Linux's alone (macOS has no such errno).
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Some(Errno::NONET) => return AcceptFailure::Connection,
        _ => {}
    }
    match e.kind() {
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted => {
            AcceptFailure::Connection
        }
        _ => AcceptFailure::Fatal,
    }
}

impl Signer {
    /// Accepts connections until the listener fails. Running out of
    /// descriptors (EMFILE, ENFILE) is not a failure: the signer waits and
    /// tries again, and every device's session and sheet go on.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        let handshakes = Handshakes::default();
        let mut pause: Option<Duration> = None;
        loop {
            let (stream, from) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => match accept_failure(&e) {
                    AcceptFailure::Exhausted => {
                        let next =
                            pause.map_or(ACCEPT_PAUSE_FIRST, |p| (p * 2).min(ACCEPT_PAUSE_MAX));
                        if pause.is_none() {
                            tracing::warn!(
                                "cannot accept connections: {e}; the signer keeps running and \
                                 retries (if this lasts, raise its open-file limit, `ulimit -n`)"
                            );
                        }
                        pause = Some(next);
                        sleep(next).await;
                        continue;
                    }
                    AcceptFailure::Connection => {
                        tracing::debug!("a connection failed before it was accepted: {e}");
                        continue;
                    }
                    AcceptFailure::Fatal => return Err(e),
                },
            };
            if pause.take().is_some() {
                tracing::warn!("accepting connections again");
            }
            let handshake = handshakes.start(from.ip());
            tokio::spawn(Arc::clone(&self).handle(stream, from, handshake));
        }
    }

    async fn handle(
        self: Arc<Self>,
        stream: TcpStream,
        from: SocketAddr,
        mut handshake: Handshake,
    ) {
        // Read now, not kept: a device removed a moment ago is refused.
        let mut trust = match TrustStore::load(&self.home) {
            Ok(trust) => trust,
            Err(e) => {
                tracing::warn!("refusing a connection from {from}: {e}");
                return;
            }
        };
        let pairing = if self.window.is_open() {
            Pairing::Open
        } else {
            Pairing::Closed
        };
        let setup = timeout(
            HANDSHAKE_TIMEOUT,
            self.set_up(stream, &trust, pairing, &mut handshake),
        )
        .await
        .unwrap_or(Err(Error::Timeout("the requester's handshake")));
        drop(handshake);
        let outcome = match setup {
            Ok(Setup::Session(session, slot)) => {
                let key = session.peer().public_key;
                // A locked read-modify-write: never writes back a peer
                // removed since `trust` was read.
                if let Err(e) = trust.touch(PeerRole::Requester, &key, self.clock.now_ms(), None) {
                    tracing::warn!("could not record last-seen time: {e}");
                }
                tracing::info!(
                    "session with \"{}\" from {from}",
                    escape(&session.peer().name)
                );
                let ended = Arc::clone(&self).run_session(session).await;
                drop(slot);
                ended
            }
            Ok(Setup::Invitation(invitation)) => Arc::clone(&self).pair(invitation).await,
            Ok(Setup::Refused) => Ok(()),
            Ok(Setup::Dropped(why)) => {
                tracing::debug!("dropped the connection from {from}: {why}");
                if self.flood_warning_due() {
                    tracing::warn!(
                        "strangers' connections fill the handshake slots (from {from}, say): \
                         the oldest are dropped; paired devices still get in"
                    );
                }
                Ok(())
            }
            Err(e @ Error::UnknownPeer { .. }) => {
                tracing::warn!("{e} (from {from})");
                Ok(())
            }
            Err(e @ Error::PairingClosed { .. }) => {
                tracing::info!("{e} (from {from})");
                // The person who forgot `--pair` learns what to do.
                if self.refused_pairing_banner_due() {
                    self.approvals.banner(format!(
                        "Refused a pairing request from {from}: press p to accept new devices"
                    ));
                }
                Ok(())
            }
            Err(e) => Err(e),
        };
        match outcome {
            // Includes a requester that hung up on seeing our key: normal
            // for `vmux pair` checking whether it is already paired.
            Err(Error::Closed) => tracing::debug!("connection from {from} closed"),
            Err(e) => tracing::info!("connection from {from} ended: {e}"),
            Ok(()) => {}
        }
    }

    /// The handshake and `hello`s. Until message 3 proves a key the
    /// connection is a stranger's: evictable, and given [`SILENT_LIMIT`].
    /// A pinned key then takes a reserved handshake slot and a session
    /// place, or is refused `signerBusy` if its device has no place left.
    async fn set_up(
        &self,
        stream: TcpStream,
        trust: &TrustStore,
        pairing: Pairing,
        handshake: &mut Handshake,
    ) -> Result<Setup> {
        const EVICTED: &str = "its handshake slot went to a newer connection";
        let responding = tokio::select! {
            responding = session::respond(stream, &self.device) => responding?,
            () = handshake.evicted() => return Ok(Setup::Dropped(EVICTED)),
            () = sleep(SILENT_LIMIT) => {
                return Ok(Setup::Dropped("it proved no key within the silent limit"));
            }
        };
        let key = responding.remote_static();
        let mut slot = None;
        if trust.find(PeerRole::Requester, &key).is_some() {
            match self.sessions.open(key) {
                Ok(place) => slot = Some(place),
                Err(full) => {
                    if self.flood_warning_due() {
                        let name = trust
                            .find(PeerRole::Requester, &key)
                            .map(|p| escape(&p.name).into_owned())
                            .unwrap_or_default();
                        tracing::warn!("refusing sessions of \"{name}\": {}", full.message());
                    }
                    responding
                        .refuse(ErrorCode::SignerBusy, full.message())
                        .await;
                    return Ok(Setup::Refused);
                }
            }
            if !handshake.proved_pinned(key) {
                return Ok(Setup::Dropped(EVICTED));
            }
        }
        let accepted = tokio::select! {
            accepted = responding.finish(&self.device, trust, pairing) => accepted?,
            () = handshake.evicted() => return Ok(Setup::Dropped(EVICTED)),
        };
        Ok(match (accepted, slot) {
            (Accepted::Session(session), Some(slot)) => Setup::Session(session, slot),
            // `finish` read the same trust store: a session is a pinned key.
            (Accepted::Session(_), None) => return Err(Error::Closed),
            (Accepted::Invitation(invitation), _) => Setup::Invitation(invitation),
        })
    }

    /// Whether to tell the person about a refused pairing request now:
    /// anyone can cause one, so not more often than
    /// [`super::REFUSED_PAIRING_BANNER_EVERY`].
    fn refused_pairing_banner_due(&self) -> bool {
        due(
            &self.refused_pairing_shown,
            super::REFUSED_PAIRING_BANNER_EVERY,
        )
    }

    /// Whether to log a flood's effect now.
    fn flood_warning_due(&self) -> bool {
        due(&self.flood_warned, FLOOD_WARNING_EVERY)
    }
}

/// Whether `every` has passed since `last` (then `last` is now).
fn due(last: &std::sync::Mutex<Option<Instant>>, every: Duration) -> bool {
    let mut last = last
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let due = last.is_none_or(|at| at.elapsed() >= every);
    if due {
        *last = Some(Instant::now());
    }
    due
}
