//! The whole agent, as OSS-Fuzz's `agent_fuzz` drives OpenSSH's: raw
//! bytes from one client go to `connection::serve`, the real connection
//! handler, of an agent holding two signer keys, a session certificate a
//! CA of ours issued, and an upstream agent (in-process fakes: no signer is
//! connected, so a sign for its keys ends at the link at once).
//!
//! After each input: every answer is a well-formed reply, one per request
//! until the stream broke; a connection that any bind (parsed or not) said
//! was forwarded never got a signature from the certificate or the
//! upstream, nor their keys in a listing, nor a `…@vmux` extension in its
//! `query`; after a session-bind answered 28 nothing is listed or signed;
//! a locked agent lists and signs nothing. Memory: libFuzzer's
//! `-rss_limit_mb` and `-malloc_limit_mb` (docs/fuzzing.md), and the agent's
//! own caps.
#![no_main]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use signature::Signer;
use ssh_key::certificate::{Builder, CertType};
use ssh_key::getrandom::SysRng;
use ssh_key::rand_core::UnwrapErr;
use ssh_key::{Algorithm, PrivateKey, PublicKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use vmux_agent::cert::{Issuer, Reply};
use vmux_agent::keys::{Holder, Key};
use vmux_agent::link::KeyListSink;
use vmux_agent::slots::Slots;
use vmux_agent::upstream::Upstream;
use vmux_agent::{Agent, CertConfig, Config, Running};
use vmux_link::home::Home;
use vmux_proto::agent::{
    Extension, ExtensionResponse, MAX_MESSAGE_LEN, Request, Response, frame_len,
};
use vmux_proto::envelope::{ProviderKind, PublicKeyRecord};

/// Signatures the fake upstream made.
static UPSTREAM_SIGNED: AtomicUsize = AtomicUsize::new(0);

struct World {
    rt: tokio::runtime::Runtime,
    running: Mutex<Running>,
    dir: PathBuf,
    builds: AtomicUsize,
    upstream_blob: Vec<u8>,
    /// The certificate and its key's blob.
    cert_blobs: Mutex<(Vec<u8>, Vec<u8>)>,
    ca: PrivateKey,
}

/// Issues certificates from a CA in this process.
struct FakeCa<'a>(&'a PrivateKey);

impl Issuer for FakeCa<'_> {
    async fn issue(&self, blob: Vec<u8>, validity: u64) -> Reply {
        let Ok(key) = PublicKey::from_bytes(&blob) else {
            return Reply::Unreachable;
        };
        // The agent under test runs on the system clock.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let Ok(mut b) = Builder::new([7u8; 32], key.key_data().clone(), now - 60, now + validity)
        else {
            return Reply::Unreachable;
        };
        let _ = b.cert_type(CertType::User);
        let _ = b.valid_principal("fuzz");
        match b.sign(self.0).and_then(|c| c.to_bytes()) {
            Ok(c) => Reply::Issued(c),
            Err(_) => Reply::Unreachable,
        }
    }
}

fn random_key(alg: Algorithm) -> PrivateKey {
    PrivateKey::random(&mut UnwrapErr(SysRng), alg).expect("a key")
}

/// A fake upstream ssh-agent: one identity, signs for it, fails the rest.
async fn upstream(listener: UnixListener, key: PrivateKey) {
    let blob = key.public_key().to_bytes().expect("blob");
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let mut header = [0u8; 4];
        if s.read_exact(&mut header).await.is_err() {
            continue;
        }
        let Ok(len) = frame_len(header) else { continue };
        let mut body = vec![0u8; len];
        if s.read_exact(&mut body).await.is_err() {
            continue;
        }
        let reply = match Request::decode(&body) {
            Ok(Request::RequestIdentities) => {
                Response::IdentitiesAnswer(vec![vmux_proto::agent::Identity {
                    key_blob: blob.clone(),
                    comment: "upstream".into(),
                }])
            }
            Ok(Request::SignRequest(r)) if r.key_blob == blob => {
                UPSTREAM_SIGNED.fetch_add(1, Ordering::SeqCst);
                let sig: ssh_key::Signature = key.try_sign(&r.data).expect("sign");
                Response::SignResponse {
                    signature: ssh_key::encoding::Encode::encode_vec(&sig).expect("encode"),
                }
            }
            _ => Response::Failure,
        };
        let _ = s.write_all(&reply.to_frame().unwrap_or_default()).await;
    }
}

fn build(world_dir: &std::path::Path, n: usize, upstream_sock: &std::path::Path) -> Running {
    let home = Home::at(world_dir.join(format!("home-{n}"))).expect("home");
    let config = Config {
        socket: home.file("agent.sock"),
        home,
        signer: None,
        sign_timeout: std::time::Duration::from_millis(1),
        signer_wait: std::time::Duration::from_millis(1),
        upstream: Some(Upstream {
            path: upstream_sock.to_owned(),
            writable: false,
        }),
    };
    vmux_agent::start(config, CertConfig::default()).expect("agent")
}

/// Gives `agent` the two signer keys and a fresh certificate.
fn load(world: &World, agent: &Agent) {
    let holder = Holder {
        fingerprint: vmux_link::Fingerprint::from_string("SHA256:fuzz-signer".into()),
        name: "phone".into(),
    };
    let keys = [
        Algorithm::Ed25519,
        Algorithm::Ecdsa {
            curve: ssh_key::EcdsaCurve::NistP256,
        },
    ]
    .into_iter()
    .map(|alg| {
        let k = random_key(alg);
        Key::from_record(&PublicKeyRecord {
            algorithm: k.algorithm().as_str().to_owned(),
            public_key_blob: k.public_key().to_bytes().expect("blob"),
            comment: "work".into(),
            provider_kind: ProviderKind::Software,
            display_name: None,
        })
    })
    .collect();
    agent.key_list(&holder, keys, None);
    world
        .rt
        .block_on(agent.certs().request(&FakeCa(&world.ca), true));
    let id = agent.certs().identity().expect("a certificate");
    let cert = ssh_key::Certificate::from_bytes(&id.key_blob).expect("cert");
    let key_blob = PublicKey::from(cert.public_key().clone())
        .to_bytes()
        .expect("blob");
    *world.cert_blobs.lock().unwrap_or_else(|e| e.into_inner()) = (id.key_blob, key_blob);
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("vmux-fuzz-agent-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        // known_hosts is read for bound requests: from an empty home.
        // SAFETY: set once, before any thread of ours reads it.
        unsafe { std::env::set_var("HOME", &dir) };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let upstream_key = random_key(Algorithm::Ed25519);
        let upstream_blob = upstream_key.public_key().to_bytes().expect("blob");
        let sock = dir.join("upstream.sock");
        let running = {
            let _in = rt.enter();
            let listener = UnixListener::bind(&sock).expect("upstream socket");
            rt.spawn(upstream(listener, upstream_key));
            build(&dir, 0, &sock)
        };
        let world = World {
            rt,
            running: Mutex::new(running),
            dir,
            builds: AtomicUsize::new(1),
            upstream_blob,
            cert_blobs: Mutex::new((Vec::new(), Vec::new())),
            ca: random_key(Algorithm::Ed25519),
        };
        let agent = world.running.lock().expect("running").agent();
        load(&world, &agent);
        world
    })
}

/// The requests the bytes hold, frame by frame (`None` for one that does
/// not decode), and how much of the input to send: all of it, unless an
/// unlock would be wrong, which the agent rightly answers only after a
/// growing delay; the input is cut before it.
fn frames(data: &[u8]) -> (usize, Vec<Option<Request>>) {
    let mut requests = Vec::new();
    let mut rest = data;
    let mut lock: Option<Vec<u8>> = None;
    let mut forwarded = false;
    while let Some((header, tail)) = rest.split_first_chunk::<4>() {
        let Ok(len) = frame_len(*header) else { break };
        let Some((body, tail)) = tail.split_at_checked(len) else {
            break;
        };
        let request = Request::decode(body).ok();
        match &request {
            Some(Request::Extension(Extension::SessionBind(b))) => forwarded |= b.is_forwarding,
            Some(Request::Lock { passphrase })
                if !forwarded && lock.is_none() && !passphrase.is_empty() =>
            {
                lock = Some(passphrase.expose().to_vec());
            }
            Some(Request::Unlock { passphrase }) if !forwarded => match &lock {
                Some(p) if p.as_slice() == passphrase.expose() => lock = None,
                Some(_) => return (data.len() - rest.len(), requests),
                None => {}
            },
            _ => {}
        }
        requests.push(request);
        rest = tail;
    }
    (data.len(), requests)
}

/// Sends `input` on one connection and reads answers until `expect` came
/// or the agent closed; then hangs up.
async fn converse(agent: Arc<Agent>, input: &[u8], expect: usize) -> Vec<u8> {
    let (mut client, server) = UnixStream::pair().expect("pair");
    let slots = Slots::new(4, 2);
    let slot = slots.take().expect("a slot");
    let client_side = async move {
        let _ = client.write_all(input).await;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while count_replies(&out) < expect {
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        out
    };
    // Not spawned: a panic in the handler is the fuzzer's to see.
    let ((), out) = tokio::join!(
        vmux_agent::connection::serve(agent, server, slot),
        client_side
    );
    out
}

/// Whole replies in `out`.
fn count_replies(out: &[u8]) -> usize {
    let mut n = 0;
    let mut rest = out;
    while let Some((header, tail)) = rest.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*header) as usize;
        let Some((_, tail)) = tail.split_at_checked(len) else {
            break;
        };
        n += 1;
        rest = tail;
    }
    n
}

struct Model {
    forwarded: bool,
    bind_failed: bool,
    locked: bool,
    /// Upstream signatures this connection got while local.
    upstream_signed: usize,
}

fn check(world: &World, requests: &[Option<Request>], out: &[u8], upstream_before: usize) {
    let (cert, cert_key) = world
        .cert_blobs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut rest = out;
    let mut m = Model {
        forwarded: false,
        bind_failed: false,
        locked: false,
        upstream_signed: 0,
    };
    let mut answered = 0;
    while let Some((header, tail)) = rest.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*header) as usize;
        assert!((1..=MAX_MESSAGE_LEN).contains(&len), "reply length {len}");
        let (body, tail) = tail.split_at_checked(len).expect("a whole reply");
        rest = tail;
        let reply = Response::decode(body).expect("a reply that decodes");
        let request = requests
            .get(answered)
            .expect("no more replies than requests");
        answered += 1;
        let keys = Unattended {
            cert: &cert,
            cert_key: &cert_key,
            upstream: &world.upstream_blob,
        };
        step(&mut m, request.as_ref(), &reply, &keys);
    }
    assert!(rest.is_empty(), "a partial reply");
    // The upstream signed exactly for the local requests that got its
    // signature: never for a forwarded one, not even unanswered.
    let signed = UPSTREAM_SIGNED.load(Ordering::SeqCst) - upstream_before;
    assert_eq!(signed, m.upstream_signed, "the upstream signed unseen");
}

/// The keys that sign with no person in the loop.
struct Unattended<'a> {
    cert: &'a [u8],
    cert_key: &'a [u8],
    upstream: &'a [u8],
}

impl Unattended<'_> {
    fn holds(&self, blob: &[u8]) -> bool {
        blob == self.cert || blob == self.cert_key || blob == self.upstream
    }
}

fn step(m: &mut Model, request: Option<&Request>, reply: &Response, keys: &Unattended<'_>) {
    let unattended = |blob: &[u8]| keys.holds(blob);
    match (request, reply) {
        (Some(Request::Extension(Extension::SessionBind(b))), r) => {
            m.forwarded |= b.is_forwarding;
            match r {
                Response::Success => {}
                Response::ExtensionFailure => m.bind_failed = true,
                other => panic!("session-bind answered {other:?}"),
            }
        }
        (None, Response::ExtensionFailure) => m.bind_failed = true,
        (Some(Request::RequestIdentities), Response::IdentitiesAnswer(ids)) => {
            if m.locked || m.bind_failed {
                assert!(ids.is_empty(), "listed while locked or after a failed bind");
            }
            if m.forwarded {
                assert!(
                    ids.iter().all(|id| !unattended(&id.key_blob)),
                    "a forwarded connection was offered the certificate or upstream"
                );
            }
        }
        (Some(Request::RequestIdentities), other) => panic!("a listing answered {other:?}"),
        (Some(Request::SignRequest(s)), r) => {
            let signed = matches!(r, Response::SignResponse { .. });
            if m.locked || m.bind_failed {
                assert!(!signed, "signed while locked or after a failed bind");
            }
            if m.forwarded && unattended(&s.key_blob) {
                assert!(!signed, "a forwarded connection signed without a person");
            }
            if signed && s.key_blob == keys.upstream {
                m.upstream_signed += 1;
            }
            assert!(signed || *r == Response::Failure, "sign answered {r:?}");
        }
        (Some(Request::Lock { .. }), Response::Success) => {
            assert!(!m.forwarded, "a forwarded connection locked the agent");
            m.locked = true;
        }
        (Some(Request::Unlock { .. }), Response::Success) => {
            assert!(!m.forwarded, "a forwarded connection unlocked the agent");
            m.locked = false;
        }
        (Some(Request::Extension(Extension::Query)), Response::ExtensionResponse(q)) => {
            let ExtensionResponse::Query { extensions } = q else {
                panic!("query answered {q:?}");
            };
            if m.forwarded {
                assert!(extensions.iter().all(|e| !e.ends_with("@vmux")));
            }
        }
        (Some(Request::Extension(Extension::Other { .. })), Response::ExtensionResponse(_)) => {
            assert!(!m.forwarded, "control answered on a forwarded connection");
        }
        (_, r) => assert!(
            matches!(
                r,
                Response::Failure | Response::Success | Response::ExtensionFailure
            ),
            "{request:?} answered {r:?}"
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let world = world();
    let (cut, requests) = frames(data);
    let agent = world
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .agent();
    let before = UPSTREAM_SIGNED.load(Ordering::SeqCst);
    let out = world
        .rt
        .block_on(converse(agent.clone(), &data[..cut], requests.len()));
    check(world, &requests, &out, before);
    // Each input starts from the same agent: one left locked is replaced.
    if agent.status().locked {
        let n = world.builds.fetch_add(1, Ordering::SeqCst);
        let old = std::mem::replace(
            &mut *world.running.lock().unwrap_or_else(|e| e.into_inner()),
            {
                let _in = world.rt.enter();
                build(&world.dir, n, &world.dir.join("upstream.sock"))
            },
        );
        drop(old);
        let _ = std::fs::remove_dir_all(world.dir.join(format!("home-{}", n - 1)));
        let fresh = world
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .agent();
        load(world, &fresh);
    }
});
