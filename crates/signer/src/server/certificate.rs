//! A session certificate: checks, the sheet, issue, the log.

use tokio::time::timeout_at;
use vmux_link::Fingerprint;
use vmux_link::session::Peer;
use vmux_proto::envelope::{CertificateRequest, CertificateResponse, ErrorCode};

use super::{Signer, internal, outcome};
use crate::approval::{Decision, Sheet};
use crate::checks::Refusal;
use crate::identities;
use crate::log::Entry;

impl Signer {
    pub(super) async fn certificate(
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
}
