//! One connection, in-process, answered as ssh-agent answers it
//! (openssh-portable 0ef0f5a83).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use signature::Signer;
use ssh_key::{Algorithm, PrivateKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vmux_proto::agent::{
    Extension, ExtensionResponse, Request, Response, SessionBind, SignFlags, SignRequest,
};
use vmux_proto::envelope::{ProviderKind, PublicKeyRecord};

use super::serve;
use crate::keys::{Holder, Key};
use crate::link::KeyListSink;
use crate::slots::Slots;
use crate::{CertConfig, Config, Running};

/// An agent and the runtime it lives in.
struct Rig {
    rt: tokio::runtime::Runtime,
    running: Running,
}

impl Rig {
    fn agent(&self) -> std::sync::Arc<crate::Agent> {
        self.running.agent()
    }
}

fn running(dir: &std::path::Path) -> Rig {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _in = rt.enter();
    let home = vmux_link::home::Home::at(dir.join("home")).unwrap();
    let config = Config {
        socket: home.file("agent.sock"),
        home,
        signer: None,
        // No signer here: a forwarded sign gives up at once.
        sign_timeout: std::time::Duration::from_millis(1),
        signer_wait: std::time::Duration::from_millis(1),
        upstream: None,
    };
    let running = crate::start(config, CertConfig::default()).unwrap();
    drop(_in);
    Rig { rt, running }
}

fn key(alg: Algorithm) -> PrivateKey {
    PrivateKey::random(
        &mut ssh_key::rand_core::UnwrapErr(ssh_key::getrandom::SysRng),
        alg,
    )
    .unwrap()
}

fn bind(host: &PrivateKey, sid: &[u8], forwarding: bool) -> Request {
    let sig: ssh_key::Signature = host.try_sign(sid).unwrap();
    Request::Extension(Extension::SessionBind(SessionBind {
        host_key: host.public_key().to_bytes().unwrap(),
        session_id: sid.to_vec(),
        signature: Vec::<u8>::try_from(sig).unwrap(),
        is_forwarding: forwarding,
    }))
}

fn ext(name: &str) -> Request {
    Request::Extension(Extension::Other {
        name: name.into(),
        contents: Vec::new(),
    })
}

fn sign(blob: &[u8], data: &[u8]) -> Request {
    Request::SignRequest(SignRequest {
        key_blob: blob.to_vec(),
        data: data.to_vec(),
        flags: SignFlags::default(),
    })
}

fn put(d: &mut Vec<u8>, b: &[u8]) {
    d.extend_from_slice(&u32::try_from(b.len()).unwrap().to_be_bytes());
    d.extend_from_slice(b);
}

/// A login's signed data for `user`, as ssh sends it.
fn login(sid: &[u8], user: &str, blob: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    put(&mut d, sid);
    d.push(50);
    for s in [user.as_bytes(), b"ssh-connection", b"publickey"] {
        put(&mut d, s);
    }
    d.push(1);
    put(&mut d, b"ssh-ed25519");
    put(&mut d, blob);
    d
}

/// Sends `raw` on one connection and reads answers until `expect` came
/// or the agent closed; returns each answer's body.
fn converse_raw(rig: &Rig, raw: Vec<u8>, expect: usize) -> Vec<Vec<u8>> {
    let agent = rig.agent();
    rig.rt.block_on(async move {
        let (mut client, server) = tokio::net::UnixStream::pair().unwrap();
        let slots = Slots::new(8, 4);
        let served = tokio::spawn(serve(agent, server, slots.take().unwrap()));
        client.write_all(&raw).await.unwrap();
        let mut out = Vec::new();
        let mut bodies = Vec::new();
        while bodies.len() < expect {
            let mut buf = [0u8; 4096];
            let n = client.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            while let Some((len, tail)) = out.split_first_chunk::<4>() {
                let len = u32::from_be_bytes(*len) as usize;
                if tail.len() < len {
                    break;
                }
                bodies.push(tail[..len].to_vec());
                out.drain(..4 + len);
            }
        }
        drop(client);
        served.await.unwrap();
        bodies
    })
}

fn converse(running: &Rig, requests: &[Request]) -> Vec<Response> {
    let raw = requests
        .iter()
        .flat_map(|r| r.to_frame().unwrap())
        .collect();
    converse_raw(running, raw, requests.len())
        .iter()
        .map(|b| Response::decode(b).unwrap())
        .collect()
}

/// Loads one signer key, returning its blob.
fn signer_key(running: &Rig) -> Vec<u8> {
    let blob = key(Algorithm::Ed25519).public_key().to_bytes().unwrap();
    let holder = Holder {
        fingerprint: vmux_link::Fingerprint::from_string("SHA256:phone".into()),
        name: "phone".into(),
    };
    let key = Key::from_record(&PublicKeyRecord {
        algorithm: "ssh-ed25519".into(),
        public_key_blob: blob.clone(),
        comment: "work".into(),
        provider_kind: ProviderKind::Software,
        display_name: None,
    });
    running.agent().key_list(&holder, vec![key], None);
    blob
}

fn listed(r: &Response) -> usize {
    match r {
        Response::IdentitiesAnswer(ids) => ids.len(),
        other => panic!("not a listing: {other:?}"),
    }
}

fn query_names(r: &Response) -> Vec<String> {
    match r {
        Response::ExtensionResponse(ExtensionResponse::Query { extensions }) => extensions.clone(),
        other => panic!("not a query answer: {other:?}"),
    }
}

#[test]
fn unknown_extensions_fail_plainly_and_failing_ones_with_28() {
    let dir = tempfile::tempdir().unwrap();
    let running = running(dir.path());
    let answers = converse(
        &running,
        &[
            ext("nonesuch@example.com"),
            // Ours, supported, but with no signer to ask it fails.
            ext(crate::control::REFRESH),
            ext(crate::control::CERT_REQUEST),
            Request::Extension(Extension::Query),
        ],
    );
    assert_eq!(answers[0], Response::Failure);
    assert_eq!(answers[1], Response::ExtensionFailure);
    assert_eq!(answers[2], Response::ExtensionFailure);
    assert_eq!(
        query_names(&answers[3]),
        [
            "session-bind@openssh.com",
            crate::control::STATUS,
            crate::control::REFRESH,
            crate::control::CERT_REQUEST
        ]
    );
}

#[test]
fn after_a_bind_that_fails_nothing_is_listed_or_signed() {
    let dir = tempfile::tempdir().unwrap();
    let running = running(dir.path());
    let blob = signer_key(&running);
    let host = key(Algorithm::Ed25519);
    let mut forged = bind(&host, b"sid-1", false);
    if let Request::Extension(Extension::SessionBind(b)) = &mut forged {
        b.session_id = b"sid-2".to_vec();
    }
    let data = login(b"sid-2", "alice", &blob);
    let answers = converse(
        &running,
        &[
            Request::RequestIdentities,
            forged,
            Request::RequestIdentities,
            bind(&host, b"sid-3", false),
            Request::RequestIdentities,
            sign(&blob, &data),
        ],
    );
    assert_eq!(listed(&answers[0]), 1);
    assert_eq!(answers[1], Response::ExtensionFailure);
    assert_eq!(listed(&answers[2]), 0);
    // A good bind after it does not clear the mark.
    assert_eq!(answers[3], Response::Success);
    assert_eq!(listed(&answers[4]), 0);
    assert_eq!(answers[5], Response::Failure);
    let log = std::fs::read_to_string(dir.path().join("home/agent-log.jsonl")).unwrap();
    assert!(log.contains("\"outcome\":\"refusedBindFailed\""), "{log}");
}

#[test]
fn a_session_bind_that_does_not_parse_counts_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let running = running(dir.path());
    signer_key(&running);
    let mut body = vec![27u8];
    body.extend_from_slice(&24u32.to_be_bytes());
    body.extend_from_slice(b"session-bind@openssh.com");
    body.extend_from_slice(&[0, 0, 0, 9, 1]);
    let mut raw = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    raw.extend_from_slice(&body);
    raw.extend(Request::RequestIdentities.to_frame().unwrap());
    let answers = converse_raw(&running, raw, 2);
    assert_eq!(answers[0], [28]);
    assert_eq!(answers[1], [12, 0, 0, 0, 0]);
}

#[test]
fn session_bind_is_taken_while_locked_and_query_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let running = running(dir.path());
    let host = key(Algorithm::Ed25519);
    let lock = Request::Lock {
        passphrase: b"pw".to_vec().into(),
    };
    let answers = converse(
        &running,
        &[
            lock,
            bind(&host, b"sid-1", true),
            Request::Extension(Extension::Query),
            ext(crate::control::STATUS),
        ],
    );
    assert_eq!(answers[0], Response::Success);
    assert_eq!(answers[1], Response::Success);
    assert_eq!(answers[2], Response::Failure);
    // Forwarded: control does not exist for it, locked or not.
    assert_eq!(answers[3], Response::Failure);
    let answers = converse(&running, &[ext(crate::control::STATUS)]);
    assert!(matches!(answers[0], Response::ExtensionResponse(_)));
}

#[test]
fn a_forwarded_connection_is_offered_session_bind_alone() {
    let dir = tempfile::tempdir().unwrap();
    let running = running(dir.path());
    let host = key(Algorithm::Ed25519);
    let answers = converse(
        &running,
        &[
            bind(&host, b"sid-1", true),
            Request::Extension(Extension::Query),
            ext(crate::control::STATUS),
        ],
    );
    assert_eq!(answers[0], Response::Success);
    assert_eq!(query_names(&answers[1]), ["session-bind@openssh.com"]);
    assert_eq!(answers[2], Response::Failure);
}

#[test]
fn limits_as_ssh_agent() {
    let dir = tempfile::tempdir().unwrap();
    let running = running(dir.path());
    let blob = signer_key(&running);
    let host = key(Algorithm::Ed25519);
    let mut requests: Vec<Request> = (0..17)
        .map(|i| bind(&host, format!("sid-{i}").as_bytes(), true))
        .collect();
    let answers = converse(&running, &requests);
    assert!(answers[..16].iter().all(|a| *a == Response::Success));
    assert_eq!(answers[16], Response::ExtensionFailure);

    // A session id of 129 bytes.
    let answers = converse(&running, &[bind(&host, &[7u8; 129], false)]);
    assert_eq!(answers[0], Response::ExtensionFailure);

    // A user name of 257 bytes is refused here; 256 goes on (to a signer
    // that is not there: a plain failure, logged as unreachable).
    requests = vec![
        sign(&blob, &login(b"sid", &"u".repeat(257), &blob)),
        sign(&blob, &login(b"sid", &"u".repeat(256), &blob)),
    ];
    let answers = converse(&running, &requests);
    assert_eq!(answers, [Response::Failure, Response::Failure]);
    let log = std::fs::read_to_string(dir.path().join("home/agent-log.jsonl")).unwrap();
    let outcomes: Vec<&str> = log
        .lines()
        .map(|l| {
            let at = l.find("\"outcome\":\"").unwrap() + 11;
            &l[at..at + l[at..].find('"').unwrap()]
        })
        .collect();
    assert_eq!(outcomes, ["refusedUserTooLong", "unreachable"]);

    // A frame over 256 KiB closes the connection unanswered.
    let mut raw = Request::RequestIdentities.to_frame().unwrap();
    raw.extend_from_slice(&(256 * 1024 + 1u32).to_be_bytes());
    raw.extend(std::iter::repeat_n(0u8, 64));
    // Asked for two: the agent closes after the first.
    let answers = converse_raw(&running, raw, 2);
    assert_eq!(answers.len(), 1);
}
