//! Arbitrary bytes as sign-request data, read as an RFC 4252 public-key
//! `SSH_MSG_USERAUTH_REQUEST` (the plain and the OpenSSH host-bound method).
//! `classify` must agree with a plain reference reader, a recognised login
//! must re-encode to exactly the input, and the context the agent sends and
//! the destination the signer shows must say what was parsed.
#![no_main]

#[path = "support/wire.rs"]
mod wire;

use libfuzzer_sys::fuzz_target;
use vmux_agent::context::sign_context;
use vmux_agent::session_bind::Bindings;
use vmux_proto::agent::userauth::{
    METHOD_PUBLICKEY, METHOD_PUBLICKEY_HOSTBOUND, SSH_MSG_USERAUTH_REQUEST, SSHSIG_MAGIC,
};
use vmux_proto::agent::{MAX_SESSION_ID_LEN, SignedData, Userauth, classify};
use vmux_proto::envelope::{ContextQuality, Purpose, SignContext};
use vmux_signer::destination::Destination;
use vmux_signer::hostkeys::HostKeys;
use vmux_signer::reading;
use wire::{Reader, put_string, request};

/// RFC 4252 §7 with RFC 4251 §6's 64-character names; user names up to
/// 1024 bytes; nothing may follow.
fn reference(data: &[u8]) -> Option<Userauth> {
    let mut r = Reader(data);
    let session_id = r.string()?;
    if session_id.is_empty() || session_id.len() > MAX_SESSION_ID_LEN {
        return None;
    }
    if r.u8()? != SSH_MSG_USERAUTH_REQUEST {
        return None;
    }
    let user = r.text(1024)?;
    let service = r.text(64)?;
    let method = r.text(64)?;
    if r.u8()? != 1 {
        return None;
    }
    let algorithm = r.text(64)?;
    let key_blob = r.string()?;
    let host_key = match method {
        METHOD_PUBLICKEY => None,
        METHOD_PUBLICKEY_HOSTBOUND => Some(r.string()?.to_vec()),
        _ => return None,
    };
    if !r.0.is_empty() {
        return None;
    }
    Some(Userauth {
        session_id: session_id.to_vec(),
        user: user.to_owned(),
        service: service.to_owned(),
        method: method.to_owned(),
        algorithm: algorithm.to_owned(),
        key_blob: key_blob.to_vec(),
        host_key,
    })
}

fn encode(u: &Userauth) -> Vec<u8> {
    let mut out = Vec::new();
    put_string(&mut out, &u.session_id);
    out.push(SSH_MSG_USERAUTH_REQUEST);
    put_string(&mut out, u.user.as_bytes());
    put_string(&mut out, u.service.as_bytes());
    put_string(&mut out, u.method.as_bytes());
    out.push(1);
    put_string(&mut out, u.algorithm.as_bytes());
    put_string(&mut out, &u.key_blob);
    if let Some(host_key) = &u.host_key {
        put_string(&mut out, host_key);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.starts_with(SSHSIG_MAGIC) {
        // The sshsig target's business.
        return;
    }
    let classified = classify(data);
    let expected = reference(data);
    match (&classified, &expected) {
        (SignedData::Userauth(got), Some(want)) => assert_eq!(got, want),
        (SignedData::Unknown, None) => {}
        _ => panic!("classify says {classified:?}, the reference {expected:?}"),
    }
    let ctx = sign_context(data, &Bindings::default());
    let Some(login) = expected else {
        assert_eq!(ctx, SignContext::default());
        return;
    };
    assert_eq!(encode(&login), data, "a login re-encodes to its input");
    assert_eq!(ctx.purpose, Some(Purpose::SshUserauth));
    // A user name the text rules refuse is left out of the context.
    let sendable = vmux_proto::text::check(&login.user).is_ok();
    assert_eq!(ctx.user.as_deref(), Some(login.user.as_str()).filter(|_| sendable));
    assert_eq!(ctx.context_quality, ContextQuality::Claimed);
    assert_eq!(ctx.host, None);
    // The signer reads the same login, and the agent's context never
    // contradicts it; a user name no sshd could log in as is refused.
    let read = reading::read(&request(data, &login.key_blob, ctx));
    let is_login = login.service == reading::SSH_CONNECTION;
    if is_login && reading::login_name(&login.user).is_err() {
        let (code, _) = read.expect_err("a user name no sshd takes is refused");
        assert_eq!(code, vmux_proto::envelope::ErrorCode::MalformedRequest);
        return;
    }
    let got = read.expect("an honest agent's context agrees with the data");
    let shown = Destination::describe(&got, &HostKeys::default(), "laptop");
    assert!(!got.verified(), "no binding, no verified destination");
    if !is_login {
        // Not a login: unknown data, naming its service, and no user.
        assert!(shown.purpose.text.starts_with("unknown data (userauth for service"));
        assert_eq!(shown.user, None);
        return;
    }
    // The account before the first `:`, the style after it; never cut, as
    // a name that passes is at most 256 bytes.
    let (account, style) = reading::split_user(&login.user);
    assert_eq!(shown.user.map(|u| u.text), Some(account.to_owned()));
    assert_eq!(shown.style.as_deref(), style);
    assert_eq!(shown.purpose.text, "SSH login");
});
