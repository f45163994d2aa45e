//! What `vmux status` shows of the agent: the signers and their CAs, wake
//! endpoints, the upstream, the certificate, the keys, and the last
//! refusal.

use std::sync::PoisonError;

use vmux_link::Fingerprint;

use crate::keys::{self, Source};
use crate::{Agent, control};

impl Agent {
    /// What `vmux status` shows.
    pub fn status(&self) -> control::Status {
        let signers = self
            .signers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let name_of = |fp: &Fingerprint| {
            signers
                .get(fp)
                .map_or_else(|| fp.to_string(), |(name, _)| name.clone())
        };
        let mut authorities: Vec<control::StatusAuthority> = signers
            .values()
            .filter_map(|(name, ca)| {
                let ca = ca.as_ref()?;
                Some(control::StatusAuthority {
                    signer: name.clone(),
                    fingerprint: Fingerprint::of(ca).to_string(),
                    algorithm: keys::algorithm_of(ca).unwrap_or_default(),
                })
            })
            .collect();
        authorities.sort_by(|a, b| a.signer.cmp(&b.signer));
        let mut known: Vec<Fingerprint> = self.link.pinned().unwrap_or_default();
        known.extend(
            signers
                .keys()
                .filter(|f| !known.contains(f))
                .cloned()
                .collect::<Vec<_>>(),
        );
        let wake = known
            .iter()
            .filter_map(|fp| {
                let e = self.link.wakes().get(fp)?;
                Some(control::StatusWake {
                    signer: name_of(fp),
                    host: vmux_link::wake::endpoint_host(&e.endpoint).to_owned(),
                    last_attempt: e.last_attempt,
                    last_result: e.last_result,
                    last_failed: e.last_failed,
                })
            })
            .collect();
        let (upstream_answering, upstream_keys) = self
            .upstream_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let keys = self.keys();
        let mut connected = self.link.connected();
        let connected_to = (!connected.is_empty()).then(|| connected.remove(0));
        control::Status {
            connected_to,
            also_connected: connected,
            authorities,
            wake,
            upstream: self.upstream.as_ref().map(|up| control::StatusUpstream {
                path: up.path.display().to_string(),
                writable: up.writable,
                answering: upstream_answering,
            }),
            certificate: self.certificate_line(),
            certificate_refused: self.certs.last_refusal().map(|c| c.as_str().to_owned()),
            locked: self.is_locked(),
            from_cache: keys.source() == Source::Cache,
            last_refusal: self.link.refusals().last(),
            not_saved: self
                .cache_unsaved
                .status_line()
                .into_iter()
                .chain(self.log.unsaved())
                .collect(),
            keys: keys
                .list()
                .iter()
                .map(|k| control::StatusKey {
                    comment: k.comment.clone(),
                    fingerprint: k.fingerprint.to_string(),
                    algorithm: k.algorithm.clone(),
                    from: k.signer.as_ref().map(|h| h.name.clone()),
                })
                .chain(upstream_keys.iter().map(|id| control::StatusKey {
                    comment: id.comment.clone(),
                    fingerprint: Fingerprint::of(&id.key_blob).to_string(),
                    algorithm: keys::algorithm_of(&id.key_blob).unwrap_or_default(),
                    from: Some("upstream".to_owned()),
                }))
                .collect(),
        }
    }

    /// Whether the signer `fp`'s last key list named a CA key.
    pub(crate) fn lists_ca(&self, fp: &Fingerprint) -> bool {
        self.signers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(fp)
            .is_some_and(|(_, ca)| ca.is_some())
    }

    /// The certificate line; with none, and a signer in use whose CA does
    /// not exist yet, how to get the first.
    fn certificate_line(&self) -> String {
        let line = self.certs.status_line();
        let in_use = self
            .link
            .in_use()
            .borrow()
            .as_ref()
            .map(|c| c.fingerprint.clone());
        match in_use {
            Some(fp)
                if self.certificates
                    && self.certs.identity().is_none()
                    && self.certs.last_refusal().is_none()
                    && !self.lists_ca(&fp) =>
            {
                format!("{line}: the signer has no CA yet; `vmux cert request` asks for the first")
            }
            _ => line,
        }
    }
}
