#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
use super::*;
use signature::Signer;
use ssh_key::{Algorithm, HashAlg, PrivateKey, Signature, SshSig};
use vmux_proto::envelope::SignContext;

fn key() -> PrivateKey {
    PrivateKey::random(
        &mut ssh_key::rand_core::UnwrapErr(ssh_key::getrandom::SysRng),
        Algorithm::Ed25519,
    )
    .unwrap()
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&u32::try_from(s.len()).unwrap().to_be_bytes());
    out.extend_from_slice(s);
}

/// A userauth request as ssh signs it.
fn login(sid: &[u8], user: &str, blob: &[u8], host_key: Option<&[u8]>) -> Vec<u8> {
    userauth_for(SSH_CONNECTION, sid, user, blob, host_key)
}

/// A userauth request for `service`.
fn userauth_for(
    service: &str,
    sid: &[u8],
    user: &str,
    blob: &[u8],
    host_key: Option<&[u8]>,
) -> Vec<u8> {
    let mut d = Vec::new();
    string(&mut d, sid);
    d.push(50);
    string(&mut d, user.as_bytes());
    string(&mut d, service.as_bytes());
    let method: &[u8] = match host_key {
        Some(_) => b"publickey-hostbound-v00@openssh.com",
        None => b"publickey",
    };
    string(&mut d, method);
    d.push(1);
    string(&mut d, b"ssh-ed25519");
    string(&mut d, blob);
    if let Some(h) = host_key {
        string(&mut d, h);
    }
    d
}

fn binding(host: &PrivateKey, sid: &[u8], forwarded: bool, name: &str) -> SessionBinding {
    let sig: Signature = host.try_sign(sid).unwrap();
    SessionBinding {
        host_key: host.public_key().to_bytes().unwrap(),
        session_id: sid.to_vec(),
        signature: Vec::<u8>::try_from(sig).unwrap(),
        forwarded,
        known_hosts_name: Some(name.into()),
    }
}

struct Case {
    user_key: Vec<u8>,
    a: PrivateKey,
    b: PrivateKey,
}

impl Case {
    fn new() -> Case {
        Case {
            user_key: key().public_key().to_bytes().unwrap(),
            a: key(),
            b: key(),
        }
    }

    fn request(&self, data: Vec<u8>, bindings: Vec<SessionBinding>) -> SignRequest {
        SignRequest {
            request_id: "r".into(),
            key_algorithm: "ssh-ed25519".into(),
            public_key_blob: self.user_key.clone(),
            source_device_id: "d".into(),
            source_device_name: "laptop".into(),
            origin: Origin::GenericAgent,
            data_to_sign: data,
            nonce: vec![0; 16],
            issued_at_milliseconds: 0,
            expires_at_milliseconds: 1,
            flags: 0,
            context: SignContext::default(),
            bindings,
        }
    }
}

fn why(reading: &Reading) -> &str {
    match &reading.host {
        Host::Unverified { why, .. } => why,
        other => panic!("verified? {other:?}"),
    }
}

#[test]
fn a_login_bound_last_is_verified_and_names_its_host() {
    let c = Case::new();
    let data = login(b"sid-b", "root", &c.user_key, None);
    let r = c.request(data, vec![binding(&c.b, b"sid-b", false, "db")]);
    let reading = read(&r).unwrap();
    assert_eq!(
        reading.purpose,
        Purpose::Login {
            user: "root".into()
        }
    );
    assert_eq!(
        reading.host,
        Host::Verified {
            key: c.b.public_key().to_bytes().unwrap(),
            claimed_name: Some("db".into())
        }
    );
    assert_eq!(reading.forwarded, Forwarded::No);
    assert!(reading.through.is_empty());
}

#[test]
fn a_forwarded_chain_becomes_the_path() {
    let c = Case::new();
    let data = login(b"sid-b", "root", &c.user_key, None);
    let bindings = vec![
        binding(&c.a, b"sid-a", true, "a"),
        binding(&c.b, b"sid-b", false, "b"),
    ];
    let reading = read(&c.request(data, bindings)).unwrap();
    assert!(reading.verified());
    assert_eq!(reading.forwarded, Forwarded::Bound);
    assert_eq!(reading.through.len(), 1);
    assert_eq!(reading.through[0].claimed_name.as_deref(), Some("a"));
}

#[test]
fn no_binding_a_stale_binding_or_a_forged_one_leave_the_host_unverified() {
    let c = Case::new();
    let data = login(b"sid-now", "root", &c.user_key, None);
    // No binding: only the requester's word.
    let reading = read(&c.request(data.clone(), vec![])).unwrap();
    assert!(why(&reading).contains("no session binding"));
    // A real binding of another (older) session, replayed.
    let old = binding(&c.b, b"sid-old", false, "db");
    let reading = read(&c.request(data.clone(), vec![old])).unwrap();
    assert!(why(&reading).contains("not the one bound last"));
    // Host A's binding with a login into B's session.
    let mut forged = binding(&c.a, b"sid-now", false, "db");
    forged.host_key = c.b.public_key().to_bytes().unwrap();
    let reading = read(&c.request(data.clone(), vec![forged])).unwrap();
    assert!(why(&reading).contains("does not verify"), "{reading:?}");
    // A corrupted signature.
    let mut corrupt = binding(&c.b, b"sid-now", false, "db");
    let last = corrupt.signature.len() - 1;
    corrupt.signature[last] ^= 1;
    let reading = read(&c.request(data.clone(), vec![corrupt])).unwrap();
    assert!(why(&reading).contains("session binding 1 of 1"));
    // The login's session is bound, but an unrelated one was bound after.
    let bindings = vec![
        binding(&c.b, b"sid-now", true, "db"),
        binding(&c.a, b"sid-a", true, "a"),
    ];
    let reading = read(&c.request(data.clone(), bindings)).unwrap();
    assert!(why(&reading).contains("not the one bound last"));
    // Bound last, but as a forwarding.
    let reading =
        read(&c.request(data.clone(), vec![binding(&c.b, b"sid-now", true, "db")])).unwrap();
    assert!(why(&reading).contains("forwarding"));
    // A login binding before the last.
    let bindings = vec![
        binding(&c.a, b"sid-a", false, "a"),
        binding(&c.b, b"sid-now", false, "db"),
    ];
    let reading = read(&c.request(data, bindings)).unwrap();
    assert!(why(&reading).contains("only forwardings"));
}

#[test]
fn a_context_that_contradicts_the_data_is_refused() {
    let c = Case::new();
    let sshsig = SshSig::signed_data("file", HashAlg::Sha512, b"msg").unwrap();
    let mut r = c.request(sshsig, vec![]);
    r.context.purpose = Some(ContextPurpose::SshUserauth);
    let (code, msg) = read(&r).unwrap_err();
    assert_eq!(code, ErrorCode::MalformedRequest);
    assert!(msg.contains("namespace \"file\""), "{msg}");
    r.context.purpose = Some(ContextPurpose::Sshsig);
    r.context.namespace = Some("git".into());
    assert!(read(&r).unwrap_err().1.contains("namespace \"git\""));
    r.context.namespace = Some("file".into());
    assert_eq!(
        read(&r).unwrap().purpose,
        Purpose::Signature {
            namespace: "file".into()
        }
    );

    let data = login(b"sid", "root", &c.user_key, None);
    let mut r = c.request(data, vec![]);
    r.context.user = Some("git".into());
    assert!(read(&r).unwrap_err().1.contains("user \"git\""));
    r.context.user = None;
    r.context.purpose = Some(ContextPurpose::Sshsig);
    assert!(read(&r).unwrap_err().1.contains("userauth"));
    // Someone else's key in the data.
    let other = key().public_key().to_bytes().unwrap();
    let r = c.request(login(b"sid", "root", &other, None), vec![]);
    assert!(read(&r).unwrap_err().1.contains("publicKeyBlob"));
    // Unknown data claimed as a login.
    let mut r = c.request(b"anything".to_vec(), vec![]);
    r.context.purpose = Some(ContextPurpose::SshUserauth);
    assert!(read(&r).is_err());
    r.context.purpose = None;
    assert_eq!(read(&r).unwrap().purpose, Purpose::Unknown);
}

/// sudo through `pam_ssh_agent_auth` over a forwarded agent signs a
/// userauth-shaped challenge: not a login, whatever its bindings say.
#[test]
fn a_userauth_for_another_service_is_not_a_login() {
    let c = Case::new();
    let data = userauth_for("pam_ssh_agent_auth", b"sid", "root", &c.user_key, None);
    let mut r = c.request(data, vec![binding(&c.b, b"sid", false, "db")]);
    r.context.purpose = Some(ContextPurpose::SshUserauth);
    let reading = read(&r).unwrap();
    assert_eq!(
        reading.purpose,
        Purpose::OtherUserauth {
            service: "pam_ssh_agent_auth".into()
        }
    );
    assert_eq!(reading.host, Host::NotALogin);
    assert!(!reading.verified());
}

#[test]
fn the_user_is_split_at_the_first_colon() {
    assert_eq!(split_user("root"), ("root", None));
    assert_eq!(split_user("root:"), ("root", Some("")));
    assert_eq!(split_user("root:bsdauth:x"), ("root", Some("bsdauth:x")));
    assert_eq!(
        split_user("root:@staging (verified by this signer)"),
        ("root", Some("@staging (verified by this signer)"))
    );
}

#[test]
fn user_names_no_sshd_could_log_in_as_are_refused_with_the_reason() {
    let c = Case::new();
    let spoof = format!(
        "root:@staging （verified by this signer）{}.",
        "\u{3000}".repeat(320)
    );
    let refused = |user: &str| {
        let r = c.request(login(b"sid", user, &c.user_key, None), vec![]);
        let (code, why) = read(&r).unwrap_err();
        assert_eq!(code, ErrorCode::MalformedRequest);
        why
    };
    let why = refused(&spoof);
    assert!(
        why.contains("a space other than U+0020 (Zs) U+3000"),
        "{why}"
    );
    assert!(refused("root\u{a0}").contains("U+00A0"));
    assert!(refused("ro\u{200b}ot").contains("format character (Cf) U+200B"));
    assert!(refused("root\u{1b}[2J").contains("control character (Cc) U+001B"));
    assert!(refused("root\u{2028}").contains("line separator (Zl)"));
    assert!(refused(&"a".repeat(MAX_USER_LEN + 1)).contains("257 bytes"));
    assert!(refused(":style").contains("account before the first `:` is empty"));
    let sshsig = SshSig::signed_data("file\u{3000}", HashAlg::Sha512, b"msg").unwrap();
    let (_, why) = read(&c.request(sshsig, vec![])).unwrap_err();
    assert!(why.contains("namespace") && why.contains("U+3000"), "{why}");
    for ok in ["root", "root:foo", "a b", &"a".repeat(MAX_USER_LEN)] {
        let r = c.request(login(b"sid", ok, &c.user_key, None), vec![]);
        assert!(read(&r).is_ok(), "{ok:?} refused");
    }
}

#[test]
fn a_hostbound_login_must_name_the_bound_host() {
    let c = Case::new();
    let b_blob = c.b.public_key().to_bytes().unwrap();
    let a_blob = c.a.public_key().to_bytes().unwrap();
    let ok = login(b"sid", "root", &c.user_key, Some(&b_blob));
    let bound = vec![binding(&c.b, b"sid", false, "b")];
    assert!(read(&c.request(ok, bound.clone())).unwrap().verified());
    let wrong = login(b"sid", "root", &c.user_key, Some(&a_blob));
    assert!(
        read(&c.request(wrong, bound))
            .unwrap_err()
            .1
            .contains("hostbound")
    );
}

#[test]
fn vmux_ssh_is_verified_by_the_requester_only() {
    let c = Case::new();
    let mut r = c.request(login(b"sid", "root", &c.user_key, None), vec![]);
    r.origin = Origin::EmbeddedClient;
    r.context.context_quality = ContextQuality::Verified;
    r.context.host = Some("db".into());
    r.context.host_key = Some(c.b.public_key().to_bytes().unwrap());
    let reading = read(&r).unwrap();
    assert!(matches!(reading.host, Host::ByRequester { .. }));
    assert!(!reading.verified());
    // Without a host key there is nothing it can have checked.
    r.context.host_key = None;
    assert!(matches!(read(&r).unwrap().host, Host::Unverified { .. }));
}

#[test]
fn forwarding_is_bound_or_claimed() {
    let c = Case::new();
    let sshsig = SshSig::signed_data("git", HashAlg::Sha512, b"msg").unwrap();
    let bound = vec![binding(&c.a, b"sid-a", true, "bastion")];
    let reading = read(&c.request(sshsig.clone(), bound)).unwrap();
    assert_eq!(reading.forwarded, Forwarded::Bound);
    assert_eq!(reading.through.len(), 1);
    let mut bad = binding(&c.a, b"sid-a", true, "bastion");
    bad.session_id = b"other".to_vec();
    let reading = read(&c.request(sshsig.clone(), vec![bad])).unwrap();
    assert_eq!(reading.forwarded, Forwarded::Claimed);
    assert!(reading.through.is_empty());
    let mut r = c.request(sshsig, vec![]);
    r.context.forwarded = true;
    assert_eq!(read(&r).unwrap().forwarded, Forwarded::Claimed);
}

/// A bastion holding the forwarded agent spoils the login's binding
/// (a stale session id): the destination is unverified, but the proved
/// forwarding stays on the path, so the login never looks direct.
#[test]
fn a_proved_forwarding_stays_when_the_destination_is_unverified() {
    let c = Case::new();
    let bindings = vec![
        binding(&c.a, b"sid-a", true, "bastion"),
        binding(&c.b, b"stale", false, "db"),
    ];
    let r = c.request(login(b"sid-b", "root", &c.user_key, None), bindings);
    let reading = read(&r).unwrap();
    assert!(matches!(reading.host, Host::Unverified { .. }));
    assert_eq!(reading.forwarded, Forwarded::Bound);
    assert_eq!(reading.through.len(), 1, "{reading:?}");
}
