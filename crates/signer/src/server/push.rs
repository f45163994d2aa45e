//! What a session is told unasked: a fresh key list when the identities or
//! the CA change (`vmux key import`, `new`, `enable`, `disable` in another
//! process included), and `certificateRevoked` when this device's
//! certificates are revoked while it is connected.

use vmux_link::home::Home;
use vmux_link::watch::Watch;
use vmux_proto::envelope::{Envelope, ErrorCode, ErrorReport};

use crate::identities::{self, Authority};

/// The files a key list is made from, then the revocations.
fn watched(home: &Home) -> [std::path::PathBuf; 3] {
    [
        vmux_keys::keyring::FILE.path(home),
        vmux_keys::ca::KEY_FILE.path(home),
        vmux_keys::ca::revocation::REVOKED_FILE.path(home),
    ]
}

/// One session's watch on the signer's state.
#[derive(Debug)]
pub(super) struct Push {
    home: Home,
    device_id: String,
    watch: Watch,
    /// Whether this device was already told its certificates are revoked.
    told_revoked: bool,
}

/// What changed.
pub(super) struct Changed {
    /// Send a fresh key list.
    pub(super) keys: bool,
    /// Tell the device its certificates were revoked.
    pub(super) revoked: Option<Envelope>,
}

impl Push {
    /// Watches for the device `device_id`, from the state as it is now
    /// (nothing is read yet: a session costs one `stat` per file per
    /// interval). A device revoked before it connected learns it from its
    /// next certificate request, or from the next revocation.
    pub(super) fn new(home: &Home, device_id: &str) -> Self {
        Self {
            home: home.clone(),
            device_id: device_id.to_owned(),
            watch: Watch::new(watched(home)),
            told_revoked: false,
        }
    }

    /// Waits for the next change worth telling the device.
    pub(super) async fn changed(&mut self) -> Changed {
        loop {
            let files = self.watch.changed().await;
            let keys = files.iter().any(|&i| i < 2);
            let revocations = files.contains(&2);
            let revoked = (revocations && self.newly_revoked()).then(|| {
                Envelope::Error(ErrorReport {
                    code: ErrorCode::CertificateRevoked,
                    message: identities::REVOKED.to_owned(),
                    request_id: None,
                })
            });
            if keys || revoked.is_some() {
                return Changed { keys, revoked };
            }
        }
    }

    fn newly_revoked(&mut self) -> bool {
        if self.told_revoked {
            return false;
        }
        match Authority::load(&self.home) {
            Ok(a) if a.device_revoked(&self.device_id) => {
                self.told_revoked = true;
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::warn!("cannot read the CA's revocations: {e}");
                false
            }
        }
    }
}
