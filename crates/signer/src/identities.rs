//! What the signer's request path needs from the key registry and the CA,
//! read fresh for every request so `vmux key disable` in another terminal
//! takes effect at once.

use vmux_keys::store::{Provider, RsaHash, SigningKey};
use vmux_link::home::Home;
use vmux_proto::envelope::{
    ProviderKind, PublicKeyRecord, Purpose, SSH_AGENT_RSA_SHA2_256, SignContext,
};

use crate::approval::Destination;

pub use vmux_keys::Identity;
use vmux_keys::ca::{Ca, CertRequest};

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
            Ok(ca) => ca.public_key().to_bytes().ok(),
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

/// What the sheet shows as the destination.
pub fn destination(context: &SignContext) -> Destination {
    let purpose = match (context.purpose, context.namespace.as_deref()) {
        (Some(Purpose::SshUserauth), _) => Some("SSH login".to_owned()),
        (Some(Purpose::Sshsig), Some("git")) => Some("git signature".to_owned()),
        (Some(Purpose::Sshsig), Some(ns)) => Some(format!("signature, namespace \"{ns}\"")),
        (Some(Purpose::Sshsig), None) => Some("signature".to_owned()),
        _ => None,
    };
    let purpose = match (purpose, context.forwarded) {
        (Some(p), true) => Some(format!("{p}, through a forwarded agent")),
        (None, true) => Some("through a forwarded agent".to_owned()),
        (p, false) => p,
    };
    Destination {
        host: context.host.clone(),
        user: context.user.clone(),
        purpose,
        quality: context.context_quality,
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

/// The CA as the request path uses it.
#[derive(Debug)]
pub struct Authority {
    ca: Ca,
}

impl Authority {
    /// Opens (creating on first use) the CA in `home`.
    pub fn load(home: &Home) -> vmux_keys::Result<Self> {
        Ok(Self {
            ca: Ca::open(home)?,
        })
    }

    /// The validity the policy would grant for `requested` seconds, or why
    /// it grants none. Checked before the person is asked.
    pub fn grantable(&self, requested: u64) -> Result<u64, String> {
        let policy = self.ca.policy();
        if !policy.auto_issue {
            return Err("this signer does not issue certificates (`vmux ca policy --auto-issue on` to allow)".into());
        }
        if policy.principals.is_empty() {
            return Err(
                "the CA policy lists no principals (`vmux ca policy --principals LOGIN`)".into(),
            );
        }
        if requested == 0 {
            return Err("a certificate was requested with a validity of 0 seconds".into());
        }
        Ok(requested.min(policy.max_validity_secs))
    }

    /// Issues the certificate for `blob` (after the person approved).
    pub fn issue(
        &self,
        blob: &[u8],
        device: &str,
        validity: u64,
        now_secs: u64,
    ) -> vmux_keys::Result<Issued> {
        let bad = |e: ssh_key::Error| vmux_keys::Error::Other(format!("certificate: {e}"));
        let public_key = ssh_key::PublicKey::from_bytes(blob).map_err(bad)?;
        let request = CertRequest {
            public_key: &public_key,
            device,
            identity: None,
            validity_secs: validity,
            now: now_secs,
        };
        let cert = self.ca.issue(&request)?;
        Ok(Issued {
            certificate_blob: cert.to_bytes().map_err(bad)?,
            ca_public_key: self.ca.public_key().to_bytes().map_err(bad)?,
            valid_after: cert.valid_after(),
            valid_before: cert.valid_before(),
        })
    }
}
