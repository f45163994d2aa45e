//! Bounds on handshakes in progress: in all, and from any one address.
//!
//! A handshake is unauthenticated work a stranger can start and leave
//! hanging until `HANDSHAKE_TIMEOUT`. The total bound keeps a flood from
//! exhausting the signer; the per-address bound keeps one host from taking
//! every slot and locking out the paired devices.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Handshakes (including pairing code exchanges) in progress at once.
const MAX_TOTAL: usize = 64;
/// Of those, from one address.
const MAX_PER_ADDRESS: usize = 8;

/// The handshakes in progress, by source address.
#[derive(Debug, Default)]
pub(super) struct Handshakes {
    in_progress: Arc<Mutex<Counts>>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// One handshake's slot, given back when dropped.
#[derive(Debug)]
pub(super) struct Handshake {
    in_progress: Arc<Mutex<Counts>>,
    from: IpAddr,
}

impl Handshakes {
    /// A slot for a handshake from `from`, unless a bound is reached.
    pub(super) fn start(&self, from: IpAddr) -> Option<Handshake> {
        // IPv4-mapped IPv6 is the same host.
        let from = from.to_canonical();
        let mut counts = self
            .in_progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mine = counts.by_address.get(&from).copied().unwrap_or(0);
        if counts.total >= MAX_TOTAL || mine >= MAX_PER_ADDRESS {
            return None;
        }
        counts.total += 1;
        counts.by_address.insert(from, mine + 1);
        Some(Handshake {
            in_progress: Arc::clone(&self.in_progress),
            from,
        })
    }
}

impl Drop for Handshake {
    fn drop(&mut self) {
        let mut counts = self
            .in_progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.by_address.get_mut(&self.from) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.by_address.remove(&self.from);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn one_address_cannot_take_every_slot() {
        let handshakes = Handshakes::default();
        let mine: Vec<_> = (0..MAX_PER_ADDRESS)
            .map(|_| handshakes.start(ip(1)).unwrap())
            .collect();
        assert!(handshakes.start(ip(1)).is_none());
        // The same host as IPv4-mapped IPv6 is the same address.
        let mapped = IpAddr::from(std::net::Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        assert!(handshakes.start(mapped).is_none());
        assert!(handshakes.start(ip(2)).is_some());
        drop(mine);
        assert!(handshakes.start(ip(1)).is_some());
        assert!(handshakes.in_progress.lock().unwrap().by_address.is_empty());
    }

    #[test]
    fn the_total_is_bounded_across_addresses() {
        let handshakes = Handshakes::default();
        let held: Vec<_> = (0..MAX_TOTAL)
            .map(|i| handshakes.start(ip(u8::try_from(i).unwrap())).unwrap())
            .collect();
        assert!(handshakes.start(ip(250)).is_none());
        drop(held);
        assert!(handshakes.start(ip(250)).is_some());
    }
}
