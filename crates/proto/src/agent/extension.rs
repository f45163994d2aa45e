//! `SSH_AGENTC_EXTENSION` requests and their `SSH_AGENT_EXTENSION_RESPONSE`
//! replies.

use super::wire::{Cursor, put_bool, put_string};
use crate::Result;

/// Name of OpenSSH's session-binding extension.
pub const SESSION_BIND: &str = "session-bind@openssh.com";
/// Name of the RFC 9987 extension that lists the extensions an agent supports.
pub const QUERY: &str = "query";
/// Longest session identifier OpenSSH's agent records (`AGENT_MAX_SID_LEN`);
/// exchange hashes are at most 64 bytes, so anything longer is refused.
pub const MAX_SESSION_ID_LEN: usize = 128;

/// An extension request, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extension {
    /// `session-bind@openssh.com`: ssh binds this agent connection to one
    /// SSH session, so the agent learns which host it is talking to.
    SessionBind(SessionBind),
    /// `query`: which extensions does the agent support? Carries no body.
    Query,
    /// Any other extension, its contents left raw (our `…@vmux` control
    /// extensions travel this way). Not for names that have their own
    /// variant: those would not decode back to `Other`.
    Other {
        /// Extension name, e.g. `status@vmux`.
        name: String,
        /// Everything after the name, uninterpreted.
        contents: Vec<u8>,
    },
}

/// Body of `session-bind@openssh.com` (OpenSSH `PROTOCOL.agent` §1).
///
/// Decoding only checks structure; the agent must verify `signature` over
/// `session_id` with `host_key` and enforce [`MAX_SESSION_ID_LEN`] before
/// trusting any of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionBind {
    /// The server's host public key blob.
    pub host_key: Vec<u8>,
    /// Exchange hash of the session's initial key exchange.
    pub session_id: Vec<u8>,
    /// The host key's signature over `session_id`, as sent in KEX.
    pub signature: Vec<u8>,
    /// True when the agent connection is being forwarded to that host,
    /// false when it is used to authenticate to it.
    pub is_forwarding: bool,
}

impl Extension {
    /// The name this extension travels under.
    pub fn name(&self) -> &str {
        match self {
            Extension::SessionBind(_) => SESSION_BIND,
            Extension::Query => QUERY,
            Extension::Other { name, .. } => name,
        }
    }

    /// Reads name and contents; the cursor must hold exactly the remainder
    /// of the message after its type byte.
    pub(crate) fn decode_from(r: &mut Cursor<'_>) -> Result<Self> {
        let name = r.utf8()?;
        let ext = match name {
            SESSION_BIND => Extension::SessionBind(SessionBind {
                host_key: r.string()?.to_vec(),
                session_id: r.string()?.to_vec(),
                signature: r.string()?.to_vec(),
                is_forwarding: r.bool()?,
            }),
            QUERY => Extension::Query,
            _ => Extension::Other {
                name: name.to_owned(),
                contents: r.rest().to_vec(),
            },
        };
        Ok(ext)
    }

    pub(crate) fn encode_to(&self, out: &mut Vec<u8>) -> Result<()> {
        put_string(out, self.name().as_bytes())?;
        match self {
            Extension::SessionBind(b) => {
                put_string(out, &b.host_key)?;
                put_string(out, &b.session_id)?;
                put_string(out, &b.signature)?;
                put_bool(out, b.is_forwarding)?;
            }
            Extension::Query => {}
            Extension::Other { contents, .. } => out.extend_from_slice(contents),
        }
        Ok(())
    }
}

/// Body of `SSH_AGENT_EXTENSION_RESPONSE`: the extension name, then
/// extension-specific contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtensionResponse {
    /// Reply to `query`. OpenSSH (ssh-agent.c `process_ext_query`, read back
    /// by authfd.c `ssh_agent_query_extensions`) sends `string "query"`
    /// followed by one `string` per supported extension up to the end of
    /// the message, with no count and no enclosing string.
    Query {
        /// Supported extension names, in order.
        extensions: Vec<String>,
    },
    /// Any other extension's reply, contents left raw.
    Other {
        /// Extension name.
        name: String,
        /// Everything after the name, uninterpreted.
        contents: Vec<u8>,
    },
}

impl ExtensionResponse {
    /// The reply OpenSSH's agent gives to `query`: only session binding.
    pub fn openssh_query() -> Self {
        ExtensionResponse::Query {
            extensions: vec![SESSION_BIND.to_owned()],
        }
    }

    /// The extension this reply belongs to.
    pub fn name(&self) -> &str {
        match self {
            ExtensionResponse::Query { .. } => QUERY,
            ExtensionResponse::Other { name, .. } => name,
        }
    }

    pub(crate) fn decode_from(r: &mut Cursor<'_>) -> Result<Self> {
        let name = r.utf8()?;
        if name == QUERY {
            // Each entry costs at least its 4-byte length, so the list grows
            // only as far as the input really goes.
            let mut extensions = Vec::new();
            while r.remaining() > 0 {
                extensions.push(r.utf8()?.to_owned());
            }
            Ok(ExtensionResponse::Query { extensions })
        } else {
            Ok(ExtensionResponse::Other {
                name: name.to_owned(),
                contents: r.rest().to_vec(),
            })
        }
    }

    pub(crate) fn encode_to(&self, out: &mut Vec<u8>) -> Result<()> {
        put_string(out, self.name().as_bytes())?;
        match self {
            ExtensionResponse::Query { extensions } => {
                for e in extensions {
                    put_string(out, e.as_bytes())?;
                }
            }
            ExtensionResponse::Other { contents, .. } => out.extend_from_slice(contents),
        }
        Ok(())
    }
}
