//! Messages a client sends to the agent.

use super::extension::Extension;
use super::frame::encode_frame;
use super::number::*;
use super::secret::SecretBytes;
use super::sign_flags::SignFlags;
use super::wire::{Cursor, put_string, put_u8, put_u32};
use crate::{Error, Result};

/// A request from an ssh-agent client.
///
/// vmux refuses every add/remove/smartcard form, so private-key bodies are
/// recognised but never parsed: they stay opaque and are wiped on drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `SSH_AGENTC_REQUEST_IDENTITIES` (11).
    RequestIdentities,
    /// `SSH_AGENTC_SIGN_REQUEST` (13).
    SignRequest(SignRequest),
    /// `SSH_AGENTC_ADD_IDENTITY` (17): key type, private key fields and
    /// comment, kept opaque.
    AddIdentity {
        /// The message after its type byte.
        key: SecretBytes,
    },
    /// `SSH_AGENTC_REMOVE_IDENTITY` (18).
    RemoveIdentity {
        /// Public key blob of the identity to remove.
        key_blob: Vec<u8>,
    },
    /// `SSH_AGENTC_REMOVE_ALL_IDENTITIES` (19).
    RemoveAllIdentities,
    /// `SSH_AGENTC_ADD_SMARTCARD_KEY` (20).
    AddSmartcardKey(SmartcardKey),
    /// `SSH_AGENTC_REMOVE_SMARTCARD_KEY` (21).
    RemoveSmartcardKey(SmartcardKey),
    /// `SSH_AGENTC_LOCK` (22).
    Lock {
        /// Passphrase that will unlock the agent.
        passphrase: SecretBytes,
    },
    /// `SSH_AGENTC_UNLOCK` (23).
    Unlock {
        /// Passphrase given when locking.
        passphrase: SecretBytes,
    },
    /// `SSH_AGENTC_ADD_ID_CONSTRAINED` (25): private key then constraints;
    /// the two cannot be told apart without parsing the key, so the whole
    /// body stays opaque.
    AddIdConstrained {
        /// The message after its type byte.
        body: SecretBytes,
    },
    /// `SSH_AGENTC_ADD_SMARTCARD_KEY_CONSTRAINED` (26).
    AddSmartcardKeyConstrained {
        /// Provider and PIN.
        key: SmartcardKey,
        /// The constraint list, raw.
        constraints: Vec<u8>,
    },
    /// `SSH_AGENTC_EXTENSION` (27).
    Extension(Extension),
}

/// Body of `SSH_AGENTC_SIGN_REQUEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    /// Public key blob of the identity asked to sign.
    pub key_blob: Vec<u8>,
    /// The bytes to sign (see [`super::userauth::classify`] to learn what
    /// they are).
    pub data: Vec<u8>,
    /// Signature flags.
    pub flags: SignFlags,
}

/// Token reference of the smartcard requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmartcardKey {
    /// Reader or PKCS#11 provider path.
    pub reader_id: String,
    /// Token PIN.
    pub pin: SecretBytes,
}

impl SmartcardKey {
    fn decode_from(r: &mut Cursor<'_>) -> Result<Self> {
        Ok(Self {
            reader_id: r.utf8()?.to_owned(),
            pin: SecretBytes::from(r.string()?),
        })
    }

    fn encode_to(&self, out: &mut Vec<u8>) -> Result<()> {
        put_string(out, self.reader_id.as_bytes())?;
        put_string(out, &self.pin)
    }
}

impl Request {
    /// The message number this request travels under.
    pub fn message_number(&self) -> u8 {
        match self {
            Request::RequestIdentities => SSH_AGENTC_REQUEST_IDENTITIES,
            Request::SignRequest(_) => SSH_AGENTC_SIGN_REQUEST,
            Request::AddIdentity { .. } => SSH_AGENTC_ADD_IDENTITY,
            Request::RemoveIdentity { .. } => SSH_AGENTC_REMOVE_IDENTITY,
            Request::RemoveAllIdentities => SSH_AGENTC_REMOVE_ALL_IDENTITIES,
            Request::AddSmartcardKey(_) => SSH_AGENTC_ADD_SMARTCARD_KEY,
            Request::RemoveSmartcardKey(_) => SSH_AGENTC_REMOVE_SMARTCARD_KEY,
            Request::Lock { .. } => SSH_AGENTC_LOCK,
            Request::Unlock { .. } => SSH_AGENTC_UNLOCK,
            Request::AddIdConstrained { .. } => SSH_AGENTC_ADD_ID_CONSTRAINED,
            Request::AddSmartcardKeyConstrained { .. } => SSH_AGENTC_ADD_SMARTCARD_KEY_CONSTRAINED,
            Request::Extension(_) => SSH_AGENTC_EXTENSION,
        }
    }

    /// Decodes a frame body (type byte first, no length prefix).
    ///
    /// Errors: [`Error::UnknownMessage`] for a type this codec does not know
    /// (the agent answers `SSH_AGENT_FAILURE` and keeps the connection),
    /// [`Error::Truncated`], [`Error::TrailingBytes`], [`Error::Malformed`].
    pub fn decode(body: &[u8]) -> Result<Self> {
        let mut r = Cursor::new(body);
        let req = match r.u8()? {
            SSH_AGENTC_REQUEST_IDENTITIES => Request::RequestIdentities,
            SSH_AGENTC_SIGN_REQUEST => Request::SignRequest(SignRequest {
                key_blob: r.string()?.to_vec(),
                data: r.string()?.to_vec(),
                flags: SignFlags::from_bits(r.u32()?),
            }),
            SSH_AGENTC_ADD_IDENTITY => Request::AddIdentity {
                key: SecretBytes::from(r.rest()),
            },
            SSH_AGENTC_REMOVE_IDENTITY => Request::RemoveIdentity {
                key_blob: r.string()?.to_vec(),
            },
            SSH_AGENTC_REMOVE_ALL_IDENTITIES => Request::RemoveAllIdentities,
            SSH_AGENTC_ADD_SMARTCARD_KEY => {
                Request::AddSmartcardKey(SmartcardKey::decode_from(&mut r)?)
            }
            SSH_AGENTC_REMOVE_SMARTCARD_KEY => {
                Request::RemoveSmartcardKey(SmartcardKey::decode_from(&mut r)?)
            }
            SSH_AGENTC_LOCK => Request::Lock {
                passphrase: SecretBytes::from(r.string()?),
            },
            SSH_AGENTC_UNLOCK => Request::Unlock {
                passphrase: SecretBytes::from(r.string()?),
            },
            SSH_AGENTC_ADD_ID_CONSTRAINED => Request::AddIdConstrained {
                body: SecretBytes::from(r.rest()),
            },
            SSH_AGENTC_ADD_SMARTCARD_KEY_CONSTRAINED => Request::AddSmartcardKeyConstrained {
                key: SmartcardKey::decode_from(&mut r)?,
                constraints: r.rest().to_vec(),
            },
            SSH_AGENTC_EXTENSION => Request::Extension(Extension::decode_from(&mut r)?),
            n => return Err(Error::UnknownMessage(n)),
        };
        r.finish()?;
        Ok(req)
    }

    /// Encodes the frame body (type byte first, no length prefix).
    ///
    /// Secret-bearing requests put their secret into the returned buffer,
    /// which the caller should wipe if it matters.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        put_u8(&mut out, self.message_number());
        match self {
            Request::RequestIdentities | Request::RemoveAllIdentities => {}
            Request::SignRequest(s) => {
                put_string(&mut out, &s.key_blob)?;
                put_string(&mut out, &s.data)?;
                put_u32(&mut out, s.flags.bits())?;
            }
            Request::AddIdentity { key: body } | Request::AddIdConstrained { body } => {
                out.extend_from_slice(body);
            }
            Request::RemoveIdentity { key_blob } => put_string(&mut out, key_blob)?,
            Request::AddSmartcardKey(k) | Request::RemoveSmartcardKey(k) => {
                k.encode_to(&mut out)?
            }
            Request::Lock { passphrase } | Request::Unlock { passphrase } => {
                put_string(&mut out, passphrase)?
            }
            Request::AddSmartcardKeyConstrained { key, constraints } => {
                key.encode_to(&mut out)?;
                out.extend_from_slice(constraints);
            }
            Request::Extension(e) => e.encode_to(&mut out)?,
        }
        Ok(out)
    }

    /// Encodes and frames the request, ready to write to the socket.
    pub fn to_frame(&self) -> Result<Vec<u8>> {
        encode_frame(&self.encode()?)
    }
}
