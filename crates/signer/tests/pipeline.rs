#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The signer's request path in this process, in milliseconds: a real
//! `Signer` on loopback, a paired requester talking the link protocol, and
//! a test approver (a veto hook) in place of the person. It answers every
//! passphrase prompt and approves only what the hook lets through.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;
use vmux_keys::{KeyType, Keyring};
use vmux_link::clock::{Clock, SystemClock};
use vmux_link::device::Device;
use vmux_link::home::Home;
use vmux_link::session::{self, Session};
use vmux_link::trust::{PeerRole, PinnedPeer, TrustStore};
use vmux_proto::envelope::{Envelope, ErrorCode, Role, SignContext, SignRequest, SignResponse};
use vmux_signer::approval::{Approvals, Command, Decision, Sheet};
use vmux_signer::{Config, Signer};
use zeroize::Zeroizing;

const PASS: &str = "correct horse battery staple";

/// Every sheet the approver saw, in order.
type Seen = Arc<Mutex<Vec<Sheet>>>;

struct Rig {
    _dir: tempfile::TempDir,
    session: Session,
    device_id: String,
    key: Vec<u8>,
    seen: Seen,
}

/// A signer holding "work", a requester "laptop" pinned both ways, and an
/// approver that approves a sheet only when `veto` returns false.
async fn rig(veto: fn(&Sheet) -> bool) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let signer_home = Home::at(dir.path().join("signer")).unwrap();
    let device_home = Home::at(dir.path().join("laptop")).unwrap();
    let signer_device = Device::load_or_create(&signer_home, Some("phone")).unwrap();
    let laptop = Device::load_or_create(&device_home, Some("laptop")).unwrap();
    let mut keyring = Keyring::load(&signer_home).unwrap();
    let key = keyring
        .create_software("work", KeyType::Ed25519, &Zeroizing::new(PASS.to_owned()))
        .unwrap()
        .key_blob()
        .unwrap();
    TrustStore::load(&signer_home)
        .unwrap()
        .pin(PinnedPeer::new(
            laptop.id.clone(),
            "laptop".into(),
            PeerRole::Requester,
            &laptop.keypair.public(),
            0,
        ))
        .unwrap();
    let mut device_trust = TrustStore::load(&device_home).unwrap();
    device_trust
        .pin(PinnedPeer::new(
            signer_device.id.clone(),
            "phone".into(),
            PeerRole::Signer,
            &signer_device.keypair.public(),
            0,
        ))
        .unwrap();
    let (approvals, commands) = Approvals::new();
    let signer = Signer::new(
        signer_device,
        signer_home,
        approvals,
        Arc::new(SystemClock),
        Config::default(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(signer.serve(listener));
    let seen = Seen::default();
    tokio::spawn(approver(commands, veto, Arc::clone(&seen)));
    let session = session::connect(
        &address,
        &laptop,
        Role::Agent,
        &mut device_trust,
        SystemClock.now_ms(),
    )
    .await
    .unwrap();
    Rig {
        _dir: dir,
        session,
        device_id: laptop.id,
        key,
        seen,
    }
}

/// The person, replaced by a hook: sheets the hook vetoes are denied.
async fn approver(mut commands: UnboundedReceiver<Command>, veto: fn(&Sheet) -> bool, seen: Seen) {
    while let Some(command) = commands.recv().await {
        match command {
            Command::Sheet { sheet, reply, .. } => {
                let answer = if veto(&sheet) {
                    Decision::Deny
                } else {
                    Decision::Approve
                };
                seen.lock().unwrap().push(sheet);
                let _ = reply.send(answer);
            }
            Command::Secret { reply, .. } => {
                let _ = reply.send(Zeroizing::new(PASS.to_owned()));
            }
            _ => {}
        }
    }
}

impl Rig {
    fn request(&self, nonce: u8, data: &[u8]) -> SignRequest {
        let now = SystemClock.now_ms();
        SignRequest {
            request_id: format!("r{nonce}"),
            key_algorithm: "ssh-ed25519".into(),
            public_key_blob: self.key.clone(),
            source_device_id: self.device_id.clone(),
            source_device_name: "laptop".into(),
            origin: vmux_proto::envelope::Origin::GenericAgent,
            data_to_sign: data.to_vec(),
            nonce: vec![nonce; 16],
            issued_at_milliseconds: now,
            expires_at_milliseconds: now + 30_000,
            flags: 0,
            context: SignContext::default(),
            bindings: Vec::new(),
        }
    }

    async fn ask(&mut self, r: SignRequest) -> SignResponse {
        self.session.send(Envelope::SignRequest(r)).await.unwrap();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.session.recv())
                .await
                .unwrap()
                .unwrap()
            {
                Envelope::SignResponse(answer) => return answer,
                _ => continue,
            }
        }
    }
}

fn sshsig(namespace: &str) -> Vec<u8> {
    ssh_key::SshSig::signed_data(namespace, ssh_key::HashAlg::Sha512, b"msg").unwrap()
}

/// A publickey userauth request for `user` with `key`, as ssh signs it.
fn login(user: &str, key: &[u8]) -> Vec<u8> {
    fn put(d: &mut Vec<u8>, s: &[u8]) {
        d.extend_from_slice(&u32::try_from(s.len()).unwrap().to_be_bytes());
        d.extend_from_slice(s);
    }
    let mut d = Vec::new();
    put(&mut d, b"session");
    d.push(50);
    put(&mut d, user.as_bytes());
    put(&mut d, b"ssh-connection");
    put(&mut d, b"publickey");
    d.push(1);
    put(&mut d, b"ssh-ed25519");
    put(&mut d, key);
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_destination_and_replay_in_process() {
    let started = Instant::now();
    // Deny logins, approve everything else.
    let mut rig =
        rig(|sheet| matches!(sheet, Sheet::Sign { destination, .. } if destination.user.is_some()))
            .await;

    // Approved: a file signature, with the sheet's words.
    let answer = rig.ask(rig.request(1, &sshsig("file"))).await;
    assert!(answer.approved, "{answer:?}");
    assert!(answer.signature.is_some());
    let purpose = match &rig.seen.lock().unwrap()[0] {
        Sheet::Sign { destination, .. } => destination.purpose.to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        purpose,
        "file signature (namespace \"file\") (verified by this signer)"
    );

    // Replayed: the same nonce again, refused before any sheet.
    let answer = rig.ask(rig.request(1, &sshsig("file"))).await;
    assert_eq!(answer.error_code, Some(ErrorCode::ReplayedRequest));

    // Refused: another device's id, a key the signer does not hold.
    let mut wrong = rig.request(2, &sshsig("file"));
    wrong.source_device_id = "someone-else".into();
    let answer = rig.ask(wrong).await;
    assert_eq!(answer.error_code, Some(ErrorCode::MalformedRequest));
    let mut unknown = rig.request(3, &sshsig("file"));
    unknown.public_key_blob[20] ^= 1;
    let answer = rig.ask(unknown).await;
    assert_ne!(answer.error_code, None);
    assert!(!answer.approved);

    // Policy: unknown data is refused by default, with no sheet.
    let answer = rig.ask(rig.request(4, b"not a login, not SSHSIG")).await;
    assert_eq!(answer.error_code, Some(ErrorCode::PolicyDenied));

    // The veto: a login is denied on its sheet; its Destination names no
    // host it cannot prove, and the account has its own line.
    let data = login("root:style", &rig.key);
    let answer = rig.ask(rig.request(5, &data)).await;
    assert_eq!(answer.error_code, Some(ErrorCode::UserDenied));
    let seen = rig.seen.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        2,
        "one sheet per request that reached the person"
    );
    let Sheet::Sign { destination, .. } = &seen[1] else {
        panic!("{seen:?}")
    };
    assert_eq!(
        destination.target.to_string(),
        "unknown host (UNVERIFIED: no session binding came with the request)"
    );
    assert_eq!(destination.user.as_ref().unwrap().text, "root");
    assert_eq!(destination.style.as_deref(), Some("style"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
