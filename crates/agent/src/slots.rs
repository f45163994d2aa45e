//! How many agent connections are served at once.
//!
//! Every connection costs a descriptor and a little memory, and clients
//! are not only local: with `ssh -A`, every process on the remote host that
//! opens the forwarded socket becomes a connection here. So there are two
//! caps. [`MAX_CONNECTIONS`] (lowered to fit the open-file limit) bounds
//! them all; past it a new connection is closed at once, which its client
//! reports as a failure to talk to the agent. [`MAX_FORWARDED`], far lower,
//! bounds those whose session binding says they are forwarded: a remote
//! host can use up that share, never the rest, so local clients are still
//! served while it tries.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Connections served at once, at most.
pub const MAX_CONNECTIONS: usize = 4096;
/// Forwarded connections (`ssh -A`) served at once, at most.
pub const MAX_FORWARDED: usize = 128;
/// Descriptors kept for everything else: the listener, the link, the
/// runtime, the state files.
const RESERVED_FDS: u64 = 64;

/// The connections being served, and the caps.
#[derive(Debug)]
pub struct Slots {
    max: usize,
    max_forwarded: usize,
    open: AtomicUsize,
    forwarded: AtomicUsize,
    /// Whether the cap is being reported, so it is said once per episode.
    full: AtomicBool,
}

impl Slots {
    /// Caps of `max` connections, `max_forwarded` of them forwarded.
    pub fn new(max: usize, max_forwarded: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            max_forwarded: max_forwarded.min(max),
            open: AtomicUsize::new(0),
            forwarded: AtomicUsize::new(0),
            full: AtomicBool::new(false),
        })
    }

    /// The cap on all connections.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for a new connection, or `None` at the cap (said once until
    /// a slot is free again).
    pub fn take(self: &Arc<Self>) -> Option<Slot> {
        if !take(&self.open, self.max) {
            if !self.full.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "{} agent connections are open, the most this agent serves at once: \
                     closing new ones until some end",
                    self.max
                );
            }
            return None;
        }
        self.full.store(false, Ordering::Relaxed);
        Some(Slot {
            slots: self.clone(),
            forwarded: false,
        })
    }
}

/// One connection's place; given back on drop.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    forwarded: bool,
}

impl Slot {
    /// Counts this connection as forwarded from now on; `false` when
    /// [`MAX_FORWARDED`] are already, and the connection must close.
    pub fn forwarded(&mut self) -> bool {
        if self.forwarded {
            return true;
        }
        if !take(&self.slots.forwarded, self.slots.max_forwarded) {
            tracing::warn!(
                "{} forwarded agent connections are open, the most this agent serves at once: \
                 closing a new one (a host reached with ssh -A is opening many)",
                self.slots.max_forwarded
            );
            return false;
        }
        self.forwarded = true;
        true
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.forwarded {
            self.slots.forwarded.fetch_sub(1, Ordering::Relaxed);
        }
        self.slots.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One more in `count` if that stays within `max`.
fn take(count: &AtomicUsize, max: usize) -> bool {
    count
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

/// Raises the soft open-file limit as far as [`MAX_CONNECTIONS`] needs
/// (often 1024 by default, the hard limit far higher), and returns the
/// connection cap the limit then allows.
pub fn fit_open_files() -> usize {
    let wanted = MAX_CONNECTIONS as u64 + RESERVED_FDS;
    let limit = getrlimit(Resource::Nofile);
    let mut soft = limit.current;
    if soft.is_some_and(|s| s < wanted) {
        let target = limit.maximum.map_or(wanted, |hard| hard.min(wanted));
        let raised = Rlimit {
            current: Some(target),
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => soft = Some(target),
            Err(e) => tracing::debug!("cannot raise the open-file limit to {target}: {e}"),
        }
    }
    let allowed = soft.map_or(u64::MAX, |s| s.saturating_sub(RESERVED_FDS));
    let cap = usize::try_from(allowed)
        .unwrap_or(usize::MAX)
        .clamp(1, MAX_CONNECTIONS);
    if cap < MAX_CONNECTIONS {
        tracing::info!(
            "serving at most {cap} agent connections at once (the open-file limit, ulimit -n, is {})",
            soft.unwrap_or_default()
        );
    }
    cap
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn caps_all_and_forwarded_and_gives_back() {
        let slots = Slots::new(3, 1);
        let mut a = slots.take().unwrap();
        let mut b = slots.take().unwrap();
        let c = slots.take().unwrap();
        assert!(slots.take().is_none());
        assert!(a.forwarded());
        assert!(a.forwarded());
        assert!(!b.forwarded());
        drop(a);
        assert!(b.forwarded());
        drop(c);
        let d = slots.take().unwrap();
        let e = slots.take().unwrap();
        assert!(slots.take().is_none());
        drop((b, d, e));
        assert_eq!(slots.open.load(Ordering::Relaxed), 0);
        assert_eq!(slots.forwarded.load(Ordering::Relaxed), 0);
    }
}
