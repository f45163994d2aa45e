//! First contact: an unknown device asks to pair, while the person has a
//! pairing window open (the handshake refused it otherwise); the person
//! decides.

use std::sync::Arc;

use tokio::time::timeout;
use vmux_link::Result;
use vmux_link::session::Invitation;
use vmux_link::trust::TrustStore;
use vmux_proto::text::escape;

use super::{Signer, names};
use crate::approval::{Decision, Sheet};

impl Signer {
    pub(super) async fn pair(self: Arc<Self>, invitation: Invitation) -> Result<()> {
        // Anyone on the network can ask to pair while a window is open;
        // don't let them bury the person under invitations.
        let Ok(_slot) = self.invitations.try_acquire() else {
            invitation
                .reject("the signer has too many pairing requests waiting; try again later")
                .await;
            return Ok(());
        };
        let peer = invitation.peer().clone();
        let trust = TrustStore::load(&self.home)?;
        if let Some(why) = names::id_taken(&trust, &peer.device_id, &peer.public_key) {
            tracing::warn!(
                "refused to pair \"{}\": {}",
                escape(&peer.name),
                escape(&why)
            );
            invitation.reject(&why).await;
            return Ok(());
        }
        let sheet = Sheet::Pairing {
            device: peer.name.clone(),
            fingerprint: peer.fingerprint(),
            code: invitation.code(),
            already_named: names::others_named(&trust, &peer.name, &peer.public_key),
        };
        // Shown only while no paired device's request waits: a stranger's
        // invitation never delays a signature.
        let expires = std::time::Instant::now() + self.config.pairing_timeout;
        let decision = timeout(
            self.config.pairing_timeout,
            self.approvals.ask_yielding(sheet, Some(expires)),
        )
        .await;
        match decision {
            Ok((turn, Ok(Decision::Approve))) => {
                // Pinned by a locked read-modify-write after the requester
                // was told; no lock is held while we talk to it.
                let mut trust = TrustStore::load(&self.home)?;
                // Looked at again: another device may have paired meanwhile.
                if let Some(why) = names::id_taken(&trust, &peer.device_id, &peer.public_key) {
                    turn.banner(format!("Refused pairing with \"{}\": {why}", peer.name));
                    invitation.reject(&why).await;
                    return Ok(());
                }
                let session = invitation.accept(&mut trust, self.clock.now_ms()).await?;
                turn.banner(format!("Paired with \"{}\"", peer.name));
                drop(turn);
                tracing::info!(
                    "paired with \"{}\" ({})",
                    escape(&peer.name),
                    peer.fingerprint()
                );
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
}
