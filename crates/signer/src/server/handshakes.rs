//! Bounds on handshakes in progress, so that strangers can neither exhaust
//! the signer nor lock its paired devices out.
//!
//! Until handshake message 3 a connection has proved nothing: it is a
//! stranger's. Strangers share [`MAX_STRANGERS`] slots, at most
//! [`MAX_PER_NETWORK`] from one IPv4 /24 or IPv6 /64 and [`MAX_PER_ADDRESS`]
//! from one address, and must reach message 3 within [`SILENT_LIMIT`].
//!
//! A newcomer is never turned away. When a bound is reached, the oldest
//! stranger of the most crowded network, then address, within that bound
//! makes room. A flood's silent connects are old and crowd their own
//! addresses; a device's handshake is young and done within a round trip,
//! so a flood evicts its own connections, not the device's.
//!
//! Once message 3 proves a pinned key, the handshake leaves the strangers'
//! slots for [`RESERVED_FOR_PINNED`] that only pinned keys use (at most
//! [`RESERVED_PER_DEVICE`] for one key), where nothing evicts it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use vmux_link::noise::KEY_LEN;

/// Strangers' handshakes in progress at once (pairing code exchanges too).
pub(super) const MAX_STRANGERS: usize = 64;
/// Of those, from one IPv4 /24 or IPv6 /64: what one site's network can
/// hold, however many addresses it has.
pub(super) const MAX_PER_NETWORK: usize = 32;
/// Of those, from one address.
pub(super) const MAX_PER_ADDRESS: usize = 8;
/// How long a connection may take to prove a key (handshake message 3): a
/// device needs a round trip, so a silent connect holds its slot briefly.
pub(super) const SILENT_LIMIT: Duration = Duration::from_secs(3);
/// Handshakes that proved a pinned key, going on to their `hello`s, kept
/// apart from the strangers' slots.
pub(super) const RESERVED_FOR_PINNED: usize = 16;
/// Of those, for one pinned key.
pub(super) const RESERVED_PER_DEVICE: usize = 4;

/// The handshakes in progress.
#[derive(Debug, Default)]
pub(super) struct Handshakes {
    table: Arc<Mutex<Table>>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    /// In arrival order: the first is the oldest.
    strangers: Vec<Stranger>,
    /// Reserved slots in use, by pinned key.
    pinned: HashMap<[u8; KEY_LEN], usize>,
}

#[derive(Debug)]
struct Stranger {
    id: u64,
    from: IpAddr,
    /// Tells its handshake it was evicted.
    evict: oneshot::Sender<()>,
}

/// One handshake's slot, given back when dropped.
#[derive(Debug)]
pub(super) struct Handshake {
    table: Arc<Mutex<Table>>,
    id: u64,
    evicted: oneshot::Receiver<()>,
    /// The pinned key whose reserved slot this holds, once promoted.
    reserved: Option<[u8; KEY_LEN]>,
}

impl Handshakes {
    /// A stranger's slot for a handshake from `from`, making room if a
    /// bound is reached.
    pub(super) fn start(&self, from: IpAddr) -> Handshake {
        // IPv4-mapped IPv6 is the same host.
        let from = from.to_canonical();
        let mut table = self.lock();
        if let Some(victim) = table.victim(from) {
            let evicted = table.strangers.remove(victim);
            let _ = evicted.evict.send(());
        }
        let (evict, evicted) = oneshot::channel();
        let id = table.next_id;
        table.next_id += 1;
        table.strangers.push(Stranger { id, from, evict });
        Handshake {
            table: Arc::clone(&self.table),
            id,
            evicted,
            reserved: None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Table {
    /// Which stranger makes room for a newcomer from `from`, if any must.
    fn victim(&self, from: IpAddr) -> Option<usize> {
        let network = network(from);
        let count = |f: &dyn Fn(&Stranger) -> bool| self.strangers.iter().filter(|s| f(s)).count();
        if count(&|s| s.from == from) >= MAX_PER_ADDRESS {
            return self.most_crowded(&|s| s.from == from);
        }
        if count(&|s| self.network_of(s) == network) >= MAX_PER_NETWORK {
            return self.most_crowded(&|s| self.network_of(s) == network);
        }
        if self.strangers.len() >= MAX_STRANGERS {
            return self.most_crowded(&|_| true);
        }
        None
    }

    fn network_of(&self, s: &Stranger) -> IpAddr {
        network(s.from)
    }

    /// The oldest stranger of the network, then the address, holding most
    /// of those `in_scope`.
    fn most_crowded(&self, in_scope: &dyn Fn(&Stranger) -> bool) -> Option<usize> {
        let mut networks = HashMap::<IpAddr, usize>::new();
        let mut addresses = HashMap::<IpAddr, usize>::new();
        for s in self.strangers.iter().filter(|s| in_scope(s)) {
            *networks.entry(network(s.from)).or_default() += 1;
            *addresses.entry(s.from).or_default() += 1;
        }
        let crowding = |s: &Stranger| {
            (
                networks.get(&network(s.from)).copied().unwrap_or(0),
                addresses.get(&s.from).copied().unwrap_or(0),
            )
        };
        self.strangers
            .iter()
            .enumerate()
            .filter(|(_, s)| in_scope(s))
            // The first (oldest) of the most crowded: `max_by_key` keeps
            // the last of equals, so compare on the reversed position.
            .max_by_key(|(i, s)| (crowding(s), std::cmp::Reverse(*i)))
            .map(|(i, _)| i)
    }
}

/// The /24 of an IPv4 address, the /64 of an IPv6 one.
fn network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => IpAddr::from(std::net::Ipv6Addr::from(
            u128::from(v6) & !u128::from(u64::MAX),
        )),
    }
}

impl Handshake {
    /// Message 3 proved `key`, which is pinned: moves to a reserved slot if
    /// one is free (otherwise it stays a stranger's, and may be evicted).
    /// False if it was evicted already.
    pub(super) fn proved_pinned(&mut self, key: [u8; KEY_LEN]) -> bool {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(at) = table.strangers.iter().position(|s| s.id == self.id) else {
            return self.reserved.is_some();
        };
        let reserved: usize = table.pinned.values().sum();
        let mine = table.pinned.get(&key).copied().unwrap_or(0);
        if reserved < RESERVED_FOR_PINNED && mine < RESERVED_PER_DEVICE {
            table.strangers.remove(at);
            table.pinned.insert(key, mine + 1);
            self.reserved = Some(key);
        }
        true
    }

    /// Resolves if a newcomer evicted this handshake; never once it holds a
    /// reserved slot.
    pub(super) async fn evicted(&mut self) {
        if self.reserved.is_some() || (&mut self.evicted).await.is_err() {
            // Promoted (the table dropped its sender): nothing evicts it.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Handshake {
    fn drop(&mut self) {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        match self.reserved {
            Some(key) => {
                if let Some(n) = table.pinned.get_mut(&key) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        table.pinned.remove(&key);
                    }
                }
            }
            None => table.strangers.retain(|s| s.id != self.id),
        }
    }
}

#[cfg(test)]
mod tests;
