//! The signer's accept loop and per-session request handling.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::timeout;
use vmux_link::clock::Clock;
use vmux_link::device::Device;
use vmux_link::session::{self, Accepted, Invitation, Session};
use vmux_link::trust::{PeerRole, TrustStore};
use vmux_link::{Error, Result};
use vmux_proto::envelope::{CertificateResponse, Envelope, ErrorCode, KeyList, SignResponse};

use crate::approval::{Approvals, Decision, NoDecision, Sheet};

/// Handshakes (including pairing code exchanges) in progress at once.
const MAX_CONCURRENT_HANDSHAKES: usize = 64;

/// Pairing invitations waiting for the person at once.
const MAX_PENDING_INVITATIONS: usize = 4;

/// Signer settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long a pairing invitation waits for the person.
    pub pairing_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            pairing_timeout: session::PAIRING_TIMEOUT,
        }
    }
}

/// A running signer.
#[derive(Debug)]
pub struct Signer {
    device: Device,
    trust: Mutex<TrustStore>,
    approvals: Approvals,
    clock: Arc<dyn Clock>,
    config: Config,
    invitations: Semaphore,
}

impl Signer {
    /// A signer for `device` that asks its person through `approvals`.
    pub fn new(
        device: Device,
        trust: TrustStore,
        approvals: Approvals,
        clock: Arc<dyn Clock>,
        config: Config,
    ) -> Arc<Self> {
        let invitations = Semaphore::new(MAX_PENDING_INVITATIONS);
        Arc::new(Self {
            device,
            trust: Mutex::new(trust),
            approvals,
            clock,
            config,
            invitations,
        })
    }

    /// This signer's device identity.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Accepts connections until the listener fails.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        // Unauthenticated peers can hold a handshake open for up to
        // HANDSHAKE_TIMEOUT; bounding how many at once keeps a flood of them
        // from exhausting the signer.
        let handshakes = Arc::new(Semaphore::new(MAX_CONCURRENT_HANDSHAKES));
        loop {
            let (stream, from) = listener.accept().await?;
            let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
                tracing::warn!("dropping connection from {from}: too many handshakes in progress");
                continue;
            };
            tokio::spawn(Arc::clone(&self).handle(stream, from, permit));
        }
    }

    async fn handle(
        self: Arc<Self>,
        stream: TcpStream,
        from: SocketAddr,
        handshake: OwnedSemaphorePermit,
    ) {
        // The handshake checks against a snapshot: pinning happens only
        // under the lock, after the person accepts.
        let trust = self.trust.lock().await.clone();
        let accepted = session::accept(stream, &self.device, &trust).await;
        drop(handshake);
        let outcome = match accepted {
            Ok(Accepted::Session(session)) => {
                let key = session.peer().public_key;
                let now = self.clock.now_ms();
                if let Err(e) = self
                    .trust
                    .lock()
                    .await
                    .touch(PeerRole::Requester, &key, now, None)
                {
                    tracing::warn!("could not record last-seen time: {e}");
                }
                tracing::info!("session with \"{}\" from {from}", session.peer().name);
                self.run_session(session).await
            }
            Ok(Accepted::Invitation(invitation)) => self.pair(invitation).await,
            Err(e @ Error::UnknownPeer { .. }) => {
                tracing::warn!("{e} (from {from})");
                Ok(())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            tracing::info!("connection from {from} ended: {e}");
        }
    }

    async fn pair(&self, invitation: Invitation) -> Result<()> {
        // Anyone on the network can ask to pair; don't let them bury the
        // person under invitations.
        let Ok(_slot) = self.invitations.try_acquire() else {
            invitation
                .reject("the signer has too many pairing requests waiting; try again later")
                .await;
            return Ok(());
        };
        let peer = invitation.peer().clone();
        let sheet = Sheet::Pairing {
            device: peer.name.clone(),
            fingerprint: peer.fingerprint(),
            code: invitation.code(),
        };
        let decision = timeout(self.config.pairing_timeout, self.approvals.ask(sheet)).await;
        match decision {
            Ok(Ok(Decision::Approve)) => {
                let session = {
                    let mut trust = self.trust.lock().await;
                    invitation.accept(&mut trust, self.clock.now_ms()).await?
                };
                tracing::info!("paired with \"{}\" ({})", peer.name, peer.fingerprint());
                self.run_session(session).await
            }
            Ok(Ok(Decision::Deny)) => {
                invitation
                    .reject("pairing was rejected on the signer")
                    .await;
                Ok(())
            }
            Ok(Err(NoDecision::UiClosed)) => {
                invitation.reject("the signer is shutting down").await;
                Ok(())
            }
            Err(_) => {
                invitation
                    .reject("pairing timed out: nobody accepted it on the signer")
                    .await;
                Ok(())
            }
        }
    }

    /// Answers requests until the peer leaves.
    async fn run_session(&self, mut session: Session) -> Result<()> {
        loop {
            let reply = match session.recv().await? {
                Envelope::KeyListRequest(_) => {
                    // Identities come with the key stores; until one holds a
                    // key there is nothing to list.
                    Envelope::KeyList(KeyList {
                        keys: Vec::new(),
                        ca_public_key: None,
                    })
                }
                Envelope::SignRequest(r) => Envelope::SignResponse(SignResponse {
                    request_id: r.request_id,
                    approved: false,
                    signature: None,
                    error_code: Some(ErrorCode::UnknownKey),
                    error_message: Some("no identity on this signer matches this key".into()),
                }),
                Envelope::CertificateRequest(r) => {
                    Envelope::CertificateResponse(CertificateResponse {
                        request_id: r.request_id,
                        approved: false,
                        certificate_blob: None,
                        ca_public_key: None,
                        valid_after: None,
                        valid_before: None,
                        error_code: Some(ErrorCode::PolicyDenied),
                        error_message: Some("this signer has no certificate authority yet".into()),
                    })
                }
                Envelope::DeviceTokenUpdate(_) | Envelope::Error(_) => continue,
                other => {
                    tracing::debug!(
                        "ignoring {} from \"{}\"",
                        other.type_name(),
                        session.peer().name
                    );
                    continue;
                }
            };
            session.send(reply).await?;
        }
    }
}
