//! The link cases, in process over real TCP on 127.0.0.1, with the same
//! code paths as `vmux signer` and `vmux pair`. Shared by the link bench
//! and the agent bench (`#[path]`).

#![allow(dead_code)]

use std::time::Instant;

use tokio::net::TcpListener;
use vmux_link::device::Device;
use vmux_link::home::Home;
use vmux_link::session::{self, Accepted, Pairing};
use vmux_link::trust::TrustStore;
use vmux_proto::envelope::{
    ContextQuality, Envelope, Origin, Role, SignContext, SignRequest, SignResponse,
};

use super::stats::Run;

/// A signer and an agent device, each with its own home, and the signer's
/// listener.
pub struct LinkRig {
    _dir: tempfile::TempDir,
    signer_home: Home,
    signer: Device,
    agent_home: Home,
    agent: Device,
    listener: TcpListener,
    addr: String,
}

fn device(dir: &std::path::Path, name: &str) -> (Home, Device) {
    let home = Home::at(dir.join(name)).expect("home");
    let device = Device::load_or_create(&home, Some(name)).expect("device");
    (home, device)
}

impl LinkRig {
    pub async fn new() -> LinkRig {
        let dir = tempfile::tempdir().expect("tempdir");
        let (signer_home, signer) = device(dir.path(), "signer");
        let (agent_home, agent) = device(dir.path(), "agent");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        LinkRig {
            _dir: dir,
            signer_home,
            signer,
            agent_home,
            agent,
            listener,
            addr,
        }
    }

    /// First contact up to both sides holding the pairing code (the
    /// person's decision excluded). Invitations are rejected, so nothing
    /// is pinned.
    pub async fn first_contact(&self, n: usize) -> Run {
        let trust = TrustStore::load(&self.signer_home).expect("trust");
        let mut samples = Vec::with_capacity(n);
        let wall = Instant::now();
        for _ in 0..n {
            let started = Instant::now();
            let (pending, accepted) = tokio::join!(
                session::start_pairing(&self.addr, &self.agent, Role::Agent),
                async {
                    let (s, _) = self.listener.accept().await.expect("accept");
                    session::accept(s, &self.signer, &trust, Pairing::Open).await
                }
            );
            samples.push(started.elapsed());
            let Ok(Accepted::Invitation(inv)) = accepted else {
                panic!("expected an invitation")
            };
            assert_eq!(pending.expect("pairing").code(), inv.code());
            inv.reject("bench").await;
        }
        (samples, wall.elapsed())
    }

    /// Pairs the two devices for real.
    pub async fn pair(&self) {
        let (pending, accepted) = tokio::join!(
            session::start_pairing(&self.addr, &self.agent, Role::Agent),
            async {
                let (s, _) = self.listener.accept().await.expect("accept");
                let trust = TrustStore::load(&self.signer_home).expect("trust");
                session::accept(s, &self.signer, &trust, Pairing::Open).await
            }
        );
        let Ok(Accepted::Invitation(inv)) = accepted else {
            panic!("expected an invitation")
        };
        let mut signer_trust = TrustStore::load(&self.signer_home).expect("trust");
        let mut agent_trust = TrustStore::load(&self.agent_home).expect("trust");
        let (s, a) = tokio::join!(
            inv.accept(&mut signer_trust, 0),
            pending.expect("pairing").finish(&mut agent_trust, 0)
        );
        s.expect("signer side");
        a.expect("agent side");
    }

    /// Pinned handshake (what a reconnect does): connect through to the
    /// signer's hello. Needs [`LinkRig::pair`] first.
    pub async fn pinned(&self, n: usize) -> Run {
        let signer_trust = TrustStore::load(&self.signer_home).expect("trust");
        let mut agent_trust = TrustStore::load(&self.agent_home).expect("trust");
        let mut samples = Vec::with_capacity(n);
        let wall = Instant::now();
        for _ in 0..n {
            let started = Instant::now();
            let (a, s) = tokio::join!(
                session::connect(&self.addr, &self.agent, Role::Agent, &mut agent_trust, 0),
                async {
                    let (s, _) = self.listener.accept().await.expect("accept");
                    session::accept(s, &self.signer, &signer_trust, Pairing::Open).await
                }
            );
            samples.push(started.elapsed());
            a.expect("connect");
            let Ok(Accepted::Session(_)) = s else {
                panic!("expected a session")
            };
        }
        (samples, wall.elapsed())
    }

    /// Envelope round trips on one running session: `signRequest` out,
    /// `signResponse` back from a peer that answers at once.
    pub async fn round_trips(&self, n: usize) -> Run {
        let signer_trust = TrustStore::load(&self.signer_home).expect("trust");
        let mut agent_trust = TrustStore::load(&self.agent_home).expect("trust");
        let (a, s) = tokio::join!(
            session::connect(&self.addr, &self.agent, Role::Agent, &mut agent_trust, 0),
            async {
                let (s, _) = self.listener.accept().await.expect("accept");
                session::accept(s, &self.signer, &signer_trust, Pairing::Open).await
            }
        );
        let mut a = a.expect("connect");
        let Ok(Accepted::Session(mut s)) = s else {
            panic!("expected a session")
        };
        let answering = tokio::spawn(async move {
            while let Ok(Envelope::SignRequest(r)) = s.recv().await {
                let reply = Envelope::SignResponse(SignResponse {
                    request_id: r.request_id,
                    approved: true,
                    signature: Some(vec![9; 100]),
                    error_code: None,
                    error_message: None,
                });
                if s.send(reply).await.is_err() {
                    break;
                }
            }
        });
        let mut samples = Vec::with_capacity(n);
        let wall = Instant::now();
        for i in 0..n as u64 {
            let started = Instant::now();
            a.send(sign_request(i)).await.expect("send");
            let Ok(Envelope::SignResponse(_)) = a.recv().await else {
                panic!("expected a signResponse")
            };
            samples.push(started.elapsed());
        }
        let wall = wall.elapsed();
        drop(a);
        answering.abort();
        (samples, wall)
    }
}

/// `signRequest` CBOR encode + decode alone, for comparison with the
/// round trip.
pub fn codec(n: usize) -> Run {
    let request = sign_request(1);
    let mut samples = Vec::with_capacity(n);
    let wall = Instant::now();
    for _ in 0..n {
        let started = Instant::now();
        let bytes = request.encode().expect("encode");
        let back = Envelope::decode(&bytes).expect("decode");
        samples.push(started.elapsed());
        assert_eq!(back, request);
    }
    (samples, wall.elapsed())
}

fn sign_request(i: u64) -> Envelope {
    Envelope::SignRequest(SignRequest {
        request_id: format!("00000000-0000-4000-8000-{i:012x}"),
        key_algorithm: "ecdsa-sha2-nistp256".into(),
        public_key_blob: vec![7; 104],
        source_device_id: "bench".into(),
        source_device_name: "bench".into(),
        origin: Origin::GenericAgent,
        data_to_sign: vec![1; 200],
        nonce: vec![2; 32],
        issued_at_milliseconds: 1,
        expires_at_milliseconds: 60_001,
        flags: 0,
        context: SignContext {
            context_quality: ContextQuality::Unknown,
            ..Default::default()
        },
        bindings: Vec::new(),
    })
}
