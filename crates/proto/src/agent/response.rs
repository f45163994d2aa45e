//! Messages the agent sends back.

use super::extension::ExtensionResponse;
use super::frame::encode_frame;
use super::number::*;
use super::wire::{Cursor, put_string, put_u8, put_u32};
use crate::{Error, Result};

/// Smallest encoding of one identity (two empty strings), used to bound a
/// claimed count by the bytes actually present.
const MIN_IDENTITY_LEN: usize = 8;

/// A reply from the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `SSH_AGENT_FAILURE` (5): the request failed or is refused.
    Failure,
    /// `SSH_AGENT_SUCCESS` (6).
    Success,
    /// `SSH_AGENT_IDENTITIES_ANSWER` (12).
    IdentitiesAnswer(Vec<Identity>),
    /// `SSH_AGENT_SIGN_RESPONSE` (14).
    SignResponse {
        /// SSH signature blob: `string algorithm, string signature`.
        signature: Vec<u8>,
    },
    /// `SSH_AGENT_EXTENSION_FAILURE` (28): an extension was recognised but
    /// failed (OpenSSH: a session-bind that does not verify).
    ExtensionFailure,
    /// `SSH_AGENT_EXTENSION_RESPONSE` (29).
    ExtensionResponse(ExtensionResponse),
}

/// One entry of an identities answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Public key (or certificate) blob.
    pub key_blob: Vec<u8>,
    /// Human-readable comment, e.g. `vmux-session-cert`.
    pub comment: String,
}

impl Response {
    /// The message number this response travels under.
    pub fn message_number(&self) -> u8 {
        match self {
            Response::Failure => SSH_AGENT_FAILURE,
            Response::Success => SSH_AGENT_SUCCESS,
            Response::IdentitiesAnswer(_) => SSH_AGENT_IDENTITIES_ANSWER,
            Response::SignResponse { .. } => SSH_AGENT_SIGN_RESPONSE,
            Response::ExtensionFailure => SSH_AGENT_EXTENSION_FAILURE,
            Response::ExtensionResponse(_) => SSH_AGENT_EXTENSION_RESPONSE,
        }
    }

    /// Decodes a frame body (type byte first, no length prefix).
    ///
    /// An identity count is checked against the bytes present before the
    /// list grows, so a claim of 2^32-1 keys fails at once.
    pub fn decode(body: &[u8]) -> Result<Self> {
        let mut r = Cursor::new(body);
        let resp = match r.u8()? {
            SSH_AGENT_FAILURE => Response::Failure,
            SSH_AGENT_SUCCESS => Response::Success,
            SSH_AGENT_IDENTITIES_ANSWER => {
                let count = usize::try_from(r.u32()?).map_err(|_| Error::Truncated)?;
                if count > r.remaining() / MIN_IDENTITY_LEN {
                    return Err(Error::Truncated);
                }
                let mut ids = Vec::new();
                for _ in 0..count {
                    ids.push(Identity {
                        key_blob: r.string()?.to_vec(),
                        comment: r.utf8()?.to_owned(),
                    });
                }
                Response::IdentitiesAnswer(ids)
            }
            SSH_AGENT_SIGN_RESPONSE => Response::SignResponse {
                signature: r.string()?.to_vec(),
            },
            SSH_AGENT_EXTENSION_FAILURE => Response::ExtensionFailure,
            SSH_AGENT_EXTENSION_RESPONSE => {
                Response::ExtensionResponse(ExtensionResponse::decode_from(&mut r)?)
            }
            n => return Err(Error::UnknownMessage(n)),
        };
        r.finish()?;
        Ok(resp)
    }

    /// Encodes the frame body (type byte first, no length prefix).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        put_u8(&mut out, self.message_number());
        match self {
            Response::Failure | Response::Success | Response::ExtensionFailure => {}
            Response::IdentitiesAnswer(ids) => {
                let count = u32::try_from(ids.len())
                    .map_err(|_| Error::Malformed("too many identities"))?;
                put_u32(&mut out, count)?;
                for id in ids {
                    put_string(&mut out, &id.key_blob)?;
                    put_string(&mut out, id.comment.as_bytes())?;
                }
            }
            Response::SignResponse { signature } => put_string(&mut out, signature)?,
            Response::ExtensionResponse(e) => e.encode_to(&mut out)?,
        }
        Ok(out)
    }

    /// Encodes and frames the response; fails if it would exceed
    /// [`super::MAX_MESSAGE_LEN`], which clients refuse.
    pub fn to_frame(&self) -> Result<Vec<u8>> {
        encode_frame(&self.encode()?)
    }
}
