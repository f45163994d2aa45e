//! `signRequest` and `signResponse`: one forwarded signature.

use serde::{Deserialize, Serialize};

use super::check::{self, Check};
use super::error_code::ErrorCode;
use super::limits::{
    MAX_BINDINGS, MAX_DATA_TO_SIGN_LEN, MAX_DEVICE_NAME_LEN, MAX_NONCE_LEN, MAX_SESSION_ID_LEN,
    MIN_NONCE_LEN,
};
use crate::Result;

/// ssh-agent sign flag `SSH_AGENT_RSA_SHA2_256`: sign an RSA key with `rsa-sha2-256`.
pub const SSH_AGENT_RSA_SHA2_256: u32 = 2;
/// ssh-agent sign flag `SSH_AGENT_RSA_SHA2_512`: sign an RSA key with `rsa-sha2-512`.
pub const SSH_AGENT_RSA_SHA2_512: u32 = 4;

/// Initiator → signer: please sign `dataToSign` with the key `publicKeyBlob`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignRequest {
    /// UUID (lowercase, hyphenated) matching the `signResponse`.
    #[serde(rename = "requestID")]
    pub request_id: String,
    /// The key's algorithm name, taken from the key blob (e.g. `ssh-ed25519`).
    pub key_algorithm: String,
    /// The public key blob of the identity to sign with.
    #[serde(with = "serde_bytes")]
    pub public_key_blob: Vec<u8>,
    /// The requesting device's ID.
    #[serde(rename = "sourceDeviceID")]
    pub source_device_id: String,
    /// The requesting device's name, as shown on the approval sheet.
    pub source_device_name: String,
    /// What kind of program asks.
    pub origin: Origin,
    /// The bytes to sign (at most 16 KiB).
    #[serde(with = "serde_bytes")]
    pub data_to_sign: Vec<u8>,
    /// Fresh random anti-replay nonce, 16 to 64 bytes.
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// When the request was made, ms since the Unix epoch.
    pub issued_at_milliseconds: u64,
    /// When the request stops being valid, ms since the Unix epoch.
    pub expires_at_milliseconds: u64,
    /// ssh-agent sign flags ([`SSH_AGENT_RSA_SHA2_256`], [`SSH_AGENT_RSA_SHA2_512`]).
    /// Optional on the wire, default 0.
    #[serde(default)]
    pub flags: u32,
    /// What the requester knows about the signature's use.
    pub context: SignContext,
    /// The `session-bind@openssh.com` proofs the requester's agent
    /// connection received, oldest first, for the signer to check itself.
    /// Optional on the wire, default empty; older signers ignore it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<SessionBinding>,
}

/// One `session-bind@openssh.com` an agent verified on the connection a
/// sign request came from: the server's host key signed the session
/// identifier. The signer checks the signature again; only
/// `knownHostsName` is taken on the requester's word.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionBinding {
    /// The server's host public key blob.
    #[serde(with = "serde_bytes")]
    pub host_key: Vec<u8>,
    /// The session identifier (exchange hash of the session's first key
    /// exchange), 1 to 128 bytes.
    #[serde(rename = "sessionID", with = "serde_bytes")]
    pub session_id: Vec<u8>,
    /// The host key's SSH signature blob over `sessionID`.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
    /// The agent connection is forwarded to that host (`true`), or used to
    /// log in to it (`false`).
    pub forwarded: bool,
    /// A claim: the name a plain (unhashed) line of the requester's
    /// OpenSSH `known_hosts` files gives this host key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts_name: Option<String>,
}

/// What kind of program sent a sign request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Origin {
    /// `vmux agent`, relaying for any ssh-agent client.
    GenericAgent,
    /// `vmux ssh`, which signs for its own connection.
    EmbeddedClient,
    /// Not known. Any other string decodes to this.
    #[default]
    #[serde(other)]
    Unknown,
}

/// What the requester knows about where the signature will be used.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignContext {
    /// How sure the requester is of `host` and `user`.
    pub context_quality: ContextQuality,
    /// Destination host, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Destination user, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// What the signature is for, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<Purpose>,
    /// SSHSIG namespace (e.g. `git`, `file`) when `purpose` is `sshsig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The request came through a forwarded agent connection.
    /// Optional on the wire, default `false`.
    #[serde(default)]
    pub forwarded: bool,
    /// The host key blob the requester verified itself for `host` (`vmux
    /// ssh` checks it against known_hosts). Optional.
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Option::is_none")]
    pub host_key: Option<Vec<u8>>,
}

/// How sure a requester is of the context it reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ContextQuality {
    /// Inferred but not checked, e.g. parsed from the data or a session bind.
    Claimed,
    /// Known first-hand, e.g. `vmux ssh` that opened the connection itself.
    Verified,
    /// Nothing is known (a generic agent sees only the bytes to sign).
    /// Any other string decodes to this.
    #[default]
    #[serde(other)]
    Unknown,
}

/// What a signature is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Purpose {
    /// SSH public-key user authentication (RFC 4252 §7).
    SshUserauth,
    /// An SSHSIG signature (`ssh-keygen -Y sign`, git commit signing).
    Sshsig,
    /// Not known. Any other string decodes to this.
    #[default]
    #[serde(other)]
    Unknown,
}

/// Signer → initiator: the outcome of one `signRequest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignResponse {
    /// The `requestID` of the request answered.
    #[serde(rename = "requestID")]
    pub request_id: String,
    /// `true` when the person approved and `signature` is set.
    pub approved: bool,
    /// SSH signature blob (`string algorithm, string signature`), ready for
    /// SSH_AGENT_SIGN_RESPONSE. Present when approved.
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Option::is_none")]
    pub signature: Option<Vec<u8>>,
    /// Why not, when not approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    /// Human-readable detail, when not approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

impl Check for SignRequest {
    fn check(&self) -> Result<()> {
        check::text("signRequest.requestID", &self.request_id)?;
        check::text("signRequest.keyAlgorithm", &self.key_algorithm)?;
        check::blob("signRequest.publicKeyBlob", &self.public_key_blob)?;
        check::text("signRequest.sourceDeviceID", &self.source_device_id)?;
        check::text_max(
            "signRequest.sourceDeviceName",
            &self.source_device_name,
            MAX_DEVICE_NAME_LEN,
        )?;
        check::bytes(
            "signRequest.dataToSign",
            &self.data_to_sign,
            0,
            MAX_DATA_TO_SIGN_LEN,
        )?;
        check::bytes(
            "signRequest.nonce",
            &self.nonce,
            MIN_NONCE_LEN,
            MAX_NONCE_LEN,
        )?;
        self.context.check()?;
        check::count("signRequest.bindings", self.bindings.len(), MAX_BINDINGS)?;
        self.bindings.iter().try_for_each(Check::check)
    }
}

impl Check for SessionBinding {
    fn check(&self) -> Result<()> {
        check::blob("signRequest.bindings.hostKey", &self.host_key)?;
        check::bytes(
            "signRequest.bindings.sessionID",
            &self.session_id,
            1,
            MAX_SESSION_ID_LEN,
        )?;
        check::blob("signRequest.bindings.signature", &self.signature)?;
        check::opt_text(
            "signRequest.bindings.knownHostsName",
            self.known_hosts_name.as_deref(),
        )
    }
}

impl Check for SignContext {
    fn check(&self) -> Result<()> {
        check::opt_text("signRequest.context.host", self.host.as_deref())?;
        check::opt_text("signRequest.context.user", self.user.as_deref())?;
        check::opt_text("signRequest.context.namespace", self.namespace.as_deref())?;
        check::opt_blob("signRequest.context.hostKey", self.host_key.as_deref())
    }
}

impl Check for SignResponse {
    fn check(&self) -> Result<()> {
        check::text("signResponse.requestID", &self.request_id)?;
        check::opt_blob("signResponse.signature", self.signature.as_deref())?;
        check::opt_message("signResponse.errorMessage", self.error_message.as_deref())
    }
}
