//! `cancel`: the requester no longer wants an answer.

use serde::{Deserialize, Serialize};

use super::check::{self, Check};
use crate::Result;

/// Initiator → signer: withdraw the request `requestID`; its client left
/// (the ssh process hung up), so an answer would have nowhere to go.
///
/// The signer withdraws the sheet (or the passphrase prompt) if one is
/// shown, signs nothing, and sends no response. A `cancel` for a request
/// that is not pending on this session, or already answered, is ignored:
/// only the session that sent a request can cancel it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    /// The `requestID` of the `signRequest` or `certificateRequest`.
    #[serde(rename = "requestID")]
    pub request_id: String,
}

impl Check for Cancel {
    fn check(&self) -> Result<()> {
        check::text("cancel.requestID", &self.request_id)
    }
}
