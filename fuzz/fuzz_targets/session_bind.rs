//! Arbitrary bytes as what ssh writes on one agent connection: frames whose
//! `session-bind@openssh.com` requests go to the agent's `Bindings`, and
//! whose sign requests go to `sign_context`. Each bind must get the answer a
//! plain model of OpenSSH's rules (ssh-agent.c `process_ext_session_bind`)
//! gives, and the context must name the host of the right binding. Any
//! bind that says "forwarding", accepted or not, marks the connection
//! forwarded for good.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssh_key::{PublicKey, Signature};
use vmux_agent::context::sign_context;
use vmux_agent::session_bind::{BindError, Bindings, MAX_BINDINGS};
use vmux_link::Fingerprint;
use vmux_proto::agent::{
    Extension, MAX_SESSION_ID_LEN, Request, SessionBind, SignedData, classify, frame_len,
};
use vmux_proto::envelope::ContextQuality;

/// One recorded binding: session id, host key blob, forwarded.
type Recorded = (Vec<u8>, Vec<u8>, bool);

fn verifies(bind: &SessionBind) -> bool {
    let Ok(key) = PublicKey::from_bytes(&bind.host_key) else {
        return false;
    };
    let Ok(sig) = Signature::try_from(bind.signature.as_slice()) else {
        return false;
    };
    signature::Verifier::verify(key.key_data(), &bind.session_id, &sig).is_ok()
}

fn same_key(a: &[u8], b: &[u8]) -> bool {
    match (PublicKey::from_bytes(a), PublicKey::from_bytes(b)) {
        (Ok(a), Ok(b)) => a.key_data() == b.key_data(),
        _ => a == b,
    }
}

/// OpenSSH's rules, in OpenSSH's order; `Ok(true)` when a binding is added.
fn model(recorded: &[Recorded], bind: &SessionBind) -> Result<bool, BindError> {
    if bind.session_id.is_empty() || bind.session_id.len() > MAX_SESSION_ID_LEN {
        return Err(BindError::BadSessionId);
    }
    if !verifies(bind) {
        return Err(BindError::BadSignature);
    }
    for (sid, key, forwarded) in recorded {
        if !forwarded {
            return Err(BindError::AfterAuthentication);
        }
        if *sid == bind.session_id {
            return if same_key(key, &bind.host_key) {
                Ok(false)
            } else {
                Err(BindError::SessionIdReused)
            };
        }
    }
    if recorded.len() >= MAX_BINDINGS {
        return Err(BindError::TooMany);
    }
    Ok(true)
}

fuzz_target!(|data: &[u8]| {
    let mut bindings = Bindings::default();
    let mut recorded: Vec<Recorded> = Vec::new();
    let mut said_forwarding = false;
    let mut refused = false;
    let mut stream = data;
    while let Some((header, rest)) = stream.split_first_chunk::<4>() {
        let Ok(len) = frame_len(*header) else { return };
        let Some((body, rest)) = rest.split_at_checked(len) else {
            return;
        };
        stream = rest;
        match Request::decode(body) {
            Ok(Request::Extension(Extension::SessionBind(bind))) => {
                let expected = model(&recorded, &bind);
                let got = bindings.bind(&bind);
                said_forwarding |= bind.is_forwarding;
                refused |= expected.is_err();
                assert_eq!(got, expected.map(|_| ()), "bind {bind:?}");
                // One refusal and the connection signs nothing more.
                assert_eq!(bindings.failed(), refused);
                if expected == Ok(true) {
                    recorded.push((
                        bind.session_id.clone(),
                        bind.host_key.clone(),
                        bind.is_forwarding,
                    ));
                    let last = bindings.last().expect("a binding was just added");
                    assert_eq!(last.session_id, bind.session_id);
                }
                if got.is_ok() {
                    let b = bindings
                        .for_session(&bind.session_id)
                        .expect("a bound session is found");
                    assert!(same_key(&b.host_key, &bind.host_key));
                }
                assert_eq!(bindings.forwarded(), said_forwarding);
            }
            Ok(Request::SignRequest(sign)) => {
                let ctx = sign_context(&sign.data, &bindings);
                assert_eq!(ctx.forwarded, bindings.forwarded());
                // The host is the binding of the session being logged in
                // to, else the latest binding.
                let session = match classify(&sign.data) {
                    SignedData::Userauth(u) => recorded.iter().find(|r| r.0 == u.session_id),
                    _ => None,
                };
                let host = session
                    .or(recorded.last())
                    .map(|(_, key, _)| Fingerprint::of(key).to_string());
                assert_eq!(ctx.host, host);
                let known = ctx.purpose.is_some() || ctx.host.is_some() || ctx.forwarded;
                assert_eq!(ctx.context_quality == ContextQuality::Claimed, known);
            }
            _ => {}
        }
    }
});
