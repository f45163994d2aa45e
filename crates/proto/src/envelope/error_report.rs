//! `error`: a failure not tied to a response envelope.

use serde::{Deserialize, Serialize};

use super::check::{self, Check};
use super::error_code::ErrorCode;
use crate::Result;

/// Either side: something failed. Sent for pairing failures, an unpaired
/// initiator, unknown or malformed envelopes and version mismatches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    /// What kind of failure.
    pub code: ErrorCode,
    /// Human-readable detail for the person on the other side.
    pub message: String,
    /// The `requestID` of the envelope this answers, when it had one.
    #[serde(rename = "requestID", default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Check for ErrorReport {
    fn check(&self) -> Result<()> {
        check::message("error.message", &self.message)?;
        check::opt_text("error.requestID", self.request_id.as_deref())
    }
}
