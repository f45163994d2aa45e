//! Link latency on loopback: first-contact handshake (to the pairing code),
//! pinned handshake, and an envelope round trip on a running session.
//!
//! Run: `cargo bench -p vmux-link --bench link` (set `VMUX_BENCH_N` to
//! change the sample count). Prints p50, p99 and throughput per case.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use vmux_link::device::Device;
use vmux_link::home::Home;
use vmux_link::session::{self, Accepted};
use vmux_link::trust::TrustStore;
use vmux_proto::envelope::{
    ContextQuality, Envelope, Origin, Role, SignContext, SignRequest, SignResponse,
};

fn device(dir: &std::path::Path, name: &str) -> (Home, Device) {
    let home = Home::at(dir.join(name)).expect("home");
    let device = Device::load_or_create(&home, Some(name)).expect("device");
    (home, device)
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let total: Duration = samples.iter().sum();
    println!(
        "{name:<34} n={:<6} p50={:>9.1?} p99={:>9.1?} throughput={:>9.0}/s",
        samples.len(),
        pick(0.50),
        pick(0.99),
        samples.len() as f64 / total.as_secs_f64()
    );
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
    })
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("VMUX_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().expect("tempdir");
    let (signer_home, signer) = device(dir.path(), "signer");
    let (agent_home, agent) = device(dir.path(), "agent");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();

    // First contact, up to both sides holding the code (the person's
    // decision excluded). Invitations are rejected, so nothing is pinned.
    let mut first = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let (pending, accepted) =
            tokio::join!(session::start_pairing(&addr, &agent, Role::Agent), async {
                let (s, _) = listener.accept().await.expect("accept");
                session::accept(s, &signer, &TrustStore::load(&signer_home).expect("trust")).await
            });
        first.push(started.elapsed());
        let Ok(Accepted::Invitation(inv)) = accepted else {
            panic!("expected an invitation")
        };
        drop(pending);
        inv.reject("bench").await;
    }

    // Pair once for real.
    let (pending, accepted) =
        tokio::join!(session::start_pairing(&addr, &agent, Role::Agent), async {
            let (s, _) = listener.accept().await.expect("accept");
            session::accept(s, &signer, &TrustStore::load(&signer_home).expect("trust")).await
        });
    let Ok(Accepted::Invitation(inv)) = accepted else {
        panic!("expected an invitation")
    };
    let mut signer_trust = TrustStore::load(&signer_home).expect("trust");
    let mut agent_trust = TrustStore::load(&agent_home).expect("trust");
    let (s, a) = tokio::join!(
        inv.accept(&mut signer_trust, 0),
        pending.expect("pairing").finish(&mut agent_trust, 0)
    );
    drop((s, a));

    // Pinned handshake: connect through to the signer's hello.
    let signer_trust = TrustStore::load(&signer_home).expect("trust");
    let mut pinned = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let (a, s) = tokio::join!(
            session::connect(&addr, &agent, Role::Agent, &mut agent_trust, 0),
            async {
                let (s, _) = listener.accept().await.expect("accept");
                session::accept(s, &signer, &signer_trust).await
            }
        );
        pinned.push(started.elapsed());
        a.expect("connect");
        s.expect("accept");
    }

    // Envelope round trip: signRequest out, signResponse back.
    let (a, s) = tokio::join!(
        session::connect(&addr, &agent, Role::Agent, &mut agent_trust, 0),
        async {
            let (s, _) = listener.accept().await.expect("accept");
            session::accept(s, &signer, &signer_trust).await
        }
    );
    let mut a = a.expect("connect");
    let Ok(Accepted::Session(mut s)) = s else {
        panic!("expected a session")
    };
    tokio::spawn(async move {
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
    let mut round_trips = Vec::with_capacity(n * 10);
    for i in 0..(n * 10) as u64 {
        let started = Instant::now();
        a.send(sign_request(i)).await.expect("send");
        let Ok(Envelope::SignResponse(_)) = a.recv().await else {
            panic!("expected a signResponse")
        };
        round_trips.push(started.elapsed());
    }

    // The codec alone, for comparison with the round trip.
    let request = sign_request(1);
    let mut codec = Vec::with_capacity(n * 10);
    for _ in 0..n * 10 {
        let started = Instant::now();
        let bytes = request.encode().expect("encode");
        let back = Envelope::decode(&bytes).expect("decode");
        codec.push(started.elapsed());
        assert_eq!(back, request);
    }

    println!(
        "vmux link on loopback ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    report("first-contact handshake (to code)", first);
    report("pinned handshake (to hello)", pinned);
    report("envelope round trip (sign req/resp)", round_trips);
    report("signRequest encode+decode (no I/O)", codec);
}
