//! `ErrorCode`: why a request failed, carried by `error`, `signResponse` and
//! `certificateResponse`.

use core::fmt;

use serde::{Deserialize, Serialize};

/// Why a request failed.
///
/// A code this build does not know decodes to [`ErrorCode::Unknown`]; treat it
/// as [`ErrorCode::Internal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorCode {
    /// The person at the signer pressed Deny.
    UserDenied,
    /// The request's window had passed (or the clocks disagree too much).
    RequestExpired,
    /// The initiator is not paired, or pairing was rejected or timed out.
    PairingInvalid,
    /// The signer holds no key with that public key blob.
    UnknownKey,
    /// The key exists but is disabled on the signer.
    KeyDisabled,
    /// User verification (passphrase, PIN, touch) failed.
    VerificationFailed,
    /// The signer's policy forbids the request (e.g. CA auto-issue off, validity too long).
    PolicyDenied,
    /// The request's nonce was seen before within its window.
    ReplayedRequest,
    /// The message could not be decoded or is not valid here.
    MalformedRequest,
    /// Too many requests are waiting on the signer.
    SignerBusy,
    /// This device's certificates were revoked on the signer: it issues
    /// the device no more, and the one it holds is refused by servers.
    CertificateRevoked,
    /// Anything else that went wrong on the signer.
    Internal,
    /// A code this build does not know; treat as `internal`.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The wire name, e.g. `"userDenied"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UserDenied => "userDenied",
            ErrorCode::RequestExpired => "requestExpired",
            ErrorCode::PairingInvalid => "pairingInvalid",
            ErrorCode::UnknownKey => "unknownKey",
            ErrorCode::KeyDisabled => "keyDisabled",
            ErrorCode::VerificationFailed => "verificationFailed",
            ErrorCode::PolicyDenied => "policyDenied",
            ErrorCode::ReplayedRequest => "replayedRequest",
            ErrorCode::MalformedRequest => "malformedRequest",
            ErrorCode::SignerBusy => "signerBusy",
            ErrorCode::CertificateRevoked => "certificateRevoked",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    /// One line a person can read.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorCode::UserDenied => "the person at the signer denied the request",
            ErrorCode::RequestExpired => {
                "the request expired before the signer answered (check both clocks)"
            }
            ErrorCode::PairingInvalid => "this device is not paired with the signer",
            ErrorCode::UnknownKey => "the signer does not hold that key",
            ErrorCode::KeyDisabled => "the key is disabled on the signer",
            ErrorCode::VerificationFailed => {
                "user verification (passphrase, PIN or touch) failed on the signer"
            }
            ErrorCode::PolicyDenied => "the signer's policy does not allow this request",
            ErrorCode::ReplayedRequest => "the signer has already seen this request",
            ErrorCode::MalformedRequest => "the peer could not understand the message",
            ErrorCode::SignerBusy => "the signer has too many requests waiting; try again",
            ErrorCode::CertificateRevoked => {
                "this device's certificates were revoked on the signer; no more will be issued"
            }
            ErrorCode::Internal => "the signer hit an internal error",
            ErrorCode::Unknown => "the signer reported an error this vmux does not know",
        })
    }
}
