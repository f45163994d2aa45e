//! The signer's accept loop and per-session request handling.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, timeout, timeout_at};
use vmux_link::clock::Clock;
use vmux_link::device::Device;
use vmux_link::home::Home;
use vmux_link::session::{self, Accepted, Invitation, Peer, Session, SessionSender};
use vmux_link::trust::{PeerRole, TrustStore};
use vmux_link::{Error, Fingerprint, Result};
use vmux_proto::envelope::{
    CertificateRequest, CertificateResponse, Envelope, ErrorCode, KeyList, SignRequest,
    SignResponse, limits::MAX_PENDING_REQUESTS,
};

use crate::approval::{Approvals, Decision, Sheet};
use crate::checks::{self, Refusal, ReplayCache};
use crate::identities::{self, Identities};
use crate::log::{Entry, Log};
use crate::notify;

/// Handshakes (including pairing code exchanges) in progress at once.
const MAX_CONCURRENT_HANDSHAKES: usize = 64;
/// Pairing invitations waiting for the person at once.
const MAX_PENDING_INVITATIONS: usize = 4;
/// Tries at the passphrase or PIN before `verificationFailed`.
const VERIFICATION_TRIES: u32 = 3;

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
    home: Home,
    trust: Mutex<TrustStore>,
    approvals: Approvals,
    clock: Arc<dyn Clock>,
    config: Config,
    invitations: Semaphore,
    replays: std::sync::Mutex<ReplayCache>,
    log: Log,
}

impl Signer {
    /// A signer for `device` keeping its state in `home` and asking its
    /// person through `approvals`.
    pub fn new(
        device: Device,
        home: Home,
        approvals: Approvals,
        clock: Arc<dyn Clock>,
        config: Config,
    ) -> Result<Arc<Self>> {
        let trust = TrustStore::load(&home)?;
        let log = Log::at(home.file("signer-log.jsonl"));
        Ok(Arc::new(Self {
            device,
            home,
            trust: Mutex::new(trust),
            approvals,
            clock,
            config,
            invitations: Semaphore::new(MAX_PENDING_INVITATIONS),
            replays: std::sync::Mutex::new(ReplayCache::default()),
            log,
        }))
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
                Arc::clone(&self).run_session(session).await
            }
            Ok(Accepted::Invitation(invitation)) => Arc::clone(&self).pair(invitation).await,
            Err(e @ Error::UnknownPeer { .. }) => {
                tracing::warn!("{e} (from {from})");
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

    async fn pair(self: Arc<Self>, invitation: Invitation) -> Result<()> {
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
        let decision = timeout(self.config.pairing_timeout, async {
            let mut turn = self.approvals.turn().await;
            let decision = turn.ask(sheet).await;
            (turn, decision)
        })
        .await;
        match decision {
            Ok((turn, Ok(Decision::Approve))) => {
                let session = {
                    let mut trust = self.trust.lock().await;
                    invitation.accept(&mut trust, self.clock.now_ms()).await?
                };
                turn.banner(format!("Paired with \"{}\"", peer.name));
                drop(turn);
                tracing::info!("paired with \"{}\" ({})", peer.name, peer.fingerprint());
                Arc::clone(&self).run_session(session).await
            }
            Ok((turn, _)) => {
                turn.banner(format!("Rejected pairing with \"{}\"", peer.name));
                invitation
                    .reject("pairing was rejected on the signer")
                    .await;
                Ok(())
            }
            Err(_) => {
                self.approvals
                    .banner(format!("Pairing request from \"{}\" timed out", peer.name));
                invitation
                    .reject("pairing timed out: nobody accepted it on the signer")
                    .await;
                Ok(())
            }
        }
    }

    /// Answers requests until the peer leaves. Each request runs in its own
    /// task, so a sheet waiting for the person never holds up a key list.
    async fn run_session(self: Arc<Self>, mut session: Session) -> Result<()> {
        let pending = Arc::new(AtomicUsize::new(0));
        let peer = session.peer().clone();
        loop {
            match session.recv().await? {
                Envelope::KeyListRequest(_) => session.send(self.key_list()).await?,
                Envelope::SignRequest(r) => {
                    self.spawn_request(&session.sender(), &pending, &peer, Request::Sign(r))
                }
                Envelope::CertificateRequest(r) => {
                    self.spawn_request(&session.sender(), &pending, &peer, Request::Certificate(r));
                }
                Envelope::Error(e) => {
                    tracing::info!("\"{}\" reported: {} ({})", peer.name, e.message, e.code)
                }
                other => tracing::debug!("ignoring {} from \"{}\"", other.type_name(), peer.name),
            }
        }
    }

    fn key_list(&self) -> Envelope {
        match Identities::load(&self.home) {
            Ok(ids) => Envelope::KeyList(KeyList {
                keys: ids.records(),
                ca_public_key: ids.ca_public_key_blob(),
            }),
            Err(e) => {
                tracing::warn!("cannot read identities: {e}");
                Envelope::KeyList(KeyList {
                    keys: Vec::new(),
                    ca_public_key: None,
                })
            }
        }
    }

    fn spawn_request(
        self: &Arc<Self>,
        reply: &SessionSender,
        pending: &Arc<AtomicUsize>,
        peer: &Peer,
        request: Request,
    ) {
        let (signer, reply, pending, peer) = (
            Arc::clone(self),
            reply.clone(),
            Arc::clone(pending),
            peer.clone(),
        );
        tokio::spawn(async move {
            let busy = pending.fetch_add(1, Ordering::SeqCst) >= MAX_PENDING_REQUESTS;
            let work = async {
                match request {
                    Request::Sign(r) => Envelope::SignResponse(signer.sign(&peer, r, busy).await),
                    Request::Certificate(r) => {
                        Envelope::CertificateResponse(signer.certificate(&peer, r, busy).await)
                    }
                }
            };
            // A device that disconnects takes its requests with it: their
            // sheets are withdrawn rather than left for the person to answer.
            let answer = tokio::select! {
                answer = work => Some(answer),
                () = reply.closed() => None,
            };
            pending.fetch_sub(1, Ordering::SeqCst);
            let delivered = match answer {
                Some(answer) => reply.send(answer).await.is_ok(),
                None => false,
            };
            if !delivered {
                tracing::info!(
                    "\"{}\" left before its answer could be delivered",
                    peer.name
                );
            }
        });
    }

    /// Checks shared by sign and certificate requests: §9.3 checks 2–5.
    fn admit(
        &self,
        peer: &Peer,
        busy: bool,
        source: &str,
        nonce: &[u8],
        issued: u64,
        expires: u64,
    ) -> Result<(), Refusal> {
        if source != peer.device_id {
            return Err((
                ErrorCode::MalformedRequest,
                "sourceDeviceID does not match the paired device".into(),
            ));
        }
        if busy {
            return Err((
                ErrorCode::SignerBusy,
                "too many requests waiting on the signer; try again shortly".into(),
            ));
        }
        let now = self.clock.now_ms();
        checks::window(issued, expires, now)?;
        let mut replays = self
            .replays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        replays.admit(peer.public_key, nonce, expires, now)
    }

    async fn sign(&self, peer: &Peer, r: SignRequest, busy: bool) -> SignResponse {
        let arrived = self.clock.now_ms();
        let destination = identities::destination(&r.context);
        let fingerprint = Fingerprint::of(&r.public_key_blob).to_string();
        let result = self.sign_checked(peer, &r, busy, &destination).await;
        self.log.append(&Entry {
            time: arrived,
            request_id: r.request_id.clone(),
            kind: "sign".into(),
            device: peer.name.clone(),
            key_fingerprint: Some(fingerprint),
            destination: Some(crate::ui::text::destination_line(&destination)),
            outcome: outcome(&result),
            decision_ms: self.clock.now_ms().saturating_sub(arrived),
        });
        match result {
            Ok(signature) => SignResponse {
                request_id: r.request_id,
                approved: true,
                signature: Some(signature),
                error_code: None,
                error_message: None,
            },
            Err((code, message)) => SignResponse {
                request_id: r.request_id,
                approved: false,
                signature: None,
                error_code: Some(code),
                error_message: Some(message),
            },
        }
    }

    async fn sign_checked(
        &self,
        peer: &Peer,
        r: &SignRequest,
        busy: bool,
        destination: &crate::approval::Destination,
    ) -> Result<Vec<u8>, Refusal> {
        if identities::blob_algorithm(&r.public_key_blob).as_deref()
            != Some(r.key_algorithm.as_str())
        {
            return Err((
                ErrorCode::MalformedRequest,
                "keyAlgorithm does not match publicKeyBlob".into(),
            ));
        }
        self.admit(
            peer,
            busy,
            &r.source_device_id,
            &r.nonce,
            r.issued_at_milliseconds,
            r.expires_at_milliseconds,
        )?;
        let ids = Identities::load(&self.home).map_err(internal)?;
        let identity = ids.find(&r.public_key_blob).ok_or_else(|| {
            (
                ErrorCode::UnknownKey,
                "no identity on this signer has this key; run `vmux refresh` on the requester"
                    .to_owned(),
            )
        })?;
        if !identity.enabled {
            return Err((
                ErrorCode::KeyDisabled,
                format!("identity \"{}\" is disabled on the signer", identity.name),
            ));
        }
        let key = ids.open(&identity).map_err(internal)?;
        let deadline = self.deadline(r.expires_at_milliseconds);
        let sheet = Sheet::Sign {
            device: peer.name.clone(),
            destination: destination.clone(),
            key: identity.name.clone(),
        };
        let host = destination
            .host
            .clone()
            .unwrap_or_else(|| "unknown host".into());
        notify::desktop("SSH Sign Request", &format!("From {} → {host}", peer.name));
        let rsa_hash = identities::rsa_hash(r.flags);
        let data = r.data_to_sign.clone();
        let approved = timeout_at(deadline, async {
            let mut turn = self.approvals.turn().await;
            if turn.ask(sheet).await != Ok(Decision::Approve) {
                turn.banner("Denied remote sign request");
                return Err((
                    ErrorCode::UserDenied,
                    "the request was denied on the signer".to_owned(),
                ));
            }
            let mut key = key;
            for attempt in 1..=VERIFICATION_TRIES {
                let prompt = identities::verification_prompt(&identity);
                let Ok(secret) = turn.secret(prompt).await else {
                    return Err((
                        ErrorCode::UserDenied,
                        "the signer stopped before verification".to_owned(),
                    ));
                };
                let data = data.clone();
                let (back, signed) = tokio::task::spawn_blocking(move || {
                    let signed = key.sign(&secret, &data, rsa_hash);
                    (key, signed)
                })
                .await
                .map_err(|e| internal(e.to_string()))?;
                key = back;
                match signed {
                    Ok(signature) => {
                        turn.banner("Approved remote sign request");
                        return Ok(signature);
                    }
                    Err(vmux_keys::Error::WrongSecret) => {
                        turn.banner(format!(
                            "Wrong {} ({attempt} of {VERIFICATION_TRIES})",
                            identities::secret_word(&identity)
                        ));
                    }
                    Err(e) => return Err(internal(e)),
                }
            }
            turn.banner("Verification failed; request refused");
            Err((
                ErrorCode::VerificationFailed,
                "user verification failed three times on the signer".to_owned(),
            ))
        })
        .await;
        approved.unwrap_or_else(|_| {
            self.approvals.banner(format!(
                "Request from \"{}\" expired before it was answered; nothing was signed or delivered",
                peer.name
            ));
            Err((ErrorCode::RequestExpired, "the request expired before it was approved on the signer".into()))
        })
    }

    async fn certificate(
        &self,
        peer: &Peer,
        r: CertificateRequest,
        busy: bool,
    ) -> CertificateResponse {
        let arrived = self.clock.now_ms();
        let result = self.certificate_checked(peer, &r, busy).await;
        self.log.append(&Entry {
            time: arrived,
            request_id: r.request_id.clone(),
            kind: "certificate".into(),
            device: peer.name.clone(),
            key_fingerprint: Some(Fingerprint::of(&r.public_key_blob).to_string()),
            destination: None,
            outcome: outcome(&result),
            decision_ms: self.clock.now_ms().saturating_sub(arrived),
        });
        match result {
            Ok(issued) => CertificateResponse {
                request_id: r.request_id,
                approved: true,
                certificate_blob: Some(issued.certificate_blob),
                ca_public_key: Some(issued.ca_public_key),
                valid_after: Some(issued.valid_after),
                valid_before: Some(issued.valid_before),
                error_code: None,
                error_message: None,
            },
            Err((code, message)) => CertificateResponse {
                request_id: r.request_id,
                approved: false,
                certificate_blob: None,
                ca_public_key: None,
                valid_after: None,
                valid_before: None,
                error_code: Some(code),
                error_message: Some(message),
            },
        }
    }

    async fn certificate_checked(
        &self,
        peer: &Peer,
        r: &CertificateRequest,
        busy: bool,
    ) -> Result<identities::Issued, Refusal> {
        if identities::blob_algorithm(&r.public_key_blob).as_deref() != Some("ecdsa-sha2-nistp256")
        {
            return Err((
                ErrorCode::MalformedRequest,
                "the certificate key must be ecdsa-sha2-nistp256".into(),
            ));
        }
        self.admit(
            peer,
            busy,
            &r.source_device_id,
            &r.nonce,
            r.issued_at_milliseconds,
            r.expires_at_milliseconds,
        )?;
        let ca = identities::Authority::load(&self.home).map_err(internal)?;
        let validity = ca
            .grantable(r.requested_validity_seconds)
            .map_err(|m| (ErrorCode::PolicyDenied, m))?;
        let deadline = self.deadline(r.expires_at_milliseconds);
        let sheet = Sheet::Certificate {
            device: peer.name.clone(),
            validity_seconds: validity,
        };
        let decided = timeout_at(deadline, async {
            let mut turn = self.approvals.turn().await;
            let decision = turn.ask(sheet).await;
            let banner = if decision == Ok(Decision::Approve) {
                "Approved session certificate"
            } else {
                "Denied session certificate"
            };
            turn.banner(banner);
            decision
        })
        .await;
        match decided {
            Ok(Ok(Decision::Approve)) => {}
            Ok(_) => {
                return Err((
                    ErrorCode::UserDenied,
                    "the certificate was denied on the signer".into(),
                ));
            }
            Err(_) => {
                self.approvals.banner(format!(
                    "Certificate request from \"{}\" expired before it was answered",
                    peer.name
                ));
                return Err((
                    ErrorCode::RequestExpired,
                    "the request expired before it was approved on the signer".into(),
                ));
            }
        }
        ca.issue(
            &r.public_key_blob,
            &peer.name,
            validity,
            self.clock.now_ms() / 1000,
        )
        .map_err(internal)
    }

    /// The tokio instant at which a request's window closes.
    fn deadline(&self, expires_ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(expires_ms.saturating_sub(self.clock.now_ms()))
    }
}

enum Request {
    Sign(SignRequest),
    Certificate(CertificateRequest),
}

fn internal(e: impl std::fmt::Display) -> Refusal {
    (ErrorCode::Internal, format!("the signer failed: {e}"))
}

fn outcome<T>(result: &Result<T, Refusal>) -> String {
    match result {
        Ok(_) => "approved".into(),
        Err((code, _)) => code.as_str().into(),
    }
}
