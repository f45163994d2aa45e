//! `session-bind@openssh.com`: which SSH sessions an agent connection
//! serves, following OpenSSH's `process_ext_session_bind`.
//!
//! ssh binds its agent connection to each session by sending the server's
//! host key and that key's signature over the session id. We verify the
//! signature before recording anything (with the same check the signer
//! makes again, `vmux_hostkey::bind`), and keep the proof so that it can
//! travel with each sign request: the signer believes no agent's word for
//! the destination.
//!
//! The one exception is the forwarding flag. It only ever takes rights
//! away (a forwarded connection never gets the session certificate nor the
//! control extensions), so it is believed whenever a bind says it, even
//! one we refuse: a host key we cannot verify (a host certificate, a key
//! type we do not know) must not turn a forwarded connection into a local
//! one. And once set it stays set: later binds, which on a forwarded
//! connection come from the remote host, cannot clear it.
//!
//! A refused bind also leaves its mark: the connection signs nothing more
//! (OpenSSH 9.6, openssh-portable 6d51feab1, "record failed session-bind
//! attempts"). A client whose bind failed, say for a host key type we
//! cannot read, would otherwise look unbound, that is local.

use vmux_hostkey::{same_key, verify};
use vmux_link::Fingerprint;
use vmux_proto::agent::{MAX_SESSION_ID_LEN, SessionBind};
use vmux_proto::envelope::SessionBinding;

/// OpenSSH's `AGENT_MAX_SESSION_IDS`.
pub const MAX_BINDINGS: usize = 16;

/// One verified binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The server's host key blob.
    pub host_key: Vec<u8>,
    /// The session's exchange hash.
    pub session_id: Vec<u8>,
    /// The host key's signature over `session_id`: the proof.
    pub signature: Vec<u8>,
    /// The connection is forwarded to that host, not used to log in to it.
    pub forwarded: bool,
}

impl Binding {
    /// `SHA256:` fingerprint of the host key, what we can name the host by.
    pub fn host_fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.host_key)
    }
}

/// Why a bind was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindError {
    /// Session id empty or longer than OpenSSH accepts.
    BadSessionId,
    /// Already [`MAX_BINDINGS`] on this connection.
    TooMany,
    /// The host key or signature does not parse, or does not verify.
    BadSignature,
    /// The connection was bound for authentication: it may not be bound
    /// again (it would let one login's connection be reused for another).
    AfterAuthentication,
    /// The same session id was bound to a different host key.
    SessionIdReused,
}

/// Bindings of one agent connection.
#[derive(Debug, Default)]
pub struct Bindings {
    verified: Vec<Binding>,
    /// Some bind, verified or not, said the connection is forwarded.
    forwarded: bool,
    /// Some bind was refused.
    failed: bool,
    /// The process id of the client at the socket's other end.
    client_pid: Option<i32>,
}

impl Bindings {
    /// No bindings yet, on a connection from the process `client_pid`.
    pub fn for_client(client_pid: Option<i32>) -> Self {
        Self {
            client_pid,
            ..Self::default()
        }
    }

    /// The process id of the client, when the socket told it.
    pub fn client_pid(&self) -> Option<i32> {
        self.client_pid
    }

    /// No session was bound on this connection.
    pub fn is_empty(&self) -> bool {
        self.verified.is_empty()
    }

    /// Verifies and records `bind`. Binding the same session id and key
    /// again succeeds without a new record, as in OpenSSH. Its forwarding
    /// flag counts even when it is refused, and a refusal marks the
    /// connection as one that signs nothing more.
    pub fn bind(&mut self, bind: &SessionBind) -> Result<(), BindError> {
        self.forwarded |= bind.is_forwarding;
        let result = self.record(bind);
        self.failed |= result.is_err();
        result
    }

    /// The checks in `process_ext_session_bind`'s order (openssh-portable
    /// 0ef0f5a83): session id length, signature, earlier bindings, count.
    fn record(&mut self, bind: &SessionBind) -> Result<(), BindError> {
        if bind.session_id.is_empty() || bind.session_id.len() > MAX_SESSION_ID_LEN {
            return Err(BindError::BadSessionId);
        }
        verify(&bind.host_key, &bind.session_id, &bind.signature)
            .map_err(|_| BindError::BadSignature)?;
        for b in &self.verified {
            if !b.forwarded {
                return Err(BindError::AfterAuthentication);
            }
            if b.session_id == bind.session_id {
                return if same_key(&b.host_key, &bind.host_key) {
                    Ok(())
                } else {
                    Err(BindError::SessionIdReused)
                };
            }
        }
        // Counted last: the same session bound again is no new record.
        if self.verified.len() >= MAX_BINDINGS {
            return Err(BindError::TooMany);
        }
        self.verified.push(Binding {
            host_key: bind.host_key.clone(),
            session_id: bind.session_id.clone(),
            signature: bind.signature.clone(),
            forwarded: bind.is_forwarding,
        });
        Ok(())
    }

    /// A session-bind came that did not even parse: refused like any other.
    pub fn unreadable(&mut self) {
        self.failed = true;
    }

    /// Whether any bind said this connection was forwarded.
    pub fn forwarded(&self) -> bool {
        self.forwarded
    }

    /// Whether some bind on this connection was refused: it then signs
    /// nothing and lists nothing.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// The binding for `session_id`, if recorded.
    pub fn for_session(&self, session_id: &[u8]) -> Option<&Binding> {
        self.verified.iter().find(|b| b.session_id == session_id)
    }

    /// The most recent binding: the host the client is talking to now.
    pub fn last(&self) -> Option<&Binding> {
        self.verified.last()
    }

    /// Every binding, oldest first: what the signer checks for itself.
    /// `name` gives the name this user's known_hosts has for a host key (a
    /// claim that travels with the proof).
    ///
    /// `name` gets each host key, and for the first binding (the host the
    /// client itself connected to; later ones came through forwarding)
    /// also `first`, the name the client was given for that host.
    pub fn to_wire(
        &self,
        first: Option<&str>,
        name: impl Fn(&[u8], Option<&str>) -> Option<String>,
    ) -> Vec<SessionBinding> {
        self.verified
            .iter()
            .enumerate()
            .map(|(i, b)| SessionBinding {
                host_key: b.host_key.clone(),
                session_id: b.session_id.clone(),
                signature: b.signature.clone(),
                forwarded: b.forwarded,
                known_hosts_name: name(&b.host_key, first.filter(|_| i == 0)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use signature::Signer;
    use ssh_key::{Algorithm, PrivateKey, Signature};

    fn bind(key: &PrivateKey, sid: &[u8], forwarding: bool) -> SessionBind {
        let sig: Signature = key.try_sign(sid).unwrap();
        SessionBind {
            host_key: key.public_key().to_bytes().unwrap(),
            session_id: sid.to_vec(),
            signature: Vec::<u8>::try_from(sig).unwrap(),
            is_forwarding: forwarding,
        }
    }

    fn host() -> PrivateKey {
        PrivateKey::random(
            &mut ssh_key::rand_core::UnwrapErr(ssh_key::getrandom::SysRng),
            Algorithm::Ed25519,
        )
        .unwrap()
    }

    #[test]
    fn follows_openssh_rules() {
        let (a, b) = (host(), host());
        let mut bindings = Bindings::default();
        assert_eq!(bindings.bind(&bind(&a, b"sid1", true)), Ok(()));
        assert_eq!(bindings.bind(&bind(&a, b"sid1", true)), Ok(()));
        assert_eq!(
            bindings.bind(&bind(&b, b"sid1", true)),
            Err(BindError::SessionIdReused)
        );
        let mut forged = bind(&a, b"sid2", false);
        forged.session_id = b"sid3".to_vec();
        assert_eq!(bindings.bind(&forged), Err(BindError::BadSignature));
        assert!(bindings.failed());
        assert_eq!(bindings.bind(&bind(&b, b"sid2", false)), Ok(()));
        assert!(bindings.failed(), "a later good bind does not clear it");
        assert!(bindings.forwarded());
        assert_eq!(
            bindings.bind(&bind(&a, b"sid4", true)),
            Err(BindError::AfterAuthentication)
        );
        assert_eq!(
            bindings.for_session(b"sid2").unwrap().host_key,
            b.public_key().to_bytes().unwrap()
        );
    }

    #[test]
    fn forwarding_is_believed_unverified_and_never_cleared() {
        let a = host();
        let mut forged = bind(&a, b"sid1", true);
        forged.signature[20] ^= 1;
        let mut bindings = Bindings::default();
        assert_eq!(bindings.bind(&forged), Err(BindError::BadSignature));
        assert!(bindings.forwarded());
        assert!(bindings.last().is_none());
        // The remote host binds its own next hop, for authentication.
        assert_eq!(bindings.bind(&bind(&a, b"sid2", false)), Ok(()));
        assert!(bindings.forwarded());
        let mut oversized = bind(&a, &[1u8; MAX_SESSION_ID_LEN + 1], true);
        oversized.is_forwarding = true;
        let mut fresh = Bindings::default();
        assert_eq!(fresh.bind(&oversized), Err(BindError::BadSessionId));
        assert!(fresh.forwarded());
    }

    #[test]
    fn caps_bindings_and_session_id_length() {
        let a = host();
        let mut bindings = Bindings::default();
        for i in 0..MAX_BINDINGS {
            bindings
                .bind(&bind(&a, format!("s{i}").as_bytes(), true))
                .unwrap();
        }
        assert!(!bindings.failed());
        // The same session again is no new record, even at the cap.
        assert_eq!(bindings.bind(&bind(&a, b"s3", true)), Ok(()));
        assert_eq!(
            bindings.bind(&bind(&a, b"x", true)),
            Err(BindError::TooMany)
        );
        assert!(bindings.failed());
        let mut fresh = Bindings::default();
        assert_eq!(
            fresh.bind(&bind(&a, &[7u8; MAX_SESSION_ID_LEN + 1], true)),
            Err(BindError::BadSessionId)
        );
    }
}
