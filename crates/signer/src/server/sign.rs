//! One forwarded signature: checks, the sheet, user verification, the
//! signature, the log.

use tokio::time::timeout_at;
use vmux_link::Fingerprint;
use vmux_link::session::Peer;
use vmux_proto::envelope::{ErrorCode, SignRequest, SignResponse};

use super::{Signer, internal, outcome, verification};
use crate::approval::{Decision, Destination, Sheet};
use crate::checks::Refusal;
use crate::identities::{self, Identities};
use crate::log::Entry;
use crate::notify;

impl Signer {
    pub(super) async fn sign(&self, peer: &Peer, r: SignRequest, busy: bool) -> SignResponse {
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
        destination: &Destination,
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
            claimed: peer.claimed_name().map(str::to_owned),
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
            let prompt = identities::verification_prompt(&identity);
            let word = identities::secret_word(&identity);
            let signature = verification::verify(&mut turn, &prompt, word, move |secret| {
                key.sign(secret, &data, rsa_hash)
            })
            .await?;
            turn.banner("Approved remote sign request");
            Ok(signature)
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
}
