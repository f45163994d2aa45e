//! The paired signer as `vmux ssh` uses it: named, pinned, or found on the
//! local network; one session, one request at a time.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::sleep;
use vmux_link::Fingerprint;
use vmux_link::backoff::Backoff;
use vmux_link::clock::Clock;
use vmux_link::device::Device;
use vmux_link::find::{self, DISCOVERY_WAIT};
use vmux_link::home::Home;
use vmux_link::requester::{self, Requester};
use vmux_link::session::{self, Session};
use vmux_link::trust::TrustStore;
use vmux_link::wake::Wakes;
use vmux_proto::envelope::limits::REQUEST_WAIT;
use vmux_proto::envelope::{Envelope, KeyListRequest, Origin, PublicKeyRecord, Role, SignContext};

use crate::{Error, Result};

/// What went wrong on the latest attempt, for the "No signer found" message.
pub type LastAttempt = Arc<Mutex<Option<String>>>;

/// A session with the signer and the identities it offers.
#[derive(Debug)]
pub struct RemoteSigner {
    session: Session,
    requester: Requester,
    /// The signer's name, from its hello.
    pub name: String,
    /// Its enabled identities, in its order.
    pub keys: Vec<PublicKeyRecord>,
}

/// Connects to the signer named by `address`, else to the pinned ones at
/// their last addresses, else to a pinned one found on the local network;
/// then fetches its key list. Keeps trying until it works or cannot (not
/// paired, key changed): the caller bounds the wait.
///
/// When nothing listens at any address and the network shows no pinned
/// signer, the signers that left a wake endpoint are woken and the search
/// goes on; with no endpoint it fails at once: no signer is running.
/// Requests are timed by `clock`.
pub async fn find(
    home: Home,
    address: Option<String>,
    last: LastAttempt,
    clock: Arc<dyn Clock>,
) -> Result<RemoteSigner> {
    let device = Device::load_or_create(&home, None)?;
    let requester = Requester::new(&device, clock);
    let wakes = Wakes::new(&home);
    let mut woken = false;
    let mut backoff = Backoff::default();
    loop {
        let mut trust = TrustStore::load(&home)?;
        if address.is_none() && trust.signers().is_empty() {
            return Err(Error::NotPaired);
        }
        let pinned: Vec<String> = match &address {
            Some(a) => vec![a.clone()],
            None => trust
                .signers()
                .iter()
                .filter_map(|p| p.address.clone())
                .collect(),
        };
        let mut all_refused = true;
        for candidate in &pinned {
            match attempt(candidate, &device, &requester, &mut trust, &wakes, &last).await? {
                Try::Found(found) => return Ok(found.with(requester)),
                Try::Refused => {}
                Try::Failed => all_refused = false,
            }
        }
        let mut seen = false;
        if address.is_none() && find::worth_browsing(&pinned) {
            let fingerprints: Vec<Fingerprint> = trust
                .signers()
                .iter()
                .map(|p| p.key_fingerprint())
                .collect();
            for (_, candidate) in find::discover(&fingerprints, DISCOVERY_WAIT).await {
                seen = true;
                let found = attempt(&candidate, &device, &requester, &mut trust, &wakes, &last);
                if let Try::Found(found) = found.await? {
                    return Ok(found.with(requester));
                }
            }
        }
        if all_refused && !seen && !woken {
            woken = true;
            if !wake(&wakes, &trust, &requester).await {
                let last = last.lock().unwrap_or_else(PoisonError::into_inner).take();
                return Err(Error::NotRunning { last });
            }
        }
        let mut random = [0u8; 4];
        getrandom::fill(&mut random).map_err(|_| Error::Random)?;
        sleep(backoff.next_delay(u32::from_le_bytes(random))).await;
    }
}

/// Wakes every pinned signer that left an endpoint; false if none did.
async fn wake(wakes: &Wakes, trust: &TrustStore, requester: &Requester) -> bool {
    let mut any = false;
    for signer in trust.signers() {
        let fingerprint = signer.key_fingerprint();
        if wakes.get(&fingerprint).is_some() {
            any = true;
            say!(
                "Waking the signer \"{}\"…",
                vmux_proto::text::escape(&signer.name)
            );
            wakes
                .wake(&fingerprint, requester.device_name(), requester.now_ms())
                .await;
        }
    }
    any
}

/// What one try at an address gave.
enum Try {
    Found(Found),
    /// Nothing listens there.
    Refused,
    /// Anything else that waiting may fix.
    Failed,
}

/// A session and its key list, before it is given the device.
struct Found {
    session: Session,
    keys: Vec<PublicKeyRecord>,
}

impl Found {
    fn with(self, requester: Requester) -> RemoteSigner {
        RemoteSigner {
            name: self.session.peer().name.clone(),
            session: self.session,
            requester,
            keys: self.keys,
        }
    }
}

/// One try at `candidate`; an error if trying again cannot help.
async fn attempt(
    candidate: &str,
    device: &Device,
    requester: &Requester,
    trust: &mut TrustStore,
    wakes: &Wakes,
    last: &LastAttempt,
) -> Result<Try> {
    let now = requester.now_ms();
    let connected = session::connect(candidate, device, Role::Client, trust, now).await;
    let error = match connected {
        Ok(mut session) => match key_list(&mut session, wakes).await {
            Ok(keys) => return Ok(Try::Found(Found { session, keys })),
            Err(e) => e,
        },
        Err(e) if e.is_permanent() => return Err(e.into()),
        Err(e) => e,
    };
    let refused = error.is_refused();
    note(last, format!("signer at {candidate}: {error}"));
    Ok(if refused { Try::Refused } else { Try::Failed })
}

fn note(last: &LastAttempt, what: String) {
    tracing::debug!("{what}");
    *last.lock().unwrap_or_else(PoisonError::into_inner) = Some(what);
}

/// The signer's key list; a wake endpoint it sends meanwhile is kept.
async fn key_list(session: &mut Session, wakes: &Wakes) -> vmux_link::Result<Vec<PublicKeyRecord>> {
    session
        .send(Envelope::KeyListRequest(KeyListRequest {}))
        .await?;
    loop {
        match session.recv().await? {
            Envelope::KeyList(list) => return Ok(list.keys),
            Envelope::DeviceTokenUpdate(update) => {
                if let Err(e) = wakes.set(&session.peer().fingerprint(), &update.endpoint) {
                    tracing::warn!("not using the signer's wake endpoint: {e}");
                }
            }
            Envelope::Error(report) => {
                return Err(vmux_link::Error::Peer {
                    code: report.code,
                    message: report.message,
                });
            }
            other => tracing::debug!("ignoring {} from the signer", other.type_name()),
        }
    }
}

impl RemoteSigner {
    /// Asks the signer to sign `data` with the identity `public_key_blob`
    /// (`flags` picks an RSA hash), and waits for the person's answer.
    pub async fn sign(
        &mut self,
        public_key_blob: &[u8],
        algorithm: &str,
        data: Vec<u8>,
        flags: u32,
        context: SignContext,
    ) -> Result<Vec<u8>> {
        let request = self.requester.sign_request(requester::Sign {
            key_algorithm: algorithm.to_owned(),
            public_key_blob: public_key_blob.to_vec(),
            origin: Origin::EmbeddedClient,
            data,
            flags,
            context,
            bindings: Vec::new(),
        })?;
        let request_id = request.request_id.clone();
        self.session.send(Envelope::SignRequest(request)).await?;
        let answer = tokio::time::timeout(REQUEST_WAIT, async {
            loop {
                match self.session.recv().await {
                    Ok(Envelope::SignResponse(r)) if r.request_id == request_id => return Ok(r),
                    Ok(other) => tracing::debug!("ignoring {} from the signer", other.type_name()),
                    Err(e) => return Err(e),
                }
            }
        })
        .await;
        let refusal = match answer {
            Ok(Ok(response)) => match requester::read_sign_response(response) {
                Ok(signature) => return Ok(signature),
                Err(refusal) => refusal,
            },
            Ok(Err(_)) => return Err(Error::SignerLost),
            Err(_) => requester::timed_out(),
        };
        Err(Error::Refused {
            code: refusal.code,
            message: refusal.message.unwrap_or_default(),
        })
    }
}
