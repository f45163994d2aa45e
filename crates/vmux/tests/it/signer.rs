//! `vmux signer` driven through a pseudo-terminal, as its person would, with a
//! paired requester sending real link requests. Signatures are checked by
//! OpenSSH's own `ssh-keygen -Y verify` and certificates by `ssh-keygen -L`.

use crate::support::process;
use crate::support::softhsm;
use crate::support::sshd;
use vmux_testkit::agent_client as client;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use client::userauth;
use process::Proc;
use signature::Signer;
use softhsm::SoftHsm;
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, Signature, SshSig};
use tokio::runtime::Runtime;
use vmux_keys::{KeyType, Keyring};
use vmux_link::device::{Device, new_uuid};
use vmux_link::home::Home;
use vmux_link::session::{self, SessionSender};
use vmux_link::trust::TrustStore;
use vmux_proto::envelope::{
    CertificateRequest, ContextQuality, Envelope, ErrorCode, KeyListRequest, Origin, Purpose, Role,
    SessionBinding, SignContext, SignRequest, SignResponse,
};
use zeroize::Zeroizing;

const WAIT: Duration = Duration::from_secs(20);
const PASS: &str = "correct horse battery";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A signer in a pty, paired with an in-process requester.
struct Rig {
    dir: tempfile::TempDir,
    signer_home: PathBuf,
    signer: Proc,
    rt: Runtime,
    sender: Option<SessionSender>,
    session_task: tokio::task::JoinHandle<()>,
    responses: mpsc::Receiver<Envelope>,
    device_id: String,
    keys: Vec<(String, PublicKey)>,
}

impl Rig {
    /// A signer holding new software keys of these types, passphrase PASS.
    fn start(keys: &[(&str, KeyType)]) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let signer_home = dir.path().join("signer");
        let mut keyring = Keyring::load(&Home::at(signer_home.clone()).unwrap()).unwrap();
        for (name, kind) in keys {
            keyring
                .create_software(name, *kind, &Zeroizing::new(PASS.to_owned()))
                .unwrap();
        }
        vmux_keys::ca::Ca::init(
            &Home::at(signer_home.clone()).unwrap(),
            &Zeroizing::new(PASS.to_owned()),
        )
        .unwrap();
        Rig::launch(dir, signer_home, &[])
    }

    /// Starts the signer in a pty on `signer_home`'s identities and pairs.
    fn launch(dir: tempfile::TempDir, signer_home: PathBuf, env: &[(&str, &str)]) -> Rig {
        let keyring = Keyring::load(&Home::at(signer_home.clone()).unwrap()).unwrap();
        let keys: Vec<_> = keyring
            .list()
            .iter()
            .map(|i| (i.name.clone(), i.public().unwrap()))
            .collect();
        let args = [
            "signer",
            "--listen",
            "127.0.0.1:0",
            "--name",
            "phone",
            "--ui",
            "plain",
            "--pair",
        ];
        let mut signer = Proc::spawn_in_pty_env(&signer_home, &args, env);
        let line = signer.expect("listening on", WAIT);
        let addr = line.trim().rsplit(' ').next().unwrap().to_owned();

        let rt = Runtime::new().unwrap();
        let agent_home = Home::at(dir.path().join("agent")).unwrap();
        let agent = Device::load_or_create(&agent_home, Some("laptop")).unwrap();
        let device_id = agent.id.clone();
        let pairing = rt.spawn(async move {
            let pending = session::start_pairing(&addr, &agent, Role::Agent)
                .await
                .unwrap();
            let mut trust = TrustStore::load(&agent_home).unwrap();
            pending.finish(&mut trust, now_ms()).await.unwrap()
        });
        signer.expect("wants to pair", WAIT);
        signer.type_line("a");
        let mut session = rt.block_on(pairing).unwrap();
        let sender = session.sender();
        let (tx, responses) = mpsc::channel();
        let session_task = rt.spawn(async move {
            while let Ok(envelope) = session.recv().await {
                // Sent first on every session (the wake endpoint, here
                // none): not an answer to anything.
                if matches!(envelope, Envelope::DeviceTokenUpdate(_)) {
                    continue;
                }
                if tx.send(envelope).is_err() {
                    break;
                }
            }
        });
        Rig {
            dir,
            signer_home,
            signer,
            rt,
            sender: Some(sender),
            session_task,
            responses,
            device_id,
            keys,
        }
    }

    fn send(&self, envelope: Envelope) {
        self.rt
            .block_on(self.sender.as_ref().unwrap().send(envelope))
            .unwrap();
    }

    /// Ends the requester's side of the session.
    fn disconnect(&mut self) {
        self.sender = None;
        self.session_task.abort();
    }

    fn response(&self) -> Envelope {
        self.responses
            .recv_timeout(WAIT)
            .expect("no response from the signer")
    }

    /// The next answer to a request: a key list the signer pushes because
    /// the test changed its keyring meanwhile is passed over.
    fn answer(&self) -> Envelope {
        loop {
            match self.response() {
                Envelope::KeyList(_) => continue,
                other => return other,
            }
        }
    }

    /// A request to sign `data` as an SSHSIG "file" signature (wrapped in
    /// SSHSIG's signed-data header unless it has one): the signer refuses
    /// a context that contradicts the data.
    fn sign_request(&self, key: usize, data: &[u8], flags: u32) -> SignRequest {
        let public = &self.keys[key].1;
        let now = now_ms();
        let data = if data.starts_with(b"SSHSIG") {
            data.to_vec()
        } else {
            SshSig::signed_data("file", HashAlg::Sha512, data).unwrap()
        };
        SignRequest {
            request_id: new_uuid().unwrap(),
            key_algorithm: public.algorithm().as_str().to_owned(),
            public_key_blob: public.to_bytes().unwrap(),
            source_device_id: self.device_id.clone(),
            source_device_name: "laptop".into(),
            origin: Origin::GenericAgent,
            data_to_sign: data,
            nonce: vmux_link::pairing::nonce().unwrap().to_vec(),
            issued_at_milliseconds: now,
            expires_at_milliseconds: now + 60_000,
            flags,
            context: SignContext {
                context_quality: ContextQuality::Claimed,
                host: Some("git.example.org".into()),
                user: Some("git".into()),
                purpose: Some(Purpose::Sshsig),
                namespace: Some("file".into()),
                forwarded: false,
                host_key: None,
            },
            bindings: Vec::new(),
        }
    }

    /// Sends a sign request for `message` as SSHSIG data, approves it with
    /// the passphrase through the pty, and returns the response.
    fn approved_signature(&mut self, key: usize, message: &[u8], flags: u32) -> SignResponse {
        self.approved_signature_with(key, message, flags, PASS)
    }

    fn approved_signature_with(
        &mut self,
        key: usize,
        message: &[u8],
        flags: u32,
        secret: &str,
    ) -> SignResponse {
        let data = SshSig::signed_data("file", HashAlg::Sha512, message).unwrap();
        self.send(Envelope::SignRequest(self.sign_request(key, &data, flags)));
        self.signer.expect("SSH Sign Request", WAIT);
        self.signer.type_line("a");
        self.signer
            .expect(&format!("for \"{}\": ", self.keys[key].0), WAIT);
        self.signer.type_line(secret);
        self.signer.expect("Approved remote sign request", WAIT);
        signed(self.answer())
    }

    fn refused(&self, request: SignRequest) -> (ErrorCode, String) {
        self.send(Envelope::SignRequest(request));
        let r = signed(self.answer());
        assert!(!r.approved && r.signature.is_none());
        (r.error_code.unwrap(), r.error_message.unwrap_or_default())
    }
}

fn signed(envelope: Envelope) -> SignResponse {
    match envelope {
        Envelope::SignResponse(r) => r,
        other => panic!("expected a signResponse, got {other:?}"),
    }
}

/// Runs `ssh-keygen -Y verify` on `signature_blob` over `message`.
fn ssh_keygen_verifies(
    dir: &Path,
    public: &PublicKey,
    message: &[u8],
    signature_blob: &[u8],
) -> bool {
    let signature = ssh_key::Signature::try_from(signature_blob).unwrap();
    let sshsig = SshSig::new(
        public.key_data().clone(),
        "file",
        HashAlg::Sha512,
        signature,
    )
    .unwrap();
    std::fs::write(dir.join("msg"), message).unwrap();
    std::fs::write(dir.join("msg.sig"), sshsig.to_pem(LineEnding::LF).unwrap()).unwrap();
    std::fs::write(
        dir.join("allowed"),
        format!("me {}\n", public.to_openssh().unwrap()),
    )
    .unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(dir.join("allowed"))
        .args(["-I", "me", "-n", "file", "-s"])
        .arg(dir.join("msg.sig"))
        .stdin(std::fs::File::open(dir.join("msg")).unwrap())
        .output()
        .unwrap();
    out.status.success()
}

#[test]
fn approve_and_passphrase_give_a_signature_ssh_keygen_verifies() {
    let mut rig = Rig::start(&[("work", KeyType::Ecdsa)]);
    let r = rig.approved_signature(0, b"hello from the laptop", 0);
    assert!(r.approved);
    assert!(ssh_keygen_verifies(
        rig.dir.path(),
        &rig.keys[0].1,
        b"hello from the laptop",
        &r.signature.unwrap()
    ));
    // The sheet showed who and where; the passphrase was not echoed.
    let screen = &rig.signer.transcript;
    assert!(screen.contains("From Device  laptop"), "{screen}");
    // Read from the data, not from the context's claims of host and user.
    assert!(
        screen
            .contains("Purpose      file signature (namespace \"file\") (verified by this signer)"),
        "{screen}"
    );
    assert!(!screen.contains("git.example.org"), "{screen}");
    assert!(
        !screen.contains(PASS),
        "the passphrase was echoed:\n{screen}"
    );
    let log = std::fs::read_to_string(rig.signer_home.join("signer-log.jsonl")).unwrap();
    assert!(
        log.contains("\"outcome\":\"approved\"") && log.contains("\"device\":\"laptop\""),
        "{log}"
    );
    let shown = Command::new(process::VMUX)
        .args(["signer", "log"])
        .env("VMUX_HOME", &rig.signer_home)
        .output()
        .unwrap();
    let shown = String::from_utf8(shown.stdout).unwrap();
    assert!(
        shown.contains("sign") && shown.contains("laptop") && shown.contains("approved"),
        "{shown}"
    );
    assert!(shown.contains("purpose: file signature"), "{shown}");
    assert!(
        shown.contains(&rig.keys[0].1.fingerprint(HashAlg::Sha256).to_string()),
        "{shown}"
    );
}

#[test]
fn every_key_type_signs_what_openssh_verifies() {
    let mut rig = Rig::start(&[("ed", KeyType::Ed25519), ("rsa", KeyType::Rsa)]);
    let r = rig.approved_signature(0, b"ed25519 message", 0);
    assert!(ssh_keygen_verifies(
        rig.dir.path(),
        &rig.keys[0].1,
        b"ed25519 message",
        &r.signature.unwrap()
    ));
    for (flags, algorithm) in [
        (2, "rsa-sha2-256"),
        (4, "rsa-sha2-512"),
        (0, "rsa-sha2-512"),
    ] {
        let r = rig.approved_signature(1, b"rsa message", flags);
        let blob = r.signature.unwrap();
        assert_eq!(
            &blob[4..4 + algorithm.len()],
            algorithm.as_bytes(),
            "flags {flags}"
        );
        assert!(
            ssh_keygen_verifies(rig.dir.path(), &rig.keys[1].1, b"rsa message", &blob),
            "flags {flags}"
        );
    }
}

#[test]
fn deny_answers_user_denied() {
    let mut rig = Rig::start(&[("work", KeyType::Ecdsa)]);
    rig.send(Envelope::SignRequest(rig.sign_request(0, b"data", 0)));
    rig.signer.expect("SSH Sign Request", WAIT);
    rig.signer.type_line("d");
    rig.signer.expect("Denied remote sign request", WAIT);
    let r = signed(rig.response());
    assert_eq!(r.error_code, Some(ErrorCode::UserDenied));
}

#[test]
fn three_wrong_passphrases_answer_verification_failed() {
    let mut rig = Rig::start(&[("work", KeyType::Ecdsa)]);
    rig.send(Envelope::SignRequest(rig.sign_request(0, b"data", 0)));
    rig.signer.expect("SSH Sign Request", WAIT);
    rig.signer.type_line("a");
    for n in 1..=3 {
        rig.signer.expect("Passphrase for", WAIT);
        rig.signer.type_line("not it");
        rig.signer
            .expect(&format!("Wrong passphrase ({n} of 3)"), WAIT);
    }
    let r = signed(rig.response());
    assert_eq!(r.error_code, Some(ErrorCode::VerificationFailed));
}

#[test]
fn a_second_request_waits_and_the_sheet_says_so() {
    let mut rig = Rig::start(&[("work", KeyType::Ecdsa)]);
    let first = rig.sign_request(0, b"first", 0);
    let second = rig.sign_request(0, b"second", 0);
    rig.send(Envelope::SignRequest(first.clone()));
    rig.signer.expect("SSH Sign Request", WAIT);
    rig.send(Envelope::SignRequest(second.clone()));
    rig.signer.expect("(1 more waiting)", WAIT);
    rig.signer.type_line("d");
    let r = signed(rig.response());
    assert_eq!(r.request_id, first.request_id, "answered out of order");
    rig.signer.expect("SSH Sign Request", WAIT);
    rig.signer.type_line("d");
    let r = signed(rig.response());
    assert_eq!(r.request_id, second.request_id);
}

#[test]
fn a_request_that_expires_while_shown_answers_request_expired() {
    let mut rig = Rig::start(&[("work", KeyType::Ecdsa)]);
    let mut request = rig.sign_request(0, b"data", 0);
    request.expires_at_milliseconds = request.issued_at_milliseconds + 2_000;
    rig.send(Envelope::SignRequest(request));
    rig.signer.expect("SSH Sign Request", WAIT);
    let r = signed(rig.response());
    assert_eq!(r.error_code, Some(ErrorCode::RequestExpired));
    rig.signer.expect(
        "expired before it was answered; nothing was signed or delivered",
        WAIT,
    );
    // One line for the one expiry, naming the device and what it was for:
    // none from the UI beside it, up to the next sheet.
    rig.send(Envelope::SignRequest(rig.sign_request(0, b"more", 0)));
    rig.signer.expect("SSH Sign Request", WAIT);
    let said = &rig.signer.transcript;
    assert_eq!(
        said.matches("expired before it was answered").count(),
        1,
        "{said}"
    );
    assert!(!said.contains("Withdrawn"), "{said}");
    assert!(
        said.contains("Unanswered sign request from \"laptop\" for"),
        "{said}"
    );
}

#[test]
fn refusals_before_the_sheet_name_their_cause() {
    let rig = Rig::start(&[("work", KeyType::Ecdsa), ("old", KeyType::Ed25519)]);

    // A key the signer doesn't hold: the "work" key with its last byte changed.
    let mut unknown = rig.sign_request(0, b"data", 0);
    if let Some(b) = unknown.public_key_blob.last_mut() {
        *b ^= 1;
    }
    assert_eq!(rig.refused(unknown.clone()).0, ErrorCode::UnknownKey);

    // Same nonce again: refused as a replay before anything else.
    assert_eq!(rig.refused(unknown).0, ErrorCode::ReplayedRequest);

    let mut stale = rig.sign_request(0, b"data", 0);
    stale.issued_at_milliseconds -= 300_000;
    stale.expires_at_milliseconds -= 300_000;
    let (code, message) = rig.refused(stale);
    assert_eq!(code, ErrorCode::RequestExpired);
    assert!(message.contains("clock skew"), "{message}");

    let mut keyring = Keyring::load(&Home::at(rig.signer_home.clone()).unwrap()).unwrap();
    keyring.set_enabled("old", false).unwrap();
    let (code, message) = rig.refused(rig.sign_request(1, b"data", 0));
    assert_eq!(code, ErrorCode::KeyDisabled);
    assert!(message.contains("old"), "{message}");

    // The key list offers only what is enabled, plus the CA.
    rig.send(Envelope::KeyListRequest(KeyListRequest {}));
    let Envelope::KeyList(list) = rig.response() else {
        panic!("expected a keyList")
    };
    let names: Vec<_> = list.keys.iter().map(|k| k.comment.as_str()).collect();
    assert_eq!(names, ["work"]);
    assert!(list.ca_public_key.is_some());
}

#[test]
fn an_approved_certificate_request_yields_an_openssh_certificate() {
    let mut rig = Rig::start(&[("work", KeyType::Ecdsa)]);
    let ephemeral = rig.keys[0].1.clone(); // any P-256 public key will do
    let now = now_ms();
    let request = CertificateRequest {
        request_id: new_uuid().unwrap(),
        public_key_blob: ephemeral.to_bytes().unwrap(),
        source_device_id: rig.device_id.clone(),
        source_device_name: "laptop".into(),
        requested_validity_seconds: 10 * 3600,
        nonce: vmux_link::pairing::nonce().unwrap().to_vec(),
        issued_at_milliseconds: now,
        expires_at_milliseconds: now + 60_000,
    };
    rig.send(Envelope::CertificateRequest(request));
    rig.signer
        .expect("Session certificate for laptop, valid 8h", WAIT);
    rig.signer.type_line("a");
    rig.signer.expect("Passphrase for the CA key", WAIT);
    rig.signer.type_line(PASS);
    let Envelope::CertificateResponse(r) = rig.response() else {
        panic!("expected a certificateResponse")
    };
    assert!(r.approved, "{:?}", r.error_message);
    assert_eq!(
        r.valid_before.unwrap() - now / 1000,
        8 * 3600,
        "validity not clamped to the policy"
    );
    let cert = ssh_key::Certificate::from_bytes(&r.certificate_blob.unwrap()).unwrap();
    let path = rig.dir.path().join("cert.pub");
    std::fs::write(&path, cert.to_openssh().unwrap()).unwrap();
    let out = Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("user certificate") && text.contains("permit-pty") && text.contains("laptop"),
        "{text}"
    );
}

#[test]
fn a_softhsm2_token_key_signs_after_its_pin() {
    let Some(hsm) = SoftHsm::find() else { return };
    let dir = tempfile::tempdir().unwrap();
    let env = hsm.env();
    hsm.init_token("vmux-e2e", "1234");

    // Made on the token through the CLI, the PIN given as the passphrase.
    let signer_home = dir.path().join("signer");
    let made = Command::new(process::VMUX)
        .args([
            "key",
            "new",
            "token-key",
            "--store",
            "pkcs11",
            "--module",
            hsm.module(),
            "--token",
            "vmux-e2e",
        ])
        .env("VMUX_HOME", &signer_home)
        .env("VMUX_PASSPHRASE", "1234")
        .envs(env)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );

    let mut rig = Rig::launch(dir, signer_home, &env);
    let r = rig.approved_signature_with(0, b"signed on a token", 0, "1234");
    assert!(r.approved, "{:?}", r.error_message);
    assert!(ssh_keygen_verifies(
        rig.dir.path(),
        &rig.keys[0].1,
        b"signed on a token",
        &r.signature.unwrap()
    ));
    rig.send(Envelope::KeyListRequest(KeyListRequest {}));
    let Envelope::KeyList(list) = rig.response() else {
        panic!("expected a keyList")
    };
    assert_eq!(
        list.keys[0].provider_kind,
        vmux_proto::envelope::ProviderKind::HardwareToken
    );
}

/// Asks the CA for a certificate on `public` valid `seconds`, approving it in
/// the pty.
fn approved_certificate(
    rig: &mut Rig,
    public: &PublicKey,
    seconds: u64,
) -> vmux_proto::envelope::CertificateResponse {
    let now = now_ms();
    rig.send(Envelope::CertificateRequest(CertificateRequest {
        request_id: new_uuid().unwrap(),
        public_key_blob: public.to_bytes().unwrap(),
        source_device_id: rig.device_id.clone(),
        source_device_name: "laptop".into(),
        requested_validity_seconds: seconds,
        nonce: vmux_link::pairing::nonce().unwrap().to_vec(),
        issued_at_milliseconds: now,
        expires_at_milliseconds: now + 60_000,
    }));
    rig.signer.expect("Session certificate for laptop", WAIT);
    rig.signer.type_line("a");
    rig.signer.expect("Passphrase for the CA key", WAIT);
    rig.signer.type_line(PASS);
    let Envelope::CertificateResponse(r) = rig.response() else {
        panic!("expected a certificateResponse")
    };
    assert!(r.approved, "{:?}", r.error_message);
    r
}

#[test]
fn a_ca_certificate_logs_in_to_sshd_until_its_valid_before() {
    let mut rig = Rig::start(&[("work", KeyType::Ecdsa)]);
    // The requester's key: a throwaway file, as the agent's in-memory key
    // would be; plain OpenSSH presents it with the certificate.
    let key = rig.dir.path().join("ephemeral");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let public = PublicKey::read_openssh_file(key.with_extension("pub")).unwrap();

    let ca = Command::new(process::VMUX)
        .args(["ca", "show"])
        .env("VMUX_HOME", &rig.signer_home)
        .output()
        .unwrap();
    let ca_line = String::from_utf8(ca.stdout).unwrap();
    assert!(ca_line.starts_with("ssh-ed25519 "), "{ca_line}");
    let server = sshd::Sshd::start(&rig.dir.path().join("sshd"), "", Some(&ca_line));

    let r = approved_certificate(&mut rig, &public, 4);
    let cert = ssh_key::Certificate::from_bytes(&r.certificate_blob.unwrap()).unwrap();
    let cert_path = rig.dir.path().join("ephemeral-cert.pub");
    std::fs::write(&cert_path, cert.to_openssh().unwrap()).unwrap();
    let login = |server: &sshd::Sshd| {
        Command::new("ssh")
            .args(server.client_options())
            .arg("-i")
            .arg(&key)
            .arg("-o")
            .arg(format!("CertificateFile={}", cert_path.display()))
            .arg("-o")
            .arg("IdentitiesOnly=yes")
            .arg(format!("{}@127.0.0.1", sshd::whoami()))
            .arg("echo logged-in-by-certificate")
            .env_remove("SSH_AUTH_SOCK")
            .output()
            .unwrap()
    };
    let out = login(&server);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("logged-in-by-certificate"),
        "login failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );

    // Wait (on the clock, with a deadline) until the certificate has expired.
    let valid_before = r.valid_before.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while now_ms() / 1000 <= valid_before {
        assert!(
            std::time::Instant::now() < deadline,
            "clock did not pass validBefore"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = login(&server);
    assert!(
        !out.status.success(),
        "an expired certificate still logged in"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("logged-in-by-certificate"));
}

#[test]
fn a_device_that_disconnects_takes_its_sheet_with_it() {
    let mut rig = Rig::start(&[("work", KeyType::Ecdsa)]);
    rig.send(Envelope::SignRequest(rig.sign_request(0, b"data", 0)));
    rig.signer.expect("SSH Sign Request", WAIT);
    rig.disconnect();
    // One line, the pipeline's, saying why.
    rig.signer.expect("Withdrawn: the request from", WAIT);
    rig.signer
        .expect("(its client left); nothing was signed", WAIT);
    let said = &rig.signer.transcript;
    assert_eq!(said.matches("Withdrawn").count(), 1, "{said}");
}

fn host_key() -> PrivateKey {
    PrivateKey::random(
        &mut ssh_key::rand_core::UnwrapErr(ssh_key::getrandom::SysRng),
        Algorithm::Ed25519,
    )
    .unwrap()
}

/// `host`'s binding to session `sid`, as an agent relays it.
fn binding(host: &PrivateKey, sid: &[u8], forwarded: bool) -> SessionBinding {
    let sig: Signature = host.try_sign(sid).unwrap();
    SessionBinding {
        host_key: host.public_key().to_bytes().unwrap(),
        session_id: sid.to_vec(),
        signature: Vec::<u8>::try_from(sig).unwrap(),
        forwarded,
        known_hosts_name: Some("prod-db".into()),
    }
}

/// A compromised requester talks to the signer directly: whatever context
/// and bindings it sends, the signer believes only what it checks itself.
#[test]
fn a_requester_cannot_claim_a_destination_the_signer_did_not_verify() {
    let mut rig = Rig::start(&[("work", KeyType::Ed25519)]);
    let key = rig.keys[0].1.to_bytes().unwrap();
    let (a, b) = (host_key(), host_key());
    let login = |rig: &Rig, bindings: Vec<SessionBinding>| {
        let mut r = rig.sign_request(0, b"", 0);
        r.data_to_sign = userauth(b"session with b", "root", "ssh-ed25519", &key);
        r.context = SignContext {
            context_quality: ContextQuality::Claimed,
            host: Some("prod-db".into()),
            user: Some("root".into()),
            purpose: Some(Purpose::SshUserauth),
            ..SignContext::default()
        };
        r.bindings = bindings;
        r
    };
    let denied = |rig: &mut Rig, bindings: Vec<SessionBinding>, lines: &[&str]| {
        let request = login(rig, bindings);
        rig.send(Envelope::SignRequest(request));
        rig.signer.expect("SSH Sign Request", WAIT);
        for line in lines {
            rig.signer.expect(line, WAIT);
        }
        rig.signer.expect("[a] approve", WAIT);
        rig.signer.type_line("d");
        assert_eq!(
            signed(rig.response()).error_code,
            Some(ErrorCode::UserDenied)
        );
    };

    // A's real binding (of A's own session) with a login into B's session.
    denied(
        &mut rig,
        vec![binding(&a, b"session with a", false)],
        &[
            "(UNVERIFIED: the login's session identifier is not the one bound last)",
            "Host name    \"prod-db\" (claimed by laptop)",
            "User         root (verified by this signer)",
        ],
    );
    // A's key and signature passed off as bound to B's session.
    let mut forged = binding(&a, b"session with a", false);
    forged.session_id = b"session with b".to_vec();
    denied(
        &mut rig,
        vec![forged],
        &[
            "(UNVERIFIED: session binding 1 of 1: its host signature does not verify over its session identifier",
        ],
    );
    // B's binding with one bit of its signature flipped.
    let mut corrupt = binding(&b, b"session with b", false);
    let last = corrupt.signature.len() - 1;
    corrupt.signature[last] ^= 1;
    denied(
        &mut rig,
        vec![corrupt],
        &["UNVERIFIED: session binding 1 of 1"],
    );
    // A forwarded chain whose last binding is not the login's session.
    denied(
        &mut rig,
        vec![
            binding(&b, b"session with b", true),
            binding(&a, b"session with a", true),
        ],
        &["UNVERIFIED: the login's session identifier is not the one bound last"],
    );
    // The truth: B bound last, for this login.
    denied(
        &mut rig,
        vec![binding(&b, b"session with b", false)],
        &[
            "Destination  SHA256:",
            "(verified by this signer)",
            "new host, not on this signer's list; \"prod-db\" claimed by laptop",
        ],
    );

    // A context that says "login" over SSHSIG data is refused before any sheet.
    let mut lie = rig.sign_request(0, b"a file", 0);
    lie.context.purpose = Some(Purpose::SshUserauth);
    let (code, message) = rig.refused(lie);
    assert_eq!(code, ErrorCode::MalformedRequest);
    assert!(
        message.contains("SSHSIG signature in namespace \"file\""),
        "{message}"
    );
    let log = std::fs::read_to_string(rig.signer_home.join("signer-log.jsonl")).unwrap();
    let last = log.lines().last().unwrap();
    assert!(
        last.contains("\"outcome\":\"malformedRequest\"")
            && last.contains("the context says sshUserauth"),
        "{last}"
    );
    assert_eq!(
        rig.signer
            .wait_any(&["SSH Sign Request"], Duration::from_millis(300)),
        None,
        "a sheet was shown"
    );
}
