//! Arbitrary bytes as what a compromised agent could tell the signer: the
//! frames of one client connection (the `session_bind` corpus, captured
//! from real OpenSSH logins), where every `session-bind@openssh.com` is
//! passed on as a binding *unchecked* and every sign request becomes a
//! `signRequest` carrying them. The signer's `reading::read` must agree with
//! a plain model of protocol.md §9.6 on when a destination is verified and
//! when the request is refused; whatever the bytes, every line the sheet
//! shows (`ui::text::fields`) is text a terminal can take, and a policy denying unverified
//! destinations lets only verified logins through.
#![no_main]

#[path = "support/wire.rs"]
mod wire;

use libfuzzer_sys::fuzz_target;
use vmux_hostkey::{same_key, verify as proof};
use vmux_proto::agent::{Extension, Request, SignedData, classify, frame_len};
use vmux_proto::envelope::limits::{MAX_BINDINGS, MAX_DATA_TO_SIGN_LEN, MAX_SESSION_ID_LEN};
use vmux_proto::envelope::{SessionBinding, SignContext, SignRequest};
use vmux_signer::approval::Sheet;
use vmux_signer::destination::Destination;
use vmux_signer::hostkeys::HostKeys;
use vmux_signer::policy::{self, Policy, Rule};
use vmux_signer::ui::text;
use vmux_signer::reading::{self, Host};

/// §9.6: verified exactly when every binding verifies, the last one is the
/// login's session and not a forwarding, and every earlier one forwards.
fn model_verified(bindings: &[SessionBinding], session_id: &[u8]) -> bool {
    let Some((last, before)) = bindings.split_last() else {
        return false;
    };
    bindings
        .iter()
        .all(|b| proof(&b.host_key, &b.session_id, &b.signature).is_ok())
        && last.session_id == session_id
        && !last.forwarded
        && before.iter().all(|b| b.forwarded)
}

fn check(r: &SignRequest) {
    let read = reading::read(r);
    let model = match classify(&r.data_to_sign) {
        // Another service than ssh-connection: not a login, never verified.
        SignedData::Userauth(login) if login.service != reading::SSH_CONNECTION => {
            (login.key_blob == r.public_key_blob).then_some(false)
        }
        SignedData::Userauth(login) => {
            let verified = model_verified(&r.bindings, &login.session_id);
            let wrong_key = login.key_blob != r.public_key_blob;
            let wrong_host = verified
                && login
                    .host_key
                    .as_ref()
                    .is_some_and(|h| !same_key(h, &r.bindings[r.bindings.len() - 1].host_key));
            let no_login_name = reading::login_name(&login.user).is_err();
            (!(wrong_key || wrong_host || no_login_name)).then_some(verified)
        }
        SignedData::SshSig(sig) => vmux_proto::text::check(&sig.namespace)
            .is_ok()
            .then_some(false),
        SignedData::Unknown => Some(false),
    };
    let reading = match (read, model) {
        (Ok(reading), Some(verified)) => {
            assert_eq!(reading.verified(), verified, "{reading:?}");
            reading
        }
        (Err(_), None) => return,
        (got, want) => panic!("reading::read gave {got:?}, the model {want:?}"),
    };
    if let Host::Verified { key, .. } = &reading.host {
        assert_eq!(key, &r.bindings[r.bindings.len() - 1].host_key);
    }
    let sheet = Sheet::Sign {
        device: "laptop".into(),
        claimed: None,
        destination: Box::new(Destination::describe(
            &reading,
            &HostKeys::default(),
            "laptop",
        )),
        key: "work".into(),
    };
    for (label, line) in text::fields(&sheet) {
        assert!(vmux_proto::text::check(&line).is_ok(), "{label}: {line:?}");
    }
    let strict = Policy {
        unverified: Rule::Deny,
        purposes: Some(vec!["login".into()]),
        ..Policy::default()
    };
    if policy::check(&strict, &reading, &[]).is_ok() {
        assert!(reading.verified());
    }
}

fuzz_target!(|data: &[u8]| {
    let mut bindings: Vec<SessionBinding> = Vec::new();
    let mut stream = data;
    while let Some((header, rest)) = stream.split_first_chunk::<4>() {
        let Ok(len) = frame_len(*header) else { return };
        let Some((body, rest)) = rest.split_at_checked(len) else {
            return;
        };
        stream = rest;
        match Request::decode(body) {
            Ok(Request::Extension(Extension::SessionBind(b))) => {
                // Within the codec's limits, but not checked by an agent.
                if bindings.len() < MAX_BINDINGS
                    && (1..=MAX_SESSION_ID_LEN).contains(&b.session_id.len())
                {
                    bindings.push(SessionBinding {
                        host_key: b.host_key,
                        session_id: b.session_id,
                        signature: b.signature,
                        forwarded: b.is_forwarding,
                        known_hosts_name: Some("db\u{1b}[2J".into()),
                    });
                }
            }
            Ok(Request::SignRequest(s)) if s.data.len() <= MAX_DATA_TO_SIGN_LEN => {
                check(&SignRequest {
                    bindings: bindings.clone(),
                    ..wire::request(&s.data, &s.key_blob, SignContext::default())
                });
            }
            _ => {}
        }
    }
});
