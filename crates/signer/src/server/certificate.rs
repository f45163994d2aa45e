//! A session certificate: checks, policy, the sheet, the CA's passphrase
//! or PIN, the signature, the issue log, the request log. The CA's policy
//! and revocations are read again after the Approve and again right before
//! the CA signs: a `vmux ca revoke` while the sheet (or the passphrase
//! prompt) is up refuses the certificate.

use std::sync::Arc;

use ssh_key::{Certificate, PublicKey};
use tokio::time::timeout_at;
use vmux_keys::ca::{Ca, Grant};
use vmux_keys::store::Verification;
use vmux_link::home::Home;
use vmux_link::session::Peer;
use vmux_proto::envelope::{CertificateRequest, CertificateResponse, ErrorCode};
use zeroize::Zeroizing;

use super::{Signer, internal, names, verification};
use crate::approval::{Decision, Sheet, Turn};
use crate::checks::Refusal;
use crate::identities;

impl Signer {
    pub(super) async fn certificate(
        &self,
        peer: &Peer,
        r: CertificateRequest,
        busy: bool,
    ) -> CertificateResponse {
        let entry = self.log_entry(peer, "certificate", &r.request_id, &r.public_key_blob);
        let result = self.certificate_checked(peer, &r, busy).await;
        self.log_outcome(entry, &result);
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
        let key = PublicKey::from_bytes(&r.public_key_blob).map_err(|e| {
            (
                ErrorCode::MalformedRequest,
                format!("the certificate key is not a valid public key: {e}"),
            )
        })?;
        // Policy: what would be signed is decided now, shown, then signed as shown.
        let authority = identities::Authority::load(&self.home).map_err(internal)?;
        if authority.device_revoked(&peer.device_id) {
            return Err((ErrorCode::CertificateRevoked, identities::REVOKED.into()));
        }
        let grant = authority
            .grant(
                &peer.name,
                &peer.device_id,
                r.requested_validity_seconds,
                self.clock.now_ms() / 1000,
            )
            .map_err(|m| {
                // One line on the signer's screen too: no sheet was shown.
                self.approvals.banner(format!(
                    "Refused by policy: certificate request from \"{}\": {m}",
                    peer.name
                ));
                (ErrorCode::PolicyDenied, m)
            })?;
        let claimed = peer.claimed_name().map(str::to_owned);
        let trust = vmux_link::trust::TrustStore::load(&self.home).map_err(internal)?;
        let device_key = (!names::others_named(&trust, &peer.name, &peer.public_key).is_empty())
            .then(|| peer.fingerprint());
        let deadline = self.deadline(r.expires_at_milliseconds);
        let home = self.home.clone();
        let still = Recheck {
            home: home.clone(),
            clock: Arc::clone(&self.clock),
            device_id: peer.device_id.clone(),
            requested: r.requested_validity_seconds,
            shown: grant.clone(),
        };
        let signed = timeout_at(deadline, async {
            let mut turn = self.approvals.turn().await;
            // A request queued behind the one that made the CA must use
            // that CA, not offer to make a second: look again with the turn.
            let ca = match authority.ca() {
                Some(ca) => Some(ca),
                None => Ca::open(&home).map_err(internal)?.map(Arc::new),
            };
            let sheet = Sheet::Certificate {
                grant: grant.clone(),
                new_ca: ca.is_none(),
                claimed,
                device_key,
            };
            let what = format!("for \"{}\"", grant.device);
            if turn.ask_until(sheet, deadline.into_std()).await != Ok(Decision::Approve) {
                turn.banner(format!("Denied session certificate {what}"));
                return Err((
                    ErrorCode::UserDenied,
                    "the certificate was denied on the signer".to_owned(),
                ));
            }
            if let Err(why) = still.holds() {
                turn.banner(format!("Refused the approved certificate {what}: {why}"));
                return Err((ErrorCode::PolicyDenied, why));
            }
            let cert = sign(&mut turn, &home, ca, key, grant.clone(), still).await?;
            turn.banner(format!("Approved session certificate {what}"));
            Ok(cert)
        })
        .await;
        let cert = signed.unwrap_or_else(|_| {
            self.approvals.banner(format!(
                "Unanswered certificate request from \"{}\": expired before it was answered; nothing was issued",
                peer.name
            ));
            Err((
                ErrorCode::RequestExpired,
                "the request expired before it was approved on the signer".into(),
            ))
        })?;
        authority.record(&cert, &grant).map_err(internal)
    }
}

/// After the Approve: the CA's passphrase or PIN (three tries), then the
/// signature. With no CA yet, the person chooses its passphrase and the CA
/// is made. An unencrypted `ca.key` from an older vmux signs without one.
async fn sign(
    turn: &mut Turn,
    home: &Home,
    ca: Option<Arc<Ca>>,
    key: PublicKey,
    grant: Grant,
    still: Recheck,
) -> Result<Certificate, Refusal> {
    let ca = match ca {
        Some(ca) => ca,
        None => {
            let secret = verification::choose(turn, "New passphrase for the CA key").await?;
            let home = home.clone();
            // The passphrase just chosen is this issue's verification.
            let cert = verification::blocking(move || {
                Ca::init(&home, &secret)?.issue(&key, &grant, &secret)
            })
            .await?;
            turn.banner(
                "Made the CA key (encrypted with that passphrase); servers accept its certificates once `vmux ca show` is in their TrustedUserCAKeys",
            );
            return Ok(cert);
        }
    };
    let (prompt, word) = match ca.verification() {
        Some(Verification::Passphrase) => ("Passphrase for the CA key", "passphrase"),
        Some(Verification::Pin) => ("PIN of the CA key's token", "PIN"),
        None => {
            return verification::blocking(move || {
                still.holds().map_err(vmux_keys::Error::PolicyDenied)?;
                ca.issue(&key, &grant, &Zeroizing::default())
            })
            .await;
        }
    };
    verification::verify(turn, prompt, word, move |secret| {
        // The prompt may have been up a while: look once more.
        still.holds().map_err(vmux_keys::Error::PolicyDenied)?;
        ca.issue(&key, &grant, secret)
    })
    .await
}

/// The CA's policy and revocations read again, inside the approval turn.
struct Recheck {
    home: Home,
    clock: Arc<dyn vmux_link::clock::Clock>,
    device_id: String,
    requested: u64,
    /// What the sheet showed.
    shown: Grant,
}

impl Recheck {
    /// Whether the CA would still sign what the sheet showed; why not.
    fn holds(&self) -> Result<(), String> {
        let authority = identities::Authority::load(&self.home).map_err(|e| e.to_string())?;
        let now = authority.grant(
            &self.shown.device,
            &self.device_id,
            self.requested,
            self.clock.now_ms() / 1000,
        )?;
        let same = now.principals == self.shown.principals
            && now.extensions == self.shown.extensions
            && now.source_addresses == self.shown.source_addresses
            && now.validity_secs() >= self.shown.validity_secs();
        if !same {
            return Err(
                "the CA policy changed while the sheet was up; the requester may ask again".into(),
            );
        }
        Ok(())
    }
}
