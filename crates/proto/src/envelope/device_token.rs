//! `deviceTokenUpdate`: where an agent can wake the signer.

use serde::{Deserialize, Serialize};

use super::check::{self, Check};
use crate::Result;

/// Signer → agent: POST to this endpoint to wake me when you cannot reach me.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceTokenUpdate {
    /// An `https://` URL (UnifiedPush / ntfy style). The codec checks only
    /// its length; the agent checks the scheme before using it.
    pub endpoint: String,
}

impl Check for DeviceTokenUpdate {
    fn check(&self) -> Result<()> {
        check::text("deviceTokenUpdate.endpoint", &self.endpoint)
    }
}
