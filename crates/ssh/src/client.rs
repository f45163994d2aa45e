//! The SSH connection: russh with our host key check, and public-key
//! authentication whose signatures come from the signer.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use russh::client::{self, Handle};
use russh::keys::agent::AgentIdentity;
use russh::keys::{Algorithm, EcdsaCurve, HashAlg, PublicKey, PublicKeyOrCertificate};
use vmux_link::Fingerprint;
use vmux_proto::envelope::{ContextQuality, Purpose, SignContext};

use crate::host_key::{self, Trust};
use crate::known_hosts::KnownHosts;
use crate::signer::RemoteSigner;
use crate::{Error, Result};

/// Host key algorithms we accept, best first. No `ssh-rsa` (SHA-1).
const HOST_KEY_ALGORITHMS: &[Algorithm] = &[
    Algorithm::Ed25519,
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP256,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP384,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP521,
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha512),
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha256),
    },
];

/// russh's view of us during the connection: the host key check.
#[derive(Debug)]
pub struct Checker {
    known: Arc<std::sync::Mutex<KnownHosts>>,
    name: String,
    refused: Arc<AtomicBool>,
    /// The host key blob we trusted: sent to the signer with each login.
    trusted: Arc<std::sync::Mutex<Option<Vec<u8>>>>,
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> std::result::Result<bool, Self::Error> {
        // We never advertise host certificate algorithms, so a certificate
        // here is unasked for.
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            self.refused.store(true, Ordering::SeqCst);
            return Ok(false);
        };
        let (known, name, key) = (self.known.clone(), self.name.clone(), key.clone());
        let blob = key.to_bytes().ok();
        // The question reads the terminal: keep it off the async threads.
        let trust = tokio::task::spawn_blocking(move || {
            let mut known = known
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            host_key::decide(&mut known, &name, &key)
        })
        .await
        .unwrap_or(Trust::Refused);
        let trusted = trust == Trust::Trusted;
        self.refused.store(!trusted, Ordering::SeqCst);
        if trusted {
            *self
                .trusted
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = blob;
        }
        Ok(trusted)
    }
}

/// An SSH connection whose host key has been checked.
pub type Connection = Handle<Checker>;

/// Connects to `host:port` and checks its key against `known` under
/// `name`, asking for the key types `known` holds for it first. Returns the
/// connection and the host key blob it trusted.
pub async fn connect(
    known: KnownHosts,
    host: &str,
    port: u16,
    name: &str,
) -> Result<(Connection, Vec<u8>)> {
    let mut key: Vec<Algorithm> = known.algorithms_for(name);
    key.retain(|a| HOST_KEY_ALGORITHMS.contains(a));
    for a in HOST_KEY_ALGORITHMS {
        if !key.contains(a) {
            key.push(a.clone());
        }
    }
    let config = client::Config {
        preferred: russh::Preferred {
            key: Cow::Owned(key),
            ..Default::default()
        },
        // Notice a dead server instead of hanging on it forever.
        keepalive_interval: Some(std::time::Duration::from_secs(30)),
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    };
    let refused = Arc::new(AtomicBool::new(false));
    let trusted = Arc::new(std::sync::Mutex::new(None));
    let checker = Checker {
        known: Arc::new(std::sync::Mutex::new(known)),
        name: name.to_owned(),
        refused: refused.clone(),
        trusted: trusted.clone(),
    };
    let address = format!("{host} port {port}");
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|source| Error::Connect {
            address: format!("host {address}"),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    let conn = client::connect_stream(Arc::new(config), stream, checker)
        .await
        .map_err(|e| match refused.load(Ordering::SeqCst) {
            true => Error::HostKeyVerification,
            false => e.into(),
        })?;
    let host_key = trusted
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
        .ok_or(Error::HostKeyVerification)?;
    Ok((conn, host_key))
}

/// Signs for russh with the signer, and says what it asks for.
struct ViaSigner<'a> {
    signer: &'a mut RemoteSigner,
    /// The identity offered: russh asks for a signature only with it.
    blob: Vec<u8>,
    algorithm: String,
    flags: u32,
    context: SignContext,
}

impl russh::Signer for ViaSigner<'_> {
    type Error = Error;

    async fn auth_sign(
        &mut self,
        _offered: &AgentIdentity,
        _hash_alg: Option<HashAlg>,
        mut to_sign: Vec<u8>,
    ) -> std::result::Result<Vec<u8>, Error> {
        say!(
            "Waiting for signer… approve on \"{}\" ({})",
            self.signer.name,
            Fingerprint::of(&self.blob)
        );
        // The data is russh's userauth request, so it is only good for this
        // session; the signer checks and shows the context with it.
        let signature = self
            .signer
            .sign(
                &self.blob,
                &self.algorithm,
                to_sign.clone(),
                self.flags,
                self.context.clone(),
            )
            .await?;
        // russh wants the request followed by the signature as an SSH string.
        let len = u32::try_from(signature.len()).map_err(|_| Error::SignerLost)?;
        to_sign.extend_from_slice(&len.to_be_bytes());
        to_sign.extend_from_slice(&signature);
        Ok(to_sign)
    }
}

impl From<russh::SendError> for Error {
    fn from(_: russh::SendError) -> Self {
        Error::Ssh(russh::Error::SendError)
    }
}

/// Logs in as `user` with the signer's identities, `first` (a fingerprint)
/// tried first; the signer is told `host` and the `host_key` we checked. Each identity is offered without a signature; the signer is
/// asked, and the person sees a sheet, only for one the server accepts.
/// Returns the fingerprint of the identity that worked.
pub async fn authenticate(
    conn: &mut Connection,
    signer: &mut RemoteSigner,
    user: &str,
    host: &str,
    host_key: &[u8],
    first: Option<&str>,
) -> Result<String> {
    let mut keys: Vec<(PublicKey, Vec<u8>)> = signer
        .keys
        .iter()
        .filter_map(|r| {
            let key = PublicKey::from_bytes(&r.public_key_blob).ok()?;
            Some((key, r.public_key_blob.clone()))
        })
        .collect();
    if let Some(first) = first {
        // Stable: the rest keep the signer's order.
        keys.sort_by_key(|(_, blob)| Fingerprint::of(blob).to_string() != first);
    }
    let rsa_hash = match conn.best_supported_rsa_hash().await {
        Ok(Some(Some(h))) => h,
        // No server-sig-algs, or SHA-1 only: ask for SHA-512, which every
        // OpenSSH since 7.2 takes; the signer never signs with SHA-1.
        _ => HashAlg::Sha512,
    };
    let context = SignContext {
        context_quality: ContextQuality::Verified,
        host: Some(host.to_owned()),
        user: Some(user.to_owned()),
        purpose: Some(Purpose::SshUserauth),
        namespace: None,
        forwarded: false,
        host_key: Some(host_key.to_vec()),
    };
    let tried = keys.len();
    for (key, blob) in keys {
        let fingerprint = Fingerprint::of(&blob).to_string();
        let is_rsa = matches!(key.algorithm(), Algorithm::Rsa { .. });
        let (hash_alg, flags) = match (is_rsa, rsa_hash) {
            (false, _) => (None, 0),
            (true, HashAlg::Sha256) => (Some(HashAlg::Sha256), 2),
            (true, _) => (Some(HashAlg::Sha512), 4),
        };
        let mut via = ViaSigner {
            signer: &mut *signer,
            blob,
            algorithm: key.algorithm().as_str().to_owned(),
            flags,
            context: context.clone(),
        };
        let result = conn
            .authenticate_publickey_with(user, key, hash_alg, &mut via)
            .await?;
        if result.success() {
            return Ok(fingerprint);
        }
        tracing::debug!("the server does not accept {fingerprint}");
    }
    Err(Error::PermissionDenied { tried })
}
