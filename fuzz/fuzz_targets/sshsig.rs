//! Arbitrary bytes as sign-request data, read as the signed-data header of
//! an SSHSIG signature (`ssh-keygen -Y sign`, git). `classify` must agree
//! with a plain reference reader of PROTOCOL.sshsig, a recognised header
//! must re-encode to exactly the input, and the namespace must reach the
//! agent's context and the signer's sheet unchanged.
#![no_main]

#[path = "support/wire.rs"]
mod wire;

use libfuzzer_sys::fuzz_target;
use vmux_agent::context::sign_context;
use vmux_agent::session_bind::Bindings;
use vmux_proto::agent::userauth::SSHSIG_MAGIC;
use vmux_proto::agent::{SignedData, SshSig, classify};
use vmux_proto::envelope::{ContextQuality, Purpose};
use vmux_signer::destination::Destination;
use vmux_signer::hostkeys::HostKeys;
use vmux_signer::reading;
use wire::{Reader, put_string, request};

/// Namespace (up to 1024 bytes), reserved, hash algorithm (a 64-character
/// name), message hash; nothing may follow.
fn reference(data: &[u8]) -> Option<(&str, &[u8], &str, &[u8])> {
    let mut r = Reader(data.strip_prefix(SSHSIG_MAGIC)?);
    let namespace = r.text(1024)?;
    let reserved = r.string()?;
    let hash_algorithm = r.text(64)?;
    let hash = r.string()?;
    r.0.is_empty()
        .then_some((namespace, reserved, hash_algorithm, hash))
}

fuzz_target!(|data: &[u8]| {
    let classified = classify(data);
    let expected = reference(data);
    match (&classified, expected) {
        (SignedData::SshSig(got), Some((namespace, _, hash_algorithm, _))) => assert_eq!(
            *got,
            SshSig {
                namespace: namespace.to_owned(),
                hash_algorithm: hash_algorithm.to_owned(),
            }
        ),
        (SignedData::SshSig(_), None) => panic!("classify accepted what the reference refuses"),
        (_, Some(_)) => panic!("classify missed an SSHSIG header: {classified:?}"),
        (SignedData::Userauth(_), None) => assert!(!data.starts_with(SSHSIG_MAGIC)),
        (SignedData::Unknown, None) => {}
    }
    let Some((namespace, reserved, hash_algorithm, hash)) = expected else {
        return;
    };
    let mut again = SSHSIG_MAGIC.to_vec();
    put_string(&mut again, namespace.as_bytes());
    put_string(&mut again, reserved);
    put_string(&mut again, hash_algorithm.as_bytes());
    put_string(&mut again, hash);
    assert_eq!(again, data, "an SSHSIG header re-encodes to its input");

    let ctx = sign_context(data, &Bindings::default());
    assert_eq!(ctx.purpose, Some(Purpose::Sshsig));
    assert_eq!(ctx.namespace.as_deref(), Some(namespace));
    assert_eq!(ctx.context_quality, ContextQuality::Claimed);
    assert_eq!((ctx.user.as_deref(), ctx.host.as_deref()), (None, None));
    let reading = reading::read(&request(data, b"key", ctx))
        .expect("an honest agent's context agrees with the data");
    let shown = Destination::describe(&reading, &HostKeys::default(), "laptop").purpose;
    if namespace == "git" {
        assert_eq!(shown.text, "git signature");
    } else {
        assert_eq!(
            shown.text,
            format!("file signature (namespace \"{namespace}\")")
        );
    }
});
