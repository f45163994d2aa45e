//! What the signer's request path needs from the key registry and the CA,
//! read fresh for every request so `vmux key disable` in another terminal
//! takes effect at once.

use std::sync::Arc;

use ssh_key::Certificate;
use vmux_keys::ca::issued::{self, IssueRecord};
use vmux_keys::ca::revocation::Revocations;
use vmux_keys::ca::{Ca, Grant, Policy};
use vmux_keys::store::{Provider, RsaHash, SigningKey};
use vmux_link::home::Home;
use vmux_proto::envelope::{ProviderKind, PublicKeyRecord, SSH_AGENT_RSA_SHA2_256};

/// What a revoked device is told, with `certificateRevoked`.
pub const REVOKED: &str = "this device's certificates were revoked on the signer (`vmux ca revoke`); it gets no more, whatever its name";

pub use vmux_keys::Identity;

/// The registry as of now.
#[derive(Debug)]
pub struct Identities {
    keyring: vmux_keys::Keyring,
    home: Home,
}

impl Identities {
    /// Reads the registry from `home`.
    pub fn load(home: &Home) -> vmux_keys::Result<Self> {
        Ok(Self {
            keyring: vmux_keys::Keyring::load(home)?,
            home: home.clone(),
        })
    }

    /// The key-list records: enabled identities only.
    pub fn records(&self) -> Vec<PublicKeyRecord> {
        self.keyring
            .list()
            .iter()
            .filter(|i| i.enabled)
            .filter_map(|i| {
                let blob = i.key_blob().ok()?;
                Some(PublicKeyRecord {
                    algorithm: i.algorithm.clone(),
                    public_key_blob: blob,
                    comment: i.name.clone(),
                    provider_kind: match i.provider() {
                        Provider::Software => ProviderKind::Software,
                        Provider::HardwareToken => ProviderKind::HardwareToken,
                    },
                    display_name: Some(i.name.clone()),
                })
            })
            .collect()
    }

    /// The CA's public-key blob, when a CA exists. Read only for the key
    /// list (agents learn the CA key from it, for TrustedUserCAKeys), not
    /// on the sign path.
    pub fn ca_public_key_blob(&self) -> Option<Vec<u8>> {
        match Ca::open(&self.home) {
            Ok(ca) => ca?.public_key().to_bytes().ok(),
            Err(e) => {
                tracing::warn!("no CA public key in the key list: {e}");
                None
            }
        }
    }

    /// The identity whose public-key blob is `blob`, enabled or not.
    pub fn find(&self, blob: &[u8]) -> Option<Identity> {
        self.keyring.find_by_blob(blob).cloned()
    }

    /// Opens an identity's private key for signing.
    pub fn open(&self, identity: &Identity) -> vmux_keys::Result<Box<dyn SigningKey>> {
        self.keyring.open_identity(identity)
    }
}

/// The algorithm name at the start of an SSH public-key blob.
pub fn blob_algorithm(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4usize.checked_add(len)?)?;
    String::from_utf8(name.to_vec()).ok()
}

/// The RSA hash the agent flags ask for; `rsa-sha2-256` wins when both are
/// set, as in OpenSSH, and SHA-1 is never used.
pub fn rsa_hash(flags: u32) -> RsaHash {
    if flags & SSH_AGENT_RSA_SHA2_256 != 0 {
        RsaHash::Sha256
    } else {
        RsaHash::Sha512
    }
}

/// The prompt for the identity's user verification.
pub fn verification_prompt(identity: &Identity) -> String {
    format!(
        "{} for \"{}\"",
        capitalised(secret_word(identity)),
        identity.name
    )
}

/// `passphrase` or `PIN`.
pub fn secret_word(identity: &Identity) -> &'static str {
    match identity.provider() {
        Provider::Software => "passphrase",
        Provider::HardwareToken => "PIN",
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The start-time warning about the CA key, if it deserves one (an
/// unencrypted `ca.key`, or one that cannot be read).
pub fn ca_warning(home: &Home) -> Option<String> {
    match Ca::open(home) {
        Ok(ca) => ca.and_then(|ca| ca.unprotected_warning()),
        Err(e) => Some(e.to_string()),
    }
}

/// A certificate the CA issued, as the response carries it.
#[derive(Debug)]
pub struct Issued {
    /// The OpenSSH certificate blob.
    pub certificate_blob: Vec<u8>,
    /// The CA's public-key blob.
    pub ca_public_key: Vec<u8>,
    /// Unix seconds.
    pub valid_after: u64,
    /// Unix seconds.
    pub valid_before: u64,
}

/// The CA as the request path uses it, read fresh for each request: the
/// policy, the CA key (none until it is made) and the revocations.
#[derive(Debug)]
pub struct Authority {
    home: Home,
    policy: Policy,
    ca: Option<Arc<Ca>>,
    revocations: Revocations,
}

impl Authority {
    /// Reads the CA's state in `home`.
    pub fn load(home: &Home) -> vmux_keys::Result<Self> {
        Ok(Self {
            home: home.clone(),
            policy: Policy::load(home)?,
            ca: Ca::open(home)?.map(Arc::new),
            revocations: Revocations::load(home)?,
        })
    }

    /// Whether the device `device_id`'s certificates were revoked. By
    /// device id: a rename since the revocation changes the key ID.
    pub fn device_revoked(&self, device_id: &str) -> bool {
        self.ca
            .as_ref()
            .is_some_and(|ca| self.revocations.device_revoked(ca.public_key(), device_id))
    }

    /// The CA key, once made.
    pub fn ca(&self) -> Option<Arc<Ca>> {
        self.ca.clone()
    }

    /// What the CA would sign for the device `device_id` (pinned name
    /// `device`) asking `requested` seconds at `now`, or why nothing.
    /// Decided before the person is asked; the sheet shows the answer.
    pub fn grant(
        &self,
        device: &str,
        device_id: &str,
        requested: u64,
        now: u64,
    ) -> Result<Grant, String> {
        let grant = self
            .policy
            .grant(device, device_id, requested, now)
            .map_err(|e| match e {
                vmux_keys::Error::PolicyDenied(m) => m,
                other => other.to_string(),
            })?;
        if self.device_revoked(device_id) {
            return Err(REVOKED.to_owned());
        }
        Ok(grant)
    }

    /// Records `cert` in the issue log, then hands it out: a certificate
    /// that is not on record is not delivered.
    pub fn record(&self, cert: &Certificate, grant: &Grant) -> vmux_keys::Result<Issued> {
        let bad = |e: ssh_key::Error| vmux_keys::Error::Other(format!("certificate: {e}"));
        issued::append(
            &self.home,
            &IssueRecord {
                time: grant.now,
                serial: cert.serial(),
                key_id: cert.key_id().to_owned(),
                device: grant.device.clone(),
                principals: cert.valid_principals().to_vec(),
                valid_after: cert.valid_after(),
                valid_before: cert.valid_before(),
            },
        )?;
        let ca = ssh_key::PublicKey::new(cert.signature_key().clone(), "");
        Ok(Issued {
            certificate_blob: cert.to_bytes().map_err(bad)?,
            ca_public_key: ca.to_bytes().map_err(bad)?,
            valid_after: cert.valid_after(),
            valid_before: cert.valid_before(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use zeroize::Zeroizing;

    use super::*;

    /// Revoked, then renamed: the device id is what was revoked, so the
    /// device gets nothing under its new name; another device still does.
    #[test]
    fn a_revoked_device_gets_no_certificate_under_a_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("home")).unwrap();
        let mut policy = Policy::default_for_this_user();
        policy.principals = vec!["alice".into()];
        policy.save(&home).unwrap();
        let ca = Ca::init(&home, &Zeroizing::new("ca passphrase".into())).unwrap();
        Revocations::update(&home, 1, |r| {
            r.revoke(ca.public_key(), [], ["vmux:laptop:dev-1".to_owned()])
        })
        .unwrap();
        let authority = Authority::load(&home).unwrap();
        for name in ["laptop", "work"] {
            let refused = authority.grant(name, "dev-1", 600, 1_000).unwrap_err();
            assert!(refused.contains("revoked"), "{name}: {refused}");
        }
        assert!(authority.grant("laptop", "dev-2", 600, 1_000).is_ok());
        assert!(authority.grant("x", "dev-1:y", 600, 1_000).is_ok());
    }
}
