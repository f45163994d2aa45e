//! Message numbers, as named in RFC 9987 and OpenSSH's `authfd.h`.
//!
//! Exposed so that callers can, for instance, answer an unknown request
//! type with [`SSH_AGENT_FAILURE`] without building a full message.

/// Client asks for the list of identities.
pub const SSH_AGENTC_REQUEST_IDENTITIES: u8 = 11;
/// Client asks for a signature.
pub const SSH_AGENTC_SIGN_REQUEST: u8 = 13;
/// Client adds a private key.
pub const SSH_AGENTC_ADD_IDENTITY: u8 = 17;
/// Client removes one key.
pub const SSH_AGENTC_REMOVE_IDENTITY: u8 = 18;
/// Client removes every key.
pub const SSH_AGENTC_REMOVE_ALL_IDENTITIES: u8 = 19;
/// Client loads keys from a token (PKCS#11 provider).
pub const SSH_AGENTC_ADD_SMARTCARD_KEY: u8 = 20;
/// Client unloads a token's keys.
pub const SSH_AGENTC_REMOVE_SMARTCARD_KEY: u8 = 21;
/// Client locks the agent with a passphrase.
pub const SSH_AGENTC_LOCK: u8 = 22;
/// Client unlocks the agent.
pub const SSH_AGENTC_UNLOCK: u8 = 23;
/// Client adds a private key with constraints.
pub const SSH_AGENTC_ADD_ID_CONSTRAINED: u8 = 25;
/// Client loads token keys with constraints.
pub const SSH_AGENTC_ADD_SMARTCARD_KEY_CONSTRAINED: u8 = 26;
/// Client sends a named extension request.
pub const SSH_AGENTC_EXTENSION: u8 = 27;

/// Generic failure reply.
pub const SSH_AGENT_FAILURE: u8 = 5;
/// Generic success reply.
pub const SSH_AGENT_SUCCESS: u8 = 6;
/// Reply to [`SSH_AGENTC_REQUEST_IDENTITIES`].
pub const SSH_AGENT_IDENTITIES_ANSWER: u8 = 12;
/// Reply to [`SSH_AGENTC_SIGN_REQUEST`].
pub const SSH_AGENT_SIGN_RESPONSE: u8 = 14;
/// An extension was understood but failed.
pub const SSH_AGENT_EXTENSION_FAILURE: u8 = 28;
/// An extension's own reply (OpenSSH uses it to answer `query`).
pub const SSH_AGENT_EXTENSION_RESPONSE: u8 = 29;
