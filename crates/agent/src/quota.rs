//! How many sign requests the agent's connections may have waiting on the
//! signer at once.
//!
//! The signer answers `signerBusy` past 32 pending requests on one link
//! session, and all of the agent's connections share that session. Root on
//! a host reached with `ssh -A` could fill it, and the person's own login
//! would then fail. So the agent refuses first, at once and logged
//! (`refusedBusy`): forwarded connections together may have
//! [`MAX_FORWARDED_WAITING`] waiting, all connections together
//! [`MAX_WAITING`], both below the signer's 32, leaving local clients
//! room whatever a remote host does. Each connection has at most one
//! waiting already: its requests are answered in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use vmux_proto::envelope::limits::MAX_PENDING_REQUESTS;

/// Sign requests of all connections waiting on the signer at once.
pub const MAX_WAITING: usize = 24;
/// Of those, from forwarded connections (`ssh -A`) together.
pub const MAX_FORWARDED_WAITING: usize = 8;

const _: () = assert!(MAX_WAITING < MAX_PENDING_REQUESTS);
const _: () = assert!(MAX_FORWARDED_WAITING < MAX_WAITING);

/// The requests waiting on the signer.
#[derive(Debug, Default)]
pub struct Quota {
    waiting: AtomicUsize,
    forwarded: AtomicUsize,
    /// Whether the forwarded share is being reported, so it is said once
    /// per episode.
    forwarded_full: AtomicBool,
}

/// One request's place; given back on drop.
#[derive(Debug)]
pub struct Ticket {
    quota: Arc<Quota>,
    forwarded: bool,
}

impl Quota {
    /// A place for a request from a connection that is `forwarded` or not;
    /// `None` when its share is used up and it must be refused.
    pub fn take(self: &Arc<Self>, forwarded: bool) -> Option<Ticket> {
        if forwarded {
            if !take(&self.forwarded, MAX_FORWARDED_WAITING) {
                if !self.forwarded_full.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "{MAX_FORWARDED_WAITING} sign requests from forwarded agent connections \
                         are waiting on the signer, the most they may: refusing more (a host \
                         reached with ssh -A is sending many)"
                    );
                }
                return None;
            }
            self.forwarded_full.store(false, Ordering::Relaxed);
        }
        if !take(&self.waiting, MAX_WAITING) {
            if forwarded {
                self.forwarded.fetch_sub(1, Ordering::Relaxed);
            }
            tracing::debug!("{MAX_WAITING} sign requests are waiting on the signer: refusing one");
            return None;
        }
        Some(Ticket {
            quota: Arc::clone(self),
            forwarded,
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.forwarded {
            self.quota.forwarded.fetch_sub(1, Ordering::Relaxed);
        }
        self.quota.waiting.fetch_sub(1, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn forwarded_connections_fill_their_share_and_local_ones_still_get_in() {
        let quota = Arc::new(Quota::default());
        let forwarded: Vec<_> = (0..MAX_FORWARDED_WAITING)
            .map(|_| quota.take(true).unwrap())
            .collect();
        assert!(quota.take(true).is_none());
        let local: Vec<_> = (MAX_FORWARDED_WAITING..MAX_WAITING)
            .map(|_| quota.take(false).unwrap())
            .collect();
        assert!(quota.take(false).is_none());
        drop(forwarded);
        assert!(quota.take(true).is_some());
        drop(local);
        assert_eq!(quota.waiting.load(Ordering::Relaxed), 0);
        assert_eq!(quota.forwarded.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_forwarded_request_refused_for_the_total_gives_its_share_back() {
        let quota = Arc::new(Quota::default());
        let _local: Vec<_> = (0..MAX_WAITING)
            .map(|_| quota.take(false).unwrap())
            .collect();
        assert!(quota.take(true).is_none());
        assert_eq!(quota.forwarded.load(Ordering::Relaxed), 0);
    }
}
