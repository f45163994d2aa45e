//! What the agent can tell the signer about a sign request: parsed from the
//! data and from the connection's session bindings. All of it is a claim by
//! the local client, so the quality is never more than `claimed`.

use vmux_link::Fingerprint;
use vmux_proto::agent::{SignedData, classify};
use vmux_proto::envelope::{ContextQuality, Purpose, SessionBinding, SignContext};

use crate::session_bind::Bindings;

/// The context for signing `data` on a connection with `bindings`.
pub fn sign_context(data: &[u8], bindings: &Bindings) -> SignContext {
    let mut ctx = SignContext {
        forwarded: bindings.forwarded(),
        ..SignContext::default()
    };
    let mut binding = bindings.last();
    match classify(data) {
        SignedData::Userauth(u) => {
            ctx.purpose = Some(Purpose::SshUserauth);
            // A name the wire's text rules refuse stays out of the context,
            // so the request still travels and the signer, reading the
            // data itself, refuses it with the reason.
            ctx.user = Some(u.user).filter(|user| vmux_proto::text::check(user).is_ok());
            // The binding for this very session names the host best.
            if let Some(b) = bindings.for_session(&u.session_id) {
                binding = Some(b);
            }
        }
        SignedData::SshSig(s) => {
            ctx.purpose = Some(Purpose::Sshsig);
            ctx.namespace = Some(s.namespace).filter(|ns| vmux_proto::text::check(ns).is_ok());
        }
        SignedData::Unknown => {}
    }
    // We know the host only by its key; the fingerprint is what a person
    // can check against known_hosts.
    ctx.host = binding.map(|b| b.host_fingerprint().to_string());
    if ctx.purpose.is_some() || ctx.host.is_some() || ctx.forwarded {
        ctx.context_quality = ContextQuality::Claimed;
    }
    ctx
}

/// `ctx` with its host (a fingerprint) named as this user's known_hosts
/// names it, when a binding carries that name: a person can judge a name.
/// Still a claim; the signer names verified hosts from its own list.
pub fn named(mut ctx: SignContext, bound: &[SessionBinding]) -> SignContext {
    let name = ctx.host.as_deref().and_then(|host| {
        bound
            .iter()
            .find(|b| Fingerprint::of(&b.host_key).as_str() == host)
            .and_then(|b| b.known_hosts_name.clone())
    });
    if name.is_some() {
        ctx.host = name;
    }
    ctx
}

/// The bound hosts in order, `bastion (forwarded) → db`, for the log.
pub fn route(bound: &[SessionBinding]) -> Option<String> {
    if bound.is_empty() {
        return None;
    }
    let hops: Vec<String> = bound
        .iter()
        .map(|b| {
            let name = b
                .known_hosts_name
                .clone()
                .unwrap_or_else(|| Fingerprint::of(&b.host_key).to_string());
            if b.forwarded {
                format!("{name} (forwarded)")
            } else {
                name
            }
        })
        .collect();
    Some(hops.join(" → "))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn string(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&u32::try_from(s.len()).unwrap().to_be_bytes());
        out.extend_from_slice(s);
    }

    #[test]
    fn userauth_and_sshsig_are_claims() {
        let mut login = Vec::new();
        string(&mut login, b"session-id");
        login.push(50);
        string(&mut login, b"git");
        string(&mut login, b"ssh-connection");
        string(&mut login, b"publickey");
        login.push(1);
        string(&mut login, b"ssh-ed25519");
        string(&mut login, b"blob");
        let ctx = sign_context(&login, &Bindings::default());
        assert_eq!(ctx.purpose, Some(Purpose::SshUserauth));
        assert_eq!(ctx.user.as_deref(), Some("git"));
        assert_eq!(ctx.host, None);
        assert_eq!(ctx.context_quality, ContextQuality::Claimed);

        let mut sig = b"SSHSIG".to_vec();
        string(&mut sig, b"git");
        string(&mut sig, b"");
        string(&mut sig, b"sha512");
        string(&mut sig, &[0u8; 64]);
        let ctx = sign_context(&sig, &Bindings::default());
        assert_eq!(ctx.purpose, Some(Purpose::Sshsig));
        assert_eq!(ctx.namespace.as_deref(), Some("git"));

        let ctx = sign_context(b"anything", &Bindings::default());
        assert_eq!(ctx, SignContext::default());
    }

    /// The signer refuses it, with the reason; the context must not stop
    /// the request on its way there.
    #[test]
    fn a_user_name_the_text_rules_refuse_is_left_out() {
        let mut login = Vec::new();
        string(&mut login, b"session-id");
        login.push(50);
        string(&mut login, "root:\u{3000}".as_bytes());
        string(&mut login, b"ssh-connection");
        string(&mut login, b"publickey");
        login.push(1);
        string(&mut login, b"ssh-ed25519");
        string(&mut login, b"blob");
        let ctx = sign_context(&login, &Bindings::default());
        assert_eq!(ctx.purpose, Some(Purpose::SshUserauth));
        assert_eq!(ctx.user, None);
    }
}
