//! What a sign request is really for, read by the signer itself.
//!
//! The requester's `context` is its word; `dataToSign` and the session
//! bindings are not. So the signer parses the data (RFC 4252 userauth or
//! SSHSIG), refuses a request whose context contradicts it, and checks each
//! binding's host signature and that the login's session identifier is the
//! one bound last. Only then is a host "verified by this signer": the
//! signature it makes is good for that session, and so for that host key,
//! only. Pure: no I/O, no clock.

use vmux_hostkey::{BadBinding, bind};
use vmux_proto::agent::{SignedData, classify};
use vmux_proto::envelope::{
    ContextQuality, ErrorCode, Origin, Purpose as ContextPurpose, SessionBinding, SignRequest,
};

use crate::checks::Refusal;

/// The longest user name that can be a login name: no sshd takes more
/// (glibc's and the BSDs' login names are far shorter).
pub const MAX_USER_LEN: usize = 256;

/// What the signed bytes are, as the signer read them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// An SSH public-key login (RFC 4252 §7).
    Login {
        /// The user name as signed: `account[:style]` ([`split_user`]).
        user: String,
    },
    /// An SSHSIG signature (`ssh-keygen -Y sign`, git).
    Signature {
        /// Its namespace, e.g. `git` or `file`.
        namespace: String,
    },
    /// A userauth request for another service than `ssh-connection`: not
    /// an SSH login (a `pam_ssh_agent_auth` challenge, for one). Shown and
    /// judged as unknown data.
    OtherUserauth {
        /// The service it names.
        service: String,
    },
    /// Neither: bytes the signer cannot read.
    Unknown,
}

/// The one service whose userauth request is an SSH login (RFC 4254).
pub const SSH_CONNECTION: &str = "ssh-connection";

/// Where a login goes, and how the signer knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// Not a login: there is no destination host.
    NotALogin,
    /// Proved by the session bindings: the signature is good only in a
    /// session with this host key.
    Verified {
        /// The host key blob.
        key: Vec<u8>,
        /// What the requester's known_hosts calls it (a claim).
        claimed_name: Option<String>,
    },
    /// The requester (`vmux ssh`) says it checked the host key itself.
    ByRequester {
        /// The host key it checked.
        key: Vec<u8>,
        /// The host name it connected to.
        name: Option<String>,
    },
    /// Nothing proves where the login goes.
    Unverified {
        /// Why not, in words for the sheet and the log.
        why: String,
        /// The host key the requester pointed at, if any.
        key: Option<Vec<u8>>,
        /// The name it claimed, if any.
        claimed_name: Option<String>,
    },
}

/// Whether the request came through a forwarded agent connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forwarded {
    /// Not forwarded, as far as anyone says.
    No,
    /// A forwarding binding whose signature verified says so.
    Bound,
    /// Only the requester says so (or its forwarding binding did not
    /// verify).
    Claimed,
}

/// A host the request passed through on its way: a forwarding binding
/// whose signature verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    /// The host key blob.
    pub key: Vec<u8>,
    /// What the requester's known_hosts calls it (a claim).
    pub claimed_name: Option<String>,
}

/// The signer's own reading of a sign request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    /// What the data is.
    pub purpose: Purpose,
    /// Where it goes.
    pub host: Host,
    /// Forwarding hosts between the requester and `host`, oldest first.
    pub through: Vec<Hop>,
    /// Whether an agent was forwarded on the way.
    pub forwarded: Forwarded,
}

impl Reading {
    /// Whether the destination is proved by this signer's own checks.
    pub fn verified(&self) -> bool {
        matches!(self.host, Host::Verified { .. })
    }
}

/// Reads `r`: refuses it (`malformedRequest`, saying what disagreed) when
/// its context or bindings contradict its data.
pub fn read(r: &SignRequest) -> Result<Reading, Refusal> {
    let data = classify(&r.data_to_sign);
    contradictions(r, &data).map_err(|what| {
        (
            ErrorCode::MalformedRequest,
            format!("the request contradicts the data it asks to sign: {what}"),
        )
    })?;
    // Each binding's proof, checked once.
    let proofs: Vec<Result<(), BadBinding>> = r
        .bindings
        .iter()
        .map(|b| bind::verify(&b.host_key, &b.session_id, &b.signature))
        .collect();
    let forwarded = forwarded(r, &proofs);
    Ok(match data {
        SignedData::Userauth(login) if login.service != SSH_CONNECTION => Reading {
            purpose: Purpose::OtherUserauth {
                service: login.service,
            },
            host: Host::NotALogin,
            through: hops(&r.bindings, &proofs),
            forwarded,
        },
        SignedData::Userauth(login) => {
            let (host, through) = destination(r, &proofs, &login.session_id);
            if let (Host::Verified { key, .. }, Some(bound)) = (&host, &login.host_key)
                && !bind::same_key(key, bound)
            {
                return Err((
                    ErrorCode::MalformedRequest,
                    "the login names a different host key (publickey-hostbound) than the session was bound to".into(),
                ));
            }
            login_name(&login.user).map_err(|why| {
                (
                    ErrorCode::MalformedRequest,
                    format!("the login's user name cannot be a login name on any sshd: {why}"),
                )
            })?;
            Reading {
                purpose: Purpose::Login { user: login.user },
                host,
                through,
                forwarded,
            }
        }
        SignedData::SshSig(sig) if vmux_proto::text::check(&sig.namespace).is_err() => {
            return Err((
                ErrorCode::MalformedRequest,
                format!(
                    "the SSHSIG namespace cannot be shown: {}",
                    forbidden(&sig.namespace).unwrap_or_default()
                ),
            ));
        }
        SignedData::SshSig(sig) => Reading {
            purpose: Purpose::Signature {
                namespace: sig.namespace,
            },
            host: Host::NotALogin,
            through: hops(&r.bindings, &proofs),
            forwarded,
        },
        SignedData::Unknown => Reading {
            purpose: Purpose::Unknown,
            host: Host::NotALogin,
            through: hops(&r.bindings, &proofs),
            forwarded,
        },
    })
}

/// The account sshd logs in as and the authentication style asked for:
/// sshd cuts the user name at its first `:` (`root:bsdauth` logs in as
/// `root`), while the signature covers the whole string.
pub fn split_user(user: &str) -> (&str, Option<&str>) {
    match user.split_once(':') {
        Some((account, style)) => (account, Some(style)),
        None => (user, None),
    }
}

/// Whether `user` can be a login name on some sshd; why not. Refused: an
/// empty account, more than [`MAX_USER_LEN`] bytes, and any character
/// [`vmux_proto::text`] refuses (every `Z` but U+0020, `Cc`, `Cf`): such
/// a name cannot name an account, only pad or garble a sheet.
pub fn login_name(user: &str) -> Result<(), String> {
    if let Some(why) = forbidden(user) {
        return Err(why);
    }
    if user.len() > MAX_USER_LEN {
        return Err(format!(
            "it is {} bytes long, more than {MAX_USER_LEN}",
            user.len()
        ));
    }
    if split_user(user).0.is_empty() {
        return Err("the account before the first `:` is empty".into());
    }
    Ok(())
}

/// `it holds a space other than U+0020 (Zs) U+3000`, when `s` holds a
/// character the text rules refuse.
fn forbidden(s: &str) -> Option<String> {
    let c = vmux_proto::text::first_forbidden(s)?;
    Some(format!(
        "it holds {} {}",
        vmux_proto::text::kind(c),
        vmux_proto::text::describe(c)
    ))
}

/// What the context says that the data denies, if anything.
fn contradictions(r: &SignRequest, data: &SignedData) -> Result<(), String> {
    let c = &r.context;
    match (c.purpose, data) {
        (Some(ContextPurpose::SshUserauth), SignedData::SshSig(s)) => {
            return Err(format!(
                "the context says sshUserauth, the data is an SSHSIG signature in namespace \"{}\"",
                s.namespace
            ));
        }
        (Some(ContextPurpose::SshUserauth), SignedData::Unknown) => {
            return Err("the context says sshUserauth, the data is not a userauth request".into());
        }
        (Some(ContextPurpose::Sshsig), SignedData::Userauth(_)) => {
            return Err("the context says sshsig, the data is an SSH userauth request".into());
        }
        (Some(ContextPurpose::Sshsig), SignedData::Unknown) => {
            return Err("the context says sshsig, the data is not SSHSIG signed data".into());
        }
        _ => {}
    }
    match data {
        SignedData::Userauth(login) => {
            if login.key_blob != r.public_key_blob {
                return Err("the userauth data names a different key than publicKeyBlob".into());
            }
            if let Some(user) = c.user.as_deref()
                && user != login.user
            {
                return Err(format!(
                    "the context's user \"{user}\" is not the data's \"{}\"",
                    login.user
                ));
            }
            if let (Some(claimed), Some(bound)) = (&c.host_key, &login.host_key)
                && !bind::same_key(claimed, bound)
            {
                return Err("the context's hostKey is not the one the userauth data names".into());
            }
        }
        SignedData::SshSig(sig) => {
            if let Some(ns) = c.namespace.as_deref()
                && ns != sig.namespace
            {
                return Err(format!(
                    "the context's namespace \"{ns}\" is not the data's \"{}\"",
                    sig.namespace
                ));
            }
        }
        SignedData::Unknown => {}
    }
    Ok(())
}

/// The destination of a login in session `session_id`, and the hops on
/// the way, from the bindings (or the requester's word without them).
fn destination(
    r: &SignRequest,
    proofs: &[Result<(), BadBinding>],
    session_id: &[u8],
) -> (Host, Vec<Hop>) {
    let claimed = || {
        r.bindings
            .last()
            .and_then(|b| b.known_hosts_name.clone())
            .or_else(|| r.context.host.clone())
    };
    let unverified = |why: String| Host::Unverified {
        why,
        key: r
            .bindings
            .last()
            .map(|b| b.host_key.clone())
            .or_else(|| r.context.host_key.clone()),
        claimed_name: claimed(),
    };
    let Some((last, before)) = r.bindings.split_last() else {
        // `vmux ssh` vouches for the host key it checked; with no key there
        // is nothing it can have verified.
        if r.origin == Origin::EmbeddedClient
            && r.context.context_quality == ContextQuality::Verified
            && let Some(key) = &r.context.host_key
        {
            let host = Host::ByRequester {
                key: key.clone(),
                name: r.context.host.clone(),
            };
            return (host, Vec::new());
        }
        let why = "no session binding came with the request".to_owned();
        return (unverified(why), Vec::new());
    };
    // Unverified or not, every proved forwarding stays on the path: a
    // bastion must not make a forwarded login look direct by spoiling it.
    if let Some((i, Err(e))) = proofs.iter().enumerate().find(|(_, p)| p.is_err()) {
        let why = format!("session binding {} of {}: {e}", i + 1, r.bindings.len());
        return (unverified(why), hops(&r.bindings, proofs));
    }
    if last.session_id != session_id {
        let why = "the login's session identifier is not the one bound last".to_owned();
        return (unverified(why), hops(&r.bindings, proofs));
    }
    if last.forwarded {
        let why = "the session bound last is a forwarding, not this login".to_owned();
        return (unverified(why), hops(&r.bindings, proofs));
    }
    if before.iter().any(|b| !b.forwarded) {
        let why = "a login binding comes before the last binding; only forwardings may".to_owned();
        return (unverified(why), hops(&r.bindings, proofs));
    }
    let host = Host::Verified {
        key: last.host_key.clone(),
        claimed_name: last.known_hosts_name.clone(),
    };
    (host, hops(before, proofs))
}

/// The forwarding bindings whose proofs hold, in order.
fn hops(bindings: &[SessionBinding], proofs: &[Result<(), BadBinding>]) -> Vec<Hop> {
    bindings
        .iter()
        .zip(proofs)
        .filter(|(b, proof)| b.forwarded && proof.is_ok())
        .map(|(b, _)| Hop {
            key: b.host_key.clone(),
            claimed_name: b.known_hosts_name.clone(),
        })
        .collect()
}

/// Bound when every forwarding binding is proved; claimed when only the
/// requester says so, or a forwarding binding's proof fails.
fn forwarded(r: &SignRequest, proofs: &[Result<(), BadBinding>]) -> Forwarded {
    let forwardings: Vec<bool> = r
        .bindings
        .iter()
        .zip(proofs)
        .filter(|(b, _)| b.forwarded)
        .map(|(_, proof)| proof.is_ok())
        .collect();
    match (
        forwardings.is_empty(),
        forwardings.iter().all(|proved| *proved),
        r.context.forwarded,
    ) {
        (true, _, false) => Forwarded::No,
        (false, true, _) => Forwarded::Bound,
        _ => Forwarded::Claimed,
    }
}

#[cfg(test)]
mod tests;
