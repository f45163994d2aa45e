//! The certificate's life driven by a fake clock and a fake signer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ssh_key::certificate::{Builder, CertType};
use ssh_key::encoding::Decode;
use ssh_key::getrandom::SysRng;
use ssh_key::rand_core::UnwrapErr;
use ssh_key::{Algorithm, Certificate, PrivateKey, PublicKey};
use tokio::sync::watch;
use vmux_link::clock::Clock;
use vmux_proto::envelope::ErrorCode;

use super::*;

const START_MS: u64 = 1_800_000_000_000;
const HOUR_MS: u64 = 3_600_000;

#[derive(Debug)]
struct FakeClock(AtomicU64);

impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl FakeClock {
    fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Approve,
    Deny,
    /// A certificate for some other key.
    WrongKey,
}

/// A signer with a CA that answers as `mode` says and counts requests.
struct FakeSigner {
    ca: PrivateKey,
    clock: Arc<FakeClock>,
    mode: Mutex<Mode>,
    asked: AtomicUsize,
}

impl FakeSigner {
    fn new(clock: Arc<FakeClock>, mode: Mode) -> Self {
        Self {
            ca: PrivateKey::random(&mut UnwrapErr(SysRng), Algorithm::Ed25519).unwrap(),
            clock,
            mode: Mutex::new(mode),
            asked: AtomicUsize::new(0),
        }
    }

    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }

    fn certificate(&self, blob: &[u8], validity: u64) -> Vec<u8> {
        let key = PublicKey::from_bytes(blob).unwrap();
        let now = self.clock.now_ms() / 1000;
        let mut b =
            Builder::new([7u8; 32], key.key_data().clone(), now - 300, now + validity).unwrap();
        b.cert_type(CertType::User).unwrap();
        b.valid_principal("me").unwrap();
        b.sign(&self.ca).unwrap().to_bytes().unwrap()
    }
}

impl Issuer for FakeSigner {
    async fn issue(&self, blob: Vec<u8>, validity: u64) -> Reply {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let mode = *self.mode.lock().unwrap();
        match mode {
            Mode::Approve => Reply::Issued(self.certificate(&blob, validity)),
            Mode::Deny => Reply::Refused(vmux_link::requester::Refusal::new(
                Some(ErrorCode::UserDenied),
                None,
            )),
            Mode::WrongKey => {
                let other = Ephemeral::generate().unwrap();
                Reply::Issued(self.certificate(other.public_blob(), validity))
            }
        }
    }
}

fn rig(mode: Mode) -> (Arc<FakeClock>, FakeSigner, Certs) {
    let clock = Arc::new(FakeClock(AtomicU64::new(START_MS)));
    let signer = FakeSigner::new(clock.clone(), mode);
    let certs = Certs::new(clock.clone(), DEFAULT_VALIDITY_SECS, None);
    (clock, signer, certs)
}

fn due(certs: &Certs, clock: &FakeClock) -> Option<Action> {
    certs.state().due(clock.now_ms())
}

#[tokio::test]
async fn offered_while_valid_and_signed_locally() {
    let (clock, signer, certs) = rig(Mode::Approve);
    assert_eq!(due(&certs, &clock), Some(Action::Request));
    assert_eq!(certs.status_line(), "No session certificate");
    assert!(certs.request(&signer, false).await);

    let id = certs.identity().unwrap();
    assert_eq!(id.comment, COMMENT);
    let cert = Certificate::from_bytes(&id.key_blob).unwrap();
    assert_eq!(cert.algorithm().as_str(), "ecdsa-sha2-nistp256");
    assert!(certs.status_line().starts_with("Certificate valid until "));
    assert_eq!(due(&certs, &clock), None);

    // A signature by the certified key, which its public key verifies.
    let Local::Signed(sig, _) = certs.sign(&id.key_blob, b"challenge") else {
        panic!("not signed locally");
    };
    let sig = ssh_key::Signature::decode(&mut sig.as_slice()).unwrap();
    let public = PublicKey::from(cert.public_key().clone());
    signature::Verifier::verify(public.key_data(), b"challenge", &sig).unwrap();
    assert!(matches!(certs.sign(b"another key", b"x"), Local::NotOurs));

    // Seven hours on: still offered, renewal not yet due.
    clock.advance(7 * HOUR_MS - 60_000);
    assert!(certs.identity().is_some());
    assert_eq!(due(&certs, &clock), None);
    assert_eq!(signer.asked(), 1);
}

#[tokio::test]
async fn renewal_is_due_under_an_hour_and_replaces_the_key() {
    let (clock, signer, certs) = rig(Mode::Approve);
    assert!(certs.request(&signer, false).await);
    let first = certs.identity().unwrap().key_blob;
    clock.advance(7 * HOUR_MS + 60_000);
    assert_eq!(due(&certs, &clock), Some(Action::Request));
    // Still offered while the renewal is out.
    assert!(certs.identity().is_some());
    assert!(certs.request(&signer, false).await);
    let second = certs.identity().unwrap().key_blob;
    assert_ne!(first, second);
    assert!(matches!(certs.sign(&first, b"x"), Local::NotOurs));
    assert!(matches!(certs.sign(&second, b"x"), Local::Signed(..)));
    assert_eq!(due(&certs, &clock), None);
    assert_eq!(signer.asked(), 2);
}

#[tokio::test]
async fn not_offered_after_expiry() {
    let (clock, signer, certs) = rig(Mode::Approve);
    assert!(certs.request(&signer, false).await);
    let blob = certs.identity().unwrap().key_blob;
    clock.advance(8 * HOUR_MS);
    assert!(certs.identity().is_none());
    assert!(matches!(certs.sign(&blob, b"x"), Local::NotOurs));
    assert_eq!(
        certs.status_line(),
        "Certificate expired — connect signer to renew"
    );
    certs.state().expire(clock.now_ms());
    assert_eq!(
        certs.status_line(),
        "Certificate expired — connect signer to renew"
    );
    assert_eq!(due(&certs, &clock), Some(Action::Request));
}

#[tokio::test]
async fn a_certificate_for_another_key_is_discarded() {
    let (clock, signer, certs) = rig(Mode::WrongKey);
    assert!(!certs.request(&signer, false).await);
    assert!(certs.identity().is_none());
    assert_eq!(certs.status_line(), "No session certificate");
    assert_eq!(certs.last_refusal(), Some(ErrorCode::Internal));
    // Not asked again in a loop.
    assert_eq!(due(&certs, &clock), None);
}

#[tokio::test]
async fn denied_is_not_asked_again_until_next_session_or_by_hand() {
    let (clock, signer, certs) = rig(Mode::Deny);
    assert!(!certs.request(&signer, false).await);
    assert_eq!(certs.status_line(), "No session certificate");
    assert_eq!(certs.last_refusal(), Some(ErrorCode::UserDenied));
    clock.advance(HOUR_MS);
    assert_eq!(due(&certs, &clock), None);

    // The timer, ticking fast with a session up, asks no more.
    let (tx, rx) = watch::channel(Some(()));
    let run = certs.run(&signer, rx, Duration::from_millis(5), || false);
    tokio::select! {
        () = run => panic!("the timer ended"),
        () = tokio::time::sleep(Duration::from_millis(100)) => {}
    }
    // The run began with a session up, which counts as a new one: one ask.
    assert_eq!(signer.asked(), 2);

    // A new session lifts the hold once.
    certs.state().connected();
    assert_eq!(due(&certs, &clock), Some(Action::Request));
    // And `vmux cert request` asks regardless.
    *signer.mode.lock().unwrap() = Mode::Approve;
    let mut state = CertState::default();
    state.refused(ErrorCode::UserDenied);
    assert!(state.due(clock.now_ms()).is_none());
    assert!(state.begin(true));
    assert!(certs.request(&signer, true).await);
    assert_eq!(certs.last_refusal(), None);
    drop(tx);
}

#[tokio::test]
async fn the_timer_renews_and_forgets() {
    let (clock, signer, certs) = rig(Mode::Approve);
    let (tx, rx) = watch::channel(None::<()>);
    let locked = std::sync::atomic::AtomicBool::new(true);
    let paused = || locked.load(std::sync::atomic::Ordering::Relaxed);
    let run = certs.run(&signer, rx, Duration::from_millis(5), paused);
    let drive = async {
        // No session: nothing asked.
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(signer.asked(), 0);
        // A session, but the agent is locked: still nothing.
        tx.send_replace(Some(()));
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(signer.asked(), 0);
        // Unlocked: asked at the next tick.
        locked.store(false, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(signer.asked(), 1);
        assert!(certs.identity().is_some());
        // Under an hour left: renewed by the timer.
        clock.advance(7 * HOUR_MS + 60_000);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(signer.asked(), 2);
        // Signer gone, certificate runs out: forgotten, not offered.
        tx.send_replace(None);
        clock.advance(9 * HOUR_MS);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(signer.asked(), 2);
        assert!(certs.identity().is_none());
        assert_eq!(
            certs.status_line(),
            "Certificate expired — connect signer to renew"
        );
    };
    tokio::select! {
        () = run => panic!("the timer ended"),
        () = drive => {}
    }
}

#[test]
fn short_certificates_renew_at_half_life_not_at_once() {
    let key = Ephemeral::generate().unwrap();
    let mut state = CertState::default();
    let now_s = START_MS / 1000;
    assert!(state.begin(false));
    state.issued(state::Held {
        key,
        certificate_blob: vec![1],
        valid_after: now_s,
        valid_before: now_s + 1800,
    });
    assert_eq!(state.due(START_MS), None);
    assert_eq!(state.due(START_MS + 901_000), Some(Action::Request));
}

#[tokio::test]
async fn leaves_the_listing_at_the_second_it_expires() {
    let (clock, signer, certs) = rig(Mode::Approve);
    assert!(certs.request(&signer, false).await);
    let id = certs.identity().unwrap();
    let cert = Certificate::from_bytes(&id.key_blob).unwrap();
    let end_ms = cert.valid_before() * 1000;
    clock.advance(end_ms - 1 - clock.now_ms());
    assert!(certs.identity().is_some());
    assert!(certs.fingerprint_of(&id.key_blob).is_some());
    // No timer tick needed: the listing reads the clock.
    clock.advance(1);
    assert!(certs.identity().is_none());
    assert!(certs.fingerprint_of(&id.key_blob).is_none());
    assert!(matches!(certs.sign(&id.key_blob, b"x"), Local::NotOurs));
}

#[tokio::test]
async fn sigusr1_forgets_at_once_and_asks_no_more_until_the_person_does() {
    let (clock, signer, certs) = rig(Mode::Approve);
    assert!(certs.request(&signer, false).await);
    let blob = certs.identity().unwrap().key_blob;
    certs.forget();
    assert!(certs.identity().is_none());
    assert!(matches!(certs.sign(&blob, b"x"), Local::NotOurs));
    assert_eq!(certs.status_line(), state::FORGOTTEN);
    // Neither the timer nor a new session asks again.
    assert_eq!(due(&certs, &clock), None);
    certs.state().connected();
    assert_eq!(due(&certs, &clock), None);
    // `vmux cert request` does.
    assert!(certs.request(&signer, true).await);
    assert!(certs.identity().is_some());
    assert_eq!(signer.asked(), 2);
}

#[test]
fn an_answer_begun_before_a_forgetting_is_dropped() {
    let mut state = CertState::default();
    assert!(state.begin(false));
    let epoch = state.epoch();
    state.forget();
    let now_s = START_MS / 1000;
    let held = state::Held {
        key: Ephemeral::generate().unwrap(),
        certificate_blob: vec![1],
        valid_after: now_s,
        valid_before: now_s + 3600,
    };
    assert!(!state.issued_in(epoch, held));
    assert!(state.offered(START_MS).is_none());
    assert!(!state.is_pending());
}
