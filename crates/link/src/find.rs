//! Finding a pinned signer again: at the address it was last reached at,
//! else where DNS-SD says it is now. Shared by the agent's supervisors and
//! `vmux ssh`, so both look the same way.
//!
//! A record found on the network is only a hint: the handshake still
//! checks the pinned key, and [`crate::session::connect`] records the new
//! address only once that check has passed.

use std::net::SocketAddr;
use std::time::Duration;

use crate::Fingerprint;
use crate::discovery::{self, Scope};

/// How long one look for signers on the local network lasts (it ends
/// sooner when a pinned one answers).
pub const DISCOVERY_WAIT: Duration = Duration::from_secs(3);

/// Whether `address` names this machine. A signer on this machine is never
/// advertised, so looking for it would only put mDNS traffic on every
/// interface for nothing.
pub fn is_loopback(address: &str) -> bool {
    match address.parse::<SocketAddr>() {
        Ok(a) => a.ip().to_canonical().is_loopback(),
        Err(_) => address.starts_with("localhost:"),
    }
}

/// Whether to browse for signers last reached at `addresses`: not when
/// they were all on this machine (or none is known: there is nothing to
/// find again).
pub fn worth_browsing(addresses: &[String]) -> bool {
    !addresses.iter().all(|a| is_loopback(a))
}

/// Where the signers pinned with `pinned` are advertised on the local
/// network now, as `(fingerprint, address)`, pinned order first. Records
/// of other signers are left out; a failure to browse is logged and finds
/// nothing.
pub async fn discover(pinned: &[Fingerprint], wait: Duration) -> Vec<(Fingerprint, String)> {
    match discovery::browse(Scope::All, pinned, wait).await {
        Ok(found) => found
            .into_iter()
            .filter(|s| pinned.contains(&s.fingerprint))
            .flat_map(|s| {
                let fingerprint = s.fingerprint;
                s.addresses
                    .into_iter()
                    .map(move |a| (fingerprint.clone(), a.to_string()))
            })
            .collect(),
        Err(e) => {
            tracing::debug!("looking for the signer on the network: {e}");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_are_not_browsed_for() {
        assert!(is_loopback("127.0.0.1:7390"));
        assert!(is_loopback("[::1]:7390"));
        assert!(is_loopback("[::ffff:127.0.0.1]:7390"));
        assert!(is_loopback("localhost:7390"));
        assert!(!is_loopback("192.0.2.7:7390"));
        assert!(!is_loopback("phone.local:7390"));
        assert!(!worth_browsing(&[]));
        assert!(!worth_browsing(&["127.0.0.1:1".into()]));
        assert!(worth_browsing(&[
            "127.0.0.1:1".into(),
            "192.0.2.7:2".into()
        ]));
    }
}
