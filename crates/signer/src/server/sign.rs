//! One forwarded signature, in the house order: checks → read → policy →
//! sheet → user verification → sign → log.

use tokio::time::timeout_at;
use vmux_link::Fingerprint;
use vmux_link::session::Peer;
use vmux_link::trust::{PeerRole, TrustStore};
use vmux_proto::envelope::{ErrorCode, SignRequest, SignResponse};

use super::{Signer, internal, names, verification};
use crate::approval::{Decision, Sheet};
use crate::checks::Refusal;
use crate::destination::Destination;
use crate::hostkeys::{HostKeys, Source};
use crate::identities::{self, Identities};
use crate::log::Entry;
use crate::notify;
use crate::policy::{self, Policies};
use crate::reading::{self, Host, Reading};
use crate::ui::text;

impl Signer {
    pub(super) async fn sign(&self, peer: &Peer, r: SignRequest, busy: bool) -> SignResponse {
        let mut entry = self.log_entry(peer, "sign", &r.request_id, &r.public_key_blob);
        let result = self.sign_checked(peer, &r, busy, &mut entry).await;
        self.log_outcome(entry, &result);
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
        entry: &mut Entry,
    ) -> Result<Vec<u8>, Refusal> {
        // Checks.
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

        // Read: the signer's own reading of the data and the bindings.
        let reading = reading::read(r)?;
        // Only a login or a forwarding has host keys to name.
        let hosts = if reading.host == Host::NotALogin && reading.through.is_empty() {
            HostKeys::default()
        } else {
            HostKeys::load(&self.home).map_err(internal)?
        };
        let destination = Destination::describe(&reading, &hosts, &peer.name);
        entry.destination = Some(destination.target.to_string());
        entry.user = destination.user.as_ref().map(|u| u.text.clone());
        entry.style.clone_from(&destination.style);
        entry.claimed_host = destination.claimed_host.as_ref().map(ToString::to_string);
        entry.purpose = Some(destination.purpose.to_string());
        entry.path = destination.path.as_ref().map(ToString::to_string);
        entry.host_key.clone_from(&destination.host_key);

        // Policy: outside it, refused at once, no sheet.
        let policies = Policies::load(&self.home).map_err(internal)?;
        let fingerprint = Fingerprint::of(&r.public_key_blob).to_string();
        // Names the person gave (imported, added), not ones learned from a
        // requester's claim: a claim approved for one key must not widen
        // another key's `--hosts`.
        let names: Vec<&str> = match &reading.host {
            Host::Verified { key, .. } => hosts
                .names_of(key)
                .iter()
                .filter(|h| h.source != Source::Learned)
                .map(|h| h.name.as_str())
                .collect(),
            _ => Vec::new(),
        };
        policy::check(&policies.for_key(&fingerprint), &reading, &names).map_err(|why| {
            // One line on the signer's screen too: no sheet was shown.
            self.approvals.banner(format!(
                "Refused by policy: sign request from \"{}\" for {} with \"{}\": {why}",
                peer.name, destination.target.text, identity.name
            ));
            (
                ErrorCode::PolicyDenied,
                format!(
                    "the signer's policy for \"{}\" refused: {why}",
                    identity.name
                ),
            )
        })?;

        // The sheet, user verification, the signature.
        let key = ids.open(&identity).map_err(internal)?;
        let deadline = self.deadline(r.expires_at_milliseconds);
        notify::desktop(
            "SSH Sign Request",
            &format!("From {} → {}", peer.name, destination.line()),
        );
        // Two paired devices of one name: the sheet shows whose key asks.
        let trust = TrustStore::load(&self.home).map_err(internal)?;
        let sheet = Sheet::Sign {
            device: names::shown(&trust, &peer.name, &peer.public_key),
            claimed: peer.claimed_name().map(str::to_owned),
            destination: Box::new(destination),
            key: identity.name.clone(),
        };
        // Each history line names the device, the destination, the outcome.
        let what = text::summary(&sheet);
        let rsa_hash = identities::rsa_hash(r.flags);
        let data = r.data_to_sign.clone();
        let approved = timeout_at(deadline, async {
            let mut turn = self.approvals.turn().await;
            if turn.ask_until(sheet, deadline.into_std()).await != Ok(Decision::Approve) {
                turn.banner(format!("Denied remote {what}"));
                return Err((
                    ErrorCode::UserDenied,
                    "the request was denied on the signer".to_owned(),
                ));
            }
            if let Err(refusal) = self.still_allowed(peer, r, &reading, &names) {
                turn.banner(format!("Refused after approval: {}", refusal.1));
                return Err(refusal);
            }
            let prompt = identities::verification_prompt(&identity);
            let word = identities::secret_word(&identity);
            let signature = verification::verify(&mut turn, &prompt, word, move |secret| {
                key.sign(secret, &data, rsa_hash)
            })
            .await?;
            turn.banner(format!("Approved remote {what}"));
            Ok(signature)
        })
        .await;
        let signature = approved.unwrap_or_else(|_| {
            self.approvals.banner(format!(
                "Unanswered {what}: expired before it was answered; nothing was signed or delivered"
            ));
            Err((
                ErrorCode::RequestExpired,
                "the request expired before it was approved on the signer".into(),
            ))
        })?;
        self.learn(&reading);
        Ok(signature)
    }

    /// After the Approve, inside the turn: the device still paired, the
    /// identity still there and enabled, and its policy still allowing the
    /// request, each read again (a `vmux peers remove`, `vmux key disable`
    /// or `vmux key policy` while the sheet was up).
    fn still_allowed(
        &self,
        peer: &Peer,
        r: &SignRequest,
        reading: &Reading,
        names: &[&str],
    ) -> Result<(), Refusal> {
        let trust = TrustStore::load(&self.home).map_err(internal)?;
        if trust.find(PeerRole::Requester, &peer.public_key).is_none() {
            return Err((
                ErrorCode::PairingInvalid,
                "this device was removed from the signer while its sheet was up; nothing was signed"
                    .into(),
            ));
        }
        let ids = Identities::load(&self.home).map_err(internal)?;
        if !ids.find(&r.public_key_blob).is_some_and(|i| i.enabled) {
            return Err((
                ErrorCode::KeyDisabled,
                "the identity was disabled or removed on the signer while the sheet was up".into(),
            ));
        }
        let policies = Policies::load(&self.home).map_err(internal)?;
        let fingerprint = Fingerprint::of(&r.public_key_blob).to_string();
        policy::check(&policies.for_key(&fingerprint), reading, names).map_err(|why| {
            (
                ErrorCode::PolicyDenied,
                format!("the key's policy changed while the sheet was up and now refuses: {why}"),
            )
        })
    }

    /// After an approved login to a verified host the signer did not know,
    /// remembers its key under the name the requester claimed (learned on
    /// first use): the next sheet says "same host key as approved on …".
    fn learn(&self, reading: &Reading) {
        let Host::Verified {
            key,
            claimed_name: Some(name),
        } = &reading.host
        else {
            return;
        };
        let now = self.clock.now_ms();
        match HostKeys::update(&self.home, |hosts| hosts.learn(name, key, now)) {
            Ok(true) => tracing::info!(
                "learned host key {} as \"{name}\" (approved on the sheet)",
                Fingerprint::of(key)
            ),
            Ok(false) => {}
            Err(e) => tracing::warn!("could not remember the host key as \"{name}\": {e}"),
        }
    }
}
