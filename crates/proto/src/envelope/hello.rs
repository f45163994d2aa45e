//! `hello`: the first envelope each way on every session.

use serde::{Deserialize, Serialize};

use super::check::{self, Check};
use super::limits::MAX_DEVICE_NAME_LEN;
use crate::Result;

/// First envelope each way: who is speaking and which protocol it speaks.
///
/// The initiator sends it right after the Noise handshake; the signer answers
/// with its own (role [`Role::Signer`]) once it accepts the session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hello {
    /// Protocol major version (must equal the envelope's `v`).
    pub protocol_major: u16,
    /// Protocol minor version; minor differences are compatible.
    pub protocol_minor: u16,
    /// The sender's device ID: a random UUID v4, lowercase and hyphenated.
    #[serde(rename = "deviceID")]
    pub device_id: String,
    /// The sender's human-readable device name (at most 64 bytes).
    pub device_name: String,
    /// What the sender is.
    pub role: Role,
    /// The initiator asks to pair (its person ran `vmux pair`). Always
    /// `false` from the signer. Optional on the wire, default `false`.
    #[serde(default)]
    pub pairing: bool,
}

/// The part a device plays on the link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// `vmux agent`: an ssh-agent forwarding sign requests.
    Agent,
    /// `vmux ssh`: an SSH client with remote signing built in.
    Client,
    /// `vmux signer`: the device that holds the keys.
    Signer,
    /// A role this build does not know. Never sent by a conforming peer.
    #[default]
    #[serde(other)]
    Unknown,
}

impl Check for Hello {
    fn check(&self) -> Result<()> {
        check::text("hello.deviceID", &self.device_id)?;
        check::text_max("hello.deviceName", &self.device_name, MAX_DEVICE_NAME_LEN)
    }
}
