//! `certificateRequest` and `certificateResponse`: a short-lived session
//! certificate for a key the agent made.

use serde::{Deserialize, Serialize};

use super::check::{self, Check};
use super::error_code::ErrorCode;
use super::limits::{MAX_DEVICE_NAME_LEN, MAX_NONCE_LEN, MIN_NONCE_LEN};
use crate::Result;

/// Agent → signer: please certify my ephemeral public key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRequest {
    /// UUID (lowercase, hyphenated) matching the `certificateResponse`.
    #[serde(rename = "requestID")]
    pub request_id: String,
    /// The agent's ephemeral public key blob (`ecdsa-sha2-nistp256`).
    #[serde(with = "serde_bytes")]
    pub public_key_blob: Vec<u8>,
    /// The requesting device's ID.
    #[serde(rename = "sourceDeviceID")]
    pub source_device_id: String,
    /// The requesting device's name.
    pub source_device_name: String,
    /// Validity asked for, in seconds; the signer's policy may shorten it.
    pub requested_validity_seconds: u64,
    /// Fresh random anti-replay nonce, 16 to 64 bytes.
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// When the request was made, ms since the Unix epoch.
    pub issued_at_milliseconds: u64,
    /// When the request stops being valid, ms since the Unix epoch.
    pub expires_at_milliseconds: u64,
}

/// Signer → agent: the outcome of one `certificateRequest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateResponse {
    /// The `requestID` of the request answered.
    #[serde(rename = "requestID")]
    pub request_id: String,
    /// `true` when the certificate was issued.
    pub approved: bool,
    /// The OpenSSH certificate blob (`ecdsa-sha2-nistp256-cert-v01@openssh.com`).
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Option::is_none")]
    pub certificate_blob: Option<Vec<u8>>,
    /// The CA's public key blob.
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Option::is_none")]
    pub ca_public_key: Option<Vec<u8>>,
    /// The certificate's `valid after`, Unix **seconds**.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_after: Option<u64>,
    /// The certificate's `valid before`, Unix **seconds**.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_before: Option<u64>,
    /// Why not, when not approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    /// Human-readable detail, when not approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

impl Check for CertificateRequest {
    fn check(&self) -> Result<()> {
        check::text("certificateRequest.requestID", &self.request_id)?;
        check::blob("certificateRequest.publicKeyBlob", &self.public_key_blob)?;
        check::text("certificateRequest.sourceDeviceID", &self.source_device_id)?;
        check::text_max(
            "certificateRequest.sourceDeviceName",
            &self.source_device_name,
            MAX_DEVICE_NAME_LEN,
        )?;
        check::bytes(
            "certificateRequest.nonce",
            &self.nonce,
            MIN_NONCE_LEN,
            MAX_NONCE_LEN,
        )
    }
}

impl Check for CertificateResponse {
    fn check(&self) -> Result<()> {
        check::text("certificateResponse.requestID", &self.request_id)?;
        check::opt_blob(
            "certificateResponse.certificateBlob",
            self.certificate_blob.as_deref(),
        )?;
        check::opt_blob(
            "certificateResponse.caPublicKey",
            self.ca_public_key.as_deref(),
        )?;
        check::opt_message(
            "certificateResponse.errorMessage",
            self.error_message.as_deref(),
        )
    }
}
