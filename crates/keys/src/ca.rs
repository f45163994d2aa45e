//! The certificate authority: short-lived user certificates for a device's
//! ephemeral key, so it can sign locally for a while.
//!
//! Issuing is always an approval on the signer's sheet; this module only
//! applies the policy and signs once the signer has that approval.

use ssh_key::certificate::{Builder, CertType};
use ssh_key::{Algorithm, Certificate, LineEnding, PrivateKey, PublicKey};
use vmux_link::home::{Home, read_optional, write_private};

use crate::{Error, Result};

mod policy;

pub use policy::{DEFAULT_MAX_VALIDITY, MAX_VALIDITY_CEILING, Policy};

/// The CA private key's file in the state dir.
///
/// Stored **unencrypted** on the signer (0600): issuing a certificate already
/// needs an approval on the sheet, and a second secret prompt for the CA
/// would add friction without protecting more than the signer device,
/// which is the trusted device holding every key anyway.
pub const KEY_FILE: &str = "ca.key";
/// The policy file in the state dir.
pub const POLICY_FILE: &str = "ca.json";

/// Certificates start this long before `now`, for clock skew between the
/// signer and the servers.
pub const BACKDATE_SECS: u64 = 5 * 60;

/// Extensions every certificate carries: an ordinary interactive login.
pub const EXTENSIONS: [&str; 5] = [
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
    "permit-user-rc",
];

/// What a device asks the CA for.
#[derive(Clone, Debug)]
pub struct CertRequest<'a> {
    /// The device's (ephemeral) public key to certify.
    pub public_key: &'a PublicKey,
    /// The requesting device's name (its id if it has no name).
    pub device: &'a str,
    /// The identity the certificate acts for, if any.
    pub identity: Option<&'a str>,
    /// Requested validity in seconds; shortened to the policy's maximum.
    pub validity_secs: u64,
    /// Current time, Unix seconds.
    pub now: u64,
}

/// The CA key and its policy.
#[derive(Debug)]
pub struct Ca {
    home: Home,
    key: PrivateKey,
    policy: Policy,
}

impl Ca {
    /// Opens the CA in `home`, creating its key (ed25519) and default policy
    /// on first use.
    pub fn open(home: &Home) -> Result<Self> {
        let key_path = home.file(KEY_FILE);
        let key = match read_optional(&key_path)? {
            Some(pem) => PrivateKey::from_openssh(&pem).map_err(|e| {
                Error::other(format!(
                    "the CA key {} is damaged ({e}); move it aside to make a new CA (servers must then trust the new `vmux ca show` line)",
                    key_path.display()
                ))
            })?,
            None => {
                let mut key = PrivateKey::random(&mut crate::random::rng(), Algorithm::Ed25519)
                    .map_err(|e| Error::other(format!("cannot generate the CA key: {e}")))?;
                key.set_comment("vmux-ca");
                let pem = key
                    .to_openssh(LineEnding::LF)
                    .map_err(|e| Error::other(format!("cannot encode the CA key: {e}")))?;
                write_private(&key_path, pem.as_bytes())?;
                key
            }
        };
        let policy_path = home.file(POLICY_FILE);
        let policy = match read_optional(&policy_path)? {
            Some(json) => serde_json::from_slice(&json).map_err(|e| {
                Error::other(format!(
                    "{} is damaged ({e}); fix it or delete it to go back to the defaults",
                    policy_path.display()
                ))
            })?,
            None => {
                let policy = Policy::default_for_this_user();
                save_policy(home, &policy)?;
                policy
            }
        };
        Ok(Self {
            home: home.clone(),
            key,
            policy,
        })
    }

    /// The CA's public key; its `to_openssh()` line goes into `TrustedUserCAKeys`.
    pub fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    /// The current policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Validates and saves a new policy.
    pub fn set_policy(&mut self, policy: Policy) -> Result<()> {
        policy.validate()?;
        save_policy(&self.home, &policy)?;
        self.policy = policy;
        Ok(())
    }

    /// Signs a user certificate for `request` under the policy. Call only
    /// after the person approved it on the sheet.
    pub fn issue(&self, request: &CertRequest<'_>) -> Result<Certificate> {
        let policy = &self.policy;
        if !policy.auto_issue {
            return Err(Error::PolicyDenied(
                "this signer does not offer certificates; turn them on with `vmux ca policy --auto-issue on`".into(),
            ));
        }
        if policy.principals.is_empty() {
            return Err(Error::PolicyDenied(
                "the policy lists no principals; set them with `vmux ca policy --principals LOGIN`"
                    .into(),
            ));
        }
        if request.validity_secs == 0 {
            return Err(Error::other(
                "a certificate was requested with a validity of 0 seconds; ask for a positive duration",
            ));
        }
        let validity = request.validity_secs.min(policy.max_validity_secs);
        let valid_after = request.now.saturating_sub(BACKDATE_SECS);
        let valid_before = request.now.checked_add(validity).ok_or_else(|| {
            Error::other("the signer's clock is out of range; check its date and time")
        })?;

        let mut nonce = [0u8; Builder::RECOMMENDED_NONCE_SIZE];
        getrandom::fill(&mut nonce).map_err(|e| {
            Error::other(format!("the operating system's random source failed: {e}"))
        })?;
        let bad = |e: ssh_key::Error| Error::other(format!("cannot build the certificate: {e}"));
        let mut builder = Builder::new(
            nonce,
            request.public_key.key_data().clone(),
            valid_after,
            valid_before,
        )
        .map_err(bad)?;
        builder
            .serial(crate::random::u64()?)
            .and_then(|b| b.cert_type(CertType::User))
            .and_then(|b| b.key_id(key_id(request)))
            .map_err(bad)?;
        for principal in &policy.principals {
            builder.valid_principal(principal.clone()).map_err(bad)?;
        }
        for extension in EXTENSIONS {
            builder.extension(extension, "").map_err(bad)?;
        }
        builder.sign(&self.key).map_err(bad)
    }
}

/// `vmux:<device>:<identity>`: what sshd logs as the certificate's ID.
fn key_id(request: &CertRequest<'_>) -> String {
    match request.identity {
        Some(identity) => format!("vmux:{}:{identity}", request.device),
        None => format!("vmux:{}", request.device),
    }
}

fn save_policy(home: &Home, policy: &Policy) -> Result<()> {
    let json = serde_json::to_vec_pretty(policy)
        .map_err(|e| Error::other(format!("cannot encode the CA policy: {e}")))?;
    write_private(&home.file(POLICY_FILE), &json)?;
    Ok(())
}
