//! What is the client asking the agent to sign?
//!
//! ssh signs an RFC 4252 userauth request; `ssh-keygen -Y sign` (and so git)
//! signs an SSHSIG blob. Recognising them lets the signer show who logs in
//! where, or which namespace a signature is for. The result is a claim made
//! by the requesting client, not a verified fact; every string is untrusted
//! and should be sanitised before display.

use super::extension::MAX_SESSION_ID_LEN;
use super::wire::Cursor;
use crate::Result;

/// `SSH_MSG_USERAUTH_REQUEST` (RFC 4252 §5).
pub const SSH_MSG_USERAUTH_REQUEST: u8 = 50;
/// The plain public-key method.
pub const METHOD_PUBLICKEY: &str = "publickey";
/// OpenSSH's host-bound public-key method, which also names the server's
/// host key.
pub const METHOD_PUBLICKEY_HOSTBOUND: &str = "publickey-hostbound-v00@openssh.com";
/// The six bytes that open SSHSIG signed data (PROTOCOL.sshsig).
pub const SSHSIG_MAGIC: &[u8; 6] = b"SSHSIG";

/// Longest algorithm, service or method name (RFC 4251 §6: 64 characters).
const MAX_NAME_LEN: usize = 64;
/// Longest user name or SSHSIG namespace we will call recognised.
const MAX_TEXT_LEN: usize = 1024;

/// The result of [`classify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedData {
    /// An SSH public-key user authentication: a login.
    Userauth(Userauth),
    /// An SSHSIG file or commit signature.
    SshSig(SshSig),
    /// Anything else; sign requests may carry arbitrary data.
    Unknown,
}

/// The signed body of a public-key `SSH_MSG_USERAUTH_REQUEST` (RFC 4252 §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Userauth {
    /// Exchange hash of the SSH session (binds it to `session-bind`).
    pub session_id: Vec<u8>,
    /// User name on the server.
    pub user: String,
    /// Service requested, normally `ssh-connection`.
    pub service: String,
    /// [`METHOD_PUBLICKEY`] or [`METHOD_PUBLICKEY_HOSTBOUND`].
    pub method: String,
    /// Public-key algorithm, e.g. `rsa-sha2-512`.
    pub algorithm: String,
    /// Public key blob being used.
    pub key_blob: Vec<u8>,
    /// Server host key blob, present for the host-bound method only.
    pub host_key: Option<Vec<u8>>,
}

/// The signed-data header of an SSHSIG signature (PROTOCOL.sshsig).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSig {
    /// What the signature is for, e.g. `git` or `file`.
    pub namespace: String,
    /// Hash of the message, `sha256` or `sha512`.
    pub hash_algorithm: String,
}

/// Classifies sign-request data. Never fails: anything not exactly one of
/// the known layouts (including trailing bytes) is [`SignedData::Unknown`].
pub fn classify(data: &[u8]) -> SignedData {
    if data.starts_with(SSHSIG_MAGIC) {
        if let Ok(s) = parse_sshsig(data) {
            return SignedData::SshSig(s);
        }
        return SignedData::Unknown;
    }
    match parse_userauth(data) {
        Ok(Some(u)) => SignedData::Userauth(u),
        _ => SignedData::Unknown,
    }
}

fn parse_userauth(data: &[u8]) -> Result<Option<Userauth>> {
    let mut r = Cursor::new(data);
    let session_id = r.string_max(MAX_SESSION_ID_LEN)?;
    if session_id.is_empty() || r.u8()? != SSH_MSG_USERAUTH_REQUEST {
        return Ok(None);
    }
    let user = r.utf8_max(MAX_TEXT_LEN)?;
    let service = r.utf8_max(MAX_NAME_LEN)?;
    let method = r.utf8_max(MAX_NAME_LEN)?;
    // "TRUE": a signature follows. FALSE is only a query and is never signed.
    if r.u8()? != 1 {
        return Ok(None);
    }
    let algorithm = r.utf8_max(MAX_NAME_LEN)?;
    let key_blob = r.string()?;
    let host_key = match method {
        METHOD_PUBLICKEY => None,
        METHOD_PUBLICKEY_HOSTBOUND => Some(r.string()?.to_vec()),
        _ => return Ok(None),
    };
    r.finish()?;
    Ok(Some(Userauth {
        session_id: session_id.to_vec(),
        user: user.to_owned(),
        service: service.to_owned(),
        method: method.to_owned(),
        algorithm: algorithm.to_owned(),
        key_blob: key_blob.to_vec(),
        host_key,
    }))
}

fn parse_sshsig(data: &[u8]) -> Result<SshSig> {
    let mut r = Cursor::new(data);
    r.take(SSHSIG_MAGIC.len())?;
    let namespace = r.utf8_max(MAX_TEXT_LEN)?;
    let _reserved = r.string()?;
    let hash_algorithm = r.utf8_max(MAX_NAME_LEN)?;
    let _message_hash = r.string()?;
    r.finish()?;
    Ok(SshSig {
        namespace: namespace.to_owned(),
        hash_algorithm: hash_algorithm.to_owned(),
    })
}
